"""The one partition-health rule: which partitions are offline, under-replicated or below
their topic's min.insync.replicas.

Used by the health check's partition findings and, through its report, by the topic
assets' `availability` and `replication` checks, and by the topic assets' metadata. The
min.insync.replicas a topic is held to is its own override, else the brokers' value (read
once by the gateway), else Kafka's default. Pure.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ecap_ops.core.plan import KAFKA_DEFAULTS
from ecap_ops.core.state import PartitionState, TopicState

MIN_ISR_KEY = "min.insync.replicas"
KAFKA_DEFAULT_MIN_ISR = int(KAFKA_DEFAULTS[MIN_ISR_KEY])


def effective_min_isr(topic: TopicState, broker_min_isr: int | None = None) -> int:
    """The min.insync.replicas `topic` is held to: its override, else the brokers' value,
    else Kafka's default (1). An override that is not a number falls back the same way."""
    fallback = broker_min_isr if broker_min_isr is not None else KAFKA_DEFAULT_MIN_ISR
    raw = topic.overrides.get(MIN_ISR_KEY)
    try:
        return int(raw) if raw is not None else fallback
    except ValueError:
        return fallback


@dataclass(frozen=True)
class TopicPartitionHealth:
    """One topic's partitions per problem kind (partition numbers, in the topic's order)."""

    offline: list[int]  # no leader: neither readable nor writable
    under_replicated: list[int]  # fewer replicas in sync than assigned
    under_min_isr: list[int]  # fewer in sync than min.insync.replicas: acks=all fails

    @property
    def healthy(self) -> bool:
        return not (self.offline or self.under_replicated or self.under_min_isr)


def topic_partition_health(
    partitions: Iterable[PartitionState], min_isr: int
) -> TopicPartitionHealth:
    """The rule, for the partitions of one topic held to `min_isr`."""
    offline, under, under_min = [], [], []
    for p in partitions:
        if p.leader is None:
            offline.append(p.partition)
        if len(p.isr) < len(p.replicas):
            under.append(p.partition)
        if len(p.isr) < min_isr:
            under_min.append(p.partition)
    return TopicPartitionHealth(offline, under, under_min)


@dataclass(frozen=True)
class PartitionHealth:
    """Every topic's problems: topic -> partitions, per kind; topics without one left out."""

    offline: dict[str, list[int]]
    under_replicated: dict[str, list[int]]
    under_min_isr: dict[str, list[int]]

    @property
    def healthy(self) -> bool:
        return not (self.offline or self.under_replicated or self.under_min_isr)

    def counts(self) -> dict[str, int]:
        """Partitions per kind, under the names the health metrics use."""
        return {
            "under_replicated_partitions": sum(map(len, self.under_replicated.values())),
            "under_min_isr_partitions": sum(map(len, self.under_min_isr.values())),
            "offline_partitions": sum(map(len, self.offline.values())),
        }


def partition_health(
    topics: Mapping[str, TopicState], broker_min_isr: int | None = None
) -> PartitionHealth:
    """The rule over every topic, each held to its effective min.insync.replicas."""
    offline: dict[str, list[int]] = {}
    under: dict[str, list[int]] = {}
    under_min: dict[str, list[int]] = {}
    for name, topic in sorted(topics.items()):
        h = topic_partition_health(topic.partitions, effective_min_isr(topic, broker_min_isr))
        for found, parts in (
            (offline, h.offline),
            (under, h.under_replicated),
            (under_min, h.under_min_isr),
        ):
            if parts:
                found[name] = parts
    return PartitionHealth(offline, under, under_min)
