"""Snapshot files: where they live (`ECAP_SNAPSHOT_DIR`), how many are kept, how they are
named, written (atomically, 0600, signed when `ECAP_SIGNING_KEY` is set) and read back
(bounded, verified). Used by DR, the write path's pre-change snapshots and the CLI."""

import logging
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from ecap_ops.core.integrity import signing_key_from_env
from ecap_ops.core.snapshot import (
    MAX_BYTES_ENV,
    Snapshot,
    max_snapshot_bytes,
    parse_snapshot,
    serialize,
    sign_snapshot,
)
from ecap_ops.errors import ConfigError, SnapshotInvalid

log = logging.getLogger(__name__)

DEFAULT_KEEP = 48
SNAPSHOT_FILE = re.compile(r"^snapshot-[A-Za-z0-9_-]+-\d{8}T\d{6}\d{3}Z\.json$")


# -- where snapshots live --------------------------------------------------------------


def snapshot_keep(env: dict[str, str] | None = None) -> int:
    """ECAP_SNAPSHOT_KEEP (default 48): how many snapshots the directory keeps."""
    env = os.environ if env is None else env
    raw = env.get("ECAP_SNAPSHOT_KEEP")
    if not raw:
        return DEFAULT_KEEP
    try:
        n = int(raw)
    except ValueError:
        shown = repr(raw[:40])
        shown = shown if len(shown) <= 40 and len(raw) <= 40 else shown[:40] + "..."
        raise ConfigError(
            f"ECAP_SNAPSHOT_KEEP: expected a whole number of snapshots to keep, got {shown}"
        ) from None
    if n < 1:
        raise ConfigError(f"ECAP_SNAPSHOT_KEEP: must be >= 1, got {str(n)[:20]}")
    return n


def list_snapshots(directory: Path) -> list[Path]:
    """The snapshot files of a directory, oldest first (by the time in their names)."""
    if not directory.is_dir():
        return []
    files = [p for p in directory.iterdir() if p.is_file() and SNAPSHOT_FILE.match(p.name)]
    return sorted(files, key=lambda p: (p.name.rsplit("-", 1)[-1], p.name))


def latest_snapshot(directory: Path) -> Path:
    files = list_snapshots(directory)
    if not files:
        raise SnapshotInvalid(
            f"no snapshot in {directory}; take one with `ecap-ops snapshot` or the Dagster job dr_snapshot, "
            "or give a snapshot file's path (ECAP_SNAPSHOT_DIR sets the directory)"
        )
    return files[-1]


def write_atomically(path: Path, text: str) -> None:
    """Write a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def prune(directory: Path, keep: int) -> list[Path]:
    """Remove the oldest snapshots beyond `keep`; returns what was removed."""
    files = list_snapshots(directory)
    removed = files[: max(0, len(files) - keep)]
    for p in removed:
        p.unlink(missing_ok=True)
    return removed


def snapshot_path_in(directory: Path, doc: dict) -> Path:
    """A snapshot's standard file name: its cluster and the time it was taken (ms, UTC)."""
    stamp = datetime.fromtimestamp(doc["taken_at_ms"] / 1000, UTC).strftime("%Y%m%dT%H%M%S%f")
    safe_id = re.sub(r"[^A-Za-z0-9_-]", "_", doc["source"]["cluster_id"])
    return directory / f"snapshot-{safe_id}-{stamp[:-3]}Z.json"


def write_snapshot_document(doc: dict, directory: Path, keep: int) -> Path:
    """Write a sealed snapshot document into `directory` (0700) under its standard name,
    atomically and 0600 (signed when ECAP_SIGNING_KEY is set), read it back to verify, and
    keep the newest `keep`."""
    key = signing_key_from_env()
    if key is not None:
        doc = sign_snapshot(doc, key)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = snapshot_path_in(directory, doc)
    text = serialize(doc)
    write_atomically(path, text)
    load_snapshot(path, written=text)
    prune(directory, keep)
    return path


def load_snapshot(path: str | os.PathLike, written: str | None = None) -> Snapshot:
    """Read and verify a snapshot file (size, checksum, format version, layout, structure,
    and its signature when ECAP_SIGNING_KEY is set). Larger than ECAP_SNAPSHOT_MAX_BYTES:
    refused before it is read. `written`: reading back what this process just wrote, the
    text it wrote (see `parse_snapshot`)."""
    p = Path(path)
    key = signing_key_from_env()
    max_bytes = max_snapshot_bytes()
    try:
        with open(p, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise SnapshotInvalid(
                    f"{p}: {size:,} bytes is more than the {max_bytes:,} a snapshot may have "
                    f"({MAX_BYTES_ENV} raises the limit); not read"
                )
            data = fh.read(max_bytes + 1)  # bounded also when the size is unknown (a pipe)
    except FileNotFoundError:
        raise SnapshotInvalid(f"{p}: no such snapshot file") from None
    except IsADirectoryError:
        raise SnapshotInvalid(f"{p}: is a directory, not a snapshot file") from None
    except OSError as exc:
        raise SnapshotInvalid(f"{p}: cannot be read: {exc.strerror}") from None
    return parse_snapshot(data, str(p), signing_key=key, max_bytes=max_bytes, written=written)
