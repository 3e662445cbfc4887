"""The one write path against real brokers: every command that changes a cluster is
validated by the brokers first, snapshots what it deletes or overwrites, stops on a
failure with a report that says what was and was not done, and leaves the cluster exactly
as it was when it refuses. Failures are real: a broker stopped mid-change, an action the
broker rejects because someone else got there first."""

import json
from pathlib import Path

import pytest
import yaml
from kafka import KafkaProducer

from ecap_ops.catalog import load_catalog
from ecap_ops.core.changes import make_reset_plan
from ecap_ops.gateway import KafkaGateway
from ecap_ops.localkafka import LocalCluster
from ecap_ops.services.dr import load_snapshot
from ecap_ops.services.provisioning import apply_topics
from ecap_ops.services.write import execute_plan
from ecap_ops.settings import KafkaSettings
from ecap_ops_tests.test_provisioning import (
    describe_with_kafka_topics,
    ecap_ops,
    prefixed_catalog,
)

pytestmark = pytest.mark.kafka


def fingerprint(settings: KafkaSettings, prefix: str) -> dict:
    """Topics under `prefix`, their ids, partitions, replication, overrides and end offsets."""
    with KafkaGateway(settings) as gw:
        state = gw.read_cluster_state(None, with_data=False)
        names = sorted(n for n in state.topics if n.startswith(prefix))
        parts = [(n, p.partition) for n in names for p in state.topics[n].partitions]
        ends = gw.offsets(parts, "latest") if parts else {}
    return {
        n: {
            "id": state.topics[n].topic_id,
            "partitions": state.topics[n].partition_count,
            "replication": state.topics[n].replication_factor,
            "overrides": dict(state.topics[n].overrides),
            "ends": sorted((p, e) for (t, p), e in ends.items() if t == n),
        }
        for n in names
    }


def produce(settings: KafkaSettings, topic: str, count: int) -> None:
    producer = KafkaProducer(acks="all", **settings.client_kwargs())
    for i in range(count):
        producer.send(topic, key=b"k", value=json.dumps({"user_id": "k", "i": i}).encode())
    producer.flush(15)
    producer.close()


def assert_clean_error(res, *needles: str) -> None:
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    for n in needles:
        assert n in res.stderr + res.stdout, (n, res.stdout, res.stderr)


# -- refusals change nothing ----------------------------------------------------------------


def test_reset_refused_when_replication_cannot_be_met_deletes_nothing(
    kafka_cluster, kafka_settings, tmp_path, unique_name
):
    """The reported bug: ECAP_ENV=prod on one node deleted the topics, then failed to
    create them again. Now the re-creation is checked first and nothing is deleted."""
    cat = prefixed_catalog(tmp_path, unique_name)
    bootstrap = kafka_cluster.bootstrap_servers
    assert ecap_ops("create-topics", bootstrap=bootstrap, catalog=cat).returncode == 0
    produce(kafka_settings, f"{unique_name}.transactions", 5)
    data = yaml.safe_load(cat.read_text())
    data["environments"]["prod"]["name_prefix"] = unique_name + "."
    cat.write_text(yaml.safe_dump(data, sort_keys=False))
    before = fingerprint(kafka_settings, unique_name + ".")
    res = ecap_ops(
        "reset-topics", "--yes", bootstrap=bootstrap, catalog=cat, env={"ECAP_ENV": "prod"}
    )
    assert_clean_error(res, "replication_factor", "live broker")
    assert fingerprint(kafka_settings, unique_name + ".") == before


