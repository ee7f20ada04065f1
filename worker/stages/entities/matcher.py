"""Tagging a text with the gazetteer: every match whose case rule passes, overlaps settled
longest-first under the context rules, the English fallback PERSON pattern, then one `Entity`
per canonical id (steps 1-7 of the package docstring)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from worker.stages.entities.folding import OTHER_SCRIPTS, fold, is_katakana
from worker.stages.entities.gazetteer import Gazetteer
from worker.stages.entities.names import PersonPattern, glued
from worker.stages.entities.records import CAP, EXACT, SHORT, TRIGGER, Entity, KnownEntity, Payload


class Matcher:
    """The tagger: a built gazetteer and the English person pattern."""

    def __init__(self, gazetteer: Gazetteer) -> None:
        self.table = gazetteer.table
        self.automata = gazetteer.automata
        self.country_of = gazetteer.country_of
        self.people = PersonPattern()

    def tag(self, text: str, lang: str) -> list[Entity]:
        norm, top = fold(text, self.table)
        padded = " " + norm + " "
        automata = self.automata if top >= OTHER_SCRIPTS else self.automata[:1]
        triggers: list[tuple[int, int, int]] = []
        cands = self._match(text, padded, lang, automata, triggers)
        occupied = bytearray(len(text) + 1)
        chosen = self._select(text, cands, occupied)
        if triggers:
            chosen.extend(self.people.find(text, occupied, triggers))
        return self._group(text, chosen)

    def _match(self, text: str, padded: str, lang: str, automata: tuple[Any, ...],
               triggers: list[tuple[int, int, int]]) -> list[tuple[int, int, Payload | None, KnownEntity]]:
        """All gazetteer matches whose case rule passes, with their resolved entity.
        Trigger words for the English fallback pattern are appended to triggers."""
        out: list[tuple[int, int, Payload | None, KnownEntity]] = []
        last_full: dict[str, int] = {}  # person id -> start of latest full mention
        n = len(text)
        # The automaton reports matches ending at the same place longest first;
        # a shorter one inside a confident longer one can never win ("Putin" in
        # "Vladimir Putin"), so it is not even considered.
        cover_end, cover_start = -1, -1
        matches = automata[0].iter(padded)
        if len(automata) > 1:  # keep end order, which surname resolution relies on
            matches = sorted((*automata[0].iter(padded), *automata[1].iter(padded)),
                             key=lambda m: m[0])
        for e, (a, b, payloads) in matches:
            start, end = e - a, e - b
            if end == cover_end and start > cover_start:
                continue
            for p in payloads:
                mode = p.mode
                if mode == CAP:
                    if text[start + p.cap_pos].islower():
                        continue
                elif mode == EXACT:
                    surface = text[start:end]  # "NATO" as is; "U.S." without its dots
                    if (surface if surface.isalnum() else "".join(c for c in surface if c.isalnum())) != p.letters:
                        continue
                stopped = bool(p.stop_langs) and ("*" in p.stop_langs or lang in p.stop_langs)
                if p.kana and ((start > 0 and is_katakana(text[start - 1]))
                               or (end < n and is_katakana(text[end]))):
                    continue  # katakana words are runs: タイ inside ネクタイ
                surface_end = end  # "U.S." keeps its final full stop
                if p.trail:
                    if text.startswith(p.trail, end):
                        surface_end = end + len(p.trail)
                    elif p.trail_req:
                        continue
                if p.kind == TRIGGER:
                    if lang == "en":
                        triggers.append((start, end, p.trig))
                    break
                if p.kind == SHORT:
                    ent = self._resolve_short(p, start, last_full)
                    if ent is None:
                        continue  # fall through: "Austin" the city
                else:
                    ent = p.ent
                    if ent.label == "PERSON":
                        last_full[ent.id] = start
                # A stop-listed city is only a rescue candidate ("Nice, France",
                # checked in _select); payload None marks it.
                out.append((start, surface_end, None if stopped else p, ent))
                if not stopped and not p.adjacency:
                    cover_end, cover_start = end, start
                break
        return out

    @staticmethod
    def _resolve_short(p: Payload, start: int, last_full: dict[str, int]) -> KnownEntity | None:
        best: KnownEntity | None = None
        best_pos = -1
        for ent, _bare in p.persons:
            pos = last_full.get(ent.id, -1)
            if 0 <= pos < start and pos > best_pos:
                best, best_pos = ent, pos
        if best is None:
            for ent, bare in p.persons:
                if bare:
                    return ent
        return best

    # ---- overlap resolution ------------------------------------------------- #

    def _select(self, text: str, cands: list, occupied: bytearray) -> list[tuple[int, int, KnownEntity]]:
        """Longest match wins; ties go to the earlier match. Marks occupied chars.
        Context rules run here, only for readings that survive the overlap test."""
        cands.sort(key=lambda c: (c[0] - c[1], c[0]))
        chosen: list[tuple[int, int, KnownEntity]] = []
        rescue: list[tuple[int, int, KnownEntity]] = []
        # A neighbour that is itself a confident non-person entity is fine
        # ("Kazan BRICS summit"); two weak readings must not vouch for each other
        # ("George Washington": George, South Africa + Washington, D.C.).
        strong_starts: set[int] | None = None
        strong_ends: set[int] = set()
        title_lines: dict[int, bool] = {}
        for start, end, p, ent in cands:
            if occupied.find(1, start, end) != -1:
                continue
            if p is not None and p.adjacency:
                if strong_starts is None:
                    strong = [(s, e) for s, e, q, x in cands
                              if q is not None and not q.adjacency and x.label != "PERSON"]
                    strong_starts = {s for s, _ in strong}
                    strong_ends = {e for _, e in strong}
                if glued(text, start, end, p, strong_starts, strong_ends, title_lines):
                    continue
            occupied[start:end] = b"\x01" * (end - start)
            (rescue if p is None else chosen).append((start, end, ent))
        # Stop-listed cities survive only as "Nice, France" / "Mobile, Alabama".
        if rescue:
            by_start = {s: ent for s, _, ent in chosen}
            for start, end, ent in rescue:
                nxt = by_start.get(end + 2)
                if (text.startswith(", ", end) and nxt is not None
                        and self.country_of.get(nxt.id) == f"country:{ent.country}"):
                    chosen.append((start, end, ent))
                else:
                    occupied[start:end] = bytes(end - start)
        return chosen


    @staticmethod
    def _group(text: str, chosen: Iterable[tuple[int, int, KnownEntity]]) -> list[Entity]:
        first: dict[str, tuple[int, int, KnownEntity]] = {}
        counts: dict[str, int] = {}
        for start, end, ent in chosen:
            counts[ent.id] = counts.get(ent.id, 0) + 1
            if ent.id not in first or start < first[ent.id][0]:
                first[ent.id] = (start, end, ent)
        return [
            Entity(text[s:e], ent.label, ent.canonical, ent.id, s, e, counts[ent.id])
            for s, e, ent in sorted(first.values(), key=lambda t: t[0])
        ]
