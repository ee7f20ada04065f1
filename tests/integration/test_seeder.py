"""`ingest seed`: stable ids, --loop, --rate, --dry-run, problems reported, idempotent producer."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import consume_until, worker_env

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def seed(env, *args):
    return subprocess.run([sys.executable, "-m", "worker.cli", "seed", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_seed_cli(kafka, names, tmp_path):
    import asyncio

    env, _ = worker_env(kafka.bootstrap_servers, names, tmp_path)
    assert subprocess.run([sys.executable, "-m", "worker.cli", "topics", "create"], cwd=ROOT, env=env,
                          capture_output=True, timeout=60).returncode == 0
    (tmp_path / "bad.jsonl").write_text('{"id": "j1", "body": "fine text"}\n{broken\n')

    dry = seed(env, "--dry-run", str(ROOT / "seeds"), str(tmp_path / "bad.jsonl"))
    assert dry.returncode == 0, dry.stderr
    assert "would send 6 articles from 6 files" in dry.stderr and "1 problems" in dry.stderr
    assert "bad.jsonl:2: invalid JSON" in dry.stderr
    raw = names.topic("articles.raw")
    assert asyncio.run(consume_until(kafka.bootstrap_servers, raw, 1, timeout=3)) == []

    started = time.monotonic()
    paced = seed(env, "--rate", "10", "--loop", "2", str(ROOT / "seeds"))
    elapsed = time.monotonic() - started
    assert paced.returncode == 0, paced.stderr
    assert "sent 10 articles from 5 files" in paced.stderr
    assert elapsed >= 0.9  # 10 articles at 10/s
    messages = asyncio.run(consume_until(kafka.bootstrap_servers, raw, 10, timeout=30))
    keys = [k for k, _ in messages]
    assert len(keys) == 10 and len(set(keys)) == 5  # --loop without --new-ids replays the same ids
