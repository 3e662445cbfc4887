"""The one write path: every change ecap-ops makes to a cluster runs through `execute_plan`.

Provisioning, reset-topics, delete-topic, restore, the DR drill and test-topic cleanup each
plan their change as typed actions in the core (`core.plan`, `core.changes`,
`core.restore`); this module carries a plan out, always the same way:

1. the brokers validate every create, config change and partition addition
   (validate-only requests) before the first real change; a topic to be deleted and
   created again has its re-creation validated (under a probe name) before it is deleted;
2. what will be deleted or overwritten is snapshotted first (0600, in its own directory,
   `<snapshot dir>/pre-change/`), so `ecap-ops restore FILE --execute` can put it back;
3. actions run in a fixed order (`core.changes.PHASES`), batched under KRaft's cap of
   10,000 metadata records per request; after a failure nothing further runs (except
   re-creating topics this run already deleted), and the result says exactly what was and
   was not done, and how to restore;
4. the cluster is read again and every action verified;
5. every action and its outcome is appended to the change log (`ECAP_CHANGE_LOG`).
"""

import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ecap_ops.core.changes import batches, order, phase_of, verification_problems
from ecap_ops.core.plan import ACCESS_KINDS, Action, ActionKind, Plan
from ecap_ops.core.state import TopicState
from ecap_ops.errors import EcapOpsError, KafkaRequestFailed, PlanRefused
from ecap_ops.gateway import KafkaGateway
from ecap_ops.services.write_evidence import (
    log_changes,
    needs_snapshot,
    take_pre_change_snapshot,
)

log = logging.getLogger(__name__)


# -- the result --------------------------------------------------------------------------


@dataclass
class StepResult:
    step: str  # create_topic, alter_configs, add_partitions, delete_topic, write_offsets
    topic: str  # the topic, or the group for write_offsets
    ok: bool
    detail: str
    skipped: bool = False

    @property
    def subject(self) -> str:
        return self.topic


@dataclass
class WriteResult:
    plan: Plan
    purpose: str
    executed: bool = False
    steps: list[StepResult] = field(default_factory=list)
    snapshot_path: str | None = None
    verify_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps) and not self.verify_problems

    @property
    def failed(self) -> list[StepResult]:
        return [s for s in self.steps if not s.ok]

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "purpose": self.purpose,
            "executed": self.executed,
            "plan": self.plan.to_dict(),
            "steps": [asdict(s) for s in self.steps],
            "pre_change_snapshot": self.snapshot_path,
            "verify_problems": list(self.verify_problems),
            "seconds": round(self.seconds, 3),
            "requests": dict(self.requests),
        }

    def render(self) -> str:
        lines = []
        for s in self.steps:
            mark = "ok  " if s.ok else ("skip" if s.skipped else "FAIL")
            lines.append(f"  [{mark}] {s.step} {s.topic}: {s.detail}")
        done = sum(s.ok for s in self.steps)
        if self.steps:
            lines.append(f"Applied {done}/{len(self.steps)} steps in {self.seconds:.2f} s.")
        for p in self.verify_problems:
            lines.append(f"  ! verify: {p}")
        if self.snapshot_path:
            lines.append(f"Pre-change snapshot: {self.snapshot_path}")
        if not self.ok:
            lines.append(self.recovery_hint())
        return "\n".join(lines)

    def recovery_hint(self) -> str:
        not_done = [s for s in self.steps if not s.ok]
        head = f"Stopped: {len(not_done)} step(s) not done; the cluster has exactly the steps marked ok."
        if self.snapshot_path:
            return (
                head
                + f" What this run deleted or overwrote is in {self.snapshot_path}: "
                + f"`ecap-ops restore {self.snapshot_path}` shows how to put it back, "
                + "`--execute` (and `--include-offsets`) does it."
            )
        return head + " Nothing was deleted or overwritten; run the command again to converge."


