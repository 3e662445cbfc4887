"""The health check's rules, one function per check.

Each takes the observation and the thresholds and returns what it found (`Checked`: its
findings, OK ones too, and the numbers it measured); `core.health.evaluate` runs them in
the order of `CHECKS` on a cluster that answered. What is expected in `dev` (replication
1, a one-voter quorum) is not a finding there but is one in `prod`. Pure.
"""

from ecap_ops.catalog.units import format_size
from ecap_ops.core.health_model import (
    CRIT,
    OK,
    WARN,
    Checked,
    DiskInfo,
    Finding,
    HealthObservation,
    HealthThresholds,
    Quorum,
)
from ecap_ops.core.partition_health import PartitionHealth, partition_health
from ecap_ops.core.state import ClusterState, is_internal_topic

# A catalog topic that differs from the catalog is a warning everywhere; a missing one is
# critical in production (its producers fail) and a warning in dev.
DRIFT_SEVERITY = WARN


def is_prod(env: str) -> bool:
    """Whether an environment is held to production's rules (anything but `dev`)."""
    return env != "dev"


def missing_topic_severity(env: str) -> str:
    return CRIT if is_prod(env) else WARN


def _ids(ids) -> str:
    return ", ".join(map(str, ids))


def _parts(items: dict[str, list[int]]) -> str:
    return "; ".join(f"{t}: {_ids(ps)}" for t, ps in sorted(items.items()))


def _cluster(obs: HealthObservation) -> ClusterState:
    assert obs.cluster is not None, "the checks run on a cluster that answered"
    return obs.cluster


# -- brokers ----------------------------------------------------------------------------


def check_brokers(obs: HealthObservation, th: HealthThresholds) -> Checked:
    """Every broker that holds replicas is registered and unfenced; 3 or more in prod; a
    controller is known."""
    cluster = _cluster(obs)
    live = sorted(b.node_id for b in cluster.brokers)
    if not live:
        found = [Finding("brokers", CRIT, "cluster", "no broker is registered")]
    else:
        named = {r for t in cluster.topics.values() for p in t.partitions for r in p.replicas}
        missing = sorted((named - set(live)) | set(obs.fenced_brokers))
        items: tuple[str, ...] = ()
        if missing:
            sev, text = (
                WARN,
                f"broker(s) {_ids(missing)} hold replicas but are not registered (stopped or fenced); live: {_ids(live)}",
            )
            items = tuple(f"broker {b}" for b in missing)
        elif is_prod(obs.env) and len(live) < 3:
            sev, text = (
                WARN,
                f"{len(live)} broker(s): production needs at least 3 for replication 3",
            )
        else:
            sev, text = OK, f"{len(live)} broker(s) registered: {_ids(live)}"
        found = [Finding("brokers", sev, "cluster", text, items=items)]
    if cluster.controller_id is None:
        found.append(Finding("brokers", WARN, "cluster", "the cluster reports no controller"))
    return Checked(found, {"brokers": len(live)})


# -- the KRaft quorum -------------------------------------------------------------------


def voters_behind(q: Quorum, at_ms: int, th: HealthThresholds) -> list[str]:
    """One line per follower voter too far behind the leader or not heard from lately."""
    behind = []
    for v in q.voters:
        if v.node_id == q.leader_id:
            continue
        lag = q.high_watermark - v.log_end_offset
        stale = (
            v.last_fetch_ms is not None
            and v.last_fetch_ms >= 0
            and at_ms - v.last_fetch_ms > th.voter_stale_ms
        )
        if lag > th.voter_lag_records or stale:
            ago = (
                f", last fetch {(at_ms - v.last_fetch_ms) / 1000:.0f} s ago"
                if v.last_fetch_ms and v.last_fetch_ms > 0
                else ""
            )
            behind.append(f"voter {v.node_id} {lag:,} records behind{ago}")
    return behind


def check_quorum(obs: HealthObservation, th: HealthThresholds) -> Checked:
    """The metadata quorum has a leader and a majority of voters keeping up; an odd number
    of voters, and more than one in prod."""
    q = obs.quorum
    if q is None:
        text = f"the KRaft quorum could not be described: {obs.quorum_error or 'no answer'}"
        return Checked([Finding("quorum", WARN, "quorum", text)], {})
    if q.leader_id is None:
        text = f"no active controller (quorum leader) among voters {[v.node_id for v in q.voters]}"
        return Checked([Finding("quorum", CRIT, "quorum", text)], {})
    behind = voters_behind(q, obs.at_ms, th)
    max_lag = max((q.high_watermark - v.log_end_offset for v in q.voters), default=0)
    n = len(q.voters)
    if behind and n - len(behind) <= n // 2:
        sev, text = CRIT, f"leader {q.leader_id} has lost its majority: " + "; ".join(behind)
    elif behind:
        sev, text = WARN, f"leader {q.leader_id}; " + "; ".join(behind)
    elif n == 1 and is_prod(obs.env):
        sev, text = (
            WARN,
            f"one voter (node {q.voters[0].node_id}): the metadata quorum has no fault tolerance; production needs 3",
        )
    elif n % 2 == 0 and n > 0:
        sev, text = WARN, f"{n} voters: an even quorum tolerates no more failures than {n - 1}"
    else:
        sev, text = OK, f"leader {q.leader_id}, {n} voter(s), max lag {max_lag:,} records"
    metrics = {"quorum_voters": n, "quorum_max_lag": max_lag}
    return Checked([Finding("quorum", sev, "quorum", text)], metrics)


