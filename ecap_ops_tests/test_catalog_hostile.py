"""A catalog written by anyone cannot surprise: YAML 1.1 key coercions, aliases and
"billion laughs", merge keys, tags, NUL bytes, other encodings, huge files, huge numbers
and huge values all end in one `CatalogInvalid` naming the problem and where it is, never
a Python traceback, never a topic named `True`. Pure: no broker."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ecap_ops.catalog import Catalog, default_catalog_path, load_catalog, parse_catalog
from ecap_ops.catalog.loader import DEFAULT_MAX_BYTES, MAX_DEPTH, MAX_ENVIRONMENTS, MAX_ERRORS
from ecap_ops.errors import CatalogInvalid, ConfigError

SHIPPED = default_catalog_path().read_text(encoding="utf-8")
LEGAL_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")
GOOD = "topics:\n  orders: {partitions: 1}\n"
# How much of an offending value a message may show (40 characters, quotes, `...`).
SHOWN = 48

hostile = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def refused(text: str, env: str = "dev") -> CatalogInvalid:
    with pytest.raises(CatalogInvalid) as info:
        parse_catalog(text, env=env)
    return info.value


def assert_sound(catalog: Catalog) -> None:
    """What any catalog that loads must be: names Kafka accepts, numbers Kafka's types hold."""
    for t in catalog.topics:
        assert type(t.key) is str and type(t.name) is str
        assert LEGAL_NAME.fullmatch(t.name) and t.name not in (".", ".."), t.name
        assert not t.key.startswith("__")
        assert type(t.partitions) is int and 1 <= t.partitions <= 2**31 - 1
        assert type(t.replication_factor) is int and 1 <= t.replication_factor <= 32767
        for k, v in t.configs.items():
            assert type(k) is str and type(v) is str
            if k.endswith((".ms", ".bytes")):
                assert -1 <= int(v) <= 2**63 - 1
        assert t.lag.warn_seconds > 0 and t.lag.crit_seconds >= t.lag.warn_seconds


def load_or_refuse(text: str) -> Catalog | None:
    """The property every input must have: it loads (soundly) or raises CatalogInvalid."""
    try:
        catalog = parse_catalog(text, env="dev")
    except CatalogInvalid as exc:
        assert exc.errors and all(isinstance(e, str) and e for e in exc.errors)
        assert len(exc.errors) <= MAX_ERRORS + 1
        return None
    assert_sound(catalog)
    return catalog


# --- YAML 1.1 keys ---------------------------------------------------------------------

COERCED_KEYS = [
    ("yes", "a boolean (true)"),
    ("no", "a boolean (false)"),
    ("on", "a boolean (true)"),
    ("Off", "a boolean (false)"),
    ("true", "a boolean (true)"),
    ("null", "null"),
    ("~", "null"),
    ("0777", "a number"),
    ("12", "a number"),
    ("0x1f", "a number"),
    ("1_000", "a number"),
    ("1:30", "a number"),
    ("1.5", "a number"),
    (".inf", "a number"),
    ("2024-01-01", "a date"),
]


@pytest.mark.parametrize("key, kind", COERCED_KEYS, ids=[k for k, _ in COERCED_KEYS])
def test_a_topic_key_yaml_would_coerce_is_refused_with_a_hint_to_quote_it(key, kind):
    text = f"version: 1\ntopics:\n  orders: {{partitions: 1}}\n  {key}: {{partitions: 1}}\n"
    exc = refused(text)
    [problem] = [e for e in exc.errors if e.startswith(f"topics.{key} ")]
    assert "(line 4, column 3)" in problem, problem
    assert kind in problem and f'quote it ("{key}")' in problem, problem
    assert "True" not in str(exc) and "None" not in str(exc)


@pytest.mark.parametrize("key", [k for k, _ in COERCED_KEYS if LEGAL_NAME.fullmatch(k)])
def test_the_same_key_quoted_is_a_topic_of_that_exact_name(key):
    catalog = parse_catalog(f'topics:\n  "{key}": {{partitions: 1}}\n', env="dev")
    assert catalog.names() == [key]


