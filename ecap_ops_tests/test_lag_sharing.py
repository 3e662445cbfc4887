"""Groups that share work in one lag tick are judged exactly as each would be alone.

The evaluation shares a partition's figures and status between the groups of one tick
whose inputs are the same (offset, history, group state), and a topic's figures between
groups whose partitions are all shared (`core/lag.py`, `group_topic`). The expected values
here come from evaluating each group on its own, in its own window, over the same ticks:
no sharing can happen there, so any state leaking from one group to another shows.
"""

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecap_ops.catalog.model import LagThresholds
from ecap_ops.core.lag import EvalConfig, GroupObservation, Observation, PartitionOffsets, evaluate
from ecap_ops.core.lag_model import RecordTimes

TH = {
    "a": LagThresholds(warn_seconds=60, crit_seconds=300, warn_msgs=30, stall_after_seconds=25),
    "b": LagThresholds(
        warn_seconds=20,
        crit_seconds=90,
        warn_msgs=10,
        stall_after_seconds=15,
        critical_at_once=True,
    ),
}
CFG = EvalConfig(
    for_ticks=2,
    debounce_ticks=2,
    clean_ticks=2,
    rebalance_grace_seconds=20,
    remind_critical_seconds=30,
    remind_warning_seconds=60,
)
PARTS = [("a", 0), ("a", 1), ("a", 2), ("b", 0)]
STATES = ("Stable", "Empty", "PreparingRebalance", "CompletingRebalance")

group_tick = st.fixed_dictionaries(
    {
        "state": st.sampled_from(STATES),
        "members": st.sampled_from([0, 1, 2, None]),
        # few distinct offsets, so that groups often share
        "committed": st.lists(st.sampled_from([None, 0, 10, 25, 40]), min_size=4, max_size=4),
        "owned": st.lists(st.booleans(), min_size=4, max_size=4),
    }
)
tick = st.fixed_dictionaries(
    {
        "grow": st.lists(st.sampled_from([0, 0, 5, 20]), min_size=4, max_size=4),
        "truncate": st.sampled_from([0, 0, 0, 15]),
        "read": st.booleans(),
        "groups": st.lists(group_tick, min_size=5, max_size=5),
    }
)


def observations(ticks: list[dict], n_groups: int) -> list[Observation]:
    ends = dict.fromkeys(PARTS, 40)
    out = []
    for i, t in enumerate(ticks):
        at = 1_000.0 + 10 * i
        for tp, grow in zip(PARTS, t["grow"], strict=True):
            ends[tp] += grow
        offsets = {}
        for tp in PARTS:
            times = None
            if t["read"]:  # the records from 0 on were read: one batch a second, oldest first
                upto = tuple(range(9, ends[tp], 10))
                stamps = tuple(int((at - 200 + k) * 1000) for k in range(len(upto)))
                times = RecordTimes(0, upto, stamps, tuple(True for _ in upto), "CreateTime")
            offsets[tp] = PartitionOffsets(t["truncate"], ends[tp], None, times)
        groups = {}
        for k, g in enumerate(t["groups"][:n_groups]):
            name = f"g{k}"
            committed = {
                tp: c for tp, c in zip(PARTS, g["committed"], strict=True) if c is not None
            }
            members = g["members"]
            owned = frozenset(tp for tp, o in zip(PARTS, g["owned"], strict=True) if o and members)
            ids = tuple(f"m{j}" for j in range(members or 0))
            groups[name] = GroupObservation(name, g["state"], members, committed, owned, ids)
        out.append(Observation("c1", at, offsets, frozenset({"a", "b"}), groups, frozenset(groups)))
    return out


def without_ids(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in ("incident_id", "run_key")}


def alone(o: Observation, group: str) -> Observation:
    only = {group: o.groups[group]} if group in o.groups else {}
    return dataclasses.replace(o, groups=only, listed_groups=frozenset(only))


def assert_judged_as_alone(obs: list[Observation], names: list[str]) -> list:
    """Evaluates the ticks with every group together and with each group alone; returns the
    joint evaluations."""
    together = None
    apart = dict.fromkeys(names)
    joints = []
    for o in obs:
        joint = evaluate(together, o, TH.__getitem__, CFG)
        together = joint.window
        joints.append(joint)
        for name in names:
            single = evaluate(apart[name], alone(o, name), TH.__getitem__, CFG)
            apart[name] = single.window
            mine = [without_ids(s.to_dict()) for s in joint.statuses if s.group == name]
            assert mine == [without_ids(s.to_dict()) for s in single.statuses]
            mine_ev = [without_ids(e.to_dict()) for e in joint.events if e.group == name]
            assert mine_ev == [without_ids(e.to_dict()) for e in single.events]
            # The window each carries to the next tick: the same partition states.
            assert together.groups[name].partitions == apart[name].groups[name].partitions
    return joints


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ticks=st.lists(tick, min_size=2, max_size=5), n_groups=st.integers(2, 5))
def test_groups_judged_together_are_judged_as_each_alone(ticks, n_groups):
    assert_judged_as_alone(observations(ticks, n_groups), [f"g{k}" for k in range(n_groups)])


def test_owning_a_partition_is_not_shared():
    """Two stable groups with a member each, stuck at the same offsets while the topics grow:
    the one whose member owns the partitions is STALLED, the one whose partitions nobody owns
    STOPPED; judged together, each keeps its own."""
    stuck = {"state": "Stable", "members": 1, "committed": [0] * 4}
    ticks = [
        {
            "grow": [20] * 4,
            "truncate": 0,
            "read": False,
            "groups": [{**stuck, "owned": [True] * 4}, {**stuck, "owned": [False] * 4}] * 3,
        }
        for _ in range(6)
    ]
    last = assert_judged_as_alone(observations(ticks, 2), ["g0", "g1"])[-1]
    raw = {(s.group, s.topic): s.raw_status for s in last.statuses}
    assert raw == {("g0", "a"): "STALLED", ("g0", "b"): "STALLED"} | {
        ("g1", "a"): "STOPPED",
        ("g1", "b"): "STOPPED",
    }


def test_groups_at_the_same_offsets_share_their_partitions_figures():
    """The sharing happens (not only the equality): two groups with the same inputs get the
    same `PartitionLag` objects, and a third at another offset its own."""
    o = observations(
        [
            {
                "grow": [0, 0, 0, 0],
                "truncate": 0,
                "read": True,
                "groups": [
                    {"state": "Empty", "members": 0, "committed": [10] * 4, "owned": [False] * 4},
                    {"state": "Empty", "members": 0, "committed": [10] * 4, "owned": [False] * 4},
                    {"state": "Empty", "members": 0, "committed": [25] * 4, "owned": [False] * 4},
                ],
            }
        ],
        3,
    )[0]
    ev = evaluate(None, o, TH.__getitem__, CFG)
    by = {(s.group, s.topic): s for s in ev.statuses}
    assert by[("g0", "a")].partitions is by[("g1", "a")].partitions
    assert by[("g0", "a")].partitions[0].lag_msgs == 30
    assert by[("g2", "a")].partitions[0].lag_msgs == 15
    assert by[("g2", "a")].partitions is not by[("g0", "a")].partitions
    assert ev.window.groups["g0"].partitions["a"] == ev.window.groups["g1"].partitions["a"]
