"""`make test`'s layout holds: on two pytest-xdist workers with `--dist loadgroup`, the
broker tests are in two groups, each run by one worker, one test at a time: the modules
that use a cluster started on demand (so it starts once) and the others
(ecap_ops_tests/conftest.py). pytest 9.2 with pytest-xdist 3.8 silently broke the grouping
(the group was dropped from the node id and tests of one group ran on both workers side by
side); this runs the real hook in a small suite of its own and looks where each test ran."""

import json
import os
import subprocess
import sys
import textwrap

CONFTEST = """
import pytest
from ecap_ops_tests.conftest import pytest_collection_modifyitems  # the suite's own hook

@pytest.fixture(scope="session")
def kafka_lib():
    return "stands for the Kafka jars"

@pytest.fixture(scope="session")
def kafka_cluster_b(kafka_lib):
    return "stands for the second cluster, started on demand"
"""

RECORD = """
import json, os, pathlib, time
import pytest

def record(name):
    out = pathlib.Path(os.environ["LAYOUT_OUT"]) / f"{name}.json"
    out.write_text(json.dumps({"worker": os.environ.get("PYTEST_XDIST_WORKER"),
                               "start": time.monotonic(), "end": time.monotonic() + 0.3}))
    time.sleep(0.3)
"""

MODULES = {
    # One broker module that needs only the session's broker, and two that share the
    # on-demand cluster (each has one pure-logic test too).
    "test_solo.py": """
@pytest.mark.parametrize("i", range(6))
def test_broker(kafka_lib, i):
    record(f"solo-{i}")

@pytest.mark.parametrize("i", range(3))
def test_pure(i):
    record(f"pure-solo-{i}")
""",
    "test_pair_one.py": """
@pytest.mark.parametrize("i", range(3))
def test_on_b(kafka_cluster_b, i):
    record(f"pair-one-{i}")

def test_also_broker(kafka_lib):
    record("pair-one-broker")

def test_pure():
    record("pure-pair-one")
""",
    "test_pair_two.py": """
@pytest.mark.parametrize("i", range(3))
def test_on_b(kafka_cluster_b, i):
    record(f"pair-two-{i}")

def test_pure():
    record("pure-pair-two")
""",
}


def test_broker_tests_run_in_two_groups_one_worker_each_and_a_shared_cluster_on_one(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    for name, body in MODULES.items():
        (suite / name).write_text(textwrap.dedent(RECORD) + textwrap.dedent(body))
    out = tmp_path / "out"
    out.mkdir()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(suite),
            str(suite),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LAYOUT_OUT": str(out)},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    ran = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert len(ran) == 18, sorted(ran)

    def workers(prefix: str) -> set[str]:
        return {v["worker"] for k, v in ran.items() if k.startswith(prefix)}

    solo, pair = workers("solo-"), workers("pair-")
    # Every test of a group on one worker; the modules sharing the on-demand cluster in the
    # same group (a module's tests that do not use it included); the two groups apart.
    assert len(solo) == 1, f"the session-broker group ran on {sorted(solo)}"
    assert len(pair) == 1, f"the on-demand cluster's group ran on {sorted(pair)}"
    assert solo != pair, "both broker groups ran on one worker"
    # One test at a time within a group.
    for prefix in ("solo-", "pair-"):
        spans = sorted((v["start"], v["end"]) for k, v in ran.items() if k.startswith(prefix))
        assert all(
            a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False)
        ), prefix


def test_a_failed_runs_assertion_names_the_step_and_its_cause() -> None:
    """`assert result.success, run_failures(result)`: a red run in CI says what failed."""
    import dagster as dg

    from ecap_ops_tests.helpers import run_failures

    @dg.asset
    def fine() -> int:
        return 1

    @dg.asset(deps=[fine])
    def breaks() -> None:
        try:
            raise OSError("disk full under /var/lib/kafka")
        except OSError as e:
            raise RuntimeError("could not write the pre-change snapshot") from e

    result = dg.materialize([fine, breaks], raise_on_error=False)
    assert not result.success
    text = run_failures(result)
    assert "breaks" in text and "fine:" not in text, text
    assert "could not write the pre-change snapshot" in text, text
    assert "disk full under /var/lib/kafka" in text, text
    ok = dg.materialize([fine])
    assert run_failures(ok) == "no failed step recorded"
