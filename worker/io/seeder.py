"""The seeder: replays article files and archives onto `articles.raw` with an idempotent producer.

What it reads, and how, is worker/io/sources.py. It streams: one record at a time, at most
SEND_WINDOW sends in flight, no list of ids for `ingest seed` (keep_ids=False), the first
problems kept and every one printed as it is found.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from worker.config import Settings
from worker.io.sources import MAX_KEPT_PROBLEMS, ReadReport, input_size, read_records
from worker.pipeline import utc_now_iso

# Sends in flight at most: acks are awaited for the older half when this many are pending, so
# the producer never holds more than this many records (memory stays flat on any input size).
SEND_WINDOW = 8192


@dataclass
class SeedSummary:
    topic: str
    sent: int = 0
    files: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    ids: list[str] = field(default_factory=list)  # every id sent, in order (unless keep_ids=False)
    errors: list[str] = field(default_factory=list)  # the first problems (sources.MAX_KEPT_PROBLEMS)
    problems: int = 0  # every record that could not be read, or was not sent
    skipped: int = 0  # records that are no articles (WARC requests, non-HTML responses)
    listed: bool = False  # the problems were printed as they were found (on_problem)

    def render(self) -> str:
        rate = self.sent / self.seconds if self.seconds else 0.0
        verb = "would send" if self.dry_run else "sent"
        skipped = f"; {self.skipped} records skipped (no HTML page)" if self.skipped else ""
        listed = " (listed above)" if self.listed and self.problems else ""
        lines = [f"{verb} {self.sent} articles from {self.files} files to {self.topic} "
                 f"in {self.seconds:.2f}s ({rate:.0f}/s); {self.problems} problems{listed}{skipped}"]
        if not self.listed:
            lines += [f"  problem: {e}" for e in self.errors]
            if self.problems > len(self.errors):
                lines.append(f"  ... and {self.problems - len(self.errors)} more")
        return "\n".join(lines)


async def run_seeder(paths: list[Path], settings: Settings, *, rate: float = 0.0, loops: int = 1,
                     new_ids: bool = False, dry_run: bool = False, topic: str | None = None,
                     progress: bool = True, keep_ids: bool = True, fmt: str | None = None,
                     on_problem: Callable[[str], None] | None = None) -> SeedSummary:
    """Read the files (any format of worker/io/sources.py; `-` = stdin) and send every article
    to `topic` (default articles.raw), keyed by its id. `keep_ids=False` for inputs of any size
    (the summary then keeps no id list); `on_problem` hears of every bad record as it is found."""
    topic_name = topic or settings.topics().raw.name
    summary = SeedSummary(topic=topic_name, dry_run=dry_run, listed=on_problem is not None)
    field_map = settings.field_map()
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
    size = input_size(paths)
    total = size * loops if size else None
    # A bar over the input's bytes (compressed, as on disk) when its size is known, else a count.
    bar = tqdm(total=total, unit="B" if total else " articles", unit_scale=bool(total), unit_divisor=1024,
               desc="seeding", disable=not progress, mininterval=0.5, dynamic_ncols=True)
    try:
        for loop_no in range(loops):
            report = ReadReport(on_problem=on_problem if loop_no == 0 else None)
            # --new-ids: a fresh salt per run (and per loop) → same text, new ids → duplicates.
            salt = uuid.uuid4().hex if new_ids else ""
            for where, article in read_records(paths, report, salt, field_map, fmt):
                article["ingested_at"] = article.get("ingested_at") or utc_now_iso()
                payload = orjson.dumps(article)
                if len(payload) > settings.max_article_bytes:
                    report.problem(where, f"too_large: {len(payload)} bytes, MAX_ARTICLE_BYTES is "
                                          f"{settings.max_article_bytes} (not sent: the worker would dead-letter it)")
                    continue
                if producer is not None:
                    pending.append(await producer.send(topic_name, payload, key=article["id"].encode()))
                    if len(pending) >= SEND_WINDOW:
                        half = SEND_WINDOW // 2
                        await asyncio.gather(*pending[:half])
                        del pending[:half]
                summary.sent += 1
                if keep_ids:
                    summary.ids.append(article["id"])
                if summary.sent & 255 == 0:
                    _advance(bar, total, summary.sent, (size or 0) * loop_no + report.bytes_read)
                if rate > 0:
                    delay = started + summary.sent / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
            if loop_no == 0:  # later loops read the same input: the same files, problems, skips
                summary.files, summary.skipped, summary.problems = report.files, report.skipped, report.problems
                summary.errors = report.errors[:MAX_KEPT_PROBLEMS]
            _advance(bar, total, summary.sent, (size or 0) * (loop_no + 1))
        await asyncio.gather(*pending)
    finally:
        bar.close()
        if producer is not None:
            await producer.stop()
    summary.seconds = time.monotonic() - started
    return summary


def _advance(bar: tqdm, total: int | None, sent: int, position: int) -> None:
    if total:
        bar.update(max(0, min(position, total) - bar.n))
        bar.set_postfix_str(f"{sent} articles", refresh=False)
    else:
        bar.update(sent - bar.n)
