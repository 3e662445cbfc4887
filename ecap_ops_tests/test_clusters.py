"""The clusters file (ECAP_CLUSTERS_FILE) and the global --cluster: parsed whole with YAML
paths, hostile files refused with clear errors, secrets only by variable name, and the
single-cluster variables unchanged when no clusters file is given."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecap_ops.clusters import (
    DEFAULT_CLUSTER,
    cluster_config,
    cluster_settings,
    load_clusters,
    parse_clusters,
)
from ecap_ops.errors import CatalogInvalid, ConfigError, EcapOpsError
from ecap_ops.settings import KafkaSettings
from ecap_ops_tests.helpers import run_failures

GOOD = """\
version: 1
clusters:
  prod:
    role: primary
    env: prod
    bootstrap_servers: [p1:9093, p2:9093]
    security_protocol: SASL_SSL
    sasl_mechanism: SCRAM-SHA-512
    sasl_username: ops
    password_env: PROD_PW
  dr:
    role: standby
    env: prod
    bootstrap_servers: d1:9092
    request_timeout_ms: 3000
"""


def test_a_good_file_gives_each_cluster_its_settings_and_the_password_from_its_variable():
    clusters = parse_clusters(GOOD, environ={"PROD_PW": "s3cret-value"})
    assert list(clusters) == ["prod", "dr"]
    prod = clusters["prod"]
    assert (prod.role, prod.env, prod.password_env) == ("primary", "prod", "PROD_PW")
    assert prod.settings.servers == ["p1:9093", "p2:9093"]
    assert prod.checked_settings().sasl_password == "s3cret-value"
    assert "s3cret-value" not in repr(prod)
    assert clusters["dr"].settings.request_timeout_ms == 3000
    assert clusters["dr"].settings.security_protocol == "PLAINTEXT"


def test_an_unset_password_variable_is_reported_when_the_cluster_is_used_not_at_load():
    clusters = parse_clusters(GOOD, environ={})
    with pytest.raises(ConfigError, match="PROD_PW.*not set"):
        clusters["prod"].checked_settings()
    assert clusters["dr"].checked_settings().bootstrap_servers == "d1:9092"


def test_every_problem_is_reported_at_once_with_its_yaml_path():
    text = """\
clusters:
  Bad-Name:
    role: boss
    bootstrap_servers: nope
  prod:
    role: primary
    bootstrap_servers: a:1
    password: hunter2
    security_protocol: SASL_SSL
    sasl_mechanism: MD5
    connect_timeout_ms: 0
  prod2:
    role: primary
    bootstrap_servers: b:1
    password_env: "not a name"
