"""`compare` and the many-clusters code location, with two local clusters: the session's
and a second one-node cluster started for this module (stopped at its end)."""

import json
import os
import subprocess
import sys
import time

import pytest

from ecap_ops.catalog import load_catalog
from ecap_ops.core.compare import DRIFT, EXPECTED, ClusterView, TopicView, compare_clusters
from ecap_ops_tests.bounds import CONNECT_MS, REQUEST_MS, assert_bounded, wait_limit_s
from ecap_ops_tests.helpers import free_port, kafka_tool, run_failures


@pytest.fixture
def second_cluster(kafka_cluster_b):
    """The session's second cluster (`conftest.kafka_cluster_b`)."""
    return kafka_cluster_b


def _view(name, topics):
    return ClusterView(name, {t.name: t for t in topics}, None, {})


def test_differences_the_overlays_declare_are_expected_the_rest_is_drift():
    dev, prod = load_catalog(env="dev"), load_catalog(env="prod")
    t_dev, t_prod = dev.get("transactions"), prod.get("transactions")
    a = _view("dev", [TopicView(t_dev.name, t_dev.partitions, 1, dict(t_dev.configs))])
    b = _view("prod", [TopicView(t_prod.name, t_prod.partitions, 3, dict(t_prod.configs))])
    result = compare_clusters(a, b, dev, prod)
    kinds = {(d.kind, d.status) for d in result.differences if d.subject.startswith("transactions")}
    assert ("replication", EXPECTED) in kinds and not result.drift
    # Other topics of the catalog, missing on both: nothing to compare; the same topic with
    # retention changed by hand on prod is drift.
    changed = dict(t_prod.configs, **{"retention.ms": "1000"})
    b2 = _view("prod", [TopicView(t_prod.name, t_prod.partitions, 3, changed)])
    drift = compare_clusters(a, b2, dev, prod).drift
    assert [(d.kind, d.subject) for d in drift] == [("override", "transactions retention.ms")]
    assert "B should be" in drift[0].reason


def _cli(*args, env=None, timeout=120):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ECAP_"))}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ecap_ops", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=timeout,
    )


def _clusters_file(tmp_path, a: str, b: str, b_env="dev"):
    p = tmp_path / "clusters.yaml"
    p.write_text(
        "version: 1\nclusters:\n"
        f"  one: {{role: primary, env: dev, bootstrap_servers: '{a}'}}\n"
        f"  two: {{role: standby, env: {b_env}, bootstrap_servers: '{b}'}}\n"
    )
    return p


def test_compare_finds_a_drift_made_with_kafkas_own_tools(
    kafka_cluster, second_cluster, tmp_path, unique_name
):
    for c in (kafka_cluster, second_cluster):
        made = kafka_tool(
            c, "kafka-topics", "--create", "--topic", unique_name, "--partitions", "2"
        )
        assert made.returncode == 0, made.stderr
    p = _clusters_file(tmp_path, kafka_cluster.bootstrap_servers, second_cluster.bootstrap_servers)
    env = {"ECAP_CLUSTERS_FILE": str(p)}
    before = _cli("compare", "one", "two", "-o", "json", "--no-groups", env=env)
    assert before.returncode in (0, 2), before.stderr
    subjects = {d["subject"] for d in json.loads(before.stdout)["differences"]}
    assert not any(unique_name in s for s in subjects)
    altered = kafka_tool(
        second_cluster,
        "kafka-configs",
        "--alter",
        "--entity-type",
        "topics",
        "--entity-name",
        unique_name,
        "--add-config",
        "retention.ms=123456",
    )
    assert altered.returncode == 0, altered.stderr
    after = _cli("compare", "one", "two", "-o", "json", "--no-groups", env=env)
    assert after.returncode == 2, after.stderr
    doc = json.loads(after.stdout)
    mine = [d for d in doc["differences"] if d["subject"] == f"{unique_name} retention.ms"]
    assert mine and mine[0]["status"] == DRIFT and mine[0]["b"] == "123456"
    table = _cli("compare", "one", "two", "--no-groups", env=env)
    assert table.returncode == 2 and "drift" in table.stdout and "Traceback" not in table.stderr
    # Nothing was changed by comparing.
    desc = kafka_tool(
        kafka_cluster,
        "kafka-configs",
        "--describe",
        "--entity-type",
        "topics",
        "--entity-name",
        unique_name,
    )
    assert "retention.ms" not in desc.stdout


def test_compare_with_a_cluster_down_fails_clearly_within_the_bounded_wait(
    kafka_cluster, tmp_path, cli_startup_s
):
    p = _clusters_file(tmp_path, kafka_cluster.bootstrap_servers, f"127.0.0.1:{free_port()}")
    env = {
        "ECAP_CLUSTERS_FILE": str(p),
        "ECAP_KAFKA_CONNECT_TIMEOUT_MS": str(CONNECT_MS),
        "ECAP_KAFKA_REQUEST_TIMEOUT_MS": str(REQUEST_MS),
    }
    started = time.monotonic()
    out = _cli("compare", "one", "two", "--no-groups", env=env)
    took = time.monotonic() - started
    assert out.returncode == 1 and out.stderr.startswith("error:") and "Traceback" not in out.stderr
    # Reading the live cluster (a few requests) then the dead one's connect wait.
    limit = wait_limit_s(CONNECT_MS, REQUEST_MS, startup_s=cli_startup_s, sequential_waits=2)
    assert_bounded(took, limit, "compare with a dead cluster", cli_startup_s)


