"""Shared fixtures: a real local Kafka (1 node for the session, 3 nodes on demand) and helpers."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from ecap_ops.localkafka import LocalCluster, fetch_jars
from ecap_ops.settings import KafkaSettings
from ecap_ops_tests.helpers import topic_name

# Clusters started on demand (the 3-node cluster, the second one-node cluster) while they
# run, by fixture name, and the last test that uses each (see `pytest_runtest_teardown`).
_ON_DEMAND: dict[str, LocalCluster] = {}
_LAST_USER = pytest.StashKey[dict[str, pytest.Item]]()
# Session clusters that are stopped after the last test using them (the secured ones are
# in secure_fixtures.py).
ON_DEMAND_FIXTURES = ("kafka_cluster3", "kafka_cluster_b", "secure_kafka", "secure_kafka_standby")

# Generous: a cold CI machine fetches jars first and starts JVMs on 2 slow cores.
START_TIMEOUT_S = 180


def pytest_configure(config: pytest.Config) -> None:
    """A suite started in the background (CI, `nohup`, `&` without job control) inherits
    SIGINT ignored, and Dagster's in-process runs copy SIGINT's handler onto SIGTERM
    (`dagster._utils.interrupts`): from the first such run on, every process a test started
    (brokers' JVMs, MirrorMaker, clients, `dagster dev`) would ignore both and each stop
    would wait out its whole grace before SIGKILL. Each pytest process starts with them at
    their defaults, as in a terminal."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture(scope="session", autouse=True)
def ecap_state_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Snapshots (DR and pre-change), cleanup's observations and the change log of every test go to a directory of
    the session's own, never to the user's ~/.ecap-ops; CLI subprocesses inherit it."""
    import os

    base = tmp_path_factory.mktemp("ecap-state")
    saved = {
        k: os.environ.get(k) for k in ("ECAP_SNAPSHOT_DIR", "ECAP_CHANGE_LOG", "ECAP_STATE_DIR")
    }
    os.environ.setdefault("ECAP_SNAPSHOT_DIR", str(base / "snapshots"))
    os.environ.setdefault("ECAP_STATE_DIR", str(base / "state"))
    os.environ.setdefault("ECAP_CHANGE_LOG", str(base / "kafka_management.log"))
    yield base
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def kafka_lib() -> Path:
    """Kafka's jars, fetched with Maven once per session (a no-op when cached)."""
    return fetch_jars()


def _run_cluster(data_dir: Path, nodes: int) -> Iterator[LocalCluster]:
    """Start a cluster on free ports, yield it, and always stop it."""
    cluster = LocalCluster(data_dir, nodes=nodes, port=0)
    try:
        cluster.start(timeout=START_TIMEOUT_S)
        yield cluster
    finally:
        cluster.stop(timeout=30)


@pytest.fixture(scope="session")
def kafka_cluster(
    kafka_lib: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """A one-node local Kafka shared by the whole session."""
    yield from _run_cluster(tmp_path_factory.mktemp("kafka-1node"), nodes=1)


@pytest.fixture(scope="session")
def kafka_cluster3(
    kafka_lib: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """A three-node local Kafka, started only when a test asks for it, and stopped right
    after the last test that uses it (three idle JVMs would slow every test after them)."""
    for cluster in _run_cluster(tmp_path_factory.mktemp("kafka-3node"), nodes=3):
        _ON_DEMAND["kafka_cluster3"] = cluster
        yield cluster


@pytest.fixture(scope="session")
def kafka_cluster_b(
    kafka_lib: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """A second one-node local Kafka (a DR standby, the other side of a comparison or of
    MirrorMaker 2), shared by the modules that need two clusters and stopped right after the
    last test that uses it. Tests on it use their own topic and group names and compare
    before and after, as on the session's first cluster."""
    for cluster in _run_cluster(tmp_path_factory.mktemp("kafka-second"), nodes=1):
        _ON_DEMAND["kafka_cluster_b"] = cluster
        yield cluster


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_cluster: LocalCluster) -> str:
    """Bootstrap servers of the session's one-node cluster."""
    return kafka_cluster.bootstrap_servers


@pytest.fixture(scope="session")
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Connection settings for the session's cluster, with short timeouts."""
    return KafkaSettings(
        bootstrap_servers=kafka_bootstrap, connect_timeout_ms=5000, request_timeout_ms=10000
    )


@pytest.fixture(scope="session")
def cli_startup_s() -> float:
    """What starting an `ecap-ops` process costs on this machine now (seconds, measured):
    the part of a CLI's time limit that is not a Kafka wait (`ecap_ops_tests/bounds.py`)."""
    from ecap_ops_tests.bounds import measure_cli_startup_s

    return measure_cli_startup_s()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A fresh topic-name-safe string for this test (its name plus a random suffix)."""
    return topic_name(request.node.name.removeprefix("test_")[:40])


# `make test` runs two pytest-xdist workers with `--dist loadgroup`, and every test that
# needs a broker is in one of two groups, each run by one worker in file order, one test at
# a time: the modules that use a cluster started on demand (three nodes, a second or a
# secured one: each starts once, on one worker) and the modules that need only the
# session's one-node broker (each worker starts its own). A module's broker tests stay
# together, so its module-scoped fixtures (a `dagster dev`, a browser) start once. The
# pure-logic tests fill in wherever a worker is free. A plain `pytest` runs all serially.
KAFKA_GROUP = "kafka"
CLUSTERS_GROUP = "kafka-clusters"
# The Dagster UI modules (a `dagster dev` and a headless browser each) join the clusters
# group so that both take about as long: in a run with every broker test on one worker, the
# cluster modules' broker tests took ~8 min, these three ~4 min, the other broker tests
# ~14 min, and the pure-logic tests ~3.5 min.
BESIDE_THE_CLUSTERS = ("test_ui.py", "test_dagster_plots.py", "test_contracts_ui.py")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks follow from the fixtures a test uses (directly or through other fixtures), so
    `-m "not kafka"` never starts a broker: every broker comes from `kafka_lib`."""
    last: dict[str, pytest.Item] = {}
    on_demand_modules: set[str] = set()
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "kafka_lib" in names:
            item.add_marker(pytest.mark.kafka)
        if "kafka_cluster3" in names:
            item.add_marker(pytest.mark.cluster3)
        for fixture in ON_DEMAND_FIXTURES:
            if fixture in names:
                last[fixture] = item
                on_demand_modules.add(item.nodeid.split("::", 1)[0])
    for item in items:
        if item.get_closest_marker("kafka") is not None:
            module = item.nodeid.split("::", 1)[0]
            beside = item.path.name in BESIDE_THE_CLUSTERS
            group = CLUSTERS_GROUP if module in on_demand_modules or beside else KAFKA_GROUP
            item.add_marker(pytest.mark.xdist_group(group))
    config.stash[_LAST_USER] = last


@pytest.hookimpl(trylast=True)  # after pytest's own teardown has finalized the module's fixtures
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop an on-demand cluster once the last test that uses it is done, and after the
    fixtures built on it (a module's clean-up may still read it): idle JVMs would slow
    every test after them."""
    for fixture, last in item.config.stash.get(_LAST_USER, {}).items():
        if item is last:
            cluster = _ON_DEMAND.pop(fixture, None)
            if cluster is not None:
                cluster.stop(timeout=30)
