"""The consumer-lag window kept between ticks, as typed records, and its cursor codec. Pure.

The window holds, per partition, the last (time, end offset) samples; per group, what its
members were and when it last rebalanced; per group and partition, the committed offset,
since when it has not moved and the highest seen; per group and topic, the recent raw
statuses, the recent lag above the warning level and the open incident.

On the wire (the sensor cursor) it is compact JSON, zlib-compressed and base64-encoded behind
a prefix naming its version. Version 2 (`lagv2:`, written since 10,000-group clusters) is
columnar and holds each distinct thing once: groups at the same offsets share one table of
partition states, groups with the same recent history share one history, and a table's
committed offsets, times and peaks are three arrays. Version 1 (`lagv1:`, a JSON object per
group, topic and partition) is still read, so an upgrade keeps every window and open
incident; it is no longer written. `Window.to_wire` and `Window.from_wire` are the only
code that knows either layout. A cursor that cannot be read (another version, corrupt, not
ours) raises `CursorInvalid`, and the sensor starts a fresh window.
"""

import base64
import functools
import hashlib
import itertools
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from ecap_ops.core.lag_status import SEVERITY_RANK, STATUS_ORDER

WINDOW_VERSION = 2
CURSOR_PREFIX = f"lagv{WINDOW_VERSION}:"
# The versions this release reads (it writes WINDOW_VERSION only).
READ_VERSIONS = (1, 2)

# One (time, end offset) sample; lists, oldest first, so `bisect` can search them.
Sample = list[float]


class CursorInvalid(ValueError):
    """The sensor cursor cannot be read as a lag window."""


class PartitionState(NamedTuple):
    """A group's partition between ticks: committed offset, since when it has not moved,
    and the highest committed offset seen (a lower one later is a rewind)."""

    committed: int
    since: float
    peak: int


@dataclass(slots=True)
class Incident:
    """An open incident of a group on a topic."""

    id: str
    opened: float
    severity: str
    status: str
    last: float  # last notification (open, escalate or reminder)
    reminders: int = 0
    peak_msgs: int = 0
    peak_seconds: float | None = None

    def copy(self) -> "Incident":
        return Incident(*self.to_row())

    def to_row(self) -> list:
        """Version 2: the fields in order."""
        return [
            self.id,
            self.opened,
            self.severity,
            self.status,
            self.last,
            self.reminders,
            self.peak_msgs,
            self.peak_seconds,
        ]

    @classmethod
    def from_row(cls, row: list) -> "Incident":
        if type(row) is not list or len(row) != 8:
            raise ValueError("incident: expected a list of 8 fields")
        i, opened, sev, status, last, n, pm, ps = row
        return cls(
            _str(i),
            _num(opened),
            _one_of(sev, SEVERITY_RANK),
            _status(status),
            _num(last),
            _count(n),
            _count(pm),
            _opt_num(ps),
        )

    @classmethod
    def from_wire_v1(cls, d: dict) -> "Incident":
        return cls(
            _str(d["id"]),
            _num(d["opened"]),
            _one_of(d["sev"], SEVERITY_RANK),
            _status(d["status"]),
            _num(d["last"]),
            int(d.get("n") or 0),
            int(d.get("pm") or 0),
            _opt_num(d.get("ps")),
        )


@dataclass(slots=True)
class TopicWindow:
    """A group's history on one topic.

    `raw` and `lag` are rebuilt, never changed in place, so windows read from a cursor
    share the lists of groups with the same history."""

    raw: list[str] = field(default_factory=list)  # last raw statuses (debouncing)
    lag: list = field(default_factory=list)  # last ticks: [msgs, seconds] when over, else None
    incident: Incident | None = None
    clean: int = 0  # clean ticks in a row while an incident is open

    def copy(self) -> "TopicWindow":
        inc = self.incident
        return TopicWindow(self.raw, self.lag, inc.copy() if inc else None, self.clean)

    def history_key(self) -> tuple:
        """What version 2 stores once for every group with this history (not the incident)."""
        lag = tuple(x if x is None else (x[0], x[1]) for x in self.lag)
        return (*self.raw, lag, self.clean)

    @classmethod
    def from_wire_v1(cls, d: dict) -> "TopicWindow":
        inc = d.get("inc")
        return cls(
            _raw_statuses(d.get("raw") or []),
            _lag_history(d.get("lag") or []),
            Incident.from_wire_v1(inc) if inc else None,
            int(d.get("clean") or 0),
        )


