"""The restore plan: a verified snapshot against the target cluster gives what to create,
what to set, which group offsets to write, and what is left alone (conflicts).

Rules (see the project's safety design): plan first; never delete anything; a topic that
exists with another partition count is a conflict and left alone; offsets are written only
into groups with no active members; restoring onto a cluster other than the snapshot's
source is refused unless asked for explicitly.

Replication: for a catalog topic it comes from the target's catalog overlay (dev 1, prod 3),
for any other topic it is min(the snapshot's replication, the target's live brokers),
unless the operator gives one. `min.insync.replicas` never exceeds the chosen replication.
Offsets: a committed offset beyond the target partition's end offset (its records are gone,
as on a freshly created topic) is clamped to that end offset; one before its start offset
is clamped to the start. Both are reported.

Access (when the target's access is read): the snapshot's ACL bindings the target lacks are
created (only on a cluster with an authorizer), its client quotas are set, and its SCRAM
users are re-created with passwords the operator supplies at restore time (never from the
snapshot, which holds none). A user whose password is not supplied is reported and left
out; a password source the operator named explicitly that cannot be read, or one naming a
user the snapshot does not have, refuses the whole restore. Bindings, users and quotas on
the target that the snapshot lacks are left alone; a user that exists with the snapshot's
mechanism and iterations keeps its password.
"""

from dataclasses import asdict, dataclass, field

from ecap_ops.catalog.access import AclBinding, entity_label
from ecap_ops.catalog.kafka_configs import canonical_value
from ecap_ops.catalog.model import Catalog
from ecap_ops.core.access import AccessState
from ecap_ops.core.plan import Action, ActionKind, ConfigChange, destructive_reason
from ecap_ops.core.snapshot import Snapshot
from ecap_ops.core.snapshot_access import snapshot_access
from ecap_ops.core.state import ClusterState

MAX_TOPIC_NAME = 249
EMPTY_GROUP_STATES = ("Empty", "Dead", "")


@dataclass(frozen=True)
class RestoreOptions:
    include_offsets: bool = False
    allow_other_cluster: bool = False
    topics: tuple[str, ...] = ()  # restore only these (snapshot names); empty: all
    name_prefix: str = ""  # create each topic as <prefix><name> (the DR drill's "drill.")
    replication_factor: int | None = None  # force one replication for every created topic
    # Topics (target names, or "*") whose destructive config changes (a retention decrease
    # or a cleanup.policy change on a topic with data) the operator accepts, as for apply.
    acknowledge_destructive: frozenset[str] = frozenset()
    access: bool = True  # restore ACLs, quotas and SCRAM users too (when the target's is read)
    passwords: tuple["PasswordSupply", ...] = ()  # where each user's password is read


@dataclass(frozen=True)
class PasswordSupply:
    """Where a SCRAM user's password is read at restore time; never the password."""

    user: str
    source: str  # "env NAME" or "file PATH" (services.write_access.read_password)
    origin: str  # --password-env, --password-file, password_env (Dagster), catalog
    problem: str | None = None  # why it cannot be read now (says nothing of its value)
    explicit: bool = True  # named by the operator (a problem refuses); False: the catalog's


@dataclass(frozen=True)
class UserRestore:
    name: str
    mechanism: str
    iterations: int
    password_source: str
    origin: str
    replaces: bool = False  # the user has this mechanism with other iterations


@dataclass(frozen=True)
class QuotaRestore:
    entity: tuple[tuple[str, str], ...]
    changes: tuple[tuple[str, float | None, float], ...]  # (key, target's value, snapshot's)


@dataclass(frozen=True)
class GroupStatus:
    """A consumer group on the target: its state, live members and committed offsets."""

    group_id: str
    state: str | None
    members: int | None
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicCreate:
    name: str  # on the target
    source_name: str  # in the snapshot
    partitions: int
    replication_factor: int
    replication_reason: str
    configs: dict[str, str]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TopicAlter:
    name: str
    changes: dict[str, str]  # key -> value to set (the snapshot's)
    before: dict[str, str | None]


