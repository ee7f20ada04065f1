"""Replay order and time spread: do duplicate groups and stories depend on arrival order?

Archives are replayed in file order, not publication order, and real coverage of an event
spreads over hours or days. This evaluation feeds the same labelled articles in publication
order, reversed, and in shuffled orders, and compares what comes out.

* Duplicate groups: the originals of worker/quality/data/articles.jsonl with their generated copies
  (worker/quality/dupgen.py's positive kinds: exact, re-encoded, rewritten, truncated, ...). Each
  original gets a publication time spread over two years, its copies within two days after it.
  A group is an original with its copies; the predicted groups are the duplicate clusters with
  every `merged_clusters` applied (what a consumer of articles.enriched sees).
* Stories: the 46 articles labelled with 9 events. Each event's articles are published within
  `spread` hours of its first report (0 = all at the same instant); the predicted partition is
  the stories with every `merged_stories` applied.

Pairwise precision/recall over all pairs of articles, for each order; and, for each order, the
share of article pairs whose same-group answer differs from the publication-order run.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from worker.quality.dupgen import DEFAULT_SEED, Doc, generate_pairs
from worker.quality.storyeval import Prepared, prepared
from worker.stages.dedup import DedupIndex
from worker.stages.hashing import Hashes, hash_text
from worker.stages.language import detect_language
from worker.stages.normalise import normalise
from worker.stages.stories import StoryIndex

DAY = 86400.0
TWO_YEARS = 730 * DAY
START = 1_672_531_200.0  # 2023-01-01
NUM_PERM = 126
SHUFFLES = 3
SPREADS_H = (0, 6, 24, 48)


@dataclass(frozen=True, slots=True)
class DedupItem:
    doc_id: str
    group: str  # the original's id
    published: float
    hashes: Hashes


@dataclass(frozen=True, slots=True)
class StoryItem:
    article_id: str
    event: str
    published: float
    prepared: Prepared


def orders(items: Sequence, key: Callable, shuffles: int = SHUFFLES, seed: int = 0) -> dict[str, list]:
    """Publication order, reversed, and `shuffles` shuffled orders of `items`."""
    chrono = sorted(items, key=key)
    out = {"publication": chrono, "reversed": chrono[::-1]}
    for k in range(shuffles):
        order = chrono[:]
        random.Random(seed + k).shuffle(order)
        out[f"shuffle {k + 1}"] = order
    return out


# -- duplicate groups -------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _dedup_docs(seed: int = DEFAULT_SEED) -> tuple[tuple[Doc, str], ...]:
    """(doc, group) for every original and each of its positive copies."""
    out: dict[str, tuple[Doc, str]] = {}
    for pair in generate_pairs(seed):
        if pair.label:
            out.setdefault(pair.first.id, (pair.first, pair.first.id))
            out.setdefault(pair.second.id, (pair.second, pair.first.id))
    return tuple(out.values())


@lru_cache(maxsize=4096)
def _hashes(title: str, body: str) -> Hashes:
    text = normalise(title, body)
    return hash_text(text.body, detect_language(f"{text.title}\n{text.body}").code, NUM_PERM)


def dedup_items(seed: int = DEFAULT_SEED) -> list[DedupItem]:
    """Originals spread over two years, each copy within two days after its original."""
    rng = random.Random(seed)
    base: dict[str, float] = {}
    items = []
    for doc, group in _dedup_docs(seed):
        if group not in base:
            base[group] = START + rng.random() * TWO_YEARS
        t = base[group] + (0.0 if doc.id == group else rng.random() * 2 * DAY)
        items.append(DedupItem(doc.id, group, t, _hashes(doc.title, doc.body)))
    return items


def dedup_groups(order: Sequence[DedupItem], threshold: float = 0.6) -> dict[str, str]:
    """doc id -> predicted group, from the verdicts alone (cluster_id with merges applied)."""
    index = DedupIndex(threshold=threshold, num_perm=NUM_PERM)
    verdicts = {}
    for arrival, item in enumerate(order):
        h = item.hashes
        verdicts[item.doc_id] = index.decide(item.doc_id, h.content_hash, h.signature, h.shingle_count,
                                             item.published, float(arrival)).verdict
    groups = UnionFind()
    for v in verdicts.values():
        groups.join(v.cluster_id, *v.merged_clusters)
    return {doc_id: groups.find(v.cluster_id) for doc_id, v in verdicts.items()}


# -- stories ------------------------------------------------------------------------------------


def story_items(spread_h: float, seed: int = 0) -> list[StoryItem]:
    """Each event's articles published within `spread_h` hours of its first report."""
    rng = random.Random(f"{seed}:{spread_h}")
    first: dict[str, float] = {}
    for p in prepared():
        first[p.article.event] = min(first.get(p.article.event, p.article.published_ts), p.article.published_ts)
    return [StoryItem(p.article.id, p.article.event, first[p.article.event] + rng.random() * spread_h * 3600, p)
            for p in prepared()]


def story_groups(order: Sequence[StoryItem]) -> dict[str, str]:
    """article id -> predicted story, from the assignments alone (merges applied)."""
    index = StoryIndex()
    assignments = {}
    for arrival, item in enumerate(order):
        p = item.prepared
        assignments[item.article_id] = index.assign(item.article_id, p.entities, p.text, item.published,
                                                    float(arrival))
    stories = UnionFind()
    for a in assignments.values():
        stories.join(a.story_id, *a.merged_stories)
    return {aid: stories.find(a.story_id) for aid, a in assignments.items()}


