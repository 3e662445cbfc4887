"""The typed Kafka edge for topics and configs: `KafkaGateway.topics` returns the core's
`TopicState`, `KafkaGateway.all_topic_configs` the core's `ConfigValue`, and kafka-python's
metadata and config dicts are read nowhere outside gateway/.

The pure half needs no broker; the rest runs against the session's local Kafka."""

import re
from pathlib import Path

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ecap_ops.core.state import ConfigValue, is_internal_topic
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.client import _topic_state
from ecap_ops_tests.helpers import kafka_tool

PACKAGE = Path(__file__).resolve().parent.parent / "ecap_ops"
GATEWAY = PACKAGE / "gateway"

# kafka-python's keys for topic metadata and configs. Read as strings (`p["leader_id"]`,
# `e.get("config_source")`), so a quoted key is what a leak looks like; our own attributes
# of the same name (a quorum's `.leader_id`) are not quoted.
KAFKA_KEYS = (
    "partition_index",
    "leader_id",
    "replica_nodes",
    "isr_nodes",
    "is_internal",
    "config_source",
)
QUOTED_KEY = re.compile("[\"'](" + "|".join(KAFKA_KEYS) + ")[\"']")
# The raw readers themselves: kafka-python's admin calls and the gateway's private one.
RAW_READER = re.compile(r"\b_?describe_(topics|configs)\s*\(")


def _leaks(pattern: re.Pattern, files) -> list[str]:
    found = []
    for path in files:
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{no}: {line.strip()[:120]}")
    return found


def _outside_gateway() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if GATEWAY not in p.parents)


# -- nothing outside the gateway reads kafka-python's dicts -------------------------------
def test_the_scanner_sees_the_keys_where_they_are_read():
    """The checks below can fail: inside the gateway, where the dicts are translated, the
    same patterns find them."""
    inside = sorted(GATEWAY.rglob("*.py"))
    leaks = "\n".join(_leaks(QUOTED_KEY, inside))
    for key in KAFKA_KEYS:
        assert f'"{key}"' in leaks, key
    assert _leaks(RAW_READER, inside)
    assert len(_outside_gateway()) > 50  # the walk covers the package


def test_no_kafka_python_topic_or_config_key_outside_the_gateway():
    leaks = _leaks(QUOTED_KEY, _outside_gateway())
    assert not leaks, (
        "kafka-python's metadata/config keys read outside gateway/ (use KafkaGateway.topics "
        "-> TopicState, .all_topic_configs -> ConfigValue):\n" + "\n".join(leaks)
    )


def test_no_raw_topic_or_config_reader_outside_the_gateway():
    leaks = _leaks(RAW_READER, _outside_gateway())
    assert not leaks, "raw describe_topics/describe_configs outside gateway/:\n" + "\n".join(leaks)


def test_the_raw_reader_is_private():
    assert not hasattr(KafkaGateway, "describe_topics")
    assert hasattr(KafkaGateway, "_describe_topics") and hasattr(KafkaGateway, "topics")


# -- the translation, over any metadata a broker could send -------------------------------
raw_partitions = st.lists(
    st.fixed_dictionaries(
        {
            "partition_index": st.integers(0, 10_000),
            "leader_id": st.integers(-5, 20),
            "replica_nodes": st.one_of(st.none(), st.lists(st.integers(0, 20), max_size=5)),
            "isr_nodes": st.one_of(st.none(), st.lists(st.integers(0, 20), max_size=5)),
        },
        optional={"offline_replicas": st.lists(st.integers(0, 20), max_size=3)},
    ),
    max_size=12,
    unique_by=lambda p: p["partition_index"],
)


@hsettings(max_examples=200, deadline=None)
@given(
    name=st.text(min_size=1, max_size=40),
    partitions=raw_partitions,
    internal=st.one_of(st.none(), st.booleans()),
    topic_id=st.one_of(st.none(), st.just(""), st.uuids()),
)
def test_metadata_becomes_the_cores_topic_state(name, partitions, internal, topic_id):
    meta = {"name": name, "partitions": partitions, "topic_id": topic_id}
    if internal is not None:
        meta["is_internal"] = internal
    t = _topic_state(name, meta)
    assert t.name == name
    assert [p.partition for p in t.partitions] == sorted(p["partition_index"] for p in partitions)
    by_id = {p["partition_index"]: p for p in partitions}
    for p in t.partitions:
        raw = by_id[p.partition]
        assert p.leader == (raw["leader_id"] if raw["leader_id"] >= 0 else None)
        assert p.replicas == tuple(raw["replica_nodes"] or ())
        assert p.isr == tuple(raw["isr_nodes"] or ())
        assert p.offline_replicas == tuple(raw.get("offline_replicas") or ())
    assert t.replication_factor == max(
        (len(p["replica_nodes"] or []) for p in partitions), default=0
    )
    assert t.internal == is_internal_topic(name, internal)
    assert t.topic_id == (str(topic_id) if topic_id else None)
    assert t.overrides == {} and t.defaults == {} and t.has_data is None


