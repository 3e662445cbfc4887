"""Sending alerts: a Slack-compatible webhook, a JSON-lines file and a logger.

Used by the Dagster resource `alerts` and by the CLI. The webhook URL is a secret (it
carries its own token): it is never logged or put in an error message.
"""

import json
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ecap_ops.core.alerts import Alert, json_line, log_line, slack_payload

log = logging.getLogger(__name__)


@dataclass
class AlertSinks:
    webhook_url: str | None = None
    jsonl_path: str | None = None
    logger: logging.Logger | None = None
    timeout_s: float = 5.0
    retries: int = 3
    backoff_s: float = 0.5

    def send(self, alert: Alert) -> dict[str, str]:
        """Send to every configured sink; return sink -> "ok" or what went wrong. A failing
        sink never stops the others."""
        results: dict[str, str] = {}
        lg = self.logger or log
        level = (
            logging.ERROR
            if alert.severity == "critical"
            else logging.WARNING
            if alert.severity == "warning"
            else logging.INFO
        )
        lg.log(level, log_line(alert))
        results["log"] = "ok"
        if self.jsonl_path:
            try:
                p = Path(self.jsonl_path)
                p.parent.mkdir(parents=True, exist_ok=True)
                with p.open("a", encoding="utf-8") as fh:
                    fh.write(json_line(alert) + "\n")
                results["jsonl"] = "ok"
            except OSError as exc:
                results["jsonl"] = f"cannot write {self.jsonl_path}: {exc}"
                lg.error("alert sink jsonl: %s", results["jsonl"])
        if self.webhook_url:
            results["webhook"] = self._post(slack_payload(alert))
            if results["webhook"] != "ok":
                lg.error("alert sink webhook: %s", results["webhook"])
        return results

    def _post(self, payload: dict) -> str:
        body = json.dumps(payload).encode()
        last = ""
        for attempt in range(1, self.retries + 1):
            req = urllib.request.Request(
                self.webhook_url,
                data=body,
                headers={"Content-Type": "application/json"},
                method="POST",
            )  # type: ignore[arg-type]
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    if 200 <= resp.status < 300:
                        return "ok"
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
                if 400 <= exc.code < 500 and exc.code != 429:
                    break  # a client error will not improve by retrying
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"{type(reason).__name__}"
            if attempt < self.retries:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
        # The URL holds a secret token: say which sink failed, never where it points.
        return f"webhook (URL hidden) failed after {attempt} attempt(s): {last}"


def sinks_from_env(logger: logging.Logger | None = None) -> AlertSinks:
    return AlertSinks(
        webhook_url=os.environ.get("ECAP_ALERT_WEBHOOK_URL") or None,
        jsonl_path=os.environ.get("ECAP_ALERT_JSONL") or None,
        logger=logger,
    )
