"""The Prometheus exporter for G groups: ecap-ops exporter vs `kafka-consumer-groups --describe --all-groups`.

Starts its own local Kafka on free ports, creates the catalog's five topics with some
records, and for G = 10, 100, 1,000 groups (each committed on all five topics) measures, on
the same cluster in the same run, each the median of --runs runs:
  - the exporter's measurement: one lag tick of `ecap-ops exporter` in process (measure and
    evaluate, with the window of the previous tick), wall time and requests;
  - a scrape of /metrics from the exporter's HTTP server: wall time and response bytes, with
    the default series (per group and topic) and with --per-partition;
  - Kafka's tool, the whole process as bin/kafka-consumer-groups.sh runs it (JVM start
    included), and the bytes it prints.

    .venv/bin/python benchmarks/bench_exporter.py [--quick] [--runs R]
"""

import argparse
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import kafka_script_command, local_cluster, print_table  # noqa: E402


def kafka_tool_describe(bootstrap: str) -> tuple[float, int]:
    """One whole kafka-consumer-groups process: (seconds, bytes it printed)."""
    import subprocess

    cmd = kafka_script_command(
        "kafka-consumer-groups", ["--bootstrap-server", bootstrap, "--describe", "--all-groups"]
    )
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, timeout=1800)
    secs = time.perf_counter() - t
    if proc.returncode != 0:
        print(proc.stderr.decode(errors="replace")[-2000:], file=sys.stderr)
    return secs, len(proc.stdout)


def scrape(url: str) -> tuple[float, int]:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        body = resp.read()
    return time.perf_counter() - t, len(body)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="G = 10 and 100 only, 3 runs")
    ap.add_argument("--runs", type=int, default=5, help="runs per figure, median (default 5)")
    args = ap.parse_args()
    runs = min(args.runs, 3) if args.quick else args.runs

    from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    from ecap_ops.catalog import load_catalog
    from ecap_ops.gateway.lag import LagScope
    from ecap_ops.localkafka.cluster import free_port
    from ecap_ops.services.metrics import Exporter, ExporterConfig, build_registry, serve
    from ecap_ops.settings import KafkaSettings

    sizes = [10, 100] if args.quick else [10, 100, 1000]
    catalog = load_catalog()
    rows = []
    print("starting a local Kafka ...", flush=True)
    with local_cluster() as cluster:
        bs = cluster.bootstrap_servers
        settings = KafkaSettings(bootstrap_servers=bs, request_timeout_ms=30000)
        admin = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=30000)
        admin.create_topics(
            {
                t.name: {"num_partitions": t.partitions, "replication_factor": 1}
                for t in catalog.topics
            }
        )
        time.sleep(1)
        prod = KafkaProducer(bootstrap_servers=bs, linger_ms=20)
        parts = [(t.name, p) for t in catalog.topics for p in range(t.partitions)]
        for topic, p in parts:
            for _ in range(50):
                prod.send(topic, b"x", partition=p)
        prod.flush()
        prod.close()
        offsets = {TopicPartition(t, p): OffsetAndMetadata(25, "", None) for t, p in parts}
        made = 0
        scope = LagScope(include=("bench-*",))
        for g in sizes:
            print(
                f"committing offsets for groups {made}..{g - 1} on {len(parts)} partitions ...",
                flush=True,
            )
            while made < g:
                for attempt in range(30):  # a fresh cluster creates __consumer_offsets first
                    try:
                        admin.alter_group_offsets(f"bench-{made:05d}", offsets)
                        break
                    except Exception:
                        if attempt == 29:
                            raise
                        time.sleep(1)
                made += 1
            figures = {}
            for per_partition in (False, True):
                exporter = Exporter(
                    settings,
                    catalog,
                    ExporterConfig(
                        scope=scope, per_partition=per_partition, health_interval_s=None
                    ),
                )
                registry = build_registry(exporter.state, catalog, per_partition)
                port = free_port()
                server, _ = serve("127.0.0.1", port, registry)
                try:
                    exporter.measure_lag_once()  # the first tick: the window starts
                    ticks, requests = [], {}
                    for _ in range(runs):
                        result = exporter.measure_lag_once()
                        assert result.up, result.error
                        assert len(result.groups) == g, (
                            f"measured {len(result.groups)} groups, not {g}"
                        )
                        ticks.append(result.duration_s)
                        requests = result.requests
                    scrapes = [scrape(f"http://127.0.0.1:{port}/metrics") for _ in range(runs)]
                finally:
                    server.shutdown()
                    server.server_close()
                figures[per_partition] = (
                    statistics.median(ticks),
                    sum(requests.values()),
                    statistics.median(s for s, _ in scrapes),
                    scrapes[-1][1],
                )
            theirs = [kafka_tool_describe(bs) for _ in range(runs)]
            tick_s, reqs, scrape_s, body = figures[False]
            _, _, pp_scrape_s, pp_body = figures[True]
            their_s = statistics.median(s for s, _ in theirs)
            rows.append(
                (
                    g,
                    f"{tick_s:.3f}",
                    reqs,
                    f"{scrape_s * 1000:.1f}",
                    f"{body:,}",
                    f"{pp_scrape_s * 1000:.1f}",
                    f"{pp_body:,}",
                    f"{their_s:.2f}",
                    f"{theirs[-1][1]:,}",
                    f"{their_s / tick_s:.0f}x",
                )
            )
            print(
                f"  G={g}: exporter tick {tick_s:.3f} s ({reqs} requests), /metrics {body:,} B "
                f"in {scrape_s * 1000:.1f} ms; kafka-consumer-groups {their_s:.2f} s",
                flush=True,
            )
        admin.close()

    print_table(
        f"ecap-ops exporter vs kafka-consumer-groups --describe --all-groups: G groups x "
        f"{len(parts)} partitions (5 catalog topics), 1 broker, median of {runs} runs. "
        "tick: one measurement + evaluation in process (what the exporter does every --interval); "
        "scrape: GET /metrics (never talks to Kafka); Kafka: the whole process (JVM start included)",
        [
            "G",
            "tick s",
            "requests",
            "scrape ms",
            "/metrics B",
            "scrape ms (per-partition)",
            "/metrics B (per-partition)",
            "kafka-consumer-groups s",
            "its output B",
            "x tick",
        ],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
