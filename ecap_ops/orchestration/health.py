"""The job `kafka_health_check` (every 5 minutes): brokers, quorum, partitions, catalog,
log directories, disk and a produce-then-consume canary, judged into one report.

Each run materializes `ecap_ops/kafka_cluster_health` for people: the verdict, the open
incident and its age, the findings table (severity, check, subject, detail, since when) and
numbers the UI plots over time; the run and the event carry the tag `ecap/health: OK|WARN|CRIT`.
The same health check (one read of the cluster) judges the topic assets' checks
(`matches_catalog`, `availability`, `replication`), by the rule provisioning uses
(`core.topic_checks`), so they follow the cluster every 5 minutes.

Alerts follow incidents, not runs: `open` when the result becomes unhealthy, `escalate`
(WARN to CRIT), `changed` (a new problem at the incident's level), reminders (30 min
critical, 4 h warning) and `resolve` with the duration (see `core/health_incidents.py`).
The job does not send them itself: it records this run's incident events on the health
asset (metadata `incident_notifications`), and the sensor `kafka_health_incident_sensor`
requests one run of `notify_kafka_health` per event, with the run key
`<incident id>:<event>`, so that a retried tick or a re-executed health run never
notifies twice (`orchestration/alerts.py`, the path consumer lag and the DR drill take).
The incident is kept between runs in the Dagster instance: the materialization's last
metadata entry, `incident_state`, is the state as JSON, and the next run reads the latest
one back (`fetch_materializations`, the same on SQLite and PostgreSQL instances). A state
that is missing or cannot be read counts as no open incident (logged).
"""

import os
import time
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from ecap_ops.catalog.model import Catalog
from ecap_ops.orchestration.alerts import (
    EVENTS_METADATA,
    build_incident_sensor,
    events_metadata,
    notify_job,
)
from ecap_ops.orchestration.cluster_scope import SINGLE, ClusterScope
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
# The health verdict of a run (OK, WARN or CRIT), on the run and on its health event, so
# that the runs list and the asset show a WARN run as WARN, not only as a green success.
VERDICT_TAG = "ecap/health"


def read_incident_state(
    instance: dg.DagsterInstance, key: dg.AssetKey = HEALTH_STATE_KEY
) -> tuple[object, str | None]:
    """The incident state the latest run recorded (raw, checked by the caller), or None;
    with why it could not be read. Never raises: a lost state means no open incident.

    Each run materializes the health asset with the state as its last metadata entry;
    earlier versions recorded it on an observation: the newer of the two counts."""
    latest = None
    try:
        for fetch, attr in (
            (instance.fetch_materializations, "asset_materialization"),
            (instance.fetch_observations, "asset_observation"),
        ):
            records = fetch(key, limit=1).records
            if records and (latest is None or records[0].storage_id > latest[0].storage_id):
                latest = (records[0], getattr(records[0], attr))
    except Exception as exc:  # storage trouble must not stop the health check
        return None, f"could not read the latest health event: {type(exc).__name__}: {exc}"
    if latest is None:
        return None, None
    event = latest[1]
    entry = event.metadata.get(STATE_METADATA) if event is not None else None
    if entry is None:
        return (
            None,
            f"the latest event of {key.to_user_string()} has no {STATE_METADATA}",
        )
    return entry.value, None


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _since(ts: float, now: float) -> str:
    """`23:36Z (12m 05s)`: when (UTC; with the date after a day), then how long."""
    at = datetime.fromtimestamp(ts, UTC)
    when = at.strftime("%H:%MZ") if now - ts < 86400 else at.strftime("%Y-%m-%d %H:%MZ")
    return f"{when} ({_age(now - ts)})"


def _age(seconds: float) -> str:
    from ecap_ops.catalog.units import format_seconds

    return format_seconds(max(0.0, seconds))


# The numbers the health asset's page plots over time (Overview > Metadata > Plots), with
# the decimals people read them at (0: a count). Partition and quorum figures are left out
# when the cluster could not be read: a gap in the plot, never a made-up zero.
PLOTTED_HEALTH_METRICS = (
    ("canary_latency_ms", 1),
    ("disk_used_max_percent", 1),
    ("under_replicated_partitions", 0),
    ("under_min_isr_partitions", 0),
    ("offline_partitions", 0),
    ("brokers", 0),
    ("canary_lost", 0),
    ("quorum_max_lag", 0),
)


