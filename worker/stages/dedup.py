"""Stage 4: deduplication — exact copies and near-duplicates — over a bounded window.

`DedupIndex` is plain in-memory state with no Kafka in it. The worker persists one small
record per article id in a changelog-backed faust Table (`IndexRecord.to_dict`) and rebuilds
this index from those records after a restart or rebalance (`DedupIndex.load`). Everything
else here (exact-hash map, LSH buckets in a `multimap.Multimap`) is derived from the records.

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

from worker.stages.multimap import Multimap

Status = Literal["unique", "exact_duplicate", "near_duplicate"]
ROWS_PER_BAND = 3
# The defaults, written once (worker/config.py and worker/pipeline.py use these names).
DEFAULT_THRESHOLD = 0.6  # similarity = max(Jaccard, containment); docs/quality.md has the curve
DEFAULT_NUM_PERM = 126  # 42 bands x 3 rows
DEFAULT_RETENTION_S = 30 * 86400.0  # since arrival
DEFAULT_MAX_ARTICLES = 1_000_000  # the memory budget (BENCHMARKS.md: memory per indexed article)
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

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, num_perm: int = DEFAULT_NUM_PERM,
                 retention_s: float = DEFAULT_RETENTION_S, max_articles: int = DEFAULT_MAX_ARTICLES):
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
        self._buckets = Multimap()  # band key -> ref (slot << 32 | slot generation)
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
        matched: set[str] = set()
        for k in np.flatnonzero(score >= self.threshold).tolist():
            member = self._slot_ids[slots[k]]
            assert member is not None  # a live candidate's slot holds its id
            matched.add(self.cluster_of(self._verdict(member).cluster_id))
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
