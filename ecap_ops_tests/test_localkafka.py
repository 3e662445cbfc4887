"""The Local Kafka layer against real Apache Kafka 4.4 (1 node for the session, 3 nodes on demand)."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from ecap_ops.cli import main
from ecap_ops.errors import LocalKafkaError
from ecap_ops.localkafka import (
    KAFKA_VERSION,
    POM_PATH,
    TOOLS,
    LocalCluster,
    cache_dir,
    tool_command,
)
from ecap_ops.localkafka import tools as tools_mod
from ecap_ops.settings import KafkaSettings
from ecap_ops_tests.helpers import kafka_tool, make_consumer

# ---- helpers ---------------------------------------------------------------------------


def _admin(settings: KafkaSettings) -> KafkaAdminClient:
    return KafkaAdminClient(**settings.client_kwargs())


def _create_topic(settings: KafkaSettings, name: str, partitions: int = 1, rf: int = 1) -> None:
    admin = _admin(settings)
    try:
        admin.create_topics([NewTopic(name, partitions, rf)], timeout_ms=10000)
    finally:
        admin.close()


def _produce(settings: KafkaSettings, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(acks="all", **settings.client_kwargs())
    try:
        for v in values:
            producer.send(topic, v).get(timeout=15)
    finally:
        producer.close(timeout=5)


def _consume(settings: KafkaSettings, topic: str, count: int, timeout: float = 30) -> list[bytes]:
    consumer = make_consumer(
        topic,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
        **settings.client_kwargs(),
    )
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                got.extend(r.value for r in batch)
    finally:
        consumer.close()
    return got


def _unfenced(cluster: LocalCluster) -> set[int]:
    info = cluster.describe() or {}
    return {b["broker_id"] for b in info.get("brokers", []) if not b.get("is_fenced")}


def _wait_for(predicate, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


# ---- no broker needed ------------------------------------------------------------------


def test_kafka_version_matches_pom():
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = ET.parse(POM_PATH).getroot().find("m:properties/m:kafka.version", ns)
    assert version is not None and version.text == KAFKA_VERSION


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ECAP_OPS_CACHE", str(tmp_path / "c"))
    assert cache_dir() == (tmp_path / "c").resolve()
    monkeypatch.delenv("ECAP_OPS_CACHE")
    assert cache_dir().name in (".cache", "ecap-ops")


def test_every_tool_class_is_in_the_jars(kafka_lib: Path):
    classes: set[str] = set()
    for jar in kafka_lib.glob("*.jar"):
        with zipfile.ZipFile(jar) as zf:
            classes.update(
                n[: -len(".class")].replace("/", ".") for n in zf.namelist() if n.endswith(".class")
            )
    missing = {tool: cls for tool, cls in TOOLS.items() if cls not in classes}
    assert not missing
    assert TOOLS["kafka-configs"] == "org.apache.kafka.tools.ConfigCommand"


def test_tool_command_adds_bootstrap_once(kafka_lib: Path):
    s = KafkaSettings(bootstrap_servers="127.0.0.1:1234")
    cmd = tool_command("kafka-topics.sh", ["--list"], s)
    assert cmd[-4:] == [
        "org.apache.kafka.tools.TopicCommand",
        "--bootstrap-server",
        "127.0.0.1:1234",
        "--list",
    ]
    cmd = tool_command("kafka-topics", ["--bootstrap-server=h:1", "--list"], s)
    assert "127.0.0.1:1234" not in cmd
    cmd = tool_command("kafka-metadata-quorum", ["--bootstrap-controller", "h:2", "describe"], s)
    assert "--bootstrap-server" not in cmd
    # kafka-cluster takes its options after the subcommand
    cmd = tool_command("kafka-cluster", ["cluster-id"], s)
    assert cmd[-3:] == ["cluster-id", "--bootstrap-server", "127.0.0.1:1234"]
    assert "--bootstrap-server" not in tool_command("kafka-storage", ["random-uuid"], s)


def test_unknown_tool_is_a_clear_error():
    with pytest.raises(LocalKafkaError, match="known tools: .*kafka-topics"):
        tools_mod.tool_spec("kafka-nope")
    result = CliRunner().invoke(main, ["kafka-cli", "kafka-nope", "--list"])
    assert result.exit_code == 1
    assert (
        "unknown Kafka tool 'kafka-nope'" in result.output
        and "kafka-consumer-groups" in result.output
    )


def test_secure_settings_reach_the_tool_through_an_unnamed_private_file(
    monkeypatch, tmp_path, kafka_lib: Path
):
    secret = 'pä$$ \\w0rd"x'
    settings = KafkaSettings(
        bootstrap_servers="127.0.0.1:1234",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="admin",
        sasl_password=secret,
    )
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    seen: dict = {}

    class FakePopen:
        def __init__(self, cmd, **kwargs):
            seen["cmd"] = cmd
            path = Path(cmd[cmd.index("--command-config") + 1])
            seen["path"] = path
            fd = int(path.name)
            seen["passed"] = fd in kwargs["pass_fds"]
            seen["target"] = os.readlink(f"/proc/self/fd/{fd}")
            seen["mode"] = stat.S_IMODE(os.fstat(fd).st_mode)
            seen["body"] = path.read_text(encoding="latin-1")
            seen["fd"] = fd
            self.returncode = 0

        def communicate(self, input=None, timeout=None):
            return "", ""

    monkeypatch.setattr(tools_mod.subprocess, "Popen", FakePopen)
    result = tools_mod.run_tool("kafka-console-consumer", ["--topic", "t"], settings, capture=True)
    assert result.returncode == 0
    assert not any(secret in a for a in seen["cmd"])
    assert str(seen["path"]).startswith("/dev/fd/") and seen["passed"]
    # A memfd: no name in any directory, so nothing can be left behind.
    assert seen["target"].startswith("/memfd:"), seen["target"]
    assert seen["mode"] == 0o600
    assert "security.protocol=SASL_PLAINTEXT" in seen["body"] and "ScramLoginModule" in seen["body"]
    assert "\\u00e4" in seen["body"]  # Properties files are read as ISO-8859-1: escape non-ASCII
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError):  # closed once the tool is done
        os.fstat(seen["fd"])


# ---- one node --------------------------------------------------------------------------


@pytest.mark.kafka
def test_single_node_answers(kafka_cluster: LocalCluster, kafka_settings: KafkaSettings):
    admin = _admin(kafka_settings)
    try:
        info = admin.describe_cluster()
    finally:
        admin.close()
    assert [b["broker_id"] for b in info["brokers"]] == [1]
    assert info["cluster_id"] == kafka_cluster.cluster_id
    status = kafka_cluster.status()
    assert status["running"] and status["reachable"] and status["brokers_registered"] == [1]
    assert kafka_cluster.is_running()
    state = json.loads((kafka_cluster.data_dir / "cluster.json").read_text())
    assert state["nodes"][0]["pid"] == status["nodes"][0]["pid"]


@pytest.mark.kafka
def test_start_when_running_is_a_noop(kafka_cluster: LocalCluster):
    pids = [n["pid"] for n in kafka_cluster.status()["nodes"]]
    assert kafka_cluster.start(timeout=30) is False
    assert LocalCluster.load(kafka_cluster.data_dir).start(timeout=30) is False
    assert [n["pid"] for n in kafka_cluster.status()["nodes"]] == pids


@pytest.mark.kafka
def test_cli_broker_start_on_a_running_cluster_says_only_what_happens(
    kafka_cluster: LocalCluster, kafka_lib: Path
):
    pids = [n["pid"] for n in kafka_cluster.status()["nodes"]]
    result = CliRunner().invoke(
        main, ["broker", "start", "--data-dir", str(kafka_cluster.data_dir)]
    )
    assert result.exit_code == 0, result.output
    # The jars are cached and the cluster runs: no fetching, no starting.
    assert "fetching" not in result.stderr and "starting" not in result.stderr, result.stderr
    assert f"already running on {kafka_cluster.bootstrap_servers}" in result.stdout
    assert [n["pid"] for n in kafka_cluster.status()["nodes"]] == pids


@pytest.mark.kafka
def test_round_trip_with_kafka_python(kafka_settings: KafkaSettings, unique_name: str):
    _create_topic(kafka_settings, unique_name, partitions=2)
    values = [f"m{i}".encode() for i in range(5)]
    _produce(kafka_settings, unique_name, values)
    assert sorted(_consume(kafka_settings, unique_name, len(values))) == values
    described = kafka_tool(kafka_settings, "kafka-topics", "--describe", "--topic", unique_name)
    assert described.returncode == 0, described.stderr
    assert "PartitionCount: 2" in described.stdout


@pytest.mark.kafka
def test_kafka_console_producer_to_kafka_python(kafka_settings: KafkaSettings, unique_name: str):
    _create_topic(kafka_settings, unique_name)
    produced = kafka_tool(
        kafka_settings, "kafka-console-producer", "--topic", unique_name, input="a\nb\nc\n"
    )
    assert produced.returncode == 0, produced.stderr
    assert _consume(kafka_settings, unique_name, 3) == [b"a", b"b", b"c"]
    offsets = kafka_tool(kafka_settings, "kafka-get-offsets", "--topic", unique_name)
    assert offsets.stdout.strip() == f"{unique_name}:0:3"


@pytest.mark.kafka
def test_kafka_cli_lists_topics_and_passes_exit_codes(
    kafka_settings: KafkaSettings, unique_name: str
):
    _create_topic(kafka_settings, unique_name)
    base = [sys.executable, "-m", "ecap_ops", "-b", kafka_settings.bootstrap_servers, "kafka-cli"]
    listed = subprocess.run(
        [*base, "kafka-topics", "--list"], capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    assert unique_name in listed.stdout.split()
    missing = subprocess.run(
        [*base, "kafka-topics.sh", "--describe", "--topic", unique_name + "-missing"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode != 0
    assert "does not exist" in missing.stderr + missing.stdout


@pytest.mark.kafka
def test_cli_status_json(kafka_cluster: LocalCluster, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        main, ["broker", "status", "--data-dir", str(kafka_cluster.data_dir), "--output", "json"]
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["running"] and info["reachable"]
    assert info["bootstrap_servers"] == kafka_cluster.bootstrap_servers
    assert set(info["nodes"][0]) >= {"node_id", "pid", "alive", "port", "controller_port"}
    empty = runner.invoke(main, ["broker", "status", "--data-dir", str(tmp_path / "none")])
    assert empty.exit_code == 1


def _ignored_signals(pid: int) -> int:
    """The mask of signals process `pid` ignores (/proc/PID/status, SigIgn)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no SigIgn in /proc/{pid}/status")


