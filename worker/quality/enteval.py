"""Entity tagging measured on the hand-labelled passages of worker/quality/data/entities.jsonl.

`tag_entities` reports one Entity per canonical id (first mention span + mention count), so the
primary unit is the (passage, canonical id) pair: a predicted id is a true positive when the
passage's gold has that id, whatever surface or language it was written in. This is what the
pipeline publishes and what downstream joins use. Per-label figures use the gold label for
true positives and misses and the predicted label for false positives.

Secondary figures:
* label agreement — of the true positives, how many carry the gold label;
* first-mention span — of the true positives, how many have exactly the gold first span;
* mention-weighted P/R — true positives weighted by min(predicted count, gold mentions),
  i.e. how well the counts match.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from worker.quality.data import EntityPassage, entity_passages
from worker.stages.entities import Entity, tag_entities

LABELS = ("PERSON", "ORG", "GPE", "LOC", "NORP")


@dataclass(frozen=True, slots=True)
class PassageResult:
    passage: EntityPassage
    predicted: tuple[Entity, ...]

    @property
    def gold(self) -> dict[str, str]:
        return self.passage.gold_ids()

    @property
    def pred(self) -> dict[str, str]:
        return {e.id: e.label for e in self.predicted}

    @property
    def true_positives(self) -> set[str]:
        return set(self.gold) & set(self.pred)

    @property
    def false_positives(self) -> set[str]:
        return set(self.pred) - set(self.gold)

    @property
    def misses(self) -> set[str]:
        return set(self.gold) - set(self.pred)


@dataclass
class EntityReport:
    results: list[PassageResult]

    def counts(self, label: str | None = None, lang: str | None = None) -> dict[str, int]:
        tp = fp = fn = 0
        for r in self.results:
            if lang is not None and r.passage.lang != lang:
                continue
            gold, pred = r.gold, r.pred
            tp += sum(1 for i in r.true_positives if label is None or gold[i] == label)
            fp += sum(1 for i in r.false_positives if label is None or pred[i] == label)
            fn += sum(1 for i in r.misses if label is None or gold[i] == label)
        return {"tp": tp, "fp": fp, "fn": fn}

    @staticmethod
    def prf(c: dict[str, int]) -> tuple[float, float, float]:
        p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
        r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f

    def micro(self, label: str | None = None, lang: str | None = None) -> tuple[float, float, float]:
        return self.prf(self.counts(label, lang))

    def languages(self) -> list[str]:
        return sorted({r.passage.lang for r in self.results})

    def label_agreement(self) -> tuple[int, int]:
        agree = total = 0
        for r in self.results:
            for i in r.true_positives:
                total += 1
                agree += r.gold[i] == r.pred[i]
        return agree, total

    def span_agreement(self) -> tuple[int, int]:
        agree = total = 0
        for r in self.results:
            first: dict[str, tuple[int, int]] = {}
            for g in r.passage.gold:
                first.setdefault(g.id, (g.start, g.end))
            for e in r.predicted:
                if e.id in first:
                    total += 1
                    agree += first[e.id] == (e.start, e.end)
        return agree, total

    def mention_weighted(self) -> tuple[float, float]:
        tp = pred_n = gold_n = 0
        for r in self.results:
            gold_counts: dict[str, int] = defaultdict(int)
            for g in r.passage.gold:
                gold_counts[g.id] += 1
            for e in r.predicted:
                pred_n += e.count
                tp += min(e.count, gold_counts.get(e.id, 0))
            gold_n += sum(gold_counts.values())
        return (tp / pred_n if pred_n else 1.0), (tp / gold_n if gold_n else 1.0)

    def errors(self) -> list[tuple[str, str, str, str]]:
        """(passage id, "FP"/"FN", id, surface) for every disagreement."""
        out = []
        for r in self.results:
            text = r.passage.text
            surf = {g.id: text[g.start:g.end] for g in reversed(r.passage.gold)}
            for i in sorted(r.misses):
                out.append((r.passage.id, "FN", i, surf[i]))
            for e in r.predicted:
                if e.id in r.false_positives:
                    out.append((r.passage.id, "FP", e.id, e.text))
        return out


def evaluate() -> EntityReport:
    return EntityReport([PassageResult(p, tuple(tag_entities(p.text, p.lang))) for p in entity_passages()])
