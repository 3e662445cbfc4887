"""test-produce against the real broker: a valid message lands in the partition Kafka's
default partitioner picks for its key (checked by reading it back with kcat); invalid JSON,
a missing key field and an oversize message get clear errors and produce nothing."""

import json
import subprocess

import pytest
from click.testing import CliRunner
from kafka.partitioner.default import murmur2

from ecap_ops.catalog import load_catalog
from ecap_ops.cli import main
from ecap_ops.gateway import KafkaGateway
from ecap_ops.services.produce import MessageInvalid, key_for, parse_message, test_produce

pytestmark = pytest.mark.kafka


def java_partition(key: str, partitions: int) -> int:
    """Kafka's default partitioner for a keyed record: murmur2, positive, modulo partitions."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


@pytest.fixture(scope="module")
def keyed_topic(kafka_settings):
    """A 6-partition topic standing in for `transactions` (keyed by user_id), 2 KiB max message."""
    import dataclasses

    from ecap_ops_tests.helpers import topic_name

    name = topic_name("produce")
    base = load_catalog(env="dev")
    catalog = dataclasses.replace(
        base, topics=(dataclasses.replace(base.get("transactions"), name=name),)
    )
    with KafkaGateway(kafka_settings) as gw:
        gw.require(
            gw.create_topics(
                {
                    name: {
                        "num_partitions": 6,
                        "replication_factor": 1,
                        "configs": {"max.message.bytes": "2048"},
                    }
                }
            ),
            "creating",
        )
    return name, catalog


def _ends(settings, name) -> int:
    with KafkaGateway(settings) as gw:
        return sum(gw.offsets([(name, p) for p in range(6)], "latest").values())


def _kcat_read(bootstrap: str, topic: str, partition: int, offset: int) -> dict:
    out = subprocess.run(
        [
            "kcat",
            "-b",
            bootstrap,
            "-C",
            "-t",
            topic,
            "-p",
            str(partition),
            "-o",
            str(offset),
            "-c",
            "1",
            "-e",
            "-f",
            "%k\t%s\t%p\n",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    key, value, part = out.stdout.rstrip("\n").split("\t")
    return {"key": key, "value": json.loads(value), "partition": int(part)}


@pytest.mark.parametrize("user", ["u-1", "u-42", "customer-99812"])
def test_a_valid_message_lands_in_the_default_partitioners_partition(
    keyed_topic, kafka_settings, kafka_bootstrap, user
):
    name, catalog = keyed_topic
    msg = {"user_id": user, "amount": 12.5}
    with KafkaGateway(kafka_settings) as gw:
        p = test_produce(gw, catalog, name, json.dumps(msg))
    assert p.key == user and p.key_source == "user_id"
    assert p.partition == java_partition(user, 6)
    back = _kcat_read(kafka_bootstrap, name, p.partition, p.offset)
    assert back == {"key": user, "value": msg, "partition": p.partition}


def test_explicit_key_wins_and_cli_prints_partition_and_offset(keyed_topic, kafka_bootstrap):
    name, _catalog = keyed_topic
    res = CliRunner().invoke(
        main,
        [
            "-b",
            kafka_bootstrap,
            "test-produce",
            name,
            '{"note": "no user"}',
            "--key",
            "K7",
            "--output",
            "json",
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert (
        doc["partition"] == java_partition("K7", 6)
        and doc["offset"] >= 0
        and doc["key_source"] == "--key"
    )


@pytest.mark.parametrize(
    "text, expect",
    [
        ('{"user_id": "u1", "amount": ', "not valid JSON: Expecting value at line 1, column 29"),
        ('{"amount": 3}', "no 'user_id' field, the partition key of topic"),
        ("[1, 2]", "is a JSON list, not an object"),
        ('{"user_id": {"a": 1}}', "must be a string or number"),
        (json.dumps({"user_id": "u1", "blob": "x" * 3000}), "over topic"),
    ],
)
def test_bad_messages_get_clear_errors_and_nothing_is_produced(
    keyed_topic, kafka_settings, text, expect
):
    name, catalog = keyed_topic
    before = _ends(kafka_settings, name)
    with KafkaGateway(kafka_settings) as gw, pytest.raises(MessageInvalid) as exc:
        test_produce(gw, catalog, name, text)
    assert expect in str(exc.value) and "nothing was produced" in str(exc.value)
    assert _ends(kafka_settings, name) == before


def test_oversize_names_the_limit_and_cli_exits_1(keyed_topic, kafka_bootstrap, kafka_settings):
    name, _catalog = keyed_topic
    before = _ends(kafka_settings, name)
    res = CliRunner().invoke(
        main,
        [
            "-b",
            kafka_bootstrap,
            "test-produce",
            name,
            json.dumps({"blob": "y" * 4000}),
            "--key",
            "k",
        ],
    )
    assert res.exit_code == 1
    assert "max.message.bytes of 2,048" in res.output
    assert _ends(kafka_settings, name) == before


def test_unknown_topic_is_refused(kafka_settings):
    with KafkaGateway(kafka_settings) as gw, pytest.raises(MessageInvalid, match="does not exist"):
        test_produce(gw, load_catalog(env="dev"), "no-such-topic-x1", "{}")


@pytest.mark.parametrize(
    "value, key", [({"id": 7}, "7"), ({"id": "a"}, "a"), ({"id": True}, "true")]
)
def test_key_values_become_strings(value, key):
    assert key_for(parse_message(json.dumps(value)), "id", "t") == key
