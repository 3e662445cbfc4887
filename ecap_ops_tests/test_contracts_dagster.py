"""The contract checks in Dagster on the real broker: the job `topic_contracts` records the
five checks on the topic asset, volume and skew for plots, keeps its end-offset history in
the instance, and a producer that stops opens a critical incident (prod, transactions-like
`severity: {freshness: critical}`) that its sensor notifies once; recovery resolves it."""

import json
import time

import dagster as dg
import pytest

from ecap_ops.catalog.loader import parse_catalog
from ecap_ops.gateway import KafkaGateway
from ecap_ops_tests.helpers import run_failures

pytestmark = pytest.mark.kafka


def catalog_for(name: str):
    text = f"""
version: 1
environments: {{dev: {{replication_factor: 1}}, prod: {{replication_factor: 1}}}}
topics:
  {name}:
    partitions: 2
    partition_key: user_id
    expected_volume: {{min_per_hour: 1, max_per_hour: 100000000}}
contracts:
  {name}:
    schema: {{type: object, required: [user_id, amount]}}
    freshness: 3s
    severity: {{freshness: critical}}
"""
    return parse_catalog(text, env="prod")


def produce(settings, name: str, n: int) -> None:
    with KafkaGateway(settings) as gw, gw.producer("traffic", acks="all") as p:
        for i in range(n):
            v = {"user_id": f"u{i}", "amount": i}
            p.send(name, key=f"u{i}".encode(), value=json.dumps(v).encode())
        p.flush(timeout=30)


def job_for(catalog, bootstrap: str, jsonl):
    from ecap_ops.orchestration import contracts, topics
    from ecap_ops.orchestration.alerts import AlertsResource
    from ecap_ops.orchestration.resources import KafkaResource

    defs = dg.Definitions.merge(
        topics.build_defs(catalog),
        contracts.build_defs(catalog),
        dg.Definitions(
            resources={
                "kafka": KafkaResource(bootstrap_servers=bootstrap),
                "alerts": AlertsResource(jsonl_path=str(jsonl)),
            }
        ),
    )
    return defs


def evaluations(result) -> dict[str, object]:
    return {
        e.event_specific_data.check_name: e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def test_job_records_checks_plots_and_a_freshness_incident(kafka_settings, unique_name, tmp_path):
    from ecap_ops.orchestration.alerts import incident_run_requests
    from ecap_ops.orchestration.contracts import STATE_KEY

    name = unique_name
    with KafkaGateway(kafka_settings) as gw:
        gw.require(gw.create_topics({name: {"num_partitions": 2, "replication_factor": 1}}), "c")
    catalog = catalog_for(name)
    defs = job_for(catalog, kafka_settings.bootstrap_servers, tmp_path / "alerts.jsonl")
    job = defs.get_job_def("topic_contracts")
    instance = dg.DagsterInstance.ephemeral()
    produce(kafka_settings, name, 20)

    first = job.execute_in_process(instance=instance)
    assert first.success, run_failures(first)
    evs = evaluations(first)
    assert set(evs) == {
        "schema_conformance",
        "key_discipline",
        "partition_balance",
        "volume_in_band",
        "freshness",
    }
    assert all(e.passed for e in evs.values()), {k: e.description for k, e in evs.items()}
    obs = [
        e
        for e in first.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
        and e.event_specific_data.asset_observation.asset_key == dg.AssetKey(["kafka", name])
    ]
    meta = obs[0].event_specific_data.asset_observation.metadata
    assert "partition_skew" in meta and "silent_seconds" in meta

    produce(kafka_settings, name, 5)
    second = job.execute_in_process(instance=instance)
    assert "records_per_hour" in [
        k
        for e in second.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
        for k in e.event_specific_data.asset_observation.metadata
    ]
    time.sleep(4)  # the producer stops for longer than freshness (3s)
    third = job.execute_in_process(instance=instance)
    fresh = evaluations(third)["freshness"]
    assert not fresh.passed and fresh.severity == dg.AssetCheckSeverity.ERROR
    assert "longer than the limit of 3s" in fresh.description

    # the sensor turns the recorded event into one notification run, once
    runs, cursor = incident_run_requests(instance, STATE_KEY, None)
    assert len(runs) == 1 and runs[0].run_key.endswith(":open")
    event = runs[0].run_config["ops"]["send_notification"]["config"]["event"]
    assert event["source"] == "topic_contracts" and event["level"] == "CRIT"
    again, _ = incident_run_requests(instance, STATE_KEY, cursor)
    assert again == []
    notify = defs.get_job_def("notify_topic_contracts")
    assert notify.execute_in_process(run_config=runs[0].run_config, instance=instance).success
    alert = json.loads((tmp_path / "alerts.jsonl").read_text().splitlines()[-1])
    assert alert["severity"] == "critical" and name in alert["title"]

    # the producer is back: two clean runs resolve the incident
    for _ in range(2):
        produce(kafka_settings, name, 5)
        job.execute_in_process(instance=instance)
    runs, _ = incident_run_requests(instance, STATE_KEY, cursor)
    assert [r.run_key.rsplit(":", 1)[1] for r in runs] == ["resolve"]


def test_checks_of_a_missing_topic_fail_with_a_clear_description(kafka_settings, unique_name):
    catalog = catalog_for(unique_name)
    defs = job_for(catalog, kafka_settings.bootstrap_servers, "/dev/null")
    result = defs.get_job_def("topic_contracts").execute_in_process(
        instance=dg.DagsterInstance.ephemeral()
    )
    evs = evaluations(result)
    assert len(evs) == 5 and not any(e.passed for e in evs.values())
    assert "does not exist on the cluster" in evs["freshness"].description
