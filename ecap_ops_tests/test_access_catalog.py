"""Declared access in the catalog: roles expand to the bindings they need, and every bad
input (unknown operation or resource type, a password in the catalog, a role naming an
undeclared topic, a negative quota, a wildcard or ALL in a prod catalog) is refused with
its YAML path, all at once, never a traceback."""

import copy

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecap_ops.catalog import load_catalog
from ecap_ops.catalog.access import OPERATIONS, RESOURCE_TYPES, AclBinding
from ecap_ops.catalog.loader import default_catalog_path, parse_catalog
from ecap_ops.errors import CatalogInvalid

BASE = yaml.safe_load(default_catalog_path().read_text())


def parse(edit, env: str = "dev"):
    data = copy.deepcopy(BASE)
    edit(data)
    return parse_catalog(yaml.safe_dump(data), env=env)


def errors_of(edit, env: str = "dev") -> list[str]:
    with pytest.raises(CatalogInvalid) as exc:
        parse(edit, env)
    return list(exc.value.errors) if hasattr(exc.value, "errors") else str(exc.value).splitlines()


def test_the_fraud_detector_role_expands_to_what_it_needs() -> None:
    cat = load_catalog(env="prod")
    mine = {b for b in cat.access.bindings() if b.principal == "User:fraud-detector"}
    assert mine == {
        AclBinding("User:fraud-detector", "topic", "transactions", "literal", "read"),
        AclBinding("User:fraud-detector", "topic", "transactions", "literal", "describe"),
        AclBinding("User:fraud-detector", "topic", "fraud-alerts", "literal", "write"),
        AclBinding("User:fraud-detector", "topic", "fraud-alerts", "literal", "describe"),
        AclBinding("User:fraud-detector", "group", "fraud-detector", "prefixed", "read"),
        AclBinding(
            "User:fraud-detector", "cluster", "kafka-cluster", "literal", "idempotent_write"
        ),
    }


def test_a_role_follows_the_environment_prefix() -> None:
    def prefixed(d):
        d["environments"]["prod"]["name_prefix"] = "prod."

    cat = parse(prefixed, env="prod")
    names = {b.resource_name for b in cat.access.bindings() if b.resource_type == "topic"}
    assert "prod.transactions" in names and "transactions" not in names


def test_access_changes_the_digest_and_no_access_keeps_it() -> None:
    with_access = parse(lambda d: None)
    without = parse(lambda d: [d.pop(k) for k in ("principals", "users", "quotas")])
    assert with_access.digest != without.digest
    assert not without.access.declared


@pytest.mark.parametrize(
    "edit, path, words",
    [
        (
            lambda d: d["principals"]["fraud-detector"]["reads"].append("no-such-topic"),
            "principals.fraud-detector.reads[1]",
            "not declared",
        ),
        (
            lambda d: d["users"]["analytics"].update(password="hunter2-in-git"),
            "users.analytics.password",
            "never goes in the catalog",
        ),
        (
            lambda d: d["quotas"][0].update(consumer_byte_rate=-5),
            "quotas[0].consumer_byte_rate",
            "positive",
        ),
        (
            lambda d: d.update(
                acls=[
                    {
                        "principal": "User:x",
                        "resource": "topik",
                        "name": "a",
                        "operations": ["read"],
                    }
                ]
            ),
            "acls[0].resource",
            "must be one of",
        ),
        (
            lambda d: d.update(
                acls=[
                    {
                        "principal": "User:x",
                        "resource": "topic",
                        "name": "a",
                        "operations": ["reed"],
                    }
                ]
            ),
            "acls[0].operations[0]",
            "must be one of",
        ),
        (
            lambda d: d.update(
                acls=[
                    {
                        "principal": "User:*",
                        "resource": "topic",
                        "name": "a",
                        "operations": ["read"],
                    }
                ]
            ),
            "acls[0].principal",
            "acknowledged: true",
        ),
        (
            lambda d: d.update(
                acls=[{"principal": "User:ops", "resource": "cluster", "operations": ["all"]}]
            ),
            "acls[0].operations",
            "acknowledged: true",
        ),
        (
            lambda d: d["principals"]["fraud-detector"].pop("group"),
            "principals.fraud-detector.group",
            "consumer group",
        ),
        (
            lambda d: d["users"]["analytics"].update(iterations=10),
            "users.analytics.iterations",
            "4096",
        ),
        (
            lambda d: d["users"]["analytics"].pop("password_env"),
            "users.analytics",
            "password_env or password_file",
        ),
    ],
)
def test_bad_access_is_refused_with_its_yaml_path(edit, path, words) -> None:
    errs = errors_of(edit)
    hit = [e for e in errs if e.startswith(path + ":")]
    assert hit, errs
    assert words in hit[0]


