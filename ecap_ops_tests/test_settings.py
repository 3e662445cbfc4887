"""Connection settings: read from the environment, validated with clear messages, and the
password never shown."""

import pytest

from ecap_ops.errors import ConfigError
from ecap_ops.settings import KafkaSettings


def test_defaults_and_environment():
    s = KafkaSettings.from_env({})
    assert s.bootstrap_servers == "localhost:9092" and s.security_protocol == "PLAINTEXT"
    s = KafkaSettings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "a:1,b:2",
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "ops",
            "KAFKA_SASL_PASSWORD": "s3cret-pw",
        }
    )
    assert s.servers == ["a:1", "b:2"]
    kw = s.client_kwargs()
    assert kw["sasl_mechanism"] == "SCRAM-SHA-512" and kw["sasl_plain_password"] == "s3cret-pw"
    assert kw["bootstrap_timeout_ms"] == s.connect_timeout_ms  # never kafka-python's 30 s default


def test_flags_override_the_environment():
    s = KafkaSettings.from_env(
        {"KAFKA_BOOTSTRAP_SERVERS": "a:1"}, bootstrap_servers="b:2", security_protocol=None
    )
    assert s.bootstrap_servers == "b:2"


def test_password_is_never_in_repr_or_redacted_text():
    s = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="u",
        sasl_password="hunter2-xyz",
    )
    assert "hunter2-xyz" not in repr(s)
    assert s.redact("auth failed for u:hunter2-xyz") == "auth failed for u:***"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"bootstrap_servers": "nohostport"}, "'nohostport' is not host:port"),
        ({"bootstrap_servers": "h:99999"}, "is not host:port"),
        ({"bootstrap_servers": " , "}, "bootstrap servers: empty"),
        ({"security_protocol": "TLS"}, "security protocol: 'TLS' is not one of"),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "GSSAPI",
                "sasl_username": "u",
                "sasl_password": "p",
            },
            "SASL mechanism: 'GSSAPI'",
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_password": "p"},
            "SASL username: required",
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
            "set KAFKA_SASL_PASSWORD",
        ),
        ({"ssl_cafile": "/nonexistent/ca.pem"}, "'/nonexistent/ca.pem' does not exist"),
        ({"request_timeout_ms": 0}, "request_timeout_ms: must be > 0"),
    ],
)
def test_invalid_settings_say_what_is_wrong(kwargs, message):
    with pytest.raises(ConfigError) as info:
        KafkaSettings(**kwargs).validate()
    assert message in str(info.value)


def test_bad_timeout_variable_is_named():
    with pytest.raises(ConfigError, match="ECAP_KAFKA_REQUEST_TIMEOUT_MS: expected a whole number"):
        KafkaSettings.from_env({"ECAP_KAFKA_REQUEST_TIMEOUT_MS": "soon"})


def test_java_tools_get_the_same_security_settings():
    s = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="ops",
        sasl_password="pw",
        ssl_cafile=__file__,
    )
    props = s.java_client_properties()
    assert props["security.protocol"] == "SASL_SSL" and props["sasl.mechanism"] == "SCRAM-SHA-256"
    assert 'ScramLoginModule required username="ops" password="pw";' in props["sasl.jaas.config"]
    assert props["ssl.truststore.type"] == "PEM"


def test_dagster_resource_takes_the_password_from_the_environment(monkeypatch):
    import dagster as dg

    from ecap_ops.orchestration.resources import kafka_resource_from_env

    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "from-env-only")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:9092")
    res = kafka_resource_from_env()
    assert (
        isinstance(res.sasl_password, dg.EnvVar)
        and res.sasl_password.env_var_name == "KAFKA_SASL_PASSWORD"
    )
    monkeypatch.delenv("KAFKA_SASL_PASSWORD")
    assert kafka_resource_from_env().sasl_password is None
