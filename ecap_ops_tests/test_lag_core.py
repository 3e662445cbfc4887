"""The lag evaluation as a pure function: lag in seconds, statuses, incidents, cursor."""

import dataclasses

import pytest

from ecap_ops.catalog.model import LagThresholds
from ecap_ops.core.lag import (
    CursorInvalid,
    EvalConfig,
    GroupObservation,
    Observation,
    PartitionOffsets,
    decode_window,
    encode_window,
    evaluate,
    group_selected,
    lag_seconds,
)
from ecap_ops.core.lag_alerts import lag_alert

TH = LagThresholds(warn_seconds=60, crit_seconds=300, warn_msgs=100, stall_after_seconds=30)
CFG = EvalConfig(
    for_ticks=2,
    debounce_ticks=2,
    clean_ticks=2,
    rebalance_grace_seconds=20,
    remind_critical_seconds=100,
    remind_warning_seconds=1000,
)


def th(_topic: str) -> LagThresholds:
    return TH


def obs(
    at,
    end,
    committed=None,
    state="Stable",
    members=1,
    start=0,
    sla=None,
    groups=True,
    assigned=True,
    member_ids=("m1",),
):
    """One topic `t` with one partition, one group `g`."""
    tp = ("t", 0)
    gs = {}
    if groups:
        gs["g"] = GroupObservation(
            "g",
            state,
            members,
            {tp: committed} if committed is not None else {},
            frozenset({tp}) if assigned and members else frozenset(),
            tuple(member_ids) if members else (),
        )
    return Observation(
        "c1", at, {tp: PartitionOffsets(start, end, sla)}, frozenset({"t"}), gs, frozenset(gs)
    )


def run(ticks, cfg=CFG):
    w, out = None, []
    for o in ticks:
        ev = evaluate(w, o, th, cfg)
        w = ev.window
        out.append(ev)
    return out


@pytest.mark.parametrize(
    "samples,position,end,now,expected,kind",
    [
        ([[0, 0], [10, 100]], 100, 100, 10, 0.0, "exact"),
        ([[10, 100]], 50, 100, 10, None, "unknown"),
        # record 49 was written when the end passed 50: half way between t=0 and t=10
        ([[0, 0], [10, 100]], 49, 100, 10, 5.0, "interpolated"),
        ([[0, 0], [10, 100], [20, 100]], 99, 100, 20, 10.0, "interpolated"),
        # older than the window: extrapolated at 10 msgs/s
        ([[0, 100], [10, 200]], 49, 200, 10, 15.0, "extrapolated"),
        # nothing produced during the window: a lower bound
        ([[0, 100], [10, 100]], 49, 100, 10, 10.0, "at_least"),
    ],
)
def test_lag_seconds(samples, position, end, now, expected, kind):
    secs, k = lag_seconds(samples, position, end, now)
    assert k == kind
    assert secs == (pytest.approx(expected) if expected is not None else None)


def test_keeping_up_stays_ok_and_silent():
    ticks = [obs(i * 10, 100 * i, 100 * i - 5) for i in range(1, 12)]
    evs = run(ticks)
    assert all(s.status in ("OK",) for e in evs for s in e.statuses)
    assert not any(e.events for e in evs)


def test_stopped_group_opens_once_reminds_and_resolves_with_peak():
    ticks = [obs(0, 0, 0), obs(10, 50, 50)]
    ticks += [
        obs(20 + 10 * i, 50 + 100 * (i + 1), 50, state="Empty", members=0) for i in range(15)
    ]  # stopped
    ticks += [obs(200, 1600, 1600), obs(210, 1610, 1610), obs(220, 1620, 1620)]  # back, caught up
    evs = run(ticks)
    kinds = [(e.kind, e.status) for ev in evs for e in ev.events]
    assert kinds[0] == ("open", "STOPPED")
    assert [k for k, _ in kinds].count("open") == 1
    assert [k for k, _ in kinds].count("resolve") == 1
    reminders = [e for ev in evs for e in ev.events if e.kind == "remind"]
    opened = [e for ev in evs for e in ev.events if e.kind == "open"][0]
    assert opened.at == 40  # over the level from t=30, debounced for 2 ticks
    assert [(e.reminder, e.at) for e in reminders] == [(1, 140)]
    resolve = [e for ev in evs for e in ev.events if e.kind == "resolve"][0]
    assert resolve.peak_msgs == 1500 and resolve.duration_seconds == pytest.approx(170)
    assert len({e.run_key for ev in evs for e in ev.events}) == len(kinds)
    alert = lag_alert(resolve, "http://dagster/runs/x")
    assert (
        alert.severity == "resolved"
        and "peak lag: 1,500 msgs" in alert.text
        and "duration: 2m50s" in alert.text
    )


