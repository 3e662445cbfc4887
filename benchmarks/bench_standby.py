"""DR into a real standby (issue 16): the recovery time of N topics, beside the reference in
the same run.

Two fresh local clusters, `prod` with N topics (1-3 partitions, an override each) and an
empty standby `dr`. Measured:

1. `ecap-ops dr-drill --to-cluster dr` in process: the snapshot of prod restored into the
   standby under `drill.`, verified topic by topic, then removed (the standby is left as it
   was): its recovery time (restore start to verified) and its whole time with the cleanup.
2. The restore itself into the standby (`ecap-ops restore --to-cluster dr --execute`, one
   write path: validation, pre-change snapshot, creates, read back and verified): the
   recovery time of N topics.
3. The reference: re-creating topics with Kafka's own `kafka-topics --create`, one process
   per topic as a runbook script does, timed on a sample and scaled to N (marked so).

Usage: python benchmarks/bench_standby.py [--quick] [--topics N ...] [--heap 2g]
(--quick: 100 topics)
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    add_size_args,
    kafka_script_command,
    local_cluster,
    populate_topics,
    populated_partitions,
    print_growth,
    print_table,
    run_process,
)
from ecap_ops.catalog import load_catalog  # noqa: E402
from ecap_ops.core.restore import RestoreOptions  # noqa: E402
from ecap_ops.gateway import KafkaGateway  # noqa: E402
from ecap_ops.services import dr  # noqa: E402
from ecap_ops.settings import KafkaSettings  # noqa: E402

REFERENCE_SAMPLE = 5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100 topics instead of 1,000")
    add_size_args(ap)
    args = ap.parse_args()
    sizes = args.topics or [100 if args.quick else 1000]
    growth: dict[str, dict[int, float]] = {
        "drill recovery time": {},
        "restore recovery time": {},
        "kafka-topics --create per topic (scaled)": {},
    }
    for n in sizes:
        for label, secs in run_size(n, args.heap).items():
            growth[label][n] = secs
    if len(sizes) > 1:
        print_growth("Recovery into the standby by topics", growth)


def run_size(n: int, heap: str | None) -> dict[str, float]:
    catalog = load_catalog(env="dev")
    with (
        local_cluster(heap=heap) as prod,
        local_cluster(heap=heap) as standby,
        tempfile.TemporaryDirectory(prefix="ecap-bench-standby-") as tmp,
    ):
        ps = KafkaSettings(bootstrap_servers=prod.bootstrap_servers, request_timeout_ms=60000)
        ds = KafkaSettings(bootstrap_servers=standby.bootstrap_servers, request_timeout_ms=60000)
        with KafkaGateway(ps) as gw:
            t0 = time.perf_counter()
            names = populate_topics(gw, n)
            print(f"set up {n:,} topics on prod in {time.perf_counter() - t0:.1f} s", flush=True)
            snap = dr.take_snapshot(gw, catalog, output=Path(tmp) / "prod.json")
        with KafkaGateway(ds) as gw:
            before = sorted(gw.topics(None))
            drill = dr.run_drill(
                gw,
                catalog,
                snap.path,
                name_prefix="drill.",
                topics=tuple(names),
                same_cluster=False,
            )
            after = sorted(gw.topics(None))
        assert drill.passed, drill.render()
        assert before == after, "the drill left the standby changed"
        with KafkaGateway(ds) as gw:
            options = RestoreOptions(allow_other_cluster=True, topics=tuple(names), access=False)
            result = dr.restore(gw, catalog, snap.snapshot, options, execute=True)
        dr.require_ok(result)
        assert len(result.created) == n, (len(result.created), n)
        partitions = populated_partitions(n)
        # The reference: one kafka-topics --create process per topic, on a sample.
        sample = [f"ref.t{i}" for i in range(min(REFERENCE_SAMPLE, n))]
        ref_s = 0.0
        for name in sample:
            p = run_process(
                kafka_script_command(
                    "kafka-topics",
                    [
                        "--bootstrap-server",
                        standby.bootstrap_servers,
                        "--create",
                        "--topic",
                        name,
                        "--partitions",
                        "2",
                        "--config",
                        "retention.ms=3600000",
                    ],
                )
            )
            ref_s += p.seconds
        ref_scaled = ref_s / len(sample) * n
        print_table(
            f"Recovery into a standby cluster: {n:,} topics ({partitions:,} partitions)",
            ["what", "recovery time", "whole", "per 1,000 topics"],
            [
                [
                    "ecap-ops dr-drill --to-cluster dr (restore, verify; then removed)",
                    f"{drill.recovery_seconds:.2f} s",
                    f"{drill.seconds:.2f} s",
                    f"{drill.recovery_seconds / n * 1000:.2f} s",
                ],
                [
                    "ecap-ops restore --to-cluster dr --execute (validated, snapshotted, verified)",
                    f"{result.seconds:.2f} s",
                    "-",
                    f"{result.seconds / n * 1000:.2f} s",
                ],
                [
                    f"reference: kafka-topics --create per topic ({len(sample)} timed, scaled to {n:,})",
                    f"{ref_scaled:.1f} s",
                    "-",
                    f"{ref_scaled / n * 1000:.1f} s",
                ],
            ],
        )
    return {
        "drill recovery time": drill.recovery_seconds or 0.0,
        "restore recovery time": result.seconds,
        "kafka-topics --create per topic (scaled)": ref_scaled,
    }


if __name__ == "__main__":
    main()
