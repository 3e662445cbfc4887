"""What flows through a topic, judged against its contract. Pure: no I/O, no Dagster.

Five checks per topic, each one rule used by the Dagster job, the asset checks and tests:

- `schema_conformance`: of the sampled records, the share whose value is not JSON, fails
  the topic's JSON Schema, or is larger than `max_record_bytes`; the first offender
  (partition, offset, reason). A compacted topic's records without a value are deletions
  (tombstones), not failures.
- `key_discipline`: sampled records without a key, or whose key differs from the value's
  key field (the catalog's `partition_key`).
- `partition_balance`: records per partition over the window (from end offsets observed by
  ecap-ops, never from the sample, which takes the same number of newest records from each
  partition), bytes per partition (records times the partition's mean sampled size), the
  skew (busiest partition / mean) against `max_skew`, and the hottest keys (sampled keys
  weighted by their partition's records).
- `volume_in_band`: records per hour against `expected_volume`, from end offsets over time
  (at least a quarter of `volume_window` observed, else not judged yet).
- `freshness`: how long the end offsets have not moved, as observed by ecap-ops, against
  the `freshness` limit. The newest record's producer timestamp is shown, never trusted
  alone: a producer's clock, or a backfill, can say anything.

Observations (`history`) are a JSON-able dict kept between runs by the caller (the
Dagster job keeps it on its asset): per topic a bounded list of `[time, [end offset per
partition]]`.

A failed check's level is the contract's `severity` for it, else the environment's
default (prod: schema and freshness CRIT, the rest WARN; other environments: WARN). A topic's
incident follows the worst failed check's level through the one incident model
(`core.incidents`), one incident per topic.
"""

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ecap_ops.catalog.contracts import CHECKS, ContractSpec
from ecap_ops.catalog.units import format_seconds
from ecap_ops.core import incidents
from ecap_ops.core.alerts import Alert
from ecap_ops.core.incidents import CRIT, OK, WARN, IncidentRules, Track

SOURCE = "topic_contracts"
HISTORY_VERSION = 1
MAX_POINTS = 400  # per topic; older points are thinned
EXAMPLES = 10  # offending records listed per check
REASON_CHARS = 160
HOT_KEYS = 5
KEY_CHARS = 60
# partition_balance is judged from this many records in the window (per partition, at least).
MIN_RECORDS_PER_PARTITION = 20
MIN_RECORDS_FOR_BALANCE = 100
RULES = IncidentRules(remind_warning_s=4 * 3600.0, remind_critical_s=30 * 60.0, resolve_after=2)
_PROD_DEFAULTS = {"schema_conformance": CRIT, "freshness": CRIT}


@dataclass(frozen=True)
class Record:
    """One sampled record: where it is, when its producer says it was written, its bytes."""

    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None

    @property
    def size(self) -> int:
        return len(self.key or b"") + len(self.value or b"")


@dataclass(frozen=True)
class ContractResult:
    """One check of one topic."""

    topic: str  # the topic's name on the cluster
    check: str  # one of CHECKS
    passed: bool
    level: str  # OK when passed, else WARN or CRIT
    description: str
    # name -> (kind, value); kinds: int, float, text, json, table ((headers, rows))
    metadata: dict[str, tuple[str, object]] = field(default_factory=dict)
    judged: bool = True  # False: not enough observations yet (passes, says so)

    @property
    def severity(self) -> str:
        """As a Dagster check severity: CRIT is ERROR, anything else WARN."""
        return "ERROR" if self.level == CRIT else "WARN"


def level_for(check: str, contract: ContractSpec, env: str) -> str:
    """How bad a failure of `check` is on this topic in this environment."""
    if check in contract.severity:
        return contract.severity[check]
    if env == "prod":
        return _PROD_DEFAULTS.get(check, WARN)
    return WARN


