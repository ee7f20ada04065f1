"""Snapshots of the funnel's index (worker/snapshot.py) and the compact index behind them (issue 24):
a restored index plus the changelog written after it decides exactly as the index that never
stopped; anything that does not continue the snapshot is refused (the worker then rebuilds)."""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import numpy as np
import orjson
import pytest

from worker import snapshot
from worker.pipeline import ArticleIndex, StaleState, analyse
from worker.quality import replayeval
from worker.records import AnalysedArticle
from worker.stages.dedup import DedupIndex
from worker.stages.multimap import Multimap
from worker.stages.stories import StoryIndex
from worker.stages.validate import parse_article

TOPIC = "app-dedup-index-changelog"


@pytest.fixture(scope="module")
def stream() -> list[AnalysedArticle]:
    """A shuffled multi-year replay with copies (as tests/unit/test_replay_order.py's)."""
    from worker.quality.data import articles

    items = {i.article_id: i for i in replayeval.story_items(24)}
    labelled = {a.id: a for a in articles()}
    order = sorted(items)
    random.Random(11).shuffle(order)
    out = []
    for aid in order:
        raw = {"id": aid, "title": labelled[aid].title, "body": labelled[aid].body,
               "published_at": items[aid].published}
        out.append(analyse(parse_article(aid.encode(), orjson.dumps(raw), 1 << 20), 126,
                           arrival=items[aid].published + 3600))
    copies = [msgspec.structs.replace(a, id=a.id + "-copy") for a in out[::3]]
    return out + copies


class Run:
    """The funnel's side of the worker: the index, its table and the table's changelog."""

    def __init__(self, stored: bool, max_articles: int = 40) -> None:
        self.table: dict[str, bytes] = {}
        self.changelog: list[tuple[int, bytes, bytes | None]] = []
        self.max_articles, self.stored = max_articles, stored
        self.index = self.new_index()

    def new_index(self) -> ArticleIndex:
        return ArticleIndex(max_articles=self.max_articles, stored=self.table.get if self.stored else None)

    def write(self, key: str, value: bytes | None) -> None:
        self.changelog.append((len(self.changelog), key.encode(), value))
        if value is None:
            self.table.pop(key, None)
        else:
            self.table[key] = value

    def step(self, n: int, item: AnalysedArticle) -> tuple:
        decided = self.index.decide(item, now=1_000.0 + n)
        if decided.record:
            self.write(item.id, decided.record)
        if n % 4 == 3:  # the agent evicts after each funnel batch
            eviction = self.index.evict_expired(now=1_000.0 + n)
            for key in eviction.delete:
                self.write(key, None)
            for key, value in eviction.rewrite.items():
                self.write(key, value)
        return decided.verdict, decided.story

    def meta(self) -> snapshot.SnapshotMeta:
        offset, key, value = self.changelog[-1]
        return snapshot.SnapshotMeta(TOPIC, 0, offset, key, snapshot.value_hash(value), self.index.params(),
                                     self.index.articles())


def run(stream, stored: bool, snapshot_at: int | None, restart_at: int | None, path: Path) -> list:
    r = Run(stored)
    out = []
    meta = None
    for n, item in enumerate(stream):
        if n == snapshot_at:
            meta = r.meta()
            snapshot.write(path, r.index, meta)
        if n == restart_at:
            assert meta is not None
            r.index = r.new_index()
            loaded = snapshot.load(path, r.index, TOPIC, 0)
            applied = snapshot.catch_up(r.index, loaded, r.changelog[loaded.offset:])
            assert applied == len(r.changelog) - 1 - meta.offset > 0
            snapshot.check_articles(r.index, len(r.table))
        out.append(r.step(n, item))
    return out


@pytest.mark.parametrize("stored", [False, True], ids=["features-in-memory", "features-in-the-table"])
def test_a_snapshot_and_the_changelog_after_it_decide_as_the_index_that_never_stopped(stream, tmp_path, stored):
    """Budget evictions (40 articles) on the way: the changelog after the snapshot has new
    decisions, rewrites (a part evicted) and tombstones, stories leaving whole."""
    path = tmp_path / snapshot.FILENAME
    uninterrupted = run(stream, stored, None, None, path)
    third = len(stream) // 3
    assert run(stream, stored, third, 2 * third, path) == uninterrupted
    assert run(stream, stored, third, third + 1, path) == uninterrupted  # one record after it


def test_the_story_features_can_stay_in_the_table_with_the_same_records(stream):
    """ArticleIndex(stored=...) keeps no features in memory, and writes the very same records."""
    in_memory, in_table = Run(stored=False), Run(stored=True)
    for n, item in enumerate(stream):
        assert in_memory.step(n, item) == in_table.step(n, item)
    assert in_memory.changelog == in_table.changelog
    assert all(not r.features for r in in_table.index.stories._records.values())
    assert any(r.features for r in in_memory.index.stories._records.values())
    with pytest.raises(ValueError, match="features_of"):
        in_table.index.stories.to_bytes()


def _snapshot_of(stream, tmp_path: Path, n: int = 60) -> tuple[Run, snapshot.SnapshotMeta, Path]:
    r = Run(stored=True)
    for i, item in enumerate(stream[:n]):
        r.step(i, item)
    path = tmp_path / snapshot.FILENAME
    meta = r.meta()
    snapshot.write(path, r.index, meta)
    return r, meta, path


