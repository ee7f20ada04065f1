"""What the status page shows: a bounded, in-memory view of the last minutes of this worker.

The agents report to a `StatusBoard` as they go (records in, articles decided, dead letters);
`/status.json` is its `snapshot()`, and `/status` a static page that polls it. Everything is
bounded (windows of WINDOW_S seconds, the latest N of each list), so a long-running worker's
board never grows. Each worker has its own board: the analyse side (throughput, hop latency,
lag, dead letters, stage cost) is this worker's share, and the dedup side (verdicts, duplicate
pairs, stories, languages, entities) exists only on the worker that holds the funnel partition,
which sees every article.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

WINDOW_S = 300  # the page's "last minutes"
LATEST = 10  # latest duplicate pairs and dead letters kept
TITLES_KEPT = 20_000  # recent article titles, for the duplicate pairs' originals
STORIES_KEPT = 500  # recent stories followed; the largest are shown
MEMBERS_SHOWN = 8
PREVIEW_CHARS = 160


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _first_words(text: str, chars: int = 90) -> str:
    """A title for an article that came without one: its first words."""
    line = " ".join(text.split())[:chars]
    return line if len(line) < chars else line.rsplit(" ", 1)[0] + " …"


def _preview(data: bytes | None) -> str:
    """The first characters of untrusted bytes, as text (the page escapes it again on display)."""
    if not data:
        return ""
    return data[: PREVIEW_CHARS * 4].decode("utf-8", "replace")[:PREVIEW_CHARS]


class PerSecond:
    """Counts per whole second over the last WINDOW_S seconds."""

    def __init__(self) -> None:
        self.counts: deque[list[int]] = deque()  # [second, count]

    def add(self, n: int = 1, now: float | None = None) -> None:
        second = int(time.time() if now is None else now)
        if self.counts and self.counts[-1][0] == second:
            self.counts[-1][1] += n
        else:
            self.counts.append([second, n])
        while self.counts and self.counts[0][0] <= second - WINDOW_S:
            self.counts.popleft()

    def series(self, now: float) -> list[int]:
        """Per-second counts, oldest first, for the last WINDOW_S seconds (zeros filled in)."""
        last = int(now)
        by_second = dict((s, c) for s, c in self.counts)
        return [by_second.get(s, 0) for s in range(last - WINDOW_S + 1, last + 1)]


class Samples:
    """Timestamped values over the last WINDOW_S seconds (latencies, stage costs)."""

    def __init__(self, max_samples: int = 20_000) -> None:
        self.values: deque[tuple[float, float]] = deque(maxlen=max_samples)

    def add(self, value: float, now: float) -> None:
        self.values.append((now, value))

    def recent(self, now: float, seconds: float = 60.0) -> list[float]:
        return [v for t, v in self.values if t > now - seconds]


@dataclass
class StoryView:
    story_id: str
    first_seen: float
    last_seen: float
    size: int = 0
    languages: Counter = field(default_factory=Counter)
    entities: Counter = field(default_factory=Counter)
    members: deque = field(default_factory=lambda: deque(maxlen=MEMBERS_SHOWN))


class StatusBoard:
    def __init__(self, worker: str, input_topic: str, funnel_topic: str) -> None:
        self.worker = worker
        self.input_topic = input_topic
        self.funnel_topic = funnel_topic
        self.started = time.time()
        self.records_in = PerSecond()
        self.articles_out = PerSecond()
        self.hop_latency = {"analyse": Samples(), "dedup": Samples()}
        self.stage_ms: dict[str, Samples] = {}
        self.verdicts: Counter = Counter()
        self.recent_verdicts: deque[tuple[float, str]] = deque(maxlen=20_000)
        self.languages: deque[tuple[float, str]] = deque(maxlen=20_000)
        self.entities: deque[tuple[float, str, str]] = deque(maxlen=50_000)
        self.titles: OrderedDict[str, str] = OrderedDict()
        self.duplicates: deque[dict[str, Any]] = deque(maxlen=LATEST)
        self.stories: OrderedDict[str, StoryView] = OrderedDict()
        self.dead_letters: Counter = Counter()
        self.latest_dead_letters: deque[dict[str, Any]] = deque(maxlen=LATEST)

    # -- reports from the agents ------------------------------------------------------------
    def took(self, record_timestamp: float | None, now: float | None = None) -> None:
        """An input record reached the analyse agent's stages."""
        now = time.time() if now is None else now
        self.records_in.add(1, now)
        if record_timestamp:
            self.hop_latency["analyse"].add(max(0.0, now - record_timestamp), now)

    def analysed(self, timings_ms: dict[str, float], now: float | None = None) -> None:
        now = time.time() if now is None else now
        for stage, ms in timings_ms.items():
            self.stage_ms.setdefault(stage, Samples(5_000)).add(ms, now)

    def decided(self, article: Any, verdict: Any, story: Any, redelivery: bool,
                funnel_timestamp: float | None, now: float | None = None) -> None:
        """The funnel decided `article` (records.AnalysedArticle): its verdict and story."""
        now = time.time() if now is None else now
        self.articles_out.add(1, now)
        if funnel_timestamp:
            self.hop_latency["dedup"].add(max(0.0, now - funnel_timestamp), now)
        if redelivery:
            return
        title = article.title or article.content.title or _first_words(article.content.body) or article.id
        self.titles[article.id] = title
        while len(self.titles) > TITLES_KEPT:
            self.titles.popitem(last=False)
        self.verdicts[verdict.status] += 1
        self.recent_verdicts.append((now, verdict.status))
        self.languages.append((now, article.language.code))
        for entity in article.entities:
            self.entities.append((now, entity.id, entity.canonical))
        if verdict.status != "unique":
            self.duplicates.appendleft({
                "at": now, "status": verdict.status, "similarity": round(verdict.similarity, 4),
                "jaccard": round(verdict.jaccard, 4), "containment": round(verdict.containment, 4),
                "article": {"id": article.id, "title": title, "source": article.source},
                "original": {"id": verdict.duplicate_of,
                             "title": self.titles.get(verdict.duplicate_of or "", None)},
            })
        self._story(article, story, title, now)

    def _story(self, article: Any, story: Any, title: str, now: float) -> None:
        for merged in story.merged_stories:
            old = self.stories.pop(merged, None)
            if old is not None and merged != story.story_id:
                view = self.stories.setdefault(story.story_id, StoryView(story.story_id, old.first_seen, now))
                view.size += old.size
                view.languages.update(old.languages)
                view.entities.update(old.entities)
                view.members.extend(old.members)
                view.first_seen = min(view.first_seen, old.first_seen)
        known = story.story_id in self.stories
        view = self.stories.pop(story.story_id) if known else StoryView(story.story_id, now, now)
        self.stories[story.story_id] = view  # most recently active last
        view.size += 1
        view.last_seen = now
        view.languages[article.language.code] += 1
        view.entities.update(e.canonical for e in article.entities)
        view.members.append({"id": article.id, "title": title, "language": article.language.code,
                             "source": article.source})
        while len(self.stories) > STORIES_KEPT:
            self.stories.popitem(last=False)

    def dead_letter(self, reason: str, stage: str, topic: str, partition: int, offset: int,
                    value: bytes | None, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.dead_letters[(reason, stage)] += 1
        self.latest_dead_letters.appendleft({"at": now, "reason": reason, "stage": stage,
                                             "source": f"{topic}/{partition}/{offset}",
                                             "preview": _preview(value)})

    @staticmethod
    def _percentiles_ms(seconds: list[float]) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            value = _percentile(seconds, q)
            out[name] = None if value is None else round(value * 1000, 1)
        return out

    # -- what /status.json answers ------------------------------------------------------------
    def snapshot(self, *, assigned: list[tuple[str, int]], lag: dict[str, int], ready: bool,
                 stalled: list[dict], now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        holds_funnel = any(topic == self.funnel_topic for topic, _ in assigned)
        window = now - WINDOW_S
        languages = Counter(code for t, code in self.languages if t > window)
        entities = Counter(canonical for t, _, canonical in self.entities if t > window)
        recent = Counter(status for t, status in self.recent_verdicts if t > window)
        stories = sorted((s for s in self.stories.values() if s.last_seen > window),
                         key=lambda s: (-s.size, -s.last_seen))[:10]
        return {
            "worker": self.worker,
            "now": now,
            "uptime_s": round(now - self.started, 1),
            "ready": ready,
            "stalled_partitions": stalled,
            "partitions": [{"topic": t, "partition": p} for t, p in sorted(assigned)],
            "holds_funnel": holds_funnel,
            "window_s": WINDOW_S,
            "throughput": {"in_per_s": self.records_in.series(now), "out_per_s": self.articles_out.series(now)},
            "latency_ms": {hop: self._percentiles_ms(samples.recent(now)) for hop, samples in self.hop_latency.items()},
            "consumer_lag": lag,
            "stage_ms": {stage: round(sum(values) / len(values), 3) for stage, samples in sorted(self.stage_ms.items())
                         if (values := samples.recent(now))},
            "verdicts": {"total": dict(self.verdicts), "window": dict(recent)},
            "duplicates": list(self.duplicates),
            "stories": [{"story_id": s.story_id, "size": s.size, "languages": dict(s.languages),
                         "top_entities": [name for name, _ in s.entities.most_common(5)],
                         "first_seen": s.first_seen, "last_seen": s.last_seen, "members": list(s.members)}
                        for s in stories],
            "languages": dict(languages.most_common(12)),
            "top_entities": [{"name": name, "count": n} for name, n in entities.most_common(12)],
            "dead_letters": {"by_reason": [{"reason": r, "stage": s, "count": n}
                                           for (r, s), n in self.dead_letters.most_common()],
                             "latest": list(self.latest_dead_letters)},
        }
