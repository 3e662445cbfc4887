"""The scheduled health job notifies on change, against the real broker and a real
(SQLite, temporary) Dagster instance that keeps the incident between runs: healthy runs
send nothing, a catalog topic deleted makes the result CRIT and pages once over two runs,
the topic restored resolves the incident once, with its duration. The pages go the one
notification path: kafka_health_incident_sensor, run by Dagster's sensor daemon after each
health run, requests one notify_kafka_health run per event."""

import json
import time

import pytest

from ecap_ops.core.health import CRIT, WARN
from ecap_ops.gateway import KafkaGateway
from ecap_ops.services.provisioning import apply_topics
from ecap_ops_tests.daemon_harness import sensor_daemon
from ecap_ops_tests.helpers import health_job, prod_catalog_named, run_failures
from ecap_ops_tests.test_incident_delivery import HEALTH_LOCATION, _location

pytestmark = pytest.mark.kafka


def _alerts(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _until(what: str, pred, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s: {what}")
        time.sleep(0.5)


def test_health_job_pages_once_on_open_and_once_on_resolve(
    kafka_bootstrap, kafka_settings, unique_name, tmp_path
):
    from ecap_ops.orchestration import health

    # Two catalog topics under this test's own prefix, judged as production: a missing
    # catalog topic is CRIT there. A one-node cluster is WARN in production (one broker,
    # one voter, replication 1), so the job alerts on critical only.
    catalog = prod_catalog_named(unique_name, ["transactions", "fraud-alerts"])
    doomed = f"{unique_name}-fraud-alerts"
    with KafkaGateway(kafka_settings) as gw:
        assert apply_topics(gw, catalog).ok

    jsonl = tmp_path / "alerts.jsonl"
    job = health_job(catalog, kafka_bootstrap, jsonl)
    run_config = {
        "ops": {"kafka_health_report": {"config": {"canary": False, "alert_on": "critical"}}}
    }

    env = {
        "ECAP_SENSORS_DEFAULT": "running",
        "ECAP_INCIDENT_SENSOR_INTERVAL": "1",
        "ECAP_ALERT_JSONL": str(jsonl),
    }
    with sensor_daemon(_location(tmp_path, HEALTH_LOCATION), env) as daemon:
        instance = daemon.instance

        def run() -> dict:
            result = job.execute_in_process(run_config=run_config, instance=instance)
            assert result.success, run_failures(result)
            daemon.iterate()  # the incident sensor's tick after the scheduled run
            return result.output_for_node("kafka_health_report")

        def catalog_finding(out: dict) -> list[dict]:
            return [f for f in out["findings"] if f["check"] == "catalog"]

        # Healthy (for critical alerting): nothing, twice.
        for _ in range(2):
            out = run()
            assert out["status"] == WARN, out["findings"]
            assert catalog_finding(out)[0]["severity"] == "OK"
        assert _alerts(jsonl) == []

        # A catalog topic goes: CRIT. Two runs, one page.
        with KafkaGateway(kafka_settings) as gw:
            gw.require(gw.delete_topics([doomed]), "deleting")
            _until(f"{doomed} deleted", lambda: doomed not in gw.list_topic_names())
        opened_at = time.time()
        for _ in range(2):
            out = run()
            assert out["status"] == CRIT and doomed in catalog_finding(out)[0]["message"]
        alerts = _alerts(jsonl)
        assert [(a["fields"]["event"], a["severity"]) for a in alerts] == [("open", "critical")]
        opened = alerts[0]
        assert opened["source"] == "health_check" and opened["fields"]["status"] == CRIT
        assert doomed in opened["text"] and opened["key"].startswith("health:")

        # Restored: resolved once, after two healthy runs (the default hysteresis).
        def restored():
            with KafkaGateway(kafka_settings) as gw:
                return apply_topics(gw, catalog).ok

        _until(f"{doomed} created again", restored)
        time.sleep(1.0)  # a measurable duration
        for _ in range(3):
            out = run()
            assert out["status"] == WARN, out["findings"]
        alerts = _alerts(jsonl)
        assert [a["fields"]["event"] for a in alerts] == ["open", "resolve"]
        resolved = alerts[1]
        assert resolved["severity"] == "resolved" and resolved["key"] == opened["key"]
        took = resolved["fields"]["duration_seconds"]
        assert 1.0 <= took <= time.time() - opened_at + 1, took
        assert doomed in resolved["text"]  # what it was about

        # Every run recorded the incident state on the health asset, the latest one closed.
        records = instance.fetch_materializations(health.HEALTH_STATE_KEY, limit=20).records
        assert len(records) == 7
        latest = records[0].asset_materialization.metadata
        assert latest["open_incident"].value == "none" and latest["status"].value == WARN
        assert latest["incident_state"].value["incident"] is None
        # People first, the machine state last.
        assert list(latest)[0] == "summary" and list(latest)[-1] == "incident_state"
