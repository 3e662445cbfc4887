"""Secured local clusters for the access tests: SASL_SSL with SCRAM-SHA-512 over TLS (a CA
made for the cluster), Kafka's StandardAuthorizer with allow.everyone.if.no.acl.found=false
and a super user `admin` for ecap-ops, exactly what `ecap-ops broker start --secure` runs.

Import the fixtures into a test module (`from ecap_ops_tests.secure_fixtures import
secure_kafka, ...`). Passwords are random per run, so a test that greps for them cannot pass
by luck."""

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecap_ops.localkafka import LocalCluster
from ecap_ops.localkafka.security import SecureListener
from ecap_ops.settings import KafkaSettings

SECURE_ADMIN_PASSWORD = "adm-" + secrets.token_urlsafe(12)


def start_secure_cluster(
    data_dir: Path, admin_password: str = SECURE_ADMIN_PASSWORD
) -> LocalCluster:
    """One secured node in `data_dir` (any free port), started and answering."""
    cluster = LocalCluster(
        data_dir,
        nodes=1,
        port=0,
        security=SecureListener(users={"admin": admin_password}, tls=True, authorizer=True),
    )
    cluster.start(timeout=180)
    return cluster


def client_settings(cluster: LocalCluster, user: str, password: str) -> KafkaSettings:
    """Connection settings of `cluster` as SCRAM user `user` (any user, not only the ones
    the cluster was formatted with)."""
    admin = cluster.client_settings("admin")
    return KafkaSettings(
        bootstrap_servers=admin.bootstrap_servers,
        security_protocol=admin.security_protocol,
        sasl_mechanism=admin.sasl_mechanism,
        sasl_username=user,
        sasl_password=password,
        ssl_cafile=admin.ssl_cafile,
    )


def secure_env(cluster: LocalCluster, **extra: str) -> dict[str, str]:
    """The environment a user exports for the secured cluster, as `admin`."""
    s = cluster.client_settings("admin")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": s.bootstrap_servers,
        "KAFKA_SECURITY_PROTOCOL": s.security_protocol,
        "KAFKA_SASL_MECHANISM": s.sasl_mechanism or "",
        "KAFKA_SASL_USERNAME": "admin",
        "KAFKA_SASL_PASSWORD": s.sasl_password or "",
        "KAFKA_SSL_CAFILE": s.ssl_cafile or "",
    }
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def secure_kafka(
    kafka_lib: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """A secured one-node cluster for the session, stopped after the last test using it."""
    from ecap_ops_tests.conftest import _ON_DEMAND

    cluster = start_secure_cluster(tmp_path_factory.mktemp("kafka-secure-acl"))
    _ON_DEMAND["secure_kafka"] = cluster
    try:
        yield cluster
    finally:
        cluster.stop(timeout=30)


@pytest.fixture(scope="session")
def secure_kafka_standby(
    kafka_lib: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """A second, fresh secured cluster (a restore target), stopped after the last test
    using it."""
    from ecap_ops_tests.conftest import _ON_DEMAND

    cluster = start_secure_cluster(tmp_path_factory.mktemp("kafka-secure-standby"))
    _ON_DEMAND["secure_kafka_standby"] = cluster
    try:
        yield cluster
    finally:
        cluster.stop(timeout=30)
