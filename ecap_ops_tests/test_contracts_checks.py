"""The contract checks on the real broker, each with a scripted traffic scene: malformed JSON
and schema violations found with their offsets, unkeyed and mis-keyed records, a hot key,
a producer that stops (freshness) and comes back, volume below and above its band."""

import json
import time

import pytest

from ecap_ops.catalog.loader import parse_catalog
from ecap_ops.gateway import KafkaGateway
from ecap_ops.services.contracts import check_contracts

pytestmark = pytest.mark.kafka

SCHEMA = {
    "type": "object",
    "required": ["user_id", "amount"],
    "properties": {"user_id": {"type": "string"}, "amount": {"type": "number"}},
}


def contract_catalog(
    name: str,
    partitions: int = 3,
    freshness: str = "none",
    volume: tuple[int, int] = (1, 10**9),
    window: str = "1h",
    max_skew: float = 2.0,
) -> object:
    text = f"""
version: 1
environments: {{dev: {{replication_factor: 1}}}}
topics:
  {name}:
    partitions: {partitions}
    partition_key: user_id
    expected_volume: {{min_per_hour: {volume[0]}, max_per_hour: {volume[1]}}}
contracts:
  {name}:
    schema: {json.dumps(SCHEMA)}
    freshness: {freshness}
    max_record_bytes: 4KiB
    volume_window: {window}
    max_skew: {max_skew}
"""
    return parse_catalog(text, env="dev")


def create(settings, name: str, partitions: int = 3) -> None:
    with KafkaGateway(settings) as gw:
        gw.require(
            gw.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}}),
            "creating",
        )


def produce(settings, name: str, records: list[tuple[object, object, int | None]]) -> None:
    """(key, value, partition) each; bytes as given, str encoded, dict as JSON."""

    def enc(x):
        if x is None or isinstance(x, bytes):
            return x
        return (x if isinstance(x, str) else json.dumps(x)).encode()

    with KafkaGateway(settings) as gw, gw.producer("test traffic", acks="all") as p:
        for key, value, part in records:
            p.send(name, key=enc(key), value=enc(value), partition=part)
        p.flush(timeout=30)


def good(i: int, user: str | None = None) -> tuple[str, dict, None]:
    u = user or f"u{i}"
    return (u, {"user_id": u, "amount": i}, None)


def run(settings, catalog, history=None, now=None, **kw):
    with KafkaGateway(settings) as gw:
        return check_contracts(gw, catalog, history, now=now, **kw)


def test_malformed_json_and_schema_violations_found_with_offsets(kafka_settings, unique_name):
    name = unique_name
    create(kafka_settings, name, 1)
    catalog = contract_catalog(name, 1)
    produce(
        kafka_settings,
        name,
        [
            good(0),
            good(1),
            ("u2", b"{not json", 0),
            good(3),
            ("u4", {"user_id": "u4", "amount": "lots"}, 0),
        ],
    )
    report = run(kafka_settings, catalog)
    r = report.for_topic(name)["schema_conformance"]
    assert not r.passed and r.level == "WARN"
    assert r.metadata["records_failing"] == ("int", 2)
    assert r.metadata["first_partition"] == ("int", 0)
    assert r.metadata["first_offset"] == ("int", 2)
    rows = r.metadata["failures"][1][1]
    assert rows[0][:2] == [0, 2] and "not JSON" in rows[0][2]
    assert rows[1][:2] == [0, 4] and "$.amount" in rows[1][2] and "number" in rows[1][2]
    assert "partition 0 offset 2" in r.description


def test_clean_traffic_passes_every_sampled_check(kafka_settings, unique_name):
    name = unique_name
    create(kafka_settings, name)
    catalog = contract_catalog(name)
    produce(kafka_settings, name, [good(i) for i in range(30)])
    checks = run(kafka_settings, catalog).for_topic(name)
    assert checks["schema_conformance"].passed, checks["schema_conformance"].description
    assert checks["key_discipline"].passed, checks["key_discipline"].description
    assert checks["schema_conformance"].metadata["records_sampled"] == ("int", 30)


