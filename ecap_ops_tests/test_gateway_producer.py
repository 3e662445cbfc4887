"""The gateway's producer and consumer: built from the same settings (timeouts, security)
as the admin client, closed after use, errors translated. Against the real broker: any
bytes sent come back as they were; a record the producer refuses, or a cluster that does
not answer, is our error naming what was being done, and nothing is written."""

import time

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from kafka import TopicPartition
from kafka import errors as kerr

from ecap_ops.errors import KafkaRequestFailed, KafkaUnavailable
from ecap_ops.gateway import KafkaGateway
from ecap_ops.settings import KafkaSettings
from ecap_ops_tests.bounds import assert_bounded, wait_limit_s
from ecap_ops_tests.helpers import free_port, topic_name

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def topic(kafka_settings) -> str:
    name = topic_name("gw-producer")
    with KafkaGateway(kafka_settings) as gw:
        gw.require(
            gw.create_topics({name: {"num_partitions": 3, "replication_factor": 1}}), "creating"
        )
    return name


def _read_back(gw: KafkaGateway, topic: str, partition: int, offset: int):
    with gw.consumer("reading back", consumer_timeout_ms=5000) as consumer:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    if r.offset == offset:
                        return r
    raise AssertionError(f"{topic}/{partition}@{offset} not read back")


def _ends(gw: KafkaGateway, topic: str) -> int:
    return sum(gw.offsets([(topic, p) for p in range(3)], "latest").values())


@hsettings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=st.binary(max_size=2000), key=st.one_of(st.none(), st.binary(max_size=100)))
def test_any_bytes_are_produced_and_read_back_as_they_were(kafka_settings, topic, value, key):
    with KafkaGateway(kafka_settings) as gw:
        partition, offset = gw.produce_one(topic, value, key, timeout_s=20)
        record = _read_back(gw, topic, partition, offset)
    assert record.value == value and record.key == key


def test_a_record_the_producer_refuses_is_our_error_and_nothing_is_written(kafka_settings, topic):
    with KafkaGateway(kafka_settings) as gw:
        before = _ends(gw, topic)
        with pytest.raises(KafkaRequestFailed) as info:
            gw.produce_one(topic, b"x" * 5000, max_request_size=1024, timeout_s=10)
        assert str(info.value).startswith(f"producing to {topic}: ")
        assert "MessageSizeTooLargeError" in str(info.value)
        assert isinstance(info.value.__cause__, kerr.MessageSizeTooLargeError)
        assert _ends(gw, topic) == before


def test_a_cluster_that_does_not_answer_is_unavailable_within_the_timeout():
    settings = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{free_port()}",
        connect_timeout_ms=1500,
        request_timeout_ms=1500,
    )
    started = time.monotonic()
    with KafkaGateway(settings) as gw, pytest.raises(KafkaUnavailable) as info:
        gw.produce_one("anything", b"{}", timeout_s=2)
    # The producer's own wait (2 s) after the gateway's connect wait.
    limit = wait_limit_s(settings.connect_timeout_ms, 2000)
    assert_bounded(time.monotonic() - started, limit, "producing to a cluster that is down")
    assert str(info.value).startswith("producing to anything: ")
    assert "within 2 s" in str(info.value)  # the wait it had, not the settings' default
    assert isinstance(info.value.__cause__, kerr.KafkaError)


def test_the_clients_use_the_gateways_settings(kafka_settings):
    settings = KafkaSettings(
        bootstrap_servers=kafka_settings.bootstrap_servers,
        connect_timeout_ms=4321,
        request_timeout_ms=5432,
    )
    with KafkaGateway(settings) as gw:
        with gw.producer("checking") as producer:
            assert producer.config["request_timeout_ms"] == 5432
            assert producer.config["max_block_ms"] == 5432
            assert producer.config["client_id"] == settings.client_id
        with gw.consumer("checking") as consumer:
            assert consumer.config["request_timeout_ms"] == 5432
            assert consumer.config["group_id"] is None
            assert consumer.config["enable_auto_commit"] is False
