"""Health check: pure evaluation rules, then the real single-node broker (healthy with a
canary, unreachable fast), the CLI's exit codes and the Dagster job's report and checks."""

import dataclasses
import json
import os
import subprocess
import sys
import time

import dagster as dg
import pytest
from click.testing import CliRunner

from ecap_ops.catalog import load_catalog
from ecap_ops.cli import main
from ecap_ops.core.health import (
    CRIT,
    OK,
    WARN,
    CanaryResult,
    DiskInfo,
    HealthObservation,
    Quorum,
    QuorumVoter,
    evaluate,
    report_rows,
)
from ecap_ops.core.incidents import to_alert
from ecap_ops.core.state import BrokerInfo, ClusterState, PartitionState, TopicState
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.health import CANARY_TOPIC
from ecap_ops.localkafka import free_port
from ecap_ops.services.health import health_alert, run_health_check
from ecap_ops_tests.bounds import (
    CONNECT_MS,
    REQUEST_MS,
    SHORT_WAITS_ENV,
    assert_bounded,
    wait_limit_s,
)
from ecap_ops_tests.e2e_helpers import isolated_catalog
from ecap_ops_tests.helpers import run_failures

NOW = 1_790_000_000_000


def _cluster(brokers=(1,), topics=None, controller=1) -> ClusterState:
    return ClusterState(
        "cid", controller, tuple(BrokerInfo(b, "h", 9092) for b in brokers), topics or {}
    )


def _topic(name, parts, internal=False) -> TopicState:
    return TopicState(
        name,
        tuple(
            PartitionState(i, leader, tuple(rep), tuple(isr))
            for i, (leader, rep, isr) in enumerate(parts)
        ),
        internal=internal,
    )


def _quorum(n=1, lag=0, stale_ms=None, behind=None) -> Quorum:
    """Voter 1 leads; the voters in `behind` (default: all others) lag or are silent."""
    voters = [QuorumVoter(1, 100, NOW)]
    for i in range(2, n + 1):
        late = behind is None or i in behind
        voters.append(
            QuorumVoter(i, 100 - (lag if late else 0), NOW - ((stale_ms or 0) if late else 0))
        )
    return Quorum(1, 100, tuple(voters))


def _obs(env="dev", **kw) -> HealthObservation:
    base = dict(
        bootstrap="b:1",
        env=env,
        at_ms=NOW,
        cluster=_cluster(),
        quorum=_quorum(),
        disks=(DiskInfo(1, "/d", None, 100, 50),),
        canary=CanaryResult(CANARY_TOPIC, 3, 3, 12.0),
    )
    base.update(kw)
    return HealthObservation(**base)


def _by_check(report, check):
    return [f for f in report.findings if f.check == check]


# ---- pure rules ---------------------------------------------------------------------------


def test_a_healthy_single_node_dev_cluster_is_ok_and_says_what_it_measured():
    r = evaluate(_obs(cluster=_cluster(topics={"t": _topic("t", [(1, [1], [1])])})))
    assert r.status == OK and r.exit_code() == 0
    assert {f.check for f in r.findings} >= {"brokers", "quorum", "partitions", "disk", "canary"}
    assert r.metrics["canary_latency_ms"] == 12.0 and r.metrics["under_replicated_partitions"] == 0


@pytest.mark.parametrize(
    "env, expected",
    [("dev", OK), ("prod", WARN)],
)
def test_replication_1_and_one_voter_are_findings_in_prod_only(env, expected):
    r = evaluate(_obs(env=env, cluster=_cluster(topics={"t": _topic("t", [(1, [1], [1])])})))
    assert r.status == expected
    if env == "prod":
        msgs = " ".join(f.message for f in r.problems())
        assert "single replica" in msgs and "one voter" in msgs


@pytest.mark.parametrize(
    "parts, min_isr, status, kind",
    [
        ([(1, [1, 2, 3], [1, 2])], 1, WARN, "under_replicated"),
        ([(1, [1, 2, 3], [1])], 2, CRIT, "under_min_isr"),
        ([(None, [1, 2, 3], [])], 1, CRIT, "offline"),
        ([(1, [1, 2, 3], [1, 2, 3])], 2, OK, None),
    ],
)
def test_partition_problems_are_listed_by_topic_and_partition(parts, min_isr, status, kind):
    topics = {"orders": _topic("orders", [(1, [1, 2, 3], [1, 2, 3])] + parts)}
    r = evaluate(
        _obs(cluster=_cluster((1, 2, 3), topics), quorum=_quorum(3), broker_min_isr=min_isr)
    )
    assert r.status == status
    if kind:
        assert getattr(r, kind) == {"orders": [1]}
        assert any("orders: 1" in f.message for f in r.problems())


