"""Producing at the setup guide's volumes: `ecap-ops load-test` vs Kafka's own
`kafka-producer-perf-test`, on the same local cluster in the same run.

Starts its own local Kafka on free ports and creates the catalog's five topics (the shipped
catalog under a prefix, replication 1). Then, each scenario the median of --runs runs:
  - guide rate: `ecap-ops load-test user-events --rate 139/s` (500,000 records/hour, the top
    of the guide's band) for N records, and `kafka-producer-perf-test` with
    `--throughput 139`, the same number of records and the same record size (the mean size
    of ecap-ops's JSON records, key included);
  - as fast as it goes: `ecap-ops load-test user-events --rate 100000/s` (its ceiling: in
    practice unthrottled) and `kafka-producer-perf-test --throughput -1`, same count and size;
  - the guide profile: `ecap-ops load-test --profile guide` (all five topics at once at the
    top of their bands), its total.
Both tools run as a user runs them (a fresh process: ecap-ops's Python start, the tool's
JVM start as bin/kafka-producer-perf-test.sh runs it) with acks=all and linger.ms=5; each
reports its own throughput (records acknowledged per second of producing) and produce
latency (send to acknowledgement) p50, p99 and max; the process wall time is shown beside.

    .venv/bin/python benchmarks/bench_load.py [--quick] [--runs R]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import kafka_script_command, local_cluster, print_table  # noqa: E402

GUIDE_TOP_PER_HOUR = 500_000  # user-events, the top of the guide's band
PERF_LINE = re.compile(
    r"(?P<n>\d+) records sent, (?P<rps>[\d.]+) records/sec .*?, (?P<avg>[\d.]+) ms avg latency, "
    r"(?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, "
    r"(?P<p99>\d+) ms 99th"
)


def ecap_ops_command() -> list[str]:
    script = Path(sys.executable).with_name("ecap-ops")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ecap_ops"]


def run_load_test(bootstrap: str, catalog: Path, args: list[str]) -> tuple[float, dict]:
    """One whole `ecap-ops load-test ... -o json` process: (wall seconds, its report)."""
    cmd = [*ecap_ops_command(), "-b", bootstrap, "load-test", *args, "-o", "json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ECAP_", "KAFKA_"))}
    env.update({"ECAP_CATALOG": str(catalog), "ECAP_ENV": "prod"})
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
    secs = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"ecap-ops load-test failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return secs, json.loads(proc.stdout)


def run_perf_test(
    bootstrap: str, topic: str, records: int, size: int, throughput: float
) -> tuple[float, dict]:
    """One whole kafka-producer-perf-test process as its script runs it: (wall seconds,
    its final summary)."""
    cmd = kafka_script_command(
        "kafka-producer-perf-test",
        [
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--record-size",
            str(size),
            "--throughput",
            str(throughput),
            "--producer-props",
            f"bootstrap.servers={bootstrap}",
            "acks=all",
            "linger.ms=5",
        ],
    )
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    secs = time.perf_counter() - t
    matches = list(PERF_LINE.finditer(proc.stdout))
    if proc.returncode != 0 or not matches:
        raise SystemExit(
            f"kafka-producer-perf-test failed ({proc.returncode}): {proc.stderr[-2000:]}{proc.stdout[-1000:]}"
        )
    m = matches[-1]
    return secs, {
        "records": int(m["n"]),
        "records_per_second": float(m["rps"]),
        "p50": float(m["p50"]),
        "p99": float(m["p99"]),
        "max": float(m["max"]),
    }


def prefixed_catalog(folder: Path, prefix: str) -> tuple[Path, object]:
    from ecap_ops.catalog import load_catalog

    text = Path(load_catalog().source).read_text()
    old = '    replication_factor: 3\n    min_insync_replicas: 2\n    name_prefix: ""'
    if old not in text:
        raise SystemExit("the shipped catalog's prod environment changed; update bench_load.py")
    text = text.replace(
        old, f'    replication_factor: 1\n    min_insync_replicas: 1\n    name_prefix: "{prefix}"'
    )
    path = folder / "topics.yaml"
    path.write_text(text)
    return path, load_catalog(path, env="prod")


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="fewer records, shorter runs")
    ap.add_argument("--runs", type=int, default=None, help="runs per figure, median")
    args = ap.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    guide_seconds = 10 if args.quick else 30
    fast_records = 20_000 if args.quick else 100_000
    guide_rate = round(GUIDE_TOP_PER_HOUR / 3600)  # 139 records/s

    from ecap_ops.gateway import KafkaGateway
    from ecap_ops.settings import KafkaSettings

    with local_cluster() as cluster, tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        bs = cluster.bootstrap_servers
        catalog_path, catalog = prefixed_catalog(Path(tmp), "bench.")
        with KafkaGateway(KafkaSettings(bootstrap_servers=bs, request_timeout_ms=30000)) as gw:
            topics = {
                t.name: {"num_partitions": t.partitions, "replication_factor": 1}
                for t in catalog.topics
            }
            topics["bench.perf"] = {"num_partitions": 12, "replication_factor": 1}
            gw.require(gw.create_topics(topics), "creating the benchmark's topics")
        user_events = catalog.get("user-events").name

        rows = []
        scenarios = [
            ("guide rate", guide_rate, guide_rate * guide_seconds, guide_rate),
            ("as fast as it goes", 100_000, fast_records, -1),
        ]
        for label, rate, records, perf_throughput in scenarios:
            duration_ms = round(records * 1000 / rate)
            ours, ours_wall = [], []
            theirs, theirs_wall = [], []
            for _ in range(runs):
                wall, doc = run_load_test(
                    bs,
                    catalog_path,
                    [user_events, "--rate", f"{rate}/s", "--duration", f"{duration_ms}ms"],
                )
                if doc["records_acked"] != records:
                    raise SystemExit(f"load-test acknowledged {doc['records_acked']} of {records}")
                ours.append(doc)
                ours_wall.append(wall)
            size = round(statistics.mean(d["bytes_sent"] / d["records_sent"] for d in ours))
            for _ in range(runs):
                wall, doc = run_perf_test(bs, "bench.perf", records, size, perf_throughput)
                theirs.append(doc)
                theirs_wall.append(wall)
            rows.append(
                [
                    label,
                    "ecap-ops load-test",
                    f"{records:,}",
                    size,
                    f"{median_of(ours, 'records_per_second'):,.1f}",
                    median_of(ours, "latency_ms_p50"),
                    median_of(ours, "latency_ms_p99"),
                    median_of(ours, "latency_ms_max"),
                    f"{statistics.median(ours_wall):.2f}",
                ]
            )
            rows.append(
                [
                    label,
                    "kafka-producer-perf-test",
                    f"{records:,}",
                    size,
                    f"{median_of(theirs, 'records_per_second'):,.1f}",
                    median_of(theirs, "p50"),
                    median_of(theirs, "p99"),
                    median_of(theirs, "max"),
                    f"{statistics.median(theirs_wall):.2f}",
                ]
            )

        guide = []
        guide_wall = []
        for _ in range(runs):
            wall, doc = run_load_test(
                bs, catalog_path, ["--profile", "guide", "--duration", f"{guide_seconds}s"]
            )
            guide.append(doc["total"])
            guide_wall.append(wall)
        total = guide[-1]
        rows.append(
            [
                f"guide profile ({total['records_per_hour_asked']:,}/h, 5 topics)",
                "ecap-ops load-test",
                f"{total['records_sent']:,}",
                round(total["bytes_sent"] / max(1, total["records_sent"])),
                f"{median_of(guide, 'records_per_second'):,.1f}",
                median_of(guide, "latency_ms_p50"),
                median_of(guide, "latency_ms_p99"),
                median_of(guide, "latency_ms_max"),
                f"{statistics.median(guide_wall):.2f}",
            ]
        )
    print_table(
        f"Producing to user-events (12 partitions, acks=all, linger.ms=5), median of {runs} run(s); "
        f"the guide's top volume is {GUIDE_TOP_PER_HOUR:,}/hour = {GUIDE_TOP_PER_HOUR / 3600:.1f}/s",
        [
            "scenario",
            "tool",
            "records",
            "bytes/record",
            "records/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "process s",
        ],
        rows,
    )
    print(
        "\nrecords/s: records acknowledged per second of producing, as each tool reports it;"
        " latency: send to acknowledgement (Kafka's tool prints whole milliseconds);"
        " process s: the whole process (Python or JVM start included)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
