"""The Docker Compose deployment stays consistent: docker-compose.yml, dagster.yaml,
workspace.yaml, .env.example, the Dockerfiles, Prometheus, the JMX exporter rules and the
Grafana dashboard, against each other and against the code.

No Docker engine is needed: `docker-compose config` validates the compose file, Dagster's
own schema validates dagster.yaml, and a real local Kafka broker with the JMX exporter
agent shows that every metric the dashboard queries is really exported.
"""

import ast
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from ecap_ops.localkafka import KAFKA_VERSION, LocalCluster
from ecap_ops.localkafka.cluster import free_port
from ecap_ops.orchestration.topics import PROVISIONING_TAG

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DAGSTER_YAML = REPO / "dagster.yaml"
WORKSPACE_YAML = REPO / "workspace.yaml"
PROMETHEUS_YAML = REPO / "deploy" / "prometheus" / "prometheus.yml"
JMX_RULES = REPO / "deploy" / "jmx-exporter" / "kafka-broker.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "kafka-overview.json"
DATASOURCES = REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DOCKERFILES = sorted((REPO / "deploy").glob("*/Dockerfile"))

# Environment variables the code reads that the deployment deliberately leaves unset, and why.
# Every other one must be set (possibly empty) in docker-compose.yml and passed to run containers.
OPTIONAL_IN_DEPLOYMENT = {
    "DAGSTER_HOME": "set by the Dagster images; the code uses it only as the snapshot folder's "
    "fallback when ECAP_SNAPSHOT_DIR is unset, and the deployment sets ECAP_SNAPSHOT_DIR",
}
# Metrics the JMX exporter agent exports on its own (JVM and process), and Prometheus' `up`.
AGENT_DEFAULT_METRIC = re.compile(r"^(jvm_[a-z0-9_]+|process_[a-z0-9_]+|up)$")
ENV_NAME = re.compile(r"^(?:ECAP|KAFKA|DAGSTER)_[A-Z0-9_]*[A-Z0-9]$")


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def dagster_config() -> dict:
    return load_yaml(DAGSTER_YAML)


