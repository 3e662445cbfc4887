"""The one place where kafka-python's errors become the project's own."""

import contextlib
import logging
from collections.abc import Iterator

from kafka import errors as kerr

from ecap_ops.errors import KafkaAuthFailed, KafkaRequestFailed, KafkaUnavailable
from ecap_ops.settings import KafkaSettings


@contextlib.contextmanager
def translate(settings: KafkaSettings, doing: str) -> Iterator[None]:
    """Re-raise kafka-python errors raised while `doing` something as ecap-ops errors."""
    evidence = _ConnectionEvidence()
    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(evidence)
    try:
        yield
    except (KafkaUnavailable, KafkaAuthFailed, KafkaRequestFailed):
        raise
    except (kerr.SaslAuthenticationFailedError, kerr.AuthorizationError) as exc:
        raise KafkaAuthFailed(
            settings.redact(
                f"{doing}: the cluster at {settings.bootstrap_servers} refused us ({type(exc).__name__}: {exc}). "
                "Check KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD, the SASL mechanism and the ACLs."
            )
        ) from None
    except (
        kerr.KafkaTimeoutError,
        kerr.KafkaConnectionError,
        kerr.NodeNotReadyError,
        kerr.RequestTimedOutError,
    ) as exc:
        # kafka-python retries a refused login or a failed TLS handshake until its timeout
        # and then reports only the timeout: say what the brokers actually did.
        mismatch = evidence.explain(settings)
        if mismatch:
            raise KafkaAuthFailed(settings.redact(f"{doing}: {mismatch}")) from None
        raise KafkaUnavailable(
            settings.redact(
                f"{doing}: no Kafka broker answered at {settings.bootstrap_servers} within "
                f"{(settings.connect_timeout_ms if doing.startswith('connecting') else settings.request_timeout_ms) / 1000:g} s ({type(exc).__name__}). "
                "Is the cluster up? Locally: `ecap-ops broker status`; elsewhere check KAFKA_BOOTSTRAP_SERVERS and the network."
            )
        ) from None
    except ssl_errors() as exc:
        raise KafkaAuthFailed(
            settings.redact(
                f"{doing}: TLS handshake with {settings.bootstrap_servers} failed: {exc}. Check KAFKA_SSL_CAFILE."
            )
        ) from None
    except kerr.KafkaError as exc:
        raise KafkaRequestFailed(settings.redact(f"{doing}: {type(exc).__name__}: {exc}")) from None
    except OSError as exc:
        raise KafkaUnavailable(
            settings.redact(f"{doing}: cannot reach {settings.bootstrap_servers}: {exc}")
        ) from None
    finally:
        kafka_log.removeHandler(evidence)


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
    import ssl

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
    import ssl

    return (ssl.SSLError,)
