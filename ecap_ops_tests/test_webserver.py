"""The webserver loads the code location against the local broker: GraphQL finds the topic
assets and provision_topics, launches the job and sees it succeed."""

import time

from dagster_graphql import DagsterGraphQLClient

from ecap_ops_tests.e2e_helpers import (
    DagsterDev,
    dagster_env,
    isolated_catalog,
    prepare_home,
    wait_for,
)
from ecap_ops_tests.helpers import kafka_tool

NAMES = ["transactions", "user-events", "product-updates", "fraud-alerts", "analytics-results"]


def test_dagster_dev_serves_the_topic_assets_and_runs_provision_topics(kafka_cluster, tmp_path):
    catalog, env_name, prefix = isolated_catalog(tmp_path)
    home = prepare_home(tmp_path / "home")
    env = dagster_env(
        home, kafka_cluster.bootstrap_servers, {"ECAP_CATALOG": str(catalog), "ECAP_ENV": env_name}
    )
    with DagsterDev(home, env) as dev:
        location = dev.wait_ready()

        assets = dev.graphql("{ assetNodes { assetKey { path } groupName } }")["assetNodes"]
        topic_assets = {
            "/".join(a["assetKey"]["path"]) for a in assets if a["groupName"] == "kafka_topics"
        }
        assert topic_assets == {f"kafka/{prefix}{n}" for n in NAMES}

        jobs = dev.graphql(
            "{ repositoriesOrError { ... on RepositoryConnection { nodes { name jobs { name description } } } } }"
        )["repositoriesOrError"]["nodes"]
        job = next(j for r in jobs for j in r["jobs"] if j["name"] == "provision_topics")
        assert "one topic at a time" in job["description"]

        client = DagsterGraphQLClient("127.0.0.1", port_number=dev.port)
        run_id = client.submit_job_execution(
            "provision_topics", repository_location_name=location, repository_name="__repository__"
        )
        started = time.monotonic()
        status = wait_for(
            "provision_topics to finish",
            lambda: (
                s if (s := dev.run_status(run_id)) in ("SUCCESS", "FAILURE", "CANCELED") else None
            ),
            timeout=240,
            interval=2,
            on_timeout=dev.log_tail,
        )
        assert status == "SUCCESS", (status, time.monotonic() - started, dev.log_tail())

    listed = kafka_tool(kafka_cluster, "kafka-topics", "--list").stdout.split()
    assert {prefix + n for n in NAMES} <= set(listed)
