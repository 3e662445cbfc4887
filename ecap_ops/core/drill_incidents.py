"""The DR drill's incident: a failed drill opens it, another failed drill reminds of it
(at most every 30 minutes), a passing drill resolves it. Pure.

A drill that could not run at all (no snapshot, the cluster unreachable) is a failed drill
too. The state is a small JSON-able dict kept between drills on the Dagster asset
`ecap_ops/dr_drill` (see `orchestration/dr.py`); each event is a `DrillEvent` with what
its alert needs, notified by one run of `notify_dr_drill`.
"""

from dataclasses import asdict, dataclass, field

from ecap_ops.catalog.units import format_seconds
from ecap_ops.core import incidents
from ecap_ops.core.alerts import Alert
from ecap_ops.core.incidents import CRIT, OK, IncidentRules, Track

STATE_VERSION = 1
TEXT_CHARS = 4000
LIST_ITEMS = 20
ITEM_CHARS = 500
RULES = IncidentRules(remind_critical_s=30 * 60.0, resolve_after=1)


@dataclass(frozen=True)
class DrillFacts:
    """What one drill found: the snapshot it drilled, whether it passed, and why not."""

    passed: bool
    snapshot_path: str = ""
    snapshot_checksum: str = ""
    failed_topics: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # drill-level failures, or why it could not run
    text: str = ""  # the drill's report as people read it
    could_not_run: bool = False
    drill_run_id: str = ""

    def bounded(self) -> "DrillFacts":
        return DrillFacts(
            self.passed,
            self.snapshot_path[:ITEM_CHARS],
            self.snapshot_checksum[:64],
            tuple(t[:ITEM_CHARS] for t in self.failed_topics[:LIST_ITEMS]),
            tuple(p[:ITEM_CHARS] for p in self.problems[:LIST_ITEMS]),
            self.text[:TEXT_CHARS],
            self.could_not_run,
            self.drill_run_id[:64],
        )


@dataclass(frozen=True)
class DrillEvent:
    kind: str  # open, remind, resolve
    incident_id: str
    at: float
    since: float
    facts: DrillFacts
    reminder: int = 0

    @property
    def event_name(self) -> str:
        return incidents.event_name(self.kind, self.reminder)

    @property
    def run_key(self) -> str:
        return incidents.run_key(self.incident_id, self.event_name)

    @property
    def severity(self) -> str:
        return incidents.alert_severity(self.kind, CRIT)

    @property
    def duration_seconds(self) -> float:
        return max(0.0, self.at - self.since)


@dataclass(frozen=True)
class DrillDecision:
    state: dict
    events: tuple[DrillEvent, ...] = ()
    notes: tuple[str, ...] = field(default=())


def read_state(raw) -> tuple[Track | None, str | None]:
    """The open drill incident of a stored state: (incident or None, why it was ignored)."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict) or raw.get("v") != STATE_VERSION:
        return None, "the stored drill state has an unknown shape or version"
    inc = raw.get("incident")
    if inc is None:
        return None, None
    try:
        track = Track(
            str(inc["id"]),
            float(inc["opened"]),
            CRIT,
            CRIT,
            float(inc["last"]),
            int(inc.get("n") or 0),
        )
    except (KeyError, TypeError, ValueError) as exc:
        return None, f"the open drill incident cannot be read ({type(exc).__name__})"
    return track, None


def decide(stored, facts: DrillFacts, now: float) -> DrillDecision:
    """This drill against the incident the previous drills left open."""
    track, why = read_state(stored)
    level = OK if facts.passed else CRIT
    s = incidents.step(track, level, now, RULES, new_id=lambda: f"dr_drill:{int(now * 1000)}")
    state: dict = {"v": STATE_VERSION, "passed": facts.passed, "incident": None}
    if s.track is not None:
        t = s.track
        state["incident"] = {"id": t.id, "opened": t.opened, "last": t.last, "n": t.reminders}
    events = ()
    if s.kind is not None and s.subject is not None:
        t = s.subject
        reminder = t.reminders if s.kind == incidents.REMIND else 0
        events = (DrillEvent(s.kind, t.id, round(now, 3), t.opened, facts.bounded(), reminder),)
    notes = (f"previous drill state ignored: {why}",) if why else ()
    return DrillDecision(state, events, notes)


def drill_alert(event: DrillEvent, run_url: str | None = None) -> Alert:
    f = event.facts
    snap = f.snapshot_checksum[:12] or "(unverified)"
    took = format_seconds(event.duration_seconds)
    if event.kind == incidents.RESOLVE:
        title = f"DR drill passes again after {took}: snapshot {snap} restored faithfully"
    elif f.could_not_run:
        first = (f.problems[0] if f.problems else "no reason given").splitlines()[0][:200]
        head = "DR drill failed" if event.kind != incidents.REMIND else "DR drill still failing"
        title = f"{head}: the drill could not run: {first}"
    else:
        head = "DR drill failed" if event.kind != incidents.REMIND else "DR drill still failing"
        title = f"{head}: snapshot {snap} cannot be restored faithfully"
    if event.kind == incidents.REMIND:
        title += f" (reminder {event.reminder}, failing for {took})"
    lines = [f.text or "\n".join(f.problems)]
    if f.drill_run_id:
        lines.append(f"drill run: {f.drill_run_id}")
    lines.append(f"incident: {event.incident_id} ({event.event_name})")
    return Alert(
        source="dr_drill",
        severity=event.severity,
        title=" ".join(title.split()),
        text="\n".join(lines),
        fields={
            "event": event.event_name,
            "incident_id": event.incident_id,
            "passed": f.passed,
            "snapshot": f.snapshot_path,
            "failed_topics": list(f.failed_topics),
            "problems": list(f.problems),
            "drill_run_id": f.drill_run_id,
            "duration_seconds": round(event.duration_seconds, 1),
        },
        key=event.incident_id,
        run_url=run_url,
    )


def _to_wire(e: DrillEvent) -> dict:
    d = asdict(e)
    d["facts"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["facts"].items()}
    return d


def _from_wire(d: dict) -> DrillEvent:
    f = dict(d["facts"])
    for k in ("failed_topics", "problems"):
        f[k] = tuple(str(x) for x in f.get(k) or ())
    facts = DrillFacts(**f)
    return DrillEvent(
        str(d["kind"]),
        str(d["incident_id"]),
        float(d["at"]),
        float(d["since"]),
        facts,
        int(d.get("reminder") or 0),
    )


incidents.register(incidents.EventType("dr_drill", DrillEvent, _to_wire, _from_wire, drill_alert))
