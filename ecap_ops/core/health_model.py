"""Health's vocabulary: what the health check observed, its findings and its report.

The types the gateway fills (`HealthObservation` and its parts), the findings the checks
in `core.health_checks` write, and the `HealthReport` that `core.health.evaluate` composes.
Pure.
"""

from dataclasses import asdict, dataclass, field
from typing import NamedTuple

from ecap_ops.core.partition_health import PartitionHealth
from ecap_ops.core.state import ClusterState

OK, WARN, CRIT = "OK", "WARN", "CRIT"
_RANK = {OK: 0, WARN: 1, CRIT: 2}


def worst(severities) -> str:
    """The most severe of some severities (OK when there are none)."""
    return max(severities, key=_RANK.__getitem__, default=OK)


def worst_first(findings) -> list:
    """Findings ordered worst first (CRIT, WARN, OK), each severity in its original order."""
    return sorted(findings, key=lambda f: -_RANK[f.severity])


@dataclass(frozen=True)
class Finding:
    check: str  # brokers, quorum, partitions, catalog, log_dirs, disk, canary, connection
    severity: str  # OK, WARN or CRIT
    subject: str  # what it is about: "cluster", "broker 2", "transactions-3", ...
    message: str
    # The things the finding is about, one per problem people are told about separately
    # (broker ids, topic names, drift lines): with the check and subject, the finding's
    # identity across runs (`core.health_incidents`). Empty: the check and subject alone.
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuorumVoter:
    node_id: int
    log_end_offset: int
    last_fetch_ms: int | None  # when the leader last heard from it (None: unknown)


@dataclass(frozen=True)
class Quorum:
    leader_id: int | None
    high_watermark: int
    voters: tuple[QuorumVoter, ...]
    observers: tuple[int, ...] = ()


@dataclass(frozen=True)
class DiskInfo:
    broker: int
    path: str
    error: str | None
    total_bytes: int | None
    usable_bytes: int | None

    @property
    def used_fraction(self) -> float | None:
        if not self.total_bytes or self.usable_bytes is None:
            return None
        return 1.0 - self.usable_bytes / self.total_bytes


@dataclass(frozen=True)
class CanaryResult:
    topic: str
    sent: int
    received: int
    latency_ms: float | None  # the slowest round trip of the messages that came back
    error: str | None = None

    @property
    def lost(self) -> int:
        return max(0, self.sent - self.received)


@dataclass(frozen=True)
class HealthObservation:
    """Everything the health check looked at. `error` set means the cluster did not answer."""

    bootstrap: str
    env: str
    at_ms: int
    error: str | None = None
    cluster: ClusterState | None = None
    fenced_brokers: tuple[int, ...] = ()
    quorum: Quorum | None = None
    quorum_error: str | None = None
    # The brokers' min.insync.replicas, read once (None: not read, Kafka's default applies);
    # a topic's own override wins (`core.partition_health.effective_min_isr`).
    broker_min_isr: int | None = None
    disks: tuple[DiskInfo, ...] = ()
    # broker -> why its log directories could not be read
    disk_errors: dict[int, str] = field(default_factory=dict)
    # From the catalog plan made on `cluster` (`core.drift.catalog_drift`, by the health
    # service): topics missing, and one line per drift or refusal.
    catalog_missing: tuple[str, ...] = ()
    catalog_drift: tuple[str, ...] = ()
    catalog_error: str | None = None
    # The catalog's scope in one line when it declares one (`core.scope.scope_line`): the
    # observation's topics are those within it (plus Kafka's own and the canary).
    catalog_scope: str | None = None
    canary: CanaryResult | None = None
    # The cluster's access (services.health fills it in; None: not read).
    access: "AccessObservation | None" = None


@dataclass(frozen=True)
class AccessObservation:
    """What the health check saw of the cluster's access control."""

    authorizer: str | None  # authorizer.class.name ("" or None: none)
    allow_everyone: bool | None  # allow.everyone.if.no.acl.found
    super_users: tuple[str, ...] = ()
    topics_without_acl: tuple[str, ...] = ()  # catalog topics no binding names
    drift: tuple[str, ...] = ()  # the catalog's access plan, one line per change
    error: str | None = None
    declared: bool = False  # the catalog declares access (principals, ACLs, users, quotas)


@dataclass(frozen=True)
class HealthThresholds:
    disk_warn_fraction: float = 0.80
    disk_crit_fraction: float = 0.90
    canary_warn_ms: float = 1000.0
    # A voter the leader has not heard from for this long, or this many records behind.
    voter_stale_ms: int = 15_000
    voter_lag_records: int = 1000


@dataclass(frozen=True)
class HealthReport:
    status: str
    env: str
    cluster_id: str | None
    bootstrap: str
    at_ms: int
    findings: tuple[Finding, ...]
    metrics: dict[str, float | int | None]
    # topic -> partitions, per problem kind, for the partition lists people act on
    under_replicated: dict[str, list[int]]
    under_min_isr: dict[str, list[int]]
    offline: dict[str, list[int]]
    # topic -> partition count, of every topic seen
    topic_partitions: dict[str, int] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.status != CRIT

    def exit_code(self, strict: bool = False) -> int:
        """0 healthy (or only warnings, unless strict); 1 otherwise."""
        if self.status == CRIT or (strict and self.status == WARN):
            return 1
        return 0

    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity != OK]

    def alert_fields(self) -> dict:
        """What an alert about this report carries for machines: status, problems, metrics."""
        return {
            "status": self.status,
            "cluster_id": self.cluster_id,
            "findings": [
                {
                    "severity": f.severity,
                    "check": f.check,
                    "subject": f.subject,
                    "message": f.message,
                }
                for f in self.problems()
            ],
            "metrics": self.metrics,
        }

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "env": self.env,
            "cluster_id": self.cluster_id,
            "bootstrap": self.bootstrap,
            "at_ms": self.at_ms,
            "findings": [asdict(f) for f in self.findings],
            "metrics": dict(self.metrics),
            "under_replicated": self.under_replicated,
            "under_min_isr": self.under_min_isr,
            "offline": self.offline,
        }


class Checked(NamedTuple):
    """What one check found: its findings and the numbers it measured (and, for the
    partitions check, the partitions per problem kind)."""

    findings: list[Finding]
    metrics: dict[str, float | int | None]
    partitions: PartitionHealth | None = None
