"""The stages composed into the two steps the agents run, as pure functions over plain data.

    analyse(article)              extract (HTML only) → normalise → language → hashing → entities → story features
                                                                             (stateless, any partition)
    analyse_batch(articles)       the same for several articles, one stage at a time (the agent's way)
                                  (+ passages: sentence fingerprints, stages/passages.py)
    ArticleIndex.decide(analysed) dedup verdict + story cluster + syndication   (stateful: the funnel)
    ArticleIndex.evict_expired()  what leaves the index by arrival age and budget (tombstones)
    finish(analysed, decided)     → the `articles.enriched` message (+ a duplicate event)

The faust agents (worker/app.py) and the offline `ingest enrich` (`enrich_offline`) both call
exactly these, so the Kafka path and the in-process path give the same enrichment.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from worker import records
from worker.records import AnalysedArticle, DuplicateEvent, EnrichedArticle
from worker.stages import dedup, entities, extract, hashing, language
from worker.stages.dedup import DedupIndex, IndexRecord, Verdict
from worker.stages.entities import Entity, tag_entities
from worker.stages.event_time import DEFAULT_MAX_FUTURE_SKEW_S, EventTime, resolve_event_time
from worker.stages.hashing import Hashes, hash_text, signature_from_hex
from worker.stages.language import LanguageResult, detect_language
from worker.stages.normalise import NormalisedText, normalise
from worker.stages.passages import PassageIndex, PassageRecord, Passages, Syndication, passage_fingerprints
from worker.stages.stories import (
    DEFAULT_RETENTION_S as DEFAULT_STORY_RETENTION_S,
)
from worker.stages.stories import StoryAssignment, StoryIndex, StoryRecord, story_features
from worker.stages.validate import Article


class StageError(RuntimeError):
    """A stage raised on this article: dead-letter it under `stage` (the worker lives on)."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.stage = stage
        self.cause = cause


def warm_up() -> None:
    """Load the language profiles, hashing tables and the gazetteer now rather than on the first article."""
    language.warm_up()
    extract.warm_up()
    hashing.warm_up()
    entities.warm_up()


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def analyse(article: Article, num_perm: int, arrival: float | None = None,
            max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S) -> AnalysedArticle:
    """Run the stateless stages. Raises StageError naming the stage that failed."""
    result = analyse_batch([article], num_perm, [arrival], max_future_skew_s)[0]
    if isinstance(result, Exception):
        raise result
    return result


class _Job:
    """One article on its way through `analyse_batch`."""

    __slots__ = ("article", "arrival", "timings", "error", "text", "language", "hashes",
                 "entities", "event_time", "features", "passages")
    # Set by the stages, in this order (a stage runs only once the ones before it succeeded).
    text: NormalisedText
    language: LanguageResult
    hashes: Hashes
    passages: Passages
    entities: list[Entity]
    event_time: EventTime
    features: dict[str, float]

    def __init__(self, article: Article, arrival: float | None) -> None:
        self.article = article
        self.arrival = arrival
        self.timings: dict[str, float] = {}
        self.error: Exception | None = None


