"""Read the catalog YAML into typed objects, reporting every error at once with its path.

An invalid catalog raises `CatalogInvalid` listing each problem as
`topics.fraud-alerts.partitions: must be >= 1, got 0`, before anything touches a cluster.

The file is read defensively, since a catalog may come from anyone who can open a pull
request: at most ECAP_CATALOG_MAX_BYTES (4 MiB), UTF-8 only, one YAML document, no
aliases, anchors, tags or merge keys, keys exactly as written (`yes:` is refused, not read
as True), numbers within Kafka's types. Every failure is one `CatalogInvalid` naming the
line and column or the YAML path; an offending value is shown by its first characters only.

This module reads the file and puts the parts together; the defensive YAML reader is
`catalog/yaml_reader.py`, building environments, lag thresholds and typed topics from the
document is `catalog/build.py`.
"""

import hashlib
import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from ecap_ops.catalog.access import AccessSpec, build_access
from ecap_ops.catalog.build import (
    MAX_ENVIRONMENTS,
    MAX_TOPIC_NAME,
    TOP_KEYS,
    TOPIC_NAME,
    Errors,
    build_scope,
    build_topics,
    check_environments,
    check_scope,
    lag_defaults,
    resolve_environments,
)
from ecap_ops.catalog.contracts import CONTRACT_TOP_KEYS, build_contracts
from ecap_ops.catalog.mirror import MIRROR_TOP_KEYS, attach_mirror, build_mirror
from ecap_ops.catalog.model import Catalog, Scope, TopicSpec
from ecap_ops.catalog.units import parse_size_bytes, show
from ecap_ops.catalog.yaml_reader import MAX_DEPTH, MAX_ERRORS, decode_catalog, read_yaml
from ecap_ops.errors import CatalogInvalid, ConfigError

# The reader's and the builder's limits, importable from here as before.
__all__ = [
    "DEFAULT_ENV",
    "DEFAULT_MAX_BYTES",
    "MAX_BYTES_ENV",
    "MAX_DEPTH",
    "MAX_ENVIRONMENTS",
    "MAX_ERRORS",
    "MAX_TOPIC_NAME",
    "TOPIC_NAME",
    "decode_catalog",
    "default_catalog_path",
    "load_catalog",
    "max_catalog_bytes",
    "parse_catalog",
]

DEFAULT_ENV = "dev"
MAX_BYTES_ENV = "ECAP_CATALOG_MAX_BYTES"
# 4 MiB: an imported catalog of 10,000 topics is about 1.4 MB, so a catalog of a cluster
# with 20,000-odd topics still reads by default; reading is bounded and linear.
DEFAULT_MAX_BYTES = 4 * 1024 * 1024


def default_catalog_path() -> Path:
    return Path(str(resources.files("ecap_ops.catalog") / "topics.yaml"))


