"""The metadata snapshot: its document, checksum, verification and the diff of two snapshots.

A snapshot is one JSON document describing a cluster's shape (topics, partitions,
replication, topic-level overrides), consumer groups' committed offsets, ACLs and SCRAM
user names. Its checksum is SHA-256 over the canonical JSON of everything but the
checksum (and the signature). The file is written in one deterministic layout
(`serialize`), and `parse_snapshot` refuses a file whose bytes differ from that layout, so a
single changed byte is always caught, even in whitespace.

The checksum guards against corruption only: anyone who edits a file can recompute it.
With a signing key (ECAP_SIGNING_KEY), a snapshot also carries `signature`, an
HMAC-SHA256 over the canonical JSON of the whole document but the signature, and a reader
holding the key refuses any file without a valid one.

A file is read with a size cap (ECAP_SNAPSHOT_MAX_BYTES, default 512 MiB) and a nesting
cap (64 levels), so a hostile file gets a clear refusal rather than a memory or recursion
blow-up. Pure: reading and writing files is in `ecap_ops.services.dr`.
"""

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ecap_ops.catalog.kafka_configs import canonical_value
from ecap_ops.core.integrity import loads_bounded, sign, verify_tag
from ecap_ops.errors import ConfigError, SnapshotInvalid

FORMAT = "ecap-ops/kafka-metadata-snapshot"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
CHECKSUM_ALGORITHM = "sha256"
SIGNATURE_FIELD = "signature"
# Fields the checksum does not cover: itself, and the signature (which covers the checksum).
_UNCHECKSUMMED = ("checksum", SIGNATURE_FIELD)

MAX_BYTES_ENV = "ECAP_SNAPSHOT_MAX_BYTES"
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")

# What each completeness flag says when it is false.
COMPLETENESS_KEYS = ("topics", "topic_configs", "groups", "group_offsets", "acls", "scram_users")


def canonical_json(doc: Any) -> bytes:
    """The canonical form the checksum is computed over: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def compute_checksum(doc: dict) -> str:
    body = {k: v for k, v in doc.items() if k not in _UNCHECKSUMMED}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def seal(doc: dict) -> dict:
    """The document with its checksum set (any previous checksum replaced). A signature is
    dropped: it would no longer match; `sign_snapshot` signs the sealed document."""
    body = {k: v for k, v in doc.items() if k not in _UNCHECKSUMMED}
    return {**body, "checksum": {"algorithm": CHECKSUM_ALGORITHM, "value": compute_checksum(body)}}


def signed_body(doc: dict) -> bytes:
    """What the signature covers: the canonical JSON of the document without it."""
    return canonical_json({k: v for k, v in doc.items() if k != SIGNATURE_FIELD})


def sign_snapshot(doc: dict, key: bytes) -> dict:
    """The sealed document with its HMAC-SHA256 `signature` under `key` (the key itself is
    never written)."""
    return {**doc, SIGNATURE_FIELD: sign(signed_body(doc), key)}


def max_snapshot_bytes(env: dict[str, str] | None = None) -> int:
    """ECAP_SNAPSHOT_MAX_BYTES (a size such as 512MiB, or bytes), default 512 MiB: the
    largest snapshot file a reader accepts."""
    from ecap_ops.catalog.units import parse_size_bytes

    env = os.environ if env is None else env
    raw = env.get(MAX_BYTES_ENV)
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        n = parse_size_bytes(raw.strip())
    except ValueError:
        n = 0
    if n < 1:
        shown = raw if len(raw) <= 30 else raw[:30] + "..."
        raise ConfigError(
            f"{MAX_BYTES_ENV}: expected a size such as 512MiB or a number of bytes (> 0), got {shown!r}"
        )
    return n


def _short(value: Any, limit: int = 40) -> str:
    """A short prefix of a value from a file, for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def serialize(doc: dict) -> str:
    """The exact text ecap-ops writes for a sealed snapshot (readable, deterministic)."""
    return json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


# -- the document --------------------------------------------------------------------


