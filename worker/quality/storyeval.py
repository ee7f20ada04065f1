"""Story clusters measured on worker/quality/data/articles.jsonl (events labelled by hand).

Every article goes through the worker's stages — normalise, detect_language(title + body),
tag_entities(body, language) — and then `StoryIndex.assign(id, entity ids with counts,
title + body, event time)`. Pairwise precision/recall over all article pairs: a pair is
positive when both articles report the same event, predicted positive when they got the same
story id. Cross-language pairs (different labelled languages) are reported separately.

Three settings:
* with publication times, articles in publication order — what the worker sees live;
* without times: every article at the same event time (a backfill without dates), the
  content alone must separate events; the assignment depends on arrival order, so the
  figures are averaged over `ORDERS` shuffled orders (worst order also given);
* the seeds alone, all 120 arrival orders, same event time: 000/001/002/004 must share one
  story and 003 must be apart.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass, field
from functools import lru_cache

from worker.quality.data import LabelledArticle, articles
from worker.stages.entities import tag_entities
from worker.stages.language import detect_language
from worker.stages.normalise import normalise
from worker.stages.stories import DEFAULT_THRESHOLD, StoryAssignment, StoryIndex

ORDERS = 20
SAME_TIME = 1_743_120_000.0  # 2025-03-28: one instant for the "without times" settings
SEED_EVENT = ("seed-000", "seed-001", "seed-002", "seed-004")
SEED_OTHER = "seed-003"


@dataclass(frozen=True, slots=True)
class Prepared:
    article: LabelledArticle
    language: str
    entities: dict[str, int]
    text: str


@lru_cache(maxsize=1)
def prepared() -> tuple[Prepared, ...]:
    out = []
    for a in articles():
        text = normalise(a.title, a.body)
        language = detect_language(f"{text.title}\n{text.body}").code
        ents = {e.id: e.count for e in tag_entities(text.body, language)}
        out.append(Prepared(a, language, ents, f"{text.title}\n\n{text.body}"))
    return tuple(out)


def run(items: list[Prepared], same_time: float | None = None,
        threshold: float = DEFAULT_THRESHOLD) -> dict[str, StoryAssignment]:
    index = StoryIndex(threshold=threshold)
    return {p.article.id: index.assign(p.article.id, p.entities, p.text,
                                       p.article.published_ts if same_time is None else same_time)
            for p in items}


def pairwise(out: dict[str, StoryAssignment], items: list[Prepared],
             cross: bool | None = None) -> dict[str, int]:
    tp = fp = fn = tn = 0
    for a, b in itertools.combinations(items, 2):
        if cross is not None and (a.article.lang != b.article.lang) != cross:
            continue
        same = a.article.event == b.article.event
        pred = out[a.article.id].story_id == out[b.article.id].story_id
        tp += same and pred
        fp += pred and not same
        fn += same and not pred
        tn += not same and not pred
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def pr(c: dict[str, int]) -> tuple[float, float]:
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
    r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
    return p, r


@dataclass
class StoryReport:
    threshold: float
    timed: dict[str, StoryAssignment]
    timed_pairs: dict[str, dict[str, int]]
    untimed_pairs: dict[str, list[dict[str, int]]]
    seed_orders_ok: int
    seed_orders: int
    seed_scores: dict[str, tuple[float, float]]  # article -> (min, max) score over orders
    items: list[Prepared] = field(default_factory=list)
    ms_per_article: dict[int, float] = field(default_factory=dict)

    def untimed_pr(self, scope: str) -> tuple[float, float, float, float]:
        """Mean precision, mean recall, worst precision, worst recall over the shuffled orders."""
        prs = [pr(c) for c in self.untimed_pairs[scope]]
        return (sum(p for p, _ in prs) / len(prs), sum(r for _, r in prs) / len(prs),
                min(p for p, _ in prs), min(r for _, r in prs))

    def clusters(self) -> list[list[Prepared]]:
        groups: dict[str, list[Prepared]] = {}
        for p in sorted(self.items, key=lambda p: p.article.published_ts):
            groups.setdefault(self.timed[p.article.id].story_id, []).append(p)
        return list(groups.values())


def seed_orders(threshold: float = DEFAULT_THRESHOLD) -> tuple[int, int, dict[str, tuple[float, float]]]:
    seeds = [p for p in prepared() if p.article.id.startswith("seed-")]
    ok = total = 0
    scores: dict[str, list[float]] = {p.article.id: [] for p in seeds}
    for order in itertools.permutations(seeds):
        out = run(list(order), SAME_TIME, threshold)
        group = {out[i].story_id for i in SEED_EVENT}
        ok += len(group) == 1 and out[SEED_OTHER].story_id not in group
        total += 1
        for i, a in out.items():
            if a.matched is not None or i == SEED_OTHER:
                scores[i].append(a.score)
    return ok, total, {i: (min(s), max(s)) for i, s in scores.items() if s}


def scaling(sizes: tuple[int, ...] = (1_000, 10_000, 50_000), seed: int = 7) -> dict[int, float]:
    """Mean ms per assign() after `n` synthetic articles (Zipf-distributed entity ids, 1 article
    every 30 s, arriving as published; stories retained 7 days after their last arrival): the
    cost must stay flat as stories accumulate."""
    rng = random.Random(seed)
    vocab = [f"person:p{i}" for i in range(20_000)] + [f"country:C{i}" for i in range(200)]
    cum = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(vocab))))
    out: dict[int, float] = {}
    index = StoryIndex()
    n_done = 0
    for n in sizes:
        while n_done < n:
            ids = rng.choices(vocab, cum_weights=cum, k=12)
            index.assign(f"a{n_done}", ids, f"{rng.randint(10, 99999)} people", n_done * 30.0, n_done * 30.0)
            n_done += 1
            if n_done % 500 == 0:
                index.evict_expired(n_done * 30.0)
        start = time.perf_counter()
        k = 300
        for j in range(k):
            ids = rng.choices(vocab, cum_weights=cum, k=12)
            index.assign(f"probe{n}-{j}", ids, "", n_done * 30.0, n_done * 30.0)
        out[n] = (time.perf_counter() - start) * 1000 / k
    return out


def evaluate(threshold: float = DEFAULT_THRESHOLD, orders: int = ORDERS, with_scaling: bool = True) -> StoryReport:
    items = list(prepared())
    chrono = sorted(items, key=lambda p: (p.article.published_ts, p.article.id))
    timed = run(chrono, None, threshold)
    timed_pairs = {"all": pairwise(timed, items), "same-language": pairwise(timed, items, False),
                   "cross-language": pairwise(timed, items, True)}
    untimed: dict[str, list[dict[str, int]]] = {"all": [], "same-language": [], "cross-language": []}
    for k in range(orders):
        order = items[:]
        random.Random(k).shuffle(order)
        out = run(order, SAME_TIME, threshold)
        untimed["all"].append(pairwise(out, items))
        untimed["same-language"].append(pairwise(out, items, False))
        untimed["cross-language"].append(pairwise(out, items, True))
    ok, total, scores = seed_orders(threshold)
    return StoryReport(threshold, timed, timed_pairs, untimed, ok, total, scores, items,
                       scaling() if with_scaling else {})