def analyse_batch(articles: Sequence[Article], num_perm: int,
                  arrivals: Sequence[float | None] | None = None,
                  max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S) -> list[AnalysedArticle | Exception]:
    """`analyse` for several articles, one stage at a time: each stage runs over the whole batch
    before the next starts, so its tables (language profiles, the gazetteer's automaton) are
    still in the CPU caches for the next article. Same results as one `analyse` per article;
    the whole path takes 15-25 % less time per article at 16 (BENCHMARKS.md). `arrivals`: the
    wall clock when each article was taken (default: now), which bounds its event time
    (stages/event_time.py). An article that
    failed gets its exception in its place (a StageError naming the stage, if a stage raised),
    and the others go on."""
    jobs = [_Job(a, None if arrivals is None else arrivals[i]) for i, a in enumerate(articles)]

    def stage(name: str, step, applies=None) -> None:
        for job in jobs:
            if job.error is not None or (applies is not None and not applies(job)):
                continue
            start = time.perf_counter()
            try:
                step(job)
            except Exception as exc:  # noqa: BLE001 - any stage failure becomes a dead letter
                job.error = StageError(name, exc)
                job.error.__cause__ = exc
            finally:
                job.timings[name] = round((time.perf_counter() - start) * 1000, 3)

    def has_html(job: _Job) -> bool:
        return extract.has_html(job.article)

    def extract_step(job: _Job) -> None:
        # HTML in, text out (stages/extract.py). Only articles with HTML run it (and have an
        # "extract" timing): for plain text the check is one `find("<")`.
        job.article = extract.extract_article(job.article)

    def normalise_step(job: _Job) -> None:
        job.text = normalise(job.article.title, job.article.body)

    def language_step(job: _Job) -> None:
        job.language = detect_language(f"{job.text.title}\n{job.text.body}")

    def hashing_step(job: _Job) -> None:
        job.hashes = hash_text(job.text.body, job.language.code, num_perm)

    def passages_step(job: _Job) -> None:
        # Sentence fingerprints, here and not in the funnel, which only looks them up.
        job.passages = passage_fingerprints(job.text.body)

    def entities_step(job: _Job) -> None:
        job.entities = tag_entities(job.text.body, job.language.code)

    def stories_step(job: _Job) -> None:
        # Story features need only this article, so they are computed here, in parallel, and
        # not in the one-partition funnel (whose throughput caps the pipeline's).
        job.features = story_features({e.id: e.count for e in job.entities},
                                      f"{job.text.title}\n\n{job.text.body}", job.event_time.value)

    stage("extract", extract_step, has_html)
    stage("normalise", normalise_step)
    for job in jobs:
        if job.error is None and not job.text.body:
            job.error = StageError("normalise", ValueError("body is empty after removing boilerplate"))
    stage("language", language_step)
    stage("hashing", hashing_step)
    stage("passages", passages_step)
    stage("entities", entities_step)
    for job in jobs:
        if job.error is None:
            try:
                job.event_time = resolve_event_time(job.article.published_at, job.article.ingested_at,
                                                    time.time() if job.arrival is None else job.arrival,
                                                    max_future_skew_s, url=job.article.url,
                                                    text=job.text.body)
            except Exception as exc:  # noqa: BLE001 - this article only
                job.error = exc
    stage("stories", stories_step)
    results: list[AnalysedArticle | Exception] = []
    for job in jobs:
        if job.error is None:
            try:
                results.append(_analysed(job))
            except Exception as exc:  # noqa: BLE001 - this article only
                results.append(exc)
        else:
            results.append(job.error)
    return results


def _analysed(job: _Job) -> AnalysedArticle:
    article, language, hashes, event_time = job.article, job.language, job.hashes, job.event_time
    return AnalysedArticle(
        id=article.id, title=article.title, body=article.body, source=article.source, url=article.url,
        published_at=article.published_at, ingested_at=article.ingested_at, metadata=article.metadata,
        id_source=article.id_source, body_format=article.body_format,
        content=records.Content(job.text.title, job.text.body, job.text.removed_lines),
        language=records.Language(language.code, language.confidence,
                                  [records.LanguageCandidate(c, p) for c, p in language.candidates]),
        hashes=records.Hashes(hashes.content_hash, records.MinHash(**hashes.to_dict()["minhash"])),
        entities=[records.Entity(e.text, e.label, e.canonical, e.id, e.start, e.end, e.count)
                  for e in job.entities],
        event_time=records.EventTime(**event_time.to_dict()),
        story_features=job.features,
        timings_ms=job.timings,
        passages=records.Passages(list(job.passages.fingerprints), list(job.passages.sentences),
                                  list(job.passages.quoted), job.passages.total, list(job.passages.paragraphs)),
    )


