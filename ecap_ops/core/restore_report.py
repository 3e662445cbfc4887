"""How a restore plan reads for people, and the check that a restore did what it planned.
Pure, like the plan itself (`ecap_ops.core.restore`)."""

from dataclasses import dataclass

from ecap_ops.catalog.kafka_configs import canonical_value
from ecap_ops.core.restore import RestorePlan
from ecap_ops.core.snapshot import Snapshot
from ecap_ops.core.state import ClusterState


def render_restore_plan(plan: RestorePlan, list_in_sync: int = 20) -> str:
    """The restore plan as people read it, in the order it is applied."""
    o = plan.options
    lines = [
        f"Restore plan: snapshot {plan.snapshot_checksum[:12]} of cluster {plan.source_cluster_id} (taken {plan.snapshot_taken_at}) "
        f"-> cluster {plan.target_cluster_id} ({plan.target_brokers} live broker(s), catalog env {plan.env})"
        + (f", topics created as {o.name_prefix}<name>" if o.name_prefix else "")
    ]
    lines.append(
        "  replication rule: catalog topics take the target catalog's replication; other topics min(snapshot, live brokers)"
        if o.replication_factor is None
        else f"  replication rule: {o.replication_factor} for every created topic, as asked"
    )
    for r in plan.refusals:
        lines.append(f"  ! refused: {r}")
    for c in plan.creates:
        cfg = ", ".join(f"{k}={v}" for k, v in sorted(c.configs.items()))
        lines.append(
            f"  + create topic {c.name}: {c.partitions} partitions, replication {c.replication_factor} ({c.replication_reason})"
            + (f", {cfg}" if cfg else "")
        )
        for n in c.notes:
            lines.append(f"      note: {n}")
    for a in plan.alters:
        lines.append(
            f"  ~ set configs of {a.name}: "
            + "; ".join(
                f"{k}: {a.before.get(k) or '(default)'} -> {v}"
                for k, v in sorted(a.changes.items())
            )
        )
    lines += _access_lines(plan)
    for g in plan.groups:
        if g.writes:
            lines.append(f"  > write offsets of group {g.group_id}: {len(g.writes)} partition(s)")
            for w in g.writes:
                lines.append(
                    f"      {w.topic}[{w.partition}]: {'(none)' if w.current is None else f'{w.current:,}'} -> {w.offset:,}"
                    + (f"  ({w.note})" if w.note else "")
                )
        for s in g.skipped:
            lines.append(f"      skipped {g.group_id} {s}")
    for c in plan.conflicts:
        lines.append(f"  ! conflict ({c.code}) {c.subject}: {c.message}")
    if plan.in_sync:
        shown = plan.in_sync[:list_in_sync]
        more = len(plan.in_sync) - len(shown)
        lines.append(
            f"  = already as in the snapshot: {', '.join(shown)}"
            + (f" and {more} more" if more else "")
        )
    if plan.groups_in_sync:
        lines.append(
            f"  = group offsets already as in the snapshot: {', '.join(plan.groups_in_sync[:list_in_sync])}"
            + (
                f" and {len(plan.groups_in_sync) - list_in_sync} more"
                if len(plan.groups_in_sync) > list_in_sync
                else ""
            )
        )
    for n in plan.notes:
        lines.append(f"  note: {n}")
    for n in plan.not_restored:
        lines.append(f"  not restored: {n}")
    s = plan.summary()
    lines.append(
        f"Restore: {s['create']} topic(s) to create, {s['alter_configs']} to set configs, {s['offsets_to_write']} offset(s) in "
        f"{s['groups_to_write']} group(s) to write, {s['conflicts']} conflict(s) left alone, {s['in_sync']} topic(s) already match."
    )
    if plan.access_planned:
        lines.append(
            f"Access: {s['acls_to_create']} ACL binding(s) to create, {s['users_to_create']} SCRAM "
            f"credential(s) to create, {s['quotas_to_set']} quota entit(ies) to set, "
            f"{s['users_left_out']} user(s) left out (no password supplied)."
        )
    if plan.blocked:
        lines.append("Refused: nothing will be changed.")
    elif not plan.has_changes:
        lines.append("Nothing to restore: the cluster already matches the snapshot.")
    return "\n".join(lines)


MAX_BINDINGS_SHOWN = 10


def _quota(v: float | None) -> str:
    if v is None:
        return "(none)"
    return str(int(v)) if float(v).is_integer() else str(v)


