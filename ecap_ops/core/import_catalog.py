"""Adopting a cluster: its observed topics as a catalog document. Pure.

`catalog_document(cluster, env, match, exclude)` turns the topics `read_cluster_state`
read (partitions, replication factor, and their topic-level overrides: config source
DYNAMIC_TOPIC_CONFIG, never a broker or default value) into the catalog's data, with the
catalog's human units (`retention: 7d`, `max_message_size: 2MiB`, `retention: infinite`).
An override equal to the broker's default is still imported: it was set on the topic, and
the plan compares overrides with overrides, so it is no drift. `render_catalog` writes it
as YAML that `load_catalog` reads back; the import service then checks that the plan of the
written catalog against the same cluster has nothing to do before it writes a byte.

A topic whose overrides the catalog cannot declare (a config key this ecap-ops does not
know, a value it cannot hold) is a problem: nothing is written, because a catalog without
that override would plan to remove it.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ecap_ops.catalog.kafka_configs import TOPIC_CONFIGS, canonical_value, normalize_config_value
from ecap_ops.catalog.model import MAX_PATTERNS, Scope, pattern_problem
from ecap_ops.catalog.units import show
from ecap_ops.core.state import CANARY_TOPIC, ClusterState, TopicState, is_internal_topic

if TYPE_CHECKING:
    from ecap_ops.catalog.access import AclBinding
    from ecap_ops.core.access import AccessState

# Kafka config -> the catalog's human field, and how its value is written.
_DURATION_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000))
_SIZE_UNITS = (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))
HUMAN_FIELD_OF = {
    "retention.ms": "retention",
    "retention.bytes": "retention_bytes",
    "max.message.bytes": "max_message_size",
    "compression.type": "compression",
    "cleanup.policy": "cleanup_policy",
}

HUMAN_ORDER = ("retention", "retention_bytes", "compression", "max_message_size", "cleanup_policy")


def duration_text(ms: int) -> str:
    """Milliseconds in the largest unit that holds them exactly: 604800000 -> `7d`,
    90000 -> `90s`, 1500 -> `1500ms`, -1 -> `infinite`."""
    if ms < 0:
        return "infinite"
    for unit, size in _DURATION_UNITS:
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def size_value(n: int) -> str | int:
    """Bytes in the largest binary unit that holds them exactly (1048576 -> `1MiB`), else
    the number of bytes (1048588 stays 1048588); -1 -> `infinite`."""
    if n < 0:
        return "infinite"
    for unit, size in _SIZE_UNITS:
        if n and n % size == 0:
            return f"{n // size}{unit}"
    return n


def match_problems(patterns: Sequence[object], option: str) -> list[str]:
    """What is wrong with `--match` / `--exclude` patterns, each naming its place."""
    problems = []
    if len(patterns) > MAX_PATTERNS:
        problems.append(f"{option}: {len(patterns)} patterns; at most {MAX_PATTERNS}")
    for i, p in enumerate(patterns[:MAX_PATTERNS]):
        problem = pattern_problem(p)
        if problem:
            problems.append(f"{option} #{i + 1} {problem}")
    return problems


@dataclass(frozen=True)
class ImportedCatalog:
    """A cluster's topics as catalog data, and what was left out of it."""

    cluster_id: str
    env: str
    document: dict[str, Any]  # the catalog, ready to be written as YAML
    topics: tuple[str, ...]  # imported, sorted
    overrides: int  # topic-level overrides imported, all topics
    internal: int  # Kafka's internal topics and ecap-ops' canary, left out
    not_matching: int  # user topics no --match pattern matches (or an --exclude does)
    problems: tuple[str, ...] = ()  # overrides the catalog cannot declare: nothing is written
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        return {
            "cluster_id": self.cluster_id,
            "env": self.env,
            "topics": len(self.topics),
            "overrides": self.overrides,
            "left_out": {"internal": self.internal, "not_matching": self.not_matching},
            "problems": list(self.problems),
            "notes": list(self.notes),
            "acl_entries": len(self.document.get("acls", ())),
            "users": len(self.document.get("users", ())),
        }


