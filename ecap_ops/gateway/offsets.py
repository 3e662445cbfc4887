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
    partitions = list(partitions)
    tx = set(transactional)
    live = set(gw.topics({t for t, _ in partitions}))
    tps = sorted({tp for tp in partitions if tp[0] in live})
    if not tps:
        return {}
    starts = gw.offsets(tps, "earliest")
    ends = gw.offsets([tp for tp in tps if tp[0] not in tx], "latest")
    ends |= gw.offsets([tp for tp in tps if tp[0] in tx], "latest", read_committed=True)
    return {
        tp: PartitionOffsets(starts.get(tp) if starts.get(tp, -1) >= 0 else None, ends[tp])
        for tp in tps
        if ends.get(tp, -1) >= 0
    }
