"""Consumer lag: offsets over time -> lag in messages and seconds, statuses, incidents. Pure.

`evaluate(window, observation, thresholds, config)` is the whole judgement of one tick:
it takes the window kept between ticks (`Window`, see `lag_window`), what the gateway
measured, the per-topic thresholds and the evaluation settings, and returns the new window,
a status per (group, topic) and the incident events to notify. Nothing here reads a clock or
talks to Kafka: the observation carries its own time.

The rules are those of `shared/design/lag-evaluation.md`; where the note leaves room the
choice is written next to the code. The parts live next door and are re-exported here:
`lag_status` (statuses, severities, settings), `lag_measures` (the lag formula, lag in
seconds), `lag_model` (observations and results), `lag_window` (the window and its cursor),
`lag_incidents` (debouncing and incidents).
"""

from collections.abc import Callable

from ecap_ops.catalog.model import LagThresholds
from ecap_ops.core.lag_incidents import TopicTick, incident_event, judge_topic, r1
from ecap_ops.core.lag_measures import (
    PartitionLagCount,
    clock_skew_notes,
    describe_lag,
    format_seconds_short,
    lag_seconds,
    partition_lag,
    record_lag_seconds,
    timestamp_types,
)
from ecap_ops.core.lag_model import (
    TP,
    Evaluation,
    GroupObservation,
    GroupTopicStatus,
    IncidentEvent,
    Observation,
    PartitionLag,
    PartitionOffsets,
)
from ecap_ops.core.lag_status import (
    BEHIND_SLA,
    DATA_LOSS,
    EMPTY_STATES,
    HISTORY_STATUSES,
    IDLE,
    IMMEDIATE,
    LAGGING,
    NO_OFFSET,
    OK,
    ONE_LOOK_STATUSES,
    REBALANCING,
    REBALANCING_STATES,
    REWIND,
    SEVERITY,
    SEVERITY_RANK,
    STALLED,
    STATUS_ORDER,
    STOPPED,
    EvalConfig,
    PartitionTick,
    group_selected,
    one_look_note,
    partition_rule,
    severity_of,
    status_rank,
    worst,
    worst_first,
)
from ecap_ops.core.lag_window import (
    CURSOR_PREFIX,
    WINDOW_VERSION,
    CursorInvalid,
    GroupWindow,
    Incident,
    PartitionState,
    TopicWindow,
    Window,
    copy_window,
    decode_window,
    encode_window,
    member_hash,
    new_window,
    open_incidents,
)

__all__ = [
    "BEHIND_SLA",
    "CURSOR_PREFIX",
    "DATA_LOSS",
    "EMPTY_STATES",
    "HISTORY_STATUSES",
    "IDLE",
    "IMMEDIATE",
    "LAGGING",
    "NO_OFFSET",
    "OK",
    "ONE_LOOK_STATUSES",
    "REBALANCING",
    "REBALANCING_STATES",
    "REWIND",
    "SEVERITY",
    "SEVERITY_RANK",
    "STALLED",
    "STATUS_ORDER",
    "STOPPED",
    "TP",
    "WINDOW_VERSION",
    "CursorInvalid",
    "EvalConfig",
    "Evaluation",
    "GroupObservation",
    "GroupTopicStatus",
    "GroupWindow",
    "Incident",
    "IncidentEvent",
    "Observation",
    "PartitionLag",
    "PartitionOffsets",
    "PartitionState",
    "TopicWindow",
    "Window",
    "copy_window",
    "decode_window",
    "describe_lag",
    "encode_window",
    "evaluate",
    "format_seconds_short",
    "group_selected",
    "lag_seconds",
    "member_hash",
    "new_window",
    "one_look_note",
    "open_incidents",
    "partition_lag",
    "record_lag_seconds",
    "severity_of",
    "status_rank",
    "worst",
    "worst_first",
]

_RANK = {s: i for i, s in enumerate(STATUS_ORDER)}
_NO_SAMPLES: tuple = ()
_NO_OFFSETS: dict = {}
_NO_STATES: dict = {}
# Partition numbers as the window's keys, made once.
_N_KEYS = 1024
_KEYS = tuple(str(i) for i in range(_N_KEYS))


