"""Adopting a cluster (`ecap-ops import`), beside Kafka's own tool in the same run.

For each size N (--topics, default 1,000; 200 with --quick), a fresh local cluster with N
topics (1-3 partitions, fewer at 10,000: `common.partitions_for`), three topic-level
overrides each: retention, compression, and max.message.bytes on every third. Measured, whole processes (wall time, peak RSS):

1. `ecap-ops import --file F`: one read of the cluster, the catalog written and proven
   (it loads, and its plan against the state read has nothing to do) before a byte is
   written;
2. `ecap-ops --catalog F plan` right after: the imported catalog plans no change;
3. the reference: `kafka-topics --describe` of every topic (the partitions and overrides a
   person would copy by hand, without a catalog and without a check).

Then a growth table (seconds per 1,000 topics) over the sizes run.

Usage: python benchmarks/bench_import.py [--quick] [--topics N ...] [--heap 2g]
"""

import argparse
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
    partitions_for,
    print_growth,
    print_table,
    run_process,
    wait_until_served,
)
from ecap_ops.gateway import KafkaGateway  # noqa: E402
from ecap_ops.settings import KafkaSettings  # noqa: E402

BATCH = 1000  # topics per CreateTopics: well under KRaft's 10,000 records a request


def populate(gw: KafkaGateway, n: int) -> None:
    names = [f"adopt.t{i:05d}" for i in range(n)]
    for start in range(0, n, BATCH):
        batch = {}
        for i, name in enumerate(names[start : start + BATCH], start):
            configs = {"retention.ms": str(3_600_000 * (1 + i % 48)), "compression.type": "lz4"}
            if i % 3 == 0:
                configs["max.message.bytes"] = str(2 * 1024 * 1024)
            batch[name] = {
                "num_partitions": partitions_for(i, n),
                "replication_factor": 1,
                "configs": configs,
            }
        gw.require(gw.create_topics(batch), "creating benchmark topics")
    # The broker answers a create once the controller has it; its own metadata (what
    # import reads) and its leadership of each new partition follow by seconds to minutes
    # at 10,000 topics on a busy machine: wait as apply does, then prove it.
    wait_until_served(gw, names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="200 topics instead of 1,000")
    add_size_args(ap)
    args = ap.parse_args()
    sizes = args.topics or [200 if args.quick else 1000]
    growth: dict[str, dict[int, float]] = {
        "ecap-ops import": {},
        "plan of the imported catalog": {},
        "kafka-topics --describe": {},
    }
    for n in sizes:
        with local_cluster(heap=args.heap) as cluster, tempfile.TemporaryDirectory() as tmp:
            bootstrap = cluster.bootstrap_servers
            settings = KafkaSettings(bootstrap_servers=bootstrap, request_timeout_ms=120000)
            started = time.perf_counter()
            with KafkaGateway(settings) as gw:
                populate(gw, n)
            print(f"set up {n:,} topics in {time.perf_counter() - started:.1f} s", flush=True)
            out = Path(tmp) / "imported.yaml"
            env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DAGSTER_HOME": tmp}
            env.pop("ECAP_CATALOG", None)
            imp = run_process([*ecap_ops_command(), "import", "--file", str(out)], env)
            size = out.stat().st_size
            plan = run_process([*ecap_ops_command(), "--catalog", str(out), "plan"], env)
            assert "No changes." in plan.stdout, plan.stdout[-800:]
            ref = run_process(
                kafka_script_command(
                    "kafka-topics", ["--bootstrap-server", bootstrap, "--describe"]
                ),
                env,
            )
            described = ref.stdout.count("\tTopicId:")
            if described < n:  # reported, not fatal: the figures of ecap-ops stand
                print(
                    f"note: kafka-topics described {described:,} of {n:,} topics: "
                    f"{ref.stderr.strip()[-400:]}",
                    flush=True,
                )
        rows = [
            [f"ecap-ops import (catalog of {size:,} B, verified)", imp],
            ["ecap-ops plan of the imported catalog (no change)", plan],
            [f"kafka-topics --describe (text, {len(ref.stdout.encode()):,} B)", ref],
        ]
        print_table(
            f"Import of {n:,} topics ({sum(partitions_for(i, n) for i in range(n)):,} partitions, "
            "2-3 overrides each), whole processes",
            ["what", "wall time", "peak RSS"],
            [[w, f"{p.seconds:.2f} s", f"{p.rss_mb:,.0f} MB"] for w, p in rows],
        )
        for label, (_, p) in zip(growth, rows, strict=True):
            growth[label][n] = p.seconds
    print_growth("Import by topics", growth)


if __name__ == "__main__":
    main()
