"""`retention-audit` and `cleanup-test-topics`."""

import sys

import click

from ecap_ops.cli.app import (
    CliContext,
    FiniteRange,
    emit_json,
    guarded,
    main,
    output_option,
    pass_cli,
    render_table,
)


@main.command("retention-audit")
@click.option(
    "--interval-hours",
    type=FiniteRange(min=0),
    default=24.0,
    show_default=True,
    help="How often the audit runs: part of the grace before data counts as older than retention.",
)
@click.option("--all", "include_internal", is_flag=True, help="Include Kafka's internal topics.")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write the report as CSV.",
)
@click.option("--strict", is_flag=True, help="Exit 1 when any topic is flagged.")
@output_option
@pass_cli
@guarded
def retention_audit(cli: CliContext, interval_hours, include_internal, csv_path, strict, output):
    """Retention of every topic against the catalog and the real age and size of its data; disk forecast."""
    from ecap_ops.core.retention import REPORT_HEADERS, render_forecast, report_rows
    from ecap_ops.services.retention import run_retention_audit

    catalog = cli.catalog()
    with cli.gateway() as gw:
        report = run_retention_audit(
            gw,
            catalog,
            interval_ms=int(interval_hours * 3_600_000),
            include_internal=include_internal,
        )
    if csv_path:
        import pandas as pd

        pd.DataFrame([r.as_record() for r in report.rows]).to_csv(csv_path, index=False)
    if output == "json":
        emit_json(report.to_dict())
    else:
        click.echo(render_table(REPORT_HEADERS, report_rows(report), right=(5, 6)))
        click.echo(render_forecast(report.forecast, report.scope))
        click.echo(f"{len(report.rows)} topic(s), {len(report.flagged)} flagged")
    if strict and report.flagged:
        sys.exit(1)


def _idle_duration(ctx, param, value):
    """--idle: a duration such as 7d, 12h or 2s (the catalog's units)."""
    if value is None:
        return None
    from ecap_ops.services.cleanup import idle_window_ms

    try:
        return idle_window_ms(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)[:200]) from None


@main.command("cleanup-test-topics")
@click.option(
    "--execute",
    is_flag=True,
    help="Delete the confirmed-idle topics (default: a dry run that deletes nothing).",
)
@click.option(
    "--pattern",
    "patterns",
    multiple=True,
    metavar="GLOB",
    help="Test-topic name pattern; repeat it. Default: test-*, tmp-*, *-test.",
)
@click.option(
    "--idle-days",
    type=FiniteRange(min=0, max=36_500),
    default=None,
    help="The idle window in days [default: 7]: end offsets unchanged across this job's "
    "observations spanning it.",
)
@click.option(
    "--idle",
    "idle_ms",
    metavar="DURATION",
    callback=_idle_duration,
    help="The idle window as a duration (7d, 12h, 30m, 2s); instead of --idle-days.",
)
@click.option(
    "--max-deletions",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="The most topics deleted in one run.",
)
@click.option(
    "--protect",
    "protect",
    multiple=True,
    metavar="TOPIC",
    help="An exact topic name never deleted; repeat it (adds to ECAP_PROTECTED_TOPICS).",
)
@click.option(
    "--delete-empty",
    is_flag=True,
    help="Also delete confirmed-idle matching topics that hold no record.",
)
@click.option(
    "--snapshot-dir",
    type=click.Path(file_okay=False),
    help="Where each topic's metadata is saved before deletion [env ECAP_SNAPSHOT_DIR].",
)
@output_option
@pass_cli
@guarded
def cleanup_test_topics_cmd(
    cli: CliContext,
    execute,
    patterns,
    idle_days,
    idle_ms,
    max_deletions,
    protect,
    delete_empty,
    snapshot_dir,
    output,
):
    """List (and with --execute delete) idle test topics, each with its evidence.

    A topic is idle when its end offsets have not moved across this command's own
    observations spanning the idle window (kept in ECAP_STATE_DIR, shared with the Dagster
    job); the first run only marks candidates. Record timestamps are shown, never trusted.
    """
    from pathlib import Path

    from ecap_ops.core.cleanup import DEFAULT_PATTERNS, CleanupRules
    from ecap_ops.services.cleanup import cleanup_test_topics, protected_from_env

    if idle_days is not None and idle_ms is not None:
        raise click.UsageError("give --idle or --idle-days, not both")
    rules = CleanupRules(
        patterns=tuple(patterns) or DEFAULT_PATTERNS,
        idle_days=7.0 if idle_days is None else idle_days,
        max_deletions=max_deletions,
        protected=protected_from_env() | frozenset(protect),
        delete_empty=delete_empty,
        idle_ms=idle_ms,
    )
    catalog = cli.catalog()
    with cli.gateway() as gw:
        result = cleanup_test_topics(
            gw,
            catalog,
            rules,
            execute=execute,
            snapshots=Path(snapshot_dir) if snapshot_dir else None,
        )
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    if output == "json":
        emit_json(result.to_dict())
    else:
        _print_cleanup(result)
    if not result.ok:
        sys.exit(1)


def _print_cleanup(result) -> None:
    """The cleanup's decisions as a table, then what was kept, what failed and what it means."""
    from pathlib import Path

    from ecap_ops.core.cleanup import INVISIBLE_READERS

    rows = []
    for d in result.decisions:
        action = result.action(d)
        ev = d.evidence
        rows.append(
            [
                d.topic,
                action.upper() if action in ("delete", "deleted") else action,
                ev.get("unchanged_for") or "-",
                ev.get("newest_record_timestamp") or "-",
                ev.get("size") or "-",
                len(ev.get("groups") or []),
                "; ".join(d.reasons),
            ]
        )
    headers = [
        "TOPIC",
        "ACTION",
        "UNCHANGED FOR",
        "NEWEST RECORD TS (producer-set)",
        "SIZE",
        "GROUPS",
        "REASONS",
    ]
    click.echo(render_table(headers, rows) if rows else "No topic matches the patterns.")
    if result.scope:
        click.echo(result.scope)
    for topic, why in sorted(result.skipped.items()):
        click.echo(f"kept {topic}: {why}")
    for topic, why in sorted(result.failed.items()):
        click.echo(f"FAILED {topic}: {why}", err=True)
    click.echo(
        "Idle means: end offsets unchanged across this job's observations spanning the "
        "window (history in " + str(result.state_file) + "); record timestamps are set by "
        "producers and shown only."
    )
    click.echo("Note: " + INVISIBLE_READERS)
    if result.dry_run:
        click.echo(
            f"Dry run: {len(result.to_delete)} topic(s) would be deleted; --execute deletes them."
        )
    else:
        dirs = sorted(set(str(Path(p).parent) for p in result.snapshots.values()))
        click.echo(
            f"Deleted {len(result.deleted)} topic(s); snapshots in {', '.join(dirs) or '-'}."
        )
