"""Disaster-recovery commands: snapshot, restore, snapshot-diff, snapshot-verify, dr-drill.

Like every read command, each takes `-o/--output table|json` for its report. Files are
named by `--file PATH` (where `snapshot` writes) or by a PATH argument (the snapshot
`restore`, `snapshot-verify`, `snapshot-diff` and `dr-drill` read); `restore` and
`dr-drill` default to the newest snapshot in the snapshot directory.
"""

import sys

import click

from ecap_ops.cli.app import CliContext, emit_json, guarded, main, output_option, pass_cli
from ecap_ops.errors import ConfigError

FORMATS = ("table", "json")
SNAPSHOT_DIR_HELP = "$ECAP_SNAPSHOT_DIR, else $DAGSTER_HOME/snapshots, else ~/.ecap-ops/snapshots"


def _short(value: str, limit: int = 40) -> str:
    """A value as a person can read it in a message: quoted, escaped, at most `limit` characters."""
    text = repr(value[:limit])
    return text if len(value) <= limit else f"{text}..."


def _report_format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value in FORMATS:
        return value
    raise click.BadParameter(
        f"{_short(value)} is not a report format: --output takes table or json. "
        "To write the snapshot to a file, use --file PATH.",
        ctx=ctx,
        param=param,
    )


def _snapshot_output_option(f):
    """`-o/--output table|json` as on every read command, with a pointer to --file for a path."""
    return click.option(
        "--output",
        "-o",
        default="table",
        show_default=True,
        metavar="[table|json]",
        callback=_report_format,
        help="table for people, json (stable keys) for scripts.",
    )(f)


def _newest_snapshot(cluster: str | None):
    """The newest snapshot of `cluster` (--cluster; None: the single or home cluster) in
    its snapshot directory, said on stderr (stdout may be JSON)."""
    from ecap_ops.clusters import snapshot_dir_of
    from ecap_ops.services.dr import latest_snapshot

    directory = snapshot_dir_of(cluster)
    path = latest_snapshot(directory)
    click.echo(
        f"Using the newest snapshot in {directory}: {path.name} (give a PATH to use another)",
        err=True,
    )
    return path


