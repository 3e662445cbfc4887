"""Contracts in the catalog: the shipped ones load, and bad contracts are refused with
their YAML paths, all at once, before anything else happens."""

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecap_ops.catalog import load_catalog
from ecap_ops.catalog.contracts import MAX_SCHEMA_BYTES, contracts_of, schema_problem
from ecap_ops.catalog.loader import default_catalog_path
from ecap_ops.errors import CatalogInvalid

SHIPPED = default_catalog_path()


def copy_catalog(tmp: Path) -> Path:
    """The shipped catalog in a scratch folder, each topic's inline schema moved to a file
    `schemas/<topic>.json` beside it (the other way to declare a schema)."""
    shutil.copy(SHIPPED, tmp / "topics.yaml")
    (tmp / "schemas").mkdir(exist_ok=True)
    path = tmp / "topics.yaml"
    lines = path.read_text().splitlines(keepends=True)
    shipped = contracts_of(load_catalog())
    out, skipping = [], False
    for line in lines:
        if skipping and line.startswith("      "):
            continue
        skipping = False
        if (
            line.startswith("    schema:")
            and out[-1].startswith("  ")
            and out[-1].rstrip().endswith(":")
        ):
            topic = out[-1].strip().rstrip(":")
            (tmp / "schemas" / f"{topic}.json").write_text(json.dumps(shipped.get(topic).schema))
            out.append(f"    schema: schemas/{topic}.json\n")
            skipping = True
            continue
        out.append(line)
    path.write_text("".join(out))
    assert (
        contracts_of(load_catalog(path)).get("transactions").schema_source
        == "schemas/transactions.json"
    )
    return path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def errors_of(path: Path) -> list[str]:
    with pytest.raises(CatalogInvalid) as exc:
        load_catalog(path)
    return exc.value.errors


def test_shipped_contracts_cover_the_five_topics_with_the_guides_example():
    from jsonschema import Draft202012Validator

    catalog = load_catalog()
    contracts = contracts_of(catalog)
    assert sorted(contracts.by_topic) == sorted(t.key for t in catalog.topics)
    tx = contracts.get("transactions")
    assert tx.freshness_s == 600 and tx.severity == {"freshness": "CRIT"}
    assert contracts.get("product-updates").freshness_s is None
    # the guide's own test-produce message satisfies the transactions schema
    v = Draft202012Validator(tx.schema)
    assert v.is_valid({"user_id": "test", "amount": 100})
    assert not v.is_valid({"user_id": "test"})
    for t in catalog.topics:
        c = contracts.get(t.key)
        assert c.schema is not None and schema_problem(c.schema) is None
        assert c.max_record_bytes <= t.max_message_bytes
        assert t.partition_key in c.schema["required"]


def test_contracts_leave_the_digest_as_it_was(tmp_path):
    """Contracts change no cluster: a catalog's digest (plans, snapshots) ignores them."""
    path = copy_catalog(tmp_path)
    before = load_catalog(path).digest
    edit(path, "freshness: 5m", "freshness: 7m")
    assert load_catalog(path).digest == before


def test_not_json_schema_missing_file_and_negative_freshness_all_reported(tmp_path):
    path = copy_catalog(tmp_path)
    edit(path, "freshness: 10m ", "freshness: -1s ")
    edit(path, "schemas/user-events.json", "schemas/missing.json")
    (tmp_path / "schemas" / "fraud-alerts.json").write_text('{"type": "numbr"}')
    errs = errors_of(path)
    assert any(e.startswith("contracts.transactions.freshness: must be a positive") for e in errs)
    assert any(
        e.startswith(
            "contracts.user-events.schema: schema file 'schemas/missing.json' does not exist"
        )
        for e in errs
    )
    assert any(
        e.startswith(
            "contracts.fraud-alerts.schema: schemas/fraud-alerts.json: not a valid JSON Schema"
        )
        and "at type" in e
        for e in errs
    ), errs
    assert len(errs) == 3


@pytest.mark.parametrize(
    "text,expected",
    [
        ("{not json", "is not JSON"),
        ('{"type": "object", "type": "array"}', "appears twice"),
        ('{"$ref": "https://example.com/s.json"}', "points outside the schema"),
        ('{"$schema": "http://json-schema.org/draft-04/schema#"}', "reads Draft 2020-12"),
        ("[1, 2]", "a JSON Schema is an object"),
        ('{"properties": {"a": {"minimum": "x"}}}', "at properties.a.minimum"),
        ('{"type": NaN}', "not usable JSON"),
    ],
)
def test_bad_schema_files(tmp_path, text, expected):
    path = copy_catalog(tmp_path)
    (tmp_path / "schemas" / "transactions.json").write_text(text)
    errs = errors_of(path)
    assert len(errs) == 1 and errs[0].startswith("contracts.transactions.schema:"), errs
    assert expected in errs[0]


