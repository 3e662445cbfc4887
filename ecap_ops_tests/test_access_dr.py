"""Access in disaster recovery, on secured local clusters (SASL_SSL, SCRAM-SHA-512,
StandardAuthorizer, allow.everyone.if.no.acl.found=false).

The catalog's access is applied on `secure_kafka` and snapshotted; the DR drill restores the
snapshot's ACLs and quotas onto the fresh `secure_kafka_standby`, checks them and takes them
back; `restore` then brings topics, bindings, quotas and SCRAM users over, with passwords
supplied at restore time, and the SAME client permission checks as test_access_apply.py pass
on the standby. No password is in the snapshot or any output. Hostile access sections in a
snapshot are refused with clear messages and change nothing."""

import copy
import json
import secrets
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer
from kafka.errors import KafkaError

from ecap_ops.cli import main
from ecap_ops.core.snapshot import parse_snapshot, seal, serialize
from ecap_ops.core.snapshot_access import MAX_ACLS, binding_of_entry, snapshot_access
from ecap_ops.errors import SnapshotInvalid
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.access import read_access, read_acl_bindings, read_quotas
from ecap_ops.localkafka import LocalCluster
from ecap_ops_tests.helpers import run_failures
from ecap_ops_tests.secure_fixtures import (
    client_settings,
    secure_env,
    secure_kafka,  # noqa: F401 (fixture)
    secure_kafka_standby,  # noqa: F401 (fixture)
)
from ecap_ops_tests.test_access_apply import (
    PASSWORD_ENV,
    PASSWORDS,
    SECRETS,
    _can_read,
    _can_write,
    assert_no_secret,
)
from ecap_ops_tests.test_provisioning import ecap_ops, prefixed_catalog

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
NOBODY_PASSWORD = "nob-" + secrets.token_urlsafe(12)
ALL_SECRETS = (*SECRETS, NOBODY_PASSWORD)


def _no_secret(text: str, where: str) -> None:
    assert_no_secret(text, where)
    for s in ALL_SECRETS:
        assert s not in text, f"a password appears in {where}"


@pytest.fixture
def run(tmp_path: Path):
    """The CLI against a secured cluster as admin, state files under tmp_path; every output
    is checked for tracebacks and passwords."""
    state = {
        "ECAP_CHANGE_LOG": str(tmp_path / "change.log"),
        "ECAP_SNAPSHOT_DIR": str(tmp_path / "snapshots"),
        "ECAP_STATE_DIR": str(tmp_path / "state"),
    }

    def go(cluster: LocalCluster, *args: str, catalog: Path, extra: dict | None = None):
        env = secure_env(cluster, **state)
        env.update(extra or {})
        out = ecap_ops(*args, bootstrap=env["KAFKA_BOOTSTRAP_SERVERS"], catalog=catalog, env=env)
        assert "Traceback" not in out.stderr, out.stderr
        _no_secret(out.stdout + out.stderr, f"output of {args}")
        return out

    return go


def _admin_write(cluster: LocalCluster, topic: str) -> None:
    kw = cluster.client_settings("admin").client_kwargs()
    kw.pop("bootstrap_timeout_ms", None)
    producer = KafkaProducer(**kw)
    try:
        producer.send(topic, b"t1", key=b"u1").get(timeout=10)
    finally:
        producer.close(timeout=5)


def _access(cluster: LocalCluster):
    with KafkaGateway(cluster.client_settings("admin")) as gw:
        return read_access(gw)


