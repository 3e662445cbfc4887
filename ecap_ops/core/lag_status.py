"""Consumer-lag statuses, their order and severity, and the evaluation settings. Pure.

The statuses are those of `shared/design/lag-evaluation.md`, worst first. Some need
history (several ticks of the same group): a single look at the cluster, as `ecap-ops lag`
takes without `--watch`, can only see the others; `ONE_LOOK_STATUSES` and
`HISTORY_STATUSES` say which is which so every front end can say so.
"""

import fnmatch
import functools
from collections.abc import Iterable
from dataclasses import dataclass

from ecap_ops.catalog.model import LagThresholds
from ecap_ops.core.incidents import IncidentRules

DATA_LOSS = "DATA_LOSS"
STOPPED = "STOPPED"
STALLED = "STALLED"
BEHIND_SLA = "BEHIND_SLA"
REWIND = "REWIND"
LAGGING = "LAGGING"
NO_OFFSET = "NO_OFFSET"
REBALANCING = "REBALANCING"
OK = "OK"
IDLE = "IDLE"

# Worst first: a group's status on a topic is its worst partition's.
STATUS_ORDER = (
    DATA_LOSS,
    STOPPED,
    STALLED,
    BEHIND_SLA,
    REWIND,
    LAGGING,
    NO_OFFSET,
    REBALANCING,
    OK,
    IDLE,
)
SEVERITY = {
    DATA_LOSS: "critical",
    STOPPED: "critical",
    STALLED: "critical",
    BEHIND_SLA: "critical",
    REWIND: "warning",
    LAGGING: "warning",
    NO_OFFSET: "info",
    REBALANCING: "info",
    OK: "ok",
    IDLE: "ok",
}
SEVERITY_RANK = {"ok": 0, "info": 1, "warning": 2, "critical": 3}
# Statuses that need no history and are exact: they count at once, without debouncing.
IMMEDIATE = (DATA_LOSS, BEHIND_SLA)
# What one look can see: data loss, the SLA probe, a group with no members (STOPPED by
# group state), a partition nobody committed on, a rebalance. The rest need earlier ticks:
# a stall or a stop of a group with members (no commit for a while), a rewind (the
# committed offset went back), lagging (above the level for several ticks), idle (nothing
# produced for a while), and every debounced status (held for several ticks).
ONE_LOOK_STATUSES = (DATA_LOSS, STOPPED, BEHIND_SLA, NO_OFFSET, REBALANCING, OK)
HISTORY_STATUSES = (STOPPED, STALLED, REWIND, LAGGING, IDLE)
REBALANCING_STATES = ("PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling")
EMPTY_STATES = ("Empty", "Dead")

_RANK = {s: i for i, s in enumerate(STATUS_ORDER)}


def status_rank(status: str) -> int:
    """0 for the worst status, growing towards OK/IDLE."""
    return _RANK[status]


def worst(statuses: Iterable[str]) -> str:
    return min(statuses, key=_RANK.__getitem__, default=OK)


def worst_first(p) -> tuple:
    """Sort key of partitions (`PartitionLag`), worst first: status, then lag in messages,
    then in seconds."""
    return (_RANK[p.status], -p.lag_msgs, -(p.lag_seconds or 0))


def severity_of(status: str, thresholds: LagThresholds | None = None) -> str:
    """The severity of a status; on `critical_at_once` topics lagging is critical at once."""
    if status == LAGGING and thresholds is not None and thresholds.critical_at_once:
        return "critical"
    return SEVERITY[status]


def least_severe(recent: list[str]) -> str:
    """The least severe of some ticks' statuses (the last of equals): what debouncing keeps."""
    best = recent[-1]
    for s in reversed(recent):
        if SEVERITY_RANK[SEVERITY[s]] < SEVERITY_RANK[SEVERITY[best]]:
            best = s
    return best


def one_look_note() -> str:
    """What a status from a single observation can and cannot say, for people reading it."""
    return (
        "statuses come from one observation: "
        + ", ".join(HISTORY_STATUSES)
        + " (other than a group with no members) need history and are not shown; "
        "the consumer_lag_sensor judges over time, or use --watch"
    )


