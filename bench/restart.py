"""Restart to ready with N indexed articles, STORE=rocksdb:// (issue 24): from the changelog and
from a local snapshot, measured in the same run on the same broker.

    python -m bench.restart --articles 200000        (a local broker is started, or --bootstrap)
    python -m bench.restart --articles 200000 --passages   the records carry the passages part too

1. N table records written to a fresh compacted `<app_id>-dedup-index-changelog`: the records the
   worker writes for N articles (bench/memory.py's input: analysed bench-corpus articles tiled
   to N, real MinHash signatures, 16 % duplicates; `ArticleIndex` with `stored=`, as the worker).
   Without the passages part (syndication) unless `--passages`: its index is not compact (see
   BENCHMARKS.md) and at 1 M would not fit this machine's memory with the rest.
2. Worker A on an empty data folder: faust reads the whole changelog into RocksDB, the index is
   rebuilt from it ("from the changelog"); then it writes its first snapshot (timed) and stops.
3. Worker B on the same folder: the snapshot, plus the changelog records after it (none here),
   plus the count check against the table ("from a snapshot").
4. Worker C on the same folder without the snapshot: RocksDB is up to date (nothing to read from
   the changelog), the index is rebuilt from the table's values ("same disk, no snapshot").
5. An empty worker (other topics): the baseline for start-to-ready and RSS.

Start to ready = process start to /health/ready answering 200 (the dedup index is built before
recovery completes). The ratios (snapshot / changelog) come from one run: this shared 2-core
machine's speed drifts by 10 % or more within minutes. RSS of each worker once ready, and per
indexed article over the empty worker's.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
import time
from pathlib import Path

import orjson

LOADED_RE = re.compile(r"dedup index loaded from snapshot: (\d+) articles in ([\d.]+)s \((.*)\)")
REBUILT_RE = re.compile(r"dedup index rebuilt from changelog: (\d+) articles in ([\d.]+)s")
SNAPSHOT_RE = re.compile(r"dedup index snapshot: (\d+) articles at changelog offset (\d+), ([\d.]+) MB in ([\d.]+)s")


def log(msg: str) -> None:
    print(msg, flush=True)


def table_records(n: int, passages: bool = False, base_k: int = 2000) -> tuple[list[tuple[bytes, bytes]], dict]:
    """The dedup table's content after n articles, as the worker's funnel writes it."""
    from bench.memory import Inputs, base_articles
    from worker.pipeline import ArticleIndex

    t0 = time.perf_counter()
    inputs = Inputs(n, base_articles(base_k), passages=passages)
    table: dict[str, bytes] = {}
    index = ArticleIndex(max_articles=max(n, 1), stored=table.get)
    for i, analysed in inputs.stream():
        decided = index.decide(analysed, now=inputs.arrival(i))
        if decided.record:
            table[analysed.id] = decided.record
        if i % 64 == 63:
            evicted = index.evict_expired(now=inputs.arrival(i))
            for key in evicted.delete:
                table.pop(key, None)
            table.update(evicted.rewrite)
    records = [(k.encode(), v) for k, v in table.items()]
    size = sum(len(v) for _, v in records)
    return records, {"records": len(records), "record_mean_bytes": round(size / max(len(records), 1)),
                     "changelog_mb": round(size / 2**20, 1), "passages": passages,
                     "generate_s": round(time.perf_counter() - t0, 1)}


class _Run:
    def __init__(self, bootstrap: str, run_dir: Path) -> None:
        from bench import kafka_bench

        self.kb, self.bootstrap, self.run_dir = kafka_bench, bootstrap, run_dir

    def worker(self, names, label: str, data: str, **env: str):
        w = self.kb.Worker.make(self.bootstrap, names, self.run_dir, label, **env)
        w.env["DATA_DIR"] = str(self.run_dir / f"faust-{data}")
        return w

    def ready(self, w, timeout: float) -> dict:
        """Start `w`, wait until ready; its start-to-ready seconds, RSS and index log lines."""
        from bench import util as u

        offset = len(w.log_text())
        w.start()
        ready_s = w.wait_ready(timeout)
        time.sleep(0.5)
        text = w.log_text()[offset:]
        out: dict = {"start_to_ready_s": round(ready_s, 2), "rss_mb": round(u.rss_bytes(w.pid) / 2**20, 1)}
        if (m := LOADED_RE.search(text)):
            out.update(index="snapshot", articles=int(m.group(1)), index_s=float(m.group(2)), detail=m.group(3))
        elif (m := REBUILT_RE.search(text)):
            out.update(index="changelog", articles=int(m.group(1)), index_s=float(m.group(2)))
        if "snapshot not used" in text:
            out["snapshot_refused"] = text.split("snapshot not used", 1)[1].split("\n", 1)[0][:300]
        return out

    def wait_snapshot(self, w, after: int, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = SNAPSHOT_RE.search(w.log_text()[after:])
            if m:
                return {"articles": int(m.group(1)), "offset": int(m.group(2)), "mb": float(m.group(3)),
                        "write_s": float(m.group(4))}
            time.sleep(0.2)
        raise TimeoutError(f"no snapshot written in {timeout}s:\n{w.log_tail()}")


def restart(bootstrap: str, run_dir: Path, articles: int, passages: bool = False, log=log) -> dict:
    from bench import kafka_bench

    r = _Run(bootstrap, run_dir)
    log(f"  generating the table records of {articles:,} articles (passages {'on' if passages else 'off'}) …")
    records, described = table_records(articles, passages)
    names = kafka_bench.Names.fresh("restart")
    asyncio.run(kafka_bench.create_product_topics(bootstrap, names))
    write_s = asyncio.run(kafka_bench._write_changelog(bootstrap, f"{names.app_id}-dedup-index-changelog", records))
    del records
    log(f"  {described['records']:,} records, {described['changelog_mb']} MB, written in {write_s:.1f}s")
    out: dict = {"articles": articles, **described, "changelog_write_s": round(write_s, 1)}
    timeout = 120 + articles / 200
    env = {"STORE": "rocksdb://"}

    empty_names = kafka_bench.Names.fresh("restart-empty")
    asyncio.run(kafka_bench.create_product_topics(bootstrap, empty_names))
    w = r.worker(empty_names, "restart-empty", "restart-empty", **env)
    try:
        out["empty"] = r.ready(w, 180)
    finally:
        w.stop()
    log(f"  empty worker: ready in {out['empty']['start_to_ready_s']}s, RSS {out['empty']['rss_mb']} MB")

    w = r.worker(names, "restart-a", "restart", **env)
    try:
        out["from_changelog"] = r.ready(w, timeout)
        out["snapshot_written"] = r.wait_snapshot(w, 0, timeout)
    finally:
        w.stop()
    log(f"  from the changelog (empty disk): ready in {out['from_changelog']['start_to_ready_s']}s "
        f"(index {out['from_changelog'].get('index_s')}s), RSS {out['from_changelog']['rss_mb']} MB; "
        f"snapshot {out['snapshot_written']['mb']} MB written in {out['snapshot_written']['write_s']}s")

    w = r.worker(names, "restart-b", "restart", **env)
    try:
        out["from_snapshot"] = r.ready(w, timeout)
    finally:
        w.stop()
    log(f"  from the snapshot (same disk): ready in {out['from_snapshot']['start_to_ready_s']}s "
        f"(index {out['from_snapshot'].get('index_s')}s: {out['from_snapshot'].get('detail')}), "
        f"RSS {out['from_snapshot']['rss_mb']} MB")

    for path in (run_dir / "faust-restart").rglob("dedup-index.snapshot"):
        path.unlink()
    w = r.worker(names, "restart-c", "restart", **env)
    try:
        out["same_disk_no_snapshot"] = r.ready(w, timeout)
    finally:
        w.stop()
    log(f"  same disk, no snapshot: ready in {out['same_disk_no_snapshot']['start_to_ready_s']}s "
        f"(index {out['same_disk_no_snapshot'].get('index_s')}s)")

    base = out["empty"]
    for key in ("from_changelog", "from_snapshot", "same_disk_no_snapshot"):
        run = out[key]
        run["over_empty_s"] = round(run["start_to_ready_s"] - base["start_to_ready_s"], 2)
        run["rss_bytes_per_article_over_empty"] = round((run["rss_mb"] - base["rss_mb"]) * 2**20 / articles)
    out["ratio_snapshot_vs_changelog"] = round(out["from_snapshot"]["start_to_ready_s"]
                                               / out["from_changelog"]["start_to_ready_s"], 3)
    out["ratio_snapshot_vs_same_disk_rebuild"] = round(out["from_snapshot"]["start_to_ready_s"]
                                                       / out["same_disk_no_snapshot"]["start_to_ready_s"], 3)
    log(f"  snapshot / changelog: ×{out['ratio_snapshot_vs_changelog']} of the start-to-ready time "
        f"(snapshot / same-disk rebuild ×{out['ratio_snapshot_vs_same_disk_rebuild']})")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.restart", description=__doc__.split("\n\n")[0])
    p.add_argument("--articles", type=int, default=200_000)
    p.add_argument("--passages", action="store_true",
                   help="records with the passages part (syndication, stages/passages.py) as the worker writes them")
    p.add_argument("--bootstrap", help="a running broker (default: start the local one, 'bench-restart')")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    from bench import kafka_bench
    from worker.kafka import local_broker

    run_dir = kafka_bench.WORK_DIR / ("restart-" + time.strftime("%Y%m%d-%H%M%S"))
    run_dir.mkdir(parents=True, exist_ok=True)
    bootstrap = args.bootstrap
    if not bootstrap:
        bootstrap = local_broker.start("bench-restart", fresh=True).bootstrap_servers
    try:
        result = restart(bootstrap, run_dir, args.articles, args.passages)
    finally:
        if not args.bootstrap:
            local_broker.stop("bench-restart")
            shutil.rmtree(local_broker.LocalBroker.load("bench-restart").run_dir, ignore_errors=True)
        for data in run_dir.glob("faust-*"):  # the RocksDB folders (GBs at 1 M); the logs stay
            shutil.rmtree(data, ignore_errors=True)
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
