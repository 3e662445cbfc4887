"""What the Dagster modules share: turning our errors into Dagster failures, tables, and
numbers rounded for people."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from ecap_ops.core.numbers import round_for_people
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


def rounded(value: float | int | None, digits: int = 1) -> dg.MetadataValue:
    """A measured number as people read it (and the UI plots it), by the one rounding rule
    (`core.numbers.round_for_people`): `digits` decimals, 0 for a whole number. A figure
    that is not known is shown as null, never as 0."""
    shown = round_for_people(value, digits)
    if shown is None:
        return dg.MetadataValue.null()
    if digits <= 0:
        return dg.MetadataValue.int(int(shown))
    return dg.MetadataValue.float(shown)
