"""MirrorMaker 2 between two named clusters: its configuration, replication lag, its
checkpoints and the offset translation of a failover. Pure (no I/O, no Dagster).

- `mm2_properties`: the `mm2.properties` of dedicated mode for one flow `source->target`
  (the reverse flow disabled, its heartbeats too, so nothing is written into the source but
  MirrorMaker's own offset syncs). Passwords are never written: each cluster's JAAS line
  names its password variable through Kafka's EnvVarConfigProvider (`${env:NAME}`), read by
  the MirrorMaker process from its environment.
- Replication policy: `IdentityReplicationPolicy`. A mirrored topic keeps its name on the
  standby, so consumers fail over without renaming anything: the same topic names, group
  ids and (translated) offsets. The consequence: the flow is one-way (prod -> dr); nothing
  may produce into the mirrored topics on the standby while mirroring, and an active-active
  pair (A->B and B->A) would loop, so ecap-ops configures only one direction.
- Group offsets are not synced by MirrorMaker (`sync.group.offsets.enabled=false`): a
  failover writes them plan-first through ecap-ops' one write path (`failover_plan`).
- Lag of a partition: the source's end offset minus the standby's (records not yet copied);
  in seconds, the age of the source's first record not yet copied (`record_lag_seconds`, the
  rule consumer lag uses). Exact when the copy began at the source's first offset, which
  MirrorMaker does for a new flow (offsets then line up one for one).
"""

import re
from dataclasses import asdict, dataclass, field

from ecap_ops.catalog.mirror import MirrorLag, MirrorSpec
from ecap_ops.catalog.units import format_seconds
from ecap_ops.core import incidents
from ecap_ops.core.alerts import Alert
from ecap_ops.core.incidents import CRIT, OK, WARN, IncidentRules, Track

POLICY = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"
ENV_PROVIDER = "org.apache.kafka.common.config.provider.EnvVarConfigProvider"
ALIAS = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")
INTERNAL_TOPICS = ("checkpoints", "offsets", "configs", "status", "heartbeats")


def checkpoints_topic(source: str) -> str:
    """Where MirrorMaker writes the source's group checkpoints, on the target."""
    return f"{source}.checkpoints.internal"


def _java_regex(names: list[str]) -> str:
    """An exact-names Java regex (names are [a-zA-Z0-9._-]: only `.` is special)."""
    return "|".join(n.replace(".", "\\.") for n in names)


def _escape(value: str) -> str:
    """A value as a Java properties file reads it back (backslashes, line breaks)."""
    return (
        value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )


@dataclass(frozen=True)
class MirrorCluster:
    """One side of the flow as MirrorMaker needs it: alias, brokers, security; the password
    only by the NAME of the environment variable that holds it."""

    alias: str
    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    password_env: str | None = None
    ssl_cafile: str | None = None

    def properties(self) -> dict[str, str]:
        p = {"bootstrap.servers": self.bootstrap_servers}
        proto = self.security_protocol.upper()
        p["security.protocol"] = proto
        if proto.startswith("SASL"):
            mech = (self.sasl_mechanism or "").upper()
            p["sasl.mechanism"] = mech
            module = (
                "org.apache.kafka.common.security.plain.PlainLoginModule"
                if mech == "PLAIN"
                else "org.apache.kafka.common.security.scram.ScramLoginModule"
            )
            user = (self.sasl_username or "").replace("\\", "\\\\").replace('"', '\\"')
            p["sasl.jaas.config"] = (
                f'{module} required username="{user}" password="${{env:{self.password_env}}}";'
            )
        if self.ssl_cafile:
            p["ssl.truststore.type"] = "PEM"
            p["ssl.truststore.location"] = self.ssl_cafile
        return p


