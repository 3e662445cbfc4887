"""Consumer groups with their state, members and lag per topic (`consumer-groups`), and the
group evidence the test-topic cleanup weighs.

Lag here is the lag of one moment, by the one formula the lag sensor and `ecap-ops lag` use
(`core.lag_measures.partition_lag`): per partition, the end offset (the last stable offset
on the catalog's transactional topics) minus where the group will read next, its committed
offset or the log start when retention deleted records it never read; records deleted
unread are counted as `lost`. Groups come from the one group reader (`gateway.groups`),
offsets from one ListOffsets per partition leader and kind. Lag in seconds is the age of the
oldest unconsumed record, read from the log (`gateway/record_times.py`: one Fetch per
partition leader, only for partitions some group lags on); with no history here it is
exact or unknown (`-`), never estimated. Lag over time is the lag area's work
(`services/lag.py`).

Every group type is shown (classic, consumer, share, streams). A share group commits no
offsets: its lag counts from its share-partition start offset (see docs/consumer-lag.md).
A group whose positions could not be read is shown with the reason, never left out.
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from ecap_ops.core.groups import ConsumerGroup
from ecap_ops.core.lag_measures import partition_lag, record_lag_seconds
from ecap_ops.core.lag_model import TP, PartitionOffsets
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.activity import GroupInfo
from ecap_ops.gateway.groups import read_groups
from ecap_ops.gateway.offsets import partition_offsets
from ecap_ops.gateway.record_times import lagging_positions, read_record_times

__all__ = ["GroupInfo", "GroupSummary", "TopicLag", "group_summaries", "summarize"]


@dataclass(frozen=True)
class TopicLag:
    topic: str
    partitions: int  # partitions with a committed offset
    lag: int | None  # None when an end offset could not be read
    members: int  # members assigned partitions of this topic
    lost: int = 0  # records deleted by retention before the group read them
    # Age of the oldest unconsumed record (None: not read); kind exact, at_least (a lower
    # bound), partial (some lagging partition not read: the others' worst) or unknown.
    lag_seconds: float | None = None
    lag_seconds_kind: str = "unknown"
    timestamp_type: str | None = None  # CreateTime or LogAppendTime, as read


@dataclass(frozen=True)
class GroupSummary:
    group_id: str
    state: str
    group_type: str
    members: int | None
    topics: tuple[TopicLag, ...] = ()
    error: str | None = None
    info: ConsumerGroup | None = field(default=None, repr=False, compare=False)

    @property
    def total_lag(self) -> int | None:
        lags = [t.lag for t in self.topics]
        return sum(lags) if lags and all(v is not None for v in lags) else None

    def to_dict(self) -> dict:
        return {
            "group_id": self.group_id,
            "state": self.state,
            "type": self.group_type,
            "members": self.members,
            "error": self.error,
            "lag_from": "share-partition start offset"
            if self.group_type == "share"
            else "committed offset",
            "total_lag": self.total_lag,
            "topics": [
                {
                    "topic": t.topic,
                    "partitions": t.partitions,
                    "lag": t.lag,
                    "lost": t.lost,
                    "members": t.members,
                    "lag_seconds": None if t.lag_seconds is None else round(t.lag_seconds, 1),
                    "lag_seconds_kind": t.lag_seconds_kind,
                    "timestamp_type": t.timestamp_type,
                }
                for t in self.topics
            ],
        }


def _topic_seconds(ages: list[tuple[float | None, str]]) -> tuple[float | None, str]:
    """A topic's lag in seconds from its lagging partitions' (seconds, kind): the worst;
    `partial` when some lagging partition's record was not read."""
    known = [a for a in ages if a[0] is not None]
    if not ages:
        return 0.0, "exact"
    if not known:
        return None, "unknown"
    top = max(known, key=lambda a: a[0])
    return (top[0], "partial") if len(known) < len(ages) else top


def summarize(
    g: ConsumerGroup, offsets: dict[TP, PartitionOffsets], now: float | None = None
) -> GroupSummary:
    """One group's lag per topic at one moment, from its committed offsets and the
    partitions' offsets (a partition whose offsets are unknown makes its topic's lag unknown).
    Lag in seconds from the partitions' record times (`PartitionOffsets.times`), at `now`."""
    now = time.time() if now is None else now
    per_topic: dict[str, list[tuple[int, int] | None]] = {}
    ages: dict[str, list[tuple[float | None, str]]] = {}
    types: dict[str, str] = {}
    positions = g.positions
    if g.share_lag:  # a share group stands where its coordinator's lag puts it
        positions = g.positions_at({tp: po.end for tp, po in offsets.items() if tp in positions})
    for (topic, p), committed in positions.items():
        po = offsets.get((topic, p))
        count = None if po is None else partition_lag(committed, po.start, po.end)
        per_topic.setdefault(topic, []).append(None if count is None else count[1:])
        if count is not None and count.lag_msgs > 0:
            if po.times is None:
                ages.setdefault(topic, []).append((None, "unknown"))
            else:
                ages.setdefault(topic, []).append(
                    record_lag_seconds(po.times, (), count.position, po.end, now)
                )
                types[topic] = po.times.timestamp_type
    members_by_topic: dict[str, int] = {}
    for m in g.members or ():
        for topic in m.assignment:
            members_by_topic[topic] = members_by_topic.get(topic, 0) + 1
    lags = []
    for t in sorted(set(per_topic) | set(members_by_topic)):
        counts = per_topic.get(t, [])
        known = t in per_topic and all(c is not None for c in counts)
        secs, kind = _topic_seconds(ages.get(t, [])) if known else (None, "unknown")
        lags.append(
            TopicLag(
                topic=t,
                partitions=len(counts),
                lag=sum(c[0] for c in counts) if known else None,
                members=members_by_topic.get(t, 0),
                lost=sum(c[1] for c in counts if c is not None),
                lag_seconds=secs,
                lag_seconds_kind=kind,
                timestamp_type=types.get(t),
            )
        )
    return GroupSummary(g.group_id, g.state, g.group_type, g.member_count, tuple(lags), g.error, g)


def group_summaries(
    gw: KafkaGateway,
    groups: list[ConsumerGroup] | None = None,
    transactional: Iterable[str] = (),
) -> list[GroupSummary]:
    """Every consumer group (every type) with its lag per topic. `transactional`: topics
    whose end is their last stable offset (the catalog's transactional topics), as the lag
    tick reads. A group whose positions could not be read comes with `error` saying why."""
    if groups is None:
        read = read_groups(gw, consumer_only=True)
        groups = []
        for gid in sorted(read.listings):
            g = read.group(gid)
            if gid in read.failed:
                g = replace(g, error=f"lag not read: {read.failed[gid]}"[:300])
            groups.append(g)
    parts = sorted({tp for g in groups for tp in g.positions})
    offsets = partition_offsets(gw, parts, transactional) if parts else {}
    ends = {tp: po.end for tp, po in offsets.items()}
    positions = lagging_positions((g.positions_at(ends) for g in groups), offsets)
    times, _notes = read_record_times(gw, positions, transactional)
    for tp, t in times.items():
        po = offsets[tp]
        offsets[tp] = PartitionOffsets(po.start, po.end, po.sla_offset, t)
    now = time.time()
    return [summarize(g, offsets, now) for g in groups]
