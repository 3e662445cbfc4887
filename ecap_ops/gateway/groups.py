"""The one reader of consumer groups: listed (type, state, protocol), described (members and
their assignments) and their positions (committed offsets, or a share group's share-partition
start offsets), as the core's types (`ecap_ops.core.groups`).

Every group type is read: classic groups, KIP-848 consumer groups, KIP-932 share groups and
KIP-1071 streams groups. A read sends a fixed number of requests whatever the number of
groups: one ListGroups per broker, one batched FindCoordinator, then per group coordinator
one request of each kind its groups need, all groups of that kind in it:
  - describe: DescribeGroups (classic), ConsumerGroupDescribe (consumer),
    ShareGroupDescribe (share), StreamsGroupDescribe (streams);
  - positions: OffsetFetch v8 (classic, consumer and streams groups: all commit offsets),
    DescribeShareGroupOffsets (share groups);
sent to every coordinator at once on the admin client's network thread (the requests
kafka-python lacks are in `gateway/group_protocols.py`). The lag tick runs the same waves
inside its own measurement (`gateway/lag.py`); `consumer-groups`, cleanup, snapshots and
restore call `read_groups`. A group that could not be read is noted with the reason
(`Waiter.failed`), never dropped silently.
"""

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ecap_ops.core.groups import (
    GROUP_TYPES,
    TP,
    ConsumerGroup,
    GroupDescription,
    GroupListing,
    GroupMember,
    combine,
)
from ecap_ops.errors import KafkaRequestFailed
from ecap_ops.gateway import group_protocols
from ecap_ops.gateway.client import KafkaGateway
from ecap_ops.gateway.offset_fetch import OffsetsAnswer, offset_fetch_request

log = logging.getLogger(__name__)

# Errors of a coordinator still loading or moving (a fresh cluster before
# __consumer_offsets exists): worth asking again for a few seconds.
RETRIABLE = (
    "CoordinatorNotAvailable",
    "CoordinatorLoadInProgress",
    "NotCoordinator",
    "no coordinator",
)


class Waiter:
    """Requests sent on the admin client's network thread within one time budget; a request
    that fails or runs out of time is noted in `problems`, never raised, so one broker's
    failure does not lose the others' answers."""

    def __init__(self, admin, budget_s: float):
        self.admin = admin
        self.mgr = admin._manager
        self.deadline = time.monotonic() + budget_s
        self.problems: list[str] = []
        # Why a group could not be read (its coordinator failed, or it answered an error).
        self.failed: dict[str, str] = {}
        # What the last listing found (the lag tick shows every listed group).
        self.listed: dict[str, GroupListing] = {}
        # Share groups: the lag their coordinator reports per partition (KIP-1226).
        self.share_lags: dict[str, dict[TP, int]] = {}

    def fail(self, group_ids: Iterable[str], reason: str) -> None:
        for g in group_ids:
            self.failed.setdefault(g, reason[:300])

    def left_ms(self) -> int:
        return max(1, int((self.deadline - time.monotonic()) * 1000))

    async def wait(self, future, what: str):
        """The future's value, or None (and a note) when it failed or the budget ran out."""
        try:
            return await self.mgr.wait_for(future, self.left_ms())
        except Exception as exc:  # one broker's failure must not lose the others' answers
            self.problems.append(f"{what}: {type(exc).__name__}: {exc}"[:300])
            return None

    def send(self, request, node_id):
        return self.mgr.send(request, node_id=node_id, request_timeout_ms=self.left_ms())


# -- kafka-python's answers as the core's types ---------------------------------------------


def listing_from(d: dict) -> GroupListing:
    """A ListGroups entry (kafka-python's dict) as a `GroupListing`."""
    return GroupListing(
        group_id=d["group_id"],
        state=d.get("group_state") or "Unknown",
        group_type=d.get("group_type") or "classic",
        protocol_type=d.get("protocol_type") or "",
    )


def _member_from(m) -> GroupMember:
    get = m.get if isinstance(m, dict) else (lambda k, default=None: getattr(m, k, default))
    a = get("member_assignment")
    parts = getattr(a, "assigned_partitions", None)
    if parts is None and isinstance(a, dict):
        parts = [(x.get("topic"), x.get("partitions")) for x in a.get("assigned_partitions") or []]
    assignment: dict[str, tuple[int, ...]] = {}
    for entry in parts or []:
        topic, ps = (entry["topic"], entry.get("partitions")) if isinstance(entry, dict) else entry
        assignment[topic] = tuple(sorted(set(assignment.get(topic, ())) | set(ps or ())))
    meta = get("member_metadata")
    topics = getattr(meta, "topics", None)
    if topics is None and isinstance(meta, dict):
        topics = meta.get("topics")
    return GroupMember(
        member_id=get("member_id", "") or "",
        client_id=get("client_id", "") or "",
        host=get("client_host", "") or "",
        assignment=assignment,
        subscription=tuple(topics or ()),
    )