"""
    with pytest.raises(CatalogInvalid) as e:
        parse_clusters(text, environ={})
    msg = str(e.value)
    for expected in (
        "clusters.Bad-Name: a cluster name",
        "clusters.Bad-Name.role: 'boss' is not one of",
        "clusters.Bad-Name.bootstrap_servers",
        "clusters.prod.password: a clusters file never holds a password",
        "clusters.prod.sasl_mechanism",
        "clusters.prod.sasl_username: SASL username: required",
        "clusters.prod.connect_timeout_ms: connect_timeout_ms: must be > 0",
        "clusters.prod2.password_env: must be an environment variable name",
    ):
        assert expected in msg, (expected, msg)
    assert "hunter2" not in msg


def test_two_primaries_are_refused():
    text = "clusters:\n  a: {role: primary, bootstrap_servers: 'a:1'}\n  b: {role: primary, bootstrap_servers: 'b:1'}\n"
    with pytest.raises(CatalogInvalid, match="2 clusters have role primary"):
        parse_clusters(text, environ={})


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "found nothing"),
        ("- a\n- b\n", "found a list"),
        ("clusters: {}\n", "non-empty mapping"),
        ("clusters:\n  a: &x {role: dev}\n  b: *x\n", "anchors"),
        ("clusters:\n  a: !!python/object {}\n", "tags"),
        ("clusters:\n  yes: {role: dev, bootstrap_servers: 'a:1'}\n", "read by YAML as a boolean"),
        (
            "version: 2\nclusters:\n  a: {role: dev, bootstrap_servers: 'a:1'}\n",
            "unsupported version",
        ),
        ("clusters:\n  default: {role: dev, bootstrap_servers: 'a:1'}\n", "kept for the cluster"),
        ("clusters:\n  a: {role: dev}\n", "bootstrap_servers: required"),
        ("clusters:\n  a: {role: dev, bootstrap_servers: 'a:1', extra: 1}\n", "unknown key"),
        (
            "clusters:\n  a: {role: dev, bootstrap_servers: 'a:1'}\n---\nx: 1\n",
            "second YAML document",
        ),
    ],
)
def test_hostile_or_wrong_files_are_refused_naming_the_problem(text, problem):
    with pytest.raises(CatalogInvalid, match=problem):
        parse_clusters(text, environ={})


_key = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=30)
_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(allow_nan=True), _key
)
_entry = st.dictionaries(
    st.sampled_from(
        [
            "role",
            "env",
            "bootstrap_servers",
            "security_protocol",
            "sasl_mechanism",
            "sasl_username",
            "password_env",
            "ssl_cafile",
            "connect_timeout_ms",
            "request_timeout_ms",
            "description",
            "password",
            "zzz",
        ]
    )
    | _key,
    _scalar | st.lists(_scalar, max_size=3),
    max_size=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_key, _entry | _scalar, max_size=4), st.integers(0, 3))
def test_generated_files_load_or_are_refused_with_a_clear_error(clusters, version):
    import yaml

    text = yaml.safe_dump({"version": version, "clusters": clusters}, allow_unicode=True)
    try:
        out = parse_clusters(text, environ={})
    except CatalogInvalid as exc:
        assert exc.errors and all(isinstance(e, str) and e for e in exc.errors)
        for e in exc.errors:
            assert len(e) < 1500
        return
    for name, cfg in out.items():
        assert cfg.name == name and cfg.role in ("primary", "standby", "staging", "dev", "test")
        assert cfg.settings.problems(environment=False) == []


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_escape_as_anything_but_our_error(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("c") / "clusters.yaml"
    p.write_bytes(data)
    try:
        load_clusters(p, environ={})
    except EcapOpsError:
        pass


def test_a_huge_file_is_refused_by_its_size(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_text("clusters:\n" + "# pad\n" * 100_000)
    with pytest.raises(CatalogInvalid, match="larger than"):
        load_clusters(p, environ={})


def test_without_a_clusters_file_the_single_cluster_variables_are_used_as_before():
    env = {"KAFKA_BOOTSTRAP_SERVERS": "x:1", "ECAP_ENV": "prod"}
    assert load_clusters(environ=env) == {}
    assert cluster_settings(None, environ=env) == KafkaSettings.from_env(env)
    default = cluster_config(None, environ=env)
    assert (default.name, default.env, default.role) == (DEFAULT_CLUSTER, "prod", "primary")
    with pytest.raises(ConfigError, match="no clusters file is configured"):
        cluster_config("prod", environ=env)


def test_an_unknown_cluster_is_refused_naming_the_known_ones(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(GOOD)
    with pytest.raises(ConfigError, match="known clusters: prod, dr"):
        cluster_config("staging", environ={"ECAP_CLUSTERS_FILE": str(p)})


def test_the_shipped_example_is_valid():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    clusters = load_clusters(os.path.join(root, "clusters.example.yaml"), environ={})
    assert {c.role for c in clusters.values()} >= {"primary", "standby"}


def _cli(*args, env=None):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ECAP_"))}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ecap_ops", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
    )


def test_cli_cluster_flag_refuses_bad_names_and_files_clearly(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(GOOD)
    out = _cli("--cluster", "nope", "list-topics", env={"ECAP_CLUSTERS_FILE": str(p)})
    assert out.returncode == 1 and "known clusters: prod, dr" in out.stderr
    out = _cli("--cluster", "prod", "list-topics", env={"ECAP_CLUSTERS_FILE": str(p)})
    assert out.returncode == 1 and "PROD_PW" in out.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("clusters:\n  x: {role: dev, bootstrap_servers: 'a:1', password: topsecret}\n")
    out = _cli("--cluster", "x", "list-topics", env={"ECAP_CLUSTERS_FILE": str(bad)})
    assert out.returncode == 1 and "never holds a password" in out.stderr
    assert "topsecret" not in out.stderr + out.stdout
    for o in (out,):
        assert "Traceback" not in o.stderr


def test_cli_cluster_flag_talks_to_that_cluster_with_its_catalog_overlay(kafka_cluster, tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        "clusters:\n"
        f"  local: {{role: primary, env: prod, bootstrap_servers: '{kafka_cluster.bootstrap_servers}'}}\n"
    )
    env = {"ECAP_CLUSTERS_FILE": str(p), "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    out = _cli("--cluster", "local", "plan", "-o", "json", env=env)
    import json

    doc = json.loads(out.stdout)
    # The cluster's prod overlay (replication 3) judged against its one broker: refused,
    # which only the cluster's brokers and the prod overlay together produce.
    assert out.returncode == 1 and doc["summary"]["refused"] == 5, out.stdout[:800]
    assert "Traceback" not in out.stderr
    out = _cli("--cluster", "local", "--env", "dev", "plan", "-o", "json", env=env)
    assert out.returncode in (0, 2), out.stderr
    assert json.loads(out.stdout)["summary"]["refused"] == 0
    # Without --cluster, the KAFKA_* variables (a dead address here) as before.
    out = _cli("list-topics", env={**env, "ECAP_KAFKA_CONNECT_TIMEOUT_MS": "1500"})
    assert out.returncode == 1 and "Traceback" not in out.stderr


# -- every area on every cluster: the retention audit and the metadata snapshot ----------


@pytest.fixture
def standby_cluster(kafka_cluster_b):
    """The session's second cluster (`conftest.kafka_cluster_b`), as the `dr` standby."""
    return kafka_cluster_b


