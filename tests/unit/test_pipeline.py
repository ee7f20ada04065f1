"""The composed pipeline in-process: seeds → enrichment, stories, redelivery, rebuild."""

from pathlib import Path

import msgspec
import orjson
import pytest

from worker import pipeline
from worker.io.sources import ReadReport, read_articles
from worker.pipeline import ArticleIndex, StageError, analyse, analyse_batch, finish
from worker.records import AnalysedArticle
from worker.stages.validate import parse_article

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def analysed_seeds(salt: str = "") -> list[AnalysedArticle]:
    out = []
    for raw in read_articles([SEEDS], ReadReport(), salt):
        raw["published_at"] = "2025-03-28T10:00:00Z"
        article = parse_article(raw["id"].encode(), orjson.dumps(raw), 1 << 20)
        out.append(analyse(article, 126))
    return out


def test_seeds_form_two_stories_and_redelivery_repeats_everything():
    index = ArticleIndex()
    seeds = analysed_seeds()
    decided = {a.metadata["file"][:3]: index.decide(a) for a in seeds}
    murmansk = {decided[k].story.story_id for k in ("000", "001", "002", "004")}
    assert len(murmansk) == 1 and decided["003"].story.story_id not in murmansk
    again = index.decide(seeds[2])
    assert again.redelivery and again.record == b""
    first = decided[seeds[2].metadata["file"][:3]]
    assert (again.verdict, again.story) == (first.verdict, first.story)


def test_rebuilt_index_answers_like_the_original():
    index = ArticleIndex()
    records = [index.decide(a).record for a in analysed_seeds()]
    copies = analysed_seeds(salt="x")
    rebuilt = ArticleIndex()
    rebuilt.rebuild(reversed(records))  # any order in the table; rebuild sorts by event time
    for copy in copies:
        a, b = index.decide(copy), rebuilt.decide(copy)
        assert a.verdict == b.verdict and a.verdict.status == "exact_duplicate"
        assert a.story == b.story


def test_enriched_message_carries_every_part():
    index = ArticleIndex()
    analysed = analysed_seeds()[0]
    enriched, event = finish(analysed, index.decide(analysed), 0.1)
    assert event is None
    message = orjson.loads(msgspec.json.encode(enriched))
    for part in ("language", "hashes", "dedup", "story", "entities", "content", "timings_ms"):
        assert part in message
    assert "story_features" not in message  # the funnel's input, not an output
    assert set(message["timings_ms"]) == {"normalise", "language", "hashing", "passages", "entities", "stories",
                                          "dedup"}


def seed_articles() -> list:
    articles = []
    for raw in read_articles([SEEDS], ReadReport(), ""):
        raw["published_at"] = "2025-03-28T10:00:00Z"
        articles.append(parse_article(raw["id"].encode(), orjson.dumps(raw), 1 << 20))
    return articles


def without_timings(analysed: AnalysedArticle) -> AnalysedArticle:
    return msgspec.structs.replace(analysed, timings_ms={})


def test_analyse_batch_gives_what_analyse_gives_one_by_one():
    articles = seed_articles()
    one_by_one = [analyse(a, 126, arrival=1_743_200_000.0) for a in articles]
    batched = analyse_batch(articles, 126, [1_743_200_000.0] * len(articles))
    assert [without_timings(a) for a in batched] == [without_timings(a) for a in one_by_one]
    for analysed in batched:
        assert set(analysed.timings_ms) == {"normalise", "language", "hashing", "passages", "entities",
                                               "stories"}


def test_a_failing_article_does_not_stop_the_others_in_its_batch(monkeypatch):
    articles = seed_articles()
    empty = parse_article(b"empty", orjson.dumps({"id": "empty", "title": "t", "body": "Advertisement"}), 1 << 20)
    poisoned = articles[1]
    expected = [analyse(a, 126, arrival=1_743_200_000.0) for a in articles]
    poisoned_body = expected[1].content.body
    real_tag = pipeline.tag_entities

    def tag(text: str, language: str):
        if text == poisoned_body:
            raise RuntimeError("tagger broke")
        return real_tag(text, language)

    monkeypatch.setattr(pipeline, "tag_entities", tag)
    batch = [articles[0], empty, poisoned, *articles[2:]]
    results = analyse_batch(batch, 126, [1_743_200_000.0] * len(batch))
    assert isinstance(results[1], StageError) and results[1].stage == "normalise"
    assert isinstance(results[2], StageError) and results[2].stage == "entities"
    assert isinstance(results[2].__cause__, RuntimeError)
    survivors = [results[0], *results[3:]]
    assert [without_timings(a) for a in survivors] == [without_timings(a) for a in [expected[0], *expected[2:]]]
    with pytest.raises(StageError, match="tagger broke"):
        analyse(poisoned, 126, arrival=1_743_200_000.0)
