"""What the benchmarks share: a local cluster of their own, Kafka's tools run the way
Kafka's scripts run them (for fair comparisons), and side-by-side tables."""

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from ecap_ops.localkafka import LocalCluster, fetch_jars, lib_dir
from ecap_ops.localkafka.jars import find_executable
from ecap_ops.localkafka.tools import tool_spec


@contextlib.contextmanager
def local_cluster(nodes: int = 1) -> Iterator[LocalCluster]:
    """A fresh local Kafka on free ports, removed afterwards."""
    fetch_jars()
    with tempfile.TemporaryDirectory(prefix="ecap-bench-") as tmp:
        cluster = LocalCluster(Path(tmp), nodes=nodes, port=0)
        cluster.start(timeout=180)
        try:
            yield cluster
        finally:
            cluster.stop()


def kafka_script_command(tool: str, args: Sequence[str]) -> list[str]:
    """The command bin/<tool>.sh runs (kafka-run-class.sh's JVM flags), for a fair reference."""
    return [
        find_executable("java"),
        "-Xmx256M",
        "-server",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-Djava.awt.headless=true",
        "-cp",
        str(lib_dir() / "*"),
        tool_spec(tool).main_class,
        *args,
    ]


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  " + "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=False)))
    print("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)))
