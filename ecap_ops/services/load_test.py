"""`load-test`: write realistic keyed records that satisfy a topic's contract at a steady
rate, and report throughput and produce latency (p50, p99, max).

Records follow the setup guide's topics (transactions by user_id, user-events by
session_id, ...), each checked against the topic's JSON Schema before the run starts and
keyed by its partition_key. Keys come from `keys` distinct values; `skew` (0..1) is the
share of records that take the first key (a hot key). A record larger than the contract's
max_record_bytes (or the topic's max.message.bytes) is never sent: that topic stops there.

`load_test_guide` (`--profile guide`) drives every catalog topic with an expected volume at
the setup guide's rate (the top of its band by default: user-events at 500,000/hour, about
139/s, transactions at 50,000/hour, ...) at the same time, through one producer on one
merged schedule, and reports each topic and the total.
"""

import json
import random
import time
from dataclasses import asdict, dataclass

from ecap_ops.catalog.contracts import contracts_of
from ecap_ops.errors import EcapOpsError

MAX_RATE = 100_000
MAX_DURATION_S = 3600.0
MAX_KEYS = 1_000_000


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
    records_per_hour_asked: int = 0

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


@dataclass(frozen=True)
class GuideReport:
    """`--profile guide`: every topic's report and the total over all of them."""

    profile: str
    level: str  # where in each topic's expected band: top, middle, bottom
    duration_s: float
    topics: tuple[LoadReport, ...]
    total: dict

    def to_dict(self) -> dict:
        return {
            "profile": self.profile,
            "level": self.level,
            "duration_s": self.duration_s,
            "topics": [t.to_dict() for t in self.topics],
            "total": dict(self.total),
        }


GUIDE_LEVELS = ("top", "middle", "bottom")


def guide_rate(volume, level: str) -> float:
    """Records per second at `level` of an expected band (records per hour)."""
    per_hour = {
        "top": volume.max_per_hour,
        "bottom": volume.min_per_hour,
        "middle": (volume.min_per_hour + volume.max_per_hour) / 2,
    }[level]
    return per_hour / 3600.0


class _Stream:
    """One topic's share of a run: what to write, when, and what came back."""

    def __init__(self, spec, contract, rate: float, total: int, keys: int) -> None:
        self.spec = spec
        self.rate = rate
        self.total = total
        self.keys = keys
        self.key_names = [f"{spec.partition_key or 'key'}-{n}" for n in range(keys)]
        self.limit = min(
            x for x in (contract.max_record_bytes, spec.max_message_bytes, 1024 * 1024) if x
        )
        self.latencies: list[float] = []
        self.errors = 0
        self.sent = 0
        self.bytes = 0
        self.stopped = "duration"
        self.finished = 0.0

    def report(self, duration_s: float, started: float) -> LoadReport:
        seconds = max(self.finished, started) - started
        acked = len(self.latencies)
        return LoadReport(
            self.spec.name,
            float(self.rate),
            float(duration_s),
            self.sent,
            acked,
            self.errors,
            round(seconds, 3),
            round(acked / seconds, 1) if seconds > 0 else 0.0,
            self.bytes,
            round(percentile(self.latencies, 0.50), 2),
            round(percentile(self.latencies, 0.99), 2),
            round(max(self.latencies, default=0.0), 2),
            self.keys,
            self.stopped,
            round(self.rate * 3600),
        )


def _check_args(rate_ok: bool, rate, duration_s: float, keys: int, skew: float) -> None:
    if not rate_ok:
        raise LoadTestInvalid(
            f"--rate must be between 1 and {MAX_RATE:,} records/s, got {rate!r:.20}; nothing was produced"
        )
    if not (0 < duration_s <= MAX_DURATION_S):
        raise LoadTestInvalid(
            f"--duration must be more than 0 and at most 1h, got {duration_s!r:.20}; nothing was produced"
        )
    if not (1 <= keys <= MAX_KEYS) or not (0.0 <= skew <= 1.0):
        raise LoadTestInvalid(
            f"--keys must be between 1 and {MAX_KEYS:,} and --skew between 0 and 1, got {keys!r:.20} and {skew!r:.20}; nothing was produced"
        )


def _stream(catalog, spec, rate: float, duration_s: float, keys: int, rnd) -> _Stream:
    """A topic's stream, its generated records checked against its schema first."""
    from ecap_ops.core.contracts import schema_reason

    contract = contracts_of(catalog).get(spec.key)
    stream = _Stream(spec, contract, rate, max(1, int(rate * duration_s)), keys)
    sample = make_record(spec.key, spec.partition_key, 0, stream.key_names[0], rnd)
    if contract.schema is not None:
        why = schema_reason(contract.schema, sample)
        if why is not None:
            raise LoadTestInvalid(
                f"the generated records do not match {spec.name}'s schema ({why}); nothing was produced"
            )
    return stream


