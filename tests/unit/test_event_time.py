import math
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.stages.event_time import EventTime, parse_timestamp, resolve_event_time

T = datetime(2025, 3, 28, 10, 15, tzinfo=UTC).timestamp()  # 1743156900
DAY = datetime(2025, 3, 28, tzinfo=UTC).timestamp()
SKEW = 86400.0


@pytest.mark.parametrize("value,expected", [
    # ISO-8601 / RFC 3339 and variants
    ("2025-03-28T10:15:00Z", T),
    ("2025-03-28T10:15:00z", T),
    ("2025-03-28t10:15:00Z", T),
    ("2025-03-28T10:15:00+00:00", T),
    ("2025-03-28T12:15:00+02:00", T),
    ("2025-03-28T12:15:00+0200", T),
    ("2025-03-28T12:15:00+02", T),
    ("2025-03-28T05:15:00-05:00", T),
    ("2025-03-28T10:15:00", T),  # no zone = UTC
    ("2025-03-28 10:15:00", T),
    ("2025-03-28 10:15:00 UTC", T),
    ("2025-03-28T10:15", T),
    ("2025-03-28T10:15:00.5Z", T + 0.5),
    ("2025-03-28T10:15:00.250+00:00", T + 0.25),
    ("2025-03-28T10:15:00.123456789Z", T + 0.123456),
    ("2025-03-28T10:15:00,5Z", T + 0.5),
    ("20250328T101500Z", T),
    ("20250328T121500+0200", T),
    ("2025-03-28", DAY),
    ("20250328", DAY),
    ("2025/03/28", DAY),
    ("2025/3/28 10:15:00", T),
    ("2025-W13-5", DAY),
    ("  2025-03-28T10:15:00Z\n", T),
    # RFC 2822 / RSS
    ("Fri, 28 Mar 2025 10:15:00 GMT", T),
    ("Fri, 28 Mar 2025 10:15:00 +0000", T),
    ("Fri, 28 Mar 2025 12:15:00 +0200", T),
    ("28 Mar 2025 10:15:00 GMT", T),
    ("Fri, 28 Mar 2025 10:15 UT", T),
    ("Fri, 28 Mar 2025 06:15:00 EDT", T),
    ("Fri, 28 Mar 2025 05:15:00 EST", T),
    ("Fri, 28 Mar 2025 03:15:00 PDT", T),
    ("Fri, 28 Mar 2025 11:15:00 CET", T),
    ("Fri, 28 Mar 2025 12:15:00 CEST", T),
    ("Fri, 28 Mar 25 10:15:00 GMT", T),
    ("Friday, 28-Mar-25 10:15:00 GMT", T),
    ("Fri, 28 Mar 2025 10:15:00 +0000 (UTC)", T),
    ("Fri, 28 Mar 2025", DAY),
    ("28 Mar 2025", DAY),
    ("Fri, 28 Mar 2025 23:59:60 GMT", DAY + 86400),  # leap second
    # epochs
    (1743156900, T),
    (1743156900.5, T + 0.5),
    (1743156900123, T + 0.123),
    (1743156900123.0, T + 0.123),
    (1743156900123456, T + 0.123456),
    (1743156900123456789, T + 0.123456789),
    ("1743156900", T),
    (" 1743156900 ", T),
    ("1743156900.5", T + 0.5),
    ("1743156900123", T + 0.123),
    ("+1743156900", T),
    (0, 0.0),
    (-86400, -86400.0),
])
def test_accepted_formats(value, expected):
    assert parse_timestamp(value) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("value", [
    None, "", "   ", "yesterday", "now", "2025-13-45", "2025-02-30", "2025-03-28T25:00:00Z",
    "Fri, 45 Mar 2025 10:15:00 GMT", "Fri, 28 Foo 2025 10:15:00 GMT", "not a date at all",
    "x 2025/03/28", "2025-03-28T10:15:00+25:00", "1.2.3", "0x1F", "1e9", "--1",
    True, False, math.nan, math.inf, -math.inf, "nan", "inf",
    "0001-01-01", "1799-12-31T23:59:59Z", "0999-01-01", "99999-01-01", "10000-01-01",
    10**20, -(10**20), 10**400, 1e300, -1e300, "9" * 5000, "1" * 41,
    [], {}, b"2025-03-28",
])
def test_rejects(value):
    assert parse_timestamp(value) is None


