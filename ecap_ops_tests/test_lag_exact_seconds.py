"""Exact lag in seconds from the first look, on the real broker: records produced with a
known age (CreateTime set by the producer), a topic stamped by the broker (LogAppendTime),
groups at several positions on one partition, a group behind the log start, and the
fallbacks when the records cannot be read (the broker refuses the offset, the Fetch fails):
the estimate's kind, never a crash. At most one Fetch per partition leader per look."""

import json
import time

import pytest
from click.testing import CliRunner
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ecap_ops.catalog import load_catalog
from ecap_ops.cli import main
from ecap_ops.gateway import KafkaGateway, record_times
from ecap_ops.gateway.lag import LagScope
from ecap_ops.services.lag import lag_tick

pytestmark = pytest.mark.kafka

# Ages of the records at the committed offsets, per partition (seconds).
AGES = (300, 1800, 7200)


def _commit(admin, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit offsets for a group without members (a fresh broker creates
    __consumer_offsets first: its coordinator is briefly unavailable)."""
    for attempt in range(60):
        try:
            admin.alter_group_offsets(
                group, {tp: OffsetAndMetadata(o, "", None) for tp, o in offsets.items()}
            )
            return
        except Exception:
            if attempt == 59:
                raise
            time.sleep(0.5)


def _scene(bootstrap: str, topic: str, configs: dict | None = None, n: int = 20) -> float:
    """A topic of 3 partitions, `n` records each; on partition p the record at offset 5 and
    later ones are AGES[p] seconds old (the earlier ones older). Returns when produced."""
    with KafkaAdminClient(bootstrap_servers=bootstrap) as admin:
        admin.create_topics(
            {topic: {"num_partitions": 3, "replication_factor": 1, "configs": configs or {}}}
        )
    now_ms = int(time.time() * 1000)
    prod = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    for p, age in enumerate(AGES):
        for i in range(n):
            ts = now_ms - age * 1000 - (1000 * (5 - i) if i < 5 else 0)
            prod.send(topic, b"v%d" % i, partition=p, timestamp_ms=ts)
    prod.flush(15)
    prod.close()
    return now_ms / 1000


def _lag_json(bootstrap: str, group: str) -> dict:
    res = CliRunner().invoke(
        main, ["-b", bootstrap, "lag", "--group", group, "--output", "json"], catch_exceptions=False
    )
    assert res.exit_code in (0, 1), res.output
    return json.loads(res.stdout)


def test_one_look_reads_the_age_of_the_oldest_unconsumed_record(kafka_bootstrap, unique_name):
    topic = unique_name
    _scene(kafka_bootstrap, topic)
    group = f"{unique_name}-g"
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        _commit(admin, group, {TopicPartition(topic, p): 5 for p in range(3)})
    data = _lag_json(kafka_bootstrap, group)
    (status,) = data["statuses"]
    at = data["at"]
    for part in status["partitions"]:
        age = AGES[part["partition"]]
        assert part["lag_seconds_kind"] == "exact", part
        assert abs(part["lag_seconds"] - age) <= 2 + (time.time() - at), (part, age)
    assert status["lag_seconds_kind"] == "exact"
    assert abs(status["lag_seconds"] - max(AGES)) <= 2 + (time.time() - at)
    assert status["timestamp_type"] == "CreateTime"
    assert data["timestamp_types"] == {topic: "CreateTime"}
    # One broker leads every partition: one Fetch, on top of the tick's other requests.
    assert data["requests"]["Fetch"] == 1, data["requests"]
    # Read from the record itself: no estimate mark in the table, exact from one look.
    res = CliRunner().invoke(main, ["-b", kafka_bootstrap, "lag", "--group", group])
    assert "2h00m" in res.stdout and "~" not in res.stdout and ">=" not in res.stdout
    assert "CreateTime" in res.stderr and topic in res.stderr
    assert "Traceback" not in res.output


def test_log_append_time_is_the_brokers_clock(kafka_bootstrap, unique_name):
    topic = unique_name
    produced = _scene(kafka_bootstrap, topic, {"message.timestamp.type": "LogAppendTime"})
    group = f"{unique_name}-g"
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        _commit(admin, group, {TopicPartition(topic, p): 5 for p in range(3)})
    data = _lag_json(kafka_bootstrap, group)
    (status,) = data["statuses"]
    # The producer's timestamps (hours old) are replaced by the broker's append time.
    assert status["timestamp_type"] == "LogAppendTime"
    assert data["timestamp_types"] == {topic: "LogAppendTime"}
    for part in status["partitions"]:
        assert part["lag_seconds_kind"] == "exact"
        assert abs(part["lag_seconds"] - (data["at"] - produced)) <= 2 + 5, part


def test_groups_at_several_positions_one_fetch(kafka_bootstrap, unique_name):
    """The smallest lagging position per partition is read; a group whose position the
    bytes read reach is exact too; one the read does not reach keeps the estimate (unknown
    on a first look), and the look still sends one Fetch."""
    topic = unique_name
    n = record_times.MAX_RECORDS + 300
    _scene(kafka_bootstrap, topic, n=n)
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        _commit(admin, f"{unique_name}-a", {TopicPartition(topic, 0): 5})
        _commit(admin, f"{unique_name}-b", {TopicPartition(topic, 0): 8})
        _commit(admin, f"{unique_name}-c", {TopicPartition(topic, 0): n - 10})
        _commit(admin, f"{unique_name}-done", {TopicPartition(topic, 0): n})
    data = _lag_json(kafka_bootstrap, f"{unique_name}-*")
    by_group = {s["group"]: s for s in data["statuses"]}
    assert by_group[f"{unique_name}-a"]["lag_seconds_kind"] == "exact"
    assert by_group[f"{unique_name}-b"]["lag_seconds_kind"] == "exact"
    assert abs(by_group[f"{unique_name}-b"]["lag_seconds"] - AGES[0]) <= 2 + 5
    far = by_group[f"{unique_name}-c"]
    assert far["lag_seconds_kind"] == "unknown" and far["lag_seconds"] is None, far
    assert by_group[f"{unique_name}-done"]["lag_seconds"] == 0
    assert data["requests"]["Fetch"] == 1


def test_a_group_behind_the_log_start_reads_from_the_log_start(kafka_bootstrap, unique_name):
    topic = unique_name
    _scene(kafka_bootstrap, topic)
    group = f"{unique_name}-g"
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        _commit(admin, group, {TopicPartition(topic, 0): 0})
        admin.delete_records({TopicPartition(topic, 0): 5})  # retention: records 0-4 gone
    data = _lag_json(kafka_bootstrap, group)
    (part,) = data["statuses"][0]["partitions"]
    assert part["lost"] == 5 and part["lag_seconds_kind"] == "exact"
    assert abs(part["lag_seconds"] - AGES[0]) <= 2 + 5, part


def _tick(settings, group):
    with KafkaGateway(settings) as gw:
        return lag_tick(gw, load_catalog(), None, scope=LagScope(groups=(group,)))


def test_records_that_cannot_be_read_fall_back_to_the_estimate(
    kafka_settings, kafka_bootstrap, unique_name, monkeypatch
):
    topic = unique_name
    _scene(kafka_bootstrap, topic)
    group = f"{unique_name}-g"
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        _commit(admin, group, {TopicPartition(topic, p): 5 for p in range(3)})

    # The broker refuses the offsets asked for (as after retention moved the log start
    # between the offsets and the Fetch): every partition answers an error.
    real = record_times.fetch_request

    def beyond_the_end(positions, read_committed, per_partition):
        return real({tp: o + 10**9 for tp, o in positions.items()}, read_committed, per_partition)

    monkeypatch.setattr(record_times, "fetch_request", beyond_the_end)
    tick = _tick(kafka_settings, group)
    (s,) = tick.statuses
    assert s.lag_seconds_kind == "unknown" and s.lag_seconds is None
    assert all(p.lag_seconds_kind == "unknown" for p in s.partitions)
    assert not tick.measurement.observation.partial  # the lag in messages is all there
    assert s.lag_msgs == 3 * 15
    notes = " ".join(tick.evaluation.notes)
    assert "OffsetOutOfRange" in notes and "estimated" in notes
    # With history, the estimate takes over, marked as one.
    later = None
    with KafkaGateway(kafka_settings) as gw:
        first = lag_tick(gw, load_catalog(), None, scope=LagScope(groups=(group,)))
        time.sleep(1.1)
        with KafkaProducer(bootstrap_servers=kafka_bootstrap) as prod:
            for p in range(3):
                prod.send(topic, b"more", partition=p)
            prod.flush(15)
        later = lag_tick(
            gw, load_catalog(), first.evaluation.window, scope=LagScope(groups=(group,))
        )
    kinds = {p.lag_seconds_kind for p in later.statuses[0].partitions}
    assert kinds <= {"extrapolated", "at_least", "interpolated"}, kinds
    monkeypatch.undo()

    # The Fetch itself fails (a broker that drops it): noted, never raised.
    with KafkaGateway(kafka_settings) as gw:
        manager = gw.admin._manager
        send = manager.send

        def failing_send(request, node_id=None, request_timeout_ms=None):
            if type(request).__name__ == "FetchRequest":
                raise ConnectionError("injected: the broker dropped the Fetch")
            return send(request, node_id=node_id, request_timeout_ms=request_timeout_ms)

        manager.send = failing_send
        tick = lag_tick(gw, load_catalog(), None, scope=LagScope(groups=(group,)))
    (s,) = tick.statuses
    assert s.lag_msgs == 3 * 16 and s.lag_seconds_kind == "unknown"  # one more each above
    assert not tick.measurement.observation.partial
    assert any("injected" in n and "estimated" in n for n in tick.evaluation.notes)


def test_consumer_groups_shows_exact_lag_time(kafka_bootstrap, unique_name):
    topic = unique_name
    _scene(kafka_bootstrap, topic)
    group = f"{unique_name}-g"
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        _commit(admin, group, {TopicPartition(topic, p): 5 for p in range(3)})
    res = CliRunner().invoke(
        main, ["-b", kafka_bootstrap, "consumer-groups", "--output", "json"], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    (g,) = [g for g in json.loads(res.stdout)["groups"] if g["group_id"] == group]
    (t,) = g["topics"]
    assert t["lag_seconds_kind"] == "exact" and t["timestamp_type"] == "CreateTime"
    assert abs(t["lag_seconds"] - max(AGES)) <= 2 + 5, t
    table = CliRunner().invoke(main, ["-b", kafka_bootstrap, "consumer-groups"])
    row = next(line for line in table.stdout.splitlines() if line.startswith(group))
    assert row.split()[-2:] == ["2h00m", "45"], row
    assert "CreateTime" in table.stderr and "Traceback" not in table.output


def test_a_transactional_topic_is_read_committed(kafka_settings, kafka_bootstrap, unique_name):
    """On a catalog topic marked transactional, an aborted transaction's records (older) are
    skipped, as a read_committed consumer skips them: the figure is the committed record's."""
    import dataclasses

    topic = unique_name
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
    now_ms = int(time.time() * 1000)
    prod = KafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"{unique_name}-tx", acks="all"
    )
    prod.init_transactions()
    prod.begin_transaction()
    for _ in range(3):
        prod.send(topic, b"aborted", partition=0, timestamp_ms=now_ms - 7200_000)
    prod.abort_transaction()
    prod.begin_transaction()
    for _ in range(3):
        prod.send(topic, b"committed", partition=0, timestamp_ms=now_ms - 600_000)
    prod.commit_transaction()
    prod.close()
    group = f"{unique_name}-g"
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        _commit(admin, group, {TopicPartition(topic, 0): 0})
    catalog = load_catalog()
    base = catalog.topics[0]
    catalog = dataclasses.replace(
        catalog,
        topics=(*catalog.topics, dataclasses.replace(base, name=topic, transactional=True)),
    )
    with KafkaGateway(kafka_settings) as gw:
        tick = lag_tick(gw, catalog, None, scope=LagScope(groups=(group,)))
    (s,) = tick.statuses
    assert s.lag_seconds_kind == "exact", (s, tick.evaluation.notes)
    assert abs(s.lag_seconds - 600) <= 2 + 5, s.lag_seconds  # not the aborted 2 hours
    assert tick.measurement.requests["Fetch"] == 1


