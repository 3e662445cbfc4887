"""Test-topic cleanup, pure rules: a topic is idle only when its end offsets have not moved
across the job's own observations spanning the idle window (record timestamps, set by
producers, prove nothing); group members and moving committed offsets are activity; the
first observation only makes a candidate; the history restarts on any movement, on a
re-created topic and on a clock that went back. Also the history's JSON form, its file
(atomic, 0600, bounded, and a hostile file only restarts it) and the rules' validation.

The real-broker scenarios are in test_cleanup_kafka.py."""

import json
import os
import stat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecap_ops.catalog import load_catalog
from ecap_ops.core.cleanup import (
    ACTIVE,
    CANDIDATE,
    DAY_MS,
    IDLE,
    KEPT,
    CleanupRules,
    GroupEvidence,
    Observation,
    TopicEvidence,
    TopicHistory,
    decide,
    history_from_json,
    history_to_json,
    judge,
    matching_pattern,
    merge_history,
)
from ecap_ops.errors import ConfigError
from ecap_ops.services.cleanup import (
    MAX_STATE_BYTES,
    cleanup_test_topics,
    load_history,
    save_history,
    state_path,
)

NOW = 1_790_000_000_000
H = 3_600_000
RULES = CleanupRules(idle_days=7)


def _t(name="test-a", end=(5, 5), start=(0, 0), **kw) -> TopicEvidence:
    base = dict(
        name=name,
        internal=False,
        in_catalog=False,
        partitions=len(end),
        replication_factor=1,
        bytes_on_disk=100,
        records=sum(end) - sum(start),
        newest_record_ms=NOW - 30 * DAY_MS,
        topic_id="id-1",
        end_offsets=tuple(end),
        start_offsets=tuple(start),
    )
    base.update(kw)
    return TopicEvidence(**base)


def _run(steps, rules=RULES):
    """Feed observations run after run, as the job does; the last run's decision and the
    history after it. Each step: (at_ms, TopicEvidence)."""
    history: dict[str, TopicHistory] = {}
    d = None
    for at, t in steps:
        decisions, updated = judge([t], rules, at, history)
        history = merge_history(history, updated, {t.name})
        (d,) = decisions
    return d, history


# ---- patterns and static rules ------------------------------------------------------------


@pytest.mark.parametrize(
    "name, match",
    [
        ("test-a", "test-*"),
        ("tmp-x", "tmp-*"),
        ("load-test", "*-test"),
        ("testing", None),
        ("a.test-b", None),
        ("TEST-a", None),
    ],
)
def test_patterns_are_globs_over_the_exact_name(name, match):
    assert matching_pattern(name, ("test-*", "tmp-*", "*-test")) == match


@pytest.mark.parametrize(
    "topic, reason",
    [
        (_t("test-int", internal=True), "internal topic"),
        (_t("test-cat", in_catalog=True), "in the catalog"),
        (_t("test-prot"), "on the protected list"),
        (_t("test-empty", end=(3, 0), start=(3, 0)), "holds no record"),
        (_t("test-off", offline_partitions=1), "offline"),
        (_t("test-unread", end_offsets=None, start_offsets=None), "could not be read"),
    ],
)
def test_each_safety_rule_keeps_a_topic_whatever_its_history(topic, reason):
    """Observed unchanged for 30 days, and still kept, with the rule as its reason."""
    rules = CleanupRules(protected=frozenset({"test-prot"}))
    d, _ = _run([(NOW - 30 * DAY_MS, topic), (NOW, topic)], rules)
    assert d.status == KEPT and not d.delete
    assert any(reason in r for r in d.reasons), d.reasons


# ---- the history rule, table-driven -------------------------------------------------------

OLD_TS = NOW - 30 * DAY_MS  # what a backfill's records say about themselves
G = "grp"


def _g(committed=None, members=0, state="Empty", described=True):
    return (GroupEvidence(G, state, members, dict(committed or {}), 0, described),)


