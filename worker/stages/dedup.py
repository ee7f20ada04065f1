"""Stage 4: deduplication — exact copies and near-duplicates — over a bounded window.

`DedupIndex` is plain in-memory state with no Kafka in it. The worker persists one small
record per article id in a changelog-backed faust Table (`IndexRecord.to_bytes`) and rebuilds
this index from those records after a restart or rebalance (`DedupIndex.load`). Everything
else here (exact-hash map, LSH buckets) is derived from the records.

Decisions, in order:
1. The article id is already indexed → a *redelivery*: answer with the stored verdict, so a
   compacted `articles.enriched` never sees a verdict flip and nothing is counted twice.
2. The normalised-content hash is known → `exact_duplicate` of the first id with that text.
3. MinHash LSH candidates, each verified against its stored signature: the best one with
   similarity = max(Jaccard, containment) ≥ threshold → `near_duplicate`. Containment makes a
   truncated reprint (first half of the original) a duplicate even though its Jaccard is ~0.5.
4. Otherwise `unique`; it starts its own cluster.

Duplicate groups do not depend on arrival order. Every indexed article whose similarity reaches
the threshold is a match, not only the best one (`duplicate_of`): near-duplication is not
transitive (the first and the second half of one original are both copies of it, not of each
other), so when the original arrives last it joins the two clusters its halves started. The
verdict names the clusters it joined (`merged_clusters`), the index keeps the union (a cluster
is named by the smallest id of the clusters joined, whatever order they were joined in), and a
consumer that applies the merges gets the same groups for any order of the same articles, as
long as both articles of each matching pair are in the index when the later one arrives.

LSH banding: 42 bands × 3 rows (126 permutations). The probability that a pair of Jaccard s
shares a bucket is 1 - (1 - s³)⁴²: 0.996 at s = 0.5, 0.90 at 0.35, and 5e-6 at s = 0.005
(unrelated articles), so candidates stay few while recall at and well below the default
threshold is near 1 (datasketch's equal-weight optimum for 0.6 catches far fewer pairs there).

Retention is by *arrival*, never by event time: an entry leaves `retention_s` after it was
indexed (the index's own clock, which input cannot move), or earlier when the index holds more
than `max_articles` (the oldest arrivals go first). A far-future `published_at` therefore
cannot empty the index, and an archive replayed in any order keeps all of it for the retention
period. `evict_expired` returns the ids that left; the caller deletes their table keys, which
writes tombstones to the changelog.
"""

from __future__ import annotations

import base64
import heapq
from dataclasses import dataclass
from typing import Literal

import numpy as np
import orjson
import xxhash

Status = Literal["unique", "exact_duplicate", "near_duplicate"]
ROWS_PER_BAND = 3
MIN_SHINGLES_FOR_CONTAINMENT = 20  # containment of a 3-shingle text says nothing


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    duplicate_of: str | None
    similarity: float  # 1.0 exact; estimated max(Jaccard, containment) for near; best seen for unique
    cluster_id: str
    jaccard: float = 0.0
    containment: float = 0.0
    merged_clusters: tuple[str, ...] = ()  # other clusters this article also matched: now one

    def to_dict(self) -> dict:
        return {"status": self.status, "duplicate_of": self.duplicate_of,
                "similarity": round(self.similarity, 4), "cluster_id": self.cluster_id,
                "jaccard": round(self.jaccard, 4), "containment": round(self.containment, 4),
                "merged_clusters": list(self.merged_clusters)}

    @classmethod
    def from_dict(cls, d: dict) -> Verdict:
        return cls(d["status"], d["duplicate_of"], d["similarity"], d["cluster_id"],
                   d.get("jaccard", 0.0), d.get("containment", 0.0), tuple(d.get("merged_clusters", ())))


