"""The faust plumbing the agents stand on, kept out of app.py so app.py reads as the topology.

- `DurableProducer`: acks=all and idempotence in every mode (faust turns them on only for
  exactly_once), so a retried send after a broker hiccup is neither lost nor duplicated. Its
  `flush()` drains faust's own send buffer completely (table changelog writes go through it;
  faust's buffer flush gives up after 0.1 s per message), so an offset is never committed
  before the changelog record of the event it covers is durable. Every topic faust creates
  (the table changelog, the assignor's leader topic) gets the product's replication factor and
  min.insync.replicas (`create_topic`).
- `IngestConsumer` + `EventBoundTransactionManager`: what makes `processing_guarantee=
  "exactly_once"` correct with faust-streaming 0.15.3 (see "exactly_once" below).
- `FunnelAwareAssignor`: faust's partition assignor, with fewer input partitions for the worker
  that holds the one-partition dedup funnel.
- `IngestWorker`: a faust Worker whose SIGTERM/SIGINT shutdown has a hard deadline.
- `IngestApp`: a faust.App that uses all of the above, and has the event-boundary lock.
- `faust_broker_options`: Settings → faust App keyword arguments (brokers, security).

exactly_once
------------
faust opens one transactional producer per *input* partition ("{app id}-{group}-{partition}")
and commits each input partition's offsets in that producer's transaction. But 0.15.3 picks the
producer for an *output* from the output's own partition (TransactionManager.send), so:

1. an output to a topic the worker does not consume (articles.enriched, .dlq, .duplicates) has
   no partition in the consumer's metadata → it is sent by the plain producer, outside any
   transaction (faust-streaming#177): not atomic with the offsets, duplicated after a crash;
2. an output to a topic the worker does consume (articles.dedup-requests, 1 partition) goes into
   the transaction of *that* partition ("-0-0"), which is committed only when offsets of
   dedup-requests are — and dedup-requests has nothing readable (read_committed) until that
   transaction commits. Measured against Kafka 4.1.1: 50 articles in, the 4 input offsets
   committed (51), 50 analysed articles left in an open transaction, 0 enriched; the
   transaction times out and is aborted: every article lost, silently.

`EventBoundTransactionManager.send` fixes the routing: an output goes into the transaction of
the input partition of the event being processed (`faust.current_event()`), which is the one
committed with that event's offset — the Kafka Streams "one producer per task" model. Sends
made outside an event (table changelog writes, from faust's send buffer) keep faust's routing,
which is right for them: the changelog is co-partitioned with the agent's input topic.

A commit must also never split an event: faust commits from a timer task, and an event whose
outputs are already in the transaction but which is not yet acked would have its outputs
committed without its offset (a duplicate after a crash). So agents process each event inside
`app.event_boundary()` (a lock) and ack it before leaving; `IngestConsumer.force_commit` takes
the same lock. At-least-once mode uses it too (cheap, and commits then cover whole events).

`IngestConsumer` fixes faust's offset bookkeeping (see its docstrings): an off-by-one in its
gap tracking (~120 duplicates per SIGKILL under exactly_once), a partition never committed
again after a restart (faust-streaming#517), fetched records dropped without a seek back (an
article lost after a restart, in either mode), and `IngestApp.is_repeat` a record handed over
twice. With all of these, measured against Kafka 4.1.1 + aiokafka 0.14:

- one worker, SIGKILLed 3 times while 5,000 articles stream: 0 missing, 0 duplicates in 12 of 12
  runs since `_recovering` (tests/integration/test_faults.py; before it, 1 article lost in ~1 of
  5 runs), and 5/5 repeated 2,000-article runs with one SIGKILL;
- two workers, one joining and one leaving mid-stream: NOT exactly once. Runs lost 1-6 articles
  and committed ~100-280 duplicates, or stopped committing the funnel partition after the
  takeover (outputs left in an open transaction). faust's transactional rebalance handling
  (stop the revoked partitions' producers without ending their transactions, begin again on
  the kept ones, cf. faust-streaming#323) was not fixed here. exactly_once is therefore
  supported for ONE worker only; worker.app refuses an exactly_once assignment that does not
  hold every input partition. Use at_least_once (the default) to scale out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import threading
from pathlib import Path
from typing import Any

import faust
from faust.assignor import PartitionAssignor
from faust.streams import current_event
from faust.transport.consumer import TransactionManager
from faust.transport.drivers import aiokafka as faust_aiokafka

from topics.validation import DEFAULT_REPLICATION_FACTOR, resolve_replication
from worker.config import Settings
from worker.logs import logging_config

log = logging.getLogger("worker")

#: Exit code when a shutdown overran its deadline (inputs not committed are redelivered).
EX_SHUTDOWN_DEADLINE = 75
#: Seconds a SIGTERM/SIGINT shutdown may take before the process exits regardless.


class DurableProducer(faust_aiokafka.Producer):
    def _settings_extra(self) -> dict[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}

    async def create_topic(self, topic: str, partitions: int, replication: int, *,  # noqa: ARG002 - replaced
                           config: Any = None, **kwargs: Any) -> None:
        """Every topic faust declares (the dedup table's changelog, the assignor's leader topic)
        with the product's replication: REPLICATION_FACTOR, else 3 or the number of brokers in the
        cluster metadata when fewer (faust would use its fixed topic_replication_factor), and
        min.insync.replicas (MIN_INSYNC_REPLICAS, else 2 where the factor is 3 or more)."""
        client = self._ensure_producer().client
        if not client.cluster.brokers():
            await client.force_metadata_update()
        placement = resolve_replication(len(client.cluster.brokers()), self.app.replication_factor,
                                        self.app.min_insync_replicas)
        if topic not in client.cluster.topics():
            log.info("creating topic %s: %d partition(s), replication factor %d, min.insync.replicas %d",
                     topic, partitions, placement.factor, placement.min_insync)
        await super().create_topic(topic, partitions, placement.factor,
                                   config={**placement.topic_config(), **(config or {})}, **kwargs)

    async def flush(self) -> None:
        # faust's ProducerBuffer.flush() returns as soon as one buffered message takes more than
        # 0.1 s to hand over (slow broker), leaving the rest in the buffer while the caller goes
        # on to commit offsets. Drain it for real first.
        while self.buffer.size and self.buffer.state == "running":
            await self.buffer.flush()
        await super().flush()


class EventBoundTransactionManager(TransactionManager):
    """Put every output in the transaction of the input partition being processed."""

    async def send(self, topic, key, value, partition, timestamp, headers, *,
                   transactional_id=None):  # noqa: ARG002 - faust's signature; the id is chosen here
        event = current_event()
        if event is None:  # not inside an agent's event: faust's routing (table changelogs)
            return await super().send(topic, key, value, partition, timestamp, headers)
        source = event.message.tp
        group = self.app.assignor.group_for_topic(source.topic)
        tid = f"{self.app.conf.id}-{group}-{source.partition}"
        return await self.producer.send(topic, key, value, partition, timestamp, headers,
                                        transactional_id=tid)


class IngestConsumer(faust_aiokafka.Consumer):
    """faust's consumer with its commits held to event boundaries and its offsets fixed.

    faust tracks "gaps" (offsets it never receives: transaction markers, compacted records) so
    it can commit past them. When offsets jump it records the gap as `_add_gap(tp, last + 1,
    offset)`, end inclusive — the offset of the message being delivered is in it. That message
    is acked later as well, so the acked list holds it twice and the next commit stops there.
    On a transactional input (articles.dedup-requests under exactly_once: a commit marker after
    every transaction) the committed offset then trails the processed events by about a commit
    interval while their outputs are committed: after a crash those events are processed again
    and read_committed readers see ~120 duplicates per SIGKILL (measured; cf.
    faust-streaming#517, #312, #606). `_add_gap` here records only the offsets skipped.

    (Committing simply one past the highest acked offset is *not* an option: around a
    rebalance faust drops fetched records of the old generation and relies on the holes to
    stop the commit until it has sought back — doing so lost articles in the rebalance test.)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._first_seen: dict = {}  # TP -> first offset delivered since the last seek/rebalance
        super().__init__(*args, **kwargs)

    async def _add_gap(self, tp, offset_from: int, offset_to: int) -> None:
        await super()._add_gap(tp, offset_from, offset_to - 1)

    def _new_consumer_thread(self):
        return IngestConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def ack(self, message) -> bool:
        """faust's, except for messages of an earlier generation (fetched before a rebalance):
        those are never counted as processed, whoever acks them (at most a reprocessing).

        A guard for faust's pure-Python stream iterator, which acks the messages it skips for
        their generation; the compiled iterator (faust/_cython, used when installed) skips them
        without acking. The records that recovery used to drop are held back in `getmany`
        (see `_recovering`), which is where that loss was fixed.
        """
        if message.generation_id != self.app.consumer_generation_id:
            if not message.acked:
                message.acked = True
                self._unacked_messages.discard(message)
                self.log.info("not committing %s/%d/%d: skipped unprocessed, from generation %s (now %s)",
                              message.topic, message.partition, message.offset, message.generation_id,
                              self.app.consumer_generation_id)
            return False
        return super().ack(message)

    _batch = None
    _first_seen_generation = None

    def _new_offset(self, tp):
        """faust's, after counting what the client skipped before the first record since the
        last seek or rebalance (aborted transactions, commit markers) as a gap.

        faust records gaps only between two records it delivered, and commits nothing while the
        first acked offset is more than one past the committed one. After a SIGKILL under
        exactly_once, the committed offset of articles.dedup-requests is typically followed by the
        dead worker's aborted records, so faust never committed that partition again ("Has not
        committed TP ... at all since worker start", faust-streaming#517) and its outputs stayed
        in an open transaction, invisible to read_committed readers. (The first record can be
        delivered before faust has learnt the committed offset, hence here and not on delivery.)
        """
        first = self._first_seen.get(tp)
        committed = self._committed_offset[tp]
        acked = self._acked[tp]
        if first is not None and committed is not None and acked and min(acked) == first > committed + 1:
            self._gap[tp].addi(committed + 1, first)  # committed itself: faust tolerates one
        return super()._new_offset(tp)

    async def _wait_next_records(self, timeout):
        records, active_partitions = await super()._wait_next_records(timeout)
        self._batch = records
        return records, active_partitions

    async def getmany(self, timeout: float):
        """faust's getmany, and then a seek back to the first record it fetched but dropped.

        faust drops the rest of a fetched batch when the flow stops half-way (recovery, the
        start of a rebalance) and the records of partitions it considers inactive, while the
        fetch position has already moved past them. Unless a rebalance follows (which seeks
        everything back to the committed offsets), the next batch starts after them, and
        `_drain_messages` takes the jump for a gap — records it will never see, committable.
        Seen with a SIGKILLed worker's successor: raw/1/227 processed, 228 dropped as the
        recovery finished, 229 next, 228's offset committed: the article lost.
        """
        generation = self.app.consumer_generation_id
        if self._first_seen_generation != generation:
            self._first_seen.clear()
            self._first_seen_generation = generation
        delivered: dict = {}
        changelogs = self.app.tables.changelog_topics
        async for tp, message in super().getmany(timeout):
            if tp.topic not in changelogs and self._recovering():
                continue  # see below: re-read after the recovery's seek
            delivered[tp] = message.offset
            self._first_seen.setdefault(tp, message.offset)
            yield tp, message
        batch, self._batch = self._batch, None
        if not batch or self.should_stop or self.app.consumer_generation_id != generation:
            return  # stopping, or a rebalance: faust seeks every partition to its committed offset
        assignment = self.assignment()
        for tp, records in batch.items():
            last = delivered.get(tp)
            dropped = [r.offset for r in records or () if last is None or r.offset > last]
            if dropped and tp in assignment:
                self.log.info("re-reading %s from %d: %d fetched records were not delivered",
                              tp, dropped[0], len(dropped))
                await self.seek(tp, dropped[0])

    def _recovering(self) -> bool:
        """True from the start of a rebalance (or process start) until recovery has sought the
        stream partitions to their committed offsets and resumed the flow.

        Stream records must not reach the agents' queues in that window: recovery's final
        `app.flow_control.resume()` clears those queues (faust's channels use clear_on_resume),
        after faust has already counted the records as read (`_read_offset`), so when Kafka
        sends them again after the seek they are dropped — never processed, never acked — and
        a one-record hole at the head of a partition is committed over (a lost article; seen
        under exactly_once after a SIGKILL: sent 5000, enriched 4999). Records held back here
        are fetched again: `getmany` seeks back to them.
        """
        app = self.app
        return bool(app.rebalancing) or not app.tables.recovery.completed.is_set()

    async def force_commit(self, topics=None, start_new_transaction: bool = True) -> bool:
        # Between events only: see the module docstring.
        async with self.app.event_boundary_lock:
            if self.in_transaction:  # table changelog writes into their transaction first
                await self.app.producer.flush()
            return await super().force_commit(topics, start_new_transaction=start_new_transaction)

    async def perform_seek(self) -> None:
        self.app.forget_positions()  # a seek back to committed offsets legitimately repeats records
        self._first_seen.clear()
        await super().perform_seek()

    async def _seek(self, partition, offset) -> None:
        self.app.forget_positions({partition})
        self._first_seen.pop(partition, None)
        await super()._seek(partition, offset)


class FunnelAwareAssignor(PartitionAssignor):
    """faust's partition assignor, then fewer input partitions for the worker holding the funnel.

    The one-partition dedup funnel runs on one worker, which also analyses its share of the input
    partitions; with faust's even split that worker is the bottleneck while the others wait
    (bench/: 2 workers, the funnel host at 0.85 cores and the other at 0.4). Here input partitions
    move from the funnel host to the least loaded worker while that lowers the busiest one's load,
    counting the funnel as `funnel_weight` x (input partitions) partitions of analysis: its work per
    article relative to the analysis (~620 vs ~1,300 µs CPU per article in the worker, measured).
    articles.raw has no table and is co-partitioned with nothing, so its partitions can move alone.
    """

    input_topic: str = ""
    funnel_topic: str = ""
    funnel_weight: float = 0.5

    def _global_table_standby_assignments(self, assignments, partitions_by_topic):
        self.unload_funnel_host(assignments, partitions_by_topic.get(self.input_topic) or 0)
        return super()._global_table_standby_assignments(assignments, partitions_by_topic)

    def unload_funnel_host(self, assignments, input_partitions: int) -> None:
        raw = self.input_topic
        hosts = [c for c, a in assignments.items() if a.actives.get(self.funnel_topic)]
        if len(hosts) != 1 or len(assignments) < 2 or not input_partitions:
            return
        host = assignments[hosts[0]]
        others = [a for c, a in assignments.items() if c != hosts[0]]
        weight = self.funnel_weight * input_partitions
        while host.actives.get(raw):
            target = min(others, key=lambda a: len(a.actives.get(raw, ())))
            if len(host.actives[raw]) + weight <= len(target.actives.get(raw, ())) + 1:
                break  # moving one more would make the target the busiest
            moved = host.actives[raw].pop()
            target.actives[raw] = sorted([*target.actives.get(raw, ()), moved])
            if moved in target.standbys.get(raw, ()):
                target.standbys[raw].remove(moved)
        if raw in host.actives and not host.actives[raw]:
            del host.actives[raw]


class IngestConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's consumer thread, with the fetch wait from CONSUMER_FETCH_MAX_WAIT_MS instead of
    faust's fixed 1,500 ms, and the data that answers a fetch at once from
    CONSUMER_FETCH_MIN_BYTES (aiokafka's 1 B means a fetch per message at moderate load).

    aiokafka leaves out of a fetch request every partition that still has fetched records the
    application has not taken, and sends no new fetch to a broker while one is in flight. When a
    busy worker sends its next fetch, the partitions with data are often all still buffered, so
    the request holds only partitions that never get records (faust's __assignor-__leader, a
    table changelog it has already read), and the broker keeps it for the whole wait. Until it
    returns, nothing new is fetched for the busy partitions, ~1.5 s per hop: a worker that falls
    behind stays behind at half load (docs/benchmarks-log.md, "Fetch stalls": a 2,000-article backlog
    never drained in 3 of 3 runs with faust's wait, and drained in 9-15 s with 20 ms)."""

    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        # faust passes fetch_max_wait_ms=1500 to the constructor; aiokafka hands these attributes
        # to its Fetcher in start(), which has not run yet. Loud if a new aiokafka renames them.
        for name, value in (("_fetch_max_wait_ms", self.app.fetch_max_wait_ms),
                            ("_fetch_min_bytes", self.app.fetch_min_bytes)):
            if not hasattr(consumer, name):
                raise RuntimeError(f"aiokafka's AIOKafkaConsumer has no {name}: IngestConsumerThread "
                                   "needs updating for this aiokafka version")
            setattr(consumer, name, value)
        return consumer


class DurableTransport(faust_aiokafka.Transport):
    Consumer = IngestConsumer
    Producer = DurableProducer
    TransactionManager = EventBoundTransactionManager


def _hard_exit(deadline: float) -> None:
    # Runs in a watchdog thread while the event loop may be stuck: no logging locks, no asyncio.
    with contextlib.suppress(OSError):
        os.write(2, (f"[worker] shutdown did not finish within {deadline:g}s; exiting now "
                     f"(uncommitted input is redelivered to the next worker)\n").encode())
    os._exit(EX_SHUTDOWN_DEADLINE)


class IngestWorker(faust.Worker):
    """faust's Worker, with a hard deadline on signal-initiated shutdown.

    A graceful stop (finish the event in hand, flush, commit, leave the group) takes ~1.5 s; when
    it cannot finish — broker unreachable while flushing (faust's producer request timeout is
    20 minutes), a rebalance in progress — the process exits anyway after the deadline. That is
    safe: an offset is committed only after the outputs it covers are durable, so whatever was
    not committed is processed again by the next worker (at-least-once).
    """

    def _schedule_shutdown(self, signal) -> None:
        if not self._signal_stop_time:
            deadline = self.app.shutdown_deadline_s
            watchdog = threading.Timer(deadline, _hard_exit, args=(deadline,))
            watchdog.daemon = True
            watchdog.start()
        super()._schedule_shutdown(signal)


class IngestApp(faust.App):
    shutdown_deadline_s: float = 10.0  # Settings.shutdown_deadline_s; read by IngestWorker
    replication_factor: int | None = None  # Settings.replication_factor; read by DurableProducer
    min_insync_replicas: int | None = None  # Settings.min_insync_replicas; read by DurableProducer
    fetch_max_wait_ms: int = 1500  # faust's; set from CONSUMER_FETCH_MAX_WAIT_MS
    fetch_min_bytes: int = 1  # aiokafka's; set from CONSUMER_FETCH_MIN_BYTES
    _event_boundary_lock: asyncio.Lock | None = None
    _positions: dict | None = None  # TP -> offset of the last event processed since the last seek

    def is_repeat(self, message) -> bool:
        """True if this record is the one this worker processed last on its partition, in the
        same generation, with no seek since: the same record handed over twice in a row.

        Measured with faust 0.15.3 under exactly_once after a restart: as a partition catches up,
        the last record is delivered a second time (a new Message, same offset: faust's own
        filter lets an offset equal to the last one read through), and processing it again
        commits a second copy of its outputs (4-5 duplicates per restart). Its outputs from the
        first time are in this process's producer (or its open transaction), so skipping it is
        safe. Anything wider (any offset at or below the last one) is not: it also skipped
        records that faust had dropped and re-read, and lost them.
        """
        if self._positions is None:
            self._positions = {}
        return self._positions.get(message.tp) == (message.offset, message.generation_id)

    def forget_positions(self, tps=None) -> None:
        if self._positions is None:
            return
        if tps is None:
            self._positions.clear()
        for tp in tps or ():
            self._positions.pop(tp, None)

    def mark_taken(self, event) -> None:
        """`event` was processed (its outputs may still wait in a batch): a repeat of it is skipped."""
        if self._positions is None:
            self._positions = {}
        self._positions[event.message.tp] = (event.message.offset, event.message.generation_id)

    @property
    def event_boundary_lock(self) -> asyncio.Lock:
        if self._event_boundary_lock is None:
            self._event_boundary_lock = asyncio.Lock()
        return self._event_boundary_lock

    @contextlib.asynccontextmanager
    async def event_boundary(self, stream, event):
        """Process one event with commits held off; ack it on success only.

        The agent's stream must be a `noack()` stream: an event that raises, or whose agent is
        cancelled mid-way (shutdown, rebalance), is then never acked, so its offset is not
        committed and it is processed again (faust would otherwise ack it when the iterator is
        closed — the event and its outputs lost).
        """
        async with self.event_boundary_lock:
            yield
            await stream.ack(event)
            self.mark_taken(event)

    async def on_first_start(self) -> None:
        # faust creates only the last level of its data folder; DATA_DIR may be nested.
        Path(self.conf.datadir).parent.mkdir(parents=True, exist_ok=True)
        await super().on_first_start()

    def _new_transport(self):
        return DurableTransport(self.conf.broker_consumer, self)

    def _new_producer_transport(self):
        return DurableTransport(self.conf.broker_producer, self)


def faust_app_options(settings: Settings) -> dict[str, Any]:
    """Settings → the keyword arguments of the worker's faust App (broker, store, producer, consumer)."""
    return dict(
        **faust_broker_options(settings),
        store=settings.store,
        datadir=f"{settings.data_dir}/{{conf.name}}",
        processing_guarantee=settings.processing_guarantee,
        key_serializer="raw",  # payloads are orjson bytes we encode/decode ourselves, so a bad
        value_serializer="raw",  # message reaches our code (and the DLQ) instead of faust's logs
        topic_partitions=settings.output_partitions,
        # The factor of the topics faust creates; DurableProducer.create_topic replaces it with
        # REPLICATION_FACTOR, or one from the live broker count, and adds min.insync.replicas.
        topic_replication_factor=settings.replication_factor or DEFAULT_REPLICATION_FACTOR,
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
        PartitionAssignor=FunnelAwareAssignor,  # the funnel's host analyses less
        logging_config=logging_config(settings),  # LOG_FORMAT=json: one JSON object per line
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        web_bind="0.0.0.0",
        version=1,
    )


def new_faust_app(settings: Settings) -> IngestApp:
    """The worker's faust App, configured from `settings`."""
    app = IngestApp(settings.app_id, **faust_app_options(settings))
    app.fetch_max_wait_ms = settings.consumer_fetch_max_wait_ms
    app.fetch_min_bytes = settings.consumer_fetch_min_bytes
    app.shutdown_deadline_s = settings.shutdown_deadline_s
    app.replication_factor = settings.replication_factor
    app.min_insync_replicas = settings.min_insync_replicas
    return app


def faust_broker_options(settings: Settings) -> dict[str, Any]:
    hosts = [h.strip() for h in settings.kafka_bootstrap_servers.split(",") if h.strip()]
    options: dict[str, Any] = {"broker": [f"kafka://{h}" for h in hosts]}
    credentials = None
    ssl_context = settings.ssl_context()
    if settings.security_protocol.startswith("SASL"):
        credentials = faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            mechanism=settings.sasl_mechanism,
            ssl_context=ssl_context,
        )
    elif ssl_context is not None:
        credentials = faust.SSLCredentials(ssl_context)
    if credentials is not None:
        options["broker_credentials"] = credentials
    return options
