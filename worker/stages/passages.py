"""Shared passages: reprints found by the sentences they share, not by whole-text similarity.

Wire copies are rarely whole: one outlet runs the first paragraphs, another adds its own intro,
another an earlier version of the story. MinHash LSH selects candidates by Jaccard, and a short
copy inside a long one has a low Jaccard; the sentences it kept are still there word for word.

`passage_fingerprints(body)` (stateless, computed by the analyse agent) splits the normalised
body into sentences, folds each (case, punctuation, spacing) and keeps a 52-bit fingerprint of
every sentence of at least `MIN_WORDS` words (16 characters for text written without spaces). A
sentence that is mostly inside quotation marks is flagged *quoted*.

`PassageIndex` (the funnel's state, beside the dedup and story indexes) keeps postings
fingerprint → article ids, so its candidates are the articles sharing at least one sentence
whatever their Jaccard (a copy contained in another is found however short it is). For each
candidate B of an article A, the shared passages are counted, and some of them are set aside:

* quoted passages — a statement quoted by two outlets is not a reprint;
* common passages — a passage that A also shares with at least `COMMON_ARTICLES` other indexed
  articles that are unrelated to A by their overlap (their shared passages are a small part of
  both texts), or whose posting is full (`max_postings` articles: boilerplate). That is the
  passage's document frequency among articles that are not copies of each other: an official
  statement or a hurricane advisory that many independent articles carry.

What is left is the evidence. A relation is drawn to the best candidate when the evidence has at
least `min_shared` passages and covers at least `min_share` of the shorter side's passages, or
has `many` passages whatever the share:

* `reprint_of`            at least half of A's passages are in B (A is a copy or excerpt of B);
* `shares_passages_with`  a smaller part (A is a longer version or quotes a block of B).

The result says why a relation was or was not drawn (`reason`) and which passages: A's sentence
indexes and B's. Retention and budget follow the dedup index (since arrival, oldest out first);
the index is rebuilt from each article's `PassageRecord.to_dict()`.
"""

from __future__ import annotations

import heapq
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

import numpy as np
import xxhash

MIN_WORDS = 8  # a sentence shorter than this is too common to be evidence ("He said no.")
MIN_UNSPACED_CHARS = 16  # the same for Chinese / Japanese / Thai (no spaces between words)
FINGERPRINT_BITS = 52  # exact in a JSON number (JavaScript's doubles too)
DEFAULT_MIN_SHARED = 2
DEFAULT_MIN_SHARE = 0.3
DEFAULT_MANY = 5
DEFAULT_MAX_POSTINGS = 32
COMMON_ARTICLES = 2
MAX_RELATED_SENTENCES = 64  # the indexes listed in the output (the counts are always complete)

Relation = Literal["reprint_of", "shares_passages_with"]

# A sentence ends at . ! ? … (and their full-width forms) followed by a space or a closing mark,
# or at a full-width stop directly; paragraphs always end one.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’»)\]]*\s+|(?<=[。！？])[」』”’)]*\s*")
_WORD = re.compile(r"\w+")
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\u0e00-\u0e7f\uac00-\ud7af]")
_OPEN_QUOTES = "\"“„«‘'「『‹"
_QUOTE_SPAN = re.compile(r"[\"“„«「『‹]([^\"”“«»「」『』‹›]{12,})[\"”“»」』›]")
_MASK = (1 << FINGERPRINT_BITS) - 1


@dataclass(frozen=True, slots=True)
class Passages:
    """The fingerprints of one body's sentences (only those long enough to be evidence)."""

    fingerprints: tuple[int, ...]  # distinct, in body order
    sentences: tuple[int, ...]  # the sentence index of each in the body (0-based, all sentences counted)
    quoted: tuple[int, ...]  # the sentence indexes (among `sentences`) that are mostly quotation
    total: int  # sentences in the body, short ones included

    def to_dict(self) -> dict:
        return {"fingerprints": list(self.fingerprints), "sentences": list(self.sentences),
                "quoted": list(self.quoted), "total": self.total}


def split_sentences(body: str) -> list[str]:
    """The body's sentences in order: paragraphs, then sentence ends within them."""
    out: list[str] = []
    for paragraph in body.split("\n"):
        paragraph = paragraph.strip()
        if paragraph:
            out.extend(s.strip() for s in _SENTENCE_END.split(paragraph) if s and s.strip())
    return out


def _is_quoted(sentence: str) -> bool:
    """Mostly quotation: it opens with a quotation mark, or quoted spans are half of it."""
    if sentence[:1] in _OPEN_QUOTES:
        return True
    quoted = sum(len(m.group(1)) for m in _QUOTE_SPAN.finditer(sentence))
    return quoted >= 0.5 * len(sentence)


def fold_sentence(sentence: str) -> str | None:
    """The sentence as compared (NFKC, case-folded, words only), or None when it is too short."""
    text = unicodedata.normalize("NFKC", sentence).casefold()
    words = _WORD.findall(text)
    if len(words) >= MIN_WORDS:
        return " ".join(words)
    if _UNSPACED.search(text):
        compact = "".join(words)
        if len(compact) >= MIN_UNSPACED_CHARS:
            return compact
    return None