def env_vars_read_by_code(root: Path = REPO / "ecap_ops") -> dict[str, set[str]]:
    """Every environment-variable name the package's code mentions as a whole string literal
    (`os.environ.get("X")`, `EnvVar("X")`, `_env_float("X", ...)`, ...) -> the files that read it.
    The local-Kafka development tool (ecap_ops/localkafka) never runs in the deployment."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        if "localkafka" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and ENV_NAME.match(node.value)
            ):
                found.setdefault(node.value, set()).add(str(path.relative_to(REPO)))
    return found


def service_env(compose: dict, service: str) -> dict[str, str]:
    env = compose["services"][service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def run_launcher_env_vars(dagster_config: dict) -> list[str]:
    return [v.split("=", 1)[0] for v in dagster_config["run_launcher"]["config"]["env_vars"]]


def dagster_yaml_env_refs(node) -> set[str]:
    """Names dagster.yaml reads with `{env: NAME}`."""
    out: set[str] = set()
    if isinstance(node, dict):
        if set(node) == {"env"}:
            out.add(node["env"])
        for v in node.values():
            out |= dagster_yaml_env_refs(v)
    elif isinstance(node, list):
        for v in node:
            out |= dagster_yaml_env_refs(v)
    return out


def docker_compose(
    *args: str, env_file: Path | None, overrides: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess:
    exe = shutil.which("docker-compose")
    assert exe, (
        "docker-compose (Debian's package) is not installed: bash scripts/install-system-deps.sh"
    )
    argv = [exe, "-f", str(COMPOSE), *(a for f in overrides for a in ("-f", str(f)))]
    argv += ["--project-directory", str(REPO)]
    if env_file is not None:
        argv += ["--env-file", str(env_file)]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=120, cwd=REPO)


# -- docker-compose.yml -------------------------------------------------------------------


def test_compose_config_is_valid_with_the_example_env():
    result = docker_compose("config", "-q", env_file=ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_the_secrets(tmp_path: Path):
    env_file = tmp_path / "no-secrets.env"
    env_file.write_text("ECAP_ENV=dev\n")
    result = docker_compose("config", "-q", env_file=env_file)
    assert result.returncode != 0
    assert "DAGSTER_POSTGRES_PASSWORD" in result.stderr or "GRAFANA_ADMIN_PASSWORD" in result.stderr


def test_the_sasl_ssl_option_is_valid_and_refuses_to_start_without_its_settings(tmp_path: Path):
    secure = REPO / "docker-compose.secure.yml"
    settings = "KAFKA_BOOTSTRAP_SERVERS=kafka-1:9094\nKAFKA_SASL_USERNAME=ecap-ops\n"
    env_file = tmp_path / "secure.env"
    env_file.write_text(ENV_EXAMPLE.read_text() + settings + "KAFKA_SASL_PASSWORD=pw-1\n")
    result = docker_compose("config", "-q", env_file=env_file, overrides=(secure,))
    assert result.returncode == 0, result.stderr
    shown = docker_compose("config", env_file=env_file, overrides=(secure,))
    services = yaml.safe_load(shown.stdout)["services"]
    for name in ("ecap-provision", "ecap-user-code", "ecap-daemon", "ecap-exporter", "ecap-access"):
        env = services[name]["environment"]
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka-1:9094", name
        assert env["KAFKA_SSL_CAFILE"] == "/var/lib/ecap-ops/state/tls/ca.pem", name
    # Run containers read the CA from a volume dagster.yaml already mounts into them.
    launcher = load_yaml(DAGSTER_YAML)["run_launcher"]["config"]["container_kwargs"]
    assert any(v.startswith("ecap_state:/var/lib/ecap-ops/state") for v in launcher["volumes"])
    assert services["ecap-access"]["command"] == ["ecap-ops", "access", "apply"]
    without = tmp_path / "no-password.env"
    without.write_text(ENV_EXAMPLE.read_text() + settings)
    refused = docker_compose("config", "-q", env_file=without, overrides=(secure,))
    assert refused.returncode != 0 and "KAFKA_SASL_PASSWORD" in refused.stderr


def test_compose_has_the_services_of_the_design(compose: dict):
    services = compose["services"]
    for name in (
        "ecap-kafka",
        "ecap-provision",
        "ecap-postgres",
        "ecap-user-code",
        "ecap-webserver",
        "ecap-daemon",
        "prometheus",
        "grafana",
        "kafka-ui",
    ):
        assert name in services, f"docker-compose.yml: service {name} is missing"
    assert (
        services["ecap-kafka"]["container_name"] == "ecap-kafka"
    )  # the guide's `docker exec ecap-kafka ...`
    assert "dagster-daemon" in services["ecap-daemon"]["entrypoint"]
    assert services["ecap-provision"]["restart"] == "no"
    assert "create-topics" in services["ecap-provision"]["command"]
    for name in ("ecap-kafka", "ecap-postgres", "ecap-user-code"):
        assert "healthcheck" in services[name], f"{name}: needs a health check"
    for name in ("ecap-kafka", "ecap-postgres"):
        mounts = [str(v) for v in services[name].get("volumes", [])]
        assert any(":/var/lib/" in m and not m.startswith(("./", "/")) for m in mounts), (
            f"{name}: data needs a named volume"
        )


def test_host_ports_are_distinct_and_documented(compose: dict):
    published = {}
    for name, svc in compose["services"].items():
        for mapping in svc.get("ports", []):
            host = str(mapping).split(":")[0]
            assert host not in published, (
                f"host port {host} used by {published.get(host)} and {name}"
            )
            published[host] = name
    assert published == {
        "9092": "ecap-kafka",
        "3000": "ecap-webserver",
        "3001": "grafana",
        "9090": "prometheus",
        "8080": "kafka-ui",
    }
    readme = (REPO / "README.md").read_text() if (REPO / "README.md").exists() else ""
    docs = readme + (REPO / "docs" / "deployment.md").read_text()
    for port in published:
        assert f"localhost:{port}" in docs, (
            f"port {port} ({published[port]}) is not in the deployment docs"
        )


def test_images_are_pinned(compose: dict):
    for name, svc in compose["services"].items():
        image = svc.get("image")
        assert image, f"{name}: no image (a built service names its image with a version tag too)"
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and "/" not in tag, (
            f"{name}: image {image!r} is not pinned to a version"
        )
        assert re.search(r"\d", tag), f"{name}: image tag {tag!r} is not a version"
    for dockerfile in DOCKERFILES:
        for line in dockerfile.read_text().splitlines():
            if line.startswith("FROM "):
                ref = line.split()[1]
                assert ":" in ref and not ref.endswith(":latest"), (
                    f"{dockerfile}: {line!r} is not pinned"
                )


def test_kafka_image_is_the_jars_version(compose: dict):
    dockerfile = (REPO / "deploy" / "kafka" / "Dockerfile").read_text()
    assert f"FROM apache/kafka:{KAFKA_VERSION}\n" in dockerfile
    assert compose["services"]["ecap-kafka"]["image"].split(":")[1].startswith(f"{KAFKA_VERSION}-")
    pom = (REPO / "ecap_ops" / "localkafka" / "pom.xml").read_text()
    assert f"<kafka.version>{KAFKA_VERSION}</kafka.version>" in pom


def test_dagster_images_use_the_projects_pins():
    pins = dict(re.findall(r'"(dagster[a-z-]*)==([0-9.]+)"', (REPO / "pyproject.toml").read_text()))
    assert {"dagster", "dagster-webserver", "dagster-postgres", "dagster-docker"} <= set(pins)
    dockerfile = (REPO / "deploy" / "dagster" / "Dockerfile").read_text()
    in_image = dict(re.findall(r"(dagster[a-z-]*)==([0-9.]+)", dockerfile))
    assert in_image, "deploy/dagster/Dockerfile pins no Dagster package"
    for package, version in in_image.items():
        assert pins.get(package) == version, (
            f"deploy/dagster/Dockerfile: {package}=={version}, pyproject.toml pins {pins.get(package)}"
        )


def test_example_env_names_every_variable_compose_interpolates():
    text = COMPOSE.read_text()
    interpolated = set(
        re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text)
    )  # $${X} is the container's own
    example = ENV_EXAMPLE.read_text()
    named = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, flags=re.M))
    assert interpolated - named == set(), (
        f".env.example does not mention {sorted(interpolated - named)}"
    )
    # Secrets in the example are placeholders, never real values.
    for line in example.splitlines():
        if re.match(r"^#?\s*[A-Z_]*PASSWORD=", line):
            assert line.split("=", 1)[1] in ("", "change-me"), line


# -- environment variables: code, compose and dagster.yaml agree --------------------------


def test_env_scanner_finds_what_the_code_reads():
    found = env_vars_read_by_code()
    # Read through os.environ.get, EnvVar and a settings mapping respectively.
    for name in (
        "ECAP_ENV",
        "ECAP_ALERT_WEBHOOK_URL",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_BOOTSTRAP_SERVERS",
    ):
        assert name in found, f"the scan missed {name}"


def test_every_variable_the_code_reads_is_set_in_compose_and_passed_to_runs(
    compose: dict, dagster_config: dict
):
    found = env_vars_read_by_code()
    stale = set(OPTIONAL_IN_DEPLOYMENT) - set(found)
    assert not stale, f"OPTIONAL_IN_DEPLOYMENT lists names no code reads any more: {sorted(stale)}"
    required = set(found) - set(OPTIONAL_IN_DEPLOYMENT)
    launcher = set(run_launcher_env_vars(dagster_config))
    problems = []
    for name in sorted(required):
        where = ", ".join(sorted(found[name]))
        for service in ("ecap-user-code", "ecap-daemon"):
            if name not in service_env(compose, service):
                problems.append(
                    f"{name} (read in {where}) is not set for {service} in docker-compose.yml"
                )
        if name not in launcher:
            problems.append(
                f"{name} (read in {where}) is not passed to run containers (dagster.yaml run_launcher.config.env_vars)"
            )
    assert not problems, "\n".join(problems)


def test_variables_dagster_yaml_needs_are_set_where_it_is_loaded(
    compose: dict, dagster_config: dict
):
    refs = dagster_yaml_env_refs(dagster_config)
    assert {"DAGSTER_POSTGRES_PASSWORD", "DAGSTER_POSTGRES_HOST"} <= refs
    launcher = run_launcher_env_vars(dagster_config)
    assert len(launcher) == len(set(launcher)), "dagster.yaml: duplicate env_vars"
    for service in ("ecap-webserver", "ecap-daemon", "ecap-user-code"):
        env = service_env(compose, service)
        missing = (refs | set(launcher)) - set(env)
        # DockerRunLauncher refuses to launch when a listed name is unset in the daemon.
        assert not missing, f"{service}: dagster.yaml needs {sorted(missing)} in its environment"
    # The run workers reach the instance with the storage settings.
    assert refs <= set(launcher)


def test_deployment_turns_schedules_and_sensors_on(compose: dict):
    env = service_env(compose, "ecap-user-code")
    assert env["ECAP_SCHEDULES_DEFAULT"].endswith(":-running}")
    assert env["ECAP_SENSORS_DEFAULT"].endswith(":-running}")


# -- dagster.yaml and workspace.yaml -------------------------------------------------------


def test_dagster_yaml_is_a_valid_instance_config(
    tmp_path: Path, dagster_config: dict, monkeypatch: pytest.MonkeyPatch
):
    import importlib

    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config

    for name in dagster_yaml_env_refs(dagster_config):
        monkeypatch.setenv(name, "x")
    shutil.copy(DAGSTER_YAML, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path), "dagster.yaml")
    for key in ("run_launcher", "run_coordinator", "scheduler"):
        klass = getattr(importlib.import_module(config[key]["module"]), config[key]["class"])
        result = process_config(klass.config_type(), config[key].get("config") or {})
        assert result.success, f"dagster.yaml {key}: {result.errors}"
    assert config["run_launcher"]["class"] == "DockerRunLauncher"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert "postgres" in config["storage"]
    assert config["telemetry"]["enabled"] is False
    assert config["run_monitoring"]["enabled"] is True
    assert config["retention"]["sensor"]["purge_after_days"]["skipped"] >= 1


def test_dagster_yaml_typo_is_refused(tmp_path: Path):
    from dagster._core.errors import DagsterInvalidConfigError
    from dagster._core.instance.config import dagster_instance_config

    (tmp_path / "dagster.yaml").write_text(
        DAGSTER_YAML.read_text().replace("max_runtime_seconds", "max_runtime_secs")
    )
    with pytest.raises(DagsterInvalidConfigError, match="max_runtime_secs"):
        dagster_instance_config(str(tmp_path), "dagster.yaml")


def test_one_provisioning_run_at_a_time(dagster_config: dict):
    ((key, value),) = PROVISIONING_TAG.items()
    limits = dagster_config["run_coordinator"]["config"]["tag_concurrency_limits"]
    matching = [lim for lim in limits if lim["key"] == key and lim.get("value") in (None, value)]
    assert matching and all(lim["limit"] == 1 for lim in matching), limits


def test_run_containers_join_the_compose_network_and_volumes(compose: dict, dagster_config: dict):
    launcher = dagster_config["run_launcher"]["config"]
    networks = {n.get("name", k) if n else k for k, n in compose["networks"].items()}
    assert launcher["network"] in networks
    volume_names = {(v or {}).get("name", k) for k, v in compose["volumes"].items()}
    for mount in launcher["container_kwargs"]["volumes"]:
        assert mount.split(":")[0] in volume_names, (
            f"dagster.yaml mounts {mount}, which docker-compose.yml does not name"
        )
    image = compose["services"]["ecap-user-code"]["image"]
    assert service_env(compose, "ecap-user-code")["DAGSTER_CURRENT_IMAGE"] == image


def test_workspace_points_at_the_user_code_server(compose: dict):
    (entry,) = load_yaml(WORKSPACE_YAML)["load_from"]
    server = entry["grpc_server"]
    svc = compose["services"][server["host"]]
    command = svc["command"]
    assert command[:3] == ["dagster", "code-server", "start"]
    assert command[command.index("-p") + 1] == str(server["port"])
    assert str(server["port"]) in svc["healthcheck"]["test"]
    assert command[command.index("-m") + 1] == "ecap_ops"
    dockerfile = (REPO / "deploy" / "dagster" / "Dockerfile").read_text()
    assert "COPY dagster.yaml workspace.yaml ./" in dockerfile


def test_local_entry_points_never_use_the_deployment_instance():
    """The deployment's dagster.yaml and workspace.yaml sit at the top level, where Dagster's
    CLI would load them with DAGSTER_HOME unset: every local entry point sets its own."""
    makefile = (REPO / "Makefile").read_text()
    for target in ("run", "run-secure", "validate"):
        body = re.search(rf"^{target}:.*?(?=^\S)", makefile, re.S | re.M)
        assert body and "DAGSTER_HOME=" in body.group(0), f"make {target} must set DAGSTER_HOME"
    assert re.search(r"-w \S*local/workspace\.yaml", makefile)


# -- Prometheus, the JMX exporter and Grafana ----------------------------------------------


def jmx_rule_patterns() -> list[re.Pattern]:
    """The metric names the exporter's rules can produce, as regular expressions."""
    rules = load_yaml(JMX_RULES)
    assert rules["lowercaseOutputName"] is True
    out = []
    for rule in rules["rules"]:
        template = rule["name"].lower()
        out.append(re.compile("^" + re.sub(r"\\\$\d+", "[a-z0-9_]+", re.escape(template)) + "$"))
    return out


