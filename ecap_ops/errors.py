"""The project's own exceptions.

Library errors are caught at the edge (the Kafka gateway, the catalog loader, the snapshot
reader) and re-raised as one of these, with a message that tells a person what happened
and what to do. The CLI prints the message and exits 1; Dagster shows it on the run.
"""


class EcapOpsError(Exception):
    """Base of every error ecap-ops raises on purpose."""


class ConfigError(EcapOpsError):
    """A setting (environment variable, flag, resource config) is invalid."""


class KafkaUnavailable(EcapOpsError):
    """No broker answered within the bounded wait."""


class KafkaAuthFailed(EcapOpsError):
    """The brokers answered but refused our credentials or TLS settings."""


class KafkaRequestFailed(EcapOpsError):
    """A broker answered a request with an error."""


class CatalogInvalid(EcapOpsError):
    """The topic catalog has errors; every one of them is listed, each with its YAML path."""

    def __init__(self, errors: list[str], source: str = "catalog"):
        self.errors = list(errors)
        self.source = source
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"{source} is invalid ({len(self.errors)} error(s)):\n{lines}")


class PlanRefused(EcapOpsError):
    """The plan contains changes that are refused; nothing was applied."""


class PlanStale(EcapOpsError):
    """A saved plan no longer matches the cluster it was made for."""


class SnapshotInvalid(EcapOpsError):
    """A snapshot file cannot be trusted (checksum, format, truncation)."""


class LocalKafkaError(EcapOpsError):
    """The local development broker could not be fetched, started or stopped."""
