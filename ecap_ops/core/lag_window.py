"""The consumer-lag window kept between ticks, as typed records, and its cursor codec. Pure.

The window holds, per partition, the last (time, end offset) samples; per group, what its
members were and when it last rebalanced; per group and partition, the committed offset,
since when it has not moved and the highest seen; per group and topic, the recent raw
statuses, the recent lag above the warning level and the open incident.

On the wire (the sensor cursor) it is version 1 of the compact JSON the sensor has always
written, zlib-compressed and base64-encoded behind the prefix `lagv1:`; short keys keep a
1,000-group cursor under Dagster's limits. `Window.to_wire` and `Window.from_wire` are the
only code that knows those keys. A cursor that cannot be read (another version, corrupt,
not ours) raises `CursorInvalid`, and the sensor starts a fresh window.
"""

import base64
import hashlib
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from ecap_ops.core.lag_status import SEVERITY_RANK, STATUS_ORDER

WINDOW_VERSION = 1
CURSOR_PREFIX = f"lagv{WINDOW_VERSION}:"

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
        return Incident(
            self.id,
            self.opened,
            self.severity,
            self.status,
            self.last,
            self.reminders,
            self.peak_msgs,
            self.peak_seconds,
        )

    def to_wire(self) -> dict:
        return {
            "id": self.id,
            "opened": self.opened,
            "sev": self.severity,
            "status": self.status,
            "last": self.last,
            "n": self.reminders,
            "pm": self.peak_msgs,
            "ps": self.peak_seconds,
        }

    @classmethod
    def from_wire(cls, d: dict) -> "Incident":
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
    """A group's history on one topic."""

    raw: list[str] = field(default_factory=list)  # last raw statuses (debouncing)
    lag: list = field(default_factory=list)  # last ticks: [msgs, seconds] when over, else None
    incident: Incident | None = None
    clean: int = 0  # clean ticks in a row while an incident is open

    def copy(self) -> "TopicWindow":
        inc = self.incident
        return TopicWindow(self.raw, self.lag, inc.copy() if inc else None, self.clean)

    def to_wire(self) -> dict:
        return {
            "raw": list(self.raw),
            "lag": list(self.lag),
            "inc": self.incident.to_wire() if self.incident else None,
            "clean": self.clean,
        }

    @classmethod
    def from_wire(cls, d: dict) -> "TopicWindow":
        inc = d.get("inc")
        lag = [None if x is None else [_num(x[0]), _opt_num(x[1])] for x in d.get("lag") or []]
        raw = d.get("raw") or []
        # One set test for the whole list (thousands of these in a 1,000-group window); an
        # unhashable entry raises TypeError, which the caller reports as a bad cursor.
        if type(raw) is not list or not _STATUSES.issuperset(raw):
            raise ValueError("raw statuses: expected a list of known statuses")
        return cls(
            list(raw),
            lag,
            Incident.from_wire(inc) if inc else None,
            int(d.get("clean") or 0),
        )


