"""The enriched topic's contract holds for another client: the confluent-kafka example reads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import start_with_seeds

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_confluent_kafka_example_consumer_reads_enriched(kafka, names, tmp_path):
    _, worker, seeded = start_with_seeds(kafka.bootstrap_servers, names, tmp_path)
    worker.stop()
    result = subprocess.run([sys.executable, str(ROOT / "examples/confluent_consumer.py"), "--bootstrap",
                             kafka.bootstrap_servers, "--topic", names.topic("articles.enriched")],
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert sorted(r[0] for r in rows) == sorted(seeded.ids)
    assert {r[1] for r in rows} == {"en"} and {r[2] for r in rows} == {"unique"}
    assert any("Vladimir Putin" in r[3] for r in rows)
