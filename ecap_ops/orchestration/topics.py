"""One asset per catalog topic; checks that it matches the catalog, is available and
fully replicated; and the job `provision_topics` that reconciles them all, one at a time.

The topic checks follow one rule, the health check's: one health check
(`services.health.check_health`: one read of the cluster, its partition health and its
catalog drift) judges them, by `core.topic_checks`, whether they run after provisioning
(`services.health.observe_topic_checks`) or every 5 minutes inside `kafka_health_check`.
This module only turns the outcomes into Dagster check events.

Large catalogs (docs/scale.md): up to TOPIC_ASSETS_MAX topics, one asset per topic. Above
it, the topics the platform describes (a `purpose` or a declared contract; at most
TOPIC_ASSETS_MAX) keep their own asset, and every other topic is shown by the asset of its
name prefix (`kafka_topics/orders` for `orders.eu` and `orders-v2`), at most
GROUP_ASSETS_MAX of them, the smallest prefixes together in `kafka_topics/_other`. A
grouped asset carries the same three checks, judged over all its topics. The layout is a
pure function of the catalog: nothing is read while the code location loads."""

__all__ = [
    "CHECK_NAMES",
    "CheckOutcome",
    "TopicLayout",
    "asset_catalog",
    "check_evaluation",
    "check_result",
    "group_outcomes",
    "topic_asset_key",
    "topic_layout",
]

from collections import Counter
from dataclasses import dataclass, replace

import dagster as dg

from ecap_ops.catalog.model import Catalog, TopicSpec
from ecap_ops.core.topic_checks import CHECK_NAMES, CheckOutcome
from ecap_ops.orchestration.cluster_scope import SINGLE, ClusterScope
from ecap_ops.orchestration.common import as_failure, md_table
from ecap_ops.orchestration.resources import KafkaResource

GROUP = "kafka_topics"
# Runs carrying this tag change topics; dagster.yaml's run coordinator lets one at a time run.
PROVISIONING_TAG = {"ecap_ops/provisioning": "topics"}


class ReconcileTopicConfig(dg.Config):
    """Reconciling a topic applies its plan. Destructive changes (a retention decrease or a
    cleanup.policy change on a topic that holds data) are refused unless acknowledged."""

    acknowledge_destructive: bool = False


def topic_key(spec: TopicSpec, cluster: ClusterScope = SINGLE) -> dg.AssetKey:
    return cluster.key("kafka", spec.name)


# -- large catalogs: which topics have an asset of their own ------------------------------

TOPIC_ASSETS_MAX = 200  # catalogs up to this many topics: one asset per topic
GROUP_ASSETS_MAX = 100  # grouped assets at most; the smallest prefixes share `_other`
GROUP_KEY_ROOT = "kafka_topics"
OTHER_GROUP = "_other"  # a prefix never holds `_` (it ends there): no clash
NO_PREFIX = "_"  # for a name that starts with `.`, `-` or `_`
GROUP_TABLE_ROWS = 50  # topics listed in a grouped asset's description and check tables
_SEPARATORS = str.maketrans({".": " ", "-": " ", "_": " "})


@dataclass(frozen=True)
class TopicLayout:
    """How a catalog's topics appear in Dagster: `own` topics one asset each, the others
    in `groups` (prefix -> topics) one asset per prefix."""

    own: tuple[TopicSpec, ...]
    groups: dict[str, tuple[TopicSpec, ...]]
    group_of: dict[str, str]  # topic name -> its group's prefix (grouped topics only)

    def asset_key(self, name: str, cluster: ClusterScope = SINGLE) -> dg.AssetKey:
        label = self.group_of.get(name)
        return cluster.key("kafka", name) if label is None else group_key(label, cluster)


def group_key(label: str, cluster: ClusterScope = SINGLE) -> dg.AssetKey:
    return cluster.key(GROUP_KEY_ROOT, label)


def prefix_label(name: str, env_prefix: str = "") -> str:
    """A topic's group: its name (the environment's prefix removed) up to the first `.`,
    `-` or `_`."""
    if env_prefix and name.startswith(env_prefix):
        name = name[len(env_prefix) :]
    if not name or name[0] in "._-":
        return NO_PREFIX
    return name.translate(_SEPARATORS).split(" ", 1)[0]