@dataclass(frozen=True)
class Conflict:
    subject: str  # a topic or a group
    code: str  # partition_mismatch, config_missing, destructive_config, too_few_brokers, name_too_long, group_active
    message: str


@dataclass(frozen=True)
class OffsetWrite:
    topic: str
    partition: int
    offset: int  # what will be written
    snapshot_offset: int
    current: int | None  # committed on the target today
    note: str = ""  # why it differs from the snapshot's (clamped)


@dataclass(frozen=True)
class GroupRestore:
    group_id: str
    writes: tuple[OffsetWrite, ...]
    skipped: tuple[str, ...] = ()  # partitions left out, with the reason


@dataclass
class RestorePlan:
    snapshot_checksum: str
    snapshot_taken_at: str
    source_cluster_id: str
    target_cluster_id: str
    target_brokers: int
    env: str
    options: RestoreOptions
    refusals: list[str] = field(default_factory=list)  # block the whole restore
    creates: list[TopicCreate] = field(default_factory=list)
    alters: list[TopicAlter] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    in_sync: list[str] = field(default_factory=list)
    groups: list[GroupRestore] = field(default_factory=list)
    groups_in_sync: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    not_restored: list[str] = field(default_factory=list)
    # Access (when the target's access was read and options.access).
    access_planned: bool = False
    acl_creates: list[AclBinding] = field(default_factory=list)
    users: list[UserRestore] = field(default_factory=list)
    quotas: list[QuotaRestore] = field(default_factory=list)
    users_left_out: list[str] = field(default_factory=list)  # user names
    access_in_sync: dict[str, int] = field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        return bool(self.refusals)

    @property
    def offset_writes(self) -> int:
        return sum(len(g.writes) for g in self.groups)

    @property
    def has_changes(self) -> bool:
        return bool(
            self.creates
            or self.alters
            or self.offset_writes
            or self.acl_creates
            or self.users
            or self.quotas
        )

    def summary(self) -> dict[str, int]:
        return {
            "create": len(self.creates),
            "alter_configs": len(self.alters),
            "conflicts": len(self.conflicts),
            "in_sync": len(self.in_sync),
            "groups_to_write": sum(1 for g in self.groups if g.writes),
            "offsets_to_write": self.offset_writes,
            "groups_in_sync": len(self.groups_in_sync),
            "refused": len(self.refusals),
            "acls_to_create": len(self.acl_creates),
            "users_to_create": len(self.users),
            "quotas_to_set": len(self.quotas),
            "users_left_out": len(self.users_left_out),
        }

    def to_dict(self) -> dict:
        d = asdict(self)
        d["options"]["topics"] = list(self.options.topics)
        d["options"]["acknowledge_destructive"] = sorted(self.options.acknowledge_destructive)
        d["summary"] = self.summary()
        d["blocked"] = self.blocked
        return d


def _same(key: str, a: str | None, b: str | None) -> bool:
    return canonical_value(key, a) == canonical_value(key, b)


def make_restore_plan(
    snapshot: Snapshot,
    target: ClusterState,
    catalog: Catalog,
    options: RestoreOptions = RestoreOptions(),
    target_groups: dict[str, GroupStatus] | None = None,
    target_ranges: dict[tuple[str, int], tuple[int, int]] | None = None,
    target_access: AccessState | None = None,
) -> RestorePlan:
    """Compare a verified snapshot with the target cluster; change nothing. Access is
    planned when `target_access` (the target's, from `gateway.access.read_access`) is given
    and `options.access`."""
    plan = RestorePlan(
        snapshot_checksum=snapshot.checksum,
        snapshot_taken_at=snapshot.taken_at,
        source_cluster_id=snapshot.cluster_id,
        target_cluster_id=target.cluster_id,
        target_brokers=target.broker_count,
        env=catalog.env,
        options=options,
    )
    _refuse(plan, snapshot, target, options)
    topics = snapshot.topics
    selected = sorted(set(options.topics) & set(topics)) if options.topics else sorted(topics)
    # snapshot name -> target name, for topics whose offsets can be written
    restorable: dict[str, str] = {}
    created: set[str] = set()
    for src_name in selected:
        name = _restore_topic(plan, src_name, topics[src_name], target, catalog, options)
        if name is not None:
            restorable[src_name] = name
            if name not in target.topics:
                created.add(name)
    if options.include_offsets and not options.name_prefix:
        _plan_offsets(
            plan, snapshot, selected, restorable, created, target_groups or {}, target_ranges or {}
        )
    if options.access and target_access is not None:
        _plan_access(plan, snapshot, target_access, options)
        _not_restored(plan, snapshot, options, access=False)
    else:
        _not_restored(plan, snapshot, options, access=True)
    return plan


