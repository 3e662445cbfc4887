"""Helpers shared by the tests: free ports, unique names, and Kafka's own tools as a check."""

import re
import subprocess
import uuid

from ecap_ops.localkafka import LocalCluster, run_tool
from ecap_ops.localkafka.cluster import free_port
from ecap_ops.settings import KafkaSettings

__all__ = [
    "consume_and_commit",
    "free_port",
    "kafka_tool",
    "make_consumer",
    "mirrored_pair",
    "run_failures",
    "topic_name",
]


def topic_name(hint: str = "t") -> str:
    """A fresh topic-name-safe string starting with a readable hint."""
    safe = re.sub(r"[^a-zA-Z0-9._-]+", "-", hint).strip("-.")[:60] or "t"
    return f"{safe}-{uuid.uuid4().hex[:8]}"


# A member that joins its group before its metadata names the topic is assigned nothing and
# waits for kafka-python's next metadata refresh (5 minutes by default) to rejoin: seen in
# full runs, on a broker holding the whole session's topics. A test consumer refreshes its
# metadata within a second, so that rejoin comes at once.
TEST_METADATA_MAX_AGE_MS = 1000


def run_failures(result) -> str:
    """What failed in a Dagster run, for an assertion's message: each failed step and its
    error with its causes (a bare `assert result.success` says only `False`)."""
    events = getattr(result, "all_events", None)
    if events is None:
        return repr(result)
    lines = []
    for e in events:
        if not (e.is_step_failure or e.is_run_failure):
            continue
        data = e.step_failure_data if e.is_step_failure else e.event_specific_data
        err = getattr(data, "error", None)
        lines.append(f"{e.step_key or 'run'}: {e.message}")
        while err is not None:
            lines.append(f"  {err.cls_name}: {err.message.strip()}")
            err = err.cause
    return "\n".join(lines) or "no failed step recorded"


def make_consumer(*topics: str, **options):
    """A kafka-python `KafkaConsumer` for a test (its metadata refreshed within a second)."""
    from kafka import KafkaConsumer

    options.setdefault("metadata_max_age_ms", TEST_METADATA_MAX_AGE_MS)
    return KafkaConsumer(*topics, **options)


def consume_and_commit(
    bootstrap: str, topic: str, group: str, count: int, timeout: float = 180
) -> int:
    """`group` reads the first `count` records of `topic` from the start and commits where
    it stopped; how many it read. Its consumer takes every partition itself (no group
    join, so no rebalance or join race on a loaded machine) and commits as the group."""
    import time

    from kafka import TopicPartition

    c = make_consumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        deadline = time.monotonic() + timeout
        partitions = c.partitions_for_topic(topic)
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.5)
            partitions = c.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions or ())]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        got = 0
        while got < count and time.monotonic() < deadline:
            for msgs in c.poll(timeout_ms=1000, max_records=count - got).values():
                got += len(msgs)
        for tp in tps:
            c.position(tp)  # a partition not read yet commits its start
        c.commit()
        return got
    finally:
        c.close()


def kafka_tool(
    target: LocalCluster | KafkaSettings | str,
    tool: str,
    *args: str,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """Run one of Kafka's own tools against a cluster, settings or bootstrap string; capture output."""
    if isinstance(target, LocalCluster):
        settings = KafkaSettings(bootstrap_servers=target.bootstrap_servers)
    elif isinstance(target, str):
        settings = KafkaSettings(bootstrap_servers=target)
    else:
        settings = target
    return run_tool(tool, list(args), settings, capture=True, timeout=timeout, input=input)


def prod_catalog_named(prefix: str, keys: list[str]):
    """The catalog's topics `keys`, judged as production, named `<prefix>-<key>`: a test's
    own topics, out of the way of the session cluster's catalog topics."""
    import dataclasses

    from ecap_ops.catalog import load_catalog
    from ecap_ops.catalog.access import AccessSpec

    picked = load_catalog(env="dev").select(keys)
    return dataclasses.replace(
        picked,
        env="prod",
        # No declared access: the session's broker runs no authorizer (test_access_health.py).
        access=AccessSpec(),
        topics=tuple(dataclasses.replace(t, name=f"{prefix}-{t.key}") for t in picked.topics),
    )


def health_job(catalog, bootstrap: str, alerts_jsonl):
    """The job `kafka_health_check` of `catalog` against `bootstrap`, alerting to a JSON-lines file."""
    import dagster as dg

    from ecap_ops.orchestration import health
    from ecap_ops.orchestration.alerts import AlertsResource
    from ecap_ops.orchestration.resources import KafkaResource

    defs = dg.Definitions.merge(
        health.build_defs(catalog),
        dg.Definitions(
            resources={
                "kafka": KafkaResource(bootstrap_servers=bootstrap),
                "alerts": AlertsResource(jsonl_path=str(alerts_jsonl)),
            }
        ),
    )
    return defs.get_job_def("kafka_health_check")


def mirrored_pair(
    base,
    prod_bootstrap: str,
    dr_bootstrap: str,
    topics: dict[str, str],
    mirrored: list[str],
    offset_lag_max: int,
) -> dict[str, str]:
    """Files for two clusters under `base`: a clusters file naming `prod` (primary) and `dr`
    (standby), a dev catalog of `topics` (name -> its YAML flow mapping) with MirrorMaker
    on `mirrored` at short intervals and a replication-lag warning at 1 record; the
    ECAP_* variables that point the CLI at them and at state and snapshot folders of their
    own (KAFKA_BOOTSTRAP_SERVERS empty)."""
    (base / "clusters.yaml").write_text(
        "version: 1\nclusters:\n"
        f"  prod: {{role: primary, env: dev, bootstrap_servers: '{prod_bootstrap}'}}\n"
        f"  dr: {{role: standby, env: dev, bootstrap_servers: '{dr_bootstrap}'}}\n"
    )
    declared = "".join(f"  {name}: {spec}\n" for name, spec in topics.items())
    (base / "catalog.yaml").write_text(
        "version: 1\nenvironments:\n  dev: {replication_factor: 1}\ntopics:\n"
        + declared
        + f"""mirror:
  topics: [{", ".join(mirrored)}]
  checkpoint_interval: 1s
  refresh_interval: 2s
  offset_lag_max: {offset_lag_max}
  lag: {{warning_records: 1, critical_records: 100000, warning_seconds: 1h, critical_seconds: 2h}}
"""
    )
    return {
        "ECAP_CLUSTERS_FILE": str(base / "clusters.yaml"),
        "ECAP_CATALOG": str(base / "catalog.yaml"),
        "ECAP_STATE_DIR": str(base / "state"),
        "ECAP_SNAPSHOT_DIR": str(base / "snapshots"),
        "ECAP_ENV": "dev",
        "KAFKA_BOOTSTRAP_SERVERS": "",
    }


def answer_bytes(payload, version: int, correlation_id: int = 7):
    """A kafka-python answer with its header, encoded at `version` and ready to be read the
    way a connection reads it (`parse_header`, then `decode`)."""
    from kafka.protocol.frame import KafkaBytes

    payload.API_VERSION = version
    payload.with_header(correlation_id=correlation_id)
    raw = payload.encode(header=True)
    buf = KafkaBytes(len(raw))
    buf.write(raw)
    buf.seek(0)
    return buf