def _plotted(value, decimals: int) -> dg.MetadataValue | None:
    """A figure for the plots: a count as an int, a measurement rounded for people, or
    None (left out) when it is not known."""
    from ecap_ops.core.numbers import round_for_people, whole

    if decimals <= 0:
        n = whole(value)
        return None if n is None else dg.MetadataValue.int(n)
    v = round_for_people(value, decimals)
    return None if v is None else dg.MetadataValue.float(v)


def health_page_metadata(
    report, state: dict, events, now: float, seconds: float | None = None
) -> dict:
    """What a person reads on the health asset, in reading order: the verdict, the open
    incident and its age, the findings table (worst first, with since when), the numbers
    the UI plots over time (findings by severity, partitions out of sync, brokers up,
    canary, disk, how long the check took: `seconds`); the incident state for the next
    run last."""
    from ecap_ops.core.health import CRIT, OK, WARN, worst_first
    from ecap_ops.core.health_incidents import finding_since

    problems = report.problems()
    inc = state.get("incident")
    counts = {sev: sum(f.severity == sev for f in report.findings) for sev in (CRIT, WARN, OK)}
    n = len(problems)
    lines = [
        f"### {report.status}: "
        + (
            f"{n} problem{'s' if n != 1 else ''} ({counts[CRIT]} CRIT, {counts[WARN]} WARN)"
            if n
            else "every check passed"
        )
    ]
    if inc:
        lines.append(
            f"**Open incident**: {inc['level']} for {_age(now - float(inc['opened']))} "
            f"(since {_since(float(inc['opened']), now).split(' (')[0]}, worst {inc['peak']})"
        )
    else:
        lines.append("No open incident.")
    if problems:
        lines.append("Worst: " + _headline(report))
    lines.append(
        f"Cluster `{report.cluster_id or 'unreachable'}` ({report.env}), "
        f"checked {_since(report.at_ms / 1000, now).split(' (')[0]}"
    )
    if events:
        lines.append("Notified this run: " + ", ".join(e.event_name for e in events))
    rows = []
    for f in worst_first(report.findings):
        since = finding_since(state, f, report)
        rows.append(
            dg.TableRecord(
                {
                    "severity": f.severity,
                    "check": f.check,
                    "subject": f.subject,
                    "since": "-" if since is None else _since(since, now),
                    "detail": f.message[:500],
                }
            )
        )
    m = report.metrics
    meta: dict = {
        "summary": dg.MetadataValue.md("\n\n".join(lines)),
        "status": dg.MetadataValue.text(report.status),
        "findings": dg.MetadataValue.table(
            rows,
            schema=dg.TableSchema(
                columns=[
                    dg.TableColumn("severity", "string", description="CRIT, WARN or OK"),
                    dg.TableColumn("check", "string"),
                    dg.TableColumn("subject", "string"),
                    dg.TableColumn(
                        "since", "string", description="first seen (UTC), and for how long"
                    ),
                    dg.TableColumn("detail", "string"),
                ]
            ),
        ),
        "open_incident": dg.MetadataValue.text(
            f"{inc['id']} ({inc['level']}, open {_age(now - float(inc['opened']))})"
            if inc
            else "none"
        ),
        "incident_open_minutes": _plotted((now - float(inc["opened"])) / 60 if inc else 0, 1),
        "problems": dg.MetadataValue.int(len(problems)),
        "crit_findings": dg.MetadataValue.int(counts[CRIT]),
        "warn_findings": dg.MetadataValue.int(counts[WARN]),
        "ok_findings": dg.MetadataValue.int(counts[OK]),
    }
    metrics = dict(m)
    if report.cluster_id is None and metrics.get("brokers") is None:
        metrics["brokers"] = 0  # no broker answered: none is up, as far as we can tell
    for key, digits in PLOTTED_HEALTH_METRICS:
        shown = _plotted(metrics.get(key), digits)
        if shown is not None:
            meta[key] = shown
    shown = _plotted(seconds, 1)
    if shown is not None:
        meta["check_seconds"] = shown
    meta["cluster_id"] = dg.MetadataValue.text(report.cluster_id or "unreachable")
    meta["incident_events"] = dg.MetadataValue.text(
        ", ".join(e.event_name for e in events) or "none"
    )
    # For kafka_health_incident_sensor: the events to notify, one run each.
    meta[EVENTS_METADATA] = events_metadata(events)
    # For the next run (read back by read_incident_state), not for people: last.
    meta[STATE_METADATA] = dg.MetadataValue.json(state)
    return meta