# -- validation --------------------------------------------------------------------------


def probe_name(topic: str) -> str:
    """A name no one uses, to ask the brokers whether `topic` could be created again while
    it still exists (validate-only creates nothing)."""
    return "ecap-ops-probe-" + hashlib.sha256(topic.encode()).hexdigest()[:24]


def _create_payload(a: Action) -> dict:
    return {
        "num_partitions": a.partitions,
        "replication_factor": a.replication_factor,
        "configs": dict(a.configs),
    }


def validate_plan(gw: KafkaGateway, plan: Plan) -> list[str]:
    """Ask the brokers to validate every create, config change and partition addition of
    the plan (validate-only: nothing changes). Returns what they would reject."""
    problems: list[str] = []
    acts = list(plan.actions)
    creates = [a for a in acts if a.kind is ActionKind.CREATE_TOPIC]
    for batch in batches(creates):
        payload = {}
        for a in batch:
            payload[probe_name(a.topic) if a.recreate else a.topic] = _create_payload(a)
        names = {probe_name(a.topic) if a.recreate else a.topic: a for a in batch}
        for name, err in gw.create_topics(payload, validate_only=True).items():
            if err:
                a = names.get(name)
                what = "re-create" if a and a.recreate else "create"
                problems.append(f"{what} topic {a.topic if a else name}: {err}")
    alters = [a for a in acts if a.kind is ActionKind.ALTER_CONFIGS]
    for batch in batches(alters):
        out = gw.alter_topic_configs(
            {a.topic: {c.key: c.new for c in a.changes} for a in batch}, validate_only=True
        )
        problems += [f"alter configs of {t}: {e}" for t, e in sorted(out.items()) if e]
    adds = [a for a in acts if a.kind is ActionKind.ADD_PARTITIONS]
    for batch in batches(adds):
        out = gw.create_partitions({a.topic: a.partitions for a in batch}, validate_only=True)
        problems += [f"add partitions to {t}: {e}" for t, e in sorted(out.items()) if e]
    access = [a for a in acts if a.kind in ACCESS_KINDS]
    if access:
        from ecap_ops.services.write_access import validate_access

        problems += validate_access(gw, access)
    return problems


# -- carrying a plan out -----------------------------------------------------------------


def _record(result: WriteResult, a: Action, ok: bool, detail: str, skipped=False) -> None:
    result.steps.append(StepResult(a.kind.value, a.subject, ok, detail, skipped))


def _run_topic_batch(gw: KafkaGateway, kind: ActionKind, batch: list[Action]) -> dict:
    if kind is ActionKind.CREATE_TOPIC:
        return gw.create_topics({a.topic: _create_payload(a) for a in batch})
    if kind is ActionKind.ALTER_CONFIGS:
        return gw.alter_topic_configs({a.topic: {c.key: c.new for c in a.changes} for a in batch})
    if kind is ActionKind.ADD_PARTITIONS:
        return gw.create_partitions({a.topic: a.partitions for a in batch})
    return gw.delete_topics([a.topic for a in batch])


def _apply_batches(gw, result: WriteResult, kind: ActionKind, actions: list[Action]) -> bool:
    """Run actions of one kind in batches; record each; False once any failed."""
    for batch in batches(actions):
        try:
            out = _run_topic_batch(gw, kind, batch)
        except EcapOpsError as exc:
            for a in batch:
                _record(
                    result,
                    a,
                    False,
                    f"unknown: the request failed ({exc}); it may or may not have been applied",
                )
            return False
        failed = False
        for a in batch:
            err = out.get(a.topic, "no answer from the broker for this topic")
            if (
                err
                and kind is ActionKind.DELETE_TOPIC
                and err.startswith("UnknownTopicOrPartition")
            ):
                _record(result, a, True, "already gone")
                continue
            _record(result, a, err is None, err or _done(kind))
            failed = failed or err is not None
        if failed:
            return False
    return True