def test_reset_refused_when_the_brokers_reject_the_catalogs_configs(
    kafka_cluster, kafka_settings, tmp_path, unique_name
):
    cat = prefixed_catalog(tmp_path, unique_name)
    bootstrap = kafka_cluster.bootstrap_servers
    assert ecap_ops("create-topics", bootstrap=bootstrap, catalog=cat).returncode == 0
    produce(kafka_settings, f"{unique_name}.fraud-alerts", 3)
    before = fingerprint(kafka_settings, unique_name + ".")

    def tiny_segments(data):
        data["topics"]["fraud-alerts"]["configs"] = {"segment.bytes": 1000}

    (tmp_path / "bad").mkdir()
    bad = prefixed_catalog(tmp_path / "bad", unique_name, tiny_segments)
    res = ecap_ops("reset-topics", "--yes", bootstrap=bootstrap, catalog=bad)
    assert_clean_error(res, "re-create topic", "segment.bytes", "nothing was deleted")
    assert fingerprint(kafka_settings, unique_name + ".") == before
    # plan says the same before anything is tried: exit 1, naming what the brokers reject.
    plan = ecap_ops("plan", bootstrap=bootstrap, catalog=bad)
    assert_clean_error(plan, "the brokers would reject", "segment.bytes")


def test_delete_topic_snapshots_first_and_logs_the_change(
    kafka_cluster, kafka_settings, tmp_path, unique_name
):
    name = f"scratch-{unique_name}"
    with KafkaGateway(kafka_settings) as gw:
        gw.require(
            gw.create_topics(
                {
                    name: {
                        "num_partitions": 3,
                        "replication_factor": 1,
                        "configs": {"retention.ms": "3600000"},
                    }
                }
            ),
            "creating",
        )
    snaps, log = tmp_path / "snaps", tmp_path / "changes.log"
    env = {"ECAP_SNAPSHOT_DIR": str(snaps), "ECAP_CHANGE_LOG": str(log)}
    res = ecap_ops(
        "delete-topic", name, "--yes", bootstrap=kafka_cluster.bootstrap_servers, env=env
    )
    assert res.returncode == 0, res.stderr
    assert name not in fingerprint(kafka_settings, name)
    files = list((snaps / "pre-change").glob("snapshot-*.json"))
    assert len(files) == 1 and oct(files[0].stat().st_mode & 0o777) == "0o600"
    snap = load_snapshot(files[0])
    assert snap.topics[name]["partitions"] == 3
    assert snap.topics[name]["overrides"] == {"retention.ms": "3600000"}
    entry = json.loads(log.read_text().splitlines()[-1])
    assert (entry["purpose"], entry["step"], entry["subject"], entry["ok"]) == (
        "delete-topic",
        "delete_topic",
        name,
        True,
    )
    # The snapshot puts the topic's metadata back.
    back = ecap_ops(
        "restore", str(files[0]), "--execute", bootstrap=kafka_cluster.bootstrap_servers, env=env
    )
    assert back.returncode == 0, back.stderr
    d = describe_with_kafka_topics(kafka_cluster, name)
    assert d["partitions"] == 3 and d["configs"].get("retention.ms") == "3600000"


# -- saved plans ------------------------------------------------------------------------------


def test_a_saved_plan_refuses_an_edited_catalog_and_an_edited_file(
    kafka_cluster, kafka_settings, tmp_path, unique_name
):
    """The reported bug: after `plan --out` said "No changes", a catalog edited to 10
    partitions and 1 h retention was applied with exit 0."""
    bootstrap = kafka_cluster.bootstrap_servers
    cat = prefixed_catalog(tmp_path, unique_name)
    assert ecap_ops("create-topics", bootstrap=bootstrap, catalog=cat).returncode == 0
    plan_file = tmp_path / "p.json"
    assert (
        ecap_ops("plan", "--out", str(plan_file), bootstrap=bootstrap, catalog=cat).returncode == 0
    )
    before = fingerprint(kafka_settings, unique_name + ".")

    def edit(data):
        data["topics"]["transactions"]["partitions"] = 10
        data["topics"]["transactions"]["retention"] = "1h"

    (tmp_path / "e").mkdir()
    edited = prefixed_catalog(tmp_path / "e", unique_name, edit)
    res = ecap_ops(
        "create-topics", "--plan-file", str(plan_file), bootstrap=bootstrap, catalog=edited
    )
    assert_clean_error(res, "catalog (its digest)", "actions differ", "nothing was applied")
    assert fingerprint(kafka_settings, unique_name + ".") == before

    # A hand-edited file: caught by its checksum.
    doc = json.loads(plan_file.read_text())
    doc["acknowledge_destructive"] = ["*"]
    hacked = tmp_path / "hacked.json"
    hacked.write_text(json.dumps(doc))
    res = ecap_ops("create-topics", "--plan-file", str(hacked), bootstrap=bootstrap, catalog=cat)
    assert_clean_error(res, "checksum does not match")

    # The unedited file and the unchanged catalog: applied (nothing to do), exit 0.
    ok = ecap_ops("create-topics", "--plan-file", str(plan_file), bootstrap=bootstrap, catalog=cat)
    assert ok.returncode == 0, ok.stderr
    assert fingerprint(kafka_settings, unique_name + ".") == before


