"""The Prometheus exporter: consumer lag and cluster health as metrics (`ecap-ops exporter`).

Two background threads measure on their own intervals with the code every other front end
uses: `services.lag.lag_tick` (the consumer-lag sensor's measurement and evaluation, with
its window kept in memory as `ecap-ops lag --watch` keeps it, its time budget and the
connection's bounded waits) and `services.health.check_health` (the health check, without
its canary unless asked). Each thread leaves its latest result in `ExporterState`; a scrape
of `/metrics` only turns the latest results into metric families (`ExporterCollector`), so
scrapes never send a request to Kafka and never wait for a measurement.

When the cluster does not answer, `ecap_kafka_up` is 0 and the per-group series are dropped
(not served) until a measurement succeeds again: Prometheus marks them stale at the next
scrape, so graphs show a gap rather than a frozen value and lag alerts give way to the
`EcapKafkaUnreachable` alert. Every metric is documented in docs/metrics.md.
"""

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ecap_ops.catalog.model import Catalog
from ecap_ops.core.lag import SEVERITY_RANK, EvalConfig, GroupObservation, GroupTopicStatus
from ecap_ops.errors import EcapOpsError
from ecap_ops.gateway.client import KafkaGateway
from ecap_ops.gateway.lag import LagScope
from ecap_ops.services.lag import DEFAULT_BUDGET_S, catalog_thresholds, lag_tick
from ecap_ops.settings import KafkaSettings

log = logging.getLogger(__name__)

DEFAULT_PORT = 9308
DEFAULT_INTERVAL_S = 30.0  # the consumer-lag sensor's default interval
DEFAULT_HEALTH_INTERVAL_S = 60.0
HEALTH_STATUS_CODE = {"OK": 0, "WARN": 1, "CRIT": 2}
HEALTH_SEVERITIES = ("OK", "WARN", "CRIT")
UNKNOWN_GROUP_TYPE = "unknown"


@dataclass(frozen=True)
class ExporterConfig:
    """What the exporter measures and how often. The defaults are the sensor's."""

    interval_s: float = DEFAULT_INTERVAL_S
    health_interval_s: float | None = DEFAULT_HEALTH_INTERVAL_S  # None: no health check
    per_partition: bool = False
    budget_s: float = DEFAULT_BUDGET_S
    scope: LagScope = field(default_factory=LagScope)
    canary: bool = False
    eval_config: EvalConfig = field(default_factory=EvalConfig)


@dataclass(frozen=True)
class LagResult:
    """What one lag measurement left for the scrapes. `up` False: the cluster did not
    answer (or refused us); then `statuses` and `groups` are empty and `error` says why."""

    finished_at: float  # wall clock, seconds since the epoch
    duration_s: float
    up: bool
    requests: dict[str, int] = field(default_factory=dict)
    partial: bool = False
    measured_at: float | None = None  # the observation's own time
    statuses: tuple[GroupTopicStatus, ...] = ()
    groups: dict[str, GroupObservation] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class HealthResult:
    finished_at: float
    duration_s: float
    status: str | None  # OK, WARN, CRIT; None when the check itself failed
    findings: dict[tuple[str, str], int] = field(default_factory=dict)  # (check, severity)
    error: str | None = None


class ExporterState:
    """The latest results and the running totals, shared by the measuring threads and the
    scrapes. Results are immutable; a scrape reads references under the lock, never waits
    for a measurement."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.lag: LagResult | None = None
        self.health: HealthResult | None = None
        self.lag_measurements: Counter[str] = Counter()  # result -> count
        self.health_checks: Counter[str] = Counter()  # status -> count
        self.errors: Counter[tuple[str, str]] = Counter()  # (measurement, error) -> count
        self.last_measured_at: float | None = None  # of the last successful lag measurement

    def record_lag(self, result: LagResult, error_kind: str | None = None) -> None:
        with self._lock:
            self.lag = result
            if result.up and result.measured_at is not None:
                self.last_measured_at = result.measured_at
            outcome = "error" if not result.up else ("partial" if result.partial else "ok")
            self.lag_measurements[outcome] += 1
            if error_kind:
                self.errors[("lag", error_kind)] += 1

    def record_health(self, result: HealthResult, error_kind: str | None = None) -> None:
        with self._lock:
            self.health = result
            self.health_checks[result.status or "error"] += 1
            if error_kind:
                self.errors[("health", error_kind)] += 1

    def snapshot(self):
        with self._lock:
            return (
                self.lag,
                self.last_measured_at,
                self.health,
                dict(self.lag_measurements),
                dict(self.health_checks),
                dict(self.errors),
            )


def _error_kind(exc: BaseException) -> str:
    """A low-cardinality label for an error: its type's name (never its message)."""
    return type(exc).__name__[:60]


