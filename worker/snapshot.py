"""Local snapshots of the dedup funnel's index (issue 24): a restart on the same disk loads the
index as it was at one changelog offset, then applies only the changelog records written after
it, instead of rebuilding the index from every record of the table (1 M records: minutes).

One file, `<faust table dir>/dedup-index.snapshot`, replaced atomically (written to a `.tmp`
beside it, fsynced, renamed):

    MAGIC (8 bytes) | header length (uint64 LE) | header (msgpack) | tree (msgpack)
    | arrays, 64-byte aligned | xxh3-64 (8 bytes)

The header holds `SnapshotMeta` (where in the changelog the index was: the offset, key and a
hash of the value of the last record it holds; the settings it decides with), each array's
dtype and shape, and the tree's length; the tree is the index's `ArticleIndex.state()` with
every numpy array replaced by a reference. The last 8 bytes are the xxh3-64 of everything
before them: a torn or damaged file is refused, never half-loaded.

A snapshot is used only if it can be made exactly the table's state, else the index is rebuilt
from the table as before (`catch_up` raises StaleState, the caller falls back):
- the file exists, is whole, and was written for this changelog topic and these settings;
- the changelog still holds, at the snapshot's offset, the record the snapshot ended with (same
  key, same value hash): it is the same changelog, and that record was not compacted away;
- every later record follows from the index's state (`ArticleIndex.apply_change`: a new decision,
  or a part that an eviction removed), and, under at_least_once (no transaction markers), none
  is missing (compaction removed nothing after the snapshot's record);
- it is younger than the changelog keeps tombstones (`max_age_s`; Kafka's delete.retention.ms
  defaults to a day): a deletion written after it cannot have been compacted away unseen.

Pure file I/O and the index: the worker (worker/app.py) reads the changelog records and decides
when to write. Arrays are written from the live index (no copy): the caller keeps the index
unchanged until `write` returns.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import numpy as np
import xxhash

from worker.pipeline import ArticleIndex, StaleState

MAGIC = b"DDUPSNP2"
FORMAT = 2
FILENAME = "dedup-index.snapshot"
_ALIGN = 64
_ARRAY = "__ndarray__"


def value_hash(value: bytes | None) -> int:
    """What a snapshot keeps of its last changelog record's value (None: a tombstone)."""
    return -1 if value is None else xxhash.xxh3_64_intdigest(value)


@dataclass(frozen=True)
class SnapshotMeta:
    topic: str  # the changelog topic
    partition: int
    offset: int  # of the last changelog record the index holds
    key: bytes  # that record's key ...
    value_hash: int  # ... and `value_hash` of its value
    params: dict[str, float]  # ArticleIndex.params()
    articles: int  # ArticleIndex.articles()
    written_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Restored:
    meta: SnapshotMeta
    applied: int  # changelog records applied after the snapshot's offset
    load_s: float
    catch_up_s: float


class SnapshotError(RuntimeError):
    """No usable snapshot file (missing, torn, damaged, another format)."""


# -- writing --------------------------------------------------------------------------------------

