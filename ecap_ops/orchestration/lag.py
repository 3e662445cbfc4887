"""Consumer lag: the sensor `consumer_lag_sensor` and the job `notify_consumer_lag`.

Every tick the sensor measures every consumer group (one batched wave of requests, bounded
by a time budget), judges it against the window of earlier ticks kept in its cursor,
records lag observations on the topic assets, and requests one run of
`notify_consumer_lag` per incident event, keyed so that a retried tick never notifies twice.
"""

import os

import dagster as dg

from ecap_ops.catalog.model import Catalog
from ecap_ops.core.lag import (
    STATUS_ORDER,
    EvalConfig,
    GroupTopicStatus,
    describe_lag,
    worst,
)
from ecap_ops.errors import ConfigError, EcapOpsError
from ecap_ops.orchestration.alerts import (
    notification_run_config,
    notification_run_request,
    notify_job,
)
from ecap_ops.orchestration.common import md_table, rounded
from ecap_ops.orchestration.resources import KafkaResource
from ecap_ops.orchestration.topics import topic_key

DEFAULT_INTERVAL_S = 30

# One run per incident event, by the one notification path (orchestration/alerts.py).
notify_consumer_lag = notify_job(
    "notify_consumer_lag",
    "Notify one consumer-lag incident event (open, escalate, remind-N, resolve). Launched by consumer_lag_sensor with a run key per event.",
    "consumer_lag",
)
event_run_config = notification_run_config


# -- the sensor ------------------------------------------------------------------------


def _env_float(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a number of seconds, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name}: must be >= {minimum:g}, got {raw!r}")
    return value


def _env_patterns(name: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in (os.environ.get(name) or "").split(",") if p.strip())


def default_sensor_status() -> dg.DefaultSensorStatus:
    raw = (os.environ.get("ECAP_SENSORS_DEFAULT") or "stopped").strip().lower()
    if raw not in ("running", "stopped"):
        raise ConfigError(f"ECAP_SENSORS_DEFAULT: expected 'running' or 'stopped', got {raw!r}")
    return dg.DefaultSensorStatus.RUNNING if raw == "running" else dg.DefaultSensorStatus.STOPPED


def _topic_observations(
    catalog: Catalog, statuses: tuple[GroupTopicStatus, ...]
) -> list[dg.AssetObservation]:
    """Per catalog topic: lag over all its groups (numbers the UI plots over time)."""
    out = []
    for spec in catalog.topics:
        rows = [s for s in statuses if s.topic == spec.name]
        if not rows:
            continue
        rows.sort(key=lambda s: (STATUS_ORDER.index(s.status), -s.lag_msgs))
        known = [s.lag_seconds for s in rows if s.lag_seconds is not None]
        out.append(
            dg.AssetObservation(
                asset_key=topic_key(spec),
                metadata={
                    "consumer_groups": dg.MetadataValue.int(len(rows)),
                    "consumer_lag_msgs_max": dg.MetadataValue.int(max(s.lag_msgs for s in rows)),
                    "consumer_lag_msgs_total": dg.MetadataValue.int(sum(s.lag_msgs for s in rows)),
                    "consumer_lag_seconds_max": rounded(max(known) if known else 0.0, 1),
                    "consumer_lag_status": dg.MetadataValue.text(worst(s.status for s in rows)),
                    "consumer_groups_not_ok": dg.MetadataValue.int(
                        sum(1 for s in rows if s.severity not in ("ok", "info"))
                    ),
                    "consumer_lag": dg.MetadataValue.md(
                        md_table(
                            ["group", "status", "lag", "state", "members"],
                            [
                                [
                                    s.group,
                                    s.status,
                                    describe_lag(s.lag_msgs, s.lag_seconds, s.lag_seconds_kind),
                                    s.state,
                                    s.members,
                                ]
                                for s in rows[:20]
                            ],
                        )
                    ),
                },
            )
        )
    return out


