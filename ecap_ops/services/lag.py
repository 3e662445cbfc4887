"""One consumer-lag tick: measure (gateway), judge (core), and hand back what to notify.

Both front ends call `lag_tick`: the Dagster sensor keeps the window in its cursor, the
CLI's `lag --watch` keeps it in memory.
"""

import contextlib
import gc
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from ecap_ops.catalog.model import Catalog, LagThresholds
from ecap_ops.core.lag import (
    SEVERITY_RANK,
    CursorInvalid,
    EvalConfig,
    Evaluation,
    GroupTopicStatus,
    Window,
    decode_window,
    encode_window,
    evaluate,
    severity_of,
)
from ecap_ops.core.lag_measures import timestamp_types
from ecap_ops.gateway.client import KafkaGateway
from ecap_ops.gateway.lag import LagScope, Measurement, measure_lag

log = logging.getLogger(__name__)

DEFAULT_BUDGET_S = 20.0
DEFAULT_CURSOR_MAX_BYTES = 1_000_000


@dataclass
class LagTick:
    measurement: Measurement
    evaluation: Evaluation

    @property
    def statuses(self) -> tuple[GroupTopicStatus, ...]:
        return self.evaluation.statuses

    def to_dict(self) -> dict:
        obs = self.measurement.observation
        return {
            "cluster_id": obs.cluster_id,
            "at": obs.at,
            "partial": obs.partial,
            "notes": list(self.evaluation.notes),
            "seconds": round(self.measurement.seconds, 3),
            "requests": dict(self.measurement.requests),
            "statuses": [s.to_dict() for s in self.statuses],
            # How each topic's records are stamped (read from the records this tick):
            # CreateTime is the producer's clock, LogAppendTime the broker's.
            "timestamp_types": timestamp_types(obs.offsets),
            "events": [e.to_dict() for e in self.evaluation.events],
        }


def catalog_thresholds(catalog: Catalog):
    """thresholds(topic) for the evaluation: the catalog's, defaults outside it."""
    cache: dict[str, LagThresholds] = {}

    def thresholds(topic: str) -> LagThresholds:
        if topic not in cache:
            cache[topic] = catalog.lag_for(topic)
        return cache[topic]

    return thresholds


def lag_tick(
    gateway: KafkaGateway,
    catalog: Catalog,
    window: Window | None,
    config: EvalConfig | None = None,
    scope: LagScope | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    now: float | None = None,
    exact_seconds: bool = True,
) -> LagTick:
    """Measure every group in scope and judge it against the window of earlier ticks.
    `exact_seconds` False leaves out the read of record timestamps (lag in seconds is then
    only estimated from the window's samples): for comparing the cost."""
    thresholds = catalog_thresholds(catalog)
    transactional = [t.name for t in catalog.topics if t.transactional]
    with gc_paused():
        m = measure_lag(
            gateway,
            thresholds,
            transactional,
            scope,
            budget_s,
            now if now is not None else time.time(),
            exact_seconds,
        )
        return LagTick(m, evaluate(window, m.observation, thresholds, config))


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one tick.

    At 1,000 groups a tick allocates a few hundred thousand small objects that hold no
    cycles (parsed offsets, statuses, window entries); the collector would walk all of them
    again and again for nothing, about 40% of the evaluation. Reference counting still frees
    them; the collector resumes after the tick (unless someone else had paused it)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def one_look(statuses, catalog: Catalog) -> tuple[GroupTopicStatus, ...]:
    """The statuses of a single observation, for a front end that looks once (`ecap-ops lag`
    without --watch): each group's status on this tick alone (`raw_status`), with its
    severity.

    The evaluation holds most statuses for a few ticks before they count (debouncing), so
    after one tick a group with no members and lag over its level would read OK. One look
    shows what one look can see: data loss, the SLA probe, a group with no members
    (STOPPED), partitions nobody committed on, a rebalance. Statuses that need history
    (STALLED, REWIND, LAGGING, IDLE, STOPPED of a group with members) are the sensor's."""
    thresholds = catalog_thresholds(catalog)
    out = []
    for s in statuses:
        sev = severity_of(s.raw_status, thresholds(s.topic))
        if s.raw_status != s.status or sev != s.severity:
            s = replace(s, status=s.raw_status, severity=sev)
        out.append(s)
    return tuple(out)


def is_critical(statuses) -> bool:
    return any(SEVERITY_RANK.get(s.severity, 0) >= SEVERITY_RANK["critical"] for s in statuses)


def read_cursor(cursor: str | None) -> tuple[Window | None, str | None]:
    """The window in a sensor cursor, or (None, why) when it cannot be read: the sensor then
    starts afresh instead of failing every tick."""
    try:
        with gc_paused():  # tens of thousands of small records, no cycles
            return decode_window(cursor), None
    except CursorInvalid as exc:
        return None, str(exc)


def write_cursor(
    window: Window, max_bytes: int = DEFAULT_CURSOR_MAX_BYTES
) -> tuple[str, list[str]]:
    with gc_paused():
        return encode_window(window, max_bytes)
