"""Shared passages (worker/stages/passages.py): fingerprints, the bounded PassageIndex, and the
syndication relation through the pipeline (issue 25)."""

from __future__ import annotations

import msgspec
import orjson

import topics
from tests.integration.helpers import schema_validator
from worker import records
from worker.pipeline import ArticleIndex, analyse, finish
from worker.quality.syndgen import generate
from worker.stages.hashing import shingles
from worker.stages.passages import (
    PassageIndex,
    PassageRecord,
    Passages,
    fold_sentence,
    passage_fingerprints,
    split_sentences,
)
from worker.stages.validate import parse_article

LONG = [
    "The city council voted on Tuesday to approve a new budget that raises spending on public transport by a fifth.",
    "The plan includes three new bus routes linking the northern suburbs with the central railway station.",
    "Council members argued for more than six hours before the final vote was taken late in the evening.",
    "Opponents said the budget relied on optimistic forecasts of tax revenue from new housing developments.",
    "The mayor said the investment was long overdue and would cut journey times for thousands of commuters.",
    "Construction work on the first of the new routes is expected to begin in the spring of next year.",
    "Business groups welcomed the decision but asked for more parking near the main shopping streets.",
    "The budget also sets aside money for repairing roads damaged during the harsh winter months.",
    "A final review by the regional government is required before the spending can be released to the city.",
    "Residents will be able to comment on the detailed route plans at public meetings in the coming weeks.",
    "Transport officials estimate that the new routes will carry twelve thousand passengers every working day.",
    "The council will publish the full budget documents on its website by the end of the month.",
]
STATEMENT = [
    "We have reviewed the incident carefully and taken immediate steps to protect our customers.",
    "Our engineers are working with the authorities to restore the service as quickly as possible.",
    "We apologise for the disruption this has caused to people across the region today.",
]
ADVISORY = [
    "An evacuation order is in effect for all areas south of the highway and east of the creek road.",
    "Residents under an evacuation order must leave immediately and follow the routes marked by crews.",
    "An evacuation center has opened at the county fairgrounds for residents and their animals.",
]


def passages(body: str) -> Passages:
    return passage_fingerprints(body)


def article(article_id: str, body: str, title: str = "Title", url: str = "https://example.org/a",
            published_at: str | None = "2025-03-28T10:00:00Z"):
    raw = {"id": article_id, "title": title, "body": body, "source": "test", "url": url, "published_at": published_at}
    return analyse(parse_article(article_id.encode(), orjson.dumps(raw), 1 << 20), 126)


def quoted(sentences: list[str], attribution: str) -> str:
    return "“" + " ".join(sentences).rstrip(".") + ",” " + attribution + "."


# -- fingerprints ------------------------------------------------------------------------------------


def test_sentences_of_eight_words_or_more_are_fingerprinted_once_each():
    body = "Short one here.\n\n" + LONG[0] + " " + LONG[1] + "\n\n" + LONG[0]
    p = passages(body)
    assert p.total == 4 and len(p.fingerprints) == 2  # the short one is not evidence; the repeat counts once
    assert p.sentences == (1, 2) and p.paragraphs == (1, 1)
    assert fold_sentence("Too short to count.") is None
    assert fold_sentence("The Council, in Brussels, VOTED  to approve the new budget today!") == \
        "the council in brussels voted to approve the new budget today"


def test_case_punctuation_and_a_wire_dateline_do_not_change_a_fingerprint():
    a = passages("GULF SHORES, Ala. (AP) — " + LONG[0])
    b = passages(LONG[0].upper().replace(",", ""))
    c = passages("LONDON (Reuters) - " + LONG[0])
    assert a.fingerprints == b.fingerprints == c.fingerprints


def test_abbreviations_and_times_do_not_end_a_sentence():
    assert split_sentences("The storm hit at 4:45 a.m. with winds of 105 mph. It moved on.") == [
        "The storm hit at 4:45 a.m. with winds of 105 mph.", "It moved on."]


def test_a_quotation_over_several_sentences_is_quoted_in_each():
    body = quoted(STATEMENT, "the company said in a statement") + " " + LONG[0]
    p = passages(body)
    assert p.quoted == (0, 1, 2) and len(p.fingerprints) == 4


def test_text_without_spaces_is_fingerprinted_by_characters():
    p = passages("東京都は火曜日に新しい予算案を承認し、公共交通への支出を大幅に増やした。短い。")
    assert len(p.fingerprints) == 1 and p.total == 2


# -- the relation ------------------------------------------------------------------------------------


def index() -> PassageIndex:
    return PassageIndex(retention_s=86400.0, max_articles=100)


