"""The health check's rules, one function per check (core/health_checks.py), each judged
on its own from a table of observations. Pure: no broker."""

import pytest

from ecap_ops.core.health_checks import (
    CHECKS,
    check_brokers,
    check_canary,
    check_catalog,
    check_disk,
    check_log_dirs,
    check_partitions,
    check_quorum,
    missing_topic_severity,
    voters_behind,
)
from ecap_ops.core.health_model import (
    CRIT,
    OK,
    WARN,
    CanaryResult,
    DiskInfo,
    HealthObservation,
    HealthThresholds,
    Quorum,
    QuorumVoter,
)
from ecap_ops.core.state import BrokerInfo, ClusterState, PartitionState, TopicState

NOW = 1_790_000_000_000
TH = HealthThresholds()


def _topic(name, parts, overrides=None, internal=False) -> TopicState:
    return TopicState(
        name,
        tuple(
            PartitionState(i, ld, tuple(rep), tuple(isr)) for i, (ld, rep, isr) in enumerate(parts)
        ),
        overrides=overrides or {},
        internal=internal,
    )


def _obs(brokers=(1,), topics=(), env="dev", controller=1, **kw) -> HealthObservation:
    cluster = ClusterState(
        "cid",
        controller,
        tuple(BrokerInfo(b, "h", 9092) for b in brokers),
        {t.name: t for t in topics},
    )
    return HealthObservation("b:1", env, NOW, cluster=cluster, **kw)


def _sev(checked) -> list[str]:
    return [f.severity for f in checked.findings]


# ---- brokers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "brokers, replicas, fenced, env, controller, expected, words",
    [
        ((1,), (1,), (), "dev", 1, [OK], "1 broker(s) registered: 1"),
        ((1, 2), (1, 2, 3), (), "dev", 1, [WARN], "broker(s) 3 hold replicas"),
        ((1, 2, 3), (1, 2, 3), (2,), "dev", 1, [WARN], "broker(s) 2 hold replicas"),
        ((1,), (1,), (), "prod", 1, [WARN], "production needs at least 3"),
        ((1, 2, 3), (1, 2, 3), (), "prod", 1, [OK], "3 broker(s) registered"),
        ((), (), (), "dev", None, [CRIT, WARN], "no broker is registered"),
        ((1,), (1,), (), "dev", None, [OK, WARN], "reports no controller"),
    ],
)
def test_brokers(brokers, replicas, fenced, env, controller, expected, words):
    topics = [_topic("t", [(replicas[0], replicas, replicas)])] if replicas else []
    got = check_brokers(
        _obs(brokers, topics, env, controller=controller, fenced_brokers=fenced), TH
    )
    assert _sev(got) == expected
    assert any(words in f.message for f in got.findings), got.findings
    assert got.metrics == {"brokers": len(brokers)}


# ---- quorum -----------------------------------------------------------------------------


def _voters(*specs) -> tuple[QuorumVoter, ...]:
    return tuple(QuorumVoter(n, leo, fetch) for n, leo, fetch in specs)


@pytest.mark.parametrize(
    "quorum, error, env, expected, words",
    [
        (None, "timed out", "dev", WARN, "could not be described: timed out"),
        (Quorum(None, 10, _voters((1, 10, NOW))), None, "dev", CRIT, "no active controller"),
        (Quorum(1, 10, _voters((1, 10, NOW))), None, "dev", OK, "leader 1, 1 voter(s)"),
        (Quorum(1, 10, _voters((1, 10, NOW))), None, "prod", WARN, "no fault tolerance"),
        (
            Quorum(1, 10, _voters((1, 10, NOW), (2, 10, NOW))),
            None,
            "dev",
            WARN,
            "an even quorum",
        ),
        (
            Quorum(1, 5000, _voters((1, 5000, NOW), (2, 5000, NOW), (3, 10, NOW))),
            None,
            "dev",
            WARN,
            "voter 3 4,990 records behind",
        ),
        (
            Quorum(1, 10, _voters((1, 10, NOW), (2, 10, NOW - 60_000), (3, 10, NOW - 60_000))),
            None,
            "dev",
            CRIT,
            "has lost its majority",
        ),
    ],
)
def test_quorum(quorum, error, env, expected, words):
    got = check_quorum(_obs(env=env, quorum=quorum, quorum_error=error), TH)
    assert _sev(got) == [expected] and words in got.findings[0].message, got.findings
    if quorum is not None and quorum.leader_id is not None:
        assert got.metrics["quorum_voters"] == len(quorum.voters)


def test_a_voter_is_behind_by_records_or_by_silence_never_the_leader():
    q = Quorum(1, 2000, _voters((1, 0, NOW - 10**9), (2, 2000, NOW - 20_000), (3, 500, NOW)))
    behind = voters_behind(q, NOW, TH)
    assert behind == [
        "voter 2 0 records behind, last fetch 20 s ago",
        "voter 3 1,500 records behind, last fetch 0 s ago",
    ]
    assert (
        voters_behind(q, NOW, HealthThresholds(voter_stale_ms=30_000, voter_lag_records=2000)) == []
    )


