"""A group's verdict on one topic, tick after tick: debouncing, LAGGING over several ticks,
and the incident it opens, escalates, reminds of and resolves (by `core.incidents`, the
rules lag shares with health and the DR drill). Pure."""

from collections.abc import Callable
from dataclasses import dataclass

from ecap_ops.catalog.model import LagThresholds
from ecap_ops.core import incidents
from ecap_ops.core.lag_model import IncidentEvent, PartitionLag
from ecap_ops.core.lag_status import (
    IMMEDIATE,
    LAGGING,
    OK,
    SEVERITY,
    SEVERITY_RANK,
    EvalConfig,
    least_severe,
    severity_of,
    status_rank,
    worst_first,
)
from ecap_ops.core.lag_window import Incident, TopicWindow


def r1(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


@dataclass(slots=True)
class TopicTick:
    """What an incident event says about a group on a topic at this tick."""

    cluster: str
    group: str
    topic: str
    now: float
    lag_msgs: int = 0
    lag_seconds: float | None = None
    lag_seconds_kind: str = "unknown"
    partitions: tuple[PartitionLag, ...] | list[PartitionLag] = ()
    n_worst: int = 3
    # The worst partitions' dicts by `id(partitions)`, kept for one tick: groups that share
    # their partitions' figures share them (a tuple, alive as long as the tick).
    worst_cache: dict | None = None


def incident_event(
    kind: str,
    inc: Incident,
    ctx: TopicTick,
    status: str,
    reminder: int = 0,
    reason: str = "",
    notify: bool = True,
) -> IncidentEvent:
    return IncidentEvent(
        kind=kind,
        incident_id=inc.id,
        cluster_id=ctx.cluster,
        group=ctx.group,
        topic=ctx.topic,
        status=status,
        severity="resolved" if kind in ("resolve", "close") else inc.severity,
        at=ctx.now,
        since=inc.opened,
        lag_msgs=ctx.lag_msgs,
        lag_seconds=ctx.lag_seconds,
        worst=_worst_dicts(ctx),
        reminder=reminder,
        peak_msgs=inc.peak_msgs,
        peak_seconds=inc.peak_seconds,
        reason=reason,
        notify=notify,
        lag_seconds_kind=ctx.lag_seconds_kind,
    )


def _worst_dicts(ctx: TopicTick) -> tuple[dict, ...]:
    """The worst partitions of the group on the topic, for a notification (only events need
    them, so they are worked out only for those)."""
    if not ctx.partitions:
        return ()
    cache = ctx.worst_cache if type(ctx.partitions) is tuple else None
    worst = cache.get(id(ctx.partitions)) if cache is not None else None
    if worst is None:
        worst = tuple(pl.to_dict() for pl in sorted(ctx.partitions, key=worst_first)[: ctx.n_worst])
        if cache is not None:
            cache[id(ctx.partitions)] = worst
    return worst


def _debounced(tw: TopicWindow, raw: str, th: LagThresholds, cfg: EvalConfig, ctx: TopicTick):
    """(raw status with LAGGING decided, debounced status). Updates `tw.lag` and `tw.raw`."""
    total, secs = ctx.lag_msgs, ctx.lag_seconds
    # LAGGING: above the warning level for `for_ticks` ticks and not decreasing.
    over = total > th.warn_msgs or (secs is not None and secs > th.warn_seconds)
    tw.lag = (tw.lag + [[total, r1(secs)] if over else None])[-cfg.for_ticks :]
    if status_rank(raw) > status_rank(LAGGING) and over:
        hist = tw.lag
        if th.critical_at_once:
            raw = LAGGING
        elif len(hist) >= cfg.for_ticks and all(x is not None for x in hist):
            first = hist[0]
            decreasing = total < first[0] and (secs is None or first[1] is None or secs < first[1])
            if not decreasing:
                raw = LAGGING
    tw.raw = (tw.raw + [raw])[-cfg.debounce_ticks :]
    # Exact statuses count at once; LAGGING carries its own for_ticks; the others must hold
    # for `debounce_ticks` ticks (the least severe of those ticks counts).
    if (
        raw in IMMEDIATE
        or raw == LAGGING
        or (th.critical_at_once and SEVERITY_RANK[severity_of(raw, th)] >= 2)
    ):
        return raw, raw
    recent = tw.raw
    if len(recent) < cfg.debounce_ticks:
        recent = [OK] * (cfg.debounce_ticks - len(recent)) + recent
    return raw, least_severe(recent)


def judge_topic(
    tw: TopicWindow,
    raw: str,
    th: LagThresholds,
    cfg: EvalConfig,
    ctx: TopicTick,
    new_incident_id: Callable[[], str],
    events: list[IncidentEvent],
) -> tuple[str, str, str, str | None]:
    """A group's verdict on one topic from its worst partition's status `raw`: (raw status,
    debounced status, severity, incident id). Updates the topic's window `tw` and appends
    incident events; the incident moves by the one incident model (`core.incidents`)."""
    raw, status = _debounced(tw, raw, th, cfg, ctx)
    sev = severity_of(status, th)
    inc = tw.incident
    total, secs = ctx.lag_msgs, ctx.lag_seconds
    if inc is not None:
        inc.peak_msgs = max(inc.peak_msgs, total)
        if secs is not None:
            inc.peak_seconds = r1(max(inc.peak_seconds or 0.0, secs))
        if SEVERITY_RANK[sev] >= SEVERITY_RANK["warning"]:
            inc.status = status
    # Hysteresis: clean means this tick alone is OK/IDLE and the lag is below half the
    # warning level, in messages and in seconds.
    secs_or_worst = secs if secs is not None else (0.0 if total == 0 else float("inf"))
    clean = (
        SEVERITY[raw] == "ok" and total < th.warn_msgs / 2 and secs_or_worst < th.warn_seconds / 2
    )
    s = incidents.step(
        _track(inc, tw, th) if inc is not None else None,
        incidents.level_of(sev),
        ctx.now,
        cfg.incident_rules,
        new_id=new_incident_id,
        clean=clean,
    )
    tw.clean = s.track.clean if s.track is not None else 0
    if s.kind == incidents.OPEN:
        assert s.track is not None
        now = s.track.opened
        inc = Incident(s.track.id, now, sev, status, now, 0, total, r1(secs))
        tw.incident = inc
        events.append(incident_event("open", inc, ctx, status))
        return raw, status, sev, inc.id
    if inc is None:
        return raw, status, sev, None
    t = s.subject or s.track
    if t is not None:
        inc.severity, inc.last, inc.reminders = _SEVERITY_OF[t.peak], t.last, t.reminders
    if s.kind == incidents.ESCALATE:
        events.append(incident_event("escalate", inc, ctx, status))
    elif s.kind == incidents.RESOLVE:
        events.append(incident_event("resolve", inc, ctx, raw))
        tw.incident = None
        return raw, status, sev, None
    elif s.kind == incidents.REMIND:
        events.append(incident_event("remind", inc, ctx, inc.status, reminder=inc.reminders))
    return raw, status, sev, inc.id


_SEVERITY_OF = {incidents.CRIT: "critical", incidents.WARN: "warning"}


def _track(inc: Incident, tw: TopicWindow, th: LagThresholds) -> incidents.Track:
    """A lag incident as the incident model sees it: its level is its latest bad status's."""
    return incidents.Track(
        inc.id,
        inc.opened,
        incidents.level_of(severity_of(inc.status, th)),
        incidents.level_of(inc.severity),
        inc.last,
        inc.reminders,
        0,
        tw.clean,
    )
