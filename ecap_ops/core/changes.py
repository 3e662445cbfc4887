"""Planners for the changes that are not provisioning (deleting a topic, resetting the
catalog's topics) and the rules every plan obeys on its way to a cluster: the order its
actions run in, and how they are cut into requests under KRaft's metadata-record cap.

All planners return the same `Plan` of typed `Action`s as provisioning (`core.plan`), so
one executor (`services.write.execute_plan`) validates, snapshots, applies and verifies
every change. Pure.
"""

from collections.abc import Iterable, Iterator

from ecap_ops.catalog.kafka_configs import canonical_value
from ecap_ops.catalog.model import Catalog
from ecap_ops.core.plan import (
    ACCESS_KINDS,
    Action,
    ActionKind,
    Plan,
    Refusal,
    fingerprint,
    make_plan,
)
from ecap_ops.core.state import CANARY_TOPIC, ClusterState, is_internal_topic

# KRaft refuses one request that needs more than 10,000 metadata records ("Unable to
# perform excessively large batch operation"); stay well under it.
KRAFT_MAX_RECORDS_PER_REQUEST = 10_000
RECORD_BUDGET = 9_000

# The order actions run in. New topics, config changes and partition additions first
# (none removes anything); then deletions that a re-creation follows, each deleted only
# after its re-creation passed the brokers' validation; plain deletions; offsets last,
# once the topics they point into exist. Access: users, then the bindings and quotas
# that grant (after the topics they name exist); bindings that take rights away last.
PHASES = (
    "create",
    "alter_configs",
    "add_partitions",
    "upsert_users",
    "create_acls",
    "alter_quotas",
    "recreate",
    "delete",
    "delete_acls",
    "write_offsets",
)


def phase_of(action: Action) -> str:
    if action.recreate:
        return "recreate"
    return {
        ActionKind.CREATE_TOPIC: "create",
        ActionKind.ALTER_CONFIGS: "alter_configs",
        ActionKind.ADD_PARTITIONS: "add_partitions",
        ActionKind.DELETE_TOPIC: "delete",
        ActionKind.WRITE_OFFSETS: "write_offsets",
        ActionKind.UPSERT_USER: "upsert_users",
        ActionKind.CREATE_ACLS: "create_acls",
        ActionKind.ALTER_QUOTAS: "alter_quotas",
        ActionKind.DELETE_ACLS: "delete_acls",
    }[action.kind]


def metadata_records(action: Action) -> int:
    """How many KRaft metadata records an action costs the controller: a topic record, a
    partition record per partition and a config record per override (one margin record)."""
    if action.kind is ActionKind.CREATE_TOPIC:
        return 2 + (action.partitions or 0) + len(action.configs)
    if action.kind is ActionKind.ADD_PARTITIONS:
        return 1 + (action.partitions or 0) - (action.current_partitions or 0)
    if action.kind is ActionKind.ALTER_CONFIGS:
        return 1 + len(action.changes)
    if action.kind is ActionKind.DELETE_TOPIC:
        return 2
    if action.kind in (ActionKind.CREATE_ACLS, ActionKind.DELETE_ACLS):
        return max(1, len(action.acls))
    return 1


def batches(actions: Iterable[Action], budget: int = RECORD_BUDGET) -> Iterator[list[Action]]:
    """Cut actions into requests of at most `budget` metadata records each (an action
    bigger than the budget goes alone: the brokers then say why they refuse it)."""
    batch: list[Action] = []
    used = 0
    for a in actions:
        cost = metadata_records(a)
        if batch and used + cost > budget:
            yield batch
            batch, used = [], 0
        batch.append(a)
        used += cost
    if batch:
        yield batch


def _plan(catalog: Catalog | None, cluster: ClusterState, actions, refusals, names) -> Plan:
    return Plan(
        cluster_id=cluster.cluster_id,
        env=catalog.env if catalog is not None else "",
        catalog_digest=catalog.digest if catalog is not None else "",
        actions=tuple(actions),
        refusals=tuple(refusals),
        unmanaged=(),
        in_sync=(),
        fingerprint=fingerprint(cluster, list(names)),
    )


