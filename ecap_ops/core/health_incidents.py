"""Health incidents: notify on change, not on every unhealthy run. Pure.

The scheduled health check runs every 5 minutes. Each run's report is judged against the
incident the previous run left open (if any) by the one incident model (`core.incidents`):
`decide(previous state, report, now, policy) -> (new state, events)`:

- `open`: the result becomes unhealthy (CRIT; WARN too unless the policy alerts on
  critical only);
- `escalate`: an open warning incident becomes critical (once per incident);
- `changed`: a problem appears at the incident's current level that people have not been
  told about in this incident (a different broker down, other partitions offline, another
  catalog topic missing, a disk going from warning to critical); problems going away, and
  measurements moving (disk percent, latency), are not a change worth a message;
- `remind`: still unhealthy, every 30 min while critical, every 4 h while warning;
- `resolve`: healthy (below the alerting level) for `resolve_after_runs` runs in a row,
  with the incident's duration and its worst level.

A problem is identified by its finding's check and subject, and the finding's structured
`items` (or, for partitions, the report's partition lists): never by its message text.
The state is a small JSON-able dict kept on the health asset between runs (see
`orchestration/health.py`); a state that cannot be read counts as "no open incident"
(`read_state` says why). Each event is a `HealthEvent` carrying what its alert needs.
"""

import hashlib
from dataclasses import dataclass, field

from ecap_ops.core import incidents
from ecap_ops.core.health import CRIT, OK, WARN, Finding, HealthReport
from ecap_ops.core.incidents import IncidentRules, Track

STATE_VERSION = 1
_RANK = {OK: 0, WARN: 1, CRIT: 2}
# Beyond this many partitions in one finding, its problems are tracked per topic.
MAX_PARTITION_ITEMS = 100
# Beyond this many topics, the finding is one problem.
MAX_TOPIC_ITEMS = 100
MAX_KNOWN = 1000
SUMMARY_LINES = 8
LABEL_CHARS = 240
# What an event carries of the report (it travels in a notification run's config).
EVENT_FINDINGS = 50
EVENT_MESSAGE_CHARS = 1000


@dataclass(frozen=True)
class IncidentPolicy:
    """When the health check notifies."""

    alert_on: str = WARN  # the lowest status that is an incident: WARN or CRIT
    remind_warning_s: float = 4 * 3600.0  # 0: no reminders while warning
    remind_critical_s: float = 30 * 60.0  # 0: no reminders while critical
    resolve_after_runs: int = 2  # healthy runs in a row that resolve an incident

    def __post_init__(self) -> None:
        if self.alert_on not in (WARN, CRIT):
            raise ValueError(f"alert_on must be {WARN} or {CRIT}, got {self.alert_on!r}")
        self.rules()  # the intervals and the run count are checked there

    def level(self, status: str) -> str:
        """The incident level a report status stands for: OK when below `alert_on`."""
        return status if _RANK.get(status, 0) >= _RANK[self.alert_on] else OK

    def rules(self) -> IncidentRules:
        return IncidentRules(self.remind_warning_s, self.remind_critical_s, self.resolve_after_runs)


@dataclass(frozen=True)
class HealthEvent:
    """One change of the health incident, with the run's report as its alert needs it."""

    kind: str  # open, escalate, changed, remind, resolve
    incident_id: str
    status: str  # this run's report status
    level: str  # the incident's level now (WARN or CRIT; OK on resolve)
    peak: str  # the worst level the incident reached
    at: float
    since: float  # when the incident opened
    report: HealthReport  # this run's problems (messages bounded), metrics and where
    reminder: int = 0
    change: int = 0
    new: tuple[str, ...] = ()  # the problems that made a change (open/escalate/changed)
    summary: tuple[str, ...] = ()  # on resolve: the problems as last notified

    @property
    def event_name(self) -> str:
        """What people read: `remind-N` or the kind."""
        return f"remind-{self.reminder}" if self.kind == incidents.REMIND else self.kind

    @property
    def run_key(self) -> str:
        """One notification run per event: `changed` events are numbered in the key."""
        n = self.reminder if self.kind == incidents.REMIND else self.change
        return incidents.run_key(self.incident_id, incidents.event_name(self.kind, n))

    @property
    def severity(self) -> str:
        """The alert's severity: warning, critical or resolved."""
        return incidents.alert_severity(self.kind, self.level)

    @property
    def duration_seconds(self) -> float:
        return max(0.0, self.at - self.since)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "event": self.event_name,
            "incident_id": self.incident_id,
            "status": self.status,
            "level": self.level,
            "peak": self.peak,
            "severity": self.severity,
            "at": self.at,
            "since": self.since,
            "duration_seconds": round(self.duration_seconds, 1),
            "reminder": self.reminder,
            "change": self.change,
            "new": list(self.new),
            "summary": list(self.summary),
        }


