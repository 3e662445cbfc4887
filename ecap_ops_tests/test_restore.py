"""The restore plan (pure): what is created, set, written, refused and left alone."""

import pytest

from ecap_ops.catalog import load_catalog
from ecap_ops.core.restore import (
    GroupStatus,
    RestoreOptions,
    make_restore_plan,
)
from ecap_ops.core.restore_report import check_restored, render_restore_plan
from ecap_ops.core.snapshot import Snapshot, build_snapshot, group_entry, topic_entry
from ecap_ops.core.state import BrokerInfo, ClusterState, PartitionState, TopicState

DEV = load_catalog(env="dev")
PROD = load_catalog(env="prod")


def snap(topics, groups=(), cluster="src") -> Snapshot:
    doc = build_snapshot(
        tool_version="0.1.0",
        cluster_id=cluster,
        broker_count=1,
        taken_at="2025-01-01T00:00:00.000Z",
        taken_at_ms=0,
        duration_ms=1,
        catalog_env="dev",
        catalog_digest="d",
        topics=list(topics),
        groups=list(groups),
        acls=[],
        scram_users=[
            {"name": "svc", "mechanisms": [{"mechanism": "SCRAM-SHA-512", "iterations": 4096}]}
        ],
        complete={
            "topics": True,
            "topic_configs": True,
            "groups": True,
            "group_offsets": True,
            "acls": False,
            "scram_users": True,
        },
        notes=["ACLs not available: no authorizer"],
    )
    return Snapshot(doc, "s.json")


def cluster(topics=(), brokers=1, cid="src") -> ClusterState:
    return ClusterState(
        cid,
        1,
        tuple(BrokerInfo(i, "h", 9092) for i in range(1, brokers + 1)),
        {t.name: t for t in topics},
    )


def ts(name, parts, rf=1, overrides=None, has_data=False) -> TopicState:
    return TopicState(
        name,
        tuple(
            PartitionState(i, 1, tuple(range(1, rf + 1)), tuple(range(1, rf + 1)))
            for i in range(parts)
        ),
        dict(overrides or {}),
        has_data=has_data,
    )


def te(name, parts=2, rf=1, overrides=None):
    return topic_entry(
        name,
        parts,
        rf,
        [[1]] * parts,
        {"retention.ms": "3600000"} if overrides is None else overrides,
        "id",
    )


def test_missing_topics_are_created_with_partitions_overrides_and_the_replication_rule():
    s = snap(
        [
            te("transactions", 6, 1, {"retention.ms": "604800000", "compression.type": "lz4"}),
            te("misc", 4, 3),
        ]
    )
    plan = make_restore_plan(s, cluster(brokers=1), DEV)
    by = {c.name: c for c in plan.creates}
    assert by["transactions"].partitions == 6 and by["transactions"].replication_factor == 1
    assert by["transactions"].configs == {"retention.ms": "604800000", "compression.type": "lz4"}
    assert "catalog (env dev)" in by["transactions"].replication_reason
    assert (
        by["misc"].replication_factor == 1
        and "min(snapshot 3, 1 live broker(s))" in by["misc"].replication_reason
    )
    assert not plan.blocked and plan.has_changes
    text = render_restore_plan(plan)
    assert "+ create topic transactions: 6 partitions, replication 1" in text
    assert "replication rule" in text


def test_prod_overlay_gives_replication_3_and_min_isr_on_another_cluster_only_when_asked():
    s = snap([te("transactions", 6, 1, {"retention.ms": "604800000"})])
    target = cluster(brokers=3, cid="other")
    refused = make_restore_plan(s, target, PROD)
    assert refused.blocked and "--allow-other-cluster" in refused.refusals[0]
    plan = make_restore_plan(s, target, PROD, RestoreOptions(allow_other_cluster=True))
    (c,) = plan.creates
    assert c.replication_factor == 3 and c.configs["min.insync.replicas"] == "2"


def test_min_isr_is_lowered_to_fit_the_replication():
    s = snap([te("misc", 1, 3, {"min.insync.replicas": "2"})], cluster="src")
    (c,) = make_restore_plan(s, cluster(brokers=1), DEV).creates
    assert c.replication_factor == 1 and c.configs["min.insync.replicas"] == "1"
    assert any("lowered from 2 to 1" in n for n in c.notes)


@pytest.mark.parametrize(
    "existing, code",
    [
        (ts("misc", 5), "partition_mismatch"),
        (ts("misc", 1), "partition_mismatch"),
        (
            ts("misc", 2, overrides={"retention.ms": "99999999999"}, has_data=True),
            "destructive_config",
        ),
    ],
)
def test_existing_topic_conflicts_are_left_alone(existing, code):
    plan = make_restore_plan(snap([te("misc")]), cluster([existing]), DEV)
    assert [c.code for c in plan.conflicts] == [code]
    assert not plan.creates and not plan.alters


