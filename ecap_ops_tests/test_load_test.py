"""load-test on the real broker: the guide's top volume for user-events (500,000/hour, about
140/s) with margin, keyed by session_id and matching the schema; bad arguments refused
with nothing produced. Asserts on counts and reported figures, not on the test's speed."""

import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecap_ops.catalog import load_catalog
from ecap_ops.catalog.contracts import contracts_of
from ecap_ops.cli import main
from ecap_ops.core.contracts import key_discipline, schema_conformance
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.sample import sample_topic

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def user_events(kafka_settings, tmp_path_factory):
    """The shipped catalog's user-events under a prefix of its own (prod overlay, rf 1)."""
    from ecap_ops_tests.helpers import topic_name

    prefix = topic_name("load") + "."
    folder = tmp_path_factory.mktemp("load")
    text = load_catalog().source and open(load_catalog().source).read()
    text = text.replace(
        '    replication_factor: 3\n    min_insync_replicas: 2\n    name_prefix: ""',
        f'    replication_factor: 1\n    min_insync_replicas: 1\n    name_prefix: "{prefix}"',
    )
    path = folder / "topics.yaml"
    path.write_text(text)
    catalog = load_catalog(path, env="prod")
    name = catalog.get("user-events").name
    assert name == prefix + "user-events"
    with KafkaGateway(kafka_settings) as gw:
        gw.require(gw.create_topics({name: {"num_partitions": 12, "replication_factor": 1}}), "c")
    return name, str(path), catalog


def ends(settings, name) -> int:
    with KafkaGateway(settings) as gw:
        return sum(gw.offsets([(name, p) for p in range(12)], "latest").values())


def run(bootstrap, path, *args):
    return CliRunner().invoke(
        main, ["-b", bootstrap, "load-test", *args], env={"ECAP_CATALOG": path, "ECAP_ENV": "prod"}
    )


def test_user_events_at_the_guides_top_volume_with_margin(
    user_events, kafka_bootstrap, kafka_settings
):
    name, path, catalog = user_events
    before = ends(kafka_settings, name)
    res = run(kafka_bootstrap, path, name, "--rate", "200/s", "--duration", "5s", "-o", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["records_sent"] == 1000 and doc["records_acked"] == 1000 and doc["errors"] == 0
    assert ends(kafka_settings, name) - before == 1000
    assert doc["stopped"] == "duration"
    # figures reported consistently: 1,000 records over the seconds measured
    assert doc["records_per_second"] == pytest.approx(1000 / doc["seconds"], rel=0.01)
    assert 0 <= doc["latency_ms_p50"] <= doc["latency_ms_p99"] <= doc["latency_ms_max"]
    # and what it wrote satisfies the contract: schema and key discipline
    with KafkaGateway(kafka_settings) as gw:
        obs = sample_topic(gw, name, per_partition=50)
    contract = contracts_of(catalog).get("user-events")
    spec = catalog.get("user-events")
    assert schema_conformance(name, contract, obs.records, False, "WARN").passed
    assert key_discipline(name, spec.partition_key, obs.records, "WARN").passed


def test_a_hot_key_option_skews_the_keys(user_events, kafka_bootstrap, kafka_settings):
    name, path, _ = user_events
    res = run(
        kafka_bootstrap,
        path,
        name,
        "--rate",
        "500/s",
        "--duration",
        "1s",
        "--keys",
        "50",
        "--skew",
        "0.9",
        "-o",
        "json",
    )
    assert res.exit_code == 0, res.output
    with KafkaGateway(kafka_settings) as gw:
        obs = sample_topic(gw, name, per_partition=500)
    hot = sum(1 for r in obs.records if r.key == b"session_id-0")
    assert hot >= 400  # 90% of 500 records, give or take


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rate=st.one_of(
        st.sampled_from(["0/s", "-5/s", "nan", "inf/s", "lots", "1e9/s", ""]), st.text(max_size=10)
    ),
)
def test_bad_rates_are_refused_and_nothing_is_produced(
    user_events, kafka_bootstrap, kafka_settings, rate
):
    name, path, _ = user_events
    before = ends(kafka_settings, name)
    res = run(kafka_bootstrap, path, name, "--rate", rate, "--duration", "1s")
    assert "Traceback" not in res.output
    if res.exit_code == 0:  # a text that happens to be a sane rate
        return
    assert res.exit_code in (1, 2) and ("--rate" in res.output or "Error" in res.output)
    assert ends(kafka_settings, name) == before


def test_unknown_topic_and_bad_duration(user_events, kafka_bootstrap, kafka_settings):
    name, path, _ = user_events
    res = run(kafka_bootstrap, path, "not-in-catalog", "--duration", "1s")
    assert res.exit_code == 1 and "is not a catalog topic" in res.output
    res = run(kafka_bootstrap, path, name, "--duration", "-1s")
    assert res.exit_code == 1 and "--duration must be" in res.output
    res = run(kafka_bootstrap, path, name, "--duration", "2h")
    assert res.exit_code == 1 and "at most 1h" in res.output
