"""Topic commands of the setup guide: plan, create-topics, list-topics, describe-topic."""

import sys

import click

from ecap_ops.catalog.units import format_duration_ms, format_size
from ecap_ops.cli.app import (
    CliContext,
    emit_json,
    fmt_int,
    guarded,
    main,
    output_option,
    pass_cli,
    render_table,
)
from ecap_ops.core.scope import topic_label
from ecap_ops.core.state import CANARY_TOPIC

ACK_HELP = "Accept the destructive changes (retention decrease, cleanup.policy change) of this topic; repeat it, or 'all'."


def _ack(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset("*" if v == "all" else v for v in values)


@main.command()
@click.option("--acknowledge-destructive", "ack", multiple=True, metavar="TOPIC", help=ACK_HELP)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Save the plan (sealed; signed when ECAP_SIGNING_KEY is set) for `create-topics --plan-file`.",
)
@output_option
@pass_cli
@guarded
def plan(cli: CliContext, ack, out_path, output):
    """Show what create-topics would change, validated by the brokers.

    Exit 0: nothing to do; 2: changes that the brokers accept; 1: refused, rejected by the
    brokers, or error."""
    from ecap_ops.core.plan import render_plan
    from ecap_ops.services.provisioning import plan_topics, save_plan
    from ecap_ops.services.write import validate_plan

    catalog = cli.catalog()
    acks = _ack(ack)
    access = None
    with cli.gateway() as gw:
        p = plan_topics(gw, catalog, acks)
        rejected = validate_plan(gw, p) if p.actions and not p.blocked else []
        if catalog.access.declared:
            from ecap_ops.services.access import plan_catalog_access

            access = plan_catalog_access(gw, catalog)
            if not access.state.authorizer:
                access = None  # no authorizer: access is not managed (the health check says so)
    if out_path:
        save_plan(p, acks, out_path)
    data = {**p.to_dict(), "rejected_by_brokers": rejected}
    if access is not None:
        data["access"] = access.to_dict()
    if output == "json":
        emit_json(data)
    else:
        click.echo(render_plan(p))
        for r in rejected:
            click.echo(f"  ! the brokers would reject: {r}")
        if access is not None:
            click.echo(access.render())
            if access.plan.actions:
                click.echo("Apply the access changes with `ecap-ops access apply`.")
        if out_path:
            click.echo(
                f"Saved the plan to {out_path}: apply it with `create-topics --plan-file {out_path}`."
            )
    if p.blocked or rejected:
        sys.exit(1)
    access_drift = access is not None and access.plan.has_changes
    sys.exit(2 if p.has_changes or access_drift else 0)


@main.command("create-topics")
@click.option(
    "--dry-run", is_flag=True, help="Show the plan, validated by the brokers; change nothing."
)
@click.option("--acknowledge-destructive", "ack", multiple=True, metavar="TOPIC", help=ACK_HELP)
@click.option(
    "--plan-file",
    type=click.Path(dir_okay=False),
    help="Apply only if what would be done now is exactly this saved plan (from `plan --out`).",
)
@output_option
@pass_cli
@guarded
def create_topics(cli: CliContext, dry_run, ack, plan_file, output):
    """Create and reconcile the catalog's topics (plan, validate, snapshot, apply, verify). Never deletes a topic."""
    from ecap_ops.core.plan import render_plan
    from ecap_ops.services.provisioning import apply_topics, load_saved_plan

    catalog = cli.catalog()
    saved = load_saved_plan(plan_file) if plan_file else None
    with cli.gateway() as gw:
        result = apply_topics(gw, catalog, _ack(ack), saved_plan=saved, dry_run=dry_run)
    if output == "json":
        emit_json({**result.to_dict(), "dry_run": dry_run})
    else:
        click.echo(render_plan(result.plan))
        if dry_run:
            click.echo("Dry run: the brokers accept every step; nothing was changed.")
        out = result.render()
        if out:
            click.echo(out)
    if not result.ok:
        sys.exit(1)


