"""Read the catalog YAML into typed objects, reporting every error at once with its path.

An invalid catalog raises `CatalogInvalid` listing each problem as
`topics.fraud-alerts.partitions: must be >= 1, got 0`, before anything touches a cluster.

The file is read defensively, since a catalog may come from anyone who can open a pull
request: at most ECAP_CATALOG_MAX_BYTES (1 MiB), UTF-8 only, one YAML document, no
aliases, anchors, tags or merge keys, keys exactly as written (`yes:` is refused, not read
as True), numbers within Kafka's types. Every failure is one `CatalogInvalid` naming the
line and column or the YAML path; an offending value is shown by its first characters only.
"""

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ecap_ops.catalog.kafka_configs import TOPIC_CONFIGS, normalize_config_value
from ecap_ops.catalog.model import Catalog, ExpectedVolume, LagThresholds, TopicSpec
from ecap_ops.catalog.units import SHOW_CHARS, parse_duration_ms, parse_size_bytes, show
from ecap_ops.errors import CatalogInvalid, ConfigError

DEFAULT_ENV = "dev"
TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]+")  # always fullmatch: `$` would allow a newline
MAX_TOPIC_NAME = 249

MAX_BYTES_ENV = "ECAP_CATALOG_MAX_BYTES"
DEFAULT_MAX_BYTES = 1024 * 1024
MAX_DEPTH = 16  # a catalog nests 4 levels; deeper is a mistake or an attack
MAX_NUMBER_CHARS = 40  # int64 has 19 digits
MAX_PATH_KEY = 256  # a key is shown whole in a YAML path up to this length
MAX_ENVIRONMENTS = 16
MAX_ERRORS = 200  # listed; the rest are counted
# Kafka's field types: partitions is an INT32, replication factor an INT16.
INT16_MAX = 2**15 - 1
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

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


def max_catalog_bytes(env: Mapping[str, str] | None = None) -> int:
    """The largest catalog file ecap-ops reads: ECAP_CATALOG_MAX_BYTES, else 1 MiB."""
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


# --- Reading YAML: every key text as written, no aliases, one document, bounded -------

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"
_KINDS = {
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:null": "null (no value)",
    "tag:yaml.org,2002:int": "a number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:timestamp": "a date",
}
# Characters YAML does not allow in a stream (its "printable" set, inverted).
_NOT_ALLOWED = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


