"""The one partition-health rule (core/partition_health.py): which partitions are offline,
under-replicated or below min.insync.replicas, and the min.insync.replicas a topic is held
to. Pure: no broker."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecap_ops.core.partition_health import (
    KAFKA_DEFAULT_MIN_ISR,
    effective_min_isr,
    partition_health,
    topic_partition_health,
)
from ecap_ops.core.state import PartitionState, TopicState


def _topic(name="t", parts=(), overrides=None) -> TopicState:
    return TopicState(
        name,
        tuple(
            PartitionState(i, ld, tuple(rep), tuple(isr)) for i, (ld, rep, isr) in enumerate(parts)
        ),
        overrides=overrides or {},
    )


@pytest.mark.parametrize(
    "overrides, broker, expected",
    [
        ({}, None, KAFKA_DEFAULT_MIN_ISR),  # nothing read: Kafka's default, 1
        ({}, 2, 2),  # the brokers' value
        ({"min.insync.replicas": "3"}, 2, 3),  # the topic's own override wins
        ({"min.insync.replicas": "3"}, None, 3),
        ({"min.insync.replicas": "two"}, 2, 2),  # not a number: the fallback
        ({"min.insync.replicas": ""}, None, 1),
    ],
)
def test_effective_min_isr_is_the_override_else_the_brokers_else_kafkas(
    overrides, broker, expected
):
    assert effective_min_isr(_topic(overrides=overrides), broker) == expected


@given(raw=st.text(max_size=30), broker=st.one_of(st.none(), st.integers(1, 5)))
@settings(max_examples=150, deadline=None)
def test_any_override_string_gives_a_number_and_never_raises(raw, broker):
    got = effective_min_isr(_topic(overrides={"min.insync.replicas": raw}), broker)
    try:
        expected = int(raw)
    except ValueError:
        expected = broker if broker is not None else 1
    assert got == expected


@pytest.mark.parametrize(
    "part, min_isr, offline, under, under_min",
    [
        ((1, [1, 2, 3], [1, 2, 3]), 2, False, False, False),
        ((1, [1, 2, 3], [1, 2]), 2, False, True, False),
        ((1, [1, 2, 3], [1]), 2, False, True, True),
        ((None, [1, 2, 3], []), 1, True, True, True),
        ((None, [1], [1]), 1, True, False, False),  # no leader, ISR still listed
        ((1, [1], [1]), 2, False, False, True),  # min ISR above replication: acks=all fails
    ],
)
def test_one_partition_by_the_rule(part, min_isr, offline, under, under_min):
    h = topic_partition_health(_topic(parts=[part]).partitions, min_isr)
    assert (h.offline == [0], h.under_replicated == [0], h.under_min_isr == [0]) == (
        offline,
        under,
        under_min,
    )
    assert h.healthy is not (offline or under or under_min)


def test_every_topic_is_held_to_its_own_min_isr():
    topics = {
        "own": _topic("own", [(1, [1, 2, 3], [1, 2])], {"min.insync.replicas": "3"}),
        "brokers": _topic("brokers", [(1, [1, 2, 3], [1, 2])]),
        "fine": _topic("fine", [(1, [1, 2, 3], [1, 2, 3])]),
    }
    h = partition_health(topics, broker_min_isr=2)
    assert h.under_min_isr == {"own": [0]}  # 2 in sync: below its 3, not below the brokers' 2
    assert h.under_replicated == {"own": [0], "brokers": [0]}
    assert h.offline == {} and not h.healthy
    assert h.counts() == {
        "under_replicated_partitions": 2,
        "under_min_isr_partitions": 1,
        "offline_partitions": 0,
    }
    assert partition_health({"fine": topics["fine"]}, 2).healthy


_parts = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(1, 4)),
        st.lists(st.integers(1, 4), max_size=4, unique=True),
        st.lists(st.integers(1, 4), max_size=4, unique=True),
    ),
    max_size=5,
)


@given(
    topics=st.dictionaries(st.text("abc", min_size=1, max_size=3), _parts, max_size=4),
    broker=st.one_of(st.none(), st.integers(1, 3)),
)
@settings(max_examples=150, deadline=None)
def test_the_cluster_view_is_the_rule_applied_topic_by_topic(topics, broker):
    states = {n: _topic(n, p) for n, p in topics.items()}
    h = partition_health(states, broker)
    for name, t in states.items():
        one = topic_partition_health(t.partitions, effective_min_isr(t, broker))
        assert h.offline.get(name, []) == one.offline
        assert h.under_replicated.get(name, []) == one.under_replicated
        assert h.under_min_isr.get(name, []) == one.under_min_isr
    assert all(h.offline.values()) and all(h.under_replicated.values())