# ---- partitions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parts, overrides, broker_min_isr, env, expected",
    [
        ([(1, [1, 2, 3], [1, 2, 3])], {}, None, "dev", [OK]),
        ([(1, [1, 2, 3], [1, 2])], {}, None, "dev", [WARN]),
        ([(1, [1, 2, 3], [1, 2])], {}, 3, "dev", [CRIT, WARN]),  # the brokers' min ISR
        ([(1, [1, 2, 3], [1, 2])], {"min.insync.replicas": "3"}, 1, "dev", [CRIT, WARN]),
        ([(None, [1, 2, 3], [])], {}, None, "dev", [CRIT, CRIT, WARN]),
        ([(1, [1], [1])], {}, None, "prod", [OK, WARN]),  # replication 1 in prod
        ([(1, [1], [1])], {}, None, "dev", [OK]),
    ],
)
def test_partitions(parts, overrides, broker_min_isr, env, expected):
    topics = [_topic("orders", parts, overrides)]
    got = check_partitions(_obs((1, 2, 3), topics, env, broker_min_isr=broker_min_isr), TH)
    assert _sev(got) == expected, got.findings
    assert got.partitions is not None
    n = got.metrics
    assert n["offline_partitions"] == sum(map(len, got.partitions.offline.values()))
    assert n["under_min_isr_partitions"] == sum(map(len, got.partitions.under_min_isr.values()))
    assert n["topics"] == 1


def test_kafkas_own_topics_are_not_single_replica_findings_and_the_list_is_cut_at_ten():
    topics = [_topic(f"t{i:02}", [(1, [1], [1])]) for i in range(12)]
    topics.append(_topic("__consumer_offsets", [(1, [1], [1])], internal=True))
    got = check_partitions(_obs((1,), topics, "prod"), TH)
    (rf1,) = [f for f in got.findings if f.subject == "replication 1"]
    assert rf1.message.startswith("12 topic(s)") and rf1.message.endswith("and 2 more")
    assert "__consumer_offsets" not in rf1.message


# ---- catalog ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw, env, expected",
    [
        ({}, "dev", [OK]),
        ({"catalog_missing": ("a",)}, "dev", [WARN]),
        ({"catalog_missing": ("a",)}, "prod", [CRIT]),
        ({"catalog_drift": ("x: 1 -> 2",)}, "prod", [WARN]),
        ({"catalog_missing": ("a",), "catalog_drift": ("x",)}, "prod", [CRIT, WARN]),
        ({"catalog_error": "boom", "catalog_missing": ("a",)}, "prod", [WARN]),
    ],
)
def test_catalog(kw, env, expected):
    got = check_catalog(_obs(env=env, **kw), TH)
    assert _sev(got) == expected, got.findings
    assert missing_topic_severity(env) == (CRIT if env == "prod" else WARN)


# ---- log directories and disk -----------------------------------------------------------


@pytest.mark.parametrize(
    "disks, errors, expected_dirs, expected_disk, worst_percent",
    [
        ((DiskInfo(1, "/d", None, 100, 50),), {}, [], [OK], 50.0),
        ((DiskInfo(1, "/d", None, 100, 15),), {}, [], [WARN], 85.0),
        ((DiskInfo(1, "/d", None, 100, 5),), {}, [], [CRIT], 95.0),
        ((DiskInfo(1, "/d", "KafkaStorageError", None, None),), {}, [CRIT], [], None),
        ((), {2: "timed out"}, [WARN], [], None),
        ((DiskInfo(1, "/d", None, None, None),), {}, [], [], None),  # sizes not reported
        (
            (DiskInfo(1, "/a", None, 100, 50), DiskInfo(2, "/b", None, 100, 10)),
            {},
            [],
            [OK, CRIT],
            90.0,
        ),
    ],
)
def test_log_dirs_and_disk(disks, errors, expected_dirs, expected_disk, worst_percent):
    obs = _obs(disks=disks, disk_errors=errors)
    assert _sev(check_log_dirs(obs, TH)) == expected_dirs
    disk = check_disk(obs, TH)
    assert _sev(disk) == expected_disk
    assert disk.metrics == {"disk_used_max_percent": worst_percent}


# ---- canary -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "canary, expected, words",
    [
        (None, [], None),
        (CanaryResult("c", 3, 3, 20.0), [OK], "3/3 message(s) back"),
        (CanaryResult("c", 3, 3, 2500.0), [WARN], "warning above 1000 ms"),
        (CanaryResult("c", 3, 1, 20.0, "waited 5 s"), [CRIT], "2 of 3 canary message(s)"),
        (CanaryResult("c", 3, 0, None, "KafkaTimeoutError"), [CRIT], "produce-then-consume failed"),
    ],
)
def test_canary(canary, expected, words):
    got = check_canary(_obs(canary=canary), TH)
    assert _sev(got) == expected
    if canary is not None:
        assert words in got.findings[0].message and got.metrics["canary_lost"] == canary.lost


def test_the_checks_run_in_the_order_the_report_lists_them():
    assert [c.__name__ for c in CHECKS] == [
        "check_brokers",
        "check_quorum",
        "check_partitions",
        "check_catalog",
        "check_log_dirs",
        "check_disk",
        "check_canary",
    ]
