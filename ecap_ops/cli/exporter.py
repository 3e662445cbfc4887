"""`ecap-ops exporter`: consumer lag and cluster health as Prometheus metrics on /metrics."""

import logging
import signal
import threading

import click

from ecap_ops.cli.app import CliContext, FiniteRange, guarded, main, pass_cli

INTERVAL_RANGE = FiniteRange(min=1.0, max=86400.0)


@main.command("exporter")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=9308,
    show_default=True,
    help="TCP port to serve /metrics on.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0: every interface, as in a container).",
)
@click.option(
    "--interval",
    type=INTERVAL_RANGE,
    default=30.0,
    show_default=True,
    help="Seconds between consumer-lag measurements (the sensor's default is 30).",
)
@click.option(
    "--health-interval",
    type=INTERVAL_RANGE,
    default=60.0,
    show_default=True,
    help="Seconds between health checks.",
)
@click.option("--no-health", is_flag=True, help="Do not run the health check.")
@click.option(
    "--canary",
    is_flag=True,
    help="Include the health check's produce-then-consume canary (writes to ecap-ops-canary).",
)
@click.option(
    "--per-partition",
    is_flag=True,
    help="Also serve lag per partition (one series per group and partition: mind the cardinality).",
)
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
    "--budget",
    type=FiniteRange(min=1, max=50),
    default=20.0,
    show_default=True,
    envvar="ECAP_LAG_TICK_BUDGET_SECONDS",
    help="Time budget of one lag measurement, seconds (as the sensor's) [env ECAP_LAG_TICK_BUDGET_SECONDS].",
)
@pass_cli
@guarded
def exporter_command(
    cli: CliContext,
    port,
    host,
    interval,
    health_interval,
    no_health,
    canary,
    per_partition,
    groups,
    exclude,
    budget,
):
    """Serve consumer lag and cluster health as Prometheus metrics on http://HOST:PORT/metrics.

    Measures in the background, every --interval seconds, with the consumer-lag sensor's
    measurement and evaluation (statuses, thresholds from the catalog), and runs the health
    check every --health-interval seconds; a scrape serves the latest results and never
    waits for Kafka. When the cluster does not answer it keeps serving, with ecap_kafka_up
    0 and no per-group series. Metrics: docs/metrics.md. Ctrl-C or SIGTERM stops it.
    """
    from ecap_ops.gateway.lag import LagScope
    from ecap_ops.services.metrics import Exporter, ExporterConfig, build_registry, serve

    if not host.strip():
        raise click.BadParameter("must not be empty", param_hint="--host")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    # kafka-python reports every failed connection attempt; the exporter says it once per
    # measurement (and ecap_kafka_up says it to Prometheus). Kept out of the output by not
    # propagating, not by a level: the gateway reads those records to tell a TLS or login
    # failure from a broker that does not answer (gateway/errors.translate).
    kafka_log = logging.getLogger("kafka")
    kafka_propagate = kafka_log.propagate
    catalog = cli.catalog()
    settings = cli.settings()
    config = ExporterConfig(
        interval_s=interval,
        health_interval_s=None if no_health else health_interval,
        per_partition=per_partition,
        budget_s=budget,
        scope=LagScope(include=tuple(groups), exclude=tuple(exclude)),
        canary=canary,
    )
    exporter = Exporter(settings, catalog, config)
    registry = build_registry(exporter.state, catalog, per_partition)
    server, _thread = serve(host, port, registry)
    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(
        f"serving http://{shown_host}:{port}/metrics for {settings.bootstrap_servers} "
        f"(lag every {interval:g} s"
        + ("" if no_health else f", health every {health_interval:g} s")
        + "); Ctrl-C stops",
        err=True,
    )
    try:
        kafka_log.propagate = False
        exporter.start()
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        exporter.stop()
        server.shutdown()
        server.server_close()
        kafka_log.propagate = kafka_propagate
    click.echo("exporter stopped", err=True)
