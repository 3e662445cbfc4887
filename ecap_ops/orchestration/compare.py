"""Each non-primary cluster compared with the primary: one asset per cluster,
`<cluster>/ecap_ops/compared_with_primary`, with the check `matches_primary` (fails on
drift the catalog does not explain). Materialized by the job `<cluster>__compare_with_primary`
(daily schedule). The comparison is `services/compare.compare` (as `ecap-ops compare`)."""

import dagster as dg

from ecap_ops.catalog.model import Catalog
from ecap_ops.orchestration.cluster_scope import ClusterScope, rekey
from ecap_ops.orchestration.common import as_failure, md_table
from ecap_ops.orchestration.health import schedule_default_status
from ecap_ops.orchestration.resources import KafkaResource

CHECK = "matches_primary"


def build_defs(
    cluster: ClusterScope,
    catalog: Catalog,
    primary: ClusterScope,
    primary_catalog: Catalog,
) -> dg.Definitions:
    key = cluster.key("ecap_ops", "compared_with_primary")
    if not cluster.prefixed:
        key = dg.AssetKey([cluster.cluster, "ecap_ops", "compared_with_primary"])

    def _compared(
        context: dg.AssetExecutionContext, here: KafkaResource, primary_kafka: KafkaResource
    ):
        yield from _compare(context, here, primary_kafka)

    asset = dg.asset(
        key=key,
        group_name=cluster.group("cluster_comparison")
        if cluster.prefixed
        else f"{cluster.cluster}__cluster_comparison",
        description=cluster.describe(
            f"Cluster {cluster.cluster} compared with the primary {primary.cluster}: topics, "
            "partitions, replication, topic-level overrides, ACL bindings and consumer groups, "
            f"each side judged by its catalog environment ({catalog.env} here, "
            f"{primary_catalog.env} on the primary). Differences the environments' overlays "
            "explain are expected; the rest is drift and fails the check matches_primary."
        ),
        kinds={"kafka"},
        tags=cluster.tags,
        check_specs=[
            dg.AssetCheckSpec(
                CHECK,
                asset=key,
                description=f"No drift between {cluster.cluster} and {primary.cluster} beyond what the catalog explains.",
            )
        ],
    )(rekey(_compared, {"here": cluster.resource_key, "primary_kafka": primary.resource_key}))

    def _compare(context, here, primary_kafka):
        from ecap_ops.services.compare import compare

        with as_failure(f"comparing {cluster.cluster} with {primary.cluster}"):
            result = compare(
                primary.cluster,
                primary_kafka.settings(),
                primary_catalog,
                cluster.cluster,
                here.settings(),
                catalog,
            )
        rows = [[d.status, d.kind, d.subject, d.a, d.b, d.reason] for d in result.differences]
        table = md_table(
            ["status", "kind", "subject", primary.cluster, cluster.cluster, "why"], rows[:500]
        )
        meta = {
            "drift": dg.MetadataValue.int(len(result.drift)),
            "expected": dg.MetadataValue.int(len(result.expected)),
            "notes": dg.MetadataValue.int(len(result.notes)),
            "topics_compared": dg.MetadataValue.int(result.topics_compared),
            "differences": dg.MetadataValue.md(table if rows else "none"),
        }
        context.log.info(
            f"{cluster.cluster} vs {primary.cluster}: {len(result.drift)} drift, "
            f"{len(result.expected)} expected, {len(result.notes)} note(s)"
        )
        yield dg.MaterializeResult(metadata=meta)
        yield dg.AssetCheckResult(
            check_name=CHECK,
            asset_key=key,
            passed=not result.drift,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                "no drift"
                if not result.drift
                else "; ".join(f"{d.kind} {d.subject}: {d.reason}" for d in result.drift[:5])[:1000]
            ),
            metadata={"drift": dg.MetadataValue.int(len(result.drift))},
        )

    job = dg.define_asset_job(
        f"{cluster.cluster}__compare_with_primary",
        selection=dg.AssetSelection.assets(key),
        description=cluster.describe(
            f"Compare {cluster.cluster} with the primary {primary.cluster}."
        ),
        tags=cluster.tags,
    )
    schedule = dg.ScheduleDefinition(
        name=f"{cluster.cluster}__compare_with_primary_schedule",
        job=job,
        cron_schedule="17 6 * * *",
        default_status=schedule_default_status(),
        description=cluster.describe("The comparison with the primary, daily at 06:17."),
    )
    return dg.Definitions(assets=[asset], jobs=[job], schedules=[schedule])
