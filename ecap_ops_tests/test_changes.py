"""The write path's pure rules: delete and reset planners, execution order, batching under
KRaft's metadata-record cap, and the one rule for destructive config changes."""

from ecap_ops.catalog import load_catalog
from ecap_ops.core.changes import (
    KRAFT_MAX_RECORDS_PER_REQUEST,
    batches,
    make_delete_plan,
    make_reset_plan,
    metadata_records,
    order,
    phase_of,
)
from ecap_ops.core.plan import Action, ActionKind, destructive_reason
from ecap_ops_tests.test_plan import cluster, topic

DEV = load_catalog(env="dev")
PROD = load_catalog(env="prod")


def test_reset_deletes_only_after_planning_each_recreation_and_creates_the_missing():
    c = cluster(topic("transactions", 6), topic("user-events", 12))
    plan = make_reset_plan(DEV, c, {("transactions", p): (0, 5) for p in range(6)})
    kinds = [(a.kind, a.topic, a.recreate) for a in plan.actions]
    assert (ActionKind.DELETE_TOPIC, "transactions", True) in kinds
    assert (ActionKind.CREATE_TOPIC, "transactions", True) in kinds
    assert (ActionKind.CREATE_TOPIC, "fraud-alerts", False) in kinds
    deleted = next(a for a in plan.actions if a.kind is ActionKind.DELETE_TOPIC)
    assert deleted.records == 30
    # user-events' offsets were not read: unknown, not zero.
    ue = next(
        a for a in plan.actions if a.kind is ActionKind.DELETE_TOPIC and a.topic == "user-events"
    )
    assert ue.records is None
    assert not plan.blocked


def test_reset_on_too_few_brokers_is_refused_whole():
    plan = make_reset_plan(PROD, cluster(topic("transactions", 6)))
    assert plan.blocked and {r.code for r in plan.refusals} == {"too_few_brokers"}
    assert not any(a.kind is ActionKind.DELETE_TOPIC for a in plan.actions)


def test_delete_refuses_internal_missing_catalog_and_canary_unless_forced():
    c = cluster(
        topic("__consumer_offsets", internal=True),
        topic("transactions"),
        topic("ecap-ops-canary"),
        topic("scratch"),
    )
    plan = make_delete_plan(
        DEV, c, ["__consumer_offsets", "nope", "transactions", "ecap-ops-canary", "scratch"]
    )
    assert {r.topic: r.code for r in plan.refusals} == {
        "__consumer_offsets": "internal",
        "nope": "missing",
        "transactions": "catalog_topic",
        "ecap-ops-canary": "canary",
    }
    assert [a.topic for a in plan.actions] == ["scratch"]
    forced = make_delete_plan(DEV, c, ["transactions", "nope"], force=True)
    assert [a.topic for a in forced.actions] == ["transactions"]
    assert [r.code for r in forced.refusals] == ["missing"]


def test_order_never_deletes_before_creating_and_writes_offsets_last():
    acts = [
        Action(ActionKind.WRITE_OFFSETS, "g", group="g", offsets=(("t", 0, 1),)),
        Action(ActionKind.DELETE_TOPIC, "old"),
        Action(ActionKind.DELETE_TOPIC, "r", recreate=True),
        Action(ActionKind.CREATE_TOPIC, "r", partitions=1, replication_factor=1, recreate=True),
        Action(ActionKind.ADD_PARTITIONS, "p", partitions=4, current_partitions=2),
        Action(ActionKind.ALTER_CONFIGS, "a"),
        Action(ActionKind.CREATE_TOPIC, "new", partitions=1, replication_factor=1),
    ]
    assert [phase_of(a) for a in order(acts)] == [
        "create",
        "alter_configs",
        "add_partitions",
        "recreate",
        "recreate",
        "delete",
        "write_offsets",
    ]


def test_batches_stay_under_krafts_record_cap():
    creates = [
        Action(
            ActionKind.CREATE_TOPIC,
            f"t{i}",
            partitions=1,
            replication_factor=1,
            configs={"a": "1", "b": "2", "c": "3"},
        )
        for i in range(10_000)
    ]
    cut = list(batches(creates))
    assert sum(len(b) for b in cut) == 10_000 and len(cut) >= 6
    assert all(sum(metadata_records(a) for a in b) < KRAFT_MAX_RECORDS_PER_REQUEST for b in cut)
    # One topic bigger than the budget still goes (alone): the brokers say why they refuse it.
    huge = Action(ActionKind.CREATE_TOPIC, "huge", partitions=20_000, replication_factor=1)
    assert [len(b) for b in batches([creates[0], huge, creates[1]])] == [1, 1, 1]


