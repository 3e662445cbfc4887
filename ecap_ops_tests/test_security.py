"""ecap-ops against a secured Kafka: one node whose client listener is SASL_SSL with
SCRAM-SHA-512 users (TLS from a CA made here). The CLI, Kafka's own tools through
`kafka-cli`, and the Dagster resource all work with the settings from the environment;
wrong credentials, a missing CA and a plaintext client fail fast and clearly; and the
password never shows up in any output, event, metadata or file other than the private ones."""

import json
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecap_ops.errors import KafkaAuthFailed, LocalKafkaError
from ecap_ops.gateway import KafkaGateway
from ecap_ops.localkafka import LocalCluster
from ecap_ops.localkafka.security import SecureListener
from ecap_ops.settings import KafkaSettings
from ecap_ops_tests.bounds import assert_bounded, wait_limit_s
from ecap_ops_tests.helpers import kafka_tool, run_failures
from ecap_ops_tests.test_provisioning import CATALOG_NAMES, ecap_ops, prefixed_catalog

# Random per run, so "does not appear anywhere" cannot pass by luck.
ADMIN_PASSWORD = "adm-" + secrets.token_urlsafe(12)
OPS_PASSWORD = "ops-" + secrets.token_urlsafe(12)
WRONG_PASSWORD = "wrong-" + secrets.token_urlsafe(12)
SECRETS = (ADMIN_PASSWORD, OPS_PASSWORD, WRONG_PASSWORD)
# Waits for the fail-fast tests: short enough that an ignored setting (kafka-python's own
# 30 s) shows, long enough for a TLS handshake and a SCRAM exchange on two loaded cores
# (3-4 s was not, with a whole suite running beside the broker).
TLS_CONNECT_MS = 8000
TLS_REQUEST_MS = 5000
TLS_WAITS_ENV = {
    "ECAP_KAFKA_CONNECT_TIMEOUT_MS": str(TLS_CONNECT_MS),
    "ECAP_KAFKA_REQUEST_TIMEOUT_MS": str(TLS_REQUEST_MS),
}