def mm2_properties(
    source: MirrorCluster,
    target: MirrorCluster,
    topics: list[str],
    spec: MirrorSpec,
    replication_factor: int,
) -> dict[str, str]:
    """The properties of MirrorMaker 2 in dedicated mode replicating `topics` (cluster
    names) from `source` to `target`. ValueError when the flow cannot be configured."""
    for c in (source, target):
        if not ALIAS.match(c.alias):
            raise ValueError(f"cluster alias {c.alias[:40]!r}: lower-case letters, digits and _")
    if source.alias == target.alias:
        raise ValueError(f"source and target are the same cluster ({source.alias})")
    if not topics:
        raise ValueError("no topics to mirror: the catalog's mirror: section lists none")
    if replication_factor < 1:
        raise ValueError("the replication factor on the target must be at least 1")
    flow, back = f"{source.alias}->{target.alias}", f"{target.alias}->{source.alias}"
    rf = str(replication_factor)
    props: dict[str, str] = {
        "clusters": f"{source.alias}, {target.alias}",
        "config.providers": "env",
        "config.providers.env.class": ENV_PROVIDER,
        "replication.policy.class": POLICY,
        "tasks.max": "1",
        # Connect finds its plugins by their ServiceLoader manifests, not a classpath scan.
        "plugin.discovery": "service_load",
        f"{flow}.enabled": "true",
        f"{flow}.topics": _java_regex(topics),
        f"{flow}.topics.exclude": ".*[-.]internal, __.*",
        f"{flow}.groups": ".*",
        f"{flow}.groups.exclude": "console-consumer-.*, connect-.*, __.*",
        f"{flow}.emit.checkpoints.enabled": "true",
        f"{flow}.emit.checkpoints.interval.seconds": str(spec.checkpoint_interval_s),
        f"{flow}.emit.heartbeats.enabled": "true",
        f"{flow}.sync.group.offsets.enabled": "false",
        f"{flow}.sync.topic.acls.enabled": "false",
        f"{flow}.sync.topic.configs.enabled": "true",
        f"{flow}.refresh.topics.interval.seconds": str(spec.refresh_interval_s),
        f"{flow}.refresh.groups.interval.seconds": str(spec.refresh_interval_s),
        f"{flow}.offset.lag.max": str(spec.offset_lag_max),
        # The reverse flow stays off, its heartbeats too: nothing is written into the source.
        f"{back}.enabled": "false",
        f"{back}.emit.heartbeats.enabled": "false",
        "replication.factor": rf,
        "checkpoints.topic.replication.factor": rf,
        "heartbeats.topic.replication.factor": rf,
        "offset-syncs.topic.replication.factor": rf,
        "offset.storage.replication.factor": rf,
        "status.storage.replication.factor": rf,
        "config.storage.replication.factor": rf,
    }
    for c in (source, target):
        for k, v in c.properties().items():
            props[f"{c.alias}.{k}"] = v
    return props


def render_properties(props: dict[str, str]) -> str:
    head = "# Written by ecap-ops (ecap-ops mirror start); edits are replaced on the next start.\n"
    return head + "".join(f"{k} = {_escape(v)}\n" for k, v in props.items())


