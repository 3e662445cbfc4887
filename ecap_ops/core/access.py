"""Access planning: the catalog's declared access against the cluster's gives a plan of
typed actions (create ACL bindings, SCRAM users and quotas; delete bindings only where the
catalog owns them), which `services.write.execute_plan` carries out like any other change.

Rules:
- never delete by omission: bindings on the cluster that the catalog does not declare are
  reported as unmanaged, and deleted only when the catalog says `access: {owns:
  declared_principals}` and the binding belongs to one of its principals;
- SCRAM users are created, or re-created when their mechanism or iterations differ; never
  deleted; a user that exists keeps its password (the catalog cannot know it);
- quotas of a declared entity are set exactly as declared (keys it no longer declares are
  removed); other entities are left alone;
- a cluster without an authorizer enforces no ACLs: its access is not planned at all, and
  the plan says why.
Pure.
"""

import hashlib
import json
from dataclasses import dataclass, field

from ecap_ops.catalog.access import AccessSpec, AclBinding, entity_label
from ecap_ops.core.plan import Action, ActionKind, Plan, Refusal

QuotaEntity = tuple[tuple[str, str], ...]
ACL_PHASE_BUDGET = 1000  # bindings per CreateAcls / DeleteAcls request


@dataclass(frozen=True)
class AccessState:
    """A cluster's access as read by the gateway."""

    authorizer: bool
    acls: frozenset[AclBinding] = frozenset()
    users: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> {mech: iters}
    quotas: dict[QuotaEntity, dict[str, float]] = field(default_factory=dict)
    complete: dict[str, bool] = field(default_factory=dict)

    def fingerprint(self) -> str:
        doc = [
            self.authorizer,
            sorted(list(b.to_dict().values()) for b in self.acls),
            sorted((u, sorted(m.items())) for u, m in self.users.items()),
            sorted((list(map(list, e)), sorted(v.items())) for e, v in self.quotas.items()),
        ]
        return hashlib.sha256(json.dumps(doc, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AccessReport:
    """What planning saw besides its actions: notes and what it leaves alone."""

    notes: tuple[str, ...] = ()
    unmanaged_bindings: tuple[AclBinding, ...] = ()
    unmanaged_quotas: tuple[str, ...] = ()
    in_sync: int = 0


def describe_access_action(a: Action) -> str:
    if a.kind is ActionKind.CREATE_ACLS:
        return f"create {len(a.acls)} ACL binding(s) of {a.topic}"
    if a.kind is ActionKind.DELETE_ACLS:
        return f"delete {len(a.acls)} ACL binding(s) of {a.topic} (owned by the catalog, no longer declared)"
    if a.kind is ActionKind.UPSERT_USER:
        return (
            f"set SCRAM user {a.user}: {a.mechanism}, {a.iterations} iterations, "
            f"password from {a.password_source}"
        )
    changes = "; ".join(f"{k}: {_q(old)} -> {_q(new)}" for k, old, new in a.quota_changes)
    return f"set quotas of {a.topic}: {changes}"


def _q(v: float | None) -> str:
    if v is None:
        return "(none)"
    return str(int(v)) if float(v).is_integer() else str(v)


def plan_access(
    access: AccessSpec,
    state: AccessState,
    cluster_id: str,
    env: str = "",
    catalog_digest: str = "",
) -> tuple[Plan, AccessReport]:
    """The access actions that make the cluster match the catalog."""
    if not access.declared:
        return _plan(cluster_id, env, catalog_digest, [], [], state), AccessReport(
            notes=("the catalog declares no access (principals, acls, users, quotas)",)
        )
    if not state.authorizer:
        return _plan(cluster_id, env, catalog_digest, [], [], state), AccessReport(
            notes=(
                f"cluster {cluster_id} runs no authorizer, so it enforces no ACLs: the catalog's "
                f"{len(access.bindings())} binding(s), {len(access.users)} user(s) and "
                f"{len(access.quotas)} quota(s) are not applied. Secure the cluster "
                "(docs/security.md) to manage its access.",
            )
        )
    actions: list[Action] = []
    refusals: list[Refusal] = []
    notes: list[str] = []
    want = set(access.bindings())
    have = set(state.acls)
    missing = sorted(want - have)
    by_principal: dict[str, list[AclBinding]] = {}
    for b in missing:
        by_principal.setdefault(b.principal, []).append(b)
    for principal, bindings in sorted(by_principal.items()):
        actions.append(Action(ActionKind.CREATE_ACLS, principal, acls=tuple(bindings)))
    extra = sorted(have - want)
    declared = access.declared_principals()
    owned = [b for b in extra if access.owns == "declared_principals" and b.principal in declared]
    unmanaged = [b for b in extra if b not in set(owned)]
    stale: dict[str, list[AclBinding]] = {}
    for b in owned:
        stale.setdefault(b.principal, []).append(b)
    for principal, bindings in sorted(stale.items()):
        actions.append(
            Action(ActionKind.DELETE_ACLS, principal, acls=tuple(bindings), destructive=True)
        )
    if not state.complete.get("users", True) and access.users:
        notes.append("the cluster's SCRAM users could not be read: users are not planned")
    else:
        for u in access.users:
            current = state.users.get(u.name, {})
            if current.get(u.mechanism) == u.iterations:
                continue
            actions.append(
                Action(
                    ActionKind.UPSERT_USER,
                    f"user {u.name}",
                    user=u.name,
                    mechanism=u.mechanism,
                    iterations=u.iterations,
                    password_source=u.password.describe(),
                    warnings=(
                        (
                            f"{u.name} exists with {', '.join(sorted(current)) or 'no credential'}: "
                            "its credential is replaced, so clients need the password from "
                            f"{u.password.describe()}",
                        )
                        if current
                        else ()
                    ),
                )
            )
    declared_entities = set()
    if not state.complete.get("quotas", True) and access.quotas:
        notes.append("the cluster's quotas could not be read: quotas are not planned")
    else:
        for q in access.quotas:
            declared_entities.add(q.entity)
            current = state.quotas.get(q.entity, {})
            wanted = dict(q.values)
            changes = tuple(
                (k, current.get(k), wanted.get(k))
                for k in sorted(set(current) | set(wanted))
                if current.get(k) != wanted.get(k)
            )
            if changes:
                actions.append(
                    Action(
                        ActionKind.ALTER_QUOTAS,
                        f"quota {q.label()}",
                        quota_entity=q.entity,
                        quota_changes=changes,
                    )
                )
    unmanaged_quotas = sorted(entity_label(e) for e in state.quotas if e not in declared_entities)
    in_sync = len(want & have)
    return _plan(cluster_id, env, catalog_digest, actions, refusals, state), AccessReport(
        notes=tuple(notes),
        unmanaged_bindings=tuple(unmanaged),
        unmanaged_quotas=tuple(unmanaged_quotas),
        in_sync=in_sync,
    )


def _plan(cluster_id, env, digest, actions, refusals, state: AccessState) -> Plan:
    return Plan(
        cluster_id=cluster_id,
        env=env,
        catalog_digest=digest,
        actions=tuple(actions),
        refusals=tuple(refusals),
        unmanaged=(),
        in_sync=(),
        fingerprint=state.fingerprint(),
    )


def access_problems(actions, done: set[tuple[str, str]], state: AccessState | None) -> list[str]:
    """What the access read back after the actions that reported success lacks. Pure."""
    problems: list[str] = []
    for a in actions:
        if (a.kind.value, a.subject) not in done:
            continue
        if state is None:
            problems.append(f"{a.subject}: the cluster's access could not be read back")
            continue
        if a.kind is ActionKind.CREATE_ACLS:
            lost = [b for b in a.acls if b not in state.acls]
            if lost:
                problems.append(
                    f"{a.subject}: {len(lost)} binding(s) missing after creation, e.g. {lost[0].describe()}"
                )
        elif a.kind is ActionKind.DELETE_ACLS:
            left = [b for b in a.acls if b in state.acls]
            if left:
                problems.append(
                    f"{a.subject}: {len(left)} binding(s) still present after deletion, e.g. {left[0].describe()}"
                )
        elif a.kind is ActionKind.UPSERT_USER:
            if state.users.get(a.user or "", {}).get(a.mechanism or "") != a.iterations:
                problems.append(
                    f"SCRAM user {a.user}: no {a.mechanism} credential with {a.iterations} iterations after the change"
                )
        elif a.kind is ActionKind.ALTER_QUOTAS:
            have = state.quotas.get(a.quota_entity, {})
            wrong = [(k, new) for k, _old, new in a.quota_changes if have.get(k) != new]
            if wrong:
                k, new = wrong[0]
                problems.append(
                    f"{a.subject}: {k} is {_q(have.get(k))} after the change, expected {_q(new)}"
                )
    return problems


# -- snapshots ----------------------------------------------------------------------------


def binding_from_snapshot(d: dict) -> AclBinding:
    """A snapshot's ACL entry (Kafka's enum names) as a binding."""
    return AclBinding(
        principal=str(d["principal"]),
        resource_type=str(d["resource_type"]).lower(),
        resource_name=str(d["resource_name"]),
        pattern=str(d.get("pattern_type", "LITERAL")).lower(),
        operation=str(d["operation"]).lower(),
        permission=str(d["permission"]).lower(),
        host=str(d.get("host", "*")),
    )


def quota_entity_from_snapshot(entry: dict) -> QuotaEntity:
    return tuple(
        sorted(
            ((str(e["type"]), str(e["name"])) for e in entry["entity"]),
            key=lambda kv: kv[0] != "user",
        )
    )
