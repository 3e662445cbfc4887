"""`ecap-ops lag`: consumer groups by topic, with lag in messages and seconds, and status."""

import sys
import time

import click

from ecap_ops.cli.app import (
    emit_json,
    fmt_int,
    guarded,
    main,
    output_option,
    pass_cli,
    render_table,
)
from ecap_ops.errors import ConfigError


def lag_table(statuses) -> str:
    """The aligned table people paste into an incident channel."""
    from ecap_ops.core.lag import STATUS_ORDER, format_seconds_short

    mark = {"extrapolated": "~", "at_least": ">=", "partial": ">="}
    rows = []
    for s in sorted(statuses, key=lambda s: (s.group, STATUS_ORDER.index(s.status), s.topic)):
        worst = s.worst_partitions(1)
        rows.append(
            [
                s.group,
                s.topic,
                s.status,
                fmt_int(s.lag_msgs),
                (mark.get(s.lag_seconds_kind, "") + format_seconds_short(s.lag_seconds))
                if s.lag_seconds is not None
                else "-",
                s.state,
                "-" if s.members is None else s.members,
                f"p{worst[0].partition} {fmt_int(worst[0].lag_msgs)}"
                if worst and worst[0].lag_msgs
                else "-",
            ]
        )
    return render_table(
        ["GROUP", "TOPIC", "STATUS", "LAG MSGS", "LAG TIME", "STATE", "MEMBERS", "WORST"],
        rows,
        right=(3, 4, 6),
    )


@main.command("lag")
@click.option(
    "--group",
    "-g",
    "groups",
    multiple=True,
    help="Only this group (repeatable; shell patterns like 'orders-*' allowed).",
)
@click.option(
    "--exclude", multiple=True, help="Leave out groups matching this pattern (repeatable)."
)
@click.option(
    "--watch",
    "-w",
    is_flag=True,
    help="Refresh every --interval seconds; lag in seconds is estimated once there is history.",
)
@click.option(
    "--interval",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.5),
    help="Seconds between refreshes with --watch.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="With --watch: stop after this many refreshes.",
)
@click.option(
    "--budget",
    default=20.0,
    show_default=True,
    type=click.FloatRange(min=1, max=50),
    help="Time budget of one measurement, seconds.",
)
@output_option
@pass_cli
@guarded
def lag_command(cli, groups, exclude, watch, interval, count, budget, output):
    """Consumer groups by topic: lag in messages and seconds, and status.

    Statuses, worst first: DATA_LOSS, STOPPED, STALLED, BEHIND_SLA, REWIND, LAGGING,
    NO_OFFSET, REBALANCING, OK, IDLE. Thresholds come from the catalog. Exit 1 when a
    group is critical (one-shot), 0 otherwise.
    """
    from ecap_ops.gateway.lag import LagScope
    from ecap_ops.services.lag import lag_tick

    if count is not None and not watch:
        raise ConfigError("--count: only meaningful with --watch")
    catalog = cli.catalog()
    scope = LagScope(include=tuple(groups), exclude=tuple(exclude))
    window = None
    n = 0
    try:
        while True:
            with cli.gateway() as gw:
                tick = lag_tick(gw, catalog, window, scope=scope, budget_s=budget)
            window = tick.evaluation.window
            n += 1
            obs = tick.measurement.observation
            if output == "json":
                data = tick.to_dict()
                data.pop("events", None)
                emit_json(data)
            else:
                if watch:
                    click.echo(
                        f"\n{time.strftime('%H:%M:%S')}  cluster {obs.cluster_id}  ({tick.measurement.seconds:.2f} s)"
                    )
                if tick.statuses:
                    click.echo(lag_table(tick.statuses))
                else:
                    click.echo(
                        "no consumer group with committed offsets"
                        + (" matching " + ", ".join(groups) if groups else "")
                    )
                for note in tick.evaluation.notes:
                    click.secho(f"note: {note}", fg="yellow", err=True)
            if not watch or (count is not None and n >= count):
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        return
    if not watch and any(s.severity == "critical" for s in tick.statuses):
        sys.exit(1)