@pytest.mark.kafka
@pytest.mark.slow
def test_stop_is_idempotent_and_restart_keeps_data(kafka_lib: Path, tmp_path):
    cluster = LocalCluster(tmp_path / "k", port=0)
    try:
        # Started by a process that ignores SIGTERM (as after a Dagster run in a background
        # job): the node must still stop cleanly on SIGTERM, not wait out the grace and be
        # killed.
        before = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            assert cluster.start() is True
        finally:
            signal.signal(signal.SIGTERM, before)
        pid = cluster.status()["nodes"][0]["pid"]
        assert not _ignored_signals(pid) & (1 << (signal.SIGTERM - 1)), "the node ignores SIGTERM"
        settings = KafkaSettings(bootstrap_servers=cluster.bootstrap_servers)
        _create_topic(settings, "kept")
        _produce(settings, "kept", [b"x"])
        assert cluster.stop(timeout=60) is True
        server_log = (tmp_path / "k" / "node-1" / "logs" / "server.log").read_text()
        assert "Terminating process due to signal SIGTERM" in server_log
        assert "shut down completed" in server_log  # a clean shutdown, not a SIGKILL
        assert cluster.stop() is False
        assert not cluster.is_running() and not cluster.status()["reachable"]
        # A fresh object over the stale cluster.json restarts on the formatted storage.
        again = LocalCluster.load(tmp_path / "k")
        assert again.start() is True
        assert again.bootstrap_servers == cluster.bootstrap_servers
        assert _consume(settings, "kept", 1) == [b"x"]
    finally:
        cluster.stop()
    assert not cluster.is_running()


