"""Health incidents: notify on change, not on every unhealthy run. Pure.

The scheduled health check runs every 5 minutes. Each run's report is judged against the
incident the previous run left open (if any): `decide(previous state, report, now, policy)
-> (new state, events)`. Events, like the consumer-lag incidents:

- `open`: the result becomes unhealthy (CRIT -> critical; WARN-only -> warning, unless the
  policy alerts on critical only);
- `escalate`: an open warning incident becomes critical (once per incident);
- `changed`: a problem appears at the incident's current level that people have not been
  told about in this incident (a different broker down, other partitions offline, another
  catalog topic missing, a disk going from warning to critical); problems going away, and
  measurements moving (disk percent, latency), are not a change worth a message;
- `remind`: still unhealthy, every 30 min while critical, every 4 h while warning;
- `resolve`: healthy (below the alerting level) for `resolve_after_runs` runs in a row,
  with the incident's duration and its worst level.

Nothing is sent while the cluster stays healthy. The state is a small JSON-able dict; the
Dagster job keeps it between runs (see `orchestration/health.py`). A state that cannot be
read is treated as "no open incident" (`read_state` says why).
"""

import hashlib
import re
from dataclasses import dataclass, field

from ecap_ops.catalog.units import format_seconds
from ecap_ops.core.alerts import Alert
from ecap_ops.core.health import CRIT, OK, WARN, HealthReport, render_text

STATE_VERSION = 1
_RANK = {OK: 0, WARN: 1, CRIT: 2}
_SEVERITY = {WARN: "warning", CRIT: "critical"}
# Beyond this many partitions in one finding, its problems are tracked per topic.
MAX_PARTITION_ITEMS = 100
# Beyond this many topics, the finding is one problem.
MAX_TOPIC_ITEMS = 100
MAX_KNOWN = 1000
SUMMARY_LINES = 8
LABEL_CHARS = 240


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
        if self.remind_warning_s < 0 or self.remind_critical_s < 0:
            raise ValueError("reminder intervals must not be negative")
        if self.resolve_after_runs < 1:
            raise ValueError("resolve_after_runs must be at least 1")

    def level(self, status: str) -> str:
        """The incident level a report status stands for: OK when below `alert_on`."""
        return status if _RANK.get(status, 0) >= _RANK[self.alert_on] else OK

    def remind_after(self, level: str) -> float:
        return self.remind_critical_s if level == CRIT else self.remind_warning_s


@dataclass(frozen=True)
class HealthEvent:
    """One change of the health incident, to notify."""

    kind: str  # open, escalate, changed, remind, resolve
    incident_id: str
    status: str  # this run's report status
    level: str  # the incident's level now (WARN or CRIT; OK on resolve)
    peak: str  # the worst level the incident reached
    at: float
    since: float  # when the incident opened
    reminder: int = 0
    new: tuple[str, ...] = ()  # the problems that made a change (open/escalate/changed)
    summary: tuple[str, ...] = ()  # on resolve: the problems as last notified

    @property
    def event_name(self) -> str:
        return f"remind-{self.reminder}" if self.kind == "remind" else self.kind

    @property
    def severity(self) -> str:
        """The alert's severity: warning, critical or resolved."""
        return "resolved" if self.kind == "resolve" else _SEVERITY.get(self.level, "warning")

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
_BROKERS_DOWN = re.compile(r"broker\(s\) ([\d, ]+) hold replicas")
_MISSING = re.compile(r"catalog topic\(s\) missing: (.*?)(?: \(run `|$)")
_DRIFT = "differs from the catalog: "


def _identities(f, report: HealthReport) -> list[str]:
    """What identifies one finding's problem(s) across runs, without its measurements (disk
    percentages, latencies, lags change every run and are not a new problem)."""
    if f.check == "partitions" and f.subject in _PARTITION_FIELDS:
        parts: dict[str, list[int]] = getattr(report, _PARTITION_FIELDS[f.subject]) or {}
        pairs = [f"{t}/{p}" for t, ps in sorted(parts.items()) for p in ps]
        if pairs and len(pairs) <= MAX_PARTITION_ITEMS:
            return pairs
        if parts and len(parts) <= MAX_TOPIC_ITEMS:
            return sorted(parts)
        return [""]
    if f.check == "brokers":
        m = _BROKERS_DOWN.search(f.message)
        if m:
            return [f"broker {b.strip()}" for b in m.group(1).split(",") if b.strip()]
        return [f.message.split(";")[0]]
    if f.check == "catalog":
        m = _MISSING.search(f.message)
        if m:
            return [f"missing {t.strip()}" for t in m.group(1).split(",") if t.strip()]
        if f.message.startswith(_DRIFT):
            return [f"drift {d.strip()}" for d in f.message[len(_DRIFT) :].split("; ")]
        return [f.message]
    if f.check == "partitions":  # replication 1: the topic names
        return [f.message.split(": ", 1)[-1]]
    # connection, quorum, disk, log_dirs, canary: the check and subject are the problem.
    return [""]


