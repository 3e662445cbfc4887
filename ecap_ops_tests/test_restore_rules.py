"""Restore obeys apply's rules: min.insync.replicas never above a topic's replication, a
destructive config change on a topic with data only when acknowledged; and it becomes the
one write path's typed actions (no second apply engine)."""

from ecap_ops.core.plan import ActionKind
from ecap_ops.core.restore import RestoreOptions, make_restore_plan, restore_actions
from ecap_ops.core.snapshot import topic_entry
from ecap_ops_tests.test_restore import DEV, cluster, snap, ts


def _snap():
    return snap(
        [
            topic_entry(
                "orders",
                2,
                1,
                [[1], [1]],
                {"retention.ms": "3600000", "min.insync.replicas": "2"},
            )
        ]
    )


def test_min_insync_above_replication_is_not_written():
    target = cluster([ts("orders", 2, overrides={"retention.ms": "3600000"})])
    plan = make_restore_plan(_snap(), target, DEV, RestoreOptions())
    assert not plan.alters
    assert any("min.insync.replicas 2" in n and "above its replication 1" in n for n in plan.notes)


def test_retention_decrease_on_data_needs_acknowledgement():
    target = cluster([ts("orders", 2, overrides={"retention.ms": "604800000"}, has_data=True)])
    plan = make_restore_plan(_snap(), target, DEV, RestoreOptions())
    assert [c.code for c in plan.conflicts] == ["destructive_config"]
    assert "--acknowledge-destructive orders" in plan.conflicts[0].message
    acked = make_restore_plan(
        _snap(), target, DEV, RestoreOptions(acknowledge_destructive=frozenset({"orders"}))
    )
    assert not acked.conflicts
    assert [(a.name, a.changes) for a in acked.alters] == [("orders", {"retention.ms": "3600000"})]


def test_restore_plan_becomes_typed_write_actions():
    plan = make_restore_plan(_snap(), cluster([]), DEV, RestoreOptions())
    acts = restore_actions(plan)
    assert [(a.kind, a.topic, a.partitions) for a in acts] == [
        (ActionKind.CREATE_TOPIC, "orders", 2)
    ]
    # min.insync.replicas lowered to the replication it gets (1 on this one-broker target).
    assert acts[0].configs["min.insync.replicas"] == "1"
    assert not any(a.kind is ActionKind.DELETE_TOPIC for a in acts)


def test_a_restore_plan_reads_offsets_only_where_a_config_would_change():
    """`data_matters`: only a topic whose snapshot overrides differ from the target's can
    meet the destructive rule; a restore of 2 topics on a cluster of thousands reads the
    offsets of those alone, and none when nothing would change."""
    from ecap_ops.core.restore import data_matters

    entries = [
        topic_entry("orders", 2, 1, [[1], [1]], {"retention.ms": "3600000"}),
        topic_entry("payments", 1, 1, [[1]], {"retention.ms": "3600000"}),
        topic_entry("lost", 1, 1, [[1]], {"retention.ms": "3600000"}),
        topic_entry("resized", 3, 1, [[1]] * 3, {"retention.ms": "1"}),
    ]
    s = snap(entries)
    target = cluster(
        [
            ts("orders", 2, overrides={"retention.ms": "604800000"}),  # would change
            ts("payments", 1, overrides={"retention.ms": "3600000"}),  # in sync
            ts("resized", 2, overrides={}),  # another partition count: left alone
            *[ts(f"other-{i}", 1) for i in range(50)],  # not in the snapshot
        ]
    )
    assert data_matters(s, target, RestoreOptions()) == ["orders"]
    assert data_matters(s, target, RestoreOptions(topics=("payments", "lost"))) == []
    pre = cluster([ts("dr.orders", 2, overrides={})])
    assert data_matters(s, pre, RestoreOptions(name_prefix="dr.")) == ["dr.orders"]
