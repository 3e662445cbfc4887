"""Read the catalog YAML into typed objects, reporting every error at once with its path.

An invalid catalog raises `CatalogInvalid` listing each problem as
`topics.fraud-alerts.partitions: must be >= 1, got 0`, before anything touches a cluster.
"""

import hashlib
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ecap_ops.catalog.kafka_configs import TOPIC_CONFIGS, normalize_config_value
from ecap_ops.catalog.model import Catalog, ExpectedVolume, LagThresholds, TopicSpec
from ecap_ops.catalog.units import parse_duration_ms, parse_size_bytes
from ecap_ops.errors import CatalogInvalid

DEFAULT_ENV = "dev"
TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_TOPIC_NAME = 249

TOP_KEYS = {"version", "environments", "lag_defaults", "topics"}
ENV_KEYS = {"replication_factor", "min_insync_replicas", "name_prefix"}
TOPIC_KEYS = {
    "purpose",
    "partitions",
    "replication_factor",
    "retention",
    "retention_bytes",
    "compression",
    "max_message_size",
    "cleanup_policy",
    "partition_key",
    "expected_volume",
    "lag",
    "configs",
    "transactional",
}
# Human field -> the Kafka config it becomes, and how to read it.
HUMAN_FIELDS = {
    "retention": ("retention.ms", parse_duration_ms),
    "retention_bytes": ("retention.bytes", parse_size_bytes),
    "max_message_size": ("max.message.bytes", parse_size_bytes),
    "compression": ("compression.type", None),
    "cleanup_policy": ("cleanup.policy", None),
}
LAG_KEYS = {"warn_seconds", "crit_seconds", "warn_msgs", "stall_after", "critical_at_once"}


