"""consumer_lag_sensor end to end: a real broker, real kafka-python consumers and producers,
the real sensor evaluated tick by tick, and notify_consumer_lag runs delivering to a real
webhook receiver on 127.0.0.1. Intervals and thresholds are short so each scenario takes
seconds."""

import dataclasses
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ecap_ops.catalog import load_catalog
from ecap_ops.catalog.model import LagThresholds
from ecap_ops.core.lag import EvalConfig
from ecap_ops.orchestration.alerts import AlertsResource
from ecap_ops.orchestration.lag import build_lag_sensor, notify_consumer_lag
from ecap_ops.orchestration.resources import KafkaResource
from ecap_ops_tests.bounds import assert_bounded, wait_limit_s
from ecap_ops_tests.helpers import make_consumer, run_failures

pytestmark = pytest.mark.kafka

# Short enough that each scenario takes seconds, with room for two loaded cores: a consumer
# that keeps up can fall some seconds (and a few hundred records) behind while the machine
# is busy, and a rebalance can take ten seconds; neither is an incident here.
THRESHOLDS = LagThresholds(warn_seconds=20, crit_seconds=600, warn_msgs=1000, stall_after_seconds=6)
CFG = EvalConfig(
    for_ticks=2,
    debounce_ticks=2,
    clean_ticks=2,
    rebalance_grace_seconds=15,
    remind_critical_seconds=4,
    remind_warning_seconds=4,
)
TICK_S = 1.0
# How long a scenario waits for what it expects (an incident opening, a consumer catching
# up, an incident resolving). Each wait ends as soon as it is met; the room is for two
# loaded cores, where a rejoining member alone can take tens of seconds.
SCENARIO_WAIT_S = 120


class Receiver:
    """A Slack-compatible incoming webhook on loopback that keeps what it was sent."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/secret-token"

    def texts(self) -> list[str]:
        return [r["text"] for r in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


class Producer(threading.Thread):
    """Produces `rate` records a second with their creation time as timestamp, until stopped."""

    def __init__(self, bootstrap, topic, rate=20):
        super().__init__(daemon=True)
        self.p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        self.topic, self.rate, self.stop_event = topic, rate, threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            self.p.send(self.topic, b"x", timestamp_ms=int(time.time() * 1000))
            self.stop_event.wait(1 / self.rate)

    def stop(self):
        self.stop_event.set()
        self.join(5)
        self.p.flush(5)
        self.p.close(5)


class Consumer(threading.Thread):
    """A classic-group consumer: polls, and commits after each poll while `committing`.
    `per_second` caps how many records it consumes a second (a slow consumer)."""

    def __init__(self, bootstrap, topic, group, per_second=None):
        super().__init__(daemon=True)
        self.topic = topic
        self.c = make_consumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            heartbeat_interval_ms=500,
            # Every scenario's consumer leaves by closing (LeaveGroup); the session only
            # ends a member whose heartbeats stopped, which a loaded machine's pauses of a
            # second or more must not do.
            session_timeout_ms=20000,
        )
        self.per_second = per_second
        self.committing = True
        self.stop_event = threading.Event()
        self.consumed = 0

    @property
    def assigned(self) -> bool:
        """Whether the group gave this member any partition."""
        return bool(self.c.assignment())

    def run(self):
        # Subscribe once this client's metadata holds the topic's partitions. A group leader
        # that assigns before its metadata names the topic gives every member nothing
        # ("No partition metadata for topic", kafka-python#2377), and on a loaded machine
        # the returning member of a scenario was then left without partitions until its
        # session expired.
        while not self.stop_event.is_set() and not self.c.partitions_for_topic(self.topic):
            self.stop_event.wait(0.2)
        self.c.subscribe([self.topic])
        while not self.stop_event.is_set():
            if self.per_second:
                got = self.c.poll(200, max_records=max(1, self.per_second // 5))
                self.stop_event.wait(0.2)
            else:
                got = self.c.poll(200)
            self.consumed += sum(len(v) for v in got.values())
            if got and self.committing:
                self.c.commit()
        self.c.close()

    def stop(self):
        self.stop_event.set()
        self.join(15)


class Harness:
    """Ticks the real sensor and launches the runs it requests, once per run key (as the
    daemon does), in-process against a real instance."""

    def __init__(self, bootstrap, receiver, group):
        catalog = load_catalog()
        self.catalog = dataclasses.replace(catalog, lag_defaults=THRESHOLDS)
        self.sensor = build_lag_sensor(
            self.catalog, config=CFG, include=(group,), budget_s=10, interval_s=1
        )
        self.resources = {
            "kafka": KafkaResource(
                bootstrap_servers=bootstrap, connect_timeout_ms=5000, request_timeout_ms=5000
            ),
            "alerts": AlertsResource(
                webhook_url=receiver.url,
                retries=2,
                timeout_seconds=3,
                dagster_url="http://dagster.test",
            ),
        }
        self.defs = dg.Definitions(
            jobs=[notify_consumer_lag], sensors=[self.sensor], resources=self.resources
        )
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor = None
        self.launched: list[str] = []
        self.results = []

    def tick(self, cursor=None, launch=True):
        ctx = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor if cursor is None else cursor,
            definitions=self.defs,
            resources=self.resources,
        )
        res = self.sensor.evaluate_tick(ctx)
        self.cursor = res.cursor
        self.results.append(res)
        if launch:
            self.launch(res.run_requests)
        return res

    def launch(self, run_requests):
        job = self.defs.get_job_def("notify_consumer_lag")
        for rr in run_requests:
            if rr.run_key in self.launched:
                continue  # Dagster creates at most one run per run key
            self.launched.append(rr.run_key)
            result = job.execute_in_process(
                run_config=rr.run_config,
                instance=self.instance,
                tags={**rr.tags, "dagster/run_key": rr.run_key},
            )
            assert result.success, run_failures(result)

    def ticks(self, n, sleep=TICK_S):
        out = []
        for _ in range(n):
            out.append(self.tick())
            time.sleep(sleep)
        return out


def _status_of(h: Harness, group: str) -> str:
    """The group's raw status at the last tick, read back from the sensor's window."""
    from ecap_ops.core.lag import decode_window

    w = decode_window(h.cursor)
    gt = next(iter(w.groups[group].topics.values()))
    return gt.raw[-1]


def _make_topic(bootstrap, name, partitions=1):
    """Create the topic and wait, as `apply` does, until every partition has a leader that
    serves it: a consumer that joins before the broker's metadata shows the topic is given
    no partition, and on a loaded machine it did not rejoin within the scenario's wait."""
    from ecap_ops.gateway import KafkaGateway
    from ecap_ops.services.write import wait_for_leaders
    from ecap_ops.settings import KafkaSettings

    with KafkaAdminClient(bootstrap_servers=bootstrap) as a:
        a.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}})
    with KafkaGateway(KafkaSettings(bootstrap_servers=bootstrap)) as gw:
        wait_for_leaders(gw, [name], timeout_s=SCENARIO_WAIT_S)


