"""Kafka's topic-level configuration keys (Kafka 4.x) and how to check their values.

Used to reject unknown or misspelt keys and badly typed values before anything is sent to
a broker; the broker's validate-only requests then check the rest.
"""

import math

from ecap_ops.catalog.units import show

# key -> (type, allowed values or None). Types: long, int, double, boolean, string, list.
TOPIC_CONFIGS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "cleanup.policy": ("list", ("compact", "delete")),
    "compression.type": ("string", ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")),
    "compression.gzip.level": ("int", None),
    "compression.lz4.level": ("int", None),
    "compression.zstd.level": ("int", None),
    "delete.retention.ms": ("long", None),
    "file.delete.delay.ms": ("long", None),
    "flush.messages": ("long", None),
    "flush.ms": ("long", None),
    "follower.replication.throttled.replicas": ("list", None),
    "index.interval.bytes": ("int", None),
    "leader.replication.throttled.replicas": ("list", None),
    "local.retention.bytes": ("long", None),
    "local.retention.ms": ("long", None),
    "max.compaction.lag.ms": ("long", None),
    "max.message.bytes": ("int", None),
    "message.timestamp.after.max.ms": ("long", None),
    "message.timestamp.before.max.ms": ("long", None),
    "message.timestamp.type": ("string", ("CreateTime", "LogAppendTime")),
    "min.cleanable.dirty.ratio": ("double", None),
    "min.compaction.lag.ms": ("long", None),
    "min.insync.replicas": ("int", None),
    "preallocate": ("boolean", None),
    "remote.storage.enable": ("boolean", None),
    "remote.log.copy.disable": ("boolean", None),
    "remote.log.delete.on.disable": ("boolean", None),
    "retention.bytes": ("long", None),
    "retention.ms": ("long", None),
    "segment.bytes": ("int", None),
    "segment.index.bytes": ("int", None),
    "segment.jitter.ms": ("long", None),
    "segment.ms": ("long", None),
    "unclean.leader.election.enable": ("boolean", None),
}

# Values that may be -1 (infinite / unlimited).
MINUS_ONE_OK = {"retention.ms", "retention.bytes", "local.retention.ms", "local.retention.bytes"}

# The largest value of each of Kafka's whole-number types.
KAFKA_INT_MAX = {"int": 2**31 - 1, "long": 2**63 - 1}
# Longer text than this is no number Kafka can hold (int64 has 19 digits).
_MAX_NUMBER_CHARS = 40


def _whole_number(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected a whole number, got {show(value)}")
    if isinstance(value, int):
        return value
    text = value.strip()
    if not text or len(text) > _MAX_NUMBER_CHARS or not text.lstrip("+-").isascii():
        raise ValueError(f"expected a whole number, got {show(value)}")
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected a whole number, got {show(value)}") from None


def normalize_config_value(key: str, value: object) -> str:
    """Check a raw config value against its key's type; return it as Kafka's string form."""
    kind, allowed = TOPIC_CONFIGS[key]
    if kind in ("long", "int"):
        n = _whole_number(value)
        lowest = -1 if key in MINUS_ONE_OK else 0
        if n < lowest:
            raise ValueError(f"must be >= {lowest}, got {show(n)}")
        if n > KAFKA_INT_MAX[kind]:
            bits = 32 if kind == "int" else 64
            raise ValueError(
                f"must fit in a {bits}-bit int (at most {KAFKA_INT_MAX[kind]}), got {show(n)}"
            )
        return str(n)
    if kind == "double":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"expected a number, got {show(value)}")
        try:
            f = float(value) if not isinstance(value, str) or len(value) <= 64 else math.nan
        except (OverflowError, ValueError):
            f = math.nan
        if not math.isfinite(f):
            raise ValueError(f"expected a finite number, got {show(value)}")
        if not 0 <= f <= 1 and key == "min.cleanable.dirty.ratio":
            raise ValueError(f"must be between 0 and 1, got {f}")
        return repr(f) if not f.is_integer() else str(f)
    if kind == "boolean":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower()
        raise ValueError(f"expected true or false, got {show(value)}")
    if kind == "list":
        if isinstance(value, list):
            if any(isinstance(i, (list, dict)) or i is None for i in value):
                raise ValueError(f"expected a list of names, got {show(value)}")
            items = value
        elif isinstance(value, (str, int)) and not isinstance(value, bool):
            items = str(value).split(",")
        else:
            raise ValueError(f"expected a name or a list of names, got {show(value)}")
        items = [str(i).strip() for i in items if str(i).strip()]
        if allowed:
            bad = [i for i in items if i not in allowed]
            if bad:
                raise ValueError(f"{show(', '.join(bad))} not allowed; use {', '.join(allowed)}")
            if not items:
                raise ValueError(f"must name at least one of {', '.join(allowed)}")
        # Kafka reports cleanup.policy in the order it was written; keep a canonical one.
        return ",".join(sorted(items)) if key == "cleanup.policy" else ",".join(items)
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValueError(f"expected text, got {show(value)}")
    s = str(value)
    if allowed and s not in allowed:
        raise ValueError(f"{show(s)} not allowed; use one of {', '.join(allowed)}")
    return s


def canonical_value(key: str, value: str | None) -> str | None:
    """Kafka's reported value in the form the catalog writes, for comparison."""
    if value is None:
        return None
    if key == "cleanup.policy":
        return ",".join(sorted(p.strip() for p in value.split(",") if p.strip()))
    if key in TOPIC_CONFIGS and TOPIC_CONFIGS[key][0] == "double":
        try:
            f = float(value)
            return repr(f) if not f.is_integer() else str(f)
        except ValueError:
            return value
    return value