# -- checkpoints ------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """MirrorMaker's checkpoint of one group's partition: the group's committed offset on
    the source (`upstream`) and where that falls on the target (`downstream`)."""

    group: str
    topic: str
    partition: int
    upstream: int
    downstream: int
    timestamp_ms: int = 0


def _read_string(buf: bytes, at: int) -> tuple[str, int]:
    if at + 2 > len(buf):
        raise ValueError("truncated string length")
    n = int.from_bytes(buf[at : at + 2], "big", signed=True)
    if n < 0 or at + 2 + n > len(buf):
        raise ValueError("bad string length")
    return buf[at + 2 : at + 2 + n].decode("utf-8"), at + 2 + n


def decode_checkpoint(key: bytes, value: bytes, timestamp_ms: int = 0) -> Checkpoint:
    """One record of `<source>.checkpoints.internal` (connect-mirror-client's `Checkpoint`:
    key group, topic as INT16-length strings and partition INT32; value a version INT16, then
    upstream and downstream offsets INT64 and a metadata string). ValueError if malformed."""
    if not key or not value:
        raise ValueError("empty key or value")
    group, at = _read_string(key, 0)
    topic, at = _read_string(key, at)
    if at + 4 != len(key):
        raise ValueError("bad key length")
    partition = int.from_bytes(key[at : at + 4], "big", signed=True)
    if len(value) < 18:
        raise ValueError("value too short")
    version = int.from_bytes(value[0:2], "big", signed=True)
    if version != 0:
        raise ValueError(f"unknown checkpoint version {version}")
    upstream = int.from_bytes(value[2:10], "big", signed=True)
    downstream = int.from_bytes(value[10:18], "big", signed=True)
    if partition < 0 or upstream < 0 or downstream < 0:
        raise ValueError("negative partition or offset")
    return Checkpoint(group, topic, partition, upstream, downstream, timestamp_ms)


def latest_checkpoints(records: list[Checkpoint]) -> dict[tuple[str, str, int], Checkpoint]:
    """The newest checkpoint per (group, topic, partition), as the compacted topic keeps it."""
    out: dict[tuple[str, str, int], Checkpoint] = {}
    for c in records:
        out[(c.group, c.topic, c.partition)] = c
    return out


# -- replication lag -------------------------------------------------------------------


@dataclass(frozen=True)
class TopicLag:
    """Replication lag of one mirrored topic."""

    topic: str
    on_standby: bool
    records: int = 0
    seconds: float | None = 0.0
    seconds_kind: str = "exact"
    partitions: int = 0
    standby_partitions: int = 0
    level: str = OK
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["problems"] = list(self.problems)
        if self.seconds is not None:
            d["seconds"] = round(self.seconds, 3)
        return d


def partition_lag(source_end: int, target_end: int) -> int:
    """Records of a partition not yet on the standby (never negative)."""
    return max(0, source_end - target_end)


def judge(lag: MirrorLag, records: int, seconds: float | None) -> str:
    """A topic's level: CRIT or WARN at or above its critical or warning figure."""
    s = seconds or 0.0
    if records >= lag.critical_records or s >= lag.critical_seconds:
        return CRIT
    if records >= lag.warning_records or s >= lag.warning_seconds:
        return WARN
    return OK


def topic_lag(
    topic: str,
    lag: MirrorLag,
    source_ends: dict[int, int] | None,
    target_ends: dict[int, int] | None,
    seconds: float | None,
    seconds_kind: str = "exact",
    config_problems: tuple[str, ...] = (),
) -> TopicLag:
    """One topic's lag and level from both sides' end offsets (partition -> end)."""
    if source_ends is None:
        return TopicLag(topic, False, level=CRIT, problems=("missing on the source cluster",))
    if target_ends is None:
        return TopicLag(
            topic,
            False,
            records=sum(source_ends.values()),
            seconds=None,
            seconds_kind="unknown",
            partitions=len(source_ends),
            level=CRIT,
            problems=("missing on the standby: MirrorMaker has not created it (is it running?)",),
        )
    problems = list(config_problems)
    if len(target_ends) < len(source_ends):
        problems.append(
            f"the standby has {len(target_ends)} partition(s), the source {len(source_ends)}"
        )
    records = sum(partition_lag(e, target_ends.get(p, 0)) for p, e in source_ends.items())
    level = judge(lag, records, seconds)
    if problems and level == OK:
        level = WARN
    return TopicLag(
        topic,
        True,
        records,
        0.0 if records == 0 else seconds,
        "exact" if records == 0 else seconds_kind,
        len(source_ends),
        len(target_ends),
        level,
        tuple(problems),
    )


def overall(lags: list[TopicLag]) -> str:
    return max((t.level for t in lags), key=incidents.rank, default=OK)