@dataclass(slots=True)
class GroupWindow:
    """A group's history: its members' fingerprint, rebalances, partitions and topics."""

    member_hash: str | None = None
    rebalanced_at: float | None = None  # the last rebalance seen
    rebalancing_since: float | None = None  # set while a rebalance goes on
    # topic -> partition (as text) -> state. A topic's dict is replaced, never changed in
    # place: the evaluation gives groups at the same offsets one dict, and so does a cursor.
    partitions: dict[str, dict[str, PartitionState]] = field(default_factory=dict)
    topics: dict[str, TopicWindow] = field(default_factory=dict)

    def copy(self) -> "GroupWindow":
        return GroupWindow(
            self.member_hash,
            self.rebalanced_at,
            self.rebalancing_since,
            dict(self.partitions),
            {t: tw.copy() for t, tw in self.topics.items()},
        )

    def has_open_incident(self) -> bool:
        return any(t.incident for t in self.topics.values())

    @classmethod
    def from_wire_v1(cls, d: dict) -> "GroupWindow":
        mh = d.get("mh")
        return cls(
            None if mh is None else _str(mh),
            _opt_num(d.get("rb")),
            _opt_num(d.get("rbs")),
            {_str(t): _partition_states(parts) for t, parts in (d.get("p") or {}).items()},
            {_str(t): TopicWindow.from_wire_v1(tw) for t, tw in (d.get("t") or {}).items()},
        )


@dataclass(slots=True)
class Window:
    """Everything the lag evaluation keeps between ticks of one cluster."""

    cluster: str = ""
    epoch: float = 0.0  # when the window was started: incident ids stay unique across resets
    seq: int = 0  # incidents opened so far
    # topic -> partition (as text) -> (time, end offset) samples, oldest first
    ends: dict[str, dict[str, list[Sample]]] = field(default_factory=dict)
    groups: dict[str, GroupWindow] = field(default_factory=dict)

    def copy(self) -> "Window":
        """A copy that `evaluate` may change without touching this one.

        Copies every record and container the evaluation changes in place and shares the
        rest: samples, partition states and the entries of `raw`/`lag` are never changed in
        place (lists holding them are rebuilt), so a 1,000-group window is not copied
        element by element every tick."""
        return Window(
            self.cluster,
            self.epoch,
            self.seq,
            {t: {p: list(s) for p, s in parts.items()} for t, parts in self.ends.items()},
            {g: gw.copy() for g, gw in self.groups.items()},
        )

    def open_incidents(self) -> list[dict]:
        """Open incidents: group, topic, id, status, severity, since."""
        return [
            {
                "group": group,
                "topic": topic,
                "id": tw.incident.id,
                "status": tw.incident.status,
                "severity": tw.incident.severity,
                "since": tw.incident.opened,
            }
            for group, gw in self.groups.items()
            for topic, tw in gw.topics.items()
            if tw.incident
        ]

    def to_wire(self) -> dict:
        """The window as version-2 wire data.

        - `topics`: the topic names the rows below refer to by number;
        - `states`: each distinct table of partition states once, as columns
          `[partitions, committed offsets, since, peaks]` (see `_table_row`);
        - `hist`: each distinct topic history once, `[raw..., lag, clean]`;
        - `groups`: name -> `[member hash, rebalanced at, rebalancing since,
          [topic, table, ...], [topic, history, incident or null, ...]]`.
        """
        topics: dict[str, int] = {}
        tables: dict[int, int] = {}  # id of a partition-state dict -> its row
        table_rows: list = []
        hists: dict[tuple, int] = {}
        hist_rows: list = []
        groups: dict[str, list] = {}
        for g in sorted(self.groups):
            gw = self.groups[g]
            parts: list[int] = []
            for t, states in gw.partitions.items():
                ti = topics.get(t)
                if ti is None:
                    ti = topics[t] = len(topics)
                si = tables.get(id(states))
                if si is None:
                    si = tables[id(states)] = len(table_rows)
                    table_rows.append(_table_row(states))
                parts += (ti, si)
            hist: list = []
            for t, tw in gw.topics.items():
                ti = topics.get(t)
                if ti is None:
                    ti = topics[t] = len(topics)
                key = tw.history_key()
                hi = hists.get(key)
                if hi is None:
                    hi = hists[key] = len(hist_rows)
                    hist_rows.append([*tw.raw, tw.lag, tw.clean])
                hist += (ti, hi, tw.incident.to_row() if tw.incident else None)
            groups[g] = [gw.member_hash, gw.rebalanced_at, gw.rebalancing_since, parts, hist]
        return {
            "v": WINDOW_VERSION,
            "cluster": self.cluster,
            "epoch": self.epoch,
            "seq": self.seq,
            "ends": self.ends,
            "topics": list(topics),
            "states": table_rows,
            "hist": hist_rows,
            "groups": groups,
        }

    @classmethod
    def from_wire(cls, data: dict) -> "Window":
        """The window in wire data of a version this release reads; CursorInvalid when it
        is not one."""
        version = data.get("v") if isinstance(data, dict) else None
        if version not in READ_VERSIONS or type(version) is not int:
            raise CursorInvalid(
                f"cursor holds no lag window of version {' or '.join(map(str, READ_VERSIONS))}"
            )
        shape = [("ends", dict), ("groups", dict), ("seq", int), ("cluster", str)]
        if version == 2:
            shape += [("topics", list), ("states", list), ("hist", list)]
        for key, kind in shape:
            if not isinstance(data.get(key), kind):
                raise CursorInvalid(f"cursor window: {key!r} missing or not a {kind.__name__}")
        try:
            ends = {
                _str(t): {_str(p): [[_num(x), _num(e)] for x, e in s] for p, s in parts.items()}
                for t, parts in data["ends"].items()
            }
            if version == 1:
                groups = {_str(g): GroupWindow.from_wire_v1(gw) for g, gw in data["groups"].items()}
            else:
                groups = _groups_v2(data)
            return cls(data["cluster"], _num(data.get("epoch") or 0), data["seq"], ends, groups)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise CursorInvalid(
                f"cursor window is malformed: {type(exc).__name__}: {str(exc)[:80]}"
            ) from None


