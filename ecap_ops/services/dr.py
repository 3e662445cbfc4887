"""Disaster recovery: take and keep snapshots, plan and apply a restore, run a DR drill.

One function per action, called by both the CLI and the Dagster jobs.
"""

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import ecap_ops
from ecap_ops.catalog.model import Catalog
from ecap_ops.core.integrity import signing_key_from_env
from ecap_ops.core.plan import Plan
from ecap_ops.core.restore import (
    PasswordSupply,
    RestoreOptions,
    RestorePlan,
    data_matters,
    make_restore_plan,
    restore_actions,
    undo_access_actions,
)
from ecap_ops.core.restore_report import (
    TopicCheck,
    access_differences,
    check_restored,
    render_restore_plan,
)
from ecap_ops.core.snapshot import (
    Snapshot,
    build_snapshot,
    diff_snapshots,
    serialize,
    sign_snapshot,
)
from ecap_ops.core.state import ClusterState, partition_leaders
from ecap_ops.errors import ConfigError, KafkaRequestFailed, PlanRefused, SnapshotInvalid
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.snapshot import read_group_status, read_snapshot_inputs
from ecap_ops.services.snapshot_files import (  # re-exported: callers import them from here
    DEFAULT_KEEP,
    SNAPSHOT_FILE,
    latest_snapshot,
    list_snapshots,
    load_snapshot,
    prune,
    snapshot_keep,
    snapshot_path_in,
    write_atomically,
    write_snapshot_document,
)
from ecap_ops.services.write import StepResult, WriteResult, execute_plan
from ecap_ops.settings import KafkaSettings, snapshot_dir

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_KEEP",
    "SNAPSHOT_FILE",
    "snapshot_keep",
    "list_snapshots",
    "latest_snapshot",
    "write_atomically",
    "prune",
    "snapshot_path_in",
    "write_snapshot_document",
    "load_snapshot",
    "snapshot_dir",
]

# -- taking a snapshot ---------------------------------------------------------------


@dataclass
class SnapshotResult:
    path: Path
    snapshot: Snapshot
    pruned: list[Path] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)
    size_bytes: int = 0

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "pruned": [str(p) for p in self.pruned],
            "requests": dict(self.requests),
            **self.snapshot.summary(),
        }


def capture_snapshot(gw: KafkaGateway, catalog: Catalog) -> Snapshot:
    """Read the cluster and build a sealed snapshot in memory."""
    started = time.monotonic()
    before = dict(gw.requests)
    now = datetime.now(UTC)
    inputs = read_snapshot_inputs(gw)
    requests = {k: v - before.get(k, 0) for k, v in gw.requests.items() if v - before.get(k, 0)}
    doc = build_snapshot(
        tool_version=ecap_ops.__version__,
        cluster_id=inputs.cluster_id,
        broker_count=inputs.broker_count,
        taken_at=now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        taken_at_ms=int(now.timestamp() * 1000),
        duration_ms=int((time.monotonic() - started) * 1000),
        catalog_env=catalog.env,
        catalog_digest=catalog.digest,
        topics=inputs.topics,
        groups=inputs.groups,
        acls=inputs.acls,
        scram_users=inputs.scram_users,
        complete=inputs.complete,
        notes=inputs.notes,
        requests=requests,
        quotas=inputs.quotas,
    )
    return Snapshot(doc, "new snapshot")


def take_snapshot(
    gw: KafkaGateway,
    catalog: Catalog,
    output: str | os.PathLike | None = None,
    directory: Path | None = None,
    keep: int | None = None,
) -> SnapshotResult:
    """Take a snapshot and write it atomically: to `output`, or into the snapshot directory
    (which then keeps the newest `keep`)."""
    key = signing_key_from_env()  # a bad key is refused before the cluster is read
    before = dict(gw.requests)
    snap = capture_snapshot(gw, catalog)
    if key is not None:
        snap = Snapshot(sign_snapshot(snap.doc, key), snap.source)
    text = serialize(snap.doc)
    if output is not None:
        path = Path(output)
        if path.is_dir():
            raise ConfigError(f"--output {path}: is a directory; give a file path")
        write_atomically(path, text)
        pruned: list[Path] = []
    else:
        directory = directory or snapshot_dir()
        path = snapshot_path_in(directory, snap.doc)
        write_atomically(path, text)
        pruned = prune(directory, keep or snapshot_keep())
    # Read it back: what is on disk must verify (and be the bytes just written).
    written = load_snapshot(path, written=text)
    requests = {k: v - before.get(k, 0) for k, v in gw.requests.items() if v - before.get(k, 0)}
    return SnapshotResult(path, written, pruned, requests, len(text.encode("utf-8")))


