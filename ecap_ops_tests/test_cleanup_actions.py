"""The cleanup service's words for what a run does with each topic, and its idle-window rule:
the one vocabulary the CLI's table and the Dagster job's metadata show. Pure: no broker."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecap_ops.core.cleanup import ACTIVE, CANDIDATE, IDLE, KEPT, Decision
from ecap_ops.services.cleanup import CleanupResult, idle_window_ms


def _decision(topic: str, status: str, delete: bool = False) -> Decision:
    return Decision(topic, "test-*", status, delete, ("why",), {})


@pytest.mark.parametrize(
    ("status", "delete", "expected"),
    [
        (KEPT, False, "keep"),
        (ACTIVE, False, "keep (active)"),
        (CANDIDATE, False, "candidate"),
        (IDLE, True, "delete"),
        (IDLE, False, "idle (over budget)"),
    ],
)
def test_action_follows_the_decision_when_nothing_happened_to_the_topic(status, delete, expected):
    d = _decision("test-a", status, delete)
    assert CleanupResult(dry_run=True, decisions=[d]).action(d) == expected


def test_what_happened_at_the_delete_overrides_the_decision():
    d = _decision("test-a", IDLE, True)
    deleted = CleanupResult(dry_run=False, decisions=[d], deleted=["test-a"])
    skipped = CleanupResult(dry_run=False, decisions=[d], skipped={"test-a": "moved"})
    failed = CleanupResult(dry_run=False, decisions=[d], failed={"test-a": "refused"})
    assert deleted.action(d) == "deleted"
    assert skipped.action(d) == "kept at last check"
    assert failed.action(d) == "FAILED"
    # Another topic's fate does not leak.
    other = _decision("test-b", IDLE, True)
    assert deleted.action(other) == "delete"


def test_an_unknown_status_is_shown_as_it_is():
    d = _decision("test-a", "something-new")
    assert CleanupResult(dry_run=True, decisions=[d]).action(d) == "something-new"


@pytest.mark.parametrize(("text", "ms"), [("2s", 2000), ("7d", 604_800_000), ("0s", 0)])
def test_idle_window_reads_the_catalog_units(text, ms):
    assert idle_window_ms(text) == ms


@pytest.mark.parametrize("text", ["infinite", "-1", " INFINITE "])
def test_an_infinite_idle_window_is_refused_saying_why(text):
    with pytest.raises(ValueError, match="infinite idle window would never confirm"):
        idle_window_ms(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text_is_a_window_or_a_value_error_that_stays_short(text):
    try:
        ms = idle_window_ms(text)
    except ValueError as exc:
        message = str(exc)
        assert message
        # The offending value is shown by a short prefix only.
        assert len(message) < 200
        return
    assert isinstance(ms, int) and ms >= 0
