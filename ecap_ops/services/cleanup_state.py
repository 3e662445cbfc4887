"""Test-topic cleanup's observation history on disk, shared by the CLI and the Dagster job.

One small JSON file (`state_path()`: `ECAP_STATE_DIR`, else `<DAGSTER_HOME or
~/.ecap-ops>/state`), written atomically with mode 0600. `load_history` never raises: a
file that cannot be read is reported and replaced by a fresh history, which only delays
deletions, never causes one. `_history_lock` lets one cleanup run at a time per file. The
document's format and bounds are `core/cleanup_history.py`.
"""

import contextlib
import fcntl
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ecap_ops.core.cleanup_history import TopicHistory, history_from_json
from ecap_ops.core.integrity import loads_bounded
from ecap_ops.errors import ConfigError, EcapOpsError
from ecap_ops.settings import state_dir

STATE_FILE = "cleanup-observations.json"
MAX_STATE_BYTES = 32 * 1024 * 1024
LOCK_WAIT_S = 60.0


def state_path(env: dict[str, str] | None = None) -> Path:
    """The observation history: <ECAP_STATE_DIR, else DAGSTER_HOME/state or
    ~/.ecap-ops/state>/cleanup-observations.json."""
    return state_dir(env) / STATE_FILE


def _fresh(path: Path, why: str) -> str:
    return (
        f"the cleanup observation history {path} could not be used ({why}); starting a fresh "
        "history: every matching topic is a candidate again, and none is deleted until this "
        "job has observed it idle for the whole window"
    )


def load_history(path: Path) -> tuple[dict[str, dict[str, TopicHistory]], str | None]:
    """Cluster id -> topic -> history, and a warning when the file was unusable (then the
    history is empty). Never raises: a broken or hostile file only restarts the history."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        return {}, _fresh(path, f"cannot open it: {exc.strerror or exc}")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return {}, _fresh(path, "not a regular file")
        chunks, size = [], 0
        while size <= MAX_STATE_BYTES:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        return {}, _fresh(path, f"cannot read it: {exc.strerror or exc}")
    finally:
        os.close(fd)
    try:
        doc = loads_bounded(data, str(path), ConfigError, MAX_STATE_BYTES)
        return history_from_json(doc), None
    except EcapOpsError as exc:
        return {}, _fresh(path, str(exc).removeprefix(f"{path}: "))
    except (ValueError, TypeError, RecursionError) as exc:
        return {}, _fresh(path, str(exc)[:300])


def save_history(path: Path, doc: dict) -> None:
    """Atomically replace the file (mode 0600, in a 0700 directory if it creates one)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, separators=(",", ":"), sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


@contextlib.contextmanager
def _history_lock(path: Path, warnings: list[str], wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """One cleanup at a time per history file (CLI and Dagster job alike), waiting at most
    `wait_s`. Without a writable state directory the run goes on unlocked, and says so."""
    lock = path.with_name(path.name + ".lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:
        warnings.append(
            f"cannot create the lock {lock} ({exc.strerror or exc}): this run is not protected "
            "from another cleanup running at the same time"
        )
        yield
        return
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ConfigError(
                        f"another test-topic cleanup holds {lock} (waited {wait_s:g} s); "
                        "run again when it has finished"
                    ) from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # releases the lock
