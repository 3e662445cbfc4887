"""The one place where kafka-python's errors become the project's own."""

import contextlib
from collections.abc import Iterator

from kafka import errors as kerr

from ecap_ops.errors import KafkaAuthFailed, KafkaRequestFailed, KafkaUnavailable
from ecap_ops.settings import KafkaSettings


@contextlib.contextmanager
def translate(settings: KafkaSettings, doing: str) -> Iterator[None]:
    """Re-raise kafka-python errors raised while `doing` something as ecap-ops errors."""
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
    except (kerr.KafkaTimeoutError, kerr.KafkaConnectionError, kerr.NodeNotReadyError, kerr.RequestTimedOutError) as exc:
        raise KafkaUnavailable(
            settings.redact(
                f"{doing}: no Kafka broker answered at {settings.bootstrap_servers} within "
                f"{(settings.connect_timeout_ms if doing.startswith('connecting') else settings.request_timeout_ms) / 1000:g} s ({type(exc).__name__}). "
                "Is the cluster up? Locally: `ecap-ops broker status`; elsewhere check KAFKA_BOOTSTRAP_SERVERS and the network."
            )
        ) from None
    except ssl_errors() as exc:
        raise KafkaAuthFailed(settings.redact(f"{doing}: TLS handshake with {settings.bootstrap_servers} failed: {exc}. Check KAFKA_SSL_CAFILE.")) from None
    except kerr.KafkaError as exc:
        raise KafkaRequestFailed(settings.redact(f"{doing}: {type(exc).__name__}: {exc}")) from None
    except OSError as exc:
        raise KafkaUnavailable(settings.redact(f"{doing}: cannot reach {settings.bootstrap_servers}: {exc}")) from None


def ssl_errors() -> tuple[type[BaseException], ...]:
    import ssl

    return (ssl.SSLError,)
