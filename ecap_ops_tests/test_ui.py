"""The Dagster web UI end to end, in a real browser (Debian's headless Chromium driven by
Selenium), against `dagster dev` and the session's real Kafka broker, as `make run` serves it.

A user opens the asset graph and sees the five topic assets, opens `provision_topics`,
launches it and sees the run succeed (and the topics appear on the broker), and opens the
pages of every schedule and sensor. Screenshots of each step are kept in
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
    assert "Never deletes a topic" in page_text(browser)  # the job explains itself
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
