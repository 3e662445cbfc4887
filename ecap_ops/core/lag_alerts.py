"""Consumer-lag incident events as alerts people can act on. Pure."""

from datetime import UTC, datetime

from ecap_ops.core.alerts import Alert
from ecap_ops.core.lag_measures import describe_lag, format_seconds_short
from ecap_ops.core.lag_status import SEVERITY

_VERB = {
    "open": "opened",
    "escalate": "escalated",
    "remind": "still open",
    "resolve": "resolved",
    "close": "closed",
}


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def lag_alert(event: dict, run_url: str | None = None) -> Alert:
    """The alert for one incident event (`IncidentEvent.to_dict()` shape)."""
    kind = event["kind"]
    group, topic, status = event["group"], event["topic"], event["status"]
    lag = describe_lag(
        int(event.get("lag_msgs") or 0), event.get("lag_seconds"), event.get("lag_seconds_kind", "")
    )
    duration = max(0.0, float(event["at"]) - float(event["since"]))
    if kind == "resolve":
        severity = "resolved"
        title = f"consumer lag resolved: group {group} on {topic} is {status} again after {format_seconds_short(duration)}"
    else:
        severity = (
            event["severity"]
            if event["severity"] in ("info", "warning", "critical")
            else SEVERITY.get(status, "warning")
        )
        severity = "info" if severity == "ok" else severity
        label = f"reminder {event.get('reminder')}" if kind == "remind" else _VERB.get(kind, kind)
        title = f"consumer lag {label}: group {group} on {topic} is {status} ({lag})"
    lines = [
        f"group:    {group}",
        f"topic:    {topic}",
        f"status:   {status} ({event['severity']})",
        f"lag:      {lag}",
        f"since:    {_when(float(event['since']))} ({format_seconds_short(duration)} ago)",
    ]
    if kind == "resolve":
        peak = describe_lag(int(event.get("peak_msgs") or 0), event.get("peak_seconds"))
        lines[3] = f"lag now:  {lag}"
        lines.append(f"duration: {format_seconds_short(duration)}")
        lines.append(f"peak lag: {peak}")
    worst = event.get("worst") or []
    if worst and kind != "resolve":
        lines.append("worst partitions:")
        for w in worst:
            lines.append(
                f"  {w['topic']}/{w['partition']}: {w['status']}, "
                f"{describe_lag(int(w.get('lag_msgs') or 0), w.get('lag_seconds'), w.get('lag_seconds_kind', ''))}, "
                f"committed {w.get('committed') if w.get('committed') is not None else '-'} of end {w.get('end')}"
            )
    lines.append(f"incident: {event['incident_id']} ({event.get('event', kind)})")
    fields = {
        k: event.get(k)
        for k in (
            "group",
            "topic",
            "status",
            "severity",
            "lag_msgs",
            "lag_seconds",
            "incident_id",
            "since",
            "peak_msgs",
            "peak_seconds",
        )
    }
    fields["event"] = event.get("event", kind)
    fields["duration_seconds"] = round(duration, 1)
    fields["worst_partitions"] = list(worst)
    return Alert(
        source="consumer_lag",
        severity=severity,
        title=title,
        text="\n".join(lines),
        fields=fields,
        key=event["incident_id"],
        run_url=run_url,
    )
