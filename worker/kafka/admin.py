"""Topic administration: create every topic of `topics/` (idempotently) and check they exist."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

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


async def create_topics(settings: Settings, replication: int = 1) -> dict[str, str]:
    """Create missing topics; returns {name: "created" | "exists"}. Raises TopicCreationError,
    naming the topic and the broker's error, when one cannot be created."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        result: dict[str, str] = {}
        for topic in settings.topics():
            name = topic.name
            if name in existing:
                result[name] = "exists"
                continue
            try:
                response = await admin.create_topics([NewTopic(name, topic.partitions, replication,
                                                               topic_configs=topic.spec.config)])
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
