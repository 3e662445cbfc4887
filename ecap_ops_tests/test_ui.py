"""The Dagster web UI end to end, in a real browser (Debian's headless Chromium driven by
Selenium), against `dagster dev` and the session's real Kafka broker, as `make run` serves it.

A user opens the asset graph and sees the five topic assets, opens `provision_topics`,
launches it and sees the run succeed (and the topics appear on the broker), and opens the
pages of every schedule and sensor; a script does the same through the webserver's GraphQL
API (one `dagster dev` serves both). Screenshots of each step are kept in
artifacts/screenshots/ (CI keeps that folder).
"""

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecap_ops_tests.e2e_helpers import (
    SCREENSHOTS,
    DagsterDev,
    dagster_env,
    defined_names,
    isolated_catalog,
    prepare_home,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CATALOG_TOPICS = (
    "transactions",
    "user-events",
    "product-updates",
    "fraud-alerts",
    "analytics-results",
)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class Stack:
    """What the tests share: the running Dagster, its code location and the topic prefix."""

    def __init__(
        self, dev: DagsterDev, location: str, prefix: str, env: dict[str, str], bootstrap: str
    ) -> None:
        self.dev = dev
        self.location = location
        self.prefix = prefix
        self.env = env
        self.bootstrap = bootstrap

    def page(self, path: str) -> str:
        return f"{self.dev.url}/locations/{self.location}{path}"


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = prepare_home(tmp_path_factory.mktemp("dagster-ui"))
    catalog, env_name, prefix = isolated_catalog(home)
    env = dagster_env(home, kafka_bootstrap, {"ECAP_CATALOG": str(catalog), "ECAP_ENV": env_name})
    dev = DagsterDev(home, env).start()
    try:
        location = dev.wait_ready(timeout=240)
        yield Stack(dev, location, prefix, env, kafka_bootstrap)
    finally:
        dev.stop()


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator:
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
        "--window-size=1600,2200",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        # Dismiss Dagster's one-time "join the community" dialog before any page opens.
        driver.get(f"{stack.dev.url}/server_info")
        driver.execute_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shot(browser, request: pytest.FixtureRequest):
    """Save a screenshot of the current page as one step of this test."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = request.node.name.removeprefix("test_")

    def take(step: str) -> Path:
        path = SCREENSHOTS / f"ui-{name}-{step}.png"
        browser.save_screenshot(str(path))
        return path

    return take


def visible_text(browser, text: str, timeout: float = 60):
    """Wait until an element whose own text is exactly `text` is displayed; return it.
    On a timeout the page is kept as a screenshot (ui-missing-*.png) for the CI artifacts."""
    from selenium.webdriver.common.by import By

    xpath = f"//*[normalize-space(text())={json.dumps(text)}]"

    def find():
        return next((e for e in browser.find_elements(By.XPATH, xpath) if e.is_displayed()), None)

    try:
        return wait_for(f"{text!r} on {browser.current_url}", find, timeout, interval=0.5)
    except TimeoutError:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        slug = "".join(c if c.isalnum() else "-" for c in text)[:60]
        browser.save_screenshot(str(SCREENSHOTS / f"ui-missing-{slug}.png"))
        raise


def text_on_page(browser, what: str, pred, timeout: float = 60):
    """Wait until `pred(page text)`; on a timeout keep the page (png and txt) for the artifacts."""
    try:
        return wait_for(what, lambda: pred(page_text(browser)), timeout, interval=0.5)
    except TimeoutError:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        slug = "".join(c if c.isalnum() else "-" for c in what)[:60]
        browser.save_screenshot(str(SCREENSHOTS / f"ui-missing-{slug}.png"))
        (SCREENSHOTS / f"ui-missing-{slug}.txt").write_text(page_text(browser))
        raise


def page_text(browser) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.TAG_NAME, "body").text


def test_asset_graph_shows_the_five_topic_assets(stack: Stack, browser, shot):
    browser.get(stack.page("/asset-groups/kafka_topics"))
    for topic in CATALOG_TOPICS:
        visible_text(browser, stack.prefix + topic)
    shot("asset-graph")
    # Nothing else is in the group: exactly the catalog's five topics.
    assert (
        len({line for line in page_text(browser).splitlines() if line.startswith(stack.prefix)})
        == 5
    )


def test_launch_provision_topics_and_see_it_succeed(stack: Stack, browser, shot):
    from selenium.webdriver.common.by import By

    browser.get(stack.page("/jobs/provision_topics"))
    visible_text(browser, "provision_topics")
    # The job explains itself (once the page has loaded).
    wait_for(
        "the job's description",
        lambda: "Never deletes a topic" in page_text(browser),
        60,
        interval=0.5,
    )
    shot("job-page")
    before = {r["runId"] for r in stack.dev.runs("provision_topics")}
    button = wait_for(
        "the 'Materialize all' button",
        lambda: next(
            (
                b
                for b in browser.find_elements(
                    By.XPATH, "//button[normalize-space()='Materialize all']"
                )
                if b.is_enabled()
            ),
            None,
        ),
        60,
    )
    button.click()
    run_id = wait_for(
        "a new provision_topics run",
        lambda: next(iter({r["runId"] for r in stack.dev.runs("provision_topics")} - before), None),
        60,
    )
    browser.get(f"{stack.dev.url}/runs/{run_id}")
    visible_text(browser, run_id[:8])
    shot("run-started")
    # The run page updates itself; a failure shows "Failure" instead and ends the wait early.
    status = wait_for(
        f"run {run_id} to finish (queued by the daemon, then executed)",
        lambda: (
            stack.dev.run_status(run_id) in ("SUCCESS", "FAILURE", "CANCELED")
            and stack.dev.run_status(run_id)
        ),
        240,
        interval=2,
        on_timeout=stack.dev.log_tail,
    )
    visible_text(browser, "Success" if status == "SUCCESS" else "Failure", timeout=60)
    shot("run-finished")
    assert status == "SUCCESS", f"run {run_id} ended {status}"
    assert "Succeeded (" in page_text(browser)
    # Verified with an independent client: the broker now has the five topics.
    out = subprocess.run(
        [shutil.which("kcat") or "kcat", "-b", stack.bootstrap, "-L", "-J", "-m", "10"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    topics = {t["topic"]: len(t["partitions"]) for t in json.loads(out.stdout)["topics"]}
    expected = {
        "transactions": 6,
        "user-events": 12,
        "product-updates": 3,
        "fraud-alerts": 2,
        "analytics-results": 4,
    }
    for name, partitions in expected.items():
        assert topics.get(stack.prefix + name) == partitions, (
            f"{stack.prefix + name}: {topics.get(stack.prefix + name)} partitions"
        )


def test_every_schedule_and_sensor_page_opens(stack: Stack, browser, shot):
    names = defined_names(stack.env)
    assert "kafka_health_check_schedule" in names["schedules"]
    assert "consumer_lag_sensor" in names["sensors"]
    for schedule in names["schedules"]:
        browser.get(stack.page(f"/schedules/{schedule}"))
        visible_text(browser, schedule)
        wait_for(
            f"the cron of {schedule}",
            lambda s=schedule: f"({names['crons'][s]})" in page_text(browser),
            30,
            interval=0.5,
        )
        assert "Schedule in" in page_text(browser)
        shot(f"schedule-{schedule}")
    for sensor in names["sensors"]:
        browser.get(stack.page(f"/sensors/{sensor}"))
        visible_text(browser, sensor)
        assert "Sensor in" in page_text(browser)
        shot(f"sensor-{sensor}")
    lag_page = stack.page("/sensors/consumer_lag_sensor")
    browser.get(lag_page)
    visible_text(browser, "consumer_lag_sensor")
    wait_for(
        "the lag sensor's description",
        lambda: "consumer group" in page_text(browser),
        30,
        interval=0.5,
    )
    # Locally (no ECAP_*_DEFAULT set) the routine schedules and sensors start stopped.
    data = stack.dev.graphql(
        "{ repositoriesOrError { ... on RepositoryConnection { nodes { schedules { name scheduleState { status } }"
        " sensors { name sensorState { status } } } } } }"
    )
    (repo,) = data["repositoriesOrError"]["nodes"]
    states = {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]}
    states |= {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    assert states["kafka_health_check_schedule"] == "STOPPED"
    assert states["consumer_lag_sensor"] == "STOPPED"


# -- the pages an on-call engineer reads (issue 11): screenshots kept as artifacts ---------


def launch(stack: Stack, job: str, run_config: dict | None = None) -> str:
    """Submit a run of `job` through GraphQL (the daemon dequeues it); its id."""
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=stack.dev.port)
    return client.submit_job_execution(
        job, repository_location_name=stack.location, run_config=run_config or {}
    )


def finished(stack: Stack, run_id: str, timeout: float = 240) -> str:
    """Wait for a run to end; its status."""
    return wait_for(
        f"run {run_id} to finish",
        lambda: (
            stack.dev.run_status(run_id) in ("SUCCESS", "FAILURE", "CANCELED")
            and stack.dev.run_status(run_id)
        ),
        timeout,
        interval=2,
        on_timeout=stack.dev.log_tail,
    )


def run_tags(stack: Stack, run_id: str) -> dict[str, str]:
    data = stack.dev.graphql(
        "query($id: ID!) { runOrError(runId: $id) { ... on Run { tags { key value } } } }",
        {"id": run_id},
    )
    return {t["key"]: t["value"] for t in data["runOrError"]["tags"]}


def provisioned(stack: Stack) -> None:
    """The isolated catalog's topics exist (provision_topics succeeded at least once)."""
    if not any(r["status"] == "SUCCESS" for r in stack.dev.runs("provision_topics")):
        assert finished(stack, launch(stack, "provision_topics")) == "SUCCESS"


def asset_page(stack: Stack, *path: str) -> str:
    return f"{stack.dev.url}/assets/" + "/".join(path)


def test_cluster_health_page_shows_a_warn_verdict_findings_and_the_runs_tag(
    stack: Stack, browser, shot
):
    provisioned(stack)
    # Out-of-band drift on user-events: the health check's finding, and its topic check.
    from ecap_ops.gateway import KafkaGateway
    from ecap_ops.settings import KafkaSettings

    drifted = stack.prefix + "user-events"
    with KafkaGateway(KafkaSettings(bootstrap_servers=stack.bootstrap)) as gw:
        gw.require(gw.alter_topic_configs({drifted: {"retention.ms": "3600000"}}), "altering")
    config = {"ops": {"kafka_health_report": {"config": {"canary_timeout_seconds": 10}}}}
    run_ids = [launch(stack, "kafka_health_check", config) for _ in range(2)]
    for run_id in run_ids:
        assert finished(stack, run_id) == "SUCCESS"
        # The e2e environment is judged as production: one broker is a WARN there.
        assert run_tags(stack, run_id).get("ecap/health") == "WARN"

    browser.get(asset_page(stack, "ecap_ops", "kafka_cluster_health"))
    visible_text(browser, "kafka_cluster_health")
    wait_for(
        "the verdict on the health page",
        lambda: "WARN:" in page_text(browser) and "Open incident" in page_text(browser),
        60,
        interval=0.5,
    )
    shot("asset-page")
    text = page_text(browser)
    (SCREENSHOTS / "ui-health-page.txt").write_text(text)
    assert "Never materialized" not in text
    assert "differs from the catalog" in text and drifted in text
    # People first: the summary comes before the machine state on the page.
    metadata = text[text.index("Key Timestamp Value") :]
    assert metadata.index("WARN:") < metadata.index("incident_state")

    # The runs list shows the verdict as a tag.
    browser.get(f"{stack.dev.url}/runs?q%5B0%5D=job%3Akafka_health_check")
    visible_text(browser, run_ids[-1][:8])
    wait_for("the verdict tag", lambda: "ecap/health" in page_text(browser), 60, interval=0.5)
    shot("runs-list")

    # user-events' matches_catalog follows the health check: red, with the drift.
    browser.get(asset_page(stack, "kafka", drifted) + "?view=checks")
    text_on_page(browser, "matches_catalog marked Failed", lambda t: "matches_catalog\nFailed" in t)
    visible_text(browser, "matches_catalog").click()
    text_on_page(
        browser,
        "user-events' failed matches_catalog check",
        lambda t: "retention.ms" in t,
    )
    shot("user-events-checks")


def test_topic_asset_page(stack: Stack, browser, shot):
    provisioned(stack)
    topic = stack.prefix + "transactions"
    browser.get(asset_page(stack, "kafka", topic))
    visible_text(browser, topic)
    wait_for(
        "the topic's materialization metadata",
        lambda: "partition_table" in page_text(browser),
        60,
        interval=0.5,
    )
    text = page_text(browser)
    assert "Unmanaged" not in text and "Never materialized" not in text
    shot("overview")


def test_snapshot_asset_page_after_two_snapshots(stack: Stack, browser, shot):
    for _ in range(2):
        assert finished(stack, launch(stack, "dr_snapshot")) == "SUCCESS"
    browser.get(asset_page(stack, "kafka_metadata_snapshot"))
    visible_text(browser, "kafka_metadata_snapshot")
    wait_for(
        "the latest snapshot's summary",
        lambda: "Snapshot of cluster" in page_text(browser),
        60,
        interval=0.5,
    )
    text = page_text(browser)
    assert "partitions" in text and "0 of" not in text  # no partitions to count
    assert "no change since the previous snapshot" in text
    shot("overview")
    browser.get(asset_page(stack, "kafka_metadata_snapshot") + "?view=events")
    visible_text(browser, "kafka_metadata_snapshot")
    text_on_page(browser, "the snapshot history", lambda t: "Materialized in run" in t)
    shot("history")


def render_alerts(jsonl: Path, out: Path) -> Path:
    """The JSON-lines alert log as a page people read: newest first, title, text, run link."""
    import html

    alerts = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    rows = []
    for a in reversed(alerts):
        link = (
            f'<a href="{html.escape(a["run_url"])}">{html.escape(a["run_url"])}</a>'
            if a.get("run_url")
            else ""
        )
        rows.append(
            f"<tr><td>{html.escape(a['at'])}</td><td class='{a['severity']}'>"
            f"{html.escape(a['severity'].upper())}</td><td><b>{html.escape(a['title'])}</b>"
            f"<pre>{html.escape(a.get('text', ''))}</pre>{link}</td></tr>"
        )
    out.write_text(
        "<html><head><style>body{font-family:sans-serif;margin:24px}"
        "td{vertical-align:top;padding:8px;border-bottom:1px solid #ccc}"
        ".critical{color:#b00;font-weight:bold}pre{white-space:pre-wrap;margin:6px 0}</style></head>"
        f"<body><h2>Alerts log: {html.escape(str(jsonl))}</h2><table>"
        "<tr><th>at</th><th>severity</th><th>alert</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    return out


def test_a_failed_runs_alert_names_the_cause(stack: Stack, browser, shot, tmp_path):
    sensor = "run_failure_alert_sensor"
    started = stack.dev.graphql(
        "mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename"
        " ... on PythonError { message } } }",
        {
            "s": {
                "repositoryName": "__repository__",
                "repositoryLocationName": stack.location,
                "sensorName": sensor,
            }
        },
    )
    assert started["startSensor"]["__typename"] == "Sensor", started
    missing = "/nonexistent/snapshots/ecap-snapshot-missing.json"
    run_id = launch(
        stack,
        "dr_restore",
        {"ops": {"restore_from_snapshot": {"config": {"snapshot_path": missing}}}},
    )
    assert finished(stack, run_id) == "FAILURE"
    jsonl = Path(stack.env["ECAP_ALERT_JSONL"])

    def alert():
        if not jsonl.exists():
            return None
        for line in jsonl.read_text().splitlines():
            a = json.loads(line)
            if a.get("fields", {}).get("run_id") == run_id:
                return a
        return None

    sent = wait_for(
        "the failure alert in the JSON-lines log",
        alert,
        180,
        interval=3,
        on_timeout=stack.dev.log_tail,
    )
    assert "no such snapshot file" in sent["title"] and "restore_from_snapshot" in sent["title"]
    assert sent["run_url"].endswith(f"/runs/{run_id}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = render_alerts(jsonl, SCREENSHOTS / "alerts-log.html")
    browser.get(page.as_uri())
    visible_text(browser, "CRITICAL")
    shot("alerts-log")
    browser.get(f"{stack.dev.url}/runs/{run_id}")
    visible_text(browser, run_id[:8])
    wait_for(
        "the step's error on the run page",
        lambda: "no such snapshot file" in page_text(browser),
        60,
    )
    shot("run-page")


def test_graphql_serves_the_topic_assets_and_runs_provision_topics(stack: Stack):
    """What scripts see through the webserver's GraphQL API (the same `dagster dev` as the
    browser tests): the five topic assets in group kafka_topics, provision_topics with its
    description, launched by Dagster's own GraphQL client and succeeding, and the topics on
    the broker (Kafka's own kafka-topics lists them)."""
    import time

    from dagster_graphql import DagsterGraphQLClient

    from ecap_ops_tests.helpers import kafka_tool

    dev = stack.dev
    assets = dev.graphql("{ assetNodes { assetKey { path } groupName } }")["assetNodes"]
    topic_assets = {
        "/".join(a["assetKey"]["path"]) for a in assets if a["groupName"] == "kafka_topics"
    }
    assert topic_assets == {f"kafka/{stack.prefix}{n}" for n in CATALOG_TOPICS}

    jobs = dev.graphql(
        "{ repositoriesOrError { ... on RepositoryConnection { nodes { name jobs { name description } } } } }"
    )["repositoriesOrError"]["nodes"]
    job = next(j for r in jobs for j in r["jobs"] if j["name"] == "provision_topics")
    assert "one topic at a time" in job["description"]

    client = DagsterGraphQLClient("127.0.0.1", port_number=dev.port)
    run_id = client.submit_job_execution(
        "provision_topics",
        repository_location_name=stack.location,
        repository_name="__repository__",
    )
    started = time.monotonic()
    status = wait_for(
        "provision_topics to finish",
        lambda: s if (s := dev.run_status(run_id)) in ("SUCCESS", "FAILURE", "CANCELED") else None,
        timeout=240,
        interval=2,
        on_timeout=dev.log_tail,
    )
    assert status == "SUCCESS", (status, time.monotonic() - started, dev.log_tail())
    listed = kafka_tool(stack.bootstrap, "kafka-topics", "--list").stdout.split()
    assert {stack.prefix + n for n in CATALOG_TOPICS} <= set(listed)
