"""Consumer-lag incident events (`IncidentEvent`) as alerts people can act on, and on the
wire of a notification run. Pure."""

from dataclasses import fields
from datetime import UTC, datetime

from ecap_ops.core import incidents
from ecap_ops.core.alerts import Alert
from ecap_ops.core.lag_measures import describe_lag, format_seconds_short
from ecap_ops.core.lag_model import IncidentEvent

_VERB = {
    "open": "opened",
    "escalate": "escalated",
    "remind": "still open",
    "resolve": "resolved",
    "close": "closed",
}
# What an alert names of each of the worst partitions.
_WORST_KEYS = ("topic", "partition", "status", "lag_msgs", "lag_seconds", "lag_seconds_kind", "committed", "end")  # fmt: skip


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _worst_line(w: dict) -> str:
    lag = describe_lag(
        int(w.get("lag_msgs") or 0), w.get("lag_seconds"), w.get("lag_seconds_kind", "")
    )
    committed = w.get("committed") if w.get("committed") is not None else "-"
    return f"  {w['topic']}/{w['partition']}: {w['status']}, {lag}, committed {committed} of end {w.get('end')}"


def lag_alert(event: IncidentEvent, run_url: str | None = None) -> Alert:
    """The alert for one consumer-lag incident event."""
    kind, group, topic, status = event.kind, event.group, event.topic, event.status
    lag = describe_lag(event.lag_msgs, event.lag_seconds, event.lag_seconds_kind)
    duration = event.duration_seconds
    if kind == "resolve":
        title = f"consumer lag resolved: group {group} on {topic} is {status} again after {format_seconds_short(duration)}"
    else:
        label = f"reminder {event.reminder}" if kind == "remind" else _VERB.get(kind, kind)
        title = f"consumer lag {label}: group {group} on {topic} is {status} ({lag})"
    # One vocabulary: the event's severity is a level; the alert says it in the sinks' words.
    severity = incidents.alert_severity(kind, incidents.level_of(event.severity))
    lines = [
        f"group:    {group}",
        f"topic:    {topic}",
        f"status:   {status} ({event.severity})",
        f"lag:      {lag}",
        f"since:    {_when(event.since)} ({format_seconds_short(duration)} ago)",
    ]
    if kind == "resolve":
        peak = describe_lag(event.peak_msgs, event.peak_seconds)
        lines[3] = f"lag now:  {lag}"
        lines += [f"duration: {format_seconds_short(duration)}", f"peak lag: {peak}"]
    worst = [dict(w) for w in event.worst]
    if worst and kind != "resolve":
        lines.append("worst partitions:")
        lines += [_worst_line(w) for w in worst]
    lines.append(f"incident: {event.incident_id} ({event.event_name})")
    keys = ("group", "topic", "status", "severity", "lag_msgs", "lag_seconds", "incident_id")
    fields_ = {k: getattr(event, k) for k in (*keys, "since", "peak_msgs", "peak_seconds")}
    fields_["lag_seconds_kind"] = event.lag_seconds_kind
    fields_["event"] = event.event_name
    fields_["duration_seconds"] = round(duration, 1)
    fields_["worst_partitions"] = worst
    return Alert(
        source="consumer_lag",
        severity=severity,
        title=title,
        text="\n".join(lines),
        fields=fields_,
        key=event.incident_id,
        run_url=run_url,
    )


def _to_wire(e: IncidentEvent) -> dict:
    d = e.to_dict()
    d.pop("event")  # derived from kind and reminder
    d["worst"] = [{k: w.get(k) for k in _WORST_KEYS if w.get(k) is not None} for w in e.worst]
    d["notify"] = e.notify
    return d


_FIELDS = {f.name for f in fields(IncidentEvent)}


def _from_wire(d: dict) -> IncidentEvent:
    unknown = set(d) - _FIELDS
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))[:120]}")
    worst = tuple(dict(w) for w in d.get("worst") or ())
    for w in worst:
        if not isinstance(w.get("topic"), str) or not isinstance(w.get("partition"), int):
            raise ValueError("a worst partition without topic and partition")
    event = IncidentEvent(**{**d, "worst": worst})
    float(event.at), float(event.since), int(event.lag_msgs)
    return event


incidents.register(
    incidents.EventType("consumer_lag", IncidentEvent, _to_wire, _from_wire, lag_alert)
)
