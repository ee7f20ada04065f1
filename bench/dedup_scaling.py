"""Part 4 — scaling of the dedup index: cost per lookup+insert and memory per article at
10 k, 100 k and 1 M indexed articles (in-process, one fresh process per size so RSS is clean).

Signatures are real rensa MinHash signatures (the worker's algorithm, seed and 126 permutations)
of synthetic shingle sets: each article is a set of 300–1,000 random 64-bit shingle hashes (the
shingle counts of 2–6 KB articles), so signature values and LSH bucket statistics are those of
real text. 8 % of articles are exact duplicates (same content hash), 5 % rewrites (10–30 % of
an earlier article's shingles replaced: Jaccard 0.54–0.82) and 3 % truncated reprints (the first
60 % of an earlier article's shingles: containment 1), of one of the 2,000 previous originals.

Cost per operation = `DedupIndex.decide()` + `evict_expired()` (what the dedup agent calls per
article), timed one by one over the operations that take the index from half the size to the size
(so each size's window spans the same share of growth, and amortised costs such as a table
growing are counted once per window, fairly at every size).
Memory per article = growth of the process RSS while building, divided by the number of
articles; plus a breakdown of where it goes.

At the budget (`budget`): an index with `max_articles` = B takes 2 B articles, so over the second
half every operation also evicts the oldest arrival: the cost per operation there (decide +
evict_expired) against the cost while filling, and the RSS once it holds B articles for good.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import orjson

from bench import util

NUM_PERM = 126
MINHASH_SEED = 1
EXACT, REWRITE, TRUNCATED = 0.08, 0.05, 0.03
LOOKBACK = 2000
CHUNK = 10_000


def synthetic_stream(n: int, seed: int = 7, chunk: int = CHUNK) -> Iterator[list[tuple]]:
    """Chunks of (article_id, content_hash, signature uint32[126], shingles, event_time, kind)."""
    from rensa import RMinHash

    rng = np.random.default_rng(seed)
    recent: list[tuple[str, np.ndarray]] = []  # (content hash, shingle hashes) of recent originals
    done = 0
    while done < n:
        m = min(chunk, n - done)
        u = rng.random(m)
        token_sets: list[np.ndarray] = []
        meta = []
        for j in range(m):
            i = done + j
            kind = "original"
            if recent and u[j] < EXACT + REWRITE + TRUNCATED:
                h, tokens = recent[int(rng.integers(len(recent)))]
                if u[j] < EXACT:
                    kind = "exact"
                elif u[j] < EXACT + REWRITE:
                    kind = "near_rewrite"
                    tokens = tokens.copy()
                    r = rng.uniform(0.10, 0.30)
                    swap = rng.random(tokens.size) < r
                    tokens[swap] = rng.integers(0, 2**63, size=int(swap.sum()), dtype=np.uint64)
                    h = f"{rng.integers(2**63):032x}"
                else:
                    kind = "near_truncated"
                    tokens = tokens[: int(tokens.size * 0.6)]
                    h = f"{rng.integers(2**63):032x}"
            else:
                tokens = rng.integers(0, 2**63, size=int(rng.integers(300, 1001)), dtype=np.uint64)
                h = f"{rng.integers(2**63):032x}"
                recent.append((h, tokens))
                if len(recent) > LOOKBACK:
                    recent.pop(0)
            token_sets.append(tokens)
            meta.append((f"bench-sx-{i:010d}", h, int(tokens.size), float(i), kind))
        flat = np.concatenate(token_sets)
        offsets = np.zeros(m + 1, dtype=np.uint64)
        offsets[1:] = np.cumsum([t.size for t in token_sets])
        sigs = np.array(RMinHash.digest_matrix_from_flat_token_hashes(flat, offsets, NUM_PERM, MINHASH_SEED)
                        .to_rows(), dtype=np.uint32)
        yield [(aid, h, sigs[j], n_sh, t, kind) for j, (aid, h, n_sh, t, kind) in enumerate(meta)]
        done += m


def _container_bytes(obj, depth: int = 0) -> int:
    """numpy arrays by their data, containers by their own size plus (one level) their items."""
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes) + 112
    if hasattr(obj, "memory_bytes"):  # an object that knows its own size (e.g. the LSH buckets)
        return int(obj.memory_bytes()) + sys.getsizeof(obj)
    if isinstance(obj, dict):
        size = sys.getsizeof(obj)
        if depth == 0 and obj:
            sample = list(obj.items())[:: max(1, len(obj) // 500)]
            per_item = sum(_item_bytes(k) + _item_bytes(v) for k, v in sample) / len(sample)
            size += int(per_item * len(obj))
        return size
    if isinstance(obj, (list, tuple, set)):
        size = sys.getsizeof(obj)
        if depth == 0 and obj:
            items = list(obj)
            sample = items[:: max(1, len(items) // 500)]
            size += int(sum(_item_bytes(x) for x in sample) / len(sample) * len(items))
        return size
    fields = getattr(obj, "__dict__", None)
    if fields is not None and depth == 0:
        return sys.getsizeof(obj) + sum(_container_bytes(v, depth + 1) for v in fields.values())
    return sys.getsizeof(obj)


def _item_bytes(x) -> int:
    if isinstance(x, np.ndarray):
        return int(x.nbytes) + 112
    if isinstance(x, (tuple, list)):
        return sys.getsizeof(x) + sum(_item_bytes(y) for y in x)
    fields = getattr(x, "__slots__", None)
    if fields:
        return sys.getsizeof(x) + sum(_item_bytes(getattr(x, f, None)) for f in fields)
    return sys.getsizeof(x)


def _breakdown(index, n: int) -> dict:
    """Where the memory goes: bytes per article by attribute of the index (approximate: shared
    objects are counted once per holder). Reports what it finds, whatever the internals."""
    out = {}
    for name, value in vars(index).items():
        try:
            size = _container_bytes(value)
        except Exception:  # noqa: BLE001
            continue
        if size / n >= 1:
            out[name] = round(size / n, 1)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _trim() -> None:
    """Give freed heap memory back to the OS, so RSS shows what is really held."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def _op_parts(index, sigs: np.ndarray) -> dict:
    """Split an operation: band keys (pure CPU, independent of size) vs bucket lookups (memory)."""
    from worker.stages.dedup import band_keys

    def candidates(s):
        return index._candidates(band_keys(s))

    ns = time.perf_counter_ns
    rng = np.random.default_rng(3)
    fresh = [np.ascontiguousarray(rng.permutation(s)) for s in sigs]  # unseen band keys, same values
    t0 = ns()
    for s in fresh:
        band_keys(s)
    t1 = ns()
    for s in fresh:
        candidates(s)
    t2 = ns()
    k = len(fresh)
    band = (t1 - t0) / 1000 / k
    return {"band_keys": round(band, 2), "lookups_of_42_bands": round((t2 - t1) / 1000 / k - band, 2)}