def test_a_broker_named_as_replica_but_not_registered_is_reported():
    topics = {"t": _topic("t", [(1, [1, 2, 3], [1, 2])])}
    r = evaluate(_obs(cluster=_cluster((1, 2), topics), quorum=_quorum(3)))
    brokers = _by_check(r, "brokers")
    assert brokers[0].severity == WARN and "3" in brokers[0].message


@pytest.mark.parametrize(
    "quorum, status",
    [
        (Quorum(None, 100, (QuorumVoter(1, 100, NOW),)), CRIT),
        (_quorum(3, lag=5000, behind=(2,)), WARN),  # one voter behind: majority intact
        (_quorum(3, stale_ms=60_000), CRIT),  # two of three voters silent: no majority
        (_quorum(3), OK),
    ],
)
def test_quorum_rules(quorum, status):
    r = evaluate(_obs(quorum=quorum))
    assert _by_check(r, "quorum")[0].severity == status


@pytest.mark.parametrize(
    "disk, status",
    [
        (DiskInfo(1, "/d", None, 100, 50), OK),
        (DiskInfo(1, "/d", None, 100, 15), WARN),
        (DiskInfo(1, "/d", None, 100, 5), CRIT),
        (DiskInfo(1, "/d", "KafkaStorageError", None, None), CRIT),
    ],
)
def test_disk_and_log_dir_rules(disk, status):
    r = evaluate(_obs(disks=(disk,)))
    f = [f for f in r.findings if f.check in ("disk", "log_dirs")][0]
    assert f.severity == status


@pytest.mark.parametrize(
    "canary, status",
    [
        (CanaryResult(CANARY_TOPIC, 3, 3, 20.0), OK),
        (CanaryResult(CANARY_TOPIC, 3, 3, 2500.0), WARN),
        (CanaryResult(CANARY_TOPIC, 3, 1, 20.0, "waited 5 s"), CRIT),
        (CanaryResult(CANARY_TOPIC, 3, 0, None, "KafkaTimeoutError"), CRIT),
    ],
)
def test_canary_rules(canary, status):
    r = evaluate(_obs(canary=canary))
    assert _by_check(r, "canary")[0].severity == status
    assert r.metrics["canary_lost"] == canary.lost


def test_unreachable_is_critical_and_exits_1_and_alerts():
    r = evaluate(HealthObservation("b:1", "dev", NOW, error="no broker answered"))
    assert r.status == CRIT and r.exit_code() == 1 and "unreachable" in r.findings[0].message
    a = health_alert(r)
    assert a is not None and a.severity == "critical" and "unreachable" in a.text


def test_strict_fails_on_warnings_and_ok_sends_no_alert():
    warn = evaluate(_obs(catalog_missing=("transactions",)))
    assert warn.status == WARN and warn.exit_code() == 0 and warn.exit_code(strict=True) == 1
    assert health_alert(evaluate(_obs())) is None
    assert report_rows(warn)[0][0] == WARN  # worst first


# ---- the real broker ----------------------------------------------------------------------


@pytest.mark.kafka
def test_healthy_single_node_reports_ok_with_canary_latency(kafka_settings):
    catalog = load_catalog(env="dev").select([])  # no catalog topics on the shared broker
    with KafkaGateway(kafka_settings) as gw:
        report = run_health_check(gw, catalog)
    assert report.status == OK, [f for f in report.problems()]
    assert report.metrics["brokers"] == 1 and report.metrics["quorum_voters"] == 1
    assert 0 < report.metrics["canary_latency_ms"] < 5000
    assert report.metrics["canary_lost"] == 0
    assert report.metrics["disk_used_max_percent"] is not None
    # The canary topic exists with our short retention.
    with KafkaGateway(kafka_settings) as gw:
        overrides = gw.topic_overrides([CANARY_TOPIC])[CANARY_TOPIC][0]
    assert overrides["retention.ms"] == "3600000"


@pytest.mark.kafka
def test_missing_catalog_topics_are_a_warning_in_dev(kafka_settings, unique_name):
    catalog = load_catalog(env="dev")
    prefixed = dataclasses.replace(
        catalog,
        topics=tuple(dataclasses.replace(t, name=f"{unique_name}-{t.key}") for t in catalog.topics),
    )
    with KafkaGateway(kafka_settings) as gw:
        report = run_health_check(gw, prefixed, canary=False)
    cat = _by_check(report, "catalog")[0]
    assert cat.severity == WARN and f"{unique_name}-transactions" in cat.message
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1


