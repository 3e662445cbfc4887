"""Measuring consumer lag in one tick: groups, committed offsets, end/start offsets.

A tick sends a fixed number of requests whatever the number of groups: one Metadata, one
ListGroups per broker, one batched FindCoordinator, then per group coordinator one request
per kind its groups need (OffsetFetch v8 for the groups that commit offsets,
DescribeShareGroupOffsets for share groups, and the describe request of each group type:
the group reader of `gateway/groups.py`, the one every command uses), and per
partition leader one ListOffsets per kind (latest, last stable for transactional topics,
earliest, and the SLA probe at `now - crit_seconds`), then per partition leader one Fetch
of the records at the lagging groups' positions (`gateway/record_times.py`: their
timestamps make lag in seconds exact from the first look; left out with
`exact_seconds=False`). Requests of one wave go to all brokers at once on the client's
network thread. Every wait is bounded by the tick's time
budget; what did not answer in time is left out and the observation says it is partial.
"""

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from ecap_ops.catalog.model import LagThresholds
from ecap_ops.core.groups import (
    CONSUMER_PROTOCOL_TYPES,
    ConsumerGroup,
    GroupListing,
    combine,
    share_position,
)
from ecap_ops.core.lag import GroupObservation, Observation, PartitionOffsets, group_selected
from ecap_ops.core.lag_model import TP
from ecap_ops.errors import KafkaUnavailable
from ecap_ops.gateway.client import KafkaGateway
from ecap_ops.gateway.groups import (
    Waiter,
    describable,
    describe_and_fetch,
    group_types,
    listings,
    send_list_groups,
)
from ecap_ops.gateway.record_times import fetch_record_times, lagging_positions

log = logging.getLogger(__name__)

__all__ = ["CONSUMER_PROTOCOL_TYPES", "LagScope", "Measurement", "measure_lag"]