def child(size: int, window: int, budget: int = 0) -> dict:
    """`budget` > 0: the index's max_articles; `size` articles go through it (see the docstring)."""
    from worker.stages.dedup import DedupIndex

    # All inputs first (one signature matrix + small metadata), so the RSS growth measured while
    # building is the index's alone. Each decide() gets its own signature array, as in the
    # worker (signature_from_hex makes one per article).
    t0 = time.perf_counter()
    sigs = np.zeros((size, NUM_PERM), dtype=np.uint32)
    meta: list[tuple] = []
    for chunk in synthetic_stream(size):
        for aid, h, sig, n_sh, t, kind in chunk:
            sigs[len(meta)] = sig
            meta.append((aid, h, n_sh, t, kind == "original"))
    generate_s = time.perf_counter() - t0
    _trim()
    rss0 = util.rss_bytes()
    index = DedupIndex(num_perm=NUM_PERM, max_articles=budget or size)
    window = size // 2 if window <= 0 else min(window, size // 2)
    evicted = 0
    per_op = np.zeros(window)
    total_ns = 0
    statuses = {"unique": 0, "exact_duplicate": 0, "near_duplicate": 0}
    agree = 0
    ns = time.perf_counter_ns
    start_window = size - window
    slowest = 0
    for i, (aid, h, n_sh, t, original) in enumerate(meta):
        sig = sigs[i].copy()
        t0 = ns()
        decision = index.decide(aid, h, sig, n_sh, t, float(i))
        evicted += len(index.evict_expired(float(i)).ids)
        dt = ns() - t0
        total_ns += dt
        if dt > slowest:
            slowest = dt
        if i >= start_window:
            per_op[i - start_window] = dt / 1000
        status = decision.verdict.status
        statuses[status] += 1
        agree += (status == "unique") == original
    del decision
    parts = _op_parts(index, sigs[:2000])
    _trim()
    rss1 = util.rss_bytes()
    assert len(index) == (budget or size), (len(index), size, budget)
    return {
        "articles": size,
        "budget": budget or None,
        "evicted": evicted,
        "us_per_op": {"mean": round(float(per_op.mean()), 2), "p50": round(float(np.percentile(per_op, 50)), 2),
                      "p99": round(float(np.percentile(per_op, 99)), 2), "max": round(float(per_op.max()), 1),
                      "window_ops": window},
        "us_per_op_whole_build": round(total_ns / 1000 / size, 2),
        "slowest_op_ms_whole_build": round(slowest / 1e6, 1),
        "memory_bytes_per_article_rss": round((rss1 - rss0) / size, 1),
        "rss_mb": round(rss1 / 2**20, 1),
        "index_arrays_mb": round(index.memory_bytes() / 2**20, 1),
        "breakdown": _breakdown(index, size),
        "op_parts_us": parts,
        "verdicts": statuses,
        "verdict_matches_ground_truth": round(agree / size, 5),
        "input_generation_s": round(generate_s, 1),
    }


