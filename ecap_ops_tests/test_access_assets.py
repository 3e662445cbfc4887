"""The platform's access as Dagster assets, on a secured local cluster (SASL_SSL, SCRAM,
StandardAuthorizer, allow.everyone.if.no.acl.found=false): materializing `kafka_access/*`
applies the catalog's access on the one write path and their `matches_catalog` checks
pass; drift made with Kafka's own `kafka-acls` and `kafka-configs` (a removed binding, an
extra binding in the owned scope, a deleted SCRAM credential, a changed quota) fails the
check that owns it, naming what drifted; materializing again mends it. On a cluster
without an authorizer the checks pass with a note. No password reaches an event or a log."""

import secrets
import uuid
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecap_ops.catalog import load_catalog
from ecap_ops.catalog.access import AccessSpec, AclBinding, PrincipalSpec
from ecap_ops.core.access import AccessState, plan_access
from ecap_ops.core.access_checks import ACCESS_PARTS, access_check_outcomes
from ecap_ops.gateway import KafkaGateway
from ecap_ops.gateway.access import read_acl_bindings
from ecap_ops.localkafka import LocalCluster
from ecap_ops.orchestration import access, topics
from ecap_ops.orchestration.resources import KafkaResource
from ecap_ops_tests.helpers import kafka_tool, run_failures
from ecap_ops_tests.secure_fixtures import (
    SECURE_ADMIN_PASSWORD,
    secure_kafka,  # noqa: F401 (fixture)
)
from ecap_ops_tests.test_provisioning import prefixed_catalog

PW_ENV = "ECAP_TEST_SVC_PASSWORD"


def _edit(p: str, owns: bool = False):
    """The shipped access with principals and the SCRAM user made this test's own, so tests
    sharing the secured cluster never see each other's bindings as drift."""

    def edit(d: dict) -> None:
        for key, spec in d["principals"].items():
            spec["principal"] = f"User:{key}-{p}"
        d["users"] = {
            f"svc-{p}": {"mechanism": "SCRAM-SHA-512", "iterations": 8192, "password_env": PW_ENV}
        }
        d["quotas"] = [
            {"user": f"svc-{p}", "producer_byte_rate": "1MiB", "consumer_byte_rate": "2MiB"}
        ]
        if owns:
            d["access"] = {"owns": "declared_principals"}

    return edit


def _resource(cluster: LocalCluster) -> KafkaResource:
    s = cluster.client_settings("admin") if cluster.security else cluster.client_settings()
    return KafkaResource(
        bootstrap_servers=s.bootstrap_servers,
        security_protocol=s.security_protocol,
        sasl_mechanism=s.sasl_mechanism or "",
        sasl_username=s.sasl_username or "",
        sasl_password=s.sasl_password or "",
        ssl_cafile=s.ssl_cafile or "",
    )


def _admin(cluster: LocalCluster):
    return cluster.client_settings("admin")


def _materialize(catalog, cluster, instance, with_topics=False):
    assets = [topics.build_topic_asset(catalog, t) for t in catalog.topics] if with_topics else []
    return dg.materialize(
        [*assets, access.build_access_assets(catalog), access.build_access_checks(catalog)],
        resources={"kafka": _resource(cluster)},
        instance=instance,
        raise_on_error=False,
    )


def _checks(catalog, cluster, instance) -> dict[str, dg.AssetCheckEvaluation]:
    """Run only the access checks (as a person does from the asset page)."""
    checks = access.build_access_checks(catalog)
    result = dg.materialize(
        [access.build_access_assets(catalog), checks],
        resources={"kafka": _resource(cluster)},
        instance=instance,
        selection=dg.AssetSelection.checks(checks),
    )
    assert result.success, run_failures(result)
    assert not result.get_asset_materialization_events(), "a check run applies nothing"
    _assert_no_secret(result, instance)
    return {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}


def _assert_no_secret(result, instance, extra: tuple[str, ...] = ()) -> None:
    text = "\n".join(str(e) for e in result.all_events)
    text += "\n".join(str(r) for r in instance.all_logs(result.run_id))
    for s in (SECURE_ADMIN_PASSWORD, *extra):
        assert s not in text, "a password appears in the run's events or logs"


def _md(e: dg.AssetCheckEvaluation, key: str) -> str:
    return str(e.metadata[key].value)


@pytest.fixture
def svc_password(monkeypatch) -> str:
    pw = "svc-" + secrets.token_urlsafe(12)
    monkeypatch.setenv(PW_ENV, pw)
    return pw