def _samples(window: Window, obs: Observation, cfg: EvalConfig) -> None:
    """Append this tick's end offsets to each partition's samples."""
    ends = window.ends
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

    __slots__ = (
        "assigned",
        "members",
        "empty",
        "stable",
        "rebalancing",
        "hold",
        "in_grace",
        "rb",
        "key",
    )

    def __init__(
        self, g: GroupObservation, gw: GroupWindow, cfg: EvalConfig, now: float, keys: dict
    ):
        self.assigned = g.assigned
        self.members = g.members or 0
        # Described, nobody in it, and the coordinator says so.
        self.empty = g.members is not None and self.members == 0 and g.state in EMPTY_STATES
        self.stable = g.state == "Stable"
        self.rebalancing = g.state in REBALANCING_STATES
        rbs, rb = gw.rebalancing_since, gw.rebalanced_at
        # STOP/STALL held during the grace period of a rebalance still going on.
        self.hold = self.rebalancing and rbs is not None and now - rbs < cfg.rebalance_grace_seconds
        # Small rewinds ignored for a while after the last rebalance.
        self.in_grace = rb is not None and now - rb < cfg.rebalance_grace_seconds
        self.rb = rb or 0.0
        # Everything of the group a partition's status reads, but which partitions it owns,
        # numbered in `keys` (the tick's): groups with the same facts get the same number.
        facts = (
            self.members,
            self.empty,
            self.stable,
            self.rebalancing,
            self.hold,
            self.in_grace,
            self.rb,
        )
        self.key = keys.setdefault(facts, len(keys))


def _partition_status(
    topic: str,
    p: int,
    committed: int | None,
    count: PartitionLagCount | None,
    po: PartitionOffsets,
    samples: list[list[float]],
    prev: PartitionState | None,
    owned: bool,
    grp: _GroupTick,
    topic_over_msgs: bool,
    th: LagThresholds,
    cfg: EvalConfig,
    now: float,
    now_r: float,
) -> tuple[PartitionLag, PartitionState | None]:
    """One partition's lag and raw status, and its new state (committed offset, unchanged
    since, highest seen)."""
    end = po.end
    if committed is None:
        status = (
            NO_OFFSET if owned and grp.members > 0 else (REBALANCING if grp.rebalancing else OK)
        )
        return PartitionLag(
            topic, p, None, po.start, end, 0, 0, None, "unknown", status, owned
        ), None
    position, lag_msgs, lost = count  # partition_lag(committed, po.start, end)
    if lag_msgs == 0:
        secs, kind = 0.0, "exact"
    elif po.times is not None:  # the record at the position was read: its own timestamp
        secs, kind = record_lag_seconds(po.times, samples, position, end, now)
    elif len(samples) < 2:
        secs, kind = None, "unknown"
    else:
        secs, kind = lag_seconds(samples, position, end, now)
    # The state carried to the next tick (now_r: `now` rounded, once per tick).
    if prev is None:
        since, peak = now, committed
        state = PartitionState(committed, now_r, peak)
    else:
        # The log itself went back (topic recreated): not a rewind.
        peak = committed if end < prev.peak else max(committed, prev.peak)
        if prev.committed != committed:
            since = now
            state = PartitionState(committed, now_r, peak)
        else:
            since = prev.since
            # Unchanged: the same state (its `since` was rounded when it was made).
            state = prev if peak == prev.peak else PartitionState(committed, since, peak)
    pt = PartitionTick(
        committed,
        position,
        lag_msgs,
        lost,
        secs,
        since,
        peak,
        owned,
        prev is not None and len(samples) >= 2,
        len(samples) >= 2 and samples[-1][1] > samples[0][1],
        samples[0][0] if samples else now,
    )
    status = partition_rule(pt, po, grp, topic_over_msgs, th, cfg, now)
    return PartitionLag(
        topic, p, committed, po.start, end, lag_msgs, lost, secs, kind, status, owned
    ), state


class _Part:
    """One partition of a group at this tick, before its status (which needs the topic's
    lag: `results`, by whether the topic is over its warning level in messages)."""

    __slots__ = ("p", "key", "committed", "po", "prev", "owned", "count", "lag_msgs", "results")

    def __init__(self, p, key, committed, po, prev, owned):
        self.p = p
        self.key = key
        self.committed = committed
        self.po = po
        self.prev = prev
        self.owned = owned
        self.count = None if committed is None else partition_lag(committed, po.start, po.end)
        self.lag_msgs = 0 if self.count is None else self.count.lag_msgs
        self.results: list = [None, None]


