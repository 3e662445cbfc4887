"""The snapshot document: checksum, verification of bad files, diff, atomic writes and keep-N. Pure, no broker."""

import os

import pytest

from ecap_ops.core.snapshot import (
    Snapshot,
    build_snapshot,
    canonical_json,
    diff_snapshots,
    group_entry,
    parse_snapshot,
    render_diff,
    seal,
    serialize,
    topic_entry,
)
from ecap_ops.errors import SnapshotInvalid
from ecap_ops.services.dr import (
    SNAPSHOT_FILE,
    latest_snapshot,
    list_snapshots,
    load_snapshot,
    prune,
    snapshot_dir,
    snapshot_keep,
    write_atomically,
)


def make_doc(topics=None, groups=None, cluster="c1", **kw) -> dict:
    topics = (
        topics
        if topics is not None
        else [topic_entry("orders", 3, 1, [[1], [1], [1]], {"retention.ms": "86400000"}, "id-1")]
    )
    groups = (
        groups
        if groups is not None
        else [
            group_entry(
                "g1",
                "Empty",
                "consumer",
                0,
                [{"topic": "orders", "partition": 0, "offset": 5, "end_offset": 9}],
                1000,
            )
        ]
    )
    args = dict(
        tool_version="0.1.0",
        cluster_id=cluster,
        broker_count=1,
        taken_at="2025-01-01T00:00:00.000Z",
        taken_at_ms=1735689600000,
        duration_ms=12,
        catalog_env="dev",
        catalog_digest="abc",
        topics=topics,
        groups=groups,
        acls=[],
        scram_users=[
            {"name": "admin", "mechanisms": [{"mechanism": "SCRAM-SHA-512", "iterations": 4096}]}
        ],
        complete={
            "topics": True,
            "topic_configs": True,
            "groups": True,
            "group_offsets": True,
            "acls": False,
            "scram_users": True,
        },
        notes=["ACLs not available: no authorizer"],
    )
    args.update(kw)
    return build_snapshot(**args)


def test_sealed_snapshot_round_trips_and_checksum_covers_canonical_json():
    doc = make_doc()
    text = serialize(doc)
    snap = parse_snapshot(text.encode(), "s.json")
    assert snap.cluster_id == "c1" and snap.topics["orders"]["partitions"] == 3
    body = {k: v for k, v in doc.items() if k != "checksum"}
    import hashlib

    assert doc["checksum"] == {
        "algorithm": "sha256",
        "value": hashlib.sha256(canonical_json(body)).hexdigest(),
    }
    assert doc["format_version"] == 1 and doc["tool_version"] == "0.1.0"
    # Secrets never: a SCRAM user is a name and mechanisms only.
    assert set(doc["scram_users"][0]) == {"name", "mechanisms"}


def _flip(text: str, index: int) -> bytes:
    b = bytearray(text.encode())
    b[index] = ord("X") if b[index] != ord("X") else ord("Y")
    return bytes(b)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda t: _flip(t, t.index('"orders"') + 2), "checksum mismatch"),  # a byte inside a value
        (lambda t: _flip(t, t.index('"retention.ms": "') + 18), "checksum mismatch"),
        (
            lambda t: t.replace("\n ", "\n\t", 1).encode(),
            "bytes differ from what ecap-ops wrote",
        ),  # whitespace only
        (lambda t: t.encode()[: len(t) // 2], "truncated"),
        (lambda t: t.encode()[:-3], "truncated"),
        (lambda t: b"this is not json at all", "not JSON"),
        (lambda t: b"\xff\xfe\x00garbage", "not UTF-8"),
        (lambda t: b"", "empty"),
        (lambda t: b'{"hello": "world"}', "not an ecap-ops snapshot"),
        (lambda t: b"[1, 2, 3]", "not an ecap-ops snapshot"),
    ],
    ids=[
        "byte-in-name",
        "byte-in-config",
        "whitespace",
        "half",
        "last-bytes",
        "not-json",
        "binary",
        "empty",
        "other-json",
        "json-list",
    ],
)
def test_bad_snapshot_files_are_refused_with_a_clear_message(mutate, expected):
    text = serialize(make_doc())
    with pytest.raises(SnapshotInvalid) as exc:
        parse_snapshot(mutate(text), "/snaps/s.json")
    assert expected in str(exc.value)
    assert "/snaps/s.json" in str(exc.value)


def test_unknown_format_version_is_refused_even_with_a_valid_checksum():
    doc = make_doc()
    doc["format_version"] = 7
    text = serialize(seal(doc))
    with pytest.raises(
        SnapshotInvalid, match=r"unknown snapshot format version 7 .*reads format version\(s\) 1"
    ):
        parse_snapshot(text, "s.json")