def _headline(report) -> str:
    problems = report.problems()
    if not problems:
        return "every check passed"
    head = problems[0]
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{head.check} {head.subject}: {head.message[:160]}{more}"


def state_observation(state: dict, events) -> dg.AssetObservation:
    """The incident state as an observation (how earlier versions recorded it)."""
    inc = state.get("incident")
    return dg.AssetObservation(
        asset_key=HEALTH_STATE_KEY,
        metadata={
            "status": dg.MetadataValue.text(state.get("status") or "?"),
            "incident": dg.MetadataValue.text(inc["id"] if inc else "none"),
            "incident_level": dg.MetadataValue.text(inc["level"] if inc else "OK"),
            "events": dg.MetadataValue.text(", ".join(e.event_name for e in events) or "none"),
            STATE_METADATA: dg.MetadataValue.json(state),
        },
    )


def health_materialization(
    report,
    state: dict,
    events,
    now: float,
    seconds: float | None = None,
    key: dg.AssetKey = HEALTH_STATE_KEY,
) -> dg.AssetMaterialization:
    """This run's health, as people read it on the asset page (and the state, last)."""
    return dg.AssetMaterialization(
        asset_key=key,
        description=f"{report.status}: {_headline(report)}",
        metadata=health_page_metadata(report, state, events, now, seconds),
        tags={VERDICT_TAG: report.status},
    )


