"""From the catalog's YAML document to typed objects: environments, lag thresholds, topics.

Every problem is collected in an `Errors` as `path: message` (for example
`topics.fraud-alerts.partitions: must be >= 1, got 0`), so a user sees all of them at once;
`parse_catalog` (catalog/loader.py) raises them together as one `CatalogInvalid`. Reading
the file and the YAML safely is `catalog/yaml_reader.py`.
"""

import math
import re
from typing import Any

from ecap_ops.catalog.kafka_configs import TOPIC_CONFIGS, normalize_config_value
from ecap_ops.catalog.model import (
    MAX_PATTERNS,
    ExpectedVolume,
    LagThresholds,
    Scope,
    TopicSpec,
    pattern_problem,
)
from ecap_ops.catalog.units import parse_duration_ms, parse_size_bytes, show
from ecap_ops.catalog.yaml_reader import MAX_ERRORS, MAX_PATH_KEY, cut, path_key

TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]+")  # always fullmatch: `$` would allow a newline
MAX_TOPIC_NAME = 249
MAX_ENVIRONMENTS = 16
# Kafka's field types: partitions is an INT32, replication factor an INT16.
INT16_MAX = 2**15 - 1
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

TOP_KEYS = {
    "version",
    "environments",
    "lag_defaults",
    "topics",
    # declared access (catalog/access.py)
    "principals",
    "acls",
    "users",
    "quotas",
    "access",
    # the topics the catalog manages (include / exclude patterns)
    "scope",
}
SCOPE_KEYS = {"include", "exclude"}
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
BUILTIN_LAG_DEFAULTS = LagThresholds(300.0, 1800.0, 10000, 600.0)


def suggest(word: str, options: set[str]) -> str:
    import difflib  # only when a key is unknown

    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Errors:
    """Every error found, each `path: message`; past MAX_ERRORS only counted."""

    def __init__(self) -> None:
        self._items: list[str] = []
        self.dropped = 0

    @property
    def full(self) -> bool:
        return len(self._items) >= MAX_ERRORS

    @property
    def items(self) -> list[str]:
        more = [f"... and {self.dropped} more error(s)"] if self.dropped else []
        return self._items + more

    def add(self, path: str, msg: str) -> None:
        self.add_item(f"{path}: {msg}")

    def add_item(self, item: str) -> None:
        if self.full:
            self.dropped += 1
        else:
            self._items.append(item)

    def unknown_keys(self, path: str, data: dict, allowed: set[str]) -> None:
        for k in data:
            if k not in allowed:
                key = path_key(str(k))
                hint = "" if self.full else suggest(str(k)[:MAX_PATH_KEY], allowed)
                self.add(
                    f"{path}.{key}" if path else key,
                    f"unknown key{hint}; allowed: {', '.join(sorted(allowed))}",
                )


def whole_number(
    errors: Errors, path: str, value: Any, minimum: int, maximum: int = INT64_MAX
) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(path, f"must be a whole number, got {show(value)}")
        return None
    if value < minimum:
        errors.add(path, f"must be >= {minimum}, got {show(value)}")
        return None
    if value > maximum:
        errors.add(path, f"must be <= {maximum}, got {show(value)}")
        return None
    return value


# --- Environments ----------------------------------------------------------------------


def resolve_environments(errors: Errors, data: dict, env: str) -> dict[str, dict[str, Any]]:
    """Each environment's overlay with its defaults filled in: replication_factor,
    min_insync_replicas (None when unset) and name_prefix. An unknown `env` is an error."""
    envs = data.get("environments") or {"dev": {"replication_factor": 1}}
    resolved: dict[str, dict[str, Any]] = {}
    if not isinstance(envs, dict):
        errors.add("environments", "must be a mapping of environment name to overlay")
        envs = {}
    if len(envs) > MAX_ENVIRONMENTS:
        errors.add(
            "environments", f"{len(envs)} environments; a catalog may have {MAX_ENVIRONMENTS}"
        )
        envs = dict(list(envs.items())[:MAX_ENVIRONMENTS])
    for name, overlay in envs.items():
        overlay = _environment(errors, f"environments.{path_key(name)}", overlay or {})
        if overlay is not None:
            resolved[str(name)] = overlay
    if env not in resolved:
        known = ", ".join(cut(e) for e in sorted(resolved)) or "none"
        errors.add("ECAP_ENV", f"{show(env)} is not an environment of the catalog ({known})")
    return resolved


