"""The one place where kafka-python's errors become the project's own.

`ERROR_TABLE` maps kafka-python's error classes (and the socket and TLS errors its clients
raise) to ecap-ops' exceptions, each with what it means and what to do. The first row whose
classes match wins, so specific rows come before general ones; the last rows catch every
other `KafkaError` and `OSError`, and a test walks every error class kafka-python defines.
The translated error is raised `from` the original, so Dagster's run view and a debugger
keep the cause; the CLI prints only our message (`guarded`), never a traceback. A password
that found its way into the original's text is removed from it before it is chained.
"""

import contextlib
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

from kafka import errors as kerr

from ecap_ops.errors import (
    ConfigError,
    EcapOpsError,
    KafkaAuthFailed,
    KafkaRequestFailed,
    KafkaUnavailable,
)
from ecap_ops.settings import KafkaSettings

# The errors a translation produces. An error of ours raised inside `translate` passes
# through unchanged.
OURS: tuple[type[EcapOpsError], ...] = (
    KafkaUnavailable,
    KafkaAuthFailed,
    KafkaRequestFailed,
    ConfigError,
)


@dataclass(frozen=True)
class ErrorRule:
    """kafka-python errors of `kinds` become `ours`, with `says` after "<doing>: ".

    `says` is a format string over: servers (the bootstrap servers), user (the SASL user),
    wait (the bounded wait in seconds), name (the original's class) and detail (its text)."""

    kinds: tuple[type[BaseException], ...]
    ours: type[EcapOpsError]
    says: str
    # Unreachable-looking errors are often a refused login or a TLS mismatch that the
    # client retried until its timeout: check the connection evidence first.
    check_evidence: bool = False


ERROR_TABLE: tuple[ErrorRule, ...] = (
    ErrorRule(
        (
            kerr.SaslAuthenticationFailedError,
            kerr.UnsupportedSaslMechanismError,
            kerr.IllegalSaslStateError,
        ),
        KafkaAuthFailed,
        "the cluster at {servers} refused our login as {user} ({detail}): authentication "
        "failed. Check KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM.",
    ),
    ErrorRule(
        (kerr.AuthorizationError,),
        KafkaAuthFailed,
        "the cluster at {servers} does not allow {user} to do this ({detail}). Check the "
        "ACLs granted to that user, or KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD.",
    ),
    ErrorRule(
        (
            kerr.KafkaTimeoutError,
            kerr.KafkaConnectionError,
            kerr.NodeNotReadyError,
            kerr.RequestTimedOutError,
            kerr.MetadataEmptyBrokerList,
            kerr.BrokerNotAvailableError,
            kerr.NetworkExceptionError,
        ),
        KafkaUnavailable,
        "no Kafka broker answered at {servers} within {wait:g} s ({name}). Is the cluster up? "
        "Locally: `ecap-ops broker status`; elsewhere check KAFKA_BOOTSTRAP_SERVERS and the network.",
        check_evidence=True,
    ),
    ErrorRule(
        (kerr.KafkaConfigurationError,),
        ConfigError,
        "the Kafka client refused our connection settings ({detail}). Check KAFKA_BOOTSTRAP_SERVERS, "
        "KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM and KAFKA_SSL_CAFILE.",
    ),
    ErrorRule(
        (kerr.UnsupportedVersionError, kerr.UnrecognizedBrokerVersion),
        KafkaRequestFailed,
        "the brokers at {servers} do not support this request ({detail}). ecap-ops is "
        "tested with Kafka 4.x; check the brokers' version.",
    ),
    ErrorRule(
        (
            kerr.UnknownTopicOrPartitionError,
            kerr.UnknownTopicIdError,
            kerr.GroupIdNotFoundError,
            kerr.ResourceNotFoundError,
        ),
        KafkaRequestFailed,
        "a topic, partition or group it names does not exist on the cluster at {servers} "
        "({detail}). Check the name: `ecap-ops list-topics`, `ecap-ops consumer-groups`.",
    ),
    ErrorRule(
        (kerr.TopicAlreadyExistsError, kerr.DuplicateResourceError),
        KafkaRequestFailed,
        "a topic or resource it names already exists on the cluster at {servers} ("
        "{detail}). Run `ecap-ops plan` to see what differs.",
    ),
    ErrorRule(
        (
            kerr.PolicyViolationError,
            kerr.InvalidConfigurationError,
            kerr.InvalidReplicationFactorError,
            kerr.InvalidPartitionsError,
            kerr.InvalidReplicationAssignmentError,
            kerr.InvalidTopicError,
            kerr.InvalidRequestError,
            kerr.MessageSizeTooLargeError,
            kerr.RecordListTooLargeError,
            kerr.IllegalArgumentError,
        ),
        KafkaRequestFailed,
        "the brokers at {servers} refused the request as invalid ({detail}). Fix the "
        "value it names and try again.",
    ),
    ErrorRule(
        (
            kerr.NonEmptyGroupError,
            kerr.RebalanceInProgressError,
            kerr.ReassignmentInProgressError,
        ),
        KafkaRequestFailed,
        "the group or partitions it names are busy on the cluster at {servers} ("
        "{detail}). Wait until the group's consumers stop or the rebalance or reassignment "
        "ends, then try again.",
    ),
    ErrorRule(
        (kerr.RetriableError,),
        KafkaRequestFailed,
        "the cluster at {servers} could not answer yet ({detail}). This is usually "
        "passing (a leader election, a broker starting); try again in a few seconds.",
    ),
    ErrorRule(
        (kerr.KafkaError,),
        KafkaRequestFailed,
        "the cluster at {servers} answered with an error ({detail}).",
    ),
    ErrorRule(
        (ssl.SSLError,),
        KafkaAuthFailed,
        "TLS handshake with {servers} failed ({detail}). Check KAFKA_SSL_CAFILE.",
    ),
    ErrorRule(
        (OSError,),
        KafkaUnavailable,
        "cannot reach {servers} ({detail}). Check KAFKA_BOOTSTRAP_SERVERS and the network.",
    ),
)

