"""The platform's access as assets: `kafka_access/acls`, `kafka_access/users` and
`kafka_access/quotas` (group `kafka_access`), each with a `matches_catalog` check.

Materializing them applies the catalog's access exactly as `ecap-ops access apply` does
(`services.access.apply_catalog_access`, the one write path: validation before any change,
pre-change snapshot of what it replaces or deletes, ordered steps, read-back verification,
change log). The three are one step: access is planned and applied as a whole.

The checks report drift between the catalog and the cluster (`core.access_checks`: what
`access apply` would change), judged from one read of the cluster's access. On a cluster
without an authorizer they pass with a note (it enforces no ACLs; the health check reports
that, CRIT in prod). Passwords never reach metadata or logs: only where they are read from
(`env NAME`, `file PATH`)."""

import dagster as dg

from ecap_ops.catalog.model import Catalog
from ecap_ops.core.access_checks import ACCESS_CHECK, ACCESS_PARTS, AccessCheckOutcome
from ecap_ops.orchestration.common import as_failure, md_table
from ecap_ops.orchestration.resources import KafkaResource
from ecap_ops.orchestration.topics import _metadata_value, topic_key

GROUP = "kafka_access"

DESCRIPTIONS = {
    "acls": "The catalog's ACL bindings: its principals' roles expanded (topic read/write, "
    "consumer group prefixes, idempotent write, transactional ids) plus its raw `acls:`.",
    "users": "The catalog's SCRAM users (mechanism, iterations). Passwords are read at apply "
    "time from the variable or file the catalog names, and never shown.",
    "quotas": "The catalog's client quotas (produce/consume byte rates, request percentage) "
    "per user and/or client id.",
}
CHECK_DESCRIPTIONS = {
    "acls": "Every declared binding exists and, in the scope the catalog owns, no other; "
    "bindings outside it are listed as unmanaged and never fail the check.",
    "users": "Every declared SCRAM user exists with its mechanism and iterations.",
    "quotas": "Every declared quota entity has exactly its declared values.",
}
_APPLIES = (
    " Materializing applies the catalog's whole access (ACLs, users, quotas) like "
    "`ecap-ops access apply`; on a cluster without an authorizer nothing is applied."
)


def access_key(part: str) -> dg.AssetKey:
    return dg.AssetKey(["kafka_access", part])


def _check_fields(o: AccessCheckOutcome) -> dict:
    return dict(
        asset_key=access_key(o.part),
        check_name=o.check,
        passed=o.passed,
        severity=dg.AssetCheckSeverity[o.severity],
        description=o.description,
        metadata={k: _metadata_value(kind, v) for k, (kind, v) in o.metadata.items()},
    )


