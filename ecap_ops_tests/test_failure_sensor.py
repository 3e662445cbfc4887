"""run_failure_alert_sensor: a failed ecap-ops run reaches the alert sinks with its error and link."""

import json

import dagster as dg

from ecap_ops.orchestration.alerts import AlertsResource
from ecap_ops.orchestration.failures import build_failure_sensor
from ecap_ops_tests.test_lag_scenarios import Receiver


@dg.op
def broken_step() -> None:
    raise dg.Failure(description="topic transactions: broker said NOT_ENOUGH_REPLICAS")


@dg.job
def broken_job() -> None:
    broken_step()


def test_failed_run_is_sent_to_every_sink(tmp_path):
    receiver = Receiver()
    try:
        jsonl = tmp_path / "alerts.jsonl"
        alerts = AlertsResource(
            webhook_url=receiver.url,
            jsonl_path=str(jsonl),
            retries=1,
            dagster_url="http://dagster.test",
        )
        sensor = build_failure_sensor()
        instance = dg.DagsterInstance.ephemeral()
        result = broken_job.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
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
        assert len(receiver.received) == 1
        text = receiver.received[0]["text"]
        assert "broken_job failed" in text and f"http://dagster.test/runs/{result.run_id}" in text
        line = json.loads(jsonl.read_text().splitlines()[0])
        assert line["source"] == "run_failure" and line["fields"]["run_id"] == result.run_id
        assert "secret-token" not in jsonl.read_text()
    finally:
        receiver.close()
