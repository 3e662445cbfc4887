"""The setup guide's remaining commands: delete-topic, reset-topics, consumer-groups."""

import sys
import time

import click

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
from ecap_ops.errors import EcapOpsError, KafkaRequestFailed


class DeleteRefused(EcapOpsError):
    """A deletion was refused by the safety rules; nothing was deleted."""


def _records(gw, meta: dict) -> int | None:
    parts = [
        (meta["name"], p["partition_index"])
        for p in meta["partitions"]
        if p.get("leader_id", -1) >= 0
    ]
    if len(parts) < len(meta["partitions"]):
        return None
    return sum(e - s for s, e in gw.offset_ranges(parts).values())


def _wait_gone(gw, names: list[str], timeout_s: float = 30.0) -> None:
    """Kafka deletes asynchronously: wait, bounded, until the topics are gone from metadata."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not gw.describe_topics(names):
            return
        time.sleep(0.3)
    raise KafkaRequestFailed(
        f"topics {', '.join(names)} were still listed {timeout_s:.0f} s after deletion; check the controller's log"
    )


@main.command("delete-topic")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.option(
    "--force", is_flag=True, help="Allow deleting a catalog topic or an internal (__*) topic."
)
@pass_cli
@guarded
def delete_topic(cli: CliContext, name, yes, force):
    """Delete one topic by its exact name. Refuses catalog and internal topics without --force."""
    catalog = cli.catalog()
    if name.startswith("__") and not force:
        raise DeleteRefused(
            f"{name} is named like one of Kafka's internal topics (__*); deleting it breaks the cluster. Refused (--force overrides); nothing was deleted"
        )
    with cli.gateway() as gw:
        meta = gw.describe_topics([name]).get(name)
        if meta is None:
            raise EcapOpsError(f"topic {name!r} does not exist on the cluster; nothing was deleted")
        internal = bool(meta.get("is_internal")) or name.startswith("__")
        spec = catalog.get(name)
        managed = spec is not None and spec.name == name
        if internal and not force:
            raise DeleteRefused(
                f"{name} is one of Kafka's internal topics; deleting it breaks the cluster. Refused (--force overrides); nothing was deleted"
            )
        if managed and not force:
            raise DeleteRefused(
                f"{name} is in the catalog ({spec.purpose}); producers and consumers depend on it. Refused (--force overrides, "
                "or `reset-topics` to recreate the catalog); nothing was deleted"
            )
        records = _records(gw, meta)
        click.echo(
            f"Topic {name}: {len(meta['partitions'])} partition(s), {fmt_int(records)} record(s)"
            + (" [catalog]" if managed else "")
            + (" [internal]" if internal else "")
        )
        if not yes:
            click.confirm(f"Delete topic {name} and all its records?", abort=True)
        gw.require(gw.delete_topics([name]), f"deleting {name}")
        _wait_gone(gw, [name])
    click.echo(f"Deleted topic {name}.")


@main.command("reset-topics")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
@pass_cli
@guarded
def reset_topics(cli: CliContext, yes):
    """Delete every catalog topic and create them again, empty, exactly as the catalog says."""
    from ecap_ops.core.plan import render_plan
    from ecap_ops.services.provisioning import apply_topics

    catalog = cli.catalog()
    with cli.gateway() as gw:
        metas = gw.describe_topics(catalog.names())
        rows = [
            [n, len(m["partitions"]), fmt_int(_records(gw, m))] for n, m in sorted(metas.items())
        ]
        if rows:
            click.echo("Will delete these catalog topics and all their records:")
            click.echo(render_table(["TOPIC", "PARTITIONS", "RECORDS"], rows, right=(1, 2)))
        else:
            click.echo("No catalog topic exists yet; nothing to delete.")
        missing = sorted(set(catalog.names()) - set(metas))
        click.echo(
            f"Then create all {len(catalog.names())} catalog topic(s)"
            + (f" (missing now: {', '.join(missing)})" if missing else "")
            + "."
        )
        if not yes:
            click.confirm("Delete and recreate the catalog topics?", abort=True)
        if metas:
            gw.require(gw.delete_topics(sorted(metas)), "deleting the catalog topics")
            _wait_gone(gw, sorted(metas))
        result = apply_topics(gw, catalog)
    click.echo(render_plan(result.plan))
    for s in result.steps:
        click.echo(f"  [{'ok  ' if s.ok else 'FAIL'}] {s.step} {s.topic}: {s.detail}")
    if not result.ok:
        sys.exit(1)
    click.echo(
        f"Reset {len(metas)} topic(s); the catalog's {len(catalog.names())} topic(s) exist and are empty."
    )


@main.command("consumer-groups")
@output_option
@pass_cli
@guarded
def consumer_groups_cmd(cli: CliContext, output):
    """Consumer groups: state, members, and lag per topic (end offset minus committed offset)."""
    from ecap_ops.services.groups import group_summaries

    with cli.gateway() as gw:
        groups = group_summaries(gw)
    if output == "json":
        emit_json({"groups": [g.to_dict() for g in groups]})
        return
    rows = []
    for g in groups:
        if not g.topics:
            rows.append(
                [g.group_id, g.state, "-" if g.members is None else g.members, "-", "-", "-"]
            )
        for t in g.topics:
            rows.append(
                [
                    g.group_id,
                    g.state,
                    "-" if g.members is None else g.members,
                    t.topic,
                    t.partitions,
                    fmt_int(t.lag),
                ]
            )
    click.echo(
        render_table(
            ["GROUP", "STATE", "MEMBERS", "TOPIC", "PARTITIONS", "LAG (msgs)"],
            rows,
            right=(2, 4, 5),
        )
    )
    click.echo(f"{len(groups)} group(s)")
