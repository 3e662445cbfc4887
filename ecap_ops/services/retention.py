"""The retention audit, called by the CLI's `retention-audit` and the asset `retention_audit`."""

import time
from typing import NamedTuple

from ecap_ops.catalog.model import Catalog
from ecap_ops.core.retention import (
    DAY_MS,
    DEFAULT_CHECK_INTERVAL_MS,
    DefaultPolicy,
    RetentionReport,
    TopicObservation,
    audit,
)
from ecap_ops.core.scope import within_scope
from ecap_ops.core.state import (
    CANARY_TOPIC,
    ClusterState,
    ConfigValue,
    TopicState,
    is_internal_topic,
    partition_leaders,
)
from ecap_ops.errors import EcapOpsError
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.activity import (
    broker_config,
    log_dirs,
    partition_activity,
    topic_sizes,
)

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


CHECK_INTERVAL_KEY = "log.retention.check.interval.ms"


def retention_check_interval_ms(gw: KafkaGateway, brokers: list[int]) -> int:
    """How often the brokers look for segments past retention (read from one broker);
    Kafka's default when it cannot be read."""
    if brokers:
        try:
            return int(broker_config(gw, brokers[0], [CHECK_INTERVAL_KEY])[CHECK_INTERVAL_KEY])
        except (EcapOpsError, KeyError, ValueError):
            pass
    return DEFAULT_CHECK_INTERVAL_MS


class AuditInputs(NamedTuple):
    """What the audit reads of a cluster."""

    topics: list[TopicObservation]
    free_bytes: int | None  # all brokers' log directories
    total_bytes: int | None
    check_interval_ms: int  # the brokers' log.retention.check.interval.ms
    outside_scope: int = 0  # topics outside the catalog's scope, not read


def _disk_totals(dirs) -> tuple[int | None, int | None]:
    """Free and total bytes of every log directory that reported them (None: none did)."""
    free = total = None
    for b in dirs:
        for d in b.dirs:
            if d.usable_bytes is not None:
                free = (free or 0) + d.usable_bytes
            if d.total_bytes is not None:
                total = (total or 0) + d.total_bytes
    return free, total


def _topic_observation(
    topic: TopicState, cfg: dict[str, ConfigValue], ranges, stamps, size
) -> TopicObservation:
    """One topic's observation from its metadata, configs, offsets and record times."""
    name = topic.name
    effective = {k: str(c.value) for k, c in cfg.items() if k in READ_KEYS and c.value is not None}
    overrides = frozenset(k for k, c in cfg.items() if c.is_override)
    pids = [p.partition for p in topic.partitions]
    spans = [ranges.get((name, p)) for p in pids]
    olds = [stamps.get((name, p), (None, None))[0] for p in pids]
    news = [stamps.get((name, p), (None, None))[1] for p in pids]
    return TopicObservation(
        name=name,
        partitions=len(pids),
        replication_factor=topic.replication_factor,
        configs=effective,
        overrides=overrides,
        bytes_on_disk=size,
        records=sum(e - s for s, e in spans) if spans and all(spans) else None,
        oldest_ms=min((o for o in olds if o is not None), default=None),
        newest_ms=max((o for o in news if o is not None), default=None),
        internal=is_internal_topic(name, topic.internal),
    )


def observe_topics(
    gw: KafkaGateway, include_internal: bool = False, catalog: Catalog | None = None
) -> AuditInputs:
    """Every topic's configs, size on disk, record count and oldest/newest record time, the
    brokers' free and total disk and their retention check interval. A fixed number of
    requests: two Metadata (brokers, topics), one DescribeConfigs per kind, one
    DescribeLogDirs per broker, four ListOffsets per partition leader sent at once."""
    _cluster_id, _controller, brokers = gw.brokers()
    live = [b.node_id for b in brokers]
    meta = gw.topics(None)
    names = sorted(
        n for n, t in meta.items() if include_internal or not is_internal_topic(n, t.internal)
    )
    outside = 0
    if catalog is not None and catalog.scope.declared:  # outside the scope: not even read
        scoped = set(within_scope(catalog, ClusterState("", None, (), meta)).topics)
        outside = sum(1 for n in names if n not in scoped)
        names = [n for n in names if n in scoped]
    configs = gw.all_topic_configs(names)
    parts = {n: [p.partition for p in meta[n].partitions] for n in names}
    led = [(n, p.partition) for n in names for p in meta[n].partitions if p.leader is not None]
    dirs = log_dirs(gw, live, parts)
    sizes = topic_sizes(dirs)
    ranges, stamps = partition_activity(gw, led, partition_leaders(meta))
    failed_brokers = {b.broker for b in dirs if b.error}
    out = []
    for n in names:
        hosts = {r for p in meta[n].partitions for r in p.replicas}
        size = None if hosts & failed_brokers else sizes.get(n, 0)
        out.append(_topic_observation(meta[n], configs.get(n, {}), ranges, stamps, size))
    free, total = _disk_totals(dirs)
    return AuditInputs(out, free, total, retention_check_interval_ms(gw, live), outside)


def run_retention_audit(
    gw: KafkaGateway,
    catalog: Catalog,
    interval_ms: int = DAY_MS,
    policy: DefaultPolicy = DefaultPolicy(),
    include_internal: bool = False,
    now_ms: int | None = None,
) -> RetentionReport:
    """Audit every topic on the cluster (the health canary aside), with the grace before
    "older than retention" taken from the brokers' own retention check interval."""
    seen = observe_topics(gw, include_internal, catalog)
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    return audit(
        seen.topics,
        catalog,
        now,
        interval_ms,
        seen.free_bytes,
        seen.total_bytes,
        policy,
        exclude=frozenset({CANARY_TOPIC}),
        check_interval_ms=seen.check_interval_ms,
        outside_scope=seen.outside_scope,
    )
