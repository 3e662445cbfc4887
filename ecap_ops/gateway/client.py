"""Layer 3: the only code that talks to Kafka.

`KafkaGateway` reads cluster state into the core's plain data and carries out actions.
Every call is bounded by the settings' timeouts and batched: one request per broker (or
to the controller) for all topics at once, never one per topic. It counts the requests it
sends, by type, so benchmarks can show that they do not grow with the number of topics.
"""

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from ecap_ops.core.state import (
    TOPIC_OVERRIDE_SOURCE,
    BrokerInfo,
    ClusterState,
    ConfigValue,
    PartitionState,
    TopicState,
    is_internal_topic,
    partition_leaders,
)
from ecap_ops.errors import KafkaRequestFailed
from ecap_ops.gateway.errors import broker_error, translate
from ecap_ops.settings import KafkaSettings

log = logging.getLogger(__name__)

_UNIT_MS = {".ms": 1, ".minutes": 60_000, ".hours": 3_600_000}


def _fallback_value(key: str, synonyms: list[dict]) -> str | None:
    """The value a topic override would fall back to, from the broker's synonyms."""
    for syn in synonyms:
        if syn.get("source") == TOPIC_OVERRIDE_SOURCE:
            continue
        value = syn.get("value")
        if value is None:
            continue
        name = syn.get("name", "")
        for suffix, factor in _UNIT_MS.items():
            if key.endswith(".ms") and name.endswith(suffix) and factor != 1:
                try:
                    return str(int(value) * factor)
                except ValueError:
                    return value
        return value
    return None


def _topic_state(name: str, meta: dict) -> TopicState:
    """kafka-python's metadata of one topic as the core's `TopicState` (no configs, no
    offsets): the one place its partition keys are read."""
    partitions = tuple(
        sorted(
            (
                PartitionState(
                    partition=p["partition_index"],
                    leader=p["leader_id"] if p.get("leader_id", -1) >= 0 else None,
                    replicas=tuple(p.get("replica_nodes") or ()),
                    isr=tuple(p.get("isr_nodes") or ()),
                    offline_replicas=tuple(p.get("offline_replicas") or ()),
                )
                for p in meta["partitions"]
            ),
            key=lambda p: p.partition,
        )
    )
    return TopicState(
        name=name,
        partitions=partitions,
        internal=is_internal_topic(name, meta.get("is_internal")),
        topic_id=str(meta.get("topic_id")) if meta.get("topic_id") else None,
    )


# The two kinds of `offsets_by_kind` that make a partition's (start, end) span.
SPAN_KINDS = {"start": "earliest", "end": "latest"}


def spans_of(
    found: dict, partitions: list[tuple[str, int]]
) -> dict[tuple[str, int], tuple[int, int]]:
    """(start, end) offsets of each partition from an `offsets_by_kind` answer that asked
    for SPAN_KINDS (0 where a kind has no answer)."""
    start, end = found["start"], found["end"]
    return {tp: (start.get(tp, (0, None))[0], end.get(tp, (0, None))[0]) for tp in partitions}


# Requests the admin client may have in flight on one connection. A wave of the group
# reader sends, to each coordinator at once, one describe per group type (classic,
# consumer, share, streams), an OffsetFetch and a DescribeShareGroupOffsets: six, one more
# than kafka-python's default of 5, which then refuses the sixth ("Node paused").
ADMIN_MAX_IN_FLIGHT = 32