class _Refused(Exception):
    """A catalog construct refused outright, at a place in the file."""

    def __init__(self, mark: Any, message: str):
        super().__init__(message)
        self.mark = mark
        self.message = message


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of the character at `index`, counting breaks as YAML does."""
    line, start = 1, 0
    for m in _LINE_BREAK.finditer(text, 0, index):
        line, start = line + 1, m.end()
    return line, index - start + 1


def _event_parser(text: str) -> Any:
    if yaml.__with_libyaml__:
        from yaml.cyaml import CParser  # libyaml: the same events, many times faster

        return CParser(text)

    class _PyParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
        def __init__(self, stream: str):
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)

    return _PyParser(text)


class _CatalogYaml(yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """Builds the node tree from the parser's events, one at a time, refusing what a
    catalog has no use for before it can cost anything: aliases and anchors (a "billion
    laughs" document fails at its first alias), tags, a second document, nesting deeper
    than MAX_DEPTH. Keys stay the text that was written: a key YAML 1.1 would read as
    something else (`yes`, `null`, `0777`, `2024-01-01`), a merge key `<<` or a list or
    mapping used as a key is reported with its path and place. Values keep YAML's types."""

    def __init__(self, text: str):
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._parser = _event_parser(text)
        self.problems: list[str] = []
        self.duplicates: list[str] = []
        self.dropped = 0  # problems past MAX_ERRORS, counted only
        self._path: list[str | int] = []  # keys, and indexes in lists
        self._depth = 0

    def dispose(self) -> None:
        self._parser.dispose()

    def path(self, key: str | None = None) -> str:
        out = ""
        for part in self._path + ([key] if key is not None else []):
            if isinstance(part, int):
                out += f"[{part}]"
            else:
                out += f".{_path_key(part)}" if out else _path_key(part)
        return out or "(top)"

    def read(self) -> Any:
        p = self._parser
        p.get_event()  # stream start
        if p.check_event(yaml.StreamEndEvent):
            return None
        p.get_event()  # document start
        node = self._node()
        p.get_event()  # document end
        if not p.check_event(yaml.StreamEndEvent):
            second = p.get_event()
            raise _Refused(
                second.start_mark,
                "a second YAML document starts here; a catalog is one document (remove the `---` and what follows, or merge them)",
            )
        return self.construct_document(node)

    def _node(self) -> yaml.Node:
        p = self._parser
        ev = p.peek_event()
        if isinstance(ev, yaml.AliasEvent):
            raise _Refused(
                ev.start_mark,
                f"YAML aliases (*{_cut(ev.anchor)}) are not allowed in a catalog; write the value out",
            )
        if ev.anchor is not None:
            raise _Refused(
                ev.start_mark,
                f"YAML anchors (&{_cut(ev.anchor)}) are not allowed in a catalog; write each value out",
            )
        if ev.tag is not None:
            tag = ev.tag.replace("tag:yaml.org,2002:", "!!")
            raise _Refused(
                ev.start_mark,
                f"YAML tags ({_cut(tag)}) are not allowed in a catalog; write a plain value (in quotes for text)",
            )
        if isinstance(ev, yaml.ScalarEvent):
            p.get_event()
            tag = self.resolve(yaml.ScalarNode, ev.value, ev.implicit)
            if tag == _VALUE:
                tag = _STR
            return yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, style=ev.style)
        if self._depth >= MAX_DEPTH:
            raise _Refused(
                ev.start_mark,
                f"nested more than {MAX_DEPTH} levels deep; a catalog needs only a few",
            )
        self._depth += 1
        try:
            if isinstance(ev, yaml.SequenceStartEvent):
                return self._sequence()
            return self._mapping()
        finally:
            self._depth -= 1

    def _sequence(self) -> yaml.SequenceNode:
        p = self._parser
        start = p.get_event()
        node = yaml.SequenceNode(
            self.resolve(yaml.SequenceNode, None, start.implicit),
            [],
            start.start_mark,
            None,
            flow_style=start.flow_style,
        )
        index = 0
        while not p.check_event(yaml.SequenceEndEvent):
            self._path.append(index)
            node.value.append(self._node())
            self._path.pop()
            index += 1
        node.end_mark = p.get_event().end_mark
        return node

    def _mapping(self) -> yaml.MappingNode:
        p = self._parser
        start = p.get_event()
        node = yaml.MappingNode(
            self.resolve(yaml.MappingNode, None, start.implicit),
            [],
            start.start_mark,
            None,
            flow_style=start.flow_style,
        )
        seen: dict[str, int] = {}
        while not p.check_event(yaml.MappingEndEvent):
            key = self._node()
            keep = True
            if not isinstance(key, yaml.ScalarNode):
                what = "list" if isinstance(key, yaml.SequenceNode) else "mapping"
                self._note(
                    self.problems,
                    f"{self.path()} ({_where(key.start_mark)}): a key must be text, found a {what}; write the key as a plain name",
                )
                keep = False
                text = "?"
            else:
                text = key.value
                if key.tag != _STR:
                    self._note(
                        self.problems,
                        f"{self.path(text)} ({_where(key.start_mark)}): {_key_problem(key)}",
                    )
                    # Read on as the text it was meant to be; a merge is dropped unmerged.
                    keep = key.tag != _MERGE
                    key.tag = _STR
                line = key.start_mark.line + 1
                if text in seen:
                    where = "" if not self._path else f" in {self.path()}"
                    self._note(
                        self.duplicates,
                        f"duplicate key {show(text)} at line {line} (first at line {seen[text]}){where}",
                    )
                else:
                    seen[text] = line
            self._path.append(text)
            value = self._node()
            self._path.pop()
            if keep:
                node.value.append((key, value))
        node.end_mark = p.get_event().end_mark
        return node

    def _note(self, found: list[str], problem: str) -> None:
        if len(self.problems) + len(self.duplicates) < MAX_ERRORS:
            found.append(problem)
        else:
            self.dropped += 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > MAX_NUMBER_CHARS:
            raise _Refused(
                node.start_mark,
                f"the number {_cut(node.value)} is longer than {MAX_NUMBER_CHARS} characters; no Kafka setting holds it",
            )
        return super().construct_yaml_int(node)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            raise _Refused(
                node.start_mark,
                f"{_cut(node.value)} reads as a date but is not a valid one; quote it if it is text",
            ) from None


