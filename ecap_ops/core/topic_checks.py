"""The topic assets' checks (`matches_catalog`, `availability`, `replication`), judged from
one health check: its report (partitions by the one partition-health rule) and the catalog
drift made from the same read of the cluster.

The same outcome whether the checks run after provisioning or inside every run of the
health job; the Dagster definitions only turn it into check events. Pure.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from ecap_ops.catalog.model import Catalog, TopicSpec
from ecap_ops.core.drift import CatalogDrift, drift_rows
from ecap_ops.core.health_checks import DRIFT_SEVERITY, missing_topic_severity
from ecap_ops.core.health_model import CRIT, HealthReport
from ecap_ops.core.state import ClusterState

CHECK_NAMES = ("matches_catalog", "availability", "replication")
DRIFT_HEADERS = ["setting", "expected", "actual"]


@dataclass(frozen=True)
class CheckOutcome:
    """One topic check's result, before it is a Dagster event."""

    topic: str
    check: str  # one of CHECK_NAMES
    passed: bool
    severity: str  # WARN or ERROR: how bad a failure is (the health finding's CRIT is ERROR)
    description: str
    # name -> (kind, value); kind is int, text, json, or table ((headers, rows); none: "none")
    metadata: dict[str, tuple[str, object]] = field(default_factory=dict)


def check_severity(health_severity: str) -> str:
    """A health severity as a check severity: CRIT is ERROR, anything else WARN."""
    return "ERROR" if health_severity == CRIT else "WARN"


_SOURCE = {"source": ("text", "health observation")}


def matches_catalog(
    spec: TopicSpec, env: str, report: HealthReport, cluster: ClusterState | None, drift
) -> CheckOutcome:
    """The topic exists with exactly the catalog's partitions, replication and overrides."""
    name = spec.name
    if cluster is None or drift is None:
        why = (
            "the cluster did not answer"
            if report.cluster_id is None
            else "the cluster could not be compared with the catalog"
        )
        return CheckOutcome(name, "matches_catalog", False, "ERROR", why)
    topic = cluster.topics.get(name)
    rows = drift_rows(spec, topic, drift.plan.for_topic(name))
    if topic is None:
        sev = missing_topic_severity(env)
        desc = f"{name} does not exist (health check: catalog topic missing)"
    else:
        sev = DRIFT_SEVERITY
        desc = (
            f"{name} matches the catalog"
            if not rows
            else f"{name} differs from the catalog in {len(rows)} setting(s): "
            + "; ".join(f"{r[0]} expected {r[1]}, actual {r[2]}" for r in rows[:5])
        )
    expected = {
        "partitions": spec.partitions,
        "replication_factor": spec.replication_factor,
        "configs": spec.configs,
    }
    actual = (
        None
        if topic is None
        else {
            "partitions": topic.partition_count,
            "replication_factor": topic.replication_factor,
            "configs": topic.overrides,
        }
    )
    metadata = {
        "drift": ("table", (DRIFT_HEADERS, rows)),
        "drift_count": ("int", len(rows)),
        "expected": ("json", expected),
        "actual": ("json", actual),
        **_SOURCE,
    }
    return CheckOutcome(name, "matches_catalog", not rows, check_severity(sev), desc, metadata)


def partition_checks(name: str, report: HealthReport) -> list[CheckOutcome]:
    """`availability` (every partition led) and `replication` (all in sync, and at least
    min.insync.replicas) of one topic, from the report's partition-health lists."""
    partitions = report.topic_partitions.get(name)
    if partitions is None:
        why = (
            "the cluster did not answer" if report.cluster_id is None else f"{name} does not exist"
        )
        return [
            CheckOutcome(name, check, False, "ERROR", why, dict(_SOURCE))
            for check in ("availability", "replication")
        ]
    offline = report.offline.get(name, [])
    under = report.under_replicated.get(name, [])
    under_min = report.under_min_isr.get(name, [])
    availability = CheckOutcome(
        name,
        "availability",
        not offline,
        "ERROR",
        "all partitions have a leader"
        if not offline
        else f"offline partitions (no leader): {offline}",
        {
            "offline_partitions": ("int", len(offline)),
            "partitions": ("int", partitions),
            **_SOURCE,
        },
    )
    replication = CheckOutcome(
        name,
        "replication",
        not under and not under_min,
        "ERROR" if under_min else "WARN",
        "fully replicated"
        if not under and not under_min
        else f"under-replicated partitions: {under}"
        + (f"; below min.insync.replicas: {under_min}" if under_min else ""),
        {
            "under_replicated": ("int", len(under)),
            "under_min_isr": ("int", len(under_min)),
            **_SOURCE,
        },
    )
    return [availability, replication]


def topic_check_outcomes(
    catalog: Catalog,
    report: HealthReport,
    cluster: ClusterState | None = None,
    drift: CatalogDrift | None = None,
    names: Iterable[str] | None = None,
) -> list[CheckOutcome]:
    """The named (default: every) catalog topic's three checks. `cluster` and `drift`
    None: the cluster could not be compared with the catalog (matches_catalog fails and
    says why)."""
    out: list[CheckOutcome] = []
    for name in list(names) if names is not None else catalog.names():
        out.append(matches_catalog(catalog.get(name), catalog.env, report, cluster, drift))
        out += partition_checks(name, report)
    return out
