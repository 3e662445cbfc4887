"""Test-topic cleanup, called by the CLI's `cleanup-test-topics` and the job `cleanup_test_topics`.

Each run reads the evidence from the cluster (per partition start and end offsets, topic
ids, consumer groups; record timestamps only for the report), judges it with
`core.cleanup` against the observations earlier runs recorded, and records its own. The
observation history is one small JSON file shared by the CLI and the Dagster job
(`state_path()`: `ECAP_STATE_DIR`, else `<DAGSTER_HOME or ~/.ecap-ops>/state`), written
atomically with mode 0600, holding per topic only the first and the latest observation since
it last moved, and nothing of topics that no longer exist. A file that cannot be read is
reported and replaced by a fresh history: that only delays deletions, it never causes one.
Reading, writing and locking that file is `services/cleanup_state.py` (re-exported here).

Dry runs record observations too (the daily job builds the history even while it deletes
nothing). Only with `execute` are confirmed-idle topics deleted, all in `_delete_confirmed`:
a last look at their offsets and topic ids, a snapshot of each, then the delete.
"""

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ecap_ops.catalog.model import Catalog
from ecap_ops.catalog.units import parse_duration_ms
from ecap_ops.core.cleanup import (
    ACTIVE,
    CANDIDATE,
    IDLE,
    INVISIBLE_READERS,
    KEPT,
    CleanupRules,
    Decision,
    GroupEvidence,
    TopicEvidence,
    history_to_json,
    judge,
    matching_pattern,
    merge_history,
)
from ecap_ops.core.state import CANARY_TOPIC, TopicState, is_internal_topic, partition_leaders
from ecap_ops.errors import ConfigError, EcapOpsError
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.activity import log_dirs, partition_activity, topic_sizes
from ecap_ops.services.cleanup_state import (  # re-exported: callers import them from here
    LOCK_WAIT_S,
    MAX_STATE_BYTES,
    STATE_FILE,
    _history_lock,
    load_history,
    save_history,
    state_path,
)
from ecap_ops.services.groups import GroupSummary, group_summaries
from ecap_ops.settings import snapshot_dir as settings_snapshot_dir

__all__ = [
    "LOCK_WAIT_S",
    "MAX_STATE_BYTES",
    "STATE_FILE",
    "CleanupResult",
    "cleanup_test_topics",
    "gather_evidence",
    "idle_window_ms",
    "load_history",
    "protected_from_env",
    "save_history",
    "snapshot_dir",
    "state_path",
    "write_snapshot",
]

log = logging.getLogger(__name__)


def snapshot_dir() -> Path:
    """Where cleanup's evidence records go: <the snapshot directory>/cleanup."""
    return settings_snapshot_dir() / "cleanup"


def protected_from_env() -> frozenset[str]:
    """ECAP_PROTECTED_TOPICS: comma-separated exact topic names never deleted."""
    raw = os.environ.get("ECAP_PROTECTED_TOPICS", "")
    return frozenset(n.strip() for n in raw.split(",") if n.strip())


_ACTIONS = {KEPT: "keep", ACTIVE: "keep (active)", CANDIDATE: "candidate"}


def idle_window_ms(text: str) -> int:
    """An idle window given as a duration (7d, 12h, 30m, 2s: the catalog's units), for the
    CLI's --idle and the job's `idle`; ValueError saying why it is not one."""
    ms = parse_duration_ms(text)
    if ms < 0:
        raise ValueError(
            "an infinite idle window would never confirm a topic idle; give a duration such as 7d"
        )
    return ms


@dataclass
class CleanupResult:
    dry_run: bool
    decisions: list[Decision]
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # chosen but kept at the last check
    snapshots: dict[str, str] = field(default_factory=dict)  # topic -> its evidence record
    pre_change_snapshot: str | None = None  # restorable metadata of what was deleted
    cluster_id: str | None = None
    state_file: str | None = None
    warnings: list[str] = field(default_factory=list)
    # What the run covered: the catalog's scope in one line (None: every topic).
    scope: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def to_delete(self) -> list[Decision]:
        return [d for d in self.decisions if d.delete]

    def action(self, d: Decision) -> str:
        """What this run does or did with the topic of `d`, for the CLI's table and the
        Dagster job's alike: keep, keep (active), candidate, delete, idle (over budget),
        deleted, kept at last check (it moved after its evidence was read) or FAILED."""
        if d.topic in self.deleted:
            return "deleted"
        if d.topic in self.skipped:
            return "kept at last check"
        if d.topic in self.failed:
            return "FAILED"
        if d.status == IDLE:
            return "delete" if d.delete else "idle (over budget)"
        return _ACTIONS.get(d.status, d.status)

    def to_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "cluster_id": self.cluster_id,
            "decisions": [d.to_dict() for d in self.decisions],
            "candidates": [d.topic for d in self.decisions if d.status == "candidate"],
            "confirmed_idle": [d.topic for d in self.decisions if d.confirmed],
            "to_delete": [d.topic for d in self.to_delete],
            "deleted": self.deleted,
            "failed": self.failed,
            "skipped": self.skipped,
            "snapshots": self.snapshots,
            "pre_change_snapshot": self.pre_change_snapshot,
            "state_file": self.state_file,
            "warnings": self.warnings,
            "invisible_readers": INVISIBLE_READERS,
            "scope": self.scope,
        }