def records_held(cluster: ClusterState, name: str, ranges: dict | None) -> int | None:
    if ranges is None:
        return None
    topic = cluster.topics[name]
    spans = [ranges.get((name, p.partition)) for p in topic.partitions]
    if not all(spans):
        return None
    return sum(end - start for start, end in spans)


def make_delete_plan(
    catalog: Catalog,
    cluster: ClusterState,
    names: Iterable[str],
    force: bool = False,
    ranges: dict[tuple[str, int], tuple[int, int]] | None = None,
    created_here: Iterable[str] = (),
) -> Plan:
    """Delete topics by their exact names. Refused: a topic that does not exist, Kafka's
    internal topics, ecap-ops' canary, the catalog's topics and topics outside the
    catalog's scope (unless `force`). `created_here`: topics the calling run created itself
    (the DR drill's scratch copies), which the scope does not protect: they are nobody
    else's."""
    own = frozenset(created_here)
    actions, refusals = [], []
    names = list(dict.fromkeys(names))
    for name in names:
        topic = cluster.topics.get(name)
        if is_internal_topic(name, topic is not None and topic.internal):
            if not force:
                refusals.append(
                    Refusal(
                        name,
                        "internal",
                        f"{name} is one of Kafka's internal topics (__*); deleting it breaks the cluster. Refused (--force overrides)",
                    )
                )
                continue
        if topic is None:
            refusals.append(
                Refusal(
                    name,
                    "missing",
                    f"topic {name!r} does not exist on cluster {cluster.cluster_id}",
                )
            )
            continue
        spec = catalog.get(name)
        if spec is not None and spec.name == name and not force:
            refusals.append(
                Refusal(
                    name,
                    "catalog_topic",
                    f"{name} is in the catalog ({spec.purpose}); producers and consumers depend on it. Refused "
                    "(--force overrides, or `reset-topics` to recreate the catalog's topics)",
                )
            )
            continue
        if not force and name != CANARY_TOPIC and name not in own and not catalog.manages(name):
            refusals.append(
                Refusal(
                    name,
                    "out_of_scope",
                    f"{name} is outside the catalog's {catalog.scope_summary()}: another team's "
                    "topic, never touched from here. Refused (--force overrides)",
                )
            )
            continue
        if name == CANARY_TOPIC and not force:
            refusals.append(
                Refusal(
                    name,
                    "canary",
                    f"{name} is the health check's canary; it is re-created on the next health run. Refused (--force overrides)",
                )
            )
            continue
        actions.append(
            Action(
                ActionKind.DELETE_TOPIC,
                name,
                destructive=True,
                records=records_held(cluster, name, ranges),
                partitions=topic.partition_count,
            )
        )
    return _plan(catalog, cluster, actions, refusals, names)


def make_reset_plan(
    catalog: Catalog,
    cluster: ClusterState,
    ranges: dict[tuple[str, int], tuple[int, int]] | None = None,
) -> Plan:
    """Delete every catalog topic that exists and create it again, empty, exactly as the
    catalog says; create the missing ones. Each re-creation is validated by the brokers
    before its topic is deleted. The catalog's own refusals (too few brokers for its
    replication) refuse the whole reset: nothing is deleted that could not come back."""
    fresh = make_plan(catalog, ClusterState(cluster.cluster_id, None, cluster.brokers, {}))
    refusals = [r for r in fresh.refusals]
    creates = {a.topic: a for a in fresh.actions if a.kind is ActionKind.CREATE_TOPIC}
    actions = []
    for spec in catalog.topics:
        create = creates.get(spec.name)
        if create is None:
            continue  # refused above
        if spec.name in cluster.topics:
            actions.append(
                Action(
                    ActionKind.DELETE_TOPIC,
                    spec.name,
                    destructive=True,
                    recreate=True,
                    records=records_held(cluster, spec.name, ranges),
                    partitions=cluster.topics[spec.name].partition_count,
                )
            )
            actions.append(
                Action(
                    ActionKind.CREATE_TOPIC,
                    spec.name,
                    partitions=create.partitions,
                    replication_factor=create.replication_factor,
                    configs=dict(create.configs),
                    recreate=True,
                )
            )
        else:
            actions.append(create)
    return _plan(catalog, cluster, actions, refusals, catalog.names())


