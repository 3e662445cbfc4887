"""Human units for durations and sizes, both ways, and how to show a value in a message."""

import re
from fractions import Fraction

_DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_SIZE_B = {
    "b": 1,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
}
_NUM_UNIT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", re.ASCII)
INFINITE = ("infinite", "forever", "-1")
# Kafka's LONG: durations in ms and sizes in bytes never exceed it.
INT64_MAX = 2**63 - 1
# Longer number text than this is no duration or size anyone means.
_MAX_NUMBER_CHARS = 40
SHOW_CHARS = 40


def show(value: object, limit: int = SHOW_CHARS) -> str:
    """`repr(value)` for a message, cut to its first `limit` characters and `...`, so a
    huge value is never echoed back whole."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _number_with_unit(value: str, units: dict[str, int], default: str | None) -> Fraction | None:
    """`1.5h`-style text in the smallest unit, exactly; None when it does not read."""
    if len(value) > 2 * _MAX_NUMBER_CHARS:
        return None
    m = _NUM_UNIT.fullmatch(value)
    if not m or len(m.group(1)) > _MAX_NUMBER_CHARS:
        return None
    unit = m.group(2).lower() or default
    if unit not in units:
        return None
    return Fraction(m.group(1)) * units[unit]


def _check_range(n: int, what: str, value: object) -> int:
    if n < -1:
        unlimited = "infinite" if what == "duration" else "unlimited"
        raise ValueError(f"a {what} must be >= 0 (or -1 for {unlimited}), got {show(n)}")
    if n > INT64_MAX:
        raise ValueError(f"{what} {show(value)} is too large: Kafka's limit is {INT64_MAX}")
    return n


def parse_duration_ms(value: object) -> int:
    """`7d` -> 604800000; an int is taken as milliseconds; `infinite` / -1 -> -1."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 7d, 12h or 30m, got {show(value)}")
    if isinstance(value, int):
        return _check_range(value, "duration", value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 7d, 12h or 30m, got {show(value)}")
    if len(value) < 20 and value.strip().lower() in INFINITE:
        return -1
    ms = _number_with_unit(value, _DURATION_MS, None)
    if ms is None:
        raise ValueError(
            f"cannot read duration {show(value)}: use a number with ms, s, m, h, d or w (e.g. 7d), or 'infinite'"
        )
    if ms.denominator != 1:
        raise ValueError(f"duration {show(value)} is not a whole number of milliseconds")
    return _check_range(int(ms), "duration", value)


def parse_size_bytes(value: object) -> int:
    """`1MiB` -> 1048576, `1MB` -> 1000000; an int is taken as bytes; `infinite` / -1 -> -1."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 1MiB or 512KiB, got {show(value)}")
    if isinstance(value, int):
        return _check_range(value, "size", value)
    if not isinstance(value, str):
        raise ValueError(f"expected a size such as 1MiB or 512KiB, got {show(value)}")
    if len(value) < 20 and value.strip().lower() in INFINITE:
        return -1
    n = _number_with_unit(value, _SIZE_B, "b")
    if n is None:
        raise ValueError(
            f"cannot read size {show(value)}: use a number with B, KiB, MiB, GiB (binary) or kB, MB, GB (decimal)"
        )
    if n.denominator != 1:
        raise ValueError(f"size {show(value)} is not a whole number of bytes")
    return _check_range(int(n), "size", value)


def format_duration_ms(ms: int | None) -> str:
    """604800000 -> `7d`; 90061000 -> `1d 1h 1m 1s`; -1 -> `infinite`."""
    if ms is None:
        return "-"
    if ms < 0:
        return "infinite"
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    parts = []
    rest = ms // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    if ms % 1000:
        parts.append(f"{ms % 1000}ms")
    return " ".join(parts)


def format_seconds(seconds: float | None) -> str:
    """Lag-style seconds: `3m 05s`, `45s`, `2h 10m`."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {(s % 3600) // 60:02d}m"
    return f"{s // 86400}d {(s % 86400) // 3600:02d}h"


def format_size(n: int | None) -> str:
    """1048576 -> `1 MiB`; -1 -> `unlimited`."""
    if n is None:
        return "-"
    if n < 0:
        return "unlimited"
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{n} B"