def test_coerced_keys_are_refused_everywhere_not_only_under_topics():
    text = (
        "environments:\n  dev: {replication_factor: 1}\n  on: {replication_factor: 1}\n"
        "topics:\n  orders:\n    partitions: 1\n    configs: {yes: 1}\n"
        "    lag: {null: 5}\n"
    )
    exc = refused(text)
    starts = [e.split(" (line")[0] for e in exc.errors if "(line" in e]
    assert starts == ["environments.on", "topics.orders.configs.yes", "topics.orders.lag.null"]
    assert any("line 7, column 15" in e for e in exc.errors), exc.errors


def test_values_keep_their_yaml_types():
    catalog = parse_catalog(
        "topics:\n  orders: {partitions: 6, transactional: true, retention: 3600000}\n", "dev"
    )
    spec = catalog.get("orders")
    assert spec.partitions == 6 and type(spec.partitions) is int
    assert spec.transactional is True
    assert spec.configs["retention.ms"] == "3600000"


# --- aliases, anchors, merge keys, tags ---------------------------------------------------

BILLION_LAUGHS = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
    "topics:\n  orders: {partitions: 1, purpose: *i}\n"
)


def test_a_billion_laughs_document_is_refused_at_its_first_anchor():
    exc = refused(BILLION_LAUGHS)
    assert exc.errors == [
        "(YAML, line 1, column 4): YAML anchors (&a) are not allowed in a catalog; write each value out"
    ]


def test_a_billion_laughs_file_is_refused_too(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS, encoding="utf-8")
    with pytest.raises(CatalogInvalid, match="anchors"):
        load_catalog(path, env="dev")


def test_an_alias_is_refused_naming_it_and_its_place():
    exc = refused("topics:\n  orders:\n    partitions: *x\n")
    assert exc.errors == [
        "(YAML, line 3, column 17): YAML aliases (*x) are not allowed in a catalog; write the value out"
    ]


def test_a_merge_key_is_refused():
    exc = refused("topics:\n  orders:\n    <<: {partitions: 1}\n    retention: 1d\n")
    assert exc.errors[0].startswith("topics.orders.<< (line 3, column 5): merge keys (<<)")


@pytest.mark.parametrize(
    "value", ["!!python/object/apply:os.system ['true']", "!!binary aGk=", "!!set {a}", "!!str 5"]
)
def test_tags_are_refused(value):
    exc = refused(f"topics:\n  orders: {{partitions: 1, purpose: {value}}}\n")
    assert len(exc.errors) == 1
    assert exc.errors[0].startswith("(YAML, line 2, column 36): YAML tags (!!"), exc.errors


# --- keys that are not text, structure -----------------------------------------------------


@pytest.mark.parametrize(
    "text, found",
    [
        ("topics:\n  [a, b]: {partitions: 1}\n  c: {partitions: 1}\n", "a list"),
        ("topics:\n  ? {a: 1}\n  : {partitions: 1}\n  c: {partitions: 1}\n", "a mapping"),
        ("topics:\n  ? - a\n  : {partitions: 1}\n  c: {partitions: 1}\n", "a list"),
    ],
)
def test_a_list_or_mapping_as_a_key_is_refused_with_its_path(text, found):
    exc = refused(text)
    assert exc.errors[0].startswith("topics (line 2, column "), exc.errors
    assert f"a key must be text, found {found}" in exc.errors[0]


@pytest.mark.parametrize(
    "text, error",
    [
        ("", "(top): the catalog is empty"),
        ("# only a comment\n", "(top): the catalog is empty"),
        ("- a\n- b\n", "(top): the catalog must be a mapping with a `topics:` key, found a list"),
        ("just words\n", "(top): the catalog must be a mapping with a `topics:` key, found"),
        ("42\n", "(top): the catalog must be a mapping with a `topics:` key, found"),
    ],
)
def test_a_top_level_that_is_not_a_mapping_is_refused(text, error):
    exc = refused(text)
    assert exc.errors[0].startswith(error), exc.errors


