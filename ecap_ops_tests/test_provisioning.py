"""Provisioning against the real broker: create-topics makes the cluster match the catalog,
checked with Kafka's own tools and kcat; drift is planned and mended; unsafe changes are
refused; bad catalogs and a dead broker change nothing and fail fast and clearly."""

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from ecap_ops.catalog import default_catalog_path, load_catalog
from ecap_ops.localkafka import LocalCluster, free_port
from ecap_ops_tests.bounds import (
    CONNECT_MS,
    REQUEST_MS,
    SHORT_WAITS_ENV,
    assert_bounded,
    wait_limit_s,
)
from ecap_ops_tests.helpers import kafka_tool

CATALOG_NAMES = [
    "transactions",
    "user-events",
    "product-updates",
    "fraud-alerts",
    "analytics-results",
]


def ecap_ops(
    *args: str,
    bootstrap: str,
    catalog: Path | None = None,
    env: dict | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """Run the real CLI in its own process, as a user would."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ECAP_"))}
    e["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    if catalog:
        e["ECAP_CATALOG"] = str(catalog)
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ecap_ops", *args],
        capture_output=True,
        text=True,
        env=e,
        timeout=timeout,
    )


def prefixed_catalog(tmp_path: Path, prefix: str, edit=None) -> Path:
    """The shipped catalog with every topic under `prefix.`, so tests sharing one broker
    never touch each other's topics. `edit(data)` may change it further."""
    data = yaml.safe_load(default_catalog_path().read_text())
    data["environments"]["dev"]["name_prefix"] = prefix + "."
    if edit:
        edit(data)
    path = tmp_path / f"catalog-{prefix}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def describe_with_kafka_topics(target, name: str) -> dict:
    """Partition count, replication and configs as Kafka's own kafka-topics reports them."""
    out = kafka_tool(target, "kafka-topics", "--describe", "--topic", name)
    assert out.returncode == 0, out.stderr
    head = next(
        line
        for line in out.stdout.splitlines()
        if line.startswith("Topic:") and "PartitionCount" in line
    )
    fields = dict(re.findall(r"(\w+):\s*(\S*)", head))
    configs = dict(kv.split("=", 1) for kv in fields.get("Configs", "").split(",") if "=" in kv)
    return {
        "partitions": int(fields["PartitionCount"]),
        "replication": int(fields["ReplicationFactor"]),
        "configs": configs,
    }


def dynamic_configs_with_kafka_configs(target, name: str) -> dict:
    """Topic-level overrides as Kafka's own kafka-configs reports them."""
    out = kafka_tool(
        target, "kafka-configs", "--describe", "--entity-type", "topics", "--entity-name", name
    )
    assert out.returncode == 0, out.stderr
    configs = {}
    for line in out.stdout.splitlines():
        m = re.match(r"\s+([a-z.]+)=(\S*) sensitive=\w+ synonyms=\{DYNAMIC_TOPIC_CONFIG", line)
        if m:
            configs[m.group(1)] = m.group(2)
    return configs


@pytest.fixture(scope="module")
def fresh_cluster(kafka_lib, tmp_path_factory):
    """A cluster of its own, so the shipped catalog is provisioned exactly, unprefixed."""
    cluster = LocalCluster(tmp_path_factory.mktemp("fresh"), nodes=1, port=0)
    cluster.start(timeout=180)
    yield cluster
    cluster.stop()


def test_create_topics_on_a_fresh_cluster_matches_the_catalog_exactly(fresh_cluster):
    bootstrap = fresh_cluster.bootstrap_servers
    first = ecap_ops("create-topics", bootstrap=bootstrap)
    assert first.returncode == 0, first.stderr
    assert "5 to create" in first.stdout

    catalog = load_catalog(env="dev")
    kcat = subprocess.run(
        ["kcat", "-b", bootstrap, "-L", "-J"], capture_output=True, text=True, timeout=30
    )
    assert kcat.returncode == 0, kcat.stderr
    kcat_topics = {t["topic"]: t for t in json.loads(kcat.stdout)["topics"]}
    for spec in catalog.topics:
        seen = describe_with_kafka_topics(fresh_cluster, spec.name)
        assert seen["partitions"] == spec.partitions
        assert seen["replication"] == spec.replication_factor
        overrides = dynamic_configs_with_kafka_configs(fresh_cluster, spec.name)
        # Exactly the catalog's overrides: nothing missing, no broker default pinned on.
        assert overrides == spec.configs, spec.name
        assert len(kcat_topics[spec.name]["partitions"]) == spec.partitions
    assert sorted(n for n in kcat_topics if not n.startswith("__")) == sorted(CATALOG_NAMES)

    second = ecap_ops("create-topics", bootstrap=bootstrap)
    assert second.returncode == 0 and "No changes" in second.stdout
    plan = ecap_ops("plan", "--output", "json", bootstrap=bootstrap)
    assert plan.returncode == 0
    assert json.loads(plan.stdout)["actions"] == []


def test_guide_commands_work_through_the_management_script(fresh_cluster):
    script = Path(__file__).resolve().parents[1] / "scripts" / "kafka-topics.sh"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": fresh_cluster.bootstrap_servers}
    env.pop("ECAP_CATALOG", None)
    for args in (["create-topics"], ["list-topics"], ["describe-topic", "transactions"]):
        out = subprocess.run(
            [str(script), *args], capture_output=True, text=True, env=env, timeout=60
        )
        assert out.returncode == 0, (args, out.stderr)
    listing = subprocess.run(
        [str(script), "list-topics", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert {t["name"] for t in json.loads(listing.stdout)["topics"] if t["managed"]} == set(
        CATALOG_NAMES
    )
    described = subprocess.run(
        [str(script), "describe-topic", "transactions", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    d = json.loads(described.stdout)
    assert len(d["partitions"]) == 6 and all(
        p["leader"] is not None and p["isr"] for p in d["partitions"]
    )
    assert d["configs"]["compression.type"]["value"] == "lz4"


def test_out_of_band_drift_is_planned_checked_and_mended(kafka_cluster, tmp_path, unique_name):
    from ecap_ops.orchestration.resources import KafkaResource
    from ecap_ops.orchestration.topics import build_topic_checks

    bootstrap = kafka_cluster.bootstrap_servers
    cat_path = prefixed_catalog(tmp_path, unique_name)
    assert ecap_ops("create-topics", bootstrap=bootstrap, catalog=cat_path).returncode == 0
    name = f"{unique_name}.transactions"
    altered = kafka_tool(
        kafka_cluster,
        "kafka-configs",
        "--entity-type",
        "topics",
        "--entity-name",
        name,
        "--alter",
        "--add-config",
        "retention.ms=3600000",
    )
    assert altered.returncode == 0, altered.stderr

    plan = ecap_ops("plan", bootstrap=bootstrap, catalog=cat_path)
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert f"alter configs of {name}" in plan.stdout
    assert "retention.ms: 3600000 (1h) -> 604800000 (7d)" in plan.stdout

    catalog = load_catalog(cat_path)
    spec = catalog.get(name)
    checks = build_topic_checks(catalog, spec)
    kafka = KafkaResource(bootstrap_servers=bootstrap)
    evaluation = checks[0](kafka=kafka)
    assert evaluation.passed is False
    drift = evaluation.metadata["drift"].value
    assert "retention.ms" in drift and "604800000" in drift and "3600000" in drift

    mend = ecap_ops("create-topics", bootstrap=bootstrap, catalog=cat_path)
    assert mend.returncode == 0, mend.stderr
    assert dynamic_configs_with_kafka_configs(kafka_cluster, name)["retention.ms"] == "604800000"
    assert ecap_ops("plan", bootstrap=bootstrap, catalog=cat_path).returncode == 0
    assert checks[0](kafka=kafka).passed is True


def test_a_plan_reads_offsets_only_where_data_decides_and_judges_them_from_the_broker(
    kafka_cluster, kafka_settings, tmp_path, unique_name
):
    """A retention decrease is destructive on a topic holding records, not on an empty
    one: the plan reads the offsets of the topics it changes a config of, and a no-op
    plan reads none (no ListOffsets at 10,000 topics)."""
    from kafka import KafkaProducer

    from ecap_ops.gateway import KafkaGateway
    from ecap_ops.services.provisioning import plan_topics

    bootstrap = kafka_cluster.bootstrap_servers
    cat_path = prefixed_catalog(tmp_path, unique_name)
    assert ecap_ops("create-topics", bootstrap=bootstrap, catalog=cat_path).returncode == 0
    with KafkaGateway(kafka_settings) as gw:
        noop = plan_topics(gw, load_catalog(cat_path))
        assert noop.actions == () and gw.requests["ListOffsets"] == 0, gw.requests

    with_data, empty = f"{unique_name}.transactions", f"{unique_name}.user-events"
    producer = KafkaProducer(acks="all", **kafka_settings.client_kwargs())
    producer.send(with_data, b"kept", partition=0).get(timeout=30)
    producer.close(timeout=5)

    def shorter_retention(data):
        for key in ("transactions", "user-events"):
            data["topics"][key]["retention"] = "1h"

    shorter = prefixed_catalog(tmp_path, unique_name, edit=shorter_retention)
    with KafkaGateway(kafka_settings) as gw:
        plan = plan_topics(gw, load_catalog(shorter))
        assert 0 < gw.requests["ListOffsets"] <= 2, gw.requests
    refused = {r.topic for r in plan.refusals if r.code == "destructive"}
    destructive = {a.topic: a.destructive for a in plan.actions}
    assert refused == {with_data}, plan.refusals
    assert destructive == {with_data: True, empty: False}, plan.actions


def test_fewer_partitions_than_exist_is_refused_and_nothing_changes(
    kafka_cluster, tmp_path, unique_name
):
    bootstrap = kafka_cluster.bootstrap_servers
    cat_path = prefixed_catalog(tmp_path, unique_name)
    assert ecap_ops("create-topics", bootstrap=bootstrap, catalog=cat_path).returncode == 0

    def fewer(data):
        data["topics"]["user-events"]["partitions"] = 4
        data["topics"]["fraud-alerts"]["retention"] = "100d"  # a change that would be allowed

    (tmp_path / "smaller").mkdir()
    smaller = prefixed_catalog(tmp_path / "smaller", unique_name, fewer)
    before = [
        describe_with_kafka_topics(kafka_cluster, f"{unique_name}.{n}")
        for n in ("user-events", "fraud-alerts")
    ]
    plan = ecap_ops("plan", bootstrap=bootstrap, catalog=smaller)
    assert plan.returncode == 1
    assert (
        f"topics.user-events.partitions: the catalog asks for 4 but {unique_name}.user-events has 12"
        in plan.stdout
    )
    apply = ecap_ops("create-topics", bootstrap=bootstrap, catalog=smaller)
    assert apply.returncode == 1
    assert "nothing was applied" in apply.stderr
    after = [
        describe_with_kafka_topics(kafka_cluster, f"{unique_name}.{n}")
        for n in ("user-events", "fraud-alerts")
    ]
    assert before == after


def test_a_saved_plan_is_applied_only_while_the_cluster_still_matches_it(
    kafka_cluster, tmp_path, unique_name
):
    bootstrap = kafka_cluster.bootstrap_servers
    cat_path = prefixed_catalog(tmp_path, unique_name)
    plan_file = tmp_path / "plan.json"
    assert (
        ecap_ops("plan", "--out", str(plan_file), bootstrap=bootstrap, catalog=cat_path).returncode
        == 2
    )
    # Someone creates one of the topics differently in the meantime.
    made = kafka_tool(
        kafka_cluster,
        "kafka-topics",
        "--create",
        "--topic",
        f"{unique_name}.fraud-alerts",
        "--partitions",
        "1",
    )
    assert made.returncode == 0, made.stderr
    stale = ecap_ops(
        "create-topics", "--plan-file", str(plan_file), bootstrap=bootstrap, catalog=cat_path
    )
    assert stale.returncode == 1 and "changed since the saved plan" in stale.stderr
    listed = kafka_tool(kafka_cluster, "kafka-topics", "--list").stdout.split()
    assert [t for t in listed if t.startswith(unique_name)] == [f"{unique_name}.fraud-alerts"]


MALFORMED_CATALOGS = {
    "broken-yaml": ("topics:\n  orders: [partitions: 1\n", "(YAML, line"),
    "unknown-key": (
        "topics:\n  orders: {partitions: 1, retension: 7d}\n",
        "topics.orders.retension",
    ),
    "zero-partitions": (
        "topics:\n  orders: {partitions: 0}\n",
        "topics.orders.partitions: must be >= 1, got 0",
    ),
    "negative-partitions": ("topics:\n  orders: {partitions: -3}\n", "topics.orders.partitions"),
    "bad-duration": (
        "topics:\n  orders: {partitions: 1, retention: a week}\n",
        "topics.orders.retention",
    ),
    "bad-size": (
        "topics:\n  orders: {partitions: 1, max_message_size: 1 mb please}\n",
        "topics.orders.max_message_size",
    ),
    "unknown-config": (
        "topics:\n  orders: {partitions: 1, configs: {retention.hours: 5}}\n",
        "topics.orders.configs.retention.hours",
    ),
    "bad-config-type": (
        "topics:\n  orders: {partitions: 1, configs: {preallocate: maybe}}\n",
        "topics.orders.configs.preallocate",
    ),
    "min-isr-above-rf": (
        "topics:\n  orders: {partitions: 1, configs: {min.insync.replicas: 3}}\n",
        "topics.orders.configs.min.insync.replicas",
    ),
    "duplicate-topic": (
        "topics:\n  orders: {partitions: 1}\n  orders: {partitions: 1}\n",
        "duplicate key 'orders'",
    ),
    "invalid-name": ("topics:\n  'orders/eu': {partitions: 1}\n", "topics.orders/eu"),
    "internal-name": ("topics:\n  __orders: {partitions: 1}\n", "topics.__orders"),
    "bad-compression": (
        "topics:\n  orders: {partitions: 1, compression: lzma}\n",
        "topics.orders.compression",
    ),
    "bad-policy": (
        "topics:\n  orders: {partitions: 1, cleanup_policy: forever}\n",
        "topics.orders.cleanup_policy",
    ),
    "not-a-mapping": ("topics: [orders]\n", "topics: must be a non-empty mapping"),
    "lag-not-a-mapping": ("topics:\n  orders: {partitions: 1, lag: fast}\n", "topics.orders.lag"),
    "replication-above-brokers": (
        "environments:\n  dev: {replication_factor: 3}\ntopics:\n  orders: {partitions: 1}\n",
        "topics.orders.replication_factor: 3 is more than the 1 live broker(s)",
    ),
}


def test_malformed_catalogs_are_rejected_and_change_nothing(kafka_cluster, tmp_path):
    bootstrap = kafka_cluster.bootstrap_servers
    before = kafka_tool(kafka_cluster, "kafka-topics", "--describe").stdout

    def attempt(item):
        label, (text, expected) = item
        path = tmp_path / f"{label}.yaml"
        path.write_text(text)
        return label, expected, ecap_ops("create-topics", bootstrap=bootstrap, catalog=path)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(attempt, MALFORMED_CATALOGS.items()))
    for label, expected, out in results:
        assert out.returncode == 1, (label, out.stdout, out.stderr)
        assert expected in out.stderr, (label, out.stderr)
        assert "Traceback" not in out.stderr, label
    after = kafka_tool(kafka_cluster, "kafka-topics", "--describe").stdout
    # Other tests may create their own topics meanwhile (some with "orders" in the name);
    # none of ours (exactly "orders") exists.
    assert "orders" not in set(re.findall(r"^Topic: (\S+)", after, re.M))
    assert set(before.splitlines()) - set(after.splitlines()) == set()


# Every command that talks to a cluster, with arguments that would make it do so. A new
# command fails the test below until it is listed here (or as local-only).
BROKER_DOWN_COMMANDS = {
    "plan": ["plan"],
    "create-topics": ["create-topics"],
    "list-topics": ["list-topics"],
    "describe-topic": ["describe-topic", "transactions"],
    "delete-topic": ["delete-topic", "old-topic", "--yes"],
    "reset-topics": ["reset-topics", "--yes"],
    "test-produce": ["test-produce", "transactions", '{"user_id": "u1", "amount": 100}'],
    "load-test": ["load-test", "user-events", "--rate", "10/s", "--duration", "1s"],
    "consumer-groups": ["consumer-groups"],
    "health-check": ["health-check"],
    "lag": ["lag"],
    "retention-audit": ["retention-audit"],
    "cleanup-test-topics": ["cleanup-test-topics"],
    "snapshot": ["snapshot", "--file", "{tmp}/down.json"],
    "restore": ["restore", "{snapshot}"],
    "dr-drill": ["dr-drill", "--snapshot", "{snapshot}"],
    "access": ["access", "plan"],
    "import": ["import", "--file", "{tmp}/imported.yaml"],
    "compare": ["compare", "default", "127.0.0.1:9"],
}
# Commands that never reach a cluster; and the exporter, which keeps serving while the
# cluster is down, with its `up` gauge at 0 (test_exporter.py); and `mirror` and
# `failover`, which talk to named clusters of a clusters file, never to -b: their
# broker-down case is in test_mirror.py.
LOCAL_ONLY = {
    "broker",
    "kafka-cli",
    "snapshot-diff",
    "snapshot-verify",
    "exporter",
    "mirror",
    "failover",
}


def test_every_command_ends_within_its_configured_waits_with_a_clear_message_when_no_broker_answers(
    kafka_cluster, tmp_path, cli_startup_s
):
    from ecap_ops.cli import COMMANDS

    assert set(COMMANDS) - LOCAL_ONLY == set(BROKER_DOWN_COMMANDS), "list every new command above"
    snapshot = tmp_path / "live.json"
    taken = ecap_ops("snapshot", "--file", str(snapshot), bootstrap=kafka_cluster.bootstrap_servers)
    assert taken.returncode == 0, taken.stderr
    dead = f"127.0.0.1:{free_port()}"

    def attempt(item):
        label, args = item
        args = [
            a.replace("{tmp}", str(tmp_path)).replace("{snapshot}", str(snapshot)) for a in args
        ]
        started = time.monotonic()
        out = ecap_ops(
            *args,
            bootstrap=dead,
            env={"ECAP_SNAPSHOT_DIR": str(tmp_path / "snaps"), **SHORT_WAITS_ENV},
            timeout=60,
        )
        return label, out, time.monotonic() - started

    # One at a time: each is timed, and timing four processes on two cores times the queue.
    results = [attempt(item) for item in sorted(BROKER_DOWN_COMMANDS.items())]
    # A command gives up after one connect wait and one request wait (both short here).
    limit = wait_limit_s(CONNECT_MS, REQUEST_MS, startup_s=cli_startup_s)
    for label, out, seconds in results:
        assert out.returncode == 1, (label, out.returncode, out.stdout, out.stderr)
        assert_bounded(seconds, limit, label, cli_startup_s)
        assert "Traceback" not in out.stderr, (label, out.stderr)
        text = (out.stdout + out.stderr).lower()
        assert "no kafka broker answered" in text or "unreachable" in text, (
            label,
            out.stdout,
            out.stderr,
        )
        assert dead in out.stdout + out.stderr, (label, "the message names the address it tried")
