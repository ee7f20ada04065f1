"""What the gazetteer builds and the matcher reads: known entities, the readings of a
gazetteer key with their kinds and case rules, and the `Entity` the tagger returns."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from worker.stages.entities.folding import is_katakana


@dataclass(frozen=True, slots=True)
class Entity:
    text: str  # surface form of the first mention, exactly as in the input text
    label: str  # "PERSON" | "ORG" | "GPE" | "LOC" | "NORP"
    canonical: str  # display name, e.g. "North Korea"
    id: str  # language-independent id, e.g. "country:KP", "person:kim-jong-un"
    start: int  # char offset of the first mention
    end: int
    count: int  # mentions of this canonical entity in the text

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "label": self.label,
            "canonical": self.canonical,
            "id": self.id,
            "start": self.start,
            "end": self.end,
            "count": self.count,
        }


@dataclass(frozen=True, slots=True)
class KnownEntity:
    """An entity of the gazetteer (or found by the fallback PERSON pattern)."""

    id: str
    label: str
    canonical: str
    country: str | None = None  # ISO alpha-2 of the containing state


# Payload kinds
FULL = 0  # an unconditional reading (full name, acronym, place name...)
SHORT = 1  # a bare surname: needs resolution against earlier full mentions
CITY = 2  # a geonames city (subject to stop words and the adjacency check)
TRIGGER = 3  # not an entity: a cue word for the fallback PERSON pattern

# Case rules
ANY = 0  # uncased scripts
CAP = 1  # the first capitalised word of the alias must be capitalised in the text
EXACT = 2  # acronyms and CamelCase brands: letters must match exactly

NO_LANGS: frozenset[str] = frozenset()
STOP_EVERYWHERE = frozenset({"*"})


class Payload:
    """One reading of a gazetteer key (a "payload" in the package docstring)."""

    __slots__ = (
        "ent", "kind", "mode", "cap_pos", "letters", "trail", "trail_req",
        "prio", "stop_langs", "adjacency", "persons", "pop", "kana", "trig", "metonym",
    )

    def __init__(self, ent: KnownEntity | None, kind: int, alias: str, key_norm: str,
                 lead: int, prio: int) -> None:
        self.ent = ent
        self.kind = kind
        self.prio = prio
        self.mode, self.cap_pos, self.letters = case_rule(alias, lead)
        # Trailing punctuation that belongs to the alias ("U.S.", "OPEC+"): kept in
        # the surface when present; required only when it changes the meaning (+).
        body_end = lead + len(key_norm)
        self.trail = alias[body_end:].strip()
        self.trail_req = "+" in self.trail
        self.stop_langs: frozenset[str] = NO_LANGS  # languages where stopped ("*" = all)
        self.adjacency = False  # reject when glued to another capitalised name
        self.persons: tuple[tuple[KnownEntity, bool], ...] = ()  # SHORT: (person, bare)
        self.pop = 0
        self.kana = bool(key_norm) and all(is_katakana(c) for c in key_norm)
        self.trig = 0  # TRIGGER: bitmask of the trigger roles (wordlists.AFTER...)
        self.metonym = True  # may "say" things: "Washington said" (capitals, not towns)


def case_rule(alias: str, lead: int) -> tuple[int, int, str]:
    """(mode, offset of the capital to check, letters to match exactly) for an alias."""
    letters = "".join(c for c in alias if c.isalnum())
    cased = [c for c in letters if c.isupper() or c.islower()]
    if not cased:
        return ANY, 0, ""
    uppers = sum(c.isupper() for c in cased)
    camel = re.search(r"[a-z][A-Z]", alias) is not None and len(letters) <= 10
    if (uppers == len(cased) and len(cased) >= 2) or camel:
        return EXACT, 0, letters
    # first word-initial capital, as an offset into the (stripped) key
    for i, c in enumerate(alias[lead:]):
        if c.isupper() and (i == 0 or not alias[lead + i - 1].isalnum()):
            return CAP, i, ""
    return ANY, 0, ""  # all-lowercase alias: curated on purpose