def test_a_second_document_is_refused_at_its_start():
    exc = refused(GOOD + "---\ntopics:\n  other: {partitions: 1}\n")
    assert exc.errors[0].startswith("(YAML, line 3, column 1): a second YAML document"), exc.errors


def test_a_tab_indent_is_named():
    exc = refused("topics:\n\torders: {partitions: 1}\n")
    assert exc.errors[0].startswith("(YAML, line 2, column 1): ")
    assert "tab" in exc.errors[0]


def test_nesting_deeper_than_a_catalog_needs_is_refused():
    exc = refused("topics: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n")
    assert exc.errors == [
        f"(YAML, line 1, column {8 + MAX_DEPTH}): nested more than {MAX_DEPTH} levels deep; a catalog needs only a few"
    ]


def test_very_deep_nesting_is_refused_before_it_costs_anything():
    exc = refused("topics: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert exc.errors[0].startswith("(YAML, line 1, column ")
    assert "nest" in exc.errors[0]


def test_broken_yaml_names_line_and_column():
    exc = refused("topics:\n  orders: {partitions: 3\n")
    assert exc.errors[0].startswith("(YAML, line 3, column 1): "), exc.errors


def test_a_topic_name_with_a_newline_is_invalid():
    exc = refused('topics:\n  "orders\\n": {partitions: 1}\n')
    assert exc.errors == [
        "topics.orders\\n: invalid topic name: use only letters, digits, '.', '_' and '-'"
    ]


def test_environments_are_bounded():
    envs = "".join(f"  e{i}: {{}}\n" for i in range(MAX_ENVIRONMENTS + 1))
    exc = refused(f"environments:\n  dev: {{}}\n{envs}{GOOD}")
    assert any(e.startswith("environments: ") and "may have 16" in e for e in exc.errors)


def test_thousands_of_errors_list_the_first_and_count_the_rest():
    text = "topics:\n" + "".join(f"  t{i}: {{partitions: 0}}\n" for i in range(500))
    exc = refused(text)
    assert len(exc.errors) == MAX_ERRORS + 1
    assert exc.errors[-1] == f"... and {500 - MAX_ERRORS} more error(s)"


def test_thousands_of_bad_keys_list_the_first_and_count_the_rest():
    exc = refused("topics: {" + "yes: 1, " * 1000 + "}\n")
    assert len(exc.errors) == MAX_ERRORS + 1
    # 1000 coerced keys, 999 duplicates, and `yes` is no mapping of settings.
    assert exc.errors[-1] == f"... and {2000 - MAX_ERRORS} more error(s)"


@pytest.mark.parametrize(
    "text",
    [
        SHIPPED,
        BILLION_LAUGHS,
        "topics:\n  yes: {partitions: 1}\n  [a]: 1\n  b: {partitions: 1}\n  b: {}\n",
        "topics:\n  orders:\n    partitions: *x\n",
        "topics:\n  orders: {partitions: 1}\n---\n",
        "topics: " + "[" * 40 + "]" * 40 + "\n",
    ],
    ids=["shipped", "bomb", "keys", "alias", "two documents", "nesting"],
)
def test_without_libyaml_the_same_rules_give_the_same_answers(monkeypatch, text):
    def outcome():
        try:
            return parse_catalog(text, env="dev").digest
        except CatalogInvalid as exc:
            return exc.errors

    with_libyaml = outcome()
    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    assert outcome() == with_libyaml


# --- bytes: NUL, encodings, size ------------------------------------------------------------


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_bytes(data)
    return path


def _load_refused(path: Path) -> CatalogInvalid:
    with pytest.raises(CatalogInvalid) as info:
        load_catalog(path, env="dev")
    assert info.value.source == str(path)
    return info.value


def test_a_nul_byte_is_refused_with_its_line_and_column(tmp_path):
    exc = _load_refused(_write(tmp_path, b"topics:\n  orders: {partitions: 1}\n  b\x00: x\n"))
    assert exc.errors[0].startswith("(YAML, line 3, column 4): a NUL byte"), exc.errors


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_other_encodings_are_refused(tmp_path, encoding):
    exc = _load_refused(_write(tmp_path, GOOD.encode(encoding)))
    assert "(file, line 1, column 1)" in exc.errors[0] or "NUL" in exc.errors[0], exc.errors
    assert "UTF-8" in exc.errors[0]


def test_invalid_utf8_names_line_and_column(tmp_path):
    exc = _load_refused(_write(tmp_path, b"topics:\n  \xc3\xa9t\xe9: {partitions: 1}\n"))
    assert exc.errors == [
        "(file, line 2, column 5): byte 0xe9 is not UTF-8; save the catalog as UTF-8 text"
    ]


def test_a_utf8_byte_order_mark_is_fine(tmp_path):
    assert load_catalog(_write(tmp_path, b"\xef\xbb\xbf" + GOOD.encode()), "dev").names() == [
        "orders"
    ]


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.yaml"
    with path.open("wb") as fh:
        fh.truncate(64 * 1024**3)  # sparse: reading it would take minutes and all memory
    exc = _load_refused(path)
    assert exc.errors[0].startswith(f"(file): the catalog is larger than {DEFAULT_MAX_BYTES}")
    assert "ECAP_CATALOG_MAX_BYTES" in exc.errors[0]


def test_a_device_without_a_size_is_read_only_up_to_the_limit():
    with pytest.raises(CatalogInvalid, match="larger than"):
        load_catalog("/dev/zero", env="dev")


def test_the_limit_is_configurable(tmp_path, monkeypatch):
    path = _write(tmp_path, SHIPPED.encode())
    monkeypatch.setenv("ECAP_CATALOG_MAX_BYTES", "1KiB")
    assert "larger than 1024 bytes" in str(_load_refused(path))
    monkeypatch.setenv("ECAP_CATALOG_MAX_BYTES", str(len(SHIPPED.encode())))
    assert len(load_catalog(path, env="dev").topics) == 5
    with pytest.raises(CatalogInvalid, match="larger than 100 bytes"):
        parse_catalog(SHIPPED, env="dev", max_bytes=100)


@pytest.mark.parametrize("bad", ["lots", "0", "-1", "1.5B", "9" * 300, "1 megabyte"])
def test_a_bad_limit_is_a_config_error_naming_the_variable(tmp_path, monkeypatch, bad):
    monkeypatch.setenv("ECAP_CATALOG_MAX_BYTES", bad)
    with pytest.raises(ConfigError, match="ECAP_CATALOG_MAX_BYTES") as info:
        load_catalog(_write(tmp_path, GOOD.encode()), env="dev")
    assert len(str(info.value)) < 200


def test_a_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CatalogInvalid, match="cannot read"):
        load_catalog(tmp_path, env="dev")


# --- numbers within Kafka's types, values shown short --------------------------------------

INT32, INT16, INT64 = 2**31 - 1, 2**15 - 1, 2**63 - 1


@pytest.mark.parametrize(
    "fields, path",
    [
        (f"partitions: {INT32 + 1}", "topics.orders.partitions"),
        (f"partitions: 1, replication_factor: {INT16 + 1}", "topics.orders.replication_factor"),
        (
            f"partitions: 1, configs: {{retention.ms: {INT64 + 1}}}",
            "topics.orders.configs.retention.ms",
        ),
        (
            f"partitions: 1, configs: {{max.message.bytes: {INT32 + 1}}}",
            "topics.orders.configs.max.message.bytes",
        ),
        (f"partitions: 1, max_message_size: {INT32 + 1}", "topics.orders.max_message_size"),
        (f"partitions: 1, retention: {INT64 + 1}", "topics.orders.retention"),
        ("partitions: 1, retention: 9999999999999999999w", "topics.orders.retention"),
        ("partitions: 1, retention_bytes: 99999999999TiB", "topics.orders.retention_bytes"),
        (
            f"partitions: 1, configs: {{segment.bytes: '{INT32 + 1}'}}",
            "topics.orders.configs.segment.bytes",
        ),
        ("partitions: 1, lag: {warn_seconds: .inf}", "topics.orders.lag.warn_seconds"),
        ("partitions: 1, lag: {warn_seconds: .nan}", "topics.orders.lag.warn_seconds"),
        (f"partitions: 1, lag: {{stall_after: {INT64}}}", "topics.orders.lag.stall_after"),
        (
            "partitions: 1, configs: {min.cleanable.dirty.ratio: .nan}",
            "topics.orders.configs.min.cleanable.dirty.ratio",
        ),
    ],
)
def test_numbers_beyond_kafkas_types_are_refused(fields, path):
    exc = refused(f"topics:\n  orders: {{{fields}}}\n")
    assert [e.split(":")[0] for e in exc.errors] == [path], exc.errors


def test_the_largest_numbers_kafka_holds_are_accepted():
    catalog = parse_catalog(
        f"environments:\n  dev: {{replication_factor: {INT16}}}\n"
        f"topics:\n  orders:\n    partitions: {INT32}\n"
        f"    configs: {{retention.ms: {INT64}, max.message.bytes: {INT32}}}\n",
        env="dev",
    )
    spec = catalog.get("orders")
    assert (spec.partitions, spec.replication_factor) == (INT32, INT16)
    assert spec.configs["retention.ms"] == str(INT64)
    assert spec.configs["max.message.bytes"] == str(INT32)


def test_a_number_of_thousands_of_digits_is_refused_quickly_and_shown_short():
    exc = refused("topics:\n  orders: {partitions: " + "9" * 100_000 + "}\n")
    assert exc.errors[0].startswith("(YAML, line 2, column 24): the number 999")
    assert len(str(exc)) < 300


@pytest.mark.parametrize(
    "field",
    [
        "partitions: {v}",
        "partitions: 1, retention: {v}",
        "partitions: 1, compression: {v}",
        "partitions: 1, cleanup_policy: {v}",
        "partitions: 1, partition_key: [{v}]",
        "partitions: 1, configs: {{segment.ms: {v}}}",
        "partitions: 1, configs: {{message.timestamp.type: {v}}}",
        "partitions: 1, lag: {{stall_after: {v}}}",
        "partitions: 1, {v}: 1",
        "partitions: 1, configs: {{{v}: 1}}",
    ],
)
def test_a_huge_value_is_never_echoed_back(field):
    value = "x" * 500_000
    exc = refused("topics:\n  orders: {" + field.format(v=value) + "}\n")
    message = str(exc)
    assert "x" * 300 not in message, message[:500]
    assert len(message) < 1500


@pytest.mark.parametrize(
    "text",
    [
        "topics:\n  ? {v}\n  : {{partitions: 1}}\n",
        "topics:\n  orders:\n    partitions: 1\n    ? {v}\n    : 1\n",
        "topics:\n  orders:\n    partitions: 1\n    configs:\n      ? {v}\n      : 1\n",
        "environments:\n  dev: {{}}\n  ? {v}\n  : {{replication_factor: 0}}\ntopics: {{a: {{partitions: 1}}}}\n",
        "topics:\n  ? {v}\n  : {{partitions: 1}}\n  ? {v}\n  : {{partitions: 1}}\n",
    ],
    ids=["topic", "field", "config", "environment", "duplicate"],
)
def test_a_huge_key_is_shown_by_its_first_characters_in_the_path(text):
    exc = refused(text.format(v="x" * 500_000))
    message = str(exc)
    assert "x" * 300 not in message, message[:500]
    assert "x" * 40 in message and "..." in message
    assert len(message) < 1500


def test_a_huge_environment_name_is_not_echoed_back():
    exc = refused(GOOD, env="e" * 100_000)
    assert len(str(exc)) < 500


# --- properties ------------------------------------------------------------------------------

YAML_BITS = st.sampled_from(
    [
        "yes", "no", "on", "off", "true", "null", "~", "0777", "0x1F", "1_000", "1:30:00",
        "1.5", ".inf", ".nan", "-.inf", "2024-01-01", "2024-02-30", "2001-12-14t21:59:43.10-05:00",
        "<<", "=", "*a", "&a x", "!!str x", "!!binary aGk=", "!foo x", "[1, 2]", "{a: 1}", "[]",
        "{}", "''", '""', "'yes'", '"\\0"', '"\\x85"', "|\n  block", ">-\n  folded", "- a",
        "? a", "%YAML 1.1", "---", "...", "#", "@x", "`x", "\t", " ", "\x00", "\ufeff",
        "\u2028", "\ud800", "9" * 50, "-" + "9" * 30, "1e400", "0b1010", "0o17", "+12",
        "x" * 300, "__consumer_offsets", ".", "..", "a.b", "a_b", "-1", "0",
    ]
)  # fmt: skip
SCALARS = st.one_of(
    YAML_BITS,
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats().map(repr),
    st.text(max_size=30),
)


@hostile
@given(st.text(max_size=400))
@example("yes: 1")
@example("topics: {yes: {partitions: 1}}")
@example(BILLION_LAUGHS)
@example("topics:\n  a: {partitions: 1}\n  a\ud800: 1\n")
def test_any_text_loads_or_is_catalog_invalid(text):
    load_or_refuse(text)


@hostile
@given(st.text(alphabet="abc01 :-_.{}[],&*!<>|'\"\n\t#?~%@`=\\", max_size=300))
def test_any_yaml_like_text_loads_or_is_catalog_invalid(text):
    load_or_refuse(text)


@hostile
@given(st.binary(max_size=400))
@example(b"\xff\xfe" + GOOD.encode("utf-16-le"))
@example(b"\xef\xbb\xbf" + GOOD.encode())
@example(GOOD.encode()[:-3] + b"\xc3")
def test_any_bytes_as_a_catalog_file_load_or_are_catalog_invalid(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "catalog.yaml"
    path.write_bytes(data)
    try:
        assert_sound(load_catalog(path, env="dev"))
    except CatalogInvalid as exc:
        assert exc.errors and exc.source == str(path)


_LINE = re.compile(r"^(\s*)([A-Za-z_.\-]+):(.*)$")
SHIPPED_LINES = SHIPPED.splitlines()


@st.composite
def mutated_catalog(draw) -> str:
    """The shipped catalog with a few of its keys or values replaced by raw YAML text."""
    lines = list(SHIPPED_LINES)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.sampled_from([n for n, line in enumerate(lines) if _LINE.match(line)]))
        indent, key, value = _LINE.match(lines[i]).groups()
        new = draw(SCALARS).replace("\n", " ")
        how = draw(st.sampled_from(["key", "value", "both", "insert"]))
        if how == "key":
            lines[i] = f"{indent}{new}:{value}"
        elif how == "value":
            lines[i] = f"{indent}{key}: {new}"
        elif how == "both":
            lines[i] = f"{indent}{new}: {draw(SCALARS).replace(chr(10), ' ')}"
        else:
            lines.insert(i + 1, f"{indent}{new}: {draw(SCALARS).replace(chr(10), ' ')}")
    return "\n".join(lines) + "\n"


@hostile
@given(mutated_catalog())
def test_the_shipped_catalog_mutated_as_text_loads_or_is_catalog_invalid(text):
    load_or_refuse(text)


SHIPPED_DATA = yaml.safe_load(SHIPPED)
VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(),
        st.text(max_size=40),
        YAML_BITS,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(data, prefix=()):
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, (*prefix, k))