def _two_clusters(tmp_path, home: str, dr: str, waits: str = ""):
    """The code location of a clusters file naming `prod` (home) and `dr` (a standby),
    built without touching the module-level `ecap_ops.definitions.defs`."""
    from ecap_ops.definitions import build_cluster_definitions

    p = tmp_path / "two-clusters.yaml"
    p.write_text(
        "version: 1\nclusters:\n"
        f"  prod: {{role: primary, env: dev, bootstrap_servers: '{home}'{waits}}}\n"
        f"  dr: {{role: standby, env: dev, bootstrap_servers: '{dr}'{waits}}}\n"
    )
    return build_cluster_definitions(load_clusters(p, environ={}))


def test_every_cluster_has_its_own_retention_audit_and_snapshot_on_its_own_resource(tmp_path):
    import dagster as dg

    defs = _two_clusters(tmp_path, "127.0.0.1:1", "127.0.0.1:2")
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    for key, group, resource, other in (
        ("retention_audit", "audits", "kafka", "kafka_dr"),
        ("kafka_metadata_snapshot", "disaster_recovery", "kafka", "kafka_dr"),
        ("dr/retention_audit", "dr__audits", "kafka_dr", "kafka"),
        ("dr/kafka_metadata_snapshot", "dr__disaster_recovery", "kafka_dr", "kafka"),
    ):
        asset_key = dg.AssetKey.from_user_string(key)
        node = graph.get(asset_key)
        assert node.group_name == group, (key, node.group_name)
        needs = defs.get_assets_def(asset_key).required_resource_keys
        assert resource in needs and other not in needs, (key, needs)
        # The page says which cluster it is about.
        cluster = "dr" if key.startswith("dr/") else "prod"
        assert node.tags.get("ecap_ops/cluster") == cluster
        assert node.description.startswith(f"[{cluster} · ")
    jobs = {j.name: j for j in repo.get_all_jobs()}
    schedules = {s.name: s for s in repo.schedule_defs}
    for job, schedule, cron in (
        ("dr__retention_audit_job", "dr__retention_audit_schedule", "30 3 * * *"),
        ("dr__dr_snapshot", "dr__dr_snapshot_schedule", "0 * * * *"),
    ):
        assert jobs[job].tags.get("ecap_ops/cluster") == "dr"
        assert schedules[schedule].job_name == job
        assert schedules[schedule].cron_schedule == cron
        base = job.removeprefix("dr__")
        assert base in jobs and jobs[base].tags.get("ecap_ops/cluster") == "prod"
    # Restore and the drill stay the home cluster's (the drill targets the standby).
    assert {"dr_restore", "dr_drill"} <= set(jobs)
    assert not {"dr__dr_restore", "dr__dr_drill"} & set(jobs)
    assert [s for s in schedules if "drill" in s] == ["dr_drill_schedule"]
    snap_desc = graph.get(dg.AssetKey(["dr", "kafka_metadata_snapshot"])).description
    assert "clusters/dr" in snap_desc and "dr__dr_snapshot_schedule" in snap_desc


_name = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=40)


