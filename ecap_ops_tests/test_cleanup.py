"""Test-topic cleanup: the pure decision rules, then a real broker seeded with idle test
topics (old CreateTime records), a recently written one, one a consumer group committed
to, a catalog topic, an internal topic, a protected topic and a name matching no pattern:
the dry run lists exactly the candidates with reasons; --execute deletes exactly those,
within the budget, after writing their snapshots; everything else still exists."""

import dataclasses
import json
import time
import uuid

import dagster as dg
import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, KafkaProducer

from ecap_ops.catalog import load_catalog
from ecap_ops.cli import main
from ecap_ops.core.cleanup import (
    DAY_MS,
    CleanupRules,
    GroupEvidence,
    TopicEvidence,
    decide,
    matching_pattern,
)
from ecap_ops.errors import ConfigError
from ecap_ops.gateway import KafkaGateway
from ecap_ops.services.cleanup import cleanup_test_topics
from ecap_ops_tests.helpers import kafka_tool

NOW = 1_790_000_000_000


def _t(name, newest_days_ago=10.0, **kw) -> TopicEvidence:
    base = dict(
        name=name,
        internal=False,
        in_catalog=False,
        partitions=1,
        replication_factor=1,
        bytes_on_disk=100,
        records=1,
        newest_record_ms=None if newest_days_ago is None else NOW - int(newest_days_ago * DAY_MS),
    )
    base.update(kw)
    return TopicEvidence(**base)


# ---- pure rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, match",
    [
        ("test-a", "test-*"),
        ("tmp-x", "tmp-*"),
        ("load-test", "*-test"),
        ("testing", None),
        ("a.test-b", None),
        ("TEST-a", None),
    ],
)
def test_patterns_are_globs_over_the_exact_name(name, match):
    assert matching_pattern(name, ("test-*", "tmp-*", "*-test")) == match


@pytest.mark.parametrize(
    "topic, reason",
    [
        (_t("test-int", internal=True), "internal topic"),
        (_t("test-cat", in_catalog=True), "in the catalog"),
        (_t("test-prot"), "on the protected list"),
        (_t("test-recent", newest_days_ago=1), "within the idle period"),
        (_t("test-future", newest_days_ago=-1), "in the future"),
        (_t("test-empty", newest_days_ago=None, records=0), "holds no record"),
        (
            _t("test-grp", groups=(GroupEvidence("g", "Empty", 0, {0: 5}),)),
            "group g has committed offsets",
        ),
        (_t("test-live", groups=(GroupEvidence("g", "Stable", 2),)), "group g has 2 member(s)"),
        (_t("test-off", offline_partitions=1), "offline"),
    ],
)
def test_each_safety_rule_keeps_a_topic_with_its_reason(topic, reason):
    (d,) = decide([topic], CleanupRules(protected=frozenset({"test-prot"})), NOW)
    assert not d.candidate and not d.delete
    assert any(reason in r for r in d.reasons), d.reasons


def test_budget_takes_the_longest_idle_first_and_unmatched_names_are_not_mentioned():
    topics = [_t("test-a", 8), _t("test-b", 30), _t("test-c", 20), _t("keep-me", 100)]
    ds = {d.topic: d for d in decide(topics, CleanupRules(max_deletions=2), NOW)}
    assert set(ds) == {"test-a", "test-b", "test-c"}
    assert [t for t, d in ds.items() if d.delete] == ["test-b", "test-c"]
    assert ds["test-a"].candidate and any("budget of 2" in r for r in ds["test-a"].reasons)
    assert ds["test-b"].evidence["idle"] and ds["test-b"].evidence["size"] == "100 B"


def test_empty_topics_go_only_when_asked():
    t = _t("test-e", newest_days_ago=None, records=0)
    assert decide([t], CleanupRules(delete_empty=True), NOW)[0].delete


@pytest.mark.parametrize(
    "rules",
    [
        CleanupRules(patterns=("*",)),
        CleanupRules(patterns=()),
        CleanupRules(idle_days=-1),
        CleanupRules(max_deletions=-1),
    ],
)
def test_bad_rules_are_refused_before_reading_anything(rules):
    with pytest.raises(ConfigError) as exc:
        cleanup_test_topics(None, load_catalog(env="dev"), rules)  # type: ignore[arg-type]
    assert "cleanup rules are invalid" in str(exc.value)


# ---- the real broker ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded(kafka_settings):
    """Topics named for this run so the shared broker's other topics never match."""
    run = uuid.uuid4().hex[:6]
    names = {
        "idle1": f"test-{run}-idle1",
        "idle2": f"tmp-{run}-idle2",
        "idle3": f"old-{run}-test",
        "recent": f"test-{run}-recent",
        "grouped": f"test-{run}-grouped",
        "catalog": f"test-{run}-catalog",
        "protected": f"test-{run}-protected",
        "nomatch": f"keep-{run}-idle",
    }
    patterns = (f"test-{run}-*", f"tmp-{run}-*", f"*-{run}-test", "__consumer_offset*")
    base = load_catalog(env="dev")
    catalog = dataclasses.replace(
        base, topics=(dataclasses.replace(base.get("transactions"), name=names["catalog"]),)
    )
    month = str(30 * DAY_MS)  # long retention: the old records must not expire mid-test
    with KafkaGateway(kafka_settings) as gw:
        gw.require(
            gw.create_topics(
                {
                    n: {
                        "num_partitions": 2,
                        "replication_factor": 1,
                        "configs": {"retention.ms": month},
                    }
                    for n in names.values()
                }
            ),
            "seeding",
        )
    old = int(time.time() * 1000) - 10 * DAY_MS
    producer = KafkaProducer(acks="all", **kafka_settings.client_kwargs())
    for key, name in names.items():
        ts = None if key == "recent" else old
        for i in range(5):
            producer.send(name, key=f"k{i}".encode(), value=b"x" * 50, timestamp_ms=ts)
    producer.flush(15)
    producer.close()
    group = f"grp-{run}"
    consumer = KafkaConsumer(
        names["grouped"],
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **kafka_settings.client_kwargs(),
    )
    got = 0
    deadline = time.monotonic() + 30
    while got < 5 and time.monotonic() < deadline:
        got += sum(len(b) for b in consumer.poll(500).values())
    consumer.commit()
    consumer.close()
    assert got == 5
    rules = CleanupRules(
        patterns=patterns, idle_days=7, max_deletions=2, protected=frozenset({names["protected"]})
    )
    return names, rules, catalog, group


