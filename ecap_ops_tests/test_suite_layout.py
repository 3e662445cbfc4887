"""`make test`'s layout holds: on two pytest-xdist workers with `--dist loadgroup`, every
test that needs a broker runs on one worker, one at a time, and the pure-logic tests on the
other (ecap_ops_tests/conftest.py). pytest 9.2 with pytest-xdist 3.8 silently broke this
(the group was dropped from the node id and the broker tests ran on both workers side by
side); this runs the real hook in a small suite of its own and looks where each test ran."""

import json
import subprocess
import sys
import textwrap

CONFTEST = """
import pytest
from ecap_ops_tests.conftest import pytest_collection_modifyitems  # the suite's own hook

@pytest.fixture(scope="session")
def kafka_lib():
    return "stands for the Kafka jars"
"""

TESTS = """
import json, os, pathlib, time
import pytest

def record(name):
    out = pathlib.Path(os.environ["LAYOUT_OUT"]) / f"{name}.json"
    out.write_text(json.dumps({"worker": os.environ.get("PYTEST_XDIST_WORKER"),
                               "start": time.monotonic()}))
    time.sleep(0.3)

@pytest.mark.parametrize("i", range(6))
def test_broker(kafka_lib, i):
    record(f"broker-{i}")

@pytest.mark.parametrize("i", range(6))
def test_pure(i):
    record(f"pure-{i}")
"""


def test_broker_tests_share_one_worker_and_pure_logic_runs_beside_them(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (suite / "test_layout_probe.py").write_text(textwrap.dedent(TESTS))
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
        env={**__import__("os").environ, "LAYOUT_OUT": str(out)},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    ran = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert len(ran) == 12, sorted(ran)
    broker_workers = {v["worker"] for k, v in ran.items() if k.startswith("broker-")}
    pure_workers = {v["worker"] for k, v in ran.items() if k.startswith("pure-")}
    assert len(broker_workers) == 1, f"broker tests ran on {sorted(broker_workers)}"
    assert pure_workers - broker_workers, "no pure-logic test ran beside the broker tests"


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