def test_at_most_one_fetch_per_leader_on_three_brokers(kafka_cluster3, unique_name):
    """Partitions led by three brokers: one Fetch to each leader, whatever the groups."""
    bootstrap = kafka_cluster3.bootstrap_servers
    topic = unique_name
    with KafkaAdminClient(bootstrap_servers=bootstrap) as admin:
        admin.create_topics({topic: {"num_partitions": 6, "replication_factor": 1}})
        time.sleep(1)
        now_ms = int(time.time() * 1000)
        prod = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        for p in range(6):
            for _ in range(10):
                prod.send(topic, b"x", partition=p, timestamp_ms=now_ms - 900_000)
        prod.flush(15)
        prod.close()
        for i in range(12):
            _commit(
                admin, f"{unique_name}-{i:02d}", {TopicPartition(topic, p): i % 5 for p in range(6)}
            )
        meta = admin.describe_topics([topic])[0]
        leaders = {p.get("leader_id", p.get("leader")) for p in meta["partitions"]}
    data = _lag_json(bootstrap, f"{unique_name}-*")
    assert len(leaders) >= 2, leaders  # the test means something only with several leaders
    assert data["requests"]["Fetch"] == len(leaders), (data["requests"], leaders)
    for s in data["statuses"]:
        assert s["lag_seconds_kind"] == "exact", s
        assert abs(s["lag_seconds"] - 900) <= 2 + 5 + (time.time() - data["at"])
