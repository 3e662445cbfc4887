"""delete-topic and reset-topics against the real broker: confirmation, --yes, refusals of
catalog and internal topics without --force, and a reset that leaves the catalog's topics
empty and as declared; checked with Kafka's own kafka-topics."""

import json

import pytest
import yaml
from click.testing import CliRunner
from kafka import KafkaProducer

from ecap_ops.catalog import default_catalog_path, load_catalog
from ecap_ops.cli import main
from ecap_ops.gateway import KafkaGateway
from ecap_ops.services.provisioning import apply_topics
from ecap_ops_tests.helpers import kafka_tool

pytestmark = pytest.mark.kafka


def _topics(settings) -> set[str]:
    out = kafka_tool(settings, "kafka-topics", "--list")
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def _create(settings, name: str) -> None:
    with KafkaGateway(settings) as gw:
        gw.require(
            gw.create_topics({name: {"num_partitions": 1, "replication_factor": 1}}), "creating"
        )


def _run(bootstrap, *args, input=None, catalog=None):
    base = ["-b", bootstrap, "--env", "dev"] + (["--catalog", str(catalog)] if catalog else [])
    return CliRunner().invoke(main, base + list(args), input=input)


def test_delete_topic_asks_and_no_keeps_it(kafka_settings, kafka_bootstrap, unique_name):
    _create(kafka_settings, unique_name)
    res = _run(kafka_bootstrap, "delete-topic", unique_name, input="n\n")
    assert res.exit_code == 1 and "Delete topic" in res.output and "Aborted" in res.output
    assert unique_name in _topics(kafka_settings)
    res = _run(kafka_bootstrap, "delete-topic", unique_name, input="y\n")
    assert res.exit_code == 0 and f"Deleted topic {unique_name}" in res.output
    assert unique_name not in _topics(kafka_settings)


def test_delete_topic_yes_for_scripts_and_exact_names_only(
    kafka_settings, kafka_bootstrap, unique_name
):
    _create(kafka_settings, unique_name)
    _create(kafka_settings, unique_name + "x")
    res = _run(kafka_bootstrap, "delete-topic", unique_name, "--yes")
    assert res.exit_code == 0
    left = _topics(kafka_settings)
    assert unique_name not in left and unique_name + "x" in left
    res = _run(kafka_bootstrap, "delete-topic", unique_name[:-3] + ".*", "--yes")
    assert res.exit_code == 1 and "does not exist" in res.output


def test_internal_and_catalog_topics_need_force(
    kafka_settings, kafka_bootstrap, unique_name, tmp_path
):
    res = _run(kafka_bootstrap, "delete-topic", "__consumer_offsets", "--yes")
    assert res.exit_code == 1 and "internal topics" in res.output and "--force" in res.output
    data = yaml.safe_load(default_catalog_path().read_text())
    data["environments"]["dev"]["name_prefix"] = unique_name + "."
    cat = tmp_path / "c.yaml"
    cat.write_text(yaml.safe_dump(data))
    name = f"{unique_name}.fraud-alerts"
    _create(kafka_settings, name)
    res = _run(kafka_bootstrap, "delete-topic", name, "--yes", catalog=cat)
    assert res.exit_code == 1 and "is in the catalog" in res.output
    assert name in _topics(kafka_settings)
    res = _run(kafka_bootstrap, "delete-topic", name, "--yes", "--force", catalog=cat)
    assert res.exit_code == 0 and name not in _topics(kafka_settings)


def test_reset_topics_prints_what_it_deletes_needs_consent_and_recreates_empty(
    kafka_settings, kafka_bootstrap, unique_name, tmp_path
):
    data = yaml.safe_load(default_catalog_path().read_text())
    data["environments"]["dev"]["name_prefix"] = unique_name + "."
    cat = tmp_path / "c.yaml"
    cat.write_text(yaml.safe_dump(data))
    catalog = load_catalog(cat, env="dev")
    with KafkaGateway(kafka_settings) as gw:
        assert apply_topics(gw, catalog).ok
        ids_before = {
            n: t.topic_id
            for n, t in gw.read_cluster_state(catalog.names()).topics.items()
            if n in catalog.names()
        }
    tx = f"{unique_name}.transactions"
    producer = KafkaProducer(acks="all", **kafka_settings.client_kwargs())
    for i in range(7):
        producer.send(tx, key=b"u", value=json.dumps({"user_id": "u", "i": i}).encode())
    producer.flush(15)
    producer.close()

    no = _run(kafka_bootstrap, "reset-topics", input="n\n", catalog=cat)
    assert no.exit_code == 1 and "Will delete these catalog topics" in no.output and tx in no.output
    with KafkaGateway(kafka_settings) as gw:
        assert sum(gw.offsets([(tx, p) for p in range(6)], "latest").values()) == 7

    yes = _run(kafka_bootstrap, "reset-topics", "--yes", catalog=cat)
    assert yes.exit_code == 0, yes.output
    with KafkaGateway(kafka_settings) as gw:
        state = gw.read_cluster_state(catalog.names())
        assert sum(gw.offsets([(tx, p) for p in range(6)], "latest").values()) == 0
    for spec in catalog.topics:
        t = state.topics[spec.name]
        assert t.partition_count == spec.partitions and t.topic_id != ids_before[spec.name]
    out = kafka_tool(kafka_settings, "kafka-topics", "--describe", "--topic", tx)
    assert "PartitionCount: 6" in out.stdout and "compression.type=lz4" in out.stdout