def group_selected(group: str, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> bool:
    """Whether a group is in scope: matches an include pattern (all when none) and no
    exclude pattern. Patterns are shell-style (`orders-*`)."""
    include = list(include)
    if include and not any(fnmatch.fnmatchcase(group, p) for p in include):
        return False
    return not any(fnmatch.fnmatchcase(group, p) for p in exclude)


@dataclass(frozen=True)
class EvalConfig:
    """How the evaluation judges and notifies; the defaults follow the design note."""

    window_size: int = 20  # (time, end offset) samples kept per partition
    for_ticks: int = 3  # LAGGING needs this many ticks above the warning level
    debounce_ticks: int = 2  # STOPPED/STALLED/REWIND must hold this many ticks to count
    clean_ticks: int = 2  # an incident resolves after this many clean ticks
    rebalance_grace_seconds: float = 60.0  # STALL/STOP held and small rewinds ignored
    rewind_grace_msgs: int = 1000  # "small" rewind during the rebalance grace
    remind_warning_seconds: float = 4 * 3600.0
    remind_critical_seconds: float = 30 * 60.0
    worst_partitions: int = 3  # partitions named in a notification

    def __post_init__(self) -> None:
        problems = []
        for name in (
            "window_size",
            "for_ticks",
            "debounce_ticks",
            "clean_ticks",
            "worst_partitions",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.window_size < 2:
            problems.append(
                f"window_size must be >= 2 to estimate lag in seconds, got {self.window_size}"
            )
        for name in (
            "rebalance_grace_seconds",
            "remind_warning_seconds",
            "remind_critical_seconds",
        ):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.rewind_grace_msgs < 0:
            problems.append(f"rewind_grace_msgs must be >= 0, got {self.rewind_grace_msgs}")
        if problems:
            raise ValueError("lag evaluation settings are invalid: " + "; ".join(problems))

    def remind_after(self, severity: str) -> float:
        return (
            self.remind_critical_seconds if severity == "critical" else self.remind_warning_seconds
        )

    @functools.cached_property
    def incident_rules(self) -> IncidentRules:
        """The incident model's rules for these settings, made once (every group and topic of
        a tick asks)."""
        return IncidentRules(
            self.remind_warning_seconds, self.remind_critical_seconds, self.clean_ticks
        )


@dataclass(slots=True)
class PartitionTick:
    """One partition of one group at this tick, as the status rules see it."""

    committed: int
    position: int
    lag_msgs: int
    lost: int
    secs: float | None
    since: float  # committed offset unchanged since
    peak: int  # highest committed offset seen
    owned: bool
    history: bool  # an earlier tick and two samples
    end_moved: bool  # the end offset moved during the window
    window_start: float  # time of the oldest sample


def partition_rule(
    pt: PartitionTick,
    po,
    grp,
    topic_over_msgs: bool,
    th: LagThresholds,
    cfg: EvalConfig,
    now: float,
) -> str:
    """A partition's raw status (LAGGING is decided per topic, over ticks). `po`: its
    `PartitionOffsets`; `grp`: what the group's partitions share this tick (members, state,
    rebalance clocks: `lag._GroupTick`)."""
    over = pt.lag_msgs > 0 and (
        topic_over_msgs or (pt.secs is not None and pt.secs > th.warn_seconds)
    )
    sla = False
    if po.sla_offset is not None and pt.lag_msgs > 0:
        sla = pt.position < po.sla_offset or po.sla_offset < 0
    if pt.lost > 0:
        return DATA_LOSS
    if over and grp.empty:
        return STOPPED
    if (
        over
        and pt.history
        and grp.members > 0
        and not pt.owned
        and not grp.hold
        and pt.since <= pt.window_start
        and pt.end_moved
    ):
        # Members, but nobody owns this partition and it has not moved for the whole window.
        return STOPPED
    if (
        over
        and pt.owned
        and grp.stable
        and pt.history
        and now - max(pt.since, grp.rb) >= th.stall_after_seconds
    ):
        return STALLED
    if sla:
        return BEHIND_SLA
    if pt.peak > pt.committed and not (
        grp.in_grace and pt.peak - pt.committed <= cfg.rewind_grace_msgs
    ):
        return REWIND
    if grp.rebalancing:
        return REBALANCING
    if pt.lag_msgs == 0 and not pt.end_moved and pt.history:
        return IDLE
    return OK
