"""The catalog's defensive YAML reader: bytes to text to one YAML document as Python data.

A catalog may come from anyone who can open a pull request, so it is read bounded: UTF-8
only, one YAML document, no aliases, anchors, tags or merge keys, nesting at most
MAX_DEPTH, numbers at most MAX_NUMBER_CHARS, keys exactly as written (`yes:` is refused,
not read as True). A construct refused outright raises `CatalogInvalid` naming the line
and column; key problems and duplicate keys are collected and returned for the caller to
report beside its own. Building typed topics from the data is `catalog/build.py`.
"""

import json
import re
from typing import Any

import yaml

from ecap_ops.catalog.units import SHOW_CHARS, show
from ecap_ops.errors import CatalogInvalid

MAX_DEPTH = 16  # a catalog nests 4 levels; deeper is a mistake or an attack
MAX_NUMBER_CHARS = 40  # int64 has 19 digits
MAX_PATH_KEY = 256  # a key is shown whole in a YAML path up to this length
MAX_ERRORS = 200  # listed; the rest are counted

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
        self._resolved: dict[tuple, str] = {}

    def dispose(self) -> None:
        self._parser.dispose()

    def path(self, key: str | None = None) -> str:
        out = ""
        for part in self._path + ([key] if key is not None else []):
            if isinstance(part, int):
                out += f"[{part}]"
            else:
                out += f".{path_key(part)}" if out else path_key(part)
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
                f"YAML aliases (*{cut(ev.anchor)}) are not allowed in a catalog; write the value out",
            )
        if ev.anchor is not None:
            raise _Refused(
                ev.start_mark,
                f"YAML anchors (&{cut(ev.anchor)}) are not allowed in a catalog; write each value out",
            )
        if ev.tag is not None:
            tag = ev.tag.replace("tag:yaml.org,2002:", "!!")
            raise _Refused(
                ev.start_mark,
                f"YAML tags ({cut(tag)}) are not allowed in a catalog; write a plain value (in quotes for text)",
            )
        if isinstance(ev, yaml.ScalarEvent):
            p.get_event()
            # Resolving tries YAML's implicit-type patterns one by one: the same scalar
            # (`lz4`, `1MiB`, `1`) is resolved once per document, not once per topic.
            memo = (ev.value, ev.implicit)
            tag = self._resolved.get(memo)
            if tag is None:
                tag = self.resolve(yaml.ScalarNode, ev.value, ev.implicit)
                if tag == _VALUE:
                    tag = _STR
                self._resolved[memo] = tag
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

    def _start(self, kind: type) -> Any:
        """An empty node of `kind` (SequenceNode, MappingNode) from its start event."""
        start = self._parser.get_event()
        resolved = self.resolve(kind, None, start.implicit)
        return kind(resolved, [], start.start_mark, None, flow_style=start.flow_style)

    def _sequence(self) -> yaml.SequenceNode:
        p = self._parser
        node = self._start(yaml.SequenceNode)
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
        node = self._start(yaml.MappingNode)
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
                f"the number {cut(node.value)} is longer than {MAX_NUMBER_CHARS} characters; no Kafka setting holds it",
            )
        return super().construct_yaml_int(node)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            raise _Refused(
                node.start_mark,
                f"{cut(node.value)} reads as a date but is not a valid one; quote it if it is text",
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
    quoted = json.dumps(text) if len(text) <= SHOW_CHARS else cut(text)
    return (
        f"the key {cut(text)} is read by YAML as {kind}, not as a name; "
        f"quote it ({quoted}) to mean the text"
    )


def cut(text: str, limit: int = SHOW_CHARS) -> str:
    """Text from the file for a message: at most `limit` characters, control characters escaped."""
    if len(text) > limit:
        return cut(text[:limit], limit) + "..."
    return text if text.isprintable() else repr(text)[1:-1]


def path_key(text: str) -> str:
    """A key as one part of a YAML path in a message: whole up to Kafka's topic-name length."""
    return cut(text, MAX_PATH_KEY)


def read_yaml(text: str, source: str) -> tuple[Any, list[str], list[str], int]:
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
        raise CatalogInvalid([f"(YAML{where}): {cut(problem, 200)}"], source) from None
    except yaml.YAMLError as exc:
        raise CatalogInvalid([f"(YAML): {cut(str(exc), 200)}"], source) from None
    finally:
        reader.dispose()
    return data, reader.problems, reader.duplicates, reader.dropped


def _char_at(text: str, mark: Any) -> str:
    lines = _LINE_BREAK.split(text)
    if 0 <= mark.line < len(lines) and 0 <= mark.column < len(lines[mark.line]):
        return lines[mark.line][mark.column]
    return ""


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
