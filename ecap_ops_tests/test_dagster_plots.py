"""Lag and health history as numbers the Dagster UI plots, rounded for people.

The consumer-lag sensor records per catalog topic an observation on `kafka/<topic>` (groups,
groups not OK, total and worst lag in messages, worst lag in seconds and its kind), only
when the figures moved or every 5 minutes; the health check's materialization carries
findings by severity, partitions out of sync, brokers up and how long the check took. Both
are checked through Dagster's own machinery against the real broker and read back from a
real instance; the UI test opens a topic's plots in Chromium and keeps the screenshot.
"""

import math
import time
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ecap_ops.catalog import load_catalog
from ecap_ops.core.lag import GroupTopicStatus
from ecap_ops.core.numbers import decimals_of, round_for_people, whole
from ecap_ops.orchestration import health, topics
from ecap_ops.orchestration.alerts import AlertsResource
from ecap_ops.orchestration.lag import (
    MOVED_FRACTION,
    OBSERVE_EVERY_SECONDS,
    _topic_observations,
    build_lag_sensor,
    notify_consumer_lag,
    topic_lag_figures,
    worth_recording,
)
from ecap_ops.orchestration.resources import KafkaResource
from ecap_ops_tests.helpers import run_failures
from ecap_ops_tests.test_provisioning import prefixed_catalog

# -- the rounding rule ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.none(),
        st.booleans(),
        st.text(max_size=5),
    ),
    decimals=st.integers(min_value=0, max_value=3),
)
def test_round_for_people_keeps_at_most_the_decimals_asked_for(value, decimals):
    shown = round_for_people(value, decimals)
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or not math.isfinite(float(value)):
        assert shown is None  # unknown stays unknown, never a 0
        return
    assert isinstance(shown, float)
    assert decimals_of(shown) <= decimals, (value, shown)
    assert abs(shown - float(value)) <= 0.5 * 10**-decimals + 1e-9 * abs(float(value))
    assert round_for_people(shown, decimals) == shown  # a rounded figure stays put
    assert math.copysign(1, shown) == 1 or shown < 0  # never -0.0
    n = whole(value)
    assert isinstance(n, int) and abs(n - float(value)) <= 0.5 + 1e-9 * abs(float(value))


@pytest.mark.parametrize(
    "value,expected",
    [
        (120.18270182609558, 120.2),
        (0.04, 0.0),
        (-0.04, 0.0),
        (59.96, 60.0),
        (1e-9, 0.0),
        (12345678.96, 12345679.0),
    ],
)
def test_round_for_people_examples(value, expected):
    shown = round_for_people(value)
    assert shown == expected and repr(shown) == repr(expected)


# -- a topic's lag figures and when they are recorded ----------------------------------------

KINDS = ("measured", "interpolated", "extrapolated", "at_least", "exact", "unknown")
STATUSES = ("OK", "IDLE", "LAGGING", "STALLED", "STOPPED", "BEHIND_SLA")


def _status(group, topic, lag_msgs, lag_seconds, kind="interpolated", status="OK", severity="ok"):
    return GroupTopicStatus(
        group=group,
        topic=topic,
        status=status,
        raw_status=status,
        severity=severity,
        lag_msgs=lag_msgs,
        lag_seconds=lag_seconds,
        lag_seconds_kind=kind,
        lost=0,
        state="Stable",
        members=1,
        partitions=(),
    )


group_rows = st.lists(
    st.builds(
        _status,
        group=st.text(min_size=1, max_size=12),
        topic=st.just("transactions"),
        lag_msgs=st.integers(min_value=0, max_value=10**12),
        lag_seconds=st.one_of(
            st.none(), st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
        ),
        kind=st.sampled_from(KINDS),
        status=st.sampled_from(STATUSES),
        severity=st.sampled_from(("ok", "info", "warning", "critical")),
    ),
    max_size=8,
)


def _floats(metadata: dict) -> dict[str, float]:
    return {k: v.value for k, v in metadata.items() if isinstance(v, dg.FloatMetadataValue)}


