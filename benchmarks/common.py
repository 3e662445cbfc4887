"""What the benchmarks share: a local cluster of their own, Kafka's tools run the way
Kafka's scripts run them (for fair comparisons), and side-by-side tables."""

import argparse
import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ecap_ops.localkafka import LocalCluster, fetch_jars, lib_dir
from ecap_ops.localkafka.jars import find_executable
from ecap_ops.localkafka.tools import tool_spec


@contextlib.contextmanager
def local_cluster(nodes: int = 1, heap: str | None = None) -> Iterator[LocalCluster]:
    """A fresh local Kafka on free ports, removed afterwards. `heap`: the broker's JVM heap
    (the default 512m does not hold ~8,000 topics; 10,000 need 2g)."""
    fetch_jars()
    with tempfile.TemporaryDirectory(prefix="ecap-bench-") as tmp:
        extra = {"heap": heap} if heap else {}
        cluster = LocalCluster(Path(tmp), nodes=nodes, port=0, **extra)
        cluster.start(timeout=600)
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


# -- sizes, whole processes, growth ---------------------------------------------------------


def add_size_args(ap: argparse.ArgumentParser, topics: bool = True, groups: bool = False) -> None:
    """`--topics N [N ...]` / `--groups N [N ...]`: the sizes to run (each on a fresh local
    cluster), and `--heap` for the broker (2g for 10,000 topics)."""
    if topics:
        ap.add_argument(
            "--topics", type=int, nargs="+", metavar="N", help="sizes in topics, e.g. 1000 10000"
        )
    if groups:
        ap.add_argument(
            "--groups", type=int, nargs="+", metavar="N", help="sizes in groups, e.g. 1000 10000"
        )
    ap.add_argument("--heap", default=None, help="the local broker's JVM heap (2g for 10,000)")


@dataclass
class Proc:
    """One whole process: wall time, peak resident memory, output."""

    seconds: float
    rss_mb: float
    returncode: int
    stdout: str
    stderr: str


GNU_TIME = "/usr/bin/time"


def run_process(
    cmd: Sequence[str], env: dict | None = None, timeout: float = 3600, ok=(0,)
) -> Proc:
    """Run `cmd` as a whole process and measure it: wall time, and peak RSS from the
    kernel's accounting of that one process, as `/usr/bin/time` reports it.

    Started through /usr/bin/time when it exists: a process's peak RSS counts the memory
    it had before its exec, and a child forked from this (possibly large) benchmark process
    would report this one's size instead of its own."""
    # One DescribeConfigs of 10,000 topics can take longer than the CLI's default request
    # timeout on a busy machine: the benchmarks measure the work, not the default wait.
    env = {**(os.environ if env is None else env)}
    env.setdefault("ECAP_KAFKA_REQUEST_TIMEOUT_MS", "120000")
    rss_file = tempfile.NamedTemporaryFile(prefix="ecap-bench-rss-", delete=False)
    rss_file.close()
    launch = list(cmd)
    if Path(GNU_TIME).exists():
        launch = [GNU_TIME, "-f", "%M", "-o", rss_file.name, *launch]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(launch, stdout=out, stderr=err, env=env)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        rss_kb = usage.ru_maxrss
        with contextlib.suppress(OSError, ValueError):
            reported = Path(rss_file.name).read_text().split()
            rss_kb = int(reported[-1]) if launch[0] == GNU_TIME and reported else rss_kb
        os.unlink(rss_file.name)
        result = Proc(
            seconds,
            rss_kb / 1024,
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )
    if result.returncode not in ok:
        raise SystemExit(
            f"{' '.join(map(str, cmd[:6]))}... failed ({result.returncode}): {result.stderr[-1500:]}"
        )
    return result


def ecap_ops_command() -> list[str]:
    """`ecap-ops` as installed next to this interpreter (else `python -m ecap_ops`)."""
    import sys

    script = Path(sys.executable).with_name("ecap-ops")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ecap_ops"]


