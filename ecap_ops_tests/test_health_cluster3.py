"""Health check on a real 3-node cluster: one broker stopped lists the under-replicated
partitions of replication-3 topics within a bounded time, started again is OK again; every
broker stopped is CRIT "unreachable" within 15 s with exit code 1."""

import json
import os
import subprocess
import sys
import time

import pytest

from ecap_ops.catalog import load_catalog
from ecap_ops.core.health import CRIT, OK
from ecap_ops.gateway import KafkaGateway
from ecap_ops.services.health import run_health_check
from ecap_ops.settings import KafkaSettings
from ecap_ops_tests.bounds import (
    CONNECT_MS,
    REQUEST_MS,
    SHORT_WAITS_ENV,
    assert_bounded,
    wait_limit_s,
)

pytestmark = [pytest.mark.kafka, pytest.mark.cluster3, pytest.mark.slow]


def _check(settings: KafkaSettings):
    with KafkaGateway(settings) as gw:
        return run_health_check(gw, load_catalog(env="dev").select([]), canary_timeout_s=3)


def _until(settings: KafkaSettings, pred, timeout_s: float):
    """Run the health check until `pred(report)` holds; return (report, seconds)."""
    started = time.monotonic()
    report = None
    while time.monotonic() - started < timeout_s:
        report = _check(settings)
        if pred(report):
            return report, time.monotonic() - started
        time.sleep(1)
    raise AssertionError(
        f"not reached within {timeout_s} s; last report: {report and [f for f in report.problems()]}"
    )


def test_one_broker_down_lists_under_replicated_partitions_then_recovers(
    kafka_cluster3, unique_name
):
    settings = KafkaSettings(
        bootstrap_servers=kafka_cluster3.bootstrap_servers,
        connect_timeout_ms=4000,
        request_timeout_ms=5000,
    )
    with KafkaGateway(settings) as gw:
        gw.require(
            gw.create_topics({unique_name: {"num_partitions": 3, "replication_factor": 3}}),
            "creating",
        )
    report, _ = _until(settings, lambda r: unique_name in r.topic_partitions and r.status == OK, 60)
    assert report.metrics["quorum_voters"] == 3

    kafka_cluster3.stop_node(3)
    try:
        report, took = _until(settings, lambda r: unique_name in r.under_replicated, 60)
        # Every partition had a replica on broker 3: all three are listed.
        assert report.under_replicated[unique_name] == [0, 1, 2]
        urp = [f for f in report.findings if f.subject == "under-replicated"][0]
        assert f"{unique_name}: 0, 1, 2" in urp.message
        assert report.metrics["under_replicated_partitions"] >= 3
        assert report.status in ("WARN", "CRIT") and report.exit_code(strict=True) == 1
        print(f"under-replication reported {took:.1f} s after the broker stopped")
    finally:
        kafka_cluster3.start_node(3, wait=True, timeout=120)
    report, took = _until(settings, lambda r: r.status == OK, 90)
    assert report.under_replicated == {} and report.metrics["canary_lost"] == 0


def test_every_broker_down_is_unreachable_within_the_configured_waits(
    kafka_cluster3, cli_startup_s
):
    bootstrap = kafka_cluster3.bootstrap_servers
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ECAP_"))}
    env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    env.update(SHORT_WAITS_ENV)
    kafka_cluster3.stop()
    try:
        started = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "ecap_ops", "health-check", "--output", "json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        took = time.monotonic() - started
        assert out.returncode == 1, out.stderr
        data = json.loads(out.stdout)
        assert data["status"] == CRIT and data["findings"][0]["message"].startswith("unreachable")
        limit = wait_limit_s(CONNECT_MS, REQUEST_MS, startup_s=cli_startup_s)
        assert_bounded(took, limit, "health-check, every broker down", cli_startup_s)
    finally:
        kafka_cluster3.start(timeout=180)
