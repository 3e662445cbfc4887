"""`ecap-ops broker start|stop|status|fetch` (a local Apache Kafka for development) and
`ecap-ops kafka-cli TOOL ARGS...` (Kafka's own tools, with our connection settings)."""

import sys
from pathlib import Path

import click

from ecap_ops.cli.app import (
    CliContext,
    emit_json,
    guarded,
    main,
    output_option,
    pass_cli,
    render_table,
)
from ecap_ops.errors import LocalKafkaError


def _default_data_dir() -> Path:
    """<cache>/broker, the data dir used when --data-dir is not given."""
    from ecap_ops.localkafka import cache_dir

    return cache_dir() / "broker"


def _jars_cached() -> bool:
    """True when this Kafka version's jars are already in the cache (no fetch needed)."""
    from ecap_ops.localkafka.jars import _is_complete, kafka_home

    return _is_complete(kafka_home() / "lib")


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the cluster keeps its state, data and logs [default: <cache>/broker].",
)


@main.group()
def broker() -> None:
    """A local Apache Kafka (KRaft, loopback) for development and tests, run from Maven jars."""


@broker.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65000),
    default=None,
    help="Client port of node 1 (others follow); 0 picks free ports [default: as before, else 9092].",
)
@data_dir_option
@click.option(
    "--nodes",
    type=click.Choice(["1", "3"]),
    default=None,
    help="Number of combined broker+controller nodes [default: as before, else 1].",
)
@click.option("--heap", default="512m", show_default=True, help="JVM heap per node.")
@click.option(
    "--timeout",
    type=click.IntRange(10, 900),
    default=90,
    show_default=True,
    help="Seconds to wait for every node to answer.",
)
@click.option(
    "--secure",
    is_flag=True,
    help="SASL_SSL with SCRAM-SHA-512 over TLS (a CA made for this cluster), Kafka's "
    "StandardAuthorizer with allow.everyone.if.no.acl.found=false, and a super user "
    "`admin` for ecap-ops whose password is kept in a private file. Chosen when the data "
    "dir is first formatted.",
)
@guarded
def start(
    port: int | None,
    data_dir: Path | None,
    nodes: str | None,
    heap: str,
    timeout: int,
    secure: bool,
) -> None:
    """Start the local cluster (fetching Kafka's jars on first use) and wait until it answers."""
    from ecap_ops.localkafka import KAFKA_VERSION, LocalCluster, fetch_jars
    from ecap_ops.localkafka.cluster import STATE_FILE

    data_dir = data_dir or _default_data_dir()
    if (data_dir / STATE_FILE).is_file():
        cluster = LocalCluster.load(data_dir)
        if secure and not (cluster.security and cluster.security.authorizer):
            raise LocalKafkaError(
                f"{data_dir} holds a cluster formatted without --secure; SCRAM users and the "
                "authorizer are chosen at format time. Use another --data-dir (or stop it and "
                "remove this one)"
            )
        cluster.nodes = int(nodes) if nodes else cluster.nodes  # a mismatch is refused by start()
        cluster.port = port or 0  # 0 keeps the recorded ports
        cluster.heap = heap
    else:
        cluster = LocalCluster(
            data_dir,
            nodes=int(nodes or 1),
            port=9092 if port is None else port,
            heap=heap,
            security=_secure_listener() if secure else None,
        )
    if not _jars_cached():
        click.echo(f"fetching Apache Kafka {KAFKA_VERSION} jars (first run only)...", err=True)
    fetch_jars(quiet=True)
    if not cluster.is_running():
        click.echo(f"starting {cluster.nodes} node(s) in {cluster.data_dir}...", err=True)
    started = cluster.start(timeout=timeout)
    state = "started" if started else "already running"
    click.echo(
        f"Kafka {KAFKA_VERSION} {state} on {cluster.bootstrap_servers}: {cluster.nodes} node(s), "
        f"cluster id {cluster.cluster_id}"
    )
    click.echo(f"bootstrap servers: {cluster.bootstrap_servers}")
    for line in export_lines(cluster):
        click.echo(line)


def _secure_listener():
    """A fresh secured listener: user `admin` (super user) with a random password."""
    import secrets

    from ecap_ops.localkafka.security import SecureListener

    return SecureListener(users={"admin": secrets.token_urlsafe(24)}, tls=True, authorizer=True)


