"""Connection settings, read from the environment and overridable by CLI flags.

`KafkaSettings` is the one place that knows how to turn our settings into kafka-python
keyword arguments. Its repr never shows the password.
"""

import os
from dataclasses import dataclass, field, replace
from typing import Any

from ecap_ops.errors import ConfigError

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
DEFAULT_BOOTSTRAP = "localhost:9092"


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    # How long to wait for the first broker to answer, and for each request. Both are
    # kept well under Dagster's 60 s sensor limit and the CLI's 15 s promise.
    connect_timeout_ms: int = 6000
    request_timeout_ms: int = 8000
    client_id: str = "ecap-ops"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> "KafkaSettings":
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            "bootstrap_servers": env.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP,
            "security_protocol": env.get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT",
            "sasl_mechanism": env.get("KAFKA_SASL_MECHANISM") or None,
            "sasl_username": env.get("KAFKA_SASL_USERNAME") or None,
            "sasl_password": env.get("KAFKA_SASL_PASSWORD") or None,
            "ssl_cafile": env.get("KAFKA_SSL_CAFILE") or None,
        }
        for key, name in (
            ("connect_timeout_ms", "ECAP_KAFKA_CONNECT_TIMEOUT_MS"),
            ("request_timeout_ms", "ECAP_KAFKA_REQUEST_TIMEOUT_MS"),
        ):
            raw = env.get(name)
            if raw:
                try:
                    values[key] = int(raw)
                except ValueError:
                    raise ConfigError(
                        f"{name}: expected a whole number of milliseconds, got {raw!r}"
                    ) from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def with_overrides(self, **overrides: Any) -> "KafkaSettings":
        s = replace(self, **{k: v for k, v in overrides.items() if v is not None})
        s.validate()
        return s

    def validate(self) -> None:
        problems = []
        servers = [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]
        if not servers:
            problems.append("bootstrap servers: empty")
        for s in servers:
            host, sep, port = s.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                problems.append(f"bootstrap servers: {s!r} is not host:port")
        proto = self.security_protocol.upper()
        if proto not in SECURITY_PROTOCOLS:
            problems.append(
                f"security protocol: {self.security_protocol!r} is not one of {', '.join(SECURITY_PROTOCOLS)}"
            )
        if proto.startswith("SASL"):
            if (self.sasl_mechanism or "").upper() not in SASL_MECHANISMS:
                problems.append(
                    f"SASL mechanism: {self.sasl_mechanism!r} is not one of {', '.join(SASL_MECHANISMS)}"
                )
            if not self.sasl_username:
                problems.append("SASL username: required with " + proto)
            if not self.sasl_password:
                problems.append(
                    "SASL password: required with " + proto + " (set KAFKA_SASL_PASSWORD)"
                )
        if self.ssl_cafile and not os.path.isfile(self.ssl_cafile):
            problems.append(f"SSL CA file: {self.ssl_cafile!r} does not exist")
        for key in ("connect_timeout_ms", "request_timeout_ms"):
            if getattr(self, key) <= 0:
                problems.append(f"{key}: must be > 0")
        if problems:
            raise ConfigError("Kafka connection settings are invalid: " + "; ".join(problems))

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's clients (admin, consumer, producer)."""
        kw: dict[str, Any] = {
            "bootstrap_servers": self.servers,
            "client_id": self.client_id,
            "security_protocol": self.security_protocol.upper(),
            "request_timeout_ms": self.request_timeout_ms,
            "bootstrap_timeout_ms": self.connect_timeout_ms,
            # Fail fast on a dead address instead of backing off for long.
            "reconnect_backoff_max_ms": 1000,
        }
        if self.security_protocol.upper().startswith("SASL"):
            kw["sasl_mechanism"] = (self.sasl_mechanism or "").upper()
            kw["sasl_plain_username"] = self.sasl_username
            kw["sasl_plain_password"] = self.sasl_password
        if self.ssl_cafile:
            kw["ssl_cafile"] = self.ssl_cafile
        return kw

    def java_client_properties(self) -> dict[str, str]:
        """The same settings as Java client properties, for Kafka's own tools."""
        props = {"security.protocol": self.security_protocol.upper()}
        if self.security_protocol.upper().startswith("SASL"):
            mech = (self.sasl_mechanism or "").upper()
            props["sasl.mechanism"] = mech
            module = (
                "org.apache.kafka.common.security.plain.PlainLoginModule"
                if mech == "PLAIN"
                else "org.apache.kafka.common.security.scram.ScramLoginModule"
            )
            # JAAS reads backslash as an escape: escape it first, then the quote.
            user = (self.sasl_username or "").replace("\\", "\\\\").replace('"', '\\"')
            pw = (self.sasl_password or "").replace("\\", "\\\\").replace('"', '\\"')
            props["sasl.jaas.config"] = f'{module} required username="{user}" password="{pw}";'
        if self.ssl_cafile:
            props["ssl.truststore.type"] = "PEM"
            props["ssl.truststore.location"] = self.ssl_cafile
        return props

    def redact(self, text: str) -> str:
        """Remove the password from a text that may have picked it up (an error message)."""
        if self.sasl_password and self.sasl_password in text:
            text = text.replace(self.sasl_password, "***")
        return text
