"""Retention audit: the pure rules (grace before "older than retention", compaction,
infinite retention, catalog and default-policy comparison, disk forecast), then a real
broker: sizes agree with kafka-log-dirs, an out-of-band change and infinite retention are
flagged, the compacted topic is explained, and the asset's metadata holds the table."""

import dataclasses
import json

import dagster as dg
import pytest
import yaml
from kafka import KafkaProducer

from ecap_ops.catalog import default_catalog_path, load_catalog, parse_catalog
from ecap_ops.catalog.model import ExpectedVolume
from ecap_ops.core.retention import DAY_MS, TopicObservation, audit, audit_topic, forecast_disk
from ecap_ops.gateway import KafkaGateway
from ecap_ops.services.provisioning import apply_topics
from ecap_ops.services.retention import run_retention_audit
from ecap_ops_tests.helpers import kafka_tool, run_failures

NOW = 1_790_000_000_000
HOUR = 3_600_000
CATALOG = load_catalog(env="dev")
TX = CATALOG.get("transactions")
PU = CATALOG.get("product-updates")


def _obs(name="transactions", configs=None, overrides=(), **kw) -> TopicObservation:
    base = dict(
        name=name,
        partitions=6,
        replication_factor=1,
        configs=dict(TX.configs) if configs is None else configs,
        overrides=frozenset(overrides or (configs or TX.configs)),
    )
    base.update(kw)
    return TopicObservation(**base)


# ---- pure rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "age_ms, stale",
    [
        # retention 7d + segment.ms 7d (default) + interval 1d + check 5 min = the grace
        (7 * DAY_MS + 1, False),  # past retention, but Kafka may not have closed the segment yet
        (15 * DAY_MS, False),
        (15 * DAY_MS + 6 * 60_000, True),
        (30 * DAY_MS, True),
    ],
)
def test_data_counts_as_older_than_retention_only_beyond_retention_segment_and_interval(
    age_ms, stale
):
    row = audit_topic(_obs(oldest_ms=NOW - age_ms, records=10, bytes_on_disk=1000), TX, NOW, DAY_MS)
    assert row.data_older_than_retention is stale
    assert any("older than retention" in f for f in row.flags) is stale


def test_a_retention_changed_out_of_band_is_flagged_with_both_values():
    row = audit_topic(_obs(configs={**TX.configs, "retention.ms": str(HOUR)}), TX, NOW, DAY_MS)
    assert row.config_mismatch and row.status == "warn"
    assert any(
        "retention.ms is 3600000 (1h), the catalog says 604800000 (7d)" in f for f in row.flags
    )


def test_an_override_the_catalog_does_not_declare_is_flagged():
    row = audit_topic(
        _obs(
            configs={**TX.configs, "segment.ms": str(HOUR)},
            overrides=set(TX.configs) | {"segment.ms"},
        ),
        TX,
        NOW,
        DAY_MS,
    )
    assert any("segment.ms=3600000 set on the topic but not in the catalog" in f for f in row.flags)


def test_infinite_retention_is_flagged_but_a_byte_limit_is_not_infinite():
    inf = audit_topic(_obs("x", {"retention.ms": "-1", "retention.bytes": "-1"}), None, NOW, DAY_MS)
    assert inf.infinite_retention and any("infinite retention" in f for f in inf.flags)
    capped = audit_topic(
        _obs("x", {"retention.ms": "-1", "retention.bytes": str(1 << 30)}), None, NOW, DAY_MS
    )
    assert not capped.infinite_retention


