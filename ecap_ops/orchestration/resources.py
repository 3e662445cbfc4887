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


class ClusterKafkaResource(KafkaResource):
    """Connection to one named cluster of the clusters file (`ECAP_CLUSTERS_FILE`), as
    resource `kafka_<cluster>` (and `kafka` for the home cluster). Its fields are the
    file's, shown in the UI so each resource says which brokers it reaches; the KAFKA_*
    variables play no part. The SASL password is read, when a run or tick connects, from
    the variable the file names (`password_env`), never shown."""

    cluster: str = Field(description="The cluster's name in the clusters file.")
    role: str = Field(default="", description="primary, standby, staging, dev or test.")
    password_env: str | None = Field(
        default=None, description="The environment variable holding the SASL password."
    )

    def settings(self, env: dict[str, str] | None = None) -> KafkaSettings:
        from ecap_ops.clusters import ClusterConfig

        environ = os.environ if env is None else env
        settings = KafkaSettings(
            bootstrap_servers=self.bootstrap_servers or "",
            security_protocol=self.security_protocol or "PLAINTEXT",
            sasl_mechanism=self.sasl_mechanism,
            sasl_username=self.sasl_username,
            sasl_password=(environ.get(self.password_env) or None) if self.password_env else None,
            ssl_cafile=self.ssl_cafile,
            connect_timeout_ms=self.connect_timeout_ms or 6000,
            request_timeout_ms=self.request_timeout_ms or 8000,
            client_id=DAGSTER_CLIENT_ID,
        )
        config = ClusterConfig(
            self.cluster, self.role or "dev", "", settings, password_env=self.password_env
        )
        return config.checked_settings()


def cluster_resource(cluster) -> ClusterKafkaResource:
    """The resource of one `ecap_ops.clusters.ClusterConfig` (no I/O)."""
    s = cluster.settings
    return ClusterKafkaResource(
        cluster=cluster.name,
        role=cluster.role,
        password_env=cluster.password_env,
        bootstrap_servers=s.bootstrap_servers,
        security_protocol=s.security_protocol,
        sasl_mechanism=s.sasl_mechanism,
        sasl_username=s.sasl_username,
        ssl_cafile=s.ssl_cafile,
        connect_timeout_ms=s.connect_timeout_ms,
        request_timeout_ms=s.request_timeout_ms,
    )