ALL_PATHS = [p for p in _paths(SHIPPED_DATA) if p]


@st.composite
def mutated_data(draw) -> str:
    """The shipped catalog as data, a few values or keys replaced, written back as YAML."""
    import copy

    data = copy.deepcopy(SHIPPED_DATA)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent = data
        for k in path[:-1]:
            if not isinstance(parent, dict) or k not in parent:
                break
            parent = parent[k]
        else:
            if isinstance(parent, dict) and path[-1] in parent:
                if draw(st.booleans()):
                    parent[path[-1]] = draw(VALUES)
                else:
                    parent[draw(st.text(max_size=20) | YAML_BITS)] = parent.pop(path[-1])
    return yaml.safe_dump(data, allow_unicode=draw(st.booleans()), sort_keys=False)


@hostile
@given(mutated_data())
def test_the_shipped_catalog_mutated_as_data_loads_or_is_catalog_invalid(text):
    load_or_refuse(text)


@hostile
@given(st.lists(SCALARS, min_size=1, max_size=5), st.booleans())
def test_a_catalog_that_loads_names_its_topics_exactly_as_written(keys, quote):
    import json

    body = "".join(f"  {json.dumps(k) if quote else k}: {{partitions: 1}}\n" for k in keys)
    catalog = load_or_refuse(f"topics:\n{body}")
    if catalog is not None:
        assert_sound(catalog)
        if quote:
            assert catalog.names() == list(dict.fromkeys(keys))
        else:
            # Every name is text the file contains, never YAML's reading of it (`True`
            # for yes, `None` for null); only double quotes' escapes (\\x41) may differ.
            written = " ".join(keys)
            escapes = any(k.lstrip().startswith('"') for k in keys)
            assert all(n in written or escapes for n in catalog.names()), (keys, catalog.names())


