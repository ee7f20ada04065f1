"""The analyse agent's batches for the dedup funnel (worker/app.py FunnelBatch), without Kafka:
what goes out per input partition, and the order events are acked in."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
import pytest

from worker import app as worker_app


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


@pytest.fixture
def sent(monkeypatch):
    out: list[tuple[bytes, bytes, int | None]] = []

    async def send(topic, key, value):
        current = worker_app._current_event.get(None)
        out.append((key, value, current().message.tp.partition if current else None))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    monkeypatch.setattr(worker_app, "send", send)
    return out


def test_one_message_per_input_partition_in_its_transaction_then_acks_in_arrival_order(sent):
    batch = worker_app.FunnelBatch(max_articles=64)
    batch.stream = stream = Stream()
    events = [event(0, 10), event(1, 5), event(0, 11), event(1, 6), event(0, 12)]
    for e in events:
        # offset 11 was dead-lettered: no article for the funnel, but acked with the others
        batch.add(e, None if e.message.offset == 11 else analysed(e))
    asyncio.run(batch.flush())

    assert [(p, [a["id"] for a in orjson.loads(v)["articles"]]) for _, v, p in sent] == [
        (0, ["a-0-10", "a-0-12"]),  # sent as partition 0's event: its transaction (exactly_once)
        (1, ["a-1-5", "a-1-6"]),
    ]
    assert [k for k, _, _ in sent] == [b"a-0-12", b"a-1-6"]  # key: the last article's id
    assert stream.acked == [(0, 10), (1, 5), (0, 11), (1, 6), (0, 12)]
    assert len(batch) == 0 and batch.size == 0 and not batch.groups


def test_a_batch_of_dead_letters_only_sends_nothing_and_acks_them(sent):
    batch = worker_app.FunnelBatch(max_articles=64)
    batch.stream = stream = Stream()
    batch.add(event(2, 1), None)
    asyncio.run(batch.flush())
    assert sent == [] and stream.acked == [(2, 1)]


def test_full_at_max_articles_or_when_the_next_article_would_pass_the_byte_cap():
    batch = worker_app.FunnelBatch(max_articles=3)
    batch.add(event(0, 1), b"x" * 100)
    batch.add(event(0, 2), None)
    assert not batch.full()
    assert batch.full(adding=worker_app.FUNNEL_BATCH_MAX_BYTES)
    batch.add(event(0, 3), b"x")
    assert batch.full()


def test_an_article_of_a_funnel_batch_is_dead_lettered_with_its_own_bytes_and_the_batch_offset(sent):
    batch_message = Message(TP("articles.dedup-requests", 0), 41, b"a-0-12", b'{"articles":[...]}')
    article = orjson.dumps({"id": "a-0-11"})
    asyncio.run(worker_app.send_dead_letter(batch_message, "unexpected_error", ValueError("boom"), "dedup",
                                            original=(b"a-0-11", article)))
    ((key, value, _),) = sent
    letter = value if isinstance(value, dict) else orjson.loads(value)
    assert key == b"articles.dedup-requests/0/41"
    assert letter["source"]["offset"] == 41 and letter["stage"] == "dedup"
    assert letter["original_key"] == {"encoding": "utf-8", "data": "a-0-11"}
    assert letter["original_value"] == {"encoding": "utf-8", "data": article.decode()}
