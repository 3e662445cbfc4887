"""Test-topic cleanup on a real broker, with an idle window of seconds (`--idle 2s`):

- a backfill carrying 30-day-old CreateTime timestamps, written between two `--execute`
  runs, is never deleted (the reproduced bug);
- a truly idle topic is a candidate on the first run and deleted on a later run once the
  window has passed, after its snapshot is written;
- a group whose committed offsets move, or that has members on the topic, keeps it;
- catalog, protected, internal and unmatched topics are never touched, and the budget
  defers deletions to later runs;
- the CLI and the Dagster job share one observation history; a hostile history file only
  restarts it; hostile `--idle` values are refused before the cluster is read.

Kafka's own view (`kafka-topics --list`) decides whether a topic exists. Every test keeps
its history in its own ECAP_STATE_DIR and uses patterns that match only its own topics.
"""

import dataclasses
import json
import os
import stat
import time
import uuid

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.structs import OffsetAndMetadata

from ecap_ops.catalog import default_catalog_path, load_catalog
from ecap_ops.cli import main
from ecap_ops.core.cleanup import DAY_MS, INVISIBLE_READERS, CleanupRules
from ecap_ops.gateway import KafkaGateway
from ecap_ops.services.cleanup import cleanup_test_topics
from ecap_ops_tests.helpers import kafka_tool, make_consumer, run_failures

pytestmark = pytest.mark.kafka

WINDOW = "2s"
PAST_WINDOW_S = 2.6
MONTH_AGO_MS = 30 * DAY_MS


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path, monkeypatch):
    """Each test's observation history, never the user's ~/.ecap-ops."""
    path = tmp_path / "state"
    monkeypatch.setenv("ECAP_STATE_DIR", str(path))
    monkeypatch.setenv("ECAP_SNAPSHOT_DIR", str(tmp_path / "snaps"))
    monkeypatch.delenv("ECAP_PROTECTED_TOPICS", raising=False)
    return path


def _existing(settings) -> set[str]:
    out = kafka_tool(settings, "kafka-topics", "--list")
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def _gone(settings, names: set[str], wait_s: float = 60) -> set[str]:
    """The names Kafka still lists after waiting (at most wait_s) for them to go."""
    deadline = time.monotonic() + wait_s
    left = names & _existing(settings)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = names & _existing(settings)
    return left


def _create(settings, names, partitions=2):
    with KafkaGateway(settings) as gw:
        gw.require(
            gw.create_topics(
                {
                    n: {
                        "num_partitions": partitions,
                        "replication_factor": 1,
                        "configs": {"retention.ms": str(60 * DAY_MS)},
                    }
                    for n in names
                }
            ),
            "creating test topics",
        )


def _produce(settings, topic, count, timestamp_ms=None):
    producer = KafkaProducer(acks="all", **settings.client_kwargs())
    try:
        for i in range(count):
            producer.send(topic, key=f"k{i}".encode(), value=b"x" * 40, timestamp_ms=timestamp_ms)
        producer.flush(15)
    finally:
        producer.close()


