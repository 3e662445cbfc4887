"""Access-as-code benchmarks (issue 14), beside Kafka's own tool in the same run.

A fresh secured local cluster (SASL_SSL, SCRAM-SHA-512 over TLS, StandardAuthorizer, an
`admin` super user: what `ecap-ops broker start --secure` runs) and a generated catalog of
N ACL bindings (N/4 principals, four operations each on a topic of their own). Measured:

1. In process, as admin: the plan of N bindings to create (with the local validation
   `access plan` runs), the apply of that plan on the one write path (validation, ordered
   steps, read-back verification, change log), and the no-op plan after it: wall time and
   requests sent by type (CreateAcls is batched, not one request per binding).
2. Whole process, median of R runs: `ecap-ops access plan` (the no-op, exit 0) next to
   Kafka's own `kafka-acls --list` of every binding (the JVM flags of kafka-acls.sh), both
   logged in as admin over SASL_SSL.

Usage: python benchmarks/bench_access.py [--quick]   (--quick: 200 bindings, 3 runs)
"""

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import kafka_script_command, print_table  # noqa: E402
from ecap_ops.catalog import parse_catalog  # noqa: E402
from ecap_ops.gateway import KafkaGateway  # noqa: E402
from ecap_ops.localkafka import LocalCluster, fetch_jars  # noqa: E402
from ecap_ops.localkafka.security import SecureListener  # noqa: E402
from ecap_ops.localkafka.tools import config_path, open_client_properties  # noqa: E402
from ecap_ops.services.access import apply_catalog_access, plan_catalog_access  # noqa: E402
from ecap_ops.services.write import validate_plan  # noqa: E402

OPERATIONS = ("read", "write", "describe", "describe_configs")


def catalog_text(n_bindings: int) -> str:
    lines = ["version: 1", "topics:", "  bench-topic: {partitions: 1, retention: 1d}", "acls:"]
    for i in range(n_bindings // len(OPERATIONS)):
        lines.append(
            f"  - {{principal: 'User:svc-{i:04d}', resource: topic, name: bench-t{i:04d}, "
            f"operations: [{', '.join(OPERATIONS)}]}}"
        )
    return "\n".join(lines) + "\n"


def by_type(requests: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(requests.items()) if v)


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def median_run(cmd: list[str], env: dict, runs: int, ok=(0,), pass_fds=()) -> tuple[float, str]:
    times, out = [], None
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, pass_fds=pass_fds)
        times.append(time.perf_counter() - started)
        if out.returncode not in ok:
            raise SystemExit(f"{' '.join(cmd[:4])}... exit {out.returncode}: {out.stderr[-800:]}")
    return statistics.median(times), out.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="200 bindings and 3 runs")
    args = ap.parse_args()
    n = 200 if args.quick else 1000
    runs = 3 if args.quick else 5
    fetch_jars()
    with tempfile.TemporaryDirectory(prefix="ecap-bench-access-") as tmp:
        # The change log and any pre-change snapshot go here, not into the user's files.
        os.environ["ECAP_CHANGE_LOG"] = str(Path(tmp) / "change.log")
        os.environ["ECAP_SNAPSHOT_DIR"] = str(Path(tmp) / "snapshots")
        os.environ["ECAP_STATE_DIR"] = str(Path(tmp) / "state")
        security = SecureListener(
            users={"admin": secrets.token_urlsafe(18)}, tls=True, authorizer=True
        )
        cluster = LocalCluster(Path(tmp) / "kafka", nodes=1, port=0, security=security)
        cluster.start(timeout=180)
        try:
            run(cluster, Path(tmp), n, runs)
        finally:
            cluster.stop()


def run(cluster: LocalCluster, tmp: Path, n: int, runs: int) -> None:
    settings = cluster.client_settings("admin", request_timeout_ms=60000)
    text = catalog_text(n)
    catalog = parse_catalog(text, env="dev", source="generated")
    assert len(catalog.access.bindings()) == n
    rows = []
    with KafkaGateway(settings) as gw:
        before = dict(gw.requests)
        started = time.perf_counter()
        ap = plan_catalog_access(gw, catalog)
        problems = validate_plan(gw, ap.plan)
        seconds = time.perf_counter() - started
        assert not problems and sum(len(a.acls) for a in ap.plan.actions) == n, problems[:3]
        reqs = delta(dict(gw.requests), before)
    rows.append(
        [f"plan: {n:,} bindings to create", f"{seconds:.2f} s", sum(reqs.values()), by_type(reqs)]
    )

    with KafkaGateway(settings) as gw:
        before = dict(gw.requests)
        started = time.perf_counter()
        _ap, result = apply_catalog_access(gw, catalog)
        seconds = time.perf_counter() - started
        assert result.ok, (result.failed[:3], result.verify_problems[:3])
        reqs = delta(dict(gw.requests), before)
    rows.append(
        [
            f"apply (validate, create, verify): {n:,}",
            f"{seconds:.2f} s",
            sum(reqs.values()),
            by_type(reqs),
        ]
    )

    with KafkaGateway(settings) as gw:
        before = dict(gw.requests)
        started = time.perf_counter()
        ap = plan_catalog_access(gw, catalog)
        seconds = time.perf_counter() - started
        assert not ap.plan.actions and ap.report.in_sync == n, ap.plan.actions[:3]
        reqs = delta(dict(gw.requests), before)
    rows.append(["no-op plan after it", f"{seconds:.2f} s", sum(reqs.values()), by_type(reqs)])
    print_table(
        f"1. Access as code, {n:,} ACL bindings on a secured cluster (in process, as admin)",
        ["step", "wall time", "requests", "by type"],
        rows,
    )

    path = tmp / "catalog.yaml"
    path.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=settings.bootstrap_servers,
        KAFKA_SECURITY_PROTOCOL=settings.security_protocol,
        KAFKA_SASL_MECHANISM=settings.sasl_mechanism or "",
        KAFKA_SASL_USERNAME=settings.sasl_username or "",
        KAFKA_SASL_PASSWORD=settings.sasl_password or "",
        KAFKA_SSL_CAFILE=settings.ssl_cafile or "",
        ECAP_CATALOG=str(path),
        ECAP_ENV="dev",
    )
    ours, _ = median_run([sys.executable, "-m", "ecap_ops", "access", "plan"], env, runs)
    fd = open_client_properties(settings.java_client_properties())
    try:
        cmd = kafka_script_command(
            "kafka-acls",
            [
                "--bootstrap-server", settings.bootstrap_servers,
                "--command-config", config_path(fd),
                "--list",
            ],
        )  # fmt: skip
        theirs, listed = median_run(cmd, env, runs, pass_fds=(fd,))
    finally:
        os.close(fd)
    shown = listed.count("(principal=")
    assert shown >= n, f"kafka-acls listed {shown} binding(s), expected {n}"
    print_table(
        f"2. Reading {n:,} bindings, whole process (median of {runs})",
        ["tool", "wall time", "what it does"],
        [
            ["ecap-ops access plan", f"{ours:.2f} s", "reads ACLs, users, quotas; compares"],
            ["kafka-acls --list (Kafka 4.4)", f"{theirs:.2f} s", f"lists {shown:,} binding(s)"],
            ["ratio (kafka-acls / ecap-ops)", f"{theirs / ours:.1f}x", ""],
        ],
    )


if __name__ == "__main__":
    main()
