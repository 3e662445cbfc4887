"""Resource `kafka`: connection and security settings for the platform's cluster."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

from ecap_ops.gateway import KafkaGateway
from ecap_ops.settings import DAGSTER_CLIENT_ID, KafkaSettings

_FROM_ENV = "Unset: {var} (as the CLI reads it), else {default}."


class KafkaResource(dg.ConfigurableResource):
    """Connection to the platform's Kafka cluster, built by the same code from the same
    environment variables as the CLI's (`KafkaSettings.from_env`): a field set here
    overrides its variable, an unset field takes it. The password comes from an environment
    variable (an EnvVar, or KAFKA_SASL_PASSWORD itself) and is never shown in the UI, logs or
    metadata."""

    bootstrap_servers: str | None = Field(
        default=None,
        description=_FROM_ENV.format(var="KAFKA_BOOTSTRAP_SERVERS", default="localhost:9092"),
    )
    security_protocol: str | None = Field(
        default=None,
        description=_FROM_ENV.format(var="KAFKA_SECURITY_PROTOCOL", default="PLAINTEXT"),
    )
    sasl_mechanism: str | None = Field(
        default=None, description=_FROM_ENV.format(var="KAFKA_SASL_MECHANISM", default="none")
    )
    sasl_username: str | None = Field(
        default=None, description=_FROM_ENV.format(var="KAFKA_SASL_USERNAME", default="none")
    )
    sasl_password: str | None = Field(
        default=None,
        description="Set only as an EnvVar. "
        + _FROM_ENV.format(var="KAFKA_SASL_PASSWORD", default="none"),
    )
    ssl_cafile: str | None = Field(
        default=None, description=_FROM_ENV.format(var="KAFKA_SSL_CAFILE", default="none")
    )
    connect_timeout_ms: int | None = Field(
        default=None,
        description=_FROM_ENV.format(var="ECAP_KAFKA_CONNECT_TIMEOUT_MS", default="6000"),
    )
    request_timeout_ms: int | None = Field(
        default=None,
        description=_FROM_ENV.format(var="ECAP_KAFKA_REQUEST_TIMEOUT_MS", default="8000"),
    )

    def settings(self, env: dict[str, str] | None = None) -> KafkaSettings:
        """The settings this resource connects with: the environment (`env`, by default the
        process's) read as the CLI reads it, then the fields set here on top."""
        fields = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_username": self.sasl_username,
            "sasl_password": self.sasl_password,
            "ssl_cafile": self.ssl_cafile,
            "connect_timeout_ms": self.connect_timeout_ms,
            "request_timeout_ms": self.request_timeout_ms,
        }
        environ = os.environ if env is None else env
        for key, value in fields.items():
            if isinstance(value, dg.EnvVar):  # not resolved yet (outside a run): resolve it here
                fields[key] = environ.get(value.env_var_name)
        # An empty field is unset, as an empty variable is for the CLI.
        overrides = {k: v for k, v in fields.items() if v is not None and v != ""}
        return KafkaSettings.from_env(env, client_id=DAGSTER_CLIENT_ID, **overrides)

    @contextmanager
    def gateway(self) -> Iterator[KafkaGateway]:
        """A gateway opened for one step (or one sensor tick) and closed after it."""
        with KafkaGateway(self.settings()) as gw:
            yield gw


def kafka_resource_from_env() -> KafkaResource:
    """The resource as the deployment configures it: each connection setting that is set
    in the environment as an EnvVar (resolved when a run starts, so the UI shows where it
    comes from and never the secret); the timeouts are read by `settings()` itself, with
    the CLI's checks. Reads os.environ only; connects to nothing."""

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
