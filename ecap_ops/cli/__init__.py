"""The `ecap-ops` command line.

Each module attaches its commands to `main`; a module is imported only when one of its
commands runs (or when help lists them all), so `ecap-ops lag` does not pay for the
local-Kafka or snapshot code. A new command is added here with its module.
"""

from ecap_ops.cli.app import main

COMMANDS = {
    "plan": "topics",
    "create-topics": "topics",
    "list-topics": "topics",
    "describe-topic": "topics",
    "broker": "broker",
    "kafka-cli": "broker",
    "health-check": "health",
    "delete-topic": "admin",
    "reset-topics": "admin",
    "test-produce": "produce",
    "load-test": "load_test",
    "consumer-groups": "admin",
    "retention-audit": "audits",
    "cleanup-test-topics": "audits",
    "lag": "lag",
    "exporter": "exporter",
    "snapshot": "dr",
    "restore": "dr",
    "snapshot-diff": "dr",
    "snapshot-verify": "dr",
    "dr-drill": "dr",
    "access": "access",
    "import": "import_cmd",
    "mirror": "mirror",
    "failover": "failover",
    "compare": "compare",
}
main.lazy_commands = {name: f"ecap_ops.cli.{module}" for name, module in COMMANDS.items()}

__all__ = ["COMMANDS", "main"]
