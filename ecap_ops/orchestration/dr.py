"""Disaster recovery in Dagster: the hourly metadata snapshot asset, the restore job (dry
run by default) and the weekly DR drill that proves a snapshot can be restored."""

import os
from datetime import timedelta
from pathlib import Path

import dagster as dg
from pydantic import Field

from ecap_ops.catalog.model import Catalog
from ecap_ops.orchestration.alerts import (
    EVENTS_METADATA,
    build_incident_sensor,
    events_metadata,
    notify_job,
)
from ecap_ops.orchestration.cluster_scope import SINGLE, ClusterScope
from ecap_ops.orchestration.common import as_failure, md_table, rounded
from ecap_ops.orchestration.resources import KafkaResource

GROUP = "disaster_recovery"
# A snapshot is a point-in-time observation of the cluster: one unpartitioned asset whose
# materializations are the snapshots (latest, history, diff), taken hourly.
SNAPSHOT_CRON = "0 * * * *"
# Fresh when the newest snapshot is at most ~an hour and a quarter old; failing after two.
SNAPSHOT_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=2), warn_window=timedelta(minutes=75)
)
# Runs carrying this tag change topics; the run coordinator lets one at a time run.
RESTORE_TAG = {"ecap_ops/provisioning": "topics"}


def schedule_status() -> dg.DefaultScheduleStatus:
    """ECAP_SCHEDULES_DEFAULT=running|stopped (default stopped, for local development)."""
    raw = (os.environ.get("ECAP_SCHEDULES_DEFAULT") or "stopped").strip().lower()
    return (
        dg.DefaultScheduleStatus.RUNNING if raw == "running" else dg.DefaultScheduleStatus.STOPPED
    )


def _diff_metadata(diff) -> dict:
    if diff is None:
        return {"diff_vs_previous": dg.MetadataValue.md("no earlier snapshot in the directory")}
    from ecap_ops.core.snapshot import render_diff

    c = diff.counts()
    text = render_diff(diff)
    return {
        "diff_vs_previous": dg.MetadataValue.md(
            "no change since the previous snapshot"
            if diff.empty
            else "```\n" + text[:20000] + ("\n..." if len(text) > 20000 else "") + "\n```"
        ),
        "diff_empty": dg.MetadataValue.bool(diff.empty),
        "topics_added": dg.MetadataValue.int(c["topics_added"]),
        "topics_removed": dg.MetadataValue.int(c["topics_removed"]),
        "config_changes": dg.MetadataValue.int(c["config_changes"]),
        "partition_changes": dg.MetadataValue.int(c["partition_changes"]),
    }


def _diff_headline(diff) -> str:
    if diff is None:
        return "first snapshot in the directory"
    if diff.empty:
        return "no change since the previous snapshot"
    c = diff.counts()
    parts = [
        f"{c[k]} {label}"
        for k, label in (
            ("topics_added", "topic(s) added"),
            ("topics_removed", "topic(s) removed"),
            ("config_changes", "config change(s)"),
            ("partition_changes", "partition change(s)"),
        )
        if c.get(k)
    ]
    return "changed since the previous snapshot: " + (", ".join(parts) or "see the diff")


def _size(n: int) -> str:
    from ecap_ops.catalog.units import format_size

    return format_size(n)


def cluster_snapshot_dir(cluster: ClusterScope = SINGLE) -> Path:
    """Where the snapshot asset of `cluster` writes (`clusters.other_cluster_snapshot_dir`: the
    snapshot directory for the single location and the home cluster, its own directory
    for every other cluster)."""
    from ecap_ops.clusters import other_cluster_snapshot_dir

    return other_cluster_snapshot_dir(cluster.cluster if cluster.prefixed else None)


