"""Helpers for integration tests: real worker processes, real producers and consumers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

import topics
from worker.config import Settings
from worker.localkafka import PROJECT_ROOT, free_port

_REGISTRY = Registry().with_resources(
    (topics.load_schema(p.name)["$id"], Resource.from_contents(topics.load_schema(p.name)))
    for p in topics.SCHEMA_DIR.glob("*.json")
)


def schema_validator(spec: topics.TopicSpec) -> Draft202012Validator:
    return Draft202012Validator(spec.schema(), registry=_REGISTRY)


def assert_valid(spec: topics.TopicSpec, messages: list[dict]) -> None:
    validator = schema_validator(spec)
    for message in messages:
        errors = sorted(validator.iter_errors(message), key=str)
        assert not errors, f"{spec.base_name}: {errors[0].message} in {str(message)[:300]}"


def settings_for(bootstrap: str, names, **overrides) -> Settings:
    return Settings(kafka_bootstrap_servers=bootstrap, topic_prefix=names.prefix, app_id=names.app_id,
                    **overrides)


@dataclass
class WorkerProcess:
    """One real worker process (`faust -A worker.app worker`), stopped with SIGTERM or SIGKILL."""

    env: dict[str, str]
    web_port: int
    log_path: Path
    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "faust", "-A", "worker.app",
                                                        "worker", "-l", "info"])
    proc: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command, cwd=PROJECT_ROOT, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc and self.proc.poll() is None, f"worker exited early:\n{self.log_tail()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/health/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"worker not ready after {timeout}s:\n{self.log_tail()}")

    def scrape_metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int | None:
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def worker_env(bootstrap: str, names, tmp_path: Path, **extra: str) -> tuple[dict[str, str], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "TOPIC_", "APP_ID"))}
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TOPIC_PREFIX": names.prefix, "APP_ID": names.app_id,
        "WEB_PORT": str(port), "DATA_DIR": str(tmp_path / "faust"), "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env, port


def start_worker(bootstrap: str, names, tmp_path: Path, label: str = "w1", **extra: str) -> WorkerProcess:
    env, port = worker_env(bootstrap, names, tmp_path, **extra)
    worker = WorkerProcess(env=env, web_port=port, log_path=tmp_path / f"worker-{label}.log").start()
    worker.wait_ready()
    return worker


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume_until(bootstrap: str, topic: str, expected: int, timeout: float = 60.0,
                        settle: float = 0.0, keys: set[bytes] | None = None) -> list[tuple[bytes | None, bytes | None]]:
    """Read `topic` from the beginning until `expected` messages — or, with `keys`, until every
    one of those keys was seen — then `settle` s more, or until timeout."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                isolation_level="read_committed")
    await consumer.start()
    out: list[tuple[bytes | None, bytes | None]] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        settle_until = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out.extend((r.key, r.value) for r in records)
            done = keys <= {k for k, _ in out} if keys is not None else len(out) >= expected
            if done:
                settle_until = settle_until or time.monotonic() + settle
                if time.monotonic() >= settle_until:
                    break
        return out
    finally:
        await consumer.stop()


def decode(messages: list[tuple[bytes | None, bytes | None]]) -> list[dict]:
    return [orjson.loads(v) for _, v in messages]
