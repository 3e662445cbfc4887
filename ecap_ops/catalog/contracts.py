"""Data contracts: what flows through each topic, read from the catalog beside `topics:`.

```yaml
contracts:
  transactions:
    schema: schemas/transactions.json   # JSON Schema (Draft 2020-12) of record values: a file
                                        # beside the catalog, or the schema inline as a mapping
    freshness: 10m                      # the longest silence tolerated (`none`: no limit)
    max_record_bytes: 64KiB             # the largest record expected (key + value)
    max_skew: 2                         # busiest partition / mean partition, at most
    volume_window: 1h                   # records per hour are measured over this window
    severity: {freshness: critical}     # a failed check's level (default: by environment)
```

The key field is the topic's `partition_key` and the volume band its `expected_volume`;
both stay in the topic's own entry. A topic without an entry here still has its key and
volume checked, and its values must still be JSON (the platform's record format).

Every problem is reported with its YAML path, all at once, together with the rest of the
catalog's: a schema that is not valid JSON Schema (checked against the Draft 2020-12
meta-schema, with the path inside the schema), a schema file that is missing, unreadable or
not JSON, a reference to anything but the schema itself (`$ref: "#/..."`: nothing is ever
fetched), a freshness limit that is not a positive duration. Pure but for reading the
schema files, which are bounded like the catalog (at most MAX_SCHEMA_BYTES, UTF-8, inside
the catalog's folder).
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecap_ops.catalog.units import parse_duration_ms, parse_size_bytes, show

CONTRACT_TOP_KEYS = {"contracts"}
CONTRACT_KEYS = {"schema", "freshness", "max_record_bytes", "max_skew", "volume_window", "severity"}
CHECKS = (
    "schema_conformance",
    "key_discipline",
    "partition_balance",
    "volume_in_band",
    "freshness",
)
SEVERITY_WORDS = {"warning": "WARN", "critical": "CRIT"}
MAX_SCHEMA_BYTES = 256 * 1024
DEFAULT_MAX_SKEW = 2.0
DEFAULT_VOLUME_WINDOW_S = 3600.0
_NO_LIMIT = ("none", "off")


@dataclass(frozen=True)
class ContractSpec:
    """One topic's contract, resolved: what its records must look like and how often."""

    topic: str  # the topic's catalog key
    schema: Any = None  # a JSON Schema (a dict or a bool); None: values need only be JSON
    schema_source: str = ""  # the file it came from, or "inline"
    freshness_s: float | None = None  # None: no limit on silence
    max_record_bytes: int | None = None
    max_skew: float = DEFAULT_MAX_SKEW
    volume_window_s: float = DEFAULT_VOLUME_WINDOW_S
    severity: dict[str, str] = field(default_factory=dict)  # check -> WARN or CRIT
    declared: bool = True  # False: the defaults of a topic without an entry


@dataclass(frozen=True)
class Contracts:
    """Every catalog topic's contract by its catalog key (declared or default)."""

    by_topic: dict[str, ContractSpec] = field(default_factory=dict)

    def get(self, topic_key: str) -> ContractSpec:
        return self.by_topic.get(topic_key) or ContractSpec(topic_key, declared=False)

    @property
    def declared(self) -> bool:
        return any(c.declared for c in self.by_topic.values())


EMPTY = Contracts()


def contracts_of(catalog: Any) -> Contracts:
    """A catalog's contracts (`Catalog.contracts`, set by the loader and kept by `select()`
    and `dataclasses.replace`); none on a catalog built by hand."""
    return getattr(catalog, "contracts", None) or EMPTY


