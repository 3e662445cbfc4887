"""Saved plans: sealed, optionally signed, read with bounds, and compared field by field
with the plan computed now. Pure, plus hostile files generated with hypothesis."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecap_ops.core.plan import make_plan
from ecap_ops.core.saved_plan import differences, parse_plan_file, plan_document, serialize_plan
from ecap_ops.errors import PlanStale
from ecap_ops_tests.test_changes import DEV
from ecap_ops_tests.test_plan import cluster, topic

KEY = b"0123456789abcdef0123456789abcdef"
PLAN = make_plan(DEV, cluster(topic("transactions", 6)))


def _bytes(doc) -> bytes:
    return serialize_plan(doc).encode()


def test_round_trip_and_no_differences():
    doc = parse_plan_file(_bytes(plan_document(PLAN, frozenset())), "p")
    assert differences(doc, PLAN, frozenset()) == []
    signed = parse_plan_file(_bytes(plan_document(PLAN, frozenset(), KEY)), "p", KEY)
    assert differences(signed, PLAN, frozenset()) == []


def test_each_difference_is_named():
    doc = parse_plan_file(_bytes(plan_document(PLAN, frozenset())), "p")
    other = make_plan(DEV, cluster(topic("transactions", 8)))
    diff = " | ".join(differences(doc, other, frozenset({"transactions"})))
    assert "cluster changed since the saved plan" in diff
    assert "acknowledgements" in diff
    assert "actions differ" in diff or "refusals differ" in diff


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda d: d.update(env="prod"), "checksum does not match"),
        (lambda d: d.pop("checksum"), "checksum does not match"),
        (lambda d: d.update(format="x"), "not a plan written by"),
        (lambda d: d.update(format_version=99), "format version"),
    ],
)
def test_edited_files_are_refused(mutate, needle):
    doc = plan_document(PLAN, frozenset())
    mutate(doc)
    with pytest.raises(PlanStale, match=needle):
        parse_plan_file(_bytes(doc), "p")


def test_signing_key_requires_a_valid_signature():
    with pytest.raises(PlanStale, match="has no signature"):
        parse_plan_file(_bytes(plan_document(PLAN, frozenset())), "p", KEY)
    with pytest.raises(PlanStale, match="does not verify"):
        parse_plan_file(
            _bytes(plan_document(PLAN, frozenset(), b"another key of 32 bytes......")), "p", KEY
        )


def test_nested_and_oversized_files_are_refused_clearly():
    with pytest.raises(PlanStale, match="nested more than"):
        parse_plan_file(b"[" * 100_000 + b"]" * 100_000, "p")
    with pytest.raises(PlanStale, match="NUL byte"):
        parse_plan_file(b'{"a": "\x00"}', "p")
    with pytest.raises(PlanStale, match="not JSON"):
        parse_plan_file(b'{"a": NaN}', "p")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_are_a_plan_or_a_clear_refusal(data):
    try:
        parse_plan_file(data, "p")
    except PlanStale as exc:
        assert str(exc).startswith("p")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(plan_document(PLAN, frozenset()))), JSON)
def test_any_field_replaced_is_refused_or_identical(field, value):
    doc = plan_document(PLAN, frozenset())
    doc[field] = value
    try:
        parsed = parse_plan_file(json.dumps(doc).encode(), "p")
    except PlanStale:
        return
    # Only a value equal to the original can pass the checksum.
    assert differences(parsed, PLAN, frozenset()) == []