class _Tick:
    """One evaluation: the new window, what it concluded, and the events to notify."""

    def __init__(self, window: Window, obs: Observation, thresholds, cfg: EvalConfig):
        self.w = window
        self.obs = obs
        self.thresholds = thresholds
        self.cfg = cfg
        self.now = obs.at
        self.now_r = round(obs.at, 3)
        self.statuses: list[GroupTopicStatus] = []
        self.events: list[IncidentEvent] = []
        self.timestamp_types = timestamp_types(obs.offsets)
        self.memo: dict[str, dict[tuple, _Part]] = {}  # see group_topic
        self.summaries: dict[tuple, tuple] = {}
        self.group_keys: dict[tuple, int] = {}  # `_GroupTick.key`: its facts, numbered
        self.worst_cache: dict[int, tuple] = {}
        self.id_prefix = f"lag:{obs.cluster_id}:{window.epoch:.0f}-"
        self.offsets_by_topic: dict[str, dict[int, PartitionOffsets]] = {}
        for (topic, p), po in obs.offsets.items():
            by_p = self.offsets_by_topic.get(topic)
            if by_p is None:
                by_p = self.offsets_by_topic[topic] = {}
            by_p[p] = po

    def new_incident_id(self) -> str:
        self.w.seq += 1
        return f"{self.id_prefix}{self.w.seq}"

    def forget(self, group: str, topic: str, reason: str | None) -> None:
        gw = self.w.groups[group]
        tw = gw.topics.pop(topic, None)
        gw.partitions.pop(topic, None)
        if reason and tw and tw.incident:
            ctx = TopicTick(self.obs.cluster_id, group, topic, self.now)
            self.events.append(
                incident_event(
                    "close", tw.incident, ctx, tw.incident.status, reason=reason, notify=False
                )
            )

    def summarize(
        self, topic: str, parts: list[_Part], grp: _GroupTick, over_msgs: bool, th
    ) -> tuple:
        """A group's figures on a topic from its partitions: (partition lags, partition
        states for the window, lag in seconds and its kind, raw status rank, records lost)."""
        ends = self.w.ends.get(topic, {})
        plags = []
        states: dict[str, PartitionState] = {}
        for part in parts:
            res = part.results[over_msgs]
            if res is None:
                res = part.results[over_msgs] = _partition_status(
                    topic,
                    part.p,
                    part.committed,
                    part.count,
                    part.po,
                    ends.get(part.key, _NO_SAMPLES),
                    part.prev,
                    part.owned,
                    grp,
                    over_msgs,
                    th,
                    self.cfg,
                    self.now,
                    self.now_r,
                )
            plags.append(res[0])
            if res[1] is not None:
                states[part.key] = res[1]
        secs, kind = _topic_seconds(plags)
        raw_rank = min(_RANK[pl.status] for pl in plags)  # `parts` is not empty
        return tuple(plags), states, secs, kind, raw_rank, sum(pl.lost for pl in plags)

    def group(self, group: str, g: GroupObservation) -> None:
        gw = self.w.groups.get(group)
        if gw is None:
            gw = self.w.groups[group] = GroupWindow()
        now = self.now
        mh = member_hash(g.member_ids)
        if g.state in REBALANCING_STATES:
            gw.rebalancing_since = gw.rebalancing_since or round(now, 3)
            gw.rebalanced_at = round(now, 3)
        else:
            gw.rebalancing_since = None
            if gw.member_hash is not None and mh != gw.member_hash and g.members is not None:
                gw.rebalanced_at = round(now, 3)  # members changed between ticks: a rebalance
        if g.members is not None:
            gw.member_hash = mh
        # topic -> partition -> committed offset (None: assigned, nothing committed)
        by_topic: dict[str, dict[int, int | None]] = {t: {} for t in gw.topics}
        for (t, p), c in g.committed.items():
            parts = by_topic.get(t)
            if parts is None:
                parts = by_topic[t] = {}
            parts[p] = c
        for t, p in g.assigned:
            by_topic.setdefault(t, {}).setdefault(p, None)
        grp = _GroupTick(g, gw, self.cfg, now, self.group_keys)
        obs = self.obs
        measured_by_topic = self.offsets_by_topic
        for topic in sorted(by_topic):
            if obs.topics is not None and topic not in obs.topics:
                self.forget(group, topic, "topic deleted")
                continue
            measured = measured_by_topic.get(topic, _NO_OFFSETS)
            committed = by_topic[topic]
            parts = sorted(committed)
            if not measured.keys() >= committed.keys():
                parts = [p for p in parts if p in measured]
            if not parts:
                # Not measured this tick (partial), or the group no longer holds offsets on it.
                if obs.topics is not None and not obs.partial:
                    self.forget(group, topic, "group no longer consumes the topic")
                continue
            self.group_topic(group, g, gw, grp, topic, parts, committed, measured)

    def group_topic(
        self,
        group: str,
        g: GroupObservation,
        gw: GroupWindow,
        grp: _GroupTick,
        topic: str,
        parts: list[int],
        committed: dict[int, int | None],
        offsets: dict[int, PartitionOffsets],
    ) -> None:
        """The group's status on one topic from its partitions (`parts`, sorted; their
        committed offsets and this tick's offsets by partition), and its incident."""
        tw = gw.topics.get(topic)
        if tw is None:
            tw = gw.topics[topic] = TopicWindow()
        th = self.thresholds(topic)
        # A partition's lag and status are a pure function of what `pkey` holds (the
        # tick's offsets, samples, thresholds and clock are the same for every group), and a
        # topic's figures of its partitions': groups at the same offsets with the same
        # history share one evaluation, one `PartitionLag` per partition and one set of
        # states for the window, which nothing changes once built.
        pstates = gw.partitions.get(topic, _NO_STATES)
        assigned = grp.assigned
        gkey = grp.key
        memo = self.memo.get(topic)
        if memo is None:
            memo = self.memo[topic] = {}
        parts_seen: list[_Part] = []
        total = 0
        for p in parts:
            key = _KEYS[p] if 0 <= p < _N_KEYS else str(p)
            prev = pstates.get(key)
            c = committed[p]
            owned = (topic, p) in assigned if assigned else False
            pkey = (p, c, prev, owned, gkey)
            part = memo.get(pkey)
            if part is None:
                part = memo[pkey] = _Part(p, key, c, offsets[p], prev, owned)
            total += part.lag_msgs
            parts_seen.append(part)
        over_msgs = total > th.warn_msgs
        # The parts live as long as the tick; they also decide `over_msgs` (their lag's sum).
        tkey = (topic, *map(id, parts_seen))
        summary = self.summaries.get(tkey)
        if summary is None:
            summary = self.summaries[tkey] = self.summarize(topic, parts_seen, grp, over_msgs, th)
        plags, new_states, secs, kind, raw_rank, lost = summary
        gw.partitions[topic] = new_states
        ctx = TopicTick(
            self.obs.cluster_id,
            group,
            topic,
            self.now,
            total,
            r1(secs),
            kind,
            plags,
            self.cfg.worst_partitions,
            self.worst_cache,
        )
        raw, status, sev, inc_id = judge_topic(
            tw, STATUS_ORDER[raw_rank], th, self.cfg, ctx, self.new_incident_id, self.events
        )
        self.statuses.append(
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
                partitions=plags,
                incident_id=inc_id,
                timestamp_type=self.timestamp_types.get(topic),
            )
        )