def _commit(settings, group, topic, offsets: dict[int, int]):
    """Commit offsets for a group with no members, as a consumer that has left would have.
    A fresh broker creates __consumer_offsets on first use: retry while it has no coordinator."""
    from kafka.errors import CoordinatorNotAvailableError, NotCoordinatorError

    admin = KafkaAdminClient(**settings.client_kwargs())
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                result = admin.alter_group_offsets(
                    group,
                    {
                        TopicPartition(topic, p): OffsetAndMetadata(o, "", -1)
                        for p, o in offsets.items()
                    },
                )
                break
            except (CoordinatorNotAvailableError, NotCoordinatorError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        assert all(getattr(e, "errno", 0) == 0 for e in result.values()), result
    finally:
        admin.close()


def _cli(bootstrap, *args, catalog=None):
    argv = ["-b", bootstrap]
    if catalog:
        argv += ["--catalog", str(catalog), "--env", "dev"]
    res = CliRunner().invoke(main, argv + ["cleanup-test-topics", *args], catch_exceptions=False)
    return res


def _cleanup_json(bootstrap, pattern, *extra, catalog=None):
    res = _cli(
        bootstrap,
        "--pattern",
        pattern,
        "--idle",
        WINDOW,
        "--output",
        "json",
        *extra,
        catalog=catalog,
    )
    assert res.exit_code == 0, (res.output, res.stderr)
    assert "Traceback" not in res.stderr
    return json.loads(res.stdout)


def _decision(doc, topic):
    (d,) = [d for d in doc["decisions"] if d["topic"] == topic]
    return d


# ---- the three scenarios ------------------------------------------------------------------


def test_a_backfill_with_month_old_timestamps_written_between_runs_is_never_deleted(
    kafka_settings, kafka_bootstrap
):
    topic = f"test-backfill-{uuid.uuid4().hex[:10]}"
    _create(kafka_settings, [topic])
    old = int(time.time() * 1000) - MONTH_AGO_MS
    _produce(kafka_settings, topic, 5, timestamp_ms=old)

    first = _cleanup_json(kafka_bootstrap, topic, "--execute")
    d = _decision(first, topic)
    assert d["status"] == "candidate" and not first["deleted"], d
    assert d["evidence"]["newest_record_timestamp"].startswith("30d")  # shown, not trusted
    assert topic in _existing(kafka_settings)

    time.sleep(PAST_WINDOW_S)
    _produce(kafka_settings, topic, 7, timestamp_ms=old)  # the backfill goes on
    second = _cleanup_json(kafka_bootstrap, topic, "--execute")
    d = _decision(second, topic)
    assert d["status"] == "active" and not second["deleted"], d
    assert any("end offsets moved by 7 record(s)" in r for r in d["reasons"]), d["reasons"]
    assert d["evidence"]["newest_record_timestamp"].startswith("30d")
    assert topic in _existing(kafka_settings)


def test_a_truly_idle_topic_is_a_candidate_first_and_deleted_after_the_window(
    kafka_settings, kafka_bootstrap, tmp_path, own_state_dir
):
    topic = f"test-idle-{uuid.uuid4().hex[:10]}"
    _create(kafka_settings, [topic])
    _produce(kafka_settings, topic, 3)

    first = _cleanup_json(kafka_bootstrap, topic, "--execute")
    d = _decision(first, topic)
    assert d["status"] == "candidate" and "first seen" in d["reasons"][1], d
    assert "confirm after" in d["reasons"][1]
    assert topic in _existing(kafka_settings)
    state = own_state_dir / "cleanup-observations.json"
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600

    time.sleep(PAST_WINDOW_S)
    second = _cleanup_json(kafka_bootstrap, topic, "--execute")
    d = _decision(second, topic)
    assert d["status"] == "idle" and d["delete"], d
    assert second["deleted"] == [topic]
    snap = json.loads(open(second["snapshots"][topic]).read())
    assert snap["topic"] == topic and snap["topic_id"] and len(snap["partitions"]) == 2
    assert sum(p["end_offset"] for p in snap["partitions"]) == 3
    assert not _gone(kafka_settings, {topic})

    # The next run forgets the deleted topic: the history holds only existing topics.
    _cleanup_json(kafka_bootstrap, topic)
    doc = json.loads(state.read_text())
    (cluster,) = doc["clusters"].values()
    assert topic not in cluster["topics"]


def test_a_group_committing_or_reading_keeps_the_topic(kafka_settings, kafka_bootstrap):
    topic = f"test-grouped-{uuid.uuid4().hex[:10]}"
    group = f"grp-{uuid.uuid4().hex[:8]}"
    _create(kafka_settings, [topic], partitions=1)
    _produce(kafka_settings, topic, 10)
    _commit(kafka_settings, group, topic, {0: 3})

    first = _cleanup_json(kafka_bootstrap, topic, "--execute")
    assert _decision(first, topic)["status"] == "candidate"

    time.sleep(PAST_WINDOW_S)
    _commit(kafka_settings, group, topic, {0: 6})  # a consumer made progress meanwhile
    second = _cleanup_json(kafka_bootstrap, topic, "--execute")
    d = _decision(second, topic)
    assert d["status"] == "active" and not second["deleted"], d
    assert any(f"group {group} committed" in r and "3 -> 6" in r for r in d["reasons"]), d
    assert topic in _existing(kafka_settings)

    # A member on the topic at the time of a run is activity too.
    time.sleep(PAST_WINDOW_S)
    consumer = make_consumer(
        topic,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kafka_settings.client_kwargs(),
    )
    try:
        deadline = time.monotonic() + 30
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(200)
        assert consumer.assignment()
        third = _cleanup_json(kafka_bootstrap, topic, "--execute")
    finally:
        consumer.close(autocommit=False)
    d = _decision(third, topic)
    assert d["status"] == "active" and not third["deleted"], d
    assert any(f"group {group} has 1 member(s)" in r for r in d["reasons"]), d["reasons"]
    assert topic in _existing(kafka_settings)

    # Once the group is gone quiet (no members, offsets unchanged) over the window: idle.
    _cleanup_json(kafka_bootstrap, topic)
    time.sleep(PAST_WINDOW_S)
    fifth = _cleanup_json(kafka_bootstrap, topic)  # a dry run: reports, deletes nothing
    d = _decision(fifth, topic)
    assert d["status"] == "idle" and d["delete"] and fifth["dry_run"] and not fifth["deleted"]
    assert topic in _existing(kafka_settings)


# ---- every other rule, the budget, and the Dagster job ------------------------------------


def _commit_offset(kafka_settings, group: str, topic: str) -> None:
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.structs import OffsetAndMetadata

    admin = KafkaAdminClient(**kafka_settings.client_kwargs())
    try:
        for attempt in range(30):  # the coordinator loads __consumer_offsets on first use
            try:
                admin.alter_group_offsets(
                    group, {TopicPartition(topic, 0): OffsetAndMetadata(1, "", None)}
                )
                return
            except Exception:
                if attempt == 29:
                    raise
                time.sleep(1)
    finally:
        admin.close()


@pytest.fixture
def seeded(kafka_settings, tmp_path):
    """Topics named for this test so the shared broker's other topics never match."""
    run = uuid.uuid4().hex[:6]
    names = {
        "idle1": f"test-{run}-idle1",
        "idle2": f"tmp-{run}-idle2",
        "idle3": f"old-{run}-test",
        "catalog": f"test-{run}-catalog",
        "protected": f"test-{run}-protected",
        "nomatch": f"keep-{run}-idle",
    }
    patterns = (f"test-{run}-*", f"tmp-{run}-*", f"*-{run}-test", "__consumer_offset*")
    _create(kafka_settings, names.values())
    old = int(time.time() * 1000) - 10 * DAY_MS
    for name in names.values():
        _produce(kafka_settings, name, 5, timestamp_ms=old)
    # A committed offset, so that __consumer_offsets exists (the scene's internal topic that
    # matches a pattern) whichever tests ran before on the session's broker.
    _commit_offset(kafka_settings, f"cleanup-{run}", names["nomatch"])
    data = yaml.safe_load(default_catalog_path().read_text())
    tx = data["topics"].pop("transactions")
    data["topics"] = {names["catalog"]: tx}
    # The shipped catalog's access and contracts name its five topics: a one-topic catalog
    # declares neither.
    for section in ("principals", "acls", "users", "quotas", "access", "contracts", "mirror"):
        data.pop(section, None)
    cat_path = tmp_path / "catalog.yaml"
    cat_path.write_text(yaml.safe_dump(data))
    return names, patterns, cat_path


def test_only_confirmed_idle_test_topics_go_within_the_budget_after_their_snapshots(
    seeded, kafka_bootstrap, kafka_settings
):
    names, patterns, cat_path = seeded
    args = ["--max-deletions", "2", "--protect", names["protected"]]
    for p in patterns:
        args += ["--pattern", p]

    def run(*extra):
        res = _cli(
            kafka_bootstrap, *args, "--idle", WINDOW, "--output", "json", *extra, catalog=cat_path
        )
        assert res.exit_code == 0, (res.output, res.stderr)
        return json.loads(res.stdout)

    idle = {names["idle1"], names["idle2"], names["idle3"]}
    first = run("--execute")
    ds = {d["topic"]: d for d in first["decisions"]}
    assert names["nomatch"] not in ds
    assert set(first["candidates"]) == idle and not first["deleted"]
    for key, reason in [("catalog", "in the catalog"), ("protected", "on the protected list")]:
        assert ds[names[key]]["status"] == "kept"
        assert any(reason in r for r in ds[names[key]]["reasons"]), ds[names[key]]
    assert any("internal topic" in r for r in ds["__consumer_offsets"]["reasons"])
    assert first["invisible_readers"] == INVISIBLE_READERS

    time.sleep(PAST_WINDOW_S)
    second = run("--execute")
    assert set(second["confirmed_idle"]) == idle
    assert len(second["deleted"]) == 2 and set(second["deleted"]) <= idle
    for topic in second["deleted"]:
        snap = json.loads(open(second["snapshots"][topic]).read())
        assert snap["topic"] == topic and snap["overrides"]["retention.ms"] == str(60 * DAY_MS)
    assert not _gone(kafka_settings, set(second["deleted"]))
    left = _existing(kafka_settings)
    assert set(names.values()) - set(second["deleted"]) <= left

    # The budget defers, never drops: the third idle topic goes on the next run.
    third = run("--execute")
    assert third["deleted"] == sorted(idle - set(second["deleted"]))
    assert not _gone(kafka_settings, idle)
    assert {names["catalog"], names["protected"], names["nomatch"]} <= _existing(kafka_settings)


def test_the_dagster_job_shares_the_cli_history_and_is_a_dry_run_by_default(
    kafka_settings, kafka_bootstrap
):
    from ecap_ops.orchestration import cleanup
    from ecap_ops.orchestration.resources import KafkaResource

    topic = f"test-dagster-{uuid.uuid4().hex[:10]}"
    _create(kafka_settings, [topic])
    _produce(kafka_settings, topic, 2)
    first = _cleanup_json(kafka_bootstrap, topic)  # the CLI's dry run records the observation
    assert _decision(first, topic)["status"] == "candidate"
    time.sleep(PAST_WINDOW_S)

    defs = dg.Definitions.merge(
        cleanup.build_defs(load_catalog(env="dev")),
        dg.Definitions(resources={"kafka": KafkaResource(bootstrap_servers=kafka_bootstrap)}),
    )
    result = defs.get_job_def("cleanup_test_topics").execute_in_process(
        run_config={
            "ops": {"cleanup_idle_test_topics": {"config": {"patterns": [topic], "idle": WINDOW}}}
        }
    )
    assert result.success, run_failures(result)
    out = result.output_for_node("cleanup_idle_test_topics")
    assert out["dry_run"] and not out["deleted"] and out["to_delete"] == [topic]
    assert out["confirmed_idle"] == [topic]  # confirmed from the CLI's earlier observation
    (mat,) = [
        e
        for e in result.all_events
        if e.event_type_value == "STEP_OUTPUT" and e.step_key == "cleanup_idle_test_topics"
    ]
    meta = mat.event_specific_data.metadata
    assert meta["invisible_readers"].value == INVISIBLE_READERS
    assert "idle (" not in meta["decisions"].value and "delete" in meta["decisions"].value
    assert topic in _existing(kafka_settings)

    bad = defs.get_job_def("cleanup_test_topics").execute_in_process(
        run_config={
            "ops": {"cleanup_idle_test_topics": {"config": {"patterns": [topic], "idle": "soon"}}}
        },
        raise_on_error=False,
    )
    assert not bad.success
    failure = [e for e in bad.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert "config idle" in failure.event_specific_data.error.message
    assert topic in _existing(kafka_settings)


def test_the_table_report_explains_the_rule_and_the_invisible_readers(
    kafka_bootstrap, kafka_settings
):
    topic = f"test-table-{uuid.uuid4().hex[:10]}"
    _create(kafka_settings, [topic])
    _produce(kafka_settings, topic, 1, timestamp_ms=int(time.time() * 1000) - MONTH_AGO_MS)
    res = _cli(kafka_bootstrap, "--pattern", topic, "--idle", WINDOW)
    assert res.exit_code == 0, res.output
    assert topic in res.stdout and "candidate" in res.stdout
    assert "Readers without a consumer group" in res.stdout and "kcat -C" in res.stdout
    assert "record timestamps are set by producers" in res.stdout
    assert "30d ago" in res.stdout  # the producer's claim, shown to the second


# ---- hostile inputs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\x01garbage",
        b'{"format": "ecap-ops/cleanup-observations/v1", "clusters": []}',
        b"[" * 5000,
    ],
)
def test_a_hostile_history_file_only_restarts_the_history(
    kafka_settings, kafka_bootstrap, own_state_dir, content
):
    """Even with --execute and a zero window: a fresh history makes candidates, never deletions."""
    topic = f"test-hostile-{uuid.uuid4().hex[:10]}"
    _create(kafka_settings, [topic])
    _produce(kafka_settings, topic, 1)
    own_state_dir.mkdir(parents=True, exist_ok=True)
    state = own_state_dir / "cleanup-observations.json"
    state.write_bytes(content)
    res = _cli(kafka_bootstrap, "--pattern", topic, "--idle", "0s", "--execute", "--output", "json")
    assert res.exit_code == 0, (res.output, res.stderr)
    assert "Traceback" not in res.stderr
    assert "warning:" in res.stderr and str(state) in res.stderr and "fresh history" in res.stderr
    doc = json.loads(res.stdout)
    assert not doc["deleted"] and _decision(doc, topic)["status"] == "candidate"
    assert topic in _existing(kafka_settings)
    rewritten = json.loads(state.read_text())
    assert rewritten["format"] == "ecap-ops/cleanup-observations/v1"
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600


