"""The lag window kept between sensor ticks: typed records, the version-2 cursor they are
written as, version-1 cursors written by earlier releases, and hostile cursors. Pure: no
broker."""

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
from ecap_ops.core.lag_status import SEVERITY_RANK, STATUS_ORDER
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


# OLD_CURSOR's window, typed: what reading it must give.
OLD_WINDOW = Window(
    "c1",
    10,
    1,
    {"t": {"0": [[10, 200], [20, 400], [30, 600], [40, 800]]}},
    {
        "g": GroupWindow(
            "da39a3ee5e",
            None,
            None,
            {"t": {"0": PartitionState(0, 10, 0)}},
            {
                "t": TopicWindow(
                    ["STOPPED", "STOPPED"],
                    [[400, 19.9], [600, 29.9], [800, 40.0]],
                    Incident("lag:c1:10-1", 20, "critical", "STOPPED", 20, 0, 800, 40.0),
                    0,
                )
            },
        )
    },
)


def test_a_cursor_of_the_earlier_release_is_read_and_carries_on():
    assert json.loads(zlib.decompress(base64.b64decode(OLD_CURSOR[6:]))) == OLD_WIRE
    w = decode_window(OLD_CURSOR)
    assert w == OLD_WINDOW
    assert open_incidents(w)[0]["id"] == "lag:c1:10-1"
    ev = evaluate(w, _obs(50, 1000, 0), lambda t: TH)
    assert not [e for e in ev.events if e.kind == "open"]  # the same incident, not a new one
    assert ev.statuses[0].incident_id == "lag:c1:10-1" and ev.statuses[0].status == "STOPPED"
    # Written again, it is version 2, and reads back the same.
    cursor, trimmed = encode_window(ev.window)
    assert cursor.startswith("lagv2:") and not trimmed
    assert decode_window(cursor) == ev.window
    # Version-1 wire data is also taken by encode_window, and written as version 2.
    assert decode_window(encode_window(OLD_WIRE)[0]) == OLD_WINDOW


def test_round_trip_of_evaluated_windows():
    w = None
    for i in range(1, 8):
        w = evaluate(w, _obs(10 * i, 200 * i, 0 if i < 5 else 200 * i), lambda t: TH).window
        cursor, trimmed = encode_window(w)
        assert not trimmed and decode_window(cursor) == w
        assert encode_window(w.to_wire())[0] == cursor  # the wire data encodes the same


def test_groups_at_the_same_offsets_share_one_table_and_one_history():
    tps = [("t", p) for p in range(3)]
    groups = {
        f"g{i}": GroupObservation(f"g{i}", "Empty", 0, {tp: 5 for tp in tps}, frozenset(), ())
        for i in range(50)
    }
    lone = {tp: 7 for tp in tps}
    groups["lone"] = GroupObservation("lone", "Empty", 0, lone, frozenset(), ())
    offsets = {tp: PartitionOffsets(0, 9, None) for tp in tps}
    w = None
    for at in (10, 20, 30):
        w = evaluate(
            w,
            Observation("c1", at, offsets, frozenset({"t"}), groups, frozenset(groups)),
            lambda t: TH,
        ).window
    wire = w.to_wire()
    # 50 groups at offset 5 and one at 7: two tables; all of them OK with no lag above the
    # warning level, so one history.
    assert len(wire["states"]) == 2 and len(wire["hist"]) == 1
    # The usual table: partitions "0".."2" and peaks equal to the committed offsets are not
    # written out, and the time since the offsets last moved is one number.
    assert wire["states"][0] == [None, [5, 5, 5], 10, None]
    back = decode_window(encode_window(w)[0])
    assert back == w
    assert back.groups["g1"].partitions["t"] is back.groups["g2"].partitions["t"]


_text = st.text(max_size=4)
_state = st.builds(
    PartitionState,
    st.integers(-(2**63), 2**63 - 1),
    st.integers(0, 2**40) | st.floats(0, 2e9),
    st.integers(-(2**63), 2**63 - 1),
)
_table = st.dictionaries(_text, _state, max_size=5) | st.lists(_state, max_size=5).map(
    lambda sts: {str(p): s for p, s in enumerate(sts)}
)
_incident = st.builds(
    Incident,
    _text,
    st.floats(0, 2e9),
    st.sampled_from(sorted(SEVERITY_RANK)),
    st.sampled_from(STATUS_ORDER),
    st.floats(0, 2e9),
    st.integers(0, 99),
    st.integers(0, 2**63),
    st.none() | st.floats(0, 1e9),
)
_lag_entry = st.none() | st.tuples(st.integers(0, 2**40), st.none() | st.floats(0, 1e6)).map(list)
_topic_window = st.builds(
    TopicWindow,
    st.lists(st.sampled_from(STATUS_ORDER), max_size=3),
    st.lists(_lag_entry, max_size=3),
    st.none() | _incident,
    st.integers(0, 9),
)


@st.composite
def _windows(draw):
    """Windows with tables shared between groups (as the evaluation makes them) or not."""
    shared = draw(st.lists(_table, min_size=1, max_size=3))
    tables = st.sampled_from(shared) | _table
    groups = draw(
        st.dictionaries(
            _text,
            st.builds(
                GroupWindow,
                st.none() | st.text(max_size=10),
                st.none() | st.floats(0, 2e9),
                st.none() | st.floats(0, 2e9),
                st.dictionaries(_text, tables, max_size=3),
                st.dictionaries(_text, _topic_window, max_size=3),
            ),
            max_size=5,
        )
    )
    ends = draw(
        st.dictionaries(
            _text,
            st.dictionaries(
                _text,
                st.lists(st.lists(st.integers(0, 10**6), min_size=2, max_size=2), max_size=3),
                max_size=2,
            ),
            max_size=2,
        )
    )
    return Window(draw(_text), draw(st.floats(0, 2e9)), draw(st.integers(0, 10**6)), ends, groups)


