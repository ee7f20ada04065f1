"""Syndication measured on the generated set (syndgen.py): reprints found by shared passages.

Every document goes through the worker's own path — `analyse_batch` (the analyse agent's stages,
`passages` among them) and `ArticleIndex.decide` (dedup, stories and the passage index) — in
`ORDERS` arrival orders (shuffled with fixed seeds). In each order, a *copy* is a document with an
earlier document of its wire story in the index; it is **found** when the passage index relates it
to an earlier member of its story (`syndication.of`), and *found by either* when the dedup
verdict (exact or near duplicate, `duplicate_of`) does instead. Recall is reported by the true
containment of 5-word shingle sets with the closest earlier member (≥ 0.6, 0.3–0.6, < 0.3) and
by the number of sentences shared with it (normalised, ≥ 8 words).

Precision: every relation drawn (`reprint_of` / `shares_passages_with`) whose `of` is not of the
same wire story is an error — independent coverage of the same event, and articles that carry the
same statement or advisory, included. Cost: the `passages` stage's time per article (analyse
side, from `timings_ms`) and `PassageIndex.decide` (the funnel's share), timed in-process.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

import orjson

from worker.pipeline import ArticleIndex, analyse_batch
from worker.quality.syndgen import DEFAULT_SEED, SyndDoc, generate
from worker.records import AnalysedArticle
from worker.stages.hashing import shingles
from worker.stages.passages import PassageIndex, Passages
from worker.stages.validate import parse_article

ORDERS = 5
NUM_PERM = 126
CONTAINMENT_BANDS = (("≥ 0.6", 0.6, 1.01), ("0.3 – 0.6", 0.3, 0.6), ("< 0.3", 0.0, 0.3))
SHARED_BANDS = (("0", 0, 0), ("1", 1, 1), ("2 – 3", 2, 3), ("4 – 7", 4, 7), ("≥ 8", 8, 10**9))
# The targets of issue 25 (tests/unit/test_quality.py holds the same numbers).
BAR_RECALL_CONTAINED = 0.98  # containment >= 0.6
BAR_RECALL_SHARED = 0.9  # >= 2 shared sentences
BAR_PRECISION = 0.97


@dataclass(frozen=True, slots=True)
class CopyResult:
    order: int
    doc: SyndDoc
    containment: float  # true, with the closest earlier member of its story
    shared: int  # sentences shared with the earlier member sharing most
    found: bool  # by the passage index
    found_either: bool  # by the passage index or the dedup verdict
    relation: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Relation:
    order: int
    doc: SyndDoc
    of: SyndDoc
    relation: str
    evidence: int
    correct: bool
    quote_sharing: bool  # a wrong relation between articles carrying the same statement


@dataclass
class SyndicationReport:
    copies: list[CopyResult]
    relations: list[Relation]
    docs: int
    orders: int
    non_reprint_pairs: int = 0
    non_reprint_pairs_sharing_2: int = 0
    analyse_ms: float = 0.0  # the passages stage, mean per article
    decide_ms: float = 0.0  # PassageIndex.decide, mean per article
    reasons: Counter = field(default_factory=Counter)  # why no relation, over the documents
    # The same measures on sets generated with other seeds (other cuts, edits and orders): seed ->
    # (recall C >= 0.6, the same by relation or verdict, recall >= 2 shared, the same, precision)
    other_seeds: dict[int, tuple[float, float, float, float, float]] = field(default_factory=dict)

    def recall(self, rs: list[CopyResult] | None = None, either: bool = False) -> float:
        rs = self.copies if rs is None else rs
        return sum(r.found_either if either else r.found for r in rs) / len(rs) if rs else 1.0

    def by_containment(self, lo: float, hi: float) -> list[CopyResult]:
        return [r for r in self.copies if lo <= r.containment < hi]

    def by_shared(self, lo: int, hi: int) -> list[CopyResult]:
        return [r for r in self.copies if lo <= r.shared <= hi]

    def precision(self) -> float:
        return sum(r.correct for r in self.relations) / len(self.relations) if self.relations else 1.0

    def errors(self) -> list[Relation]:
        return [r for r in self.relations if not r.correct]


def _article(doc: SyndDoc):
    raw = {"id": doc.id, "title": doc.title, "body": doc.body, "source": doc.url.split("/")[2],
           "url": doc.url, "published_at": None}
    return parse_article(doc.id.encode(), orjson.dumps(raw), 1 << 20)


@lru_cache(maxsize=2)
def analysed(seed: int = DEFAULT_SEED) -> tuple[tuple[SyndDoc, AnalysedArticle], ...]:
    docs = generate(seed)
    results = analyse_batch([_article(d) for d in docs], NUM_PERM, [1_726_000_000.0] * len(docs))
    out = []
    for d, r in zip(docs, results, strict=True):
        if isinstance(r, Exception):
            raise r
        out.append((d, r))
    return tuple(out)


def _shingle_set(a: AnalysedArticle) -> frozenset:
    return frozenset(shingles(a.content.body, a.language.code))


def _containment(x: frozenset, y: frozenset) -> float:
    return len(x & y) / min(len(x), len(y)) if x and y else 0.0


def _passages(a: AnalysedArticle) -> Passages:
    p = a.passages
    assert p is not None
    return Passages(tuple(p.fingerprints), tuple(p.sentences), tuple(p.quoted), p.total, tuple(p.paragraphs))


def evaluate(seed: int = DEFAULT_SEED, orders: int = ORDERS, other_seeds: tuple[int, ...] = ()) -> SyndicationReport:
    report = _evaluate(seed, orders)
    for other in other_seeds:
        r = _evaluate(other, orders, timed=False)
        contained, sharing = r.by_containment(0.6, 1.01), [c for c in r.copies if c.shared >= 2]
        report.other_seeds[other] = (r.recall(contained), r.recall(contained, True), r.recall(sharing),
                                     r.recall(sharing, True), r.precision())
    return report


def _evaluate(seed: int, orders: int, timed: bool = True) -> SyndicationReport:
    items = analysed(seed)
    sets = {d.id: _shingle_set(a) for d, a in items}
    fps = {d.id: set(a.passages.fingerprints) if a.passages else set() for d, a in items}
    by_id = {d.id: d for d, _ in items}
    copies: list[CopyResult] = []
    relations: list[Relation] = []
    reasons: Counter = Counter()
    for order in range(orders):
        stream = list(items)
        random.Random(f"{seed}:order:{order}").shuffle(stream)
        index = ArticleIndex(num_perm=NUM_PERM)
        seen: dict[str, list[str]] = {}  # group -> ids so far
        for i, (doc, a) in enumerate(stream):
            decided = index.decide(a, now=1_726_000_000.0 + 60 * i)
            synd = decided.syndication
            assert synd is not None
            reasons[synd.reason] += 1
            earlier = seen.get(doc.group, [])
            if synd.relation is not None and synd.of is not None:
                other = by_id[synd.of]
                correct = other.group == doc.group
                relations.append(Relation(order, doc, other, synd.relation, synd.evidence, correct,
                                          not correct and bool(set(doc.statements) & set(other.statements))))
            if earlier:
                containment = max(_containment(sets[doc.id], sets[e]) for e in earlier)
                shared = max(len(fps[doc.id] & fps[e]) for e in earlier)
                found = synd.of in earlier
                verdict = decided.verdict
                dup = verdict.status != "unique" and (verdict.duplicate_of in earlier or any(
                    c in earlier for c in verdict.merged_clusters))
                copies.append(CopyResult(order, doc, containment, shared, found, found or dup, synd.relation,
                                         synd.reason))
            seen.setdefault(doc.group, []).append(doc.id)
    report = SyndicationReport(copies, relations, len(items), orders, reasons=reasons)
    ids = [d.id for d, _ in items]
    for i, x in enumerate(ids):
        for y in ids[i + 1:]:
            if by_id[x].group != by_id[y].group:
                report.non_reprint_pairs += 1
                report.non_reprint_pairs_sharing_2 += len(fps[x] & fps[y]) >= 2
    if timed:
        report.analyse_ms = statistics.fmean(a.timings_ms["passages"] for _, a in items)
        report.decide_ms = _time_decide(items)
    return report


def _time_decide(items, rounds: int = 5) -> float:
    """Mean PassageIndex.decide per article over `rounds` passes of the set (fresh index each)."""
    best = float("inf")
    for _ in range(rounds):
        index = PassageIndex(retention_s=30 * 86400.0, max_articles=1_000_000)
        prepared = [(d.id, _passages(a)) for d, a in items]
        start = time.perf_counter()
        for i, (article_id, passages) in enumerate(prepared):
            index.decide(article_id, passages, float(i))
        best = min(best, (time.perf_counter() - start) * 1000 / len(prepared))
    return best


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def render(sr: SyndicationReport) -> list[str]:
    """The docs/quality.md section."""
    from worker.quality.report import ok, table

    contained = sr.by_containment(0.6, 1.01)
    sharing = [r for r in sr.copies if r.shared >= 2]
    rc, rs, p = sr.recall(contained), sr.recall(sharing), sr.precision()
    stories = len({r.doc.group for r in sr.copies})
    out = ["## Syndication: shared passages", "",
           f"`worker.stages.passages` on the set generated by `worker/quality/syndgen.py` from "
           f"`worker/quality/data/syndication.jsonl`: {stories} wire stories with 7 copies each (whole with "
           "furniture, cut at different places, with the outlet's intro, the agency's update, copy-edited, a "
           "middle excerpt, the first paragraph alone), plus independently written articles about the same "
           "events, several of which carry the same official statement (quoted) or advisory (not quoted) as the "
           f"wire copies: {sr.docs} documents. Each runs through `analyse_batch` and `ArticleIndex.decide` in "
           f"{sr.orders} arrival orders; a copy is a document with an earlier member of its story in the index, "
           "found when its syndication relation names one.", ""]
    out += table(["measure", "target", "measured", "status"], [
        ["Recall, copies with containment ≥ 0.6", f"≥ {BAR_RECALL_CONTAINED}",
         f"{rc:.3f} ({sum(r.found for r in contained)}/{len(contained)})", ok(rc >= BAR_RECALL_CONTAINED)],
        ["Recall, copies sharing ≥ 2 sentences", f"≥ {BAR_RECALL_SHARED}",
         f"{rs:.3f} ({sum(r.found for r in sharing)}/{len(sharing)})", ok(rs >= BAR_RECALL_SHARED)],
        ["Precision of the relation (quote-sharing pairs are errors)", f"≥ {BAR_PRECISION}",
         f"{p:.3f} ({len(sr.relations) - len(sr.errors())}/{len(sr.relations)})", ok(p >= BAR_PRECISION)],
    ])
    out += ["### Recall by true containment (5-word shingles, closest earlier copy)", ""]
    out += table(["containment", "copies", "found (passages)", "found (passages or dedup verdict)",
                  "found by the dedup verdict alone"],
                 [[name, len(rs_), f"{sr.recall(rs_):.3f}", f"{sr.recall(rs_, True):.3f}",
                   sum(r.found_either and not r.found for r in rs_)]
                  for name, lo, hi in CONTAINMENT_BANDS for rs_ in [sr.by_containment(lo, hi)]])
    out += ["### Recall by shared sentences (normalised, ≥ 8 words)", ""]
    out += table(["sentences shared", "copies", "found (passages)", "found (passages or dedup verdict)"],
                 [[name, len(rs_), f"{sr.recall(rs_):.3f}", f"{sr.recall(rs_, True):.3f}"]
                  for name, lo, hi in SHARED_BANDS for rs_ in [sr.by_shared(lo, hi)] if rs_])
    kinds = sorted({r.doc.kind for r in sr.copies})
    out += ["### Recall by kind of copy", ""]
    out += table(["kind", "copies", "found", "containment min – median"],
                 [[k, len(rs_), f"{sr.recall(rs_):.3f}",
                   f"{min(r.containment for r in rs_):.2f} – {statistics.median(r.containment for r in rs_):.2f}"]
                  for k in kinds for rs_ in [[r for r in sr.copies if r.doc.kind == k]]])
    errs = sr.errors()
    quote_errs = sum(e.quote_sharing for e in errs)
    out += [f"- Relations drawn: {len(sr.relations)} ({Counter(r.relation for r in sr.relations).most_common()}); "
            f"wrong: {len(errs)}, of which {quote_errs} between articles carrying the same statement or advisory.",
            f"- Non-reprint pairs sharing ≥ 2 sentences: {sr.non_reprint_pairs_sharing_2} of "
            f"{sr.non_reprint_pairs} (the statements and advisories, and the agencies' furniture lines): what the "
            "quoted / common rules have to set aside.",
            "- Why no relation was drawn (all documents, all orders): "
            + ", ".join(f"{k} {v}" for k, v in sorted(sr.reasons.items()) if k != "shared_passages") + ".",
            f"- Cost per article: the `passages` stage {sr.analyse_ms:.3f} ms (analyse side, mean of "
            f"`timings_ms`), `PassageIndex.decide` {sr.decide_ms:.3f} ms (the funnel; best of 5 passes over the "
            f"set, {sr.docs} articles in the index). Timed in-process on a shared machine; `make bench` has the "
            "whole path.",
            "- The set was written for this evaluation and the rules (2 passages, 0.3 of the shorter text or "
            "5 whatever the share, one shared paragraph ¾ of a text; common = shared with 2 articles unrelated "
            "by overlap or carried by 3 unrelated clusters) were tuned on it: expect lower figures on real "
            "traffic. Sentence hashes miss a copy whose every sentence was edited (the `edited` and `brief` "
            "misses share 1 sentence); the dedup verdict still finds most of those.", ""]
    if sr.other_seeds:
        out += ["### Other generator seeds", "",
                "The same set generated with other seeds (other cut points, edits, intros and arrival orders); "
                "the rules were not tuned on these. *Either*: found by the syndication relation or by the dedup "
                "verdict (exact or near duplicate of an earlier member).", ""]
        out += table(["seed", "recall C ≥ 0.6 (passages)", "(either)", "recall ≥ 2 shared (passages)", "(either)",
                      "precision"],
                     [[k, f"{a:.3f}", f"{b:.3f}", f"{c:.3f}", f"{d:.3f}", f"{e:.3f}"]
                      for k, (a, b, c, d, e) in sorted(sr.other_seeds.items())])
    if errs:
        out += ["### Wrong relations", ""]
        out += table(["order", "article", "related to", "relation", "evidence", "quote-sharing"],
                     [[e.order, e.doc.id, e.of.id, e.relation, e.evidence, "yes" if e.quote_sharing else "no"]
                      for e in errs[:30]])
    missed = [r for r in sr.copies if not r.found and (r.containment >= 0.6 or r.shared >= 2)]
    if missed:
        out += ["### Copies missed (containment ≥ 0.6 or ≥ 2 shared sentences)", ""]
        out += table(["order", "copy", "containment", "shared", "reason"],
                     [[r.order, r.doc.id, f"{r.containment:.2f}", r.shared, r.reason] for r in missed[:30]])
    return out
