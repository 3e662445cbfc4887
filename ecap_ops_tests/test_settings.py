"""Connection settings: read from the environment, validated with clear messages, and the
password never shown."""

import os
from contextlib import contextmanager
from dataclasses import replace
from unittest import mock

import pytest
from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ecap_ops.errors import ConfigError
from ecap_ops.settings import (
    CLI_CLIENT_ID,
    DAGSTER_CLIENT_ID,
    ENV_VARS,
    MAX_TIMEOUT_MS,
    KafkaSettings,
)
from ecap_ops_tests.helpers import run_failures


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


# -- one settings object: the CLI and the Dagster resource -------------------------------


# What a hostile or careless deployment can put in each variable.
_junk = st.text(max_size=150)
_values = {
    "KAFKA_BOOTSTRAP_SERVERS": st.one_of(
        st.sampled_from(["a:1", "a:1,b:2", "broker.example:9092", "h:0", "nohost", "h:²"]), _junk
    ),
    "KAFKA_SECURITY_PROTOCOL": st.one_of(
        st.sampled_from(["PLAINTEXT", "SSL", "sasl_plaintext", "SASL_SSL", "TLS"]), _junk
    ),
    "KAFKA_SASL_MECHANISM": st.one_of(
        st.sampled_from(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI"]), _junk
    ),
    "KAFKA_SASL_USERNAME": st.one_of(st.sampled_from(["ops", ""]), _junk),
    "KAFKA_SASL_PASSWORD": st.one_of(st.sampled_from(["pw-1", ""]), _junk),
    "KAFKA_SSL_CAFILE": st.one_of(st.sampled_from([__file__, "/nonexistent/ca.pem", ""]), _junk),
    "ECAP_KAFKA_CONNECT_TIMEOUT_MS": st.one_of(
        st.integers(-5, MAX_TIMEOUT_MS + 5).map(str), st.sampled_from(["", "soon", " 7 "]), _junk
    ),
    "ECAP_KAFKA_REQUEST_TIMEOUT_MS": st.one_of(
        st.integers(-5, MAX_TIMEOUT_MS + 5).map(str), st.sampled_from(["", "9e3"]), _junk
    ),
}
environments = st.fixed_dictionaries({}, optional=_values).map(
    lambda env: {k: v.replace("\x00", "") for k, v in env.items()}  # the OS refuses NUL
)
# Flags the CLI has, given the same way as the resource's fields.
flag_values = st.fixed_dictionaries(
    {},
    optional={
        "bootstrap_servers": st.sampled_from(["x:9", "y:10,z:11", "bad"]),
        "security_protocol": st.sampled_from(["PLAINTEXT", "SSL", "SASL_SSL"]),
        "sasl_mechanism": st.sampled_from(["PLAIN", "SCRAM-SHA-512"]),
        "sasl_username": st.sampled_from(["flag-user"]),
        "ssl_cafile": st.sampled_from([__file__]),
    },
)


@contextmanager
def environment(env: dict[str, str]):
    """The process environment with exactly `env` for the connection variables."""
    cleared = {name: "" for name in ENV_VARS.values()}
    with mock.patch.dict(os.environ, {**cleared, **env}):
        for name in ENV_VARS.values():
            if name not in env:
                del os.environ[name]
        yield


def _outcome(build):
    try:
        return build()
    except ConfigError as exc:
        return ("refused", str(exc))


@hsettings(max_examples=200, deadline=None)
@given(env=environments, flags=flag_values)
# Found by this test in a `make test` run: a refused timeout quoted in the message held the
# password's text.
@example(
    env={
        "KAFKA_BOOTSTRAP_SERVERS": "a:1",
        "ECAP_KAFKA_REQUEST_TIMEOUT_MS": "00000000000:",
        "KAFKA_SASL_PASSWORD": "00000000000:",
    },
    flags={},
)
@example(
    env={"KAFKA_BOOTSTRAP_SERVERS": "a:1", "KAFKA_SASL_PASSWORD": "PLAINTEXTsecret"},
    flags={"security_protocol": "PLAINTEXTsecret"},
)
def test_the_cli_and_the_dagster_resource_build_the_same_settings(env, flags):
    """Same environment, same flags/fields: the same settings (timeouts included), or the
    same refusal. The only difference is the client id the brokers see."""
    from ecap_ops.cli.app import CliContext
    from ecap_ops.orchestration.resources import KafkaResource, kafka_resource_from_env

    with environment(env):
        cli = _outcome(lambda: CliContext(overrides=dict(flags)).settings())
        resource = _outcome(lambda: KafkaResource(**flags).settings())
        deployed = _outcome(lambda: kafka_resource_from_env().settings()) if not flags else None
    if isinstance(cli, tuple):
        assert resource == cli
        text = cli[1]
        assert "Traceback" not in text
        # A message shows at most a short prefix of what it refuses.
        for value in env.values():
            if len(value) > 80:
                assert value not in text
        if len(env.get("KAFKA_SASL_PASSWORD", "")) >= 12:
            assert env["KAFKA_SASL_PASSWORD"] not in text
        return
    assert cli.client_id == CLI_CLIENT_ID and resource.client_id == DAGSTER_CLIENT_ID
    assert replace(resource, client_id=CLI_CLIENT_ID) == cli
    if deployed is not None:
        assert replace(deployed, client_id=CLI_CLIENT_ID) == cli
    for key in ("connect_timeout_ms", "request_timeout_ms"):
        raw = env.get(ENV_VARS[key])
        assert getattr(cli, key) == (int(raw) if raw else KafkaSettings().__dict__[key])


def test_a_resource_without_timeouts_takes_them_from_the_variables():
    from ecap_ops.orchestration.resources import KafkaResource

    env = {"ECAP_KAFKA_CONNECT_TIMEOUT_MS": "1500", "ECAP_KAFKA_REQUEST_TIMEOUT_MS": "2500"}
    with environment(env):
        s = KafkaResource(bootstrap_servers="k:9092").settings()
        assert (s.connect_timeout_ms, s.request_timeout_ms) == (1500, 2500)
        assert s.client_kwargs()["bootstrap_timeout_ms"] == 1500
        # A field set on the resource wins over its variable, as a CLI flag does.
        s = KafkaResource(connect_timeout_ms=700).settings()
        assert (s.connect_timeout_ms, s.request_timeout_ms) == (700, 2500)
        assert s.bootstrap_servers == "localhost:9092"
    with environment({"ECAP_KAFKA_REQUEST_TIMEOUT_MS": "soon"}):
        with pytest.raises(ConfigError, match="ECAP_KAFKA_REQUEST_TIMEOUT_MS: expected a whole"):
            KafkaResource().settings()
    with environment({}):
        s = KafkaResource().settings()
        assert (s.connect_timeout_ms, s.request_timeout_ms) == (6000, 8000)


def test_in_a_dagster_run_the_resource_waits_as_long_as_the_cli(tmp_path):
    """The deployment's resource (EnvVars resolved when the run starts) and the CLI, in the
    same environment, use the same timeouts; the password is in no event of the run."""
    import dagster as dg

    from ecap_ops.cli.app import CliContext
    from ecap_ops.orchestration.resources import KafkaResource, kafka_resource_from_env

    password = "run-secret-8f3a"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "broker-a:9092,broker-b:9092",
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "ops",
        "KAFKA_SASL_PASSWORD": password,
        "ECAP_KAFKA_CONNECT_TIMEOUT_MS": "2345",
        "ECAP_KAFKA_REQUEST_TIMEOUT_MS": "3456",
    }

    @dg.asset
    def connection(context: dg.AssetExecutionContext, kafka: KafkaResource) -> dict:
        s = kafka.settings()
        context.add_output_metadata(
            {"connect_timeout_ms": s.connect_timeout_ms, "request_timeout_ms": s.request_timeout_ms}
        )
        return {k: v for k, v in s.__dict__.items() if k != "sasl_password"} | {
            "has_password": s.sasl_password == password
        }

    with environment(env), dg.DagsterInstance.ephemeral() as instance:
        cli = CliContext().settings()
        result = dg.materialize(
            [connection], resources={"kafka": kafka_resource_from_env()}, instance=instance
        )
        assert result.success, run_failures(result)
        seen = result.output_for_node("connection")
        events = instance.all_logs(result.run_id)
        run = instance.get_run_by_id(result.run_id)
    assert seen.pop("has_password") is True
    assert seen == {k: v for k, v in cli.__dict__.items() if k != "sasl_password"} | {
        "client_id": DAGSTER_CLIENT_ID
    }
    assert (seen["connect_timeout_ms"], seen["request_timeout_ms"]) == (2345, 3456)
    text = "\n".join(dg.serialize_value(e) for e in events) + dg.serialize_value(run)
    assert password not in text


