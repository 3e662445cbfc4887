"""A newcomer's first hour (issue 11): `make test` and `make run` say what system tools they
need before they start, the setup guide's scripts work with the system Python, `snapshot`
takes `-o/--output table|json` like every read command and `--file PATH` for its file,
`restore` without a path offers the newest snapshot, the CLI and `make run`'s Dagster keep
snapshots in one place, and `make run`'s Ctrl-C leaves nothing running.

The fresh-clone walk through the README's own commands is in test_fresh_clone.py."""

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecap_ops.cli import main
from ecap_ops.gateway import KafkaGateway
from ecap_ops.services import dr
from ecap_ops_tests.helpers import kafka_tool

REPO = Path(__file__).resolve().parents[1]
DEPS_SCRIPT = REPO / "scripts" / "install-system-deps.sh"
SYSTEM_PYTHON = "/usr/bin/python3"
# Every tool install-system-deps.sh knows, with the Debian package that brings it.
TOOLS = {
    "java": "openjdk-17-jre-headless",
    "mvn": "maven",
    "kcat": "kcat",
    "chromium": "chromium",
    "chromedriver": "chromium-driver",
    "docker-compose": "docker-compose",
}
RUN_TOOLS = {"java", "mvn"}


# -- system tools: one place, checked before anything starts -----------------------------


@pytest.fixture(scope="module")
def bare_bin(tmp_path_factory) -> Path:
    """A PATH directory with every command of this machine except the tools above, sudo,
    apt-get and id (each test adds fakes of its own): a machine without the Debian extras."""
    d = tmp_path_factory.mktemp("bare-bin")
    skip = set(TOOLS) | {"sudo", "apt-get", "id"}
    for src in ("/usr/local/bin", "/usr/bin", "/bin"):
        for entry in sorted(Path(src).iterdir()) if Path(src).is_dir() else []:
            target = d / entry.name
            if entry.name not in skip and not target.exists() and os.access(entry, os.X_OK):
                target.symlink_to(entry)
    return d


def fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)


def present_bin(tmp: Path, tools: set[str], uid: int) -> Path:
    """A PATH directory with the real `tools` and an `id` that reports `uid`."""
    tmp.mkdir(parents=True, exist_ok=True)
    for t in tools:
        real = shutil.which(t)
        assert real, f"this test machine lacks {t}, which the test relies on"
        (tmp / t).symlink_to(real)
    fake(tmp, "id", f'[ "$1" = "-u" ] && echo {uid} || /usr/bin/id "$@"')
    return tmp