class KafkaGateway:
    """A connection to one Kafka cluster. Use as a context manager; opens lazily."""

    def __init__(self, settings: KafkaSettings):
        self.settings = settings
        self._admin = None
        self.requests: Counter[str] = Counter()

    # -- connection ------------------------------------------------------------------
    def __enter__(self) -> "KafkaGateway":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:  # closing a half-open client must not hide the real error
                log.debug("closing the admin client failed", exc_info=True)
            self._admin = None

    @property
    def admin(self):
        if self._admin is None:
            from kafka import KafkaAdminClient

            with translate(self.settings, "connecting to Kafka"):
                self._admin = KafkaAdminClient(
                    **self.settings.client_kwargs(),
                    max_in_flight_requests_per_connection=ADMIN_MAX_IN_FLIGHT,
                )
            self._count_requests(self._admin)
        return self._admin

    def _count_requests(self, admin) -> None:
        manager = admin._manager
        original = manager.send
        counter = self.requests

        def counting_send(request, node_id=None, request_timeout_ms=None):
            counter[type(request).__name__.replace("Request", "")] += 1
            return original(request, node_id=node_id, request_timeout_ms=request_timeout_ms)

        manager.send = counting_send

    def call(self, doing: str, fn, *args, **kwargs):
        """Run one admin call with error translation."""
        admin = self.admin
        with translate(self.settings, doing):
            return fn(admin, *args, **kwargs)

    @property
    def request_count(self) -> int:
        return sum(self.requests.values())

    # -- reading -------------------------------------------------------------------
    def describe_cluster(self) -> dict:
        return self.call("describing the cluster", lambda a: a.describe_cluster())

    def brokers(self) -> tuple[str, int | None, tuple[BrokerInfo, ...]]:
        info = self.describe_cluster()
        brokers = tuple(
            sorted(
                (
                    BrokerInfo(b["broker_id"], b["host"], b["port"], b.get("rack"))
                    for b in info["brokers"]
                    if not b.get("is_fenced")
                ),
                key=lambda b: b.node_id,
            )
        )
        controller = info.get("controller_id")
        return (
            info["cluster_id"],
            (controller if controller is not None and controller >= 0 else None),
            brokers,
        )

    def list_topic_names(self, include_internal: bool = False) -> list[str]:
        topics = self.call("listing topics", lambda a: a.describe_topics())
        return sorted(
            t["name"]
            for t in topics
            if include_internal or not is_internal_topic(t["name"], t.get("is_internal"))
        )

    def _describe_topics(self, names: Iterable[str] | None = None) -> dict[str, dict]:
        """kafka-python's metadata of topics (all when `names` is None) in one request;
        missing ones are left out. Gateway-internal: outside the gateway, `topics`."""
        names = None if names is None else sorted(set(names))
        if names == []:
            return {}
        raw = self.call("describing topics", lambda a: a.describe_topics(names))
        out = {}
        for t in raw:
            if t.get("error_code", 0) != 0:
                continue  # UNKNOWN_TOPIC_OR_PARTITION for a topic that does not exist
            out[t["name"]] = t
        return out

    def topics(self, names: Iterable[str] | None = None) -> dict[str, TopicState]:
        """The topics that exist (all when `names` is None) with their partitions, leaders,
        replicas, ISR, id and whether they are internal; one Metadata request. Without
        overrides or offsets (`read_cluster_state` adds those)."""
        return {
            name: _topic_state(name, meta) for name, meta in self._describe_topics(names).items()
        }

    def topic_overrides(
        self, names: Iterable[str]
    ) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
        """Topic-level overrides of each topic, and the values they would fall back to."""
        from ecap_ops.gateway.topic_configs import (
            TOPIC_OVERRIDE_CODE,
            describe_topic_configs,
            source_name,
        )

        names = sorted(set(names))
        if not names:
            return {}
        raw = self.call(
            "reading topic configs",
            lambda a: describe_topic_configs(a, names, True, TOPIC_OVERRIDE_CODE.__eq__),
        )
        out: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
        for name, entries in raw.items():
            overrides, defaults = {}, {}
            for key, value, _source, synonyms in entries:
                overrides[key] = value
                fb = _fallback_value(
                    key, [{"name": n, "value": v, "source": source_name(s)} for n, v, s in synonyms]
                )
                if fb is not None:
                    defaults[key] = fb
            out[name] = (overrides, defaults)
        return out

    def all_topic_configs(self, names: Iterable[str]) -> dict[str, dict[str, ConfigValue]]:
        """Every config of each topic with its source (for describe-topic and audits); one
        DescribeConfigs request whatever the number of topics."""
        from ecap_ops.gateway.topic_configs import describe_topic_configs, source_name

        names = sorted(set(names))
        if not names:
            return {}
        raw = self.call(
            "reading topic configs",
            lambda a: describe_topic_configs(a, names, False, lambda _source: True),
        )
        return {
            n: {key: ConfigValue(value, source_name(source)) for key, value, source, _ in entries}
            for n, entries in raw.items()
        }

    def offsets(
        self,
        partitions: Iterable[tuple[str, int]],
        spec: Any = "latest",
        timeout_ms: int | None = None,
        read_committed: bool = False,
    ) -> dict[tuple[str, int], int]:
        """Offsets of partitions of one kind (`offsets_by_kind`): "latest", "earliest", or a
        timestamp in ms (the first offset at or after it; -1 if none). `read_committed`:
        "latest" is the last stable offset (transactions)."""
        found = self.offsets_by_kind(
            partitions, {"x": spec}, timeout_ms=timeout_ms, read_committed=read_committed
        )["x"]
        return {tp: offset for tp, (offset, _ts) in found.items()}

    def offsets_by_kind(
        self,
        partitions: Iterable[tuple[str, int]],
        kinds: Mapping[str, Any],
        leaders: Mapping[tuple[str, int], int | None] | None = None,
        timeout_ms: int | None = None,
        read_committed: bool = False,
        partial: bool = False,
    ) -> dict[str, dict[tuple[str, int], tuple[int, int | None]]]:
        """The one reader of partition offsets: for each kind (name -> "latest", "earliest",
        a timestamp in ms, or an OffsetSpec), each partition's (offset, timestamp).

        One ListOffsets per partition leader and kind, all in flight at once, routed by
        `leaders` (the caller's own metadata, e.g. `TopicState`'s partitions) or else by one
        Metadata request. A partition whose leader could not answer it (moved, not elected
        yet) is asked again through kafka-python's reader, which refreshes the metadata and
        retries within the timeout and raises what it cannot resolve; with `partial`, such
        partitions are left out of the answer instead (the caller treats them as unknown)."""
        from kafka import IsolationLevel, TopicPartition
        from kafka.admin import OffsetSpec

        tps = sorted(set(partitions))
        if not tps:
            return {kind: {} for kind in kinds}
        named = {"latest": OffsetSpec.LATEST, "earliest": OffsetSpec.EARLIEST}
        specs = {kind: named.get(spec, spec) for kind, spec in kinds.items()}
        isolation = (
            IsolationLevel.READ_COMMITTED if read_committed else IsolationLevel.READ_UNCOMMITTED
        )
        timeout = timeout_ms or self.settings.request_timeout_ms
        doing = f"reading the offsets of {len(tps)} partition(s)"
        if leaders is None:
            leaders = partition_leaders(self.topics({t for t, _ in tps}))
        by_leader: dict[int, list[tuple[str, int]]] = {}
        unrouted: list[tuple[str, int]] = []
        for tp in tps:
            leader = leaders.get(tp)
            if leader is None or leader < 0:
                unrouted.append(tp)
            else:
                by_leader.setdefault(leader, []).append(tp)
        found: dict[str, dict[tuple[str, int], tuple[int, int | None]]] = {k: {} for k in kinds}
        again: dict[str, list[tuple[str, int]]] = {k: list(unrouted) for k in kinds}

        async def send_all(admin) -> None:
            sent = []
            for leader, part in by_leader.items():
                for kind, spec in specs.items():
                    request = admin._list_partition_offsets_request(
                        {TopicPartition(t, p): spec for t, p in part}, isolation.value
                    )
                    sent.append((kind, admin._manager.send(request, node_id=leader)))
            for kind, future in sent:  # a failed request (broker gone) raises, translated
                response = await admin._manager.wait_for(future, timeout)
                for topic in response.topics:
                    for p in topic.partitions:
                        tp = (topic.name, p.partition_index)
                        if p.error_code:
                            again[kind].append(tp)
                        else:
                            ts = getattr(p, "timestamp", None)
                            found[kind][tp] = (p.offset, ts)

        if by_leader:
            self.call(doing, lambda a: a._manager.run(send_all, a))
        for kind, left in again.items():
            if not left:
                continue
            try:
                raw = self.call(
                    doing,
                    lambda a, kind=kind, left=left: a.list_partition_offsets(
                        {TopicPartition(t, p): specs[kind] for t, p in left},
                        isolation_level=isolation,
                        timeout_ms=timeout,
                    ),
                )
            except KafkaRequestFailed:
                if not partial:
                    raise
                continue
            for tp, r in raw.items():
                found[kind][(tp.topic, tp.partition)] = (r.offset, r.timestamp)
        return found

    def offset_ranges(
        self,
        partitions: Iterable[tuple[str, int]],
        leaders: Mapping[tuple[str, int], int | None] | None = None,
        partial: bool = False,
    ) -> dict[tuple[str, int], tuple[int, int]]:
        """(start, end) offsets of each partition (`offsets_by_kind`; with `partial`, those
        whose leader could not answer are left out)."""
        parts = list(partitions)
        found = self.offsets_by_kind(parts, SPAN_KINDS, leaders, partial=partial)
        if partial:  # a partition counts only where both of its offsets were answered
            parts = [tp for tp in parts if all(tp in found[kind] for kind in SPAN_KINDS)]
        return spans_of(found, parts)

    def read_cluster_state(
        self, names: Iterable[str] | None = None, with_data: bool = True
    ) -> ClusterState:
        """Cluster id, live brokers, and the named topics (all topics if None) with their
        partitions, overrides and whether they hold data. A fixed number of requests,
        whatever the number of topics."""
        cluster_id, controller, brokers = self.brokers()
        all_topics = self.topics(None)
        wanted = set(all_topics) if names is None else set(names) & set(all_topics)
        overrides = self.topic_overrides(wanted)
        topics = {}
        for name, topic in all_topics.items():
            ov, defaults = overrides.get(name, ({}, {}))
            topics[name] = replace(topic, overrides=ov, defaults=defaults)
        state = ClusterState(
            cluster_id=cluster_id, controller_id=controller, brokers=brokers, topics=topics
        )
        return self.with_data_presence(state, wanted) if with_data else state

    def with_data_presence(self, state: ClusterState, names: Iterable[str]) -> ClusterState:
        """`state` with whether each of the named topics holds data (`data_presence`);
        nothing read when no name is given."""
        named = {n: state.topics[n] for n in names if n in state.topics}
        if not named:
            return state
        presence = self.data_presence(named)
        topics = dict(state.topics)
        for name, has_data in presence.items():
            topics[name] = replace(topics[name], has_data=has_data)
        return replace(state, topics=topics)

    def data_presence(self, topics: Mapping[str, TopicState]) -> dict[str, bool | None]:
        """Whether each topic holds records (some partition's end offset above its start):
        True, False, or None when a partition without a leader, or whose leader could not
        answer yet (a broker still loading its logs after a restart), could not say and
        none of the others holds any. Two ListOffsets for all of them."""
        parts = [
            (name, p.partition)
            for name, topic in topics.items()
            for p in topic.partitions
            if p.leader is not None
        ]
        ranges = self.offset_ranges(parts, partition_leaders(topics), partial=True) if parts else {}
        presence: dict[str, bool | None] = {}
        for name, topic in topics.items():
            spans = [ranges.get((name, p.partition)) for p in topic.partitions]
            if any(s and s[1] > s[0] for s in spans):
                presence[name] = True
            else:
                presence[name] = False if all(spans) else None
        return presence

    # -- producing and consuming ---------------------------------------------------
    @contextmanager
    def producer(self, doing: str, **options: Any) -> Iterator[Any]:
        """A kafka-python producer with this gateway's settings (address, security, request
        timeout), closed when the block ends; errors in the block are translated as `doing`.
        `options` are producer settings (acks, max_request_size, ...); how long a send may
        block defaults to the request timeout."""
        from kafka import KafkaProducer

        options.setdefault("max_block_ms", self.settings.request_timeout_ms)
        with self._client(KafkaProducer, doing, options, {"timeout": 2}) as producer:
            yield producer

    @contextmanager
    def consumer(self, doing: str, **options: Any) -> Iterator[Any]:
        """A kafka-python consumer with this gateway's settings, closed when the block ends;
        errors in the block are translated as `doing`. No group and no auto-commit unless
        `options` say otherwise: reading must not move anyone's offsets."""
        from kafka import KafkaConsumer

        options.setdefault("group_id", None)
        options.setdefault("enable_auto_commit", False)
        with self._client(KafkaConsumer, doing, options, {"timeout_ms": 2000}) as consumer:
            yield consumer

    @contextmanager
    def _client(
        self, factory: Any, doing: str, options: dict[str, Any], close: dict[str, Any]
    ) -> Iterator[Any]:
        client = None
        with translate(self.settings, doing, options.get("max_block_ms")):
            try:
                client = factory(**{**self.settings.client_kwargs(), **options})
                yield client
            finally:
                if client is not None:
                    try:
                        client.close(**close)
                    except Exception:  # closing must not hide the error that ended the block
                        log.debug("closing a %s failed", factory.__name__, exc_info=True)

    def produce_one(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        *,
        timeout_s: float | None = None,
        max_request_size: int | None = None,
    ) -> tuple[int, int]:
        """Send one record with acks=all and wait until the brokers have it (at most
        `timeout_s`, by default the request timeout). Returns (partition, offset)."""
        timeout_s = timeout_s if timeout_s is not None else self.settings.request_timeout_ms / 1000
        options: dict[str, Any] = {"acks": "all", "max_block_ms": int(timeout_s * 1000)}
        if max_request_size is not None:
            options["max_request_size"] = max_request_size
        with self.producer(f"producing to {topic}", **options) as producer:
            metadata = producer.send(topic, value=value, key=key).get(timeout=timeout_s)
        return metadata.partition, metadata.offset

    # -- changing ------------------------------------------------------------------
    @staticmethod
    def _per_topic_errors(
        response: Any, list_key: str, name_key: str = "name"
    ) -> dict[str, str | None]:
        if hasattr(response, "to_dict"):
            response = response.to_dict()
        out: dict[str, str | None] = {}
        for item in response.get(list_key, []):
            code = item.get("error_code", 0)
            if code == 0:
                out[item[name_key]] = None
            else:
                out[item[name_key]] = broker_error(code, item.get("error_message"))
        return out

    def create_topics(
        self, topics: dict[str, dict], validate_only: bool = False
    ) -> dict[str, str | None]:
        """Create topics in one request. `topics`: name -> {num_partitions, replication_factor, configs}.
        Returns name -> None (done) or the broker's error."""
        if not topics:
            return {}
        resp = self.call(
            "validating new topics" if validate_only else "creating topics",
            lambda a: a.create_topics(
                topics,
                validate_only=validate_only,
                raise_errors=False,
                timeout_ms=self.settings.request_timeout_ms,
            ),
        )
        return self._per_topic_errors(resp, "topics")

    def create_partitions(
        self, totals: dict[str, int], validate_only: bool = False
    ) -> dict[str, str | None]:
        if not totals:
            return {}
        resp = self.call(
            "validating new partitions" if validate_only else "adding partitions",
            lambda a: a.create_partitions(
                totals,
                validate_only=validate_only,
                raise_errors=False,
                timeout_ms=self.settings.request_timeout_ms,
            ),
        )
        return self._per_topic_errors(resp, "results")

    def alter_topic_configs(
        self, changes: dict[str, dict[str, str | None]], validate_only: bool = False
    ) -> dict[str, str | None]:
        """Incrementally set (value) or remove (None) topic-level overrides, all topics in one request."""
        from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType

        if not changes:
            return {}
        resources = [
            ConfigResource(
                ConfigResourceType.TOPIC,
                name,
                {
                    k: ((AlterConfigOp.SET, v) if v is not None else (AlterConfigOp.DELETE, None))
                    for k, v in cfg.items()
                },
            )
            for name, cfg in changes.items()
        ]
        resp = self.call(
            "validating config changes" if validate_only else "altering topic configs",
            lambda a: a.alter_configs(
                resources, validate_only=validate_only, raise_on_unknown=False, incremental=True
            ),
        )
        out: dict[str, str | None] = {}
        for name, result in (resp.get("topic") or {}).items():
            out[name] = None if result == "OK" else str(result)
        for name in changes:
            out.setdefault(name, "no answer from the broker for this topic")
        return out

    def delete_topics(self, names: list[str]) -> dict[str, str | None]:
        if not names:
            return {}
        resp = self.call(
            "deleting topics",
            lambda a: a.delete_topics(
                names, raise_errors=False, timeout_ms=self.settings.request_timeout_ms
            ),
        )
        return self._per_topic_errors(resp, "topics")

    def require(self, result: dict[str, str | None], doing: str) -> None:
        failed = {k: v for k, v in result.items() if v}
        if failed:
            raise KafkaRequestFailed(
                f"{doing} failed: " + "; ".join(f"{k}: {v}" for k, v in sorted(failed.items()))
            )
