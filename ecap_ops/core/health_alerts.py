"""Health incident events (`HealthEvent`) as alerts people can act on, and on the wire of
a notification run. Pure."""

from dataclasses import asdict

from ecap_ops.catalog.units import format_seconds
from ecap_ops.core import incidents
from ecap_ops.core.alerts import Alert
from ecap_ops.core.health import Finding, HealthReport, render_text
from ecap_ops.core.health_incidents import _RANK, HealthEvent

_VERB = {
    "open": "opened",
    "escalate": "escalated to CRIT",
    "changed": "changed",
}


def event_alert(
    event: HealthEvent, report: HealthReport | None = None, run_url: str | None = None
) -> Alert:
    """The alert for one incident event, with its run's findings (the event's own report;
    `report` is accepted for older callers and not used)."""
    report = event.report
    where = f"{report.cluster_id or report.bootstrap} ({report.env})"
    took = format_seconds(event.duration_seconds)
    problems = report.problems()
    if event.kind == "resolve":
        title = f"Kafka health resolved on {where} after {took} (worst {event.peak}, now {report.status})"
        lines = [
            f"healthy again after {took} (worst {event.peak}); status now {report.status}",
            "the problems last notified:",
            *(f"  {s}" for s in event.summary),
        ]
    else:
        if event.kind == "remind":
            label = f"still {event.level} (reminder {event.reminder}, open {took})"
        else:
            label = _VERB.get(event.kind, event.kind)
        head = problems[0] if problems else None
        title = f"Kafka health {event.level} {label} on {where}"
        if head is not None:
            title += f": {head.check} {head.subject}"
        lines = [render_text(report)]
        if event.new and event.kind != "open":
            lines.append("new since the last message:")
            lines += [f"  {n}" for n in event.new]
        if event.kind != "open":
            lines.append(f"open for {took}")
    lines.append(f"incident: {event.incident_id} ({event.event_name})")
    return Alert(
        source="health_check",
        severity=event.severity,
        title=title,
        text="\n".join(lines),
        fields={**event.to_dict(), **report.alert_fields()},
        key=event.incident_id,
        run_url=run_url,
    )


def _to_wire(e: HealthEvent) -> dict:
    d = e.to_dict()
    for derived in ("event", "severity", "duration_seconds"):
        d.pop(derived)
    r = e.report
    d["report"] = {
        "status": r.status,
        "env": r.env,
        "cluster_id": r.cluster_id,
        "bootstrap": r.bootstrap,
        "at_ms": r.at_ms,
        "findings": [asdict(f) for f in r.findings],
        "metrics": dict(r.metrics),
    }
    return d


def _from_wire(d: dict) -> HealthEvent:
    r = d["report"]
    findings = tuple(
        Finding(f["check"], f["severity"], f["subject"], f["message"], tuple(f.get("items") or ()))
        for f in r["findings"]
    )
    for f in findings:
        if f.severity not in _RANK:
            raise ValueError(f"finding severity {f.severity!r}")
    report = HealthReport(
        r["status"], r["env"], r["cluster_id"], r["bootstrap"], int(r["at_ms"]), findings,
        dict(r.get("metrics") or {}), {}, {}, {},
    )  # fmt: skip
    return HealthEvent(
        kind=d["kind"],
        incident_id=d["incident_id"],
        status=d["status"],
        level=incidents.level_of(d["level"]),
        peak=incidents.level_of(d["peak"]),
        at=float(d["at"]),
        since=float(d["since"]),
        report=report,
        reminder=int(d.get("reminder") or 0),
        change=int(d.get("change") or 0),
        new=tuple(d.get("new") or ()),
        summary=tuple(d.get("summary") or ()),
    )


incidents.register(
    incidents.EventType(
        "health_check", HealthEvent, _to_wire, _from_wire, lambda e, url: event_alert(e, None, url)
    )
)
