"""`run_failure_alert_sensor`: a failed run of any ecap-ops job becomes an alert."""

import dagster as dg

from ecap_ops.core.alerts import Alert
from ecap_ops.orchestration.alerts import AlertsResource


def failure_alert(job_name: str, run_id: str, error: str | None, run_url: str | None) -> Alert:
    """The alert for one failed run."""
    message = (error or "the run failed (no error message)").strip()
    first = message.splitlines()[0] if message else ""
    return Alert(
        source="run_failure",
        severity="critical",
        title=f"Dagster job {job_name} failed: {first[:200]}",
        text=f"job:    {job_name}\nrun id: {run_id}\nerror:  {message[:1500]}",
        fields={"job": job_name, "run_id": run_id, "error": message[:1500]},
        key=f"run_failure:{run_id}",
        run_url=run_url,
    )


def build_failure_sensor(name: str = "run_failure_alert_sensor") -> dg.SensorDefinition:
    from ecap_ops.orchestration.lag import default_sensor_status

    @dg.run_failure_sensor(
        name=name,
        default_status=default_sensor_status(),
        description="Send every failed run of this code location's jobs to the alert sinks (webhook, JSON lines, Dagster log), with the error and a link to the run.",
    )
    def _sensor(context: dg.RunFailureSensorContext, alerts: AlertsResource) -> None:
        run = context.dagster_run
        error = context.failure_event.message if context.failure_event else None
        alert = failure_alert(run.job_name, run.run_id, error, alerts.run_url(run.run_id))
        results = alerts.send(alert, context.log)
        failed = {k: v for k, v in results.items() if v != "ok"}
        if failed:
            context.log.error(f"{name}: failure alert for run {run.run_id} not delivered: {failed}")

    return _sensor


def build_defs() -> dg.Definitions:
    return dg.Definitions(sensors=[build_failure_sensor()])
