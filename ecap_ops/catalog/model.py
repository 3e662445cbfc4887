"""The catalog as typed objects: what every topic should look like on one environment."""

import fnmatch
import re
from dataclasses import dataclass, field

from ecap_ops.catalog.access import AccessSpec
from ecap_ops.catalog.contracts import Contracts


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


# What a scope pattern may hold: the characters of a topic name and shell-style wildcards
# (`*`, `?`, `[...]`, `[!...]`). Matching is case-sensitive, as topic names are.
PATTERN_CHARS = re.compile(r"[a-zA-Z0-9._*?\[\]!-]+")
MAX_PATTERN_CHARS = 249  # Kafka's longest topic name
MAX_PATTERNS = 100


def pattern_problem(pattern: object) -> str | None:
    """Why `pattern` cannot be a shell-style topic pattern (None: it can)."""
    from ecap_ops.catalog.units import show

    if not isinstance(pattern, str):
        return f"must be a topic name pattern in quotes (such as 'team-a.*'), got {show(pattern)}"
    if not pattern:
        return "is empty; write a topic name pattern such as 'team-a.*'"
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"is longer than {MAX_PATTERN_CHARS} characters (Kafka's longest topic name): {show(pattern)}"
    if not PATTERN_CHARS.fullmatch(pattern):
        return (
            f"{show(pattern)} may hold only the characters of topic names (letters, digits, "
            "'.', '_', '-') and the wildcards *, ?, [...], [!...]"
        )
    return None


def compile_patterns(patterns: tuple[str, ...]) -> "re.Pattern[str] | None":
    """One regular expression matching a name that any of the shell-style `patterns` match
    (None for no pattern). Python's fnmatch translation never backtracks catastrophically."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


@dataclass(frozen=True)
class Scope:
    """Which topics a catalog manages: names matching an `include` pattern (every name when
    there is none) and no `exclude` pattern. A topic outside the scope is left alone by
    every command, job, check and audit: never created, changed, deleted or reported."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    _include_re: "re.Pattern[str] | None" = field(default=None, compare=False, repr=False)
    _exclude_re: "re.Pattern[str] | None" = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_include_re", compile_patterns(self.include))
        object.__setattr__(self, "_exclude_re", compile_patterns(self.exclude))

    @property
    def declared(self) -> bool:
        """Whether the catalog limits its scope (else it manages every topic)."""
        return bool(self.include or self.exclude)

    def covers(self, name: str) -> bool:
        if self._include_re is not None and self._include_re.match(name) is None:
            return False
        return self._exclude_re is None or self._exclude_re.match(name) is None

    def describe(self) -> str:
        """The scope in one line, for the outputs of commands, checks and audits."""
        if not self.declared:
            return "every topic"
        parts = ["topics matching " + ", ".join(self.include) if self.include else "every topic"]
        if self.exclude:
            parts.append("except " + ", ".join(self.exclude))
        return " ".join(parts)

    def to_dict(self) -> dict:
        return {"include": list(self.include), "exclude": list(self.exclude)}


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
    # The topics this catalog manages (`scope:`); by default every topic.
    scope: Scope = field(default_factory=Scope)
    # What flows through each topic (catalog/contracts.py): every topic's contract by its
    # catalog key, set by the loader; empty on a catalog built by hand.
    contracts: Contracts = field(default_factory=Contracts)

    def manages(self, topic: str) -> bool:
        """Whether `topic` is within the catalog's scope: the one rule every plan, check,
        audit and command uses before reporting a topic as unmanaged or touching it.
        The catalog's own topics are always within it (the catalog is validated so)."""
        return self.scope.covers(topic)

    def scope_summary(self, topics: "list[str] | None" = None) -> str:
        """The scope in one line; with the names of the topics seen, how many it leaves out."""
        line = f"scope: {self.scope.describe()}"
        if topics is not None and self.scope.declared:
            left = sum(1 for t in topics if not self.scope.covers(t))
            line += f" ({left} other topic(s) outside it left alone)"
        return line

    def names(self) -> list[str]:
        return [t.name for t in self.topics]

    def _index(self) -> dict[str, TopicSpec]:
        """Topics by cluster name and by catalog key (the first in catalog order, as a scan
        finds it), built once: `get` costs O(1), so 10,000 topics are not 10,000 scans of
        10,000."""
        index = self.__dict__.get("_by_name")
        if index is None:
            index = {}
            for t in self.topics:
                index.setdefault(t.name, t)
                index.setdefault(t.key, t)
            object.__setattr__(self, "_by_name", index)
        return index

    def get(self, name: str) -> TopicSpec | None:
        """A topic by cluster name or by catalog key."""
        return self._index().get(name)

    def lag_for(self, topic: str) -> LagThresholds:
        spec = self.get(topic)
        return spec.lag if spec else self.lag_defaults

    def select(self, names: list[str]) -> "Catalog":
        """The same catalog limited to some topics (by cluster name or key)."""
        wanted = set(names)
        chosen = tuple(t for t in self.topics if t.name in wanted or t.key in wanted)
        return Catalog(
            self.env,
            self.source,
            self.name_prefix,
            chosen,
            self.lag_defaults,
            self.digest,
            self.environments,
            self.access,
            self.scope,
            Contracts(
                {
                    t.key: self.contracts.by_topic[t.key]
                    for t in chosen
                    if t.key in self.contracts.by_topic
                }
            ),
        )