def test_signed_plans_refuse_unsigned_and_re_sealed_files(kafka_cluster, tmp_path, unique_name):
    import hashlib

    from ecap_ops.core.saved_plan import _body, _canonical

    bootstrap = kafka_cluster.bootstrap_servers
    key = "k" * 32
    cat = prefixed_catalog(tmp_path, unique_name)
    unsigned, signed = tmp_path / "u.json", tmp_path / "s.json"
    assert (
        ecap_ops("plan", "--out", str(unsigned), bootstrap=bootstrap, catalog=cat).returncode == 2
    )
    r = ecap_ops(
        "plan",
        "--out",
        str(signed),
        bootstrap=bootstrap,
        catalog=cat,
        env={"ECAP_SIGNING_KEY": key},
    )
    assert r.returncode == 2 and key not in signed.read_text() and key not in r.stdout + r.stderr
    keyed = {"ECAP_SIGNING_KEY": key}
    res = ecap_ops(
        "create-topics", "--plan-file", str(unsigned), bootstrap=bootstrap, catalog=cat, env=keyed
    )
    assert_clean_error(res, "has no signature", "ECAP_SIGNING_KEY")
    # Someone edits the signed plan and recomputes its SHA-256: the checksum verifies, the
    # signature does not.
    doc = json.loads(signed.read_text())
    doc["acknowledge_destructive"] = ["*"]
    doc["checksum"]["value"] = hashlib.sha256(_canonical(_body(doc))).hexdigest()
    signed.write_text(json.dumps(doc))
    res = ecap_ops(
        "create-topics", "--plan-file", str(signed), bootstrap=bootstrap, catalog=cat, env=keyed
    )
    assert_clean_error(res, "signature does not verify")
    assert key not in res.stderr
    assert not fingerprint(KafkaSettings(bootstrap_servers=bootstrap), unique_name + ".")


# -- failures halfway ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_cluster(kafka_lib, tmp_path_factory):
    """A broker of this module's own, to stop in the middle of a change."""
    cluster = LocalCluster(tmp_path_factory.mktemp("write-path"), nodes=1, port=0)
    cluster.start(timeout=180)
    yield cluster
    cluster.stop()


def _settings(cluster: LocalCluster) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=cluster.bootstrap_servers,
        connect_timeout_ms=3000,
        request_timeout_ms=5000,
    )


def _running(cluster: LocalCluster) -> None:
    if not cluster.is_running():
        cluster.start(timeout=180)