@dataclass(slots=True)
class GroupWindow:
    """A group's history: its members' fingerprint, rebalances, partitions and topics."""

    member_hash: str | None = None
    rebalanced_at: float | None = None  # the last rebalance seen
    rebalancing_since: float | None = None  # set while a rebalance goes on
    # topic -> partition (as text) -> state
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

    def to_wire(self) -> dict:
        return {
            "mh": self.member_hash,
            "rb": self.rebalanced_at,
            "rbs": self.rebalancing_since,
            # Partition states are tuples: JSON writes them as the arrays version 1 holds.
            "p": {t: dict(parts) for t, parts in self.partitions.items()},
            "t": {t: tw.to_wire() for t, tw in self.topics.items()},
        }

    @classmethod
    def from_wire(cls, d: dict) -> "GroupWindow":
        mh = d.get("mh")
        return cls(
            None if mh is None else _str(mh),
            _opt_num(d.get("rb")),
            _opt_num(d.get("rbs")),
            {_str(t): _partition_states(parts) for t, parts in (d.get("p") or {}).items()},
            {_str(t): TopicWindow.from_wire(tw) for t, tw in (d.get("t") or {}).items()},
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
        return {
            "v": WINDOW_VERSION,
            "cluster": self.cluster,
            "epoch": self.epoch,
            "seq": self.seq,
            "ends": {t: {p: list(s) for p, s in parts.items()} for t, parts in self.ends.items()},
            "groups": {g: gw.to_wire() for g, gw in self.groups.items()},
        }

    @classmethod
    def from_wire(cls, data: dict) -> "Window":
        """The window in version-1 wire data; CursorInvalid when it is not one."""
        if not isinstance(data, dict) or data.get("v") != WINDOW_VERSION:
            raise CursorInvalid(f"cursor holds no lag window of version {WINDOW_VERSION}")
        for key, kind in (("ends", dict), ("groups", dict), ("seq", int), ("cluster", str)):
            if not isinstance(data.get(key), kind):
                raise CursorInvalid(f"cursor window: {key!r} missing or not a {kind.__name__}")
        try:
            return cls(
                data["cluster"],
                _num(data.get("epoch") or 0),
                data["seq"],
                {
                    _str(t): {_str(p): [[_num(x), _num(e)] for x, e in s] for p, s in parts.items()}
                    for t, parts in data["ends"].items()
                },
                {_str(g): GroupWindow.from_wire(gw) for g, gw in data["groups"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise CursorInvalid(
                f"cursor window is malformed: {type(exc).__name__}: {str(exc)[:80]}"
            ) from None


_INT = (int,)
_STATUSES = frozenset(STATUS_ORDER)
_NUMBER = (int, float)


def _partition_states(parts: dict) -> dict[str, PartitionState]:
    """A topic's partition states from the wire, checked (a 1,000-group window holds tens
    of thousands: checked inline rather than call by call)."""
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
    """The window as a compact cursor (versioned, zlib-compressed JSON, base64), trimmed to
    `max_bytes` if needed. Returns the cursor and what was trimmed. Takes a `Window` or its
    wire data."""
    w = window.to_wire() if isinstance(window, Window) else window
    out = _encode_wire(w)
    if len(out) <= max_bytes:
        return out, []
    return _trimmed(json.loads(json.dumps(w)), max_bytes)


def _trimmed(w: dict, max_bytes: int) -> tuple[str, list[str]]:
    """Trim wire data until it fits: 1. fewer samples per partition; 2. forget the
    per-partition history of groups with no open incident (they lose their stall clock);
    3. forget those groups entirely."""
    trimmed: list[str] = []
    for keep in (10, 5, 3):
        for parts in w["ends"].values():
            for p, s in parts.items():
                parts[p] = s[-keep:]
        trimmed.append(f"end-offset samples cut to {keep} per partition")
        out = _encode_wire(w)
        if len(out) <= max_bytes:
            return out, trimmed
    quiet = [
        g
        for g, gw in w["groups"].items()
        if not any(t.get("inc") for t in gw.get("t", {}).values())
    ]
    for g in quiet:
        w["groups"][g]["p"] = {}
    trimmed.append(f"partition history dropped for {len(quiet)} group(s) without an open incident")
    out = _encode_wire(w)
    if len(out) <= max_bytes:
        return out, trimmed
    for g in quiet:
        del w["groups"][g]
    trimmed.append(f"{len(quiet)} group(s) without an open incident forgotten")
    return _encode_wire(w), trimmed


def decode_wire(cursor: str) -> dict:
    """The wire data in a cursor of this version; CursorInvalid when it cannot be read."""
    if not cursor.startswith(CURSOR_PREFIX):
        raise CursorInvalid(
            f"cursor does not start with {CURSOR_PREFIX!r} (another version or not ours)"
        )
    try:
        return json.loads(
            zlib.decompress(base64.b64decode(cursor[len(CURSOR_PREFIX) :], validate=True))
        )
    except (ValueError, zlib.error, RecursionError) as exc:
        raise CursorInvalid(
            f"cursor cannot be decoded: {type(exc).__name__}: {str(exc)[:80]}"
        ) from None


def decode_window(cursor: str | None) -> Window | None:
    """The window in a cursor; None for no cursor; CursorInvalid when it cannot be read."""
    if not cursor:
        return None
    return Window.from_wire(decode_wire(cursor))
