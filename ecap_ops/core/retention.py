"""Retention audit: configs, sizes and record ages of every topic -> one report row a topic,
plus a disk forecast.

Kafka deletes whole closed segments: a record becomes eligible when the newest record of
its segment is older than retention.ms, and the active segment closes only after
segment.ms (or segment.bytes). So data is flagged "older than retention" only beyond
retention.ms + segment.ms + the audit's own interval (and the broker's retention check
interval). Compacted topics keep the latest record of each key whatever its age; their
row explains that and checks the compaction settings instead. Pure.
"""

from dataclasses import dataclass

from ecap_ops.catalog.model import Catalog, TopicSpec
from ecap_ops.catalog.units import format_duration_ms, format_size
from ecap_ops.core.retention_model import (
    AUDITED_KEYS,
    DAY_MS,
    DEFAULT_CHECK_INTERVAL_MS,
    KAFKA_DEFAULTS,
    AuditRow,
    DefaultPolicy,
    DiskForecast,
    RetentionReport,
    TopicObservation,
)
from ecap_ops.core.state import is_internal_topic


def _int(v: str | None, default: int) -> int:
    try:
        return int(v) if v is not None else default
    except ValueError:
        return default


def _eff(obs: TopicObservation, key: str) -> str:
    return obs.configs.get(key, KAFKA_DEFAULTS.get(key, ""))


def _dur(ms: int) -> str:
    return "infinite" if ms < 0 else format_duration_ms(ms)


def _compaction_notes(
    obs: TopicObservation, retention_ms: int, policy: set[str]
) -> tuple[list[str], list[str]]:
    """What retention means on a compacted topic, and whether compaction is configured sanely."""
    flags, notes = [], []
    if "delete" in policy:
        notes.append(
            f"compact,delete: latest value per key kept, but records older than {_dur(retention_ms)} are deleted too, latest values included"
        )
    else:
        notes.append(
            f"compacted: the latest record of every key is kept however old; retention.ms ({_dur(retention_ms)}) deletes nothing; "
            f"tombstones stay readable for delete.retention.ms ({_dur(_int(_eff(obs, 'delete.retention.ms'), DAY_MS))})"
        )
    ratio = float(_eff(obs, "min.cleanable.dirty.ratio") or 0.5)
    if not 0 < ratio < 1:
        flags.append(
            f"min.cleanable.dirty.ratio {ratio} outside (0, 1): compaction never or constantly runs"
        )
    elif ratio > 0.9:
        flags.append(
            f"min.cleanable.dirty.ratio {ratio}: compaction waits until over 90% of the log is stale"
        )
    drm = _int(_eff(obs, "delete.retention.ms"), DAY_MS)
    if 0 <= drm < 60_000:
        flags.append(
            f"delete.retention.ms {_dur(drm)}: consumers that are a minute behind miss deletes (tombstones)"
        )
    lo = _int(_eff(obs, "min.compaction.lag.ms"), 0)
    hi = _int(_eff(obs, "max.compaction.lag.ms"), 2**63 - 1)
    if hi < lo:
        flags.append(f"max.compaction.lag.ms ({_dur(hi)}) < min.compaction.lag.ms ({_dur(lo)})")
    seg = _int(_eff(obs, "segment.ms"), 7 * DAY_MS)
    if seg > 7 * DAY_MS and hi > seg:
        notes.append(
            f"segment.ms {_dur(seg)}: the active segment is never compacted, so a quiet topic keeps old values that long"
        )
    return flags, notes


@dataclass(frozen=True)
class _Settings:
    """A topic's effective retention settings, as the rules below read them."""

    retention_ms: int
    retention_bytes: int
    segment_ms: int
    cleanup: str
    policy: frozenset[str]

    @property
    def deletes(self) -> bool:
        return "delete" in self.policy

    @property
    def compacts(self) -> bool:
        return "compact" in self.policy


def _settings(obs: TopicObservation) -> _Settings:
    cleanup = _eff(obs, "cleanup.policy") or "delete"
    return _Settings(
        retention_ms=_int(_eff(obs, "retention.ms"), 7 * DAY_MS),
        retention_bytes=_int(_eff(obs, "retention.bytes"), -1),
        segment_ms=_int(_eff(obs, "segment.ms"), 7 * DAY_MS),
        cleanup=cleanup,
        policy=frozenset(p.strip() for p in cleanup.split(",") if p.strip()),
    )


