"""Measuring consumer lag in one tick: groups, committed offsets, end/start offsets.

A tick sends a fixed number of requests whatever the number of groups: one Metadata, one
ListGroups per broker, one batched FindCoordinator, then per group coordinator one
OffsetFetch (v8: all of its groups in one request) and one DescribeGroups, and per
partition leader one ListOffsets per kind (latest, last stable for transactional topics,
earliest, and the SLA probe at `now - crit_seconds`). Requests of one wave go to all
brokers at once on the client's network thread. Every wait is bounded by the tick's time
budget; what did not answer in time is left out and the observation says it is partial.
"""

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ecap_ops.catalog.model import LagThresholds
from ecap_ops.core.lag import GroupObservation, Observation, PartitionOffsets, group_selected
from ecap_ops.errors import KafkaUnavailable
from ecap_ops.gateway.client import KafkaGateway

log = logging.getLogger(__name__)

# Kafka 4 share and streams groups hold no consumer offsets we can judge this way.
CONSUMER_PROTOCOL_TYPES = ("consumer", "")


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


class _Tick:
    """The state of one measurement on the admin client's network thread."""

    def __init__(self, admin, budget_s: float):
        self.admin = admin
        self.mgr = admin._manager
        self.deadline = time.monotonic() + budget_s
        self.problems: list[str] = []

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


def _offset_fetch_request(group_ids: list[str]):
    from kafka.protocol.consumer import OffsetFetchRequest

    group = OffsetFetchRequest.OffsetFetchRequestGroup
    return OffsetFetchRequest(
        groups=[group(group_id=g, topics=None) for g in group_ids], min_version=8, max_version=8
    )


def _parse_offset_fetch(response, problems: list[str]) -> dict[str, dict[tuple[str, int], int]]:
    from kafka import errors as kerr

    out: dict[str, dict[tuple[str, int], int]] = {}
    for g in response.groups:
        if g.error_code:
            problems.append(
                f"committed offsets of group {g.group_id}: {kerr.for_code(g.error_code).__name__}"
            )
            continue
        offs: dict[tuple[str, int], int] = {}
        for t in g.topics:
            for p in t.partitions:
                if p.error_code == 0 and p.committed_offset is not None and p.committed_offset >= 0:
                    offs[(t.name, p.partition_index)] = p.committed_offset
        out[g.group_id] = offs
    return out


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


def _group_from_description(
    group_id: str, d: dict, committed: dict[tuple[str, int], int]
) -> GroupObservation:
    if d.get("error"):
        # Kafka 4 groups on the new consumer protocol are not described by DescribeGroups:
        # judge them on their offsets alone, with members unknown.
        return GroupObservation(group_id, "Unknown", None, committed)
    assigned: set[tuple[str, int]] = set()
    member_ids = []
    for m in d.get("members") or []:
        member_ids.append(
            m.get("member_id") if isinstance(m, dict) else getattr(m, "member_id", "")
        )
        a = (
            m.get("member_assignment")
            if isinstance(m, dict)
            else getattr(m, "member_assignment", None)
        )
        parts = getattr(a, "assigned_partitions", None)
        if parts is None and isinstance(a, dict):
            parts = [
                (x.get("topic"), x.get("partitions")) for x in a.get("assigned_partitions") or []
            ]
        for topic, ps in parts or []:
            for p in ps:
                assigned.add((topic, p))
    return GroupObservation(
        group=group_id,
        state=d.get("group_state") or "Unknown",
        members=len(member_ids),
        committed=committed,
        assigned=frozenset(assigned),
        member_ids=tuple(sorted(member_ids)),
    )