def test_snapshot_restored_onto_a_fresh_secured_cluster_gives_the_same_permissions(
    secure_kafka: LocalCluster,  # noqa: F811
    secure_kafka_standby: LocalCluster,  # noqa: F811
    run,
    tmp_path: Path,
) -> None:
    p = "dr" + uuid.uuid4().hex[:6]
    nobody = f"nobody-{p}"
    PASSWORDS[nobody] = NOBODY_PASSWORD

    def with_nobody(d):  # a user with no binding at all
        d["users"][nobody] = {"password_env": "NOBODY_PASSWORD"}

    catalog = prefixed_catalog(tmp_path, p, with_nobody)
    src, standby = secure_kafka, secure_kafka_standby
    apply_env = {**PASSWORD_ENV, "NOBODY_PASSWORD": NOBODY_PASSWORD}
    assert run(src, "create-topics", catalog=catalog).returncode == 0
    applied = run(src, "access", "apply", catalog=catalog, extra=apply_env)
    assert applied.returncode == 0, applied.stdout + applied.stderr

    # The snapshot records bindings, users with mechanisms and iterations, and quotas; no secret.
    snap_file = tmp_path / "source.json"
    taken = run(src, "snapshot", "--file", str(snap_file), catalog=catalog)
    assert taken.returncode == 0, taken.stderr
    text = snap_file.read_text()
    _no_secret(text, str(snap_file))
    doc = json.loads(text)
    assert doc["complete"]["acls"] and doc["complete"]["scram_users"] and doc["complete"]["quotas"]
    users = {u["name"]: u for u in doc["scram_users"]}
    assert users["fraud-detector"]["mechanisms"] == [
        {"mechanism": "SCRAM-SHA-512", "iterations": 8192}
    ]
    assert all(set(u) == {"name", "mechanisms"} for u in doc["scram_users"])
    sa = snapshot_access(doc)
    assert any(
        b.principal == "User:fraud-detector" and b.resource_name == f"{p}.transactions"
        for b in sa.bindings
    )
    assert sa.quotas[(("user", "analytics"),)]["consumer_byte_rate"] == 50 * 1024 * 1024
    with KafkaGateway(src.client_settings("admin")) as gw:
        assert sa.bindings == read_acl_bindings(gw)

    standby_env = {"ECAP_SNAPSHOT_DIR": str(tmp_path / "standby-snapshots")}
    before = _access(standby)

    # The drill onto the standby restores the access, checks it, and takes it back.
    drill = run(
        standby,
        "dr-drill", str(snap_file), "--target", standby.client_settings("admin").bootstrap_servers,
        "--topic", f"{p}.transactions", "--output", "json",
        catalog=catalog, extra=standby_env,
    )  # fmt: skip
    report = json.loads(drill.stdout)
    assert drill.returncode == 0, drill.stdout + drill.stderr
    assert report["passed"] and report["access"]["checked"] and report["access"]["ok"], report
    assert report["access"]["created"] > 0 and not report["access"].get("left_behind"), report
    after_drill = _access(standby)
    assert after_drill.acls == before.acls and after_drill.quotas == before.quotas
    assert after_drill.users == before.users  # the drill never creates a user

    # The drill on the source itself validates access and changes nothing.
    same = run(src, "dr-drill", str(snap_file), "--topic", f"{p}.transactions", catalog=catalog)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "validated on the same cluster" in same.stdout, same.stdout

    # Restore: passwords supplied at restore time, one explicitly, the others by the
    # catalog's variables; web-tracker's is not supplied, so it is reported and left out.
    restore_env = {k: v for k, v in PASSWORD_ENV.items() if k not in ("WEB_TRACKER_PASSWORD",)} | {
        "DR_FRAUD_PW": PASSWORDS["fraud-detector"],
        "NOBODY_PW": NOBODY_PASSWORD,
    }
    restore_env.pop("FRAUD_DETECTOR_PASSWORD")
    flags = (
        "--allow-other-cluster",
        "--password-env", "fraud-detector=DR_FRAUD_PW",
        "--password-env", f"{nobody}=NOBODY_PW",
    )  # fmt: skip
    dry = run(
        standby, "restore", str(snap_file), *flags, catalog=catalog, extra=restore_env | standby_env
    )
    assert dry.returncode == 2, dry.stdout + dry.stderr
    assert "create SCRAM user fraud-detector: SCRAM-SHA-512, 8192 iterations" in dry.stdout
    assert "password from env DR_FRAUD_PW (--password-env)" in dry.stdout
    assert "password from env ANALYTICS_PASSWORD (catalog)" in dry.stdout
    assert "SCRAM user web-tracker (SCRAM-SHA-512)" in dry.stdout
    assert "WEB_TRACKER_PASSWORD is not set" in dry.stdout
    assert "ACL binding(s) of User:fraud-detector" in dry.stdout
    assert _access(standby).acls == before.acls  # a dry run changes nothing

    done = run(
        standby,
        "restore", str(snap_file), *flags, "--execute", "--output", "json",
        catalog=catalog, extra=restore_env | standby_env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] and result["executed"] and not result["verify_problems"]
    assert result["plan"]["users_left_out"] == ["web-tracker"]
    steps = {s["step"] for s in result["steps"]}
    assert {"upsert_user", "create_acls", "alter_quotas", "create_topic"} <= steps
    again = run(
        standby, "restore", str(snap_file), *flags, catalog=catalog, extra=restore_env | standby_env
    )
    assert again.returncode == 0, again.stdout  # converged; web-tracker is still reported
    assert "Nothing to restore" in again.stdout and "web-tracker" in again.stdout

    # The standby's access is the snapshot's.
    got = _access(standby)
    assert sa.bindings <= got.acls
    with KafkaGateway(standby.client_settings("admin")) as gw:
        quotas = read_quotas(gw)
    assert quotas[(("user", "analytics"),)] == sa.quotas[(("user", "analytics"),)]
    assert got.users["fraud-detector"] == {"SCRAM-SHA-512": 8192}
    assert "web-tracker" not in got.users  # never created with a made-up password

    # The same client checks as test_access_apply.py, on the standby.
    _admin_write(standby, f"{p}.transactions")
    assert _can_read(standby, "fraud-detector", f"{p}.transactions", "fraud-detector-" + p)
    assert _can_write(standby, "fraud-detector", f"{p}.fraud-alerts")
    assert not _can_write(standby, "fraud-detector", f"{p}.transactions")
    assert not _can_read(standby, "fraud-detector", f"{p}.user-events", "fraud-detector-" + p)
    assert _can_write(standby, "transactions-producer", f"{p}.transactions")
    assert not _can_write(standby, "analytics", f"{p}.transactions")
    assert not _can_write(standby, nobody, f"{p}.transactions")
    assert not _can_read(standby, nobody, f"{p}.transactions", nobody)
    with KafkaGateway(client_settings(standby, nobody, NOBODY_PASSWORD)) as gw:
        assert not [n for n in gw.list_topic_names() if n.startswith(p)]
    try:  # web-tracker was left out: it cannot even log in
        tracked = _can_write(standby, "web-tracker", f"{p}.user-events")
    except KafkaError:
        tracked = False
    assert not tracked

    # No password in any file ecap-ops wrote (snapshots, pre-change snapshots, change log).
    for f in tmp_path.rglob("*"):
        if f.is_file() and f.suffix != ".yaml":
            _no_secret(f.read_text(errors="replace"), str(f))


