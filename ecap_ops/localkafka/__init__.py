"""Local Kafka: real Apache Kafka (KRaft) from its Maven jars on loopback, for development and tests.

`fetch_jars` caches the jars, `LocalCluster` runs 1 or 3 nodes, `run_tool` runs Kafka's own
command-line tools against any cluster.
"""

from ecap_ops.localkafka.cluster import LocalCluster, free_port, free_ports
from ecap_ops.localkafka.jars import (
    KAFKA_VERSION,
    POM_PATH,
    cache_dir,
    fetch_jars,
    java_command,
    kafka_home,
    lib_dir,
)
from ecap_ops.localkafka.tools import TOOLS, run_tool, tool_command

__all__ = [
    "KAFKA_VERSION",
    "POM_PATH",
    "TOOLS",
    "LocalCluster",
    "cache_dir",
    "fetch_jars",
    "free_port",
    "free_ports",
    "java_command",
    "kafka_home",
    "lib_dir",
    "run_tool",
    "tool_command",
]