@settings(max_examples=150, deadline=None)
@given(rows=group_rows)
def test_a_topics_figures_add_up_and_are_rounded(rows):
    figures = topic_lag_figures(rows)
    assert figures["consumer_groups"] == len(rows)
    assert figures["consumer_lag_msgs_total"] == sum(r.lag_msgs for r in rows)
    assert figures["consumer_lag_msgs_max"] == max((r.lag_msgs for r in rows), default=0)
    assert figures["consumer_groups_not_ok"] == sum(
        r.severity in ("warning", "critical") for r in rows
    )
    known = [r for r in rows if r.lag_seconds is not None]
    if known:
        top = max(known, key=lambda r: r.lag_seconds)
        assert figures["consumer_lag_seconds_max"] == round(top.lag_seconds, 1)
        assert figures["consumer_lag_seconds_kind"] == top.lag_seconds_kind
    elif figures["consumer_lag_msgs_total"]:
        # Messages wait and no group's age is known: no made-up 0 s on the plot.
        assert "consumer_lag_seconds_max" not in figures
        assert figures["consumer_lag_seconds_kind"] == "unknown"
    else:
        assert figures["consumer_lag_seconds_max"] == 0.0
    for key, value in figures.items():
        if isinstance(value, float):
            assert decimals_of(value) <= 1, (key, value)
        else:
            assert isinstance(value, (int, str)) and not isinstance(value, bool), (key, value)


BASE = {
    "consumer_groups": 2,
    "consumer_groups_not_ok": 1,
    "consumer_lag_msgs_total": 1000,
    "consumer_lag_msgs_max": 900,
    "consumer_lag_seconds_max": 120.0,
    "consumer_lag_seconds_kind": "interpolated",
    "consumer_lag_status": "LAGGING",
}


@pytest.mark.parametrize(
    "change,age,recorded",
    [
        ({}, 1.0, False),  # nothing moved: wait for the heartbeat
        ({}, OBSERVE_EVERY_SECONDS, True),  # the heartbeat
        ({"consumer_lag_msgs_total": 1050}, 30.0, False),  # 5 %: not worth a point
        ({"consumer_lag_msgs_total": 1100}, 30.0, True),  # 10 %
        ({"consumer_lag_msgs_total": 0, "consumer_lag_msgs_max": 0}, 30.0, True),  # to zero
        ({"consumer_lag_seconds_max": 125.0}, 30.0, False),
        ({"consumer_lag_seconds_max": 200.0}, 30.0, True),
        ({"consumer_lag_seconds_max": 0.0}, 30.0, True),  # caught up
        ({"consumer_lag_msgs_total": 1001}, 30.0, False),
        ({"consumer_groups": 3}, 30.0, True),
        ({"consumer_groups_not_ok": 0}, 30.0, True),
        ({"consumer_lag_status": "STOPPED"}, 30.0, True),
        ({"consumer_lag_seconds_kind": "extrapolated"}, 30.0, True),
    ],
)
def test_a_topic_is_recorded_when_its_figures_moved_or_every_5_minutes(change, age, recorded):
    now = 1_800_000_000.0
    assert worth_recording({**BASE, **change}, dict(BASE), now - age, now) is recorded
    assert worth_recording({**BASE, **change}, None, None, now)  # nothing recorded yet


@settings(max_examples=150, deadline=None)
@given(
    ticks=st.lists(
        st.tuples(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=3)),
        min_size=1,
        max_size=40,
    )
)
def test_a_steady_stream_of_ticks_records_at_most_one_point_per_topic_per_tick(ticks):
    """Any sequence of ticks (lag, groups): one point at most per tick, none while nothing
    moved and the heartbeat is not due, and every skipped tick was close to the last point."""
    catalog = load_catalog(env="dev")
    previous: dict = {}
    now = 1_800_000_000.0
    for lag, groups in ticks:
        now += 30
        rows = tuple(
            _status(f"g{i}", "transactions", lag, None if lag else 0.0) for i in range(groups)
        )
        obs = _topic_observations(catalog, rows, previous, now=now)
        assert len(obs) <= 1
        assert all(o.asset_key == dg.AssetKey(["kafka", "transactions"]) for o in obs)
        figures = topic_lag_figures(list(rows))
        before = previous.get("transactions")
        if obs:
            meta = obs[0].metadata
            assert meta["consumer_lag_msgs_total"].value == lag * groups
            assert all(decimals_of(v) <= 1 for v in _floats(meta).values())
            previous["transactions"] = (
                {k: v.value for k, v in meta.items() if k != "consumer_lag"},
                now,
            )
        elif groups:
            assert before is not None and now - before[1] < OBSERVE_EVERY_SECONDS
            old = before[0]["consumer_lag_msgs_total"]
            new = figures["consumer_lag_msgs_total"]
            assert (old == new) or (old and new and abs(new - old) < MOVED_FRACTION * old)
        else:
            # Nobody consumes: a point only when the last one still showed groups.
            assert before is None or not before[0]["consumer_groups"]


