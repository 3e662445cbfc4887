"""Two local clusters: the session's (`prod`) and a second one started here (`dr`), with
MirrorMaker 2 between them. A drill from prod into the standby passes, reports its recovery
time and leaves the standby as it was; records produced on prod appear on the standby and
the replication lag returns to 0; stopping MirrorMaker raises the replication incident
(one notification per event, by run key) and restarting it resolves the incident; failover
translates a group's offsets so a consumer on the standby resumes where it stopped (at most
`offset_lag_max` records before). Bad input: clear errors, nothing changed."""

import json
import time
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ecap_ops.cli import main
from ecap_ops.gateway import KafkaGateway
from ecap_ops.localkafka.cluster import LocalCluster
from ecap_ops_tests.helpers import (
    consume_and_commit,
    make_consumer,
    mirrored_pair,
    run_failures,
    topic_name,
)

pytestmark = pytest.mark.kafka

OFFSET_LAG_MAX = 10
WAIT_S = 180.0


@pytest.fixture(scope="module")
def standby(kafka_cluster_b: LocalCluster) -> LocalCluster:
    """The session's second cluster (`conftest.kafka_cluster_b`), as the DR standby."""
    return kafka_cluster_b


@pytest.fixture(scope="module")
def env(kafka_cluster, standby, tmp_path_factory) -> dict:
    """A clusters file naming the two clusters, a catalog of three fresh topics (two
    mirrored, short MirrorMaker intervals, a replication-lag warning at 1 record), and the
    state and snapshot folders; KAFKA_* unset."""
    base = tmp_path_factory.mktemp("mirror")
    names = {k: topic_name(f"mm-{k}") for k in ("orders", "alerts", "plain")}
    environ = mirrored_pair(
        base,
        kafka_cluster.bootstrap_servers,
        standby.bootstrap_servers,
        {
            names["orders"]: "{purpose: orders, partitions: 3, retention: 7d}",
            names["alerts"]: "{purpose: alerts, partitions: 2, retention: 30d}",
            names["plain"]: "{purpose: not mirrored, partitions: 1}",
        },
        [names["orders"], names["alerts"]],
        OFFSET_LAG_MAX,
    )
    return {"environ": environ, "names": names, "base": base}


def cli(env: dict, *args: str):
    result = CliRunner().invoke(main, list(args), env=env["environ"])
    assert "Traceback" not in (result.output + (result.stderr or "")), result.output
    return result


def _topics(bootstrap: str) -> dict[str, int]:
    from ecap_ops.settings import KafkaSettings

    with KafkaGateway(KafkaSettings(bootstrap_servers=bootstrap)) as gw:
        return {n: t.partition_count for n, t in gw.topics(None).items()}


def _group_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    from ecap_ops.gateway.snapshot import read_group_status
    from ecap_ops.settings import KafkaSettings

    with KafkaGateway(KafkaSettings(bootstrap_servers=bootstrap)) as gw:
        st_ = read_group_status(gw, [group]).get(group)
    return dict(st_.offsets) if st_ is not None else {}


def _end_offsets(bootstrap: str, topic: str) -> dict[tuple[str, int], int]:
    from ecap_ops.settings import KafkaSettings

    with KafkaGateway(KafkaSettings(bootstrap_servers=bootstrap)) as gw:
        parts = [(topic, p.partition) for p in gw.topics([topic])[topic].partitions]
        return gw.offsets(parts, "latest")


def _produce(bootstrap: str, topic: str, n: int, start: int = 0) -> None:
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(start, start + n):
        p.send(topic, key=f"k{i % 7}".encode(), value=f"v{i}".encode())
    p.flush(30)
    p.close()


def _status(env: dict) -> dict:
    r = cli(env, "mirror", "status", "-o", "json")
    return json.loads(r.stdout)


def _wait_caught_up(env: dict) -> dict:
    deadline = time.monotonic() + WAIT_S
    last = None
    while time.monotonic() < deadline:
        last = _status(env)
        topics = last["replication"]["topics"]
        if all(t["on_standby"] and t["records"] == 0 for t in topics):
            return last
        time.sleep(2)
    raise AssertionError(f"replication did not catch up in {WAIT_S:.0f}s: {last}")


