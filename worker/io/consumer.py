"""The consumer command: reads `articles.enriched` (or another output topic) for downstream use.

It reads without a consumer group (all partitions assigned), so it never disturbs the
worker's offsets; without `--follow` it stops at the end offsets it saw when it started.
In exactly_once mode it reads only committed transactions (`read_committed`).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from worker.config import Settings


def render(message: dict[str, Any], fmt: str) -> str:
    if fmt == "jsonl":
        return orjson.dumps(message).decode()
    if "language" in message and "dedup" in message:
        dedup = message["dedup"]
        names = ", ".join(f"{e['canonical']} ({e['label']}×{e['count']})" for e in message["entities"][:12])
        dup = f" of {dedup['duplicate_of']} sim={dedup['similarity']:.2f}" if dedup["duplicate_of"] else ""
        return (f"── {message['id']}  [{message['language']['code']} {message['language']['confidence']:.2f}]"
                f"  {dedup['status']}{dup}\n   {message['title'] or message['content']['body'][:80]!s}\n"
                f"   source: {message['source'] or '-'}   entities: {names or '-'}")
    return orjson.dumps(message, option=orjson.OPT_INDENT_2).decode()


def wanted(message: dict[str, Any], lang: str | None, dedup_status: str | None,
           syndication: str | None = None) -> bool:
    if lang and message.get("language", {}).get("code") != lang:
        return False
    if syndication and (message.get("syndication") or {}).get("relation") != syndication:
        return False
    return not (dedup_status and message.get("dedup", {}).get("status") != dedup_status)


async def run_consumer(settings: Settings, topic: str, *, from_beginning: bool = False, follow: bool = False,
                       lang: str | None = None, dedup_status: str | None = None,
                       syndication: str | None = None, fmt: str = "jsonl",
                       max_messages: int = 0, idle_timeout: float = 0.0, out=sys.stdout) -> int:
    name = settings.topics().full_name(topic)
    isolation = "read_committed" if settings.processing_guarantee == "exactly_once" else "read_uncommitted"
    consumer = AIOKafkaConsumer(**settings.kafka_client_options(), enable_auto_commit=False,
                                isolation_level=isolation, group_id=None)
    await consumer.start()
    printed = 0
    try:
        partitions = consumer.partitions_for_topic(name)
        if partitions is None:
            await consumer._client.force_metadata_update()  # topic metadata not yet cached
            partitions = consumer.partitions_for_topic(name)
        if not partitions:
            raise SystemExit(f"topic {name} does not exist")
        tps = [TopicPartition(name, p) for p in sorted(partitions)]
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        end_offsets = await consumer.end_offsets(tps)
        last_message_at = time.monotonic()
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batch.values():
                for record in records:
                    last_message_at = time.monotonic()
                    try:
                        message = orjson.loads(record.value) if record.value is not None else None
                    except orjson.JSONDecodeError:
                        continue
                    if message is None or not wanted(message, lang, dedup_status, syndication):
                        continue
                    print(render(message, fmt), file=out, flush=True)
                    printed += 1
                    if max_messages and printed >= max_messages:
                        return printed
            if follow:
                if idle_timeout and time.monotonic() - last_message_at > idle_timeout:
                    return printed
                continue
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(positions[tp] >= end_offsets[tp] for tp in tps):
                return printed
    except asyncio.CancelledError:
        return printed
    finally:
        await consumer.stop()