def _described(catalog: Catalog, spec: TopicSpec) -> bool:
    from ecap_ops.catalog.contracts import contracts_of

    return bool(spec.purpose) or contracts_of(catalog).get(spec.key).declared


def topic_layout(catalog: Catalog) -> TopicLayout:
    """The catalog's layout in Dagster, computed once per catalog (pure)."""
    cached = catalog.__dict__.get("_dagster_layout")
    if cached is not None:
        return cached
    topics = catalog.topics
    if len(topics) <= TOPIC_ASSETS_MAX:
        layout = TopicLayout(tuple(topics), {}, {})
    else:
        own = tuple([t for t in topics if _described(catalog, t)][:TOPIC_ASSETS_MAX])
        own_names = {t.name for t in own}
        rest = [t for t in topics if t.name not in own_names]
        labels = {t.name: prefix_label(t.name, catalog.name_prefix) for t in rest}
        sizes = Counter(labels.values())
        if len(sizes) > GROUP_ASSETS_MAX:
            biggest = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))
            kept = {label for label, _ in biggest[: GROUP_ASSETS_MAX - 1]}
            labels = {n: (lb if lb in kept else OTHER_GROUP) for n, lb in labels.items()}
        groups: dict[str, list[TopicSpec]] = {}
        for t in rest:
            groups.setdefault(labels[t.name], []).append(t)
        layout = TopicLayout(own, {lb: tuple(ts) for lb, ts in sorted(groups.items())}, labels)
    object.__setattr__(catalog, "_dagster_layout", layout)  # Catalog is frozen: rides beside
    return layout


def asset_catalog(catalog: Catalog) -> Catalog:
    """The catalog limited to the topics with an asset of their own (itself when every topic
    has one): for the areas that define something per topic asset (access's dependencies,
    the contract checks), so a large catalog does not add one definition per grouped topic."""
    layout = topic_layout(catalog)
    if not layout.groups:
        return catalog
    return catalog.select([t.name for t in layout.own])  # keeps access and contracts


def topic_asset_key(catalog: Catalog, name: str, cluster: ClusterScope = SINGLE) -> dg.AssetKey:
    """The asset that shows catalog topic `name`: its own, or its prefix group's."""
    return topic_layout(catalog).asset_key(name, cluster)


def group_outcomes(outcomes: list[CheckOutcome], catalog: Catalog) -> list[CheckOutcome]:
    """Topic check outcomes as the assets show them: a topic with its own asset as it is;
    a grouped topic's folded into one outcome per group and check (passed when every
    topic of the group passed; the worst severity; the failing topics listed)."""
    layout = topic_layout(catalog)
    if not layout.groups:
        return list(outcomes)
    out: list[CheckOutcome] = []
    folded: dict[tuple[str, str], list[CheckOutcome]] = {}
    for o in outcomes:
        label = layout.group_of.get(o.topic)
        if label is None:
            out.append(o)
        else:
            folded.setdefault((label, o.check), []).append(o)
    for (label, _check), items in sorted(folded.items()):
        failed = [o for o in items if not o.passed]
        severity = "ERROR" if any(o.severity == "ERROR" for o in failed) else "WARN"
        if failed:
            listed = ", ".join(o.topic for o in failed[:5])
            more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
            description = (
                f"{len(failed)} of {len(items)} topic(s) of `{label}` fail: {listed}{more}"
            )
        else:
            description = f"all {len(items)} topic(s) of `{label}` pass"
        rows = [[o.topic, o.severity, o.description] for o in failed[:GROUP_TABLE_ROWS]]
        out.append(
            replace(
                items[0],
                passed=not failed,
                severity=severity,
                description=description,
                metadata={
                    "topics": ("int", len(items)),
                    "failing_topics": ("int", len(failed)),
                    "failures": ("table", (["topic", "severity", "finding"], rows)),
                },
            )
        )
    return out


