"""Catalog drift (core/drift.py): the catalog against an observed cluster, judged by the
plan; the same drift feeds the health check's catalog findings and `matches_catalog`.
Pure: no broker."""

import dataclasses

from ecap_ops.catalog import load_catalog
from ecap_ops.core.drift import catalog_drift, drift_rows
from ecap_ops.core.state import BrokerInfo, ClusterState, PartitionState, TopicState

CATALOG = load_catalog(env="dev")


def _matching(spec, **overrides) -> TopicState:
    parts = tuple(PartitionState(i, 1, (1,), (1,)) for i in range(spec.partitions))
    return TopicState(spec.name, parts, overrides={**spec.configs, **overrides})


def _cluster(topics) -> ClusterState:
    return ClusterState("cid", 1, (BrokerInfo(1, "h", 9092),), {t.name: t for t in topics})


def test_a_cluster_exactly_as_the_catalog_matches():
    d = catalog_drift(CATALOG, _cluster([_matching(s) for s in CATALOG.topics]))
    assert d.matches and d.missing == () and d.lines == ()
    assert all(drift_rows(s, _matching(s), d.plan.for_topic(s.name)) == [] for s in CATALOG.topics)


def test_missing_topics_are_listed_once_and_not_as_drift():
    tx = CATALOG.get("transactions")
    present = [_matching(s) for s in CATALOG.topics if s.name != tx.name]
    d = catalog_drift(CATALOG, _cluster(present))
    assert d.missing == (tx.name,) and d.lines == () and not d.matches
    assert drift_rows(tx, None, d.plan.for_topic(tx.name)) == [["exists", "yes", "no"]]


def test_a_changed_setting_is_one_line_and_one_row_with_both_values():
    tx = CATALOG.get("transactions")
    topics = [
        _matching(s, **({"retention.ms": "3600000"} if s.name == tx.name else {}))
        for s in CATALOG.topics
    ]
    d = catalog_drift(CATALOG, _cluster(topics))
    assert d.missing == () and len(d.lines) == 1 and "retention.ms" in d.lines[0]
    rows = drift_rows(
        tx, topics[[t.name for t in topics].index(tx.name)], d.plan.for_topic(tx.name)
    )
    assert rows == [["retention.ms", tx.configs["retention.ms"], "3600000"]]


def test_partition_and_replication_differences_are_rows_and_refusals_are_lines():
    tx = CATALOG.get("transactions")
    fewer = dataclasses.replace(
        _matching(tx),
        partitions=tuple(PartitionState(i, 1, (1, 2), (1, 2)) for i in range(tx.partitions + 2)),
    )
    topics = [fewer if s.name == tx.name else _matching(s) for s in CATALOG.topics]
    d = catalog_drift(CATALOG, _cluster(topics))
    rows = drift_rows(tx, fewer, d.plan.for_topic(tx.name))
    assert ["partitions", tx.partitions, tx.partitions + 2] in rows
    assert ["replication_factor", tx.replication_factor, 2] in rows
    # Kafka cannot remove partitions nor change replication here: refusals, one line each.
    assert len(d.lines) == 2 and all(tx.name in line for line in d.lines)
