"""The deployment's Dagster instance for real: the top-level dagster.yaml, as the Docker
Compose webserver and daemon load it, against a real PostgreSQL server and the real broker.

Runs, event logs and the health incident kept between runs (observations of
`ecap_ops/kafka_cluster_health`) must work in PostgreSQL as they do in the local SQLite
instance; the database password, read from the environment, must not show in what the
instance prints.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ecap_ops.core.health import CRIT
from ecap_ops.core.incidents import to_alert
from ecap_ops_tests.helpers import health_job, prod_catalog_named, run_failures
from ecap_ops_tests.postgres import local_postgres
from ecap_ops_tests.test_health import incident_events

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def postgres():
    with local_postgres() as pg:
        yield pg


@pytest.fixture
def deployment_home(postgres, tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_POSTGRES_HOST", postgres.host)
    monkeypatch.setenv("DAGSTER_POSTGRES_USER", postgres.user)
    monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", postgres.password)
    monkeypatch.setenv("DAGSTER_POSTGRES_DB", postgres.db)
    # dagster.yaml names port 5432, as in the compose network; the throwaway server listens
    # elsewhere on loopback.
    text = (home / "dagster.yaml").read_text()
    assert "      port: 5432\n" in text
    (home / "dagster.yaml").write_text(
        text.replace("      port: 5432\n", f"      port: {postgres.port}\n")
    )
    return home


def test_deployment_instance_stores_runs_and_the_health_incident_in_postgres(
    deployment_home, postgres, kafka_bootstrap, unique_name, tmp_path
):
    from ecap_ops.orchestration import health

    # A production catalog of one topic that does not exist: CRIT on every run.
    catalog = prod_catalog_named(unique_name, ["fraud-alerts"])
    jsonl = tmp_path / "alerts.jsonl"
    job = health_job(catalog, kafka_bootstrap, jsonl)
    run_config = {
        "ops": {"kafka_health_report": {"config": {"canary": False, "alert_on": "critical"}}}
    }

    def run_once() -> dict:
        # A new instance each time, as each scheduled run is a new process.
        with dg.DagsterInstance.from_config(str(deployment_home)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            result = job.execute_in_process(run_config=run_config, instance=instance)
            assert result.success, run_failures(result)
            return result

    events = []
    for _ in range(2):
        result = run_once()
        out = result.output_for_node("kafka_health_report")
        assert out["status"] == CRIT, out["findings"]
        events.append(incident_events(result))

    # Opened once: the second run read the incident back from PostgreSQL.
    alerts = [[to_alert(e) for e in run] for run in events]
    assert [[a.fields["event"] for a in run] for run in alerts] == [["open"], []], alerts
    with dg.DagsterInstance.from_config(str(deployment_home)) as instance:
        state, why = health.read_incident_state(instance)
        assert why is None and state["incident"]["id"] == alerts[0][0].key
        runs = instance.get_runs(dg.RunsFilter(job_name="kafka_health_check"))
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * 2
        # The deployment's run queue and launcher come from the same file.
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_launcher).__name__ == "DockerRunLauncher"


def test_dagster_cli_reads_the_deployment_instance_without_printing_the_password(
    deployment_home, postgres
):
    env = {**os.environ, "DAGSTER_HOME": str(deployment_home)}
    out = subprocess.run(
        [sys.executable, "-m", "dagster", "instance", "info"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "PostgresRunStorage" in out.stdout
    assert postgres.password not in out.stdout + out.stderr