def test_stalled_when_members_do_not_commit():
    ticks = [obs(10 * i, 30 * i, 10) for i in range(1, 10)]
    evs = run(ticks)
    assert evs[-1].statuses[0].status == "STALLED"
    assert [e.kind for ev in evs for e in ev.events] == ["open"]


def test_rebalance_restarts_the_stall_clock():
    steady = run([obs(10 * i, 30 * i, 10) for i in range(1, 8)])
    assert steady[3].statuses[0].raw_status == "STALLED"  # t=40: unchanged since t=10
    moved = run(
        [
            obs(10 * i, 30 * i, 10, member_ids=("m1",) if i < 4 else ("m1", "m2"))
            for i in range(1, 8)
        ]
    )
    raws = [e.statuses[0].raw_status for e in moved]
    assert (
        "STALLED" not in raws[3:6] and raws[6] == "STALLED"
    )  # members changed at t=40: stall from t=70


def test_rebalancing_state_holds_stop():
    evs = run([obs(10, 10, 10), obs(20, 500, 10, state="PreparingRebalance", members=0)])
    assert evs[-1].statuses[0].raw_status == "REBALANCING"


def test_rewind_and_recovery():
    ticks = [obs(10 * i, 1000 + i, 1000 + i) for i in range(1, 4)]
    ticks += [
        obs(40, 1004, 10),
        obs(50, 1005, 200),
        obs(60, 1006, 1006),
        obs(70, 1007, 1007),
        obs(80, 1008, 1008),
    ]
    evs = run(ticks)
    assert [e.statuses[0].raw_status for e in evs[3:5]] == ["REWIND", "REWIND"]
    kinds = [e.kind for ev in evs for e in ev.events]
    assert kinds == ["open", "resolve"]


def test_data_loss_is_immediate():
    evs = run([obs(10, 100, 5, start=50)])
    s = evs[0].statuses[0]
    assert s.status == "DATA_LOSS" and s.lost == 45 and s.lag_msgs == 50
    assert evs[0].events[0].kind == "open" and evs[0].events[0].severity == "critical"


def test_sla_probe_needs_no_history():
    evs = run([obs(10, 100, 5, sla=50)])
    assert evs[0].statuses[0].status == "BEHIND_SLA"
    evs = run([obs(10, 100, 60, sla=50)])
    assert evs[0].statuses[0].status == "OK"


def test_lagging_needs_for_ticks_and_not_decreasing():
    # lag 150 > 100 msgs, steady
    evs = run([obs(10 * i, 1000 + 50 * i, 850 + 50 * i) for i in range(1, 5)])
    assert [e.statuses[0].status for e in evs] == ["OK", "LAGGING", "LAGGING", "LAGGING"]
    # decreasing backlog: not lagging
    evs = run([obs(10 * i, 1000 + 10 * i, 600 + 50 * i) for i in range(1, 5)])
    assert all(e.statuses[0].status == "OK" for e in evs)


def test_deleted_group_closes_quietly():
    ticks = [obs(10 * i, 100 * i, 0, state="Empty", members=0) for i in range(1, 4)]
    ticks.append(obs(40, 400, groups=False))
    evs = run(ticks)
    events = [e for ev in evs for e in ev.events]
    assert [(e.kind, e.notify) for e in events] == [("open", True), ("close", False)]
    assert "g" not in evs[-1].window.groups


