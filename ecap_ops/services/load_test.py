"""`load-test`: write realistic keyed records that satisfy a topic's contract at a steady
rate, and report throughput and produce latency (p50, p99, max).

Records follow the setup guide's topics (transactions by user_id, user-events by
session_id, ...), each checked against the topic's JSON Schema before the run starts and
keyed by its partition_key. Keys come from `keys` distinct values; `skew` (0..1) is the
share of records that take the first key (a hot key). A record larger than the contract's
max_record_bytes (or the topic's max.message.bytes) is never sent: the run stops there.
"""

import json
import random
import time
from dataclasses import asdict, dataclass

from ecap_ops.catalog.contracts import contracts_of
from ecap_ops.errors import EcapOpsError

MAX_RATE = 100_000
MAX_DURATION_S = 3600.0


class LoadTestInvalid(EcapOpsError):
    """A load test that cannot run as asked; nothing was produced."""


@dataclass(frozen=True)
class LoadReport:
    topic: str
    rate_asked: float
    duration_s: float
    records_sent: int
    records_acked: int
    errors: int
    seconds: float
    records_per_second: float
    bytes_sent: int
    latency_ms_p50: float
    latency_ms_p99: float
    latency_ms_max: float
    keys: int
    stopped: str  # why it stopped: duration, max_record_bytes

    def to_dict(self) -> dict:
        return asdict(self)


def make_record(
    topic_key: str, key_field: str | None, i: int, key: str, rnd: random.Random
) -> dict:
    """One realistic value of the guide's topic `topic_key` with `key` in its key field."""
    now = int(time.time() * 1000)
    if topic_key == "transactions":
        doc = {
            "user_id": key,
            "amount": round(rnd.uniform(1, 500), 2),
            "transaction_id": f"tx-{i}",
            "currency": "EUR",
            "status": "completed",
            "timestamp": now,
        }
    elif topic_key == "user-events":
        doc = {
            "session_id": key,
            "user_id": f"u{rnd.randrange(100000)}",
            "event_type": rnd.choice(["page_view", "click", "search", "add_to_cart"]),
            "page": f"/p/{rnd.randrange(1000)}",
            "timestamp": now,
        }
    elif topic_key == "product-updates":
        doc = {
            "product_id": key,
            "name": f"product {key}",
            "price": round(rnd.uniform(1, 900), 2),
            "inventory": rnd.randrange(1000),
            "updated_at": now,
        }
    elif topic_key == "fraud-alerts":
        doc = {
            "user_id": key,
            "risk_score": round(rnd.random(), 3),
            "reason": "velocity",
            "timestamp": now,
        }
    elif topic_key == "analytics-results":
        doc = {"metric_type": key, "value": rnd.random() * 1000, "computed_at": now}
    else:
        doc = {"id": i, "timestamp": now}
    if key_field:
        doc[key_field] = key
    return doc


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def load_test(
    gw,
    catalog,
    topic: str,
    rate: float,
    duration_s: float,
    keys: int = 1000,
    skew: float = 0.0,
    seed: int = 1,
) -> LoadReport:
    """Produce to `topic` at `rate` records/s for `duration_s` seconds (acks=all)."""
    from ecap_ops.core.contracts import schema_reason

    if not (0 < rate <= MAX_RATE):
        raise LoadTestInvalid(
            f"--rate must be between 1 and {MAX_RATE:,} records/s, got {rate!r:.20}; nothing was produced"
        )
    if not (0 < duration_s <= MAX_DURATION_S):
        raise LoadTestInvalid(
            f"--duration must be more than 0 and at most 1h, got {duration_s!r:.20}; nothing was produced"
        )
    if keys < 1 or not (0.0 <= skew <= 1.0):
        raise LoadTestInvalid(
            "--keys must be >= 1 and --skew between 0 and 1; nothing was produced"
        )
    spec = catalog.get(topic)
    if spec is None:
        raise LoadTestInvalid(
            f"{topic[:60]!r} is not a catalog topic; load-test writes records of a catalog topic's contract; nothing was produced"
        )
    if spec.name not in gw.topics([spec.name]):
        raise LoadTestInvalid(
            f"topic {spec.name!r} does not exist on the cluster; create it first (create-topics); nothing was produced"
        )
    contract = contracts_of(catalog).get(spec.key)
    rnd = random.Random(seed)
    limit = min(x for x in (contract.max_record_bytes, spec.max_message_bytes, 1024 * 1024) if x)
    key_names = [f"{spec.partition_key or 'key'}-{n}" for n in range(keys)]
    sample = make_record(spec.key, spec.partition_key, 0, key_names[0], rnd)
    if contract.schema is not None:
        why = schema_reason(contract.schema, sample)
        if why is not None:
            raise LoadTestInvalid(
                f"the generated records do not match {spec.name}'s schema ({why}); nothing was produced"
            )
    total = max(1, int(rate * duration_s))
    latencies: list[float] = []
    errors = [0]
    sent = acked = size_sent = 0
    stopped = "duration"
    started = time.monotonic()
    with gw.producer(f"load-testing {spec.name}", acks="all", linger_ms=5) as producer:
        for i in range(total):
            due = started + i / rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            key = key_names[0] if rnd.random() < skew else rnd.choice(key_names)
            value = json.dumps(make_record(spec.key, spec.partition_key, i, key, rnd)).encode()
            kb = key.encode()
            if len(value) + len(kb) > limit:
                stopped = "max_record_bytes"
                break
            t0 = time.monotonic()

            def ok(_md, t0=t0):
                latencies.append((time.monotonic() - t0) * 1000)

            def failed(_exc):
                errors[0] += 1

            producer.send(spec.name, key=kb, value=value).add_callback(ok).add_errback(failed)
            sent += 1
            size_sent += len(value) + len(kb)
        producer.flush(timeout=60)
    seconds = time.monotonic() - started
    acked = len(latencies)
    return LoadReport(
        spec.name,
        float(rate),
        float(duration_s),
        sent,
        acked,
        errors[0],
        round(seconds, 3),
        round(acked / seconds, 1) if seconds > 0 else 0.0,
        size_sent,
        round(percentile(latencies, 0.50), 2),
        round(percentile(latencies, 0.99), 2),
        round(max(latencies, default=0.0), 2),
        keys,
        stopped,
    )


load_test.__test__ = False  # type: ignore[attr-defined]