def _config_value(key: str, raw: str) -> Any:
    """A topic-level override as the catalog writes it (raises ValueError if it cannot)."""
    kind = TOPIC_CONFIGS[key][0]
    if key in ("retention.ms",):
        return duration_text(int(raw))
    if key in ("retention.bytes", "max.message.bytes"):
        return size_value(int(raw))
    if key in ("compression.type", "cleanup.policy"):
        return canonical_value(key, raw)
    if kind in ("long", "int"):
        return int(raw)
    if kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise ValueError(f"expected true or false, got {show(raw)}")
        return raw.lower() == "true"
    if kind == "double":
        return float(raw)
    return raw


def topic_entry(topic: TopicState, env_rf: int) -> tuple[dict[str, Any], list[str]]:
    """One topic's catalog entry (partitions, its replication factor when it differs from
    the environment's, its overrides in human units) and what cannot be declared."""
    entry: dict[str, Any] = {"partitions": topic.partition_count}
    if topic.replication_factor != env_rf:
        entry["replication_factor"] = topic.replication_factor
    configs: dict[str, Any] = {}
    human_values: dict[str, Any] = {}
    problems = []
    for key in sorted(topic.overrides):
        raw = topic.overrides[key]
        where = f"topic {show(topic.name, 80)}: override {show(key, 60)}"
        if key not in TOPIC_CONFIGS:
            problems.append(
                f"{where} is a topic config this ecap-ops does not know, so the catalog cannot "
                "declare it (a plan would remove it); remove it from the topic or leave the topic out "
                "(--exclude)"
            )
            continue
        if raw is None:
            problems.append(f"{where}: the broker did not return its value")
            continue
        try:
            value = _config_value(key, raw)
            # It must read back as exactly what the broker holds, or the plan would change it.
            human = key in HUMAN_FIELD_OF
            back = normalize_config_value(key, _parsed(key, value) if human else value)
            if canonical_value(key, back) != canonical_value(key, raw):
                raise ValueError(f"reads back as {show(back)}")
        except ValueError as exc:
            problems.append(f"{where}={show(raw)} cannot be declared in the catalog: {exc}")
            continue
        if key in HUMAN_FIELD_OF:
            human_values[HUMAN_FIELD_OF[key]] = value
        else:
            configs[key] = value
    # The human fields in the order the shipped catalog writes them.
    entry.update({f: human_values[f] for f in HUMAN_ORDER if f in human_values})
    if configs:
        entry["configs"] = configs
    return entry, problems


def _parsed(key: str, value: Any) -> Any:
    """A human field's value read the way the catalog reads it."""
    from ecap_ops.catalog.units import parse_duration_ms, parse_size_bytes

    if key == "retention.ms":
        return parse_duration_ms(value)
    if key in ("retention.bytes", "max.message.bytes"):
        return parse_size_bytes(value)
    return value


def _selected(cluster: ClusterState, scope: Scope) -> tuple[list[TopicState], int, int]:
    """The topics to import, and how many internal and non-matching ones were left out."""
    chosen, internal, not_matching = [], 0, 0
    for name in sorted(cluster.topics):
        topic = cluster.topics[name]
        if name == CANARY_TOPIC or is_internal_topic(name, topic.internal):
            internal += 1
        elif not scope.covers(name):
            not_matching += 1
        else:
            chosen.append(topic)
    return chosen, internal, not_matching