def _environment(errors: Errors, path: str, overlay: Any) -> dict[str, Any] | None:
    if not isinstance(overlay, dict):
        errors.add(path, "must be a mapping")
        return None
    errors.unknown_keys(path, overlay, ENV_KEYS)
    r: dict[str, Any] = {"replication_factor": 1, "min_insync_replicas": None, "name_prefix": ""}
    if "replication_factor" in overlay:
        r["replication_factor"] = (
            whole_number(
                errors, f"{path}.replication_factor", overlay["replication_factor"], 1, INT16_MAX
            )
            or 1
        )
    if overlay.get("min_insync_replicas") is not None:
        r["min_insync_replicas"] = whole_number(
            errors, f"{path}.min_insync_replicas", overlay["min_insync_replicas"], 1, INT32_MAX
        )
    prefix = overlay.get("name_prefix") or ""
    if (
        not isinstance(prefix, str)
        or len(prefix) > MAX_TOPIC_NAME
        or (prefix and not TOPIC_NAME.fullmatch(prefix))
    ):
        errors.add(
            f"{path}.name_prefix",
            f"may use only letters, digits, '.', '_' and '-' (at most {MAX_TOPIC_NAME}), got {show(prefix)}",
        )
        prefix = ""
    r["name_prefix"] = prefix
    return r


def check_environments(errors: Errors, topics_raw: dict, envs: list[tuple[str, dict]]) -> None:
    """The cross-field checks of the environments other than the chosen one (their field
    errors are the chosen environment's, reported once). Each topic is read once, so many
    environments times many topics stays cheap."""
    quiet = Errors()
    own: list[tuple[str, int | None, int | None]] = []
    for key, raw in topics_raw.items():
        if not isinstance(raw, dict) or name_problem(key, ""):
            continue
        rf = None
        if "replication_factor" in raw:
            rf = whole_number(quiet, "", raw["replication_factor"], 1, INT16_MAX)
        misr = _own_min_isr(raw)
        own.append((key, rf, int(misr) if misr is not None else None))
    for env_name, overlay in envs:
        prefix = overlay["name_prefix"]
        room = MAX_TOPIC_NAME - len(prefix)
        env_rf, env_misr = overlay["replication_factor"], overlay["min_insync_replicas"]
        for key, rf, misr in own:
            m = misr if misr is not None else env_misr
            r = rf if rf is not None else env_rf
            if m is None or m <= r or len(key) > room or prefix + key in (".", ".."):
                continue
            path = f"topics.{path_key(key)}"
            _check_min_isr(errors, path, key, r, str(m), misr is not None, env_name)


# --- Lag thresholds --------------------------------------------------------------------


def lag_defaults(errors: Errors, data: dict) -> LagThresholds:
    """The catalog's `lag_defaults` (all four thresholds required), else the built-in ones."""
    found = None
    if data.get("lag_defaults") is not None:
        found = lag_thresholds(errors, "lag_defaults", data.get("lag_defaults"), None)
    return found if found is not None else BUILTIN_LAG_DEFAULTS


def lag_thresholds(
    errors: Errors, path: str, raw: Any, base: LagThresholds | None
) -> LagThresholds | None:
    """`raw` read over `base` (every threshold required when there is no base)."""
    if raw is None:
        return base
    if not isinstance(raw, dict):
        errors.add(path, f"must be a mapping of {', '.join(sorted(LAG_KEYS))}")
        return base
    errors.unknown_keys(path, raw, LAG_KEYS)
    vals = _lag_values(errors, path, raw)
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


def _lag_values(errors: Errors, path: str, raw: dict) -> dict[str, Any]:
    vals: dict[str, Any] = {}
    for key in ("warn_seconds", "crit_seconds"):
        if key in raw:
            v = raw[key]
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or not math.isfinite(v)
                or not 0 < v <= INT64_MAX / 1000
            ):
                errors.add(f"{path}.{key}", f"must be a number of seconds > 0, got {show(v)}")
            else:
                vals[key] = float(v)
    if "warn_msgs" in raw:
        v = whole_number(errors, f"{path}.warn_msgs", raw["warn_msgs"], 1)
        if v is not None:
            vals["warn_msgs"] = v
    if "stall_after" in raw:
        try:
            vals["stall_after_seconds"] = _stall_after_seconds(raw["stall_after"])
        except ValueError as exc:
            errors.add(f"{path}.stall_after", str(exc))
    if "critical_at_once" in raw:
        if not isinstance(raw["critical_at_once"], bool):
            errors.add(
                f"{path}.critical_at_once",
                f"must be true or false, got {show(raw['critical_at_once'])}",
            )
        else:
            vals["critical_at_once"] = raw["critical_at_once"]
    return vals


def _stall_after_seconds(stall: Any) -> float:
    if isinstance(stall, int) and not isinstance(stall, bool):
        if stall > INT64_MAX // 1000:
            raise ValueError(f"must be at most {INT64_MAX // 1000}s, got {show(stall)}")
        stall = f"{stall}s"
    ms = parse_duration_ms(stall)
    if ms <= 0:
        raise ValueError("must be > 0")
    return ms / 1000


# --- Topics ----------------------------------------------------------------------------


