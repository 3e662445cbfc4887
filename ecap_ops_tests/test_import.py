"""`ecap-ops import`: a catalog from a live cluster that loads and plans no change.

Pure tests of the conversion (cluster state -> catalog data -> YAML -> catalog -> plan),
with generated topics and overrides; and on the real broker: a few hundred topics with
random partitions and overrides (broker defaults set on the topic, infinite retention,
compaction, min.insync.replicas, max.message.bytes) imported, reloaded and planned with 0
changes; an existing file is never overwritten without --force; hostile patterns are
refused before anything is read or written."""

import json
import random
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecap_ops.catalog import load_catalog, parse_catalog
from ecap_ops.catalog.kafka_configs import canonical_value, normalize_config_value
from ecap_ops.catalog.units import parse_duration_ms, parse_size_bytes
from ecap_ops.core.import_catalog import (
    catalog_document,
    duration_text,
    match_problems,
    render_catalog,
    size_value,
)
from ecap_ops.core.plan import make_plan
from ecap_ops.core.state import BrokerInfo, ClusterState, PartitionState, TopicState
from ecap_ops_tests.secure_fixtures import secure_kafka  # noqa: F401 (fixture)
from ecap_ops_tests.test_provisioning import ecap_ops

# --- pure: the conversion ----------------------------------------------------------------

LONG = st.integers(min_value=-1, max_value=2**63 - 1)


@given(LONG)
@settings(max_examples=200, deadline=None)
def test_a_duration_is_written_in_units_that_read_back_exactly(ms):
    text = duration_text(ms)
    assert parse_duration_ms(text) == ms
    assert " " not in text


@given(LONG)
@settings(max_examples=200, deadline=None)
def test_a_size_is_written_in_units_that_read_back_exactly(n):
    assert parse_size_bytes(size_value(n)) == n


@pytest.mark.parametrize(
    "ms, text",
    [(604_800_000, "7d"), (-1, "infinite"), (0, "0ms"), (90_000, "90s"), (1500, "1500ms")],
)
def test_durations_read_as_people_write_them(ms, text):
    assert duration_text(ms) == text


@pytest.mark.parametrize(
    "n, value", [(1_048_576, "1MiB"), (1_048_588, 1_048_588), (-1, "infinite"), (0, 0)]
)
def test_sizes_read_as_people_write_them(n, value):
    assert size_value(n) == value


def _topic(name, partitions=1, rf=1, overrides=None, internal=False):
    parts = tuple(
        PartitionState(p, 1, tuple(range(1, rf + 1)), tuple(range(1, rf + 1)))
        for p in range(partitions)
    )
    return TopicState(name, parts, dict(overrides or {}), {}, internal)


def _cluster(*topics, brokers=3):
    return ClusterState(
        "c1",
        1,
        tuple(BrokerInfo(i, "h", 9092) for i in range(1, brokers + 1)),
        {t.name: t for t in topics},
    )


# Overrides as a broker reports them (Kafka's string form), each a valid value.
OVERRIDE_VALUES = {
    "retention.ms": st.sampled_from(["604800000", "-1", "3600000", "90061000", "1500", "0"]),
    "retention.bytes": st.sampled_from(["-1", "1073741824", "123456789"]),
    "max.message.bytes": st.sampled_from(["1048588", "2097152", "1000000", "524288"]),
    "cleanup.policy": st.sampled_from(["delete", "compact", "compact,delete", "delete,compact"]),
    "compression.type": st.sampled_from(["producer", "lz4", "gzip", "zstd", "uncompressed"]),
    "min.insync.replicas": st.sampled_from(["1", "2"]),
    "min.cleanable.dirty.ratio": st.sampled_from(["0.5", "0.1", "0.75", "1.0", "0.0"]),
    "unclean.leader.election.enable": st.sampled_from(["true", "false"]),
    "message.timestamp.type": st.sampled_from(["CreateTime", "LogAppendTime"]),
    "segment.bytes": st.sampled_from(["1073741824", "104857600", "1048577"]),
    "delete.retention.ms": st.sampled_from(["86400000", "1"]),
    "preallocate": st.sampled_from(["true", "false"]),
    "follower.replication.throttled.replicas": st.sampled_from(["*", "0:1,1:2", ""]),
}
# Names YAML would read as something else unless quoted.
TRICKY_NAMES = ["yes", "no", "null", "true", "0777", "1e3", "1_000", "2024-01-01", "on", "0x1F"]
topic_names = st.one_of(
    st.sampled_from(TRICKY_NAMES),
    st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9._-]{0,30}", fullmatch=True),
).filter(lambda n: n not in (".", "..") and not n.startswith("__"))


