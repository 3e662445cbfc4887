"""The lag window kept between sensor ticks: typed records, the version-1 cursor they are
written as, cursors written by earlier releases, and hostile cursors. Pure: no broker."""

import base64
import json
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecap_ops.catalog.model import LagThresholds
from ecap_ops.core.lag import (
    CursorInvalid,
    GroupObservation,
    Observation,
    PartitionOffsets,
    evaluate,
)
from ecap_ops.core.lag_window import (
    CURSOR_PREFIX,
    GroupWindow,
    Incident,
    PartitionState,
    TopicWindow,
    Window,
    decode_window,
    encode_window,
    new_window,
    open_incidents,
)

TH = LagThresholds(warn_seconds=60, crit_seconds=300, warn_msgs=100, stall_after_seconds=30)

# Written by the release before the window had types (core/lag.py with dict windows), after
# four ticks of an empty group falling behind: a STOPPED incident is open.
OLD_CURSOR = (
    "lagv1:eJxVULtqxDAQ/JetN4f8SIhV5+ocXDrjQpGFY9DJiiVfisP/nlmbGNKIYTWPnX2Q9UvKbiZNtiAmF/pE+k"
    "FZHkW6bQvFpVIdt6XiegOV4pcN1IpfAbp1hTBO9os02DTM0xI3l0GeG8bUm6oxlXPPDiHxX4JiiNRmMn+SDov3gtIfzA"
    "fbemcCaUSMwcpg7GHtzaBtgeQnKeBNAhe70s6coguu3yfxRhoLA8C8Vieg5O5SfR7zaI2HPmWTF3zT9eP9cjm/0Sqeg1"
    "wC7bloTg2aoz+XOxRD8eo6bG1+QDykfCC0k37JfeNETMgs1l/CSmlY"
)
OLD_WIRE = {
    "cluster": "c1",
    "ends": {"t": {"0": [[10, 200], [20, 400], [30, 600], [40, 800]]}},
    "epoch": 10,
    "groups": {
        "g": {
            "mh": "da39a3ee5e",
            "p": {"t": {"0": [0, 10, 0]}},
            "rb": None,
            "rbs": None,
            "t": {
                "t": {
                    "clean": 0,
                    "inc": {
                        "id": "lag:c1:10-1",
                        "last": 20,
                        "n": 0,
                        "opened": 20,
                        "pm": 800,
                        "ps": 40.0,
                        "sev": "critical",
                        "status": "STOPPED",
                    },
                    "lag": [[400, 19.9], [600, 29.9], [800, 40.0]],
                    "raw": ["STOPPED", "STOPPED"],
                }
            },
        }
    },
    "seq": 1,
    "v": 1,
}


def _obs(at, end, committed):
    tp = ("t", 0)
    g = {"g": GroupObservation("g", "Empty", 0, {tp: committed}, frozenset(), ())}
    return Observation(
        "c1", at, {tp: PartitionOffsets(0, end, None)}, frozenset({"t"}), g, frozenset(g)
    )


def test_a_cursor_of_the_earlier_release_is_read_and_carries_on():
    w = decode_window(OLD_CURSOR)
    assert isinstance(w, Window)
    assert json.loads(json.dumps(w.to_wire())) == OLD_WIRE
    inc = w.groups["g"].topics["t"].incident
    assert (inc.id, inc.status, inc.severity, inc.peak_msgs) == (
        "lag:c1:10-1",
        "STOPPED",
        "critical",
        800,
    )
    assert w.groups["g"].partitions["t"]["0"] == PartitionState(0, 10, 0)
    ev = evaluate(w, _obs(50, 1000, 0), lambda t: TH)
    assert not [e for e in ev.events if e.kind == "open"]  # the same incident, not a new one
    assert ev.statuses[0].incident_id == "lag:c1:10-1" and ev.statuses[0].status == "STOPPED"
    # Written again, it is the same version: an earlier release could read it back.
    assert encode_window(ev.window)[0].startswith("lagv1:")


def test_round_trip_of_evaluated_windows():
    w = None
    for i in range(1, 8):
        w = evaluate(w, _obs(10 * i, 200 * i, 0 if i < 5 else 200 * i), lambda t: TH).window
        cursor, trimmed = encode_window(w)
        assert not trimmed and decode_window(cursor) == w
        assert encode_window(w.to_wire())[0] == cursor  # the wire data encodes the same


def test_open_incidents_and_new_window():
    w = decode_window(OLD_CURSOR)
    assert open_incidents(w) == [
        {
            "group": "g",
            "topic": "t",
            "id": "lag:c1:10-1",
            "status": "STOPPED",
            "severity": "critical",
            "since": 20,
        }
    ]
    assert open_incidents(None) == [] and new_window("c", 12.3456).epoch == 12.346
    gw = GroupWindow(topics={"t": TopicWindow(incident=Incident("i", 1, "warning", "LAGGING", 1))})
    assert gw.has_open_incident() and not GroupWindow().has_open_incident()


def _cursor_of(data) -> str:
    raw = json.dumps(data).encode()
    return CURSOR_PREFIX + base64.b64encode(zlib.compress(raw)).decode()


@pytest.mark.parametrize(
    "bad",
    [
        {**OLD_WIRE, "v": 2},
        {**OLD_WIRE, "groups": {"g": {"p": {"t": {"0": "x"}}}}},
        {**OLD_WIRE, "groups": {"g": {"t": {"t": {"inc": {"id": 3}}}}}},
        {**OLD_WIRE, "ends": {"t": {"0": [[1]]}}},
        {**OLD_WIRE, "ends": {"t": {"0": [["a", 2]]}}},
        {**OLD_WIRE, "groups": {"g": {"mh": 5}}},
        {**OLD_WIRE, "groups": {"g": {"t": {"t": {"raw": ["NOPE"]}}}}},
        {
            **OLD_WIRE,
            "groups": {
                "g": {"t": {"t": {"inc": {**OLD_WIRE["groups"]["g"]["t"]["t"]["inc"], "sev": "x"}}}}
            },
        },
        {**OLD_WIRE, "groups": {"g": {"t": {"t": {"lag": [[True, None]]}}}}},
        [1, 2],
        "text",
    ],
)
def test_malformed_windows_are_refused_with_a_reason(bad):
    with pytest.raises(CursorInvalid) as e:
        decode_window(_cursor_of(bad))
    assert "cursor" in str(e.value) and len(str(e.value)) < 300


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(
    groups=st.dictionaries(st.text(max_size=5), _json, max_size=3),
    ends=st.dictionaries(st.text(max_size=5), _json, max_size=3),
)
def test_hostile_window_data_is_a_window_or_refused(groups, ends):
    data = {"v": 1, "cluster": "c", "epoch": 0, "seq": 0, "ends": ends, "groups": groups}
    try:
        w = decode_window(_cursor_of(data))
    except CursorInvalid as exc:
        assert str(exc).startswith("cursor")
        return
    assert isinstance(w, Window)
    # What was read is usable: evaluating a tick on it does not fail.
    evaluate(w, _obs(100, 10, 0), lambda t: TH)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: "lagv1:" + b.hex()))
def test_hostile_cursor_text_is_refused_or_none(text):
    try:
        w = decode_window(text)
    except CursorInvalid:
        return
    assert w is None and not text
