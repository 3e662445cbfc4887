"""Reading what a metadata snapshot holds, and writing restored group offsets.

Every read is batched: topics and configs in one request each, groups listed once per
broker, described and their offsets fetched once per coordinator, end offsets once per
partition leader. ACLs and SCRAM users are read once; a cluster without an authorizer
gives no ACLs, which is recorded as a completeness flag, not a failure. SCRAM users are
recorded by name and mechanism only, never a secret. ACLs, SCRAM users and quotas are read
by the one access reader (`gateway.access`) and put in the snapshot's form here.
"""

import logging
import time
from dataclasses import dataclass, field

from ecap_ops.core.restore import GroupStatus
from ecap_ops.core.snapshot import group_entry, topic_entry
from ecap_ops.core.state import is_internal_topic
from ecap_ops.gateway import groups as group_reader
from ecap_ops.gateway.client import KafkaGateway

log = logging.getLogger(__name__)


@dataclass
class SnapshotInputs:
    """What the gateway read for a snapshot, before the core turns it into a document."""

    cluster_id: str
    broker_count: int
    topics: list[dict] = field(default_factory=list)
    groups: list[dict] = field(default_factory=list)
    acls: list[dict] = field(default_factory=list)
    scram_users: list[dict] = field(default_factory=list)
    quotas: list[dict] = field(default_factory=list)
    complete: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def read_topics(gw: KafkaGateway) -> tuple[list[dict], bool, list[str]]:
    """Every non-internal topic with partitions, replica assignment, overrides and id."""
    live = gw.topics(None)
    names = sorted(n for n, t in live.items() if not is_internal_topic(n, t.internal))
    overrides = gw.topic_overrides(names)
    topics, missing = [], []
    for name in names:
        parts = live[name].partitions
        assignment = [list(p.replicas) for p in parts]
        ov = overrides.get(name)
        if ov is None:
            missing.append(name)
        topics.append(
            topic_entry(
                name,
                len(parts),
                max((len(a) for a in assignment), default=0),
                assignment,
                None if ov is None else ov[0],
                live[name].topic_id,
            )
        )
    notes = (
        [f"the configs of {len(missing)} topic(s) could not be read: {', '.join(missing[:20])}"]
        if missing
        else []
    )
    return topics, not missing, notes


def _group_call(gw: KafkaGateway, doing: str, fn, wait_s: float = 15.0):
    """A group request, retried (bounded) while the group coordinator is still loading or
    moving, as on a fresh cluster before __consumer_offsets exists."""
    from kafka import errors as kerr

    retriable = (
        kerr.CoordinatorNotAvailableError,
        kerr.CoordinatorLoadInProgressError,
        kerr.NotCoordinatorError,
    )
    deadline = time.monotonic() + wait_s

    def attempt(admin):
        while True:
            try:
                return fn(admin)
            except retriable:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)

    return gw.call(doing, attempt)


def list_groups(gw: KafkaGateway) -> dict[str, dict]:
    """Every group on the cluster: id -> {state, protocol_type, type} (one ListGroups per
    broker), from the one group reader (`gateway.groups`), in the shape snapshots keep."""
    read = group_reader.read_groups(gw, describe=False, offsets=False)
    return {
        g: {"state": x.state, "protocol_type": x.protocol_type, "type": x.group_type}
        for g, x in read.listings.items()
    }


def describe_members(gw: KafkaGateway, group_ids: list[str]) -> dict[str, int | None]:
    """Live members of each group (None when the broker could not describe it, e.g. a
    KIP-848 group, or the group does not exist)."""
    if not group_ids:
        return {}
    read = group_reader.read_groups(gw, group_ids, offsets=False)
    return {g: read.group(g).member_count if g in read.listings else None for g in group_ids}


def group_offsets(gw: KafkaGateway, group_ids: list[str]) -> dict[str, dict[tuple[str, int], int]]:
    """Committed offsets of each group (one OffsetFetch per coordinator for all groups);
    KafkaRequestFailed when some group's offsets cannot be read."""
    if not group_ids:
        return {}
    read = group_reader.read_groups(gw, group_ids, describe=False).require_complete(describe=False)
    return {g: dict(read.committed.get(g, {})) for g in group_ids}


def read_groups(gw: KafkaGateway) -> tuple[list[dict], bool, list[str]]:
    """Every group with its committed offsets and each partition's end offset at that time."""
    read = group_reader.read_groups(gw)
    read_at_ms = int(time.time() * 1000)
    parts = sorted({tp for o in read.committed.values() for tp in o})
    ends = gw.offsets(parts, "latest") if parts else {}
    groups, notes = [], []
    for g in read.groups():
        entries = [
            {"topic": t, "partition": p, "offset": off, "end_offset": ends.get((t, p))}
            for (t, p), off in g.committed.items()
        ]
        groups.append(
            group_entry(
                g.group_id,
                read.listings[g.group_id].state,
                read.listings[g.group_id].protocol_type,
                g.member_count,
                entries,
                read_at_ms,
            )
        )
    missing = read.unread(describe=False)
    if missing:
        notes.append(
            f"committed offsets of {len(missing)} group(s) could not be read: {', '.join(missing[:20])}"
        )
    return groups, not missing, notes