def _wait(cond, timeout=SCENARIO_WAIT_S, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _open_events(receiver):
    return [t for t in receiver.texts() if "consumer lag opened" in t]


def test_consumer_keeping_up_through_a_rebalance_is_ok_and_silent(
    kafka_bootstrap, unique_name, receiver
):
    _make_topic(kafka_bootstrap, unique_name, partitions=2)
    group = unique_name + "-g"
    prod = Producer(kafka_bootstrap, unique_name)
    prod.start()
    a = Consumer(kafka_bootstrap, unique_name, group)
    a.start()
    b = None
    try:
        _wait(lambda: a.consumed > 0, what="the first consumer")
        h = Harness(kafka_bootstrap, receiver, group)
        seen = []
        for _ in range(5):
            h.tick()
            seen.append(_status_of(h, group))
            time.sleep(TICK_S)
        b = Consumer(kafka_bootstrap, unique_name, group)  # a member joins
        b.start()
        for _ in range(5):
            h.tick()
            seen.append(_status_of(h, group))
            time.sleep(TICK_S)
        b.stop()  # a member leaves
        b = None
        for _ in range(5):
            h.tick()
            seen.append(_status_of(h, group))
            time.sleep(TICK_S)
        assert set(seen) <= {"OK", "IDLE", "REBALANCING"}, seen
        assert receiver.received == []
        assert all(r.skip_message and "no incident changes" in r.skip_message for r in h.results)
        # Observations are recorded only for catalog topics; this topic is not one.
        assert all(not r.asset_events for r in h.results)
    finally:
        if b:
            b.stop()
        a.stop()
        prod.stop()


def test_stopped_group_opens_once_reminds_and_resolves(kafka_bootstrap, unique_name, receiver):
    _make_topic(kafka_bootstrap, unique_name)
    group = unique_name + "-g"
    prod = Producer(kafka_bootstrap, unique_name)
    prod.start()
    c = Consumer(kafka_bootstrap, unique_name, group)
    c.start()
    try:
        _wait(lambda: c.consumed > 10, what="the consumer")
        h = Harness(kafka_bootstrap, receiver, group)
        h.ticks(3)
        assert receiver.received == []
        c.stop()  # the group has no members now; the producer goes on
        statuses = []
        deadline = time.time() + SCENARIO_WAIT_S
        while time.time() < deadline:
            h.tick()
            statuses.append(_status_of(h, group))
            if len([t for t in receiver.texts() if "reminder" in t]) >= 2:
                break
            time.sleep(TICK_S)
        assert "STOPPED" in statuses, statuses
        opens = _open_events(receiver)
        assert len(opens) == 1, receiver.texts()
        assert (
            group in opens[0]
            and unique_name in opens[0]
            and "msgs /" in opens[0]
            and "http://dagster.test/runs/" in opens[0]
        )
        reminders = [r for r in h.launched if ":remind-" in r]
        assert [r.rsplit("-", 1)[1] for r in reminders] == ["1", "2"]
        # Back again: catches up, then the incident resolves once.
        c = Consumer(kafka_bootstrap, unique_name, group)
        c.start()
        _wait(lambda: c.assigned, what="the returning consumer's partitions")
        deadline = time.time() + SCENARIO_WAIT_S
        while time.time() < deadline and not any("resolved" in t for t in receiver.texts()):
            h.tick()
            time.sleep(TICK_S)
        resolved = [t for t in receiver.texts() if "consumer lag resolved" in t]
        assert len(resolved) == 1, receiver.texts()
        assert "duration:" in resolved[0] and "peak lag:" in resolved[0]
        h.ticks(2)
        assert (
            len(_open_events(receiver)) == 1
            and len([t for t in receiver.texts() if "resolved" in t]) == 1
        )
    finally:
        c.stop()
        prod.stop()


def test_members_alive_but_not_committing_is_stalled(kafka_bootstrap, unique_name, receiver):
    _make_topic(kafka_bootstrap, unique_name)
    group = unique_name + "-g"
    prod = Producer(kafka_bootstrap, unique_name)
    prod.start()
    c = Consumer(kafka_bootstrap, unique_name, group)
    c.start()
    try:
        _wait(lambda: c.consumed > 10, what="the consumer")
        h = Harness(kafka_bootstrap, receiver, group)
        h.ticks(2)
        c.committing = False
        statuses = []
        deadline = time.time() + SCENARIO_WAIT_S
        while time.time() < deadline and "STALLED" not in statuses:
            h.tick()
            statuses.append(_status_of(h, group))
            time.sleep(TICK_S)
        assert "STALLED" in statuses, statuses
        assert "STOPPED" not in statuses
        h.tick()
        assert any("STALLED" in t for t in receiver.texts()), receiver.texts()
    finally:
        c.stop()
        prod.stop()


def test_offsets_reset_backwards_is_rewind(kafka_bootstrap, unique_name, receiver):
    _make_topic(kafka_bootstrap, unique_name)
    group = unique_name + "-g"
    p = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for _ in range(150):
        p.send(unique_name, b"x")
    p.flush()
    p.close()
    c = Consumer(kafka_bootstrap, unique_name, group)
    c.start()
    _wait(lambda: c.consumed >= 150, what="consuming everything")
    time.sleep(0.5)
    c.stop()
    h = Harness(kafka_bootstrap, receiver, group)
    h.ticks(2, sleep=0.3)
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as a:
        a.alter_group_offsets(
            group, {TopicPartition(unique_name, 0): OffsetAndMetadata(100, "", None)}
        )
    h.tick()
    assert _status_of(h, group) == "REWIND"
    time.sleep(0.3)
    h.tick()
    assert _status_of(h, group) == "REWIND"
    opens = _open_events(receiver)
    assert len(opens) == 1 and "REWIND" in opens[0], receiver.texts()


def test_data_loss_same_tick_twice_and_deleted_group(kafka_bootstrap, unique_name, receiver):
    _make_topic(kafka_bootstrap, unique_name)
    group = unique_name + "-g"
    p = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for _ in range(100):
        p.send(unique_name, b"x")
    p.flush()
    p.close()
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as a:
        a.alter_group_offsets(
            group, {TopicPartition(unique_name, 0): OffsetAndMetadata(20, "", None)}
        )
    h = Harness(kafka_bootstrap, receiver, group)
    h.tick()
    assert _status_of(h, group) in ("OK", "IDLE")
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as a:
        a.delete_records({TopicPartition(unique_name, 0): 60})
    before = h.cursor
    first = h.tick(launch=False)
    again = h.tick(cursor=before, launch=False)  # the same tick evaluated twice
    assert [r.run_key for r in first.run_requests] == [r.run_key for r in again.run_requests] != []
    h.launch(first.run_requests)
    h.launch(again.run_requests)
    assert _status_of(h, group) == "DATA_LOSS"
    assert len(receiver.received) == 1 and "DATA_LOSS" in receiver.texts()[0]
    assert "critical" in receiver.texts()[0].lower()
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as a:
        a.delete_groups([group])
    for _ in range(3):
        res = h.tick()
        assert not res.run_requests
    from ecap_ops.core.lag import decode_window

    assert group not in decode_window(h.cursor).groups
    assert len(receiver.received) == 1  # closed quietly: no ghost alert


def test_lag_in_seconds_tracks_the_oldest_unconsumed_record(kafka_bootstrap, unique_name, receiver):
    _make_topic(kafka_bootstrap, unique_name)
    group = unique_name + "-g"
    prod = Producer(kafka_bootstrap, unique_name, rate=20)
    prod.start()
    c = Consumer(kafka_bootstrap, unique_name, group, per_second=5)  # slower than production
    c.start()
    try:
        _wait(lambda: c.consumed > 0, what="the consumer")
        h = Harness(kafka_bootstrap, receiver, group)
        statuses = []
        deadline = time.time() + SCENARIO_WAIT_S
        while time.time() < deadline and "LAGGING" not in statuses:
            h.tick()
            statuses.append(_status_of(h, group))
            time.sleep(TICK_S)
        assert "LAGGING" in statuses, statuses
        # The figure against the true age of the oldest unconsumed record: read from the
        # record itself (exact), and the estimate from the window when not read.
        from ecap_ops.core.lag import decode_window
        from ecap_ops.gateway import KafkaGateway
        from ecap_ops.gateway.lag import LagScope
        from ecap_ops.services.lag import lag_tick
        from ecap_ops.settings import KafkaSettings

        def true_age(tick) -> float:
            part = tick.statuses[0].partitions[0]
            reader = KafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
            tp = TopicPartition(unique_name, 0)
            reader.assign([tp])
            reader.seek(tp, part.committed)
            recs = reader.poll(5000, max_records=1).get(tp) or reader.poll(5000, max_records=1).get(
                tp
            )
            reader.close()
            return tick.measurement.observation.at - recs[0].timestamp / 1000

        window = decode_window(h.cursor)
        with KafkaGateway(KafkaSettings(bootstrap_servers=kafka_bootstrap)) as gw:
            est = lag_tick(
                gw, h.catalog, window, CFG, LagScope(groups=(group,)), exact_seconds=False
            )
        s = est.statuses[0]
        assert s.lag_seconds is not None and s.lag_seconds_kind in ("interpolated", "extrapolated")
        age = true_age(est)
        assert abs(s.lag_seconds - age) <= 0.2 * age, (s.lag_seconds, age)
        assert "Fetch" not in est.measurement.requests
        with KafkaGateway(KafkaSettings(bootstrap_servers=kafka_bootstrap)) as gw:
            exact = lag_tick(gw, h.catalog, window, CFG, LagScope(groups=(group,)))
        s = exact.statuses[0]
        assert s.lag_seconds_kind == "exact", s
        age = true_age(exact)
        assert abs(s.lag_seconds - age) <= 0.05, (s.lag_seconds, age)
        assert s.lag_seconds > THRESHOLDS.warn_seconds
        assert any("LAGGING" in t for t in receiver.texts())
    finally:
        c.stop()
        prod.stop()


def test_corrupt_cursor_recovers_and_brokers_down_skip(kafka_bootstrap, unique_name, receiver):
    group = unique_name + "-g"
    h = Harness(kafka_bootstrap, receiver, group)
    res = h.tick(cursor="lagv1:not-base64!!")
    from ecap_ops.core.lag import decode_window

    assert decode_window(res.cursor) is not None
    assert res.skip_message and "no incident changes" in res.skip_message
    down = build_lag_sensor(h.catalog, config=CFG, budget_s=5, interval_s=1)
    from ecap_ops.localkafka.cluster import free_port

    resources = {
        "kafka": KafkaResource(
            bootstrap_servers=f"127.0.0.1:{free_port()}",
            connect_timeout_ms=2000,
            request_timeout_ms=2000,
        ),
        "alerts": AlertsResource(),
    }
    defs = dg.Definitions(jobs=[notify_consumer_lag], sensors=[down], resources=resources)
    started = time.monotonic()
    res = down.evaluate_tick(
        dg.build_sensor_context(
            instance=h.instance, cursor=h.cursor, definitions=defs, resources=resources
        )
    )
    assert_bounded(
        time.monotonic() - started, wait_limit_s(2000, 2000), "a sensor tick, cluster down"
    )
    assert (
        "consumer lag not measured" in res.skip_message
        and "no Kafka broker answered" in res.skip_message
    )
    assert res.cursor == h.cursor  # the window is kept for when the brokers come back
