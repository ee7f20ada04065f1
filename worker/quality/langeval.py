"""Language identification measured on worker/quality/data/language.jsonl.

Bands: "short" (headlines, <= 60 characters), "sentence" (1-2 sentences), "paragraph" (3-6
sentences) and "und" (strings with no language in them: times, URLs, codes, prices). An answer is
correct when the code equals the label; "und" on a labelled text is an abstention (counted apart
from wrong guesses); anything else is a wrong guess.

Some labels are languages the detector cannot answer: langdetect's 55 profiles have no Malay,
Serbian or Bosnian (ms, sr, bs). They stay in the set — a Malay text called Indonesian is a wrong
answer for a user — and the figures are also given "within the inventory" (those labels left
out), which is what the detector's own design can reach.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass

from langdetect.detector_factory import PROFILES_DIRECTORY

from worker.quality.data import CHECKOUT, LabelledText, language_texts
from worker.stages.language import RELIABLE_CONFIDENCE, UND, LanguageResult, detect_language

BANDS = ("short", "sentence", "paragraph")
LOOKALIKES: dict[str, tuple[str, ...]] = {
    "es / pt / ca / it": ("es", "pt", "ca", "it"),
    "ru / uk / bg / mk / sr": ("ru", "uk", "bg", "mk", "sr"),
    "no / da / sv": ("no", "da", "sv"),
    "id / ms": ("id", "ms"),
    "hr / sr / bs": ("hr", "sr", "bs"),
}


def inventory() -> frozenset[str]:
    return frozenset(f for f in os.listdir(PROFILES_DIRECTORY) if not f.startswith("."))


@dataclass(frozen=True, slots=True)
class TextResult:
    item: LabelledText
    result: LanguageResult

    @property
    def code(self) -> str:
        return self.result.code

    @property
    def correct(self) -> bool:
        return self.code == self.item.lang

    @property
    def abstained(self) -> bool:
        return self.code == UND and self.item.lang != UND


@dataclass
class LanguageReport:
    results: list[TextResult]
    deterministic_in_process: bool
    deterministic_across_processes: bool | None = None

    def select(self, band: str | None = None, lang: str | None = None,
               in_inventory: bool = False) -> list[TextResult]:
        inv = inventory()
        return [r for r in self.results
                if (band is None or r.item.band == band) and (lang is None or r.item.lang == lang)
                and (not in_inventory or r.item.lang in inv)]

    @staticmethod
    def rates(rs: list[TextResult]) -> dict[str, float]:
        n = len(rs)
        correct = sum(r.correct for r in rs)
        und = sum(r.abstained for r in rs)
        return {"n": n, "correct": correct, "und": und, "wrong": n - correct - und,
                "accuracy": correct / n if n else 1.0}

    def accuracy(self, band: str, in_inventory: bool = False) -> float:
        return self.rates(self.select(band, in_inventory=in_inventory))["accuracy"]

    def languages(self) -> list[str]:
        return sorted({r.item.lang for r in self.results if r.item.lang != UND})

    def confusion(self, group: tuple[str, ...],
                  bands: tuple[str, ...] = ("sentence", "paragraph")) -> dict[str, Counter]:
        out: dict[str, Counter] = {}
        for lang in group:
            out[lang] = Counter(r.code for r in self.results if r.item.lang == lang and r.item.band in bands)
        return out

    def wrong(self, bands: tuple[str, ...] = BANDS) -> list[TextResult]:
        return [r for r in self.results if r.item.band in bands and not r.correct and not r.abstained
                and r.item.lang != UND]

    def reliable_short(self) -> tuple[int, int]:
        """Short texts answered with confidence >= RELIABLE_CONFIDENCE: (right, total)."""
        rs = [r for r in self.select("short") if r.code != UND and r.result.confidence >= RELIABLE_CONFIDENCE]
        return sum(r.correct for r in rs), len(rs)

    def und_set(self) -> dict[str, int]:
        rs = self.select("und")
        return {"n": len(rs), "und": sum(r.code == UND for r in rs)}


def _fingerprint(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        r = detect_language(t)
        h.update(repr((r.code, r.confidence, r.candidates)).encode())
    return h.hexdigest()


def fingerprint_in_subprocess() -> str:
    code = ("from worker.quality.langeval import _fingerprint; from worker.quality.data import language_texts;"
            "print(_fingerprint([t.text for t in language_texts()]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=CHECKOUT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "random"})
    return out.stdout.strip()


def evaluate(check_processes: bool = True) -> LanguageReport:
    items = list(language_texts())
    results = [TextResult(t, detect_language(t.text)) for t in items]
    again = [detect_language(t.text) for t in items]
    same = all(a == r.result for a, r in zip(again, results, strict=True))
    across = None
    if check_processes:
        mine = _fingerprint([t.text for t in items])
        across = fingerprint_in_subprocess() == mine
    return LanguageReport(results, same, across)


def per_language(report: LanguageReport) -> list[tuple[str, dict[str, dict[str, float]]]]:
    rows = []
    for lang in report.languages():
        rows.append((lang, {band: report.rates(report.select(band, lang)) for band in BANDS}))
    return rows


def scripts(report: LanguageReport) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for r in report.results:
        if r.item.lang != UND:
            out[r.item.script].add(r.item.lang)
    return dict(out)
