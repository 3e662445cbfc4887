"""`ecap-ops import`: write a catalog from a live cluster, proven to plan no change.

One read of the cluster (`read_cluster_state`: every topic, its partitions and its
topic-level overrides, the same read `plan` makes), the core's conversion
(`core/import_catalog.py`), then two checks before anything is written: the text loads as
a catalog, and the plan of that catalog against the very state that was read has nothing
to create, alter or refuse. The file is written atomically, and never over an existing
file unless asked (`force`).
"""

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ecap_ops.catalog.loader import max_catalog_bytes, parse_catalog
from ecap_ops.catalog.units import show
from ecap_ops.core.import_catalog import (
    ImportedCatalog,
    catalog_document,
    match_problems,
    render_catalog,
)
from ecap_ops.core.plan import make_plan
from ecap_ops.errors import CatalogInvalid, ConfigError, EcapOpsError
from ecap_ops.gateway import KafkaGateway


class ImportRefused(EcapOpsError):
    """The cluster's topics cannot be written as a catalog that plans no change."""


@dataclass(frozen=True)
class ImportResult:
    imported: ImportedCatalog
    text: str  # the catalog as written
    path: str | None  # where it was written (None: not written, e.g. for stdout)

    def to_dict(self) -> dict:
        return {**self.imported.to_dict(), "file": self.path, "verified": True}

    def render(self) -> str:
        i = self.imported
        left = f"{i.internal} internal"
        if i.not_matching:
            left += f", {i.not_matching} not matching the patterns"
        where = f"into {self.path}" if self.path else "(printed above)"
        lines = [
            f"Imported {len(i.topics)} topic(s) with {i.overrides} topic-level override(s) from "
            f"cluster {i.cluster_id} {where}, environment {i.env}; left out: {left}.",
            "Checked: the catalog loads and its plan against the cluster shows no change.",
        ]
        acls, users = i.document.get("acls", []), i.document.get("users", {})
        if acls or users:
            lines.insert(
                1,
                f"Access: {len(acls)} ACL entry(ies) and {len(users)} SCRAM user(s); passwords "
                "are never imported (each user names a placeholder password_env to set).",
            )
        lines += [f"note: {n}" for n in i.notes]
        if self.path:
            lines.append(
                f"Next: review it, then `ecap-ops --catalog {self.path} --env {i.env} plan`."
            )
        return "\n".join(lines)


def check_target(path: Path, force: bool) -> None:
    """Refuse an existing file (without `force`) or a place no file can be written."""
    if path.is_dir():
        raise ConfigError(f"{show(str(path), 120)} is a directory; give a file name to write")
    if path.exists() and not force:
        raise ConfigError(
            f"{show(str(path), 120)} already exists; nothing was written. "
            "Use --force to overwrite it, or give another file"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(
            f"cannot write {show(str(path), 120)}: directory {show(str(parent), 120)} does not exist"
        )


def import_catalog(
    gateway: KafkaGateway,
    env: str,
    match: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    path: str | None = None,
    force: bool = False,
    with_access: bool = False,
) -> ImportResult:
    """Read the cluster, build its catalog, check it loads and plans no change, write it.
    `with_access`: also its ACL bindings (as raw `acls:`) and SCRAM users (each with a
    placeholder `password_env`; passwords are never read or written)."""
    problems = match_problems(list(match), "--match") + match_problems(list(exclude), "--exclude")
    if problems:
        raise ConfigError(
            "invalid topic pattern(s), nothing was read or written:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    target = Path(path) if path else None
    if target is not None:
        check_target(target, force)
    cluster = gateway.read_cluster_state(None, with_data=False)
    access = None
    if with_access:
        from ecap_ops.gateway.access import read_access

        access = read_access(gateway)
    imported = catalog_document(cluster, env, match, exclude, access)
    if imported.problems:
        raise ImportRefused(
            f"{len(imported.problems)} override(s) cannot be declared in a catalog, so nothing was "
            "written:\n"
            + "\n".join(f"  - {p}" for p in imported.problems[:50])
            + (
                f"\n  ... and {len(imported.problems) - 50} more"
                if len(imported.problems) > 50
                else ""
            )
        )
    if not imported.topics:
        what = "matches the patterns" if match or exclude else "exists (besides internal ones)"
        raise ImportRefused(f"no topic on cluster {cluster.cluster_id} {what}; nothing was written")
    text = render_catalog(imported)
    verify(text, imported, cluster, access)
    if target is not None:
        write_new(target, text, force)
    return ImportResult(imported, text, str(target) if target is not None else None)


def verify(text: str, imported: ImportedCatalog, cluster, access=None) -> None:
    """The written text loads as a catalog and plans no change against `cluster` (and,
    with the cluster's `access` read, no access change either)."""
    try:
        catalog = parse_catalog(text, env=imported.env, source="the imported catalog")
    except CatalogInvalid as exc:
        hint = ""
        if len(text.encode()) > max_catalog_bytes():
            hint = " (set ECAP_CATALOG_MAX_BYTES to read a catalog this large)"
        raise ImportRefused(
            f"the cluster's topics do not make a valid catalog{hint}, so nothing was written: {exc}"
        ) from None
    plan = make_plan(catalog, cluster)
    lines = [a.describe() for a in plan.actions] + [r.message for r in plan.refusals]
    lines += [f"unmanaged: {n}" for n in plan.unmanaged]
    if access is not None:
        from ecap_ops.core.access import plan_access

        access_plan, _report = plan_access(catalog.access, access, cluster.cluster_id)
        lines += [f"access: {a.describe()}" for a in access_plan.actions]
    if lines:
        raise ImportRefused(
            "the imported catalog would not match the cluster exactly, so nothing was written:\n"
            + "\n".join(f"  - {line[:300]}" for line in lines[:20])
        )


def write_new(path: Path, text: str, force: bool) -> None:
    """Write `text` to `path` atomically: a temporary file beside it, flushed, then moved
    into place; without `force`, never over a file that appeared meanwhile."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the file exists: no overwrite, even in a race
    except FileExistsError:
        raise ConfigError(
            f"{show(str(path), 120)} already exists; nothing was written. "
            "Use --force to overwrite it"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot write {show(str(path), 120)}: {exc.strerror or type(exc).__name__}"
        ) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