class Exporter:
    """Measures lag and health on their intervals in background threads."""

    def __init__(
        self,
        settings: KafkaSettings,
        catalog: Catalog,
        config: ExporterConfig | None = None,
        state: ExporterState | None = None,
        gateway_factory: Callable[[KafkaSettings], KafkaGateway] = KafkaGateway,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.config = config or ExporterConfig()
        self.state = state or ExporterState()
        self._gateway = gateway_factory
        self._window = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- one measurement each ---------------------------------------------------------
    def measure_lag_once(self) -> LagResult:
        """One lag tick, judged against the window of the earlier ticks; recorded."""
        cfg = self.config
        started = time.monotonic()
        try:
            with self._gateway(self.settings) as gw:
                tick = lag_tick(
                    gw, self.catalog, self._window, cfg.eval_config, cfg.scope, cfg.budget_s
                )
        except Exception as exc:  # a failed measurement must not stop the exporter
            if not isinstance(exc, EcapOpsError):
                log.exception("consumer lag measurement failed unexpectedly")
            else:
                log.warning("consumer lag not measured: %s", exc)
            # The window is kept: the next tick carries on where this one could not.
            result = LagResult(
                finished_at=time.time(),
                duration_s=time.monotonic() - started,
                up=False,
                error=str(exc)[:500],
            )
            self.state.record_lag(result, _error_kind(exc))
            return result
        self._window = tick.evaluation.window
        m = tick.measurement
        obs = m.observation
        for note in tick.evaluation.notes:
            log.info("consumer lag: %s", note)
        result = LagResult(
            finished_at=time.time(),
            # Connecting, measuring, judging and closing: what one interval's work costs.
            duration_s=time.monotonic() - started,
            up=True,
            requests=dict(m.requests),
            partial=obs.partial,
            measured_at=obs.at,
            statuses=tuple(tick.statuses),
            groups=dict(obs.groups),
        )
        self.state.record_lag(result)
        return result

    def check_health_once(self) -> HealthResult:
        """One health check (the `health-check` command's and job's service); recorded."""
        from ecap_ops.services.health import check_health

        started = time.monotonic()
        try:
            with self._gateway(self.settings) as gw:
                report = check_health(gw, self.catalog, canary=self.config.canary).report
        except Exception as exc:  # a failed check must not stop the exporter
            if not isinstance(exc, EcapOpsError):
                log.exception("health check failed unexpectedly")
            else:
                log.warning("health check not run: %s", exc)
            result = HealthResult(
                time.time(), time.monotonic() - started, None, error=str(exc)[:500]
            )
            self.state.record_health(result, _error_kind(exc))
            return result
        findings: Counter[tuple[str, str]] = Counter((f.check, f.severity) for f in report.findings)
        result = HealthResult(
            time.time(), time.monotonic() - started, report.status, dict(findings)
        )
        self.state.record_health(result)
        return result

    # -- the threads ------------------------------------------------------------------
    def _loop(self, fn: Callable[[], object], interval_s: float) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            fn()
            self._stop.wait(max(0.0, interval_s - (time.monotonic() - started)))

    def start(self) -> None:
        loops = [("ecap-lag", self.measure_lag_once, self.config.interval_s)]
        if self.config.health_interval_s is not None:
            loops.append(("ecap-health", self.check_health_once, self.config.health_interval_s))
        for name, fn, interval in loops:
            # Daemon threads: a measurement in flight (bounded by its budget) never holds up
            # the process when it is asked to stop.
            t = threading.Thread(target=self._loop, args=(fn, interval), name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, wait_s: float = 2.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + wait_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))


# -- metric families ------------------------------------------------------------------


