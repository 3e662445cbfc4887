"""The retention audit's service against the real broker: data older than retention is
found by its real age.

A topic with a 2 s retention, records produced with CreateTime set an hour back: the broker
only deletes them at its next retention check (log.retention.check.interval.ms, 5 minutes
by default), so they are still there when the audit reads them, and the audit must flag
them with the age the producer gave them. The grace the audit allows comes from the
broker's own check interval, read once."""

import time

import pytest
from kafka import KafkaProducer

from ecap_ops.catalog import load_catalog
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.activity import broker_config
from ecap_ops.services.retention import (
    CHECK_INTERVAL_KEY,
    observe_topics,
    retention_check_interval_ms,
    run_retention_audit,
)

pytestmark = pytest.mark.kafka

HOUR_MS = 3_600_000
RETENTION_MS = 2_000
SEGMENT_MS = 60_000
AUDIT_INTERVAL_MS = 60_000


def _seed(settings, topic: str, created_ms: list[int]) -> None:
    """Records with the given CreateTime timestamps, one partition, acknowledged by all."""
    producer = KafkaProducer(acks="all", **settings.client_kwargs())
    try:
        for i, ts in enumerate(created_ms):
            producer.send(topic, value=f"r{i}".encode(), partition=0, timestamp_ms=ts).get(15)
    finally:
        producer.close(5)


@pytest.fixture
def short_retention_topic(kafka_settings, unique_name):
    """A one-partition topic with a 2 s retention and 1 min segments; deleted afterwards."""
    configs = {"retention.ms": str(RETENTION_MS), "segment.ms": str(SEGMENT_MS)}
    with KafkaGateway(kafka_settings) as gw:
        gw.require(
            gw.create_topics(
                {unique_name: {"num_partitions": 1, "replication_factor": 1, "configs": configs}}
            ),
            "creating",
        )
    yield unique_name
    with KafkaGateway(kafka_settings) as gw:
        gw.require(gw.delete_topics([unique_name]), "deleting")


def _seed_and_audit(settings, topic: str, ages_ms: list[int]):
    """Seed records `ages_ms` old (oldest first) and audit: (the wall-clock time of the
    seeding, the report, the topic's row). The broker deletes expired records only at its
    retention check; should one fall between seeding and auditing (a few seconds in 5
    minutes), the records are seeded again, once."""
    catalog = load_catalog(env="dev").select([])
    for _attempt in range(2):
        seeded_at = int(time.time() * 1000)
        _seed(settings, topic, [seeded_at - a for a in ages_ms])
        with KafkaGateway(settings) as gw:
            report = run_retention_audit(gw, catalog, interval_ms=AUDIT_INTERVAL_MS)
        (row,) = [r for r in report.rows if r.topic == topic]
        if row.oldest_record_ms is not None and row.oldest_record_ms <= seeded_at - ages_ms[0]:
            break
    return seeded_at, report, row


def test_the_session_broker_checks_retention_slowly_enough_for_this_test(kafka_settings):
    """The premise of the aged-data test: records outlive their retention until the
    broker's next check, at least minutes away (Kafka's default is 5 minutes)."""
    with KafkaGateway(kafka_settings) as gw:
        _cid, _ctl, brokers = gw.brokers()
        raw = broker_config(gw, brokers[0].node_id, [CHECK_INTERVAL_KEY])
        read = retention_check_interval_ms(gw, [b.node_id for b in brokers])
        seen = observe_topics(gw)
    assert int(raw[CHECK_INTERVAL_KEY]) == read == seen.check_interval_ms
    assert read >= 300_000, f"{CHECK_INTERVAL_KEY} is {read} ms: aged records may vanish"


def test_records_older_than_retention_are_flagged_with_their_real_age(
    kafka_settings, short_retention_topic
):
    unique_name = short_retention_topic
    seeded_at, report, row = _seed_and_audit(
        kafka_settings, unique_name, [HOUR_MS, HOUR_MS - 1_000, HOUR_MS - 2_000]
    )
    # The producer's CreateTime, as it gave it (the oldest of the last seeding).
    assert row.oldest_record_ms == seeded_at - HOUR_MS, row
    # The reported age is the seeded one, up to the seconds the test itself took.
    took_ms = report.at_ms - seeded_at
    assert 0 <= row.oldest_age_ms - HOUR_MS <= took_ms + 5_000, (row.oldest_age_ms, took_ms)
    assert row.data_older_than_retention and row.status == "warn"
    (flag,) = [f for f in row.flags if f.startswith("data older than retention")]
    assert "oldest record 1h" in flag and "retention 2s" in flag, flag
    assert row.retention_ms == RETENTION_MS and row.segment_ms == SEGMENT_MS
    assert row.records is not None and row.records >= 3


def test_fresh_records_on_the_same_short_retention_are_not_flagged(
    kafka_settings, short_retention_topic
):
    """Within the grace (retention + segment.ms + audit interval + the broker's check
    interval), records seconds past their retention are not 'older than retention'."""
    unique_name = short_retention_topic
    seeded_at, _report, row = _seed_and_audit(kafka_settings, unique_name, [10_000])
    assert row.oldest_record_ms == seeded_at - 10_000, row
    assert not row.data_older_than_retention, row.flags
    assert not any(f.startswith("data older than retention") for f in row.flags)
