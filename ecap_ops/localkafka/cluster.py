"""A local Apache Kafka cluster in KRaft mode on loopback: 1 or more combined broker+controller
nodes, each a `java kafka.Kafka` process in its own process group.

Layout of `data_dir`: `cluster.json` (cluster id, ports, pids), `.lock`, and per node
`node-<i>/server.properties`, `node-<i>/data` (log dirs), `node-<i>/kafka.out` (stdout and
stderr: warnings, errors, JVM failures) and `node-<i>/logs/server.log`.
With `security=SecureListener(...)` the client listener uses SASL/SCRAM (over TLS by default)
and `security/` holds the CA, the server key and certificate and the users (private files);
see `ecap_ops.localkafka.security`.
Ports and the cluster id are chosen once and kept: formatted KRaft storage remembers the
controller endpoints, so a restart must reuse them.
"""

import base64
import json
import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ecap_ops.errors import LocalKafkaError
from ecap_ops.localkafka.jars import BROKER_LOG_CONFIG, KAFKA_VERSION, file_lock, java_command
from ecap_ops.localkafka.security import LISTENER_FILE, SECURITY_DIR, SecureListener
from ecap_ops.settings import KafkaSettings

log = logging.getLogger(__name__)

STATE_FILE = "cluster.json"
STATE_VERSION = 1
# C1-only JIT: ~15-30% faster startup on 2 cores, at some cost in peak throughput (pass
# jvm_opts=() for benchmarks).
DEFAULT_BROKER_JVM_OPTS = ("-XX:TieredStopAtLevel=1",)
LOCK_TIMEOUT_S = 180.0


def free_ports(count: int, host: str = "127.0.0.1", exclude: Iterable[int] = ()) -> list[int]:
    """`count` distinct ports that are free on `host` right now (all bound at once, then released)."""
    excluded = set(exclude)
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(count + len(excluded) + 10):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((host, 0))
            port = s.getsockname()[1]
            if port not in excluded:
                ports.append(port)
            if len(ports) == count:
                return ports
    finally:
        for s in socks:
            s.close()
    raise LocalKafkaError(f"could not find {count} free ports on {host}")


