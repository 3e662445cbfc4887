"""The observed state of a cluster, as plain data the core's functions take.

The gateway reads these from Kafka; tests of pure logic build them by hand.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

# ecap-ops' own topic: the health check's produce-then-consume canary. Not unmanaged,
# never a cleanup candidate, left out of audits.
CANARY_TOPIC = "ecap-ops-canary"
# Kafka reserves names starting with "__" for its own topics (__consumer_offsets,
# __transaction_state, __share_group_state, __cluster_metadata, ...).
INTERNAL_PREFIX = "__"
# Where a config's value comes from when a topic-level override sets it (Kafka's name for
# the source); DEFAULT_CONFIG is Kafka's own default.
TOPIC_OVERRIDE_SOURCE = "DYNAMIC_TOPIC_CONFIG"
DEFAULT_SOURCE = "DEFAULT_CONFIG"


def is_internal_topic(name: str, flagged: bool | None = False) -> bool:
    """Whether a topic is one of Kafka's own: the broker flagged it internal (`flagged`, the
    metadata's is_internal) or its name has the prefix Kafka reserves for them. The one rule
    every command, job, check and plan uses; a flag a broker leaves off does not make an
    "__" topic ours to change."""
    return bool(flagged) or name.startswith(INTERNAL_PREFIX)


@dataclass(frozen=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True)
class PartitionState:
    partition: int
    leader: int | None  # None (or -1 on the wire) when the partition is offline
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline_replicas: tuple[int, ...] = ()


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: tuple[PartitionState, ...]
    # Topic-level overrides only (config source DYNAMIC_TOPIC_CONFIG): what we compare.
    overrides: dict[str, str] = field(default_factory=dict)
    # The value each overridden key would fall back to (the broker's or Kafka's default),
    # so a plan that removes an override can tell what the topic ends up with.
    defaults: dict[str, str] = field(default_factory=dict)
    internal: bool = False
    topic_id: str | None = None
    # Whether any partition holds records (end offset > start offset); None if unknown.
    has_data: bool | None = None

    @property
    def partition_count(self) -> int:
        return len(self.partitions)

    @property
    def replication_factor(self) -> int:
        return max((len(p.replicas) for p in self.partitions), default=0)

    def effective(self, key: str) -> str | None:
        return self.overrides.get(key, self.defaults.get(key))


def partition_leaders(topics: Mapping[str, TopicState]) -> dict[tuple[str, int], int | None]:
    """Each partition's leader (None: no leader), to route per-partition requests by
    metadata already read."""
    return {(name, p.partition): p.leader for name, t in topics.items() for p in t.partitions}


@dataclass(frozen=True)
class ConfigValue:
    """One config of a topic as the broker reports it: its value (None when the broker
    hides it, e.g. a sensitive one) and where it comes from (Kafka's name for the source:
    DYNAMIC_TOPIC_CONFIG, DYNAMIC_BROKER_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG, ...;
    None if the broker did not say)."""

    value: str | None
    source: str | None = None

    @property
    def is_default(self) -> bool:
        """Kafka's own default (or a source the broker did not name): nothing set it."""
        return self.source in (DEFAULT_SOURCE, None)

    @property
    def is_override(self) -> bool:
        """Set on the topic itself (a topic-level override)."""
        return self.source == TOPIC_OVERRIDE_SOURCE


@dataclass(frozen=True)
class ClusterState:
    cluster_id: str
    controller_id: int | None
    brokers: tuple[BrokerInfo, ...]
    topics: dict[str, TopicState]

    @property
    def broker_count(self) -> int:
        return len(self.brokers)
