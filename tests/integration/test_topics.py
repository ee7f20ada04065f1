"""Topics are created with their declared partitions and configs, idempotently; `ingest topics
check` holds the live topics to topics/ and prints fixes that work; the worker refuses to start
without them, or with a funnel of more than one partition, or an output that is not compacted."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

import topics
from topics.validation import default_min_insync, resolve_replication
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


async def broker_count(bootstrap: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return len((await admin.describe_cluster())["brokers"])
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
    brokers = asyncio.run(broker_count(kafka.bootstrap_servers))
    for spec in topics.ALL_TOPICS:
        actual = configs[names.topic(spec.base_name)]
        for key, value in spec.config.items():
            assert actual[key] == value, f"{spec.base_name}.{key}"
        assert actual["min.insync.replicas"] == str(default_min_insync(min(3, brokers)))
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
    out = result.stdout + result.stderr
    assert f"topic {names.topic('articles.enriched')} is missing. Fix: ingest topics create" in out
    assert "refusing to start" in out


async def create_wrong(bootstrap: str, name: str, partitions: int, spec: topics.TopicSpec, **configs: str) -> None:
    """Create one topic by hand, as declared but for `partitions` and `configs`, before `ingest
    topics create` (which then leaves it as it is)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        replication = resolve_replication(len((await admin.describe_cluster())["brokers"]))
        await admin.create_topics([NewTopic(name, partitions, replication.factor,
                                            topic_configs={**replication.topic_config(), **spec.config,
                                                           **configs})])
    finally:
        await admin.close()


@pytest.mark.parametrize("wrong", ["funnel-with-4-partitions", "enriched-not-compacted"])
def test_worker_refuses_to_start_on_topics_that_would_make_it_wrong(kafka, names, tmp_path, wrong):
    """A pre-created articles.dedup-requests with 4 partitions (dedup is correct only with the
    one-partition funnel), or an articles.enriched that deletes instead of compacting: the worker
    exits at start, before its first event, printing the fix `ingest topics check` prints."""
    if wrong == "funnel-with-4-partitions":
        name, spec, partitions, configs = names.topic("articles.dedup-requests"), topics.DEDUP_REQUESTS, 4, {}
        expect = (f"topic {name}: partitions is 4, expected 1 (it is the dedup funnel",
                  f"Fix: stop every worker, then kafka-topics.sh --bootstrap-server {kafka.bootstrap_servers} "
                  f"--delete --topic {name} && ingest topics create")
    else:
        name, spec, partitions, configs = names.topic("articles.enriched"), topics.ENRICHED, 4, \
            {"cleanup.policy": "delete"}
        expect = (f"topic {name}: cleanup.policy is delete, expected compact",
                  f"Fix: kafka-configs.sh --bootstrap-server {kafka.bootstrap_servers} --alter --entity-type topics "
                  f"--entity-name {name} --add-config cleanup.policy=compact")
    asyncio.run(create_wrong(kafka.bootstrap_servers, name, partitions, spec, **configs))
    settings = settings_for(kafka.bootstrap_servers, names)
    assert asyncio.run(create_topics(settings))[name] == "exists"
    env, _ = worker_env(kafka.bootstrap_servers, names, tmp_path)
    result = subprocess.run([sys.executable, "-m", "faust", "-A", "worker.app", "worker", "-l", "info"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    for text in expect:
        assert text in out, out[-3000:]
    assert "refusing to start" in out and "Worker ready" not in out

    check = subprocess.run([sys.executable, "-m", "worker.cli", "topics", "check"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 1 and f"FATAL {expect[0]}" in check.stderr and expect[1] in check.stderr


def test_topics_check_prints_the_fixes_and_they_work(kafka, names, tmp_path):
    """Live topics that differ from topics/ (a retention, a cleanup policy): `ingest topics check`
    exits 1 printing one command per mismatch; run as printed (Kafka's scripts, here from the
    pinned jars through `ingest kafka tool`), they make the check pass."""
    raw, enriched = names.topic("articles.raw"), names.topic("articles.enriched")
    asyncio.run(create_wrong(kafka.bootstrap_servers, raw, 4, topics.RAW, **{"retention.ms": "3600000"}))
    asyncio.run(create_wrong(kafka.bootstrap_servers, enriched, 4, topics.ENRICHED, **{"cleanup.policy": "delete"}))
    settings = settings_for(kafka.bootstrap_servers, names)
    asyncio.run(create_topics(settings))
    env, _ = worker_env(kafka.bootstrap_servers, names, tmp_path)
    shims = tmp_path / "bin"  # kafka-configs.sh & co. as a Kafka distribution has them on the PATH
    shims.mkdir()
    for script in ("kafka-configs.sh", "kafka-topics.sh", "kafka-reassign-partitions.sh"):
        (shims / script).write_text(f'#!/bin/sh\nexec {sys.executable} -m worker.cli kafka tool {script} "$@"\n')
        (shims / script).chmod(0o755)
    env["PATH"] = f"{shims}{os.pathsep}{env.get('PATH', '')}"

    def check() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "worker.cli", "topics", "check"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    first = check()
    assert first.returncode == 1, first.stdout + first.stderr
    lines = [line for line in first.stderr.splitlines() if line.startswith(("FATAL ", "MISMATCH "))]
    assert [line.split(":", 2)[1].split(" is ")[0].strip() for line in lines] == ["retention.ms", "cleanup.policy"]
    assert lines[1].startswith(f"FATAL topic {enriched}: cleanup.policy is delete, expected compact")
    assert "the worker refuses to start on 1 of them" in first.stderr
    for line in lines:
        fix = line.split(". Fix: ", 1)[1].split(" [", 1)[0]
        ran = subprocess.run(["sh", "-c", fix], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, (fix, ran.stdout, ran.stderr)
    again = check()
    assert again.returncode == 0 and "all topics match topics/" in again.stdout, again.stdout + again.stderr
