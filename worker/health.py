"""Liveness: is every input partition of this worker making progress?

faust-streaming 0.15.3 can stop consuming a partition without an error (faust-streaming#175,
#640, #532): the process is up, the partition has input, and nothing happens. `/health/live`
answers 503 then, so the orchestrator restarts the worker.
"""

from __future__ import annotations

import time
from typing import Any

from worker import metrics


class Progress:
    """When each input partition last had a record handled, and which ones stalled."""

    def __init__(self, app: Any, input_topics: set[str]) -> None:
        self.app = app
        self.input_topics = input_topics
        self.last: dict[Any, float] = {}
        self.lag: dict[str, int] = {}  # "topic/partition" -> records not yet committed, as last seen

    def mark(self, tp: Any) -> None:
        self.last[tp] = time.monotonic()

    def reset(self, assigned: set) -> None:
        """Newly assigned partitions: not "stalled" for the time before they were ours."""
        for tp in assigned:
            self.mark(tp)

    def stalled(self, timeout: float) -> list[dict]:
        """Partitions with input waiting and no record handled for `timeout` seconds (and the
        consumer lag gauge of every input partition, refreshed on the way)."""
        consumer = self.app.consumer
        if consumer is None or self.app.rebalancing:
            return []
        # Under exactly_once the high-water mark is the last stable offset, one past the final
        # transaction marker, which the committed offset never passes while idle.
        slack = 1 if self.app.in_transaction else 0
        now = time.monotonic()
        found = []
        for tp in consumer.assignment():
            if tp.topic not in self.input_topics:
                continue
            try:
                highwater = consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - no fetch yet / consumer restarting
                continue
            committed = consumer._committed_offset.get(tp) or 0
            if highwater is not None:
                lag = max(0, highwater - committed - slack)
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
                self.lag[f"{tp.topic}/{tp.partition}"] = lag
            idle = now - self.last.setdefault(tp, now)
            if highwater is not None and highwater - committed > slack and idle > timeout:
                found.append({"topic": tp.topic, "partition": tp.partition, "lag": highwater - committed,
                              "idle_s": round(idle, 1)})
        return found
