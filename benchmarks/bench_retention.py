"""Retention-audit benchmark (issue 3), beside Kafka's own tool in the same run.

A local 1-node cluster with 1,000 topics (200 with --quick), a tenth of them holding a few
records: the retention audit's wall time and the requests it sends (a fixed number, not
one per topic), against `kafka-log-dirs --describe` (which gives the sizes only).

With --topics N [N ...], each size on a fresh cluster, and the whole
`ecap-ops retention-audit -o json` process too (wall time, peak RSS), with a growth table.

Usage: python benchmarks/bench_retention.py [--quick] [--topics N ...] [--heap 2g]
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    add_size_args,
    ecap_ops_command,
    kafka_script_command,
    local_cluster,
    print_growth,
    print_table,
    run_process,
    wait_until_served,
)
from ecap_ops.catalog import load_catalog  # noqa: E402
from ecap_ops.gateway import KafkaGateway  # noqa: E402
from ecap_ops.services.retention import run_retention_audit  # noqa: E402
from ecap_ops.settings import KafkaSettings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="200 topics instead of 1,000")
    add_size_args(ap)
    args = ap.parse_args()
    growth: dict[str, dict[int, float]] = {
        "audit (in process)": {},
        "retention-audit -o json (whole process)": {},
        "kafka-log-dirs --describe": {},
    }
    for n in args.topics or [200 if args.quick else 1000]:
        for label, secs in run_size(n, args.heap).items():
            growth[label][n] = secs
    if args.topics and len(args.topics) > 1:
        print_growth("Retention audit by topics", growth)


def run_size(n: int, heap: str | None) -> dict[str, float]:
    from kafka import KafkaProducer

    with local_cluster(heap=heap) as cluster:
        settings = KafkaSettings(
            bootstrap_servers=cluster.bootstrap_servers, request_timeout_ms=60000
        )
        names = [f"audit-{i:04d}" for i in range(n)]
        with KafkaGateway(settings) as gw:
            for start in range(0, n, 1000):
                batch = {
                    name: {
                        "num_partitions": 1,
                        "replication_factor": 1,
                        "configs": {"retention.ms": str((1 + i % 30) * 86_400_000)},
                    }
                    for i, name in enumerate(names[start : start + 1000], start)
                }
                gw.require(gw.create_topics(batch), "creating benchmark topics")
            # The broker's metadata and its leadership of each new partition follow the
            # controller's answer by up to minutes at 10,000 topics on a busy machine.
            wait_until_served(gw, names)
        producer = KafkaProducer(**settings.client_kwargs())
        for name in names[::10]:
            for _ in range(5):
                producer.send(name, b"x" * 200)
        producer.flush(60)
        producer.close()
        catalog = load_catalog(env="dev")
        with KafkaGateway(settings) as gw:
            started = time.perf_counter()
            report = run_retention_audit(gw, catalog)
            ours = time.perf_counter() - started
            requests = dict(gw.requests)
        assert len([r for r in report.rows if r.topic.startswith("audit-")]) == n
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap_servers}
        env.pop("ECAP_CATALOG", None)
        whole = run_process([*ecap_ops_command(), "retention-audit", "-o", "json"], env, ok=(0, 1))
        theirs = run_process(
            kafka_script_command(
                "kafka-log-dirs", ["--bootstrap-server", cluster.bootstrap_servers, "--describe"]
            ),
            env,
        )
    print_table(
        f"Retention audit of {n:,} topics (1 broker)",
        ["tool", "wall time", "peak RSS", "requests", "by type"],
        [
            [
                "ecap-ops retention audit (configs, sizes, ages, forecast; in process)",
                f"{ours:.2f} s",
                "-",
                sum(requests.values()),
                ", ".join(f"{k} {v}" for k, v in sorted(requests.items())),
            ],
            [
                "ecap-ops retention-audit -o json (whole process)",
                f"{whole.seconds:.2f} s",
                f"{whole.rss_mb:,.0f} MB",
                "-",
                "-",
            ],
            [
                "kafka-log-dirs --describe (sizes only, whole JVM process)",
                f"{theirs.seconds:.2f} s",
                f"{theirs.rss_mb:,.0f} MB",
                "-",
                "-",
            ],
        ],
    )
    return {
        "audit (in process)": ours,
        "retention-audit -o json (whole process)": whole.seconds,
        "kafka-log-dirs --describe": theirs.seconds,
    }


if __name__ == "__main__":
    main()
