"""Planning: the catalog against the observed cluster gives an ordered plan of actions.

Rules (see the project's safety design): never delete by omission, refuse what cannot be
done safely at plan time, compare and write topic-level overrides only, and mark as
destructive whatever can remove data (a retention decrease or a cleanup.policy change on
a topic that holds data), which is applied only when acknowledged.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from ecap_ops.catalog.kafka_configs import canonical_value
from ecap_ops.catalog.model import Catalog, TopicSpec
from ecap_ops.catalog.units import format_duration_ms, format_size
from ecap_ops.core.state import CANARY_TOPIC, ClusterState, TopicState, is_internal_topic

# Kafka's own defaults, for a key whose fallback the broker did not report.
KAFKA_DEFAULTS = {
    "retention.ms": "604800000",
    "retention.bytes": "-1",
    "cleanup.policy": "delete",
    "compression.type": "producer",
    "max.message.bytes": "1048588",
    "min.insync.replicas": "1",
}


class ActionKind(StrEnum):
    """Every kind of change ecap-ops makes to a cluster. Each comes from a planner in the
    core and is carried out only by `ecap_ops.services.write.execute_plan`."""

    CREATE_TOPIC = "create_topic"
    ALTER_CONFIGS = "alter_configs"
    ADD_PARTITIONS = "add_partitions"
    DELETE_TOPIC = "delete_topic"
    WRITE_OFFSETS = "write_offsets"
    # Access (core/access.py): ACL bindings, SCRAM users, client quotas.
    UPSERT_USER = "upsert_user"
    CREATE_ACLS = "create_acls"
    ALTER_QUOTAS = "alter_quotas"
    DELETE_ACLS = "delete_acls"


ACCESS_KINDS = frozenset(
    {
        ActionKind.UPSERT_USER,
        ActionKind.CREATE_ACLS,
        ActionKind.ALTER_QUOTAS,
        ActionKind.DELETE_ACLS,
    }
)


@dataclass(frozen=True)
class ConfigChange:
    key: str
    old: str | None  # the topic-level override today (None: none, the default applies)
    new: str | None  # the override to write (None: remove it, falling back to the default)
    old_effective: str | None
    new_effective: str | None
    destructive: bool = False
    reason: str = ""

    def describe(self) -> str:
        def show(v, eff):
            return _human(self.key, v) if v is not None else f"(default {_human(self.key, eff)})"

        return f"{self.key}: {show(self.old, self.old_effective)} -> {show(self.new, self.new_effective)}"


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    topic: str
    partitions: int | None = None  # CREATE_TOPIC: count; ADD_PARTITIONS: the new total
    current_partitions: int | None = None
    replication_factor: int | None = None
    configs: dict[str, str] = field(default_factory=dict)  # CREATE_TOPIC only
    changes: tuple[ConfigChange, ...] = ()  # ALTER_CONFIGS only
    warnings: tuple[str, ...] = ()
    destructive: bool = False
    # DELETE_TOPIC / CREATE_TOPIC of a reset: the topic is deleted and created again, and
    # is deleted only after its re-creation passed the brokers' validation.
    recreate: bool = False
    records: int | None = None  # DELETE_TOPIC: records it holds (None: unknown)
    group: str | None = None  # WRITE_OFFSETS: the consumer group
    offsets: tuple[tuple[str, int, int], ...] = ()  # WRITE_OFFSETS: (topic, partition, offset)
    # Access actions: `topic` holds their subject (a principal, a user, a quota entity).
    acls: tuple = ()  # CREATE_ACLS / DELETE_ACLS: catalog.access.AclBinding
    user: str | None = None  # UPSERT_USER
    mechanism: str | None = None
    iterations: int | None = None
    # Where the password is read at apply time ("env NAME" / "file PATH"); never the password.
    password_source: str | None = None
    quota_entity: tuple[tuple[str, str], ...] = ()  # ALTER_QUOTAS: ((type, name), ...)
    quota_changes: tuple[tuple[str, float | None, float | None], ...] = ()  # (key, old, new)

    @property
    def subject(self) -> str:
        return self.group if self.kind is ActionKind.WRITE_OFFSETS else self.topic

    def describe(self) -> str:
        if self.kind in ACCESS_KINDS:
            from ecap_ops.core.access import describe_access_action

            return describe_access_action(self)
        if self.kind is ActionKind.DELETE_TOPIC:
            held = "" if self.records is None else f" ({self.records:,} record(s))"
            return f"delete topic {self.topic}{held}" + (
                ", then create it again" if self.recreate else ""
            )
        if self.kind is ActionKind.WRITE_OFFSETS:
            return f"write {len(self.offsets)} committed offset(s) of group {self.group}"
        if self.kind is ActionKind.CREATE_TOPIC:
            cfg = ", ".join(f"{k}={_human(k, v)}" for k, v in sorted(self.configs.items()))
            return (
                f"create topic {self.topic}: {self.partitions} partitions, replication {self.replication_factor}"
                + (f", {cfg}" if cfg else "")
            )
        if self.kind is ActionKind.ADD_PARTITIONS:
            return f"add partitions to {self.topic}: {self.current_partitions} -> {self.partitions}"
        return f"alter configs of {self.topic}: " + "; ".join(c.describe() for c in self.changes)


@dataclass(frozen=True)
class Refusal:
    topic: str
    code: str  # partition_decrease, replication_change, destructive, too_few_brokers
    message: str
    field: str = ""  # the catalog path it concerns, when there is one


@dataclass(frozen=True)
class Plan:
    cluster_id: str
    env: str
    catalog_digest: str
    actions: tuple[Action, ...]
    refusals: tuple[Refusal, ...]
    unmanaged: tuple[str, ...]
    in_sync: tuple[str, ...]
    fingerprint: str  # of the observed state the plan was made from
    # The catalog's scope in one line ("" when it manages every topic), and how many topics
    # outside it the plan left alone (neither planned nor reported as unmanaged).
    scope: str = ""
    out_of_scope: int = 0

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    @property
    def blocked(self) -> bool:
        return bool(self.refusals)

    def for_topic(self, name: str) -> "Plan":
        return Plan(
            self.cluster_id,
            self.env,
            self.catalog_digest,
            tuple(a for a in self.actions if a.topic == name),
            tuple(r for r in self.refusals if r.topic == name),
            (),
            tuple(t for t in self.in_sync if t == name),
            self.fingerprint,
            self.scope,
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        for a in d["actions"]:
            a["kind"] = a["kind"].value if isinstance(a["kind"], ActionKind) else a["kind"]
        d["summary"] = {
            "create": sum(a.kind is ActionKind.CREATE_TOPIC for a in self.actions),
            "alter_configs": sum(a.kind is ActionKind.ALTER_CONFIGS for a in self.actions),
            "add_partitions": sum(a.kind is ActionKind.ADD_PARTITIONS for a in self.actions),
            "delete": sum(a.kind is ActionKind.DELETE_TOPIC for a in self.actions),
            "write_offsets": sum(a.kind is ActionKind.WRITE_OFFSETS for a in self.actions),
            "access": sum(a.kind in ACCESS_KINDS for a in self.actions),
            "refused": len(self.refusals),
            "in_sync": len(self.in_sync),
            "unmanaged": len(self.unmanaged),
        }
        return d


MAX_BINDINGS_SHOWN = 20


def _human(key: str, value: str | None) -> str:
    if value is None:
        return "?"
    try:
        if key.endswith(".ms"):
            return f"{value} ({format_duration_ms(int(value))})"
        if key.endswith(".bytes"):
            return f"{value} ({format_size(int(value))})"
    except ValueError:
        pass
    return value


def fingerprint(cluster: ClusterState, names: list[str]) -> str:
    """A hash of everything the plan for `names` depends on, to detect a stale plan."""
    parts = [cluster.cluster_id, len(cluster.brokers)]
    for n in sorted(names):
        t = cluster.topics.get(n)
        parts.append(
            [n, None]
            if t is None
            else [
                n,
                t.partition_count,
                t.replication_factor,
                sorted(t.overrides.items()),
                t.has_data,
            ]
        )
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def retention_rank(value: str | None) -> float:
    """-1 (infinite) and unset rank above every finite value."""
    if value is None:
        return float("inf")
    try:
        n = int(value)
    except ValueError:
        return float("inf")
    return float("inf") if n < 0 else float(n)


def destructive_reason(
    key: str, old_eff: str | None, new_eff: str | None, has_data: bool | None, cleanup: str
) -> str:
    """Why setting `key` from `old_eff` to `new_eff` can remove records ("" when it cannot).
    The one rule for provisioning, reset and restore: a retention decrease on a deleting
    topic, or any cleanup.policy change, on a topic that holds data (or might: unknown)."""
    if has_data is False:
        return ""
    if key in ("retention.ms", "retention.bytes") and "delete" in (cleanup or "delete"):
        if retention_rank(new_eff) < retention_rank(old_eff):
            return f"lowers {key} from {_human(key, old_eff)} to {_human(key, new_eff)}: records older than that are deleted"
        return ""
    if key == "cleanup.policy" and canonical_value(key, old_eff) != canonical_value(key, new_eff):
        return f"changes cleanup.policy from {old_eff} to {new_eff}: " + (
            "compaction removes all but the latest record of each key"
            if "compact" in (new_eff or "")
            else "retention starts deleting records, including the latest value of each key"
        )
    return ""


def _config_changes(spec: TopicSpec, topic: TopicState) -> list[ConfigChange]:
    changes = []
    keys = sorted(set(spec.configs) | set(topic.overrides))
    cleanup = topic.effective("cleanup.policy") or "delete"
    for key in keys:
        want = spec.configs.get(key)
        have = topic.overrides.get(key)
        if canonical_value(key, want) == canonical_value(key, have):
            continue
        default = topic.defaults.get(key, KAFKA_DEFAULTS.get(key))
        old_eff = have if have is not None else default
        new_eff = want if want is not None else default
        reason = destructive_reason(key, old_eff, new_eff, topic.has_data, cleanup)
        changes.append(ConfigChange(key, have, want, old_eff, new_eff, bool(reason), reason))
    return changes


def data_matters(catalog: Catalog, cluster: ClusterState) -> list[str]:
    """The catalog's topics on the cluster whose plan would change a config: the only
    ones where whether the topic holds data decides anything (`destructive_reason`). A
    plan reads the offsets of these alone (none for a no-op plan)."""
    names = []
    for spec in catalog.topics:
        topic = cluster.topics.get(spec.name)
        if topic is not None and _config_changes(spec, topic):
            names.append(spec.name)
    return names


def make_plan(
    catalog: Catalog,
    cluster: ClusterState,
    acknowledge_destructive: frozenset[str] | set[str] = frozenset(),
) -> Plan:
    """Compare the catalog with the cluster. `acknowledge_destructive` holds the topic
    names (or "*") whose destructive changes the operator has accepted."""
    actions: dict[ActionKind, list[Action]] = {k: [] for k in ActionKind}
    refusals: list[Refusal] = []
    in_sync: list[str] = []
    for spec in catalog.topics:
        topic = cluster.topics.get(spec.name)
        if topic is None:
            _plan_new_topic(spec, cluster, actions, refusals)
            continue
        before = sum(map(len, actions.values())) + len(refusals)
        _plan_partitions(spec, topic, actions, refusals)
        if spec.replication_factor != topic.replication_factor:
            refusals.append(
                Refusal(
                    spec.name,
                    "replication_change",
                    f"replication factor of {spec.name}: the catalog ({catalog.env}) asks for {spec.replication_factor}, the topic has {topic.replication_factor}; "
                    "changing it needs a partition reassignment (kafka-reassign-partitions), which ecap-ops does not do for you",
                    f"topics.{spec.key}.replication_factor",
                )
            )
        _plan_configs(spec, topic, acknowledge_destructive, actions, refusals)
        if sum(map(len, actions.values())) + len(refusals) == before:
            in_sync.append(spec.name)
    declared = set(catalog.names())
    others = [
        n
        for n, t in cluster.topics.items()
        if n not in declared and n != CANARY_TOPIC and not is_internal_topic(n, t.internal)
    ]
    unmanaged = sorted(n for n in others if catalog.manages(n))
    return Plan(
        cluster_id=cluster.cluster_id,
        env=catalog.env,
        catalog_digest=catalog.digest,
        actions=tuple(
            actions[ActionKind.CREATE_TOPIC]
            + actions[ActionKind.ALTER_CONFIGS]
            + actions[ActionKind.ADD_PARTITIONS]
        ),
        refusals=tuple(refusals),
        unmanaged=tuple(unmanaged),
        in_sync=tuple(in_sync),
        fingerprint=fingerprint(cluster, catalog.names()),
        scope=catalog.scope.describe() if catalog.scope.declared else "",
        out_of_scope=len(others) - len(unmanaged),
    )


def _plan_new_topic(spec: TopicSpec, cluster: ClusterState, actions, refusals) -> None:
    live = cluster.broker_count
    if spec.replication_factor > live:
        refusals.append(
            Refusal(
                spec.name,
                "too_few_brokers",
                f"topics.{spec.key}.replication_factor: {spec.replication_factor} is more than the {live} live broker(s) of cluster {cluster.cluster_id}; "
                f"the topic cannot be created (use ECAP_ENV=dev on a single broker, or start more brokers)",
                f"topics.{spec.key}.replication_factor",
            )
        )
        return
    actions[ActionKind.CREATE_TOPIC].append(
        Action(
            ActionKind.CREATE_TOPIC,
            spec.name,
            partitions=spec.partitions,
            replication_factor=spec.replication_factor,
            configs=dict(spec.configs),
        )
    )


def _plan_partitions(spec: TopicSpec, topic: TopicState, actions, refusals) -> None:
    """Fewer partitions: refused (never a re-create). More: added, warning keyed topics."""
    path = f"topics.{spec.key}.partitions"
    if spec.partitions < topic.partition_count:
        refusals.append(
            Refusal(
                spec.name,
                "partition_decrease",
                f"{path}: the catalog asks for {spec.partitions} but {spec.name} has {topic.partition_count}; "
                "Kafka cannot remove partitions and ecap-ops never re-creates a topic to do it. "
                f"Set partitions to {topic.partition_count} (or more) in the catalog.",
                path,
            )
        )
    elif spec.partitions > topic.partition_count:
        warnings = ()
        if spec.partition_key:
            warnings = (
                f"{spec.name} is keyed by {spec.partition_key}: adding partitions changes which partition each key maps to, "
                "so records of one key written before and after the change may be read out of order",
            )
        actions[ActionKind.ADD_PARTITIONS].append(
            Action(
                ActionKind.ADD_PARTITIONS,
                spec.name,
                partitions=spec.partitions,
                current_partitions=topic.partition_count,
                warnings=warnings,
            )
        )


def _plan_configs(spec: TopicSpec, topic: TopicState, acks, actions, refusals) -> None:
    """Override changes; destructive ones are refused unless acknowledged."""
    changes = _config_changes(spec, topic)
    if not changes:
        return
    destructive = [c for c in changes if c.destructive]
    if destructive and not ({"*", spec.name, spec.key} & set(acks)):
        for c in destructive:
            refusals.append(
                Refusal(
                    spec.name,
                    "destructive",
                    f"{spec.name} holds data and the change {c.reason}. Apply it only on purpose: "
                    f"--acknowledge-destructive {spec.name} (CLI) or acknowledge_destructive: [{spec.name}] (Dagster)",
                    f"topics.{spec.key}.{c.key}",
                )
            )
    actions[ActionKind.ALTER_CONFIGS].append(
        Action(
            ActionKind.ALTER_CONFIGS,
            spec.name,
            changes=tuple(changes),
            destructive=bool(destructive),
        )
    )


def render_plan(plan: Plan) -> str:
    """The plan as people read it, in the order it will be applied."""
    lines = [f"Plan for cluster {plan.cluster_id} (env {plan.env}):"]
    marks = {
        ActionKind.CREATE_TOPIC: "+",
        ActionKind.ALTER_CONFIGS: "~",
        ActionKind.ADD_PARTITIONS: "^",
        ActionKind.DELETE_TOPIC: "-",
        ActionKind.WRITE_OFFSETS: "@",
        ActionKind.UPSERT_USER: "+",
        ActionKind.CREATE_ACLS: "+",
        ActionKind.ALTER_QUOTAS: "~",
        ActionKind.DELETE_ACLS: "-",
    }
    for a in plan.actions:
        if a.kind is ActionKind.ALTER_CONFIGS:
            lines.append(
                f"  ~ alter configs of {a.topic}" + ("  [DESTRUCTIVE]" if a.destructive else "")
            )
            for c in a.changes:
                lines.append(f"      {c.describe()}" + ("  [destructive]" if c.destructive else ""))
        else:
            lines.append(f"  {marks[a.kind]} {a.describe()}")
        if a.kind in (ActionKind.CREATE_ACLS, ActionKind.DELETE_ACLS):
            shown = a.acls[:MAX_BINDINGS_SHOWN]
            lines += [f"      {b.describe()}" for b in shown]
            if len(a.acls) > len(shown):
                lines.append(f"      ... and {len(a.acls) - len(shown)} more binding(s)")
        for w in a.warnings:
            lines.append(f"      warning: {w}")
    for r in plan.refusals:
        lines.append(f"  ! refused: {r.message}")
    for name in plan.in_sync:
        lines.append(f"  = {name} matches the catalog")
    if plan.unmanaged:
        lines.append(
            f"  Unmanaged topics (not in the catalog, left alone): {', '.join(plan.unmanaged)}"
        )
    if plan.scope:
        lines.append(
            f"Scope: {plan.scope} ({plan.out_of_scope} topic(s) outside it left alone, not listed)."
        )
    s = plan.to_dict()["summary"]
    extra = "".join(
        f"{s[k]} {label}, "
        for k, label in (
            ("delete", "to delete"),
            ("write_offsets", "offset writes"),
            ("access", "access changes"),
        )
        if s[k]
    )
    lines.append(
        f"Plan: {s['create']} to create, {s['alter_configs']} to alter, {s['add_partitions']} to add partitions, "
        f"{extra}{s['refused']} refused, {s['in_sync']} in sync."
    )
    if not plan.actions and not plan.refusals:
        lines.append("No changes. The cluster matches the catalog.")
    return "\n".join(lines)