@pytest.fixture(scope="module")
def mirror(env, kafka_cluster, standby):
    """The mirrored topics created on prod, MirrorMaker 2 started; stopped at module end."""
    from ecap_ops.localkafka.mirror import MirrorProcess

    r = cli(env, "--cluster", "prod", "create-topics")
    assert r.exit_code == 0, r.output
    r = cli(env, "mirror", "start")
    assert r.exit_code == 0, r.output
    proc = MirrorProcess.for_flow(Path(env["environ"]["ECAP_STATE_DIR"]), "prod", "dr")
    try:
        yield proc
    finally:
        proc.stop()


# -- bad input: clear errors, nothing changed ----------------------------------------------


def test_unknown_cluster_names_are_refused(env, standby):
    before = _topics(standby.bootstrap_servers)
    for args in (
        ("mirror", "start", "--from", "nope"),
        ("mirror", "status", "--to", "nope"),
        ("failover", "translate-offsets", "--to", "nope", "--execute"),
        ("restore", "--to-cluster", "nope", "--execute", "x.json"),
        ("dr-drill", "--to-cluster", "nope", "x.json"),
    ):
        r = cli(env, *args)
        assert r.exit_code == 1, (args, r.output)
        assert "'nope'" in r.stderr and "known clusters: prod, dr" in r.stderr, r.stderr
    r = cli(env, "mirror", "start", "--from", "dr", "--to", "dr")
    assert r.exit_code == 1 and "same cluster" in r.stderr
    assert _topics(standby.bootstrap_servers) == before


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(name=st.text(min_size=1, max_size=300).filter(lambda n: n not in ("prod", "dr")))
def test_hostile_cluster_names(env, name):
    for cmd in (("mirror", "stop", "--to"), ("failover", "translate-offsets", "--from")):
        r = CliRunner().invoke(main, [*cmd, name], env=env["environ"])
        assert r.exit_code == 1, r.output
        assert "Traceback" not in r.output
        assert r.stderr.startswith("error:") and "cluster" in r.stderr
        assert len(r.stderr) < 1000  # a long name is cut short in the message


def test_failover_before_any_checkpoint_is_a_clear_error(env, standby):
    before = _topics(standby.bootstrap_servers)
    r = cli(env, "failover", "translate-offsets", "--execute")
    assert r.exit_code == 1
    assert "no checkpoints yet" in r.stderr and "mirror start" in r.stderr
    assert _topics(standby.bootstrap_servers) == before


# -- DR into the standby ------------------------------------------------------------------


def test_drill_into_the_standby_passes_reports_its_time_and_leaves_it_as_it_was(
    env, kafka_cluster, standby
):
    names = env["names"]
    r = cli(env, "--cluster", "prod", "create-topics")
    assert r.exit_code == 0, r.output
    snap = env["base"] / "prod.json"
    r = cli(env, "--cluster", "prod", "snapshot", "--file", str(snap))
    assert r.exit_code == 0, r.output
    before = _topics(standby.bootstrap_servers)
    args = ["dr-drill", str(snap), "--to-cluster", "dr", "-o", "json"]
    for n in names.values():
        args += ["--topic", n]
    r = cli(env, *args)
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["passed"] is True
    assert sorted(report["created"]) == sorted(f"drill.{n}" for n in names.values())
    assert sorted(report["deleted"]) == sorted(report["created"]) and not report["left_behind"]
    assert 0 < report["recovery_seconds"] <= report["seconds"]
    assert "cluster " in report["target"] and "same" not in report["target"]
    assert _topics(standby.bootstrap_servers) == before
    # The restore itself into the standby, plan first, then applied, with its recovery time.
    r = cli(env, "restore", str(snap), "--to-cluster", "dr", "--topic", names["plain"])
    assert r.exit_code == 2, r.output
    assert _topics(standby.bootstrap_servers) == before
    r = cli(
        env,
        "restore",
        str(snap),
        "--to-cluster",
        "dr",
        "--topic",
        names["plain"],
        "--execute",
        "-o",
        "json",
    )
    assert r.exit_code == 0, r.output
    done = json.loads(r.stdout)
    assert done["ok"] and done["target_cluster"] == "dr" and done["recovery_seconds"] > 0
    assert _topics(standby.bootstrap_servers)[names["plain"]] == 1