@pytest.fixture(scope="module")
def bystander(kafka_settings):
    """A topic that hostile invocations would match; it must survive them all."""
    name = f"test-bystander-{uuid.uuid4().hex[:10]}"
    _create(kafka_settings, [name], partitions=1)
    return name


@settings(max_examples=120, deadline=None)
@given(
    st.one_of(
        st.text(max_size=30),
        st.sampled_from(["-1", "infinite", "forever", "1.5ms", "7 days", "1e9d", "0x10s", "", " "]),
    )
)
def test_hostile_idle_values_are_refused_before_anything_is_read(bystander, kafka_bootstrap, value):
    try:
        from ecap_ops.catalog.units import parse_duration_ms

        ok = parse_duration_ms(value) >= 0
    except ValueError:
        ok = False
    if ok or "\x00" in value:
        return  # a valid duration (tested elsewhere); NUL cannot be an argv entry
    res = CliRunner().invoke(
        main,
        [
            "-b",
            kafka_bootstrap,
            "cleanup-test-topics",
            "--pattern",
            bystander,
            "--execute",
            "--idle",
            value,
        ],
    )
    assert res.exit_code == 1, (value, res.output)
    assert "--idle" in res.output and "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_idle_and_idle_days_together_are_refused(kafka_bootstrap, bystander):
    res = CliRunner().invoke(
        main,
        [
            "-b",
            kafka_bootstrap,
            "cleanup-test-topics",
            "--pattern",
            bystander,
            "--idle",
            "2s",
            "--idle-days",
            "1",
            "--execute",
        ],
    )
    assert res.exit_code == 1 and "not both" in res.output and "Traceback" not in res.output


