"""Part 1 — the compute limit: every stage in-process over the corpus, no Kafka.

Per article it does exactly what the two agents do, in order, with the same functions:
    analyse agent:   parse_article → analyse_batch() over ANALYSE_BATCH_ARTICLES articles
                     (normalise, language, hashing, entities, story features) → orjson.dumps
    dedup agent:     orjson.loads → decide() (+ evict_expired) → finish() → orjson.dumps(enriched)
                     → the changelog record
Stage costs of normalise/language/hashing/entities/stories are the ones `analyse_batch()` records
(`timings_ms`, what the worker exports as ingest_stage_seconds); the rest is timed here.

The limit is then checked with N processes at once (spawned like worker processes, each with its
own models), because a per-core figure times the number of cores is only a bound.
Profiles (pyinstrument) of the hottest stage and of the whole path go to bench/results/.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import orjson

from bench import util
from worker import pipeline, records

STAGES = ("validate", "normalise", "language", "hashing", "passages", "entities", "stories", "serialise", "dedup",
          "finish")
ANALYSE_SIDE = ("validate", "normalise", "language", "hashing", "passages", "entities", "stories",
                "analyse_overhead", "serialise_analysed")
DEDUP_SIDE = ("deserialise_analysed", "dedup", "finish", "serialise_enriched", "changelog_record")


def warm_up() -> dict[str, float]:
    from worker.stages import entities, hashing, language

    out = {}
    for name, mod in (("language", language), ("hashing", hashing), ("entities", entities)):
        t0 = time.perf_counter()
        mod.warm_up()
        out[name] = round(time.perf_counter() - t0, 3)
    return out


def analyse_batch_articles() -> int:
    """The worker's ANALYSE_BATCH_ARTICLES (its default unless set in this environment)."""
    from worker.config import get_settings

    return get_settings().analyse_batch_articles


def run_path(raw: list[tuple[bytes, bytes]], num_perm: int = 126, batch: int | None = None) -> dict[str, np.ndarray]:
    """Run the full per-article path over `raw` [(key, value)]; µs per article per step.

    As the agents do: the analyse agent takes `batch` articles (ANALYSE_BATCH_ARTICLES) and
    analyses them together (`analyse_batch`, stage by stage), then each article goes through the
    funnel in order. An article's analyse-side cost is its own stage timings plus an equal share
    of the batch's overhead."""
    from worker.stages.validate import parse_article

    funnel = pipeline.ArticleIndex(num_perm=num_perm)  # the funnel state: dedup + stories, one record per article

    def decide(received):
        decided = funnel.decide(received)
        funnel.evict_expired()
        return decided, decided.verdict, lambda: decided.record

    batch = batch or analyse_batch_articles()
    n = len(raw)
    cols = {k: np.zeros(n) for k in (*ANALYSE_SIDE, *DEDUP_SIDE, "total")}
    ns = time.perf_counter_ns
    verdicts = []
    sizes = np.zeros((n, 4))
    stages = ("normalise", "language", "hashing", "passages", "entities", "stories")
    for first in range(0, n, batch):
        block = range(first, min(first + batch, n))
        # --- the analyse agent ---
        articles = []
        for i in block:
            t0 = ns()
            articles.append(parse_article(raw[i][0], raw[i][1], 1 << 20))
            cols["validate"][i] = (ns() - t0) / 1000
        t1 = ns()
        results = pipeline.analyse_batch(articles, num_perm)
        t2 = ns()
        for analysed in results:
            if isinstance(analysed, Exception):
                raise analysed
        stage_sums = [sum(a.timings_ms.get(s, 0.0) for s in stages) * 1000 for a in results]
        overhead = max(0.0, ((t2 - t1) / 1000 - sum(stage_sums)) / len(block))
        payloads = []
        for i, analysed in zip(block, results):
            st = analysed.timings_ms
            for stage in stages:
                cols[stage][i] = st.get(stage, 0.0) * 1000
            cols["analyse_overhead"][i] = overhead
            t_dump = ns()
            payloads.append(records.encode(analysed))
            cols["serialise_analysed"][i] = (ns() - t_dump) / 1000
        # --- the dedup agent, article by article ---
        for i, payload, stage_sum in zip(block, payloads, stage_sums):
            t3 = ns()
            received = records.decode_analysed(payload)
            t4 = ns()
            decided, verdict, record_bytes = decide(received)
            t5 = ns()
            enriched, _dup = pipeline.finish(received, decided, (t5 - t4) / 1e6)
            t6 = ns()
            out = records.encode(enriched)
            t7 = ns()
            record = record_bytes()
            t8 = ns()
            sizes[i] = (len(raw[i][1]), len(payload), len(out), len(record))
            cols["deserialise_analysed"][i] = (t4 - t3) / 1000
            cols["dedup"][i] = (t5 - t4) / 1000
            cols["finish"][i] = (t6 - t5) / 1000
            cols["serialise_enriched"][i] = (t7 - t6) / 1000
            cols["changelog_record"][i] = (t8 - t7) / 1000
            cols["total"][i] = (cols["validate"][i] + stage_sum + overhead + cols["serialise_analysed"][i]
                                + (t8 - t3) / 1000)
            verdicts.append(verdict.status)
            del out
    cols["_verdicts"] = np.array(verdicts)
    cols["_sizes"] = sizes
    return cols


