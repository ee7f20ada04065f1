"""Replays in any order: duplicate groups and stories do not depend on arrival order, no
timestamp can empty the index, and a rebuilt index decides as the one before it (issue 16)."""

import random
from pathlib import Path

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.io.sources import ReadReport, read_articles
from worker.pipeline import ArticleIndex, analyse, enrich_offline, finish
from worker.quality import replayeval
from worker.records import AnalysedArticle
from worker.stages.validate import parse_article

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
HYPOTHESIS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def dedup_items():
    return replayeval.dedup_items()


@pytest.fixture(scope="module")
def dedup_reference(dedup_items):
    chrono = sorted(dedup_items, key=lambda i: (i.published, i.doc_id))
    return replayeval.dedup_groups(chrono)


@HYPOTHESIS
@given(data=st.data())
def test_duplicate_groups_are_the_same_in_any_order(dedup_items, dedup_reference, data):
    """504 originals and copies published over two years: any permutation gives the groups of
    publication order (every pair of the labelled set, both ways)."""
    seed = data.draw(st.integers(0, 2**32 - 1), label="shuffle seed")
    order = dedup_items[:]
    random.Random(seed).shuffle(order)
    groups = replayeval.dedup_groups(order)
    assert replayeval.pairs_differing(groups, dedup_reference) == 0.0
    truth = {i.doc_id: i.group for i in dedup_items}
    assert replayeval.pairwise_pr(groups, truth) == (1.0, 1.0)


@HYPOTHESIS
@given(spread_h=st.sampled_from(replayeval.SPREADS_H), seed=st.integers(0, 2**32 - 1))
def test_story_partition_differs_in_at_most_two_percent_of_pairs(spread_h, seed):
    items = replayeval.story_items(spread_h)
    chrono = sorted(items, key=lambda i: (i.published, i.article_id))
    order = chrono[:]
    random.Random(seed).shuffle(order)
    reference, shuffled = replayeval.story_groups(chrono), replayeval.story_groups(order)
    # Greedy assignment: a rare order (2-3 in 300) joins two events' stories through an article
    # that arrives between them: 5.3 % of pairs differ and precision falls to 0.67 (measured,
    # test_story_partition_within_two_percent_in_99_percent_of_orders). Nothing worse is allowed.
    assert replayeval.pairs_differing(shuffled, reference) <= 0.06
    precision, recall = replayeval.pairwise_pr(shuffled, {i.article_id: i.event for i in items})
    assert precision >= 0.65 and recall >= 0.9


def test_story_partition_within_two_percent_in_99_percent_of_orders():
    items = replayeval.story_items(24)
    chrono = sorted(items, key=lambda i: (i.published, i.article_id))
    reference = replayeval.story_groups(chrono)
    over = 0
    for seed in range(300):
        order = chrono[:]
        random.Random(seed).shuffle(order)
        over += replayeval.pairs_differing(replayeval.story_groups(order), reference) > 0.02
    assert over <= 3  # 2 measured (seeds 57 and 136)


def test_story_recall_with_a_48_hour_spread_is_within_0_05_of_the_same_instant():
    def recall(spread_h: float) -> float:
        items = replayeval.story_items(spread_h)
        chrono = sorted(items, key=lambda i: (i.published, i.article_id))
        return replayeval.pairwise_pr(replayeval.story_groups(chrono), {i.article_id: i.event for i in items})[1]

    assert recall(48) >= recall(0) - 0.05


def seed_articles(published_at, salt: str = "") -> list:
    out = []
    for raw in read_articles([SEEDS], ReadReport(), salt):
        raw["published_at"] = published_at
        out.append(parse_article(raw["id"].encode(), orjson.dumps(raw), 1 << 20))
    return out


def test_a_far_future_date_empties_nothing_and_is_clamped_visibly():
    """Issue 16's case, as `ingest enrich` runs it: the 5 seeds, one unrelated article dated 2099,
    then the 5 seeds again under new ids: all 5 copies are exact duplicates."""
    future = parse_article(b"future", orjson.dumps({
        "id": "future", "title": "Tide tables", "published_at": "2099-01-01T00:00:00Z",
        "body": "The harbour office published next month's tide tables for the northern coast. " * 8}), 1 << 20)
    stream = [*seed_articles("2025-03-28T10:00:00Z"), future, *seed_articles("2025-03-28T10:00:00Z", salt="again")]
    out = list(enrich_offline(stream, ArticleIndex(), 126))
    assert out[5]["event_time"]["source"] == "clamped" and "2099" in out[5]["event_time"]["warning"]
    assert [e["dedup"]["status"] for e in out[:5]] == ["unique"] * 5
    assert [e["dedup"]["status"] for e in out[6:]] == ["exact_duplicate"] * 5
    assert {e["dedup"]["duplicate_of"] for e in out[6:]} == {e["id"] for e in out[:5]}
    murmansk = {e["story"]["story_id"] for e in out[:5]}
    assert all(e["story"]["story_id"] in murmansk for e in out[6:])  # the stories survived too


