"""The job `kafka_health_check` (every 5 minutes): brokers, quorum, partitions, catalog,
log directories, disk and a produce-then-consume canary, judged into one report.

The report is a markdown table in the run's metadata, with numeric metadata (canary
latency, under-replicated partitions, ...) that the UI plots over time. The same
observation also records the `availability` and `replication` asset checks of every
catalog topic, so their history fills every 5 minutes without a second pass over the
cluster.

Alerts follow incidents, not runs: `open` when the result becomes unhealthy, `escalate`
(WARN to CRIT), `changed` (a new problem at the incident's level), reminders (30 min
critical, 4 h warning) and `resolve` with the duration (see `core/health_incidents.py`).
The incident is kept between runs in the Dagster instance: every run records an
`AssetObservation` of `ecap_ops/kafka_cluster_health` whose metadata `incident_state` is
the state as JSON, and the next run reads the latest one back (`fetch_observations`, the
same on SQLite and PostgreSQL instances). A state that is missing or cannot be read counts
as no open incident (logged).
"""

import os
import time

import dagster as dg
from pydantic import Field

from ecap_ops.catalog.model import Catalog
from ecap_ops.orchestration.alerts import AlertsResource
from ecap_ops.orchestration.common import as_failure, md_table
from ecap_ops.orchestration.resources import KafkaResource


def schedule_default_status() -> dg.DefaultScheduleStatus:
    """Routine schedules run when ECAP_SCHEDULES_DEFAULT=running (the deployment), else stopped."""
    value = os.environ.get("ECAP_SCHEDULES_DEFAULT", "stopped").strip().lower()
    return (
        dg.DefaultScheduleStatus.RUNNING if value == "running" else dg.DefaultScheduleStatus.STOPPED
    )


class HealthCheckConfig(dg.Config):
    """What the health check measures and when it alerts."""

    canary: bool = Field(
        default=True, description="Produce and consume back messages on the topic ecap-ops-canary."
    )
    canary_timeout_seconds: float = Field(
        default=5.0, gt=0, le=30, description="Longest wait for the canary's messages."
    )
    canary_warn_ms: float = Field(
        default=1000.0, gt=0, description="A canary round trip slower than this is a warning."
    )
    disk_warn_percent: float = Field(
        default=80.0, gt=0, le=100, description="Disk use (per log directory) that is a warning."
    )
    disk_crit_percent: float = Field(
        default=90.0, gt=0, le=100, description="Disk use (per log directory) that is critical."
    )
    alert_on: str = Field(
        default="warning",
        pattern="^(warning|critical)$",
        description="Lowest status that opens an incident (and alerts): warning or critical.",
    )
    remind_critical_minutes: float = Field(
        default=30.0, ge=0, description="Reminder interval while critical (0: no reminders)."
    )
    remind_warning_minutes: float = Field(
        default=240.0, ge=0, description="Reminder interval while warning (0: no reminders)."
    )
    resolve_after_healthy_runs: int = Field(
        default=2,
        ge=1,
        description="Healthy runs in a row that resolve an open incident (hysteresis against flapping).",
    )


HEALTH_STATE_KEY = dg.AssetKey(["ecap_ops", "kafka_cluster_health"])
STATE_METADATA = "incident_state"


def read_incident_state(instance: dg.DagsterInstance) -> tuple[object, str | None]:
    """The incident state the latest run recorded (raw, checked by the caller), or None;
    with why it could not be read. Never raises: a lost state means no open incident."""
    try:
        records = instance.fetch_observations(HEALTH_STATE_KEY, limit=1).records
    except Exception as exc:  # storage trouble must not stop the health check
        return None, f"could not read the latest observation: {type(exc).__name__}: {exc}"
    if not records:
        return None, None
    observation = records[0].asset_observation
    entry = observation.metadata.get(STATE_METADATA) if observation is not None else None
    if entry is None:
        return (
            None,
            f"the latest observation of {HEALTH_STATE_KEY.to_user_string()} has no {STATE_METADATA}",
        )
    return entry.value, None


