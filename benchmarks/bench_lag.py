"""Consumer lag for G groups: ecap-ops vs Kafka's `kafka-consumer-groups --describe --all-groups`.

Starts its own local Kafka on free ports, creates the catalog's five topics with some
records, and for G = 10, 100, 1,000 groups (each committed on all five topics) measures, on
the same cluster in the same run, each the median of --runs runs:
  - ecap-ops tick: one lag tick in process (measure + evaluate, with the previous window),
    wall time and requests by type; and the same tick without reading record timestamps
    (`exact_seconds=False`: lag in seconds only estimated), for the extra cost of exact
    seconds (one Fetch per partition leader and the bytes it brings);
  - the sensor itself (consumer_lag_sensor.evaluate_tick with the previous cursor);
  - ecap-ops CLI: `ecap-ops lag --group 'bench-*'`, the whole process as a user runs it (a
    fresh Python: start, imports, connect, tick, output), with its default table output (a
    row per group and topic, like Kafka's tool: the like-for-like comparison) and with
    `--output json` (per-partition detail, 10 MB at G=1,000);
  - Kafka's tool, the whole process as bin/kafka-consumer-groups.sh runs it (its JVM flags,
    JVM start included); its requests are counted in one more run with its client's DEBUG
    log ("Sending <API> request"), not timed.

With --groups N [N ...] (`make bench-scale`: 1000 10000) those sizes instead; every
whole process's peak RSS is shown, and a growth table (seconds per 1,000 groups).

    .venv/bin/python benchmarks/bench_lag.py [--quick] [--nodes N] [--runs R] [--groups N ...] [--heap 2g]
"""

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    add_size_args,
    ecap_ops_command,
    kafka_script_command,
    print_growth,
    run_process,
)

RSS: dict[str, float] = {}  # peak RSS (MB) of each whole process, by what it is

LOG4J = """Configuration:
  Appenders:
    Console:
      name: STDERR
      target: SYSTEM_ERR
      PatternLayout:
        pattern: "%m%n"
  Loggers:
    Logger:
      - name: org.apache.kafka.clients.NetworkClient
        level: DEBUG
        additivity: false
        AppenderRef:
          - ref: STDERR
    Root:
      level: WARN
      AppenderRef:
        - ref: STDERR
"""


def kafka_tool_describe(bootstrap: str, log_config: Path | None = None) -> tuple[float, str, str]:
    """One run of Kafka's tool as its script runs it: (seconds, stdout, stderr). With
    `log_config`, its client logs every request it sends (for counting, not for timing)."""
    cmd = kafka_script_command(
        "kafka-consumer-groups", ["--bootstrap-server", bootstrap, "--describe", "--all-groups"]
    )
    if log_config is not None:
        cmd.insert(cmd.index("-cp"), f"-Dlog4j2.configurationFile={log_config}")
    proc = run_process(cmd, timeout=1800, ok=range(256))
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
    if log_config is None:
        RSS["kafka-consumer-groups"] = max(RSS.get("kafka-consumer-groups", 0), proc.rss_mb)
    return proc.seconds, proc.stdout, proc.stderr


def kafka_tool_requests(bootstrap: str, log_config: Path) -> tuple[Counter, int]:
    """Requests Kafka's tool sends by type, and the group rows it prints."""
    _, out, err = kafka_tool_describe(bootstrap, log_config)
    apis = Counter(m.group(1) for m in re.finditer(r"Sending (\w+) request", err))
    return apis, sum(1 for line in out.splitlines() if line.startswith("bench-"))


