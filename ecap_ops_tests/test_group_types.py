"""Every group type on the real Kafka 4.4 broker, each made by Kafka's own clients: a KIP-848
consumer group (Kafka's console consumer with group.protocol=consumer), a KIP-932 share group
(Kafka's console share consumer) and a KIP-1071 streams group (a small Kafka Streams app with
group.protocol=streams). Each is listed with its type and state, described (members and
their assignments), and measured by the lag tick and `consumer-groups`; the requests stay one
per coordinator per kind."""

import dataclasses
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ecap_ops.catalog import load_catalog
from ecap_ops.catalog.model import LagThresholds
from ecap_ops.cli import main
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.groups import read_groups
from ecap_ops.gateway.lag import LagScope, measure_lag
from ecap_ops.localkafka.jars import fetch_streams_jar, find_executable, lib_dir
from ecap_ops.localkafka.tools import tool_command
from ecap_ops_tests.helpers import kafka_tool

WAIT_S = 90


def _create(settings, topic: str, partitions: int = 2) -> None:
    out = kafka_tool(
        settings, "kafka-topics", "--create", "--topic", topic, "--partitions", str(partitions)
    )
    assert out.returncode == 0, out.stderr


def _produce(settings, topic: str, n: int, start: int = 0) -> None:
    # Keys spread the records over the partitions.
    lines = "".join(f"k{i}:v{i}\n" for i in range(start, start + n))
    out = kafka_tool(
        settings,
        "kafka-console-producer",
        "--topic",
        topic,
        "--property",
        "parse.key=true",
        "--property",
        "key.separator=:",
        input=lines,
    )
    assert out.returncode == 0, out.stderr


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"), stdin=subprocess.DEVNULL
    )


