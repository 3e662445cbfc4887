"""Comparing two clusters, with the catalog as the referee. Pure: no I/O.

Each cluster is read into a `ClusterView` (its topics with partitions, replication and
topic-level overrides; its ACL bindings; its consumer groups and the topics they hold
offsets on) and judged with its own catalog environment (dev on one, prod on the other).
Every difference is one `Difference`:

- `expected`: the catalog explains it. Each side matches its own environment's overlay
  (replication 1 in dev and 3 in prod, a retention set per environment, a topic declared
  in one environment's name prefix, an ACL declared for one environment only).
- `drift`: the catalog does not explain it: at least one side differs from what its
  environment declares, or the thing is not in the catalog at all (an unmanaged topic or
  ACL on one side only, an override set by hand).
- `note`: shown, never drift: consumer groups (the catalog does not declare them, and a
  standby has no consumers until failover).

Topics are matched by their catalog name across environments (`prod.transactions` on one
side is `transactions` on the other when the overlays say so), else by their name.
Internal topics (`__*`) and broker defaults are never compared: only topic-level
overrides are, as everywhere in ecap-ops.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ecap_ops.catalog.access import AclBinding
from ecap_ops.catalog.model import Catalog
from ecap_ops.core.state import is_internal_topic

EXPECTED, DRIFT, NOTE = "expected", "drift", "note"


@dataclass(frozen=True)
class TopicView:
    name: str
    partitions: int
    replication_factor: int
    overrides: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterView:
    """What a comparison needs of one cluster, read by `services/compare.read_view`."""

    name: str  # the cluster's name (prod, dr, ...)
    topics: Mapping[str, TopicView]
    acls: frozenset[AclBinding] | None = None  # None: no authorizer on the cluster
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)  # group -> topics


@dataclass(frozen=True)
class Difference:
    kind: str  # topic | partitions | replication | override | acl | group
    subject: str  # the topic (its catalog name), the ACL or the group
    a: str  # what cluster A has ("-" absent)
    b: str
    status: str  # expected | drift | note
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "a": self.a,
            "b": self.b,
            "status": self.status,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    env_a: str
    env_b: str
    differences: tuple[Difference, ...]
    topics_compared: int
    acls_compared: bool

    @property
    def drift(self) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if d.status == DRIFT)

    @property
    def expected(self) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if d.status == EXPECTED)

    @property
    def notes(self) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if d.status == NOTE)

    def to_dict(self) -> dict:
        return {
            "a": {"cluster": self.a, "env": self.env_a},
            "b": {"cluster": self.b, "env": self.env_b},
            "topics_compared": self.topics_compared,
            "acls_compared": self.acls_compared,
            "drift": len(self.drift),
            "expected": len(self.expected),
            "notes": len(self.notes),
            "differences": [d.to_dict() for d in self.differences],
        }


def _catalog_names(catalog: Catalog) -> dict[str, str]:
    """Cluster topic name -> catalog key."""
    return {t.name: t.key for t in catalog.topics}


def _label(view: ClusterView, catalog: Catalog) -> dict[str, str]:
    """Each (non-internal) topic of the view -> the name it is matched by across clusters."""
    keys = _catalog_names(catalog)
    return {n: keys.get(n, n) for n in view.topics if not is_internal_topic(n)}


def _fmt(value: object) -> str:
    return "-" if value is None else str(value)


def compare_clusters(
    a: ClusterView, b: ClusterView, catalog_a: Catalog, catalog_b: Catalog
) -> Comparison:
    """Every difference between `a` and `b`, each judged by the catalogs (A's environment
    for A, B's for B)."""
    out: list[Difference] = []
    label_a, label_b = _label(a, catalog_a), _label(b, catalog_b)
    by_a = {lab: n for n, lab in label_a.items()}
    by_b = {lab: n for n, lab in label_b.items()}
    spec_a = {t.key: t for t in catalog_a.topics}
    spec_b = {t.key: t for t in catalog_b.topics}
    subjects = sorted(set(by_a) | set(by_b))
    for subject in subjects:
        na, nb = by_a.get(subject), by_b.get(subject)
        sa, sb = spec_a.get(subject), spec_b.get(subject)
        if na is None or nb is None:
            present, missing_side = ("A", "B") if nb is None else ("B", "A")
            declared_there = (sb if nb is None else sa) is not None
            if declared_there:
                status = DRIFT
                reason = (
                    f"the catalog declares it for {catalog_b.env if nb is None else catalog_a.env}; "
                    f"missing on {missing_side}"
                )
            elif (sa if nb is None else sb) is not None:
                status = EXPECTED
                reason = f"the catalog declares it only for {catalog_a.env if nb is None else catalog_b.env}"
            else:
                status = DRIFT
                reason = f"not in the catalog; only on {present}"
            out.append(
                Difference(
                    "topic",
                    subject,
                    na or "-",
                    nb or "-",
                    status,
                    reason,
                )
            )
            continue
        ta, tb = a.topics[na], b.topics[nb]
        out.extend(_topic_differences(subject, ta, tb, sa, sb, catalog_a.env, catalog_b.env))
    out.extend(_acl_differences(a, b, catalog_a, catalog_b))
    out.extend(_group_differences(a, b, label_a, label_b))
    return Comparison(
        a=a.name,
        b=b.name,
        env_a=catalog_a.env,
        env_b=catalog_b.env,
        differences=tuple(out),
        topics_compared=len(subjects),
        acls_compared=a.acls is not None and b.acls is not None,
    )


def _judge(value_a, value_b, declared_a, declared_b, managed: bool, env_a: str, env_b: str):
    if not managed:
        return DRIFT, "not in the catalog: nothing explains the difference"
    ok_a, ok_b = value_a == declared_a, value_b == declared_b
    if ok_a and ok_b:
        return (
            EXPECTED,
            f"each side matches its environment ({env_a}: {_fmt(declared_a)}, {env_b}: {_fmt(declared_b)})",
        )
    wrong = [s for s, ok, d in (("A", ok_a, declared_a), ("B", ok_b, declared_b)) if not ok]
    wants = "; ".join(
        f"{s} should be {_fmt(d)}"
        for s, ok, d in (("A", ok_a, declared_a), ("B", ok_b, declared_b))
        if not ok
    )
    return (
        DRIFT,
        f"{' and '.join(wrong)} differ{'s' if len(wrong) == 1 else ''} from the catalog: {wants}",
    )


def _topic_differences(subject, ta: TopicView, tb: TopicView, sa, sb, env_a, env_b):
    managed = sa is not None and sb is not None
    if ta.partitions != tb.partitions:
        status, reason = _judge(
            ta.partitions,
            tb.partitions,
            sa.partitions if sa else None,
            sb.partitions if sb else None,
            managed,
            env_a,
            env_b,
        )
        yield Difference(
            "partitions", subject, str(ta.partitions), str(tb.partitions), status, reason
        )
    if ta.replication_factor != tb.replication_factor:
        status, reason = _judge(
            ta.replication_factor,
            tb.replication_factor,
            sa.replication_factor if sa else None,
            sb.replication_factor if sb else None,
            managed,
            env_a,
            env_b,
        )
        yield Difference(
            "replication",
            subject,
            str(ta.replication_factor),
            str(tb.replication_factor),
            status,
            reason,
        )
    for key in sorted(set(ta.overrides) | set(tb.overrides)):
        va, vb = ta.overrides.get(key), tb.overrides.get(key)
        if va == vb:
            continue
        status, reason = _judge(
            va,
            vb,
            sa.configs.get(key) if sa else None,
            sb.configs.get(key) if sb else None,
            managed,
            env_a,
            env_b,
        )
        yield Difference("override", f"{subject} {key}", _fmt(va), _fmt(vb), status, reason)


def _acl_differences(a: ClusterView, b: ClusterView, catalog_a: Catalog, catalog_b: Catalog):
    if a.acls is None or b.acls is None:
        if (a.acls is None) != (b.acls is None):
            off = a.name if a.acls is None else b.name
            yield Difference(
                "acl",
                "(authorizer)",
                "none" if a.acls is None else "on",
                "none" if b.acls is None else "on",
                DRIFT,
                f"{off} has no authorizer: its ACLs cannot be compared",
            )
        return
    declared_a = set(catalog_a.access.bindings()) if catalog_a.access else set()
    declared_b = set(catalog_b.access.bindings()) if catalog_b.access else set()
    for binding in sorted(a.acls ^ b.acls, key=lambda x: x.describe()):
        on_a = binding in a.acls
        # Expected when each side's catalog environment says exactly that: declared for
        # the side that has it, not for the side that lacks it.
        if (binding in declared_a) == on_a and (binding in declared_b) == (not on_a):
            status, reason = EXPECTED, "the catalog declares it for one environment only"
        elif binding in declared_a or binding in declared_b:
            status = DRIFT
            reason = f"the catalog declares it for {catalog_a.env if binding in declared_a else catalog_b.env}"
        else:
            status, reason = DRIFT, "not in the catalog; only on " + ("A" if on_a else "B")
        yield Difference(
            "acl",
            binding.describe(),
            "present" if on_a else "-",
            "-" if on_a else "present",
            status,
            reason,
        )


def _group_differences(a: ClusterView, b: ClusterView, label_a, label_b):
    def topics_of(view, label, group):
        return sorted(label.get(t, t) for t in view.groups.get(group, ()))

    for group in sorted(set(a.groups) | set(b.groups)):
        ta, tb = topics_of(a, label_a, group), topics_of(b, label_b, group)
        if group in a.groups and group in b.groups and ta == tb:
            continue
        yield Difference(
            "group",
            group,
            ", ".join(ta) or ("-" if group not in a.groups else "(no topics)"),
            ", ".join(tb) or ("-" if group not in b.groups else "(no topics)"),
            NOTE,
            "consumer groups are not declared by the catalog; shown for review",
        )


def topic_views(states: Iterable) -> dict[str, TopicView]:
    """`core.state.TopicState`s as the comparison's topics."""
    out = {}
    for t in states:
        rf = max((len(p.replicas) for p in t.partitions), default=0)
        out[t.name] = TopicView(t.name, len(t.partitions), rf, dict(t.overrides))
    return out
