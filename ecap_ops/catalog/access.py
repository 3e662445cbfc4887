"""Declared access: who may do what on the cluster, read from the catalog beside `topics:`.

- `principals:` the platform's services by role. A principal names the topics it `reads`
  and `writes`, its consumer `group` (a prefix) and its `transactional_id` (a prefix), and
  expands to the ACL bindings that needs: read/describe on the topics it reads, read on
  its groups, write/describe on the topics it writes plus idempotent write on the cluster,
  write/describe on its transactional ids. People declare intent, not twenty bindings.
- `acls:` raw bindings for what roles do not cover.
- `users:` SCRAM users (mechanism, iterations). The password is named, never written:
  `password_env: NAME` or `password_file: PATH`, read at apply or restore time only.
- `quotas:` byte rates and request percentage per user and/or client id.
- `access: {owns: declared_principals}` lets apply delete bindings of the declared
  principals that the catalog no longer declares; without it nothing is deleted by omission.

Every problem is reported with its YAML path, all at once. Pure.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from ecap_ops.catalog.units import parse_size_bytes, show

RESOURCE_TYPES = ("topic", "group", "cluster", "transactional_id", "delegation_token", "user")
OPERATIONS = (
    "all",
    "read",
    "write",
    "create",
    "delete",
    "alter",
    "describe",
    "cluster_action",
    "describe_configs",
    "alter_configs",
    "idempotent_write",
    "create_tokens",
    "describe_tokens",
)
PERMISSIONS = ("allow", "deny")
PATTERNS = ("literal", "prefixed")
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
# Kafka accepts 4096..16384 SCRAM iterations.
MIN_ITERATIONS, MAX_ITERATIONS = 4096, 16384
QUOTA_KEYS = ("producer_byte_rate", "consumer_byte_rate", "request_percentage")
CLUSTER_RESOURCE = "kafka-cluster"
PRINCIPAL = re.compile(r"User:[^\s;,]{1,200}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
NAME = re.compile(r"[^\s\x00-\x1f\x7f]{1,249}")
OWNERSHIP = ("nothing", "declared_principals")

PRINCIPAL_KEYS = {
    "principal",
    "role",
    "purpose",
    "reads",
    "writes",
    "group",
    "transactional_id",
    "idempotent",
    "hosts",
}
ACL_KEYS = {
    "principal",
    "resource",
    "name",
    "pattern",
    "operations",
    "operation",
    "permission",
    "host",
    "acknowledged",
}
USER_KEYS = {"mechanism", "iterations", "password_env", "password_file"}
QUOTA_ENTRY_KEYS = {"user", "client_id", *QUOTA_KEYS}
ACCESS_KEYS = {"owns"}
ROLES = ("producer", "consumer", "processor", "service")


@dataclass(frozen=True, order=True)
class AclBinding:
    """One ACL binding in the words of Kafka's `kafka-acls` (lowercase)."""

    principal: str
    resource_type: str
    resource_name: str
    pattern: str  # literal | prefixed
    operation: str
    permission: str = "allow"
    host: str = "*"

    def describe(self) -> str:
        name = self.resource_name + ("*" if self.pattern == "prefixed" else "")
        return (
            f"{self.permission} {self.principal} {self.operation} on "
            f"{self.resource_type} {name}" + (f" from {self.host}" if self.host != "*" else "")
        )

    def to_dict(self) -> dict[str, str]:
        return {
            "principal": self.principal,
            "resource_type": self.resource_type,
            "resource_name": self.resource_name,
            "pattern": self.pattern,
            "operation": self.operation,
            "permission": self.permission,
            "host": self.host,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "AclBinding":
        return cls(
            principal=str(d["principal"]),
            resource_type=str(d["resource_type"]).lower(),
            resource_name=str(d["resource_name"]),
            pattern=str(d["pattern"]).lower(),
            operation=str(d["operation"]).lower(),
            permission=str(d["permission"]).lower(),
            host=str(d.get("host", "*")),
        )


@dataclass(frozen=True)
class PasswordSource:
    """Where a password is read at apply or restore time: an environment variable or a
    file. Only the name is kept; `describe()` is safe to show."""

    env: str | None = None
    file: str | None = None

    def describe(self) -> str:
        return f"env {self.env}" if self.env else f"file {self.file}"


@dataclass(frozen=True)
class ScramUserSpec:
    name: str
    mechanism: str
    iterations: int
    password: PasswordSource


@dataclass(frozen=True)
class QuotaSpec:
    """Quotas of one entity: (("user", name), ("client-id", id)) in Kafka's entity order."""

    entity: tuple[tuple[str, str], ...]
    values: tuple[tuple[str, float], ...]  # Kafka's keys: producer_byte_rate, ...

    def label(self) -> str:
        return entity_label(self.entity)


def entity_label(entity: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{t}={n}" for t, n in entity)


@dataclass(frozen=True)
class PrincipalSpec:
    key: str
    principal: str
    role: str
    bindings: tuple[AclBinding, ...]


@dataclass(frozen=True)
class AccessSpec:
    principals: tuple[PrincipalSpec, ...] = ()
    acls: tuple[AclBinding, ...] = ()  # raw bindings
    users: tuple[ScramUserSpec, ...] = ()
    quotas: tuple[QuotaSpec, ...] = ()
    owns: str = "nothing"
    declared: bool = False  # the catalog has any access section at all
    topic_names: tuple[str, ...] = field(default=())  # catalog topic names (for health)

    def bindings(self) -> tuple[AclBinding, ...]:
        """Every binding the catalog declares, expanded and deduplicated, sorted."""
        out = {b for p in self.principals for b in p.bindings} | set(self.acls)
        return tuple(sorted(out))

    def declared_principals(self) -> set[str]:
        return {b.principal for b in self.bindings()}

    def to_digest(self) -> list:
        return [
            [list(b.to_dict().values()) for b in self.bindings()],
            [[u.name, u.mechanism, u.iterations, u.password.describe()] for u in self.users],
            [[list(map(list, q.entity)), list(map(list, q.values))] for q in self.quotas],
            self.owns,
        ]


# -- building ----------------------------------------------------------------------------


def _names(errors, path: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.add(path, f"must be a list of names, got {show(value)}")
        return []
    return value


def _choice(errors, path: str, value: Any, options: tuple[str, ...], default: str | None = None):
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or value.strip().lower().replace("-", "_") not in options:
        errors.add(path, f"must be one of {', '.join(options)}, got {show(value)}")
        return None
    return value.strip().lower().replace("-", "_")


def _principal(errors, path: str, value: Any) -> str | None:
    if not isinstance(value, str) or not PRINCIPAL.fullmatch(value):
        errors.add(path, f"must be a principal such as User:fraud-detector, got {show(value)}")
        return None
    return value


def _resource_name(errors, path: str, value: Any) -> str | None:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        errors.add(
            path, f"must be a resource name (no spaces or control characters), got {show(value)}"
        )
        return None
    return value


def build_access(errors, data: dict, topics: list, env: str, environments) -> AccessSpec:
    """The access sections of the catalog document, resolved against its topics
    (`TopicSpec`s of `env`). Problems go to `errors` with their YAML paths."""
    keys = ("principals", "acls", "users", "quotas", "access")
    if not any(k in data for k in keys):
        return AccessSpec(topic_names=tuple(t.name for t in topics))
    by_key = {t.key: t.name for t in topics}
    strict = env == "prod" or "prod" in environments
    principals = _build_principals(errors, data.get("principals"), by_key)
    acls = _build_acls(errors, data.get("acls"), strict)
    users = _build_users(errors, data.get("users"))
    quotas = _build_quotas(errors, data.get("quotas"))
    owns = "nothing"
    raw = data.get("access")
    if raw is not None:
        if not isinstance(raw, dict):
            errors.add(
                "access",
                f"must be a mapping such as {{owns: declared_principals}}, got {show(raw)}",
            )
        else:
            errors.unknown_keys("access", raw, ACCESS_KEYS)
            owns = (
                _choice(errors, "access.owns", raw.get("owns"), OWNERSHIP, "nothing") or "nothing"
            )
    return AccessSpec(
        principals=tuple(principals),
        acls=tuple(acls),
        users=tuple(users),
        quotas=tuple(quotas),
        owns=owns,
        declared=True,
        topic_names=tuple(t.name for t in topics),
    )


def _mapping(errors, path: str, raw: Any) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.add(path, f"must be a mapping of name to settings, got {show(raw)}")
        return {}
    return raw


def _list(errors, path: str, raw: Any) -> list:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.add(path, f"must be a list, got {show(raw)}")
        return []
    return raw


def _build_principals(errors, raw: Any, by_key: dict[str, str]) -> list[PrincipalSpec]:
    out = []
    for key, spec in _mapping(errors, "principals", raw).items():
        path = f"principals.{key}"
        if not isinstance(spec, dict):
            errors.add(path, f"must be a mapping (reads, writes, group, ...), got {show(spec)}")
            continue
        errors.unknown_keys(path, spec, PRINCIPAL_KEYS)
        principal = _principal(errors, f"{path}.principal", spec.get("principal", f"User:{key}"))
        role = _choice(errors, f"{path}.role", spec.get("role"), ROLES, "service")
        reads = _names(errors, f"{path}.reads", spec.get("reads"))
        writes = _names(errors, f"{path}.writes", spec.get("writes"))
        for field_name, names in (("reads", reads), ("writes", writes)):
            for i, name in enumerate(names):
                if name not in by_key:
                    errors.add(
                        f"{path}.{field_name}[{i}]",
                        f"topic {show(name)} is not declared under topics: (declare it, or use a raw acls: entry)",
                    )
        group = spec.get("group")
        if group is not None:
            group = _resource_name(errors, f"{path}.group", group)
        elif reads:
            errors.add(
                f"{path}.group", "a principal that reads needs its consumer group (a prefix)"
            )
        txn = spec.get("transactional_id")
        if txn is not None:
            txn = _resource_name(errors, f"{path}.transactional_id", txn)
        idempotent = spec.get("idempotent", True)
        if not isinstance(idempotent, bool):
            errors.add(f"{path}.idempotent", f"must be true or false, got {show(idempotent)}")
            idempotent = True
        hosts = _names(errors, f"{path}.hosts", spec.get("hosts", ["*"])) or ["*"]
        if principal is None:
            continue
        grants: list[tuple[str, str, str, str]] = []
        for t in reads:
            if t in by_key:
                grants += [("topic", by_key[t], "literal", op) for op in ("read", "describe")]
        for t in writes:
            if t in by_key:
                grants += [("topic", by_key[t], "literal", op) for op in ("write", "describe")]
        if group:
            grants.append(("group", group, "prefixed", "read"))
        if writes and idempotent:
            grants.append(("cluster", CLUSTER_RESOURCE, "literal", "idempotent_write"))
        if txn:
            grants += [("transactional_id", txn, "prefixed", op) for op in ("write", "describe")]
        bindings = {
            AclBinding(principal, rtype, name, pattern, op, "allow", host)
            for host in hosts
            for rtype, name, pattern, op in grants
        }
        if not bindings:
            errors.add(path, "grants nothing: give it reads, writes, a group or a transactional_id")
        out.append(PrincipalSpec(str(key), principal, role or "service", tuple(sorted(bindings))))
    return out


def _build_acls(errors, raw: Any, strict: bool) -> list[AclBinding]:
    out = []
    for i, entry in enumerate(_list(errors, "acls", raw)):
        path = f"acls[{i}]"
        if not isinstance(entry, dict):
            errors.add(
                path,
                f"must be a mapping (principal, resource, name, operations, ...), got {show(entry)}",
            )
            continue
        errors.unknown_keys(path, entry, ACL_KEYS)
        principal_raw = entry.get("principal")
        wildcard = principal_raw == "User:*"
        principal = "User:*" if wildcard else _principal(errors, f"{path}.principal", principal_raw)
        rtype = _choice(errors, f"{path}.resource", entry.get("resource"), RESOURCE_TYPES)
        name = entry.get("name", CLUSTER_RESOURCE if rtype == "cluster" else None)
        name = _resource_name(errors, f"{path}.name", name)
        pattern = _choice(errors, f"{path}.pattern", entry.get("pattern"), PATTERNS, "literal")
        permission = _choice(
            errors, f"{path}.permission", entry.get("permission"), PERMISSIONS, "allow"
        )
        host = entry.get("host", "*")
        if not isinstance(host, str) or not NAME.fullmatch(host):
            errors.add(f"{path}.host", f"must be an IP address or *, got {show(host)}")
            host = None
        if "operations" in entry and "operation" in entry:
            errors.add(path, "give operations: [...] or operation: ..., not both")
        ops_raw = entry.get("operations", entry.get("operation"))
        ops = []
        for j, op in enumerate(_names(errors, f"{path}.operations", ops_raw)):
            ok = _choice(errors, f"{path}.operations[{j}]", op, OPERATIONS)
            if ok:
                ops.append(ok)
        if ops_raw is None:
            errors.add(f"{path}.operations", "missing: name the operations it allows or denies")
        ack = entry.get("acknowledged", False)
        if not isinstance(ack, bool):
            errors.add(f"{path}.acknowledged", f"must be true or false, got {show(ack)}")
            ack = False
        if strict and not ack and permission == "allow":
            if wildcard:
                errors.add(
                    f"{path}.principal",
                    "User:* (every user) is refused in a catalog with a prod environment; "
                    "set acknowledged: true on this entry if it is really meant",
                )
            if "all" in ops:
                errors.add(
                    f"{path}.operations",
                    "ALL operations is refused in a catalog with a prod environment; name the "
                    "operations, or set acknowledged: true on this entry if it is really meant",
                )
        if None in (principal, rtype, name, pattern, permission, host):
            continue
        for op in ops:
            out.append(AclBinding(principal, rtype, name, pattern, op, permission, host))
    return out


def _build_users(errors, raw: Any) -> list[ScramUserSpec]:
    out = []
    for name, spec in _mapping(errors, "users", raw).items():
        path = f"users.{name}"
        if not isinstance(spec, dict):
            errors.add(
                path, f"must be a mapping (mechanism, iterations, password_env), got {show(spec)}"
            )
            continue
        if "password" in spec:
            errors.add(
                f"{path}.password",
                "a password never goes in the catalog (it would end up in git, plans and logs); "
                "name where it is read at apply time: password_env: VARIABLE or password_file: PATH",
            )
        errors.unknown_keys(path, {k: v for k, v in spec.items() if k != "password"}, USER_KEYS)
        if not NAME.fullmatch(str(name)) or len(str(name)) > 200:
            errors.add(path, f"user name {show(name)} is not usable")
            continue
        mech = spec.get("mechanism", "SCRAM-SHA-512")
        if not isinstance(mech, str) or mech.upper() not in SCRAM_MECHANISMS:
            errors.add(
                f"{path}.mechanism",
                f"must be one of {', '.join(SCRAM_MECHANISMS)}, got {show(mech)}",
            )
            mech = None
        iters = spec.get("iterations", MIN_ITERATIONS)
        if (
            isinstance(iters, bool)
            or not isinstance(iters, int)
            or not MIN_ITERATIONS <= iters <= MAX_ITERATIONS
        ):
            errors.add(
                f"{path}.iterations",
                f"must be a whole number from {MIN_ITERATIONS} to {MAX_ITERATIONS}, got {show(iters)}",
            )
            iters = None
        env, file = spec.get("password_env"), spec.get("password_file")
        source = None
        if (env is None) == (file is None):
            errors.add(
                path,
                "name where its password is read: exactly one of password_env or password_file",
            )
        elif env is not None:
            if not isinstance(env, str) or not ENV_NAME.fullmatch(env):
                errors.add(
                    f"{path}.password_env", f"must be an environment variable name, got {show(env)}"
                )
            else:
                source = PasswordSource(env=env)
        else:
            if not isinstance(file, str) or not file.strip() or "\x00" in file or len(file) > 4096:
                errors.add(f"{path}.password_file", f"must be a file path, got {show(file)}")
            else:
                source = PasswordSource(file=file)
        if mech and iters and source:
            out.append(ScramUserSpec(str(name), mech.upper(), iters, source))
    return out


def _rate(errors, path: str, key: str, value: Any) -> float | None:
    if key == "request_percentage":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1e6:
            errors.add(
                path,
                f"must be a positive number (percent of one request thread), got {show(value)}",
            )
            return None
        return float(value)
    try:
        n = parse_size_bytes(value)
    except ValueError:
        n = None
    if n is None or n <= 0:
        errors.add(
            path, f"must be a positive byte rate per second such as 10MiB, got {show(value)}"
        )
        return None
    return float(n)


def _build_quotas(errors, raw: Any) -> list[QuotaSpec]:
    out = []
    seen: set = set()
    for i, entry in enumerate(_list(errors, "quotas", raw)):
        path = f"quotas[{i}]"
        if not isinstance(entry, dict):
            errors.add(path, f"must be a mapping (user and/or client_id, rates), got {show(entry)}")
            continue
        errors.unknown_keys(path, entry, QUOTA_ENTRY_KEYS)
        entity = []
        for k, kafka_name in (("user", "user"), ("client_id", "client-id")):
            if k in entry:
                v = entry[k]
                if not isinstance(v, str) or not NAME.fullmatch(v):
                    errors.add(f"{path}.{k}", f"must be a name, got {show(v)}")
                else:
                    entity.append((kafka_name, v))
        if "user" not in entry and "client_id" not in entry:
            errors.add(path, "name its user, its client_id, or both")
        values = []
        for key in QUOTA_KEYS:
            if key in entry:
                v = _rate(errors, f"{path}.{key}", key, entry[key])
                if v is not None:
                    values.append((key, v))
        if not any(k in entry for k in QUOTA_KEYS):
            errors.add(path, f"sets no quota: give one of {', '.join(QUOTA_KEYS)}")
        if entity:
            ent = tuple(entity)
            if ent in seen:
                errors.add(path, f"{entity_label(ent)} is declared twice")
            seen.add(ent)
            if values:
                out.append(QuotaSpec(ent, tuple(values)))
    return out