def build_snapshot_asset(catalog: Catalog, cluster: ClusterScope = SINGLE) -> dg.AssetsDefinition:
    where = (
        f" (this cluster's: <snapshot directory>/clusters/{cluster.cluster})"
        if cluster.prefixed
        else ""
    )

    @dg.asset(
        key=cluster.key("kafka_metadata_snapshot"),
        group_name=cluster.group(GROUP),
        kinds={"kafka", "json"},
        freshness_policy=SNAPSHOT_FRESHNESS,
        tags=cluster.tags,
        description=cluster.describe(
            "A verified, checksummed snapshot of the cluster's metadata (topics, partitions, replication, "
            "topic-level overrides, consumer-group offsets, ACLs, SCRAM user names and mechanisms, never a password, "
            "client quotas) written atomically into the "
            f"snapshot directory (ECAP_SNAPSHOT_DIR){where}, which keeps the newest ECAP_SNAPSHOT_KEEP. Each "
            "materialization is one snapshot: its file, checksum, counts and the diff against the previous one; the "
            f"history is the list of materializations. Taken hourly by {cluster.name('dr_snapshot_schedule')}; "
            "materialize it to take one now."
        ),
    )
    @cluster.bind
    def kafka_metadata_snapshot(
        context: dg.AssetExecutionContext, kafka: KafkaResource
    ) -> dg.MaterializeResult:
        from ecap_ops.core.snapshot import diff_snapshots
        from ecap_ops.services.dr import previous_snapshot, take_snapshot

        directory = cluster_snapshot_dir(cluster)
        with as_failure("taking the metadata snapshot"), kafka.gateway() as gw:
            result = take_snapshot(gw, catalog, directory=directory)
            prev = previous_snapshot(directory, result.path)
        diff = diff_snapshots(prev, result.snapshot) if prev else None
        s = result.snapshot.summary()
        context.log.info(
            f"snapshot written to {result.path} ({result.size_bytes:,} bytes, sha256 {s['checksum']})"
        )
        for n in s["notes"]:
            context.log.info(f"note: {n}")
        headline = (
            f"{s['topics']} topics, {s['partitions']} partitions, {s['groups']} consumer groups, "
            f"{_size(result.size_bytes)}; {_diff_headline(diff)}"
        )
        return dg.MaterializeResult(
            metadata={
                "summary": dg.MetadataValue.md(
                    f"**Snapshot of cluster `{s['cluster_id']}`**: {headline}.\n\n"
                    f"File `{result.path}`, sha256 `{s['checksum'][:16]}...`"
                ),
                **_diff_metadata(diff),
                "path": dg.MetadataValue.path(str(result.path)),
                "checksum_sha256": dg.MetadataValue.text(s["checksum"]),
                "cluster_id": dg.MetadataValue.text(s["cluster_id"]),
                "broker_count": dg.MetadataValue.int(s["broker_count"]),
                "topics": dg.MetadataValue.int(s["topics"]),
                "partitions": dg.MetadataValue.int(s["partitions"]),
                "consumer_groups": dg.MetadataValue.int(s["groups"]),
                "group_offsets": dg.MetadataValue.int(s["group_offsets"]),
                "acls": dg.MetadataValue.int(s["acls"]),
                "scram_users": dg.MetadataValue.int(s["scram_users"]),
                "quotas": dg.MetadataValue.int(s["quotas"]),
                "size_bytes": dg.MetadataValue.int(result.size_bytes),
                "duration_ms": rounded(s["duration_ms"], 0),
                "requests": dg.MetadataValue.json(result.requests),
                "complete": dg.MetadataValue.json(s["complete"]),
                "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in s["notes"]) or "none"),
                "pruned": dg.MetadataValue.int(len(result.pruned)),
            }
        )

    return kafka_metadata_snapshot


