"""DescribeConfigs of many topics, read lean: the gateway's reader of topic configs.

The broker's answer for 10,000 topics holds about 400,000 config entries (and as many
synonyms again when they are asked for). kafka-python decodes every one of them into an
object (and its `describe_configs` then into a dict with its enums named) before anything
is filtered. This reader sends the same DescribeConfigs request, but decodes the answer's
bytes itself (`decode_answer`): it walks past every entry whose config source the caller
does not keep without building anything, so the topic-level overrides that `plan`,
snapshots, cleanup and import ask for cost only what they are. Every entry (the retention
audit, describe-topic) is read the same way. Same request, same answer, same errors (the
caller's `KafkaGateway.call` translates them); a malformed answer is kafka-python's
"Unable to decode response".
"""

import struct
from collections.abc import Callable, Sequence
from typing import Any

from ecap_ops.gateway.wire import lean_request, skip_tags, uvarint

# Kafka's ConfigSource codes (DescribeConfigs v1+) by the names the core uses.
SOURCE_NAMES = {
    0: "UNKNOWN",
    1: "DYNAMIC_TOPIC_CONFIG",
    2: "DYNAMIC_BROKER_CONFIG",
    3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
    4: "STATIC_BROKER_CONFIG",
    5: "DEFAULT_CONFIG",
    6: "DYNAMIC_BROKER_LOGGER_CONFIG",
    7: "DYNAMIC_CLIENT_METRICS_CONFIG",
    8: "DYNAMIC_GROUP_CONFIG",
}
TOPIC_OVERRIDE_CODE = 1
# Topics per DescribeConfigs request (one request for up to this many).
CHUNK_TOPICS = 1000
# The versions `decode_answer` reads (config_source exists from v1; v4 is compact and tagged).
VERSIONS = (1, 4)
# The fields of one config entry and of one synonym, by Kafka's names, in the order the
# answer carries them from v3 on (v1-v2 end at "synonyms"): what `decode_answer` walks.
ENTRY_FIELDS = (
    "name",
    "value",
    "read_only",
    "config_source",
    "is_sensitive",
    "synonyms",
    "config_type",
    "documentation",
)
SYNONYM_FIELDS = ("name", "value", "source")

# (key, value, source code, synonyms as (name, value, source code))
Entry = tuple[str, str | None, int, list[tuple[str, str | None, int]]]


def source_name(code: int) -> str:
    return SOURCE_NAMES.get(code, "UNKNOWN")


# -- the answer's bytes ----------------------------------------------------------------------

_I16 = struct.Struct(">h").unpack_from
_I32 = struct.Struct(">i").unpack_from


# Lengths: a string's length (-1: null) and an array's count (-1: null), in the version's
# encoding (compact and tagged from v4, DescribeConfigs' first flexible version).
def _compact_len(buf: bytes, pos: int) -> tuple[int, int]:
    n, pos = uvarint(buf, pos)
    return n - 1, pos


def _str_len(buf: bytes, pos: int) -> tuple[int, int]:
    return _I16(buf, pos)[0], pos + 2


def _array_len(buf: bytes, pos: int) -> tuple[int, int]:
    return _I32(buf, pos)[0], pos + 4


def _signed8(b: int) -> int:
    return b - 256 if b > 127 else b


class ConfigsAnswer:
    """One DescribeConfigs answer as this reader keeps it: topic -> its kept entries."""

    __slots__ = ("throttle_time_ms", "topics")

    def __init__(self, throttle_time_ms: int, topics: dict[str, list[Entry]]):
        self.throttle_time_ms = throttle_time_ms
        self.topics = topics

    def __repr__(self) -> str:
        return f"ConfigsAnswer({len(self.topics)} resources)"


def decode_answer(
    buf: bytes, version: int, keep: Callable[[int], bool], with_synonyms: bool = True
) -> ConfigsAnswer:
    """DescribeConfigs' answer (v1-v4, the bytes after the response header), keeping the
    entries whose config source `keep` accepts; the others are walked past, not built.
    Raises ValueError when the bytes are not such an answer."""
    if not VERSIONS[0] <= version <= VERSIONS[1]:
        raise ValueError(f"DescribeConfigs v{version} is not read here (v1-v4)")
    buf = bytes(buf)  # hashable slices (a no-op for the bytes the connection hands over)
    try:
        if version >= 4:
            return _decode_flexible(buf, keep, with_synonyms)
        return _decode(buf, version, keep, with_synonyms)
    except (IndexError, ValueError, struct.error) as exc:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"malformed DescribeConfigs answer: {exc}") from None


