"""Compare two clusters (issue 16): `ecap-ops compare` of two clusters with N topics each,
beside the reference in the same run.

Two fresh local clusters, `one` and `two`, each with the same N topics (1-3 partitions, a
retention override each). Then three drifts are made on `two` with Kafka's own tools: a
changed retention override (`kafka-configs --alter`), an extra partition (`kafka-topics
--alter --partitions`) and a missing topic (`kafka-topics --delete`). Measured:

1. `services.compare.compare` in process (both clusters read, judged by the catalog).
2. `ecap-ops compare one two -o json` as a whole process, with a clusters file naming the
   two (wall time, peak RSS).
3. The reference: what a person runs to diff two clusters without ecap-ops, Kafka's own
   `kafka-topics --describe` and `kafka-configs --describe --all` on both clusters (four
   whole processes, run the way Kafka's scripts run them), then `diff` of the outputs.

Both ecap-ops measures must find exactly the three drifts made, and nothing else: the
benchmark fails loudly otherwise.

Usage: python benchmarks/bench_compare.py [--quick] [--topics N ...] [--heap 2g]
(--quick: 100 topics)
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    add_size_args,
    ecap_ops_command,
    kafka_script_command,
    local_cluster,
    populate_topics,
    populated_partitions,
    print_growth,
    print_table,
    run_process,
)
from ecap_ops.catalog import load_catalog  # noqa: E402
from ecap_ops.gateway import KafkaGateway  # noqa: E402
from ecap_ops.services.compare import compare  # noqa: E402
from ecap_ops.settings import KafkaSettings  # noqa: E402


def kafka_tool(bootstrap: str, tool: str, *args: str):
    return run_process(kafka_script_command(tool, ["--bootstrap-server", bootstrap, *args]))


def make_drifts(bootstrap: str, names: list[str]) -> set[tuple[str, str]]:
    """Three drifts on one cluster, made with Kafka's own tools; the (kind, subject) pairs
    compare must report."""
    retention, grown, gone = names[1], names[2], names[3]
    kafka_tool(
        bootstrap,
        "kafka-configs",
        "--alter",
        "--entity-type",
        "topics",
        "--entity-name",
        retention,
        "--add-config",
        "retention.ms=123456789",
    )
    # names[2] has 3 partitions (1 + 2 % 3): one more.
    kafka_tool(bootstrap, "kafka-topics", "--alter", "--topic", grown, "--partitions", "4")
    kafka_tool(bootstrap, "kafka-topics", "--delete", "--topic", gone)
    return {
        ("override", f"{retention} retention.ms"),
        ("partitions", grown),
        ("topic", gone),
    }


def wait_deleted(settings: KafkaSettings, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with KafkaGateway(settings) as gw:
        while name in gw.topics(None):
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} still listed {timeout:.0f} s after kafka-topics --delete")
            time.sleep(0.2)


def check_found(what: str, drift: list[tuple[str, str]], made: set[tuple[str, str]]) -> None:
    found = set(drift)
    if found != made or len(drift) != len(made):
        raise SystemExit(
            f"{what} did not find exactly the drifts made:\n  made:  {sorted(made)}\n"
            f"  found: {sorted(drift)[:20]}{' ...' if len(drift) > 20 else ''}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100 topics instead of 1,000")
    add_size_args(ap)
    args = ap.parse_args()
    sizes = args.topics or [100 if args.quick else 1000]
    if min(sizes) < 4:
        ap.error("--topics: at least 4 (three of them get a drift)")
    growth: dict[str, dict[int, float]] = {
        "compare in process": {},
        "ecap-ops compare (whole process)": {},
        "kafka-topics + kafka-configs --describe, both, diff": {},
    }
    for n in sizes:
        for label, secs in run_size(n, args.heap).items():
            growth[label][n] = secs
    if len(sizes) > 1:
        print_growth("Comparing two clusters by topics", growth)


def run_size(n: int, heap: str | None) -> dict[str, float]:
    catalog = load_catalog(env="dev")
    with (
        local_cluster(heap=heap) as one,
        local_cluster(heap=heap) as two,
        tempfile.TemporaryDirectory(prefix="ecap-bench-compare-") as tmp,
    ):
        s1 = KafkaSettings(bootstrap_servers=one.bootstrap_servers, request_timeout_ms=120000)
        s2 = KafkaSettings(bootstrap_servers=two.bootstrap_servers, request_timeout_ms=120000)
        t0 = time.perf_counter()
        for s in (s1, s2):
            with KafkaGateway(s) as gw:
                names = populate_topics(gw, n)
        print(
            f"set up {n:,} topics on each cluster in {time.perf_counter() - t0:.1f} s", flush=True
        )
        made = make_drifts(two.bootstrap_servers, names)
        wait_deleted(s2, names[3])

        # 1. In process: the service both front ends call.
        started = time.perf_counter()
        result = compare("one", s1, catalog, "two", s2, catalog)
        in_process = time.perf_counter() - started
        check_found("compare (in process)", [(d.kind, d.subject) for d in result.drift], made)
        compared = result.topics_compared

        # 2. The whole CLI process, the clusters file naming the two.
        clusters = Path(tmp) / "clusters.yaml"
        clusters.write_text(
            "version: 1\nclusters:\n"
            f"  one: {{role: primary, env: dev, bootstrap_servers: '{one.bootstrap_servers}'}}\n"
            f"  two: {{role: standby, env: dev, bootstrap_servers: '{two.bootstrap_servers}'}}\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ECAP_"))}
        env["ECAP_CLUSTERS_FILE"] = str(clusters)
        cli = run_process(
            [*ecap_ops_command(), "compare", "one", "two", "-o", "json"], env=env, ok=(2,)
        )
        doc = json.loads(cli.stdout)
        check_found(
            "ecap-ops compare (CLI)",
            [(d["kind"], d["subject"]) for d in doc["differences"] if d["status"] == "drift"],
            made,
        )

        # 3. The reference: Kafka's own describe tools on both clusters, then diff.
        ref = []
        outputs: dict[str, list[str]] = {"one": [], "two": []}
        for side, c in (("one", one), ("two", two)):
            for tool, args in (
                ("kafka-topics", ["--describe"]),
                ("kafka-configs", ["--describe", "--all", "--entity-type", "topics"]),
            ):
                p = kafka_tool(c.bootstrap_servers, tool, *args)
                ref.append((f"{tool} {' '.join(args)} ({side})", p))
                outputs[side].append(p.stdout)
        for side, texts in outputs.items():
            (Path(tmp) / f"{side}.txt").write_text("".join(texts))
        diff = run_process(
            ["diff", str(Path(tmp) / "one.txt"), str(Path(tmp) / "two.txt")], ok=(0, 1)
        )
        ref_s = sum(p.seconds for _, p in ref) + diff.seconds
        diff_lines = sum(1 for line in diff.stdout.splitlines() if line[:2] in ("< ", "> "))

        partitions = populated_partitions(n)
        rows = [
            [
                "ecap-ops compare, in process (services.compare)",
                f"{in_process:.2f} s",
                "-",
                f"{len(result.drift)} drift of {len(result.differences)} differences",
            ],
            [
                "ecap-ops compare one two -o json (whole process)",
                f"{cli.seconds:.2f} s",
                f"{cli.rss_mb:,.0f} MB",
                f"{doc['drift']} drift of {len(doc['differences'])} differences, exit 2",
            ],
        ]
        for what, p in ref:
            rows.append(
                [
                    f"reference: {what}",
                    f"{p.seconds:.2f} s",
                    f"{p.rss_mb:,.0f} MB",
                    f"{len(p.stdout.splitlines()):,} lines",
                ]
            )
        rows.append(
            [
                "reference: diff of the two outputs",
                f"{diff.seconds:.2f} s",
                "-",
                f"{diff_lines:,} differing lines (topic ids differ on every topic)",
            ]
        )
        rows.append(["reference, total", f"{ref_s:.2f} s", "-", "the drift left to a person"])
        print_table(
            f"Comparing two clusters: {n:,} topics each ({partitions:,} partitions), "
            f"{compared:,} compared, 3 drifts made with Kafka's tools",
            ["what", "wall time", "peak RSS", "found"],
            rows,
        )
    return {
        "compare in process": in_process,
        "ecap-ops compare (whole process)": cli.seconds,
        "kafka-topics + kafka-configs --describe, both, diff": ref_s,
    }


if __name__ == "__main__":
    main()