def _cli(*args, bootstrap, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ECAP_"))}
    env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "ecap_ops", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_every_broker_down_is_crit_unreachable_within_the_configured_waits_and_exit_1(
    cli_startup_s,
):
    port = free_port()
    started = time.monotonic()
    out = _cli(
        "health-check",
        "--output",
        "json",
        bootstrap=f"127.0.0.1:{port}",
        env_extra=SHORT_WAITS_ENV,
    )
    took = time.monotonic() - started
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout)
    assert data["status"] == CRIT and "unreachable" in data["findings"][0]["message"]
    limit = wait_limit_s(CONNECT_MS, REQUEST_MS, startup_s=cli_startup_s)
    assert_bounded(took, limit, "health-check, no broker", cli_startup_s)


@pytest.mark.kafka
def test_cli_health_check_exit_codes_and_strict(kafka_bootstrap, tmp_path):
    # A catalog whose topics do not exist (a name prefix no other test uses) outside
    # production: a warning, so 0, and 1 with --strict.
    path, env, prefix = isolated_catalog(tmp_path, env="dev")
    runner = CliRunner()
    base = ["-b", kafka_bootstrap, "--catalog", str(path), "--env", env]
    ok = runner.invoke(main, base + ["health-check", "--output", "json"], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert data["status"] == WARN
    strict = runner.invoke(
        main, base + ["health-check", "--strict", "--no-canary"], catch_exceptions=False
    )
    assert strict.exit_code == 1, strict.output
    assert "health " in strict.output and "STATUS" in strict.output
    assert f"{prefix}transactions" in strict.output


@pytest.mark.kafka
def test_dagster_job_reports_table_numbers_checks_and_alerts(
    kafka_bootstrap, tmp_path, unique_name
):
    from ecap_ops.orchestration import health, topics
    from ecap_ops.orchestration.alerts import AlertsResource
    from ecap_ops.orchestration.resources import KafkaResource

    # The catalog's topics under names no other test uses: missing, so a warning.
    catalog = load_catalog(env="dev")
    catalog = dataclasses.replace(
        catalog,
        topics=tuple(dataclasses.replace(t, name=f"{unique_name}-{t.key}") for t in catalog.topics),
    )
    jsonl = tmp_path / "alerts.jsonl"
    resources = {
        "kafka": KafkaResource(bootstrap_servers=kafka_bootstrap),
        "alerts": AlertsResource(jsonl_path=str(jsonl)),
    }
    defs = dg.Definitions.merge(
        topics.build_defs(catalog), health.build_defs(catalog), dg.Definitions(resources=resources)
    )
    job = defs.get_job_def("kafka_health_check")
    result = job.execute_in_process(
        run_config={"ops": {"kafka_health_report": {"config": {"canary_timeout_seconds": 5}}}},
    )
    assert result.success, run_failures(result)
    out = result.output_for_node("kafka_health_report")
    mats = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    meta = mats[0].event_specific_data.metadata
    assert "| severity | check | subject | finding |" in meta["report"].value
    assert meta["canary_latency_ms"].value > 0 and meta["under_replicated_partitions"].value == 0
    # The topic assets' availability and replication checks were recorded.
    evals = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    names = {
        (e.event_specific_data.asset_key.path[-1], e.event_specific_data.check_name) for e in evals
    }
    tx = f"{unique_name}-transactions"
    assert (tx, "availability") in names and (tx, "replication") in names
    # The missing topics are a warning, so an incident event to notify. The job records its
    # events for the notification sensor (one delivery path) and sends nothing itself.
    assert out["status"] == WARN
    events = incident_events(result)
    assert not jsonl.exists()
    assert events, "a warning opened no incident"
    alert = to_alert(events[-1])
    assert alert.source == "health_check" and alert.fields["status"] == WARN
    assert tx in json.dumps(alert.fields) + alert.text


def incident_events(result) -> list:
    """The incident events a health run recorded on its asset, typed."""
    from ecap_ops.core.incidents import from_wire
    from ecap_ops.orchestration.alerts import EVENTS_METADATA

    out = []
    for e in result.all_events:
        if e.event_type_value == "ASSET_MATERIALIZATION":
            entry = e.event_specific_data.materialization.metadata.get(EVENTS_METADATA)
            out += [from_wire(w) for w in (entry.value if entry is not None else None) or []]
    return out


def test_health_schedule_status_follows_the_environment(monkeypatch):
    from ecap_ops.orchestration import health

    catalog = load_catalog(env="dev")
    monkeypatch.setenv("ECAP_SCHEDULES_DEFAULT", "running")
    s = next(iter(health.build_defs(catalog).schedules))
    assert s.default_status == dg.DefaultScheduleStatus.RUNNING and s.cron_schedule == "*/5 * * * *"
    monkeypatch.delenv("ECAP_SCHEDULES_DEFAULT")
    s = next(iter(health.build_defs(catalog).schedules))
    assert s.default_status == dg.DefaultScheduleStatus.STOPPED