def _done(kind: ActionKind) -> str:
    return {
        ActionKind.CREATE_TOPIC: "created",
        ActionKind.ALTER_CONFIGS: "configs set",
        ActionKind.ADD_PARTITIONS: "partitions added",
        ActionKind.DELETE_TOPIC: "deleted",
    }.get(kind, "done")


def wait_gone(gw: KafkaGateway, names: list[str], timeout_s: float = 30.0) -> list[str]:
    """Kafka deletes asynchronously: wait, bounded, until the topics are gone from the
    metadata. Returns the ones still listed."""
    deadline = time.monotonic() + timeout_s
    remaining = list(names)
    while remaining and time.monotonic() < deadline:
        try:
            remaining = sorted(gw.topics(remaining))
        except EcapOpsError as exc:
            log.warning("could not see whether the deleted topics are gone: %s", exc)
            return remaining
        if remaining:
            time.sleep(0.2)
    return remaining


def wait_for_leaders(gw: KafkaGateway, names: list[str], timeout_s: float | None = None) -> None:
    """New topics are usable once every partition's leader serves it: the metadata names a
    leader a moment before that broker answers for the partition. Wait for both, bounded
    (15 s, and a second more per hundred topics: thousands take the controller a while)."""
    if not names:
        return
    timeout_s = timeout_s if timeout_s is not None else 15.0 + len(names) / 100
    deadline = time.monotonic() + timeout_s
    meta: dict[str, TopicState] = {}
    waiting = list(names)  # asked again only for the topics still without every leader
    while time.monotonic() < deadline:
        try:
            seen = gw.topics(waiting)
        except EcapOpsError as exc:
            log.warning("could not wait for the new topics' leaders: %s", exc)
            return
        led = {n: t for n, t in seen.items() if all(p.leader is not None for p in t.partitions)}
        meta.update(led)
        waiting = [n for n in waiting if n not in led]
        if not waiting:
            break
        time.sleep(0.2)
    else:
        log.warning("new topics had no leader for every partition after %.0f s", timeout_s)
        return
    parts = [(n, p.partition) for n, t in meta.items() for p in t.partitions]
    remaining_ms = max(1000, int((deadline - time.monotonic()) * 1000))
    try:
        gw.offsets(parts, "latest", timeout_ms=remaining_ms)
    except EcapOpsError as exc:
        log.warning("new topics are not yet served by their leaders: %s", exc)


def _write_offsets(gw: KafkaGateway, result: WriteResult, actions: list[Action]) -> bool:
    from ecap_ops.core.restore import EMPTY_GROUP_STATES
    from ecap_ops.gateway.snapshot import read_group_status, write_group_offsets

    try:
        status = read_group_status(gw, [a.group for a in actions])
    except EcapOpsError as exc:
        for a in actions:
            _record(result, a, False, f"not written: the groups could not be read ({exc})")
        return False
    ok = True
    for a in actions:
        st = status.get(a.group)
        if st is not None and ((st.members or 0) > 0 or (st.state or "") not in EMPTY_GROUP_STATES):
            _record(
                result,
                a,
                False,
                f"refused: the group now has {st.members} active member(s) (state {st.state}); nothing written",
            )
            ok = False
            continue
        try:
            out = write_group_offsets(gw, a.group, {(t, p): o for t, p, o in a.offsets})
        except EcapOpsError as exc:
            _record(result, a, False, f"unknown: the request failed ({exc})")
            return False
        failed = {tp: e for tp, e in out.items() if e}
        detail = f"{len(out) - len(failed)} offset(s) written" + (
            f"; failed: {', '.join(f'{t}[{p}]: {e}' for (t, p), e in sorted(failed.items()))}"
            if failed
            else ""
        )
        _record(result, a, not failed, detail)
        ok = ok and not failed
    return ok


