"""The stages composed into the two steps the agents run, as pure functions over plain data.

    analyse(article)              normalise → language → hashing → entities → story features
                                                                             (stateless, any partition)
    analyse_batch(articles)       the same for several articles, one stage at a time (the agent's way)
    ArticleIndex.decide(analysed) dedup verdict + story cluster                 (stateful: the funnel)
    finish(analysed, decided)     → the `articles.enriched` message (+ a duplicate event)

The faust agents (worker/app.py) and the offline `ingest enrich` (`enrich_offline`) both call
exactly these, so the Kafka path and the in-process path give the same enrichment.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from topics import SCHEMA_VERSION
from worker.stages.dedup import DedupIndex, IndexRecord, Verdict
from worker.stages.entities import tag_entities
from worker.stages.hashing import hash_text, signature_from_hex
from worker.stages.language import detect_language
from worker.stages.normalise import normalise
from worker.stages.stories import StoryAssignment, StoryIndex, StoryRecord, story_features
from worker.stages.validate import Article


class StageError(RuntimeError):
    """A stage raised on this article: dead-letter it under `stage` (the worker lives on)."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.stage = stage
        self.cause = cause


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_time(article: Article, fallback: float) -> float:
    """The time the dedup window is measured in: publication, else ingestion, else `fallback`."""
    for value in (article.published_at, article.ingested_at):
        if value:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
    return fallback


def analyse(article: Article, num_perm: int, fallback_time: float | None = None) -> dict[str, Any]:
    """Run the stateless stages. Raises StageError naming the stage that failed."""
    result = analyse_batch([article], num_perm, [fallback_time])[0]
    if isinstance(result, Exception):
        raise result
    return result


class _Job:
    """One article on its way through `analyse_batch`."""

    __slots__ = ("article", "fallback_time", "timings", "error", "text", "language", "hashes",
                 "entities", "event_time", "features")

    def __init__(self, article: Article, fallback_time: float | None) -> None:
        self.article = article
        self.fallback_time = fallback_time
        self.timings: dict[str, float] = {}
        self.error: Exception | None = None


def analyse_batch(articles: Sequence[Article], num_perm: int,
                  fallback_times: Sequence[float | None] | None = None) -> list[dict[str, Any] | Exception]:
    """`analyse` for several articles, one stage at a time: each stage runs over the whole batch
    before the next starts, so its tables (language profiles, the gazetteer's automaton) are
    still in the CPU caches for the next article. Same results as one `analyse` per article;
    the whole path takes 15-25 % less time per article at 16 (BENCHMARKS.md). An article that
    failed gets its exception in its place (a StageError naming the stage, if a stage raised),
    and the others go on."""
    jobs = [_Job(a, None if fallback_times is None else fallback_times[i]) for i, a in enumerate(articles)]

    def stage(name: str, step) -> None:
        for job in jobs:
            if job.error is not None:
                continue
            start = time.perf_counter()
            try:
                step(job)
            except Exception as exc:  # noqa: BLE001 - any stage failure becomes a dead letter
                job.error = StageError(name, exc)
                job.error.__cause__ = exc
            finally:
                job.timings[name] = round((time.perf_counter() - start) * 1000, 3)

    def normalise_step(job: _Job) -> None:
        job.text = normalise(job.article.title, job.article.body)

    def language_step(job: _Job) -> None:
        job.language = detect_language(f"{job.text.title}\n{job.text.body}")

    def hashing_step(job: _Job) -> None:
        job.hashes = hash_text(job.text.body, job.language.code, num_perm)

    def entities_step(job: _Job) -> None:
        job.entities = tag_entities(job.text.body, job.language.code)

    def stories_step(job: _Job) -> None:
        # Story features need only this article, so they are computed here, in parallel, and
        # not in the one-partition funnel (whose throughput caps the pipeline's).
        job.features = story_features({e.id: e.count for e in job.entities},
                                      f"{job.text.title}\n\n{job.text.body}", job.event_time)

    stage("normalise", normalise_step)
    for job in jobs:
        if job.error is None and not job.text.body:
            job.error = StageError("normalise", ValueError("body is empty after removing boilerplate"))
    stage("language", language_step)
    stage("hashing", hashing_step)
    stage("entities", entities_step)
    for job in jobs:
        if job.error is None:
            try:
                job.event_time = event_time(job.article,
                                            time.time() if job.fallback_time is None else job.fallback_time)
            except Exception as exc:  # noqa: BLE001 - this article only
                job.error = exc
    stage("stories", stories_step)
    results: list[dict[str, Any] | Exception] = []
    for job in jobs:
        if job.error is None:
            try:
                results.append(_analysed(job))
            except Exception as exc:  # noqa: BLE001 - this article only
                results.append(exc)
        else:
            results.append(job.error)
    return results


