"""Reading and writing a cluster's access: ACL bindings, SCRAM users and client quotas.

The one reader of access state (`read_access`, returning the core's `AccessState`) and the
writers the one write path calls (`services.write`): CreateAcls, DeleteAcls (with exact
filters, so a delete matches only the binding it names), AlterUserScramCredentials and
AlterClientQuotas (validate-only available; CreateAcls and DeleteAcls have none). kafka-python's
objects never leave this module. A password passes through `upsert_scram_users` only, as a
salted hash computed in this process; it is never logged or returned.
"""

from ecap_ops.catalog.access import AclBinding
from ecap_ops.core.access import AccessState, QuotaEntity
from ecap_ops.gateway import KafkaGateway

_PATTERN = {"literal": "LITERAL", "prefixed": "PREFIXED"}


def _kafka_acl(b: AclBinding):
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    return ACL(
        principal=b.principal,
        host=b.host,
        operation=ACLOperation[b.operation.upper()],
        permission_type=ACLPermissionType[b.permission.upper()],
        resource_pattern=ResourcePattern(
            ResourceType[b.resource_type.upper()],
            b.resource_name,
            ACLResourcePatternType[_PATTERN[b.pattern]],
        ),
    )


def binding_of(a) -> AclBinding:
    """A kafka-python ACL as the catalog's binding."""
    return AclBinding(
        principal=a.principal,
        resource_type=a.resource_pattern.resource_type.name.lower(),
        resource_name=a.resource_pattern.resource_name,
        pattern=a.resource_pattern.pattern_type.name.lower(),
        operation=a.operation.name.lower(),
        permission=a.permission_type.name.lower(),
        host=a.host,
    )


def read_acl_bindings(gw: KafkaGateway) -> frozenset[AclBinding] | None:
    """Every ACL binding, or None when the cluster has no authorizer."""
    from kafka import errors as kerr
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )

    flt = ACLFilter(
        principal=None,
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )

    def describe(admin):
        try:
            return admin.describe_acls(flt)[0]
        except kerr.SecurityDisabledError:
            return None

    acls = gw.call("reading ACLs", describe)
    if acls is None:
        return None
    out = set()
    for a in acls:
        try:
            out.add(binding_of(a))
        except (KeyError, ValueError, AttributeError):
            continue  # a resource type this client does not know: not ours to manage
    return frozenset(out)


def read_scram_users(gw: KafkaGateway) -> dict[str, dict[str, int]] | None:
    """User -> {mechanism: iterations}; None when the cluster cannot say."""
    from kafka import errors as kerr

    def describe(admin):
        try:
            return admin.describe_user_scram_credentials()
        except (kerr.UnsupportedVersionError, kerr.ClusterAuthorizationFailedError):
            return None

    raw = gw.call("reading SCRAM users", describe)
    if raw is None:
        return None
    out: dict[str, dict[str, int]] = {}
    for name, info in raw.items():
        if info.get("error"):
            continue
        out[name] = {
            ci["mechanism"].name.replace("_", "-"): int(ci["iterations"])
            for ci in info.get("credential_infos", [])
        }
    return out


def read_quotas(gw: KafkaGateway) -> dict[QuotaEntity, dict[str, float]] | None:
    """Every client quota: entity -> {key: value}; None when the cluster cannot say."""
    from kafka import errors as kerr
    from kafka.protocol.admin.client_quotas import DescribeClientQuotasRequest

    def describe(admin):
        request = DescribeClientQuotasRequest(components=[], strict=False)
        try:
            return admin._manager.run(admin._manager.send, request)
        except (kerr.UnsupportedVersionError, kerr.ClusterAuthorizationFailedError):
            return None

    resp = gw.call("reading client quotas", describe)
    if resp is None or resp.error_code:
        return None
    out: dict[QuotaEntity, dict[str, float]] = {}
    for entry in resp.entries or []:
        entity = tuple(
            sorted(
                ((e.entity_type, e.entity_name or "<default>") for e in entry.entity),
                key=lambda kv: kv[0] != "user",
            )
        )
        out[entity] = {v.key: float(v.value) for v in entry.values}
    return out


