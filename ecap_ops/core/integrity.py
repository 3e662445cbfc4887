"""Integrity of the files ecap-ops writes and reads back: saved plans and DR snapshots.

Two guards, for two threats:
- a SHA-256 checksum catches corruption (a truncated copy, a flipped byte), but anyone who
  edits a file can recompute it, so it proves nothing about who wrote the file;
- an HMAC-SHA256 tag under `ECAP_SIGNING_KEY` proves the file was written by someone who
  holds the key. When the key is set, files without a valid tag are refused.

And one limit, for a third: a hostile or broken JSON file (gigabytes, or nested ten
thousand levels deep) is refused with a clear message before it is parsed.
Pure: the key is passed in; reading the environment is `signing_key_from_env`.
"""

import hashlib
import hmac
import itertools
import json
import os
import re
from typing import Any

from ecap_ops.errors import ConfigError, EcapOpsError

SIGNING_KEY_ENV = "ECAP_SIGNING_KEY"
TAG_ALGORITHM = "hmac-sha256"
MIN_KEY_BYTES = 16
DEFAULT_MAX_DEPTH = 64


def signing_key_from_env(env: dict[str, str] | None = None) -> bytes | None:
    """The signing key from ECAP_SIGNING_KEY, or None when unset. Never logged."""
    env = os.environ if env is None else env
    raw = env.get(SIGNING_KEY_ENV)
    if not raw:
        return None
    key = raw.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"{SIGNING_KEY_ENV}: too short ({len(key)} bytes); use at least {MIN_KEY_BYTES} random bytes, "
            "for example `python3 -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    return key


def sign(body: bytes, key: bytes) -> dict[str, str]:
    """The tag of `body` (the canonical bytes of a document without its tag)."""
    return {"algorithm": TAG_ALGORITHM, "value": hmac.new(key, body, hashlib.sha256).hexdigest()}


def verify_tag(
    body: bytes, tag: Any, key: bytes | None, source: str, error: type[EcapOpsError]
) -> None:
    """Refuse `source` unless its tag is valid under `key`. Without a key, nothing to check
    (a tag, if present, is ignored: the reader cannot judge it)."""
    if key is None:
        return
    if tag is None:
        raise error(
            f"{source}: has no signature, and {SIGNING_KEY_ENV} is set, so only signed files are accepted; "
            "it was written without the key (or the signature was removed). Write it again with the key set."
        )
    if (
        not isinstance(tag, dict)
        or tag.get("algorithm") != TAG_ALGORITHM
        or not isinstance(tag.get("value"), str)
    ):
        raise error(
            f'{source}: the signature field is malformed (expected {{"algorithm": "{TAG_ALGORITHM}", "value": ...}})'
        )
    want = hmac.new(key, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, tag["value"]):
        raise error(
            f"{source}: the signature does not verify under {SIGNING_KEY_ENV}: the file was edited after it was "
            "written, or signed with another key; refusing it"
        )


# A JSON string (possibly unterminated), or one of the tokens a scanner looks for.
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"?'
_STRINGS = re.compile(_STRING, re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_BRACKETS = re.compile(_STRING + r"|[\[\]{}]", re.DOTALL)
_CONSTANTS = re.compile(_STRING + r"|-?Infinity|NaN", re.DOTALL)
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def nesting_exceeds(text: str, max_depth: int) -> int | None:
    """The offset where nesting first exceeds `max_depth`, ignoring brackets in strings."""
    if text.count("[") + text.count("{") <= max_depth:
        return None
    # Fast check (regex and accumulate run in C): the deepest point of the brackets.
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    if max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0) <= max_depth:
        return None
    depth = 0
    for m in _BRACKETS.finditer(text):
        ch = m.group()
        if ch in "[{":
            depth += 1
            if depth > max_depth:
                return m.start()
        elif ch in "]}":
            depth -= 1
    return None  # pragma: no cover - the fast check said otherwise


# The kept name, for callers of the first version.
_depth_exceeds = nesting_exceeds

NON_JSON_CONSTANTS = ("NaN", "Infinity", "-Infinity")


def find_constant(text: str) -> tuple[str, int] | None:
    """The first NaN / Infinity / -Infinity outside strings (Python's json accepts them,
    JSON does not) and its offset, or None."""
    for m in _CONSTANTS.finditer(text):
        if not m.group().startswith('"'):
            return m.group(), m.start()
    return None


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


class _Constant(ValueError):
    def __init__(self, name: str):
        super().__init__(f"{name} is not a JSON number")
        self.name = name


def _reject_constant(name: str):
    raise _Constant(name)


def loads_bounded(
    data: bytes | str,
    source: str,
    error: type[EcapOpsError],
    max_bytes: int,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """Parse JSON that came from a file a person may have edited: at most `max_bytes`,
    nested at most `max_depth` deep, UTF-8, no NaN/Infinity. Any problem raises `error`
    with a message that names the file and where; never a traceback."""
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise error(
            f"{source}: {size:,} bytes is more than the {max_bytes:,} this reader accepts; not read"
        )
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{source}: byte {exc.start} is not UTF-8 text (not JSON)") from None
    else:
        text = data
    if "\x00" in text:
        raise error(f"{source}: contains a NUL byte at offset {text.index(chr(0))}; not JSON")
    where = nesting_exceeds(text, max_depth)
    if where is not None:
        line = line_column(text, where)[0]
        raise error(
            f"{source}: nested more than {max_depth} levels deep (line {line}); not a file ecap-ops wrote"
        )
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except _Constant as exc:
        found = find_constant(text)
        where = " at line {}, column {}".format(*line_column(text, found[1])) if found else ""
        raise error(f"{source}: not JSON: {exc.name} is not a JSON number{where}") from None
    except json.JSONDecodeError as exc:
        stripped = text.strip()
        closer = {"{": "}", "[": "]"}.get(stripped[:1])
        if (
            closer
            and exc.msg != "Extra data"
            and (not stripped.endswith(closer) or exc.pos >= len(text.rstrip()) - 1)
        ):
            raise error(
                f"{source}: truncated: the JSON document ends early, at byte {size:,} (line {exc.lineno}, "
                f"column {exc.colno}: {exc.msg}); the file was cut off while being copied or written"
            ) from None
        raise error(
            f"{source}: not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except ValueError as exc:  # an integer longer than Python converts (4300 digits)
        raise error(f"{source}: not valid JSON: {str(exc).split(';')[0]}") from None
    except RecursionError:
        raise error(f"{source}: nested too deeply to read") from None
