"""gateway/lag.py on a real broker: one tick's measurement is typed, reads groups through the
one group reader, and sends as many requests for 30 groups as for 3 (one Fetch of record
timestamps among them)."""

import time

import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ecap_ops.catalog.model import LagThresholds
from ecap_ops.core.lag import GroupObservation, Observation, PartitionOffsets
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.lag import LagScope, measure_lag

pytestmark = pytest.mark.kafka

TH = LagThresholds(warn_seconds=60, crit_seconds=300, warn_msgs=100, stall_after_seconds=30)


def test_measurement_is_typed_and_flat_in_the_number_of_groups(
    kafka_settings, kafka_bootstrap, unique_name
):
    topic = unique_name
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        admin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}})
        prod = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        for i in range(20):
            prod.send(topic, b"x", partition=i % 2)
        prod.flush(15)
        prod.close()
        for i in range(30):
            for attempt in range(60):
                try:
                    admin.alter_group_offsets(
                        f"{unique_name}-g{i:02d}",
                        {TopicPartition(topic, 0): OffsetAndMetadata(i % 10, "", None)},
                    )
                    break
                except Exception:
                    if attempt == 59:
                        raise
                    time.sleep(0.5)
    counts = []
    for pattern in (f"{unique_name}-g0[0-2]", f"{unique_name}-*"):
        with KafkaGateway(kafka_settings) as gw:
            m = measure_lag(gw, lambda t: TH, scope=LagScope(include=(pattern,)))
        obs = m.observation
        assert isinstance(obs, Observation) and not obs.partial, obs.notes
        assert all(isinstance(g, GroupObservation) for g in obs.groups.values())
        g0 = obs.groups[f"{unique_name}-g00"]
        assert (g0.state, g0.members, g0.committed) == ("Empty", 0, {(topic, 0): 0})
        po = obs.offsets[(topic, 0)]
        assert po == PartitionOffsets(0, 10, po.sla_offset, po.times)
        # The records at the smallest lagging position were read; nobody lags on partition 1.
        assert po.times is not None and po.times.fetched_from == 0
        assert po.times.timestamp_type == "CreateTime"
        assert obs.offsets[(topic, 1)].times is None
        counts.append(m.requests)
    assert len(obs.groups) == 30
    assert counts[0] == counts[1], counts
    # Eight as before, and one Fetch for the record timestamps (one leader).
    assert counts[1]["Fetch"] == 1
    assert sum(counts[1].values()) <= 9