def test_unparseable_dates_fall_back_to_ingestion_and_say_so():
    for bad in ("yesterday", "2025-13-45"):
        analysed = analyse(seed_articles(bad)[0], 126, arrival=1_750_000_000.0)
        assert analysed.event_time.source == "ingested"
        assert analysed.event_time.epoch == 1_750_000_000.0
        assert bad in analysed.event_time.warning


def persisted_table(index: ArticleIndex, decided: dict, eviction) -> None:
    """Apply an eviction's deletes and rewrites to `decided` (the table: id -> record)."""
    for article_id in eviction.delete:
        decided.pop(article_id, None)
    decided.update(eviction.rewrite)


def test_a_rebuilt_index_decides_exactly_as_the_one_before_it():
    """Half of a shuffled multi-year replay, a restart (rebuild from what the table holds after
    the evictions: deletes and rewrites applied), then the rest: every verdict and story of the
    second half is the same as without the restart, including budget evictions on the way."""
    items = replayeval.story_items(24)
    by_id = {i.article_id: i for i in items}
    articles = {a.id: a for a in _labelled_articles()}
    order = sorted(by_id)
    random.Random(7).shuffle(order)
    analysed = {aid: _analysed(articles[aid], by_id[aid].published) for aid in order}
    copies = {aid: msgspec.structs.replace(analysed[aid], id=aid + "-copy") for aid in order}
    stream = [analysed[aid] for aid in order] + [copies[aid] for aid in order[::3]]
    half = len(stream) // 2

    def run(restart: bool) -> list:
        index = ArticleIndex(max_articles=40)  # a budget below the stream: evictions happen
        table: dict[str, bytes] = {}
        out = []
        for n, item in enumerate(stream):
            if restart and n == half:
                index = ArticleIndex(max_articles=40)
                index.rebuild(reversed(list(table.values())), now=1_000.0 + n)
            decided = index.decide(item, now=1_000.0 + n)
            if decided.record:
                table[item.id] = decided.record
            persisted_table(index, table, index.evict_expired(now=1_000.0 + n))
            out.append((decided.verdict, decided.story))
        return out

    assert run(restart=True) == run(restart=False)


def test_records_of_the_previous_version_still_load():
    """Version 1 records (no "v", no arrival times) load as if they had arrived now."""
    index = ArticleIndex()
    seeds = [analyse(a, 126) for a in seed_articles("2025-03-28T10:00:00Z")]
    v1 = []
    for a in seeds:
        record = orjson.loads(index.decide(a, now=100.0).record)
        del record["v"], record["dedup"]["a"], record["story"]["a"]
        v1.append(orjson.dumps(record))
    rebuilt = ArticleIndex(retention_s=50)
    rebuilt.rebuild(v1, now=10_000.0)
    assert rebuilt.evict_expired(now=10_040.0).delete == []  # a whole retention from the upgrade
    copy = analyse(seed_articles("2025-03-28T10:00:00Z", salt="x")[0], 126)
    decided = rebuilt.decide(copy, now=10_041.0)
    assert decided.verdict.status == "exact_duplicate"
    enriched, event = finish(copy, decided, 0.1)
    assert event is not None and enriched.dedup["status"] == "exact_duplicate"


def _labelled_articles():
    from worker.quality.data import articles

    return articles()


def _analysed(labelled, published: float) -> AnalysedArticle:
    raw = {"id": labelled.id, "title": labelled.title, "body": labelled.body, "published_at": published}
    return analyse(parse_article(labelled.id.encode(), orjson.dumps(raw), 1 << 20), 126,
                   arrival=published + 3600)


def test_retention_settings_take_seconds_or_iso_durations_and_the_old_name(monkeypatch):
    from datetime import timedelta

    from worker.config import Settings

    monkeypatch.setenv("DEDUP_RETENTION", "P14D")
    monkeypatch.setenv("MAX_FUTURE_SKEW", "3600")
    s = Settings(_env_file=None)
    assert (s.dedup_retention, s.max_future_skew, s.story_retention) == (
        timedelta(days=14), timedelta(hours=1), timedelta(days=7))
    monkeypatch.delenv("DEDUP_RETENTION")
    monkeypatch.setenv("DEDUP_WINDOW_DAYS", "2")
    assert Settings(_env_file=None).dedup_retention == timedelta(days=2)