def gather_evidence(
    gw: KafkaGateway, catalog: Catalog, rules: CleanupRules, brokers=None
) -> tuple[list[TopicEvidence], dict[str, TopicState], set[str]]:
    """Evidence for every topic matching a pattern: per-partition offsets, topic id, size,
    groups (and the newest record timestamp, for the report only). Also returns each such
    topic's metadata, for its snapshot, and the names of every topic that exists."""
    if brokers is None:
        _cid, _controller, brokers = gw.brokers()
    meta = gw.topics(None)
    # A topic outside the catalog's scope is never a candidate, whatever its name.
    names = sorted(n for n in meta if matching_pattern(n, rules.patterns) and catalog.manages(n))
    if not names:
        return [], {}, set(meta)
    led = [(n, p.partition) for n in names for p in meta[n].partitions if p.leader is not None]
    ranges, stamps = partition_activity(gw, led, partition_leaders(meta))
    sizes = topic_sizes(
        log_dirs(
            gw,
            [b.node_id for b in brokers],
            {n: [p.partition for p in meta[n].partitions] for n in names},
        )
    )
    # The same lag as `lag` and `consumer-groups`: transactional topics end at their last
    # stable offset.
    summaries = group_summaries(
        gw, transactional=[t.name for t in catalog.topics if t.transactional]
    )
    evidence = []
    for n in names:
        parts = meta[n].partitions
        offline = sum(1 for p in parts if p.leader is None)
        newest = [stamps.get((n, p.partition), (None, None))[1] for p in parts]
        spans = [ranges.get((n, p.partition), (None, None)) for p in parts]
        s_off = [start for start, _end in spans]
        e_off = [end for _start, end in spans]
        complete = (
            not offline
            and [p.partition for p in parts] == list(range(len(parts)))
            and all(isinstance(o, int) and o >= 0 for o in s_off + e_off)
        )
        spec = catalog.get(n)
        evidence.append(
            TopicEvidence(
                name=n,
                internal=is_internal_topic(n, meta[n].internal),
                in_catalog=spec is not None and spec.name == n,
                partitions=len(parts),
                replication_factor=meta[n].replication_factor,
                bytes_on_disk=sizes.get(n, 0),
                records=sum(e - s for s, e in zip(s_off, e_off, strict=True)) if complete else None,
                newest_record_ms=max((t for t in newest if t is not None), default=None),
                offline_partitions=offline,
                groups=_groups_on(n, summaries),
                topic_id=meta[n].topic_id,
                end_offsets=tuple(e_off) if complete else None,
                start_offsets=tuple(s_off) if complete else None,
            )
        )
    return evidence, {n: meta[n] for n in names}, set(meta)


def _groups_on(topic: str, summaries: list[GroupSummary]) -> tuple[GroupEvidence, ...]:
    """The groups with a committed offset or a member on `topic`."""
    groups = []
    for s in summaries:
        info = s.info
        committed = {p: o for (t, p), o in (info.committed if info else {}).items() if t == topic}
        members = (
            sum(1 for m in (info.members or ()) if topic in m.assignment or topic in m.subscription)
            if info
            else 0
        )
        if committed or members:
            lag = next((t.lag for t in s.topics if t.topic == topic), None)
            described = info is not None and info.members is not None
            groups.append(GroupEvidence(s.group_id, s.state, members, committed, lag, described))
    return tuple(groups)