def _catalog_flags(obs: TopicObservation, spec: TopicSpec, st: _Settings) -> list[str]:
    """Each audited key that differs from the catalog, or is set on the topic while the
    catalog leaves it to the default."""
    flags = []
    for key in AUDITED_KEYS:
        want = spec.configs.get(key)
        have = _eff(obs, key)
        if want is None:
            if key in obs.overrides:
                flags.append(f"{key}={have} set on the topic but not in the catalog")
            continue
        if key == "cleanup.policy":
            same = {p.strip() for p in want.split(",")} == st.policy
        else:
            same = _int(want, -2) == _int(have, -3)
        if not same:
            shown = (
                (lambda v: f"{v} ({_dur(_int(v, 0))})") if key.endswith(".ms") else (lambda v: v)
            )
            flags.append(f"{key} is {shown(have)}, the catalog says {shown(want)}")
    return flags


def _default_policy_flags(st: _Settings, policy: DefaultPolicy) -> list[str]:
    """A topic outside the catalog (not Kafka's own) against the default policy."""
    flags = []
    if st.cleanup != policy.cleanup_policy and not st.compacts:
        flags.append(f"cleanup.policy {st.cleanup}, the default policy is {policy.cleanup_policy}")
    if st.deletes and st.retention_ms > policy.max_retention_ms:
        flags.append(
            f"retention.ms {_dur(st.retention_ms)} above the default policy's maximum {_dur(policy.max_retention_ms)}"
        )
    return flags


def stale_grace_ms(retention_ms: int, segment_ms: int, interval_ms: int, check_ms: int) -> int:
    """How old the oldest record may be before it counts as older than retention: Kafka
    deletes a closed segment once its newest record is past retention.ms, the active
    segment closes after segment.ms, the broker looks every check interval, and the
    audit itself runs every `interval_ms`."""
    return retention_ms + segment_ms + interval_ms + check_ms


def _age_flags_and_notes(
    obs: TopicObservation, st: _Settings, now_ms: int, interval_ms: int, check_ms: int
) -> tuple[list[str], list[str]]:
    """Data older than retention (beyond the grace), and records from the future."""
    flags, notes = [], []
    if st.deletes and st.retention_ms >= 0 and obs.oldest_ms is not None:
        age = now_ms - obs.oldest_ms
        if age > stale_grace_ms(st.retention_ms, st.segment_ms, interval_ms, check_ms):
            flags.append(
                f"data older than retention: oldest record {_dur(age)} old, beyond retention {_dur(st.retention_ms)} + segment.ms {_dur(st.segment_ms)} + audit interval {_dur(interval_ms)}"
            )
    if (
        obs.oldest_ms is not None
        and obs.newest_ms is not None
        and obs.newest_ms > now_ms + 3_600_000
    ):
        notes.append(
            f"newest record timestamp is {_dur(obs.newest_ms - now_ms)} in the future: producer clocks or CreateTime misuse"
        )
    return flags, notes


def _steady_state_bytes(
    obs: TopicObservation, spec: TopicSpec | None, st: _Settings, mean: float | None
) -> int | None:
    """The topic's size at full retention, at the catalog's expected volume (delete-only
    topics with a time limit and a measured mean record size)."""
    if (
        spec is None
        or not spec.expected_volume
        or mean is None
        or not st.deletes
        or st.retention_ms < 0
        or st.compacts
    ):
        return None
    steady = int(
        spec.expected_volume.max_per_hour
        * st.retention_ms
        / 3_600_000
        * mean
        * obs.replication_factor
    )
    if st.retention_bytes >= 0:
        steady = min(steady, st.retention_bytes * obs.partitions * obs.replication_factor)
    return steady


