"""`ecap-ops mirror start|stop|status`: MirrorMaker 2 replicating the catalog's `mirror:`
topics from one named cluster to another (default: the clusters file's primary to its
standby), run locally from Kafka's jars in its own process group."""

import sys
from pathlib import Path

import click

from ecap_ops.cli.app import CliContext, emit_json, guarded, main, output_option, pass_cli


def _flow_options(f):
    f = click.option("--to", "target", metavar="NAME", help="The standby cluster (clusters file).")(
        f
    )
    return click.option(
        "--from", "source", metavar="NAME", help="The source cluster (clusters file)."
    )(f)


def _catalogs(cli: CliContext, flow):
    from ecap_ops.catalog import load_catalog

    return (
        load_catalog(cli.catalog_path, env=flow.source.env),
        load_catalog(cli.catalog_path, env=flow.target.env),
    )


@main.group()
def mirror():
    """MirrorMaker 2 replication of the catalog's mirrored topics to the DR standby."""


@mirror.command("start")
@_flow_options
@output_option
@pass_cli
@guarded
def mirror_start(cli: CliContext, source, target, output):
    """Start MirrorMaker 2 (dedicated mode) for the flow. Default: the clusters file's
    primary (--from) and standby (--to)."""
    from ecap_ops.services.mirror import resolve_flow, start_mirror

    flow = resolve_flow(source, target)
    src_cat, tgt_cat = _catalogs(cli, flow)
    d = start_mirror(flow, src_cat, tgt_cat)
    if output == "json":
        emit_json(d)
        return
    head = "Started" if d["started"] else "Already running:"
    click.echo(
        f"{head} MirrorMaker 2 {d['flow']} (pid {d['pid']}), topics: {', '.join(d['topics'])}"
    )
    click.echo(f"  properties {d['properties']}\n  log {d['log']}")


@mirror.command("stop")
@_flow_options
@output_option
@pass_cli
@guarded
def mirror_stop(cli: CliContext, source, target, output):
    """Stop MirrorMaker 2 for the flow. Default: the clusters file's primary (--from) and
    standby (--to)."""
    from ecap_ops.services.mirror import resolve_flow, stop_mirror

    flow = resolve_flow(source, target)
    d = stop_mirror(flow)
    if output == "json":
        emit_json(d)
        return
    click.echo(
        f"Stopped MirrorMaker 2 {d['flow']}"
        if d["stopped"]
        else f"MirrorMaker 2 {d['flow']} was not running"
    )


@mirror.command("status")
@_flow_options
@output_option
@pass_cli
@guarded
def mirror_status(cli: CliContext, source, target, output):
    """Whether MirrorMaker 2 runs, and the replication: each mirrored topic on the standby
    with the catalog's settings, its lag in records and seconds, the checkpoints. Exit 0:
    running and every topic OK; 1 otherwise."""
    from ecap_ops.gateway import KafkaGateway
    from ecap_ops.services.mirror import check_replication, mirror_process, resolve_flow

    flow = resolve_flow(source, target)
    src_cat, tgt_cat = _catalogs(cli, flow)
    proc = mirror_process(flow).status()
    with (
        KafkaGateway(flow.source.checked_settings()) as sgw,
        KafkaGateway(flow.target.checked_settings()) as tgw,
    ):
        report = check_replication(sgw, tgw, src_cat, tgt_cat, flow.name, flow.source.name)
    ok = proc["running"] and report.ok
    if output == "json":
        emit_json({"process": proc, "replication": report.to_dict(), "ok": ok})
    else:
        state = f"running (pid {proc['pid']})" if proc["running"] else "NOT running (locally)"
        click.echo(f"MirrorMaker 2 {flow.name}: {state}; replication {report.level}")
        for line in report.lines():
            click.echo(f"  {line}")
        cp = report.checkpoint_records
        click.echo(
            f"  checkpoints: {report.checkpoints_topic} holds {cp:,} record(s)"
            if cp is not None
            else f"  checkpoints: {report.checkpoints_topic} not there yet"
        )
        for n in report.notes:
            click.echo(f"  note: {n}")
    sys.exit(0 if ok else 1)


@mirror.command("config")
@_flow_options
@click.option(
    "--file",
    "file_path",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="PATH",
    help="Where to write mm2.properties (for MirrorMaker run elsewhere, e.g. the compose service).",
)
@pass_cli
@guarded
def mirror_config(cli: CliContext, source, target, file_path):
    """Write the flow's mm2.properties (no password in it: each cluster's JAAS line names its
    password variable, read by MirrorMaker from its environment) without starting anything."""
    from ecap_ops.services.dr import write_atomically
    from ecap_ops.services.mirror import flow_properties, resolve_flow

    flow = resolve_flow(source, target)
    src_cat, tgt_cat = _catalogs(cli, flow)
    write_atomically(Path(file_path), flow_properties(flow, src_cat, tgt_cat))
    click.echo(f"Wrote {file_path} for MirrorMaker 2 {flow.name}")