def test_materializing_applies_the_access_and_drift_fails_the_check_naming_it(
    secure_kafka: LocalCluster,  # noqa: F811
    tmp_path: Path,
    svc_password: str,
    monkeypatch,
) -> None:
    monkeypatch.setenv("ECAP_CHANGE_LOG", str(tmp_path / "change.log"))
    monkeypatch.setenv("ECAP_SNAPSHOT_DIR", str(tmp_path / "snapshots"))
    p = "aa" + uuid.uuid4().hex[:6]
    catalog = load_catalog(prefixed_catalog(tmp_path, p, _edit(p)))
    instance = dg.DagsterInstance.ephemeral()

    before = _checks(catalog, secure_kafka, instance)
    assert set(before) == set(ACCESS_PARTS)
    assert not before["acls"].passed and not before["users"].passed
    assert not before["quotas"].passed
    assert f"svc-{p} is missing" in before["users"].description

    result = _materialize(catalog, secure_kafka, instance, with_topics=True)
    assert result.success, run_failures(result)
    _assert_no_secret(result, instance, (svc_password,))
    mats = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert {"kafka_access/acls", "kafka_access/users", "kafka_access/quotas"} <= set(mats)
    acls = mats["kafka_access/acls"]
    assert acls["created_bindings"].value == acls["declared_bindings"].value > 0
    assert f"User:fraud-detector-{p}" in acls["principals"].value
    assert f"env {PW_ENV}" in mats["kafka_access/users"]["users"].value
    # The checks ran after the materialization, in the same run, and pass.
    evals = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    assert {k for k, e in evals.items() if e.passed} >= set(ACCESS_PARTS), {
        k: e.description for k, e in evals.items()
    }

    admin = _admin(secure_kafka)
    # 1. A binding removed with Kafka's own kafka-acls: the acls check fails and names it.
    removed = kafka_tool(
        admin, "kafka-acls", "--remove", "--force",
        "--allow-principal", f"User:fraud-detector-{p}", "--operation", "Read",
        "--topic", f"{p}.transactions",
    )  # fmt: skip
    assert removed.returncode == 0, removed.stderr
    # 2. A SCRAM credential deleted, and a quota changed, with kafka-configs.
    dropped = kafka_tool(
        admin, "kafka-configs", "--alter", "--delete-config", "SCRAM-SHA-512",
        "--entity-type", "users", "--entity-name", f"svc-{p}",
    )  # fmt: skip
    assert dropped.returncode == 0, dropped.stderr
    changed = kafka_tool(
        admin, "kafka-configs", "--alter", "--add-config", "producer_byte_rate=12345",
        "--entity-type", "users", "--entity-name", f"svc-{p}",
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr

    drift = _checks(catalog, secure_kafka, instance)
    assert not drift["acls"].passed
    assert drift["acls"].severity == dg.AssetCheckSeverity.WARN
    assert (
        f"allow User:fraud-detector-{p} read on topic {p}.transactions" in drift["acls"].description
    ), drift["acls"].description
    assert drift["acls"].metadata["missing_bindings"].value == 1
    assert f"| missing | User:fraud-detector-{p} | read | topic {p}.transactions |" in _md(
        drift["acls"], "drift"
    )
    assert not drift["users"].passed and f"svc-{p} is missing" in drift["users"].description
    assert not drift["quotas"].passed
    assert "producer_byte_rate is 12345, expected 1048576" in drift["quotas"].description
    assert f"| user=svc-{p} | producer_byte_rate | 1048576 | 12345 |" in _md(
        drift["quotas"], "drift"
    )

    # A binding nobody declared, outside the owned scope (the catalog owns nothing): left
    # alone, listed as unmanaged, never a failure.
    added = kafka_tool(
        admin, "kafka-acls", "--add", "--allow-principal", f"User:stranger-{p}",
        "--operation", "Describe", "--topic", f"{p}.transactions",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr

    # Materializing again mends everything, through the one write path.
    again = _materialize(catalog, secure_kafka, instance)
    assert again.success, run_failures(again)
    mended = _checks(catalog, secure_kafka, instance)
    assert all(e.passed for e in mended.values()), {k: e.description for k, e in mended.items()}
    assert f"User:stranger-{p}" in _md(mended["acls"], "unmanaged")
    with KafkaGateway(admin) as gw:
        assert any(b.principal == f"User:stranger-{p}" for b in read_acl_bindings(gw) or ())
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert svc_password not in f.read_text(errors="replace")


def test_an_extra_binding_in_the_owned_scope_fails_the_check(
    secure_kafka: LocalCluster,  # noqa: F811
    tmp_path: Path,
    svc_password: str,
    monkeypatch,
) -> None:
    monkeypatch.setenv("ECAP_CHANGE_LOG", str(tmp_path / "change.log"))
    monkeypatch.setenv("ECAP_SNAPSHOT_DIR", str(tmp_path / "snapshots"))
    p = "ow" + uuid.uuid4().hex[:6]
    catalog = load_catalog(prefixed_catalog(tmp_path, p, _edit(p, owns=True)))
    instance = dg.DagsterInstance.ephemeral()
    assert _materialize(catalog, secure_kafka, instance, with_topics=True).success
    added = kafka_tool(
        _admin(secure_kafka), "kafka-acls", "--add",
        "--allow-principal", f"User:fraud-detector-{p}", "--operation", "Write",
        "--topic", f"{p}.transactions",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    drift = _checks(catalog, secure_kafka, instance)
    assert not drift["acls"].passed
    assert f"allow User:fraud-detector-{p} write on topic {p}.transactions" in (
        drift["acls"].description
    )
    assert drift["acls"].metadata["extra_owned_bindings"].value == 1
    assert "| extra (owned scope) |" in _md(drift["acls"], "drift")
    assert drift["users"].passed and drift["quotas"].passed
    # Materializing deletes it (the catalog owns its principals' bindings), after a
    # pre-change snapshot of the access it replaces.
    mended = _materialize(catalog, secure_kafka, instance)
    assert mended.success, run_failures(mended)
    meta = next(
        e.materialization.metadata
        for e in mended.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "kafka_access/acls"
    )
    assert meta["deleted_bindings"].value == 1
    assert meta["pre_change_snapshot"].value != "none needed"
    assert all(e.passed for e in _checks(catalog, secure_kafka, instance).values())


def test_a_missing_password_fails_the_materialization_and_changes_nothing(
    secure_kafka: LocalCluster,  # noqa: F811
    tmp_path: Path,
    monkeypatch,
) -> None:
    monkeypatch.delenv(PW_ENV, raising=False)
    monkeypatch.setenv("ECAP_CHANGE_LOG", str(tmp_path / "change.log"))
    monkeypatch.setenv("ECAP_SNAPSHOT_DIR", str(tmp_path / "snapshots"))
    p = "np" + uuid.uuid4().hex[:6]
    catalog = load_catalog(prefixed_catalog(tmp_path, p, _edit(p)))
    with KafkaGateway(_admin(secure_kafka)) as gw:
        before = read_acl_bindings(gw)
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize(catalog, secure_kafka, instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = str(failure.event_specific_data.error)
    assert f"{PW_ENV} is not set" in text, text
    assert "Traceback" not in failure.event_specific_data.error.message
    with KafkaGateway(_admin(secure_kafka)) as gw:
        assert read_acl_bindings(gw) == before


def test_without_an_authorizer_the_checks_pass_with_a_note(
    kafka_cluster: LocalCluster, tmp_path: Path, svc_password: str, monkeypatch
) -> None:
    monkeypatch.setenv("ECAP_CHANGE_LOG", str(tmp_path / "change.log"))
    p = "na" + uuid.uuid4().hex[:6]
    catalog = load_catalog(prefixed_catalog(tmp_path, p, _edit(p)))
    instance = dg.DagsterInstance.ephemeral()
    checks = _checks(catalog, kafka_cluster, instance)
    assert all(e.passed for e in checks.values())
    assert all("no authorizer" in e.description for e in checks.values())
    assert checks["acls"].metadata["authorizer"].value == "none"
    result = _materialize(catalog, kafka_cluster, instance)
    assert result.success, run_failures(result)
    meta = next(iter(result.get_asset_materialization_events())).materialization.metadata
    assert meta["authorizer"].value == "none" and meta["applied_steps"].value == 0


# -- the rule, over any cluster state (pure) ------------------------------------------------

PRINCIPALS = ("User:a", "User:b", "User:c")
bindings = st.builds(
    AclBinding,
    principal=st.sampled_from(PRINCIPALS),
    resource_type=st.sampled_from(["topic", "group"]),
    resource_name=st.sampled_from(["t1", "t2", "g"]),
    pattern=st.sampled_from(["literal", "prefixed"]),
    operation=st.sampled_from(["read", "write", "describe"]),
)


@settings(max_examples=150, deadline=None)
@given(
    declared=st.frozensets(bindings, max_size=8),
    on_cluster=st.frozensets(bindings, max_size=8),
    owns=st.booleans(),
)
def test_the_acls_check_fails_exactly_for_missing_or_owned_extra_bindings(
    declared, on_cluster, owns
) -> None:
    by_principal: dict[str, list[AclBinding]] = {}
    for b in declared:
        by_principal.setdefault(b.principal, []).append(b)
    spec = AccessSpec(
        principals=tuple(
            PrincipalSpec(p, p, "service", tuple(sorted(bs))) for p, bs in by_principal.items()
        ),
        owns="declared_principals" if owns else "nothing",
        declared=True,
    )
    state = AccessState(authorizer=True, acls=on_cluster)
    plan, report = plan_access(spec, state, "c1")
    acls = next(o for o in access_check_outcomes(spec, plan, report, state) if o.part == "acls")
    missing = declared - on_cluster
    extra_owned = {
        b for b in on_cluster - declared if owns and b.principal in {d.principal for d in declared}
    }
    assert acls.passed == (not missing and not extra_owned)
    assert acls.metadata["missing_bindings"][1] == len(missing)
    assert acls.metadata["extra_owned_bindings"][1] == len(extra_owned)
    assert acls.metadata["unmanaged_bindings"][1] == len(on_cluster - declared) - len(extra_owned)
    if missing:
        assert min(missing).describe() in acls.description
    # Without an authorizer the same state is never drift.
    bare = AccessState(authorizer=False, acls=on_cluster)
    plan, report = plan_access(spec, bare, "c1")
    assert all(o.passed for o in access_check_outcomes(spec, plan, report, bare))
