"""Catalog drift: how the observed cluster differs from the catalog, judged by the plan.

One rule for the health check's catalog findings and the topic assets' `matches_catalog`
check: both read the same `CatalogDrift`, made once from one read of the cluster. Pure.
"""

from dataclasses import dataclass

from ecap_ops.catalog.model import Catalog, TopicSpec
from ecap_ops.core.plan import Plan, make_plan
from ecap_ops.core.state import ClusterState, TopicState


@dataclass(frozen=True)
class CatalogDrift:
    plan: Plan  # the catalog's plan against the observed cluster
    missing: tuple[str, ...]  # catalog topics the cluster does not have, sorted
    lines: tuple[str, ...]  # one line per change to an existing topic, then per refusal

    @property
    def matches(self) -> bool:
        return not self.missing and not self.lines


def catalog_drift(catalog: Catalog, cluster: ClusterState) -> CatalogDrift:
    """The catalog against the observed cluster: what is missing, what differs."""
    plan = make_plan(catalog, cluster)
    missing = tuple(sorted(n for n in catalog.names() if n not in cluster.topics))
    lines = tuple(a.describe() for a in plan.actions if a.topic not in missing) + tuple(
        r.message for r in plan.refusals
    )
    return CatalogDrift(plan, missing, lines)


def drift_rows(spec: TopicSpec, topic: TopicState | None, plan: Plan) -> list[list]:
    """What differs between the catalog's `spec` and the observed `topic`, as the plan
    (for this topic) sees it: (setting, expected, actual) rows; empty when it matches."""
    if topic is None:
        return [["exists", "yes", "no"]]
    rows: list[list] = []
    if topic.partition_count != spec.partitions:
        rows.append(["partitions", spec.partitions, topic.partition_count])
    if topic.replication_factor != spec.replication_factor:
        rows.append(["replication_factor", spec.replication_factor, topic.replication_factor])
    for a in plan.actions:
        for c in a.changes:
            rows.append(
                [
                    c.key,
                    c.new if c.new is not None else f"(default {c.new_effective})",
                    c.old if c.old is not None else f"(default {c.old_effective})",
                ]
            )
    return rows
