"""Notifications: the resource `alerts` (where they go: a Slack-compatible webhook, JSON
lines, the Dagster log) and the one path every incident event takes to reach it.

Each incident event (consumer lag, cluster health, the DR drill; `core.incidents`) is sent
by one run of a notify job (`notify_consumer_lag`, `notify_kafka_health`, `notify_dr_drill`:
the same op, `send_notification`), requested by a sensor with the run key
`<incident id>:<event>`. Dagster launches at most one run per run key and sensor, so a
retried sensor tick, or a job run re-executed, never notifies twice.

- The consumer-lag sensor requests its runs itself (`notification_run_request`).
- Jobs that judge incidents (the health check, the DR drill) record their events on their
  asset (metadata `incident_notifications`); an incident sensor
  (`build_incident_sensor`) reads the asset's new events after its cursor and requests
  the runs.
"""

import logging
import os
import time

import dagster as dg
from pydantic import Field

from ecap_ops.alerts import AlertSinks
from ecap_ops.core.alerts import Alert

NOTIFY_OP = "send_notification"
# The metadata entry, on a job's asset event, listing the incident events to notify.
EVENTS_METADATA = "incident_notifications"
# A sensor's first tick (no cursor) picks up events recorded this recently, no older.
FIRST_TICK_LOOKBACK_S = 15 * 60.0
# Asset events read per tick (the rest wait for the next tick).
EVENTS_PER_TICK = 50


class AlertsResource(dg.ConfigurableResource):
    """Alert sinks. The webhook URL is a secret (EnvVar ECAP_ALERT_WEBHOOK_URL); the JSON-lines
    file (ECAP_ALERT_JSONL) keeps every alert for audit; the Dagster log always gets one."""

    webhook_url: str | None = None
    jsonl_path: str | None = None
    timeout_seconds: float = 5.0
    retries: int = 3
    # Base URL of the Dagster UI, for links to runs in messages.
    dagster_url: str = "http://127.0.0.1:3000"

    def run_url(self, run_id: str) -> str:
        return f"{self.dagster_url.rstrip('/')}/runs/{run_id}"

    def send(self, alert: Alert, logger: logging.Logger | None = None) -> dict[str, str]:
        sinks = AlertSinks(
            webhook_url=self.webhook_url,
            jsonl_path=self.jsonl_path,
            logger=logger,
            timeout_s=self.timeout_seconds,
            retries=self.retries,
        )
        return sinks.send(alert)


def alerts_resource_from_env() -> AlertsResource:
    values = {
        "webhook_url": dg.EnvVar("ECAP_ALERT_WEBHOOK_URL")
        if os.environ.get("ECAP_ALERT_WEBHOOK_URL")
        else None,
        "jsonl_path": dg.EnvVar("ECAP_ALERT_JSONL") if os.environ.get("ECAP_ALERT_JSONL") else None,
        "dagster_url": dg.EnvVar("ECAP_DAGSTER_URL")
        if os.environ.get("ECAP_DAGSTER_URL")
        else None,
    }
    return AlertsResource(**{k: v for k, v in values.items() if v is not None})


# -- the notify op and jobs ----------------------------------------------------------------


class NotificationConfig(dg.Config):
    """One incident event, as the sensor that requested this run saw it."""

    event: dict = Field(
        description="The incident event: its source (consumer_lag, health_check, dr_drill) and its fields."
    )


@dg.op(
    name=NOTIFY_OP,
    description="Send one incident event (consumer lag, cluster health or the DR drill) to the alert sinks (webhook, JSON lines, Dagster log), with a link to this run.",
)
def send_notification(
    context: dg.OpExecutionContext, config: NotificationConfig, alerts: AlertsResource
) -> dict:
    """Read the event back into its type, render its one alert, and send it."""
    from ecap_ops.core.incidents import from_wire, to_alert

    try:
        event = from_wire(config.event)
    except ValueError as exc:
        raise dg.Failure(
            description=f"{NOTIFY_OP}: the run's event cannot be sent: {exc}"
        ) from None
    alert = to_alert(event, run_url=alerts.run_url(context.run_id))
    results = alerts.send(alert, context.log)
    failed = {k: v for k, v in results.items() if v != "ok"}
    context.add_output_metadata({"sinks": dg.MetadataValue.json(results), "title": alert.title})
    if failed:
        raise dg.Failure(
            description="alert not delivered to every sink: "
            + "; ".join(f"{k}: {v}" for k, v in failed.items())
        )
    return results