def execute_plan(
    gw: KafkaGateway,
    plan: Plan,
    purpose: str,
    snapshot_directory: Path | None = None,
    validated: bool = False,
    dry_run: bool = False,
) -> WriteResult:
    """Carry out a plan on the one write path (see the module's docstring). A refused plan
    or one the brokers reject in validation raises PlanRefused and changes nothing."""
    started = time.monotonic()
    before = dict(gw.requests)
    result = WriteResult(plan=plan, purpose=purpose)
    if plan.blocked:
        raise PlanRefused(
            "the plan has refused changes, so nothing was applied:\n"
            + "\n".join(f"  - {r.message}" for r in plan.refusals)
        )
    if not plan.actions:
        result.seconds = time.monotonic() - started
        return result
    if not validated:
        problems = validate_plan(gw, plan)
        if problems:
            raise PlanRefused(
                "the brokers rejected the plan in validation, so nothing was applied:\n"
                + "\n".join(f"  - {p}" for p in problems)
            )
    if dry_run:  # refused and validated exactly as a real run is; nothing changed
        result.seconds = time.monotonic() - started
        return result
    if needs_snapshot(plan):
        try:
            result.snapshot_path = str(
                take_pre_change_snapshot(gw, plan, purpose, snapshot_directory)
            )
        except OSError as exc:
            raise PlanRefused(
                f"the pre-change snapshot could not be written ({exc.strerror}: {exc.filename}); "
                "nothing was applied. Set ECAP_SNAPSHOT_DIR to a writable directory."
            ) from None
    result.executed = True
    _execute(gw, plan, result)
    _verify(gw, plan, result)
    result.seconds = time.monotonic() - started
    result.requests = {
        k: v - before.get(k, 0) for k, v in gw.requests.items() if v - before.get(k, 0)
    }
    log_changes(result.purpose, result.plan.cluster_id, result.steps, result.snapshot_path)
    return result


def _execute(gw: KafkaGateway, plan: Plan, result: WriteResult) -> None:
    acts = order(plan.actions)
    by_phase: dict[str, list[Action]] = {}
    for a in acts:
        by_phase.setdefault(phase_of(a), []).append(a)
    failed = False

    def skip(actions: list[Action]) -> None:
        for a in actions:
            _record(result, a, False, "not done: an earlier step failed", skipped=True)

    for phase, kind in (
        ("create", ActionKind.CREATE_TOPIC),
        ("alter_configs", ActionKind.ALTER_CONFIGS),
        ("add_partitions", ActionKind.ADD_PARTITIONS),
    ):
        items = by_phase.get(phase, [])
        if not items:
            continue
        if failed:
            skip(items)
            continue
        if not _apply_batches(gw, result, kind, items):
            failed = True
        if kind is ActionKind.CREATE_TOPIC:
            created = [s.topic for s in result.steps if s.step == "create_topic" and s.ok]
            wait_for_leaders(gw, created)

    failed = _access_phases(
        gw, result, by_phase, ("upsert_users", "create_acls", "alter_quotas"), failed
    )

    recreate = by_phase.get("recreate", [])
    deletes = [a for a in recreate if a.kind is ActionKind.DELETE_TOPIC]
    creates = {a.topic: a for a in recreate if a.kind is ActionKind.CREATE_TOPIC}
    if recreate and failed:
        skip(recreate)
    elif recreate:
        n = len(result.steps)
        _apply_batches(gw, result, ActionKind.DELETE_TOPIC, deletes)
        gone = [s.topic for s in result.steps[n:] if s.ok]
        failed = len(gone) < len(deletes)
        still = wait_gone(gw, gone)
        for name in still:
            result.steps.append(
                StepResult(
                    "delete_topic", name, False, "still listed 30 s after its deletion was accepted"
                )
            )
        # A topic this run deleted is always created again, even after another failure:
        # leaving it deleted would be worse than stopping.
        again = [creates[n] for n in gone if n not in still and n in creates]
        left = [creates[n] for n in creates if n not in {a.topic for a in again}]
        if again:
            n = len(result.steps)
            failed = not _apply_batches(gw, result, ActionKind.CREATE_TOPIC, again) or failed
            wait_for_leaders(gw, [s.topic for s in result.steps[n:] if s.ok])
        skip(left)
        failed = failed or bool(still)

    deletes = by_phase.get("delete", [])
    if deletes and failed:
        skip(deletes)
    elif deletes:
        n = len(result.steps)
        failed = not _apply_batches(gw, result, ActionKind.DELETE_TOPIC, deletes)
        still = wait_gone(gw, [s.topic for s in result.steps[n:] if s.ok])
        for s in result.steps[n:]:
            if s.topic in still:
                s.ok, s.detail = False, "still listed 30 s after its deletion was accepted"
                failed = True

    failed = _access_phases(gw, result, by_phase, ("delete_acls",), failed)

    writes = by_phase.get("write_offsets", [])
    if writes and failed:
        skip(writes)
    elif writes:
        _write_offsets(gw, result, writes)