_HANDLED: tuple[type[BaseException], ...] = tuple(
    kind for rule in ERROR_TABLE for kind in rule.kinds
)


def rule_for(error: type[BaseException]) -> ErrorRule | None:
    """The table's row for an error class (the first that matches), or None when it is not
    one the gateway translates."""
    return next((r for r in ERROR_TABLE if issubclass(error, r.kinds)), None)


def _detail(exc: BaseException) -> str:
    """The original's text, naming its class (kafka-python's errors name it themselves), with
    the broker's description of the code when the error carries no text of its own."""
    name = type(exc).__name__
    text = " ".join(str(exc).split())
    if name not in text:
        text = f"{name}: {text}" if text else name
    description = getattr(exc, "description", None)
    if not exc.args and isinstance(description, str) and description:
        text = f"{text}: {description}"
    return text if len(text) <= 300 else text[:300] + "..."


def _redact_chain(exc: BaseException, settings: KafkaSettings) -> None:
    """Remove the password from the text of the original error (and what it chains), since
    it travels on as the cause of ours."""
    if not settings.sasl_password:
        return
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        try:
            current.args = tuple(
                settings.redact(a) if isinstance(a, str) else a for a in current.args
            )
        except (AttributeError, TypeError):  # an exception class that fixes its args
            pass
        current = current.__cause__ or current.__context__


def to_ecap_error(
    exc: BaseException,
    settings: KafkaSettings,
    doing: str,
    evidence: "_ConnectionEvidence | None" = None,
    wait_ms: int | None = None,
) -> EcapOpsError:
    """Our error for a kafka-python (or socket) error raised while `doing` something;
    `wait_ms` is how long the call could wait, when not the settings' own timeout."""
    rule = rule_for(type(exc))
    if rule is None:  # not in the table: the caller re-raises the original
        raise TypeError(f"{type(exc).__name__} is not an error the gateway translates")
    if rule.check_evidence and evidence is not None:
        mismatch = evidence.explain(settings)
        if mismatch:
            return KafkaAuthFailed(settings.redact(f"{doing}: {mismatch}"))
    if wait_ms is None:
        connecting = doing.startswith("connecting")
        wait_ms = settings.connect_timeout_ms if connecting else settings.request_timeout_ms
    wait = wait_ms / 1000
    says = rule.says.format(
        servers=settings.bootstrap_servers,
        user=repr(settings.sasl_username) if settings.sasl_username else "this client",
        wait=wait,
        name=type(exc).__name__,
        detail=_detail(exc),
    )
    return rule.ours(settings.redact(f"{doing}: {says}"))