def notify_job(name: str, description: str, area: str) -> dg.JobDefinition:
    """A job that sends one incident event: `send_notification`, under the source's name."""

    @dg.job(name=name, description=description, tags={"ecap_ops/area": area})
    def _notify() -> None:
        send_notification()

    return _notify


def notification_run_config(event) -> dict:
    from ecap_ops.core.incidents import to_wire

    return {"ops": {NOTIFY_OP: {"config": {"event": to_wire(event)}}}}


def notification_run_request(event, tags: dict[str, str] | None = None) -> dg.RunRequest:
    """The one run that notifies an incident event, keyed by the incident and the event."""
    return dg.RunRequest(
        run_key=event.run_key,
        run_config=notification_run_config(event),
        tags={
            "ecap_ops/incident": event.incident_id[:250],
            "ecap_ops/incident_event": event.event_name,
            **(tags or {}),
        },
    )


def events_metadata(events) -> dg.MetadataValue:
    """The incident events of a job's run, for its incident sensor to notify."""
    from ecap_ops.core.incidents import to_wire

    return dg.MetadataValue.json([to_wire(e) for e in events])


# -- the incident sensors --------------------------------------------------------------------


def _asset_events(instance: dg.DagsterInstance, key: dg.AssetKey, after: int | None, since: float):
    """(storage id, metadata) of the asset's materializations and observations recorded
    after storage id `after` (or, with none, at or after `since`), oldest first."""
    flt = (
        dg.AssetRecordsFilter(asset_key=key, after_storage_id=after)
        if after is not None
        else dg.AssetRecordsFilter(asset_key=key, after_timestamp=since)
    )
    out = []
    for fetch, attr in (
        (instance.fetch_materializations, "asset_materialization"),
        (instance.fetch_observations, "asset_observation"),
    ):
        for record in fetch(flt, limit=EVENTS_PER_TICK, ascending=True).records:
            event = getattr(record, attr)
            out.append((record.storage_id, event.metadata if event is not None else {}))
    out.sort(key=lambda x: x[0])
    return out[:EVENTS_PER_TICK]


def _read_cursor(cursor: str | None) -> int | None:
    try:
        return int(cursor) if cursor else None
    except ValueError:
        return None


def incident_run_requests(instance, key: dg.AssetKey, cursor: str | None, log=None):
    """The runs to request for the incident events recorded on `key` since `cursor`, and
    the cursor after them."""
    from ecap_ops.core.incidents import from_wire

    after = _read_cursor(cursor)
    if cursor and after is None and log is not None:
        log.warning(f"incident sensor cursor {cursor[:40]!r} cannot be read; starting afresh")
    records = _asset_events(instance, key, after, time.time() - FIRST_TICK_LOOKBACK_S)
    runs = []
    for _storage_id, metadata in records:
        entry = metadata.get(EVENTS_METADATA)
        for wire in (entry.value if entry is not None else None) or []:
            try:
                event = from_wire(wire)
            except ValueError as exc:
                if log is not None:
                    log.error(f"incident event on {key.to_user_string()} not sent: {exc}")
                continue
            runs.append(notification_run_request(event))
    last = records[-1][0] if records else after
    return runs, (str(last) if last is not None else cursor)


def sensor_interval() -> int:
    """Seconds between ticks of the incident and run-failure sensors:
    ECAP_INCIDENT_SENSOR_INTERVAL, default 30 (read when the definitions load)."""
    from ecap_ops.orchestration.lag import _env_float

    return int(_env_float("ECAP_INCIDENT_SENSOR_INTERVAL", 30.0, 1.0))


def build_incident_sensor(
    name: str,
    key: dg.AssetKey,
    job: dg.JobDefinition,
    description: str,
    interval_s: int | None = None,
    default_status: dg.DefaultSensorStatus | None = None,
) -> dg.SensorDefinition:
    """A sensor that turns the incident events recorded on `key` into runs of `job`, one
    per event, keyed so that each event is notified once."""
    from ecap_ops.orchestration.lag import default_sensor_status

    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=interval_s or sensor_interval(),
        default_status=default_status or default_sensor_status(),
        description=description,
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        runs, cursor = incident_run_requests(context.instance, key, context.cursor, context.log)
        if runs:
            return dg.SensorResult(run_requests=runs, cursor=cursor)
        return dg.SensorResult(skip_reason="no new incident events", cursor=cursor)

    return _sensor
