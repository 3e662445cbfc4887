"""Reading record timestamps from fetched bytes (`gateway/record_times.py`), with no broker:
record batches built with kafka-python's own batch builder (every compression, gaps left
by compaction, LogAppendTime, transactions and their markers, batches cut short), and
hostile bytes. Also the pure rules that turn them into lag in seconds
(`core/lag_measures.record_lag_seconds`) and the choice of positions to read."""

import struct
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatchBuilder

from ecap_ops.core.lag import EvalConfig, GroupObservation, Observation, evaluate
from ecap_ops.core.lag_measures import (
    clock_skew_notes,
    describe_lag,
    record_lag_seconds,
    timestamp_types,
)
from ecap_ops.core.lag_model import PartitionOffsets, RecordTimes
from ecap_ops.gateway.record_times import (
    FETCH_MAX_BYTES,
    MIN_PARTITION_BYTES,
    PARTITION_MAX_BYTES,
    decode_record_times,
    fetch_request,
    lagging_positions,
    parse_fetch_response,
    partition_budget,
)

T0 = 1_700_000_000_000  # ms
_ATTRIBUTES_AT = 21  # struct ">qiibI"
_MAX_TS_AT = 35  # struct ">qiibIhiq"


def batch(
    base: int,
    records: list[tuple[int, int]],
    codec: int = 0,
    log_append_ms: int | None = None,
    pid: int = -1,
    control: bool = False,
    key: bytes | None = None,
) -> bytes:
    """One v2 batch at `base` of records (offset delta, timestamp ms), as the producer's
    builder writes it; then what the broker sets: the base offset, LogAppendTime (the
    attribute and the batch's max timestamp), a control batch's attribute."""
    b = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=pid >= 0,
        producer_id=pid,
        producer_epoch=0 if pid >= 0 else -1,
        base_sequence=0 if pid >= 0 else -1,
        batch_size=1 << 20,
    )
    for delta, ts in records:
        assert b.append(delta, ts, key, b"value-" + str(delta).encode() * 3, []) is not None
    buf = b.build()
    struct.pack_into(">q", buf, 0, base)
    attrs = struct.unpack_from(">h", buf, _ATTRIBUTES_AT)[0]
    if log_append_ms is not None:
        attrs |= 0x08
        struct.pack_into(">q", buf, _MAX_TS_AT, log_append_ms)
    if control:
        attrs |= 0x20
    struct.pack_into(">h", buf, _ATTRIBUTES_AT, attrs)
    return bytes(buf)


def marker(base: int, pid: int, abort: bool) -> bytes:
    """A transaction marker (control batch): key (version 0, type 0 abort / 1 commit)."""
    return batch(
        base, [(0, T0)], pid=pid, control=True, key=struct.pack(">hh", 0, 0 if abort else 1)
    )


def brute(records: dict[int, int], position: int) -> int | None:
    """The timestamp of the first record at or after `position`."""
    after = [o for o in records if o >= position]
    return records[min(after)] if after else None


@pytest.mark.parametrize("codec", [0, 1, 2, 3, 4])  # none, gzip, snappy, lz4, zstd
def test_every_record_is_read_exactly_in_every_compression(codec):
    records = [(d, T0 + 1000 * d) for d in range(50)]
    data = batch(100, records[:25], codec) + batch(
        125, [(d - 25, t) for d, t in records[25:]], codec
    )
    times = decode_record_times(data, 110)
    assert times is not None and times.timestamp_type == "CreateTime"
    assert times.fetched_from == 110 and times.upto == tuple(range(110, 150))
    for pos in range(110, 150):
        assert times.at(pos) == (T0 + 1000 * (pos - 100), True)
    assert times.at(109) is None and times.at(150) is None


