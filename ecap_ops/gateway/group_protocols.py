"""Kafka's group requests that kafka-python 3 does not define, built on its protocol classes:
ConsumerGroupDescribe (API key 69, KIP-848 consumer groups), StreamsGroupDescribe (89,
KIP-1071 streams groups), ShareGroupDescribe (77) and DescribeShareGroupOffsets (90) (KIP-932
share groups).

kafka-python describes each request by a message schema (the layout Kafka's own
`common/message/*.json` define) and builds the encoder and decoder from it; it reads those
schemas from files inside its package. Ours are written here, for exactly the versions we
send (the layouts of Kafka 4.4's messages at those versions), and handed to the same
machinery. A broker answers with the version the request was sent at, so a version we do
not describe is never decoded: each request pins its version range, and kafka-python picks
the highest both sides support (from the broker's ApiVersions).

The classes are built on first use (building them is not free and importing ecap_ops does no
work), and kept: kafka-python finds a response's class by API key through a weak reference.
Answers become the core's types (`ecap_ops.core.groups`) here; kafka-python's objects never
leave the gateway.
"""

import functools
from collections.abc import Iterable

from ecap_ops.core.groups import TP, GroupDescription, GroupMember

# -- the schemas ------------------------------------------------------------------------


def _f(name: str, type_: str, versions: str = "0+", nullable: str | None = None, fields=None):
    """One field of a message schema, in the form kafka-python reads."""
    out: dict = {"name": name, "type": type_, "versions": versions}
    if nullable is not None:
        out["nullableVersions"] = nullable
        if fields is None:
            out["default"] = "null"
    if fields is not None:
        out["fields"] = list(fields)
    return out


def _message(api_key: int, kind: str, name: str, valid: str, flexible: str, fields) -> dict:
    return {
        "apiKey": api_key,
        "type": kind,
        "name": name,
        "validVersions": valid,
        "flexibleVersions": flexible,
        "fields": list(fields),
    }


def _describe_request(api_key: int, name: str, valid: str, first: str) -> dict:
    """The request of the three describe APIs: group ids, and whether to include the
    authorized operations (always the same two fields)."""
    return _message(
        api_key,
        "request",
        name,
        valid,
        f"{first}+",
        [
            _f("GroupIds", "[]string", f"{first}+"),
            _f("IncludeAuthorizedOperations", "bool", f"{first}+"),
        ],
    )


def _group_head(v: str) -> list[dict]:
    """The fields every described group starts with."""
    return [
        _f("ErrorCode", "int16", v),
        _f("ErrorMessage", "string", v, nullable=v),
        _f("GroupId", "string", v),
        _f("GroupState", "string", v),
        _f("GroupEpoch", "int32", v),
        _f("AssignmentEpoch", "int32", v),
    ]


def _topic_partitions(name: str, v: str) -> dict:
    return _f(
        name,
        "[]TopicPartitions",
        v,
        fields=[
            _f("TopicId", "uuid", v),
            _f("TopicName", "string", v),
            _f("Partitions", "[]int32", v),
        ],
    )


def _assignment(name: str, v: str) -> dict:
    return _f(name, "Assignment", v, fields=[_topic_partitions("TopicPartitions", v)])


CONSUMER_GROUP_DESCRIBE_REQUEST = _describe_request(69, "ConsumerGroupDescribeRequest", "0", "0")
CONSUMER_GROUP_DESCRIBE_RESPONSE = _message(
    69,
    "response",
    "ConsumerGroupDescribeResponse",
    "0",
    "0+",
    [
        _f("ThrottleTimeMs", "int32"),
        _f(
            "Groups",
            "[]DescribedGroup",
            fields=[
                *_group_head("0+"),
                _f("AssignorName", "string"),
                _f(
                    "Members",
                    "[]Member",
                    fields=[
                        _f("MemberId", "string"),
                        _f("InstanceId", "string", nullable="0+"),
                        _f("RackId", "string", nullable="0+"),
                        _f("MemberEpoch", "int32"),
                        _f("ClientId", "string"),
                        _f("ClientHost", "string"),
                        _f("SubscribedTopicNames", "[]string"),
                        _f("SubscribedTopicRegex", "string", nullable="0+"),
                        _assignment("Assignment", "0+"),
                        _assignment("TargetAssignment", "0+"),
                    ],
                ),
                _f("AuthorizedOperations", "int32"),
            ],
        ),
    ],
)