def topic_entry(
    name: str,
    partitions: int,
    replication_factor: int,
    assignment: list[list[int]],
    overrides: dict[str, str] | None,
    topic_id: str | None = None,
) -> dict:
    """One topic as a snapshot records it. `overrides` None: they could not be read."""
    return {
        "name": name,
        "topic_id": topic_id,
        "partitions": partitions,
        "replication_factor": replication_factor,
        "assignment": [list(r) for r in assignment],
        "overrides": None if overrides is None else dict(sorted(overrides.items())),
    }


def group_entry(
    group_id: str,
    state: str | None,
    protocol_type: str | None,
    members: int | None,
    offsets: list[dict],
    read_at_ms: int,
) -> dict:
    """One consumer group: committed offsets per partition, each with the partition's end offset then."""
    return {
        "group_id": group_id,
        "state": state,
        "protocol_type": protocol_type,
        "members": members,
        "read_at_ms": read_at_ms,
        "offsets": sorted(offsets, key=lambda o: (o["topic"], o["partition"])),
    }


def build_snapshot(
    *,
    tool_version: str,
    cluster_id: str,
    broker_count: int,
    taken_at: str,
    taken_at_ms: int,
    duration_ms: int,
    catalog_env: str,
    catalog_digest: str,
    topics: list[dict],
    groups: list[dict],
    acls: list[dict],
    scram_users: list[dict],
    complete: dict[str, bool],
    notes: list[str],
    requests: dict[str, int] | None = None,
) -> dict:
    """Assemble and seal a snapshot document."""
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool_version": tool_version,
        "taken_at": taken_at,
        "taken_at_ms": taken_at_ms,
        "duration_ms": duration_ms,
        "source": {"cluster_id": cluster_id, "broker_count": broker_count},
        "catalog": {"env": catalog_env, "digest": catalog_digest},
        "complete": {k: bool(complete.get(k, False)) for k in COMPLETENESS_KEYS},
        "notes": list(notes),
        "requests": dict(sorted((requests or {}).items())),
        "topics": sorted(topics, key=lambda t: t["name"]),
        "groups": sorted(groups, key=lambda g: g["group_id"]),
        "acls": sorted(acls, key=lambda a: json.dumps(a, sort_keys=True)),
        "scram_users": sorted(scram_users, key=lambda u: u["name"]),
    }
    return seal(doc)


@dataclass(frozen=True)
class Snapshot:
    """A verified snapshot document, with typed access to what restore and diff need."""

    doc: dict
    source: str = "snapshot"

    @property
    def cluster_id(self) -> str:
        return self.doc["source"]["cluster_id"]

    @property
    def broker_count(self) -> int:
        return self.doc["source"]["broker_count"]

    @property
    def checksum(self) -> str:
        return self.doc["checksum"]["value"]

    @property
    def taken_at(self) -> str:
        return self.doc["taken_at"]

    @property
    def topics(self) -> dict[str, dict]:
        return {t["name"]: t for t in self.doc["topics"]}

    @property
    def groups(self) -> dict[str, dict]:
        return {g["group_id"]: g for g in self.doc["groups"]}

    @property
    def complete(self) -> dict[str, bool]:
        return dict(self.doc["complete"])

    def summary(self) -> dict:
        d = self.doc
        return {
            "source": self.source,
            "cluster_id": self.cluster_id,
            "broker_count": self.broker_count,
            "taken_at": d["taken_at"],
            "tool_version": d["tool_version"],
            "format_version": d["format_version"],
            "checksum": self.checksum,
            "topics": len(d["topics"]),
            "partitions": sum(t["partitions"] for t in d["topics"]),
            "groups": len(d["groups"]),
            "group_offsets": sum(len(g["offsets"]) for g in d["groups"]),
            "acls": len(d["acls"]),
            "scram_users": len(d["scram_users"]),
            "complete": self.complete,
            "notes": list(d["notes"]),
            "catalog_digest": d["catalog"]["digest"],
            "duration_ms": d["duration_ms"],
        }


# -- verification ---------------------------------------------------------------------