def test_compacted_gaps_fall_to_the_next_record():
    # Offsets 0, 1, 5, 9 remain in the batch at 40 (2-4 and 6-8 compacted away).
    data = batch(40, [(0, T0), (1, T0 + 1), (5, T0 + 5), (9, T0 + 9)])
    times = decode_record_times(data, 42)
    assert times.at(42) == (T0 + 5, True)  # 42..45 -> record 45
    assert times.at(45) == (T0 + 5, True)
    assert times.at(46) == (T0 + 9, True)
    assert times.at(49) == (T0 + 9, True)
    assert times.at(50) is None


def test_log_append_time_gives_every_record_the_batch_time():
    data = batch(0, [(d, T0 + d) for d in range(10)], log_append_ms=T0 + 5000)
    times = decode_record_times(data, 3)
    assert times.timestamp_type == "LogAppendTime"
    assert {times.at(p) for p in range(3, 10)} == {(T0 + 5000, True)}


def test_a_batch_cut_short_gives_its_header_first_record_and_a_bound_further_in():
    whole = batch(0, [(d, T0 + d) for d in range(5)])
    cut = batch(5, [(d, T0 + 100 + 10 * d) for d in range(40)], codec=1)[:80]
    times = decode_record_times(whole + cut, 3)
    assert times.at(3) == (T0 + 3, True)
    assert times.at(5) == (T0 + 100, True)  # the cut batch's first record: its header
    assert times.at(20) == (T0 + 100 + 390, False)  # no newer than the batch's newest
    appended = batch(5, [(d, T0) for d in range(40)], log_append_ms=T0 + 777)[:70]
    times = decode_record_times(whole + appended, 4)
    assert times.at(30) == (T0 + 777, True)


def test_read_committed_skips_aborted_transactions_and_markers():
    data = (
        batch(0, [(0, T0), (1, T0 + 1)], pid=7)  # aborted below
        + marker(2, 7, abort=True)
        + batch(3, [(0, T0 + 3)], pid=7)  # committed
        + marker(4, 7, abort=False)
        + batch(5, [(0, T0 + 5)])
    )
    aborted = [SimpleNamespace(producer_id=7, first_offset=0)]
    times = decode_record_times(data, 0, aborted, read_committed=True)
    assert times.at(0) == (T0 + 3, True)  # 0-2 aborted or a marker: the next record is 3
    assert times.at(4) == (T0 + 5, True)  # the commit marker is no record
    uncommitted = decode_record_times(data, 0, aborted, read_committed=False)
    assert uncommitted.at(0) == (T0, True)


def test_nothing_readable_is_none():
    assert decode_record_times(b"", 0) is None
    assert decode_record_times(None, 0) is None
    assert decode_record_times(batch(0, [(0, T0)]), 5) is None  # all before the position
    assert decode_record_times(batch(0, [(0, T0)])[:30], 0) is None  # not even a header


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(1, 4), st.integers(-(10**9), 10**9), st.sampled_from([0, 1, 4])),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 8),
    st.data(),
)
def test_any_batches_any_cut_agree_with_the_records(steps, per_batch, data):
    """Records at increasing offsets with gaps and any timestamps, in batches of any
    compression, cut anywhere: every exact answer is the first record at or after the
    position, and a bound is never older than it."""
    records: dict[int, int] = {}
    offset = 0
    for gap, ts_off, _ in steps:
        offset += gap
        records[offset] = T0 + ts_off
    offs = sorted(records)
    chunks = [offs[i : i + per_batch] for i in range(0, len(offs), per_batch)]
    raw = b""
    for i, chunk in enumerate(chunks):
        codec = steps[min(i, len(steps) - 1)][2]
        raw += batch(chunk[0], [(o - chunk[0], records[o]) for o in chunk], codec)
    cut = data.draw(st.integers(0, len(raw)))
    position = data.draw(st.integers(0, offs[-1] + 2))
    times = decode_record_times(raw[:cut], position)
    if times is None:
        return
    for p in range(position, times.upto[-1] + 1):
        ts, exact = times.at(p)
        truth = brute(records, p)
        assert truth is not None
        if exact:
            assert ts == truth
        else:
            assert ts >= truth  # an upper bound on the timestamp: a lower bound on the age


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.integers(-5, 500))
def test_hostile_bytes_never_escape_the_response_parser(raw, position):
    """Whatever a broker (or a corrupt log) sends: a partition's bytes that cannot be read
    are noted and left to the estimate; nothing raises."""
    tp = ("t", 0)
    response = SimpleNamespace(
        responses=[
            SimpleNamespace(
                topic="t",
                partitions=[
                    SimpleNamespace(
                        partition_index=0, error_code=0, records=raw, aborted_transactions=None
                    )
                ],
            )
        ]
    )
    problems: list[str] = []
    out = parse_fetch_response(response, {tp: position}, frozenset(), False, problems)
    assert set(out) <= {tp}
    assert all(len(p) < 400 for p in problems)