def test_broker_stopped_between_delete_and_recreate_reports_and_restores(
    own_cluster, tmp_path, unique_name, monkeypatch
):
    _running(own_cluster)
    settings = _settings(own_cluster)
    monkeypatch.setenv("ECAP_SNAPSHOT_DIR", str(tmp_path / "snaps"))
    cat = load_catalog(prefixed_catalog(tmp_path, unique_name), env="dev")
    with KafkaGateway(settings) as gw:
        assert apply_topics(gw, cat).ok
    tx = f"{unique_name}.transactions"
    with KafkaGateway(settings) as gw:
        plan = make_reset_plan(cat, gw.read_cluster_state(cat.names(), with_data=False))
        real_create = gw.create_topics

        def create_after_a_crash(topics, validate_only=False):
            if not validate_only:
                own_cluster.stop()  # the broker dies after the deletions, before re-creation
            return real_create(topics, validate_only=validate_only)

        gw.create_topics = create_after_a_crash
        result = execute_plan(gw, plan, "reset-topics")
    assert not result.ok
    deleted = [s.topic for s in result.steps if s.step == "delete_topic" and s.ok]
    recreated = [s.topic for s in result.steps if s.step == "create_topic" and s.ok]
    assert sorted(deleted) == sorted(cat.names()) and recreated == []
    text = result.render()
    assert "FAIL" in text and result.snapshot_path in text and "ecap-ops restore" in text
    # Back up, the pre-change snapshot puts every topic back as it was.
    own_cluster.start(timeout=180)
    snap = load_snapshot(result.snapshot_path)
    assert snap.topics[tx]["partitions"] == 6
    res = ecap_ops(
        "restore",
        result.snapshot_path,
        "--execute",
        bootstrap=own_cluster.bootstrap_servers,
        env={"ECAP_SNAPSHOT_DIR": str(tmp_path / "snaps")},
    )
    assert res.returncode == 0, res.stdout + res.stderr
    d = describe_with_kafka_topics(own_cluster, tx)
    assert d["partitions"] == 6 and d["configs"]["compression.type"] == "lz4"


def test_broker_stopped_in_the_middle_of_an_apply_stops_and_says_so(
    own_cluster, tmp_path, unique_name
):
    _running(own_cluster)
    settings = _settings(own_cluster)
    cat = load_catalog(prefixed_catalog(tmp_path, unique_name), env="dev")
    with KafkaGateway(settings) as gw:
        # Creates pass, then the broker dies before the config changes would run.
        real_alter = gw.alter_topic_configs

        def alter_after_a_crash(changes, validate_only=False):
            if not validate_only:
                own_cluster.stop()
            return real_alter(changes, validate_only=validate_only)

        with KafkaGateway(settings) as other:
            other.require(
                other.create_topics(
                    {f"{unique_name}.fraud-alerts": {"num_partitions": 2, "replication_factor": 1}}
                ),
                "creating",
            )
        gw.alter_topic_configs = alter_after_a_crash
        result = apply_topics(gw, cat)
    assert not result.ok
    by = {(s.step, s.topic): s for s in result.steps}
    assert by[("alter_configs", f"{unique_name}.fraud-alerts")].ok is False
    assert all(by[("create_topic", n)].ok for n in cat.names() if not n.endswith("fraud-alerts"))
    assert "Stopped" in result.render()
    own_cluster.start(timeout=180)
    # A re-run converges.
    with KafkaGateway(settings) as gw:
        assert apply_topics(gw, cat).ok
        assert not apply_topics(gw, cat, dry_run=True).plan.actions


def test_an_action_rejected_halfway_stops_the_rest(own_cluster, tmp_path, unique_name):
    """Someone creates one of the topics between validation and the change: that create is
    rejected by the broker; the partition additions and offset writes after it do not run."""
    _running(own_cluster)
    settings = _settings(own_cluster)
    cat = load_catalog(prefixed_catalog(tmp_path, unique_name), env="dev")
    before = fingerprint(settings, unique_name + ".")
    with KafkaGateway(settings) as gw:
        real_create = gw.create_topics

        def someone_else_first(topics, validate_only=False):
            if not validate_only:
                with KafkaGateway(settings) as other:
                    other.create_topics(
                        {
                            f"{unique_name}.user-events": {
                                "num_partitions": 1,
                                "replication_factor": 1,
                            }
                        }
                    )
            return real_create(topics, validate_only=validate_only)

        gw.create_topics = someone_else_first
        result = apply_topics(gw, cat)
    assert before == {} and not result.ok
    failed = [s for s in result.steps if not s.ok]
    assert [s.topic for s in failed] == [f"{unique_name}.user-events"]
    assert "TopicAlreadyExists" in failed[0].detail
    # The next plan sees the stranger's topic and refuses to shrink it or pretend.
    with KafkaGateway(settings) as gw:
        from ecap_ops.services.provisioning import plan_topics

        again = plan_topics(gw, cat)
    assert any(a.topic == f"{unique_name}.user-events" for a in again.actions)