HISTORY_CASES = {
    # name: (steps as (days before NOW, evidence), expected status, reason fragment, deletable)
    "backfill with 30-day-old CreateTime written between observations is active": (
        [(8, _t(end=(5, 5))), (0, _t(end=(5, 9), newest_record_ms=OLD_TS))],
        ACTIVE,
        "end offsets moved by 4 record(s)",
        False,
    ),
    "first observation is only a candidate, whatever the record timestamps say": (
        [(0, _t(newest_record_ms=OLD_TS))],
        CANDIDATE,
        "first seen at",
        False,
    ),
    "unchanged over a span shorter than the window is a candidate": (
        [(6.9, _t()), (0, _t())],
        CANDIDATE,
        "not yet idle for the window of 7d",
        False,
    ),
    "unchanged over a span >= the window is confirmed idle": (
        [(7, _t()), (0, _t())],
        IDLE,
        "confirmed idle",
        True,
    ),
    "unchanged across many observations over the window is idle": (
        [(9, _t()), (6, _t()), (3, _t()), (0, _t())],
        IDLE,
        "unchanged from",
        True,
    ),
    "partitions added between observations is active": (
        [(8, _t(end=(5, 5))), (0, _t(end=(5, 5, 0), start=(0, 0, 0)))],
        ACTIVE,
        "partitions changed from 2 to 3",
        False,
    ),
    "re-created with the same name (new topic id): history restarts": (
        [(8, _t(topic_id="id-1")), (0, _t(topic_id="id-2"))],
        CANDIDATE,
        "topic id changed",
        False,
    ),
    "a committed offset that moved between observations is activity": (
        [(8, _t(groups=_g({0: 2}))), (0, _t(groups=_g({0: 4})))],
        ACTIVE,
        f"group {G} committed between",
        False,
    ),
    "a group that commits for the first time between observations is activity": (
        [(8, _t()), (0, _t(groups=_g({1: 1})))],
        ACTIVE,
        f"group {G} committed between",
        False,
    ),
    "committed offsets unchanged over the window, no members: idle": (
        [(8, _t(groups=_g({0: 5}))), (0, _t(groups=_g({0: 5})))],
        IDLE,
        "no committed offset moved",
        True,
    ),
    "a group with members on it is activity": (
        [(8, _t()), (0, _t(groups=_g(members=2, state="Stable")))],
        ACTIVE,
        f"group {G} has 2 member(s)",
        False,
    ),
    "a group whose members cannot be listed and is not empty may be reading": (
        [(8, _t()), (0, _t(groups=_g({0: 5}, state="Stable", described=False)))],
        ACTIVE,
        "could not be listed",
        False,
    ),
    "retention moving the start offsets is not activity": (
        [(8, _t(start=(0, 0))), (0, _t(start=(3, 2)))],
        IDLE,
        "confirmed idle",
        True,
    ),
    "end offsets that went back restart the window": (
        [(8, _t(end=(5, 5))), (0, _t(end=(5, 1)))],
        ACTIVE,
        "went back",
        False,
    ),
    "a clock behind the last observation restarts the history": (
        [(0, _t()), (8, _t())],
        CANDIDATE,
        "is not after the last observation",
        False,
    ),
    "written, then unchanged for less than the window since the write: candidate": (
        [(20, _t(end=(1, 1))), (6, _t(end=(5, 5))), (0, _t(end=(5, 5)))],
        CANDIDATE,
        "not yet idle",
        False,
    ),
    "written, then unchanged for the window since the observation that saw it: idle": (
        [(20, _t(end=(1, 1))), (8, _t(end=(5, 5))), (0, _t(end=(5, 5)))],
        IDLE,
        "confirmed idle",
        True,
    ),
}


@pytest.mark.parametrize("case", sorted(HISTORY_CASES))
def test_history_rule(case):
    steps, status, fragment, deletable = HISTORY_CASES[case]
    d, history = _run([(NOW - int(days * DAY_MS), t) for days, t in steps])
    assert d.status == status, (d.status, d.reasons)
    assert d.delete is deletable
    assert any(fragment in r for r in d.reasons), d.reasons
    # The history keeps the first and latest observation since the last movement only.
    assert 1 <= len(history["test-a"].observations) <= 2
    if status == ACTIVE:
        assert [o.at_ms for o in history["test-a"].observations] == [NOW]