def fingerprint(folded: str) -> int:
    return xxhash.xxh3_64_intdigest(folded.encode("utf-8")) & _MASK


def passage_fingerprints(body: str) -> Passages:
    """The stateless step (the analyse agent's `passages` stage)."""
    sentences = split_sentences(body)
    seen: set[int] = set()
    fps: list[int] = []
    idx: list[int] = []
    quoted: list[int] = []
    for i, sentence in enumerate(sentences):
        folded = fold_sentence(sentence)
        if folded is None:
            continue
        fp = fingerprint(folded)
        if fp in seen:
            continue
        seen.add(fp)
        fps.append(fp)
        idx.append(i)
        if _is_quoted(sentence):
            quoted.append(i)
    return Passages(tuple(fps), tuple(idx), tuple(quoted), len(sentences))


@dataclass(frozen=True, slots=True)
class Syndication:
    """What the passage index says about one article (articles.enriched `syndication`)."""

    relation: Relation | None
    of: str | None  # the earlier article it shares passages with (the best candidate)
    reason: str
    passages: int  # this article's passages (sentences of MIN_WORDS or more)
    shared: int = 0  # passages shared with `of` (or the best candidate), quoted and common included
    evidence: int = 0  # shared passages that count: not quoted, not common
    share: float = 0.0  # evidence / this article's passages
    share_of_other: float = 0.0  # evidence / the other article's passages
    sentences: tuple[int, ...] = ()  # this article's sentence indexes of the evidence
    other_sentences: tuple[int, ...] = ()  # the same passages' sentence indexes in `of`
    quoted_ignored: int = 0
    common_ignored: int = 0
    candidates: int = 0  # indexed articles sharing at least one passage

    def to_dict(self) -> dict:
        return {"relation": self.relation, "of": self.of, "reason": self.reason, "passages": self.passages,
                "shared": self.shared, "evidence": self.evidence, "share": round(self.share, 4),
                "share_of_other": round(self.share_of_other, 4), "sentences": list(self.sentences),
                "other_sentences": list(self.other_sentences), "quoted_ignored": self.quoted_ignored,
                "common_ignored": self.common_ignored, "candidates": self.candidates}

    @classmethod
    def from_dict(cls, d: dict) -> Syndication:
        return cls(d["relation"], d["of"], d["reason"], d["passages"], d.get("shared", 0), d.get("evidence", 0),
                   d.get("share", 0.0), d.get("share_of_other", 0.0), tuple(d.get("sentences", ())),
                   tuple(d.get("other_sentences", ())), d.get("quoted_ignored", 0), d.get("common_ignored", 0),
                   d.get("candidates", 0))


@dataclass(frozen=True, slots=True)
class PassageRecord:
    """What is persisted per article id (the table record's `passages` part)."""

    article_id: str
    fingerprints: np.ndarray  # uint64
    sentences: np.ndarray  # int32, one per fingerprint
    quoted: frozenset[int]  # sentence indexes
    arrival: float
    result: Syndication
    event_time: float = 0.0

    def to_dict(self) -> dict:
        return {"id": self.article_id, "f": [int(x) for x in self.fingerprints],
                "i": [int(x) for x in self.sentences], "q": sorted(self.quoted), "a": self.arrival,
                "t": self.event_time, "r": self.result.to_dict()}

    @classmethod
    def from_dict(cls, d: dict, default_arrival: float = 0.0) -> PassageRecord:
        return cls(d["id"], np.asarray(d["f"], dtype=np.uint64), np.asarray(d["i"], dtype=np.int32),
                   frozenset(d.get("q", ())), float(d.get("a", default_arrival)), Syndication.from_dict(d["r"]),
                   float(d.get("t", 0.0)))


