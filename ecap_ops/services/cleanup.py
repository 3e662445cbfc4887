"""Test-topic cleanup, called by the CLI's `cleanup-test-topics` and the job `cleanup_test_topics`.

Evidence is read from the cluster, judged by `core.cleanup`, and only with `execute` are
the chosen topics deleted: each one's metadata is first written to a small JSON snapshot
(partitions, replication, overrides, topic id, offsets, groups), and its end offsets are
read once more just before deletion, so a topic written meanwhile is kept.
"""

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ecap_ops.catalog.model import Catalog
from ecap_ops.core.cleanup import CleanupRules, Decision, GroupEvidence, TopicEvidence, decide
from ecap_ops.core.state import CANARY_TOPIC
from ecap_ops.errors import ConfigError, EcapOpsError
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.activity import log_dirs, record_timestamps, topic_sizes
from ecap_ops.services.groups import group_summaries

log = logging.getLogger(__name__)


def snapshot_dir() -> Path:
    """ECAP_SNAPSHOT_DIR, else <DAGSTER_HOME or ~/.ecap-ops>/snapshots/cleanup."""
    if os.environ.get("ECAP_SNAPSHOT_DIR"):
        return Path(os.environ["ECAP_SNAPSHOT_DIR"]).expanduser()
    home = os.environ.get("DAGSTER_HOME") or os.path.join(os.path.expanduser("~"), ".ecap-ops")
    return Path(home) / "snapshots" / "cleanup"


def protected_from_env() -> frozenset[str]:
    """ECAP_PROTECTED_TOPICS: comma-separated exact topic names never deleted."""
    raw = os.environ.get("ECAP_PROTECTED_TOPICS", "")
    return frozenset(n.strip() for n in raw.split(",") if n.strip())


@dataclass
class CleanupResult:
    dry_run: bool
    decisions: list[Decision]
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # chosen but kept at the last check
    snapshots: dict[str, str] = field(default_factory=dict)  # topic -> snapshot path
    cluster_id: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def to_delete(self) -> list[Decision]:
        return [d for d in self.decisions if d.delete]

    def to_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "cluster_id": self.cluster_id,
            "decisions": [d.to_dict() for d in self.decisions],
            "to_delete": [d.topic for d in self.to_delete],
            "deleted": self.deleted,
            "failed": self.failed,
            "skipped": self.skipped,
            "snapshots": self.snapshots,
        }


def gather_evidence(
    gw: KafkaGateway, catalog: Catalog, rules: CleanupRules
) -> tuple[str, list[TopicEvidence], dict[str, dict]]:
    """Evidence for every topic matching a pattern: newest record, size, groups.
    Also returns each such topic's raw metadata, for its snapshot."""
    from ecap_ops.core.cleanup import matching_pattern

    cluster_id, _controller, brokers = gw.brokers()
    meta = gw.describe_topics(None)
    names = sorted(n for n in meta if matching_pattern(n, rules.patterns))
    if not names:
        return cluster_id, [], {}
    led = [
        (n, p["partition_index"])
        for n in names
        for p in meta[n]["partitions"]
        if p.get("leader_id", -1) >= 0
    ]
    ranges = gw.offset_ranges(led)
    stamps = record_timestamps(gw, led)
    sizes = topic_sizes(
        log_dirs(
            gw,
            [b.node_id for b in brokers],
            {n: [p["partition_index"] for p in meta[n]["partitions"]] for n in names},
        )
    )
    summaries = group_summaries(gw)
    evidence = []
    for n in names:
        parts = meta[n]["partitions"]
        offline = sum(1 for p in parts if p.get("leader_id", -1) < 0)
        newest = [stamps.get((n, p["partition_index"]), (None, None))[1] for p in parts]
        spans = [ranges.get((n, p["partition_index"])) for p in parts]
        groups = []
        for s in summaries:
            info = s.info
            committed = {p: o for (t, p), o in (info.committed if info else {}).items() if t == n}
            members = (
                sum(1 for m in (info.members or ()) if n in m.assignment or n in m.subscription)
                if info
                else 0
            )
            if committed or members:
                lag = next((t.lag for t in s.topics if t.topic == n), None)
                groups.append(GroupEvidence(s.group_id, s.state, members, committed, lag))
        spec = catalog.get(n)
        evidence.append(
            TopicEvidence(
                name=n,
                internal=bool(meta[n].get("is_internal")) or n.startswith("__"),
                in_catalog=spec is not None and spec.name == n,
                partitions=len(parts),
                replication_factor=max(
                    (len(p.get("replica_nodes") or []) for p in parts), default=0
                ),
                bytes_on_disk=sizes.get(n, 0),
                records=sum(e - s for s, e in spans) if all(spans) else None,
                newest_record_ms=max((t for t in newest if t is not None), default=None),
                offline_partitions=offline,
                groups=tuple(groups),
            )
        )
    ends = {
        n: sum(ranges.get((n, p["partition_index"]), (0, 0))[1] for p in meta[n]["partitions"])
        for n in names
    }
    return cluster_id, evidence, {n: {**meta[n], "end_offsets_total": ends[n]} for n in names}