def data_matters(snapshot: Snapshot, target: ClusterState, options: RestoreOptions) -> list[str]:
    """The target's topics whose restore would change a config (the snapshot's override
    differs from the target's): the only ones where whether the topic holds data decides
    anything (`destructive_reason`), so the only ones whose offsets a restore plan reads."""
    topics = snapshot.topics
    selected = sorted(set(options.topics) & set(topics)) if options.topics else sorted(topics)
    names = []
    for src_name in selected:
        t = topics[src_name]
        existing = target.topics.get(options.name_prefix + src_name)
        if existing is None or not t["overrides"] or existing.partition_count != t["partitions"]:
            continue
        if any(not _same(k, existing.overrides.get(k), v) for k, v in t["overrides"].items()):
            names.append(existing.name)
    return names


def _refuse(
    plan: RestorePlan, snapshot: Snapshot, target: ClusterState, options: RestoreOptions
) -> None:
    """What blocks the whole restore, and what the plan must say up front."""
    if snapshot.cluster_id != target.cluster_id and not options.allow_other_cluster:
        plan.refusals.append(
            f"the snapshot is of cluster {snapshot.cluster_id} ({snapshot.broker_count} broker(s)), the target is cluster "
            f"{target.cluster_id} ({target.broker_count} broker(s)); restoring onto another cluster must be asked for "
            "explicitly: --allow-other-cluster (CLI) or allow_other_cluster: true (Dagster)"
        )
    if options.replication_factor is not None and options.replication_factor < 1:
        plan.refusals.append(f"replication factor: must be >= 1, got {options.replication_factor}")
    topics = snapshot.topics
    unknown = sorted(set(options.topics) - set(topics))
    if unknown:
        plan.refusals.append(
            f"topic filter: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not in the snapshot "
            f"({len(topics)} topic(s) taken {snapshot.taken_at})"
        )
    if not snapshot.complete.get("topics", True):
        plan.notes.append(
            "the snapshot says its topic list is incomplete: topics missing from it are not restored"
        )


def _restore_topic(
    plan: RestorePlan,
    src_name: str,
    t: dict,
    target: ClusterState,
    catalog: Catalog,
    options: RestoreOptions,
) -> str | None:
    """Plan one snapshot topic; returns its target name when its offsets can be written."""
    name = options.name_prefix + src_name
    if len(name) > MAX_TOPIC_NAME:
        plan.conflicts.append(
            Conflict(
                src_name,
                "name_too_long",
                f"{name!r} is longer than Kafka's {MAX_TOPIC_NAME} characters; left out",
            )
        )
        return None
    if t["overrides"] is None:
        plan.conflicts.append(
            Conflict(
                src_name,
                "config_missing",
                f"the snapshot has no config for topic {src_name} (it could not be read when the snapshot was taken); "
                "it is not restored, since it would come back without its overrides. Use another snapshot, or create it by hand.",
            )
        )
        return None
    spec = catalog.get(src_name)
    if spec is not None and spec.name != src_name and spec.key != src_name:
        spec = None
    existing = target.topics.get(name)
    if existing is None:
        return _restore_missing(plan, src_name, name, t, spec, target, catalog, options)
    return _restore_existing(plan, src_name, name, t, existing, options)