def write_snapshot(
    directory: Path,
    cluster_id: str,
    topic: TopicState,
    overrides: dict[str, str],
    ranges: dict,
    decision: Decision,
) -> Path:
    """One JSON file per topic, written atomically and synced before the topic is deleted.
    An offline partition's leader is recorded as -1, as Kafka reports it."""
    name = topic.name
    doc = {
        "format": "ecap-ops/cleanup-snapshot/v1",
        "taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cluster_id": cluster_id,
        "topic": name,
        "topic_id": topic.topic_id,
        "partitions": [
            {
                "partition": p.partition,
                "leader": p.leader if p.leader is not None else -1,
                "replicas": list(p.replicas),
                "isr": list(p.isr),
                "start_offset": ranges.get((name, p.partition), (None, None))[0],
                "end_offset": ranges.get((name, p.partition), (None, None))[1],
            }
            for p in topic.partitions
        ],
        "replication_factor": topic.replication_factor,
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


def _delete_confirmed(
    gw: KafkaGateway,
    catalog: Catalog,
    decisions: list[Decision],
    metas: dict[str, TopicState],
    cluster_id: str,
    directory: Path,
    result: CleanupResult,
) -> None:
    """Delete the topics chosen for deletion: the one place a test topic is deleted.

    A last look first: a topic whose end offsets or topic id changed since its evidence was
    read is kept (recorded in `result.skipped`). Then each topic's evidence record (metadata,
    offsets, the reasons it was judged idle) is written to `directory`; only a topic whose
    record is on disk is deleted, on the one write path (which snapshots it again in the
    restorable DR format first)."""
    chosen = [d for d in decisions if d.delete]
    if not chosen:
        return
    names = [d.topic for d in chosen]
    now_meta = gw.topics(names)
    parts = [(n, p.partition) for n in names if n in now_meta for p in now_meta[n].partitions]
    ends_now = gw.offsets(parts, "latest")
    overrides = gw.topic_overrides([n for n in names if n in now_meta])
    go = []
    for d in chosen:
        cur = now_meta.get(d.topic)
        if cur is None:
            result.skipped[d.topic] = "no longer exists"
            continue
        if cur.topic_id != d.evidence.get("topic_id"):
            result.skipped[d.topic] = (
                "re-created since the evidence was read (topic id changed); kept"
            )
            continue
        seen = d.evidence.get("end_offsets") or []
        now = [ends_now.get((d.topic, i)) for i in range(cur.partition_count)]
        if now != seen:
            result.skipped[d.topic] = (
                f"end offsets changed since the evidence was read ({sum(seen)} -> "
                f"{sum(o or 0 for o in now)}); kept"
            )
            continue
        starts = d.evidence.get("start_offsets") or []
        ranges = {
            (d.topic, i): (starts[i] if i < len(starts) else None, e) for i, e in enumerate(now)
        }
        try:
            path = write_snapshot(
                directory,
                cluster_id,
                metas[d.topic],
                overrides.get(d.topic, ({}, {}))[0],
                ranges,
                d,
            )
        except OSError as exc:
            result.failed[d.topic] = (
                f"snapshot could not be written to {directory}: {exc.strerror or exc}; not deleted"
            )
            continue
        result.snapshots[d.topic] = str(path)
        go.append(d.topic)
    _delete_on_write_path(gw, catalog, go, result)


def _delete_on_write_path(
    gw: KafkaGateway, catalog: Catalog, go: list[str], result: CleanupResult
) -> None:
    if not go:
        return
    # The deletion itself runs on the one write path: refusals (internal, catalog, canary),
    # a restorable pre-change snapshot, the wait until the topics are gone, verification
    # and the change log.
    from ecap_ops.core.changes import make_delete_plan
    from ecap_ops.services.write import execute_plan

    try:
        state = gw.read_cluster_state(go, with_data=False)
        plan = make_delete_plan(catalog, state, go)
        for r in plan.refusals:
            result.failed[r.topic] = f"refused: {r.message}"
        if not plan.actions:
            return
        write = execute_plan(gw, plan, "cleanup-test-topics")
    except EcapOpsError as exc:
        for n in go:
            result.failed.setdefault(n, str(exc))
        return
    result.pre_change_snapshot = write.snapshot_path
    for step in write.steps:
        if step.ok:
            result.deleted.append(step.topic)
            log.info(
                "deleted idle test topic %s (evidence %s)", step.topic, result.snapshots[step.topic]
            )
        else:
            result.failed[step.topic] = step.detail
    for problem in write.verify_problems:
        result.warnings.append(f"verify: {problem}")


def cleanup_test_topics(
    gw: KafkaGateway,
    catalog: Catalog,
    rules: CleanupRules,
    execute: bool = False,
    snapshots: Path | None = None,
    now_ms: int | None = None,
    state: Path | None = None,
) -> CleanupResult:
    """Observe the test topics, judge them against the recorded history, record this run's
    observations and, with `execute`, delete the confirmed-idle ones within the budget."""
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
        rules.idle_ms,
    )
    # The cluster first: a broker that is down fails the run before anything is written.
    cluster_id, _controller, brokers = gw.brokers()
    path = state or state_path()
    warnings: list[str] = []
    with _history_lock(path, warnings):
        clusters, problem = load_history(path)
        if problem:
            warnings.append(problem)
            log.warning("%s", problem)
        evidence, metas, present = gather_evidence(gw, catalog, rules, brokers)
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        previous = clusters.pop(cluster_id, {})
        decisions, updated = judge(evidence, rules, now, previous)
        clusters[cluster_id] = merge_history(previous, updated, present)
        try:
            save_history(path, history_to_json(clusters, now))
        except OSError as exc:
            msg = (
                f"the cleanup observation history could not be written to {path} "
                f"({exc.strerror or exc}): this run's observations are lost, so confirming "
                "idle topics is delayed; set ECAP_STATE_DIR to a writable directory"
            )
            warnings.append(msg)
            log.warning("%s", msg)
        result = CleanupResult(
            dry_run=not execute,
            decisions=decisions,
            cluster_id=cluster_id,
            state_file=str(path),
            warnings=warnings,
            scope=f"scope: {catalog.scope.describe()}" if catalog.scope.declared else None,
        )
        if execute:
            _delete_confirmed(
                gw, catalog, decisions, metas, cluster_id, snapshots or snapshot_dir(), result
            )
    return result
