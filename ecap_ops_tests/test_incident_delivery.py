"""The one notification path, through Dagster's own sensor daemon and runs (in this
process, `daemon_harness`): every incident event is one run of a notify job, requested with
the run key `<incident id>:<event>`.

- A health incident opened and resolved reaches a loopback webhook, once per event; a
  retried sensor evaluation (its cursor not saved) and a re-recorded event notify nothing
  more: Dagster's run key refuses the second run, not this test's bookkeeping.
- A consumer-lag incident opened by the daemon's ticks of consumer_lag_sensor reaches the
  webhook once; a retried tick requests the same run key and Dagster refuses it.
- A failed DR drill produces exactly one alert: its own incident's, not a second one from
  run_failure_alert_sensor, which still alerts on other failed runs.
"""

import json
import textwrap
import time

import dagster as dg
import pytest

from ecap_ops.core.health import CRIT, OK, Finding, HealthReport
from ecap_ops.core.health_incidents import decide
from ecap_ops_tests.daemon_harness import sensor_daemon
from ecap_ops_tests.test_lag_scenarios import Receiver

HEALTH_SENSOR = "kafka_health_incident_sensor"


def _report(status: str) -> HealthReport:
    f = (
        Finding("partitions", CRIT, "offline", "2 partition(s) without a leader: t: 0, 1")
        if status == CRIT
        else Finding("brokers", OK, "cluster", "3 broker(s) registered: 1, 2, 3")
    )
    offline = {"t": [0, 1]} if status == CRIT else {}
    return HealthReport(status, "dev", "cid-1", "b:1", 0, (f,), {}, {}, {}, offline)


def _location(tmp_path, body: str):
    path = tmp_path / "location.py"
    path.write_text(textwrap.dedent(body))
    return path


def _record(instance, report, decision, now):
    """What a run of kafka_health_check records: the health asset's materialization with
    this run's incident events and state (the job's own function)."""
    from ecap_ops.orchestration.health import health_materialization

    event = health_materialization(report, decision.state, decision.events, now)

    @dg.op
    def write_health(context):
        context.log_event(event)

    @dg.job
    def record_health():
        write_health()

    assert record_health.execute_in_process(instance=instance).success


def _env(receiver, tmp_path, **extra) -> dict[str, str]:
    return {
        "ECAP_SENSORS_DEFAULT": "running",
        "ECAP_INCIDENT_SENSOR_INTERVAL": "1",
        "ECAP_ALERT_WEBHOOK_URL": receiver.url,
        "ECAP_ALERT_JSONL": str(tmp_path / "alerts.jsonl"),
        "ECAP_DAGSTER_URL": "http://dagster.test",
        **extra,
    }


HEALTH_LOCATION = """
    import dagster as dg
    from ecap_ops.catalog import load_catalog
    from ecap_ops.orchestration import health
    from ecap_ops.orchestration.alerts import alerts_resource_from_env
    from ecap_ops.orchestration.resources import kafka_resource_from_env

    defs = dg.Definitions.merge(
        health.build_defs(load_catalog()),
        dg.Definitions(resources={"alerts": alerts_resource_from_env(), "kafka": kafka_resource_from_env()}),
    )
"""


