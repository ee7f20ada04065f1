"""The composed pipeline in-process: seeds → enrichment, stories, redelivery, rebuild."""

from pathlib import Path

import orjson

from worker.pipeline import ArticleIndex, analyse, finish
from worker.sources import ReadReport, read_articles
from worker.stages.validate import parse_article

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def analysed_seeds(salt: str = "") -> list[dict]:
    out = []
    for raw in read_articles([SEEDS], ReadReport(), salt):
        raw["published_at"] = "2025-03-28T10:00:00Z"
        article = parse_article(raw["id"].encode(), orjson.dumps(raw), 1 << 20)
        out.append(analyse(article, 126))
    return out


def test_seeds_form_two_stories_and_redelivery_repeats_everything():
    index = ArticleIndex()
    seeds = analysed_seeds()
    decided = {a["metadata"]["file"][:3]: index.decide(a) for a in seeds}
    murmansk = {decided[k].story.story_id for k in ("000", "001", "002", "004")}
    assert len(murmansk) == 1 and decided["003"].story.story_id not in murmansk
    again = index.decide(seeds[2])
    assert again.redelivery and again.record == b""
    first = decided[seeds[2]["metadata"]["file"][:3]]
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
    for part in ("language", "hashes", "dedup", "story", "entities", "content", "timings_ms"):
        assert part in enriched
    assert set(enriched["timings_ms"]) == {"normalise", "language", "hashing", "entities", "stories", "dedup"}
