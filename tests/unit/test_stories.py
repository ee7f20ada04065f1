"""Tests for worker.stages.stories (story clusters)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.stages import stories
from worker.stages.stories import (
    StoryAssignment,
    StoryIndex,
    StoryRecord,
    extract_dates,
    extract_numbers,
    features,
    story_features,
)

T0 = datetime(2025, 3, 27, 12, tzinfo=UTC).timestamp()
DAY = 86400.0

# One event told in three languages, another event with the same hub entities.
MURMANSK_EN = ("Putin said in Murmansk on March 27 that North Korea could help end the war. "
               "About 12,000 North Korean soldiers were sent to Russia.")
MURMANSK_DE = ("Putin sagte am 27. März in Murmansk, Nordkorea könne helfen. "
               "Rund 12.000 nordkoreanische Soldaten wurden nach Russland geschickt.")
MURMANSK_JA = "プーチン大統領は3月27日、ムルマンスクで北朝鮮の協力に言及した。約1万2000人の兵士が派遣された。"
MURMANSK_IDS = {"person:vladimir-putin": 3, "city:524305": 1, "country:KP": 2, "country:RU": 1}
MURMANSK_IDS_JA = {"person:vladimir-putin": 1, "country:KP": 1}  # the ja gazetteer lacks Murmansk

KAZAN_EN = ("Putin hosted the BRICS summit in Kazan on October 24, where Xi Jinping and Narendra Modi "
            "spoke. At least 3,000 North Korean troops were reported in Russia.")
KAZAN_IDS = {"person:vladimir-putin": 2, "city:551487": 1, "org:brics": 1, "person:xi-jinping": 1,
             "person:narendra-modi": 1, "country:KP": 1, "country:RU": 1}


# --------------------------------------------------------------------------- #
# Feature extraction                                                          #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("text, value", [
    ("12,000 troops", "num:12000"),
    ("12.000 Soldaten", "num:12000"),
    ("12 000 soldats", "num:12000"),
    ("12\u00a0000 soldats", "num:12000"),
    ("1万2000人", "num:12000"),
    ("1.2万人", "num:12000"),
    ("1만2000명", "num:12000"),
    ("3천 명", "num:3000"),
    ("3,75 Prozent", "num:3.75"),
    ("3.75 percent", "num:3.75"),
    ("41.1%", "num:41.1"),
    ("マグニチュードは7.6で", "num:7.6"),
    ("約1000キロ", "num:1000"),
    ("in 2019 and", "year:2019"),
    ("2024年", "year:2024"),
])
def test_numbers_are_normalised_across_notations(text: str, value: str) -> None:
    assert value in extract_numbers(text), extract_numbers(text)


def test_small_integers_model_names_and_clock_times_are_not_quantities() -> None:
    assert extract_numbers("3 people, the F35 and A320, Covid19") == set()
    feats = story_features([], "at 2:55 p.m. and 14:55, 午後2時55分, 오후 2시 55분")
    assert not any(f.startswith("num:") for f in feats), feats


@pytest.mark.parametrize("text", [
    "March 27", "on Mar. 27th,", "27 March 2025", "27. März", "le 27 mars", "el 27 de marzo",
    "il 27 marzo", "27 марта", "27 березня", "3月27日", "3월 27일", "2025-03-27", "27.03.2025",
])
def test_dates_are_normalised_across_languages(text: str) -> None:
    assert extract_dates(text)[0] == {"date:03-27"}, text


def test_day_only_dates_take_month_from_event_time() -> None:
    # 13日 in an article published on 13 September -> 09-13; 30日 published on 2 October -> 09-30
    sept13 = datetime(2023, 9, 13, 9, tzinfo=UTC).timestamp()
    oct2 = datetime(2023, 10, 2, 9, tzinfo=UTC).timestamp()
    assert extract_dates("両首脳は13日、会談した", sept13)[0] == {"date:09-13"}
    assert extract_dates("北朝鮮は30日、発射した", oct2)[0] == {"date:09-30"}
    assert extract_dates("합참은 14일 밝혔다", datetime(2024, 1, 14, tzinfo=UTC).timestamp())[0] == {"date:01-14"}
    assert extract_dates("両首脳は13日、会談した")[0] == set()  # no event time: no guess


def test_dates_are_not_counted_as_numbers() -> None:
    feats = story_features([], "On March 27, 2025 he spoke.")
    assert "date:03-27" in feats and "num:27" not in feats


def test_features_weights_and_cap() -> None:
    feats = story_features({"person:a": 4, "country:US": 1, "norp:russian": 1}, "12,000 on March 27")
    assert feats["person:a"] > stories.KIND_WEIGHT["person"]  # mentioned 4 times
    assert feats["country:US"] == stories.KIND_WEIGHT["country"]
    assert feats["date:03-27"] == stories.KIND_WEIGHT["date"]
    many = story_features([f"person:p{i}" for i in range(200)], "")
    assert len(many) == stories.MAX_ARTICLE_FEATURES
    assert story_features(["person:a", "person:a"], "") == story_features({"person:a": 2}, "")


@settings(max_examples=200, deadline=None)
@given(st.text(), st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_extraction_never_fails(text: str, when: float) -> None:
    feats = story_features([], text, when)
    assert len(feats) <= stories.MAX_ARTICLE_FEATURES
    assert all(w > 0 for w in feats.values())


# --------------------------------------------------------------------------- #
# Assignment                                                                  #
# --------------------------------------------------------------------------- #


def test_translations_join_one_story_other_event_does_not() -> None:
    index = StoryIndex()
    en = index.assign("en", MURMANSK_IDS, MURMANSK_EN, T0)
    de = index.assign("de", MURMANSK_IDS, MURMANSK_DE, T0 + 3600)
    ja = index.assign("ja", MURMANSK_IDS_JA, MURMANSK_JA, T0 + 7200)
    kazan = index.assign("kazan", KAZAN_IDS, KAZAN_EN, T0 + 7300)
    assert en.matched is None and en.story_id == stories.new_story_id("en")
    assert de.story_id == en.story_id and de.matched == "en" and de.score >= index.threshold
    assert ja.story_id == en.story_id, ja
    assert kazan.story_id not in {en.story_id} and kazan.matched is None
    assert kazan.score < index.threshold


def test_same_content_outside_the_window_is_a_new_story() -> None:
    index = StoryIndex(window_s=3 * DAY)
    first = index.assign("a", MURMANSK_IDS, MURMANSK_EN, T0)
    later = index.assign("b", MURMANSK_IDS, MURMANSK_DE, T0 + 5 * DAY)
    assert later.story_id != first.story_id


def test_one_shared_hub_entity_is_not_enough() -> None:
    index = StoryIndex()
    a = index.assign("a", {"country:US": 1, "person:x": 1}, "", T0)
    b = index.assign("b", {"country:US": 1, "person:y": 1}, "", T0)
    assert a.story_id != b.story_id


def test_article_without_features_starts_its_own_story() -> None:
    index = StoryIndex()
    a = index.assign("a", [], "", T0)
    b = index.assign("b", [], "", T0)
    assert a == StoryAssignment(stories.new_story_id("a"), 0.0, None)
    assert b.story_id == stories.new_story_id("b")


def test_redelivery_gets_the_first_answer() -> None:
    index = StoryIndex()
    first = index.assign("en", MURMANSK_IDS, MURMANSK_EN, T0)
    index.assign("de", MURMANSK_IDS, MURMANSK_DE, T0)
    again = index.assign("en", KAZAN_IDS, KAZAN_EN, T0 + DAY)  # same id, whatever the content now
    assert again == first
    assert len(index) == 1


def test_deterministic() -> None:
    def run() -> list[StoryAssignment]:
        index = StoryIndex()
        return [index.assign(f"a{i}", ids, text, T0 + i) for i, (ids, text) in enumerate(
            [(MURMANSK_IDS, MURMANSK_EN), (KAZAN_IDS, KAZAN_EN), (MURMANSK_IDS, MURMANSK_DE),
             (MURMANSK_IDS_JA, MURMANSK_JA)])]
    assert run() == run()


def test_to_dict() -> None:
    a = StoryAssignment("story-1", 0.123456, "x")
    assert a.to_dict() == {"story_id": "story-1", "score": 0.1235, "matched": "x", "merged_stories": []}


# --------------------------------------------------------------------------- #
# Persistence                                                                 #
# --------------------------------------------------------------------------- #


def test_record_round_trip() -> None:
    index = StoryIndex()
    index.assign("en", MURMANSK_IDS, MURMANSK_EN, T0)
    rec = index.get("en")
    assert rec is not None
    assert StoryRecord.from_dict(orjson.loads(orjson.dumps(rec.to_dict()))) == rec


def test_snapshot_and_replay_give_the_same_decisions() -> None:
    live = StoryIndex()
    live.assign("en", MURMANSK_IDS, MURMANSK_EN, T0)
    live.assign("kazan", KAZAN_IDS, KAZAN_EN, T0 + 60)
    restored = StoryIndex.from_bytes(live.to_bytes())
    replayed = StoryIndex()
    for aid in ("en", "kazan"):
        rec = live.get(aid)
        assert rec is not None
        replayed.load(rec)
        replayed.load(rec)  # loading twice is harmless
    first = live.get("en")
    assert first is not None
    for index in (live, restored, replayed):
        assert index.assign("en", {}, "", T0) == first.assignment  # redelivery
    outcomes = {repr(ix.assign("de", MURMANSK_IDS, MURMANSK_DE, T0 + 120)) for ix in (live, restored, replayed)}
    assert len(outcomes) == 1, outcomes


# --------------------------------------------------------------------------- #
# Bounded state and cost                                                      #
# --------------------------------------------------------------------------- #


def test_eviction_forgets_stories_by_arrival_age_not_event_time() -> None:
    index = StoryIndex(window_s=DAY, retention_s=DAY)
    index.assign("old", MURMANSK_IDS, MURMANSK_EN, T0 + 400 * DAY, arrival=T0)  # a far-future date
    index.assign("new", KAZAN_IDS, KAZAN_EN, T0 - 400 * DAY, arrival=T0 + 0.5 * DAY)
    assert index.evict_expired(now=T0 + 0.9 * DAY) == []
    assert index.evict_expired(now=T0 + 1.2 * DAY) == ["old"]
    assert index.get("old") is None and index.get("new") is not None
    assert len(index) == 1
    assert not any(stories.new_story_id("old") in post for post in index._postings.values())


def test_budget_evicts_the_stories_updated_longest_ago() -> None:
    index = StoryIndex(max_records=1)
    index.assign("old", MURMANSK_IDS, MURMANSK_EN, T0, arrival=T0)
    index.assign("new", KAZAN_IDS, KAZAN_EN, T0, arrival=T0 + 1)
    assert index.evict_expired(now=T0 + 2) == ["old"]
    assert index.get("new") is not None


def test_postings_and_story_size_are_capped() -> None:
    index = StoryIndex()
    for i in range(stories.MAX_POSTINGS * 3):
        # every article shares the hub country and has its own people: one story each
        index.assign(f"a{i}", {"country:US": 1, f"person:p{i}": 1, f"person:q{i}": 1}, "", T0 + i)
    assert len(index) == stories.MAX_POSTINGS * 3
    assert all(len(post) <= stories.MAX_POSTINGS for post in index._postings.values())
    big = StoryIndex(threshold=0.0)
    for i in range(40):
        big.assign(f"b{i}", {"person:core": 3, **{f"person:x{i}-{j}": 1 for j in range(10)}}, "", T0)
    (story,) = big._stories.values()
    assert story.size == 40
    assert len(story.centroid) <= stories.MAX_STORY_FEATURES
    assert len(story.members) <= stories.MAX_MEMBERS


def test_idf_window_is_bounded() -> None:
    index = StoryIndex(idf_window=50)
    for i in range(200):
        index.assign(f"a{i}", {f"person:p{i}": 1}, "", T0 + i)
    assert len(index._recent) == 50
    assert len(index._df) == 50


def test_seeds_in_file_order_form_the_expected_stories() -> None:
    """The seeds as the seeder sends them (sorted files, one ingestion time): 000/001/002/004
    one story, 003 another. tests/unit/test_quality.py checks all 120 arrival orders."""
    from worker.quality.storyeval import SAME_TIME, prepared

    seeds = [p for p in prepared() if p.article.id.startswith("seed-")]
    index = StoryIndex()
    out = {p.article.id: index.assign(p.article.id, p.entities, p.text, SAME_TIME) for p in seeds}
    murmansk = {out[i].story_id for i in ("seed-000", "seed-001", "seed-002", "seed-004")}
    assert len(murmansk) == 1
    assert out["seed-003"].story_id not in murmansk
    assert all(a.score >= index.threshold for i, a in out.items() if i not in ("seed-000", "seed-003"))


_DATE_ALPHABET = st.sampled_from(list("March Mar. Sept. sept 27th 3rd 1 05 12 2024 _x\u00a0\n.,-:日月 März mai"))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_DATE_ALPHABET, st.sampled_from(["March 27", "Mar. 3rd", "x2May 5", "_June 1",
                                                            "May 5 6", "April 30.5", "Juli 4,"])),
                max_size=30).map("".join))
def test_month_day_scan_matches_the_reference_pattern(text):
    """The digits-first scan gives exactly what `_MONTH_DAY.finditer` gives."""
    expected = [(m.group(1), m.group(2), m.group(3), m.span()) for m in features._MONTH_DAY.finditer(text)]
    assert list(features._month_day_matches(text)) == expected


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_DATE_ALPHABET, st.sampled_from(["2024-03-27", "27.03.2024", "3月27日", "27日", "12일",
                                                            "1er janvier", "27 de marzo", "112月", "4 5 6",
                                                            "x１２", "٣٤", "12,000.5", "3万2000", "14h30",
                                                            "16時10分", "오후 2시 55분", "1.234.567"])),
                max_size=30).map("".join))
def test_digit_scan_matches_finditer_for_every_digit_pattern(text):
    """Each pattern tried only where `_digit_positions` says it can start (the first digit of a
    run) finds exactly what its finditer finds; _CJK_DATE is tried at every digit."""
    starts = features._digit_positions(text)
    every = features._all_digit_positions(text)
    for pattern in (features._DAY_MONTH, features._CJK_DATE, features._CJK_DAY, features._ISO_DATE,
                    features._DOT_DATE, features._DAY_AFTER_SPACE, features._TIME, features._NUMBER):
        positions = every if pattern is features._CJK_DATE else starts
        expected = [m.span() + m.groups() for m in pattern.finditer(text)]
        assert [m.span() + m.groups() for m in features._finditer_at(pattern, text, positions)] == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_DATE_ALPHABET, st.sampled_from(["2024-03-27", "27.03.2024", "3月27日", "27日", "x１２",
                                                            "12,000.5", "3万2000", "14h30", "16時10分", "2:55",
                                                            "٣٤", "1.234.567", " 12 March"])),
                max_size=30).map("".join))
def test_features_are_the_same_when_every_digit_is_tried(text):
    """Trying the digit patterns only at run starts changes no feature (after dates and times
    are blanked out, too)."""
    fast = stories.story_features({"country:FR": 1}, text, 1_711_500_000.0)
    original = features._digit_positions
    features._digit_positions = features._all_digit_positions
    try:
        every = stories.story_features({"country:FR": 1}, text, 1_711_500_000.0)
    finally:
        features._digit_positions = original
    assert fast == every
