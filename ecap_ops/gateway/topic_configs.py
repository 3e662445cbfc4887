"""DescribeConfigs of many topics, read lean: the gateway's reader of topic configs.

kafka-python's `describe_configs` turns every config entry of every topic into a dict
and its enums into names before filtering them: about 40 entries a topic, so 400,000
dicts for 10,000 topics, four times the cost of decoding the answer itself. Here the
answer's entries are read as they were decoded and only the ones asked for are kept
(the topic-level overrides, or every entry for `all_topic_configs`). Same request, same
answer, same errors (the caller's `KafkaGateway.call` translates them).
"""

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

# The answer's fields this reader takes from each config entry, by Kafka's names.
_ENTRY = attrgetter("name", "value", "config_source", "synonyms")

# Kafka's ConfigSource codes (DescribeConfigs v1+) by the names the core uses.
SOURCE_NAMES = {
    0: "UNKNOWN",
    1: "DYNAMIC_TOPIC_CONFIG",
    2: "DYNAMIC_BROKER_CONFIG",
    3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
    4: "STATIC_BROKER_CONFIG",
    5: "DEFAULT_CONFIG",
    6: "DYNAMIC_BROKER_LOGGER_CONFIG",
    7: "DYNAMIC_CLIENT_METRICS_CONFIG",
    8: "DYNAMIC_GROUP_CONFIG",
}
TOPIC_OVERRIDE_CODE = 1
# Topics per DescribeConfigs request (one request for up to this many).
CHUNK_TOPICS = 1000


def source_name(code: int) -> str:
    return SOURCE_NAMES.get(code, "UNKNOWN")


def describe_topic_configs(
    admin: Any,
    names: Sequence[str],
    include_synonyms: bool,
    keep: Callable[[int], bool],
) -> dict[str, list[tuple[str, str | None, int, list[tuple[str, str | None, int]]]]]:
    """Each topic's config entries whose source code `keep` accepts, as
    (key, value, source code, synonyms as (name, value, source code)), in one
    DescribeConfigs request per `CHUNK_TOPICS` topics, sent together. A topic the broker answered with an error (it does not exist)
    has no entries, as kafka-python's reader gave it."""
    from kafka.admin import ConfigResourceType
    from kafka.protocol.admin.configs import DescribeConfigsRequest

    manager = admin._manager
    # One request per chunk, all sent at once: a single DescribeConfigs of 10,000 topics
    # takes the broker longer than a request timeout meant for a quick answer, while
    # chunks of this size each come back well within it.
    chunks = [names[i : i + CHUNK_TOPICS] for i in range(0, len(names), CHUNK_TOPICS)]
    requests = [
        DescribeConfigsRequest(
            resources=[(ConfigResourceType.TOPIC.value, n, None) for n in chunk],
            include_synonyms=include_synonyms,
            min_version=1,  # config_source exists from v1
        )
        for chunk in chunks
    ]

    async def send() -> list[Any]:
        futures = [manager.send(r) for r in requests]
        return [await f for f in futures]

    responses = manager.run(send)
    out: dict[str, list] = {}
    results = [result for response in responses for result in response.results]
    for result in results:
        entries = []
        for c in result.configs:
            name, value, source, synonyms = _ENTRY(c)
            if not keep(source):
                continue
            found = (
                [(s.name, s.value, s.source) for s in (synonyms or ())] if include_synonyms else []
            )
            entries.append((name, value, source, found))
        out[result.resource_name] = entries
    return out