def name_problem(key: str, prefix: str) -> str | None:
    """Why `key` (with the environment's prefix) cannot be a Kafka topic name, or None."""
    if not TOPIC_NAME.fullmatch(key):
        return "invalid topic name: use only letters, digits, '.', '_' and '-'"
    name = prefix + key
    if len(name) > MAX_TOPIC_NAME or name in (".", ".."):
        return (
            f"invalid topic name {show(name)}: at most {MAX_TOPIC_NAME} characters, not '.' or '..'"
        )
    if key.startswith("__"):
        return "names starting with '__' are reserved for Kafka's internal topics"
    return None


def _own_min_isr(raw: dict) -> str | None:
    """The topic's own `configs: min.insync.replicas`, normalized; None when it has none
    or it does not read (reported with the topic's other configs)."""
    raw_configs = raw.get("configs")
    if isinstance(raw_configs, dict) and "min.insync.replicas" in raw_configs:
        try:
            return normalize_config_value("min.insync.replicas", raw_configs["min.insync.replicas"])
        except ValueError:
            pass
    return None


def _replication(
    errors: Errors, path: str, raw: dict, overlay: dict
) -> tuple[int, str | None, bool]:
    """A topic's replication factor and min.insync.replicas in one environment, and
    whether min.insync.replicas is the topic's own (else the environment's)."""
    rf = overlay["replication_factor"]
    if "replication_factor" in raw:
        rf = (
            whole_number(
                errors, f"{path}.replication_factor", raw["replication_factor"], 1, INT16_MAX
            )
            or rf
        )
    own = _own_min_isr(raw)
    if own is not None:
        return rf, own, True
    misr = overlay["min_insync_replicas"]
    return rf, (str(misr) if misr is not None else None), False


def _check_min_isr(
    errors: Errors, path: str, key: str, rf: int, misr: str | None, own: bool, env_name: str
) -> None:
    if misr is not None and int(misr) > rf:
        where = (
            f"{path}.configs.min.insync.replicas"
            if own
            else f"environments.{path_key(env_name)}.min_insync_replicas"
        )
        errors.add(
            where,
            f"min.insync.replicas {misr} is above the replication factor {rf} of topic {show(key)} in environment {show(env_name)}: no write with acks=all could succeed",
        )


def build_topics(
    errors: Errors,
    topics_raw: dict,
    overlay: dict,
    env_name: str,
    lag_defaults: LagThresholds,
) -> list[TopicSpec]:
    """Resolve every topic for the chosen environment, reporting every error."""
    out: list[TopicSpec] = []
    seen_names: dict[str, str] = {}
    for key, raw in topics_raw.items():
        path = f"topics.{path_key(key)}"
        problem = name_problem(key, overlay["name_prefix"])
        if problem:
            errors.add(path, problem)
            continue
        name = overlay["name_prefix"] + key
        # Kafka's metrics turn '.' into '_': two such names collide.
        collide = name.replace(".", "_")
        if collide in seen_names:
            errors.add(
                path,
                f"collides with topic {show(seen_names[collide])} ('.' and '_' are the same in Kafka's metric names)",
            )
        seen_names[collide] = key
        if not isinstance(raw, dict):
            errors.add(path, "must be a mapping of settings")
            continue
        spec = _build_topic(errors, path, key, name, raw, overlay, env_name, lag_defaults)
        if spec is not None:
            out.append(spec)
    return out


