"""The cross-cluster DR runbook of docs/disaster-recovery.md, walked as the on-call person
would: its command lines are read from the document, in order, and run as `ecap-ops`
processes against two real local clusters, the session's (`prod`) and the second one
(`dr`, the standby), with MirrorMaker 2 between them. Each command must exit as its comment
in the document says, and leave the clusters as the runbook promises, checked with kcat and
Kafka's own tools. A step heading or a command that disappears from the document fails here,
so the runbook and this test cannot drift apart silently."""

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from ecap_ops.localkafka.cluster import LocalCluster
from ecap_ops_tests.e2e_helpers import wait_for
from ecap_ops_tests.helpers import (
    consume_and_commit,
    kafka_tool,
    mirrored_pair,
    topic_name,
)

pytestmark = pytest.mark.kafka

DOC = Path(__file__).resolve().parent.parent / "docs" / "disaster-recovery.md"
SECTION = "## Cross-cluster DR: a real standby and MirrorMaker 2"
# The step headings, in order; each must stay in the section.
STEPS = (
    "### 1. Snapshot prod",
    "### 2. Drill into the standby",
    "### 3. Mirror the critical topics",
    "### 4. Check the replication",
    "### 5. Fail over: consumer offsets on the standby",
)
# What the runbook runs, step by step (the command as written, placeholders and comment
# left out). A command added, removed or reordered in the document fails the test until
# the walk below (and this list) follow it.
EXPECTED = (
    (1, "snapshot"),
    (2, "dr-drill"),
    (2, "restore"),
    (2, "restore --execute"),
    (3, "mirror start"),
    (3, "mirror status"),
    (5, "failover translate-offsets"),
    (5, "failover translate-offsets --execute"),
    (5, "mirror stop"),
    (5, "plan"),
)
OFFSET_LAG_MAX = 10
WAIT_S = 180.0
RECORDS = 120  # produced on prod into the first mirrored topic once MirrorMaker runs
LAGGING = 100  # of which a lagging group consumes and commits this many on prod
MORE = 6  # produced after the groups committed: the caught-up group is a few behind


# -- the runbook, read from the document -------------------------------------------------


@dataclass(frozen=True)
class Command:
    step: int
    line: str  # as written in the document, comment included
    command: str  # the command, comment left out
    exit_code: int  # the one its comment states (`exit N`); 0 when it states none

    @property
    def kind(self) -> str:
        """The command's words without placeholders, the cluster flag or the snapshot file."""
        words = [w for w in re.sub(r"\[[^\]]*\]", " ", self.command).split()[1:]]
        out, skip = [], False
        for w in words:
            if skip:
                skip = False
                continue
            if w in ("--cluster", "--to-cluster", "--file"):
                skip = True
                continue
            if w.endswith(".json"):
                continue
            out.append(w)
        return " ".join(out)


def read_runbook(text: str) -> list[Command]:
    """The section's indented `ecap-ops` lines, in order, with the step they belong to."""
    start = text.find("\n" + SECTION + "\n")
    assert start >= 0, f"{DOC.name}: the section {SECTION!r} is gone; the DR runbook test needs it"
    end = text.find("\n## ", start + len(SECTION) + 2)
    section = text[start : end if end >= 0 else len(text)]
    positions = []
    for heading in STEPS:
        at = section.find("\n" + heading)
        assert at >= 0, f"{DOC.name}: step heading {heading!r} is gone from {SECTION!r}"
        positions.append(at)
    assert positions == sorted(positions), f"{DOC.name}: the steps {STEPS} are out of order"
    commands = []
    offset = 0
    for raw in section.splitlines(keepends=True):
        here, offset = offset, offset + len(raw)
        line = raw.rstrip("\n")
        if not line.startswith("    ecap-ops "):
            continue
        step = sum(1 for p in positions if p < here)
        assert step >= 1, f"{DOC.name}: a command before step 1: {line.strip()!r}"
        command, _, comment = line.strip().partition("#")
        stated = re.search(r"\bexit (\d+)", comment)
        commands.append(
            Command(step, line.strip(), command.strip(), int(stated.group(1)) if stated else 0)
        )
    return commands


# The document's placeholders and what this test runs for them: one table, in the open.
def substitutions(snapshot: Path, groups: list[str]) -> dict[str, str]:
    return {
        "prod.json": str(snapshot),  # the snapshot file step 1 writes
        "[--from prod --to dr]": "--from prod --to dr",  # optional: named explicitly here
        "[--group G ...]": " ".join(f"--group {g}" for g in groups),  # they consumed on prod
    }


