"""The sampler on the real broker: the newest records of every partition, read without a
consumer group (the topic's groups untouched: no commits, no joins, no new group), within
its byte cap."""

import pytest

from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.sample import sample_topic
from ecap_ops_tests.helpers import kafka_tool, make_consumer

pytestmark = pytest.mark.kafka


def create(settings, name: str, partitions: int, configs: dict | None = None) -> None:
    with KafkaGateway(settings) as gw:
        gw.require(
            gw.create_topics(
                {
                    name: {
                        "num_partitions": partitions,
                        "replication_factor": 1,
                        "configs": configs or {},
                    }
                }
            ),
            "creating",
        )


def produce(settings, name: str, n: int, size: int = 20, partitions: int = 2) -> None:
    with (
        KafkaGateway(settings) as gw,
        gw.producer("test traffic", acks="all", max_request_size=8 * 1024 * 1024) as p,
    ):
        for i in range(n):
            value = (f'{{"i": {i}, "pad": "' + "x" * size + '"}').encode()
            p.send(name, key=f"k{i}".encode(), value=value, partition=i % partitions)
        p.flush(timeout=60)


def groups_snapshot(settings, name: str) -> tuple[str, str]:
    listing = kafka_tool(settings, "kafka-consumer-groups", "--list")
    assert listing.returncode == 0, listing.stderr
    described = kafka_tool(
        settings, "kafka-consumer-groups", "--describe", "--all-groups", "--offsets"
    )
    # only the rows of this topic; the columns that do not move with other tests' traffic
    rows = sorted(
        " ".join(line.split()[:4])
        for line in described.stdout.splitlines()
        if f" {name} " in f" {line} "
    )
    return listing.stdout, "\n".join(rows)


def test_newest_records_of_every_partition_and_offsets(kafka_settings, unique_name):
    name = unique_name
    create(kafka_settings, name, 2)
    produce(kafka_settings, name, 30)
    with KafkaGateway(kafka_settings) as gw:
        obs = sample_topic(gw, name, per_partition=5)
    assert obs.ends == (15, 15) and obs.starts == (0, 0)
    assert [(r.partition, r.offset) for r in obs.records] == [
        (p, o) for p in (0, 1) for o in range(10, 15)
    ]
    assert obs.bytes_read == sum(r.size for r in obs.records) and not obs.capped
    assert obs.newest_timestamp_ms is not None


def test_sampling_leaves_the_topics_consumer_groups_untouched(kafka_settings, unique_name):
    name = unique_name
    group = unique_name + "-readers"
    create(kafka_settings, name, 2)
    produce(kafka_settings, name, 40)
    # a real consumer group with committed offsets, half way through
    from kafka import TopicPartition

    c = make_consumer(
        bootstrap_servers=kafka_settings.bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
    )
    try:
        from kafka.structs import OffsetAndMetadata

        c.commit(
            {
                TopicPartition(name, 0): OffsetAndMetadata(7, "", -1),
                TopicPartition(name, 1): OffsetAndMetadata(3, "", -1),
            }
        )
    finally:
        c.close()
    before = groups_snapshot(kafka_settings, name)
    assert f"{group} {name} 0 7" in before[1] and f"{group} {name} 1 3" in before[1]
    with KafkaGateway(kafka_settings) as gw:
        obs = sample_topic(gw, name)
    assert len(obs.records) == 40
    after = groups_snapshot(kafka_settings, name)
    assert after[1] == before[1]  # no commit moved an offset, no new group on the topic
    new_groups = set(after[0].split()) - set(before[0].split())
    assert not any(name in g for g in new_groups)
    # and the gateway's group reader agrees: the group has no members, the same offsets
    from ecap_ops.gateway.groups import read_groups

    with KafkaGateway(kafka_settings) as gw:
        read = read_groups(gw, [group])
    assert not read.descriptions[group].members
    assert {(tp, o) for tp, o in read.committed[group].items() if tp[0] == name} == {
        ((name, 0), 7),
        ((name, 1), 3),
    }


def test_sampling_stays_within_its_byte_cap(kafka_settings, unique_name):
    """A topic of 24 MiB (120 records of 200 KiB on 3 partitions) sampled with a 1 MiB cap:
    at most 1 MiB of records read. (The issue asks for a 1 GB topic; this machine is shared,
    so the topic is smaller and its records large: the cap, not the topic, bounds the read.)"""
    name = unique_name
    create(kafka_settings, name, 3, {"max.message.bytes": str(1024 * 1024)})
    produce(kafka_settings, name, 120, size=200 * 1024, partitions=3)
    cap = 1024 * 1024
    with KafkaGateway(kafka_settings) as gw:
        obs = sample_topic(gw, name, max_bytes=cap)
        whole = sample_topic(gw, name, max_bytes=64 * 1024 * 1024, per_partition=40)
    assert obs.bytes_read <= cap
    assert obs.capped
    assert 1 <= len(obs.records) <= cap // (200 * 1024)
    assert whole.bytes_read > 20 * 1024 * 1024 and not whole.capped


