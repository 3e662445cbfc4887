"""Connection settings, read from the environment and overridable by CLI flags.

`KafkaSettings` is the one settings object: the CLI (`KafkaSettings.from_env` plus its
flags) and the Dagster resource `kafka` (`from_env` plus the resource's fields) read the
same variables through the same code, so both connect, wait and time out alike. It is the
one place that knows how to turn our settings into kafka-python keyword arguments. Its repr
never shows the password.
"""

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ecap_ops.errors import ConfigError

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
DEFAULT_BOOTSTRAP = "localhost:9092"
# The client id brokers see (in their request logs and quotas): people's CLI or Dagster.
CLI_CLIENT_ID = "ecap-ops"
DAGSTER_CLIENT_ID = "ecap-ops-dagster"
# The environment variable behind each setting, read by `from_env`.
ENV_VARS = {
    "bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "security_protocol": "KAFKA_SECURITY_PROTOCOL",
    "sasl_mechanism": "KAFKA_SASL_MECHANISM",
    "sasl_username": "KAFKA_SASL_USERNAME",
    "sasl_password": "KAFKA_SASL_PASSWORD",
    "ssl_cafile": "KAFKA_SSL_CAFILE",
    "connect_timeout_ms": "ECAP_KAFKA_CONNECT_TIMEOUT_MS",
    "request_timeout_ms": "ECAP_KAFKA_REQUEST_TIMEOUT_MS",
}
# A wait longer than this is a typo (seconds for milliseconds, a digit too many): a
# sensor tick or a CLI command would hang on a dead cluster for that long.
MAX_TIMEOUT_MS = 600_000
_SHOWN = 40  # characters of an offending value a message shows


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


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
    client_id: str = CLI_CLIENT_ID

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> "KafkaSettings":
        """Settings from the environment (`env`, by default the process's), with `overrides`
        (CLI flags, resource fields; None means "not given") on top, validated."""
        env = os.environ if env is None else env
        password = overrides.get("sasl_password") or env.get(ENV_VARS["sasl_password"])
        try:
            return cls._from_env(env, overrides)
        except ConfigError as exc:
            # A message quotes what it refuses: never the password, even when a refused
            # value happens to hold it.
            raise ConfigError(redacted(str(exc), password)) from None

    @classmethod
    def _from_env(cls, env, overrides: dict[str, Any]) -> "KafkaSettings":
        values: dict[str, Any] = {
            key: env.get(name) or None
            for key, name in ENV_VARS.items()
            if not key.endswith("_timeout_ms")
        }
        values["bootstrap_servers"] = values["bootstrap_servers"] or DEFAULT_BOOTSTRAP
        values["security_protocol"] = values["security_protocol"] or "PLAINTEXT"
        for key in ("connect_timeout_ms", "request_timeout_ms"):
            name = ENV_VARS[key]
            raw = env.get(name)
            if raw:
                try:
                    values[key] = int(raw)
                except ValueError:
                    raise ConfigError(
                        f"{name}: expected a whole number of milliseconds, got {_shown(raw)}"
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
        problems = [message for _key, message in self.problems()]
        if problems:
            raise ConfigError(
                self.redact("Kafka connection settings are invalid: " + "; ".join(problems))
            )

    def problems(self, environment: bool = True) -> list[tuple[str, str]]:
        """Each problem with these settings as (field name, message). `environment=False`
        leaves out what depends on the machine rather than on the settings as written (the
        password's presence, the CA file's existence), so a clusters file can be checked
        whole before those are known."""
        found: list[tuple[str, str]] = []
        servers = [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]
        if not servers:
            found.append(("bootstrap_servers", "bootstrap servers: empty"))
        bad = [s for s in servers if not _host_port(s)]
        for s in bad[:3]:
            found.append(("bootstrap_servers", f"bootstrap servers: {_shown(s)} is not host:port"))
        if len(bad) > 3:
            found.append(
                ("bootstrap_servers", f"bootstrap servers: {len(bad) - 3} more are not host:port")
            )
        proto = self.security_protocol.upper()
        if proto not in SECURITY_PROTOCOLS:
            found.append(
                (
                    "security_protocol",
                    f"security protocol: {_shown(self.security_protocol)} is not one of {', '.join(SECURITY_PROTOCOLS)}",
                )
            )
        if proto in ("SASL_PLAINTEXT", "SASL_SSL"):
            if (self.sasl_mechanism or "").upper() not in SASL_MECHANISMS:
                found.append(
                    (
                        "sasl_mechanism",
                        f"SASL mechanism: {_shown(self.sasl_mechanism)} is not one of {', '.join(SASL_MECHANISMS)}",
                    )
                )
            if not self.sasl_username:
                found.append(("sasl_username", "SASL username: required with " + proto))
            if environment and not self.sasl_password:
                found.append(
                    (
                        "sasl_password",
                        "SASL password: required with " + proto + " (set KAFKA_SASL_PASSWORD)",
                    )
                )
        if environment and self.ssl_cafile and not os.path.isfile(self.ssl_cafile):
            found.append(("ssl_cafile", f"SSL CA file: {_shown(self.ssl_cafile)} does not exist"))
        for key in ("connect_timeout_ms", "request_timeout_ms"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool):
                problem = f"{key}: must be a whole number of milliseconds ({ENV_VARS[key]})"
            elif value <= 0:
                problem = f"{key}: must be > 0 ({ENV_VARS[key]})"
            elif value > MAX_TIMEOUT_MS:
                problem = (
                    f"{key}: {value:,} ms is longer than the {MAX_TIMEOUT_MS:,} ms ecap-ops "
                    f"waits at most ({ENV_VARS[key]})"
                )
            else:
                continue
            found.append((key, problem))
        return found

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
        return redacted(text, self.sasl_password)


def redacted(text: str, password: str | None) -> str:
    """`text` with every occurrence of `password` replaced by ***."""
    if password and password in text:
        text = text.replace(password, "***")
    return text


def _host_port(server: str) -> bool:
    host, sep, port = server.rpartition(":")
    return bool(sep and host and port.isascii() and port.isdigit() and 0 < int(port) < 65536)


# -- where ecap-ops keeps its files ---------------------------------------------------------
# One rule for the CLI and Dagster: ECAP_SNAPSHOT_DIR / ECAP_STATE_DIR, else under
# $DAGSTER_HOME (a Dagster instance), else under ~/.ecap-ops.


def ops_home(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("DAGSTER_HOME"):
        return Path(env["DAGSTER_HOME"])
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".ecap-ops"


def snapshot_dir(env: dict[str, str] | None = None) -> Path:
    """DR snapshots (and, below it, pre-change snapshots and cleanup's evidence records)."""
    env = os.environ if env is None else env
    if env.get("ECAP_SNAPSHOT_DIR"):
        return Path(env["ECAP_SNAPSHOT_DIR"]).expanduser()
    return ops_home(env) / "snapshots"


def state_dir(env: dict[str, str] | None = None) -> Path:
    """Cleanup's observation history and, by default, the change log."""
    env = os.environ if env is None else env
    if env.get("ECAP_STATE_DIR"):
        return Path(env["ECAP_STATE_DIR"]).expanduser()
    return ops_home(env) / "state"