@pytest.fixture(scope="module")
def secure_cluster(
    kafka_lib: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """One node: client listener SASL_SSL/SCRAM-SHA-512 (users admin and ops), controller PLAINTEXT."""
    security = SecureListener(users={"admin": ADMIN_PASSWORD, "ops": OPS_PASSWORD}, tls=True)
    cluster = LocalCluster(
        tmp_path_factory.mktemp("kafka-secure"), nodes=1, port=0, security=security
    )
    try:
        cluster.start(timeout=180)
        yield cluster
    finally:
        cluster.stop(timeout=30)


def secure_env(cluster: LocalCluster, password: str = OPS_PASSWORD, **extra: str) -> dict[str, str]:
    """The environment a deployment sets for the secured cluster, as user `ops`."""
    settings = cluster.client_settings("ops")
    env = {
        "KAFKA_SECURITY_PROTOCOL": settings.security_protocol,
        "KAFKA_SASL_MECHANISM": settings.sasl_mechanism or "",
        "KAFKA_SASL_USERNAME": "ops",
        "KAFKA_SASL_PASSWORD": password,
        "KAFKA_SSL_CAFILE": settings.ssl_cafile or "",
    }
    env.update(extra)
    return env


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a password appears in {where}"


def test_the_node_listens_with_sasl_ssl_and_keeps_secrets_in_private_files(
    secure_cluster: LocalCluster,
) -> None:
    node_dir = secure_cluster.node_dir(1)
    props = dict(
        line.split("=", 1)
        for line in (node_dir / "server.properties").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert props["listener.security.protocol.map"] == "CLIENT:SASL_SSL,CONTROLLER:PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["ssl.keystore.type"] == "PEM" and props["ssl.truststore.type"] == "PEM"
    sec = secure_cluster.data_dir / "security"
    assert stat.S_IMODE(sec.stat().st_mode) == 0o700
    for private in (node_dir / "server.properties", sec / "listener.json", sec / "server.pem"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    # The state file, the node's output and logs never hold a password; nor does a repr.
    for public in (
        secure_cluster.state_path,
        node_dir / "kafka.out",
        node_dir / "logs" / "server.log",
    ):
        assert_no_secret(public.read_text(errors="replace"), str(public))
    assert_no_secret(
        repr(secure_cluster.security) + repr(secure_cluster.client_settings()), "a repr"
    )

    # A cluster loaded from its data dir connects with the recorded listener.
    loaded = LocalCluster.load(secure_cluster.data_dir)
    assert loaded.security == secure_cluster.security
    info = loaded.describe()
    assert info is not None and info["cluster_id"] == secure_cluster.cluster_id
    # The CA made here is what the broker presents: TLS with the system CAs fails.
    with pytest.raises(KafkaAuthFailed, match="TLS handshake"):
        with KafkaGateway(
            secure_cluster.client_settings(
                "ops", ssl_cafile=None, connect_timeout_ms=TLS_CONNECT_MS
            )
        ) as gw:
            gw.describe_cluster()


def test_cli_provisions_lists_and_describes_on_the_secured_cluster(
    secure_cluster: LocalCluster, tmp_path: Path, unique_name: str
) -> None:
    bootstrap = secure_cluster.bootstrap_servers
    cat_path = prefixed_catalog(tmp_path, unique_name)
    env = secure_env(secure_cluster)

    plan = ecap_ops("plan", bootstrap=bootstrap, catalog=cat_path, env=env)
    assert plan.returncode == 2, plan.stdout + plan.stderr  # 2: changes to make
    assert "5 to create" in plan.stdout
    created = ecap_ops("create-topics", bootstrap=bootstrap, catalog=cat_path, env=env)
    assert created.returncode == 0, created.stderr
    listed = ecap_ops(
        "list-topics", "--output", "json", bootstrap=bootstrap, catalog=cat_path, env=env
    )
    assert listed.returncode == 0, listed.stderr
    managed = {t["name"] for t in json.loads(listed.stdout)["topics"] if t["managed"]}
    assert managed == {f"{unique_name}.{n}" for n in CATALOG_NAMES}
    described = ecap_ops(
        "describe-topic",
        f"{unique_name}.transactions",
        "-o",
        "json",
        bootstrap=bootstrap,
        catalog=cat_path,
        env=env,
    )
    assert described.returncode == 0, described.stderr
    d = json.loads(described.stdout)
    assert len(d["partitions"]) == 6 and all(p["leader"] is not None for p in d["partitions"])
    again = ecap_ops("plan", bootstrap=bootstrap, catalog=cat_path, env=env)
    assert again.returncode == 0, again.stdout + again.stderr

    # Kafka's own tool, as admin, sees what the CLI made as ops.
    seen = kafka_tool(secure_cluster.client_settings(), "kafka-topics", "--list")
    assert seen.returncode == 0, seen.stderr
    assert {f"{unique_name}.{n}" for n in CATALOG_NAMES} <= set(seen.stdout.split())
    for out in (plan, created, listed, described, again):
        assert_no_secret(out.stdout + out.stderr, "CLI output")


def test_kafka_cli_gets_the_security_settings_through_a_private_file_it_removes(
    secure_cluster: LocalCluster, tmp_path: Path, unique_name: str
) -> None:
    from kafka.admin import NewTopic

    with KafkaGateway(secure_cluster.client_settings("ops")) as gw:
        gw.call("creating a topic", lambda a: a.create_topics([NewTopic(unique_name, 1, 1)]))
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = secure_env(secure_cluster, TMPDIR=str(private_tmp))

    listed = ecap_ops(
        "kafka-cli", "kafka-topics", "--list", bootstrap=secure_cluster.bootstrap_servers, env=env
    )
    assert listed.returncode == 0, listed.stderr
    assert unique_name in listed.stdout.split()
    assert list(private_tmp.iterdir()) == []  # the --command-config file is gone

    refused = ecap_ops(
        "kafka-cli",
        "kafka-topics",
        "--list",
        bootstrap=secure_cluster.bootstrap_servers,
        env=secure_env(secure_cluster, WRONG_PASSWORD, TMPDIR=str(private_tmp)),
        timeout=60,
    )
    assert refused.returncode != 0
    assert "Authentication failed" in refused.stdout + refused.stderr
    assert list(private_tmp.iterdir()) == []
    for out in (listed, refused):
        assert_no_secret(out.stdout + out.stderr, "kafka-cli output")


BAD_CLIENTS = {
    # label: (environment over the good one, words the message must have)
    "wrong password": (
        {"KAFKA_SASL_PASSWORD": WRONG_PASSWORD},
        ("authentication", "KAFKA_SASL_PASSWORD"),
    ),
    "unknown user": ({"KAFKA_SASL_USERNAME": "nobody"}, ("authentication", "KAFKA_SASL_USERNAME")),
    "no CA file": ({"KAFKA_SSL_CAFILE": ""}, ("TLS handshake", "KAFKA_SSL_CAFILE")),
    "plaintext client": (
        {
            "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
            "KAFKA_SASL_MECHANISM": "",
            "KAFKA_SASL_USERNAME": "",
            "KAFKA_SASL_PASSWORD": "",
            "KAFKA_SSL_CAFILE": "",
        },
        ("TLS", "KAFKA_SECURITY_PROTOCOL"),
    ),
    "SASL without TLS": (
        {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SSL_CAFILE": ""},
        ("TLS", "KAFKA_SECURITY_PROTOCOL"),
    ),
}


def test_bad_credentials_tls_or_protocol_fail_within_the_configured_waits_clearly_and_without_the_password(
    secure_cluster: LocalCluster, cli_startup_s: float
) -> None:
    def attempt(item: tuple[str, tuple[dict[str, str], tuple[str, ...]]]):
        label, (override, _) = item
        started = time.monotonic()
        out = ecap_ops(
            "list-topics",
            bootstrap=secure_cluster.bootstrap_servers,
            env={**secure_env(secure_cluster, **override), **TLS_WAITS_ENV},
            timeout=60,
        )
        return label, out, time.monotonic() - started

    # One at a time: each is timed (see ecap_ops_tests/bounds.py).
    results = [attempt(item) for item in BAD_CLIENTS.items()]
    limit = wait_limit_s(TLS_CONNECT_MS, TLS_REQUEST_MS, startup_s=cli_startup_s)
    for label, out, seconds in results:
        words = BAD_CLIENTS[label][1]
        assert out.returncode == 1, (label, out.returncode, out.stdout, out.stderr)
        assert_bounded(seconds, limit, label, cli_startup_s)
        assert "Traceback" not in out.stderr, (label, out.stderr)
        assert "Is the cluster up?" not in out.stderr, (label, out.stderr)  # not a generic timeout
        for word in words:
            assert word.lower() in out.stderr.lower(), (label, word, out.stderr)
        assert_no_secret(out.stdout + out.stderr, f"the output for {label}")


def test_a_plaintext_client_in_process_gets_a_bounded_clear_error(
    secure_cluster: LocalCluster,
) -> None:
    settings = KafkaSettings(
        bootstrap_servers=secure_cluster.bootstrap_servers,
        connect_timeout_ms=TLS_CONNECT_MS,
        request_timeout_ms=TLS_REQUEST_MS,
    )
    started = time.monotonic()
    with pytest.raises(KafkaAuthFailed, match="KAFKA_SECURITY_PROTOCOL") as caught:
        with KafkaGateway(settings) as gw:
            gw.describe_cluster()
    limit = wait_limit_s(settings.connect_timeout_ms, settings.request_timeout_ms)
    assert_bounded(time.monotonic() - started, limit, "a plaintext client")
    assert "expects TLS" in str(caught.value)


def _run_text(instance, run_id: str) -> str:
    """Everything Dagster recorded about a run: its config and every event, serialized."""
    import dagster as dg

    run = instance.get_run_by_id(run_id)
    parts = [json.dumps(run.run_config, default=str), dg.serialize_value(run)]
    for entry in instance.all_logs(run_id):
        parts.append(dg.serialize_value(entry))
    return "\n".join(parts)


def test_dagster_resource_with_an_env_var_password_materializes_without_leaking_it(
    secure_cluster: LocalCluster, tmp_path: Path, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    from ecap_ops.catalog import load_catalog
    from ecap_ops.orchestration.resources import KafkaResource
    from ecap_ops.orchestration.topics import build_topic_asset

    catalog = load_catalog(prefixed_catalog(tmp_path, unique_name))
    spec = catalog.get(f"{unique_name}.transactions")
    asset = build_topic_asset(catalog, spec)
    settings = secure_cluster.client_settings("ops")

    def resource() -> KafkaResource:
        return KafkaResource(
            bootstrap_servers=secure_cluster.bootstrap_servers,
            security_protocol=settings.security_protocol,
            sasl_mechanism=settings.sasl_mechanism,
            sasl_username="ops",
            sasl_password=dg.EnvVar("KAFKA_SASL_PASSWORD"),
            ssl_cafile=settings.ssl_cafile,
            connect_timeout_ms=TLS_CONNECT_MS,
            request_timeout_ms=TLS_REQUEST_MS,
        )

    with dg.DagsterInstance.ephemeral() as instance:
        monkeypatch.setenv("KAFKA_SASL_PASSWORD", OPS_PASSWORD)
        result = dg.materialize([asset], resources={"kafka": resource()}, instance=instance)
        assert result.success, run_failures(result)
        materialization = result.asset_materializations_for_node(asset.op.name)[0]
        assert materialization.metadata["partitions"].value == spec.partitions
        text = _run_text(instance, result.run_id)
        assert f"create_topic {spec.name}: created" in text  # the scan sees the step's own logs
        assert_no_secret(text, "the run's events, metadata or config")

        monkeypatch.setenv("KAFKA_SASL_PASSWORD", WRONG_PASSWORD)
        started = time.monotonic()
        failed = dg.materialize(
            [asset], resources={"kafka": resource()}, instance=instance, raise_on_error=False
        )
        assert not failed.success
        # A run in process: connect and request waits, and Dagster's own run bookkeeping.
        limit = wait_limit_s(TLS_CONNECT_MS, TLS_REQUEST_MS) + 5
        assert_bounded(time.monotonic() - started, limit, "the failed materialization")
        text = _run_text(instance, failed.run_id)
        assert "authentication" in text.lower()
        assert_no_secret(text, "the failed run's events")

    described = kafka_tool(settings, "kafka-topics", "--describe", "--topic", spec.name)
    assert described.returncode == 0, described.stderr
    assert f"PartitionCount: {spec.partitions}" in described.stdout


def test_a_restart_keeps_users_and_certificates_and_other_users_are_refused(
    secure_cluster: LocalCluster,
) -> None:
    ca = secure_cluster.data_dir / "security" / "ca.pem"
    ca_before = ca.read_bytes()
    with KafkaGateway(secure_cluster.client_settings("ops")) as gw:
        topics_before = set(gw.list_topic_names())
    assert secure_cluster.stop(timeout=30)

    other = LocalCluster(
        secure_cluster.data_dir,
        nodes=1,
        port=0,
        security=SecureListener(users={"admin": "another-one"}),
    )
    with pytest.raises(LocalKafkaError, match="formatted with other SCRAM users"):
        other.start(timeout=60)
    assert not secure_cluster.is_running()

    assert secure_cluster.start(timeout=180)
    assert ca.read_bytes() == ca_before
    with KafkaGateway(secure_cluster.client_settings("ops")) as gw:
        assert set(gw.list_topic_names()) == topics_before