def _topic_metadata(d: dict) -> dict:
    from ecap_ops.core.partition_health import topic_partition_health
    from ecap_ops.core.state import PartitionState

    parts = d["partitions"]
    leaders = sorted({p["leader"] for p in parts if p["leader"] is not None})
    health = topic_partition_health(
        (
            PartitionState(p["partition"], p["leader"], tuple(p["replicas"]), tuple(p["isr"]))
            for p in parts
        ),
        min_isr=0,  # describe-topic's data says nothing of min.insync.replicas: not judged
    )
    under, offline = health.under_replicated, health.offline
    return {
        "partitions": dg.MetadataValue.int(len(parts)),
        "replication_factor": dg.MetadataValue.int(d["replication_factor"]),
        "records": dg.MetadataValue.int(d["records"] or 0),
        "end_offsets_total": dg.MetadataValue.int(sum(p["end_offset"] or 0 for p in parts)),
        "under_replicated_partitions": dg.MetadataValue.int(len(under)),
        "offline_partitions": dg.MetadataValue.int(len(offline)),
        "leaders": dg.MetadataValue.text(", ".join(map(str, leaders)) or "none"),
        "overrides": dg.MetadataValue.json(d["overrides"]),
        "topic_id": dg.MetadataValue.text(str(d["topic_id"])),
        "cluster_id": dg.MetadataValue.text(d["cluster_id"]),
        "partition_table": dg.MetadataValue.md(
            md_table(
                ["partition", "leader", "replicas", "isr", "start", "end"],
                [
                    [
                        p["partition"],
                        p["leader"] if p["leader"] is not None else "OFFLINE",
                        p["replicas"],
                        p["isr"],
                        p["start_offset"],
                        p["end_offset"],
                    ]
                    for p in parts
                ],
            )
        ),
    }


def build_topic_asset(
    catalog: Catalog, spec: TopicSpec, cluster: ClusterScope = SINGLE
) -> dg.AssetsDefinition:
    single = catalog.select([spec.name])
    vol = (
        f" Expected volume: {spec.expected_volume.min_per_hour:,}-{spec.expected_volume.max_per_hour:,} events/hour."
        if spec.expected_volume
        else ""
    )

    @dg.asset(
        key=topic_key(spec, cluster),
        group_name=cluster.group(GROUP),
        description=cluster.describe(
            f"Kafka topic `{spec.name}`: {spec.purpose}. {spec.partitions} partitions, "
            f"replication {spec.replication_factor}, key `{spec.partition_key or '-'}`.{vol} "
            "Materializing reconciles the topic with the catalog (plan, then apply)."
        ),
        kinds={"kafka"},
        tags=cluster.tags,
        metadata={
            "catalog_configs": dg.MetadataValue.json(spec.configs),
            "partition_key": spec.partition_key or "",
        },
    )
    @cluster.bind
    def _topic(
        context: dg.AssetExecutionContext, config: ReconcileTopicConfig, kafka: KafkaResource
    ) -> dg.MaterializeResult:
        from ecap_ops.core.plan import render_plan
        from ecap_ops.services.provisioning import apply_topics
        from ecap_ops.services.topics import describe_topic

        ack = frozenset({"*"}) if config.acknowledge_destructive else frozenset()
        with as_failure(f"reconciling topic {spec.name}"), kafka.gateway() as gw:
            # Applied with this topic alone, so only it changes; shown as this topic's part
            # of the plan (the other topics are not "unmanaged": they are the catalog's).
            result = apply_topics(gw, single, ack)
            plan = result.plan.for_topic(spec.name)
            context.log.info(render_plan(plan))
            for s in result.steps:
                context.log.info(f"{s.step} {s.topic}: {s.detail}")
            if not result.ok:
                raise dg.Failure(
                    description=f"reconciling {spec.name} failed: "
                    + "; ".join(f"{s.step}: {s.detail}" for s in result.failed)
                )
            d = describe_topic(gw, single, spec.name)
        meta = _topic_metadata(d)
        meta["applied_steps"] = dg.MetadataValue.int(len(result.steps))
        meta["plan"] = dg.MetadataValue.md("```\n" + render_plan(plan) + "\n```")
        return dg.MaterializeResult(metadata=meta)

    return _topic


# -- the topic checks: one rule, the health check's --------------------------------------


