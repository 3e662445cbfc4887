"""The one table that turns kafka-python's errors into ours: every error class kafka-python
defines maps to one of our errors, with a message naming what was being done, raised
`from` the original; the password never survives in either; the CLI still prints only our
message."""

import importlib
import os
import ssl
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from kafka import errors as kerr

from ecap_ops.errors import (
    ConfigError,
    EcapOpsError,
    KafkaAuthFailed,
    KafkaRequestFailed,
    KafkaUnavailable,
)
from ecap_ops.gateway.errors import ERROR_TABLE, OURS, broker_error, rule_for, translate
from ecap_ops.settings import KafkaSettings
from ecap_ops_tests.helpers import free_port

SETTINGS = KafkaSettings(bootstrap_servers="broker-1:9092,broker-2:9092")


def every_kafka_error() -> list[type[BaseException]]:
    """KafkaError and all its subclasses, those of the error module and those kafka-python's
    clients define in their own modules."""
    for module in ("kafka", "kafka.admin", "kafka.producer", "kafka.consumer"):
        importlib.import_module(module)
    found: dict[type, None] = {}
    todo = [kerr.KafkaError]
    while todo:
        cls = todo.pop()
        if cls not in found:
            found[cls] = None
            todo.extend(cls.__subclasses__())
    defined = {
        c for c in vars(kerr).values() if isinstance(c, type) and issubclass(c, kerr.KafkaError)
    }
    assert defined <= set(found)
    return sorted(found, key=lambda c: (c.__module__, c.__qualname__))


KAFKA_ERRORS = every_kafka_error()


def instance(cls: type[BaseException], *args: str) -> BaseException:
    try:
        return cls(*args)
    except TypeError:  # a class that wants other arguments
        return cls()


def raised(exc: BaseException, doing: str, settings: KafkaSettings = SETTINGS) -> EcapOpsError:
    with pytest.raises(EcapOpsError) as info:
        with translate(settings, doing):
            raise exc
    return info.value


def test_kafka_python_defines_many_errors():
    # A guard against the walk finding nothing (an import that moved, say).
    assert len(KAFKA_ERRORS) > 120
    assert kerr.TopicAuthorizationFailedError in KAFKA_ERRORS


@pytest.mark.parametrize("cls", KAFKA_ERRORS, ids=lambda c: c.__qualname__)
def test_every_kafka_python_error_maps_to_one_of_ours(cls):
    rule = rule_for(cls)
    assert rule is not None and rule in ERROR_TABLE
    assert rule.ours in OURS
    original = instance(cls, "the broker said no")
    ours = raised(original, "reading partition offsets of orders")
    assert type(ours) is rule.ours
    assert str(ours).startswith("reading partition offsets of orders: ")
    assert ours.__cause__ is original  # the original is kept for debugging
    # The message names the cluster (or the client's own settings) and what went wrong.
    text = str(ours)
    assert "broker-1:9092" in text or type(ours) is ConfigError
    assert cls.__name__ in text


@pytest.mark.parametrize(
    "cls, ours",
    [
        (kerr.SaslAuthenticationFailedError, KafkaAuthFailed),
        (kerr.UnsupportedSaslMechanismError, KafkaAuthFailed),
        (kerr.TopicAuthorizationFailedError, KafkaAuthFailed),
        (kerr.ClusterAuthorizationFailedError, KafkaAuthFailed),
        (kerr.GroupAuthorizationFailedError, KafkaAuthFailed),
        (kerr.KafkaTimeoutError, KafkaUnavailable),
        (kerr.KafkaConnectionError, KafkaUnavailable),
        (kerr.NodeNotReadyError, KafkaUnavailable),
        (kerr.RequestTimedOutError, KafkaUnavailable),
        (kerr.KafkaConfigurationError, ConfigError),
        (kerr.UnknownTopicOrPartitionError, KafkaRequestFailed),
        (kerr.TopicAlreadyExistsError, KafkaRequestFailed),
        (kerr.PolicyViolationError, KafkaRequestFailed),
        (kerr.NotControllerError, KafkaRequestFailed),
        (kerr.UnknownError, KafkaRequestFailed),
    ],
)
def test_the_table_says_what_each_kind_of_error_is(cls, ours):
    error = raised(instance(cls), "describing topics")
    assert type(error) is ours


def test_what_to_do_is_in_the_message():
    assert "KAFKA_SASL_PASSWORD" in str(
        raised(kerr.SaslAuthenticationFailedError("bad login"), "connecting to Kafka")
    )
    assert "ACLs" in str(raised(kerr.TopicAuthorizationFailedError(), "deleting topics"))
    unavailable = str(raised(kerr.KafkaTimeoutError(), "connecting to Kafka"))
    assert "within 6 s" in unavailable and "ecap-ops broker status" in unavailable
    assert "within 8 s" in str(raised(kerr.KafkaTimeoutError(), "reading topic configs"))
    assert "list-topics" in str(raised(kerr.UnknownTopicOrPartitionError(), "reading offsets"))


def test_socket_and_tls_errors_are_ours_too():
    tls = raised(ssl.SSLError(1, "certificate verify failed"), "connecting to Kafka")
    assert type(tls) is KafkaAuthFailed and "KAFKA_SSL_CAFILE" in str(tls)
    refused = raised(ConnectionRefusedError(111, "Connection refused"), "connecting to Kafka")
    assert type(refused) is KafkaUnavailable and "Connection refused" in str(refused)
    assert isinstance(refused.__cause__, ConnectionRefusedError)


def test_our_own_errors_and_programming_errors_pass_through_unchanged():
    mine = KafkaRequestFailed("creating topics failed: x")
    with pytest.raises(KafkaRequestFailed) as info:
        with translate(SETTINGS, "creating topics"):
            raise mine
    assert info.value is mine
    with pytest.raises(KeyError):  # a bug is not dressed up as a cluster problem
        with translate(SETTINGS, "creating topics"):
            raise KeyError("partition_index")


def test_broker_error_codes_are_named_with_their_description():
    assert broker_error(36) == (
        "TopicAlreadyExistsError: " + kerr.TopicAlreadyExistsError.description
    )
    assert broker_error(42, "replication factor too large") == (
        "InvalidRequestError: replication factor too large"
    )


secrets = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=8, max_size=40
)


@hsettings(max_examples=150, deadline=None)
@given(
    password=secrets,
    cls=st.sampled_from(KAFKA_ERRORS),
    doing=st.text(min_size=1, max_size=80),
)
def test_a_password_in_the_original_is_in_neither_error(password, cls, doing):
    settings = KafkaSettings(
        bootstrap_servers="b:9092",
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="ops",
        sasl_password=password,
    )
    original = instance(cls, f"login with {password} refused")
    ours = raised(original, doing, settings)
    assert str(ours).startswith(settings.redact(doing))
    assert password not in str(ours)
    assert ours.__cause__ is original
    assert password not in str(original) and password not in repr(original.args)


def test_the_cli_prints_our_message_and_no_traceback_or_cause():
    """A refused connection: exit 1, one `error:` line naming what was being done, nothing
    of the chained original's traceback."""
    env = dict(
        os.environ, ECAP_KAFKA_CONNECT_TIMEOUT_MS="1500", ECAP_KAFKA_REQUEST_TIMEOUT_MS="1500"
    )
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    port = free_port()
    out = subprocess.run(
        [sys.executable, "-m", "ecap_ops", "-b", f"127.0.0.1:{port}", "list-topics"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    assert "direct cause" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith("error: connecting to Kafka: ") or lines[0].startswith(
        "error: listing topics: "
    ), out.stderr
    assert f"127.0.0.1:{port}" in out.stderr