def _access_lines(plan: RestorePlan) -> list[str]:
    """The access part of a restore plan: users, bindings, quotas, what is already there.
    Password sources are named (`env NAME`), never a password."""
    from ecap_ops.catalog.access import entity_label

    lines = []
    for u in plan.users:
        lines.append(
            f"  + create SCRAM user {u.name}: {u.mechanism}, {u.iterations} iterations, password "
            f"from {u.password_source} ({u.origin})"
            + ("  [replaces its credential]" if u.replaces else "")
        )
    by_principal: dict[str, list] = {}
    for b in plan.acl_creates:
        by_principal.setdefault(b.principal, []).append(b)
    for principal, bindings in sorted(by_principal.items()):
        lines.append(f"  + create {len(bindings)} ACL binding(s) of {principal}")
        lines += [f"      {b.describe()}" for b in bindings[:MAX_BINDINGS_SHOWN]]
        if len(bindings) > MAX_BINDINGS_SHOWN:
            lines.append(f"      ... and {len(bindings) - MAX_BINDINGS_SHOWN} more binding(s)")
    for q in plan.quotas:
        lines.append(
            f"  ~ set quotas of {entity_label(q.entity)}: "
            + "; ".join(f"{k}: {_quota(old)} -> {_quota(new)}" for k, old, new in q.changes)
        )
    sync = plan.access_in_sync
    if plan.access_planned and any(sync.values()):
        lines.append(
            f"  = access already as in the snapshot: {sync.get('bindings', 0)} ACL binding(s), "
            f"{sync.get('users', 0)} SCRAM credential(s), {sync.get('quotas', 0)} quota entit(ies)"
        )
    return lines


# -- the DR drill's comparison ---------------------------------------------------------


@dataclass(frozen=True)
class TopicCheck:
    topic: str  # the snapshot's name
    restored_as: str
    ok: bool
    problems: tuple[str, ...] = ()


def check_restored(
    plan: RestorePlan, snapshot: Snapshot, observed: ClusterState
) -> list[TopicCheck]:
    """Topic by topic: does what the restore created match the snapshot (partitions, replication, overrides)?"""
    checks: list[TopicCheck] = []
    topics = snapshot.topics
    for c in plan.creates:
        t = topics[c.source_name]
        got = observed.topics.get(c.name)
        if got is None:
            checks.append(TopicCheck(c.source_name, c.name, False, ("was not created",)))
            continue
        problems = []
        if got.partition_count != t["partitions"]:
            problems.append(
                f"partitions: snapshot {t['partitions']}, restored {got.partition_count}"
            )
        if got.replication_factor != c.replication_factor:
            problems.append(
                f"replication: planned {c.replication_factor}, restored {got.replication_factor}"
            )
        for key in sorted(set(c.configs) | set(got.overrides)):
            if canonical_value(key, c.configs.get(key)) != canonical_value(
                key, got.overrides.get(key)
            ):
                problems.append(
                    f"{key}: snapshot {c.configs.get(key, '(default)')}, restored {got.overrides.get(key, '(default)')}"
                )
        checks.append(TopicCheck(c.source_name, c.name, not problems, tuple(problems)))
    for k in plan.conflicts:
        if k.subject in topics:
            checks.append(
                TopicCheck(
                    k.subject,
                    plan.options.name_prefix + k.subject,
                    False,
                    (f"{k.code}: {k.message}",),
                )
            )
    return sorted(checks, key=lambda x: x.topic)


def access_differences(expected, observed) -> list[str]:
    """What the target's access (a core.access.AccessState) lacks of a snapshot's (a
    core.snapshot_access.SnapshotAccess): bindings missing, quotas with other values.
    Bindings and quotas the target has beyond the snapshot's are not differences."""
    from ecap_ops.catalog.access import entity_label

    problems = []
    if expected.acls_recorded and observed.authorizer:
        missing = sorted(expected.bindings - observed.acls)
        if missing:
            problems.append(
                f"{len(missing)} of the snapshot's {len(expected.bindings)} ACL binding(s) are "
                f"not on the cluster, e.g. {missing[0].describe()[:160]}"
            )
    if expected.quotas_recorded:
        for entity, values in sorted(expected.quotas.items()):
            have = observed.quotas.get(entity, {})
            wrong = [(k, v) for k, v in sorted(values.items()) if have.get(k) != v]
            if wrong:
                k, v = wrong[0]
                problems.append(
                    f"quota {entity_label(entity)}: {k} is {_quota(have.get(k))}, the snapshot has {_quota(v)}"
                )
    return problems
