"""`test-produce`: send one JSON message to a topic, checked before anything is sent.

The message must be UTF-8 text holding one JSON value, as every consumer of the platform
can read it: no NaN or Infinity (Python and Jackson accept them, JSON does not), no
duplicate keys in an object (which of the two would a consumer, or the partitioner, use?),
nested at most 64 levels, no lone surrogate escapes (\\ud800) that no UTF-8 decoder can
represent. The key is `--key`, or else the value of the catalog's partition-key field in the
message (`user_id` for transactions, ...), so the message lands where the platform's
producers would put it; a message larger than the topic's max.message.bytes is refused.
With a contract in the catalog (`contracts:`), the message must also match the topic's
JSON Schema, fit its max_record_bytes, and a --key must equal the message's key field.
Nothing is produced unless every check passes, and every refusal names the problem and
where it is.
"""

import json
import math
import re
from dataclasses import dataclass

from ecap_ops.catalog.model import Catalog
from ecap_ops.core.integrity import find_constant, line_column, nesting_exceeds
from ecap_ops.errors import EcapOpsError
from ecap_ops.gateway import KafkaGateway

# Bytes a one-record batch adds around the key and value: the v2 batch header (61) and the
# record's own attributes, timestamp and offset deltas and length varints (at most 21).
BATCH_OVERHEAD = 82
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1048588
# How deep a message may nest, and how much test-produce reads from a file or stdin at most
# (well above any topic's max.message.bytes in practice; the topic's limit is checked after).
MAX_DEPTH = 64
MAX_INPUT_BYTES = 64 * 1024 * 1024
NOTHING = "nothing was produced"
# Python hands undecodable bytes of argv over as lone surrogates (surrogateescape).
_SURROGATE = re.compile("[\ud800-\udfff]")
_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")


class MessageInvalid(EcapOpsError):
    """A message given to test-produce cannot be sent as it is; nothing was produced."""