def _stop(proc: subprocess.Popen) -> None:
    """Stop a client as an operator would (SIGTERM: it leaves its group), then make sure."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for(settings, group: str, ok, what: str, log: Path | None = None):
    """The group as read, once `ok(group)` holds (within WAIT_S)."""
    deadline = time.monotonic() + WAIT_S
    g = None
    while time.monotonic() < deadline:
        with KafkaGateway(settings) as gw:
            read = read_groups(gw, [group])
        if group in read.listings:
            g = read.group(group)
            if ok(g):
                return g
        time.sleep(1)
    tail = log.read_text()[-2000:] if log is not None and log.exists() else ""
    pytest.fail(f"group {group}: {what} not seen within {WAIT_S}s; last read {g}\n{tail}")


def _one_look(settings, group: str, warn_msgs: int = 1):
    """The lag tick's statuses of one group on one look, with a warning level of
    `warn_msgs` messages on every topic."""
    from ecap_ops.services.lag import lag_tick, one_look

    catalog = dataclasses.replace(
        load_catalog(env="dev"), lag_defaults=LagThresholds(60, 300, warn_msgs, 120)
    )
    with KafkaGateway(settings) as gw:
        tick = lag_tick(gw, catalog, None, scope=LagScope(groups=(group,)))
    return tick, one_look(tick.statuses, catalog)


def test_kip848_consumer_group_members_lag_and_stopped(kafka_settings, unique_name, tmp_path):
    topic, group = f"{unique_name}-t", f"{unique_name}-g"
    _create(kafka_settings, topic)
    _produce(kafka_settings, topic, 20)
    log = tmp_path / "consumer.log"
    args = ["--topic", topic, "--group", group, "--from-beginning"]
    args += ["--consumer-property", "group.protocol=consumer"]
    proc = _start(tool_command("kafka-console-consumer", args, kafka_settings), log)
    try:
        g = _wait_for(
            kafka_settings,
            group,
            lambda g: (
                g.members
                and g.assigned == {(topic, 0), (topic, 1)}
                and sum(g.committed.values()) == 20
            ),
            "one member owning both partitions, everything committed",
            log,
        )
        assert (g.group_type, g.protocol_type, g.state) == ("consumer", "consumer", "Stable")
        (m,) = g.members
        assert m.assignment == {topic: (0, 1)} and m.subscription == (topic,)
        assert m.client_id and m.member_id
        tick, statuses = _one_look(kafka_settings, group)
        assert tick.measurement.groups[group].group_type == "consumer"
        (s,) = statuses
        assert (s.topic, s.lag_msgs, s.members, s.state) == (topic, 0, 1, "Stable")
        assert s.status in ("OK", "IDLE")
    finally:
        _stop(proc)
    # Stopped with lag: the group has no members, its lag is over the level: STOPPED.
    _wait_for(kafka_settings, group, lambda g: g.members == (), "the member gone")
    _produce(kafka_settings, topic, 7, start=100)
    tick, statuses = _one_look(kafka_settings, group)
    (s,) = statuses
    assert (s.lag_msgs, s.members, s.state) == (7, 0, "Empty")
    assert s.raw_status == "STOPPED" and s.severity == "critical"
    # consumer-groups shows it with its type, state and the same lag.
    res = CliRunner().invoke(
        main,
        ["-b", kafka_settings.bootstrap_servers, "consumer-groups", "--output", "json"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    mine = {g["group_id"]: g for g in json.loads(res.output)["groups"]}[group]
    assert (mine["type"], mine["state"], mine["members"], mine["total_lag"]) == (
        "consumer",
        "Empty",
        0,
        7,
    )
    assert mine["lag_from"] == "committed offset" and mine["error"] is None


def test_share_group_members_and_lag_from_share_partition_start(
    kafka_settings, unique_name, tmp_path
):
    topic, group = f"{unique_name}-t", f"{unique_name}-s"
    _create(kafka_settings, topic, partitions=1)
    log = tmp_path / "share.log"
    args = ["--topic", topic, "--group", group]
    proc = _start(tool_command("kafka-console-share-consumer", args, kafka_settings), log)
    try:
        g = _wait_for(
            kafka_settings,
            group,
            lambda g: g.members and g.assigned == {(topic, 0)},
            "a member with the partition",
            log,
        )
        assert (g.group_type, g.state, g.committed) == ("share", "Stable", {})
        (m,) = g.members
        assert m.assignment == {topic: (0,)} and m.subscription == (topic,)
        # Records arrive: the share partition starts (share.auto.offset.reset=latest: at 0
        # on an empty partition) and its start offset is read from
        # DescribeShareGroupOffsets.
        _produce(kafka_settings, topic, 5)
        g = _wait_for(
            kafka_settings, group, lambda g: (topic, 0) in g.share_start, "a start offset", log
        )
        assert 0 <= g.share_start[(topic, 0)] <= 5
    finally:
        _stop(proc)
    _wait_for(kafka_settings, group, lambda g: g.members == (), "the member gone")
    with KafkaGateway(kafka_settings) as gw:
        read = read_groups(gw, [group])
    spso = read.share_starts[group][(topic, 0)]
    assert group not in read.committed  # a share group's start is never a committed offset
    # Lag as Kafka's own kafka-share-groups reports it (the coordinator's lag, KIP-1226):
    # the SPSO alone would count records acknowledged above it.
    _produce(kafka_settings, topic, 4, start=10)
    theirs = _share_tool_lag(kafka_settings, group, topic)
    assert theirs >= 4  # the four records nobody has consumed are lag, whatever the SPSO
    tick, statuses = _one_look(kafka_settings, group)
    (s,) = statuses
    assert s.lag_msgs == theirs <= 9 - spso and s.members == 0
    assert tick.measurement.groups[group].group_type == "share"
    assert "DescribeShareGroupOffsets" in tick.measurement.requests
    assert "ShareGroupDescribe" in tick.measurement.requests
    res = CliRunner().invoke(
        main,
        ["-b", kafka_settings.bootstrap_servers, "consumer-groups", "--output", "json"],
        catch_exceptions=False,
    )
    mine = {g["group_id"]: g for g in json.loads(res.output)["groups"]}[group]
    assert (mine["type"], mine["total_lag"], mine["lag_from"]) == (
        "share",
        theirs,
        "share-partition start offset",
    )
    table = CliRunner().invoke(main, ["-b", kafka_settings.bootstrap_servers, "lag", "-g", group])
    row = next(ln for ln in table.output.splitlines() if ln.startswith(group))
    assert row.split()[-1] == "share" and "Traceback" not in table.output


def _share_tool_lag(kafka_settings, group: str, topic: str) -> int:
    """The LAG column of Kafka's own `kafka-share-groups --describe` for one partition."""
    out = kafka_tool(kafka_settings, "kafka-share-groups", "--describe", "--group", group)
    assert out.returncode == 0, out.stderr
    lines = [ln.split() for ln in out.stdout.splitlines() if ln.strip()]
    header = next(ln for ln in lines if "LAG" in ln)
    row = next(ln for ln in lines if ln[: len(header)] != header and topic in ln)
    return int(row[header.index("LAG")])


STREAMS_APP = """
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;

public class EcapStreamsProbe {
  public static void main(String[] args) throws Exception {
    Properties p = new Properties();
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, args[1]);
    p.put("group.protocol", "streams");
    p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.ByteArray().getClass());
    p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.ByteArray().getClass());
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 200);
    p.put(StreamsConfig.STATE_DIR_CONFIG, args[4]);
    p.put("consumer.auto.offset.reset", "earliest");
    StreamsBuilder b = new StreamsBuilder();
    b.stream(args[2]).to(args[3]);
    KafkaStreams s = new KafkaStreams(b.build(), p);
    CountDownLatch done = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> { s.close(); done.countDown(); }));
    s.start();
    done.await();
  }
}
"""


