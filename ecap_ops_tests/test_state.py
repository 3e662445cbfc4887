"""core/state.py: the one rule for "is this one of Kafka's internal topics", and every
judgement that needs it (the plan's unmanaged list, delete refusals, cleanup, the
retention audit, the health check's single-replica warning) agreeing with it. Pure: no
broker."""

import dataclasses

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ecap_ops.catalog import load_catalog
from ecap_ops.core.changes import make_delete_plan
from ecap_ops.core.cleanup import CleanupRules, TopicEvidence, decide
from ecap_ops.core.health import HealthObservation, evaluate
from ecap_ops.core.plan import make_plan
from ecap_ops.core.retention import TopicObservation, audit_topic
from ecap_ops.core.state import (
    BrokerInfo,
    ClusterState,
    PartitionState,
    TopicState,
    is_internal_topic,
)

NOW_MS = 1_800_000_000_000


def test_the_rule():
    assert is_internal_topic("__consumer_offsets")
    assert is_internal_topic("__transaction_state", flagged=True)
    assert is_internal_topic("__cluster_metadata")  # never flagged by the broker, still Kafka's
    assert is_internal_topic("odd-but-flagged", flagged=True)
    assert not is_internal_topic("transactions")
    assert not is_internal_topic("_single_underscore")
    assert not is_internal_topic("a__b")
    assert not is_internal_topic("transactions", flagged=None)  # metadata without the flag


@given(name=st.text(max_size=60), flagged=st.one_of(st.none(), st.booleans()))
def test_the_rule_is_the_flag_or_the_reserved_prefix(name, flagged):
    assert is_internal_topic(name, flagged) == (bool(flagged) or name.startswith("__"))


# Topic names a cluster can hold, each with the broker's flag: Kafka's own topics, an
# "__" topic the broker does not flag, a flagged topic without the prefix, plain ones.
# Every name ends in "-test" so that it also matches the cleanup pattern.
topic_names = st.from_regex(r"(__)?[a-z][a-z0-9._]{0,20}-test", fullmatch=True)
clusters = st.dictionaries(topic_names, st.booleans(), min_size=1, max_size=12)


def _cluster(flags: dict[str, bool]) -> ClusterState:
    part = PartitionState(partition=0, leader=1, replicas=(1,), isr=(1,))
    topics = {
        name: TopicState(name=name, partitions=(part,), internal=flagged)
        for name, flagged in flags.items()
    }
    return ClusterState("c1", 1, (BrokerInfo(1, "localhost", 9092),), topics)


@hsettings(max_examples=150, deadline=None)
@given(flags=clusters)
def test_every_judgement_uses_the_one_rule(flags):
    internal = {n for n, f in flags.items() if is_internal_topic(n, f)}
    cluster = _cluster(flags)
    catalog = dataclasses.replace(load_catalog(env="dev"), topics=())

    # plan: Kafka's topics are never "unmanaged" (nothing to import or delete).
    plan = make_plan(catalog, cluster)
    assert set(plan.unmanaged) == set(flags) - internal

    # delete-topic: refused for Kafka's topics, allowed for the others.
    for name in flags:
        refused = {r.code for r in make_delete_plan(catalog, cluster, [name]).refusals}
        assert ("internal" in refused) == (name in internal), name

    # cleanup: Kafka's topics are kept whatever their activity.
    evidence = [
        TopicEvidence(
            name=n,
            internal=f,
            in_catalog=False,
            partitions=1,
            replication_factor=1,
            bytes_on_disk=0,
            records=0,
            newest_record_ms=None,
            end_offsets=(0,),
            start_offsets=(0,),
        )
        for n, f in flags.items()
    ]
    decisions = decide(evidence, CleanupRules(patterns=("*-test",), delete_empty=True), NOW_MS)
    kept_as_internal = {d.topic for d in decisions if "internal topic" in d.reasons}
    assert kept_as_internal == internal
    assert not any(d.delete for d in decisions if d.topic in internal)

    # retention audit: the row says which are Kafka's (and holds them to no default policy).
    for name, flagged in flags.items():
        row = audit_topic(
            TopicObservation(
                name=name, partitions=1, replication_factor=1, configs={}, internal=flagged
            ),
            None,
            NOW_MS,
            3_600_000,
        )
        assert row.internal == (name in internal)

    # health: a single replica is a warning in production, for the platform's topics only.
    report = evaluate(
        HealthObservation(bootstrap="localhost:9092", env="prod", at_ms=NOW_MS, cluster=cluster)
    )
    warned = [f for f in report.findings if f.subject == "replication 1"]
    outside = len(set(flags) - internal)
    if outside:
        assert len(warned) == 1 and warned[0].message.startswith(f"{outside} topic(s)")
        assert not any(name in warned[0].message.split(": ", 1)[1].split(", ") for name in internal)
    else:
        assert warned == []
