"""One asset per catalog topic; checks that it matches the catalog, is available and
fully replicated; and the job `provision_topics` that reconciles them all, one at a time.

The topic checks follow one rule, the health check's: the same health observation
(`services.health.run_health_check`) and the same catalog plan judge them whether they run
after provisioning or every 5 minutes inside `kafka_health_check`
(`topic_check_outcomes`)."""

from collections.abc import Iterable
from dataclasses import dataclass, field

import dagster as dg

from ecap_ops.catalog.model import Catalog, TopicSpec
from ecap_ops.orchestration.common import as_failure, md_table
from ecap_ops.orchestration.resources import KafkaResource

GROUP = "kafka_topics"
# Runs carrying this tag change topics; dagster.yaml's run coordinator lets one at a time run.
PROVISIONING_TAG = {"ecap_ops/provisioning": "topics"}
CHECK_NAMES = ("matches_catalog", "availability", "replication")


class ReconcileTopicConfig(dg.Config):
    """Reconciling a topic applies its plan. Destructive changes (a retention decrease or a
    cleanup.policy change on a topic that holds data) are refused unless acknowledged."""

    acknowledge_destructive: bool = False


def topic_key(spec: TopicSpec) -> dg.AssetKey:
    return dg.AssetKey(["kafka", spec.name])


def _topic_metadata(d: dict) -> dict:
    parts = d["partitions"]
    leaders = sorted({p["leader"] for p in parts if p["leader"] is not None})
    under = [p["partition"] for p in parts if len(p["isr"]) < len(p["replicas"])]
    offline = [p["partition"] for p in parts if p["leader"] is None]
    return {
        "partitions": dg.MetadataValue.int(len(parts)),
        "replication_factor": dg.MetadataValue.int(d["replication_factor"]),
        "records": dg.MetadataValue.int(d["records"] or 0),
        "end_offsets_total": dg.MetadataValue.int(sum(p["end_offset"] or 0 for p in parts)),
        "under_replicated_partitions": dg.MetadataValue.int(len(under)),
        "offline_partitions": dg.MetadataValue.int(len(offline)),
        "leaders": dg.MetadataValue.text(", ".join(map(str, leaders)) or "none"),
        "overrides": dg.MetadataValue.json(d["overrides"]),
        "topic_id": dg.MetadataValue.text(str(d["topic_id"])),
        "cluster_id": dg.MetadataValue.text(d["cluster_id"]),
        "partition_table": dg.MetadataValue.md(
            md_table(
                ["partition", "leader", "replicas", "isr", "start", "end"],
                [
                    [
                        p["partition"],
                        p["leader"] if p["leader"] is not None else "OFFLINE",
                        p["replicas"],
                        p["isr"],
                        p["start_offset"],
                        p["end_offset"],
                    ]
                    for p in parts
                ],
            )
        ),
    }


def build_topic_asset(catalog: Catalog, spec: TopicSpec) -> dg.AssetsDefinition:
    single = catalog.select([spec.name])
    vol = (
        f" Expected volume: {spec.expected_volume.min_per_hour:,}-{spec.expected_volume.max_per_hour:,} events/hour."
        if spec.expected_volume
        else ""
    )

    @dg.asset(
        key=topic_key(spec),
        group_name=GROUP,
        description=f"Kafka topic `{spec.name}`: {spec.purpose}. {spec.partitions} partitions, "
        f"replication {spec.replication_factor}, key `{spec.partition_key or '-'}`.{vol} "
        "Materializing reconciles the topic with the catalog (plan, then apply).",
        kinds={"kafka"},
        metadata={
            "catalog_configs": dg.MetadataValue.json(spec.configs),
            "partition_key": spec.partition_key or "",
        },
    )
    def _topic(
        context: dg.AssetExecutionContext, config: ReconcileTopicConfig, kafka: KafkaResource
    ) -> dg.MaterializeResult:
        from ecap_ops.core.plan import render_plan
        from ecap_ops.services.provisioning import apply_topics
        from ecap_ops.services.topics import describe_topic

        ack = frozenset({"*"}) if config.acknowledge_destructive else frozenset()
        with as_failure(f"reconciling topic {spec.name}"), kafka.gateway() as gw:
            # Applied with this topic alone, so only it changes; shown as this topic's part
            # of the plan (the other topics are not "unmanaged": they are the catalog's).
            result = apply_topics(gw, single, ack)
            plan = result.plan.for_topic(spec.name)
            context.log.info(render_plan(plan))
            for s in result.steps:
                context.log.info(f"{s.step} {s.topic}: {s.detail}")
            if not result.ok:
                raise dg.Failure(
                    description=f"reconciling {spec.name} failed: "
                    + "; ".join(f"{s.step}: {s.detail}" for s in result.failed)
                )
            d = describe_topic(gw, single, spec.name)
        meta = _topic_metadata(d)
        meta["applied_steps"] = dg.MetadataValue.int(len(result.steps))
        meta["plan"] = dg.MetadataValue.md("```\n" + render_plan(plan) + "\n```")
        return dg.MaterializeResult(metadata=meta)

    return _topic