@contextlib.contextmanager
def translate(settings: KafkaSettings, doing: str, wait_ms: int | None = None) -> Iterator[None]:
    """Re-raise kafka-python errors raised while `doing` something as ecap-ops errors,
    chained to the original. `wait_ms`: how long the calls inside may wait, when that is
    not the settings' timeout."""
    evidence = _ConnectionEvidence()
    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(evidence)
    try:
        yield
    except EcapOpsError:
        raise
    except _HANDLED as exc:
        ours = to_ecap_error(exc, settings, doing, evidence, wait_ms)
        _redact_chain(exc, settings)
        raise ours from exc
    finally:
        kafka_log.removeHandler(evidence)


def broker_error(code: int, message: str | None = None) -> str:
    """A broker's per-item error code (a topic in a batch answer) as '<Name>: <what>'."""
    err = kerr.for_code(code)
    return f"{err.__name__}: {message or err.description}"


class _ConnectionEvidence(logging.Handler):
    """Collects the connection errors kafka-python logs (and otherwise swallows) while it
    retries, so a timeout can be told apart from a refused login or a TLS mismatch.
    The client runs its I/O on its own thread, so this listens to the logger, not to a
    thread; another client connecting in the same process at the same moment could add
    its errors too, which only matters when both fail at once."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            if isinstance(arg, BaseException) and len(self.errors) < 50:
                self.errors.append(arg)

    def explain(self, settings: KafkaSettings) -> str | None:
        """What the collected errors say went wrong, or None when they show no mismatch."""
        servers = settings.bootstrap_servers
        proto = settings.security_protocol.upper()
        texts = [f"{type(e).__name__}: {e}" for e in self.errors]
        mechanism = (settings.sasl_mechanism or "").upper()
        sasl = next(
            (e for e in self.errors if isinstance(e, kerr.SaslAuthenticationFailedError)), None
        )
        if sasl is not None:
            said = str(sasl).rsplit(": ", 1)[-1]  # the broker's own words, without the prefixes
            return (
                f"the cluster at {servers} refused our login: authentication failed for user "
                f"{settings.sasl_username!r} with SASL mechanism {mechanism} (broker: {said}). "
                "Check KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM."
            )
        if any(isinstance(e, kerr.UnsupportedSaslMechanismError) for e in self.errors):
            return (
                f"the cluster at {servers} does not enable the SASL mechanism {mechanism} on this "
                "listener, so we cannot authenticate. Check KAFKA_SASL_MECHANISM."
            )
        tls = next(
            (t for t in texts if "Handshake failed" in t or "SSL" in t or "CERTIFICATE" in t), None
        )
        if tls:
            return (
                f"TLS handshake with {servers} failed ({tls}). Check KAFKA_SSL_CAFILE (the CA that "
                "signed the brokers' certificates) and that the address matches their certificates."
            )
        used = f"security protocol {proto}" + (
            f", SASL mechanism {mechanism}" if proto.startswith("SASL") else ""
        )
        invalid = any(isinstance(e, kerr.InvalidReceiveError) for e in self.errors)
        if not invalid and not any("socket disconnected" in t for t in texts):
            return None
        # The broker hung up on us. Without TLS on our side, ask the listener for a TLS
        # handshake (no credentials are sent): if it answers, that is what it expects.
        if not proto.endswith("SSL") and (invalid or _speaks_tls(settings.servers[0])):
            return (
                f"the broker at {servers} did not answer in the Kafka protocol we spoke ({used}): its "
                "listener expects TLS (SSL or SASL_SSL). Check KAFKA_SECURITY_PROTOCOL and KAFKA_SSL_CAFILE."
            )
        if proto.startswith("SASL"):
            # The transport matches (a TLS mismatch is reported above), so the broker hung up
            # during the SASL login: it refused it, though the client did not get to read why.
            return (
                f"the cluster at {servers} closed our connections during the SASL login as user "
                f"{settings.sasl_username!r} ({used}): authentication most likely failed. Check "
                "KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD, and that the listener enables KAFKA_SASL_MECHANISM."
            )
        return (
            f"the broker at {servers} accepted our connections and then closed them before "
            f"answering: its listener most likely expects other security settings than ours ({used}). "
            "Check KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM and KAFKA_SSL_CAFILE."
        )


def _speaks_tls(server: str, timeout: float = 2.0) -> bool:
    """True when host:port completes a TLS handshake (certificate not checked, nothing sent after)."""
    import socket

    host, _, port = server.rpartition(":")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=host):
                return True
    except (OSError, ValueError):  # ssl.SSLError is an OSError
        return False


def ssl_errors() -> tuple[type[BaseException], ...]:
    return (ssl.SSLError,)
