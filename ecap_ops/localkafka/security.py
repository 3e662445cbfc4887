"""A secured client listener for `LocalCluster`: SASL/SCRAM users, optionally over TLS.

`SecureListener` says what to secure; `LocalCluster(..., security=SecureListener(...))` then
runs its nodes with the client listener on SASL_SSL (or SASL_PLAINTEXT when `tls=False`),
the controller listener left on PLAINTEXT, and inter-broker traffic over the client
listener as the first user. SCRAM users are created when the storage is formatted.

Files under `<data_dir>/security/` (a 0700 folder): `ca.pem` (the CA clients trust),
`server.pem` (the nodes' unencrypted PKCS#8 key and certificate chain, `ssl.keystore.type=PEM`)
and `listener.json` (0600: mechanism, TLS flag and the users, so `LocalCluster.load` and
restarts can connect). Passwords never appear in `cluster.json` or in a repr.
"""

import datetime
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecap_ops.errors import LocalKafkaError
from ecap_ops.settings import KafkaSettings

SECURITY_DIR = "security"
LISTENER_FILE = "listener.json"
CA_FILE = "ca.pem"
SERVER_PEM = "server.pem"
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
LISTENER_NAME = "CLIENT"
AUTHORIZER_CLASS = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
AUTHORIZER_PROPERTIES = {
    "authorizer.class.name": AUTHORIZER_CLASS,
    "allow.everyone.if.no.acl.found": "false",
}
# The controller listener stays PLAINTEXT on loopback: brokers reach the controller as
# User:ANONYMOUS there, so that principal must be a super user for the cluster to form.
# Clients of the SASL listener are always authenticated and can never be ANONYMOUS.
CONTROLLER_PRINCIPAL = "User:ANONYMOUS"
# Names and passwords go into `--add-scram 'MECH=[name=..,password=..]'` and into a JAAS
# string in server.properties; keep them to characters none of those formats treats specially.
_SAFE = re.compile(r"[A-Za-z0-9_.@:+/!#$%&*?^~-]+")


