"""Which topics MirrorMaker 2 replicates to the DR standby, read from the catalog's `mirror:`
section beside `topics:`. Pure.

    mirror:
      topics: [transactions, fraud-alerts]   # catalog topics (keys), replicated under the same names
      checkpoint_interval: 60s               # MM2 emit.checkpoints.interval.seconds
      refresh_interval: 60s                  # MM2 refresh.topics/groups.interval.seconds
      offset_lag_max: 100                    # MM2 offset.lag.max: the most a failover re-reads
      lag:                                   # replication-lag alert levels per topic
        warning_records: 1000
        critical_records: 100000
        warning_seconds: 60s
        critical_seconds: 10m

Which clusters replicate (source and target) is the deployment's business, not the
catalog's: the clusters file's primary and standby (`ecap_ops.clusters`), or the command's
`--from/--to`. Every problem is reported with its YAML path, all at once.
"""

from dataclasses import dataclass, field
from typing import Any

from ecap_ops.catalog.units import parse_duration_ms, show

MIRROR_TOP_KEYS = {"mirror"}
SECTION_KEYS = {"topics", "checkpoint_interval", "refresh_interval", "offset_lag_max", "lag"}
LAG_KEYS = {"warning_records", "critical_records", "warning_seconds", "critical_seconds"}
MAX_INTERVAL_S = 24 * 3600
MAX_OFFSET_LAG = 1_000_000


@dataclass(frozen=True)
class MirrorLag:
    """Replication-lag levels of one topic: WARN at or above the warning figure, CRIT at or
    above the critical one (records behind, or seconds since the oldest record not yet on
    the standby was written)."""

    warning_records: int = 1000
    critical_records: int = 100_000
    warning_seconds: float = 60.0
    critical_seconds: float = 600.0


@dataclass(frozen=True)
class MirrorSpec:
    """The catalog's `mirror:` section: the topics (catalog keys, in catalog order)."""

    topics: tuple[str, ...] = ()
    checkpoint_interval_s: int = 60
    refresh_interval_s: int = 60
    offset_lag_max: int = 100
    lag: MirrorLag = field(default_factory=MirrorLag)

    @property
    def declared(self) -> bool:
        return bool(self.topics)


EMPTY = MirrorSpec()


def mirror_of(catalog: Any) -> MirrorSpec:
    """The mirror section the loader attached to a catalog (none on one built by hand)."""
    return getattr(catalog, "mirror", None) or EMPTY


def attach_mirror(catalog: Any, spec: MirrorSpec) -> Any:
    """`catalog` with its mirror section (Catalog is frozen; the section rides beside it)."""
    object.__setattr__(catalog, "mirror", spec)
    return catalog


def mirrored_names(catalog: Any) -> list[str]:
    """The cluster names of the mirrored topics in this catalog's environment."""
    spec = mirror_of(catalog)
    out = []
    for key in spec.topics:
        t = catalog.get(key)
        if t is not None:
            out.append(t.name)
    return out


def _seconds(errors: Any, path: str, raw: Any, default: int, least: int = 1) -> int:
    if raw is None:
        return default
    try:
        ms = parse_duration_ms(raw)
    except ValueError as exc:
        errors.add(path, str(exc))
        return default
    s = ms // 1000
    if ms < 0 or s < least or s > MAX_INTERVAL_S:
        errors.add(path, f"must be between {least}s and 24h, got {show(raw)}")
        return default
    return int(s)


def _count(errors: Any, path: str, raw: Any, default: int, least: int = 0) -> int:
    if raw is None:
        return default
    if type(raw) is not int or raw < least or raw > 10**12:
        errors.add(path, f"must be a whole number >= {least}, got {show(raw)}")
        return default
    return raw


def build_mirror(errors: Any, data: dict, topics: list) -> MirrorSpec:
    """The `mirror:` section checked against the catalog's topics; problems noted in `errors`."""
    raw = data.get("mirror")
    if raw is None:
        return EMPTY
    if not isinstance(raw, dict):
        errors.add("mirror", f"must be a mapping with `topics:`, got {show(raw)}")
        return EMPTY
    errors.unknown_keys("mirror", raw, SECTION_KEYS)
    names = raw.get("topics")
    keys = {t.key for t in topics} | {t.name for t in topics}
    chosen: list[str] = []
    if not isinstance(names, list) or not names:
        errors.add("mirror.topics", "must be a non-empty list of catalog topic names")
        names = []
    for i, n in enumerate(names):
        if not isinstance(n, str) or n not in keys:
            errors.add(
                f"mirror.topics[{i}]",
                f"{show(n)} is not a topic of the catalog; mirror only catalog topics",
            )
        elif n in chosen:
            errors.add(f"mirror.topics[{i}]", f"{show(n)} is listed twice")
        else:
            chosen.append(n)
    by_key = {t.key: t.key for t in topics} | {t.name: t.key for t in topics}
    ordered = tuple(t.key for t in topics if t.key in {by_key[c] for c in chosen})
    lag_raw = raw.get("lag")
    lag = MirrorLag()
    if lag_raw is not None:
        if not isinstance(lag_raw, dict):
            errors.add("mirror.lag", f"must be a mapping, got {show(lag_raw)}")
        else:
            errors.unknown_keys("mirror.lag", lag_raw, LAG_KEYS)
            d = MirrorLag()
            wr = _count(
                errors,
                "mirror.lag.warning_records",
                lag_raw.get("warning_records"),
                d.warning_records,
                1,
            )
            cr = _count(
                errors,
                "mirror.lag.critical_records",
                lag_raw.get("critical_records"),
                d.critical_records,
                1,
            )
            ws = _seconds(
                errors,
                "mirror.lag.warning_seconds",
                lag_raw.get("warning_seconds"),
                int(d.warning_seconds),
            )
            cs = _seconds(
                errors,
                "mirror.lag.critical_seconds",
                lag_raw.get("critical_seconds"),
                int(d.critical_seconds),
            )
            if cr < wr:
                errors.add(
                    "mirror.lag.critical_records", f"must be >= warning_records ({wr}), got {cr}"
                )
            if cs < ws:
                errors.add(
                    "mirror.lag.critical_seconds", f"must be >= warning_seconds ({ws}s), got {cs}s"
                )
            lag = MirrorLag(wr, cr, float(ws), float(cs))
    return MirrorSpec(
        topics=ordered,
        checkpoint_interval_s=_seconds(
            errors, "mirror.checkpoint_interval", raw.get("checkpoint_interval"), 60
        ),
        refresh_interval_s=_seconds(
            errors, "mirror.refresh_interval", raw.get("refresh_interval"), 60
        ),
        offset_lag_max=_count(errors, "mirror.offset_lag_max", raw.get("offset_lag_max"), 100, 0),
        lag=lag,
    )