def build_defs(catalog: Catalog, cluster: ClusterScope = SINGLE) -> dg.Definitions:
    state_key = cluster.key(*HEALTH_STATE_KEY.path)

    @dg.op(
        name=cluster.name("kafka_health_report"),
        tags=cluster.tags,
        description="Observe the cluster (brokers, KRaft quorum, partitions, catalog, log directories, disk, canary) and judge it OK, WARN or CRIT; record the health incident's events (opens, escalates, changes, stays open, resolves) for kafka_health_incident_sensor to notify.",
        out=dg.Out(dict, description="The health report as JSON-able data."),
    )
    @cluster.bind
    def kafka_health_report(
        context: dg.OpExecutionContext,
        config: HealthCheckConfig,
        kafka: KafkaResource,
    ):
        from ecap_ops.core.health import CRIT, OK, WARN, HealthThresholds, report_rows
        from ecap_ops.core.health_incidents import IncidentPolicy
        from ecap_ops.orchestration.topics import check_evaluation, group_outcomes
        from ecap_ops.services.health import check_health, health_notifications, judge_topic_checks

        if config.disk_warn_percent > config.disk_crit_percent:
            raise dg.Failure(
                description=f"config disk_warn_percent ({config.disk_warn_percent}) must not exceed disk_crit_percent ({config.disk_crit_percent})"
            )
        thresholds = HealthThresholds(
            disk_warn_fraction=config.disk_warn_percent / 100,
            disk_crit_fraction=config.disk_crit_percent / 100,
            canary_warn_ms=config.canary_warn_ms,
        )
        started = time.monotonic()
        with as_failure("health check"), kafka.gateway() as gw:
            check = check_health(
                gw,
                catalog,
                canary=config.canary,
                canary_timeout_s=config.canary_timeout_seconds,
                thresholds=thresholds,
            )
        took = time.monotonic() - started
        report = check.report
        # Topics grouped under one asset (large catalogs, docs/scale.md) are one check each.
        outcomes = group_outcomes(judge_topic_checks(check, catalog), catalog)
        checks = [check_evaluation(o, catalog, cluster) for o in outcomes]
        # The verdict on the run, so the runs list shows WARN and CRIT runs as such.
        try:
            context.instance.add_run_tags(context.run_id, {VERDICT_TAG: report.status})
        except Exception as exc:  # a tag is a convenience; the report still counts
            context.log.warning(f"could not tag the run with its verdict: {exc}")
        context.log.info(f"health {report.status}: {len(report.problems())} problem(s)")
        for f in report.problems():
            context.log.warning(f"[{f.severity}] {f.check} {f.subject}: {f.message}")
        # The topic assets' checks, from the same observation and the same rule.
        for evaluation in checks:
            context.log_event(evaluation)
        # Notify on change: the previous run's incident, this report -> events.
        policy = IncidentPolicy(
            alert_on=CRIT if config.alert_on == "critical" else WARN,
            remind_warning_s=config.remind_warning_minutes * 60,
            remind_critical_s=config.remind_critical_minutes * 60,
            resolve_after_runs=config.resolve_after_healthy_runs,
        )
        stored, why = read_incident_state(context.instance, state_key)
        if why:
            context.log.warning(f"health incident state: {why}; treating it as no open incident")
        now = time.time()
        decision, _previews = health_notifications(stored, report, now, policy)
        for note in decision.notes:
            context.log.warning(note)
        for event in decision.events:
            context.log.info(
                f"health incident {event.incident_id} {event.event_name}: recorded for "
                f"kafka_health_incident_sensor (run key {event.run_key})"
            )
        context.log_event(
            health_materialization(report, decision.state, decision.events, now, took, state_key)
        )
        inc = decision.incident
        if not decision.events:
            context.log.info(
                f"health incident {inc['id']} open ({inc['level']}), nothing new to notify"
                if inc
                else "no health incident"
            )
        metadata = {
            k: v
            for k, v in health_page_metadata(
                report, decision.state, decision.events, now, took
            ).items()
            if k not in (STATE_METADATA, EVENTS_METADATA)
        }
        metadata["healthy"] = dg.MetadataValue.bool(report.status == OK)
        metadata["report"] = dg.MetadataValue.md(
            md_table(["severity", "check", "subject", "finding"], report_rows(report))
        )
        metadata["incident"] = dg.MetadataValue.text(inc["id"] if inc else "none")
        return dg.Output(report.to_dict(), metadata=metadata)

    @dg.job(
        name=cluster.name("kafka_health_check"),
        description=cluster.describe(
            "Health check of the Kafka cluster: brokers, KRaft quorum, offline / under-replicated / under-min-ISR partitions, catalog topics, log directories, disk use and a produce-then-consume canary. Records the topic assets' availability and replication checks, and the health incident's events on change (open, escalate, changed, reminders, resolved), which kafka_health_incident_sensor notifies through notify_kafka_health."
        ),
        tags={"ecap_ops/area": "health", **cluster.tags},
    )
    def kafka_health_check():
        kafka_health_report()

    # ECAP_HEALTH_CRON overrides the 5-minute cadence (tests tick it every minute).
    cron = os.environ.get("ECAP_HEALTH_CRON") or "*/5 * * * *"
    schedule = dg.ScheduleDefinition(
        name=cluster.name("kafka_health_check_schedule"),
        job=kafka_health_check,
        tags=cluster.tags,
        cron_schedule=cron,
        default_status=schedule_default_status(),
        description=cluster.describe(
            f"The health check on cron `{cron}` (every 5 minutes unless ECAP_HEALTH_CRON says otherwise)."
        ),
    )
    state_asset = dg.AssetSpec(
        state_key,
        group_name=cluster.group("health"),
        tags=cluster.tags,
        description=cluster.describe(
            "The Kafka cluster's health, recorded by every run of the job kafka_health_check "
            "(every 5 minutes): the verdict (OK, WARN or CRIT, also the run tag ecap/health), the findings "
            "with since when each problem has been seen, the open health incident and its age, and numbers "
            "plotted over time (Metadata > Plots: findings by severity, brokers up, offline, under-replicated "
            "and under-min-ISR partitions, canary latency, disk use, how long the check took). The last "
            "metadata entry, incident_state, is the incident as the next run reads it back."
        ),
        kinds={"kafka"},
    )
    notify = notify_job(
        cluster.name("notify_kafka_health"),
        "Notify one health incident event (open, escalate, changed, remind-N, resolve) of the job kafka_health_check. Launched by kafka_health_incident_sensor with a run key per event.",
        "health",
    )
    sensor = build_incident_sensor(
        cluster.name("kafka_health_incident_sensor"),
        state_key,
        notify,
        "Every 30 s (ECAP_INCIDENT_SENSOR_INTERVAL): the health incident events that runs of kafka_health_check recorded on "
        "ecap_ops/kafka_cluster_health since the last tick, each notified by one run of "
        "notify_kafka_health (run key <incident id>:<event>: never twice).",
    )
    return dg.Definitions(
        jobs=[kafka_health_check, notify],
        schedules=[schedule],
        sensors=[sensor],
        assets=[state_asset],
    )