def _build_topic(
    errors: Errors,
    path: str,
    key: str,
    name: str,
    raw: dict,
    overlay: dict,
    env_name: str,
    lag_defaults: LagThresholds,
) -> TopicSpec | None:
    """One topic's settings as a TopicSpec, or None when a required part is missing."""
    errors.unknown_keys(path, raw, TOPIC_KEYS)
    partitions = (
        whole_number(errors, f"{path}.partitions", raw.get("partitions"), 1, INT32_MAX)
        if "partitions" in raw
        else None
    )
    if "partitions" not in raw:
        errors.add(f"{path}.partitions", "required")
    rf, misr, own = _replication(errors, path, raw, overlay)
    configs = _topic_configs(errors, path, raw)
    if misr is not None:
        configs["min.insync.replicas"] = misr
    _check_min_isr(errors, path, key, rf, misr, own, env_name)
    key_field = raw.get("partition_key")
    if key_field is not None and (not isinstance(key_field, str) or not key_field.strip()):
        errors.add(
            f"{path}.partition_key",
            f"must be the name of a message field, got {show(key_field)}",
        )
        key_field = None
    purpose = raw.get("purpose", "")
    if not isinstance(purpose, str):
        errors.add(f"{path}.purpose", "must be text")
        purpose = str(purpose)
    volume = _expected_volume(errors, f"{path}.expected_volume", raw.get("expected_volume"))
    lag = lag_thresholds(errors, f"{path}.lag", raw.get("lag"), lag_defaults)
    transactional = raw.get("transactional", False)
    if not isinstance(transactional, bool):
        errors.add(f"{path}.transactional", f"must be true or false, got {show(transactional)}")
        transactional = False
    if partitions is None or lag is None:
        return None
    return TopicSpec(
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


def _topic_configs(errors: Errors, path: str, raw: dict) -> dict[str, str]:
    """The Kafka configs a topic sets: its human fields (`retention: 7d`) and its
    `configs:` mapping, each normalized; a config given both ways is an error."""
    configs: dict[str, str] = {}
    for field_name, (config_key, parse) in HUMAN_FIELDS.items():
        if field_name not in raw:
            continue
        try:
            value = parse(raw[field_name]) if parse else raw[field_name]
            configs[config_key] = normalize_config_value(config_key, value)
        except ValueError as exc:
            errors.add(f"{path}.{field_name}", str(exc))
    raw_configs = raw.get("configs") or {}
    if not isinstance(raw_configs, dict):
        errors.add(f"{path}.configs", "must be a mapping of Kafka topic config to value")
        raw_configs = {}
    for ck, cv in raw_configs.items():
        cpath = f"{path}.configs.{path_key(ck)}"
        if ck not in TOPIC_CONFIGS:
            hint = "" if errors.full else suggest(ck[:MAX_PATH_KEY], set(TOPIC_CONFIGS))
            errors.add(cpath, f"unknown Kafka topic config{hint}")
            continue
        if ck in configs:
            human = next(f for f, (c, _) in HUMAN_FIELDS.items() if c == ck)
            errors.add(cpath, f"set twice: also given as `{human}`")
            continue
        try:
            configs[ck] = normalize_config_value(ck, cv)
        except ValueError as exc:
            errors.add(cpath, str(exc))
    return configs


def _expected_volume(errors: Errors, path: str, vraw: Any) -> ExpectedVolume | None:
    if vraw is None:
        return None
    if not isinstance(vraw, dict) or set(vraw) - {"min_per_hour", "max_per_hour"}:
        errors.add(path, "must be {min_per_hour: N, max_per_hour: N}")
        return None
    lo = whole_number(errors, f"{path}.min_per_hour", vraw.get("min_per_hour", 0), 0)
    hi = whole_number(errors, f"{path}.max_per_hour", vraw.get("max_per_hour", 0), 0)
    if lo is None or hi is None:
        return None
    if hi < lo:
        errors.add(path, f"max_per_hour {hi} is below min_per_hour {lo}")
    return ExpectedVolume(lo, hi)


# --- Scope -----------------------------------------------------------------------------


def patterns(errors: Errors, path: str, raw: Any) -> tuple[str, ...]:
    """A list of shell-style topic name patterns (one pattern alone is taken as a list of
    one), each problem reported at its path (`scope.include[2]`)."""
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list):
        errors.add(path, f"must be a list of topic name patterns, got {show(raw)}")
        return ()
    if len(items) > MAX_PATTERNS:
        errors.add(path, f"{len(items)} patterns; a scope may have at most {MAX_PATTERNS}")
        items = items[:MAX_PATTERNS]
    good = []
    for i, item in enumerate(items):
        problem = pattern_problem(item)
        if problem:
            errors.add(f"{path}[{i}]" if not isinstance(raw, str) else path, problem)
        else:
            good.append(item)
    return tuple(dict.fromkeys(good))


def build_scope(errors: Errors, data: dict) -> Scope:
    """The catalog's `scope: {include: [...], exclude: [...]}` (absent: every topic)."""
    raw = data.get("scope")
    if raw is None:
        return Scope()
    if not isinstance(raw, dict):
        errors.add(
            "scope",
            "must be a mapping such as {include: ['team-a.*'], exclude: ['team-a.tmp-*']}, "
            f"got {show(raw)}",
        )
        return Scope()
    errors.unknown_keys("scope", raw, SCOPE_KEYS)
    include = patterns(errors, "scope.include", raw.get("include"))
    exclude = patterns(errors, "scope.exclude", raw.get("exclude"))
    if raw.get("include") == []:
        errors.add(
            "scope.include",
            "is empty: the catalog would manage no topic; list patterns, or leave include out "
            "to manage every topic",
        )
    return Scope(include, exclude)


def check_scope(errors: Errors, scope: Scope, topics: list[TopicSpec]) -> None:
    """Every declared topic is within the scope: a catalog cannot declare what it says it
    does not manage."""
    if not scope.declared:
        return
    for t in topics:
        if not scope.covers(t.name):
            errors.add(
                f"topics.{path_key(t.key)}",
                f"topic {show(t.name)} is outside the catalog's scope ({scope.describe()}); "
                "widen scope.include or narrow scope.exclude, or remove the topic",
            )