def test_unkeyed_and_mismatched_keys_found(kafka_settings, unique_name):
    name = unique_name
    create(kafka_settings, name, 1)
    catalog = contract_catalog(name, 1)
    produce(
        kafka_settings,
        name,
        [
            good(0),
            (None, {"user_id": "u1", "amount": 1}, 0),
            ("u9", {"user_id": "u2", "amount": 2}, 0),
        ],
    )
    r = run(kafka_settings, catalog).for_topic(name)["key_discipline"]
    assert not r.passed
    assert r.metadata["records_unkeyed"] == ("int", 1)
    assert r.metadata["records_key_mismatch"] == ("int", 1)
    rows = r.metadata["offenders"][1][1]
    assert rows[0] == [0, 1, "no key"]
    assert rows[1][:2] == [0, 2] and "'u9'" in rows[1][2] and "'u2'" in rows[1][2]


def test_a_hot_key_skewing_one_partition_is_flagged(kafka_settings, unique_name):
    name = unique_name
    create(kafka_settings, name, 3)
    catalog = contract_catalog(name, 3)
    hot = [good(i, "whale") for i in range(270)]
    produce(kafka_settings, name, hot + [good(i) for i in range(60)])
    r = run(kafka_settings, catalog).for_topic(name)["partition_balance"]
    assert not r.passed, r.description
    assert r.metadata["skew"][1] > 2.0
    assert r.metadata["hottest_keys"][1][1][0][0] == "whale"
    assert "whale" in r.description

    # an even spread over the same partitions passes
    even = unique_name + "-even"
    create(kafka_settings, even, 3)
    produce(kafka_settings, even, [good(i) for i in range(300)])
    r2 = run(kafka_settings, contract_catalog(even, 3)).for_topic(even)["partition_balance"]
    assert r2.passed and r2.judged, r2.description


def test_a_producer_that_stops_trips_freshness_and_recovery_passes(kafka_settings, unique_name):
    from ecap_ops.core.contracts import decide

    name = unique_name
    create(kafka_settings, name, 2)
    catalog = contract_catalog(name, 2, freshness="3s")
    produce(kafka_settings, name, [good(i) for i in range(10)])
    first = run(kafka_settings, catalog)
    assert first.for_topic(name)["freshness"].passed
    state = decide(None, first.results, first.now).state
    produce(kafka_settings, name, [good(i) for i in range(5)])
    second = run(kafka_settings, catalog, first.history)
    assert second.for_topic(name)["freshness"].passed  # moved since the first look
    time.sleep(4)  # the producer stops for longer than the limit
    third = run(kafka_settings, catalog, second.history)
    f = third.for_topic(name)["freshness"]
    assert not f.passed and "longer than the limit of 3s" in f.description
    d = decide(state, third.results, third.now)
    assert [e.kind for e in d.events] == ["open"] and d.events[0].topic == name
    # the producer is back: two clean runs resolve the incident
    produce(kafka_settings, name, [good(i) for i in range(5)])
    fourth = run(kafka_settings, catalog, third.history)
    assert fourth.for_topic(name)["freshness"].passed
    d2 = decide(d.state, fourth.results, fourth.now)
    assert not d2.events
    produce(kafka_settings, name, [good(i) for i in range(5)])
    fifth = run(kafka_settings, catalog, fourth.history)
    d3 = decide(d2.state, fifth.results, fifth.now)
    assert [e.kind for e in d3.events] == ["resolve"]
    assert d3.state["incidents"] == {}


def test_volume_below_and_above_the_band(kafka_settings, unique_name):
    name = unique_name
    create(kafka_settings, name, 2)
    # 3,600-36,000 records/hour = 1-10 records/s, measured over a 4 s window
    catalog = contract_catalog(name, 2, volume=(3600, 36000), window="4s")
    t0 = time.time()
    first = run(kafka_settings, catalog, now=t0)
    v = first.for_topic(name)["volume_in_band"]
    assert v.passed and not v.judged  # one observation: not judged yet
    # below: nothing written for 2 s (half the window)
    below = run(kafka_settings, catalog, first.history, now=t0 + 2)
    v = below.for_topic(name)["volume_in_band"]
    assert not v.passed and "below the expected 3,600-36,000/hour" in v.description
    # above: 200 records in the next 2 s = 360,000/hour
    produce(kafka_settings, name, [good(i) for i in range(200)])
    above = run(kafka_settings, catalog, below.history, now=t0 + 4)
    v = above.for_topic(name)["volume_in_band"]
    assert not v.passed and "above the expected" in v.description, v.description
    assert v.metadata["records_in_window"] == ("int", 200)
    # within: 20 records over the next 4 s (18,000/hour)
    produce(kafka_settings, name, [good(i) for i in range(20)])
    within = run(kafka_settings, catalog, above.history, now=t0 + 8.5)
    v = within.for_topic(name)["volume_in_band"]
    assert v.passed and v.judged, v.description
