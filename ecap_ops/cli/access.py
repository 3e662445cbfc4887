"""`ecap-ops access plan|apply`: the catalog's declared ACLs, SCRAM users and quotas."""

import sys

import click

from ecap_ops.cli.app import CliContext, emit_json, guarded, main, output_option, pass_cli


@main.group()
def access() -> None:
    """Access as code: the catalog's principals, ACLs, SCRAM users and quotas (docs/security.md)."""


@access.command("plan")
@output_option
@pass_cli
@guarded
def access_plan(cli: CliContext, output: str) -> None:
    """Show what `access apply` would change.

    Exit 0: the cluster's access matches the catalog (or it runs no authorizer); 2: changes
    (drift) to apply; 1: refused, invalid, or error."""
    from ecap_ops.services.access import plan_catalog_access
    from ecap_ops.services.write import validate_plan

    catalog = cli.catalog()
    with cli.gateway() as gw:
        ap = plan_catalog_access(gw, catalog)
        rejected = validate_plan(gw, ap.plan) if ap.plan.actions else []
    if output == "json":
        emit_json({**ap.to_dict(), "rejected": rejected})
    else:
        click.echo(ap.render())
        for r in rejected:
            click.echo(f"  ! would be refused: {r}")
    if ap.plan.blocked or rejected:
        sys.exit(1)
    sys.exit(2 if ap.plan.has_changes else 0)


@access.command("apply")
@click.option("--dry-run", is_flag=True, help="Plan and validate; change nothing.")
@output_option
@pass_cli
@guarded
def access_apply(cli: CliContext, dry_run: bool, output: str) -> None:
    """Apply the catalog's access: create missing bindings, SCRAM users (passwords read now
    from the variables or files the catalog names) and quotas; delete bindings only where
    the catalog owns them. Exit 0 when done and verified, 1 otherwise."""
    from ecap_ops.services.access import apply_catalog_access

    catalog = cli.catalog()
    with cli.gateway() as gw:
        ap, result = apply_catalog_access(gw, catalog, dry_run=dry_run)
    if output == "json":
        emit_json({**result.to_dict(), "access": ap.to_dict()})
    else:
        click.echo(ap.render())
        if dry_run:
            click.echo("Dry run: validated, nothing changed.")
        elif result.steps:
            click.echo(result.render())
        else:
            click.echo("Nothing to apply.")
    sys.exit(0 if result.ok else 1)
