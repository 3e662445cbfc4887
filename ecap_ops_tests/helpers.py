"""Helpers shared by the tests: free ports, unique names, and Kafka's own tools as a check."""

import re
import subprocess
import uuid

from ecap_ops.localkafka import LocalCluster, run_tool
from ecap_ops.localkafka.cluster import free_port
from ecap_ops.settings import KafkaSettings

__all__ = ["free_port", "kafka_tool", "topic_name"]


def topic_name(hint: str = "t") -> str:
    """A fresh topic-name-safe string starting with a readable hint."""
    safe = re.sub(r"[^a-zA-Z0-9._-]+", "-", hint).strip("-.")[:60] or "t"
    return f"{safe}-{uuid.uuid4().hex[:8]}"


def kafka_tool(
    target: LocalCluster | KafkaSettings | str,
    tool: str,
    *args: str,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """Run one of Kafka's own tools against a cluster, settings or bootstrap string; capture output."""
    if isinstance(target, LocalCluster):
        settings = KafkaSettings(bootstrap_servers=target.bootstrap_servers)
    elif isinstance(target, str):
        settings = KafkaSettings(bootstrap_servers=target)
    else:
        settings = target
    return run_tool(tool, list(args), settings, capture=True, timeout=timeout, input=input)