def test_a_topic_whose_last_group_left_drops_to_zero_once():
    catalog = load_catalog(env="dev")
    now = 1_800_000_000.0
    lagging = {**BASE, "consumer_groups": 1}
    (obs,) = _topic_observations(catalog, (), {"transactions": (lagging, now - 30)}, now=now)
    meta = obs.metadata
    assert meta["consumer_groups"].value == 0 and meta["consumer_lag_msgs_total"].value == 0
    assert meta["consumer_lag_status"].value == "NO_GROUPS"
    # A partial measurement may have missed the groups: no zero then.
    assert not _topic_observations(
        catalog, (), {"transactions": (lagging, now - 30)}, now=now, complete=False
    )
    # Already at zero: nothing more until a group shows up.
    zero = {k: v.value for k, v in meta.items() if k != "consumer_lag"}
    assert not _topic_observations(catalog, (), {"transactions": (zero, now)}, now=now + 600)


# -- the sensor against the real broker, read back from a real instance ----------------------


def _lag_observations(instance, key) -> list:
    """The lag observations on `key`, newest first."""
    records = instance.fetch_observations(key, limit=100).records
    return [
        r.asset_observation
        for r in records
        if "consumer_lag_msgs_total" in r.asset_observation.metadata
    ]


class LagScript:
    """A catalog topic on the real broker with records `age_s` old, and a group with no
    members whose committed offset the test sets: a lag the test knows exactly."""

    def __init__(self, bootstrap: str, catalog, group: str, age_s: float = 90.0):
        self.bootstrap = bootstrap
        self.topic = next(t.name for t in catalog.topics if t.name.endswith(".transactions"))
        self.group = group
        self.age_s = age_s
        self.produced = 0
        with KafkaAdminClient(bootstrap_servers=bootstrap) as admin:
            admin.create_topics({self.topic: {"num_partitions": 1, "replication_factor": 1}})

    def produce(self, n: int) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap)
        stamp = int((time.time() - self.age_s) * 1000)
        if not self.produced:
            self.first_stamp_s = stamp / 1000  # the oldest record's timestamp
        for _ in range(n):
            producer.send(self.topic, b"x", partition=0, timestamp_ms=stamp)
        producer.flush(10)
        producer.close(5)
        self.produced += n

    def commit(self, offset: int) -> None:
        from kafka.errors import CoordinatorNotAvailableError

        offsets = {TopicPartition(self.topic, 0): OffsetAndMetadata(offset, "", None)}
        deadline = time.monotonic() + 60
        with KafkaAdminClient(bootstrap_servers=self.bootstrap) as admin:
            while True:  # a fresh broker creates __consumer_offsets on first use
                try:
                    admin.alter_group_offsets(self.group, offsets)
                    return
                except CoordinatorNotAvailableError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)


class SensorTicks:
    """The real consumer_lag_sensor ticked through Dagster's own sensor machinery; the
    asset events each tick returns are stored the way the sensor daemon stores them
    (`report_runless_asset_event`)."""

    def __init__(self, bootstrap: str, catalog, group: str, instance, **options):
        self.sensor = build_lag_sensor(
            catalog, include=(group,), budget_s=10, interval_s=1, **options
        )
        self.resources = {
            "kafka": KafkaResource(
                bootstrap_servers=bootstrap, connect_timeout_ms=5000, request_timeout_ms=5000
            ),
            "alerts": AlertsResource(),
        }
        self.defs = dg.Definitions(
            jobs=[notify_consumer_lag], sensors=[self.sensor], resources=self.resources
        )
        self.instance = instance
        self.cursor = None

    def tick(self):
        ctx = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            definitions=self.defs,
            resources=self.resources,
        )
        result = self.sensor.evaluate_tick(ctx)
        self.cursor = result.cursor
        for event in result.asset_events:
            self.instance.report_runless_asset_event(event)
        return result