# -- the replication incident -------------------------------------------------------------

STATE_VERSION = 1
RULES = IncidentRules(remind_warning_s=4 * 3600.0, remind_critical_s=30 * 60.0, resolve_after=2)


@dataclass(frozen=True)
class MirrorFacts:
    """What one check of the flow found."""

    flow: str  # prod->dr
    level: str
    lagging: tuple[str, ...] = ()  # topics at WARN or CRIT
    lines: tuple[str, ...] = ()  # one line per topic not OK, for the alert

    def bounded(self) -> "MirrorFacts":
        return MirrorFacts(
            self.flow[:80],
            self.level,
            tuple(t[:250] for t in self.lagging[:20]),
            tuple(x[:300] for x in self.lines[:20]),
        )


@dataclass(frozen=True)
class MirrorEvent:
    kind: str
    incident_id: str
    at: float
    since: float
    level: str
    facts: MirrorFacts
    number: int = 0

    @property
    def event_name(self) -> str:
        return incidents.event_name(self.kind, self.number)

    @property
    def run_key(self) -> str:
        return incidents.run_key(self.incident_id, self.event_name)


@dataclass(frozen=True)
class MirrorDecision:
    state: dict
    events: tuple[MirrorEvent, ...] = ()
    notes: tuple[str, ...] = field(default=())


def read_state(raw) -> tuple[Track | None, tuple[str, ...], str | None]:
    """The open incident and the lagging topics it was last told about."""
    if raw is None:
        return None, (), None
    if not isinstance(raw, dict) or raw.get("v") != STATE_VERSION:
        return None, (), "the stored replication state has an unknown shape or version"
    inc = raw.get("incident")
    if inc is None:
        return None, (), None
    try:
        track = Track(
            str(inc["id"]),
            float(inc["opened"]),
            str(inc["level"]),
            str(inc["peak"]),
            float(inc["last"]),
            int(inc.get("reminders") or 0),
            int(inc.get("changes") or 0),
            int(inc.get("clean") or 0),
        )
        if track.level not in incidents.LEVELS or track.peak not in incidents.LEVELS:
            raise ValueError("level")
        lagging = tuple(str(x) for x in raw.get("lagging") or ())
    except (KeyError, TypeError, ValueError) as exc:
        return None, (), f"the open replication incident cannot be read ({type(exc).__name__})"
    return track, lagging, None


def decide(stored, facts: MirrorFacts, now: float) -> MirrorDecision:
    """This check of the flow against the incident earlier checks left open."""
    track, before, why = read_state(stored)
    changed = track is not None and bool(set(facts.lagging) - set(before))
    s = incidents.step(
        track,
        facts.level,
        now,
        RULES,
        new_id=lambda: f"mirror:{facts.flow}:{int(now * 1000)}",
        changed=changed,
    )
    state: dict = {"v": STATE_VERSION, "incident": None, "lagging": list(facts.lagging)}
    if s.track is not None:
        t = s.track
        state["incident"] = {
            "id": t.id,
            "opened": t.opened,
            "level": t.level,
            "peak": t.peak,
            "last": t.last,
            "reminders": t.reminders,
            "changes": t.changes,
            "clean": t.clean,
        }
    events: tuple[MirrorEvent, ...] = ()
    if s.kind is not None and s.subject is not None:
        t = s.subject
        number = (
            t.reminders
            if s.kind == incidents.REMIND
            else t.changes
            if s.kind == incidents.CHANGED
            else 0
        )
        events = (
            MirrorEvent(s.kind, t.id, round(now, 3), t.opened, t.level, facts.bounded(), number),
        )
    return MirrorDecision(state, events, (f"previous state ignored: {why}",) if why else ())


