"""Human units for durations and sizes, both ways."""

import re

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
_NUM_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
INFINITE = ("infinite", "forever", "-1")


def parse_duration_ms(value: object) -> int:
    """`7d` -> 604800000; an int is taken as milliseconds; `infinite` / -1 -> -1."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 7d, 12h or 30m, got {value!r}")
    if isinstance(value, int):
        if value < -1:
            raise ValueError(f"a duration must be >= 0 (or -1 for infinite), got {value}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 7d, 12h or 30m, got {value!r}")
    if value.strip().lower() in INFINITE:
        return -1
    m = _NUM_UNIT.match(value)
    if not m or m.group(2).lower() not in _DURATION_MS:
        raise ValueError(
            f"cannot read duration {value!r}: use a number with ms, s, m, h, d or w (e.g. 7d), or 'infinite'"
        )
    ms = float(m.group(1)) * _DURATION_MS[m.group(2).lower()]
    if ms != int(ms):
        raise ValueError(f"duration {value!r} is not a whole number of milliseconds")
    return int(ms)


def parse_size_bytes(value: object) -> int:
    """`1MiB` -> 1048576, `1MB` -> 1000000; an int is taken as bytes; `infinite` / -1 -> -1."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 1MiB or 512KiB, got {value!r}")
    if isinstance(value, int):
        if value < -1:
            raise ValueError(f"a size must be >= 0 (or -1 for unlimited), got {value}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a size such as 1MiB or 512KiB, got {value!r}")
    if value.strip().lower() in INFINITE:
        return -1
    m = _NUM_UNIT.match(value)
    unit = (m.group(2) or "b").lower() if m else ""
    if not m or unit not in _SIZE_B:
        raise ValueError(
            f"cannot read size {value!r}: use a number with B, KiB, MiB, GiB (binary) or kB, MB, GB (decimal)"
        )
    n = float(m.group(1)) * _SIZE_B[unit]
    if n != int(n):
        raise ValueError(f"size {value!r} is not a whole number of bytes")
    return int(n)


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