def test_compacted_topic_is_explained_and_its_settings_checked():
    ok = audit_topic(
        _obs(
            "product-updates",
            dict(PU.configs),
            oldest_ms=NOW - 400 * DAY_MS,
            records=5,
            bytes_on_disk=500,
        ),
        PU,
        NOW,
        DAY_MS,
    )
    assert not ok.flags, ok.flags  # old data on a compacted topic is expected, not stale
    assert any("latest record of every key is kept" in n for n in ok.notes)
    bad = audit_topic(
        _obs(
            "product-updates",
            {**PU.configs, "min.cleanable.dirty.ratio": "0.99", "delete.retention.ms": "1000"},
        ),
        PU,
        NOW,
        DAY_MS,
    )
    assert any("dirty.ratio" in f for f in bad.flags) and any(
        "delete.retention.ms" in f for f in bad.flags
    )
    both = audit_topic(
        _obs("cd", {"cleanup.policy": "compact,delete", "retention.ms": str(DAY_MS)}),
        None,
        NOW,
        DAY_MS,
    )
    assert any("compact,delete" in n for n in both.notes)


@pytest.mark.parametrize(
    "configs, flagged",
    [
        ({"retention.ms": str(7 * DAY_MS)}, False),
        ({"retention.ms": str(90 * DAY_MS)}, True),  # above the default policy's 30 d
        ({"cleanup.policy": "compact"}, False),
    ],
)
def test_off_catalog_topics_are_held_to_the_default_policy(configs, flagged):
    row = audit_topic(_obs("scratch", configs), None, NOW, DAY_MS)
    assert bool(row.flags) is flagged and not row.managed


def test_forecast_grows_each_topic_until_its_retention_is_full():
    cat = dataclasses.replace(
        CATALOG,
        topics=(dataclasses.replace(TX, expected_volume=ExpectedVolume(0, 1000)),),
    )
    # 100 B records, 1000/h: 2.4 MB/day, 7 d retention: 16.8 MB steady state.
    obs = _obs(records=1000, bytes_on_disk=100_000)
    rows = [audit_topic(obs, cat.get("transactions"), NOW, DAY_MS)]
    assert rows[0].expected_bytes_at_retention == 16_800_000
    fits = forecast_disk(rows, cat, free_bytes=100_000_000, total_bytes=200_000_000)
    assert fits.fits and fits.days_until_full is None
    fills = forecast_disk(rows, cat, free_bytes=4_800_000, total_bytes=200_000_000)
    assert fills.days_until_full == pytest.approx(2.0)
    report = audit([obs, _obs("other", {})], cat, NOW, free_bytes=4_800_000)
    assert [r.topic for r in report.rows] == ["other", "transactions"]


# ---- the real broker ----------------------------------------------------------------------


def _prefixed(prefix: str):
    data = yaml.safe_load(default_catalog_path().read_text())
    data["environments"]["dev"]["name_prefix"] = prefix + "."
    return parse_catalog(yaml.safe_dump(data), env="dev")


def _log_dirs_sizes(settings, topics: list[str]) -> dict[str, int]:
    out = kafka_tool(settings, "kafka-log-dirs", "--describe", "--topic-list", ",".join(topics))
    assert out.returncode == 0, out.stderr
    doc = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))
    sizes: dict[str, int] = {}
    for broker in doc["brokers"]:
        for d in broker["logDirs"]:
            for p in d["partitions"]:
                topic = p["partition"].rsplit("-", 1)[0]
                sizes[topic] = sizes.get(topic, 0) + p["size"]
    return sizes


@pytest.fixture(scope="module")
def audited(kafka_settings, tmp_path_factory):
    """The prefixed catalog provisioned with data, one retention changed out of band, one
    unmanaged topic with infinite retention; then the audit."""
    from ecap_ops_tests.helpers import topic_name

    prefix = topic_name("ret")
    catalog = _prefixed(prefix)
    forever = f"{prefix}-forever"
    with KafkaGateway(kafka_settings) as gw:
        assert apply_topics(gw, catalog).ok
        gw.require(
            gw.create_topics(
                {
                    forever: {
                        "num_partitions": 1,
                        "replication_factor": 1,
                        "configs": {"retention.ms": "-1"},
                    }
                }
            ),
            "creating",
        )
    producer = KafkaProducer(acks="all", **kafka_settings.client_kwargs())
    for i in range(200):
        producer.send(
            f"{prefix}.transactions",
            key=f"u{i}".encode(),
            value=json.dumps({"user_id": f"u{i}", "amount": i}).encode(),
        )
        producer.send(f"{prefix}.product-updates", key=f"p{i % 20}".encode(), value=b'{"price": 1}')
    producer.send(forever, b"kept forever")
    producer.flush(15)
    producer.close()
    out = kafka_tool(
        kafka_settings,
        "kafka-configs",
        "--alter",
        "--entity-type",
        "topics",
        "--entity-name",
        f"{prefix}.transactions",
        "--add-config",
        "retention.ms=3600000",
    )
    assert out.returncode == 0, out.stderr
    with KafkaGateway(kafka_settings) as gw:
        report = run_retention_audit(gw, catalog)
    return prefix, catalog, report


