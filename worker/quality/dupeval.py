"""Near-duplicate detection measured on the generated pairs (dupgen.py), pairwise.

Each pair goes through the worker's own stages in the worker's order — normalise(title, body),
detect_language(title + body), hash_text(body, language, num_perm) — into a fresh DedupIndex:
the first article is decided, then the second; the pair is predicted a duplicate when the second
is an exact or near duplicate *of the first*. That is the production decision (LSH candidates,
then max(Jaccard, containment) >= threshold on the signatures), not a re-implementation.

For the threshold curve the same pairs run once more through an index with threshold 0: every
LSH candidate then comes back as near_duplicate with its estimated similarity, so "predicted at
threshold t" is "candidate and similarity >= t" (exact copies count as 1.0). True Jaccard and
containment of the word/character shingle sets are computed exactly alongside.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

from worker.quality.dupgen import DEFAULT_SEED, NEGATIVE_KINDS, POSITIVE_KINDS, Doc, Pair, generate_pairs
from worker.stages.dedup import DedupIndex
from worker.stages.hashing import Hashes, hash_text, shingles
from worker.stages.language import detect_language
from worker.stages.normalise import normalise

DEFAULT_THRESHOLD = 0.6
NUM_PERM = 126
CURVE = tuple(round(0.05 * i, 2) for i in range(1, 21))
JACCARD_BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0001)


@dataclass(frozen=True, slots=True)
class Analysed:
    language: str
    hashes: Hashes
    shingle_set: frozenset[str]


@dataclass(frozen=True, slots=True)
class PairResult:
    pair: Pair
    predicted: bool  # at the default threshold, by the production DedupIndex
    status: str
    score: float  # similarity the index estimated (0 when not an LSH candidate; 1 exact)
    candidate: bool  # exact copy or LSH candidate of the first article
    jaccard: float  # exact, on shingle sets
    containment: float  # exact: |A ∩ B| / min(|A|, |B|)
    languages: tuple[str, str]


@dataclass
class DedupReport:
    threshold: float
    results: list[PairResult]
    stress: list[PairResult] = field(default_factory=list)

    # -- summaries -------------------------------------------------------------------------------

    def confusion(self, results: list[PairResult] | None = None, threshold: float | None = None) -> dict[str, int]:
        tp = fp = fn = tn = 0
        for r in self.results if results is None else results:
            pred = r.predicted if threshold is None else (r.candidate and r.score >= threshold)
            if r.pair.label:
                tp += pred
                fn += not pred
            else:
                fp += pred
                tn += not pred
        return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}

    @staticmethod
    def pr(c: dict[str, int]) -> tuple[float, float]:
        p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
        r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
        return p, r

    def precision_recall(self, results: list[PairResult] | None = None,
                         threshold: float | None = None) -> tuple[float, float]:
        return self.pr(self.confusion(results, threshold))

    def by(self, key) -> dict[str, list[PairResult]]:
        groups: dict[str, list[PairResult]] = defaultdict(list)
        for r in self.results:
            groups[key(r)].append(r)
        return dict(groups)

    def curve(self) -> list[tuple[float, float, float]]:
        return [(t, *self.precision_recall(threshold=t)) for t in CURVE]

    def errors(self) -> list[PairResult]:
        return [r for r in self.results if r.predicted != r.pair.label]


def _analyse(doc: Doc) -> Analysed:
    return _analyse_cached(doc.title, doc.body)


@lru_cache(maxsize=4096)
def _analyse_cached(title: str, body: str) -> Analysed:
    text = normalise(title, body)
    language = detect_language(f"{text.title}\n{text.body}").code
    return Analysed(language, hash_text(text.body, language, NUM_PERM),
                    frozenset(shingles(text.body, language)))


def _decide(index: DedupIndex, doc: Doc, analysed: Analysed, t: float):
    h = analysed.hashes
    return index.decide(doc.id, h.content_hash, h.signature, h.shingle_count, t).verdict


def evaluate_pair(pair: Pair, threshold: float = DEFAULT_THRESHOLD) -> PairResult:
    a, b = _analyse(pair.first), _analyse(pair.second)
    index = DedupIndex(threshold=threshold, num_perm=NUM_PERM)
    _decide(index, pair.first, a, 0.0)
    verdict = _decide(index, pair.second, b, 1.0)
    predicted = verdict.status != "unique" and verdict.duplicate_of == pair.first.id
    probe = DedupIndex(threshold=0.0, num_perm=NUM_PERM)
    _decide(probe, pair.first, a, 0.0)
    loose = _decide(probe, pair.second, b, 1.0)
    candidate = loose.status != "unique"
    inter = len(a.shingle_set & b.shingle_set)
    union = len(a.shingle_set | b.shingle_set)
    smaller = min(len(a.shingle_set), len(b.shingle_set))
    return PairResult(pair, predicted, verdict.status, loose.similarity if candidate else 0.0, candidate,
                      inter / union if union else 1.0, inter / smaller if smaller else 0.0,
                      (a.language, b.language))


def evaluate(seed: int = DEFAULT_SEED, threshold: float = DEFAULT_THRESHOLD, stress: bool = True) -> DedupReport:
    pairs = generate_pairs(seed, stress=stress)
    results: list[PairResult] = []
    stressed: list[PairResult] = []
    for pair in pairs:
        (stressed if pair.kind == "stress" else results).append(evaluate_pair(pair, threshold))
    return DedupReport(threshold, results, stressed)


def jaccard_bins(results: list[PairResult]) -> list[tuple[str, int, int, int, int]]:
    """(bin, positives, positives found, negatives, negatives flagged) by true shingle Jaccard."""
    rows = []
    for lo, hi in itertools.pairwise(JACCARD_BINS):
        sel = [r for r in results if lo <= r.jaccard < hi]
        pos = [r for r in sel if r.pair.label]
        neg = [r for r in sel if not r.pair.label]
        rows.append((f"{lo:.1f}–{min(hi, 1.0):.1f}", len(pos), sum(r.predicted for r in pos),
                     len(neg), sum(r.predicted for r in neg)))
    return rows


__all__ = ["DedupReport", "PairResult", "evaluate", "evaluate_pair", "jaccard_bins",
           "POSITIVE_KINDS", "NEGATIVE_KINDS"]
