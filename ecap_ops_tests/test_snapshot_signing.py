"""Signed snapshots: with ECAP_SIGNING_KEY set, a snapshot carries an HMAC-SHA256 signature
and readers refuse files without a valid one. A SHA-256 checksum anyone can recompute
guards against corruption only: an edited and re-checksummed file passes without a key and
is refused with it. The key never appears in a file or a message."""

import json
import os
import secrets
import subprocess
import sys

import pytest
from click.testing import CliRunner

from ecap_ops.catalog import load_catalog
from ecap_ops.cli import main
from ecap_ops.core.snapshot import parse_snapshot, seal, serialize, sign_snapshot, topic_entry
from ecap_ops.errors import ConfigError, SnapshotInvalid
from ecap_ops.gateway import KafkaGateway
from ecap_ops.services import dr
from ecap_ops_tests.test_snapshot import make_doc

KEY = secrets.token_hex(32).encode()
OTHER_KEY = secrets.token_hex(32).encode()


def _edited(doc: dict) -> dict:
    """What someone who edits a snapshot and recomputes its checksum produces."""
    edited = json.loads(json.dumps(doc))
    edited["topics"].append(topic_entry("injected", 1, 1, [[1]], {"retention.ms": "1"}))
    return seal(edited)


def _refused(text: str, key: bytes | None, words: str) -> str:
    with pytest.raises(SnapshotInvalid) as exc:
        parse_snapshot(text, "s.json", signing_key=key)
    msg = str(exc.value)
    assert words in msg, msg
    for k in (KEY, OTHER_KEY):
        assert k.decode() not in msg
    return msg


def test_a_signed_snapshot_verifies_with_its_key_and_is_deterministic():
    signed = sign_snapshot(make_doc(), KEY)
    text = serialize(signed)
    assert signed["signature"]["algorithm"] == "hmac-sha256"
    assert KEY.decode() not in text
    assert serialize(sign_snapshot(make_doc(), KEY)) == text  # same document, same bytes
    assert parse_snapshot(text, "s.json", signing_key=KEY).cluster_id == "c1"
    assert parse_snapshot(text, "s.json").cluster_id == "c1"  # readable without the key
    # Signing leaves the checksum as it was: unsigned readers see the same document.
    assert signed["checksum"] == make_doc()["checksum"]


def test_an_edited_and_rechecksummed_snapshot_passes_without_a_key_and_not_with_it():
    original = sign_snapshot(make_doc(), KEY)
    resealed = _edited(original)  # re-sealing drops the signature
    assert "injected" in parse_snapshot(serialize(resealed), "s.json").topics
    _refused(serialize(resealed), KEY, "has no signature")
    # Keeping the old signature does not help: it no longer matches.
    forged = {**resealed, "signature": original["signature"]}
    assert parse_snapshot(serialize(forged), "s.json").checksum  # the checksum verifies
    _refused(serialize(forged), KEY, "the signature does not verify")


def test_unsigned_wrongly_signed_and_malformed_signatures_are_refused():
    _refused(serialize(make_doc()), KEY, "has no signature, and ECAP_SIGNING_KEY is set")
    _refused(serialize(sign_snapshot(make_doc(), OTHER_KEY)), KEY, "does not verify")
    bad = {**make_doc(), "signature": "trust me"}
    _refused(serialize(bad), KEY, "the signature field is malformed")
    bad = {**make_doc(), "signature": {"algorithm": "md5", "value": "00"}}
    _refused(serialize(bad), KEY, "the signature field is malformed")


# ---- against the broker ------------------------------------------------------------------


@pytest.mark.kafka
def test_take_snapshot_signs_and_load_snapshot_checks_under_the_key(
    kafka_settings, tmp_path, monkeypatch
):
    catalog = load_catalog(env="dev")
    monkeypatch.setenv("ECAP_SIGNING_KEY", KEY.decode())
    with KafkaGateway(kafka_settings) as gw:
        result = dr.take_snapshot(gw, catalog, output=tmp_path / "s.json")
    raw = (tmp_path / "s.json").read_text()
    assert json.loads(raw)["signature"]["algorithm"] == "hmac-sha256"
    assert KEY.decode() not in raw
    assert dr.load_snapshot(result.path).checksum == result.snapshot.checksum

    (tmp_path / "edited.json").write_text(serialize(_edited(result.snapshot.doc)))
    with pytest.raises(SnapshotInvalid, match="has no signature"):
        dr.load_snapshot(tmp_path / "edited.json")
    monkeypatch.setenv("ECAP_SIGNING_KEY", OTHER_KEY.decode())
    with pytest.raises(SnapshotInvalid, match="does not verify") as exc:
        dr.load_snapshot(result.path)
    assert OTHER_KEY.decode() not in str(exc.value) and KEY.decode() not in str(exc.value)
    monkeypatch.delenv("ECAP_SIGNING_KEY")
    assert "injected" in dr.load_snapshot(tmp_path / "edited.json").topics


@pytest.mark.kafka
def test_a_too_short_key_is_refused_before_the_cluster_is_read(kafka_settings, monkeypatch):
    monkeypatch.setenv("ECAP_SIGNING_KEY", "short-k3y")
    with KafkaGateway(kafka_settings) as gw:
        before = dict(gw.requests)
        with pytest.raises(ConfigError, match="ECAP_SIGNING_KEY: too short") as exc:
            dr.take_snapshot(gw, load_catalog(env="dev"), output="/nonexistent/s.json")
        assert dict(gw.requests) == before
    assert "short-k3y" not in str(exc.value)


@pytest.mark.kafka
def test_cli_snapshot_and_verify_with_and_without_the_key(kafka_bootstrap, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ECAP_"))}
    env["KAFKA_BOOTSTRAP_SERVERS"] = kafka_bootstrap

    def run(*args, key: bytes | None):
        e = dict(env)
        if key is not None:
            e["ECAP_SIGNING_KEY"] = key.decode()
        return subprocess.run(
            [sys.executable, "-m", "ecap_ops", *args],
            capture_output=True,
            text=True,
            env=e,
            timeout=120,
        )

    path = tmp_path / "cli.json"
    taken = run("snapshot", "--file", str(path), key=KEY)
    assert taken.returncode == 0, taken.stderr
    runs = {
        "own key": run("snapshot-verify", str(path), key=KEY),
        "no key": run("snapshot-verify", str(path), key=None),
        "other key": run("snapshot-verify", str(path), key=OTHER_KEY),
    }
    assert runs["own key"].returncode == 0 and runs["no key"].returncode == 0
    wrong = runs["other key"]
    assert wrong.returncode == 1 and "the signature does not verify" in wrong.stderr
    for r in (taken, *runs.values()):
        assert "Traceback" not in r.stderr
        for k in (KEY, OTHER_KEY):
            assert k.decode() not in r.stdout + r.stderr
    assert KEY.decode() not in path.read_text()
    # Verified in-process too, through the same command.
    res = CliRunner().invoke(main, ["snapshot-verify", str(path)], env={"ECAP_SIGNING_KEY": None})
    assert res.exit_code == 0, res.output
