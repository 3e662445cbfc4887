"""`ecap-ops lag`: consumer groups by topic, with lag in messages and seconds, and status."""

import functools
import gc
import json
import sys
import time
from typing import Any

import click

from ecap_ops.cli.app import (
    FiniteRange,
    fmt_int,
    guarded,
    main,
    output_option,
    pass_cli,
    render_table,
)
from ecap_ops.errors import ConfigError

_PLAIN = frozenset({str, int, float, bool, type(None)})  # written as they are by any encoder


def json_text(data: Any) -> str:
    """Exactly `json.dumps(data, indent=2, sort_keys=True, default=str)` (what `emit_json`
    prints), several times faster on a 1,000-group tick (10 MB of JSON).

    Python's indenting encoder is pure Python: one generator step per token. Here Python
    only walks the nesting; the C encoder writes, in one call each, every container of plain
    values, every run of plain values inside a dict and every list of such flat dicts (the
    partitions of a status), its item separator carrying the line break and indentation. A
    raw line break never occurs inside a JSON string, so the layout can be fixed by text."""
    out: list[str] = []
    _write_json(data, 0, out)
    return "".join(out)


@functools.cache
def _newline(depth: int) -> str:
    return "\n" + "  " * depth


@functools.cache
def _flat_encoder(depth: int):
    """Encodes a value; a container's items come one per line at `depth + 1` (without the line
    break after its opening bracket and before its closing one)."""
    sep = "," + _newline(depth + 1)
    return json.JSONEncoder(sort_keys=True, separators=(sep, ": "), default=str).encode


def _flat(values) -> bool:
    return _PLAIN.issuperset(map(type, values))


def _write_json(x: Any, depth: int, out: list[str]) -> None:
    encode = _flat_encoder(depth)
    is_dict = isinstance(x, dict)
    if not (is_dict or isinstance(x, (list, tuple))) or not x:
        out.append(encode(x))  # a plain value, [] or {}
        return
    inner = _newline(depth + 1)
    if is_dict and not all(type(k) is str for k in x):
        # Keys other than strings: leave their conversion and order to the standard encoder.
        text = json.dumps(x, indent=2, sort_keys=True, default=str)
        out.append(text.replace("\n", _newline(depth)))
        return
    if _flat(x.values() if is_dict else x):
        text = encode(x)
        out.append(text[0] + inner + text[1:-1] + _newline(depth) + text[-1])
        return
    if not is_dict:
        if all(type(v) is dict and v and _flat(v.values()) for v in x):
            # Flat dicts, encoded with their own item separator: the only separators that
            # follow a dict's "}" and precede a "{" are the list's; give them the list's depth.
            item = _newline(depth + 2)
            text = _flat_encoder(depth + 1)(x)[2:-2]
            text = text.replace("}," + item + "{", inner + "}," + inner + "{" + item)
            out.append("[" + inner + "{" + item + text + inner + "}" + _newline(depth) + "]")
            return
        out.append("[")
        for i, v in enumerate(x):
            out.append(("," if i else "") + inner)
            _write_json(v, depth + 1, out)
        out.append(_newline(depth) + "]")
        return
    out.append("{")
    run: dict[str, Any] = {}  # consecutive plain items, written in one call
    sep = ""
    for k in sorted(x):
        v = x[k]
        if type(v) in _PLAIN:
            run[k] = v
            continue
        if run:
            out.append(sep + inner + encode(run)[1:-1])
            run, sep = {}, ","
        out.append(sep + inner + json.encoder.encode_basestring_ascii(k) + ": ")
        sep = ","
        _write_json(v, depth + 1, out)
    if run:
        out.append(sep + inner + encode(run)[1:-1])
    out.append(_newline(depth) + "}")


LAG_HEADERS = ("GROUP", "TOPIC", "STATUS", "LAG MSGS", "LAG TIME", "STATE", "MEMBERS", "WORST")


