"""The LSH bucket table: growth in steps (old table moved a chunk per flush) with evictions."""

import numpy as np
import pytest

from worker.stages.dedup import DedupIndex
from worker.stages.multimap import Multimap

NUM_PERM = 126
BANDS = NUM_PERM // 3


@pytest.fixture
def tiny_tables(monkeypatch):
    """Start at 64 cells and flush every 256 entries, so a few thousand articles grow it many times."""
    monkeypatch.setattr(Multimap, "INITIAL_BUCKETS", 4)
    monkeypatch.setattr(Multimap, "PENDING_LIMIT", 256)


def test_every_live_entry_is_found_across_growths_and_evicted_ones_are_dropped(tiny_tables):
    rng = np.random.default_rng(5)
    generation = np.zeros(20_000, dtype=np.uint32)

    def is_live(refs):
        slots = (refs >> np.uint64(32)).astype(np.int64)
        return generation[slots] == (refs & np.uint64(0xFFFFFFFF)).astype(np.uint32)

    buckets = Multimap()
    shared = rng.integers(0, 2**64, size=500, dtype=np.uint64)  # buckets shared by many articles
    shared[0] = 0  # key 0 is stored as 1
    expected: dict[int, set[int]] = {}  # key -> refs, live or not
    live: list[tuple[int, np.ndarray]] = []  # (ref, keys)
    tables, seen_moving, inserted = {id(buckets._table)}, 0, 0
    for slot in range(8_000):
        keys = rng.integers(0, 2**64, size=BANDS, dtype=np.uint64)
        share = rng.random(BANDS) < 0.1
        keys[share] = shared[rng.integers(0, len(shared), size=int(share.sum()))]
        ref = (slot << 32) | int(generation[slot])
        buckets.add(keys, ref, is_live)
        inserted += len(keys)
        for key in keys.tolist():
            expected.setdefault(key or 1, set()).add(ref)
        live.append((ref, keys))
        if rng.random() < 0.4:  # evict one of the older half
            ref, _ = live.pop(int(rng.integers(0, len(live) // 2 + 1)))
            generation[ref >> 32] += 1
        tables.add(id(buckets._table))
        seen_moving += buckets._old is not None
        if slot % 50 == 0:
            for ref, keys in live[-3:] + [live[int(rng.integers(0, len(live)))]]:
                assert ref in buckets.lookup(keys)
            query = shared[rng.integers(0, len(shared), size=BANDS)]
            found = np.array(buckets.lookup(query), dtype=np.uint64)
            want = {r for key in query.tolist() for r in expected.get(key or 1, ())}
            want_live = {r for r in want if is_live(np.array([r], dtype=np.uint64))[0]}
            assert set(found[is_live(found)].tolist()) == want_live
    assert len(tables) >= 5 and seen_moving > 0  # it grew several times, some lookups while moving
    for ref, keys in live:
        assert ref in buckets.lookup(keys)
    # Moving keeps live entries only: the dead ones of ~3,200 evicted articles are mostly gone.
    assert buckets.entries() < inserted - 1_000 * BANDS


def test_index_finds_live_copies_and_forgets_evicted_ones_across_growths(tiny_tables):
    rng = np.random.default_rng(9)
    index = DedupIndex(num_perm=NUM_PERM, retention_s=300)
    originals = {}
    queried: set[int] = set()
    for i in range(3_000):
        signature = rng.integers(0, 2**32, size=NUM_PERM, dtype=np.uint32)
        assert index.decide(f"a{i}", f"h{i}", signature, 500, float(i), float(i)).verdict.status == "unique"
        originals[i] = signature
        index.evict_expired(float(i))
        if i % 10 == 0 and i > 400:
            # A copy (new content hash) of an article still in the window, and of one evicted.
            recent, evicted = int(rng.integers(i - 250, i)), int(rng.integers(0, i - 350))
            for j, in_window in ((recent, True), (evicted, False)):
                if j in queried:
                    continue
                queried.add(j)
                copy = originals[j].copy()
                copy[rng.random(NUM_PERM) < 0.05] += 1  # Jaccard ~0.9
                verdict = index.decide(f"q{j}", f"qh{j}", copy, 500, float(i), float(i)).verdict
                if in_window:
                    assert verdict.status == "near_duplicate" and verdict.duplicate_of == f"a{j}"
                else:
                    assert verdict.status == "unique" and verdict.similarity < 0.1
    assert index._buckets._table.cells >= 10_000  # grown from 64 cells, many times