# -- hostile snapshots ------------------------------------------------------------------


def _take(run, cluster, tmp_path: Path) -> dict:
    catalog = prefixed_catalog(tmp_path, "h" + uuid.uuid4().hex[:6])
    path = tmp_path / "real.json"
    out = run(cluster, "snapshot", "--file", str(path), catalog=catalog)
    assert out.returncode == 0, out.stderr
    return json.loads(path.read_text())


def _acl(**kw) -> dict:
    entry = {
        "principal": "User:svc",
        "host": "*",
        "operation": "READ",
        "permission": "ALLOW",
        "resource_type": "TOPIC",
        "resource_name": "orders",
        "pattern_type": "LITERAL",
    }
    entry.update(kw)
    return entry


HOSTILE = [
    ("unknown_operation", lambda d: d["acls"].append(_acl(operation="FLY")), "unknown operation"),
    (
        "bad_resource_type",
        lambda d: d["acls"].append(_acl(resource_type="DATABASE")),
        "unknown resource type",
    ),
    (
        "filter_only_operation",
        lambda d: d["acls"].append(_acl(operation="ANY")),
        "unknown operation",
    ),
    (
        "password_in_user",
        lambda d: d["scram_users"].append(
            {"name": "svc", "mechanisms": [], "password": "hunter2-injected"}
        ),
        "scram_users[",
    ),
    (
        "salt_in_mechanism",
        lambda d: d["scram_users"].append(
            {
                "name": "svc",
                "mechanisms": [
                    {"mechanism": "SCRAM-SHA-512", "iterations": 8192, "salt": "hunter2-injected"}
                ],
            }
        ),
        "never holds a password",
    ),
    (
        "password_in_acl",
        lambda d: d["acls"].append({**_acl(), "password": "hunter2-injected"}),
        "never holds a password",
    ),
    (
        "huge_acl_list",
        lambda d: d.__setitem__("acls", [_acl(resource_name=f"t{i}") for i in range(MAX_ACLS + 1)]),
        f"more than the {MAX_ACLS:,}",
    ),
    (
        "negative_quota",
        lambda d: d.setdefault("quotas", []).append(
            {"entity": [{"type": "user", "name": "svc"}], "values": {"producer_byte_rate": -1}}
        ),
        "must be a number >= 0",
    ),
    (
        "iterations_out_of_range",
        lambda d: d["scram_users"].append(
            {"name": "svc", "mechanisms": [{"mechanism": "SCRAM-SHA-512", "iterations": 1}]}
        ),
        "iterations",
    ),
]


