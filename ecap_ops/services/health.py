"""The health check, called by the CLI's `health-check` and the Dagster job `kafka_health_check`.

The CLI alerts on every unhealthy report it is asked to (`health_alert`, one-shot: the CLI
keeps no incident between invocations); the scheduled job judges the incident on change
(`health_notifications`: open, escalate, changed, remind, resolve, by the one incident
model) and its events are notified by the one notification path (a Dagster run per event).
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

from ecap_ops.catalog.model import Catalog
from ecap_ops.core.alerts import Alert
from ecap_ops.core.drift import CatalogDrift, catalog_drift
from ecap_ops.core.health import (
    OK,
    HealthObservation,
    HealthReport,
    HealthThresholds,
    evaluate,
    render_text,
)
from ecap_ops.core.health_incidents import Decision, IncidentPolicy, decide, read_state
from ecap_ops.core.incidents import alert_severity, to_alert
from ecap_ops.core.scope import scope_line, within_scope
from ecap_ops.core.state import CANARY_TOPIC
from ecap_ops.core.topic_checks import CheckOutcome, topic_check_outcomes
from ecap_ops.errors import EcapOpsError, KafkaAuthFailed, KafkaUnavailable
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.health import observe_health


def ensure_canary_topic(gw: KafkaGateway, live_brokers: int) -> None:
    """Create the health canary's topic when it is missing, on the one write path."""
    from ecap_ops.core.changes import make_canary_plan
    from ecap_ops.services.write import execute_plan, wait_for_leaders

    if CANARY_TOPIC in gw.topics([CANARY_TOPIC]):
        return
    cluster_id, _controller, brokers = gw.brokers()
    result = execute_plan(gw, make_canary_plan(cluster_id, len(brokers)), "health-check canary")
    failed = [s for s in result.steps if not s.ok and "TopicAlreadyExists" not in s.detail]
    if failed or result.verify_problems:
        raise EcapOpsError(
            f"creating the canary topic {CANARY_TOPIC}: "
            + "; ".join([s.detail for s in failed] + result.verify_problems)
        )
    wait_for_leaders(gw, [CANARY_TOPIC], timeout_s=10)


@dataclass(frozen=True)
class HealthCheck:
    """One health check: what was read, the catalog drift judged on that same read (None:
    no catalog, an unreachable cluster, or a comparison that failed, which the report says),
    and the report. The topic assets' checks are judged from it too."""

    observation: HealthObservation
    drift: CatalogDrift | None
    report: HealthReport


def compare_with_catalog(
    obs: HealthObservation, catalog: Catalog | None
) -> tuple[HealthObservation, CatalogDrift | None]:
    """The observation with the catalog's drift (missing topics, differences) filled in,
    judged by the core's plan on the cluster the gateway read; and that drift."""
    if catalog is None or obs.cluster is None:
        return obs, None
    if catalog.scope.declared:  # topics outside the catalog's scope are not judged at all
        obs = replace(
            obs,
            cluster=within_scope(catalog, obs.cluster),
            catalog_scope=scope_line(catalog, obs.cluster),
        )
    try:
        drift = catalog_drift(catalog, obs.cluster)
    except Exception as exc:  # the comparison must not stop the rest of the check
        return replace(obs, catalog_error=f"{type(exc).__name__}: {exc}"), None
    return replace(obs, catalog_missing=drift.missing, catalog_drift=drift.lines), drift


def check_health(
    gw: KafkaGateway,
    catalog: Catalog | None,
    env: str | None = None,
    canary: bool = True,
    canary_timeout_s: float = 5.0,
    thresholds: HealthThresholds = HealthThresholds(),
) -> HealthCheck:
    """Observe the cluster once, compare it with the catalog and judge it. An unreachable
    cluster is a CRIT report, not an error."""
    env = env or (catalog.env if catalog else "dev")
    try:
        obs = observe_health(
            gw,
            env,
            canary=canary,
            canary_timeout_s=canary_timeout_s,
            ensure_canary=ensure_canary_topic,
        )
    except (KafkaUnavailable, KafkaAuthFailed) as exc:
        # The cluster went away between two steps of the observation.
        obs = HealthObservation(
            gw.settings.bootstrap_servers, env, int(time.time() * 1000), error=str(exc)
        )
    obs, drift = compare_with_catalog(obs, catalog)
    obs = observe_access(gw, obs, catalog)
    return HealthCheck(obs, drift, evaluate(obs, thresholds))


