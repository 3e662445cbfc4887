"""A local cluster's layout, decided before any JVM starts: `cluster.json` (cluster id,
ports, directory ids, pids), each node's `server.properties`, and its formatted KRaft
storage. `ClusterLayout` holds it; `LocalCluster` (cluster.py) adds the processes.

Ports and the cluster id are chosen once and kept: formatted KRaft storage remembers the
controller endpoints, so a restart must reuse them.
"""

import base64
import json
import os
import random
import socket
import subprocess
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ecap_ops.errors import LocalKafkaError
from ecap_ops.localkafka.jars import KAFKA_VERSION, java_command
from ecap_ops.localkafka.security import LISTENER_FILE, SECURITY_DIR, SecureListener
from ecap_ops.settings import KafkaSettings

STATE_FILE = "cluster.json"
STATE_VERSION = 1
# C1-only JIT: ~15-30% faster startup on 2 cores, at some cost in peak throughput (pass
# jvm_opts=() for benchmarks).
DEFAULT_BROKER_JVM_OPTS = ("-XX:TieredStopAtLevel=1",)


# Ports the kernel hands out for port-0 binds and outgoing connections (Linux's default
# range); a port picked here for a JVM to bind seconds later stays clear of them.
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
PICK_FLOOR = 20000


def _pick_range() -> range | None:
    """Ports below the kernel's ephemeral range (from PICK_FLOOR), or None when unknown/too small."""
    try:
        low = int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return range(PICK_FLOOR, low) if low - PICK_FLOOR >= 1000 else None


def free_ports(count: int, host: str = "127.0.0.1", exclude: Iterable[int] = ()) -> list[int]:
    """`count` distinct ports that are free on `host` right now (all bound at once, then released).

    Picked at random below the kernel's ephemeral range when it is known: a port the kernel
    gave out (another process's port-0 listener or outgoing connection) can then never take
    the port between this pick and the broker's bind a few seconds later. Elsewhere the
    kernel picks (port 0), and `LocalCluster.start` retries a new cluster on fresh ports."""
    excluded = set(exclude)
    socks: list[socket.socket] = []
    ports: list[int] = []
    pick = _pick_range()
    candidates = random.sample(pick, min(len(pick), count + len(excluded) + 200)) if pick else []
    try:
        for candidate in candidates:
            if candidate in excluded:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, candidate))
            except OSError:
                s.close()
                continue
            socks.append(s)
            ports.append(candidate)
            if len(ports) == count:
                return ports
        for _ in range(count + len(excluded) + 10):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((host, 0))
            port = s.getsockname()[1]
            if port not in excluded and port not in ports:
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


class ClusterLayout:
    """A local KRaft cluster's recorded state, addresses, node configuration and storage."""

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