def write_snapshot(
    directory: Path,
    cluster_id: str,
    topic_meta: dict,
    overrides: dict[str, str],
    ranges: dict,
    decision: Decision,
) -> Path:
    """One JSON file per topic, written atomically and synced before the topic is deleted."""
    name = topic_meta["name"]
    doc = {
        "format": "ecap-ops/cleanup-snapshot/v1",
        "taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cluster_id": cluster_id,
        "topic": name,
        "topic_id": str(topic_meta.get("topic_id")) if topic_meta.get("topic_id") else None,
        "partitions": [
            {
                "partition": p["partition_index"],
                "leader": p.get("leader_id"),
                "replicas": list(p.get("replica_nodes") or []),
                "isr": list(p.get("isr_nodes") or []),
                "start_offset": ranges.get((name, p["partition_index"]), (None, None))[0],
                "end_offset": ranges.get((name, p["partition_index"]), (None, None))[1],
            }
            for p in sorted(topic_meta["partitions"], key=lambda p: p["partition_index"])
        ],
        "replication_factor": max(
            (len(p.get("replica_nodes") or []) for p in topic_meta["partitions"]), default=0
        ),
        "overrides": overrides,
        "groups": decision.evidence.get("groups", []),
        "evidence": decision.evidence,
        "reasons": list(decision.reasons),
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{name}.json"
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2, sort_keys=True, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def cleanup_test_topics(
    gw: KafkaGateway,
    catalog: Catalog,
    rules: CleanupRules,
    execute: bool = False,
    snapshots: Path | None = None,
    now_ms: int | None = None,
) -> CleanupResult:
    """Find idle test topics and, with `execute`, delete those within the budget."""
    problems = rules.validate()
    if problems:
        raise ConfigError("cleanup rules are invalid: " + "; ".join(problems))
    rules = CleanupRules(
        rules.patterns,
        rules.idle_days,
        rules.max_deletions,
        rules.protected,
        rules.reserved | {CANARY_TOPIC},
        rules.delete_empty,
    )
    cluster_id, evidence, metas = gather_evidence(gw, catalog, rules)
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    decisions = decide(evidence, rules, now)
    result = CleanupResult(dry_run=not execute, decisions=decisions, cluster_id=cluster_id)
    chosen = [d for d in decisions if d.delete]
    if not execute or not chosen:
        return result

    names = [d.topic for d in chosen]
    # Last look: a record written since the evidence was read keeps the topic.
    parts = [(n, p["partition_index"]) for n in names for p in metas[n]["partitions"]]
    ranges_now = gw.offset_ranges(parts)
    overrides = gw.topic_overrides(names)
    directory = snapshots or snapshot_dir()
    go = []
    for d in chosen:
        before = metas[d.topic]["end_offsets_total"]
        after = sum(e for (t, _p), (_s, e) in ranges_now.items() if t == d.topic)
        if after != before:
            result.skipped[d.topic] = (
                f"{after - before} record(s) written since the evidence was read; kept"
            )
            continue
        try:
            path = write_snapshot(
                directory,
                cluster_id,
                metas[d.topic],
                overrides.get(d.topic, ({}, {}))[0],
                ranges_now,
                d,
            )
        except OSError as exc:
            result.failed[d.topic] = (
                f"snapshot could not be written to {directory}: {exc}; not deleted"
            )
            continue
        result.snapshots[d.topic] = str(path)
        go.append(d.topic)
    if go:
        try:
            outcome = gw.delete_topics(go)
        except EcapOpsError as exc:
            for n in go:
                result.failed[n] = str(exc)
            return result
        for n in go:
            err = outcome.get(n, "no answer from the broker for this topic")
            if err:
                result.failed[n] = err
            else:
                result.deleted.append(n)
                log.info("deleted idle test topic %s (snapshot %s)", n, result.snapshots[n])
    return result
