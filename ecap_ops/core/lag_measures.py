"""How much a consumer group lags: in messages (the one formula every command and the sensor
use) and in seconds, and how to write it. Pure.

Lag in seconds is the age of the oldest unconsumed record: `now` minus the timestamp of the
first record at or after the group's position, read from the log by the lag tick
(`gateway/record_times.py`; kind `exact`). When that record could not be read (no fetch
this tick, a compacted or aborted range beyond what was read, a fetch error, another
group's position read on the same partition), the age is estimated from the partition's own
(time, end offset) samples kept between ticks (kinds `interpolated`, `extrapolated`,
`at_least`), and marked as an estimate wherever it is shown.
"""

import bisect
from typing import NamedTuple


class PartitionLagCount(NamedTuple):
    """A partition's lag in messages at one moment.

    `position`: where the group will read next (its committed offset, or the log start when
    retention deleted records it never read); `lag_msgs`: records between there and the end;
    `lost`: records deleted before the group read them."""

    position: int
    lag_msgs: int
    lost: int


def partition_lag(committed: int, start: int | None, end: int) -> PartitionLagCount:
    """The lag of one partition: `lag = max(0, end - max(committed, start))`,
    `lost = max(0, start - committed)`. `start` None: the log start is not known (taken as 0,
    nothing counted as lost). `end` is the end offset (the last stable offset on
    transactional topics). The only place the lag formula is written."""
    s = start if start is not None else 0
    position = committed if committed >= s else s
    lag_msgs = end - position if end > position else 0
    lost = s - committed if start is not None and s > committed else 0
    return PartitionLagCount(position, lag_msgs, lost)


def _end_of(sample: list[float]) -> float:
    return sample[1]


def lag_seconds(
    samples: list[list[float]], position: int, end: int, now: float
) -> tuple[float | None, str]:
    """Age of the record at `position` (the oldest unconsumed), from the partition's own
    (time, end offset) samples, oldest first.

    0 when nothing is unconsumed; unknown (None) with fewer than two samples; interpolated
    when the record was written inside the window; extrapolated from the production rate
    when it is older than the window, or a lower bound ("at_least") when nothing was
    produced during the window."""
    if end - position <= 0:
        return 0.0, "exact"
    if len(samples) < 2:
        return None, "unknown"
    # Record `position` was written when the end offset moved past it (end >= position + 1).
    target = position + 1
    j = bisect.bisect_left(samples, target, key=_end_of)  # end offsets never decrease
    if j == len(samples):  # the end in the samples never reached it: only if samples are stale
        return None, "unknown"
    if j == 0:
        t0, e0 = samples[0]
        tn, en = samples[-1]
        rate = (en - e0) / (tn - t0) if tn > t0 else 0.0
        if rate > 0:
            return max(0.0, now - (t0 - (e0 - target) / rate)), "extrapolated"
        return max(0.0, now - t0), "at_least"
    t1, e1 = samples[j - 1]
    t2, e2 = samples[j]
    written = t1 + (target - e1) / (e2 - e1) * (t2 - t1)
    return max(0.0, now - written), "interpolated"


def record_lag_seconds(
    times, samples: list[list[float]], position: int, end: int, now: float
) -> tuple[float | None, str]:
    """Lag in seconds of a partition whose records were read (`times`: its `RecordTimes`):
    `now` minus the timestamp of the first record at or after `position`, kind `exact`.

    A timestamp in the future (a producer's clock ahead, with CreateTime) counts as 0 (the
    evaluation notes it: `clock_skew_notes`). When the record is only known to be no newer
    than its batch's newest record, that gives a lower bound (`at_least`), unless the
    samples' estimate says more. When what was read does not reach `position`, the
    estimate from the samples (`lag_seconds`)."""
    if end - position <= 0:
        return 0.0, "exact"
    hit = times.at(position)
    if hit is None:
        if len(samples) < 2:
            return None, "unknown"
        return lag_seconds(samples, position, end, now)
    ts, exact = hit
    age = now - ts / 1000.0
    if age < 0.0:
        age = 0.0
    if exact:
        return age, "exact"
    if len(samples) >= 2:
        est, kind = lag_seconds(samples, position, end, now)
        if est is not None and est >= age:
            return est, kind
    return age, "at_least"


# A timestamp this far ahead of the measurement is a clock ahead, not the network's delay.
SKEW_TOLERANCE_MS = 1000


def clock_skew_notes(offsets, now: float) -> list[str]:
    """Notes for the topics whose records read this tick carry timestamps in the future
    (`offsets`: `PartitionOffsets` by (topic, partition)): their lag in seconds reads 0."""
    limit = now * 1000.0 + SKEW_TOLERANCE_MS
    ahead: dict[str, tuple[float, str]] = {}
    for (topic, _p), po in offsets.items():
        times = po.times
        if times is None or not times.timestamps:
            continue
        newest = max(times.timestamps)
        if newest > limit:
            secs = (newest - now * 1000.0) / 1000.0
            if secs > ahead.get(topic, (0.0, ""))[0]:
                ahead[topic] = (secs, times.timestamp_type)
    return [
        f"topic {topic}: records carry timestamps up to {format_seconds_short(secs)} in the "
        + (
            "future (CreateTime, set by the producer: its clock is ahead)"
            if ttype == "CreateTime"
            else "future (LogAppendTime: the broker's clock is ahead of this machine's)"
        )
        + "; their lag in seconds reads 0"
        for topic, (secs, ttype) in sorted(ahead.items())
    ]


def timestamp_types(offsets) -> dict[str, str]:
    """Each topic's timestamp type as read from its records this tick (CreateTime,
    LogAppendTime, or `mixed` when partitions differ); topics with no record read are left out."""
    out: dict[str, str] = {}
    for (topic, _p), po in offsets.items():
        times = po.times
        if times is None:
            continue
        seen = out.get(topic)
        if seen is None:
            out[topic] = times.timestamp_type
        elif seen != times.timestamp_type:
            out[topic] = "mixed"
    return out


def format_seconds_short(s: float | None) -> str:
    """12.3s, 3m05s, 2h04m, 3d04h; '-' for unknown."""
    if s is None:
        return "-"
    s = max(0.0, s)
    if s < 60:
        return f"{s:.1f}s" if s < 10 else f"{s:.0f}s"
    m, sec = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m}m{sec:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


# Estimates are marked; an exact figure (the record's own timestamp) is not.
SECONDS_MARK = {"interpolated": "~", "extrapolated": "~", "at_least": ">=", "partial": ">="}


def describe_lag(msgs: int, secs: float | None, kind: str = "") -> str:
    """`12,400 msgs / 3m05s` (`~` when estimated, `>=` for a lower bound)."""
    return f"{msgs:,} msgs / {SECONDS_MARK.get(kind, '')}{format_seconds_short(secs)}"
