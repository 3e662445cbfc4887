"""Kafka's wire encoding, the pieces the gateway's lean answer readers share
(`topic_configs`, `offset_fetch`): unsigned varints and tagged fields."""


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
