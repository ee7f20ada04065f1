"""`python -m bench` (`make bench`): every benchmark of issue 6 in one run.

    python -m bench                 full run (≈ 10 min on 2 cores): 20,000 articles in-process, 10,000
                                    through the real workers, dedup index to 1 M, recovery of 100 k;
                                    writes bench/results/latest.json and the table in BENCHMARKS.md
    python -m bench --quick         small run (≈ 3 min): 2,000 articles, dedup to 100 k, recovery of
                                    20 k; writes bench/results/quick.json only
    python -m bench --articles 50000 --parts compute,dedup
    python -m bench --bootstrap HOST:PORT    use a running broker instead of the local one
    python -m bench --parts e2e --worker-env CONSUMER_MAX_FETCH_SIZE=16777216   A/B a faust setting

Parts, in order: compute (stages in-process), dedup (index scaling), memory (the funnel's state
per indexed article, by structure: bench/memory.py), transport (bare aiokafka loop), e2e (real
workers: throughput, then latency at half that rate), recovery (changelog rebuild), restart
(STORE=rocksdb://: restart to ready from the changelog and from a snapshot: bench/restart.py).
The ratios end-to-end / compute and end-to-end / transport come from the same run.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import time
import traceback
from pathlib import Path

import orjson

from bench import util

ALL_PARTS = ("compute", "dedup", "memory", "transport", "e2e", "recovery", "restart")
# The A/B run: the worker with faust's own fetch wait (the broker may hold a fetch 1,500 ms)
# against the default 20 ms: what it buys, measured in the same run and at the same offered load
# (worker/config.py, worker/kafka/faust_support.py IngestConsumerThread).
AB_ENV = {"CONSUMER_FETCH_MAX_WAIT_MS": "1500", "CONSUMER_FETCH_MIN_BYTES": "1"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small run (≈ 3 min); writes bench/results/quick.json")
    p.add_argument("--articles", type=int, help="corpus size (default 20000, quick 2000)")
    p.add_argument("--seed", type=int, default=None, help="corpus seed (default: bench.corpus.DEFAULT_SEED)")
    p.add_argument("--parts", default=",".join(ALL_PARTS), help=f"comma-separated subset of {','.join(ALL_PARTS)}")
    p.add_argument("--workers", default="1,2", help="worker process counts for e2e (default 1,2)")
    p.add_argument("--latency-seconds", type=float, help="duration of each latency run (default 20, quick 8)")
    p.add_argument("--load", type=float, default=0.5, help="latency offered load, share of sustained (0.5)")
    p.add_argument("--latency-rate", type=float, default=None,
                   help="latency offered load in articles/s instead of --load (for A/B runs at one rate)")
    p.add_argument("--latency-burst", type=int, default=0,
                   help="send this many extra articles at once before the paced ones (a backlog to drain)")
    p.add_argument("--hop-split", action="store_true",
                   help="latency runs also read articles.dedup-requests to split latency into hop 1 (analyse) "
                        "and hop 2 (dedup); that second consumer costs ~230 µs of CPU per article on the same "
                        "2 cores, which the throughput run does not carry")
    p.add_argument("--dedup-budget", type=int, default=None,
                   help="DEDUP_MAX_ARTICLES for the at-budget run (2x that many articles go through it; "
                        "default 100000, quick 10000; 0 skips it)")
    p.add_argument("--dedup-sizes", help="comma-separated index sizes (default 10000,100000,1000000; "
                                         "quick 10000,100000)")
    p.add_argument("--recovery-articles", type=int, help="changelog records to rebuild (default 100000, quick 20000)")
    p.add_argument("--memory-sizes", help="indexed articles of the memory part (default 100000,1000000; quick "
                                          "20000,100000); tracemalloc's breakdown at the first")
    p.add_argument("--memory-store", default="rocksdb", choices=("rocksdb", "memory", "none"),
                   help="where the memory part keeps the table's values (default rocksdb, as STORE=rocksdb://)")
    p.add_argument("--restart-articles", type=int,
                   help="indexed articles of the restart part (default 1000000, quick 20000)")
    p.add_argument("--restart-passages", action="store_true",
                   help="the restart part's records carry the passages part (syndication) too")
    p.add_argument("--e2e-articles", type=int,
                   help="articles seeded for each end-to-end throughput run (default 10000, quick 2000)")
    p.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the worker processes, e.g. CONSUMER_MAX_FETCH_SIZE=16777216 "
                        "(faust reads its settings from the environment); repeatable")
    p.add_argument("--no-ab", action="store_true",
                   help="skip the A/B end-to-end run with faust's fetch settings (full run only)")
    p.add_argument("--no-spy", action="store_true", help="do not sample the workers with py-spy during e2e")
    p.add_argument("--bootstrap", help="use this Kafka cluster instead of starting the local broker")
    p.add_argument("--keep-broker", action="store_true", help="leave the local 'bench' broker running")
    p.add_argument("--out", type=Path, help="results file (default bench/results/latest.json, quick: quick.json)")
    p.add_argument("--no-markdown", action="store_true", help="do not rewrite the table in BENCHMARKS.md")
    args = p.parse_args(argv)
    q = args.quick
    args.articles = args.articles or (2000 if q else 20000)
    args.latency_seconds = args.latency_seconds or (8.0 if q else 20.0)
    args.e2e_articles = min(args.e2e_articles or (2000 if q else 10000), args.articles)
    try:
        args.worker_env = dict(kv.split("=", 1) for kv in args.worker_env)
    except ValueError:
        p.error("--worker-env takes KEY=VALUE")
    args.dedup_budget = args.dedup_budget if args.dedup_budget is not None else (10_000 if q else 100_000)
    sizes = args.dedup_sizes or ("10000,100000" if q else "10000,100000,1000000")
    args.dedup_sizes = [int(x) for x in sizes.split(",")]
    args.recovery_articles = args.recovery_articles or (20000 if q else 100000)
    args.memory_sizes = [int(x) for x in (args.memory_sizes or ("20000,100000" if q else "100000,1000000")).split(",")]
    args.restart_articles = args.restart_articles or (20000 if q else 1_000_000)
    args.parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = set(args.parts) - set(ALL_PARTS)
    if unknown:
        p.error(f"unknown parts: {', '.join(sorted(unknown))}")
    args.workers = [int(x) for x in args.workers.split(",")]
    args.out = args.out or util.RESULTS / ("quick.json" if q else "latest.json")
    return args


PROBE_ARTICLES = 400  # the host-speed probe: ~0.5 s of the per-article path, at the start, middle and end


def log(msg: str) -> None:
    print(msg, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    from bench import corpus as corpus_mod

    util.RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict = {"run": {"command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
                             "quick": args.quick, "parts": args.parts},
                     "machine": util.machine(), "errors": {}}
    results["machine"]["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
    seed = args.seed if args.seed is not None else corpus_mod.DEFAULT_SEED

    log(f"corpus: generating {args.articles:,} articles (seed {seed}) …")
    t0 = time.perf_counter()
    corpus = corpus_mod.generate(args.articles, seed=seed)
    results["corpus"] = {**corpus_mod.describe(corpus), "seed": seed,
                         "generate_seconds": round(time.perf_counter() - t0, 1)}
    log(f"  {results['corpus']['body_bytes']} bytes, {results['corpus']['languages']} languages, "
        f"{results['corpus']['duplicate_share']:.1%} duplicates {results['corpus']['kinds']}")

    def part(name: str, fn):
        if name not in args.parts:
            return None
        log(f"\n[{name}]")
        t = time.perf_counter()
        try:
            value = fn()
        except Exception as exc:  # noqa: BLE001 - one failing part must not lose the others
            traceback.print_exc()
            results["errors"][name] = f"{type(exc).__name__}: {exc}"[:2000]
            return None
        if isinstance(value, dict):
            value["part_seconds"] = round(time.perf_counter() - t, 1)
        results[name] = value
        return value

    from bench import compute, dedup_scaling

    probe_sample = [(a.id.encode(), a.to_bytes()) for a in corpus[:PROBE_ARTICLES]]
    results["host_probe"] = []

    def probe(at: str) -> None:
        us = compute.host_probe(probe_sample)
        results["host_probe"].append({"at": at, "utc": time.strftime("%H:%M:%S", time.gmtime()),
                                      "us_per_article": us})
        log(f"host probe ({at}): {us:,.0f} µs/article over the first {len(probe_sample)} corpus articles")

    warm_up_s = compute.warm_up()  # model load times, measured before the first probe loads them
    probe("start")
    # profiles of a full run go next to latest.json; a quick run's stay out of the repository
    profile_dir = util.ROOT / ".cache" / "bench" / "quick" if args.quick else util.RESULTS
    part("compute", lambda: compute.run(corpus, profile_dir, log=log, passes=1 if args.quick else 3,
                                        warm_up_s=warm_up_s))
    part("dedup", lambda: dedup_scaling.run(args.dedup_sizes, log=log, budget=args.dedup_budget))
    part("memory", lambda: memory_part(args))

    if {"transport", "e2e", "recovery"} & set(args.parts):
        probe("before the Kafka parts")
        # This process is also the load generator: keep its garbage collections off the models
        # the compute part loaded (as the worker does after its warm-up).
        gc.collect()
        gc.freeze()
        kafka_parts(args, corpus, seed, results, part)
    probe("end")

    results["summary"] = summarise(results)
    results["run"]["seconds"] = round(time.perf_counter() - started, 1)
    results["machine"]["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    log(f"\nresults: {util.rel(args.out)} ({results['run']['seconds']} s)")
    from bench import report

    table = report.table(results)
    log("\n" + table)
    if not args.quick and not args.no_markdown:
        report.write_markdown(results, util.ROOT / "BENCHMARKS.md")
        log("BENCHMARKS.md updated")
    return 1 if results["errors"] else 0


def kafka_parts(args, corpus, seed: int, results: dict, part) -> None:
    from bench import corpus as corpus_mod
    from bench import kafka_bench
    from worker.kafka import local_broker

    run_dir = kafka_bench.WORK_DIR / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    broker_pid = 0
    if args.bootstrap:
        bootstrap = args.bootstrap
    else:
        log("\n[broker] starting the local Kafka broker 'bench' …")
        t = time.perf_counter()
        broker = local_broker.start("bench", fresh=True)
        bootstrap, broker_pid = broker.bootstrap_servers, broker.pid
        log(f"  {bootstrap} (Kafka {local_broker.kafka_version()}) in {time.perf_counter() - t:.1f}s")
    results["broker"] = {"bootstrap": bootstrap, "local": not args.bootstrap, "logs": util.rel(run_dir)}
    try:
        payloads = [(a.id.encode(), a.to_bytes()) for a in corpus]
        part("transport", lambda: kafka_bench.transport(bootstrap, payloads, log=log))

        def latency_run(sc, rate: float, seed_offset: int) -> dict:
            count = max(50, int(rate * args.latency_seconds)) + args.latency_burst
            fresh = corpus_mod.generate(count, seed=seed + seed_offset)  # articles no run has seen
            return kafka_bench.latency(sc, fresh, rate, log=log, burst=args.latency_burst,
                                       hop_split=args.hop_split)

        def e2e() -> dict:
            out: dict = {"worker_env": args.worker_env}
            if not args.quick:
                # A fresh broker's JVM is slow on the workers' request mix (idempotent producers,
                # changelog writes, many small fetches) for its first minute: the first end-to-end
                # run on it measured 730/s, the next ones 942-963/s (docs/benchmarks-log.md). One untimed
                # run first, so the measured runs and the A/B all meet a warm broker.
                n = max(args.workers)
                log(f"  -- broker warm-up: {n} worker process(es), {args.e2e_articles:,} articles (not measured)")
                sc = kafka_bench.Scenario(bootstrap, broker_pid, n, run_dir, env=args.worker_env)
                try:
                    sc.start()
                    kafka_bench.warm(sc, corpus_mod.generate(40, seed=seed + 400 + n), log=log)
                    out["broker_warm_up"] = kafka_bench.throughput(sc, corpus[:args.e2e_articles], log=log)
                except Exception as exc:  # noqa: BLE001 - the measured runs go on without it
                    log(f"  broker warm-up failed ({exc!r}); measuring on a cold broker")
                    out["broker_warm_up"] = {"error": repr(exc)}
                finally:
                    sc.stop()
            for n in args.workers:
                log(f"  -- {n} worker process(es)")
                sc = kafka_bench.Scenario(bootstrap, broker_pid, n, run_dir, env=args.worker_env)
                try:
                    entry = {"start": sc.start()}
                    entry["cold_start"] = kafka_bench.warm(sc, corpus_mod.generate(40, seed=seed + 500 + n), log=log)
                    entry["throughput"] = kafka_bench.throughput(
                        sc, corpus[:args.e2e_articles], log=log, profile_dir=None if args.no_spy else run_dir)
                    rate = args.latency_rate or args.load * entry["throughput"]["sustained_articles_per_s"]
                    entry["latency"] = latency_run(sc, rate, 1000 + n)
                    entry["latency"]["load_share_of_sustained"] = None if args.latency_rate else args.load
                    entry["logs"] = [util.rel(w.log_path) for w in sc.workers]
                finally:
                    sc.stop()
                out[f"{n}_workers"] = entry
            if not args.quick and not args.no_ab:
                # A/B: the same run with one setting changed (AB_ENV): what it buys, in the same run.
                n = max(args.workers)
                env = {**args.worker_env, **AB_ENV}
                log(f"  -- A/B: {n} worker process(es) with {AB_ENV}")
                sc = kafka_bench.Scenario(bootstrap, broker_pid, n, run_dir, env=env)
                try:
                    entry = {"env": env, "start": sc.start()}
                    entry["cold_start"] = kafka_bench.warm(sc, corpus_mod.generate(40, seed=seed + 600 + n), log=log)
                    entry["throughput"] = kafka_bench.throughput(sc, corpus[:args.e2e_articles], log=log)
                    # the main run's offered load, so that the two latencies compare
                    main_latency = out.get(f"{n}_workers", {}).get("latency", {})
                    rate = args.latency_rate or main_latency.get("offered_articles_per_s") or \
                        args.load * entry["throughput"]["sustained_articles_per_s"]
                    entry["latency"] = latency_run(sc, rate, 2000 + n)
                finally:
                    sc.stop()
                out["ab_tuned"] = {"workers": n, **entry}
            return out

        part("e2e", e2e)
        baseline = None
        if results.get("e2e", {}).get("1_workers"):
            baseline = results["e2e"]["1_workers"]["start"]["ready_after_s"][0]
        part("recovery", lambda: kafka_bench.recovery(bootstrap, run_dir, args.recovery_articles, baseline, log=log))
        part("restart", lambda: restart_part(args, bootstrap, run_dir))
    finally:
        if not args.bootstrap and not args.keep_broker:
            local_broker.stop("bench")
            shutil.rmtree(local_broker.LocalBroker.load("bench").run_dir, ignore_errors=True)


def memory_part(args) -> dict:
    """Issue 24: the funnel's state per indexed article (in-process, the worker's structures)."""
    from bench import memory

    out: dict = {"store": args.memory_store, "sizes": []}
    for n, size in enumerate(args.memory_sizes):
        r = memory.measure(size, args.memory_store, None if n == 0 else 0, log=log)
        out["sizes"].append(r)
        if n == 0:
            log(memory.table(r))
    out["bytes_per_article_rss"] = {str(r["articles"]): r["rss_growth_bytes_per_article"] for r in out["sizes"]}
    return out


def restart_part(args, bootstrap: str, run_dir: Path) -> dict:
    """Issue 24: restart to ready with N indexed, from the changelog and from a local snapshot."""
    from bench import restart

    return restart.restart(bootstrap, run_dir, args.restart_articles, args.restart_passages, log=log)


def summarise(r: dict) -> dict:
    """The headline figures, ratios and target checks."""
    s: dict = {}
    c = r.get("compute")
    if c:
        lim = c["limits"]
        s["compute_articles_per_s_per_core"] = lim["articles_per_s_per_core"]
        s["compute_articles_per_s_per_core_4kb"] = lim["articles_per_s_per_core_4kb"]
        s["compute_n_processes_measured"] = lim.get("measured_n_processes", {}).get("articles_per_s")
        s["stage_us_per_article"] = {k: c["all"]["us_per_article"][k]
                                     for k in ("normalise", "language", "hashing", "entities", "stories", "dedup")}
        s["hottest_stage"] = c["profile"]["stage"]
    t = r.get("transport")
    if t:
        s["transport_msgs_per_s"] = t["consume_produce_msgs_per_s"]
    e = r.get("e2e") or {}
    for key, entry in e.items():
        if not key.endswith("_workers"):
            continue
        n = int(key.split("_")[0])
        sustained = entry["throughput"]["sustained_articles_per_s"]
        row = {"sustained_articles_per_s": sustained, "latency_ms": entry["latency"]["latency_ms"],
               "latency_offered_per_s": entry["latency"]["offered_articles_per_s"]}
        if c:
            per_core = c["limits"]["articles_per_s_per_core"]
            bound = min(n, c["limits"]["cores"]) * per_core
            row["ratio_to_compute_bound"] = round(sustained / bound, 3)
            measured = c["limits"].get("measured_n_processes", {})
            if measured and measured.get("processes") == n:
                row["ratio_to_compute_measured"] = round(sustained / measured["articles_per_s"], 3)
            elif n == 1:
                row["ratio_to_compute_measured"] = round(sustained / per_core, 3)
        if t:
            row["ratio_to_transport"] = round(sustained / t["consume_produce_msgs_per_s"], 3)
        s[f"e2e_{n}_workers"] = row
    ab = e.get("ab_tuned")
    if ab:
        sustained = ab["throughput"]["sustained_articles_per_s"]
        row = {"workers": ab["workers"], "env": ab["env"], "sustained_articles_per_s": sustained,
               "latency_ms": ab["latency"]["latency_ms"],
               "latency_offered_per_s": ab["latency"]["offered_articles_per_s"]}
        if c:
            row["ratio_to_compute_bound"] = round(
                sustained / (min(ab["workers"], c["limits"]["cores"]) * c["limits"]["articles_per_s_per_core"]), 3)
        s["e2e_ab_tuned"] = row
    d = r.get("dedup")
    if d:
        s["dedup_cost_ratio_largest_vs_smallest"] = d["cost_ratio_largest_vs_smallest"]
        s["dedup_flat"] = d["flat"]
    mem = r.get("memory")
    if mem:
        s["memory_bytes_per_indexed_article"] = {"store": mem["store"], **mem["bytes_per_article_rss"]}
    rs = r.get("restart")
    if rs:
        s["restart"] = {"articles": rs["articles"],
                        "from_changelog_s": rs["from_changelog"]["start_to_ready_s"],
                        "from_snapshot_s": rs["from_snapshot"]["start_to_ready_s"],
                        "same_disk_no_snapshot_s": rs["same_disk_no_snapshot"]["start_to_ready_s"],
                        "ratio_snapshot_vs_changelog": rs["ratio_snapshot_vs_changelog"]}
    rec = r.get("recovery")
    if rec:
        s["recovery"] = {k: rec[k] for k in ("articles", "start_to_ready_s", "rebuild_step_s_from_log",
                                              "recovery_s_over_baseline")}
    targets = {}
    if c:
        targets["stages_>=1000_per_core_4kb"] = c["limits"]["articles_per_s_per_core_4kb"] >= 1000
    two = s.get("e2e_2_workers")
    if two:
        # against 2 × the per-core limit (the stricter reading; the measured 2-process figure is
        # reported next to it)
        targets["e2e_2_workers_>=70%_of_compute"] = two.get("ratio_to_compute_bound", 0) >= 0.7
        targets["p99_<=100ms_at_half_rate"] = (two["latency_ms"]["p99"] or 1e9) <= 100
    if d:
        targets["dedup_cost_flat_<=1.5x"] = d["flat"]
    if mem:
        largest = max(mem["bytes_per_article_rss"], key=int)
        targets[f"state_<=2KB_per_indexed_article_at_{largest}"] = mem["bytes_per_article_rss"][largest] <= 2048
    if rs and rs["articles"] >= 1_000_000:
        targets["restart_1M_from_snapshot_<=30s"] = rs["from_snapshot"]["start_to_ready_s"] <= 30
    s["targets_met"] = targets
    return s


if __name__ == "__main__":
    sys.exit(main())
