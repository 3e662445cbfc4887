"""OffsetFetch of many groups, read lean: committed offsets straight from the answer's bytes.

A lag tick, a snapshot and the group commands fetch the committed offsets of every group of
a coordinator in one OffsetFetch (v8). At 10,000 groups on 27 partitions the answer holds
270,000 partitions; kafka-python decodes each into an object (offset, leader epoch,
metadata, error, tags) that `committed_from` then reads once and drops. This reader sends
the same request, but decodes the answer's bytes into what is kept: per group, its error
code and its committed offsets by (topic, partition), for partitions without error and
with an offset. Same request, same answer; a malformed answer is kafka-python's "Unable to
decode response" (the connection's error), never a crash of another kind.
"""

import functools
import struct

from ecap_ops.gateway.wire import lean_request, skip_tags, uvarint

# The one version read here: the first that takes many groups at once (all Kafka 4 has).
VERSION = 8
# What a group's entry holds in this reader's answer: id, error code, offsets.
GroupOffsets = tuple[str, int, dict[tuple[str, int], int]]

_I16 = struct.Struct(">h").unpack_from
_I32 = struct.Struct(">i").unpack_from
# A partition as most answers hold it: partition_index, committed_offset,
# committed_leader_epoch, then (when the metadata is null or empty and no field is tagged)
# the metadata's one-byte length, error_code and the empty tag section.
_PARTITION = struct.Struct(">iqiBhB")
_PARTITION_AT = _PARTITION.unpack_from
_PARTITION_SIZE = _PARTITION.size
_PARTITION_HEAD = struct.calcsize(">iqi")  # where the metadata starts


class OffsetsAnswer:
    """One OffsetFetch answer as this reader keeps it."""

    __slots__ = ("throttle_time_ms", "groups")

    def __init__(self, throttle_time_ms: int, groups: list[GroupOffsets]):
        self.throttle_time_ms = throttle_time_ms
        self.groups = groups

    def __repr__(self) -> str:
        return f"OffsetsAnswer({len(self.groups)} groups)"


def decode_answer(buf: bytes) -> OffsetsAnswer:
    """OffsetFetch v8's answer (the bytes after the response header). Raises ValueError
    when the bytes are not such an answer."""
    buf = bytes(buf)
    try:
        return _decode(buf)
    except (IndexError, ValueError, struct.error) as exc:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"malformed OffsetFetch answer: {exc}") from None


def _text(buf: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    n, pos = uvarint(buf, pos)
    n -= 1
    if n < 0:
        raise ValueError(f"{what} is null")
    if pos + n > end:
        raise ValueError(f"{what} runs past the end")
    return buf[pos : pos + n].decode(), pos + n


def _count(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    n, pos = uvarint(buf, pos)
    if n == 0:
        raise ValueError(f"{what} is null")
    return n - 1, pos


def _decode(buf: bytes) -> OffsetsAnswer:
    end = len(buf)
    throttle = _I32(buf, 0)[0]
    n_groups, pos = _count(buf, 4, "groups")
    groups: list[GroupOffsets] = []
    names: dict[bytes, str] = {}  # each topic name decoded once for the whole answer
    for _ in range(n_groups):
        group_id, pos = _text(buf, pos, end, "group id")
        n_topics, pos = _count(buf, pos, "topics")
        offsets: dict[tuple[str, int], int] = {}
        for _ in range(n_topics):
            n, pos = uvarint(buf, pos)
            n -= 1
            if n < 0 or pos + n > end:
                raise ValueError("a topic name is null or runs past the end")
            raw = buf[pos : pos + n]
            pos += n
            name = names.get(raw)
            if name is None:
                name = names[raw] = raw.decode()
            n_parts, pos = _count(buf, pos, "partitions")
            for _ in range(n_parts):
                p, offset, _epoch, meta, error, tags = _PARTITION_AT(buf, pos)
                if meta <= 1 and tags == 0:  # metadata null or empty, no tagged fields
                    pos += _PARTITION_SIZE
                else:
                    pos += _PARTITION_HEAD
                    meta, pos = uvarint(buf, pos)  # metadata: compact nullable string
                    if meta > 1:
                        pos += meta - 1
                    error = _I16(buf, pos)[0]
                    pos = skip_tags(buf, pos + 2)
                if error == 0 and offset >= 0:
                    offsets[(name, p)] = offset
            pos = skip_tags(buf, pos)
        error = _I16(buf, pos)[0]
        pos = skip_tags(buf, pos + 2)
        groups.append((group_id, error, offsets))
    pos = skip_tags(buf, pos)
    if pos != end:
        raise ValueError(f"{end - pos} byte(s) left after the answer")
    return OffsetsAnswer(throttle, groups)


@functools.cache
def lean_request_class() -> type:
    """kafka-python's OffsetFetchRequest whose answer the connection decodes with
    `decode_answer` (made once)."""
    from kafka.protocol.consumer import OffsetFetchRequest, OffsetFetchResponse

    def decode(version: int, data: bytes) -> OffsetsAnswer:
        if version != VERSION:
            raise ValueError(f"OffsetFetch v{version} is not read here (v{VERSION})")
        return decode_answer(data)

    return lean_request(OffsetFetchRequest, OffsetFetchResponse, decode)


def offset_fetch_request(group_ids: list[str]):
    """One OffsetFetch (v8) for all these groups' committed offsets, read lean."""
    from kafka.protocol.consumer import OffsetFetchRequest

    group = OffsetFetchRequest.OffsetFetchRequestGroup
    return lean_request_class()(
        groups=[group(group_id=g, topics=None) for g in group_ids],
        min_version=VERSION,
        max_version=VERSION,
    )