def read_acls(gw: KafkaGateway) -> tuple[list[dict], bool, list[str]]:
    """Every ACL binding, from the one access reader (`gateway.access`), in the snapshot's
    form; a cluster without an authorizer gives ([], False, a note)."""
    from ecap_ops.core.snapshot_access import acl_entry
    from ecap_ops.gateway.access import read_acl_bindings

    bindings = read_acl_bindings(gw)
    if bindings is None:
        return (
            [],
            False,
            [
                "ACLs not available: the cluster has no authorizer (SecurityDisabledError), so there are none to record"
            ],
        )
    return [acl_entry(b) for b in sorted(bindings)], True, []


def read_scram_users(gw: KafkaGateway) -> tuple[list[dict], bool, list[str]]:
    """SCRAM users by name and mechanism (iterations too), from the one access reader;
    never a password, salt or key (Kafka does not give them out, and none is recorded)."""
    from ecap_ops.gateway.access import read_scram_users as read_users

    raw = read_users(gw)
    if raw is None:
        return (
            [],
            False,
            ["SCRAM users not available: the cluster did not answer DescribeUserScramCredentials"],
        )
    from ecap_ops.catalog.access import SCRAM_MECHANISMS

    users, notes = [], []
    for name, mechs in sorted(raw.items()):
        known = {m: i for m, i in mechs.items() if m in SCRAM_MECHANISMS}
        if len(known) < len(mechs):
            notes.append(
                f"SCRAM user {name[:60]}: a mechanism this ecap-ops does not know is left out"
            )
        users.append(
            {
                "name": name,
                "mechanisms": [{"mechanism": m, "iterations": i} for m, i in sorted(known.items())],
            }
        )
    return users, True, notes


def read_snapshot_inputs(gw: KafkaGateway) -> SnapshotInputs:
    """Everything a snapshot holds, read in a fixed number of batched requests."""
    cluster_id, _controller, brokers = gw.brokers()
    inputs = SnapshotInputs(cluster_id=cluster_id, broker_count=len(brokers))
    inputs.topics, inputs.complete["topic_configs"], notes = read_topics(gw)
    inputs.complete["topics"] = True
    inputs.notes += notes
    inputs.groups, inputs.complete["group_offsets"], notes = read_groups(gw)
    inputs.complete["groups"] = True
    inputs.notes += notes
    inputs.acls, inputs.complete["acls"], notes = read_acls(gw)
    inputs.notes += notes
    inputs.scram_users, inputs.complete["scram_users"], notes = read_scram_users(gw)
    inputs.notes += notes
    inputs.quotas, inputs.complete["quotas"], notes = read_quota_entries(gw)
    inputs.notes += notes
    return inputs


def quota_entries(quotas: dict) -> list[dict]:
    """Client quotas (entity -> values) in the snapshot's form."""
    return [
        {
            "entity": [{"type": t, "name": n} for t, n in entity],
            "values": dict(sorted(values.items())),
        }
        for entity, values in sorted(quotas.items())
    ]


def read_quota_entries(gw: KafkaGateway) -> tuple[list[dict], bool, list[str]]:
    """Every client quota, in the snapshot's form."""
    from ecap_ops.gateway.access import read_quotas

    quotas = read_quotas(gw)
    if quotas is None:
        return (
            [],
            False,
            ["client quotas not available: the cluster did not answer DescribeClientQuotas"],
        )
    return quota_entries(quotas), True, []


def read_group_status(gw: KafkaGateway, group_ids: list[str]) -> dict[str, GroupStatus]:
    """State, live members and committed offsets of the named groups that exist on the target."""
    read = group_reader.read_groups(gw, group_ids).require_complete(describe=False)
    return {
        g.group_id: GroupStatus(g.group_id, g.state, g.member_count, dict(g.committed))
        for g in read.groups()
    }


def write_group_offsets(
    gw: KafkaGateway, group_id: str, offsets: dict[tuple[str, int], int]
) -> dict[tuple[str, int], str | None]:
    """Commit offsets for an empty group; (topic, partition) -> None (done) or the broker's error."""
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    payload = {
        TopicPartition(t, p): OffsetAndMetadata(o, "restored by ecap-ops", None)
        for (t, p), o in offsets.items()
    }
    raw = _group_call(
        gw,
        f"writing offsets of group {group_id}",
        lambda a: a.alter_group_offsets(group_id, payload),
    )
    out: dict[tuple[str, int], str | None] = {}
    for tp, err in raw.items():
        name = getattr(err, "__name__", str(err))
        out[(tp.topic, tp.partition)] = None if name == "NoError" else name
    for tp in offsets:
        out.setdefault(tp, "no answer from the group coordinator for this partition")
    return out