# -- partitions -------------------------------------------------------------------------


def partition_findings(health: PartitionHealth, cluster: ClusterState) -> list[Finding]:
    """The findings of the partition-health rule: offline and under min ISR are critical,
    under-replicated a warning, else one OK line."""
    n = health.counts()
    found = []
    if health.offline:
        text = f"{n['offline_partitions']} partition(s) without a leader: {_parts(health.offline)}"
        found.append(Finding("partitions", CRIT, "offline", text))
    if health.under_min_isr:
        text = f"{n['under_min_isr_partitions']} partition(s) below min.insync.replicas (acks=all producers fail): {_parts(health.under_min_isr)}"
        found.append(Finding("partitions", CRIT, "under min ISR", text))
    if health.under_replicated:
        text = f"{n['under_replicated_partitions']} partition(s) with replicas out of sync: {_parts(health.under_replicated)}"
        found.append(Finding("partitions", WARN, "under-replicated", text))
    if health.healthy:
        total = sum(t.partition_count for t in cluster.topics.values())
        text = f"{total} partition(s) of {len(cluster.topics)} topic(s): all led and in sync"
        found.append(Finding("partitions", OK, "partitions", text))
    return found


def single_replica_findings(cluster: ClusterState, env: str) -> list[Finding]:
    """In prod, the topics (not Kafka's own) with one replica: one disk loses their data."""
    rf1 = [
        n
        for n, t in sorted(cluster.topics.items())
        if t.replication_factor == 1 and not is_internal_topic(n, t.internal)
    ]
    if not rf1 or not is_prod(env):
        return []
    shown = ", ".join(rf1[:10]) + (f" and {len(rf1) - 10} more" if len(rf1) > 10 else "")
    text = f"{len(rf1)} topic(s) with a single replica lose data with one disk: {shown}"
    return [Finding("partitions", WARN, "replication 1", text, items=tuple(rf1))]


def check_partitions(obs: HealthObservation, th: HealthThresholds) -> Checked:
    """Partitions by the one partition-health rule, and single-replica topics in prod."""
    cluster = _cluster(obs)
    health = partition_health(cluster.topics, obs.broker_min_isr)
    found = partition_findings(health, cluster) + single_replica_findings(cluster, obs.env)
    metrics = {**health.counts(), "topics": len(cluster.topics)}
    return Checked(found, metrics, health)


# -- the catalog ------------------------------------------------------------------------


def check_catalog(obs: HealthObservation, th: HealthThresholds) -> Checked:
    """Every catalog topic exists and matches the catalog (from the drift the health
    service worked out on the same read)."""
    if obs.catalog_error:
        text = f"could not compare with the catalog: {obs.catalog_error}"
        return Checked([Finding("catalog", WARN, "catalog", text)], {})
    found = []
    if obs.catalog_missing:
        text = f"catalog topic(s) missing: {', '.join(obs.catalog_missing)} (run `ecap-ops create-topics`)"
        missing = tuple(f"missing {t}" for t in obs.catalog_missing)
        found.append(
            Finding("catalog", missing_topic_severity(obs.env), "catalog", text, items=missing)
        )
    if obs.catalog_drift:
        text = "differs from the catalog: " + "; ".join(obs.catalog_drift)
        drift = tuple(f"drift {d}" for d in obs.catalog_drift)
        found.append(Finding("catalog", DRIFT_SEVERITY, "catalog", text, items=drift))
    if not found:
        found.append(Finding("catalog", OK, "catalog", "every catalog topic exists and matches"))
    if obs.catalog_scope:
        # What the whole check covered: topics outside the catalog's scope were left out.
        found.append(Finding("catalog", OK, "scope", obs.catalog_scope))
    return Checked(found, {})


# -- log directories and disk -----------------------------------------------------------


def _dir_subject(d: DiskInfo) -> str:
    return f"broker {d.broker} {d.path}"


def check_log_dirs(obs: HealthObservation, th: HealthThresholds) -> Checked:
    """Every broker's log directories could be read, and none reports an error (its
    replicas are offline)."""
    found = [
        Finding("log_dirs", WARN, f"broker {b}", f"log directories could not be read: {err}")
        for b, err in sorted(obs.disk_errors.items())
    ]
    found += [
        Finding(
            "log_dirs",
            CRIT,
            _dir_subject(d),
            f"log directory error {d.error}: its replicas are offline",
        )
        for d in obs.disks
        if d.error
    ]
    return Checked(found, {})