def _groups_v2(data: dict) -> dict[str, GroupWindow]:
    """The groups of version-2 wire data, checked. Each table and history is read once and
    shared by the groups that refer to it (neither is changed in place)."""
    topics = data["topics"]
    if not _STR_TYPES.issuperset(map(type, topics)):
        raise TypeError("topics: expected a list of names")
    tables = [_state_table(row) for row in data["states"]]
    hists = [_history(row) for row in data["hist"]]
    groups = {}
    for g, row in data["groups"].items():
        if type(g) is not str or type(row) is not list or len(row) != 5:
            raise ValueError("group: expected name -> a list of 5 fields")
        mh, rb, rbs, parts, hist = row
        if type(parts) is not list or len(parts) % 2 or type(hist) is not list or len(hist) % 3:
            raise ValueError("group: partitions and topics are flat lists of pairs and triples")
        states = {}
        for i in range(0, len(parts), 2):
            states[_at(topics, parts[i])] = _at(tables, parts[i + 1])
        tws = {}
        for i in range(0, len(hist), 3):
            raw, lag, clean = _at(hists, hist[i + 1])
            inc = hist[i + 2]
            tws[_at(topics, hist[i])] = TopicWindow(
                raw, lag, None if inc is None else Incident.from_row(inc), clean
            )
        groups[g] = GroupWindow(
            None if mh is None else _str(mh), _opt_num(rb), _opt_num(rbs), states, tws
        )
    return groups


_INT = (int,)
_STATUSES = frozenset(STATUS_ORDER)
_NUMBER = (int, float)
_STR_TYPES = frozenset((str,))
_INT_TYPES = frozenset((int,))
_NUMBER_TYPES = frozenset((int, float))


