"""The contract checks and the volume plot on a topic asset's page, in Chromium.

A temp DAGSTER_HOME holds three runs of the job `topic_contracts` over the catalog's five
topics (an isolated copy of the shipped catalog, its own name prefix) with load-test
traffic on `transactions` between them, so the topic asset has its five check results and
observations with records per hour. `dagster dev` serves it on a free loopback port;
Chromium opens the asset's Checks tab and its Plots. Screenshots:
artifacts/screenshots/contracts-checks.png and contracts-plots.png (with the DOM beside).
"""

import time

import dagster as dg
import pytest

from ecap_ops.catalog import load_catalog
from ecap_ops.catalog.contracts import CHECKS
from ecap_ops.gateway import KafkaGateway
from ecap_ops.settings import KafkaSettings
from ecap_ops_tests.helpers import run_failures

PLOTTED = ("records_per_hour", "partition_skew")


def _contracts_job(catalog, bootstrap: str, home):
    from ecap_ops.orchestration import contracts, topics
    from ecap_ops.orchestration.alerts import AlertsResource
    from ecap_ops.orchestration.resources import KafkaResource

    defs = dg.Definitions.merge(
        topics.build_defs(catalog),
        contracts.build_defs(catalog),
        dg.Definitions(
            resources={
                "kafka": KafkaResource(bootstrap_servers=bootstrap),
                "alerts": AlertsResource(jsonl_path=str(home / "alerts.jsonl")),
            }
        ),
    )
    return defs.get_job_def("topic_contracts")


def _open_checks(browser, url: str, names: tuple[str, ...], shot) -> str:
    """Open an asset's Checks tab, wait until every check name is listed, keep a screenshot
    and the DOM."""
    from selenium.webdriver.common.by import By

    from ecap_ops_tests.e2e_helpers import wait_for

    browser.get(url)
    try:

        def listed():
            text = browser.find_element(By.TAG_NAME, "body").text
            return all(n in text for n in names)

        wait_for(f"the checks {', '.join(names)} on {url}", listed, 90, interval=1)
        time.sleep(1)
    finally:
        shot.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(shot))
        shot.with_suffix(".html").write_text(browser.page_source)
    return browser.find_element(By.TAG_NAME, "body").text


@pytest.mark.slow
@pytest.mark.kafka
def test_a_topics_contract_checks_and_volume_plot_in_the_dagster_ui(kafka_bootstrap, tmp_path):
    from ecap_ops.services.load_test import load_test
    from ecap_ops_tests.e2e_helpers import (
        SCREENSHOTS,
        DagsterDev,
        dagster_env,
        isolated_catalog,
        prepare_home,
    )
    from ecap_ops_tests.test_dagster_plots import _chromium, _open_plots

    home = prepare_home(tmp_path / "home")
    catalog_path, env_name, _prefix = isolated_catalog(home)
    catalog = load_catalog(catalog_path, env=env_name)
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    with KafkaGateway(settings) as gw:
        gw.require(
            gw.create_topics(
                {
                    t.name: {"num_partitions": t.partitions, "replication_factor": 1}
                    for t in catalog.topics
                }
            ),
            "creating the page's topics",
        )
    tx = catalog.get("transactions").name
    job = _contracts_job(catalog, kafka_bootstrap, home)
    per_hour = []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for rate in (40, 80, 20):
            with KafkaGateway(settings) as gw:
                sent = load_test(gw, catalog, "transactions", rate, 1.0, keys=200)
            assert sent.records_acked == rate
            result = job.execute_in_process(instance=instance)
            assert result.success, run_failures(result)
            time.sleep(1)
        # what the page will show: the five checks of transactions and its records per hour
        key = dg.AssetKey(["kafka", tx])
        for check in CHECKS:
            record = instance.event_log_storage.get_asset_check_execution_history(
                dg.AssetCheckKey(key, check), limit=1
            )
            assert record, f"no {check} result recorded on {tx}"
        observations = instance.fetch_observations(key, limit=10).records
        per_hour = [
            o.asset_observation.metadata["records_per_hour"].value
            for o in observations
            if "records_per_hour" in o.asset_observation.metadata
        ]
        assert len(per_hour) >= 2 and all(v > 0 for v in per_hour), per_hour

    env = dagster_env(
        home, kafka_bootstrap, {"ECAP_CATALOG": str(catalog_path), "ECAP_ENV": env_name}
    )
    dev = DagsterDev(home, env).start()
    browser = None
    try:
        dev.wait_ready(timeout=240)
        browser = _chromium()
        browser.get(f"{dev.url}/server_info")
        browser.execute_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
        text = _open_checks(
            browser,
            f"{dev.url}/assets/kafka/{tx}?view=checks&checkDetail=volume_in_band",
            (*CHECKS, "records_per_hour"),
            SCREENSHOTS / "contracts-checks.png",
        )
        lines = [line.strip() for line in text.splitlines()]
        for check in CHECKS:  # listed with the result the runs recorded, not "Not Evaluated"
            status = lines[lines.index(check) + 1]
            assert status in ("Succeeded", "Failed", "Warning"), (check, status)
        dom = _open_plots(
            browser, f"{dev.url}/assets/kafka/{tx}", PLOTTED, SCREENSHOTS / "contracts-plots.png"
        )
        assert "records_per_hour" in dom
        assert "Asset plots are automatically generated" not in dom  # not the empty state
    finally:
        if browser is not None:
            browser.quit()
        dev.stop()
        with KafkaGateway(settings) as gw:
            gw.delete_topics([t.name for t in catalog.topics])
    for name in ("contracts-checks.png", "contracts-plots.png"):
        shot = SCREENSHOTS / name
        assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_contract_check_and_plotted_label_is_documented():
    """docs/contracts.md names each check and each figure plotted on a topic asset (the
    labels the job records, read from a real observation), and the README links it."""
    from ecap_ops.core.contracts import ContractResult
    from ecap_ops.orchestration.contracts import _topic_observation
    from ecap_ops_tests.e2e_helpers import REPO

    catalog = load_catalog()
    name = catalog.get("transactions").name
    meta = {
        "volume_in_band": {"records_per_hour": ("float", 1.0)},
        "partition_balance": {"skew": ("float", 1.0)},
        "schema_conformance": {"failing_share": ("float", 0.0)},
        "freshness": {"silent_seconds": ("float", 1.0)},
        "key_discipline": {},
    }
    checks = {c: ContractResult(name, c, True, "OK", "", meta[c]) for c in CHECKS}
    labels = set(_topic_observation(catalog, name, checks).metadata)
    assert "records_per_hour" in labels
    docs = (REPO / "docs" / "contracts.md").read_text()
    missing = sorted(x for x in labels | set(CHECKS) if f"`{x}`" not in docs)
    assert not missing, f"not documented in docs/contracts.md: {missing}"
    assert "(docs/contracts.md)" in (REPO / "README.md").read_text()
