"""The named Kafka clusters ecap-ops manages (dev, staging, prod, a DR standby, ...).

A clusters file (`ECAP_CLUSTERS_FILE`, for example `clusters.yaml`; the repository ships
`clusters.example.yaml`) names each cluster with its bootstrap servers, its security
settings, the catalog environment overlay it runs and its role:

    version: 1
    clusters:
      prod:
        role: primary            # primary | standby | staging | dev | test
        env: prod                # the catalog's environment overlay for this cluster
        bootstrap_servers: kafka-prod-1:9093,kafka-prod-2:9093
        security_protocol: SASL_SSL
        sasl_mechanism: SCRAM-SHA-512
        sasl_username: ecap-ops
        password_env: ECAP_PROD_KAFKA_PASSWORD   # the variable's NAME, never a password
        ssl_cafile: /etc/ecap/prod-ca.pem
        connect_timeout_ms: 6000                 # optional; else ECAP_KAFKA_*_TIMEOUT_MS
        request_timeout_ms: 8000

The file is read with the catalog's defensive YAML reader (size cap, one document, no
aliases or tags, keys as written) and validated whole: every problem is reported at once
with its YAML path (`clusters.prod.bootstrap_servers: ...`), by the same checks the
single-cluster settings get (`KafkaSettings.problems`). What depends on the machine, not
the file (the password variable being set, the CA file existing), is checked when a
cluster is used, so one cluster's missing secret never stops the others from loading.

Roles: `primary` (at most one: the cluster others are compared with), `standby` (a DR
target), `staging`, `dev`, `test`. Names are lower-case letters, digits and `_`, starting
with a letter (they become Dagster asset-key prefixes and job-name prefixes).

Without a clusters file nothing changes: `cluster_settings(None)` is today's
`KafkaSettings.from_env()`. Importing this module does no I/O; `load_clusters` reads the
one file.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ecap_ops.errors import CatalogInvalid, ConfigError
from ecap_ops.settings import CLI_CLIENT_ID, ENV_VARS, KafkaSettings

CLUSTERS_FILE_ENV = "ECAP_CLUSTERS_FILE"
ROLES = ("primary", "standby", "staging", "dev", "test")
DEFAULT_CLUSTER = "default"  # the cluster of the single-cluster variables (no --cluster)
DEFAULT_ENV = "dev"
MAX_BYTES = 256 * 1024  # a clusters file names a handful of clusters
MAX_CLUSTERS = 32
MAX_NAME = 32
CLUSTER_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
ENV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_VAR_NAME = 128
MAX_TEXT = 4096  # a bootstrap list, a path or a description

_SHOWN = 40
# keys of a cluster entry -> KafkaSettings field (None: not a connection setting)
_SETTING_KEYS = {
    "bootstrap_servers": "bootstrap_servers",
    "security_protocol": "security_protocol",
    "sasl_mechanism": "sasl_mechanism",
    "sasl_username": "sasl_username",
    "ssl_cafile": "ssl_cafile",
    "connect_timeout_ms": "connect_timeout_ms",
    "request_timeout_ms": "request_timeout_ms",
}
_ENTRY_KEYS = {"role", "env", "description", "password_env", *_SETTING_KEYS}
_SECRET_KEYS = {"password", "sasl_password", "sasl_plain_password", "secret"}
_FIELD_KEY = {field: key for key, field in _SETTING_KEYS.items()}
_FIELD_KEY["sasl_password"] = "password_env"


def _shown(value: object, limit: int = _SHOWN) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text if text.isprintable() else repr(text)[1:-1]
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


@dataclass(frozen=True)
class ClusterConfig:
    """One named cluster: its connection settings and what it is for."""

    name: str  # dev, staging, prod, dr, ... ('default' for the single-cluster variables)
    role: str  # one of ROLES
    env: str  # the catalog environment overlay it uses
    settings: KafkaSettings  # bootstrap + security; the password read from `password_env`
    password_env: str | None = None  # the variable holding the SASL password, by name
    description: str = ""

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_CLUSTER

    def checked_settings(self) -> KafkaSettings:
        """The settings, checked as a connection needs them (password set, CA file there)."""
        problems = self.settings.problems()
        if problems:
            raise ConfigError(
                f"cluster {self.name}: connection settings are invalid: "
                + "; ".join(self._explain(field, message) for field, message in problems)
            )
        return self.settings

    def _explain(self, field: str, message: str) -> str:
        if field == "sasl_password" and self.password_env:
            return (
                f"SASL password: the variable {self.password_env} (password_env) is not set "
                "or empty; set it in the environment of ecap-ops (CLI, Dagster code server, "
                "daemon and run workers)"
            )
        return message

    def describe(self) -> str:
        """One line for people: name, role, environment and brokers (never a secret)."""
        return f"{self.name} ({self.role}, env {self.env}, {self.settings.bootstrap_servers})"


def clusters_file(env: Mapping[str, str] | None = None) -> Path | None:
    """The clusters file ECAP_CLUSTERS_FILE names, or None when none is configured."""
    raw = (os.environ if env is None else env).get(CLUSTERS_FILE_ENV, "").strip()
    return Path(raw).expanduser() if raw else None


def load_clusters(
    path: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, ClusterConfig]:
    """The clusters of `path` (else ECAP_CLUSTERS_FILE's), by name in file order; {} when
    no file is configured. An unreadable or invalid file raises CatalogInvalid listing
    every problem with its YAML path."""
    environ = os.environ if environ is None else environ
    p = Path(path) if path is not None else clusters_file(environ)
    if p is None:
        return {}
    source = str(p)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise CatalogInvalid(
            [
                f"(file): {_shown(source, 200)} does not exist (set {CLUSTERS_FILE_ENV} to a clusters file, or unset it)"
            ],
            source,
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CatalogInvalid(
            [f"(file): cannot read {_shown(source, 200)}: {reason}"], source
        ) from None
    if len(data) > MAX_BYTES:
        raise CatalogInvalid(
            [
                f"(file): the clusters file is larger than {MAX_BYTES} bytes; it names a few clusters"
            ],
            source,
        )
    from ecap_ops.catalog.yaml_reader import decode_catalog

    return parse_clusters(decode_catalog(data, source), source, environ)


def parse_clusters(
    text: str, source: str = "clusters file", environ: Mapping[str, str] | None = None
) -> dict[str, ClusterConfig]:
    """Clusters YAML text -> ClusterConfig by name, validated whole (CatalogInvalid)."""
    from ecap_ops.catalog.yaml_reader import MAX_ERRORS, read_yaml

    environ = os.environ if environ is None else environ
    if len(text) > MAX_BYTES:
        raise CatalogInvalid(
            [
                f"(file): the clusters file is larger than {MAX_BYTES} bytes; it names a few clusters"
            ],
            source,
        )
    data, key_problems, duplicates, dropped = read_yaml(text, source)
    errors: list[str] = [*key_problems, *(f"(YAML): {d}" for d in duplicates)]
    if data is None or not isinstance(data, dict):
        found = (
            "nothing"
            if data is None
            else "a list"
            if isinstance(data, list)
            else f"the value {_shown(data)}"
        )
        raise CatalogInvalid(
            [*errors, f"(top): a clusters file is a mapping with a `clusters:` key, found {found}"],
            source,
        )
    for key in data:
        if key not in ("version", "clusters"):
            errors.append(f"{_key(key)}: unknown key; a clusters file has `version` and `clusters`")
    version = data.get("version", 1)
    if type(version) is not int or version != 1:
        errors.append(
            f"version: unsupported version {_shown(version)}; this ecap-ops reads version 1"
        )
    raw = data.get("clusters")
    clusters: dict[str, ClusterConfig] = {}
    if not isinstance(raw, dict) or not raw:
        errors.append("clusters: must be a non-empty mapping of cluster name to its settings")
        raw = {}
    elif len(raw) > MAX_CLUSTERS:
        errors.append(f"clusters: {len(raw)} clusters; ecap-ops manages at most {MAX_CLUSTERS}")
        raw = {}
    timeouts = _env_timeouts(errors, environ)
    for name, entry in raw.items():
        cluster = _cluster(errors, name, entry, timeouts, environ)
        if cluster is not None:
            clusters[name] = cluster
    primaries = [c.name for c in clusters.values() if c.role == "primary"]
    if len(primaries) > 1:
        errors.append(
            f"clusters: {len(primaries)} clusters have role primary ({', '.join(primaries)}); "
            "at most one is the primary the others are compared with"
        )
    if len(errors) > MAX_ERRORS:
        dropped += len(errors) - MAX_ERRORS
        errors = errors[:MAX_ERRORS]
    if dropped:
        errors.append(f"... and {dropped} more problem(s)")
    if errors:
        raise CatalogInvalid(errors, source)
    return clusters


def _key(key: Any) -> str:
    from ecap_ops.catalog.yaml_reader import path_key

    return path_key(key) if isinstance(key, str) else _shown(key)


def _env_timeouts(errors: list[str], environ: Mapping[str, str]) -> dict[str, int]:
    """The timeouts every cluster takes unless its entry sets its own."""
    out: dict[str, int] = {}
    for field in ("connect_timeout_ms", "request_timeout_ms"):
        raw = environ.get(ENV_VARS[field])
        if raw:
            try:
                out[field] = int(raw)
            except ValueError:
                errors.append(
                    f"(environment) {ENV_VARS[field]}: expected a whole number of milliseconds, got {_shown(raw)}"
                )
    return out


def _cluster(
    errors: list[str],
    name: Any,
    entry: Any,
    timeouts: dict[str, int],
    environ: Mapping[str, str],
) -> ClusterConfig | None:
    where = f"clusters.{_key(name)}"
    before = len(errors)
    if not isinstance(name, str) or not CLUSTER_NAME.match(name) or len(name) > MAX_NAME:
        errors.append(
            f"{where}: a cluster name is lower-case letters, digits and _, starting with a "
            f"letter, at most {MAX_NAME} characters (it prefixes Dagster names)"
        )
    elif name == DEFAULT_CLUSTER:
        errors.append(
            f"{where}: the name {DEFAULT_CLUSTER!r} is kept for the cluster of the "
            "KAFKA_* variables (no --cluster); choose another"
        )
    if not isinstance(entry, dict):
        errors.append(f"{where}: must be a mapping of settings (role, env, bootstrap_servers, ...)")
        return None
    for key in entry:
        if key in _SECRET_KEYS:
            errors.append(
                f"{where}.{_key(key)}: a clusters file never holds a password; name the "
                "environment variable that holds it with password_env"
            )
        elif key not in _ENTRY_KEYS:
            errors.append(
                f"{where}.{_key(key)}: unknown key; a cluster has " + ", ".join(sorted(_ENTRY_KEYS))
            )
    role = entry.get("role")
    if role not in ROLES:
        errors.append(f"{where}.role: {_shown(role)} is not one of {', '.join(ROLES)}")
    env = entry.get("env", DEFAULT_ENV)
    if not isinstance(env, str) or not ENV_NAME.match(env) or len(env) > 64:
        errors.append(
            f"{where}.env: {_shown(env)} is not a catalog environment name (letters, digits, _ . -)"
        )
    description = entry.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_TEXT:
        errors.append(f"{where}.description: must be text of at most {MAX_TEXT} characters")
    values: dict[str, Any] = {"client_id": CLI_CLIENT_ID, **timeouts}
    for key, field in _SETTING_KEYS.items():
        if key not in entry:
            continue
        value = entry[key]
        if key == "bootstrap_servers" and isinstance(value, list):
            if all(isinstance(v, str) for v in value):
                value = ",".join(value)
        if field.endswith("_timeout_ms"):
            if type(value) is not int:
                errors.append(
                    f"{where}.{key}: must be a whole number of milliseconds, got {_shown(value)}"
                )
                continue
        elif not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
            errors.append(
                f"{where}.{key}: must be non-empty text (at most {MAX_TEXT} characters), got {_shown(value)}"
            )
            continue
        values[field] = value
    if "bootstrap_servers" not in entry:
        errors.append(f"{where}.bootstrap_servers: required (host:port[,host:port...])")
    password_env = entry.get("password_env")
    if password_env is not None:
        if (
            not isinstance(password_env, str)
            or not VAR_NAME.match(password_env)
            or len(password_env) > MAX_VAR_NAME
        ):
            errors.append(
                f"{where}.password_env: must be an environment variable name "
                f"(letters, digits, _), got {_shown(password_env, 20)}"
            )
            password_env = None
        else:
            values["sasl_password"] = environ.get(password_env) or None
    settings = KafkaSettings(**{"bootstrap_servers": "", **values})
    for field, message in settings.problems(environment=False):
        if "bootstrap_servers" not in entry and field == "bootstrap_servers":
            continue
        if field not in values and field.endswith("_timeout_ms"):
            continue  # a bad variable was reported once above
        errors.append(f"{where}.{_FIELD_KEY.get(field, field)}: {message}")
    proto = str(values.get("security_protocol", "PLAINTEXT")).upper()
    if proto.startswith("SASL") and password_env is None and "password_env" not in entry:
        errors.append(
            f"{where}.password_env: required with {proto}: the name of the environment "
            "variable that holds the SASL password"
        )
    if len(errors) > before:
        return None
    return ClusterConfig(
        name=name,
        role=role,
        env=env,
        settings=settings,
        password_env=password_env,
        description=description,
    )


def cluster_config(
    name: str | None,
    environ: Mapping[str, str] | None = None,
    clusters: Mapping[str, ClusterConfig] | None = None,
) -> ClusterConfig:
    """The cluster `name` of the clusters file; None: the 'default' cluster of today's
    single-cluster variables (KAFKA_*, ECAP_ENV), role primary. An unknown name raises
    ConfigError naming the known ones."""
    environ = os.environ if environ is None else environ
    if name is None:
        return ClusterConfig(
            name=DEFAULT_CLUSTER,
            role="primary",
            env=environ.get("ECAP_ENV") or DEFAULT_ENV,
            settings=KafkaSettings.from_env(dict(environ)),
            password_env="KAFKA_SASL_PASSWORD" if environ.get("KAFKA_SASL_PASSWORD") else None,
        )
    known = load_clusters(environ=environ) if clusters is None else clusters
    if name in known:
        return known[name]
    if not known:
        raise ConfigError(
            f"cluster {_shown(name)}: no clusters file is configured; set {CLUSTERS_FILE_ENV} "
            "to a clusters file naming it (see clusters.example.yaml), or leave out --cluster"
        )
    raise ConfigError(
        f"cluster {_shown(name)} is not in the clusters file; known clusters: {', '.join(known)}"
    )


def cluster_settings(
    name: str | None,
    environ: Mapping[str, str] | None = None,
    clusters: Mapping[str, ClusterConfig] | None = None,
) -> KafkaSettings:
    """The connection settings of cluster `name`, checked for use; None: today's
    single-cluster variables (`KafkaSettings.from_env()`)."""
    if name is None:
        return KafkaSettings.from_env(None if environ is None else dict(environ))
    return cluster_config(name, environ, clusters).checked_settings()


def with_client_id(cluster: ClusterConfig, client_id: str) -> ClusterConfig:
    """The same cluster, connecting under another client id (Dagster's)."""
    return replace(cluster, settings=replace(cluster.settings, client_id=client_id))


def primary_of(clusters: Mapping[str, ClusterConfig]) -> ClusterConfig | None:
    """The primary cluster, if the file names one."""
    return next((c for c in clusters.values() if c.role == "primary"), None)


def home_of(clusters: Mapping[str, ClusterConfig]) -> ClusterConfig:
    """The code location's home cluster: the primary, else the first one listed. It keeps
    every single-cluster name and file place; `clusters` is not empty."""
    return primary_of(clusters) or next(iter(clusters.values()))


def snapshot_dir_of(cluster: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """Where the snapshots of cluster `cluster` of the clusters file live (`--cluster NAME`;
    None: the single-cluster variables): `other_cluster_snapshot_dir` of its name, or of
    None for the home cluster."""
    environ = os.environ if environ is None else environ
    if cluster is not None:
        clusters = load_clusters(environ=environ)
        cluster_config(cluster, environ, clusters)  # an unknown name is refused, naming the known
        if home_of(clusters).name == cluster:
            cluster = None
    return other_cluster_snapshot_dir(cluster, environ)


def other_cluster_snapshot_dir(
    cluster: str | None, environ: Mapping[str, str] | None = None
) -> Path:
    """The one rule of where snapshots live: the snapshot directory itself for the single
    or home cluster (None; where restore, the drill and the CLI look for the newest), and
    `<snapshot directory>/clusters/<name>` for every other cluster, so that no cluster's
    snapshots are pruned by, diffed against or taken for another's. Used by the Dagster
    snapshot asset of each cluster and by `ecap-ops --cluster NAME snapshot|restore`."""
    from ecap_ops.settings import snapshot_dir

    base = snapshot_dir(dict(os.environ if environ is None else environ))
    return base if cluster is None else base / "clusters" / cluster
