"""Compare worker.stages.language with plain (seeded) langdetect.

    .venv/bin/python -m bench.language_eval [--fit-temperature]

Uses the labelled language check set (worker/quality/data/language_paragraphs.jsonl, also the
check set of tests/unit/test_language.py): whole paragraphs, 1-2 sentence texts, and short word
fragments (3-8 words; 6-16 characters for Chinese, Japanese and Thai) that stress the und threshold
and calibration. Prints accuracy, agreement with langdetect, a calibration table, timings and load
time.  --fit-temperature also fits the softmax temperature by log loss on the fragments and
sentences (how TEMPERATURE was chosen).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
from langdetect.lang_detect_exception import LangDetectException

from worker.quality.data import NO_SPACE_LANGS, check_set_paragraphs, check_set_sentences, language_check_set
from worker.stages import language
from worker.stages.language import UND, detect_language

ROOT = Path(__file__).resolve().parents[1]
SEEDS = sorted((ROOT / "seeds").glob("*.txt"))
LABELLED = language_check_set()
CHAR_LANGS = NO_SPACE_LANGS | {"th"}


def fragments() -> list[tuple[str, str]]:
    out = []
    for lang, ps in LABELLED.items():
        for p in ps:
            for s in p:
                if lang in CHAR_LANGS:
                    for n in (6, 10, 16):
                        out += [(lang, s[i : i + n]) for i in range(0, max(len(s) - n, 0) + 1, n)]
                else:
                    words = s.split()
                    for n in (3, 5, 8):
                        out += [(lang, " ".join(words[i : i + n])) for i in range(0, len(words) - n + 1, n)]
    return out


def langdetect_detector():
    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)

    def detect(text: str) -> str:
        d = factory.create()
        d.append(text)
        try:
            return d.detect()
        except LangDetectException:
            return UND

    return detect


def compare(name: str, samples, ld) -> None:
    ours = [detect_language(t) for _, t in samples]
    theirs = [ld(t) for _, t in samples]
    gold = [lang for lang, _ in samples]
    n = len(samples)
    ok_ours = sum(r.code == g for r, g in zip(ours, gold))
    ok_ld = sum(c == g for c, g in zip(theirs, gold))
    agree = sum(r.code == c for r, c in zip(ours, theirs))
    und = sum(r.code == UND for r in ours)
    answered = [(r, c, g) for r, c, g in zip(ours, theirs, gold) if r.code != UND]
    na = max(len(answered), 1)
    print(
        f"{name:<22} n={n:<4} ours {ok_ours / n:6.1%}  langdetect {ok_ld / n:6.1%}  "
        f"agreement {agree / n:6.1%}  und {und}"
    )
    if und:
        # Fair comparison on what we do answer (und counts as wrong above).
        print(
            f"{'':<22} answered n={len(answered)}: ours {sum(r.code == g for r, _, g in answered) / na:6.1%}  "
            f"langdetect {sum(c == g for _, c, g in answered) / na:6.1%}"
        )
    wrong = [(g, r.code, r.confidence, t[:50]) for (g, t), r in zip(samples, ours) if r.code not in (g, UND)]
    for w in wrong[:8]:
        print("    ours wrong:", w)
    if name != "fragments":
        for (g, t), c in zip(samples, theirs):
            if c != g:
                print("    langdetect wrong:", (g, c, t[:50]))


def calibration(samples) -> None:
    rows = [(detect_language(t), g) for g, t in samples]
    rows = [(r.confidence, r.code == g) for r, g in rows if r.code != UND]
    print("confidence bin   n     accuracy")
    for lo, hi in ((0.0, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 0.99), (0.99, 1.01)):
        sel = [ok for c, ok in rows if lo <= c < hi]
        if sel:
            print(f"  [{lo:.2f},{min(hi, 1):.2f})  {len(sel):<5} {sum(sel) / len(sel):6.1%}")


def fit_temperature(samples) -> None:
    model = language._get_model()
    scores, gold = [], []
    for lang, text in samples:
        raw = language._sample(model, text)
        if model.letters(raw) < language.MIN_LETTERS:
            continue
        rows, counts = model.rows(raw)
        if rows.size == 0:
            continue
        s = np.einsum("i,ij->j", counts.astype(np.float32), model.loglik[rows]).astype(np.float64)
        for li, in_script in model.script_gates:
            if not in_script[rows].any():
                s[li] = -np.inf
        scores.append(s)
        gold.append(model.langs.index(lang) if lang in model.langs else -1)
    scores, gold = np.array(scores), np.array(gold)
    print(f"temperature fit on {len(gold)} answered samples")
    for t in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 12, 15):
        z = scores / t
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll = -logp[np.arange(len(gold)), gold].mean()
        conf = np.exp(logp.max(axis=1))
        correct = logp.argmax(axis=1) == gold
        ece = sum(
            abs(conf[m].mean() - correct[m].mean()) * m.sum()
            for lo, hi in ((0, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 0.99), (0.99, 1.01))
            if (m := (conf >= lo) & (conf < hi)).any()
        ) / len(gold)
        wrong_conf = conf[~correct]
        print(
            f"  T={t:<5} nll={nll:.3f} ece={ece:.3f} "
            f"wrong answers with confidence>=0.9: {(wrong_conf >= 0.9).sum()} of {len(wrong_conf)}"
        )


def per_call_us(texts, number=2000) -> float:
    for t in texts:
        detect_language(t)
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        for i in range(number):
            detect_language(texts[i % len(texts)])
        best = min(best, time.perf_counter() - start)
    return best / number * 1e6


def langdetect_us(texts, ld, number=60) -> float:
    start = time.perf_counter()
    for i in range(number):
        ld(texts[i % len(texts)])
    return (time.perf_counter() - start) / number * 1e6


def load_time() -> float:
    code = (
        "import time; t=time.perf_counter();"
        "from worker.stages.language import warm_up; warm_up();"
        "print(time.perf_counter()-t)"
    )
    runs = [
        float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout)
        for _ in range(3)
    ]
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fit-temperature", action="store_true")
    args = parser.parse_args()

    ld = langdetect_detector()
    paras, shorts, frags = check_set_paragraphs(), check_set_sentences(), fragments()
    one = [x for x in shorts if x[1] in {s for p in sum(LABELLED.values(), []) for s in p}]
    print(f"languages: {len(LABELLED)}")
    compare("paragraphs", paras, ld)
    compare("1-2 sentences", shorts, ld)
    compare("  of which 1 sentence", one, ld)
    compare("fragments", frags, ld)
    print()
    calibration(shorts + frags)
    if args.fit_temperature:
        print()
        fit_temperature(shorts + frags)

    print()
    seeds = [p.read_text(encoding="utf-8") for p in SEEDS]
    corpus = " ".join(seeds)
    print(f"seeds ({', '.join(str(len(s)) for s in seeds)} chars): {per_call_us(seeds):6.1f} us/call"
          f"   langdetect {langdetect_us(seeds, ld):7.0f} us/call")
    for n in (300, 600, 4000):
        texts = [corpus[i * n : (i + 1) * n] for i in range(4)]
        print(f"{n:>5} chars: {per_call_us(texts):6.1f} us/call   langdetect {langdetect_us(texts, ld):7.0f} us/call")
    print(f"400 KB: {per_call_us([corpus * 23], 300):6.1f} us/call")
    print(f"load (fresh process, imports + profiles): {load_time():.2f} s")


if __name__ == "__main__":
    main()
