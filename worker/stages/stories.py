"""Stage 5: story clusters — articles about the same event share a `story_id`.

Near-duplicate detection (dedup.py) links copies of one text. A *story* is wider: other outlets'
rewrites, translations and summaries of the same event, which share almost no shingles. They do
share what the event is made of, and those things can be written down without the language:

* entity ids from `tag_entities` ("person:vladimir-putin", "city:524305", "country:KP"),
* numbers, normalised across notations ("12,000", "12.000", "12 000", "1万2000", "1.2万" -> 12000;
  "3,75 %" and "3.75%" -> 3.75), years kept apart as a weaker feature,
* calendar dates, normalised to month-day ("March 27", "27. März", "27 марта", "3月27日",
  "3월 27일" -> 03-27; a bare "27日"/"27일" is dated from the article's event time).

Each feature has a base weight by kind (a date, a person or a city says more than a country;
entities mentioned often weigh more) times an IDF computed online over the last `idf_window`
articles, so the entities every article has (country:US) weigh little once the index has seen
some traffic.

An article is compared with the stories active around its event time (`window_s`): the cosine of
its weighted feature vector with each candidate story's centroid (the sum of its members'
normalised vectors), and, for the best few stories, with each of their recent members (single
link: a short summary that matches one long report well). The score is the larger of the two; at
or above `threshold` the article joins that story, otherwise it starts a new one. A story must
share at least `MIN_SHARED_WEIGHT` of base weight with the article (one common country and a year
never make a story). `matched` is the member article it resembled most.

Arrival order does not decide the stories. Candidates are found by the article's own event time
(postings per event-time bucket of `window_s`: a back-filled article finds its story), and an
article that also matches a second story at `merge_threshold` or more merges it into the one it
joins (`merged_stories`; the merged story is named by the smallest id): two halves of one event's
coverage that began as separate stories become one whichever arrives first. Stories leave by how
long ago their last article *arrived* (`retention_s`) and by a budget (`max_records`), never by
event time, so no date, however wrong, evicts anything.

Bounded cost per article, however many stories exist (docs/quality.md, "Cost per article"):
* an article contributes at most `MAX_ARTICLE_FEATURES` features (its heaviest ones);
* candidates come from an inverted index (event-time bucket, feature) -> story ids that keeps
  only the `MAX_POSTINGS` most recently updated stories per key (a hub feature such as country:US
  cannot fan out); `MAX_CANDIDATES` centroids and `MEMBER_CHECKS` stories' members are scored;
* a story keeps at most `MAX_STORY_FEATURES` centroid entries and `MAX_MEMBERS` member vectors;
* `evict_expired` drops whole stories (with their members' records) by arrival age and budget;
  the IDF table counts the last `idf_window` arrivals still indexed.

Limits, measured in docs/quality.md: with real publication times events days apart never meet,
and events two days apart with the same countries are separated by content; without times
(every article at one instant) two events made of the same entities — two ECB rate cuts, two
Putin-Kim summits — merge. An article whose entities the tagger misses (small Japanese towns) has
nothing to match on. Weights and threshold were chosen on tests/data/articles.jsonl.

State is plain Python. `StoryRecord` (one per article: the decision and its features) is the
unit of persistence: `load` replays records (in decision order) into a fresh index — existing
articles keep their story ids, and stories continue — and `to_bytes`/`from_bytes` snapshot the
records still in the window. Pure and offline: no model, no network.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import xxhash

__all__ = [
    "StoryAssignment",
    "StoryIndex",
    "StoryRecord",
    "extract_dates",
    "extract_numbers",
    "new_story_id",
    "story_features",
]

# --- Tuning (chosen on tests/data/articles.jsonl; see docs/quality.md) ------------------------

DEFAULT_THRESHOLD = 0.30
DEFAULT_WINDOW_S = 3 * 86400.0  # an event's coverage: publication times within 3 days
DEFAULT_IDF_WINDOW = 20_000  # articles the IDF table remembers
DEFAULT_MERGE_THRESHOLD = 0.40  # 0.30 merged two events 2 days apart in one order; 0.6 lost recall (docs/quality.md)
DEFAULT_RETENTION_S = 7 * 86400.0  # a story with no new article for this long (arrival) leaves
DEFAULT_MAX_RECORDS = 1_000_000  # member articles held at most (the oldest stories leave first)

MAX_ARTICLE_FEATURES = 48
MAX_STORY_FEATURES = 64
MAX_MEMBERS = 8
MAX_POSTINGS = 64
MAX_CANDIDATES = 16  # stories whose centroid is scored
MEMBER_CHECKS = 4  # of those, stories whose recent members are scored one by one

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
# An article must share at least this much base weight with a story to join it: a lone common
# feature ("country:US" + "year:2025") never makes a story, whatever the cosine says.
MIN_SHARED_WEIGHT = 4.0


# --- Feature extraction -----------------------------------------------------------------------

_MONTHS: dict[str, int] = {}


def _months(names: str) -> None:
    for i, group in enumerate(names.split(";"), start=1):
        for name in group.split(","):
            name = name.strip()
            if name:
                _MONTHS[name] = i


# Full month names (and genitive forms) in the languages news is most often written in.
_months("january;february;march;april;may;june;july;august;september;october;november;december")
_months("januar,jänner;februar,feber;märz,maerz;april;mai;juni;juli;august;september;oktober;november;dezember")
_months("janvier;février,fevrier;mars;avril;mai;juin;juillet;août,aout;septembre;octobre;novembre;décembre,decembre")
_months("enero;febrero;marzo;abril;mayo;junio;julio;agosto;septiembre,setiembre;octubre;noviembre;diciembre")
_months("gennaio;febbraio;marzo;aprile;maggio;giugno;luglio;agosto;settembre;ottobre;novembre;dicembre")
_months("janeiro;fevereiro;março,marco;abril;maio;junho;julho;agosto;setembro;outubro;novembro;dezembro")
_months("januari;februari;maart;april;mei;juni;juli;augustus;september;oktober;november;december")
_months("января;февраля;марта;апреля;мая;июня;июля;августа;сентября;октября;ноября;декабря")
_months("січня;лютого;березня;квітня;травня;червня;липня;серпня;вересня;жовтня;листопада;грудня")
_months("stycznia;lutego;marca;kwietnia;maja;czerwca;lipca;sierpnia;września;października;listopada;grudnia")
_months("ocak;şubat;mart;nisan;mayıs;haziran;temmuz;ağustos;eylül;ekim;kasım;aralık")
_months("januari;februari;maret;april;mei;juni;juli;agustus;september;oktober;november;desember")
_months("januari;februari;mars;april;maj;juni;juli;augusti;september;oktober;november;december")
_MONTH_ABBR = {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
               "sept": 9, "oct": 10, "nov": 11, "dec": 12}

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
    for word, dot, day, span in _month_day_matches(text, digits):
        key = word.lower()
        month = _MONTH_ABBR.get(key, 0) if dot else (_MONTHS.get(key) or _MONTH_ABBR.get(key, 0))
        if month:
            add(month, int(day), span)
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
    pieces, done = [], 0
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


# --- Records and assignments ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoryAssignment:
    story_id: str
    score: float  # similarity to the story joined; for a new story, the best score seen (< threshold)
    matched: str | None  # the member article this one resembled most; None for a new story
    merged_stories: tuple[str, ...] = ()  # other stories this article also matched: now one

    def to_dict(self) -> dict:
        return {"story_id": self.story_id, "score": round(self.score, 4), "matched": self.matched,
                "merged_stories": list(self.merged_stories)}


@dataclass(frozen=True, slots=True)
class StoryRecord:
    """What is persisted per article: the decision and the (base-weighted) features behind it."""

    article_id: str
    story_id: str
    score: float
    matched: str | None
    event_time: float
    features: tuple[tuple[str, float], ...]
    arrival: float = 0.0  # epoch seconds when the index took it: what retention is measured by
    merged_stories: tuple[str, ...] = ()

    @property
    def assignment(self) -> StoryAssignment:
        return StoryAssignment(self.story_id, self.score, self.matched, self.merged_stories)

    def to_dict(self) -> dict:
        d = {"id": self.article_id, "s": self.story_id, "sc": self.score, "m": self.matched,
             "t": self.event_time, "a": self.arrival, "f": [[k, v] for k, v in self.features]}
        if self.merged_stories:
            d["mg"] = list(self.merged_stories)
        return d

    @classmethod
    def from_dict(cls, d: dict, default_arrival: float = 0.0) -> StoryRecord:
        """`default_arrival`: see `IndexRecord.from_dict` (records written before arrivals were)."""
        return cls(d["id"], d["s"], float(d["sc"]), d["m"], float(d["t"]),
                   tuple((str(k), float(v)) for k, v in d["f"]), float(d.get("a", default_arrival)),
                   tuple(d.get("mg", ())))

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_bytes(cls, raw: bytes) -> StoryRecord:
        return cls.from_dict(orjson.loads(raw))


@dataclass(slots=True)
class _Story:
    story_id: str
    first_time: float  # event times of its members
    last_time: float
    last_arrival: float = 0.0  # what retention is measured by
    size: int = 0
    centroid: dict[str, float] = field(default_factory=dict)  # sum of members' unit base vectors
    members: deque[tuple[str, dict[str, float]]] = field(default_factory=lambda: deque(maxlen=MAX_MEMBERS))
    posted: set[tuple[int, str]] = field(default_factory=set)  # (time bucket, feature) it is listed under
    articles: list[str] = field(default_factory=list)  # every member's id (they leave with the story)
    aliases: list[str] = field(default_factory=list)  # stories merged into this one


class _IdfTable(dict):
    """idf[f] = 1 + ln((n + 1) / (df(f) + 1)) over the last n articles, computed on a miss and
    kept (a hit is one C-level lookup). It keeps the document frequencies itself, so an entry
    goes whenever its df changes; every entry goes when n changes, i.e. while the window is still
    filling, or when it outgrows max_entries (features of expired stories, never looked up again)."""

    def __init__(self, max_entries: int) -> None:
        super().__init__()
        self.df: dict[str, int] = {}  # feature -> articles in the window that have it
        self._df_get = self.df.get
        self._n = 0
        self._max_entries = max_entries

    def count(self, features: tuple[str, ...]) -> None:
        df = self.df
        for f in features:
            df[f] = df.get(f, 0) + 1
            self.pop(f, None)

    def uncount(self, features: tuple[str, ...]) -> None:
        df = self.df
        for f in features:
            n = df[f] - 1
            if n:
                df[f] = n
            else:
                del df[f]
            self.pop(f, None)

    def set_articles(self, n: int) -> None:
        if n != self._n or len(self) > self._max_entries:
            self._n = n
            self.clear()

    def __missing__(self, feature: str) -> float:
        value = self[feature] = 1.0 + math.log((self._n + 1) / (self._df_get(feature, 0) + 1))
        return value


def _unit(vector: Mapping[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
    return {k: v / norm for k, v in vector.items()}


def new_story_id(article_id: str) -> str:
    return "story-" + xxhash.xxh3_64_hexdigest(article_id.encode("utf-8"))


# --- The index -------------------------------------------------------------------------------------


class StoryIndex:
    """Stories in memory: what the worker's funnel and `ingest enrich` assign articles to.

    threshold     cosine at which an article joins a story
    merge_threshold  cosine with a second story at which that story merges into the one joined
                  (stricter than joining: a merge moves a whole story)
    window_s      event-time neighbourhood: an article meets the stories active within this of
                  its own event time, whatever order articles arrive in
    retention_s   a story leaves this long after its last article *arrived* (arrival, not event time)
    max_records   the memory budget in member articles: past it, the stories that received an
                  article longest ago leave first
    idf_window    the articles (most recent arrivals still indexed) the IDF table counts
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, window_s: float = DEFAULT_WINDOW_S,
                 idf_window: int = DEFAULT_IDF_WINDOW, retention_s: float = DEFAULT_RETENTION_S,
                 max_records: int = DEFAULT_MAX_RECORDS, merge_threshold: float = DEFAULT_MERGE_THRESHOLD) -> None:
        self.threshold = threshold
        self.merge_threshold = max(merge_threshold, threshold)
        self.window_s = window_s
        self.idf_window = idf_window
        self.retention_s = retention_s
        self.max_records = max_records
        self._stories: dict[str, _Story] = {}
        self._merged_into: dict[str, str] = {}  # story -> the story it was merged into
        # (event-time bucket, feature) -> story ids, most recently updated last. Buckets are
        # `window_s` wide; an article reads its own bucket and both neighbours.
        self._postings: dict[tuple[int, str], deque[str]] = {}
        self._records: dict[str, StoryRecord] = {}  # in decision order (snapshots replay it)
        self._recent: dict[str, tuple[str, ...]] = {}  # the IDF window: id -> feature keys, oldest first
        self._idf = _IdfTable(max_entries=4 * idf_window)
        self._df = self._idf.df  # document frequencies over _recent
        self._story_expiry: list[tuple[float, str]] = []  # heap of (story's last arrival, story id)
        self._clock = 0.0  # the latest arrival seen (assignments without an arrival use it)

    def __len__(self) -> int:
        return len(self._stories)

    # -- the decision ------------------------------------------------------------------------------

    def assign(self, article_id: str, entity_ids: Sequence[str] | Mapping[str, int], text: str,
               event_time: float, arrival: float | None = None) -> StoryAssignment:
        """The story of this article (a redelivered id gets its first answer again)."""
        known = self._records.get(article_id)
        if known is not None:
            return known.assignment
        return self.assign_features(article_id, story_features(entity_ids, text, event_time), event_time,
                                    arrival)

    def assign_features(self, article_id: str, features: Mapping[str, float],
                        event_time: float, arrival: float | None = None) -> StoryAssignment:
        """`assign` for features computed beforehand by `story_features` (the worker computes
        them in the stateless analyse agent, so the one-partition funnel does only index work).
        `arrival`: when the index took the article (default: the latest arrival seen)."""
        known = self._records.get(article_id)
        if known is not None:
            return known.assignment
        features = dict(features)
        self._count(article_id, features)
        matches = self._matching_stories(features, event_time)
        if matches and matches[0][1] >= self.threshold:
            joined = {matches[0][0]} | {sid for sid, score, _ in matches[1:] if score >= self.merge_threshold}
            story_id = min(joined)  # the same name whatever order the merges come in
            _, score, matched = matches[0]
            merged = tuple(sorted(joined - {story_id}))
        else:
            score = matches[0][1] if matches else 0.0
            story_id, matched, merged = new_story_id(article_id), None, ()
        arrival = self._clock if arrival is None else arrival
        record = StoryRecord(article_id, story_id, round(score, 6), matched, event_time,
                             tuple(features.items()), arrival, merged)
        self._apply(record)
        return record.assignment

    def story_of(self, story_id: str) -> str:
        """The story `story_id` is part of now (itself, unless it was merged)."""
        merged_into = self._merged_into
        while story_id in merged_into:
            story_id = merged_into[story_id]
        return story_id

    # -- persistence -------------------------------------------------------------------------------

    def load(self, record: StoryRecord) -> None:
        """Replay a stored decision (after a restart; in decision order): the same state as when
        it was made."""
        if record.article_id in self._records:
            return
        self._count(record.article_id, dict(record.features))
        self._apply(record)

    def get(self, article_id: str) -> StoryRecord | None:
        return self._records.get(article_id)

    def to_bytes(self) -> bytes:
        return orjson.dumps({"threshold": self.threshold, "window_s": self.window_s,
                             "idf_window": self.idf_window, "retention_s": self.retention_s,
                             "max_records": self.max_records,
                             "records": [r.to_dict() for r in self._records.values()]})

    @classmethod
    def from_bytes(cls, raw: bytes) -> StoryIndex:
        d = orjson.loads(raw)
        index = cls(d["threshold"], d["window_s"], d["idf_window"],
                    d.get("retention_s", DEFAULT_RETENTION_S), d.get("max_records", DEFAULT_MAX_RECORDS))
        for r in d["records"]:
            index.load(StoryRecord.from_dict(r))
        return index

    def evict_expired(self, now: float | None = None) -> list[str]:
        """Forget the stories whose last article arrived more than `retention_s` before `now`,
        then, past `max_records`, the stories updated longest ago; a story leaves whole, with
        its members' records (their ids are returned). A redelivery of one is decided afresh."""
        horizon = (self._clock if now is None else now) - self.retention_s
        dropped: list[str] = []
        expiry = self._story_expiry
        while expiry and (expiry[0][0] < horizon or len(self._records) > self.max_records):
            last, sid = heapq.heappop(expiry)
            story = self._stories.get(sid)
            if story is None or story.last_arrival != last:
                continue  # stale heap entry: the story was updated (or merged) since
            del self._stories[sid]
            for key in story.posted:
                self._unpost(key, sid)
            for alias in story.aliases:
                self._merged_into.pop(alias, None)
            for aid in story.articles:
                if self._records.pop(aid, None) is not None:
                    dropped.append(aid)
                keys = self._recent.pop(aid, None)
                if keys is not None:
                    self._idf.uncount(keys)
        if dropped:
            self._idf.set_articles(len(self._recent))
        return dropped

    # -- internals ---------------------------------------------------------------------------------

    def _count(self, article_id: str, features: Mapping[str, float]) -> None:
        keys = tuple(features)
        self._recent[article_id] = keys
        self._idf.count(keys)
        if len(self._recent) > self.idf_window:
            oldest = next(iter(self._recent))
            self._idf.uncount(self._recent.pop(oldest))
        self._idf.set_articles(len(self._recent))

    def _bucket(self, event_time: float) -> int:
        return math.floor(event_time / self.window_s)

    def _active(self, story: _Story, event_time: float) -> bool:
        return (story.last_time >= event_time - self.window_s
                and story.first_time <= event_time + self.window_s)

    def _matching_stories(self, features: Mapping[str, float],
                          event_time: float) -> list[tuple[str, float, str | None]]:
        """(story, score, best member) for the stories scored, best first."""
        idf = self._idf  # idf[f]: a hit is one C-level dict lookup
        weighted = {f: w * idf[f] for f, w in features.items()}
        weighted_get = weighted.get  # the loops below are the funnel's hottest code: locals only
        bound: dict[str, float] = {}
        bound_get = bound.get
        postings_get = self._postings.get
        home = self._bucket(event_time)
        for f, w in weighted.items():
            w2 = w * w
            seen = None
            for bucket in (home - 1, home, home + 1):
                post = postings_get((bucket, f))
                if post is None:
                    continue
                if seen is None:
                    seen = set(post)
                    for sid in post:
                        bound[sid] = bound_get(sid, 0.0) + w2
                else:
                    for sid in post:
                        if sid not in seen:
                            seen.add(sid)
                            bound[sid] = bound_get(sid, 0.0) + w2
        if not bound:
            return []
        a_norm = math.sqrt(sum(v * v for v in weighted.values())) or 1.0
        # 1. centroid cosine for the best candidates by the cheap bound (active stories only)
        scored: list[tuple[float, str]] = []
        for sid, _ in sorted(bound.items(), key=lambda kv: (-kv[1], kv[0])):
            story = self._stories.get(sid)
            if story is None or not self._active(story, event_time):
                continue
            centroid = story.centroid
            dot = norm = 0.0
            for f, v in centroid.items():
                x = v * idf[f]
                norm += x * x
                wf = weighted_get(f)
                if wf is not None:
                    dot += wf * x
            cos = dot / (a_norm * (math.sqrt(norm) or 1.0))
            # (summed only when it can change cos: it is ~40 % of this method's cost otherwise)
            if cos > self.threshold - 1e-6 and \
                    sum(w for f, w in features.items() if f in centroid) < MIN_SHARED_WEIGHT:
                cos = self.threshold - 1e-6
            scored.append((cos, sid))
            if len(scored) >= MAX_CANDIDATES:
                break
        if not scored:
            return []
        scored.sort(key=lambda t: (-t[0], t[1]))
        # 2. single-link check against the recent members of the few best stories
        out: list[tuple[str, float, str | None]] = []
        for rank, (cos, sid) in enumerate(scored):
            story = self._stories[sid]
            score, matched = cos, None
            if rank < MEMBER_CHECKS:
                best_m = -1.0
                for aid, unit in story.members:
                    dot = norm = 0.0
                    for f, v in unit.items():
                        x = v * idf[f]
                        norm += x * x
                        wf = weighted_get(f)
                        if wf is not None:
                            dot += wf * x
                    m = dot / (a_norm * (math.sqrt(norm) or 1.0))
                    if m > best_m:
                        best_m, matched = m, aid
                if best_m > score and \
                        sum(w for f, w in features.items() if f in story.centroid) >= MIN_SHARED_WEIGHT:
                    score = best_m
            out.append((sid, score, matched))
        out.sort(key=lambda t: (-t[1], t[0]))
        return out

    def _unpost(self, key: tuple[int, str], story_id: str) -> None:
        post = self._postings.get(key)
        if post is None:
            return
        try:
            post.remove(story_id)
        except ValueError:
            pass
        if not post:
            del self._postings[key]

    def _post(self, story: _Story, bucket: int, features: Iterable[str]) -> None:
        """List `story` under these features in this time bucket, as the most recently updated."""
        sid = story.story_id
        for f in features:
            key = (bucket, f)
            post = self._postings.get(key)
            if post is None:
                post = self._postings[key] = deque()
            if key in story.posted:
                if post[-1] == sid:
                    continue  # already the most recent (about half the time)
                try:
                    post.remove(sid)  # move to the most recent end
                except ValueError:
                    pass
            post.append(sid)
            story.posted.add(key)
            while len(post) > MAX_POSTINGS:
                old = post.popleft()
                other = self._stories.get(old)
                if other is not None:
                    other.posted.discard(key)

    def _trim(self, story: _Story) -> None:
        if len(story.centroid) <= MAX_STORY_FEATURES:
            return
        keep = sorted(story.centroid.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_STORY_FEATURES]
        story.centroid = dict(keep)
        for key in [k for k in story.posted if k[1] not in story.centroid]:
            self._unpost(key, story.story_id)
            story.posted.discard(key)

    def _merge(self, into: _Story, other: _Story) -> None:
        """`other` becomes part of `into`: centroid, members, postings, times; its id an alias."""
        for f, v in other.centroid.items():
            into.centroid[f] = into.centroid.get(f, 0.0) + v
        self._trim(into)
        members = sorted([*into.members, *other.members], key=lambda m: self._records[m[0]].arrival)
        into.members = deque(members[-MAX_MEMBERS:], maxlen=MAX_MEMBERS)
        into.first_time = min(into.first_time, other.first_time)
        into.last_time = max(into.last_time, other.last_time)
        into.last_arrival = max(into.last_arrival, other.last_arrival)
        into.size += other.size
        into.articles += other.articles
        into.aliases += [other.story_id, *other.aliases]
        for key in other.posted:
            self._unpost(key, other.story_id)
            if key[1] in into.centroid:
                self._post(into, key[0], (key[1],))
        del self._stories[other.story_id]
        self._merged_into[other.story_id] = into.story_id
        for alias in other.aliases:
            self._merged_into[alias] = into.story_id

    def _apply(self, record: StoryRecord) -> None:
        features = dict(record.features)
        story_id = self.story_of(record.story_id)
        story = self._stories.get(story_id)
        if story is None:
            story = _Story(story_id, record.event_time, record.event_time, record.arrival)
            self._stories[story_id] = story
        for other_id in record.merged_stories:
            other = self._stories.get(self.story_of(other_id))
            if other is not None and other is not story:
                self._merge(story, other)
        story.first_time = min(story.first_time, record.event_time)
        story.last_time = max(story.last_time, record.event_time)
        story.last_arrival = max(story.last_arrival, record.arrival)
        story.size += 1
        story.articles.append(record.article_id)
        unit = _unit(features)
        for f, v in unit.items():
            story.centroid[f] = story.centroid.get(f, 0.0) + v
        self._trim(story)
        story.members.append((record.article_id, unit))
        self._records[record.article_id] = record
        self._post(story, self._bucket(record.event_time), story.centroid)
        self._clock = max(self._clock, record.arrival)
        heapq.heappush(self._story_expiry, (story.last_arrival, story.story_id))
