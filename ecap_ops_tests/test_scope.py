"""The catalog's managed scope: topics outside it are neither reported nor touched.

Pure: hostile `scope:` sections are refused with their YAML paths; the plan, the retention
audit and the health check leave out-of-scope topics out and say what they covered. On the
real broker: plan, health-check, retention-audit and cleanup-test-topics leave a topic
outside the scope unreported and exactly as it was, while they still see and act on the
topics within it."""

import json
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecap_ops.catalog import parse_catalog
from ecap_ops.core.health import HealthObservation, evaluate
from ecap_ops.core.plan import make_plan, render_plan
from ecap_ops.core.retention import TopicObservation, audit
from ecap_ops.core.state import BrokerInfo, ClusterState, PartitionState, TopicState
from ecap_ops.errors import CatalogInvalid
from ecap_ops.services.health import compare_with_catalog
from ecap_ops_tests.test_provisioning import ecap_ops


def catalog_text(scope, topics=None) -> str:
    data = {
        "version": 1,
        "environments": {"dev": {"replication_factor": 1}},
        "topics": topics or {"team-a.orders": {"partitions": 1}},
    }
    if scope is not ...:
        data["scope"] = scope
    return yaml.safe_dump(data, sort_keys=False)


SCOPED = catalog_text({"include": ["team-a.*"], "exclude": ["team-a.tmp-*"]})


def _topic(name, offline=False, internal=False):
    p = PartitionState(0, None if offline else 1, (1,), () if offline else (1,))
    return TopicState(name, (p,), {}, {}, internal)


def _cluster(*names, offline=()):
    topics = {n: _topic(n, n in offline, n.startswith("__")) for n in names}
    return ClusterState("c1", 1, (BrokerInfo(1, "h", 9092),), topics)


# --- pure: the rule and its validation ------------------------------------------------------


def test_a_scope_includes_and_excludes_by_shell_patterns():
    c = parse_catalog(SCOPED, env="dev")
    assert c.manages("team-a.orders") and c.manages("team-a.new")
    assert not c.manages("team-a.tmp-1") and not c.manages("team-b.orders")
    assert not c.manages("xteam-a.orders")  # a pattern matches the whole name
    assert parse_catalog(catalog_text(...), env="dev").manages("anything")


def test_a_declared_topic_outside_the_scope_is_an_error_at_its_path():
    text = catalog_text({"include": ["team-b.*"]})
    with pytest.raises(CatalogInvalid) as exc:
        parse_catalog(text, env="dev")
    assert "topics.team-a.orders: topic 'team-a.orders' is outside the catalog's scope" in str(
        exc.value
    )


def test_a_scope_changes_the_catalog_digest_and_no_scope_keeps_it():
    plain = parse_catalog(catalog_text(...), env="dev")
    assert parse_catalog(SCOPED, env="dev").digest != plain.digest
    assert parse_catalog(catalog_text({}), env="dev").digest == plain.digest


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=300),
    st.lists(st.one_of(st.integers(), st.text(max_size=20), st.none()), max_size=4),
    st.dictionaries(st.text(max_size=10), st.integers(), max_size=3),
)
bad_pattern = st.one_of(
    st.integers(),
    st.none(),
    st.just(""),
    st.text(min_size=250, max_size=400, alphabet="ab*"),
    st.text(min_size=1, max_size=40).filter(
        lambda s: any(not (ch.isascii() and (ch.isalnum() or ch in "._-*?[]!")) for ch in s)
    ),
)
hostile_scopes = st.one_of(
    st.one_of(st.integers(), st.text(max_size=50), st.lists(st.integers(), max_size=3)),
    st.builds(lambda p, i: {"include": [p] if i else p}, bad_pattern, st.booleans()),
    st.builds(lambda p: {"include": ["team-a.*"], "exclude": [p]}, bad_pattern),
    st.builds(
        lambda k, v: {k: v},
        st.text(min_size=1, max_size=30).filter(lambda k: k not in ("include", "exclude")),
        junk,
    ),
    st.just({"include": []}),
    st.builds(lambda n: {"include": ["team-a.*"] * n}, st.integers(101, 150)),
)


@given(hostile_scopes)
@settings(max_examples=200, deadline=None)
def test_hostile_scope_sections_are_refused_with_their_yaml_paths(scope):
    if scope == {"include": None}:  # `include:` with no value is no include: every topic
        scope = {"include": 5}
    text = catalog_text(scope)
    with pytest.raises(CatalogInvalid) as exc:
        parse_catalog(text, env="dev")
    message = str(exc.value)
    assert "scope" in message
    lines = [ln.strip() for ln in message.splitlines()[1:] if ln.strip().startswith("- ")]
    assert lines, message
    for line in lines:
        assert line.startswith(("- scope", "- (YAML")), line
        assert len(line) < 700  # a huge value is shown by its first characters only


# --- pure: plan, audit and health within the scope ----------------------------------------