_ACCESS_PHASE_KINDS = {
    "upsert_users": ActionKind.UPSERT_USER,
    "create_acls": ActionKind.CREATE_ACLS,
    "alter_quotas": ActionKind.ALTER_QUOTAS,
    "delete_acls": ActionKind.DELETE_ACLS,
}


def _access_phases(gw, result: WriteResult, by_phase, phases, failed: bool) -> bool:
    """Run access phases in order (services/write_access.py); after a failure, skip them."""
    from ecap_ops.services.write_access import run_access_phase

    for phase in phases:
        items = by_phase.get(phase, [])
        if not items:
            continue
        if failed:
            for a in items:
                _record(result, a, False, "not done: an earlier step failed", skipped=True)
            continue
        ok = run_access_phase(
            gw,
            _ACCESS_PHASE_KINDS[phase],
            items,
            lambda a, ok, detail: _record(result, a, ok, detail),
        )
        failed = not ok
    return failed


def _verify(gw: KafkaGateway, plan: Plan, result: WriteResult) -> None:
    """Read the cluster again and check every action that reported success."""
    from ecap_ops.gateway.snapshot import read_group_status

    done = {(s.step, s.topic) for s in result.steps if s.ok}
    names = sorted(
        {
            a.topic
            for a in plan.actions
            if a.kind is not ActionKind.WRITE_OFFSETS and a.kind not in ACCESS_KINDS
        }
    )
    created = {t for step, t in done if step == "create_topic"}
    groups = [a.group for a in plan.actions if ("write_offsets", a.subject) in done]
    with_access = any(a.kind in ACCESS_KINDS for a in plan.actions)
    # A broker answers reads from its copy of the metadata, which follows the controller by
    # a moment (longer on a loaded machine): a topic just created, a config just altered, an
    # ACL, SCRAM credential or quota just written may not show yet. Read again until the
    # cluster agrees or the wait is over; only then is a difference a problem.
    deadline = time.monotonic() + 10.0 + len(created) / 100
    while True:
        try:
            state = gw.read_cluster_state(names, with_data=False) if names else None
            status = read_group_status(gw, groups) if groups else {}
            access = None
            if with_access:
                from ecap_ops.gateway.access import read_access

                access = read_access(gw)
        except EcapOpsError as exc:
            result.verify_problems.append(f"the cluster could not be read back to verify: {exc}")
            return
        offsets = {g: st.offsets for g, st in status.items()}
        problems = verification_problems(plan.actions, done, state, offsets, access)
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    result.verify_problems += problems


def require_ok(result: WriteResult) -> None:
    if not result.ok:
        raise KafkaRequestFailed(
            f"{result.purpose} did not complete: "
            + "; ".join(f"{s.step} {s.topic}: {s.detail}" for s in result.steps if not s.ok)
            + "".join(f"; verify: {p}" for p in result.verify_problems)
        )
