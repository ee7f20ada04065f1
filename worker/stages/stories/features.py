"""Story features of one article: entity ids, numbers and calendar dates, each with a base weight
by kind (see the package docstring). Pure functions of the text; no index state."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

MAX_ARTICLE_FEATURES = 48  # an article's heaviest features only: bounds the index work per article

# Base weight by feature kind (the part of an id before ":").
KIND_WEIGHT: dict[str, float] = {
    "person": 3.0,
    "org": 1.5,
    "city": 3.0,
    "region": 3.0,
    "loc": 2.0,
    "country": 1.0,
    "norp": 0.5,
    "num": 1.5,
    "year": 0.5,
    "date": 3.0,
}
DEFAULT_KIND_WEIGHT = 1.0


def _read_months() -> tuple[dict[str, int], dict[str, int]]:
    """Month names of every language (data/months.json) -> month number, and the English
    abbreviations."""
    with open(Path(__file__).parent.parent / "data" / "months.json", encoding="utf-8") as fh:
        data = json.load(fh)
    names = {form: month for months in data["names"].values()
             for month, forms in enumerate(months, start=1) for form in forms.split()}
    return names, data["abbreviations"]


_MONTHS, _MONTH_ABBR = _read_months()


# A word next to a day number, then a dictionary lookup: an alternation of ~150 month names
# tried at every word boundary cost ~0.9 ms per article (bench/results/profile-dedup.txt).
# "March 27", "Mar. 27th" (English order; abbreviations only here, where they are unambiguous).
# Found from the day number backwards (`_month_day_matches`): scanning for digits is ~4x cheaper
# than trying a word at every position; the result is the same as this pattern's finditer.
_MONTH_DAY = re.compile(r"\b([^\W\d_]+)(\.?)\s+(\d{1,2})(?:st|nd|rd|th)?\b(?![.,]?\d)")
_DAY_AFTER_SPACE = re.compile(r"(?=\d)(?<=\s)(\d{1,2})(?:st|nd|rd|th)?\b(?![.,]?\d)")
_WORD_BEFORE = re.compile(r"([^\W\d_]+)(\.?)\s+\Z")
_WORD_CHAR = re.compile(r"\w")
_DIGIT = re.compile(r"\d")
# The first digit after anything but an ASCII digit: every digit pattern below except _CJK_DATE
# has a lookbehind that fails right after a digit, so it can only match at such a position
# (~1/3 of all digits in news text: "2024", "12,000").
# (The lookbehind after the digit: before it, `re` would try it at every character, 3x slower.)
_RUN_START = re.compile(r"\d(?<![0-9]\d)")
# Patterns that start with a digit begin with the lookahead (?=\d): it lets `re` skip to the
# next digit instead of trying the lookbehind at every character (2-4x cheaper on 4 KB text).
# "27 March", "27. März", "1er janvier", "27 de marzo", "27 марта"
_DAY_MONTH = re.compile(r"(?=\d)(?<![\d.,])(\d{1,2})(?:er|e|st|nd|rd|th|º|ª)?\.?\s+(?:(?:de|of)\s+)?([^\W\d_]+)(?!\w)",
                        re.IGNORECASE)
_CJK_DATE = re.compile(r"(?=\d)(\d{1,2})\s*[月월]\s*(\d{1,2})\s*[日일]")
_CJK_DAY = re.compile(r"(?=\d)(?<![\d月월])(\d{1,2})\s*[日일](?![本語\w]*[間간])")
_ISO_DATE = re.compile(r"(?=[12])(?<!\d)(?:19|20)\d\d-(\d\d)-(\d\d)(?!\d)")
_DOT_DATE = re.compile(r"(?=\d)(?<![\d.])(\d{1,2})\.(\d{1,2})\.(?:19|20)\d\d(?!\d)")
# Clock times are not quantities: "2:55 p.m.", "14.55 Uhr", "16時10分", "오후 2시 55분".
_TIME = re.compile(r"(?=\d)(?<!\d)\d{1,2}(?:[:h]\d{2}(?!\d)|\s*[時时시]\s*(?:\d{1,2}\s*[分분])?)")

_NUMBER = re.compile(
    r"(?=\d)(?<![0-9.,A-Za-z\u00c0-\u024f\u0370-\u04ff])"  # not inside a word or a number
    r"(\d{1,3}(?:[,.\u00a0\u202f\u2009' ]\d{3})+(?!\d)|\d+)"  # integer part, maybe grouped
    r"(?:[.,](\d+)(?!\d))?"  # decimal part
    r"(?:\s?([万萬만億亿억千천])(\d{1,4}(?!\d))?)?"  # CJK multiplier: 1万2000, 1.2万, 3천
)
_MULTIPLIER = {"万": 10_000, "萬": 10_000, "만": 10_000, "億": 100_000_000, "亿": 100_000_000,
               "억": 100_000_000, "千": 1_000, "천": 1_000}


def extract_dates(text: str, event_time: float | None = None,
                  digits: list[int] | None = None) -> tuple[set[str], list[tuple[int, int]]]:
    """Month-day features ("date:03-27") and the spans they came from. `digits`: the positions
    where a date pattern can start in `text` (`_digit_positions`), if known."""
    found: set[str] = set()
    spans: list[tuple[int, int]] = []

    def add(month: int, day: int, span: tuple[int, int]) -> None:
        if 1 <= month <= 12 and 1 <= day <= 31:
            found.add(f"date:{month:02d}-{day:02d}")
            spans.append(span)

    if digits is None:
        digits = _digit_positions(text)
    for word, dot, day_digits, span in _month_day_matches(text, digits):
        key = word.lower()
        month = _MONTH_ABBR.get(key, 0) if dot else (_MONTHS.get(key) or _MONTH_ABBR.get(key, 0))
        if month:
            add(month, int(day_digits), span)
    for m in _finditer_at(_DAY_MONTH, text, digits):
        month = _MONTHS.get(m.group(2).lower(), 0)
        if month:
            add(month, int(m.group(1)), m.span())
    if "月" in text or "월" in text:  # _CJK_DATE may start inside a run of digits: try them all
        for m in _finditer_at(_CJK_DATE, text, _all_digit_positions(text)):
            add(int(m.group(1)), int(m.group(2)), m.span())
    for m in _finditer_at(_ISO_DATE, text, digits):
        add(int(m.group(1)), int(m.group(2)), m.span())
    for m in _finditer_at(_DOT_DATE, text, digits):
        add(int(m.group(2)), int(m.group(1)), m.span())
    if event_time is not None:
        # Chinese, Japanese and Korean news give the day alone ("13日"): the most recent such
        # day on or before the event time.
        taken = _covered(spans)
        when = datetime.fromtimestamp(event_time, UTC)
        for m in _finditer_at(_CJK_DAY, text, digits):
            if m.start() in taken:
                continue
            day = int(m.group(1))
            if not 1 <= day <= 31:
                continue
            probe = when
            for _ in range(2):
                if day <= _days_in_month(probe):
                    if day <= probe.day or probe is not when:
                        add(probe.month, day, m.span())
                        break
                probe = probe.replace(day=1) - timedelta(days=1)
    return found, spans


def _digit_positions(text: str) -> list[int]:
    """Where the digit patterns (all but _CJK_DATE) can start: see _RUN_START."""
    return [m.start() for m in _RUN_START.finditer(text)]


def _all_digit_positions(text: str) -> list[int]:
    return [m.start() for m in _DIGIT.finditer(text)]


def _outside(positions: list[int], spans: list[tuple[int, int]]) -> list[int]:
    if not spans:
        return positions
    covered = _covered(spans)
    return [p for p in positions if p not in covered]


def _finditer_at(pattern: re.Pattern, text: str, positions: list[int]) -> Iterator[re.Match]:
    """`pattern.finditer(text)` for a pattern that can only match starting at one of `positions`
    (here: at a digit), trying only those: one scan of the text serves every pattern. A match
    at `pos` sees the text before it, so lookbehinds work as in finditer."""
    end = 0
    for pos in positions:
        if pos >= end:
            m = pattern.match(text, pos)
            if m is not None:
                yield m
                end = m.end()


def _month_day_matches(text: str, digits: list[int] | None = None) -> Iterator[tuple[str, str, str, tuple[int, int]]]:
    """(word, ".", day, span) for every match `_MONTH_DAY.finditer(text)` would give."""
    for m in _finditer_at(_DAY_AFTER_SPACE, text, _digit_positions(text) if digits is None else digits):
        start = m.start()
        window = max(0, start - 64)  # a month name is short; a longer word is read whole below
        w = _WORD_BEFORE.search(text, window, start)
        if w is not None and w.start() == window > 0:
            w = _WORD_BEFORE.search(text, 0, start)
        if w is None or (w.start() > 0 and _WORD_CHAR.match(text, w.start() - 1)):
            continue  # no word before the day, or the letters are the tail of a longer token
        yield w.group(1), w.group(2), m.group(1), (w.start(), m.end())


def _days_in_month(moment: datetime) -> int:
    nxt = (moment.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (nxt - timedelta(days=1)).day


def _covered(spans: Iterable[tuple[int, int]]) -> set[int]:
    out: set[int] = set()
    for a, b in spans:
        out.update(range(a, b))
    return out


def extract_numbers(text: str, digits: list[int] | None = None) -> set[str]:
    """Quantities as "num:<value>" (integers >= 10 and any decimal) and years as "year:<yyyy>".
    `digits`: the positions where a number can start in `text` (`_digit_positions`), if known."""
    found: set[str] = set()
    for m in _finditer_at(_NUMBER, text, _digit_positions(text) if digits is None else digits):
        whole, frac, mult, tail = m.groups()
        figures = re.sub(r"\D", "", whole)
        grouped = len(figures) != len(whole)
        if frac is not None and grouped and len(frac) == 3:
            continue  # "1.234.567" read oddly: skip rather than guess
        value = float(figures) + (float("0." + frac) if frac else 0.0)
        if mult:
            value *= _MULTIPLIER[mult]
            if tail:
                value += float(tail)
        if value == int(value):
            n = int(value)
            if 1900 <= n <= 2100 and not grouped and not mult and frac is None:
                found.add(f"year:{n}")
            elif n >= 10:
                found.add(f"num:{n}")
        else:
            found.add(f"num:{round(value, 3):g}")
    return found


def _blank(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` with the (possibly overlapping) spans replaced by spaces."""
    pieces: list[str] = []
    done = 0
    for a, b in sorted(spans):
        if b > done:
            pieces += (text[done:max(a, done)], " " * (b - max(a, done)))
            done = b
    return "".join(pieces) + text[done:] if pieces else text