def _restore_missing(plan, src_name, name, t, spec, target, catalog, options) -> str | None:
    """A topic the target lacks: create it, replication from the options, the catalog or
    the live brokers, and min.insync.replicas never above that replication."""
    live = target.broker_count
    want_configs = dict(t["overrides"])
    if options.replication_factor is not None:
        rf, why = options.replication_factor, f"{options.replication_factor} as asked"
    elif spec is not None:
        rf, why = (
            spec.replication_factor,
            f"{spec.replication_factor} from the catalog (env {catalog.env})",
        )
    else:
        rf = max(1, min(t["replication_factor"], live))
        why = f"{rf} = min(snapshot {t['replication_factor']}, {live} live broker(s))"
    notes = []
    if spec is not None and "min.insync.replicas" in spec.configs:
        if want_configs.get("min.insync.replicas") != spec.configs["min.insync.replicas"]:
            notes.append(
                f"min.insync.replicas {spec.configs['min.insync.replicas']} from the catalog (env {catalog.env}), snapshot had {want_configs.get('min.insync.replicas', '(default)')}"
            )
        want_configs["min.insync.replicas"] = spec.configs["min.insync.replicas"]
    misr = want_configs.get("min.insync.replicas")
    if misr is not None and misr.isdigit() and int(misr) > rf:
        notes.append(f"min.insync.replicas lowered from {misr} to {rf} to fit replication {rf}")
        want_configs["min.insync.replicas"] = str(rf)
    if rf > live:
        plan.conflicts.append(
            Conflict(
                src_name,
                "too_few_brokers",
                f"{name} needs replication {rf} ({why}) but cluster {target.cluster_id} has {live} live broker(s); not created",
            )
        )
        return None
    plan.creates.append(
        TopicCreate(name, src_name, t["partitions"], rf, why, want_configs, tuple(notes))
    )
    return name


def _restore_existing(plan, src_name, name, t, existing, options) -> str | None:
    """A topic the target has: set the snapshot's overrides by apply's rules, or report
    why not (another partition count, a destructive change not acknowledged)."""
    if existing.partition_count != t["partitions"]:
        plan.conflicts.append(
            Conflict(
                src_name,
                "partition_mismatch",
                f"{name} exists with {existing.partition_count} partition(s), the snapshot has {t['partitions']}; "
                "left alone (Kafka cannot remove partitions, and ecap-ops never re-creates a topic); its group offsets are not written",
            )
        )
        return None
    want_configs = dict(t["overrides"])
    changes, before, destructive = {}, {}, []
    cleanup = existing.effective("cleanup.policy") or "delete"
    for key, value in sorted(want_configs.items()):
        have = existing.overrides.get(key)
        if _same(key, have, value):
            continue
        if key == "min.insync.replicas" and value.isdigit():
            if int(value) > existing.replication_factor:
                plan.notes.append(
                    f"{name}: min.insync.replicas {value} from the snapshot is above its replication "
                    f"{existing.replication_factor}; left as it is (producers with acks=all could write nothing)"
                )
                continue
        if destructive_reason(
            key, existing.effective(key), value, existing.has_data, cleanup
        ) and not ({"*", name} & set(options.acknowledge_destructive)):
            destructive.append(f"{key} {existing.effective(key)} -> {value}")
            continue
        changes[key] = value
        before[key] = have
    extra = sorted(set(existing.overrides) - set(want_configs))
    if extra:
        plan.notes.append(
            f"{name}: override(s) not in the snapshot left as they are: {', '.join(extra)}"
        )
    if destructive:
        plan.conflicts.append(
            Conflict(
                src_name,
                "destructive_config",
                f"{name} holds data; setting {'; '.join(destructive)} could remove records, so these are left alone "
                f"(--acknowledge-destructive {name} applies them)",
            )
        )
    if existing.replication_factor != t["replication_factor"]:
        plan.notes.append(
            f"{name}: replication {existing.replication_factor} on the target, {t['replication_factor']} in the snapshot; left as is"
        )
    if changes:
        plan.alters.append(TopicAlter(name, changes, before))
    elif not destructive:
        plan.in_sync.append(name)
    return name


