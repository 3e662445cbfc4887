"""`run_failure_alert_sensor`: a failed run of any ecap-ops job becomes an alert, unless the
run alerted for itself.

A run alerts for itself when it judged its own outcome into an incident: it recorded an
asset event carrying incident notifications (`incident_notifications`), which the job's
incident sensor notifies (a failed `dr_drill` run: the DR drill incident). Such a run gets
no second alert from here; a run of the same job that failed before it could judge itself
(say, its resources could not start) still gets one.
"""

import dagster as dg

from ecap_ops.core.alerts import Alert
from ecap_ops.orchestration.alerts import EVENTS_METADATA, AlertsResource

MESSAGE_CHARS = 1500


def _one_line(text: str) -> str:
    """Any whitespace (newlines, tabs, separators) as single spaces: a title is one line."""
    return " ".join(text.split())


def step_errors(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """(step, its own error message) for every failed step of a run, from the run's event
    log: a `dg.Failure`'s description, else the exception's message. Never raises."""
    try:
        records = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    except Exception:  # the alert goes out with the run's message instead
        return []
    out = []
    for record in records:
        event = record.dagster_event
        if event is None:
            continue
        data = event.step_failure_data
        message = ""
        if data is not None and data.user_failure_data is not None:
            message = data.user_failure_data.description or ""
        if not message and data is not None and data.error is not None:
            error = data.error
            # The user's exception, not Dagster's wrapper around it.
            while error.cause is not None and "Error occurred while executing" in error.message:
                error = error.cause
            message = error.message
        out.append((event.step_key or "?", message.strip() or "(no error message)"))
    return out


def alerted_for_itself(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Whether a run recorded its own incident judgement (see the module). Never raises: in
    doubt, the run failure is alerted."""
    kinds = {dg.DagsterEventType.ASSET_OBSERVATION, dg.DagsterEventType.ASSET_MATERIALIZATION}
    try:
        records = instance.all_logs(run_id, of_type=kinds)
    except Exception:
        return False
    for record in records:
        event = record.dagster_event
        data = event.event_specific_data if event is not None else None
        asset_event = getattr(data, "asset_observation", None) or getattr(
            data, "materialization", None
        )
        if asset_event is not None and EVENTS_METADATA in (asset_event.metadata or {}):
            return True
    return False


def failure_alert(
    job_name: str,
    run_id: str,
    error: str | None,
    run_url: str | None,
    steps: list[tuple[str, str]] | None = None,
) -> Alert:
    """The alert for one failed run: the failing steps' own errors first (what went
    wrong), the run's message when no step failed (e.g. the run could not start), and the
    link to the run."""
    run_message = (error or "the run failed (no error message)").strip()
    steps = steps or []
    if steps:
        step, cause = steps[0]
        lines_of_cause = [ln for ln in cause.splitlines() if ln.strip()]
        head = f"step {step}: {lines_of_cause[0] if lines_of_cause else ''}"
        detail = "\n".join(f"step {s}: {m[:MESSAGE_CHARS]}" for s, m in steps[:5])
    else:
        head = run_message.splitlines()[0] if run_message else ""
        detail = run_message[:MESSAGE_CHARS]
    lines = [f"job:    {job_name}", f"run id: {run_id}"]
    lines.append(f"error:  {detail}")
    return Alert(
        source="run_failure",
        severity="critical",
        title=_one_line(f"Dagster job {job_name} failed: {_one_line(head)[:200]}"),
        text="\n".join(lines),
        fields={
            "job": job_name,
            "run_id": run_id,
            "error": detail,
            "failed_steps": [{"step": s, "error": m[:MESSAGE_CHARS]} for s, m in steps[:20]],
            "run_error": run_message[:MESSAGE_CHARS],
        },
        key=f"run_failure:{run_id}",
        run_url=run_url,
    )


def build_failure_sensor(name: str = "run_failure_alert_sensor") -> dg.SensorDefinition:
    from ecap_ops.orchestration.alerts import sensor_interval
    from ecap_ops.orchestration.lag import default_sensor_status

    @dg.run_failure_sensor(
        name=name,
        minimum_interval_seconds=sensor_interval(),
        default_status=default_sensor_status(),
        description="Send every failed run of this code location's jobs to the alert sinks (webhook, JSON lines, Dagster log), with the failing step and its own error, and a link to the run; except runs that alerted for themselves (a failed DR drill is notified once, by its incident).",
    )
    def _sensor(context: dg.RunFailureSensorContext, alerts: AlertsResource) -> None:
        run = context.dagster_run
        if alerted_for_itself(context.instance, run.run_id):
            context.log.info(
                f"{name}: run {run.run_id} of {run.job_name} recorded its own incident; no second alert"
            )
            return
        error = context.failure_event.message if context.failure_event else None
        steps = step_errors(context.instance, run.run_id)
        alert = failure_alert(run.job_name, run.run_id, error, alerts.run_url(run.run_id), steps)
        results = alerts.send(alert, context.log)
        failed = {k: v for k, v in results.items() if v != "ok"}
        if failed:
            context.log.error(f"{name}: failure alert for run {run.run_id} not delivered: {failed}")

    return _sensor


def build_defs() -> dg.Definitions:
    return dg.Definitions(sensors=[build_failure_sensor()])