@hsettings(max_examples=150, deadline=None)
@given(raw=st.text(max_size=200))
def test_any_timeout_variable_is_taken_or_refused_by_name(raw):
    raw = raw.replace("\x00", "")
    try:
        s = KafkaSettings.from_env({"ECAP_KAFKA_CONNECT_TIMEOUT_MS": raw})
    except ConfigError as exc:
        assert "ECAP_KAFKA_CONNECT_TIMEOUT_MS" in str(exc) or "connect_timeout_ms" in str(exc)
        assert len(str(exc)) < 400
        return
    value = int(raw) if raw else 6000
    assert s.connect_timeout_ms == value and 0 < value <= MAX_TIMEOUT_MS


@hsettings(max_examples=150, deadline=None)
@given(servers=st.text(max_size=300))
def test_any_bootstrap_text_is_taken_or_refused_clearly(servers):
    try:
        s = KafkaSettings(bootstrap_servers=servers)
        s.validate()
    except ConfigError as exc:
        text = str(exc)
        assert text.startswith("Kafka connection settings are invalid: bootstrap servers")
        assert len(text) < 400
        return
    assert s.servers and all(":" in x for x in s.servers)


def test_timeouts_longer_than_the_bound_are_refused():
    with pytest.raises(ConfigError, match="connect_timeout_ms: 600,001 ms is longer"):
        KafkaSettings.from_env({"ECAP_KAFKA_CONNECT_TIMEOUT_MS": str(MAX_TIMEOUT_MS + 1)})
