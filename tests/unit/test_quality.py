"""The quality bars of issue 4, on the labelled sets in worker/quality/data/ (docs/quality.md reports the
same measurements; `python -m worker.quality` regenerates it).

A bar that fails here is a real gap in a stage, not a flaky test: the assertion message names
the cases that miss it. Everything here is deterministic and runs in a few seconds.
"""

from __future__ import annotations

import collections

import pytest

from worker.quality import dupeval, enteval, langeval, report, storyeval, syndeval, syndgen
from worker.quality.data import articles, entity_passages, language_texts
from worker.quality.dupgen import DEFAULT_SEED, NEGATIVE_KINDS, POSITIVE_KINDS, UNSPACED, generate_pairs

# --------------------------------------------------------------------------- #
# The evaluations, computed once                                              #
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def lang() -> langeval.LanguageReport:
    return langeval.evaluate(check_processes=True)


@pytest.fixture(scope="module")
def dedup() -> dupeval.DedupReport:
    return dupeval.evaluate()


@pytest.fixture(scope="module")
def ents() -> enteval.EntityReport:
    return enteval.evaluate()


@pytest.fixture(scope="module")
def story() -> storyeval.StoryReport:
    return storyeval.evaluate(with_scaling=False)


@pytest.fixture(scope="module")
def synd() -> syndeval.SyndicationReport:
    return syndeval.evaluate()


def _listing(rs: list[langeval.TextResult]) -> str:
    return "; ".join(f"{r.item.id}: {r.item.lang}->{r.code}" for r in rs)


# --------------------------------------------------------------------------- #
# The labelled sets have the shape the issue asks for                         #
# --------------------------------------------------------------------------- #


def test_language_set_shape() -> None:
    items = language_texts()
    labelled = [t for t in items if t.lang != "und"]
    assert len(labelled) >= 300
    langs = {t.lang for t in labelled}
    assert len(langs) >= 20
    scripts = {t.script for t in labelled}
    assert {"latin", "cyrillic", "arabic", "cjk", "devanagari", "greek", "hebrew", "hangul"} <= scripts
    assert collections.Counter(t.band for t in labelled).keys() == {"short", "sentence", "paragraph"}
    assert all(len(t.text) <= 60 for t in labelled if t.band == "short")
    for group in langeval.LOOKALIKES.values():
        assert set(group) <= langs, group
    assert len({t.id for t in items}) == len(items)


def test_article_and_entity_sets_shape() -> None:
    arts = articles()
    assert len(arts) >= 30 and len({a.lang for a in arts}) >= 3
    assert {a.lang for a in arts} >= {"en", "zh-cn", "ja"}
    assert len({a.event for a in arts}) >= 5
    passages = entity_passages()
    assert len(passages) >= 40
    assert len({p.lang for p in passages}) >= 5
    for p in passages:
        for g in p.gold:
            assert p.text[g.start:g.end].strip() == p.text[g.start:g.end] != ""


def test_duplicate_generator_is_deterministic_and_complete() -> None:
    a = generate_pairs(DEFAULT_SEED, stress=True)
    b = generate_pairs(DEFAULT_SEED, stress=True)
    assert a == b
    assert generate_pairs(DEFAULT_SEED + 1) != generate_pairs(DEFAULT_SEED)
    kinds = {p.kind for p in a}
    assert set(POSITIVE_KINDS) | set(NEGATIVE_KINDS) | {"stress"} == kinds
    assert {p.lang for p in a if p.label} >= {"en", "zh-cn", "ja"}


# --------------------------------------------------------------------------- #
# Language                                                                    #
# --------------------------------------------------------------------------- #


def test_language_paragraphs_at_least_99_percent(lang: langeval.LanguageReport) -> None:
    acc = lang.accuracy("paragraph")
    assert acc >= report.BAR_PARAGRAPH, (
        f"paragraph accuracy {acc:.3f} < {report.BAR_PARAGRAPH}: "
        + _listing([r for r in lang.select("paragraph") if not r.correct]))


