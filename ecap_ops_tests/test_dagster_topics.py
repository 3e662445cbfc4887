"""The Dagster side of provisioning, in process against the real broker: topic assets
materialize (reconcile) with metadata, provision_topics runs one topic at a time, checks
evaluate, and the code location loads with no broker at all."""

import subprocess
import sys

import dagster as dg

from ecap_ops.catalog import load_catalog
from ecap_ops.orchestration import topics
from ecap_ops.orchestration.resources import KafkaResource
from ecap_ops_tests.helpers import kafka_tool, run_failures
from ecap_ops_tests.test_provisioning import prefixed_catalog


def defs_for(catalog_path, bootstrap):
    catalog = load_catalog(catalog_path)
    return catalog, dg.Definitions.merge(
        topics.build_defs(catalog),
        dg.Definitions(resources={"kafka": KafkaResource(bootstrap_servers=bootstrap)}),
    )


def test_provision_topics_job_creates_the_topics_and_the_checks_pass(
    kafka_cluster, tmp_path, unique_name
):
    catalog, defs = defs_for(
        prefixed_catalog(tmp_path, unique_name), kafka_cluster.bootstrap_servers
    )
    job = defs.resolve_job_def("provision_topics")
    assert job.executor_def is dg.in_process_executor  # never two topics at once
    assert job.tags.get("ecap_ops/provisioning") == "topics"
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success, run_failures(result)

    mats = {
        e.asset_key.path[1]: e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert set(mats) == set(catalog.names())
    tx = mats[f"{unique_name}.transactions"]
    assert tx["partitions"].value == 6 and tx["replication_factor"].value == 1
    assert tx["overrides"].value["compression.type"] == "lz4"
    assert tx["under_replicated_partitions"].value == 0
    assert "| partition | leader |" in tx["partition_table"].value

    evaluations = result.get_asset_check_evaluations()
    assert {(e.asset_key.path[1], e.check_name) for e in evaluations} == {
        (n, c) for n in catalog.names() for c in ("matches_catalog", "availability", "replication")
    }
    assert all(e.passed for e in evaluations)

    listed = kafka_tool(kafka_cluster, "kafka-topics", "--list").stdout.split()
    assert set(catalog.names()) <= set(listed)


def test_materializing_one_topic_asset_reconciles_only_that_topic(
    kafka_cluster, tmp_path, unique_name
):
    catalog, defs = defs_for(
        prefixed_catalog(tmp_path, unique_name), kafka_cluster.bootstrap_servers
    )
    asset = topics.build_topic_asset(catalog, catalog.get(f"{unique_name}.fraud-alerts"))
    result = dg.materialize(
        [asset],
        resources={"kafka": KafkaResource(bootstrap_servers=kafka_cluster.bootstrap_servers)},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success, run_failures(result)
    listed = [
        t
        for t in kafka_tool(kafka_cluster, "kafka-topics", "--list").stdout.split()
        if t.startswith(unique_name)
    ]
    assert listed == [f"{unique_name}.fraud-alerts"]


def test_a_refused_reconcile_fails_the_materialization_with_the_reason(
    kafka_cluster, tmp_path, unique_name
):
    path = prefixed_catalog(tmp_path, unique_name)
    catalog, defs = defs_for(path, kafka_cluster.bootstrap_servers)
    name = f"{unique_name}.analytics-results"
    assert (
        kafka_tool(
            kafka_cluster, "kafka-topics", "--create", "--topic", name, "--partitions", "9"
        ).returncode
        == 0
    )
    result = dg.materialize(
        [topics.build_topic_asset(catalog, catalog.get(name))],
        resources={"kafka": KafkaResource(bootstrap_servers=kafka_cluster.bootstrap_servers)},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "asks for 4 but" in str(failure.event_specific_data.error)


def test_code_location_loads_and_validates_without_a_broker(tmp_path):
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "PATH": "/usr/bin:/bin",
        "DAGSTER_HOME": str(tmp_path),
        "HOME": str(tmp_path),
    }
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-m",
            "ecap_ops",
            "-a",
            "defs",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Validation successful" in out.stdout + out.stderr


def test_importing_the_package_imports_no_dagster_and_no_kafka_client():
    code = "import sys, ecap_ops, ecap_ops.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'kafka', 'pandas')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_definitions_carry_the_names_users_rely_on():
    from ecap_ops import defs

    names = {j.name for j in defs.resolve_all_job_defs()}
    assert "provision_topics" in names
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {
        f"kafka/{n}"
        for n in (
            "transactions",
            "user-events",
            "product-updates",
            "fraud-alerts",
            "analytics-results",
        )
    } <= keys
    assert {"kafka", "alerts"} <= set(defs.resources)
    dg.Definitions.validate_loadable(defs)
