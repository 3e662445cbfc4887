"""The evidence the one write path leaves: a snapshot of what a change deletes or
overwrites, taken before it (`take_pre_change_snapshot`), and the change log, a JSON line
per step after it (`log_changes`). Used only by `ecap_ops.services.write`."""

import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import ecap_ops
from ecap_ops.core.plan import ActionKind, Plan
from ecap_ops.gateway import KafkaGateway
from ecap_ops.settings import snapshot_dir, state_dir

log = logging.getLogger(__name__)

PRE_CHANGE_KEEP = 200
CHANGE_LOG_ENV = "ECAP_CHANGE_LOG"


# -- where the evidence goes -------------------------------------------------------------


def change_log_path(env: dict[str, str] | None = None) -> Path:
    """ECAP_CHANGE_LOG, else kafka_management.log in the state directory."""
    env = os.environ if env is None else env
    if env.get(CHANGE_LOG_ENV):
        return Path(env[CHANGE_LOG_ENV]).expanduser()
    return state_dir(env) / "kafka_management.log"


def pre_change_dir(env: dict[str, str] | None = None) -> Path:
    return snapshot_dir(env) / "pre-change"


# -- the pre-change snapshot -------------------------------------------------------------


def _touched_topics(plan: Plan) -> list[str]:
    return sorted(
        {
            a.topic
            for a in plan.actions
            if a.kind in (ActionKind.ALTER_CONFIGS, ActionKind.DELETE_TOPIC)
        }
    )


def _overwrites_access(plan: Plan) -> bool:
    """Access actions that remove or replace something: deleted bindings, replaced SCRAM
    credentials, quotas changed or removed."""
    return any(
        a.kind is ActionKind.DELETE_ACLS
        or (a.kind is ActionKind.UPSERT_USER and a.warnings)
        or (
            a.kind is ActionKind.ALTER_QUOTAS
            and any(old is not None for _k, old, _n in a.quota_changes)
        )
        for a in plan.actions
    )


def needs_snapshot(plan: Plan) -> bool:
    return _overwrites_access(plan) or any(
        a.kind in (ActionKind.ALTER_CONFIGS, ActionKind.DELETE_TOPIC, ActionKind.WRITE_OFFSETS)
        for a in plan.actions
    )


def take_pre_change_snapshot(
    gw: KafkaGateway, plan: Plan, purpose: str, directory: Path | None = None
) -> Path:
    """Snapshot the topics this plan deletes or overwrites and the committed offsets of the
    groups it overwrites or that read a deleted topic, in the DR snapshot format."""
    from ecap_ops.core.snapshot import build_snapshot, group_entry, topic_entry
    from ecap_ops.gateway.groups import read_groups
    from ecap_ops.services.snapshot_files import write_snapshot_document

    started = time.monotonic()
    names = _touched_topics(plan)
    state = gw.read_cluster_state(names, with_data=False)
    topics = []
    for n in names:
        t = state.topics.get(n)
        if t is None:
            continue
        topics.append(
            topic_entry(
                n,
                t.partition_count,
                t.replication_factor,
                [list(p.replicas) for p in t.partitions],
                dict(t.overrides),
                t.topic_id,
            )
        )
    groups: list[dict] = []
    deleted = {a.topic for a in plan.actions if a.kind is ActionKind.DELETE_TOPIC}
    written = {a.group for a in plan.actions if a.kind is ActionKind.WRITE_OFFSETS}
    if deleted or written:
        read = read_groups(gw)
        now_ms = int(time.time() * 1000)
        for g in sorted(read.listings):
            group = read.group(g)
            if g not in written and not any(t in deleted for t, _p in group.committed):
                continue
            entries = [
                {"topic": t, "partition": p, "offset": o, "end_offset": None}
                for (t, p), o in sorted(group.committed.items())
            ]
            members = None if group.members is None else len(group.members)
            groups.append(
                group_entry(g, group.state, group.protocol_type, members, entries, now_ms)
            )
    acls: list[dict] = []
    users: list[dict] = []
    quotas: list[dict] | None = None
    complete = {"topic_configs": True, "group_offsets": True}
    if _overwrites_access(plan):  # the whole access state: it is small and restore needs it whole
        from ecap_ops.gateway.snapshot import read_acls, read_quota_entries, read_scram_users

        acls, complete["acls"], _ = read_acls(gw)
        users, complete["scram_users"], _ = read_scram_users(gw)
        quotas, complete["quotas"], _ = read_quota_entries(gw)
    now = datetime.now(UTC)
    doc = build_snapshot(
        tool_version=ecap_ops.__version__,
        cluster_id=state.cluster_id,
        broker_count=state.broker_count,
        taken_at=now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        taken_at_ms=int(now.timestamp() * 1000),
        duration_ms=int((time.monotonic() - started) * 1000),
        catalog_env=plan.env,
        catalog_digest=plan.catalog_digest,
        topics=topics,
        groups=groups,
        acls=acls,
        scram_users=users,
        quotas=quotas,
        complete=complete,
        notes=[
            f"pre-change snapshot taken by {purpose}: only the {len(topics)} topic(s) and {len(groups)} group(s) "
            "it deletes or overwrites"
        ],
    )
    directory = directory or pre_change_dir()
    return write_snapshot_document(doc, directory, keep=PRE_CHANGE_KEEP)


def log_changes(purpose: str, cluster_id: str, steps: list, snapshot_path: str | None) -> None:
    """Append every step to the change log as a JSON line (the setup guide's
    kafka_management.log). A log that cannot be written is warned about, never fatal."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    lines = [
        json.dumps(
            {
                "at": now,
                "purpose": purpose,
                "cluster_id": cluster_id,
                "step": s.step,
                "subject": s.topic,
                "ok": s.ok,
                "detail": s.detail,
                "pre_change_snapshot": snapshot_path,
            },
            sort_keys=True,
        )
        for s in steps
    ]
    for s in steps:
        log.info("%s: %s %s: %s", purpose, s.step, s.topic, s.detail)
    if not lines:
        return
    path = change_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    except OSError as exc:
        log.warning("the change log %s could not be written: %s", path, exc.strerror)