def test_a_health_incident_reaches_the_webhook_once_per_event(tmp_path):
    receiver = Receiver()
    try:
        location = _location(tmp_path, HEALTH_LOCATION)
        with sensor_daemon(location, _env(receiver, tmp_path)) as daemon:
            daemon.iterate(wait_s=0)  # the first tick: nothing recorded yet
            assert receiver.received == [] and daemon.runs("notify_kafka_health") == []
            before = daemon.cursor(HEALTH_SENSOR)

            now = time.time()
            opened = decide(None, _report(CRIT), now)
            (event,) = opened.events
            _record(daemon.instance, _report(CRIT), opened, now)
            daemon.iterate()
            assert len(receiver.received) == 1
            text = receiver.received[0]["text"]
            assert "[CRITICAL]" in text and "opened" in text and "without a leader" in text
            (run,) = daemon.runs("notify_kafka_health")
            assert run.status == dg.DagsterRunStatus.SUCCESS
            assert run.tags["dagster/run_key"] == f"{event.incident_id}:open"
            assert f"http://dagster.test/runs/{run.run_id}" in text

            # A retried evaluation: the tick's cursor was not saved, the sensor reads the
            # same event again and requests the same run key; Dagster creates no run.
            daemon.set_cursor(HEALTH_SENSOR, before)
            daemon.iterate()
            assert len(receiver.received) == 1
            assert len(daemon.runs("notify_kafka_health")) == 1

            # Healthy twice: resolved, once.
            second = decide(opened.state, _report(OK), now + 300)
            _record(daemon.instance, _report(OK), second, now + 300)
            resolved = decide(second.state, _report(OK), now + 600)
            assert [e.kind for e in resolved.events] == ["resolve"]
            _record(daemon.instance, _report(OK), resolved, now + 600)
            daemon.iterate()
            assert len(receiver.received) == 2
            text = receiver.received[1]["text"]
            assert "[RESOLVED]" in text and "resolved" in text and "10m" in text

            # The same resolve recorded again (a re-executed health run): still nothing new.
            _record(daemon.instance, _report(OK), resolved, now + 600)
            daemon.iterate()
            assert len(receiver.received) == 2
            keys = [r.tags["dagster/run_key"] for r in daemon.runs("notify_kafka_health")]
            assert keys == [f"{event.incident_id}:open", f"{event.incident_id}:resolve"]
            lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
            assert [json.loads(x)["fields"]["event"] for x in lines] == ["open", "resolve"]
            assert "secret-token" not in "".join(lines)
    finally:
        receiver.close()


DRILL_LOCATION = """
    import os

    import dagster as dg
    from ecap_ops.catalog import load_catalog
    from ecap_ops.orchestration import dr, failures
    from ecap_ops.orchestration.alerts import alerts_resource_from_env
    from ecap_ops.orchestration.resources import kafka_resource_from_env


    @dg.op
    def broken_step():
        raise dg.Failure(description="topic transactions: broker said NOT_ENOUGH_REPLICAS")


    @dg.job
    def broken_job():
        broken_step()


    @dg.sensor(
        name="start_runs_once",
        jobs=[dr.dr_drill, broken_job],
        minimum_interval_seconds=1,
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def start_runs_once(context):
        snapshot = os.environ["TEST_DRILL_SNAPSHOT"]
        return [
            dg.RunRequest(
                run_key="drill-1",
                job_name="dr_drill",
                run_config={"ops": {"run_dr_drill": {"config": {"snapshot_path": snapshot}}}},
            ),
            dg.RunRequest(run_key="broken-1", job_name="broken_job"),
        ]


    defs = dg.Definitions.merge(
        dr.build_defs(load_catalog()),
        failures.build_defs(),
        dg.Definitions(
            jobs=[broken_job],
            sensors=[start_runs_once],
            resources={"alerts": alerts_resource_from_env(), "kafka": kafka_resource_from_env()},
        ),
    )
"""


@pytest.mark.kafka
def test_a_failed_dr_drill_produces_exactly_one_alert(kafka_bootstrap, tmp_path):
    receiver = Receiver()
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text('{"not": "a snapshot"}')
    try:
        location = _location(tmp_path, DRILL_LOCATION)
        env = _env(
            receiver,
            tmp_path,
            KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
            TEST_DRILL_SNAPSHOT=str(snapshot),
        )
        with sensor_daemon(location, env) as daemon:
            daemon.iterate(wait_s=0)  # the sensors start (the failure sensor from now on)
            daemon.start("start_runs_once")
            for _ in range(4):  # launch the runs; then the sensors see what they left
                daemon.iterate()
            (drill,) = daemon.runs("dr_drill")
            assert drill.status == dg.DagsterRunStatus.FAILURE
            (broken,) = daemon.runs("broken_job")
            assert broken.status == dg.DagsterRunStatus.FAILURE

            titles = sorted(r["text"].splitlines()[0] for r in receiver.received)
            drill_alerts = [t for t in titles if "DR drill" in t or "dr_drill" in t]
            assert len(drill_alerts) == 1, titles
            assert "DR drill failed" in drill_alerts[0] and "[CRITICAL]" in drill_alerts[0]
            # The failure sensor did run and alerted on the other failed run.
            assert [t for t in titles if "broken_job failed" in t], titles
            assert len(titles) == 2, titles
            (notify,) = daemon.runs("notify_dr_drill")
            assert notify.status == dg.DagsterRunStatus.SUCCESS
            assert notify.tags["dagster/run_key"].endswith(":open")
    finally:
        receiver.close()