def previous_snapshot(directory: Path, exclude: Path) -> Snapshot | None:
    """The newest verifiable snapshot in the directory other than `exclude`, or None."""
    for p in reversed(list_snapshots(directory)):
        if p.resolve() == exclude.resolve():
            continue
        try:
            return load_snapshot(p)
        except SnapshotInvalid as exc:
            log.warning("skipping %s for the diff: %s", p, exc)
    return None


def diff_files(a: str | os.PathLike, b: str | os.PathLike):
    return diff_snapshots(load_snapshot(a), load_snapshot(b))


# -- restore ------------------------------------------------------------------------


def password_supplies(
    catalog: Catalog,
    password_env: dict[str, str] | None = None,
    password_file: dict[str, str] | None = None,
    *,
    env_origin: str = "--password-env",
    file_origin: str = "--password-file",
    environ: dict[str, str] | None = None,
) -> tuple[PasswordSupply, ...]:
    """Where each SCRAM user's password is read at restore time: the operator's
    `password_env` (user -> variable) and `password_file` (user -> path) first, else the
    catalog's `users.<name>.password_env|password_file`. Each source is tried now (the
    password is read and dropped at once) so the plan can say which cannot be read; the
    write path reads it again when it creates the user. Never returns a password."""
    from ecap_ops.services.write_access import PasswordUnavailable, read_password

    out: list[PasswordSupply] = []
    named: set[str] = set()

    def supply(user: str, source: str, origin: str, explicit: bool) -> PasswordSupply:
        try:
            read_password(source, environ)
            problem = None
        except PasswordUnavailable as exc:
            problem = str(exc)
        return PasswordSupply(user, source, origin, problem, explicit)

    for origin, kind, pairs in (
        (env_origin, "env", password_env or {}),
        (file_origin, "file", password_file or {}),
    ):
        for user, where in sorted(pairs.items()):
            if user in named:
                raise ConfigError(
                    f"{env_origin} and {file_origin} both name user {user[:60]!r}: give one source per user"
                )
            named.add(user)
            out.append(supply(user, f"{kind} {where}", origin, True))
    for u in catalog.access.users:
        if u.name not in named:
            out.append(supply(u.name, u.password.describe(), "catalog", False))
    return tuple(out)


def plan_restore(
    gw: KafkaGateway, catalog: Catalog, snapshot: Snapshot, options: RestoreOptions
) -> RestorePlan:
    """Read the target (its access too, unless `options.access` is off) and plan the
    restore; changes nothing."""
    target = gw.read_cluster_state(with_data=False)
    target = gw.with_data_presence(target, data_matters(snapshot, target, options))
    access = None
    if options.access:
        from ecap_ops.gateway.access import read_access

        access = read_access(gw)
    groups, ranges = None, None
    if options.include_offsets and not options.name_prefix:
        selected = set(options.topics) if options.topics else set(snapshot.topics)
        gids = [
            g
            for g, d in snapshot.groups.items()
            if any(o["topic"] in selected for o in d["offsets"])
        ]
        groups = read_group_status(gw, gids)
        parts = sorted(
            {
                (o["topic"], o["partition"])
                for g in gids
                for o in snapshot.groups[g]["offsets"]
                if o["topic"] in target.topics
                and o["partition"] < target.topics[o["topic"]].partition_count
            }
        )
        ranges = gw.offset_ranges(parts, partition_leaders(target.topics)) if parts else {}
    return make_restore_plan(snapshot, target, catalog, options, groups, ranges, access)