def test_a_backfill_keeps_the_topic_even_when_old_timestamps_say_30_days_idle():
    """The reproduced bug: records written seconds ago carrying month-old CreateTime."""
    steps = [
        (NOW - 8 * DAY_MS, _t(end=(0, 0), newest_record_ms=None)),
        (NOW - 1000, _t(end=(50, 50), newest_record_ms=OLD_TS)),
        (NOW, _t(end=(50, 50), newest_record_ms=OLD_TS)),
    ]
    d, _ = _run(steps, CleanupRules(idle_days=7, delete_empty=True))
    assert d.status == CANDIDATE and not d.delete
    assert d.evidence["newest_record_timestamp"].startswith("30d")
    assert d.evidence["unchanged_since_ms"] == NOW - 1000


def test_window_zero_still_needs_two_observations():
    rules = CleanupRules(idle_ms=0)
    d, _ = _run([(NOW, _t())], rules)
    assert d.status == CANDIDATE
    d, _ = _run([(NOW - 1, _t()), (NOW, _t())], rules)
    assert d.status == IDLE and d.delete


def test_idle_ms_overrides_idle_days():
    rules = CleanupRules(idle_days=7, idle_ms=2000)
    d, _ = _run([(NOW - 2000, _t()), (NOW, _t())], rules)
    assert d.status == IDLE
    d, _ = _run([(NOW - 1999, _t()), (NOW, _t())], rules)
    assert d.status == CANDIDATE and "confirm after" in d.reasons[-1]


def test_budget_takes_the_longest_idle_first_and_unmatched_names_are_not_mentioned():
    names = {"test-a": 8, "test-b": 30, "test-c": 20, "keep-me": 100}
    history = {}
    for n, days in names.items():
        _, h = judge([_t(n)], RULES, NOW - days * DAY_MS)
        history.update(h)
    ds = {
        d.topic: d
        for d in decide([_t(n) for n in names], CleanupRules(max_deletions=2), NOW, history)
    }
    assert set(ds) == {"test-a", "test-b", "test-c"}
    assert sorted(t for t, d in ds.items() if d.delete) == ["test-b", "test-c"]
    assert ds["test-a"].confirmed and any("budget of 2" in r for r in ds["test-a"].reasons)
    assert (
        ds["test-b"].evidence["unchanged_for"] == "30d" and ds["test-b"].evidence["size"] == "100 B"
    )


def test_empty_topics_go_only_when_asked():
    t = _t("test-e", end=(4, 4), start=(4, 4))
    steps = [(NOW - 8 * DAY_MS, t), (NOW, t)]
    assert _run(steps)[0].status == KEPT
    assert _run(steps, CleanupRules(delete_empty=True))[0].delete


def test_history_keeps_only_existing_topics_and_other_patterns_topics():
    obs = Observation(NOW - DAY_MS, (1,), (0,))
    prev = {n: TopicHistory("x", (obs,)) for n in ("gone", "other-pattern", "test-a")}
    _, updated = judge([_t(end=(1,), start=(0,))], RULES, NOW, prev)
    merged = merge_history(prev, updated, {"other-pattern", "test-a"})
    assert set(merged) == {"other-pattern", "test-a"}
    assert merged["other-pattern"] is prev["other-pattern"]
    # test-a's id changed from "x" to "id-1": restarted at NOW
    assert [o.at_ms for o in merged["test-a"].observations] == [NOW]