# -- the topic checks: one rule, the health check's --------------------------------------


@dataclass(frozen=True)
class CheckOutcome:
    """One topic check's result, before it is a Dagster event."""

    topic: str
    check: str  # one of CHECK_NAMES
    passed: bool
    severity: str  # WARN or ERROR: how bad a failure is (the health finding's CRIT is ERROR)
    description: str
    metadata: dict = field(default_factory=dict)

    def key(self, catalog: Catalog) -> dg.AssetKey:
        return topic_key(catalog.get(self.topic))

    def result(self, catalog: Catalog) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            asset_key=self.key(catalog),
            check_name=self.check,
            passed=self.passed,
            severity=dg.AssetCheckSeverity[self.severity],
            description=self.description,
            metadata=self.metadata,
        )

    def evaluation(self, catalog: Catalog) -> dg.AssetCheckEvaluation:
        return dg.AssetCheckEvaluation(
            asset_key=self.key(catalog),
            check_name=self.check,
            passed=self.passed,
            severity=dg.AssetCheckSeverity[self.severity],
            description=self.description,
            metadata=self.metadata,
        )


def _severity(health_severity: str) -> str:
    return "ERROR" if health_severity == "CRIT" else "WARN"


def _catalog_finding_severity(report, prefix: str, default: str) -> str:
    for f in report.findings:
        if f.check == "catalog" and f.message.startswith(prefix):
            return f.severity
    return default


def _drift_rows(spec: TopicSpec, topic, plan) -> list[list]:
    """What differs between the catalog's `spec` and the observed `topic`, as the plan
    sees it: (setting, expected, actual) rows; empty when the topic matches."""
    if topic is None:
        return [["exists", "yes", "no"]]
    rows: list[list] = []
    if topic.partition_count != spec.partitions:
        rows.append(["partitions", spec.partitions, topic.partition_count])
    if topic.replication_factor != spec.replication_factor:
        rows.append(["replication_factor", spec.replication_factor, topic.replication_factor])
    for a in plan.actions:
        for c in a.changes:
            rows.append(
                [
                    c.key,
                    c.new if c.new is not None else f"(default {c.new_effective})",
                    c.old if c.old is not None else f"(default {c.old_effective})",
                ]
            )
    return rows


def topic_check_outcomes(
    catalog: Catalog, report, state=None, plan=None, names: Iterable[str] | None = None
) -> list[CheckOutcome]:
    """The topic assets' checks from one health report (availability, replication) and
    the catalog plan made from the same observation's state (matches_catalog). `state`
    and `plan` None: the cluster could not be compared with the catalog (matches_catalog
    fails and says why). Used by the provisioning checks and by the health job alike."""
    from ecap_ops.core.health import CRIT, WARN

    wanted = list(names) if names is not None else catalog.names()
    prod = catalog.env != "dev"
    out: list[CheckOutcome] = []
    for name in wanted:
        spec = catalog.get(name)
        partitions = report.topic_partitions.get(name)
        source = {"source": dg.MetadataValue.text("health observation")}
        # matches_catalog
        if state is None or plan is None:
            why = (
                "the cluster did not answer"
                if report.cluster_id is None
                else "the cluster could not be compared with the catalog"
            )
            out.append(CheckOutcome(name, "matches_catalog", False, "ERROR", why))
        else:
            topic = state.topics.get(name)
            rows = _drift_rows(spec, topic, plan.for_topic(name))
            if topic is None:
                sev = _catalog_finding_severity(
                    report, "catalog topic(s) missing", CRIT if prod else WARN
                )
                desc = f"{name} does not exist (health check: catalog topic missing)"
            else:
                sev = _catalog_finding_severity(report, "differs from the catalog", WARN)
                desc = (
                    f"{name} matches the catalog"
                    if not rows
                    else f"{name} differs from the catalog in {len(rows)} setting(s): "
                    + "; ".join(f"{r[0]} expected {r[1]}, actual {r[2]}" for r in rows[:5])
                )
            out.append(
                CheckOutcome(
                    name,
                    "matches_catalog",
                    not rows,
                    _severity(sev),
                    desc,
                    {
                        "drift": dg.MetadataValue.md(
                            md_table(["setting", "expected", "actual"], rows) if rows else "none"
                        ),
                        "drift_count": dg.MetadataValue.int(len(rows)),
                        "expected": dg.MetadataValue.json(
                            {
                                "partitions": spec.partitions,
                                "replication_factor": spec.replication_factor,
                                "configs": spec.configs,
                            }
                        ),
                        "actual": dg.MetadataValue.json(
                            None
                            if topic is None
                            else {
                                "partitions": topic.partition_count,
                                "replication_factor": topic.replication_factor,
                                "configs": topic.overrides,
                            }
                        ),
                        **source,
                    },
                )
            )
        # availability and replication
        if partitions is None:
            why = (
                "the cluster did not answer"
                if report.cluster_id is None
                else f"{name} does not exist"
            )
            for check in ("availability", "replication"):
                out.append(CheckOutcome(name, check, False, "ERROR", why, dict(source)))
            continue
        offline = report.offline.get(name, [])
        under = report.under_replicated.get(name, [])
        under_min = report.under_min_isr.get(name, [])
        out.append(
            CheckOutcome(
                name,
                "availability",
                not offline,
                "ERROR",
                "all partitions have a leader"
                if not offline
                else f"offline partitions (no leader): {offline}",
                {
                    "offline_partitions": dg.MetadataValue.int(len(offline)),
                    "partitions": dg.MetadataValue.int(partitions),
                    **source,
                },
            )
        )
        out.append(
            CheckOutcome(
                name,
                "replication",
                not under and not under_min,
                "ERROR" if under_min else "WARN",
                "fully replicated"
                if not under and not under_min
                else f"under-replicated partitions: {under}"
                + (f"; below min.insync.replicas: {under_min}" if under_min else ""),
                {
                    "under_replicated": dg.MetadataValue.int(len(under)),
                    "under_min_isr": dg.MetadataValue.int(len(under_min)),
                    **source,
                },
            )
        )
    return out


