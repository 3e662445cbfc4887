"""What the Dagster pages say, against the real broker: each topic's plan names only that
topic; a failed run's alert carries the failing step's own error and the run link; the
snapshot asset is one snapshot per materialization (no partitions) with its diff; the health
asset opens with the verdict and the findings, its runs are tagged with the verdict, and the
topic checks follow the health check's findings; figures are rounded for people."""

import json
import math

import dagster as dg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecap_ops.catalog import load_catalog
from ecap_ops.core.alerts import json_line, log_line, slack_payload
from ecap_ops.gateway import KafkaGateway
from ecap_ops.orchestration import dr, health, topics
from ecap_ops.orchestration.alerts import AlertsResource
from ecap_ops.orchestration.failures import build_failure_sensor, failure_alert
from ecap_ops.orchestration.resources import KafkaResource
from ecap_ops_tests.helpers import kafka_tool, run_failures
from ecap_ops_tests.test_provisioning import prefixed_catalog


def _defs(catalog, bootstrap, jsonl=None, with_health=False) -> dg.Definitions:
    parts = [topics.build_defs(catalog)]
    if with_health:
        parts.append(health.build_defs(catalog))
    resources = {
        "kafka": KafkaResource(bootstrap_servers=bootstrap),
        "alerts": AlertsResource(jsonl_path=str(jsonl) if jsonl else None),
    }
    return dg.Definitions.merge(*parts, dg.Definitions(resources=resources))


# -- 2: a topic's plan -------------------------------------------------------------------


@pytest.mark.kafka
def test_each_topic_plan_names_no_other_catalog_topic_as_unmanaged(
    kafka_cluster, tmp_path, unique_name
):
    catalog = load_catalog(prefixed_catalog(tmp_path, unique_name))
    defs = _defs(catalog, kafka_cluster.bootstrap_servers)
    result = defs.resolve_job_def("provision_topics").execute_in_process(
        instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success, run_failures(result)
    plans = {
        e.asset_key.path[1]: e.materialization.metadata["plan"].value
        for e in result.get_asset_materialization_events()
    }
    assert set(plans) == set(catalog.names())
    for name, plan in plans.items():
        assert "Unmanaged" not in plan, plan
        others = [n for n in catalog.names() if n != name and n in plan]
        assert not others, f"{name}'s plan names {others}:\n{plan}"
        assert name in plan


# -- 5: failure alerts carry the cause -----------------------------------------------------


def _failure_sensor_alert(instance, result, tmp_path) -> dict:
    jsonl = tmp_path / "alerts.jsonl"
    alerts = AlertsResource(jsonl_path=str(jsonl), dagster_url="http://dagster.test")
    sensor = build_failure_sensor()
    run = instance.get_run_by_id(result.run_id)
    failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    ctx = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=run,
        resources={"alerts": alerts},
    ).for_run_failure()
    sensor(ctx)
    lines = jsonl.read_text().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


