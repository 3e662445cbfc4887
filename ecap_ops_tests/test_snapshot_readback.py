"""Reading back a snapshot just written: the text the writer made vouches for the file's
layout only when the bytes on disk are exactly that text; any other file, or the same file
changed after writing, is verified in full. Pure, no broker."""

import json

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ecap_ops.core.integrity import SIGNING_KEY_ENV
from ecap_ops.core.snapshot import parse_snapshot, serialize, sign_snapshot
from ecap_ops.errors import SnapshotInvalid
from ecap_ops.services.dr import load_snapshot, write_atomically
from ecap_ops.services.snapshot_files import write_snapshot_document
from ecap_ops_tests.test_snapshot import make_doc


def test_the_text_just_written_reads_back_as_the_same_snapshot(tmp_path):
    doc = make_doc()
    text = serialize(doc)
    path = tmp_path / "s.json"
    write_atomically(path, text)
    assert load_snapshot(path, written=text).doc == load_snapshot(path).doc == doc


@pytest.mark.parametrize(
    "relayout",
    [
        lambda d: json.dumps(d, sort_keys=True, indent=2, ensure_ascii=False) + "\n",
        lambda d: json.dumps(d, sort_keys=True, ensure_ascii=False),
        lambda d: serialize(d).rstrip("\n"),
        lambda d: serialize(d) + "\n",
    ],
)
def test_a_file_relaid_out_after_writing_is_refused_even_with_the_written_text(tmp_path, relayout):
    """The content (and so its checksum) is unchanged; only the layout moved. The writer's
    text does not vouch for other bytes."""
    doc = make_doc()
    text = serialize(doc)
    path = tmp_path / "s.json"
    write_atomically(path, relayout(doc))
    for written in (text, None):
        with pytest.raises(SnapshotInvalid, match="layout was changed"):
            load_snapshot(path, written=written)


@hsettings(max_examples=100, deadline=None)
@given(at=st.integers(min_value=0), byte=st.integers(min_value=0, max_value=255))
def test_a_byte_changed_after_writing_is_refused_with_or_without_the_written_text(at, byte):
    doc = make_doc()
    text = serialize(doc)
    data = bytearray(text.encode("utf-8"))
    at %= len(data)
    if data[at] == byte:
        return
    data[at] = byte
    outcomes = []
    for written in (text, None):
        try:
            parse_snapshot(bytes(data), "s.json", written=written)
            outcomes.append("accepted")
        except SnapshotInvalid as exc:
            outcomes.append(str(exc).split(":")[1][:30])
    # The written text changes nothing about changed bytes: refused, for the same reason.
    assert outcomes[0] == outcomes[1] and outcomes[0] != "accepted", outcomes


def test_signatures_are_checked_on_read_back_when_a_key_is_set(tmp_path, monkeypatch):
    key = "k" * 32
    monkeypatch.setenv(SIGNING_KEY_ENV, key)
    path = write_snapshot_document(make_doc(), tmp_path, keep=3)  # signs and reads back
    assert load_snapshot(path).doc["signature"]["value"]
    unsigned = tmp_path / "unsigned.json"
    text = serialize(make_doc())
    write_atomically(unsigned, text)
    with pytest.raises(SnapshotInvalid, match="has no signature"):
        load_snapshot(unsigned, written=text)
    other = serialize(sign_snapshot(make_doc(), b"another key, 32 bytes long......"))
    write_atomically(unsigned, other)
    with pytest.raises(SnapshotInvalid, match="does not verify"):
        load_snapshot(unsigned, written=other)
    # Without a key, a signature cannot be judged and is not: the file verifies.
    monkeypatch.delenv(SIGNING_KEY_ENV)
    assert load_snapshot(unsigned, written=other).doc["signature"]
