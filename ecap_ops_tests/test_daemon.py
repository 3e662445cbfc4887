"""The Dagster daemon for real: `dagster-daemon run` with the routine schedules and sensors
switched on the way the deployment switches them on (ECAP_SCHEDULES_DEFAULT=running,
ECAP_SENSORS_DEFAULT=running), the health schedule every minute and the lag sensor every
few seconds, against the session's real Kafka.

It must see a health-schedule tick launch a run that succeeds, and consumer-lag sensor
ticks record lag observations on a topic asset (with the lag a real consumer group left).
"""

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecap_ops_tests.e2e_helpers import (
    BIN,
    DagsterProcess,
    dagster_env,
    defined_names,
    isolated_catalog,
    prepare_home,
    wait_for,
)
from ecap_ops_tests.helpers import make_consumer

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

HEALTH_SCHEDULE = "kafka_health_check_schedule"
LAG_SENSOR = "consumer_lag_sensor"
HEALTH_INCIDENT_SENSOR = "kafka_health_incident_sensor"
EVERY_MINUTE = "* * * * *"
SENSOR_INTERVAL_S = "5"


@pytest.fixture(scope="module")
def daemon_setup(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    home = prepare_home(tmp_path_factory.mktemp("dagster-daemon"))
    catalog, env_name, prefix = isolated_catalog(home)
    env = dagster_env(
        home,
        kafka_bootstrap,
        {
            "ECAP_CATALOG": str(catalog),
            "ECAP_ENV": env_name,
            "ECAP_SCHEDULES_DEFAULT": "running",
            "ECAP_SENSORS_DEFAULT": "running",
            "ECAP_LAG_SENSOR_INTERVAL": SENSOR_INTERVAL_S,
            "ECAP_INCIDENT_SENSOR_INTERVAL": SENSOR_INTERVAL_S,
            "ECAP_HEALTH_CRON": EVERY_MINUTE,
        },
    )
    names = defined_names(env)
    assert names["default_status"][HEALTH_SCHEDULE] == "RUNNING"
    assert names["default_status"][LAG_SENSOR] == "RUNNING"
    assert names["intervals"][LAG_SENSOR] == int(SENSOR_INTERVAL_S)
    assert names["crons"][HEALTH_SCHEDULE] == EVERY_MINUTE
    target = ["-m", "ecap_ops", "-a", "defs"]

    # The catalog's topics exist (as after ecap-provision), and a consumer group on one of
    # them has read 4 of 10 records: 6 messages of lag for the sensor to observe.
    created = subprocess.run(
        [str(BIN / "ecap-ops"), "create-topics"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    topic = prefix + "transactions"
    group = f"e2e-lag-{uuid.uuid4().hex[:8]}"
    _leave_lag(kafka_bootstrap, topic, group, produced=10, consumed=4)

    proc = DagsterProcess(
        [str(BIN / "dagster-daemon"), "run", *target], env, home / "dagster-daemon.log"
    )
    proc.start()
    try:
        yield {"home": home, "env": env, "topic": topic, "group": group, "proc": proc}
    finally:
        proc.stop()


def _leave_lag(bootstrap: str, topic: str, group: str, produced: int, consumed: int) -> None:
    from kafka import KafkaProducer, TopicPartition

    producer = KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    for i in range(produced):
        producer.send(topic, key=b"user-1", value=f"order-{i}".encode(), partition=0).get(
            timeout=15
        )
    producer.close(timeout=10)
    consumer = make_consumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        request_timeout_ms=10000,
    )
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek(tp, consumed)
    consumer.commit({tp: _offset(consumed)})
    consumer.close()


def _offset(value: int):
    from kafka.structs import OffsetAndMetadata

    try:
        return OffsetAndMetadata(value, "", -1)
    except TypeError:  # older signature without leader epoch
        return OffsetAndMetadata(value, "")


def _instance(home: Path):
    from dagster import DagsterInstance

    return DagsterInstance.from_config(str(home))


def _ticks(instance, name: str) -> list:
    from dagster._core.scheduler.instigation import InstigatorType

    out = []
    for kind in (InstigatorType.SCHEDULE, InstigatorType.SENSOR):
        for state in instance.all_instigator_state(instigator_type=kind):
            if state.instigator_name == name:
                out += instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=50)
    return out


# First, while the clock runs towards the health schedule's next minute boundary.
def test_lag_sensor_ticks_record_lag_observations(daemon_setup: dict):
    from dagster import AssetKey
    from dagster._core.scheduler.instigation import TickStatus

    proc = daemon_setup["proc"]
    instance = _instance(daemon_setup["home"])
    key = AssetKey(["kafka", daemon_setup["topic"]])

    def lag_observation():
        proc.ensure_alive()
        records = instance.fetch_observations(key, limit=5).records
        for record in records:
            meta = record.asset_observation.metadata
            if "consumer_lag_msgs_total" in meta:
                return meta
        return None

    meta = wait_for(
        f"a consumer-lag observation on {key.to_user_string()}",
        lag_observation,
        150,
        interval=3,
        on_timeout=proc.log_tail,
    )
    assert meta["consumer_lag_msgs_total"].value == 6
    assert meta["consumer_groups"].value == 1
    assert daemon_setup["group"] in meta["consumer_lag"].value
    ticks = _ticks(instance, LAG_SENSOR)
    assert len(ticks) >= 1
    assert not [t for t in ticks if t.status == TickStatus.FAILURE], [
        t.error for t in ticks if t.status == TickStatus.FAILURE
    ]
    # The sensor keeps a cursor (its lag window) between ticks.
    assert any(t.cursor for t in ticks)


def test_health_schedule_tick_launches_a_successful_run(daemon_setup: dict):
    from dagster import DagsterRunStatus, RunsFilter

    proc = daemon_setup["proc"]
    instance = _instance(daemon_setup["home"])

    def finished_scheduled_run():
        proc.ensure_alive()
        runs = instance.get_runs(
            filters=RunsFilter(tags={"dagster/schedule_name": HEALTH_SCHEDULE})
        )
        done = [
            r
            for r in runs
            if r.status
            in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
        ]
        return done[0] if done else None

    # A minute for the next cron boundary, then the queue, the run worker and the check.
    run = wait_for(
        "a run launched by a kafka_health_check_schedule tick",
        finished_scheduled_run,
        200,
        interval=3,
        on_timeout=proc.log_tail,
    )
    assert run.job_name == "kafka_health_check"
    assert run.status == DagsterRunStatus.SUCCESS, (
        f"run {run.run_id} ended {run.status}\n{proc.log_tail()}"
    )
    ticks = _ticks(instance, HEALTH_SCHEDULE)
    assert any(run.run_id in t.run_ids for t in ticks), (
        "no schedule tick records the run it launched"
    )
    # The run reported the cluster's health as metadata.
    from dagster import DagsterEventType

    outputs = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_OUTPUT)
    metadata = [e.dagster_event.step_output_data.metadata for e in outputs]
    # The scene: the isolated catalog's environment is held to production's rules, on one
    # broker with its topics created as declared: a warning for the single broker.
    assert metadata, "the health run reported nothing"
    assert metadata[0]["status"].value == "WARN", metadata[0]["report"].value
    assert "production needs at least 3" in metadata[0]["report"].value

    # The health incident sensor ticks after the run (it notifies the run's incident
    # events, if any, through notify_kafka_health) and none of its ticks failed.
    from dagster._core.scheduler.instigation import TickStatus

    ended = instance.get_run_record_by_id(run.run_id).end_time or 0.0

    def incident_ticks():
        proc.ensure_alive()
        ticks = _ticks(instance, HEALTH_INCIDENT_SENSOR)
        return ticks if any(t.timestamp > ended for t in ticks) else None

    ticks = wait_for(
        f"a {HEALTH_INCIDENT_SENSOR} tick after the health run",
        incident_ticks,
        60,
        interval=2,
        on_timeout=proc.log_tail,
    )
    assert not [t for t in ticks if t.status == TickStatus.FAILURE], [
        t.error for t in ticks if t.status == TickStatus.FAILURE
    ]
