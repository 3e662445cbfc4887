"""`consumer-groups` and `lag` print the same lag for every group, on a real broker, in a
scene where retention deleted records a group never read (the log start moved past its
committed offset, with Kafka's own kafka-delete-records and with the admin client), and
with an empty group that has caught up."""

import json
import time

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ecap_ops.cli import main
from ecap_ops_tests.helpers import kafka_tool

pytestmark = pytest.mark.kafka


def _commit(admin, group, offsets):
    """Commit offsets for a group without members (a fresh broker creates
    __consumer_offsets first: its coordinator is briefly unavailable)."""
    for attempt in range(60):
        try:
            admin.alter_group_offsets(group, offsets)
            return
        except Exception:
            if attempt == 59:
                raise
            time.sleep(0.5)


def _scene(bootstrap, tmp_path, u):
    a_topic, b_topic = f"{u}-a", f"{u}-b"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            {
                a_topic: {"num_partitions": 3, "replication_factor": 1},
                b_topic: {"num_partitions": 1, "replication_factor": 1},
            }
        )
        prod = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        for topic, parts in ((a_topic, 3), (b_topic, 1)):
            for p in range(parts):
                for _ in range(30):
                    prod.send(topic, b"x", partition=p)
        prod.flush(15)
        prod.close()
        commit = {TopicPartition(a_topic, p): OffsetAndMetadata(5, "", None) for p in range(3)}
        commit[TopicPartition(b_topic, 0)] = OffsetAndMetadata(10, "", None)
        _commit(admin, f"{u}-lost", commit)
        done = {TopicPartition(a_topic, p): OffsetAndMetadata(30, "", None) for p in range(3)}
        done[TopicPartition(b_topic, 0)] = OffsetAndMetadata(30, "", None)
        _commit(admin, f"{u}-caught-up", done)
        # Retention deletes records `-lost` never read: Kafka's own tool on two partitions...
        spec = tmp_path / "delete.json"
        spec.write_text(
            json.dumps(
                {
                    "version": 1,
                    "partitions": [
                        {"topic": a_topic, "partition": p, "offset": 20} for p in (0, 1)
                    ],
                }
            )
        )
        res = kafka_tool(
            bootstrap,
            "kafka-delete-records",
            "--bootstrap-server",
            bootstrap,
            "--offset-json-file",
            str(spec),
        )
        assert res.returncode == 0, res.stderr[-2000:]
        # ... and the admin client on another.
        admin.delete_records({TopicPartition(b_topic, 0): 25})
    finally:
        admin.close()
    return a_topic, b_topic


def _cli(bootstrap, *args):
    return CliRunner().invoke(main, ["-b", bootstrap, *args], catch_exceptions=False)


def test_consumer_groups_and_lag_agree_after_retention_deleted_unread_records(
    kafka_bootstrap, tmp_path, unique_name
):
    a_topic, b_topic = _scene(kafka_bootstrap, tmp_path, unique_name)
    groups_res = _cli(kafka_bootstrap, "consumer-groups", "--output", "json")
    assert groups_res.exit_code == 0, groups_res.output
    mine = {
        g["group_id"]: g
        for g in json.loads(groups_res.output)["groups"]
        if g["group_id"].startswith(unique_name)
    }
    by_groups = {(g, t["topic"]): t["lag"] for g, d in mine.items() for t in d["topics"]}
    lag_res = _cli(kafka_bootstrap, "lag", "--group", f"{unique_name}-*", "--output", "json")
    assert lag_res.exit_code == 1  # data loss is critical
    data = json.loads(lag_res.output)
    assert data["one_look"] is True and data["ticks"] == 1
    by_lag = {(s["group"], s["topic"]): s["lag_msgs"] for s in data["statuses"]}
    # Every group and topic, the same number; and the right one (end - max(committed, start)).
    assert by_groups == by_lag
    assert by_lag == {
        (f"{unique_name}-lost", a_topic): 10 + 10 + 25,
        (f"{unique_name}-lost", b_topic): 5,
        (f"{unique_name}-caught-up", a_topic): 0,
        (f"{unique_name}-caught-up", b_topic): 0,
    }
    lost = {(g, t["topic"]): t["lost"] for g, d in mine.items() for t in d["topics"]}
    assert (
        lost[(f"{unique_name}-lost", a_topic)] == 30
        and lost[(f"{unique_name}-lost", b_topic)] == 15
    )
    assert mine[f"{unique_name}-caught-up"]["state"] == "Empty"
    assert mine[f"{unique_name}-caught-up"]["members"] == 0
    statuses = {(s["group"], s["topic"]): s["status"] for s in data["statuses"]}
    assert statuses[(f"{unique_name}-lost", a_topic)] == "DATA_LOSS"
    assert statuses[(f"{unique_name}-caught-up", a_topic)] in ("OK", "IDLE")
    # The table versions say the same, and say what one look cannot see.
    table = _cli(kafka_bootstrap, "consumer-groups")
    line = next(
        ln
        for ln in table.output.splitlines()
        if ln.startswith(f"{unique_name}-lost") and a_topic in ln
    )
    assert line.split()[-1] == "45"
    assert "deleted by retention before the group read them" in table.stderr
    lag_table = _cli(kafka_bootstrap, "lag", "--group", f"{unique_name}-lost")
    row = next(ln for ln in lag_table.output.splitlines() if a_topic in ln)
    assert row.split()[2] == "DATA_LOSS" and row.split()[3] == "45"
    assert "one observation" in lag_table.stderr and "STALLED" in lag_table.stderr
    assert "Traceback" not in table.stderr + lag_table.stderr


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(pattern=st.text(min_size=1, max_size=40))
def test_hostile_group_patterns_are_matched_not_run(kafka_bootstrap, pattern):
    res = CliRunner().invoke(
        main, ["-b", kafka_bootstrap, "lag", "--group", pattern, "--output", "json"]
    )
    assert res.exit_code in (0, 1), res.output
    assert "Traceback" not in (res.stderr or "")
    data = json.loads(res.output)
    import fnmatch

    assert all(fnmatch.fnmatchcase(s["group"], pattern) for s in data["statuses"])