def build_lag_sensor(
    catalog: Catalog,
    name: str = "consumer_lag_sensor",
    config: EvalConfig | None = None,
    include: tuple[str, ...] | None = None,
    exclude: tuple[str, ...] | None = None,
    budget_s: float | None = None,
    interval_s: int | None = None,
    default_status: dg.DefaultSensorStatus | None = None,
    cursor_max_bytes: int | None = None,
    job: dg.JobDefinition = notify_consumer_lag,
) -> dg.SensorDefinition:
    """The consumer-lag sensor; settings default to the environment (read now, no I/O)."""
    from ecap_ops.gateway.lag import LagScope
    from ecap_ops.services.lag import DEFAULT_BUDGET_S, DEFAULT_CURSOR_MAX_BYTES

    scope = LagScope(
        include=include if include is not None else _env_patterns("ECAP_LAG_GROUPS_INCLUDE"),
        exclude=exclude if exclude is not None else _env_patterns("ECAP_LAG_GROUPS_EXCLUDE"),
    )
    budget = (
        budget_s
        if budget_s is not None
        else _env_float("ECAP_LAG_TICK_BUDGET_SECONDS", DEFAULT_BUDGET_S, 1.0)
    )
    if budget >= 50:
        raise ConfigError(
            f"lag tick budget: {budget:g} s leaves no margin under Dagster's 60 s sensor limit; use < 50"
        )
    interval = (
        interval_s
        if interval_s is not None
        else int(_env_float("ECAP_LAG_SENSOR_INTERVAL", DEFAULT_INTERVAL_S, 1.0))
    )
    cfg = config or EvalConfig()
    max_bytes = cursor_max_bytes or DEFAULT_CURSOR_MAX_BYTES
    scope_text = (f" Groups: {', '.join(scope.include)}." if scope.include else "") + (
        f" Excluding: {', '.join(scope.exclude)}." if scope.exclude else ""
    )

    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=interval,
        default_status=default_status or default_sensor_status(),
        description=(
            f"Every {interval} s: measure every consumer group's lag in messages and seconds, judge it "
            "(DATA_LOSS, STOPPED, STALLED, BEHIND_SLA, REWIND, LAGGING, ...) against the catalog's per-topic "
            "thresholds, record lag observations on the topic assets, and notify incident changes through "
            f"notify_consumer_lag.{scope_text}"
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext, kafka: KafkaResource) -> dg.SensorResult:
        from ecap_ops.services.lag import lag_tick, read_cursor, write_cursor

        window, why = read_cursor(context.cursor)
        if why:
            context.log.warning(
                f"{name}: the cursor could not be read ({why}); starting a fresh lag window"
            )
        try:
            with kafka.gateway() as gw:
                tick = lag_tick(gw, catalog, window, cfg, scope, budget)
        except EcapOpsError as exc:
            # Keep the window: the next tick carries on where this one could not.
            return dg.SensorResult(
                skip_reason=f"consumer lag not measured: {exc}", cursor=context.cursor
            )
        ev = tick.evaluation
        obs = tick.measurement.observation
        cursor, trimmed = write_cursor(ev.window, max_bytes)
        for t in trimmed:
            context.log.warning(f"{name}: lag window over {max_bytes:,} bytes: {t}")
        for note in ev.notes:
            context.log.warning(f"{name}: {note}")
        for e in ev.events:
            if not e.notify:
                context.log.info(
                    f"{name}: incident {e.incident_id} ({e.group} on {e.topic}) closed quietly: {e.reason}"
                )
        runs = [
            notification_run_request(
                e, {"ecap_ops/lag_event": e.event_name, "ecap_ops/consumer_group": e.group[:250]}
            )
            for e in ev.notifications
        ]
        bad = [s for s in ev.statuses if s.severity in ("warning", "critical")]
        summary = (
            f"{len({s.group for s in ev.statuses})} group(s) on {len({s.topic for s in ev.statuses})} topic(s) in "
            f"{tick.measurement.seconds:.2f} s ({sum(tick.measurement.requests.values())} requests)"
            + (", PARTIAL" if obs.partial else "")
            + f"; {len(bad)} not OK"
        )
        context.log.info(f"{name}: {summary}")
        observations = _topic_observations(catalog, ev.statuses)
        if runs:
            return dg.SensorResult(run_requests=runs, cursor=cursor, asset_events=observations)
        return dg.SensorResult(
            skip_reason=f"no incident changes: {summary}", cursor=cursor, asset_events=observations
        )

    return _sensor


def build_defs(catalog: Catalog) -> dg.Definitions:
    return dg.Definitions(jobs=[notify_consumer_lag], sensors=[build_lag_sensor(catalog)])