def _defs(clusters_file):
    import importlib

    os.environ["ECAP_CLUSTERS_FILE"] = str(clusters_file)
    try:
        import ecap_ops.definitions as d

        return importlib.reload(d).defs
    finally:
        del os.environ["ECAP_CLUSTERS_FILE"]


def test_one_code_location_covers_both_clusters_and_materializes_a_topic_on_each(
    kafka_cluster, second_cluster, tmp_path
):
    import dagster as dg

    p = _clusters_file(tmp_path, kafka_cluster.bootstrap_servers, second_cluster.bootstrap_servers)
    defs = _defs(p)
    repo = defs.get_repository_def()
    jobs = {j.name for j in repo.get_all_jobs()}
    assert {
        "kafka_health_check",
        "two__kafka_health_check",
        "provision_topics",
        "two__provision_topics",
        "two__compare_with_primary",
    } <= jobs
    sensors = {s.name for s in repo.sensor_defs}
    assert {"consumer_lag_sensor", "two__consumer_lag_sensor"} <= sensors
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert {"kafka/transactions", "two/kafka/transactions"} <= keys
    res = defs.resources
    assert res["kafka"].bootstrap_servers == kafka_cluster.bootstrap_servers
    assert res["kafka_two"].bootstrap_servers == second_cluster.bootstrap_servers
    for key, cluster in (
        ("kafka/fraud-alerts", kafka_cluster),
        ("two/kafka/fraud-alerts", second_cluster),
    ):
        asset = defs.get_assets_def(dg.AssetKey.from_user_string(key))
        result = dg.materialize(
            [asset], resources=res, selection=[dg.AssetKey.from_user_string(key)]
        )
        assert result.success, run_failures(result)
        desc = kafka_tool(cluster, "kafka-topics", "--describe", "--topic", "fraud-alerts")
        assert desc.returncode == 0 and "fraud-alerts" in desc.stdout


def test_one_cluster_down_does_not_hold_up_the_others_health_and_lag(kafka_cluster, tmp_path):
    import dagster as dg

    p = _clusters_file(tmp_path, kafka_cluster.bootstrap_servers, f"127.0.0.1:{free_port()}")
    os.environ["ECAP_KAFKA_CONNECT_TIMEOUT_MS"] = str(CONNECT_MS)
    os.environ["ECAP_KAFKA_REQUEST_TIMEOUT_MS"] = str(REQUEST_MS)
    try:
        defs = _defs(p)
    finally:
        del os.environ["ECAP_KAFKA_CONNECT_TIMEOUT_MS"], os.environ["ECAP_KAFKA_REQUEST_TIMEOUT_MS"]
    instance = dg.DagsterInstance.ephemeral()
    from ecap_ops.orchestration.alerts import AlertsResource

    resources = {**defs.resources, "alerts": AlertsResource(jsonl_path=str(tmp_path / "a.jsonl"))}
    cfg = {"ops": {"kafka_health_report": {"config": {"canary": False}}}}
    live = defs.get_job_def("kafka_health_check").execute_in_process(
        instance=instance, resources=resources, run_config=cfg, raise_on_error=False
    )
    assert live.success, run_failures(live)
    started = time.monotonic()
    down = defs.get_job_def("two__kafka_health_check").execute_in_process(
        instance=instance,
        resources=resources,
        run_config={"ops": {"two__kafka_health_report": {"config": {"canary": False}}}},
        raise_on_error=False,
    )
    took = time.monotonic() - started
    # The down cluster's run reports it CRIT, unreachable at its own address.
    report = down.output_for_node("two__kafka_health_report")
    assert report["status"] == "CRIT", report
    assert "unreachable" in json.dumps(report) and "127.0.0.1" in json.dumps(report)
    assert live.output_for_node("kafka_health_report")["status"] != "CRIT"
    assert_bounded(
        took,
        wait_limit_s(CONNECT_MS, REQUEST_MS, sequential_waits=2),
        "health of a dead cluster",
    )
    for name, ok in (("consumer_lag_sensor", True), ("two__consumer_lag_sensor", False)):
        sensor = defs.get_sensor_def(name)
        with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
            started = time.monotonic()
            result = sensor(ctx)
            took = time.monotonic() - started
        skip = result.skip_reason.skip_message if result.skip_reason else ""
        if ok:
            assert "not measured" not in skip, skip
        else:
            assert "consumer lag not measured" in skip, skip
            assert_bounded(
                took,
                wait_limit_s(CONNECT_MS, REQUEST_MS, sequential_waits=2),
                "lag tick of a dead cluster",
            )