def test_streams_group_members_assignments_and_lag(kafka_settings, unique_name, tmp_path):
    """A Kafka Streams app (kafka-streams from Maven Central at the broker's version, the
    source above run by Java's source launcher) with group.protocol=streams."""
    src, dst, app = f"{unique_name}-in", f"{unique_name}-out", f"{unique_name}-app"
    _create(kafka_settings, src)
    _create(kafka_settings, dst)
    _produce(kafka_settings, src, 12)
    source = tmp_path / "EcapStreamsProbe.java"
    source.write_text(STREAMS_APP)
    jar = fetch_streams_jar()
    cmd = [find_executable("java"), "-Xmx256m", "-cp", f"{lib_dir()}/*:{jar}", str(source)]
    cmd += [kafka_settings.bootstrap_servers, app, src, dst, str(tmp_path / "state")]
    log = tmp_path / "streams.log"
    proc = _start(cmd, log)
    try:
        g = _wait_for(
            kafka_settings,
            app,
            lambda g: (
                g.members and g.assigned == {(src, 0), (src, 1)} and sum(g.committed.values()) == 12
            ),
            "a member with both tasks, everything committed",
            log,
        )
        assert (g.group_type, g.protocol_type, g.state) == ("streams", "streams", "Stable")
        (m,) = g.members
        assert m.assignment == {src: (0, 1)} and src in m.subscription
        tick, statuses = _one_look(kafka_settings, app)
        assert tick.measurement.groups[app].group_type == "streams"
        assert "StreamsGroupDescribe" in tick.measurement.requests
        (s,) = [s for s in statuses if s.topic == src]
        assert (s.lag_msgs, s.members) == (0, 1)
    finally:
        _stop(proc)
    _wait_for(kafka_settings, app, lambda g: g.members == (), "the member gone")
    _produce(kafka_settings, src, 3, start=50)
    _tick, statuses = _one_look(kafka_settings, app)
    (s,) = [s for s in statuses if s.topic == src]
    assert (s.lag_msgs, s.members) == (3, 0) and s.raw_status == "STOPPED"


def test_requests_stay_one_per_coordinator_per_kind(kafka_settings, unique_name, tmp_path):
    """Groups of every kind at once: one describe request per kind and one OffsetFetch and
    one DescribeShareGroupOffsets, whatever the number of groups."""
    topic = f"{unique_name}-t"
    _create(kafka_settings, topic, partitions=1)
    _produce(kafka_settings, topic, 3)
    for i in range(3):
        out = kafka_tool(
            kafka_settings,
            "kafka-console-consumer",
            "--topic",
            topic,
            "--group",
            f"{unique_name}-c{i}",
            "--from-beginning",
            "--max-messages",
            "3",
            "--consumer-property",
            "group.protocol=consumer",
        )
        assert out.returncode == 0, out.stderr
    with KafkaGateway(kafka_settings) as gw:
        m = measure_lag(gw, lambda t: LagThresholds(60, 300, 1000, 120))
    mine = [g for g in m.groups if g.startswith(unique_name)]
    assert len(mine) == 3 and all(m.groups[g].group_type == "consumer" for g in mine)
    assert all(g in m.observation.groups for g in mine) and not m.unmeasured
    per_kind = {k: v for k, v in m.requests.items() if k not in ("ListOffsets",)}
    assert all(v == 1 for v in per_kind.values()), per_kind


def test_a_group_whose_lag_was_not_read_is_shown_with_the_reason():
    """No broker: `lag` lists every group in scope; one without a row says why."""
    from ecap_ops.cli.lag import group_rows, groups_without_lag
    from ecap_ops.core.groups import GroupListing
    from ecap_ops.core.lag_model import GroupObservation, Observation
    from ecap_ops.gateway.lag import Measurement

    listed = {
        "ok": GroupListing("ok", "Stable", "consumer", "consumer"),
        "sh": GroupListing("sh", "Stable", "share", "share"),
        "new": GroupListing("new", "Empty", "streams", "streams"),
    }
    obs = Observation(
        "c",
        0.0,
        {},
        frozenset(),
        {
            "ok": GroupObservation("ok", "Stable", 1, {("t", 0): 1}),
            "new": GroupObservation("new", "Empty", 0),
        },
        frozenset(listed),
    )
    m = Measurement(obs, 0.1, {}, listed, {"sh": "GroupAuthorizationFailedError"})

    class Row:
        group = "ok"

    lines = groups_without_lag(m, [Row()])
    assert lines == [
        "group new (streams, Empty): no committed offsets (or share-partition start offsets) yet",
        "group sh (share, Stable): lag not read: GroupAuthorizationFailedError",
    ]
    rows = {r["group"]: r for r in group_rows(m)}
    assert rows["sh"]["lag_read"] is False and rows["sh"]["type"] == "share"
    assert rows["ok"]["lag_read"] is True and rows["ok"]["reason"] is None
