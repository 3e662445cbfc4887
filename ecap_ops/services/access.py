"""Access as code, as one action both front ends call: read the cluster's access, plan the
catalog's declared access against it, and apply that plan on the one write path
(`services.write.execute_plan`: validation, pre-change snapshot, ordered steps, read-back
verification, change log)."""

from dataclasses import dataclass

from ecap_ops.catalog.model import Catalog
from ecap_ops.core.access import AccessReport, AccessState, plan_access
from ecap_ops.core.plan import Plan
from ecap_ops.gateway import KafkaGateway
from ecap_ops.services.write import WriteResult, execute_plan


@dataclass(frozen=True)
class AccessPlan:
    plan: Plan
    report: AccessReport
    state: AccessState

    def to_dict(self) -> dict:
        return {
            **self.plan.to_dict(),
            "authorizer": self.state.authorizer,
            "notes": list(self.report.notes),
            "in_sync_bindings": self.report.in_sync,
            "unmanaged_bindings": [b.to_dict() for b in self.report.unmanaged_bindings],
            "unmanaged_quotas": list(self.report.unmanaged_quotas),
        }

    def render(self) -> str:
        from ecap_ops.core.plan import render_plan

        lines = ["Access " + render_plan(self.plan).split("\n", 1)[0]]
        body = render_plan(self.plan).split("\n")[1:-1]
        lines += [line for line in body if not line.startswith("No changes")]
        for n in self.report.notes:
            lines.append(f"  note: {n}")
        if self.report.unmanaged_bindings:
            lines.append(
                f"  Unmanaged bindings (not in the catalog, left alone): {len(self.report.unmanaged_bindings)}"
            )
            for b in self.report.unmanaged_bindings[:20]:
                lines.append(f"      {b.describe()}")
        if self.report.unmanaged_quotas:
            lines.append(
                f"  Unmanaged quotas (left alone): {', '.join(self.report.unmanaged_quotas[:20])}"
            )
        lines.append(
            f"Access: {len(self.plan.actions)} change(s), {self.report.in_sync} binding(s) in sync."
            if self.state.authorizer
            else "Access: not managed on this cluster (no authorizer)."
        )
        return "\n".join(lines)


def read_state(gw: KafkaGateway) -> tuple[str, AccessState]:
    from ecap_ops.gateway.access import read_access

    cluster_id, _controller, _brokers = gw.brokers()
    return cluster_id, read_access(gw)


def plan_catalog_access(gw: KafkaGateway, catalog: Catalog) -> AccessPlan:
    """The catalog's access against the cluster's."""
    cluster_id, state = read_state(gw)
    plan, report = plan_access(catalog.access, state, cluster_id, catalog.env, catalog.digest)
    return AccessPlan(plan, report, state)


def apply_catalog_access(
    gw: KafkaGateway, catalog: Catalog, dry_run: bool = False
) -> tuple[AccessPlan, WriteResult]:
    """Plan afresh and carry out exactly that plan on the one write path."""
    ap = plan_catalog_access(gw, catalog)
    return ap, execute_plan(gw, ap.plan, "access apply", dry_run=dry_run)
