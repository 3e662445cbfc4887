"""Disaster-recovery commands: snapshot, restore, snapshot-diff, dr-drill."""

import sys

import click

from ecap_ops.cli.app import CliContext, emit_json, guarded, main, output_option, pass_cli


def _format_option(f):
    """`snapshot` takes --output PATH (the issue's name), so its format is --format."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="table for people, json (stable keys) for scripts.",
    )(f)


@main.command()
@click.option(
    "--output",
    "output_path",
    type=click.Path(dir_okay=False),
    help="Write the snapshot to this file instead of the snapshot directory [env ECAP_SNAPSHOT_DIR].",
)
@_format_option
@pass_cli
@guarded
def snapshot(cli: CliContext, output_path, fmt):
    """Take a verified snapshot of the cluster's metadata (written atomically)."""
    from ecap_ops.services.dr import take_snapshot

    catalog = cli.catalog()
    with cli.gateway() as gw:
        result = take_snapshot(gw, catalog, output=output_path)
    d = result.to_dict()
    if fmt == "json":
        emit_json(d)
        return
    click.echo(f"Snapshot written: {d['path']} ({d['size_bytes']:,} bytes)")
    click.echo(
        f"  cluster {d['cluster_id']}, {d['broker_count']} broker(s), taken {d['taken_at']} in {d['duration_ms']} ms"
    )
    click.echo(
        f"  {d['topics']} topic(s), {d['partitions']} partition(s), {d['groups']} group(s) with {d['group_offsets']} "
        f"committed offset(s), {d['acls']} ACL(s), {d['scram_users']} SCRAM user(s)"
    )
    click.echo(f"  sha256 {d['checksum']}")
    incomplete = [k for k, v in d["complete"].items() if not v]
    if incomplete:
        click.echo(f"  incomplete: {', '.join(incomplete)}")
    for n in d["notes"]:
        click.echo(f"  note: {n}")
    if d["pruned"]:
        click.echo(f"  removed {len(d['pruned'])} old snapshot(s) beyond the kept number")


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--execute", is_flag=True, help="Apply the plan. Without it, a dry run that changes nothing."
)
@click.option(
    "--include-offsets",
    is_flag=True,
    help="Also write consumer-group offsets (only into groups with no active members).",
)
@click.option(
    "--allow-other-cluster",
    is_flag=True,
    help="Allow restoring onto a cluster other than the snapshot's source.",
)
@click.option(
    "--topic",
    "topics",
    multiple=True,
    metavar="NAME",
    help="Restore only this topic (repeat it); default all.",
)
@click.option(
    "--replication-factor",
    type=int,
    help="Replication for every created topic (default: see docs/disaster-recovery.md).",
)
@output_option
@pass_cli
@guarded
def restore(
    cli: CliContext,
    path,
    execute,
    include_offsets,
    allow_other_cluster,
    topics,
    replication_factor,
    output,
):
    """Restore a snapshot: plan first, dry run unless --execute. Never deletes anything.

    Exit 0: nothing to do or applied; 2: dry run found changes; 1: refused, conflicts or error."""
    from ecap_ops.core.restore import RestoreOptions, render_restore_plan
    from ecap_ops.services.dr import load_snapshot
    from ecap_ops.services.dr import restore as do_restore

    snap = load_snapshot(path)
    catalog = cli.catalog()
    options = RestoreOptions(
        include_offsets=include_offsets,
        allow_other_cluster=allow_other_cluster,
        topics=tuple(topics),
        replication_factor=replication_factor,
    )
    with cli.gateway() as gw:
        result = do_restore(gw, catalog, snap, options, execute=execute)
    if output == "json":
        emit_json({**result.to_dict(), "dry_run": not execute})
    else:
        click.echo(render_restore_plan(result.plan))
        if not execute:
            click.echo("Dry run: nothing was changed. Add --execute to apply.")
        for s in result.steps:
            click.echo(f"  [{'ok  ' if s.ok else 'FAIL'}] {s.step} {s.subject}: {s.detail}")
        if result.steps:
            click.echo(
                f"Applied {sum(s.ok for s in result.steps)}/{len(result.steps)} steps in {result.seconds:.2f} s."
            )
    if not result.ok or result.plan.conflicts:
        sys.exit(1)
    if not execute and result.plan.has_changes:
        sys.exit(2)


@main.command("snapshot-diff")
@click.argument("a", type=click.Path(dir_okay=False))
@click.argument("b", type=click.Path(dir_okay=False))
@output_option
@guarded
def snapshot_diff(a, b, output):
    """What changed from snapshot A to snapshot B. Exit 0: no differences; 2: differences."""
    from ecap_ops.core.snapshot import render_diff
    from ecap_ops.services.dr import diff_files

    d = diff_files(a, b)
    if output == "json":
        emit_json(d.to_dict())
    else:
        click.echo(render_diff(d))
    sys.exit(0 if d.empty else 2)


@main.command("snapshot-verify")
@click.argument("path", type=click.Path(dir_okay=False))
@output_option
@guarded
def snapshot_verify(path, output):
    """Check a snapshot file (checksum, format version, structure) and summarize it."""
    from ecap_ops.services.dr import load_snapshot

    s = load_snapshot(path).summary()
    if output == "json":
        emit_json(s)
        return
    click.echo(
        f"OK: {path} verifies (sha256 {s['checksum']}, format version {s['format_version']}, ecap-ops {s['tool_version']})"
    )
    click.echo(
        f"  cluster {s['cluster_id']}, taken {s['taken_at']}: {s['topics']} topic(s), {s['groups']} group(s), {s['acls']} ACL(s), {s['scram_users']} SCRAM user(s)"
    )
    incomplete = [k for k, v in s["complete"].items() if not v]
    if incomplete:
        click.echo(f"  incomplete: {', '.join(incomplete)}")
    for n in s["notes"]:
        click.echo(f"  note: {n}")


@main.command("dr-drill")
@click.option(
    "--snapshot",
    "snapshot_path",
    type=click.Path(dir_okay=False),
    help="Snapshot to drill; default the newest in the snapshot directory.",
)
@click.option(
    "--target",
    "target_bootstrap",
    metavar="HOST:PORT[,...]",
    help="A scratch cluster to restore onto; default this cluster under --prefix.",
)
@click.option(
    "--prefix",
    "name_prefix",
    default="drill.",
    show_default=True,
    help="Create topics as <prefix><name>.",
)
@click.option(
    "--topic", "topics", multiple=True, metavar="NAME", help="Drill only this topic (repeat it)."
)
@output_option
@pass_cli
@guarded
def dr_drill(cli: CliContext, snapshot_path, target_bootstrap, name_prefix, topics, output):
    """Restore a snapshot onto a scratch target, check it topic by topic, remove what was created. Exit 1 on failure."""
    from ecap_ops.services.dr import drill_target, latest_snapshot, run_drill, snapshot_dir

    path = snapshot_path or latest_snapshot(snapshot_dir())
    target, same = drill_target(cli.settings(), target_bootstrap)
    with target:
        report = run_drill(
            target,
            cli.catalog(),
            path,
            name_prefix=name_prefix,
            topics=tuple(topics),
            same_cluster=same,
        )
    if output == "json":
        emit_json(report.to_dict())
    else:
        click.echo(report.render())
    sys.exit(0 if report.passed else 1)
