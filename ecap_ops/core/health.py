"""Health: the observed state of a cluster evaluated into findings with severities.

The rules follow the alerting baselines shared by Apache Kafka, Strimzi and Confluent:
offline, under-replicated and under-min-ISR partitions all zero, a KRaft quorum with a
leader, log directories without errors; plus a produce-then-consume canary and disk use.
What is expected in `dev` (replication 1, a one-voter quorum) is not a finding there but
is one in `prod`. Pure: the gateway reads the observation, this module judges it.
"""

from dataclasses import asdict, dataclass, field

from ecap_ops.catalog.units import format_size
from ecap_ops.core.state import ClusterState, is_internal_topic

OK, WARN, CRIT = "OK", "WARN", "CRIT"
_RANK = {OK: 0, WARN: 1, CRIT: 2}


def worst(severities) -> str:
    """The most severe of some severities (OK when there are none)."""
    return max(severities, key=_RANK.__getitem__, default=OK)


@dataclass(frozen=True)
class Finding:
    check: str  # brokers, quorum, partitions, catalog, log_dirs, disk, canary, connection
    severity: str  # OK, WARN or CRIT
    subject: str  # what it is about: "cluster", "broker 2", "transactions-3", ...
    message: str


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
    # topic -> effective min.insync.replicas
    min_isr: dict[str, int] = field(default_factory=dict)
    disks: tuple[DiskInfo, ...] = ()
    # broker -> why its log directories could not be read
    disk_errors: dict[int, str] = field(default_factory=dict)
    # from the catalog plan: topics missing, and one line per drift or refusal
    catalog_missing: tuple[str, ...] = ()
    catalog_drift: tuple[str, ...] = ()
    catalog_error: str | None = None
    canary: CanaryResult | None = None


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


def _parts(items: dict[str, list[int]]) -> str:
    return "; ".join(f"{t}: {', '.join(map(str, ps))}" for t, ps in sorted(items.items()))


