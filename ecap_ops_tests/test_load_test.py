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


# -- --profile guide: every topic at the guide's volume, at once ------------------------------


@pytest.fixture(scope="module")
def guide_topics(kafka_settings, tmp_path_factory):
    """The shipped catalog's five topics under a prefix of their own (prod overlay, rf 1),
    created with the catalog's partition counts."""
    from ecap_ops_tests.helpers import topic_name

    prefix = topic_name("guide") + "."
    folder = tmp_path_factory.mktemp("guide")
    text = open(load_catalog().source).read()
    text = text.replace(
        '    replication_factor: 3\n    min_insync_replicas: 2\n    name_prefix: ""',
        f'    replication_factor: 1\n    min_insync_replicas: 1\n    name_prefix: "{prefix}"',
    )
    path = folder / "topics.yaml"
    path.write_text(text)
    catalog = load_catalog(path, env="prod")
    assert all(t.name.startswith(prefix) for t in catalog.topics)
    with KafkaGateway(kafka_settings) as gw:
        gw.require(
            gw.create_topics(
                {
                    t.name: {"num_partitions": t.partitions, "replication_factor": 1}
                    for t in catalog.topics
                }
            ),
            "c",
        )
    return catalog, str(path)


def topic_ends(settings, catalog) -> dict[str, int]:
    with KafkaGateway(settings) as gw:
        got = gw.offsets(
            [(t.name, p) for t in catalog.topics for p in range(t.partitions)], "latest"
        )
    return {t.name: sum(v for (n, _p), v in got.items() if n == t.name) for t in catalog.topics}


# The setup guide's bands, written out here (not read from the catalog): records per hour.
GUIDE_TOP = {
    "transactions": 50_000,
    "user-events": 500_000,
    "product-updates": 10_000,
    "fraud-alerts": 1_000,
    "analytics-results": 5_000,
}
GUIDE_BOTTOM = {
    "transactions": 10_000,
    "user-events": 100_000,
    "product-updates": 1_000,
    "fraud-alerts": 100,
    "analytics-results": 500,
}