@dataclass(frozen=True)
class Decision:
    state: dict
    events: tuple[HealthEvent, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def incident(self) -> dict | None:
        return self.state.get("incident")


# -- problems and their identity ---------------------------------------------------------


def _label(check: str, subject: str, message: str) -> str:
    text = f"[{check}] {subject}: {message}"
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 3] + "..."


def _hash(ident: str) -> str:
    return hashlib.sha1(ident.encode()).hexdigest()[:12]


_PARTITION_FIELDS = {
    "offline": "offline",
    "under min ISR": "under_min_isr",
    "under-replicated": "under_replicated",
}


def _identities(f: Finding, report: HealthReport) -> list[str]:
    """What identifies one finding's problem(s) across runs: its items (the report's
    partition lists for the partition findings), without its measurements (disk percents,
    latencies change every run and are not a new problem), never its message text."""
    if f.check == "partitions" and f.subject in _PARTITION_FIELDS:
        parts: dict[str, list[int]] = getattr(report, _PARTITION_FIELDS[f.subject]) or {}
        pairs = [f"{t}/{p}" for t, ps in sorted(parts.items()) for p in ps]
        if pairs and len(pairs) <= MAX_PARTITION_ITEMS:
            return pairs
        if parts and len(parts) <= MAX_TOPIC_ITEMS:
            return sorted(parts)
        return [""]
    if f.items:
        return list(f.items)[:MAX_KNOWN]
    return [""]  # the check and subject are the problem


def finding_keys(f: Finding, report: HealthReport) -> list[str]:
    """The short ids of the problem(s) one finding stands for (see `problem_items`)."""
    return [_hash(f"{f.check}\x1f{f.subject}\x1f{i}") for i in _identities(f, report)]


def problem_items(report: HealthReport) -> dict[str, tuple[str, str]]:
    """Every problem of a report: short id -> (severity, label). A finding listing several
    things (partitions, brokers, missing topics) is one problem per thing, so that a
    different broker down is a new problem and one fewer offline partition is not."""
    items: dict[str, tuple[str, str]] = {}
    for f in report.problems():
        label = _label(f.check, f.subject, f.message)
        for key in finding_keys(f, report):
            prev = items.get(key)
            if prev is None or _RANK[f.severity] > _RANK[prev[0]]:
                items[key] = (f.severity, label)
    return items


# -- state ---------------------------------------------------------------------------------


def new_state(report: HealthReport, now: float) -> dict:
    return {
        "v": STATE_VERSION,
        "cluster_id": report.cluster_id,
        "bootstrap": report.bootstrap,
        "at": round(now, 3),
        "status": report.status,
        "incident": None,
        "seen": {},
    }


def first_seen(previous: dict | None, report: HealthReport, now: float) -> dict[str, float]:
    """When each current problem was first seen in an unbroken run of reports: problem id
    -> epoch seconds. Carried from the previous state; a problem that went away and comes
    back starts again. Bounded like `known`."""
    before = previous.get("seen") if isinstance(previous, dict) else None
    before = before if isinstance(before, dict) else {}
    seen: dict[str, float] = {}
    for key in problem_items(report):
        try:
            seen[key] = min(float(before[key]), round(now, 3))
        except (KeyError, TypeError, ValueError):
            seen[key] = round(now, 3)
        if len(seen) >= MAX_KNOWN:
            break
    return seen


def finding_since(state: dict, f, report: HealthReport) -> float | None:
    """Since when (epoch seconds) the problem a finding reports has been seen; None for an
    OK finding or one not tracked."""
    if f.severity == OK:
        return None
    seen = state.get("seen") or {}
    times = [seen[k] for k in finding_keys(f, report) if k in seen]
    return min(times) if times else None


