"""The dedup index: exact, near, containment, redelivery, eviction, rebuild from records."""

import random
from pathlib import Path

import numpy as np
import orjson
from datasketch import MinHash

from worker.io.sources import parse_txt
from worker.stages.dedup import DedupIndex, IndexRecord
from worker.stages.hashing import content_hash, hash_text, shingles
from worker.stages.normalise import normalise

SEEDS = sorted((Path(__file__).resolve().parents[2] / "seeds").glob("*.txt"))
NUM_PERM = 126


def body(path: Path) -> str:
    parsed = parse_txt(path.read_text())
    return normalise(parsed["title"], parsed["body"]).body


def add(index: DedupIndex, article_id: str, text: str, t: float = 0.0, arrival: float = 0.0):
    h = hash_text(text, "en", NUM_PERM)
    return index.decide(article_id, h.content_hash, h.signature, h.shingle_count, t, arrival)


def test_seeds_are_unique_then_exact_duplicates_under_new_ids():
    index = DedupIndex(num_perm=NUM_PERM)
    for i, path in enumerate(SEEDS):
        assert add(index, f"a{i}", body(path)).verdict.status == "unique"
    for i, path in enumerate(SEEDS):
        d = add(index, f"b{i}", body(path))
        assert d.verdict.status == "exact_duplicate" and d.verdict.duplicate_of == f"a{i}"
        assert d.verdict.cluster_id == f"a{i}" and not d.redelivery


def test_redelivery_returns_the_first_verdict():
    index = DedupIndex(num_perm=NUM_PERM)
    add(index, "a", body(SEEDS[0]))
    first = add(index, "b", body(SEEDS[0]))
    again = add(index, "b", body(SEEDS[1]))  # same id, even other text: a redelivery
    assert again.redelivery and again.verdict == first.verdict
    assert len(index) == 2


def test_near_duplicate_headline_changed_trailer_removed():
    index = DedupIndex(num_perm=NUM_PERM)
    original = body(SEEDS[2])
    add(index, "orig", original)
    paragraphs = original.split("\n\n")
    variant = "\n\n".join(paragraphs[:-1])  # last paragraph (the trailer) removed
    d = add(index, "var", variant)
    assert d.verdict.status == "near_duplicate" and d.verdict.duplicate_of == "orig"
    assert d.verdict.cluster_id == "orig" and d.verdict.similarity >= 0.6


