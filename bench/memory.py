"""`python -m bench.memory`: where the dedup funnel's memory goes per indexed article, by structure.

    python -m bench.memory                        100,000 articles, RSS + tracemalloc breakdown
    python -m bench.memory --articles 1000000     (--no-tracemalloc for RSS only: faster)
    python -m bench.memory --store rocksdb        the table's values in RocksDB (faust's options)
    python -m bench.memory --json out.json

What is measured: the structures the worker's funnel holds — `pipeline.ArticleIndex` (the dedup
index and the story index) and the dedup table's values — built in a fresh child process per run
(so RSS is clean) by the calls the dedup agent makes: `ArticleIndex.decide` per article, the
table write of its record, `evict_expired` after every funnel batch of 64 with its deletes and
rewrites applied to the table. In-process, not a worker fed through Kafka: the worker's own
overhead (faust, aiokafka, the stages' models: ~430 MB at start, independent of the index) is
left out.

The table's values: `--store memory` keeps them in a dict, as faust's memory:// store does
(`STORE=memory://`, the default); `--store rocksdb` writes them to a RocksDB database opened
with faust's own options, as `STORE=rocksdb://` does (on disk; its memtables and block cache
are in the RSS); `--store none` leaves them out (the index alone).

Input: `base` (default 2,000) articles of the bench corpus (bench/corpus.py) analysed by the
worker's stages (`analyse_batch`), tiled to `articles`: article i carries the story features of
base article i mod base, renamed per tile (each tile of `base` articles makes its own stories,
as the corpus does), and the dedup part of the synthetic stream of bench/dedup_scaling.py (real
rensa MinHash signatures of synthetic shingle sets, 16 % exact and near duplicates) — so the
signatures, LSH buckets and duplicate share are those of 2-6 KB articles at any size, which
analysing 1 M corpus articles (~15 min) would give too. Ids are derived-id shaped ("art-" + 32
hex). Arrival clock: 200,000 articles a day (issue 24's figure), event times 0-6 h before
arrival; default retentions (30 days dedup, 7 days stories): at 1 M (5 days) nothing is evicted
yet, every article still has its story part.

Breakdown: tracemalloc (`--tracemalloc`, on by default) traces every allocation made while the
index is built; each trace still alive at the end is put under the structure of the first frame
(innermost first) in the worker's code or in this harness (`STRUCTURES`). Numpy arrays are
traced too (numpy reports its buffers to tracemalloc). RSS growth (after a full garbage
collection and malloc_trim) is reported next to it: the difference is allocator slack and what
tracemalloc does not see (RocksDB's native memory).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson

from bench import util

BATCH = 64  # articles per funnel batch: the agent evicts after each (worker/app.py deduplicate_batch)
ARRIVAL_STEP_S = 86400.0 / 200_000  # 200,000 articles a day
TRACE_FRAMES = 8

# (file under the repository, function) of the innermost worker/harness frame -> structure.
# Functions of the code before and after issue 24 are both listed, so the same command labels both.
STRUCTURES: dict[tuple[str, str], str] = {
    # dedup index
    ("worker/stages/dedup.py", "_allocate"): "dedup: signature + row arrays, id list, id dict",
    ("worker/stages/dedup.py", "load"): "dedup: per-article Python records",
    ("worker/stages/dedup.py", "_push_expiry"): "dedup: expiry queue",
    ("worker/stages/dedup.py", "decide"): "dedup: per-article Python records",
    ("worker/stages/dedup.py", "_near_duplicate_verdict"): "dedup: verdict objects",
    ("worker/stages/dedup.py", "_join"): "dedup: cluster merges",
    ("worker/stages/dedup.py", "band_keys"): "dedup: LSH multimap (pending keys)",
    ("worker/stages/dedup.py", "_hash_key"): "dedup: content-hash index (pending keys)",
    ("worker/stages/dedup.py", "_candidates"): "dedup: transient (last lookup)",
    ("worker/stages/dedup.py", "_gather"): "dedup: transient (last lookup)",
    ("worker/stages/dedup.py", "_content_hash"): "dedup: transient (last lookup)",
    ("worker/stages/dedup.py", "_hash_owner"): "dedup: transient (last lookup)",
    ("worker/stages/multimap.py", "*"): "dedup: LSH multimap",
    ("worker/stages/hashing.py", "*"): "dedup: signatures (numpy objects)",
    # story index
    ("worker/stages/stories/index.py", "assign_features"): "stories: per-article records + features",
    ("worker/stages/stories/index.py", "load"): "stories: per-article records + features",
    ("worker/stages/stories/index.py", "_apply"): "stories: stories (centroids, members, article lists)",
    ("worker/stages/stories/index.py", "<module>"): "stories: per-article records + features",
    ("worker/stages/stories/index.py", "new_story_id"): "stories: stories (centroids, members, article lists)",
    ("worker/stages/stories/index.py", "_bucket"): "stories: postings",
    ("worker/stages/stories/index.py", "_interned"): "input strings kept by the index (ids, hashes, feature names)",
    ("worker/stages/stories/index.py", "_unit"): "stories: stories (centroids, members, article lists)",
    ("worker/stages/stories/index.py", "_trim"): "stories: stories (centroids, members, article lists)",
    ("worker/stages/stories/index.py", "_merge"): "stories: stories (centroids, members, article lists)",
    ("worker/stages/stories/index.py", "_post"): "stories: postings",
    ("worker/stages/stories/index.py", "_count"): "stories: IDF window",
    ("worker/stages/stories/index.py", "count"): "stories: IDF window",
    ("worker/stages/stories/index.py", "__missing__"): "stories: IDF window",
    ("worker/stages/stories/index.py", "_matching_stories"): "stories: postings",
    # the funnel
    ("worker/pipeline.py", "_arrival"): "funnel: clock",
    ("worker/stages/passages.py", "*"): "passages index (--passages)",
    ("bench/memory.py", "tiled_passages"): "passages index (--passages)",
    ("worker/pipeline.py", "_record"): "table: values (record bytes)",
    ("worker/records.py", "*"): "table: values (record bytes)",
    ("bench/memory.py", "table_set"): "table: keys + dict (memory store)",
    ("bench/memory.py", "analysed"): "input strings kept by the index (ids, hashes, feature names)",
    ("bench/memory.py", "tiled_features"): "input strings kept by the index (ids, hashes, feature names)",
    ("bench/memory.py", "arrival"): "input floats kept by the index (arrival times)",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------------------------

def base_articles(k: int, seed: int | None = None) -> list:
    """`k` analysed bench-corpus articles (the story features and event times are theirs)."""
    from bench import corpus as corpus_mod
    from worker.pipeline import analyse_batch, warm_up
    from worker.stages.validate import parse_article

    warm_up()
    arts = corpus_mod.generate(k, seed=corpus_mod.DEFAULT_SEED if seed is None else seed)
    parsed = [parse_article(a.id.encode(), a.to_bytes(), 1 << 20) for a in arts]
    out = []
    for i in range(0, len(parsed), 16):
        out += [r for r in analyse_batch(parsed[i:i + 16], 126) if not isinstance(r, Exception)]
    return out


class Inputs:
    """Everything the run feeds in, generated before the index is built (so RSS growth while
    building is the index's): signatures as one matrix, per-article metadata as arrays."""

    def __init__(self, n: int, base: list, seed: int = 11, passages: bool = False) -> None:
        from bench.dedup_scaling import NUM_PERM, synthetic_stream

        self.n = n
        self.base = [dict(a.story_features) for a in base]
        self.passages = [getattr(a, "passages", None) for a in base] if passages else None
        self.sigs = np.zeros((n, NUM_PERM), dtype=np.uint32)
        self.hashes = np.zeros(n, dtype="S32")
        self.shingles = np.zeros(n, dtype=np.int64)
        rng = np.random.default_rng(seed)
        self.lag = rng.uniform(0, 6 * 3600, size=n)
        i = 0
        for chunk in synthetic_stream(n, seed=seed):
            for _aid, h, sig, n_sh, _t, _kind in chunk:
                self.sigs[i] = sig
                self.hashes[i] = h.encode()
                self.shingles[i] = n_sh
                i += 1
        self.t0 = 1_750_000_000.0

    def arrival(self, i: int) -> float:
        return self.t0 + i * ARRIVAL_STEP_S

    def analysed(self, i: int):
        """Article i as the funnel receives it (only what `ArticleIndex.decide` reads is filled in)."""
        import xxhash

        from worker import records

        arrival = self.arrival(i)
        event = arrival - float(self.lag[i])
        sig_hex = self.sigs[i].astype("<u4").tobytes().hex()
        return records.AnalysedArticle(
            id="art-" + xxhash.xxh3_128_hexdigest(i.to_bytes(8, "little")), title="", body="", source="",
            url="", published_at=None, ingested_at=None, metadata={},
            content=records.Content("", "", 0), language=records.Language("en", 1.0, []),
            hashes=records.Hashes(self.hashes[i].decode(),
                                  records.MinHash(len(self.sigs[i]), 1, int(self.shingles[i]), sig_hex)),
            entities=[], event_time=records.EventTime(None, event, "published", None),
            story_features=self.tiled_features(i), timings_ms={}, **self.tiled_passages(i))

    def tiled_features(self, i: int) -> dict[str, float]:
        tile, j = divmod(i, len(self.base))
        features = self.base[j]
        return dict(features) if tile == 0 else {f"{k}~{tile}": w for k, w in features.items()}

    def tiled_passages(self, i: int) -> dict:
        """Article i's sentence fingerprints (`--passages`): base article i mod base's, made
        distinct per tile (xor with a per-tile 52-bit constant)."""
        if self.passages is None:
            return {}
        tile, j = divmod(i, len(self.base))
        p = self.passages[j]
        if p is None:
            return {}
        salt = (tile * 0x9E3779B97F4A7C15) & ((1 << 52) - 1)
        return {"passages": type(p)([f ^ salt for f in p.fingerprints], list(p.sentences), list(p.quoted), p.total,
                                    *([list(p.paragraphs)] if hasattr(p, "paragraphs") else []))}

    def stream(self) -> Iterator:
        for i in range(self.n):
            yield i, self.analysed(i)


# ---------------------------------------------------------------------------------------------
# The table's values
# ---------------------------------------------------------------------------------------------

class MemoryTable:
    """faust's memory:// store: a dict of key bytes -> value bytes."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def table_set(self, key: str, value: bytes) -> None:
        self.data[key.encode()] = value

    def delete(self, key: str) -> None:
        self.data.pop(key.encode(), None)

    def stored(self, key: str) -> bytes | None:
        return self.data.get(key.encode())

    def close(self) -> None:
        pass


class RocksTable:
    """faust's rocksdb:// store: a RocksDB database with faust's options (worker's defaults)."""

    def __init__(self) -> None:
        from faust.stores.rocksdb import RocksDBOptions

        self.dir = Path(tempfile.mkdtemp(prefix="h24-mem-rocks-", dir=str(util.ROOT / ".cache")))
        self.db = RocksDBOptions().open(self.dir / "dedup-index-0.db")

    def table_set(self, key: str, value: bytes) -> None:
        self.db.put(key.encode(), value)

    def delete(self, key: str) -> None:
        self.db.delete(key.encode())

    def stored(self, key: str) -> bytes | None:
        return self.db.get(key.encode())

    def close(self) -> None:
        self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class NoTable:
    stored = None

    def table_set(self, key: str, value: bytes) -> None:
        pass

    def delete(self, key: str) -> None:
        pass

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------
# The run (child process)
# ---------------------------------------------------------------------------------------------

def _trim() -> None:
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def _structure(traceback: tracemalloc.Traceback, root: str) -> str:
    for frame in reversed(traceback):  # innermost last in tracemalloc's order: walk from it
        name = frame.filename
        if not name.startswith(root):
            continue
        rel = name[len(root):]
        if not rel.startswith(("worker/", "bench/memory.py")):
            continue
        func = _function_at(name, frame.lineno)
        label = STRUCTURES.get((rel, func)) or STRUCTURES.get((rel, "*"))
        return label or f"other: {rel}:{func}"
    return "other: outside the worker's code"


_FUNCS: dict[str, list[tuple[int, str]]] = {}


def _function_at(filename: str, lineno: int) -> str:
    """The innermost function (def) enclosing `lineno` of `filename` (tracemalloc frames carry
    no function names)."""
    import ast

    spans = _FUNCS.get(filename)
    if spans is None:
        spans = []
        try:
            tree = ast.parse(Path(filename).read_text())
        except (OSError, SyntaxError):
            tree = None
        if tree is not None:
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    spans.append((node.lineno, node.end_lineno or node.lineno, node.name))
        spans.sort(key=lambda s: s[1] - s[0])  # innermost (shortest) first
        _FUNCS[filename] = spans
    for lo, hi, name in spans:
        if lo <= lineno <= hi:
            return name
    return "<module>"


def child(n: int, base_k: int, store: str, trace: bool, budget: int = 0, passages: bool = False) -> dict:
    from worker.pipeline import ArticleIndex

    t0 = time.perf_counter()
    base = base_articles(base_k)
    inputs = Inputs(n, base, passages=passages)
    generate_s = time.perf_counter() - t0
    table = {"memory": MemoryTable, "rocksdb": RocksTable, "none": NoTable}[store]()
    _trim()
    if trace:
        tracemalloc.start(TRACE_FRAMES)
    rss0 = util.rss_bytes()
    traced0 = tracemalloc.get_traced_memory()[0] if trace else 0
    import inspect

    kwargs = {"max_articles": budget or max(n, 1)}
    if "stored" in inspect.signature(ArticleIndex).parameters:  # issue 24: the worker passes its table
        kwargs["stored"] = table.stored
    index = ArticleIndex(**kwargs)
    t1 = time.perf_counter()
    statuses: dict[str, int] = {}
    deleted = rewritten = 0
    for i, analysed in inputs.stream():
        decided = index.decide(analysed, now=inputs.arrival(i))
        if decided.record:
            table.table_set(analysed.id, decided.record)
        statuses[decided.verdict.status] = statuses.get(decided.verdict.status, 0) + 1
        if i % BATCH == BATCH - 1 or i == n - 1:
            evicted = index.evict_expired(now=inputs.arrival(i))
            for article_id in evicted.delete:
                table.delete(article_id)
            for article_id, record in evicted.rewrite.items():
                table.table_set(article_id, record)
            deleted += len(evicted.delete)
            rewritten += len(evicted.rewrite)
        if i and i % 100_000 == 0:
            log(f"    {i:,} articles, {time.perf_counter() - t1:.0f} s")
    del decided, analysed
    build_s = time.perf_counter() - t1
    _trim()
    rss1 = util.rss_bytes()
    indexed = len(index)
    out: dict = {
        "articles": n, "indexed": indexed, "store": store, "base_articles": len(base), "passages": passages,
        "story_records": len(index.stories._records) if hasattr(index.stories, "_records") else None,
        "verdicts": statuses, "table_deleted": deleted, "table_rewritten": rewritten,
        "rss_mb": round(rss1 / 2**20, 1),
        "rss_growth_bytes_per_article": round((rss1 - rss0) / indexed, 1),
        "build_us_per_article": round(build_s / n * 1e6, 1),
        "input_generation_s": round(generate_s, 1),
        "tracemalloc": trace,
    }
    if isinstance(table, MemoryTable):
        values = sum(len(v) for v in table.data.values())
        out["table_value_bytes_mean"] = round(values / max(len(table.data), 1), 1)
        out["table_keys"] = len(table.data)
    if trace:
        traced1 = tracemalloc.get_traced_memory()[0]
        snapshot = tracemalloc.take_snapshot()
        tracemalloc.stop()
        root = str(util.ROOT) + "/"
        by: dict[str, list[int]] = {}
        for stat in snapshot.statistics("traceback"):
            label = _structure(stat.traceback, root)
            entry = by.setdefault(label, [0, 0])
            entry[0] += stat.size
            entry[1] += stat.count
        total = sum(v[0] for v in by.values())
        out["traced_bytes_per_article"] = round((traced1 - traced0) / indexed, 1)
        out["breakdown_bytes_per_article"] = {
            k: round(v[0] / indexed, 1) for k, v in sorted(by.items(), key=lambda kv: -kv[1][0])
            if v[0] / indexed >= 0.5}
        out["breakdown_objects_per_article"] = {
            k: round(v[1] / indexed, 2) for k, v in sorted(by.items(), key=lambda kv: -kv[1][0])
            if v[0] / indexed >= 0.5}
        out["traced_total_bytes_per_article"] = round(total / indexed, 1)
    table.close()
    return out


def run_child(n: int, base_k: int = 2000, store: str = "memory", trace: bool = True, budget: int = 0,
              passages: bool = False, timeout: float = 7200) -> dict:
    cmd = [sys.executable, "-m", "bench.memory", "--child", str(n), str(base_k), store, str(int(trace)),
           str(budget), str(int(passages))]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=util.ROOT, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.memory child failed ({n}, {store}):\n{proc.stderr[-3000:]}")
    r = orjson.loads(proc.stdout.strip().splitlines()[-1])
    r["seconds"] = round(time.perf_counter() - t0, 1)
    return r


def measure(n: int, store: str = "memory", trace_articles: int | None = None, base_k: int = 2000,
            budget: int = 0, passages: bool = False, log=log) -> dict:
    """RSS from one child without tracemalloc (its bookkeeping would be in the RSS), the breakdown
    from a second child with it (`trace_articles`, default min(n, 100,000); 0: none)."""
    r = run_child(n, base_k, store, False, budget, passages)
    log(f"  {n:,} articles, store {store}: RSS growth {r['rss_growth_bytes_per_article']:,.0f} B/article "
        f"({r['indexed']:,} indexed; RSS {r['rss_mb']:,} MB), {r['build_us_per_article']} µs/article, "
        f"{r['seconds']} s")
    traced_n = min(n, 100_000) if trace_articles is None else trace_articles
    if traced_n:
        t = run_child(traced_n, base_k, store, True, budget, passages)
        r["traced_run"] = {k: t[k] for k in ("articles", "indexed", "traced_total_bytes_per_article",
                                              "breakdown_bytes_per_article", "breakdown_objects_per_article",
                                              "rss_growth_bytes_per_article", "seconds")}
        log(f"  tracemalloc over {traced_n:,} articles: {t['traced_total_bytes_per_article']:,.0f} B/article "
            f"traced, {t['seconds']} s")
    return r


def table(r: dict) -> str:
    """The breakdown as a markdown table (bytes per indexed article)."""
    t = r.get("traced_run") or {}
    lines = [f"tracemalloc over {t.get('articles', 0):,} articles (store {r['store']}); "
             f"RSS growth over {r['articles']:,} articles without tracemalloc", "",
             "| structure | B/article | allocations/article |", "|---|---|---|"]
    objs = t.get("breakdown_objects_per_article", {})
    for k, v in t.get("breakdown_bytes_per_article", {}).items():
        lines.append(f"| {k} | {v:,.0f} | {objs.get(k, 0):.2f} |")
    if t:
        lines.append(f"| **traced total** | **{t['traced_total_bytes_per_article']:,.0f}** | |")
    lines.append(f"| RSS growth ({r['articles']:,} articles) | {r['rss_growth_bytes_per_article']:,.0f} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--articles", type=int, default=100_000)
    p.add_argument("--base", type=int, default=2000, help="analysed corpus articles the input is tiled from")
    p.add_argument("--store", choices=("memory", "rocksdb", "none"), default="memory")
    p.add_argument("--trace-articles", type=int, default=None,
                   help="articles of the tracemalloc run (default min(articles, 100000); 0: no breakdown)")
    p.add_argument("--budget", type=int, default=0, help="DEDUP_MAX_ARTICLES (default: the article count)")
    p.add_argument("--passages", action="store_true",
                   help="the articles carry their sentence fingerprints: the passage index (syndication) is built too")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    r = measure(args.articles, args.store, args.trace_articles, args.base, args.budget, args.passages)
    print(table(r))
    print(orjson.dumps({k: v for k, v in r.items() if k != "traced_run"}, option=orjson.OPT_INDENT_2).decode())
    if args.json:
        args.json.write_bytes(orjson.dumps(r, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "--child":
        n, base_k, store, trace, budget, passages = sys.argv[2:]
        print(orjson.dumps(child(int(n), int(base_k), store, trace == "1", int(budget), passages == "1")).decode())
    else:
        sys.exit(main())