@dataclass(frozen=True)
class SecureListener:
    """SCRAM users (name -> password) on the client listener, over TLS unless `tls=False`.
    The first user is the cluster's own: inter-broker traffic and readiness checks use it."""

    users: Mapping[str, str] = field(repr=False)
    tls: bool = True
    mechanism: str = "SCRAM-SHA-512"
    # Kafka's StandardAuthorizer with allow.everyone.if.no.acl.found=false: only the first
    # user (a super user) may do anything until ACLs say otherwise.
    authorizer: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not self.users:
            problems.append("users: at least one SCRAM user is needed")
        if self.mechanism.upper() not in SCRAM_MECHANISMS:
            problems.append(
                f"mechanism: {self.mechanism!r} is not one of {', '.join(SCRAM_MECHANISMS)}"
            )
        for name, password in self.users.items():
            if not _SAFE.fullmatch(name or ""):
                problems.append(f"user {name!r}: use letters, digits and _.@:+/!#$%&*?^~- only")
            if not _SAFE.fullmatch(password or ""):
                problems.append(
                    f"user {name!r}: password is empty or has characters other than letters, digits and _.@:+/!#$%&*?^~-"
                )
        if problems:
            raise LocalKafkaError("SecureListener is invalid: " + "; ".join(problems))
        object.__setattr__(self, "users", dict(self.users))
        object.__setattr__(self, "mechanism", self.mechanism.upper())

    def __repr__(self) -> str:
        return (
            f"SecureListener(users={sorted(self.users)}, tls={self.tls}, "
            f"mechanism={self.mechanism!r}, authorizer={self.authorizer})"
        )

    @property
    def protocol(self) -> str:
        """The client listener's security protocol."""
        return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"

    @property
    def cluster_user(self) -> str:
        """The user the nodes and the cluster's own checks authenticate as."""
        return next(iter(self.users))

    # ---- files -----------------------------------------------------------------------

    def save(self, data_dir: Path) -> None:
        """Write listener.json (0600) into `data_dir/security/` so a restart or `load` can connect."""
        folder = security_dir(data_dir)
        path = folder / LISTENER_FILE
        body = json.dumps(
            {
                "users": self.users,
                "tls": self.tls,
                "mechanism": self.mechanism,
                "authorizer": self.authorizer,
            },
            indent=2,
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, body.encode())
        finally:
            os.close(fd)

    @classmethod
    def load(cls, data_dir: Path) -> "SecureListener | None":
        """The listener recorded in `data_dir/security/`, or None for a plaintext cluster."""
        path = Path(data_dir) / SECURITY_DIR / LISTENER_FILE
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise LocalKafkaError(f"{path} is unreadable ({exc}); remove the data dir") from None
        return cls(
            users=raw["users"],
            tls=bool(raw["tls"]),
            mechanism=raw["mechanism"],
            authorizer=bool(raw.get("authorizer", False)),
        )

    def ensure_certificates(self, data_dir: Path, host: str) -> None:
        """Make the CA and the server certificate once (kept across restarts)."""
        folder = security_dir(data_dir)
        if self.tls and not ((folder / CA_FILE).is_file() and (folder / SERVER_PEM).is_file()):
            make_certificates(folder, host)

    # ---- what the nodes and clients are given ------------------------------------------

    def format_args(self) -> list[str]:
        """`kafka-storage format` arguments that create the SCRAM users."""
        args: list[str] = []
        for name, password in self.users.items():
            args += ["--add-scram", f"{self.mechanism}=[name={name},password={password}]"]
        return args

    def server_properties(
        self, data_dir: Path, host: str, port: int, controller_port: int
    ) -> dict[str, str]:
        """Listener settings of one node (replacing the PLAINTEXT client listener)."""
        user = self.cluster_user
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{user}" password="{self.users[user]}";'
        )
        props = {
            "listeners": f"{LISTENER_NAME}://{host}:{port},CONTROLLER://{host}:{controller_port}",
            "advertised.listeners": f"{LISTENER_NAME}://{host}:{port},CONTROLLER://{host}:{controller_port}",
            "listener.security.protocol.map": f"{LISTENER_NAME}:{self.protocol},CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": LISTENER_NAME,
            "sasl.enabled.mechanisms": self.mechanism,
            "sasl.mechanism.inter.broker.protocol": self.mechanism,
            f"listener.name.{LISTENER_NAME.lower()}.{self.mechanism.lower()}.sasl.jaas.config": jaas,
        }
        if self.authorizer:
            props.update(AUTHORIZER_PROPERTIES)
            props["super.users"] = f"User:{user};{CONTROLLER_PRINCIPAL}"
        if self.tls:
            folder = Path(data_dir) / SECURITY_DIR
            props.update(
                {
                    "ssl.keystore.type": "PEM",
                    "ssl.keystore.location": str(folder / SERVER_PEM),
                    "ssl.truststore.type": "PEM",
                    "ssl.truststore.location": str(folder / CA_FILE),
                }
            )
        return props

    def client_settings(
        self, data_dir: Path, bootstrap_servers: str, user: str | None = None, **overrides: Any
    ) -> KafkaSettings:
        """Connection settings for a client of this listener, as `user` (default: the first)."""
        user = user or self.cluster_user
        if user not in self.users:
            raise LocalKafkaError(
                f"no SCRAM user {user!r} on this cluster (users: {', '.join(sorted(self.users))})"
            )
        values: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "security_protocol": self.protocol,
            "sasl_mechanism": self.mechanism,
            "sasl_username": user,
            "sasl_password": self.users[user],
            "ssl_cafile": str(Path(data_dir) / SECURITY_DIR / CA_FILE) if self.tls else None,
        }
        values.update(overrides)
        return KafkaSettings(**values)


def write_password_file(data_dir: Path, user: str) -> Path:
    """`data_dir/security/<user>.password` (0600) holding the user's password, for
    `export KAFKA_SASL_PASSWORD="$(cat FILE)"`: the password is never printed."""
    listener = SecureListener.load(data_dir)
    if listener is None or user not in listener.users:
        raise LocalKafkaError(f"no SCRAM user {user!r} recorded in {data_dir}")
    path = security_dir(data_dir) / f"{user}.password"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, listener.users[user].encode())
    finally:
        os.close(fd)
    return path


def security_dir(data_dir: Path) -> Path:
    """`data_dir/security`, created private (0700)."""
    folder = Path(data_dir) / SECURITY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def make_certificates(folder: Path, host: str = "127.0.0.1", days: int = 3650) -> tuple[Path, Path]:
    """A self-signed CA (`ca.pem`) and a server key + certificate chain signed by it
    (`server.pem`, unencrypted PKCS#8 key first), with SANs IP:127.0.0.1, DNS:localhost and
    `host`. Returns (ca.pem, server.pem)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:  # pragma: no cover - the dev extra installs it
        raise LocalKafkaError(
            "TLS for the local cluster needs the `cryptography` package (pip install cryptography)"
        ) from None

    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ecap-ops local Kafka CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
    ]
    try:
        ip = ipaddress.ip_address(host)
        if str(ip) != "127.0.0.1":
            sans.append(x509.IPAddress(ip))
    except ValueError:
        if host != "localhost":
            sans.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    ca_path, server_path = folder / CA_FILE, folder / SERVER_PEM
    ca_path.write_bytes(ca_cert.public_bytes(pem))
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(server_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key_pem + cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    finally:
        os.close(fd)
    return ca_path, server_path
