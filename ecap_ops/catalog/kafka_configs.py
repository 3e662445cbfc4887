"""Kafka's topic-level configuration keys (Kafka 4.x) and how to check their values.

Used to reject unknown or misspelt keys and badly typed values before anything is sent to
a broker; the broker's validate-only requests then check the rest.
"""

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


def normalize_config_value(key: str, value: object) -> str:
    """Check a raw config value against its key's type; return it as Kafka's string form."""
    kind, allowed = TOPIC_CONFIGS[key]
    if kind in ("long", "int"):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"expected a whole number, got {value!r}")
        try:
            n = int(value)
        except ValueError:
            raise ValueError(f"expected a whole number, got {value!r}") from None
        lowest = -1 if key in MINUS_ONE_OK else 0
        if n < lowest:
            raise ValueError(f"must be >= {lowest}, got {n}")
        if kind == "int" and n > 2**31 - 1:
            raise ValueError(f"must fit in a 32-bit int, got {n}")
        return str(n)
    if kind == "double":
        try:
            f = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
        if not 0 <= f <= 1 and key == "min.cleanable.dirty.ratio":
            raise ValueError(f"must be between 0 and 1, got {f}")
        return repr(f) if not f.is_integer() else str(f)
    if kind == "boolean":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower()
        raise ValueError(f"expected true or false, got {value!r}")
    if kind == "list":
        items = value if isinstance(value, list) else str(value).split(",")
        items = [str(i).strip() for i in items if str(i).strip()]
        if allowed:
            bad = [i for i in items if i not in allowed]
            if bad:
                raise ValueError(f"{', '.join(bad)} not allowed; use {', '.join(allowed)}")
            if not items:
                raise ValueError(f"must name at least one of {', '.join(allowed)}")
        # Kafka reports cleanup.policy in the order it was written; keep a canonical one.
        return ",".join(sorted(items)) if key == "cleanup.policy" else ",".join(items)
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValueError(f"expected text, got {value!r}")
    s = str(value)
    if allowed and s not in allowed:
        raise ValueError(f"{s!r} not allowed; use one of {', '.join(allowed)}")
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
