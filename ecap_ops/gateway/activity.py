"""Reading what the data and the consumers are doing: log-directory sizes and disk space per
broker, record timestamps, consumer groups and their committed offsets.

Every function takes a `KafkaGateway` and sends a fixed number of requests (one per broker
or per partition leader, never one per topic), so audits of a thousand topics stay cheap.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from ecap_ops.errors import EcapOpsError
from ecap_ops.gateway.client import KafkaGateway

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


def record_timestamps(
    gw: KafkaGateway, partitions: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], tuple[int | None, int | None]]:
    """(oldest, newest) record timestamp in ms of each partition; None when it holds no record.

    Oldest: the first record at or after timestamp 0 (ListOffsets by time returns that
    record's own timestamp). Newest: the record with the largest timestamp (KIP-734).
    One ListOffsets per partition leader for each."""
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    tps = [TopicPartition(t, p) for t, p in partitions]
    if not tps:
        return {}
    timeout = gw.settings.request_timeout_ms
    first = gw.call(
        "reading the oldest record times",
        lambda a: a.list_partition_offsets({tp: 0 for tp in tps}, timeout_ms=timeout),
    )
    last = gw.call(
        "reading the newest record times",
        lambda a: a.list_partition_offsets(
            {tp: OffsetSpec.MAX_TIMESTAMP for tp in tps}, timeout_ms=timeout
        ),
    )

    def ts(r) -> int | None:
        if r is None or r.offset is None or r.offset < 0 or r.timestamp is None or r.timestamp < 0:
            return None
        return int(r.timestamp)

    return {(tp.topic, tp.partition): (ts(first.get(tp)), ts(last.get(tp))) for tp in tps}


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


@dataclass(frozen=True)
class GroupMember:
    member_id: str
    client_id: str
    host: str
    # topic -> partitions assigned to this member
    assignment: dict[str, tuple[int, ...]] = field(default_factory=dict)
    subscription: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupInfo:
    group_id: str
    state: str
    group_type: str  # classic or consumer (Kafka 4's new protocol)
    protocol_type: str
    members: tuple[GroupMember, ...] | None  # None: the broker did not describe them
    # (topic, partition) -> committed offset
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    error: str | None = None

    def topics(self) -> set[str]:
        """Topics the group has committed offsets on or whose partitions its members hold."""
        names = {t for t, _ in self.committed}
        for m in self.members or ():
            names |= set(m.assignment) | set(m.subscription)
        return names


def consumer_groups(gw: KafkaGateway) -> list[GroupInfo]:
    """Every group with its state, members and committed offsets: one ListGroups per broker,
    one DescribeGroups and one OffsetFetch per coordinator."""
    listed = gw.call("listing consumer groups", lambda a: a.list_groups())
    # A group coordinated by two brokers during a move appears twice; keep one.
    by_id = {
        g["group_id"]: g for g in listed if g.get("protocol_type", "consumer") in ("consumer", "")
    }
    if not by_id:
        return []
    ids = sorted(by_id)
    described: dict[str, dict] = {}
    classic = [g for g in ids if (by_id[g].get("group_type") or "classic") == "classic"]
    if classic:
        described = gw.call("describing consumer groups", lambda a: a.describe_groups(classic))
    offsets = gw.call(
        "reading committed offsets", lambda a: a.list_group_offsets({g: None for g in ids})
    )
    out = []
    for gid in ids:
        g = by_id[gid]
        d = described.get(gid) or {}
        members = None
        err = d.get("error")
        if d and not err:
            ms = []
            for m in d.get("members") or []:
                assignment = {}
                for ap in (m.get("member_assignment") or {}).get("assigned_partitions") or []:
                    assignment[ap["topic"]] = tuple(sorted(ap.get("partitions") or ()))
                ms.append(
                    GroupMember(
                        member_id=m.get("member_id", ""),
                        client_id=m.get("client_id", ""),
                        host=m.get("client_host", ""),
                        assignment=assignment,
                        subscription=tuple((m.get("member_metadata") or {}).get("topics") or ()),
                    )
                )
            members = tuple(ms)
        committed = {
            (tp.topic, tp.partition): om.offset
            for tp, om in (offsets.get(gid) or {}).items()
            if om.offset is not None and om.offset >= 0
        }
        out.append(
            GroupInfo(
                group_id=gid,
                state=d.get("group_state") or g.get("group_state") or "Unknown",
                group_type=g.get("group_type") or "classic",
                protocol_type=g.get("protocol_type") or "",
                members=members,
                committed=committed,
                error=str(err) if err else None,
            )
        )
    return out