def _require_topics(gw, specs) -> None:
    names = [s.name for s in specs]
    found = gw.topics(names)
    missing = [n for n in names if n not in found]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise LoadTestInvalid(
            f"topic(s) {shown} do not exist on the cluster; create them first (create-topics); nothing was produced"
        )


def _drive(gw, streams: list[_Stream], skew: float, rnd) -> float:
    """Write every stream on one merged schedule (stream i's record n is due n / rate
    seconds after the start), through one producer (acks=all); returns the start time."""
    import heapq

    label = ", ".join(s.spec.name for s in streams[:3]) + (" ..." if len(streams) > 3 else "")
    due = [(0.0, i, 0) for i in range(len(streams))]
    heapq.heapify(due)
    started = time.monotonic()
    with gw.producer(f"load-testing {label}", acks="all", linger_ms=5) as producer:
        while due:
            at, i, n = heapq.heappop(due)
            stream = streams[i]
            wait = started + at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            spec = stream.spec
            key = stream.key_names[0] if rnd.random() < skew else rnd.choice(stream.key_names)
            value = json.dumps(make_record(spec.key, spec.partition_key, n, key, rnd)).encode()
            kb = key.encode()
            if len(value) + len(kb) > stream.limit:
                stream.stopped = "max_record_bytes"
                continue  # this topic stops; the others go on
            t0 = time.monotonic()

            def ok(_md, t0=t0, stream=stream):
                now = time.monotonic()
                stream.latencies.append((now - t0) * 1000)
                stream.finished = max(stream.finished, now)

            def failed(_exc, stream=stream):
                stream.errors += 1
                stream.finished = max(stream.finished, time.monotonic())

            producer.send(spec.name, key=kb, value=value).add_callback(ok).add_errback(failed)
            stream.sent += 1
            stream.bytes += len(value) + len(kb)
            if n + 1 < stream.total:
                heapq.heappush(due, ((n + 1) / stream.rate, i, n + 1))
        producer.flush(timeout=60)
    ended = time.monotonic()
    for s in streams:  # a topic's time runs to its last acknowledgement, or the end
        s.finished = s.finished or ended
    return started


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
    _check_args(0 < rate <= MAX_RATE, rate, duration_s, keys, skew)
    spec = catalog.get(topic)
    if spec is None:
        raise LoadTestInvalid(
            f"{topic[:60]!r} is not a catalog topic; load-test writes records of a catalog topic's contract; nothing was produced"
        )
    _require_topics(gw, [spec])
    rnd = random.Random(seed)
    stream = _stream(catalog, spec, rate, duration_s, keys, rnd)
    started = _drive(gw, [stream], skew, rnd)
    return stream.report(duration_s, started)


def load_test_guide(
    gw,
    catalog,
    duration_s: float,
    level: str = "top",
    keys: int = 1000,
    skew: float = 0.0,
    seed: int = 1,
) -> GuideReport:
    """Every catalog topic with an expected volume at `level` of its band (records per
    hour, as the setup guide gives them), all at once for `duration_s`; at least one
    record per topic."""
    if level not in GUIDE_LEVELS:
        raise LoadTestInvalid(
            f"--level must be one of {', '.join(GUIDE_LEVELS)}, got {level[:20]!r}; nothing was produced"
        )
    _check_args(True, None, duration_s, keys, skew)
    specs = [s for s in catalog.topics if s.expected_volume is not None]
    if not specs:
        raise LoadTestInvalid(
            "no topic of the catalog declares expected_volume, so the guide profile has no rate to drive; nothing was produced"
        )
    _require_topics(gw, specs)
    rnd = random.Random(seed)
    streams = [
        _stream(catalog, s, guide_rate(s.expected_volume, level), duration_s, keys, rnd)
        for s in specs
    ]
    started = _drive(gw, streams, skew, rnd)
    reports = tuple(s.report(duration_s, started) for s in streams)
    latencies = [x for s in streams for x in s.latencies]
    seconds = max(s.finished for s in streams) - started
    acked = sum(r.records_acked for r in reports)
    total = {
        "topics": len(reports),
        "rate_asked": round(sum(s.rate for s in streams), 3),
        "records_per_hour_asked": round(sum(s.rate for s in streams) * 3600),
        "records_sent": sum(r.records_sent for r in reports),
        "records_acked": acked,
        "errors": sum(r.errors for r in reports),
        "seconds": round(seconds, 3),
        "records_per_second": round(acked / seconds, 1) if seconds > 0 else 0.0,
        "bytes_sent": sum(r.bytes_sent for r in reports),
        "latency_ms_p50": round(percentile(latencies, 0.50), 2),
        "latency_ms_p99": round(percentile(latencies, 0.99), 2),
        "latency_ms_max": round(max(latencies, default=0.0), 2),
    }
    return GuideReport("guide", level, float(duration_s), reports, total)


load_test.__test__ = False  # type: ignore[attr-defined]
load_test_guide.__test__ = False  # type: ignore[attr-defined]
