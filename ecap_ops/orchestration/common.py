"""What the Dagster modules share: turning our errors into Dagster failures."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from ecap_ops.errors import EcapOpsError


@contextmanager
def as_failure(what: str) -> Iterator[None]:
    """Show an ecap-ops error as a Dagster Failure whose description a person can act on."""
    try:
        yield
    except EcapOpsError as exc:
        raise dg.Failure(
            description=f"{what}: {exc}",
            metadata={"error": type(exc).__name__},
            allow_retries=False,
        ) from None


def md_table(headers: list[str], rows: list[list]) -> str:
    """A markdown table for run and asset metadata."""

    def cell(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ") if v is not None else ""

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
