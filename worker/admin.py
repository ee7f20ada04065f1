"""Topic administration: create every topic of `topics/` (idempotently) and check they exist."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from topics import ALL_TOPICS, TopicSpec
from worker.config import Settings


def _partitions(spec: TopicSpec, settings: Settings) -> int:
    if spec.partitions == 1:  # single-partition topics are so by design (funnel, DLQ order)
        return 1
    from topics import RAW
    return settings.input_partitions if spec is RAW else settings.output_partitions


async def create_topics(settings: Settings, replication: int = 1) -> dict[str, str]:
    """Create missing topics; returns {name: "created" | "exists"}."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        result: dict[str, str] = {}
        for spec in ALL_TOPICS:
            name = settings.topic(spec.base_name)
            if name in existing:
                result[name] = "exists"
                continue
            try:
                await admin.create_topics([NewTopic(name, _partitions(spec, settings), replication,
                                                    topic_configs=spec.config)])
                result[name] = "created"
            except TopicAlreadyExistsError:
                result[name] = "exists"
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
    return [settings.topic(s.base_name) for s in ALL_TOPICS if settings.topic(s.base_name) not in existing]


def create_topics_sync(settings: Settings) -> dict[str, str]:
    return asyncio.run(create_topics(settings))