_CatalogYaml.add_constructor("tag:yaml.org,2002:int", _CatalogYaml.construct_yaml_int)
_CatalogYaml.add_constructor("tag:yaml.org,2002:timestamp", _CatalogYaml.construct_yaml_timestamp)


def _key_problem(key: yaml.ScalarNode) -> str:
    text = key.value
    if key.tag == _MERGE:
        return "merge keys (<<) are not allowed in a catalog; write the keys out"
    if text == "":
        return "a key is missing before the `:`; write a name"
    kind = _KINDS.get(key.tag, "something other than text")
    if key.tag == "tag:yaml.org,2002:bool":
        kind += " (true)" if text.lower() in ("yes", "true", "on") else " (false)"
    quoted = json.dumps(text) if len(text) <= SHOW_CHARS else _cut(text)
    return (
        f"the key {_cut(text)} is read by YAML as {kind}, not as a name; "
        f"quote it ({quoted}) to mean the text"
    )


def _cut(text: str, limit: int = SHOW_CHARS) -> str:
    """Text from the file for a message: at most `limit` characters, control characters escaped."""
    if len(text) > limit:
        return _cut(text[:limit], limit) + "..."
    return text if text.isprintable() else repr(text)[1:-1]


def _path_key(text: str) -> str:
    """A key as one part of a YAML path in a message: whole up to Kafka's topic-name length."""
    return _cut(text, MAX_PATH_KEY)


def _read_yaml(text: str, source: str) -> tuple[Any, list[str], list[str], int]:
    """The catalog's one YAML document as Python data, with key problems and duplicates."""
    bad = _NOT_ALLOWED.search(text)
    if bad:
        line, col = _line_col(text, bad.start())
        ch = bad.group()
        if ch == "\0":
            problem = "a NUL byte: this is not a text file (is it UTF-16, or binary?); save the catalog as UTF-8 text"
        elif "\ud800" <= ch <= "\udfff":
            problem = f"character U+{ord(ch):04X} is not valid text; save the catalog as UTF-8"
        else:
            problem = f"control character U+{ord(ch):04X} is not allowed in YAML; remove it"
        raise CatalogInvalid([f"(YAML, line {line}, column {col}): {problem}"], source)
    reader = _CatalogYaml(text)
    try:
        data = reader.read()
    except _Refused as exc:
        raise CatalogInvalid([f"(YAML, {_where(exc.mark)}): {exc.message}"], source) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not valid YAML"
        if mark is not None and _char_at(text, mark) == "\t":
            problem += " (a tab: YAML indents with spaces only)"
        where = f", {_where(mark)}" if mark is not None else ""
        raise CatalogInvalid([f"(YAML{where}): {_cut(problem, 200)}"], source) from None
    except yaml.YAMLError as exc:
        raise CatalogInvalid([f"(YAML): {_cut(str(exc), 200)}"], source) from None
    finally:
        reader.dispose()
    return data, reader.problems, reader.duplicates, reader.dropped


def _char_at(text: str, mark: Any) -> str:
    lines = _LINE_BREAK.split(text)
    if 0 <= mark.line < len(lines) and 0 <= mark.column < len(lines[mark.line]):
        return lines[mark.line][mark.column]
    return ""


