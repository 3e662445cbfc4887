"""Plan and apply the topic catalog against a cluster."""

import logging
from pathlib import Path

from ecap_ops.catalog.model import Catalog
from ecap_ops.core.integrity import signing_key_from_env
from ecap_ops.core.plan import Plan, data_matters, make_plan
from ecap_ops.core.saved_plan import (
    MAX_PLAN_BYTES,
    differences,
    parse_plan_file,
    plan_document,
    serialize_plan,
)
from ecap_ops.core.state import ClusterState
from ecap_ops.errors import PlanStale
from ecap_ops.gateway import KafkaGateway
from ecap_ops.services.write import WriteResult, execute_plan

log = logging.getLogger(__name__)


def observe(gateway: KafkaGateway, catalog: Catalog) -> ClusterState:
    """What the plan needs: the catalog's topics in full, every topic's name for the
    unmanaged report, and whether a topic holds data where the plan changes a config of
    it (`data_matters`: a no-op plan reads no offsets)."""
    state = gateway.read_cluster_state(catalog.names(), with_data=False)
    return gateway.with_data_presence(state, data_matters(catalog, state))


def plan_topics(
    gateway: KafkaGateway, catalog: Catalog, acknowledge_destructive: frozenset[str] = frozenset()
) -> Plan:
    return make_plan(catalog, observe(gateway, catalog), acknowledge_destructive)


# The result of an apply is the one write path's result.
ApplyResult = WriteResult


def load_saved_plan(path: str) -> dict:
    """Read and verify a plan file written by `ecap-ops plan --out` (checksum, and the
    signature when ECAP_SIGNING_KEY is set)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_PLAN_BYTES:
            raise PlanStale(
                f"plan file {path}: {size:,} bytes is more than a plan can be; not read"
            )
        data = p.read_bytes()
    except FileNotFoundError:
        raise PlanStale(f"plan file {path} does not exist") from None
    except IsADirectoryError:
        raise PlanStale(f"plan file {path} is a directory") from None
    except OSError as exc:
        raise PlanStale(f"plan file {path} cannot be read: {exc.strerror}") from None
    return parse_plan_file(data, f"plan file {path}", signing_key_from_env())


def save_plan(plan: Plan, acknowledge_destructive: frozenset[str], path: str) -> None:
    from ecap_ops.services.snapshot_files import write_atomically

    doc = plan_document(plan, acknowledge_destructive, signing_key_from_env())
    write_atomically(Path(path), serialize_plan(doc))


def apply_topics(
    gateway: KafkaGateway,
    catalog: Catalog,
    acknowledge_destructive: frozenset[str] = frozenset(),
    saved_plan: dict | None = None,
    dry_run: bool = False,
    purpose: str = "create-topics",
) -> WriteResult:
    """Compute the plan afresh and apply exactly it on the one write path. A saved plan
    (from `plan --out`) is applied only if what would be done now is exactly what it says:
    same actions and acknowledgements, catalog, environment, cluster and observed state.
    A dry run still has the brokers validate every step."""
    if saved_plan is not None and not acknowledge_destructive:
        acknowledge_destructive = frozenset(saved_plan.get("acknowledge_destructive", []))
    plan = plan_topics(gateway, catalog, acknowledge_destructive)
    if saved_plan is not None:
        diff = differences(saved_plan, plan, frozenset(acknowledge_destructive))
        if diff:
            raise PlanStale(
                "the saved plan is not what would be applied now, so nothing was applied:\n"
                + "\n".join(f"  - {d}" for d in diff)
                + "\nRun `ecap-ops plan --out FILE` again and review it."
            )
    return execute_plan(gateway, plan, purpose, dry_run=dry_run)
