"""Test-topic cleanup: the evidence of each topic and the job's own earlier observations ->
decisions with reasons, and the observation history to keep. Pure.

A topic is deleted only on evidence and with consent (the project's safety rules): its name
matches a configured test pattern (shell-style globs such as `test-*`, matched against the
exact name); it is not in the catalog, not internal, not protected, not ours (the health
canary); every partition is online; and it is *confirmed idle*:

- its end offsets have not moved across the job's own observations spanning the idle
  window. End offsets only grow while a topic lives, so two observations with the same end
  offsets prove that nothing was written between them, whatever timestamps the records
  carry (a producer sets CreateTime: a backfill written a second ago can carry last
  month's timestamps, so record times are shown, never trusted);
- no consumer group has members on it at any observation, and no group's committed offset
  on it changed between observations (Kafka does not tell when an offset was committed);
- the topic is the same topic throughout (same topic id, same partition count).

The first observation of a topic can therefore only make it a *candidate* ("first seen idle
at T; confirm after T + window"); a later run confirms it once its own observations span
the window with no movement. Any movement restarts the window at the observation that saw
it. The run's deletion budget takes the longest-idle first.

Readers without a consumer group (assign mode: `kcat -C`, Spark with manual assignment)
join no group and commit nothing: Kafka's admin API cannot see them. `INVISIBLE_READERS`
says so, and every report repeats it.

The observations themselves and their JSON state document are `core/cleanup_history.py`
(re-exported here).
"""

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from ecap_ops.catalog.units import format_duration_ms, format_size
from ecap_ops.core.cleanup_history import (
    HISTORY_FORMAT,
    MAX_CLUSTERS,
    MAX_GROUPS_PER_TOPIC,
    MAX_NAME,
    MAX_PARTITIONS,
    Observation,
    TopicHistory,
    history_from_json,
    history_to_json,
    iso,
    merge_history,
)
from ecap_ops.core.state import is_internal_topic

__all__ = [
    "ACTIVE",
    "CANDIDATE",
    "DAY_MS",
    "DEFAULT_PATTERNS",
    "HISTORY_FORMAT",
    "IDLE",
    "INVISIBLE_READERS",
    "KEPT",
    "MAX_CLUSTERS",
    "MAX_GROUPS_PER_TOPIC",
    "MAX_NAME",
    "MAX_PARTITIONS",
    "MIN_LITERAL",
    "CleanupRules",
    "Decision",
    "GroupEvidence",
    "Observation",
    "TopicEvidence",
    "TopicHistory",
    "decide",
    "history_from_json",
    "history_to_json",
    "iso",
    "judge",
    "matching_pattern",
    "merge_history",
]

DEFAULT_PATTERNS = ("test-*", "tmp-*", "*-test")
DAY_MS = 86_400_000

# Decision statuses.
KEPT = "kept"  # a rule protects it (catalog, internal, protected, ...), whatever its activity
ACTIVE = "active"  # written, committed to, or read by a group member: the window restarts
CANDIDATE = "candidate"  # idle in every observation so far, but not yet over the whole window
IDLE = "idle"  # confirmed idle over the window: deletable within the budget

INVISIBLE_READERS = (
    "Readers without a consumer group (assign mode, e.g. `kcat -C` or Spark with manual "
    "partition assignment) join no group and commit nothing, so Kafka's admin API cannot see "
    "them: a topic read only that way looks idle here. Protect such topics by name."
)


@dataclass(frozen=True)
class GroupEvidence:
    group_id: str
    state: str
    members_on_topic: int  # members assigned to or subscribed to the topic
    committed: dict[int, int] = field(default_factory=dict)  # partition -> committed offset
    lag: int | None = None  # messages behind the end offsets, all partitions
    # False when the broker did not describe the group's members (e.g. a group of Kafka 4's
    # consumer protocol): a group that is not Empty/Dead may then have members on the topic.
    described: bool = True


@dataclass(frozen=True)
class TopicEvidence:
    name: str
    internal: bool
    in_catalog: bool
    partitions: int
    replication_factor: int
    bytes_on_disk: int | None
    records: int | None
    newest_record_ms: int | None  # set by producers: shown, never evidence of idleness
    offline_partitions: int = 0
    groups: tuple[GroupEvidence, ...] = ()
    topic_id: str | None = None
    # Per partition (index = partition number); None when some partition's offsets could
    # not be read, so nothing can be judged or recorded.
    end_offsets: tuple[int, ...] | None = None
    start_offsets: tuple[int, ...] | None = None


