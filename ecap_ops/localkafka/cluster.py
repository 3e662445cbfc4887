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

This module runs the processes (launch, wait until ready, stop, status); the layout they
run from (cluster.json, ports and ids, server.properties, formatting the storage) is
`ecap_ops.localkafka.layout`.
"""

import logging
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ecap_ops.errors import LocalKafkaError
from ecap_ops.localkafka.jars import (
    BROKER_LOG_CONFIG,
    KAFKA_VERSION,
    file_lock,
    java_command,
    stoppable,
)
from ecap_ops.localkafka.layout import (  # re-exported: callers import them from here
    DEFAULT_BROKER_JVM_OPTS,
    STATE_FILE,
    STATE_VERSION,
    ClusterLayout,
    dev_properties,
    free_port,
    free_ports,
    port_accepts,
    port_is_free,
    random_kafka_uuid,
)
from ecap_ops.localkafka.security import SecureListener

__all__ = [
    "DEFAULT_BROKER_JVM_OPTS",
    "LOCK_TIMEOUT_S",
    "STATE_FILE",
    "STATE_VERSION",
    "LocalCluster",
    "PortTakenError",
    "dev_properties",
    "free_port",
    "free_ports",
    "port_accepts",
    "port_is_free",
    "random_kafka_uuid",
]

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 180.0
# A new cluster whose node finds a port it was given taken (another process bound it between
# the pick and the JVM's bind) is planned again on fresh ports, this many times in all.
FRESH_START_ATTEMPTS = 3
# How a broker says it could not bind a port (kafka.network.SocketServer, Kafka 4.x).
_BIND_FAILURE = re.compile(r"failed to bind to [^\s:]*:(\d+)|Address already in use")


class PortTakenError(LocalKafkaError):
    """A node's port was taken by another process; `port` is that port (0: not known)."""

    def __init__(self, message: str, port: int = 0):
        super().__init__(message)
        self.port = port


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


class LocalCluster(ClusterLayout):
    """A local KRaft cluster of `nodes` combined broker+controller processes on loopback."""

    # ---- a recorded cluster ------------------------------------------------------------

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

    # ---- starting ----------------------------------------------------------------------

    def _launch(self, node: dict[str, Any]) -> None:
        """Start one node's JVM in its own session; record its pid."""
        node_id = node["node_id"]
        for port in (node["port"], node["controller_port"]):
            if not port_is_free(port, self.host):
                raise PortTakenError(
                    f"node {node_id}: port {self.host}:{port} is already in use "
                    "(another broker? see `ecap-ops broker status`, or pick another --port)",
                    port,
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
                stoppable(cmd),
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

    def _bind_failure(self, node: dict[str, Any]) -> int | None:
        """The port this node's last launch could not bind (0: a bind failure, port unknown),
        or None when its output since that launch shows no bind failure."""
        out = _tail(self.node_dir(node["node_id"]) / "kafka.out", 400)
        last_launch = out.rsplit(f"starting node {node['node_id']}\n", 1)[-1]
        match = _BIND_FAILURE.search(last_launch)
        if match is None:
            return None
        return int(match.group(1)) if match.group(1) else 0

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
                    report = self._failure_report(node, f"exited during startup (exit code {code})")
                    taken = self._bind_failure(node)
                    if taken is not None:
                        raise PortTakenError(report, taken)
                    raise LocalKafkaError(report)
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
        fresh = state is None
        if fresh:
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
        # Ports of a new cluster that the caller did not name may be picked again: nothing
        # but this call's own formatting remembers them yet.
        attempts = FRESH_START_ATTEMPTS if fresh else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._launch_and_wait(nodes, to_start, all_ids, timeout)
            except PortTakenError as exc:
                named = {self.port + i for i in range(self.nodes)} if self.port else set()
                # A port the caller named is theirs to free; only picked ones are picked again.
                if attempt == attempts or exc.port in named or (named and not exc.port):
                    raise
                log.warning(
                    "port %s was taken before its node could bind it; starting the new cluster "
                    "on fresh ports (attempt %d of %d)",
                    exc.port,
                    attempt + 1,
                    attempts,
                )
                self._forget_storage(nodes)
                self._state = self._plan_state()
                nodes = self._nodes()
                to_start = list(nodes)
                all_ids = [n["node_id"] for n in nodes]
        raise AssertionError("unreachable")  # the loop returns or raises

    def _forget_storage(self, nodes: list[dict[str, Any]]) -> None:
        """Remove the storage this call formatted for a new cluster that never ran."""
        for node in nodes:
            shutil.rmtree(self.node_dir(node["node_id"]) / "data", ignore_errors=True)

    def _launch_and_wait(
        self,
        nodes: list[dict[str, Any]],
        to_start: list[dict[str, Any]],
        all_ids: list[int],
        timeout: float,
    ) -> bool:
        """Write each node's properties, format what is new, launch `to_start`, wait for all."""
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