def _suggest(word: str, options: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Errors:
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
                key = _path_key(str(k))
                hint = "" if self.full else _suggest(str(k)[:MAX_PATH_KEY], allowed)
                self.add(
                    f"{path}.{key}" if path else key,
                    f"unknown key{hint}; allowed: {', '.join(sorted(allowed))}",
                )


def _int(
    errors: _Errors, path: str, value: Any, minimum: int, maximum: int = INT64_MAX
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
        v = _int(errors, f"{path}.warn_msgs", raw["warn_msgs"], 1)
        if v is not None:
            vals["warn_msgs"] = v
    if "stall_after" in raw:
        stall = raw["stall_after"]
        try:
            if isinstance(stall, int) and not isinstance(stall, bool):
                if stall > INT64_MAX // 1000:
                    raise ValueError(f"must be at most {INT64_MAX // 1000}s, got {show(stall)}")
                stall = f"{stall}s"
            ms = parse_duration_ms(stall)
            if ms <= 0:
                raise ValueError("must be > 0")
            vals["stall_after_seconds"] = ms / 1000
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
    errors = _Errors()
    data, key_problems, duplicates, dropped = _read_yaml(text, source)
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
    errors.unknown_keys("", data, TOP_KEYS)
    version = data.get("version", 1)
    if type(version) is not int or version != 1:
        errors.add(
            "version",
            f"unsupported catalog version {show(version)}; this ecap-ops reads version 1",
        )

    envs = data.get("environments") or {"dev": {"replication_factor": 1}}
    resolved_envs: dict[str, dict[str, Any]] = {}
    if not isinstance(envs, dict):
        errors.add("environments", "must be a mapping of environment name to overlay")
        envs = {}
    if len(envs) > MAX_ENVIRONMENTS:
        errors.add(
            "environments", f"{len(envs)} environments; a catalog may have {MAX_ENVIRONMENTS}"
        )
        envs = dict(list(envs.items())[:MAX_ENVIRONMENTS])
    for name, overlay in envs.items():
        path = f"environments.{_path_key(name)}"
        overlay = overlay or {}
        if not isinstance(overlay, dict):
            errors.add(path, "must be a mapping")
            continue
        errors.unknown_keys(path, overlay, ENV_KEYS)
        r = {"replication_factor": 1, "min_insync_replicas": None, "name_prefix": ""}
        if "replication_factor" in overlay:
            r["replication_factor"] = (
                _int(
                    errors,
                    f"{path}.replication_factor",
                    overlay["replication_factor"],
                    1,
                    INT16_MAX,
                )
                or 1
            )
        if overlay.get("min_insync_replicas") is not None:
            r["min_insync_replicas"] = _int(
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
        resolved_envs[str(name)] = r
    if env not in resolved_envs:
        known = ", ".join(_cut(e) for e in sorted(resolved_envs)) or "none"
        errors.add("ECAP_ENV", f"{show(env)} is not an environment of the catalog ({known})")

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
    if env in resolved_envs:
        topics = _build_topics(errors, topics_raw, resolved_envs[env], env, lag_defaults)
    # Other environments: their cross-field errors too, so a broken prod overlay fails in dev.
    others = [(name, overlay) for name, overlay in resolved_envs.items() if name != env]
    if others:
        _check_environments(errors, topics_raw, others)

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


def _name_problem(key: str, prefix: str) -> str | None:
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


def _replication(
    errors: _Errors, path: str, raw: dict, overlay: dict
) -> tuple[int, str | None, bool]:
    """A topic's replication factor and min.insync.replicas in one environment, and
    whether min.insync.replicas is the topic's own (else the environment's)."""
    rf = overlay["replication_factor"]
    if "replication_factor" in raw:
        rf = (
            _int(errors, f"{path}.replication_factor", raw["replication_factor"], 1, INT16_MAX)
            or rf
        )
    raw_configs = raw.get("configs")
    if isinstance(raw_configs, dict) and "min.insync.replicas" in raw_configs:
        try:
            return (
                rf,
                normalize_config_value("min.insync.replicas", raw_configs["min.insync.replicas"]),
                True,
            )
        except ValueError:
            pass  # reported with the topic's other configs
    misr = overlay["min_insync_replicas"]
    return rf, (str(misr) if misr is not None else None), False


def _check_min_isr(
    errors: _Errors, path: str, key: str, rf: int, misr: str | None, own: bool, env_name: str
) -> None:
    if misr is not None and int(misr) > rf:
        where = (
            f"{path}.configs.min.insync.replicas"
            if own
            else f"environments.{_path_key(env_name)}.min_insync_replicas"
        )
        errors.add(
            where,
            f"min.insync.replicas {misr} is above the replication factor {rf} of topic {show(key)} in environment {show(env_name)}: no write with acks=all could succeed",
        )


def _check_environments(errors: _Errors, topics_raw: dict, envs: list[tuple[str, dict]]) -> None:
    """The cross-field checks of the environments other than the chosen one (their field
    errors are the chosen environment's, reported once). Each topic is read once, so many
    environments times many topics stays cheap."""
    quiet = _Errors()
    own: list[tuple[str, int | None, int | None]] = []
    for key, raw in topics_raw.items():
        if not isinstance(raw, dict) or _name_problem(key, ""):
            continue
        rf = None
        if "replication_factor" in raw:
            rf = _int(quiet, "", raw["replication_factor"], 1, INT16_MAX)
        misr = None
        raw_configs = raw.get("configs")
        if isinstance(raw_configs, dict) and "min.insync.replicas" in raw_configs:
            try:
                misr = int(
                    normalize_config_value(
                        "min.insync.replicas", raw_configs["min.insync.replicas"]
                    )
                )
            except ValueError:
                pass  # reported with the chosen environment's topics
        own.append((key, rf, misr))
    for env_name, overlay in envs:
        prefix = overlay["name_prefix"]
        room = MAX_TOPIC_NAME - len(prefix)
        env_rf, env_misr = overlay["replication_factor"], overlay["min_insync_replicas"]
        for key, rf, misr in own:
            m = misr if misr is not None else env_misr
            r = rf if rf is not None else env_rf
            if m is None or m <= r or len(key) > room or prefix + key in (".", ".."):
                continue
            path = f"topics.{_path_key(key)}"
            _check_min_isr(errors, path, key, r, str(m), misr is not None, env_name)


def _build_topics(
    errors: _Errors,
    topics_raw: dict,
    overlay: dict,
    env_name: str,
    lag_defaults: LagThresholds,
) -> list[TopicSpec]:
    """Resolve every topic for the chosen environment, reporting every error."""
    local = errors
    out: list[TopicSpec] = []
    seen_names: dict[str, str] = {}
    for key, raw in topics_raw.items():
        path = f"topics.{_path_key(key)}"
        problem = _name_problem(key, overlay["name_prefix"])
        if problem:
            local.add(path, problem)
            continue
        name = overlay["name_prefix"] + key
        # Kafka's metrics turn '.' into '_': two such names collide.
        collide = name.replace(".", "_")
        if collide in seen_names:
            local.add(
                path,
                f"collides with topic {show(seen_names[collide])} ('.' and '_' are the same in Kafka's metric names)",
            )
        seen_names[collide] = key
        if not isinstance(raw, dict):
            local.add(path, "must be a mapping of settings")
            continue
        local.unknown_keys(path, raw, TOPIC_KEYS)
        partitions = (
            _int(local, f"{path}.partitions", raw.get("partitions"), 1, INT32_MAX)
            if "partitions" in raw
            else None
        )
        if "partitions" not in raw:
            local.add(f"{path}.partitions", "required")
        rf, misr, own = _replication(local, path, raw, overlay)
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
            cpath = f"{path}.configs.{_path_key(ck)}"
            if ck not in TOPIC_CONFIGS:
                hint = "" if local.full else _suggest(ck[:MAX_PATH_KEY], set(TOPIC_CONFIGS))
                local.add(cpath, f"unknown Kafka topic config{hint}")
                continue
            if ck in configs:
                human = next(f for f, (c, _) in HUMAN_FIELDS.items() if c == ck)
                local.add(cpath, f"set twice: also given as `{human}`")
                continue
            try:
                configs[ck] = normalize_config_value(ck, cv)
            except ValueError as exc:
                local.add(cpath, str(exc))
        if misr is not None:
            configs["min.insync.replicas"] = misr
        _check_min_isr(errors, path, key, rf, misr, own, env_name)
        key_field = raw.get("partition_key")
        if key_field is not None and (not isinstance(key_field, str) or not key_field.strip()):
            local.add(
                f"{path}.partition_key",
                f"must be the name of a message field, got {show(key_field)}",
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
            local.add(f"{path}.transactional", f"must be true or false, got {show(transactional)}")
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


def _too_big(limit: int) -> str:
    return (
        f"(file): the catalog is larger than {limit} bytes, the most ecap-ops reads; "
        f"raise {MAX_BYTES_ENV} if it really is that large"
    )


_OTHER_ENCODINGS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
)


def decode_catalog(data: bytes, source: str = "catalog") -> str:
    """Catalog bytes as text: UTF-8 (a UTF-8 byte-order mark is dropped), else CatalogInvalid
    naming the line and column of the first byte that is not UTF-8."""
    for bom, name in _OTHER_ENCODINGS:
        if data.startswith(bom):
            raise CatalogInvalid(
                [
                    f"(file, line 1, column 1): the file is {name} (it starts with a byte-order mark); save the catalog as UTF-8"
                ],
                source,
            )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = exc.start
        line = data.count(b"\n", 0, at) + 1
        line_start = data.rfind(b"\n", 0, at) + 1
        column = len(data[line_start:at].decode("utf-8", "replace")) + 1
        raise CatalogInvalid(
            [
                f"(file, line {line}, column {column}): byte 0x{data[at]:02x} is not UTF-8; save the catalog as UTF-8 text"
            ],
            source,
        ) from None


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
