"""Kafka's wire encoding, the pieces the gateway's lean answer readers share
(`topic_configs`, `offset_fetch`): unsigned varints, tagged fields, and a kafka-python
request whose answer is decoded by the reader instead of into kafka-python's objects."""

import types
from collections.abc import Callable
from typing import Any


def uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    pos += 1
    if b < 0x80:
        return b, pos
    result, shift = b & 0x7F, 7
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 28:
            raise ValueError("varint longer than 5 bytes")


def skip_tags(buf: bytes, pos: int) -> int:
    count, pos = uvarint(buf, pos)
    for _ in range(count):
        _tag, pos = uvarint(buf, pos)
        size, pos = uvarint(buf, pos)
        pos += size
    return pos


def lean_request(base: type, response: type, decode: Callable[[int, bytes], Any]) -> type:
    """A subclass of kafka-python's request class `base` (same name, same bytes on the wire)
    whose answer the connection decodes with `decode(version, answer bytes)`: kafka-python
    finds an answer's decoder through the request's header. `response`: kafka-python's
    answer class, for the answer's header."""
    from kafka.protocol.api_header import RequestHeader
    from kafka.util import classproperty

    class LeanAnswer:
        def __init__(self, version: int):
            self.version = version

        def parse_header(self, data):
            return response[self.version].parse_header(data)

        def decode(self, data):
            return decode(self.version, data.read())

    class Header(RequestHeader, init=False):
        __slots__ = ()

        def get_response_class(self):
            return LeanAnswer(self.request_api_version)

    def body(ns: dict) -> None:
        ns["__slots__"] = ()
        # Its own versioned classes: `lean[v]` must not land in kafka-python's shared table
        # (`base[v]` would then be this class, for every other user of kafka-python).
        ns["_VERSIONS"] = {}
        ns["header_class"] = classproperty(lambda cls: Header)

    # Named as Kafka names it: the gateway counts requests by their class's name.
    return types.new_class(base.__name__, (base,), {"init": False}, body)
