"""The metadata snapshot document: its fields, canonical form, checksum, signature and layout.

A snapshot is one JSON document describing a cluster's shape (topics, partitions,
replication, topic-level overrides), consumer groups' committed offsets, ACLs, SCRAM
user names with mechanisms and iterations (never a password, salt or hash) and client
quotas (`core/snapshot_access.py`). Its checksum is SHA-256 over the canonical JSON of everything but the
checksum (and the signature); with a signing key its `signature` is an HMAC-SHA256 over
the canonical JSON of the whole document but the signature. The file is written in one
deterministic layout (`serialize`). Reading a file back is `core/snapshot_verify.py`,
comparing two snapshots `core/snapshot_diff.py`. Pure.
"""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ecap_ops.core.integrity import sign

FORMAT = "ecap-ops/kafka-metadata-snapshot"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
CHECKSUM_ALGORITHM = "sha256"
SIGNATURE_FIELD = "signature"
# Fields the checksum does not cover: itself, and the signature (which covers the checksum).
_UNCHECKSUMMED = ("checksum", SIGNATURE_FIELD)

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


def serialize(doc: dict) -> str:
    """The exact text ecap-ops writes for a sealed snapshot (readable, deterministic)."""
    return json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


# -- building the document, and its typed view ---------------------------------------


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
    quotas: list[dict] | None = None,
) -> dict:
    """Assemble and seal a snapshot document. `quotas`: client quotas as
    {"entity": [{"type": "user", "name": ...}], "values": {key: number}}."""
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
    if quotas is not None:  # snapshots before quotas were recorded have no key
        doc["quotas"] = sorted(quotas, key=lambda q: json.dumps(q, sort_keys=True))
        doc["complete"]["quotas"] = bool(complete.get("quotas", False))
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
            "quotas": len(d.get("quotas") or []),
            "complete": self.complete,
            "notes": list(d["notes"]),
            "catalog_digest": d["catalog"]["digest"],
            "duration_ms": d["duration_ms"],
        }
