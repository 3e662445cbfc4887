"""Reading a snapshot file back: verified byte for byte, or refused saying why.

`parse_snapshot` refuses a file whose bytes differ from the layout ecap-ops writes, so a
single changed byte is always caught, even in whitespace; then the checksum, the signature
when a key is given, and the document's structure. The checksum guards against corruption
only: anyone who edits a file can recompute it. With a signing key (ECAP_SIGNING_KEY), a
reader holding the key refuses any file without a valid signature.

A file is read with a size cap (ECAP_SNAPSHOT_MAX_BYTES, default 512 MiB) and a nesting
cap (64 levels), so a hostile file gets a clear refusal rather than a memory or recursion
blow-up. Pure: reading and writing files is in `ecap_ops.services.snapshot_files`.
"""

import os
import re
from typing import Any

from ecap_ops.core.integrity import loads_bounded, verify_tag
from ecap_ops.core.snapshot_access import access_problems
from ecap_ops.core.snapshot_doc import (
    CHECKSUM_ALGORITHM,
    FORMAT,
    SIGNATURE_FIELD,
    SUPPORTED_VERSIONS,
    Snapshot,
    compute_checksum,
    serialize,
    signed_body,
)
from ecap_ops.errors import ConfigError, SnapshotInvalid

MAX_BYTES_ENV = "ECAP_SNAPSHOT_MAX_BYTES"
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


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


def parse_snapshot(
    data: bytes | str,
    source: str = "snapshot",
    *,
    signing_key: bytes | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    written: str | None = None,
) -> Snapshot:
    """Verify a snapshot file's bytes and return it, or raise SnapshotInvalid saying why.

    With `signing_key`, the file must also carry a valid signature under that key.
    `written`: when reading back a file this process just wrote, the text it wrote (made
    by `serialize`): if the bytes are exactly those, their layout is `serialize`'s by
    construction and is not derived again (at 10,000 topics and groups that is a second of
    indented JSON); everything else is checked as for any file."""
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
    if signing_key is not None:  # without a key there is nothing to check a signature with
        verify_tag(signed_body(doc), doc.get(SIGNATURE_FIELD), signing_key, source, SnapshotInvalid)
    if (written is None or written != text) and serialize(doc) != text:
        raise SnapshotInvalid(
            f"{source}: the file's bytes differ from what ecap-ops wrote (its content checksum verifies, but its "
            "layout was changed, e.g. reformatted or edited); refusing a snapshot that was modified after it was written"
        )
    problems = _schema_problems(doc)
    if problems:
        shown: list[str] = []
        for problem in problems[:10]:
            if shown and sum(map(len, shown)) + len(problem) > 1000:
                break
            shown.append(problem)
        more = len(problems) - len(shown)
        raise SnapshotInvalid(
            f"{source}: the snapshot's structure is invalid: "
            + "; ".join(shown)
            + (f"; and {more} more problem(s)" if more else "")
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
    # ACLs, SCRAM users and quotas, field by field (core/snapshot_access.py).
    out += access_problems(doc)
    return out