def parse_snapshot(
    data: bytes | str,
    source: str = "snapshot",
    *,
    signing_key: bytes | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Snapshot:
    """Verify a snapshot file's bytes and return it, or raise SnapshotInvalid saying why.

    With `signing_key`, the file must also carry a valid signature under that key."""
    if isinstance(data, str) and _SURROGATE.search(data):
        raise SnapshotInvalid(f"{source}: not a snapshot: it is not UTF-8 text (not JSON)")
    if not data.strip():
        raise SnapshotInvalid(f"{source}: the file is empty; it is not a snapshot")
    doc = loads_bounded(data, source, SnapshotInvalid, max_bytes, MAX_DEPTH)
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SnapshotInvalid(
            f'{source}: valid JSON but not an ecap-ops snapshot (expected "format": "{FORMAT}" at the top level)'
        )
    version = doc.get("format_version")
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise SnapshotInvalid(
            f"{source}: unknown snapshot format version {_short(version)} (written by ecap-ops "
            f"{_short(doc.get('tool_version', '?'))}); this ecap-ops reads format version(s) "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}. Use the ecap-ops version that wrote it."
        )
    checksum = doc.get("checksum")
    if (
        not isinstance(checksum, dict)
        or checksum.get("algorithm") != CHECKSUM_ALGORITHM
        or not isinstance(checksum.get("value"), str)
    ):
        raise SnapshotInvalid(
            f'{source}: the checksum field is missing or malformed (expected {{"algorithm": "sha256", "value": ...}})'
        )
    try:
        actual = compute_checksum(doc)
    except UnicodeEncodeError:
        raise SnapshotInvalid(
            f"{source}: holds a lone surrogate escape (\\ud800-\\udfff without its pair), which is not "
            "Unicode text; ecap-ops never writes one, so the file was edited"
        ) from None
    if actual != checksum["value"]:
        raise SnapshotInvalid(
            f"{source}: checksum mismatch: the file says sha256 {checksum['value'][:16]}..., its content hashes to "
            f"{actual[:16]}...; the snapshot was changed after it was written and cannot be trusted"
        )
    verify_tag(signed_body(doc), doc.get(SIGNATURE_FIELD), signing_key, source, SnapshotInvalid)
    if serialize(doc) != text:
        raise SnapshotInvalid(
            f"{source}: the file's bytes differ from what ecap-ops wrote (its content checksum verifies, but its "
            "layout was changed, e.g. reformatted or edited); refusing a snapshot that was modified after it was written"
        )
    problems = _schema_problems(doc)
    if problems:
        raise SnapshotInvalid(
            f"{source}: the snapshot's structure is invalid: " + "; ".join(problems[:10])
        )
    return Snapshot(doc, source)


def _schema_problems(doc: dict) -> list[str]:
    out: list[str] = []

    def need(obj: Any, key: str, types: tuple, where: str, nullable: bool = False) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            out.append(f"{where}.{key}: missing")
            return None
        v = obj[key]
        if v is None and nullable:
            return None
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            out.append(
                f"{where}.{key}: expected {'/'.join(t.__name__ for t in types)}, got {type(v).__name__}"
            )
            return None
        return v

    src = need(doc, "source", (dict,), "")
    if src is not None:
        need(src, "cluster_id", (str,), "source")
        need(src, "broker_count", (int,), "source")
    for key in ("tool_version", "taken_at"):
        need(doc, key, (str,), "")
    for key in ("taken_at_ms", "duration_ms"):
        need(doc, key, (int,), "")
    cat = need(doc, "catalog", (dict,), "")
    if cat is not None:
        need(cat, "env", (str,), "catalog")
        need(cat, "digest", (str,), "catalog")
    complete = need(doc, "complete", (dict,), "")
    if complete is not None and not all(isinstance(v, bool) for v in complete.values()):
        out.append(".complete: every flag must be true or false")
    notes = need(doc, "notes", (list,), "")
    if notes is not None and not all(isinstance(n, str) for n in notes):
        out.append(".notes: every note must be a string")
    topics = need(doc, "topics", (list,), "") or []
    for i, t in enumerate(topics):
        w = f"topics[{i}]"
        need(t, "name", (str,), w)
        n = need(t, "partitions", (int,), w)
        rf = need(t, "replication_factor", (int,), w)
        assignment = need(t, "assignment", (list,), w)
        ov = need(t, "overrides", (dict,), w, nullable=True)
        if n is not None and n < 1:
            out.append(f"{w}.partitions: must be >= 1, got {n}")
        if rf is not None and rf < 1:
            out.append(f"{w}.replication_factor: must be >= 1, got {rf}")
        if assignment is not None and not all(
            isinstance(r, list) and all(type(b) is int for b in r) for r in assignment
        ):
            out.append(f"{w}.assignment: must be a list of lists of broker ids")
        if ov and not all(isinstance(v, str) for v in ov.values()):
            out.append(f"{w}.overrides: every value must be a string")
    groups = need(doc, "groups", (list,), "") or []
    for i, g in enumerate(groups):
        w = f"groups[{i}]"
        need(g, "group_id", (str,), w)
        for j, o in enumerate(need(g, "offsets", (list,), w) or []):
            need(o, "topic", (str,), f"{w}.offsets[{j}]")
            part = need(o, "partition", (int,), f"{w}.offsets[{j}]")
            need(o, "offset", (int,), f"{w}.offsets[{j}]")
            if part is not None and part < 0:
                out.append(f"{w}.offsets[{j}].partition: must be >= 0, got {part}")
    acls = need(doc, "acls", (list,), "")
    if acls is not None and not all(isinstance(a, dict) for a in acls):
        out.append(".acls: every ACL must be an object")
    users = need(doc, "scram_users", (list,), "") or []
    for i, u in enumerate(users):
        need(u, "name", (str,), f"scram_users[{i}]")
    return out


