"""The enriched topic's contract holds for another client: the confluent-kafka example reads it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import topics
from worker.io.seeder import run_seeder
from worker.kafka.admin import create_topics

from .helpers import consume_until, settings_for, start_worker

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_confluent_kafka_example_consumer_reads_enriched(kafka, names, tmp_path):
    settings = settings_for(kafka.bootstrap_servers, names)
    asyncio.run(create_topics(settings))
    worker = start_worker(kafka.bootstrap_servers, names, tmp_path)
    try:
        seeded = asyncio.run(run_seeder([ROOT / "seeds"], settings, progress=False))
        asyncio.run(consume_until(kafka.bootstrap_servers, names.topic(topics.ENRICHED.base_name), 5,
                                  keys={i.encode() for i in seeded.ids}, timeout=90))
    finally:
        worker.stop()
    result = subprocess.run([sys.executable, str(ROOT / "examples/confluent_consumer.py"), "--bootstrap",
                             kafka.bootstrap_servers, "--topic", names.topic("articles.enriched")],
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert sorted(r[0] for r in rows) == sorted(seeded.ids)
    assert {r[1] for r in rows} == {"en"} and {r[2] for r in rows} == {"unique"}
    assert any("Vladimir Putin" in r[3] for r in rows)