def test_stale_snapshots_are_refused(stream, tmp_path):
    r, meta, path = _snapshot_of(stream, tmp_path, 30)
    with pytest.raises(StaleState, match="other settings"):
        snapshot.load(path, ArticleIndex(max_articles=41), TOPIC, 0)
    with pytest.raises(StaleState, match="taken of"):
        snapshot.load(path, r.new_index(), "another-changelog", 0)
    index = r.new_index()
    loaded = snapshot.load(path, index, TOPIC, 0)
    # the changelog no longer has the snapshot's record where it was (compacted, or another changelog)
    with pytest.raises(StaleState, match="no longer has the snapshot's last record"):
        snapshot.catch_up(index, loaded, r.changelog[loaded.offset + 1:])
    with pytest.raises(StaleState, match="no longer has"):
        snapshot.catch_up(index, loaded, [(loaded.offset, b"other", b"{}")])
    with pytest.raises(StaleState, match="no longer has"):
        snapshot.catch_up(index, loaded, [])
    # a tombstone for an article it never had
    with pytest.raises(StaleState, match="not in the snapshot"):
        snapshot.catch_up(index, loaded, [r.changelog[loaded.offset], (loaded.offset + 1, b"never-seen", None)])
    # a record after it compacted away (at_least_once: every offset holds a record)
    for i, item in enumerate(stream[30:50], start=30):
        r.step(i, item)
    tail = r.changelog[loaded.offset:]
    assert len(tail) > 3
    gapped = r.new_index()
    snapshot.load(path, gapped, TOPIC, 0)
    with pytest.raises(StaleState, match="are gone"):
        snapshot.catch_up(gapped, loaded, tail[:2] + tail[3:], contiguous=True)
    fresh = r.new_index()
    snapshot.load(path, fresh, TOPIC, 0)
    assert snapshot.catch_up(fresh, loaded, tail, contiguous=True) == len(tail) - 1
    snapshot.check_articles(fresh, len(r.table))
    # a table with another number of keys
    with pytest.raises(StaleState, match="the table"):
        snapshot.check_articles(fresh, len(r.table) + 1)
    # older than the changelog surely keeps deletions
    with pytest.raises(StaleState, match="old"):
        snapshot.load(path, r.new_index(), TOPIC, 0, max_age_s=1e-9)


def test_torn_damaged_or_missing_files_are_refused(stream, tmp_path):
    _, _, path = _snapshot_of(stream, tmp_path)
    data = path.read_bytes()
    for name, bad in [("torn", data[: len(data) // 2]), ("flipped", data[:-100] + bytes([data[-100] ^ 1]) + data[-99:]),
                      ("no-magic", b"X" + data[1:])]:
        broken = tmp_path / name
        broken.write_bytes(bad)
        with pytest.raises(snapshot.SnapshotError):
            snapshot.read(broken)
    with pytest.raises(snapshot.SnapshotError, match="no snapshot"):
        snapshot.read_meta(tmp_path / "missing")
    assert snapshot.read_meta(path).topic == TOPIC
    assert not list(tmp_path.glob("*.tmp"))  # written to a temporary file, then renamed


def test_dedup_index_state_round_trip_mid_growth(monkeypatch, tmp_path):
    """The LSH table restored while it is moving into a bigger one (both tables, the pending
    entries) finds what the original finds."""
    monkeypatch.setattr(Multimap, "INITIAL_BUCKETS", 4)
    monkeypatch.setattr(Multimap, "PENDING_LIMIT", 256)
    rng = np.random.default_rng(3)
    index = DedupIndex(retention_s=500)
    sigs = {}
    moving_seen = False
    for i in range(2_000):
        sigs[i] = rng.integers(0, 2**32, size=126, dtype=np.uint32)
        index.decide(f"a{i}", f"h{i % 1900}", sigs[i], 400, float(i), float(i))
        index.evict_expired(float(i))
        if index._buckets._old is not None and i > 1_000:
            moving_seen = True
            break
    assert moving_seen
    holder = ArticleIndex(retention_s=500)
    holder.dedup = index
    path = tmp_path / snapshot.FILENAME
    snapshot.write(path, holder, snapshot.SnapshotMeta(TOPIC, 0, 0, b"k", 0, holder.params(), len(index)))
    copy = snapshot.read(path)[1]["dedup"]
    copy = DedupIndex.from_state(copy)
    for j in range(i - 400, i + 1, 7):
        probe = sigs[j].copy()
        probe[:10] += 1
        a = index.decide(f"q{j}", f"qh{j}", probe, 400, float(i + 1), float(i + 1)).verdict
        b = copy.decide(f"q{j}", f"qh{j}", probe, 400, float(i + 1), float(i + 1)).verdict
        assert a == b and a.status == "near_duplicate"
    assert index.evict_expired(float(i + 600)).ids == copy.evict_expired(float(i + 600)).ids


def test_story_index_state_round_trip(stream, tmp_path):
    live = StoryIndex()
    for n, item in enumerate(stream[:40]):
        live.assign_features(item.id, item.story_features, item.event_epoch, 1_000.0 + n)
    holder = ArticleIndex()
    holder.stories = live
    path = tmp_path / snapshot.FILENAME
    snapshot.write(path, holder, snapshot.SnapshotMeta(TOPIC, 0, 0, b"k", 0, holder.params(), 40))
    restored = StoryIndex.from_state(snapshot.read(path)[1]["stories"])
    assert [r for r in restored._records.values()] == [r for r in live._records.values()]
    for n, item in enumerate(stream[40:], start=40):
        a = live.assign_features(item.id, item.story_features, item.event_epoch, 1_000.0 + n)
        b = restored.assign_features(item.id, item.story_features, item.event_epoch, 1_000.0 + n)
        assert a == b
    assert live.evict_expired(1e9) == restored.evict_expired(1e9)