@dataclass
class RestoreResult:
    plan: RestorePlan
    executed: bool
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)
    pre_change_snapshot: str | None = None
    verify_problems: list[str] = field(default_factory=list)
    write: WriteResult | None = None

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps) and not self.verify_problems

    @property
    def created(self) -> list[str]:
        return [s.subject for s in self.steps if s.step == "create_topic" and s.ok]

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "executed": self.executed,
            "plan": self.plan.to_dict(),
            "steps": [asdict(s) for s in self.steps],
            "pre_change_snapshot": self.pre_change_snapshot,
            "verify_problems": list(self.verify_problems),
            "seconds": round(self.seconds, 3),
            "requests": dict(self.requests),
        }


def restore_write_plan(plan: RestorePlan, catalog: Catalog) -> Plan:
    """The restore plan as a plan of the one write path."""
    return Plan(
        cluster_id=plan.target_cluster_id,
        env=plan.env,
        catalog_digest=catalog.digest,
        actions=restore_actions(plan),
        refusals=(),
        unmanaged=(),
        in_sync=tuple(plan.in_sync),
        fingerprint=plan.snapshot_checksum[:16],
    )


def restore(
    gw: KafkaGateway,
    catalog: Catalog,
    snapshot: Snapshot,
    options: RestoreOptions,
    execute: bool = False,
    purpose: str = "restore",
) -> RestoreResult:
    """Plan the restore and, if `execute`, carry exactly it out on the one write path
    (broker validation and every password read first, a pre-change snapshot of what it
    overwrites, creates, configs, SCRAM users, ACL bindings, quotas, then group offsets,
    each group checked again for members just before; verified). Never deletes anything."""
    started = time.monotonic()
    plan = plan_restore(gw, catalog, snapshot, options)
    result = RestoreResult(plan, executed=False)
    if plan.blocked:
        raise PlanRefused(
            "the restore is refused, so nothing was changed:\n"
            + "\n".join(f"  - {r}" for r in plan.refusals)
        )
    if not execute or not plan.has_changes:
        result.seconds = time.monotonic() - started
        return result
    write = execute_plan(gw, restore_write_plan(plan, catalog), purpose)
    result.executed = write.executed
    result.write = write
    result.steps = write.steps
    result.pre_change_snapshot = write.snapshot_path
    result.verify_problems = write.verify_problems
    result.requests = write.requests
    result.seconds = time.monotonic() - started
    return result


# -- the DR drill --------------------------------------------------------------------


