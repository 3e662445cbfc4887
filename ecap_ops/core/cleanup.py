"""Test-topic cleanup: topics and the evidence of their activity -> candidates with reasons.

A topic is deleted only on evidence and with consent (the project's safety rules): its name
matches a configured test pattern (shell-style globs such as `test-*`, matched against the
exact name); it is not in the catalog, not internal, not protected, not ours (the health
canary); its newest record is older than the idle period; no consumer group has members on
it or committed offsets for it; and the run's deletion budget is not spent. Pure.
"""

import fnmatch
from dataclasses import asdict, dataclass, field

from ecap_ops.catalog.units import format_duration_ms, format_size

DEFAULT_PATTERNS = ("test-*", "tmp-*", "*-test")
DAY_MS = 86_400_000


@dataclass(frozen=True)
class GroupEvidence:
    group_id: str
    state: str
    members_on_topic: int  # members assigned to or subscribed to the topic
    committed: dict[int, int] = field(default_factory=dict)  # partition -> committed offset
    lag: int | None = None  # messages behind the end offsets, all partitions


@dataclass(frozen=True)
class TopicEvidence:
    name: str
    internal: bool
    in_catalog: bool
    partitions: int
    replication_factor: int
    bytes_on_disk: int | None
    records: int | None
    newest_record_ms: int | None  # None: no record held (empty, or all expired)
    offline_partitions: int = 0
    groups: tuple[GroupEvidence, ...] = ()


@dataclass(frozen=True)
class CleanupRules:
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    idle_days: float = 7.0
    max_deletions: int = 10
    protected: frozenset[str] = frozenset()
    # Our own topics, never candidates whatever the patterns say.
    reserved: frozenset[str] = frozenset()
    # An empty topic has no record time to prove it idle: kept unless this is set.
    delete_empty: bool = False

    def validate(self) -> list[str]:
        problems = []
        if not self.patterns:
            problems.append("patterns: at least one name pattern is needed")
        for p in self.patterns:
            if not p or not p.strip():
                problems.append("patterns: an empty pattern would match nothing useful")
            elif p.strip("*?") == "":
                problems.append(f"patterns: {p!r} matches every topic; give a prefix or suffix")
        if self.idle_days < 0:
            problems.append(f"idle_days: must be >= 0, got {self.idle_days}")
        if self.max_deletions < 0:
            problems.append(f"max_deletions: must be >= 0, got {self.max_deletions}")
        return problems


@dataclass(frozen=True)
class Decision:
    topic: str
    matched_pattern: str | None
    candidate: bool  # meets every rule
    delete: bool  # a candidate within this run's budget
    reasons: tuple[str, ...]  # why it is kept, or why it may go
    evidence: dict

    def to_dict(self) -> dict:
        return asdict(self)


def matching_pattern(name: str, patterns: tuple[str, ...]) -> str | None:
    """The first pattern that matches the whole name (case-sensitive glob), or None."""
    for p in patterns:
        if fnmatch.fnmatchcase(name, p):
            return p
    return None


def _evidence(t: TopicEvidence, now_ms: int) -> dict:
    return {
        "newest_record_ms": t.newest_record_ms,
        "idle": format_duration_ms(now_ms - t.newest_record_ms)
        if t.newest_record_ms is not None
        else None,
        "bytes_on_disk": t.bytes_on_disk,
        "size": format_size(t.bytes_on_disk) if t.bytes_on_disk is not None else None,
        "records": t.records,
        "partitions": t.partitions,
        "replication_factor": t.replication_factor,
        "groups": [
            {
                "group": g.group_id,
                "state": g.state,
                "members_on_topic": g.members_on_topic,
                "committed": {str(k): v for k, v in sorted(g.committed.items())},
                "lag": g.lag,
            }
            for g in t.groups
        ],
    }


def decide(topics: list[TopicEvidence], rules: CleanupRules, now_ms: int) -> list[Decision]:
    """One decision per topic matching a pattern (others are not mentioned: they were never
    in question). Candidates are taken oldest-idle first up to the budget."""
    idle_ms = int(rules.idle_days * DAY_MS)
    decisions: list[Decision] = []
    for t in sorted(topics, key=lambda t: t.name):
        pattern = matching_pattern(t.name, rules.patterns)
        if pattern is None:
            continue
        keep: list[str] = []
        if t.internal or t.name.startswith("__"):
            keep.append("internal topic")
        if t.in_catalog:
            keep.append("in the catalog")
        if t.name in rules.protected:
            keep.append("on the protected list")
        if t.name in rules.reserved:
            keep.append("used by ecap-ops itself")
        if t.offline_partitions:
            keep.append(f"{t.offline_partitions} partition(s) offline: the evidence is incomplete")
        if t.newest_record_ms is None:
            if not rules.delete_empty:
                keep.append(
                    "holds no record, so no record time proves it idle (delete_empty is off)"
                )
        elif t.newest_record_ms > now_ms:
            keep.append(
                f"newest record is timestamped {format_duration_ms(t.newest_record_ms - now_ms)} in the future"
            )
        elif now_ms - t.newest_record_ms < idle_ms:
            keep.append(
                f"written {format_duration_ms(now_ms - t.newest_record_ms)} ago, within the idle period of {rules.idle_days:g} day(s)"
            )
        for g in t.groups:
            if g.members_on_topic:
                keep.append(
                    f"group {g.group_id} has {g.members_on_topic} member(s) on it ({g.state})"
                )
            elif g.committed:
                keep.append(
                    f"group {g.group_id} has committed offsets on it (Kafka keeps them only while the group is in use, "
                    "plus offsets.retention.minutes after it empties)"
                )
        if keep:
            decisions.append(
                Decision(t.name, pattern, False, False, tuple(keep), _evidence(t, now_ms))
            )
        else:
            why = [f"matches {pattern!r}"]
            why.append(
                f"idle {format_duration_ms(now_ms - t.newest_record_ms)} (newest record), more than {rules.idle_days:g} day(s)"
                if t.newest_record_ms is not None
                else "empty (delete_empty is on)"
            )
            why.append("no consumer group on it")
            decisions.append(
                Decision(t.name, pattern, True, False, tuple(why), _evidence(t, now_ms))
            )
    # The budget: the longest idle first; an empty topic counts as the most idle.
    order = sorted(
        (d for d in decisions if d.candidate),
        key=lambda d: (d.evidence["newest_record_ms"] or 0, d.topic),
    )
    chosen = {d.topic for d in order[: rules.max_deletions]}
    out = []
    for d in decisions:
        if d.candidate and d.topic in chosen:
            out.append(Decision(d.topic, d.matched_pattern, True, True, d.reasons, d.evidence))
        elif d.candidate:
            out.append(
                Decision(
                    d.topic,
                    d.matched_pattern,
                    True,
                    False,
                    d.reasons + (f"over this run's budget of {rules.max_deletions} deletion(s)",),
                    d.evidence,
                )
            )
        else:
            out.append(d)
    return out
