"""Large catalogs in Dagster (docs/scale.md): up to 200 topics one asset each; above, the
described topics keep their own asset and the rest appear as one asset per name prefix,
with the same three checks judged over the group. No broker: the code location loads
without one."""

import dagster as dg
import pytest

from ecap_ops.catalog import parse_catalog
from ecap_ops.core.topic_checks import CHECK_NAMES, CheckOutcome
from ecap_ops.orchestration import topics
from ecap_ops.orchestration.topics import (
    GROUP_ASSETS_MAX,
    OTHER_GROUP,
    TOPIC_ASSETS_MAX,
    asset_catalog,
    group_outcomes,
    prefix_label,
    topic_asset_key,
    topic_layout,
)


def _catalog_text(names: list[str], described: tuple[str, ...] = ()) -> str:
    lines = ["version: 1", "topics:"]
    for n in names:
        purpose = ", purpose: 'declared by the platform'" if n in described else ""
        lines.append(f"  {n}: {{partitions: 1, retention: 7d{purpose}}}")
    return "\n".join(lines) + "\n"


def _generated(n: int) -> list[str]:
    prefixes = ("orders", "clicks", "audit", "team7")
    seps = (".", "-", "_", ".")
    return [f"{prefixes[i % 4]}{seps[i % 4]}t{i:04d}" for i in range(n)]


def _defs_for(tmp_path, monkeypatch, text: str) -> dg.Definitions:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    monkeypatch.setenv("ECAP_CATALOG", str(path))
    monkeypatch.delenv("ECAP_CLUSTERS_FILE", raising=False)
    from ecap_ops.definitions import build_definitions

    return build_definitions()


def _keys(defs: dg.Definitions) -> set[str]:
    return {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}


def test_five_hundred_topics_load_as_described_topics_and_prefix_groups(tmp_path, monkeypatch):
    names = _generated(500)
    described = (names[3], names[10], names[499])
    defs = _defs_for(tmp_path, monkeypatch, _catalog_text(names, described))
    keys = _keys(defs)
    topic_keys = {k for k in keys if k.startswith("kafka/")}
    assert topic_keys == {f"kafka/{n}" for n in described}
    group_keys = {k for k in keys if k.startswith("kafka_topics/")}
    assert group_keys == {f"kafka_topics/{p}" for p in ("orders", "clicks", "audit", "team7")}
    # No definition per grouped topic from any area (access, contracts, lag): no stub assets.
    assert len(keys) < 40, sorted(keys)[:50]
    graph = defs.resolve_asset_graph()
    for key in group_keys | topic_keys:
        checks = {
            c.name for c in graph.get_check_keys_for_assets({dg.AssetKey.from_user_string(key)})
        }
        assert set(CHECK_NAMES) <= checks, (key, checks)
    job = defs.resolve_job_def("provision_topics")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} >= group_keys


def test_names_are_stable_for_the_same_catalog(tmp_path, monkeypatch):
    text = _catalog_text(_generated(500), ("orders.t0000",))
    first = _keys(_defs_for(tmp_path, monkeypatch, text))
    again = _keys(_defs_for(tmp_path, monkeypatch, text))
    assert first == again


@pytest.mark.parametrize("n", [TOPIC_ASSETS_MAX - 1, TOPIC_ASSETS_MAX])
def test_up_to_the_threshold_every_topic_has_its_own_asset(n):
    catalog = parse_catalog(_catalog_text(_generated(n)), env="dev")
    layout = topic_layout(catalog)
    assert [t.name for t in layout.own] == catalog.names()
    assert layout.groups == {}
    assert asset_catalog(catalog) is catalog
    assert topic_asset_key(catalog, catalog.names()[0]) == dg.AssetKey(
        ["kafka", catalog.names()[0]]
    )


def test_one_topic_over_the_threshold_groups_the_undescribed_ones():
    names = _generated(TOPIC_ASSETS_MAX + 1)
    catalog = parse_catalog(_catalog_text(names, (names[0],)), env="dev")
    layout = topic_layout(catalog)
    assert [t.name for t in layout.own] == [names[0]]
    grouped = [t.name for g in layout.groups.values() for t in g]
    assert sorted(grouped) == sorted(names[1:])
    assert topic_asset_key(catalog, names[5]) == dg.AssetKey(["kafka_topics", "clicks"])
    assert asset_catalog(catalog).names() == [names[0]]


def test_many_prefixes_are_capped_with_the_smallest_in_other():
    # 150 prefixes of 2 topics and one of 10: at most GROUP_ASSETS_MAX group assets.
    names = [f"p{i:03d}.a" for i in range(150)] + [f"p{i:03d}.b" for i in range(150)]
    names += [f"big.t{i}" for i in range(10)]
    catalog = parse_catalog(_catalog_text(names), env="dev")
    layout = topic_layout(catalog)
    assert len(layout.groups) == GROUP_ASSETS_MAX
    assert OTHER_GROUP in layout.groups and "big" in layout.groups
    assert sum(len(g) for g in layout.groups.values()) == len(names)


@pytest.mark.parametrize(
    ("name", "prefix", "label"),
    [
        ("orders.eu", "", "orders"),
        ("orders-v2", "", "orders"),
        ("orders_x", "", "orders"),
        ("orders", "", "orders"),
        ("prod.orders.eu", "prod.", "orders"),
        ("_private", "", "_"),
        ("-x", "", "_"),
    ],
)
def test_prefix_label(name, prefix, label):
    assert prefix_label(name, prefix) == label


def test_group_outcomes_fold_a_group_and_keep_own_topics():
    names = _generated(TOPIC_ASSETS_MAX + 10)
    catalog = parse_catalog(_catalog_text(names, (names[0],)), env="dev")
    orders = [n for n in names[1:] if n.startswith("orders.")]
    outcomes = [CheckOutcome(names[0], "availability", False, "ERROR", "offline")]
    outcomes += [CheckOutcome(n, "availability", True, "WARN", "ok") for n in orders]
    outcomes[3] = CheckOutcome(orders[2], "availability", False, "ERROR", "partition 0 offline")
    folded = group_outcomes(outcomes, catalog)
    assert folded[0] == outcomes[0]
    (group,) = folded[1:]
    assert topic_asset_key(catalog, group.topic) == dg.AssetKey(["kafka_topics", "orders"])
    assert not group.passed and group.severity == "ERROR"
    assert orders[2] in group.description and f"1 of {len(orders)} " in group.description
    result = topics.check_result(group, catalog)
    assert result.asset_key == dg.AssetKey(["kafka_topics", "orders"])
    assert not result.passed
