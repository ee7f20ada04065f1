"""Loading the labelled sets in tests/data/ (and the seed articles they reference)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import orjson

from worker.io.sources import parse_txt

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
SEEDS = ROOT / "seeds"
DOCS = ROOT / "docs"


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
def articles() -> tuple[LabelledArticle, ...]:
    out = []
    for r in _jsonl(DATA / "articles.jsonl"):
        if "seed" in r:
            parsed = parse_txt((SEEDS / r["seed"]).read_text(encoding="utf-8"))
            r = {**r, "title": parsed["title"], "body": parsed["body"]}
        out.append(LabelledArticle(r["id"], r["event"], r["lang"], r["outlet"], r["kind"],
                                   r["published_at"], r["title"], r["body"]))
    return tuple(out)


# [surface](id LABEL) — the inline markup of tests/data/entities.jsonl
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
