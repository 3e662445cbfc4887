"""Consumer lag: offsets over time -> lag in messages and seconds, statuses, incidents. Pure.

`evaluate(window, observation, thresholds, config)` is the whole judgement of one tick:
it takes the window kept between ticks (plain JSON-able data, see `new_window`), what the
gateway measured, the per-topic thresholds and the evaluation settings, and returns the
new window, a status per (group, topic) and the incident events to notify. Nothing here
reads a clock or talks to Kafka: the observation carries its own time.

The rules are those of `shared/design/lag-evaluation.md`; where the note leaves room the
choice is written next to the code.
"""

import base64
import bisect
import fnmatch
import hashlib
import json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ecap_ops.catalog.model import LagThresholds

# -- statuses -------------------------------------------------------------------------

DATA_LOSS = "DATA_LOSS"
STOPPED = "STOPPED"
STALLED = "STALLED"
BEHIND_SLA = "BEHIND_SLA"
REWIND = "REWIND"
LAGGING = "LAGGING"
NO_OFFSET = "NO_OFFSET"
REBALANCING = "REBALANCING"
OK = "OK"
IDLE = "IDLE"

# Worst first: a group's status on a topic is its worst partition's.
STATUS_ORDER = (
    DATA_LOSS,
    STOPPED,
    STALLED,
    BEHIND_SLA,
    REWIND,
    LAGGING,
    NO_OFFSET,
    REBALANCING,
    OK,
    IDLE,
)
SEVERITY = {
    DATA_LOSS: "critical",
    STOPPED: "critical",
    STALLED: "critical",
    BEHIND_SLA: "critical",
    REWIND: "warning",
    LAGGING: "warning",
    NO_OFFSET: "info",
    REBALANCING: "info",
    OK: "ok",
    IDLE: "ok",
}
SEVERITY_RANK = {"ok": 0, "info": 1, "warning": 2, "critical": 3}
# Statuses that need no history and are exact: they count at once, without debouncing.
IMMEDIATE = (DATA_LOSS, BEHIND_SLA)
REBALANCING_STATES = ("PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling")
EMPTY_STATES = ("Empty", "Dead")

WINDOW_VERSION = 1
CURSOR_PREFIX = f"lagv{WINDOW_VERSION}:"


_RANK = {s: i for i, s in enumerate(STATUS_ORDER)}


def status_rank(status: str) -> int:
    """0 for the worst status, growing towards OK/IDLE."""
    return _RANK[status]


def worst(statuses: Iterable[str]) -> str:
    return min(statuses, key=_RANK.__getitem__, default=OK)


def worst_first(p: "PartitionLag") -> tuple:
    """Sort key of partitions, worst first: status, then lag in messages, then in seconds."""
    return (_RANK[p.status], -p.lag_msgs, -(p.lag_seconds or 0))


def severity_of(status: str, thresholds: LagThresholds | None = None) -> str:
    """The severity of a status; on `critical_at_once` topics lagging is critical at once."""
    if status == LAGGING and thresholds is not None and thresholds.critical_at_once:
        return "critical"
    return SEVERITY[status]