def test_a_password_in_the_catalog_is_never_echoed() -> None:
    secret = "s3cret-never-shown-" + "x" * 30
    with pytest.raises(CatalogInvalid) as exc:
        parse(lambda d: d["users"]["analytics"].update(password=secret))
    assert secret not in str(exc.value)


def test_wildcards_are_accepted_in_prod_when_acknowledged() -> None:
    cat = parse(
        lambda d: d.update(
            acls=[
                {
                    "principal": "User:*",
                    "resource": "topic",
                    "name": "public-",
                    "pattern": "prefixed",
                    "operations": ["read", "describe"],
                    "acknowledged": True,
                }
            ]
        ),
        env="prod",
    )
    assert AclBinding("User:*", "topic", "public-", "prefixed", "read") in cat.access.bindings()


def test_every_error_is_reported_at_once() -> None:
    def many(d):
        d["principals"]["fraud-detector"]["writes"] = ["nope"]
        d["users"]["analytics"]["mechanism"] = "MD5"
        d["quotas"][0]["request_percentage"] = -1

    errs = errors_of(many)
    assert any(e.startswith("principals.fraud-detector.writes[0]") for e in errs)
    assert any(e.startswith("users.analytics.mechanism") for e in errs)
    assert any(e.startswith("quotas[0].request_percentage") for e in errs)


anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)
ACL_FIELDS = ("principal", "resource", "name", "pattern", "operations", "permission", "host")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    section=st.sampled_from(["principals", "acls", "users", "quotas", "access"]),
    value=anything,
)
def test_any_value_in_an_access_section_is_accepted_or_refused_cleanly(section, value) -> None:
    try:
        cat = parse(lambda d: d.update({section: value}))
    except CatalogInvalid as exc:
        text = str(exc)
        assert section in text or "(top)" in text or "principals" in text, text
        return
    assert cat.access is not None


@settings(max_examples=150, deadline=None)
@given(
    field=st.sampled_from(ACL_FIELDS),
    value=anything,
)
def test_any_value_in_a_raw_acl_field_is_refused_with_its_path_or_valid(field, value) -> None:
    entry = {
        "principal": "User:ops",
        "resource": "topic",
        "name": "transactions",
        "operations": ["describe"],
    }
    entry[field] = value
    try:
        cat = parse(lambda d: d.update(acls=[entry]))
    except CatalogInvalid as exc:
        assert "acls[0]" in str(exc), str(exc)
        return
    for b in cat.access.acls:
        assert b.resource_type in RESOURCE_TYPES and b.operation in OPERATIONS


@settings(max_examples=150, deadline=None)
@given(
    key=st.sampled_from(["producer_byte_rate", "consumer_byte_rate", "request_percentage"]),
    value=st.one_of(
        st.integers(max_value=0),
        st.floats(max_value=0, allow_nan=False),
        st.builds(
            lambda n, unit: f"-{n}{unit}",
            st.integers(1, 10**9),
            st.sampled_from(["", "B", "KiB", "MiB", "GiB"]),
        ),
    ),
)
def test_a_zero_or_negative_quota_rate_is_refused_with_its_path(key, value) -> None:
    errs = errors_of(lambda d: d["quotas"][0].update({key: value}))
    hit = [e for e in errs if e.startswith(f"quotas[0].{key}:")]
    assert hit and "positive" in hit[0], errs


@settings(max_examples=150, deadline=None)
@given(
    field=st.sampled_from(["resource", "operations"]),
    value=st.text(min_size=1, max_size=300).filter(
        lambda s: s.strip().lower().replace("-", "_") not in (*OPERATIONS, *RESOURCE_TYPES)
    ),
)
def test_an_unknown_operation_or_resource_type_is_refused_with_its_path(field, value) -> None:
    entry = {"principal": "User:ops", "resource": "topic", "name": "t", "operations": ["read"]}
    entry[field] = value if field == "resource" else [value]
    errs = errors_of(lambda d: d.update(acls=[entry]))
    path = "acls[0].resource" if field == "resource" else "acls[0].operations[0]"
    hit = [e for e in errs if e.startswith(path + ":")]
    assert hit and "must be one of" in hit[0], errs
    assert len(hit[0]) < 400, "a message shows only a short prefix of the offending value"
