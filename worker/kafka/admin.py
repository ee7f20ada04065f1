"""Topic administration: create every topic of `topics/` (idempotently), with the replication the
cluster allows, and hold the live topics to `topics/` (`check_topics`, `topics.validation`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from topics import Topic, faust_topics
from topics.validation import FixCommands, LiveTopic, Mismatch, Replication, resolve_replication, validate
from worker.config import Settings


class TopicCreationError(RuntimeError):
    """The broker refused to create a topic (any error other than "topic already exists")."""

    def __init__(self, topic: str, code: int, message: str | None) -> None:
        self.topic, self.code = topic, code
        name = for_code(code).__name__
        super().__init__(f"could not create topic {topic!r}: {name} (error code {code})"
                         + (f": {message}" if message else ""))


def _creation_outcome(response, name: str) -> str:
    """Read one topic's result out of a CreateTopics response. aiokafka does not raise for
    per-topic errors: it returns them in `topic_errors` as (topic, error_code[, error_message]).
    0 -> "created"; 36 (TOPIC_ALREADY_EXISTS: created meanwhile, or `list_topics` was stale)
    -> "exists"; anything else raises TopicCreationError."""
    entries = [tuple(e) for e in getattr(response, "topic_errors", None) or ()]
    mine = [e for e in entries if e[0] == name]
    if not mine:
        raise TopicCreationError(name, -1, f"no result for this topic in the broker's response {entries!r}")
    _, code, *rest = mine[0]
    message = rest[0] if rest else None
    if code == 0:
        return "created"
    if code == TopicAlreadyExistsError.errno:
        return "exists"
    raise TopicCreationError(name, code, message)


async def _wait_visible(admin: AIOKafkaAdminClient, names: list[str], timeout: float = 15.0) -> None:
    """Wait (bounded) until the broker's metadata lists the topics just created. The controller
    answers CreateTopics before every broker's metadata cache has them, and a worker started at
    once, or `topics check`, would otherwise find them "missing"."""
    deadline = asyncio.get_running_loop().time() + timeout
    while names:
        listed = set(await admin.list_topics())
        names = [n for n in names if n not in listed]
        if not names or asyncio.get_running_loop().time() >= deadline:
            return
        await asyncio.sleep(0.1)


async def broker_ids(admin: AIOKafkaAdminClient) -> list[int]:
    """The ids of the brokers the cluster metadata lists (the live ones)."""
    cluster = await admin.describe_cluster()
    return sorted(b["node_id"] for b in cluster["brokers"])


async def create_topics(settings: Settings, replication: int | None = None) -> dict[str, str]:
    """Create missing topics; returns {name: "created" | "exists"}. Raises TopicCreationError,
    naming the topic and the broker's error, when one cannot be created.

    Each gets its spec's partitions and configs, the replication factor (`replication`, else
    REPLICATION_FACTOR, else from the broker count) and min.insync.replicas."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        factor = replication if replication is not None else settings.replication_factor
        placement = resolve_replication(len(await broker_ids(admin)), factor, settings.min_insync_replicas)
        existing = set(await admin.list_topics())
        result: dict[str, str] = {}
        for topic in settings.topics():
            name = topic.name
            if name in existing:
                result[name] = "exists"
                continue
            configs = {**placement.topic_config(), **topic.spec.config}
            try:
                response = await admin.create_topics([NewTopic(name, topic.partitions, placement.factor,
                                                               topic_configs=configs)])
            except TopicAlreadyExistsError:  # in case a client version raises it after all
                result[name] = "exists"
                continue
            result[name] = _creation_outcome(response, name)
        await _wait_visible(admin, [n for n, state in result.items() if state == "created"])
        return result
    finally:
        await admin.close()


async def missing_topics(settings: Settings) -> list[str]:
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    return [name for name in settings.topics().names() if name not in existing]


def create_topics_sync(settings: Settings) -> dict[str, str]:
    return asyncio.run(create_topics(settings))


async def describe_topics(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, LiveTopic]:
    """The named topics that exist: replica ids per partition and every topic config."""
    existing = set(await admin.list_topics())
    names = [n for n in names if n in existing]
    if not names:
        return {}
    replicas: dict[str, dict[int, list[int]]] = {}
    for meta in await admin.describe_topics(names):
        if meta["error_code"] == 0:
            replicas[meta["topic"]] = {p["partition"]: list(p["replicas"]) for p in meta["partitions"]}
    configs: dict[str, dict[str, str]] = {}
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in replicas])
    for response in responses:
        for resource in response.resources:  # (error code, message, type, name, [(key, value, ...)])
            configs[resource[3]] = {entry[0]: entry[1] for entry in resource[4]}
    return {name: LiveTopic(name, parts, configs.get(name, {})) for name, parts in replicas.items()}


@dataclass
class TopicCheck:
    """The live topics against topics/: every mismatch, and what is not there yet."""

    bootstrap_servers: str
    brokers: list[int]
    replication: Replication
    live: dict[str, LiveTopic]
    mismatches: list[Mismatch]
    expected: list[Topic] = field(default_factory=list)

    @property
    def fatal(self) -> list[Mismatch]:
        return [m for m in self.mismatches if m.fatal]

    def not_created_yet(self) -> list[Topic]:
        """faust's topics the worker has not created yet (not a mismatch)."""
        return [t for t in self.expected if t.name not in self.live]


def fix_commands(settings: Settings) -> FixCommands:
    secure = settings.security_protocol != "PLAINTEXT"
    return FixCommands(settings.kafka_bootstrap_servers, "client.properties" if secure else "")


async def check_topics(settings: Settings) -> TopicCheck:
    """Compare the deployment's topics (and faust's, once they exist) with topics/."""
    expected = [*settings.topics(), *faust_topics(settings.app_id)]
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        brokers = await broker_ids(admin)
        replication = resolve_replication(len(brokers), settings.replication_factor, settings.min_insync_replicas)
        live = await describe_topics(admin, [t.name for t in expected])
    finally:
        await admin.close()
    mismatches = validate(expected, live, replication, brokers, fix_commands(settings))
    return TopicCheck(settings.kafka_bootstrap_servers, brokers, replication, live, mismatches, expected)