@pytest.mark.kafka
def test_the_lag_sensor_records_a_topics_lag_on_its_asset(kafka_bootstrap, tmp_path, unique_name):
    catalog = load_catalog(prefixed_catalog(tmp_path, unique_name))
    group = unique_name + "-readers"
    script = LagScript(kafka_bootstrap, catalog, group)
    script.produce(50)
    script.commit(10)
    key = dg.AssetKey(["kafka", script.topic])
    (tmp_path / "home").mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "home")) as instance:
        ticks = SensorTicks(kafka_bootstrap, catalog, group, instance)
        first = ticks.tick()
        # One observation, on this topic's asset only: no other catalog topic has a group.
        assert [e.asset_key for e in first.asset_events] == [key]
        (event,) = _lag_observations(instance, key)
        assert event.metadata["consumer_lag_msgs_total"].value == 40
        # The second tick may add a point: the seconds' kind changes once the lag window
        # holds two looks (unknown -> at least). Then nothing moves: no more points until
        # the heartbeat, 5 minutes away.
        ticks.tick()
        recorded = len(_lag_observations(instance, key))
        assert recorded in (1, 2)
        quiet = [not ticks.tick().asset_events for _ in range(4)]
        assert any(quiet), "a topic whose lag did not move was recorded at every tick"
        assert len(_lag_observations(instance, key)) == recorded + quiet.count(False)
        meta = _lag_observations(instance, key)[0].metadata
        assert meta["consumer_lag_msgs_total"].value == 40
        assert meta["consumer_lag_msgs_max"].value == 40
        assert meta["consumer_groups"].value == 1
        assert group in meta["consumer_lag"].value
        kind = meta["consumer_lag_seconds_kind"]
        assert isinstance(kind, dg.TextMetadataValue) and kind.value
        seconds = meta.get("consumer_lag_seconds_max")
        if kind.value in ("exact", "measured"):
            # The age of the oldest unconsumed record (a first-batch one) when measured:
            # between its age before the first tick and its age now, to 0.1 s.
            oldest_age_now = time.time() - script.first_stamp_s
            assert script.age_s - 0.1 <= seconds.value <= oldest_age_now + 0.1, seconds.value
        elif kind.value == "unknown":
            assert seconds is None  # messages wait: no made-up 0 s
        else:
            assert seconds.value >= 0
        for label, value in _floats(meta).items():
            assert decimals_of(value) <= 1, (label, value)

        # The lag doubles: a new point, with the new figure.
        script.produce(40)
        moved = ticks.tick()
        assert [e.asset_key for e in moved.asset_events] == [key]
        latest = _lag_observations(instance, key)
        assert latest[0].metadata["consumer_lag_msgs_total"].value == 80

        # The group catches up: lag 0 is a point too.
        script.commit(script.produced)
        ticks.tick()
        latest = _lag_observations(instance, key)
        assert latest[0].metadata["consumer_lag_msgs_total"].value == 0
        assert latest[0].metadata["consumer_lag_seconds_max"].value == 0.0

    # A sensor whose heartbeat is due every tick records every tick, still one per topic.
    with dg.DagsterInstance.ephemeral() as instance:
        ticks = SensorTicks(kafka_bootstrap, catalog, group, instance, observe_every_s=0)
        for _ in range(3):
            assert [e.asset_key for e in ticks.tick().asset_events] == [key]
        assert len(_lag_observations(instance, key)) == 3


# -- the health asset's numbers ---------------------------------------------------------------


def _health_defs(catalog, kafka: KafkaResource) -> dg.Definitions:
    return dg.Definitions.merge(
        topics.build_defs(catalog),
        health.build_defs(catalog),
        dg.Definitions(resources={"kafka": kafka, "alerts": AlertsResource()}),
    )


def _latest_health(instance) -> dict:
    (record,) = instance.fetch_materializations(health.HEALTH_STATE_KEY, limit=1).records
    return record.asset_materialization.metadata