def test_existing_topic_with_other_overrides_gets_the_snapshots_values_set():
    plan = make_restore_plan(
        snap([te("misc", overrides={"retention.ms": "3600000", "segment.ms": "60000"})]),
        cluster([ts("misc", 2, overrides={"retention.ms": "3600000", "flush.ms": "5"})]),
        DEV,
    )
    (a,) = plan.alters
    assert a.changes == {"segment.ms": "60000"}
    assert any("flush.ms" in n for n in plan.notes)  # extra overrides are reported, never removed


def test_in_sync_topic_is_nothing_to_do():
    plan = make_restore_plan(
        snap([te("misc")]), cluster([ts("misc", 2, overrides={"retention.ms": "3600000"})]), DEV
    )
    assert plan.in_sync == ["misc"] and not plan.has_changes
    assert "Nothing to restore" in render_restore_plan(plan)


def test_topic_missing_its_config_in_the_snapshot_is_a_conflict():
    plan = make_restore_plan(snap([topic_entry("misc", 2, 1, [[1], [1]], None)]), cluster(), DEV)
    assert [c.code for c in plan.conflicts] == ["config_missing"] and not plan.creates


def test_unknown_topic_in_filter_refuses_everything():
    plan = make_restore_plan(snap([te("misc")]), cluster(), DEV, RestoreOptions(topics=("nope",)))
    assert plan.blocked and "nope is not in the snapshot" in plan.refusals[0]


def _group(offsets):
    return group_entry(
        "g",
        "Empty",
        "consumer",
        0,
        [{"topic": t, "partition": p, "offset": o, "end_offset": 100} for t, p, o in offsets],
        0,
    )


def test_offsets_clamped_to_a_fresh_topic_and_to_existing_ranges():
    s = snap([te("new"), te("old")], [_group([("new", 0, 40), ("old", 0, 50), ("old", 1, 3)])])
    target = cluster([ts("old", 2, overrides={"retention.ms": "3600000"})])
    plan = make_restore_plan(
        s,
        target,
        DEV,
        RestoreOptions(include_offsets=True),
        {},
        {("old", 0): (0, 80), ("old", 1): (10, 80)},
    )
    (g,) = plan.groups
    w = {(x.topic, x.partition): x for x in g.writes}
    assert w[("new", 0)].offset == 0 and "clamped from 40 to the end offset 0" in w[("new", 0)].note
    assert w[("old", 0)].offset == 50 and not w[("old", 0)].note
    assert w[("old", 1)].offset == 10 and "start offset 10" in w[("old", 1)].note


def test_offsets_are_not_written_into_a_group_with_members():
    s = snap([te("old")], [_group([("old", 0, 5)])])
    target = cluster([ts("old", 2, overrides={"retention.ms": "3600000"})])
    status = {"g": GroupStatus("g", "Stable", 2, {("old", 0): 1})}
    plan = make_restore_plan(
        s, target, DEV, RestoreOptions(include_offsets=True), status, {("old", 0): (0, 10)}
    )
    assert not plan.groups and [(c.subject, c.code) for c in plan.conflicts] == [
        ("g", "group_active")
    ]
    assert "2 active member(s)" in plan.conflicts[0].message


def test_offsets_already_equal_and_offsets_not_asked_for():
    s = snap([te("old")], [_group([("old", 0, 5)])])
    target = cluster([ts("old", 2, overrides={"retention.ms": "3600000"})])
    plan = make_restore_plan(
        s,
        target,
        DEV,
        RestoreOptions(include_offsets=True),
        {"g": GroupStatus("g", "Empty", 0, {("old", 0): 5})},
        {("old", 0): (0, 10)},
    )
    assert plan.groups_in_sync == ["g"] and not plan.has_changes
    plan = make_restore_plan(s, target, DEV)
    assert not plan.groups and any("not asked for" in n for n in plan.not_restored)
    assert any("SCRAM user" in n and "never hold secrets" in n for n in plan.not_restored)


def test_drill_prefix_names_and_comparison():
    s = snap([te("misc", 2, 1, {"retention.ms": "3600000"})], [_group([("misc", 0, 1)])])
    plan = make_restore_plan(
        s, cluster([ts("misc", 2)]), DEV, RestoreOptions(include_offsets=True, name_prefix="drill.")
    )
    (c,) = plan.creates
    assert c.name == "drill.misc" and not plan.groups  # offsets are never written under a prefix
    good = cluster([ts("drill.misc", 2, overrides={"retention.ms": "3600000"})])
    assert [x.ok for x in check_restored(plan, s, good)] == [True]
    bad = cluster([ts("drill.misc", 2, overrides={})])
    (chk,) = check_restored(plan, s, bad)
    assert not chk.ok and "retention.ms: snapshot 3600000, restored (default)" in chk.problems[0]