class PassageIndex:
    """Postings fingerprint → article ids over a bounded window (retention since arrival, budget).

    max_postings  ids kept per fingerprint; a passage in more articles is boilerplate (common)
    """

    def __init__(self, retention_s: float, max_articles: int, min_shared: int = DEFAULT_MIN_SHARED,
                 min_share: float = DEFAULT_MIN_SHARE, many: int = DEFAULT_MANY,
                 max_postings: int = DEFAULT_MAX_POSTINGS) -> None:
        if max_articles < 1:
            raise ValueError("max_articles must be at least 1")
        self.retention_s = retention_s
        self.max_articles = max_articles
        self.min_shared = min_shared
        self.min_share = min_share
        self.many = many
        self.max_postings = max_postings
        self._records: dict[str, PassageRecord] = {}
        self._postings: dict[int, list[str]] = {}
        self._df: dict[int, int] = {}  # articles holding the fingerprint (may exceed max_postings)
        self._expiry: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._records)

    def get(self, article_id: str) -> PassageRecord | None:
        return self._records.get(article_id)

    # -- the decision ---------------------------------------------------------------------------

    def decide(self, article_id: str, passages: Passages, arrival: float, event_time: float = 0.0) -> Syndication:
        known = self._records.get(article_id)
        if known is not None:
            return known.result
        result = self._judge(article_id, passages)
        self.load(PassageRecord(article_id, np.asarray(passages.fingerprints, dtype=np.uint64),
                                np.asarray(passages.sentences, dtype=np.int32), frozenset(passages.quoted),
                                arrival, result, event_time))
        return result

    def _judge(self, article_id: str, passages: Passages) -> Syndication:
        n = len(passages.fingerprints)
        if n == 0:
            return Syndication(None, None, "no_passages", 0)
        candidates: dict[str, list[int]] = {}
        saturated: set[int] = set()
        for pos, fp in enumerate(passages.fingerprints):
            if self._df.get(fp, 0) >= self.max_postings:
                saturated.add(pos)
            for other in self._postings.get(fp, ()):
                if other != article_id:
                    candidates.setdefault(other, []).append(pos)
        if not candidates:
            return Syndication(None, None, "no_shared_passages", n)
        # Articles whose overlap with this one is a small part of both: not copies of each other.
        unrelated: dict[int, int] = {}  # position -> such articles sharing it
        sizes = {c: len(self._records[c].fingerprints) for c in candidates}
        for c, shared in candidates.items():
            if len(shared) < self.many and len(shared) < self.min_share * min(n, sizes[c]):
                for pos in shared:
                    unrelated[pos] = unrelated.get(pos, 0) + 1
        common = saturated | {pos for pos, k in unrelated.items() if k >= COMMON_ARTICLES}
        quoted_positions = {pos for pos, s in enumerate(passages.sentences) if s in passages.quoted}

        best: tuple | None = None
        for c, shared in candidates.items():
            record = self._records[c]
            other_quoted = record.quoted
            quoted = [p for p in shared if p in quoted_positions
                      or int(self._sentence_in(record, passages.fingerprints[p])) in other_quoted]
            qset = set(quoted)
            commons = [p for p in shared if p in common and p not in qset]
            evidence = [p for p in shared if p not in qset and p not in common]
            size = sizes[c]
            share, share_other = len(evidence) / n, len(evidence) / size
            drawn = len(evidence) >= self.min_shared and (
                len(evidence) >= self.many or len(evidence) >= self.min_share * min(n, size))
            key = (drawn, len(evidence), max(share, share_other), len(shared), -record.arrival)
            if best is None or key > best[0]:
                best = (key, c, shared, quoted, commons, evidence, share, share_other, drawn)
        assert best is not None
        _, c, shared, quoted, commons, evidence, share, share_other, drawn = best
        record = self._records[c]
        mine = tuple(passages.sentences[p] for p in evidence[:MAX_RELATED_SENTENCES])
        theirs = tuple(self._sentence_in(record, passages.fingerprints[p]) for p in evidence[:MAX_RELATED_SENTENCES])
        if drawn:
            relation: Relation = "reprint_of" if share >= 0.5 else "shares_passages_with"
            return Syndication(relation, c, "shared_passages", n, len(shared), len(evidence), share, share_other,
                               mine, theirs, len(quoted), len(commons), len(candidates))
        if len(shared) - len(quoted) - len(commons) < self.min_shared and commons:
            reason = "common_passages_ignored"
        elif len(shared) - len(quoted) < self.min_shared and quoted:
            reason = "quoted_passages_ignored"
        elif len(evidence) < self.min_shared:
            reason = "too_few_shared_passages"
        else:
            reason = "small_share"
        return Syndication(None, None, reason, n, len(shared), len(evidence), share, share_other, mine, theirs,
                           len(quoted), len(commons), len(candidates))

    @staticmethod
    def _sentence_in(record: PassageRecord, fp: int) -> int:
        hits = np.flatnonzero(record.fingerprints == np.uint64(fp))
        return int(record.sentences[hits[0]]) if len(hits) else -1

    # -- state ----------------------------------------------------------------------------------

    def load(self, record: PassageRecord) -> None:
        """Index a record (a decision, or a stored record at a rebuild, in arrival order)."""
        if record.article_id in self._records:
            return
        self._records[record.article_id] = record
        for fp in record.fingerprints.tolist():
            df = self._df.get(fp, 0) + 1
            self._df[fp] = df
            posting = self._postings.setdefault(fp, [])
            if len(posting) < self.max_postings:
                posting.append(record.article_id)
        heapq.heappush(self._expiry, (record.arrival, record.article_id))

    def _remove(self, article_id: str) -> None:
        record = self._records.pop(article_id)
        for fp in record.fingerprints.tolist():
            df = self._df.get(fp, 0) - 1
            posting = self._postings.get(fp)
            if posting is not None and article_id in posting:
                posting.remove(article_id)
            if df <= 0:
                self._df.pop(fp, None)
                self._postings.pop(fp, None)
            else:
                self._df[fp] = df

    def evict_expired(self, now: float) -> list[str]:
        """The ids that left: arrived more than `retention_s` ago, or the oldest beyond the budget."""
        gone: list[str] = []
        cutoff = now - self.retention_s
        while self._expiry and (self._expiry[0][0] < cutoff or len(self._records) > self.max_articles):
            _, article_id = heapq.heappop(self._expiry)
            if article_id in self._records:
                self._remove(article_id)
                gone.append(article_id)
        return gone
