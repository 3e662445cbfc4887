"""`compare A B`: what differs between two named clusters, judged by the catalog.

Exit codes as `plan`'s: 0 no drift (differences the catalog explains are fine), 2 drift
found, 1 error (a cluster down, a bad clusters file, ...).
"""

import sys

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


@main.command("compare")
@click.argument("cluster_a", metavar="A")
@click.argument("cluster_b", metavar="B")
@click.option("--no-groups", is_flag=True, help="Leave consumer groups out (they are never drift).")
@click.option(
    "--drift-only", is_flag=True, help="List only the drift, not the expected differences."
)
@output_option
@pass_cli
@guarded
def compare_cmd(cli: CliContext, cluster_a, cluster_b, no_groups, drift_only, output):
    """Compare clusters A and B of the clusters file (ECAP_CLUSTERS_FILE; `default` is the
    cluster of the KAFKA_* variables, and HOST:PORT[,...] those brokers with its security): topics, partitions, replication, topic-level
    overrides, ACL bindings and consumer groups.

    Each cluster is judged by its own catalog environment: a difference both sides' overlays
    declare (replication 1 in dev, 3 in prod) is "expected"; anything else is "drift".
    Consumer groups are shown as notes. Nothing is changed on either cluster."""
    from dataclasses import replace

    from ecap_ops.catalog import load_catalog
    from ecap_ops.clusters import DEFAULT_CLUSTER, cluster_config, load_clusters
    from ecap_ops.errors import ConfigError
    from ecap_ops.services.compare import compare

    if cluster_a == cluster_b:
        raise ConfigError(f"compare: A and B are the same cluster ({cluster_a[:40]!r}); name two")
    known = load_clusters()
    sides = []
    for name in (cluster_a, cluster_b):
        if ":" in name:  # host:port[,...]: the KAFKA_* cluster's security, these brokers
            cfg = cluster_config(None)
            cfg = replace(
                cfg, name=name, settings=cfg.settings.with_overrides(bootstrap_servers=name)
            )
        else:
            cfg = cluster_config(None if name == DEFAULT_CLUSTER else name, clusters=known)
        settings = cfg.checked_settings()
        sides.append((cfg.name, settings, load_catalog(cli.catalog_path, env=cfg.env)))
    (na, sa, ca), (nb, sb, cb) = sides
    result = compare(na, sa, ca, nb, sb, cb, groups=not no_groups)
    shown = result.drift if drift_only else result.differences
    if output == "json":
        doc = result.to_dict()
        doc["differences"] = [d.to_dict() for d in shown]
        emit_json(doc)
    else:
        click.echo(
            f"A = {na} (env {result.env_a}), B = {nb} (env {result.env_b}): "
            f"{result.topics_compared} topic(s) compared"
            + ("" if result.acls_compared else ", ACLs not compared (no authorizer)")
        )
        if shown:
            click.echo(
                render_table(
                    ["status", "kind", "subject", "A", "B", "why"],
                    [
                        [d.status, d.kind, d.subject[:80], d.a[:40], d.b[:40], d.reason]
                        for d in shown
                    ],
                )
            )
        click.echo(
            f"{len(result.drift)} drift, {len(result.expected)} expected, "
            f"{len(result.notes)} note(s)"
        )
    sys.exit(2 if result.drift else 0)
