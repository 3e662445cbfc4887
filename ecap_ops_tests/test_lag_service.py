"""services/lag.py without a broker: one-look statuses, the sensor cursor read and written."""

from ecap_ops.catalog import load_catalog
from ecap_ops.core.lag import (
    GroupObservation,
    Observation,
    PartitionOffsets,
    Window,
    evaluate,
)
from ecap_ops.services.lag import (
    catalog_thresholds,
    is_critical,
    one_look,
    read_cursor,
    write_cursor,
)


def _empty_group_far_behind(topic: str) -> Observation:
    tp = (topic, 0)
    g = {"g": GroupObservation("g", "Empty", 0, {tp: 0}, frozenset(), ())}
    return Observation(
        "c1", 100.0, {tp: PartitionOffsets(0, 10**7, None)}, frozenset({topic}), g, frozenset(g)
    )


def test_one_look_shows_a_stopped_group_that_debouncing_holds_back():
    catalog = load_catalog()
    topic = catalog.topics[0].name
    ev = evaluate(None, _empty_group_far_behind(topic), catalog_thresholds(catalog))
    (s,) = ev.statuses
    # Judged over ticks, one tick is not enough to count (debouncing) ...
    assert (s.raw_status, s.status, s.severity) == ("STOPPED", "OK", "ok")
    assert not is_critical(ev.statuses)
    # ... but one look says what it saw.
    (o,) = one_look(ev.statuses, catalog)
    assert (o.status, o.severity, o.raw_status) == ("STOPPED", "critical", "STOPPED")
    assert is_critical([o]) and o.lag_msgs == s.lag_msgs


def test_cursor_read_and_written():
    catalog = load_catalog()
    ev = evaluate(
        None, _empty_group_far_behind(catalog.topics[0].name), catalog_thresholds(catalog)
    )
    cursor, trimmed = write_cursor(ev.window)
    window, why = read_cursor(cursor)
    assert isinstance(window, Window) and window == ev.window and why is None and not trimmed
    assert read_cursor(None) == (None, None)
    window, why = read_cursor("lagv9:whatever")
    assert window is None and "another version" in why
