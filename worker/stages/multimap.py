"""A numpy multimap of uint64 (or uint32) keys to uint64 (or uint32) refs, for bulk inserts and
batched lookups, that grows in steps small enough for an event loop. The dedup index keeps its
LSH bucket entries and its content-hash index in it; it knows nothing of LSH or articles."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# The owner's test of which refs are still live: a bool mask, one per ref.
IsLive = Callable[[np.ndarray], np.ndarray]


class Multimap:
    """A multimap of uint64 keys to uint64 refs in numpy arrays that grows without pausing.

    `Multimap(np.uint32, np.uint32)` is the compact form: 8 bytes an entry instead of 16. Its
    keys are whatever 32 bits the owner folds its keys to, so a lookup may also return refs of
    other keys with the same 32 bits: the owner verifies what it gets (the dedup index checks
    every candidate's band keys against the article's, so its answers are those of 64-bit keys).

    Equal keys (a bucket shared by several articles) are separate entries. Inserts wait in a dict
    and go into the table in bulk (vectorised); a lookup probes many keys at once. Refs can go
    stale: every call that moves entries takes the owner's `is_live(refs) -> bool mask`, and
    entries it rejects are dropped on the way (the dedup index's refs are slot << 32 | slot
    generation; an evicted article's slot moves to a new generation).

    Table layout (`_Table`): buckets of 16 cells; a key may sit in either of two buckets (one
    from each half of its bits), and is put in the less full one, so buckets fill evenly and a
    lookup reads just those two buckets even at 80 % load: the same cost at 10 k or 1 M articles,
    16 bytes per entry at 50–80 % load (0.8–1.3 KB per article of 42 LSH bands; 8 bytes and
    0.4–0.7 KB in the compact form).

    Growth happens in steps, so that no single call blocks the worker's event loop (re-inserting
    a 1 M-article table in one go took 15 s): past `PREPARE_LOAD`, the next, bigger table is
    allocated and its memory written a slice per flush (first touching a GB of fresh memory costs
    0.05–1.5 s); once it is ready, entries move into it a chunk of old buckets per flush, fast
    enough to finish before it fills up (`MIGRATE_FACTOR`); meanwhile lookups read both tables.
    Only live entries move, and a table full of dead entries is cleaned rather than grown. Key 0
    marks an empty cell (a real key of 0 is stored as 1: one more candidate, at worst).
    """

    WIDTH = 16  # cells per bucket: 16 keys = 2 cache lines
    INITIAL_BUCKETS = 1 << 12  # 65,536 cells, 1 MB
    PREPARE_LOAD = 0.7  # past this share of cells in use, prepare the next table...
    MAX_LOAD = 0.8  # ...so that it is ready when this share is in use; then move into it
    GROW_TO = 0.5  # share of the next table in use once everything has moved
    MIGRATE_FACTOR = 8  # old cells moved per entry flushed, while moving
    PENDING_LIMIT = 1 << 14  # entries kept in a dict until one bulk insert (~400 articles)

    def __init__(self, key_dtype: type = np.uint64, ref_dtype: type = np.uint64) -> None:
        self._key_dtype, self._ref_dtype = np.dtype(key_dtype), np.dtype(ref_dtype)
        self._one = self._key_dtype.type(1)
        self._table = self._new_table(self.INITIAL_BUCKETS)
        self._next: _Table | None = None  # being prepared: `_touched` of its cells written so far
        self._touched = 0
        self._touch_step = 0
        self._old: _Table | None = None  # being moved into `_table`
        self._moved = 0  # buckets of `_old` already moved (lookups skip them)
        self._rng = np.random.default_rng(0)  # to sample the share of live entries
        self._pending: dict[int, int | list[int]] = {}  # key -> ref(s)
        self._pending_keys = np.zeros(self.PENDING_LIMIT, dtype=self._key_dtype)
        self._pending_refs = np.zeros(self.PENDING_LIMIT, dtype=self._ref_dtype)
        self._pending_entries = 0

    def _new_table(self, buckets: int) -> _Table:
        return _Table(buckets, self.WIDTH, self._key_dtype, self._ref_dtype)

    def add(self, keys: np.ndarray, ref: int, is_live: IsLive) -> None:
        n, k = self._pending_entries, len(keys)
        if n + k > self.PENDING_LIMIT:
            self._flush(is_live)
            n = 0
        keys = np.maximum(keys, self._one)
        self._pending_keys[n:n + k] = keys
        self._pending_refs[n:n + k] = ref
        self._pending_entries = n + k
        pending = self._pending
        for key in keys.tolist():
            # One ref per key; a list only for a key shared within the batch (ints, unlike lists,
            # are not tracked by Python's garbage collector: thousands of lists made it run often).
            had = pending.setdefault(key, ref)
            if had is not ref:
                pending[key] = [*had, ref] if isinstance(had, list) else [had, ref]

    def add_one(self, key: int, ref: int, is_live: IsLive) -> None:
        """`add` of one key (a Python int), without numpy's per-call overhead."""
        n = self._pending_entries
        if n + 1 > self.PENDING_LIMIT:
            self._flush(is_live)
            n = 0
        key = key or 1
        self._pending_keys[n] = key
        self._pending_refs[n] = ref
        self._pending_entries = n + 1
        had = self._pending.setdefault(key, ref)
        if had is not ref:
            self._pending[key] = [*had, ref] if isinstance(had, list) else [had, ref]

    def lookup(self, keys: np.ndarray) -> list[int]:
        found: list[int] = []
        pending = self._pending
        for key in keys.tolist():
            hit = pending.get(key or 1)
            if hit is not None:
                if isinstance(hit, list):
                    found.extend(hit)
                else:
                    found.append(hit)
        keys = np.maximum(keys, self._one)
        refs = self._table.lookup(keys)
        if self._old is not None:
            refs += self._old.lookup(keys, skip_below=self._moved)
        return found + (np.concatenate(refs).tolist() if refs else [])

    def lookup_one(self, key: int) -> list[int]:
        """`lookup` of one key, without numpy's per-call overhead (~10x faster for one key)."""
        key = key or 1
        hit = self._pending.get(key)
        found = [] if hit is None else list(hit) if isinstance(hit, list) else [hit]
        found += self._table.lookup_one(key)
        if self._old is not None:
            found += self._old.lookup_one(key, skip_below=self._moved)
        return found

    def entries(self) -> int:
        """Entries held, live or not (while moving, the moved ones count twice)."""
        old = 0 if self._old is None else self._old.used
        return self._table.used + old + self._pending_entries

    def memory_bytes(self) -> int:
        tables = [t for t in (self._table, self._old) if t is not None]
        cell = self._key_dtype.itemsize + self._ref_dtype.itemsize
        preparing = 0 if self._next is None else self._touched * cell  # the part written so far
        return (sum(t.nbytes() for t in tables) + preparing + self._pending_keys.nbytes
                + self._pending_refs.nbytes + self._pending_entries * 40)

    # -- snapshots -------------------------------------------------------------------------------

    def state(self) -> dict:
        """What `from_state` restores this multimap from: numpy arrays (not copies) and numbers.
        A table being prepared is left out (it is prepared again); entries waiting in the dict
        are kept as their two arrays."""
        n = self._pending_entries
        return {"key_dtype": self._key_dtype.str, "ref_dtype": self._ref_dtype.str,
                "table": self._table.state(), "old": None if self._old is None else self._old.state(),
                "moved": self._moved, "pending_keys": self._pending_keys[:n],
                "pending_refs": self._pending_refs[:n]}

    @classmethod
    def from_state(cls, state: dict) -> Multimap:
        mm = cls(np.dtype(state["key_dtype"]).type, np.dtype(state["ref_dtype"]).type)
        mm._table = _Table.from_state(state["table"])
        mm._old = None if state["old"] is None else _Table.from_state(state["old"])
        mm._moved = int(state["moved"])
        keys, refs = state["pending_keys"], state["pending_refs"]
        n = len(keys)
        if n > len(mm._pending_keys):
            mm._pending_keys = np.zeros(n, dtype=mm._key_dtype)
            mm._pending_refs = np.zeros(n, dtype=mm._ref_dtype)
        mm._pending_keys[:n], mm._pending_refs[:n] = keys, refs
        mm._pending_entries = n
        pending = mm._pending
        for key, ref in zip(keys.tolist(), refs.tolist(), strict=True):
            had = pending.setdefault(key, ref)
            if had is not ref:
                pending[key] = [*had, ref] if isinstance(had, list) else [had, ref]
        return mm

    def _flush(self, is_live: IsLive) -> None:
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

    def _allocate_next(self, is_live: IsLive, inserting: int) -> None:
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
        self._next = self._new_table(int(cells) // self.WIDTH + 1)
        self._touched = 0
        self._touch_step = -(-self._next.cells * self.PENDING_LIMIT // max(int(ready_in), 1))

    def _move_chunk(self, is_live: IsLive, inserting: int) -> tuple[np.ndarray, np.ndarray]:
        """The live entries of the next chunk of old buckets; all that is left if the new table
        would otherwise pass `MAX_LOAD` (only if the share of live entries was underestimated)."""
        old, table = self._old, self._table
        assert old is not None  # called only while moving
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
_SPREAD = np.uint64(0x9E3779B97F4A7C15)  # a 32-bit key times this: 64 bits for the two homes


class _Table:
    """One table of `buckets` × `width` cells (see `Multimap`). Each key has two buckets, from
    the two halves of its bits; it is put in the less full one (so buckets fill evenly), and only
    when both are full in the first bucket after its first one that has a free cell."""

    def __init__(self, buckets: int, width: int, key_dtype: type | np.dtype = np.uint64,
                 ref_dtype: type | np.dtype = np.uint64) -> None:
        self.buckets, self.width, self.cells = buckets, width, buckets * width
        self.keys = np.zeros((buckets, width), dtype=key_dtype)
        self.refs = np.zeros((buckets, width), dtype=ref_dtype)
        self.fill = np.zeros(buckets, dtype=np.uint8)  # cells in use, from the left
        self.used = 0

    def nbytes(self) -> int:
        return self.keys.nbytes + self.refs.nbytes + self.fill.nbytes

    def state(self) -> dict:
        return {"keys": self.keys, "refs": self.refs, "fill": self.fill, "used": self.used}

    @classmethod
    def from_state(cls, state: dict) -> _Table:
        table = cls.__new__(cls)
        table.keys, table.refs, table.fill = state["keys"], state["refs"], state["fill"]
        table.buckets, table.width = table.keys.shape
        table.cells = table.buckets * table.width
        table.used = int(state["used"])
        return table

    def touch(self, lo: int, hi: int) -> None:
        """Write (zeros) to cells lo:hi, so the OS maps their memory now, not on first insert."""
        self.keys.reshape(-1)[lo:hi] = 0
        self.refs.reshape(-1)[lo:hi] = 0
        self.fill[lo // self.width:-(-hi // self.width)] = 0

    def homes(self, keys: np.ndarray) -> np.ndarray:
        """The two buckets of each key, shape (n, 2): each 32-bit half of the key scaled to
        [0, buckets) (a multiply and a shift: any table size, no modulo). A 32-bit key is first
        spread to 64 bits (times an odd constant: distinct keys stay distinct)."""
        if keys.dtype == np.uint32:
            keys = keys.astype(np.uint64) * _SPREAD  # wraps, as wanted
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

    def lookup_one(self, key: int, skip_below: int = 0) -> list[int]:
        """`lookup` of one key (a Python int): the same buckets, in plain Python."""
        spread = key * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF if self.keys.dtype == np.uint32 else key
        n = self.buckets
        found: list[int] = []
        first = ((spread & 0xFFFFFFFF) * n) >> 32
        for bucket in (first, ((spread >> 32) * n) >> 32):
            if bucket >= skip_below:
                row = self.keys[bucket].tolist()
                if key in row:
                    refs = self.refs[bucket].tolist()
                    found += [refs[i] for i, k in enumerate(row) if k == key]
        if self.keys[first, -1] and self.keys[((spread >> 32) * n) >> 32, -1]:  # both full: probe on
            bucket = (first + 1) % n
            while True:
                row = self.keys[bucket].tolist()
                if bucket >= skip_below and key in row:
                    refs = self.refs[bucket].tolist()
                    found += [refs[i] for i, k in enumerate(row) if k == key]
                if not row[-1]:
                    break
                bucket = (bucket + 1) % n
        return found

    def entries(self, lo: int, hi: int, is_live: IsLive) -> tuple[np.ndarray, np.ndarray]:
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
            raise RuntimeError("LSH table overfull")  # the sizing in Multimap prevents this
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