def test_service_with_a_custom_state_path_and_clock(kafka_settings, tmp_path):
    """The service's own arguments: the history path and the clock (what the CLI and job pass)."""
    topic = f"test-svc-{uuid.uuid4().hex[:10]}"
    _create(kafka_settings, [topic])
    rules = CleanupRules(patterns=(topic,), idle_ms=1000)
    state = tmp_path / "custom" / "obs.json"
    now = int(time.time() * 1000)
    with KafkaGateway(kafka_settings) as gw:
        a = cleanup_test_topics(gw, load_catalog(env="dev"), rules, now_ms=now, state=state)
        b = cleanup_test_topics(gw, load_catalog(env="dev"), rules, now_ms=now + 5000, state=state)
    # Empty topic (delete_empty off): kept, but observed.
    assert a.decisions[0].status == "kept" and "holds no record" in a.decisions[0].reasons[0]
    assert b.decisions[0].evidence["unchanged_for"] == "5s"
    assert state.exists() and dataclasses.asdict(b.decisions[0])["topic"] == topic


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=st.sampled_from("*?[]!-_.a\n"), max_size=8),
        st.sampled_from(["*", "?*", "[!_]*", "*test*", "*-*", "a*"]),
    )
)
def test_hostile_patterns_are_refused_before_the_cluster_is_read(
    bystander, kafka_bootstrap, pattern
):
    if not pattern.strip() or not CleanupRules(patterns=(pattern,)).validate():
        return  # accepted patterns are exercised by the scenarios above
    res = CliRunner().invoke(
        main,
        [
            "-b",
            kafka_bootstrap,
            "cleanup-test-topics",
            "--pattern",
            pattern,
            "--idle",
            "0s",
            "--execute",
        ],
    )
    assert res.exit_code == 1, (pattern, res.output)
    assert "cleanup rules are invalid" in res.output and "patterns:" in res.output
    assert "Traceback" not in res.output
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit)


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e400"])
def test_hostile_idle_days_are_refused(kafka_bootstrap, bystander, value):
    res = CliRunner().invoke(
        main,
        [
            "-b",
            kafka_bootstrap,
            "cleanup-test-topics",
            "--pattern",
            bystander,
            "--idle-days",
            value,
            "--execute",
        ],
    )
    assert res.exit_code == 1, (value, res.output)
    assert "idle" in res.output and "Traceback" not in res.output


def test_an_unwritable_state_directory_is_reported_and_deletes_nothing(
    kafka_settings, kafka_bootstrap, tmp_path, monkeypatch
):
    topic = f"test-nostate-{uuid.uuid4().hex[:10]}"
    _create(kafka_settings, [topic])
    _produce(kafka_settings, topic, 1)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("ECAP_STATE_DIR", str(blocker))
    for _ in range(2):
        res = _cli(
            kafka_bootstrap, "--pattern", topic, "--idle", "0s", "--execute", "--output", "json"
        )
        assert res.exit_code == 0, (res.output, res.stderr)
        assert "Traceback" not in res.stderr
        assert "could not be written" in res.stderr and "ECAP_STATE_DIR" in res.stderr
        doc = json.loads(res.stdout)
        assert not doc["deleted"] and _decision(doc, topic)["status"] == "candidate"
    assert topic in _existing(kafka_settings)


# Last in the module: after every hostile invocation above.
def test_the_bystander_survived_every_hostile_invocation(bystander, kafka_settings):
    assert bystander in _existing(kafka_settings)