def test_the_plan_reports_only_unmanaged_topics_within_the_scope_and_says_what_it_covered():
    catalog = parse_catalog(SCOPED, env="dev")
    cluster = _cluster(
        "team-a.orders", "team-a.extra", "team-a.tmp-1", "team-b.x", "__consumer_offsets"
    )
    plan = make_plan(catalog, cluster)
    assert plan.unmanaged == ("team-a.extra",)
    assert plan.out_of_scope == 2
    text = render_plan(plan)
    assert "team-b.x" not in text and "team-a.tmp-1" not in text
    assert "Scope: topics matching team-a.* except team-a.tmp-* (2 topic(s) outside it" in text
    assert plan.to_dict()["scope"] == "topics matching team-a.* except team-a.tmp-*"


def test_the_retention_audit_leaves_topics_outside_the_scope_out_and_says_so():
    catalog = parse_catalog(SCOPED, env="dev")
    obs = [
        TopicObservation(n, 1, 1, {"retention.ms": "-1", "retention.bytes": "-1"})
        for n in ("team-a.orders", "team-a.extra", "team-a.tmp-1", "team-b.x")
    ]
    report = audit(obs, catalog, now_ms=10**12)
    assert [r.topic for r in report.rows] == ["team-a.extra", "team-a.orders"]
    assert report.to_dict()["scope"] == (
        "scope: topics matching team-a.* except team-a.tmp-* (2 other topic(s) outside it left alone)"
    )
    plain = audit(obs, parse_catalog(catalog_text(...), env="dev"), now_ms=10**12)
    assert len(plain.rows) == 4 and plain.scope is None


def test_the_health_check_judges_only_topics_within_the_scope_and_says_what_it_covered():
    catalog = parse_catalog(SCOPED, env="dev")
    cluster = _cluster("team-a.orders", "team-b.x", "__consumer_offsets", offline=("team-b.x",))
    obs = HealthObservation("b:9092", "dev", 0, cluster=cluster)
    scoped, _drift = compare_with_catalog(obs, catalog)
    report = evaluate(scoped)
    text = json.dumps(report.to_dict())
    assert "team-b.x" not in text and report.offline == {}
    assert any(f.subject == "scope" and "team-a.*" in f.message for f in report.findings)
    # Without a scope, the same cluster's offline partition is reported.
    unscoped, _ = compare_with_catalog(obs, parse_catalog(catalog_text(...), env="dev"))
    assert "team-b.x" in evaluate(unscoped).offline
    # An offline partition within the scope still is.
    cluster2 = _cluster("team-a.orders", "team-a.extra", offline=("team-a.extra",))
    scoped2, _ = compare_with_catalog(
        HealthObservation("b:9092", "dev", 0, cluster=cluster2), catalog
    )
    assert "team-a.extra" in evaluate(scoped2).offline


# --- on the broker -------------------------------------------------------------------------


def _state(settings, names):
    from ecap_ops.gateway import KafkaGateway

    with KafkaGateway(settings) as gw:
        state = gw.read_cluster_state(names)
    return {
        n: (t.partition_count, dict(t.overrides), t.has_data)
        for n, t in state.topics.items()
        if n in names
    }


