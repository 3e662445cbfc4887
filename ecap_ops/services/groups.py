"""Consumer groups with their state, members and lag per topic (`consumer-groups`), and the
group evidence the test-topic cleanup weighs.

Lag here is simple and exact at one moment: each partition's end offset minus the group's
committed offset, summed per topic (one OffsetFetch per coordinator for all groups, one
ListOffsets per partition leader). Lag over time and in seconds is the lag area's work.
"""

from dataclasses import dataclass, field

from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.activity import GroupInfo, consumer_groups


@dataclass(frozen=True)
class TopicLag:
    topic: str
    partitions: int  # partitions with a committed offset
    lag: int | None  # None when an end offset could not be read
    members: int  # members assigned partitions of this topic


@dataclass(frozen=True)
class GroupSummary:
    group_id: str
    state: str
    group_type: str
    members: int | None
    topics: tuple[TopicLag, ...] = ()
    error: str | None = None
    info: GroupInfo | None = field(default=None, repr=False, compare=False)

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
            "total_lag": self.total_lag,
            "topics": [
                {"topic": t.topic, "partitions": t.partitions, "lag": t.lag, "members": t.members}
                for t in self.topics
            ],
        }


def group_summaries(gw: KafkaGateway, groups: list[GroupInfo] | None = None) -> list[GroupSummary]:
    """Every consumer group with its lag per topic."""
    groups = consumer_groups(gw) if groups is None else groups
    parts = sorted({tp for g in groups for tp in g.committed})
    live = set(gw.describe_topics({t for t, _ in parts}))
    ends = gw.offsets([tp for tp in parts if tp[0] in live], "latest") if parts else {}
    out = []
    for g in groups:
        per_topic: dict[str, list[int | None]] = {}
        for (topic, p), committed in g.committed.items():
            end = ends.get((topic, p))
            per_topic.setdefault(topic, []).append(None if end is None else max(0, end - committed))
        members_by_topic: dict[str, int] = {}
        for m in g.members or ():
            for topic in m.assignment:
                members_by_topic[topic] = members_by_topic.get(topic, 0) + 1
        topics = sorted(set(per_topic) | set(members_by_topic))
        lags = tuple(
            TopicLag(
                topic=t,
                partitions=len(per_topic.get(t, [])),
                lag=sum(v for v in per_topic[t] if v is not None)
                if t in per_topic and all(v is not None for v in per_topic[t])
                else None,
                members=members_by_topic.get(t, 0),
            )
            for t in topics
        )
        out.append(
            GroupSummary(
                g.group_id,
                g.state,
                g.group_type,
                len(g.members) if g.members is not None else None,
                lags,
                g.error,
                g,
            )
        )
    return out
