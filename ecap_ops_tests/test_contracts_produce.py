"""test-produce with the topic's contract: the message must match its JSON Schema, fit its
max_record_bytes, and a --key must be the message's key field; otherwise a clear error,
exit 1, no traceback and nothing produced."""

import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from ecap_ops.cli import main
from ecap_ops.gateway import KafkaGateway

pytestmark = pytest.mark.kafka

SCHEMA = {
    "type": "object",
    "required": ["user_id", "amount"],
    "properties": {"user_id": {"type": "string"}, "amount": {"type": "number"}},
}


@pytest.fixture(scope="module")
def contract_topic(kafka_settings, tmp_path_factory):
    from ecap_ops_tests.helpers import topic_name

    name = topic_name("contract-produce")
    folder = tmp_path_factory.mktemp("contract-produce")
    (folder / "schemas").mkdir()
    (folder / "schemas" / "tx.json").write_text(json.dumps(SCHEMA))
    (folder / "topics.yaml").write_text(
        f"""
version: 1
environments: {{dev: {{replication_factor: 1}}}}
topics:
  {name}:
    partitions: 3
    partition_key: user_id
contracts:
  {name}:
    schema: schemas/tx.json
    max_record_bytes: 300B
"""
    )
    with KafkaGateway(kafka_settings) as gw:
        gw.require(gw.create_topics({name: {"num_partitions": 3, "replication_factor": 1}}), "c")
    return name, str(folder / "topics.yaml")


def ends(settings, name) -> int:
    with KafkaGateway(settings) as gw:
        return sum(gw.offsets([(name, p) for p in range(3)], "latest").values())


def produce(bootstrap, catalog, *args):
    return CliRunner().invoke(
        main,
        ["-b", bootstrap, "test-produce", *args],
        env={"ECAP_CATALOG": catalog, "ECAP_ENV": "dev"},
    )


def test_the_guides_example_is_produced_keyed_by_user_id(contract_topic, kafka_bootstrap):
    name, catalog = contract_topic
    res = produce(
        kafka_bootstrap, catalog, name, '{"user_id": "test", "amount": 100}', "-o", "json"
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["key"] == "test" and doc["key_source"] == "user_id"


@pytest.mark.parametrize(
    "args,expected",
    [
        (
            ['{"user_id": "u1"}'],
            "does not match topic {name}'s schema: at $: 'amount' is a required",
        ),
        (['{"user_id": "u1", "amount": "x"}'], "at $.amount: 'x' is not of type 'number'"),
        (['{"user_id": 7, "amount": 1}'], "at $.user_id: 7 is not of type 'string'"),
        (
            ['{"user_id": "u1", "amount": 1}', "--key", "u2"],
            "--key 'u2' is not the message's user_id 'u1'",
        ),
        ([json.dumps({"user_id": "u1", "amount": 1, "pad": "x" * 400})], "max_record_bytes 300"),
    ],
)
def test_contract_violations_are_refused_and_nothing_is_produced(
    contract_topic, kafka_bootstrap, kafka_settings, args, expected
):
    name, catalog = contract_topic
    before = ends(kafka_settings, name)
    res = produce(kafka_bootstrap, catalog, name, *args)
    assert res.exit_code == 1
    assert expected.format(name=name) in res.output and "nothing was produced" in res.output
    assert "Traceback" not in res.output
    assert ends(kafka_settings, name) == before


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    doc=st.dictionaries(
        st.sampled_from(["user_id", "amount", "note"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-(10**6), 10**6),
            st.floats(allow_nan=False, allow_infinity=False),
            st.text(max_size=20),
            st.lists(st.integers(), max_size=2),
        ),
        max_size=3,
    )
)
def test_hostile_messages_are_produced_only_when_the_schema_accepts_them(
    contract_topic, kafka_bootstrap, kafka_settings, doc
):
    name, catalog = contract_topic
    text = json.dumps(doc)
    before = ends(kafka_settings, name)
    res = produce(kafka_bootstrap, catalog, name, text)
    assert "Traceback" not in res.output
    valid = (
        Draft202012Validator(SCHEMA).is_valid(doc)
        and len(text) + len(doc.get("user_id") or "") <= 300
    )
    if valid:
        assert res.exit_code == 0, res.output
        assert ends(kafka_settings, name) == before + 1
    else:
        assert res.exit_code == 1 and "nothing was produced" in res.output
        assert ends(kafka_settings, name) == before
