"""The asset `retention_audit` (group `audits`, daily): every topic's retention against the
catalog and the real age and size of its data, with a disk forecast.

The report is a pandas DataFrame kept by the IO manager as a file (one row a topic) and
shown as a table in the asset's metadata, with numeric metadata the UI plots over time.
"""

from datetime import timedelta

import dagster as dg
from pydantic import Field

from ecap_ops.catalog.model import Catalog
from ecap_ops.orchestration.cluster_scope import SINGLE, ClusterScope
from ecap_ops.orchestration.common import as_failure
from ecap_ops.orchestration.health import schedule_default_status
from ecap_ops.orchestration.resources import KafkaResource

GROUP = "audits"
# Daily at 03:30 UTC. The audit is fresh while the newest one is at most a day and a bit old
# (a run that starts late or takes a while does not warn); missing one day's run warns,
# missing two fails.
AUDIT_CRON = "30 3 * * *"
AUDIT_FRESHNESS = dg.FreshnessPolicy.time_window(
    warn_window=timedelta(hours=26), fail_window=timedelta(hours=50)
)
TABLE_COLUMNS = [
    ("topic", "string"),
    ("kind", "string"),
    ("cleanup_policy", "string"),
    ("retention", "string"),
    ("expected_retention", "string"),
    ("bytes_on_disk", "int"),
    ("records", "int"),
    ("oldest_age", "string"),
    ("status", "string"),
    ("flags", "string"),
    ("notes", "string"),
]


class RetentionAuditConfig(dg.Config):
    """How the audit judges topics outside the catalog, and how often it runs."""

    interval_hours: float = Field(
        default=24.0,
        ge=0,
        description="The audit's own interval: part of the grace before data counts as older than retention.",
    )
    default_retention_days: float = Field(
        default=7.0, gt=0, description="Retention expected of a topic outside the catalog."
    )
    max_retention_days: float = Field(
        default=30.0, gt=0, description="Longest retention allowed to a topic outside the catalog."
    )
    include_internal: bool = Field(default=False, description="Audit Kafka's internal topics too.")


def _table_records(report) -> list[dg.TableRecord]:
    from ecap_ops.core.retention import _dur

    out = []
    for r in report.rows:
        out.append(
            dg.TableRecord(
                {
                    "topic": r.topic,
                    "kind": "catalog" if r.managed else ("internal" if r.internal else "unmanaged"),
                    "cleanup_policy": r.cleanup_policy,
                    "retention": _dur(r.retention_ms),
                    "expected_retention": _dur(r.expected_retention_ms)
                    if r.expected_retention_ms is not None
                    else "",
                    "bytes_on_disk": r.bytes_on_disk,
                    "records": r.records,
                    "oldest_age": _dur(r.oldest_age_ms) if r.oldest_age_ms is not None else "",
                    "status": r.status.upper(),
                    "flags": "; ".join(r.flags),
                    "notes": "; ".join(r.notes),
                }
            )
        )
    return out


def build_defs(catalog: Catalog, cluster: ClusterScope = SINGLE) -> dg.Definitions:
    """The retention audit of one cluster (`cluster`: its names and its resource; SINGLE:
    the single-cluster names, `retention_audit` on resource `kafka`)."""

    @dg.asset(
        key=cluster.key("retention_audit"),
        group_name=cluster.group(GROUP),
        kinds={"kafka", "pandas"},
        freshness_policy=AUDIT_FRESHNESS,
        tags=cluster.tags,
        description=cluster.describe(
            "Retention audit of every topic: retention.ms, retention.bytes, cleanup.policy and segment.ms against the catalog "
            "(or the default policy), bytes on disk and the oldest record's age, data older than retention + segment.ms + the audit's interval, "
            "infinite retention, compaction settings, and days until the brokers' disks fill. Taken daily by retention_audit_schedule; "
            "stale (warning) when the newest audit is over 26 hours old, failing over 50."
        ),
    )
    @cluster.bind
    def retention_audit(
        context: dg.AssetExecutionContext, config: RetentionAuditConfig, kafka: KafkaResource
    ):
        import pandas as pd

        from ecap_ops.core.retention import DAY_MS, DefaultPolicy, render_forecast
        from ecap_ops.orchestration.common import md_table
        from ecap_ops.services.retention import run_retention_audit

        if config.default_retention_days > config.max_retention_days:
            raise dg.Failure(
                description=f"config default_retention_days ({config.default_retention_days}) exceeds max_retention_days ({config.max_retention_days})"
            )
        policy = DefaultPolicy(
            retention_ms=int(config.default_retention_days * DAY_MS),
            max_retention_ms=int(config.max_retention_days * DAY_MS),
        )
        with as_failure("retention audit"), kafka.gateway() as gw:
            report = run_retention_audit(
                gw,
                catalog,
                interval_ms=int(config.interval_hours * 3_600_000),
                policy=policy,
                include_internal=config.include_internal,
            )
            requests = gw.request_count
        df = pd.DataFrame([r.as_record() for r in report.rows])
        f = report.forecast
        for r in report.flagged:
            context.log.warning(f"{r.topic}: " + "; ".join(r.flags))
        flagged_md = (
            md_table(["topic", "flags"], [[r.topic, "; ".join(r.flags)] for r in report.flagged])
            if report.flagged
            else "none"
        )
        metadata = {
            "report": dg.MetadataValue.table(
                _table_records(report),
                schema=dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in TABLE_COLUMNS]),
            ),
            "flagged": dg.MetadataValue.md(flagged_md),
            "topics": dg.MetadataValue.int(len(report.rows)),
            "flagged_topics": dg.MetadataValue.int(len(report.flagged)),
            "bytes_on_disk_total": dg.MetadataValue.int(
                sum(r.bytes_on_disk or 0 for r in report.rows)
            ),
            "infinite_retention_topics": dg.MetadataValue.int(
                sum(r.infinite_retention for r in report.rows)
            ),
            "stale_data_topics": dg.MetadataValue.int(
                sum(r.data_older_than_retention for r in report.rows)
            ),
            "forecast": dg.MetadataValue.text(render_forecast(f, report.scope)),
            "requests": dg.MetadataValue.int(requests),
            "scope": dg.MetadataValue.text(report.scope or "every topic"),
        }
        if f.days_until_full is not None:
            metadata["days_until_disk_full"] = dg.MetadataValue.float(round(f.days_until_full, 2))
        if f.free_bytes is not None:
            metadata["disk_free_bytes"] = dg.MetadataValue.int(f.free_bytes)
        return dg.Output(df, metadata=metadata)

    job = dg.define_asset_job(
        cluster.name("retention_audit_job"),
        selection=dg.AssetSelection.assets(retention_audit),
        description=cluster.describe("Materialize the retention audit."),
        tags=cluster.tags,
    )
    schedule = dg.ScheduleDefinition(
        name=cluster.name("retention_audit_schedule"),
        job=job,
        cron_schedule=AUDIT_CRON,
        execution_timezone="UTC",
        default_status=schedule_default_status(),
        description=cluster.describe("Daily at 03:30 UTC: the retention audit."),
        tags=cluster.tags,
    )
    return dg.Definitions(assets=[retention_audit], jobs=[job], schedules=[schedule])
