"""Partition offsets for judging consumer lag outside the lag tick: each partition's log
start and end (the last stable offset on transactional topics, as the lag tick reads it),
as the core's `PartitionOffsets`. One ListOffsets per partition leader and kind (earliest,
latest, last stable), whatever the number of partitions."""

from collections.abc import Iterable

from ecap_ops.core.lag_model import TP, PartitionOffsets
from ecap_ops.gateway.client import KafkaGateway


def partition_offsets(
    gw: KafkaGateway, partitions: Iterable[TP], transactional: Iterable[str] = ()
) -> dict[TP, PartitionOffsets]:
    """Start and end offsets of the partitions that exist and have a leader; the others are
    left out."""
    from kafka import IsolationLevel, TopicPartition
    from kafka.admin import OffsetSpec

    partitions = list(partitions)
    tx = set(transactional)
    live = set(gw.describe_topics({t for t, _ in partitions}))
    tps = sorted({tp for tp in partitions if tp[0] in live})
    if not tps:
        return {}
    timeout = gw.settings.request_timeout_ms

    def read(kind: str, parts: list[TP], spec, isolation) -> dict[TP, int]:
        if not parts:
            return {}
        raw = gw.call(
            f"reading the {kind} offsets of {len(parts)} partition(s)",
            lambda a: a.list_partition_offsets(
                {TopicPartition(t, p): spec for t, p in parts},
                isolation_level=isolation,
                timeout_ms=timeout,
            ),
        )
        return {(tp.topic, tp.partition): r.offset for tp, r in raw.items() if r.offset >= 0}

    starts = read("earliest", tps, OffsetSpec.EARLIEST, IsolationLevel.READ_UNCOMMITTED)
    ends = read(
        "latest",
        [tp for tp in tps if tp[0] not in tx],
        OffsetSpec.LATEST,
        IsolationLevel.READ_UNCOMMITTED,
    )
    ends |= read(
        "last stable",
        [tp for tp in tps if tp[0] in tx],
        OffsetSpec.LATEST,
        IsolationLevel.READ_COMMITTED,
    )
    return {tp: PartitionOffsets(starts.get(tp), ends[tp]) for tp in tps if tp in ends}