def test_structural_errors_are_named_by_path():
    doc = make_doc()
    doc["topics"][0]["partitions"] = "three"
    del doc["groups"][0]["offsets"][0]["offset"]
    with pytest.raises(SnapshotInvalid) as exc:
        parse_snapshot(serialize(seal(doc)), "s.json")
    assert "topics[0].partitions: expected int, got str" in str(exc.value)
    assert "groups[0].offsets[0].offset: missing" in str(exc.value)


def _t(name, parts=3, rf=1, overrides=None):
    return topic_entry(
        name,
        parts,
        rf,
        [[1]] * parts,
        {"retention.ms": "1000"} if overrides is None else overrides,
        f"id-{name}",
    )


@pytest.mark.parametrize(
    "a_topics, b_topics, a_off, b_off, expect",
    [
        ([_t("x")], [_t("x")], 5, 5, {}),
        ([_t("x")], [_t("x"), _t("y")], 5, 5, {"topics_added": 1}),
        ([_t("x"), _t("y")], [_t("x")], 5, 5, {"topics_removed": 1}),
        ([_t("x")], [_t("x", parts=6)], 5, 5, {"partition_changes": 1}),
        ([_t("x")], [_t("x", rf=3)], 5, 5, {"replication_changes": 1}),
        ([_t("x")], [_t("x", overrides={"retention.ms": "2000"})], 5, 5, {"config_changes": 1}),
        ([_t("x")], [_t("x", overrides={})], 5, 5, {"config_changes": 1}),
        (
            [_t("x", overrides={"cleanup.policy": "delete,compact"})],
            [_t("x", overrides={"cleanup.policy": "compact,delete"})],
            5,
            5,
            {},
        ),
        ([_t("x")], [_t("x")], 5, 7, {"offset_changes": 1}),
    ],
    ids=[
        "same",
        "added",
        "removed",
        "partitions",
        "replication",
        "config",
        "override-removed",
        "policy-order",
        "offset",
    ],
)
def test_diff(a_topics, b_topics, a_off, b_off, expect):
    def g(off):
        return [
            group_entry(
                "g",
                "Empty",
                "consumer",
                0,
                [{"topic": "x", "partition": 0, "offset": off, "end_offset": 10}],
                1,
            )
        ]

    a = Snapshot(make_doc(a_topics, g(a_off)), "a")
    b = Snapshot(make_doc(b_topics, g(b_off), taken_at="2025-01-02T00:00:00.000Z"), "b")
    d = diff_snapshots(a, b)
    nonzero = {k: v for k, v in d.counts().items() if v}
    assert nonzero == expect
    assert d.empty == (not expect)
    assert ("No differences." in render_diff(d)) == (not expect)


def test_diff_ignores_topic_ids_and_times():
    a = Snapshot(make_doc([topic_entry("x", 1, 1, [[1]], {}, "id-old")]), "a")
    b = Snapshot(
        make_doc(
            [topic_entry("x", 1, 1, [[1]], {}, "id-new")],
            taken_at="2030-01-01T00:00:00.000Z",
            duration_ms=99,
        ),
        "b",
    )
    assert diff_snapshots(a, b).empty


def test_atomic_write_keep_n_and_latest(tmp_path):
    d = tmp_path / "snaps"
    names = [f"snapshot-c1-2025010{i}T000000000Z.json" for i in range(1, 6)]
    for n in names:
        assert SNAPSHOT_FILE.match(n)
        write_atomically(d / n, serialize(make_doc()))
    (d / "notes.txt").write_text("not a snapshot")
    assert [p.name for p in list_snapshots(d)] == names
    assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]
    removed = prune(d, keep=2)
    assert [p.name for p in removed] == names[:3]
    assert [p.name for p in list_snapshots(d)] == names[3:]
    assert (d / "notes.txt").exists()
    assert latest_snapshot(d).name == names[-1]
    assert load_snapshot(latest_snapshot(d)).cluster_id == "c1"


def test_snapshot_dir_and_keep_from_env(tmp_path):
    assert snapshot_dir({"ECAP_SNAPSHOT_DIR": str(tmp_path)}) == tmp_path
    assert snapshot_dir({"DAGSTER_HOME": "/dh"}) == __import__("pathlib").Path("/dh/snapshots")
    assert snapshot_keep({}) == 48
    assert snapshot_keep({"ECAP_SNAPSHOT_KEEP": "3"}) == 3
    with pytest.raises(Exception, match="ECAP_SNAPSHOT_KEEP: expected a whole number"):
        snapshot_keep({"ECAP_SNAPSHOT_KEEP": "lots"})


def test_missing_snapshot_file_and_empty_directory(tmp_path):
    with pytest.raises(SnapshotInvalid, match="no such snapshot file"):
        load_snapshot(tmp_path / "nope.json")
    with pytest.raises(SnapshotInvalid, match="no snapshot in"):
        latest_snapshot(tmp_path)


def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    target = tmp_path / "s.json"
    write_atomically(target, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_atomically(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]