# Version 0 was Kafka 4.0's early access and is gone; version 1 is the stable one.
SHARE_GROUP_DESCRIBE_REQUEST = _describe_request(77, "ShareGroupDescribeRequest", "1", "1")
SHARE_GROUP_DESCRIBE_RESPONSE = _message(
    77,
    "response",
    "ShareGroupDescribeResponse",
    "1",
    "1+",
    [
        _f("ThrottleTimeMs", "int32", "1+"),
        _f(
            "Groups",
            "[]DescribedGroup",
            "1+",
            fields=[
                *_group_head("1+"),
                _f("AssignorName", "string", "1+"),
                _f(
                    "Members",
                    "[]Member",
                    "1+",
                    fields=[
                        _f("MemberId", "string", "1+"),
                        _f("RackId", "string", "1+", nullable="1+"),
                        _f("MemberEpoch", "int32", "1+"),
                        _f("ClientId", "string", "1+"),
                        _f("ClientHost", "string", "1+"),
                        _f("SubscribedTopicNames", "[]string", "1+"),
                        _assignment("Assignment", "1+"),
                    ],
                ),
                _f("AuthorizedOperations", "int32", "1+"),
            ],
        ),
    ],
)


def _key_values(name: str) -> dict:
    return _f(name, "[]KeyValue", fields=[_f("Key", "string"), _f("Value", "string")])


def _topic_info(name: str) -> dict:
    return _f(
        name,
        "[]TopicInfo",
        fields=[
            _f("Name", "string"),
            _f("Partitions", "int32"),
            _f("ReplicationFactor", "int16"),
            _key_values("TopicConfigs"),
        ],
    )


def _task_offsets(name: str) -> dict:
    return _f(
        name,
        "[]TaskOffset",
        fields=[_f("SubtopologyId", "string"), _f("Partition", "int32"), _f("Offset", "int64")],
    )


def _tasks(name: str) -> dict:
    return _f(
        name, "[]TaskIds", fields=[_f("SubtopologyId", "string"), _f("Partitions", "[]int32")]
    )


def _streams_assignment(name: str) -> dict:
    return _f(
        name,
        "Assignment",
        fields=[_tasks("ActiveTasks"), _tasks("StandbyTasks"), _tasks("WarmupTasks")],
    )


STREAMS_GROUP_DESCRIBE_REQUEST = _describe_request(89, "StreamsGroupDescribeRequest", "0", "0")
STREAMS_GROUP_DESCRIBE_RESPONSE = _message(
    89,
    "response",
    "StreamsGroupDescribeResponse",
    "0",
    "0+",
    [
        _f("ThrottleTimeMs", "int32"),
        _f(
            "Groups",
            "[]DescribedGroup",
            fields=[
                *_group_head("0+"),
                _f(
                    "Topology",
                    "Topology",
                    nullable="0+",
                    fields=[
                        _f("Epoch", "int32"),
                        _f(
                            "Subtopologies",
                            "[]Subtopology",
                            nullable="0+",
                            fields=[
                                _f("SubtopologyId", "string"),
                                _f("SourceTopics", "[]string"),
                                _f("RepartitionSinkTopics", "[]string"),
                                _topic_info("StateChangelogTopics"),
                                _topic_info("RepartitionSourceTopics"),
                            ],
                        ),
                    ],
                ),
                _f(
                    "Members",
                    "[]Member",
                    fields=[
                        _f("MemberId", "string"),
                        _f("MemberEpoch", "int32"),
                        _f("InstanceId", "string", nullable="0+"),
                        _f("RackId", "string", nullable="0+"),
                        _f("ClientId", "string"),
                        _f("ClientHost", "string"),
                        _f("TopologyEpoch", "int32"),
                        _f("ProcessId", "string"),
                        _f(
                            "UserEndpoint",
                            "Endpoint",
                            nullable="0+",
                            fields=[_f("Host", "string"), _f("Port", "uint16")],
                        ),
                        _key_values("ClientTags"),
                        _task_offsets("TaskOffsets"),
                        _task_offsets("TaskEndOffsets"),
                        _streams_assignment("Assignment"),
                        _streams_assignment("TargetAssignment"),
                        _f("IsClassic", "bool"),
                    ],
                ),
                _f("AuthorizedOperations", "int32"),
            ],
        ),
    ],
)

