"""Shared passages: reprints found by the sentences they share, not by whole-text similarity.

Wire copies are rarely whole: one outlet runs the first paragraphs, another adds its own intro,
another an earlier version of the story. MinHash LSH selects candidates by Jaccard, and a short
copy inside a long one has a low Jaccard; the sentences it kept are still there word for word.

`passage_fingerprints(body)` (stateless, computed by the analyse agent) splits the normalised
body into paragraphs and sentences, folds each sentence (NFKC, case, punctuation, spacing; a wire
dateline "GULF SHORES, Ala. (AP) — " dropped from the first) and keeps a 52-bit xxh3 fingerprint of
every sentence of at least `MIN_WORDS` words (16 characters for text written without spaces), with
its sentence and paragraph index. A sentence at least half inside quotation marks (the state
carries across the sentences of a paragraph) is flagged *quoted*.

`PassageIndex` (the funnel's state, beside the dedup and story indexes) keeps postings
fingerprint → article ids, so its candidates are the articles sharing at least one sentence
whatever their Jaccard: a copy contained in another is found however short it is, independently
of the LSH bands. For each candidate B of an article A the shared passages are sorted into:

* quoted   — inside quotation marks on either side;
* common   — shared by A with `COMMON_ARTICLES` (2) other articles that look *unrelated* to A
             (what each shares with A is one paragraph on both sides and less than
             `ONE_BLOCK_SHARE` of both texts, or fewer than `many` passages and less than
             `min_share` of both); or carried by articles of `COMMON_CLUSTERS` (3) syndication
             clusters (an article related to an earlier one joins its cluster); or a full posting
             (`max_postings` articles: boilerplate). That is the passage's document frequency
             among articles that are not copies of each other: an official statement or a
             hurricane advisory that independent articles carry;
* plain    — the rest.

Quoted and common passages count as evidence only beside at least one plain passage: a copy
carries the statement its source quoted, an article that only quotes the statement does not
share anything else. With the evidence E, a relation is drawn to the best candidate when
|E| ≥ `min_shared` (2) and

* E lies in one paragraph on both sides (what a statement or an advisory looks like): it is at
  least `ONE_BLOCK_SHARE` (3/4) of one of the texts (a brief, the first paragraph alone);
* otherwise: |E| ≥ `many` (5), or E is at least `min_share` (0.3) of the shorter text.

`reprint_of` when E is at least half of A's passages (A is a copy or an excerpt of B), else
`shares_passages_with` (A is a longer version, or carries a part of B). The result says why a
relation was or was not drawn (`reason`: shared_passages, no_passages, no_shared_passages,
too_few_shared_passages, quoted_passages_ignored, common_passages_ignored, one_block_small_share,
small_share) and which passages (A's sentence indexes and B's).

Bounded like the dedup index: an article leaves `retention_s` after it arrived, or earlier when
more than `max_articles` are indexed (oldest arrivals first); postings keep at most
`max_postings` ids (a count of those beyond goes on). The index is rebuilt from
each article's `PassageRecord.to_dict()` (the table record's `passages` part), loaded in arrival
order; the stored result answers a redelivery.
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
COMMON_ARTICLES = 2  # unrelated articles sharing a passage with this one make it common
COMMON_CLUSTERS = 3  # ... and so do the articles of this many syndication clusters carrying it
ONE_BLOCK_SHARE = 0.75  # one shared paragraph draws a relation only when it is most of one text
MAX_RELATED_SENTENCES = 64  # the indexes listed in the output (the counts are always complete)

Relation = Literal["reprint_of", "shares_passages_with"]

# A sentence ends at . ! ? … followed by a space (after any closing marks) and not by a lower-case
# letter, a digit or a parenthesis ("4:45 a.m. with", "No. 3", "Ala. (AP)"), or at a full-width
# stop directly; paragraphs always end one.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’»)\]]))\s+(?![a-z0-9(])"
                           r"|(?<=[。！？])(?![」』”’)])\s*|(?<=[。！？][」』”’)])\s*")
_WORD = re.compile(r"\w+")
# A wire dateline opening the text ("GULF SHORES, Ala. (AP) — ", "LONDON (Reuters) - "): copies drop
# or change it, so the first sentence is compared without it.
_DATELINE = re.compile(r"^[A-Z][A-Z .'-]+(?:, [A-Z][A-Za-z.]*\.?(?: [A-Z][A-Za-z.]*)*)?(?:,? [A-Z][a-z]+\.? \d{1,2},?"
                       r"(?: \d{4})?)? ?(?:\([A-Za-z -]{2,30}\))? ?[—–-]{1,2} ")
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\u0e00-\u0e7f\uac00-\ud7af]")
_OPENING = "“„«「『‹"
_CLOSING = "”»」』›"
_MASK = (1 << FINGERPRINT_BITS) - 1


@dataclass(frozen=True, slots=True)
class Passages:
    """The fingerprints of one body's sentences (only those long enough to be evidence)."""

    fingerprints: tuple[int, ...]  # distinct, in body order
    sentences: tuple[int, ...]  # the sentence index of each in the body (0-based, all sentences counted)
    quoted: tuple[int, ...]  # the sentence indexes (among `sentences`) that are mostly quotation
    total: int  # sentences in the body, short ones included
    paragraphs: tuple[int, ...] = ()  # the paragraph index of each (empty: unknown, one block each)

    def to_dict(self) -> dict:
        return {"fingerprints": list(self.fingerprints), "sentences": list(self.sentences),
                "quoted": list(self.quoted), "total": self.total, "paragraphs": list(self.paragraphs)}


