"""Reading what MirrorMaker 2 leaves on the clusters: the end offsets of the mirrored topics on
both sides, and its checkpoints on the standby (`<source>.checkpoints.internal`, a compacted
topic of one record per group partition). Read without a consumer group (assign mode), so
nobody's offsets move; bounded in time.
"""

import time

from ecap_ops.core.mirror import Checkpoint, checkpoints_topic, decode_checkpoint
from ecap_ops.gateway.client import KafkaGateway

MAX_CHECKPOINT_RECORDS = 1_000_000


def end_offsets(gw: KafkaGateway, names: list[str]) -> dict[str, dict[int, int] | None]:
    """topic -> {partition: end offset} for each name; None for a topic the cluster lacks."""
    topics = gw.topics(None)
    parts = [(n, p.partition) for n in names if n in topics for p in topics[n].partitions]
    ends = gw.offsets(parts, "latest") if parts else {}
    out: dict[str, dict[int, int] | None] = {}
    for n in names:
        if n not in topics:
            out[n] = None
        else:
            out[n] = {p.partition: ends.get((n, p.partition), 0) for p in topics[n].partitions}
    return out


def checkpoint_end(gw: KafkaGateway, source: str) -> int | None:
    """The summed end offset of the checkpoints topic (grows as checkpoints flow), or None
    when the topic does not exist yet."""
    name = checkpoints_topic(source)
    got = end_offsets(gw, [name])[name]
    return None if got is None else sum(got.values())


def read_checkpoints(
    gw: KafkaGateway, source: str, budget_s: float | None = None
) -> tuple[list[Checkpoint] | None, list[str]]:
    """Every checkpoint record on the standby, oldest first (None when the topic does not
    exist), and notes on records that could not be read."""
    from kafka import TopicPartition

    name = checkpoints_topic(source)
    topics = gw.topics(None)
    if name not in topics:
        return None, []
    tps = [TopicPartition(name, p.partition) for p in topics[name].partitions]
    ranges = gw.offset_ranges([(name, p.partition) for p in topics[name].partitions])
    todo = {tp: ranges[(tp.topic, tp.partition)] for tp in tps}
    todo = {tp: r for tp, r in todo.items() if r[1] > r[0]}
    records: list[Checkpoint] = []
    notes: list[str] = []
    if not todo:
        return records, notes
    budget = budget_s if budget_s is not None else max(5.0, gw.settings.request_timeout_ms / 1000)
    deadline = time.monotonic() + budget
    with gw.consumer(f"reading MirrorMaker's checkpoints ({name})") as consumer:
        consumer.assign(list(todo))
        for tp, (start, _end) in todo.items():
            consumer.seek(tp, start)
        remaining = {tp: end for tp, (_s, end) in todo.items()}
        bad = 0
        while remaining and time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500, max_records=10_000)
            for tp, msgs in batch.items():
                for m in msgs:
                    try:
                        records.append(decode_checkpoint(m.key, m.value, m.timestamp))
                    except (ValueError, UnicodeDecodeError, TypeError):
                        bad += 1
                    if len(records) >= MAX_CHECKPOINT_RECORDS:
                        remaining.clear()
                        notes.append(f"stopped after {MAX_CHECKPOINT_RECORDS:,} checkpoint records")
                        break
                if tp in remaining and consumer.position(tp) >= remaining[tp]:
                    remaining.pop(tp, None)
        if remaining:
            notes.append(
                f"the checkpoints of {len(remaining)} partition(s) of {name} were not read "
                f"within {budget:.0f}s"
            )
        if bad:
            notes.append(f"{bad} record(s) of {name} are not MirrorMaker checkpoints; skipped")
    return records, notes