# -- settings -------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalConfig:
    """How the evaluation judges and notifies; the defaults follow the design note."""

    window_size: int = 20  # (time, end offset) samples kept per partition
    for_ticks: int = 3  # LAGGING needs this many ticks above the warning level
    debounce_ticks: int = 2  # STOPPED/STALLED/REWIND must hold this many ticks to count
    clean_ticks: int = 2  # an incident resolves after this many clean ticks
    rebalance_grace_seconds: float = 60.0  # STALL/STOP held and small rewinds ignored
    rewind_grace_msgs: int = 1000  # "small" rewind during the rebalance grace
    remind_warning_seconds: float = 4 * 3600.0
    remind_critical_seconds: float = 30 * 60.0
    worst_partitions: int = 3  # partitions named in a notification

    def __post_init__(self) -> None:
        problems = []
        for name in (
            "window_size",
            "for_ticks",
            "debounce_ticks",
            "clean_ticks",
            "worst_partitions",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.window_size < 2:
            problems.append(
                f"window_size must be >= 2 to estimate lag in seconds, got {self.window_size}"
            )
        for name in (
            "rebalance_grace_seconds",
            "remind_warning_seconds",
            "remind_critical_seconds",
        ):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.rewind_grace_msgs < 0:
            problems.append(f"rewind_grace_msgs must be >= 0, got {self.rewind_grace_msgs}")
        if problems:
            raise ValueError("lag evaluation settings are invalid: " + "; ".join(problems))

    def remind_after(self, severity: str) -> float:
        return (
            self.remind_critical_seconds if severity == "critical" else self.remind_warning_seconds
        )


# -- what one tick measured -------------------------------------------------------------

TP = tuple[str, int]


@dataclass(frozen=True)
class PartitionOffsets:
    """Offsets of one partition: log start, end (last stable offset on transactional
    topics), and the first offset at or after `now - crit_seconds` (-1: no record that
    new; None: not measured)."""

    start: int | None
    end: int
    sla_offset: int | None = None


@dataclass(frozen=True)
class GroupObservation:
    group: str
    state: str  # Stable, Empty, PreparingRebalance, CompletingRebalance, Dead, Unknown
    members: int | None  # None when the group could not be described
    committed: dict[TP, int] = field(default_factory=dict)
    assigned: frozenset[TP] = frozenset()  # partitions that some member owns
    member_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Observation:
    """Everything one tick measured. `listed_groups` is None when the group listing did not
    complete: then no group is taken for deleted. Same for `topics`."""

    cluster_id: str
    at: float  # seconds since the epoch
    offsets: dict[TP, PartitionOffsets]
    topics: frozenset[str] | None
    groups: dict[str, GroupObservation]
    listed_groups: frozenset[str] | None
    partial: bool = False
    notes: tuple[str, ...] = ()


# -- what one tick concluded ------------------------------------------------------------


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    start: int | None
    end: int
    lag_msgs: int
    lost: int
    lag_seconds: float | None
    lag_seconds_kind: str  # exact, interpolated, extrapolated, at_least, unknown
    status: str
    owned: bool

    def to_dict(self) -> dict:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "start": self.start,
            "end": self.end,
            "lag_msgs": self.lag_msgs,
            "lost": self.lost,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 1),
            "lag_seconds_kind": self.lag_seconds_kind,
            "status": self.status,
        }


@dataclass(frozen=True)
class GroupTopicStatus:
    group: str
    topic: str
    status: str  # debounced: what incidents act on
    raw_status: str  # this tick alone
    severity: str
    lag_msgs: int
    lag_seconds: float | None  # the worst partition's; None when unknown
    lag_seconds_kind: str
    lost: int
    state: str
    members: int | None
    partitions: tuple[PartitionLag, ...]
    incident_id: str | None = None

    def worst_partitions(self, n: int = 3) -> list[PartitionLag]:
        if n == 1:  # min keeps the first of equals, as the stable sort does
            return [min(self.partitions, key=worst_first)] if self.partitions else []
        return sorted(self.partitions, key=worst_first)[:n]

    def to_dict(self) -> dict:
        return {
            "group": self.group,
            "topic": self.topic,
            "status": self.status,
            "raw_status": self.raw_status,
            "severity": self.severity,
            "lag_msgs": self.lag_msgs,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 1),
            "lag_seconds_kind": self.lag_seconds_kind,
            "lost": self.lost,
            "state": self.state,
            "members": self.members,
            "incident_id": self.incident_id,
            "partitions": [p.to_dict() for p in self.partitions],
        }