def test_year_bounds():
    assert parse_timestamp("1800-01-01T00:00:00Z") == datetime(1800, 1, 1, tzinfo=UTC).timestamp()
    assert parse_timestamp("9999-12-31T23:59:59Z") == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    assert parse_timestamp("9999-12-31T23:59:59-01:00") is None  # year 10000 in UTC


def test_published_within_skew_is_used():
    et = resolve_event_time("2025-03-28T10:15:00Z", "2025-03-28T10:16:00Z", T + 120)
    assert et == EventTime(T, "published", None)
    assert et.to_dict() == {"value": "2025-03-28T10:15:00.000Z", "epoch": T, "source": "published",
                            "warning": None}
    # up to the skew ahead of ingestion is still believed
    assert resolve_event_time(T + SKEW, T, T).source == "published"


def test_future_published_is_clamped_to_ingestion_plus_skew():
    et = resolve_event_time("2099-01-01T00:00:00Z", "2025-03-28T10:15:00Z", T + 60)
    assert et.source == "clamped" and et.value == T + SKEW
    assert "'2099-01-01T00:00:00Z'" in et.warning and "clamped" in et.warning
    assert et.to_dict()["value"] == "2025-03-29T10:15:00.000Z"
    custom = resolve_event_time(T + 7200, None, T, max_future_skew_s=3600)
    assert custom.source == "clamped" and custom.value == T + 3600


def test_clamp_never_goes_past_the_wall_clock_plus_skew():
    # ingested_at itself a little in the future (allowed, within the skew): the clamp still
    # stops at arrival + skew, not ingested_at + skew
    et = resolve_event_time("2099-01-01", T + SKEW, T)
    assert et.source == "clamped" and et.value == T + SKEW
    et = resolve_event_time(T + 1.5 * SKEW, T + SKEW, T)
    assert et.source == "clamped" and et.value == T + SKEW


@pytest.mark.parametrize("published", ["yesterday", "2025-13-45", "garbage" * 50, math.nan, True, {"a": 1}])
def test_unparseable_published_falls_back_to_ingestion(published):
    et = resolve_event_time(published, "2025-03-28T10:15:00Z", T + 5)
    assert et.source == "ingested" and et.value == T
    assert et.warning.startswith("unparseable published_at: ")
    assert len(et.warning) < 130  # long input is truncated


def test_warning_quotes_the_input():
    assert resolve_event_time("yesterday", None, T).warning == "unparseable published_at: 'yesterday'"


@pytest.mark.parametrize("published", [None, "", "  "])
def test_missing_published(published):
    et = resolve_event_time(published, "2025-03-28T10:15:00Z", T + 5)
    assert et == EventTime(T, "ingested", "no published_at")


def test_no_times_at_all_is_arrival():
    assert resolve_event_time(None, None, T) == EventTime(T, "ingested", "no published_at")


def test_bad_ingested_at_falls_back_to_arrival_and_says_so():
    et = resolve_event_time(None, "tomorrow", T)
    assert et.value == T and et.source == "ingested"
    assert et.warning == "no published_at; unparseable ingested_at: 'tomorrow'; used arrival time"
    future = resolve_event_time(None, "2099-01-01T00:00:00Z", T)
    assert future.value == T and "ingested_at '2099-01-01T00:00:00Z' is later" in future.warning
    # a good published_at is still used, but the bad ingested_at is reported
    et = resolve_event_time("2025-03-28T10:00:00Z", "tomorrow", T)
    assert et.source == "published" and et.value == T - 900 and "ingested_at" in et.warning


