"""The alert sinks as the lag notifications use them: a real webhook receiver, retries, the
URL kept secret, JSON lines; and the notify_consumer_lag job rendering an event."""

import json

import dagster as dg

from ecap_ops.alerts import AlertSinks
from ecap_ops.core.alerts import Alert
from ecap_ops.core.lag import IncidentEvent
from ecap_ops.orchestration.alerts import AlertsResource
from ecap_ops.orchestration.lag import event_run_config, notify_consumer_lag
from ecap_ops_tests.helpers import run_failures
from ecap_ops_tests.test_lag_scenarios import Receiver


def test_webhook_failure_is_bounded_and_hides_the_url(tmp_path):
    from ecap_ops.localkafka.cluster import free_port

    url = f"http://127.0.0.1:{free_port()}/hook/secret-token"
    sinks = AlertSinks(
        webhook_url=url,
        jsonl_path=str(tmp_path / "a.jsonl"),
        retries=2,
        backoff_s=0.01,
        timeout_s=1,
    )
    results = sinks.send(Alert("consumer_lag", "critical", "group g on t is STOPPED"))
    assert results["jsonl"] == "ok" and results["webhook"].startswith(
        "webhook (URL hidden) failed after 2 attempt(s)"
    )
    assert "secret-token" not in results["webhook"]


def test_notify_job_delivers_group_topic_status_lag_and_link(tmp_path):
    receiver = Receiver()
    try:
        event = IncidentEvent(
            "open",
            "lag:c:1-1",
            "c",
            "orders",
            "transactions",
            "STOPPED",
            "critical",
            1000.0,
            990.0,
            1234,
            185.0,
            (
                {
                    "topic": "transactions",
                    "partition": 3,
                    "status": "STOPPED",
                    "lag_msgs": 1000,
                    "lag_seconds": 185.0,
                    "committed": 5,
                    "end": 1005,
                },
            ),
        )
        alerts = AlertsResource(
            webhook_url=receiver.url, jsonl_path=str(tmp_path / "a.jsonl"), dagster_url="http://ui"
        )
        result = notify_consumer_lag.execute_in_process(
            run_config=event_run_config(event), resources={"alerts": alerts}
        )
        assert result.success, run_failures(result)
        text = receiver.received[0]["text"]
        for piece in (
            "orders",
            "transactions",
            "STOPPED",
            "1,234 msgs / 3m05s",
            "transactions/3",
            f"http://ui/runs/{result.run_id}",
        ):
            assert piece in text, piece
        assert json.loads((tmp_path / "a.jsonl").read_text())["fields"]["event"] == "open"
    finally:
        receiver.close()


def test_notify_job_fails_when_the_webhook_refuses():
    from ecap_ops.localkafka.cluster import free_port

    event = IncidentEvent(
        "resolve", "lag:c:1-1", "c", "g", "t", "OK", "resolved", 1000.0, 900.0, 0, 0.0
    )
    alerts = AlertsResource(
        webhook_url=f"http://127.0.0.1:{free_port()}/x", retries=1, timeout_seconds=1
    )
    result = notify_consumer_lag.execute_in_process(
        run_config=event_run_config(event), resources={"alerts": alerts}, raise_on_error=False
    )
    assert not result.success
    assert dg.DagsterEventType.STEP_FAILURE in [e.event_type for e in result.all_events]
