"""The group requests kafka-python lacks (gateway/group_protocols.py), encoded and decoded
with no broker: requests carry what we ask at the version we pin, answers of every shape
become the core's types, errors are kept with their names, and bytes that are not an answer
never pass for one."""

import io
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecap_ops.core.groups import GroupDescription, GroupMember
from ecap_ops.gateway import group_protocols as gp

group_ids = st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=5, unique=True)
names = st.text(min_size=1, max_size=20)
parts = st.lists(st.integers(0, 2**31 - 1), max_size=5)


def _roundtrip(message, version: int):
    """Encode a message body at `version` and decode it back with its class."""
    data = message.encode(version=version, header=False)
    return type(message).decode(io.BytesIO(bytes(data)), version=version, header=False)


@pytest.mark.parametrize(
    ("kind", "api_key", "version"),
    [("consumer", 69, 0), ("share", 77, 1), ("streams", 89, 0)],
)
@settings(max_examples=100, deadline=None)
@given(ids=group_ids)
def test_describe_requests_carry_the_groups_at_the_pinned_version(kind, api_key, version, ids):
    req = gp.describe_request(kind, ids)
    assert req.API_KEY == api_key and req.max_version == version
    back = _roundtrip(req, version)
    assert list(back.group_ids) == ids and back.include_authorized_operations is False


def test_share_offsets_request_asks_for_every_partition():
    req = gp.share_offsets_request(["a", "b"])
    assert req.API_KEY == 90 and req.max_version == 1
    body = req.encode(version=0, header=False)
    # compact array of 2 groups; each: compact string, null topics (0), no tagged fields.
    assert bytes(body) == b"\x03\x02a\x00\x00\x02b\x00\x00\x00"


def _consumer_response(group: str, member: str, topic: str, partitions: list[int]):
    R = gp.message_class("ConsumerGroupDescribeResponse")
    G = R.DescribedGroup
    M = G.Member
    A = M.Assignment
    T = A.TopicPartitions
    assignment = A(
        topic_partitions=[T(topic_id=uuid.uuid4(), topic_name=topic, partitions=partitions)]
    )
    m = M(
        member_id=member,
        instance_id=None,
        rack_id=None,
        member_epoch=3,
        client_id="cid",
        client_host="/127.0.0.1",
        subscribed_topic_names=[topic],
        subscribed_topic_regex=None,
        assignment=assignment,
        target_assignment=assignment,
    )
    g = G(
        error_code=0,
        error_message=None,
        group_id=group,
        group_state="Stable",
        group_epoch=3,
        assignment_epoch=3,
        assignor_name="uniform",
        members=[m],
        authorized_operations=-(2**31),
    )
    return R(throttle_time_ms=0, groups=[g])


@settings(max_examples=100, deadline=None)
@given(group=names, member=names, topic=names, partitions=parts)
def test_consumer_group_answer_becomes_members_and_assignments(group, member, topic, partitions):
    back = _roundtrip(_consumer_response(group, member, topic, partitions), 0)
    d = gp.descriptions_from("consumer", back)[group]
    assert d.state == "Stable" and d.error is None
    (m,) = d.members
    assert m == GroupMember(
        member, "cid", "/127.0.0.1", {topic: tuple(sorted(set(partitions)))}, (topic,)
    )


def test_share_group_answer_and_an_error_group():
    R = gp.message_class("ShareGroupDescribeResponse")
    G, M = R.DescribedGroup, R.DescribedGroup.Member
    T = M.Assignment.TopicPartitions
    m = M(
        member_id="m1",
        rack_id=None,
        member_epoch=1,
        client_id="c",
        client_host="h",
        subscribed_topic_names=["t"],
        assignment=M.Assignment(
            topic_partitions=[T(topic_id=uuid.uuid4(), topic_name="t", partitions=[2, 0])]
        ),
    )
    head = dict(group_epoch=1, assignment_epoch=1, assignor_name="simple", authorized_operations=0)
    ok = G(
        error_code=0, error_message=None, group_id="s", group_state="Stable", members=[m], **head
    )
    bad = G(
        error_code=69,
        error_message="Group x not found.",
        group_id="x",
        group_state="",
        members=[],
        **head,
    )
    back = _roundtrip(R(throttle_time_ms=0, groups=[ok, bad]), 1)
    out = gp.descriptions_from("share", back)
    assert out["s"].members[0].assignment == {"t": (0, 2)}
    assert out["x"] == GroupDescription(
        "x", "Unknown", None, "GroupIdNotFoundError: Group x not found."
    )


