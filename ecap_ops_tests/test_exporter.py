"""`ecap-ops exporter`: consumer lag and health as Prometheus metrics.

On the real local broker: a scripted group with known lag shows up in /metrics with that
lag (checked with Kafka's own kafka-consumer-groups too); a real Prometheus (Debian's
`prometheus`) scrapes the exporter and answers a PromQL query with that lag; with a broker
address that answers nothing the exporter keeps serving with `ecap_kafka_up` 0; scrapes
never measure. The alert rules pass `promtool check rules` and their `promtool test rules`
unit tests, and the Grafana dashboard queries only metrics the running exporter serves.
Hostile command-line arguments get a clear error, never a traceback.
"""

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecap_ops.catalog import load_catalog
from ecap_ops.cli import main
from ecap_ops.core.lag_model import GroupObservation, GroupTopicStatus, PartitionLag
from ecap_ops.services.metrics import (
    ExporterState,
    HealthResult,
    LagResult,
    build_registry,
)
from ecap_ops_tests.helpers import free_port, kafka_tool, topic_name

REPO = Path(__file__).resolve().parents[1]
RULES_DIR = REPO / "deploy" / "prometheus" / "rules"
RULES = RULES_DIR / "ecap-lag.yml"
RULE_TESTS = RULES_DIR / "ecap-lag.test.yml"
PROMETHEUS_YAML = REPO / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))
LAG_DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "consumer-lag.json"
METRICS_DOC = REPO / "docs" / "metrics.md"
ECAP_OPS = [sys.executable, "-m", "ecap_ops"]

INTERVAL_S = 1.0  # the exporter's interval in these tests
# Generous limits derived from the interval: a loaded 2-core machine, other suites running.
WAIT_S = 60 * INTERVAL_S + 60


def promtool() -> str:
    exe = shutil.which("promtool")
    assert exe, (
        "promtool (Debian's prometheus package) is not installed: bash scripts/install-system-deps.sh"
    )
    return exe


def prometheus_exe() -> str:
    exe = shutil.which("prometheus")
    assert exe, (
        "prometheus (Debian's package) is not installed: bash scripts/install-system-deps.sh"
    )
    return exe


def wait_for(
    what: str, probe: Callable[[], object], limit_s: float = WAIT_S, every_s: float = 0.25
):
    """Poll `probe` until it returns something truthy; fail naming `what` and the last value."""
    deadline = time.monotonic() + limit_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (OSError, ValueError) as exc:  # not up yet
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(every_s)
    pytest.fail(f"{what}: not after {limit_s:.0f} s (last: {str(last)[:500]})")


# -- reading /metrics --------------------------------------------------------------------


