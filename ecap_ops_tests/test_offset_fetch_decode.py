"""The lean reader of OffsetFetch's answer (`gateway/offset_fetch.decode_answer`): it reads
the same bytes kafka-python would and keeps what `committed_from` kept of kafka-python's
objects; a broken answer is a decoding error, never a crash of another kind.

Answers are generated and encoded by kafka-python itself, then read both ways and compared.
The reader's use against the real broker is in every lag, group and snapshot test (the
gateway sends no other OffsetFetch)."""

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from kafka.protocol.consumer import OffsetFetchRequest, OffsetFetchResponse

from ecap_ops.gateway.groups import committed_from
from ecap_ops.gateway.offset_fetch import VERSION, decode_answer, lean_request_class
from ecap_ops_tests.helpers import answer_bytes

Group = OffsetFetchResponse.OffsetFetchResponseGroup
Topic = Group.OffsetFetchResponseTopics
Partition = Topic.OffsetFetchResponsePartitions

text = st.text(max_size=40)  # any unicode, the empty string, long enough for 2-byte varints
partitions = st.lists(
    st.builds(
        Partition,
        partition_index=st.integers(-1, 2**31 - 1),
        committed_offset=st.sampled_from([-1, 0, 25]) | st.integers(-(2**63), 2**63 - 1),
        committed_leader_epoch=st.integers(-1, 2**31 - 1),
        metadata=st.none() | st.text(max_size=200),
        error_code=st.sampled_from([0, 0, 0, 3, 16]),
    ),
    max_size=5,
    unique_by=lambda p: p.partition_index,
)
topics = st.lists(
    st.builds(Topic, name=text, partitions=partitions), max_size=4, unique_by=lambda t: t.name
)
groups = st.lists(
    st.builds(
        Group, group_id=text, topics=topics, error_code=st.sampled_from([0, 0, 0, 15, 16, 30])
    ),
    max_size=5,
    unique_by=lambda g: g.group_id,
)
answers = st.builds(OffsetFetchResponse, throttle_time_ms=st.integers(0, 2**31 - 1), groups=groups)


def as_kafka_python_was_read(answer) -> tuple[dict, list[str], dict]:
    """What committed_from made of kafka-python's objects before the lean reader."""
    from kafka import errors as kerr

    out, problems, failed = {}, [], {}
    for g in answer.groups:
        if g.error_code:
            reason = kerr.for_code(g.error_code).__name__
            problems.append(f"committed offsets of group {g.group_id}: {reason}")
            failed[g.group_id] = f"its committed offsets could not be read: {reason}"
            continue
        offs = {}
        for t in g.topics:
            for p in t.partitions:
                if p.error_code == 0 and p.committed_offset is not None and p.committed_offset >= 0:
                    offs[(t.name, p.partition_index)] = p.committed_offset
        out[g.group_id] = offs
    return out, problems, failed


def test_the_fields_walked_are_kafka_pythons_schema():
    """The reader walks the answer by position: kafka-python's schema of v8 must have
    exactly these fields in this order, and v8 must be flexible (compact, tagged)."""
    s = OffsetFetchResponse._struct
    g = s.fields["groups"]
    t = g.fields["topics"]
    p = t.fields["partitions"]
    assert [f.name for f in s.untagged_fields(VERSION)] == ["throttle_time_ms", "groups"]
    assert [f.name for f in g.untagged_fields(VERSION)] == ["group_id", "topics", "error_code"]
    assert [f.name for f in t.untagged_fields(VERSION)] == ["name", "partitions"]
    assert [f.name for f in p.untagged_fields(VERSION)] == [
        "partition_index",
        "committed_offset",
        "committed_leader_epoch",
        "metadata",
        "error_code",
    ]
    assert OffsetFetchResponse.flexible_version_q(VERSION)


