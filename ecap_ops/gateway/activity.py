"""Reading what the data and the consumers are doing: log-directory sizes and disk space per
broker, offsets and record timestamps, consumer groups and their committed offsets.

Every function takes a `KafkaGateway` and sends a fixed number of requests (one per broker
or per partition leader, never one per topic), so audits of a thousand topics stay cheap.
"""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from ecap_ops.core.groups import ConsumerGroup, GroupMember
from ecap_ops.errors import EcapOpsError
from ecap_ops.gateway.client import SPAN_KINDS, KafkaGateway, spans_of
from ecap_ops.gateway.groups import read_groups

__all__ = [
    "BrokerLogDirs",
    "GroupInfo",
    "GroupMember",
    "LogDir",
    "PartitionActivity",
    "broker_config",
    "consumer_groups",
    "log_dirs",
    "partition_activity",
    "topic_sizes",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogDir:
    """One log directory of one broker: its error, capacity and the replicas it holds."""

    broker: int
    path: str
    error: str | None
    total_bytes: int | None  # None when the broker does not report it (DescribeLogDirs < v4)
    usable_bytes: int | None
    # (topic, partition) -> size in bytes of the replica in this directory
    replicas: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass(frozen=True)
class BrokerLogDirs:
    broker: int
    dirs: tuple[LogDir, ...]
    error: str | None = None  # the broker did not answer


def _err_name(code: int) -> str | None:
    from kafka import errors as kerr

    if not code:
        return None
    return kerr.for_code(code).__name__


def log_dirs(
    gw: KafkaGateway, brokers: Iterable[int], partitions: dict[str, list[int]]
) -> list[BrokerLogDirs]:
    """DescribeLogDirs for these partitions ({} for the directories' capacity only), one
    request per broker. A broker that fails is reported, not raised, so one dead broker does
    not hide the others' disks."""
    out = []
    for broker in sorted(set(brokers)):
        try:
            raw = gw.call(
                f"describing the log directories of broker {broker}",
                lambda a, b=broker: a.describe_log_dirs(
                    topic_partitions=dict(partitions), brokers=[b]
                ),
            )
        except EcapOpsError as exc:
            out.append(BrokerLogDirs(broker, (), error=str(exc)))
            continue
        dirs = []
        for entry in raw:
            for d in entry.get("log_dirs") or []:
                replicas = {}
                for t in d.get("topics") or []:
                    for p in t.get("partitions") or []:
                        replicas[(t["name"], p["partition_index"])] = int(
                            p.get("partition_size") or 0
                        )
                total = d.get("total_bytes")
                usable = d.get("usable_bytes")
                dirs.append(
                    LogDir(
                        broker=entry.get("broker", broker),
                        path=d.get("log_dir", "?"),
                        error=_err_name(d.get("error_code", 0)),
                        total_bytes=total if total is not None and total >= 0 else None,
                        usable_bytes=usable if usable is not None and usable >= 0 else None,
                        replicas=replicas,
                    )
                )
        out.append(BrokerLogDirs(broker, tuple(dirs)))
    return out


def topic_sizes(dirs: list[BrokerLogDirs]) -> dict[str, int]:
    """Bytes on disk per topic, all replicas on all brokers summed (what kafka-log-dirs shows)."""
    sizes: dict[str, int] = {}
    for b in dirs:
        for d in b.dirs:
            for (topic, _p), size in d.replicas.items():
                sizes[topic] = sizes.get(topic, 0) + size
    return sizes


class PartitionActivity(NamedTuple):
    """Each partition's offsets and record times, read together (`partition_activity`)."""

    ranges: dict[tuple[str, int], tuple[int, int]]  # (start, end) offsets
    # (oldest, newest) record timestamp in ms; None when the partition holds no record.
    stamps: dict[tuple[str, int], tuple[int | None, int | None]]


def partition_activity(
    gw: KafkaGateway,
    partitions: Iterable[tuple[str, int]],
    leaders: Mapping[tuple[str, int], int | None] | None = None,
) -> PartitionActivity:
    """Start and end offsets and the oldest and newest record timestamps of partitions.

    Oldest: the first record at or after timestamp 0 (ListOffsets by time returns that
    record's own timestamp). Newest: the record with the largest timestamp (KIP-734).
    Four ListOffsets per partition leader, all in flight at once, routed by `leaders`
    (the caller's metadata) when given (`KafkaGateway.offsets_by_kind`)."""
    from kafka.admin import OffsetSpec

    parts = list(partitions)
    found = gw.offsets_by_kind(
        parts,
        {**SPAN_KINDS, "oldest": 0, "newest": OffsetSpec.MAX_TIMESTAMP},
        leaders,
    )

    def ts(answer) -> int | None:
        if answer is None:
            return None
        offset, stamp = answer
        if offset is None or offset < 0 or stamp is None or stamp < 0:
            return None
        return int(stamp)

    oldest, newest = found["oldest"], found["newest"]
    return PartitionActivity(
        spans_of(found, parts),
        {tp: (ts(oldest.get(tp)), ts(newest.get(tp))) for tp in parts},
    )


def broker_config(gw: KafkaGateway, broker: int, keys: Iterable[str]) -> dict[str, str]:
    """Effective values of some broker configs (e.g. min.insync.replicas), in one request."""
    from kafka.admin import ConfigResource, ConfigResourceType

    wanted = set(keys)
    raw = gw.call(
        f"reading the configs of broker {broker}",
        lambda a: a.describe_configs(
            [ConfigResource(ConfigResourceType.BROKER, str(broker))], config_filter="all"
        ),
    )
    out: dict[str, str] = {}
    for _name, entries in (raw.get("broker") or {}).items():
        if isinstance(entries, dict):
            for k, e in entries.items():
                if k in wanted and e.get("value") is not None:
                    out[k] = str(e["value"])
    return out


# -- consumer groups ------------------------------------------------------------------

# The core's types, under the names this module has always given them.
GroupInfo = ConsumerGroup


def consumer_groups(gw: KafkaGateway) -> list[GroupInfo]:
    """Every consumer group with its state, members and committed offsets, read by the one
    group reader (`gateway.groups.read_groups`): one ListGroups per broker, one batched
    FindCoordinator, one DescribeGroups and one OffsetFetch per coordinator."""
    return read_groups(gw, consumer_only=True).require_complete().groups()
