"""The delivery protocol: what is sent, acked, flushed and committed, in which order.

Both agents read with `stream.noack()` and leave every ack to this module; faust commits from a
timer, and the patched consumer and producer (worker/kafka/faust_support.py) make its commit
follow the acks. The invariants, in the order they apply to one input record:

1. **Outputs before the ack.** An input record is acked only once every output it leads to is
   queued on the producer: its enriched message, duplicate event or dead letter, its funnel
   batch, its table (changelog) write. Everything is sent through `Outputs`.
2. **The ack before the commit, in offset order.** faust commits a partition only up to its
   first unacked offset (`IngestConsumer.ack`, faust-streaming#606), so an offset never passes
   a record still in hand. The analyse agent acks its records in arrival order when their
   funnel batch is sent (`FunnelCheckpoint`): a dead-lettered record waits for that batch too.
3. **Durable before committed.** faust flushes the producer before it commits offsets, and our
   producer's flush drains faust's own buffer (`DurableProducer`); a commit never falls between
   a record's sends and its ack (the app's event-boundary lock, held here while handling one).
4. **A failed send ends the process.** A send that fails after the producer's own retries (or a
   record that can neither be processed nor dead-lettered) exits with code 70 before any commit
   covers it (`exit_before_commit`); the orchestrator restarts the worker.
5. **Repeats are answered once.** The same record handed over twice without a seek in between
   (a faust 0.15.3 defect) is acked in its place, unprocessed (`IngestApp.is_repeat`).
6. **exactly_once:** a send made while a record is faust's current event goes into the
   transaction of that record's input partition, which commits the outputs and the offset
   together (`EventBoundTransactionManager`); a funnel batch is sent as its last record.

What a crash (SIGKILL, OOM, power) at each point leads to:

- before the outputs are queued, or queued but not flushed: the offset is not committed; the
  record is redelivered and processed again. Under at_least_once an output that did reach the
  broker is written a second time (keyed by article id; dedup answers the re-sent id as a
  redelivery, so the verdict repeats and no second duplicate event is sent); under exactly_once
  the open transaction is aborted and readers (read_committed) see the outputs once.
- flushed but not committed: the same as above.
- committed: done; the record is not seen again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, NoReturn

import orjson
from aiokafka.errors import MessageSizeTooLargeError
from faust.streams import _current_event  # faust's current-event context variable

from worker import metrics
from worker.deadletter import dead_letter, dead_letter_key
from worker.pipeline import utc_now_iso

log = logging.getLogger("worker")

EX_OUTPUT_LOST = 70  # exit code: an input could not be made durable (it is redelivered)

# articles.dedup-requests accepts 4 MiB; a batch is sent before it passes half of that.
FUNNEL_BATCH_MAX_BYTES = 2 * 1024 * 1024


def exit_before_commit(why: str, exc: BaseException | None = None) -> NoReturn:
    """Invariant 4: end the process now, so nothing commits past what could not be done."""
    log.critical("%s; exiting so the input is redelivered", why, exc_info=exc)
    logging.shutdown()
    os._exit(EX_OUTPUT_LOST)


def give_up(message: Any, exc: BaseException) -> NoReturn:
    """An input record could neither be processed nor dead-lettered."""
    exit_before_commit(f"cannot process or dead-letter {message.topic}/{message.partition}/{message.offset} "
                       f"({type(exc).__name__}: {exc})", exc)


def _exit_if_failed(future: asyncio.Future) -> None:
    if future.cancelled() or future.exception() is None:
        return
    exc = future.exception()
    exit_before_commit(f"could not make an output durable ({type(exc).__name__}: {exc})")


@contextlib.contextmanager
def as_current_event(event: Any) -> Iterator[None]:
    """Make `event` faust's current event: invariant 6 routes the sends inside by it."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class Outputs:
    """Every output of the worker goes through here: queued, counted, and checked (invariant 4)."""

    def __init__(self, dlq_topic: Any, on_dead_letter: Callable[..., None] | None = None) -> None:
        self.dlq_topic = dlq_topic
        self.on_dead_letter = on_dead_letter  # the status page's report (worker/status.py)

    async def send(self, topic: Any, key: bytes | None, value: dict | bytes) -> None:
        """Queue one output; its failure after the producer's retries ends the process."""
        payload = value if isinstance(value, bytes) else orjson.dumps(value)
        future = await topic.send(key=key, value=payload)
        metrics.MESSAGES_OUT.labels(topic.get_topic_name()).inc()
        future.add_done_callback(_exit_if_failed)

    async def dead_letter(self, message: Any, reason: str, error: BaseException, stage: str,
                          original: tuple[bytes | None, bytes | None] | None = None) -> None:
        """Dead-letter `message` (its source position) with its key and value, or with `original`
        (key, value) when the input is one part of it (an article of a funnel batch)."""
        original_key, original_value = original or (message.key, message.value)
        metrics.DEAD_LETTERS.labels(reason, stage).inc()
        if self.on_dead_letter is not None:
            self.on_dead_letter(reason, stage, message.topic, message.partition, message.offset, original_value)
        log.warning("dead letter: reason=%s stage=%s source=%s/%d/%d error=%s: %s", reason, stage,
                    message.topic, message.partition, message.offset, type(error).__name__, str(error)[:200])
        key = dead_letter_key(message.topic, message.partition, message.offset)
        letter = dead_letter(key=original_key, value=original_value, reason=reason, error=error, stage=stage,
                             topic=message.topic, partition=message.partition, offset=message.offset,
                             timestamp=message.timestamp, failed_at=utc_now_iso())
        try:
            await self.send(self.dlq_topic, key, letter)
        except MessageSizeTooLargeError:
            # Cannot happen within the topics' size limits; if it does, keep the letter (reason and
            # source offset: the original is still on the input topic) rather than lose the input.
            size = len(original_value or b"")
            letter.update(original_value=None,
                          message=f"original value ({size} bytes) too large for the DLQ; it is at the "
                                  f"source offset. {letter['message']}"[:2000])
            await self.send(self.dlq_topic, key, letter)


