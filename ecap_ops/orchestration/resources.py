"""Resource `kafka`: connection and security settings for the platform's cluster."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from ecap_ops.gateway import KafkaGateway
from ecap_ops.settings import DEFAULT_BOOTSTRAP, KafkaSettings


class KafkaResource(dg.ConfigurableResource):
    """Connection to the platform's Kafka cluster. The password comes from an environment
    variable (EnvVar) and is never shown in the UI, logs or metadata."""

    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    connect_timeout_ms: int = 6000
    request_timeout_ms: int = 8000

    def settings(self) -> KafkaSettings:
        s = KafkaSettings(
            bootstrap_servers=self.bootstrap_servers,
            security_protocol=self.security_protocol,
            sasl_mechanism=self.sasl_mechanism,
            sasl_username=self.sasl_username,
            sasl_password=self.sasl_password,
            ssl_cafile=self.ssl_cafile,
            connect_timeout_ms=self.connect_timeout_ms,
            request_timeout_ms=self.request_timeout_ms,
            client_id="ecap-ops-dagster",
        )
        s.validate()
        return s

    @contextmanager
    def gateway(self) -> Iterator[KafkaGateway]:
        """A gateway opened for one step (or one sensor tick) and closed after it."""
        with KafkaGateway(self.settings()) as gw:
            yield gw


def kafka_resource_from_env() -> KafkaResource:
    """The resource as the deployment configures it: each setting from its environment
    variable when that is set (as an EnvVar, resolved when a run starts), else the default.
    Reads os.environ only; connects to nothing."""

    def env(name: str):
        return dg.EnvVar(name) if os.environ.get(name) else None

    values = {
        "bootstrap_servers": env("KAFKA_BOOTSTRAP_SERVERS"),
        "security_protocol": env("KAFKA_SECURITY_PROTOCOL"),
        "sasl_mechanism": env("KAFKA_SASL_MECHANISM"),
        "sasl_username": env("KAFKA_SASL_USERNAME"),
        "sasl_password": env("KAFKA_SASL_PASSWORD"),
        "ssl_cafile": env("KAFKA_SSL_CAFILE"),
    }
    return KafkaResource(**{k: v for k, v in values.items() if v is not None})
