"""The access assets' checks: does the cluster's access match the catalog's? One check per
part of access, each named `matches_catalog` like the topic assets' check:

- `acls`: every declared binding exists; inside the scope the catalog owns (`access: {owns:
  declared_principals}`) no binding exists that it does not declare. Bindings outside that
  scope are listed as unmanaged and never fail the check (nothing is deleted by omission);
- `users`: every declared SCRAM user exists with its mechanism and iterations (passwords
  cannot be compared, and are never read here);
- `quotas`: every declared quota entity has exactly its declared values.

Judged from the access plan (`core.access.plan_access`): drift is exactly what `ecap-ops
access apply` would change, the one rule `access plan` (exit 2) and the health check use.

A cluster without an authorizer enforces no ACLs: the checks pass with a note (there is no
access to keep in line; the health check's `authorizer` finding says what that means, CRIT
in prod). A catalog that declares no access passes with a note too. Pure.
"""

from dataclasses import dataclass, field

from ecap_ops.catalog.access import AccessSpec, AclBinding, entity_label
from ecap_ops.core.access import AccessReport, AccessState
from ecap_ops.core.health_checks import DRIFT_SEVERITY
from ecap_ops.core.plan import ActionKind, Plan
from ecap_ops.core.topic_checks import check_severity

ACCESS_PARTS = ("acls", "users", "quotas")
ACCESS_CHECK = "matches_catalog"
BINDING_HEADERS = ["drift", "principal", "operation", "resource", "pattern", "permission", "host"]
# Rows shown in a check's table; the counts are always whole.
MAX_ROWS = 200


@dataclass(frozen=True)
class AccessCheckOutcome:
    """One access check's result, before it is a Dagster event."""

    part: str  # one of ACCESS_PARTS
    passed: bool
    severity: str  # WARN or ERROR: how bad a failure is
    description: str
    # name -> (kind, value); kind is int, text, json, or table ((headers, rows))
    metadata: dict[str, tuple[str, object]] = field(default_factory=dict)

    @property
    def check(self) -> str:
        return ACCESS_CHECK


def _binding_row(change: str, b: AclBinding) -> list[str]:
    name = b.resource_name + ("*" if b.pattern == "prefixed" else "")
    return [
        change,
        b.principal,
        b.operation,
        f"{b.resource_type} {name}",
        b.pattern,
        b.permission,
        b.host,
    ]


def access_check_outcomes(
    access: AccessSpec, plan: Plan, report: AccessReport, state: AccessState
) -> list[AccessCheckOutcome]:
    """The three access checks from one access plan (`plan_access(access, state, ...)`)."""
    if not access.declared:
        note = "the catalog declares no access (principals, acls, users, quotas): nothing to check"
        return [
            AccessCheckOutcome(p, True, "WARN", note, {"note": ("text", note)})
            for p in ACCESS_PARTS
        ]
    if not state.authorizer:
        note = (
            "the cluster runs no authorizer, so it enforces no ACLs and there is no access to "
            "keep in line; the catalog's access is not applied (the health check's authorizer "
            "finding is CRIT in prod). Secure the cluster to manage access (docs/security.md)."
        )
        return [
            AccessCheckOutcome(
                p, True, "WARN", note, {"note": ("text", note), "authorizer": ("text", "none")}
            )
            for p in ACCESS_PARTS
        ]
    severity = check_severity(DRIFT_SEVERITY)
    return [
        _acls(access, plan, report, severity),
        _users(access, plan, state, report, severity),
        _quotas(access, plan, state, report, severity),
    ]