def _metadata_value(kind: str, value) -> dg.MetadataValue:
    if kind == "table":
        headers, rows = value
        return dg.MetadataValue.md(md_table(headers, rows) if rows else "none")
    return getattr(dg.MetadataValue, kind)(value)


def _check_fields(outcome: CheckOutcome, catalog: Catalog, cluster: ClusterScope) -> dict:
    return dict(
        asset_key=topic_asset_key(catalog, outcome.topic, cluster),
        check_name=outcome.check,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity[outcome.severity],
        description=outcome.description,
        metadata={k: _metadata_value(kind, v) for k, (kind, v) in outcome.metadata.items()},
    )


def check_result(
    outcome: CheckOutcome, catalog: Catalog, cluster: ClusterScope = SINGLE
) -> dg.AssetCheckResult:
    """A topic check's outcome as the result of a check that runs on its own."""
    return dg.AssetCheckResult(**_check_fields(outcome, catalog, cluster))


def check_evaluation(
    outcome: CheckOutcome, catalog: Catalog, cluster: ClusterScope = SINGLE
) -> dg.AssetCheckEvaluation:
    """A topic check's outcome as an evaluation recorded by another op (the health job)."""
    return dg.AssetCheckEvaluation(**_check_fields(outcome, catalog, cluster))


def build_topic_checks(catalog: Catalog, spec: TopicSpec) -> list[dg.AssetChecksDefinition]:
    """The three checks of one topic as separate definitions (for running one by hand);
    the code location uses `build_catalog_checks`, which observes the cluster once."""
    key = topic_key(spec)
    descriptions = _check_descriptions(spec)

    def make(check: str) -> dg.AssetChecksDefinition:
        @dg.asset_check(asset=key, name=check, description=descriptions[check])
        def _check(kafka: KafkaResource) -> dg.AssetCheckResult:
            from ecap_ops.services.health import observe_topic_checks

            with as_failure(f"checking {spec.name}"), kafka.gateway() as gw:
                (outcome,) = [
                    o for o in observe_topic_checks(gw, catalog, [spec.name]) if o.check == check
                ]
            return check_result(outcome, catalog)

        return _check

    return [make(c) for c in CHECK_NAMES]


def _check_descriptions(spec: TopicSpec) -> dict[str, str]:
    return {
        "matches_catalog": f"`{spec.name}` exists with exactly the catalog's partitions, replication and "
        "topic-level overrides. Evaluated after provisioning and by every kafka_health_check run.",
        "availability": f"Every partition of `{spec.name}` has a leader (none offline). Evaluated after "
        "provisioning and by every kafka_health_check run.",
        "replication": f"Every partition of `{spec.name}` has its full replica set in sync, and at least "
        "min.insync.replicas. Evaluated after provisioning and by every kafka_health_check run.",
    }


def build_group_asset(
    catalog: Catalog, label: str, group: tuple[TopicSpec, ...], cluster: ClusterScope = SINGLE
) -> dg.AssetsDefinition:
    """One asset for the catalog topics of a name prefix (large catalogs): materializing it
    reconciles them all in one plan and apply, as `ecap-ops create-topics` does."""
    names = [t.name for t in group]
    listed = ", ".join(f"`{n}`" for n in names[:GROUP_TABLE_ROWS])
    more = f" and {len(names) - GROUP_TABLE_ROWS:,} more" if len(names) > GROUP_TABLE_ROWS else ""
    what = "the smaller name prefixes" if label == OTHER_GROUP else f"name prefix `{label}`"

    @dg.asset(
        key=group_key(label, cluster),
        group_name=cluster.group(GROUP),
        description=cluster.describe(
            f"{len(names):,} catalog topics of {what} (a large catalog shows its topics "
            f"grouped: docs/scale.md): {listed}{more}. Materializing reconciles them all "
            "with the catalog (one plan, then apply)."
        ),
        kinds={"kafka"},
        metadata={
            "topics": dg.MetadataValue.int(len(names)),
            "partitions": dg.MetadataValue.int(sum(t.partitions for t in group)),
        },
    )
    @cluster.bind
    def _group(
        context: dg.AssetExecutionContext, config: ReconcileTopicConfig, kafka: KafkaResource
    ) -> dg.MaterializeResult:
        from ecap_ops.services.provisioning import apply_topics

        ack = frozenset({"*"}) if config.acknowledge_destructive else frozenset()
        with as_failure(f"reconciling the topics of {label}"), kafka.gateway() as gw:
            result = apply_topics(gw, catalog.select(names), ack)
        for s in result.steps[:GROUP_TABLE_ROWS]:
            context.log.info(f"{s.step} {s.topic}: {s.detail}")
        if not result.ok:
            raise dg.Failure(
                description=f"reconciling the topics of {label} failed: "
                + "; ".join(f"{s.step} {s.topic}: {s.detail}" for s in result.failed[:20])
            )
        return dg.MaterializeResult(
            metadata={
                "topics": dg.MetadataValue.int(len(names)),
                "applied_steps": dg.MetadataValue.int(len(result.steps)),
                "steps": dg.MetadataValue.md(
                    md_table(
                        ["step", "topic", "result"],
                        [[s.step, s.topic, s.detail] for s in result.steps[:GROUP_TABLE_ROWS]],
                    )
                    if result.steps
                    else "nothing to change"
                ),
            }
        )

    return _group