def test_a_partition_error_is_noted_not_raised():
    response = SimpleNamespace(
        responses=[
            SimpleNamespace(
                topic="t",
                partitions=[
                    SimpleNamespace(
                        partition_index=p, error_code=1, records=None, aborted_transactions=None
                    )
                    for p in range(5)
                ],
            )
        ]
    )
    problems: list[str] = []
    positions = {("t", p): 0 for p in range(5)}
    assert parse_fetch_response(response, positions, frozenset(), False, problems) == {}
    assert len(problems) == 1 and "OffsetOutOfRange" in problems[0] and "2 more" in problems[0]
    assert "estimated" in problems[0]


def test_one_request_reads_each_partition_from_its_own_offset_within_the_budgets():
    positions = {("a", 0): 5, ("a", 1): 9, ("b", 0): 0}
    req = fetch_request(positions, True, partition_budget(3))
    assert req.max_wait_ms == 0 and req.min_bytes == 0 and req.isolation_level == 1
    assert req.max_bytes == FETCH_MAX_BYTES
    got = {
        (t.topic, p.partition): (p.fetch_offset, p.partition_max_bytes)
        for t in req.topics
        for p in t.partitions
    }
    assert got == {tp: (o, PARTITION_MAX_BYTES) for tp, o in positions.items()}
    assert partition_budget(1) == PARTITION_MAX_BYTES
    assert partition_budget(10**6) == MIN_PARTITION_BYTES
    assert partition_budget(1000) * 1000 <= FETCH_MAX_BYTES


def test_the_smallest_lagging_position_is_read_per_partition():
    offsets = {
        ("t", 0): PartitionOffsets(start=10, end=100),
        ("t", 1): PartitionOffsets(start=None, end=50),
        ("t", 2): PartitionOffsets(start=0, end=7),
    }
    groups = [
        {("t", 0): 40, ("t", 1): 50, ("t", 2): 7},  # caught up on 1 and 2
        {("t", 0): 3, ("t", 1): 20},  # below the log start on 0: reads from 10
        {("t", 0): 60, ("gone", 0): 1},  # a partition not measured
    ]
    assert lagging_positions(groups, offsets) == {("t", 0): 10, ("t", 1): 20}


def _times(ts: int, exact: bool = True, ttype: str = "CreateTime") -> RecordTimes:
    return RecordTimes(10, (12, 20), (ts, ts + 1000), (True, exact), ttype)


