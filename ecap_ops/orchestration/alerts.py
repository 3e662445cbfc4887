"""Resource `alerts`: where notifications go (Slack-compatible webhook, JSON lines, the Dagster log)."""

import logging
import os

import dagster as dg

from ecap_ops.alerts import AlertSinks
from ecap_ops.core.alerts import Alert


class AlertsResource(dg.ConfigurableResource):
    """Alert sinks. The webhook URL is a secret (EnvVar ECAP_ALERT_WEBHOOK_URL); the JSON-lines
    file (ECAP_ALERT_JSONL) keeps every alert for audit; the Dagster log always gets one."""

    webhook_url: str | None = None
    jsonl_path: str | None = None
    timeout_seconds: float = 5.0
    retries: int = 3
    # Base URL of the Dagster UI, for links to runs in messages.
    dagster_url: str = "http://127.0.0.1:3000"

    def run_url(self, run_id: str) -> str:
        return f"{self.dagster_url.rstrip('/')}/runs/{run_id}"

    def send(self, alert: Alert, logger: logging.Logger | None = None) -> dict[str, str]:
        sinks = AlertSinks(
            webhook_url=self.webhook_url,
            jsonl_path=self.jsonl_path,
            logger=logger,
            timeout_s=self.timeout_seconds,
            retries=self.retries,
        )
        return sinks.send(alert)


def alerts_resource_from_env() -> AlertsResource:
    values = {
        "webhook_url": dg.EnvVar("ECAP_ALERT_WEBHOOK_URL")
        if os.environ.get("ECAP_ALERT_WEBHOOK_URL")
        else None,
        "jsonl_path": dg.EnvVar("ECAP_ALERT_JSONL") if os.environ.get("ECAP_ALERT_JSONL") else None,
        "dagster_url": dg.EnvVar("ECAP_DAGSTER_URL")
        if os.environ.get("ECAP_DAGSTER_URL")
        else None,
    }
    return AlertsResource(**{k: v for k, v in values.items() if v is not None})