def generated_catalog(path: Path, n: int, prefix: str = "bench") -> Path:
    """A catalog of `n` topics as the scale figures use: 1 partition, 3 overrides each."""
    lines = ["version: 1", "topics:"]
    for i in range(n):
        lines.append(
            f"  {prefix}-{i:05d}: {{partitions: 1, retention: {1 + i % 30}d, "
            "compression: lz4, max_message_size: 1MiB}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def print_growth(title: str, figures: dict[str, dict[int, float]]) -> None:
    """Seconds per 1,000 (topics or groups) for each measure over the sizes run: flat or
    falling means linear or better."""
    sizes = sorted({n for by_size in figures.values() for n in by_size})
    if not sizes:
        return
    rows = []
    for measure, by_size in figures.items():
        row = [measure]
        for n in sizes:
            row.append(f"{by_size[n] / n * 1000:.2f}" if n in by_size else "-")
        rows.append(row)
    print_table(
        f"{title}: seconds per 1,000 (flat or falling: linear or better)",
        ["measure", *[f"at {n:,}" for n in sizes]],
        rows,
    )


def wait_until_served(gw, names: Sequence[str], timeout_s: float = 900.0) -> float:
    """Wait, polling lightly, until every topic of `names` is in the broker's metadata with
    a leader for each partition and its partitions answer ListOffsets: at 10,000 topics the
    broker follows the controller's answer to a create by up to minutes on a busy machine.
    Returns the seconds waited. (Apply's own wait polls faster; a set-up need not.)"""
    from ecap_ops.errors import EcapOpsError

    started = time.monotonic()
    deadline = started + timeout_s
    while True:
        seen = gw.topics(names)
        if len(seen) == len(names) and all(
            p.leader is not None for t in seen.values() for p in t.partitions
        ):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(seen):,} of {len(names):,} topics have every leader")
        time.sleep(2)
    parts = [(n, p.partition) for n, t in seen.items() for p in t.partitions]
    for i in range(0, len(parts), 2000):
        while True:
            try:
                gw.offsets(parts[i : i + 2000], "latest", timeout_ms=20000)
                break
            except EcapOpsError:
                if time.monotonic() > deadline:
                    raise SystemExit("the new partitions are not served yet") from None
                time.sleep(5)
    return time.monotonic() - started


# The local broker keeps about one file open per partition, and this machine allows a
# process 20,000 open files (`ulimit -Hn`): past that the broker dies ("Too many open
# files"). Populations of 1-3 partitions a topic keep under this many in all.
PARTITIONS_MAX = 14_000


def partitions_for(i: int, n: int) -> int:
    """Partitions of the i-th of n generated topics: 1-3 (1 + i % 3) while n topics stay
    under PARTITIONS_MAX that way, else 1, and 2 on every tenth topic."""
    if 2 * n <= PARTITIONS_MAX:
        return 1 + i % 3
    return 2 if i % 10 == 0 else 1


def populate_topics(gw, n_topics: int) -> list[str]:
    """`n_topics` topics `bench.t00000`... on a cluster through a `KafkaGateway`, 1,000 a
    request: `partitions_for` partitions each, replication 1, and a retention of 1-5 hours;
    their names in order."""
    names = [f"bench.t{i:05d}" for i in range(n_topics)]
    for i in range(0, n_topics, 1000):
        batch = {
            name: {
                "num_partitions": partitions_for(j, n_topics),
                "replication_factor": 1,
                "configs": {"retention.ms": str(3_600_000 * (1 + j % 5))},
            }
            for j, name in enumerate(names[i : i + 1000], start=i)
        }
        gw.require(gw.create_topics(batch), "creating benchmark topics")
    return names


def populated_partitions(n_topics: int) -> int:
    """How many partitions `populate_topics` makes for `n_topics` topics."""
    return sum(partitions_for(i, n_topics) for i in range(n_topics))
