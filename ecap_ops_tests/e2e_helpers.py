"""End-to-end helpers: a real Dagster (webserver + daemon, or the daemon alone) started the
way `make run` starts it, against the session's local Kafka, and always stopped again.

Each Dagster process tree runs in its own session (process group): stopping sends SIGTERM
to the whole group, waits a bounded time, then SIGKILLs what is left. Every wait is bounded
and a failure says what was being waited for, with the tail of Dagster's own log.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests
import yaml

from ecap_ops.catalog.loader import default_catalog_path
from ecap_ops.localkafka.cluster import free_port

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The local instance `make run` uses (SQLite, queued runs, one provisioning run at a time).
LOCAL_INSTANCE_YAML = REPO / "local" / "dagster.yaml"
ARTIFACTS = REPO / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"

# Variables that switch what the code location defines or how it behaves; the tests set
# them explicitly so that a developer's shell cannot change the outcome.
CONTROLLED_ENV = (
    "ECAP_ENV",
    "ECAP_CATALOG",
    "ECAP_SCHEDULES_DEFAULT",
    "ECAP_SENSORS_DEFAULT",
    "ECAP_LAG_SENSOR_INTERVAL",
    "ECAP_HEALTH_CRON",
    "ECAP_ALERT_WEBHOOK_URL",
    "ECAP_ALERT_JSONL",
    "ECAP_SNAPSHOT_DIR",
    "ECAP_DAGSTER_URL",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CAFILE",
)


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    interval: float = 1.0,
    on_timeout: Callable[[], str] | None = None,
) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - reported if the wait times out
            last_error = exc
        if time.monotonic() >= deadline:
            detail = (
                f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            )
            extra = ("\n" + on_timeout()) if on_timeout else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}{extra}")
        time.sleep(interval)


def isolated_catalog(directory: Path, env: str = "e2e") -> tuple[Path, str, str]:
    """A copy of the project's catalog whose environment `env` (an extra one, `e2e`, held to
    production's rules, unless told otherwise) has replication 1 and gives its topics a
    unique name prefix, so end-to-end runs never touch topics other tests rely on.
    Returns (catalog path, environment name, prefix)."""
    data = yaml.safe_load(default_catalog_path().read_text())
    prefix = f"e2e{uuid.uuid4().hex[:6]}."
    environments = data.setdefault("environments", {})
    environments[env] = {
        **(environments.get(env) or {}),
        "replication_factor": 1,
        "name_prefix": prefix,
    }
    # The session's broker runs no authorizer: a catalog declaring access would make every
    # production health verdict CRIT for that alone (test_access_health.py covers it).
    for section in ("principals", "acls", "users", "quotas", "access"):
        data.pop(section, None)
    path = directory / "catalog-e2e.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path, env, prefix


def dagster_env(
    home: Path, bootstrap: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a Dagster process under test: DAGSTER_HOME, the broker, and every
    switch this project reads reset to its default unless `extra` sets it."""
    env = {k: v for k, v in os.environ.items() if k not in CONTROLLED_ENV}
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "ECAP_ALERT_JSONL": str(home / "alerts.jsonl"),
            "ECAP_SNAPSHOT_DIR": str(home / "snapshots"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


def prepare_home(home: Path) -> Path:
    """A fresh DAGSTER_HOME holding the instance config `make run` uses."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(LOCAL_INSTANCE_YAML, home / "dagster.yaml")
    return home


class DagsterProcess:
    """A Dagster command (`dagster dev` or `dagster-daemon run`) in its own process group."""

    def __init__(
        self, argv: list[str], env: Mapping[str, str], log_path: Path, cwd: Path = REPO
    ) -> None:
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None

    def start(self) -> "DagsterProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return f"--- last {lines} lines of {self.log_path}:\n" + "\n".join(text[-lines:])

    def ensure_alive(self) -> None:
        if not self.alive():
            code = self.proc.returncode if self.proc else None
            raise RuntimeError(
                f"{' '.join(self.argv[:2])} exited early (code {code})\n{self.log_tail()}"
            )

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the process group, wait up to `timeout` seconds, then SIGKILL it."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if self.proc.poll() is not None and not _group_alive(pgid):
                    return
                time.sleep(0.3)
        self.proc.poll()

    def __enter__(self) -> "DagsterProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class DagsterDev(DagsterProcess):
    """`dagster dev` (webserver, daemon, code server) on a free loopback port, loading the
    code location as `make run` does, with a GraphQL helper."""

    def __init__(self, home: Path, env: Mapping[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        argv = [
            str(BIN / "dagster"),
            "dev",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-m",
            "ecap_ops",
            "-a",
            "defs",
        ]
        super().__init__(argv, env, home / "dagster-dev.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(
        self, query: str, variables: Mapping[str, Any] | None = None, timeout: float = 30
    ) -> dict:
        resp = requests.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": dict(variables or {})},
            timeout=timeout,
        )
        resp.raise_for_status()
        body = resp.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def wait_ready(self, timeout: float = 180) -> str:
        """Wait for the webserver to answer and the code location to be loaded; return its name."""

        def server_up() -> bool:
            self.ensure_alive()
            return requests.get(f"{self.url}/server_info", timeout=5).ok

        wait_for(
            f"the Dagster webserver on {self.url}", server_up, timeout, on_timeout=self.log_tail
        )

        def location_loaded() -> str | None:
            self.ensure_alive()
            data = self.graphql(
                "{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus"
                " locationOrLoadError { __typename ... on PythonError { message } } } } } }"
            )
            for entry in data["workspaceOrError"]["locationEntries"]:
                err = entry["locationOrLoadError"]
                if err and err["__typename"] == "PythonError":
                    raise AssertionError(
                        f"code location {entry['name']} failed to load: {err['message']}"
                    )
                if entry["loadStatus"] == "LOADED" and err:
                    return entry["name"]
            return None

        return wait_for(
            "the ecap_ops code location to load", location_loaded, timeout, on_timeout=self.log_tail
        )

    def run_status(self, run_id: str) -> str:
        data = self.graphql(
            "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }",
            {"id": run_id},
        )
        return data["runOrError"].get("status", data["runOrError"]["__typename"])

    def runs(self, job_name: str) -> list[dict]:
        data = self.graphql(
            "query($job: String!) { runsOrError(filter: {pipelineName: $job}) { ... on Runs { results { runId status } } } }",
            {"job": job_name},
        )
        return data["runsOrError"]["results"]


def defined_names(env: Mapping[str, str]) -> dict[str, list[str]]:
    """Jobs, schedules and sensors of the code location when loaded with `env`: asked of a
    fresh interpreter, since definitions read the environment when they are built."""
    code = (
        "import json, ecap_ops\n"
        "d = ecap_ops.defs.get_repository_def()\n"
        "print(json.dumps({'jobs': sorted(j.name for j in d.get_all_jobs() if not j.name.startswith('__')),"
        " 'schedules': sorted(s.name for s in d.schedule_defs),"
        " 'sensors': sorted(s.name for s in d.sensor_defs),"
        " 'crons': {s.name: s.cron_schedule for s in d.schedule_defs},"
        " 'default_status': {**{s.name: s.default_status.value for s in d.schedule_defs},"
        " **{s.name: s.default_status.value for s in d.sensor_defs}},"
        " 'intervals': {s.name: s.minimum_interval_seconds for s in d.sensor_defs}}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"loading ecap_ops.defs failed:\n{out.stderr[-3000:]}")
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])
