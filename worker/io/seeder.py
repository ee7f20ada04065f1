"""The seeder: replays article files onto `articles.raw` with an idempotent producer."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from worker.config import Settings
from worker.io.sources import ReadReport, read_articles
from worker.pipeline import utc_now_iso


@dataclass
class SeedSummary:
    topic: str
    sent: int = 0
    files: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def render(self) -> str:
        rate = self.sent / self.seconds if self.seconds else 0.0
        verb = "would send" if self.dry_run else "sent"
        lines = [f"{verb} {self.sent} articles from {self.files} files to {self.topic} "
                 f"in {self.seconds:.2f}s ({rate:.0f}/s); {len(self.errors)} problems"]
        lines += [f"  problem: {e}" for e in self.errors]
        return "\n".join(lines)


async def run_seeder(paths: list[Path], settings: Settings, *, rate: float = 0.0, loops: int = 1,
                     new_ids: bool = False, dry_run: bool = False, topic: str | None = None,
                     progress: bool = True) -> SeedSummary:
    topic_name = topic or settings.topics().raw.name
    summary = SeedSummary(topic=topic_name, dry_run=dry_run)
    producer = None
    if not dry_run:
        producer = AIOKafkaProducer(**settings.kafka_client_options(), acks="all", enable_idempotence=True,
                                    linger_ms=5, max_batch_size=1024 * 1024, max_request_size=4 * 1024 * 1024)
        try:
            await producer.start()
        except Exception:
            await producer.stop()  # release its connections; the caller explains the error
            raise
    started = time.monotonic()
    pending: list[asyncio.Future] = []
    bar = tqdm(unit="article", desc="seeding", disable=not progress, mininterval=0.5)
    try:
        for loop_no in range(loops):
            report = ReadReport()
            # --new-ids: a fresh salt per run (and per loop) → same text, new ids → duplicates.
            salt = uuid.uuid4().hex if new_ids else ""
            for article in read_articles(paths, report, salt):
                article["ingested_at"] = article.get("ingested_at") or utc_now_iso()
                payload = orjson.dumps(article)
                if producer is not None:
                    pending.append(await producer.send(topic_name, payload, key=article["id"].encode()))
                    if len(pending) >= 1000:
                        await asyncio.gather(*pending)
                        pending.clear()
                summary.sent += 1
                summary.ids.append(article["id"])
                bar.update()
                if rate > 0:
                    delay = started + summary.sent / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
            if loop_no == 0:
                summary.files = report.files
                summary.errors.extend(report.errors)
        await asyncio.gather(*pending)
    finally:
        bar.close()
        if producer is not None:
            await producer.stop()
    summary.seconds = time.monotonic() - started
    return summary