def max_catalog_bytes(env: Mapping[str, str] | None = None) -> int:
    """The largest catalog file ecap-ops reads: ECAP_CATALOG_MAX_BYTES, else 4 MiB."""
    raw = (os.environ if env is None else env).get(MAX_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        n = parse_size_bytes(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(
            f"{MAX_BYTES_ENV} must be a size in bytes such as 1048576 or 4MiB, got {show(raw)}"
        )
    return n


def parse_catalog(
    text: str,
    env: str | None = None,
    source: str = "catalog",
    max_bytes: int | None = None,
) -> Catalog:
    """Parse and validate catalog YAML for one environment (ECAP_ENV's, by default)."""
    env = env or os.environ.get("ECAP_ENV") or DEFAULT_ENV
    limit = max_catalog_bytes() if max_bytes is None else max_bytes
    if not isinstance(text, str):
        raise CatalogInvalid([f"(file): expected catalog text, got {type(text).__name__}"], source)
    if len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit:
        raise CatalogInvalid([_too_big(limit)], source)
    errors = Errors()
    data = _read_document(errors, text, source)
    resolved_envs = resolve_environments(errors, data, env)
    defaults = lag_defaults(errors, data)

    topics_raw = data.get("topics")
    if not isinstance(topics_raw, dict) or not topics_raw:
        errors.add("topics", "must be a non-empty mapping of topic name to its settings")
        topics_raw = {}

    topics: list[TopicSpec] = []
    if env in resolved_envs:
        topics = build_topics(errors, topics_raw, resolved_envs[env], env, defaults)
    # Other environments: their cross-field errors too, so a broken prod overlay fails in dev.
    others = [(name, overlay) for name, overlay in resolved_envs.items() if name != env]
    if others:
        check_environments(errors, topics_raw, others)

    # Access names the environment's topics: when the environment itself is unknown (an
    # error already), checking each reference would repeat that error once per topic.
    access = None
    if env in resolved_envs or not errors.items:
        access = build_access(errors, data, topics, env, resolved_envs)
    scope = build_scope(errors, data)
    check_scope(errors, scope, topics)
    contracts = build_contracts(errors, data, topics, source)  # catalog/contracts.py
    mirror = build_mirror(errors, data, topics)  # catalog/mirror.py
    if errors.items or access is None:
        raise CatalogInvalid(errors.items, source)
    catalog = Catalog(
        env=env,
        source=source,
        name_prefix=resolved_envs[env]["name_prefix"],
        topics=tuple(topics),
        lag_defaults=defaults,
        digest=_digest(topics, access, scope),
        environments=tuple(sorted(resolved_envs)),
        access=access,
        scope=scope,
        contracts=contracts,
    )
    return attach_mirror(catalog, mirror)


def _read_document(errors: Errors, text: str, source: str) -> dict[str, Any]:
    """The catalog's top-level mapping; its key problems, duplicate keys, unknown keys
    and version noted in `errors`. Anything but a mapping raises CatalogInvalid."""
    data, key_problems, duplicates, dropped = read_yaml(text, source)
    for problem in key_problems:
        errors.add_item(problem)
    for d in duplicates:
        errors.add("(YAML)", d)
    errors.dropped += dropped
    if data is None:
        raise CatalogInvalid(
            ["(top): the catalog is empty; it must be a mapping with a `topics:` key"], source
        )
    if not isinstance(data, dict):
        found = "a list" if isinstance(data, list) else f"the single value {show(data)}"
        raise CatalogInvalid(
            [f"(top): the catalog must be a mapping with a `topics:` key, found {found}"], source
        )
    errors.unknown_keys("", data, TOP_KEYS | CONTRACT_TOP_KEYS | MIRROR_TOP_KEYS)
    version = data.get("version", 1)
    if type(version) is not int or version != 1:
        errors.add(
            "version",
            f"unsupported catalog version {show(version)}; this ecap-ops reads version 1",
        )
    return data


def _digest(topics: list[TopicSpec], access: AccessSpec, scope: Scope) -> str:
    doc: list = [
        [t.name, t.partitions, t.replication_factor, sorted(t.configs.items())] for t in topics
    ]
    if access.declared:  # a catalog without access keeps the digest it always had
        doc = [doc, access.to_digest()]
    if scope.declared:  # likewise a catalog without a scope
        doc = [doc, {"scope": scope.to_dict()}]
    digest_src = json.dumps(doc, sort_keys=True)
    return hashlib.sha256(digest_src.encode()).hexdigest()


def _too_big(limit: int) -> str:
    return (
        f"(file): the catalog is larger than {limit} bytes, the most ecap-ops reads; "
        f"raise {MAX_BYTES_ENV} if it really is that large"
    )


def load_catalog(path: str | os.PathLike | None = None, env: str | None = None) -> Catalog:
    """Load the catalog: `path`, else ECAP_CATALOG, else the one shipped in the package."""
    path = path or os.environ.get("ECAP_CATALOG") or default_catalog_path()
    p = Path(path)
    limit = max_catalog_bytes()
    try:
        with p.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > limit:
                raise CatalogInvalid([_too_big(limit)], str(p))
            data = fh.read(limit + 1)  # a pipe or device reports no size: bounded all the same
    except FileNotFoundError:
        raise CatalogInvalid([f"(file): {p} does not exist"], str(p)) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CatalogInvalid([f"(file): cannot read {p}: {reason}"], str(p)) from None
    if len(data) > limit:
        raise CatalogInvalid([_too_big(limit)], str(p))
    return parse_catalog(decode_catalog(data, str(p)), env=env, source=str(p), max_bytes=limit)
