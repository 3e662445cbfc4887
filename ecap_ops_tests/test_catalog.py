"""The catalog: the guide's five topics exactly, overlays, and every malformed catalog
rejected with its YAML path."""

import textwrap

import pytest

from ecap_ops.catalog import load_catalog, parse_catalog
from ecap_ops.catalog.units import (
    format_duration_ms,
    format_size,
    parse_duration_ms,
    parse_size_bytes,
)
from ecap_ops.errors import CatalogInvalid

DAY = 86_400_000
MiB = 1024 * 1024


@pytest.mark.parametrize(
    "name, partitions, retention_days, compression, max_bytes, policy, key",
    [
        ("transactions", 6, 7, "lz4", 1 * MiB, "delete", "user_id"),
        ("user-events", 12, 3, "lz4", 512 * 1024, "delete", "session_id"),
        ("product-updates", 3, 30, "gzip", 2 * MiB, "compact", "product_id"),
        ("fraud-alerts", 2, 90, "gzip", 1 * MiB, "delete", "user_id"),
        ("analytics-results", 4, 14, "gzip", 10 * MiB, "delete", "metric_type"),
    ],
)
def test_shipped_catalog_declares_the_guides_topics(
    name, partitions, retention_days, compression, max_bytes, policy, key
):
    spec = load_catalog(env="dev").get(name)
    assert spec is not None
    assert spec.partitions == partitions
    assert spec.replication_factor == 1
    assert spec.configs["retention.ms"] == str(retention_days * DAY)
    assert spec.configs["compression.type"] == compression
    assert spec.configs["max.message.bytes"] == str(max_bytes)
    assert spec.configs["cleanup.policy"] == policy
    assert spec.partition_key == key
    assert spec.purpose
    assert (
        spec.expected_volume is not None
        and spec.expected_volume.max_per_hour > spec.expected_volume.min_per_hour
    )
    assert "min.insync.replicas" not in spec.configs  # the broker's default in dev


def test_shipped_catalog_has_exactly_five_topics():
    assert load_catalog(env="dev").names() == [
        "transactions",
        "user-events",
        "product-updates",
        "fraud-alerts",
        "analytics-results",
    ]


def test_compacted_topic_keeps_its_retention_but_says_it_deletes_nothing():
    spec = load_catalog(env="dev").get("product-updates")
    assert spec.compacted and not spec.retention_deletes
    assert spec.retention_ms == 30 * DAY


def test_prod_overlay_sets_replication_three_and_min_isr_two():
    cat = load_catalog(env="prod")
    for spec in cat.topics:
        assert spec.replication_factor == 3
        assert spec.configs["min.insync.replicas"] == "2"


def test_env_is_taken_from_ECAP_ENV(monkeypatch):
    monkeypatch.setenv("ECAP_ENV", "prod")
    assert load_catalog().env == "prod"


def test_lag_thresholds_come_from_the_catalog_with_defaults_elsewhere():
    cat = load_catalog(env="dev")
    assert (
        cat.lag_for("fraud-alerts").warn_msgs == 10 and cat.lag_for("fraud-alerts").critical_at_once
    )
    assert cat.lag_for("transactions").stall_after_seconds == 120
    assert cat.lag_for("some-other-topic") == cat.lag_defaults


def test_name_prefix_applies_to_cluster_names():
    text = textwrap.dedent(
        """
        environments:
          prod: {replication_factor: 1, name_prefix: "prod."}
        topics:
          orders: {partitions: 2, retention: 1d}
        """
    )
    cat = parse_catalog(text, env="prod")
    assert cat.names() == ["prod.orders"]
    assert cat.get("orders").name == "prod.orders"


@pytest.mark.parametrize(
    "text, value",
    [
        ("7d", 7 * DAY),
        ("12h", 12 * 3_600_000),
        ("30m", 1_800_000),
        ("45s", 45_000),
        ("250ms", 250),
        ("infinite", -1),
        (604800000, 604800000),
        ("1.5h", 5_400_000),
    ],
)
def test_durations(text, value):
    assert parse_duration_ms(text) == value


