"""The `ecap-ops` command line. Each module attaches its commands to `main`."""

from ecap_ops.cli import broker, topics  # noqa: F401  (they register their commands)
from ecap_ops.cli.app import main

__all__ = ["main"]