def _summary(cols: dict[str, np.ndarray], mask: np.ndarray | None = None) -> dict:
    sel = (lambda a: a[mask]) if mask is not None else (lambda a: a)
    per_stage = {k: round(float(sel(cols[k]).mean()), 1) for k in (*ANALYSE_SIDE, *DEDUP_SIDE)}
    total = sel(cols["total"])
    analyse_us = sum(per_stage[k] for k in ANALYSE_SIDE)
    dedup_us = sum(per_stage[k] for k in DEDUP_SIDE)
    return {
        "articles": int(total.size),
        "us_per_article": per_stage,
        "analyse_side_us": round(analyse_us, 1),
        "dedup_side_us": round(dedup_us, 1),
        "total_us": {"mean": round(float(total.mean()), 1), "p50": round(float(np.percentile(total, 50)), 1),
                     "p99": round(float(np.percentile(total, 99)), 1)},
        "articles_per_s_per_core": round(1e6 / float(total.mean()), 1),
    }


def _child_main(path: str) -> None:
    """`python -m bench.compute --child FILE`: warm up, say ready, wait for "go", run, report."""
    import sys

    raw = [(k.encode(), v.encode()) for k, v in orjson.loads(Path(path).read_bytes())]
    warm_up()
    run_path(raw[:50])
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    run_path(raw)
    print(orjson.dumps({"seconds": time.perf_counter() - t0, "articles": len(raw)}).decode(), flush=True)


def parallel(raw: list[tuple[bytes, bytes]], processes: int) -> dict:
    """The same path in `processes` separate processes at once (like worker processes, each with
    its own models), each on its share of the corpus; started together once all are warm."""
    import subprocess
    import sys
    import tempfile

    children = []
    with tempfile.TemporaryDirectory(prefix="bench-compute-") as tmp:
        for i in range(processes):
            share = Path(tmp) / f"share-{i}.json"
            share.write_bytes(orjson.dumps([(k.decode(), v.decode()) for k, v in raw[i::processes]]))
            children.append(subprocess.Popen([sys.executable, "-m", "bench.compute", "--child", str(share)],
                                             cwd=util.ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             text=True))
        for child in children:
            assert child.stdout.readline().strip() == "ready", "compute child failed to start"
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        reports = [orjson.loads(child.stdout.readline()) for child in children]
        for child in children:
            child.wait(60)
    slowest = max(r["seconds"] for r in reports)
    return {"processes": processes, "articles": len(raw), "seconds": round(slowest, 2),
            "articles_per_s": round(len(raw) / slowest, 1),
            "per_process_articles_per_s": [round(r["articles"] / r["seconds"], 1) for r in reports]}