def test_partial_listing_does_not_delete():
    o = obs(40, 400, groups=False)
    o = Observation(o.cluster_id, o.at, o.offsets, o.topics, {}, None, partial=True)
    w = run([obs(10 * i, 100 * i, 0, state="Empty", members=0) for i in range(1, 4)])[-1].window
    ev = evaluate(w, o, th, CFG)
    assert not ev.events and "g" in ev.window.groups


def test_same_tick_twice_gives_the_same_run_keys():
    ticks = [obs(10 * i, 200 * i, 0, state="Empty", members=0) for i in range(1, 4)]
    w = run(ticks[:1])[-1].window
    a = evaluate(w, ticks[1], th, CFG)
    b = evaluate(w, obs(21, 420, 0, state="Empty", members=0), th, CFG)
    assert [e.run_key for e in a.events] == [e.run_key for e in b.events] != []


def test_cursor_round_trip_corruption_and_bound():
    w = run([obs(10 * i, 100 * i, 100 * i) for i in range(1, 4)])[-1].window
    cur, trimmed = encode_window(w)
    assert decode_window(cur) == w and not trimmed
    for bad in ("garbage", "lagv1:!!!", "lagv1:" + "eJwLSS0u0S1JzMkFAA==", cur[:-10]):
        with pytest.raises(CursorInvalid):
            decode_window(bad)
    assert decode_window(None) is None
    big = {"v": 1, "cluster": "c", "epoch": 0, "seq": 0, "ends": {}, "groups": {}}
    for g in range(300):
        big["groups"][f"g{g}"] = {
            "mh": None,
            "rb": None,
            "rbs": None,
            "p": {"t": {str(p): [p * 1000 + g, 1.5 * g, p] for p in range(30)}},
            "t": {},
        }
    cur, trimmed = encode_window(big, max_bytes=20_000)
    assert len(cur) <= 20_000 and trimmed


@pytest.mark.parametrize(
    "group,include,exclude,expected",
    [
        ("orders", (), (), True),
        ("orders", ("ord*",), (), True),
        ("x", ("ord*",), (), False),
        ("orders-test", (), ("*-test",), False),
    ],
)
def test_group_selection(group, include, exclude, expected):
    assert group_selected(group, include, exclude) is expected


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="window_size"):
        EvalConfig(window_size=1)


# -- fast paths: same results as the plain ones --------------------------------------------


def test_evaluate_leaves_its_window_alone_and_copy_window_is_a_deep_copy():
    import copy
    import json

    from ecap_ops.core.lag import copy_window, status_rank

    ticks = [obs(10 * i, 100 * i, 0, state="Empty", members=0) for i in range(1, 6)]
    w = None
    for o in ticks:
        before = copy.deepcopy(w)
        ev = evaluate(w, o, th, CFG)
        assert w == before  # the input window is not changed in place
        w = ev.window
    assert any(t.incident for gw in w.groups.values() for t in gw.topics.values())
    c = copy_window(w)
    assert json.loads(json.dumps(c.to_wire())) == json.loads(json.dumps(w.to_wire())) and c == w
    for group, gw in w.groups.items():
        assert c.groups[group] is not gw and c.groups[group].partitions is not gw.partitions
        for topic, gt in gw.topics.items():
            assert c.groups[group].topics[topic] is not gt
            assert gt.incident is None or c.groups[group].topics[topic].incident is not gt.incident
    for topic, parts in w.ends.items():
        for p, samples in parts.items():
            assert c.ends[topic][p] == samples and c.ends[topic][p] is not samples
    assert [status_rank(s) for s in ("DATA_LOSS", "LAGGING", "IDLE")] == [0, 5, 9]


@pytest.mark.parametrize(
    "data",
    [
        None,
        1,
        'é\n"x"',
        [],
        {},
        [1, 2.5, None, True, "a"],
        {"b": 1, "a": [], "c": {}, "d": {"z": [1, [2, {}]], "y": "}\n{"}},
        {"rows": [{"a": 1, "b": "}"}, {"a": 2, "b": "{"}], "n": 3, "m": [{}]},
        {"rows": [{"a": 1}, {}], "tuple": (1, (2, 3)), "e": float("inf")},
        {"keys": {2: "int", 1: "int"}, "when": __import__("datetime").date(2024, 1, 2)},
        [
            [{"p": 1, "q": None}],
            [{"p": 2, "q": {"r": [1]}}],
            [{"s": __import__("datetime").date(2024, 1, 2)}],
        ],
    ],
)
def test_json_text_is_byte_for_byte_the_standard_encoder(data):
    import json

    from ecap_ops.cli.lag import json_text

    assert json_text(data) == json.dumps(data, indent=2, sort_keys=True, default=str)