def check_disk(obs: HealthObservation, th: HealthThresholds) -> Checked:
    """Each readable log directory's use against the warning and critical fractions."""
    found, used_max = [], None
    for d in obs.disks:
        used = d.used_fraction
        if d.error or used is None:
            continue
        used_max = used if used_max is None else max(used_max, used)
        text = f"{used:.0%} used, {format_size(d.usable_bytes or 0)} free of {format_size(d.total_bytes or 0)}"
        if used >= th.disk_crit_fraction:
            sev, text = CRIT, text + f" (critical at {th.disk_crit_fraction:.0%})"
        elif used >= th.disk_warn_fraction:
            sev, text = WARN, text + f" (warning at {th.disk_warn_fraction:.0%})"
        else:
            sev = OK
        found.append(Finding("disk", sev, _dir_subject(d), text))
    percent = round(used_max * 100, 1) if used_max is not None else None
    return Checked(found, {"disk_used_max_percent": percent})


# -- the canary -------------------------------------------------------------------------


def check_canary(obs: HealthObservation, th: HealthThresholds) -> Checked:
    """Messages produced (acks=all) came back, and fast enough. No canary: no finding."""
    c = obs.canary
    if c is None:
        return Checked([], {})
    metrics = {
        "canary_latency_ms": round(c.latency_ms, 1) if c.latency_ms is not None else None,
        "canary_lost": c.lost,
    }
    if c.error and c.received == 0:
        sev, text = CRIT, f"produce-then-consume failed: {c.error}"
    elif c.lost:
        sev, text = (
            CRIT,
            f"{c.lost} of {c.sent} canary message(s) not consumed back in time"
            + (f" ({c.error})" if c.error else ""),
        )
    elif c.latency_ms is not None and c.latency_ms > th.canary_warn_ms:
        sev, text = (
            WARN,
            f"round trip {c.latency_ms:.0f} ms (warning above {th.canary_warn_ms:.0f} ms)",
        )
    else:
        sev, text = (
            OK,
            f"{c.received}/{c.sent} message(s) back, round trip {c.latency_ms or 0:.0f} ms",
        )
    return Checked([Finding("canary", sev, c.topic, text)], metrics)


# -- access control ----------------------------------------------------------------------


def check_access(obs: HealthObservation, th: HealthThresholds) -> Checked:
    """No authorizer (in prod: CRIT when the catalog declares access, which the cluster then
    does not enforce; WARN when it declares none), allow.everyone.if.no.acl.found=true,
    catalog topics no ACL names (prod), super users (listed), and drift from the catalog's
    access."""
    a = obs.access
    if a is None:
        return Checked([], {})
    prod = is_prod(obs.env)
    if a.error:
        return Checked([Finding("access", WARN, "access", f"could not be read: {a.error}")], {})
    found = []
    if not a.authorizer:
        found.append(
            Finding(
                "access",
                (CRIT if a.declared else WARN) if prod else OK,
                "authorizer",
                (
                    "no authorizer: every client may do everything"
                    + (", whatever the catalog's access declares" if a.declared else "")
                    + " (set authorizer.class.name; docs/security.md)"
                )
                if prod
                else "no authorizer (fine for development; production needs one)",
            )
        )
    else:
        if a.allow_everyone:
            found.append(
                Finding(
                    "access",
                    CRIT if prod else WARN,
                    "allow.everyone.if.no.acl.found",
                    "is true: any resource without an ACL is open to every user",
                )
            )
        if a.super_users:
            found.append(
                Finding(
                    "access",
                    OK,
                    "super users",
                    f"{len(a.super_users)} super user(s) bypass every ACL: {', '.join(a.super_users[:10])}",
                    items=tuple(a.super_users),
                )
            )
        if a.topics_without_acl and prod:
            found.append(
                Finding(
                    "access",
                    WARN,
                    "topics without ACL",
                    f"{len(a.topics_without_acl)} catalog topic(s) have no ACL: "
                    + ", ".join(a.topics_without_acl[:10]),
                    items=tuple(a.topics_without_acl),
                )
            )
        if a.drift:
            found.append(
                Finding(
                    "access",
                    DRIFT_SEVERITY,
                    "access drift",
                    f"{len(a.drift)} access change(s) from the catalog: " + "; ".join(a.drift[:5]),
                    items=tuple(a.drift),
                )
            )
    return Checked(found, {"access_drift": len(a.drift)})


# The checks of a cluster that answered, in the order the report lists them.
CHECKS = (
    check_brokers,
    check_quorum,
    check_partitions,
    check_catalog,
    check_log_dirs,
    check_disk,
    check_canary,
)
# Checks added after the report's first layout, run after CHECKS in this order.
LATER_CHECKS = (check_access,)