@pytest.mark.slow
def test_more_than_two_thousand_new_topics_are_applied_in_batches(own_cluster, tmp_path):
    """KRaft refuses a request needing more than 10,000 metadata records: 2,100 topics of
    1 partition and 3 overrides need 10,500 in one request."""
    _running(own_cluster)
    settings = _settings(own_cluster).with_overrides(request_timeout_ms=30000)
    topics = {
        f"bulk-{i:05d}": {
            "partitions": 1,
            "retention": "1d",
            "compression": "lz4",
            "max_message_size": "1MiB",
            "purpose": "bulk",
        }
        for i in range(2100)
    }
    path = Path(tmp_path / "bulk.yaml")
    path.write_text(
        yaml.safe_dump(
            {"version": 1, "environments": {"dev": {"replication_factor": 1}}, "topics": topics}
        )
    )
    cat = load_catalog(path, env="dev")
    with KafkaGateway(settings) as gw:
        try:
            result = apply_topics(gw, cat)
            assert result.ok, (result.failed[:3], result.verify_problems[:3])
            assert result.requests.get("CreateTopics", 0) >= 4  # 2 validation + 2 real batches
            names = {n for n in gw.list_topic_names() if n.startswith("bulk-")}
            assert len(names) == 2100
        finally:
            # The module's broker is stopped and started again by the test after this one:
            # with 2,100 partitions more to load, it showed that test's changes only after
            # more than 10 s on two loaded cores.
            bulk = sorted(n for n in gw.list_topic_names() if n.startswith("bulk-"))
            for i in range(0, len(bulk), 500):
                gw.require(gw.delete_topics(bulk[i : i + 500]), "removing the bulk topics")


def test_broker_stopped_in_the_middle_of_a_restore_stops_and_a_rerun_converges(
    own_cluster, tmp_path, unique_name, monkeypatch
):
    from ecap_ops.core.restore import RestoreOptions
    from ecap_ops.services.dr import restore, take_snapshot

    _running(own_cluster)
    settings = _settings(own_cluster)
    monkeypatch.setenv("ECAP_SNAPSHOT_DIR", str(tmp_path / "snaps"))
    cat = load_catalog(prefixed_catalog(tmp_path, unique_name), env="dev")
    keep, lose = f"{unique_name}.fraud-alerts", f"{unique_name}.transactions"
    with KafkaGateway(settings) as gw:
        assert apply_topics(gw, cat).ok
        snap_path = take_snapshot(gw, cat, output=tmp_path / "dr.json").path
        # After the snapshot: one topic lost, another's retention changed by hand.
        gw.require(gw.delete_topics([lose]), "deleting")
        gw.require(gw.alter_topic_configs({keep: {"retention.ms": "86400000"}}), "altering")
    options = RestoreOptions(topics=(keep, lose))
    snap = load_snapshot(snap_path)
    with KafkaGateway(settings) as gw:
        real_alter = gw.alter_topic_configs

        def alter_after_a_crash(changes, validate_only=False):
            if not validate_only:
                own_cluster.stop()
            return real_alter(changes, validate_only=validate_only)

        gw.alter_topic_configs = alter_after_a_crash
        result = restore(gw, cat, snap, options, execute=True)
    assert not result.ok
    by = {(s.step, s.subject): s for s in result.steps}
    assert by[("create_topic", lose)].ok and not by[("alter_configs", keep)].ok
    assert result.pre_change_snapshot  # the overwritten retention was saved first
    pre = load_snapshot(result.pre_change_snapshot)
    assert pre.topics[keep]["overrides"]["retention.ms"] == "86400000"
    own_cluster.start(timeout=180)
    with KafkaGateway(settings) as gw:
        again = restore(gw, cat, snap, options, execute=True)
        assert again.ok, (again.steps, again.verify_problems)
    d = describe_with_kafka_topics(own_cluster, keep)
    assert d["configs"]["retention.ms"] == snap.topics[keep]["overrides"]["retention.ms"]