def state_observation(state: dict, events) -> dg.AssetObservation:
    inc = state.get("incident")
    return dg.AssetObservation(
        asset_key=HEALTH_STATE_KEY,
        metadata={
            STATE_METADATA: dg.MetadataValue.json(state),
            "status": dg.MetadataValue.text(state.get("status") or "?"),
            "incident": dg.MetadataValue.text(inc["id"] if inc else "none"),
            "incident_level": dg.MetadataValue.text(inc["level"] if inc else "OK"),
            "events": dg.MetadataValue.text(", ".join(e.event_name for e in events) or "none"),
        },
    )


def _check_evaluations(catalog: Catalog, report) -> list[dg.AssetCheckEvaluation]:
    """The topic assets' availability and replication checks, from the health observation."""
    from ecap_ops.orchestration.topics import topic_key

    out = []
    for spec in catalog.topics:
        key = topic_key(spec)
        partitions = report.topic_partitions.get(spec.name)
        if partitions is None:
            why = (
                "the cluster did not answer"
                if report.cluster_id is None
                else f"{spec.name} does not exist"
            )
            for name in ("availability", "replication"):
                out.append(
                    dg.AssetCheckEvaluation(
                        asset_key=key,
                        check_name=name,
                        passed=False,
                        severity=dg.AssetCheckSeverity.ERROR,
                        description=why,
                    )
                )
            continue
        offline = report.offline.get(spec.name, [])
        under = report.under_replicated.get(spec.name, [])
        under_min = report.under_min_isr.get(spec.name, [])
        out.append(
            dg.AssetCheckEvaluation(
                asset_key=key,
                check_name="availability",
                passed=not offline,
                severity=dg.AssetCheckSeverity.ERROR,
                description="all partitions have a leader"
                if not offline
                else f"offline partitions: {offline}",
                metadata={
                    "offline_partitions": dg.MetadataValue.int(len(offline)),
                    "partitions": dg.MetadataValue.int(partitions),
                    "source": "kafka_health_check",
                },
            )
        )
        out.append(
            dg.AssetCheckEvaluation(
                asset_key=key,
                check_name="replication",
                passed=not under and not under_min,
                severity=dg.AssetCheckSeverity.ERROR if under_min else dg.AssetCheckSeverity.WARN,
                description="fully replicated"
                if not under and not under_min
                else f"under-replicated partitions: {under}"
                + (f"; below min.insync.replicas: {under_min}" if under_min else ""),
                metadata={
                    "under_replicated": dg.MetadataValue.int(len(under)),
                    "under_min_isr": dg.MetadataValue.int(len(under_min)),
                    "source": "kafka_health_check",
                },
            )
        )
    return out