@pytest.mark.kafka
@pytest.mark.slow
def test_cli_broker_start_status_stop(kafka_lib: Path, tmp_path):
    runner = CliRunner()
    data = str(tmp_path / "b")
    try:
        started = runner.invoke(main, ["broker", "start", "--port", "0", "--data-dir", data])
        assert started.exit_code == 0, started.output
        assert "export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:" in started.stdout
        assert "starting 1 node(s)" in started.stderr and "fetching" not in started.stderr
        again = runner.invoke(main, ["broker", "start", "--data-dir", data])
        assert again.exit_code == 0 and "already running" in again.stdout
        status = runner.invoke(main, ["broker", "status", "--data-dir", data])
        assert status.exit_code == 0 and "running" in status.stdout
    finally:
        stopped = runner.invoke(main, ["broker", "stop", "--data-dir", data])
    assert stopped.exit_code == 0 and "stopped" in stopped.stdout
    assert runner.invoke(main, ["broker", "status", "--data-dir", data]).exit_code == 1
    assert (
        "no local Kafka running"
        in runner.invoke(main, ["broker", "stop", "--data-dir", data]).stdout
    )


@pytest.mark.kafka
def test_busy_port_is_refused_clearly(kafka_lib: Path, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(LocalKafkaError, match=f"port 127.0.0.1:{port} is already in use"):
            LocalCluster(tmp_path / "busy", port=port).start(timeout=30)


@pytest.mark.kafka
def test_a_port_taken_before_the_broker_binds_it_starts_the_new_cluster_on_fresh_ports(
    kafka_lib: Path, tmp_path, monkeypatch
):
    """The race seen beside parallel tests: a port picked as free is bound by another process
    before the JVM binds it. The node exits on its bind failure; the new cluster is planned
    again on fresh ports and starts."""
    from ecap_ops.localkafka import cluster as cluster_mod
    from ecap_ops.localkafka import layout as layout_mod

    with socket.socket() as thief:
        thief.bind(("127.0.0.1", 0))
        thief.listen()
        stolen = thief.getsockname()[1]
        real_free_ports = layout_mod.free_ports
        picks: list[list[int]] = []

        def first_pick_stolen(count, host="127.0.0.1", exclude=()):
            ports = real_free_ports(count, host, exclude)
            if not picks:
                ports[0] = stolen  # the broker port of the first plan
            picks.append(ports)
            return ports

        monkeypatch.setattr(layout_mod, "free_ports", first_pick_stolen)
        # The launcher's own check passes (the theft happens after it): the JVM finds out.
        monkeypatch.setattr(cluster_mod, "port_is_free", lambda port, host="127.0.0.1": True)
        cluster = LocalCluster(tmp_path / "raced", port=0)
        try:
            assert cluster.start(timeout=60) is True
            assert len(picks) == 2
            assert cluster.ports == [picks[1][0]] and stolen not in cluster.ports
            assert cluster.describe() is not None  # answers on its new port
            out = (tmp_path / "raced" / "node-1" / "kafka.out").read_text()
            assert f"failed to bind to 127.0.0.1:{stolen}" in out.lower()
        finally:
            cluster.stop()


def test_ports_are_picked_below_the_kernels_ephemeral_range(monkeypatch, tmp_path):
    from ecap_ops.localkafka import layout as layout_mod

    low = int(layout_mod.EPHEMERAL_RANGE_FILE.read_text().split()[0])
    ports = layout_mod.free_ports(6, exclude=[20000])
    assert len(set(ports)) == 6 and 20000 not in ports
    assert all(layout_mod.PICK_FLOOR <= p < low for p in ports), ports
    # Without the kernel's range (not Linux), the kernel picks.
    monkeypatch.setattr(layout_mod, "EPHEMERAL_RANGE_FILE", tmp_path / "missing")
    assert len(set(layout_mod.free_ports(4))) == 4


@pytest.mark.kafka
def test_a_named_port_that_is_taken_is_not_picked_again(kafka_lib: Path, tmp_path, monkeypatch):
    from ecap_ops.localkafka import cluster as cluster_mod

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        monkeypatch.setattr(cluster_mod, "port_is_free", lambda port, host="127.0.0.1": True)
        cluster = LocalCluster(tmp_path / "named", port=port)
        with pytest.raises(LocalKafkaError, match=f"failed to bind to 127.0.0.1:{port}"):
            cluster.start(timeout=60)
        assert not cluster.is_running()
        assert LocalCluster.load(tmp_path / "named").ports == [port]


@pytest.mark.kafka
def test_node_dying_at_startup_reports_its_log(kafka_lib: Path, tmp_path):
    cluster = LocalCluster(tmp_path / "bad", port=0, heap="1k")  # the JVM refuses this heap
    with pytest.raises(LocalKafkaError, match="exited during startup") as err:
        cluster.start(timeout=60)
    assert "heap" in str(err.value).lower()
    assert not cluster.is_running()


# ---- three nodes -----------------------------------------------------------------------


@pytest.mark.kafka
@pytest.mark.cluster3
@pytest.mark.slow
def test_three_nodes_survive_one_failure(kafka_cluster3: LocalCluster, unique_name: str):
    cluster = kafka_cluster3
    assert _unfenced(cluster) == {1, 2, 3}
    assert len(cluster.bootstrap_servers.split(",")) == 3
    quorum = kafka_tool(cluster, "kafka-metadata-quorum", "describe", "--status")
    assert quorum.returncode == 0, quorum.stderr
    settings = KafkaSettings(bootstrap_servers=cluster.bootstrap_servers)
    _create_topic(settings, unique_name, partitions=3, rf=3)
    _produce(settings, unique_name, [b"before"])

    assert cluster.stop_node(3) is True
    status = cluster.status()
    assert [n["alive"] for n in status["nodes"]] == [True, True, False]
    assert not cluster.is_running()
    _wait_for(lambda: _unfenced(cluster) == {1, 2}, what="brokers 1 and 2 only")
    _produce(settings, unique_name, [b"during"])

    cluster.start_node(3)
    assert _unfenced(cluster) == {1, 2, 3}
    assert cluster.is_running()
    assert sorted(_consume(settings, unique_name, 2)) == [b"before", b"during"]
    assert os.path.isfile(cluster.node_dir(3) / "logs" / "server.log")