def description_from(group_id: str, d: dict) -> GroupDescription:
    """A DescribeGroups entry (kafka-python's dict) as a `GroupDescription`."""
    if d.get("error"):
        return GroupDescription(group_id, "Unknown", None, str(d["error"]))
    members = tuple(_member_from(m) for m in d.get("members") or [])
    return GroupDescription(group_id, d.get("group_state") or "Unknown", members)


def committed_from(
    response: OffsetsAnswer, problems: list[str], failed: dict[str, str] | None = None
) -> dict[str, dict[TP, int]]:
    """Committed offsets per group in an OffsetFetch answer (`gateway.offset_fetch`: only
    partitions without error and with an offset are in it); groups that failed are noted."""
    from kafka import errors as kerr

    out: dict[str, dict[TP, int]] = {}
    for group_id, error_code, offsets in response.groups:
        if error_code:
            reason = kerr.for_code(error_code).__name__
            problems.append(f"committed offsets of group {group_id}: {reason}")
            if failed is not None:
                failed[group_id] = f"its committed offsets could not be read: {reason}"
            continue
        out[group_id] = offsets
    return out


def classic_descriptions_from(admin, response) -> dict[str, GroupDescription]:
    """A DescribeGroups answer as `GroupDescription`s. A group with no members (most of a
    large cluster's groups, between runs) is read straight from the answer; a group with
    members through kafka-python's reading of their subscriptions and assignments (what
    its `describe_groups` does), which also names the error of a group that has one. The
    answer's group list is narrowed to those (kafka-python's reader walks all it holds)."""
    out: dict[str, GroupDescription] = {}
    others = []
    for g in response.groups:
        if g.error_code or g.members:
            others.append(g)
        else:
            out[g.group_id] = GroupDescription(g.group_id, g.group_state or "Unknown", ())
    if others:
        response.groups = others
        raw = admin._describe_groups_process_response(response)
        out.update({g: description_from(g, d) for g, d in raw.items()})
    return out


# -- the waves ----------------------------------------------------------------------------


def send_list_groups(w: Waiter) -> dict:
    """ListGroups sent to every broker now (answers awaited by `listings`)."""
    brokers = [b.node_id for b in w.mgr.cluster.brokers()]
    return {b: w.send(w.admin._list_groups_request(), b) for b in brokers}


async def listings(w: Waiter, sent: dict) -> tuple[dict[str, GroupListing], bool]:
    """Every group the brokers listed, and whether every broker answered."""
    out: dict[str, GroupListing] = {}
    complete = True
    for b, f in sent.items():
        resp = await w.wait(f, f"listing the groups of broker {b}")
        if resp is None or resp.error_code:
            complete = False
            continue
        for g in resp.groups:
            # A group coordinated by two brokers during a move appears twice; keep one.
            listing = listing_from(
                {  # the fields listing_from reads, without a to_dict of every group
                    "group_id": g.group_id,
                    "group_state": getattr(g, "group_state", None),
                    "group_type": getattr(g, "group_type", None),
                    "protocol_type": g.protocol_type,
                }
            )
            out[listing.group_id] = listing
    w.listed = out
    return out, complete


def group_kind(listing: GroupListing | None) -> str | None:
    """Which describe request a group takes: classic (DescribeGroups, also for groups not
    listed), consumer, share or streams; None for a type this version does not know."""
    kind = (listing.group_type if listing is not None else "") or "classic"
    return kind if kind in GROUP_TYPES else None


