"""The access sections of a snapshot: ACL bindings, SCRAM users and client quotas, checked
field by field when a snapshot is read, and typed for restore, diff and the DR drill.

What a snapshot records, and nothing more:

- `acls`: every binding in Kafka's enum names (`{"principal", "host", "operation",
  "permission", "resource_type", "resource_name", "pattern_type"}`);
- `scram_users`: each user's name and its mechanisms with their iterations
  (`{"name", "mechanisms": [{"mechanism", "iterations"}]}`), **never a password, salt or
  hash**: a restore takes passwords from the operator at restore time;
- `quotas`: client quotas, `{"entity": [{"type", "name"}], "values": {key: number}}`
  (snapshots taken before quotas were recorded have no `quotas` key).

A file is checked whole (`access_problems`): an entry with a key it should not have (a
`password`, a `salt`, anything else), an operation, resource type, pattern, permission,
mechanism or quota key Kafka does not have, an iteration count outside Kafka's range, a
value that is not a finite number >= 0, or more entries than any cluster holds is refused
with its place in the file, so a hostile file restores nothing. Pure.
"""

import math
import re
from dataclasses import dataclass
from typing import Any

from ecap_ops.catalog.access import (
    MAX_ITERATIONS,
    MIN_ITERATIONS,
    OPERATIONS,
    PERMISSIONS,
    RESOURCE_TYPES,
    SCRAM_MECHANISMS,
    AclBinding,
)

# More than any real cluster holds; a file beyond these is refused before anything is planned.
MAX_ACLS = 100_000
MAX_USERS = 10_000
MAX_QUOTAS = 10_000
MAX_NAME = 1000

ACL_FIELDS = (
    "principal",
    "host",
    "operation",
    "permission",
    "resource_type",
    "resource_name",
    "pattern_type",
)
USER_FIELDS = ("name", "mechanisms")
MECHANISM_FIELDS = ("mechanism", "iterations")
QUOTA_FIELDS = ("entity", "values")
ENTITY_FIELDS = ("type", "name")
QUOTA_ENTITY_TYPES = ("user", "client-id", "ip")
QUOTA_KEYS = (
    "producer_byte_rate",
    "consumer_byte_rate",
    "request_percentage",
    "controller_mutation_rate",
    "connection_creation_rate",
)
PATTERN_TYPES = ("LITERAL", "PREFIXED")
_SECRETISH = re.compile(r"pass|salt|hash|secret|key|token|credential|nonce", re.I)
_TEXT = re.compile(r"[^\x00-\x1f\x7f]{1," + str(MAX_NAME) + "}")
_PRINCIPAL = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,40}:" + _TEXT.pattern)
_HOST = re.compile(r"\*|[0-9A-Fa-f:.%]{1,64}")

QuotaEntity = tuple[tuple[str, str], ...]


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _key_problem(where: str, key: Any, allowed: tuple[str, ...]) -> str:
    shown = _short(str(key), 30)
    if _SECRETISH.search(str(key)):
        return (
            f"{where}.{shown}: not a field ecap-ops writes (a snapshot never holds a password, "
            "salt, hash or key); the file was edited, its value is not shown"
        )
    return f"{where}.{shown}: unknown field (an entry has only {', '.join(allowed)})"


def _fields(out: list[str], entry: Any, where: str, allowed: tuple[str, ...]) -> bool:
    """Is `entry` an object with exactly the allowed keys? Problems go to `out`."""
    if not isinstance(entry, dict):
        out.append(f"{where}: must be an object, got {type(entry).__name__}")
        return False
    ok = True
    for key in entry:
        if key not in allowed:
            out.append(_key_problem(where, key, allowed))
            ok = False
    for key in allowed:
        if key not in entry:
            out.append(f"{where}.{key}: missing")
            ok = False
    return ok


def _enum(out: list[str], value: Any, where: str, options: tuple[str, ...], what: str) -> None:
    if not isinstance(value, str) or value not in options:
        out.append(
            f"{where}: unknown {what} {_short(value)} (Kafka's {what}s: {', '.join(options)})"
        )


def _text(out: list[str], value: Any, where: str, what: str, rx=_TEXT) -> None:
    if not isinstance(value, str) or not rx.fullmatch(value):
        out.append(f"{where}: not a usable {what}: {_short(value)}")


def _list(out: list[str], doc: dict, key: str, limit: int) -> list:
    value = doc.get(key)
    if not isinstance(value, list):
        out.append(f".{key}: expected list, got {type(value).__name__}")
        return []
    if len(value) > limit:
        out.append(
            f".{key}: {len(value):,} entries, more than the {limit:,} any cluster holds; "
            "the file is not restored"
        )
        return []
    return value