def build_defs(catalog: Catalog) -> dg.Definitions:
    @dg.op(
        name="kafka_health_report",
        description="Observe the cluster (brokers, KRaft quorum, partitions, catalog, log directories, disk, canary) and judge it OK, WARN or CRIT; notify when the health incident opens, escalates, changes, stays open (reminders) or resolves.",
        out=dg.Out(dict, description="The health report as JSON-able data."),
    )
    def kafka_health_report(
        context: dg.OpExecutionContext,
        config: HealthCheckConfig,
        kafka: KafkaResource,
        alerts: AlertsResource,
    ):
        from ecap_ops.core.health import CRIT, OK, WARN, HealthThresholds, report_rows
        from ecap_ops.core.health_incidents import IncidentPolicy
        from ecap_ops.services.health import health_notifications, run_health_check

        if config.disk_warn_percent > config.disk_crit_percent:
            raise dg.Failure(
                description=f"config disk_warn_percent ({config.disk_warn_percent}) must not exceed disk_crit_percent ({config.disk_crit_percent})"
            )
        thresholds = HealthThresholds(
            disk_warn_fraction=config.disk_warn_percent / 100,
            disk_crit_fraction=config.disk_crit_percent / 100,
            canary_warn_ms=config.canary_warn_ms,
        )
        with as_failure("health check"), kafka.gateway() as gw:
            report = run_health_check(
                gw,
                catalog,
                canary=config.canary,
                canary_timeout_s=config.canary_timeout_seconds,
                thresholds=thresholds,
            )
        context.log.info(f"health {report.status}: {len(report.problems())} problem(s)")
        for f in report.problems():
            context.log.warning(f"[{f.severity}] {f.check} {f.subject}: {f.message}")
        # Record the topic assets' checks from the same observation.
        for evaluation in _check_evaluations(catalog, report):
            context.log_event(evaluation)
        # Notify on change: the previous run's incident, this report -> events.
        policy = IncidentPolicy(
            alert_on=CRIT if config.alert_on == "critical" else WARN,
            remind_warning_s=config.remind_warning_minutes * 60,
            remind_critical_s=config.remind_critical_minutes * 60,
            resolve_after_runs=config.resolve_after_healthy_runs,
        )
        stored, why = read_incident_state(context.instance)
        if why:
            context.log.warning(f"health incident state: {why}; treating it as no open incident")
        decision, notices = health_notifications(
            stored, report, time.time(), policy, run_url=alerts.run_url(context.run_id)
        )
        for note in decision.notes:
            context.log.warning(note)
        for event, alert in zip(decision.events, notices, strict=True):
            results = alerts.send(alert, context.log)
            context.log.info(
                f"health incident {event.incident_id} {event.event_name}: sent {results}"
            )
        # Recorded after sending: a run that dies in between notifies again next time
        # rather than never.
        context.log_event(state_observation(decision.state, decision.events))
        inc = decision.incident
        if not decision.events:
            context.log.info(
                f"health incident {inc['id']} open ({inc['level']}), nothing new to notify"
                if inc
                else "no health incident"
            )
        m = report.metrics
        metadata = {
            "status": dg.MetadataValue.text(report.status),
            "healthy": dg.MetadataValue.bool(report.status == OK),
            "report": dg.MetadataValue.md(
                md_table(["severity", "check", "subject", "finding"], report_rows(report))
            ),
            "cluster_id": dg.MetadataValue.text(report.cluster_id or "unreachable"),
            "problems": dg.MetadataValue.int(len(report.problems())),
            "incident": dg.MetadataValue.text(inc["id"] if inc else "none"),
            "incident_events": dg.MetadataValue.text(
                ", ".join(e.event_name for e in decision.events) or "none"
            ),
        }
        for key in (
            "under_replicated_partitions",
            "under_min_isr_partitions",
            "offline_partitions",
            "brokers",
            "canary_latency_ms",
            "canary_lost",
            "disk_used_max_percent",
            "quorum_max_lag",
        ):
            if m.get(key) is not None:
                metadata[key] = (
                    dg.MetadataValue.float(float(m[key]))
                    if isinstance(m[key], float)
                    else dg.MetadataValue.int(int(m[key]))
                )
        return dg.Output(report.to_dict(), metadata=metadata)

    @dg.job(
        name="kafka_health_check",
        description="Health check of the Kafka cluster: brokers, KRaft quorum, offline / under-replicated / under-min-ISR partitions, catalog topics, log directories, disk use and a produce-then-consume canary. Records the topic assets' availability and replication checks and notifies health incidents on change (open, escalate, changed, reminders, resolved).",
        tags={"ecap_ops/area": "health"},
    )
    def kafka_health_check():
        kafka_health_report()

    # ECAP_HEALTH_CRON overrides the 5-minute cadence (tests tick it every minute).
    cron = os.environ.get("ECAP_HEALTH_CRON") or "*/5 * * * *"
    schedule = dg.ScheduleDefinition(
        name="kafka_health_check_schedule",
        job=kafka_health_check,
        cron_schedule=cron,
        default_status=schedule_default_status(),
        description=f"The health check on cron `{cron}` (every 5 minutes unless ECAP_HEALTH_CRON says otherwise).",
    )
    state_asset = dg.AssetSpec(
        HEALTH_STATE_KEY,
        group_name="health",
        description="The cluster's health as the job kafka_health_check sees it every 5 minutes: each run records an observation with its status and the open health incident (metadata incident_state, read back by the next run).",
        kinds={"kafka"},
    )
    return dg.Definitions(jobs=[kafka_health_check], schedules=[schedule], assets=[state_asset])
