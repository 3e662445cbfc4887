"""`test-produce`: send one JSON message to a topic, checked before anything is sent.

The message must be valid JSON; the key is `--key`, or else the value of the catalog's
partition-key field in the message (`user_id` for transactions, ...), so the message lands
where the platform's producers would put it; a message larger than the topic's
max.message.bytes is refused. Nothing is produced unless every check passes.
"""

import json
from dataclasses import dataclass

from ecap_ops.catalog.model import Catalog
from ecap_ops.errors import EcapOpsError
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.errors import translate

# Bytes a one-record batch adds around the key and value: the v2 batch header (61) and the
# record's own attributes, timestamp and offset deltas and length varints (at most 21).
BATCH_OVERHEAD = 82
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1048588


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


def parse_message(text: str) -> object:
    """The message as JSON, or MessageInvalid saying where it breaks."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MessageInvalid(
            f"the message is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} (character {exc.pos}); nothing was produced"
        ) from None


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
    return value if isinstance(value, str) else json.dumps(value)


def test_produce(
    gw: KafkaGateway,
    catalog: Catalog,
    topic: str,
    text: str,
    key: str | None = None,
    timeout_s: float = 10.0,
) -> Produced:
    """Validate, then produce one message (acks=all); returns where it landed."""
    from kafka import KafkaProducer

    message = parse_message(text)
    meta = gw.describe_topics([topic]).get(topic)
    if meta is None:
        raise MessageInvalid(f"topic {topic!r} does not exist on the cluster; nothing was produced")
    spec = catalog.get(topic)
    spec = spec if spec is not None and spec.name == topic else None
    if key is not None:
        source = "--key"
    elif spec is not None and spec.partition_key:
        key = key_for(message, spec.partition_key, topic)
        source = spec.partition_key
    else:
        source = "none"
    configs = gw.all_topic_configs([topic]).get(topic, {})
    try:
        max_bytes = int(
            (configs.get("max.message.bytes") or {}).get("value") or KAFKA_DEFAULT_MAX_MESSAGE_BYTES
        )
    except ValueError:
        max_bytes = KAFKA_DEFAULT_MAX_MESSAGE_BYTES
    value = text.strip().encode("utf-8")
    key_bytes = key.encode("utf-8") if key is not None else None
    size = len(value) + len(key_bytes or b"") + BATCH_OVERHEAD
    if size > max_bytes:
        raise MessageInvalid(
            f"the message is {size:,} bytes as a record batch (value {len(value):,} + key {len(key_bytes or b''):,} + {BATCH_OVERHEAD} overhead), "
            f"over topic {topic}'s max.message.bytes of {max_bytes:,}; nothing was produced"
        )
    kw = gw.settings.client_kwargs()
    producer = None
    with translate(gw.settings, f"producing to {topic}"):
        try:
            producer = KafkaProducer(
                acks="all",
                max_request_size=max(max_bytes, size) + 1024,
                max_block_ms=int(timeout_s * 1000),
                **kw,
            )
            md = producer.send(topic, value=value, key=key_bytes).get(timeout=timeout_s)
        finally:
            if producer is not None:
                producer.close(timeout=2)
    return Produced(topic, md.partition, md.offset, key, source, size, max_bytes)


# Not a test: pytest must not collect the service function of that name.
test_produce.__test__ = False  # type: ignore[attr-defined]
