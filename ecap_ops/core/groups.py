"""Consumer groups as the gateway reads them: listed (type, state, protocol), described
(members and their assignments) and their committed offsets. Plain typed data, and the
rules every reader of groups shares. Pure.
"""

from dataclasses import dataclass, field

TP = tuple[str, int]

# Groups whose lag we measure: classic groups of the consumer protocol (protocol type
# "consumer", or "" for groups that only commit offsets), and every group of Kafka 4's own
# types: KIP-848 consumer groups, KIP-1071 streams groups (both commit offsets) and KIP-932
# share groups (their position is the share-partition start offset, not a committed offset).
# Classic groups of other protocols (Kafka Connect workers, ...) consume nothing.
CONSUMER_PROTOCOL_TYPES = ("consumer", "")
CONSUMING_GROUP_TYPES = ("consumer", "share", "streams")
# Group types and the request that describes each (one per coordinator per type).
GROUP_TYPES = ("classic", "consumer", "share", "streams")


@dataclass(frozen=True)
class GroupListing:
    """One group as ListGroups shows it."""

    group_id: str
    state: str  # Stable, Empty, PreparingRebalance, ..., Unknown when not reported
    group_type: str  # classic, consumer (KIP-848), share, streams
    protocol_type: str  # consumer, "" (offsets only), or another protocol

    @property
    def is_consumer_group(self) -> bool:
        """Whether the group consumes records, so it has a lag: classic consumer-protocol
        groups and every consumer, share and streams group."""
        return (
            self.protocol_type in CONSUMER_PROTOCOL_TYPES
            or self.group_type in CONSUMING_GROUP_TYPES
        )


@dataclass(frozen=True)
class GroupMember:
    member_id: str
    client_id: str
    host: str
    # topic -> partitions assigned to this member
    assignment: dict[str, tuple[int, ...]] = field(default_factory=dict)
    subscription: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupDescription:
    """One group as its coordinator describes it (DescribeGroups for classic groups,
    ConsumerGroupDescribe, ShareGroupDescribe or StreamsGroupDescribe for the others).
    `members` is None when it could not be described; `error` says why."""

    group_id: str
    state: str
    members: tuple[GroupMember, ...] | None
    error: str | None = None

    @property
    def assigned(self) -> frozenset[TP]:
        return frozenset(
            (t, p) for m in self.members or () for t, ps in m.assignment.items() for p in ps
        )

    @property
    def member_ids(self) -> tuple[str, ...]:
        return tuple(sorted(m.member_id for m in self.members or ()))


@dataclass(frozen=True)
class ConsumerGroup:
    """A group with everything read about it: listing, description, committed offsets."""

    group_id: str
    state: str
    group_type: str  # classic, consumer (KIP-848), share (KIP-932), streams (KIP-1071)
    protocol_type: str
    members: tuple[GroupMember, ...] | None  # None: the broker did not describe them
    # (topic, partition) -> committed offset (never a share group's: it commits none)
    committed: dict[TP, int] = field(default_factory=dict)
    error: str | None = None
    # A share group's position: (topic, partition) -> share-partition start offset (SPSO)
    share_start: dict[TP, int] = field(default_factory=dict)
    # A share group's lag as its coordinator reports it (KIP-1226), where known
    share_lag: dict[TP, int] = field(default_factory=dict)

    @property
    def is_share_group(self) -> bool:
        return self.group_type == "share"

    @property
    def positions(self) -> dict[TP, int]:
        """Where the group stands on each partition, as lag counts from it: the committed
        offsets, or a share group's share-partition start offsets."""
        return self.share_start if self.is_share_group else self.committed

    def positions_at(self, ends: dict[TP, int]) -> dict[TP, int]:
        """`positions`, with a share group's taken where its coordinator's own lag puts
        them (`share_position`) on the partitions whose end offset is in `ends`."""
        if not self.is_share_group or not self.share_lag:
            return self.positions
        return {
            tp: share_position(start, self.share_lag.get(tp), ends.get(tp))
            for tp, start in self.share_start.items()
        }

    def topics(self) -> set[str]:
        """Topics the group has committed offsets on or whose partitions its members hold."""
        names = {t for t, _ in self.positions}
        for m in self.members or ():
            names |= set(m.assignment) | set(m.subscription)
        return names

    @property
    def member_count(self) -> int | None:
        return None if self.members is None else len(self.members)

    @property
    def assigned(self) -> frozenset[TP]:
        return frozenset(
            (t, p) for m in self.members or () for t, ps in m.assignment.items() for p in ps
        )


def share_position(start: int, broker_lag: int | None, end: int | None) -> int:
    """Where a share group stands on a partition, as lag counts from it.

    The share-partition start offset (SPSO) is the first record not yet acknowledged for
    good, but records above it may be acknowledged already (delivered out of order, or the
    SPSO not yet advanced): counting from the SPSO alone overstates the lag. Kafka 4.2+
    reports the coordinator's own lag (KIP-1226); with the end offset known, the group
    stands at `end - lag`, never before the SPSO nor past the end."""
    if broker_lag is None or end is None:
        return start
    return min(end, max(start, end - broker_lag))


def combine(
    listing: GroupListing | None,
    description: GroupDescription | None,
    committed: dict[TP, int] | None,
    group_id: str,
    share_lag: dict[TP, int] | None = None,
) -> ConsumerGroup:
    """One group from what each reader found about it (any of them may be missing).
    `committed`: the group's positions (a share group's are its share-partition start
    offsets, kept apart from committed offsets).

    The state is the coordinator's (described) when there is one, else the listing's."""
    described = description is not None and description.error is None
    state = (description.state if described else "") or (listing.state if listing else "")
    share = listing is not None and listing.group_type == "share"
    return ConsumerGroup(
        group_id=group_id,
        state=state or "Unknown",
        group_type=(listing.group_type if listing else "") or "classic",
        protocol_type=listing.protocol_type if listing else "",
        members=description.members if described else None,
        committed={} if share else dict(committed or {}),
        error=description.error if description is not None else None,
        share_start=dict(committed or {}) if share else {},
        share_lag=dict(share_lag or {}) if share else {},
    )
