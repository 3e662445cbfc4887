"""The bounded JSON reader and its scanners (ecap_ops.core.integrity): nesting depth and
NaN/Infinity found outside strings exactly as a plain character-by-character scan finds
them; every bad input to `loads_bounded` raises the given error with a clear message."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecap_ops.core.integrity import find_constant, loads_bounded, nesting_exceeds
from ecap_ops.errors import SnapshotInvalid

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def _outside_strings(text: str):
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        else:
            yield i, ch


def _reference_depth(text: str, max_depth: int) -> int | None:
    depth = 0
    for i, ch in _outside_strings(text):
        if ch in "[{":
            depth += 1
            if depth > max_depth:
                return i
        elif ch in "]}":
            depth -= 1
    return None


def _reference_constant(text: str):
    for i, _ch in _outside_strings(text):
        for word in ("-Infinity", "NaN", "Infinity"):
            if text.startswith(word, i):
                return word, i
    return None


JSONISH = st.text(alphabet='[]{}"\\ :,aNI-nfity0', max_size=120)


@SETTINGS
@given(JSONISH, st.integers(0, 6))
def test_nesting_exceeds_matches_a_plain_scan(text, max_depth):
    assert nesting_exceeds(text, max_depth) == _reference_depth(text, max_depth)


@SETTINGS
@given(JSONISH | st.text(alphabet='"\\NaInfity-x ', max_size=60))
def test_find_constant_matches_a_plain_scan(text):
    assert find_constant(text) == _reference_constant(text)


@SETTINGS
@given(st.binary(max_size=300) | JSONISH.map(str.encode))
def test_loads_bounded_parses_or_raises_the_given_error(data):
    try:
        loads_bounded(data, "f.json", SnapshotInvalid, max_bytes=200, max_depth=5)
    except SnapshotInvalid as exc:
        assert str(exc).startswith("f.json: ")


@pytest.mark.parametrize(
    "data, words",
    [
        (b'{"a": NaN}', "NaN is not a JSON number at line 1, column 7"),
        (b'{"a":\n [1, -Infinity]}', "-Infinity is not a JSON number at line 2, column 6"),
        (b'{"a": [1, 2', "truncated: the JSON document ends early"),
        (b'{"a": "abc', "truncated"),
        (b'{"a": 1} x', "not JSON: Extra data at line 1, column 10"),
        (b"[" * 6 + b"]" * 6, "nested more than 5 levels deep (line 1)"),
        (b'"\xff"', "byte 1 is not UTF-8 text"),
        (b"[" + b"1" * 5000 + b"]", "not valid JSON: Exceeds the limit (4300 digits)"),
    ],
)
def test_loads_bounded_messages(data, words):
    with pytest.raises(SnapshotInvalid) as exc:
        loads_bounded(data, "f.json", SnapshotInvalid, max_bytes=6000, max_depth=5)
    assert words in str(exc.value)
    assert "sys.set_int_max_str_digits" not in str(exc.value)
    if len(data) <= 200:
        with pytest.raises(SnapshotInvalid):
            loads_bounded(data, "f.json", SnapshotInvalid, max_bytes=200, max_depth=5)


def test_loads_bounded_refuses_more_than_max_bytes_before_parsing():
    with pytest.raises(SnapshotInvalid, match="f.json: 201 bytes is more than the 200"):
        loads_bounded(b"[" * 201, "f.json", SnapshotInvalid, max_bytes=200)
    with pytest.raises(SnapshotInvalid, match="f.json: 202 bytes is more than the 200"):
        loads_bounded("é" * 101, "f.json", SnapshotInvalid, max_bytes=200)  # counted as UTF-8


def test_loads_bounded_reads_good_json():
    doc = {"a": [1, 2.5, "[{NaN}]", None, True], "b": {"c": '\\"'}}
    assert loads_bounded(json.dumps(doc).encode(), "f", SnapshotInvalid, 1000) == doc