def test_topics_outside_the_scope_are_untouched_and_unreported_by_every_command(
    kafka_cluster, kafka_settings, tmp_path
):
    from kafka import KafkaAdminClient

    p = f"sc{uuid.uuid4().hex[:8]}"
    declared, extra = f"{p}.in.orders", f"{p}.in.extra"
    # Outside the scope: drift-like overrides, an offline-free but "unmanaged" topic, and a
    # test topic the cleanup would otherwise delete.
    outside, out_test = f"{p}.out.orders", f"test-{p}-out"
    in_test = f"test-{p}-in"
    admin = KafkaAdminClient(**kafka_settings.client_kwargs())
    try:
        admin.create_topics(
            {
                declared: {"num_partitions": 2, "replication_factor": 1},
                extra: {"num_partitions": 1, "replication_factor": 1},
                outside: {
                    "num_partitions": 3,
                    "replication_factor": 1,
                    "configs": {"retention.ms": "-1", "retention.bytes": "-1"},
                },
                out_test: {"num_partitions": 1, "replication_factor": 1},
                in_test: {"num_partitions": 1, "replication_factor": 1},
            },
            timeout_ms=30_000,
            wait_for_metadata=True,
        )
    finally:
        admin.close()
    outsiders = [outside, out_test]
    before = _state(kafka_settings, outsiders)
    path = tmp_path / "scoped.yaml"
    path.write_text(
        catalog_text(
            {"include": [f"{p}.in.*", f"test-{p}-in"]},
            {declared: {"partitions": 2}},
        )
    )
    run = lambda *a: ecap_ops(  # noqa: E731
        "--catalog", str(path), *a, bootstrap=kafka_cluster.bootstrap_servers
    )

    plan = run("plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert extra in plan.stdout and "Scope: topics matching" in plan.stdout
    assert p + ".out" not in plan.stdout and out_test not in plan.stdout
    # The shared broker's other topics (other tests', the catalog's) are outside it too.
    assert "transactions" not in plan.stdout

    health = run("health-check", "--output", "json")
    assert "Traceback" not in health.stderr
    report = json.loads(health.stdout)
    assert p + ".out" not in health.stdout and out_test not in health.stdout
    scope_findings = [f for f in report["findings"] if f["subject"] == "scope"]
    assert scope_findings and f"{p}.in.*" in scope_findings[0]["message"]

    audit_out = run("retention-audit", "--output", "json")
    assert audit_out.returncode == 0, audit_out.stderr
    audit_doc = json.loads(audit_out.stdout)
    audited = {r["topic"] for r in audit_doc["rows"]}
    assert {declared, extra, in_test} <= audited
    assert not audited & set(outsiders)
    assert audited <= {declared, extra, in_test}
    assert audit_doc["scope"].startswith(f"scope: topics matching {p}.in.*")

    # Cleanup: two observations spanning a 1 s idle window confirm the in-scope test topic
    # idle and delete it; the out-of-scope one matches the pattern and is never looked at.
    state_dir = tmp_path / "state"
    cleanup = [
        "cleanup-test-topics",
        "--pattern",
        f"test-{p}-*",
        "--idle",
        "1s",
        "--delete-empty",
        "--output",
        "json",
    ]
    env = {"ECAP_STATE_DIR": str(state_dir), "ECAP_SNAPSHOT_DIR": str(tmp_path / "snaps")}
    first = ecap_ops(
        "--catalog", str(path), *cleanup, bootstrap=kafka_cluster.bootstrap_servers, env=env
    )
    assert first.returncode == 0, first.stderr
    time.sleep(2.5)
    second = ecap_ops(
        "--catalog",
        str(path),
        *cleanup,
        "--execute",
        bootstrap=kafka_cluster.bootstrap_servers,
        env=env,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    result = json.loads(second.stdout)
    assert [d["topic"] for d in result["decisions"]] == [in_test]
    assert result["deleted"] == [in_test], second.stdout
    assert out_test not in first.stdout + second.stdout
    assert result["scope"].startswith("scope: topics matching")

    # Nothing outside the scope changed.
    assert _state(kafka_settings, outsiders) == before


@given(hostile_scopes)
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_a_catalog_with_a_hostile_scope_creates_nothing(kafka_bootstrap, kafka_settings, scope):
    from click.testing import CliRunner

    from ecap_ops.cli import main
    from ecap_ops.gateway import KafkaGateway

    if scope == {"include": None}:
        scope = {"include": 5}
    name = f"hs{uuid.uuid4().hex[:10]}.orders"
    path = Path(tempfile.mkdtemp()) / "catalog.yaml"
    path.write_text(catalog_text(scope, {name: {"partitions": 1}}))
    res = CliRunner().invoke(main, ["-b", kafka_bootstrap, "--catalog", str(path), "create-topics"])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "scope" in res.output
    with KafkaGateway(kafka_settings) as gw:
        assert gw.topics([name]) == {}


def test_delete_topic_refuses_a_topic_outside_the_scope_unless_forced():
    from ecap_ops.core.changes import make_delete_plan

    c = parse_catalog(SCOPED, env="dev")
    cluster = _cluster("team-a.orders", "team-a.old", "team-b.orders", "team-a.tmp-1")
    plan = make_delete_plan(c, cluster, ["team-b.orders", "team-a.tmp-1", "team-a.old"])
    assert {r.topic: r.code for r in plan.refusals} == {
        "team-b.orders": "out_of_scope",
        "team-a.tmp-1": "out_of_scope",  # excluded by the scope
    }
    assert "outside the catalog's scope" in plan.refusals[0].message
    assert [a.topic for a in plan.actions] == ["team-a.old"]
    forced = make_delete_plan(c, cluster, ["team-b.orders"], force=True)
    assert [a.topic for a in forced.actions] == ["team-b.orders"]


def test_a_topic_is_labelled_by_the_one_scope_rule():
    from ecap_ops.core.scope import topic_label

    c = parse_catalog(SCOPED, env="dev")
    assert topic_label(c, "team-a.orders") == "managed"
    assert topic_label(c, "team-a.new") == "unmanaged"  # in scope, not declared: drift
    assert topic_label(c, "team-a.tmp-1") == "outside scope"
    assert topic_label(c, "team-b.orders") == "outside scope"
    assert topic_label(c, "__consumer_offsets", internal=True) == "internal"
    unscoped = parse_catalog(catalog_text(...), env="dev")
    assert topic_label(unscoped, "team-b.orders") == "unmanaged"


def test_a_run_may_delete_the_topics_it_created_itself_outside_the_scope():
    """The DR drill's scratch copies (drill.*) are outside a team's scope but its own."""
    from ecap_ops.core.changes import make_delete_plan

    c = parse_catalog(SCOPED, env="dev")
    cluster = _cluster("drill.team-a.orders", "team-b.orders")
    plan = make_delete_plan(
        c, cluster, ["drill.team-a.orders", "team-b.orders"], created_here=["drill.team-a.orders"]
    )
    assert [a.topic for a in plan.actions] == ["drill.team-a.orders"]
    assert [r.code for r in plan.refusals] == ["out_of_scope"]  # not created here
