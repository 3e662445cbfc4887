"""`core.health.evaluate` composes the checks: every check's findings in order, their
numbers merged, the partition lists of the one partition-health rule, the worst severity as
the status; any observation is judged without raising. (The model's own rules: test_health_model.py.) Pure: no broker."""

from hypothesis import given, settings
from hypothesis import strategies as st

from ecap_ops.core.health import (
    CRIT,
    CanaryResult,
    DiskInfo,
    HealthObservation,
    HealthThresholds,
    Quorum,
    QuorumVoter,
    evaluate,
    render_text,
    report_rows,
    worst,
    worst_first,
)
from ecap_ops.core.health_checks import CHECKS
from ecap_ops.core.partition_health import partition_health
from ecap_ops.core.state import BrokerInfo, ClusterState, PartitionState, TopicState

NOW = 1_790_000_000_000

_ids = st.integers(1, 4)
_partition = st.tuples(
    st.one_of(st.none(), _ids),
    st.lists(_ids, max_size=3, unique=True),
    st.lists(_ids, max_size=3, unique=True),
)
_topics = st.dictionaries(
    st.sampled_from(["orders", "__consumer_offsets", "t-1", "x"]),
    st.tuples(
        st.lists(_partition, max_size=4),
        st.one_of(st.none(), st.sampled_from(["1", "2", "3", "x", ""])),
    ),
    max_size=4,
)


@st.composite
def observations(draw) -> HealthObservation:
    topics = {
        n: TopicState(
            n,
            tuple(PartitionState(i, ld, tuple(r), tuple(isr)) for i, (ld, r, isr) in enumerate(ps)),
            overrides={} if misr is None else {"min.insync.replicas": misr},
        )
        for n, (ps, misr) in draw(_topics).items()
    }
    brokers = draw(st.lists(_ids, max_size=3, unique=True))
    voters = draw(
        st.lists(
            st.builds(
                QuorumVoter,
                _ids,
                st.integers(-1, 5000),
                st.one_of(st.none(), st.integers(-1, NOW)),
            ),
            max_size=4,
        )
    )
    quorum = draw(
        st.one_of(
            st.none(),
            st.builds(
                Quorum,
                st.one_of(st.none(), _ids),
                st.integers(0, 5000),
                st.just(tuple(voters)),
            ),
        )
    )
    disks = draw(
        st.lists(
            st.builds(
                DiskInfo,
                _ids,
                st.sampled_from(["/a", "/b"]),
                st.one_of(st.none(), st.just("KafkaStorageError")),
                st.one_of(st.none(), st.integers(0, 1000)),
                st.one_of(st.none(), st.integers(0, 1000)),
            ),
            max_size=3,
        )
    )
    canary = draw(
        st.one_of(
            st.none(),
            st.builds(
                CanaryResult,
                st.just("c"),
                st.integers(0, 3),
                st.integers(0, 3),
                st.one_of(st.none(), st.floats(0, 5000)),
                st.one_of(st.none(), st.text(max_size=10)),
            ),
        )
    )
    return HealthObservation(
        "b:1",
        draw(st.sampled_from(["dev", "prod"])),
        NOW,
        cluster=ClusterState(
            "cid",
            draw(st.one_of(st.none(), _ids)),
            tuple(BrokerInfo(b, "h", 9092) for b in brokers),
            topics,
        ),
        fenced_brokers=tuple(draw(st.lists(_ids, max_size=2))),
        quorum=quorum,
        quorum_error=None if quorum else "no answer",
        broker_min_isr=draw(st.one_of(st.none(), st.integers(1, 3))),
        disks=tuple(disks),
        disk_errors=draw(st.dictionaries(_ids, st.text(max_size=8), max_size=2)),
        catalog_missing=tuple(draw(st.lists(st.sampled_from(["a", "b"]), max_size=2))),
        catalog_drift=tuple(draw(st.lists(st.text(max_size=10), max_size=2))),
        canary=canary,
    )


@given(obs=observations())
@settings(max_examples=150, deadline=None)
def test_evaluate_is_the_checks_composed_for_any_observation(obs):
    report = evaluate(obs)
    th = HealthThresholds()
    parts = [check(obs, th) for check in CHECKS]
    assert list(report.findings) == [f for p in parts for f in p.findings]
    for p in parts:
        for key, value in p.metrics.items():
            assert report.metrics[key] == value
    assert report.status == worst(f.severity for f in report.findings)
    assert report.healthy is (report.status != CRIT)
    ph = partition_health(obs.cluster.topics, obs.broker_min_isr)
    assert (report.offline, report.under_replicated, report.under_min_isr) == (
        ph.offline,
        ph.under_replicated,
        ph.under_min_isr,
    )
    assert report.topic_partitions == {n: t.partition_count for n, t in obs.cluster.topics.items()}
    assert [r[0] for r in report_rows(report)] == [f.severity for f in worst_first(report.findings)]
    assert render_text(report).startswith(report.status)


def test_an_unreachable_cluster_is_one_critical_finding_and_nothing_else():
    r = evaluate(HealthObservation("b:1", "prod", NOW, error="timed out"))
    assert [(f.check, f.severity) for f in r.findings] == [("connection", CRIT)]
    assert r.metrics == {"reachable": 0} and r.cluster_id is None and r.offline == {}
    assert r.exit_code() == 1
