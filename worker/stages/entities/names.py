"""English name heuristics: whether the word next to a match is another capitalised name or a
title (the adjacency rules), Title Case headlines, and the fallback PERSON pattern for people the
lists do not know ("Foreign Minister Mauro Vieira", "Maria Zakharova said")."""

from __future__ import annotations

import re
from collections.abc import Callable

from worker.stages.entities.folding import slugify
from worker.stages.entities.records import SHORT, KnownEntity, Payload
from worker.stages.entities.wordlists import (
    AFTER,
    APPOSITION,
    BEFORE,
    BYLINE,
    NOT_NAME,
    PARTICLES,
    SAYS,
    STOPWORDS,
    TITLES,
    VESSELS,
)

_VESSELS = "(?:" + "|".join(map(re.escape, VESSELS)) + ")"
_VESSEL_AFTER = re.compile(rf"[\"”»’']? (?:nuclear |nuclear-powered |guided-missile |missile )?{_VESSELS}\b")
_VESSEL_BEFORE = re.compile(rf"\b{_VESSELS} [\"“«‘']?$")
_SAYS_AFTER = re.compile(r",? (?:" + "|".join(map(re.escape, SAYS)) + r")\b")
_WORD_PUNCT = frozenset("’'‐.-")


def glued(text: str, start: int, end: int, p: Payload,
          strong_starts: set[int], strong_ends: set[int], title_lines: dict[int, bool]) -> bool:
    """True when an adjacency-flagged reading is glued to another capitalised
    name: "Lewis Hamilton" (city), "Chad Smith" (country), "Kim Hong-kyun"
    (surname). A title before a place makes it a person ("President Lincoln");
    before a surname it confirms the person ("President Trump")."""
    prev_kind = neighbour(text, start, before=True, other=strong_ends)
    next_kind = neighbour(text, end, before=False, other=strong_starts)
    if p.kind == SHORT:
        bad = prev_kind == "name" or next_kind == "name"
    else:
        bad = prev_kind in ("name", "title") or next_kind == "name"
        # Warships are named after cities: the submarine "Arkhangelsk".
        if _VESSEL_AFTER.match(text, end) or _VESSEL_BEFORE.search(text, max(0, start - 24), start):
            return True
        # "Jackson said": a town does not talk; a capital may ("Washington said").
        if not p.metonym and _SAYS_AFTER.match(text, end):
            return True
    return bad and not is_title_line(text, start, title_lines)


def neighbour(text: str, pos: int, before: bool, other: set[int]) -> str | None:
    """Classify the word directly before/after pos (one space apart):
    'name' (a capitalised word that is not a stop word), 'title', or None."""
    if before:
        if pos < 2 or text[pos - 1] != " ":
            return None
        i = pos - 1
        if i in other:
            return None
        while i > 0 and (text[i - 1].isalnum() or text[i - 1] in _WORD_PUNCT):
            i -= 1
        word = text[i:pos - 1]
    else:
        if text[pos:pos + 1] != " " or pos + 1 in other:
            return None
        j = pos + 1
        while j < len(text) and (text[j].isalnum() or text[j] in "-‐"):
            j += 1
        word = text[pos + 1:j]
    if not word or not word[0].isupper() or word.isupper():
        return None  # lowercase, or an acronym ("NATO", "US")
    if word.endswith(("’s", "'s")):
        return None  # possessive: "Russia’s Putin"
    bare = word.rstrip(".").lower()
    if bare in TITLES:
        return "title"
    if word.endswith(".") or bare in STOPWORDS:
        return None  # sentence end ("... in Moscow. Putin") or a stop word
    return "name"


def is_title_line(text: str, pos: int, cache: dict[int, bool]) -> bool:
    """Headlines in Title Case capitalise every word, so capitalised
    neighbours say nothing there."""
    lo = text.rfind("\n", 0, pos) + 1
    if lo not in cache:
        hi = text.find("\n", pos)
        words = [w for w in text[lo:hi if hi >= 0 else None].split() if len(w) >= 4 and w[0].isalpha()]
        caps = sum(w[0].isupper() for w in words)
        cache[lo] = len(words) >= 3 and caps >= 0.8 * len(words)
    return cache[lo]


def name_span(text: str, s: int, e: int, from_right: bool) -> tuple[int, int] | None:
    """The part of a capitalised run that can be a person's name: the longest
    prefix (name after a cue) or suffix (name before a cue) of tokens that are
    not titles, stop words or institution words; 2-4 tokens."""
    tokens: list[tuple[int, int]] = []
    i = s
    for word in text[s:e].split(" "):
        tokens.append((i, i + len(word)))
        i += len(word) + 1
    if from_right:
        tokens.reverse()
    kept: list[tuple[int, int]] = []
    for a, b in tokens:
        word = text[a:b].lower()
        if word in NOT_NAME or word in STOPWORDS or word in TITLES:
            break
        kept.append((a, b))
    if from_right:
        kept.reverse()
    while kept and text[kept[0][0]:kept[0][1]] in PARTICLES:
        kept.pop(0)
    while kept and text[kept[-1][0]:kept[-1][1]] in PARTICLES:
        kept.pop()
    if not 2 <= len(kept) <= 4:
        return None
    return kept[0][0], kept[-1][1]


def char_class(pred: Callable[[str], bool]) -> str:
    """A regex character class body for all BMP characters satisfying pred
    (Python's re has no \\p{Lu})."""
    out: list[str] = []
    cp, top = 0, 0x10000
    while cp < top:
        if pred(chr(cp)):
            lo = cp
            while cp + 1 < top and pred(chr(cp + 1)):
                cp += 1
            out.append(re.escape(chr(lo)) + ("-" + re.escape(chr(cp)) if cp > lo else ""))
        cp += 1
    return "".join(out)


