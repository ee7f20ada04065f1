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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import xxhash

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


def band_keys_of_rows(signatures: np.ndarray, rows: int = ROWS_PER_BAND) -> np.ndarray:
    """`band_keys` of every row of a (n, num_perm) matrix: shape (n, bands)."""
    n, perm = signatures.shape
    bands = signatures.reshape(n, perm // rows, rows).astype(np.uint64)
    return bands @ _MIX[:rows] + _BAND_OFFSETS[: perm // rows]


def fold32(keys: np.ndarray) -> np.ndarray:
    """64-bit keys to the 32 bits the compact multimap stores (high half xor low half)."""
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    return ((keys >> np.uint64(32)) ^ keys).astype(np.uint32)


@dataclass(frozen=True, slots=True)
class Eviction:
    """What one `evict_expired` call removed, and why (the worker logs and counts it)."""

    ids: list[str]
    by_age: int  # past the retention since arrival
    by_budget: int  # the oldest arrivals beyond `max_articles`


# -- the compact per-article storage -----------------------------------------------------------

_STATUSES: tuple[Status, ...] = ("unique", "exact_duplicate", "near_duplicate")
_STATUS_CODE = {status: code for code, status in enumerate(_STATUSES)}
# Row flags
_F_STATUS = 0x03  # the verdict's status (_STATUSES)
_F_SIG = 0x04  # has a signature (and LSH entries): every article but exact duplicates
_F_EXTRA = 0x08  # the verdict names other articles or clusters: those fields are in `_extra`
_F_HASH_OWNER = 0x10  # the article the content-hash index answers with for its hash
_F_ODD_HASH = 0x20  # the content hash is not 32 lower-case hex digits: kept as text in `_odd_hashes`

ROW_BITS = 27  # rows per index: 134 M
MAX_ROWS = 1 << ROW_BITS
_ROW_MASK = np.uint32(MAX_ROWS - 1)
_GEN_SHIFT = np.uint32(ROW_BITS)
_GEN_BITS = 0x1F  # a ref carries the low 5 bits of its row's generation
# One row per indexed article: 73 bytes, plus its signature row.
ROW_DTYPE = np.dtype([("slot", "<i4"), ("arrival", "<f8"), ("event_time", "<f8"), ("similarity", "<f8"),
                      ("jaccard", "<f8"), ("containment", "<f8"), ("shingles", "<i8"), ("hash", "V16"),
                      ("flags", "u1")])
_NO_HASH = bytes(16)


def _hash_bytes(content_hash: str) -> bytes | None:
    """The 16 bytes of a 32-digit lower-case hex hash (what hashing.content_hash makes), else None."""
    if len(content_hash) != 32:
        return None
    try:
        raw = bytes.fromhex(content_hash)
    except ValueError:
        return None
    return raw if raw.hex() == content_hash else None


def _hash_key(content_hash: str, raw: bytes | None) -> int:
    """The content-hash index's 32-bit key: xxh32 of the hash (whatever its text looks like)."""
    return xxhash.xxh32_intdigest(content_hash.encode() if raw is None else raw)


class DedupIndex:
    """The dedup state: every indexed article's record, its hash and its LSH bucket entries.

    threshold     similarity (max of Jaccard and containment) at which a candidate is a copy
    num_perm      MinHash permutations (a multiple of ROWS_PER_BAND)
    retention_s   how long an article stays after it arrived (arrival time, not event time)
    max_articles  the memory budget: past it, the oldest arrivals leave first

    Storage (issue 24: ~0.9 KB per article in arrays, where Python objects took ~2 KB): one row
    per article in preallocated numpy blocks — its signature (num_perm uint32), and `ROW_DTYPE`
    (candidate order, arrival, event time, the verdict's scores, shingle count, content hash as
    16 bytes, flags) — reused after an eviction with a new generation. Candidates are compared in
    the order of their `slot`, numbered as the index before issue 24 numbered its signature slots
    (articles with a signature, an evicted one's number reused first), so that ties between
    equally similar candidates go the same way. What stays in Python: the id of each row (a list),
    and for the few articles whose verdict names another article (duplicates, merges) those names
    (`_extra`). The LSH buckets are a compact `Multimap` (32-bit folded band key -> 32-bit row
    ref, 8 bytes an entry); its candidates are verified against their own band keys, so they are
    exactly those of the 64-bit keys. Two more compact multimaps: content hash -> the row that
    first had it, and id -> row (xxh32 of the id, verified against the row's id). At 1 M articles
    the arrays take ~1.1 KB per article (BENCHMARKS.md); the Python objects they replaced took
    ~1.6 KB more.
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
        # Rows in numpy blocks (no copy of everything when it grows); a row is reused after its
        # article is evicted, with a new generation (refs to the old one stop matching).
        self._sig_blocks: list[np.ndarray] = []
        self._row_blocks: list[np.ndarray] = []
        self._generation = np.zeros(0, dtype=np.uint32)
        self._ids: list[str | None] = []  # row -> article id (None: free)
        # article id -> row: a compact multimap of the id's xxh32 (a dict took ~80 bytes an article)
        self._id_rows = Multimap(np.uint32, np.uint32)
        self._count = 0
        self._free: list[int] = []
        self._slots = 0  # slot numbers given out (see above)
        self._free_slots: list[int] = []
        # article id -> (duplicate_of, cluster_id, merged_clusters) of verdicts that are not a
        # plain unique (a plain unique is its own cluster, of nothing, with nothing merged)
        self._extra: dict[str, tuple[str | None, str, tuple[str, ...]]] = {}
        self._odd_hashes: dict[str, str] = {}  # article id -> content hash not in hex form
        self._buckets = Multimap(np.uint32, np.uint32)  # folded band key -> row ref
        self._hashes = Multimap(np.uint32, np.uint32)  # content-hash key -> row ref (`_F_HASH_OWNER`)
        # Retention order, (arrival, id): rows in insertion order while that is the order (the
        # worker's clock makes it so), a heap for any that arrive out of it.
        self._fifo = np.zeros(1024, dtype=np.int64)  # row << 32 | generation
        self._fifo_head = self._fifo_tail = 0
        self._fifo_last: tuple[float, str] | None = None
        self._late: list[tuple[float, str, int, int]] = []  # heap of (arrival, id, row, generation)
        self._head: tuple[int, tuple[float, str, int]] | None = None  # `_oldest`'s last FIFO answer
        # Cluster merges (see the module docstring): cluster -> the cluster it was merged into,
        # from the verdicts of the indexed articles that joined clusters (`_joins`).
        self._merged_into: dict[str, str] = {}
        self._joins: dict[str, tuple[str, ...]] = {}  # article id -> the clusters it joined

    def __len__(self) -> int:
        return self._count

    def __contains__(self, article_id: str) -> bool:
        return self._row(article_id) is not None

    def ids(self) -> Iterator[str]:
        """The ids of the articles held."""
        return (article_id for article_id in self._ids if article_id is not None)

    # -- the decision -------------------------------------------------------------------------

    def decide(self, article_id: str, content_hash: str, signature: np.ndarray, shingles: int,
               event_time: float, arrival: float = 0.0) -> Decision:
        known = self.get(article_id)
        if known is not None:
            return Decision(known.verdict, True, known)

        first = self._hash_owner(content_hash, _hash_bytes(content_hash))
        if first is not None:
            first_id = self._ids[first]
            assert first_id is not None
            cluster = self.cluster_of(self._cluster_id(first, first_id))
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
        rows, sigs = self._candidates(keys)
        if not len(rows):
            return Verdict("unique", None, 0.0, article_id)
        jaccard = (sigs == signature).mean(axis=1)
        other = self._rows(rows)["shingles"]
        smaller = np.minimum(other, shingles).astype(np.float64)
        # |A ∩ B| = J (|A| + |B|) / (1 + J); containment of the smaller in the larger.
        intersection = jaccard * (other + shingles) / (1.0 + jaccard)
        containment = np.where(smaller >= MIN_SHINGLES_FOR_CONTAINMENT,
                               np.minimum(1.0, intersection / np.maximum(smaller, 1)), 0.0)
        score = np.maximum(jaccard, containment)
        best = int(np.argmax(score))  # first max = earliest-inserted among equals (stable order)
        best_id = self._ids[int(rows[best])]
        assert best_id is not None
        j, c, s = float(jaccard[best]), float(containment[best]), float(score[best])
        if s < self.threshold:
            return Verdict("unique", None, s, article_id, j, c)
        matched: set[str] = set()
        for k in np.flatnonzero(score >= self.threshold).tolist():
            row = int(rows[k])
            member = self._ids[row]
            assert member is not None  # a live candidate's row holds its id
            matched.add(self.cluster_of(self._cluster_id(row, member)))
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
        article_id = record.article_id
        if self._row(article_id) is not None:
            return
        v = record.verdict
        raw = _hash_bytes(record.content_hash)
        flags = _STATUS_CODE[v.status]
        if raw is None:
            flags |= _F_ODD_HASH
            self._odd_hashes[article_id] = record.content_hash
        if v.status != "unique" or v.duplicate_of is not None or v.cluster_id != article_id or v.merged_clusters:
            flags |= _F_EXTRA
            self._extra[article_id] = (v.duplicate_of, v.cluster_id, tuple(v.merged_clusters))
        owner = v.status != "exact_duplicate" and self._hash_owner(record.content_hash, raw) is None
        row = self._allocate(article_id)
        generation = int(self._generation[row])
        ref = ((generation & _GEN_BITS) << ROW_BITS) | row
        block, r = divmod(row, self.BLOCK)
        slot = -1
        if record.signature is not None:
            flags |= _F_SIG
            if self._free_slots:
                slot = self._free_slots.pop()
            else:
                slot, self._slots = self._slots, self._slots + 1
            self._sig_blocks[block][r] = record.signature
            self._buckets.add(fold32(band_keys(record.signature) if keys is None else keys), ref, self._live_refs)
        if owner:
            flags |= _F_HASH_OWNER
            self._hashes.add_one(_hash_key(record.content_hash, raw), ref, self._live_refs)
        self._row_blocks[block][r] = (slot, record.arrival, record.event_time, v.similarity, v.jaccard,
                                      v.containment, record.shingles, raw or _NO_HASH, flags)
        if v.merged_clusters:
            joined = (v.cluster_id, *v.merged_clusters)
            self._joins[article_id] = joined
            self._join(joined)
        self._push_expiry(row, generation, record.arrival, article_id)

    def evict_expired(self, now: float) -> Eviction:
        """Drop the entries that arrived more than `retention_s` before `now`, then the oldest
        arrivals beyond `max_articles`. Delete the returned ids from the table."""
        horizon = now - self.retention_s
        evicted: list[str] = []
        by_age = 0
        while True:
            oldest = self._oldest()
            if oldest is None or not (oldest[0] < horizon or self._count > self.max_articles):
                break
            arrival, article_id, row = oldest
            self._pop_oldest()
            self._drop(row)
            evicted.append(article_id)
            by_age += arrival < horizon
        self._forget_joins(evicted)
        return Eviction(evicted, by_age, len(evicted) - by_age)

    def remove(self, article_ids: Iterable[str]) -> list[str]:
        """Drop these articles (those indexed; returned) as an eviction would have: what a
        changelog tombstone or rewrite written by an eviction says happened."""
        removed = []
        for article_id in article_ids:
            row = self._row(article_id)
            if row is not None:
                self._drop(row)
                removed.append(article_id)
        self._forget_joins(removed)
        return removed

    def _forget_joins(self, evicted: list[str]) -> None:
        if any(article_id in self._joins for article_id in evicted):
            # Merges are kept only while an article that made them is indexed: the state a
            # rebuild from the remaining records gives.
            for article_id in evicted:
                self._joins.pop(article_id, None)
            self._merged_into = {}
            for joined in self._joins.values():
                self._join(joined)

    def _drop(self, row: int) -> None:
        article_id = self._ids[row]
        assert article_id is not None
        self._count -= 1
        self._ids[row] = None
        self._head = None
        self._generation[row] += 1  # its bucket and hash entries stop matching
        block, r = divmod(row, self.BLOCK)
        meta = self._row_blocks[block][r]
        if meta["flags"] & _F_SIG:
            self._free_slots.append(int(meta["slot"]))
        meta["flags"] = 0
        self._extra.pop(article_id, None)
        self._odd_hashes.pop(article_id, None)
        self._free.append(row)

    def get(self, article_id: str) -> IndexRecord | None:
        row = self._row(article_id)
        if row is None:
            return None
        block, r = divmod(row, self.BLOCK)
        meta = self._row_blocks[block][r]
        flags = int(meta["flags"])
        signature = self._sig_blocks[block][r].copy() if flags & _F_SIG else None
        return IndexRecord(article_id, self._content_hash(article_id, meta), int(meta["shingles"]),
                           float(meta["event_time"]), self._verdict(row, article_id, meta), signature,
                           float(meta["arrival"]))

    def _verdict(self, row: int, article_id: str, meta: np.void | None = None) -> Verdict:
        """The verdict of an indexed article (kept as row fields and `_extra`, see above)."""
        if meta is None:
            block, r = divmod(row, self.BLOCK)
            meta = self._row_blocks[block][r]
        flags = int(meta["flags"])
        duplicate_of, cluster_id, merged = (self._extra[article_id] if flags & _F_EXTRA
                                            else (None, article_id, ()))
        return Verdict(_STATUSES[flags & _F_STATUS], duplicate_of, float(meta["similarity"]), cluster_id,
                       float(meta["jaccard"]), float(meta["containment"]), merged)

    def _cluster_id(self, row: int, article_id: str) -> str:
        block, r = divmod(row, self.BLOCK)
        if self._row_blocks[block][r]["flags"] & _F_EXTRA:
            return self._extra[article_id][1]
        return article_id

    def _content_hash(self, article_id: str, meta: np.void) -> str:
        if int(meta["flags"]) & _F_ODD_HASH:
            return self._odd_hashes[article_id]
        return meta["hash"].tobytes().hex()

    def _hash_owner(self, content_hash: str, raw: bytes | None) -> int | None:
        """The row the content-hash index names for this hash (the first non-exact article
        indexed with it, while it is indexed), or None."""
        refs = self._hashes.lookup_one(_hash_key(content_hash, raw))
        for ref in refs:
            row, generation = ref & int(_ROW_MASK), ref >> ROW_BITS
            if (int(self._generation[row]) & _GEN_BITS) != generation or self._ids[row] is None:
                continue
            block, r = divmod(row, self.BLOCK)
            meta = self._row_blocks[block][r]
            flags = int(meta["flags"])
            if not flags & _F_HASH_OWNER:
                continue
            if (raw is not None and not flags & _F_ODD_HASH and meta["hash"].tobytes() == raw) or \
                    (flags & _F_ODD_HASH and self._odd_hashes.get(self._ids[row] or "") == content_hash):
                return row
        return None

    def memory_bytes(self) -> int:
        """Size of the index's numpy storage (Python objects — ids, the few duplicates' verdict
        names — not included)."""
        return int(sum(b.nbytes for b in self._sig_blocks) + sum(b.nbytes for b in self._row_blocks)
                   + self._generation.nbytes + self._fifo.nbytes + self._buckets.memory_bytes()
                   + self._hashes.memory_bytes() + self._id_rows.memory_bytes())

    # -- internals -------------------------------------------------------------------------------

    BLOCK = 1 << 14  # rows per storage block

    def _allocate(self, article_id: str) -> int:
        if self._free:
            row = self._free.pop()
            self._ids[row] = article_id
        else:
            row = len(self._ids)
            if row >= MAX_ROWS:
                raise RuntimeError(f"the dedup index holds at most {MAX_ROWS:,} articles")
            self._ids.append(article_id)
            if row >= len(self._sig_blocks) * self.BLOCK:
                self._sig_blocks.append(np.zeros((self.BLOCK, self.num_perm), dtype=np.uint32))
                self._row_blocks.append(np.zeros(self.BLOCK, dtype=ROW_DTYPE))
                self._generation = np.concatenate([self._generation, np.zeros(self.BLOCK, np.uint32)])
        self._count += 1
        ref = ((int(self._generation[row]) & _GEN_BITS) << ROW_BITS) | row
        self._id_rows.add_one(xxhash.xxh32_intdigest(article_id.encode()), ref, self._live_refs)
        return row

    def _row(self, article_id: str) -> int | None:
        """The row of an indexed article, or None."""
        for ref in self._id_rows.lookup_one(xxhash.xxh32_intdigest(article_id.encode())):
            row = ref & int(_ROW_MASK)
            if self._ids[row] == article_id and (int(self._generation[row]) & _GEN_BITS) == ref >> ROW_BITS:
                return row
        return None

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        """The `ROW_DTYPE` records of these rows."""
        return self._gather(self._row_blocks, rows)

    def _signatures(self, rows: np.ndarray) -> np.ndarray:
        return self._gather(self._sig_blocks, rows)

    def _gather(self, blocks: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
        block, r = np.divmod(rows, self.BLOCK)
        if len(rows) and (block == block[0]).all():
            return blocks[int(block[0])][r]
        out = np.empty((len(rows), *blocks[0].shape[1:]), dtype=blocks[0].dtype)
        for b in np.unique(block).tolist():
            at = block == b
            out[at] = blocks[b][r[at]]
        return out

    def _live_refs(self, refs: np.ndarray) -> np.ndarray:
        rows = (refs & _ROW_MASK).astype(np.intp)
        return (self._generation[rows] & np.uint32(_GEN_BITS)) == (refs >> _GEN_SHIFT)

    def _candidates(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The indexed articles sharing an LSH bucket (a 64-bit band key) with `keys`, in slot
        order, and their signatures."""
        refs = self._buckets.lookup(fold32(keys))
        if not refs:
            return _NO_ROWS, _NO_ROWS
        refs_arr = np.unique(np.array(refs, dtype=np.uint32))
        live = refs_arr[self._live_refs(refs_arr)]
        rows = np.unique((live & _ROW_MASK).astype(np.int64))
        if not len(rows):
            return _NO_ROWS, _NO_ROWS
        meta = self._rows(rows)
        has_sig = (meta["flags"] & _F_SIG) != 0
        rows, meta = rows[has_sig], meta[has_sig]
        if not len(rows):
            return _NO_ROWS, _NO_ROWS
        sigs = self._signatures(rows)
        # The multimap keeps 32 of the 64 bits: keep the rows whose own band keys are the query's.
        one = np.uint64(1)
        shared = np.isin(np.maximum(band_keys_of_rows(sigs), one), np.maximum(keys, one)).any(axis=1)
        rows, sigs, meta = rows[shared], sigs[shared], meta[shared]
        order = np.argsort(meta["slot"], kind="stable")
        return rows[order], sigs[order]

    # -- retention order -----------------------------------------------------------------------

    def _push_expiry(self, row: int, generation: int, arrival: float, article_id: str) -> None:
        key = (arrival, article_id)
        if self._fifo_last is not None and key < self._fifo_last:
            heapq.heappush(self._late, (arrival, article_id, row, generation))
            return
        if self._fifo_tail == len(self._fifo):
            live = self._fifo[self._fifo_head:self._fifo_tail]
            if self._fifo_head >= len(self._fifo) // 2:
                self._fifo[:len(live)] = live
            else:
                self._fifo = np.concatenate([live, np.zeros(len(self._fifo), dtype=np.int64)])
            self._fifo_head, self._fifo_tail = 0, len(live)
            self._head = None
        self._fifo[self._fifo_tail] = (row << 32) | generation
        self._fifo_tail += 1
        self._fifo_last = key

    def _oldest(self) -> tuple[float, str, int] | None:
        """(arrival, id, row) of the indexed article first in retention order, or None."""
        if self._head is not None and self._head[0] == self._fifo_head and not self._late:
            return self._head[1]  # the common case: nothing moved since the last look
        fifo = None
        while self._fifo_head < self._fifo_tail:
            packed = int(self._fifo[self._fifo_head])
            row, generation = packed >> 32, packed & 0xFFFFFFFF
            article_id = self._ids[row]
            if article_id is not None and int(self._generation[row]) == generation:
                block, r = divmod(row, self.BLOCK)
                fifo = (float(self._row_blocks[block][r]["arrival"]), article_id, row)
                self._head = (self._fifo_head, fifo)
                break
            self._fifo_head += 1  # left the index another way (`remove`)
        late = self._late
        while late:
            arrival, article_id, row, generation = late[0]
            if self._ids[row] == article_id and int(self._generation[row]) == generation:
                break
            heapq.heappop(late)
        if late and (fifo is None or late[0][:2] < fifo[:2]):
            return late[0][:3]
        return fifo

    def _pop_oldest(self) -> None:
        """Take the entry `_oldest` returned out of the retention order."""
        late, head = self._late, self._fifo_head
        if late and (head >= self._fifo_tail or late[0][:2] < self._fifo_key(head)):
            heapq.heappop(late)
        else:
            self._fifo_head += 1

    def _fifo_key(self, at: int) -> tuple[float, str]:
        packed = int(self._fifo[at])
        row = packed >> 32
        block, r = divmod(row, self.BLOCK)
        return float(self._row_blocks[block][r]["arrival"]), self._ids[row] or ""

    # -- snapshots -------------------------------------------------------------------------------

    def state(self) -> dict:
        """Everything `from_state` needs to restore this index exactly: numpy arrays (not copies:
        write them before the index changes again) and plain values."""
        return {
            "params": {"threshold": self.threshold, "num_perm": self.num_perm, "retention_s": self.retention_s,
                       "max_articles": self.max_articles, "block": self.BLOCK},
            "sig_blocks": self._sig_blocks, "row_blocks": self._row_blocks, "generation": self._generation,
            "ids": self._ids, "free": self._free, "slots": self._slots, "free_slots": self._free_slots,
            "extra": {k: [d, c, list(m)] for k, (d, c, m) in self._extra.items()},
            "odd_hashes": self._odd_hashes, "buckets": self._buckets.state(), "hashes": self._hashes.state(),
            "id_rows": self._id_rows.state(),
            "fifo": self._fifo[self._fifo_head:self._fifo_tail],
            "fifo_last": None if self._fifo_last is None else list(self._fifo_last),
            "late": [list(entry) for entry in self._late],
            "merged_into": self._merged_into, "joins": {k: list(v) for k, v in self._joins.items()},
        }

    @classmethod
    def from_state(cls, state: dict, strings: dict[str, str] | None = None) -> DedupIndex:
        """The index `state()` was taken of. `strings`: a dict to make one object of equal
        strings with (shared with the caller's other indexes: article ids)."""
        p = state["params"]
        index = cls(p["threshold"], p["num_perm"], p["retention_s"], p["max_articles"])
        if p["block"] != cls.BLOCK:
            raise ValueError(f"snapshot rows are in blocks of {p['block']}, this index uses {cls.BLOCK}")
        index._sig_blocks, index._row_blocks = list(state["sig_blocks"]), list(state["row_blocks"])
        index._generation = state["generation"]
        one = ({} if strings is None else strings).setdefault
        index._ids = [None if article_id is None else one(article_id, article_id) for article_id in state["ids"]]
        index._count = sum(1 for article_id in index._ids if article_id is not None)
        index._id_rows = Multimap.from_state(state["id_rows"])
        index._free = list(state["free"])
        index._slots = int(state["slots"])
        index._free_slots = list(state["free_slots"])
        index._extra = {one(k, k): (None if d is None else one(d, d), one(c, c), tuple(one(x, x) for x in m))
                        for k, (d, c, m) in state["extra"].items()}
        index._odd_hashes = {one(k, k): h for k, h in state["odd_hashes"].items()}
        index._buckets = Multimap.from_state(state["buckets"])
        index._hashes = Multimap.from_state(state["hashes"])
        fifo = state["fifo"]
        index._fifo = np.concatenate([fifo, np.zeros(max(1024, len(fifo)), dtype=np.int64)])
        index._fifo_head, index._fifo_tail = 0, len(fifo)
        index._fifo_last = None if state["fifo_last"] is None else (float(state["fifo_last"][0]),
                                                                    str(state["fifo_last"][1]))
        index._late = [(float(a), str(i), int(r), int(g)) for a, i, r, g in state["late"]]
        heapq.heapify(index._late)
        index._merged_into = dict(state["merged_into"])
        index._joins = {k: tuple(v) for k, v in state["joins"].items()}
        return index


_NO_ROWS = np.zeros(0, dtype=np.int64)