class ExporterCollector:
    """Turns the latest results into metric families (prometheus_client's collector
    protocol). Every family is yielded on every scrape, with or without samples, so the
    names the exporter serves do not depend on what the cluster holds right now."""

    def __init__(self, state: ExporterState, catalog: Catalog, per_partition: bool = False):
        self.state = state
        self.catalog = catalog
        self.per_partition = per_partition
        self._thresholds = catalog_thresholds(catalog)

    def describe(self):
        return []  # families are known only at collect time; registration collects nothing

    def collect(self) -> Iterator:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        lag, last_measured_at, health, lag_counts, health_counts, errors = self.state.snapshot()

        up = GaugeMetricFamily(
            "ecap_kafka_up",
            "1 when the last consumer-lag measurement reached the Kafka cluster, 0 when it did not.",
        )
        duration = GaugeMetricFamily(
            "ecap_lag_measurement_duration_seconds",
            "Wall time of the last consumer-lag measurement and evaluation.",
        )
        requests = GaugeMetricFamily(
            "ecap_lag_measurement_requests",
            "Kafka requests the last consumer-lag measurement sent, by request type.",
            labels=["request"],
        )
        partial = GaugeMetricFamily(
            "ecap_lag_measurement_partial",
            "1 when the last measurement did not measure everything in time (groups or offsets left out).",
        )
        measured_at = GaugeMetricFamily(
            "ecap_lag_measurement_timestamp_seconds",
            "When the last successful consumer-lag measurement observed the cluster (Unix time).",
        )
        group_count = GaugeMetricFamily(
            "ecap_consumer_groups",
            "Consumer groups in the last successful measurement.",
        )
        if lag is not None:
            up.add_metric([], 1.0 if lag.up else 0.0)
            duration.add_metric([], lag.duration_s)
            for kind, n in sorted(lag.requests.items()):
                requests.add_metric([kind], n)
            partial.add_metric([], 1.0 if lag.partial else 0.0)
            if lag.up:
                group_count.add_metric([], len(lag.groups))
        if last_measured_at is not None:  # served while the cluster is down: its age alerts
            measured_at.add_metric([], last_measured_at)
        yield from (up, duration, requests, partial, measured_at, group_count)

        measurements = CounterMetricFamily(
            "ecap_lag_measurements",
            "Consumer-lag measurements since the exporter started, by result (ok, partial, error).",
            labels=["result"],
        )
        for result in ("ok", "partial", "error"):
            measurements.add_metric([result], lag_counts.get(result, 0))
        errs = CounterMetricFamily(
            "ecap_exporter_errors",
            "Measurements the exporter could not make, by measurement (lag, health) and error type.",
            labels=["measurement", "error"],
        )
        for (what, kind), n in sorted(errors.items()):
            errs.add_metric([what, kind], n)
        yield measurements
        yield errs

        yield from self._lag_families(lag if lag is not None and lag.up else None)
        yield from self._health_families(health, health_counts)

    def _lag_families(self, lag: LagResult | None) -> Iterator:
        from prometheus_client.core import GaugeMetricFamily

        gt = ["group", "topic"]
        msgs = GaugeMetricFamily(
            "ecap_consumer_lag_messages",
            "Records a group has still to read on a topic (sum over its partitions).",
            labels=gt,
        )
        secs = GaugeMetricFamily(
            "ecap_consumer_lag_seconds",
            "Age of the oldest record a group has still to read on a topic (its worst partition). "
            "kind: exact, or how it was estimated (interpolated, extrapolated, at_least). "
            "Absent while unknown.",
            labels=[*gt, "kind"],
        )
        lost = GaugeMetricFamily(
            "ecap_consumer_lost_messages",
            "Records deleted by retention before the group read them (DATA_LOSS).",
            labels=gt,
        )
        status = GaugeMetricFamily(
            "ecap_consumer_group_status",
            "1 for a group's current status on a topic (the sensor's: DATA_LOSS, STOPPED, STALLED, "
            "BEHIND_SLA, REWIND, LAGGING, NO_OFFSET, REBALANCING, OK, IDLE).",
            labels=[*gt, "status"],
        )
        severity = GaugeMetricFamily(
            "ecap_consumer_group_severity",
            "Severity of a group's status on a topic: 0 ok, 1 info, 2 warning, 3 critical.",
            labels=gt,
        )
        members = GaugeMetricFamily(
            "ecap_consumer_group_members",
            "Members of a consumer group (absent when the group could not be described).",
            labels=["group"],
        )
        info = GaugeMetricFamily(
            "ecap_consumer_group_info",
            "1 per consumer group, with its type (classic, consumer, share, streams) and state.",
            labels=["group", "type", "state"],
        )
        p_msgs = GaugeMetricFamily(
            "ecap_consumer_partition_lag_messages",
            "Records a group has still to read on one partition (only with --per-partition).",
            labels=[*gt, "partition"],
        )
        p_secs = GaugeMetricFamily(
            "ecap_consumer_partition_lag_seconds",
            "Age of the oldest unread record of one partition, with how it is known "
            "(only with --per-partition).",
            labels=[*gt, "partition", "kind"],
        )
        th_secs = GaugeMetricFamily(
            "ecap_consumer_lag_threshold_seconds",
            "The catalog's lag-in-seconds thresholds of a topic (what the sensor judges with).",
            labels=["topic", "level"],
        )
        th_msgs = GaugeMetricFamily(
            "ecap_consumer_lag_threshold_messages",
            "The catalog's lag-in-messages warning threshold of a topic.",
            labels=["topic", "level"],
        )
        th_once = GaugeMetricFamily(
            "ecap_consumer_lag_critical_at_once",
            "1 when lag past a topic's warning level is critical at once (catalog critical_at_once).",
            labels=["topic"],
        )
        topics = {t.name for t in self.catalog.topics}
        if lag is not None:
            for s in lag.statuses:
                labels = [s.group, s.topic]
                topics.add(s.topic)
                msgs.add_metric(labels, s.lag_msgs)
                if s.lag_seconds is not None:
                    secs.add_metric([*labels, s.lag_seconds_kind], s.lag_seconds)
                lost.add_metric(labels, s.lost)
                status.add_metric([*labels, s.status], 1.0)
                severity.add_metric(labels, SEVERITY_RANK.get(s.severity, 0))
                if self.per_partition:
                    for p in s.partitions:
                        pl = [*labels, str(p.partition)]
                        p_msgs.add_metric(pl, p.lag_msgs)
                        if p.lag_seconds is not None:
                            p_secs.add_metric([*pl, p.lag_seconds_kind], p.lag_seconds)
            for name, g in sorted(lag.groups.items()):
                if g.members is not None:
                    members.add_metric([name], g.members)
                info.add_metric([name, group_type(g), g.state or "Unknown"], 1.0)
        for topic in sorted(topics):
            th = self._thresholds(topic)
            th_secs.add_metric([topic, "warning"], th.warn_seconds)
            th_secs.add_metric([topic, "critical"], th.crit_seconds)
            th_msgs.add_metric([topic, "warning"], th.warn_msgs)
            th_once.add_metric([topic], 1.0 if th.critical_at_once else 0.0)
        yield from (msgs, secs, lost, status, severity, members, info, p_msgs, p_secs)
        yield from (th_secs, th_msgs, th_once)

    def _health_families(self, health: HealthResult | None, counts: dict) -> Iterator:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        status = GaugeMetricFamily(
            "ecap_kafka_health_status",
            "The health check's verdict: 0 OK, 1 WARN, 2 CRIT (absent until a check completed).",
        )
        findings = GaugeMetricFamily(
            "ecap_kafka_health_findings",
            "Findings of the last health check, by check and severity (OK, WARN, CRIT).",
            labels=["check", "severity"],
        )
        duration = GaugeMetricFamily(
            "ecap_kafka_health_check_duration_seconds", "Wall time of the last health check."
        )
        at = GaugeMetricFamily(
            "ecap_kafka_health_check_timestamp_seconds",
            "When the last health check finished (Unix time).",
        )
        checks = CounterMetricFamily(
            "ecap_kafka_health_checks",
            "Health checks since the exporter started, by verdict (OK, WARN, CRIT, error).",
            labels=["status"],
        )
        if health is not None:
            duration.add_metric([], health.duration_s)
            if health.status is not None:
                status.add_metric([], HEALTH_STATUS_CODE[health.status])
                at.add_metric([], health.finished_at)
                for (check, sev), n in sorted(health.findings.items()):
                    findings.add_metric([check, sev], n)
        for s in (*HEALTH_SEVERITIES, "error"):
            if s in counts or health is not None:
                checks.add_metric([s], counts.get(s, 0))
        yield from (status, findings, duration, at, checks)


