"""MirrorMaker 2 between two named clusters: start, stop and status of the local process,
and the check of the replication (the one function `ecap-ops mirror status` and the Dagster
sensor `mirror_replication_sensor` call).

The flow is `source -> target`: by default the clusters file's primary and its (first)
standby; the topics are the catalog's `mirror:` section (`catalog/mirror.py`).
"""

import time
from dataclasses import dataclass, field
from pathlib import Path

from ecap_ops.catalog.mirror import mirror_of, mirrored_names
from ecap_ops.catalog.model import Catalog
from ecap_ops.core.incidents import OK
from ecap_ops.core.mirror import (
    MirrorCluster,
    TopicLag,
    checkpoints_topic,
    mm2_properties,
    overall,
    render_properties,
    topic_lag,
)
from ecap_ops.errors import ConfigError
from ecap_ops.gateway import KafkaGateway


@dataclass(frozen=True)
class Flow:
    source: object  # ecap_ops.clusters.ClusterConfig
    target: object

    @property
    def name(self) -> str:
        return f"{self.source.name}->{self.target.name}"


def resolve_flow(source: str | None, target: str | None, environ=None) -> Flow:
    """The clusters of the flow: the names given, else the clusters file's primary and its
    standby. ConfigError naming what is missing."""
    from ecap_ops.clusters import cluster_config, load_clusters, primary_of

    known = load_clusters(environ=environ)
    if not known and (source is None or target is None):
        raise ConfigError(
            "mirroring needs two named clusters: set ECAP_CLUSTERS_FILE to a clusters file "
            "naming a primary and a standby (see clusters.example.yaml), or give --from NAME --to NAME"
        )
    if source is None:
        p = primary_of(known)
        if p is None:
            raise ConfigError("the clusters file names no primary cluster: give --from NAME")
        source = p.name
    if target is None:
        standbys = [c.name for c in known.values() if c.role == "standby"]
        if not standbys:
            raise ConfigError("the clusters file names no standby cluster: give --to NAME")
        target = standbys[0]
    src = cluster_config(source, environ, known or None)
    tgt = cluster_config(target, environ, known or None)
    if src.name == tgt.name:
        raise ConfigError(f"--from and --to name the same cluster ({src.name}); give two clusters")
    return Flow(src, tgt)


def _mirror_cluster(cfg) -> MirrorCluster:
    s = cfg.settings
    return MirrorCluster(
        alias=cfg.name,
        bootstrap_servers=s.bootstrap_servers,
        security_protocol=s.security_protocol,
        sasl_mechanism=s.sasl_mechanism,
        sasl_username=s.sasl_username,
        password_env=cfg.password_env or "KAFKA_SASL_PASSWORD",
        ssl_cafile=s.ssl_cafile,
    )


def flow_properties(flow: Flow, source_catalog: Catalog, target_catalog: Catalog) -> str:
    """The `mm2.properties` of the flow (no password in it)."""
    spec = mirror_of(source_catalog)
    names = mirrored_names(source_catalog)
    if not names:
        raise ConfigError(
            f"the catalog ({source_catalog.source}) marks no topic for mirroring: add a `mirror:` "
            "section with `topics: [...]` (docs/disaster-recovery.md)"
        )
    rf = max(
        (t.replication_factor for k in spec.topics if (t := target_catalog.get(k)) is not None),
        default=1,
    )
    try:
        props = mm2_properties(
            _mirror_cluster(flow.source), _mirror_cluster(flow.target), names, spec, rf
        )
    except ValueError as exc:
        raise ConfigError(f"MirrorMaker 2 cannot be configured: {exc}") from None
    return render_properties(props)


def mirror_process(flow: Flow, state: Path | None = None):
    from ecap_ops.localkafka.mirror import MirrorProcess
    from ecap_ops.settings import state_dir

    return MirrorProcess.for_flow(state or state_dir(), flow.source.name, flow.target.name)


def start_mirror(flow: Flow, source_catalog: Catalog, target_catalog: Catalog) -> dict:
    """Start MirrorMaker 2 for the flow (both clusters' settings checked first)."""
    flow.source.checked_settings()
    flow.target.checked_settings()
    text = flow_properties(flow, source_catalog, target_catalog)
    proc = mirror_process(flow)
    started = proc.start(text)
    return {**proc.status(), "started": started, "topics": mirrored_names(source_catalog)}


def stop_mirror(flow: Flow) -> dict:
    proc = mirror_process(flow)
    stopped = proc.stop()
    return {**proc.status(), "stopped": stopped}


# -- checking the replication -----------------------------------------------------------