class RestoreConfig(dg.Config):
    """Restore a snapshot. Dry run by default: set dry_run to false to apply. Never deletes anything."""

    snapshot_path: str = Field(
        default="",
        description="Snapshot file to restore; empty: the newest in the snapshot directory.",
    )
    dry_run: bool = Field(default=True, description="Plan only, change nothing.")
    include_offsets: bool = Field(
        default=False,
        description="Also write consumer-group offsets (only into groups with no active members).",
    )
    allow_other_cluster: bool = Field(
        default=False,
        description="Allow restoring onto a cluster other than the snapshot's source.",
    )
    topics: list[str] = Field(
        default_factory=list, description="Restore only these topics (snapshot names); empty: all."
    )
    restore_access: bool = Field(
        default=True,
        description="Also restore the snapshot's ACL bindings and client quotas, and re-create its SCRAM "
        "users with passwords supplied below (false: topics and offsets only).",
    )
    password_env: dict[str, str] = Field(
        default_factory=dict,
        description="SCRAM user -> the NAME of an environment variable of the run holding its password "
        "(never the password). Users not named here use the catalog's password_env/password_file; a user "
        "whose password is not supplied is reported and left out.",
    )
    password_file: dict[str, str] = Field(
        default_factory=dict,
        description="SCRAM user -> a file (e.g. a mounted secret) holding its password.",
    )


def _resolve(path: str) -> Path:
    from ecap_ops.services.dr import latest_snapshot, snapshot_dir

    return Path(path) if path else latest_snapshot(snapshot_dir())


def _plan_metadata(plan) -> dict:
    from ecap_ops.core.restore_report import render_restore_plan

    s = plan.summary()
    return {
        "plan": dg.MetadataValue.md("```\n" + render_restore_plan(plan)[:30000] + "\n```"),
        "to_create": dg.MetadataValue.int(s["create"]),
        "to_alter": dg.MetadataValue.int(s["alter_configs"]),
        "offsets_to_write": dg.MetadataValue.int(s["offsets_to_write"]),
        "conflicts": dg.MetadataValue.int(s["conflicts"]),
        "conflict_table": dg.MetadataValue.md(
            md_table(
                ["subject", "code", "message"],
                [[c.subject, c.code, c.message] for c in plan.conflicts],
            )
            if plan.conflicts
            else "none"
        ),
        "source_cluster_id": dg.MetadataValue.text(plan.source_cluster_id),
        "target_cluster_id": dg.MetadataValue.text(plan.target_cluster_id),
        "acls_to_create": dg.MetadataValue.int(s["acls_to_create"]),
        "users_to_create": dg.MetadataValue.int(s["users_to_create"]),
        "quotas_to_set": dg.MetadataValue.int(s["quotas_to_set"]),
        "users_left_out": dg.MetadataValue.text(", ".join(plan.users_left_out) or "none"),
    }


@dg.op(out=dg.Out(dict, description="The restore result: plan, steps, timing."))
def restore_from_snapshot(
    context: dg.OpExecutionContext, config: RestoreConfig, kafka: KafkaResource
) -> dg.Output:
    """Plan the restore of a verified snapshot and, unless dry_run, apply it."""
    from ecap_ops.catalog import load_catalog
    from ecap_ops.core.restore import RestoreOptions
    from ecap_ops.core.restore_report import render_restore_plan
    from ecap_ops.services.dr import load_snapshot, password_supplies, restore

    with as_failure("restoring from a snapshot"):
        catalog = load_catalog()
        options = RestoreOptions(
            include_offsets=config.include_offsets,
            allow_other_cluster=config.allow_other_cluster,
            topics=tuple(config.topics),
            access=config.restore_access,
            passwords=password_supplies(
                catalog,
                config.password_env,
                config.password_file,
                env_origin="password_env",
                file_origin="password_file",
            )
            if config.restore_access
            else (),
        )
        path = _resolve(config.snapshot_path)
        snap = load_snapshot(path)
        with kafka.gateway() as gw:
            result = restore(gw, catalog, snap, options, execute=not config.dry_run)
    context.log.info(render_restore_plan(result.plan))
    for s in result.steps:
        context.log.info(f"{s.step} {s.subject}: {s.detail}")
    if not result.ok:
        raise dg.Failure(
            description="the restore did not complete: "
            + "; ".join(f"{s.step} {s.subject}: {s.detail}" for s in result.steps if not s.ok)
        )
    meta = _plan_metadata(result.plan)
    meta["snapshot"] = dg.MetadataValue.path(str(path))
    meta["dry_run"] = dg.MetadataValue.bool(config.dry_run)
    meta["steps_done"] = dg.MetadataValue.int(sum(s.ok for s in result.steps))
    return dg.Output(result.to_dict(), metadata=meta)