@hsettings(max_examples=120, deadline=None)
@given(answer=answers)
def test_every_group_reads_as_kafka_python_read_it(answer):
    data = answer.encode(version=VERSION)
    theirs = OffsetFetchResponse.decode(data, version=VERSION)
    ours = decode_answer(data)
    assert ours.throttle_time_ms == theirs.throttle_time_ms
    problems, failed = [], {}
    assert (committed_from(ours, problems, failed), problems, failed) == as_kafka_python_was_read(
        theirs
    )


def _decodes_or_refuses(data: bytes) -> None:
    try:
        decode_answer(data)
    except ValueError as exc:
        assert "malformed OffsetFetch answer" in str(exc)


@hsettings(max_examples=80, deadline=None)
@given(answer=answers, data=st.data())
def test_a_cut_or_padded_answer_is_a_decoding_error(answer, data):
    raw = answer.encode(version=VERSION)
    cut = data.draw(st.integers(0, max(0, len(raw) - 1)))
    _decodes_or_refuses(raw[:cut])
    try:
        decode_answer(raw + b"\x00")
    except ValueError as exc:
        assert "left after the answer" in str(exc)
    else:
        raise AssertionError("a padded answer was read")


@hsettings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=300))
def test_random_bytes_decode_or_are_refused(raw):
    _decodes_or_refuses(raw)


@hsettings(max_examples=80, deadline=None)
@given(answer=answers, data=st.data())
def test_a_flipped_byte_decodes_or_is_refused(answer, data):
    raw = bytearray(answer.encode(version=VERSION))
    if not raw:
        return
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    _decodes_or_refuses(bytes(raw))


def test_the_request_is_kafkas_and_its_answer_is_read_lean():
    """The request sent is byte for byte kafka-python's own v8, named as Kafka names it
    (the gateway counts requests by name); its answer goes to `decode_answer`."""
    from ecap_ops.gateway.offset_fetch import offset_fetch_request

    ours = offset_fetch_request(["orders-etl", "ünïcode"])
    assert type(ours).__name__ == "OffsetFetchRequest"
    group = OffsetFetchRequest.OffsetFetchRequestGroup
    theirs = OffsetFetchRequest(
        groups=[group(group_id=g, topics=None) for g in ["orders-etl", "ünïcode"]]
    )
    for r in (ours, theirs):
        r.API_VERSION = VERSION
        r.with_header(correlation_id=7, client_id="ecap-ops")
    assert ours.encode(framed=True, header=True) == theirs.encode(framed=True, header=True)
    assert ours._min_version == ours._max_version == VERSION
    payload = OffsetFetchResponse(
        throttle_time_ms=3,
        groups=[
            Group(
                group_id="orders-etl",
                topics=[
                    Topic(
                        name="transactions",
                        partitions=[
                            Partition(
                                partition_index=2,
                                committed_offset=41,
                                committed_leader_epoch=0,
                                metadata="m",
                                error_code=0,
                            ),
                            Partition(
                                partition_index=3,
                                committed_offset=-1,
                                committed_leader_epoch=-1,
                                metadata=None,
                                error_code=0,
                            ),
                        ],
                    )
                ],
                error_code=0,
            ),
            Group(group_id="ünïcode", topics=[], error_code=16),
        ],
    )
    buf = answer_bytes(payload, VERSION)
    answer_type = ours.header.get_response_class()
    assert answer_type.parse_header(buf).correlation_id == 7
    got = answer_type.decode(buf)
    assert got.throttle_time_ms == 3
    assert got.groups == [("orders-etl", 0, {("transactions", 2): 41}), ("ünïcode", 16, {})]


def test_the_lean_request_leaves_kafka_pythons_own_classes_as_they_are():
    """Other users of kafka-python in the process get kafka-python's answers."""
    lean = lean_request_class()
    assert OffsetFetchRequest[VERSION] is not lean[VERSION]
    assert not issubclass(OffsetFetchRequest[VERSION], lean)
    plain = OffsetFetchRequest(groups=[OffsetFetchRequest.OffsetFetchRequestGroup("g", None)])
    plain.API_VERSION = VERSION
    plain.with_header(correlation_id=1, client_id="x")
    assert plain.header.get_response_class() is OffsetFetchResponse[VERSION]