MIN_LITERAL = 2  # characters a pattern must begin or end with, outside wildcards


def _literal_ends(pattern: str) -> tuple[str, str]:
    """The pattern's literal prefix (before the first `*`, `?` or `[`) and literal suffix
    (after the last `*`, `?` or `]`); both the whole name when it has no wildcard."""
    prefix = re.match(r"[^*?\[]*", pattern).group(0)  # type: ignore[union-attr]
    suffix = re.search(r"[^*?\]]*$", pattern).group(0)  # type: ignore[union-attr]
    return prefix, suffix


@dataclass(frozen=True)
class CleanupRules:
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    idle_days: float = 7.0
    max_deletions: int = 10
    protected: frozenset[str] = frozenset()
    # Our own topics, never candidates whatever the patterns say.
    reserved: frozenset[str] = frozenset()
    # A topic holding no record (never written, or all expired) is kept unless this is set.
    delete_empty: bool = False
    # The idle window in milliseconds; overrides idle_days when set (e.g. `2s` in tests).
    idle_ms: int | None = None

    @property
    def window_ms(self) -> int:
        return self.idle_ms if self.idle_ms is not None else int(self.idle_days * DAY_MS)

    def validate(self) -> list[str]:
        problems = []
        if not self.patterns:
            problems.append("patterns: at least one name pattern is needed")
        for p in self.patterns:
            if not p or not p.strip():
                problems.append("patterns: an empty pattern would match nothing useful")
            elif p.strip("*?") == "":
                problems.append(
                    f"patterns: {p[:40]!r} matches every topic; give a prefix or suffix"
                )
            elif max(len(s) for s in _literal_ends(p)) < MIN_LITERAL:
                problems.append(
                    f"patterns: {p[:40]!r} has no literal prefix or suffix of {MIN_LITERAL}+ "
                    "characters, so it could match almost any topic; give one (test-*, *-tmp)"
                )
        if not (self.idle_days >= 0) or self.idle_days == float("inf"):
            problems.append(f"idle_days: must be a finite number >= 0, got {self.idle_days}")
        if self.idle_ms is not None and (isinstance(self.idle_ms, bool) or self.idle_ms < 0):
            problems.append(f"idle: must be a duration >= 0, got {self.idle_ms!r}")
        if self.max_deletions < 0:
            problems.append(f"max_deletions: must be >= 0, got {self.max_deletions}")
        return problems


@dataclass(frozen=True)
class Decision:
    topic: str
    matched_pattern: str | None
    status: str  # KEPT, ACTIVE, CANDIDATE or IDLE
    delete: bool  # confirmed idle and within this run's budget
    reasons: tuple[str, ...]  # why it is kept, or why it may go
    evidence: dict

    @property
    def confirmed(self) -> bool:
        """Confirmed idle and allowed by every rule (deleted if within the budget)."""
        return self.status == IDLE

    def to_dict(self) -> dict:
        return asdict(self)


def matching_pattern(name: str, patterns: tuple[str, ...]) -> str | None:
    """The first pattern that matches the whole name (case-sensitive glob), or None."""
    for p in patterns:
        if fnmatch.fnmatchcase(name, p):
            return p
    return None


def _committed_on(t: TopicEvidence) -> dict[str, dict[int, int]]:
    return {g.group_id: dict(g.committed) for g in t.groups if g.committed}


def _movement(cur: Observation, hist: TopicHistory) -> list[str]:
    """Why `cur` shows activity since the history's observations; [] when it shows none."""
    last = hist.latest
    when = f"between {iso(last.at_ms)} and {iso(cur.at_ms)}"
    if len(cur.end) != len(last.end):
        return [f"partitions changed from {len(last.end)} to {len(cur.end)} {when}"]
    out = []
    behind = [p for p, (a, b) in enumerate(zip(hist.since.end, cur.end, strict=True)) if b < a]
    if behind:
        out.append(
            f"end offsets went back on partition(s) {behind[:5]} {when} (data lost or the topic "
            "was replaced): the idle window restarts"
        )
    else:
        grown = sum(b - a for a, b in zip(last.end, cur.end, strict=True))
        since_grown = sum(b - a for a, b in zip(hist.since.end, cur.end, strict=True))
        if grown or since_grown:
            out.append(f"written {when}: end offsets moved by {max(grown, since_grown)} record(s)")
    for g, offs in sorted(cur.committed.items()):
        before = last.committed.get(g, {})
        changed = [(p, before.get(p), o) for p, o in sorted(offs.items()) if before.get(p) != o]
        if changed:
            shown = ", ".join(
                f"p{p}: {'-' if a is None else a} -> {b}" for p, a, b in changed[:3]
            ) + (", ..." if len(changed) > 3 else "")
            out.append(f"group {g} committed {when} ({shown})")
    return out


