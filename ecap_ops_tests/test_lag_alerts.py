"""core/lag_alerts.py: incident events as alerts, with the mark of how lag in seconds is known."""

from ecap_ops.core.lag_alerts import lag_alert
from ecap_ops.core.lag_model import IncidentEvent


def _event(kind="open", secs_kind="extrapolated"):
    return IncidentEvent(
        kind=kind,
        incident_id="lag:c:1-1",
        cluster_id="c",
        group="g",
        topic="t",
        status="LAGGING",
        severity="warning",
        at=200.0,
        since=100.0,
        lag_msgs=12400,
        lag_seconds=185.0,
        lag_seconds_kind=secs_kind,
    )


def test_the_estimate_mark_reaches_the_alert():
    alert = lag_alert(_event())
    assert "12,400 msgs / ~3m05s" in alert.title and alert.severity == "warning"
    assert ">=3m05s" in lag_alert(_event(secs_kind="at_least")).title
    # Interpolated is an estimate too; only a figure read from the record itself is unmarked.
    assert "12,400 msgs / ~3m05s" in lag_alert(_event(secs_kind="interpolated")).title
    exact = lag_alert(_event(secs_kind="exact"))
    assert "12,400 msgs / 3m05s" in exact.title
    assert _event().to_dict()["lag_seconds_kind"] == "extrapolated"
