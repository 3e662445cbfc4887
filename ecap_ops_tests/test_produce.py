"""test-produce against the real broker: a valid message lands in the partition Kafka's
default partitioner picks for its key (checked by reading it back with kcat); invalid JSON,
a missing key field and an oversize message get clear errors and produce nothing."""

import json
import subprocess

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2

from ecap_ops.catalog import load_catalog
from ecap_ops.cli import main
from ecap_ops.gateway import KafkaGateway
from ecap_ops.services.produce import MessageInvalid, key_for, parse_message, test_produce

pytestmark = pytest.mark.kafka


def java_partition(key: str, partitions: int) -> int:
    """Kafka's default partitioner for a keyed record: murmur2, positive, modulo partitions."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


@pytest.fixture(scope="module")
def keyed_topic(kafka_settings):
    """A 6-partition topic standing in for `transactions` (keyed by user_id), 2 KiB max message."""
    import dataclasses

    from ecap_ops_tests.helpers import topic_name

    name = topic_name("produce")
    base = load_catalog(env="dev")
    catalog = dataclasses.replace(
        base, topics=(dataclasses.replace(base.get("transactions"), name=name),)
    )
    with KafkaGateway(kafka_settings) as gw:
        gw.require(
            gw.create_topics(
                {
                    name: {
                        "num_partitions": 6,
                        "replication_factor": 1,
                        "configs": {"max.message.bytes": "2048"},
                    }
                }
            ),
            "creating",
        )
    return name, catalog


def _ends(settings, name) -> int:
    with KafkaGateway(settings) as gw:
        return sum(gw.offsets([(name, p) for p in range(6)], "latest").values())


def _kcat_read(bootstrap: str, topic: str, partition: int, offset: int) -> dict:
    out = subprocess.run(
        [
            "kcat",
            "-b",
            bootstrap,
            "-C",
            "-t",
            topic,
            "-p",
            str(partition),
            "-o",
            str(offset),
            "-c",
            "1",
            "-e",
            "-f",
            "%k\t%s\t%p\n",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    key, value, part = out.stdout.rstrip("\n").split("\t")
    return {"key": key, "value": json.loads(value), "partition": int(part)}


@pytest.mark.parametrize("user", ["u-1", "u-42", "customer-99812"])
def test_a_valid_message_lands_in_the_default_partitioners_partition(
    keyed_topic, kafka_settings, kafka_bootstrap, user
):
    name, catalog = keyed_topic
    msg = {"user_id": user, "amount": 12.5}
    with KafkaGateway(kafka_settings) as gw:
        p = test_produce(gw, catalog, name, json.dumps(msg))
    assert p.key == user and p.key_source == "user_id"
    assert p.partition == java_partition(user, 6)
    back = _kcat_read(kafka_bootstrap, name, p.partition, p.offset)
    assert back == {"key": user, "value": msg, "partition": p.partition}


def test_explicit_key_wins_and_cli_prints_partition_and_offset(keyed_topic, kafka_bootstrap):
    name, _catalog = keyed_topic
    res = CliRunner().invoke(
        main,
        [
            "-b",
            kafka_bootstrap,
            "test-produce",
            name,
            '{"note": "no user"}',
            "--key",
            "K7",
            "--output",
            "json",
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert (
        doc["partition"] == java_partition("K7", 6)
        and doc["offset"] >= 0
        and doc["key_source"] == "--key"
    )


@pytest.mark.parametrize(
    "text, expect",
    [
        ('{"user_id": "u1", "amount": ', "not valid JSON: Expecting value at line 1, column 29"),
        ('{"amount": 3}', "no 'user_id' field, the partition key of topic"),
        ("[1, 2]", "is a JSON list, not an object"),
        ('{"user_id": {"a": 1}}', "must be a string or number"),
        # Valid by the topic's schema (extra fields allowed), too big for its 2 KiB limit.
        (json.dumps({"user_id": "u1", "amount": 1, "blob": "x" * 3000}), "over topic"),
    ],
)
def test_bad_messages_get_clear_errors_and_nothing_is_produced(
    keyed_topic, kafka_settings, text, expect
):
    name, catalog = keyed_topic
    before = _ends(kafka_settings, name)
    with KafkaGateway(kafka_settings) as gw, pytest.raises(MessageInvalid) as exc:
        test_produce(gw, catalog, name, text)
    assert expect in str(exc.value) and "nothing was produced" in str(exc.value)
    assert _ends(kafka_settings, name) == before


def test_oversize_names_the_limit_and_cli_exits_1(keyed_topic, kafka_bootstrap, kafka_settings):
    name, _catalog = keyed_topic
    before = _ends(kafka_settings, name)
    res = CliRunner().invoke(
        main,
        [
            "-b",
            kafka_bootstrap,
            "test-produce",
            name,
            json.dumps({"blob": "y" * 4000}),
            "--key",
            "k",
        ],
    )
    assert res.exit_code == 1
    assert "max.message.bytes of 2,048" in res.output
    assert _ends(kafka_settings, name) == before


def test_unknown_topic_is_refused(kafka_settings):
    with KafkaGateway(kafka_settings) as gw, pytest.raises(MessageInvalid, match="does not exist"):
        test_produce(gw, load_catalog(env="dev"), "no-such-topic-x1", "{}")


@pytest.mark.parametrize(
    "value, key", [({"id": 7}, "7"), ({"id": "a"}, "a"), ({"id": True}, "true")]
)
def test_key_values_become_strings(value, key):
    assert key_for(parse_message(json.dumps(value)), "id", "t") == key


# ---- hostile messages: every one refused with a clear message, nothing produced ----------


@pytest.fixture(scope="module")
def plain_topic(kafka_settings):
    """A 1-partition topic not in the catalog (so no partition key), 4 KiB max message."""
    from ecap_ops_tests.helpers import topic_name

    name = topic_name("produce-plain")
    with KafkaGateway(kafka_settings) as gw:
        gw.require(
            gw.create_topics(
                {
                    name: {
                        "num_partitions": 1,
                        "replication_factor": 1,
                        "configs": {"max.message.bytes": "4096"},
                    }
                }
            ),
            "creating",
        )
    return name


def _end(gw: KafkaGateway, name: str) -> int:
    return gw.offsets([(name, 0)], "latest")[(name, 0)]


def _cli(bootstrap: str, *args: str, input: bytes | None = None):
    return CliRunner().invoke(main, ["-b", bootstrap, "test-produce", *args], input=input)


def _deep(n: int) -> str:
    return "[" * n + "]" * n


HOSTILE = [
    # (message, words the error must have)
    ('{"a": NaN}', ["NaN is not a JSON number", "line 1, column 7"]),
    ('{"a": 1,\n "b": -Infinity}', ["-Infinity is not a JSON number", "line 2, column 7"]),
    ("[Infinity]", ["Infinity is not a JSON number", "line 1, column 2"]),
    ('{"user_id": "a", "user_id": "b"}', ["the key 'user_id' twice in one object"]),
    ('{"x": {"k": 1, "k": 1}}', ["the key 'k' twice"]),
    (_deep(65), ["nested more than 64 levels deep", "line 1, column 65"]),
    ('{"a":' * 200 + "1" + "}" * 200, ["nested more than 64 levels deep"]),
    ('{"a": "\\ud800"}', ["lone surrogate escape", "$.a"]),
    ('{"\\udfff": 1}', ["lone surrogate escape", "(a key)"]),
    ("[" + "9" * 5000 + "]", ["not usable JSON", "4300 digits"]),
    ("", ["is empty"]),
    ("  \n ", ["is empty"]),
    ('{"a": 1} {"b": 2}', ["not valid JSON: Extra data at line 1, column 10"]),
    ('{"a": "\x00"}', ["not valid JSON: Invalid control character"]),
    ('{"a": "\udcff\udcfe"}', ["not valid UTF-8: byte 0xff at character 7"]),
]


@pytest.mark.parametrize("text, words", HOSTILE, ids=[f"h{i}" for i in range(len(HOSTILE))])
def test_hostile_messages_are_refused_clearly_and_nothing_is_produced(
    plain_topic, kafka_bootstrap, kafka_settings, text, words
):
    with KafkaGateway(kafka_settings) as gw:
        before = _end(gw, plain_topic)
        res = _cli(kafka_bootstrap, "--", plain_topic, text)
        assert res.exit_code == 1, res.output
        assert res.exception is None or isinstance(res.exception, SystemExit)
        assert "Traceback" not in res.output
        assert res.stderr.startswith("error: ") and "nothing was produced" in res.stderr
        for w in words:
            assert w in res.stderr, res.stderr
        assert len(res.stderr) < 600  # a short prefix of the value at most
        assert _end(gw, plain_topic) == before


def _run(bootstrap: str, *args, input: bytes | None = None) -> subprocess.CompletedProcess:
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ECAP_"))}
    env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    return subprocess.run(
        [sys.executable, "-m", "ecap_ops", "test-produce", *args],
        input=input if input is not None else b"",
        capture_output=True,
        env=env,
        timeout=120,
    )


def test_invalid_utf8_in_argv_file_or_stdin_is_refused_with_its_position(
    plain_topic, kafka_bootstrap, kafka_settings, tmp_path
):
    bad = b'{"name": "caf\xe9", "n": 1}'  # Latin-1, not UTF-8
    (tmp_path / "bad.json").write_bytes(b"\n" + bad)
    with KafkaGateway(kafka_settings) as gw:
        before = _end(gw, plain_topic)
        runs = {
            "argv": _run(kafka_bootstrap, plain_topic, bad),
            "file": _run(kafka_bootstrap, plain_topic, "--file", str(tmp_path / "bad.json")),
            "stdin -": _run(kafka_bootstrap, plain_topic, "-", input=bad),
            "stdin piped": _run(kafka_bootstrap, plain_topic, input=bad),
        }
        for how, r in runs.items():
            err = r.stderr.decode("utf-8", "replace")
            assert r.returncode == 1, (how, err)
            assert "Traceback" not in err, (how, err)
            assert "not valid UTF-8: byte 0xe9" in err, (how, err)
            assert "nothing was produced" in err
        assert "at character 13" in runs["argv"].stderr.decode()
        assert "at offset 14 (line 2, column 14)" in runs["file"].stderr.decode()
        assert "at offset 13 (line 1, column 14)" in runs["stdin -"].stderr.decode()
        assert _end(gw, plain_topic) == before


def test_big_messages_come_from_a_file_or_stdin(
    plain_topic, kafka_bootstrap, kafka_settings, tmp_path
):
    msg = {"blob": "é" * 1500, "n": 1}  # 3,000+ bytes: too long to type, fits the 4 KiB limit
    path = tmp_path / "m.json"
    path.write_text(json.dumps(msg, ensure_ascii=False), encoding="utf-8")
    with KafkaGateway(kafka_settings) as gw:
        before = _end(gw, plain_topic)
        from_file = _run(kafka_bootstrap, plain_topic, "--file", str(path), "--output", "json")
        assert from_file.returncode == 0, from_file.stderr
        piped = _run(kafka_bootstrap, plain_topic, "--output", "json", input=path.read_bytes())
        assert piped.returncode == 0, piped.stderr
        dash = _run(kafka_bootstrap, plain_topic, "-", "--output", "json", input=path.read_bytes())
        assert dash.returncode == 0, dash.stderr
        offsets = [json.loads(r.stdout)["offset"] for r in (from_file, piped, dash)]
        assert offsets == [before, before + 1, before + 2]
        assert _end(gw, plain_topic) == before + 3
    back = _kcat_read(kafka_bootstrap, plain_topic, 0, before)
    assert back["value"] == msg
    # Over the topic's limit: refused, whichever way it comes.
    path.write_text(json.dumps({"blob": "é" * 2100}, ensure_ascii=False), encoding="utf-8")
    with KafkaGateway(kafka_settings) as gw:
        before = _end(gw, plain_topic)
        big = _run(kafka_bootstrap, plain_topic, "--file", str(path))
        assert big.returncode == 1 and b"max.message.bytes of 4,096" in big.stderr
        both = _run(kafka_bootstrap, plain_topic, "{}", "--file", str(path))
        assert both.returncode == 1 and b"give the message once" in both.stderr
        missing = _run(kafka_bootstrap, plain_topic, "--file", str(tmp_path / "nope.json"))
        assert missing.returncode == 1 and b"no such file" in missing.stderr
        assert _end(gw, plain_topic) == before
        for r in (big, both, missing):
            assert b"Traceback" not in r.stderr


def test_bad_topic_names_and_keys_are_refused_before_connecting(kafka_bootstrap):
    for args, words in [
        (["bad topic", "{}"], "is not a Kafka topic name"),
        (["x" * 250, "{}"], "is not a Kafka topic name"),
        ([".", "{}"], "is not a Kafka topic name"),
        (["t\udcff", "{}"], "is not a Kafka topic name"),
        (["t", "{}", "--key", "k\udcff"], "--key is not valid UTF-8: byte 0xff"),
    ]:
        res = _cli(kafka_bootstrap, *args)
        assert res.exit_code == 1 and words in res.stderr, res.output
        assert "Traceback" not in res.output


# ---- property tests: any text or bytes -> produced (valid JSON) or a clear error ----------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)


def _json_texts():
    valid = JSON_VALUES.map(lambda v: json.dumps(v, ensure_ascii=False))
    spliced = st.tuples(
        valid,
        st.sampled_from(["NaN", "-Infinity", '"\\ud83d"', "[", "}", ",", "\x00"]),
        st.integers(0, 200),
    ).map(lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :])

    def dup_object(t):
        key = json.dumps(t[0])
        return f"{{{key}: {json.dumps(t[1])}, {key}: {json.dumps(t[2])}}}"

    dup = st.tuples(st.text(max_size=5), JSON_VALUES, JSON_VALUES).map(dup_object)
    deep = st.integers(60, 70).map(lambda n: '{"a":' * n + "0" + "}" * n)
    big = st.integers(3900, 4100).map(lambda n: json.dumps({"b": "x" * n}))
    any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=60)
    return valid | spliced | dup | deep | big | any_text


def _acceptable(text: str, limit: int = 4096) -> bool:
    """Independent oracle: strict JSON with no duplicates, finite numbers, depth <= 64,
    only encodable strings, and within the topic's limit as a record batch."""
    import re

    if re.search("[\ud800-\udfff]", text):
        return False

    def pairs(ps):
        keys = [k for k, _ in ps]
        if len(set(keys)) != len(keys):
            raise ValueError("dup")
        return dict(ps)

    def bad_constant(_):
        raise ValueError("constant")

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=bad_constant)
    except (ValueError, RecursionError):
        return False

    def ok(v, depth):
        if isinstance(v, str):
            return not re.search("[\ud800-\udfff]", v)
        if isinstance(v, list):
            return depth < 64 and all(ok(x, depth + 1) for x in v)
        if isinstance(v, dict):
            return depth < 64 and all(ok(k, 0) and ok(x, depth + 1) for k, x in v.items())
        return True

    if not ok(value, 0):
        return False
    return len(text.strip(" \t\r\n").encode()) + 82 <= limit