@settings(max_examples=300, deadline=None)
@given(_windows())
def test_any_window_reads_back_as_it_was_written(w):
    cursor, trimmed = encode_window(w)
    assert not trimmed and cursor.startswith("lagv2:")
    assert decode_window(cursor) == w


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
    """A cursor holding `data` as is, behind the prefix of the version it says it is."""
    v = data.get("v") if isinstance(data, dict) else None
    prefix = f"lagv{v}:" if v in (1, 2) else CURSOR_PREFIX
    raw = json.dumps(data).encode()
    return prefix + base64.b64encode(zlib.compress(raw)).decode()


NEW_WIRE = json.loads(json.dumps(OLD_WINDOW.to_wire()))


def _v2(**changes):
    return {**NEW_WIRE, **changes}


def _v2_group(row):
    return _v2(groups={"g": row})


_GROUP = NEW_WIRE["groups"]["g"]  # [mh, rb, rbs, [topic, table], [topic, history, incident]]


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
        # Version 2, each field of a valid window spoiled in turn.
        _v2(v=3),
        _v2(v=True),
        _v2(topics=[1]),
        _v2(topics={"t": 0}),
        _v2(states=[[None, [0], 10, None, 5]]),
        _v2(states=[[None, [0.5], 10, None]]),
        _v2(states=[[None, [True], 10, None]]),
        _v2(states=[[["0", "1"], [0], 10, None]]),
        _v2(states=[[[0], [0], 10, None]]),
        _v2(states=[[None, [0], [10, 11], None]]),
        _v2(states=[[None, [0], "10", None]]),
        _v2(states=[[None, [0], True, None]]),
        _v2(states=[[None, [0], 10, [0, 1]]]),
        _v2(states=[[None, [0], 10, ["0"]]]),
        _v2(hist=[["NOPE", [], 0]]),
        _v2(hist=[["STOPPED", [], -1]]),
        _v2(hist=[["STOPPED", [["a", 1]], 0]]),
        _v2(hist=[["STOPPED", 5, 0]]),
        _v2(hist=[[0]]),
        _v2_group(_GROUP[:4]),
        _v2_group({"mh": None}),
        _v2_group([5, *_GROUP[1:]]),
        _v2_group([*_GROUP[:3], [0, 1], _GROUP[4]]),
        _v2_group([*_GROUP[:3], [0, -1], _GROUP[4]]),
        _v2_group([*_GROUP[:3], [0, True], _GROUP[4]]),
        _v2_group([*_GROUP[:3], [0], _GROUP[4]]),
        _v2_group([*_GROUP[:3], [1, 0], _GROUP[4]]),
        _v2_group([*_GROUP[:4], [0, 0, ["i", 1, "critical"]]]),
        _v2_group([*_GROUP[:4], [0, 0, ["i", 1, "bad", "STOPPED", 1, 0, 0, None]]]),
        _v2_group([*_GROUP[:4], [0, 0, ["i", 1, "critical", "STOPPED", 1, -2, 0, None]]]),
        _v2_group([*_GROUP[:4], [0, 1, None]]),
        _v2_group([*_GROUP[:4], [0, 0]]),
    ],
)
def test_malformed_windows_are_refused_with_a_reason(bad):
    assert decode_window(_cursor_of(NEW_WIRE)) == OLD_WINDOW  # the window spoiled is valid
    with pytest.raises(CursorInvalid) as e:
        decode_window(_cursor_of(bad))
    assert "cursor" in str(e.value) and len(str(e.value)) < 300


def test_a_cursor_whose_prefix_and_contents_disagree_is_refused():
    for data, prefix in ((OLD_WIRE, "lagv2:"), (NEW_WIRE, "lagv1:")):
        cursor = prefix + _cursor_of(data).split(":", 1)[1]
        with pytest.raises(CursorInvalid, match="version"):
            decode_window(cursor)


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
    _window_or_refused(data)


def _window_or_refused(data):
    try:
        w = decode_window(_cursor_of(data))
    except CursorInvalid as exc:
        assert str(exc).startswith("cursor")
        return
    assert isinstance(w, Window)
    # What was read is usable: evaluating a tick on it, and writing it again, do not fail.
    evaluate(w, _obs(100, 10, 0), lambda t: TH)
    assert decode_window(encode_window(w)[0]) == w


_small_int = st.integers(-2, 3)


@settings(max_examples=300, deadline=None)
@given(
    topics=st.lists(st.text(max_size=3) | _small_int, max_size=3),
    states=st.lists(st.lists(_json | _small_int, max_size=5), max_size=3),
    hist=st.lists(st.lists(st.sampled_from(STATUS_ORDER) | _json, max_size=4), max_size=3),
    groups=st.dictionaries(
        st.text(max_size=3),
        st.lists(_json | st.lists(_small_int, max_size=6), max_size=6),
        max_size=3,
    ),
)
def test_hostile_version_2_data_is_a_window_or_refused(topics, states, hist, groups):
    data = {
        **NEW_WIRE,
        "topics": topics,
        "states": states,
        "hist": hist,
        "groups": groups,
    }
    _window_or_refused(data)


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=200)
    | st.binary(max_size=200).map(lambda b: "lagv1:" + b.hex())
    | st.binary(max_size=200).map(lambda b: "lagv2:" + base64.b64encode(b).decode())
)
def test_hostile_cursor_text_is_refused_or_none(text):
    try:
        w = decode_window(text)
    except CursorInvalid:
        return
    assert w is None and not text