class DrillConfig(dg.Config):
    """Restore the newest snapshot onto a scratch target, check it topic by topic, then remove what was created."""

    snapshot_path: str = Field(
        default="", description="Snapshot to drill; empty: the newest in the snapshot directory."
    )
    target_bootstrap_servers: str | None = Field(
        default=None,
        description="A second (scratch) cluster to restore onto; empty: this cluster, under name_prefix.",
    )
    target_cluster: str | None = Field(
        default=None,
        description="A cluster of the clusters file (ECAP_CLUSTERS_FILE) to drill into, such as the DR "
        "standby 'dr': topics are created under name_prefix and removed after, leaving it as it was.",
    )
    name_prefix: str = Field(
        default="drill.",
        description="Topics are created as <prefix><name>; required on the same cluster.",
    )
    topics: list[str] = Field(
        default_factory=list, description="Drill only these topics (snapshot names); empty: all."
    )


DRILL_KEY = dg.AssetKey(["ecap_ops", "dr_drill"])
DRILL_STATE_METADATA = "incident_state"


def read_drill_state(instance: dg.DagsterInstance) -> tuple[object, str | None]:
    """The drill incident state the latest drill recorded (raw), or None; with why it could
    not be read. Never raises: a lost state means no open incident."""
    try:
        records = instance.fetch_observations(DRILL_KEY, limit=1).records
    except Exception as exc:  # storage trouble must not stop the drill
        return None, f"could not read the latest drill: {type(exc).__name__}: {exc}"
    if not records or records[0].asset_observation is None:
        return None, None
    entry = records[0].asset_observation.metadata.get(DRILL_STATE_METADATA)
    return (entry.value if entry is not None else None), None


def record_drill(context: dg.OpExecutionContext, facts) -> None:
    """Judge this drill into the DR drill's incident and record it on `ecap_ops/dr_drill`:
    the verdict, and the incident events for dr_drill_incident_sensor to notify."""
    import time

    from ecap_ops.core.drill_incidents import decide

    stored, why = read_drill_state(context.instance)
    if why:
        context.log.warning(f"DR drill incident state: {why}; treating it as no open incident")
    decision = decide(stored, facts, time.time())
    for note in decision.notes:
        context.log.warning(note)
    for e in decision.events:
        context.log.info(f"DR drill incident {e.incident_id} {e.event_name}: run key {e.run_key}")
    inc = decision.state.get("incident")
    context.log_event(
        dg.AssetObservation(
            asset_key=DRILL_KEY,
            description=("PASSED" if facts.passed else "FAILED") + f": {facts.snapshot_path}",
            metadata={
                "passed": dg.MetadataValue.bool(facts.passed),
                "snapshot": dg.MetadataValue.text(facts.snapshot_path or "-"),
                "problems": dg.MetadataValue.md(
                    "\n".join(f"- {p}" for p in facts.problems) or "none"
                ),
                "open_incident": dg.MetadataValue.text(inc["id"] if inc else "none"),
                "incident_events": dg.MetadataValue.text(
                    ", ".join(e.event_name for e in decision.events) or "none"
                ),
                EVENTS_METADATA: events_metadata(decision.events),
                DRILL_STATE_METADATA: dg.MetadataValue.json(decision.state),
            },
        )
    )


def _drill(config: DrillConfig, kafka: KafkaResource):
    from ecap_ops.catalog import load_catalog
    from ecap_ops.services.dr import drill_target, run_drill

    with as_failure("running the DR drill"):
        path = _resolve(config.snapshot_path)
        target, same = drill_target(
            kafka.settings(),
            config.target_bootstrap_servers,
            config.target_cluster,
            client_id=kafka.settings().client_id,
        )
        with target:
            return run_drill(
                target,
                load_catalog(),
                path,
                name_prefix=config.name_prefix,
                topics=tuple(config.topics),
                same_cluster=same,
            )


