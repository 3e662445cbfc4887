"""A bounded sample of the newest records of every partition of a topic.

Read without a consumer group: the consumer is assigned its partitions (`group_id=None`,
no auto-commit), seeks to at most `per_partition` records before each partition's end
offset, and reads up to that end. It never joins a group and never commits, so the
topic's consumer groups and their offsets are untouched (readers without a group are
invisible to Kafka's admin API).

Bounds: `max_bytes` of record bytes (keys and values) in all, `max_seconds` of reading.
Each fetch asks for at most the bytes left (`fetch_max_bytes`) and each partition's share
(`max_partition_fetch_bytes`), so a topic of any size costs at most about `max_bytes` on
the wire (plus one record batch per partition when a single batch is larger than the share:
Kafka always returns at least one batch). A partition that has reached its end is paused.
"""

import time
from collections.abc import Iterable

from ecap_ops.core.contracts import Record, TopicObservation

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_SECONDS = 10.0
DEFAULT_PER_PARTITION = 200
MIN_PARTITION_BYTES = 4 * 1024


def sample_topic(
    gw,
    topic: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    per_partition: int = DEFAULT_PER_PARTITION,
    partitions: Iterable[int] | None = None,
) -> TopicObservation:
    """The newest records of `topic` (at most `per_partition` per partition), its start and
    end offsets; within `max_bytes` of record bytes and about `max_seconds`."""
    from kafka import TopicPartition

    if max_bytes < 1 or max_seconds <= 0 or per_partition < 0:
        raise ValueError(
            "the sample's byte cap, time cap and records per partition must be positive"
        )
    started = time.monotonic()
    if partitions is None:
        state = gw.topics([topic]).get(topic)
        parts = sorted(p.partition for p in state.partitions) if state is not None else []
    else:
        parts = sorted(partitions)
    ranges = gw.offset_ranges([(topic, p) for p in parts])
    n = max(parts) + 1 if parts else 0
    starts = [0] * n
    ends = [0] * n
    for p in parts:
        starts[p], ends[p] = ranges.get((topic, p), (0, 0))
    wanted = {
        p: (max(starts[p], ends[p] - per_partition), ends[p]) for p in parts if ends[p] > starts[p]
    }
    records: list[Record] = []
    read = 0
    capped = False
    if wanted and per_partition > 0:
        share = max(MIN_PARTITION_BYTES, max_bytes // len(wanted))
        options = {
            "group_id": None,
            "enable_auto_commit": False,
            "fetch_max_bytes": max(1, min(max_bytes, 50 * 1024 * 1024)),
            "max_partition_fetch_bytes": min(share, max_bytes),
            "fetch_max_wait_ms": 100,
            "max_poll_records": 500,
            "auto_offset_reset": "earliest",  # retention moved the start: read from the new start
        }
        with gw.consumer(f"sampling the newest records of {topic}", **options) as consumer:
            tps = {p: TopicPartition(topic, p) for p in wanted}
            consumer.assign(list(tps.values()))
            for p, (first, _end) in wanted.items():
                consumer.seek(tps[p], first)
            open_parts = set(wanted)
            while open_parts and not capped:
                left = max_seconds - (time.monotonic() - started)
                if left <= 0:
                    break
                batch = consumer.poll(timeout_ms=int(min(500, left * 1000)) or 1)
                for tp, msgs in batch.items():
                    end = wanted[tp.partition][1]
                    for m in msgs:
                        if m.offset >= end:
                            break
                        r = Record(tp.partition, m.offset, m.timestamp, m.key, m.value)
                        if read + r.size > max_bytes:
                            capped = True
                            break
                        read += r.size
                        records.append(r)
                    if capped:
                        break
                for p in list(open_parts):
                    tp = tps[p]
                    if consumer.position(tp) >= wanted[p][1]:
                        consumer.pause(tp)
                        open_parts.discard(p)
    return TopicObservation(
        topic=topic,
        starts=tuple(starts),
        ends=tuple(ends),
        records=tuple(sorted(records, key=lambda r: (r.partition, r.offset))),
        bytes_read=read,
        byte_cap=max_bytes,
        capped=capped,
        seconds=time.monotonic() - started,
    )