def test_json_text_of_a_whole_tick():
    import json

    from ecap_ops.cli.lag import json_text
    from ecap_ops.gateway.lag import Measurement
    from ecap_ops.services.lag import LagTick

    evs = run([obs(10 * i, 100 * i, 10 * i, state="Empty", members=0) for i in range(1, 5)])
    o = obs(50, 500, 40)
    d = LagTick(Measurement(o, 0.1, {"OffsetFetch": 1}), next(e for e in evs if e.events)).to_dict()
    assert d["statuses"] and d["events"]
    assert json_text(d) == json.dumps(d, indent=2, sort_keys=True, default=str)


def test_gc_paused_restores_the_collector():
    import gc

    from ecap_ops.services.lag import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # someone else's pause is kept
    finally:
        gc.enable()


def test_lag_table_lists_every_group_and_topic_worst_status_first():
    from ecap_ops.cli.app import render_table
    from ecap_ops.cli.lag import LAG_HEADERS, lag_table
    from ecap_ops.core.lag import format_seconds_short

    evs = run([obs(10 * i, 100 * i, 10 * i, state="Empty", members=0) for i in range(1, 5)])
    statuses = list(evs[-1].statuses) + list(evaluate(None, obs(50, 500, 500), th).statuses)
    text = lag_table(statuses)
    lines = text.splitlines()
    assert lines[0].split() == ["GROUP", "TOPIC", "STATUS", "LAG", "MSGS", "LAG", "TIME"] + [
        "STATE",
        "MEMBERS",
        "WORST",
    ]
    assert len(lines) == 2 + len(statuses)
    # The same table as the generic renderer, rows built the straightforward way.
    marks = {"extrapolated": "~", "at_least": ">=", "partial": ">="}
    rows = []
    order = ["DATA_LOSS", "STOPPED", "STALLED", "BEHIND_SLA", "REWIND", "LAGGING"]
    order += ["NO_OFFSET", "REBALANCING", "OK", "IDLE"]
    for s in sorted(statuses, key=lambda s: (s.group, order.index(s.status), s.topic)):
        w = s.worst_partitions(3)[0]
        rows.append(
            [
                s.group,
                s.topic,
                s.status,
                f"{s.lag_msgs:,}",
                "-"
                if s.lag_seconds is None
                else marks.get(s.lag_seconds_kind, "") + format_seconds_short(s.lag_seconds),
                s.state,
                "-" if s.members is None else s.members,
                f"p{w.partition} {w.lag_msgs:,}" if w.lag_msgs else "-",
            ]
        )
    assert text == render_table(list(LAG_HEADERS), rows, right=(3, 4, 6))


def test_worst_partitions_worst_status_then_most_lag_first_of_equals():
    from ecap_ops.core.lag import GroupTopicStatus, PartitionLag

    def pl(p, status, msgs, secs=None):
        return PartitionLag("t", p, 0, 0, msgs, msgs, 0, secs, "unknown", status, False)

    parts = (
        pl(0, "OK", 5),
        pl(1, "STOPPED", 3, 2.0),
        pl(2, "STOPPED", 3, 9.0),
        pl(3, "STOPPED", 3, 9.0),
        pl(4, "DATA_LOSS", 0),
    )
    s = GroupTopicStatus("g", "t", "OK", "OK", "ok", 14, None, "unknown", 0, "Stable", 1, parts)
    assert [p.partition for p in s.worst_partitions(3)] == [4, 2, 3]
    assert [p.partition for p in s.worst_partitions(1)] == [4]
    assert [p.partition for p in s.worst_partitions(10)] == [4, 2, 3, 1, 0]
    assert dataclasses.replace(s, partitions=()).worst_partitions(1) == []
