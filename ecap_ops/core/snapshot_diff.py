"""What changed between two snapshots: topics, partitions, replication, configs, group
offsets, ACLs, SCRAM users and client quotas; and the diff as people read it. Pure."""

import json
from dataclasses import asdict, dataclass, field

from ecap_ops.catalog.access import entity_label
from ecap_ops.catalog.kafka_configs import canonical_value
from ecap_ops.core.snapshot_access import snapshot_access
from ecap_ops.core.snapshot_doc import Snapshot


@dataclass
class SnapshotDiff:
    """What changed from snapshot `a` to snapshot `b` (topic ids, times and end offsets are not compared)."""

    a: str
    b: str
    topics_added: list[str] = field(default_factory=list)
    topics_removed: list[str] = field(default_factory=list)
    partition_changes: list[dict] = field(default_factory=list)  # {topic, old, new}
    replication_changes: list[dict] = field(default_factory=list)
    config_changes: list[dict] = field(default_factory=list)  # {topic, key, old, new}
    groups_added: list[str] = field(default_factory=list)
    groups_removed: list[str] = field(default_factory=list)
    offset_changes: list[dict] = field(default_factory=list)  # {group, topic, partition, old, new}
    acls_added: int = 0
    acls_removed: int = 0
    users_added: list[str] = field(default_factory=list)
    users_removed: list[str] = field(default_factory=list)
    # {entity, key, old, new}; compared only when both snapshots recorded quotas.
    quota_changes: list[dict] = field(default_factory=list)
    other_cluster: bool = False

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.topics_added,
                self.topics_removed,
                self.partition_changes,
                self.replication_changes,
                self.config_changes,
                self.groups_added,
                self.groups_removed,
                self.offset_changes,
                self.acls_added,
                self.acls_removed,
                self.users_added,
                self.users_removed,
                self.quota_changes,
            )
        )

    def counts(self) -> dict[str, int]:
        return {
            "topics_added": len(self.topics_added),
            "topics_removed": len(self.topics_removed),
            "partition_changes": len(self.partition_changes),
            "replication_changes": len(self.replication_changes),
            "config_changes": len(self.config_changes),
            "groups_added": len(self.groups_added),
            "groups_removed": len(self.groups_removed),
            "offset_changes": len(self.offset_changes),
            "acls_added": self.acls_added,
            "acls_removed": self.acls_removed,
            "users_added": len(self.users_added),
            "users_removed": len(self.users_removed),
            "quota_changes": len(self.quota_changes),
        }

    def to_dict(self) -> dict:
        return {**asdict(self), "empty": self.empty, "counts": self.counts()}


def _same_config(key: str, a: str | None, b: str | None) -> bool:
    return canonical_value(key, a) == canonical_value(key, b)


