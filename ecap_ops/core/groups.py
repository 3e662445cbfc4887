"""Consumer groups as the gateway reads them: listed (type, state, protocol), described
(members and their assignments) and their committed offsets. Plain typed data, and the
rules every reader of groups shares. Pure.
"""

from dataclasses import dataclass, field

TP = tuple[str, int]

# Groups whose committed offsets we judge: classic consumer groups (protocol type
# "consumer", or "" for groups that only commit offsets) and Kafka 4's consumer groups.
# Share groups hold no consumer offsets; Kafka Streams groups list as protocol "streams".
CONSUMER_PROTOCOL_TYPES = ("consumer", "")


@dataclass(frozen=True)
class GroupListing:
    """One group as ListGroups shows it."""

    group_id: str
    state: str  # Stable, Empty, PreparingRebalance, ..., Unknown when not reported
    group_type: str  # classic, consumer (KIP-848), share, streams
    protocol_type: str  # consumer, "" (offsets only), or another protocol

    @property
    def is_consumer_group(self) -> bool:
        return self.protocol_type in CONSUMER_PROTOCOL_TYPES


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
    """One group as its coordinator describes it. `members` is None when it could not be
    described (e.g. a KIP-848 group, which DescribeGroups does not describe); `error` says
    why."""

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
    group_type: str  # classic or consumer (Kafka 4's new protocol)
    protocol_type: str
    members: tuple[GroupMember, ...] | None  # None: the broker did not describe them
    # (topic, partition) -> committed offset
    committed: dict[TP, int] = field(default_factory=dict)
    error: str | None = None

    def topics(self) -> set[str]:
        """Topics the group has committed offsets on or whose partitions its members hold."""
        names = {t for t, _ in self.committed}
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


def combine(
    listing: GroupListing | None,
    description: GroupDescription | None,
    committed: dict[TP, int] | None,
    group_id: str,
) -> ConsumerGroup:
    """One group from what each reader found about it (any of them may be missing).

    The state is the coordinator's (described) when there is one, else the listing's."""
    described = description is not None and description.error is None
    state = (description.state if described else "") or (listing.state if listing else "")
    return ConsumerGroup(
        group_id=group_id,
        state=state or "Unknown",
        group_type=(listing.group_type if listing else "") or "classic",
        protocol_type=listing.protocol_type if listing else "",
        members=description.members if described else None,
        committed=dict(committed or {}),
        error=description.error if description is not None else None,
    )