def dashboard_metrics() -> set[str]:
    """Every metric name the Kafka Overview dashboard's queries use."""
    names: set[str] = set()
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = re.sub(r'"[^"]*"', "", target["expr"])
            expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
            names |= {
                t
                for t in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
                if t.startswith(("kafka_", "jvm_", "process_")) or t == "up"
            }
    return names


def kafka_exporter_port(compose: dict) -> int:
    opts = service_env(compose, "ecap-kafka")["KAFKA_OPTS"]
    m = re.search(r"-javaagent:(\S+?\.jar)=(\d+):(\S+)", opts)
    assert m, f"ecap-kafka KAFKA_OPTS has no JMX exporter agent: {opts!r}"
    assert m.group(3) == "/opt/jmx-exporter/kafka-broker.yml"
    return int(m.group(2))


def test_prometheus_config_parses_and_its_targets_exist(compose: dict):
    config = load_yaml(PROMETHEUS_YAML)
    assert config["global"]["scrape_interval"].endswith("s")
    hosts = (
        set(compose["services"])
        | {s.get("container_name") for s in compose["services"].values()}
        | {s.get("hostname") for s in compose["services"].values()}
    )
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert len(jobs) == len(config["scrape_configs"]), "duplicate job_name"
    kafka_targets = [t for sc in jobs["kafka"]["static_configs"] for t in sc["targets"]]
    assert kafka_targets == [f"ecap-kafka:{kafka_exporter_port(compose)}"]
    for job in jobs.values():
        for sc in job["static_configs"]:
            for target in sc["targets"]:
                host, port = target.rsplit(":", 1)
                assert port.isdigit()
                assert host == "localhost" or host in hosts, (
                    f"prometheus job {job['job_name']}: no service {host}"
                )
    mounted = compose["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounted


def test_dashboard_parses_and_uses_only_exported_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "Kafka Overview"
    (source,) = load_yaml(DATASOURCES)["datasources"]
    assert source["url"] == "http://prometheus:9090"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
    metrics = dashboard_metrics()
    assert len(metrics) >= 10 and "kafka_server_brokertopicmetrics_messagesin_total" in metrics
    patterns = jmx_rule_patterns()
    unknown = [
        m
        for m in sorted(metrics)
        if not AGENT_DEFAULT_METRIC.match(m) and not any(p.match(m) for p in patterns)
    ]
    assert not unknown, f"dashboard queries metrics no exporter rule produces: {unknown}"


def test_metric_check_catches_a_misspelt_metric():
    patterns = jmx_rule_patterns()
    assert any(p.match("kafka_server_replicamanager_underreplicatedpartitions") for p in patterns)
    assert not any(p.match("kafka_broker_underreplicated") for p in patterns)


def _jmx_agent_jar() -> Path:
    """The JMX exporter agent at the Dockerfile's pinned version, fetched by Maven once."""
    dockerfile = (REPO / "deploy" / "kafka" / "Dockerfile").read_text()
    version = re.search(r"ARG JMX_EXPORTER_VERSION=(\S+)", dockerfile).group(1)
    sha256 = re.search(r"ARG JMX_EXPORTER_SHA256=(\S+)", dockerfile).group(1)
    jar = (
        Path.home()
        / ".m2"
        / "repository"
        / "io"
        / "prometheus"
        / "jmx"
        / "jmx_prometheus_javaagent"
        / version
        / f"jmx_prometheus_javaagent-{version}.jar"
    )
    if not jar.exists():
        subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "dependency:get",
                f"-Dartifact=io.prometheus.jmx:jmx_prometheus_javaagent:{version}",
                "-Dtransitive=false",
            ],
            check=True,
            timeout=300,
            capture_output=True,
        )
    import hashlib

    assert hashlib.sha256(jar.read_bytes()).hexdigest() == sha256, (
        f"{jar}: checksum differs from deploy/kafka/Dockerfile"
    )
    return jar


