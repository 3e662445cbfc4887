"""Health-check benchmarks (issue 3), beside Kafka's own tools in the same run.

On a 3-node local cluster: `ecap-ops health-check` (whole process, canary included) on a
healthy cluster, with one broker stopped, and with every broker stopped (bounded: it must
answer "unreachable" within 15 s). Reference: what an operator runs by hand for a part of
it, `kafka-topics --describe --under-replicated-partitions` plus
`kafka-metadata-quorum describe --status` (two JVM processes).

Usage: python benchmarks/bench_health.py [--quick]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import kafka_script_command, local_cluster, print_table  # noqa: E402


def timed(cmd: list[str], env: dict, runs: int, ok_codes=(0, 1)) -> tuple[float, int]:
    times, code = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        times.append(time.perf_counter() - started)
        code = out.returncode
        if code not in ok_codes:
            raise SystemExit(f"{' '.join(cmd[:5])}... failed ({code}): {out.stderr[-800:]}")
    return statistics.median(times), code


def reference(bootstrap: str, controller: str, env: dict, runs: int) -> float:
    """kafka-topics --under-replicated-partitions + kafka-metadata-quorum --status, summed."""
    a, _ = timed(
        kafka_script_command(
            "kafka-topics",
            ["--bootstrap-server", bootstrap, "--describe", "--under-replicated-partitions"],
        ),
        env,
        runs,
        (0, 1),
    )
    b, _ = timed(
        kafka_script_command(
            "kafka-metadata-quorum", ["--bootstrap-controller", controller, "describe", "--status"]
        ),
        env,
        runs,
        (0, 1),
    )
    return a + b


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one run per case instead of five")
    args = ap.parse_args()
    runs = 1 if args.quick else 5
    rows = []
    with local_cluster(nodes=3) as cluster:
        bootstrap = cluster.bootstrap_servers
        status = cluster.status()
        controller = f"127.0.0.1:{status['nodes'][0]['controller_port']}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ECAP_"))}
        env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        ours = [sys.executable, "-m", "ecap_ops", "health-check", "--output", "json"]
        subprocess.run(
            [sys.executable, "-m", "ecap_ops", "create-topics"],
            env=env,
            capture_output=True,
            timeout=120,
        )
        t, code = timed(ours, env, runs)
        rows.append(
            [
                "healthy, 3 brokers",
                f"{t:.2f} s (exit {code})",
                f"{reference(bootstrap, controller, env, runs):.2f} s",
            ]
        )
        cluster.stop_node(3)
        t, code = timed(ours, env, runs)
        rows.append(
            [
                "one broker stopped",
                f"{t:.2f} s (exit {code})",
                f"{reference(bootstrap, controller, env, runs):.2f} s",
            ]
        )
        cluster.stop()
        t, code = timed(ours, env, runs)
        started = time.perf_counter()
        try:
            subprocess.run(
                kafka_script_command(
                    "kafka-topics",
                    [
                        "--bootstrap-server",
                        bootstrap,
                        "--describe",
                        "--under-replicated-partitions",
                    ],
                ),
                capture_output=True,
                env=env,
                timeout=30,
            )
            ref_all = f"{time.perf_counter() - started:.2f} s (kafka-topics alone)"
        except subprocess.TimeoutExpired:
            ref_all = "> 30 s: still waiting, killed (kafka-topics alone)"
        rows.append(["every broker stopped", f"{t:.2f} s (exit {code}, bound 15 s)", ref_all])
    print_table(
        f"Health check wall time, whole process (median of {runs})",
        [
            "cluster",
            "ecap-ops health-check (all checks + canary)",
            "kafka-topics URP + metadata-quorum status",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