async def describe_and_fetch(
    w: Waiter,
    group_ids: list[str],
    describe: Iterable[str],
    offsets: bool = True,
    types: Mapping[str, str] | None = None,
) -> tuple[dict[str, GroupDescription], dict[str, dict[TP, int]]]:
    """Descriptions (of the groups in `describe`) and positions (of all, when `offsets`):
    committed offsets, or a share group's share-partition start offsets. `types`: each
    group's type (classic when not given). One batched FindCoordinator, then per coordinator
    one request of each kind its groups need, to every coordinator at once. A group that
    could not be read is left out of the answer and its reason put in `w.failed`."""
    described_ids = set(describe)
    types = types or {}
    if not group_ids or not (offsets or described_ids):
        return {}, {}
    coords = await w.wait(
        w.mgr.call_soon(w.admin._find_coordinator_ids, list(group_ids)),
        "finding group coordinators",
    )
    by_coord: dict[int, list[str]] = defaultdict(list)
    for g, node in (coords or {}).items():
        if node is not None and node >= 0:
            by_coord[node].append(g)
    found = {g for gs in by_coord.values() for g in gs}  # once: a set per group is quadratic
    lost = [g for g in group_ids if g not in found]
    if lost and coords is not None:
        w.problems.append(f"no coordinator found for {len(lost)} group(s): {', '.join(lost[:5])}")
    w.fail(
        lost, "its coordinator could not be found" + (f" ({w.problems[-1]})" if w.problems else "")
    )
    sent: list[tuple[str, str, int, list[str], object]] = []  # (what, kind, node, groups, future)
    for n, gs in by_coord.items():
        kinds: dict[str, list[str]] = defaultdict(list)
        for g in gs:
            kinds[types.get(g) or "classic"].append(g)
        for kind, ids in sorted(kinds.items()):
            if offsets:
                if kind == "share":
                    req = group_protocols.share_offsets_request(ids)
                    sent.append(("share offsets", kind, n, ids, w.send(req, n)))
                else:
                    sent.append(("offsets", kind, n, ids, None))
            wanted = [g for g in ids if g in described_ids]
            if not wanted or kind not in GROUP_TYPES:
                continue
            if kind == "classic":
                req = w.admin._describe_groups_request(wanted)
            else:
                req = group_protocols.describe_request(kind, wanted)
            sent.append(("describe", kind, n, wanted, w.send(req, n)))
    # The groups of one coordinator that commit offsets share one OffsetFetch.
    fetch: dict[int, list[str]] = defaultdict(list)
    for what, _kind, n, ids, _f in sent:
        if what == "offsets":
            fetch[n] += ids
    sent = [x for x in sent if x[0] != "offsets"]
    sent += [
        ("offsets", "", n, ids, w.send(offset_fetch_request(ids), n)) for n, ids in fetch.items()
    ]
    positions: dict[str, dict[TP, int]] = {}
    descriptions: dict[str, GroupDescription] = {}
    for what, kind, n, ids, f in sent:
        doing = {
            "offsets": f"committed offsets from coordinator {n}",
            "share offsets": f"share-group offsets from coordinator {n}",
            "describe": f"describing {kind} groups on coordinator {n}",
        }[what]
        before = len(w.problems)
        resp = await w.wait(f, doing)
        if resp is None:
            w.fail(ids, w.problems[-1] if len(w.problems) > before else doing + " failed")
            continue
        try:
            if what == "offsets":
                positions.update(committed_from(resp, w.problems, w.failed))
            elif what == "share offsets":
                positions.update(
                    group_protocols.share_starts_from(resp, w.problems, w.failed, w.share_lags)
                )
            elif kind == "classic":
                descriptions.update(classic_descriptions_from(w.admin, resp))
            else:
                descriptions.update(group_protocols.descriptions_from(kind, resp))
        except Exception as exc:  # an undecodable answer must not lose the others
            note = f"{doing}: {type(exc).__name__}: {exc}"[:300]
            w.problems.append(note)
            w.fail(ids, note)
    for g, d in descriptions.items():
        if d.error:
            w.fail([g], f"it could not be described: {d.error}")
    return descriptions, positions


def describable(listing: GroupListing | None) -> bool:
    """Whether a group can be described: every group type Kafka 4.4 has (and groups not
    listed, taken for classic groups)."""
    return group_kind(listing) is not None


def group_types(listed: Mapping[str, GroupListing]) -> dict[str, str]:
    """Each listed group's type, as `describe_and_fetch` takes them."""
    return {g: x.group_type or "classic" for g, x in listed.items()}


# -- reading groups from the other commands -------------------------------------------------