def _existing(settings) -> set[str]:
    out = kafka_tool(settings, "kafka-topics", "--list")
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


@pytest.mark.kafka
def test_dry_run_lists_exactly_the_candidates_with_reasons_and_deletes_nothing(
    seeded, kafka_settings
):
    names, rules, catalog, group = seeded
    with KafkaGateway(kafka_settings) as gw:
        result = cleanup_test_topics(gw, catalog, rules, execute=False)
    ds = {d.topic: d for d in result.decisions}
    assert names["nomatch"] not in ds
    assert {t for t, d in ds.items() if d.candidate} == {
        names["idle1"],
        names["idle2"],
        names["idle3"],
    }
    assert len(result.to_delete) == 2 and not result.deleted
    for key, reason in [
        ("recent", "within the idle period"),
        ("grouped", f"group {group} has committed offsets"),
        ("catalog", "in the catalog"),
        ("protected", "on the protected list"),
    ]:
        assert any(reason in r for r in ds[names[key]].reasons), (key, ds[names[key]].reasons)
    assert any("internal topic" in r for r in ds["__consumer_offsets"].reasons)
    grouped = ds[names["grouped"]].evidence["groups"]
    assert (
        grouped[0]["group"] == group
        and sum(grouped[0]["committed"].values()) == 5
        and grouped[0]["lag"] == 0
    )
    idle = ds[names["idle1"]].evidence
    assert idle["records"] == 5 and idle["bytes_on_disk"] > 0 and "10d" in idle["idle"]
    assert set(names.values()) <= _existing(kafka_settings)


@pytest.mark.kafka
def test_dagster_job_dry_run_by_default(seeded, kafka_bootstrap):
    from ecap_ops.orchestration import cleanup
    from ecap_ops.orchestration.resources import KafkaResource

    names, rules, catalog, _group = seeded
    defs = dg.Definitions.merge(
        cleanup.build_defs(catalog),
        dg.Definitions(resources={"kafka": KafkaResource(bootstrap_servers=kafka_bootstrap)}),
    )
    result = defs.get_job_def("cleanup_test_topics").execute_in_process(
        run_config={
            "ops": {
                "cleanup_idle_test_topics": {
                    "config": {
                        "patterns": list(rules.patterns),
                        "max_deletions": 2,
                        "protected": [names["protected"]],
                    }
                }
            }
        }
    )
    assert result.success
    out = result.output_for_node("cleanup_idle_test_topics")
    assert out["dry_run"] and not out["deleted"] and len(out["to_delete"]) == 2


@pytest.mark.kafka
def test_execute_deletes_exactly_the_chosen_within_budget_after_snapshots(
    seeded, kafka_bootstrap, kafka_settings, tmp_path, monkeypatch
):
    names, rules, _catalog, _group = seeded
    monkeypatch.setenv("ECAP_PROTECTED_TOPICS", names["protected"])
    cat_path = tmp_path / "catalog.yaml"
    import yaml

    from ecap_ops.catalog import default_catalog_path

    data = yaml.safe_load(default_catalog_path().read_text())
    tx = data["topics"].pop("transactions")
    data["topics"] = {names["catalog"]: tx}
    cat_path.write_text(yaml.safe_dump(data))
    args = [
        "-b",
        kafka_bootstrap,
        "--catalog",
        str(cat_path),
        "--env",
        "dev",
        "cleanup-test-topics",
        "--max-deletions",
        "2",
        "--snapshot-dir",
        str(tmp_path / "snaps"),
        "--output",
        "json",
    ]
    for p in rules.patterns:
        args += ["--pattern", p]
    res = CliRunner().invoke(main, args + ["--execute"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert len(doc["deleted"]) == 2 and set(doc["deleted"]) <= {
        names["idle1"],
        names["idle2"],
        names["idle3"],
    }
    for topic in doc["deleted"]:
        snap = json.loads(open(doc["snapshots"][topic]).read())
        assert snap["topic"] == topic and snap["topic_id"] and len(snap["partitions"]) == 2
        assert sum(p["end_offset"] for p in snap["partitions"]) == 5 and snap["overrides"][
            "retention.ms"
        ] == str(30 * DAY_MS)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and set(doc["deleted"]) & _existing(kafka_settings):
        time.sleep(0.5)
    left = _existing(kafka_settings)
    assert not set(doc["deleted"]) & left
    assert set(names.values()) - set(doc["deleted"]) <= left
    # The next run takes the third idle topic: the budget defers, never drops.
    res = CliRunner().invoke(main, args + ["--execute"], catch_exceptions=False)
    doc2 = json.loads(res.output)
    assert doc2["deleted"] == sorted(
        {names["idle1"], names["idle2"], names["idle3"]} - set(doc["deleted"])
    )