@pytest.mark.kafka
def test_a_failed_dr_restore_alerts_with_the_steps_own_error_and_the_run_link(
    kafka_bootstrap, tmp_path
):
    missing = tmp_path / "no-such-snapshot.json"
    instance = dg.DagsterInstance.ephemeral()
    result = dr.dr_restore.execute_in_process(
        run_config={"ops": {"restore_from_snapshot": {"config": {"snapshot_path": str(missing)}}}},
        resources={"kafka": KafkaResource(bootstrap_servers=kafka_bootstrap)},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    alert = _failure_sensor_alert(instance, result, tmp_path)
    # The cause, in the title people see first: the step and its own message.
    assert "restore_from_snapshot" in alert["title"]
    assert "no such snapshot file" in alert["title"], alert["title"]
    assert str(missing) in alert["text"]
    assert alert["fields"]["failed_steps"][0]["step"] == "restore_from_snapshot"
    assert "no such snapshot file" in alert["fields"]["failed_steps"][0]["error"]
    assert alert["run_url"] == f"http://dagster.test/runs/{result.run_id}"
    assert "Traceback" not in json.dumps(alert)


@dg.op
def _crashing_step() -> None:
    raise ValueError("partition 3 of transactions has no leader")


@dg.job
def _crashing_job() -> None:
    _crashing_step()


def test_an_unexpected_exception_alerts_with_its_message_not_dagsters_wrapper(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    result = _crashing_job.execute_in_process(instance=instance, raise_on_error=False)
    alert = _failure_sensor_alert(instance, result, tmp_path)
    assert "partition 3 of transactions has no leader" in alert["title"], alert["title"]
    assert "Error occurred while executing" not in alert["title"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    step=st.text(min_size=1, max_size=80),
    message=st.text(max_size=5000),
    run_error=st.one_of(st.none(), st.text(max_size=300)),
)
def test_failure_alerts_stay_bounded_and_name_the_step_for_any_message(step, message, run_error):
    alert = failure_alert(
        "dr_restore", "run-1", run_error, "http://d/runs/run-1", [(step, message)]
    )
    assert "\n" not in alert.title and len(alert.title) <= 260
    assert alert.title.startswith("Dagster job dr_restore failed: step ")
    lines = [ln for ln in message.splitlines() if ln.strip()]
    first = " ".join(lines[0].split()) if lines else ""
    assert first[:20] in alert.title
    assert len(alert.fields["error"]) <= 1500 + 200
    # Every sink renders it.
    json.loads(json_line(alert))
    assert alert.run_url in log_line(alert) and alert.run_url in slack_payload(alert)["text"]


# -- 7: the snapshot asset -----------------------------------------------------------------


@pytest.mark.kafka
def test_the_snapshot_asset_is_one_snapshot_per_materialization_with_its_diff(
    kafka_settings, tmp_path, monkeypatch, unique_name
):
    monkeypatch.setenv("ECAP_SNAPSHOT_DIR", str(tmp_path / "snaps"))
    catalog = load_catalog(env="dev")
    built = dr.build_defs(catalog)
    asset = next(iter(built.assets))
    assert asset.partitions_def is None  # nothing to choose among when materializing by hand
    assert next(iter(asset.specs)).freshness_policy is not None
    schedule = next(s for s in built.schedules if s.name == "dr_snapshot_schedule")
    assert schedule.cron_schedule == "0 * * * *" and schedule.job_name == "dr_snapshot"
    requests = schedule.evaluate_tick(dg.build_schedule_context()).run_requests
    assert len(requests) == 1 and requests[0].partition_key is None

    kafka = KafkaResource(bootstrap_servers=kafka_settings.bootstrap_servers)
    with dg.DagsterInstance.ephemeral() as instance:
        assert dg.materialize([asset], resources={"kafka": kafka}, instance=instance).success
        with KafkaGateway(kafka_settings) as gw:
            gw.require(
                gw.create_topics(
                    {unique_name: {"num_partitions": 1, "replication_factor": 1, "configs": {}}}
                ),
                "creating",
            )
        assert dg.materialize([asset], resources={"kafka": kafka}, instance=instance).success
        records = instance.fetch_materializations(asset.key, limit=10).records
        assert len(records) == 2  # the history: one materialization per snapshot
        latest = records[0].asset_materialization.metadata
        assert list(latest)[0] == "summary"
        assert "topic(s) added" in latest["summary"].value
        assert unique_name in latest["diff_vs_previous"].value
        assert latest["topics_added"].value == 1
        assert len(latest["checksum_sha256"].value) == 64 and latest["size_bytes"].value > 0
        first = records[1].asset_materialization.metadata
        assert "first snapshot" in first["summary"].value


# -- 8 and 9: the health page, its verdict and the topic checks ----------------------------


def _health_materializations(instance) -> list:
    return instance.fetch_materializations(health.HEALTH_STATE_KEY, limit=10).records


@pytest.mark.kafka
def test_the_health_page_opens_with_the_verdict_and_findings_and_runs_carry_it(
    kafka_bootstrap, tmp_path, unique_name
):
    # A catalog whose topics do not exist: a WARN in dev.
    catalog = load_catalog(prefixed_catalog(tmp_path, unique_name))
    job = _defs(catalog, kafka_bootstrap, tmp_path / "a.jsonl", True).resolve_job_def(
        "kafka_health_check"
    )
    (tmp_path / "home").mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "home")) as instance:
        first = job.execute_in_process(instance=instance)
        second = job.execute_in_process(instance=instance)
        assert first.success and second.success
        for r in (first, second):
            assert instance.get_run_by_id(r.run_id).tags.get("ecap/health") == "WARN"
        records = _health_materializations(instance)
        assert len(records) == 2  # materialized every run: never "Never materialized"
        event = records[0].asset_materialization
        assert event.tags.get("ecap/health") == "WARN"
        meta = event.metadata
        keys = list(meta)
        assert keys[:3] == ["summary", "status", "findings"], keys
        assert keys[-1] == "incident_state"  # the machine state, last
        assert meta["summary"].value.startswith("### WARN: ")
        assert "Open incident" in meta["summary"].value
        table = meta["findings"].value
        assert [c.name for c in table.schema.columns] == [
            "severity",
            "check",
            "subject",
            "since",
            "detail",
        ]
        rows = [r.data for r in table.records]
        assert rows[0]["severity"] in ("WARN", "CRIT")  # worst first
        missing = next(r for r in rows if r["check"] == "catalog" and r["severity"] == "WARN")
        assert f"{unique_name}.transactions" in missing["detail"]
        # Since when: the first run's time, kept by the second run.
        first_meta = records[1].asset_materialization.metadata
        first_rows = [r.data for r in first_meta["findings"].value.records]
        first_missing = next(r for r in first_rows if r["check"] == "catalog")
        assert first_missing["since"] != "-" and "Z (" in missing["since"]
        assert missing["since"].split(" (")[0] == first_missing["since"].split(" (")[0]
        assert "WARN" in meta["open_incident"].value and "open" in meta["open_incident"].value
        # Numbers people read and the UI plots, rounded.
        latency = meta["canary_latency_ms"].value
        assert latency > 0 and latency == round(latency, 1)
        assert meta["warn_findings"].value >= 1 and isinstance(meta["problems"].value, int)
        # The op's output metadata (the run page) leads with the same verdict.
        out = next(e for e in second.all_events if e.event_type_value == "STEP_OUTPUT")
        assert list(out.event_specific_data.metadata)[0] == "summary"