def export_lines(cluster) -> list[str]:
    """The `export` lines a user pastes to reach this cluster. The password is never
    printed: it is read from the cluster's private password file by the shell."""
    from ecap_ops.localkafka.security import write_password_file

    lines = [f"export KAFKA_BOOTSTRAP_SERVERS={cluster.bootstrap_servers}"]
    sec = cluster.security
    if sec is None:
        return lines
    settings = cluster.client_settings()
    password_file = write_password_file(cluster.data_dir, sec.cluster_user)
    lines += [
        f"export KAFKA_SECURITY_PROTOCOL={settings.security_protocol}",
        f"export KAFKA_SASL_MECHANISM={settings.sasl_mechanism}",
        f"export KAFKA_SASL_USERNAME={sec.cluster_user}",
        f'export KAFKA_SASL_PASSWORD="$(cat {password_file})"',
    ]
    if settings.ssl_cafile:
        lines.append(f"export KAFKA_SSL_CAFILE={settings.ssl_cafile}")
    return lines


@broker.command()
@data_dir_option
@click.option(
    "--timeout",
    type=click.IntRange(1, 600),
    default=30,
    show_default=True,
    help="Seconds to wait after SIGTERM before SIGKILL.",
)
@guarded
def stop(data_dir: Path | None, timeout: int) -> None:
    """Stop the local cluster (its data stays; `start` brings it back)."""
    from ecap_ops.localkafka import LocalCluster

    data_dir = data_dir or _default_data_dir()
    stopped = LocalCluster(data_dir).stop(timeout=timeout)
    click.echo(
        f"stopped the local Kafka in {data_dir}"
        if stopped
        else f"no local Kafka running in {data_dir}"
    )


@broker.command()
@data_dir_option
@output_option
@guarded
def status(data_dir: Path | None, output: str) -> None:
    """Show the local cluster's nodes; exit 1 unless every node runs and answers."""
    from ecap_ops.localkafka import LocalCluster

    data_dir = data_dir or _default_data_dir()
    info = LocalCluster(data_dir).status()
    if output == "json":
        emit_json(info)
    elif not info["nodes"]:
        click.echo(f"no local Kafka in {data_dir} (start one with `ecap-ops broker start`)")
    else:
        click.echo(
            f"cluster {info['cluster_id']} in {info['data_dir']}: "
            f"{'running' if info['running'] else 'NOT running'}, "
            f"{'reachable' if info['reachable'] else 'NOT reachable'}"
        )
        rows = [
            [
                n["node_id"],
                n["pid"] or "-",
                "yes" if n["alive"] else "no",
                n["port"],
                n["controller_port"],
                n["log"],
            ]
            for n in info["nodes"]
        ]
        click.echo(
            render_table(
                ["node", "pid", "alive", "port", "controller port", "log"], rows, right=[0, 1, 3, 4]
            )
        )
        click.echo(f"bootstrap servers: {info['bootstrap_servers']}")
    if not (info["running"] and info["reachable"]):
        sys.exit(1)


@broker.command()
@click.option("--verbose", "-v", is_flag=True, help="Show Maven's output.")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Also Kafka Streams (streams groups' tests) and MirrorMaker 2 (`ecap-ops mirror`).",
)
@guarded
def fetch(verbose: bool, everything: bool) -> None:
    """Download Apache Kafka's jars with Maven into the cache (once; later calls return at once)."""
    from ecap_ops.localkafka import fetch_jars

    click.echo(str(fetch_jars(quiet=not verbose)))
    if everything:
        from ecap_ops.localkafka.jars import fetch_mirror_jars, fetch_streams_jar

        click.echo(str(fetch_streams_jar(quiet=not verbose)))
        click.echo(str(fetch_mirror_jars(quiet=not verbose)))


def _tool_epilog() -> str:
    """The tool names, for `kafka-cli --help`."""
    from ecap_ops.localkafka.tools import TOOLS

    return "Tools: " + ", ".join(sorted(TOOLS))


@main.command(
    "kafka-cli",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    epilog=_tool_epilog(),
)
@click.argument("tool")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_cli
@guarded
def kafka_cli(cli: CliContext, tool: str, args: tuple[str, ...]) -> None:
    """Run one of Kafka's own tools (kafka-topics, kafka-configs, ...) against the configured cluster.

    --bootstrap-server and, for TLS/SASL, --command-config are added from the connection
    settings unless given. The properties (with the password) reach the tool as an unnamed
    in-memory file (/dev/fd/N) that nothing can leave behind on disk. SIGINT, SIGTERM and
    SIGHUP are passed on to the tool; exits with the tool's exit code.

    Example: ecap-ops kafka-cli kafka-topics --describe --topic transactions
    """
    from ecap_ops.localkafka.tools import TOOLS, exec_tool

    if tool.removesuffix(".sh") not in TOOLS:
        raise LocalKafkaError(
            f"unknown Kafka tool {tool!r}; known tools: {', '.join(sorted(TOOLS))}"
        )
    sys.exit(exec_tool(tool, list(args), cli.settings()))