@pytest.mark.kafka
@pytest.mark.slow
def test_real_broker_with_the_agent_exports_every_dashboard_metric(
    kafka_lib: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Kafka 4.4 with the exporter agent and our rules, as ecap-kafka runs them: every metric
    the dashboard queries, and the setup guide's query, are really there."""
    jar = _jmx_agent_jar()
    port = free_port()
    # The JVM reads JAVA_TOOL_OPTIONS itself: the same agent flags as KAFKA_OPTS in compose.
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", f"-javaagent:{jar}={port}:{JMX_RULES}")
    cluster = LocalCluster(tmp_path / "kafka-jmx", nodes=1, port=0)
    try:
        cluster.start(timeout=180)
        monkeypatch.delenv("JAVA_TOOL_OPTIONS")
        topic = f"jmx-{int(time.time())}"
        from kafka import KafkaAdminClient, KafkaProducer

        with KafkaAdminClient(
            bootstrap_servers=cluster.bootstrap_servers, request_timeout_ms=10000
        ) as admin:
            admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
        producer = KafkaProducer(
            bootstrap_servers=cluster.bootstrap_servers, request_timeout_ms=10000
        )
        for i in range(5):
            producer.send(topic, f"m{i}".encode()).get(timeout=15)
        producer.close(timeout=10)
        deadline = time.monotonic() + 30
        while True:
            body = (
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10)
                .read()
                .decode()
            )
            exported = {
                line.split("{")[0].split(" ")[0]
                for line in body.splitlines()
                if line and not line.startswith("#")
            }
            missing = sorted(m for m in dashboard_metrics() if m != "up" and m not in exported)
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(2)
    finally:
        cluster.stop(timeout=30)
    assert not missing, f"the broker does not export {missing}"
    assert "kafka_server_brokertopicmetrics_messagesinpersec" in exported  # the setup guide's query
    assert f'kafka_server_brokertopicmetrics_messagesin_total{{topic="{topic}"}} 5.0' in body
    assert "untyped" not in {
        line.split()[-1] for line in body.splitlines() if line.startswith("# TYPE kafka_")
    }
