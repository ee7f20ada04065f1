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
from worker.kafka.local_broker import PROJECT_ROOT, free_port

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


def start_with_seeds(bootstrap: str, names, tmp_path: Path):
    """Topics, one worker, and seeds/ enriched: (settings, worker, the seeder's summary).
    The caller stops the worker."""
    from worker.io.seeder import run_seeder
    from worker.kafka.admin import create_topics

    settings = settings_for(bootstrap, names)
    asyncio.run(create_topics(settings))
    worker = start_worker(bootstrap, names, tmp_path)
    try:
        seeded = asyncio.run(run_seeder([PROJECT_ROOT / "seeds"], settings, progress=False))
        asyncio.run(consume_until(bootstrap, names.topic(topics.ENRICHED.base_name), 5,
                                  keys={i.encode() for i in seeded.ids}, timeout=90))
    except BaseException:
        worker.stop()
        raise
    return settings, worker, seeded


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


# ---------------------------------------------------------------------------------------------
# Fault tests: articles at a rate, exact id accounting, liveness and stall checks, all bounded.
# ---------------------------------------------------------------------------------------------

import random  # noqa: E402
import re  # noqa: E402
import threading  # noqa: E402
import urllib.error  # noqa: E402
from collections import Counter  # noqa: E402

from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402

_SEEDS = PROJECT_ROOT / "seeds"


def _vocabulary() -> list[str]:
    words = set()
    for path in sorted(_SEEDS.glob("*.txt")):
        words.update(w.lower() for w in re.findall(r"[A-Za-z]{4,}", path.read_text(errors="replace")))
    return sorted(words)


def make_articles(n: int, tag: str, seed: int = 5, words: int = 45) -> list[tuple[bytes, bytes]]:
    """`n` distinct small English articles (random draws from the seeds' vocabulary, so no two
    are near-duplicates of each other): [(key, value)] with key = id = f"{tag}-{i:05d}"."""
    vocab = _vocabulary()
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        article_id = f"{tag}-{i:05d}"
        body = " ".join(rnd.choice(vocab) for _ in range(words)).capitalize() + "."
        out.append((article_id.encode(), orjson.dumps({"id": article_id, "title": f"Article {i}", "body": body,
                                                       "source": "fault-test.example"})))
    return out


class BackgroundProducer(threading.Thread):
    """Produce messages at `rate` per second from a thread with its own event loop, so the test
    can kill workers and brokers meanwhile. Records every message's (partition, offset)."""

    def __init__(self, bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes | None]],
                 rate: float, max_request_size: int = 1024 * 1024) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.messages, self.rate = bootstrap, topic, messages, rate
        self.max_request_size = max_request_size
        self.sent = 0  # queued so far
        self.acked: list[tuple[int, int] | None] = [None] * len(messages)
        self.error: BaseException | None = None
        self.started_at = 0.0
        self.finished_at = 0.0

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # noqa: BLE001 - reported by join_ok()
            self.error = exc

    async def _run(self) -> None:
        # A long delivery timeout: a broker restart mid-stream must delay sends, not fail them.
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                                    linger_ms=5, request_timeout_ms=120_000,
                                    max_request_size=self.max_request_size)
        await producer.start()
        try:
            self.started_at = time.monotonic()
            futures = []
            for i, (key, value) in enumerate(self.messages):
                due = self.started_at + i / self.rate if self.rate else 0
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                futures.append(await producer.send(self.topic, value, key=key))
                self.sent = i + 1
            for i, metadata in enumerate(await asyncio.gather(*futures)):
                self.acked[i] = (metadata.partition, metadata.offset)
            self.finished_at = time.monotonic()
        finally:
            await producer.stop()

    def join_ok(self, timeout: float) -> None:
        self.join(timeout)
        assert not self.is_alive(), f"producer still running after {timeout}s ({self.sent} sent)"
        assert self.error is None, f"producer failed: {self.error!r}"


def produce_with_offsets(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes | None]],
                         max_request_size: int = 4 * 1024 * 1024) -> list[tuple[int, int]]:
    """Produce all messages now; return each one's (partition, offset)."""
    producer = BackgroundProducer(bootstrap, topic, messages, rate=0, max_request_size=max_request_size)
    producer.start()
    producer.join_ok(120)
    return [a for a in producer.acked if a is not None]