def finding_keys(f, report: HealthReport) -> list[str]:
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
    except (KeyError, TypeError, ValueError) as exc:
        return None, f"the open incident cannot be read ({type(exc).__name__}: {exc})"
    if not ok:
        return None, "the open incident has unexpected values"
    return raw, None


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


def decide(
    previous: dict | None,
    report: HealthReport,
    now: float,
    policy: IncidentPolicy = IncidentPolicy(),
) -> Decision:
    """This run's report against the incident the previous run left: the new state and the
    events to notify. `previous` must come from `read_state` (or be None)."""
    notes: list[str] = []
    inc = dict(previous["incident"]) if previous and previous.get("incident") else None
    if (
        inc is not None
        and previous is not None
        and previous.get("cluster_id")
        and report.cluster_id
        and previous["cluster_id"] != report.cluster_id
    ):
        notes.append(
            f"cluster id changed from {previous['cluster_id']} to {report.cluster_id}: "
            f"incident {inc['id']} of the other cluster dropped without a message"
        )
        inc = None
    state = new_state(report, now)
    state["seen"] = first_seen(previous, report, now)
    level = policy.level(report.status)
    items = problem_items(report) if level != OK else {}
    events: list[HealthEvent] = []

    def event(kind: str, new=(), summary=(), reminder: int = 0) -> HealthEvent:
        assert inc is not None
        return HealthEvent(
            kind=kind,
            incident_id=inc["id"],
            status=report.status,
            level=level,
            peak=inc["peak"],
            at=round(now, 3),
            since=float(inc["opened"]),
            reminder=reminder,
            new=tuple(new),
            summary=tuple(summary),
        )

    def notified() -> None:
        assert inc is not None
        inc["last"] = round(now, 3)
        # Everything people have been told about in this incident, at its worst: a problem
        # that comes back after going away is not news.
        known = dict(inc["known"])
        for k, (sev, _) in items.items():
            if _RANK[sev] > _RANK[known.get(k, OK)]:
                known[k] = sev
        if len(known) > MAX_KNOWN:  # keep the state small: forget what is not current
            known = {k: sev for k, (sev, _) in items.items()}
        inc["known"] = known
        inc["summary"] = _summary(items)

    if inc is None:
        if level != OK:
            who = report.cluster_id or report.bootstrap
            inc = {
                "id": f"health:{who}:{int(now * 1000)}",
                "opened": round(now, 3),
                "level": level,
                "peak": level,
                "last": round(now, 3),
                "n": 0,
                "healthy": 0,
                "known": {},
                "summary": [],
            }
            new = _new_problems(items, {}, level)
            notified()
            events.append(event("open", new=new))
    elif level == OK:
        inc["healthy"] = int(inc["healthy"]) + 1
        if inc["healthy"] >= policy.resolve_after_runs:
            events.append(event("resolve", summary=inc["summary"]))
            inc = None
    else:
        inc["healthy"] = 0
        inc["level"] = level
        new = _new_problems(items, inc["known"], level)
        if level == CRIT and inc["peak"] != CRIT:
            inc["peak"] = CRIT
            notified()
            events.append(event("escalate", new=new))
        elif new:
            notified()
            events.append(event("changed", new=new))
        else:
            every = policy.remind_after(level)
            if every > 0 and now - float(inc["last"]) >= every:
                inc["n"] = int(inc["n"]) + 1
                notified()
                events.append(event("remind", reminder=inc["n"]))
    state["incident"] = inc
    return Decision(state, tuple(events), tuple(notes))


# -- alerts --------------------------------------------------------------------------------

_VERB = {
    "open": "opened",
    "escalate": "escalated to CRIT",
    "changed": "changed",
}


def event_alert(event: HealthEvent, report: HealthReport, run_url: str | None = None) -> Alert:
    """The alert for one incident event, with this run's findings."""
    where = f"{report.cluster_id or report.bootstrap} ({report.env})"
    took = format_seconds(event.duration_seconds)
    problems = report.problems()
    if event.kind == "resolve":
        title = f"Kafka health resolved on {where} after {took} (worst {event.peak}, now {report.status})"
        lines = [
            f"healthy again after {took} (worst {event.peak}); status now {report.status}",
            "the problems last notified:",
            *(f"  {s}" for s in event.summary),
        ]
    else:
        if event.kind == "remind":
            label = f"still {event.level} (reminder {event.reminder}, open {took})"
        else:
            label = _VERB.get(event.kind, event.kind)
        head = problems[0] if problems else None
        title = f"Kafka health {event.level} {label} on {where}"
        if head is not None:
            title += f": {head.check} {head.subject}"
        lines = [render_text(report)]
        if event.new and event.kind != "open":
            lines.append("new since the last message:")
            lines += [f"  {n}" for n in event.new]
        if event.kind != "open":
            lines.append(f"open for {took}")
    lines.append(f"incident: {event.incident_id} ({event.event_name})")
    return Alert(
        source="health_check",
        severity=event.severity,
        title=title,
        text="\n".join(lines),
        fields={**event.to_dict(), **report.alert_fields()},
        key=event.incident_id,
        run_url=run_url,
    )
