"""The faust app: topics, the dedup table and the two agents that wire the stages together.

    articles.raw ─► analyse_articles ─► articles.dedup-requests ─► deduplicate ─► articles.enriched
                          │                (1 partition: the funnel)       │  └─► articles.duplicates
                          └─► articles.dlq ◄─────────────────────────────────┘
                                                       dedup-index table (changelog, compacted)

`analyse_articles` is stateless and scales with the input partitions and worker processes.
`deduplicate` consumes a one-partition topic, so a single dedup index sees every article
whatever partition it arrived on; its state is one small record per article in a faust Table
and is rebuilt from the changelog after a restart or a rebalance.

Agents only move data: the work is in worker/pipeline.py and worker/stages/. faust flushes the
producer before it commits offsets, so an offset never passes an output that is not durable,
and a send that fails for good stops the process before any commit (at-least-once). Both
agents run with concurrency=1 (faust-streaming#606: concurrency > 1 can commit past in-flight
messages).

Run with `faust -A worker.app worker -l info` or `ingest worker`.
"""

from __future__ import annotations

import logging
import os
import time

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import topics
from worker import metrics
from worker.admin import missing_topics
from worker.config import get_settings
from worker.deadletter import dead_letter, dead_letter_key
from worker.faust_support import IngestApp, faust_broker_options
from worker.pipeline import StageError, analyse, decide, finish, utc_now_iso
from worker.stages.dedup import DedupIndex, IndexRecord
from worker.stages.validate import InvalidArticle, parse_article

log = logging.getLogger("worker")
settings = get_settings()

app = IngestApp(
    settings.app_id,
    **faust_broker_options(settings),
    store=settings.store,
    datadir=f"{settings.data_dir}/{{conf.name}}",
    processing_guarantee=settings.processing_guarantee,
    key_serializer="raw",  # payloads are orjson bytes we encode/decode ourselves, so a bad
    value_serializer="raw",  # message reaches our code (and the DLQ) instead of faust's logs
    topic_partitions=settings.output_partitions,
    topic_replication_factor=1,
    topic_allow_declare=True,
    table_standby_replicas=settings.standby_replicas,
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=1.0,
    producer_acks=-1,
    web_enabled=settings.web_enabled,
    web_port=settings.web_port,
    web_bind="0.0.0.0",
    version=1,
)

raw_topic = app.topic(settings.topic(topics.RAW.base_name), key_type=bytes, value_type=bytes)
dedup_requests_topic = app.topic(settings.topic(topics.DEDUP_REQUESTS.base_name), key_type=bytes,
                                 value_type=bytes, partitions=1)
enriched_topic = app.topic(settings.topic(topics.ENRICHED.base_name), key_type=bytes, value_type=bytes)
duplicates_topic = app.topic(settings.topic(topics.DUPLICATES.base_name), key_type=bytes, value_type=bytes)
dlq_topic = app.topic(settings.topic(topics.DLQ.base_name), key_type=bytes, value_type=bytes)

# article id -> IndexRecord bytes. One partition, like the topic that feeds it.
index_table = app.Table("dedup-index", default=None, partitions=1, key_type=bytes, value_type=bytes,
                        help="Dedup index: one small record per article id (verdict, hash, signature)")

dedup_index = DedupIndex(threshold=settings.dedup_threshold, num_perm=settings.minhash_permutations,
                         window_s=settings.dedup_window_days * 86400)


@index_table.on_recover
async def rebuild_dedup_index() -> None:
    """Derive the in-memory LSH index from the table (after a restart, rebalance or recovery)."""
    global dedup_index
    started = time.perf_counter()
    records = sorted((IndexRecord.from_bytes(v) for v in index_table.values() if v),
                     key=lambda r: (r.event_time, r.article_id))
    fresh = DedupIndex(threshold=settings.dedup_threshold, num_perm=settings.minhash_permutations,
                       window_s=settings.dedup_window_days * 86400)
    for record in records:
        fresh.load(record)
    dedup_index = fresh
    metrics.INDEX_ARTICLES.set(len(fresh))
    log.info("dedup index rebuilt from changelog: %d articles in %.2fs", len(fresh),
             time.perf_counter() - started)


async def send(topic, key: bytes, value: dict):
    metrics.MESSAGES_OUT.labels(topic.get_topic_name()).inc()
    return await topic.send(key=key, value=orjson.dumps(value))


async def send_dead_letter(message, reason: str, error: BaseException, stage: str):
    metrics.DEAD_LETTERS.labels(reason, stage).inc()
    log.warning("dead letter: reason=%s stage=%s source=%s/%d/%d error=%s: %s", reason, stage,
                message.topic, message.partition, message.offset, type(error).__name__, str(error)[:200])
    letter = dead_letter(key=message.key, value=message.value, reason=reason, error=error, stage=stage,
                         topic=message.topic, partition=message.partition, offset=message.offset,
                         timestamp=message.timestamp, failed_at=utc_now_iso())
    return await send(dlq_topic, dead_letter_key(message.topic, message.partition, message.offset), letter)