def _short(text: str, limit: int = REASON_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _show_key(key: bytes | None) -> str:
    if key is None:
        return "(no key)"
    text = key.decode("utf-8", "backslashreplace")
    return _short(text, KEY_CHARS)


# -- values ---------------------------------------------------------------------------------


class _NotJson(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON number")


def parse_value(value: bytes) -> tuple[Any, str | None]:
    """(the value as JSON, None) or (None, why it is not JSON)."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {exc.start})"
    try:
        return json.loads(text, parse_constant=_no_constant), None
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at character {exc.pos}"
    except _NotJson as exc:
        return None, f"not JSON: {exc}"
    except (ValueError, RecursionError) as exc:
        return None, f"not usable JSON: {_short(str(exc), 60)}"


_VALIDATORS: dict[int, Any] = {}


def _validator(schema: Any):
    from jsonschema import Draft202012Validator

    key = id(schema)
    v = _VALIDATORS.get(key)
    if v is None or v[0] is not schema:
        v = (schema, Draft202012Validator(schema))
        _VALIDATORS[key] = v
    return v[1]


def schema_reason(schema: Any, doc: Any) -> str | None:
    """Why `doc` fails `schema` (the most relevant error, with its JSON path), or None."""
    from jsonschema.exceptions import best_match

    try:
        error = best_match(_validator(schema).iter_errors(doc))
    except Exception as exc:  # an unresolvable local $ref, a pathological pattern
        return f"the schema cannot be applied: {type(exc).__name__}: {_short(str(exc), 80)}"
    if error is None:
        return None
    return f"at {error.json_path}: {_short(error.message)}"


# -- the sampled checks ------------------------------------------------------------------------


def schema_conformance(
    topic: str, contract: ContractSpec, records: Sequence[Record], compacted: bool, level: str
) -> ContractResult:
    failures: list[tuple[int, int, str]] = []
    tombstones = 0
    for r in records:
        reason = None
        if r.value is None:
            if compacted:
                tombstones += 1
                continue
            reason = "no value (a tombstone on a topic that is not compacted)"
        elif contract.max_record_bytes is not None and r.size > contract.max_record_bytes:
            reason = f"record of {r.size:,} bytes, larger than max_record_bytes ({contract.max_record_bytes:,})"
        else:
            doc, why = parse_value(r.value)
            if why is not None:
                reason = why
            elif contract.schema is not None:
                reason = schema_reason(contract.schema, doc)
        if reason is not None:
            failures.append((r.partition, r.offset, reason))
    n = len(records)
    checked = n - tombstones
    against = f"the schema ({contract.schema_source})" if contract.schema is not None else "JSON"
    meta: dict[str, tuple[str, object]] = {
        "records_sampled": ("int", n),
        "records_failing": ("int", len(failures)),
        "failing_share": ("float", round(len(failures) / checked, 4) if checked else 0.0),
        "checked_against": ("text", against),
    }
    if tombstones:
        meta["tombstones"] = ("int", tombstones)
    if not failures:
        desc = (
            f"{checked} sampled record(s) of {topic} conform to {against}"
            if n
            else f"no records to sample on {topic}"
        )
        return ContractResult(topic, "schema_conformance", True, OK, desc, meta, judged=n > 0)
    failures.sort()
    p, o, why = failures[0]
    meta["first_partition"] = ("int", p)
    meta["first_offset"] = ("int", o)
    meta["failures"] = (
        "table",
        (["partition", "offset", "reason"], [[fp, fo, fw] for fp, fo, fw in failures[:EXAMPLES]]),
    )
    share = len(failures) / checked if checked else 1.0
    desc = (
        f"{len(failures)} of {checked} sampled record(s) of {topic} ({share:.1%}) fail {against}; "
        f"first at partition {p} offset {o}: {why}"
    )
    return ContractResult(topic, "schema_conformance", False, level, desc, meta)


def key_text(doc: Any, key_field: str) -> str | None:
    """The key a record with value `doc` should carry: its key field, as test-produce and
    load-test write it (a string as is, anything else as JSON); None when it has none."""
    if not isinstance(doc, dict) or doc.get(key_field) is None:
        return None
    v = doc[key_field]
    return v if isinstance(v, str) else json.dumps(v)


def key_discipline(
    topic: str, key_field: str | None, records: Sequence[Record], level: str
) -> ContractResult:
    unkeyed: list[tuple[int, int, str]] = []
    mismatched: list[tuple[int, int, str]] = []
    counted = 0
    for r in records:
        if r.value is None:
            continue  # a deletion carries the key it deletes; nothing to compare with
        counted += 1
        if r.key is None:
            unkeyed.append((r.partition, r.offset, "no key"))
            continue
        if key_field is None:
            continue
        doc, why = parse_value(r.value)
        if why is not None:
            continue  # not JSON: schema_conformance reports it
        expected = key_text(doc, key_field)
        got = r.key.decode("utf-8", "backslashreplace")
        if expected is None:
            mismatched.append((r.partition, r.offset, f"the value has no {key_field!r}"))
        elif got != expected:
            mismatched.append(
                (
                    r.partition,
                    r.offset,
                    f"key {_short(got, KEY_CHARS)!r} but {key_field} {_short(expected, KEY_CHARS)!r}",
                )
            )
    meta: dict[str, tuple[str, object]] = {
        "records_sampled": ("int", counted),
        "records_unkeyed": ("int", len(unkeyed)),
        "records_key_mismatch": ("int", len(mismatched)),
        "key_field": ("text", key_field or "(none declared)"),
    }
    bad = sorted(unkeyed + mismatched)
    if not bad:
        if key_field is None:
            desc = (
                f"{counted} sampled record(s) of {topic} all have a key (no partition_key declared)"
            )
        else:
            desc = f"{counted} sampled record(s) of {topic} are keyed by their {key_field}"
        return ContractResult(topic, "key_discipline", True, OK, desc, meta, judged=counted > 0)
    meta["offenders"] = (
        "table",
        (["partition", "offset", "problem"], [list(b) for b in bad[:EXAMPLES]]),
    )
    parts = []
    if unkeyed:
        parts.append(f"{len(unkeyed)} without a key")
    if mismatched:
        parts.append(f"{len(mismatched)} whose key is not their {key_field}")
    p, o, why = bad[0]
    desc = (
        f"{' and '.join(parts)} of {counted} sampled record(s) of {topic}; "
        f"first at partition {p} offset {o}: {why}"
    )
    return ContractResult(topic, "key_discipline", False, level, desc, meta)


def partition_balance(
    topic: str,
    contract: ContractSpec,
    window_records: Mapping[int, int],
    window_label: str,
    records: Sequence[Record],
    level: str,
) -> ContractResult:
    """`window_records`: records written to each partition over the window (every partition)."""
    parts = sorted(window_records)
    total = sum(window_records.values())
    sizes: dict[int, list[int]] = defaultdict(list)
    keys_by_part: dict[int, Counter] = defaultdict(Counter)
    for r in records:
        sizes[r.partition].append(r.size)
        keys_by_part[r.partition][_show_key(r.key)] += 1
    rows = []
    bytes_by_part = {}
    for p in parts:
        mean_size = sum(sizes[p]) / len(sizes[p]) if sizes[p] else 0.0
        bytes_by_part[p] = int(window_records[p] * mean_size)
    # hottest keys: each sampled key stands for its partition's share of the window
    weights: Counter = Counter()
    for p, keys in keys_by_part.items():
        n = sum(keys.values())
        for k, c in keys.items():
            weights[k] += window_records.get(p, 0) * c / n
    hot = weights.most_common(HOT_KEYS)
    mean = total / len(parts) if parts else 0.0
    skew = (max(window_records.values()) / mean) if mean > 0 else 0.0
    for p in parts:
        rows.append(
            [
                p,
                window_records[p],
                bytes_by_part[p],
                f"{window_records[p] / total:.1%}" if total else "-",
            ]
        )
    meta: dict[str, tuple[str, object]] = {
        "skew": ("float", round(skew, 3)),
        "max_skew": ("float", contract.max_skew),
        "records_in_window": ("int", total),
        "window": ("text", window_label),
        "partitions": ("table", (["partition", "records", "bytes (est.)", "share"], rows)),
        "hottest_keys": (
            "table",
            (
                ["key", "records (est.)", "share"],
                [[k, int(w), f"{w / total:.1%}" if total else "-"] for k, w in hot],
            ),
        ),
    }
    needed = max(MIN_RECORDS_FOR_BALANCE, MIN_RECORDS_PER_PARTITION * len(parts))
    if len(parts) <= 1 or total < needed:
        why = (
            "one partition"
            if len(parts) <= 1
            else f"{total} record(s) in {window_label}, fewer than {needed}"
        )
        return ContractResult(
            topic,
            "partition_balance",
            True,
            OK,
            f"{topic}'s balance not judged: {why}",
            meta,
            judged=False,
        )
    hottest = max(parts, key=lambda p: window_records[p])
    if skew <= contract.max_skew:
        desc = f"{topic}: skew {skew:.2f} (busiest partition / mean) within {contract.max_skew:g} over {window_label}"
        return ContractResult(topic, "partition_balance", True, OK, desc, meta)
    top = f"; hottest key {hot[0][0]!r} ~{hot[0][1] / total:.0%} of records" if hot else ""
    desc = (
        f"{topic}: partition {hottest} takes {window_records[hottest] / total:.0%} of {total} records "
        f"over {window_label}: skew {skew:.2f} > {contract.max_skew:g}{top}"
    )
    return ContractResult(topic, "partition_balance", False, level, desc, meta)


# -- observations over time --------------------------------------------------------------------


def _points(history: Mapping, topic: str) -> list[tuple[float, list[int]]]:
    raw = history.get("topics", {}).get(topic) if isinstance(history, Mapping) else None
    out = []
    for p in raw or []:
        try:
            t, ends = float(p[0]), [int(e) for e in p[1]]
        except (TypeError, ValueError, IndexError):
            continue
        if math.isfinite(t):
            out.append((t, ends))
    out.sort(key=lambda x: x[0])
    return out


def _total(ends: Sequence[int]) -> int:
    return sum(ends)


def record_point(
    history: Mapping | None, topic: str, now: float, ends: Sequence[int], keep_s: float
) -> dict:
    """The history with this observation of `topic` added, pruned to `keep_s` (keeping the
    point where the current plateau began and the last point before the window)."""
    base = (
        dict(history)
        if isinstance(history, Mapping) and history.get("v") == HISTORY_VERSION
        else {}
    )
    topics = dict(base.get("topics") or {})
    points = _points({"topics": topics}, topic)
    ends = [int(e) for e in ends]
    # a topic re-created (an end offset went back) starts a new history
    if points and any(
        e < (points[-1][1][i] if i < len(points[-1][1]) else 0) for i, e in enumerate(ends)
    ):
        points = []
    points.append((round(now, 3), ends))
    horizon = now - keep_s
    plateau = _plateau_start(points)
    older = [p for p in points if p[0] < horizon]
    kept = [p for p in points if p[0] >= horizon]
    if older:
        kept.insert(0, older[-1])
    if plateau is not None and all(p[0] != plateau[0] for p in kept):
        kept.insert(0, plateau)
    if len(kept) > MAX_POINTS:  # thin the middle, keep both ends
        step = math.ceil(len(kept) / MAX_POINTS)
        kept = [kept[0], *kept[1:-1:step], kept[-1]]
    topics[topic] = [[t, e] for t, e in kept]
    return {"v": HISTORY_VERSION, "topics": topics}


def _plateau_start(points: Sequence[tuple[float, list[int]]]):
    """The first point at the current total (after the last point with a lower total)."""
    if not points:
        return None
    current = _total(points[-1][1])
    start = points[-1]
    for p in reversed(points):
        if _total(p[1]) != current:
            break
        start = p
    return start


def window_records(
    points: Sequence[tuple[float, list[int]]], now: float, window_s: float, starts: Sequence[int]
) -> tuple[dict[int, int], str]:
    """Records per partition over the window: end offsets now minus at the window's oldest
    observation; with one observation only, what each partition holds (end - start)."""
    cur = points[-1][1]
    inside = [p for p in points[:-1] if p[0] >= now - window_s]
    before = [p for p in points[:-1] if p[0] < now - window_s]
    ref = inside[0] if inside else (before[-1] if before else None)
    if ref is None:
        return (
            {i: max(0, e - (starts[i] if i < len(starts) else 0)) for i, e in enumerate(cur)},
            "the records the topic holds (first observation)",
        )
    old = ref[1]
    return (
        {i: max(0, e - (old[i] if i < len(old) else 0)) for i, e in enumerate(cur)},
        f"the last {format_seconds(now - ref[0])}",
    )


def volume_in_band(
    topic: str, spec_volume: Any, contract: ContractSpec, points: Sequence, now: float, level: str
) -> ContractResult:
    cur_t, cur = points[-1]
    window = contract.volume_window_s
    inside = [p for p in points[:-1] if p[0] >= now - window]
    before = [p for p in points[:-1] if p[0] < now - window]
    ref = inside[0] if inside else (before[-1] if before else None)
    meta: dict[str, tuple[str, object]] = {"window": ("text", format_seconds(window))}
    if spec_volume is not None:
        meta["expected_min_per_hour"] = ("int", spec_volume.min_per_hour)
        meta["expected_max_per_hour"] = ("int", spec_volume.max_per_hour)
    span = (now - ref[0]) if ref else 0.0
    if ref is not None and span > 0:  # shown (and plotted) even before it is judged
        written = max(0, _total(cur) - _total(ref[1]))
        per_hour = written / span * 3600.0
        meta["records_per_hour"] = ("float", round(per_hour, 1))
        meta["records_in_window"] = ("int", written)
        meta["observed_over"] = ("text", format_seconds(span))
    if ref is None or span < window / 4 or span <= 0:
        seen = format_seconds(span) if ref else "nothing yet"
        desc = f"{topic}'s volume not judged yet: observed over {seen}, needs {format_seconds(window / 4)}"
        return ContractResult(topic, "volume_in_band", True, OK, desc, meta, judged=False)
    rate = f"{per_hour:,.0f} records/hour ({written:,} in {format_seconds(span)})"
    if spec_volume is None:
        return ContractResult(
            topic, "volume_in_band", True, OK, f"{topic}: {rate}; no expected_volume declared", meta
        )
    lo, hi = spec_volume.min_per_hour, spec_volume.max_per_hour
    if per_hour < lo:
        desc = f"{topic}: {rate}, below the expected {lo:,}-{hi:,}/hour"
        return ContractResult(topic, "volume_in_band", False, level, desc, meta)
    if per_hour > hi:
        desc = f"{topic}: {rate}, above the expected {lo:,}-{hi:,}/hour"
        return ContractResult(topic, "volume_in_band", False, level, desc, meta)
    return ContractResult(
        topic, "volume_in_band", True, OK, f"{topic}: {rate}, within {lo:,}-{hi:,}/hour", meta
    )


def freshness(
    topic: str,
    contract: ContractSpec,
    points: Sequence,
    now: float,
    newest_timestamp_ms: int | None,
    level: str,
) -> ContractResult:
    plateau = _plateau_start(points)
    moved = len(points) > 1 and plateau is not points[0]
    silent = now - plateau[0]
    meta: dict[str, tuple[str, object]] = {
        "silent_seconds": ("float", round(silent, 1)),
        "end_offsets_total": ("int", _total(points[-1][1])),
    }
    if newest_timestamp_ms is not None:
        age = now - newest_timestamp_ms / 1000.0
        meta["newest_record_age_seconds"] = ("float", round(age, 1))
        meta["newest_record_timestamp"] = ("text", "producer timestamp, shown, not trusted alone")
    limit = contract.freshness_s
    meta["limit"] = ("text", format_seconds(limit) if limit is not None else "none")
    how = (
        f"end offsets last moved {format_seconds(silent)} ago"
        if moved
        else f"end offsets unchanged for the {format_seconds(silent)} ecap-ops has watched"
    )
    if len(points) == 1:
        how = "first observation of the end offsets"
    if limit is None:
        return ContractResult(
            topic, "freshness", True, OK, f"{topic}: {how}; no freshness limit", meta
        )
    if len(points) == 1:
        return ContractResult(
            topic,
            "freshness",
            True,
            OK,
            f"{topic}'s freshness not judged yet: {how}",
            meta,
            judged=False,
        )
    if silent > limit:
        desc = f"{topic}: no new record: {how}, longer than the limit of {format_seconds(limit)}"
        return ContractResult(topic, "freshness", False, level, desc, meta)
    return ContractResult(
        topic, "freshness", True, OK, f"{topic}: {how}, within {format_seconds(limit)}", meta
    )


# -- one topic -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicObservation:
    """What the gateway read of one topic in one run."""

    topic: str
    starts: tuple[int, ...]  # per partition, by partition number
    ends: tuple[int, ...]
    records: tuple[Record, ...]
    bytes_read: int = 0
    byte_cap: int = 0
    capped: bool = False  # the byte cap stopped the sample
    seconds: float = 0.0

    @property
    def newest_timestamp_ms(self) -> int | None:
        ts = [
            r.timestamp_ms
            for r in self.records
            if r.timestamp_ms is not None and r.timestamp_ms >= 0
        ]
        return max(ts) if ts else None


def keep_seconds(contract: ContractSpec) -> float:
    return max(contract.volume_window_s, contract.freshness_s or 0.0) * 1.5


def judge_topic(
    spec: Any,
    contract: ContractSpec,
    env: str,
    obs: TopicObservation,
    history: Mapping | None,
    now: float,
) -> tuple[list[ContractResult], dict]:
    """The five checks of one topic, and the history with this observation recorded."""
    new_history = record_point(history, obs.topic, now, obs.ends, keep_seconds(contract))
    points = _points(new_history, obs.topic)
    lv = {c: level_for(c, contract, env) for c in CHECKS}
    records = obs.records
    per_part, label = window_records(points, now, contract.volume_window_s, obs.starts)
    results = [
        schema_conformance(obs.topic, contract, records, spec.compacted, lv["schema_conformance"]),
        key_discipline(obs.topic, spec.partition_key, records, lv["key_discipline"]),
        partition_balance(obs.topic, contract, per_part, label, records, lv["partition_balance"]),
        volume_in_band(
            obs.topic, spec.expected_volume, contract, points, now, lv["volume_in_band"]
        ),
        freshness(obs.topic, contract, points, now, obs.newest_timestamp_ms, lv["freshness"]),
    ]
    sample_meta = {
        "sample_bytes": ("int", obs.bytes_read),
        "sample_byte_cap": ("int", obs.byte_cap),
        "sample_seconds": ("float", round(obs.seconds, 3)),
    }
    for i in (0, 1):  # the sampled checks say what the sample was
        results[i] = ContractResult(
            results[i].topic,
            results[i].check,
            results[i].passed,
            results[i].level,
            results[i].description + (" (sample stopped at its byte cap)" if obs.capped else ""),
            {**results[i].metadata, **sample_meta},
            results[i].judged,
        )
    return results, new_history


# -- incidents: one per topic ------------------------------------------------------------------


@dataclass(frozen=True)
class ContractEvent:
    kind: str  # open, escalate, remind, resolve
    incident_id: str
    topic: str
    level: str
    at: float
    since: float
    failed: tuple[str, ...] = ()  # "check: description"
    reminder: int = 0

    @property
    def event_name(self) -> str:
        return incidents.event_name(self.kind, self.reminder)

    @property
    def run_key(self) -> str:
        return incidents.run_key(self.incident_id, self.event_name)

    @property
    def severity(self) -> str:
        return incidents.alert_severity(self.kind, self.level)


@dataclass(frozen=True)
class ContractDecision:
    state: dict
    events: tuple[ContractEvent, ...] = ()
    notes: tuple[str, ...] = ()


STATE_VERSION = 1


def _read_track(raw: Any) -> Track | None:
    try:
        return Track(
            str(raw["id"]),
            float(raw["opened"]),
            str(raw["level"]) if raw["level"] in (WARN, CRIT) else WARN,
            str(raw["peak"]) if raw["peak"] in (WARN, CRIT) else WARN,
            float(raw["last"]),
            int(raw.get("reminders") or 0),
            0,
            int(raw.get("clean") or 0),
        )
    except (KeyError, TypeError, ValueError):
        return None


def decide(
    stored: Any, results: Iterable[ContractResult], now: float, rules: IncidentRules = RULES
) -> ContractDecision:
    """This run's results against each topic's open incident: the events to notify and the
    state for the next run."""
    notes = []
    prev: dict = {}
    if stored is not None:
        if isinstance(stored, Mapping) and stored.get("v") == STATE_VERSION:
            prev = dict(stored.get("incidents") or {})
        else:
            notes.append("previous contract incident state has an unknown shape; treated as none")
    by_topic: dict[str, list[ContractResult]] = defaultdict(list)
    for r in results:
        by_topic[r.topic].append(r)
    state: dict = {"v": STATE_VERSION, "incidents": {}}
    events = []
    for topic, rs in sorted(by_topic.items()):
        failed = [r for r in rs if not r.passed]
        level = max((r.level for r in failed), key=incidents.rank, default=OK)
        track = _read_track(prev.get(topic)) if topic in prev else None
        if topic in prev and track is None:
            notes.append(f"the open incident of {topic} could not be read; treated as none")
        s = incidents.step(
            track, level, now, rules, new_id=lambda t=topic: f"{SOURCE}:{t}:{int(now * 1000)}"
        )
        if s.track is not None:
            state["incidents"][topic] = s.track._asdict()
        if s.kind is not None and s.subject is not None:
            t = s.subject
            events.append(
                ContractEvent(
                    s.kind,
                    t.id,
                    topic,
                    t.level if s.kind != incidents.ESCALATE else t.peak,
                    round(now, 3),
                    t.opened,
                    tuple(_short(f"{r.check}: {r.description}", 300) for r in failed[:5]),
                    t.reminders if s.kind == incidents.REMIND else 0,
                )
            )
    # topics no longer checked keep their incidents (a run over a subset)
    for topic, raw in prev.items():
        if topic not in by_topic and topic not in state["incidents"]:
            state["incidents"][topic] = raw
    return ContractDecision(state, tuple(events), tuple(notes))


def contract_alert(event: ContractEvent, run_url: str | None = None) -> Alert:
    took = format_seconds(max(0.0, event.at - event.since))
    if event.kind == incidents.RESOLVE:
        title = f"{event.topic}: its records meet the contract again after {took}"
    else:
        head = {
            incidents.OPEN: "breaks its contract",
            incidents.ESCALATE: "breaks its contract, now critical",
            incidents.REMIND: f"still breaks its contract (reminder {event.reminder}, for {took})",
        }.get(event.kind, "breaks its contract")
        first = event.failed[0] if event.failed else "a check failed"
        title = f"{event.topic} {head}: {first}"
    return Alert(
        source=SOURCE,
        severity=event.severity,
        title=_short(title, 300),
        text="\n".join([*event.failed, f"incident: {event.incident_id} ({event.event_name})"]),
        fields={
            "event": event.event_name,
            "incident_id": event.incident_id,
            "topic": event.topic,
            "level": event.level,
            "failed_checks": list(event.failed),
            "duration_seconds": round(max(0.0, event.at - event.since), 1),
        },
        key=event.incident_id,
        run_url=run_url,
    )


def _to_wire(e: ContractEvent) -> dict:
    d = asdict(e)
    d["failed"] = list(e.failed)
    return d


def _from_wire(d: dict) -> ContractEvent:
    return ContractEvent(
        str(d["kind"]),
        str(d["incident_id"]),
        str(d["topic"]),
        incidents.level_of(str(d["level"])),
        float(d["at"]),
        float(d["since"]),
        tuple(str(x)[:400] for x in (d.get("failed") or ())[:10]),
        int(d.get("reminder") or 0),
    )


incidents.register(incidents.EventType(SOURCE, ContractEvent, _to_wire, _from_wire, contract_alert))