@settings(max_examples=150, deadline=None)
@given(st.one_of(_name, st.sampled_from(["..", ".", "a/b", "../x", "dr/../prod", "_", "a" * 33])))
def test_a_clusters_snapshot_directory_is_its_own_and_inside_the_snapshot_directory(name):
    """Only names the clusters file accepts reach the snapshot directory, and each lands in
    its own subdirectory under <snapshot directory>/clusters, never outside it."""
    import yaml

    from ecap_ops.clusters import snapshot_dir_of
    from ecap_ops.orchestration.cluster_scope import SINGLE
    from ecap_ops.orchestration.dr import cluster_snapshot_dir
    from ecap_ops.settings import snapshot_dir

    text = yaml.safe_dump(
        {
            "clusters": {
                "home": {"role": "primary", "bootstrap_servers": "a:1"},
                name: {"role": "standby", "bootstrap_servers": "b:1"},
            }
        },
        allow_unicode=True,
    )
    try:
        clusters = parse_clusters(text, environ={})
    except CatalogInvalid as exc:
        assert any("clusters." in e for e in exc.errors), exc.errors
        return
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "clusters.yaml"
        path.write_text(text, encoding="utf-8")
        environ = {"ECAP_CLUSTERS_FILE": str(path), "ECAP_SNAPSHOT_DIR": str(Path(d) / "snaps")}
        base = snapshot_dir(environ)
        assert snapshot_dir_of(None, environ) == base
        assert snapshot_dir_of("home", environ) == base
        for cfg in clusters.values():
            if cfg.name == "home":
                continue
            got = snapshot_dir_of(cfg.name, environ)
            assert got.parent == base / "clusters" and got.name == cfg.name
            assert got.resolve().is_relative_to((base / "clusters").resolve())
            assert got.resolve() != (base / "clusters").resolve()
    # The Dagster asset's rule is the same one: no clusters file, no prefix, the base.
    assert cluster_snapshot_dir(SINGLE) == snapshot_dir()


def _cluster_id(bootstrap: str) -> str:
    from ecap_ops.gateway import KafkaGateway
    from ecap_ops.settings import KafkaSettings

    with KafkaGateway(KafkaSettings(bootstrap_servers=bootstrap)) as gw:
        return gw.brokers()[0]


def _topics(bootstrap: str) -> set[str]:
    from ecap_ops.gateway import KafkaGateway
    from ecap_ops.settings import KafkaSettings

    with KafkaGateway(KafkaSettings(bootstrap_servers=bootstrap)) as gw:
        return set(gw.topics(None))


def test_the_standbys_snapshot_is_of_the_standby_in_its_own_directory(
    kafka_cluster, standby_cluster, tmp_path, unique_name, monkeypatch
):
    import dagster as dg

    from ecap_ops.services.snapshot_files import latest_snapshot, list_snapshots, load_snapshot
    from ecap_ops_tests.helpers import kafka_tool

    base = tmp_path / "snapshots"
    monkeypatch.setenv("ECAP_SNAPSHOT_DIR", str(base))
    monkeypatch.setenv("ECAP_SNAPSHOT_KEEP", "2")
    home, dr = kafka_cluster.bootstrap_servers, standby_cluster.bootstrap_servers
    on_home, on_dr = f"{unique_name}-home", f"{unique_name}-dr"
    for cluster, topic in ((kafka_cluster, on_home), (standby_cluster, on_dr)):
        made = kafka_tool(cluster, "kafka-topics", "--create", "--topic", topic)
        assert made.returncode == 0, made.stderr
    home_id, dr_id = _cluster_id(home), _cluster_id(dr)
    assert home_id != dr_id
    defs = _two_clusters(tmp_path, home, dr)
    instance = dg.DagsterInstance.ephemeral()

    def take(key: str):
        asset_key = dg.AssetKey.from_user_string(key)
        result = dg.materialize(
            [defs.get_assets_def(asset_key)], resources=defs.resources, instance=instance
        )
        assert result.success, run_failures(result)
        (mat,) = result.get_asset_materialization_events()
        return mat.materialization.metadata

    home_before = _topics(home)
    meta = take("dr/kafka_metadata_snapshot")
    dr_dir = base / "clusters" / "dr"
    (written,) = list_snapshots(dr_dir)
    assert meta["path"].value == str(written) and meta["cluster_id"].value == dr_id
    snap = load_snapshot(written)
    assert snap.doc["source"]["cluster_id"] == dr_id
    assert on_dr in snap.topics and on_home not in snap.topics
    assert list_snapshots(base) == []  # the home's directory: nothing of the standby's
    assert _topics(home) == home_before  # the home cluster untouched

    meta = take("kafka_metadata_snapshot")
    (home_file,) = list_snapshots(base)
    home_snap = load_snapshot(home_file)
    assert home_snap.doc["source"]["cluster_id"] == home_id == meta["cluster_id"].value
    assert on_home in home_snap.topics and on_dr not in home_snap.topics
    assert list_snapshots(dr_dir) == [written]  # not pruned by the home's snapshot
    # Restore and the drill take the newest snapshot of the home's directory: the home's.
    assert latest_snapshot(base) == home_file

    # The standby's next snapshot is diffed against its own previous one, not the home's.
    meta = take("dr/kafka_metadata_snapshot")
    assert meta["diff_empty"].value is True, meta["diff_vs_previous"].value
    assert len(list_snapshots(dr_dir)) == 2 and list_snapshots(base) == [home_file]


