"""MirrorMaker 2 run locally by ecap-ops: one `org.apache.kafka.connect.mirror.MirrorMaker`
JVM in dedicated mode per flow (`prod->dr`), in its own process group, from its own jars
(`jars.fetch_mirror_jars`).

Layout of its folder (`<state dir>/mirror/<source>-<target>/`): `mm2.properties` (written
on every start; no password in it: each cluster's names its variable, `${env:NAME}`),
`mirror.json` (pid, started_at, flow), `mirror.out` (stdout and stderr) and
`logs/server.log`. A pid is trusted only while its command line is MirrorMaker's with this
folder's properties file (a pid reused by another process is never signalled).
"""

import json
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from ecap_ops.errors import LocalKafkaError
from ecap_ops.localkafka.jars import MIRROR_VERSION, file_lock, mirror_java_command, stoppable

log = logging.getLogger(__name__)

MAIN_CLASS = "org.apache.kafka.connect.mirror.MirrorMaker"
STATE = "mirror.json"
PROPERTIES = "mm2.properties"
OUT = "mirror.out"
# A JVM that is still alive this long after the exec has read its properties and connected.
SETTLE_S = 3.0


def _cmdline(pid: int) -> list[str] | None:
    from ecap_ops.localkafka.cluster import _cmdline as cmdline

    return cmdline(pid)


class MirrorProcess:
    """One flow's MirrorMaker 2 process and its folder."""

    def __init__(self, folder: Path | str, flow: str = ""):
        self.folder = Path(folder).expanduser().resolve()
        self.flow = flow

    @classmethod
    def for_flow(cls, state_dir: Path, source: str, target: str) -> "MirrorProcess":
        return cls(Path(state_dir) / "mirror" / f"{source}-{target}", f"{source}->{target}")

    @property
    def properties_path(self) -> Path:
        return self.folder / PROPERTIES

    @property
    def out_path(self) -> Path:
        return self.folder / OUT

    def _state(self) -> dict[str, Any]:
        try:
            data = json.loads((self.folder / STATE).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_state(self, state: dict[str, Any]) -> None:
        tmp = self.folder / (STATE + ".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, self.folder / STATE)

    def pid(self) -> int | None:
        """The pid of this flow's running MirrorMaker, or None."""
        pid = self._state().get("pid")
        if not isinstance(pid, int) or pid <= 0:
            return None
        cmd = _cmdline(pid)
        if not cmd or MAIN_CLASS not in cmd or str(self.properties_path) not in cmd:
            return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self, properties_text: str, env: dict[str, str] | None = None) -> bool:
        """Write the properties and start MirrorMaker unless it runs; False when it already
        did (the properties are then left as they are: stop it first to change them)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with file_lock(self.folder / ".lock", 60):
            if self.is_running():
                return False
            tmp = self.folder / (PROPERTIES + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(properties_text)
            os.replace(tmp, self.properties_path)
            (self.folder / "logs").mkdir(exist_ok=True)
            cmd = mirror_java_command(
                [str(self.properties_path)],
                jvm_opts=(f"-Dkafka.logs.dir={self.folder / 'logs'}",),
            )
            with open(self.out_path, "ab") as out:
                out.write(
                    f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting MirrorMaker 2 {self.flow}\n".encode()
                )
                out.flush()
                proc = subprocess.Popen(
                    stoppable(cmd),
                    cwd=self.folder,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env={**os.environ, **(env or {})},
                )
            self._write_state(
                {
                    "pid": proc.pid,
                    "started_at": time.time(),
                    "flow": self.flow,
                    "version": MIRROR_VERSION,
                }
            )
            deadline = time.monotonic() + SETTLE_S
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise LocalKafkaError(
                        f"MirrorMaker 2 ({self.flow}) exited at start (exit code {proc.returncode}); "
                        f"last lines of {self.out_path}:\n{self.tail()}"
                    )
                time.sleep(0.2)
            log.info("started MirrorMaker 2 %s (pid %s)", self.flow, proc.pid)
            return True

    def stop(self, timeout: float = 30) -> bool:
        """SIGTERM its process group, SIGKILL after `timeout`; False when it was not running."""
        if not self.folder.exists():
            return False
        with file_lock(self.folder / ".lock", 60):
            pid = self.pid()
            if pid is None:
                return False
            self._signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.pid() is not None and time.monotonic() < deadline:
                self._reap(pid)
                time.sleep(0.2)
            if self.pid() is not None:
                log.warning(
                    "MirrorMaker 2 %s did not stop in %.0fs; killing it", self.flow, timeout
                )
                self._signal(pid, signal.SIGKILL)
                end = time.monotonic() + 10
                while self.pid() is not None and time.monotonic() < end:
                    self._reap(pid)
                    time.sleep(0.1)
            if self.pid() is not None:
                raise LocalKafkaError(f"could not stop MirrorMaker 2 {self.flow} (pid {pid})")
            state = self._state()
            state["pid"] = None
            state["stopped_at"] = time.time()
            self._write_state(state)
            return True

    @staticmethod
    def _reap(pid: int) -> None:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass

    @staticmethod
    def _signal(pid: int, sig: signal.Signals) -> None:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def tail(self, lines: int = 20) -> str:
        from ecap_ops.localkafka.cluster import _tail

        return _tail(self.out_path, lines)

    def status(self) -> dict[str, Any]:
        state = self._state()
        pid = self.pid()
        return {
            "flow": self.flow or state.get("flow"),
            "running": pid is not None,
            "pid": pid,
            "started_at": state.get("started_at") if pid else None,
            "mirror_maker_version": MIRROR_VERSION,
            "folder": str(self.folder),
            "properties": str(self.properties_path),
            "log": str(self.out_path),
        }
