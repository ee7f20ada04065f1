"""The story index: which story an article joins, given its features (`features.py`), and the
state behind that decision: stories, postings, the online IDF table, retention and snapshots
(see the package docstring)."""

from __future__ import annotations

import heapq
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import orjson
import xxhash

from worker.stages.multimap import Multimap
from worker.stages.stories.features import story_features

# --- Tuning (chosen on worker/quality/data/articles.jsonl; see docs/quality.md) ---------------

DEFAULT_THRESHOLD = 0.30
DEFAULT_WINDOW_S = 3 * 86400.0  # an event's coverage: publication times within 3 days
DEFAULT_IDF_WINDOW = 20_000  # articles the IDF table remembers
DEFAULT_MERGE_THRESHOLD = 0.40  # 0.30 merged two events 2 days apart in one order; 0.6 lost recall (docs/quality.md)
DEFAULT_RETENTION_S = 7 * 86400.0  # a story with no new article for this long (arrival) leaves
DEFAULT_MAX_RECORDS = 1_000_000  # member articles held at most (the oldest stories leave first)

MAX_STORY_FEATURES = 64
MAX_MEMBERS = 8
MAX_POSTINGS = 64
MAX_CANDIDATES = 16  # stories whose centroid is scored
MEMBER_CHECKS = 4  # of those, stories whose recent members are scored one by one
# An article must share at least this much base weight with a story to join it: a lone common
# feature ("country:US" + "year:2025") never makes a story, whatever the cosine says.
MIN_SHARED_WEIGHT = 4.0


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


@dataclass(slots=True)
class _Story:
    story_id: str
    first_time: float  # event times of its members
    last_time: float
    last_arrival: float = 0.0  # what retention is measured by
    size: int = 0
    centroid: dict[str, float] = field(default_factory=dict)  # sum of members' unit base vectors
    # the last MAX_MEMBERS members (a list: an empty deque takes ~600 bytes, most stories are small)
    members: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    posted: set[tuple[int, str]] = field(default_factory=set)  # (time bucket, feature) it is listed under
    articles: list[str] = field(default_factory=list)  # every member's id (they leave with the story)
    aliases: list[str] = field(default_factory=list)  # stories merged into this one


_RECORD = np.dtype([("seq", "<i8"), ("score", "<f8"), ("event_time", "<f8"), ("arrival", "<f8")])
_ROW_BITS = 27
_ROW_MASK = (1 << _ROW_BITS) - 1
_GEN_BITS = 0x1F