# Version 1 adds the lag the share coordinator keeps per partition (KIP-1226), -1 unknown.
DESCRIBE_SHARE_GROUP_OFFSETS_REQUEST = _message(
    90,
    "request",
    "DescribeShareGroupOffsetsRequest",
    "0-1",
    "0+",
    [
        _f(
            "Groups",
            "[]DescribeShareGroupOffsetsRequestGroup",
            fields=[
                _f("GroupId", "string"),
                _f(
                    "Topics",
                    "[]DescribeShareGroupOffsetsRequestTopic",
                    nullable="0+",
                    fields=[_f("TopicName", "string"), _f("Partitions", "[]int32")],
                ),
            ],
        )
    ],
)
DESCRIBE_SHARE_GROUP_OFFSETS_RESPONSE = _message(
    90,
    "response",
    "DescribeShareGroupOffsetsResponse",
    "0-1",
    "0+",
    [
        _f("ThrottleTimeMs", "int32"),
        _f(
            "Groups",
            "[]DescribeShareGroupOffsetsResponseGroup",
            fields=[
                _f("GroupId", "string"),
                _f(
                    "Topics",
                    "[]DescribeShareGroupOffsetsResponseTopic",
                    fields=[
                        _f("TopicName", "string"),
                        _f("TopicId", "uuid"),
                        _f(
                            "Partitions",
                            "[]DescribeShareGroupOffsetsResponsePartition",
                            fields=[
                                _f("PartitionIndex", "int32"),
                                _f("StartOffset", "int64"),
                                _f("LeaderEpoch", "int32"),
                                _f("Lag", "int64", "1+"),
                                _f("ErrorCode", "int16"),
                                _f("ErrorMessage", "string", nullable="0+"),
                            ],
                        ),
                    ],
                ),
                _f("ErrorCode", "int16"),
                _f("ErrorMessage", "string", nullable="0+"),
            ],
        ),
    ],
)

SCHEMAS = {
    s["name"]: s
    for s in (
        CONSUMER_GROUP_DESCRIBE_REQUEST,
        CONSUMER_GROUP_DESCRIBE_RESPONSE,
        SHARE_GROUP_DESCRIBE_REQUEST,
        SHARE_GROUP_DESCRIBE_RESPONSE,
        STREAMS_GROUP_DESCRIBE_REQUEST,
        STREAMS_GROUP_DESCRIBE_RESPONSE,
        DESCRIBE_SHARE_GROUP_OFFSETS_REQUEST,
        DESCRIBE_SHARE_GROUP_OFFSETS_RESPONSE,
    )
}


# -- the classes ------------------------------------------------------------------------


@functools.cache
def _metaclass():
    """kafka-python's message metaclass, taking the schema from the class body (`SCHEMA`)
    instead of reading it from a file of its package."""
    import copy

    from kafka.protocol.api_data import JsonSchemaData
    from kafka.protocol.api_message import ApiMessage
    from kafka.protocol.schemas import StructField

    base = type(ApiMessage)

    class SchemaInCode(base):
        def __new__(metacls, name, bases, attrs, **kw):
            if kw.get("init", True):
                schema = copy.deepcopy(attrs.pop("SCHEMA"))
                attrs["_json"] = schema
                attrs["_struct"] = StructField(schema)
                attrs["__license__"] = None
            # Past JsonSchemaData.__new__ (which would read the schema from a file).
            return super(JsonSchemaData, metacls).__new__(metacls, name, bases, attrs, **kw)

    return SchemaInCode


@functools.cache
def message_class(name: str):
    """The kafka-python class of one of our messages (built once, then kept)."""
    from kafka.protocol.api_message import ApiMessage

    return _metaclass()(name, (ApiMessage,), {"SCHEMA": SCHEMAS[name], "__slots__": ()})


def _with_responses(request_name: str):
    message_class(request_name.replace("Request", "Response"))  # registers the decoder
    return message_class(request_name)


def describe_request(group_type: str, group_ids: Iterable[str]):
    """The describe request of one group type (consumer, share, streams) for these groups."""
    name = {
        "consumer": "ConsumerGroupDescribeRequest",
        "share": "ShareGroupDescribeRequest",
        "streams": "StreamsGroupDescribeRequest",
    }[group_type]
    cls = _with_responses(name)
    return cls(group_ids=list(group_ids), include_authorized_operations=False)


def share_offsets_request(group_ids: Iterable[str]):
    """One DescribeShareGroupOffsets for all of these share groups, all their partitions."""
    cls = _with_responses("DescribeShareGroupOffsetsRequest")
    group = cls.DescribeShareGroupOffsetsRequestGroup
    return cls(groups=[group(group_id=g, topics=None) for g in group_ids])


