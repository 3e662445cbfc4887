"""Check what flows through the catalog's topics against their contracts: one function that
the Dagster job, the asset checks and tests call.

Per topic: a bounded sample of its newest records (`gateway/sample.py`, no consumer group)
and its end offsets, judged by `core/contracts.py` together with the end offsets earlier
runs observed (`history`, kept by the caller). Returns the results, the history to keep,
and what the samples cost.
"""

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ecap_ops.catalog.contracts import contracts_of
from ecap_ops.catalog.model import Catalog
from ecap_ops.core.contracts import ContractResult, judge_topic
from ecap_ops.gateway.sample import DEFAULT_MAX_BYTES, DEFAULT_MAX_SECONDS, sample_topic


@dataclass(frozen=True)
class ContractsReport:
    results: list[ContractResult]
    history: dict
    samples: dict[str, dict] = field(default_factory=dict)  # topic -> bytes, records, seconds
    missing: tuple[str, ...] = ()  # catalog topics not on the cluster
    now: float = 0.0

    def for_topic(self, topic: str) -> dict[str, ContractResult]:
        return {r.check: r for r in self.results if r.topic == topic}


def check_contracts(
    gw,
    catalog: Catalog,
    history: Mapping | None = None,
    names: Iterable[str] | None = None,
    *,
    now: float | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> ContractsReport:
    """The contract checks of the catalog's topics (or those named), one sample each."""
    contracts = contracts_of(catalog)
    specs = [
        s for s in catalog.topics if names is None or s.name in set(names) or s.key in set(names)
    ]
    existing = gw.topics([s.name for s in specs])
    results: list[ContractResult] = []
    samples: dict[str, dict] = {}
    missing = []
    hist: dict = dict(history) if isinstance(history, Mapping) else {}
    for spec in specs:
        if spec.name not in existing:
            missing.append(spec.name)
            continue
        obs = sample_topic(gw, spec.name, max_bytes=max_bytes, max_seconds=max_seconds)
        at = time.time() if now is None else now
        rs, hist = judge_topic(spec, contracts.get(spec.key), catalog.env, obs, hist, at)
        results.extend(rs)
        samples[spec.name] = {
            "records": len(obs.records),
            "bytes": obs.bytes_read,
            "byte_cap": obs.byte_cap,
            "capped": obs.capped,
            "seconds": round(obs.seconds, 3),
        }
    return ContractsReport(
        results, hist, samples, tuple(missing), time.time() if now is None else now
    )
