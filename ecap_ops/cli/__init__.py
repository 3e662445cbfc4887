"""The `ecap-ops` command line. Each module listed here attaches its commands to `main`."""

import importlib

from ecap_ops.cli.app import main

COMMAND_MODULES = ("topics", "broker", "dr", "health", "admin", "audits", "lag")

for _name in COMMAND_MODULES:
    importlib.import_module(f"ecap_ops.cli.{_name}")

__all__ = ["main"]
