"""Test-topic cleanup's memory: the job's own observations of each topic, kept between runs.

An observation is what one run saw of one topic: its end and start offsets per partition
and each group's committed offsets. A topic's history keeps only two: the first since its
last movement and the latest (`core/cleanup.py` judges a topic idle when its own
observations span the idle window with no movement). The history is stored as one JSON
state document; `history_from_json` reads it back with bounds and raises ValueError
naming where anything is unexpected, so a broken file only restarts the window. Pure.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

# Bounds of the observation history (see `history_from_json`).
HISTORY_FORMAT = "ecap-ops/cleanup-observations/v1"
MAX_CLUSTERS = 8
MAX_PARTITIONS = 100_000
MAX_NAME = 255
MAX_GROUPS_PER_TOPIC = 1_000


@dataclass(frozen=True)
class Observation:
    """What one run saw of one topic."""

    at_ms: int
    end: tuple[int, ...]
    start: tuple[int, ...]
    committed: Mapping[str, Mapping[int, int]] = field(default_factory=dict)  # group -> p -> off


@dataclass(frozen=True)
class TopicHistory:
    """The observations of one topic since its last movement: the first and the latest."""

    topic_id: str | None
    observations: tuple[Observation, ...]

    @property
    def since(self) -> Observation:
        return self.observations[0]

    @property
    def latest(self) -> Observation:
        return self.observations[-1]


def iso(ms: int) -> str:
    """UTC time of a millisecond timestamp, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def merge_history(
    previous: Mapping[str, TopicHistory],
    updated: Mapping[str, TopicHistory],
    present: set[str],
) -> dict[str, TopicHistory]:
    """The history to keep: this run's observations, earlier ones of topics this run did not
    judge (other patterns), and nothing of topics that no longer exist."""
    out = {n: h for n, h in previous.items() if n in present}
    out.update({n: h for n, h in updated.items() if n in present})
    return out


# -- the history as JSON ---------------------------------------------------------------


def _obs_to_json(o: Observation) -> dict:
    return {
        "at_ms": o.at_ms,
        "end": list(o.end),
        "start": list(o.start),
        "committed": {
            g: {str(p): off for p, off in sorted(offs.items())}
            for g, offs in sorted(o.committed.items())
        },
    }


def history_to_json(clusters: Mapping[str, Mapping[str, TopicHistory]], now_ms: int) -> dict:
    """The state document for every cluster's history; `clusters` maps cluster id -> history.
    Keeps at most MAX_CLUSTERS clusters (the most recently updated: callers put the current
    one last)."""
    keep = list(clusters.items())[-MAX_CLUSTERS:]
    return {
        "format": HISTORY_FORMAT,
        "written_ms": now_ms,
        "clusters": {
            cid: {
                "topics": {
                    name: {
                        "topic_id": h.topic_id,
                        "observations": [_obs_to_json(o) for o in h.observations],
                    }
                    for name, h in sorted(hist.items())
                }
            }
            for cid, hist in keep
        },
    }


def _int(v, where: str, minimum: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum or v > 2**63 - 1:
        raise ValueError(f"{where}: expected a whole number >= {minimum}, got {str(v)[:20]!r}")
    return v


def _str(v, where: str, limit: int = MAX_NAME) -> str:
    if not isinstance(v, str) or not v or len(v) > limit:
        raise ValueError(f"{where}: expected a non-empty name of at most {limit} characters")
    return v


def _offsets(v, where: str) -> tuple[int, ...]:
    if not isinstance(v, list) or len(v) > MAX_PARTITIONS:
        raise ValueError(f"{where}: expected a list of at most {MAX_PARTITIONS} offsets")
    return tuple(_int(x, f"{where}[{i}]") for i, x in enumerate(v))


def _obs_from_json(v, where: str) -> Observation:
    if not isinstance(v, dict):
        raise ValueError(f"{where}: expected an object")
    end = _offsets(v.get("end"), f"{where}.end")
    start = _offsets(v.get("start"), f"{where}.start")
    if len(end) != len(start):
        raise ValueError(f"{where}: end and start offsets differ in length")
    committed_raw = v.get("committed", {})
    if not isinstance(committed_raw, dict) or len(committed_raw) > MAX_GROUPS_PER_TOPIC:
        raise ValueError(
            f"{where}.committed: expected an object of at most {MAX_GROUPS_PER_TOPIC} groups"
        )
    committed: dict[str, dict[int, int]] = {}
    for g, offs in committed_raw.items():
        gw = f"{where}.committed[{str(g)[:40]!r}]"
        _str(g, gw)
        if not isinstance(offs, dict) or len(offs) > MAX_PARTITIONS:
            raise ValueError(f"{gw}: expected an object partition -> offset")
        parts: dict[int, int] = {}
        for p, off in offs.items():
            if not isinstance(p, str) or not p.isdigit() or len(p) > 6:
                raise ValueError(f"{gw}: partition {str(p)[:20]!r} is not a partition number")
            parts[int(p)] = _int(off, f"{gw}[{p}]")
        committed[g] = parts
    return Observation(_int(v.get("at_ms"), f"{where}.at_ms"), end, start, committed)


def history_from_json(doc) -> dict[str, dict[str, TopicHistory]]:
    """Cluster id -> topic -> history, from a state document. Anything unexpected raises
    ValueError naming where: the caller then starts a fresh history (which only delays
    deletions, never causes one)."""
    if not isinstance(doc, dict):
        raise ValueError("expected a JSON object")
    if doc.get("format") != HISTORY_FORMAT:
        raise ValueError(
            f"format: expected {HISTORY_FORMAT!r}, got {str(doc.get('format'))[:60]!r}"
        )
    clusters = doc.get("clusters")
    if not isinstance(clusters, dict) or len(clusters) > MAX_CLUSTERS:
        raise ValueError(f"clusters: expected an object of at most {MAX_CLUSTERS} clusters")
    out: dict[str, dict[str, TopicHistory]] = {}
    for cid, body in clusters.items():
        cw = f"clusters[{str(cid)[:40]!r}]"
        _str(cid, cw)
        if not isinstance(body, dict) or not isinstance(body.get("topics"), dict):
            raise ValueError(f"{cw}.topics: expected an object")
        hist: dict[str, TopicHistory] = {}
        for name, h in body["topics"].items():
            tw = f"{cw}.topics[{str(name)[:60]!r}]"
            _str(name, tw, 249)
            if not isinstance(h, dict):
                raise ValueError(f"{tw}: expected an object")
            tid = h.get("topic_id")
            if tid is not None:
                _str(tid, f"{tw}.topic_id", 64)
            obs = h.get("observations")
            if not isinstance(obs, list) or not 1 <= len(obs) <= 2:
                raise ValueError(f"{tw}.observations: expected 1 or 2 observations")
            parsed = tuple(_obs_from_json(o, f"{tw}.observations[{i}]") for i, o in enumerate(obs))
            if len(parsed) == 2 and (
                parsed[0].at_ms > parsed[1].at_ms or len(parsed[0].end) != len(parsed[1].end)
            ):
                raise ValueError(
                    f"{tw}.observations: out of order, or with different partition counts"
                )
            hist[name] = TopicHistory(tid, parsed)
        out[cid] = hist
    return out