def _members(t: TopicEvidence) -> list[str]:
    out = []
    for g in t.groups:
        if g.members_on_topic:
            out.append(f"group {g.group_id} has {g.members_on_topic} member(s) on it ({g.state})")
        elif not g.described and g.state not in ("Empty", "Dead"):
            out.append(
                f"group {g.group_id} is {g.state} with offsets on it and its members could not be "
                "listed: it may be reading it"
            )
    return out


def _static_reasons(t: TopicEvidence, rules: CleanupRules) -> list[str]:
    keep = []
    if is_internal_topic(t.name, t.internal):
        keep.append("internal topic")
    if t.in_catalog:
        keep.append("in the catalog")
    if t.name in rules.protected:
        keep.append("on the protected list")
    if t.name in rules.reserved:
        keep.append("used by ecap-ops itself")
    if t.offline_partitions:
        keep.append(f"{t.offline_partitions} partition(s) offline: the evidence is incomplete")
    elif t.end_offsets is None or t.start_offsets is None:
        keep.append("the offsets of some partition could not be read: the evidence is incomplete")
    elif not rules.delete_empty and all(
        s >= e for s, e in zip(t.start_offsets, t.end_offsets, strict=True)
    ):
        keep.append("holds no record (delete_empty is off)")
    return keep


def _evidence(t: TopicEvidence, now_ms: int) -> dict:
    newest = t.newest_record_ms
    return {
        "topic_id": t.topic_id,
        "partitions": t.partitions,
        "replication_factor": t.replication_factor,
        "end_offsets": list(t.end_offsets) if t.end_offsets is not None else None,
        "start_offsets": list(t.start_offsets) if t.start_offsets is not None else None,
        "records": t.records,
        "bytes_on_disk": t.bytes_on_disk,
        "size": format_size(t.bytes_on_disk) if t.bytes_on_disk is not None else None,
        "newest_record_ms": newest,
        # The producers' word, shown for context; never evidence of idleness.
        "newest_record_timestamp": None
        if newest is None
        else (
            f"{format_duration_ms((now_ms - newest) // 1000 * 1000)} ago"
            if newest <= now_ms
            else f"{format_duration_ms((newest - now_ms) // 1000 * 1000)} in the future"
        ),
        "groups": [
            {
                "group": g.group_id,
                "state": g.state,
                "members_on_topic": g.members_on_topic,
                "members_known": g.described,
                "committed": {str(k): v for k, v in sorted(g.committed.items())},
                "lag": g.lag,
            }
            for g in t.groups
        ],
    }


def judge(
    topics: list[TopicEvidence],
    rules: CleanupRules,
    now_ms: int,
    history: Mapping[str, TopicHistory] | None = None,
) -> tuple[list[Decision], dict[str, TopicHistory]]:
    """One decision per topic matching a pattern (others are not mentioned: they were never
    in question), and the updated history of those topics (only their first and latest
    observation since the last movement are kept). Confirmed-idle topics are taken
    longest-idle first up to the budget."""
    history = history or {}
    decisions: list[Decision] = []
    updated: dict[str, TopicHistory] = {}
    for t in sorted(topics, key=lambda t: t.name):
        pattern = matching_pattern(t.name, rules.patterns)
        if pattern is None:
            continue
        keep = _static_reasons(t, rules)
        ev = _evidence(t, now_ms)
        prev = history.get(t.name)
        if t.end_offsets is None or t.start_offsets is None or t.offline_partitions:
            # Nothing complete to record: the earlier observations stay as they were.
            if prev is not None:
                updated[t.name] = prev
            decisions.append(Decision(t.name, pattern, KEPT, False, tuple(keep), ev))
            continue
        cur = Observation(now_ms, tuple(t.end_offsets), tuple(t.start_offsets), _committed_on(t))
        hist, activity, notes = _observe(t, cur, prev)
        updated[t.name] = hist
        decisions.append(
            _decide_one(t.name, pattern, rules, now_ms, hist, keep, activity, notes, ev)
        )
    return _within_budget(decisions, rules.max_deletions), updated