@main.command("list-topics")
@click.option(
    "--all",
    "include_internal",
    is_flag=True,
    help="Include Kafka's internal topics (__consumer_offsets, ...).",
)
@output_option
@pass_cli
@guarded
def list_topics(cli: CliContext, include_internal, output):
    """List the cluster's topics, marking which the catalog manages."""
    catalog = cli.catalog()
    with cli.gateway() as gw:
        state = gw.read_cluster_state(with_data=False)
    rows = []
    for name in sorted(state.topics):
        t = state.topics[name]
        if t.internal and not include_internal:
            continue
        if name == CANARY_TOPIC and not include_internal:
            continue  # ecap-ops' own health canary: neither managed nor unmanaged
        label = topic_label(catalog, name, t.internal)
        rows.append(
            {
                "name": name,
                "partitions": t.partition_count,
                "replication_factor": t.replication_factor,
                "managed": label == "managed",
                "internal": t.internal,
                "catalog": label,
            }
        )
    if output == "json":
        emit_json({"cluster_id": state.cluster_id, "topics": rows})
        return
    click.echo(
        render_table(
            ["TOPIC", "PARTITIONS", "REPLICATION", "CATALOG"],
            [
                [
                    r["name"],
                    r["partitions"],
                    r["replication_factor"],
                    r["catalog"],
                ]
                for r in rows
            ],
            right=(1, 2),
        )
    )
    click.echo(f"{len(rows)} topic(s) on cluster {state.cluster_id}")


@main.command("describe-topic")
@click.argument("name")
@output_option
@pass_cli
@guarded
def describe_topic(cli: CliContext, name, output):
    """Partitions (leader, replicas, ISR, offsets), non-default configs and catalog drift of a topic."""
    from ecap_ops.services.topics import describe_topic as describe

    catalog = cli.catalog()
    with cli.gateway() as gw:
        d = describe(gw, catalog, name)
    if output == "json":
        emit_json(d)
        return
    click.echo(f"Topic {d['name']}  (id {d['topic_id']}, cluster {d['cluster_id']})")
    spec = d.get("catalog")
    if spec:
        click.echo(f"  purpose: {spec['purpose']}")
        click.echo(f"  partition key: {spec['partition_key'] or '-'}")
    elif d.get("catalog_status") == "outside scope":
        click.echo(f"  outside the catalog's {catalog.scope_summary()}: left alone")
    else:
        click.echo("  not in the catalog (unmanaged)")
    click.echo(
        f"  partitions: {len(d['partitions'])}, replication: {d['replication_factor']}, records: {fmt_int(d['records'])}"
    )
    click.echo("")
    click.echo(
        render_table(
            ["PARTITION", "LEADER", "REPLICAS", "ISR", "START", "END", "RECORDS"],
            [
                [
                    p["partition"],
                    p["leader"] if p["leader"] is not None else "OFFLINE",
                    ",".join(map(str, p["replicas"])),
                    ",".join(map(str, p["isr"])),
                    fmt_int(p["start_offset"]),
                    fmt_int(p["end_offset"]),
                    fmt_int(p["records"]),
                ]
                for p in d["partitions"]
            ],
            right=(0, 1, 4, 5, 6),
        )
    )
    click.echo("")
    click.echo("Non-default configs:")
    rows = []
    for key, c in sorted(d["configs"].items()):
        rows.append([key, _human(key, c["value"]), c["source"]])
    click.echo(render_table(["CONFIG", "VALUE", "SOURCE"], rows) if rows else "  (none)")
    if d.get("drift"):
        click.echo("")
        click.echo("Differs from the catalog:")
        for line in d["drift"]:
            click.echo(f"  - {line}")


def _human(key: str, value) -> str:
    try:
        if key.endswith(".ms"):
            return f"{value} ({format_duration_ms(int(value))})"
        if key.endswith(".bytes"):
            return f"{value} ({format_size(int(value))})"
    except (TypeError, ValueError):
        pass
    return str(value)