def build_catalog_checks(
    catalog: Catalog, cluster: ClusterScope = SINGLE
) -> dg.AssetChecksDefinition:
    """Every topic's matches_catalog, availability and replication checks, from one
    observation of the cluster (runs the selected ones only)."""
    layout = topic_layout(catalog)
    specs = [
        dg.AssetCheckSpec(
            name=check,
            asset=topic_key(spec, cluster),
            description=_check_descriptions(spec)[check],
            blocking=False,
        )
        for spec in layout.own
        for check in CHECK_NAMES
    ]
    specs += [
        dg.AssetCheckSpec(
            name=check,
            asset=group_key(label, cluster),
            description=f"Each of the {len(group)} topics of `{label}`: "
            + _check_descriptions(group[0])[check]
            .split(": ", 1)[-1]
            .replace(f"`{group[0].name}`", "the topic"),
            blocking=False,
        )
        for label, group in layout.groups.items()
        for check in CHECK_NAMES
    ]
    by_key: dict[str, list[str]] = {
        topic_key(s, cluster).to_user_string(): [s.name] for s in layout.own
    }
    for label, group in layout.groups.items():
        by_key[group_key(label, cluster).to_user_string()] = [s.name for s in group]

    @dg.multi_asset_check(
        name=cluster.name("kafka_topic_checks"),
        specs=specs,
        can_subset=True,
        description=cluster.describe(
            "The topic assets' checks, judged from one health observation of the cluster."
        ),
    )
    @cluster.bind
    def kafka_topic_checks(context: dg.AssetCheckExecutionContext, kafka: KafkaResource):
        from ecap_ops.services.health import observe_topic_checks

        selected = context.selected_asset_check_keys
        names = sorted({n for k in selected for n in by_key[k.asset_key.to_user_string()]})
        wanted = {(k.asset_key, k.name) for k in selected}
        with as_failure("checking the catalog topics"), kafka.gateway() as gw:
            outcomes = observe_topic_checks(gw, catalog, names)
        for o in group_outcomes(outcomes, catalog):
            if (topic_asset_key(catalog, o.topic, cluster), o.check) in wanted:
                yield check_result(o, catalog, cluster)

    return kafka_topic_checks


def build_defs(catalog: Catalog, cluster: ClusterScope = SINGLE) -> dg.Definitions:
    layout = topic_layout(catalog)
    assets = [build_topic_asset(catalog, spec, cluster) for spec in layout.own]
    assets += [
        build_group_asset(catalog, label, group, cluster) for label, group in layout.groups.items()
    ]
    provision_topics = dg.define_asset_job(
        cluster.name("provision_topics"),
        selection=dg.AssetSelection.groups(cluster.group(GROUP)),
        description=cluster.describe(
            "Reconcile every catalog topic with the cluster (plan, then apply), one topic at a time, then run the topic checks. Never deletes a topic."
        ),
        executor_def=dg.in_process_executor,
        tags={**PROVISIONING_TAG, **cluster.tags},
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=[build_catalog_checks(catalog, cluster)],
        jobs=[provision_topics],
    )
