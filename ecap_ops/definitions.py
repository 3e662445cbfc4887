"""The code location: every area's definitions merged into `defs`.

Built on first access of `ecap_ops.defs` (not when `ecap_ops` is imported). Reads the
catalog file and the environment; connects to nothing. This module is also the target of
pyproject's `[tool.dg]` project: `dg check defs` (`make validate`), `dg list defs` and
`dg dev` load `defs` from here. The names it carries are listed, for review of any rename,
in ecap_ops_tests/golden/definitions_names.txt.
"""

import dagster as dg

from ecap_ops.catalog import load_catalog
from ecap_ops.orchestration import (
    access,
    audits,
    cleanup,
    contracts,
    dr,
    failures,
    health,
    lag,
    mirror,
    topics,
)
from ecap_ops.orchestration.alerts import alerts_resource_from_env
from ecap_ops.orchestration.resources import kafka_resource_from_env


def build_definitions() -> dg.Definitions:
    from ecap_ops.clusters import load_clusters

    clusters = load_clusters()
    if clusters:
        return build_cluster_definitions(clusters)
    catalog = load_catalog()
    # Each area hands up its own definitions; add an area here.
    return dg.Definitions.merge(
        topics.build_defs(catalog),
        # A large catalog's grouped topics have no asset of their own (docs/scale.md).
        access.build_defs(topics.asset_catalog(catalog)),
        contracts.build_defs(topics.asset_catalog(catalog)),
        dr.build_defs(catalog),
        health.build_defs(catalog),
        audits.build_defs(catalog),
        cleanup.build_defs(catalog),
        lag.build_defs(catalog),
        mirror.build_defs(catalog),
        failures.build_defs(),
        dg.Definitions(
            resources={"kafka": kafka_resource_from_env(), "alerts": alerts_resource_from_env()}
        ),
    )


def build_cluster_definitions(clusters: dict) -> dg.Definitions:
    """Every cluster of the clusters file in one code location (docs/clusters.md).

    The home cluster (the primary, else the first listed) keeps every name of the
    single-cluster location and runs every area, on resource `kafka`. Each other cluster
    gets its own topics, topic checks, provisioning job, health job, schedule and incident
    sensor, lag sensor, retention audit, metadata snapshot (into its own directory, see
    `dr.cluster_snapshot_dir`) and the comparison with the home cluster, all prefixed with
    its name and run on its own resource `kafka_<name>`, so a cluster that is down holds up
    only its own runs and ticks."""
    from ecap_ops.clusters import home_of
    from ecap_ops.orchestration import compare
    from ecap_ops.orchestration.cluster_scope import ClusterScope
    from ecap_ops.orchestration.resources import cluster_resource

    home = home_of(clusters)
    catalogs: dict[str, object] = {}

    def catalog_of(env: str):
        if env not in catalogs:
            catalogs[env] = load_catalog(env=env)
        return catalogs[env]

    home_scope = ClusterScope(home.name, home.role, prefixed=False)
    home_catalog = catalog_of(home.env)
    parts = [
        topics.build_defs(home_catalog, home_scope),
        access.build_defs(topics.asset_catalog(home_catalog)),
        contracts.build_defs(topics.asset_catalog(home_catalog)),
        dr.build_defs(home_catalog, home_scope),
        health.build_defs(home_catalog, home_scope),
        audits.build_defs(home_catalog, home_scope),
        cleanup.build_defs(home_catalog),
        lag.build_defs(home_catalog, home_scope),
        mirror.build_defs(home_catalog),
        failures.build_defs(),
    ]
    resources = {"kafka": cluster_resource(home), "alerts": alerts_resource_from_env()}
    for cluster in clusters.values():
        if cluster.name == home.name:
            continue
        scope = ClusterScope(cluster.name, cluster.role, prefixed=True)
        catalog = catalog_of(cluster.env)
        parts += [
            topics.build_defs(catalog, scope),
            health.build_defs(catalog, scope),
            lag.build_defs(catalog, scope),
            compare.build_defs(scope, catalog, home_scope, home_catalog),
            audits.build_defs(catalog, scope),
            dr.build_snapshot_defs(catalog, scope),
        ]
        resources[scope.resource_key] = cluster_resource(cluster)
    return dg.Definitions.merge(*parts, dg.Definitions(resources=resources))


defs = build_definitions()