def test_lag_seconds_read_exact_bounded_estimated_and_skewed():
    now = T0 / 1000 + 600
    times = _times(T0)
    assert record_lag_seconds(times, [], 10, 30, now) == (600.0, "exact")
    assert record_lag_seconds(times, [], 30, 30, now) == (0.0, "exact")  # no lag
    # A position the read does not reach: the samples' estimate, or unknown.
    assert record_lag_seconds(times, [], 25, 30, now) == (None, "unknown")
    secs, kind = record_lag_seconds(times, [[now - 100, 20], [now, 30]], 25, 30, now)
    # Record 25 was written when the end passed 26: 60% of the way from 20 to 30.
    assert kind == "interpolated" and secs == pytest.approx(40.0)
    # A bound: a lower bound unless the estimate says more.
    bound = _times(T0, exact=False)
    assert record_lag_seconds(bound, [], 15, 30, now) == (599.0, "at_least")
    secs, kind = record_lag_seconds(bound, [[now - 1000, 10], [now, 30]], 15, 30, now)
    assert kind == "interpolated" and secs > 599
    # A clock ahead: 0, never negative.
    ahead = _times(T0 + 3_600_000)
    assert record_lag_seconds(ahead, [], 10, 30, now) == (0.0, "exact")
    notes = clock_skew_notes({("t", 0): PartitionOffsets(0, 30, None, ahead)}, now)
    assert len(notes) == 1 and "topic t" in notes[0] and "CreateTime" in notes[0]
    assert clock_skew_notes({("t", 0): PartitionOffsets(0, 30, None, times)}, now) == []


def test_estimates_are_marked_and_exact_figures_are_not():
    assert describe_lag(5, 185, "exact") == "5 msgs / 3m05s"
    assert describe_lag(5, 185, "interpolated") == "5 msgs / ~3m05s"
    assert describe_lag(5, 185, "at_least") == "5 msgs / >=3m05s"


def test_the_evaluation_reports_exact_seconds_and_timestamp_types_from_one_look():
    now = T0 / 1000 + 600
    offsets = {
        ("c", 0): PartitionOffsets(0, 30, None, _times(T0)),
        ("l", 0): PartitionOffsets(0, 30, None, _times(T0, ttype="LogAppendTime")),
        ("n", 0): PartitionOffsets(0, 30, None, None),
    }
    g = GroupObservation("g", "Empty", 0, {("c", 0): 10, ("l", 0): 12, ("n", 0): 10})
    obs = Observation("c1", now, offsets, frozenset({"c", "l", "n"}), {"g": g}, frozenset({"g"}))
    from ecap_ops.catalog.model import LagThresholds

    ev = evaluate(None, obs, lambda t: LagThresholds(60, 300, 1000, 120), EvalConfig())
    by_topic = {s.topic: s for s in ev.statuses}
    assert (by_topic["c"].lag_seconds, by_topic["c"].lag_seconds_kind) == (600.0, "exact")
    assert by_topic["c"].to_dict()["timestamp_type"] == "CreateTime"
    assert by_topic["l"].to_dict()["timestamp_type"] == "LogAppendTime"
    assert (by_topic["n"].lag_seconds, by_topic["n"].lag_seconds_kind) == (None, "unknown")
    assert by_topic["n"].timestamp_type is None
    # Over the warning level in seconds, no members: STOPPED from the first look.
    assert by_topic["c"].raw_status == "STOPPED"
    assert timestamp_types(offsets) == {"c": "CreateTime", "l": "LogAppendTime"}


def test_records_decoded_per_answer_stay_bounded():
    from ecap_ops.gateway.record_times import MAX_RECORDS, MAX_RECORDS_PER_FETCH

    data = batch(0, [(d, T0 + d) for d in range(200)])

    def answer(n_positions):
        response = SimpleNamespace(
            responses=[
                SimpleNamespace(
                    topic="t",
                    partitions=[
                        SimpleNamespace(
                            partition_index=0, error_code=0, records=data, aborted_transactions=[]
                        )
                    ],
                )
            ]
        )
        positions = {("t", p): 0 for p in range(n_positions)}
        return parse_fetch_response(response, positions, frozenset(), False, [])[("t", 0)]

    assert len(answer(1).upto) == 200 <= MAX_RECORDS
    few = answer(5000)
    assert len(few.upto) == MAX_RECORDS_PER_FETCH // 5000
    assert few.at(0) == (T0, True)  # the record at the position is always read
