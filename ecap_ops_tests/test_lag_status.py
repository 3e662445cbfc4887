"""Lag statuses, severities, one-look statuses and the evaluation settings
(core/lag_status.py). Pure: no broker."""

import pytest

from ecap_ops.catalog.model import LagThresholds
from ecap_ops.core.lag_status import (
    HISTORY_STATUSES,
    ONE_LOOK_STATUSES,
    SEVERITY,
    STATUS_ORDER,
    EvalConfig,
    least_severe,
    one_look_note,
    severity_of,
    worst,
)


def test_every_status_has_a_severity_and_is_seen_in_one_look_or_with_history():
    assert set(SEVERITY) == set(STATUS_ORDER)
    assert set(ONE_LOOK_STATUSES) | set(HISTORY_STATUSES) >= set(STATUS_ORDER) - {"IDLE"} | {"IDLE"}
    note = one_look_note()
    assert "one observation" in note
    for s in ("STALLED", "REWIND", "LAGGING"):
        assert s in note


def test_worst_least_severe_and_critical_at_once():
    assert worst(["OK", "LAGGING", "IDLE"]) == "LAGGING" and worst([]) == "OK"
    assert least_severe(["STOPPED", "OK"]) == "OK"
    assert least_severe(["STOPPED", "STALLED"]) == "STALLED"  # equals: the last
    fraud = LagThresholds(30, 120, 10, 60, critical_at_once=True)
    assert severity_of("LAGGING", fraud) == "critical" and severity_of("LAGGING") == "warning"


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"window_size": 1}, "window_size"),
        ({"for_ticks": 0}, "for_ticks"),
        ({"worst_partitions": 0}, "worst_partitions"),
        ({"rebalance_grace_seconds": -1}, "rebalance_grace_seconds"),
        ({"rewind_grace_msgs": -5}, "rewind_grace_msgs"),
    ],
)
def test_bad_settings_name_the_setting(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        EvalConfig(**kwargs)
    assert EvalConfig().remind_after("critical") == 1800