# -- MirrorMaker 2 ---------------------------------------------------------------------------


def test_records_reach_the_standby_and_lag_returns_to_zero(env, mirror, kafka_cluster, standby):
    names = env["names"]
    _produce(kafka_cluster.bootstrap_servers, names["orders"], 300)
    _produce(kafka_cluster.bootstrap_servers, names["alerts"], 40)
    status = _wait_caught_up(env)
    assert status["process"]["running"] is True
    assert status["ok"] is True
    by = {t["topic"]: t for t in status["replication"]["topics"]}
    assert by[names["orders"]]["partitions"] == by[names["orders"]]["standby_partitions"] == 3
    assert all(t["problems"] == [] and t["level"] == "OK" for t in by.values())
    # What the standby holds is what prod holds, record for record.
    c = KafkaConsumer(bootstrap_servers=standby.bootstrap_servers, enable_auto_commit=False)
    tps = [TopicPartition(names["orders"], p) for p in range(3)]
    c.assign(tps)
    c.seek_to_beginning()
    values = set()
    deadline = time.monotonic() + 60
    while len(values) < 300 and time.monotonic() < deadline:
        for msgs in c.poll(timeout_ms=1000).values():
            values |= {m.value for m in msgs}
    c.close()
    assert values == {f"v{i}".encode() for i in range(300)}
    # Checkpoints flow once a group commits on a mirrored topic.
    assert status["replication"]["checkpoints_topic"] == "prod.checkpoints.internal"


def _consume_and_commit(bootstrap: str, topic: str, group: str, count: int) -> dict:
    got = consume_and_commit(bootstrap, topic, group, count, timeout=WAIT_S)
    assert got == count, f"{group} read {got} of {count} records of {topic} in {WAIT_S:.0f} s"
    return _group_offsets(bootstrap, group)


