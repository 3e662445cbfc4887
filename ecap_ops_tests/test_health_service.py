"""The health service (services/health.py) against the real broker: one read of the
cluster judged by the core, with the catalog drift made on that same read; the topic
assets' checks come from that one health check (no second read), by the same
partition-health rule and min.insync.replicas as the health job's findings."""

import dataclasses

import pytest

from ecap_ops.catalog import load_catalog
from ecap_ops.core.health import CRIT, WARN
from ecap_ops.gateway import KafkaGateway
from ecap_ops.services.health import (
    check_health,
    compare_with_catalog,
    judge_topic_checks,
    observe_topic_checks,
    run_health_check,
)
from ecap_ops.services.provisioning import apply_topics

pytestmark = pytest.mark.kafka


def _catalog(name: str):
    """The catalog's `transactions` under a name of this test's own."""
    picked = load_catalog(env="dev").select(["transactions"])
    (tx,) = picked.topics
    return dataclasses.replace(picked, topics=(dataclasses.replace(tx, name=name),))


@pytest.fixture
def raised_min_isr(kafka_settings, unique_name):
    """A catalog topic whose min.insync.replicas was raised to 2, out of band, on a
    one-broker cluster: every partition is below it and the topic differs from the catalog.
    Deleted afterwards: the session's other health checks judge the whole cluster."""
    catalog = _catalog(unique_name)
    with KafkaGateway(kafka_settings) as gw:
        assert apply_topics(gw, catalog).ok
        gw.require(gw.alter_topic_configs({unique_name: {"min.insync.replicas": "2"}}), "raising")
    yield catalog, unique_name
    with KafkaGateway(kafka_settings) as gw:
        gw.require(gw.delete_topics([unique_name]), "deleting")


def test_a_raised_min_isr_is_one_finding_one_drift_and_failed_topic_checks(
    kafka_settings, raised_min_isr
):
    catalog, name = raised_min_isr
    with KafkaGateway(kafka_settings) as gw:
        check = check_health(gw, catalog, canary=False)
    report, partitions = check.report, catalog.get(name).partitions
    # The partition rule: every partition of the topic is below its own min ISR (2 > 1).
    assert report.under_min_isr[name] == list(range(partitions))
    (under_min,) = [f for f in report.findings if f.subject == "under min ISR"]
    assert under_min.severity == CRIT and f"{name}: 0" in under_min.message
    # The drift, judged once on the same read: in the report and in the health check.
    assert check.drift is not None and check.drift.missing == ()
    assert any("min.insync.replicas" in line and name in line for line in check.drift.lines)
    (differs,) = [f for f in report.findings if f.message.startswith("differs from the catalog")]
    assert differs.severity == WARN and "min.insync.replicas" in differs.message
    # The topic checks, from that one check.
    got = {o.check: o for o in judge_topic_checks(check, catalog)}
    assert not got["replication"].passed and got["replication"].severity == "ERROR"
    assert "below min.insync.replicas" in got["replication"].description
    assert got["availability"].passed
    assert not got["matches_catalog"].passed and got["matches_catalog"].severity == "WARN"
    assert "min.insync.replicas expected" in got["matches_catalog"].description


def test_the_topic_checks_read_the_cluster_no_more_than_the_health_check(
    kafka_settings, raised_min_isr
):
    catalog, name = raised_min_isr
    with KafkaGateway(kafka_settings) as gw:
        before = gw.request_count
        run_health_check(gw, catalog, canary=False)
        health_requests = gw.request_count - before
        before = gw.request_count
        outcomes = observe_topic_checks(gw, catalog)
        check_requests = gw.request_count - before
    assert check_requests == health_requests, (check_requests, health_requests)
    assert {o.check for o in outcomes if not o.passed} == {"replication", "matches_catalog"}


def test_without_a_catalog_or_a_cluster_there_is_nothing_to_compare(kafka_settings):
    with KafkaGateway(kafka_settings) as gw:
        check = check_health(gw, None, canary=False)
    assert check.drift is None
    assert [f.severity for f in check.report.findings if f.check == "catalog"] == ["OK"]
    unreachable = dataclasses.replace(check.observation, cluster=None, error="gone")
    assert compare_with_catalog(unreachable, load_catalog(env="dev")) == (unreachable, None)


def test_a_comparison_that_fails_is_a_finding_not_a_crash(kafka_settings, monkeypatch):
    import ecap_ops.services.health as service

    def broken(catalog, cluster):
        raise ValueError("the catalog could not be planned")

    monkeypatch.setattr(service, "catalog_drift", broken)
    with KafkaGateway(kafka_settings) as gw:
        check = check_health(gw, load_catalog(env="dev"), canary=False)
    assert check.drift is None
    (finding,) = [f for f in check.report.findings if f.check == "catalog"]
    assert (
        finding.severity == WARN
        and "ValueError: the catalog could not be planned" in finding.message
    )
    got = judge_topic_checks(check, load_catalog(env="dev"), ["transactions"])
    (matches,) = [o for o in got if o.check == "matches_catalog"]
    assert not matches.passed and "could not be compared" in matches.description
