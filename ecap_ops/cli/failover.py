"""`ecap-ops failover translate-offsets`: the failover runbook's step that moves consumer
groups to the DR standby at the offsets MirrorMaker 2's checkpoints give, plan-first."""

import sys

import click

from ecap_ops.cli.app import CliContext, emit_json, guarded, main, output_option, pass_cli


@main.group()
def failover():
    """Failing over to the DR standby (docs/disaster-recovery.md)."""


@failover.command("translate-offsets")
@click.option(
    "--from",
    "source",
    metavar="NAME",
    help="The source cluster (clusters file); default the primary.",
)
@click.option(
    "--to", "target", metavar="NAME", help="The standby (clusters file); default the standby."
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="G",
    help="Only this group (repeat it); default every checkpointed group.",
)
@click.option(
    "--execute", is_flag=True, help="Write the offsets. Without it, a dry run that changes nothing."
)
@output_option
@pass_cli
@guarded
def translate_offsets(cli: CliContext, source, target, groups, execute, output):
    """Translate consumer-group offsets to the standby with MirrorMaker 2's checkpoints and
    write them there (only into groups without active members; plan first, dry run unless
    --execute). Reads only the standby: works while the source is down.

    Exit 0: applied or nothing to write; 2: dry run found offsets to write; 1: refused or error."""
    from ecap_ops.catalog import load_catalog
    from ecap_ops.gateway import KafkaGateway
    from ecap_ops.services.failover import execute_failover, plan_failover
    from ecap_ops.services.mirror import resolve_flow

    for g in groups:
        if not g or len(g) > 249 or any(not ch.isprintable() for ch in g):
            raise click.UsageError(f"--group {g[:40]!r}: not a consumer group id")
    flow = resolve_flow(source, target)
    catalog = load_catalog(cli.catalog_path, env=flow.source.env)
    with KafkaGateway(flow.target.checked_settings()) as gw:
        fp = plan_failover(gw, catalog, flow.source.name, flow.name, list(groups) or None)
        write = None
        if execute and not fp.plan.blocked and fp.plan.actions:
            write = execute_failover(gw, fp)
    if output == "json":
        emit_json(
            {
                **fp.to_dict(),
                "dry_run": not execute,
                "executed": bool(write and write.executed),
                "ok": (write.ok if write else not fp.plan.blocked),
                "steps": [s.__dict__ for s in write.steps] if write else [],
                "verify_problems": list(write.verify_problems) if write else [],
            }
        )
    else:
        click.echo(fp.render())
        if write is not None:
            for s in write.steps:
                click.echo(f"  [{'ok  ' if s.ok else 'FAIL'}] {s.step} {s.subject}: {s.detail}")
            for p in write.verify_problems:
                click.echo(f"  verify: {p}")
        elif fp.plan.blocked:
            click.echo("Refused: nothing was changed.")
        elif not execute and fp.plan.actions:
            click.echo("Dry run: nothing was changed. Add --execute to write the offsets.")
    if fp.plan.blocked or (write is not None and not write.ok):
        sys.exit(1)
    if not execute and fp.plan.actions:
        sys.exit(2)