def test_old_times_are_kept():
    et = resolve_event_time("1999-12-31T23:59:59Z", "2025-03-28T10:15:00Z", T)
    assert et.source == "published" and et.value == datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


def test_bad_arrival_or_skew_is_a_caller_bug():
    with pytest.raises(ValueError):
        resolve_event_time(None, None, math.nan)
    with pytest.raises(ValueError):
        resolve_event_time(None, None, T, max_future_skew_s=-1)


def test_to_dict_milliseconds():
    assert EventTime(T + 0.1239, "published", None).to_dict()["value"] == "2025-03-28T10:15:00.123Z"


# -- properties ---------------------------------------------------------------------------------

times_as_text = st.builds(
    lambda dt, fmt: dt.strftime(fmt),
    st.datetimes(min_value=datetime(1800, 1, 1), max_value=datetime(9999, 12, 30)),
    st.sampled_from(["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S.%f", "%a, %d %b %Y %H:%M:%S GMT",
                     "%Y-%m-%d", "%Y%m%dT%H%M%S+0130"]),
)
anything = st.one_of(
    st.none(), st.booleans(), st.text(max_size=60), st.text("0123456789.+-:TZ /,", max_size=30),
    st.integers(), st.floats(), times_as_text,
    st.floats(-1e19, 1e19), st.integers(-(10**19), 10**19),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
arrivals = st.floats(0, 4e9)  # 1970 .. 2096
skews = st.sampled_from([0.0, 1.0, 3600.0, 86400.0])


@settings(max_examples=1500, deadline=None)
@given(anything)
def test_parse_timestamp_never_raises_and_is_finite_in_range(value):
    result = parse_timestamp(value)
    assert result is None or (math.isfinite(result) and -5.4e9 < result < 2.6e11)


@settings(max_examples=300, deadline=None)
@given(times_as_text)
def test_generated_times_parse(text):
    assert parse_timestamp(text) is not None


@settings(max_examples=1500, deadline=None)
@given(anything, anything, arrivals, skews)
def test_resolve_never_raises_and_respects_the_horizon(published, ingested, arrival, skew):
    et = resolve_event_time(published, ingested, arrival, skew)
    assert math.isfinite(et.value) and et.value <= arrival + skew
    assert et.source in ("published", "ingested", "clamped")
    if et.source == "published":
        assert et.value == parse_timestamp(published)
        assert et.warning is None or "ingested_at" in et.warning
    else:
        assert et.warning  # fallback and clamp always say so
    if et.source == "clamped":
        assert parse_timestamp(published) > et.value
    d = et.to_dict()
    assert d["epoch"] == et.value and d["value"].endswith("Z") and d["source"] == et.source


# -- what validate lets through for the time fields ---------------------------------------------

def _raw(**times):
    import orjson
    return orjson.dumps({"id": "a1", "body": "Some body text.", **times})


@pytest.mark.parametrize("moment", ["2025-03-28T10:15:00Z", "yesterday", "2025-13-45", "", 1743156900,
                                    1743156900123, 1743156900.5, -1, None])
def test_validate_accepts_strings_and_numbers_even_unparseable(moment):
    from worker.stages.validate import parse_article
    article = parse_article(b"a1", _raw(published_at=moment, ingested_at=moment), 1 << 20)
    assert article.published_at == moment and article.ingested_at == moment


@pytest.mark.parametrize("moment", [True, False, {"t": 1}, [2025, 3, 28]])
@pytest.mark.parametrize("name", ["published_at", "ingested_at"])
def test_validate_rejects_booleans_and_structures(name, moment):
    from worker.stages.validate import InvalidArticle, parse_article
    with pytest.raises(InvalidArticle) as info:
        parse_article(b"a1", _raw(**{name: moment}), 1 << 20)
    assert info.value.reason == "wrong_type"


# --------------------------------------------------------------------------- #
# The date the page carries (issue 25): URL path, then a dateline             #
# --------------------------------------------------------------------------- #

SALLY = datetime(2020, 9, 16, tzinfo=UTC).timestamp()
MICHAEL = datetime(2018, 10, 10, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("url,expected", [
    ("https://www.example.com/2020/09/16/hurricane-sally-landfall.html", SALLY),
    ("https://www.example.com/news/2018-10-10/michael", MICHAEL),
    ("https://www.example.com/a/20181010/michael", MICHAEL),
    ("https://www.example.com/2018/10/10", MICHAEL),
    ("https://www.example.com/2020/13/40/not-a-date", None),
    ("https://www.example.com/story/12345678", None),
    ("https://www.example.com/search?d=2020/09/16/", None),  # the query is not the path
    ("https://2020.example.com/news/", None),
    ("", None), (None, None), (42, None),
])
def test_url_date(url, expected):
    from worker.stages.event_time import url_date
    assert url_date(url) == expected


@pytest.mark.parametrize("text,expected", [
    ("GULF SHORES, Ala., Sept. 16, 2020 (AP) — Hurricane Sally slammed ashore", SALLY),
    ("WASHINGTON, September 16, 2020 (AP) — The Senate voted", SALLY),
    ("LONDON, 10 October 2018 - Hurricane Michael", MICHAEL),
    ("MEXICO BEACH, Fla. 2018-10-10 — Michael", MICHAEL),
    ("The storm hit on Sept. 16, 2020 in the afternoon, officials said on Thursday.", None),  # not a dateline
    ("GULF SHORES, Ala. (AP) — Hurricane Sally hit on Sept. 16, 2020.", None),  # the date is after it
    ("LONDON, 31 February 2020 - nothing", None),
    ("", None), (None, None),
])
def test_dateline_date(text, expected):
    from worker.stages.event_time import dateline_date
    assert dateline_date(text) == expected


def test_a_missing_published_at_takes_the_url_date_then_the_dateline():
    arrival = T
    by_url = resolve_event_time(None, None, arrival, url="https://x.example/2020/09/16/sally",
                                text="MIAMI, Oct. 10, 2018 (AP) — Michael")
    assert (by_url.value, by_url.source) == (SALLY, "url")
    assert by_url.warning == "no published_at; date from the URL path"
    by_dateline = resolve_event_time("garbage", None, arrival, url="https://x.example/news/michael",
                                     text="MIAMI, Oct. 10, 2018 (AP) — Michael")
    assert (by_dateline.value, by_dateline.source) == (MICHAEL, "dateline")
    assert by_dateline.warning == "unparseable published_at: 'garbage'; date from the dateline"
    nothing = resolve_event_time(None, None, arrival, url="https://x.example/news/michael", text="No date here.")
    assert (nothing.value, nothing.source) == (arrival, "ingested")


def test_a_published_at_wins_and_a_future_page_date_is_not_used():
    published = resolve_event_time("2025-03-28T10:15:00Z", None, T, url="https://x.example/2020/09/16/a")
    assert (published.value, published.source) == (T, "published")
    future = resolve_event_time(None, None, SALLY, url="https://x.example/2030/01/01/a")
    assert (future.value, future.source) == (SALLY, "ingested")


def test_two_hurricanes_two_years_apart_keep_their_own_dates_through_analyse():
    import orjson

    from worker.pipeline import analyse
    from worker.stages.validate import parse_article

    def article(article_id: str, url: str):
        raw = {"id": article_id, "title": "Hurricane makes landfall", "url": url, "source": "t",
               "body": "The hurricane made landfall on the coast with winds of more than 100 mph on Wednesday."}
        return analyse(parse_article(article_id.encode(), orjson.dumps(raw), 1 << 20), 126, T)

    sally = article("a", "https://www.example.com/2020/09/16/hurricane-landfall.html")
    michael = article("b", "https://www.example.com/2018/10/10/hurricane-landfall.html")
    assert (sally.event_time.epoch, sally.event_time.source) == (SALLY, "url")
    assert (michael.event_time.epoch, michael.event_time.source) == (MICHAEL, "url")