# A model of the rule for any sequence of runs: writes and commits between runs, and the
# clock moving forward by arbitrary steps. Confirmed idle exactly when at least two
# observations exist since the last movement and they span the window.
@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=5 * DAY_MS),  # time since the previous run
            st.integers(min_value=0, max_value=3),  # records written before this run
            st.booleans(),  # a group committed before this run
        ),
        min_size=1,
        max_size=12,
    )
)
def test_model_confirmed_idle_only_after_a_window_without_movement(runs):
    rules = CleanupRules(idle_days=3)
    history: dict[str, TopicHistory] = {}
    at, end, committed = NOW, 0, 0
    since = None  # time of the first observation since the last movement (model)
    count = 0
    for i, (dt, writes, commit) in enumerate(runs):
        at += dt
        moved = i > 0 and (writes > 0 or commit)
        end += writes
        committed += 1 if commit else 0
        t = _t(end=(end,), start=(0,), groups=_g({0: committed}) if committed else ())
        (d,), upd = judge([t], rules, at, history)
        history = merge_history(history, upd, {"test-a"})
        if i == 0 or moved:
            since, count = at, 1
        else:
            count += 1
        want = count >= 2 and at - since >= 3 * DAY_MS
        if end == 0 and not rules.delete_empty:
            assert d.status == KEPT
        else:
            assert (d.status == IDLE) is want, (i, d.status, d.reasons)
            assert d.delete is want
        if moved and i > 0 and (writes > 0 or commit):
            assert d.status in (ACTIVE, KEPT)


# ---- rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rules",
    [
        CleanupRules(patterns=("*",)),
        CleanupRules(patterns=()),
        CleanupRules(idle_days=-1),
        CleanupRules(idle_days=float("nan")),
        CleanupRules(idle_ms=-5),
        CleanupRules(max_deletions=-1),
    ],
)
def test_bad_rules_are_refused_before_reading_anything(rules):
    with pytest.raises(ConfigError) as exc:
        cleanup_test_topics(None, load_catalog(env="dev"), rules)  # type: ignore[arg-type]
    assert "cleanup rules are invalid" in str(exc.value)


# ---- the history as a file ----------------------------------------------------------------


def test_state_path_follows_ecap_state_dir_then_dagster_home(tmp_path):
    assert state_path({"ECAP_STATE_DIR": str(tmp_path)}) == tmp_path / "cleanup-observations.json"
    assert (
        state_path({"DAGSTER_HOME": str(tmp_path)})
        == tmp_path / "state" / "cleanup-observations.json"
    )
    assert state_path({}).parts[-3:] == (".ecap-ops", "state", "cleanup-observations.json")


def _some_history():
    d, h = _run([(NOW - DAY_MS, _t(groups=_g({0: 3}))), (NOW, _t(groups=_g({0: 3})))])
    return h


def test_history_round_trips_through_its_file_atomically_with_mode_0600(tmp_path):
    path = tmp_path / "sub" / "cleanup-observations.json"
    clusters = {"c1": _some_history()}
    save_history(path, history_to_json(clusters, NOW))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
    back, warning = load_history(path)
    assert warning is None and back == clusters


def test_history_keeps_at_most_eight_clusters_the_latest_last():
    clusters = {f"c{i}": _some_history() for i in range(12)}
    doc = history_to_json(clusters, NOW)
    assert list(doc["clusters"]) == [f"c{i}" for i in range(4, 12)]


@pytest.mark.parametrize(
    "content, why",
    [
        (b"", "JSON"),
        (b"{not json", "JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 10_000, "nested more than"),
        (b'{"format": "other", "clusters": {}}', "format"),
        (
            json.dumps(
                {"format": "ecap-ops/cleanup-observations/v1", "clusters": {"c": {"topics": 5}}}
            ).encode(),
            "topics",
        ),
        (
            json.dumps(
                {
                    "format": "ecap-ops/cleanup-observations/v1",
                    "clusters": {
                        "c": {
                            "topics": {
                                "t": {
                                    "topic_id": "x",
                                    "observations": [{"at_ms": -1, "end": [], "start": []}],
                                }
                            }
                        }
                    },
                }
            ).encode(),
            "at_ms",
        ),
        (b'{"format": NaN}', "not"),
    ],
)
def test_an_unusable_history_file_restarts_the_history_with_a_clear_warning(tmp_path, content, why):
    path = tmp_path / "cleanup-observations.json"
    path.write_bytes(content)
    hist, warning = load_history(path)
    assert hist == {}
    assert str(path) in warning and why in warning, warning
    assert "fresh history" in warning and "none is deleted" in warning


def test_an_oversized_or_special_history_file_is_not_read(tmp_path):
    path = tmp_path / "big.json"
    with open(path, "wb") as fh:
        fh.truncate(MAX_STATE_BYTES + 10)
    hist, warning = load_history(path)
    assert hist == {} and "bytes is more than" in warning
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    hist, warning = load_history(fifo)  # must not block
    assert hist == {} and "not a regular file" in warning
    hist, warning = load_history(tmp_path)  # a directory
    assert hist == {} and warning


_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_json = st.recursive(
    _json_leaf,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=10), kids, max_size=4)
    ),
    max_leaves=30,
)