def _not_restored(
    plan: RestorePlan, snapshot: Snapshot, options: RestoreOptions, access: bool
) -> None:
    """What a restore leaves to people: offsets not asked for; and, when access was not
    planned (`access`), ACLs, SCRAM users and quotas."""
    if not (options.include_offsets and not options.name_prefix) and snapshot.doc["groups"]:
        plan.not_restored.append(
            f"committed offsets of {len(snapshot.doc['groups'])} group(s): not asked for"
            + (
                " (--include-offsets / include_offsets: true)"
                if not options.name_prefix
                else " (never written under a name prefix)"
            )
        )
    if not access:
        return
    acls, users = snapshot.doc["acls"], snapshot.doc["scram_users"]
    why = (
        "not asked for (--no-access / restore_access: false)"
        if not options.access
        else "the target's access was not read"
    )
    if acls:
        plan.not_restored.append(f"{len(acls)} ACL(s): {why}")
    if snapshot.doc.get("quotas"):
        plan.not_restored.append(f"{len(snapshot.doc['quotas'])} client quota(s): {why}")
    if not snapshot.complete.get("acls", True):
        plan.not_restored.append(
            "ACLs: the snapshot could not read them (" + _note_about(snapshot, "ACL") + ")"
        )
    if users:
        plan.not_restored.append(
            f"{len(users)} SCRAM user(s) ({', '.join(u['name'] for u in users[:10])}{', ...' if len(users) > 10 else ''}): "
            f"{why}; snapshots never hold secrets, passwords are supplied at restore time"
        )


def _names(items, limit: int = 10) -> str:
    items = list(items)
    return ", ".join(str(i)[:60] for i in items[:limit]) + (", ..." if len(items) > limit else "")


def _plan_access(
    plan: RestorePlan, snapshot: Snapshot, target: AccessState, options: RestoreOptions
) -> None:
    """The snapshot's ACLs, SCRAM users and quotas against the target's (never a delete)."""
    sa = snapshot_access(snapshot.doc)
    plan.access_planned = True
    in_sync = {"bindings": 0, "users": 0, "quotas": 0}
    known = {u.name for u in sa.users}
    seen: set[str] = set()
    for s in options.passwords:
        if s.user in seen and s.explicit:
            plan.refusals.append(f"{s.origin} {s.user[:60]}: given twice; give each user once")
        seen.add(s.user)
        if s.explicit and s.user not in known:
            plan.refusals.append(
                f"{s.origin} {s.user[:60]}: the snapshot has no SCRAM user of that name "
                f"({len(known)} user(s): {_names(sorted(known)) or 'none'}); nothing is restored "
                "with a password meant for another user"
            )
        elif s.explicit and s.problem:
            plan.refusals.append(f"{s.origin} {s.user[:60]}: {s.problem}")
    # ACL bindings: only a cluster with an authorizer holds them.
    if not sa.acls_recorded:
        plan.not_restored.append(
            "ACLs: the snapshot did not record them (" + _note_about(snapshot, "ACL") + ")"
        )
    elif not target.authorizer:
        if sa.bindings:
            plan.not_restored.append(
                f"{len(sa.bindings)} ACL binding(s): cluster {plan.target_cluster_id} runs no "
                "authorizer, so it can neither hold nor enforce them; secure it "
                "(docs/security.md) and run the restore again"
            )
    else:
        plan.acl_creates = sorted(sa.bindings - target.acls)
        in_sync["bindings"] = len(sa.bindings & target.acls)
        extra = len(target.acls - sa.bindings)
        if extra:
            plan.notes.append(
                f"{extra} ACL binding(s) on the target are not in the snapshot: left alone "
                "(a restore never deletes)"
            )
    # SCRAM users: passwords come from the operator, at restore time.
    supplies = {s.user: s for s in options.passwords}
    if not sa.users_recorded:
        plan.not_restored.append(
            "SCRAM users: the snapshot did not record them (" + _note_about(snapshot, "SCRAM") + ")"
        )
    elif not target.complete.get("users", True):
        if sa.users:
            plan.not_restored.append(
                f"{len(sa.users)} SCRAM user(s): the target's users could not be read, so none "
                "is re-created"
            )
    else:
        _plan_users(plan, sa.users, target, supplies, in_sync)
    # Client quotas: the snapshot's values are set; other keys and entities are left alone.
    if not sa.quotas_recorded:
        if "quotas" not in snapshot.doc:
            plan.notes.append(
                "client quotas: the snapshot was taken before ecap-ops recorded quotas"
            )
        else:
            plan.not_restored.append(
                "client quotas: the snapshot could not read them ("
                + _note_about(snapshot, "quota")
                + ")"
            )
    elif not target.complete.get("quotas", True):
        if sa.quotas:
            plan.not_restored.append(
                f"{len(sa.quotas)} client quota(s): the target's quotas could not be read"
            )
    else:
        for entity, values in sorted(sa.quotas.items()):
            current = target.quotas.get(entity, {})
            changes = tuple(
                (k, current.get(k), v) for k, v in sorted(values.items()) if current.get(k) != v
            )
            if changes:
                plan.quotas.append(QuotaRestore(entity, changes))
            else:
                in_sync["quotas"] += 1
        extra = [e for e in target.quotas if e not in sa.quotas]
        if extra:
            plan.notes.append(
                f"{len(extra)} client quota entit(ies) on the target are not in the snapshot: "
                f"left alone ({_names(sorted(entity_label(e) for e in extra), 5)})"
            )
    plan.access_in_sync = in_sync