# analyse(events) -> per event, the analysed article's funnel JSON, or None once dead-lettered.
Analyse = Callable[[list[Any]], Awaitable[list[bytes | None]]]


class FunnelCheckpoint:
    """The analyse agent's side of the protocol: records taken, analysed together, handed to the
    funnel in batches, and acked in arrival order once their batch is queued (invariants 1-2).

    Taken records wait until `analyse_batch_articles` of them are waiting (or the batch is
    sent), then are analysed together, stage by stage. The analysed articles join the funnel
    batch: one message per input partition, `{"articles": [...]}`, sent when `max_articles` are
    waiting (or FUNNEL_BATCH_MAX_BYTES) and otherwise every linger period (`flush`). Each batch
    saves the funnel one faust event and the analyse side one produced message per article.
    stream.take_events() was tried for this and pairs values with the wrong events under load in
    faust-streaming 0.15.3 (an article went out twice and another never, with 2 workers).
    """

    def __init__(self, app: Any, outputs: Outputs, funnel_topic: Any, analyse: Analyse, *,
                 analyse_batch_articles: int, max_articles: int, linger_s: float) -> None:
        self.app = app
        self.outputs = outputs
        self.funnel_topic = funnel_topic
        self.analyse = analyse
        self.analyse_batch_articles = analyse_batch_articles
        self.max_articles = max_articles
        self.linger_s = linger_s
        self.stream: Any = None  # the agent's noack() stream, which acks the records
        self.taken: list[tuple[Any, bool]] = []  # (event, is a repeat), not yet analysed
        self.events: list[Any] = []  # analysed (or dead-lettered, or repeats), not yet acked
        self.groups: dict[Any, list[tuple[Any, bytes]]] = {}  # TP -> [(event, analysed JSON)]
        self.size = 0

    def __len__(self) -> int:
        return len(self.events)

    async def take(self, event: Any) -> None:
        """One input record: keep it (a repeat is acked with the others, unprocessed)."""
        message = event.message
        async with self.app.event_boundary_lock:
            try:
                repeat = self.app.is_repeat(message)
                if repeat:
                    log.info("skipping a repeat delivery of %s/%d/%d (already processed)",
                             message.topic, message.partition, message.offset)
                self.taken.append((event, repeat))
                self.app.mark_taken(event)
                if not self.linger_s:  # no batching: every article goes out at once
                    await self._analyse_taken()
                    await self._send_batch()
                elif len(self.taken) >= self.analyse_batch_articles:
                    await self._analyse_taken()
            except Exception as exc:  # noqa: BLE001 - not even the dead letter could be queued
                give_up(message, exc)

    async def flush(self) -> None:
        """Analyse what was taken and send the batch (`take` sends only full ones): every linger."""
        async with self.app.event_boundary_lock:
            if not self.taken and not self.events:
                return
            newest = (self.taken[-1][0] if self.taken else self.events[-1]).message
            try:
                await self._analyse_taken()
                await self._send_batch()
            except Exception as exc:  # noqa: BLE001 - outputs not queued: exit before any commit
                give_up(newest, exc)

    def full(self, adding: int = 0) -> bool:
        return len(self.events) >= self.max_articles or self.size + adding > FUNNEL_BATCH_MAX_BYTES

    def add(self, event: Any, analysed: bytes | None) -> None:
        self.events.append(event)
        if analysed is not None:
            self.groups.setdefault(event.message.tp, []).append((event, analysed))
            self.size += len(analysed)

    async def _analyse_taken(self) -> None:
        taken, self.taken = self.taken, []
        fresh = [event for event, repeat in taken if not repeat]
        payloads = iter(await self.analyse(fresh))
        for event, repeat in taken:
            analysed = None if repeat else next(payloads)
            if analysed is not None and self.full(len(analysed)):
                await self._send_batch()
            self.add(event, analysed)
            if self.full():
                await self._send_batch()

    async def _send_batch(self) -> None:
        """One funnel message per input partition, sent as that partition's last record (its
        transaction under exactly_once), then every record acked in arrival order."""
        events, groups = self.events, self.groups
        self.events, self.groups, self.size = [], {}, 0
        for group in groups.values():
            last = group[-1][0]
            value = b'{"articles":[' + b",".join(analysed for _, analysed in group) + b"]}"
            with as_current_event(last):
                await self.outputs.send(self.funnel_topic, last.message.key, value)
        for event in events:
            await self.stream.ack(event)


@contextlib.asynccontextmanager
async def handling(app: Any, stream: Any, event: Any):
    """The dedup agent's side: one record handled with commits held off, acked on success only
    (invariants 1-3); anything that escapes the dead-letter path ends the process (4)."""
    async with app.event_boundary(stream, event):
        try:
            yield
        except Exception as exc:  # noqa: BLE001
            give_up(event.message, exc)


async def acked_if_repeat(app: Any, stream: Any, event: Any) -> bool:
    """Invariant 5 for the dedup agent: a repeat is acked in its place and not handled."""
    message = event.message
    if not app.is_repeat(message):
        return False
    log.info("skipping a repeat delivery of %s/%d/%d (already processed)", message.topic, message.partition,
             message.offset)
    await stream.ack(event)
    return True
