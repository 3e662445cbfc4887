"""The retention audit's rules (core/retention.py) one by one, and the report model
(core/retention_model.py). Pure: no broker. (test_retention.py holds the audit's original
rule tests and the real-broker audit; test_retention_service.py the aged-data audit.)"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecap_ops.catalog import load_catalog
from ecap_ops.core.retention import (
    DAY_MS,
    DEFAULT_CHECK_INTERVAL_MS,
    DefaultPolicy,
    TopicObservation,
    audit,
    audit_topic,
    stale_grace_ms,
)

NOW = 1_790_000_000_000
CATALOG = load_catalog(env="dev").select([])


def _obs(name="scratch", configs=None, **kw) -> TopicObservation:
    return TopicObservation(name, 1, 1, configs or {}, **kw)


def test_the_grace_is_retention_plus_segment_plus_audit_interval_plus_broker_check():
    assert stale_grace_ms(2_000, 60_000, 1_000, 300_000) == 363_000


@pytest.mark.parametrize(
    "check_ms, stale",
    [(DEFAULT_CHECK_INTERVAL_MS, False), (1_000, True)],
)
def test_the_brokers_own_check_interval_sets_the_grace(check_ms, stale):
    # 2 s retention, 1 min segments, 1 min audit interval: 4 min old records are past
    # retention; only a broker that looks every second should have deleted them by now.
    obs = _obs(configs={"retention.ms": "2000", "segment.ms": "60000"}, oldest_ms=NOW - 4 * 60_000)
    report = audit([obs], CATALOG, NOW, 60_000, check_interval_ms=check_ms)
    assert report.rows[0].data_older_than_retention is stale
    row = audit_topic(obs, None, NOW, 60_000, check_interval_ms=check_ms)
    assert row.data_older_than_retention is stale and row.oldest_age_ms == 4 * 60_000


@pytest.mark.parametrize(
    "configs, flagged",
    [
        ({"cleanup.policy": "compact"}, False),  # compacted: keeps the latest however old
        ({"cleanup.policy": "compact,delete", "retention.ms": "2000"}, True),
        ({"retention.ms": "-1", "retention.bytes": "1000"}, False),  # no time limit
    ],
)
def test_only_deleting_topics_with_a_time_limit_have_data_older_than_retention(configs, flagged):
    obs = _obs(configs={"segment.ms": "1000", **configs}, oldest_ms=NOW - 30 * DAY_MS)
    row = audit_topic(obs, None, NOW, 0, check_interval_ms=0)
    assert row.data_older_than_retention is flagged


@given(
    retention=st.one_of(st.integers(-1, 10 * DAY_MS), st.text(max_size=8)),
    segment=st.one_of(st.integers(0, 10 * DAY_MS), st.text(max_size=8)),
    policy=st.sampled_from(["delete", "compact", "compact,delete", "", "bogus"]),
    age=st.one_of(st.none(), st.integers(-DAY_MS, 40 * DAY_MS)),
    check_ms=st.integers(0, DAY_MS),
)
@settings(max_examples=150, deadline=None)
def test_any_settings_give_a_row_and_stale_means_past_the_grace(
    retention, segment, policy, age, check_ms
):
    configs = {"retention.ms": str(retention), "segment.ms": str(segment), "cleanup.policy": policy}
    obs = _obs(configs=configs, oldest_ms=None if age is None else NOW - age)
    row = audit_topic(obs, None, NOW, DAY_MS, DefaultPolicy(), check_ms)
    assert row.status == ("warn" if row.flags else "ok")
    if row.data_older_than_retention:
        assert "delete" in row.cleanup_policy and row.retention_ms >= 0
        assert age > stale_grace_ms(row.retention_ms, row.segment_ms, DAY_MS, check_ms)
    assert row.as_record()["flags"] == "; ".join(row.flags)


def test_the_report_lists_flagged_topics_and_converts_to_json_data():
    rows = [
        _obs("fine", {"retention.ms": str(DAY_MS)}),
        _obs("forever", {"retention.ms": "-1", "retention.bytes": "-1"}),
    ]
    report = audit(rows, CATALOG, NOW)
    assert [r.topic for r in report.flagged] == ["forever"]
    d = report.to_dict()
    assert d["flagged"] == ["forever"] and [r["topic"] for r in d["rows"]] == ["fine", "forever"]
