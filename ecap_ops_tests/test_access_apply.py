"""Access as code on a secured local cluster (SASL_SSL, SCRAM-SHA-512, StandardAuthorizer,
allow.everyone.if.no.acl.found=false): after `access apply`, a kafka-python client logged in
as the fraud detector reads `transactions` and writes `fraud-alerts` and is denied writing
`transactions`; a user without bindings is denied everything; drift made with Kafka's own
`kafka-acls` is reported by `access plan` (exit 2) and converges on the next apply; bad
input changes nothing; and no password appears in any output, log, plan or snapshot."""

import json
import secrets
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.access import read_acl_bindings
from ecap_ops.localkafka import LocalCluster
from ecap_ops_tests.secure_fixtures import (
    SECURE_ADMIN_PASSWORD,
    client_settings,
    secure_env,
    secure_kafka,  # noqa: F401 (fixture)
)
from ecap_ops_tests.test_provisioning import ecap_ops, prefixed_catalog

USERS = ("transactions-producer", "web-tracker", "product-catalog", "fraud-detector", "analytics")
PASSWORDS = {u: f"{u[:3]}-" + secrets.token_urlsafe(12) for u in USERS}
PASSWORD_ENV = {u.upper().replace("-", "_") + "_PASSWORD": p for u, p in PASSWORDS.items()}
SECRETS = (SECURE_ADMIN_PASSWORD, *PASSWORDS.values())


def assert_no_secret(text: str, where: str) -> None:
    for s in SECRETS:
        assert s not in text, f"a password appears in {where}"


@pytest.fixture
def run(secure_kafka: LocalCluster, tmp_path: Path):  # noqa: F811
    """The CLI against the secured cluster as admin, with its state files under tmp_path;
    every output is checked for passwords."""
    state = {
        "ECAP_CHANGE_LOG": str(tmp_path / "change.log"),
        "ECAP_SNAPSHOT_DIR": str(tmp_path / "snapshots"),
        "ECAP_STATE_DIR": str(tmp_path / "state"),
    }

    def go(*args: str, catalog: Path, extra: dict | None = None, passwords: bool = True):
        env = secure_env(secure_kafka, **state, **(PASSWORD_ENV if passwords else {}))
        env.update(extra or {})
        out = ecap_ops(*args, bootstrap=env["KAFKA_BOOTSTRAP_SERVERS"], catalog=catalog, env=env)
        assert "Traceback" not in out.stderr, out.stderr
        assert_no_secret(out.stdout + out.stderr, f"output of {args}")
        return out

    return go


def _producer(cluster: LocalCluster, user: str) -> KafkaProducer:
    kw = client_settings(cluster, user, PASSWORDS[user]).client_kwargs()
    kw.pop("bootstrap_timeout_ms", None)
    return KafkaProducer(**kw, acks="all", max_block_ms=8000, retries=0)


def _can_write(cluster: LocalCluster, user: str, topic: str) -> bool:
    producer = _producer(cluster, user)
    try:
        producer.send(topic, b"v", key=b"k").get(timeout=10)
        return True
    except KafkaError:
        return False
    finally:
        producer.close(timeout=5)


def _can_read(cluster: LocalCluster, user: str, topic: str, group: str) -> bool:
    kw = client_settings(cluster, user, PASSWORDS[user]).client_kwargs()
    kw.pop("bootstrap_timeout_ms", None)
    consumer = KafkaConsumer(
        topic, **kw, group_id=group, auto_offset_reset="earliest", consumer_timeout_ms=8000
    )
    try:
        for _ in consumer:
            return True
        return False
    except KafkaError:
        return False
    finally:
        consumer.close()