def _plan_users(plan, users, target: AccessState, supplies, in_sync) -> None:
    for u in users:
        have = target.users.get(u.name, {})
        s = supplies.get(u.name)
        for mech, iters in u.mechanisms:
            if have.get(mech) == iters:
                in_sync["users"] += 1
                if s is not None and s.explicit:
                    plan.notes.append(
                        f"SCRAM user {u.name}: exists with {mech} and {iters} iterations; its "
                        f"password is left as it is ({s.origin} not used)"
                    )
                continue
            if s is None or s.problem:
                if u.name not in plan.users_left_out:
                    plan.users_left_out.append(u.name)
                hint = (
                    f"supply it: --password-env {u.name}=VARIABLE or --password-file "
                    f"{u.name}=PATH (Dagster: password_env / password_file), or name it in the "
                    f"catalog (users.{u.name}.password_env)"
                )
                plan.not_restored.append(
                    f"SCRAM user {u.name} ({mech}): no password supplied (snapshots never hold "
                    f"secrets); left out: {hint}"
                    if s is None
                    else f"SCRAM user {u.name} ({mech}): the catalog names {s.source} for its "
                    f"password, but {s.problem}; left out: {hint}"
                )
                continue
            plan.users.append(UserRestore(u.name, mech, iters, s.source, s.origin, mech in have))


def _note_about(snapshot: Snapshot, word: str) -> str:
    for n in snapshot.doc["notes"]:
        if word.lower() in n.lower():
            return n
    return "no reason recorded"


def _plan_offsets(
    plan: RestorePlan,
    snapshot: Snapshot,
    selected: list[str],
    restorable: dict[str, str],
    created: set[str],
    target_groups: dict[str, GroupStatus],
    target_ranges: dict[tuple[str, int], tuple[int, int]],
) -> None:
    chosen = set(selected)
    for gid, g in sorted(snapshot.groups.items()):
        offsets = [o for o in g["offsets"] if o["topic"] in chosen]
        if not offsets:
            continue
        status = target_groups.get(gid)
        if status is not None and (
            (status.members or 0) > 0 or (status.state or "") not in EMPTY_GROUP_STATES
        ):
            plan.conflicts.append(
                Conflict(
                    gid,
                    "group_active",
                    f"group {gid} has {status.members if status.members is not None else 'some'} active member(s) (state {status.state}) on the target; "
                    "its offsets are not written (Kafka accepts offset changes only for empty groups). Stop its consumers and run the restore again.",
                )
            )
            continue
        current = status.offsets if status else {}
        writes, skipped = [], []
        for o in offsets:
            topic, part, off = o["topic"], o["partition"], o["offset"]
            name = restorable.get(topic)
            if name is None:
                skipped.append(f"{topic}[{part}]: topic not restored (see its conflict)")
                continue
            partitions = snapshot.topics[topic]["partitions"]
            if part >= partitions:
                skipped.append(f"{topic}[{part}]: no such partition")
                continue
            start, end = (
                (0, 0) if name in created else target_ranges.get((name, part), (None, None))
            )
            if start is None:
                skipped.append(
                    f"{topic}[{part}]: its offsets on the target could not be read (no leader?)"
                )
                continue
            value, note = off, ""
            if off > end:
                value = end
                note = f"clamped from {off:,} to the end offset {end:,} (the target partition holds fewer records)"
            elif off < start:
                value = start
                note = f"clamped from {off:,} to the start offset {start:,} (older records were deleted)"
            have = current.get((name, part))
            if have == value:
                continue
            writes.append(OffsetWrite(name, part, value, off, have, note))
        if writes:
            plan.groups.append(GroupRestore(gid, tuple(writes), tuple(skipped)))
        elif skipped:
            plan.groups.append(GroupRestore(gid, (), tuple(skipped)))
        else:
            plan.groups_in_sync.append(gid)