class PersonPattern:
    """The fallback PERSON pattern (English): a capitalised run of 2-4 name-like words next to a
    cue word (the trigger payloads the matcher collects)."""

    def __init__(self) -> None:
        up = char_class(str.isupper)
        lo = char_class(str.islower)
        # One capitalised name token: Mike, O'Brien, McConnell, Hong-kyun, Jean-Luc.
        tok = rf"[{up}](?:['’][{up}])?[{lo}]+(?:[{up}][{lo}]+)?(?:[-‐][{up}]?[{lo}]+)*"
        part = "|".join(sorted(PARTICLES))
        name = rf"{tok}(?: (?:(?:{part}) )?(?:(?:al|el)-)?{tok})*"
        self._name_at = re.compile(rf" ({name})(?![\w‐-])")  # .match after a cue
        self._name_full = re.compile(name)  # .fullmatch of a run found by scanning back
        # ", a retired U.S. Navy " before an apposition noun (searched in 80 chars)
        self._appos_tail = re.compile(r", (?:a|an|the|who|whose) (?:[\w.’'-]+ ){0,6}$")

    def find(self, text: str, occupied: bytearray,
             triggers: list[tuple[int, int, int]]) -> list[tuple[int, int, KnownEntity]]:
        """Unknown people introduced by a cue: 'Foreign Minister Mauro Vieira',
        'spokesperson Maria Zakharova', 'Maria Zakharova said', 'James Stavridis,
        a retired U.S. Navy admiral', 'Edited by Mike Firn and Stephen Wright'.
        Precision over recall: 2-4 capitalised tokens, none of them an institution
        word, a title or a stop word, not overlapping any gazetteer entity."""
        found: list[tuple[int, int, KnownEntity]] = []

        def accept(span: tuple[int, int] | None) -> bool:
            if span is None or occupied.find(1, *span) != -1:
                return False
            ns, ne = span
            name = text[ns:ne].replace("’", "'").replace("‐", "-")
            occupied[ns:ne] = b"\x01" * (ne - ns)
            found.append((ns, ne, KnownEntity(f"person:{slugify(name)}", "PERSON", name)))
            return True

        for start, end, role in triggers:
            if role & (AFTER | BYLINE):
                pos = end + (text[end:end + 1] == ".")  # "Gen. Asim Munir"
                pos += text[pos:pos + 1] == ","  # "minister, Kim Hong-kyun,"
                # cheap test first: a capitalised word not already tagged follows
                nxt = text[pos + 1:pos + 2]
                m = self._name_at.match(text, pos) if nxt.isupper() and not occupied[pos + 1] else None
                if m and accept(name_span(text, m.start(1), m.end(1), from_right=False)) \
                        and role & BYLINE:
                    # "Edited by A and B": follow the chain of byline names
                    while True:
                        tail = found[-1][1]
                        sep = next((x for x in (" and ", ", ", " & ") if text.startswith(x, tail)), None)
                        m = self._name_at.match(text, tail + len(sep) - 1) if sep else None
                        if not m or not accept(name_span(text, m.start(1), m.end(1), False)):
                            break
            if role & BEFORE:
                # "Maria Zakharova said" / "Maria Zakharova, 49, said" is not handled
                pos = start - 1 - (text[start - 2:start - 1] == ",")
                accept(self._name_ending_at(text, pos, occupied))
            if role & APPOSITION:
                # "NAME, a|an|the|who ... <noun>": find the comma, then the name
                m = self._appos_tail.search(text, max(0, start - 80), start)
                if m:
                    accept(self._name_ending_at(text, m.start(), occupied))

        # Later mentions of the same person by full name or by surname (once per
        # person, from its first mention).
        firsts: dict[str, tuple[int, int, KnownEntity]] = {}
        for ns, ne, ent in found:
            if ent.id not in firsts or ns < firsts[ent.id][0]:
                firsts[ent.id] = (ns, ne, ent)
        no_strong: set[int] = set()
        for ns, ne, ent in firsts.values():
            full = text[ns:ne]
            surname = full.rsplit(" ", 1)[-1]
            for form in (full, surname) if len(surname) >= 3 else (full,):
                pos = text.find(form, ne)
                while pos != -1:
                    end = pos + len(form)
                    if (pos == 0 or not text[pos - 1].isalnum()) \
                            and (end == len(text) or not text[end].isalnum()) \
                            and occupied.find(1, pos, end) == -1 \
                            and (form is full or (  # "Frank Wright" is not Stephen Wright
                                neighbour(text, pos, True, no_strong) != "name"
                                and neighbour(text, end, False, no_strong) != "name")):
                        occupied[pos:end] = b"\x01" * (end - pos)
                        found.append((pos, end, ent))
                    pos = text.find(form, end)
        return found

    def _name_ending_at(self, text: str, end: int, occupied: bytearray) -> tuple[int, int] | None:
        """The person name (if any) made of the capitalised run ending at end."""
        if end < 2 or occupied[end - 1] or not text[end - 1].isalpha():
            return None
        # walk back over space-separated tokens that are capitalised or particles
        start, i = -1, end
        while i > 0:
            j = i
            while j > 0 and (text[j - 1].isalnum() or text[j - 1] in "’'‐-"):
                j -= 1
            word = text[j:i]
            if not word or not (word[0].isupper() or word in PARTICLES):
                break
            start = j
            if j < 2 or text[j - 1] != " ":
                break
            i = j - 1
        if start < 0 or self._name_full.fullmatch(text, start, end) is None:
            return None
        return name_span(text, start, end, from_right=True)