# -- diff -------------------------------------------------------------------------------


@dataclass
class SnapshotDiff:
    """What changed from snapshot `a` to snapshot `b` (topic ids, times and end offsets are not compared)."""

    a: str
    b: str
    topics_added: list[str] = field(default_factory=list)
    topics_removed: list[str] = field(default_factory=list)
    partition_changes: list[dict] = field(default_factory=list)  # {topic, old, new}
    replication_changes: list[dict] = field(default_factory=list)
    config_changes: list[dict] = field(default_factory=list)  # {topic, key, old, new}
    groups_added: list[str] = field(default_factory=list)
    groups_removed: list[str] = field(default_factory=list)
    offset_changes: list[dict] = field(default_factory=list)  # {group, topic, partition, old, new}
    acls_added: int = 0
    acls_removed: int = 0
    users_added: list[str] = field(default_factory=list)
    users_removed: list[str] = field(default_factory=list)
    other_cluster: bool = False

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.topics_added,
                self.topics_removed,
                self.partition_changes,
                self.replication_changes,
                self.config_changes,
                self.groups_added,
                self.groups_removed,
                self.offset_changes,
                self.acls_added,
                self.acls_removed,
                self.users_added,
                self.users_removed,
            )
        )

    def counts(self) -> dict[str, int]:
        return {
            "topics_added": len(self.topics_added),
            "topics_removed": len(self.topics_removed),
            "partition_changes": len(self.partition_changes),
            "replication_changes": len(self.replication_changes),
            "config_changes": len(self.config_changes),
            "groups_added": len(self.groups_added),
            "groups_removed": len(self.groups_removed),
            "offset_changes": len(self.offset_changes),
            "acls_added": self.acls_added,
            "acls_removed": self.acls_removed,
            "users_added": len(self.users_added),
            "users_removed": len(self.users_removed),
        }

    def to_dict(self) -> dict:
        return {**asdict(self), "empty": self.empty, "counts": self.counts()}


def _same_config(key: str, a: str | None, b: str | None) -> bool:
    return canonical_value(key, a) == canonical_value(key, b)