# -- answers as the core's types ----------------------------------------------------------


def _error_name(code: int, message: str | None = None) -> str:
    from kafka import errors as kerr

    name = kerr.for_code(code).__name__
    return f"{name}: {message}"[:200] if message else name


def _merge(assignment: dict[str, tuple[int, ...]], topic: str, parts: Iterable[int]) -> None:
    assignment[topic] = tuple(sorted(set(assignment.get(topic, ())) | set(parts)))


def _topic_assignment(a) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for tp in (a.topic_partitions if a is not None else None) or ():
        _merge(out, tp.topic_name, tp.partitions or ())
    return out


def descriptions_from(group_type: str, response) -> dict[str, GroupDescription]:
    """The groups of a ConsumerGroupDescribe, ShareGroupDescribe or StreamsGroupDescribe
    answer. A group the coordinator could not describe has `members` None and the error."""
    out: dict[str, GroupDescription] = {}
    for g in response.groups:
        if g.error_code:
            out[g.group_id] = GroupDescription(
                g.group_id, "Unknown", None, _error_name(g.error_code, g.error_message)
            )
            continue
        if group_type == "streams":
            members = _streams_members(g)
        else:
            members = tuple(
                GroupMember(
                    member_id=m.member_id or "",
                    client_id=m.client_id or "",
                    host=m.client_host or "",
                    assignment=_topic_assignment(m.assignment),
                    subscription=tuple(m.subscribed_topic_names or ()),
                )
                for m in g.members or ()
            )
        out[g.group_id] = GroupDescription(g.group_id, g.group_state or "Unknown", members)
    return out


def _streams_members(g) -> tuple[GroupMember, ...]:
    """A streams group's members, each with the partitions of its active tasks: a task
    (sub-topology, partition n) reads partition n of each of its sub-topology's source
    topics (the user's topics and the repartition topics it reads back)."""
    sources: dict[str, tuple[str, ...]] = {}
    for s in (g.topology.subtopologies if g.topology is not None else None) or ():
        topics = list(s.source_topics or ()) + [t.name for t in s.repartition_source_topics or ()]
        sources[s.subtopology_id] = tuple(topics)
    members = []
    for m in g.members or ():
        assignment: dict[str, tuple[int, ...]] = {}
        for task in (m.assignment.active_tasks if m.assignment is not None else None) or ():
            for topic in sources.get(task.subtopology_id, ()):
                _merge(assignment, topic, task.partitions or ())
        members.append(
            GroupMember(
                member_id=m.member_id or "",
                client_id=m.client_id or "",
                host=m.client_host or "",
                assignment=assignment,
                subscription=tuple(sorted({t for ts in sources.values() for t in ts})),
            )
        )
    return tuple(members)


def share_starts_from(
    response,
    problems: list[str],
    failed: dict[str, str] | None = None,
    lags: dict[str, dict[TP, int]] | None = None,
) -> dict[str, dict[TP, int]]:
    """The share-partition start offset (SPSO) of each partition of each share group in a
    DescribeShareGroupOffsets answer: the first offset not yet acknowledged for good, where
    the group's consumption stands. A partition the group has not started on (-1) is left
    out; a group that failed is noted in `problems` and `failed`. `lags`, when given, gets
    the lag the share coordinator reports per partition (version 1, KIP-1226; left out when
    unknown): the SPSO alone counts acknowledged records above it as lag."""
    out: dict[str, dict[TP, int]] = {}
    for g in response.groups:
        if g.error_code:
            reason = _error_name(g.error_code, g.error_message)
            problems.append(f"share-group offsets of group {g.group_id}: {reason}")
            if failed is not None:
                failed[g.group_id] = reason
            continue
        starts: dict[TP, int] = {}
        for t in g.topics or ():
            for p in t.partitions or ():
                if p.error_code:
                    problems.append(
                        f"share-group offsets of group {g.group_id} on "
                        f"{t.topic_name}/{p.partition_index}: {_error_name(p.error_code)}"
                    )
                elif p.start_offset is not None and p.start_offset >= 0:
                    starts[(t.topic_name, p.partition_index)] = p.start_offset
                    broker_lag = getattr(p, "lag", None)
                    if lags is not None and broker_lag is not None and broker_lag >= 0:
                        lags.setdefault(g.group_id, {})[(t.topic_name, p.partition_index)] = (
                            broker_lag
                        )
        out[g.group_id] = starts
    return out