@dataclass(frozen=True)
class IncidentEvent:
    """One change of an incident. `notify` is False for quiet closes (deleted group/topic)."""

    kind: str  # open, escalate, remind, resolve, close
    incident_id: str
    cluster_id: str
    group: str
    topic: str
    status: str
    severity: str
    at: float
    since: float  # when the incident opened
    lag_msgs: int
    lag_seconds: float | None
    worst: tuple[dict, ...] = ()
    reminder: int = 0
    peak_msgs: int = 0
    peak_seconds: float | None = None
    reason: str = ""
    notify: bool = True

    @property
    def event_name(self) -> str:
        return f"remind-{self.reminder}" if self.kind == "remind" else self.kind

    @property
    def run_key(self) -> str:
        """Unique per incident and event: a retried tick can never notify twice."""
        return f"{self.incident_id}:{self.event_name}"

    @property
    def duration_seconds(self) -> float:
        return max(0.0, self.at - self.since)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "event": self.event_name,
            "incident_id": self.incident_id,
            "cluster_id": self.cluster_id,
            "group": self.group,
            "topic": self.topic,
            "status": self.status,
            "severity": self.severity,
            "at": self.at,
            "since": self.since,
            "lag_msgs": self.lag_msgs,
            "lag_seconds": self.lag_seconds,
            "worst": [dict(w) for w in self.worst],
            "reminder": self.reminder,
            "peak_msgs": self.peak_msgs,
            "peak_seconds": self.peak_seconds,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Evaluation:
    window: dict
    statuses: tuple[GroupTopicStatus, ...]
    events: tuple[IncidentEvent, ...]
    notes: tuple[str, ...] = ()

    @property
    def notifications(self) -> tuple[IncidentEvent, ...]:
        return tuple(e for e in self.events if e.notify)


# -- lag in seconds -------------------------------------------------------------------


def _end_of(sample: list[float]) -> float:
    return sample[1]


def lag_seconds(
    samples: list[list[float]], position: int, end: int, now: float
) -> tuple[float | None, str]:
    """Age of the record at `position` (the oldest unconsumed), from the partition's own
    (time, end offset) samples, oldest first.

    0 when nothing is unconsumed; unknown (None) with fewer than two samples; interpolated
    when the record was written inside the window; extrapolated from the production rate
    when it is older than the window, or a lower bound ("at_least") when nothing was
    produced during the window."""
    if end - position <= 0:
        return 0.0, "exact"
    if len(samples) < 2:
        return None, "unknown"
    # Record `position` was written when the end offset moved past it (end >= position + 1).
    target = position + 1
    j = bisect.bisect_left(samples, target, key=_end_of)  # end offsets never decrease
    if j == len(samples):  # the end in the samples never reached it: only if samples are stale
        return None, "unknown"
    if j == 0:
        t0, e0 = samples[0]
        tn, en = samples[-1]
        rate = (en - e0) / (tn - t0) if tn > t0 else 0.0
        if rate > 0:
            return max(0.0, now - (t0 - (e0 - target) / rate)), "extrapolated"
        return max(0.0, now - t0), "at_least"
    t1, e1 = samples[j - 1]
    t2, e2 = samples[j]
    written = t1 + (target - e1) / (e2 - e1) * (t2 - t1)
    return max(0.0, now - written), "interpolated"


# -- the window kept between ticks ---------------------------------------------------------


def new_window(cluster_id: str = "", epoch: float = 0.0) -> dict:
    """An empty window. `epoch` (when it was started) makes incident ids unique across resets."""
    return {
        "v": WINDOW_VERSION,
        "cluster": cluster_id,
        "epoch": round(epoch, 3),
        "seq": 0,
        "ends": {},
        "groups": {},
    }


class CursorInvalid(ValueError):
    """The sensor cursor cannot be read as a lag window."""


def encode_window(window: dict, max_bytes: int = 1_000_000) -> tuple[str, list[str]]:
    """The window as a compact cursor (versioned, zlib-compressed JSON, base64), trimmed to
    `max_bytes` if needed. Returns the cursor and what was trimmed."""
    trimmed: list[str] = []
    w = window

    def enc(x: dict) -> str:
        raw = json.dumps(x, separators=(",", ":"), sort_keys=True).encode()
        return CURSOR_PREFIX + base64.b64encode(zlib.compress(raw, 6)).decode("ascii")

    out = enc(w)
    if len(out) <= max_bytes:
        return out, trimmed
    w = json.loads(json.dumps(window))
    # 1. fewer samples per partition; 2. forget per-partition history of groups with no open
    # incident (they lose their stall clock); 3. forget those groups entirely.
    for keep in (10, 5, 3):
        for parts in w["ends"].values():
            for p, s in parts.items():
                parts[p] = s[-keep:]
        trimmed.append(f"end-offset samples cut to {keep} per partition")
        out = enc(w)
        if len(out) <= max_bytes:
            return out, trimmed
    quiet = [
        g
        for g, gw in w["groups"].items()
        if not any(t.get("inc") for t in gw.get("t", {}).values())
    ]
    for g in quiet:
        w["groups"][g]["p"] = {}
    trimmed.append(f"partition history dropped for {len(quiet)} group(s) without an open incident")
    out = enc(w)
    if len(out) <= max_bytes:
        return out, trimmed
    for g in quiet:
        del w["groups"][g]
    trimmed.append(f"{len(quiet)} group(s) without an open incident forgotten")
    return enc(w), trimmed


