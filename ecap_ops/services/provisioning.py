"""Plan and apply the topic catalog against a cluster."""

import json
import logging
import time
from dataclasses import asdict, dataclass, field

from ecap_ops.catalog.model import Catalog
from ecap_ops.core.plan import ActionKind, Plan, make_plan
from ecap_ops.core.state import ClusterState
from ecap_ops.errors import PlanRefused, PlanStale
from ecap_ops.gateway import KafkaGateway

log = logging.getLogger(__name__)


def observe(gateway: KafkaGateway, catalog: Catalog) -> ClusterState:
    """What the plan needs: the catalog's topics in full, every topic's name for the
    unmanaged report."""
    return gateway.read_cluster_state(catalog.names())


def plan_topics(
    gateway: KafkaGateway, catalog: Catalog, acknowledge_destructive: frozenset[str] = frozenset()
) -> Plan:
    return make_plan(catalog, observe(gateway, catalog), acknowledge_destructive)


@dataclass
class StepResult:
    step: str  # create_topic, alter_configs, add_partitions
    topic: str
    ok: bool
    detail: str
    skipped: bool = False


@dataclass
class ApplyResult:
    plan: Plan
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    @property
    def failed(self) -> list[StepResult]:
        return [s for s in self.steps if not s.ok]

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "plan": self.plan.to_dict(),
            "steps": [asdict(s) for s in self.steps],
            "seconds": round(self.seconds, 3),
            "requests": dict(self.requests),
        }


def load_saved_plan(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise PlanStale(f"plan file {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise PlanStale(f"plan file {path} cannot be read as JSON: {exc}") from None
    if not isinstance(data, dict) or "fingerprint" not in data or "cluster_id" not in data:
        raise PlanStale(f"plan file {path} is not a plan written by `ecap-ops plan --out`")
    return data


def apply_topics(
    gateway: KafkaGateway,
    catalog: Catalog,
    acknowledge_destructive: frozenset[str] = frozenset(),
    saved_plan: dict | None = None,
    dry_run: bool = False,
) -> ApplyResult:
    """Compute the plan afresh and apply exactly it, in batches: creates, config changes,
    partition additions. Refused plans change nothing. A saved plan (from `plan --out`)
    is applied only if the cluster and the state it was made from are unchanged."""
    started = time.monotonic()
    before = dict(gateway.requests)
    plan = plan_topics(gateway, catalog, acknowledge_destructive)
    result = ApplyResult(plan=plan)
    if saved_plan is not None:
        if saved_plan["cluster_id"] != plan.cluster_id:
            raise PlanStale(
                f"the saved plan was made for cluster {saved_plan['cluster_id']}, this is cluster {plan.cluster_id}; nothing was applied"
            )
        if saved_plan["fingerprint"] != plan.fingerprint:
            raise PlanStale(
                "the cluster changed since the saved plan was made (its topics, partitions or overrides differ); "
                "nothing was applied. Run `ecap-ops plan` again and review it."
            )
    if plan.blocked:
        raise PlanRefused(
            "the plan has refused changes, so nothing was applied:\n"
            + "\n".join(f"  - {r.message}" for r in plan.refusals)
        )
    if dry_run or not plan.actions:
        result.seconds = time.monotonic() - started
        return result

    creates = {
        a.topic: {
            "num_partitions": a.partitions,
            "replication_factor": a.replication_factor,
            "configs": dict(a.configs),
        }
        for a in plan.actions
        if a.kind is ActionKind.CREATE_TOPIC
    }
    alters = {
        a.topic: {c.key: c.new for c in a.changes}
        for a in plan.actions
        if a.kind is ActionKind.ALTER_CONFIGS
    }
    adds = {a.topic: a.partitions for a in plan.actions if a.kind is ActionKind.ADD_PARTITIONS}

    # Ask the brokers to validate every step before making the first change.
    problems = {}
    for step, items, fn in (
        ("create_topic", creates, gateway.create_topics),
        ("alter_configs", alters, gateway.alter_topic_configs),
        ("add_partitions", adds, gateway.create_partitions),
    ):
        for topic, err in fn(items, validate_only=True).items():
            if err:
                problems[(step, topic)] = err
    if problems:
        raise PlanRefused(
            "the brokers rejected the plan in validation, so nothing was applied:\n"
            + "\n".join(
                f"  - {step} {topic}: {err}" for (step, topic), err in sorted(problems.items())
            )
        )

    failed = False
    for step, items, fn in (
        ("create_topic", creates, gateway.create_topics),
        ("alter_configs", alters, gateway.alter_topic_configs),
        ("add_partitions", adds, gateway.create_partitions),
    ):
        if not items:
            continue
        if failed:
            # After a failure nothing further runs; a re-run converges from where we are.
            result.steps += [
                StepResult(step, t, False, "skipped: an earlier step failed", skipped=True)
                for t in items
            ]
            continue
        outcome = fn(items)
        for topic in items:
            err = outcome.get(topic, "no answer from the broker for this topic")
            if err and step == "create_topic" and err.startswith("TopicAlreadyExistsError"):
                # Created by someone else since we planned: fine if it now matches, which the
                # next plan will tell; not a failure of this step.
                result.steps.append(StepResult(step, topic, True, "already existed"))
                continue
            result.steps.append(StepResult(step, topic, err is None, err or "done"))
            failed = failed or err is not None
    if creates:
        _wait_for_leaders(gateway, list(creates))
    result.seconds = time.monotonic() - started
    result.requests = {
        k: v - before.get(k, 0) for k, v in gateway.requests.items() if v - before.get(k, 0)
    }
    for s in result.steps:
        log.info("%s %s: %s", s.step, s.topic, s.detail)
    return result


def _wait_for_leaders(gateway: KafkaGateway, names: list[str], timeout_s: float = 15.0) -> None:
    """New topics are usable once every partition's leader serves it: the metadata names a
    leader a moment before that broker answers for the partition. Wait for both, bounded."""
    from ecap_ops.errors import EcapOpsError

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        meta = gateway.describe_topics(names)
        if len(meta) == len(names) and all(
            p.get("leader_id", -1) >= 0 for t in meta.values() for p in t["partitions"]
        ):
            break
        time.sleep(0.2)
    else:
        log.warning(
            "new topics %s had no leader for every partition after %.0f s",
            ", ".join(names),
            timeout_s,
        )
        return
    parts = [(n, p["partition_index"]) for n, t in meta.items() for p in t["partitions"]]
    remaining_ms = max(1000, int((deadline - time.monotonic()) * 1000))
    try:
        gateway.offsets(parts, "latest", timeout_ms=remaining_ms)
    except EcapOpsError as exc:
        log.warning("new topics %s are not yet served by their leaders: %s", ", ".join(names), exc)