def restore_actions(plan: RestorePlan) -> tuple[Action, ...]:
    """The restore plan as the typed actions of the one write path: topics to create,
    overrides to set, offsets to write (never a delete)."""
    actions = [
        Action(
            ActionKind.CREATE_TOPIC,
            c.name,
            partitions=c.partitions,
            replication_factor=c.replication_factor,
            configs=dict(c.configs),
        )
        for c in plan.creates
    ]
    for a in plan.alters:
        actions.append(
            Action(
                ActionKind.ALTER_CONFIGS,
                a.name,
                changes=tuple(
                    ConfigChange(k, a.before.get(k), v, a.before.get(k), v)
                    for k, v in sorted(a.changes.items())
                ),
            )
        )
    for g in plan.groups:
        if g.writes:
            actions.append(
                Action(
                    ActionKind.WRITE_OFFSETS,
                    g.group_id,
                    group=g.group_id,
                    offsets=tuple((w.topic, w.partition, w.offset) for w in g.writes),
                )
            )
    return tuple(actions) + access_restore_actions(plan)


def access_restore_actions(plan: RestorePlan) -> tuple[Action, ...]:
    """The plan's access as actions of the one write path: SCRAM users (password read from
    its source at execution), ACL bindings per principal, quotas. Never a delete."""
    actions = [
        Action(
            ActionKind.UPSERT_USER,
            f"user {u.name} {u.mechanism}",
            user=u.name,
            mechanism=u.mechanism,
            iterations=u.iterations,
            password_source=u.password_source,
            warnings=(
                (
                    f"{u.name} has {u.mechanism} with other iterations: its credential is "
                    f"replaced, so clients need the password from {u.password_source}",
                )
                if u.replaces
                else ()
            ),
        )
        for u in plan.users
    ]
    by_principal: dict[str, list[AclBinding]] = {}
    for b in plan.acl_creates:
        by_principal.setdefault(b.principal, []).append(b)
    for principal, bindings in sorted(by_principal.items()):
        actions.append(Action(ActionKind.CREATE_ACLS, principal, acls=tuple(bindings)))
    for q in plan.quotas:
        actions.append(
            Action(
                ActionKind.ALTER_QUOTAS,
                f"quota {entity_label(q.entity)}",
                quota_entity=q.entity,
                quota_changes=tuple(q.changes),
            )
        )
    return tuple(actions)


def undo_access_actions(
    actions: tuple[Action, ...], done: set[tuple[str, str]]
) -> tuple[Action, ...]:
    """What takes back the access actions that reported success (`done`: (step, subject)):
    the bindings they created are deleted, the quotas they set return to their values
    before (removed where there was none). For the DR drill's clean-up on a scratch
    cluster; SCRAM users are never created by a drill."""
    out: list[Action] = []
    for a in actions:
        if (a.kind.value, a.subject) not in done:
            continue
        if a.kind is ActionKind.CREATE_ACLS:
            out.append(Action(ActionKind.DELETE_ACLS, a.subject, acls=a.acls, destructive=True))
        elif a.kind is ActionKind.ALTER_QUOTAS:
            out.append(
                Action(
                    ActionKind.ALTER_QUOTAS,
                    a.subject,
                    quota_entity=a.quota_entity,
                    quota_changes=tuple((k, new, old) for k, old, new in a.quota_changes),
                )
            )
    return tuple(out)
