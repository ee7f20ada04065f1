"""The delivery protocol without Kafka (worker/delivery.py): what the analyse agent's checkpoint
sends to the funnel per input partition, the order records are acked in, and dead letters."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
import pytest

from worker import delivery
from worker.delivery import FUNNEL_BATCH_MAX_BYTES, FunnelCheckpoint, Outputs


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass
class Message:
    tp: TP
    offset: int
    key: bytes
    value: bytes = b""
    timestamp: float = 0.0

    @property
    def topic(self) -> str:
        return self.tp.topic

    @property
    def partition(self) -> int:
        return self.tp.partition


@dataclass
class Event:
    message: Message


class Stream:
    def __init__(self) -> None:
        self.acked: list[tuple[int, int]] = []

    async def ack(self, event) -> None:
        self.acked.append((event.message.tp.partition, event.message.offset))


def event(partition: int, offset: int) -> Event:
    return Event(Message(TP("articles.raw", partition), offset, f"a-{partition}-{offset}".encode()))


def analysed(e: Event) -> bytes:
    return orjson.dumps({"id": e.message.key.decode()})


class Topic:
    def __init__(self, name: str, out: list) -> None:
        self.name, self.out = name, out

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, key, value):
        current = delivery._current_event.get(None)
        self.out.append((key, value, current().message.tp.partition if current else None))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class App:
    """What the checkpoint needs of IngestApp: the event-boundary lock and the repeat check."""

    def __init__(self) -> None:
        self.event_boundary_lock = asyncio.Lock()
        self.taken: list = []

    def is_repeat(self, message) -> bool:
        return any(m.tp == message.tp and m.offset == message.offset for m in self.taken)

    def mark_taken(self, event) -> None:
        self.taken.append(event.message)


@pytest.fixture
def sent() -> list:
    return []


def checkpoint(sent: list, max_articles: int = 64, analyse_batch_articles: int = 16) -> FunnelCheckpoint:
    async def analyse(events):
        # offset 11 stands for a record that was dead-lettered: no article for the funnel
        return [None if e.message.offset == 11 else analysed(e) for e in events]

    outputs = Outputs(Topic("articles.dlq", sent))
    taken = FunnelCheckpoint(App(), outputs, Topic("articles.dedup-requests", sent), analyse,
                             analyse_batch_articles=analyse_batch_articles, max_articles=max_articles,
                             linger_s=0.005)
    taken.stream = Stream()
    return taken


def test_one_message_per_input_partition_in_its_transaction_then_acks_in_arrival_order(sent):
    batch = checkpoint(sent)
    events = [event(0, 10), event(1, 5), event(0, 11), event(1, 6), event(0, 12)]

    async def run():
        for e in events:
            await batch.take(e)
        assert sent == [] and batch.stream.acked == []  # nothing out or acked before the flush
        await batch.flush()

    asyncio.run(run())
    assert [(p, [a["id"] for a in orjson.loads(v)["articles"]]) for _, v, p in sent] == [
        (0, ["a-0-10", "a-0-12"]),  # sent as partition 0's event: its transaction (exactly_once)
        (1, ["a-1-5", "a-1-6"]),
    ]
    assert [k for k, _, _ in sent] == [b"a-0-12", b"a-1-6"]  # key: the last article's id
    assert batch.stream.acked == [(0, 10), (1, 5), (0, 11), (1, 6), (0, 12)]
    assert len(batch) == 0 and batch.size == 0 and not batch.groups and not batch.taken


def test_a_batch_of_dead_letters_only_sends_nothing_and_acks_them(sent):
    batch = checkpoint(sent)

    async def run():
        await batch.take(event(2, 11))
        await batch.flush()

    asyncio.run(run())
    assert sent == [] and batch.stream.acked == [(2, 11)]


def test_a_repeat_is_acked_in_its_place_and_not_analysed_again(sent):
    batch = checkpoint(sent)
    first = event(0, 10)

    async def run():
        await batch.take(first)
        await batch.take(Event(first.message))  # the same record handed over again
        await batch.take(event(0, 12))
        await batch.flush()

    asyncio.run(run())
    ((_, value, _),) = sent
    assert [a["id"] for a in orjson.loads(value)["articles"]] == ["a-0-10", "a-0-12"]
    assert batch.stream.acked == [(0, 10), (0, 10), (0, 12)]


def test_a_full_batch_goes_out_from_take_without_waiting_for_the_linger(sent):
    batch = checkpoint(sent, max_articles=2, analyse_batch_articles=2)

    async def run():
        for offset in (1, 2, 3):
            await batch.take(event(0, offset))

    asyncio.run(run())
    assert len(sent) == 1 and batch.stream.acked == [(0, 1), (0, 2)]
    assert [e.message.offset for e, _ in batch.taken] == [3]  # waits for the next flush


def test_full_at_max_articles_or_when_the_next_article_would_pass_the_byte_cap(sent):
    batch = checkpoint(sent, max_articles=3)
    batch.add(event(0, 1), b"x" * 100)
    batch.add(event(0, 2), None)
    assert not batch.full()
    assert batch.full(adding=FUNNEL_BATCH_MAX_BYTES)
    batch.add(event(0, 3), b"x")
    assert batch.full()


def test_an_article_of_a_funnel_batch_is_dead_lettered_with_its_own_bytes_and_the_batch_offset(sent):
    batch_message = Message(TP("articles.dedup-requests", 0), 41, b"a-0-12", b'{"articles":[...]}')
    article = orjson.dumps({"id": "a-0-11"})
    outputs = Outputs(Topic("articles.dlq", sent))
    asyncio.run(outputs.dead_letter(batch_message, "unexpected_error", ValueError("boom"), "dedup",
                                    original=(b"a-0-11", article)))
    ((key, value, _),) = sent
    letter = orjson.loads(value)
    assert key == b"articles.dedup-requests/0/41"
    assert letter["source"]["offset"] == 41 and letter["stage"] == "dedup"
    assert letter["original_key"] == {"encoding": "utf-8", "data": "a-0-11"}
    assert letter["original_value"] == {"encoding": "utf-8", "data": article.decode()}


def test_a_send_that_fails_after_the_retries_ends_the_process_before_any_commit(sent, monkeypatch):
    exits: list[int] = []
    monkeypatch.setattr(delivery.os, "_exit", exits.append)

    class FailingTopic(Topic):
        async def send(self, key, value):
            future = asyncio.get_running_loop().create_future()
            future.set_exception(RuntimeError("broker gone"))
            return future

    async def run():
        await Outputs(Topic("articles.dlq", sent)).send(FailingTopic("articles.enriched", sent), b"k", b"{}")
        await asyncio.sleep(0)  # the done-callback runs on the loop

    asyncio.run(run())
    assert exits == [delivery.EX_OUTPUT_LOST]