@pytest.mark.kafka
def test_sizes_agree_with_kafka_log_dirs(audited, kafka_settings):
    prefix, _catalog, report = audited
    names = [f"{prefix}.transactions", f"{prefix}.product-updates", f"{prefix}-forever"]
    ours = {r.topic: r.bytes_on_disk for r in report.rows if r.topic in names}
    theirs = _log_dirs_sizes(kafka_settings, names)
    assert ours == theirs and ours[f"{prefix}.transactions"] > 0
    rows = {r.topic: r for r in report.rows}
    assert rows[f"{prefix}.transactions"].records == 200
    assert rows[f"{prefix}.transactions"].oldest_age_ms is not None


@pytest.mark.kafka
def test_out_of_band_retention_infinite_and_compacted_on_the_real_broker(audited):
    prefix, _catalog, report = audited
    rows = {r.topic: r for r in report.rows}
    tx = rows[f"{prefix}.transactions"]
    assert (
        tx.config_mismatch
        and tx.retention_ms == 3_600_000
        and tx.expected_retention_ms == 7 * DAY_MS
    )
    forever = rows[f"{prefix}-forever"]
    assert forever.infinite_retention and not forever.managed
    pu = rows[f"{prefix}.product-updates"]
    assert pu.cleanup_policy == "compact" and not pu.flags
    assert any("deletes nothing" in n for n in pu.notes)
    assert "ecap-ops-canary" not in rows
    f = report.forecast
    assert f.free_bytes and f.free_bytes > 0 and f.steady_state_bytes and f.steady_state_bytes > 0


@pytest.mark.kafka
def test_cli_and_asset_show_the_report(audited, kafka_bootstrap, tmp_path):
    from click.testing import CliRunner

    from ecap_ops.cli import main
    from ecap_ops.orchestration import audits
    from ecap_ops.orchestration.resources import KafkaResource

    prefix, catalog, _report = audited
    cat_path = tmp_path / "catalog.yaml"
    data = yaml.safe_load(default_catalog_path().read_text())
    data["environments"]["dev"]["name_prefix"] = prefix + "."
    cat_path.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(
        main,
        [
            "-b",
            kafka_bootstrap,
            "--catalog",
            str(cat_path),
            "--env",
            "dev",
            "retention-audit",
            "--output",
            "json",
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0
    doc = json.loads(res.output)
    assert f"{prefix}.transactions" in doc["flagged"] and doc["forecast"]["free_bytes"] > 0

    defs = audits.build_defs(catalog)
    asset = next(iter(defs.assets))
    result = dg.materialize(
        [asset],
        resources={"kafka": KafkaResource(bootstrap_servers=kafka_bootstrap)},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success, run_failures(result)
    mat = result.asset_materializations_for_node("retention_audit")[0]
    table = mat.metadata["report"]
    topics = {r.data["topic"]: r.data for r in table.records}
    assert topics[f"{prefix}.transactions"]["status"] == "WARN"
    assert "infinite retention" in topics[f"{prefix}-forever"]["flags"]
    assert mat.metadata["flagged_topics"].value >= 2
    df = result.output_for_node("retention_audit")
    assert f"{prefix}.transactions" in set(df["topic"])