CANARY_RETENTION_MS = 3_600_000


def make_canary_plan(cluster_id: str, live_brokers: int) -> Plan:
    """Create the health check's canary topic: 1 partition, replication min(3, brokers),
    1 h retention."""
    action = Action(
        ActionKind.CREATE_TOPIC,
        CANARY_TOPIC,
        partitions=1,
        replication_factor=max(1, min(3, live_brokers)),
        configs={"retention.ms": str(CANARY_RETENTION_MS), "cleanup.policy": "delete"},
    )
    return Plan(cluster_id, "", "", (action,), (), (), (), "")


def order(actions: Iterable[Action]) -> list[Action]:
    """Actions in the order they run (stable within a phase)."""
    rank = {p: i for i, p in enumerate(PHASES)}
    return sorted(actions, key=lambda a: rank[phase_of(a)])


# -- verification: what the cluster must show after the actions that reported success ------


def _topic_problems(a: Action, t) -> list[str]:
    if a.kind is ActionKind.DELETE_TOPIC:
        return (
            [f"{a.topic} was deleted but is still listed"]
            if t is not None and not a.recreate
            else []
        )
    if a.kind is ActionKind.CREATE_TOPIC:
        if t is None:
            return [f"{a.topic} was created but is not listed"]
        out = []
        if t.partition_count != a.partitions:
            out.append(
                f"{a.topic} has {t.partition_count} partition(s), {a.partitions} were created"
            )
        if t.replication_factor != a.replication_factor:
            out.append(
                f"{a.topic} has replication {t.replication_factor}, {a.replication_factor} was asked"
            )
        return out + [
            f"{a.topic}: {k} is {t.overrides.get(k, '(default)')} after creation, expected {v}"
            for k, v in sorted(a.configs.items())
            if canonical_value(k, t.overrides.get(k)) != canonical_value(k, v)
        ]
    if t is None:
        return []
    if a.kind is ActionKind.ALTER_CONFIGS:
        return [
            f"{a.topic}: {c.key} is {t.overrides.get(c.key, '(default)')} after the change, "
            f"expected {c.new if c.new is not None else '(default)'}"
            for c in a.changes
            if canonical_value(c.key, t.overrides.get(c.key)) != canonical_value(c.key, c.new)
        ]
    if a.kind is ActionKind.ADD_PARTITIONS and t.partition_count != a.partitions:
        return [
            f"{a.topic} has {t.partition_count} partition(s) after the change, expected {a.partitions}"
        ]
    return []


def verification_problems(
    actions: Iterable[Action],
    done: set[tuple[str, str]],
    cluster: ClusterState | None,
    group_offsets: dict[str, dict[tuple[str, int], int]] | None = None,
    access=None,
) -> list[str]:
    """What differs between the cluster read back and the actions that reported success
    (`done`: (step, subject) pairs). Pure: the caller reads `cluster`, `group_offsets` and
    `access` (a core.access.AccessState)."""
    from ecap_ops.core.access import access_problems

    actions = list(actions)
    problems: list[str] = access_problems(
        [a for a in actions if a.kind in ACCESS_KINDS], done, access
    )
    for a in actions:
        if (a.kind.value, a.subject) not in done or a.kind in ACCESS_KINDS:
            continue
        if a.kind is ActionKind.WRITE_OFFSETS:
            have = (group_offsets or {}).get(a.group, {})
            wrong = [(t, p, o) for t, p, o in a.offsets if have.get((t, p)) != o]
            if wrong:
                t, p, o = wrong[0]
                problems.append(
                    f"group {a.group}: {len(wrong)} offset(s) differ after the write, e.g. {t}[{p}] is "
                    f"{have.get((t, p))}, expected {o}"
                )
            continue
        topic = cluster.topics.get(a.topic) if cluster is not None else None
        problems += _topic_problems(a, topic)
    return problems