@dataclass
class DrillReport:
    snapshot_path: str
    snapshot_checksum: str
    target: str  # "same cluster, prefix drill." or the other cluster's id
    name_prefix: str
    passed: bool
    checks: list[TopicCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # drill-level failures
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    left_behind: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Recovery time: wall time from the start of the restore to its topics verified (the
    # figure a failover into this target would take), before the drill's cleanup.
    recovery_seconds: float | None = None
    plan_text: str = ""
    # The access check: {checked, ok, how, reason, problems, notes, bindings, quotas,
    # users_not_created, created, removed, left_behind}.
    access: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["failed_topics"] = [c.topic for c in self.checks if not c.ok]
        return d

    @property
    def access_ok(self) -> bool:
        return not self.access.get("checked") or bool(self.access.get("ok"))

    def render(self) -> str:
        head = "PASSED" if self.passed else "FAILED"
        lines = [
            f"DR drill {head}: snapshot {self.snapshot_checksum[:12]} ({self.snapshot_path}) restored onto {self.target}"
            + (f" as {self.name_prefix}<topic>" if self.name_prefix else "")
        ]
        for p in self.problems:
            lines.append(f"  ! {p}")
        ok = [c for c in self.checks if c.ok]
        for c in self.checks:
            if not c.ok:
                lines.append(f"  x {c.topic} (as {c.restored_as}): " + "; ".join(c.problems))
        lines.append(f"  {len(ok)}/{len(self.checks)} topic(s) match the snapshot")
        lines += _access_report_lines(self.access)
        lines.append(
            f"  created {len(self.created)}, removed {len(self.deleted)}"
            + (f", LEFT BEHIND: {', '.join(self.left_behind)}" if self.left_behind else "")
        )
        if self.recovery_seconds is not None:
            lines.append(
                f"  recovery time {self.recovery_seconds:.1f} s (restore start to verified, "
                f"{len(self.created)} topic(s))"
            )
        lines.append(f"  took {self.seconds:.1f} s")
        return "\n".join(lines)


def _access_report_lines(access: dict) -> list[str]:
    if not access:
        return []
    if not access.get("checked"):
        return [f"  access not checked: {access.get('reason', 'no reason recorded')}"]
    head = "match the snapshot" if access.get("ok") else "DIFFER from the snapshot"
    lines = [
        f"  access {head} ({access.get('how', '')}): {access.get('bindings', 0)} ACL binding(s), "
        f"{access.get('quotas', 0)} quota entit(ies)"
    ]
    lines += [f"    x {p}" for p in access.get("problems", [])]
    lines += [f"    note: {n}" for n in access.get("notes", [])]
    if access.get("users_not_created"):
        lines.append(
            f"    {access['users_not_created']} SCRAM user(s) not re-created by the drill: their "
            "passwords are supplied only at restore time (ecap-ops restore --password-env ...)"
        )
    if access.get("left_behind"):
        lines.append(f"    ACCESS LEFT BEHIND: {'; '.join(access['left_behind'])}")
    return lines


def run_drill(
    target_gw: KafkaGateway,
    catalog: Catalog,
    snapshot_path: str | os.PathLike,
    name_prefix: str = "drill.",
    topics: tuple[str, ...] = (),
    same_cluster: bool = True,
) -> DrillReport:
    """Restore a snapshot onto a scratch target (another cluster, or this one under a name
    prefix), check topic by topic that the result matches it, then delete exactly what it
    created. Offsets are never written."""
    started = time.monotonic()
    if same_cluster and not name_prefix:
        raise ConfigError(
            "DR drill on the same cluster: a name prefix (such as 'drill.') is required so the drill never touches real topics"
        )
    report = DrillReport(str(snapshot_path), "", "", name_prefix, passed=False)
    try:
        snap = load_snapshot(snapshot_path)
    except SnapshotInvalid as exc:
        report.problems.append(f"the snapshot does not verify: {exc}")
        report.seconds = time.monotonic() - started
        return report
    report.snapshot_checksum = snap.checksum
    for flag in ("topics", "topic_configs"):
        if not snap.complete.get(flag, False):
            report.problems.append(
                f"the snapshot is incomplete: its {flag.replace('_', ' ')} flag is false ({'; '.join(snap.doc['notes']) or 'no note'})"
            )
    # A snapshot taken during an earlier drill may list drill topics; never restore those.
    wanted = tuple(topics) or tuple(
        n for n in sorted(snap.topics) if not (name_prefix and n.startswith(name_prefix))
    )
    access_state = _drill_access_state(target_gw, snap, same_cluster, report)
    options = RestoreOptions(
        include_offsets=False,
        allow_other_cluster=True,
        topics=wanted,
        name_prefix=name_prefix,
        # Onto a scratch cluster with an authorizer the drill restores the snapshot's ACLs
        # and quotas (never its users: no password is supplied) and removes them after.
        access=access_state is not None and not same_cluster,
    )
    plan = plan_restore(target_gw, catalog, snap, options)
    report.target = f"cluster {plan.target_cluster_id}" + (
        " (the same cluster)" if same_cluster else ""
    )
    report.plan_text = render_restore_plan(plan)
    leftovers = [
        name_prefix + n
        for n in wanted
        if (name_prefix + n) in plan.in_sync or any(a.name == name_prefix + n for a in plan.alters)
    ]
    if leftovers:
        report.problems.append(
            f"the drill target is not clean: {', '.join(leftovers[:10])} already exist(s) (left from an earlier drill?); "
            "the drill did not touch them. Remove them (ecap-ops delete-topic) or use another prefix."
        )
    if plan.blocked:
        report.problems += plan.refusals
    if access_state is not None and same_cluster:
        _validate_access_in_place(target_gw, snap, access_state, report)
    if not plan.blocked and not leftovers and plan.creates:
        _restore_check_and_clean(target_gw, catalog, snap, options, plan, report)
    else:
        # Nothing was created: report the conflicts, topic by topic.
        planned = {c.name for c in plan.creates}
        report.checks = [
            c
            for c in check_restored(plan, snap, ClusterState(plan.target_cluster_id, None, (), {}))
            if c.restored_as not in planned
        ]
    if not plan.creates and not plan.conflicts and not report.problems:
        report.problems.append(
            "the drill restored nothing: the snapshot (after the topic filter) has no topics"
        )
    report.passed = (
        not report.problems
        and bool(report.checks)
        and all(c.ok for c in report.checks)
        and not report.left_behind
        and report.access_ok
    )
    report.seconds = time.monotonic() - started
    return report


def _restore_check_and_clean(
    gw: KafkaGateway,
    catalog: Catalog,
    snap: Snapshot,
    options: RestoreOptions,
    plan: RestorePlan,
    report: DrillReport,
) -> None:
    """The drill's restore (on the one write path), its topic-by-topic check, its access
    check, and the removal of exactly what it created, whatever happened in between."""
    result = None
    try:
        began = time.monotonic()
        result = restore(gw, catalog, snap, options, execute=True, purpose="dr-drill")
        report.created = result.created
        report.problems += [f"{s.step} {s.subject}: {s.detail}" for s in result.steps if not s.ok]
        observed = gw.read_cluster_state([c.name for c in plan.creates], with_data=False)
        report.checks = check_restored(plan, snap, observed)
        report.recovery_seconds = round(time.monotonic() - began, 3)
        if options.access:
            _check_restored_access(gw, snap, result, report)
    except Exception as exc:  # report, then clean up below
        report.problems.append(f"restoring failed: {exc}")
    finally:
        if options.access:
            _remove_created_access(gw, result, report)
        report.deleted, report.left_behind = _remove_created(gw, catalog, report.created)


# -- the drill's access check -----------------------------------------------------------


def _drill_access_state(gw: KafkaGateway, snap: Snapshot, same_cluster: bool, report):
    """The target's access when the drill checks it; None (with the reason on the report)
    when it does not: a cluster without an authorizer, or a snapshot without ACLs."""
    from ecap_ops.core.access import AccessState
    from ecap_ops.core.snapshot_access import snapshot_access
    from ecap_ops.gateway.access import read_access

    sa = snapshot_access(snap.doc)
    report.access = {
        "checked": False,
        "bindings": len(sa.bindings),
        "quotas": len(sa.quotas),
        "users_not_created": len(sa.users),
        "problems": [],
        "notes": [],
    }
    try:
        state: AccessState = read_access(gw)
    except Exception as exc:  # the topic part of the drill still runs
        report.access["reason"] = f"the target's access could not be read ({exc})"
        report.problems.append(f"access: {report.access['reason']}")
        return None
    if not state.authorizer:
        report.access["reason"] = (
            "the target cluster runs no authorizer, so it can neither hold nor enforce ACLs; "
            "restore onto a secured cluster (docs/security.md) to check access"
        )
        return None
    if not sa.acls_recorded:
        report.access["reason"] = (
            "the snapshot did not record ACLs ("
            + ("; ".join(n for n in snap.doc["notes"] if "ACL" in n) or "no note")
            + ")"
        )
        return None
    return state


def _validate_access_in_place(gw: KafkaGateway, snap: Snapshot, state, report) -> None:
    """The same cluster: nothing is created twice. Every binding of the snapshot is checked
    against Kafka's enums and its quotas by the brokers (validate-only); what differs from
    the cluster today is noted (a restore would re-create it), not failed."""
    from ecap_ops.core.plan import Action, ActionKind
    from ecap_ops.core.snapshot_access import snapshot_access
    from ecap_ops.services.write_access import validate_access

    sa = snapshot_access(snap.doc)
    actions = []
    if sa.bindings:
        actions.append(Action(ActionKind.CREATE_ACLS, "snapshot", acls=tuple(sorted(sa.bindings))))
    for entity, values in sorted(sa.quotas.items()):
        actions.append(
            Action(
                ActionKind.ALTER_QUOTAS,
                "quota",
                quota_entity=entity,
                quota_changes=tuple((k, None, v) for k, v in sorted(values.items())),
            )
        )
    report.access["how"] = "validated on the same cluster, not created twice"
    try:
        problems = validate_access(gw, actions) if actions else []
    except Exception as exc:
        problems = [f"the brokers could not validate the snapshot's quotas ({exc})"]
    report.access["problems"] = problems
    report.access["notes"] = [
        f"since the snapshot: {d} (ecap-ops restore would put it back)"
        for d in access_differences(sa, state)
    ]
    report.access["checked"] = True
    report.access["ok"] = not problems


def _check_restored_access(gw: KafkaGateway, snap: Snapshot, result, report) -> None:
    """Another cluster: the restored bindings and quotas, read back, match the snapshot's."""
    from ecap_ops.core.snapshot_access import snapshot_access
    from ecap_ops.gateway.access import read_access

    sa = snapshot_access(snap.doc)
    report.access["how"] = "restored onto the target and read back"
    report.access["problems"] = access_differences(sa, read_access(gw))
    report.access["checked"] = True
    report.access["ok"] = not report.access["problems"]


def _remove_created_access(gw: KafkaGateway, result, report) -> None:
    """Take back exactly the access the drill's restore created: delete its bindings, put
    its quotas back as they were; on the one write path."""
    if result is None or result.write is None:
        return
    done = {(s.step, s.subject) for s in result.write.steps if s.ok}
    undo = undo_access_actions(result.write.plan.actions, done)
    report.access["created"] = len(undo)
    if not undo:
        report.access["removed"] = 0
        return
    plan = Plan(result.plan.target_cluster_id, "", "", undo, (), (), (), "")
    try:
        cleanup = execute_plan(gw, plan, "dr-drill access cleanup")
        left = [f"{s.step} {s.subject}: {s.detail}" for s in cleanup.steps if not s.ok]
        left += cleanup.verify_problems
    except Exception as exc:
        left = [f"the drill could not remove the access it created ({exc})"]
    report.access["removed"] = len(undo) - len(left)
    report.access["left_behind"] = left
    if left:
        report.problems.append(
            "access the drill created could not all be removed: " + "; ".join(left)[:500]
        )


def _remove_created(
    gw: KafkaGateway, catalog: Catalog, created: list[str]
) -> tuple[list[str], list[str]]:
    """Delete exactly the topics the drill created, on the one write path; return
    (deleted, still there)."""
    from ecap_ops.core.changes import make_delete_plan

    if not created:
        return [], []
    try:
        state = gw.read_cluster_state(created, with_data=False)
        plan = make_delete_plan(
            catalog, state, sorted(n for n in created if n in state.topics), created_here=created
        )
        if plan.blocked:
            log.error("the drill may not delete its topics: %s", [r.message for r in plan.refusals])
            return [], sorted(created)
        result = execute_plan(gw, plan, "dr-drill cleanup")
    except Exception as exc:
        log.error("the drill could not delete its topics: %s", exc)
        return [], sorted(created)
    gone = {s.topic for s in result.steps if s.ok}
    return sorted(n for n in created if n in gone), sorted(n for n in created if n not in gone)


def drill_target(
    settings: KafkaSettings,
    target_bootstrap: str | None,
    target_cluster: str | None = None,
    client_id: str | None = None,
) -> tuple[KafkaGateway, bool]:
    """The drill's target gateway, and whether it is the snapshot's own cluster: a named
    cluster of the clusters file (a real standby), another bootstrap, or this cluster."""
    if target_cluster and target_bootstrap:
        raise ConfigError("give the drill's target once: a cluster name or a bootstrap, not both")
    if target_cluster:
        from ecap_ops.clusters import cluster_settings

        s = cluster_settings(target_cluster)
        return KafkaGateway(s.with_overrides(client_id=client_id) if client_id else s), False
    if not target_bootstrap:
        return KafkaGateway(settings), True
    return KafkaGateway(settings.with_overrides(bootstrap_servers=target_bootstrap)), False


def require_ok(result: RestoreResult) -> None:
    if not result.ok:
        raise KafkaRequestFailed(
            "the restore did not complete: "
            + "; ".join(f"{s.step} {s.subject}: {s.detail}" for s in result.steps if not s.ok)
            + "".join(f"; verify: {p}" for p in result.verify_problems)
            + (f". {result.write.recovery_hint()}" if result.write is not None else "")
        )