@st.composite
def clusters(draw):
    names = draw(
        st.lists(topic_names, min_size=1, max_size=12, unique_by=lambda n: n.replace(".", "_"))
    )
    topics = []
    for name in names:
        rf = draw(st.integers(1, 3))
        keys = draw(st.lists(st.sampled_from(sorted(OVERRIDE_VALUES)), max_size=6, unique=True))
        overrides = {k: draw(OVERRIDE_VALUES[k]) for k in keys}
        if "min.insync.replicas" in overrides:
            overrides["min.insync.replicas"] = str(min(rf, int(overrides["min.insync.replicas"])))
        topics.append(_topic(name, draw(st.integers(1, 64)), rf, overrides))
    return _cluster(*topics)


@given(clusters(), st.sampled_from(["dev", "prod", "staging"]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_an_imported_catalog_loads_and_plans_no_change(cluster, env):
    imported = catalog_document(cluster, env)
    assert imported.problems == ()
    catalog = parse_catalog(render_catalog(imported), env=env, source="test")
    assert sorted(catalog.names()) == sorted(cluster.topics)
    plan = make_plan(catalog, cluster)
    assert plan.actions == () and plan.refusals == () and plan.unmanaged == ()
    for name, topic in cluster.topics.items():
        spec = catalog.get(name)
        assert spec.partitions == topic.partition_count
        assert spec.replication_factor == topic.replication_factor
        want = {k: canonical_value(k, v) for k, v in topic.overrides.items()}
        assert {k: canonical_value(k, v) for k, v in spec.configs.items()} == want


def test_overrides_are_written_in_the_catalogs_human_fields():
    t = _topic(
        "orders",
        6,
        3,
        {
            "retention.ms": "604800000",
            "max.message.bytes": "2097152",
            "cleanup.policy": "delete,compact",
            "compression.type": "lz4",
            "retention.bytes": "-1",
            "min.insync.replicas": "2",
            "unclean.leader.election.enable": "false",
        },
    )
    doc = catalog_document(_cluster(t), "prod").document
    assert doc["environments"] == {"prod": {"replication_factor": 3}}
    assert doc["topics"]["orders"] == {
        "partitions": 6,
        "retention": "7d",
        "max_message_size": "2MiB",
        "cleanup_policy": "compact,delete",
        "compression": "lz4",
        "retention_bytes": "infinite",
        "configs": {"min.insync.replicas": 2, "unclean.leader.election.enable": False},
    }


def test_internal_topics_the_canary_and_non_matching_topics_are_left_out_and_the_patterns_become_the_scope():
    cluster = _cluster(
        _topic("__consumer_offsets", 50, internal=True),
        _topic("__other"),
        _topic("ecap-ops-canary"),
        _topic("team-a.orders"),
        _topic("team-a.tmp-1"),
        _topic("team-b.orders"),
    )
    imported = catalog_document(cluster, "dev", ["team-a.*"], ["team-a.tmp-*"])
    assert imported.topics == ("team-a.orders",)
    assert (imported.internal, imported.not_matching) == (3, 2)
    catalog = parse_catalog(render_catalog(imported), env="dev")
    assert catalog.scope.include == ("team-a.*",) and catalog.scope.exclude == ("team-a.tmp-*",)
    plan = make_plan(catalog, cluster)
    assert plan.unmanaged == () and plan.actions == () and plan.out_of_scope == 2


def test_the_most_common_replication_factor_is_the_environments_and_others_are_per_topic():
    cluster = _cluster(_topic("a", rf=3), _topic("b", rf=3), _topic("c", rf=1))
    doc = catalog_document(cluster, "prod").document
    assert doc["environments"]["prod"]["replication_factor"] == 3
    assert "replication_factor" not in doc["topics"]["a"]
    assert doc["topics"]["c"]["replication_factor"] == 1


def test_an_override_the_catalog_cannot_declare_is_a_problem_naming_the_topic_and_key():
    cluster = _cluster(_topic("t1", overrides={"some.future.config": "x", "retention.ms": "1d"}))
    imported = catalog_document(cluster, "dev")
    text = "\n".join(imported.problems)
    assert "some.future.config" in text and "t1" in text
    assert "retention.ms" in text  # not a number: cannot be declared


def test_tricky_topic_names_are_quoted_so_they_stay_names():
    cluster = _cluster(*(_topic(n) for n in TRICKY_NAMES))
    catalog = parse_catalog(render_catalog(catalog_document(cluster, "dev")), env="dev")
    assert sorted(catalog.names()) == sorted(TRICKY_NAMES)


# --- pure: hostile patterns ----------------------------------------------------------------

hostile_patterns = st.one_of(
    st.text(min_size=0, max_size=300).filter(lambda s: not s or match_problems([s], "x")),
    st.sampled_from(["", " ", "a b", "team/*", "x\n", "\x00", "é*", "a" * 250, "*;rm -rf /"]),
)


@given(st.lists(hostile_patterns, min_size=1, max_size=3))
@settings(max_examples=200, deadline=None)
def test_hostile_match_patterns_are_each_named_with_their_option_and_position(patterns):
    problems = match_problems(patterns, "--match")
    assert len(problems) == len(patterns)
    for i, p in enumerate(problems):
        assert p.startswith(f"--match #{i + 1} ")
        assert len(p) < 400  # a huge pattern is shown by its first characters only


# --- on the broker -------------------------------------------------------------------------

# Values a single broker accepts; the broker's defaults among them on purpose.
BROKER_OVERRIDES = {
    "retention.ms": ["604800000", "-1", "3600000", "259200000", "90061000"],
    "cleanup.policy": ["delete", "compact", "compact,delete"],
    "compression.type": ["producer", "lz4", "gzip", "zstd", "snappy", "uncompressed"],
    "max.message.bytes": ["1048588", "2097152", "524288", "1000000"],
    "min.insync.replicas": ["1"],
    "retention.bytes": ["-1", "1073741824", "123456789"],
    "segment.bytes": ["1073741824", "104857600"],
    "min.cleanable.dirty.ratio": ["0.5", "0.1", "0.75"],
    "unclean.leader.election.enable": ["false", "true"],
    "message.timestamp.type": ["CreateTime", "LogAppendTime"],
    "delete.retention.ms": ["86400000", "3600000"],
}
BROKER_DEFAULTS = {
    "retention.ms": "604800000",
    "cleanup.policy": "delete",
    "compression.type": "producer",
    "max.message.bytes": "1048588",
    "min.insync.replicas": "1",
}
N_TOPICS = 240


def _create(settings, specs: dict[str, tuple[int, dict[str, str]]]) -> None:
    """Create the topics with kafka-python's admin, in batches, and wait until every one
    has a leader for each partition."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(**settings.client_kwargs())
    try:
        items = list(specs.items())
        for i in range(0, len(items), 60):
            batch = {
                name: {"num_partitions": partitions, "replication_factor": 1, "configs": configs}
                for name, (partitions, configs) in items[i : i + 60]
            }
            admin.create_topics(batch, timeout_ms=60_000, wait_for_metadata=True)
    finally:
        admin.close()


def _overrides_on_cluster(settings, prefix: str) -> dict[str, tuple[int, dict[str, str]]]:
    from ecap_ops.gateway import KafkaGateway

    with KafkaGateway(settings) as gw:
        state = gw.read_cluster_state(None, with_data=False)
    return {
        n: (t.partition_count, dict(t.overrides))
        for n, t in state.topics.items()
        if n.startswith(prefix)
    }


@pytest.fixture(scope="module")
def imported_cluster(kafka_cluster, tmp_path_factory):
    """A few hundred topics of one prefix, with random partitions and overrides."""
    from ecap_ops.settings import KafkaSettings

    settings = KafkaSettings(
        bootstrap_servers=kafka_cluster.bootstrap_servers, request_timeout_ms=60_000
    )
    prefix = f"imp{uuid.uuid4().hex[:6]}"
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    specs: dict[str, tuple[int, dict[str, str]]] = {}
    for i in range(N_TOPICS):
        keys = rng.sample(sorted(BROKER_OVERRIDES), rng.randint(0, 6))
        configs = {k: rng.choice(BROKER_OVERRIDES[k]) for k in keys}
        specs[f"{prefix}.t{i:03d}"] = (rng.randint(1, 6), configs)
    # Every kind on purpose, whatever the draw: each broker default set on a topic, infinite
    # retention, a compacted topic.
    specs[f"{prefix}.defaults"] = (1, dict(BROKER_DEFAULTS))
    specs[f"{prefix}.forever"] = (2, {"retention.ms": "-1", "retention.bytes": "-1"})
    specs[f"{prefix}.compacted"] = (3, {"cleanup.policy": "compact", "min.insync.replicas": "1"})
    _create(settings, specs)
    return {
        "bootstrap": kafka_cluster.bootstrap_servers,
        "settings": settings,
        "prefix": prefix,
        "specs": specs,
        "seed": seed,
        "dir": tmp_path_factory.mktemp("import"),
    }


def test_a_few_hundred_topics_import_reload_and_plan_with_no_change(imported_cluster):
    c = imported_cluster
    path = c["dir"] / "imported.yaml"
    out = ecap_ops(
        "import", "--match", f"{c['prefix']}.*", "--file", str(path), bootstrap=c["bootstrap"]
    )
    assert out.returncode == 0, (c["seed"], out.stdout, out.stderr)
    assert f"Imported {len(c['specs'])} topic(s)" in out.stdout
    catalog = load_catalog(path, env="dev")
    assert sorted(catalog.names()) == sorted(c["specs"]), c["seed"]
    for name, (partitions, configs) in c["specs"].items():
        spec = catalog.get(name)
        assert spec.partitions == partitions, (c["seed"], name)
        want = {k: canonical_value(k, normalize_config_value(k, v)) for k, v in configs.items()}
        assert {k: canonical_value(k, v) for k, v in spec.configs.items()} == want, (
            c["seed"],
            name,
        )
    # Overrides equal to the broker's defaults were set on the topic: imported, and no drift.
    defaults = catalog.get(f"{c['prefix']}.defaults")
    assert defaults.configs["retention.ms"] == "604800000"
    assert defaults.configs["max.message.bytes"] == "1048588"
    text = path.read_text()
    assert "retention: infinite" in text and "cleanup_policy: compact" in text
    plan = ecap_ops("--catalog", str(path), "plan", bootstrap=c["bootstrap"])
    assert plan.returncode == 0, (c["seed"], plan.stdout[-3000:], plan.stderr)
    assert "No changes" in plan.stdout
    assert "Unmanaged" not in plan.stdout  # the scope: other tests' topics are not listed
    as_json = ecap_ops("--catalog", str(path), "plan", "-o", "json", bootstrap=c["bootstrap"])
    summary = json.loads(as_json.stdout)["summary"]
    assert summary["in_sync"] == len(c["specs"]) and summary["create"] == 0
    assert summary["alter_configs"] == 0 and summary["unmanaged"] == 0
    # The cluster is as it was created: import reads only.
    seen = _overrides_on_cluster(c["settings"], c["prefix"] + ".")
    assert _same_canonical(seen, c["specs"]), c["seed"]


def _same_canonical(seen: dict, specs: dict) -> bool:
    def canon(d):
        return {
            n: (p, {k: canonical_value(k, v) for k, v in cfg.items()}) for n, (p, cfg) in d.items()
        }

    return canon(seen) == canon(specs)


def test_import_refuses_to_overwrite_a_file_without_force(imported_cluster):
    c = imported_cluster
    path = c["dir"] / "existing.yaml"
    path.write_text("# mine, hand-written\n")
    args = ["import", "--match", f"{c['prefix']}.compacted", "--file", str(path)]
    out = ecap_ops(*args, bootstrap=c["bootstrap"])
    assert out.returncode == 1
    assert "already exists" in out.stderr and "--force" in out.stderr
    assert "Traceback" not in out.stderr
    assert path.read_text() == "# mine, hand-written\n"
    forced = ecap_ops(*args, "--force", bootstrap=c["bootstrap"])
    assert forced.returncode == 0, forced.stderr
    assert load_catalog(path, env="dev").names() == [f"{c['prefix']}.compacted"]
    assert list(c["dir"].glob(".existing.yaml.*")) == []  # no temporary file left behind


def test_import_without_a_file_prints_the_catalog_and_a_directory_is_refused(imported_cluster):
    c = imported_cluster
    out = ecap_ops("import", "--match", f"{c['prefix']}.forever", bootstrap=c["bootstrap"])
    assert out.returncode == 0, out.stderr
    assert parse_catalog(out.stdout, env="dev").names() == [f"{c['prefix']}.forever"]
    assert "Imported 1 topic(s)" in out.stderr
    bad = ecap_ops("import", "--file", str(c["dir"]), bootstrap=c["bootstrap"])
    assert bad.returncode == 1 and "directory" in bad.stderr and "Traceback" not in bad.stderr
    none = ecap_ops("import", "--match", f"{c['prefix']}.nothing-*", bootstrap=c["bootstrap"])
    assert none.returncode == 1 and "no topic" in none.stderr and "Traceback" not in none.stderr


def test_import_names_the_environment_it_was_asked_for(imported_cluster):
    c = imported_cluster
    path = c["dir"] / "prod.yaml"
    out = ecap_ops(
        "import",
        "--env",
        "prod",
        "--match",
        f"{c['prefix']}.defaults",
        "--file",
        str(path),
        bootstrap=c["bootstrap"],
    )
    assert out.returncode == 0, out.stderr
    assert load_catalog(path, env="prod").env == "prod"
    plan = ecap_ops("--catalog", str(path), "--env", "prod", "plan", bootstrap=c["bootstrap"])
    assert plan.returncode == 0, plan.stdout + plan.stderr


@given(
    patterns=st.lists(hostile_patterns, min_size=1, max_size=2),
    option=st.sampled_from(["--match", "--exclude"]),
)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_hostile_patterns_are_refused_before_anything_is_read_or_written(
    imported_cluster, patterns, option
):
    from click.testing import CliRunner

    from ecap_ops.cli import main

    c = imported_cluster
    path = Path(c["dir"]) / f"hostile-{uuid.uuid4().hex[:8]}.yaml"
    args = ["-b", c["bootstrap"], "import", "--file", str(path)]
    for p in patterns:
        args += [option, p]
    res = CliRunner().invoke(main, args, catch_exceptions=True)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert f"{option} #1" in res.output
    assert not path.exists()


# --- access (--with-access) ----------------------------------------------------------------


def _binding(principal, rtype, name, op, pattern="literal", permission="allow", host="*"):
    from ecap_ops.catalog.access import AclBinding

    return AclBinding(principal, rtype, name, pattern, op, permission, host)


def test_acl_bindings_and_users_import_as_raw_acls_and_users_that_plan_no_access_change():
    from ecap_ops.core.access import AccessState, plan_access

    bindings = frozenset(
        {
            _binding("User:svc", "topic", "orders", "read"),
            _binding("User:svc", "topic", "orders", "describe"),
            _binding("User:svc", "group", "svc-", "read", pattern="prefixed"),
            _binding("User:svc", "topic", "orders", "write", permission="deny", host="10.0.0.1"),
            _binding("User:*", "topic", "public", "all"),
            _binding("Group:ops", "topic", "orders", "read"),  # not declarable: left out
        }
    )
    access = AccessState(
        True,
        bindings,
        {"svc": {"SCRAM-SHA-512": 8192}, "9lives": {"SCRAM-SHA-256": 4096}, "svc_": {}},
        {(("user", "svc"),): {"producer_byte_rate": 1024.0}},
    )
    cluster = _cluster(_topic("orders"), _topic("public"))
    imported = catalog_document(cluster, "prod", access=access)
    doc = imported.document
    assert {"principal": "User:svc", "resource": "topic", "name": "orders",
            "operations": ["describe", "read"]} in doc["acls"]  # fmt: skip
    assert any(e.get("acknowledged") for e in doc["acls"] if e["principal"] == "User:*")
    assert doc["users"]["svc"] == {
        "mechanism": "SCRAM-SHA-512",
        "iterations": 8192,
        "password_env": "SVC_PASSWORD",
    }
    assert doc["users"]["9lives"]["password_env"] == "USER_9LIVES_PASSWORD"
    notes = " ".join(imported.notes)
    assert "Group:ops" in notes and "quota" in notes and "svc_" in notes
    text = render_catalog(imported)
    assert "Passwords are never imported" in text and "password:" not in text
    catalog = parse_catalog(text, env="prod")
    plan, _report = plan_access(catalog.access, access, "c1")
    assert plan.actions == ()
    assert make_plan(catalog, cluster).actions == ()


def test_import_with_access_on_a_secured_cluster_plans_no_access_change_and_writes_no_password(
    secure_kafka,  # noqa: F811
    tmp_path,
):
    import secrets

    from ecap_ops.gateway import KafkaGateway
    from ecap_ops.gateway.access import create_acls, upsert_scram_users
    from ecap_ops_tests.secure_fixtures import secure_env

    prefix = f"ia{uuid.uuid4().hex[:6]}"
    user, password = f"{prefix}-svc", "pw-" + secrets.token_urlsafe(16)
    admin = secure_kafka.client_settings("admin")
    with KafkaGateway(admin) as gw:
        gw.call(
            "creating a topic",
            lambda a: a.create_topics(
                {f"{prefix}.orders": {"num_partitions": 2, "replication_factor": 1}},
                wait_for_metadata=True,
            ),
        )
        assert create_acls(
            gw,
            [
                _binding(f"User:{user}", "topic", f"{prefix}.orders", "read"),
                _binding(f"User:{user}", "topic", f"{prefix}.orders", "describe"),
                _binding(f"User:{user}", "group", f"{prefix}-", "read", pattern="prefixed"),
            ],
        ) == [None, None, None]
        assert upsert_scram_users(gw, [(user, "SCRAM-SHA-512", 8192, password)]) == {user: None}
    env = secure_env(secure_kafka, ECAP_STATE_DIR=str(tmp_path / "state"))
    path = tmp_path / "with-access.yaml"
    out = ecap_ops(
        "import",
        "--with-access",
        "--match",
        f"{prefix}.*",
        "--file",
        str(path),
        bootstrap=env["KAFKA_BOOTSTRAP_SERVERS"],
        env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    text = path.read_text()
    for secret in (password, env["KAFKA_SASL_PASSWORD"]):
        assert secret not in text + out.stdout + out.stderr
    catalog = load_catalog(path, env="dev")
    mine = [b for b in catalog.access.bindings() if b.principal == f"User:{user}"]
    assert len(mine) == 3
    spec = next(u for u in catalog.access.users if u.name == user)
    assert spec.password.env == f"{prefix.upper()}_SVC_PASSWORD"
    access_plan = ecap_ops(
        "--catalog", str(path), "access", "plan", bootstrap=env["KAFKA_BOOTSTRAP_SERVERS"], env=env
    )
    assert access_plan.returncode == 0, access_plan.stdout + access_plan.stderr
    plan = ecap_ops(
        "--catalog", str(path), "plan", bootstrap=env["KAFKA_BOOTSTRAP_SERVERS"], env=env
    )
    assert plan.returncode == 0, plan.stdout + plan.stderr
