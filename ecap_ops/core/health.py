"""Health: the observed state of a cluster evaluated into findings with severities.

The rules follow the alerting baselines shared by Apache Kafka, Strimzi and Confluent:
offline, under-replicated and under-min-ISR partitions all zero, a KRaft quorum with a
leader, log directories without errors; plus a produce-then-consume canary and disk use.
Each check is one function of `core.health_checks`; `evaluate` runs them and composes the
report. The types live in `core.health_model` and are importable from here. Pure: the
gateway reads the observation, the health service adds the catalog drift, this judges it.
"""

from ecap_ops.core.health_checks import CHECKS, LATER_CHECKS
from ecap_ops.core.health_model import (
    CRIT,
    OK,
    WARN,
    CanaryResult,
    Checked,
    DiskInfo,
    Finding,
    HealthObservation,
    HealthReport,
    HealthThresholds,
    Quorum,
    QuorumVoter,
    worst,
    worst_first,
)

__all__ = [
    "CRIT",
    "OK",
    "WARN",
    "CanaryResult",
    "Checked",
    "DiskInfo",
    "Finding",
    "HealthObservation",
    "HealthReport",
    "HealthThresholds",
    "Quorum",
    "QuorumVoter",
    "evaluate",
    "render_text",
    "report_rows",
    "worst",
    "worst_first",
]


def unreachable_report(obs: HealthObservation) -> HealthReport:
    """The report of a cluster that did not answer: one critical finding."""
    finding = Finding("connection", CRIT, "cluster", f"unreachable: {obs.error or 'no answer'}")
    return HealthReport(
        CRIT, obs.env, None, obs.bootstrap, obs.at_ms, (finding,), {"reachable": 0}, {}, {}, {}
    )


def evaluate(
    obs: HealthObservation, thresholds: HealthThresholds = HealthThresholds()
) -> HealthReport:
    """Judge an observation: one finding per check (OK ones too, so the report says what was
    measured), severities fitted to the environment."""
    if obs.error is not None or obs.cluster is None:
        return unreachable_report(obs)
    cluster = obs.cluster
    results: list[Checked] = [check(obs, thresholds) for check in CHECKS + LATER_CHECKS]
    findings = tuple(f for r in results for f in r.findings)
    metrics: dict[str, float | int | None] = {"reachable": 1}
    for r in results:
        metrics.update(r.metrics)
    (partitions,) = [r.partitions for r in results if r.partitions is not None]
    return HealthReport(
        worst(f.severity for f in findings),
        obs.env,
        cluster.cluster_id,
        obs.bootstrap,
        obs.at_ms,
        findings,
        metrics,
        partitions.under_replicated,
        partitions.under_min_isr,
        partitions.offline,
        {n: t.partition_count for n, t in cluster.topics.items()},
    )


def report_rows(report: HealthReport) -> list[list[str]]:
    """Rows (severity, check, subject, message), worst first: the report's table."""
    return [[f.severity, f.check, f.subject, f.message] for f in worst_first(report.findings)]


def render_text(report: HealthReport) -> str:
    """A plain-text summary for the alert's body and the CLI's footer."""
    lines = [
        f"{report.status}: cluster {report.cluster_id or '?'} at {report.bootstrap} ({report.env})"
    ]
    for f in report.problems():
        lines.append(f"  [{f.severity}] {f.check} {f.subject}: {f.message}")
    return "\n".join(lines)