def test_streams_answer_maps_tasks_to_source_topic_partitions():
    """A task (sub-topology, n) reads partition n of each of its sub-topology's source
    topics, the repartition topics it reads back included."""
    R = gp.message_class("StreamsGroupDescribeResponse")
    G = R.DescribedGroup
    Top, M = G.Topology, G.Member
    Sub = Top.Subtopologies if hasattr(Top, "Subtopologies") else Top.Subtopology
    TI = Sub.TopicInfo if hasattr(Sub, "TopicInfo") else Sub.StateChangelogTopics
    A = M.Assignment
    Tasks = A.TaskIds

    def tasks(*pairs):
        return [Tasks(subtopology_id=s, partitions=list(p)) for s, p in pairs]

    topology = Top(
        epoch=1,
        subtopologies=[
            Sub(
                subtopology_id="0",
                source_topics=["in"],
                repartition_sink_topics=["app-rep"],
                state_changelog_topics=[],
                repartition_source_topics=[],
            ),
            Sub(
                subtopology_id="1",
                source_topics=[],
                repartition_sink_topics=[],
                state_changelog_topics=[],
                repartition_source_topics=[
                    TI(name="app-rep", partitions=2, replication_factor=1, topic_configs=[])
                ],
            ),
        ],
    )
    member = M(
        member_id="m",
        member_epoch=2,
        instance_id=None,
        rack_id=None,
        client_id="c",
        client_host="h",
        topology_epoch=1,
        process_id="p",
        user_endpoint=None,
        client_tags=[],
        task_offsets=[],
        task_end_offsets=[],
        assignment=A(
            active_tasks=tasks(("0", [1, 0]), ("1", [1])),
            standby_tasks=tasks(("1", [0])),
            warmup_tasks=[],
        ),
        target_assignment=A(active_tasks=[], standby_tasks=[], warmup_tasks=[]),
        is_classic=False,
    )
    g = G(
        error_code=0,
        error_message=None,
        group_id="app",
        group_state="Stable",
        group_epoch=2,
        assignment_epoch=2,
        topology=topology,
        members=[member],
        authorized_operations=0,
    )
    back = _roundtrip(R(throttle_time_ms=0, groups=[g]), 0)
    (m,) = gp.descriptions_from("streams", back)["app"].members
    # Standby tasks read no source records: only active tasks count as owning partitions.
    assert m.assignment == {"in": (0, 1), "app-rep": (1,)}
    assert set(m.subscription) == {"in", "app-rep"}
    # A group whose topology is not known yet (null) has members that own nothing.
    g2 = G(
        **{
            **{
                k: getattr(g, k)
                for k in (
                    "error_code",
                    "error_message",
                    "group_state",
                    "group_epoch",
                    "assignment_epoch",
                    "authorized_operations",
                )
            },
            "group_id": "new",
            "topology": None,
            "members": [member],
        }
    )
    back = _roundtrip(R(throttle_time_ms=0, groups=[g2]), 0)
    assert gp.descriptions_from("streams", back)["new"].members[0].assignment == {}


def _share_offsets(*partitions, group_error: int = 0):
    R = gp.message_class("DescribeShareGroupOffsetsResponse")
    G = R.DescribeShareGroupOffsetsResponseGroup
    T = G.DescribeShareGroupOffsetsResponseTopic
    P = T.DescribeShareGroupOffsetsResponsePartition
    ps = [
        P(
            partition_index=i,
            start_offset=o,
            leader_epoch=0,
            lag=-1,
            error_code=e,
            error_message=None,
        )
        for i, o, e in partitions
    ]
    topic = T(topic_name="t", topic_id=uuid.uuid4(), partitions=ps)
    g = G(group_id="s", topics=[topic], error_code=group_error, error_message=None)
    return R(throttle_time_ms=0, groups=[g])


@pytest.mark.parametrize("version", [0, 1])
def test_share_start_offsets_leave_out_partitions_not_started(version):
    problems: list[str] = []
    back = _roundtrip(_share_offsets((0, 10, 0), (1, -1, 0), (2, 4, 3)), version)
    assert gp.share_starts_from(back, problems) == {"s": {("t", 0): 10}}
    assert problems and "t/2" in problems[0]  # a partition error is noted, not taken for 0
    failed: dict[str, str] = {}
    back = _roundtrip(_share_offsets((0, 10, 0), group_error=16), version)
    assert gp.share_starts_from(back, problems, failed) == {}
    assert failed["s"].startswith("NotCoordinator")


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=200))
def test_bytes_that_are_not_an_answer_fail_to_decode_or_decode_to_what_they_say(data):
    """Garbage from the wire either fails to decode (the gateway notes the group as not
    read) or decodes to groups whose descriptions are typed values; never a crash later."""
    for name, kind in (
        ("ConsumerGroupDescribeResponse", "consumer"),
        ("ShareGroupDescribeResponse", "share"),
        ("StreamsGroupDescribeResponse", "streams"),
    ):
        cls = gp.message_class(name)
        try:
            resp = cls.decode(io.BytesIO(data), version=cls.max_version, header=False)
        except Exception:
            continue
        try:
            out = gp.descriptions_from(kind, resp)
        except Exception:
            continue  # the gateway catches this and notes the group as not read
        assert all(isinstance(d, GroupDescription) for d in out.values())


def test_building_the_classes_is_lazy_and_once():
    assert gp.message_class("ShareGroupDescribeResponse") is gp.message_class(
        "ShareGroupDescribeResponse"
    )
    import subprocess
    import sys

    code = (
        "import sys, ecap_ops.gateway.group_protocols as gp; "
        "print(gp.message_class.cache_info().currsize, gp._metaclass.cache_info().currsize)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "0"]  # nothing built on import