@pytest.mark.parametrize("name, edit, expected", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_access_sections_are_refused_and_change_nothing(
    secure_kafka: LocalCluster,  # noqa: F811
    secure_kafka_standby: LocalCluster,  # noqa: F811
    run,
    tmp_path: Path,
    name: str,
    edit,
    expected: str,
) -> None:
    doc = copy.deepcopy(_take(run, secure_kafka, tmp_path))
    edit(doc)
    bad = tmp_path / f"{name}.json"
    bad.write_text(serialize(seal(doc)))  # checksum recomputed: only the structure is wrong
    before = _access(secure_kafka_standby)
    catalog = prefixed_catalog(tmp_path, "hx" + uuid.uuid4().hex[:6])
    for args in (
        ("restore", str(bad), "--allow-other-cluster", "--execute"),
        ("snapshot-verify", str(bad)),
        (
            "dr-drill",
            str(bad),
            "--target",
            secure_kafka_standby.client_settings("admin").bootstrap_servers,
        ),
    ):
        out = run(secure_kafka_standby, *args, catalog=catalog)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        err = out.stdout + out.stderr
        assert "structure is invalid" in err and expected in err, err[-2000:]
        assert "hunter2-injected" not in err
        assert len(out.stderr) < 3000
    after = _access(secure_kafka_standby)
    assert after.acls == before.acls and after.quotas == before.quotas
    assert after.users == before.users


# -- pure: any access section parses into valid bindings or is refused ---------------------

ACL_VALUES = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["READ", "WRITE", "ALL", "ANY", "TOPIC", "GROUP", "LITERAL", "MATCH", "ALLOW"]),
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=3), max_size=2),
)


@st.composite
def hostile_acl(draw) -> dict:
    entry = _acl()
    for key in draw(st.lists(st.sampled_from(sorted(entry)), max_size=3, unique=True)):
        if draw(st.booleans()):
            entry[key] = draw(ACL_VALUES)
        else:
            del entry[key]
    if draw(st.booleans()):
        entry[draw(st.sampled_from(["password", "salt", "x", "stored_key", "iterations"]))] = (
            "hunter2-injected"
        )
    return entry


@SETTINGS
@given(st.lists(hostile_acl(), min_size=1, max_size=4))
def test_any_acl_section_is_valid_bindings_or_refused(entries) -> None:
    from ecap_ops_tests.test_snapshot import make_doc

    doc = make_doc(acls=entries, complete={"acls": True, "topics": True})
    try:
        snap = parse_snapshot(serialize(doc), "s.json")
    except SnapshotInvalid as exc:
        msg = str(exc)
        assert msg.startswith("s.json: ") and "structure is invalid" in msg
        assert "hunter2-injected" not in msg and len(msg) < 1500
        return
    from ecap_ops.gateway.access import _kafka_acl

    for e in snap.doc["acls"]:
        _kafka_acl(binding_of_entry(e)).validate()  # every accepted entry is a real binding


# -- the restore's password options -------------------------------------------------------


@SETTINGS
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=40,
    )
)
def test_password_options_are_checked_and_never_echo_a_password(value: str) -> None:
    runner = CliRunner()
    secret_like = "S3cr3t!" + value
    for option in (
        ["--password-env", value],
        ["--password-env", f"fraud-detector={secret_like}"],
        ["--password-file", value],
    ):
        out = runner.invoke(main, ["restore", "/nonexistent/snap.json", *option])
        assert out.exit_code == 1, (option, out.output)
        assert out.exception is None or isinstance(out.exception, SystemExit), out.exception
        assert "Traceback" not in out.output
        assert "error:" in out.output
        if option[1].startswith("fraud-detector="):
            assert secret_like not in out.output  # not a variable name: never shown
            assert "NAME of an environment variable" in out.output


def test_drill_says_access_was_not_checked_without_an_authorizer(monkeypatch) -> None:
    from ecap_ops.core.access import AccessState
    from ecap_ops.services import dr
    from ecap_ops_tests.test_snapshot import make_doc

    monkeypatch.setattr(
        "ecap_ops.gateway.access.read_access", lambda gw: AccessState(authorizer=False)
    )
    snap = parse_snapshot(serialize(make_doc(acls=[_acl()])), "s.json")
    report = dr.DrillReport("s.json", "", "", "drill.", passed=False)
    assert dr._drill_access_state(object(), snap, False, report) is None
    assert report.access["checked"] is False
    assert "no authorizer" in report.access["reason"]
    assert report.access_ok  # not a failure, but said
    assert "access not checked: the target cluster runs no authorizer" in "\n".join(
        dr._access_report_lines(report.access)
    )