def _mutations():
    """Documents close to a valid one, with one part replaced by anything."""
    valid = history_to_json({"c1": _some_history()}, NOW)

    def mutate(path_and_value):
        path, value = path_and_value
        doc = json.loads(json.dumps(valid))
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return doc

    topic = ["clusters", "c1", "topics", "test-a"]
    paths = [
        ["format"],
        ["clusters"],
        ["clusters", "c1"],
        [*topic[:-1]],
        topic,
        [*topic, "topic_id"],
        [*topic, "observations"],
        [*topic, "observations", 0],
        [*topic, "observations", 0, "at_ms"],
        [*topic, "observations", 0, "end"],
        [*topic, "observations", 1, "start"],
        [*topic, "observations", 1, "committed"],
        [*topic, "observations", 1, "committed", G],
        [*topic, "observations", 1, "committed", G, "0"],
    ]
    return st.tuples(st.sampled_from(paths), _json).map(mutate)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_json, _mutations()))
def test_hostile_history_documents_are_refused_with_a_message_or_read_correctly(doc):
    try:
        hist = history_from_json(doc)
    except ValueError as exc:
        assert str(exc) and len(str(exc)) < 400
        return
    # Accepted: every observation is well formed, so judging against it cannot crash.
    for topics in hist.values():
        for name, h in topics.items():
            t = _t(name if name.startswith("test-") else "test-a")
            judge([t], RULES, NOW + 10**15, {t.name: h})


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_hostile_history_bytes_never_crash_the_reader(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("h") / "cleanup-observations.json"
    path.write_bytes(data)
    hist, warning = load_history(path)
    assert hist == {} or warning is None
    if warning:
        assert str(path) in warning


# ---- patterns that would match almost anything ----------------------------------------------


@pytest.mark.parametrize(
    "pattern, ok",
    [
        ("test-*", True),
        ("*-test", True),
        ("test-[ab]", True),
        ("exact-name", True),
        ("__consumer_offset*", True),
        ("*", False),
        ("?*", False),
        ("[!_]*", False),
        ("*test*", False),
        ("a*", False),
    ],
)
def test_a_pattern_needs_a_literal_prefix_or_suffix(pattern, ok):
    problems = CleanupRules(patterns=(pattern,)).validate()
    assert (problems == []) is ok, problems


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("*?[]!-_.ab\\\n\x00é"), max_size=12))
def test_hostile_patterns_get_a_short_message_or_have_a_literal_end(pattern):
    problems = CleanupRules(patterns=(pattern,)).validate()
    assert all(len(p) < 200 for p in problems)
    if not problems:
        head = pattern.split("*")[0].split("?")[0].split("[")[0]
        tail = pattern.rsplit("*")[-1].rsplit("?")[-1].rsplit("]")[-1]
        assert max(len(head), len(tail)) >= 2, pattern


def test_one_cleanup_at_a_time_per_history_file(tmp_path):
    import fcntl

    from ecap_ops.services.cleanup import _history_lock

    path = tmp_path / "cleanup-observations.json"
    warnings: list[str] = []
    with _history_lock(path, warnings, wait_s=0.2):
        held = os.open(path.with_name(path.name + ".lock"), os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with pytest.raises(ConfigError) as exc, _history_lock(path, [], wait_s=0.3):
                pass
            assert "another test-topic cleanup" in str(exc.value)
        finally:
            os.close(held)
    with _history_lock(path, warnings, wait_s=0.2):  # released: taken again at once
        pass
    assert warnings == []
    assert stat.S_IMODE(os.stat(path.with_name(path.name + ".lock")).st_mode) == 0o600