class _Records:
    """The story index's per-article records in arrays, one row per article (issue 24: a
    StoryRecord object per article, its floats and a dict entry took ~200 bytes; a row ~75):
    numbers in numpy blocks, the ids it names in lists (the strings are the ones the stories
    hold), id -> row in a compact multimap (xxh32 of the id, verified against the row's id).
    `get` makes the StoryRecord; iteration is in decision order. A row is reused after its
    article leaves, with a new generation. `keep_features`: keep each record's features."""

    BLOCK = 1 << 14

    def __init__(self, keep_features: bool) -> None:
        self.keep_features = keep_features
        self._ids: list[str | None] = []
        self._story: list[str | None] = []
        self._matched: list[str | None] = []
        self._features: list[tuple[tuple[str, float], ...]] = []  # keep_features only
        self._merged: dict[int, tuple[str, ...]] = {}  # row -> stories merged (few)
        self._blocks: list[np.ndarray] = []
        self._generation = np.zeros(0, dtype=np.uint32)
        self._rows = Multimap(np.uint32, np.uint32)
        self._free: list[int] = []
        self._seq = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, article_id: str) -> bool:
        return self._row(article_id) is not None

    def _live(self, refs: np.ndarray) -> np.ndarray:
        rows = (refs & np.uint32(_ROW_MASK)).astype(np.intp)
        return (self._generation[rows] & np.uint32(_GEN_BITS)) == (refs >> np.uint32(_ROW_BITS))

    def _row(self, article_id: str) -> int | None:
        for ref in self._rows.lookup_one(xxhash.xxh32_intdigest(article_id.encode())):
            row = ref & _ROW_MASK
            if self._ids[row] == article_id and (int(self._generation[row]) & _GEN_BITS) == ref >> _ROW_BITS:
                return row
        return None

    def get(self, article_id: str) -> StoryRecord | None:
        row = self._row(article_id)
        return None if row is None else self._record(row)

    def __getitem__(self, article_id: str) -> StoryRecord:
        record = self.get(article_id)
        if record is None:
            raise KeyError(article_id)
        return record

    def _record(self, row: int) -> StoryRecord:
        block, r = divmod(row, self.BLOCK)
        n = self._blocks[block][r]
        article_id, story_id = self._ids[row], self._story[row]
        assert article_id is not None and story_id is not None
        return StoryRecord(article_id, story_id, float(n["score"]), self._matched[row], float(n["event_time"]),
                           self._features[row] if self.keep_features else (), float(n["arrival"]),
                           self._merged.get(row, ()))

    def arrival(self, article_id: str) -> float:
        row = self._row(article_id)
        if row is None:
            raise KeyError(article_id)
        block, r = divmod(row, self.BLOCK)
        return float(self._blocks[block][r]["arrival"])

    def add(self, record: StoryRecord) -> None:
        if self._free:
            row = self._free.pop()
            self._ids[row], self._story[row], self._matched[row] = \
                record.article_id, record.story_id, record.matched
            if self.keep_features:
                self._features[row] = record.features
        else:
            row = len(self._ids)
            if row > _ROW_MASK:
                raise RuntimeError(f"the story index holds at most {_ROW_MASK + 1:,} articles")
            self._ids.append(record.article_id)
            self._story.append(record.story_id)
            self._matched.append(record.matched)
            if self.keep_features:
                self._features.append(record.features)
            if row >= len(self._blocks) * self.BLOCK:
                self._blocks.append(np.zeros(self.BLOCK, dtype=_RECORD))
                self._generation = np.concatenate([self._generation, np.zeros(self.BLOCK, np.uint32)])
        if record.merged_stories:
            self._merged[row] = record.merged_stories
        block, r = divmod(row, self.BLOCK)
        self._blocks[block][r] = (self._seq, record.score, record.event_time, record.arrival)
        self._seq += 1
        self._count += 1
        ref = ((int(self._generation[row]) & _GEN_BITS) << _ROW_BITS) | row
        self._rows.add_one(xxhash.xxh32_intdigest(record.article_id.encode()), ref, self._live)

    def pop(self, article_id: str) -> bool:
        """Forget this article's record; whether it had one."""
        row = self._row(article_id)
        if row is None:
            return False
        self._ids[row] = self._story[row] = self._matched[row] = None
        if self.keep_features:
            self._features[row] = ()
        self._merged.pop(row, None)
        self._generation[row] += 1
        self._free.append(row)
        self._count -= 1
        return True

    def _order(self) -> list[int]:
        rows = [row for row, article_id in enumerate(self._ids) if article_id is not None]
        if not rows:
            return rows
        seq = np.concatenate(self._blocks)["seq"][rows]
        return [rows[i] for i in np.argsort(seq, kind="stable").tolist()]

    def ids(self) -> Iterator[str]:
        """The ids held, in decision order."""
        return (self._ids[row] or "" for row in self._order())

    def values(self) -> Iterator[StoryRecord]:
        """The records, in decision order."""
        return (self._record(row) for row in self._order())

    def state(self) -> dict:
        return {"keep_features": self.keep_features, "ids": self._ids, "story": self._story,
                "matched": self._matched, "features": [[[f, w] for f, w in fs] for fs in self._features],
                "merged": {str(row): list(m) for row, m in self._merged.items()}, "blocks": self._blocks,
                "generation": self._generation, "rows": self._rows.state(), "free": self._free, "seq": self._seq,
                "count": self._count}

    @classmethod
    def from_state(cls, state: dict, one: Callable[[str, str], str]) -> _Records:
        records = cls(state["keep_features"])
        records._ids = [None if x is None else one(x, x) for x in state["ids"]]
        records._story = [None if x is None else one(x, x) for x in state["story"]]
        records._matched = [None if x is None else one(x, x) for x in state["matched"]]
        intern = sys.intern
        records._features = [tuple((intern(f), w) for f, w in fs) for fs in state["features"]]
        records._merged = {int(row): tuple(one(x, x) for x in m) for row, m in state["merged"].items()}
        records._blocks = list(state["blocks"])
        records._generation = state["generation"]
        records._rows = Multimap.from_state(state["rows"])
        records._free = list(state["free"])
        records._seq, records._count = int(state["seq"]), int(state["count"])
        return records


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