def test_schema_files_stay_inside_the_catalog_folder_and_are_bounded(tmp_path):
    path = copy_catalog(tmp_path)
    edit(path, "    schema: schemas/transactions.json", "    schema: ../etc/passwd")
    edit(path, "schemas/user-events.json", "/etc/passwd")
    (tmp_path / "schemas" / "fraud-alerts.json").write_text(" " * (MAX_SCHEMA_BYTES + 1))
    errs = errors_of(path)
    assert sum("inside the catalog's folder" in e for e in errs) == 2
    assert any("larger than" in e and e.startswith("contracts.fraud-alerts") for e in errs)
    assert not any("root:" in e for e in errs)


def test_contract_for_unknown_topic_unknown_key_and_bad_fields(tmp_path):
    path = copy_catalog(tmp_path)
    edit(
        path,
        "contracts:\n",
        "contracts:\n  nosuch: {freshness: 1m}\n",
    )
    edit(path, "max_record_bytes: 16KiB", "max_record_bytes: 16KiB\n    shcema: x")
    edit(path, "max_record_bytes: 5MiB", "max_record_bytes: 50MiB\n    max_skew: 0.5")
    edit(path, "severity: {freshness: critical}", "severity: {freshnes: critical}")
    errs = errors_of(path)
    joined = "\n".join(errs)
    assert "contracts.nosuch: is not a topic of this catalog" in joined
    assert "contracts.user-events.shcema: unknown key (did you mean 'schema'?)" in joined
    assert "contracts.analytics-results.max_record_bytes: 52428800 bytes is more than" in joined
    assert "contracts.analytics-results.max_skew: must be a number >= 1" in joined
    assert "contracts.transactions.severity.freshnes: unknown check" in joined


def test_inline_schema_and_no_contracts_section(tmp_path):
    path = copy_catalog(tmp_path)
    edit(
        path,
        "    schema: schemas/transactions.json",
        '    schema: {type: object, required: ["user_id"]}',
    )
    (tmp_path / "schemas" / "transactions.json").unlink()
    c = contracts_of(load_catalog(path)).get("transactions")
    assert c.schema_source == "inline" and c.schema["required"] == ["user_id"]
    assert contracts_of(load_catalog()).get("transactions").schema_source == "inline"
    text = path.read_text()
    start = text.index("contracts:\n")
    end = text.index("# ---- Access")
    path.write_text(text[:start] + text[end:])
    contracts = contracts_of(load_catalog(path))
    assert not contracts.declared
    assert contracts.get("transactions").schema is None


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    value=st.one_of(
        st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=30),
        st.from_regex(r"-?[0-9]{1,4}(\.[0-9])? ?(ms|s|m|h|d|w|x)?", fullmatch=True),
        st.integers(-(10**20), 0),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.lists(st.integers(), max_size=3),
    )
)
def test_hostile_freshness_is_refused_or_read_never_a_crash(tmp_path, value):
    path = copy_catalog(tmp_path)
    edit(path, "freshness: 5m", f"freshness: {json.dumps(value, ensure_ascii=False)}")
    try:
        catalog = load_catalog(path)
    except CatalogInvalid as exc:
        assert len(exc.errors) == 1
        assert exc.errors[0].startswith("contracts.user-events.freshness:"), exc.errors
        assert len(exc.errors[0]) < 400
        return
    got = contracts_of(catalog).get("user-events").freshness_s
    assert got is None or got > 0


@settings(max_examples=150, deadline=None)
@given(
    schema=st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(
                st.sampled_from(
                    ["type", "properties", "required", "minimum", "items", "$ref", "enum", "x"]
                ),
                inner,
                max_size=3,
            ),
        ),
        max_leaves=10,
    )
)
def test_schema_problem_never_raises(schema):
    problem = schema_problem(schema)
    assert problem is None or (isinstance(problem, str) and len(problem) < 400)


@pytest.mark.parametrize("word", ["[]", "[critical]", "{a: 1}", "1", "true", "null", "CRITICAL"])
def test_a_severity_that_is_not_a_word_is_refused_with_its_path(tmp_path, word):
    """Found by the hostile-catalog test: a list given as a check's severity crashed the
    reader (TypeError) instead of being refused."""
    path = copy_catalog(tmp_path)
    edit(path, "severity: {freshness: critical}", f"severity: {{freshness: {word}}}")
    errs = errors_of(path)
    assert any(
        e.startswith("contracts.transactions.severity.freshness: must be warning or critical")
        for e in errs
    ), errs