def test_empty_and_missing_partitions(kafka_settings, unique_name):
    name = unique_name
    create(kafka_settings, name, 3)
    with KafkaGateway(kafka_settings) as gw:
        obs = sample_topic(gw, name)
    assert obs.records == () and obs.ends == (0, 0, 0) and obs.bytes_read == 0
    with pytest.raises(ValueError):
        with KafkaGateway(kafka_settings) as gw:
            sample_topic(gw, name, max_bytes=0)


class _MeteredGateway:
    """The gateway as the sampler sees it, counting every byte its consumer reads off its
    sockets (kafka-python's `bytes-received` sensor, given a running total before the first
    fetch; metadata responses included, so the count errs high)."""

    def __init__(self, gw):
        self._gw = gw
        self.wire_bytes: float | None = None

    def __getattr__(self, name):
        return getattr(self._gw, name)

    def consumer(self, doing, **options):
        import contextlib

        from kafka.metrics.stats.total import Total

        @contextlib.contextmanager
        def metered():
            with self._gw.consumer(doing, **options) as consumer:
                registry = consumer._metrics
                total = registry.metric_name("bytes-received-total", "ecap-test")
                registry.sensor("bytes-received").add(total, Total())
                try:
                    yield consumer
                finally:
                    self.wire_bytes = registry.metrics[total].value()

        return metered()


@pytest.mark.slow
def test_sampling_a_1_gb_topic_stays_within_its_byte_cap(kafka_settings, unique_name):
    """A topic of 1 GB (1,000 records of 1,000,000 bytes on 4 partitions, written by Kafka's
    own kafka-producer-perf-test: acks=1, no compression, batches of one record) sampled with
    the default cap of 4 MiB: at most 4 MiB of records kept. On the wire (every byte the
    sampler's consumer read off its sockets) it costs at most two fetches' worth: the cap
    plus one record batch per partition (Kafka always returns a partition's first batch
    whole), twice, because kafka-python sends the next fetch before the sampler has judged
    the records of the last one. Either way a few megabytes of a gigabyte. The broker holds
    the topic's gigabyte on disk (its log directories say so); the topic is deleted
    afterwards. About a minute and a half on a 2-core machine."""
    from ecap_ops.gateway.activity import log_dirs, topic_sizes
    from ecap_ops.gateway.sample import DEFAULT_MAX_BYTES

    name = unique_name
    record, count, partitions = 1_000_000, 1_000, 4
    create(
        kafka_settings,
        name,
        partitions,
        {"max.message.bytes": str(2 * record), "segment.bytes": str(1024**3)},
    )
    try:
        written = kafka_tool(
            kafka_settings,
            "kafka-producer-perf-test",
            "--topic",
            name,
            "--num-records",
            str(count),
            "--record-size",
            str(record),
            "--throughput",
            "-1",
            "--producer-props",
            f"bootstrap.servers={kafka_settings.bootstrap_servers}",
            "acks=1",
            "compression.type=none",
            "linger.ms=20",
            f"max.request.size={4 * record}",
            "buffer.memory=67108864",
            timeout=900,
        )
        assert written.returncode == 0, written.stderr[-2000:]
        assert f"{count} records sent" in written.stdout, written.stdout[-1000:]
        with KafkaGateway(kafka_settings) as gw:
            ends = gw.offsets([(name, p) for p in range(partitions)], "latest")
            assert sum(ends.values()) == count
            state = gw.topics([name])[name]
            leaders = {p.leader for p in state.partitions}
            size = topic_sizes(log_dirs(gw, leaders, {name: list(range(partitions))}))[name]
            assert size >= count * record  # a gigabyte on the broker's disk

            metered = _MeteredGateway(gw)
            obs = sample_topic(metered, name)
        cap = DEFAULT_MAX_BYTES
        assert obs.byte_cap == cap and obs.capped
        assert 0 < obs.bytes_read <= cap
        assert 1 <= len(obs.records) <= cap // record
        assert all(r.size >= record for r in obs.records)
        # what the consumer fetched: two fetches of at most the cap plus one whole batch per
        # partition (the pipelined second fetch), metadata responses besides
        assert metered.wire_bytes is not None and metered.wire_bytes >= obs.bytes_read
        one_fetch = cap + partitions * (record + 1024)
        assert metered.wire_bytes <= 2 * one_fetch + 64 * 1024, metered.wire_bytes
        assert metered.wire_bytes < count * record / 100  # far from reading the topic
    finally:
        with KafkaGateway(kafka_settings) as gw:
            gw.delete_topics([name])