@dataclass(frozen=True)
class Produced:
    topic: str
    partition: int
    offset: int
    key: str | None
    key_source: str  # --key, the catalog field name, or none
    size_bytes: int
    max_message_bytes: int

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def _short(value: str, limit: int = 40) -> str:
    """A short prefix of a user's value, for messages."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def decode_message(data: bytes, source: str = "the message") -> str:
    """The bytes of a message (from a file or stdin) as text, or MessageInvalid naming the
    first byte that is not UTF-8."""
    if len(data) > MAX_INPUT_BYTES:
        raise MessageInvalid(
            f"{source} is larger than {MAX_INPUT_BYTES:,} bytes, the most test-produce reads; {NOTHING}"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise MessageInvalid(
            f"{source} is not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} "
            f"(line {line}, column {col}); send UTF-8 text; {NOTHING}"
        ) from None


def check_text(text: str, source: str) -> None:
    """Refuse text that came from undecodable bytes (argv's surrogateescape)."""
    m = _SURROGATE.search(text)
    if m:
        code = ord(m.group())
        byte = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
        line, col = line_column(text, m.start())
        raise MessageInvalid(
            f"{source} is not valid UTF-8: {byte} at character {m.start()} (line {line}, column {col}); "
            f"send UTF-8 text; {NOTHING}"
        )


class _Duplicate(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


class _Constant(ValueError):
    pass


def _no_duplicates(pairs: list) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _Duplicate(k)
        out[k] = v
    return out


def _raise_constant(name: str):
    raise _Constant(name)


def _lone_surrogate(value: object, path: str) -> str | None:
    """The JSON path of the first string (key or value) that is not encodable as UTF-8."""
    if isinstance(value, str):
        return path if _SURROGATE.search(value) else None
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _lone_surrogate(v, f"{path}[{i}]")
            if found:
                return found
    elif isinstance(value, dict):
        for k, v in value.items():
            if _SURROGATE.search(k):
                return f"{path} (a key)"
            found = _lone_surrogate(v, f"{path}.{k}")
            if found:
                return found
    return None


def parse_message(text: str, source: str = "the message") -> object:
    """The message as JSON, or MessageInvalid saying what is wrong and where."""
    check_text(text, source)
    if not text.strip():
        raise MessageInvalid(f"{source} is empty; send one JSON value; {NOTHING}")
    deep = nesting_exceeds(text, MAX_DEPTH)
    if deep is not None:
        line, col = line_column(text, deep)
        raise MessageInvalid(
            f"{source} is nested more than {MAX_DEPTH} levels deep (at line {line}, column {col}); {NOTHING}"
        )
    try:
        message = json.loads(text, parse_constant=_raise_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise MessageInvalid(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} (character {exc.pos}); {NOTHING}"
        ) from None
    except _Constant as exc:
        found = find_constant(text)
        where = " (at line {}, column {})".format(*line_column(text, found[1])) if found else ""
        raise MessageInvalid(
            f"{source} is not valid JSON: {exc.args[0]} is not a JSON number{where}; write null or a string "
            f"instead; {NOTHING}"
        ) from None
    except _Duplicate as exc:
        raise MessageInvalid(
            f"{source} has the key {_short(exc.key)} twice in one object; consumers would each keep a different "
            f"one; {NOTHING}"
        ) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise MessageInvalid(
            f"{source} is not usable JSON: {str(exc).split(';')[0]}; {NOTHING}"
        ) from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise MessageInvalid(f"{source} is nested too deeply; {NOTHING}") from None
    path = _lone_surrogate(message, "$")
    if path is not None:
        raise MessageInvalid(
            f"{source} has a lone surrogate escape (\\ud800-\\udfff without its pair) in the string at {path}; "
            f"it is not Unicode text and no UTF-8 consumer can read it; {NOTHING}"
        )
    return message


def key_for(message: object, field: str | None, topic: str) -> str | None:
    """The key from the message's partition-key field (the catalog's `partition_key`)."""
    if field is None:
        return None
    if not isinstance(message, dict):
        raise MessageInvalid(
            f"topic {topic} is keyed by the field {field!r}, but the message is a JSON {type(message).__name__}, not an object; "
            "pass --key or send an object; nothing was produced"
        )
    if field not in message or message[field] is None:
        raise MessageInvalid(
            f"the message has no {field!r} field, the partition key of topic {topic}; add it or pass --key; nothing was produced"
        )
    value = message[field]
    if isinstance(value, (dict, list)):
        raise MessageInvalid(
            f"the message's {field!r} is a JSON {type(value).__name__}; a partition key must be a string or number; nothing was produced"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise MessageInvalid(
            f"the message's {field!r} is a number too large for a double; a partition key must be a string "
            f"or an ordinary number; {NOTHING}"
        )
    return value if isinstance(value, str) else json.dumps(value)


def _contract(catalog: Catalog, spec):
    """The topic's declared contract (catalog `contracts:`), or None."""
    from ecap_ops.catalog.contracts import contracts_of

    if spec is None:
        return None
    contract = contracts_of(catalog).get(spec.key)
    return contract if contract.declared else None


def check_contract(message: object, key: str | None, spec, contract) -> None:
    """Refuse a message its topic's contract refuses: one that fails the topic's JSON
    Schema, or a --key that is not the message's key field (the record would land on
    another partition than the platform's producers put that key's records)."""
    from ecap_ops.core.contracts import key_text, schema_reason

    if contract.schema is not None:
        reason = schema_reason(contract.schema, message)
        if reason is not None:
            raise MessageInvalid(
                f"the message does not match topic {spec.name}'s schema: {reason}; fix the message "
                f"(the schema is in the catalog's contracts); {NOTHING}"
            )
    if key is not None and spec.partition_key:
        expected = key_text(message, spec.partition_key)
        if expected is not None and expected != key:
            raise MessageInvalid(
                f"--key {_short(key)} is not the message's {spec.partition_key} {_short(expected)}; "
                f"topic {spec.name} is keyed by {spec.partition_key}: leave out --key or make them agree; {NOTHING}"
            )


def test_produce(
    gw: KafkaGateway,
    catalog: Catalog,
    topic: str,
    text: str,
    key: str | None = None,
    timeout_s: float = 10.0,
) -> Produced:
    """Validate, then produce one message (acks=all); returns where it landed."""
    if not _LEGAL_TOPIC.fullmatch(topic) or topic in (".", ".."):
        raise MessageInvalid(
            f"{_short(topic)} is not a Kafka topic name (letters, digits, '.', '_' and '-', at most 249); {NOTHING}"
        )
    if key is not None:
        check_text(key, "--key")
    message = parse_message(text)
    if topic not in gw.topics([topic]):
        raise MessageInvalid(f"topic {topic!r} does not exist on the cluster; nothing was produced")
    spec = catalog.get(topic)
    spec = spec if spec is not None and spec.name == topic else None
    contract = _contract(catalog, spec)
    given = key
    # The key first: a message without its topic's key field gets that named, before the
    # schema (which also requires the field) says it less directly.
    if key is not None:
        source = "--key"
    elif spec is not None and spec.partition_key:
        key = key_for(message, spec.partition_key, topic)
        source = spec.partition_key
    else:
        source = "none"
    if contract is not None:
        check_contract(message, given, spec, contract)
    limit = gw.all_topic_configs([topic]).get(topic, {}).get("max.message.bytes")
    try:
        max_bytes = int((limit.value if limit else None) or KAFKA_DEFAULT_MAX_MESSAGE_BYTES)
    except ValueError:
        max_bytes = KAFKA_DEFAULT_MAX_MESSAGE_BYTES
    value = text.strip(" \t\r\n").encode("utf-8")
    key_bytes = key.encode("utf-8") if key is not None else None
    size = len(value) + len(key_bytes or b"") + BATCH_OVERHEAD
    if contract is not None and contract.max_record_bytes is not None:
        record = len(value) + len(key_bytes or b"")
        if record > contract.max_record_bytes:
            raise MessageInvalid(
                f"the record is {record:,} bytes (value and key), more than topic {topic}'s contract allows "
                f"(max_record_bytes {contract.max_record_bytes:,}); {NOTHING}"
            )
    if size > max_bytes:
        raise MessageInvalid(
            f"the message is {size:,} bytes as a record batch (value {len(value):,} + key {len(key_bytes or b''):,} + {BATCH_OVERHEAD} overhead), "
            f"over topic {topic}'s max.message.bytes of {max_bytes:,}; nothing was produced"
        )
    partition, offset = gw.produce_one(
        topic,
        value,
        key_bytes,
        timeout_s=timeout_s,
        max_request_size=max(max_bytes, size) + 1024,
    )
    return Produced(topic, partition, offset, key, source, size, max_bytes)


# Not a test: pytest must not collect the service function of that name.
test_produce.__test__ = False  # type: ignore[attr-defined]
