"""The catalog as typed objects: what every topic should look like on one environment."""

from dataclasses import dataclass, field

from ecap_ops.catalog.access import AccessSpec


@dataclass(frozen=True)
class LagThresholds:
    """When a consumer group's lag on a topic becomes a warning or critical."""

    warn_seconds: float
    crit_seconds: float
    warn_msgs: int
    stall_after_seconds: float
    # fraud-alerts: any lag past the warning level is critical at once.
    critical_at_once: bool = False


@dataclass(frozen=True)
class ExpectedVolume:
    min_per_hour: int
    max_per_hour: int


@dataclass(frozen=True)
class TopicSpec:
    """One declared topic, resolved for an environment (prefix, replication, overrides)."""

    key: str  # its name in the catalog file
    name: str  # its name on the cluster (the environment's prefix applied)
    purpose: str
    partitions: int
    replication_factor: int
    # Topic-level overrides in Kafka's own string form: the only configs we compare and
    # write, so broker defaults are never pinned onto topics.
    configs: dict[str, str]
    partition_key: str | None
    expected_volume: ExpectedVolume | None
    lag: LagThresholds
    transactional: bool = False

    @property
    def retention_ms(self) -> int | None:
        v = self.configs.get("retention.ms")
        return int(v) if v is not None else None

    @property
    def max_message_bytes(self) -> int | None:
        v = self.configs.get("max.message.bytes")
        return int(v) if v is not None else None

    @property
    def cleanup_policy(self) -> str:
        return self.configs.get("cleanup.policy", "delete")

    @property
    def compacted(self) -> bool:
        return "compact" in self.cleanup_policy.split(",")

    @property
    def retention_deletes(self) -> bool:
        """Whether retention.ms removes data: only with `delete` in the cleanup policy."""
        return "delete" in self.cleanup_policy.split(",")


@dataclass(frozen=True)
class Catalog:
    env: str
    source: str
    name_prefix: str
    topics: tuple[TopicSpec, ...]
    lag_defaults: LagThresholds
    digest: str  # SHA-256 of the resolved catalog, recorded in snapshots and metadata
    environments: tuple[str, ...] = field(default=("dev", "prod"))
    # Declared ACLs, SCRAM users and quotas (catalog/access.py); empty when not declared.
    access: AccessSpec = field(default_factory=AccessSpec)

    def names(self) -> list[str]:
        return [t.name for t in self.topics]

    def get(self, name: str) -> TopicSpec | None:
        """A topic by cluster name or by catalog key."""
        for t in self.topics:
            if t.name == name or t.key == name:
                return t
        return None

    def lag_for(self, topic: str) -> LagThresholds:
        spec = self.get(topic)
        return spec.lag if spec else self.lag_defaults

    def select(self, names: list[str]) -> "Catalog":
        """The same catalog limited to some topics (by cluster name or key)."""
        chosen = tuple(t for t in self.topics if t.name in names or t.key in names)
        return Catalog(
            self.env,
            self.source,
            self.name_prefix,
            chosen,
            self.lag_defaults,
            self.digest,
            self.environments,
            self.access,
        )