def decode_window(cursor: str | None) -> dict | None:
    """The window in a cursor; None for no cursor; CursorInvalid when it cannot be read."""
    if not cursor:
        return None
    if not cursor.startswith(CURSOR_PREFIX):
        raise CursorInvalid(
            f"cursor does not start with {CURSOR_PREFIX!r} (another version or not ours)"
        )
    try:
        data = json.loads(
            zlib.decompress(base64.b64decode(cursor[len(CURSOR_PREFIX) :], validate=True))
        )
    except (ValueError, zlib.error) as exc:
        raise CursorInvalid(f"cursor cannot be decoded: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict) or data.get("v") != WINDOW_VERSION:
        raise CursorInvalid(f"cursor holds no lag window of version {WINDOW_VERSION}")
    for key, kind in (("ends", dict), ("groups", dict), ("seq", int), ("cluster", str)):
        if not isinstance(data.get(key), kind):
            raise CursorInvalid(f"cursor window: {key!r} missing or not a {kind.__name__}")
    return data


# -- group selection ------------------------------------------------------------------------


def group_selected(group: str, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> bool:
    """Whether a group is in scope: matches an include pattern (all when none) and no
    exclude pattern. Patterns are shell-style (`orders-*`)."""
    include = list(include)
    if include and not any(fnmatch.fnmatchcase(group, p) for p in include):
        return False
    return not any(fnmatch.fnmatchcase(group, p) for p in exclude)


def member_hash(member_ids: Iterable[str]) -> str:
    return hashlib.sha1("\n".join(sorted(member_ids)).encode()).hexdigest()[:10]


# -- the evaluation ---------------------------------------------------------------------------


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def copy_window(window: dict) -> dict:
    """A copy of a window that `evaluate` may change without touching the original.

    Copies every dict and list that the evaluation changes in place and shares the rest: the
    (time, end) pairs, the per-partition states [committed, since, peak] and the entries of
    `raw`/`lag` are never changed in place (lists holding them are rebuilt), so a 1,000-group
    window is not copied element by element every tick."""

    def topic(gt: dict) -> dict:
        inc = gt.get("inc")
        return {**gt, "inc": dict(inc) if inc else inc}

    return {
        **window,
        "ends": {t: {p: list(s) for p, s in parts.items()} for t, parts in window["ends"].items()},
        "groups": {
            g: {
                **gw,
                "p": dict(gw.get("p") or {}),
                "t": {t: topic(gt) for t, gt in gw.get("t", {}).items()},
            }
            for g, gw in window["groups"].items()
        },
    }


def _samples(window: dict, obs: Observation, cfg: EvalConfig) -> None:
    """Append this tick's end offsets to each partition's samples."""
    ends = window["ends"]
    now = round(obs.at, 3)
    for (topic, p), po in obs.offsets.items():
        parts = ends.setdefault(topic, {})
        s = parts.get(str(p), [])
        if s and po.end < s[-1][1]:
            s = []  # the end went backwards: topic recreated or truncated; start afresh
        if s and s[-1][0] >= now:
            s = s[:-1]
        s.append([now, po.end])
        parts[str(p)] = s[-cfg.window_size :]
    if obs.topics is not None:
        for topic in [t for t in ends if t not in obs.topics]:
            del ends[topic]


class _GroupTick:
    """What every partition of one group shares in this tick, worked out once per group."""

    __slots__ = ("assigned", "members", "empty", "stable", "rebalancing", "hold", "in_grace", "rb")

    def __init__(self, g: GroupObservation, gw: dict, cfg: EvalConfig, now: float):
        self.assigned = g.assigned
        self.members = g.members or 0
        # Described, nobody in it, and the coordinator says so.
        self.empty = g.members is not None and self.members == 0 and g.state in EMPTY_STATES
        self.stable = g.state == "Stable"
        self.rebalancing = g.state in REBALANCING_STATES
        rbs, rb = gw.get("rbs"), gw.get("rb")
        # STOP/STALL held during the grace period of a rebalance still going on.
        self.hold = self.rebalancing and rbs is not None and now - rbs < cfg.rebalance_grace_seconds
        # Small rewinds ignored for a while after the last rebalance.
        self.in_grace = rb is not None and now - rb < cfg.rebalance_grace_seconds
        self.rb = rb or 0.0


_NO_SAMPLES: tuple = ()


def _partition_status(
    topic: str,
    p: int,
    committed: int | None,
    po: PartitionOffsets,
    samples: list[list[float]],
    prev: list | None,
    grp: _GroupTick,
    topic_over_msgs: bool,
    th: LagThresholds,
    cfg: EvalConfig,
    now: float,
    now_r: float,
) -> tuple[PartitionLag, list | None]:
    """One partition's lag and raw status (LAGGING is decided per topic), and its new state
    [committed, committed unchanged since, highest committed seen]."""
    owned = (topic, p) in grp.assigned
    end = po.end
    if committed is None:
        status = (
            NO_OFFSET if owned and grp.members > 0 else (REBALANCING if grp.rebalancing else OK)
        )
        return PartitionLag(
            topic, p, None, po.start, end, 0, 0, None, "unknown", status, owned
        ), None
    start = po.start if po.start is not None else 0
    position = committed if committed >= start else start
    lag_msgs = end - position if end > position else 0
    lost = start - committed if po.start is not None and start > committed else 0
    if lag_msgs == 0:
        secs, kind = 0.0, "exact"
    elif len(samples) < 2:
        secs, kind = None, "unknown"
    else:
        secs, kind = lag_seconds(samples, position, end, now)
    # The state carried to the next tick (now_r: `now` rounded, once per tick).
    if prev is None:
        since = now
        peak = committed
        state = [committed, now_r, peak]
    else:
        # The log itself went back (topic recreated): not a rewind.
        peak = committed if end < prev[2] else max(committed, prev[2])
        if prev[0] != committed:
            since = now
            state = [committed, now_r, peak]
        else:
            since = prev[1]
            state = [committed, round(since, 3), peak]

    over = lag_msgs > 0 and (topic_over_msgs or (secs is not None and secs > th.warn_seconds))
    history = prev is not None and len(samples) >= 2
    end_moved = len(samples) >= 2 and samples[-1][1] > samples[0][1]
    sla = False
    if po.sla_offset is not None and lag_msgs > 0:
        sla = position < po.sla_offset or po.sla_offset < 0

    if lost > 0:
        status = DATA_LOSS
    elif over and grp.empty:
        status = STOPPED
    elif (
        over
        and history
        and grp.members > 0
        and not owned
        and not grp.hold
        and since <= samples[0][0]
        and end_moved
    ):
        # Members, but nobody owns this partition and it has not moved for the whole window.
        status = STOPPED
    elif (
        over
        and owned
        and grp.stable
        and history
        and now - max(since, grp.rb) >= th.stall_after_seconds
    ):
        status = STALLED
    elif sla:
        status = BEHIND_SLA
    elif peak > committed and not (grp.in_grace and peak - committed <= cfg.rewind_grace_msgs):
        status = REWIND
    elif grp.rebalancing:
        status = REBALANCING
    elif lag_msgs == 0 and not end_moved and history:
        status = IDLE
    else:
        status = OK
    return PartitionLag(
        topic, p, committed, po.start, end, lag_msgs, lost, secs, kind, status, owned
    ), state


def _least_severe(recent: list[str]) -> str:
    best = recent[-1]
    for s in reversed(recent):
        if SEVERITY_RANK[SEVERITY[s]] < SEVERITY_RANK[SEVERITY[best]]:
            best = s
    return best


def _incident_event(
    kind: str,
    inc: dict,
    ctx: dict,
    status: str,
    reminder: int = 0,
    reason: str = "",
    notify: bool = True,
) -> IncidentEvent:
    return IncidentEvent(
        kind=kind,
        incident_id=inc["id"],
        cluster_id=ctx["cluster"],
        group=ctx["group"],
        topic=ctx["topic"],
        status=status,
        severity="resolved" if kind in ("resolve", "close") else inc["sev"],
        at=ctx["now"],
        since=inc["opened"],
        lag_msgs=ctx.get("lag_msgs", 0),
        lag_seconds=ctx.get("lag_seconds"),
        worst=_worst_dicts(ctx),
        reminder=reminder,
        peak_msgs=inc["pm"],
        peak_seconds=inc["ps"],
        reason=reason,
        notify=notify,
    )


def _worst_dicts(ctx: dict) -> tuple[dict, ...]:
    """The worst partitions of the group on the topic, for a notification (only events need
    them, so they are worked out only for those)."""
    plags = ctx.get("partitions")
    if not plags:
        return ()
    return tuple(pl.to_dict() for pl in sorted(plags, key=worst_first)[: ctx["n_worst"]])


def _judge_topic(
    gt: dict,
    raw: str,
    th: LagThresholds,
    cfg: EvalConfig,
    ctx: dict,
    new_incident_id: Callable[[], str],
    events: list[IncidentEvent],
) -> tuple[str, str, str, str | None]:
    """A group's verdict on one topic from its worst partition's status `raw`: (raw status,
    debounced status, severity, incident id). Updates the topic's window entry `gt` and
    appends incident events."""
    now = ctx["now"]
    total = ctx["lag_msgs"]
    secs = ctx["lag_seconds"]
    # LAGGING: above the warning level for `for_ticks` ticks and not decreasing.
    over = total > th.warn_msgs or (secs is not None and secs > th.warn_seconds)
    gt["lag"] = (gt["lag"] + [[total, _r(secs)] if over else None])[-cfg.for_ticks :]
    if status_rank(raw) > status_rank(LAGGING) and over:
        hist = gt["lag"]
        if th.critical_at_once:
            raw = LAGGING
        elif len(hist) >= cfg.for_ticks and all(x is not None for x in hist):
            first = hist[0]
            decreasing = total < first[0] and (secs is None or first[1] is None or secs < first[1])
            if not decreasing:
                raw = LAGGING
    gt["raw"] = (gt["raw"] + [raw])[-cfg.debounce_ticks :]
    # Exact statuses count at once; LAGGING carries its own for_ticks; the others must hold
    # for `debounce_ticks` ticks (the least severe of those ticks counts).
    if (
        raw in IMMEDIATE
        or raw == LAGGING
        or (th.critical_at_once and SEVERITY_RANK[severity_of(raw, th)] >= 2)
    ):
        status = raw
    else:
        recent = gt["raw"]
        if len(recent) < cfg.debounce_ticks:
            recent = [OK] * (cfg.debounce_ticks - len(recent)) + recent
        status = _least_severe(recent)
    sev = severity_of(status, th)
    bad = SEVERITY_RANK[sev] >= SEVERITY_RANK["warning"]
    inc = gt.get("inc")
    if inc is None:
        gt["clean"] = 0
        if bad:
            inc = {
                "id": new_incident_id(),
                "opened": round(now, 3),
                "sev": sev,
                "status": status,
                "last": round(now, 3),
                "n": 0,
                "pm": total,
                "ps": _r(secs),
            }
            gt["inc"] = inc
            events.append(_incident_event("open", inc, ctx, status))
        return raw, status, sev, inc["id"] if inc else None
    inc["pm"] = max(inc["pm"], total)
    if secs is not None:
        inc["ps"] = _r(max(inc["ps"] or 0.0, secs))
    if bad:
        inc["status"] = status
    # Hysteresis: clean means this tick alone is OK/IDLE and the lag is below half the
    # warning level, in messages and in seconds.
    secs_or_worst = secs if secs is not None else (0.0 if total == 0 else float("inf"))
    clean = (
        SEVERITY[raw] == "ok" and total < th.warn_msgs / 2 and secs_or_worst < th.warn_seconds / 2
    )
    gt["clean"] = gt.get("clean", 0) + 1 if clean else 0
    if SEVERITY_RANK[sev] > SEVERITY_RANK[inc["sev"]]:
        inc["sev"] = sev
        inc["last"] = round(now, 3)
        events.append(_incident_event("escalate", inc, ctx, status))
    elif gt["clean"] >= cfg.clean_ticks:
        events.append(_incident_event("resolve", inc, ctx, raw))
        gt["inc"] = None
        gt["clean"] = 0
        return raw, status, sev, None
    elif now - inc["last"] >= cfg.remind_after(inc["sev"]):
        inc["n"] += 1
        inc["last"] = round(now, 3)
        events.append(_incident_event("remind", inc, ctx, inc["status"], reminder=inc["n"]))
    return raw, status, sev, inc["id"]


def evaluate(
    window: dict | None,
    obs: Observation,
    thresholds: Callable[[str], LagThresholds],
    cfg: EvalConfig | None = None,
) -> Evaluation:
    """Judge one tick: (window, observation, thresholds, now=obs.at) -> new window, statuses, events."""
    cfg = cfg or EvalConfig()
    now = obs.at
    notes: list[str] = list(obs.notes)
    if window is not None and window.get("cluster") not in ("", obs.cluster_id):
        notes.append(
            f"cluster id changed from {window.get('cluster')} to {obs.cluster_id}: lag history reset"
        )
        window = None
    w = copy_window(window) if window is not None else new_window(obs.cluster_id, now)
    w["cluster"] = obs.cluster_id
    _samples(w, obs, cfg)
    statuses: list[GroupTopicStatus] = []
    events: list[IncidentEvent] = []

    def new_incident_id() -> str:
        w["seq"] += 1
        return f"lag:{obs.cluster_id}:{w['epoch']:.0f}-{w['seq']}"

    def forget(group: str, topic: str, reason: str | None) -> None:
        gw = w["groups"][group]
        gt = gw["t"].pop(topic, None)
        gw["p"].pop(topic, None)
        if reason and gt and gt.get("inc"):
            ctx = {"cluster": obs.cluster_id, "group": group, "topic": topic, "now": now}
            events.append(
                _incident_event(
                    "close", gt["inc"], ctx, gt["inc"]["status"], reason=reason, notify=False
                )
            )

    offsets = obs.offsets
    now_r = round(now, 3)
    for group in sorted(obs.groups):
        g = obs.groups[group]
        gw = w["groups"].setdefault(group, {"mh": None, "rb": None, "rbs": None, "p": {}, "t": {}})
        mh = member_hash(g.member_ids)
        if g.state in REBALANCING_STATES:
            gw["rbs"] = gw.get("rbs") or round(now, 3)
            gw["rb"] = round(now, 3)
        else:
            gw["rbs"] = None
            if gw.get("mh") is not None and mh != gw["mh"] and g.members is not None:
                gw["rb"] = round(now, 3)  # members changed between ticks: a rebalance happened
        if g.members is not None:
            gw["mh"] = mh
        by_topic: dict[str, set[int]] = {t: set() for t in gw["t"]}
        for t, p in list(g.committed) + list(g.assigned):
            by_topic.setdefault(t, set()).add(p)
        grp = _GroupTick(g, gw, cfg, now)
        committed_of = g.committed
        for topic in sorted(by_topic):
            if obs.topics is not None and topic not in obs.topics:
                forget(group, topic, "topic deleted")
                continue
            parts = sorted(p for p in by_topic[topic] if (topic, p) in offsets)
            if not parts:
                # Not measured this tick (partial), or the group no longer holds offsets on it.
                if obs.topics is not None and not obs.partial:
                    forget(group, topic, "group no longer consumes the topic")
                continue
            gt = gw["t"].setdefault(topic, {"raw": [], "lag": [], "inc": None, "clean": 0})
            th = thresholds(topic)
            pstates = gw["p"].get(topic, {})
            ends = w["ends"].get(topic, {})
            measured = []
            total = 0
            for p in parts:
                c = committed_of.get((topic, p))
                po = offsets[(topic, p)]
                measured.append((p, c, po))
                if c is not None:
                    total += max(0, po.end - max(c, po.start or 0))
            over_msgs = total > th.warn_msgs
            plags: list[PartitionLag] = []
            new_states: dict[str, list] = {}
            top: PartitionLag | None = None  # the first partition with the most seconds known
            unknown_lagging = False  # some lagging partition has no estimate yet
            lost = 0
            raw_rank = len(STATUS_ORDER)  # the worst partition's status (`parts` is not empty)
            for p, c, po in measured:
                key = str(p)
                pl, st = _partition_status(
                    topic,
                    p,
                    c,
                    po,
                    ends.get(key, _NO_SAMPLES),
                    pstates.get(key),
                    grp,
                    over_msgs,
                    th,
                    cfg,
                    now,
                    now_r,
                )
                plags.append(pl)
                if st is not None:
                    new_states[key] = st
                if pl.lag_seconds is None:
                    if pl.lag_msgs > 0:
                        unknown_lagging = True
                elif top is None or pl.lag_seconds > (top.lag_seconds or 0.0):
                    top = pl
                lost += pl.lost
                if _RANK[pl.status] < raw_rank:
                    raw_rank = _RANK[pl.status]
            gw["p"][topic] = new_states
            secs = top.lag_seconds if top else None
            kind = top.lag_seconds_kind if top else "unknown"
            if unknown_lagging:
                # What we know is a lower bound.
                kind, secs = ("partial", secs) if secs else ("unknown", None)
            ctx = {
                "cluster": obs.cluster_id,
                "group": group,
                "topic": topic,
                "now": now,
                "lag_msgs": total,
                "lag_seconds": _r(secs),
                "partitions": plags,
                "n_worst": cfg.worst_partitions,
            }
            raw, status, sev, inc_id = _judge_topic(
                gt,
                STATUS_ORDER[raw_rank],
                th,
                cfg,
                ctx,
                new_incident_id,
                events,
            )
            statuses.append(
                GroupTopicStatus(
                    group=group,
                    topic=topic,
                    status=status,
                    raw_status=raw,
                    severity=sev,
                    lag_msgs=total,
                    lag_seconds=secs,
                    lag_seconds_kind=kind,
                    lost=lost,
                    state=g.state,
                    members=g.members,
                    partitions=tuple(plags),
                    incident_id=inc_id,
                )
            )

    # Groups in the window that no longer exist: close their incidents quietly.
    if obs.listed_groups is not None:
        for group in [g for g in w["groups"] if g not in obs.listed_groups]:
            for topic in list(w["groups"][group]["t"]):
                forget(group, topic, "group deleted")
            del w["groups"][group]
    return Evaluation(w, tuple(statuses), tuple(events), tuple(notes))


def open_incidents(window: dict) -> list[dict]:
    """Open incidents in a window: group, topic, id, status, severity, since."""
    out = []
    for group, gw in (window or {}).get("groups", {}).items():
        for topic, gt in gw.get("t", {}).items():
            inc = gt.get("inc")
            if inc:
                out.append(
                    {
                        "group": group,
                        "topic": topic,
                        "id": inc["id"],
                        "status": inc["status"],
                        "severity": inc["sev"],
                        "since": inc["opened"],
                    }
                )
    return out


def format_seconds_short(s: float | None) -> str:
    """12.3s, 3m05s, 2h04m, 3d04h; '-' for unknown."""
    if s is None:
        return "-"
    s = max(0.0, s)
    if s < 60:
        return f"{s:.1f}s" if s < 10 else f"{s:.0f}s"
    m, sec = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m}m{sec:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def describe_lag(msgs: int, secs: float | None, kind: str = "") -> str:
    """`12,400 msgs / 3m05s` (`~` when extrapolated, `>=` for a lower bound)."""
    mark = {"extrapolated": "~", "at_least": ">=", "partial": ">="}.get(kind, "")
    return f"{msgs:,} msgs / {mark}{format_seconds_short(secs)}"