def run_deps(path: str, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    return subprocess.run(
        ["/bin/bash", str(DEPS_SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(missing=st.sets(st.sampled_from(sorted(TOOLS))), profile=st.sampled_from(["run", "test"]))
def test_check_names_exactly_the_missing_tools_and_the_command_that_installs_them(
    bare_bin, tmp_path_factory, missing, profile
):
    here = present_bin(tmp_path_factory.mktemp("present"), set(TOOLS) - missing, uid=1000)
    out = run_deps(f"{here}:{bare_bin}", "--check", profile)
    relevant = missing if profile == "test" else missing & RUN_TOOLS
    assert "Traceback" not in out.stderr
    if not relevant:
        assert out.returncode == 0, out.stderr
        assert out.stdout == "" and out.stderr == ""  # nothing to say when all is there
        return
    assert out.returncode == 1
    named = set(re.findall(r"^  - (\S+) \(", out.stderr, re.M))
    assert named == relevant, out.stderr
    install = re.search(r"sudo apt-get install -y (.*)$", out.stderr, re.M)
    assert install and set(install.group(1).split()) == {TOOLS[t] for t in relevant}
    assert f"make {profile}" in out.stderr


@settings(max_examples=60, deadline=None)
@given(
    arg=st.text(min_size=1, max_size=200).filter(
        lambda a: a not in ("run", "test", "--check", "-h", "--help") and "\x00" not in a
    )
)
def test_hostile_arguments_to_the_deps_script_are_refused_with_a_short_message(arg):
    out = subprocess.run(
        ["/bin/bash", str(DEPS_SCRIPT), "--check", arg],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
    )
    assert out.returncode == 2, (arg, out.stderr)
    assert "unknown argument" in out.stderr and "expected run, test or --check" in out.stderr
    assert len(out.stderr) < 200  # a short prefix of the value, never all of it


def test_as_root_missing_packages_are_installed_once_then_nothing_happens(bare_bin, tmp_path):
    calls = tmp_path / "apt-calls"
    here = present_bin(tmp_path / "present", set(TOOLS) - {"kcat"}, uid=0)
    # apt-get "installs" kcat by putting a kcat on PATH, as the real one would.
    fake(
        here,
        "apt-get",
        f'echo "$*" >> {calls}\n'
        f'if [ "$1" = install ]; then printf "#!/bin/sh\\nexit 0\\n" > {here}/kcat; chmod +x {here}/kcat; fi',
    )
    first = run_deps(f"{here}:{bare_bin}", "test")
    assert first.returncode == 0, first.stderr
    assert "installing system packages for make test: kcat" in first.stdout
    lines = calls.read_text().splitlines()
    assert lines[0] == "update -qq"
    assert lines[1].startswith("install -y") and lines[1].split()[-1] == "kcat"
    again = run_deps(f"{here}:{bare_bin}", "test")
    assert again.returncode == 0 and again.stdout == "" and again.stderr == ""
    assert len(calls.read_text().splitlines()) == 2  # idempotent: apt-get not called again


def test_as_root_an_install_that_does_not_bring_the_tool_is_an_error(bare_bin, tmp_path):
    here = present_bin(tmp_path / "present", set(TOOLS) - {"kcat"}, uid=0)
    fake(here, "apt-get", "exit 0")  # "succeeds" but installs nothing
    out = run_deps(f"{here}:{bare_bin}", "test")
    assert out.returncode == 1
    assert "still missing" in out.stderr and "kcat" in out.stderr


def test_make_test_stops_before_pytest_naming_what_to_install(bare_bin, tmp_path):
    """Issue 11, defect 1: without kcat (and not root), `make test` used to run the suite and
    fail 5 tests with FileNotFoundError; now it stops first with one message."""
    here = present_bin(tmp_path / "present", set(TOOLS) - {"kcat", "chromium"}, uid=1000)
    env = {
        "PATH": f"{here}:{bare_bin}",
        "HOME": os.environ.get("HOME", "/root"),
        # Were pytest reached, it would only collect: the test must never run the suite.
        "PYTEST_ADDOPTS": "--collect-only -q -p no:cacheprovider",
    }
    out = subprocess.run(
        # -o: never reinstall the shared .venv from here, whatever pyproject.toml's age.
        ["/usr/bin/make", "-C", str(REPO), "-o", ".venv/.installed", "test"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode != 0, out.stdout[-2000:]
    assert "collected" not in out.stdout and "tests collected" not in out.stdout
    assert "make test needs these system tools" in out.stderr
    assert "kcat" in out.stderr and "chromium" in out.stderr
    assert "sudo apt-get install -y kcat chromium" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_ci_script_and_the_makefile_check_tools_in_one_place():
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M), ci
    makefile = (REPO / "Makefile").read_text()
    dry = subprocess.run(
        ["/usr/bin/make", "-C", str(REPO), "-n", "-o", ".venv/.installed", "test"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    steps = dry.stdout.splitlines()
    deps = [i for i, s in enumerate(steps) if "scripts/install-system-deps.sh" in s]
    pytest_at = [i for i, s in enumerate(steps) if "-m pytest" in s]
    assert deps and pytest_at and max(deps) < pytest_at[0], dry.stdout
    assert "apt-get" not in makefile  # the package list lives only in the script


# -- the setup guide's scripts with the system Python ------------------------------------


def _system_python_env(**extra) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KAFKA_", "ECAP_OPS_MANAGE"))
        and k not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env["PATH"] = "/usr/bin:/bin"
    env.update(extra)
    return env


@pytest.mark.kafka
def test_manage_kafka_py_works_with_the_system_python(kafka_bootstrap, unique_name):
    """Issue 11, defect 4: `python3 scripts/manage_kafka.py ...` ended in
    ModuleNotFoundError: No module named 'kafka' outside the project's venv."""
    assert Path(SYSTEM_PYTHON).is_file()
    created = kafka_tool(
        kafka_bootstrap,
        "kafka-topics",
        "--create",
        "--topic",
        unique_name,
        "--partitions",
        "2",
        "--replication-factor",
        "1",
    )
    assert created.returncode == 0, created.stderr
    out = subprocess.run(
        [SYSTEM_PYTHON, "scripts/manage_kafka.py", "list-topics", "--output", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=_system_python_env(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert unique_name in out.stdout
    assert unique_name in json.dumps(json.loads(out.stdout))


@pytest.mark.parametrize("script", ["manage_kafka.py", "kafka-topics.sh"])
def test_the_guide_scripts_without_a_venv_say_to_run_make_setup(tmp_path, script):
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / script, checkout / "scripts" / script)
    (checkout / "ecap_ops").symlink_to(REPO / "ecap_ops")  # the code, but no .venv
    argv = (
        [SYSTEM_PYTHON, str(checkout / "scripts" / script), "list-topics"]
        if script.endswith(".py")
        else ["/bin/bash", str(checkout / "scripts" / script), "list-topics"]
    )
    out = subprocess.run(argv, capture_output=True, text=True, env=_system_python_env(), timeout=60)
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and "ModuleNotFoundError" not in out.stderr
    assert "make setup" in out.stderr and str(checkout) in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1  # one line


# -- snapshot: -o/--output is the report's format, --file the file ---------------------


def invoke(bootstrap: str, *args: str):
    return CliRunner().invoke(main, ["-b", bootstrap, *args])


@pytest.mark.kafka
def test_snapshot_output_json_prints_json_and_writes_no_file_named_json(
    kafka_bootstrap, tmp_path, monkeypatch
):
    """Issue 11, defect 3: `ecap-ops snapshot --output json` wrote a file named `json`."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ECAP_SNAPSHOT_DIR", str(tmp_path / "snaps"))
    out = invoke(kafka_bootstrap, "snapshot", "--output", "json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert not (tmp_path / "json").exists()
    assert Path(doc["path"]).parent == tmp_path / "snaps"
    assert dr.list_snapshots(tmp_path / "snaps") == [Path(doc["path"])]
    short = invoke(kafka_bootstrap, "snapshot", "-o", "json", "--file", str(tmp_path / "s.json"))
    assert short.exit_code == 0, short.output
    assert json.loads(short.stdout)["path"] == str(tmp_path / "s.json")
    assert (
        dr.load_snapshot(tmp_path / "s.json").summary()["checksum"]
        == json.loads(short.stdout)["checksum"]
    )


@settings(max_examples=150, deadline=None)
@given(
    value=st.text(min_size=0, max_size=300).filter(
        lambda v: v not in ("table", "json") and "\x00" not in v
    )
)
def test_snapshot_output_takes_only_a_format_and_points_to_file_for_a_path(value):
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
        before = set(os.listdir("."))
        out = CliRunner().invoke(main, ["-b", "127.0.0.1:1", "snapshot", f"--output={value}"])
        assert out.exit_code == 1, out.output
        assert out.exception is None or isinstance(out.exception, SystemExit)
        assert "Traceback" not in out.output
        assert "not a report format" in out.output and "--file PATH" in out.output
        assert "table or json" in out.output
        assert set(os.listdir(".")) == before  # nothing written, no cluster contacted
        if len(value) > 60:
            assert value not in out.output  # a short prefix, never the whole value


def test_every_read_command_takes_output_table_or_json_and_no_other_output_option():
    """The README promises `--output json` on every read command; no command uses
    `--output` for anything but the report's format."""
    from ecap_ops.cli import COMMANDS

    ctx_main = main
    seen = []
    for name in sorted(COMMANDS):
        cmd = ctx_main.get_command(None, name)
        subs = list(cmd.commands.values()) if hasattr(cmd, "commands") else [cmd]
        for c in subs:
            for p in c.params:
                if "--output" in getattr(p, "opts", []):
                    seen.append(c.name)
                    assert "-o" in p.opts, (c.name, p.opts)
                    assert p.default == "table", (c.name, p.default)
                    runner = CliRunner()
                    bad = runner.invoke(
                        main,
                        [name, *([c.name] if c.name != name else []), "--output", "out.json"],
                    )
                    assert bad.exit_code == 1, (c.name, bad.output)
    assert "snapshot" in seen and "restore" in seen


def test_dr_drill_takes_the_snapshot_once():
    out = CliRunner().invoke(
        main, ["-b", "127.0.0.1:1", "dr-drill", "a.json", "--snapshot", "b.json"]
    )
    assert out.exit_code == 1 and "not both" in out.output


# -- restore without a path: the newest snapshot, still a dry run ------------------------


@pytest.mark.kafka
def test_restore_without_a_path_plans_from_the_newest_snapshot_and_changes_nothing(
    kafka_settings, tmp_path, monkeypatch, unique_name
):
    """Issue 11, defect 6: `ecap-ops restore` without a path offers the newest snapshot (as
    the Dagster job dr_restore does); still a dry run unless --execute."""
    snaps = tmp_path / "snaps"
    monkeypatch.setenv("ECAP_SNAPSHOT_DIR", str(snaps))
    empty = invoke(kafka_settings.bootstrap_servers, "restore")
    assert empty.exit_code == 1 and f"no snapshot in {snaps}" in empty.output
    with KafkaGateway(kafka_settings) as gw:
        gw.require(
            gw.create_topics({unique_name: {"num_partitions": 3, "replication_factor": 1}}),
            "creating",
        )
    older = invoke(kafka_settings.bootstrap_servers, "snapshot", "-o", "json")
    assert older.exit_code == 0, older.output
    time.sleep(0.01)
    newer = invoke(kafka_settings.bootstrap_servers, "snapshot", "-o", "json")
    assert newer.exit_code == 0, newer.output
    newest = json.loads(newer.stdout)["path"]
    assert json.loads(older.stdout)["path"] != newest
    with KafkaGateway(kafka_settings) as gw:
        gw.require(gw.delete_topics([unique_name]), "deleting")
        deadline = time.monotonic() + 30
        while unique_name in gw.list_topic_names() and time.monotonic() < deadline:
            time.sleep(0.2)
        before = sorted(gw.list_topic_names())
    plan = invoke(kafka_settings.bootstrap_servers, "restore", "--topic", unique_name, "-o", "json")
    assert plan.exit_code == 2, plan.output  # a dry run that found changes
    assert f"Using the newest snapshot in {snaps}: {Path(newest).name}" in plan.stderr
    doc = json.loads(plan.stdout)
    assert doc["snapshot"] == newest and doc["dry_run"] is True and doc["executed"] is False
    assert [c["name"] for c in doc["plan"]["creates"]] == [unique_name]
    with KafkaGateway(kafka_settings) as gw:
        assert sorted(gw.list_topic_names()) == before  # nothing changed


# -- one snapshot directory for the CLI and `make run`'s Dagster -------------------------


def _make_run_dagster_env(env: dict[str, str], *make_args: str) -> dict[str, str]:
    """The variables `make run` gives Dagster, read from its dry run."""
    dry = subprocess.run(
        ["/usr/bin/make", "-C", str(REPO), "-n", "-o", ".venv/.installed", "run", *make_args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    text = dry.stdout.replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if "run_in_group.py" in ln)
    assignments = line[: line.index(" exec ")]
    words = shlex.split(assignments[assignments.rindex("DAGSTER_HOME=") :])
    found = {}
    for w in words:
        m = re.match(r"^([A-Z_]+)=(.*)$", w)
        if not m:
            break
        found[m.group(1)] = m.group(2)
    return found


@pytest.mark.parametrize(
    "shell_env, make_args",
    [
        ({}, ()),
        ({"DAGSTER_HOME": "/srv/dagster-home"}, ()),
        ({}, ("DAGSTER_HOME=/tmp/elsewhere",)),
        ({"ECAP_SNAPSHOT_DIR": "/data/snaps"}, ()),
    ],
)
def test_make_run_and_the_cli_keep_snapshots_in_the_same_directory(tmp_path, shell_env, make_args):
    """Issue 11, defect 6: the CLI wrote to ~/.ecap-ops/snapshots, Dagster under `make run`
    to .dagster_home/snapshots."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DAGSTER_HOME", "ECAP_SNAPSHOT_DIR", "ECAP_STATE_DIR", "ECAP_CHANGE_LOG")
    }
    shell = {**base, "HOME": str(tmp_path), **shell_env}
    dagster_vars = _make_run_dagster_env(shell, *make_args)
    cli_dir = dr.snapshot_dir(shell)
    dagster_dir = dr.snapshot_dir({**shell, **dagster_vars})
    assert dagster_dir == cli_dir, (dagster_vars, cli_dir)
    if not shell_env:
        assert cli_dir == tmp_path / ".ecap-ops" / "snapshots"


# -- make run's Ctrl-C: the process group, and nothing left ------------------------------


STUBBORN = r"""
import signal, subprocess, sys, time
# A Dagster-like tree: a child that ignores SIGINT and SIGTERM, one in a session of its own,
# and a parent that exits on SIGINT (leaving them). Each child says when it is set up.
deaf = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ok', flush=True); time.sleep(300)"
away = "import time; print('ok', flush=True); time.sleep(300)"
kids = [
    subprocess.Popen([sys.executable, "-c", deaf], stdout=subprocess.PIPE, text=True),
    subprocess.Popen([sys.executable, "-c", away], stdout=subprocess.PIPE, text=True, start_new_session=True),
]
for k in kids:
    k.stdout.readline()
signal.signal(signal.SIGINT, lambda *a: sys.exit(0))
print("started", flush=True)
time.sleep(300)
"""

POLITE = r"""
import signal, subprocess, sys, time
kid = "import signal, sys, time; signal.signal(signal.SIGINT, lambda *a: sys.exit(0)); print('ok', flush=True); time.sleep(300)"
kids = [subprocess.Popen([sys.executable, "-c", kid], stdout=subprocess.PIPE, text=True) for _ in range(2)]
for k in kids:
    k.stdout.readline()
try:  # entered before saying "started": a Ctrl-C right after it lands here too
    print("started", flush=True)
    time.sleep(300)
except KeyboardInterrupt:
    for k in kids: k.wait()
"""


def marked_processes(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if f"ECAP_TEST_MARK={marker}".encode() in environ.split(b"\0") and ") Z " not in stat:
            found.append(f"{pid} {Path(f'/proc/{pid}/cmdline').read_bytes()[:120]!r}")
    return found


# The stubborn tree outlives any grace, so a short one keeps the test short; the polite one
# stops by itself within any grace, so its grace is an upper bound with room for two loaded
# cores, not a race.
@pytest.mark.parametrize("tree, grace_s, expect_rc", [(STUBBORN, 2, 1), (POLITE, 30, 0)])
def test_ctrl_c_on_run_in_group_stops_the_whole_tree(tmp_path, tree, grace_s, expect_rc):
    """Issue 11, defect 10: Ctrl-C on `make run` left dagster dev's processes running.
    The wrapper `make run` puts around Dagster returns only when nothing it started is left."""
    marker = f"{os.getpid()}-{time.monotonic_ns()}"
    script = tmp_path / "tree.py"
    script.write_text(tree)
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "scripts" / "run_in_group.py"),
            "--grace",
            str(grace_s),
            "--stopped-message",
            "all stopped",
            "--",
            sys.executable,
            str(script),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ECAP_TEST_MARK": marker},
        start_new_session=True,  # like make in a terminal: Ctrl-C goes to this group
    )
    try:
        assert proc.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 30
        while len(marked_processes(marker)) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(marked_processes(marker)) == 4, marked_processes(marker)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == expect_rc, err
        assert "all stopped" in err and "Traceback" not in err
        assert marked_processes(marker) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for line in marked_processes(marker):
            os.kill(int(line.split()[0]), signal.SIGKILL)


@settings(max_examples=200, deadline=None)
@given(raw=st.one_of(st.text(max_size=400), st.integers().map(str)))
def test_snapshot_keep_takes_a_positive_whole_number_and_names_anything_else_briefly(raw):
    from ecap_ops.errors import ConfigError

    try:
        n = dr.snapshot_keep({"ECAP_SNAPSHOT_KEEP": raw})
    except ConfigError as exc:
        msg = str(exc)
        assert msg.startswith("ECAP_SNAPSHOT_KEEP: ")
        assert len(msg) < 120, msg  # a short prefix of the value, never all of it
        return
    if raw:
        assert n == int(raw) and n >= 1
    else:
        assert n == dr.DEFAULT_KEEP
