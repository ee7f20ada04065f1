"""Topics are created with their declared partitions and configs, idempotently; the worker
refuses to start without them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

import topics
from worker.kafka.admin import TopicCreationError, create_topics, missing_topics

from .helpers import settings_for, worker_env

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


async def describe(bootstrap: str, names: list[str]) -> tuple[dict, dict]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        meta = await admin.describe_topics(names)
        partitions = {t["topic"]: len(t["partitions"]) for t in meta}
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
        configs: dict[str, dict[str, str]] = {}
        for response in responses:
            for resource in response.resources:
                configs[resource[3]] = {entry[0]: entry[1] for entry in resource[4]}
        return partitions, configs
    finally:
        await admin.close()


def test_create_is_idempotent_and_applies_declared_configs(kafka, names):
    settings = settings_for(kafka.bootstrap_servers, names, input_partitions=4, output_partitions=3)
    assert asyncio.run(missing_topics(settings)) == [names.topic(s.base_name) for s in topics.ALL_TOPICS]
    first = asyncio.run(create_topics(settings))
    assert set(first.values()) == {"created"}
    again = asyncio.run(create_topics(settings))
    assert set(again.values()) == {"exists"}
    assert asyncio.run(missing_topics(settings)) == []

    all_names = [names.topic(s.base_name) for s in topics.ALL_TOPICS]
    partitions, configs = asyncio.run(describe(kafka.bootstrap_servers, all_names))
    assert partitions[names.topic("articles.raw")] == 4
    assert partitions[names.topic("articles.dedup-requests")] == 1
    assert partitions[names.topic("articles.enriched")] == 3
    assert partitions[names.topic("articles.dlq")] == 1
    for spec in topics.ALL_TOPICS:
        actual = configs[names.topic(spec.base_name)]
        for key, value in spec.config.items():
            assert actual[key] == value, f"{spec.base_name}.{key}"
    assert configs[names.topic("articles.enriched")]["cleanup.policy"] == "compact"


def test_create_reads_per_topic_errors_from_the_response(kafka, names, monkeypatch):
    """aiokafka's create_topics does not raise for per-topic errors; they come back in the
    response. Error 36 (already exists) means "exists", whatever a stale list_topics said;
    any other error is raised, naming the topic."""
    settings = settings_for(kafka.bootstrap_servers, names)
    all_names = [names.topic(s.base_name) for s in topics.ALL_TOPICS]

    # Any error other than "already exists": a replication factor the one broker cannot have
    # (INVALID_REPLICATION_FACTOR, 38) must not be reported as "created".
    with pytest.raises(TopicCreationError) as failure:
        asyncio.run(create_topics(settings, replication=3))
    assert failure.value.topic == all_names[0] and failure.value.code == 38
    assert repr(all_names[0]) in str(failure.value) and "InvalidReplicationFactor" in str(failure.value)
    assert asyncio.run(missing_topics(settings)) == all_names  # nothing was created

    assert set(asyncio.run(create_topics(settings)).values()) == {"created"}

    # A stale list_topics (it does not show the topics yet): the broker answers 36 for each,
    # and that is "exists", not "created".
    async def stale_list_topics(self):
        return []

    monkeypatch.setattr(AIOKafkaAdminClient, "list_topics", stale_list_topics)
    again = asyncio.run(create_topics(settings))
    assert again == {name: "exists" for name in all_names}


def test_worker_refuses_to_start_without_topics(kafka, names, tmp_path):
    env, _ = worker_env(kafka.bootstrap_servers, names, tmp_path)
    result = subprocess.run([sys.executable, "-m", "faust", "-A", "worker.app", "worker"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "missing topics" in result.stdout + result.stderr
    assert "ingest topics create" in result.stdout + result.stderr
