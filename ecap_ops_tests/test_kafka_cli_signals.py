"""`ecap-ops kafka-cli` killed while Kafka's tool runs: the client properties (with the SASL
password) leave nothing on disk, SIGTERM reaches the tool and the CLI exits with the tool's
code, and a SIGKILLed CLI takes the tool down with it.

The tool is kafka-console-consumer with SASL settings, pointed at a loopback port where no
broker listens: it keeps retrying, which is all these tests need (a long-running tool that
was handed the properties). Against the plaintext session broker the consumer would stop at
once on the broker's clear SASL refusal."""

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ecap_ops_tests.helpers import free_port

pytestmark = pytest.mark.kafka

WAIT_S = 90


def _pids_with(marker: str) -> list[int]:
    """Processes whose command line contains `marker` (the test's own topic name)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and b"java" in cmdline:
            found.append(int(entry.name))
    return found


def _wait(predicate, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*")]


@pytest.fixture
def nowhere(kafka_lib: Path) -> str:
    """A loopback address nothing listens on (the jars are needed to run the tool)."""
    return f"127.0.0.1:{free_port()}"


def _start_cli(bootstrap: str, tmp_path: Path, marker: str, password: str):
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ECAP_"))}
    env.update(
        TMPDIR=str(private_tmp),
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="ops",
        KAFKA_SASL_PASSWORD=password,
    )
    out = open(tmp_path / "cli.out", "wb")  # noqa: SIM115 - closed by the caller's _finish
    err = open(tmp_path / "cli.err", "wb")  # noqa: SIM115
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ecap_ops",
            "kafka-cli",
            "kafka-console-consumer",
            "--topic",
            marker,
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
    )
    return cli, private_tmp, (out, err)


def _tool_is_running(cli: subprocess.Popen, marker: str) -> int:
    """Wait until the CLI's java tool runs and has been handed the properties; its pid."""
    pid = _wait(lambda: _pids_with(marker), "the java tool to start")[0]
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"--command-config" in cmdline  # the settings did go through the properties path
    # Let it read the file and get into its retry loop; it must still be running then.
    time.sleep(3)
    assert cli.poll() is None and Path(f"/proc/{pid}").exists(), (
        "the tool ended on its own; it should keep retrying"
    )
    return pid


def _assert_nothing_left(private_tmp: Path, password: str) -> None:
    leftovers = _files_under(private_tmp)
    assert not [p for p in leftovers if "ecap-ops-client" in p.name], leftovers
    for p in leftovers:
        if p.is_file():
            assert password.encode() not in p.read_bytes(), f"the password is in {p}"


def _finish(tmp_path: Path, handles, password: str) -> str:
    for h in handles:
        h.close()
    text = (tmp_path / "cli.out").read_text(errors="replace") + (tmp_path / "cli.err").read_text(
        errors="replace"
    )
    assert password not in text
    assert "Traceback" not in text
    return text


def _stop(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_sigterm_is_forwarded_and_leaves_no_secret_on_disk(nowhere: str, tmp_path: Path):
    marker = f"sigterm-{uuid.uuid4().hex}"
    password = "pw-" + secrets.token_urlsafe(16)
    cli, private_tmp, handles = _start_cli(nowhere, tmp_path, marker, password)
    try:
        java = _tool_is_running(cli, marker)
        _assert_nothing_left(private_tmp, password)  # not even while it runs
        cli.send_signal(signal.SIGTERM)
        rc = cli.wait(timeout=WAIT_S)
        # The JVM ends on the forwarded SIGTERM with 128 + 15, and the CLI passes that on.
        assert rc == 143, rc
        _wait(lambda: not Path(f"/proc/{java}").exists(), "the java tool to end")
        assert _pids_with(marker) == []
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        _stop(_pids_with(marker))
    _assert_nothing_left(private_tmp, password)
    _finish(tmp_path, handles, password)


def test_sigkill_leaves_no_secret_on_disk_and_no_orphan_tool(nowhere: str, tmp_path: Path):
    marker = f"sigkill-{uuid.uuid4().hex}"
    password = "pw-" + secrets.token_urlsafe(16)
    cli, private_tmp, handles = _start_cli(nowhere, tmp_path, marker, password)
    try:
        java = _tool_is_running(cli, marker)
        cli.send_signal(signal.SIGKILL)
        assert cli.wait(timeout=WAIT_S) == -signal.SIGKILL
        # The tool was started to die with its parent: no orphan keeps the secret in memory.
        _wait(lambda: not Path(f"/proc/{java}").exists(), "the orphaned java tool to end")
        assert _pids_with(marker) == []
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        _stop(_pids_with(marker))
    _assert_nothing_left(private_tmp, password)
    _finish(tmp_path, handles, password)


def test_sigint_and_sighup_are_forwarded_too(nowhere: str, tmp_path: Path):
    for sig in (signal.SIGINT, signal.SIGHUP):
        run_dir = tmp_path / sig.name
        run_dir.mkdir()
        marker = f"{sig.name.lower()}-{uuid.uuid4().hex}"
        password = "pw-" + secrets.token_urlsafe(16)
        cli, private_tmp, handles = _start_cli(nowhere, run_dir, marker, password)
        try:
            java = _tool_is_running(cli, marker)
            cli.send_signal(sig)
            rc = cli.wait(timeout=WAIT_S)
            assert rc == 128 + sig, (sig.name, rc)
            _wait(lambda java=java: not Path(f"/proc/{java}").exists(), "the java tool to end")
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.wait()
            _stop(_pids_with(marker))
        _assert_nothing_left(private_tmp, password)
        _finish(run_dir, handles, password)
