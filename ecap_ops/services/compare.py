"""`compare`: read two clusters and judge their differences with the catalog.

One action for both front ends (`ecap-ops compare A B` and the Dagster comparison of each
cluster with the primary). Each cluster is read by the one read path (topics and
overrides: `KafkaGateway.read_cluster_state`; ACLs: `gateway/access.read_acl_bindings`;
groups: `gateway/groups.read_groups`), judged by `core/compare.compare_clusters` with each
cluster's own catalog environment. Nothing is written to either cluster.
"""

from ecap_ops.catalog.model import Catalog
from ecap_ops.core.compare import ClusterView, Comparison, compare_clusters, topic_views
from ecap_ops.gateway import KafkaGateway
from ecap_ops.settings import KafkaSettings


def read_view(gw: KafkaGateway, name: str, groups: bool = True) -> ClusterView:
    """What the comparison needs of the cluster behind `gw`."""
    from ecap_ops.gateway.access import read_acl_bindings

    state = gw.read_cluster_state(None, with_data=False)
    acls = read_acl_bindings(gw)
    by_group: dict[str, frozenset[str]] = {}
    if groups:
        from ecap_ops.gateway.groups import read_groups

        read = read_groups(gw, describe=False, offsets=True, consumer_only=True)
        by_group = {g: frozenset(tp[0] for tp in offsets) for g, offsets in read.committed.items()}
        for g in read.listings:
            by_group.setdefault(g, frozenset())
    return ClusterView(name, topic_views(state.topics.values()), acls, by_group)


def compare(
    name_a: str,
    settings_a: KafkaSettings,
    catalog_a: Catalog,
    name_b: str,
    settings_b: KafkaSettings,
    catalog_b: Catalog,
    groups: bool = True,
) -> Comparison:
    """Read cluster A, then cluster B (each bounded by its own settings' waits), compare."""
    with KafkaGateway(settings_a) as gw:
        view_a = read_view(gw, name_a, groups)
    with KafkaGateway(settings_b) as gw:
        view_b = read_view(gw, name_b, groups)
    return compare_clusters(view_a, view_b, catalog_a, catalog_b)