def group_type(g: GroupObservation) -> str:
    """A measured group's type (classic, consumer, share, streams), as the gateway read it;
    `unknown` while the measurement does not carry it."""
    return str(getattr(g, "group_type", "") or UNKNOWN_GROUP_TYPE)


def build_registry(state: ExporterState, catalog: Catalog, per_partition: bool = False):
    """A registry of the exporter's families plus the process's own (CPU, memory, fds)."""
    from prometheus_client import CollectorRegistry, ProcessCollector

    registry = CollectorRegistry()
    registry.register(ExporterCollector(state, catalog, per_partition))
    ProcessCollector(registry=registry)
    return registry


def serve(host: str, port: int, registry):
    """Start the HTTP server for /metrics on a daemon thread: (server, thread).

    Raises ConfigError when the address cannot be bound (in use, not an address of this
    machine, not resolvable)."""
    from prometheus_client import start_http_server

    from ecap_ops.errors import ConfigError

    shown = f"{host[:60]}:{port}"
    try:
        return start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        import errno

        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"--port {port}: {shown} is already in use; stop what listens there or pick another --port"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(
                f"--host: {host[:60]!r} is not an address of this machine; use 127.0.0.1, 0.0.0.0 or one of its addresses"
            ) from None
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"--port {port}: not allowed to listen on {shown} (ports below 1024 need privileges)"
            ) from None
        raise ConfigError(
            f"--host/--port: cannot listen on {shown}: {exc.strerror or exc}"
        ) from None
    except (ValueError, UnicodeError) as exc:
        raise ConfigError(f"--host: {host[:60]!r} is not a host name or address ({exc})") from None