def test_truncated_copy_is_found_by_containment():
    index = DedupIndex(num_perm=NUM_PERM)
    original = body(SEEDS[1])
    add(index, "orig", original)
    words = original.split(" ")
    half = " ".join(words[: len(words) // 2])
    d = add(index, "half", half)
    assert d.verdict.status == "near_duplicate"
    assert d.verdict.containment > 0.85 and d.verdict.jaccard < 0.7


def test_different_stories_on_the_same_topic_are_unique():
    index = DedupIndex(num_perm=NUM_PERM)
    statuses = [add(index, str(i), body(p)).verdict.status for i, p in enumerate(SEEDS)]
    assert statuses == ["unique"] * 5


def test_jaccard_estimate_agrees_with_datasketch_reference():
    a, b = body(SEEDS[0]), body(SEEDS[0]).replace("Putin", "Mr Putin")
    sa, sb = set(shingles(a)), set(shingles(b))
    true_j = len(sa & sb) / len(sa | sb)
    ha, hb = hash_text(a, "en", NUM_PERM), hash_text(b, "en", NUM_PERM)
    ours = float((ha.signature == hb.signature).mean())
    ma, mb = MinHash(num_perm=NUM_PERM, seed=1), MinHash(num_perm=NUM_PERM, seed=1)
    ma.update_batch([s.encode() for s in sa])
    mb.update_batch([s.encode() for s in sb])
    assert abs(ours - true_j) < 0.15 and abs(ma.jaccard(mb) - true_j) < 0.15


def test_lsh_recall_at_the_threshold_is_high():
    """Pairs at Jaccard ~0.5-0.6 must nearly always become candidates (banding for recall)."""
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(50000)]
    index = DedupIndex(threshold=0.6, num_perm=NUM_PERM)
    found = 0
    trials = 60
    for t in range(trials):
        base = rng.sample(vocab, 400)
        # replace every 15th word: 2/3 of the 5-shingles survive, Jaccard 0.5, containment 0.67
        edited = [w if i % 15 else rng.choice(vocab) for i, w in enumerate(base)]
        add(index, f"o{t}", " ".join(base))
        found += add(index, f"e{t}", " ".join(edited)).verdict.status == "near_duplicate"
    assert found / trials >= 0.95


def test_eviction_is_by_arrival_age_and_reports_it():
    index = DedupIndex(num_perm=NUM_PERM, retention_s=100)
    add(index, "old", body(SEEDS[0]), t=5_000, arrival=0)
    add(index, "mid", body(SEEDS[1]), t=-9_000, arrival=50)
    assert index.evict_expired(now=99).ids == []
    # A far-future event time moves nothing: only the arrival clock does.
    add(index, "future", body(SEEDS[2]), t=4e9, arrival=90)
    assert index.evict_expired(now=99).ids == []
    eviction = index.evict_expired(now=160)
    assert eviction.ids == ["old", "mid"] and (eviction.by_age, eviction.by_budget) == (2, 0)
    assert index.get("old") is None and len(index) == 1
    # The evicted text is no longer known: seen again, it is unique.
    assert add(index, "again", body(SEEDS[0]), t=170, arrival=170).verdict.status == "unique"


def test_budget_evicts_the_oldest_arrivals_first():
    index = DedupIndex(num_perm=NUM_PERM, max_articles=3)
    for i, path in enumerate(SEEDS):
        add(index, f"a{i}", body(path), arrival=float(i))
    eviction = index.evict_expired(now=5.0)
    assert eviction.ids == ["a0", "a1"] and (eviction.by_age, eviction.by_budget) == (0, 2)
    assert len(index) == 3 and index.get("a2") is not None


def test_far_future_date_between_copies_keeps_every_copy_found():
    """Issue 16's first case: the seeds, one article dated 2099, the seeds again under new ids."""
    index = DedupIndex(num_perm=NUM_PERM)
    for i, path in enumerate(SEEDS):
        add(index, f"a{i}", body(path), t=1_743_120_000.0, arrival=1_000.0 + i)
    add(index, "future", "an unrelated text about something else entirely " * 20, t=4_070_908_800.0, arrival=1_010.0)
    index.evict_expired(now=1_011.0)
    for i, path in enumerate(SEEDS):
        d = add(index, f"b{i}", body(path), t=1_743_120_000.0, arrival=1_020.0 + i)
        assert d.verdict.status == "exact_duplicate" and d.verdict.duplicate_of == f"a{i}"


def test_a_text_matching_two_clusters_joins_them_whatever_the_order():
    """Near-duplication is not transitive: the two halves of one text are copies of it, not of
    each other. Whichever comes first, the three end in one cluster once merges are applied."""
    words = body(SEEDS[1]).split()
    whole = " ".join(words)
    first, second = " ".join(words[: len(words) * 6 // 10]), " ".join(words[len(words) * 4 // 10:])
    texts = {"whole": whole, "first": first, "second": second}
    import itertools
    for order in itertools.permutations(texts):
        index = DedupIndex(num_perm=NUM_PERM)
        verdicts = {name: add(index, name, texts[name]).verdict for name in order}
        parent: dict[str, str] = {}
        for v in verdicts.values():
            for other in v.merged_clusters:
                a, b = _root(parent, other), _root(parent, v.cluster_id)
                if a != b:
                    parent[a] = b
        assert len({_root(parent, v.cluster_id) for v in verdicts.values()}) == 1, (order, verdicts)
        # The index applies them itself (one name for the cluster, the smallest id joined).
        assert len({index.cluster_of(v.cluster_id) for v in verdicts.values()}) == 1


def _root(parent: dict[str, str], cluster: str) -> str:
    while cluster in parent:
        cluster = parent[cluster]
    return cluster


def test_rebuild_from_records_gives_the_same_answers():
    index = DedupIndex(num_perm=NUM_PERM)
    records = [add(index, f"a{i}", body(p), t=i).record for i, p in enumerate(SEEDS)]
    records.append(add(index, "dup", body(SEEDS[0]), t=9).record)
    rebuilt = DedupIndex(num_perm=NUM_PERM)
    for r in records:
        rebuilt.load(IndexRecord.from_dict(orjson.loads(orjson.dumps(r.to_dict()))))
    assert rebuilt.get("dup").verdict == index.get("dup").verdict
    d = add(rebuilt, "dup2", body(SEEDS[3]))
    assert d.verdict.status == "exact_duplicate" and d.verdict.duplicate_of == "a3"
    text = body(SEEDS[4]).rsplit("\n\n", 1)[0]
    assert add(rebuilt, "near", text).verdict.duplicate_of == "a4"


def test_signature_roundtrip_and_hash_is_case_and_space_insensitive_after_normalise():
    h = hash_text(body(SEEDS[0]), "en", NUM_PERM)
    record = IndexRecord("x", h.content_hash, h.shingle_count, 1.0,
                         add(DedupIndex(num_perm=NUM_PERM), "x", body(SEEDS[0])).verdict, h.signature)
    assert np.array_equal(IndexRecord.from_dict(orjson.loads(orjson.dumps(record.to_dict()))).signature,
                          h.signature)
    assert content_hash("Hello World") == content_hash("hello world")
    assert len(h.content_hash) == 32


def test_cjk_text_is_shingled_by_characters():
    zh = "北京时间三月二十七日，俄罗斯总统普京在摩尔曼斯克表示，朝鲜和金砖国家可以参与乌克兰和平进程。" * 2
    assert all(" " not in s and len(s) == 4 for s in shingles(zh, "zh-cn"))
    index = DedupIndex(num_perm=NUM_PERM)
    add(index, "zh1", zh)
    assert add(index, "zh2", zh[:-6] + "。另据报道。").verdict.status == "near_duplicate"