AUTHORIZER_KEYS = ("authorizer.class.name", "allow.everyone.if.no.acl.found", "super.users")


def observe_access(gw: KafkaGateway, obs, catalog: Catalog | None):
    """The observation with the cluster's access control filled in (one broker's configs,
    the ACLs, and the catalog's access plan). A failure is recorded, never raised."""
    from ecap_ops.core.access import plan_access
    from ecap_ops.core.health_model import AccessObservation
    from ecap_ops.gateway.access import read_access
    from ecap_ops.gateway.activity import broker_config

    if obs.cluster is None or not obs.cluster.brokers:
        return obs
    try:
        broker = obs.cluster.brokers[0].node_id
        cfg = broker_config(gw, broker, AUTHORIZER_KEYS)
        authorizer = cfg.get("authorizer.class.name") or None
        supers = tuple(u.strip() for u in (cfg.get("super.users") or "").split(";") if u.strip())
        allow = (cfg.get("allow.everyone.if.no.acl.found") or "false").lower() == "true"
        drift: tuple[str, ...] = ()
        without: tuple[str, ...] = ()
        if authorizer:
            state = read_access(gw)
            names = catalog.names() if catalog is not None else []
            without = tuple(n for n in names if not _named_by_acl(n, state.acls))
            if catalog is not None and catalog.access.declared:
                plan, _report = plan_access(catalog.access, state, obs.cluster.cluster_id)
                drift = tuple(a.describe() for a in plan.actions)
        declared = catalog is not None and catalog.access.declared
        access = AccessObservation(authorizer, allow, supers, without, drift, declared=declared)
    except EcapOpsError as exc:
        access = AccessObservation(None, None, error=str(exc)[:200])
    return replace(obs, access=access)


def _named_by_acl(topic: str, acls) -> bool:
    for b in acls:
        if b.resource_type != "topic" or b.permission != "allow":
            continue
        if b.pattern == "literal" and b.resource_name in (topic, "*"):
            return True
        if b.pattern == "prefixed" and topic.startswith(b.resource_name):
            return True
    return False


def run_health_check(gw: KafkaGateway, catalog: Catalog | None, *args, **options) -> HealthReport:
    """The report of `check_health` (same arguments): what the CLI and most callers need."""
    return check_health(gw, catalog, *args, **options).report


def judge_topic_checks(
    check: HealthCheck, catalog: Catalog, names: Iterable[str] | None = None
) -> list[CheckOutcome]:
    """The topic assets' checks of the named (default: every) catalog topic, from one
    health check: the same read, the same partition-health rule, the same drift."""
    return topic_check_outcomes(
        catalog, check.report, check.observation.cluster, check.drift, names
    )


def observe_topic_checks(
    gw: KafkaGateway, catalog: Catalog, names: Iterable[str] | None = None
) -> list[CheckOutcome]:
    """Observe the cluster once (the health check without its canary) and judge the named
    topics' checks: what the topic assets' checks run after provisioning."""
    return judge_topic_checks(check_health(gw, catalog, canary=False), catalog, names)


def health_alert(report: HealthReport, run_url: str | None = None) -> Alert | None:
    """The alert an unhealthy report sends (None when it is OK)."""
    if report.status == OK:
        return None
    problems = report.problems()
    head = problems[0] if problems else None
    title = (
        f"Kafka health {report.status} on {report.cluster_id or report.bootstrap} ({report.env})"
    )
    if head is not None:
        title += f": {head.check} {head.subject}"
    return Alert(
        source="health_check",
        severity=alert_severity("open", report.status),
        title=title,
        text=render_text(report),
        fields=report.alert_fields(),
        key=f"health:{report.cluster_id or report.bootstrap}",
        run_url=run_url,
    )


def health_notifications(
    stored,
    report: HealthReport,
    now: float,
    policy: IncidentPolicy = IncidentPolicy(),
    run_url: str | None = None,
) -> tuple[Decision, list[Alert]]:
    """This run's report against the stored incident state (as read back, any shape): the
    decision (new state, events, notes) and each event's alert as it will read (the
    notification run renders it again, with its own link). A state that cannot be read
    counts as no open incident, and the decision's notes say so."""
    previous, why = read_state(stored)
    decision = decide(previous, report, now, policy)
    if why:
        decision = Decision(
            decision.state,
            decision.events,
            (f"previous health incident state ignored: {why}", *decision.notes),
        )
    return decision, [to_alert(e, run_url) for e in decision.events]