@dataclass
class ReplicationReport:
    flow: str
    topics: list[TopicLag] = field(default_factory=list)
    checkpoints_topic: str = ""
    checkpoint_records: int | None = None  # end offset of the checkpoints topic
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def level(self) -> str:
        return overall(self.topics)

    @property
    def ok(self) -> bool:
        return self.level == OK

    def to_dict(self) -> dict:
        return {
            "flow": self.flow,
            "level": self.level,
            "ok": self.ok,
            "topics": [t.to_dict() for t in self.topics],
            "checkpoints_topic": self.checkpoints_topic,
            "checkpoint_records": self.checkpoint_records,
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
        }

    def lines(self) -> list[str]:
        from ecap_ops.catalog.units import format_seconds

        out = []
        for t in self.topics:
            if not t.on_standby:
                out.append(f"{t.topic}: {t.level}: " + "; ".join(t.problems))
                continue
            secs = format_seconds(t.seconds) if t.seconds is not None else "?"
            extra = ("; " + "; ".join(t.problems)) if t.problems else ""
            out.append(f"{t.topic}: {t.level}: {t.records:,} record(s) behind, {secs}{extra}")
        return out


def _config_problems(spec, overrides: dict[str, str]) -> tuple[str, ...]:
    """Where the standby's copy differs from the catalog's settings for it (topic overrides)."""
    out = []
    for k, v in sorted(spec.configs.items()):
        have = overrides.get(k)
        if have is not None and have != v:
            out.append(f"{k} is {have} on the standby, the catalog says {v}")
    return tuple(out[:5])


def check_replication(
    source_gw: KafkaGateway,
    target_gw: KafkaGateway,
    source_catalog: Catalog,
    target_catalog: Catalog,
    flow_name: str,
    source_alias: str,
    now: float | None = None,
) -> ReplicationReport:
    """Each mirrored topic on the standby (present, partitions, the catalog's overrides),
    its lag in records and seconds, and the checkpoints topic's size."""
    from ecap_ops.core.lag_measures import record_lag_seconds
    from ecap_ops.gateway.mirror import checkpoint_end, end_offsets
    from ecap_ops.gateway.record_times import read_record_times

    started = time.monotonic()
    spec = mirror_of(source_catalog)
    names = mirrored_names(source_catalog)
    report = ReplicationReport(flow_name, checkpoints_topic=checkpoints_topic(source_alias))
    if not names:
        raise ConfigError(
            f"the catalog ({source_catalog.source}) marks no topic for mirroring: add a `mirror:` section"
        )
    src = end_offsets(source_gw, names)
    tgt = end_offsets(target_gw, names)
    present = [n for n in names if tgt.get(n) is not None]
    overrides = target_gw.topic_overrides(present) if present else {}
    positions = {
        (n, p): (tgt[n] or {}).get(p, 0)
        for n in names
        if src.get(n) is not None and tgt.get(n) is not None
        for p, e in src[n].items()
        if e > (tgt[n] or {}).get(p, 0)
    }
    times, notes = read_record_times(source_gw, positions) if positions else ({}, [])
    report.notes += notes
    now = time.time() if now is None else now
    by_name = {t.name: t for t in source_catalog.topics}
    for n in names:
        key = by_name[n].key
        tspec = target_catalog.get(key)
        seconds, kind = 0.0, "exact"
        if src.get(n) is not None and tgt.get(n) is not None:
            worst = None
            for p, e in src[n].items():
                pos = (tgt[n] or {}).get(p, 0)
                if e <= pos:
                    continue
                rt = times.get((n, p))
                if rt is None:
                    s, k = None, "unknown"
                else:
                    s, k = record_lag_seconds(rt, [], pos, e, now)
                if s is None:
                    kind = "unknown"
                elif worst is None or s > worst:
                    worst, kind = s, k
            seconds = worst if worst is not None else (None if kind == "unknown" else 0.0)
        cfg = ()
        if tspec is not None and n in overrides:
            cfg = _config_problems(tspec, overrides[n][0])
        if tspec is not None and tgt.get(n) is not None and len(tgt[n]) != tspec.partitions:
            cfg = (
                *cfg,
                f"{len(tgt[n])} partition(s) on the standby, the catalog says {tspec.partitions}",
            )
        report.topics.append(topic_lag(n, spec.lag, src.get(n), tgt.get(n), seconds, kind, cfg))
    report.checkpoint_records = checkpoint_end(target_gw, source_alias)
    if report.checkpoint_records is None:
        report.notes.append(
            f"no checkpoints yet: {report.checkpoints_topic} does not exist on the standby "
            "(MirrorMaker creates it once it runs)"
        )
    report.seconds = time.monotonic() - started
    return report