async def _measure(
    tick: _Tick,
    scope: LagScope,
    thresholds: Callable[[str], LagThresholds],
    transactional: frozenset[str],
    now: float,
) -> Observation:
    from kafka import IsolationLevel
    from kafka.admin import OffsetSpec

    admin, mgr = tick.admin, tick.mgr
    brokers = [b.node_id for b in mgr.cluster.brokers()]
    # Wave 1: topics and leaders; the groups of every broker.
    f_meta = mgr.call_soon(admin._get_cluster_metadata, None)
    f_lists = {b: tick.send(admin._list_groups_request(), b) for b in brokers}
    meta = await tick.wait(f_meta, "reading topic metadata")
    if meta is None:
        raise KafkaUnavailable("reading topic metadata: " + "; ".join(tick.problems))
    listed: set[str] = set()
    listing_complete = True
    for b, f in f_lists.items():
        resp = await tick.wait(f, f"listing the groups of broker {b}")
        if resp is None or resp.error_code:
            listing_complete = False
            continue
        for g in resp.groups:
            if (g.protocol_type or "") in CONSUMER_PROTOCOL_TYPES:
                listed.add(g.group_id)
    in_scope = frozenset(g for g in listed if scope.selects(g))
    selected = sorted(in_scope)
    cluster_id = meta.get("cluster_id") or ""
    topics_ok = {t["name"]: t for t in meta["topics"] if not t.get("error_code")}
    leaders: dict[tuple[str, int], int] = {}
    for name, t in topics_ok.items():
        for p in t["partitions"]:
            if p.get("leader_id", -1) >= 0:
                leaders[(name, p["partition_index"])] = p["leader_id"]
    groups: dict[str, GroupObservation] = {}
    offsets: dict[tuple[str, int], PartitionOffsets] = {}
    if selected:
        # Wave 2: one batched FindCoordinator.
        coords = await tick.wait(
            mgr.call_soon(admin._find_coordinator_ids, selected), "finding group coordinators"
        )
        by_coord: dict[int, list[str]] = defaultdict(list)
        for g, node in (coords or {}).items():
            if node is not None and node >= 0:
                by_coord[node].append(g)
        # Wave 3: per coordinator, all its groups' offsets and descriptions at once.
        f_fetch = {n: tick.send(_offset_fetch_request(gs), n) for n, gs in by_coord.items()}
        f_desc = {n: tick.send(admin._describe_groups_request(gs), n) for n, gs in by_coord.items()}
        committed: dict[str, dict[tuple[str, int], int]] = {}
        for n, f in f_fetch.items():
            resp = await tick.wait(f, f"committed offsets from coordinator {n}")
            if resp is not None:
                committed.update(_parse_offset_fetch(resp, tick.problems))
        described: dict[str, dict] = {}
        for n, f in f_desc.items():
            resp = await tick.wait(f, f"describing groups on coordinator {n}")
            if resp is not None:
                try:
                    described.update(admin._describe_groups_process_response(resp))
                except Exception as exc:  # an undecodable member must not lose the tick
                    tick.problems.append(
                        f"describing groups on coordinator {n}: {type(exc).__name__}: {exc}"
                    )
        for g in selected:
            if g in committed and g in described:
                groups[g] = _group_from_description(g, described[g], committed[g])
            elif g in committed:
                groups[g] = GroupObservation(g, "Unknown", None, committed[g])
        # Wave 4: offsets of every partition the groups hold or own, per leader and kind.
        wanted: set[tuple[str, int]] = set()
        for go in groups.values():
            wanted.update(go.committed)
            wanted.update(go.assigned)
        wanted = {tp for tp in wanted if tp in leaders}
        # Add the other partitions of those topics: a partition nobody committed on still
        # has an end offset worth sampling (it may be consumed later).
        topics_used = {t for t, _ in wanted}
        wanted |= {tp for tp in leaders if tp[0] in topics_used}
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
                    req = admin._list_partition_offsets_request(
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
        for tp in wanted:
            end = found["end"].get(tp)
            if end is None:
                continue
            offsets[tp] = PartitionOffsets(
                start=found["earliest"].get(tp), end=end, sla_offset=found["sla"].get(tp)
            )
    missing_groups = [g for g in selected if g not in groups]
    notes = list(tick.problems)
    if missing_groups:
        notes.insert(
            0,
            f"{len(missing_groups)} group(s) not measured this tick: {', '.join(missing_groups[:5])}",
        )
    partial = bool(tick.problems) or bool(missing_groups) or not listing_complete
    return Observation(
        cluster_id=cluster_id,
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
) -> Measurement:
    """One tick's measurement of every group in scope, within `budget_s` seconds.

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
            _measure, tick, scope or LagScope(), thresholds, frozenset(transactional), at
        ),
    )
    after = gateway.requests
    requests = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}
    return Measurement(obs, time.monotonic() - started, requests)