def cli_lag(bootstrap: str, output: str) -> tuple[float, int]:
    """One whole `ecap-ops lag --output table|json` process: (seconds, groups in its output)."""
    cmd = [*ecap_ops_command(), "--bootstrap-servers", bootstrap]
    cmd += ["lag", "--group", "bench-*", "--output", output]
    proc = run_process(cmd, timeout=600, ok=(0, 1))  # 1: some group is critical
    secs = proc.seconds
    RSS[f"ecap-ops lag -o {output}"] = max(RSS.get(f"ecap-ops lag -o {output}", 0), proc.rss_mb)
    if output == "json":
        return secs, len({s["group"] for s in json.loads(proc.stdout)["statuses"]})
    lines = proc.stdout.splitlines()
    if not lines or lines[0].split()[:2] != ["GROUP", "TOPIC"]:
        raise SystemExit(f"ecap-ops lag printed no table: {proc.stdout[:500]!r}")
    return secs, len({line.split()[0] for line in lines[2:] if line.strip()})


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="G = 10 and 100 only")
    ap.add_argument("--nodes", type=int, default=1, help="brokers in the local cluster (default 1)")
    ap.add_argument("--runs", type=int, default=5, help="runs per figure, median (default 5)")
    add_size_args(ap, topics=False, groups=True)
    args = ap.parse_args()

    import dagster as dg
    from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    from ecap_ops.catalog import load_catalog
    from ecap_ops.core.lag import encode_window
    from ecap_ops.gateway import KafkaGateway
    from ecap_ops.gateway.lag import LagScope
    from ecap_ops.localkafka import LocalCluster
    from ecap_ops.orchestration.alerts import AlertsResource
    from ecap_ops.orchestration.lag import build_lag_sensor, notify_consumer_lag
    from ecap_ops.orchestration.resources import KafkaResource
    from ecap_ops.services.lag import lag_tick
    from ecap_ops.settings import KafkaSettings

    sizes = args.groups or ([10, 100] if args.quick else [10, 100, 1000])
    catalog = load_catalog()
    tmp = Path(tempfile.mkdtemp(prefix="bench-lag-"))
    log_config = tmp / "log4j2.yaml"
    log_config.write_text(LOG4J)
    extra = {"heap": args.heap} if args.heap else {}
    cluster = LocalCluster(tmp / "kafka", nodes=args.nodes, port=0, **extra)
    print(f"starting a {args.nodes}-node local Kafka ...", flush=True)
    cluster.start(timeout=600)
    try:
        bs = cluster.bootstrap_servers
        settings = KafkaSettings(bootstrap_servers=bs, request_timeout_ms=30000)
        admin = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=30000)
        rf = min(args.nodes, 3)
        admin.create_topics(
            {
                t.name: {"num_partitions": t.partitions, "replication_factor": rf}
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
        rows = []
        sensor = build_lag_sensor(catalog, include=("bench-*",), budget_s=20, interval_s=30)
        resources = {"kafka": KafkaResource(bootstrap_servers=bs), "alerts": AlertsResource()}
        defs = dg.Definitions(jobs=[notify_consumer_lag], sensors=[sensor], resources=resources)
        instance = dg.DagsterInstance.ephemeral()
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
            scope = LagScope(include=("bench-*",))
            with KafkaGateway(settings) as gw:
                first = lag_tick(gw, catalog, None, scope=scope)
            ticks = []
            for _ in range(args.runs):
                with KafkaGateway(settings) as gw:
                    t = time.perf_counter()
                    second = lag_tick(gw, catalog, first.evaluation.window, scope=scope)
                    ticks.append(time.perf_counter() - t)
                assert len({s.group for s in second.statuses}) == g, "not every group was measured"
            assert all(s.lag_seconds_kind == "exact" for s in second.statuses), "not exact"
            estimated = []
            for _ in range(args.runs):
                with KafkaGateway(settings) as gw:
                    t = time.perf_counter()
                    est = lag_tick(
                        gw, catalog, first.evaluation.window, scope=scope, exact_seconds=False
                    )
                    estimated.append(time.perf_counter() - t)
            cursor, _ = encode_window(second.evaluation.window)
            sensor_ticks = []
            for _ in range(args.runs):
                ctx = dg.build_sensor_context(
                    instance=instance, cursor=cursor, definitions=defs, resources=resources
                )
                t = time.perf_counter()
                res = sensor.evaluate_tick(ctx)
                sensor_ticks.append(time.perf_counter() - t)
            clis: dict[str, list[float]] = {"table": [], "json": []}
            for _ in range(args.runs):
                for output, times in clis.items():
                    secs, cli_groups = cli_lag(bs, output)
                    assert cli_groups == g, (
                        f"ecap-ops lag -o {output} printed {cli_groups} groups, not {g}"
                    )
                    times.append(secs)
            theirs = [kafka_tool_describe(bs)[0] for _ in range(args.runs)]
            their_apis, their_rows = kafka_tool_requests(bs, log_config)
            rows.append(
                (
                    g,
                    statistics.median(ticks),
                    second.measurement.requests,
                    statistics.median(sensor_ticks),
                    len(res.cursor or ""),
                    statistics.median(clis["table"]),
                    statistics.median(clis["json"]),
                    statistics.median(theirs),
                    their_apis,
                    their_rows,
                    statistics.median(estimated),
                    est.measurement.requests,
                )
            )
            print(
                f"  G={g}: ecap-ops tick {rows[-1][1]:.2f} s, CLI table {rows[-1][5]:.2f} s, "
                f"CLI json {rows[-1][6]:.2f} s, kafka-consumer-groups {rows[-1][7]:.2f} s",
                flush=True,
            )
        admin.close()
    finally:
        cluster.stop(timeout=60)

    print()
    print(
        f"Consumer lag of G groups x {len(parts)} partitions (5 catalog topics), "
        f"{args.nodes} broker(s), median of {args.runs} runs"
    )
    print(
        "ecap-ops tick: in process; sensor: evaluate_tick with the cursor; CLI table / json: "
        "whole `ecap-ops lag` process, default table output / `-o json`; Kafka: whole "
        "kafka-consumer-groups process (JVM start included, table output)"
    )
    head = (
        f"{'G':>6} | {'tick s':>7} {'requests':>8} | {'sensor s':>8} {'cursor B':>9} | "
        f"{'CLI table s':>11} {'CLI json s':>10} | {'kafka-consumer-groups s':>23} {'requests':>8} | "
        f"{'x tick':>6} {'x table':>7} {'x json':>6}"
    )
    print(head)
    print("-" * len(head))
    for g, ours, req, sensor_s, cur, table_s, json_s, theirs, apis, *_ in rows:
        print(
            f"{g:>6} | {ours:>7.3f} {sum(req.values()):>8} | {sensor_s:>8.3f} {cur:>9,} | "
            f"{table_s:>11.2f} {json_s:>10.2f} | {theirs:>23.2f} {sum(apis.values()):>8} | "
            f"{theirs / ours:>5.0f}x {theirs / table_s:>6.1f}x {theirs / json_s:>5.1f}x"
        )
    print()
    print("Extra cost of exact lag in seconds (reading the records at the groups' positions)")
    head = (
        f"{'G':>6} | {'tick s':>7} {'requests':>8} | {'no exact s':>10} {'requests':>8} | "
        f"{'extra s':>7} {'extra requests':>14}"
    )
    print(head)
    print("-" * len(head))
    for g, ours, req, *_, est_s, est_req in rows:
        print(
            f"{g:>6} | {ours:>7.3f} {sum(req.values()):>8} | {est_s:>10.3f} "
            f"{sum(est_req.values()):>8} | {ours - est_s:>+7.3f} "
            f"{sum(req.values()) - sum(est_req.values()):>+14}"
        )
    print()
    for g, _, req, _, _, _, _, _, apis, their_rows, *_ in rows:
        print(f"G={g}: ecap-ops requests {dict(sorted(req.items()))}")
        print(
            f"G={g}: kafka-consumer-groups requests {dict(sorted(apis.items()))} "
            f"({their_rows} rows of bench groups)"
        )
    print()
    print(
        "Peak RSS of the whole processes, largest size: "
        + ", ".join(f"{k} {v:,.0f} MB" for k, v in sorted(RSS.items()))
    )
    big = [r for r in rows if r[0] >= 1000]
    if len(big) > 1:
        print_growth(
            "Consumer lag by groups",
            {
                "tick (in process)": {r[0]: r[1] for r in big},
                "sensor tick": {r[0]: r[3] for r in big},
                "ecap-ops lag (table)": {r[0]: r[5] for r in big},
                "ecap-ops lag -o json": {r[0]: r[6] for r in big},
                "kafka-consumer-groups": {r[0]: r[7] for r in big},
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
