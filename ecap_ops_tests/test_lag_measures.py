"""The one lag formula and lag in seconds (core/lag_measures.py). Pure: no broker."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecap_ops.core.lag_measures import (
    describe_lag,
    format_seconds_short,
    lag_seconds,
    partition_lag,
)

offsets = st.integers(min_value=0, max_value=10**15)


@pytest.mark.parametrize(
    "committed,start,end,expected",
    [
        (5, 0, 30, (5, 25, 0)),
        (5, 20, 30, (20, 10, 15)),  # retention deleted 15 records the group never read
        (30, 0, 30, (30, 0, 0)),
        (40, 0, 30, (40, 0, 0)),  # committed past the end (truncated log): no negative lag
        (5, None, 30, (5, 25, 0)),  # log start unknown: nothing counted as lost
        (0, 30, 30, (30, 0, 30)),  # everything deleted unread
    ],
)
def test_partition_lag(committed, start, end, expected):
    assert tuple(partition_lag(committed, start, end)) == expected


@settings(max_examples=200, deadline=None)
@given(committed=offsets, start=st.none() | offsets, end=offsets)
def test_partition_lag_is_the_design_notes_formula(committed, start, end):
    position, lag, lost = partition_lag(committed, start, end)
    ls = start or 0
    assert lag == max(0, end - max(committed, ls))
    assert lost == (max(0, ls - committed) if start is not None else 0)
    assert position == max(committed, ls) and lag >= 0 and lost >= 0
    # Never more than the simple `end - committed` when nothing was deleted unread.
    if lost == 0:
        assert lag == max(0, end - committed)


@settings(max_examples=200, deadline=None)
@given(
    samples=st.lists(st.tuples(st.floats(0, 1e6), st.integers(0, 10**6)), min_size=0, max_size=20),
    position=st.integers(0, 10**6),
    extra=st.integers(0, 10**6),
    now=st.floats(0, 2e6),
)
def test_lag_seconds_never_negative_and_kind_known(samples, position, extra, now):
    s = sorted([[t, e] for t, e in samples])
    ends = sorted(e for _, e in s)
    s = [[t, e] for (t, _), e in zip(s, ends, strict=True)]  # end offsets never decrease
    secs, kind = lag_seconds(s, position, position + extra, now)
    assert kind in ("exact", "interpolated", "extrapolated", "at_least", "unknown")
    assert (secs is None) == (kind == "unknown")
    assert secs is None or secs >= 0
    if extra == 0:
        assert (secs, kind) == (0.0, "exact")


def test_formatting():
    assert format_seconds_short(None) == "-"
    assert format_seconds_short(5.25) == "5.2s" or format_seconds_short(5.25) == "5.3s"
    assert format_seconds_short(185) == "3m05s"
    assert format_seconds_short(2 * 3600 + 240) == "2h04m"
    assert format_seconds_short(3 * 86400 + 4 * 3600) == "3d04h"
    assert describe_lag(12400, 185, "extrapolated") == "12,400 msgs / ~3m05s"
    assert describe_lag(1, 10, "at_least") == "1 msgs / >=10s"
    assert describe_lag(0, None) == "0 msgs / -"