def _observe(
    t: TopicEvidence, cur: Observation, prev: TopicHistory | None
) -> tuple[TopicHistory, list[str], list[str]]:
    """The topic's history with this run's observation, the activity it shows (the window
    restarts) and notes on why the history restarts without activity."""
    now_ms = cur.at_ms
    activity: list[str] = []
    notes: list[str] = []
    if prev is None:
        hist = TopicHistory(t.topic_id, (cur,))
        notes.append(f"first seen at {iso(now_ms)}")
    elif prev.topic_id != t.topic_id:
        hist = TopicHistory(t.topic_id, (cur,))
        notes.append(
            f"re-created since {iso(prev.latest.at_ms)} (topic id changed): its history restarts at {iso(now_ms)}"
        )
    elif now_ms <= prev.latest.at_ms:
        hist = TopicHistory(t.topic_id, (cur,))
        notes.append(
            f"this run's clock ({iso(now_ms)}) is not after the last observation "
            f"({iso(prev.latest.at_ms)}): its history restarts"
        )
    else:
        activity = _movement(cur, prev)
        hist = (
            TopicHistory(t.topic_id, (cur,))
            if activity
            else TopicHistory(t.topic_id, (prev.since, cur))
        )
    members = _members(t)
    if members:
        activity += members
        hist = TopicHistory(t.topic_id, (cur,))
    return hist, activity, notes


def _decide_one(
    topic: str,
    pattern: str,
    rules: CleanupRules,
    now_ms: int,
    hist: TopicHistory,
    keep: list[str],
    activity: list[str],
    notes: list[str],
    ev: dict,
) -> Decision:
    """The decision on one fully observed topic: kept by a rule, active, a candidate still
    inside its idle window, or confirmed idle (`ev` gains the window's times)."""
    window = rules.window_ms
    since = hist.since.at_ms
    span = now_ms - since
    confirm_at = since + window
    ev.update(
        {
            "unchanged_since_ms": since,
            "unchanged_since": iso(since),
            "unchanged_for": format_duration_ms(span),
            "idle_window": format_duration_ms(window),
            "confirm_after_ms": confirm_at,
            "confirm_after": iso(confirm_at),
        }
    )
    if keep:
        return Decision(topic, pattern, KEPT, False, tuple(keep + activity + notes), ev)
    if activity:
        restarts = f"the idle window restarts: confirm after {iso(confirm_at)}"
        return Decision(topic, pattern, ACTIVE, False, tuple(activity + [restarts]), ev)
    if len(hist.observations) < 2 or span < window:
        what = (
            notes[0]
            if notes
            else f"end offsets unchanged since {iso(since)} ({format_duration_ms(span)})"
        )
        reasons = (
            f"matches {pattern!r}",
            f"{what}; not yet idle for the window of {format_duration_ms(window)}: "
            f"confirm after {iso(confirm_at)}",
        )
        return Decision(topic, pattern, CANDIDATE, False, reasons, ev)
    reasons = (
        f"matches {pattern!r}",
        f"confirmed idle: end offsets unchanged from {iso(since)} to {iso(now_ms)} "
        f"({format_duration_ms(span)}, window {format_duration_ms(window)})",
        "no group member on it and no committed offset moved in that time",
    )
    return Decision(topic, pattern, IDLE, False, reasons, ev)


def _within_budget(decisions: list[Decision], max_deletions: int) -> list[Decision]:
    """Confirmed-idle topics marked for deletion, longest-idle first, up to the budget; the
    rest say they are over it."""
    idle = [d for d in decisions if d.status == IDLE]
    order = sorted(idle, key=lambda d: (d.evidence["unchanged_since_ms"], d.topic))
    chosen = {d.topic for d in order[:max_deletions]}
    out = []
    for d in decisions:
        if d.status == IDLE and d.topic in chosen:
            out.append(Decision(d.topic, d.matched_pattern, IDLE, True, d.reasons, d.evidence))
        elif d.status == IDLE:
            over = f"over this run's budget of {max_deletions} deletion(s)"
            out.append(
                Decision(d.topic, d.matched_pattern, IDLE, False, d.reasons + (over,), d.evidence)
            )
        else:
            out.append(d)
    return out


def decide(
    topics: list[TopicEvidence],
    rules: CleanupRules,
    now_ms: int,
    history: Mapping[str, TopicHistory] | None = None,
) -> list[Decision]:
    """The decisions of `judge`, without the updated history."""
    return judge(topics, rules, now_ms, history)[0]
