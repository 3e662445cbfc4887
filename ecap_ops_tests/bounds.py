"""Time limits derived from the waits a test configures, never fixed seconds.

A command facing a cluster that does not answer must give up once the waits its settings
allow have passed. The limit a test asserts is those waits (times how many of them the
operation may run one after another), plus what starting an `ecap-ops` process costs on
this machine right now (measured once per session, under the same load as the test), with
room for a loaded scheduler. So the limit fails when a configured wait is ignored (kafka-
python's own default waits 30 s and more, per attempt) and does not fail because two cores
are busy with other tests.

Timed commands run one at a time: timing one process while three others compete for the
same two cores measures the competition.
"""

import statistics
import subprocess
import sys
import time

# Short waits the bounded-wait tests configure for the code under test.
CONNECT_MS = 1500
REQUEST_MS = 2500
# The environment that sets them for a CLI subprocess.
SHORT_WAITS_ENV = {
    "ECAP_KAFKA_CONNECT_TIMEOUT_MS": str(CONNECT_MS),
    "ECAP_KAFKA_REQUEST_TIMEOUT_MS": str(REQUEST_MS),
}
# kafka-python waits this long for a broker when nothing bounds it: a limit at or above it
# could not tell a bounded wait from an ignored setting.
UNBOUNDED_WAIT_S = 30.0
# Room for a loaded machine: each configured wait may run this much late.
SCHEDULER_ROOM = 1.5


def measure_cli_startup_s(runs: int = 3) -> float:
    """Seconds to start `python -m ecap_ops` and exit (imports, settings, click), the
    median of `runs`: what every CLI subprocess pays before its first request."""
    times = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "ecap_ops", "--help"],
            capture_output=True,
            timeout=120,
            check=True,
        )
        times.append(time.monotonic() - started)
    return statistics.median(times)


def wait_limit_s(*waits_ms: int, startup_s: float = 0.0, sequential_waits: int = 1) -> float:
    """The most an operation may take when every wait it configures runs out: each of
    `waits_ms` `sequential_waits` times over, with room for a loaded scheduler, plus twice
    the measured process start-up (`startup_s`, 0 in process)."""
    waits = sum(waits_ms) / 1000 * sequential_waits
    return waits * SCHEDULER_ROOM + 2 * startup_s + 1.0


def assert_bounded(took_s: float, limit_s: float, what: str, startup_s: float = 0.0) -> None:
    """`what` ended within `limit_s`. The limit must also be shorter than an unbounded wait
    (plus the start-up), or this check could not tell a bounded wait from an ignored one."""
    assert limit_s < UNBOUNDED_WAIT_S + startup_s, (
        f"the limit for {what} ({limit_s:.1f} s) cannot tell a bounded wait from kafka-python's"
        f" unbounded {UNBOUNDED_WAIT_S:.0f} s: configure shorter waits"
    )
    assert took_s < limit_s, f"{what} took {took_s:.1f} s, limit {limit_s:.1f} s"
