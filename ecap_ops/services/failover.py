"""Failover to the DR standby: consumer-group offsets translated with MirrorMaker 2's
checkpoints and written on the standby plan-first, through the one write path.

Only the standby is read (the source may be down: that is why one fails over): the
checkpoints topic `<source>.checkpoints.internal` gives, per group and mirrored partition,
the group's committed offset on the source and where it falls on the standby. A group
resumes on the standby at most `offset.lag.max` records (the catalog's `mirror:` section)
plus what it consumed since the last checkpoint before where it stopped; never after it.
"""

from dataclasses import dataclass, field

from ecap_ops.catalog.mirror import mirrored_names
from ecap_ops.catalog.model import Catalog
from ecap_ops.core.mirror import latest_checkpoints, translate_group
from ecap_ops.core.plan import Action, ActionKind, Plan, Refusal
from ecap_ops.core.restore import EMPTY_GROUP_STATES
from ecap_ops.errors import ConfigError
from ecap_ops.gateway import KafkaGateway


@dataclass
class FailoverPlan:
    flow: str
    plan: Plan
    groups: dict[str, list[tuple[str, int, int, int | None]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "flow": self.flow,
            "groups": {
                g: [
                    {"topic": t, "partition": p, "offset": o, "current": cur}
                    for t, p, o, cur in rows
                ]
                for g, rows in self.groups.items()
            },
            "refusals": [r.message for r in self.plan.refusals],
            "problems": list(self.problems),
            "notes": list(self.notes),
            "writes": sum(len(a.offsets) for a in self.plan.actions),
        }

    def render(self) -> str:
        lines = [
            f"Failover {self.flow}: consumer-group offsets on the standby from MirrorMaker's checkpoints"
        ]
        for g, rows in self.groups.items():
            lines.append(f"  group {g}:")
            for t, p, o, cur in rows:
                now = "none" if cur is None else str(cur)
                mark = "=" if cur == o else "@"
                lines.append(f"    {mark} {t}[{p}] -> {o} (now {now})")
        for r in self.plan.refusals:
            lines.append(f"  REFUSED: {r.message}")
        for p in self.problems:
            lines.append(f"  ! {p}")
        for n in self.notes:
            lines.append(f"  note: {n}")
        n = sum(len(a.offsets) for a in self.plan.actions)
        lines.append(f"  {n} offset(s) to write in {len(self.plan.actions)} group(s)")
        return "\n".join(lines)


def plan_failover(
    target_gw: KafkaGateway,
    source_catalog: Catalog,
    source_alias: str,
    flow_name: str,
    groups: list[str] | None = None,
) -> FailoverPlan:
    """Read the checkpoints and the standby's groups; plan the offset writes. Changes
    nothing. ConfigError when there is nothing to translate (no checkpoints yet, a group
    without any)."""
    from ecap_ops.gateway.mirror import read_checkpoints
    from ecap_ops.gateway.snapshot import read_group_status

    mirrored = set(mirrored_names(source_catalog))
    if not mirrored:
        raise ConfigError("the catalog marks no topic for mirroring (its `mirror:` section)")
    records, notes = read_checkpoints(target_gw, source_alias)
    if records is None:
        raise ConfigError(
            f"no checkpoints yet: {source_alias}.checkpoints.internal does not exist on the standby; "
            "start MirrorMaker 2 (ecap-ops mirror start) and wait one checkpoint interval"
        )
    latest = {k: c for k, c in latest_checkpoints(records).items() if c.topic in mirrored}
    known = sorted({g for g, _t, _p in latest})
    if not known:
        raise ConfigError(
            f"no checkpoints yet in {source_alias}.checkpoints.internal for the mirrored topics: "
            "no group has committed offsets on them on the source, or MirrorMaker has not "
            "checkpointed them yet (wait one checkpoint interval)"
        )
    wanted = list(dict.fromkeys(groups)) if groups else known
    missing = [g for g in wanted if g not in known]
    if missing:
        shown = ", ".join(repr(g[:60]) for g in missing[:5])
        raise ConfigError(
            f"group(s) {shown} have no checkpoint on the mirrored topics (no offsets committed "
            f"on the source, or not checkpointed yet); groups with checkpoints: "
            + (", ".join(known[:20]) + (" ..." if len(known) > 20 else ""))
        )
    topics = target_gw.topics(sorted(mirrored))
    parts = {n: t.partition_count for n, t in topics.items() if n in mirrored}
    cluster_id, _c, _b = target_gw.brokers()
    status = read_group_status(target_gw, wanted)
    out = FailoverPlan(flow_name, Plan(cluster_id, "", "", (), (), (), (), ""), notes=notes)
    actions: list[Action] = []
    refusals: list[Refusal] = []
    for g in wanted:
        tr = translate_group(g, latest, {}, mirrored, parts)
        out.problems += [f"group {g}: {p}" for p in tr.problems]
        st = status.get(g)
        current = dict(st.offsets) if st is not None else {}
        out.groups[g] = [(t, p, o, current.get((t, p))) for t, p, o in tr.writes]
        if st is not None and ((st.members or 0) > 0 or (st.state or "") not in EMPTY_GROUP_STATES):
            refusals.append(
                Refusal(
                    g,
                    "group_active",
                    f"group {g} has {st.members} active member(s) on the standby (state {st.state}): "
                    "stop its consumers there first; offsets are written only into empty groups",
                )
            )
            continue
        writes = tuple((t, p, o) for t, p, o in tr.writes if current.get((t, p)) != o)
        if writes:
            actions.append(Action(ActionKind.WRITE_OFFSETS, g, group=g, offsets=writes))
    out.plan = Plan(cluster_id, "", "", tuple(actions), tuple(refusals), (), (), "")
    return out


def execute_failover(target_gw: KafkaGateway, fp: FailoverPlan):
    """Carry out exactly the planned offset writes on the one write path."""
    from ecap_ops.services.write import execute_plan

    return execute_plan(target_gw, fp.plan, "failover translate-offsets")
