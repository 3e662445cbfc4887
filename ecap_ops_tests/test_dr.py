"""Disaster recovery against real Kafka: snapshot, restore, conflicts, bad files, active groups,
the DR drill, a 1-node snapshot onto a 3-node cluster, and the Dagster definitions."""

import re
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from ecap_ops.catalog import load_catalog
from ecap_ops.catalog.loader import default_catalog_path
from ecap_ops.cli import main
from ecap_ops.core.incidents import to_alert
from ecap_ops.core.restore import RestoreOptions
from ecap_ops.core.restore_report import render_restore_plan
from ecap_ops.core.snapshot import diff_snapshots, seal, serialize
from ecap_ops.errors import KafkaUnavailable
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.snapshot import group_offsets, write_group_offsets
from ecap_ops.localkafka.cluster import free_port
from ecap_ops.services import dr
from ecap_ops.services.provisioning import apply_topics
from ecap_ops.settings import KafkaSettings
from ecap_ops_tests.bounds import assert_bounded, wait_limit_s
from ecap_ops_tests.helpers import kafka_tool, make_consumer, run_failures

pytestmark = pytest.mark.kafka


def prefixed_catalog(tmp_path: Path, prefix: str, env: str = "dev"):
    """The platform's catalog with its topics under a unique name prefix, so tests own them."""
    raw = yaml.safe_load(default_catalog_path().read_text())
    for e in raw["environments"].values():
        e["name_prefix"] = prefix
    path = tmp_path / f"catalog-{env}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_catalog(path, env=env), path


def produce(settings: KafkaSettings, topic: str, per_partition: dict[int, int]) -> None:
    from kafka import KafkaProducer

    p = KafkaProducer(**settings.client_kwargs())
    for part, n in per_partition.items():
        for i in range(n):
            p.send(topic, b"v%d" % i, partition=part)
    p.flush(timeout=10)
    p.close(timeout=5)


def cli(settings: KafkaSettings, *args: str, catalog: Path | None = None):
    extra = ["--catalog", str(catalog)] if catalog else []
    return CliRunner().invoke(
        main, ["-b", settings.bootstrap_servers, *extra, *args], catch_exceptions=False
    )


def describe_topic_tool(settings, topic) -> tuple[int, str]:
    """(partition count, Configs: line) as kafka-topics --describe reports them."""
    out = kafka_tool(settings, "kafka-topics", "--describe", "--topic", topic)
    assert out.returncode == 0, out.stderr
    m = re.search(r"PartitionCount:\s*(\d+).*?Configs:\s*(.*)", out.stdout)
    return int(m.group(1)), m.group(2).strip()


def group_offsets_tool(settings, group) -> dict[tuple[str, int], int]:
    out = kafka_tool(settings, "kafka-consumer-groups", "--describe", "--group", group)
    assert out.returncode == 0, out.stderr
    rows = {}
    for line in out.stdout.splitlines():
        cols = line.split()
        if len(cols) >= 4 and cols[0] == group and cols[3].isdigit():
            rows[(cols[1], int(cols[2]))] = int(cols[3])
    return rows