def _topic_seconds(plags: list[PartitionLag]) -> tuple[float | None, str]:
    """A group's lag in seconds on a topic: its worst partition's (the first with the most
    seconds known); a lower bound when some lagging partition has no estimate yet."""
    top: PartitionLag | None = None
    unknown_lagging = False
    for pl in plags:
        if pl.lag_seconds is None:
            if pl.lag_msgs > 0:
                unknown_lagging = True
        elif top is None or pl.lag_seconds > (top.lag_seconds or 0.0):
            top = pl
    secs = top.lag_seconds if top else None
    kind = top.lag_seconds_kind if top else "unknown"
    if unknown_lagging:
        kind, secs = ("partial", secs) if secs else ("unknown", None)
    return secs, kind


def evaluate(
    window: Window | None,
    obs: Observation,
    thresholds: Callable[[str], LagThresholds],
    cfg: EvalConfig | None = None,
) -> Evaluation:
    """Judge one tick: (window, observation, thresholds, now=obs.at) -> new window, statuses, events."""
    cfg = cfg or EvalConfig()
    notes: list[str] = list(obs.notes)
    if window is not None and window.cluster not in ("", obs.cluster_id):
        notes.append(
            f"cluster id changed from {window.cluster} to {obs.cluster_id}: lag history reset"
        )
        window = None
    w = window.copy() if window is not None else new_window(obs.cluster_id, obs.at)
    w.cluster = obs.cluster_id
    notes.extend(clock_skew_notes(obs.offsets, obs.at))
    _samples(w, obs, cfg)
    tick = _Tick(w, obs, thresholds, cfg)
    for group in sorted(obs.groups):
        tick.group(group, obs.groups[group])
    # Groups in the window that no longer exist: close their incidents quietly.
    if obs.listed_groups is not None:
        for group in [g for g in w.groups if g not in obs.listed_groups]:
            for topic in list(w.groups[group].topics):
                tick.forget(group, topic, "group deleted")
            del w.groups[group]
    return Evaluation(w, tuple(tick.statuses), tuple(tick.events), tuple(notes))