def _at(rows: list, i):
    """rows[i] for a row number read from a cursor (no negative or boolean numbers)."""
    if type(i) is not int or not 0 <= i < len(rows):
        raise IndexError(f"row number {str(i)[:12]} out of range")
    return rows[i]


def _first_keys(n: int) -> list[str]:
    """Partitions "0" to n-1 as text: a topic's whole set, the usual table."""
    return _KEY_LISTS[n] if n < len(_KEY_LISTS) else [str(p) for p in range(n)]


_KEY_LISTS = [[str(p) for p in range(n)] for n in range(65)]
_new_state = functools.partial(tuple.__new__, PartitionState)


def _table_row(states: dict[str, PartitionState]) -> list:
    """A table of partition states as columns, each column shortened where it is what it
    usually is: partitions null when they are "0" to n-1, since a single number when every
    partition has not moved since the same time, peaks null when equal to the committed
    offsets (no rewind)."""
    keys = list(states)
    if not keys:
        return [None, [], [], None]
    committed, since, peak = zip(*states.values(), strict=True)
    first = since[0]
    return [
        None if keys == _first_keys(len(keys)) else keys,
        list(committed),
        first if since.count(first) == len(since) else list(since),
        None if peak == committed else list(peak),
    ]


def _state_table(row) -> dict[str, PartitionState]:
    """A version-2 table of partition states (see `_table_row`), its columns checked whole."""
    if type(row) is not list or len(row) != 4:
        raise ValueError("partition states: expected [partitions, committed, since, peaks]")
    keys, committed, since, peak = row
    if type(committed) is not list or not _INT_TYPES.issuperset(map(type, committed)):
        raise TypeError("partition states: expected integer committed offsets")
    n = len(committed)
    if keys is None:
        keys = _first_keys(n)
    elif type(keys) is not list or not _STR_TYPES.issuperset(map(type, keys)):
        raise TypeError("partition states: expected text partitions")
    if peak is None:
        peak = committed
    elif type(peak) is not list or not _INT_TYPES.issuperset(map(type, peak)):
        raise TypeError("partition states: expected integer peaks")
    if type(since) in _NUMBER_TYPES:
        since = itertools.repeat(since, n)
    elif type(since) is not list or not _NUMBER_TYPES.issuperset(map(type, since)):
        raise TypeError("partition states: expected numbers for since")
    elif len(since) != n:
        raise ValueError("partition states: columns of different lengths")
    if not len(keys) == n == len(peak):
        raise ValueError("partition states: columns of different lengths")
    return dict(zip(keys, map(_new_state, zip(committed, since, peak, strict=True)), strict=True))


def _history(row) -> tuple[list, list, int]:
    """A version-2 topic history: (raw statuses, lag over the warning level, clean ticks)."""
    if type(row) is not list or len(row) < 2:
        raise ValueError("topic history: expected [raw statuses..., lag, clean]")
    return _raw_statuses(row[:-2]), _lag_history(row[-2]), _count(row[-1])


def _raw_statuses(raw) -> list[str]:
    # One set test for the whole list (tens of thousands in a large window); an unhashable
    # entry raises TypeError, which the caller reports as a bad cursor.
    if type(raw) is not list or not _STATUSES.issuperset(raw):
        raise ValueError("raw statuses: expected a list of known statuses")
    return list(raw)


def _lag_history(lag) -> list:
    if type(lag) is not list:
        raise TypeError("lag history: expected a list")
    return [None if x is None else [_num(x[0]), _opt_num(x[1])] for x in lag]


def _count(x) -> int:
    if type(x) is not int or x < 0:
        raise ValueError(f"expected a count, got {str(x)[:12]!r}")
    return x


def _partition_states(parts: dict) -> dict[str, PartitionState]:
    """A topic's partition states from version-1 wire data, checked (a large window holds
    tens of thousands: checked inline rather than call by call)."""
    out = {}
    for p, st in parts.items():
        c, since, peak = st
        if (
            type(p) is not str
            or type(c) not in _INT
            or type(peak) not in _INT
            or type(since) not in _NUMBER
        ):
            raise TypeError("partition state: expected text -> [integer, number, integer]")
        out[p] = PartitionState(c, since, peak)
    return out


def _num(x) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"expected a number, got {type(x).__name__}")
    return x


