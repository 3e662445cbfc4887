"""consumer-groups against the real broker: state, members and lag per topic."""

import json
import time

import pytest
from click.testing import CliRunner
from kafka import KafkaProducer

from ecap_ops.cli import main
from ecap_ops.gateway import KafkaGateway
from ecap_ops.services.groups import group_summaries
from ecap_ops_tests.helpers import make_consumer

pytestmark = pytest.mark.kafka


def test_lag_per_topic_members_and_state(kafka_settings, kafka_bootstrap, unique_name):
    topic, group = unique_name, f"{unique_name}-g"
    with KafkaGateway(kafka_settings) as gw:
        gw.require(
            gw.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}}), "creating"
        )
    producer = KafkaProducer(acks="all", **kafka_settings.client_kwargs())
    for i in range(10):
        producer.send(topic, value=b"v", partition=i % 2)
    producer.flush(15)
    producer.close()
    consumer = make_consumer(
        topic,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=1,
        **kafka_settings.client_kwargs(),
    )
    try:
        got = 0
        deadline = time.monotonic() + 30
        while got < 4 and time.monotonic() < deadline:
            got += sum(len(b) for b in consumer.poll(500, max_records=4 - got).values())
        consumer.commit()
        with KafkaGateway(kafka_settings) as gw:
            live = {g.group_id: g for g in group_summaries(gw)}[group]
        assert live.state == "Stable" and live.members == 1
        (t,) = live.topics
        assert (t.topic, t.partitions, t.lag, t.members) == (topic, 2, 6, 1)
    finally:
        consumer.close()
    res = CliRunner().invoke(
        main, ["-b", kafka_bootstrap, "consumer-groups", "--output", "json"], catch_exceptions=False
    )
    assert res.exit_code == 0
    g = {g["group_id"]: g for g in json.loads(res.output)["groups"]}[group]
    assert g["state"] == "Empty" and g["members"] == 0 and g["total_lag"] == 6
    table = CliRunner().invoke(
        main, ["-b", kafka_bootstrap, "consumer-groups"], catch_exceptions=False
    )
    line = next(ln for ln in table.output.splitlines() if ln.startswith(group))
    assert topic in line and line.split()[-1] == "6"


def test_summarize_uses_the_one_lag_formula():
    """No broker: a group's lag per topic from its committed offsets and partition offsets."""
    from ecap_ops.core.groups import ConsumerGroup, GroupMember
    from ecap_ops.core.lag_model import PartitionOffsets
    from ecap_ops.services.groups import summarize

    g = ConsumerGroup(
        "g",
        "Stable",
        "classic",
        "consumer",
        (GroupMember("m", "c", "h", {"t": (0, 1), "u": (0,)}),),
        {("t", 0): 5, ("t", 1): 5, ("v", 0): 3},
    )
    offsets = {("t", 0): PartitionOffsets(20, 30), ("t", 1): PartitionOffsets(0, 30)}
    s = summarize(g, offsets)
    by = {t.topic: t for t in s.topics}
    assert (by["t"].lag, by["t"].lost, by["t"].partitions, by["t"].members) == (35, 15, 2, 1)
    assert (by["u"].lag, by["u"].partitions, by["u"].members) == (None, 0, 1)  # no commit
    assert by["v"].lag is None  # offsets unknown: lag unknown, not 0
    assert s.total_lag is None and s.members == 1
    assert s.to_dict()["topics"][0] == {
        "topic": "t",
        "partitions": 2,
        "lag": 35,
        "lost": 15,
        "members": 1,
        # No record read (no record times given): lag in seconds unknown, never 0.
        "lag_seconds": None,
        "lag_seconds_kind": "unknown",
        "timestamp_type": None,
    }