def scope(kind: str, topics: list[str]) -> list[str]:
    """The session's `prod` also holds other test modules' topics: the drill and the restore
    are kept to this test's own (`--topic`, as an on-call person keeps a restore to what
    matters), so the shared standby only ever sees them."""
    if kind.startswith(("dr-drill", "restore")):
        return [a for t in topics for a in ("--topic", t)]
    return []


# -- checks with kcat and Kafka's own tools ----------------------------------------------


def kcat_topics(bootstrap: str) -> dict[str, int]:
    """Every topic of a cluster with its partition count, from kcat's metadata."""
    out = subprocess.run(
        ["kcat", "-b", bootstrap, "-L", "-J", "-m", "30"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return {t["topic"]: len(t["partitions"]) for t in json.loads(out.stdout)["topics"]}


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    args = ["kcat", "-b", bootstrap, "-Q", "-m", "30"]
    for p in range(partitions):
        args += ["-t", f"{topic}:{p}:-1"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    found = re.findall(r"\[(\d+)\] offset (-?\d+)", out.stdout)
    assert len(found) == partitions, out.stdout
    return {int(p): int(o) for p, o in found}


def group_offsets(cluster: LocalCluster, group: str) -> dict[tuple[str, int], int]:
    """A group's committed offsets, from kafka-consumer-groups --describe ({} when none)."""
    out = kafka_tool(cluster, "kafka-consumer-groups", "--describe", "--group", group)
    if "does not exist" in out.stdout + out.stderr:
        return {}
    assert out.returncode == 0, out.stderr
    found = {}
    for row in out.stdout.splitlines():
        cols = row.split()
        if len(cols) >= 4 and cols[0] == group and cols[2].isdigit() and cols[3].isdigit():
            found[(cols[1], int(cols[2]))] = int(cols[3])
    return found


def checkpointed(bootstrap: str, group: str) -> set[tuple[str, int]]:
    """The (topic, partition)s of `group` in MirrorMaker's checkpoints topic on the standby
    (key: int16-length group, int16-length topic, int32 partition)."""
    c = KafkaConsumer(
        "prod.checkpoints.internal",
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    seen = set()
    try:
        for m in c:
            k = m.key or b""
            n = int.from_bytes(k[:2], "big")
            if k[2 : 2 + n].decode(errors="replace") != group:
                continue
            rest = k[2 + n :]
            t = int.from_bytes(rest[:2], "big")
            seen.add((rest[2 : 2 + t].decode(), int.from_bytes(rest[2 + t : 6 + t], "big")))
    finally:
        c.close()
    return seen


# -- the walk ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(kafka_cluster, kafka_cluster_b, tmp_path_factory) -> Iterator[dict]:
    """A clusters file naming the session's cluster `prod` (primary) and the second one `dr`
    (standby); a catalog of three fresh topics, two mirrored with short MirrorMaker
    intervals; state and snapshot folders of its own; the caller's KAFKA_*/ECAP_* unset.
    After the module, every topic that appeared on either cluster meanwhile (the runbook's
    and MirrorMaker's own: its checkpoints, offset syncs, Connect topics) is deleted, so the
    next user of the shared standby finds it as it was (no `prod.checkpoints.internal`)."""
    clusters = (kafka_cluster, kafka_cluster_b)
    before = [set(kcat_topics(c.bootstrap_servers)) for c in clusters]
    base = tmp_path_factory.mktemp("dr-runbook")
    names = {k: topic_name(f"runbook-{k}") for k in ("transactions", "fraud-alerts", "ledger")}
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ECAP_"))}
    environ |= mirrored_pair(
        base,
        kafka_cluster.bootstrap_servers,
        kafka_cluster_b.bootstrap_servers,
        {
            names["transactions"]: "{purpose: payments, partitions: 3, retention: 7d}",
            names["fraud-alerts"]: "{purpose: fraud alerts, partitions: 2, retention: 30d}",
            names["ledger"]: "{purpose: restored but not mirrored, partitions: 1}",
        },
        [names["transactions"], names["fraud-alerts"]],
        OFFSET_LAG_MAX,
    )
    yield {"environ": environ, "names": names, "base": base}
    for cluster, had in zip(clusters, before, strict=True):
        new = sorted(set(kcat_topics(cluster.bootstrap_servers)) - had)
        if not new:
            continue
        pattern = "^(" + "|".join(re.escape(n) for n in new) + ")$"
        out = kafka_tool(cluster, "kafka-topics", "--delete", "--topic", pattern)
        assert out.returncode == 0, out.stderr
        wait_for(
            f"{new} deleted from {cluster.bootstrap_servers}",
            lambda c=cluster, n=new: not set(n) & set(kcat_topics(c.bootstrap_servers)),
            timeout=WAIT_S,
            interval=2,
        )


def ecap_ops(env: dict, argv: list[str]) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, "-m", "ecap_ops", *argv],
        capture_output=True,
        text=True,
        env=env["environ"],
        cwd=env["base"],
        timeout=300,
    )
    assert "Traceback" not in out.stderr + out.stdout, f"ecap-ops {shlex.join(argv)}:\n{out.stderr}"
    return out


def test_the_cross_cluster_runbook_step_by_step(env, kafka_cluster, kafka_cluster_b):
    prod, dr = kafka_cluster, kafka_cluster_b
    names = env["names"]
    catalog_partitions = {names["transactions"]: 3, names["fraud-alerts"]: 2, names["ledger"]: 1}
    mirrored = [names["transactions"], names["fraud-alerts"]]
    # A group that keeps up with its topic, and one that lags behind it.
    caught_up, lagging = topic_name("runbook-payments"), topic_name("runbook-reports")
    snapshot = env["base"] / "prod.json"
    table = substitutions(snapshot, [caught_up, lagging])

    runbook = read_runbook(DOC.read_text())
    assert [(c.step, c.kind) for c in runbook] == list(EXPECTED), (
        f"{DOC.name}: the runbook's commands changed; this test walks {EXPECTED}, the document"
        f" now has {[(c.step, c.kind) for c in runbook]}"
    )
    for c in runbook:
        leftover = re.findall(r"\[[^\]]*\]|\bG\b", c.command)
        unknown = [x for x in leftover if x not in table]
        assert not unknown, f"{DOC.name}: placeholder(s) {unknown} in {c.line!r} not in the table"

    def run(c: Command) -> subprocess.CompletedProcess:
        text = c.command
        for placeholder, value in table.items():
            text = text.replace(placeholder, value)
        argv = shlex.split(text)
        assert argv[0] == "ecap-ops", c.line
        return ecap_ops(env, [*argv[1:], *scope(c.kind, list(catalog_partitions))])

    def expect(c: Command, out: subprocess.CompletedProcess) -> None:
        assert out.returncode == c.exit_code, (
            f"step {c.step}: {c.line!r} exited {out.returncode}, the runbook says {c.exit_code}"
            f"\nstdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-3000:]}"
        )

    # Before the runbook: prod holds the catalog's topics (as production does).
    out = ecap_ops(env, ["--cluster", "prod", "create-topics"])
    assert out.returncode == 0, out.stdout + out.stderr
    assert {n: kcat_topics(prod.bootstrap_servers).get(n) for n in catalog_partitions} == (
        catalog_partitions
    )
    on_dr_before = kcat_topics(dr.bootstrap_servers)
    assert not set(catalog_partitions) & set(on_dr_before)

    mirror_stop = ["mirror", "stop"]
    try:
        steps = iter(runbook)

        # 1. Snapshot prod.
        c = next(steps)
        expect(c, out := run(c))
        taken = {t["name"]: t["partitions"] for t in json.loads(snapshot.read_text())["topics"]}
        assert {n: taken.get(n) for n in catalog_partitions} == catalog_partitions, taken

        # 2. The drill into the standby leaves it as it was; the restore plans, then applies.
        c = next(steps)
        expect(c, out := run(c))
        assert "drill." in out.stdout, out.stdout
        assert kcat_topics(dr.bootstrap_servers) == on_dr_before, (
            "the drill left the standby changed"
        )
        c = next(steps)
        expect(c, out := run(c))
        assert kcat_topics(dr.bootstrap_servers) == on_dr_before, "the dry run changed the standby"
        c = next(steps)
        expect(c, out := run(c))
        after = kcat_topics(dr.bootstrap_servers)
        assert {n: after.get(n) for n in catalog_partitions} == catalog_partitions, after
        assert set(after) - set(on_dr_before) == set(catalog_partitions)

        # 3. Mirror the critical topics: records produced on prod reach the standby, and a
        # group consumes and commits on prod.
        c = next(steps)
        expect(c, out := run(c))
        p = KafkaProducer(bootstrap_servers=prod.bootstrap_servers, acks="all")
        for i in range(RECORDS):
            p.send(names["transactions"], key=f"k{i % 7}".encode(), value=f"v{i}".encode())
        for i in range(20):
            p.send(names["fraud-alerts"], value=f"alert{i}".encode())
        p.flush(60)
        p.close()
        tx = names["transactions"]
        for group, count in ((caught_up, RECORDS), (lagging, LAGGING)):
            got = consume_and_commit(prod.bootstrap_servers, tx, group, count, timeout=WAIT_S)
            assert got == count, f"{group} read {got} of {count} records of {tx}"
        p = KafkaProducer(bootstrap_servers=prod.bootstrap_servers, acks="all")
        for i in range(RECORDS, RECORDS + MORE):
            p.send(tx, key=f"k{i % 7}".encode(), value=f"v{i}".encode())
        p.flush(60)
        p.close()
        on_prod = {g: group_offsets(prod, g) for g in (caught_up, lagging)}
        assert sum(on_prod[caught_up].values()) == RECORDS, on_prod
        assert sum(on_prod[lagging].values()) == LAGGING, on_prod
        for topic in mirrored:
            n = catalog_partitions[topic]
            source = end_offsets(prod.bootstrap_servers, topic, n)
            wait_for(
                f"{topic}'s records on the standby",
                lambda t=topic, n=n, s=source: end_offsets(dr.bootstrap_servers, t, n) == s,
                timeout=WAIT_S,
                interval=2,
            )
        c = next(steps)  # `mirror status`: exit 0 once caught up
        last: list[subprocess.CompletedProcess] = []
        wait_for(
            "`mirror status` to report every mirrored topic OK",
            lambda: last.append(run(c)) or last[-1].returncode == c.exit_code,
            timeout=WAIT_S,
            interval=2,
            on_timeout=lambda: last[-1].stdout + last[-1].stderr if last else "",
        )
        expect(c, last[-1])

        # 4. Check the replication: per topic on the standby with the catalog's partitions,
        # nothing behind; the checkpoints topic; the group's checkpoints arriving.
        status = json.loads(ecap_ops(env, ["mirror", "status", "-o", "json"]).stdout)
        by = {t["topic"]: t for t in status["replication"]["topics"]}
        assert set(by) == set(mirrored), by
        for topic in mirrored:
            assert by[topic]["on_standby"] and by[topic]["records"] == 0, by[topic]
            assert by[topic]["standby_partitions"] == catalog_partitions[topic], by[topic]
        assert status["replication"]["checkpoints_topic"] == "prod.checkpoints.internal"
        for g in (caught_up, lagging):
            wait_for(
                f"MirrorMaker's checkpoints of group {g}",
                lambda g=g: checkpointed(dr.bootstrap_servers, g) >= set(on_prod[g]),
                timeout=WAIT_S,
                interval=2,
            )

        # 5. Fail over: the plan writes nothing; --execute gives each group, on the standby,
        # an offset on every partition it committed on prod, never after where it stopped.
        # (How far before depends on MirrorMaker's offset syncs: test_mirror.py holds the
        # offset_lag_max bound in a scene made for it; here a burst replicated at once
        # has left a caught-up group 22 records back, in a full run.)
        c = next(steps)
        expect(c, out := run(c))
        assert caught_up in out.stdout and lagging in out.stdout, out.stdout
        assert group_offsets(dr, caught_up) == group_offsets(dr, lagging) == {}, "dry run wrote"
        c = next(steps)
        expect(c, out := run(c))
        on_dr = {g: group_offsets(dr, g) for g in (caught_up, lagging)}
        for g in (caught_up, lagging):
            assert set(on_dr[g]) == set(on_prod[g]), (g, on_dr[g], on_prod[g])
            for tp, src in on_prod[g].items():
                assert 0 <= on_dr[g][tp] <= src, (g, tp, src, on_dr[g][tp])  # never after
        # After failing over: MirrorMaker stopped (its source is gone), the standby seen
        # against the catalog.
        c = next(steps)
        expect(c, out := run(c))
        assert ecap_ops(env, ["mirror", "status"]).returncode == 1  # no longer running
        c = next(steps)
        expect(c, out := run(c))
        assert next(steps, None) is None
    finally:
        stopped = ecap_ops(env, mirror_stop)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