def test_snapshot_delete_dry_run_restore_and_verify(kafka_settings, tmp_path, unique_name):
    catalog, catalog_path = prefixed_catalog(tmp_path, f"{unique_name}.")
    other, group = f"{unique_name}-keep", f"{unique_name}-grp"
    with KafkaGateway(kafka_settings) as gw:
        assert apply_topics(gw, catalog).ok
        gw.require(
            gw.create_topics(
                {
                    other: {
                        "num_partitions": 2,
                        "replication_factor": 1,
                        "configs": {"retention.ms": "7200000"},
                    }
                }
            ),
            "creating",
        )
        produce(kafka_settings, other, {0: 5, 1: 3})
        assert write_group_offsets(gw, group, {(other, 0): 4, (other, 1): 2}) == {
            (other, 0): None,
            (other, 1): None,
        }
        first = dr.take_snapshot(gw, catalog, directory=tmp_path / "snaps")
    assert first.snapshot.complete["topic_configs"] and not first.snapshot.complete["acls"]
    assert any("no authorizer" in n for n in first.snapshot.doc["notes"])
    snap_topics = first.snapshot.topics
    assert snap_topics[f"{unique_name}.transactions"]["overrides"]["compression.type"] == "lz4"
    assert (
        "segment.bytes" not in snap_topics[f"{unique_name}.transactions"]["overrides"]
    )  # no broker defaults pinned
    assert {
        (o["topic"], o["partition"], o["offset"], o["end_offset"])
        for o in first.snapshot.groups[group]["offsets"]
    } == {(other, 0, 4, 5), (other, 1, 2, 3)}

    # Disaster: the catalog's topics and the group are gone.
    with KafkaGateway(kafka_settings) as gw:
        gw.require(gw.delete_topics(catalog.names()), "deleting")
        assert gw.call("deleting the group", lambda a: a.delete_groups([group]))[group] == "OK"
        deadline = time.monotonic() + 30
        while gw.topics(catalog.names()) and time.monotonic() < deadline:
            time.sleep(0.3)
        before = sorted(gw.list_topic_names())

    dry = cli(
        kafka_settings,
        "restore",
        str(first.path),
        "--include-offsets",
        "--output",
        "json",
        catalog=catalog_path,
    )
    assert dry.exit_code == 2, dry.output
    import json

    plan = json.loads(dry.output)["plan"]
    assert sorted(c["name"] for c in plan["creates"]) == sorted(
        catalog.names()
    )  # exactly what is missing
    assert [
        (g["group_id"], sorted((w["topic"], w["partition"], w["offset"]) for w in g["writes"]))
        for g in plan["groups"]
    ] == [(group, [(other, 0, 4), (other, 1, 2)])]
    assert plan["in_sync"] and other in plan["in_sync"] and not plan["conflicts"]
    with KafkaGateway(kafka_settings) as gw:
        assert sorted(gw.list_topic_names()) == before  # the dry run changed nothing
        assert group not in group_offsets(gw, [group]) or not group_offsets(gw, [group])[group]

    done = cli(
        kafka_settings,
        "restore",
        str(first.path),
        "--include-offsets",
        "--execute",
        catalog=catalog_path,
    )
    assert done.exit_code == 0, done.output
    for spec in catalog.topics:
        parts, configs = describe_topic_tool(kafka_settings, spec.name)
        assert parts == spec.partitions
        for k, v in snap_topics[spec.name]["overrides"].items():
            assert f"{k}={v}" in configs
    assert group_offsets_tool(kafka_settings, group) == {(other, 0): 4, (other, 1): 2}
    with KafkaGateway(kafka_settings) as gw:
        second = dr.take_snapshot(gw, catalog, directory=tmp_path / "snaps")
    d = diff_snapshots(first.snapshot, second.snapshot)
    assert d.empty, d.to_dict()
    again = cli(kafka_settings, "snapshot-diff", str(first.path), str(second.path))
    assert again.exit_code == 0 and "No differences." in again.output
    # A second restore has nothing to do.
    rerun = cli(
        kafka_settings, "restore", str(first.path), "--include-offsets", catalog=catalog_path
    )
    assert rerun.exit_code == 0 and "Nothing to restore" in rerun.output


def test_partition_conflict_is_reported_and_left_alone(kafka_settings, tmp_path, unique_name):
    catalog = load_catalog(env="dev")
    with KafkaGateway(kafka_settings) as gw:
        gw.require(
            gw.create_topics(
                {unique_name: {"num_partitions": 3, "replication_factor": 1, "configs": {}}}
            ),
            "creating",
        )
        snap = dr.take_snapshot(gw, catalog, output=tmp_path / "s.json").snapshot
        gw.require(gw.delete_topics([unique_name]), "deleting")
        deadline = time.monotonic() + 30
        while gw.topics([unique_name]) and time.monotonic() < deadline:
            time.sleep(0.3)
        gw.require(
            gw.create_topics(
                {unique_name: {"num_partitions": 5, "replication_factor": 1, "configs": {}}}
            ),
            "re-creating",
        )
    out = cli(
        kafka_settings, "restore", str(tmp_path / "s.json"), "--topic", unique_name, "--execute"
    )
    assert out.exit_code == 1
    assert (
        f"conflict (partition_mismatch) {unique_name}: {unique_name} exists with 5 partition(s), the snapshot has 3"
        in out.output
    )
    assert describe_topic_tool(kafka_settings, unique_name)[0] == 5
    assert snap.topics[unique_name]["partitions"] == 3