def catalog_document(
    cluster: ClusterState,
    env: str,
    match: Iterable[str] = (),
    exclude: Iterable[str] = (),
    access: "AccessState | None" = None,
) -> ImportedCatalog:
    """The cluster's topics (those matching a `match` pattern, if any, and no `exclude`
    pattern; never internal ones) as a catalog for environment `env`. With patterns, the
    catalog's `scope:` is those patterns, so its plan leaves the other topics alone."""
    scope = Scope(tuple(dict.fromkeys(match)), tuple(dict.fromkeys(exclude)))
    chosen, internal, not_matching = _selected(cluster, scope)
    rfs = Counter(t.replication_factor for t in chosen)
    # The environment's replication factor: the most common one (the lowest on a tie).
    env_rf = min(rfs, key=lambda rf: (-rfs[rf], rf)) if rfs else 1
    topics: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    overrides = 0
    for t in chosen:
        entry, found = topic_entry(t, env_rf)
        problems += found
        overrides += len(t.overrides)
        topics[t.name] = entry
    doc: dict[str, Any] = {"version": 1, "environments": {env: {"replication_factor": env_rf}}}
    if scope.declared:
        doc["scope"] = {k: v for k, v in scope.to_dict().items() if v}
    doc["topics"] = topics
    notes = []
    if access is not None:
        if not access.authorizer:
            notes.append("the cluster runs no authorizer: there are no ACL bindings to import")
        acls, found = acl_entries(access.acls, strict=env == "prod")
        users, more = user_entries(access.users)
        notes += found + more
        if acls:
            doc["acls"] = acls
        if users:
            doc["users"] = users
        if access.quotas:
            notes.append(
                f"{len(access.quotas)} client quota(s) were not imported (declare them under "
                "quotas: by hand if the catalog should manage them)"
            )
    if env_rf > max(1, cluster.broker_count) and cluster.broker_count:
        notes.append(
            f"replication factor {env_rf} is more than the {cluster.broker_count} live broker(s)"
        )
    return ImportedCatalog(
        cluster_id=cluster.cluster_id,
        env=env,
        document=doc,
        topics=tuple(t.name for t in chosen),
        overrides=overrides,
        internal=internal,
        not_matching=not_matching,
        problems=tuple(problems),
        notes=tuple(notes),
    )


def _declarable(b: "AclBinding") -> bool:
    """Whether the catalog's raw `acls:` can hold binding `b` as it is."""
    from ecap_ops.catalog.access import NAME, OPERATIONS, PATTERNS, PRINCIPAL, RESOURCE_TYPES

    return bool(
        (b.principal == "User:*" or PRINCIPAL.fullmatch(b.principal))
        and b.resource_type in RESOURCE_TYPES
        and NAME.fullmatch(b.resource_name)
        and b.pattern in PATTERNS
        and b.operation in OPERATIONS
        and b.permission in ("allow", "deny")
        and NAME.fullmatch(b.host)
    )


def acl_entries(bindings: Iterable["AclBinding"], strict: bool) -> tuple[list[dict], list[str]]:
    """The cluster's ACL bindings as the catalog's raw `acls:` entries, one entry per
    principal, resource, pattern, permission and host with its operations; and what could
    not be declared (left on the cluster, reported as unmanaged by `access plan`).
    `strict` (a prod catalog): an entry allowing every user or ALL operations carries
    `acknowledged: true`, since it exists on the cluster today; review it."""
    groups: dict[tuple, list[str]] = {}
    left = []
    for b in sorted(bindings):
        if not _declarable(b):
            left.append(b.describe()[:200])
            continue
        key = (b.principal, b.resource_type, b.resource_name, b.pattern, b.permission, b.host)
        groups.setdefault(key, []).append(b.operation)
    entries = []
    for (principal, rtype, name, pattern, permission, host), ops in sorted(groups.items()):
        entry: dict[str, Any] = {"principal": principal, "resource": rtype, "name": name}
        if pattern != "literal":
            entry["pattern"] = pattern
        entry["operations"] = sorted(set(ops))
        if permission != "allow":
            entry["permission"] = permission
        if host != "*":
            entry["host"] = host
        if strict and permission == "allow" and (principal == "User:*" or "all" in ops):
            entry["acknowledged"] = True
        entries.append(entry)
    notes = (
        [
            f"{len(left)} ACL binding(s) the catalog cannot declare were left out (they stay on "
            f"the cluster, unmanaged): " + "; ".join(left[:5])
        ]
        if left
        else []
    )
    return entries, notes


