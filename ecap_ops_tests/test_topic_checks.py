"""The topic assets' checks (core/topic_checks.py) judged from one health check: the same
partition-health rule and min.insync.replicas as the health job's partition findings, the
same catalog drift as its catalog findings. Pure: no broker."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecap_ops.catalog import load_catalog
from ecap_ops.core.drift import catalog_drift
from ecap_ops.core.health import HealthObservation, evaluate
from ecap_ops.core.state import BrokerInfo, ClusterState, PartitionState, TopicState
from ecap_ops.core.topic_checks import CHECK_NAMES, topic_check_outcomes

NOW = 1_790_000_000_000
DEV = load_catalog(env="dev")
PROD = dataclasses.replace(DEV, env="prod")
TX = DEV.get("transactions")


def _topic(spec, parts=None, **overrides) -> TopicState:
    parts = parts or [(1, [1], [1])] * spec.partitions
    return TopicState(
        spec.name,
        tuple(PartitionState(i, ld, tuple(r), tuple(isr)) for i, (ld, r, isr) in enumerate(parts)),
        overrides={**spec.configs, **overrides},
    )


def _judge(catalog, topics, broker_min_isr=None, compared=True):
    """What the health service does: one observation, its drift, the report, the checks."""
    cluster = ClusterState("cid", 1, (BrokerInfo(1, "h", 9092),), {t.name: t for t in topics})
    drift = catalog_drift(catalog, cluster) if compared else None
    obs = HealthObservation(
        "b:1",
        catalog.env,
        NOW,
        cluster=cluster,
        broker_min_isr=broker_min_isr,
        catalog_missing=drift.missing if drift else (),
        catalog_drift=drift.lines if drift else (),
    )
    report = evaluate(obs)
    outcomes = topic_check_outcomes(catalog, report, cluster, drift)
    return report, {(o.topic, o.check): o for o in outcomes}


def test_a_catalog_as_declared_passes_every_check_of_every_topic():
    report, got = _judge(DEV, [_topic(s) for s in DEV.topics])
    assert set(got) == {(s.name, c) for s in DEV.topics for c in CHECK_NAMES}
    assert all(o.passed for o in got.values()), [o for o in got.values() if not o.passed]
    # The observation has no KRaft quorum (this scene describes none): that warning only.
    assert report.status == "WARN"
    assert [f.message for f in report.findings if f.severity != "OK"] == [
        "the KRaft quorum could not be described: no answer"
    ]


@pytest.mark.parametrize("catalog, severity", [(DEV, "WARN"), (PROD, "ERROR")])
def test_a_missing_topic_fails_every_check_at_the_health_findings_severity(catalog, severity):
    report, got = _judge(catalog, [_topic(s) for s in catalog.topics if s.name != TX.name])
    (finding,) = [f for f in report.findings if f.message.startswith("catalog topic(s) missing")]
    assert got[(TX.name, "matches_catalog")].severity == severity
    assert finding.severity == ("CRIT" if severity == "ERROR" else "WARN")
    assert not got[(TX.name, "availability")].passed
    assert got[(TX.name, "replication")].description == f"{TX.name} does not exist"


def test_drift_is_the_same_in_the_check_and_the_health_finding():
    topics = [
        _topic(s, **({"retention.ms": "3600000"} if s.name == TX.name else {})) for s in DEV.topics
    ]
    report, got = _judge(DEV, topics)
    check = got[(TX.name, "matches_catalog")]
    assert not check.passed and check.severity == "WARN"
    assert "retention.ms expected" in check.description and "actual 3600000" in check.description
    (finding,) = [f for f in report.findings if f.message.startswith("differs from the catalog")]
    assert "retention.ms" in finding.message and TX.name in finding.message
    kind, (headers, rows) = check.metadata["drift"]
    assert kind == "table" and rows == [["retention.ms", TX.configs["retention.ms"], "3600000"]]


def test_not_compared_says_why():
    report, got = _judge(DEV, [_topic(s) for s in DEV.topics], compared=False)
    check = got[(TX.name, "matches_catalog")]
    assert not check.passed and "could not be compared" in check.description


_parts = st.lists(
    st.tuples(
        st.one_of(st.none(), st.just(1)),
        st.sampled_from([[1], [1, 2], [1, 2, 3]]),
        st.sampled_from([[], [1], [1, 2], [1, 2, 3]]),
    ),
    min_size=1,
    max_size=4,
)


@given(
    parts=_parts,
    override=st.one_of(st.none(), st.sampled_from(["1", "2", "3"])),
    broker_min_isr=st.one_of(st.none(), st.integers(1, 3)),
)
@settings(max_examples=150, deadline=None)
def test_availability_and_replication_follow_the_health_findings_exactly(
    parts, override, broker_min_isr
):
    extra = {} if override is None else {"min.insync.replicas": override}
    topic = _topic(TX, parts)
    topic = dataclasses.replace(topic, overrides={**topic.overrides, **extra})
    if override is None:
        topic.overrides.pop("min.insync.replicas", None)
    catalog = DEV.select([TX.name])
    report, got = _judge(catalog, [topic], broker_min_isr)
    offline = report.offline.get(TX.name, [])
    under = report.under_replicated.get(TX.name, [])
    under_min = report.under_min_isr.get(TX.name, [])
    avail, repl = got[(TX.name, "availability")], got[(TX.name, "replication")]
    assert avail.passed is (not offline)
    assert repl.passed is (not under and not under_min)
    assert repl.severity == ("ERROR" if under_min else "WARN")
    # The same partitions the health job's findings name.
    crit_subjects = {f.subject for f in report.findings if f.check == "partitions"}
    assert ("offline" in crit_subjects) is bool(offline)
    assert ("under min ISR" in crit_subjects) is bool(under_min)
    assert ("under-replicated" in crit_subjects) is bool(under)
