"""Alerts as plain data, and how each sink renders them. Pure: sending is in ecap_ops.alerts."""

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

SEVERITIES = ("info", "warning", "critical", "resolved")
_EMOJI = {
    "info": ":information_source:",
    "warning": ":warning:",
    "critical": ":rotating_light:",
    "resolved": ":white_check_mark:",
}


@dataclass(frozen=True)
class Alert:
    source: str  # consumer_lag, health_check, run_failure, dr_drill, ...
    severity: str  # one of SEVERITIES
    title: str  # one line: what happened, where
    text: str = ""  # the details a person acts on (plain text, may hold a small table)
    fields: dict[str, Any] = field(default_factory=dict)  # structured facts for scripts
    key: str | None = None  # incident or dedup key
    run_url: str | None = None  # link to the Dagster run
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"alert severity must be one of {SEVERITIES}, got {self.severity!r}")


def slack_payload(alert: Alert) -> dict:
    """A Slack-compatible incoming-webhook body (also accepted by Mattermost and Rocket.Chat)."""
    head = f"{_EMOJI[alert.severity]} *[{alert.severity.upper()}] {alert.title}*"
    lines = [head]
    if alert.text:
        lines.append(alert.text if "\n" not in alert.text else f"```\n{alert.text}\n```")
    if alert.run_url:
        lines.append(f"<{alert.run_url}|Dagster run>")
    text = "\n".join(lines)
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}],
    }


def json_line(alert: Alert) -> str:
    return json.dumps(asdict(alert), sort_keys=True, default=str)


def log_line(alert: Alert) -> str:
    s = f"[{alert.severity.upper()}] {alert.title}"
    if alert.text:
        s += "\n" + alert.text
    if alert.run_url:
        s += f"\nrun: {alert.run_url}"
    return s
