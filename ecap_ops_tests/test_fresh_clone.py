"""The README's own commands in a fresh clone of the committed HEAD (issue 11).

`make run` until the Dagster UI answers and the catalog's five topics exist, Ctrl-C (SIGINT
to make's process group, as a terminal sends it), then nothing of it may be left but the
broker, which `make stop` stops; and `python3 scripts/manage_kafka.py list-topics` with the
system Python. The clone reuses this checkout's `.venv` and Kafka jars through symlinks (its
pyproject.toml is dated back so `make` never reinstalls the shared venv) and runs its own
code through PYTHONPATH."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ecap_ops.catalog import load_catalog
from ecap_ops.localkafka.cluster import free_port
from ecap_ops_tests.helpers import kafka_tool

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"
# What a newcomer took for errors at start-up (issue 11, defect 10).
NOTICES = (
    "SupersessionWarning",
    "Found a dagster instance configuration value",
    "BetaWarning",
    "Editable installation",
    "Traceback",
)


def marked(marker: str) -> dict[int, str]:
    """Live processes started by this test's `make` (they inherit ECAP_TEST_MARK)."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if f"ECAP_TEST_MARK={marker}".encode() in environ and ") Z " not in stat:
            found[int(pid)] = cmd[:160].decode(errors="replace")
    return found


def wait_until(what: str, check, timeout: float, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception:  # noqa: BLE001 - retried until the deadline
            pass
        time.sleep(1)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status == 200


def test_readme_commands_work_from_a_fresh_clone(kafka_lib, tmp_path):
    clone = tmp_path / "ecap-ops"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    (clone / ".venv").symlink_to(VENV)
    (clone / ".cache").mkdir()
    (clone / ".cache" / "kafka").symlink_to(kafka_lib.parent.parent)
    old = time.mktime((2000, 1, 1, 0, 0, 0, 0, 0, -1))
    os.utime(clone / "pyproject.toml", (old, old))
    up_to_date = subprocess.run(["make", "-q", ".venv/.installed"], cwd=clone, timeout=60)
    assert up_to_date.returncode == 0, "make would reinstall the shared .venv; not running it"

    marker = f"{os.getpid()}-{time.monotonic_ns()}"
    kafka_port, dagster_port = free_port(), free_port()
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KAFKA_", "ECAP_", "DAGSTER_", "PYTEST_")) and k != "VIRTUAL_ENV"
    }
    env.update(
        HOME=str(home),
        PYTHONPATH=str(clone),
        KAFKA_PORT=str(kafka_port),
        DAGSTER_PORT=str(dagster_port),
        ECAP_TEST_MARK=marker,
    )
    log = tmp_path / "make-run.log"
    bootstrap = f"127.0.0.1:{kafka_port}"
    make = subprocess.Popen(
        ["make", "run"],
        cwd=clone,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as in a terminal
    )
    try:
        url = f"http://127.0.0.1:{dagster_port}"
        wait_until("the Dagster UI", lambda: http_ok(f"{url}/server_info"), 240, log)
        names = set(load_catalog(env="dev").names())
        wait_until(
            "the catalog's five topics",
            lambda: names <= set(kafka_tool(bootstrap, "kafka-topics", "--list").stdout.split()),
            60,
            log,
        )
        assert len(names) == 5
        wait_until("the ready message", lambda: f"Dagster UI: {url}" in log.read_text(), 30, log)
        status = subprocess.run(
            [str(clone / ".venv" / "bin" / "ecap-ops"), "broker", "status", "-o", "json"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        brokers = {n["pid"] for n in json.loads(status.stdout)["nodes"]}
        assert brokers and brokers < set(marked(marker)), (brokers, marked(marker))
        assert len(marked(marker)) > len(brokers) + 3  # make, the wrapper, dagster and its children

        # Ctrl-C: SIGINT to the terminal's foreground process group, i.e. make's.
        os.killpg(make.pid, signal.SIGINT)
        make.wait(timeout=120)
        left = marked(marker)
        assert set(left) == brokers, f"left running after Ctrl-C: {left}"
        text = log.read_text(errors="replace")
        assert "Dagster stopped. Kafka still runs on" in text
        for notice in NOTICES:
            assert notice not in text, f"{notice!r} in make run's output:\n{text[-3000:]}"

        # The setup guide's script, with the system Python, as written.
        listed = subprocess.run(
            [SYSTEM_PYTHON, "scripts/manage_kafka.py", "list-topics"],
            cwd=clone,
            env={"PATH": "/usr/bin:/bin", "HOME": str(home), "KAFKA_BOOTSTRAP_SERVERS": bootstrap},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert listed.returncode == 0, listed.stderr
        assert "Traceback" not in listed.stderr
        assert names <= set(listed.stdout.split()), listed.stdout

        stopped = subprocess.run(
            ["make", "stop"], cwd=clone, env=env, capture_output=True, timeout=120
        )
        assert stopped.returncode == 0, stopped.stderr
        wait_until("every process of make run to end", lambda: not marked(marker), 30, log)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(timeout=30)
        subprocess.run(["make", "stop"], cwd=clone, env=env, capture_output=True, timeout=120)
        for pid in marked(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