def test_one_destructive_rule_for_plan_and_restore():
    assert destructive_reason("retention.ms", "604800000", "3600000", True, "delete")
    assert not destructive_reason("retention.ms", "604800000", "3600000", False, "delete")
    assert destructive_reason("retention.ms", "604800000", "3600000", None, "delete")
    assert not destructive_reason("retention.ms", "3600000", "-1", True, "delete")
    assert not destructive_reason("retention.ms", "604800000", "3600000", True, "compact")
    assert destructive_reason("cleanup.policy", "delete", "compact", True, "delete")
    assert not destructive_reason("cleanup.policy", "delete", "delete", True, "delete")


def test_verification_names_every_difference_after_the_change():
    from ecap_ops.core.changes import verification_problems
    from ecap_ops.core.plan import ConfigChange

    acts = [
        Action(
            ActionKind.CREATE_TOPIC,
            "new",
            partitions=3,
            replication_factor=1,
            configs={"retention.ms": "1000"},
        ),
        Action(
            ActionKind.ALTER_CONFIGS,
            "alt",
            changes=(ConfigChange("retention.ms", None, "5", None, "5"),),
        ),
        Action(ActionKind.ADD_PARTITIONS, "grow", partitions=4, current_partitions=2),
        Action(ActionKind.DELETE_TOPIC, "gone"),
        Action(ActionKind.WRITE_OFFSETS, "g", group="g", offsets=(("new", 0, 7),)),
        Action(ActionKind.CREATE_TOPIC, "failed", partitions=1, replication_factor=1),
    ]
    done = {(a.kind.value, a.subject) for a in acts[:5]}
    c = cluster(
        topic("new", 2),
        topic("alt", overrides={"retention.ms": "9"}),
        topic("grow", 2),
        topic("gone"),
    )
    problems = verification_problems(acts, done, c, {"g": {("new", 0): 3}})
    text = "\n".join(problems)
    assert "new has 2 partition(s), 3 were created" in text
    assert "new: retention.ms is (default) after creation, expected 1000" in text
    assert "alt: retention.ms is 9 after the change, expected 5" in text
    assert "grow has 2 partition(s) after the change, expected 4" in text
    assert "gone was deleted but is still listed" in text
    assert "group g: 1 offset(s) differ" in text
    assert "failed" not in text  # not reported done: nothing to verify
    ok = cluster(
        topic("new", 3, overrides={"retention.ms": "1000"}),
        topic("alt", overrides={"retention.ms": "5"}),
        topic("grow", 4),
    )
    assert verification_problems(acts, done, ok, {"g": {("new", 0): 7}}) == []


class _LaggingBroker:
    """A gateway whose access reads show the cluster as it was for the first `stale` reads,
    as a broker's metadata copy does for a moment after the controller committed a change."""

    def __init__(self, before, after, stale: int):
        self.reads = [before] * stale + [after]

    def read_access(self, _gw):
        return self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]


def _acl_write(monkeypatch, stale: int, lands: bool):
    from ecap_ops.catalog.access import AclBinding
    from ecap_ops.core.access import AccessState
    from ecap_ops.core.plan import Plan
    from ecap_ops.gateway import access as gw_access
    from ecap_ops.services import write

    b = AclBinding("User:fraud-detector", "topic", "transactions", "literal", "read")
    action = Action(ActionKind.CREATE_ACLS, "User:fraud-detector", acls=(b,))
    plan = Plan("c", "dev", "d", (action,), (), (), (), "f")
    result = write.WriteResult(plan=plan, purpose="access apply")
    write._record(result, action, True, "1 binding(s) created")
    broker = _LaggingBroker(
        AccessState(authorizer=True), AccessState(True, frozenset({b} if lands else ())), stale
    )
    monkeypatch.setattr(gw_access, "read_access", broker.read_access)
    naps: list[float] = []
    monkeypatch.setattr(write.time, "sleep", naps.append)
    write._verify(object(), plan, result)
    return result, naps


def test_read_back_waits_for_a_broker_whose_metadata_follows_the_controller(monkeypatch):
    # The binding shows on the third read: no problem, after two short waits.
    result, naps = _acl_write(monkeypatch, stale=2, lands=True)
    assert result.verify_problems == [] and len(naps) == 2


def test_read_back_reports_a_change_that_never_shows(monkeypatch):
    clock = iter(range(0, 1000, 3))  # each look at the clock is 3 s later
    from ecap_ops.services import write

    monkeypatch.setattr(write.time, "monotonic", lambda: next(clock))
    result, naps = _acl_write(monkeypatch, stale=0, lands=False)
    assert result.verify_problems == [
        "User:fraud-detector: 1 binding(s) missing after creation, e.g. allow "
        "User:fraud-detector read on topic transactions"
    ]
    assert 1 <= len(naps) <= 5  # gave up once its wait (10 s) was over
