"""What one consumer-lag tick measured (`Observation`) and concluded (statuses, incident
events). Plain typed data, no logic beyond presenting itself. Pure."""

import bisect
from dataclasses import dataclass, field

from ecap_ops.core.lag_status import worst_first
from ecap_ops.core.lag_window import Window

# -- what one tick measured -------------------------------------------------------------

TP = tuple[str, int]


CREATE_TIME = "CreateTime"
LOG_APPEND_TIME = "LogAppendTime"


@dataclass(frozen=True, slots=True)
class RecordTimes:
    """The timestamps of the records read at one partition from `fetched_from` on
    (`gateway/record_times.py`): what the first record at or after an offset carries.

    Entry i covers the offsets in (upto[i-1], upto[i]] (the first entry from
    `fetched_from`): the first record at or after any of them carries `timestamps[i]`
    (milliseconds since the epoch), exactly when `exact[i]`; otherwise that is an upper
    bound (a record inside a batch only partly read: it is no newer than the batch's newest
    record). Offsets missing from the log (compacted away, aborted transactions, control
    records) fall to the next record present, as a consumer reading from there would.
    `timestamp_type`: CreateTime (the producer's clock) or LogAppendTime (the broker's)."""

    fetched_from: int
    upto: tuple[int, ...]
    timestamps: tuple[int, ...]
    exact: tuple[bool, ...]
    timestamp_type: str

    def at(self, position: int) -> tuple[int, bool] | None:
        """(timestamp ms, exact) of the first record at or after `position`, or None when
        what was read does not reach it."""
        upto = self.upto
        if position < self.fetched_from or not upto or position > upto[-1]:
            return None
        i = bisect.bisect_left(upto, position)
        return self.timestamps[i], self.exact[i]


@dataclass(frozen=True)
class PartitionOffsets:
    """Offsets of one partition: log start, end (last stable offset on transactional
    topics), and the first offset at or after `now - crit_seconds` (-1: no record that
    new; None: not measured). `times`: the timestamps of the records read at the lagging
    groups' smallest position (None when not read: no lag, or the read failed)."""

    start: int | None
    end: int
    sla_offset: int | None = None
    times: RecordTimes | None = None


@dataclass(frozen=True)
class GroupObservation:
    group: str
    state: str  # Stable, Empty, PreparingRebalance, CompletingRebalance, Dead, Unknown
    members: int | None  # None when the group could not be described
    committed: dict[TP, int] = field(default_factory=dict)
    assigned: frozenset[TP] = frozenset()  # partitions that some member owns
    member_ids: tuple[str, ...] = ()
    group_type: str = "classic"  # classic, consumer (KIP-848), share, streams


@dataclass(frozen=True)
class Observation:
    """Everything one tick measured. `listed_groups` is None when the group listing did not
    complete: then no group is taken for deleted. Same for `topics`."""

    cluster_id: str
    at: float  # seconds since the epoch
    offsets: dict[TP, PartitionOffsets]
    topics: frozenset[str] | None
    groups: dict[str, GroupObservation]
    listed_groups: frozenset[str] | None
    partial: bool = False
    notes: tuple[str, ...] = ()


# -- what one tick concluded ------------------------------------------------------------


# Not frozen: a 1,000-group tick builds tens of thousands, and a frozen dataclass's
# __init__ costs four times as much. Nothing changes one after it is built.
@dataclass(slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    start: int | None
    end: int
    lag_msgs: int
    lost: int
    lag_seconds: float | None
    # exact (the record's own timestamp, read), at_least (a lower bound), interpolated or
    # extrapolated (estimates from the end-offset samples), unknown
    lag_seconds_kind: str
    status: str
    owned: bool

    def to_dict(self) -> dict:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "start": self.start,
            "end": self.end,
            "lag_msgs": self.lag_msgs,
            "lost": self.lost,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 1),
            "lag_seconds_kind": self.lag_seconds_kind,
            "status": self.status,
        }


# Not frozen, for the reason `PartitionLag` is not: a 10,000-group tick builds 50,000.
@dataclass(slots=True)
class GroupTopicStatus:
    group: str
    topic: str
    status: str  # debounced: what incidents act on
    raw_status: str  # this tick alone
    severity: str
    lag_msgs: int
    lag_seconds: float | None  # the worst partition's; None when unknown
    lag_seconds_kind: str
    lost: int
    state: str
    members: int | None
    partitions: tuple[PartitionLag, ...]
    incident_id: str | None = None
    # CreateTime or LogAppendTime, as read from the topic's records (None: none read).
    timestamp_type: str | None = None

    def worst_partitions(self, n: int = 3) -> list[PartitionLag]:
        if n == 1:  # min keeps the first of equals, as the stable sort does
            return [min(self.partitions, key=worst_first)] if self.partitions else []
        return sorted(self.partitions, key=worst_first)[:n]

    def to_dict(self) -> dict:
        return {
            "group": self.group,
            "topic": self.topic,
            "status": self.status,
            "raw_status": self.raw_status,
            "severity": self.severity,
            "lag_msgs": self.lag_msgs,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 1),
            "lag_seconds_kind": self.lag_seconds_kind,
            "lost": self.lost,
            "state": self.state,
            "members": self.members,
            "incident_id": self.incident_id,
            "timestamp_type": self.timestamp_type,
            "partitions": [p.to_dict() for p in self.partitions],
        }


# Not frozen either: a tick can open tens of thousands of incidents at once.
@dataclass(slots=True)
class IncidentEvent:
    """One change of an incident. `notify` is False for quiet closes (deleted group/topic)."""

    kind: str  # open, escalate, remind, resolve, close
    incident_id: str
    cluster_id: str
    group: str
    topic: str
    status: str
    severity: str
    at: float
    since: float  # when the incident opened
    lag_msgs: int
    lag_seconds: float | None
    worst: tuple[dict, ...] = ()
    reminder: int = 0
    peak_msgs: int = 0
    peak_seconds: float | None = None
    reason: str = ""
    notify: bool = True
    lag_seconds_kind: str = "unknown"  # how `lag_seconds` is known (see `PartitionLag`)

    @property
    def event_name(self) -> str:
        return f"remind-{self.reminder}" if self.kind == "remind" else self.kind

    @property
    def run_key(self) -> str:
        """Unique per incident and event: a retried tick can never notify twice."""
        return f"{self.incident_id}:{self.event_name}"

    @property
    def duration_seconds(self) -> float:
        return max(0.0, self.at - self.since)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "event": self.event_name,
            "incident_id": self.incident_id,
            "cluster_id": self.cluster_id,
            "group": self.group,
            "topic": self.topic,
            "status": self.status,
            "severity": self.severity,
            "at": self.at,
            "since": self.since,
            "lag_msgs": self.lag_msgs,
            "lag_seconds": self.lag_seconds,
            "lag_seconds_kind": self.lag_seconds_kind,
            "worst": [dict(w) for w in self.worst],
            "reminder": self.reminder,
            "peak_msgs": self.peak_msgs,
            "peak_seconds": self.peak_seconds,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Evaluation:
    window: Window
    statuses: tuple[GroupTopicStatus, ...]
    events: tuple[IncidentEvent, ...]
    notes: tuple[str, ...] = ()

    @property
    def notifications(self) -> tuple[IncidentEvent, ...]:
        return tuple(e for e in self.events if e.notify)
