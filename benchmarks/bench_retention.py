"""Retention-audit benchmark (issue 3), beside Kafka's own tool in the same run.

A local 1-node cluster with 1,000 topics (200 with --quick), a tenth of them holding a few
records: the retention audit's wall time and the requests it sends (a fixed number, not
one per topic), against `kafka-log-dirs --describe` (which gives the sizes only).

Usage: python benchmarks/bench_retention.py [--quick]
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import kafka_script_command, local_cluster, print_table  # noqa: E402
from ecap_ops.catalog import load_catalog  # noqa: E402
from ecap_ops.gateway import KafkaGateway  # noqa: E402
from ecap_ops.services.retention import run_retention_audit  # noqa: E402
from ecap_ops.settings import KafkaSettings  # noqa: E402


def main() -> None:
    from kafka import KafkaProducer

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="200 topics instead of 1,000")
    args = ap.parse_args()
    n = 200 if args.quick else 1000
    with local_cluster() as cluster:
        settings = KafkaSettings(
            bootstrap_servers=cluster.bootstrap_servers, request_timeout_ms=60000
        )
        names = [f"audit-{i:04d}" for i in range(n)]
        with KafkaGateway(settings) as gw:
            for start in range(0, n, 250):
                batch = {
                    name: {
                        "num_partitions": 1,
                        "replication_factor": 1,
                        "configs": {"retention.ms": str((1 + i % 30) * 86_400_000)},
                    }
                    for i, name in enumerate(names[start : start + 250], start)
                }
                gw.require(gw.create_topics(batch), "creating benchmark topics")
        time.sleep(2)
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
        env = dict(os.environ)
        started = time.perf_counter()
        out = subprocess.run(
            kafka_script_command(
                "kafka-log-dirs", ["--bootstrap-server", cluster.bootstrap_servers, "--describe"]
            ),
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        theirs = time.perf_counter() - started
        assert out.returncode == 0, out.stderr[-500:]
    print_table(
        f"Retention audit of {n:,} topics (1 broker)",
        ["tool", "wall time", "requests", "by type"],
        [
            [
                "ecap-ops retention audit (configs, sizes, ages, forecast)",
                f"{ours:.2f} s",
                sum(requests.values()),
                ", ".join(f"{k} {v}" for k, v in sorted(requests.items())),
            ],
            [
                "kafka-log-dirs --describe (sizes only, whole JVM process)",
                f"{theirs:.2f} s",
                "-",
                "-",
            ],
        ],
    )


if __name__ == "__main__":
    main()