def _drill_metadata(report, text: str) -> dict:
    return {
        "passed": dg.MetadataValue.bool(report.passed),
        "snapshot": dg.MetadataValue.path(report.snapshot_path),
        "topics_checked": dg.MetadataValue.int(len(report.checks)),
        "topics_failed": dg.MetadataValue.int(sum(not c.ok for c in report.checks)),
        "created": dg.MetadataValue.int(len(report.created)),
        "removed": dg.MetadataValue.int(len(report.deleted)),
        "access": dg.MetadataValue.text(
            ("ok" if report.access.get("ok") else "FAILED")
            if report.access.get("checked")
            else "not checked: " + str(report.access.get("reason", "-"))
        ),
        "seconds": rounded(report.seconds, 1),
        "recovery_seconds": rounded(report.recovery_seconds, 2),
        "report": dg.MetadataValue.md("```\n" + text[:30000] + "\n```"),
        "checks": dg.MetadataValue.md(
            md_table(
                ["topic", "restored as", "result", "problems"],
                [
                    [c.topic, c.restored_as, "ok" if c.ok else "FAIL", "; ".join(c.problems)]
                    for c in report.checks
                ],
            )
            if report.checks
            else "none"
        ),
    }


@dg.op(out=dg.Out(dict, description="The drill report."))
def run_dr_drill(
    context: dg.OpExecutionContext, config: DrillConfig, kafka: KafkaResource
) -> dg.Output:
    """Run the DR drill and record it on the DR drill's incident (a failed drill, or one that
    could not run, opens it; a passing drill resolves it); fail when the snapshot cannot be
    restored faithfully. The alert goes out through dr_drill_incident_sensor, once."""
    from ecap_ops.core.drill_incidents import DrillFacts

    try:
        report = _drill(config, kafka)
    except Exception as exc:
        why = exc.description if isinstance(exc, dg.Failure) else f"{type(exc).__name__}: {exc}"
        facts = DrillFacts(
            passed=False,
            snapshot_path=config.snapshot_path,
            problems=(str(why),),
            text=f"DR drill could not run: {why}",
            could_not_run=True,
            drill_run_id=context.run_id,
        )
        record_drill(context, facts)
        raise
    text = report.render()
    context.log.info(text)
    meta = _drill_metadata(report, text)
    record_drill(
        context,
        DrillFacts(
            passed=report.passed,
            snapshot_path=report.snapshot_path,
            snapshot_checksum=report.snapshot_checksum,
            failed_topics=tuple(c.topic for c in report.checks if not c.ok),
            problems=tuple(report.problems),
            text=text,
            drill_run_id=context.run_id,
        ),
    )
    if not report.passed:
        raise dg.Failure(description=text[:4000], metadata=meta, allow_retries=False)
    return dg.Output(report.to_dict(), metadata=meta)


@dg.job(
    description="Restore a metadata snapshot: plan first, dry run by default (set dry_run: false to apply). Creates missing "
    "topics with their partitions and overrides, writes group offsets into empty groups if asked, restores ACL bindings "
    "and client quotas, re-creates SCRAM users with passwords supplied in password_env/password_file (or the catalog's), "
    "never deletes anything.",
    tags=RESTORE_TAG,
)
def dr_restore():
    restore_from_snapshot()


@dg.job(
    description="DR drill: restore the newest snapshot onto a scratch target (a second cluster, or this one under the "
    "prefix drill.), check every topic against the snapshot, and remove what it created. A failed drill (or one that "
    "could not run) opens the DR drill incident and is notified once by notify_dr_drill; a passing drill resolves it."
)
def dr_drill():
    run_dr_drill()