def access_problems(doc: dict) -> list[str]:
    """Every problem of a snapshot's access sections (`acls`, `scram_users`, `quotas`)."""
    out: list[str] = []
    if "acls" not in doc:
        out.append(".acls: missing")
    else:
        for i, a in enumerate(_list(out, doc, "acls", MAX_ACLS)):
            w = f"acls[{i}]"
            if not _fields(out, a, w, ACL_FIELDS):
                continue
            _text(out, a["principal"], f"{w}.principal", "principal (Type:name)", _PRINCIPAL)
            _text(out, a["host"], f"{w}.host", "host (an IP address or *)", _HOST)
            ops = tuple(o.upper() for o in OPERATIONS)
            _enum(out, a["operation"], f"{w}.operation", ops, "operation")
            perms = tuple(p.upper() for p in PERMISSIONS)
            _enum(out, a["permission"], f"{w}.permission", perms, "permission")
            types = tuple(t.upper() for t in RESOURCE_TYPES)
            _enum(out, a["resource_type"], f"{w}.resource_type", types, "resource type")
            _text(out, a["resource_name"], f"{w}.resource_name", "resource name")
            _enum(out, a["pattern_type"], f"{w}.pattern_type", PATTERN_TYPES, "pattern type")
    if "scram_users" not in doc:
        out.append(".scram_users: missing")
    else:
        for i, u in enumerate(_list(out, doc, "scram_users", MAX_USERS)):
            w = f"scram_users[{i}]"
            if not _fields(out, u, w, USER_FIELDS):
                continue
            _text(out, u["name"], f"{w}.name", "user name")
            mechs = u["mechanisms"]
            if not isinstance(mechs, list) or len(mechs) > len(SCRAM_MECHANISMS):
                out.append(
                    f"{w}.mechanisms: must be a list of at most {len(SCRAM_MECHANISMS)} mechanisms"
                )
                continue
            for j, m in enumerate(mechs):
                mw = f"{w}.mechanisms[{j}]"
                if not _fields(out, m, mw, MECHANISM_FIELDS):
                    continue
                _enum(out, m["mechanism"], f"{mw}.mechanism", SCRAM_MECHANISMS, "SCRAM mechanism")
                it = m["iterations"]
                if type(it) is not int or not MIN_ITERATIONS <= it <= MAX_ITERATIONS:
                    out.append(
                        f"{mw}.iterations: must be a whole number from {MIN_ITERATIONS} to "
                        f"{MAX_ITERATIONS} (Kafka's range), got {_short(it)}"
                    )
    if "quotas" in doc:
        for i, q in enumerate(_list(out, doc, "quotas", MAX_QUOTAS)):
            w = f"quotas[{i}]"
            if not _fields(out, q, w, QUOTA_FIELDS):
                continue
            entity = q["entity"]
            if not isinstance(entity, list) or not 1 <= len(entity) <= 2:
                out.append(f"{w}.entity: must be a list of one or two {{type, name}} objects")
            else:
                for j, e in enumerate(entity):
                    ew = f"{w}.entity[{j}]"
                    if _fields(out, e, ew, ENTITY_FIELDS):
                        _enum(out, e["type"], f"{ew}.type", QUOTA_ENTITY_TYPES, "quota entity type")
                        _text(out, e["name"], f"{ew}.name", "quota entity name")
            values = q["values"]
            if not isinstance(values, dict) or not values:
                out.append(f"{w}.values: must be an object of at least one quota")
                continue
            for k, v in values.items():
                if k not in QUOTA_KEYS:
                    out.append(_key_problem(f"{w}.values", k, QUOTA_KEYS))
                elif (
                    isinstance(v, bool)
                    or not isinstance(v, (int, float))
                    or not math.isfinite(v)
                    or v < 0
                ):
                    out.append(f"{w}.values.{k}: must be a number >= 0, got {_short(v)}")
    return out


# -- typed views, for restore, diff and the drill ----------------------------------------


def binding_of_entry(d: dict) -> AclBinding:
    """A verified snapshot ACL entry (Kafka's enum names) as a binding (lowercase words)."""
    return AclBinding(
        principal=d["principal"],
        resource_type=d["resource_type"].lower(),
        resource_name=d["resource_name"],
        pattern=d["pattern_type"].lower(),
        operation=d["operation"].lower(),
        permission=d["permission"].lower(),
        host=d["host"],
    )


def acl_entry(b: AclBinding) -> dict:
    """A binding as a snapshot records it (Kafka's enum names)."""
    return {
        "principal": b.principal,
        "host": b.host,
        "operation": b.operation.upper(),
        "permission": b.permission.upper(),
        "resource_type": b.resource_type.upper(),
        "resource_name": b.resource_name,
        "pattern_type": b.pattern.upper(),
    }


def entity_of_entry(q: dict) -> QuotaEntity:
    """A snapshot quota's entity in Kafka's order (user first), as the gateway reads it."""
    return tuple(
        sorted(((e["type"], e["name"]) for e in q["entity"]), key=lambda kv: kv[0] != "user")
    )


@dataclass(frozen=True)
class SnapshotUser:
    name: str
    mechanisms: tuple[tuple[str, int], ...]  # (mechanism, iterations)


@dataclass(frozen=True)
class SnapshotAccess:
    """What a verified snapshot says about the cluster's access."""

    bindings: frozenset[AclBinding]
    users: tuple[SnapshotUser, ...]
    quotas: dict[QuotaEntity, dict[str, float]]
    acls_recorded: bool  # False: the snapshot could not read ACLs (e.g. no authorizer)
    users_recorded: bool
    quotas_recorded: bool  # False also for snapshots taken before quotas were recorded


def snapshot_access(doc: dict) -> SnapshotAccess:
    """The access a verified snapshot document holds."""
    complete = doc.get("complete", {})
    quotas: dict[QuotaEntity, dict[str, float]] = {}
    for q in doc.get("quotas") or []:
        quotas.setdefault(entity_of_entry(q), {}).update(
            {k: float(v) for k, v in q["values"].items()}
        )
    return SnapshotAccess(
        bindings=frozenset(binding_of_entry(a) for a in doc["acls"]),
        users=tuple(
            SnapshotUser(
                u["name"],
                tuple(sorted((m["mechanism"], m["iterations"]) for m in u["mechanisms"])),
            )
            for u in sorted(doc["scram_users"], key=lambda u: u["name"])
        ),
        quotas=quotas,
        acls_recorded=bool(complete.get("acls", bool(doc["acls"]))),
        users_recorded=bool(complete.get("scram_users", bool(doc["scram_users"]))),
        quotas_recorded="quotas" in doc and bool(complete.get("quotas", True)),
    )