def _acls(access: AccessSpec, plan: Plan, report: AccessReport, severity: str):
    missing = [b for a in plan.actions if a.kind is ActionKind.CREATE_ACLS for b in a.acls]
    extra = [b for a in plan.actions if a.kind is ActionKind.DELETE_ACLS for b in a.acls]
    rows = [_binding_row("missing", b) for b in missing] + [
        _binding_row("extra (owned scope)", b) for b in extra
    ]
    unmanaged = [_binding_row("unmanaged", b) for b in report.unmanaged_bindings]
    scope = (
        "every binding of the catalog's principals"
        if access.owns == "declared_principals"
        else "only the declared bindings (nothing is deleted by omission)"
    )
    passed = not rows
    parts = []
    if missing:
        parts.append(f"{len(missing)} declared binding(s) missing, e.g. {missing[0].describe()}")
    if extra:
        parts.append(
            f"{len(extra)} binding(s) in the owned scope not declared, e.g. {extra[0].describe()}"
        )
    description = (
        f"the cluster has all {report.in_sync} declared ACL binding(s)"
        + (f"; {len(unmanaged)} unmanaged binding(s) left alone" if unmanaged else "")
        if passed
        else "; ".join(parts) + " (`ecap-ops access apply` or materializing fixes it)"
    )
    return AccessCheckOutcome(
        "acls",
        passed,
        severity,
        description,
        {
            "declared_bindings": ("int", len(access.bindings())),
            "in_sync_bindings": ("int", report.in_sync),
            "missing_bindings": ("int", len(missing)),
            "extra_owned_bindings": ("int", len(extra)),
            "unmanaged_bindings": ("int", len(unmanaged)),
            "owned_scope": ("text", scope),
            "drift": ("table", (BINDING_HEADERS, rows[:MAX_ROWS])),
            "unmanaged": ("table", (BINDING_HEADERS, unmanaged[:MAX_ROWS])),
        },
    )


def _users(access: AccessSpec, plan: Plan, state: AccessState, report: AccessReport, severity):
    if access.users and not state.complete.get("users", True):
        return AccessCheckOutcome(
            "users",
            False,
            severity,
            "the cluster's SCRAM users could not be read, so they cannot be compared",
            {"declared_users": ("int", len(access.users))},
        )
    rows = []
    for a in plan.actions:
        if a.kind is not ActionKind.UPSERT_USER:
            continue
        have = state.users.get(a.user or "", {})
        actual = (
            ", ".join(f"{m} ({i} iterations)" for m, i in sorted(have.items()))
            if have
            else "missing"
        )
        rows.append(
            [a.user, f"{a.mechanism} ({a.iterations} iterations)", actual, a.password_source]
        )
    passed = not rows
    description = (
        f"all {len(access.users)} declared SCRAM user(s) exist with their mechanism and iterations"
        if passed
        else f"{len(rows)} SCRAM user(s) differ from the catalog: "
        + "; ".join(f"{r[0]} is {r[2]}, expected {r[1]}" for r in rows[:5])
    )
    return AccessCheckOutcome(
        "users",
        passed,
        severity,
        description,
        {
            "declared_users": ("int", len(access.users)),
            "drifted_users": ("int", len(rows)),
            "drift": (
                "table",
                (["user", "expected", "actual", "password from"], rows[:MAX_ROWS]),
            ),
        },
    )


def _quotas(access: AccessSpec, plan: Plan, state: AccessState, report: AccessReport, severity):
    if access.quotas and not state.complete.get("quotas", True):
        return AccessCheckOutcome(
            "quotas",
            False,
            severity,
            "the cluster's client quotas could not be read, so they cannot be compared",
            {"declared_quotas": ("int", len(access.quotas))},
        )
    rows = []
    for a in plan.actions:
        if a.kind is not ActionKind.ALTER_QUOTAS:
            continue
        for key, old, new in a.quota_changes:
            rows.append([entity_label(a.quota_entity), key, _q(new), _q(old)])
    entities = len({r[0] for r in rows})
    passed = not rows
    description = (
        f"all {len(access.quotas)} declared quota entit(ies) have exactly their values"
        if passed
        else f"{entities} quota entit(ies) differ from the catalog: "
        + "; ".join(f"{r[0]} {r[1]} is {r[3]}, expected {r[2]}" for r in rows[:5])
    )
    return AccessCheckOutcome(
        "quotas",
        passed,
        severity,
        description,
        {
            "declared_quotas": ("int", len(access.quotas)),
            "drifted_values": ("int", len(rows)),
            "unmanaged_quotas": ("int", len(report.unmanaged_quotas)),
            "drift": ("table", (["entity", "key", "expected", "actual"], rows[:MAX_ROWS])),
        },
    )


def _q(v) -> str:
    if v is None:
        return "(none)"
    return str(int(v)) if float(v).is_integer() else str(v)
