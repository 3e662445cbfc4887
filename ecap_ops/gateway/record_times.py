"""The timestamps of the records at given offsets: how old the oldest unconsumed record is.

A consumer group's lag in seconds is the age of the first record at or after its position
(its committed offset, or the log start when retention deleted records it never read). This
module reads those records: ONE Fetch per partition leader, covering every partition asked
for, each at its own offset, with a small byte budget per partition, sent to all leaders at
once on the admin client's network thread (the lag tick's `Waiter`). Only the record
batches' headers and each record's length, offset and timestamp are decoded (with
kafka-python's varint reader and codecs), never keys or values.

Cost and bounds: one Fetch per leader per call, whatever the number of groups, asking for at
most `PARTITION_MAX_BYTES` (64 KiB) per partition and `FETCH_MAX_BYTES` (4 MiB) per request;
with more than 64 partitions on a leader the per-partition budget shrinks to
FETCH_MAX_BYTES / n, down to `MIN_PARTITION_BYTES` (4 KiB), and partitions beyond the
request's total are not read (they keep the estimate). A partition sends only what lies
between the position and its end, so a small lag costs a batch or two. `max_wait_ms` 0 and
`min_bytes` 0: the broker answers at once with what it has. At most `MAX_RECORDS` (1,000)
records per partition are decoded, fewer when a leader has more than 100 lagging partitions
(`MAX_RECORDS_PER_FETCH` in all), and only their lengths, offsets and timestamps.

Why 64 KiB and not a few KiB: the broker sends whole record batches. A partition whose
batch at the position is larger than its budget comes back empty (Kafka 4.4 sends no partial
first batch), except the first partition of the answer, which always gets one whole batch.
A producer's batches are up to its `batch.size` (16 KiB by default, often raised), so a
budget of a few KiB would read nothing on a busy topic. A batch larger than the budget (up
to `max.message.bytes`, 1 MiB by default) is not read: that partition keeps the estimate.

One offset per partition: a Fetch reads a partition from one offset, so when several groups
lag on a partition at different positions the caller asks for the smallest (the oldest
unconsumed record of the group furthest behind: the figure that decides the partition's
status). The other groups' positions get an exact figure when the bytes read reach them,
and otherwise the estimate from the end-offset samples, marked as such.

What is read:
  - A batch read whole: every record's offset and timestamp (exact).
  - A batch cut short at the end of the budget (after whole ones): its header gives the
    timestamp of its first record, and of every record under LogAppendTime (exact); a record
    further inside is only known to be no newer than the batch's newest record (a lower
    bound on its age).
  - Compacted gaps: the first record at or after the position is the one a consumer would
    read next; its timestamp is the figure. Offsets missing in between fall to it.
  - Transactional topics (the catalog's): read_committed, as their lag ends at the last
    stable offset; records of aborted transactions and control records are skipped, as a
    read_committed consumer skips them.
  - Timestamp type per batch (CreateTime: the producer's clock, so a producer with a skewed
    clock or one that backfills with old timestamps skews the figure; LogAppendTime: the
    broker's clock when it wrote the record).

A partition that answers an error (offset out of range after retention, not authorized to
read the topic, leader moved) or whose bytes cannot be decoded is left out with a note, never
raised: its lag in seconds falls back to the estimate.
"""

import struct
from collections import defaultdict
from collections.abc import Iterable, Mapping

from ecap_ops.core.lag_model import CREATE_TIME, LOG_APPEND_TIME, TP, RecordTimes

__all__ = [
    "FETCH_MAX_BYTES",
    "MAX_RECORDS",
    "MIN_PARTITION_BYTES",
    "PARTITION_MAX_BYTES",
    "decode_record_times",
    "fetch_record_times",
    "partition_budget",
]

PARTITION_MAX_BYTES = 64 * 1024
MIN_PARTITION_BYTES = 4 * 1024
FETCH_MAX_BYTES = 4 * 1024 * 1024
# Records decoded per partition: the position's and the next ones (other groups' positions);
# and per answer, so that many lagging partitions on one leader stay small in memory.
MAX_RECORDS = 1000
MAX_RECORDS_PER_FETCH = 100_000

