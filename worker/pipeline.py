"""The stages composed into the two steps the agents run, as pure functions over plain data.

    analyse(article)            normalise → language → hashing → entities   (stateless, any partition)
    finish(analysed, verdict)   + dedup verdict → the `articles.enriched` message (+ a duplicate event)

The faust agents (worker/app.py) and the offline `ingest enrich` (`enrich_offline`) both call
exactly these, so the Kafka path and the in-process path give the same enrichment.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from topics import SCHEMA_VERSION
from worker.stages.dedup import DedupIndex, Verdict
from worker.stages.entities import tag_entities
from worker.stages.hashing import hash_text, signature_from_hex
from worker.stages.language import detect_language
from worker.stages.normalise import normalise
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
    timings: dict[str, float] = {}

    def timed(stage: str, fn, *args):
        start = time.perf_counter()
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - any stage failure becomes a dead letter
            raise StageError(stage, exc) from exc
        finally:
            timings[stage] = round((time.perf_counter() - start) * 1000, 3)

    text = timed("normalise", normalise, article.title, article.body)
    if not text.body:
        raise StageError("normalise", ValueError("body is empty after removing boilerplate"))
    language = timed("language", detect_language, f"{text.title}\n{text.body}")
    hashes = timed("hashing", hash_text, text.body, language.code, num_perm)
    entities = timed("entities", tag_entities, text.body, language.code)
    return {
        "schema_version": SCHEMA_VERSION,
        **article.to_dict(),
        "content": {"title": text.title, "body": text.body, "removed_lines": text.removed_lines},
        "language": language.to_dict(),
        "hashes": hashes.to_dict(),
        "entities": [e.to_dict() for e in entities],
        "event_time": event_time(article, time.time() if fallback_time is None else fallback_time),
        "timings_ms": timings,
    }


def decide(index: DedupIndex, analysed: dict[str, Any]):
    """Ask the dedup index about an analysed article (the stateful step)."""
    minhash = analysed["hashes"]["minhash"]
    return index.decide(analysed["id"], analysed["hashes"]["content_hash"],
                        signature_from_hex(minhash["signature_hex"]), minhash["shingles"],
                        analysed["event_time"])


def finish(analysed: dict[str, Any], verdict: Verdict, dedup_ms: float) -> tuple[dict, dict | None]:
    """The enriched message, and the duplicate event if the article is a duplicate."""
    enriched = dict(analysed)
    enriched["dedup"] = verdict.to_dict()
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


def enrich_offline(articles: Iterable[Article], index: DedupIndex, num_perm: int) -> Iterator[dict]:
    """`ingest enrich`: the same stages in-process, dedup across the whole input, in order."""
    for article in articles:
        analysed = analyse(article, num_perm)
        start = time.perf_counter()
        decision = decide(index, analysed)
        enriched, _ = finish(analysed, decision.verdict, (time.perf_counter() - start) * 1000)
        index.evict_expired()
        yield enriched