@dataclass
class LagScope:
    """Which groups to measure: shell-style include/exclude patterns, or exact names."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    groups: tuple[str, ...] | None = None

    def selects(self, group: str) -> bool:
        if self.groups is not None and group not in self.groups:
            return False
        return group_selected(group, self.include, self.exclude)


@dataclass
class Measurement:
    observation: Observation
    seconds: float
    requests: dict[str, int] = field(default_factory=dict)
    # Every group in scope as listed (type and state), and why a group's lag was not read.
    groups: dict[str, GroupListing] = field(default_factory=dict)
    unmeasured: dict[str, str] = field(default_factory=dict)


# The waiter of one tick (kept under its old name for callers that import it).
_Tick = Waiter


def _parse_list_offsets(response, problems: list[str]) -> dict[tuple[str, int], int]:
    from kafka import errors as kerr

    out: dict[tuple[str, int], int] = {}
    for t in response.topics:
        for p in t.partitions:
            if p.error_code:
                problems.append(
                    f"offsets of {t.name}/{p.partition_index}: {kerr.for_code(p.error_code).__name__}"
                )
                continue
            out[(t.name, p.partition_index)] = p.offset
    return out


def observe_group(g: ConsumerGroup) -> GroupObservation:
    """A group as the lag evaluation takes it."""
    return GroupObservation(
        group=g.group_id,
        state=g.state,
        members=g.member_count,
        committed=g.positions,
        assigned=g.assigned,
        member_ids=tuple(sorted(m.member_id for m in g.members or ())),
        group_type=g.group_type,
    )


async def _groups(
    tick: Waiter, listed: dict[str, GroupListing], selected: list[str]
) -> dict[str, GroupObservation]:
    """Wave 2 and 3 (`gateway.groups`): the selected groups' descriptions and positions
    (committed offsets; a share group's share-partition start offsets). Groups whose
    positions could not be read are left out (the tick is partial; `tick.failed` says why)."""
    described = [g for g in selected if describable(listed.get(g))]
    desc, committed = await describe_and_fetch(tick, selected, described, types=group_types(listed))
    return {
        g: observe_group(combine(listed.get(g), desc.get(g), committed[g], g))
        for g in selected
        if g in committed
    }


def _share_positions(
    groups: dict[str, GroupObservation],
    share_lags: dict[str, dict[tuple[str, int], int]],
    offsets: dict[tuple[str, int], PartitionOffsets],
) -> dict[str, GroupObservation]:
    """Share groups placed where their coordinator's own lag puts them, now that the end
    offsets are known (`core.groups.share_position`): from the share-partition start offset
    alone, records acknowledged above it would count as lag."""
    out = dict(groups)
    for g, lags in share_lags.items():
        go = out.get(g)
        if go is None or not lags:
            continue
        out[g] = replace(
            go,
            committed={
                tp: share_position(start, lags.get(tp), offsets[tp].end if tp in offsets else None)
                for tp, start in go.committed.items()
            },
        )
    return out


def _wanted_partitions(
    groups: dict[str, GroupObservation], leaders: dict[tuple[str, int], int]
) -> set[tuple[str, int]]:
    """Every partition the groups hold or own, and the other partitions of those topics: a
    partition nobody committed on still has an end offset worth sampling."""
    wanted: set[tuple[str, int]] = set()
    for go in groups.values():
        wanted.update(go.committed)
        wanted.update(go.assigned)
    wanted = {tp for tp in wanted if tp in leaders}
    topics_used = {t for t, _ in wanted}
    return wanted | {tp for tp in leaders if tp[0] in topics_used}


async def _partition_offsets(
    tick: Waiter,
    wanted: set[tuple[str, int]],
    leaders: dict[tuple[str, int], int],
    thresholds: Callable[[str], LagThresholds],
    transactional: frozenset[str],
    now: float,
) -> dict[tuple[str, int], PartitionOffsets]:
    """Wave 4: per partition leader, one ListOffsets per kind (latest, last stable for
    transactional topics, earliest, and the SLA probe at `now - crit_seconds`)."""
    from kafka import IsolationLevel
    from kafka.admin import OffsetSpec

    now_ms = int(now * 1000)
    kinds: dict[str, tuple[Callable, int]] = {
        "latest": (lambda tp: OffsetSpec.LATEST, IsolationLevel.READ_UNCOMMITTED.value),
        "stable": (lambda tp: OffsetSpec.LATEST, IsolationLevel.READ_COMMITTED.value),
        "earliest": (lambda tp: OffsetSpec.EARLIEST, IsolationLevel.READ_UNCOMMITTED.value),
        "sla": (
            lambda tp: max(0, now_ms - int(thresholds(tp[0]).crit_seconds * 1000)),
            IsolationLevel.READ_UNCOMMITTED.value,
        ),
    }
    by_leader: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for tp in sorted(wanted):
        by_leader[leaders[tp]].append(tp)
    futures = []
    for leader, tps in by_leader.items():
        for kind, (spec, iso) in kinds.items():
            if kind == "latest":
                part = [tp for tp in tps if tp[0] not in transactional]
            elif kind == "stable":
                part = [tp for tp in tps if tp[0] in transactional]
            else:
                part = tps
            if part:
                req = tick.admin._list_partition_offsets_request(
                    {_tp(tp): spec(tp) for tp in part}, iso
                )
                futures.append((kind, leader, tick.send(req, leader)))
    found: dict[str, dict[tuple[str, int], int]] = defaultdict(dict)
    for kind, leader, f in futures:
        resp = await tick.wait(f, f"{kind} offsets from broker {leader}")
        if resp is not None:
            found["end" if kind in ("latest", "stable") else kind].update(
                _parse_list_offsets(resp, tick.problems)
            )
    return {
        tp: PartitionOffsets(
            start=found["earliest"].get(tp), end=found["end"][tp], sla_offset=found["sla"].get(tp)
        )
        for tp in wanted
        if found["end"].get(tp) is not None
    }


async def _record_times(
    tick: Waiter,
    groups: dict[str, GroupObservation],
    offsets: dict[TP, PartitionOffsets],
    leaders: dict[TP, int],
    transactional: frozenset[str],
    notes: list[str],
) -> dict[TP, PartitionOffsets]:
    """Wave 5: the timestamps of the records at the lagging groups' smallest position per
    partition, one Fetch per leader (`gateway/record_times.py`). Partitions nobody lags on
    are not read. What was not read keeps the estimate and is noted (not partial)."""
    positions = lagging_positions((g.committed for g in groups.values()), offsets)
    if not positions:
        return offsets
    times = await fetch_record_times(tick, positions, leaders, transactional, notes)
    if not times:
        return offsets
    out = dict(offsets)
    for tp, t in times.items():
        po = out[tp]
        out[tp] = PartitionOffsets(po.start, po.end, po.sla_offset, t)
    return out


def _leaders(meta: dict) -> tuple[dict[str, dict], dict[tuple[str, int], int]]:
    topics_ok = {t["name"]: t for t in meta["topics"] if not t.get("error_code")}
    leaders: dict[tuple[str, int], int] = {}
    for name, t in topics_ok.items():
        for p in t["partitions"]:
            if p.get("leader_id", -1) >= 0:
                leaders[(name, p["partition_index"])] = p["leader_id"]
    return topics_ok, leaders


async def _measure(
    tick: Waiter,
    scope: LagScope,
    thresholds: Callable[[str], LagThresholds],
    transactional: frozenset[str],
    now: float,
    exact_seconds: bool = True,
) -> Observation:
    admin, mgr = tick.admin, tick.mgr
    # Wave 1: topics and leaders; the groups of every broker.
    f_meta = mgr.call_soon(admin._get_cluster_metadata, None)
    sent = send_list_groups(tick)
    meta = await tick.wait(f_meta, "reading topic metadata")
    if meta is None:
        raise KafkaUnavailable("reading topic metadata: " + "; ".join(tick.problems))
    found, listing_complete = await listings(tick, sent)
    listed = {g: x for g, x in found.items() if x.is_consumer_group}
    in_scope = frozenset(g for g in listed if scope.selects(g))
    selected = sorted(in_scope)
    topics_ok, leaders = _leaders(meta)
    groups: dict[str, GroupObservation] = {}
    offsets: dict[tuple[str, int], PartitionOffsets] = {}
    if selected:
        groups = await _groups(tick, listed, selected)
        wanted = _wanted_partitions(groups, leaders)
        offsets = await _partition_offsets(tick, wanted, leaders, thresholds, transactional, now)
        groups = _share_positions(groups, tick.share_lags, offsets)
    time_notes: list[str] = []
    if exact_seconds and offsets:
        offsets = await _record_times(tick, groups, offsets, leaders, transactional, time_notes)
    missing_groups = [g for g in selected if g not in groups]
    notes = list(tick.problems) + time_notes
    if missing_groups:
        notes.insert(
            0,
            f"{len(missing_groups)} group(s) not measured this tick: {', '.join(missing_groups[:5])}",
        )
    partial = bool(tick.problems) or bool(missing_groups) or not listing_complete
    return Observation(
        cluster_id=meta.get("cluster_id") or "",
        at=now,
        offsets=offsets,
        topics=frozenset(topics_ok),
        groups=groups,
        listed_groups=in_scope if listing_complete else None,
        partial=partial,
        notes=tuple(notes),
    )


def _tp(tp: tuple[str, int]):
    from kafka import TopicPartition

    return TopicPartition(tp[0], tp[1])


def measure_lag(
    gateway: KafkaGateway,
    thresholds: Callable[[str], LagThresholds],
    transactional: Iterable[str] = (),
    scope: LagScope | None = None,
    budget_s: float = 20.0,
    now: float | None = None,
    exact_seconds: bool = True,
) -> Measurement:
    """One tick's measurement of every group in scope, within `budget_s` seconds.
    `exact_seconds`: read the timestamps of the records at the lagging groups' positions
    (one Fetch per leader more), else lag in seconds is only estimated from the samples.

    Raises KafkaUnavailable when no broker answers (bounded by the connection timeout);
    a tick that runs out of time returns what it measured, marked partial."""
    started = time.monotonic()
    before = dict(gateway.requests)
    admin = gateway.admin  # connects (bounded by the connect timeout) or raises KafkaUnavailable
    tick = _Tick(admin, budget_s)
    at = time.time() if now is None else now
    obs = gateway.call(
        "measuring consumer lag",
        lambda a: a._manager.run(
            _measure,
            tick,
            scope or LagScope(),
            thresholds,
            frozenset(transactional),
            at,
            exact_seconds,
        ),
    )
    after = gateway.requests
    requests = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}
    in_scope = {
        g: x
        for g, x in tick.listed.items()
        if x.is_consumer_group and (scope or LagScope()).selects(g)
    }
    unmeasured = {
        g: tick.failed.get(g, "not measured within the tick's time budget")
        for g in in_scope
        if g not in obs.groups
    }
    return Measurement(obs, time.monotonic() - started, requests, in_scope, unmeasured)