# --- the CLI ---------------------------------------------------------------------------------

ECAP_OPS = Path(sys.executable).parent / "ecap-ops"
# The CLI's environment without a catalog, environment or broker of the caller's.
CLI_ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("ECAP_CATALOG", "ECAP_CATALOG_MAX_BYTES", "ECAP_ENV")
    and not k.startswith("KAFKA_")
}


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"topics:\n  yes: {partitions: 1}\n", "topics.yes (line 2, column 3)"),
        (BILLION_LAUGHS.encode(), "YAML anchors (&a)"),
        (b"topics:\n  [a]: {partitions: 1}\n", "a key must be text"),
        (b"topics:\n  a\x00: {partitions: 1}\n", "line 2, column 4): a NUL byte"),
        (b"\xff\xfe" + GOOD.encode("utf-16-le"), "UTF-16"),
        (b"topics:\n  a: {partitions: 99999999999}\n", "must be <= 2147483647"),
    ],
)
def test_cli_plan_with_a_bad_catalog_exits_1_with_the_problem_and_no_traceback(
    tmp_path, data, problem
):
    path = _write(tmp_path, data)
    out = subprocess.run(
        [str(ECAP_OPS), "-b", "127.0.0.1:1", "--catalog", str(path), "plan"],
        capture_output=True,
        text=True,
        timeout=120,
        env=CLI_ENV,
    )
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert out.stderr.startswith("error: "), out.stderr
    assert problem in out.stderr, out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    # The catalog is refused before any connection: no broker error in the message.
    assert "127.0.0.1:1" not in out.stderr


def test_cli_plan_with_a_bad_size_limit_names_the_variable(tmp_path):
    path = _write(tmp_path, GOOD.encode())
    out = subprocess.run(
        [str(ECAP_OPS), "-b", "127.0.0.1:1", "--catalog", str(path), "plan"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**CLI_ENV, "ECAP_CATALOG_MAX_BYTES": "lots"},
    )
    assert out.returncode == 1
    assert out.stderr.startswith("error: ECAP_CATALOG_MAX_BYTES"), out.stderr
    assert "Traceback" not in out.stderr
