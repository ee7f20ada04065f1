"""The data files of worker/stages/data/ (`read_json`) and the English word lists of the
name heuristics (data/english_names.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent.parent / "data"  # worker/stages/data


def read_json(name: str) -> Any:
    with open(DATA / name, encoding="utf-8") as fh:
        return json.load(fh)


_WORDS = read_json("english_names.json")

STOPWORDS = frozenset(_WORDS["stopwords"])  # capitalised words that are not names
TITLES = frozenset(_WORDS["titles"])  # words that introduce a person's name
NOT_NAME = frozenset(_WORDS["not_name"])  # words that make a capitalised run an institution or a place
PARTICLES = frozenset(_WORDS["particles"])  # bin, van, de...
VESSELS: tuple[str, ...] = tuple(_WORDS["vessels"])  # a town next to one is the ship's name
SAYS: tuple[str, ...] = tuple(_WORDS["says"])  # a town does not say things; a capital may

# Trigger roles (a bitmask: one word may have several) and their cue words, in file order
# (the order the gazetteer adds them in).
AFTER, BYLINE, BEFORE, APPOSITION = 1, 2, 4, 8
TRIGGERS: dict[int, tuple[str, ...]] = {
    role: tuple(_WORDS["triggers"][name])
    for role, name in ((AFTER, "after"), (BYLINE, "byline"), (BEFORE, "before"), (APPOSITION, "apposition"))
}