# -- scoring ------------------------------------------------------------------------------------


class UnionFind:
    """What a downstream consumer keeps to apply `merged_clusters` / `merged_stories`."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        while x in self.parent:
            x = self.parent[x]
        return x

    def join(self, *xs: str) -> None:
        roots = {self.find(x) for x in xs}
        keep = min(roots)
        for r in roots - {keep}:
            self.parent[r] = keep


def pairwise_pr(predicted: dict[str, str], truth: dict[str, str]) -> tuple[float, float]:
    tp = fp = fn = 0
    for a, b in itertools.combinations(sorted(truth), 2):
        same, pred = truth[a] == truth[b], predicted[a] == predicted[b]
        tp += same and pred
        fp += pred and not same
        fn += same and not pred
    return (tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0)


def pairs_differing(a: dict[str, str], b: dict[str, str]) -> float:
    """Share of article pairs on which two partitions disagree (same group or not)."""
    ids = sorted(a)
    pairs = differ = 0
    for x, y in itertools.combinations(ids, 2):
        pairs += 1
        differ += (a[x] == a[y]) != (b[x] == b[y])
    return differ / pairs if pairs else 0.0


@dataclass
class ReplayReport:
    dedup: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # order -> (P, R, differing)
    dedup_docs: int = 0
    dedup_groups: int = 0
    # (spread hours, order) -> (P, R, differing from publication order at that spread)
    stories: dict[tuple[float, str], tuple[float, float, float]] = field(default_factory=dict)
    story_articles: int = 0


def evaluate(shuffles: int = SHUFFLES) -> ReplayReport:
    report = ReplayReport()
    items = dedup_items()
    truth = {i.doc_id: i.group for i in items}
    report.dedup_docs, report.dedup_groups = len(items), len(set(truth.values()))
    reference = None
    for name, order in orders(items, key=lambda i: (i.published, i.doc_id), shuffles=shuffles).items():
        groups = dedup_groups(order)
        reference = reference or groups
        report.dedup[name] = (*pairwise_pr(groups, truth), pairs_differing(groups, reference))
    for spread in SPREADS_H:
        items_s = story_items(spread)
        truth_s = {i.article_id: i.event for i in items_s}
        report.story_articles = len(items_s)
        reference = None
        for name, order in orders(items_s, key=lambda i: (i.published, i.article_id), shuffles=shuffles).items():
            groups = story_groups(order)
            reference = reference or groups
            report.stories[(spread, name)] = (*pairwise_pr(groups, truth_s), pairs_differing(groups, reference))
    return report


def render(report: ReplayReport) -> list[str]:
    """The docs/quality.md section."""
    out = ["## Replay order and time spread", "",
           "`python -m worker.quality` (worker/quality/replayeval.py). The same labelled articles fed in "
           "publication order, reversed and in three shuffled orders. Groups and stories are read from the "
           "verdicts alone, with `merged_clusters` / `merged_stories` applied, as a consumer of "
           "`articles.enriched` sees them. \"Differs\" is the share of article pairs whose same-group answer "
           "differs from the publication-order run.", "",
           f"**Duplicate groups**: {report.dedup_groups} originals of worker/quality/data/articles.jsonl with their "
           f"generated copies ({report.dedup_docs} documents; exact, re-encoded, boilerplate, new headline, "
           "paragraph added or removed, truncated to 70 % and 50 %, light edits), each original published at a "
           "random time over two years (2023–2024) and its copies within two days after it.", "",
           "| order | precision | recall | differs from publication order |", "|---|---|---|---|"]
    for name, (p, r, d) in report.dedup.items():
        out.append(f"| {name} | {p:.3f} | {r:.3f} | {d:.2%} |")
    out += ["", f"**Stories**: the {report.story_articles} articles labelled with 9 events in 9 languages; each "
            "event's articles published at random within 0, 6, 24 or 48 hours of its first report "
            "(the event's earliest labelled time).", "",
            "| spread | order | precision | recall | differs from publication order |", "|---|---|---|---|---|"]
    for (spread, name), (p, r, d) in report.stories.items():
        out.append(f"| {spread:g} h | {name} | {p:.3f} | {r:.3f} | {d:.2%} |")
    out += ["", "What arrival order still changes, by design: which article of a group is `unique` (the first "
            "to arrive) and which one a copy names as `duplicate_of`; the names of clusters and stories (the "
            "smallest id of those merged, so they can change when a later article merges two); and, for "
            "stories, a member that matches its event's story only through articles that arrive after it "
            "(greedy assignment: it starts a story of its own when it comes first, and a later article merges "
            "the two only at cosine ≥ 0.40). Property tests (`tests/unit/test_replay_order.py`, hypothesis) "
            "hold the groups equal to publication order's for any permutation, and the story partition within "
            "2 % of pairs in at least 99 % of orders (300 shuffles of the 24-hour spread: 2 orders differ in "
            "5.3 % of pairs, with story precision 0.67, because an article arriving between two events' "
            "articles joins their stories; no order is worse); both assume every pair is within retention "
            "(`DEDUP_RETENTION` / `STORY_RETENTION` "
            "since arrival, and the budget). Before this version (dedup and stories evicted by the newest event "
            "time seen), the same duplicate set shuffled had a near-duplicate recall of 0.20 and shuffled "
            "stories a recall of 0.01–0.20 (figures of the issue that asked for this table)."]
    return out


if __name__ == "__main__":
    print("\n".join(render(evaluate())))