def free_port(host: str = "127.0.0.1") -> int:
    """One port that is free on `host` right now."""
    return free_ports(1, host)[0]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (bound the way the JVM binds: SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def random_kafka_uuid() -> str:
    """A Kafka Uuid string (url-safe base64 of 16 random bytes), as `kafka-storage random-uuid`."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka avoids ids that look like command-line flags
            return text


def _tail(path: Path, lines: int = 25) -> str:
    """The last lines of a text file, or '' when it does not exist."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _cmdline(pid: int) -> list[str] | None:
    """The command line of a live process, or None (gone, a zombie, or not visible)."""
    if Path("/proc/self").exists():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return raw.decode("utf-8", "replace").split("\0")[:-1] or None
    try:  # no /proc (macOS): ask ps
        out = subprocess.run(
            ["ps", "-ww", "-o", "command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.split() or None


def dev_properties(nodes: int) -> dict[str, str]:
    """Broker settings of the small `dev` profile: fast group joins, few internal partitions."""
    rf = min(nodes, 3)
    min_isr = str(max(1, rf - 1))
    return {
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.num.partitions": "1",
        "offsets.topic.replication.factor": str(rf),
        "transaction.state.log.num.partitions": "1",
        "transaction.state.log.replication.factor": str(rf),
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": str(rf),
        "share.coordinator.state.topic.min.isr": min_isr,
    }


class LocalCluster:
    """A local KRaft cluster of `nodes` combined broker+controller processes on loopback."""

    def __init__(
        self,
        data_dir: Path | str,
        nodes: int = 1,
        port: int = 9092,
        host: str = "127.0.0.1",
        heap: str = "512m",
        overrides: dict[str, Any] | None = None,
        jvm_opts: Sequence[str] = DEFAULT_BROKER_JVM_OPTS,
        security: SecureListener | None = None,
    ):
        """`security`: run the client listener with SASL/SCRAM users (over TLS by default)
        instead of PLAINTEXT; see `ecap_ops.localkafka.security`. None: plaintext."""
        if nodes < 1:
            raise LocalKafkaError(f"nodes must be at least 1, got {nodes}")
        if not 0 <= port < 65536 - nodes:
            raise LocalKafkaError(f"port must be 0 (any free port) or a TCP port, got {port}")
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.nodes = nodes
        self.port = port
        self.host = host
        self.heap = heap
        self.overrides = {k: str(v) for k, v in (overrides or {}).items()}
        self.jvm_opts = list(jvm_opts)
        self.security = security
        self._procs: dict[int, subprocess.Popen] = {}
        self._state: dict[str, Any] | None = None

    # ---- persisted state -------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        """Path of cluster.json."""
        return self.data_dir / STATE_FILE

    def _read_state(self) -> dict[str, Any] | None:
        """cluster.json as a dict, or None when there is none."""
        try:
            state = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise LocalKafkaError(
                f"{self.state_path} is unreadable ({exc}); remove the data dir"
            ) from None
        if state.get("state_version") != STATE_VERSION:
            raise LocalKafkaError(
                f"{self.state_path} was written by another ecap-ops version; remove the data dir"
            )
        return state

    def _write_state(self) -> None:
        """Write cluster.json atomically."""
        assert self._state is not None
        tmp = self.state_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self._state, indent=2, sort_keys=True))
        os.replace(tmp, self.state_path)

    def _refresh(self) -> dict[str, Any] | None:
        """Reload cluster.json (another process may have started or stopped nodes)."""
        self._state = self._read_state()
        return self._state

    @classmethod
    def load(cls, data_dir: Path | str) -> "LocalCluster":
        """The cluster recorded in `data_dir/cluster.json`."""
        path = Path(data_dir).expanduser().resolve() / STATE_FILE
        if not path.is_file():
            raise LocalKafkaError(f"no local Kafka cluster in {path.parent} (no {STATE_FILE})")
        probe = cls(path.parent)
        state = probe._read_state()
        assert state is not None
        cluster = cls(
            path.parent,
            nodes=len(state["nodes"]),
            port=0,  # keep the recorded ports
            host=state["host"],
            heap=state.get("heap", "512m"),
            overrides=state.get("overrides") or {},
            jvm_opts=state.get("jvm_opts", DEFAULT_BROKER_JVM_OPTS),
            security=SecureListener.load(path.parent),
        )
        cluster._state = state
        return cluster

    def _plan_state(self) -> dict[str, Any]:
        """Fresh state for a new cluster: cluster id, ports and directory ids of every node."""
        if self.port:
            broker_ports = [self.port + i for i in range(self.nodes)]
            controller_ports = free_ports(self.nodes, self.host, exclude=broker_ports)
        else:
            ports = free_ports(2 * self.nodes, self.host)
            broker_ports, controller_ports = ports[: self.nodes], ports[self.nodes :]
        return {
            "state_version": STATE_VERSION,
            "kafka_version": KAFKA_VERSION,
            "cluster_id": random_kafka_uuid(),
            "host": self.host,
            "heap": self.heap,
            "overrides": self.overrides,
            "jvm_opts": self.jvm_opts,
            "nodes": [
                {
                    "node_id": i + 1,
                    "port": broker_ports[i],
                    "controller_port": controller_ports[i],
                    "directory_id": random_kafka_uuid(),
                    "pid": None,
                }
                for i in range(self.nodes)
            ],
        }

    def _merge_requested(self, state: dict[str, Any]) -> None:
        """Apply this object's settings to recorded state; refuse what storage cannot change."""
        if len(state["nodes"]) != self.nodes:
            raise LocalKafkaError(
                f"{self.data_dir} holds a {len(state['nodes'])}-node cluster, not {self.nodes}; "
                "use that node count or another data dir"
            )
        if state["host"] != self.host:
            raise LocalKafkaError(
                f"{self.data_dir} was made for host {state['host']}, not {self.host}"
            )
        if self.port:  # broker ports may move; controller ports may not
            for i, node in enumerate(state["nodes"]):
                if node["port"] != self.port + i and self._pid_alive(node):
                    log.warning(
                        "node %s runs on port %s; it keeps that port until restarted",
                        node["node_id"],
                        node["port"],
                    )
                    continue
                node["port"] = self.port + i
        state["heap"] = self.heap
        state["overrides"] = self.overrides
        state["jvm_opts"] = self.jvm_opts

    # ---- addresses and per-node paths --------------------------------------------------

    def _nodes(self) -> list[dict[str, Any]]:
        """Recorded nodes (empty before the first start)."""
        return list((self._state or {}).get("nodes", []))

    def _node(self, node_id: int) -> dict[str, Any]:
        """The recorded node with this id."""
        for node in self._nodes():
            if node["node_id"] == node_id:
                return node
        raise LocalKafkaError(
            f"no node {node_id} in {self.data_dir} (nodes: {[n['node_id'] for n in self._nodes()]})"
        )

    def node_dir(self, node_id: int) -> Path:
        """Folder of one node (server.properties, data, logs)."""
        return self.data_dir / f"node-{node_id}"

    @property
    def cluster_id(self) -> str | None:
        """The KRaft cluster id, once chosen."""
        return (self._state or {}).get("cluster_id")

    @property
    def ports(self) -> list[int]:
        """Client ports of the nodes (PLAINTEXT, or the secured listener's)."""
        if self._state:
            return [n["port"] for n in self._nodes()]
        return [self.port + i for i in range(self.nodes)] if self.port else []

    @property
    def bootstrap_servers(self) -> str:
        """Comma-separated host:port of every node, for clients."""
        return ",".join(f"{self.host}:{p}" for p in self.ports)

    def client_settings(self, user: str | None = None, **overrides: Any) -> KafkaSettings:
        """Connection settings for a client of this cluster: plaintext, or with the secured
        listener's protocol, CA file and SCRAM credentials of `user` (default: the first)."""
        if self.security is None:
            if user is not None:
                raise LocalKafkaError("this local cluster has no SCRAM users (it is plaintext)")
            return KafkaSettings(bootstrap_servers=self.bootstrap_servers, **overrides)
        return self.security.client_settings(
            self.data_dir, self.bootstrap_servers, user, **overrides
        )

    def _apply_security(self) -> None:
        """Record the secured listener (or its absence) and make its certificates."""
        recorded = SecureListener.load(self.data_dir)
        formatted = any(self.data_dir.glob("node-*/data/meta.properties"))
        if self.security is None:
            (self.data_dir / SECURITY_DIR / LISTENER_FILE).unlink(missing_ok=True)
            return
        if formatted and (
            recorded is None
            or recorded.users != self.security.users
            or recorded.mechanism != self.security.mechanism
        ):
            raise LocalKafkaError(
                f"{self.data_dir} was formatted with other SCRAM users or mechanism; SCRAM users "
                "are created at format time, so use the same users or another data dir"
            )
        self.security.save(self.data_dir)
        self.security.ensure_certificates(self.data_dir, self.host)

    # ---- process bookkeeping -----------------------------------------------------------

    def _pid_alive(self, node: dict[str, Any]) -> bool:
        """True when the node's recorded pid is a live `kafka.Kafka` of this node (not a reused pid)."""
        pid = node.get("pid")
        if not pid:
            return False
        proc = self._procs.get(node["node_id"])
        if proc is not None and proc.pid == pid:
            # Our own child: poll() is exact (and reaps it); /proc may still show an empty
            # command line for a moment after the exec.
            return proc.poll() is None
        cmd = _cmdline(pid)
        if not cmd:
            return False
        props = str(self.node_dir(node["node_id"]) / "server.properties")
        return "kafka.Kafka" in cmd and props in cmd

    def _signal_group(self, pid: int, sig: signal.Signals) -> None:
        """Send `sig` to the process group we started (its leader is `pid`)."""
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _wait_dead(self, nodes: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
        """Wait until these nodes' processes are gone; return those still alive at the deadline."""
        deadline = time.monotonic() + timeout
        alive = [n for n in nodes if self._pid_alive(n)]
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [n for n in alive if self._pid_alive(n)]
        return alive

    def _terminate(self, nodes: list[dict[str, Any]], timeout: float) -> list[int]:
        """SIGTERM these nodes' process groups, SIGKILL after `timeout`; return the ids stopped."""
        running = [n for n in nodes if self._pid_alive(n)]
        for node in running:
            log.info("stopping node %s (pid %s)", node["node_id"], node["pid"])
            self._signal_group(node["pid"], signal.SIGTERM)
        stubborn = self._wait_dead(running, timeout)
        for node in stubborn:
            log.warning("node %s did not stop within %.0fs; killing it", node["node_id"], timeout)
            self._signal_group(node["pid"], signal.SIGKILL)
        left = self._wait_dead(stubborn, 10)
        if left:
            raise LocalKafkaError(f"could not stop node(s) {[n['node_id'] for n in left]}")
        for node in running:
            self._procs.pop(node["node_id"], None)
        for node in nodes:
            node["pid"] = None
        return [n["node_id"] for n in running]

    # ---- configuration and storage -----------------------------------------------------

    def _properties(self, node: dict[str, Any]) -> dict[str, str]:
        """server.properties of one node."""
        h = self.host
        voters = ",".join(f"{h}:{n['controller_port']}" for n in self._nodes())
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node["node_id"]),
            "controller.quorum.bootstrap.servers": voters,
            "listeners": f"PLAINTEXT://{h}:{node['port']},CONTROLLER://{h}:{node['controller_port']}",
            "advertised.listeners": f"PLAINTEXT://{h}:{node['port']},CONTROLLER://{h}:{node['controller_port']}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.node_dir(node["node_id"]) / "data"),
        }
        if self.security is not None:
            props.update(
                self.security.server_properties(
                    self.data_dir, h, node["port"], node["controller_port"]
                )
            )
        props.update(dev_properties(len(self._nodes())))
        props.update((self._state or {}).get("overrides") or {})
        return props

    def _write_properties(self, node: dict[str, Any]) -> Path:
        """Write one node's server.properties; return its path."""
        path = self.node_dir(node["node_id"]) / "server.properties"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = "".join(f"{k}={v}\n" for k, v in self._properties(node).items())
        if self.security is not None:  # holds the inter-broker password: private
            path.touch(mode=0o600)
            os.chmod(path, 0o600)
        path.write_text(f"# Written by ecap-ops (LocalCluster); rewritten at every start.\n{body}")
        return path

    def _is_formatted(self, node: dict[str, Any]) -> bool:
        """True when the node's log dir holds KRaft storage."""
        return (self.node_dir(node["node_id"]) / "data" / "meta.properties").is_file()

    def _format(self, nodes: list[dict[str, Any]]) -> None:
        """Format the storage of these (unformatted) nodes, in parallel."""
        all_nodes = self._nodes()
        if len(all_nodes) == 1:
            quorum = ["--standalone"]
        else:
            quorum = [
                "--initial-controllers",
                ",".join(
                    f"{n['node_id']}@{self.host}:{n['controller_port']}:{n['directory_id']}"
                    for n in all_nodes
                ),
            ]
        procs = []
        for node in nodes:
            props = self.node_dir(node["node_id"]) / "server.properties"
            args = [
                "format",
                "-t",
                self.cluster_id or "",
                "-c",
                str(props),
                *quorum,
                "--ignore-formatted",
                *(self.security.format_args() if self.security is not None else []),
            ]
            cmd = java_command(
                "kafka.tools.StorageTool", args, heap="256m", jvm_opts=("-XX:TieredStopAtLevel=1",)
            )
            procs.append(
                (
                    node,
                    subprocess.Popen(
                        cmd,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        text=True,
                    ),
                )
            )
        failures = []
        for node, proc in procs:
            try:
                out, _ = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
                out += "\n(timed out after 120s)"
            if proc.returncode != 0:
                tail = "\n".join(out.splitlines()[-20:])
                for password in self.security.users.values() if self.security is not None else ():
                    tail = tail.replace(password, "***")  # the tool may echo --add-scram
                failures.append(f"node {node['node_id']}: kafka-storage format failed:\n{tail}")
        if failures:
            raise LocalKafkaError("\n".join(failures))

    # ---- starting ----------------------------------------------------------------------

    def _launch(self, node: dict[str, Any]) -> None:
        """Start one node's JVM in its own session; record its pid."""
        node_id = node["node_id"]
        for port in (node["port"], node["controller_port"]):
            if not port_is_free(port, self.host):
                raise LocalKafkaError(
                    f"node {node_id}: port {self.host}:{port} is already in use "
                    "(another broker? see `ecap-ops broker status`, or pick another --port)"
                )
        ndir = self.node_dir(node_id)
        (ndir / "logs").mkdir(parents=True, exist_ok=True)
        cmd = java_command(
            "kafka.Kafka",
            [str(ndir / "server.properties")],
            heap=self.heap,
            log_config=BROKER_LOG_CONFIG,
            jvm_opts=(
                f"-Dkafka.logs.dir={ndir / 'logs'}",
                *(self._state or {}).get("jvm_opts", self.jvm_opts),
            ),
        )
        with open(ndir / "kafka.out", "ab") as out:
            out.write(
                f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting node {node_id}\n".encode()
            )
            out.flush()
            proc = subprocess.Popen(
                cmd,
                cwd=ndir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._procs[node_id] = proc
        node["pid"] = proc.pid
        node["started_at"] = time.time()
        self._write_state()
        log.info("started node %s (pid %s, port %s)", node_id, proc.pid, node["port"])

    def _failure_report(self, node: dict[str, Any], what: str) -> str:
        """A message about a failed node with the tails of its logs."""
        ndir = self.node_dir(node["node_id"])
        parts = [f"node {node['node_id']} {what}."]
        out_tail = _tail(ndir / "kafka.out")
        if out_tail.strip():
            parts.append(f"--- last lines of {ndir / 'kafka.out'}:\n{out_tail}")
        server_tail = _tail(ndir / "logs" / "server.log", 15)
        if server_tail.strip():
            parts.append(f"--- last lines of {ndir / 'logs' / 'server.log'}:\n{server_tail}")
        return "\n".join(parts)

    def describe(self, timeout_ms: int = 3000) -> dict[str, Any] | None:
        """kafka-python's describe_cluster answer, or None when no broker answers in time."""
        from kafka import KafkaAdminClient  # kafka-python is slow to import; only here

        ports = [p for p in self.ports if port_accepts(p, self.host, timeout=0.5)]
        if not ports:  # nothing listens: skip the client, which would log connection errors
            return None
        kwargs: dict[str, Any] = {}
        if self.security is not None:  # the secured listener's protocol and credentials
            kwargs = self.client_settings().client_kwargs()
        kwargs.update(
            bootstrap_servers=[f"{self.host}:{p}" for p in ports],
            client_id="ecap-ops-localkafka",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
            reconnect_backoff_max_ms=500,
        )
        try:
            admin = KafkaAdminClient(**kwargs)
        except Exception as exc:  # any client failure means "not answering yet"
            log.debug("admin client not ready: %s", exc)
            return None
        try:
            return admin.describe_cluster()
        except Exception as exc:
            log.debug("describe_cluster failed: %s", exc)
            return None
        finally:
            admin.close()

    def _ready(self, node_ids: Iterable[int]) -> bool:
        """True when the cluster answers and lists these brokers as registered and unfenced."""
        info = self.describe()
        if not info:
            return False
        up = {b["broker_id"] for b in info.get("brokers", []) if not b.get("is_fenced")}
        return set(node_ids) <= up

    def _wait_ready(
        self, launched: list[dict[str, Any]], expect: list[int], timeout: float
    ) -> None:
        """Wait until `expect` are up; on an early exit or timeout stop `launched` and raise."""
        deadline = time.monotonic() + timeout
        while True:
            for node in launched:
                if not self._pid_alive(node):
                    proc = self._procs.get(node["node_id"])
                    code = proc.poll() if proc is not None else None
                    self._terminate(launched, 10)
                    self._write_state()
                    raise LocalKafkaError(
                        self._failure_report(node, f"exited during startup (exit code {code})")
                    )
            if self._ready(expect):
                return
            if time.monotonic() > deadline:
                reports = [
                    self._failure_report(n, f"was not ready after {timeout:.0f}s") for n in launched
                ]
                self._terminate(launched, 10)
                self._write_state()
                raise LocalKafkaError("\n".join(reports))
            time.sleep(0.3)

    def _locked(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` holding the data dir's lock (one start/stop at a time per cluster)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.data_dir / ".lock", LOCK_TIMEOUT_S):
            return fn()

    def start(self, timeout: float = 90) -> bool:
        """Start every node not running and wait until all answer; False when all already ran."""
        return self._locked(lambda: self._start(timeout))

    def _start(self, timeout: float) -> bool:
        """`start` under the lock."""
        state = self._refresh()
        if state is None:
            if any(self.data_dir.glob("node-*/data/meta.properties")):
                raise LocalKafkaError(
                    f"{self.data_dir} holds formatted Kafka storage but no {STATE_FILE}; remove the data dir"
                )
            state = self._state = self._plan_state()
        else:
            self._merge_requested(state)
        nodes = self._nodes()
        all_ids = [n["node_id"] for n in nodes]
        to_start = [n for n in nodes if not self._pid_alive(n)]
        if not to_start:
            deadline = time.monotonic() + timeout
            while not self._ready(all_ids):
                if time.monotonic() > deadline:
                    raise LocalKafkaError(
                        "\n".join(
                            self._failure_report(
                                n, f"runs but did not answer within {timeout:.0f}s"
                            )
                            for n in nodes
                        )
                    )
                time.sleep(0.3)
            log.info("local Kafka is already running at %s", self.bootstrap_servers)
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._apply_security()
        for node in nodes:
            self._write_properties(node)
        self._write_state()
        unformatted = [n for n in to_start if not self._is_formatted(n)]
        if unformatted:
            self._format(unformatted)
        launched: list[dict[str, Any]] = []
        t0 = time.monotonic()
        try:
            for node in to_start:
                self._launch(node)
                launched.append(node)
            self._wait_ready(launched, all_ids, timeout)
        except BaseException:  # including Ctrl-C: leave no half-started nodes behind
            self._terminate(launched, 10)
            self._write_state()
            raise
        log.info(
            "local Kafka ready at %s after %.1fs", self.bootstrap_servers, time.monotonic() - t0
        )
        return True

    def start_node(self, node_id: int, wait: bool = True, timeout: float = 90) -> None:
        """Start one stopped node (for failure tests); wait until it is registered again."""

        def _do() -> None:
            if self._refresh() is None:
                raise LocalKafkaError(f"no local Kafka cluster in {self.data_dir}; start it first")
            node = self._node(node_id)
            if self._pid_alive(node):
                return
            self._write_properties(node)
            self._launch(node)
            if wait:
                self._wait_ready([node], [node_id], timeout)

        self._locked(_do)

    # ---- stopping ----------------------------------------------------------------------

    def stop(self, timeout: float = 30) -> bool:
        """Stop every node (SIGTERM, SIGKILL after `timeout`); False when none was running."""

        def _do() -> bool:
            if self._refresh() is None:
                return False
            stopped = self._terminate(self._nodes(), timeout)
            self._write_state()
            return bool(stopped)

        if not self.state_path.exists():
            return False
        return self._locked(_do)

    def stop_node(self, node_id: int, timeout: float = 30) -> bool:
        """Stop one node (for failure tests); False when it was not running."""

        def _do() -> bool:
            if self._refresh() is None:
                return False
            stopped = self._terminate([self._node(node_id)], timeout)
            self._write_state()
            return bool(stopped)

        return self._locked(_do)

    # ---- looking -----------------------------------------------------------------------

    def is_running(self) -> bool:
        """True when every node's process is alive."""
        if self._refresh() is None:
            return False
        return all(self._pid_alive(n) for n in self._nodes())

    def status(self) -> dict[str, Any]:
        """Per-node pid/alive/port and whether the cluster answers, as plain JSON-able data."""
        state = self._refresh()
        nodes = []
        for node in self._nodes():
            alive = self._pid_alive(node)
            nodes.append(
                {
                    "node_id": node["node_id"],
                    "pid": node["pid"] if alive else None,
                    "alive": alive,
                    "port": node["port"],
                    "controller_port": node["controller_port"],
                    "log": str(self.node_dir(node["node_id"]) / "kafka.out"),
                }
            )
        info = self.describe() if any(n["alive"] for n in nodes) else None
        registered = sorted(
            b["broker_id"] for b in (info or {}).get("brokers", []) if not b.get("is_fenced")
        )
        return {
            "data_dir": str(self.data_dir),
            "kafka_version": (state or {}).get("kafka_version", KAFKA_VERSION),
            "cluster_id": self.cluster_id,
            "bootstrap_servers": self.bootstrap_servers if state else None,
            "running": bool(nodes) and all(n["alive"] for n in nodes),
            "reachable": info is not None,
            "brokers_registered": registered,
            "nodes": nodes,
        }

    def __repr__(self) -> str:
        return f"LocalCluster({str(self.data_dir)!r}, nodes={self.nodes}, bootstrap={self.bootstrap_servers!r})"
