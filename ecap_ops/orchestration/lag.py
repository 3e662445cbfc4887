"""Consumer lag: the sensor `consumer_lag_sensor` and the job `notify_consumer_lag`.

Every tick the sensor measures every consumer group (one batched wave of requests, bounded
by a time budget), judges it against the window of earlier ticks kept in its cursor,
records lag observations on the topic assets (numbers the asset pages plot: when they
moved, else every 5 minutes; see `topic_lag_figures`), and requests one run of
`notify_consumer_lag` per incident event, keyed so that a retried tick never notifies twice.
"""

import os
import time

import dagster as dg

from ecap_ops.catalog.model import Catalog
from ecap_ops.core.lag import (
    STATUS_ORDER,
    EvalConfig,
    GroupTopicStatus,
    describe_lag,
    worst,
)
from ecap_ops.core.numbers import round_for_people
from ecap_ops.errors import ConfigError, EcapOpsError
from ecap_ops.orchestration.alerts import (
    notification_run_config,
    notification_run_request,
    notify_job,
)
from ecap_ops.orchestration.cluster_scope import SINGLE, ClusterScope
from ecap_ops.orchestration.common import md_table
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


# -- lag history on the topic assets (the UI plots it) ------------------------------------
#
# Each tick may record one observation per catalog topic, on `kafka/<topic>`, whose numeric
# metadata the asset page plots over time (Overview > Metadata > Plots; the asset graph's
# sidebar, "Metadata plots"). The UI plots a topic's last 100 events, so the sensor records
# a topic only when what a person would see moved, and otherwise once per
# OBSERVE_EVERY_SECONDS: 100 points then span hours of a steady topic rather than the last
# 50 minutes of 30-second ticks, and the event log grows by at most one row per topic per
# tick (12 an hour for a steady topic at the defaults).

# A steady topic is recorded this often (10 ticks at the 30 s default).
OBSERVE_EVERY_SECONDS = 300.0
# An amount "moved" when it changed by at least this fraction of its last recorded value
# (so any change from zero) ...
MOVED_FRACTION = 0.10
# ... and by at least this much (a lag of a fraction of a second is noise, not news).
MOVED_AT_LEAST = {"consumer_lag_seconds_max": 1.0}
# The amounts judged so; the counts and texts after them must be equal to stay unrecorded.
PLOTTED_AMOUNTS = ("consumer_lag_msgs_total", "consumer_lag_msgs_max", "consumer_lag_seconds_max")
PLOTTED_EXACT = (
    "consumer_groups",
    "consumer_groups_not_ok",
    "consumer_lag_status",
    "consumer_lag_seconds_kind",
)


def topic_lag_figures(rows: list[GroupTopicStatus]) -> dict[str, int | float | str]:
    """One topic's lag over its consumer groups (`rows`), as the numbers people plot:
    groups, groups not OK (status a warning or critical), total and worst lag in
    messages, the worst lag in seconds (0.1 s; left out when no group's is known and
    messages are waiting) with its kind, and the worst status. No rows: zeros."""
    if not rows:
        return {
            "consumer_groups": 0,
            "consumer_groups_not_ok": 0,
            "consumer_lag_msgs_total": 0,
            "consumer_lag_msgs_max": 0,
            "consumer_lag_seconds_max": 0.0,
            "consumer_lag_seconds_kind": "none",
            "consumer_lag_status": "NO_GROUPS",
        }
    known = [s for s in rows if s.lag_seconds is not None]
    figures: dict[str, int | float | str] = {
        "consumer_groups": len(rows),
        "consumer_groups_not_ok": sum(1 for s in rows if s.severity not in ("ok", "info")),
        "consumer_lag_msgs_total": sum(s.lag_msgs for s in rows),
        "consumer_lag_msgs_max": max(s.lag_msgs for s in rows),
    }
    if known:
        top = max(known, key=lambda s: s.lag_seconds)
        seconds = round_for_people(top.lag_seconds)
        if seconds is not None:
            figures["consumer_lag_seconds_max"] = seconds
            figures["consumer_lag_seconds_kind"] = top.lag_seconds_kind or "unknown"
    if "consumer_lag_seconds_max" not in figures:
        if figures["consumer_lag_msgs_total"] == 0:
            figures["consumer_lag_seconds_max"] = 0.0
            figures["consumer_lag_seconds_kind"] = "caught_up"
        else:
            figures["consumer_lag_seconds_kind"] = "unknown"
    figures["consumer_lag_status"] = worst(s.status for s in rows)
    return figures


def _moved(key: str, before: object, now: object) -> bool:
    if not isinstance(before, (int, float)) or not isinstance(now, (int, float)):
        return before != now
    step = abs(now - before)
    return step >= max(MOVED_FRACTION * abs(before), MOVED_AT_LEAST.get(key, 0)) and step > 0


def worth_recording(
    figures: dict,
    previous: dict | None,
    previous_at: float | None,
    now: float,
    every_s: float = OBSERVE_EVERY_SECONDS,
) -> bool:
    """Record a topic's figures this tick? Yes when nothing was recorded before, the last
    record is `every_s` old, a count or text differs (groups, groups not OK, status, kind
    of seconds), or an amount (messages, seconds) moved by MOVED_FRACTION of its recorded
    value (at least MOVED_AT_LEAST: 1 s for seconds, 1 message)."""
    if previous is None or previous_at is None or now - previous_at >= every_s:
        return True
    if any(figures.get(k) != previous.get(k) for k in PLOTTED_EXACT):
        return True
    return any(_moved(k, previous.get(k), figures.get(k)) for k in PLOTTED_AMOUNTS)