def evaluate(
    obs: HealthObservation, thresholds: HealthThresholds = HealthThresholds()
) -> HealthReport:
    """Judge an observation: one finding per check (OK ones too, so the report says what was
    measured), severities fitted to the environment."""
    prod = obs.env != "dev"
    findings: list[Finding] = []
    metrics: dict[str, float | int | None] = {}
    under: dict[str, list[int]] = {}
    under_min: dict[str, list[int]] = {}
    offline: dict[str, list[int]] = {}

    if obs.error is not None or obs.cluster is None:
        findings.append(
            Finding("connection", CRIT, "cluster", f"unreachable: {obs.error or 'no answer'}")
        )
        return HealthReport(
            CRIT,
            obs.env,
            None,
            obs.bootstrap,
            obs.at_ms,
            tuple(findings),
            {"reachable": 0},
            {},
            {},
            {},
        )

    cluster = obs.cluster
    metrics["reachable"] = 1
    live = {b.node_id for b in cluster.brokers}
    metrics["brokers"] = len(live)

    # -- brokers ----------------------------------------------------------------------
    if not live:
        findings.append(Finding("brokers", CRIT, "cluster", "no broker is registered"))
    else:
        named = {r for t in cluster.topics.values() for p in t.partitions for r in p.replicas}
        missing = sorted((named - live) | set(obs.fenced_brokers))
        if missing:
            findings.append(
                Finding(
                    "brokers",
                    WARN,
                    "cluster",
                    f"broker(s) {', '.join(map(str, missing))} hold replicas but are not registered (stopped or fenced); live: {', '.join(map(str, sorted(live)))}",
                )
            )
        elif prod and len(live) < 3:
            findings.append(
                Finding(
                    "brokers",
                    WARN,
                    "cluster",
                    f"{len(live)} broker(s): production needs at least 3 for replication 3",
                )
            )
        else:
            findings.append(
                Finding(
                    "brokers",
                    OK,
                    "cluster",
                    f"{len(live)} broker(s) registered: {', '.join(map(str, sorted(live)))}",
                )
            )
    if cluster.controller_id is None:
        findings.append(Finding("brokers", WARN, "cluster", "the cluster reports no controller"))

    # -- KRaft quorum -----------------------------------------------------------------
    q = obs.quorum
    if q is None:
        findings.append(
            Finding(
                "quorum",
                WARN,
                "quorum",
                f"the KRaft quorum could not be described: {obs.quorum_error or 'no answer'}",
            )
        )
    elif q.leader_id is None:
        findings.append(
            Finding(
                "quorum",
                CRIT,
                "quorum",
                f"no active controller (quorum leader) among voters {[v.node_id for v in q.voters]}",
            )
        )
    else:
        behind = []
        for v in q.voters:
            if v.node_id == q.leader_id:
                continue
            lag = q.high_watermark - v.log_end_offset
            stale = (
                v.last_fetch_ms is not None
                and v.last_fetch_ms >= 0
                and obs.at_ms - v.last_fetch_ms > thresholds.voter_stale_ms
            )
            if lag > thresholds.voter_lag_records or stale:
                ago = (
                    f", last fetch {(obs.at_ms - v.last_fetch_ms) / 1000:.0f} s ago"
                    if v.last_fetch_ms and v.last_fetch_ms > 0
                    else ""
                )
                behind.append(f"voter {v.node_id} {lag:,} records behind{ago}")
        max_lag = max((q.high_watermark - v.log_end_offset for v in q.voters), default=0)
        metrics["quorum_voters"] = len(q.voters)
        metrics["quorum_max_lag"] = max_lag
        n = len(q.voters)
        healthy_voters = n - len(behind)
        if behind and healthy_voters <= n // 2:
            findings.append(
                Finding(
                    "quorum",
                    CRIT,
                    "quorum",
                    f"leader {q.leader_id} has lost its majority: " + "; ".join(behind),
                )
            )
        elif behind:
            findings.append(
                Finding("quorum", WARN, "quorum", f"leader {q.leader_id}; " + "; ".join(behind))
            )
        elif n == 1 and prod:
            findings.append(
                Finding(
                    "quorum",
                    WARN,
                    "quorum",
                    f"one voter (node {q.voters[0].node_id}): the metadata quorum has no fault tolerance; production needs 3",
                )
            )
        elif n % 2 == 0 and n > 0:
            findings.append(
                Finding(
                    "quorum",
                    WARN,
                    "quorum",
                    f"{n} voters: an even quorum tolerates no more failures than {n - 1}",
                )
            )
        else:
            findings.append(
                Finding(
                    "quorum",
                    OK,
                    "quorum",
                    f"leader {q.leader_id}, {n} voter(s), max lag {max_lag:,} records",
                )
            )

    # -- partitions -------------------------------------------------------------------
    rf1 = []
    for name, t in sorted(cluster.topics.items()):
        min_isr = obs.min_isr.get(name, 1)
        for p in t.partitions:
            if p.leader is None:
                offline.setdefault(name, []).append(p.partition)
            if len(p.isr) < len(p.replicas):
                under.setdefault(name, []).append(p.partition)
            if len(p.isr) < min_isr:
                under_min.setdefault(name, []).append(p.partition)
        if t.replication_factor == 1 and not is_internal_topic(name, t.internal):
            rf1.append(name)
    n_under = sum(map(len, under.values()))
    n_under_min = sum(map(len, under_min.values()))
    n_offline = sum(map(len, offline.values()))
    metrics.update(
        under_replicated_partitions=n_under,
        under_min_isr_partitions=n_under_min,
        offline_partitions=n_offline,
    )
    metrics["topics"] = len(cluster.topics)
    if offline:
        findings.append(
            Finding(
                "partitions",
                CRIT,
                "offline",
                f"{n_offline} partition(s) without a leader: {_parts(offline)}",
            )
        )
    if under_min:
        findings.append(
            Finding(
                "partitions",
                CRIT,
                "under min ISR",
                f"{n_under_min} partition(s) below min.insync.replicas (acks=all producers fail): {_parts(under_min)}",
            )
        )
    if under:
        findings.append(
            Finding(
                "partitions",
                WARN,
                "under-replicated",
                f"{n_under} partition(s) with replicas out of sync: {_parts(under)}",
            )
        )
    if not (offline or under or under_min):
        total = sum(t.partition_count for t in cluster.topics.values())
        findings.append(
            Finding(
                "partitions",
                OK,
                "partitions",
                f"{total} partition(s) of {len(cluster.topics)} topic(s): all led and in sync",
            )
        )
    if rf1 and prod:
        shown = ", ".join(rf1[:10]) + (f" and {len(rf1) - 10} more" if len(rf1) > 10 else "")
        findings.append(
            Finding(
                "partitions",
                WARN,
                "replication 1",
                f"{len(rf1)} topic(s) with a single replica lose data with one disk: {shown}",
            )
        )

    # -- catalog ----------------------------------------------------------------------
    if obs.catalog_error:
        findings.append(
            Finding(
                "catalog",
                WARN,
                "catalog",
                f"could not compare with the catalog: {obs.catalog_error}",
            )
        )
    else:
        if obs.catalog_missing:
            findings.append(
                Finding(
                    "catalog",
                    CRIT if prod else WARN,
                    "catalog",
                    f"catalog topic(s) missing: {', '.join(obs.catalog_missing)} (run `ecap-ops create-topics`)",
                )
            )
        if obs.catalog_drift:
            findings.append(
                Finding(
                    "catalog",
                    WARN,
                    "catalog",
                    "differs from the catalog: " + "; ".join(obs.catalog_drift),
                )
            )
        if not obs.catalog_missing and not obs.catalog_drift:
            findings.append(
                Finding("catalog", OK, "catalog", "every catalog topic exists and matches")
            )

    # -- log directories and disk -----------------------------------------------------
    for broker, err in sorted(obs.disk_errors.items()):
        findings.append(
            Finding(
                "log_dirs", WARN, f"broker {broker}", f"log directories could not be read: {err}"
            )
        )
    worst_used = None
    for d in obs.disks:
        subject = f"broker {d.broker} {d.path}"
        if d.error:
            findings.append(
                Finding(
                    "log_dirs",
                    CRIT,
                    subject,
                    f"log directory error {d.error}: its replicas are offline",
                )
            )
            continue
        used = d.used_fraction
        if used is None:
            continue
        worst_used = used if worst_used is None else max(worst_used, used)
        text = f"{used:.0%} used, {format_size(d.usable_bytes or 0)} free of {format_size(d.total_bytes or 0)}"
        if used >= thresholds.disk_crit_fraction:
            findings.append(
                Finding(
                    "disk",
                    CRIT,
                    subject,
                    text + f" (critical at {thresholds.disk_crit_fraction:.0%})",
                )
            )
        elif used >= thresholds.disk_warn_fraction:
            findings.append(
                Finding(
                    "disk",
                    WARN,
                    subject,
                    text + f" (warning at {thresholds.disk_warn_fraction:.0%})",
                )
            )
        else:
            findings.append(Finding("disk", OK, subject, text))
    metrics["disk_used_max_percent"] = (
        round(worst_used * 100, 1) if worst_used is not None else None
    )

    # -- canary -----------------------------------------------------------------------
    c = obs.canary
    if c is not None:
        metrics["canary_latency_ms"] = round(c.latency_ms, 1) if c.latency_ms is not None else None
        metrics["canary_lost"] = c.lost
        if c.error and c.received == 0:
            findings.append(
                Finding("canary", CRIT, c.topic, f"produce-then-consume failed: {c.error}")
            )
        elif c.lost:
            findings.append(
                Finding(
                    "canary",
                    CRIT,
                    c.topic,
                    f"{c.lost} of {c.sent} canary message(s) not consumed back in time"
                    + (f" ({c.error})" if c.error else ""),
                )
            )
        elif c.latency_ms is not None and c.latency_ms > thresholds.canary_warn_ms:
            findings.append(
                Finding(
                    "canary",
                    WARN,
                    c.topic,
                    f"round trip {c.latency_ms:.0f} ms (warning above {thresholds.canary_warn_ms:.0f} ms)",
                )
            )
        else:
            findings.append(
                Finding(
                    "canary",
                    OK,
                    c.topic,
                    f"{c.received}/{c.sent} message(s) back, round trip {c.latency_ms or 0:.0f} ms",
                )
            )

    status = worst(f.severity for f in findings)
    counts = {n: t.partition_count for n, t in cluster.topics.items()}
    return HealthReport(
        status,
        obs.env,
        cluster.cluster_id,
        obs.bootstrap,
        obs.at_ms,
        tuple(findings),
        metrics,
        under,
        under_min,
        offline,
        counts,
    )


def report_rows(report: HealthReport) -> list[list[str]]:
    """Rows (severity, check, subject, message), worst first: the report's table."""
    ordered = sorted(report.findings, key=lambda f: -_RANK[f.severity])
    return [[f.severity, f.check, f.subject, f.message] for f in ordered]


def render_text(report: HealthReport) -> str:
    """A plain-text summary for the alert's body and the CLI's footer."""
    lines = [
        f"{report.status}: cluster {report.cluster_id or '?'} at {report.bootstrap} ({report.env})"
    ]
    for f in report.problems():
        lines.append(f"  [{f.severity}] {f.check} {f.subject}: {f.message}")
    return "\n".join(lines)