def diff_snapshots(a: Snapshot, b: Snapshot) -> SnapshotDiff:
    """Topics added or removed, partition, replication and config changes, group offsets, ACLs, users."""
    d = SnapshotDiff(a=a.source, b=b.source, other_cluster=a.cluster_id != b.cluster_id)
    ta, tb = a.topics, b.topics
    d.topics_added = sorted(set(tb) - set(ta))
    d.topics_removed = sorted(set(ta) - set(tb))
    for name in sorted(set(ta) & set(tb)):
        x, y = ta[name], tb[name]
        if x["partitions"] != y["partitions"]:
            d.partition_changes.append(
                {"topic": name, "old": x["partitions"], "new": y["partitions"]}
            )
        if x["replication_factor"] != y["replication_factor"]:
            d.replication_changes.append(
                {"topic": name, "old": x["replication_factor"], "new": y["replication_factor"]}
            )
        ox, oy = x["overrides"], y["overrides"]
        if ox is None or oy is None:
            if (ox is None) != (oy is None):
                d.config_changes.append(
                    {
                        "topic": name,
                        "key": "*",
                        "old": "unknown" if ox is None else "recorded",
                        "new": "unknown" if oy is None else "recorded",
                    }
                )
            continue
        for key in sorted(set(ox) | set(oy)):
            if not _same_config(key, ox.get(key), oy.get(key)):
                d.config_changes.append(
                    {"topic": name, "key": key, "old": ox.get(key), "new": oy.get(key)}
                )
    ga, gb = a.groups, b.groups
    d.groups_added = sorted(set(gb) - set(ga))
    d.groups_removed = sorted(set(ga) - set(gb))
    for gid in sorted(set(ga) & set(gb)):
        oa = {(o["topic"], o["partition"]): o["offset"] for o in ga[gid]["offsets"]}
        ob = {(o["topic"], o["partition"]): o["offset"] for o in gb[gid]["offsets"]}
        for tp in sorted(set(oa) | set(ob)):
            if oa.get(tp) != ob.get(tp):
                d.offset_changes.append(
                    {
                        "group": gid,
                        "topic": tp[0],
                        "partition": tp[1],
                        "old": oa.get(tp),
                        "new": ob.get(tp),
                    }
                )
    acl_a = {json.dumps(x, sort_keys=True) for x in a.doc["acls"]}
    acl_b = {json.dumps(x, sort_keys=True) for x in b.doc["acls"]}
    d.acls_added, d.acls_removed = len(acl_b - acl_a), len(acl_a - acl_b)
    ua = {u["name"]: u for u in a.doc["scram_users"]}
    ub = {u["name"]: u for u in b.doc["scram_users"]}
    d.users_added = sorted(set(ub) - set(ua))
    d.users_removed = sorted(set(ua) - set(ub))
    return d


def render_diff(d: SnapshotDiff) -> str:
    """The diff as people read it."""
    lines = [f"Snapshot diff: {d.a} -> {d.b}"]
    if d.other_cluster:
        lines.append("  note: the two snapshots come from different clusters")
    for n in d.topics_added:
        lines.append(f"  + topic {n}")
    for n in d.topics_removed:
        lines.append(f"  - topic {n}")
    for c in d.partition_changes:
        lines.append(f"  ~ {c['topic']}: partitions {c['old']} -> {c['new']}")
    for c in d.replication_changes:
        lines.append(f"  ~ {c['topic']}: replication {c['old']} -> {c['new']}")
    for c in d.config_changes:
        show = lambda v: "(default)" if v is None else v  # noqa: E731
        lines.append(f"  ~ {c['topic']}: {c['key']} {show(c['old'])} -> {show(c['new'])}")
    for g in d.groups_added:
        lines.append(f"  + group {g}")
    for g in d.groups_removed:
        lines.append(f"  - group {g}")
    for c in d.offset_changes:
        lines.append(
            f"  ~ group {c['group']} {c['topic']}[{c['partition']}]: committed offset {c['old']} -> {c['new']}"
        )
    if d.acls_added or d.acls_removed:
        lines.append(f"  ~ ACLs: {d.acls_added} added, {d.acls_removed} removed")
    for u in d.users_added:
        lines.append(f"  + SCRAM user {u}")
    for u in d.users_removed:
        lines.append(f"  - SCRAM user {u}")
    c = d.counts()
    lines.append(
        "No differences."
        if d.empty
        else f"{c['topics_added']} topic(s) added, {c['topics_removed']} removed, {c['partition_changes']} partition change(s), "
        f"{c['replication_changes']} replication change(s), {c['config_changes']} config change(s), "
        f"{c['groups_added']} group(s) added, {c['groups_removed']} removed, {c['offset_changes']} offset change(s)."
    )
    return "\n".join(lines)
