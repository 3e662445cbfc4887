"""The metadata snapshot: one import for its document, verification and diff.

A snapshot is one JSON document describing a cluster's shape (topics, partitions,
replication, topic-level overrides), consumer groups' committed offsets, ACLs, SCRAM
user names with mechanisms (never a password), and client quotas, sealed with a checksum and, with ECAP_SIGNING_KEY, signed. Where each part
lives:

- `core/snapshot_doc.py`: the document (`build_snapshot`, `topic_entry`, `group_entry`,
  `Snapshot`), its canonical form, checksum (`seal`), signature and file layout (`serialize`);
- `core/snapshot_verify.py`: reading a file back (`parse_snapshot`), byte for byte, with
  size and nesting caps (`max_snapshot_bytes`);
- `core/snapshot_access.py`: the access sections (ACLs, SCRAM users, quotas), checked field
  by field on reading and typed for restore and the drill (`snapshot_access`);
- `core/snapshot_diff.py`: what changed between two snapshots (`diff_snapshots`,
  `render_diff`).

Pure: reading and writing files is in `ecap_ops.services.snapshot_files`.
"""

from ecap_ops.core.snapshot_diff import SnapshotDiff, diff_snapshots, render_diff
from ecap_ops.core.snapshot_doc import (
    CHECKSUM_ALGORITHM,
    COMPLETENESS_KEYS,
    FORMAT,
    FORMAT_VERSION,
    SIGNATURE_FIELD,
    SUPPORTED_VERSIONS,
    Snapshot,
    build_snapshot,
    canonical_json,
    compute_checksum,
    group_entry,
    seal,
    serialize,
    sign_snapshot,
    signed_body,
    topic_entry,
)
from ecap_ops.core.snapshot_verify import (
    DEFAULT_MAX_BYTES,
    MAX_BYTES_ENV,
    MAX_DEPTH,
    max_snapshot_bytes,
    parse_snapshot,
)

__all__ = [
    "CHECKSUM_ALGORITHM",
    "COMPLETENESS_KEYS",
    "DEFAULT_MAX_BYTES",
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_BYTES_ENV",
    "MAX_DEPTH",
    "SIGNATURE_FIELD",
    "SUPPORTED_VERSIONS",
    "Snapshot",
    "SnapshotDiff",
    "build_snapshot",
    "canonical_json",
    "compute_checksum",
    "diff_snapshots",
    "group_entry",
    "max_snapshot_bytes",
    "parse_snapshot",
    "render_diff",
    "seal",
    "serialize",
    "sign_snapshot",
    "signed_body",
    "topic_entry",
]
