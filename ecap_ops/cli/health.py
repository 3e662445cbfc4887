"""`health-check`: the cluster judged OK, WARN or CRIT, with exit code 0 or 1."""

import sys

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


@main.command("health-check")
@click.option(
    "--strict", is_flag=True, help="Exit 1 on warnings too, not only on critical findings."
)
@click.option(
    "--no-canary",
    is_flag=True,
    help="Skip the produce-then-consume canary on topic ecap-ops-canary.",
)
@click.option(
    "--canary-timeout",
    type=FiniteRange(0.1, 30),
    default=5.0,
    show_default=True,
    help="Longest wait in seconds for the canary's messages.",
)
@click.option(
    "--alert",
    is_flag=True,
    help="Also send an unhealthy report to the alert sinks (ECAP_ALERT_WEBHOOK_URL, ECAP_ALERT_JSONL).",
)
@output_option
@pass_cli
@guarded
def health_check(cli: CliContext, strict, no_canary, canary_timeout, alert, output):
    """Brokers, KRaft quorum, partitions, catalog topics, log directories, disk and a canary.

    Exit 0: healthy or only warnings; 1: a critical finding or an unreachable cluster
    (or any warning with --strict)."""
    from ecap_ops.core.health import report_rows
    from ecap_ops.services.health import health_alert, run_health_check

    catalog = cli.catalog()
    with cli.gateway() as gw:
        report = run_health_check(
            gw, catalog, canary=not no_canary, canary_timeout_s=canary_timeout
        )
    if alert:
        from ecap_ops.alerts import sinks_from_env

        a = health_alert(report)
        if a is not None:
            sinks_from_env().send(a)
    if output == "json":
        emit_json({**report.to_dict(), "exit_code": report.exit_code(strict)})
    else:
        click.echo(render_table(["STATUS", "CHECK", "SUBJECT", "FINDING"], report_rows(report)))
        m = report.metrics
        bits = [f"health {report.status}", f"cluster {report.cluster_id or 'unreachable'}"]
        if m.get("canary_latency_ms") is not None:
            bits.append(f"canary {m['canary_latency_ms']:.0f} ms")
        if m.get("under_replicated_partitions") is not None:
            bits.append(f"under-replicated {m['under_replicated_partitions']}")
        click.echo("; ".join(bits))
    sys.exit(report.exit_code(strict))
