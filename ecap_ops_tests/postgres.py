"""A throwaway PostgreSQL server on loopback for the tests of the deployment's Dagster
instance (dagster.yaml stores runs, event logs and schedules in PostgreSQL).

Debian's `postgresql` package (scripts/install-system-deps.sh installs it) gives the
binaries under /usr/lib/postgresql/<version>/bin. PostgreSQL refuses to run as root: as
root, the server runs as the `postgres` system user, in a data folder of its own.
"""

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ecap_ops.localkafka.cluster import free_port

START_TIMEOUT_S = 60.0


def postgres_bin(name: str) -> str | None:
    """The path of a PostgreSQL server program (initdb, pg_ctl, ...), or None."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    password: str
    db: str


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.getuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextlib.contextmanager
def local_postgres(
    user: str = "ecap", password: str = "s3cret-pg", db: str = "dagster"
) -> Iterator[Postgres]:
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed: "
            "run scripts/install-system-deps.sh (Debian package postgresql)"
        )
    root = Path(tempfile.mkdtemp(prefix="ecap-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    if os.getuid() == 0:
        pg = pwd.getpwnam("postgres")
        for path in (root, sock, pwfile):
            os.chown(path, pg.pw_uid, pg.pw_gid)
    port = free_port()
    log = root / "server.log"
    try:
        subprocess.run(
            _as_server_user(
                [
                    initdb,
                    "-D",
                    str(data),
                    "-U",
                    user,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            _as_server_user(
                [
                    pg_ctl,
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    str(int(START_TIMEOUT_S)),
                    "-o",
                    f"-h 127.0.0.1 -p {port} -k {sock}",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_S + 10,
        )
        env = {**os.environ, "PGPASSWORD": password}
        subprocess.run(
            [
                postgres_bin("createdb") or "createdb",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                user,
                db,
            ],
            check=True,
            capture_output=True,
            env=env,
            timeout=30,
        )
        yield Postgres("127.0.0.1", port, user, password, db)
    finally:
        if data.exists():
            subprocess.run(
                _as_server_user([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
                capture_output=True,
                timeout=60,
            )
        # give the server a moment to release its files before they go
        time.sleep(0.2)
        shutil.rmtree(root, ignore_errors=True)
