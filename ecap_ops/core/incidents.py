"""Incidents: one model for consumer lag, cluster health and the DR drill. Pure.

Every source judges its own facts into a *level* of one vocabulary, `OK`, `WARN` or `CRIT`
(lag's statuses map onto it through their severity: `level_of`). `step` then moves the
source's incident the same way for all of them:

- `open`: no incident and the level is WARN or CRIT;
- `escalate`: the level is worse than the incident's worst so far (once per level);
- `changed`: the source says something new is wrong at the current level (health: another
  broker down, other partitions offline);
- `remind`: still WARN or CRIT, and nothing was sent for the reminder interval of the
  current level (0: no reminders);
- `resolve`: clean for `resolve_after` evaluations in a row ("clean" is the source's
  call: health, level OK; lag, OK with lag below half the warning level).

Each event a source emits is a typed value (`HealthEvent`, lag's `IncidentEvent`,
`DrillEvent`), registered here with its wire form (for a Dagster run's config) and its one
alert (`to_alert`). Each event is notified by one Dagster run requested with
`run_key(incident id, event name)`, so that a retried tick or a re-executed run can never
notify twice.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ecap_ops.core.alerts import Alert

OK, WARN, CRIT = "OK", "WARN", "CRIT"
LEVELS = (OK, WARN, CRIT)
_RANK = {OK: 0, WARN: 1, CRIT: 2}

OPEN, ESCALATE, CHANGED, REMIND, RESOLVE, CLOSE = (
    "open",
    "escalate",
    "changed",
    "remind",
    "resolve",
    "close",
)

# How a level reads in an alert (the sinks' words), and an ended incident.
_ALERT_SEVERITY = {OK: "info", WARN: "warning", CRIT: "critical"}
# Lag's severities (and the alerts' words) as levels.
_LEVEL_OF = {"critical": CRIT, "warning": WARN, "info": OK, "ok": OK, "resolved": OK}


def rank(level: str) -> int:
    return _RANK[level]


def level_of(severity: str) -> str:
    """A level from a severity word (`critical`, `warning`, `info`, `ok`) or a level."""
    if severity in _RANK:
        return severity
    return _LEVEL_OF.get(severity, OK)


def alert_severity(kind: str, level: str) -> str:
    """An alert's severity for an event: `resolved` when the incident ended, else the level's
    word (critical, warning)."""
    if kind in (RESOLVE, CLOSE):
        return "resolved"
    return _ALERT_SEVERITY[level_of(level)]


def event_name(kind: str, number: int = 0) -> str:
    """`remind-2`, `changed-1`, or the kind: unique within one incident."""
    return f"{kind}-{number}" if kind in (REMIND, CHANGED) else kind


def run_key(incident_id: str, name: str) -> str:
    """The run key of an incident event's notification: one run per event, ever."""
    return f"{incident_id}:{name}"


@dataclass(frozen=True)
class IncidentRules:
    """When an incident reminds and resolves (the design note's defaults)."""

    remind_warning_s: float = 4 * 3600.0  # 0: no reminders while WARN
    remind_critical_s: float = 30 * 60.0  # 0: no reminders while CRIT
    resolve_after: int = 2  # clean evaluations in a row that resolve

    def __post_init__(self) -> None:
        if self.remind_warning_s < 0 or self.remind_critical_s < 0:
            raise ValueError("reminder intervals must not be negative")
        if self.resolve_after < 1:
            raise ValueError("resolve_after must be at least 1")

    def remind_after(self, level: str) -> float:
        return self.remind_critical_s if level == CRIT else self.remind_warning_s


# Track and Step are named tuples: immutable like a frozen dataclass, and built several
# times faster (a lag tick at 10,000 groups moves tens of thousands of incidents).
class Track(NamedTuple):
    """An open incident as the rules see it. Sources keep it in their own state (the lag
    window, the health asset's metadata, the drill's observations)."""

    id: str
    opened: float
    level: str  # the latest WARN or CRIT level
    peak: str  # the worst level so far
    last: float  # when something was last sent
    reminders: int = 0
    changes: int = 0
    clean: int = 0  # clean evaluations in a row

    def name_of(self, kind: str) -> str:
        return event_name(
            kind, self.reminders if kind == REMIND else self.changes if kind == CHANGED else 0
        )