def lag_table(statuses, types: dict[str, str] | None = None) -> str:
    """The aligned table people paste into an incident channel: a row per group and topic,
    by group, worst status first. With `types` (group -> group type), a last TYPE column."""
    from ecap_ops.core.lag import format_seconds_short, status_rank, worst_first
    from ecap_ops.core.lag_measures import SECONDS_MARK as _MARK

    rows = []
    for s in sorted(statuses, key=lambda s: (s.group, status_rank(s.status), s.topic)):
        worst = min(s.partitions, key=worst_first) if s.partitions else None
        rows.append(
            (
                s.group,
                s.topic,
                s.status,
                fmt_int(s.lag_msgs),
                (_MARK.get(s.lag_seconds_kind, "") + format_seconds_short(s.lag_seconds))
                if s.lag_seconds is not None
                else "-",
                s.state,
                "-" if s.members is None else str(s.members),
                f"p{worst.partition} {fmt_int(worst.lag_msgs)}"
                if worst is not None and worst.lag_msgs
                else "-",
                *((types.get(s.group, "?"),) if types is not None else ()),
            )
        )
    headers = LAG_HEADERS if types is None else (*LAG_HEADERS, "TYPE")
    return render_table(headers, rows, right=(3, 4, 6))


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
    help="Refresh every --interval seconds, judging statuses over the refreshes.",
)
@click.option(
    "--interval",
    default=10.0,
    show_default=True,
    type=FiniteRange(min=0.5),
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
    type=FiniteRange(min=1, max=50),
    help="Time budget of one measurement, seconds.",
)
@output_option
@pass_cli
@guarded
def lag_command(cli, groups, exclude, watch, interval, count, budget, output):
    """Consumer groups by topic: lag in messages and seconds, and status.

    Statuses, worst first: DATA_LOSS, STOPPED, STALLED, BEHIND_SLA, REWIND, LAGGING,
    NO_OFFSET, REBALANCING, OK, IDLE. Thresholds come from the catalog. Without --watch the
    status is from one observation: STALLED, REWIND, LAGGING, IDLE (and STOPPED of a group
    that has members) need history, which the consumer_lag_sensor keeps (or use --watch).
    Exit 1 when a group is critical (one-shot), 0 otherwise.

    LAG TIME is the age of the oldest unconsumed record, read from the record itself from
    the first look (per topic its CreateTime, the producer's clock, or LogAppendTime, the
    broker's: see the notes, and `timestamp_types` in JSON). `~` marks an estimate from the
    end offsets over time (when the record could not be read), `>=` a lower bound.
    """
    LagScope, gc_paused, lag_tick = _tick_functions()
    from ecap_ops.services.lag import is_critical, one_look

    if count is not None and not watch:
        raise ConfigError("--count: only meaningful with --watch")
    catalog = cli.catalog()
    scope = LagScope(include=tuple(groups), exclude=tuple(exclude))
    window = None
    n = 0
    critical = False
    try:
        while True:
            # The collector stays paused while the tick is shown and until it is dropped: a
            # 1,000-group tick is some 300,000 objects that it would otherwise walk once more
            # for nothing (the window, all the next tick needs, is a fraction of them).
            with gc_paused():
                with cli.gateway() as gw:
                    tick = lag_tick(gw, catalog, window, scope=scope, budget_s=budget)
                n += 1
                # One look judges this tick alone; --watch judges over its ticks.
                statuses = tick.statuses if watch else one_look(tick.statuses, catalog)
                _show(tick, statuses, output, watch, groups, n)
                critical = is_critical(statuses)
                window = tick.evaluation.window if watch else None
                del tick, statuses
            if not watch or (count is not None and n >= count):
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        return
    if not watch and critical:
        sys.exit(1)


def _show(tick, statuses, output: str, watch: bool, groups, ticks: int) -> None:
    from ecap_ops.core.lag import one_look_note

    obs = tick.measurement.observation
    if output == "json":
        data = tick.to_dict()
        data.pop("events", None)
        data["groups"] = group_rows(tick.measurement)
        if not watch:
            data["statuses"] = [s.to_dict() for s in statuses]
        data["ticks"] = ticks
        data["one_look"] = not watch
        click.echo(json_text(data))
        return
    if watch:
        click.echo(
            f"\n{time.strftime('%H:%M:%S')}  cluster {obs.cluster_id}  ({tick.measurement.seconds:.2f} s)"
        )
    if statuses:
        types = {g: x.group_type for g, x in tick.measurement.groups.items()}
        click.echo(lag_table(statuses, types))
    else:
        click.echo(
            "no consumer group with committed offsets"
            + (" matching " + ", ".join(groups) if groups else "")
        )
    for line in groups_without_lag(tick.measurement, statuses):
        click.echo(line)
    for note in tick.evaluation.notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    if statuses and (not watch or ticks == 1):
        for line in timestamp_type_notes(statuses):
            click.secho(f"note: {line}", fg="yellow", err=True)
    if statuses and (not watch or ticks == 1):
        click.secho(f"note: {one_look_note()}", fg="yellow", err=True)


def timestamp_type_notes(statuses) -> list[str]:
    """Which topics' LAG TIME comes from the producer's clock and which from the broker's."""
    stamped = {s.topic: s.timestamp_type for s in statuses if s.timestamp_type}
    out = []
    for ttype, meaning in (
        (
            "CreateTime",
            "LAG TIME by the producer's clock (a skewed or backfilling producer skews it)",
        ),
        ("LogAppendTime", "LAG TIME by the broker's clock when it wrote the record"),
        ("mixed", "partitions stamped differently (the topic's setting changed)"),
    ):
        topics = sorted(t for t, x in stamped.items() if x == ttype)
        if topics:
            out.append(f"{ttype}: {meaning}: {', '.join(topics)}")
    return out


def group_rows(measurement) -> list[dict]:
    """Every group in scope with its type and state, and whether its lag was read (the
    reason when not): no group is left out because its lag could not be read."""
    measured = measurement.observation.groups
    return [
        {
            "group": g,
            "type": x.group_type,
            "state": measured[g].state if g in measured else x.state,
            "members": measured[g].members if g in measured else None,
            "lag_read": g in measured,
            "reason": measurement.unmeasured.get(g),
        }
        for g, x in sorted(measurement.groups.items())
    ]


def groups_without_lag(measurement, statuses) -> list[str]:
    """A line for each group in scope that has no row in the table: its type and state, and
    why it has no lag (not read, with the reason; or nothing committed yet)."""
    shown = {s.group for s in statuses}
    lines = []
    for row in group_rows(measurement):
        if row["group"] in shown:
            continue
        why = (
            f"lag not read: {row['reason']}"
            if not row["lag_read"]
            else "no committed offsets (or share-partition start offsets) yet"
        )
        lines.append(f"group {row['group']} ({row['type']}, {row['state']}): {why}")
    return lines


def _tick_functions():
    """(LagScope, gc_paused, lag_tick), imported with the cyclic garbage collector paused:
    kafka-python builds its protocol classes as it is imported, a few hundred thousand
    objects the collector would otherwise walk again and again (a fifth of the import)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        from ecap_ops.gateway.lag import LagScope
        from ecap_ops.services.lag import gc_paused, lag_tick
    finally:
        if collecting:
            gc.enable()
    return LagScope, gc_paused, lag_tick
