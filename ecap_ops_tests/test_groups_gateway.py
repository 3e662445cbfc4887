"""The one group reader (gateway/groups.py), the readers built on it (gateway/activity.py's
consumer_groups, gateway/snapshot.py's group functions) and the partition-offsets reader
(gateway/offsets.py), on a real broker: typed results, and requests that do not grow with
the number of groups."""

import time

import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ecap_ops.core.groups import ConsumerGroup, GroupListing
from ecap_ops.core.lag_model import PartitionOffsets
from ecap_ops.errors import KafkaRequestFailed
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.activity import consumer_groups
from ecap_ops.gateway.groups import GroupsRead, read_groups
from ecap_ops.gateway.offsets import partition_offsets
from ecap_ops.gateway.snapshot import describe_members, group_offsets, list_groups

pytestmark = pytest.mark.kafka


def _commit(admin, group, offsets):
    for attempt in range(60):
        try:
            admin.alter_group_offsets(group, offsets)
            return
        except Exception:
            if attempt == 59:
                raise
            time.sleep(0.5)


@pytest.fixture
def scene(kafka_bootstrap, unique_name):
    topic = unique_name
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}})
    prod = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for i in range(20):
        prod.send(topic, b"x", partition=i % 2)
    prod.flush(15)
    prod.close()
    groups = [f"{unique_name}-g{i:02d}" for i in range(30)]
    for i, g in enumerate(groups):
        _commit(admin, g, {TopicPartition(topic, 0): OffsetAndMetadata(i % 10, "", None)})
    admin.close()
    return topic, groups


def test_read_groups_is_typed_and_flat_in_the_number_of_groups(kafka_settings, scene):
    topic, groups = scene
    counts = []
    for some in (groups[:3], groups):
        with KafkaGateway(kafka_settings) as gw:
            read = read_groups(gw, some)
            counts.append(dict(gw.requests))
        assert isinstance(read, GroupsRead) and sorted(read.listings) == sorted(some)
        for g in read.groups():
            assert isinstance(g, ConsumerGroup)
            assert g.state == "Empty" and g.members == () and g.member_count == 0
            assert g.committed == {(topic, 0): int(g.group_id[-2:]) % 10}
    assert counts[0] == counts[1], counts
    assert counts[1].get("OffsetFetch") == 1 and counts[1].get("DescribeGroups") == 1


def test_readers_built_on_it_keep_their_shapes(kafka_settings, scene):
    topic, groups = scene
    with KafkaGateway(kafka_settings) as gw:
        every = {g.group_id: g for g in consumer_groups(gw)}
        listed = list_groups(gw)
        members = describe_members(gw, groups[:2] + ["no-such-group-x"])
        offsets = group_offsets(gw, groups[:2])
    assert set(groups) <= set(every)
    assert listed[groups[0]] == {"state": "Empty", "protocol_type": "", "type": "classic"}
    assert members == {groups[0]: 0, groups[1]: 0, "no-such-group-x": None}
    assert offsets == {groups[0]: {(topic, 0): 0}, groups[1]: {(topic, 0): 1}}


def test_require_complete_names_the_groups_it_could_not_read():
    read = GroupsRead(
        {"g": GroupListing("g", "Empty", "classic", "")},
        problems=["committed offsets of group g: Boom"],
    )
    with pytest.raises(KafkaRequestFailed, match="1 group"):
        read.require_complete()


def test_partition_offsets_start_and_end(kafka_settings, scene, kafka_bootstrap):
    topic, _ = scene
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        admin.delete_records({TopicPartition(topic, 1): 4})
    with KafkaGateway(kafka_settings) as gw:
        got = partition_offsets(gw, iter([(topic, 0), (topic, 1), ("no-such-topic-x", 0)]))
    assert got == {(topic, 0): PartitionOffsets(0, 10), (topic, 1): PartitionOffsets(4, 10)}
