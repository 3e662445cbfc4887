"""The lean reader of DescribeConfigs' answer (`gateway/topic_configs.decode_answer`): it
reads the same bytes kafka-python would, keeps only the entries asked for, and a broken
answer is a decoding error, never a crash of another kind.

Answers are generated and encoded by kafka-python itself (every version the reader
takes), then read both ways and compared. The reader's use against the real broker is
in test_gateway_topics.py."""

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from kafka.protocol.admin.configs import DescribeConfigsResponse

from ecap_ops.gateway import topic_configs
from ecap_ops.gateway.topic_configs import (
    ENTRY_FIELDS,
    SYNONYM_FIELDS,
    TOPIC_OVERRIDE_CODE,
    VERSIONS,
    decode_answer,
)
from ecap_ops_tests.helpers import answer_bytes

Result = DescribeConfigsResponse.DescribeConfigsResult
Config = Result.DescribeConfigsResourceResult
Synonym = Config.DescribeConfigsSynonym
ALL_VERSIONS = list(range(VERSIONS[0], VERSIONS[1] + 1))

text = st.text(max_size=40)  # any unicode, the empty string, long enough for 2-byte varints
long_text = st.text(min_size=0, max_size=300)
maybe = st.none() | text
source = st.integers(min_value=-1, max_value=9)

synonyms = st.lists(
    st.builds(Synonym, name=text, value=maybe, source=source),
    max_size=3,
)
configs = st.lists(
    st.builds(
        Config,
        name=text,
        value=st.none() | long_text,
        read_only=st.booleans(),
        config_source=source,
        is_sensitive=st.booleans(),
        synonyms=synonyms,
        config_type=st.integers(min_value=0, max_value=9),
        documentation=st.none() | long_text,
    ),
    max_size=6,
)
results = st.lists(
    st.builds(
        Result,
        error_code=st.sampled_from([0, 0, 3, 29]),
        error_message=maybe,
        resource_type=st.just(2),
        resource_name=text,
        configs=configs,
    ),
    max_size=5,
    unique_by=lambda r: r.resource_name,
)
answers = st.builds(
    DescribeConfigsResponse, throttle_time_ms=st.integers(0, 2**31 - 1), results=results
)


def _as_kafka_python_reads_it(answer, keep, with_synonyms=True) -> dict:
    return {
        r.resource_name: [
            (
                c.name,
                c.value,
                c.config_source,
                [(s.name, s.value, s.source) for s in c.synonyms] if with_synonyms else [],
            )
            for c in r.configs
            if keep(c.config_source)
        ]
        for r in answer.results
    }


def test_the_fields_walked_are_kafka_pythons_schema_in_every_version_read():
    """The reader walks the entries by position: the schema kafka-python decodes with must
    have exactly these fields in this order, in every version the reader asks for."""
    results = DescribeConfigsResponse._struct.fields["results"]
    entry = results.fields["configs"]
    for v in ALL_VERSIONS:
        assert [f.name for f in DescribeConfigsResponse._struct.untagged_fields(v)] == [
            "throttle_time_ms",
            "results",
        ]
        assert [f.name for f in results.untagged_fields(v)] == [
            "error_code",
            "error_message",
            "resource_type",
            "resource_name",
            "configs",
        ]
        expected = ENTRY_FIELDS if v >= 3 else ENTRY_FIELDS[: ENTRY_FIELDS.index("synonyms") + 1]
        assert tuple(f.name for f in entry.untagged_fields(v)) == expected, v
        assert tuple(f.name for f in entry.fields["synonyms"].untagged_fields(v)) == SYNONYM_FIELDS
    assert DescribeConfigsResponse.flexible_version_q(4)
    assert not DescribeConfigsResponse.flexible_version_q(3)


@hsettings(max_examples=80, deadline=None)
@given(answer=answers, version=st.sampled_from(ALL_VERSIONS))
def test_every_entry_reads_as_kafka_python_reads_it(answer, version):
    data = answer.encode(version=version)
    theirs = DescribeConfigsResponse.decode(data, version=version)
    ours = decode_answer(data, version, lambda _s: True)
    assert ours.throttle_time_ms == theirs.throttle_time_ms
    assert ours.topics == _as_kafka_python_reads_it(theirs, lambda _s: True)


@hsettings(max_examples=80, deadline=None)
@given(
    answer=answers,
    version=st.sampled_from(ALL_VERSIONS),
    with_synonyms=st.booleans(),
)
def test_only_the_overrides_are_kept_when_only_they_are_asked_for(answer, version, with_synonyms):
    data = answer.encode(version=version)
    theirs = DescribeConfigsResponse.decode(data, version=version)
    keep = TOPIC_OVERRIDE_CODE.__eq__
    ours = decode_answer(data, version, keep, with_synonyms)
    assert ours.topics == _as_kafka_python_reads_it(theirs, keep, with_synonyms)
    assert all(e[2] == TOPIC_OVERRIDE_CODE for es in ours.topics.values() for e in es)