def must_be_durable(future) -> None:
    """Exit the process if an output could not be written after the producer's own retries.

    faust flushes the producer before it commits offsets, so every output sent while handling
    an event is durable before that event's offset is committed. A send that finally *fails*
    must not be followed by that commit: dying at once makes the event be redelivered instead
    (at-least-once). The orchestrator (compose `restart:`, Kubernetes) restarts the worker.
    """

    def check(fut) -> None:
        if fut.cancelled() or fut.exception() is None:
            return
        exc = fut.exception()
        log.critical("could not make an output durable (%s: %s); exiting so the input is redelivered",
                     type(exc).__name__, exc)
        logging.shutdown()
        os._exit(70)

    future.add_done_callback(check)


# Both agents iterate events one at a time. stream.take_events() was tried for batching and
# pairs values with the wrong events under load in faust-streaming 0.15.3 (an article went out
# twice and another never, seen with 2 workers in tests/integration/test_pipeline.py), so it is
# not used. Sends are not awaited one by one: they are buffered, and the commit flushes them.
@app.agent(raw_topic, concurrency=1)
async def analyse_articles(stream):
    """Validate and analyse every input article; hand it to the dedup funnel or dead-letter it."""
    async for event in stream.events():
        must_be_durable(await analyse_one(event.message))


async def analyse_one(message):
    metrics.MESSAGES_IN.labels(message.topic).inc()
    try:
        article = parse_article(message.key, message.value, settings.max_article_bytes)
        analysed = analyse(article, settings.minhash_permutations, fallback_time=message.timestamp)
    except InvalidArticle as exc:
        return await send_dead_letter(message, exc.reason, exc, "validate")
    except StageError as exc:
        return await send_dead_letter(message, "stage_error", exc.cause, exc.stage)
    except Exception as exc:  # noqa: BLE001 - bad input must never kill the worker
        return await send_dead_letter(message, "unexpected_error", exc, "analyse")
    for stage, ms in analysed["timings_ms"].items():
        metrics.STAGE_SECONDS.labels(stage).observe(ms / 1000)
    return await send(dedup_requests_topic, message.key, analysed)


@app.agent(dedup_requests_topic, concurrency=1)
async def deduplicate(stream):
    """Decide unique / exact / near duplicate for each analysed article, then publish."""
    async for event in stream.events():
        message = event.message
        metrics.MESSAGES_IN.labels(message.topic).inc()
        try:
            futures, record = await deduplicate_one(message)
        except Exception as exc:  # noqa: BLE001
            must_be_durable(await send_dead_letter(message, "unexpected_error", exc, "dedup"))
            continue
        for future in futures:
            must_be_durable(future)
        if record is not None:
            # After the outputs in the producer's queue; the changelog write for this event.
            index_table[record.article_id.encode()] = record.to_bytes()
        for article_id in dedup_index.evict_expired():
            metrics.EVICTIONS.inc()
            index_table.pop(article_id.encode(), None)  # tombstone in the changelog
        metrics.INDEX_ARTICLES.set(len(dedup_index))


async def deduplicate_one(message):
    analysed = orjson.loads(message.value)
    started = time.perf_counter()
    decision = decide(dedup_index, analysed)
    dedup_ms = (time.perf_counter() - started) * 1000
    metrics.STAGE_SECONDS.labels("dedup").observe(dedup_ms / 1000)
    enriched, duplicate_event = finish(analysed, decision.verdict, dedup_ms)
    futures = [await send(enriched_topic, message.key, enriched)]
    if decision.redelivery:
        metrics.REPLAYS.inc()
        return futures, None  # same enrichment again; the duplicate event went out the first time
    metrics.VERDICTS.labels(decision.verdict.status).inc()
    if duplicate_event is not None:
        futures.append(await send(duplicates_topic, message.key, duplicate_event))
    return futures, decision.record


@app.task
async def check_topics() -> None:
    """Fail fast with a clear message when the topics were never created."""
    missing = await missing_topics(settings)
    if missing:
        log.error("missing topics %s: run `ingest topics create` first", ", ".join(missing))
        await app.crash(RuntimeError(f"missing topics: {', '.join(missing)}"))


@app.page("/metrics")
async def metrics_page(web, request):
    return web.bytes(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])


@app.page("/health/live")
async def liveness(web, request):
    return web.json({"status": "alive"})


@app.page("/health/ready")
async def readiness(web, request):
    assigned = app.consumer.assignment() if app.consumer else set()
    recovered = app.tables.recovery.completed.is_set() if app.tables else False
    ready = bool(assigned) and recovered and not app.rebalancing
    return web.json({"ready": ready, "assigned_partitions": len(assigned), "tables_recovered": recovered},
                    status=200 if ready else 503)


def main() -> None:
    app.main()


if __name__ == "__main__":
    main()
