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


def test_seed_archives_and_stdin(kafka, names, tmp_path):
    """`ingest seed` over archives and `-`: the same field mapping and ids as the worker, every
    bad record printed with its file and position, keys = the derived ids."""
    import asyncio
    import gzip

    import orjson

    from worker.stages.ids import derive_id

    env, _ = worker_env(kafka.bootstrap_servers, names, tmp_path)
    assert subprocess.run([sys.executable, "-m", "worker.cli", "topics", "create"], cwd=ROOT, env=env,
                          capture_output=True, timeout=60).returncode == 0
    body = "The city council approved a new budget for public libraries on Monday evening."
    records = [{"maintext": body, "url": "https://a.example/1", "title": "One"}, {"text": body + " Two."}]
    archive = tmp_path / "in" / "crawl.jsonl.gz"
    archive.parent.mkdir()
    archive.write_bytes(gzip.compress(b"\n".join(orjson.dumps(r) for r in records) + b"\n{broken\n"))
    (tmp_path / "in" / "export.csv").write_text(f'headline,description\nCSV one,"{body}\nsecond line"\nno body,\n')

    dry = seed(env, "--dry-run", str(tmp_path / "in"))
    assert dry.returncode == 0, dry.stderr
    assert "would send 3 articles from 2 files" in dry.stderr and "2 problems (listed above)" in dry.stderr
    assert f"problem: {archive}:3: invalid JSON" in dry.stderr
    assert f"problem: {tmp_path / 'in' / 'export.csv'}:4 (record 2): wrong_type" in dry.stderr

    piped = subprocess.run([sys.executable, "-m", "worker.cli", "seed", "-"], cwd=ROOT, env=env,
                           input=archive.read_bytes(), capture_output=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert b"sent 2 articles from 1 files" in piped.stderr and b"<stdin>:3: invalid JSON" in piped.stderr
    messages = asyncio.run(consume_until(kafka.bootstrap_servers, names.topic("articles.raw"), 2, timeout=30))
    expected = {derive_id("https://a.example/1", "", "", "")[0], derive_id("", "", "", body + " Two.")[0]}
    assert {k.decode() for k, _ in messages} == expected
    assert {orjson.loads(v)["id_source"] for _, v in messages} == {"url", "content"}