def test_the_cli_keeps_each_clusters_snapshots_where_dagster_does(
    kafka_cluster, standby_cluster, tmp_path
):
    """`ecap-ops --cluster dr snapshot` writes where the `dr/kafka_metadata_snapshot` asset
    does, and `--cluster dr restore` (a dry run) takes the newest of the standby's own."""
    import json

    from ecap_ops.services.snapshot_files import list_snapshots, load_snapshot

    home, dr = kafka_cluster.bootstrap_servers, standby_cluster.bootstrap_servers
    clusters = tmp_path / "two-clusters.yaml"
    clusters.write_text(
        "version: 1\nclusters:\n"
        f"  prod: {{role: primary, env: dev, bootstrap_servers: '{home}'}}\n"
        f"  dr: {{role: standby, env: dev, bootstrap_servers: '{dr}'}}\n"
    )
    base = tmp_path / "snapshots"
    env = {"ECAP_CLUSTERS_FILE": str(clusters), "ECAP_SNAPSHOT_DIR": str(base)}
    taken = {}
    for name in ("dr", "prod"):
        out = _cli("--cluster", name, "snapshot", "-o", "json", env=env)
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-800:]
        taken[name] = json.loads(out.stdout)
    (dr_file,) = list_snapshots(base / "clusters" / "dr")
    (home_file,) = list_snapshots(base)
    assert taken["dr"]["path"] == str(dr_file) and taken["prod"]["path"] == str(home_file)
    assert load_snapshot(dr_file).doc["source"]["cluster_id"] == _cluster_id(dr)
    assert load_snapshot(home_file).doc["source"]["cluster_id"] == _cluster_id(home)
    out = _cli("--cluster", "dr", "restore", env=env)
    assert out.returncode == 0, out.stderr[-800:]
    assert dr_file.name in out.stderr and str(base / "clusters" / "dr") in out.stderr


def test_one_cluster_down_does_not_stop_the_others_retention_audit(
    kafka_cluster, tmp_path, unique_name
):
    import time

    import dagster as dg

    from ecap_ops_tests.bounds import CONNECT_MS, REQUEST_MS, assert_bounded, wait_limit_s
    from ecap_ops_tests.helpers import free_port, kafka_tool

    made = kafka_tool(kafka_cluster, "kafka-topics", "--create", "--topic", unique_name)
    assert made.returncode == 0, made.stderr
    dead = f"127.0.0.1:{free_port()}"
    waits = f", connect_timeout_ms: {CONNECT_MS}, request_timeout_ms: {REQUEST_MS}"
    # The home cluster is the one that is down; the standby answers.
    defs = _two_clusters(tmp_path, dead, kafka_cluster.bootstrap_servers, waits)
    instance = dg.DagsterInstance.ephemeral()
    home_key, dr_key = dg.AssetKey(["retention_audit"]), dg.AssetKey(["dr", "retention_audit"])

    def audit(*keys):
        return dg.materialize(
            [defs.get_assets_def(k) for k in keys],
            resources=defs.resources,
            instance=instance,
            raise_on_error=False,
        )

    # The down cluster's audit gives up within its own waits, naming its address.
    started = time.monotonic()
    alone = audit(home_key)
    took = time.monotonic() - started
    assert not alone.success
    assert_bounded(
        took, wait_limit_s(CONNECT_MS, REQUEST_MS, sequential_waits=2), "audit of a dead cluster"
    )
    # Both in one run: the down one fails, the other is audited all the same.
    result = audit(home_key, dr_key)
    assert not result.success
    for failing in (alone, result):
        by_step = {e.step_key: e for e in failing.all_events if e.is_step_failure}
        assert list(by_step) == ["retention_audit"], by_step
        why = by_step["retention_audit"].event_specific_data.error.message
        assert "retention audit" in why and dead in why, why
        assert "Traceback" not in why
    (mat,) = result.get_asset_materialization_events()
    assert mat.asset_key == dr_key
    audited = {r.data["topic"] for r in mat.materialization.metadata["report"].value.records}
    assert unique_name in audited