def story_features(entity_ids: Sequence[str] | Mapping[str, int], text: str,
                   event_time: float | None = None) -> dict[str, float]:
    """The article's features and their base weights (before IDF), heaviest first, capped."""
    counts: dict[str, int] = {}
    if isinstance(entity_ids, Mapping):
        for eid, n in entity_ids.items():
            counts[eid] = counts.get(eid, 0) + max(1, int(n))
    else:
        for eid in entity_ids:
            counts[eid] = counts.get(eid, 0) + 1
    features: dict[str, float] = {}
    for eid, n in counts.items():
        features[eid] = _kind_weight(eid) * (1.0 + 0.5 * math.log(n))
    digits = _digit_positions(text)
    dates, spans = extract_dates(text, event_time, digits)
    # Numbers are read from what is left once dates and clock times are blanked out.
    blanked, digits = _blank(text, spans), _outside(digits, spans)
    times = [m.span() for m in _finditer_at(_TIME, blanked, digits)]
    rest, digits = _blank(blanked, times), _outside(digits, times)
    for f in dates | extract_numbers(rest, digits):
        features[f] = _kind_weight(f)
    top = sorted(features.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_ARTICLE_FEATURES]
    return dict(top)


def _kind_weight(feature: str) -> float:
    return KIND_WEIGHT.get(feature.split(":", 1)[0], DEFAULT_KIND_WEIGHT)