def build_contracts(errors: Any, data: dict, topics: list, source: str) -> Contracts:
    """The `contracts:` section checked against the topics; problems noted in `errors`."""
    raw = data.get("contracts")
    specs = {t.key: t for t in topics}
    out: dict[str, ContractSpec] = {}
    if raw is None:
        return Contracts({k: ContractSpec(k, declared=False) for k in specs})
    if not isinstance(raw, dict):
        errors.add("contracts", f"must be a mapping of topic name to its contract, got {show(raw)}")
        return Contracts()
    base = _base_dir(source)
    topic_keys = {t.key for t in topics}
    for key, entry in raw.items():
        path = f"contracts.{_path_key(key)}"
        if key not in topic_keys:
            if topics:  # no topics at all is already an error of its own
                errors.add(
                    path, "is not a topic of this catalog; a contract belongs to a declared topic"
                )
            continue
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            errors.add(path, f"must be a mapping (schema, freshness, ...), got {show(entry)}")
            continue
        errors.unknown_keys(path, entry, CONTRACT_KEYS)
        out[key] = _contract(errors, path, key, entry, specs[key], base)
    for k in specs:
        out.setdefault(k, ContractSpec(k, declared=False))
    return Contracts(out)


def _path_key(key: object) -> str:
    from ecap_ops.catalog.yaml_reader import path_key

    return path_key(str(key))


def _base_dir(source: str) -> Path | None:
    p = Path(source)
    try:
        return p.parent.resolve() if p.is_file() else None
    except OSError:
        return None


def _contract(
    errors: Any, path: str, key: str, entry: dict, spec: Any, base: Path | None
) -> ContractSpec:
    schema, schema_source = None, ""
    if "schema" in entry:
        schema, schema_source = _schema(errors, f"{path}.schema", entry["schema"], base)
    freshness = _freshness(errors, f"{path}.freshness", entry.get("freshness"))
    max_record = None
    if entry.get("max_record_bytes") is not None:
        max_record = _size(errors, f"{path}.max_record_bytes", entry["max_record_bytes"])
        limit = spec.max_message_bytes
        if max_record is not None and limit is not None and max_record > limit:
            errors.add(
                f"{path}.max_record_bytes",
                f"{max_record} bytes is more than the topic's max_message_size ({limit} bytes): "
                "no such record could be written; lower it or raise max_message_size",
            )
    skew = DEFAULT_MAX_SKEW
    if "max_skew" in entry:
        v = entry["max_skew"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 1:
            errors.add(
                f"{path}.max_skew",
                f"must be a number >= 1 (busiest partition / mean), got {show(v)}",
            )
        else:
            skew = float(v)
    window = DEFAULT_VOLUME_WINDOW_S
    if "volume_window" in entry:
        w = _duration_s(errors, f"{path}.volume_window", entry["volume_window"])
        if w is not None:
            window = w
    severity: dict[str, str] = {}
    sev_raw = entry.get("severity")
    if sev_raw is not None:
        if not isinstance(sev_raw, dict):
            errors.add(
                f"{path}.severity",
                f"must map check names to warning or critical, got {show(sev_raw)}",
            )
        else:
            for check, word in sev_raw.items():
                p = f"{path}.severity.{_path_key(check)}"
                if check not in CHECKS:
                    errors.add(p, f"unknown check; the checks are {', '.join(CHECKS)}")
                elif not isinstance(word, str) or word not in SEVERITY_WORDS:
                    errors.add(p, f"must be warning or critical, got {show(word)}")
                else:
                    severity[check] = SEVERITY_WORDS[word]
    return ContractSpec(key, schema, schema_source, freshness, max_record, skew, window, severity)


def _duration_s(errors: Any, path: str, value: Any) -> float | None:
    try:
        ms = parse_duration_ms(value)
    except ValueError as exc:
        errors.add(path, f"{exc}; write a positive duration such as 10m or 1h")
        return None
    if ms <= 0:
        errors.add(path, f"must be a positive duration such as 10m or 1h, got {show(value)}")
        return None
    return ms / 1000.0


def _freshness(errors: Any, path: str, value: Any) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in _NO_LIMIT):
        return None
    if isinstance(value, str) and value.strip().startswith("-"):
        errors.add(
            path,
            f"must be a positive duration such as 10m (the longest silence tolerated) or none, got {show(value)}",
        )
        return None
    return _duration_s(errors, path, value)