@pytest.mark.kafka
def test_the_health_asset_carries_the_numbers_people_plot(kafka_bootstrap, tmp_path, unique_name):
    from ecap_ops.gateway import KafkaGateway
    from ecap_ops.settings import KafkaSettings

    catalog = load_catalog(prefixed_catalog(tmp_path, unique_name))
    defs = _health_defs(catalog, KafkaResource(bootstrap_servers=kafka_bootstrap))
    (tmp_path / "home").mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "home")) as instance:
        result = defs.resolve_job_def("kafka_health_check").execute_in_process(
            instance=instance,
            run_config={"ops": {"kafka_health_report": {"config": {"canary_timeout_seconds": 10}}}},
        )
        assert result.success, run_failures(result)
        meta = _latest_health(instance)
    report = result.output_for_node("kafka_health_report")
    by_severity = {
        s: sum(f["severity"] == s for f in report["findings"]) for s in ("CRIT", "WARN", "OK")
    }
    assert meta["crit_findings"].value == by_severity["CRIT"]
    assert meta["warn_findings"].value == by_severity["WARN"]
    assert meta["ok_findings"].value == by_severity["OK"] > 0
    assert meta["warn_findings"].value >= 1  # the catalog's topics do not exist here
    # The broker as the gateway reads it, and the partitions by the same rule.
    with KafkaGateway(KafkaSettings(bootstrap_servers=kafka_bootstrap)) as gw:
        _cluster_id, _controller, live = gw.brokers()
    brokers = len(live)
    assert meta["brokers"].value == brokers >= 1
    for label in ("offline_partitions", "under_replicated_partitions", "under_min_isr_partitions"):
        assert isinstance(meta[label], dg.IntMetadataValue), label
        assert meta[label].value == report["metrics"][label]
    took = meta["check_seconds"].value
    assert 0 < took < 120
    assert meta["canary_latency_ms"].value > 0
    floats = _floats(meta)
    assert {"check_seconds", "canary_latency_ms"} <= set(floats)
    for label, value in floats.items():
        assert decimals_of(value) <= 1, (label, value)


@pytest.mark.kafka
def test_health_with_no_broker_answering_plots_zero_brokers_and_no_made_up_partitions(tmp_path):
    from ecap_ops.localkafka.cluster import free_port

    catalog = load_catalog(env="dev")
    kafka = KafkaResource(
        bootstrap_servers=f"127.0.0.1:{free_port()}",
        connect_timeout_ms=2000,
        request_timeout_ms=2000,
    )
    instance = dg.DagsterInstance.ephemeral()
    result = (
        _health_defs(catalog, kafka)
        .resolve_job_def("kafka_health_check")
        .execute_in_process(
            instance=instance,
            run_config={"ops": {"kafka_health_report": {"config": {"canary": False}}}},
        )
    )
    assert result.success, run_failures(result)
    meta = _latest_health(instance)
    assert meta["status"].value == "CRIT" and meta["crit_findings"].value >= 1
    assert meta["brokers"].value == 0
    # Not measured: left out (a gap in the plot), never a 0 that reads as healthy.
    for label in ("offline_partitions", "under_replicated_partitions", "canary_latency_ms"):
        assert label not in meta, label
    assert decimals_of(meta["check_seconds"].value) <= 1


# -- the docs name what is plotted ----------------------------------------------------------


def test_every_plotted_label_is_documented():
    from ecap_ops_tests.e2e_helpers import REPO

    docs = (REPO / "docs" / "consumer-lag.md").read_text() + (
        REPO / "docs" / "health-and-audits.md"
    ).read_text()
    labels = set(topic_lag_figures([_status("g", "transactions", 5, 1.25)]))
    labels |= {k for k, _ in health.PLOTTED_HEALTH_METRICS}
    labels |= {"crit_findings", "warn_findings", "ok_findings", "check_seconds"}
    missing = sorted(label for label in labels if f"`{label}`" not in docs)
    assert not missing, f"plotted but not documented in docs/: {missing}"


# -- the plots in the web UI, in Chromium ------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for exe in (CHROMIUM, CHROMEDRIVER):
        assert Path(exe).exists(), f"{exe} is missing: bash scripts/install-system-deps.sh"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1600,2000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


