"""MirrorMaker 2 replication in Dagster: `mirror_replication_sensor` checks the flow from the
clusters file's primary to its standby every 30 s (the catalog's `mirror:` topics on the
standby, their lag in records and seconds, the checkpoints), records each check on the asset
`ecap_ops/mirror_replication`, and moves the replication incident through the one incident
model: each event is notified once, by a run of `notify_mirror_replication` with the run key
`<incident id>:<event>`."""

import json
import time

import dagster as dg

# Registers the replication incident's events with the incident model, so a notification
# run of this code location can read them back.
import ecap_ops.core.mirror  # noqa: F401
from ecap_ops.catalog.model import Catalog
from ecap_ops.orchestration.alerts import notification_run_request, notify_job

MIRROR_KEY = dg.AssetKey(["ecap_ops", "mirror_replication"])
SENSOR = "mirror_replication_sensor"
CURSOR_VERSION = 1


def read_cursor(cursor: str | None) -> dict:
    """The sensor's memory: the incident state and the checkpoints topic's last end offset."""
    try:
        data = json.loads(cursor) if cursor else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) and data.get("v") == CURSOR_VERSION else {}


def evaluate(cursor: str | None, now: float | None = None, environ=None):
    """One tick: (run requests, asset observation or None, new cursor, skip reason or None).
    Never raises for a cluster that is down: that is a CRIT check of the flow."""
    from ecap_ops.catalog import load_catalog
    from ecap_ops.clusters import with_client_id
    from ecap_ops.core.incidents import CRIT
    from ecap_ops.core.mirror import MirrorFacts, decide
    from ecap_ops.gateway import KafkaGateway
    from ecap_ops.services.mirror import check_replication, resolve_flow
    from ecap_ops.settings import DAGSTER_CLIENT_ID

    now = time.time() if now is None else now
    memory = read_cursor(cursor)
    try:
        flow = resolve_flow(None, None, environ)
    except Exception as exc:  # no clusters file, no standby: nothing to watch
        return [], None, cursor, f"no replication flow to check: {exc}"[:500]
    source = with_client_id(flow.source, DAGSTER_CLIENT_ID)
    target = with_client_id(flow.target, DAGSTER_CLIENT_ID)
    report, problem = None, None
    try:
        src_cat = load_catalog(env=flow.source.env)
        tgt_cat = load_catalog(env=flow.target.env)
        with (
            KafkaGateway(source.checked_settings()) as sgw,
            KafkaGateway(target.checked_settings()) as tgw,
        ):
            report = check_replication(sgw, tgw, src_cat, tgt_cat, flow.name, flow.source.name, now)
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"[:500]
    if report is not None:
        lagging = tuple(t.topic for t in report.topics if t.level != "OK")
        facts = MirrorFacts(flow.name, report.level, lagging, tuple(report.lines()))
    else:
        facts = MirrorFacts(flow.name, CRIT, ("(the check)",), (f"could not check: {problem}",))
    decision = decide(memory.get("state"), facts, now)
    last_cp = memory.get("checkpoints")
    cp = report.checkpoint_records if report is not None else None
    flowing = None if cp is None or last_cp is None else cp > last_cp
    new_cursor = json.dumps(
        {
            "v": CURSOR_VERSION,
            "state": decision.state,
            "checkpoints": cp if cp is not None else last_cp,
        }
    )
    inc = decision.state.get("incident")
    meta = {
        "flow": dg.MetadataValue.text(flow.name),
        "level": dg.MetadataValue.text(facts.level),
        "lagging_topics": dg.MetadataValue.text(", ".join(facts.lagging) or "none"),
        "records_behind": dg.MetadataValue.int(
            sum(t.records for t in report.topics) if report is not None else 0
        ),
        "checkpoint_records": dg.MetadataValue.int(cp if cp is not None else 0),
        "checkpoints_grew": dg.MetadataValue.text(
            "unknown" if flowing is None else "yes" if flowing else "no"
        ),
        "report": dg.MetadataValue.md("\n".join(f"- {x}" for x in facts.lines) or "no topics"),
        "open_incident": dg.MetadataValue.text(inc["id"] if inc else "none"),
        "incident_events": dg.MetadataValue.text(
            ", ".join(e.event_name for e in decision.events) or "none"
        ),
    }
    observation = dg.AssetObservation(
        asset_key=MIRROR_KEY, description=f"{flow.name}: {facts.level}", metadata=meta
    )
    runs = [notification_run_request(e, tags={"ecap_ops/flow": flow.name}) for e in decision.events]
    return runs, observation, new_cursor, None


def build_defs(catalog: Catalog) -> dg.Definitions:
    from ecap_ops.orchestration.lag import default_sensor_status

    notify = notify_job(
        "notify_mirror_replication",
        "Notify one MirrorMaker 2 replication incident event (open: a mirrored topic lags or is missing "
        "on the standby; escalate, changed, remind-N; resolve: caught up). Launched by "
        "mirror_replication_sensor with a run key per event, so each is sent once.",
        "disaster_recovery",
    )
    asset = dg.AssetSpec(
        MIRROR_KEY,
        group_name="disaster_recovery",
        description="MirrorMaker 2 replication from the primary to the DR standby, one observation per "
        "check of mirror_replication_sensor: the catalog's mirror: topics on the standby, records and "
        "seconds behind, the checkpoints, the replication incident.",
        kinds={"kafka"},
    )

    @dg.sensor(
        name=SENSOR,
        job=notify,
        minimum_interval_seconds=30,
        default_status=default_sensor_status(),
        description="Every 30 s: the MirrorMaker 2 flow of the clusters file (primary -> standby); "
        "replication lag per mirrored topic against the catalog's mirror.lag levels opens, escalates, "
        "reminds and resolves the replication incident, each event notified once by notify_mirror_replication.",
    )
    def mirror_replication_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        runs, observation, cursor, skip = evaluate(context.cursor)
        if skip:
            return dg.SensorResult(skip_reason=skip, cursor=cursor)
        return dg.SensorResult(
            run_requests=runs,
            cursor=cursor,
            asset_events=[observation] if observation is not None else [],
        )

    return dg.Definitions(assets=[asset], jobs=[notify], sensors=[mirror_replication_sensor])