def _cosine(vector: Mapping[str, float], idf: _IdfTable, weighted_get: Callable[[str], float | None],
            a_norm: float) -> float:
    """Cosine of `vector` (a story's centroid or a member's unit vector, IDF applied here) with the
    article's IDF-weighted vector, given as its dict's `get` and its norm (the caller's locals)."""
    dot = norm = 0.0
    for f, v in vector.items():
        x = v * idf[f]
        norm += x * x
        wf = weighted_get(f)
        if wf is not None:
            dot += wf * x
    return dot / (a_norm * (math.sqrt(norm) or 1.0))


def _unit(vector: Mapping[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
    return {k: v / norm for k, v in vector.items()}


def _interned(features: Mapping[str, float]) -> dict[str, float]:
    """The features with their names interned: one string per distinct feature in the process."""
    intern = sys.intern
    return {intern(f): w for f, w in features.items()}


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
    features_of   for an owner that keeps the records elsewhere (the worker: its table; issue
                  24: in memory they were ~1.2 KB of Python objects per article): the features of
                  an article by id, read from there. An article's features then serve its decision
                  and the stories it shapes, and are not kept with its record; `get` reads them
                  back through `features_of` (but the last article assigned's). `to_bytes` cannot
                  write such an index's records: `state` / `from_state` snapshot it instead.

    Feature names are interned (one string per distinct feature, shared by every article, story
    and posting that has it).
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, window_s: float = DEFAULT_WINDOW_S,
                 idf_window: int = DEFAULT_IDF_WINDOW, retention_s: float = DEFAULT_RETENTION_S,
                 max_records: int = DEFAULT_MAX_RECORDS, merge_threshold: float = DEFAULT_MERGE_THRESHOLD,
                 features_of: Callable[[str], Sequence[tuple[str, float]] | None] | None = None) -> None:
        self.threshold = threshold
        self.keep_features = features_of is None
        self._features_of = features_of
        self._last: tuple[str, tuple[tuple[str, float], ...]] | None = None  # the last assigned's features
        self.merge_threshold = max(merge_threshold, threshold)
        self.window_s = window_s
        self.idf_window = idf_window
        self.retention_s = retention_s
        self.max_records = max_records
        self._stories: dict[str, _Story] = {}
        self._merged_into: dict[str, str] = {}  # story -> the story it was merged into
        # (event-time bucket, feature) -> story ids, most recently updated last. Buckets are
        # `window_s` wide; an article reads its own bucket and both neighbours.
        self._postings: dict[tuple[int, str], list[str]] = {}  # lists, not deques: see _Story.members
        self._records = _Records(self.keep_features)  # iterated in decision order (to_bytes replays it)
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
        features = _interned(features)
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
                             tuple(features.items()) if self.keep_features else (), arrival, merged)
        self._apply(record, features)
        if not self.keep_features:
            self._last = (article_id, tuple(features.items()))
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
        features = _interned(dict(record.features))
        if self.keep_features:
            record = replace(record, features=tuple(features.items()))
        elif record.features:
            record = replace(record, features=())
        self._count(record.article_id, features)
        self._apply(record, features)

    def get(self, article_id: str) -> StoryRecord | None:
        record = self._records.get(article_id)
        if record is None or self._features_of is None:
            return record
        if self._last is not None and self._last[0] == article_id:
            return replace(record, features=self._last[1])
        return replace(record, features=tuple(self._features_of(article_id) or ()))

    def __contains__(self, article_id: str) -> bool:
        return article_id in self._records

    def records(self) -> int:
        """Articles held (members of the stories in the index)."""
        return len(self._records)

    def ids(self) -> Iterator[str]:
        """The ids of the articles held."""
        return self._records.ids()

    def to_bytes(self) -> bytes:
        if not self.keep_features:
            raise ValueError("this StoryIndex keeps its records' features elsewhere (features_of): "
                             "snapshot it with state()")
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

    def state(self) -> dict:
        """The whole index as plain values (lists, dicts, strings, numbers) that `from_state`
        restores exactly (a snapshot: no decision is replayed). Derived tables (document
        frequencies, the expiry heap) are recomputed there."""
        return {
            "params": {"threshold": self.threshold, "merge_threshold": self.merge_threshold,
                       "window_s": self.window_s, "idf_window": self.idf_window, "retention_s": self.retention_s,
                       "max_records": self.max_records},
            "stories": [[s.story_id, s.first_time, s.last_time, s.last_arrival, s.size, s.centroid,
                         [[aid, unit] for aid, unit in s.members], [list(k) for k in s.posted], s.articles,
                         s.aliases] for s in self._stories.values()],
            "merged_into": self._merged_into,
            "postings": [[bucket, feature, list(post)] for (bucket, feature), post in self._postings.items()],
            "records": self._records.state(),
            "recent": [[aid, list(keys)] for aid, keys in self._recent.items()],
            "clock": self._clock,
        }

    @classmethod
    def from_state(cls, state: dict, strings: dict[str, str] | None = None,
                   features_of: Callable[[str], Sequence[tuple[str, float]] | None] | None = None) -> StoryIndex:
        """The index `state()` was taken of. `strings`: a dict to make one object of equal
        strings with (shared with the caller's other indexes: article ids), else a fresh one.
        `features_of`: see the class (records saved without their features need it)."""
        p = state["params"]
        index = cls(p["threshold"], p["window_s"], p["idf_window"], p["retention_s"], p["max_records"],
                    p["merge_threshold"], features_of)
        canon = {} if strings is None else strings
        one = canon.setdefault
        intern = sys.intern
        for sid, first, last, last_arrival, size, centroid, members, posted, articles, aliases in state["stories"]:
            sid = one(sid, sid)
            story = _Story(sid, first, last, last_arrival, size, {intern(f): v for f, v in centroid.items()},
                           [(one(aid, aid), {intern(f): v for f, v in unit.items()}) for aid, unit in members],
                           {(b, intern(f)) for b, f in posted}, [one(a, a) for a in articles],
                           [one(a, a) for a in aliases])
            index._stories[sid] = story
        index._merged_into = {one(k, k): one(v, v) for k, v in state["merged_into"].items()}
        index._postings = {(bucket, intern(feature)): [one(sid, sid) for sid in post]
                           for bucket, feature, post in state["postings"]}
        if not state["records"]["keep_features"] and features_of is None:
            raise ValueError("the records of this state have no features: restore it with features_of")
        index._records = _Records.from_state(state["records"], one)
        if index._records.keep_features and features_of is not None:  # they are in the table
            index._records.keep_features, index._records._features = False, []
        for aid, keys in state["recent"]:
            keys = tuple(intern(f) for f in keys)
            index._recent[one(aid, aid)] = keys
            index._idf.count(keys)
        index._idf.set_articles(len(index._recent))
        index._story_expiry = [(s.last_arrival, s.story_id) for s in index._stories.values()]
        heapq.heapify(index._story_expiry)
        index._clock = state["clock"]
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
            self._drop_story(story, dropped)
        if dropped:
            self._idf.set_articles(len(self._recent))
        return dropped

    def remove(self, article_ids: Iterable[str]) -> list[str]:
        """Drop the stories of these articles, whole, as `evict_expired` would have (what a
        changelog record written by an eviction says happened); the ids that left are returned."""
        dropped: list[str] = []
        for article_id in article_ids:
            record = self._records.get(article_id)
            if record is not None:
                self._drop_story(self._stories[self.story_of(record.story_id)], dropped)
        if dropped:
            self._idf.set_articles(len(self._recent))
        return dropped

    def _drop_story(self, story: _Story, dropped: list[str]) -> None:
        sid = story.story_id
        del self._stories[sid]
        for key in story.posted:
            self._unpost(key, sid)
        for alias in story.aliases:
            self._merged_into.pop(alias, None)
        for aid in story.articles:
            if self._records.pop(aid):
                dropped.append(aid)
            keys = self._recent.pop(aid, None)
            if keys is not None:
                self._idf.uncount(keys)

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
            cos = _cosine(centroid, idf, weighted_get, a_norm)
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
                    m = _cosine(unit, idf, weighted_get, a_norm)
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
                post = self._postings[key] = []
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
                old = post.pop(0)
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
        members = sorted([*into.members, *other.members], key=lambda m: self._records.arrival(m[0]))
        into.members = members[-MAX_MEMBERS:]
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

    def _apply(self, record: StoryRecord, features: dict[str, float]) -> None:
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
        if len(story.members) > MAX_MEMBERS:
            del story.members[0]
        self._records.add(record)
        self._post(story, self._bucket(record.event_time), story.centroid)
        self._clock = max(self._clock, record.arrival)
        expiry = self._story_expiry
        heapq.heappush(expiry, (story.last_arrival, story.story_id))
        if len(expiry) > 2 * len(self._stories) + 1024:
            # One entry per article pushed, most of them stale (their story updated since): keep
            # the live ones (the same stories leave in the same order).
            self._story_expiry = [(s.last_arrival, s.story_id) for s in self._stories.values()]
            heapq.heapify(self._story_expiry)