def test_snapshot_diff_shows_quota_changes_and_old_snapshots_still_read() -> None:
    from ecap_ops.core.snapshot import Snapshot, diff_snapshots, render_diff
    from ecap_ops_tests.test_snapshot import make_doc

    def q(rate):
        return [
            {"entity": [{"type": "user", "name": "svc"}], "values": {"producer_byte_rate": rate}}
        ]

    a = Snapshot(make_doc(quotas=q(1024.0)), "a")
    b = Snapshot(make_doc(quotas=q(2048.0)), "b")
    d = diff_snapshots(a, b)
    assert d.quota_changes == [
        {"entity": "user=svc", "key": "producer_byte_rate", "old": 1024.0, "new": 2048.0}
    ]
    assert "quota user=svc: producer_byte_rate 1024 -> 2048" in render_diff(d)
    assert diff_snapshots(a, a).empty
    # A snapshot from before quotas were recorded still reads, and restores no quota.
    old = parse_snapshot(serialize(make_doc()), "old.json")
    assert "quotas" not in old.doc and not snapshot_access(old.doc).quotas_recorded
    assert diff_snapshots(old, b).quota_changes == []


def test_dagster_dr_restore_takes_passwords_by_variable_name(
    secure_kafka: LocalCluster,  # noqa: F811
    secure_kafka_standby: LocalCluster,  # noqa: F811
    run,
    tmp_path: Path,
    monkeypatch,
) -> None:

    from ecap_ops.orchestration.dr import dr_restore
    from ecap_ops.orchestration.resources import KafkaResource

    p = "dg" + uuid.uuid4().hex[:6]
    catalog = prefixed_catalog(tmp_path, p)
    assert run(secure_kafka, "create-topics", catalog=catalog).returncode == 0
    assert run(secure_kafka, "access", "apply", catalog=catalog, extra=PASSWORD_ENV).returncode == 0
    snap_file = tmp_path / "s.json"
    assert run(secure_kafka, "snapshot", "--file", str(snap_file), catalog=catalog).returncode == 0
    for k, v in secure_env(secure_kafka_standby).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("ECAP_CATALOG", str(catalog))
    monkeypatch.setenv("ECAP_SNAPSHOT_DIR", str(tmp_path / "snaps"))
    monkeypatch.setenv("DAG_FRAUD_PW", PASSWORDS["fraud-detector"])
    for name in PASSWORD_ENV:
        monkeypatch.delenv(name, raising=False)

    def config(**kw):
        base = {"snapshot_path": str(snap_file), "allow_other_cluster": True}
        return {"ops": {"restore_from_snapshot": {"config": {**base, **kw}}}}

    result = dr_restore.execute_in_process(
        run_config=config(password_env={"fraud-detector": "DAG_FRAUD_PW"}),
        resources={"kafka": KafkaResource()},
    )
    assert result.success, run_failures(result)
    out = result.output_for_node("restore_from_snapshot")
    assert out["executed"] is False  # dry run by default
    users = {u["name"]: u for u in out["plan"]["users"]}
    if "fraud-detector" in users:  # absent only when an earlier test already restored it
        assert users["fraud-detector"]["password_source"] == "env DAG_FRAUD_PW"
        assert users["fraud-detector"]["origin"] == "password_env"
    _no_secret(json.dumps(out, default=str), "the restore job's output")
    for event in result.all_events:
        _no_secret(str(event.message) + str(event.event_specific_data), "a Dagster event")

    # A variable that is not set (or a user the snapshot lacks) refuses the run.
    for bad in ({"fraud-detector": "NOT_SET_ANYWHERE"}, {"ghost-" + p: "DAG_FRAUD_PW"}):
        failed = dr_restore.execute_in_process(
            run_config=config(password_env=bad, dry_run=False),
            resources={"kafka": KafkaResource()},
            raise_on_error=False,
        )
        assert not failed.success
        text = "\n".join(f"{e.message} {e.event_specific_data}" for e in failed.all_events)
        assert "NOT_SET_ANYWHERE is not set" in text or "no SCRAM user of that name" in text
        _no_secret(text, "a failed restore run")