@dataclass(frozen=True, slots=True)
class Decided:
    verdict: Verdict
    story: StoryAssignment
    redelivery: bool  # the id was decided before: this is the first answer again
    record: bytes  # the table value to persist for this article (empty for a redelivery)
    syndication: Syndication | None = None  # shared passages (None: the article carried no passages)


@dataclass(frozen=True, slots=True)
class IndexEviction:
    """What `ArticleIndex.evict_expired` changed in the table, and why."""

    delete: list[str]  # ids with nothing left in the index: delete their keys (tombstones)
    rewrite: dict[str, bytes]  # ids with one part left (dedup or story): the record to store now
    by_age: int  # dedup entries past the retention since arrival
    by_budget: int  # dedup entries beyond the memory budget (oldest arrivals)
    story_records: int  # story records that left with their stories


class ArticleIndex:
    """The dedup funnel's state: the dedup index and the story index, persisted together as
    one small record per article id (the faust Table value), and rebuilt from those records.

    Both indexes keep what arrived within their retention (and budget), whatever its event
    time. Arrival times come from the index's own clock (`now`, made strictly increasing), so
    sorting the records by arrival replays the decisions in the order they were made: the
    rebuilt index decides exactly as the one before the restart.

    `stored`: the table's current value of an article id, for an owner that keeps the table (the
    worker). The story features, the bulk of a record, then stay in the table and not in memory
    (issue 24); a record rewritten by an eviction takes them from there.

    Snapshots (worker/snapshot.py): `state` is the whole index as arrays and plain values,
    `restore` puts one back, and `apply_change` brings a restored index up to the changelog
    records written after it; `StaleState` says the snapshot cannot be brought up to the table.
    """

    def __init__(self, threshold: float = dedup.DEFAULT_THRESHOLD, num_perm: int = dedup.DEFAULT_NUM_PERM,
                 retention_s: float = dedup.DEFAULT_RETENTION_S, max_articles: int = dedup.DEFAULT_MAX_ARTICLES,
                 story_retention_s: float = DEFAULT_STORY_RETENTION_S,
                 stored: Callable[[str], bytes | None] | None = None) -> None:
        self._params = {"threshold": threshold, "num_perm": num_perm, "retention_s": retention_s,
                        "max_articles": max_articles, "story_retention_s": min(story_retention_s, retention_s)}
        self._features_of = None if stored is None else _stored_story_features(stored)
        self._record_types: dict[str, Any] = {}  # other parts' record types, from a snapshot (`restore`)
        self._new_dedup = lambda: DedupIndex(threshold=threshold, num_perm=num_perm, retention_s=retention_s,
                                             max_articles=max_articles)
        self._new_stories = lambda: StoryIndex(retention_s=min(story_retention_s, retention_s),
                                               max_records=max_articles, features_of=self._features_of)
        self._new_passages = lambda: PassageIndex(retention_s=retention_s, max_articles=max_articles)
        self.dedup = self._new_dedup()
        self.stories = self._new_stories()
        self.passages = self._new_passages()
        self._last_arrival = float("-inf")

    def __len__(self) -> int:
        return len(self.dedup)

    def _arrival(self, now: float | None) -> float:
        now = time.time() if now is None else now
        self._last_arrival = max(now, self._last_arrival + 1e-6)  # strictly increasing: the decision order
        return self._last_arrival

    def decide(self, analysed: AnalysedArticle, now: float | None = None) -> Decided:
        minhash = analysed.hashes.minhash
        event_time = analysed.event_epoch
        known_dedup = self.dedup.get(analysed.id)
        known = self.stories.get(analysed.id)
        if known_dedup is not None and known is not None:
            known_passages = self.passages.get(analysed.id)
            return Decided(known_dedup.verdict, known.assignment, True, b"",
                           None if known_passages is None else known_passages.result)
        arrival = self._arrival(now)
        decision = self.dedup.decide(analysed.id, analysed.hashes.content_hash,
                                     signature_from_hex(minhash.signature_hex), minhash.shingles,
                                     event_time, arrival)
        story = self.stories.assign_features(analysed.id, analysed.story_features, event_time, arrival)
        syndication = None
        if analysed.passages is not None:
            p = analysed.passages
            syndication = self.passages.decide(
                analysed.id, Passages(tuple(p.fingerprints), tuple(p.sentences), tuple(p.quoted), p.total,
                                      tuple(p.paragraphs)),
                arrival, event_time)
        return Decided(decision.verdict, story, decision.redelivery, self._record(analysed.id), syndication)

    def _record(self, article_id: str) -> bytes:
        """The table value for this id: what is left of it in either index (b"" if nothing)."""
        dedup, story = self.dedup.get(article_id), self.stories.get(article_id)
        passages = self.passages.get(article_id)
        if dedup is None and story is None and passages is None:
            return b""
        return records.encode_table_record(None if dedup is None else dedup.to_dict(),
                                           None if story is None else story.to_dict(),
                                           None if passages is None else passages.to_dict())

    def rebuild(self, stored: Iterable[bytes], now: float | None = None) -> None:
        """Replace the index's content by the stored records, loaded in the order they were
        decided (by arrival). Records of version 1 (no arrival times, written before this
        version) load first, in event-time order, as if they had arrived `now`: they stay a
        whole retention period after an upgrade."""
        now = time.time() if now is None else now
        self.dedup, self.stories, self._last_arrival = self._new_dedup(), self._new_stories(), float("-inf")
        self.passages = self._new_passages()
        decoded = [records.decode_table_record(r) for r in stored if r]

        def order(record: records.TableRecord) -> tuple:
            part = record.dedup or record.story or record.passages or {}
            return ("a" in part, part.get("a", 0.0), part["t"], part["id"])

        for record in sorted(decoded, key=order):
            if record.dedup:
                self.dedup.load(IndexRecord.from_dict(record.dedup, default_arrival=now))
            if record.story:
                self.stories.load(StoryRecord.from_dict(record.story, default_arrival=now))
            if record.passages:
                self.passages.load(PassageRecord.from_dict(record.passages, default_arrival=now))
            part = record.dedup or record.story or record.passages or {}
            self._last_arrival = max(self._last_arrival, float(part.get("a", now)))

    def evict_expired(self, now: float | None = None) -> IndexEviction:
        """Let go of what arrived longer ago than the retentions, or is beyond the budget: a
        key whose both parts left is deleted; one with a part left is rewritten with that part,
        so the table always holds exactly what a rebuild needs."""
        now = time.time() if now is None else now
        story_ids = self.stories.evict_expired(now)
        dedup = self.dedup.evict_expired(now)
        passage_ids = self.passages.evict_expired(now)
        delete, rewrite = [], {}
        for article_id in dict.fromkeys([*dedup.ids, *story_ids, *passage_ids]):
            record = self._record(article_id)
            if record:
                rewrite[article_id] = record
            else:
                delete.append(article_id)
        return IndexEviction(delete, rewrite, dedup.by_age, dedup.by_budget, len(story_ids))

    # -- snapshots (worker/snapshot.py) --------------------------------------------------------

    def params(self) -> dict[str, float]:
        """The settings this index decides with: a snapshot taken under other ones is stale."""
        return dict(self._params)

    def articles(self) -> int:
        """Distinct ids held by any of the indexes: the number of keys the table holds."""
        extra = [part._records for part in self._other_parts().values()]
        if not extra:
            return len(self.dedup) + sum(1 for article_id in self.stories.ids() if article_id not in self.dedup)
        return len({*self.dedup.ids(), *self.stories.ids(), *(k for records_ in extra for k in records_)})

    def _other_parts(self) -> dict[str, Any]:
        """Indexes besides dedup and stories (each the part of the table record of its name)."""
        return {name: part for name, part in vars(self).items()
                if name not in ("dedup", "stories") and hasattr(part, "evict_expired")}

    def state(self) -> dict:
        """The whole index as numpy arrays and plain values (not copies: write them out before
        the index changes again). Raises StaleState if a part cannot be snapshotted.

        Another index part (one added beside dedup and stories) is kept pickled, with the type of
        its records, if it has what `rebuild`'s parts have: `_records` (id -> a record with
        `to_dict` / `from_dict`), `load(record)`, `_remove(id)`."""
        other = {}
        for name, part in self._other_parts().items():
            records_ = getattr(part, "_records", None)
            if not isinstance(records_, dict) or not hasattr(part, "load") or not hasattr(part, "_remove"):
                raise StaleState(f"no snapshot support for the {name} index")
            kind = type(next(iter(records_.values()))) if records_ else None
            other[name] = pickle.dumps((part, kind), protocol=pickle.HIGHEST_PROTOCOL)
        return {"params": self.params(), "last_arrival": self._last_arrival,
                "dedup": self.dedup.state(), "stories": self.stories.state(), "other": other}

    def restore(self, state: dict) -> None:
        """Replace the index's content by a `state()` (of an index with the same params)."""
        if state["params"] != self.params():
            raise StaleState(f"made with other settings: {state['params']} (now {self.params()})")
        strings: dict[str, str] = {}  # one object per article id, shared by both indexes
        self.dedup = DedupIndex.from_state(state["dedup"], strings)
        self.stories = StoryIndex.from_state(state["stories"], strings, self._features_of)
        self._last_arrival = float(state["last_arrival"])
        self._record_types = {}
        for name, blob in state.get("other", {}).items():
            part, self._record_types[name] = pickle.loads(blob)  # written by this worker (see state)
            setattr(self, name, part)

    def apply_change(self, article_id: str, value: bytes | None, now: float | None = None,
                     gone: set[str] | None = None) -> None:
        """Bring the index up to one changelog record written after its snapshot (records in
        changelog order): a new decision is loaded as `rebuild` loads it; a part that is gone
        (an eviction's tombstone or rewrite) leaves as the eviction made it leave (a story whole).
        Raises StaleState for a record that cannot follow the index's state. `gone`: the ids
        that left with a story so far in this catch-up (their own records follow), kept here."""
        record = records.decode_table_record(value) if value else None
        fields = {} if record is None else {k: v for k, v in msgspec.structs.asdict(record).items() if k != "v"}
        dedup_part, story_part = fields.pop("dedup", None), fields.pop("story", None)
        others = self._other_parts()
        if any(v for k, v in fields.items() if k not in others):
            raise StaleState(f"{article_id!r}: a record part the snapshot cannot follow")
        in_dedup, in_stories = article_id in self.dedup, article_id in self.stories
        in_other = {name: article_id in part._records for name, part in others.items()}
        if not in_dedup and not in_stories and not any(in_other.values()):
            if not dedup_part and not story_part and not any(fields.values()):
                if gone is not None and article_id in gone:
                    return  # its story left with an earlier record of this eviction
                raise StaleState(f"{article_id!r} deleted, but not in the snapshot")
            now = time.time() if now is None else now
            if dedup_part:
                self.dedup.load(IndexRecord.from_dict(dedup_part, default_arrival=now))
            if story_part:
                self.stories.load(StoryRecord.from_dict(story_part, default_arrival=now))
            for name, part_d in fields.items():
                if part_d:
                    kind = self._record_types.get(name)
                    if kind is None:
                        raise StaleState(f"{article_id!r}: no record type known for the {name} index")
                    others[name].load(kind.from_dict(part_d, default_arrival=now))
            part = dedup_part or story_part or next((v for v in fields.values() if v), None) or {}
            self._last_arrival = max(self._last_arrival, float(part.get("a", now)))
            return
        if (dedup_part and not in_dedup) or (story_part and not in_stories) or \
                any(fields.get(name) and not held for name, held in in_other.items()):
            raise StaleState(f"{article_id!r}: the changelog adds a part the snapshot does not hold")
        if in_dedup and not dedup_part:
            self.dedup.remove([article_id])
        if in_stories and not story_part:
            left = self.stories.remove([article_id])
            if gone is not None:
                gone.update(left)
        for name, held in in_other.items():
            if held and not fields.get(name):
                others[name]._remove(article_id)


