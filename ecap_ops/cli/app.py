"""The `ecap-ops` command group and what every command shares.

Commands live in modules beside this one (`topics.py`, `broker.py`, ...) and attach
themselves to `main` with `@main.command()`; `ecap_ops.cli` imports them all.
Heavy imports (Dagster, pandas) stay inside the commands that need them, so the CLI
starts fast.
"""

import functools
import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from ecap_ops.errors import EcapOpsError
from ecap_ops.settings import KafkaSettings


class FiniteRange(click.FloatRange):
    """A number in a range, as every numeric option takes it; NaN (which compares false
    with any bound, so a plain range lets it through) and infinities are refused."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{str(value)[:20]!r} is not a finite number.", param, ctx)
        return rv


@dataclass
class CliContext:
    overrides: dict[str, Any] = field(default_factory=dict)
    env: str | None = None
    catalog_path: str | None = None
    # --cluster NAME (from the clusters file); None: the KAFKA_* variables, as always.
    cluster: str | None = None
    # --env given on the command line (not just ECAP_ENV): it wins over the cluster's env.
    env_from_flag: bool = False
    _settings: KafkaSettings | None = None

    def cluster_config(self):
        """The cluster this command talks to (`ecap_ops.clusters.ClusterConfig`)."""
        from ecap_ops.clusters import cluster_config

        return cluster_config(self.cluster)

    def settings(self) -> KafkaSettings:
        if self._settings is None:
            if self.cluster is None:
                self._settings = KafkaSettings.from_env(**self.overrides)
            else:
                from ecap_ops.clusters import cluster_settings

                self._settings = cluster_settings(self.cluster).with_overrides(**self.overrides)
        return self._settings

    def catalog_env(self) -> str | None:
        """The catalog overlay: --env, else the cluster's env, else ECAP_ENV."""
        if self.cluster is not None and not self.env_from_flag:
            return self.cluster_config().env
        return self.env

    def catalog(self):
        from ecap_ops.catalog import load_catalog

        return load_catalog(self.catalog_path, env=self.catalog_env())

    def gateway(self):
        from ecap_ops.gateway import KafkaGateway

        return KafkaGateway(self.settings())


pass_cli = click.make_pass_decorator(CliContext, ensure=True)


class EcapOpsGroup(click.Group):
    """Click's group, except that usage errors exit 1, not click's 2: exit code 2 means
    "plan found changes", and a mistyped flag must never look like that to a script."""

    # command name -> module that defines it; imported on first use (see ecap_ops.cli).
    lazy_commands: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in self.lazy_commands:
            import importlib

            importlib.import_module(self.lazy_commands[name])
        return self.commands.get(name)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(1)
        except (click.Abort, EOFError, KeyboardInterrupt):
            click.echo("Aborted.", err=True)
            sys.exit(1)
        sys.exit(0)


@click.group(
    cls=EcapOpsGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--bootstrap-servers",
    "-b",
    metavar="HOST:PORT[,...]",
    help="Kafka brokers to bootstrap from [env KAFKA_BOOTSTRAP_SERVERS, default localhost:9092].",
)
@click.option(
    "--security-protocol",
    help="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL [env KAFKA_SECURITY_PROTOCOL].",
)
@click.option(
    "--sasl-mechanism", help="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 [env KAFKA_SASL_MECHANISM]."
)
@click.option(
    "--sasl-username",
    help="SASL user [env KAFKA_SASL_USERNAME]; the password comes only from KAFKA_SASL_PASSWORD.",
)
@click.option("--ssl-cafile", help="CA bundle (PEM) for TLS [env KAFKA_SSL_CAFILE].")
@click.option(
    "--cluster",
    "cluster",
    metavar="NAME",
    help="A cluster named in the clusters file [env ECAP_CLUSTERS_FILE]: its brokers, "
    "security and catalog overlay. Without it, the KAFKA_* variables.",
)
@click.option(
    "--env",
    "env_name",
    envvar="ECAP_ENV",
    help="Catalog overlay: dev or prod [env ECAP_ENV, default dev; with --cluster, the cluster's].",
)
@click.option(
    "--catalog",
    "catalog_path",
    envvar="ECAP_CATALOG",
    help="Another catalog file [env ECAP_CATALOG].",
)
@click.version_option(package_name="ecap-ops")
@click.pass_context
def main(
    ctx,
    bootstrap_servers,
    security_protocol,
    sasl_mechanism,
    sasl_username,
    ssl_cafile,
    cluster,
    env_name,
    catalog_path,
):
    """ecap-ops: the operations plane for the E-Commerce Analytics Platform's Kafka cluster.

    Exit codes: 0 success, healthy or nothing to change; 1 error or unhealthy;
    2 `plan` found changes to make.
    """
    ctx.obj = CliContext(
        overrides={
            "bootstrap_servers": bootstrap_servers,
            "security_protocol": security_protocol,
            "sasl_mechanism": sasl_mechanism,
            "sasl_username": sasl_username,
            "ssl_cafile": ssl_cafile,
        },
        env=env_name,
        catalog_path=catalog_path,
        cluster=cluster,
        env_from_flag=ctx.get_parameter_source("env_name")
        == click.core.ParameterSource.COMMANDLINE,
    )


def output_option(f: Callable) -> Callable:
    """`--output table|json` for a read command."""
    return click.option(
        "--output",
        "-o",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="table for people, json (stable keys) for scripts.",
    )(f)


def guarded(f: Callable) -> Callable:
    """Turn the project's errors into a clear message on stderr and exit code 1."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except EcapOpsError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)

    return wrapper


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def fmt_int(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def render_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], right: Iterable[int] = ()
) -> str:
    """An aligned plain-text table people can paste into an incident channel. One format
    call a line (thousands of rows at a thousand consumer groups)."""
    cells = [tuple("" if c is None else str(c) for c in r) for r in rows]
    right = set(right)
    widths = [max(map(len, column)) for column in zip(headers, *cells, strict=True)]
    line = "  ".join(
        f"{{:>{w}}}" if i in right else f"{{:<{w}}}" for i, w in enumerate(widths)
    ).format
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(*headers).rstrip(), sep, *(line(*r).rstrip() for r in cells)])
