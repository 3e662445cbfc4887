"""The setup guide's remaining commands: delete-topic, reset-topics, consumer-groups."""

import sys

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
from ecap_ops.errors import PlanRefused


def _confirm_plan(p, yes: bool, question: str, title: str) -> None:
    from ecap_ops.core.plan import render_plan

    if p.actions:
        click.echo(title)
    click.echo(render_plan(p))
    if p.blocked:
        raise PlanRefused(
            "refused, so nothing was changed:\n" + "\n".join(f"  - {r.message}" for r in p.refusals)
        )
    if p.actions and not yes:
        click.confirm(question, abort=True)


def _finish(result) -> None:
    out = result.render()
    if out:
        click.echo(out)
    if not result.ok:
        sys.exit(1)


@main.command("delete-topic")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.option(
    "--force", is_flag=True, help="Allow deleting a catalog topic or an internal (__*) topic."
)
@pass_cli
@guarded
def delete_topic(cli: CliContext, name, yes, force):
    """Delete one topic by its exact name (snapshotted first). Refuses catalog and internal topics without --force."""
    from ecap_ops.core.changes import make_delete_plan
    from ecap_ops.services.write import execute_plan

    catalog = cli.catalog()
    with cli.gateway() as gw:
        state = gw.read_cluster_state([name], with_data=False)
        topic = state.topics.get(name)
        ranges = None
        if topic is not None and all(p.leader is not None for p in topic.partitions):
            ranges = gw.offset_ranges([(name, p.partition) for p in topic.partitions])
        p = make_delete_plan(catalog, state, [name], force=force, ranges=ranges)
        _confirm_plan(
            p, yes, f"Delete topic {name} and all its records?", "Will delete this topic:"
        )
        result = execute_plan(gw, p, "delete-topic")
    _finish(result)
    click.echo(f"Deleted topic {name}.")


@main.command("reset-topics")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
@pass_cli
@guarded
def reset_topics(cli: CliContext, yes):
    """Delete every catalog topic and create it again, empty, exactly as the catalog says.

    Each re-creation is validated by the brokers before its topic is deleted, and the
    topics are snapshotted first (`ecap-ops restore FILE` puts their metadata back)."""
    from ecap_ops.core.changes import make_reset_plan
    from ecap_ops.services.write import execute_plan, validate_plan

    catalog = cli.catalog()
    with cli.gateway() as gw:
        state = gw.read_cluster_state(catalog.names(), with_data=False)
        parts = [
            (n, p.partition)
            for n in catalog.names()
            if n in state.topics
            for p in state.topics[n].partitions
            if p.leader is not None
        ]
        ranges = gw.offset_ranges(parts) if parts else {}
        p = make_reset_plan(catalog, state, ranges)
        rejected = validate_plan(gw, p) if not p.blocked else []
        if rejected:
            click.echo("\n".join(f"  ! the brokers would reject: {r}" for r in rejected))
            raise PlanRefused(
                "the brokers reject re-creating the catalog's topics, so nothing was deleted:\n"
                + "\n".join(f"  - {r}" for r in rejected)
            )
        _confirm_plan(
            p,
            yes,
            "Delete and recreate the catalog topics?",
            "Will delete these catalog topics and all their records, then create them again "
            "(each re-creation already validated by the brokers):",
        )
        result = execute_plan(gw, p, "reset-topics", validated=True)
    _finish(result)
    deleted = sum(1 for a in p.actions if a.kind.value == "delete_topic")
    click.echo(
        f"Reset {deleted} topic(s); the catalog's {len(catalog.names())} topic(s) exist and are empty."
    )


@main.command("consumer-groups")
@output_option
@pass_cli
@guarded
def consumer_groups_cmd(cli: CliContext, output):
    """Consumer groups of every type (classic, consumer, share, streams): state, members, and
    lag per topic. A group whose lag could not be read is shown with the reason.

    Lag is the one formula `ecap-ops lag` and the lag sensor use: end offset (last stable
    offset on transactional topics) minus the committed offset, or minus the log start when
    retention deleted records the group never read (those are counted as lost). A share
    group commits no offsets: its lag counts from its share-partition start offset.

    LAG TIME is the age of the oldest unconsumed record, read from the record itself (its
    CreateTime, set by the producer, or LogAppendTime, set by the broker: said per topic);
    `-` when it could not be read, `>=` for a lower bound."""
    from ecap_ops.services.groups import group_summaries

    catalog = cli.catalog()
    transactional = [t.name for t in catalog.topics if t.transactional]
    with cli.gateway() as gw:
        groups = group_summaries(gw, transactional=transactional)
    if output == "json":
        emit_json({"groups": [g.to_dict() for g in groups]})
        return
    rows = []
    for g in groups:
        members = "-" if g.members is None else g.members
        head = [g.group_id, g.group_type, g.state, members]
        if not g.topics:
            rows.append([*head, "-", "-", "-", "-"])
        for t in g.topics:
            # LAG (msgs) stays the last column, as scripts read it.
            rows.append([*head, t.topic, t.partitions, _lag_time(t), fmt_int(t.lag)])
    click.echo(
        render_table(
            ["GROUP", "TYPE", "STATE", "MEMBERS", "TOPIC", "PARTITIONS", "LAG TIME", "LAG (msgs)"],
            rows,
            right=(3, 5, 6, 7),
        )
    )
    click.echo(f"{len(groups)} group(s)")
    for g in groups:
        if g.error:
            click.echo(f"group {g.group_id} ({g.group_type}): {g.error}")
    for g in groups:
        for t in g.topics:
            if t.lost:
                click.secho(
                    f"note: group {g.group_id} on {t.topic}: {fmt_int(t.lost)} record(s) deleted "
                    "by retention before the group read them (not counted as lag)",
                    fg="yellow",
                    err=True,
                )
    stamped = {t.topic: t.timestamp_type for g in groups for t in g.topics if t.timestamp_type}
    for ttype, meaning in (
        ("CreateTime", "the producer's clock: a skewed or backfilling producer skews LAG TIME"),
        ("LogAppendTime", "the broker's clock when it wrote the record"),
    ):
        topics = sorted(t for t, x in stamped.items() if x == ttype)
        if topics:
            click.secho(f"note: {ttype} ({meaning}): {', '.join(topics)}", fg="yellow", err=True)


def _lag_time(t) -> str:
    from ecap_ops.core.lag_measures import SECONDS_MARK, format_seconds_short

    if t.lag_seconds is None:
        return "-"
    return SECONDS_MARK.get(t.lag_seconds_kind, "") + format_seconds_short(t.lag_seconds)