def _opt_num(x) -> float | None:
    return None if x is None else _num(x)


def _one_of(x, allowed) -> str:
    if x not in allowed:
        raise ValueError(f"unknown value {str(x)[:20]!r}")
    return x


def _status(x) -> str:
    return _one_of(_str(x), STATUS_ORDER)


def _str(x) -> str:
    if not isinstance(x, str):
        raise TypeError(f"expected text, got {type(x).__name__}")
    return x


def new_window(cluster_id: str = "", epoch: float = 0.0) -> Window:
    """An empty window. `epoch` (when it was started) makes incident ids unique across resets."""
    return Window(cluster_id, round(epoch, 3))


def copy_window(window: Window) -> Window:
    return window.copy()


def open_incidents(window: Window | None) -> list[dict]:
    return window.open_incidents() if window is not None else []


def member_hash(member_ids: Iterable[str]) -> str:
    ids = sorted(member_ids)
    if not ids:
        return _NO_MEMBERS  # most groups of a large cluster, between runs
    return hashlib.sha1("\n".join(ids).encode()).hexdigest()[:10]


_NO_MEMBERS = hashlib.sha1(b"").hexdigest()[:10]


def _encode_wire(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return CURSOR_PREFIX + base64.b64encode(zlib.compress(raw, 6)).decode("ascii")


def encode_window(window: Window | dict, max_bytes: int = 1_000_000) -> tuple[str, list[str]]:
    """The window as a compact cursor (version 2: zlib-compressed JSON, base64), trimmed to
    `max_bytes` if needed. Returns the cursor and what was trimmed. Takes a `Window` or wire
    data of a version this release reads."""
    if not isinstance(window, Window):
        window = Window.from_wire(window)
    out = _encode_wire(window.to_wire())
    if len(out) <= max_bytes:
        return out, []
    return _trimmed(window.copy(), max_bytes)


def _trimmed(w: Window, max_bytes: int) -> tuple[str, list[str]]:
    """Trim a copy of the window until it fits: 1. fewer samples per partition; 2. forget
    the per-partition history of groups with no open incident (they lose their stall
    clock); 3. forget those groups entirely."""
    trimmed: list[str] = []
    for keep in (10, 5, 3):
        for parts in w.ends.values():
            for p, s in parts.items():
                parts[p] = s[-keep:]
        trimmed.append(f"end-offset samples cut to {keep} per partition")
        out = _encode_wire(w.to_wire())
        if len(out) <= max_bytes:
            return out, trimmed
    quiet = [g for g, gw in w.groups.items() if not gw.has_open_incident()]
    for g in quiet:
        w.groups[g].partitions = {}
    trimmed.append(f"partition history dropped for {len(quiet)} group(s) without an open incident")
    out = _encode_wire(w.to_wire())
    if len(out) <= max_bytes:
        return out, trimmed
    for g in quiet:
        del w.groups[g]
    trimmed.append(f"{len(quiet)} group(s) without an open incident forgotten")
    return _encode_wire(w.to_wire()), trimmed


def decode_wire(cursor: str) -> dict:
    """The wire data in a cursor of a version this release reads; CursorInvalid when it
    cannot be read."""
    version = next((v for v in READ_VERSIONS if cursor.startswith(f"lagv{v}:")), None)
    if version is None:
        raise CursorInvalid(
            f"cursor does not start with {CURSOR_PREFIX!r} (another version or not ours)"
        )
    try:
        data = json.loads(
            zlib.decompress(base64.b64decode(cursor[len(f"lagv{version}:") :], validate=True))
        )
    except (ValueError, zlib.error, RecursionError) as exc:
        raise CursorInvalid(
            f"cursor cannot be decoded: {type(exc).__name__}: {str(exc)[:80]}"
        ) from None
    if not isinstance(data, dict) or data.get("v") != version:
        raise CursorInvalid(f"cursor of version {version} holds no lag window of that version")
    return data


def decode_window(cursor: str | None) -> Window | None:
    """The window in a cursor; None for no cursor; CursorInvalid when it cannot be read."""
    if not cursor:
        return None
    return Window.from_wire(decode_wire(cursor))
