"""IngestConsumer._new_offset: what offset faust may commit, given what was processed."""

from collections import defaultdict

from intervaltree import IntervalTree

from worker.kafka.faust_support import IngestConsumer

TP = ("articles.raw", 0)


def consumer(committed, acked, first=None, gaps=()):
    state = object.__new__(IngestConsumer)  # only the bookkeeping _new_offset reads
    state._acked = defaultdict(list, {TP: list(acked)})
    state._acked_index = defaultdict(set, {TP: set(acked)})
    state._committed_offset = defaultdict(lambda: None, {TP: committed})
    state._first_seen = {TP: first} if first is not None else {}
    state._gap = defaultdict(IntervalTree)
    for begin, end in gaps:
        state._gap[TP].addi(begin, end)
    return state


def new_offset(state):
    return IngestConsumer._new_offset(state, TP)


def test_commits_the_run_that_starts_at_the_committed_offset():
    assert new_offset(consumer(100, [100, 101, 102, 104])) == 103


def test_offsets_never_delivered_are_skipped():
    # 101 is a transaction marker between two delivered records
    assert new_offset(consumer(100, [100, 102, 103], gaps=[(101, 102)])) == 104
    # after a restart the records from the committed offset on were aborted: first delivered 140
    assert new_offset(consumer(100, [140, 141], first=140)) == 142


def test_nothing_acked_nothing_to_commit():
    assert new_offset(consumer(100, [])) is None


def test_the_consumer_thread_uses_the_configured_fetch_wait(monkeypatch):
    """faust builds its aiokafka consumer with fetch_max_wait_ms=1500; IngestConsumerThread
    replaces it (and fetch_min_bytes) with the app's settings before the consumer starts."""
    import asyncio

    from worker import app as worker_app
    from worker.kafka.faust_support import IngestConsumerThread

    monkeypatch.setattr(worker_app.app, "fetch_max_wait_ms", 35)
    monkeypatch.setattr(worker_app.app, "fetch_min_bytes", 4096)

    async def build():
        thread = worker_app.app.consumer._thread
        consumer = thread._create_worker_consumer(worker_app.app.transport)
        try:
            return type(thread), consumer._fetch_max_wait_ms, consumer._fetch_min_bytes
        finally:
            await consumer.stop()  # never started: only releases the client

    thread_type, wait_ms, min_bytes = asyncio.run(build())
    assert thread_type is IngestConsumerThread
    assert (wait_ms, min_bytes) == (35, 4096)