def _decode(buf: bytes, version: int, keep, with_synonyms: bool) -> ConfigsAnswer:
    flexible = version >= 4
    str_len = _compact_len if flexible else _str_len
    arr_len = _compact_len if flexible else _array_len
    described = version >= 3  # config_type and documentation
    end = len(buf)
    kept: dict[int, bool] = {}
    throttle = _I32(buf, 0)[0]
    pos = 4
    n_results, pos = arr_len(buf, pos)
    topics: dict[str, list[Entry]] = {}
    for _ in range(n_results):
        pos += 2  # error_code: a resource in error has no entries (as kafka-python gave it)
        n, pos = str_len(buf, pos)  # error_message
        pos += max(n, 0) + 1  # and resource_type
        n, pos = str_len(buf, pos)
        if n < 0 or pos + n > end:
            raise ValueError("resource name out of bounds")
        resource = buf[pos : pos + n].decode()
        pos += n
        entries: list[Entry] = []
        n_configs, pos = arr_len(buf, pos)
        for _ in range(n_configs):
            n, pos = str_len(buf, pos)
            name_at, name_len = pos, n
            pos += max(n, 0)
            n, pos = str_len(buf, pos)
            value_at, value_len = pos, n
            pos += max(n, 0)
            source = _signed8(buf[pos + 1])  # after read_only
            pos += 3  # read_only, config_source, is_sensitive
            take = kept.get(source)
            if take is None:
                take = kept[source] = bool(keep(source))
            synonyms: list[tuple[str, str | None, int]] = []
            n_syn, pos = arr_len(buf, pos)
            for _ in range(n_syn):
                n, pos = str_len(buf, pos)
                s_name_at, s_name_len = pos, n
                pos += max(n, 0)
                n, pos = str_len(buf, pos)
                s_value_at, s_value_len = pos, n
                pos += max(n, 0)
                s_source = _signed8(buf[pos])
                pos += 1
                if flexible:
                    pos = skip_tags(buf, pos)
                if take and with_synonyms:
                    synonyms.append(
                        (
                            buf[s_name_at : s_name_at + max(s_name_len, 0)].decode(),
                            None
                            if s_value_len < 0
                            else buf[s_value_at : s_value_at + s_value_len].decode(),
                            s_source,
                        )
                    )
            if described:
                pos += 1  # config_type
                n, pos = str_len(buf, pos)  # documentation
                pos += max(n, 0)
            if flexible:
                pos = skip_tags(buf, pos)
            if pos > end:
                raise ValueError("config entry out of bounds")
            if take:
                entries.append(
                    (
                        buf[name_at : name_at + max(name_len, 0)].decode(),
                        None if value_len < 0 else buf[value_at : value_at + value_len].decode(),
                        source,
                        synonyms,
                    )
                )
        if flexible:
            pos = skip_tags(buf, pos)
        topics[resource] = entries
    if flexible:
        pos = skip_tags(buf, pos)
    if pos != end:
        raise ValueError(f"{end - pos} byte(s) left after the answer")
    return ConfigsAnswer(throttle, topics)


