"""What the gateway reads for the health check (gateway/health.py), against the real broker:
it only reads (no catalog, no plan, nothing judged), the brokers' min.insync.replicas once,
the quorum, the log directories; an unreachable cluster is an observation, not an error."""

import inspect

import pytest

from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway import health as gateway_health
from ecap_ops.gateway.activity import broker_config
from ecap_ops.gateway.health import broker_min_isr, describe_quorum, observe_health
from ecap_ops.localkafka import free_port
from ecap_ops.settings import KafkaSettings


def test_the_gateway_reads_and_leaves_judging_to_the_core():
    params = inspect.signature(observe_health).parameters
    assert "catalog" not in params
    source = inspect.getsource(gateway_health)
    assert "make_plan" not in source and "catalog_drift" not in source


@pytest.mark.kafka
def test_the_observation_holds_what_was_read_and_nothing_judged(kafka_settings):
    with KafkaGateway(kafka_settings) as gw:
        obs = observe_health(gw, "dev", canary=False)
        live = [b.node_id for b in obs.cluster.brokers]
        raw = broker_config(gw, live[0], ["min.insync.replicas"])
        quorum = describe_quorum(gw)
    assert obs.error is None and obs.cluster is not None and live
    assert obs.broker_min_isr == int(raw["min.insync.replicas"])
    assert obs.catalog_missing == () and obs.catalog_drift == () and obs.catalog_error is None
    assert obs.canary is None
    assert obs.quorum is not None and obs.quorum.leader_id == quorum.leader_id
    assert [v.node_id for v in obs.quorum.voters] == [v.node_id for v in quorum.voters]
    assert obs.disks and all(d.broker in live for d in obs.disks) and obs.disk_errors == {}
    assert all(d.total_bytes and d.usable_bytes is not None for d in obs.disks)


@pytest.mark.kafka
def test_the_brokers_min_isr_is_none_without_a_broker_to_ask(kafka_settings):
    with KafkaGateway(kafka_settings) as gw:
        assert broker_min_isr(gw, []) is None


def test_an_unreachable_cluster_is_an_observation_with_its_error():
    settings = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{free_port()}",
        connect_timeout_ms=1000,
        request_timeout_ms=2000,
    )
    with KafkaGateway(settings) as gw:
        obs = observe_health(gw, "dev", canary=False)
    assert obs.cluster is None and obs.error
    assert "Traceback" not in obs.error