def _figure_metadata(figures: dict) -> dict:
    meta: dict = {}
    for key, value in figures.items():
        if isinstance(value, str):
            meta[key] = dg.MetadataValue.text(value)
        elif isinstance(value, int):
            meta[key] = dg.MetadataValue.int(value)
        else:
            meta[key] = dg.MetadataValue.float(value)
    return meta


def _own_asset_topics(catalog: Catalog) -> tuple:
    """The topics with an asset of their own: their lag is plotted there. Topics a large
    catalog groups under one asset per prefix (docs/scale.md) are not plotted one by one."""
    from ecap_ops.orchestration.topics import topic_layout

    return topic_layout(catalog).own


def _topic_observations(
    catalog: Catalog,
    statuses: tuple[GroupTopicStatus, ...],
    previous: dict[str, tuple[dict, float]] | None = None,
    now: float | None = None,
    every_s: float = OBSERVE_EVERY_SECONDS,
    complete: bool = True,
    cluster: ClusterScope = SINGLE,
) -> list[dg.AssetObservation]:
    """Per catalog topic: lag over all its groups, when `worth_recording` (against
    `previous`: topic -> (its last recorded figures, when)). A topic no group consumes
    is recorded (as zeros) only when its last record had groups and the measurement was
    `complete`, so that its plot drops to zero instead of stopping at the last lag."""
    now = time.time() if now is None else now
    previous = previous or {}
    by_topic: dict[str, list[GroupTopicStatus]] = {}
    for s in statuses:
        by_topic.setdefault(s.topic, []).append(s)
    out = []
    for spec in _own_asset_topics(catalog):
        rows = by_topic.get(spec.name, [])
        before, before_at = previous.get(spec.name, (None, None))
        if not rows and not (complete and before and before.get("consumer_groups")):
            continue
        figures = topic_lag_figures(rows)
        if not worth_recording(figures, before, before_at, now, every_s):
            continue
        rows.sort(key=lambda s: (STATUS_ORDER.index(s.status), -s.lag_msgs))
        meta = _figure_metadata(figures)
        meta["consumer_lag"] = dg.MetadataValue.md(
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
            if rows
            else "no consumer group has offsets on this topic"
        )
        out.append(dg.AssetObservation(asset_key=topic_key(spec, cluster), metadata=meta))
    return out


def recorded_lag_figures(
    instance: dg.DagsterInstance, catalog: Catalog, cluster: ClusterScope = SINGLE
) -> dict[str, tuple[dict, float]]:
    """Each catalog topic's last recorded lag figures and when (epoch seconds), read back
    from the instance (one query per topic). A topic whose record cannot be read is left
    out: it is recorded again, which is the safe side."""
    out: dict[str, tuple[dict, float]] = {}
    for spec in _own_asset_topics(catalog):
        try:
            records = instance.fetch_observations(topic_key(spec, cluster), limit=3).records
        except Exception:  # storage trouble costs one extra observation, nothing more
            continue
        for record in records:
            event = record.asset_observation
            if event is None or "consumer_lag_msgs_total" not in event.metadata:
                continue
            values = {k: v.value for k, v in event.metadata.items() if k != "consumer_lag"}
            out[spec.name] = (values, record.timestamp)
            break
    return out


def build_lag_sensor(
    catalog: Catalog,
    name: str = "consumer_lag_sensor",
    config: EvalConfig | None = None,
    include: tuple[str, ...] | None = None,
    exclude: tuple[str, ...] | None = None,
    budget_s: float | None = None,
    interval_s: int | None = None,
    observe_every_s: float = OBSERVE_EVERY_SECONDS,
    default_status: dg.DefaultSensorStatus | None = None,
    cursor_max_bytes: int | None = None,
    job: dg.JobDefinition = notify_consumer_lag,
    cluster: ClusterScope = SINGLE,
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
        description=cluster.describe(
            f"Every {interval} s: measure every consumer group's lag in messages and seconds, judge it "
            "(DATA_LOSS, STOPPED, STALLED, BEHIND_SLA, REWIND, LAGGING, ...) against the catalog's per-topic "
            "thresholds, record lag observations on the topic assets, and notify incident changes through "
            f"notify_consumer_lag.{scope_text}"
        ),
    )
    @cluster.bind
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
                e,
                {
                    "ecap_ops/lag_event": e.event_name,
                    "ecap_ops/consumer_group": e.group[:250],
                    **cluster.tags,
                },
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
        try:
            previous = recorded_lag_figures(context.instance, catalog, cluster)
        except Exception:  # no instance (a unit test's context): record every topic
            previous = {}
        observations = _topic_observations(
            catalog,
            ev.statuses,
            previous,
            now=obs.at,
            every_s=observe_every_s,
            complete=not obs.partial,
            cluster=cluster,
        )
        if observations:
            context.log.info(
                f"{name}: lag recorded on {len(observations)} topic asset(s): "
                + ", ".join(o.asset_key.path[-1] for o in observations[:10])
            )
        if runs:
            return dg.SensorResult(run_requests=runs, cursor=cursor, asset_events=observations)
        return dg.SensorResult(
            skip_reason=f"no incident changes: {summary}", cursor=cursor, asset_events=observations
        )

    return _sensor


def build_defs(catalog: Catalog, cluster: ClusterScope = SINGLE) -> dg.Definitions:
    job = notify_consumer_lag
    if cluster.prefixed:
        job = notify_job(
            cluster.name("notify_consumer_lag"),
            cluster.describe(
                "Notify one consumer-lag incident event (open, escalate, remind-N, resolve). "
                f"Launched by {cluster.name('consumer_lag_sensor')} with a run key per event."
            ),
            "consumer_lag",
        )
    sensor = build_lag_sensor(
        catalog, name=cluster.name("consumer_lag_sensor"), job=job, cluster=cluster
    )
    return dg.Definitions(jobs=[job], sensors=[sensor])