def test_language_sentences_at_least_95_percent(lang: langeval.LanguageReport) -> None:
    acc = lang.accuracy("sentence")
    assert acc >= report.BAR_SENTENCE, (
        f"1-2 sentence accuracy {acc:.3f} < {report.BAR_SENTENCE}: "
        + _listing([r for r in lang.select("sentence") if not r.correct]))


def test_language_within_inventory_does_not_regress(lang: langeval.LanguageReport) -> None:
    """Regression guard on the languages the detector has profiles for (measured: 100 % / 99.2 %)."""
    assert lang.accuracy("paragraph", in_inventory=True) >= 0.99
    assert lang.accuracy("sentence", in_inventory=True) >= 0.98


def test_text_without_language_is_und(lang: langeval.LanguageReport) -> None:
    bad = [r for r in lang.select("und") if r.code != "und"]
    assert not bad, _listing(bad)


def test_language_is_deterministic(lang: langeval.LanguageReport) -> None:
    assert lang.deterministic_in_process
    assert lang.deterministic_across_processes


# --------------------------------------------------------------------------- #
# Near-duplicates                                                             #
# --------------------------------------------------------------------------- #


def _errors(rs: list[dupeval.PairResult]) -> str:
    return "; ".join(f"{r.pair.id} ({r.status}, score {r.score:.2f}, J {r.jaccard:.2f})"
                     for r in rs if r.predicted != r.pair.label)


def test_near_duplicates_precision_and_recall(dedup: dupeval.DedupReport) -> None:
    p, r = dedup.precision_recall()
    assert p >= report.BAR_DEDUP_PRECISION, _errors(dedup.results)
    assert r >= report.BAR_DEDUP_RECALL, _errors(dedup.results)


def test_near_duplicates_hold_for_chinese_and_japanese(dedup: dupeval.DedupReport) -> None:
    cjk = [r for r in dedup.results if r.pair.lang in UNSPACED]
    assert len(cjk) >= 100
    p, r = dedup.precision_recall(cjk)
    assert p >= report.BAR_DEDUP_PRECISION and r >= report.BAR_DEDUP_RECALL, _errors(cjk)


def test_half_of_an_article_is_a_duplicate(dedup: dupeval.DedupReport) -> None:
    """A half reprint has Jaccard ~0.45-0.5 with its original: LSH (42 bands x 3 rows) makes it a
    candidate with probability 1 - (1 - J^3)^42 = 0.99 at J 0.48, so "every one of 46" tests the
    hash family's luck (the string-hash family found 46, the vectorised one 45, with the same 539
    of 780 pairs found overall). What must hold: nearly all are found, and any candidate is
    confirmed by containment (score >= threshold whenever the pair was a candidate)."""
    halves = [r for r in dedup.results if r.pair.kind == "truncated_50"]
    found = sum(r.predicted for r in halves)
    assert halves and found >= 0.95 * len(halves), _errors(halves)
    assert all(r.predicted for r in halves if r.candidate), _errors(halves)


def test_reprints_well_below_jaccard_08_are_found_without_false_positives(dedup: dupeval.DedupReport) -> None:
    """Regression guard for the 'how far below 0.8' figure (measured: all of J >= 0.5 found)."""
    every = dedup.results + dedup.stress
    assert all(r.predicted for r in every if r.pair.label and r.jaccard >= 0.5), _errors(every)
    assert not any(r.predicted for r in every if not r.pair.label)


# --------------------------------------------------------------------------- #
# Entities                                                                    #
# --------------------------------------------------------------------------- #


def test_entities_micro_f1(ents: enteval.EntityReport) -> None:
    p, r, f = ents.micro()
    assert f >= report.BAR_ENTITY_F1, (f"micro P {p:.3f} R {r:.3f} F1 {f:.3f}: "
                                       + "; ".join(" ".join(e) for e in ents.errors()))


def test_entity_labels_do_not_regress(ents: enteval.EntityReport) -> None:
    """Regression guard per label (measured F1: PERSON .93, ORG .85, GPE .92, LOC .82, NORP .83)."""
    for label in enteval.LABELS:
        assert ents.micro(label)[2] >= 0.75, label


