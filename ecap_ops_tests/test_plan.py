"""Planning, as pure logic over hand-built cluster states."""

import pytest

from ecap_ops.catalog import load_catalog, parse_catalog
from ecap_ops.core.plan import ActionKind, make_plan, render_plan
from ecap_ops.core.state import BrokerInfo, ClusterState, PartitionState, TopicState

CATALOG = load_catalog(env="dev")


def topic(name, partitions=1, rf=1, overrides=None, has_data=False, defaults=None, internal=False):
    return TopicState(
        name=name,
        partitions=tuple(
            PartitionState(i, 1, tuple(range(1, rf + 1)), tuple(range(1, rf + 1)))
            for i in range(partitions)
        ),
        overrides=dict(overrides or {}),
        defaults=dict(defaults or {}),
        has_data=has_data,
        internal=internal,
    )


def cluster(*topics, brokers=1):
    return ClusterState(
        "c1",
        1,
        tuple(BrokerInfo(i, "127.0.0.1", 9092 + i) for i in range(1, brokers + 1)),
        {t.name: t for t in topics},
    )


def in_sync_cluster(*others, **changes):
    """The catalog's topics as declared (`changes` replaces some by name), then `others`."""
    topics = []
    for spec in CATALOG.topics:
        t = topic(spec.name, spec.partitions, spec.replication_factor, spec.configs)
        topics.append(changes.get(spec.name, t))
    return cluster(*topics, *others)


def test_empty_cluster_creates_every_topic_in_catalog_order():
    plan = make_plan(CATALOG, cluster())
    assert [a.kind for a in plan.actions] == [ActionKind.CREATE_TOPIC] * 5
    assert [a.topic for a in plan.actions] == CATALOG.names()
    tx = plan.actions[0]
    assert (
        tx.partitions == 6
        and tx.replication_factor == 1
        and tx.configs["compression.type"] == "lz4"
    )
    assert plan.has_changes and not plan.blocked


def test_matching_cluster_gives_an_empty_plan():
    plan = make_plan(CATALOG, in_sync_cluster())
    assert not plan.actions and not plan.refusals
    assert list(plan.in_sync) == CATALOG.names()
    assert "No changes" in render_plan(plan)


def test_drifted_retention_is_an_incremental_alter_not_a_recreate():
    drifted = topic(
        "transactions", 6, 1, {**CATALOG.get("transactions").configs, "retention.ms": "1000"}
    )
    plan = make_plan(CATALOG, in_sync_cluster(transactions=drifted))
    assert len(plan.actions) == 1
    a = plan.actions[0]
    assert a.kind is ActionKind.ALTER_CONFIGS and a.topic == "transactions"
    assert [(c.key, c.old, c.new) for c in a.changes] == [("retention.ms", "1000", "604800000")]
    assert not a.destructive  # raising retention deletes nothing


def test_an_override_missing_from_the_catalog_is_removed():
    extra = topic(
        "fraud-alerts", 2, 1, {**CATALOG.get("fraud-alerts").configs, "segment.ms": "3600000"}
    )
    plan = make_plan(CATALOG, in_sync_cluster(**{"fraud-alerts": extra}))
    (a,) = plan.actions
    (c,) = a.changes
    assert (c.key, c.old, c.new) == ("segment.ms", "3600000", None)


def test_broker_defaults_are_not_drift():
    # Only topic-level overrides are compared: a topic whose overrides equal the catalog's
    # is in sync whatever the broker's defaults are.
    t = topic(
        "transactions", 6, 1, CATALOG.get("transactions").configs, defaults={"retention.ms": "1"}
    )
    assert make_plan(CATALOG, in_sync_cluster(transactions=t)).in_sync[0] == "transactions"


def test_partition_decrease_is_refused_with_the_field_and_nothing_else_runs():
    more = topic("user-events", 20, 1, CATALOG.get("user-events").configs)
    plan = make_plan(CATALOG, in_sync_cluster(**{"user-events": more}))
    assert plan.blocked and not plan.actions
    (r,) = plan.refusals
    assert r.code == "partition_decrease" and r.field == "topics.user-events.partitions"
    assert "asks for 12 but user-events has 20" in r.message


def test_partition_increase_on_a_keyed_topic_warns():
    fewer = topic("transactions", 3, 1, CATALOG.get("transactions").configs)
    plan = make_plan(CATALOG, in_sync_cluster(transactions=fewer))
    (a,) = plan.actions
    assert a.kind is ActionKind.ADD_PARTITIONS and (a.current_partitions, a.partitions) == (3, 6)
    assert "keyed by user_id" in a.warnings[0]