def default_catalog_path() -> Path:
    return Path(str(resources.files("ecap_ops.catalog") / "topics.yaml"))


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that records duplicate keys instead of silently keeping the last."""

    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                self.duplicates.append(
                    f"duplicate key {key!r} at line {line} (first at line {seen[key]})"
                )
            else:
                try:
                    seen[key] = line
                except TypeError:
                    pass
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _UniqueKeyLoader.construct_mapping
)


def _suggest(word: str, options: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Errors:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, msg: str) -> None:
        self.items.append(f"{path}: {msg}")

    def unknown_keys(self, path: str, data: dict, allowed: set[str]) -> None:
        for k in data:
            if k not in allowed:
                self.add(
                    f"{path}.{k}" if path else str(k),
                    f"unknown key{_suggest(str(k), allowed)}; allowed: {', '.join(sorted(allowed))}",
                )


def _int(errors: _Errors, path: str, value: Any, minimum: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(path, f"must be a whole number, got {value!r}")
        return None
    if value < minimum:
        errors.add(path, f"must be >= {minimum}, got {value}")
        return None
    return value


def _lag(errors: _Errors, path: str, raw: Any, base: LagThresholds | None) -> LagThresholds | None:
    if raw is None:
        return base
    if not isinstance(raw, dict):
        errors.add(path, f"must be a mapping of {', '.join(sorted(LAG_KEYS))}")
        return base
    errors.unknown_keys(path, raw, LAG_KEYS)
    vals: dict[str, Any] = {}
    for key in ("warn_seconds", "crit_seconds"):
        if key in raw:
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                errors.add(f"{path}.{key}", f"must be a number of seconds > 0, got {v!r}")
            else:
                vals[key] = float(v)
    if "warn_msgs" in raw:
        v = _int(errors, f"{path}.warn_msgs", raw["warn_msgs"], 1)
        if v is not None:
            vals["warn_msgs"] = v
    if "stall_after" in raw:
        try:
            ms = parse_duration_ms(
                raw["stall_after"]
                if not isinstance(raw["stall_after"], int)
                else f"{raw['stall_after']}s"
            )
            if ms <= 0:
                raise ValueError("must be > 0")
            vals["stall_after_seconds"] = ms / 1000
        except ValueError as exc:
            errors.add(f"{path}.stall_after", str(exc))
    if "critical_at_once" in raw:
        if not isinstance(raw["critical_at_once"], bool):
            errors.add(
                f"{path}.critical_at_once",
                f"must be true or false, got {raw['critical_at_once']!r}",
            )
        else:
            vals["critical_at_once"] = raw["critical_at_once"]
    if base is None:
        missing = {"warn_seconds", "crit_seconds", "warn_msgs", "stall_after_seconds"} - set(vals)
        if missing:
            names = sorted(
                m.replace("_seconds", "") if m == "stall_after_seconds" else m for m in missing
            )
            errors.add(path, f"missing {', '.join(names)}")
            return None
        result = LagThresholds(**vals)
    else:
        merged = {**base.__dict__, **vals}
        result = LagThresholds(**merged)
    if result.crit_seconds < result.warn_seconds:
        errors.add(
            f"{path}.crit_seconds",
            f"must be >= warn_seconds ({result.warn_seconds:g}), got {result.crit_seconds:g}",
        )
    return result


def parse_catalog(text: str, env: str | None = None, source: str = "catalog") -> Catalog:
    """Parse and validate catalog YAML for one environment (ECAP_ENV's, by default)."""
    env = env or os.environ.get("ECAP_ENV") or DEFAULT_ENV
    errors = _Errors()
    loader = _UniqueKeyLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogInvalid([f"(YAML, {where}): {problem}"], source) from None
    finally:
        loader.dispose()
    for d in loader.duplicates:
        errors.add("(YAML)", d)
    if not isinstance(data, dict):
        raise CatalogInvalid(["(top): the catalog must be a mapping with a `topics:` key"], source)
    errors.unknown_keys("", data, TOP_KEYS)
    if data.get("version", 1) != 1:
        errors.add(
            "version",
            f"unsupported catalog version {data.get('version')!r}; this ecap-ops reads version 1",
        )

    envs = data.get("environments") or {"dev": {"replication_factor": 1}}
    resolved_envs: dict[str, dict[str, Any]] = {}
    if not isinstance(envs, dict):
        errors.add("environments", "must be a mapping of environment name to overlay")
        envs = {}
    for name, overlay in envs.items():
        path = f"environments.{name}"
        overlay = overlay or {}
        if not isinstance(overlay, dict):
            errors.add(path, "must be a mapping")
            continue
        errors.unknown_keys(path, overlay, ENV_KEYS)
        r = {"replication_factor": 1, "min_insync_replicas": None, "name_prefix": ""}
        if "replication_factor" in overlay:
            r["replication_factor"] = (
                _int(errors, f"{path}.replication_factor", overlay["replication_factor"], 1) or 1
            )
        if overlay.get("min_insync_replicas") is not None:
            r["min_insync_replicas"] = _int(
                errors, f"{path}.min_insync_replicas", overlay["min_insync_replicas"], 1
            )
        prefix = overlay.get("name_prefix") or ""
        if not isinstance(prefix, str) or (prefix and not TOPIC_NAME.match(prefix)):
            errors.add(
                f"{path}.name_prefix",
                f"may use only letters, digits, '.', '_' and '-', got {prefix!r}",
            )
            prefix = ""
        r["name_prefix"] = prefix
        resolved_envs[str(name)] = r
    if env not in resolved_envs:
        errors.add(
            "ECAP_ENV",
            f"{env!r} is not an environment of the catalog ({', '.join(sorted(resolved_envs)) or 'none'})",
        )

    lag_defaults = (
        _lag(errors, "lag_defaults", data.get("lag_defaults"), None)
        if data.get("lag_defaults") is not None
        else None
    )
    if lag_defaults is None:
        lag_defaults = LagThresholds(300.0, 1800.0, 10000, 600.0)

    topics_raw = data.get("topics")
    if not isinstance(topics_raw, dict) or not topics_raw:
        errors.add("topics", "must be a non-empty mapping of topic name to its settings")
        topics_raw = {}

    topics: list[TopicSpec] = []
    for env_name, overlay in resolved_envs.items():
        built = _build_topics(
            errors, topics_raw, overlay, env_name, lag_defaults, report=(env_name == env)
        )
        if env_name == env:
            topics = built

    if errors.items:
        raise CatalogInvalid(errors.items, source)
    digest_src = json.dumps(
        [[t.name, t.partitions, t.replication_factor, sorted(t.configs.items())] for t in topics],
        sort_keys=True,
    )
    return Catalog(
        env=env,
        source=source,
        name_prefix=resolved_envs[env]["name_prefix"],
        topics=tuple(topics),
        lag_defaults=lag_defaults,
        digest=hashlib.sha256(digest_src.encode()).hexdigest(),
        environments=tuple(sorted(resolved_envs)),
    )


def _build_topics(
    errors: _Errors,
    topics_raw: dict,
    overlay: dict,
    env_name: str,
    lag_defaults: LagThresholds,
    report: bool,
) -> list[TopicSpec]:
    """Resolve every topic for one environment. Field errors are reported once (for the
    chosen environment); cross-field errors of other environments are reported with the
    environment named, so a broken prod overlay fails in dev too."""
    local = _Errors() if not report else errors
    out: list[TopicSpec] = []
    seen_names: dict[str, str] = {}
    for key, raw in topics_raw.items():
        path = f"topics.{key}"
        key = str(key)
        if not TOPIC_NAME.match(key):
            local.add(path, "invalid topic name: use only letters, digits, '.', '_' and '-'")
            continue
        name = overlay["name_prefix"] + key
        if len(name) > MAX_TOPIC_NAME or name in (".", ".."):
            local.add(
                path,
                f"invalid topic name {name!r}: at most {MAX_TOPIC_NAME} characters, not '.' or '..'",
            )
            continue
        if key.startswith("__"):
            local.add(path, "names starting with '__' are reserved for Kafka's internal topics")
            continue
        # Kafka's metrics turn '.' into '_': two such names collide.
        collide = name.replace(".", "_")
        if collide in seen_names:
            local.add(
                path,
                f"collides with topic {seen_names[collide]!r} ('.' and '_' are the same in Kafka's metric names)",
            )
        seen_names[collide] = key
        if not isinstance(raw, dict):
            local.add(path, "must be a mapping of settings")
            continue
        local.unknown_keys(path, raw, TOPIC_KEYS)
        partitions = (
            _int(local, f"{path}.partitions", raw.get("partitions"), 1)
            if "partitions" in raw
            else None
        )
        if "partitions" not in raw:
            local.add(f"{path}.partitions", "required")
        rf = overlay["replication_factor"]
        if "replication_factor" in raw:
            rf = _int(local, f"{path}.replication_factor", raw["replication_factor"], 1) or rf
        configs: dict[str, str] = {}
        for field_name, (config_key, parse) in HUMAN_FIELDS.items():
            if field_name not in raw:
                continue
            fpath = f"{path}.{field_name}"
            try:
                value = parse(raw[field_name]) if parse else raw[field_name]
                configs[config_key] = normalize_config_value(config_key, value)
            except ValueError as exc:
                local.add(fpath, str(exc))
        raw_configs = raw.get("configs") or {}
        if not isinstance(raw_configs, dict):
            local.add(f"{path}.configs", "must be a mapping of Kafka topic config to value")
            raw_configs = {}
        for ck, cv in raw_configs.items():
            cpath = f"{path}.configs.{ck}"
            if ck not in TOPIC_CONFIGS:
                local.add(
                    cpath, f"unknown Kafka topic config{_suggest(str(ck), set(TOPIC_CONFIGS))}"
                )
                continue
            if ck in configs:
                human = next(f for f, (c, _) in HUMAN_FIELDS.items() if c == ck)
                local.add(cpath, f"set twice: also given as `{human}`")
                continue
            try:
                configs[ck] = normalize_config_value(ck, cv)
            except ValueError as exc:
                local.add(cpath, str(exc))
        if overlay["min_insync_replicas"] is not None and "min.insync.replicas" not in configs:
            configs["min.insync.replicas"] = str(overlay["min_insync_replicas"])
        misr = configs.get("min.insync.replicas")
        if misr is not None and rf is not None and int(misr) > rf:
            where = (
                f"{path}.configs.min.insync.replicas"
                if "min.insync.replicas" in raw_configs
                else f"environments.{env_name}.min_insync_replicas"
            )
            errors.add(
                where,
                f"min.insync.replicas {misr} is above the replication factor {rf} of topic {key!r} in environment {env_name!r}: no write with acks=all could succeed",
            )
        key_field = raw.get("partition_key")
        if key_field is not None and (not isinstance(key_field, str) or not key_field.strip()):
            local.add(
                f"{path}.partition_key", f"must be the name of a message field, got {key_field!r}"
            )
            key_field = None
        purpose = raw.get("purpose", "")
        if not isinstance(purpose, str):
            local.add(f"{path}.purpose", "must be text")
            purpose = str(purpose)
        volume = None
        vraw = raw.get("expected_volume")
        if vraw is not None:
            if not isinstance(vraw, dict) or set(vraw) - {"min_per_hour", "max_per_hour"}:
                local.add(f"{path}.expected_volume", "must be {min_per_hour: N, max_per_hour: N}")
            else:
                lo = _int(
                    local, f"{path}.expected_volume.min_per_hour", vraw.get("min_per_hour", 0), 0
                )
                hi = _int(
                    local, f"{path}.expected_volume.max_per_hour", vraw.get("max_per_hour", 0), 0
                )
                if lo is not None and hi is not None:
                    if hi < lo:
                        local.add(
                            f"{path}.expected_volume",
                            f"max_per_hour {hi} is below min_per_hour {lo}",
                        )
                    volume = ExpectedVolume(lo, hi)
        lag = _lag(local, f"{path}.lag", raw.get("lag"), lag_defaults)
        transactional = raw.get("transactional", False)
        if not isinstance(transactional, bool):
            local.add(f"{path}.transactional", f"must be true or false, got {transactional!r}")
            transactional = False
        if partitions is None or lag is None:
            continue
        out.append(
            TopicSpec(
                key=key,
                name=name,
                purpose=purpose.strip(),
                partitions=partitions,
                replication_factor=rf,
                configs=dict(sorted(configs.items())),
                partition_key=key_field,
                expected_volume=volume,
                lag=lag,
                transactional=transactional,
            )
        )
    return out


def load_catalog(path: str | os.PathLike | None = None, env: str | None = None) -> Catalog:
    """Load the catalog: `path`, else ECAP_CATALOG, else the one shipped in the package."""
    path = path or os.environ.get("ECAP_CATALOG") or default_catalog_path()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogInvalid([f"(file): {p} does not exist"], str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogInvalid([f"(file): cannot read {p}: {exc}"], str(p)) from None
    return parse_catalog(text, env=env, source=str(p))