@given(
    value=st.one_of(st.none(), st.text(max_size=20)),
    source=st.one_of(st.none(), st.sampled_from(["DEFAULT_CONFIG", "DYNAMIC_TOPIC_CONFIG"])),
)
def test_a_configs_source(value, source):
    c = ConfigValue(value, source)
    assert c.is_default == (source in (None, "DEFAULT_CONFIG"))
    assert c.is_override == (source == "DYNAMIC_TOPIC_CONFIG")
    assert not (c.is_default and c.is_override)


# -- against a broker -----------------------------------------------------------------
def _create(kafka_cluster, name: str, partitions: int, *configs: str) -> None:
    args = ["--create", "--topic", name, "--partitions", str(partitions)]
    for c in configs:
        args += ["--config", c]
    made = kafka_tool(kafka_cluster, "kafka-topics", *args)
    assert made.returncode == 0, made.stderr


def test_topics_and_configs_are_typed_and_take_one_request_each(
    kafka_cluster, kafka_settings, unique_name
):
    a, b = f"{unique_name}-a", f"{unique_name}-b"
    _create(kafka_cluster, a, 3, "retention.ms=3600000")
    _create(kafka_cluster, b, 1)
    with KafkaGateway(kafka_settings) as gw:
        gw.brokers()  # open the connection first: bootstrapping sends its own metadata
        before = dict(gw.requests)
        topics = gw.topics([a, b, f"{unique_name}-missing"])
        assert gw.requests["Metadata"] - before.get("Metadata", 0) == 1
        assert sorted(topics) == [a, b]  # the missing one is left out
        state = gw.read_cluster_state([a, b], with_data=False)
        for n in (a, b):
            assert topics[n].partitions == state.topics[n].partitions
            assert topics[n].topic_id == state.topics[n].topic_id and topics[n].topic_id
            assert not topics[n].internal
        assert [p.partition for p in topics[a].partitions] == [0, 1, 2]
        assert all(p.leader is not None and p.isr for p in topics[a].partitions)
        assert gw.topics([]) == {}

        before = gw.requests["DescribeConfigs"]
        configs = gw.all_topic_configs([a, b])
        assert gw.requests["DescribeConfigs"] - before == 1
        assert configs[a]["retention.ms"] == ConfigValue("3600000", "DYNAMIC_TOPIC_CONFIG")
        assert configs[a]["retention.ms"].is_override
        assert not configs[b]["retention.ms"].is_override
        assert all(isinstance(c, ConfigValue) for cs in configs.values() for c in cs.values())
        assert gw.all_topic_configs([]) == {}
        every = gw.topics(None)
        assert {a, b} <= set(every)


def test_configs_of_many_topics_are_read_in_chunks_sent_together(
    kafka_cluster, kafka_settings, unique_name, monkeypatch
):
    """A DescribeConfigs of 10,000 topics outlasts a request timeout meant for a quick
    answer: the reader sends one request per chunk of topics, all at once, and the answer is
    the same as one request's."""
    from ecap_ops.gateway import topic_configs

    names = [f"{unique_name}-{i}" for i in range(7)]
    for i, n in enumerate(names):
        _create(kafka_cluster, n, 1, f"retention.ms={3600000 + i}")
    with KafkaGateway(kafka_settings) as gw:
        whole = gw.all_topic_configs(names)
        overrides = gw.topic_overrides(names)
        monkeypatch.setattr(topic_configs, "CHUNK_TOPICS", 3)
        before = gw.requests["DescribeConfigs"]
        chunked = gw.all_topic_configs(names)
        assert gw.requests["DescribeConfigs"] - before == 3  # 3 + 3 + 1 topics
        assert chunked == whole
        assert gw.topic_overrides(names) == overrides
    assert [chunked[n]["retention.ms"].value for n in names] == [str(3600000 + i) for i in range(7)]


def _get_offsets(kafka_cluster, topic: str, time_arg: str) -> dict[tuple[str, int], int]:
    """Kafka's own kafka-get-offsets (GetOffsetShell): topic:partition:offset lines."""
    out = kafka_tool(kafka_cluster, "kafka-get-offsets", "--topic", topic, "--time", time_arg)
    assert out.returncode == 0, out.stderr
    found = {}
    for line in out.stdout.split():
        t, p, o = line.rsplit(":", 2)
        found[(t, int(p))] = int(o)
    return found