def mirror_alert(event: MirrorEvent, run_url: str | None = None) -> Alert:
    f = event.facts
    took = format_seconds(max(0.0, event.at - event.since))
    if event.kind == incidents.RESOLVE:
        title = f"Replication {f.flow} caught up again after {took}"
    else:
        what = ", ".join(f.lagging[:5]) or "the mirrored topics"
        head = {
            incidents.OPEN: "Replication lag",
            incidents.ESCALATE: "Replication lag worse",
            incidents.CHANGED: "Replication lag on more topics",
            incidents.REMIND: f"Replication lag still ({took}, reminder {event.number})",
        }.get(event.kind, "Replication lag")
        title = f"{head} {f.flow}: {what}"
    lines = list(f.lines) + [f"incident: {event.incident_id} ({event.event_name})"]
    return Alert(
        source="mirror_replication",
        severity=incidents.alert_severity(event.kind, event.level),
        title=title,
        text="\n".join(lines),
        fields={
            "event": event.event_name,
            "incident_id": event.incident_id,
            "flow": f.flow,
            "level": event.level,
            "lagging_topics": list(f.lagging),
        },
        key=event.incident_id,
        run_url=run_url,
    )


def _to_wire(e: MirrorEvent) -> dict:
    d = asdict(e)
    d["facts"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["facts"].items()}
    return d


def _from_wire(d: dict) -> MirrorEvent:
    f = dict(d["facts"])
    facts = MirrorFacts(
        str(f["flow"]),
        str(f["level"]),
        tuple(str(x) for x in f.get("lagging") or ()),
        tuple(str(x) for x in f.get("lines") or ()),
    )
    level = str(d["level"])
    if level not in incidents.LEVELS or facts.level not in incidents.LEVELS:
        raise ValueError("unknown level")
    return MirrorEvent(
        str(d["kind"]),
        str(d["incident_id"]),
        float(d["at"]),
        float(d["since"]),
        level,
        facts,
        int(d.get("number") or 0),
    )


# Listed in the incident model's sources (core/incidents._EVENT_MODULES).
incidents.register(
    incidents.EventType("mirror_replication", MirrorEvent, _to_wire, _from_wire, mirror_alert)
)


# -- failover: translating group offsets ----------------------------------------------------


@dataclass(frozen=True)
class GroupTranslation:
    group: str
    writes: tuple[tuple[str, int, int], ...]  # (topic, partition, offset on the standby)
    source_offsets: dict[tuple[str, int], int]
    problems: tuple[str, ...] = ()


def translate_group(
    group: str,
    checkpoints: dict[tuple[str, str, int], Checkpoint],
    source_offsets: dict[tuple[str, int], int],
    mirrored: set[str],
    target_partitions: dict[str, int],
) -> GroupTranslation:
    """The standby offsets of `group` from MirrorMaker's checkpoints: for each mirrored
    partition the group committed on the source, the checkpoint's downstream offset. A
    partition without a checkpoint is a problem (the group cannot resume there exactly);
    so is a checkpoint older than the group's committed offset (reported, the checkpoint
    still used: the consumer re-reads at most what it committed since)."""
    writes: list[tuple[str, int, int]] = []
    problems: list[str] = []
    committed = {tp: o for tp, o in source_offsets.items() if tp[0] in mirrored}
    for (topic, partition), offset in sorted(committed.items()):
        c = checkpoints.get((group, topic, partition))
        if c is None:
            problems.append(
                f"{topic}[{partition}]: no checkpoint yet (committed {offset} on the source)"
            )
            continue
        if partition >= target_partitions.get(topic, 0):
            problems.append(f"{topic}[{partition}]: not on the standby")
            continue
        writes.append((topic, partition, c.downstream))
    for (g, topic, partition), c in sorted(checkpoints.items()):
        if g == group and (topic, partition) not in committed and topic in mirrored:
            if partition < target_partitions.get(topic, 0):
                writes.append((topic, partition, c.downstream))
    return GroupTranslation(group, tuple(sorted(set(writes))), committed, tuple(problems))