def access_check_result(o: AccessCheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(**_check_fields(o))


def access_check_evaluation(o: AccessCheckOutcome) -> dg.AssetCheckEvaluation:
    """An outcome recorded by another op (for example a health run)."""
    return dg.AssetCheckEvaluation(**_check_fields(o))


def observe_access_checks(gw, catalog: Catalog) -> list[AccessCheckOutcome]:
    """One read of the cluster's access, judged against the catalog."""
    from ecap_ops.core.access_checks import access_check_outcomes
    from ecap_ops.services.access import plan_catalog_access

    ap = plan_catalog_access(gw, catalog)
    return access_check_outcomes(catalog.access, ap.plan, ap.report, ap.state)


def _materializations(catalog: Catalog, ap, result) -> dict[str, dict]:
    from ecap_ops.catalog.access import entity_label
    from ecap_ops.core.plan import ActionKind

    access = catalog.access
    steps = {(s.step, s.topic): s for s in result.steps}

    def count(kind: ActionKind) -> int:
        return sum(
            len(a.acls)
            for a in ap.plan.actions
            if a.kind is kind and (s := steps.get((a.kind.value, a.subject))) and s.ok
        )

    principals = [[p.key, p.principal, p.role, len(p.bindings)] for p in access.principals]
    if access.acls:
        principals.append(["(raw acls:)", "", "", len(access.acls)])
    changed_users = {a.user: a for a in ap.plan.actions if a.kind is ActionKind.UPSERT_USER}
    users = [
        [
            u.name,
            u.mechanism,
            u.iterations,
            u.password.describe(),
            "set" if u.name in changed_users else "unchanged",
        ]
        for u in access.users
    ]
    quotas = [[q.label(), k, v] for q in access.quotas for k, v in q.values]
    common = {
        "authorizer": dg.MetadataValue.text("yes" if ap.state.authorizer else "none"),
        "applied_steps": dg.MetadataValue.int(len(result.steps)),
        "pre_change_snapshot": dg.MetadataValue.text(result.snapshot_path or "none needed"),
        "notes": dg.MetadataValue.text("; ".join(ap.report.notes) or "none"),
    }
    return {
        "acls": {
            **common,
            "declared_bindings": dg.MetadataValue.int(len(access.bindings())),
            "created_bindings": dg.MetadataValue.int(count(ActionKind.CREATE_ACLS)),
            "deleted_bindings": dg.MetadataValue.int(count(ActionKind.DELETE_ACLS)),
            "unmanaged_bindings": dg.MetadataValue.int(len(ap.report.unmanaged_bindings)),
            "principals": dg.MetadataValue.md(
                md_table(["key", "principal", "role", "bindings"], principals)
                if principals
                else "none"
            ),
        },
        "users": {
            **common,
            "declared_users": dg.MetadataValue.int(len(access.users)),
            "users": dg.MetadataValue.md(
                md_table(["user", "mechanism", "iterations", "password from", "this run"], users)
                if users
                else "none"
            ),
        },
        "quotas": {
            **common,
            "declared_quotas": dg.MetadataValue.int(len(access.quotas)),
            "unmanaged_quotas": dg.MetadataValue.text(
                ", ".join(ap.report.unmanaged_quotas[:20]) or "none"
            ),
            "quotas": dg.MetadataValue.md(
                md_table(["entity", "key", "value"], quotas) if quotas else "none"
            ),
            "quota_entities": dg.MetadataValue.text(
                ", ".join(entity_label(q.entity) for q in access.quotas) or "none"
            ),
        },
    }


def build_access_assets(catalog: Catalog) -> dg.AssetsDefinition:
    topic_deps = [topic_key(t) for t in catalog.topics]
    specs = [
        dg.AssetSpec(
            access_key(part),
            group_name=GROUP,
            description=DESCRIPTIONS[part] + _APPLIES,
            kinds={"kafka"},
            deps=topic_deps if part == "acls" else [],
        )
        for part in ACCESS_PARTS
    ]

    @dg.multi_asset(
        name="kafka_access",
        specs=specs,
        can_subset=False,
        description="Apply the catalog's access (ACL bindings, SCRAM users, quotas) on the one "
        "write path, as `ecap-ops access apply` does.",
    )
    def kafka_access(context: dg.AssetExecutionContext, kafka: KafkaResource):
        from ecap_ops.services.access import apply_catalog_access

        with as_failure("applying the catalog's access"), kafka.gateway() as gw:
            ap, result = apply_catalog_access(gw, catalog)
        context.log.info(ap.render())
        for s in result.steps:
            context.log.info(f"{s.step} {s.topic}: {s.detail}")
        if not result.ok:
            raise dg.Failure(
                description="applying the catalog's access failed: "
                + "; ".join(f"{s.step} {s.topic}: {s.detail}" for s in result.failed)
                + "".join(f"; verify: {p}" for p in result.verify_problems),
                allow_retries=False,
            )
        for part, meta in _materializations(catalog, ap, result).items():
            yield dg.MaterializeResult(asset_key=access_key(part), metadata=meta)

    return kafka_access


def build_access_checks(catalog: Catalog) -> dg.AssetChecksDefinition:
    specs = [
        dg.AssetCheckSpec(
            name=ACCESS_CHECK,
            asset=access_key(part),
            description=CHECK_DESCRIPTIONS[part]
            + " Drift is what `ecap-ops access apply` would change.",
            blocking=False,
        )
        for part in ACCESS_PARTS
    ]

    @dg.multi_asset_check(
        name="kafka_access_checks",
        specs=specs,
        can_subset=True,
        description="The access assets' checks, judged from one read of the cluster's access.",
    )
    def kafka_access_checks(context: dg.AssetCheckExecutionContext, kafka: KafkaResource):
        wanted = {k.asset_key.path[-1] for k in context.selected_asset_check_keys}
        with as_failure("checking the cluster's access"), kafka.gateway() as gw:
            outcomes = observe_access_checks(gw, catalog)
        for o in outcomes:
            if o.part in wanted:
                yield access_check_result(o)

    return kafka_access_checks


def build_defs(catalog: Catalog) -> dg.Definitions:
    return dg.Definitions(
        assets=[build_access_assets(catalog)], asset_checks=[build_access_checks(catalog)]
    )
