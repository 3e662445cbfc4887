"""`ecap-ops import`: a catalog from a live cluster (docs/import.md)."""

import click

from ecap_ops.cli.app import CliContext, emit_json, guarded, main, output_option, pass_cli


@main.command("import")
@click.option(
    "--match",
    "match",
    multiple=True,
    metavar="PATTERN",
    help="Import only topics matching this shell-style pattern (team-a.*); repeat it. "
    "The patterns become the catalog's scope.",
)
@click.option(
    "--exclude",
    "exclude",
    multiple=True,
    metavar="PATTERN",
    help="Leave out topics matching this pattern; repeat it. Also part of the scope.",
)
@click.option(
    "--file",
    "-f",
    "path",
    type=click.Path(dir_okay=False),
    help="Write the catalog to this file (default: print it). Never over an existing file "
    "without --force.",
)
@click.option("--force", is_flag=True, help="Overwrite --file if it exists.")
@click.option(
    "--with-access",
    is_flag=True,
    help="Also import the cluster's ACL bindings (raw acls:) and SCRAM users (each with a "
    "placeholder password_env; passwords are never imported).",
)
@click.option(
    "--env",
    "env_name",
    help="The environment the catalog declares [default: the global --env / ECAP_ENV, else dev].",
)
@output_option
@pass_cli
@guarded
def import_cmd(cli: CliContext, match, exclude, path, force, with_access, env_name, output):
    """Write a catalog from the live cluster: every topic (or those matching --match) with
    its partitions, replication factor and topic-level overrides in the catalog's units.

    Only values set on the topic itself are imported, never broker or default values. The
    catalog is checked before it is written: it loads, and `plan` against the same cluster
    shows no change. Internal topics are left out."""
    from ecap_ops.services.import_catalog import import_catalog

    env = env_name or cli.catalog_env() or "dev"
    with cli.gateway() as gw:
        result = import_catalog(
            gw, env, tuple(match), tuple(exclude), path, force, with_access=with_access
        )
    if output == "json":
        doc = result.to_dict()
        if path is None:
            doc["catalog"] = result.text
        emit_json(doc)
        return
    if path is None:
        click.echo(result.text, nl=False)
        click.echo(result.render(), err=True)
    else:
        click.echo(result.render())
