"""The catalog's managed scope applied to an observed cluster. Pure.

The rule itself is `Catalog.manages(topic)` (the catalog's `scope:` include and exclude
patterns); this applies it to what a check or audit reads, so a topic outside the scope
is never judged, reported or touched. Kafka's internal topics and ecap-ops' canary are
the cluster's own: they stay in view of the health check whatever the scope.
"""

from dataclasses import replace

from ecap_ops.catalog.model import Catalog
from ecap_ops.core.state import CANARY_TOPIC, ClusterState, is_internal_topic


def user_topics(cluster: ClusterState) -> list[str]:
    """The cluster's topics that a catalog could manage: not internal, not the canary."""
    return [
        n
        for n, t in cluster.topics.items()
        if n != CANARY_TOPIC and not is_internal_topic(n, t.internal)
    ]


def within_scope(catalog: Catalog, cluster: ClusterState) -> ClusterState:
    """The cluster as the catalog sees it: topics outside its scope left out (internal
    topics and the canary kept). The same object when the catalog manages every topic."""
    if not catalog.scope.declared:
        return cluster
    topics = {
        n: t
        for n, t in cluster.topics.items()
        if n == CANARY_TOPIC or is_internal_topic(n, t.internal) or catalog.manages(n)
    }
    return replace(cluster, topics=topics)


def scope_line(catalog: Catalog, cluster: ClusterState | None = None) -> str | None:
    """What a check or audit covers, in one line (None when the catalog has no scope):
    `scope: topics matching team-a.* except team-a.tmp-* (3 other topic(s) outside it left
    alone)`."""
    if not catalog.scope.declared:
        return None
    return catalog.scope_summary(user_topics(cluster) if cluster is not None else None)


def topic_label(catalog: Catalog, name: str, internal: bool = False) -> str:
    """How the catalog sees one topic, for list-topics and describe-topic: `managed`
    (declared), `internal` (Kafka's own), `outside scope` (another team's, left alone) or
    `unmanaged` (within the scope but not declared: what `plan` reports)."""
    spec = catalog.get(name)
    if spec is not None and spec.name == name:
        return "managed"
    if internal or is_internal_topic(name, internal):
        return "internal"
    if not catalog.manages(name):
        return "outside scope"
    return "unmanaged"