def _run_child(size: int, window: int, budget: int = 0) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.dedup_scaling", "--child", str(size), str(window), str(budget)],
                          cwd=util.ROOT, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"dedup scaling child failed for {size}:\n{proc.stderr[-3000:]}")
    r = orjson.loads(proc.stdout.strip().splitlines()[-1])
    r["seconds"] = round(time.perf_counter() - t0, 1)
    return r


def at_budget(budget: int, log=print) -> dict:
    """The index at its memory budget: 2 x budget articles through max_articles = budget."""
    r = _run_child(2 * budget, 0, budget)
    log(f"  budget {budget:,}: {r['us_per_op']['mean']} µs/op while evicting one per op (p99 "
        f"{r['us_per_op']['p99']}), {r['evicted']:,} evicted, RSS {r['rss_mb']} MB at the budget, {r['seconds']} s")
    return r


def run(sizes: list[int], window: int = 0, log=print, budget: int = 0) -> dict:
    results = []
    for size in sizes:
        r = _run_child(size, window)
        results.append(r)
        log(f"  {size:>9,} articles: {r['us_per_op']['mean']} µs/op (p99 {r['us_per_op']['p99']}), "
            f"{r['memory_bytes_per_article_rss']:.0f} B/article RSS, {r['seconds']} s")
    first, last = results[0], results[-1]
    cost_ratio = last["us_per_op"]["mean"] / first["us_per_op"]["mean"]
    mem_ratio = last["memory_bytes_per_article_rss"] / max(first["memory_bytes_per_article_rss"], 1)
    budgeted = at_budget(budget, log) if budget else None
    same_size = next((r for r in results if r["articles"] == budget), None)
    return {
        "sizes": results,
        "at_budget": budgeted,
        "eviction_cost_ratio_at_budget_vs_same_size": (
            round(budgeted["us_per_op"]["mean"] / same_size["us_per_op"]["mean"], 2)
            if budgeted and same_size else None),
        "cost_ratio_largest_vs_smallest": round(cost_ratio, 2),
        "memory_ratio_largest_vs_smallest": round(mem_ratio, 2),
        "flat": cost_ratio <= 1.5,
        "signatures": "real rensa MinHash (126 perm, seed 1) of synthetic shingle-hash sets",
    }


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(orjson.dumps(child(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))).decode())
    else:
        sizes = [int(x) for x in sys.argv[1:]] or [10_000, 100_000]
        print(orjson.dumps(run(sizes), option=orjson.OPT_INDENT_2).decode())
