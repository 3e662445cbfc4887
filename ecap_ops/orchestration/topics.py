"""One asset per catalog topic; checks that it matches the catalog, is available and
fully replicated; and the job `provision_topics` that reconciles them all, one at a time.

The topic checks follow one rule, the health check's: one health check
(`services.health.check_health`: one read of the cluster, its partition health and its
catalog drift) judges them, by `core.topic_checks`, whether they run after provisioning
(`services.health.observe_topic_checks`) or every 5 minutes inside `kafka_health_check`.
This module only turns the outcomes into Dagster check events."""

__all__ = ["CHECK_NAMES", "CheckOutcome", "check_evaluation", "check_result"]

import dagster as dg

from ecap_ops.catalog.model import Catalog, TopicSpec
from ecap_ops.core.topic_checks import CHECK_NAMES, CheckOutcome
from ecap_ops.orchestration.cluster_scope import SINGLE, ClusterScope
from ecap_ops.orchestration.common import as_failure, md_table
from ecap_ops.orchestration.resources import KafkaResource

GROUP = "kafka_topics"
# Runs carrying this tag change topics; dagster.yaml's run coordinator lets one at a time run.
PROVISIONING_TAG = {"ecap_ops/provisioning": "topics"}


class ReconcileTopicConfig(dg.Config):
    """Reconciling a topic applies its plan. Destructive changes (a retention decrease or a
    cleanup.policy change on a topic that holds data) are refused unless acknowledged."""

    acknowledge_destructive: bool = False


def topic_key(spec: TopicSpec, cluster: ClusterScope = SINGLE) -> dg.AssetKey:
    return cluster.key("kafka", spec.name)


def _topic_metadata(d: dict) -> dict:
    from ecap_ops.core.partition_health import topic_partition_health
    from ecap_ops.core.state import PartitionState

    parts = d["partitions"]
    leaders = sorted({p["leader"] for p in parts if p["leader"] is not None})
    health = topic_partition_health(
        (
            PartitionState(p["partition"], p["leader"], tuple(p["replicas"]), tuple(p["isr"]))
            for p in parts
        ),
        min_isr=0,  # describe-topic's data says nothing of min.insync.replicas: not judged
    )
    under, offline = health.under_replicated, health.offline
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


def build_topic_asset(
    catalog: Catalog, spec: TopicSpec, cluster: ClusterScope = SINGLE
) -> dg.AssetsDefinition:
    single = catalog.select([spec.name])
    vol = (
        f" Expected volume: {spec.expected_volume.min_per_hour:,}-{spec.expected_volume.max_per_hour:,} events/hour."
        if spec.expected_volume
        else ""
    )

    @dg.asset(
        key=topic_key(spec, cluster),
        group_name=cluster.group(GROUP),
        description=cluster.describe(
            f"Kafka topic `{spec.name}`: {spec.purpose}. {spec.partitions} partitions, "
            f"replication {spec.replication_factor}, key `{spec.partition_key or '-'}`.{vol} "
            "Materializing reconciles the topic with the catalog (plan, then apply)."
        ),
        kinds={"kafka"},
        tags=cluster.tags,
        metadata={
            "catalog_configs": dg.MetadataValue.json(spec.configs),
            "partition_key": spec.partition_key or "",
        },
    )
    @cluster.bind
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


def _metadata_value(kind: str, value) -> dg.MetadataValue:
    if kind == "table":
        headers, rows = value
        return dg.MetadataValue.md(md_table(headers, rows) if rows else "none")
    return getattr(dg.MetadataValue, kind)(value)


def _check_fields(outcome: CheckOutcome, catalog: Catalog, cluster: ClusterScope) -> dict:
    return dict(
        asset_key=topic_key(catalog.get(outcome.topic), cluster),
        check_name=outcome.check,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity[outcome.severity],
        description=outcome.description,
        metadata={k: _metadata_value(kind, v) for k, (kind, v) in outcome.metadata.items()},
    )


def check_result(
    outcome: CheckOutcome, catalog: Catalog, cluster: ClusterScope = SINGLE
) -> dg.AssetCheckResult:
    """A topic check's outcome as the result of a check that runs on its own."""
    return dg.AssetCheckResult(**_check_fields(outcome, catalog, cluster))


def check_evaluation(
    outcome: CheckOutcome, catalog: Catalog, cluster: ClusterScope = SINGLE
) -> dg.AssetCheckEvaluation:
    """A topic check's outcome as an evaluation recorded by another op (the health job)."""
    return dg.AssetCheckEvaluation(**_check_fields(outcome, catalog, cluster))


def build_topic_checks(catalog: Catalog, spec: TopicSpec) -> list[dg.AssetChecksDefinition]:
    """The three checks of one topic as separate definitions (for running one by hand);
    the code location uses `build_catalog_checks`, which observes the cluster once."""
    key = topic_key(spec)
    descriptions = _check_descriptions(spec)

    def make(check: str) -> dg.AssetChecksDefinition:
        @dg.asset_check(asset=key, name=check, description=descriptions[check])
        def _check(kafka: KafkaResource) -> dg.AssetCheckResult:
            from ecap_ops.services.health import observe_topic_checks

            with as_failure(f"checking {spec.name}"), kafka.gateway() as gw:
                (outcome,) = [
                    o for o in observe_topic_checks(gw, catalog, [spec.name]) if o.check == check
                ]
            return check_result(outcome, catalog)

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


def build_catalog_checks(
    catalog: Catalog, cluster: ClusterScope = SINGLE
) -> dg.AssetChecksDefinition:
    """Every topic's matches_catalog, availability and replication checks, from one
    observation of the cluster (runs the selected ones only)."""
    specs = [
        dg.AssetCheckSpec(
            name=check,
            asset=topic_key(spec, cluster),
            description=_check_descriptions(spec)[check],
            blocking=False,
        )
        for spec in catalog.topics
        for check in CHECK_NAMES
    ]
    by_key = {topic_key(s, cluster).to_user_string(): s.name for s in catalog.topics}

    @dg.multi_asset_check(
        name=cluster.name("kafka_topic_checks"),
        specs=specs,
        can_subset=True,
        description=cluster.describe(
            "The topic assets' checks, judged from one health observation of the cluster."
        ),
    )
    @cluster.bind
    def kafka_topic_checks(context: dg.AssetCheckExecutionContext, kafka: KafkaResource):
        from ecap_ops.services.health import observe_topic_checks

        selected = context.selected_asset_check_keys
        names = sorted({by_key[k.asset_key.to_user_string()] for k in selected})
        wanted = {(by_key[k.asset_key.to_user_string()], k.name) for k in selected}
        with as_failure("checking the catalog topics"), kafka.gateway() as gw:
            outcomes = observe_topic_checks(gw, catalog, names)
        for o in outcomes:
            if (o.topic, o.check) in wanted:
                yield check_result(o, catalog, cluster)

    return kafka_topic_checks


def build_defs(catalog: Catalog, cluster: ClusterScope = SINGLE) -> dg.Definitions:
    assets = [build_topic_asset(catalog, spec, cluster) for spec in catalog.topics]
    provision_topics = dg.define_asset_job(
        cluster.name("provision_topics"),
        selection=dg.AssetSelection.groups(cluster.group(GROUP)),
        description=cluster.describe(
            "Reconcile every catalog topic with the cluster (plan, then apply), one topic at a time, then run the topic checks. Never deletes a topic."
        ),
        executor_def=dg.in_process_executor,
        tags={**PROVISIONING_TAG, **cluster.tags},
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=[build_catalog_checks(catalog, cluster)],
        jobs=[provision_topics],
    )