def test_a_short_excerpt_is_a_reprint_whatever_its_jaccard():
    """Containment-aware candidates: the first paragraph of a long article under the outlet's own
    intro has a low Jaccard (LSH would rarely make it a candidate); the postings find it."""
    original = "\n\n".join(" ".join(LONG[i:i + 3]) for i in range(0, 12, 3))
    excerpt = "Our partners have filed this report from the council chamber this evening for readers.\n\n" + \
        " ".join(LONG[:3])
    a, b = set(shingles(original)), set(shingles(excerpt))
    assert len(a & b) / len(a | b) < 0.3
    idx = index()
    assert idx.decide("orig", passages(original), 1.0).relation is None
    result = idx.decide("copy", passages(excerpt), 2.0)
    assert (result.relation, result.of, result.reason) == ("reprint_of", "orig", "shared_passages")
    assert result.evidence == 3 and result.sentences == (1, 2, 3) and result.other_sentences == (0, 1, 2)
    assert result.share == 0.75 and result.share_of_other == 0.25


def test_the_longer_version_shares_passages_with_the_short_one():
    idx = index()
    idx.decide("short", passages(" ".join(LONG[:3])), 1.0)
    result = idx.decide("long", passages("\n\n".join([" ".join(LONG[:6]), " ".join(LONG[6:])])), 2.0)
    assert (result.relation, result.of) == ("shares_passages_with", "short")


def test_two_articles_quoting_the_same_statement_are_not_reprints():
    idx = index()
    first = "\n\n".join([LONG[0] + " " + LONG[1], quoted(STATEMENT, "the company said")])
    second = "\n\n".join([LONG[6] + " " + LONG[7], quoted(STATEMENT, "a spokesperson told reporters")])
    idx.decide("a", passages(first), 1.0)
    result = idx.decide("b", passages(second), 2.0)
    assert result.relation is None and result.reason == "quoted_passages_ignored"
    assert result.shared == 2 and result.quoted_ignored == 2 and result.evidence == 0


def test_an_advisory_that_unrelated_articles_carry_becomes_common():
    idx = index()
    block = " ".join(ADVISORY)
    bodies = ["\n\n".join([LONG[0] + " " + LONG[1], block, LONG[2]]),
              "\n\n".join([LONG[5] + " " + LONG[6], block, LONG[7] + " " + LONG[8]]),
              "\n\n".join([LONG[9] + " " + LONG[10], block, LONG[11]]),
              "\n\n".join([STATEMENT[0], block])]
    results = [idx.decide(f"a{i}", passages(b), float(i)) for i, b in enumerate(bodies)]
    assert [r.relation for r in results] == [None] * 4
    assert results[1].reason == "one_block_small_share"  # one paragraph, less than 3/4 of both texts
    assert results[2].reason == "common_passages_ignored" and results[2].common_ignored == 3
    # Half of the last article is the advisory: without the other carriers it would be a reprint.
    assert results[3].reason == "common_passages_ignored"


def test_a_copy_carries_its_source_s_quotes_and_is_still_a_reprint():
    idx = index()
    source = "\n\n".join([" ".join(LONG[:2]), quoted(STATEMENT, "the company said"), " ".join(LONG[2:4])])
    idx.decide("wire", passages(source), 1.0)
    copy = "\n\n".join([" ".join(LONG[:2]), quoted(STATEMENT, "the company said")])
    result = idx.decide("copy", passages(copy), 2.0)
    assert result.relation == "reprint_of" and result.evidence == 5  # its last sentence has the same attribution


def test_one_shared_sentence_is_not_enough():
    idx = index()
    idx.decide("a", passages(" ".join(LONG[:4])), 1.0)
    result = idx.decide("b", passages(LONG[0] + " " + " ".join(STATEMENT)), 2.0)
    assert (result.relation, result.reason) == (None, "too_few_shared_passages")
    assert idx.decide("c", passages("Nothing in common with anything else that was indexed here today."),
                      3.0).reason == "no_shared_passages"
    assert idx.decide("d", passages("Too short."), 4.0).reason == "no_passages"


# -- state ---------------------------------------------------------------------------------------------


def test_redelivery_answers_the_stored_result():
    idx = index()
    idx.decide("orig", passages(" ".join(LONG[:6])), 1.0)
    first = idx.decide("copy", passages(" ".join(LONG[:3])), 2.0)
    assert idx.decide("copy", passages("Anything else entirely, which would not be a copy of it."), 3.0) == first
    assert len(idx) == 2


def test_retention_and_budget_evict_and_clean_the_postings():
    idx = PassageIndex(retention_s=10.0, max_articles=2)
    for i in range(3):
        idx.decide(f"a{i}", passages(" ".join(LONG[i * 3:i * 3 + 3])), float(i))
    assert idx.evict_expired(2.0) == ["a0"]  # over the budget: the oldest arrival leaves
    assert idx.evict_expired(12.5) == ["a1", "a2"]  # past the retention since arrival
    assert len(idx) == 0 and not idx._postings and not idx._overflow
    assert idx.decide("again", passages(" ".join(LONG[:3])), 13.0).reason == "no_shared_passages"


