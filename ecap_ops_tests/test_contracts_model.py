"""Contracts are a field of the catalog: set by the loader, kept by `select()` and by
`dataclasses.replace`, empty on a catalog built by hand; contract incidents are one of the
incident model's sources whichever module is imported first."""

import ast
import dataclasses
import subprocess
import sys

from ecap_ops.catalog import load_catalog
from ecap_ops.catalog.contracts import CHECKS, Contracts, contracts_of
from ecap_ops.catalog.model import Catalog


def test_the_loader_sets_the_field_and_select_and_replace_keep_it():
    catalog = load_catalog()
    assert isinstance(catalog.contracts, Contracts)
    assert contracts_of(catalog) is catalog.contracts
    tx = catalog.contracts.get("transactions")
    assert tx.declared and tx.schema is not None and tx.freshness_s
    one = catalog.select([catalog.get("transactions").name])
    assert [t.key for t in one.topics] == ["transactions"]
    assert one.contracts.get("transactions") == tx
    assert set(one.contracts.by_topic) == {"transactions"}  # the others left out with them
    assert dataclasses.replace(catalog, env="other").contracts == catalog.contracts


def test_a_catalog_built_by_hand_has_no_declared_contract():
    base = load_catalog()
    bare = Catalog(
        base.env, base.source, base.name_prefix, base.topics, base.lag_defaults, base.digest
    )
    assert bare.contracts == Contracts() and not contracts_of(bare).declared
    assert not contracts_of(bare).get("transactions").declared


def test_contract_incidents_are_a_source_whatever_is_imported_first():
    for first in ("ecap_ops.core.contracts", "ecap_ops.core.lag_alerts", "ecap_ops.core.incidents"):
        code = (
            f"import {first}\n"
            "from ecap_ops.core import incidents\n"
            "print(sorted(incidents._types()))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr[-2000:]
        sources = ast.literal_eval(out.stdout)  # a printed list of names
        assert {"consumer_lag", "health_check", "dr_drill", "topic_contracts"} <= set(sources)
    assert len(CHECKS) == 5
