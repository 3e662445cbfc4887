"""`load-test`: realistic keyed records at a steady rate, with throughput and latency."""

import click

from ecap_ops.cli.app import CliContext, emit_json, guarded, main, output_option, pass_cli


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
@click.argument("topic")
@click.option("--rate", default="140/s", show_default=True, help="Records per second, e.g. 140/s.")
@click.option("--duration", default="30s", show_default=True, help="How long, e.g. 30s, 5m.")
@click.option("--keys", default=1000, show_default=True, help="Distinct keys.")
@click.option(
    "--skew",
    default=0.0,
    show_default=True,
    help="Share of records on the first key (a hot key), 0..1.",
)
@output_option
@pass_cli
@guarded
def load_test_cmd(cli: CliContext, topic, rate, duration, keys, skew, output):
    """Write realistic keyed records that satisfy TOPIC's contract at --rate for --duration,
    then report throughput and produce latency (p50, p99, max). Stops before a record larger
    than the contract's max_record_bytes."""
    from ecap_ops.services.load_test import load_test

    r, d = _rate(rate), _duration(duration)
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