@pytest.mark.parametrize("text", ["7 days", "d7", "", "1.5ms", True, -5, "seven"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration_ms(text)


@pytest.mark.parametrize(
    "text, value",
    [
        ("1MiB", MiB),
        ("512KiB", 524288),
        ("10MiB", 10 * MiB),
        ("1MB", 1_000_000),
        ("2 GiB", 2 * 1024**3),
        (100, 100),
        ("-1", -1),
        ("infinite", -1),
        (" Forever ", -1),
        (-1, -1),
    ],
)
def test_sizes(text, value):
    assert parse_size_bytes(text) == value


@pytest.mark.parametrize("text", ["1 megabyte", "MiB", "1.5B", False, "1XB"])
def test_bad_sizes(text):
    with pytest.raises(ValueError):
        parse_size_bytes(text)


def test_formatting_round_trips_people_read():
    assert format_duration_ms(7 * DAY) == "7d"
    assert format_duration_ms(-1) == "infinite"
    assert format_duration_ms(90_061_000) == "1d 1h 1m 1s"
    assert format_size(MiB) == "1 MiB"
    assert format_size(1536) == "1.5 KiB"


GOOD_TOPIC = "partitions: 3\n    retention: 7d\n    compression: lz4"

# (label, catalog YAML, the path every error message must name, a word it must contain)
MALFORMED = [
    ("broken yaml", "topics:\n  orders: {partitions: 3\n", "(YAML, line 3", "expected ','"),
    ("not a mapping", "- just\n- a list\n", "(top)", "mapping"),
    ("no topics", "version: 1\n", "topics", "non-empty"),
    (
        "unknown top key",
        "topicz: {}\ntopics:\n  orders: {partitions: 1}\n",
        "topicz",
        "unknown key",
    ),
    (
        "misspelt topic key",
        "topics:\n  orders:\n    partitons: 3\n",
        "topics.orders.partitons",
        "did you mean 'partitions'",
    ),
    (
        "zero partitions",
        "topics:\n  orders: {partitions: 0}\n",
        "topics.orders.partitions",
        "must be >= 1, got 0",
    ),
    (
        "negative partitions",
        "topics:\n  orders: {partitions: -4}\n",
        "topics.orders.partitions",
        "must be >= 1",
    ),
    (
        "partitions not a number",
        "topics:\n  orders: {partitions: many}\n",
        "topics.orders.partitions",
        "whole number",
    ),
    (
        "missing partitions",
        "topics:\n  orders: {retention: 1d}\n",
        "topics.orders.partitions",
        "required",
    ),
    (
        "bad duration",
        "topics:\n  orders: {partitions: 1, retention: 7 days}\n",
        "topics.orders.retention",
        "cannot read duration",
    ),
    (
        "bad size",
        "topics:\n  orders: {partitions: 1, max_message_size: 1 megabyte}\n",
        "topics.orders.max_message_size",
        "cannot read size",
    ),
    (
        "bad compression",
        "topics:\n  orders: {partitions: 1, compression: brotli}\n",
        "topics.orders.compression",
        "not allowed",
    ),
    (
        "bad cleanup policy",
        "topics:\n  orders: {partitions: 1, cleanup_policy: compacted}\n",
        "topics.orders.cleanup_policy",
        "not allowed",
    ),
    (
        "unknown kafka config",
        "topics:\n  orders:\n    partitions: 1\n    configs: {retention.msec: 5}\n",
        "topics.orders.configs.retention.msec",
        "unknown Kafka topic config",
    ),
    (
        "badly typed kafka config",
        "topics:\n  orders:\n    partitions: 1\n    configs: {segment.ms: soon}\n",
        "topics.orders.configs.segment.ms",
        "whole number",
    ),
    (
        "config given twice",
        "topics:\n  orders:\n    partitions: 1\n    retention: 1d\n    configs: {retention.ms: 5}\n",
        "topics.orders.configs.retention.ms",
        "set twice",
    ),
    (
        "min isr above replication",
        "topics:\n  orders:\n    partitions: 1\n    configs: {min.insync.replicas: 2}\n",
        "topics.orders.configs.min.insync.replicas",
        "above the replication factor",
    ),
    (
        "prod min isr above its replication",
        "environments:\n  dev: {replication_factor: 1}\n  prod: {replication_factor: 1, min_insync_replicas: 2}\ntopics:\n  orders: {partitions: 1}\n",
        "environments.prod.min_insync_replicas",
        "above the replication factor",
    ),
    (
        "duplicate topic",
        "topics:\n  orders: {partitions: 1}\n  orders: {partitions: 2}\n",
        "(YAML)",
        "duplicate key 'orders' at line 3",
    ),
    (
        "invalid topic name",
        "topics:\n  'orders!': {partitions: 1}\n",
        "topics.orders!",
        "invalid topic name",
    ),
    (
        "internal topic name",
        "topics:\n  __orders: {partitions: 1}\n",
        "topics.__orders",
        "reserved",
    ),
    (
        "colliding names",
        "topics:\n  user.events: {partitions: 1}\n  user_events: {partitions: 1}\n",
        "topics.user_events",
        "collides",
    ),
    (
        "too long name",
        "topics:\n  " + "x" * 250 + ": {partitions: 1}\n",
        "topics." + "x" * 250,
        "at most 249",
    ),
    (
        "unknown environment",
        "environments:\n  dev: {}\n  stage: {replication_factor: 0}\ntopics:\n  orders: {partitions: 1}\n",
        "environments.stage.replication_factor",
        "must be >= 1",
    ),
    (
        "lag crit below warn",
        "topics:\n  orders:\n    partitions: 1\n    lag: {warn_seconds: 60, crit_seconds: 30}\n",
        "topics.orders.lag.crit_seconds",
        "must be >= warn_seconds",
    ),
    (
        "unsupported version",
        "version: 7\ntopics:\n  orders: {partitions: 1}\n",
        "version",
        "unsupported catalog version",
    ),
    (
        "bad expected volume",
        "topics:\n  orders:\n    partitions: 1\n    expected_volume: {min_per_hour: 10, max_per_hour: 5}\n",
        "topics.orders.expected_volume",
        "below min_per_hour",
    ),
]


@pytest.mark.parametrize("label, text, path, word", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_catalog_is_rejected_naming_the_field(label, text, path, word):
    with pytest.raises(CatalogInvalid) as info:
        parse_catalog(text, env="dev")
    message = str(info.value)
    assert any(e.startswith(path) for e in info.value.errors), message
    assert word in message, message


def test_every_error_is_reported_at_once():
    text = "topics:\n  a: {partitions: 0}\n  b: {partitions: 1, retention: soon}\n  c: {partitions: 1, compression: zip}\n"
    with pytest.raises(CatalogInvalid) as info:
        parse_catalog(text, env="dev")
    assert len(info.value.errors) == 3
    assert [e.split(":")[0] for e in info.value.errors] == [
        "topics.a.partitions",
        "topics.b.retention",
        "topics.c.compression",
    ]


def test_unknown_env_is_named():
    with pytest.raises(CatalogInvalid, match="ECAP_ENV: 'staging' is not an environment"):
        load_catalog(env="staging")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CatalogInvalid, match="does not exist"):
        load_catalog(tmp_path / "nope.yaml")
