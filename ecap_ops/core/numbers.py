"""Measured numbers as people read them, and as the Dagster UI plots them.

A measurement such as 120.18270182609558 s is shown as 120.2: seconds to 0.1 s,
milliseconds to 0.1 ms, percentages to 0.1 %. Counts (messages, partitions, brokers) are
whole numbers and are never rounded. This is the one rounding rule for figures that leave
ecap-ops as numbers (asset metadata, plots); text uses `catalog.units.format_seconds` and
`core.lag.format_seconds_short`.
"""

import math

# Decimals kept for a measured figure unless a caller asks for fewer.
FIGURE_DECIMALS = 1


def round_for_people(value: float | int | None, decimals: int = FIGURE_DECIMALS) -> float | None:
    """`value` rounded to `decimals` decimals (0: a whole number, still a float), or None
    when it is not a finite number (None, NaN, infinity, a bool or a non-number): a figure
    that is not known is left out, never shown as 0. Never -0.0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    if not math.isfinite(v):
        return None
    shown = round(v, max(0, decimals))
    return 0.0 if shown == 0 else shown


def whole(value: float | int | None) -> int | None:
    """A count as an int (rounded half to even), or None when it is not a finite number."""
    shown = round_for_people(value, 0)
    return None if shown is None else int(shown)


def decimals_of(value: float) -> int:
    """How many decimals `value` shows when printed the shortest way (repr); 0 for whole
    numbers. For checking figures: `decimals_of(round_for_people(x)) <= 1`."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        mantissa, exp = text.lower().split("e")
        digits = len(mantissa.split(".")[1].rstrip("0")) if "." in mantissa else 0
        return max(0, digits - int(exp))
    fraction = text.split(".")[1] if "." in text else ""
    return len(fraction.rstrip("0"))