@main.command()
@click.option(
    "--file",
    "file_path",
    type=click.Path(dir_okay=False),
    metavar="PATH",
    help=f"Write the snapshot to this file instead of the snapshot directory ({SNAPSHOT_DIR_HELP}).",
)
@_snapshot_output_option
@pass_cli
@guarded
def snapshot(cli: CliContext, file_path, output):
    """Take a verified snapshot of the cluster's metadata (written atomically)."""
    from ecap_ops.clusters import snapshot_dir_of
    from ecap_ops.services.dr import take_snapshot

    catalog = cli.catalog()
    with cli.gateway() as gw:
        result = take_snapshot(
            gw,
            catalog,
            output=file_path,
            directory=None if file_path else snapshot_dir_of(cli.cluster),
        )
    d = result.to_dict()
    if output == "json":
        emit_json(d)
        return
    click.echo(f"Snapshot written: {d['path']} ({d['size_bytes']:,} bytes)")
    click.echo(
        f"  cluster {d['cluster_id']}, {d['broker_count']} broker(s), taken {d['taken_at']} in {d['duration_ms']} ms"
    )
    click.echo(
        f"  {d['topics']} topic(s), {d['partitions']} partition(s), {d['groups']} group(s) with {d['group_offsets']} "
        f"committed offset(s), {d['acls']} ACL(s), {d['scram_users']} SCRAM user(s), "
        f"{d['quotas']} client quota(s)"
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
@click.argument("path", required=False, type=click.Path(dir_okay=False))
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
@click.option(
    "--password-env",
    "password_env",
    multiple=True,
    metavar="USER=VARIABLE",
    help="Re-create SCRAM user USER with the password in environment variable VARIABLE "
    "(repeat it). Default: the catalog's users.USER.password_env|password_file.",
)
@click.option(
    "--password-file",
    "password_file",
    multiple=True,
    metavar="USER=PATH",
    help="Re-create SCRAM user USER with the password in file PATH (repeat it).",
)
@click.option(
    "--no-access",
    is_flag=True,
    help="Restore topics (and offsets) only; leave ACLs, SCRAM users and quotas alone.",
)
@click.option(
    "--to-cluster",
    "--target-cluster",
    "to_cluster",
    metavar="NAME",
    help="Restore into this cluster of the clusters file (a DR standby), with its catalog "
    "overlay; naming it allows a cluster other than the snapshot's source.",
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
    password_env,
    password_file,
    no_access,
    to_cluster,
    output,
):
    """Restore snapshot PATH (default: the newest in the snapshot directory): plan first, dry
    run unless --execute. Never deletes anything. ACL bindings and client quotas come from
    the snapshot; SCRAM users are re-created with passwords supplied now (--password-env,
    --password-file, or the catalog's password_env), never from the snapshot: a user whose
    password is not supplied is reported and left out.

    Exit 0: nothing to do or applied; 2: dry run found changes; 1: refused, conflicts or error."""
    from ecap_ops.core.restore import RestoreOptions
    from ecap_ops.core.restore_report import render_restore_plan
    from ecap_ops.services.dr import load_snapshot, password_supplies
    from ecap_ops.services.dr import restore as do_restore

    envs = _user_pairs("--password-env", password_env, _env_name)
    files = _user_pairs("--password-file", password_file, _file_path)
    if no_access and (envs or files):
        raise ConfigError(
            "--no-access leaves SCRAM users alone: drop --password-env/--password-file"
        )
    target = None
    if to_cluster:
        from ecap_ops.clusters import cluster_config

        if cli.cluster is not None:
            raise ConfigError(
                "give the restore's target once: --to-cluster NAME (or the global --cluster), not both"
            )
        target = cluster_config(to_cluster)
        target.checked_settings()
    path = path or _newest_snapshot(cli.cluster)
    snap = load_snapshot(path)
    if target is not None:
        from ecap_ops.catalog import load_catalog

        catalog = load_catalog(cli.catalog_path, env=target.env)
    else:
        catalog = cli.catalog()
    options = RestoreOptions(
        include_offsets=include_offsets,
        allow_other_cluster=allow_other_cluster or target is not None,
        topics=tuple(topics),
        replication_factor=replication_factor,
        access=not no_access,
        passwords=() if no_access else password_supplies(catalog, envs, files),
    )
    if target is not None:
        from ecap_ops.gateway import KafkaGateway

        gateway = KafkaGateway(target.settings.with_overrides(**cli.overrides))
    else:
        gateway = cli.gateway()
    with gateway as gw:
        result = do_restore(gw, catalog, snap, options, execute=execute)
    if output == "json":
        emit_json(
            {
                **result.to_dict(),
                "dry_run": not execute,
                "snapshot": str(path),
                "target_cluster": target.name if target is not None else None,
                "recovery_seconds": round(result.seconds, 3) if result.executed else None,
            }
        )
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
            if result.ok:
                click.echo(
                    f"Recovery time {result.seconds:.2f} s (restore start to verified)"
                    + (f" into cluster {target.name}." if target is not None else ".")
                )
    if not result.ok or result.plan.conflicts:
        sys.exit(1)
    if not execute and result.plan.has_changes:
        sys.exit(2)


def _env_name(flag: str, user: str, value: str) -> str:
    from ecap_ops.catalog.access import ENV_NAME

    if not ENV_NAME.fullmatch(value):
        # Never echo it: a password given in place of a variable name must not be printed.
        raise ConfigError(
            f"{flag} {_short(user)}=...: after = comes the NAME of an environment variable "
            "(letters, digits and _, not starting with a digit) that holds the password, not "
            "the password itself (the value is not shown)"
        )
    return value


def _file_path(flag: str, user: str, value: str) -> str:
    if not value.strip() or "\x00" in value or len(value) > 4096:
        raise ConfigError(f"{flag} {_short(user)}=...: after = comes a file path")
    return value


def _user_pairs(flag: str, values, check) -> dict[str, str]:
    """USER=VALUE options as {user: value}; a malformed or repeated one is a usage error."""
    out: dict[str, str] = {}
    for raw in values:
        user, sep, value = raw.partition("=")
        if not sep or not user or not value:
            raise ConfigError(
                f"{flag}: expected USER=VALUE, e.g. {flag} fraud-detector="
                + (
                    "FRAUD_DETECTOR_PASSWORD"
                    if flag.endswith("env")
                    else "/run/secrets/fraud-detector"
                )
                + (f" (got {_short(user)}{'=...' if sep else ''})" if user else "")
            )
        if user in out:
            raise ConfigError(f"{flag} {_short(user)}: given twice; give each user once")
        out[user] = check(flag, user, value)
    return out


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
        f"  cluster {s['cluster_id']}, taken {s['taken_at']}: {s['topics']} topic(s), {s['groups']} group(s), {s['acls']} ACL(s), {s['scram_users']} SCRAM user(s), {s['quotas']} quota(s)"
    )
    incomplete = [k for k, v in s["complete"].items() if not v]
    if incomplete:
        click.echo(f"  incomplete: {', '.join(incomplete)}")
    for n in s["notes"]:
        click.echo(f"  note: {n}")


@main.command("dr-drill")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--snapshot",
    "snapshot_path",
    type=click.Path(dir_okay=False),
    hidden=True,
    help="The same as PATH (the older spelling).",
)
@click.option(
    "--target",
    "target_bootstrap",
    metavar="HOST:PORT[,...]",
    help="A scratch cluster to restore onto; default this cluster under --prefix.",
)
@click.option(
    "--to-cluster",
    "--target-cluster",
    "to_cluster",
    metavar="NAME",
    help="Drill into this cluster of the clusters file (a real DR standby): created under "
    "--prefix and removed after, so the standby is left as it was.",
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
def dr_drill(
    cli: CliContext, path, snapshot_path, target_bootstrap, to_cluster, name_prefix, topics, output
):
    """Restore snapshot PATH (default: the newest in the snapshot directory) onto a scratch
    target, check it topic by topic, remove what was created. Exit 1 on failure."""
    from ecap_ops.services.dr import drill_target, run_drill

    if path and snapshot_path and path != snapshot_path:
        raise click.UsageError("give the snapshot once: as PATH or as --snapshot, not both")
    if to_cluster and target_bootstrap:
        raise click.UsageError(
            "give the drill's target once: --to-cluster NAME or --target HOST:PORT"
        )
    if to_cluster:
        from ecap_ops.clusters import cluster_config

        cluster_config(to_cluster).checked_settings()  # an unknown name fails before anything
    path = path or snapshot_path or _newest_snapshot(cli.cluster)
    target, same = drill_target(cli.settings(), target_bootstrap, to_cluster)
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