@dataclass(frozen=True, slots=True)
class IndexRecord:
    """What is persisted per article id (the faust Table value): small, no text."""

    article_id: str
    content_hash: str
    shingles: int
    event_time: float  # epoch seconds (kept for downstream and diagnostics; retention ignores it)
    verdict: Verdict
    signature: np.ndarray | None  # None for exact duplicates: their original's stands for them
    arrival: float = 0.0  # epoch seconds when the index took it: what retention is measured by

    def to_dict(self) -> dict:
        d = {"id": self.article_id, "h": self.content_hash, "n": self.shingles,
             "t": self.event_time, "a": self.arrival, "v": self.verdict.to_dict()}
        if self.signature is not None:
            d["s"] = base64.b64encode(self.signature.astype("<u4").tobytes()).decode()
        return d

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_bytes(cls, raw: bytes) -> IndexRecord:
        return cls.from_dict(orjson.loads(raw))

    @classmethod
    def from_dict(cls, d: dict, default_arrival: float = 0.0) -> IndexRecord:
        """`default_arrival` stands for the arrival of a record written before arrivals were
        stored (the load time: such a record stays a whole retention period after an upgrade)."""
        sig = np.frombuffer(base64.b64decode(d["s"]), dtype="<u4").astype(np.uint32) if "s" in d else None
        return cls(d["id"], d["h"], d["n"], d["t"], Verdict.from_dict(d["v"]), sig,
                   float(d.get("a", default_arrival)))


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    redelivery: bool
    record: IndexRecord