def audit_topic(
    obs: TopicObservation,
    spec: TopicSpec | None,
    now_ms: int,
    interval_ms: int,
    policy: DefaultPolicy = DefaultPolicy(),
    check_interval_ms: int = DEFAULT_CHECK_INTERVAL_MS,
) -> AuditRow:
    """One topic's row: its retention settings against the catalog (or the default policy)
    and against the real age and size of its data. `check_interval_ms`: the brokers'
    log.retention.check.interval.ms."""
    internal = is_internal_topic(obs.name, obs.internal)
    st = _settings(obs)
    if spec is not None:
        flags = _catalog_flags(obs, spec, st)
        expected_ms: int | None = spec.retention_ms
    else:
        flags = [] if internal else _default_policy_flags(st, policy)
        expected_ms = policy.retention_ms
    mismatch = bool(flags)
    notes: list[str] = []
    infinite = st.deletes and st.retention_ms < 0 and st.retention_bytes < 0
    if infinite and not (internal or (spec is None and policy.allow_infinite)):
        flags.append(
            "infinite retention: retention.ms=-1 and retention.bytes=-1, the topic grows without bound"
        )
    elif st.deletes and st.retention_ms < 0:
        notes.append(
            f"no time limit; retention.bytes {format_size(st.retention_bytes)} per partition bounds it"
        )
    age_flags, age_notes = _age_flags_and_notes(obs, st, now_ms, interval_ms, check_interval_ms)
    flags += age_flags
    notes += age_notes
    if st.compacts:
        f2, n2 = _compaction_notes(obs, st.retention_ms, set(st.policy))
        flags += f2
        notes += n2
    if st.retention_bytes >= 0 and st.deletes:
        notes.append(
            f"retention.bytes {format_size(st.retention_bytes)} per partition also limits size"
        )
    mean = None
    if obs.bytes_on_disk is not None and obs.records and obs.replication_factor:
        mean = obs.bytes_on_disk / obs.replication_factor / obs.records
    return AuditRow(
        topic=obs.name,
        managed=spec is not None,
        internal=internal,
        partitions=obs.partitions,
        replication_factor=obs.replication_factor,
        cleanup_policy=st.cleanup,
        retention_ms=st.retention_ms,
        expected_retention_ms=expected_ms,
        retention_bytes=st.retention_bytes,
        segment_ms=st.segment_ms,
        bytes_on_disk=obs.bytes_on_disk,
        records=obs.records,
        mean_record_bytes=round(mean, 1) if mean is not None else None,
        oldest_record_ms=obs.oldest_ms,
        oldest_age_ms=now_ms - obs.oldest_ms if obs.oldest_ms is not None else None,
        infinite_retention=infinite,
        data_older_than_retention=bool(age_flags),
        config_mismatch=mismatch,
        status="warn" if flags else "ok",
        flags=tuple(flags),
        notes=tuple(notes),
        expected_bytes_at_retention=_steady_state_bytes(obs, spec, st, mean),
    )


def forecast_disk(
    rows: list[AuditRow], catalog: Catalog, free_bytes: int | None, total_bytes: int | None
) -> DiskForecast:
    """Days until the brokers' free disk is used up by the catalog topics growing to their
    retention: each grows at its expected volume (the catalog's maximum per hour) times its
    measured mean record size times replication, until it holds its retention's worth."""
    used = sum(r.bytes_on_disk or 0 for r in rows)
    growing: list[tuple[float, float]] = []  # (bytes per day, bytes still to grow)
    unknown = []
    steady_total = 0
    for r in rows:
        spec = catalog.get(r.topic)
        if spec is None or spec.expected_volume is None:
            continue
        if r.expected_bytes_at_retention is None:
            unknown.append(r.topic)
            continue
        rate = (
            spec.expected_volume.max_per_hour
            * 24
            * (r.mean_record_bytes or 0)
            * r.replication_factor
        )
        remaining = max(0.0, r.expected_bytes_at_retention - (r.bytes_on_disk or 0))
        steady_total += r.expected_bytes_at_retention
        if rate > 0 and remaining > 0:
            growing.append((rate, remaining))
    growth = sum(rate for rate, _ in growing)
    basis = (
        "expected volume (max/hour) x measured mean record size x replication, capped at retention"
    )
    if unknown:
        basis += (
            f"; not forecast (no records to measure, or compacted): {', '.join(sorted(unknown))}"
        )
    if free_bytes is None:
        return DiskForecast(
            None,
            total_bytes,
            used,
            steady_total or None,
            growth,
            None,
            None,
            basis + "; brokers did not report free space",
        )
    # Piecewise linear: topics stop growing once they hold their retention's worth.
    budget = float(free_bytes)
    t = 0.0
    active = sorted(growing, key=lambda g: g[1] / g[0])  # the first to reach its cap first
    rate = growth
    for r_rate, r_rem in active:
        t_cap = r_rem / r_rate
        grow = rate * (t_cap - t)
        if grow >= budget:
            return DiskForecast(
                free_bytes, total_bytes, used, steady_total, growth, t + budget / rate, False, basis
            )
        budget -= grow
        t = t_cap
        rate -= r_rate
    return DiskForecast(free_bytes, total_bytes, used, steady_total, growth, None, True, basis)