def _decodes_or_refuses(data: bytes, version: int) -> None:
    try:
        decode_answer(data, version, lambda _s: True)
    except ValueError as exc:
        assert "DescribeConfigs" in str(exc)


@hsettings(max_examples=80, deadline=None)
@given(answer=answers, version=st.sampled_from(ALL_VERSIONS), data=st.data())
def test_a_cut_or_padded_answer_is_a_decoding_error(answer, version, data):
    """Truncated anywhere, or with bytes left over, the answer is refused as malformed
    (kafka-python then reports "Unable to decode response"), never an IndexError."""
    raw = answer.encode(version=version)
    cut = data.draw(st.integers(min_value=0, max_value=max(len(raw) - 1, 0)))
    with pytest.raises(ValueError, match="DescribeConfigs"):
        decode_answer(raw[:cut], version, lambda _s: True)
    with pytest.raises(ValueError, match="DescribeConfigs"):
        decode_answer(raw + data.draw(st.binary(min_size=1, max_size=8)), version, bool)


@hsettings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=200), version=st.sampled_from(ALL_VERSIONS))
def test_random_bytes_decode_or_are_refused(raw, version):
    _decodes_or_refuses(raw, version)


@hsettings(max_examples=100, deadline=None)
@given(answer=answers, version=st.sampled_from(ALL_VERSIONS), data=st.data())
def test_a_flipped_byte_decodes_or_is_refused(answer, version, data):
    raw = bytearray(answer.encode(version=version))
    if raw:
        at = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[at] = data.draw(st.integers(min_value=0, max_value=255))
    _decodes_or_refuses(bytes(raw), version)


def test_versions_outside_those_read_are_refused():
    raw = DescribeConfigsResponse(throttle_time_ms=0, results=[]).encode(version=1)
    for version in (0, 5):
        with pytest.raises(ValueError, match="v1-v4"):
            decode_answer(raw, version, bool)


def test_the_request_is_kafkas_and_its_answer_is_read_lean():
    """The request sent is byte for byte kafka-python's own, named as Kafka names it (the
    gateway counts requests by name), capped at the last version read; its answer goes to
    `decode_answer`."""
    from kafka.protocol.admin.configs import DescribeConfigsRequest

    lean = topic_configs._lean_request(TOPIC_OVERRIDE_CODE.__eq__, True)
    assert lean.__name__ == "DescribeConfigsRequest"
    args = dict(resources=[(2, "orders", None), (2, "ünïcode", None)], include_synonyms=True)
    ours = lean(**args, min_version=VERSIONS[0], max_version=VERSIONS[1])
    theirs = DescribeConfigsRequest(**args)
    for version in ALL_VERSIONS:
        for r in (ours, theirs):
            r.API_VERSION = version
            r.with_header(correlation_id=7, client_id="ecap-ops")
        assert ours.encode(framed=True, header=True) == theirs.encode(framed=True, header=True)
        answer_type = ours.header.get_response_class()
        payload = DescribeConfigsResponse(
            throttle_time_ms=3,
            results=[
                Result(
                    error_code=0,
                    error_message=None,
                    resource_type=2,
                    resource_name="orders",
                    configs=[
                        Config(
                            name="retention.ms",
                            value="60000",
                            read_only=False,
                            config_source=1,
                            is_sensitive=False,
                            synonyms=[Synonym(name="log.retention.ms", value=None, source=5)],
                            config_type=5,
                            documentation=None,
                        ),
                        Config(
                            name="cleanup.policy",
                            value="delete",
                            read_only=False,
                            config_source=5,
                            is_sensitive=False,
                            synonyms=[],
                            config_type=7,
                            documentation="doc",
                        ),
                    ],
                )
            ],
        )
        buf = answer_bytes(payload, version)
        assert answer_type.parse_header(buf).correlation_id == 7
        got = answer_type.decode(buf)
        assert got.throttle_time_ms == 3
        assert got.topics == {
            "orders": [("retention.ms", "60000", 1, [("log.retention.ms", None, 5)])]
        }
    assert ours.max_version == DescribeConfigsRequest.max_version  # the class is Kafka's
    assert ours._max_version == VERSIONS[1]


def test_the_lean_request_leaves_kafka_pythons_own_classes_as_they_are():
    """Other users of kafka-python in the process (its own describe_configs) still get
    kafka-python's answers: the lean request's versions and header are its own."""
    from kafka.protocol.admin.configs import DescribeConfigsRequest

    before = {v: DescribeConfigsRequest[v] for v in ALL_VERSIONS}
    lean = topic_configs._lean_request(bool, False)
    for v in ALL_VERSIONS:
        assert issubclass(lean[v], lean)
        assert DescribeConfigsRequest[v] is before[v]
        assert not issubclass(DescribeConfigsRequest[v], lean)
    plain = DescribeConfigsRequest(resources=[(2, "t", None)], include_synonyms=False)
    plain.API_VERSION = 4
    plain.with_header(correlation_id=1, client_id="x")
    assert plain.header.get_response_class() is DescribeConfigsResponse[4]