def standby_cluster() -> str | None:
    """The clusters file's (first) standby, which the weekly drill targets; None without one.
    Reads the file only (definitions load connects to nothing)."""
    from ecap_ops.clusters import load_clusters

    try:
        clusters = load_clusters()
    except Exception:  # an invalid file is reported where the code location loads it
        return None
    return next((c.name for c in clusters.values() if c.role == "standby"), None)


def build_snapshot_defs(catalog: Catalog, cluster: ClusterScope = SINGLE) -> dg.Definitions:
    """The snapshot of one cluster: the asset `kafka_metadata_snapshot`, the job
    `dr_snapshot` and its hourly schedule, named for `cluster` and run on its resource
    (SINGLE: the single-cluster names on resource `kafka`). Restore and the drill are the
    home cluster's (`build_defs`)."""
    snapshot_asset = build_snapshot_asset(catalog, cluster)
    dr_snapshot = dg.define_asset_job(
        cluster.name("dr_snapshot"),
        selection=[snapshot_asset],
        description=cluster.describe(
            "Take a verified snapshot of the cluster's metadata into the snapshot directory."
        ),
        tags=cluster.tags,
    )
    dr_snapshot_schedule = dg.ScheduleDefinition(
        name=cluster.name("dr_snapshot_schedule"),
        job=dr_snapshot,
        cron_schedule=SNAPSHOT_CRON,
        execution_timezone="UTC",
        description=cluster.describe("Hourly metadata snapshot (on the hour, UTC)."),
        default_status=schedule_status(),
        tags=cluster.tags,
    )
    return dg.Definitions(
        assets=[snapshot_asset], jobs=[dr_snapshot], schedules=[dr_snapshot_schedule]
    )


def build_defs(catalog: Catalog, cluster: ClusterScope = SINGLE) -> dg.Definitions:
    """Disaster recovery on the home cluster (or the single one): the snapshot
    (`build_snapshot_defs`, named for `cluster`), restore, the weekly drill and its incident
    sensor. Other clusters of a clusters file get the snapshot part only."""
    standby = standby_cluster()
    dr_drill_schedule = dg.ScheduleDefinition(
        name="dr_drill_schedule",
        job=dr_drill,
        cron_schedule="0 4 * * 1",
        execution_timezone="UTC",
        description="Weekly DR drill (Mondays 04:00 UTC) on the newest snapshot"
        + (
            f", into the standby cluster {standby} of the clusters file (created as drill.*, removed after)."
            if standby
            else "."
        ),
        run_config=(
            {"ops": {"run_dr_drill": {"config": {"target_cluster": standby}}}} if standby else None
        ),
        default_status=schedule_status(),
    )
    drill_asset = dg.AssetSpec(
        DRILL_KEY,
        group_name=GROUP,
        description="The DR drill's verdicts, one observation per run of dr_drill: passed or not, the "
        "snapshot, the problems, and the DR drill incident (opened by a failed drill, resolved by a "
        "passing one), whose events dr_drill_incident_sensor notifies through notify_dr_drill.",
        kinds={"kafka"},
    )
    notify = notify_job(
        "notify_dr_drill",
        "Notify one DR drill incident event (open: a drill failed or could not run; remind-N: it failed again; "
        "resolve: a drill passed). Launched by dr_drill_incident_sensor with a run key per event.",
        "disaster_recovery",
    )
    sensor = build_incident_sensor(
        "dr_drill_incident_sensor",
        DRILL_KEY,
        notify,
        "Every 30 s (ECAP_INCIDENT_SENSOR_INTERVAL): the DR drill incident events that runs of dr_drill recorded on ecap_ops/dr_drill "
        "since the last tick, each notified by one run of notify_dr_drill (run key <incident id>:<event>: "
        "never twice). run_failure_alert_sensor leaves these drill runs alone.",
    )
    return dg.Definitions.merge(
        build_snapshot_defs(catalog, cluster),
        dg.Definitions(
            assets=[drill_asset],
            jobs=[dr_restore, dr_drill, notify],
            schedules=[dr_drill_schedule],
            sensors=[sensor],
        ),
    )