def scrape(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        assert resp.status == 200
        return resp.read().decode()


@dataclass
class Scrape:
    text: str

    def families(self):
        from prometheus_client.parser import text_string_to_metric_families

        return list(text_string_to_metric_families(self.text))

    def names(self) -> set[str]:
        """Every name a query can use: families and their samples' names."""
        out: set[str] = set()
        for fam in self.families():
            out.add(fam.name)
            if fam.type == "counter":
                out.add(fam.name + "_total")
            out |= {s.name for s in fam.samples}
        return out

    def samples(self, name: str, **labels: str) -> list:
        return [
            s
            for fam in self.families()
            for s in fam.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float | None:
        found = self.samples(name, **labels)
        assert len(found) <= 1, f"{name}{labels}: {len(found)} samples"
        return found[0].value if found else None


# -- running the exporter ------------------------------------------------------------------


@dataclass
class RunningExporter:
    proc: subprocess.Popen
    url: str
    stderr_path: Path

    def metrics(self) -> Scrape:
        return Scrape(scrape(self.url))

    def stop(self, limit_s: float = 30) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(limit_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            pytest.fail(f"the exporter did not stop within {limit_s} s of SIGTERM")
        return code, self.stderr_path.read_text()


def start_exporter(
    tmp_path: Path, bootstrap: str, *args: str, env: dict | None = None
) -> RunningExporter:
    port = free_port()
    err = tmp_path / f"exporter-{port}.err"
    proc = subprocess.Popen(
        [*ECAP_OPS, "--bootstrap-servers", bootstrap, "exporter", "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=err.open("w"),
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )
    running = RunningExporter(proc, f"http://127.0.0.1:{port}/metrics", err)

    def serving():
        if proc.poll() is not None:
            pytest.fail(f"the exporter exited ({proc.returncode}): {err.read_text()[-2000:]}")
        return scrape(running.url, timeout=5)

    wait_for("the exporter serves /metrics", serving)
    return running


def commit_offsets(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Commit offsets for a group with kafka-python (retrying while a fresh cluster creates
    its offsets topic)."""
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.structs import OffsetAndMetadata

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                admin.alter_group_offsets(
                    group,
                    {
                        TopicPartition(t, p): OffsetAndMetadata(o, "", None)
                        for (t, p), o in offsets.items()
                    },
                )
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    finally:
        admin.close()


@dataclass
class ScriptedGroup:
    topic: str
    group: str
    produced: dict[int, int]  # partition -> records
    committed: dict[int, int]  # partition -> committed offset
    produced_at: tuple[float, float]  # the first and the last record's send time

    def lag(self, partition: int | None = None) -> int:
        parts = [partition] if partition is not None else list(self.produced)
        return sum(self.produced[p] - self.committed[p] for p in parts)


@pytest.fixture(scope="module")
def scripted_group(kafka_bootstrap: str) -> ScriptedGroup:
    """A topic with 37 records on partition 0 and 5 on partition 1, and a group that
    committed 10 and 5: lag 27 and 0."""
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic

    topic, group = topic_name("exporter-lag"), topic_name("exporter-group")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=20000)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    produced = {0: 37, 1: 5}
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, request_timeout_ms=20000)
    first = time.time()
    for partition, n in produced.items():
        for i in range(n):
            producer.send(topic, f"r{i}".encode(), partition=partition)
    producer.flush(30)
    last = time.time()
    producer.close()
    committed = {0: 10, 1: 5}
    commit_offsets(kafka_bootstrap, group, {(topic, p): o for p, o in committed.items()})
    return ScriptedGroup(topic, group, produced, committed, (first, last))


@pytest.fixture(scope="module")
def running_exporter(
    kafka_bootstrap: str, scripted_group: ScriptedGroup, tmp_path_factory
) -> Iterator[RunningExporter]:
    """The exporter on the session broker, every second, per partition, health every 2 s,
    scoped to the scripted group."""
    tmp = tmp_path_factory.mktemp("exporter")
    exp = start_exporter(
        tmp,
        kafka_bootstrap,
        "--interval",
        str(INTERVAL_S),
        "--health-interval",
        "2",
        "--per-partition",
        "--group",
        scripted_group.group,
    )
    yield exp
    code, err = exp.stop()
    assert code == 0, err
    assert "Traceback" not in err, err


def lag_in_metrics(exp: RunningExporter, g: ScriptedGroup) -> Callable[[], Scrape | None]:
    def probe():
        m = exp.metrics()
        v = m.value("ecap_consumer_lag_messages", group=g.group, topic=g.topic)
        return m if v == g.lag() else None

    return probe


def test_scripted_group_lag_in_metrics(
    running_exporter: RunningExporter, scripted_group: ScriptedGroup, kafka_bootstrap: str
):
    g = scripted_group
    m = wait_for(f"/metrics shows lag {g.lag()} of {g.group}", lag_in_metrics(running_exporter, g))
    assert g.lag() == 27
    assert m.value("ecap_kafka_up") == 1
    assert m.value("ecap_consumer_groups") == 1  # scoped to the scripted group
    for p in g.produced:
        assert m.value(
            "ecap_consumer_partition_lag_messages", group=g.group, topic=g.topic, partition=str(p)
        ) == g.lag(p)
    (info,) = m.samples("ecap_consumer_group_info", group=g.group)
    assert info.labels["state"] == "Empty" and info.value == 1
    assert m.value("ecap_consumer_group_members", group=g.group) == 0
    (status,) = m.samples("ecap_consumer_group_status", group=g.group, topic=g.topic)
    assert status.value == 1 and status.labels["status"] in ("OK", "STOPPED", "NO_OFFSET")
    assert m.value("ecap_consumer_lost_messages", group=g.group, topic=g.topic) == 0
    # Lag in seconds says how it is known (one low-cardinality kind label); the oldest unread
    # record was produced while the fixture ran, so its age is at most the time since then.
    (secs,) = m.samples("ecap_consumer_lag_seconds", group=g.group, topic=g.topic)
    assert secs.labels["kind"] in ("exact", "interpolated", "extrapolated", "at_least", "partial")
    assert 0 <= secs.value <= time.time() - g.produced_at[0] + 2, secs
    requests = m.samples("ecap_lag_measurement_requests")
    assert {s.labels["request"] for s in requests} >= {"Metadata", "ListGroups", "OffsetFetch"}
    assert 0 < m.value("ecap_lag_measurement_duration_seconds") < 60
    assert abs(m.value("ecap_lag_measurement_timestamp_seconds") - time.time()) < 120
    # The catalog's thresholds for a topic outside the catalog: its lag_defaults.
    th = load_catalog().lag_for(g.topic)
    assert (
        m.value("ecap_consumer_lag_threshold_seconds", topic=g.topic, level="warning")
        == th.warn_seconds
    )
    assert (
        m.value("ecap_consumer_lag_threshold_seconds", topic=g.topic, level="critical")
        == th.crit_seconds
    )
    assert (
        m.value("ecap_consumer_lag_threshold_messages", topic=g.topic, level="warning")
        == th.warn_msgs
    )
    # Kafka's own tool agrees on the lag of every partition.
    out = kafka_tool(kafka_bootstrap, "kafka-consumer-groups", "--describe", "--group", g.group)
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if g.topic in line.split()]
    header = next(line.split() for line in out.stdout.splitlines() if "LAG" in line.split())
    theirs = {int(r[header.index("PARTITION")]): int(r[header.index("LAG")]) for r in rows}
    assert theirs == {p: g.lag(p) for p in g.produced}


def test_health_verdict_and_findings(running_exporter: RunningExporter):
    def probe():
        m = running_exporter.metrics()
        return m if m.value("ecap_kafka_health_status") is not None else None

    m = wait_for("the health check's verdict in /metrics", probe)
    findings = m.samples("ecap_kafka_health_findings")
    assert findings and {s.labels["severity"] for s in findings} <= {"OK", "WARN", "CRIT"}
    worst = max({"OK": 0, "WARN": 1, "CRIT": 2}[s.labels["severity"]] for s in findings)
    assert m.value("ecap_kafka_health_status") == worst
    assert sum(s.value for s in m.samples("ecap_kafka_health_checks_total")) >= 1


def test_lag_follows_new_commits(
    running_exporter: RunningExporter, scripted_group: ScriptedGroup, kafka_bootstrap: str
):
    g = scripted_group
    wait_for("the first lag", lag_in_metrics(running_exporter, g))
    commit_offsets(kafka_bootstrap, g.group, {(g.topic, 0): 30})
    g.committed[0] = 30
    wait_for(f"/metrics follows the commit to lag {g.lag()}", lag_in_metrics(running_exporter, g))
    assert g.lag() == 7


def test_scrapes_do_not_measure(tmp_path: Path, kafka_bootstrap: str, scripted_group):
    """With a long interval, many scrapes see the one measurement made so far."""
    exp = start_exporter(
        tmp_path,
        kafka_bootstrap,
        "--interval",
        "3600",
        "--no-health",
        "--group",
        scripted_group.group,
    )
    try:

        def measured():
            m = exp.metrics()
            return m if m.value("ecap_lag_measurements_total", result="ok") == 1 else None

        first = wait_for("the first measurement", measured)
        stamp = first.value("ecap_lag_measurement_timestamp_seconds")
        for _ in range(30):
            m = exp.metrics()
            assert m.value("ecap_lag_measurements_total", result="ok") == 1
            assert m.value("ecap_lag_measurement_timestamp_seconds") == stamp
    finally:
        code, err = exp.stop()
    assert code == 0 and "Traceback" not in err, err


# -- a broker that answers nothing ----------------------------------------------------------


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """A loopback address that accepts TCP connections and never answers a byte."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.mark.parametrize("kind", ["silent", "refused"])
def test_unreachable_cluster_still_serves_with_up_0(tmp_path: Path, silent_broker: str, kind: str):
    bootstrap = silent_broker if kind == "silent" else f"127.0.0.1:{free_port()}"
    env = {"ECAP_KAFKA_CONNECT_TIMEOUT_MS": "2000", "ECAP_KAFKA_REQUEST_TIMEOUT_MS": "3000"}
    exp = start_exporter(
        tmp_path, bootstrap, "--interval", str(INTERVAL_S), "--health-interval", "2", env=env
    )
    try:

        def down():
            t = time.monotonic()
            m = exp.metrics()
            # A scrape never waits for a measurement in flight.
            assert time.monotonic() - t < 10, "a scrape waited for Kafka"
            return m if m.value("ecap_kafka_up") == 0 else None

        # Bounded: the connection timeout and the tick's budget, plus generous slack.
        m = wait_for(
            "ecap_kafka_up 0 with brokers that do not answer", down, limit_s=2 + 20 + WAIT_S
        )
        assert not m.samples("ecap_consumer_lag_messages")
        assert not m.samples("ecap_consumer_group_status")
        assert m.value("ecap_lag_measurements_total", result="error") >= 1
        errors = m.samples("ecap_exporter_errors_total", measurement="lag")
        assert errors and all(s.value >= 1 for s in errors)
        assert all(len(s.labels["error"]) <= 60 for s in errors)
        assert m.value("ecap_lag_measurement_timestamp_seconds") is None  # never measured

        def health_crit():
            m = exp.metrics()
            return m if m.value("ecap_kafka_health_status") == 2 else None

        wait_for("the health check says CRIT", health_crit, limit_s=2 + 20 + WAIT_S)
    finally:
        code, err = exp.stop()
    assert code == 0, err
    assert "Traceback" not in err, err
    assert "exporter stopped" in err


# -- a real Prometheus ------------------------------------------------------------------------


@dataclass
class RunningPrometheus:
    proc: subprocess.Popen
    base: str

    def query(self, promql: str) -> dict:
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # 400/422: the query's error as JSON
            return json.loads(exc.read())


@pytest.fixture(scope="module")
def prometheus(running_exporter: RunningExporter, tmp_path_factory) -> Iterator[RunningPrometheus]:
    """Debian's Prometheus on a free loopback port, scraping the exporter every second,
    with the deployment's alert rules."""
    tmp = tmp_path_factory.mktemp("prometheus")
    shutil.copy(RULES, tmp / RULES.name)
    target = running_exporter.url.removeprefix("http://").removesuffix("/metrics")
    (tmp / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(tmp / RULES.name)],
                "scrape_configs": [
                    {"job_name": "ecap-exporter", "static_configs": [{"targets": [target]}]}
                ],
            }
        )
    )
    port = free_port()
    log = (tmp / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            prometheus_exe(),
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    prom = RunningPrometheus(proc, f"http://127.0.0.1:{port}")
    try:

        def ready():
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited: {(tmp / 'prometheus.log').read_text()[-2000:]}")
            with urllib.request.urlopen(f"{prom.base}/-/ready", timeout=5) as resp:
                return resp.status == 200

        wait_for("Prometheus is ready", ready)
        yield prom
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def test_prometheus_scrapes_the_lag_of_a_scripted_group(
    prometheus: RunningPrometheus, scripted_group: ScriptedGroup
):
    g = scripted_group
    promql = f'sum(ecap_consumer_lag_messages{{group="{g.group}", topic="{g.topic}"}})'

    def answered():
        res = prometheus.query(promql)
        assert res["status"] == "success", res
        vec = res["data"]["result"]
        return vec if vec and float(vec[0]["value"][1]) == g.lag() else None

    wait_for(f"PromQL {promql} = {g.lag()}", answered)
    up = prometheus.query('up{job="ecap-exporter"}')["data"]["result"]
    assert [float(r["value"][1]) for r in up] == [1.0]
    # The alert rules loaded and evaluate without errors.
    with urllib.request.urlopen(f"{prometheus.base}/api/v1/rules", timeout=10) as resp:
        groups = json.loads(resp.read())["data"]["groups"]
    assert {gr["name"] for gr in groups} == {
        "ecap-consumer-lag",
        "ecap-exporter",
        "ecap-kafka-health",
    }

    def evaluated():
        with urllib.request.urlopen(f"{prometheus.base}/api/v1/rules", timeout=10) as resp:
            rules = [r for gr in json.loads(resp.read())["data"]["groups"] for r in gr["rules"]]
        return rules if all(r.get("health") == "ok" for r in rules) else None

    wait_for("every alert rule evaluates ok", evaluated)


def test_every_dashboard_query_is_valid_promql(prometheus: RunningPrometheus):
    for expr in dashboard_exprs(LAG_DASHBOARD):
        res = prometheus.query(expr.replace("$group", ".*"))
        assert res["status"] == "success", f"{expr}: {res.get('error')}"


# -- dashboards name only metrics the exporter serves --------------------------------------

PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
PROMQL_KEYWORDS |= {"group_left", "group_right", "inf", "nan"}
GRAFANA_VARIABLE = re.compile(r"\$\{?\w+\}?")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions,
    aggregations, keywords, label names in by/on lists, label matchers or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = GRAFANA_VARIABLE.sub("", text)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    # Numbers and durations (`5m`, `1.5e3`) are read as one token, so never as names.
    for m in re.finditer(r"\d[\w.]*|[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        token, rest = m.group(0), text[m.end() :].lstrip()
        if token[0].isdigit() or rest.startswith("(") or token.lower() in PROMQL_KEYWORDS:
            continue  # a number, a function or aggregation, or a keyword
        names.add(token)
    return names


def dashboard_exprs(path: Path) -> list[str]:
    dashboard = json.loads(path.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if t.get("expr")]
    for var in dashboard.get("templating", {}).get("list", []):
        q = var.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.match(r"label_values\((\w+)", q or "")
        if m:
            exprs.append(m.group(1))
    return exprs


def test_metric_name_parser_sees_misspelt_and_real_names():
    assert promql_metric_names(
        'topk(10, max by (group, topic) (ecap_consumer_lag_secs{group=~"$group"}))'
    ) == {"ecap_consumer_lag_secs"}
    assert promql_metric_names(
        "sum by (measurement, error) (rate(ecap_exporter_errors_total[5m])) * 60 "
        'or on (job) up{job="x"} and time() - ecap_a offset 5m'
    ) == {"ecap_exporter_errors_total", "up", "ecap_a"}
    assert promql_metric_names("count(ecap_x >= 2) or vector(0)") == {"ecap_x"}


def test_dashboard_names_only_metrics_the_exporter_serves(running_exporter: RunningExporter):
    served = running_exporter.metrics().names()
    dashboard = json.loads(LAG_DASHBOARD.read_text())
    assert dashboard["title"] == "Consumer lag"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "ecap-prometheus", panel["title"]
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
    used: dict[str, set[str]] = {}
    for path in DASHBOARDS:
        for expr in dashboard_exprs(path):
            for name in promql_metric_names(expr):
                used.setdefault(name, set()).add(path.name)
    ours = {n for n, files in used.items() if n.startswith("ecap_") or "consumer-lag.json" in files}
    assert len(ours) >= 10
    unknown = sorted(n for n in ours if n not in served and n != "up")
    assert not unknown, f"dashboards query metrics the exporter does not serve: {unknown}"
    # The rules too.
    rule_names = {
        n
        for gr in yaml.safe_load(RULES.read_text())["groups"]
        for r in gr["rules"]
        for n in promql_metric_names(r["expr"])
    }
    assert sorted(n for n in rule_names if n not in served and n != "up") == []


# -- alert rules: promtool ----------------------------------------------------------------


def test_rules_pass_promtool_check():
    out = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_rule_unit_tests_fire_the_lag_alert():
    out = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULES_DIR,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    tests = yaml.safe_load(RULE_TESTS.read_text())
    fired = {
        t["alertname"]
        for case in tests["tests"]
        for t in case["alert_rule_test"]
        if t["exp_alerts"]
    }
    assert {
        "EcapConsumerLagOverWarning",
        "EcapConsumerLagOverCritical",
        "EcapKafkaUnreachable",
    } <= fired


def test_rule_unit_tests_fail_when_the_rule_ignores_the_threshold(tmp_path: Path):
    """The unit tests can fail: with the warning rule comparing against the critical level,
    they do."""
    text = RULES.read_text()
    broken = text.replace(
        'ecap_consumer_lag_threshold_seconds{level="warning"}',
        'ecap_consumer_lag_threshold_seconds{level="critical"}',
    )
    assert broken != text
    (tmp_path / RULES.name).write_text(broken)
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    out = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode != 0
    assert "EcapConsumerLagOverWarning" in out.stdout + out.stderr


def test_deployment_prometheus_config_loads_the_rules(tmp_path: Path):
    config = yaml.safe_load(PROMETHEUS_YAML.read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/ecap-lag.yml"]
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert jobs["ecap-exporter"]["static_configs"][0]["targets"] == ["ecap-exporter:9308"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    svc = compose["services"]["ecap-exporter"]
    assert svc["image"] == compose["services"]["ecap-user-code"]["image"]
    assert svc["command"][:2] == ["ecap-ops", "exporter"] and "9308" in svc["command"]
    assert (
        "./deploy/prometheus/rules:/etc/prometheus/rules:ro"
        in compose["services"]["prometheus"]["volumes"]
    )
    # promtool checks the deployment's config with the rules where the container mounts them.
    shutil.copy(RULES, tmp_path / RULES.name)
    config["rule_files"] = [str(tmp_path / RULES.name)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    out = subprocess.run(
        [promtool(), "check", "config", "--syntax-only", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_thresholds_served_are_the_catalogs():
    """The rules compare against these series: they must be the sensor's thresholds."""
    for env in ("dev", "prod"):
        catalog = load_catalog(env=env)
        text = serve_once(ExporterState(), catalog)
        m = Scrape(text)
        for spec in catalog.topics:
            th = catalog.lag_for(spec.name)
            assert (
                m.value("ecap_consumer_lag_threshold_seconds", topic=spec.name, level="warning")
                == th.warn_seconds
            )
            assert (
                m.value("ecap_consumer_lag_threshold_seconds", topic=spec.name, level="critical")
                == th.crit_seconds
            )
            assert (
                m.value("ecap_consumer_lag_threshold_messages", topic=spec.name, level="warning")
                == th.warn_msgs
            )
            assert m.value("ecap_consumer_lag_critical_at_once", topic=spec.name) == float(
                th.critical_at_once
            )


# -- the collector on synthetic results -----------------------------------------------------


def serve_once(state: ExporterState, catalog, per_partition: bool = False) -> str:
    from prometheus_client import generate_latest

    return generate_latest(build_registry(state, catalog, per_partition)).decode()


def synthetic_status(group="g1", topic="t1", kind="interpolated") -> GroupTopicStatus:
    parts = tuple(
        PartitionLag(topic, p, 10, 0, 10 + 5 * p, 5 * p, 0, 2.5 * p, kind, "LAGGING", True)
        for p in range(3)
    )
    return GroupTopicStatus(
        group, topic, "LAGGING", "LAGGING", "warning", 15, 5.0, kind, 0, "Stable", 2, parts
    )


def synthetic_lag(up=True) -> LagResult:
    if not up:
        return LagResult(time.time(), 8.0, False, error="no broker answered")
    return LagResult(
        time.time(),
        0.5,
        True,
        {"Metadata": 1, "ListOffsets": 3},
        False,
        time.time(),
        (synthetic_status(),),
        {"g1": GroupObservation("g1", "Stable", 2)},
    )


def test_collector_per_partition_only_when_asked():
    catalog = load_catalog()
    state = ExporterState()
    state.record_lag(synthetic_lag())
    plain = Scrape(serve_once(state, catalog))
    assert plain.value("ecap_consumer_lag_messages", group="g1", topic="t1") == 15
    assert plain.samples("ecap_consumer_partition_lag_messages") == []
    (secs,) = plain.samples("ecap_consumer_lag_seconds", group="g1", topic="t1")
    assert secs.labels["kind"] == "interpolated" and secs.value == 5.0
    assert plain.value("ecap_consumer_group_severity", group="g1", topic="t1") == 2
    assert plain.value("ecap_consumer_group_status", group="g1", topic="t1", status="LAGGING") == 1
    per = Scrape(serve_once(state, catalog, per_partition=True))
    assert [s.value for s in per.samples("ecap_consumer_partition_lag_messages", group="g1")] == [
        0,
        5,
        10,
    ]
    assert len(per.samples("ecap_consumer_partition_lag_seconds", kind="interpolated")) == 3


def test_collector_drops_lag_series_when_the_cluster_is_down():
    catalog = load_catalog()
    state = ExporterState()
    state.record_lag(synthetic_lag())
    stamp = state.last_measured_at
    state.record_lag(synthetic_lag(up=False), "KafkaUnavailable")
    m = Scrape(serve_once(state, catalog, per_partition=True))
    assert m.value("ecap_kafka_up") == 0
    assert m.samples("ecap_consumer_lag_messages") == []
    assert m.samples("ecap_consumer_group_info") == []
    assert m.value("ecap_lag_measurement_timestamp_seconds") == stamp  # its age alerts
    assert m.value("ecap_exporter_errors_total", measurement="lag", error="KafkaUnavailable") == 1
    assert m.value("ecap_lag_measurements_total", result="error") == 1
    assert m.value("ecap_lag_measurements_total", result="ok") == 1


def test_collector_health_families():
    catalog = load_catalog()
    state = ExporterState()
    state.record_health(
        HealthResult(time.time(), 0.2, "WARN", {("catalog", "WARN"): 1, ("brokers", "OK"): 1})
    )
    m = Scrape(serve_once(state, catalog))
    assert m.value("ecap_kafka_health_status") == 1
    assert m.value("ecap_kafka_health_findings", check="catalog", severity="WARN") == 1
    assert m.value("ecap_kafka_health_checks_total", status="WARN") == 1
    state.record_health(HealthResult(time.time(), 9.0, None, error="boom"), "KafkaUnavailable")
    m = Scrape(serve_once(state, catalog))
    assert m.value("ecap_kafka_health_status") is None
    assert m.value("ecap_kafka_health_checks_total", status="error") == 1


def documented_metrics() -> set[str]:
    return set(re.findall(r"^\|\s*`(ecap_[a-z0-9_]+)`", METRICS_DOC.read_text(), flags=re.M))


def test_docs_name_every_metric_and_nothing_else():
    state = ExporterState()
    state.record_lag(synthetic_lag())
    served = {
        fam.name + ("_total" if fam.type == "counter" else "")
        for fam in Scrape(serve_once(state, load_catalog(), per_partition=True)).families()
        if fam.name.startswith("ecap_")
    }
    documented = documented_metrics()
    assert served - documented == set(), "served but not in docs/metrics.md"
    assert documented - served == set(), "in docs/metrics.md but not served"
    text = METRICS_DOC.read_text()
    for name in served:  # every metric's row names its labels
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}`"))
        assert row.count("|") >= 5, row


# -- hostile command-line arguments ----------------------------------------------------------


def run_cli(*args: str):
    """The command in process. Arguments it accepts would start an exporter that serves until
    stopped: starting the measurements fails the test at once instead."""
    from unittest import mock

    def accepted(self):
        raise AssertionError(f"the exporter accepted {args!r} and started")

    with mock.patch("ecap_ops.services.metrics.Exporter.start", accepted):
        return CliRunner().invoke(main, ["--bootstrap-servers", "127.0.0.1:1", "exporter", *args])


def assert_refused(result, option: str) -> None:
    assert result.exit_code in (1, 2), (result.exit_code, result.output)
    text = result.output + (result.stderr if hasattr(result, "stderr") else "")
    assert option in text, text
    assert "Traceback" not in text
    assert not isinstance(result.exception, (AssertionError, TypeError, KeyError, AttributeError))


bad_ports = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=65536),
    st.text(min_size=1, max_size=30).filter(lambda s: not _valid_port(s)),
)
bad_intervals = st.one_of(
    st.floats(max_value=0.999, allow_nan=False),
    st.floats(min_value=86400.001),
    st.just(float("nan")),
    st.just(float("inf")),
    st.text(min_size=1, max_size=30).filter(lambda s: not _is_float(s)),
)


def _valid_port(s: str) -> bool:
    """What click's IntRange(1, 65535) takes (Python's int(): spaces, "+", "1_000", ...)."""
    try:
        return 1 <= int(s) <= 65535
    except ValueError:
        return False


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(port=bad_ports)
def test_hostile_ports_are_refused(port):
    assert_refused(run_cli("--port", str(port)), "--port")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(option=st.sampled_from(["--interval", "--health-interval", "--budget"]), value=bad_intervals)
def test_hostile_intervals_are_refused(option, value):
    text = repr(value) if isinstance(value, float) and math.isnan(value) else str(value)
    if option == "--budget" and _is_float(text) and 1 <= float(text) <= 50:
        return
    assert_refused(run_cli(option, text), option)


@pytest.mark.parametrize("value", ["-5", "-0.5", "0", "-inf", "nan"])
def test_negative_and_zero_intervals_are_refused(value):
    result = run_cli("--interval", value)
    assert_refused(result, "--interval")


def test_port_taken_is_a_clear_error(tmp_path: Path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    port = sock.getsockname()[1]
    try:
        out = subprocess.run(
            [*ECAP_OPS, "-b", "127.0.0.1:1", "exporter", "--port", str(port), "--no-health"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
    finally:
        sock.close()
    assert out.returncode == 1, out.stderr
    assert f"--port {port}" in out.stderr and "already in use" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "host,expect",
    [
        ("", "--host"),
        ("   ", "--host"),
        ("203.0.113.7", "not an address of this machine"),
        ("no such host.invalid", "--host"),
        ("a\x00b", "--host"),
    ],
)
def test_bad_hosts_are_clear_errors(host: str, expect: str):
    out = run_cli("--host", host, "--port", str(free_port()), "--no-health")
    assert out.exit_code in (1, 2), out.output
    text = out.output + out.stderr
    assert expect in text, text
    assert "Traceback" not in text


def test_the_exporter_leaves_the_kafka_logger_as_it_found_it_in_process():
    """The gateway reads kafka-python's connection reports to tell a TLS or login failure
    from a broker that does not answer; an exporter run in process (as these tests do) must
    not leave that logger silenced for whatever runs next."""
    import logging

    kafka_log = logging.getLogger("kafka")
    before = (kafka_log.level, kafka_log.propagate, kafka_log.disabled)
    run_cli("--port", str(free_port()))  # accepted: stopped as it starts measuring
    run_cli("--port", "99999")  # refused
    assert (kafka_log.level, kafka_log.propagate, kafka_log.disabled) == before