def _open_plots(browser, url: str, labels: tuple[str, ...], shot: Path) -> str:
    """Open an asset page, switch its metadata from Table to Plots, wait until every label
    is drawn as a plot (its heading and a chart canvas), keep a screenshot and the DOM."""
    from selenium.webdriver.common.by import By

    from ecap_ops_tests.e2e_helpers import wait_for

    browser.get(url)
    plots_button = "//button[normalize-space(.)='Plots']"

    def table_then_plots():
        buttons = [b for b in browser.find_elements(By.XPATH, plots_button) if b.is_displayed()]
        if not buttons or labels[0] not in browser.find_element(By.TAG_NAME, "body").text:
            return False
        buttons[0].click()
        return True

    try:
        wait_for(f"the metadata table of {url}", table_then_plots, 90, interval=1)

        def drawn():
            # Each plot is its label's heading above a chart.js canvas, in one box.
            found = browser.execute_script(
                """
                const labels = arguments[0];
                const plotted = new Set();
                for (const canvas of document.querySelectorAll('canvas')) {
                  let box = canvas.parentElement;
                  for (let up = 0; box && up < 6; up++, box = box.parentElement) {
                    const hit = labels.find(l => Array.from(box.querySelectorAll('*')).some(
                      e => e.childElementCount === 0 && e.textContent.trim() === l));
                    if (hit) { plotted.add(hit); break; }
                  }
                }
                return Array.from(plotted);
                """,
                list(labels),
            )
            return set(labels) <= set(found)

        wait_for(f"plots of {', '.join(labels)} on {url}", drawn, 60, interval=1)
        time.sleep(1)  # let the charts finish their entry animation for the screenshot
    finally:
        shot.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(shot))
        shot.with_suffix(".html").write_text(browser.page_source)
    return browser.page_source


@pytest.mark.slow
@pytest.mark.kafka
def test_a_topics_lag_plot_in_the_dagster_ui(kafka_bootstrap, tmp_path, unique_name):
    """A temp DAGSTER_HOME holding the sensor's lag points (ticked through Dagster's own
    sensor machinery against a scripted group) and two health runs; `dagster dev` on a free
    loopback port; Chromium opens the topic's and the health asset's plots. Screenshots:
    artifacts/screenshots/plots-topic-lag.png and plots-health.png (with the DOM beside)."""
    from ecap_ops_tests.e2e_helpers import (
        SCREENSHOTS,
        DagsterDev,
        dagster_env,
        isolated_catalog,
        prepare_home,
    )

    home = prepare_home(tmp_path / "home")
    catalog_path, env_name, _prefix = isolated_catalog(home)
    catalog = load_catalog(catalog_path, env=env_name)
    group = unique_name + "-dashboard"
    script = LagScript(kafka_bootstrap, catalog, group, age_s=300)
    script.commit(0)
    lags = []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        ticks = SensorTicks(kafka_bootstrap, catalog, group, instance, observe_every_s=0)
        for n in (20, 30, 40, 10, 60):
            script.produce(n)
            ticks.tick()
            lags.append(script.produced)
            time.sleep(1.5)
        key = dg.AssetKey(["kafka", script.topic])
        recorded = [
            e.metadata["consumer_lag_msgs_total"].value for e in _lag_observations(instance, key)
        ]
        assert recorded[::-1] == lags
        defs = _health_defs(catalog, KafkaResource(bootstrap_servers=kafka_bootstrap))
        for _ in range(2):
            assert (
                defs.resolve_job_def("kafka_health_check")
                .execute_in_process(
                    instance=instance,
                    run_config={
                        "ops": {"kafka_health_report": {"config": {"canary_timeout_seconds": 10}}}
                    },
                )
                .success
            )

    env = dagster_env(
        home, kafka_bootstrap, {"ECAP_CATALOG": str(catalog_path), "ECAP_ENV": env_name}
    )
    dev = DagsterDev(home, env).start()
    browser = None
    try:
        dev.wait_ready(timeout=240)
        browser = _chromium()
        # Dismiss Dagster's one-time "join the community" dialog before any page opens.
        browser.get(f"{dev.url}/server_info")
        browser.execute_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
        topic_labels = ("consumer_lag_msgs_total", "consumer_groups", "consumer_lag_msgs_max")
        dom = _open_plots(
            browser,
            f"{dev.url}/assets/kafka/{script.topic}",
            topic_labels,
            SCREENSHOTS / "plots-topic-lag.png",
        )
        assert "Asset plots are automatically generated" not in dom  # not the empty state
        health_labels = ("warn_findings", "check_seconds", "brokers")
        _open_plots(
            browser,
            f"{dev.url}/assets/ecap_ops/kafka_cluster_health",
            health_labels,
            SCREENSHOTS / "plots-health.png",
        )
    finally:
        if browser is not None:
            browser.quit()
        dev.stop()
    shot = SCREENSHOTS / "plots-topic-lag.png"
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