# --------------------------------------------------------------------------- #
# Story clusters                                                              #
# --------------------------------------------------------------------------- #


def test_seed_stories_in_every_arrival_order(story: storyeval.StoryReport) -> None:
    """000, 001, 002 and 004 (Putin in Murmansk, March 2025) share a story; 003 (BRICS summit,
    October 2024) does not — with one ingestion time for all, in each of the 120 orders."""
    assert story.seed_orders_ok == story.seed_orders == 120, story.seed_scores


def test_story_clusters_do_not_regress(story: storyeval.StoryReport) -> None:
    """Regression guards (no bar in the issue; measured with publication times: P 1.000 / R 0.931,
    cross-language P 1.000 / R 0.941)."""
    p, r = storyeval.pr(story.timed_pairs["all"])
    xp, xr = storyeval.pr(story.timed_pairs["cross-language"])
    assert p >= 0.95 and r >= 0.85, (p, r)
    assert xp >= 0.95 and xr >= 0.85, (xp, xr)


def test_report_renders(lang, dedup, ents, story, synd) -> None:
    text = report.render(lang, dedup, ents, story, ["dedup_threshold.png", "dedup_jaccard.png"], syn=synd)
    assert text.startswith("# Enrichment quality")
    for heading in ("## Summary", "## Language identification", "## Near-duplicates", "## Entities",
                    "## Story clusters", "## Syndication: shared passages"):
        assert heading in text


# --------------------------------------------------------------------------- #
# Syndication: reprints by shared passages (issue 25)                         #
# --------------------------------------------------------------------------- #


def test_syndication_set_shape() -> None:
    docs = syndgen.generate()
    assert docs == syndgen.generate(syndgen.DEFAULT_SEED) and docs != syndgen.generate(syndgen.DEFAULT_SEED + 1)
    wires = {d.group for d in docs if d.kind == "original"}
    assert len(wires) >= 10
    assert {d.kind for d in docs} == {"original", "independent", *syndgen.COPY_KINDS}
    independent = [d for d in docs if d.kind == "independent"]
    assert len(independent) >= 20
    # Hard negatives: independent coverage of each event, and statements (quoted) and advisories (not
    # quoted) carried word for word by independent articles and by the wire copies.
    assert {d.event for d in independent} == {d.event for d in docs if d.kind == "original"}
    statements = syndgen._statements()
    carried = {s for d in independent for s in d.statements}
    assert {statements[s]["quoted"] for s in carried} == {True, False} and len(carried) >= 8


def _copies(rs: list[syndeval.CopyResult]) -> str:
    return "; ".join(f"{r.doc.id} (order {r.order}, C {r.containment:.2f}, {r.shared} shared, {r.reason})"
                     for r in rs if not r.found)


def test_reprints_contained_at_least_0_6_are_found(synd: syndeval.SyndicationReport) -> None:
    rs = synd.by_containment(0.6, 1.01)
    assert len(rs) >= 200
    assert synd.recall(rs) >= syndeval.BAR_RECALL_CONTAINED, _copies(rs)


def test_reprints_sharing_two_sentences_are_found(synd: syndeval.SyndicationReport) -> None:
    rs = [r for r in synd.copies if r.shared >= 2]
    assert synd.recall(rs) >= syndeval.BAR_RECALL_SHARED, _copies(rs)


def test_reprint_relation_is_precise_and_quotes_are_not_reprints(synd: syndeval.SyndicationReport) -> None:
    errors = "; ".join(f"{e.doc.id} -> {e.of.id} ({e.relation}, order {e.order})" for e in synd.errors())
    assert synd.precision() >= syndeval.BAR_PRECISION, errors
    # The set has pairs the rules must set aside: non-reprints that share 2 sentences or more.
    assert synd.non_reprint_pairs_sharing_2 >= 20
    assert synd.reasons["quoted_passages_ignored"] and synd.reasons["common_passages_ignored"]