@pytest.mark.parametrize("damage", ["byte", "truncated", "version", "not-json"])
def test_damaged_snapshots_are_refused_and_change_nothing(
    kafka_settings, tmp_path, unique_name, damage
):
    catalog = load_catalog(env="dev")
    with KafkaGateway(kafka_settings) as gw:
        gw.require(
            gw.create_topics(
                {unique_name: {"num_partitions": 1, "replication_factor": 1, "configs": {}}}
            ),
            "creating",
        )
        good = dr.take_snapshot(gw, catalog, output=tmp_path / "good.json")
        gw.require(gw.delete_topics([unique_name]), "deleting")
        deadline = time.monotonic() + 30
        while gw.topics([unique_name]) and time.monotonic() < deadline:
            time.sleep(0.3)
        before = gw.list_topic_names()
    text = good.path.read_text()
    bad = tmp_path / "bad.json"
    if damage == "byte":
        i = text.index(unique_name) + 1
        bad.write_bytes(text[:i].encode() + b"#" + text[i + 1 :].encode())
        expected = "checksum mismatch"
    elif damage == "truncated":
        bad.write_text(text[: len(text) * 2 // 3])
        expected = "truncated"
    elif damage == "version":
        doc = dict(good.snapshot.doc, format_version=99)
        bad.write_text(serialize(seal(doc)))
        expected = "unknown snapshot format version 99"
    else:
        bad.write_text("topic,partitions\norders,3\n")
        expected = "not JSON"
    out = cli(kafka_settings, "restore", str(bad), "--execute", "--include-offsets")
    assert out.exit_code == 1
    assert expected in out.output and str(bad) in out.output
    with KafkaGateway(kafka_settings) as gw:
        assert gw.list_topic_names() == before
    assert cli(kafka_settings, "snapshot-verify", str(bad)).exit_code == 1
    assert cli(kafka_settings, "snapshot-verify", str(good.path)).exit_code == 0


def test_offsets_are_not_written_into_a_group_with_active_members(
    kafka_settings, tmp_path, unique_name
):

    catalog = load_catalog(env="dev")
    topic, group = unique_name, f"{unique_name}-live"
    with KafkaGateway(kafka_settings) as gw:
        gw.require(
            gw.create_topics(
                {topic: {"num_partitions": 1, "replication_factor": 1, "configs": {}}}
            ),
            "creating",
        )
        produce(kafka_settings, topic, {0: 10})
        write_group_offsets(gw, group, {(topic, 0): 7})
        path = dr.take_snapshot(gw, catalog, output=tmp_path / "s.json").path
        write_group_offsets(gw, group, {(topic, 0): 2})
    consumer = make_consumer(
        topic,
        group_id=group,
        enable_auto_commit=False,
        **kafka_settings.client_kwargs(),
    )
    try:
        deadline = time.monotonic() + 30
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
        assert consumer.assignment(), "the consumer did not join its group"
        out = cli(
            kafka_settings, "restore", str(path), "--topic", topic, "--include-offsets", "--execute"
        )
        assert out.exit_code == 1, out.output
        assert (
            f"conflict (group_active) {group}" in out.output and "1 active member(s)" in out.output
        )
    finally:
        consumer.close(autocommit=False)
    assert group_offsets_tool(kafka_settings, group) == {(topic, 0): 2}


def test_dr_drill_passes_then_fails_on_a_snapshot_missing_a_topic_config(
    kafka_settings, tmp_path, unique_name
):
    from ecap_ops.orchestration.alerts import AlertsResource
    from ecap_ops.orchestration.dr import dr_drill
    from ecap_ops.orchestration.resources import KafkaResource

    catalog = load_catalog(env="dev")
    names = [f"{unique_name}-a", f"{unique_name}-b"]
    with KafkaGateway(kafka_settings) as gw:
        gw.require(
            gw.create_topics(
                {
                    n: {
                        "num_partitions": 2,
                        "replication_factor": 1,
                        "configs": {"retention.ms": "3600000", "cleanup.policy": "compact"},
                    }
                    for n in names
                }
            ),
            "creating",
        )
        good = dr.take_snapshot(gw, catalog, output=tmp_path / "good.json")
    ok = cli(
        kafka_settings,
        "dr-drill",
        "--snapshot",
        str(good.path),
        "--topic",
        names[0],
        "--topic",
        names[1],
    )
    assert ok.exit_code == 0, ok.output
    assert (
        "DR drill PASSED" in ok.output
        and "2/2 topic(s) match the snapshot" in ok.output
        and "created 2, removed 2" in ok.output
    )

    doc = good.snapshot.doc
    doc = dict(
        doc,
        topics=[dict(t, overrides=None) if t["name"] == names[1] else t for t in doc["topics"]],
        complete=dict(doc["complete"], topic_configs=False),
    )
    doc["notes"] = doc["notes"] + [f"the configs of 1 topic(s) could not be read: {names[1]}"]
    bad = tmp_path / "lacks-config.json"
    bad.write_text(serialize(seal(doc)))
    alerts_file = tmp_path / "alerts.jsonl"
    resources = {
        "kafka": KafkaResource(bootstrap_servers=kafka_settings.bootstrap_servers),
        "alerts": AlertsResource(jsonl_path=str(alerts_file)),
    }
    instance = dg.DagsterInstance.ephemeral()
    result = dr_drill.execute_in_process(
        run_config={
            "ops": {"run_dr_drill": {"config": {"snapshot_path": str(bad), "topics": names}}}
        },
        resources=resources,
        raise_on_error=False,
        instance=instance,
    )
    assert not result.success
    failure = [e for e in result.all_events if e.is_step_failure][0].step_failure_data.error.message
    assert (
        "DR drill FAILED" in failure
        and f"x {names[1]} (as drill.{names[1]}): config_missing" in failure
    )
    assert "topic configs flag is false" in failure
    # The drill records its incident event; dr_drill_incident_sensor sends it as one run of
    # notify_dr_drill (test_incident_delivery.py); here, the alert that run will send.
    (opened,) = _drill_events(instance)
    alert = to_alert(opened).title + "\n" + to_alert(opened).text
    assert "DR drill failed" in alert and names[1] in alert
    assert opened.kind == "open" and not alerts_file.exists()
    with KafkaGateway(kafka_settings) as gw:
        assert not [
            n for n in gw.list_topic_names() if n.startswith("drill.")
        ]  # everything created was removed
        assert set(names) <= set(gw.list_topic_names())  # and nothing else was touched
    # The passing drill runs in Dagster too.
    passed = dr_drill.execute_in_process(
        run_config={
            "ops": {"run_dr_drill": {"config": {"snapshot_path": str(good.path), "topics": names}}}
        },
        resources=resources,
        instance=instance,
    )
    assert passed.success, run_failures(passed)
    assert passed.output_for_node("run_dr_drill")["passed"] is True
    (resolved,) = _drill_events(instance)
    assert resolved.kind == "resolve" and resolved.incident_id == opened.incident_id
    assert to_alert(resolved).severity == "resolved"


def _drill_events(instance) -> list:
    """The incident events the latest drill recorded on ecap_ops/dr_drill."""
    from ecap_ops.core.incidents import from_wire
    from ecap_ops.orchestration.alerts import EVENTS_METADATA
    from ecap_ops.orchestration.dr import DRILL_KEY

    (record,) = instance.fetch_observations(DRILL_KEY, limit=1).records
    return [from_wire(w) for w in record.asset_observation.metadata[EVENTS_METADATA].value]


def test_snapshot_asset_and_restore_job_in_dagster(
    kafka_settings, tmp_path, monkeypatch, unique_name
):
    import dagster as dg

    from ecap_ops.orchestration.dr import build_snapshot_asset, dr_restore
    from ecap_ops.orchestration.resources import KafkaResource

    monkeypatch.setenv("ECAP_SNAPSHOT_DIR", str(tmp_path / "snaps"))
    monkeypatch.setenv("ECAP_SNAPSHOT_KEEP", "2")
    catalog = load_catalog(env="dev")
    asset = build_snapshot_asset(catalog)
    kafka = KafkaResource(bootstrap_servers=kafka_settings.bootstrap_servers)
    metas = []
    for i in range(3):
        if i == 1:
            with KafkaGateway(kafka_settings) as gw:
                gw.require(
                    gw.create_topics(
                        {unique_name: {"num_partitions": 1, "replication_factor": 1, "configs": {}}}
                    ),
                    "creating",
                )
        res = dg.materialize([asset], resources={"kafka": kafka})
        assert res.success, run_failures(res)
        metas.append(res.asset_materializations_for_node("kafka_metadata_snapshot")[0].metadata)
    assert metas[0]["diff_vs_previous"].value == "no earlier snapshot in the directory"
    assert metas[1]["topics_added"].value == 1 and unique_name in metas[1]["diff_vs_previous"].value
    assert metas[2]["diff_empty"].value is True
    assert metas[2]["topics"].value >= 1 and len(metas[2]["checksum_sha256"].value) == 64
    assert len(dr.list_snapshots(tmp_path / "snaps")) == 2  # keeps the newest N
    run = dr_restore.execute_in_process(resources={"kafka": kafka})  # newest snapshot, dry run
    assert run.success and run.output_for_node("restore_from_snapshot")["executed"] is False


def test_restore_one_node_snapshot_onto_three_nodes_only_when_asked(
    kafka_settings, kafka_cluster3, tmp_path, unique_name
):
    dev, _ = prefixed_catalog(tmp_path, f"{unique_name}.", env="dev")
    _, prod_path = prefixed_catalog(tmp_path, f"{unique_name}.", env="prod")
    with KafkaGateway(kafka_settings) as gw:
        assert apply_topics(gw, dev).ok
        path = dr.take_snapshot(gw, dev, output=tmp_path / "one-node.json").path
    three = KafkaSettings(
        bootstrap_servers=kafka_cluster3.bootstrap_servers, request_timeout_ms=15000
    )
    names = dev.names()
    topic_args = [a for n in names for a in ("--topic", n)]
    refused = CliRunner().invoke(
        main,
        [
            "-b",
            three.bootstrap_servers,
            "--env",
            "prod",
            "--catalog",
            str(prod_path),
            "restore",
            str(path),
            *topic_args,
            "--execute",
        ],
    )
    assert refused.exit_code == 1 and "--allow-other-cluster" in refused.output
    with KafkaGateway(three) as gw:
        assert not set(names) & set(gw.list_topic_names())
    done = CliRunner().invoke(
        main,
        [
            "-b",
            three.bootstrap_servers,
            "--env",
            "prod",
            "--catalog",
            str(prod_path),
            "restore",
            str(path),
            *topic_args,
            "--allow-other-cluster",
            "--execute",
        ],
    )
    assert done.exit_code == 0, done.output
    assert "replication 3 (3 from the catalog (env prod))" in done.output
    for spec in dev.topics:
        out = kafka_tool(three, "kafka-topics", "--describe", "--topic", spec.name)
        assert (
            f"PartitionCount: {spec.partitions}" in out.stdout
            and "ReplicationFactor: 3" in out.stdout
        )
        assert "min.insync.replicas=2" in out.stdout


def test_broker_down_is_a_bounded_clear_error(tmp_path):
    settings = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{free_port()}",
        connect_timeout_ms=1500,
        request_timeout_ms=1500,
    )
    started = time.monotonic()
    with (
        pytest.raises(KafkaUnavailable, match="no Kafka broker answered"),
        KafkaGateway(settings) as gw,
    ):
        dr.take_snapshot(gw, load_catalog(env="dev"), directory=tmp_path)
    limit = wait_limit_s(settings.connect_timeout_ms, settings.request_timeout_ms)
    assert_bounded(time.monotonic() - started, limit, "a snapshot of a cluster that is down")
    assert not list(tmp_path.iterdir())  # nothing written


def test_restore_plan_text_names_the_replication_rule(kafka_settings, tmp_path, unique_name):
    with KafkaGateway(kafka_settings) as gw:
        gw.require(
            gw.create_topics(
                {unique_name: {"num_partitions": 1, "replication_factor": 1, "configs": {}}}
            ),
            "creating",
        )
        snap = dr.take_snapshot(gw, load_catalog(env="dev"), output=tmp_path / "s.json").snapshot
        before = gw.requests["ListOffsets"]
        plan = dr.plan_restore(
            gw, load_catalog(env="dev"), snap, RestoreOptions(topics=(unique_name,))
        )
        # In sync: no config would change, so no topic's data decides anything and the
        # plan reads no offsets, however many topics the broker holds.
        assert gw.requests["ListOffsets"] == before, gw.requests
    text = render_restore_plan(plan)
    assert "replication rule: catalog topics take the target catalog's replication" in text
    assert plan.in_sync == [unique_name]
