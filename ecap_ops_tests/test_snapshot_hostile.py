"""Hostile snapshot files: arbitrary bytes, mutated and re-sealed documents, deep nesting and
oversized files are refused with SnapshotInvalid (a clear message), never another error; the
CLI readers (snapshot-verify, snapshot-diff, restore) exit 1 without a traceback. Pure, no
broker."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecap_ops.cli import main
from ecap_ops.core.snapshot import (
    Snapshot,
    diff_snapshots,
    max_snapshot_bytes,
    parse_snapshot,
    render_diff,
    seal,
    serialize,
)
from ecap_ops.errors import ConfigError, SnapshotInvalid
from ecap_ops.services.dr import load_snapshot
from ecap_ops_tests.test_snapshot import make_doc

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))

REAL = make_doc()
REAL_TEXT = serialize(REAL)


def _parses_or_refuses(data) -> Snapshot | None:
    """parse_snapshot's only outcomes: a Snapshot usable by every reader, or SnapshotInvalid."""
    try:
        snap = parse_snapshot(data, "s.json")
    except SnapshotInvalid as exc:
        msg = str(exc)
        assert msg.startswith("s.json: "), msg
        assert len(msg) < 1500, msg  # a short prefix of any value at most
        return None
    # What parses must be usable by the readers: summary, diff both ways, its rendering.
    snap.summary()
    original = Snapshot(REAL, "real")
    render_diff(diff_snapshots(original, snap))
    render_diff(diff_snapshots(snap, original))
    render_diff(diff_snapshots(snap, snap))
    return snap


@SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_parse_or_are_refused(data):
    _parses_or_refuses(data)


@SETTINGS
@given(st.text(max_size=500))
def test_arbitrary_text_parses_or_is_refused(text):
    _parses_or_refuses(text)


@st.composite
def byte_mutations(draw):
    data = bytearray(REAL_TEXT.encode())
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[i] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[i : i + draw(st.integers(1, 8))]
        else:
            del data[i:]
    return bytes(data)