def _analysed(job: _Job) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        **job.article.to_dict(),
        "content": {"title": job.text.title, "body": job.text.body, "removed_lines": job.text.removed_lines},
        "language": job.language.to_dict(),
        "hashes": job.hashes.to_dict(),
        "entities": [e.to_dict() for e in job.entities],
        "event_time": job.event_time,
        "story_features": job.features,
        "timings_ms": job.timings,
    }


@dataclass(frozen=True, slots=True)
class Decided:
    verdict: Verdict
    story: StoryAssignment
    redelivery: bool  # the id was decided before: this is the first answer again
    record: bytes  # the table value to persist for this article (empty for a redelivery)


class ArticleIndex:
    """The dedup funnel's state: the dedup index and the story index, persisted together as
    one small record per article id (the faust Table value), and rebuilt from those records."""

    def __init__(self, threshold: float = 0.6, num_perm: int = 126, window_s: float = 30 * 86400) -> None:
        self.dedup = DedupIndex(threshold=threshold, num_perm=num_perm, window_s=window_s)
        self.stories = StoryIndex()

    def __len__(self) -> int:
        return len(self.dedup)

    def decide(self, analysed: dict[str, Any]) -> Decided:
        minhash = analysed["hashes"]["minhash"]
        decision = self.dedup.decide(analysed["id"], analysed["hashes"]["content_hash"],
                                     signature_from_hex(minhash["signature_hex"]), minhash["shingles"],
                                     analysed["event_time"])
        known = self.stories.get(analysed["id"])
        if decision.redelivery and known is not None:
            return Decided(decision.verdict, known.assignment, True, b"")
        story = self.stories.assign_features(analysed["id"], analysed["story_features"], analysed["event_time"])
        record = {"dedup": decision.record.to_dict(), "story": self.stories.get(analysed["id"]).to_dict()}
        return Decided(decision.verdict, story, decision.redelivery, orjson.dumps(record))

    def rebuild(self, records: Iterable[bytes]) -> None:
        """Load stored records in event-time order (the order they were decided in)."""
        decoded = sorted((orjson.loads(r) for r in records if r), key=lambda d: (d["dedup"]["t"], d["dedup"]["id"]))
        for d in decoded:
            self.dedup.load(IndexRecord.from_dict(d["dedup"]))
            self.stories.load(StoryRecord.from_dict(d["story"]))

    def evict_expired(self) -> list[str]:
        """Ids whose records leave the window (delete their table keys: tombstones)."""
        self.stories.evict_expired()  # its shorter window; the record stays while dedup needs it
        return self.dedup.evict_expired()


def finish(analysed: dict[str, Any], decided: Decided, dedup_ms: float) -> tuple[dict, dict | None]:
    """The enriched message, and the duplicate event if the article is a duplicate."""
    verdict = decided.verdict
    enriched = dict(analysed)
    enriched.pop("story_features", None)  # the funnel's input; `story` below is the answer
    enriched["dedup"] = verdict.to_dict()
    enriched["story"] = decided.story.to_dict()
    enriched["timings_ms"] = {**analysed["timings_ms"], "dedup": round(dedup_ms, 3)}
    duplicate_event = None
    if verdict.status != "unique":
        duplicate_event = {
            "schema_version": SCHEMA_VERSION,
            "id": analysed["id"],
            "status": verdict.status,
            "duplicate_of": verdict.duplicate_of,
            "cluster_id": verdict.cluster_id,
            "similarity": round(verdict.similarity, 4),
            "jaccard": round(verdict.jaccard, 4),
            "containment": round(verdict.containment, 4),
            "content_hash": analysed["hashes"]["content_hash"],
            "title": analysed["title"],
            "source": analysed["source"],
            "detected_at": utc_now_iso(),
        }
    return enriched, duplicate_event


def enrich_offline(articles: Iterable[Article], index: ArticleIndex, num_perm: int) -> Iterator[dict]:
    """`ingest enrich`: the same stages in-process, dedup across the whole input, in order."""
    for article in articles:
        analysed = analyse(article, num_perm)
        start = time.perf_counter()
        decided = index.decide(analysed)
        enriched, _ = finish(analysed, decided, (time.perf_counter() - start) * 1000)
        index.evict_expired()
        yield enriched
