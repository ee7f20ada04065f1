"""Loading the labelled sets shipped in worker/quality/data/ (and the seed articles they reference).

The sets are package data (see data/README.md): an installed package reads them as well as a
checkout does. The five seed articles that articles.jsonl refers to are third-party text and are not
shipped; they are read from the checkout's seeds/ (or ./seeds).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import orjson

from worker.io.sources import parse_txt

DATA = Path(__file__).resolve().with_name("data")
# The repository root when running from a checkout (None when installed): seeds/ and docs/ live there.
_ROOT = Path(__file__).resolve().parents[2]
CHECKOUT: Path | None = _ROOT if (_ROOT / "pyproject.toml").is_file() else None
SEEDS = (CHECKOUT or Path.cwd()) / "seeds"
DOCS = (CHECKOUT or Path.cwd()) / "docs"

# Languages written without spaces between sentences (the language check set joins their sentences
# with nothing).
NO_SPACE_LANGS = frozenset({"zh-cn", "zh-tw", "ja"})


@dataclass(frozen=True, slots=True)
class LabelledText:
    id: str
    lang: str  # "und" for text with no language in it
    band: str  # "short" (<= 60 chars) | "sentence" (1-2 sentences) | "paragraph" | "und"
    script: str
    text: str


@dataclass(frozen=True, slots=True)
class LabelledArticle:
    id: str
    event: str  # the story label: articles with the same event belong in one story
    lang: str
    outlet: str
    kind: str  # report | rewrite | translation | summary
    published_at: str
    title: str
    body: str

    @property
    def topic(self) -> str:
        return TOPICS.get(self.event, self.event)

    @property
    def published_ts(self) -> float:
        return datetime.fromisoformat(self.published_at.replace("Z", "+00:00")).timestamp()


# Events that are about the same subject (hard negatives for both dedup and stories).
TOPICS = {
    "murmansk-2025": "russia-north-korea-ukraine",
    "kazan-brics-2024": "russia-north-korea-ukraine",
    "vostochny-2023": "russia-north-korea-ukraine",
    "pyongyang-2024": "russia-north-korea-ukraine",
    "black-sea-2025": "russia-north-korea-ukraine",
    "nk-missile-2024": "russia-north-korea-ukraine",
    "ecb-june-2024": "ecb-rates",
    "ecb-oct-2024": "ecb-rates",
    "noto-quake-2024": "japan-earthquake",
}


@dataclass(frozen=True, slots=True)
class GoldEntity:
    start: int
    end: int
    label: str
    id: str


@dataclass(frozen=True, slots=True)
class EntityPassage:
    id: str
    lang: str
    text: str
    gold: tuple[GoldEntity, ...] = field(default=())

    def gold_ids(self) -> dict[str, str]:
        """canonical id -> label, one per id (the tagger reports one Entity per id)."""
        out: dict[str, str] = {}
        for g in self.gold:
            out.setdefault(g.id, g.label)
        return out


def _jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@lru_cache(maxsize=1)
def language_texts() -> tuple[LabelledText, ...]:
    return tuple(LabelledText(r["id"], r["lang"], r["band"], r["script"], r["text"])
                 for r in _jsonl(DATA / "language.jsonl"))


@lru_cache(maxsize=1)
def language_paragraphs() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The language check set: (lang, sentences) for two news paragraphs per language, in file order.

    Used by tests/unit/test_language.py and, as the source text of its corpus, by bench/."""
    return tuple((r["lang"], tuple(r["sentences"])) for r in _jsonl(DATA / "language_paragraphs.jsonl"))


def language_check_set() -> dict[str, list[tuple[str, ...]]]:
    """lang -> its paragraphs (each a tuple of sentences), languages in file order."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for lang, sentences in language_paragraphs():
        out.setdefault(lang, []).append(sentences)
    return out


def join_sentences(lang: str, sentences) -> str:
    return ("" if lang in NO_SPACE_LANGS else " ").join(sentences)


def check_set_paragraphs() -> list[tuple[str, str]]:
    """(lang, text) for every whole paragraph of the language check set."""
    return [(lang, join_sentences(lang, p)) for lang, p in language_paragraphs()]


def check_set_sentences() -> list[tuple[str, str]]:
    """(lang, text) for every single sentence of the check set and every two consecutive ones."""
    out = []
    for lang, p in language_paragraphs():
        out += [(lang, s) for s in p]
        out += [(lang, join_sentences(lang, p[i : i + 2])) for i in range(len(p) - 1)]
    return out


def _seed(name: str) -> str:
    path = SEEDS / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: articles.jsonl refers to the seed articles in the repository's seeds/ (third-party "
            "text, not shipped with the package); run from a checkout or from a directory holding seeds/")
    return path.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def articles() -> tuple[LabelledArticle, ...]:
    out = []
    for r in _jsonl(DATA / "articles.jsonl"):
        if "seed" in r:
            parsed = parse_txt(_seed(r["seed"]))
            r = {**r, "title": parsed["title"], "body": parsed["body"]}
        out.append(LabelledArticle(r["id"], r["event"], r["lang"], r["outlet"], r["kind"],
                                   r["published_at"], r["title"], r["body"]))
    return tuple(out)


# [surface](id LABEL) — the inline markup of data/entities.jsonl
_MARK = re.compile(r"\[([^\[\]]+)\]\(([a-z]+:[^\s()]+) (PERSON|ORG|GPE|LOC|NORP)\)")


def parse_marked(marked: str) -> tuple[str, tuple[GoldEntity, ...]]:
    """Plain text and gold spans from "[Vladimir Putin](person:vladimir-putin PERSON) said"."""
    text_parts: list[str] = []
    gold: list[GoldEntity] = []
    pos = 0
    length = 0
    for m in _MARK.finditer(marked):
        before = marked[pos:m.start()]
        text_parts.append(before)
        length += len(before)
        surface = m.group(1)
        gold.append(GoldEntity(length, length + len(surface), m.group(3), m.group(2)))
        text_parts.append(surface)
        length += len(surface)
        pos = m.end()
    text_parts.append(marked[pos:])
    text = "".join(text_parts)
    if "](" in text:
        raise ValueError(f"unparsed markup left in: {text[:80]!r}")
    return text, tuple(gold)


@lru_cache(maxsize=1)
def entity_passages() -> tuple[EntityPassage, ...]:
    out = []
    for r in _jsonl(DATA / "entities.jsonl"):
        text, gold = parse_marked(r["marked"])
        out.append(EntityPassage(r["id"], r["lang"], text, gold))
    return tuple(out)
