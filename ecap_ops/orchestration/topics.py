"""One asset per catalog topic; checks that it matches the catalog, is available and
fully replicated; and the job `provision_topics` that reconciles them all, one at a time."""

import dagster as dg

from ecap_ops.catalog.model import Catalog, TopicSpec
from ecap_ops.core.plan import make_plan
from ecap_ops.orchestration.common import as_failure, md_table
from ecap_ops.orchestration.resources import KafkaResource

GROUP = "kafka_topics"
# Runs carrying this tag change topics; dagster.yaml's run coordinator lets one at a time run.
PROVISIONING_TAG = {"ecap_ops/provisioning": "topics"}


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
            result = apply_topics(gw, single, ack)
            context.log.info(render_plan(result.plan))
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
        meta["plan"] = dg.MetadataValue.md("```\n" + render_plan(result.plan) + "\n```")
        return dg.MaterializeResult(metadata=meta)

    return _topic


def build_topic_checks(catalog: Catalog, spec: TopicSpec) -> list[dg.AssetChecksDefinition]:
    single = catalog.select([spec.name])
    key = topic_key(spec)

    @dg.asset_check(
        asset=key,
        name="matches_catalog",
        description=f"`{spec.name}` exists with exactly the catalog's partitions, replication and topic-level overrides.",
    )
    def matches_catalog(kafka: KafkaResource) -> dg.AssetCheckResult:
        with as_failure(f"checking {spec.name} against the catalog"), kafka.gateway() as gw:
            state = gw.read_cluster_state([spec.name])
        plan = make_plan(single, state)
        topic = state.topics.get(spec.name)
        rows = []
        if topic is None:
            rows.append(["exists", "yes", "no"])
        else:
            if topic.partition_count != spec.partitions:
                rows.append(["partitions", spec.partitions, topic.partition_count])
            if topic.replication_factor != spec.replication_factor:
                rows.append(
                    ["replication_factor", spec.replication_factor, topic.replication_factor]
                )
            for a in plan.actions:
                for c in a.changes:
                    rows.append(
                        [
                            c.key,
                            c.new if c.new is not None else f"(default {c.new_effective})",
                            c.old if c.old is not None else f"(default {c.old_effective})",
                        ]
                    )
        passed = not rows
        return dg.AssetCheckResult(
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"{spec.name} matches the catalog"
            if passed
            else f"{spec.name} differs from the catalog in {len(rows)} setting(s)",
            metadata={
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
            },
        )

    @dg.asset_check(
        asset=key,
        name="availability",
        description=f"Every partition of `{spec.name}` has a leader (none offline).",
    )
    def availability(kafka: KafkaResource) -> dg.AssetCheckResult:
        with as_failure(f"checking availability of {spec.name}"), kafka.gateway() as gw:
            meta = gw.describe_topics([spec.name]).get(spec.name)
        if meta is None:
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
                description=f"{spec.name} does not exist",
                metadata={"offline_partitions": -1},
            )
        offline = [p["partition_index"] for p in meta["partitions"] if p.get("leader_id", -1) < 0]
        return dg.AssetCheckResult(
            passed=not offline,
            severity=dg.AssetCheckSeverity.ERROR,
            description="all partitions have a leader"
            if not offline
            else f"offline partitions: {offline}",
            metadata={
                "offline_partitions": dg.MetadataValue.int(len(offline)),
                "partitions": dg.MetadataValue.int(len(meta["partitions"])),
            },
        )

    @dg.asset_check(
        asset=key,
        name="replication",
        description=f"Every partition of `{spec.name}` has its full replica set in sync, and at least min.insync.replicas.",
    )
    def replication(kafka: KafkaResource) -> dg.AssetCheckResult:
        with as_failure(f"checking replication of {spec.name}"), kafka.gateway() as gw:
            meta = gw.describe_topics([spec.name]).get(spec.name)
            overrides = gw.topic_overrides([spec.name]).get(spec.name, ({}, {}))[0] if meta else {}
        if meta is None:
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
                description=f"{spec.name} does not exist",
                metadata={"under_replicated": -1},
            )
        min_isr = int(
            overrides.get("min.insync.replicas", spec.configs.get("min.insync.replicas", "1"))
        )
        under = [
            p["partition_index"]
            for p in meta["partitions"]
            if len(p.get("isr_nodes") or []) < len(p.get("replica_nodes") or [])
        ]
        under_min = [
            p["partition_index"]
            for p in meta["partitions"]
            if len(p.get("isr_nodes") or []) < min_isr
        ]
        passed = not under and not under_min
        return dg.AssetCheckResult(
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR if under_min else dg.AssetCheckSeverity.WARN,
            description="fully replicated"
            if passed
            else f"under-replicated partitions: {under}"
            + (f"; below min.insync.replicas={min_isr}: {under_min}" if under_min else ""),
            metadata={
                "under_replicated": dg.MetadataValue.int(len(under)),
                "under_min_isr": dg.MetadataValue.int(len(under_min)),
                "min_insync_replicas": dg.MetadataValue.int(min_isr),
            },
        )

    return [matches_catalog, availability, replication]


def build_defs(catalog: Catalog) -> dg.Definitions:
    assets = [build_topic_asset(catalog, spec) for spec in catalog.topics]
    checks = [c for spec in catalog.topics for c in build_topic_checks(catalog, spec)]
    provision_topics = dg.define_asset_job(
        "provision_topics",
        selection=dg.AssetSelection.groups(GROUP),
        description="Reconcile every catalog topic with the cluster (plan, then apply), one topic at a time, then run the topic checks. Never deletes a topic.",
        executor_def=dg.in_process_executor,
        tags=PROVISIONING_TAG,
    )
    return dg.Definitions(assets=assets, asset_checks=checks, jobs=[provision_topics])