class Step(NamedTuple):
    """What one evaluation did to an incident: the incident afterwards (None: closed or none),
    the event to notify (None: nothing), and the incident as the event describes it."""

    track: Track | None
    kind: str | None = None
    subject: Track | None = None

    @property
    def name(self) -> str | None:
        return (
            None if self.kind is None or self.subject is None else self.subject.name_of(self.kind)
        )


def step(
    track: Track | None,
    level: str,
    now: float,
    rules: IncidentRules,
    new_id: Callable[[], str],
    clean: bool | None = None,
    changed: bool = False,
) -> Step:
    """One evaluation of a source at `level` against its open incident (see the module)."""
    if level not in _RANK:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    now = round(now, 3)
    if track is None:
        if level == OK:
            return Step(None)
        opened = Track(new_id(), now, level, level, now)
        return Step(opened, OPEN, opened)
    clean = level == OK if clean is None else clean
    # Each outcome builds the track once (thousands of incidents move in a lag tick).
    n_clean = track.clean + 1 if clean else 0
    latest = level if level != OK else track.level
    if _RANK[level] > _RANK[track.peak]:
        t = _moved(track, latest, level, now, track.reminders, track.changes, n_clean)
        return Step(t, ESCALATE, t)
    if n_clean >= rules.resolve_after:
        t = _moved(track, latest, track.peak, track.last, track.reminders, track.changes, n_clean)
        return Step(None, RESOLVE, t)
    if level != OK and changed:
        t = _moved(track, latest, track.peak, now, track.reminders, track.changes + 1, n_clean)
        return Step(t, CHANGED, t)
    every = rules.remind_after(latest)
    if level != OK and every > 0 and now - track.last >= every:
        t = _moved(track, latest, track.peak, now, track.reminders + 1, track.changes, n_clean)
        return Step(t, REMIND, t)
    return Step(
        _moved(track, latest, track.peak, track.last, track.reminders, track.changes, n_clean)
    )


def _moved(
    t: Track, level: str, peak: str, last: float, reminders: int, changes: int, clean: int
) -> Track:
    return Track(t.id, t.opened, level, peak, last, reminders, changes, clean)


# -- events: their wire form and their alert ------------------------------------------------


@dataclass(frozen=True)
class EventType:
    """How one source's events cross into a notification run, and read as an alert."""

    source: str  # consumer_lag, health_check, dr_drill
    cls: type
    to_wire: Callable[[Any], dict]
    from_wire: Callable[[dict], Any]
    alert: Callable[[Any, str | None], Alert]


_TYPES: dict[str, EventType] = {}
# The modules that register their event types (imported on first use: no import cycle).
_EVENT_MODULES = (
    "ecap_ops.core.lag_alerts",
    "ecap_ops.core.health_alerts",
    "ecap_ops.core.drill_incidents",
    "ecap_ops.core.contracts",
    "ecap_ops.core.mirror",
)


def register(event_type: EventType) -> None:
    _TYPES[event_type.source] = event_type


def _types() -> dict[str, EventType]:
    """Every source's event type: each module of _EVENT_MODULES imported (once: an imported
    module is only looked up), whichever of them registered first."""
    for name in _EVENT_MODULES:
        importlib.import_module(name)
    return _TYPES


def _type_of(event) -> EventType:
    for t in _types().values():
        if isinstance(event, t.cls):
            return t
    raise TypeError(f"not an incident event: {type(event).__name__}")


def source_of(event) -> str:
    return _type_of(event).source


def to_wire(event) -> dict:
    """The event as JSON-able data with its source: what a notification run's config holds."""
    t = _type_of(event)
    return {"source": t.source, **t.to_wire(event)}


def from_wire(data: dict):
    """The typed event back from `to_wire`'s data. ValueError, naming what is wrong, when it
    is not an event of a known source."""
    if not isinstance(data, dict):
        raise ValueError(f"an incident event is an object, got {type(data).__name__}")
    source = data.get("source")
    types = _types()
    if source not in types:
        shown = str(source)[:40]
        raise ValueError(
            f"unknown incident event source {shown!r}; known: {', '.join(sorted(types))}"
        )
    body = {k: v for k, v in data.items() if k != "source"}
    try:
        return types[source].from_wire(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"a {source} incident event that cannot be read: {type(exc).__name__}: {str(exc)[:200]}"
        ) from exc


def to_alert(event, run_url: str | None = None) -> Alert:
    """The one alert of an incident event, by its type."""
    return _type_of(event).alert(event, run_url)