@dataclass
class Tally:
    """Every message read from the output topics, accounted for against the input ids."""

    enriched: Counter = field(default_factory=Counter)  # article id -> copies on articles.enriched
    dlq: Counter = field(default_factory=Counter)  # original key -> copies on articles.dlq
    dlq_sources: list[tuple[int, int]] = field(default_factory=list)  # (partition, offset) per letter
    dlq_letters: list[dict] = field(default_factory=list)
    enriched_messages: dict[str, list[dict]] = field(default_factory=dict)

    def missing(self, ids: set[str]) -> set[str]:
        return {i for i in ids if not self.enriched[i] and not self.dlq[i]}

    def duplicated(self, ids: set[str]) -> dict[str, int]:
        return {i: self.enriched[i] + self.dlq[i] for i in ids if self.enriched[i] + self.dlq[i] > 1}

    def figures(self, ids: set[str]) -> dict[str, int]:
        return {"sent": len(ids), "enriched": sum(1 for i in ids if self.enriched[i]),
                "dead_lettered": sum(1 for i in ids if self.dlq[i] and not self.enriched[i]),
                "missing": len(self.missing(ids)), "duplicated": len(self.duplicated(ids)),
                "extra_copies": sum(n - 1 for n in self.duplicated(ids).values())}


async def _topic_reader(bootstrap: str, topics_: list[str]) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                isolation_level="read_committed", max_partition_fetch_bytes=8 * 1024 * 1024,
                                fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    await consumer._client.force_metadata_update()
    tps = [TopicPartition(t, p) for t in topics_ for p in sorted(consumer.partitions_for_topic(t) or ())]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return consumer, tps


def account(bootstrap: str, names, ids: set[str], timeout: float = 120.0, keep_enriched: bool = False,
            require_all: bool = True) -> Tally:
    """Read articles.enriched and articles.dlq (read_committed) until every id in `ids` was seen
    on one of them, then on to the end of both topics so copies are counted exactly.
    Never waits more than `timeout`; the caller asserts on what is missing."""

    async def run() -> Tally:
        enriched_t, dlq_t = names.topic("articles.enriched"), names.topic("articles.dlq")
        consumer, tps = await _topic_reader(bootstrap, [enriched_t, dlq_t])
        tally = Tally()
        try:
            deadline = time.monotonic() + timeout
            waiting = set(ids)
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=300, max_records=5000)
                for tp, records in batch.items():
                    for r in records:
                        if tp.topic == enriched_t:
                            article_id = r.key.decode() if r.key is not None else ""
                            tally.enriched[article_id] += 1
                            if keep_enriched:
                                tally.enriched_messages.setdefault(article_id, []).append(orjson.loads(r.value))
                        else:
                            letter = orjson.loads(r.value)
                            original = letter["original_key"]
                            key = original["data"] if original and original["encoding"] == "utf-8" else None
                            tally.dlq[key or f"<letter {r.offset}>"] += 1
                            tally.dlq_sources.append((letter["source"]["partition"], letter["source"]["offset"]))
                            tally.dlq_letters.append(letter)
                        waiting.discard(article_id if tp.topic == enriched_t else key)
                if not waiting or not require_all:
                    ends = await consumer.end_offsets(tps)
                    positions = {tp: await consumer.position(tp) for tp in tps}
                    if all(positions[tp] >= ends[tp] for tp in tps):
                        break
            return tally
        finally:
            await consumer.stop()

    return asyncio.run(run())


def wait_for(condition, timeout: float, interval: float = 0.25, what: str = "condition"):
    """Poll `condition()` until truthy or `timeout`; return its value (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def probe(port: int, path: str = "/health/live", timeout: float = 2.0) -> tuple[int | None, dict | None]:
    """GET a worker endpoint with a timeout: (status, json) or (None, None) if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, orjson.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"null")
    except (OSError, ValueError):
        return None, None


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    async def run():
        consumer, tps = await _topic_reader(bootstrap, [topic])
        try:
            return {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
        finally:
            await consumer.stop()

    return asyncio.run(run())


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    async def run():
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(group)
        finally:
            await admin.close()
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}

    return asyncio.run(run())


class StallWatch:
    """An external stalled-partition detector: a partition whose input has a backlog (end offset >
    the group's committed offset) while the committed offset does not move for `after` seconds.
    It needs nothing from the worker, so it also catches a worker that is frozen or silently
    stopped consuming a partition (faust-streaming#175/#640/#532)."""

    def __init__(self, bootstrap: str, group: str, topic: str, after: float) -> None:
        self.bootstrap, self.group, self.topic, self.after = bootstrap, group, topic, after
        self.last: dict[int, tuple[int, float]] = {}

    def check(self) -> dict[int, dict]:
        now = time.monotonic()
        ends = end_offsets(self.bootstrap, self.topic)
        committed = committed_offsets(self.bootstrap, self.group, self.topic)
        stalled = {}
        for partition, end in ends.items():
            offset = committed.get(partition, 0)
            seen_offset, since = self.last.get(partition, (None, now))
            if seen_offset != offset:
                self.last[partition] = (offset, now)
                since = now
            if end > offset and now - since >= self.after:
                stalled[partition] = {"lag": end - offset, "stuck_for_s": round(now - since, 1)}
        return stalled


def kill_and_restart(worker: WorkerProcess, sig: int = signal.SIGKILL) -> WorkerProcess:
    worker.stop(sig, timeout=30)
    return worker.start()