def test_postings_are_bounded_and_a_full_posting_is_boilerplate():
    idx = PassageIndex(retention_s=1e9, max_articles=1000, max_postings=4)
    furniture = "This material may not be published, broadcast, rewritten or redistributed without permission."
    for i in range(6):
        idx.decide(f"a{i}", passages(LONG[i] + " " + LONG[i + 6] + "\n\n" + furniture), float(i))
    assert all(isinstance(p, str) or len(p) <= 4 for p in idx._postings.values())
    assert sum(idx._overflow.values()) == 2
    result = idx.decide("new", passages(STATEMENT[1] + "\n\n" + furniture + "\n\n" + STATEMENT[0]), 10.0)
    assert result.relation is None and result.common_ignored == 1


def test_the_index_rebuilt_from_its_records_decides_alike():
    docs = generate()[:30]
    live, stored = index(), []
    for i, d in enumerate(docs):
        live.decide(d.id, passages(d.body), float(i))
        record = live.get(d.id)
        assert record is not None
        stored.append(orjson.loads(orjson.dumps(record.to_dict())))
    rebuilt = index()
    for d in stored:
        rebuilt.load(PassageRecord.from_dict(d))
    for d in generate()[30:60]:
        assert live.decide(d.id, passages(d.body), 100.0) == rebuilt.decide(d.id, passages(d.body), 100.0)


# -- through the pipeline --------------------------------------------------------------------------------


OWN = ["Readers in the northern suburbs have waited years for a direct connection to the city centre.",
       "Our reporter spent the evening at the council meeting and spoke to several of the local residents.",
       "Many of them said that they would believe in the new buses only when they could finally ride them."]


def wire_and_copy():
    """A copy with half of its sentences from the wire, across two of the wire's paragraphs: a
    reprint by its passages, below the dedup threshold by its shingles (containment ~0.5)."""
    wire = article("wire", "\n\n".join(" ".join(LONG[i:i + 3]) for i in range(0, 12, 3)))
    copy = article("copy", " ".join(OWN) + "\n\n" + " ".join(LONG[2:5]))
    return wire, copy


def test_the_article_index_persists_rebuilds_and_evicts_the_passages():
    wire, copy = wire_and_copy()
    idx = ArticleIndex(retention_s=100.0)
    idx.decide(wire, now=1000.0)
    decided = idx.decide(copy, now=1001.0)
    assert decided.syndication is not None and decided.syndication.relation == "reprint_of"
    assert decided.verdict.status == "unique"  # not a near-duplicate of the whole text
    record = records.decode_table_record(decided.record)
    assert record.passages is not None and record.passages["r"]["of"] == "wire"

    rebuilt = ArticleIndex(retention_s=100.0)
    rebuilt.rebuild([idx._record("wire"), decided.record])
    again = rebuilt.decide(copy, now=1002.0)
    assert again.redelivery and again.syndication == decided.syndication
    assert len(rebuilt.passages) == 2

    eviction = idx.evict_expired(now=1200.0)
    assert sorted(eviction.delete) == ["copy", "wire"] and len(idx.passages) == 0


def test_a_table_record_without_passages_still_loads():
    old = msgspec.json.encode({"dedup": None, "story": {"id": "x", "t": 1.0, "a": 5.0}, "v": 2})
    assert records.decode_table_record(old).passages is None
    wire = article("wire", " ".join(LONG[:6]))
    idx = ArticleIndex()
    data = idx.decide(wire, now=10.0).record
    legacy = records.decode_table_record(data)
    without = records.encode(msgspec.structs.replace(legacy, passages=None))
    rebuilt = ArticleIndex()
    rebuilt.rebuild([without])
    assert len(rebuilt.passages) == 0 and len(rebuilt.dedup) == 1


def test_a_reprint_gets_a_syndication_event_that_matches_the_schema():
    wire, copy = wire_and_copy()
    idx = ArticleIndex()
    enriched, event = finish(wire, idx.decide(wire), 0.1)
    assert event is None and enriched.syndication is not None and enriched.syndication["relation"] is None
    enriched, event = finish(copy, idx.decide(copy), 0.1)
    assert event is not None and event.status == "reprint_of" and event.duplicate_of == "wire"
    assert enriched.dedup["status"] == "unique" and enriched.syndication["of"] == "wire"
    for spec, message in ((topics.ENRICHED, enriched), (topics.DUPLICATES, event),
                          (topics.DEDUP_REQUESTS, records.FunnelBatch([copy]))):
        errors = [e.message for e in schema_validator(spec).iter_errors(orjson.loads(records.encode(message)))]
        assert errors == []