def _size(errors: Any, path: str, value: Any) -> int | None:
    try:
        n = parse_size_bytes(value)
    except ValueError as exc:
        errors.add(path, f"{exc}; write a size such as 64KiB or 1MiB")
        return None
    if n < 1:
        errors.add(path, f"must be a positive size such as 64KiB, got {show(value)}")
        return None
    return n


# -- schemas ---------------------------------------------------------------------------------


def _schema(errors: Any, path: str, value: Any, base: Path | None) -> tuple[Any, str]:
    if isinstance(value, dict) or isinstance(value, bool):
        where, schema = "inline", value
    elif isinstance(value, str) and value.strip():
        where = value.strip()
        schema = _read_schema_file(errors, path, where, base)
        if schema is None:
            return None, where
    else:
        errors.add(
            path,
            f"must be a schema file's path (beside the catalog) or an inline schema, got {show(value)}",
        )
        return None, ""
    problem = schema_problem(schema)
    if problem is not None:
        shown = f"{where}: " if where != "inline" else ""
        errors.add(path, f"{shown}{problem}")
        return None, where
    return schema, where


def _read_schema_file(errors: Any, path: str, name: str, base: Path | None) -> Any:
    if base is None:
        errors.add(
            path,
            f"{show(name)}: a schema file needs a catalog read from a file; write the schema inline",
        )
        return None
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        errors.add(
            path,
            f"{show(name)}: must be a path inside the catalog's folder (no absolute path, no '..')",
        )
        return None
    p = base / rel
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_SCHEMA_BYTES + 1)
    except FileNotFoundError:
        errors.add(
            path,
            f"schema file {show(name)} does not exist (looked in {base}); create it or fix the path",
        )
        return None
    except IsADirectoryError:
        errors.add(path, f"schema file {show(name)} is a directory")
        return None
    except OSError as exc:
        errors.add(
            path, f"schema file {show(name)} cannot be read: {exc.strerror or type(exc).__name__}"
        )
        return None
    if len(data) > MAX_SCHEMA_BYTES:
        errors.add(path, f"schema file {show(name)} is larger than {MAX_SCHEMA_BYTES} bytes")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        errors.add(path, f"schema file {show(name)} is not UTF-8 (byte {exc.start})")
        return None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        errors.add(
            path,
            f"schema file {show(name)} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
        )
    except ValueError as exc:
        errors.add(path, f"schema file {show(name)} is not usable JSON: {str(exc)[:80]}")
    except RecursionError:
        errors.add(path, f"schema file {show(name)} is nested too deeply")
    return None


def _no_duplicates(pairs: list) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"the key {show(k)} appears twice in one object")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _refs(node: Any, depth: int = 0):
    if depth > 64:
        yield ("(depth)", "the schema is nested more than 64 levels")
        return
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("$ref", "$dynamicRef") and isinstance(v, str):
                yield (k, v)
            yield from _refs(v, depth + 1)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v, depth + 1)


def schema_problem(schema: Any) -> str | None:
    """Why `schema` is not a usable JSON Schema (Draft 2020-12), or None."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, (dict, bool)):
        return f"a JSON Schema is an object (or true/false), got {type(schema).__name__}"
    declared = schema.get("$schema") if isinstance(schema, dict) else None
    if declared is not None and declared not in (
        "https://json-schema.org/draft/2020-12/schema",
        "https://json-schema.org/draft/2020-12/schema#",
    ):
        return f"$schema is {show(declared)}; ecap-ops reads Draft 2020-12 (https://json-schema.org/draft/2020-12/schema)"
    for k, ref in _refs(schema):
        if k == "(depth)":
            return ref
        if not ref.startswith("#"):
            return f"{k} {show(ref)} points outside the schema; only references within it (#/...) are allowed, nothing is fetched"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        at = ".".join(str(p) for p in exc.absolute_path) or "(top)"
        return f"not a valid JSON Schema (Draft 2020-12) at {at}: {exc.message[:160]}"
    except RecursionError:
        return "the schema is nested too deeply"
    return None