@SETTINGS
@given(byte_mutations())
def test_byte_mutations_of_a_sealed_snapshot_are_refused_or_harmless(data):
    snap = _parses_or_refuses(data)
    if snap is not None:  # only a no-op mutation can survive the checksum and the layout check
        assert data == REAL_TEXT.encode()


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value, prefix=()):
    """Every path into a JSON value (the value itself included)."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


ALL_PATHS = [p for p in _paths(REAL) if p and p[0] != "checksum"]


@st.composite
def resealed_mutations(draw):
    """The real document with a few subtrees replaced, deleted or added, then sealed again
    (what an editor who recomputes the checksum produces)."""
    doc = json.loads(REAL_TEXT)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent = doc
        try:
            for step in path[:-1]:
                parent = parent[step]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(JSON)
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(st.text(max_size=6))] = draw(JSON)
            elif isinstance(parent, list):
                parent.append(draw(JSON))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or retyped this path
    if not isinstance(doc, dict):
        return serialize(doc)
    return serialize(seal(doc))


@SETTINGS
@given(resealed_mutations())
def test_resealed_mutations_parse_into_usable_snapshots_or_are_refused(text):
    _parses_or_refuses(text)
    _parses_or_refuses(text.encode())


def test_the_real_document_round_trips():
    assert _parses_or_refuses(REAL_TEXT) is not None


def _nested(depth: int) -> str:
    """A sealed-looking snapshot whose notes hold a list nested `depth` deep."""
    head = REAL_TEXT[: REAL_TEXT.index('"notes": [') + len('"notes": [')]
    return head + "[" * depth + "]" * depth + "]}\n"


@pytest.mark.parametrize("depth", [65, 1000, 200_000])
def test_deeply_nested_files_are_refused_before_parsing(depth):
    with pytest.raises(SnapshotInvalid, match=r"nested more than 64 levels deep \(line \d+\)"):
        parse_snapshot(_nested(depth).encode(), "deep.json")


def test_oversized_input_is_refused_with_the_limit():
    with pytest.raises(SnapshotInvalid, match=r"s.json: [\d,]+ bytes is more than the 1,000"):
        parse_snapshot(REAL_TEXT, "s.json", max_bytes=1000)
    assert parse_snapshot(REAL_TEXT, "s.json", max_bytes=len(REAL_TEXT.encode())).cluster_id


def test_max_bytes_from_the_environment():
    assert max_snapshot_bytes({}) == 512 * 1024 * 1024
    assert max_snapshot_bytes({"ECAP_SNAPSHOT_MAX_BYTES": "1MiB"}) == 1024 * 1024
    assert max_snapshot_bytes({"ECAP_SNAPSHOT_MAX_BYTES": "2048"}) == 2048
    for bad in ("lots", "0", "-1", "x" * 500):
        with pytest.raises(ConfigError, match="ECAP_SNAPSHOT_MAX_BYTES: expected a size") as exc:
            max_snapshot_bytes({"ECAP_SNAPSHOT_MAX_BYTES": bad})
        assert len(str(exc.value)) < 200


def test_load_refuses_a_big_file_by_its_size_before_reading_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ECAP_SNAPSHOT_MAX_BYTES", "1MiB")
    sparse = tmp_path / "huge.json"
    with open(sparse, "wb") as fh:
        fh.truncate(64 * 1024**3)  # 64 GiB of holes: reading it would take minutes
    with pytest.raises(SnapshotInvalid) as exc:
        load_snapshot(sparse)
    assert "68,719,476,736 bytes is more than the 1,048,576" in str(exc.value)
    assert "ECAP_SNAPSHOT_MAX_BYTES" in str(exc.value)


def test_load_bounds_a_file_of_unknown_size(monkeypatch):
    monkeypatch.setenv("ECAP_SNAPSHOT_MAX_BYTES", "64KiB")
    with pytest.raises(SnapshotInvalid, match=r"65,537 bytes is more than the 65,536"):
        load_snapshot("/dev/zero")  # reports size 0 and never ends


def test_lone_surrogate_escapes_and_odd_versions_are_refused():
    doc = {**make_doc(), "notes": ["\ud800"]}  # cannot be sealed: no UTF-8 form to hash
    text = json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=True) + "\n"
    with pytest.raises(SnapshotInvalid, match="lone surrogate"):
        parse_snapshot(text.encode(), "s.json")
    doc = make_doc()
    doc["format_version"] = True  # == 1 in Python, but not the number 1
    with pytest.raises(SnapshotInvalid, match="unknown snapshot format version True"):
        parse_snapshot(serialize(seal(doc)), "s.json")
    doc["format_version"] = ["x" * 500]
    with pytest.raises(SnapshotInvalid) as exc:
        parse_snapshot(serialize(seal(doc)), "s.json")
    assert "xxxxx" in str(exc.value) and len(str(exc.value)) < 400


# ---- the CLI readers --------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ECAP_"))}
    env["KAFKA_BOOTSTRAP_SERVERS"] = "127.0.0.1:9"  # never reached: the file is refused first
    return env


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    out = {
        "deep": tmp_path / "deep.json",
        "good": tmp_path / "good.json",
        "bad-utf8": tmp_path / "bad-utf8.json",
    }
    out["deep"].write_text(_nested(100_000))
    out["good"].write_text(REAL_TEXT)
    out["bad-utf8"].write_bytes(REAL_TEXT.encode().replace(b'"orders"', b'"ord\xffrs"', 1))
    return out


@pytest.mark.parametrize("which", ["deep", "bad-utf8"])
@pytest.mark.parametrize(
    "command",
    [
        ["snapshot-verify", "{f}"],
        ["snapshot-diff", "{good}", "{f}"],
        ["snapshot-diff", "{f}", "{good}"],
        ["restore", "{f}"],
    ],
    ids=["verify", "diff-b", "diff-a", "restore"],
)
def test_cli_readers_refuse_hostile_files_clearly(files, which, command):
    args = [a.format(f=files[which], good=files["good"]) for a in command]
    res = subprocess.run(
        [sys.executable, "-m", "ecap_ops", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr.startswith(f"error: {files[which]}: "), res.stderr
    expect = "nested more than 64 levels deep" if which == "deep" else "is not UTF-8 text"
    assert expect in res.stderr
    assert len(res.stderr) < 500


def test_cli_verify_accepts_the_good_file(files):
    res = CliRunner().invoke(main, ["snapshot-verify", str(files["good"])])
    assert res.exit_code == 0, res.output
    assert "OK:" in res.stdout