def profile(stages: list[str], corpus, raw, out_dir: Path, limit: int = 3000) -> dict:
    """pyinstrument profiles of some stages and of the whole path, saved as .txt and .html."""
    stage = stages[0]
    from pyinstrument import Profiler

    from worker.stages.entities import tag_entities
    from worker.stages.hashing import hash_text
    from worker.stages.language import detect_language
    from worker.stages.normalise import normalise
    from worker.stages.stories import story_features
    from worker.stages.validate import parse_article

    sample = corpus[:limit]
    texts = [normalise(a.title, a.body) for a in sample]
    langs = [detect_language(f"{t.title}\n{t.body}").code for t in texts]
    entity_counts = [{e.id: e.count for e in tag_entities(t.body, lang)} if "stories" in stages else {}
                     for t, lang in zip(texts, langs)]
    funnel = pipeline.ArticleIndex()  # the funnel: dedup + stories
    analysed = [pipeline.analyse(parse_article(k, v, 1 << 20), 126) for k, v in raw[:limit]] \
        if "dedup" in stages else []

    def dedup_call():
        return [funnel.decide(a) for a in analysed]
    calls = {
        "normalise": lambda: [normalise(a.title, a.body) for a in sample],
        "language": lambda: [detect_language(f"{t.title}\n{t.body}") for t in texts],
        "hashing": lambda: [hash_text(t.body, lang, 126) for t, lang in zip(texts, langs)],
        "entities": lambda: [tag_entities(t.body, lang) for t, lang in zip(texts, langs)],
        "stories": lambda: [story_features(counts, f"{t.title}\n\n{t.body}", float(i))
                            for i, (t, counts) in enumerate(zip(texts, entity_counts))],
        "dedup": dedup_call,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    wanted = [(s, calls[s]) for s in stages] + [("pipeline", lambda: run_path(raw[:limit]))]
    for name, fn in wanted:
        profiler = Profiler(interval=0.0005)
        profiler.start()
        fn()
        profiler.stop()
        text = out_dir / f"profile-{name}.txt"
        text.write_text(profiler.output_text(show_all=False))
        # the interactive HTML is large (MBs): kept out of the repository, under .cache/
        html = util.ROOT / ".cache" / "bench" / "profiles" / f"profile-{name}.html"
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(profiler.output_html())
        files[name] = {"text": util.rel(text), "html": util.rel(html)}
    return {"stage": stage, "stages": stages, "articles": len(sample), "files": files,
            "top": {s: util.profile_top(out_dir / f"profile-{s}.txt") for s in stages}}


def host_probe(raw: list[tuple[bytes, bytes]]) -> float:
    """µs per article of the whole per-article path over `raw` (a fixed sample, a fresh funnel):
    taken at several points of a run, it shows how fast the shared host was at each (its speed
    drifts by 10–20 % within minutes), so results of different runs and phases can be compared."""
    warm_up()
    run_path(raw[:20])  # first-call effects (regex and numpy caches) out of the figure
    return round(float(run_path(raw)["total"].mean()), 1)


def run(corpus, out_dir: Path, parallel_processes: int | None = None, log=print, passes: int = 3,
        warm_up_s: dict[str, float] | None = None) -> dict:
    """`warm_up_s`: the model load times if the caller loaded them first (a later `warm_up()` is 0)."""
    raw = [(a.id.encode(), a.to_bytes()) for a in corpus]
    warm = warm_up_s if warm_up_s is not None else warm_up()
    log(f"  warm-up: {warm}")
    run_path(raw[:200])  # first-call effects out of the figures
    sizes = np.array([a.size for a in corpus])
    kinds = np.array([a.kind for a in corpus])
    langs = np.array([a.lang for a in corpus])
    four_kb = (sizes >= 3584) & (sizes <= 4608) & (kinds == "original")
    # The shared host's speed drifts by ~10 % within minutes: several passes over the corpus
    # (each with a fresh funnel), the median pass reported, every pass kept.
    runs = []
    for _ in range(max(1, passes)):
        t0 = time.perf_counter()
        cols = run_path(raw)
        runs.append((_summary(cols)["articles_per_s_per_core"], time.perf_counter() - t0, cols))
    by_speed = sorted(runs, key=lambda r: r[0])
    _, wall, cols = by_speed[len(by_speed) // 2]  # the median pass: its stage costs are reported
    pass_figures = [{"articles_per_s_per_core": r[0],
                     "articles_per_s_per_core_4kb": _summary(r[2], four_kb)["articles_per_s_per_core"]}
                    for r in runs]
    median_4kb = sorted(p["articles_per_s_per_core_4kb"] for p in pass_figures)[len(pass_figures) // 2]
    result = {
        "funnel_decide": "dedup + story clustering (ArticleIndex.decide + evict_expired)",
        "all": _summary(cols),
        "passes": pass_figures,  # in run order; "all" and the rest are the median pass
        "wall_seconds": round(wall, 2),
        "analyse_batch_articles": analyse_batch_articles(),  # articles analysed together, as the worker does
        "warm_up_s": warm,
        "by_size": {
            "2-3KB": _summary(cols, (sizes < 3072) & (sizes >= 2048)),
            "4KB (3.5-4.5 KB originals)": _summary(cols, four_kb),
            "5-6KB": _summary(cols, sizes >= 5120),
        },
        "by_script": {
            "en": _summary(cols, langs == "en"),
            "other spaced": _summary(cols, (langs != "en") & ~np.isin(langs, ["zh-cn", "zh-tw", "ja", "th"])),
            "zh/ja/th": _summary(cols, np.isin(langs, ["zh-cn", "zh-tw", "ja", "th"])),
        },
        "verdicts": {str(k): int(v) for k, v in zip(*np.unique(cols["_verdicts"], return_counts=True))},
        "message_bytes_mean": dict(zip(("raw", "analysed (dedup-requests)", "enriched", "changelog record"),
                                       (round(float(x)) for x in cols["_sizes"].mean(axis=0)))),
    }
    a = result["all"]
    # One process cannot run the dedup side faster than 1 / dedup_side; two processes can split the
    # analyse side but the funnel stays on one of them.
    per_core = a["articles_per_s_per_core"]
    cores = os.cpu_count() or 1
    funnel_ceiling = 1e6 / max(a["dedup_side_us"], 1e-9)
    result["limits"] = {
        "articles_per_s_per_core": per_core,
        "articles_per_s_per_core_4kb": median_4kb,  # the median of the passes' 4 KB figures
        "dedup_funnel_ceiling_articles_per_s": round(funnel_ceiling, 1),
        "bound_n_cores": {str(n): round(min(n * per_core, funnel_ceiling if n > 1 else per_core), 1)
                          for n in (1, 2)},
        "cores": cores,
    }
    stage_means = {k: a["us_per_article"][k]
                   for k in ("normalise", "language", "hashing", "entities", "stories", "dedup")}
    hottest = max(stage_means, key=stage_means.get)
    log(f"  {a['articles']} articles: {a['total_us']['mean']} µs/article → {per_core}/s per core (median of "
        f"{[p['articles_per_s_per_core'] for p in pass_figures]}); hottest stage {hottest} ({stage_means[hottest]} µs)")
    n = parallel_processes or cores
    if n > 1:
        log(f"  {n} processes at once …")
        result["parallel"] = parallel(raw, n)
        result["limits"]["measured_n_processes"] = result["parallel"]
        log(f"  {n} processes: {result['parallel']['articles_per_s']} articles/s")
    # every stage, hottest first (a few seconds each)
    to_profile = sorted(stage_means, key=stage_means.get, reverse=True)
    log(f"  profiling {', '.join(to_profile)} …")
    result["profile"] = profile(to_profile, corpus, raw, out_dir)
    return result


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child_main(sys.argv[2])