def password_variable(user: str, taken: set[str]) -> str:
    """A placeholder environment variable name for a user's password: `ANALYTICS_PASSWORD`."""
    import re

    base = re.sub(r"[^A-Za-z0-9]+", "_", user).strip("_").upper()[:100] or "USER"
    if base[0].isdigit():
        base = "USER_" + base
    name, n = f"{base}_PASSWORD", 2
    while name in taken:
        name, n = f"{base}_{n}_PASSWORD", n + 1
    taken.add(name)
    return name


def user_entries(users: dict[str, dict[str, int]]) -> tuple[dict[str, dict], list[str]]:
    """The cluster's SCRAM users as the catalog's `users:`: mechanism and iterations, and a
    placeholder `password_env` name. Passwords are never read (Kafka does not return them)
    and never written."""
    from ecap_ops.catalog.access import MAX_ITERATIONS, MIN_ITERATIONS, NAME, SCRAM_MECHANISMS

    out: dict[str, dict] = {}
    notes = []
    taken: set[str] = set()
    for name in sorted(users):
        creds = {
            m: i
            for m, i in users[name].items()
            if m in SCRAM_MECHANISMS and MIN_ITERATIONS <= i <= MAX_ITERATIONS
        }
        if not creds or not NAME.fullmatch(name) or len(name) > 200:
            notes.append(f"SCRAM user {show(name)} cannot be declared; left out (unmanaged)")
            continue
        mech = "SCRAM-SHA-512" if "SCRAM-SHA-512" in creds else sorted(creds)[0]
        if len(creds) > 1:
            notes.append(
                f"SCRAM user {show(name)} has credentials for {', '.join(sorted(creds))}; the "
                f"catalog declares {mech} (the other stays on the cluster)"
            )
        out[name] = {
            "mechanism": mech,
            "iterations": creds[mech],
            "password_env": password_variable(name, taken),
        }
    return out, notes


HEADER = """\
# Imported by `ecap-ops import` from cluster {cluster_id} (environment {env}).
# Every topic with its partitions, replication factor and topic-level overrides (values
# set on the topic itself, never broker or default values), in the catalog's units:
#   retention -> retention.ms, retention_bytes -> retention.bytes,
#   max_message_size -> max.message.bytes, compression -> compression.type,
#   cleanup_policy -> cleanup.policy; anything else under `configs:`.
# Review it, add each topic's purpose, partition_key and lag thresholds, then check that
# `ecap-ops --catalog THIS_FILE plan` shows no change before managing the cluster with it.
"""


def render_catalog(imported: ImportedCatalog, extra: str = "") -> str:
    """The imported catalog as YAML text the catalog loader reads back exactly (keys YAML
    would read as something else, such as `yes` or `0777`, are quoted)."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    def dump(part: dict) -> str:
        return yaml.dump(
            part,
            Dumper=dumper,
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=False,
            width=1000,
        )

    doc = imported.document
    out = [HEADER.format(cluster_id=imported.cluster_id, env=imported.env)]
    out.append(dump({"version": doc["version"]}))
    out.append("\n" + dump({"environments": doc["environments"]}))
    if "scope" in doc:
        out.append(
            "\n# The topics this catalog manages: the patterns it was imported with. Topics "
            "outside them\n# are left alone by every command, check and audit.\n"
        )
        out.append(dump({"scope": doc["scope"]}))
    out.append("\n" + dump({"topics": doc["topics"]}))
    if "acls" in doc:
        out.append(
            "\n# The cluster's ACL bindings as raw bindings, one entry per principal and "
            "resource.\n# `ecap-ops access plan` shows them in sync; group them into "
            "principals: by role as you review.\n"
        )
        out.append(dump({"acls": doc["acls"]}))
    if "users" in doc:
        out.append(
            "\n# SCRAM users. Passwords are never imported (Kafka does not return them): "
            "each password_env\n# is a placeholder name; set that variable (or use "
            "password_file) before `ecap-ops access apply`.\n"
        )
        out.append(dump({"users": doc["users"]}))
    if extra:
        out.append("\n" + extra)
    return "".join(out)
