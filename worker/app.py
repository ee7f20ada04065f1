"""The faust app: topics, the dedup table and the two agents that wire the stages together.

    articles.raw ─► analyse_articles ─► articles.dedup-requests ─► deduplicate ─► articles.enriched
                          │                (1 partition: the funnel)       │  └─► articles.duplicates
                          └─► articles.dlq ◄─────────────────────────────────┘
                                                       dedup-index table (changelog, compacted)

`analyse_articles` is stateless and scales with the input partitions and worker processes; it
analyses the articles it has taken together, stage by stage (ANALYSE_BATCH_ARTICLES), and sends
them to the funnel in batches (one message per input partition, every FUNNEL_BATCH_LINGER_S or
FUNNEL_BATCH_MAX_ARTICLES; see FunnelBatch).
`deduplicate` consumes a one-partition topic, so a single dedup index sees every article
whatever partition it arrived on; its state is one small record per article in a faust Table
and is rebuilt from the changelog after a restart or a rebalance.

Agents only move data: the work is in worker/pipeline.py and worker/stages/.

Delivery (nothing lost):
- at_least_once (default): faust flushes the producer (acks=all, idempotent) before it commits
  offsets, so an offset never passes an output that is not durable; a send that fails for good
  stops the process before any commit (`must_be_durable`), and the input is processed again.
  Consumers of the outputs may see an article twice after a crash; outputs are keyed by article
  id and a redelivered article repeats its first verdict (no second duplicate event).
- exactly_once (`PROCESSING_GUARANTEE=exactly_once`): outputs and input offsets are committed in
  one Kafka transaction per input partition; readers use read_committed. faust 0.15.3 routes
  outputs to the wrong transactions and loses data as shipped: fixed in worker/kafka/faust_support.py.
- Events are acked by hand (`stream.noack()`), in offset order, with commits held off, after
  their outputs are queued (for an input article: its funnel batch): an event that raises or is
  cancelled half-way, or whose batch was not sent, is never acked, so it is redelivered (faust
  acks it when the iterator closes, which loses it). Anything unexpected outside the
  dead-letter path exits the process (code 70) rather than drop an input.
- Both agents run with concurrency=1 (faust-streaming#606: concurrency > 1 can commit past
  in-flight messages).
- SIGTERM stops gracefully in ~1.5 s, or exits after SHUTDOWN_DEADLINE_S (10 s) regardless.
- `/health/live` answers 503 when an input partition has unprocessed input and no event of it
  was processed for STALL_TIMEOUT_S (faust-streaming#175/#640/#532: partitions that silently stop).

Run with `faust -A worker.app worker -l info` or `ingest worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
import weakref

from aiokafka.errors import MessageSizeTooLargeError
from faust.streams import _current_event  # faust's current-event context variable

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import topics
from worker import metrics
from worker.kafka.admin import missing_topics
from worker.config import get_settings
from worker.deadletter import dead_letter, dead_letter_key
from worker.logs import logging_config
from worker.kafka.faust_support import FunnelAwareAssignor, IngestApp, IngestWorker, faust_broker_options
from worker.pipeline import ArticleIndex, StageError, analyse_batch, finish, new_article_index, utc_now_iso
from worker.stages import entities, hashing, language
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
    # A worker that dies without leaving the group (SIGKILL, OOM, power) holds its partitions
    # until the broker expires its session: 10 s instead of faust's 60 s bounds that pause.
    # Heartbeats come from the consumer thread, so a busy event loop does not miss them.
    broker_session_timeout=10.0,
    broker_heartbeat_interval=1.0,
    producer_acks=-1,
    # Room for the largest message any output topic accepts (articles.dlq: 8 MiB), so a big
    # article or dead letter is not refused by the client before it reaches the broker.
    producer_max_request_size=9 * 1024 * 1024,
    consumer_max_fetch_size=settings.consumer_max_fetch_size,
    producer_max_batch_size=settings.producer_max_batch_size,
    producer_linger=settings.producer_linger,
    Worker=IngestWorker,
    PartitionAssignor=FunnelAwareAssignor,  # the funnel's host analyses less (worker/kafka/faust_support.py)
    logging_config=logging_config(settings),  # LOG_FORMAT=json: one JSON object per line
    web_enabled=settings.web_enabled,
    web_port=settings.web_port,
    web_bind="0.0.0.0",
    version=1,
)

app.fetch_max_wait_ms = settings.consumer_fetch_max_wait_ms
app.fetch_min_bytes = settings.consumer_fetch_min_bytes

raw_topic = app.topic(settings.topic(topics.RAW.base_name), key_type=bytes, value_type=bytes)
dedup_requests_topic = app.topic(settings.topic(topics.DEDUP_REQUESTS.base_name), key_type=bytes,
                                 value_type=bytes, partitions=1)
FunnelAwareAssignor.input_topic = raw_topic.get_topic_name()
FunnelAwareAssignor.funnel_topic = dedup_requests_topic.get_topic_name()
enriched_topic = app.topic(settings.topic(topics.ENRICHED.base_name), key_type=bytes, value_type=bytes)
duplicates_topic = app.topic(settings.topic(topics.DUPLICATES.base_name), key_type=bytes, value_type=bytes)
dlq_topic = app.topic(settings.topic(topics.DLQ.base_name), key_type=bytes, value_type=bytes)

# article id -> ArticleIndex record bytes. One partition, like the topic that feeds it.
index_table = app.Table("dedup-index", default=None, partitions=1, key_type=bytes, value_type=bytes,
                        help="Dedup index: one small record per article id (verdict, hash, signature, story)")


@app.on_worker_init.connect
def warm_up_stages(app, **kwargs) -> None:  # noqa: ARG001 - faust signal signature
    """Load the language profiles, hashing tables and the gazetteer (~1.5 s) before the worker joins the group,
    not on the first article (that blocked the event loop 1-5 s right after it reported ready)."""
    started = time.perf_counter()
    language.warm_up()
    hashing.warm_up()
    entities.warm_up()
    # The gazetteer and profiles are ~300 k long-lived Python objects: every full garbage
    # collection walked them (~80-250 ms with the event loop blocked: the p99 latency spikes
    # measured in bench/). Frozen, the collector skips them.
    gc.collect()
    gc.freeze()
    log.info("stages warmed up in %.2fs (%d objects frozen out of garbage collection)",
             time.perf_counter() - started, gc.get_freeze_count())


def new_index() -> ArticleIndex:
    return new_article_index(settings)


dedup_index = new_index()


@index_table.on_recover
async def rebuild_dedup_index() -> None:
    """Derive the in-memory LSH index from the table (after a restart, rebalance or recovery)."""
    global dedup_index
    started = time.perf_counter()
    fresh = new_index()
    fresh.rebuild(v for v in index_table.values() if v)
    dedup_index = fresh
    metrics.INDEX_ARTICLES.set(len(fresh))
    log.info("dedup index rebuilt from changelog: %d articles in %.2fs", len(fresh),
             time.perf_counter() - started)


async def send(topic, key: bytes | None, value: dict | bytes):
    """Queue one output (returns the delivery future). Raises only if it cannot even be queued."""
    payload = value if isinstance(value, bytes) else orjson.dumps(value)
    future = await topic.send(key=key, value=payload)
    metrics.MESSAGES_OUT.labels(topic.get_topic_name()).inc()
    return future


async def send_dead_letter(message, reason: str, error: BaseException, stage: str,
                           original: tuple[bytes | None, bytes | None] | None = None):
    """Dead-letter `message` (its source position) with its key and value, or with `original`
    (key, value) when the input is one part of it (an article of a funnel batch)."""
    original_key, original_value = original or (message.key, message.value)
    metrics.DEAD_LETTERS.labels(reason, stage).inc()
    log.warning("dead letter: reason=%s stage=%s source=%s/%d/%d error=%s: %s", reason, stage,
                message.topic, message.partition, message.offset, type(error).__name__, str(error)[:200])
    key = dead_letter_key(message.topic, message.partition, message.offset)
    letter = dead_letter(key=original_key, value=original_value, reason=reason, error=error, stage=stage,
                         topic=message.topic, partition=message.partition, offset=message.offset,
                         timestamp=message.timestamp, failed_at=utc_now_iso())
    try:
        return await send(dlq_topic, key, letter)
    except MessageSizeTooLargeError:
        # Cannot happen within the topics' size limits; if it does, keep the letter (reason and
        # source offset: the original is still on the input topic) rather than lose the input.
        size = len(original_value or b"")
        letter.update(original_value=None,
                      message=f"original value ({size} bytes) too large for the DLQ; it is at the "
                              f"source offset. {letter['message']}"[:2000])
        return await send(dlq_topic, key, letter)


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


def give_up(message, exc: BaseException) -> None:
    """An event could neither be processed nor dead-lettered: exit before its offset is committed."""
    log.critical("cannot process or dead-letter %s/%d/%d (%s: %s); exiting so it is redelivered",
                 message.topic, message.partition, message.offset, type(exc).__name__, exc,
                 exc_info=exc)
    logging.shutdown()
    os._exit(70)


class Progress:
    """When each input partition last had an event processed: the stalled-partition check."""

    def __init__(self) -> None:
        self.last: dict = {}

    def mark(self, tp) -> None:
        self.last[tp] = time.monotonic()

    def stalled(self, timeout: float) -> list[dict]:
        consumer = app.consumer
        if consumer is None or app.rebalancing:
            return []
        inputs = {raw_topic.get_topic_name(), dedup_requests_topic.get_topic_name()}
        # Under exactly_once the high-water mark is the last stable offset, one past the final
        # transaction marker, which the committed offset never passes while idle.
        slack = 1 if app.in_transaction else 0
        now = time.monotonic()
        found = []
        for tp in consumer.assignment():
            if tp.topic not in inputs:
                continue
            try:
                highwater = consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - no fetch yet / consumer restarting
                continue
            committed = consumer._committed_offset.get(tp) or 0
            if highwater is not None:
                lag = max(0, highwater - committed - slack)
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
            idle = now - self.last.setdefault(tp, now)
            if highwater is not None and highwater - committed > slack and idle > timeout:
                found.append({"topic": tp.topic, "partition": tp.partition, "lag": highwater - committed,
                              "idle_s": round(idle, 1)})
        return found


progress = Progress()
STALL_TIMEOUT_S = float(os.environ.get("STALL_TIMEOUT_S", "120"))


@app.on_partitions_assigned.connect
async def reset_progress(app, assigned, **kwargs) -> None:  # noqa: ARG001 - faust signal signature
    app.forget_positions()  # the consumer starts again from the committed offsets
    for tp in assigned:
        progress.mark(tp)  # a partition is not "stalled" for the time before it was ours
    if app.in_transaction:
        raw = raw_topic.get_topic_name()
        held = {tp.partition for tp in assigned if tp.topic == raw}
        total = app.consumer.topic_partitions(raw) or settings.input_partitions
        if len(held) != total:
            # See worker/kafka/faust_support.py: faust 0.15.3 loses and duplicates data when
            # exactly_once partitions move between workers. Stop rather than do that.
            log.critical("exactly_once supports one worker only, and this one holds %d of the %d "
                         "partitions of %s: another worker of %s is running. Stop it, or use "
                         "PROCESSING_GUARANTEE=at_least_once to scale out.", len(held), total, raw,
                         settings.app_id)
            await app.crash(RuntimeError("exactly_once with more than one worker"))


@app.on_partitions_revoked.connect
async def forget_positions(app, revoked, **kwargs) -> None:  # noqa: ARG001
    app.forget_positions()


def log_repeat(message) -> None:
    """The same record handed over twice without a seek in between: already processed."""
    log.info("skipping a repeat delivery of %s/%d/%d (already processed)", message.topic, message.partition,
             message.offset)


async def skip_repeat(stream, event) -> None:
    log_repeat(event.message)
    await stream.ack(event)


# The analyse agent hands analysed articles to the funnel in batches: one message per input
# partition, `{"articles": [analysed, ...]}`, sent when FUNNEL_BATCH_MAX_ARTICLES are waiting
# (or 2 MiB) and otherwise every FUNNEL_BATCH_LINGER_S by `flush_funnel_batch`. Each batch saves
# the funnel one faust event and the analyse side one produced message per article (worker CPU
# per article 778 + 768 µs against 1,011 + 904 µs without, in one bench run). Events are acked
# in arrival order once their batch is queued for sending; a dead-lettered article waits for the
# batch too (acked first, it would let faust commit over the unacked ones before it).
# stream.take_events() was tried for this and pairs values with the wrong events under load in
# faust-streaming 0.15.3 (an article went out twice and another never, with 2 workers in
# tests/integration/test_pipeline.py).
FUNNEL_BATCH_MAX_BYTES = 2 * 1024 * 1024  # articles.dedup-requests accepts 4 MiB


class FunnelBatch:
    """Input events taken and not yet acked, and the analysed articles among them, grouped by
    input partition (under exactly_once each group goes out in its partition's transaction)."""

    def __init__(self, max_articles: int) -> None:
        self.max_articles = max_articles
        self.stream = None  # the analyse agent's stream, which acks the events
        self.events: list = []
        self.groups: dict = {}  # TP -> [(event, analysed article JSON)]
        self.size = 0

    def __len__(self) -> int:
        return len(self.events)

    def add(self, event, analysed: bytes | None) -> None:
        self.events.append(event)
        if analysed is not None:
            self.groups.setdefault(event.message.tp, []).append((event, analysed))
            self.size += len(analysed)

    def full(self, adding: int = 0) -> bool:
        return len(self.events) >= self.max_articles or self.size + adding > FUNNEL_BATCH_MAX_BYTES

    async def flush(self) -> None:
        """Queue one funnel message per input partition, then ack every event in order.
        Call with app.event_boundary_lock held (no commit between the sends and the acks)."""
        events, groups = self.events, self.groups
        self.events, self.groups, self.size = [], {}, 0
        for group in groups.values():
            last = group[-1][0]
            value = b'{"articles":[' + b",".join(analysed for _, analysed in group) + b"]}"
            with as_current_event(last):
                must_be_durable(await send(dedup_requests_topic, last.message.key, value))
        for event in events:
            await self.stream.ack(event)


funnel_batch = FunnelBatch(settings.funnel_batch_max_articles)


@contextlib.contextmanager
def as_current_event(event):
    """faust's current event, which EventBoundTransactionManager routes outputs by."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


# Taken input events wait here, in arrival order, until ANALYSE_BATCH_ARTICLES of them are
# waiting or the funnel batch is sent: then they are analysed together, stage by stage
# (pipeline.analyse_batch), and join the funnel batch. Like the funnel batch's, they are acked
# only once that batch is sent. (event, True) is a repeat delivery: acked in its place, unprocessed.
taken: list[tuple[object, bool]] = []


@app.agent(raw_topic, concurrency=1)
async def analyse_articles(stream):
    """Validate and analyse every input article; hand it to the dedup funnel or dead-letter it."""
    manual = stream.noack()
    funnel_batch.stream = manual
    async for event in manual.events():
        message = event.message
        async with app.event_boundary_lock:
            try:
                repeat = app.is_repeat(message)
                if repeat:
                    log_repeat(message)  # acked with the batch, in order
                taken.append((event, repeat))
                app.mark_taken(event)
                if not settings.funnel_batch_linger_s:  # no batching: every article goes out at once
                    await analyse_taken()
                    await funnel_batch.flush()
                elif len(taken) >= settings.analyse_batch_articles:
                    await analyse_taken()
            except Exception as exc:  # noqa: BLE001 - not even the dead letter could be queued
                give_up(message, exc)
        progress.mark(message.tp)


async def analyse_taken() -> None:
    """Analyse the taken events and add them to the funnel batch, in arrival order (sending the
    batch whenever it is full). Call with app.event_boundary_lock held."""
    events = taken[:]
    taken.clear()
    fresh = [event for event, repeat in events if not repeat]
    payloads = iter(await analyse_events(fresh))
    for event, repeat in events:
        analysed = None if repeat else next(payloads)
        if analysed is not None and funnel_batch.full(len(analysed)):
            await funnel_batch.flush()
        funnel_batch.add(event, analysed)
        if funnel_batch.full():
            await funnel_batch.flush()


async def flush_funnel_batch() -> None:
    """Analyse what the agent has taken and send the funnel batch (the agent only sends full ones)."""
    async with app.event_boundary_lock:
        if not taken and not len(funnel_batch):
            return
        newest = (taken[-1][0] if taken else funnel_batch.events[-1]).message
        try:
            await analyse_taken()
            await funnel_batch.flush()
        except Exception as exc:  # noqa: BLE001 - outputs not queued: exit before any commit
            give_up(newest, exc)


if settings.funnel_batch_linger_s:
    # A plain loop, not @app.timer: mode's Timer logs a warning on every tick that takes longer
    # than its interval (under load, waiting for the lock alone often does), and it stops with
    # the app's first stop signal. This loop runs until faust cancels the app's tasks, which is
    # after it has waited for every taken event to be acked (App.on_stop → wait_empty): the
    # events of the last batch are acked only once it is flushed, and a stop that checked
    # app.should_stop here hung until the shutdown deadline (exit 75) when a batch was pending.
    @app.task
    async def flush_funnel_batch_every_linger() -> None:
        while True:
            await asyncio.sleep(settings.funnel_batch_linger_s)
            await flush_funnel_batch()


async def analyse_events(events: list) -> list[bytes | None]:
    """For each event, the analysed article's JSON for the funnel, or None once it has been
    dead-lettered. The valid articles are analysed together (pipeline.analyse_batch)."""
    articles: list = []
    for event in events:
        message = event.message
        metrics.MESSAGES_IN.labels(message.topic).inc()
        try:
            articles.append(parse_article(message.key, message.value, settings.max_article_bytes))
        except InvalidArticle as exc:
            must_be_durable(await send_dead_letter(message, exc.reason, exc, "validate"))
            articles.append(None)
        except Exception as exc:  # noqa: BLE001 - bad input must never kill the worker
            must_be_durable(await send_dead_letter(message, "unexpected_error", exc, "analyse"))
            articles.append(None)
    valid = [(event, article) for event, article in zip(events, articles) if article is not None]
    # The arrival is this worker's clock, not the record's timestamp (a producer may set that).
    arrival = time.time()
    results = iter(analyse_batch([article for _, article in valid], settings.minhash_permutations,
                                 [arrival] * len(valid), settings.max_future_skew.total_seconds()))
    payloads: list[bytes | None] = []
    for event, article in zip(events, articles):
        payloads.append(None if article is None else await to_funnel(event.message, next(results)))
    return payloads


async def to_funnel(message, analysed: dict | Exception) -> bytes | None:
    """One analysed article as funnel JSON, or None once it has been dead-lettered."""
    if isinstance(analysed, StageError):
        must_be_durable(await send_dead_letter(message, "stage_error", analysed.cause, analysed.stage))
        return None
    if isinstance(analysed, Exception):
        must_be_durable(await send_dead_letter(message, "unexpected_error", analysed, "analyse"))
        return None
    try:
        payload = orjson.dumps(analysed)  # e.g. metadata nested deeper than orjson writes (254)
    except Exception as exc:  # noqa: BLE001 - bad input must never kill the worker
        must_be_durable(await send_dead_letter(message, "unexpected_error", exc, "analyse"))
        return None
    for stage, ms in analysed["timings_ms"].items():
        metrics.STAGE_SECONDS.labels(stage).observe(ms / 1000)
    metrics.EVENT_TIMES.labels(analysed["event_time"]["source"]).inc()
    if len(payload) > FUNNEL_BATCH_MAX_BYTES:
        too_large = ValueError(f"analysed article is {len(payload)} bytes; "
                               f"the funnel takes {FUNNEL_BATCH_MAX_BYTES}")
        must_be_durable(await send_dead_letter(message, "too_large", too_large, "analyse"))
        return None
    return payload


@app.agent(dedup_requests_topic, concurrency=1)
async def deduplicate(stream):
    """Decide unique / exact / near duplicate for each analysed article, then publish."""
    manual = stream.noack()
    async for event in manual.events():
        message = event.message
        if app.is_repeat(message):
            await skip_repeat(manual, event)
            continue
        async with app.event_boundary(manual, event):
            try:
                await deduplicate_batch(message)
            except Exception as exc:  # noqa: BLE001
                give_up(message, exc)
        progress.mark(message.tp)


async def deduplicate_batch(message) -> None:
    metrics.MESSAGES_IN.labels(message.topic).inc()
    try:
        articles = orjson.loads(message.value)["articles"]
    except Exception as exc:  # noqa: BLE001 - only the analyse agent writes here; never crash
        must_be_durable(await send_dead_letter(message, "unexpected_error", exc, "dedup"))
        return
    for analysed in articles:
        try:
            futures, record = await deduplicate_one(analysed)
        except Exception as exc:  # noqa: BLE001
            # The letter carries this article (its analysed JSON) and the batch's offset.
            original = (str(analysed.get("id", "")).encode(), orjson.dumps(analysed))
            must_be_durable(await send_dead_letter(message, "unexpected_error", exc, "dedup", original))
            continue
        for future in futures:
            must_be_durable(future)
        if record is not None:
            # After the outputs in the producer's queue; the changelog write for this article.
            key, value = record
            index_table[key] = value
    evicted = dedup_index.evict_expired()
    for article_id in evicted.delete:
        index_table.pop(article_id.encode(), None)  # tombstone in the changelog
    for article_id, record in evicted.rewrite.items():
        index_table[article_id.encode()] = record  # the part still indexed
    if evicted.delete or evicted.rewrite:
        metrics.EVICTIONS.labels("age").inc(evicted.by_age)
        metrics.EVICTIONS.labels("budget").inc(evicted.by_budget)
        metrics.STORY_EVICTIONS.inc(evicted.story_records)
        log.info("index eviction: %d dedup entries by age, %d by budget (DEDUP_MAX_ARTICLES=%d), "
                 "%d story records; %d table keys deleted, %d rewritten", evicted.by_age, evicted.by_budget,
                 settings.dedup_max_articles, evicted.story_records, len(evicted.delete), len(evicted.rewrite))
    metrics.INDEX_ARTICLES.set(len(dedup_index))


async def deduplicate_one(analysed: dict):
    key = analysed["id"].encode()  # = the input message's key (parse_article checks it)
    started = time.perf_counter()
    decided = dedup_index.decide(analysed)
    dedup_ms = (time.perf_counter() - started) * 1000
    metrics.STAGE_SECONDS.labels("dedup").observe(dedup_ms / 1000)
    enriched, duplicate_event = finish(analysed, decided, dedup_ms)
    futures = [await send(enriched_topic, key, enriched)]
    if decided.redelivery:
        metrics.REPLAYS.inc()  # same enrichment again; the duplicate event went out the first time
    else:
        metrics.VERDICTS.labels(decided.verdict.status).inc()
        if duplicate_event is not None:
            futures.append(await send(duplicates_topic, key, duplicate_event))
    return futures, ((key, decided.record) if decided.record else None)


@app.task
async def check_topics() -> None:
    """Fail fast with a clear message when the topics were never created."""
    missing = await missing_topics(settings)
    if missing:
        log.error("missing topics %s: run `ingest topics create` first", ", ".join(missing))
        await app.crash(RuntimeError(f"missing topics: {', '.join(missing)}"))


@app.page("/metrics")
async def metrics_page(web, request):
    progress.stalled(STALL_TIMEOUT_S)  # refreshes ingest_consumer_lag for every input partition
    return web.bytes(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])


@app.page("/health/live")
async def liveness(web, request):
    """503 when an input partition of this worker has input waiting and made no progress for
    STALL_TIMEOUT_S (the process is up but a partition stopped: restart it)."""
    stalled = progress.stalled(STALL_TIMEOUT_S)
    if stalled:
        return web.json({"status": "stalled", "stalled_partitions": stalled}, status=503)
    return web.json({"status": "alive", "stalled_partitions": []})


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