@pytest.mark.kafka
def test_topic_checks_follow_the_health_checks_drift_finding(kafka_cluster, tmp_path, unique_name):
    catalog = load_catalog(prefixed_catalog(tmp_path, unique_name))
    bootstrap = kafka_cluster.bootstrap_servers
    defs = _defs(catalog, bootstrap, tmp_path / "a.jsonl", True)
    instance = dg.DagsterInstance.ephemeral()
    provisioned = defs.resolve_job_def("provision_topics").execute_in_process(instance=instance)
    assert provisioned.success, run_failures(provisioned)
    assert all(e.passed for e in provisioned.get_asset_check_evaluations())
    name = f"{unique_name}.user-events"
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
    result = defs.resolve_job_def("kafka_health_check").execute_in_process(
        instance=instance,
        run_config={"ops": {"kafka_health_report": {"config": {"canary": False}}}},
    )
    assert result.success, run_failures(result)
    report = result.output_for_node("kafka_health_report")
    drift = [f for f in report["findings"] if f["check"] == "catalog" and f["severity"] != "OK"]
    assert drift and name in drift[0]["message"]
    evals = {(e.asset_key.path[1], e.check_name): e for e in result.get_asset_check_evaluations()}
    assert set(evals) == {(n, c) for n in catalog.names() for c in topics.CHECK_NAMES}
    check = evals[(name, "matches_catalog")]
    assert check.passed is False and "retention.ms" in check.description
    assert check.severity == dg.AssetCheckSeverity.WARN  # the health finding's WARN
    others = [e for (n, c), e in evals.items() if (n, c) != (name, "matches_catalog")]
    assert all(e.passed for e in others), [e.description for e in others if not e.passed]
    # The latest evaluation the UI shows for user-events' matches_catalog is now red.
    key = dg.AssetCheckKey(topics.topic_key(catalog.get(name)), "matches_catalog")
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    assert latest.run_id == result.run_id


# -- 10: figures rounded for people ----------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(seconds=st.floats(min_value=0, max_value=1e7, allow_nan=False))
def test_lag_seconds_are_rounded_for_people(seconds):
    from ecap_ops.core.lag import GroupTopicStatus
    from ecap_ops.orchestration.lag import _topic_observations

    catalog = load_catalog(env="dev")
    status = GroupTopicStatus(
        group="g",
        topic="transactions",
        status="OK",
        raw_status="OK",
        severity="ok",
        lag_msgs=3,
        lag_seconds=seconds,
        lag_seconds_kind="measured",
        lost=0,
        state="Stable",
        members=1,
        partitions=(),
    )
    (obs,) = _topic_observations(catalog, (status,))
    shown = obs.metadata["consumer_lag_seconds_max"].value
    assert shown == round(seconds, 1) and math.isclose(shown, seconds, abs_tol=0.05 + 1e-9)
    assert len(repr(shown).split(".")[-1]) <= 2 or "e" in repr(shown)
