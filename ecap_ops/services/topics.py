"""Reading one topic in full, for describe-topic and the topic assets' metadata."""

from ecap_ops.catalog.model import Catalog
from ecap_ops.core.plan import make_plan
from ecap_ops.core.scope import topic_label
from ecap_ops.errors import EcapOpsError
from ecap_ops.gateway import KafkaGateway


class TopicNotFound(EcapOpsError):
    """The named topic does not exist on the cluster."""


def describe_topic(gateway: KafkaGateway, catalog: Catalog, name: str) -> dict:
    state = gateway.read_cluster_state([name])
    topic = state.topics.get(name)
    if topic is None:
        spec = catalog.get(name)
        hint = " It is in the catalog: `ecap-ops create-topics` creates it." if spec else ""
        raise TopicNotFound(f"topic {name!r} does not exist on cluster {state.cluster_id}.{hint}")
    ranges = gateway.offset_ranges(
        [(name, p.partition) for p in topic.partitions if p.leader is not None]
    )
    configs = gateway.all_topic_configs([name]).get(name, {})
    non_default = {
        k: {"value": c.value, "source": c.source} for k, c in configs.items() if not c.is_default
    }
    partitions = []
    for p in topic.partitions:
        start, end = ranges.get((name, p.partition), (None, None))
        partitions.append(
            {
                "partition": p.partition,
                "leader": p.leader,
                "replicas": list(p.replicas),
                "isr": list(p.isr),
                "offline_replicas": list(p.offline_replicas),
                "start_offset": start,
                "end_offset": end,
                "records": (end - start) if start is not None and end is not None else None,
            }
        )
    spec = catalog.get(name)
    drift = []
    if spec is not None and spec.name == name:
        p = make_plan(catalog.select([name]), state)
        for a in p.actions:
            drift.append(a.describe())
        for r in p.refusals:
            drift.append(r.message)
    records = [p["records"] for p in partitions]
    return {
        "name": name,
        "topic_id": topic.topic_id,
        "cluster_id": state.cluster_id,
        "internal": topic.internal,
        "catalog_status": topic_label(catalog, name, topic.internal),
        "replication_factor": topic.replication_factor,
        "partitions": partitions,
        "records": sum(records) if all(r is not None for r in records) else None,
        "configs": non_default,
        "overrides": dict(topic.overrides),
        "catalog": None
        if spec is None
        else {
            "key": spec.key,
            "purpose": spec.purpose,
            "partition_key": spec.partition_key,
            "partitions": spec.partitions,
            "replication_factor": spec.replication_factor,
            "configs": spec.configs,
        },
        "drift": drift,
    }
