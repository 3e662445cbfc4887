"""Consumer lag for G groups: ecap-ops vs Kafka's `kafka-consumer-groups --describe --all-groups`.

Starts its own local Kafka on free ports, creates the catalog's five topics with some
records, and for G = 10, 100, 1,000 groups (each committed on all five topics) measures, on
the same cluster in the same run:
  - ecap-ops: one lag tick (measure + evaluate), wall time and requests by type;
  - the sensor itself (consumer_lag_sensor.evaluate_tick with the previous cursor);
  - Kafka's tool: wall time (JVM start included) and requests, counted from its client's
    DEBUG log ("Sending <API> request").

    .venv/bin/python benchmarks/bench_lag.py [--quick] [--nodes N]
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

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


def kafka_tool_describe(bootstrap: str, log_config: Path) -> tuple[float, Counter, int]:
    from ecap_ops.localkafka.jars import java_command
    from ecap_ops.localkafka.tools import tool_spec

    cmd = java_command(
        tool_spec("kafka-consumer-groups").main_class,
        ["--bootstrap-server", bootstrap, "--describe", "--all-groups"],
        log_config=log_config,
        jvm_opts=("-XX:TieredStopAtLevel=1",),
    )
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    secs = time.perf_counter() - t
    apis = Counter(m.group(1) for m in re.finditer(r"Sending (\w+) request", proc.stderr))
    rows = sum(1 for line in proc.stdout.splitlines() if line.startswith("bench-"))
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
    return secs, apis, rows


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="G = 10 and 100 only")
    ap.add_argument("--nodes", type=int, default=1, help="brokers in the local cluster (default 1)")
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

    sizes = [10, 100] if args.quick else [10, 100, 1000]
    catalog = load_catalog()
    tmp = Path(tempfile.mkdtemp(prefix="bench-lag-"))
    log_config = tmp / "log4j2.yaml"
    log_config.write_text(LOG4J)
    cluster = LocalCluster(tmp / "kafka", nodes=args.nodes, port=0)
    print(f"starting a {args.nodes}-node local Kafka ...", flush=True)
    cluster.start(timeout=240)
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
            with KafkaGateway(settings) as gw:
                t = time.perf_counter()
                second = lag_tick(gw, catalog, first.evaluation.window, scope=scope)
                ours = time.perf_counter() - t
            assert len({s.group for s in second.statuses}) == g, "not every group was measured"
            cursor, _ = encode_window(second.evaluation.window)
            ctx = dg.build_sensor_context(
                instance=instance, cursor=cursor, definitions=defs, resources=resources
            )
            t = time.perf_counter()
            res = sensor.evaluate_tick(ctx)
            sensor_s = time.perf_counter() - t
            theirs, their_apis, their_rows = kafka_tool_describe(bs, log_config)
            rows.append(
                (
                    g,
                    ours,
                    second.measurement.requests,
                    sensor_s,
                    len(res.cursor or ""),
                    theirs,
                    their_apis,
                    their_rows,
                )
            )
            print(
                f"  G={g}: ecap-ops {ours:.2f} s, kafka-consumer-groups {theirs:.2f} s", flush=True
            )
        admin.close()
    finally:
        cluster.stop(timeout=60)

    print()
    print(
        f"Consumer lag of G groups x {len(parts)} partitions (5 catalog topics), {args.nodes} broker(s)"
    )
    head = f"{'G':>6} | {'ecap-ops s':>10} {'requests':>8} | {'sensor tick s':>13} {'cursor B':>9} | {'kafka-consumer-groups s':>23} {'requests':>8} | {'speed-up':>8}"
    print(head)
    print("-" * len(head))
    for g, ours, req, sensor_s, cur, theirs, apis, _ in rows:
        print(
            f"{g:>6} | {ours:>10.3f} {sum(req.values()):>8} | {sensor_s:>13.3f} {cur:>9,} | {theirs:>23.2f} {sum(apis.values()):>8} | {theirs / ours:>7.0f}x"
        )
    print()
    for g, _, req, _, _, _, apis, _ in rows:
        print(f"G={g}: ecap-ops requests {dict(sorted(req.items()))}")
        print(f"G={g}: kafka-consumer-groups requests {dict(sorted(apis.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
