"""`ecap-ops broker start --secure`: SASL_SSL with SCRAM-SHA-512 over TLS, the
StandardAuthorizer denying whatever no ACL allows, a super user for ecap-ops, and the
exports a user pastes (which never contain the password)."""

import os
import re
import stat
from pathlib import Path

from kafka.admin import ScramMechanism, UserScramCredentialUpsertion

from ecap_ops.gateway import KafkaGateway
from ecap_ops.localkafka import LocalCluster
from ecap_ops.settings import KafkaSettings
from ecap_ops_tests.secure_fixtures import client_settings
from ecap_ops_tests.test_provisioning import ecap_ops


def _exports(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        m = re.fullmatch(r"export (\w+)=(.*)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def test_broker_start_secure_prints_exports_and_denies_what_no_acl_allows(
    kafka_lib: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "secure"
    started = ecap_ops(
        "broker", "start", "--secure", "--port", "0", "--data-dir", str(data_dir),
        bootstrap="127.0.0.1:1", timeout=240,
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        assert "Traceback" not in started.stderr
        exports = _exports(started.stdout)
        assert exports["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert exports["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert exports["KAFKA_SASL_USERNAME"] == "admin"
        m = re.fullmatch(r'"\$\(cat (.+)\)"', exports["KAFKA_SASL_PASSWORD"])
        assert m, "the password is read from a file by the shell, never printed"
        password_file = Path(m.group(1))
        password = password_file.read_text()
        assert len(password) >= 16
        assert stat.S_IMODE(os.stat(password_file).st_mode) == 0o600
        assert password not in started.stdout + started.stderr
        props = (data_dir / "node-1" / "server.properties").read_text()
        assert (
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in props
        )
        assert "allow.everyone.if.no.acl.found=false" in props
        assert "super.users=User:admin;" in props

        # The exports work as they are: the admin lists topics and the ACLs.
        env = {k: v for k, v in exports.items() if k != "KAFKA_SASL_PASSWORD"}
        env["KAFKA_SASL_PASSWORD"] = password
        listed = ecap_ops("list-topics", bootstrap=exports["KAFKA_BOOTSTRAP_SERVERS"], env=env)
        assert listed.returncode == 0, listed.stderr
        acls = ecap_ops(
            "kafka-cli",
            "kafka-acls",
            "--list",
            bootstrap=exports["KAFKA_BOOTSTRAP_SERVERS"],
            env=env,
        )
        assert acls.returncode == 0, acls.stderr
        assert password not in listed.stdout + listed.stderr + acls.stdout + acls.stderr

        # A user that authenticates but has no binding is denied everything.
        cluster = LocalCluster.load(data_dir)
        admin = cluster.client_settings("admin")
        with KafkaGateway(admin) as gw:
            gw.call(
                "adding a user",
                lambda a: a.alter_user_scram_credentials(
                    [
                        UserScramCredentialUpsertion(
                            "nobody", ScramMechanism.SCRAM_SHA_512, "nobody-pw-123"
                        )
                    ]
                ),
            )
            gw.create_topics(
                {"secured": {"num_partitions": 1, "replication_factor": 1, "configs": {}}}
            )
        nobody: KafkaSettings = client_settings(cluster, "nobody", "nobody-pw-123")
        with KafkaGateway(nobody) as gw:
            assert "secured" not in gw.list_topic_names()  # not even visible
            out = gw.create_topics(
                {"x-denied": {"num_partitions": 1, "replication_factor": 1, "configs": {}}}
            )
            assert out["x-denied"] and "Authorization" in out["x-denied"], out
    finally:
        ecap_ops("broker", "stop", "--data-dir", str(data_dir), bootstrap="127.0.0.1:1")