def split_sentences(body: str) -> list[str]:
    """The body's sentences in order: paragraphs, then sentence ends within them."""
    return [s for paragraph in split_paragraphs(body) for s in paragraph]


def split_paragraphs(body: str) -> list[list[str]]:
    """The body's paragraphs (lines), each as its sentences."""
    out: list[list[str]] = []
    for paragraph in body.split("\n"):
        paragraph = paragraph.strip()
        if paragraph:
            out.append([s.strip() for s in _SENTENCE_END.split(paragraph) if s and s.strip()])
    return out


def _quoted_flags(sentences: list[str]) -> list[bool]:
    """For each sentence of one paragraph: whether at least half of its characters are inside
    quotation marks. The state carries over from sentence to sentence, so the middle sentences
    of a quotation that spans several are quoted too (“First. Second. Third,” she said)."""
    flags: list[bool] = []
    inside = False
    for sentence in sentences:
        quoted = total = 0
        for ch in sentence:
            if ch in _OPENING:
                inside = True
            elif ch in _CLOSING:
                inside = False
            elif ch == '"':
                inside = not inside
            elif not ch.isspace():
                total += 1
                quoted += inside
        flags.append(total > 0 and quoted >= 0.5 * total)
    return flags


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
    paragraphs = split_paragraphs(body)
    sentences = [s for paragraph in paragraphs for s in paragraph]
    flags = [f for paragraph in paragraphs for f in _quoted_flags(paragraph)]
    paragraph_of = [k for k, paragraph in enumerate(paragraphs) for _ in paragraph]
    seen: set[int] = set()
    fps: list[int] = []
    idx: list[int] = []
    quoted: list[int] = []
    para: list[int] = []
    for i, sentence in enumerate(sentences):
        folded = fold_sentence(_DATELINE.sub("", sentence, count=1) if i == 0 else sentence)
        if folded is None:
            continue
        fp = fingerprint(folded)
        if fp in seen:
            continue
        seen.add(fp)
        fps.append(fp)
        idx.append(i)
        para.append(paragraph_of[i])
        if flags[i]:
            quoted.append(i)
    return Passages(tuple(fps), tuple(idx), tuple(quoted), len(sentences), tuple(para))


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
    paragraphs: np.ndarray | None = None  # int32, one per fingerprint (None: each its own)

    def to_dict(self) -> dict:
        d = {"id": self.article_id, "f": [int(x) for x in self.fingerprints],
             "i": [int(x) for x in self.sentences], "q": sorted(self.quoted), "a": self.arrival,
             "t": self.event_time, "r": self.result.to_dict()}
        if self.paragraphs is not None:
            d["p"] = [int(x) for x in self.paragraphs]
        return d

    @classmethod
    def from_dict(cls, d: dict, default_arrival: float = 0.0) -> PassageRecord:
        return cls(d["id"], np.asarray(d["f"], dtype=np.uint64), np.asarray(d["i"], dtype=np.int32),
                   frozenset(d.get("q", ())), float(d.get("a", default_arrival)), Syndication.from_dict(d["r"]),
                   float(d.get("t", 0.0)), np.asarray(d["p"], dtype=np.int32) if "p" in d else None)

    def paragraph_of(self, position: int) -> int:
        return int(self.paragraphs[position]) if self.paragraphs is not None else -1 - position


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
        # fingerprint -> the id holding it (most sentences are in one article: no list for those),
        # or the list of ids (at most max_postings)
        self._postings: dict[int, str | list[str]] = {}
        self._overflow: dict[int, int] = {}  # articles beyond a full posting (document frequency)
        # Syndication clusters: an article related to an earlier one joins that one's cluster.
        self._cluster: dict[str, str] = {}
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
        paragraphs = np.asarray(passages.paragraphs, dtype=np.int32) if passages.paragraphs else None
        self.load(PassageRecord(article_id, np.asarray(passages.fingerprints, dtype=np.uint64),
                                np.asarray(passages.sentences, dtype=np.int32), frozenset(passages.quoted),
                                arrival, result, event_time, paragraphs))
        return result

    def _judge(self, article_id: str, passages: Passages) -> Syndication:
        n = len(passages.fingerprints)
        if n == 0:
            return Syndication(None, None, "no_passages", 0)
        candidates: dict[str, list[int]] = {}  # candidate -> positions (in `passages`) it shares
        common: set[int] = set()
        for pos, fp in enumerate(passages.fingerprints):
            held = self._postings.get(fp, ())
            posting = (held,) if isinstance(held, str) else held
            # Boilerplate (a full posting), or carried by articles of COMMON_CLUSTERS clusters
            # that are not related to each other (a statement, an advisory).
            if len(posting) >= self.max_postings or (
                    len(posting) >= COMMON_CLUSTERS and len({self._cluster[o] for o in posting}) >= COMMON_CLUSTERS):
                common.add(pos)
            for other in posting:
                if other != article_id:
                    candidates.setdefault(other, []).append(pos)
        if not candidates:
            return Syndication(None, None, "no_shared_passages", n)
        # Common: a passage this article shares with COMMON_ARTICLES others that are unrelated to it
        # (what they share is one paragraph, or a small part of both texts): a statement, an advisory.
        unrelated: dict[int, int] = {}
        for c, shared in candidates.items():
            if self._unrelated(passages, self._records[c], shared):
                for pos in shared:
                    unrelated[pos] = unrelated.get(pos, 0) + 1
        common |= {pos for pos, k in unrelated.items() if k >= COMMON_ARTICLES}
        quoted_here = {pos for pos, s in enumerate(passages.sentences) if s in passages.quoted}
        best: tuple | None = None
        for c, shared in candidates.items():
            record = self._records[c]
            where = {p: self._position_in(record, passages.fingerprints[p]) for p in shared}
            plain, quoted, commons = [], [], []
            for p in shared:
                if p in common:
                    commons.append(p)
                elif p in quoted_here or int(record.sentences[where[p]]) in record.quoted:
                    quoted.append(p)
                else:
                    plain.append(p)
            # Quotation and common passages count only beside text shared outside them (a copy
            # carries the statement its source quoted; an independent article carries only that).
            evidence = sorted(plain + quoted + commons) if plain else []
            size = len(record.fingerprints)
            share, share_other = len(evidence) / n, len(evidence) / size
            one_block = bool(evidence) and len({self._paragraph(passages, p) for p in evidence}) == 1 \
                and len({record.paragraph_of(where[p]) for p in evidence}) == 1
            if len(evidence) < self.min_shared:
                drawn, reason = False, ("common_passages_ignored" if commons and len(shared) - len(quoted)
                                        >= self.min_shared else "quoted_passages_ignored" if quoted
                                        and len(shared) >= self.min_shared else "too_few_shared_passages")
            elif one_block:
                drawn = max(share, share_other) >= ONE_BLOCK_SHARE
                reason = "shared_passages" if drawn else "one_block_small_share"
            else:
                drawn = len(evidence) >= self.many or max(share, share_other) >= self.min_share
                reason = "shared_passages" if drawn else "small_share"
            key = (drawn, len(evidence), max(share, share_other), len(shared), -record.arrival)
            if best is None or key > best[0]:
                ignored = (0, 0) if plain else (len(quoted), len(commons))
                best = (key, c, shared, evidence, *ignored, share, share_other, drawn, reason, where)
        assert best is not None
        _, c, shared, evidence, quoted_ignored, common_ignored, share, share_other, drawn, reason, where = best
        record = self._records[c]
        mine = tuple(passages.sentences[p] for p in evidence[:MAX_RELATED_SENTENCES])
        theirs = tuple(int(record.sentences[where[p]]) for p in evidence[:MAX_RELATED_SENTENCES])
        relation: Relation | None = None
        if drawn:
            relation = "reprint_of" if share >= 0.5 else "shares_passages_with"
        return Syndication(relation, c if drawn else None, reason, n, len(shared), len(evidence), share,
                           share_other, mine, theirs, quoted_ignored, common_ignored, len(candidates))

    def _unrelated(self, passages: Passages, record: PassageRecord, shared: list[int]) -> bool:
        """Whether what `record` shares with this article looks like a statement both carry rather
        than a copy: one paragraph on both sides that is less than ONE_BLOCK_SHARE of both, or
        fewer than `many` passages that are less than `min_share` of both."""
        n, size = len(passages.fingerprints), len(record.fingerprints)
        if not self.min_shared <= len(shared) < self.many:
            return False
        largest = len(shared) / min(n, size)
        if len({self._paragraph(passages, p) for p in shared}) == 1 and len(
                {record.paragraph_of(self._position_in(record, passages.fingerprints[p])) for p in shared}) == 1:
            return largest < ONE_BLOCK_SHARE
        return largest < self.min_share

    @staticmethod
    def _paragraph(passages: Passages, position: int) -> int:
        return passages.paragraphs[position] if passages.paragraphs else -1 - position

    @staticmethod
    def _position_in(record: PassageRecord, fp: int) -> int:
        return int(np.flatnonzero(record.fingerprints == np.uint64(fp))[0])

    # -- state ----------------------------------------------------------------------------------

    def load(self, record: PassageRecord) -> None:
        """Index a record (a decision, or a stored record at a rebuild, in arrival order)."""
        if record.article_id in self._records:
            return
        self._records[record.article_id] = record
        of = record.result.of
        self._cluster[record.article_id] = self._cluster.get(of, of) if of else record.article_id
        postings, article_id = self._postings, record.article_id
        for fp in record.fingerprints.tolist():
            held = postings.get(fp)
            if held is None:
                postings[fp] = article_id
            elif isinstance(held, str):
                postings[fp] = [held, article_id]
            elif len(held) < self.max_postings:
                held.append(article_id)
            else:
                self._overflow[fp] = self._overflow.get(fp, 0) + 1
        heapq.heappush(self._expiry, (record.arrival, record.article_id))

    def _remove(self, article_id: str) -> None:
        record = self._records.pop(article_id)
        self._cluster.pop(article_id, None)
        for fp in record.fingerprints.tolist():
            held = self._postings.get(fp)
            if held is None:
                continue
            if isinstance(held, str):
                if held == article_id:
                    del self._postings[fp]
            elif article_id in held:
                held.remove(article_id)
                if len(held) == 1 and not self._overflow.get(fp):
                    self._postings[fp] = held[0]
            elif self._overflow.get(fp):  # it was one of those beyond the full posting
                self._overflow[fp] -= 1
                if not self._overflow[fp]:
                    del self._overflow[fp]

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