@dataclass
class GroupsRead:
    """What one read of the groups found. Groups missing from `committed` (or, for share
    groups, `share_starts`) or `descriptions` could not be read: `failed` says why."""

    listings: dict[str, GroupListing]
    descriptions: dict[str, GroupDescription] = field(default_factory=dict)
    # Committed offsets of the groups that commit them (never a share group's).
    committed: dict[str, dict[TP, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # Share groups' share-partition start offsets.
    share_starts: dict[str, dict[TP, int]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    # Share groups' lag as their coordinator reports it (KIP-1226), per partition.
    share_lags: dict[str, dict[TP, int]] = field(default_factory=dict)

    def add_positions(self, positions: dict[str, dict[TP, int]]) -> None:
        """Positions from `describe_and_fetch`, each into its place by the group's type."""
        for g, offs in positions.items():
            listing = self.listings.get(g)
            share = listing is not None and listing.group_type == "share"
            (self.share_starts if share else self.committed)[g] = offs

    def positions(self, group_id: str) -> dict[TP, int] | None:
        found = self.committed.get(group_id)
        return self.share_starts.get(group_id) if found is None else found

    def group(self, group_id: str) -> ConsumerGroup:
        return combine(
            self.listings.get(group_id),
            self.descriptions.get(group_id),
            self.positions(group_id),
            group_id,
            self.share_lags.get(group_id),
        )

    def groups(self, ids: Iterable[str] | None = None) -> list[ConsumerGroup]:
        return [self.group(g) for g in sorted(self.listings if ids is None else ids)]

    def unread(self, describe: bool = True, offsets: bool = True) -> list[str]:
        """Listed groups whose committed offsets (or description) could not be read."""
        return [
            g
            for g, x in sorted(self.listings.items())
            if (offsets and self.positions(g) is None)
            or (describe and describable(x) and g not in self.descriptions)
        ]

    def require_complete(self, describe: bool = True, offsets: bool = True) -> "GroupsRead":
        """This read, or KafkaRequestFailed when some group could not be read: a group shown
        without its offsets would pass for a group that consumes nothing."""
        missing = self.unread(describe, offsets)
        if missing:
            raise KafkaRequestFailed(
                f"reading consumer groups: {len(missing)} group(s) could not be read "
                f"({', '.join(g[:60] for g in missing[:5])}): "
                + "; ".join(self.problems)[:400]
                + ". Try again in a moment; if it persists, check the group coordinators."
            )
        return self


async def _first_read(
    w: Waiter, ids: set[str] | None, describe: bool, offsets: bool, consumer_only: bool
) -> tuple[dict[str, GroupListing] | None, dict, dict]:
    found, complete = await listings(w, send_list_groups(w))
    if not complete:
        return None, {}, {}
    chosen = {
        g: x
        for g, x in found.items()
        if (ids is None or g in ids) and (x.is_consumer_group or not consumer_only)
    }
    wanted = [g for g, x in chosen.items() if describable(x)] if describe else []
    types = group_types(chosen)
    desc, positions = await describe_and_fetch(w, sorted(chosen), wanted, offsets, types)
    return chosen, desc, positions


def read_groups(
    gw: KafkaGateway,
    group_ids: Iterable[str] | None = None,
    *,
    describe: bool = True,
    offsets: bool = True,
    consumer_only: bool = False,
    wait_s: float = 15.0,
) -> GroupsRead:
    """The groups on the cluster (those of `group_ids` that exist, when given;
    `consumer_only` keeps those whose offsets we judge), described and with their committed
    offsets as asked.

    Groups whose coordinator is still loading or moving are asked again, for at most
    `wait_s` seconds. Raises KafkaRequestFailed when a broker does not list its groups: a
    listing with holes would pass for a cluster without those groups."""
    ids = None if group_ids is None else set(group_ids)
    budget = max(1.0, gw.settings.request_timeout_ms / 1000)
    deadline = time.monotonic() + wait_s
    w = Waiter(gw.admin, budget)
    chosen, desc, committed = gw.call(
        "reading consumer groups",
        lambda a: a._manager.run(_first_read, w, ids, describe, offsets, consumer_only),
    )
    if chosen is None:
        raise KafkaRequestFailed(
            "listing consumer groups: not every broker answered: "
            + "; ".join(w.problems)[:500]
            + ". Check that every broker is up, then try again."
        )
    result = GroupsRead(
        chosen, desc, problems=w.problems, failed=dict(w.failed), share_lags=w.share_lags
    )
    result.add_positions(committed)
    while True:
        todo = result.unread(describe, offsets)
        retriable = any(any(r in p for r in RETRIABLE) for p in result.problems)
        if not todo or not retriable or time.monotonic() >= deadline:
            result.failed = {g: r for g, r in result.failed.items() if g in todo}
            for g in todo:
                result.failed.setdefault(g, "; ".join(result.problems)[:300] or "not read")
            return result
        time.sleep(0.5)
        w = Waiter(gw.admin, budget)
        again = [g for g in todo if describe and describable(chosen[g])]
        desc, committed = gw.call(
            "reading consumer groups",
            lambda a, w=w, t=todo, d=again: a._manager.run(
                describe_and_fetch, w, t, d, offsets, group_types(chosen)
            ),
        )
        result.descriptions.update(desc)
        result.add_positions(committed)
        result.problems = w.problems
        result.failed = {**result.failed, **w.failed}