def write(path: Path, index: ArticleIndex, meta: SnapshotMeta) -> int:
    """Write `index` (as at `meta`) to `path`, atomically; returns the file's size. Raises
    StaleState if the index has a part that cannot be snapshotted."""
    arrays: list[np.ndarray] = []
    tree = _strip_arrays(index.state(), arrays)
    specs: list[list[Any]] = []
    offsets: list[int] = []
    offset = 0
    for a in arrays:
        offset = -(-offset // _ALIGN) * _ALIGN
        offsets.append(offset)
        specs.append([a.dtype.descr if a.dtype.names else a.dtype.str, list(a.shape), offset, a.nbytes])
        offset += a.nbytes
    meta_d = asdict(meta)
    meta_d["key"] = meta.key.hex()
    tree_bytes = msgspec.msgpack.encode(tree)
    header = msgspec.msgpack.encode({"format": FORMAT, "meta": meta_d, "arrays": specs, "tree": len(tree_bytes)})
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = xxhash.xxh3_64()
    with open(tmp, "wb") as f:
        _put(f, digest, MAGIC + len(header).to_bytes(8, "little") + header)
        _put(f, digest, tree_bytes)
        del tree_bytes
        start = f.tell()
        for a, at in zip(arrays, offsets, strict=True):
            pad = start + at - f.tell()
            if pad:
                _put(f, digest, bytes(pad))
            _put(f, digest, _bytes_of(np.ascontiguousarray(a)))
        f.write(digest.digest())
        f.flush()
        os.fsync(f.fileno())
        size = f.tell()
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return size


def _bytes_of(a: np.ndarray) -> memoryview:
    """The array's memory as bytes (no copy)."""
    return memoryview(a.reshape(-1).view(np.uint8))  # type: ignore[arg-type]


def _put(f: BinaryIO, digest: Any, data: bytes | memoryview) -> None:
    digest.update(data)
    f.write(data)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _strip_arrays(obj: Any, arrays: list[np.ndarray]) -> Any:
    """`obj` with every numpy array replaced by {_ARRAY: its number in `arrays`} (arrays are
    values in dicts, or in lists of arrays: the lists of records are not walked)."""
    if isinstance(obj, np.ndarray):
        arrays.append(obj)
        return {_ARRAY: len(arrays) - 1}
    if isinstance(obj, dict):
        return {k: _strip_arrays(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list | tuple) and obj and isinstance(obj[0], np.ndarray):  # lists of arrays only
        return [_strip_arrays(v, arrays) for v in obj]
    return obj


def _put_arrays(obj: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(obj, dict):
        if len(obj) == 1 and _ARRAY in obj:
            return arrays[obj[_ARRAY]]
        return {k: _put_arrays(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list) and obj and isinstance(obj[0], dict) and _ARRAY in obj[0]:
        return [_put_arrays(v, arrays) for v in obj]
    return obj


# -- reading --------------------------------------------------------------------------------------

def read_meta(path: Path) -> SnapshotMeta:
    """The snapshot's meta (the header only: cheap). Raises SnapshotError."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            if len(head) < 16 or head[:8] != MAGIC:
                raise SnapshotError(f"{path}: not a snapshot of this format")
            header = msgspec.msgpack.decode(f.read(int.from_bytes(head[8:], "little")))
    except FileNotFoundError as exc:
        raise SnapshotError(f"no snapshot at {path}") from exc
    except (OSError, msgspec.DecodeError) as exc:
        raise SnapshotError(f"{path}: unreadable header ({exc})") from exc
    return _meta(header)


def _meta(header: dict) -> SnapshotMeta:
    if header.get("format") != FORMAT:
        raise SnapshotError(f"snapshot format {header.get('format')}, this worker reads {FORMAT}")
    d = dict(header["meta"])
    d["key"] = bytes.fromhex(d["key"])
    return SnapshotMeta(**d)


def read(path: Path) -> tuple[SnapshotMeta, dict]:
    """The meta and the index state of the snapshot at `path` (checksum verified). Raises
    SnapshotError."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            digest = xxhash.xxh3_64()
            head = f.read(16)
            if len(head) < 16 or head[:8] != MAGIC:
                raise SnapshotError(f"{path}: not a snapshot of this format")
            raw_header = f.read(int.from_bytes(head[8:], "little"))
            digest.update(head)
            digest.update(raw_header)
            header = msgspec.msgpack.decode(raw_header)
            meta = _meta(header)
            raw_tree = f.read(header["tree"])
            digest.update(raw_tree)
            start = f.tell()
            arrays = []
            for descr, shape, at, nbytes in header["arrays"]:
                pad = start + at - f.tell()
                if pad:
                    digest.update(f.read(pad))
                dtype = np.dtype([tuple(x) for x in descr] if isinstance(descr, list) else descr)
                a = np.empty(shape, dtype=dtype)
                view = _bytes_of(a)
                if f.readinto(view) != nbytes:
                    raise SnapshotError(f"{path}: truncated")
                digest.update(view)
                arrays.append(a)
            tail = f.read()
    except FileNotFoundError as exc:
        raise SnapshotError(f"no snapshot at {path}") from exc
    except (OSError, ValueError, TypeError, msgspec.DecodeError) as exc:
        raise SnapshotError(f"{path}: unreadable ({exc})") from exc
    if len(tail) != 8 or tail != digest.digest():
        raise SnapshotError(f"{path}: checksum mismatch ({size} bytes): a torn or damaged file")
    try:
        tree = msgspec.msgpack.decode(raw_tree)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"{path}: unreadable ({exc})") from exc
    return meta, _put_arrays(tree, arrays)


# -- restoring ------------------------------------------------------------------------------------

def load(path: Path, index: ArticleIndex, topic: str, partition: int, max_age_s: float = 0.0) -> SnapshotMeta:
    """Restore `index` from the snapshot at `path`, taken of `topic`/`partition` with the
    index's settings, at most `max_age_s` ago (0: any age). Raises SnapshotError (no usable
    file) or StaleState (another changelog, other settings, too old)."""
    meta = read_meta(path)
    if (meta.topic, meta.partition) != (topic, partition):
        raise StaleState(f"taken of {meta.topic}/{meta.partition}, not {topic}/{partition}")
    age = time.time() - meta.written_at
    if max_age_s and age > max_age_s:
        raise StaleState(f"{age:.0f}s old, more than the {max_age_s:.0f}s the changelog surely keeps deletions")
    meta, state = read(path)
    index.restore(state)
    return meta


def catch_up(index: ArticleIndex, meta: SnapshotMeta, changelog: Iterable[tuple[int, bytes, bytes | None]],
             now: float | None = None, contiguous: bool = False) -> int:
    """Apply the changelog records (offset, key, value) read from the snapshot's offset on, in
    order, to the restored index; returns how many were applied after the snapshot's own record.
    Raises StaleState if they do not continue the snapshot. `contiguous`: the changelog has a
    record at every offset (no transaction markers: at_least_once), so a missing offset is a
    record compaction removed, which the index may have needed: stale."""
    records = iter(changelog)
    first = next(records, None)
    if first is None or first[0] != meta.offset or first[1] != meta.key or value_hash(first[2]) != meta.value_hash:
        found = "nothing" if first is None else \
            f"offset {first[0]}" if first[0] != meta.offset else "another record there"
        raise StaleState(f"the changelog no longer has the snapshot's last record at offset {meta.offset} "
                         f"(found {found}): compacted, or another changelog")
    now = time.time() if now is None else now
    applied = 0
    last = meta.offset
    gone: set[str] = set()
    for offset, key, value in records:
        if offset <= last:
            raise StaleState(f"changelog offsets out of order at {offset}")
        if contiguous and offset != last + 1:
            raise StaleState(f"changelog records {last + 1}-{offset - 1} are gone (compacted)")
        index.apply_change(key.decode(), value, now, gone)
        last = offset
        applied += 1
    return applied


def check_articles(index: ArticleIndex, table_keys: int) -> None:
    """A check the worker leaves out (it reads the whole table: O(N), and RocksDB's block cache
    fills with it): the restored index holds an article for every key of the table."""
    held = index.articles()
    if held != table_keys:
        raise StaleState(f"the restored index holds {held:,} articles, the table {table_keys:,} keys")