class StaleState(ValueError):
    """A snapshot that cannot be made the table's state (other settings, a changelog that does
    not continue it): rebuild from the table instead."""


def _stored_story_features(stored: Callable[[str], bytes | None]) -> Callable[[str], list[tuple[str, float]] | None]:
    """The story features of an article as its stored table record has them."""

    def features_of(article_id: str) -> list[tuple[str, float]] | None:
        value = stored(article_id)
        story = records.decode_table_record(value).story if value else None
        return None if story is None else [(str(k), float(v)) for k, v in story["f"]]

    return features_of


def new_article_index(settings, stored: Callable[[str], bytes | None] | None = None) -> ArticleIndex:
    """The index as `settings` (worker.config.Settings) configure it: the worker's and `ingest enrich`'s.
    `stored`: see ArticleIndex (the worker passes its table)."""
    return ArticleIndex(threshold=settings.dedup_threshold, num_perm=settings.minhash_permutations,
                        retention_s=settings.dedup_retention.total_seconds(),
                        max_articles=settings.dedup_max_articles,
                        story_retention_s=settings.story_retention.total_seconds(), stored=stored)


def finish(analysed: AnalysedArticle, decided: Decided,
           dedup_ms: float) -> tuple[EnrichedArticle, DuplicateEvent | None]:
    """The enriched message, and the duplicate event if the article is a duplicate."""
    verdict = decided.verdict
    a = analysed
    enriched = EnrichedArticle(
        id=a.id, title=a.title, body=a.body, source=a.source, url=a.url, published_at=a.published_at,
        ingested_at=a.ingested_at, metadata=a.metadata, id_source=a.id_source, body_format=a.body_format,
        content=a.content, language=a.language,
        hashes=a.hashes, entities=a.entities, event_time=a.event_time,
        timings_ms={**a.timings_ms, "dedup": round(dedup_ms, 3)},
        dedup=verdict.to_dict(), story=decided.story.to_dict(),
        syndication=None if decided.syndication is None else decided.syndication.to_dict())
    related = decided.syndication if decided.syndication and decided.syndication.relation else None
    if verdict.status == "unique":
        if related is None:
            return enriched, None
        # Not a near-duplicate of the whole text, but a reprint of passages: its own event.
        return enriched, DuplicateEvent(
            id=a.id, status=related.relation or "", duplicate_of=related.of, cluster_id=verdict.cluster_id,
            similarity=round(max(related.share, related.share_of_other), 4), jaccard=0.0, containment=0.0,
            merged_clusters=[], content_hash=a.hashes.content_hash, title=a.title, source=a.source,
            detected_at=utc_now_iso(), syndication=related.to_dict())
    return enriched, DuplicateEvent(
        id=a.id, status=verdict.status, duplicate_of=verdict.duplicate_of, cluster_id=verdict.cluster_id,
        similarity=round(verdict.similarity, 4), jaccard=round(verdict.jaccard, 4),
        containment=round(verdict.containment, 4), merged_clusters=list(verdict.merged_clusters),
        content_hash=a.hashes.content_hash, title=a.title, source=a.source, detected_at=utc_now_iso(),
        syndication=None if related is None else related.to_dict())


def enrich_offline(articles: Iterable[Article], index: ArticleIndex, num_perm: int,
                   max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S) -> Iterator[dict[str, Any]]:
    """`ingest enrich`: the same stages in-process, dedup across the whole input, in order
    (each enriched article as the JSON-ready dict the worker would publish)."""
    for article in articles:
        analysed = analyse(article, num_perm, None, max_future_skew_s)
        start = time.perf_counter()
        decided = index.decide(analysed)
        enriched, _ = finish(analysed, decided, (time.perf_counter() - start) * 1000)
        index.evict_expired()
        yield msgspec.to_builtins(enriched)