def test_applied_access_gives_each_service_exactly_its_rights(
    secure_kafka: LocalCluster,  # noqa: F811
    run,
    tmp_path: Path,
) -> None:
    p = "acl" + uuid.uuid4().hex[:6]
    catalog = prefixed_catalog(tmp_path, p)
    assert run("create-topics", catalog=catalog).returncode == 0

    planned = run("access", "plan", catalog=catalog)
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "User:fraud-detector" in planned.stdout
    as_json = run("access", "plan", "--output", "json", catalog=catalog)
    doc = json.loads(as_json.stdout)
    assert doc["summary"]["access"] > 0 and doc["authorizer"] is True

    applied = run("access", "apply", catalog=catalog)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = run("access", "plan", catalog=catalog)
    assert again.returncode == 0, again.stdout

    # The admin writes a transaction so the fraud detector has one to read.
    admin = KafkaProducer(
        **{
            k: v
            for k, v in secure_kafka.client_settings("admin").client_kwargs().items()
            if k != "bootstrap_timeout_ms"
        }
    )
    admin.send(f"{p}.transactions", b"t1", key=b"u1").get(timeout=10)
    admin.close()

    assert _can_read(secure_kafka, "fraud-detector", f"{p}.transactions", "fraud-detector-" + p)
    assert _can_write(secure_kafka, "fraud-detector", f"{p}.fraud-alerts")
    assert not _can_write(secure_kafka, "fraud-detector", f"{p}.transactions")
    assert not _can_read(secure_kafka, "fraud-detector", f"{p}.user-events", "fraud-detector-" + p)
    # Its group prefix is its own: another group name is denied.
    assert not _can_read(secure_kafka, "fraud-detector", f"{p}.transactions", "someone-else")
    assert _can_write(secure_kafka, "transactions-producer", f"{p}.transactions")
    assert not _can_write(secure_kafka, "analytics", f"{p}.transactions")

    # Drift made with Kafka's own tool: plan reports it (exit 2), apply converges.
    removed = run(
        "kafka-cli", "kafka-acls", "--remove", "--force",
        "--allow-principal", "User:fraud-detector", "--operation", "Read",
        "--topic", f"{p}.transactions",
        catalog=catalog,
    )  # fmt: skip
    assert removed.returncode == 0, removed.stderr
    drift = run("access", "plan", catalog=catalog)
    assert drift.returncode == 2
    whole = run("plan", catalog=catalog)  # the catalog's plan shows access drift too
    assert whole.returncode == 2 and "User:fraud-detector" in whole.stdout, whole.stdout
    assert f"read on topic {p}.transactions" in drift.stdout
    assert run("access", "apply", catalog=catalog).returncode == 0
    assert run("access", "plan", catalog=catalog).returncode == 0
    assert run("plan", catalog=catalog).returncode == 0

    # A binding nobody declared is reported as unmanaged and left alone.
    added = run(
        "kafka-cli", "kafka-acls", "--add", "--allow-principal", "User:stranger",
        "--operation", "Describe", "--topic", f"{p}.transactions",
        catalog=catalog,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    left = run("access", "plan", catalog=catalog)
    assert left.returncode == 0 and "User:stranger" in left.stdout
    assert run("access", "apply", catalog=catalog).returncode == 0
    with KafkaGateway(secure_kafka.client_settings("admin")) as gw:
        assert any(b.principal == "User:stranger" for b in read_acl_bindings(gw) or ())

    # No password in any file ecap-ops wrote.
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert_no_secret(f.read_text(errors="replace"), str(f))
    assert (tmp_path / "change.log").is_file()


def test_a_user_without_bindings_is_denied_everything(
    secure_kafka: LocalCluster,  # noqa: F811
    run,
    tmp_path: Path,
) -> None:
    p = "nob" + uuid.uuid4().hex[:6]

    def with_nobody(d):
        d["users"]["nobody"] = {"password_env": "NOBODY_PASSWORD"}

    catalog = prefixed_catalog(tmp_path, p, with_nobody)
    assert run("create-topics", catalog=catalog).returncode == 0
    pw = "nob-" + secrets.token_urlsafe(12)
    PASSWORDS["nobody"] = pw
    applied = run("access", "apply", catalog=catalog, extra={"NOBODY_PASSWORD": pw})
    assert applied.returncode == 0, applied.stdout
    assert pw not in applied.stdout + applied.stderr
    assert not _can_write(secure_kafka, "nobody", f"{p}.transactions")
    assert not _can_read(secure_kafka, "nobody", f"{p}.transactions", "nobody")
    with KafkaGateway(client_settings(secure_kafka, "nobody", pw)) as gw:
        assert not [n for n in gw.list_topic_names() if n.startswith(p)]


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            lambda d: d["users"]["analytics"].update(password="in-the-catalog-123"),
            "users.analytics.password",
        ),
        (
            lambda d: d["principals"]["analytics"]["reads"].append("ghost"),
            "principals.analytics.reads[2]",
        ),
        (lambda d: d["quotas"][0].update(producer_byte_rate=-1), "quotas[0].producer_byte_rate"),
        (
            lambda d: d.update(
                acls=[
                    {"principal": "User:a", "resource": "topic", "name": "x", "operations": ["fly"]}
                ]
            ),
            "acls[0].operations[0]",
        ),
    ],
)
def test_bad_access_input_changes_nothing(
    secure_kafka: LocalCluster,  # noqa: F811
    run,
    tmp_path: Path,
    edit,
    expected: str,
) -> None:
    with KafkaGateway(secure_kafka.client_settings("admin")) as gw:
        before = read_acl_bindings(gw)
    catalog = prefixed_catalog(tmp_path, "bad" + uuid.uuid4().hex[:6], edit)
    out = run("access", "apply", catalog=catalog)
    assert out.returncode == 1
    assert expected in out.stderr, out.stderr
    assert "in-the-catalog-123" not in out.stderr
    with KafkaGateway(secure_kafka.client_settings("admin")) as gw:
        assert read_acl_bindings(gw) == before


def test_a_missing_password_refuses_the_whole_apply(
    secure_kafka: LocalCluster,  # noqa: F811
    run,
    tmp_path: Path,
) -> None:
    p = "nopw" + uuid.uuid4().hex[:6]

    def new_user(d):
        d["users"]["late-" + p] = {"password_env": "LATE_USER_PASSWORD"}
        d["principals"]["late-" + p] = {"writes": ["fraud-alerts"]}

    catalog = prefixed_catalog(tmp_path, p, new_user)
    assert run("create-topics", catalog=catalog).returncode == 0
    with KafkaGateway(secure_kafka.client_settings("admin")) as gw:
        before = read_acl_bindings(gw)
    out = run("access", "apply", catalog=catalog)
    assert out.returncode == 1
    assert "LATE_USER_PASSWORD is not set" in out.stderr
    with KafkaGateway(secure_kafka.client_settings("admin")) as gw:
        assert read_acl_bindings(gw) == before