# Record batch v2 header (magic 2): the layout of kafka-python's DefaultRecordBatch.
_HEADER = struct.Struct(">qiibIhiqqqhii")
_HEADER_SIZE = _HEADER.size  # 61
_LOG_OVERHEAD = 12  # base offset and length, the same in every format
_MAGIC_AT = 16
_CODEC_MASK = 0x07
_TIMESTAMP_TYPE_MASK = 0x08
_TRANSACTIONAL_MASK = 0x10
_CONTROL_MASK = 0x20
_NO_TIMESTAMP = -1
_ABORT_MARKER = 0


def partition_budget(partitions: int) -> int:
    """Bytes asked for per partition when one request covers `partitions` partitions."""
    return max(MIN_PARTITION_BYTES, min(PARTITION_MAX_BYTES, FETCH_MAX_BYTES // max(1, partitions)))


class _Collector:
    """The (offset, timestamp, exact) entries of one partition, from its fetch offset on."""

    __slots__ = ("position", "upto", "timestamps", "exact", "types")

    def __init__(self, position: int):
        self.position = position
        self.upto: list[int] = []
        self.timestamps: list[int] = []
        self.exact: list[bool] = []
        self.types: list[str] = []

    @property
    def last(self) -> int:
        return self.upto[-1] if self.upto else self.position - 1

    def add(self, upto: int, ts: int, exact: bool, ttype: str) -> None:
        if upto <= self.last or ts == _NO_TIMESTAMP:
            return
        self.upto.append(upto)
        self.timestamps.append(ts)
        self.exact.append(exact)
        self.types.append(ttype)

    def result(self) -> RecordTimes | None:
        if not self.upto:
            return None
        # The type of the record at the fetch offset (the one the worst group waits for).
        return RecordTimes(
            self.position,
            tuple(self.upto),
            tuple(self.timestamps),
            tuple(self.exact),
            self.types[0],
        )


def _records_bytes(batch: memoryview, attributes: int):
    """A v2 batch's record bytes (after its header), decompressed."""
    data = batch[_HEADER_SIZE:]
    codec = attributes & _CODEC_MASK
    if not codec:
        return data
    from kafka import codec as codecs
    from kafka.errors import UnsupportedCodecError

    decode = {
        1: (codecs.has_gzip, codecs.gzip_decode, "gzip"),
        2: (codecs.has_snappy, codecs.snappy_decode, "snappy"),
        3: (codecs.has_lz4, codecs.lz4_decode, "lz4"),
        4: (codecs.has_zstd, codecs.zstd_decode, "zstd"),
    }.get(codec)
    if decode is None or not decode[0]():
        raise UnsupportedCodecError(
            f"compression {decode[2] if decode else codec} cannot be decoded here"
        )
    return memoryview(decode[1](bytes(data)))


def _walk(data, count: int, first_delta: int, limit: int, key: bool = False) -> list[tuple]:
    """(offset delta, timestamp delta[, key]) of the records of a batch from offset delta
    `first_delta` on, at most `limit` of them. Only the lengths, timestamps and offsets are
    read: keys (when `key`), values and headers are skipped by their lengths."""
    from kafka.record.util import decode_varint

    out: list[tuple] = []
    pos = 0
    n = len(data)
    for _ in range(count):
        length, pos = decode_varint(data, pos)
        end = pos + length
        if length <= 0 or end > n:
            break  # cut short or not a record: what came before stands
        ts_delta, p = decode_varint(data, pos + 1)  # after the attributes byte
        off_delta, p = decode_varint(data, p)
        if off_delta >= first_delta:
            if key:
                key_len, p = decode_varint(data, p)
                out.append(
                    (off_delta, ts_delta, bytes(data[p : p + key_len]) if key_len >= 0 else None)
                )
            else:
                out.append((off_delta, ts_delta))
            if len(out) >= limit:
                break
        pos = end
    return out


def _is_abort_marker(batch: memoryview, attributes: int, count: int) -> bool:
    """Whether a control batch is a transaction's abort marker (else a commit marker): its
    record's key is (version int16, type int16), type 0 for abort."""
    for _off, _ts, k in _walk(_records_bytes(batch, attributes), count, 0, 1, key=True):
        return k is not None and len(k) >= 4 and struct.unpack_from(">h", k, 2)[0] == _ABORT_MARKER
    return False


def decode_record_times(
    data: bytes | None,
    position: int,
    aborted: Iterable | None = None,
    read_committed: bool = False,
    limit: int = MAX_RECORDS,
) -> RecordTimes | None:
    """The timestamps of the records in one partition's fetched bytes from `position` on,
    at most `limit` records (None when none was readable). `aborted`: the response's aborted
    transactions ((producer_id, first_offset) pairs, or objects with those attributes),
    honoured when `read_committed`. Raises for bytes that are not record batches (or use a
    compression this machine cannot decode); the caller notes it."""
    if not data:
        return None
    out = _Collector(position)
    buf = memoryview(data)
    size = len(buf)
    pending = sorted(_aborted_pairs(aborted or ()), key=lambda x: x[1]) if read_committed else []
    aborted_pids: set[int] = set()
    pos = 0
    while pos + _LOG_OVERHEAD < size and len(out.upto) < limit:
        base_offset, length = struct.unpack_from(">qi", buf, pos)
        end = pos + _LOG_OVERHEAD + length
        complete = end <= size
        magic = buf[pos + _MAGIC_AT] if pos + _MAGIC_AT < size else None
        if magic is None or (magic < 2 and not complete):
            break
        if magic < 2:  # message format v0/v1 (written by brokers before 0.11)
            _legacy(out, buf[pos:end], magic, position)
            pos = end
            continue
        if pos + _HEADER_SIZE > size:
            break
        header = _HEADER.unpack_from(buf, pos)
        attributes, last_delta, first_ts, max_ts, pid, count = (
            header[5],
            header[6],
            header[7],
            header[8],
            header[9],
            header[12],
        )
        last_offset = base_offset + last_delta
        ttype = LOG_APPEND_TIME if attributes & _TIMESTAMP_TYPE_MASK else CREATE_TIME
        while pending and pending[0][1] <= last_offset:
            aborted_pids.add(pending.pop(0)[0])
        if attributes & _CONTROL_MASK:  # transaction markers: no record a consumer sees
            if (
                complete
                and pid in aborted_pids
                and _is_abort_marker(buf[pos:end], attributes, count)
            ):
                aborted_pids.discard(pid)
        elif last_offset < position or count <= 0:
            pass  # before the position, or emptied by compaction
        elif read_committed and attributes & _TRANSACTIONAL_MASK and pid in aborted_pids:
            pass  # an aborted transaction's records: a read_committed consumer skips them
        elif not complete:
            _partial_batch(out, base_offset, last_offset, first_ts, max_ts, ttype)
            break
        else:
            first_delta = max(0, position - base_offset)
            room = limit - len(out.upto)
            for off_delta, ts_delta in _walk(
                _records_bytes(buf[pos:end], attributes), count, first_delta, room
            ):
                ts = max_ts if ttype == LOG_APPEND_TIME else first_ts + ts_delta
                out.add(base_offset + off_delta, ts, True, ttype)
        pos = end
    return out.result()


def _legacy(out: _Collector, batch: memoryview, magic: int, position: int) -> None:
    from kafka.record.legacy_records import LegacyRecordBatch

    for rec in LegacyRecordBatch(batch, magic):
        if rec.offset >= position and rec.timestamp is not None:
            ttype = LOG_APPEND_TIME if rec.timestamp_type == 1 else CREATE_TIME
            out.add(rec.offset, rec.timestamp, True, ttype)


def _partial_batch(
    out: _Collector, base_offset: int, last_offset: int, first_ts: int, max_ts: int, ttype: str
) -> None:
    """What the header of a batch cut short by the byte budget says (the broker sends the
    start of a batch only after whole ones): under LogAppendTime every record carries the
    batch's append time; under CreateTime the first record present carries the first
    timestamp, and the others are no newer than the batch's newest (a lower bound)."""
    if ttype == LOG_APPEND_TIME:
        out.add(last_offset, max_ts, True, ttype)
        return
    out.add(base_offset, first_ts, True, ttype)
    out.add(last_offset, max_ts, False, ttype)


def _aborted_pairs(aborted: Iterable) -> list[tuple[int, int]]:
    out = []
    for a in aborted:
        if isinstance(a, tuple):
            out.append((int(a[0]), int(a[1])))
        else:
            out.append((int(a.producer_id), int(a.first_offset)))
    return out


def fetch_request(positions: Mapping[TP, int], read_committed: bool, per_partition: int):
    """One Fetch (v4 to v12: topics by name) reading each partition from its own offset."""
    from kafka.protocol.consumer import FetchRequest

    topic_cls = FetchRequest.FetchTopic
    part_cls = topic_cls.FetchPartition
    by_topic: dict[str, list] = defaultdict(list)
    for (topic, p), offset in sorted(positions.items()):
        by_topic[topic].append(
            part_cls(
                partition=p,
                current_leader_epoch=-1,
                fetch_offset=offset,
                last_fetched_epoch=-1,
                log_start_offset=-1,
                partition_max_bytes=per_partition,
            )
        )
    return FetchRequest(
        replica_id=-1,
        max_wait_ms=0,
        min_bytes=0,
        max_bytes=FETCH_MAX_BYTES,
        isolation_level=1 if read_committed else 0,
        session_id=0,
        session_epoch=-1,
        topics=[topic_cls(topic=t, partitions=ps) for t, ps in by_topic.items()],
        forgotten_topics_data=[],
        rack_id="",
        min_version=4,
        max_version=12,
    )


def parse_fetch_response(
    response,
    positions: Mapping[TP, int],
    transactional: frozenset[str],
    read_committed: bool,
    problems: list[str],
) -> dict[TP, RecordTimes]:
    """The record times of each partition in a Fetch answer; errors noted in `problems`."""
    from kafka import errors as kerr

    out: dict[TP, RecordTimes] = {}
    errors: dict[str, list[str]] = defaultdict(list)
    limit = max(16, min(MAX_RECORDS, MAX_RECORDS_PER_FETCH // max(1, len(positions))))
    for t in response.responses:
        for pd in t.partitions:
            tp = (t.topic, pd.partition_index)
            if tp not in positions:
                continue
            if pd.error_code:
                errors[kerr.for_code(pd.error_code).__name__].append(f"{tp[0]}/{tp[1]}")
                continue
            try:
                times = decode_record_times(
                    pd.records,
                    positions[tp],
                    pd.aborted_transactions,
                    read_committed and tp[0] in transactional,
                    limit,
                )
            except Exception as exc:  # undecodable bytes: this partition keeps the estimate
                errors[f"undecodable records ({type(exc).__name__})"].append(f"{tp[0]}/{tp[1]}")
                continue
            if times is not None:
                out[tp] = times
    for reason, tps in sorted(errors.items()):
        more = f" and {len(tps) - 3} more" if len(tps) > 3 else ""
        problems.append(
            f"record timestamps of {', '.join(tps[:3])}{more}: {reason}; their lag in seconds "
            "is estimated"
        )
    return out


async def fetch_record_times(
    tick,
    positions: Mapping[TP, int],
    leaders: Mapping[TP, int],
    transactional: Iterable[str] = (),
    problems: list[str] | None = None,
) -> dict[TP, RecordTimes]:
    """The wave: one Fetch per leader of the partitions in `positions` (each from its
    offset), all sent at once on `tick`'s network thread (`gateway.groups.Waiter`), each
    awaited within the tick's budget. Failures are noted in `problems` (not in
    `tick.problems`: records not read make no measurement partial), never raised."""
    problems = tick.problems if problems is None else problems
    txn = frozenset(transactional)
    by_leader: dict[int, dict[TP, int]] = defaultdict(dict)
    for tp, offset in positions.items():
        leader = leaders.get(tp)
        if leader is not None and offset >= 0:
            by_leader[leader][tp] = offset
    sent = []
    for leader, parts in sorted(by_leader.items()):
        budget = partition_budget(len(parts))
        # Transactional topics are read as a read_committed consumer reads them; a request
        # with none of them reads uncommitted, like the topics' end offsets.
        committed = any(t in txn for t, _ in parts)
        try:
            future = tick.send(fetch_request(parts, committed, budget), leader)
        except Exception as exc:  # a request that cannot be sent loses only its figures
            problems.append(
                f"record timestamps of {len(parts)} partition(s) on broker {leader} not read "
                f"({type(exc).__name__}: {exc}): their lag in seconds is estimated"[:300]
            )
            continue
        sent.append((leader, parts, committed, future))
    out: dict[TP, RecordTimes] = {}
    for leader, parts, committed, future in sent:
        before = len(tick.problems)
        resp = await tick.wait(future, f"record timestamps from broker {leader}")
        if resp is None:
            if problems is not tick.problems:
                problems.extend(tick.problems[before:])
                del tick.problems[before:]
            problems.append(
                f"record timestamps of {len(parts)} partition(s) on broker {leader} not read: "
                "their lag in seconds is estimated"
            )
            continue
        try:
            out.update(parse_fetch_response(resp, parts, txn, committed, problems))
        except Exception as exc:  # an undecodable answer must not lose the others
            problems.append(
                f"record timestamps from broker {leader}: {type(exc).__name__}: {exc}"[:300]
            )
    return out


def lagging_positions(positions: Iterable[Mapping[TP, int]], offsets: Mapping) -> dict[TP, int]:
    """For each partition some group lags on, the smallest position among those groups.
    `positions`: each group's committed offsets (a share group's share-partition start
    offsets) by partition; `offsets`: `PartitionOffsets` by partition. A group's position
    is where it reads next: max(committed, log start)."""
    out: dict[TP, int] = {}
    get = out.get
    for committed_offsets in positions:
        for tp, committed in committed_offsets.items():
            po = offsets.get(tp)
            if po is None:
                continue
            start = po.start
            position = committed if start is None or committed >= start else start
            if po.end > position:
                seen = get(tp)
                if seen is None or position < seen:
                    out[tp] = position
    return out


def leaders_from(meta: dict) -> dict[TP, int]:
    """Each partition's leader in a Metadata answer (kafka-python's dict); partitions
    without a leader are left out."""
    out: dict[TP, int] = {}
    for t in meta.get("topics") or ():
        if t.get("error_code"):
            continue
        for p in t.get("partitions") or ():
            if p.get("leader_id", -1) >= 0:
                out[(t["name"], p["partition_index"])] = p["leader_id"]
    return out


def read_record_times(
    gw,
    positions: Mapping[TP, int],
    transactional: Iterable[str] = (),
    budget_s: float | None = None,
) -> tuple[dict[TP, RecordTimes], list[str]]:
    """Outside the lag tick (`consumer-groups`): the partitions' leaders (one Metadata),
    then the wave (one Fetch per leader), within `budget_s` seconds (the request timeout by
    default). Returns the record times read and notes on what was not read; never raises
    for a broker's failure to answer (the figures then stay unknown)."""
    from ecap_ops.gateway.groups import Waiter

    if not positions:
        return {}, []
    budget = budget_s if budget_s is not None else max(1.0, gw.settings.request_timeout_ms / 1000)
    w = Waiter(gw.admin, budget)
    notes: list[str] = []

    async def run():
        meta = await w.wait(
            w.mgr.call_soon(w.admin._get_cluster_metadata, sorted({t for t, _ in positions})),
            "reading partition leaders",
        )
        if meta is None:
            return {}
        return await fetch_record_times(w, positions, leaders_from(meta), transactional, notes)

    times = gw.call("reading record timestamps", lambda a: a._manager.run(run))
    return times, notes + w.problems
