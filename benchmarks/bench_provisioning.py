"""Provisioning benchmarks (issue: foundation), each beside its reference in the same run.

1. `ecap-ops plan` on the five catalog topics vs Kafka's own `kafka-topics --describe` of
   the same topics: whole-process wall time (median of N runs).
2. A generated catalog of 1,000 topics: first apply and the no-op plan after it: wall
   time and requests sent (batched, not one per topic).
3. `dagster definitions validate` of ecap_ops vs a one-asset definitions file.
4. What the brokers' validate-only requests add to `plan` (which now runs them, so exit 2
   means "this can be applied"): plan alone vs plan + validation, for 5 and 1,000 topics
   still to create, in-process, median of N.

With --topics N [N ...] (`make bench-scale`: 1000 10000), instead, for each size on a
fresh local cluster: the first apply of a generated catalog of N topics (`ecap-ops
create-topics`, whole process), the no-op `ecap-ops plan` after it, Kafka's own
`kafka-topics --describe` of every topic, and the Dagster code location's load with that
catalog (`from ecap_ops.definitions import defs`): wall time and peak RSS of each, and a
growth table (seconds per 1,000 topics).

Usage: python benchmarks/bench_provisioning.py [--quick] [--topics N ...] [--heap 2g]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    add_size_args,
    ecap_ops_command,
    generated_catalog,
    kafka_script_command,
    local_cluster,
    print_growth,
    print_table,
    run_process,
)
from ecap_ops.catalog import load_catalog, parse_catalog  # noqa: E402
from ecap_ops.gateway import KafkaGateway  # noqa: E402
from ecap_ops.services.provisioning import apply_topics, plan_topics  # noqa: E402
from ecap_ops.services.write import validate_plan  # noqa: E402
from ecap_ops.settings import KafkaSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict | None = None, runs: int = 5) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - started)
        if out.returncode not in (0, 2):
            raise SystemExit(
                f"{' '.join(cmd[:4])}... failed ({out.returncode}): {out.stderr[-800:]}"
            )
    return statistics.median(times), times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--quick", action="store_true", help="fewer runs and 200 topics instead of 1,000"
    )
    add_size_args(ap)
    args = ap.parse_args()
    if args.topics:
        return scale(args.topics, args.heap)
    runs = 3 if args.quick else 7
    n_topics = 200 if args.quick else 1000

    with local_cluster() as cluster:
        bootstrap = cluster.bootstrap_servers
        settings = KafkaSettings(bootstrap_servers=bootstrap, request_timeout_ms=60000)
        catalog = load_catalog(env="dev")
        with KafkaGateway(settings) as gw:
            apply_topics(gw, catalog)
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
        env.pop("ECAP_CATALOG", None)

        ours, _ = timed([sys.executable, "-m", "ecap_ops", "plan"], env, runs)
        ref_cmd = kafka_script_command(
            "kafka-topics",
            ["--bootstrap-server", bootstrap, "--describe", "--topic", ",".join(catalog.names())],
        )
        # kafka-topics takes one --topic (a regex): describe the five by an alternation.
        ref_cmd[-1] = "|".join(catalog.names())
        theirs, _ = timed(ref_cmd, env, runs)
        print_table(
            f"1. Plan/describe of the five catalog topics (whole process, median of {runs})",
            ["tool", "wall time"],
            [
                ["ecap-ops plan", f"{ours:.2f} s"],
                ["kafka-topics --describe (Kafka 4.4)", f"{theirs:.2f} s"],
                ["ratio (kafka-topics / ecap-ops)", f"{theirs / ours:.1f}x"],
            ],
        )

        lines = ["version: 1", "topics:"]
        for i in range(n_topics):
            lines.append(
                f"  bench-{i:04d}: {{partitions: 1, retention: {1 + i % 30}d, compression: lz4, max_message_size: 1MiB}}"
            )
        big = parse_catalog("\n".join(lines) + "\n", env="dev", source="generated")
        with KafkaGateway(settings) as gw:
            started = time.perf_counter()
            result = apply_topics(gw, big)
            first = time.perf_counter() - started
            first_requests = dict(gw.requests)
            assert result.ok and len(result.steps) == n_topics, result.failed[:3]
        noop_rows = []
        # Apply returns once every new partition's leader serves it (its ListOffsets retries
        # are that wait), so a plan right after it costs what a steady one does.
        for label in ("no-op plan right after it", "no-op plan again (steady)"):
            with KafkaGateway(settings) as gw:
                started = time.perf_counter()
                plan = plan_topics(gw, big)
                seconds = time.perf_counter() - started
                assert not plan.actions, plan.actions[:3]
                reqs = dict(gw.requests)
            noop_rows.append(
                [
                    label,
                    f"{seconds:.2f} s",
                    sum(reqs.values()),
                    ", ".join(f"{k} {v}" for k, v in sorted(reqs.items())),
                ]
            )
        print_table(
            f"2. Generated catalog of {n_topics:,} topics",
            ["step", "wall time", "requests", "by type"],
            [
                [
                    "first apply (create all)",
                    f"{first:.2f} s",
                    sum(first_requests.values()),
                    ", ".join(f"{k} {v}" for k, v in sorted(first_requests.items())),
                ],
                *noop_rows,
            ],
        )

        rows = []
        for n in (5, n_topics):
            lines = ["version: 1", "topics:"]
            for i in range(n):
                lines.append(
                    f"  val-{i:04d}: {{partitions: {1 + i % 6}, retention: 7d, compression: lz4}}"
                )
            cat = parse_catalog("\n".join(lines) + "\n", env="dev", source="generated")
            plain, validated, requests = [], [], {}
            for _ in range(runs):
                with KafkaGateway(settings) as gw:
                    started = time.perf_counter()
                    p = plan_topics(gw, cat)
                    plain.append(time.perf_counter() - started)
                    before = dict(gw.requests)
                    problems = validate_plan(gw, p)
                    validated.append(time.perf_counter() - started)
                    assert not problems and len(p.actions) == n, problems[:3]
                    requests = {k: v - before.get(k, 0) for k, v in gw.requests.items()}
            a, b = statistics.median(plain), statistics.median(validated)
            rows.append(
                [
                    f"{n:,} topics to create",
                    f"{a:.3f} s",
                    f"{b:.3f} s",
                    f"+{b - a:.3f} s",
                    ", ".join(f"{k} {v}" for k, v in sorted(requests.items()) if v),
                ]
            )
        print_table(
            f"4. plan without and with the brokers' validation (in-process, median of {runs})",
            ["catalog", "plan", "plan + validate-only", "added", "validation requests"],
            rows,
        )

    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one_asset.py"
        one.write_text(
            "import dagster as dg\n\n@dg.asset\ndef one():\n    return 1\n\ndefs = dg.Definitions(assets=[one])\n"
        )
        venv_dagster = [sys.executable, "-m", "dagster", "definitions", "validate"]
        denv = {**os.environ, "DAGSTER_HOME": tmp}
        ours_v, _ = timed(venv_dagster + ["-m", "ecap_ops", "-a", "defs"], denv, max(3, runs // 2))
        base_v, _ = timed(venv_dagster + ["-f", str(one)], denv, max(3, runs // 2))
        print_table(
            "3. dagster definitions validate (median)",
            ["code location", "wall time"],
            [
                ["ecap_ops (all areas)", f"{ours_v:.2f} s"],
                ["one-asset file", f"{base_v:.2f} s"],
                ["what ecap_ops adds", f"{ours_v - base_v:+.2f} s"],
            ],
        )


DEFS_LOAD = (
    "from ecap_ops.definitions import defs; "
    "print(len(list(defs.resolve_asset_graph().get_all_asset_keys())))"
)


def scale(sizes: list[int], heap: str | None) -> None:
    growth: dict[str, dict[int, float]] = {
        "first apply (create-topics)": {},
        "no-op plan": {},
        "kafka-topics --describe": {},
        "Dagster definitions load": {},
    }
    for n in sizes:
        with local_cluster(heap=heap) as cluster, tempfile.TemporaryDirectory() as tmp:
            bootstrap = cluster.bootstrap_servers
            cat = generated_catalog(Path(tmp) / "catalog.yaml", n)
            env = {
                **os.environ,
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "ECAP_CATALOG": str(cat),
                "ECAP_SNAPSHOT_DIR": tmp,
                "DAGSTER_HOME": tmp,
            }
            apply = run_process([*ecap_ops_command(), "create-topics"], env)
            assert f"Applied {n}/{n} steps" in apply.stdout, apply.stdout[-500:]
            # Right after the apply the broker is still settling the new partitions; the
            # steady figure (median of 3 runs after it) is the one the target is about.
            first_plan = run_process([*ecap_ops_command(), "plan"], env)
            assert "No changes." in first_plan.stdout, first_plan.stdout[-500:]
            steady = [run_process([*ecap_ops_command(), "plan"], env) for _ in range(3)]
            assert all("No changes." in p.stdout for p in steady), steady[-1].stdout[-500:]
            plan = sorted(steady, key=lambda p: p.seconds)[1]
            ref = run_process(
                kafka_script_command(
                    "kafka-topics", ["--bootstrap-server", bootstrap, "--describe"]
                ),
                env,
            )
            assert ref.stdout.count("\tTopicId:") >= n, "kafka-topics described too few topics"
            defs = run_process([sys.executable, "-c", DEFS_LOAD], env)
            assets = int(defs.stdout.split()[-1])
        rows = [
            ["ecap-ops create-topics (first apply)", apply],
            ["ecap-ops plan (no-op, median of 3, steady)", plan],
            ["kafka-topics --describe (Kafka 4.4, every topic)", ref],
            [f"Dagster definitions load ({assets:,} assets)", defs],
        ]
        print_table(
            f"Generated catalog of {n:,} topics (1 partition, 3 overrides each), whole processes",
            ["what", "wall time", "peak RSS"],
            [[w, f"{p.seconds:.2f} s", f"{p.rss_mb:,.0f} MB"] for w, p in rows]
            + [
                [
                    "ecap-ops plan (no-op, right after the apply)",
                    f"{first_plan.seconds:.2f} s",
                    f"{first_plan.rss_mb:,.0f} MB",
                ]
            ],
        )
        for (label, _), (_, p) in zip(growth.items(), rows, strict=True):
            growth[label][n] = p.seconds
    print_growth("Provisioning and the code location by topics", growth)


if __name__ == "__main__":
    main()
