"""The job `cleanup_test_topics` (daily): test topics observed run after run; those whose
end offsets have not moved across observations spanning the idle window are confirmed idle
and, only when `dry_run` is false, deleted within a per-run budget after a snapshot of
each. The observation history is the same file the CLI uses (ECAP_STATE_DIR)."""

import dagster as dg
from pydantic import Field

from ecap_ops.catalog.model import Catalog
from ecap_ops.orchestration.common import as_failure, md_table
from ecap_ops.orchestration.health import schedule_default_status
from ecap_ops.orchestration.resources import KafkaResource


class CleanupTestTopicsConfig(dg.Config):
    """Which topics count as test topics, how idle they must be, and whether to delete."""

    patterns: list[str] = Field(
        default=["test-*", "tmp-*", "*-test"],
        description="Shell-style name patterns (test-*, *-test); matched against the exact name.",
    )
    idle_days: float = Field(
        default=7.0,
        ge=0,
        le=36_500,
        description="The idle window in days: end offsets unchanged across this job's observations "
        "spanning it (record timestamps are set by producers and never trusted).",
    )
    idle: str | None = Field(
        default=None,
        description="The idle window as a duration (7d, 12h, 30m); overrides idle_days when set.",
    )
    max_deletions: int = Field(default=10, ge=0, description="The most topics deleted in one run.")
    dry_run: bool = Field(
        default=True, description="List the candidates with their evidence and delete nothing."
    )
    protected: list[str] = Field(
        default=[], description="Exact topic names never deleted (adds to ECAP_PROTECTED_TOPICS)."
    )
    delete_empty: bool = Field(
        default=False,
        description="Also delete confirmed-idle matching topics that hold no record.",
    )


def build_defs(catalog: Catalog) -> dg.Definitions:
    @dg.op(
        name="cleanup_idle_test_topics",
        description="Observe the test topics, confirm those whose end offsets have not moved across observations "
        "spanning the idle window with no consumer group active on them; unless dry_run, snapshot and delete "
        "them within the budget.",
        out=dg.Out(dict, description="The decisions, deletions and snapshot paths."),
    )
    def cleanup_idle_test_topics(
        context: dg.OpExecutionContext, config: CleanupTestTopicsConfig, kafka: KafkaResource
    ):
        from ecap_ops.core.cleanup import INVISIBLE_READERS, CleanupRules
        from ecap_ops.services.cleanup import (
            cleanup_test_topics,
            idle_window_ms,
            protected_from_env,
        )

        idle_ms = None
        if config.idle is not None:
            try:
                idle_ms = idle_window_ms(config.idle)
            except ValueError as exc:
                raise dg.Failure(description=f"config idle: {str(exc)[:200]}") from None
        rules = CleanupRules(
            patterns=tuple(config.patterns),
            idle_days=config.idle_days,
            max_deletions=config.max_deletions,
            protected=protected_from_env() | frozenset(config.protected),
            delete_empty=config.delete_empty,
            idle_ms=idle_ms,
        )
        with as_failure("test-topic cleanup"), kafka.gateway() as gw:
            result = cleanup_test_topics(gw, catalog, rules, execute=not config.dry_run)
        for w in result.warnings:
            context.log.warning(w)
        rows = []
        for d in result.decisions:
            action = result.action(d)
            ev = d.evidence
            groups = (
                ", ".join(
                    f"{g['group']} ({g['state']}, committed {g['committed']})"
                    for g in ev.get("groups") or []
                )
                or "none"
            )
            rows.append(
                [
                    d.topic,
                    action,
                    ev.get("unchanged_for") or "-",
                    ev.get("newest_record_timestamp") or "-",
                    ev.get("size") or "-",
                    groups,
                    "; ".join(d.reasons),
                ]
            )
            context.log.info(f"{d.topic}: {action}: {'; '.join(d.reasons)}")
        metadata = {
            "scope": dg.MetadataValue.text(result.scope or "every topic"),
            "decisions": dg.MetadataValue.md(
                md_table(
                    [
                        "topic",
                        "action",
                        "unchanged for",
                        "newest record ts (producer-set)",
                        "size",
                        "groups",
                        "reasons",
                    ],
                    rows,
                )
                if rows
                else "no topic matches the patterns"
            ),
            "dry_run": dg.MetadataValue.bool(result.dry_run),
            "matched": dg.MetadataValue.int(len(result.decisions)),
            "candidates": dg.MetadataValue.int(
                sum(d.status == "candidate" for d in result.decisions)
            ),
            "confirmed_idle": dg.MetadataValue.int(sum(d.confirmed for d in result.decisions)),
            "idle_rule": dg.MetadataValue.text(
                "idle = end offsets unchanged across this job's observations spanning the window, "
                "no group member on it, no committed offset moved; record timestamps are shown, never trusted"
            ),
            "invisible_readers": dg.MetadataValue.text(INVISIBLE_READERS),
            "state_file": dg.MetadataValue.path(result.state_file or "-"),
            "warnings": dg.MetadataValue.json(result.warnings),
            "deleted": dg.MetadataValue.int(len(result.deleted)),
            "snapshots": dg.MetadataValue.json(result.snapshots),
        }
        if not result.ok:
            raise dg.Failure(
                description="some deletions failed: "
                + "; ".join(f"{k}: {v}" for k, v in sorted(result.failed.items())),
                metadata=metadata,
            )
        return dg.Output(result.to_dict(), metadata=metadata)

    @dg.job(
        name="cleanup_test_topics",
        description="Delete idle test topics on evidence: name matches a pattern, not in the catalog, not internal or protected, "
        "end offsets unchanged across this job's observations spanning idle_days, no consumer group active on it; "
        "at most max_deletions a run, each snapshotted first. dry_run (the default) deletes nothing but still records observations. "
        "Readers without a group (assign mode) are invisible to Kafka's admin API.",
        tags={"ecap_ops/area": "cleanup"},
    )
    def cleanup_test_topics():
        cleanup_idle_test_topics()

    schedule = dg.ScheduleDefinition(
        name="cleanup_test_topics_schedule",
        job=cleanup_test_topics,
        cron_schedule="15 4 * * *",
        default_status=schedule_default_status(),
        description="Daily at 04:15: the test-topic cleanup with its default config (a dry run unless configured otherwise).",
    )
    return dg.Definitions(jobs=[cleanup_test_topics], schedules=[schedule])
