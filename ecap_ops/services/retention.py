"""The retention audit, called by the CLI's `retention-audit` and the asset `retention_audit`."""

import time

from ecap_ops.catalog.model import Catalog
from ecap_ops.core.retention import DAY_MS, DefaultPolicy, RetentionReport, TopicObservation, audit
from ecap_ops.core.state import CANARY_TOPIC, is_internal_topic
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.activity import log_dirs, record_timestamps, topic_sizes

READ_KEYS = (
    "retention.ms",
    "retention.bytes",
    "cleanup.policy",
    "segment.ms",
    "segment.bytes",
    "delete.retention.ms",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "max.compaction.lag.ms",
)


def observe_topics(
    gw: KafkaGateway, include_internal: bool = False
) -> tuple[list[TopicObservation], int | None, int | None]:
    """Every topic's configs, size on disk, record count and oldest/newest record time, and
    the brokers' free and total disk. A fixed number of requests: one Metadata, one
    DescribeConfigs, one DescribeLogDirs per broker, four ListOffsets per partition leader."""
    cluster_id, _controller, brokers = gw.brokers()
    meta = gw.describe_topics(None)
    names = sorted(
        n
        for n, m in meta.items()
        if include_internal or not is_internal_topic(n, m.get("is_internal"))
    )
    configs = gw.all_topic_configs(names)
    parts = {n: [p["partition_index"] for p in meta[n]["partitions"]] for n in names}
    led = [
        (n, p["partition_index"])
        for n in names
        for p in meta[n]["partitions"]
        if p.get("leader_id", -1) >= 0
    ]
    dirs = log_dirs(gw, [b.node_id for b in brokers], parts)
    sizes = topic_sizes(dirs)
    ranges = gw.offset_ranges(led)
    stamps = record_timestamps(gw, led)
    free = total = None
    for b in dirs:
        for d in b.dirs:
            if d.usable_bytes is not None:
                free = (free or 0) + d.usable_bytes
            if d.total_bytes is not None:
                total = (total or 0) + d.total_bytes
    failed_brokers = {b.broker for b in dirs if b.error}
    out = []
    for n in names:
        cfg = configs.get(n, {})
        effective = {
            k: str(e.get("value"))
            for k, e in cfg.items()
            if k in READ_KEYS and e.get("value") is not None
        }
        overrides = frozenset(
            k for k, e in cfg.items() if e.get("config_source") == "DYNAMIC_TOPIC_CONFIG"
        )
        pids = parts[n]
        spans = [ranges.get((n, p)) for p in pids]
        records = sum(e - s for s, e in spans) if spans and all(spans) else None
        olds = [stamps.get((n, p), (None, None))[0] for p in pids]
        news = [stamps.get((n, p), (None, None))[1] for p in pids]
        replicas = max(
            (len(p.get("replica_nodes") or []) for p in meta[n]["partitions"]), default=0
        )
        hosts = {r for p in meta[n]["partitions"] for r in p.get("replica_nodes") or []}
        size = None if hosts & failed_brokers else sizes.get(n, 0)
        out.append(
            TopicObservation(
                name=n,
                partitions=len(pids),
                replication_factor=replicas,
                configs=effective,
                overrides=overrides,
                bytes_on_disk=size,
                records=records,
                oldest_ms=min((o for o in olds if o is not None), default=None),
                newest_ms=max((o for o in news if o is not None), default=None),
                internal=is_internal_topic(n, meta[n].get("is_internal")),
            )
        )
    return out, free, total


def run_retention_audit(
    gw: KafkaGateway,
    catalog: Catalog,
    interval_ms: int = DAY_MS,
    policy: DefaultPolicy = DefaultPolicy(),
    include_internal: bool = False,
    now_ms: int | None = None,
) -> RetentionReport:
    """Audit every topic on the cluster (the health canary aside)."""
    observations, free, total = observe_topics(gw, include_internal)
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    return audit(
        observations,
        catalog,
        now,
        interval_ms,
        free,
        total,
        policy,
        exclude=frozenset({CANARY_TOPIC}),
    )
