"""ecap-ops: the operations plane for the E-Commerce Analytics Platform's Kafka cluster.

`ecap_ops.defs` is the Dagster code location's Definitions. It is built on first access,
so importing `ecap_ops` (for the CLI, say) does no I/O and does not import Dagster.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "defs":
        from ecap_ops.definitions import defs

        return defs
    raise AttributeError(f"module 'ecap_ops' has no attribute {name!r}")
