"""Reading what the health check judges: brokers, the KRaft quorum, partitions, log
directories, and a produce-then-consume canary on a topic of our own.

Each step is bounded by the settings' timeouts. A cluster that does not answer at all
gives an observation with `error` set (never an exception and never a hang); a step that
fails on a cluster that does answer is recorded and the others still run.
"""

import logging
import time
import uuid
from collections.abc import Callable

from ecap_ops.core.health import CanaryResult, DiskInfo, HealthObservation, Quorum, QuorumVoter
from ecap_ops.core.partition_health import MIN_ISR_KEY
from ecap_ops.core.state import CANARY_TOPIC
from ecap_ops.errors import EcapOpsError, KafkaAuthFailed, KafkaUnavailable
from ecap_ops.gateway.activity import broker_config, log_dirs
from ecap_ops.gateway.client import KafkaGateway

log = logging.getLogger(__name__)


def describe_quorum(gw: KafkaGateway) -> Quorum:
    """The KRaft metadata quorum: leader, high watermark, voters with their log end offsets."""
    raw = gw.call("describing the KRaft quorum", lambda a: a.describe_metadata_quorum())
    part = raw["topics"][0]["partitions"][0]
    leader = part.get("leader_id")
    voters = tuple(
        QuorumVoter(
            v["replica_id"], int(v.get("log_end_offset", -1)), v.get("last_fetch_timestamp")
        )
        for v in part.get("current_voters") or []
    )
    observers = tuple(o["replica_id"] for o in part.get("observers") or [])
    return Quorum(
        leader if leader is not None and leader >= 0 else None,
        int(part.get("high_watermark", 0)),
        voters,
        observers,
    )


def run_canary(
    gw: KafkaGateway,
    live_brokers: int,
    count: int = 3,
    timeout_s: float = 5.0,
    ensure: Callable[[KafkaGateway, int], None] | None = None,
) -> CanaryResult:
    """Produce `count` uniquely tagged messages (acks=all) and read them back from the
    partition, waiting at most `timeout_s` for them. Latency is send to receipt."""
    from kafka import TopicPartition

    settings = gw.settings
    try:
        if ensure is not None:
            ensure(gw, live_brokers)  # creating the topic is a change: the services do it
    except EcapOpsError as exc:
        return CanaryResult(CANARY_TOPIC, count, 0, None, error=str(exc))
    tag = uuid.uuid4().hex
    wait_ms = int(timeout_s * 1000)
    sent_at: dict[bytes, float] = {}
    got: dict[bytes, float] = {}
    deadline = time.monotonic() + timeout_s
    try:
        with (
            gw.producer(
                "running the canary",
                acks="all",
                linger_ms=0,
                retries=1,
                max_block_ms=wait_ms,
                request_timeout_ms=wait_ms,
            ) as producer,
            gw.consumer(
                "running the canary", fetch_max_wait_ms=100, request_timeout_ms=wait_ms
            ) as consumer,
        ):
            tp = TopicPartition(CANARY_TOPIC, 0)
            consumer.assign([tp])
            first_offset = None
            for i in range(count):
                value = f"{tag}:{i}".encode()
                sent_at[value] = time.monotonic()
                md = producer.send(CANARY_TOPIC, value=value, partition=0).get(
                    timeout=max(0.5, deadline - time.monotonic())
                )
                first_offset = md.offset if first_offset is None else first_offset
            consumer.seek(tp, first_offset)
            while len(got) < count and time.monotonic() < deadline:
                batches = consumer.poll(
                    timeout_ms=max(50, int(min(0.5, deadline - time.monotonic()) * 1000))
                )
                now = time.monotonic()
                for records in batches.values():
                    for r in records:
                        if r.value in sent_at and r.value not in got:
                            got[r.value] = now
    except EcapOpsError as exc:
        err = str(exc)
    except Exception as exc:  # a canary failure is a finding, never a crash of the check
        err = settings.redact(f"{type(exc).__name__}: {exc}")
    else:
        err = None if len(got) == count else f"waited {timeout_s:g} s"
    latencies = [(got[v] - sent_at[v]) * 1000 for v in got]
    return CanaryResult(
        CANARY_TOPIC, count, len(got), max(latencies) if latencies else None, error=err
    )


def fenced_brokers(gw: KafkaGateway) -> tuple[int, ...]:
    """The brokers the cluster reports as fenced."""
    info = gw.describe_cluster()
    return tuple(sorted(b["broker_id"] for b in info.get("brokers", []) if b.get("is_fenced")))


def broker_min_isr(gw: KafkaGateway, live: list[int]) -> int | None:
    """The brokers' min.insync.replicas (read from one live broker), or None when it could
    not be read (the partition-health rule then holds topics to Kafka's default)."""
    if not live:
        return None
    try:
        return int(broker_config(gw, live[0], [MIN_ISR_KEY])[MIN_ISR_KEY])
    except (EcapOpsError, KeyError, ValueError):
        log.debug("could not read the broker's min.insync.replicas", exc_info=True)
        return None


def read_disks(gw: KafkaGateway, live: list[int]) -> tuple[tuple[DiskInfo, ...], dict[int, str]]:
    """Every live broker's log directories, and per broker why they could not be read."""
    disks, errors = [], {}
    for b in log_dirs(gw, live, {}):
        if b.error:
            errors[b.broker] = b.error
        for d in b.dirs:
            disks.append(DiskInfo(d.broker, d.path, d.error, d.total_bytes, d.usable_bytes))
    return tuple(disks), errors


def observe_health(
    gw: KafkaGateway,
    env: str,
    canary: bool = True,
    canary_timeout_s: float = 5.0,
    ensure_canary: Callable[[KafkaGateway, int], None] | None = None,
) -> HealthObservation:
    """Read everything the health check judges. Unreachable: an observation with `error`.
    `ensure_canary` creates the canary topic when it is missing (on the write path). Reads
    only: the catalog comparison is the health service's, on the cluster read here."""
    at_ms = int(time.time() * 1000)
    bootstrap = gw.settings.bootstrap_servers
    try:
        fenced = fenced_brokers(gw)
        cluster = gw.read_cluster_state(None, with_data=False)
    except (KafkaUnavailable, KafkaAuthFailed) as exc:
        return HealthObservation(bootstrap, env, at_ms, error=str(exc))
    quorum, quorum_error = None, None
    try:
        quorum = describe_quorum(gw)
    except EcapOpsError as exc:
        quorum_error = str(exc)
    live = [b.node_id for b in cluster.brokers]
    disks, disk_errors = read_disks(gw, live)
    canary_result = None
    if canary:
        canary_result = run_canary(gw, len(live), timeout_s=canary_timeout_s, ensure=ensure_canary)
    return HealthObservation(
        bootstrap=bootstrap,
        env=env,
        at_ms=at_ms,
        cluster=cluster,
        fenced_brokers=fenced,
        quorum=quorum,
        quorum_error=quorum_error,
        broker_min_isr=broker_min_isr(gw, live),
        disks=disks,
        disk_errors=disk_errors,
        canary=canary_result,
    )