def read_access(gw: KafkaGateway) -> AccessState:
    """The cluster's ACL bindings, SCRAM users and quotas, in three requests."""
    acls = read_acl_bindings(gw)
    users = read_scram_users(gw)
    quotas = read_quotas(gw)
    return AccessState(
        authorizer=acls is not None,
        acls=acls or frozenset(),
        users=users or {},
        quotas=quotas or {},
        complete={
            "acls": acls is not None,
            "users": users is not None,
            "quotas": quotas is not None,
        },
    )


def create_acls(gw: KafkaGateway, bindings: list[AclBinding]) -> list[str | None]:
    """Create bindings in one request; per binding None (done) or the broker's error."""
    if not bindings:
        return []
    acls = [_kafka_acl(b) for b in bindings]

    def run(admin):
        from kafka.protocol.admin import CreateAclsRequest

        creations = [admin._convert_create_acls_resource_request(a) for a in acls]
        resp = admin._manager.run(admin._manager.send, CreateAclsRequest(creations=creations))
        return [
            None
            if r.error_code == 0
            else f"{_error_name(r.error_code)}"
            + (f": {r.error_message}" if r.error_message else "")
            for r in resp.results
        ]

    out = gw.call("creating ACLs", run)
    return list(out) + ["no answer from the broker for this binding"] * (len(bindings) - len(out))


def delete_acls(gw: KafkaGateway, bindings: list[AclBinding]) -> list[str | None]:
    """Delete exactly these bindings (each filter matches one binding only)."""
    if not bindings:
        return []
    filters = [_kafka_acl(b) for b in bindings]

    def run(admin):
        return admin.delete_acls(filters)

    results = gw.call("deleting ACLs", run)
    out: list[str | None] = []
    for _flt, _matched, err in results:
        name = getattr(err, "__name__", str(err))
        out.append(None if name == "NoError" else name)
    return out + ["no answer from the broker for this binding"] * (len(bindings) - len(out))


def upsert_scram_users(
    gw: KafkaGateway, users: list[tuple[str, str, int, str]]
) -> dict[str, str | None]:
    """(name, mechanism, iterations, password) -> name: None (done) or the broker's error.
    The password is salted and hashed here; only the hash is sent."""
    from kafka.admin import UserScramCredentialUpsertion

    if not users:
        return {}
    ups = [
        UserScramCredentialUpsertion(name, mech, password, iterations=iterations)
        for name, mech, iterations, password in users
    ]
    out = gw.call("creating SCRAM users", lambda a: a.alter_user_scram_credentials(ups))
    return {name: out.get(name, "no answer from the broker for this user") for name, *_ in users}


def alter_quotas(
    gw: KafkaGateway,
    changes: list[tuple[QuotaEntity, list[tuple[str, float | None]]]],
    validate_only: bool = False,
) -> dict[QuotaEntity, str | None]:
    """Set (value) or remove (None) quota keys of entities in one request."""
    from kafka.protocol.admin.client_quotas import AlterClientQuotasRequest

    if not changes:
        return {}
    Entry = AlterClientQuotasRequest.EntryData
    entries = [
        Entry(
            entity=[
                Entry.EntityData(entity_type=t, entity_name=None if n == "<default>" else n)
                for t, n in entity
            ],
            ops=[
                Entry.OpData(key=k, value=0.0 if v is None else float(v), remove=v is None)
                for k, v in ops
            ],
        )
        for entity, ops in changes
    ]

    def run(admin):
        req = AlterClientQuotasRequest(entries=entries, validate_only=validate_only)
        return admin._manager.run(admin._manager.send, req)

    resp = gw.call("validating quotas" if validate_only else "altering quotas", run)
    out: dict[QuotaEntity, str | None] = {}
    for entry in resp.entries:
        entity = tuple(
            sorted(
                ((e.entity_type, e.entity_name or "<default>") for e in entry.entity),
                key=lambda kv: kv[0] != "user",
            )
        )
        out[entity] = (
            None
            if entry.error_code == 0
            else _error_name(entry.error_code)
            + (f": {entry.error_message}" if entry.error_message else "")
        )
    for entity, _ in changes:
        out.setdefault(entity, "no answer from the broker for this entity")
    return out


def _error_name(code: int) -> str:
    from kafka import errors as kerr

    return kerr.for_code(code).__name__