def test_offsets_of_every_kind_are_read_at_once_and_agree_with_kafkas_tool(
    kafka_cluster, kafka_settings, unique_name
):
    """One ListOffsets per leader and kind, all in flight together, routed by metadata the
    caller already read (no Metadata request); the answers are Kafka's own tool's."""
    from kafka import KafkaProducer

    from ecap_ops.core.state import partition_leaders
    from ecap_ops.gateway.activity import partition_activity

    topic = f"{unique_name}-o"
    _create(kafka_cluster, topic, 3)
    producer = KafkaProducer(acks="all", **kafka_settings.client_kwargs())
    sent_ms = {}
    for p, n in ((0, 4), (1, 1)):  # partition 2 stays empty
        for i in range(n):
            sent_ms[(topic, p, i)] = 1_700_000_000_000 + 1000 * p + i
            producer.send(topic, b"x", partition=p, timestamp_ms=sent_ms[(topic, p, i)]).get(30)
    producer.close(timeout=5)
    parts = [(topic, p) for p in range(3)]
    with KafkaGateway(kafka_settings) as gw:
        meta = gw.topics([topic])
        before = dict(gw.requests)
        activity = partition_activity(gw, parts, partition_leaders(meta))
        sent = {k: n - before.get(k, 0) for k, n in gw.requests.items() if n > before.get(k, 0)}
        assert sent == {"ListOffsets": 4}, sent  # 4 kinds x 1 leader, no Metadata
        ends = gw.offsets(parts, "latest")  # without leaders: one Metadata more
    assert ends == _get_offsets(kafka_cluster, topic, "latest")
    assert {tp: r[1] for tp, r in activity.ranges.items()} == ends
    assert {tp: r[0] for tp, r in activity.ranges.items()} == _get_offsets(
        kafka_cluster, topic, "earliest"
    )
    assert activity.stamps == {
        (topic, 0): (sent_ms[(topic, 0, 0)], sent_ms[(topic, 0, 3)]),
        (topic, 1): (sent_ms[(topic, 1, 0)], sent_ms[(topic, 1, 0)]),
        (topic, 2): (None, None),
    }


def test_a_partition_its_leader_cannot_answer_is_asked_again_and_a_missing_one_named(
    kafka_cluster, kafka_settings, unique_name
):
    """Stale routing (no leader known) falls back to kafka-python's reader, which refreshes
    the metadata; a partition that does not exist is an error that names it, not a silent
    gap."""
    from ecap_ops.errors import EcapOpsError

    topic = f"{unique_name}-r"
    _create(kafka_cluster, topic, 2)
    with KafkaGateway(kafka_settings) as gw:
        leader = next(iter(gw.topics([topic])[topic].partitions)).leader
        found = gw.offsets_by_kind(
            [(topic, 0), (topic, 1)], {"end": "latest"}, leaders={(topic, 0): leader}
        )
        assert found["end"] == {(topic, 0): (0, found["end"][(topic, 0)][1]), (topic, 1): (0, -1)}
        try:
            gw.offsets_by_kind([(topic, 7)], {"end": "latest"}, leaders={(topic, 7): leader})
        except EcapOpsError as exc:
            assert f"{topic}" in str(exc) or "UnknownTopicOrPartition" in str(exc), exc
        else:
            raise AssertionError("a partition that does not exist gave no error")
        # Asked for a partial answer (whether topics hold data, before a plan), the same
        # partition is left out and the others still answer.
        part = gw.offsets_by_kind(
            [(topic, 0), (topic, 7)],
            {"end": "latest"},
            leaders={(topic, 0): leader, (topic, 7): leader},
            partial=True,
        )
        assert set(part["end"]) == {(topic, 0)}, part


def test_whether_a_topic_holds_data_is_unknown_where_a_leader_cannot_answer(
    kafka_cluster, kafka_settings, unique_name
):
    """`data_presence` never guesses: a partition whose leader cannot answer (here one the
    broker does not have, as after a restart before its logs are loaded) makes an empty
    topic's answer None (unknown, so a retention decrease stays destructive), while a
    record in any answered partition still makes it True."""
    from dataclasses import replace

    from kafka import KafkaProducer

    empty, full = f"{unique_name}-e", f"{unique_name}-f"
    _create(kafka_cluster, empty, 1)
    _create(kafka_cluster, full, 1)
    producer = KafkaProducer(acks="all", **kafka_settings.client_kwargs())
    producer.send(full, b"x", partition=0).get(30)
    producer.close(timeout=5)
    with KafkaGateway(kafka_settings) as gw:
        meta = gw.topics([empty, full])
        assert gw.data_presence(meta) == {empty: False, full: True}

        def with_ghost(t):  # a second partition, led by the same broker, that it cannot serve
            ghost = replace(t.partitions[0], partition=5)
            return replace(t, partitions=(*t.partitions, ghost))

        ghosts = {n: with_ghost(t) for n, t in meta.items()}
        assert gw.data_presence(ghosts) == {empty: None, full: True}