class BandBuckets:
    """LSH buckets of every band: a hash multimap in numpy arrays that grows without pausing.

    An entry is (band key: uint64, ref: uint64 = slot << 32 | slot generation); equal keys (a
    bucket shared by several articles) are separate entries. Inserts wait in a dict and go into
    the table in bulk (vectorised); lookups probe all 42 keys of an article at once.

    Table layout (`_Table`): buckets of 16 cells; a key may sit in either of two buckets (one
    from each half of its bits), and is put in the less full one, so buckets fill evenly and a
    lookup reads just those two buckets even at 80 % load: the same cost at 10 k or 1 M articles,
    16 bytes per entry at 50–80 % load (0.8–1.3 KB per article).

    Growth happens in steps, so that no single call blocks the worker's event loop (re-inserting
    a 1 M-article table in one go took 15 s): past `PREPARE_LOAD`, the next, bigger table is
    allocated and its memory written a slice per flush (first touching a GB of fresh memory costs
    0.05–1.5 s); once it is ready, entries move into it a chunk of old buckets per flush, fast
    enough to finish before it fills up (`MIGRATE_FACTOR`); meanwhile lookups read both tables.
    Only live entries move: entries of evicted articles (which already stop matching: their slot's
    generation moved on) are dropped then, and a table full of dead entries is cleaned rather than
    grown. Key 0 marks an empty cell (a real key of 0 is stored as 1: one more candidate, at worst).
    """

    WIDTH = 16  # cells per bucket: 16 keys = 2 cache lines
    INITIAL_BUCKETS = 1 << 12  # 65,536 cells, 1 MB
    PREPARE_LOAD = 0.7  # past this share of cells in use, prepare the next table...
    MAX_LOAD = 0.8  # ...so that it is ready when this share is in use; then move into it
    GROW_TO = 0.5  # share of the next table in use once everything has moved
    MIGRATE_FACTOR = 8  # old cells moved per entry flushed, while moving
    PENDING_LIMIT = 1 << 14  # entries kept in a dict until one bulk insert (~400 articles)

    def __init__(self) -> None:
        self._table = _Table(self.INITIAL_BUCKETS, self.WIDTH)
        self._next: _Table | None = None  # being prepared: `_touched` of its cells written so far
        self._touched = 0
        self._touch_step = 0
        self._old: _Table | None = None  # being moved into `_table`
        self._moved = 0  # buckets of `_old` already moved (lookups skip them)
        self._rng = np.random.default_rng(0)  # to sample the share of live entries
        self._pending: dict[int, int | list[int]] = {}  # key -> ref(s)
        self._pending_keys = np.zeros(self.PENDING_LIMIT, dtype=np.uint64)
        self._pending_refs = np.zeros(self.PENDING_LIMIT, dtype=np.uint64)
        self._pending_entries = 0

    def add(self, keys: np.ndarray, ref: int, is_live) -> None:
        n, k = self._pending_entries, len(keys)
        if n + k > self.PENDING_LIMIT:
            self._flush(is_live)
            n = 0
        keys = np.maximum(keys, np.uint64(1))
        self._pending_keys[n:n + k] = keys
        self._pending_refs[n:n + k] = ref
        self._pending_entries = n + k
        pending = self._pending
        for key in keys.tolist():
            # One ref per key; a list only for a key shared within the batch (ints, unlike lists,
            # are not tracked by Python's garbage collector: thousands of lists made it run often).
            had = pending.setdefault(key, ref)
            if had is not ref:
                pending[key] = [*had, ref] if type(had) is list else [had, ref]

    def lookup(self, keys: np.ndarray) -> list[int]:
        found: list[int] = []
        pending = self._pending
        for key in keys.tolist():
            hit = pending.get(key or 1)
            if hit is not None:
                if type(hit) is list:
                    found.extend(hit)
                else:
                    found.append(hit)
        keys = np.maximum(keys, np.uint64(1))
        refs = self._table.lookup(keys)
        if self._old is not None:
            refs += self._old.lookup(keys, skip_below=self._moved)
        return found + (np.concatenate(refs).tolist() if refs else [])

    def entries(self) -> int:
        """Entries held, live or not (while moving, the moved ones count twice)."""
        old = 0 if self._old is None else self._old.used
        return self._table.used + old + self._pending_entries

    def memory_bytes(self) -> int:
        tables = [t for t in (self._table, self._old) if t is not None]
        preparing = 0 if self._next is None else self._touched * 16  # the part written so far
        return (sum(t.nbytes() for t in tables) + preparing + self._pending_keys.nbytes
                + self._pending_refs.nbytes + self._pending_entries * 40)

    def _flush(self, is_live) -> None:
        n = self._pending_entries
        keys, refs = self._pending_keys[:n], self._pending_refs[:n]
        live = is_live(refs)
        keys, refs = keys[live], refs[live]  # copies: the buffers are reused
        self._pending.clear()
        self._pending_entries = 0
        growing = self._next is not None or self._old is not None
        if not growing and self._table.used + len(keys) > self.PREPARE_LOAD * self._table.cells:
            self._allocate_next(is_live, len(keys))
        if self._next is not None:
            end = min(self._next.cells, self._touched + self._touch_step)
            self._next.touch(self._touched, end)
            self._touched = end
            if end == self._next.cells:  # ready: move into it
                self._old, self._table, self._next, self._moved = self._table, self._next, None, 0
        if self._old is not None:
            moved_keys, moved_refs = self._move_chunk(is_live, len(keys))
            keys, refs = np.concatenate([keys, moved_keys]), np.concatenate([refs, moved_refs])
        self._table.insert(keys, refs)

    def _allocate_next(self, is_live, inserting: int) -> None:
        """The next table, sized by the live entries (estimated from a sample) and what will
        arrive until everything has moved into it."""
        table = self._table
        rows = self._rng.integers(0, table.buckets, size=256)
        sample = table.refs[rows][table.keys[rows] != 0]
        live_share = float(is_live(sample).mean()) if len(sample) else 1.0
        ready_in = (self.MAX_LOAD - self.PREPARE_LOAD) * table.cells  # entries until it is ready
        live = table.used * min(1.0, live_share + 0.05) + ready_in + inserting  # (+ sample error)
        cells = max(live / self.GROW_TO, (live + table.cells / self.MIGRATE_FACTOR) / self.MAX_LOAD,
                    self.INITIAL_BUCKETS * self.WIDTH)
        self._next = _Table(int(cells) // self.WIDTH + 1, self.WIDTH)
        self._touched = 0
        self._touch_step = -(-self._next.cells * self.PENDING_LIMIT // max(int(ready_in), 1))

    def _move_chunk(self, is_live, inserting: int) -> tuple[np.ndarray, np.ndarray]:
        """The live entries of the next chunk of old buckets; all that is left if the new table
        would otherwise pass `MAX_LOAD` (only if the share of live entries was underestimated)."""
        old, table = self._old, self._table
        hi = min(old.buckets, self._moved + self.MIGRATE_FACTOR * self.PENDING_LIMIT // self.WIDTH)
        keys, refs = old.entries(self._moved, hi, is_live)
        if hi < old.buckets and table.used + inserting + len(keys) > self.MAX_LOAD * table.cells:
            rest_keys, rest_refs = old.entries(hi, old.buckets, is_live)
            keys, refs, hi = np.concatenate([keys, rest_keys]), np.concatenate([refs, rest_refs]), old.buckets
        self._moved = hi
        if hi == old.buckets:
            self._old = None
        return keys, refs


_32 = np.uint64(32)


class _Table:
    """One table of `buckets` × `width` cells (see `BandBuckets`). Each key has two buckets, from
    the two halves of its bits; it is put in the less full one (so buckets fill evenly), and only
    when both are full in the first bucket after its first one that has a free cell."""

    def __init__(self, buckets: int, width: int) -> None:
        self.buckets, self.width, self.cells = buckets, width, buckets * width
        self.keys = np.zeros((buckets, width), dtype=np.uint64)
        self.refs = np.zeros((buckets, width), dtype=np.uint64)
        self.fill = np.zeros(buckets, dtype=np.uint8)  # cells in use, from the left
        self.used = 0

    def nbytes(self) -> int:
        return self.keys.nbytes + self.refs.nbytes + self.fill.nbytes

    def touch(self, lo: int, hi: int) -> None:
        """Write (zeros) to cells lo:hi, so the OS maps their memory now, not on first insert."""
        self.keys.reshape(-1)[lo:hi] = 0
        self.refs.reshape(-1)[lo:hi] = 0
        self.fill[lo // self.width:-(-hi // self.width)] = 0

    def homes(self, keys: np.ndarray) -> np.ndarray:
        """The two buckets of each key, shape (n, 2): each 32-bit half of the key scaled to
        [0, buckets) (a multiply and a shift: any table size, no modulo)."""
        halves = np.ascontiguousarray(keys).view(np.uint32).reshape(-1, 2).astype(np.uint64)
        return (halves * np.uint64(self.buckets) >> _32).astype(np.intp)

    def lookup(self, keys: np.ndarray, skip_below: int = 0) -> list[np.ndarray]:
        """Refs of every entry with one of these keys (none from buckets below `skip_below`);
        a ref may come twice (a key whose two buckets are the same one)."""
        bucket = self.homes(keys)
        rows = self.keys[bucket]  # (n, 2, width): both buckets of every key, in one gather
        hit = rows == keys[:, None, None]
        if skip_below:
            hit &= (bucket >= skip_below)[:, :, None]
        at = np.flatnonzero(hit)
        found = [self.refs[bucket].reshape(-1)[at]] if len(at) else []
        more = np.logical_and(rows[:, 0, -1], rows[:, 1, -1])  # both full: it may be further on
        if more.any():
            keys, bucket = keys[more], self._next_bucket(bucket[more, 0])
            while len(keys):
                rows = self.keys[bucket]
                hit = rows == keys[:, None]
                if skip_below:
                    hit &= (bucket >= skip_below)[:, None]
                at = np.flatnonzero(hit)
                if len(at):
                    found.append(self.refs[bucket].reshape(-1)[at])
                more = rows[:, -1] != 0  # a probe path ends at a bucket with a free cell
                keys, bucket = keys[more], self._next_bucket(bucket[more])
        return found

    def entries(self, lo: int, hi: int, is_live) -> tuple[np.ndarray, np.ndarray]:
        """Keys and refs of the live entries in buckets lo:hi."""
        keys, refs = self.keys[lo:hi].reshape(-1), self.refs[lo:hi].reshape(-1)
        used = keys != 0
        keys, refs = keys[used], refs[used]
        live = is_live(refs)
        return keys[live], refs[live]

    def insert(self, keys: np.ndarray, refs: np.ndarray) -> None:
        """Bulk insert, in rounds: each key picks the less full of its two buckets; the keys
        picking one bucket take its next free cells, in turn; those left over try again."""
        if self.used + len(keys) > self.cells:
            raise RuntimeError("LSH table overfull")  # the sizing in BandBuckets prevents this
        home = self.homes(keys)
        first, second = home[:, 0], home[:, 1]
        spill_keys, spill_refs, spill_at = [], [], []
        while len(keys):
            fill1, fill2 = self.fill[first], self.fill[second]
            both_full = (fill1 == self.width) & (fill2 == self.width)
            if both_full.any():
                spill_keys.append(keys[both_full])
                spill_refs.append(refs[both_full])
                spill_at.append(self._next_bucket(first[both_full]))
                keep = ~both_full
                keys, refs, first, second = keys[keep], refs[keep], first[keep], second[keep]
                fill1, fill2 = fill1[keep], fill2[keep]
            left = ~self._place(keys, refs, np.where(fill1 <= fill2, first, second))
            keys, refs, first, second = keys[left], refs[left], first[left], second[left]
        if spill_keys:  # linear probing from the first bucket on
            keys, refs = np.concatenate(spill_keys), np.concatenate(spill_refs)
            bucket = np.concatenate(spill_at)
            while len(keys):
                left = ~self._place(keys, refs, bucket)
                keys, refs, bucket = keys[left], refs[left], self._next_bucket(bucket[left])

    def _place(self, keys: np.ndarray, refs: np.ndarray, bucket: np.ndarray) -> np.ndarray:
        """Put each key in the next free cell of its bucket, if any; which ones found a cell."""
        order = np.argsort(bucket)
        b = bucket[order]
        starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])  # runs of keys for one bucket
        rank = np.arange(len(b)) - np.repeat(starts, np.diff(np.r_[starts, len(b)]))
        cell = self.fill[b] + rank
        fits = cell < self.width
        b, cell, order = b[fits], cell[fits], order[fits]
        flat = b * self.width + cell
        self.keys.reshape(-1)[flat] = keys[order]
        self.refs.reshape(-1)[flat] = refs[order]
        self.fill[b] = cell + 1  # in run order, so the highest cell of a bucket is written last
        self.used += len(b)
        placed = np.zeros(len(keys), dtype=bool)
        placed[order] = True
        return placed

    def _next_bucket(self, bucket: np.ndarray) -> np.ndarray:
        bucket = bucket + 1
        bucket[bucket == self.buckets] = 0
        return bucket


# Odd 64-bit multipliers for the band-key mix (splitmix64 / murmur3 / golden-ratio constants).
_MIX = np.array([0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xD6E8FEB86659FD93], dtype=np.uint64)
_BAND_OFFSETS = np.arange(1, 257, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # band number, mixed


def band_keys(signature: np.ndarray, rows: int = ROWS_PER_BAND) -> np.ndarray:
    """One 64-bit key per band: a multiply-add of the band's rows and its number (vectorised;
    a rare collision only adds a candidate, and every candidate is verified)."""
    bands = signature.reshape(-1, rows).astype(np.uint64)
    # uint64 array arithmetic wraps silently (no overflow warning for arrays), as wanted here.
    return bands @ _MIX[:rows] + _BAND_OFFSETS[: len(bands)]


@dataclass(frozen=True, slots=True)
class Eviction:
    """What one `evict_expired` call removed, and why (the worker logs and counts it)."""

    ids: list[str]
    by_age: int  # past the retention since arrival
    by_budget: int  # the oldest arrivals beyond `max_articles`


class DedupIndex:
    """The dedup state: every indexed article's record, its hash and its LSH bucket entries.

    threshold     similarity (max of Jaccard and containment) at which a candidate is a copy
    num_perm      MinHash permutations (a multiple of ROWS_PER_BAND)
    retention_s   how long an article stays after it arrived (arrival time, not event time)
    max_articles  the memory budget: past it, the oldest arrivals leave first
    """

    def __init__(self, threshold: float = 0.6, num_perm: int = 126, retention_s: float = 30 * 86400,
                 max_articles: int = 1_000_000):
        if num_perm % ROWS_PER_BAND:
            raise ValueError(f"num_perm must be a multiple of {ROWS_PER_BAND}")
        if max_articles < 1:
            raise ValueError("max_articles must be at least 1")
        self.threshold = threshold
        self.num_perm = num_perm
        self.bands = num_perm // ROWS_PER_BAND
        self.retention_s = retention_s
        self.max_articles = max_articles
        # Per-slot storage in numpy blocks (no copy of everything when it grows); a slot is
        # reused after its article is evicted, with a new generation.
        self._sig_blocks: list[np.ndarray] = []
        self._shingle_blocks: list[np.ndarray] = []
        self._generation = np.zeros(0, dtype=np.uint32)
        self._slot_ids: list[str | None] = []
        self._free: list[int] = []
        # id -> (slot or -1, content hash, shingles, event time, arrival, *verdict fields): no
        # signature copy here, and one flat tuple of str/int/float/None, which Python's garbage
        # collector stops tracking at its first pass (with a Verdict object in each, it kept
        # going through them all: pauses of 0.4 s at 1 M articles).
        self._records: dict[str, tuple] = {}
        self._by_hash: dict[str, str] = {}  # content hash -> first article id with it
        self._buckets = BandBuckets()
        self._expiry: list[tuple[float, str]] = []  # heap of (arrival, id)
        # Cluster merges (see the module docstring): cluster -> the cluster it was merged into,
        # from the verdicts of the indexed articles that joined clusters (`_joins`).
        self._merged_into: dict[str, str] = {}
        self._joins: dict[str, tuple[str, ...]] = {}  # article id -> the clusters it joined

    def __len__(self) -> int:
        return len(self._records)

    # -- the decision -------------------------------------------------------------------------

    def decide(self, article_id: str, content_hash: str, signature: np.ndarray, shingles: int,
               event_time: float, arrival: float = 0.0) -> Decision:
        known = self.get(article_id)
        if known is not None:
            return Decision(known.verdict, True, known)

        first_id = self._by_hash.get(content_hash)
        if first_id is not None:
            cluster = self.cluster_of(self._verdict(first_id).cluster_id)
            verdict = Verdict("exact_duplicate", first_id, 1.0, cluster, 1.0, 1.0)
            record = IndexRecord(article_id, content_hash, shingles, event_time, verdict, None, arrival)
            self.load(record)
        else:
            keys = band_keys(signature)
            verdict = self._near_duplicate_verdict(article_id, signature, keys, shingles)
            record = IndexRecord(article_id, content_hash, shingles, event_time, verdict, signature, arrival)
            self.load(record, keys)
        return Decision(verdict, False, record)

    def _near_duplicate_verdict(self, article_id: str, signature: np.ndarray, keys: np.ndarray,
                                shingles: int) -> Verdict:
        slots = self._candidates(keys)
        if not slots:
            return Verdict("unique", None, 0.0, article_id)
        slots_arr = np.array(slots, dtype=np.int64)  # sorted: slot order ~ insertion order
        jaccard = (self._signatures(slots_arr) == signature).mean(axis=1)
        other = self._shingle_counts(slots_arr)
        smaller = np.minimum(other, shingles).astype(np.float64)
        # |A ∩ B| = J (|A| + |B|) / (1 + J); containment of the smaller in the larger.
        intersection = jaccard * (other + shingles) / (1.0 + jaccard)
        containment = np.where(smaller >= MIN_SHINGLES_FOR_CONTAINMENT,
                               np.minimum(1.0, intersection / np.maximum(smaller, 1)), 0.0)
        score = np.maximum(jaccard, containment)
        best = int(np.argmax(score))  # first max = earliest-inserted among equals (stable order)
        best_id = self._slot_ids[slots[best]]
        assert best_id is not None
        j, c, s = float(jaccard[best]), float(containment[best]), float(score[best])
        if s < self.threshold:
            return Verdict("unique", None, s, article_id, j, c)
        matched = {self.cluster_of(self._verdict(self._slot_ids[slots[k]]).cluster_id)
                   for k in np.flatnonzero(score >= self.threshold).tolist()}
        cluster = min(matched)
        return Verdict("near_duplicate", best_id, s, cluster, j, c, tuple(sorted(matched - {cluster})))

    # -- clusters ------------------------------------------------------------------------------

    def cluster_of(self, cluster_id: str) -> str:
        """The cluster `cluster_id` is part of now (itself, unless it was merged)."""
        merged_into = self._merged_into
        root = cluster_id
        while root in merged_into:
            root = merged_into[root]
        while cluster_id != root:  # path compression
            parent = merged_into[cluster_id]
            merged_into[cluster_id] = root
            cluster_id = parent
        return root

    def _join(self, clusters: tuple[str, ...]) -> None:
        roots = {self.cluster_of(c) for c in clusters}
        keep = min(roots)  # the same name whatever order the merges come in
        for root in roots - {keep}:
            self._merged_into[root] = keep

    # -- index maintenance -------------------------------------------------------------------

    def load(self, record: IndexRecord, keys: np.ndarray | None = None) -> None:
        """Insert a record (a new decision, or one read back from the changelog)."""
        if record.article_id in self._records:
            return
        slot = -1
        if record.signature is not None:
            slot = self._allocate(record.article_id, record.signature, record.shingles)
            ref = (slot << 32) | int(self._generation[slot])
            self._buckets.add(band_keys(record.signature) if keys is None else keys, ref, self._live_refs)
        if record.verdict.status != "exact_duplicate":
            self._by_hash.setdefault(record.content_hash, record.article_id)
        v = record.verdict
        if v.merged_clusters:
            joined = (v.cluster_id, *v.merged_clusters)
            self._joins[record.article_id] = joined
            self._join(joined)
        self._records[record.article_id] = (slot, record.content_hash, record.shingles, record.event_time,
                                            record.arrival, v.status, v.duplicate_of, v.similarity,
                                            v.cluster_id, v.jaccard, v.containment, v.merged_clusters)
        heapq.heappush(self._expiry, (record.arrival, record.article_id))

    def evict_expired(self, now: float) -> Eviction:
        """Drop the entries that arrived more than `retention_s` before `now`, then the oldest
        arrivals beyond `max_articles`. Delete the returned ids from the table."""
        horizon = now - self.retention_s
        evicted: list[str] = []
        by_age = 0
        expiry = self._expiry
        while expiry and (expiry[0][0] < horizon or len(self._records) > self.max_articles):
            arrival, article_id = heapq.heappop(expiry)
            if self._drop(article_id):
                evicted.append(article_id)
                by_age += arrival < horizon
        if any(article_id in self._joins for article_id in evicted):
            # Merges are kept only while an article that made them is indexed: the state a
            # rebuild from the remaining records gives.
            for article_id in evicted:
                self._joins.pop(article_id, None)
            self._merged_into = {}
            for joined in self._joins.values():
                self._join(joined)
        return Eviction(evicted, by_age, len(evicted) - by_age)

    def _drop(self, article_id: str) -> bool:
        entry = self._records.pop(article_id, None)
        if entry is None:
            return False
        slot, content_hash = entry[0], entry[1]
        if slot >= 0:
            self._generation[slot] += 1  # its bucket entries stop matching
            self._slot_ids[slot] = None
            self._free.append(slot)
        if self._by_hash.get(content_hash) == article_id:
            del self._by_hash[content_hash]
        return True

    def get(self, article_id: str) -> IndexRecord | None:
        entry = self._records.get(article_id)
        if entry is None:
            return None
        slot, content_hash, shingles, event_time, arrival = entry[:5]
        signature = self._signatures(np.array([slot]))[0].copy() if slot >= 0 else None
        return IndexRecord(article_id, content_hash, shingles, event_time, Verdict(*entry[5:]), signature,
                           arrival)

    def _verdict(self, article_id: str) -> Verdict:
        """The verdict of an indexed article (kept as flat fields in `_records`, see __init__)."""
        return Verdict(*self._records[article_id][5:])

    def memory_bytes(self) -> int:
        """Size of the index's numpy storage (Python objects — ids, verdicts — not included)."""
        return int(sum(b.nbytes for b in self._sig_blocks) + sum(b.nbytes for b in self._shingle_blocks)
                   + self._generation.nbytes + self._buckets.memory_bytes())

    # -- internals -------------------------------------------------------------------------------

    BLOCK = 1 << 14  # slots per storage block

    def _allocate(self, article_id: str, signature: np.ndarray, shingles: int) -> int:
        if self._free:
            slot = self._free.pop()
            self._slot_ids[slot] = article_id
        else:
            slot = len(self._slot_ids)
            self._slot_ids.append(article_id)
            if slot >= len(self._sig_blocks) * self.BLOCK:
                self._sig_blocks.append(np.zeros((self.BLOCK, self.num_perm), dtype=np.uint32))
                self._shingle_blocks.append(np.zeros(self.BLOCK, dtype=np.int64))
                self._generation = np.concatenate([self._generation, np.zeros(self.BLOCK, np.uint32)])
        block, row = divmod(slot, self.BLOCK)
        self._sig_blocks[block][row] = signature
        self._shingle_blocks[block][row] = shingles
        return slot

    def _signatures(self, slots: np.ndarray) -> np.ndarray:
        blocks, rows = np.divmod(slots, self.BLOCK)
        return np.stack([self._sig_blocks[b][r] for b, r in zip(blocks.tolist(), rows.tolist(), strict=True)])

    def _shingle_counts(self, slots: np.ndarray) -> np.ndarray:
        blocks, rows = np.divmod(slots, self.BLOCK)
        return np.array([self._shingle_blocks[b][r] for b, r in zip(blocks.tolist(), rows.tolist(), strict=True)],
                        dtype=np.int64)

    def _live_refs(self, refs: np.ndarray) -> np.ndarray:
        slots = (refs >> np.uint64(32)).astype(np.int64)
        generations = (refs & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        return self._generation[slots] == generations

    def _candidates(self, keys: np.ndarray) -> list[int]:
        refs = self._buckets.lookup(keys)
        if not refs:
            return []
        refs_arr = np.unique(np.array(refs, dtype=np.uint64))
        live = refs_arr[self._live_refs(refs_arr)]
        return sorted(set((live >> np.uint64(32)).astype(np.int64).tolist()))