def test_replication_change_is_refused_as_needing_a_reassignment():
    rf3 = make_plan(
        load_catalog(env="prod"),
        cluster(*(topic(s.name, s.partitions, 1, s.configs) for s in CATALOG.topics), brokers=3),
    )
    assert {r.code for r in rf3.refusals} == {"replication_change"}
    assert "reassignment" in rf3.refusals[0].message


def test_replication_above_live_brokers_is_refused_naming_the_field():
    plan = make_plan(load_catalog(env="prod"), cluster(brokers=1))
    assert plan.blocked and not plan.actions
    assert all(r.code == "too_few_brokers" for r in plan.refusals)
    assert plan.refusals[0].message.startswith(
        "topics.transactions.replication_factor: 3 is more than the 1 live broker(s)"
    )


@pytest.mark.parametrize(
    "has_data, new_retention, refused",
    [
        (True, "1000", True),
        (False, "1000", False),
        (True, "999999999999", False),
        (None, "1000", True),
    ],
)
def test_retention_decrease_on_a_topic_with_data_needs_acknowledgement(
    has_data, new_retention, refused
):
    text = f"topics:\n  t: {{partitions: 1, configs: {{retention.ms: {new_retention}}}}}\n"
    cat = parse_catalog(text, env="dev")
    t = topic("t", 1, 1, {"retention.ms": "86400000"}, has_data=has_data)
    plan = make_plan(cat, cluster(t))
    assert plan.blocked is refused
    if refused:
        assert (
            plan.refusals[0].code == "destructive"
            and "--acknowledge-destructive t" in plan.refusals[0].message
        )
        assert not make_plan(cat, cluster(t), frozenset({"t"})).blocked
        assert not make_plan(cat, cluster(t), frozenset({"*"})).blocked


def test_infinite_retention_to_finite_is_a_decrease():
    cat = parse_catalog("topics:\n  t: {partitions: 1, retention: 7d}\n", env="dev")
    plan = make_plan(cat, cluster(topic("t", 1, 1, {"retention.ms": "-1"}, has_data=True)))
    assert plan.refusals[0].code == "destructive"


def test_cleanup_policy_change_on_data_is_destructive():
    cat = parse_catalog("topics:\n  t: {partitions: 1, cleanup_policy: compact}\n", env="dev")
    plan = make_plan(cat, cluster(topic("t", 1, 1, {"cleanup.policy": "delete"}, has_data=True)))
    assert (
        plan.refusals[0].code == "destructive" and "compaction removes" in plan.refusals[0].message
    )


def test_cleanup_policy_order_is_not_drift():
    cat = parse_catalog(
        "topics:\n  t: {partitions: 1, cleanup_policy: 'delete,compact'}\n", env="dev"
    )
    assert make_plan(
        cat, cluster(topic("t", 1, 1, {"cleanup.policy": "compact,delete"}))
    ).in_sync == ("t",)


def test_unmanaged_topics_are_reported_never_deleted():
    others = (topic("legacy"), topic("__consumer_offsets", internal=True))
    # Beside the declared topics as declared: reported, and nothing to do.
    plan = make_plan(CATALOG, in_sync_cluster(*others))
    assert plan.unmanaged == ("legacy",)
    assert list(plan.actions) == []
    # Beside none of them: the declared topics are created, the others left alone.
    plan = make_plan(CATALOG, cluster(*others))
    assert plan.unmanaged == ("legacy",)
    assert [(a.kind, a.topic) for a in plan.actions] == [
        (ActionKind.CREATE_TOPIC, name) for name in CATALOG.names()
    ]


def test_fingerprint_changes_with_the_observed_state():
    a = make_plan(CATALOG, in_sync_cluster())
    b = make_plan(
        CATALOG,
        in_sync_cluster(
            transactions=topic("transactions", 7, 1, CATALOG.get("transactions").configs)
        ),
    )
    assert a.fingerprint != b.fingerprint
    assert a.fingerprint == make_plan(CATALOG, in_sync_cluster()).fingerprint


def test_our_own_canary_topic_is_not_reported_as_unmanaged():
    from ecap_ops.core.state import CANARY_TOPIC

    plan = make_plan(CATALOG, cluster(topic(CANARY_TOPIC), topic("legacy")))
    assert plan.unmanaged == ("legacy",)
