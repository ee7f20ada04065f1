"""The typed records encode to what topics/schemas/ describes, and decode back unchanged."""

from __future__ import annotations

from pathlib import Path

import msgspec
import orjson
import pytest

import topics
from tests.integration.helpers import schema_validator
from worker import records
from worker.io.sources import ReadReport, read_articles
from worker.pipeline import ArticleIndex, analyse, finish
from worker.stages.validate import parse_article

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def seeds(salt: str = "") -> list[records.AnalysedArticle]:
    out = []
    for raw in read_articles([SEEDS], ReadReport(), salt):
        out.append(analyse(parse_article(raw["id"].encode(), orjson.dumps(raw), 1 << 20), 126))
    return out


def errors(spec: topics.TopicSpec, data: bytes) -> list[str]:
    return [e.message for e in schema_validator(spec).iter_errors(orjson.loads(data))]


def test_a_funnel_batch_matches_its_schema_and_decodes_back_to_the_same_articles():
    analysed = seeds()
    data = records.encode(records.FunnelBatch(analysed))
    assert errors(topics.DEDUP_REQUESTS, data) == []
    assert records.decode_funnel_batch(data).articles == analysed
    # the agent joins already-encoded articles by hand; the same bytes decode the same
    joined = b'{"articles":[' + b",".join(records.encode(a) for a in analysed) + b"]}"
    assert records.decode_funnel_batch(joined).articles == analysed


def test_enriched_and_duplicate_messages_match_their_schemas():
    index = ArticleIndex()
    for article in seeds():
        enriched, event = finish(article, index.decide(article), 0.1)
        assert event is None and errors(topics.ENRICHED, records.encode(enriched)) == []
    copy = seeds(salt="again")[0]
    enriched, event = finish(copy, index.decide(copy), 0.1)
    assert event is not None and enriched.dedup["status"] == "exact_duplicate"
    assert errors(topics.ENRICHED, records.encode(enriched)) == []
    assert errors(topics.DUPLICATES, records.encode(event)) == []


def test_schema_1_articles_with_a_bare_epoch_event_time_still_decode():
    article = orjson.loads(records.encode(seeds()[0]))
    article.update(schema_version=1, event_time=1_743_156_000.0)
    (decoded,) = records.decode_funnel_batch(orjson.dumps({"articles": [article]})).articles
    assert decoded.event_epoch == 1_743_156_000.0


def test_a_malformed_article_is_refused_by_the_decoder_not_half_read():
    article = orjson.loads(records.encode(seeds()[0]))
    del article["hashes"]
    with pytest.raises(msgspec.ValidationError, match="hashes"):
        records.decode_funnel_batch(orjson.dumps({"articles": [article]}))


def test_the_table_record_is_versioned_and_reads_unversioned_records_as_version_1():
    data = records.encode_table_record({"id": "a", "t": 1.0}, None)
    record = records.decode_table_record(data)
    assert record.v == records.TABLE_RECORD_VERSION and record.dedup == {"id": "a", "t": 1.0}
    assert records.decode_table_record(b'{"dedup": null, "story": {"id": "b"}}').v == 1
