"""Which cluster a set of Dagster definitions is about, and the names that follow from it.

The code location covers every cluster of the clusters file (docs/clusters.md). The
primary cluster (else the first one listed) is its home: it keeps every name of the
single-cluster code location (`kafka/<topic>`, `kafka_health_check`, resource `kafka`, ...)
so schedules, scripts and runbooks keep working when a clusters file is added. Every other
cluster gets its own set, built by the same area code with a `ClusterScope`:

- asset keys prefixed with the cluster: `dr/kafka/transactions`,
  `dr/ecap_ops/kafka_cluster_health`;
- job, schedule, sensor, op and group names prefixed: `dr__kafka_health_check`,
  `dr__consumer_lag_sensor`, group `dr__kafka_topics`;
- its own resource `kafka_<cluster>` (`kafka_dr`), handed to the same functions that take
  `kafka` (`bind`), so one cluster's run or tick never waits on another's;
- the tag `ecap_ops/cluster` and a `[dr · standby]` lead on descriptions, on every
  cluster's definitions including the home's, so each page says which cluster it is about.

`SINGLE` (no clusters file) changes nothing at all: names, keys, descriptions and tags are
exactly as they always were.
"""

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

CLUSTER_TAG = "ecap_ops/cluster"


@dataclass(frozen=True)
class ClusterScope:
    cluster: str | None = None  # None: the single-cluster code location
    role: str = ""
    prefixed: bool = False  # False: today's names (the single location, or the home cluster)

    @property
    def resource_key(self) -> str:
        return f"kafka_{self.cluster}" if self.prefixed else "kafka"

    def name(self, base: str) -> str:
        """A job, schedule, sensor, op or check-set name."""
        return f"{self.cluster}__{base}" if self.prefixed else base

    def group(self, base: str) -> str:
        return f"{self.cluster}__{base}" if self.prefixed else base

    def key(self, *path: str) -> dg.AssetKey:
        return dg.AssetKey([self.cluster, *path] if self.prefixed else list(path))

    def describe(self, text: str) -> str:
        """A description led by the cluster it is about (unchanged without clusters)."""
        if self.cluster is None:
            return text
        return f"[{self.cluster} · {self.role}] {text}"

    @property
    def tags(self) -> dict[str, str]:
        return {} if self.cluster is None else {CLUSTER_TAG: self.cluster}

    def bind(self, fn: Callable) -> Callable:
        """`fn` taking its Kafka resource as `kafka`, as Dagster should call it: with the
        parameter renamed to this cluster's resource key (Dagster finds resources by
        parameter name). The function itself is unchanged; SINGLE returns it as is."""
        return rekey(fn, {"kafka": self.resource_key})


def rekey(fn: Callable, keys: dict[str, str]) -> Callable:
    """`fn` with parameters renamed (`keys`: its name -> the resource key Dagster passes)."""
    keys = {old: new for old, new in keys.items() if old != new}
    if not keys:
        return fn
    sig = inspect.signature(fn)
    back = {new: old for old, new in keys.items()}

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for new, old in back.items():
            if new in kwargs:
                kwargs[old] = kwargs.pop(new)
        return fn(*args, **kwargs)

    params = [p.replace(name=keys.get(p.name, p.name)) for p in sig.parameters.values()]
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {keys.get(k, k): v for k, v in fn.__annotations__.items()}
    del wrapper.__wrapped__  # Dagster must see the renamed signature, not fn's
    return wrapper


SINGLE = ClusterScope()
