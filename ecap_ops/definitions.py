"""The code location: every area's definitions merged into `defs`.

Built on first access of `ecap_ops.defs` (not when `ecap_ops` is imported). Reads the
catalog file and the environment; connects to nothing. This module is also the target of
pyproject's `[tool.dg]` project: `dg check defs` (`make validate`), `dg list defs` and
`dg dev` load `defs` from here. The names it carries are listed, for review of any rename,
in ecap_ops_tests/golden/definitions_names.txt.
"""

import dagster as dg

from ecap_ops.catalog import load_catalog
from ecap_ops.orchestration import (
    access,
    audits,
    cleanup,
    contracts,
    dr,
    failures,
    health,
    lag,
    topics,
)
from ecap_ops.orchestration.alerts import alerts_resource_from_env
from ecap_ops.orchestration.resources import kafka_resource_from_env


def build_definitions() -> dg.Definitions:
    catalog = load_catalog()
    # Each area hands up its own definitions; add an area here.
    return dg.Definitions.merge(
        topics.build_defs(catalog),
        access.build_defs(catalog),
        contracts.build_defs(catalog),
        dr.build_defs(catalog),
        health.build_defs(catalog),
        audits.build_defs(catalog),
        cleanup.build_defs(catalog),
        lag.build_defs(catalog),
        failures.build_defs(),
        dg.Definitions(
            resources={"kafka": kafka_resource_from_env(), "alerts": alerts_resource_from_env()}
        ),
    )


defs = build_definitions()