def audit(
    observations: list[TopicObservation],
    catalog: Catalog,
    now_ms: int,
    interval_ms: int = DAY_MS,
    free_bytes: int | None = None,
    total_bytes: int | None = None,
    policy: DefaultPolicy = DefaultPolicy(),
    exclude: frozenset[str] = frozenset(),
    check_interval_ms: int = DEFAULT_CHECK_INTERVAL_MS,
    outside_scope: int = 0,
) -> RetentionReport:
    """Audit every observed topic within the catalog's scope (catalog and not), then
    forecast the disk. `check_interval_ms`: the brokers' log.retention.check.interval.ms,
    read once; `outside_scope`: topics the observation already left out of the scope."""
    rows = []
    outside = outside_scope
    for obs in sorted(observations, key=lambda o: o.name):
        if obs.name in exclude:
            continue
        if not is_internal_topic(obs.name, obs.internal) and not catalog.manages(obs.name):
            outside += 1  # outside the catalog's scope: not audited, not listed
            continue
        spec = catalog.get(obs.name)
        if spec is not None and spec.name != obs.name:
            spec = None  # matched the catalog key, not the cluster name: not this topic
        rows.append(audit_topic(obs, spec, now_ms, interval_ms, policy, check_interval_ms))
    return RetentionReport(
        now_ms,
        tuple(rows),
        forecast_disk(rows, catalog, free_bytes, total_bytes),
        interval_ms,
        catalog.env,
        scope=_scope_line(catalog, outside),
    )


def _scope_line(catalog: Catalog, outside: int) -> str | None:
    if not catalog.scope.declared:
        return None
    return f"scope: {catalog.scope.describe()} ({outside} other topic(s) outside it left alone)"


def report_rows(report: RetentionReport) -> list[list]:
    """The table people read: one line a topic."""
    out = []
    for r in report.rows:
        out.append(
            [
                r.topic,
                "catalog" if r.managed else ("internal" if r.internal else "unmanaged"),
                r.cleanup_policy,
                _dur(r.retention_ms),
                _dur(r.expected_retention_ms) if r.expected_retention_ms is not None else "-",
                format_size(r.bytes_on_disk) if r.bytes_on_disk is not None else "-",
                f"{r.records:,}" if r.records is not None else "-",
                _dur(r.oldest_age_ms) if r.oldest_age_ms is not None else "-",
                r.status.upper(),
                "; ".join(r.flags + r.notes),
            ]
        )
    return out


REPORT_HEADERS = [
    "topic",
    "kind",
    "cleanup",
    "retention",
    "expected",
    "on disk",
    "records",
    "oldest",
    "status",
    "flags and notes",
]


def render_forecast(f: DiskForecast, scope: str | None = None) -> str:
    """The disk forecast in one line; with the audit's scope (`RetentionReport.scope`) on
    a line of its own after it, when the catalog declares one."""
    line = _forecast_line(f)
    return f"{line}\n{scope}" if scope else line


def _forecast_line(f: DiskForecast) -> str:
    free = format_size(f.free_bytes) if f.free_bytes is not None else "unknown"
    steady = format_size(f.steady_state_bytes) if f.steady_state_bytes is not None else "unknown"
    if f.days_until_full is not None:
        when = f"full in {f.days_until_full:.1f} days"
    elif f.fits:
        when = "never fills: the catalog topics at full retention fit"
    else:
        when = "unknown"
    return f"disk forecast: {when} (free {free}, catalog topics at retention {steady}, growth {format_size(int(f.growth_bytes_per_day))}/day; {f.basis})"


__all__ = [
    "AUDITED_KEYS",
    "DAY_MS",
    "DEFAULT_CHECK_INTERVAL_MS",
    "REPORT_HEADERS",
    "AuditRow",
    "DefaultPolicy",
    "DiskForecast",
    "RetentionReport",
    "TopicObservation",
    "audit",
    "audit_topic",
    "forecast_disk",
    "render_forecast",
    "report_rows",
]
