"""Disaster-recovery benchmarks (issue 5), beside the reference in the same run.

A fresh local cluster with N topics (1-3 partitions, fewer at 10,000: `common.partitions_for`;
a topic-level override each) and N
consumer groups with committed offsets. Measured:

1. `ecap-ops snapshot` in process: wall time, requests sent by type, snapshot size.
2. The restore plan (dry run) of that snapshot against the same cluster: wall time, requests.
3. The reference: exporting the same metadata with Kafka's own tools, the way runbooks do
   (`kafka-topics --describe`, `kafka-configs --describe --entity-type topics --all`,
   `kafka-consumer-groups --describe --all-groups`): wall time and output size.

With --topics N [N ...] (and --groups, default the same sizes), each size on a fresh
cluster: also the whole `ecap-ops snapshot --file F` process (wall time, peak RSS), and a
growth table (seconds per 1,000 topics and groups).

Usage: python benchmarks/bench_dr.py [--quick] [--topics N ...] [--groups N ...] [--heap 2g]
(--quick: 100 topics and 100 groups)
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
    populate_topics,
    print_growth,
    print_table,
    run_process,
    wait_until_served,
)
from ecap_ops.catalog import load_catalog  # noqa: E402
from ecap_ops.core.restore import RestoreOptions  # noqa: E402
from ecap_ops.gateway import KafkaGateway  # noqa: E402
from ecap_ops.gateway.snapshot import write_group_offsets  # noqa: E402
from ecap_ops.services import dr  # noqa: E402
from ecap_ops.settings import KafkaSettings  # noqa: E402


def populate(gw: KafkaGateway, n_topics: int, n_groups: int) -> None:
    names = populate_topics(gw, n_topics)
    # The broker's metadata and its leadership of each new partition follow the
    # controller's answer by up to minutes at 10,000 topics on a busy machine.
    wait_until_served(gw, names)
    for g in range(n_groups):
        write_group_offsets(gw, f"bench.g{g:04d}", {(names[g % n_topics], 0): 0})


def run_ref(tool: str, args: list[str]) -> tuple[float, int, float]:
    """Kafka's tool as a whole process: (seconds, output bytes, peak RSS MB)."""
    p = run_process(kafka_script_command(tool, args))
    return p.seconds, len(p.stdout.encode()), p.rss_mb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--quick", action="store_true", help="100 topics and 100 groups instead of 1,000 each"
    )
    add_size_args(ap, groups=True)
    args = ap.parse_args()
    sizes = args.topics or [100 if args.quick else 1000]
    groups = args.groups or sizes
    if len(groups) != len(sizes):
        raise SystemExit("give as many --groups sizes as --topics sizes (or none)")
    growth: dict[str, dict[int, float]] = {
        "ecap-ops snapshot (in process)": {},
        "ecap-ops snapshot (whole process)": {},
        "restore plan (dry run)": {},
        "Kafka's three tools": {},
    }
    for n, g in zip(sizes, groups, strict=True):
        for label, secs in run_size(n, g, args.heap).items():
            growth[label][n] = secs
    if len(sizes) > 1:
        print_growth("Snapshot by topics (and as many groups)", growth)


def run_size(n: int, n_groups: int, heap: str | None) -> dict[str, float]:
    catalog = load_catalog(env="dev")
    with (
        local_cluster(heap=heap) as cluster,
        tempfile.TemporaryDirectory(prefix="ecap-bench-dr-") as tmp,
    ):
        bootstrap = cluster.bootstrap_servers
        settings = KafkaSettings(bootstrap_servers=bootstrap, request_timeout_ms=60000)
        with KafkaGateway(settings) as gw:
            t0 = time.perf_counter()
            populate(gw, n, n_groups)
            print(
                f"set up {n:,} topics and {n_groups:,} groups in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )

        with KafkaGateway(settings) as gw:
            started = time.perf_counter()
            snap = dr.take_snapshot(gw, catalog, output=Path(tmp) / "bench.json")
            snap_s = time.perf_counter() - started
        with KafkaGateway(settings) as gw:
            started = time.perf_counter()
            plan = dr.plan_restore(gw, catalog, snap.snapshot, RestoreOptions(include_offsets=True))
            plan_s = time.perf_counter() - started
            plan_requests = dict(gw.requests)
        s = snap.snapshot.summary()
        assert s["topics"] >= n and s["groups"] >= n_groups, s
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DAGSTER_HOME": tmp}
        env.pop("ECAP_CATALOG", None)
        whole = run_process(
            [*ecap_ops_command(), "snapshot", "--file", str(Path(tmp) / "whole.json")], env
        )
        assert len(plan.in_sync) >= n and not plan.creates, (
            "the plan against the same cluster should find nothing to create"
        )

        ref = {}
        ref["kafka-topics --describe"] = run_ref(
            "kafka-topics", ["--bootstrap-server", bootstrap, "--describe"]
        )
        ref["kafka-configs --describe (topics)"] = run_ref(
            "kafka-configs",
            ["--bootstrap-server", bootstrap, "--describe", "--entity-type", "topics"],
        )
        ref["kafka-consumer-groups --describe --all-groups"] = run_ref(
            "kafka-consumer-groups", ["--bootstrap-server", bootstrap, "--describe", "--all-groups"]
        )
        ref_total = sum(t for t, _, _ in ref.values()), sum(b for _, b, _ in ref.values())

        print_table(
            f"Snapshot and restore plan: {s['topics']:,} topics ({s['partitions']:,} partitions), {s['groups']:,} groups",
            ["what", "wall time", "peak RSS", "requests", "size"],
            [
                [
                    "ecap-ops snapshot (verified, checksummed; in process)",
                    f"{snap_s:.2f} s",
                    "-",
                    f"{sum(snap.requests.values())} ({', '.join(f'{k} {v}' for k, v in sorted(snap.requests.items()))})",
                    f"{snap.size_bytes:,} B",
                ],
                [
                    "ecap-ops snapshot --file (whole process)",
                    f"{whole.seconds:.2f} s",
                    f"{whole.rss_mb:,.0f} MB",
                    "-",
                    "-",
                ],
                [
                    "ecap-ops restore plan (dry run, with offsets)",
                    f"{plan_s:.2f} s",
                    "-",
                    f"{sum(plan_requests.values())} ({', '.join(f'{k} {v}' for k, v in sorted(plan_requests.items()))})",
                    "-",
                ],
                *[
                    [f"reference: {k}", f"{t:.2f} s", f"{r:,.0f} MB", "-", f"{b:,} B text"]
                    for k, (t, b, r) in ref.items()
                ],
                [
                    "reference: the three tools together",
                    f"{ref_total[0]:.2f} s",
                    "-",
                    "-",
                    f"{ref_total[1]:,} B text (no checksum, no restore)",
                ],
            ],
        )
    return {
        "ecap-ops snapshot (in process)": snap_s,
        "ecap-ops snapshot (whole process)": whole.seconds,
        "restore plan (dry run)": plan_s,
        "Kafka's three tools": ref_total[0],
    }


if __name__ == "__main__":
    main()