def test_failover_translates_a_groups_offsets(env, mirror, kafka_cluster, standby):
    names = env["names"]
    topic = names["orders"]
    group = topic_name("mm-group")
    # The group keeps up with the topic (300 records), commits, and the topic moves on by a
    # few records it has not read; then prod is lost.
    committed = _consume_and_commit(kafka_cluster.bootstrap_servers, topic, group, 300)
    assert sum(committed.values()) == 300
    assert len(committed) == 3, committed  # a position on every partition
    _produce(kafka_cluster.bootstrap_servers, topic, 6, start=300)
    _wait_caught_up(env)
    # Wait for MirrorMaker to checkpoint the group's committed offsets.
    deadline = time.monotonic() + WAIT_S
    plan = None
    while time.monotonic() < deadline:
        r = cli(env, "failover", "translate-offsets", "--group", group, "-o", "json")
        if r.exit_code == 2:
            plan = json.loads(r.stdout)
            if len(plan["groups"][group]) == len(committed):
                break
        time.sleep(2)
    assert plan is not None, r.output
    assert _group_offsets(standby.bootstrap_servers, group) == {}  # the dry run wrote nothing
    r = cli(env, "failover", "translate-offsets", "--group", group, "--execute", "-o", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ok"] is True
    on_dr = _group_offsets(standby.bootstrap_servers, group)
    assert set(on_dr) == set(committed)
    for tp, src in committed.items():
        # Never past where the group stopped; at most offset.lag.max records before it.
        assert src - OFFSET_LAG_MAX <= on_dr[tp] <= src, (tp, src, on_dr[tp])
    # A consumer of the group on the standby resumes there: it reads what the group had not
    # consumed, and re-reads at most offset_lag_max records per partition.
    c = make_consumer(
        topic,
        bootstrap_servers=standby.bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    seen: dict[int, list[int]] = {}
    deadline = time.monotonic() + 60
    total_left = 306 - sum(on_dr.values())
    while sum(len(v) for v in seen.values()) < total_left and time.monotonic() < deadline:
        for tp, msgs in c.poll(timeout_ms=1000).items():
            seen.setdefault(tp.partition, []).extend(m.offset for m in msgs)
    c.close()
    for (_t, p), src in committed.items():
        first = min(seen.get(p, [src]))
        assert src - OFFSET_LAG_MAX <= first <= src
    assert sum(len(v) for v in seen.values()) == total_left
    assert _status(env)["replication"]["checkpoint_records"] > 0
    # Again: nothing left to write.
    r = cli(env, "failover", "translate-offsets", "--group", group, "-o", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["writes"] == 0


def test_failover_refuses_unknown_groups_and_active_ones(env, mirror, kafka_cluster, standby):
    r = cli(env, "failover", "translate-offsets", "--group", "no-such-group", "--execute")
    assert r.exit_code == 1 and "no checkpoint" in r.stderr
    assert _group_offsets(standby.bootstrap_servers, "no-such-group") == {}
    r = cli(env, "failover", "translate-offsets", "--group", "", "--execute")
    assert r.exit_code == 1 and "not a consumer group id" in r.stderr
    # A group with a live member on the standby is refused, and nothing is written.
    topic = env["names"]["alerts"]
    group = topic_name("mm-active")
    # The group keeps up with the topic, as a group worth failing over does. A group left
    # behind (10 of 40 records, possibly a partition never read) was not checkpointed
    # within 180 s in one CI run: MirrorMaker translates an offset only from an offset
    # sync at or before it and keeps only a sparse set of the older syncs, while the latest
    # one, which translates a group at the end, it always keeps.
    held = sum(_end_offsets(kafka_cluster.bootstrap_servers, topic).values())
    assert held > 0
    committed = _consume_and_commit(kafka_cluster.bootstrap_servers, topic, group, held)
    assert sum(committed.values()) == held
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        r = cli(env, "failover", "translate-offsets", "--group", group, "-o", "json")
        if r.exit_code == 2:
            break
        time.sleep(2)
    assert r.exit_code == 2, r.output
    member = make_consumer(
        topic,
        bootstrap_servers=standby.bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
    )
    try:
        deadline = time.monotonic() + 60
        while not member.assignment() and time.monotonic() < deadline:
            member.poll(timeout_ms=500)
        assert member.assignment()
        r = cli(env, "failover", "translate-offsets", "--group", group, "--execute")
        assert r.exit_code == 1, r.output
        assert "active member(s)" in r.stdout and "nothing was changed" in r.stdout
        assert _group_offsets(standby.bootstrap_servers, group) == {}
    finally:
        member.close()


# -- the replication incident ---------------------------------------------------------------


def _tick(env, monkeypatch, cursor):
    from ecap_ops.orchestration.mirror import build_defs

    for k, v in env["environ"].items():
        monkeypatch.setenv(k, v)
    from ecap_ops.orchestration.alerts import AlertsResource

    defs = dg.Definitions.merge(
        build_defs(None), dg.Definitions(resources={"alerts": AlertsResource()})
    )
    sensor = defs.resolve_sensor_def("mirror_replication_sensor")
    with dg.instance_for_test() as instance:
        result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
    return result


def test_stopping_mirrormaker_opens_the_incident_once_and_restarting_resolves_it(
    env, mirror, kafka_cluster, monkeypatch, tmp_path
):
    from ecap_ops.orchestration.alerts import AlertsResource
    from ecap_ops.orchestration.mirror import build_defs

    names = env["names"]
    _wait_caught_up(env)
    t = _tick(env, monkeypatch, None)
    assert t.run_requests == [] and t.cursor
    cursor = t.cursor
    r = cli(env, "mirror", "stop")
    assert r.exit_code == 0 and "Stopped" in r.stdout
    assert cli(env, "mirror", "status").exit_code == 1
    _produce(kafka_cluster.bootstrap_servers, names["alerts"], 25, start=1000)
    t = _tick(env, monkeypatch, cursor)
    assert len(t.run_requests) == 1
    opened = t.run_requests[0]
    assert opened.run_key.endswith(":open") and opened.run_key.startswith("mirror:prod->dr:")
    event = opened.run_config["ops"]["send_notification"]["config"]["event"]
    assert event["source"] == "mirror_replication" and names["alerts"] in event["facts"]["lagging"]
    # Still lagging: the incident stays open and nothing is sent again.
    cursor = t.cursor
    t = _tick(env, monkeypatch, cursor)
    assert t.run_requests == []
    cursor = t.cursor
    # The notification run delivers the alert once.
    jsonl = tmp_path / "alerts.jsonl"
    defs = dg.Definitions.merge(
        build_defs(None),
        dg.Definitions(resources={"alerts": AlertsResource(jsonl_path=str(jsonl))}),
    )
    job = defs.resolve_job_def("notify_mirror_replication")
    done = job.execute_in_process(run_config=opened.run_config)
    assert done.success, run_failures(done)
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["source"] == "mirror_replication"
    assert lines[0]["severity"] == "warning" and "prod->dr" in lines[0]["title"]
    # Restart: caught up again; two clean checks in a row resolve it.
    r = cli(env, "mirror", "start")
    assert r.exit_code == 0, r.output
    _wait_caught_up(env)
    t = _tick(env, monkeypatch, cursor)
    assert t.run_requests == []
    t = _tick(env, monkeypatch, t.cursor)
    assert [rr.run_key.rsplit(":", 1)[1] for rr in t.run_requests] == ["resolve"]
    assert t.run_requests[0].run_key.rsplit(":", 1)[0] == opened.run_key.rsplit(":", 1)[0]


def test_a_standby_that_is_down_is_a_clear_bounded_error(env, kafka_cluster, tmp_path):
    from ecap_ops.localkafka.cluster import free_port

    dead = f"127.0.0.1:{free_port()}"
    clusters = tmp_path / "clusters.yaml"
    clusters.write_text(
        "version: 1\nclusters:\n"
        f"  prod: {{role: primary, env: dev, bootstrap_servers: '{kafka_cluster.bootstrap_servers}', "
        "connect_timeout_ms: 2000, request_timeout_ms: 3000}\n"
        f"  dr: {{role: standby, env: dev, bootstrap_servers: '{dead}', "
        "connect_timeout_ms: 2000, request_timeout_ms: 3000}\n"
    )
    down = {**env, "environ": {**env["environ"], "ECAP_CLUSTERS_FILE": str(clusters)}}
    for args in (
        ("mirror", "status"),
        ("failover", "translate-offsets", "--execute"),
        ("dr-drill", str(env["base"] / "nothing.json"), "--to-cluster", "dr"),
    ):
        started = time.monotonic()
        r = cli(down, *args)
        assert r.exit_code == 1, (args, r.output)
        assert time.monotonic() - started < 60
        text = r.output.lower()
        if args[0] != "dr-drill":
            assert "no kafka broker answered" in text or "unreachable" in text, r.output
            assert dead in r.output


# -- the pure rules ------------------------------------------------------------------------


def _checkpoint_bytes(group: str, topic: str, partition: int, up: int, down: int):
    def s16(x: str) -> bytes:
        b = x.encode()
        return len(b).to_bytes(2, "big") + b

    key = s16(group) + s16(topic) + partition.to_bytes(4, "big")
    value = (0).to_bytes(2, "big") + up.to_bytes(8, "big") + down.to_bytes(8, "big") + s16("")
    return key, value


@settings(max_examples=200, deadline=None)
@given(
    group=st.text(max_size=50),
    topic=st.text(min_size=1, max_size=50),
    partition=st.integers(0, 2**31 - 1),
    up=st.integers(0, 2**63 - 1),
    down=st.integers(0, 2**63 - 1),
)
def test_checkpoint_records_decode(group, topic, partition, up, down):
    from ecap_ops.core.mirror import decode_checkpoint

    key, value = _checkpoint_bytes(group, topic, partition, up, down)
    c = decode_checkpoint(key, value)
    assert (c.group, c.topic, c.partition, c.upstream, c.downstream) == (
        group,
        topic,
        partition,
        up,
        down,
    )


@settings(max_examples=200, deadline=None)
@given(key=st.binary(max_size=80), value=st.binary(max_size=80))
def test_hostile_checkpoint_records_are_refused_not_crashed_on(key, value):
    from ecap_ops.core.mirror import decode_checkpoint

    try:
        decode_checkpoint(key, value)
    except (ValueError, UnicodeDecodeError):
        pass


def test_mm2_properties_hold_no_password_and_one_way_flow():
    from ecap_ops.catalog.mirror import MirrorSpec
    from ecap_ops.core.mirror import MirrorCluster, mm2_properties, render_properties

    src = MirrorCluster("prod", "k1:9093", "SASL_SSL", "SCRAM-SHA-512", "ops", "PROD_PW", "/ca.pem")
    tgt = MirrorCluster("dr", "k2:9092")
    props = mm2_properties(src, tgt, ["transactions", "fraud.alerts"], MirrorSpec(), 3)
    assert props["prod->dr.topics"] == "transactions|fraud\\.alerts"
    assert props["dr->prod.enabled"] == "false"
    assert props["dr->prod.emit.heartbeats.enabled"] == "false"
    assert props["prod->dr.sync.group.offsets.enabled"] == "false"
    assert props["replication.policy.class"].endswith("IdentityReplicationPolicy")
    assert "${env:PROD_PW}" in props["prod.sasl.jaas.config"]
    text = render_properties(props)
    assert 'password="${env:PROD_PW}"' in text
    with pytest.raises(ValueError, match="same cluster"):
        mm2_properties(src, src, ["t"], MirrorSpec(), 1)
    with pytest.raises(ValueError, match="no topics"):
        mm2_properties(src, tgt, [], MirrorSpec(), 1)


def test_replication_levels_and_the_incident():
    from ecap_ops.catalog.mirror import MirrorLag
    from ecap_ops.core.mirror import MirrorFacts, decide, topic_lag

    lag = MirrorLag(10, 100, 60.0, 600.0)
    assert topic_lag("t", lag, {0: 5, 1: 5}, {0: 5, 1: 5}, 0.0).level == "OK"
    assert topic_lag("t", lag, {0: 15, 1: 5}, {0: 5, 1: 5}, 1.0).level == "WARN"
    assert topic_lag("t", lag, {0: 500}, {0: 5}, 1.0).level == "CRIT"
    assert topic_lag("t", lag, {0: 5}, {0: 5}, 0.0).records == 0
    assert topic_lag("t", lag, {0: 5}, {0: 9}, 0.0).records == 0  # never negative
    missing = topic_lag("t", lag, {0: 5}, None, None)
    assert missing.level == "CRIT" and "missing on the standby" in missing.problems[0]
    d = decide(None, MirrorFacts("prod->dr", "WARN", ("t",)), 1000.0)
    assert [e.event_name for e in d.events] == ["open"]
    d2 = decide(d.state, MirrorFacts("prod->dr", "WARN", ("t",)), 1030.0)
    assert d2.events == ()
    d3 = decide(d2.state, MirrorFacts("prod->dr", "OK"), 1060.0)
    d4 = decide(d3.state, MirrorFacts("prod->dr", "OK"), 1090.0)
    assert d3.events == () and [e.event_name for e in d4.events] == ["resolve"]
    assert d4.events[0].run_key == d.events[0].run_key.replace(":open", ":resolve")
    # A stored state that cannot be read is dropped with a note, never a crash.
    bad = decide({"v": 1, "incident": {"id": 3}}, MirrorFacts("prod->dr", "OK"), 1.0)
    assert bad.notes and bad.events == ()


def test_replication_events_cross_into_a_notification_run_and_back():
    from ecap_ops.core.incidents import from_wire, to_alert, to_wire
    from ecap_ops.core.mirror import MirrorFacts, decide

    d = decide(None, MirrorFacts("prod->dr", "CRIT", ("t",), ("t: CRIT: missing",)), 5.0)
    wire = json.loads(json.dumps(to_wire(d.events[0])))
    back = from_wire(wire)
    assert back == d.events[0]
    alert = to_alert(back)
    assert alert.severity == "critical" and "prod->dr" in alert.title
    with pytest.raises(ValueError, match="mirror_replication"):
        from_wire({"source": "mirror_replication", "kind": "open"})


def test_a_notification_run_of_the_code_location_reads_replication_events_back():
    """A run process imports the Dagster module, not the rule: the event type must be
    registered by that import, with every other source's still known."""
    import subprocess
    import sys

    from ecap_ops.core.incidents import to_wire
    from ecap_ops.core.mirror import MirrorFacts, decide

    wire = to_wire(decide(None, MirrorFacts("prod->dr", "WARN", ("t",)), 5.0).events[0])
    code = (
        "import json, sys\n"
        "import ecap_ops.orchestration.mirror\n"
        "from ecap_ops.core.incidents import _types, from_wire\n"
        "e = from_wire(json.loads(sys.argv[1]))\n"
        "print(e.run_key, sorted(_types()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(wire)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("mirror:prod->dr:5000:open")
    for source in ("consumer_lag", "dr_drill", "health_check", "mirror_replication"):
        assert source in out.stdout


_BASE = """version: 1
environments:
  dev: {replication_factor: 1}
topics:
  orders: {purpose: o, partitions: 2}
  alerts: {purpose: a, partitions: 1}
"""

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**13), 10**13),
    st.text(max_size=30),
    st.lists(st.text(max_size=10), max_size=4),
    st.dictionaries(st.text(max_size=10), st.integers(-5, 5), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(
    section=st.dictionaries(
        st.sampled_from(
            ["topics", "checkpoint_interval", "refresh_interval", "offset_lag_max", "lag", "tpoics"]
        ),
        _values,
        max_size=5,
    )
)
def test_hostile_mirror_sections_are_refused_with_their_path(section):
    import yaml

    from ecap_ops.catalog import parse_catalog
    from ecap_ops.catalog.mirror import mirror_of
    from ecap_ops.errors import CatalogInvalid

    text = _BASE + yaml.safe_dump({"mirror": section})
    try:
        catalog = parse_catalog(text, env="dev")
    except CatalogInvalid as exc:
        assert all(str(e).startswith(("mirror", "(YAML)", "(top)", "...")) for e in exc.errors), exc
        assert "Traceback" not in str(exc)
        return
    spec = mirror_of(catalog)
    assert spec.topics and set(spec.topics) <= {"orders", "alerts"}
    assert 1 <= spec.checkpoint_interval_s <= 86400 and spec.offset_lag_max >= 0


def test_mirror_section_errors_name_the_path():
    from ecap_ops.catalog import parse_catalog
    from ecap_ops.errors import CatalogInvalid

    bad = _BASE + "mirror:\n  topics: [orders, nope, orders]\n  checkpoint_interval: 0s\n"
    with pytest.raises(CatalogInvalid) as info:
        parse_catalog(bad, env="dev")
    text = "\n".join(info.value.errors)
    assert "mirror.topics[1]: 'nope' is not a topic of the catalog" in text
    assert "mirror.topics[2]: 'orders' is listed twice" in text
    assert "mirror.checkpoint_interval: must be between 1s and 24h" in text
    ok = parse_catalog(_BASE + "mirror: {topics: [alerts, orders]}\n", env="dev")
    from ecap_ops.catalog.mirror import mirror_of

    assert mirror_of(ok).topics == ("orders", "alerts")  # catalog order


def test_mirror_version_matches_its_pom():
    import xml.etree.ElementTree as ET

    from ecap_ops.localkafka.jars import MIRROR_POM_PATH, MIRROR_VERSION

    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    found = ET.parse(MIRROR_POM_PATH).getroot().find("m:properties/m:mirror.version", ns)
    assert found is not None and found.text == MIRROR_VERSION


def test_the_weekly_drill_targets_the_standby_of_the_clusters_file(tmp_path, monkeypatch):
    from ecap_ops.catalog import load_catalog
    from ecap_ops.orchestration.dr import DrillConfig, build_defs

    clusters = tmp_path / "clusters.yaml"
    clusters.write_text(
        "version: 1\nclusters:\n"
        "  prod: {role: primary, env: dev, bootstrap_servers: 'p:9092'}\n"
        "  dr: {role: standby, env: dev, bootstrap_servers: 'd:9092'}\n"
    )
    monkeypatch.setenv("ECAP_CLUSTERS_FILE", str(clusters))
    schedule = next(
        s for s in build_defs(load_catalog(env="dev")).schedules if s.name == "dr_drill_schedule"
    )
    assert "standby cluster dr" in schedule.description
    with dg.instance_for_test() as instance:
        tick = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
    config = tick.run_requests[0].run_config["ops"]["run_dr_drill"]["config"]
    assert config == {"target_cluster": "dr"}
    assert DrillConfig(**config).target_cluster == "dr"
    monkeypatch.delenv("ECAP_CLUSTERS_FILE")
    plain = next(
        s for s in build_defs(load_catalog(env="dev")).schedules if s.name == "dr_drill_schedule"
    )
    assert "standby" not in plain.description