def _decode_flexible(buf: bytes, keep, with_synonyms: bool) -> ConfigsAnswer:
    """v4 (compact and tagged): `_decode`'s walk with a length's usual one-byte varint and
    an empty tag section read in place (the answer for 10,000 topics is ~1,000,000
    entries and synonyms; a call per length would be most of the time)."""
    end = len(buf)
    kept: dict[int, bool] = {}
    text: dict[bytes, str] = {}
    throttle = _I32(buf, 0)[0]
    pos = 4
    n_results, pos = uvarint(buf, pos)
    topics: dict[str, list[Entry]] = {}
    for _ in range(n_results - 1):
        pos += 2  # error_code: a resource in error has no entries (as kafka-python gave it)
        n, pos = uvarint(buf, pos)  # error_message
        pos += (n - 1 if n else 0) + 1  # and resource_type
        n, pos = uvarint(buf, pos)
        if n < 1 or pos + n - 1 > end:
            raise ValueError("resource name out of bounds")
        resource = buf[pos : pos + n - 1].decode()
        pos += n - 1
        entries: list[Entry] = []
        n_configs, pos = uvarint(buf, pos)
        for _ in range(n_configs - 1):
            n = buf[pos]  # name: its length + 1
            if n < 0x80:
                pos += 1
            else:
                n, pos = uvarint(buf, pos)
            name_at, name_len = pos, n - 1
            pos += n - 1 if n else 0
            n = buf[pos]  # value: its length + 1, 0 for null
            if n < 0x80:
                pos += 1
            else:
                n, pos = uvarint(buf, pos)
            value_at, value_len = pos, n - 1
            pos += n - 1 if n else 0
            source = buf[pos + 1]  # after read_only
            if source > 127:
                source -= 256
            pos += 3  # read_only, config_source, is_sensitive
            take = kept.get(source)
            if take is None:
                take = kept[source] = bool(keep(source))
            synonyms: list[tuple[str, str | None, int]] = []
            n_syn = buf[pos]
            if n_syn < 0x80:
                pos += 1
            else:
                n_syn, pos = uvarint(buf, pos)
            for _ in range(n_syn - 1):
                n = buf[pos]
                if n < 0x80:
                    pos += 1
                else:
                    n, pos = uvarint(buf, pos)
                s_name_at, s_name_len = pos, n - 1
                pos += n - 1 if n else 0
                n = buf[pos]
                if n < 0x80:
                    pos += 1
                else:
                    n, pos = uvarint(buf, pos)
                s_value_at, s_value_len = pos, n - 1
                pos += n - 1 if n else 0
                s_source = buf[pos]
                pos += 1
                if buf[pos]:
                    pos = skip_tags(buf, pos)
                else:
                    pos += 1
                if take and with_synonyms:
                    synonyms.append(
                        (
                            buf[s_name_at : s_name_at + max(s_name_len, 0)].decode(),
                            None
                            if s_value_len < 0
                            else buf[s_value_at : s_value_at + s_value_len].decode(),
                            s_source - 256 if s_source > 127 else s_source,
                        )
                    )
            pos += 1  # config_type
            n = buf[pos]  # documentation
            if n < 0x80:
                pos += 1
            else:
                n, pos = uvarint(buf, pos)
            pos += n - 1 if n else 0
            if buf[pos]:
                pos = skip_tags(buf, pos)
            else:
                pos += 1
            if pos > end:
                raise ValueError("config entry out of bounds")
            if take:
                # Keys, and most values, repeat from topic to topic: each distinct one is
                # decoded once and shared (less time, and far less memory at 10,000 topics).
                raw = buf[name_at : name_at + max(name_len, 0)]
                key = text.get(raw)
                if key is None:
                    key = text[raw] = raw.decode()
                if value_len < 0:
                    value = None
                else:
                    raw = buf[value_at : value_at + value_len]
                    value = text.get(raw)
                    if value is None:
                        value = text[raw] = raw.decode()
                entries.append((key, value, source, synonyms))
        pos = skip_tags(buf, pos)
        topics[resource] = entries
    pos = skip_tags(buf, pos)
    if pos != end:
        raise ValueError(f"{end - pos} byte(s) left after the answer")
    return ConfigsAnswer(throttle, topics)


def _lean_request(keep: Callable[[int], bool], with_synonyms: bool) -> type:
    """A DescribeConfigsRequest whose answer the connection decodes with `decode_answer`."""
    from kafka.protocol.admin.configs import DescribeConfigsRequest, DescribeConfigsResponse

    return lean_request(
        DescribeConfigsRequest,
        DescribeConfigsResponse,
        lambda version, data: decode_answer(data, version, keep, with_synonyms),
    )


def describe_topic_configs(
    admin: Any,
    names: Sequence[str],
    include_synonyms: bool,
    keep: Callable[[int], bool],
) -> dict[str, list[Entry]]:
    """Each topic's config entries whose source code `keep` accepts, as
    (key, value, source code, synonyms as (name, value, source code)), in one
    DescribeConfigs request per `CHUNK_TOPICS` topics, sent together. A topic the broker
    answered with an error (it does not exist) has no entries, as kafka-python's reader
    gave it."""
    from kafka.admin import ConfigResourceType

    manager = admin._manager
    request_type = _lean_request(keep, include_synonyms)
    # One request per chunk, all sent at once: a single DescribeConfigs of 10,000 topics
    # takes the broker longer than a request timeout meant for a quick answer, while
    # chunks of this size each come back well within it.
    chunks = [names[i : i + CHUNK_TOPICS] for i in range(0, len(names), CHUNK_TOPICS)]
    requests = [
        request_type(
            resources=[(ConfigResourceType.TOPIC.value, n, None) for n in chunk],
            include_synonyms=include_synonyms,
            min_version=VERSIONS[0],
            max_version=VERSIONS[1],  # a later version's layout is not decode_answer's
        )
        for chunk in chunks
    ]

    async def send() -> list[Any]:
        futures = [manager.send(r) for r in requests]
        return [await f for f in futures]

    out: dict[str, list[Entry]] = {}
    for answer in manager.run(send):
        out.update(answer.topics)
    return out