def test_any_text_is_produced_or_refused_clearly(plain_topic, kafka_bootstrap, kafka_settings):
    with KafkaGateway(kafka_settings) as gw:

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(text=_json_texts())
        def check(text):
            before = _end(gw, plain_topic)
            res = _cli(kafka_bootstrap, "--output", "json", "--", plain_topic, text)
            assert "Traceback" not in res.output
            assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
            if _acceptable(text):
                assert res.exit_code == 0, res.output
                assert json.loads(res.stdout)["offset"] == before
                assert _end(gw, plain_topic) == before + 1
            else:
                assert res.exit_code == 1, res.output
                assert res.stderr.startswith("error: ") and "nothing was produced" in res.stderr
                assert _end(gw, plain_topic) == before

        check()


def test_any_bytes_on_stdin_are_produced_or_refused_clearly(
    plain_topic, kafka_bootstrap, kafka_settings
):
    # "surrogatepass": a lone surrogate in the text becomes the bytes Python would write for
    # it, which are not valid UTF-8 (a hostile input the command must refuse).
    texts = _json_texts().map(lambda t: t.encode("utf-8", "surrogatepass"))

    with KafkaGateway(kafka_settings) as gw:

        @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
        @given(data=st.binary(max_size=80) | texts)
        def check(data):
            before = _end(gw, plain_topic)
            res = _cli(kafka_bootstrap, "--output", "json", plain_topic, "-", input=data)
            assert "Traceback" not in res.output
            assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text is not None and _acceptable(text):
                assert res.exit_code == 0, res.output
                assert _end(gw, plain_topic) == before + 1
            else:
                assert res.exit_code == 1, res.output
                assert "nothing was produced" in res.stderr
                if text is None:
                    assert "not valid UTF-8: byte 0x" in res.stderr
                assert _end(gw, plain_topic) == before

        check()


def test_no_message_on_a_terminal_is_a_clear_error_not_a_hang(plain_topic, kafka_bootstrap):
    import os
    import pty
    import sys

    leader, follower = pty.openpty()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ECAP_"))}
        env["KAFKA_BOOTSTRAP_SERVERS"] = kafka_bootstrap
        r = subprocess.run(
            [sys.executable, "-m", "ecap_ops", "test-produce", plain_topic],
            stdin=follower,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    finally:
        os.close(leader)
        os.close(follower)
    assert r.returncode == 1
    assert "no message: give it as the JSON argument, with --file PATH, or on standard input" in (
        r.stderr
    )
    assert "Traceback" not in r.stderr
