"""The faust app: topics, the dedup table, the two agents that wire the stages together, pages.

    articles.raw ─► analyse_articles ─► articles.dedup-requests ─► deduplicate ─► articles.enriched
                          │                (1 partition: the funnel)       │  └─► articles.duplicates
                          └─► articles.dlq ◄─────────────────────────────────┘
                                                       dedup-index table (changelog, compacted)

`analyse_articles` is stateless and scales with the input partitions and worker processes; it
analyses the articles it has taken together, stage by stage, and hands them to the funnel in
batches. `deduplicate` consumes the one-partition funnel, so a single dedup index sees every
article whatever partition it arrived on; its state is one small record per article in a faust
Table, rebuilt from the changelog after a restart or a rebalance — or, with STORE=rocksdb://,
loaded from a local snapshot plus the changelog records written after it (`IndexSnapshots`).

Agents only move data: the work is in worker/pipeline.py and worker/stages/; what is acked,
flushed and committed when is worker/delivery.py; the faust patches are worker/kafka/.

Run with `faust -A worker.app worker -l info` or `ingest worker`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import time
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faust.types import TP
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from worker import metrics, records, snapshot
from worker.config import Settings, get_settings
from worker.delivery import FUNNEL_BATCH_MAX_BYTES, FunnelCheckpoint, Outputs, acked_if_repeat, handling
from worker.health import Progress
from worker.kafka.admin import check_topics as live_topics_against_specs
from worker.kafka.faust_support import FunnelAwareAssignor, IngestApp, new_faust_app
from worker.pipeline import ArticleIndex, StageError, StaleState, analyse_batch, finish, new_article_index, warm_up
from worker.records import AnalysedArticle
from worker.stages.validate import InvalidArticle, parse_article
from worker.status import StatusBoard

log = logging.getLogger("worker")


def create_app(settings: Settings) -> IngestApp:
    app = new_faust_app(settings)

    # -- topics: every name and partition count comes from topics/ ----------------------------
    names = settings.topics()
    raw_topic = app.topic(names.raw.name, key_type=bytes, value_type=bytes)
    funnel_topic = app.topic(names.dedup_requests.name, key_type=bytes, value_type=bytes, partitions=1)
    enriched_topic = app.topic(names.enriched.name, key_type=bytes, value_type=bytes)
    duplicates_topic = app.topic(names.duplicates.name, key_type=bytes, value_type=bytes)
    dlq_topic = app.topic(names.dlq.name, key_type=bytes, value_type=bytes)
    FunnelAwareAssignor.input_topic = names.raw.name
    FunnelAwareAssignor.funnel_topic = names.dedup_requests.name

    # -- state: article id -> ArticleIndex record; one partition, like the funnel that feeds it --
    index_table = app.Table("dedup-index", default=None, partitions=1, key_type=bytes, value_type=bytes,
                            help="Dedup index: one small record per article id (verdict, hash, signature, story)")
    # Derived from the table: rebuilt (or loaded from a snapshot) on recovery. Its story features
    # stay in the table, not in memory (issue 24): an eviction's rewrite reads them from there.
    index = new_article_index(settings, stored=lambda article_id: index_table.get(article_id.encode()))
    index_lock = asyncio.Lock()  # the funnel's batches, rebuilds and snapshots: one at a time
    snapshots = IndexSnapshots(app, settings, index_table, index, index_lock) \
        if settings.store.startswith("rocksdb") and \
        (settings.index_snapshot_every_records or settings.index_snapshot_every_s) else None

    board = StatusBoard(f"{socket.gethostname()}:{os.getpid()}", names.raw.name, names.dedup_requests.name)
    outputs = Outputs(dlq_topic, on_dead_letter=board.dead_letter)
    progress = Progress(app, {names.raw.name, names.dedup_requests.name})

    @app.on_worker_init.connect
    def warm_up_stages(_app: IngestApp, **_kwargs: Any) -> None:
        """Load the stages' tables before joining the group, not on the first article (that
        blocked the event loop 1-5 s right after the worker reported ready)."""
        started = time.perf_counter()
        warm_up()
        # The gazetteer and profiles are ~300 k long-lived objects: every full garbage collection
        # walked them with the event loop blocked (the p99 latency spikes in bench/). Frozen, the
        # collector skips them.
        gc.collect()
        gc.freeze()
        log.info("stages warmed up in %.2fs (%d objects frozen out of garbage collection)",
                 time.perf_counter() - started, gc.get_freeze_count())

    @index_table.on_recover
    async def rebuild_index() -> None:
        async with index_lock:
            started = time.perf_counter()
            restored = None if snapshots is None else await snapshots.restore()
            if restored is None:
                index.rebuild(value for value in index_table.values() if value)
                log.info("dedup index rebuilt from changelog: %d articles in %.2fs", len(index),
                         time.perf_counter() - started)
                if snapshots is not None:
                    snapshots.rebuilt(len(index))
            else:
                log.info("dedup index loaded from snapshot: %d articles in %.2fs (%s)", len(index),
                         time.perf_counter() - started, restored)
            metrics.INDEX_ARTICLES.set(len(index))

    @app.on_partitions_assigned.connect
    async def on_assigned(app: IngestApp, assigned: set, **_kwargs: Any) -> None:
        app.forget_positions()  # the consumer starts again from the committed offsets
        progress.reset(assigned)
        if app.in_transaction:
            held = {tp.partition for tp in assigned if tp.topic == names.raw.name}
            total = app.consumer.topic_partitions(names.raw.name) or names.raw.partitions
            if len(held) != total:
                # faust 0.15.3 loses and duplicates data when exactly_once partitions move between
                # workers (worker/kafka/faust_support.py). Stop rather than do that.
                log.critical("exactly_once supports one worker only, and this one holds %d of the %d "
                             "partitions of %s: another worker of %s is running. Stop it, or use "
                             "PROCESSING_GUARANTEE=at_least_once to scale out.", len(held), total,
                             names.raw.name, settings.app_id)
                await app.crash(RuntimeError("exactly_once with more than one worker"))

    @app.on_partitions_revoked.connect
    async def on_revoked(app: IngestApp, _revoked: set, **_kwargs: Any) -> None:
        app.forget_positions()

    # -- agent 1: validate and analyse every input article, hand it to the funnel --------------
    async def analyse(events: list) -> list[bytes | None]:
        """Per event, the analysed article's funnel JSON, or None once it has been dead-lettered."""
        articles: list = []
        for event in events:
            message = event.message
            metrics.MESSAGES_IN.labels(message.topic).inc()
            board.took(message.timestamp)
            try:
                articles.append(parse_article(message.key, message.value, settings.max_article_bytes,
                                              settings.field_map()))
            except InvalidArticle as exc:
                await outputs.dead_letter(message, exc.reason, exc, "validate")
                articles.append(None)
            except Exception as exc:  # noqa: BLE001 - bad input must never kill the worker
                await outputs.dead_letter(message, "unexpected_error", exc, "analyse")
                articles.append(None)
        valid = [article for article in articles if article is not None]
        arrival = time.time()  # this worker's clock, not the record's timestamp (a producer sets that)
        results = iter(analyse_batch(valid, settings.minhash_permutations, [arrival] * len(valid),
                                     settings.max_future_skew.total_seconds()))
        return [None if article is None else await to_funnel(event.message, next(results))
                for event, article in zip(events, articles)]

    async def to_funnel(message: Any, analysed: AnalysedArticle | Exception) -> bytes | None:
        if isinstance(analysed, StageError):
            await outputs.dead_letter(message, "stage_error", analysed.cause, analysed.stage)
            return None
        if isinstance(analysed, Exception):
            await outputs.dead_letter(message, "unexpected_error", analysed, "analyse")
            return None
        try:
            payload = records.encode(analysed)  # e.g. metadata nested too deep to write
        except Exception as exc:  # noqa: BLE001 - bad input must never kill the worker
            await outputs.dead_letter(message, "unexpected_error", exc, "analyse")
            return None
        for stage, ms in analysed.timings_ms.items():
            metrics.STAGE_SECONDS.labels(stage).observe(ms / 1000)
        board.analysed(analysed.timings_ms)
        if isinstance(analysed.event_time, records.EventTime):
            metrics.EVENT_TIMES.labels(analysed.event_time.source).inc()
        if len(payload) > FUNNEL_BATCH_MAX_BYTES:
            too_large = ValueError(f"analysed article is {len(payload)} bytes; "
                                   f"the funnel takes {FUNNEL_BATCH_MAX_BYTES}")
            await outputs.dead_letter(message, "too_large", too_large, "analyse")
            return None
        return payload

    checkpoint = FunnelCheckpoint(app, outputs, funnel_topic, analyse,
                                  analyse_batch_articles=settings.analyse_batch_articles,
                                  max_articles=settings.funnel_batch_max_articles,
                                  linger_s=settings.funnel_batch_linger_s)

    # concurrency > 1 commits past in-flight records (faust-streaming#606)
    @app.agent(raw_topic, name="worker.app.analyse_articles", concurrency=1)
    async def analyse_articles(stream: Any) -> None:
        checkpoint.stream = stream.noack()
        async for event in checkpoint.stream.events():
            await checkpoint.take(event)
            progress.mark(event.message.tp)

    if settings.funnel_batch_linger_s:
        # A plain loop, not @app.timer: mode's Timer warns on every tick longer than its interval
        # (waiting for the lock under load), and stops at the app's first stop signal, before the
        # last batch is sent; faust cancels this task only once every taken record is acked.
        @app.task
        async def send_funnel_batch_every_linger() -> None:
            while True:
                await asyncio.sleep(settings.funnel_batch_linger_s)
                await checkpoint.flush()

    # -- agent 2: the funnel: dedup verdict and story for each analysed article, then publish ---
    @app.agent(funnel_topic, name="worker.app.deduplicate", concurrency=1)
    async def deduplicate(stream: Any) -> None:
        records = stream.noack()
        async for event in records.events():
            if await acked_if_repeat(app, records, event):
                continue
            async with index_lock, handling(app, records, event):  # the lock first: snapshots wait for commits
                await deduplicate_batch(event.message)
            progress.mark(event.message.tp)

    async def deduplicate_batch(message: Any) -> None:
        metrics.MESSAGES_IN.labels(message.topic).inc()
        for analysed in await articles_of(message):
            try:
                await deduplicate_one(analysed, message)
            except Exception as exc:  # noqa: BLE001
                # The letter carries this article (its analysed JSON) and the batch's offset.
                await outputs.dead_letter(message, "unexpected_error", exc, "dedup",
                                          (analysed.id.encode(), records.encode(analysed)))
        evict_expired()
        metrics.INDEX_ARTICLES.set(len(index))

    async def articles_of(message: Any) -> list[AnalysedArticle]:
        """The batch's articles; one that does not decode is dead-lettered alone (only the
        analyse agent writes here, so this is a bug or a version skew, never a crash)."""
        try:
            return records.decode_funnel_batch(message.value).articles
        except msgspec.DecodeError:
            pass
        try:
            raw_articles = list(orjson.loads(message.value)["articles"])
        except Exception as exc:  # noqa: BLE001
            await outputs.dead_letter(message, "unexpected_error", exc, "dedup")
            return []
        articles = []
        for raw in raw_articles:
            try:
                articles.append(msgspec.convert(raw, AnalysedArticle))
            except Exception as exc:  # noqa: BLE001
                article_id = raw.get("id") if isinstance(raw, dict) else None
                await outputs.dead_letter(message, "unexpected_error", exc, "dedup",
                                          (str(article_id or "").encode(), orjson.dumps(raw)))
        return articles

    async def deduplicate_one(analysed: AnalysedArticle, message: Any) -> None:
        key = analysed.id.encode()  # outputs are keyed by the article id (sent, the key, or derived)
        started = time.perf_counter()
        decided = index.decide(analysed)
        dedup_ms = (time.perf_counter() - started) * 1000
        metrics.STAGE_SECONDS.labels("dedup").observe(dedup_ms / 1000)
        enriched, duplicate_event = finish(analysed, decided, dedup_ms)
        board.decided(analysed, decided.verdict, decided.story, decided.redelivery, message.timestamp)
        await outputs.send(enriched_topic, key, records.encode(enriched))
        if decided.redelivery:
            metrics.REPLAYS.inc()  # the same enrichment again; the duplicate event went out the first time
        else:
            metrics.VERDICTS.labels(decided.verdict.status).inc()
            if duplicate_event is not None:
                await outputs.send(duplicates_topic, key, records.encode(duplicate_event))
        if decided.record:
            index_table[key] = decided.record  # after the outputs: the changelog write

    def evict_expired() -> None:
        evicted = index.evict_expired()
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
                     settings.dedup_max_articles, evicted.story_records, len(evicted.delete),
                     len(evicted.rewrite))

    topics_checked = False

    @app.on_rebalance_complete.connect
    async def check_topics(app: IngestApp, **_kwargs: Any) -> None:
        """Refuse to start on topics the product is wrong with: missing, a dedup funnel (or dedup
        table changelog) with more than one partition, a compacted topic that is not compacted.
        Each is logged with the fix `ingest topics check` prints (topics/validation.py); other
        mismatches (replication, retention, ...) are logged as warnings.

        Runs once, at the end of the first rebalance: faust awaits it before it resumes the
        input partitions, so not one event is processed on wrong topics (an @app.task runs only
        after the first events)."""
        nonlocal topics_checked
        if topics_checked:
            return
        topics_checked = True
        try:
            report = await live_topics_against_specs(settings)
        except Exception as exc:  # noqa: BLE001 - a failed look is not a wrong topic: start, say so
            log.warning("could not check the topics against topics/ (%r); starting without that check", exc)
            return
        for mismatch in report.mismatches:
            (log.error if mismatch.fatal else log.warning)("%s %s", "FATAL" if mismatch.fatal else "MISMATCH",
                                                         mismatch)
        if report.fatal:
            log.critical("refusing to start: %d topic mismatch(es) above would make the results wrong "
                         "(`ingest topics check` lists them with their fixes)", len(report.fatal))
            await app.crash(RuntimeError(f"topics do not match topics/: {'; '.join(map(str, report.fatal))}"))
            await asyncio.Event().wait()  # never resume the inputs; the crash stops the worker

    # -- pages: Prometheus and the orchestrator's probes, on the worker's web port -------------
    @app.page("/metrics")
    async def metrics_page(web: Any, _request: Any) -> Any:
        progress.stalled(settings.stall_timeout_s)  # refreshes ingest_consumer_lag on the way
        return web.bytes(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/health/live")
    async def liveness(web: Any, _request: Any) -> Any:
        """503 when an input partition has input waiting and made no progress for STALL_TIMEOUT_S."""
        stalled = progress.stalled(settings.stall_timeout_s)
        if stalled:
            return web.json({"status": "stalled", "stalled_partitions": stalled}, status=503)
        return web.json({"status": "alive", "stalled_partitions": []})

    @app.page("/health/ready")
    async def readiness(web: Any, _request: Any) -> Any:
        assigned = app.consumer.assignment() if app.consumer else set()
        recovered = app.tables.recovery.completed.is_set() if app.tables else False
        ready = bool(assigned) and recovered and not app.rebalancing
        return web.json({"ready": ready, "assigned_partitions": len(assigned), "tables_recovered": recovered},
                        status=200 if ready else 503)

    @app.page("/status")
    async def status_page(web: Any, _request: Any) -> Any:
        """A page to look at (worker/web/status.html): it polls /status.json."""
        return web.html(STATUS_HTML)

    @app.page("/status.json")
    async def status_json(web: Any, _request: Any) -> Any:
        stalled = progress.stalled(settings.stall_timeout_s)  # refreshes the lag on the way
        assigned = sorted((tp.topic, tp.partition) for tp in (app.consumer.assignment() if app.consumer else ()))
        recovered = app.tables.recovery.completed.is_set() if app.tables else False
        return web.json(board.snapshot(assigned=assigned, lag=dict(progress.lag), stalled=stalled,
                                       ready=bool(assigned) and recovered and not app.rebalancing))

    return app


class IndexSnapshots:
    """Snapshots of the dedup index beside the table's RocksDB files (worker/snapshot.py).

    Written by a task of their own, holding `index_lock` (the dedup agent waits): every
    INDEX_SNAPSHOT_EVERY_RECORDS changelog records or INDEX_SNAPSHOT_EVERY_S seconds, and once
    after a rebuild from the changelog. A snapshot is taken at a known changelog offset: every
    changelog write made so far is acknowledged first, and the last one is the snapshot's record
    (the table's `send_changelog` and `_on_changelog_sent` are wrapped to count writes and
    acknowledgements). Under exactly_once that record may still be in an open transaction: a
    restart reads the changelog read_committed, so if the transaction was aborted the record is
    not there and the snapshot is not used.

    On recovery (`restore`): the snapshot, then the changelog records after its offset read with a
    consumer of its own (read_committed); any doubt — no file, a damaged one, other settings, too
    old, a changelog that does not continue it — and the caller rebuilds from the table instead,
    as without snapshots.
    """

    CHECK_EVERY_S = 1.0
    WAIT_S = 30.0  # for acknowledgements before a snapshot; then it is tried later

    def __init__(self, app: IngestApp, settings: Settings, table: Any, index: ArticleIndex,
                 lock: asyncio.Lock) -> None:
        self.app, self.settings, self.table, self.index, self.lock = app, settings, table, index, lock
        self.path = Path(app.conf.tabledir) / snapshot.FILENAME
        self.sent = self.acked = 0  # changelog writes since the index was last rebuilt or restored
        self.last: tuple[int, bytes, bytes | None] | None = None  # the last one acknowledged
        self.sent_at_snapshot = 0
        self.snapshot_at = time.monotonic()
        self.rebuilt_pending = False
        self.disabled = ""
        self._task: asyncio.Task | None = None
        send, sent = table.send_changelog, table._on_changelog_sent

        def send_changelog(*args: Any, **kwargs: Any) -> Any:
            self.sent += 1
            return send(*args, **kwargs)

        def on_changelog_sent(fut: Any) -> None:
            sent(fut)
            offset = fut.result().offset
            self.acked += 1
            if self.last is None or offset > self.last[0]:
                self.last = (offset, fut.message.key, fut.message.value)

        table.send_changelog = send_changelog
        table._on_changelog_sent = on_changelog_sent

    @property
    def topic(self) -> str:
        return self.table.changelog_topic_name

    def _active(self) -> bool:
        return TP(self.topic, 0) in self.app.assignor.assigned_actives()

    # -- recovery -------------------------------------------------------------------------------

    async def restore(self) -> str | None:
        """Load the snapshot and the changelog after it into the index; a description of what
        was loaded, or None (the caller rebuilds from the table)."""
        self._start()
        self.sent = self.acked = self.sent_at_snapshot = 0
        self.last = None
        if not self._active():
            return None
        try:
            meta = snapshot.read_meta(self.path)
        except snapshot.SnapshotError as exc:
            log.info("dedup index: no snapshot to load (%s)", exc)
            return None
        started = time.perf_counter()
        try:
            if meta.params != self.index.params():
                raise StaleState(f"made with other settings: {meta.params}")
            meta = await asyncio.to_thread(snapshot.load, self.path, self.index, self.topic, 0,
                                           self.settings.index_snapshot_max_age_s)
            loaded = time.perf_counter()
            changes = await asyncio.wait_for(self._read_changelog(meta.offset), timeout=300)
            read = time.perf_counter()
            applied = await asyncio.to_thread(snapshot.catch_up, self.index, meta, changes, None,
                                              self.settings.processing_guarantee == "at_least_once")
        except (snapshot.SnapshotError, StaleState, KafkaError, TimeoutError, OSError) as exc:
            log.warning("dedup index snapshot not used (%s): rebuilding from the changelog", exc)
            return None
        self.snapshot_at = time.monotonic()
        return (f"snapshot at changelog offset {meta.offset}, {time.time() - meta.written_at:.0f}s old, "
                f"in {loaded - started:.2f}s; {applied} later changelog records read in {read - loaded:.2f}s "
                f"and applied in {time.perf_counter() - read:.2f}s")

    def rebuilt(self, articles: int) -> None:
        """The index was rebuilt from the table: snapshot it soon (if it holds anything)."""
        self.rebuilt_pending = articles > 0

    async def _read_changelog(self, start: int) -> list[tuple[int, bytes, bytes | None]]:
        """(offset, key, value) of the changelog's records from `start` to its end."""
        consumer = AIOKafkaConsumer(**self.settings.kafka_client_options(), group_id=None, enable_auto_commit=False,
                                    isolation_level="read_committed",
                                    max_partition_fetch_bytes=self.settings.consumer_max_fetch_size)
        await consumer.start()
        try:
            tp = TopicPartition(self.topic, 0)
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            out: list[tuple[int, bytes, bytes | None]] = []
            if start >= end:
                return out
            consumer.seek(tp, max(0, start))
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
                out += [(r.offset, r.key, r.value) for r in batch.get(tp, ()) if r.offset < end]
            return out
        finally:
            await consumer.stop()

    # -- writing --------------------------------------------------------------------------------

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def due(self) -> bool:
        if self.disabled or not self._active() or self.app.rebalancing:
            return False
        if self.rebuilt_pending:
            return True
        written = self.sent - self.sent_at_snapshot
        every_records, every_s = self.settings.index_snapshot_every_records, self.settings.index_snapshot_every_s
        if written <= 0:
            return False
        if every_records and written >= every_records:
            return True
        return bool(every_s) and time.monotonic() - self.snapshot_at >= every_s

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.CHECK_EVERY_S)
            try:
                if self.due():
                    async with self.lock:
                        if self.due():
                            await self.take()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed snapshot must not stop the worker
                log.exception("dedup index snapshot failed; trying again later")
                self.snapshot_at = time.monotonic()

    async def take(self) -> bool:
        """Write a snapshot now (the caller holds the index lock). False if not at a known offset."""
        point = await self._point()
        if point is None:
            return False
        offset, key, value = point
        sent = self.sent
        meta = snapshot.SnapshotMeta(self.topic, 0, offset, key, snapshot.value_hash(value), self.index.params(),
                                     self.index.articles())
        started = time.perf_counter()
        try:
            size = await asyncio.to_thread(snapshot.write, self.path, self.index, meta)
        except StaleState as exc:
            self.disabled = str(exc)
            log.warning("dedup index snapshots off: %s", exc)
            return False
        self.rebuilt_pending = False
        self.sent_at_snapshot, self.snapshot_at = sent, time.monotonic()
        log.info("dedup index snapshot: %d articles at changelog offset %d, %.1f MB in %.2fs", len(self.index),
                 offset, size / 2**20, time.perf_counter() - started)
        return True

    async def _point(self) -> tuple[int, bytes, bytes | None] | None:
        """The changelog's last record once every write so far is acknowledged."""
        if not self.sent:  # nothing written since the rebuild: the changelog's own last record
            return await self._last_record()
        await self.app.producer.flush()
        deadline = time.monotonic() + self.WAIT_S
        while self.acked < self.sent or self.last is None:
            if time.monotonic() > deadline:
                log.info("dedup index snapshot postponed: changelog writes not acknowledged in %.0fs", self.WAIT_S)
                self.snapshot_at = time.monotonic()
                return None
            await asyncio.sleep(0.02)
        return self.last

    async def _last_record(self) -> tuple[int, bytes, bytes | None] | None:
        consumer = AIOKafkaConsumer(**self.settings.kafka_client_options(), group_id=None, enable_auto_commit=False,
                                    isolation_level="read_committed")
        await consumer.start()
        try:
            tp = TopicPartition(self.topic, 0)
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            back = 1
            while back <= end:  # a transaction marker takes an offset too: look further back
                consumer.seek(tp, end - back)
                found: list = []
                while await consumer.position(tp) < end:
                    batch = await consumer.getmany(tp, timeout_ms=1000)
                    found += [r for r in batch.get(tp, ()) if r.offset < end]
                if found:
                    return found[-1].offset, found[-1].key, found[-1].value
                back *= 16
            return None
        finally:
            await consumer.stop()


STATUS_HTML = (resources.files("worker") / "web" / "status.html").read_text(encoding="utf-8")

# `faust -A worker.app worker` and `ingest worker` run this app, configured from the environment.
app = create_app(get_settings())


def main() -> None:
    app.main()


if __name__ == "__main__":
    main()