def diff_snapshots(a: Snapshot, b: Snapshot) -> SnapshotDiff:
    """Topics added or removed, partition, replication and config changes, group offsets, ACLs, users."""
    d = SnapshotDiff(a=a.source, b=b.source, other_cluster=a.cluster_id != b.cluster_id)
    ta, tb = a.topics, b.topics
    d.topics_added = sorted(set(tb) - set(ta))
    d.topics_removed = sorted(set(ta) - set(tb))
    for name in sorted(set(ta) & set(tb)):
        x, y = ta[name], tb[name]
        if x["partitions"] != y["partitions"]:
            d.partition_changes.append(
                {"topic": name, "old": x["partitions"], "new": y["partitions"]}
            )
        if x["replication_factor"] != y["replication_factor"]:
            d.replication_changes.append(
                {"topic": name, "old": x["replication_factor"], "new": y["replication_factor"]}
            )
        ox, oy = x["overrides"], y["overrides"]
        if ox is None or oy is None:
            if (ox is None) != (oy is None):
                d.config_changes.append(
                    {
                        "topic": name,
                        "key": "*",
                        "old": "unknown" if ox is None else "recorded",
                        "new": "unknown" if oy is None else "recorded",
                    }
                )
            continue
        for key in sorted(set(ox) | set(oy)):
            if not _same_config(key, ox.get(key), oy.get(key)):
                d.config_changes.append(
                    {"topic": name, "key": key, "old": ox.get(key), "new": oy.get(key)}
                )
    ga, gb = a.groups, b.groups
    d.groups_added = sorted(set(gb) - set(ga))
    d.groups_removed = sorted(set(ga) - set(gb))
    for gid in sorted(set(ga) & set(gb)):
        oa = {(o["topic"], o["partition"]): o["offset"] for o in ga[gid]["offsets"]}
        ob = {(o["topic"], o["partition"]): o["offset"] for o in gb[gid]["offsets"]}
        for tp in sorted(set(oa) | set(ob)):
            if oa.get(tp) != ob.get(tp):
                d.offset_changes.append(
                    {
                        "group": gid,
                        "topic": tp[0],
                        "partition": tp[1],
                        "old": oa.get(tp),
                        "new": ob.get(tp),
                    }
                )
    acl_a = {json.dumps(x, sort_keys=True) for x in a.doc["acls"]}
    acl_b = {json.dumps(x, sort_keys=True) for x in b.doc["acls"]}
    d.acls_added, d.acls_removed = len(acl_b - acl_a), len(acl_a - acl_b)
    ua = {u["name"]: u for u in a.doc["scram_users"]}
    ub = {u["name"]: u for u in b.doc["scram_users"]}
    d.users_added = sorted(set(ub) - set(ua))
    d.users_removed = sorted(set(ua) - set(ub))
    if "quotas" in a.doc and "quotas" in b.doc:
        qa, qb = snapshot_access(a.doc).quotas, snapshot_access(b.doc).quotas
        for entity in sorted(set(qa) | set(qb)):
            va, vb = qa.get(entity, {}), qb.get(entity, {})
            for key in sorted(set(va) | set(vb)):
                if va.get(key) != vb.get(key):
                    d.quota_changes.append(
                        {
                            "entity": entity_label(entity),
                            "key": key,
                            "old": va.get(key),
                            "new": vb.get(key),
                        }
                    )
    return d


def render_diff(d: SnapshotDiff) -> str:
    """The diff as people read it."""
    lines = [f"Snapshot diff: {d.a} -> {d.b}"]
    if d.other_cluster:
        lines.append("  note: the two snapshots come from different clusters")
    for n in d.topics_added:
        lines.append(f"  + topic {n}")
    for n in d.topics_removed:
        lines.append(f"  - topic {n}")
    for c in d.partition_changes:
        lines.append(f"  ~ {c['topic']}: partitions {c['old']} -> {c['new']}")
    for c in d.replication_changes:
        lines.append(f"  ~ {c['topic']}: replication {c['old']} -> {c['new']}")
    for c in d.config_changes:
        show = lambda v: "(default)" if v is None else v  # noqa: E731
        lines.append(f"  ~ {c['topic']}: {c['key']} {show(c['old'])} -> {show(c['new'])}")
    for g in d.groups_added:
        lines.append(f"  + group {g}")
    for g in d.groups_removed:
        lines.append(f"  - group {g}")
    for c in d.offset_changes:
        lines.append(
            f"  ~ group {c['group']} {c['topic']}[{c['partition']}]: committed offset {c['old']} -> {c['new']}"
        )
    if d.acls_added or d.acls_removed:
        lines.append(f"  ~ ACLs: {d.acls_added} added, {d.acls_removed} removed")
    for u in d.users_added:
        lines.append(f"  + SCRAM user {u}")
    for u in d.users_removed:
        lines.append(f"  - SCRAM user {u}")
    for q in d.quota_changes:
        show_q = lambda v: "(none)" if v is None else f"{v:g}"  # noqa: E731
        lines.append(
            f"  ~ quota {q['entity']}: {q['key']} {show_q(q['old'])} -> {show_q(q['new'])}"
        )
    c = d.counts()
    lines.append(
        "No differences."
        if d.empty
        else f"{c['topics_added']} topic(s) added, {c['topics_removed']} removed, {c['partition_changes']} partition change(s), "
        f"{c['replication_changes']} replication change(s), {c['config_changes']} config change(s), "
        f"{c['groups_added']} group(s) added, {c['groups_removed']} removed, {c['offset_changes']} offset change(s)."
    )
    return "\n".join(lines)
