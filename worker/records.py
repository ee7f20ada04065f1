"""The records that travel between the agents and over Kafka, defined once (msgspec Structs).

    AnalysedArticle   an article after the stateless stages: what the analyse agent sends to
                      the funnel (`FunnelBatch`, on articles.dedup-requests)
    EnrichedArticle   the articles.enriched message: the analysed article with its verdict and story
    DuplicateEvent    the articles.duplicates message
    TableRecord       the dedup table's value per article id, versioned (`encode_table_record`)

The JSON they encode to is what topics/schemas/ describes (tests/unit/test_records.py checks
it). The stages keep their own result types (numpy arrays, tuples); `pipeline.py` converts.
"""

from __future__ import annotations

from typing import Any

import msgspec

from topics import SCHEMA_VERSION


class Content(msgspec.Struct, frozen=True):
    title: str
    body: str
    removed_lines: int


class LanguageCandidate(msgspec.Struct, frozen=True):
    code: str
    prob: float


class Language(msgspec.Struct, frozen=True):
    code: str
    confidence: float
    candidates: list[LanguageCandidate]


class MinHash(msgspec.Struct, frozen=True):
    num_perm: int
    seed: int
    shingles: int
    signature_hex: str  # num_perm little-endian uint32 values


class Hashes(msgspec.Struct, frozen=True):
    content_hash: str
    minhash: MinHash


class Entity(msgspec.Struct, frozen=True):
    text: str
    label: str
    canonical: str
    id: str
    start: int
    end: int
    count: int


class EventTime(msgspec.Struct, frozen=True):
    value: str | None
    epoch: float
    source: str  # published | ingested | clamped | url | dateline (stages/event_time.py)
    warning: str | None


class Passages(msgspec.Struct, frozen=True):
    """The body's sentence fingerprints (stages/passages.py): the funnel's input for syndication."""

    fingerprints: list[int]  # 52-bit, distinct, in body order
    sentences: list[int]  # the sentence index of each fingerprint in content.body
    quoted: list[int]  # sentence indexes (among `sentences`) that are mostly quotation
    total: int  # sentences in content.body, short ones included
    paragraphs: list[int] = msgspec.field(default_factory=list)  # the paragraph index of each fingerprint


class ArticleParts(msgspec.Struct, kw_only=True):
    """What the analysed article and the enriched message both carry: the input and its analysis."""

    schema_version: int = SCHEMA_VERSION
    id: str
    title: str
    body: str
    source: str
    url: str
    published_at: str | int | float | None
    ingested_at: str | int | float | None
    metadata: dict[str, Any]
    content: Content
    language: Language
    hashes: Hashes
    entities: list[Entity]
    # Schema 1 (before event_time was an object) carried the bare epoch: still read at upgrade.
    event_time: EventTime | float
    timings_ms: dict[str, float]  # per stage
    # Where the id came from: sent | key | url | content (the last two: derived, stages/ids.py).
    id_source: str = "sent"
    body_format: str = "text"  # html: body and content were extracted from HTML (stages/extract.py)


class AnalysedArticle(ArticleParts, kw_only=True):
    """An article after normalise → language → hashing → entities → event time → story features."""

    story_features: dict[str, float]  # the funnel's input for story clustering (stages/stories/)
    # Sentence fingerprints for the passage index; absent in records of earlier versions (no
    # syndication evidence for those articles).
    passages: Passages | None = None

    @property
    def event_epoch(self) -> float:
        value = self.event_time
        return value if isinstance(value, float | int) else value.epoch


class FunnelBatch(msgspec.Struct):
    """One articles.dedup-requests message: analysed articles of one input partition, in order."""

    articles: list[AnalysedArticle]


class EnrichedArticle(ArticleParts, kw_only=True):
    """The articles.enriched message: the analysed article's parts, its verdict and its story."""

    dedup: dict[str, Any]  # stages.dedup.Verdict.to_dict()
    story: dict[str, Any]  # stages.stories.StoryAssignment.to_dict()
    # stages.passages.Syndication.to_dict(): shared passages with an earlier article (reprint_of /
    # shares_passages_with) and why a relation was or was not drawn; None without passages.
    syndication: dict[str, Any] | None = None


class DuplicateEvent(msgspec.Struct, kw_only=True):
    schema_version: int = SCHEMA_VERSION
    id: str
    status: str  # exact_duplicate | near_duplicate | reprint_of | shares_passages_with (syndication only)
    duplicate_of: str | None
    cluster_id: str | None
    similarity: float
    jaccard: float
    containment: float
    merged_clusters: list[str]
    content_hash: str
    title: str
    source: str
    detected_at: str
    syndication: dict[str, Any] | None = None  # the article's passage relation, when one was drawn


TABLE_RECORD_VERSION = 2  # 1: no "v" field and no arrival times (read as arriving at the rebuild)


class TableRecord(msgspec.Struct, omit_defaults=False):
    """What the dedup table keeps per article id: the part of it each index still holds
    (stages.dedup.IndexRecord / stages.stories.StoryRecord as dicts), or None."""

    dedup: dict[str, Any] | None
    story: dict[str, Any] | None
    v: int = 1  # records written before versioning have no "v": they decode as version 1
    passages: dict[str, Any] | None = None  # stages.passages.PassageRecord; absent in older records


_encoder = msgspec.json.Encoder()
_funnel_batch = msgspec.json.Decoder(FunnelBatch)
_analysed = msgspec.json.Decoder(AnalysedArticle)
_table_record = msgspec.json.Decoder(TableRecord)


def encode(record: msgspec.Struct | dict[str, Any]) -> bytes:
    return _encoder.encode(record)


def decode_funnel_batch(data: bytes) -> FunnelBatch:
    return _funnel_batch.decode(data)


def decode_analysed(data: bytes) -> AnalysedArticle:
    """One analysed article (bench/ times the funnel's decoding per article with it)."""
    return _analysed.decode(data)


def encode_table_record(dedup: dict[str, Any] | None, story: dict[str, Any] | None,
                        passages: dict[str, Any] | None = None) -> bytes:
    return _encoder.encode(TableRecord(dedup, story, TABLE_RECORD_VERSION, passages))


def decode_table_record(data: bytes) -> TableRecord:
    return _table_record.decode(data)