def test_guide_profile_drives_all_five_topics_at_their_volumes_and_reports_each(
    guide_topics, kafka_bootstrap, kafka_settings
):
    catalog, path = guide_topics
    before = topic_ends(kafka_settings, catalog)
    res = run(kafka_bootstrap, path, "--profile", "guide", "--duration", "6s", "-o", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    after = topic_ends(kafka_settings, catalog)
    assert doc["profile"] == "guide" and doc["level"] == "top" and doc["duration_s"] == 6.0
    by_topic = {t["topic"]: t for t in doc["topics"]}
    assert set(by_topic) == {t.name for t in catalog.topics}
    for t in catalog.topics:
        want = max(1, GUIDE_TOP[t.key] * 6 // 3600)  # 500,000/hour for 6 s: 833 records
        got = by_topic[t.name]
        assert got["records_sent"] == got["records_acked"] == want, (t.key, got)
        assert after[t.name] - before[t.name] == want, t.key
        assert got["rate_asked"] == pytest.approx(GUIDE_TOP[t.key] / 3600)
        assert got["records_per_hour_asked"] == GUIDE_TOP[t.key]
        assert got["errors"] == 0 and got["stopped"] == "duration"
        assert 0 <= got["latency_ms_p50"] <= got["latency_ms_p99"] <= got["latency_ms_max"]
    total = doc["total"]
    assert total["topics"] == 5
    assert (
        total["records_sent"] == total["records_acked"] == sum(after[n] - before[n] for n in after)
    )
    assert total["records_per_hour_asked"] == sum(GUIDE_TOP.values())
    assert total["bytes_sent"] == sum(t["bytes_sent"] for t in doc["topics"])
    assert total["records_per_second"] == pytest.approx(
        total["records_acked"] / total["seconds"], rel=0.01
    )
    assert total["latency_ms_max"] == max(t["latency_ms_max"] for t in doc["topics"])
    # the five ran at the same time: user-events' records span the run, as the others' do
    assert all(t["seconds"] <= total["seconds"] + 0.001 for t in doc["topics"])
    # what it wrote satisfies each topic's contract
    with KafkaGateway(kafka_settings) as gw:
        for t in catalog.topics:
            obs = sample_topic(gw, t.name, per_partition=20)
            assert schema_conformance(
                t.name, catalog.contracts.get(t.key), obs.records, False, "WARN"
            ).passed, t.key
            assert key_discipline(t.name, t.partition_key, obs.records, "WARN").passed, t.key


def test_guide_profile_at_the_bottom_of_the_bands_as_a_table(
    guide_topics, kafka_bootstrap, kafka_settings
):
    catalog, path = guide_topics
    before = topic_ends(kafka_settings, catalog)
    res = run(kafka_bootstrap, path, "--profile", "guide", "--level", "bottom", "--duration", "3s")
    assert res.exit_code == 0, res.output
    after = topic_ends(kafka_settings, catalog)
    for t in catalog.topics:
        assert after[t.name] - before[t.name] == max(1, GUIDE_BOTTOM[t.key] * 3 // 3600), t.key
    assert "5 topic(s) at the bottom of their expected volume for 3s" in res.output
    lines = res.output.splitlines()
    for t in catalog.topics:
        row = next(line for line in lines if line.startswith(t.name + " "))
        assert f"{GUIDE_BOTTOM[t.key]:,}" in row
    total = next(line for line in lines if line.startswith("total "))
    assert f"{sum(GUIDE_BOTTOM.values()):,}" in total
    assert f"{sum(after.values()) - sum(before.values()):,}/" in total


@pytest.mark.parametrize(
    "args, message",
    [
        (["TOPIC", "--profile", "guide"], "drop TOPIC"),
        (["--profile", "guide", "--rate", "10/s"], "drop --rate"),
        ([], "name a TOPIC"),
        (["--profile", "guide", "--duration", "0s"], "--duration must be"),
        (["--profile", "guide", "--duration", "1s", "--keys", "0"], "--keys must be"),
        (["--profile", "guide", "--duration", "1s", "--keys", "10000000000"], "--keys must be"),
        (["--profile", "guide", "--duration", "1s", "--skew", "nan"], "--skew"),
        (["--profile", "other"], "'other' is not"),
        (["--profile", "guide", "--level", "max"], "'max' is not"),
    ],
)
def test_guide_profile_refusals_produce_nothing(
    guide_topics, kafka_bootstrap, kafka_settings, args, message
):
    catalog, path = guide_topics
    args = [catalog.get("transactions").name if a == "TOPIC" else a for a in args]
    before = topic_ends(kafka_settings, catalog)
    res = run(kafka_bootstrap, path, *args)
    assert res.exit_code in (1, 2) and message in res.output, res.output
    assert "Traceback" not in res.output
    assert topic_ends(kafka_settings, catalog) == before


def test_guide_profile_refuses_when_a_topic_is_missing(kafka_bootstrap, kafka_settings, tmp_path):
    from ecap_ops_tests.helpers import topic_name

    prefix = topic_name("guide-missing") + "."
    text = (
        open(load_catalog().source)
        .read()
        .replace(
            '    replication_factor: 3\n    min_insync_replicas: 2\n    name_prefix: ""',
            f'    replication_factor: 1\n    min_insync_replicas: 1\n    name_prefix: "{prefix}"',
        )
    )
    path = tmp_path / "topics.yaml"
    path.write_text(text)
    catalog = load_catalog(path, env="prod")
    one = catalog.get("transactions").name
    with KafkaGateway(kafka_settings) as gw:
        gw.require(gw.create_topics({one: {"num_partitions": 6, "replication_factor": 1}}), "c")
    res = run(kafka_bootstrap, str(path), "--profile", "guide", "--duration", "1s")
    assert res.exit_code == 1 and "do not exist on the cluster" in res.output, res.output
    assert prefix + "user-events" in res.output and "nothing was produced" in res.output
    with KafkaGateway(kafka_settings) as gw:
        assert sum(gw.offsets([(one, p) for p in range(6)], "latest").values()) == 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    duration=st.one_of(
        st.sampled_from(["-1s", "0s", "2h", "nan", "1e400s", "5 minutes", "", "10", "1h1ms"]),
        st.text(max_size=12),
    ),
    keys=st.one_of(st.just("1000"), st.sampled_from(["0", "-3", "x", "1e3", "99999999999"])),
)
def test_hostile_guide_durations_and_keys_are_refused_and_nothing_is_produced(
    guide_topics, kafka_bootstrap, kafka_settings, duration, keys
):
    catalog, path = guide_topics
    before = topic_ends(kafka_settings, catalog)
    res = run(kafka_bootstrap, path, "--profile", "guide", "--duration", duration, "--keys", keys)
    assert "Traceback" not in res.output
    if res.exit_code == 0:  # a text that happens to be a short, sane duration
        return
    assert res.exit_code in (1, 2), res.output
    assert "--duration" in res.output or "--keys" in res.output, res.output
    assert topic_ends(kafka_settings, catalog) == before