def observe_topic_checks(
    gw, catalog: Catalog, names: Iterable[str] | None = None
) -> list[CheckOutcome]:
    """Observe the cluster once (the health check without its canary, plus the catalog
    plan) and judge the named topics' checks."""
    from ecap_ops.core.plan import make_plan
    from ecap_ops.services.health import run_health_check

    report = run_health_check(gw, catalog, canary=False)
    state = plan = None
    if report.cluster_id is not None:
        state = gw.read_cluster_state(catalog.names(), with_data=False)
        plan = make_plan(catalog, state)
    return topic_check_outcomes(catalog, report, state, plan, names)


def build_topic_checks(catalog: Catalog, spec: TopicSpec) -> list[dg.AssetChecksDefinition]:
    """The three checks of one topic as separate definitions (for running one by hand);
    the code location uses `build_catalog_checks`, which observes the cluster once."""
    key = topic_key(spec)
    descriptions = _check_descriptions(spec)

    def make(check: str) -> dg.AssetChecksDefinition:
        @dg.asset_check(asset=key, name=check, description=descriptions[check])
        def _check(kafka: KafkaResource) -> dg.AssetCheckResult:
            with as_failure(f"checking {spec.name}"), kafka.gateway() as gw:
                (outcome,) = [
                    o for o in observe_topic_checks(gw, catalog, [spec.name]) if o.check == check
                ]
            return outcome.result(catalog)

        return _check

    return [make(c) for c in CHECK_NAMES]


def _check_descriptions(spec: TopicSpec) -> dict[str, str]:
    return {
        "matches_catalog": f"`{spec.name}` exists with exactly the catalog's partitions, replication and "
        "topic-level overrides. Evaluated after provisioning and by every kafka_health_check run.",
        "availability": f"Every partition of `{spec.name}` has a leader (none offline). Evaluated after "
        "provisioning and by every kafka_health_check run.",
        "replication": f"Every partition of `{spec.name}` has its full replica set in sync, and at least "
        "min.insync.replicas. Evaluated after provisioning and by every kafka_health_check run.",
    }


def build_catalog_checks(catalog: Catalog) -> dg.AssetChecksDefinition:
    """Every topic's matches_catalog, availability and replication checks, from one
    observation of the cluster (runs the selected ones only)."""
    specs = [
        dg.AssetCheckSpec(
            name=check,
            asset=topic_key(spec),
            description=_check_descriptions(spec)[check],
            blocking=False,
        )
        for spec in catalog.topics
        for check in CHECK_NAMES
    ]
    by_key = {topic_key(s).to_user_string(): s.name for s in catalog.topics}

    @dg.multi_asset_check(
        name="kafka_topic_checks",
        specs=specs,
        can_subset=True,
        description="The topic assets' checks, judged from one health observation of the cluster.",
    )
    def kafka_topic_checks(context: dg.AssetCheckExecutionContext, kafka: KafkaResource):
        selected = context.selected_asset_check_keys
        names = sorted({by_key[k.asset_key.to_user_string()] for k in selected})
        wanted = {(by_key[k.asset_key.to_user_string()], k.name) for k in selected}
        with as_failure("checking the catalog topics"), kafka.gateway() as gw:
            outcomes = observe_topic_checks(gw, catalog, names)
        for o in outcomes:
            if (o.topic, o.check) in wanted:
                yield o.result(catalog)

    return kafka_topic_checks


def build_defs(catalog: Catalog) -> dg.Definitions:
    assets = [build_topic_asset(catalog, spec) for spec in catalog.topics]
    provision_topics = dg.define_asset_job(
        "provision_topics",
        selection=dg.AssetSelection.groups(GROUP),
        description="Reconcile every catalog topic with the cluster (plan, then apply), one topic at a time, then run the topic checks. Never deletes a topic.",
        executor_def=dg.in_process_executor,
        tags=PROVISIONING_TAG,
    )
    return dg.Definitions(
        assets=assets, asset_checks=[build_catalog_checks(catalog)], jobs=[provision_topics]
    )
