"""`load-test`: realistic keyed records at a steady rate, with throughput and latency."""

import click

from ecap_ops.cli.app import (
    CliContext,
    FiniteRange,
    emit_json,
    guarded,
    main,
    output_option,
    pass_cli,
    render_table,
)


def _rate(text: str) -> float:
    from ecap_ops.services.load_test import LoadTestInvalid

    raw = text.strip().lower().removesuffix("/s")
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value == value or value in (float("inf"), float("-inf")):
        raise LoadTestInvalid(
            f"--rate must be records per second such as 140/s, got {text[:40]!r}; nothing was produced"
        )
    return value


def _duration(text: str) -> float:
    from ecap_ops.catalog.units import parse_duration_ms
    from ecap_ops.services.load_test import LoadTestInvalid

    try:
        return parse_duration_ms(text) / 1000.0
    except ValueError:
        raise LoadTestInvalid(
            f"--duration must be a duration such as 30s or 5m, got {text[:40]!r}; nothing was produced"
        ) from None


@main.command("load-test")
@click.argument("topic", required=False)
@click.option(
    "--profile",
    type=click.Choice(["guide"]),
    default=None,
    help="guide: every catalog topic at the setup guide's expected volume, all at once (no TOPIC, no --rate).",
)
@click.option(
    "--level",
    type=click.Choice(["top", "middle", "bottom"]),
    default="top",
    show_default=True,
    help="With --profile guide: where in each topic's expected band.",
)
@click.option("--rate", default=None, help="Records per second, e.g. 140/s.  [default: 140/s]")
@click.option("--duration", default="30s", show_default=True, help="How long, e.g. 30s, 5m.")
@click.option("--keys", default=1000, show_default=True, help="Distinct keys.")
@click.option(
    "--skew",
    default=0.0,
    show_default=True,
    type=FiniteRange(0, 1),
    help="Share of records on the first key (a hot key), 0..1.",
)
@output_option
@pass_cli
@guarded
def load_test_cmd(cli: CliContext, topic, profile, level, rate, duration, keys, skew, output):
    """Write realistic keyed records that satisfy TOPIC's contract at --rate for --duration,
    then report throughput and produce latency (p50, p99, max). Stops before a record larger
    than the contract's max_record_bytes.

    With --profile guide, every catalog topic with an expected_volume is driven at the
    setup guide's volume (the top of its band unless --level says otherwise) at the same
    time, and each topic and the total are reported."""
    from ecap_ops.services.load_test import LoadTestInvalid, load_test, load_test_guide

    if profile is None and topic is None:
        raise LoadTestInvalid(
            "name a TOPIC (load-test transactions) or use --profile guide for every topic; nothing was produced"
        )
    if profile is not None and topic is not None:
        raise LoadTestInvalid(
            f"--profile {profile} drives every catalog topic; drop TOPIC ({topic[:40]!r}) or the profile; nothing was produced"
        )
    if profile is not None and rate is not None:
        raise LoadTestInvalid(
            f"--profile {profile} takes each topic's rate from its expected_volume; drop --rate; nothing was produced"
        )
    d = _duration(duration)
    if profile is not None:
        catalog = cli.catalog()
        with cli.gateway() as gw:
            guide = load_test_guide(gw, catalog, d, level=level, keys=keys, skew=skew)
        _show_guide(guide, output)
        return
    r = _rate(rate if rate is not None else "140/s")
    catalog = cli.catalog()
    with cli.gateway() as gw:
        report = load_test(gw, catalog, topic, r, d, keys=keys, skew=skew)
    if output == "json":
        emit_json(report.to_dict())
        return
    click.echo(
        f"{report.topic}: {report.records_acked:,} of {report.records_sent:,} records acknowledged in "
        f"{report.seconds:.1f}s = {report.records_per_second:,.1f} records/s (asked {report.rate_asked:g}/s); "
        f"latency p50 {report.latency_ms_p50} ms, p99 {report.latency_ms_p99} ms, max {report.latency_ms_max} ms; "
        f"{report.errors} error(s); stopped by {report.stopped}"
    )
    if report.errors or report.records_acked < report.records_sent:
        raise SystemExit(1)


def _show_guide(guide, output: str) -> None:
    total = guide.total
    if output == "json":
        emit_json(guide.to_dict())
    else:
        rows = [
            [
                t.topic,
                f"{t.records_per_hour_asked:,}",
                f"{t.rate_asked:.4g}",
                f"{t.records_acked:,}/{t.records_sent:,}",
                f"{t.records_per_second:,.1f}",
                t.latency_ms_p50,
                t.latency_ms_p99,
                t.latency_ms_max,
                t.errors,
                t.stopped,
            ]
            for t in guide.topics
        ]
        rows.append(
            [
                "total",
                f"{total['records_per_hour_asked']:,}",
                f"{total['rate_asked']:.4g}",
                f"{total['records_acked']:,}/{total['records_sent']:,}",
                f"{total['records_per_second']:,.1f}",
                total["latency_ms_p50"],
                total["latency_ms_p99"],
                total["latency_ms_max"],
                total["errors"],
                "",
            ]
        )
        click.echo(
            f"load-test --profile guide: {len(guide.topics)} topic(s) at the {guide.level} of their "
            f"expected volume for {guide.duration_s:g}s, all at once"
        )
        click.echo(
            render_table(
                [
                    "topic",
                    "per hour asked",
                    "per s asked",
                    "acked/sent",
                    "records/s",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "errors",
                    "stopped by",
                ],
                rows,
                right=range(1, 9),
            )
        )
    if total["errors"] or total["records_acked"] < total["records_sent"]:
        raise SystemExit(1)