LAG_LOCATION = """
    import dataclasses
    import os

    import dagster as dg
    from ecap_ops.catalog import load_catalog
    from ecap_ops.catalog.model import LagThresholds
    from ecap_ops.core.lag import EvalConfig
    from ecap_ops.orchestration.alerts import alerts_resource_from_env
    from ecap_ops.orchestration.lag import build_lag_sensor, notify_consumer_lag
    from ecap_ops.orchestration.resources import kafka_resource_from_env

    # More than 10 records behind is over the warning level; no reminder within the test.
    catalog = dataclasses.replace(
        load_catalog(),
        lag_defaults=LagThresholds(
            warn_seconds=600, crit_seconds=1200, warn_msgs=10, stall_after_seconds=600
        ),
    )
    sensor = build_lag_sensor(
        catalog,
        config=EvalConfig(
            for_ticks=2,
            debounce_ticks=2,
            clean_ticks=2,
            remind_critical_seconds=3600,
            remind_warning_seconds=3600,
        ),
        include=(os.environ["TEST_LAG_GROUP"],),
        budget_s=10,
        interval_s=1,
    )
    defs = dg.Definitions(
        jobs=[notify_consumer_lag],
        sensors=[sensor],
        resources={"alerts": alerts_resource_from_env(), "kafka": kafka_resource_from_env()},
    )
"""


@pytest.mark.kafka
def test_a_lag_incident_reaches_the_webhook_once_through_the_daemon(
    kafka_bootstrap, unique_name, tmp_path
):
    """A group with no members 55 records behind: the daemon's ticks of consumer_lag_sensor
    open one incident, its run posts it to the webhook, and a retried tick (its cursor not
    saved) requests the same run key, which Dagster refuses."""
    from kafka import KafkaProducer

    from ecap_ops_tests.helpers import consume_and_commit
    from ecap_ops_tests.test_lag_scenarios import _make_topic

    group = unique_name + "-g"
    _make_topic(kafka_bootstrap, unique_name)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for i in range(60):
        producer.send(unique_name, f"order-{i}".encode())
    producer.flush(timeout=30)
    producer.close()
    assert consume_and_commit(kafka_bootstrap, unique_name, group, 5) == 5

    receiver = Receiver()
    try:
        location = _location(tmp_path, LAG_LOCATION)
        env = _env(
            receiver, tmp_path, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, TEST_LAG_GROUP=group
        )
        with sensor_daemon(location, env) as daemon:
            daemon.iterate(wait_s=0)  # the first tick: a lag, not yet an incident
            assert receiver.received == []
            before = None
            for _ in range(20):  # the incident opens after its debounce ticks
                cursor = daemon.cursor("consumer_lag_sensor")
                daemon.iterate()
                if receiver.received:
                    before = cursor  # the cursor this opening tick started from
                    break
            assert len(receiver.received) == 1, receiver.texts()
            text = receiver.received[0]["text"]
            assert "consumer lag opened" in text and group in text and unique_name in text
            assert "55 msgs" in text
            (run,) = daemon.runs("notify_consumer_lag")
            assert run.status == dg.DagsterRunStatus.SUCCESS
            key = run.tags["dagster/run_key"]
            assert key.startswith("lag:") and key.endswith(":open")
            assert f"http://dagster.test/runs/{run.run_id}" in text

            # The same tick again, as if its cursor had not been saved: it opens the same
            # incident and requests the same run key; Dagster creates no second run.
            daemon.set_cursor("consumer_lag_sensor", before)
            daemon.iterate()
            assert len(receiver.received) == 1, receiver.texts()
            assert [r.tags["dagster/run_key"] for r in daemon.runs("notify_consumer_lag")] == [key]
    finally:
        receiver.close()
