"""Development passwords for the catalog's SCRAM users on the secured local cluster
(`make run-secure`).

For every user the catalog (ECAP_CATALOG, else the packaged one) declares with
`password_env: NAME`, keeps a random password in DIR/NAME (0600, made once, kept across
runs) and prints `export NAME="$(cat DIR/NAME)"` for the shell to eval: the password itself
is never printed. Users with `password_file:` are left to that file.

Usage: python scripts/dev_passwords.py DIR
"""

import os
import secrets
import shlex
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python scripts/dev_passwords.py DIR", file=sys.stderr)
        return 2
    from ecap_ops.catalog import load_catalog
    from ecap_ops.errors import EcapOpsError

    try:
        catalog = load_catalog()
    except EcapOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    folder = Path(argv[0]).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for user in catalog.access.users:
        name = user.password.env
        if not name:
            continue
        path = folder / name
        if not path.is_file():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(24))
        print(f'export {name}="$(cat {shlex.quote(str(path))})"')
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