def read_state(raw) -> tuple[dict | None, str | None]:
    """A stored state, checked: (state, None), or (None, why it cannot be used). None in,
    (None, None) out: there was no state yet."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        return None, f"the state is a {type(raw).__name__}, not an object"
    if raw.get("v") != STATE_VERSION:
        return None, f"the state has version {raw.get('v')!r}, expected {STATE_VERSION}"
    inc = raw.get("incident")
    if inc is None:
        return raw, None
    try:
        ok = (
            isinstance(inc, dict)
            and isinstance(inc["id"], str)
            and inc["level"] in (WARN, CRIT)
            and inc["peak"] in (WARN, CRIT)
            and isinstance(inc["known"], dict)
            and all(v in (WARN, CRIT) for v in inc["known"].values())
            and isinstance(inc["summary"], list)
        )
        float(inc["opened"]), float(inc["last"]), int(inc["n"]), int(inc["healthy"])
        int(inc.get("c") or 0)
    except (KeyError, TypeError, ValueError) as exc:
        return None, f"the open incident cannot be read ({type(exc).__name__}: {exc})"
    if not ok:
        return None, "the open incident has unexpected values"
    return raw, None


def _track(inc: dict) -> Track:
    return Track(
        inc["id"],
        float(inc["opened"]),
        inc["level"],
        inc["peak"],
        float(inc["last"]),
        int(inc["n"]),
        int(inc.get("c") or 0),
        int(inc["healthy"]),
    )


def _stored(t: Track, known: dict, summary: list) -> dict:
    return {
        "id": t.id,
        "opened": t.opened,
        "level": t.level,
        "peak": t.peak,
        "last": t.last,
        "n": t.reminders,
        "c": t.changes,
        "healthy": t.clean,
        "known": known,
        "summary": summary,
    }


def _summary(items: dict[str, tuple[str, str]]) -> list[str]:
    labels = sorted({label for _, label in items.values()})
    worst_first = sorted(
        labels, key=lambda lb: -max(_RANK[s] for s, x in items.values() if x == lb)
    )
    return worst_first[:SUMMARY_LINES]


def _new_problems(items: dict[str, tuple[str, str]], known: dict[str, str], level: str) -> list:
    """Problems at the incident's level not yet notified at that level in this incident."""
    labels = {
        label
        for key, (sev, label) in items.items()
        if sev == level and _RANK[known.get(key, OK)] < _RANK[sev]
    }
    return sorted(labels)


def _known_after(known: dict, items: dict[str, tuple[str, str]]) -> dict:
    """Everything people have been told about in this incident, at its worst: a problem that
    comes back after going away is not news. Bounded: beyond MAX_KNOWN, only what is current."""
    known = dict(known)
    for k, (sev, _) in items.items():
        if _RANK[sev] > _RANK[known.get(k, OK)]:
            known[k] = sev
    if len(known) > MAX_KNOWN:
        known = {k: sev for k, (sev, _) in items.items()}
    return known


def event_report(report: HealthReport) -> HealthReport:
    """The report as an event carries it: its problems (bounded), metrics and where; no
    partition lists (the findings name them)."""
    problems = tuple(
        Finding(f.check, f.severity, f.subject, f.message[:EVENT_MESSAGE_CHARS])
        for f in report.problems()[:EVENT_FINDINGS]
    )
    return HealthReport(
        report.status,
        report.env,
        report.cluster_id,
        report.bootstrap,
        report.at_ms,
        problems,
        dict(report.metrics),
        {},
        {},
        {},
    )


def _other_cluster(previous: dict | None, inc: dict | None, report: HealthReport) -> str | None:
    if inc is None or not previous or not previous.get("cluster_id") or not report.cluster_id:
        return None
    if previous["cluster_id"] == report.cluster_id:
        return None
    return (
        f"cluster id changed from {previous['cluster_id']} to {report.cluster_id}: "
        f"incident {inc['id']} of the other cluster dropped without a message"
    )


def decide(
    previous: dict | None,
    report: HealthReport,
    now: float,
    policy: IncidentPolicy = IncidentPolicy(),
) -> Decision:
    """This run's report against the incident the previous run left: the new state and the
    events to notify. `previous` must come from `read_state` (or be None)."""
    inc = dict(previous["incident"]) if previous and previous.get("incident") else None
    note = _other_cluster(previous, inc, report)
    if note:
        inc = None
    state = new_state(report, now)
    state["seen"] = first_seen(previous, report, now)
    level = policy.level(report.status)
    items = problem_items(report) if level != incidents.OK else {}
    known = inc["known"] if inc else {}
    new = _new_problems(items, known, level) if level != incidents.OK else []
    who = report.cluster_id or report.bootstrap
    s = incidents.step(
        _track(inc) if inc else None,
        level,
        now,
        policy.rules(),
        new_id=lambda: f"health:{who}:{int(now * 1000)}",
        changed=bool(new),
    )
    events: list[HealthEvent] = []
    if s.kind is not None and s.subject is not None:
        t = s.subject
        if s.kind == incidents.RESOLVE:
            summary = list(inc["summary"]) if inc else []
        else:  # something was sent: what people know now
            known, summary = _known_after(known, items), _summary(items)
        events.append(
            HealthEvent(
                kind=s.kind,
                incident_id=t.id,
                status=report.status,
                level=incidents.OK if s.kind == incidents.RESOLVE else t.level,
                peak=t.peak,
                at=round(now, 3),
                since=t.opened,
                report=event_report(report),
                reminder=t.reminders if s.kind == incidents.REMIND else 0,
                change=t.changes if s.kind == incidents.CHANGED else 0,
                new=tuple(new) if s.kind != incidents.REMIND else (),
                summary=tuple(summary) if s.kind == incidents.RESOLVE else (),
            )
        )
        if s.track is not None:
            state["incident"] = _stored(s.track, known, summary)
    elif s.track is not None:
        keep = inc or {"known": {}, "summary": []}
        state["incident"] = _stored(s.track, keep["known"], keep["summary"])
    return Decision(state, tuple(events), (note,) if note else ())
