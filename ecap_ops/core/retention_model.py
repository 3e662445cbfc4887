"""The retention audit's vocabulary: what it read of a topic, the policy a topic outside
the catalog is held to, one report row a topic, the disk forecast, the report. Pure;
importable from `core.retention` too."""

from dataclasses import asdict, dataclass

from ecap_ops.core.plan import KAFKA_DEFAULTS as PLAN_DEFAULTS

DAY_MS = 86_400_000
# Kafka's log.retention.check.interval.ms, for a broker whose value was not read.
DEFAULT_CHECK_INTERVAL_MS = 300_000
AUDITED_KEYS = ("retention.ms", "retention.bytes", "cleanup.policy", "segment.ms")
# Kafka's defaults, for a key the broker did not report: the plan's, and those of the
# segment, deletion and compaction keys the audit reads too.
KAFKA_DEFAULTS = {
    **PLAN_DEFAULTS,
    "segment.ms": "604800000",
    "segment.bytes": "1073741824",
    "delete.retention.ms": "86400000",
    "min.cleanable.dirty.ratio": "0.5",
    "min.compaction.lag.ms": "0",
    "max.compaction.lag.ms": "9223372036854775807",
}


@dataclass(frozen=True)
class DefaultPolicy:
    """What a topic outside the catalog is held to."""

    retention_ms: int = 7 * DAY_MS
    max_retention_ms: int = 30 * DAY_MS
    cleanup_policy: str = "delete"
    allow_infinite: bool = False


@dataclass(frozen=True)
class TopicObservation:
    """What the audit read about one topic."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]  # effective values of the audited and compaction keys
    overrides: frozenset[str] = frozenset()  # keys set at topic level
    bytes_on_disk: int | None = None  # all replicas on all brokers
    records: int | None = None  # end - start offsets, all partitions
    oldest_ms: int | None = None  # timestamp of the oldest record still held
    newest_ms: int | None = None
    internal: bool = False


@dataclass(frozen=True)
class AuditRow:
    topic: str
    managed: bool  # in the catalog
    internal: bool
    partitions: int
    replication_factor: int
    cleanup_policy: str
    retention_ms: int
    expected_retention_ms: int | None
    retention_bytes: int
    segment_ms: int
    bytes_on_disk: int | None
    records: int | None
    mean_record_bytes: float | None
    oldest_record_ms: int | None
    oldest_age_ms: int | None
    infinite_retention: bool
    data_older_than_retention: bool
    config_mismatch: bool
    status: str  # ok, warn
    flags: tuple[str, ...]
    notes: tuple[str, ...]
    expected_bytes_at_retention: int | None  # the forecast's steady state for this topic

    def as_record(self) -> dict:
        d = asdict(self)
        d["flags"] = "; ".join(self.flags)
        d["notes"] = "; ".join(self.notes)
        return d


@dataclass(frozen=True)
class DiskForecast:
    free_bytes: int | None
    total_bytes: int | None
    used_by_topics_bytes: int
    steady_state_bytes: int | None  # the forecast topics at full retention, all replicas
    growth_bytes_per_day: float
    days_until_full: float | None  # None: never fills (steady state fits) or unknown
    fits: bool | None
    basis: str  # how it was computed, in words


@dataclass(frozen=True)
class RetentionReport:
    at_ms: int
    rows: tuple[AuditRow, ...]
    forecast: DiskForecast
    interval_ms: int
    env: str = "dev"
    # What the audit covered: the catalog's scope in one line (None: every topic).
    scope: str | None = None

    @property
    def flagged(self) -> list[AuditRow]:
        return [r for r in self.rows if r.flags]

    def to_dict(self) -> dict:
        return {
            "at_ms": self.at_ms,
            "env": self.env,
            "interval_ms": self.interval_ms,
            "rows": [asdict(r) for r in self.rows],
            "forecast": asdict(self.forecast),
            "flagged": [r.topic for r in self.flagged],
            "scope": self.scope,
        }
