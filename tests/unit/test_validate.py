import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.stages.fields import parse_field_map
from worker.stages.ids import content_id, normalise_url, url_id
from worker.stages.validate import InvalidArticle, parse_article

CAP = 1024 * 1024


def good(**over):
    return orjson.dumps({"id": "a1", "title": "T", "body": "Some body text.", **over})


def test_metadata_nested_up_to_the_limit_is_kept():
    metadata = b'{"a":' * 63 + b"[1]" + b"}" * 63
    article = parse_article(b"a1", b'{"id":"a1","body":"b","metadata":' + metadata + b"}", CAP)
    assert article.metadata == orjson.loads(metadata)


def test_valid_article():
    article = parse_article(b"a1", good(), CAP)
    assert article.id == "a1" and article.body == "Some body text."


@pytest.mark.parametrize("key,value,reason", [
    (b"a1", None, "empty_message"),
    (b"a1", b"\xff\xfe not utf8", "invalid_utf8"),
    (b"a1", b"{not json", "invalid_json"),
    (b"a1", b"[1, 2]", "wrong_type"),
    (b"a1", orjson.dumps({"id": " ", "body": "y"}), "missing_id"),
    (b"a1", orjson.dumps({"id": ["a1"], "body": "y"}), "missing_id"),
    (b"a1", orjson.dumps({"id": 1.5, "body": "y"}), "missing_id"),
    (b"other", good(), "key_mismatch"),
    (b"\xff\xfe", orjson.dumps({"body": "no id, and a key that is no text"}), "key_mismatch"),
    (b"a1", orjson.dumps({"title": "no text at all"}), "wrong_type"),
    (b"a1", orjson.dumps({"id": "a1", "html": "<p>x</p>\u0000"}), "invalid_text"),
    (b"a1", good(body=""), "empty_body"),
    (b"a1", good(body="   \n "), "empty_body"),
    (b"a1", good(body=42), "wrong_type"),
    (b"a1", good(title=["x"]), "wrong_type"),
    (b"a1", good(metadata="x"), "wrong_type"),
    (b"a1", good(body="x\x00y"), "invalid_text"),
    (b"a1", good(body="x" * (CAP + 1)), "too_large"),
    (b"a1", b'{"id":"a1","body":"b","metadata":' + b'{"a":' * 65 + b"1" + b"}" * 66, "too_deep"),
    (b"a1", b'{"id":"a1","body":"b","metadata":{"a":' + b"[" * 900 + b"]" * 900 + b"}}", "too_deep"),
])
def test_invalid_inputs_have_reasons(key, value, reason):
    with pytest.raises(InvalidArticle) as info:
        parse_article(key, value, CAP)
    assert info.value.reason == reason


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.binary(max_size=64)), st.one_of(st.none(), st.binary(max_size=512)))
def test_arbitrary_bytes_never_raise_anything_but_invalid_article(key, value):
    try:
        parse_article(key, value, CAP)
    except InvalidArticle as exc:
        assert exc.reason


# -- keys are optional; an article without an id gets one -------------------------------------

def test_no_key_takes_the_id_from_the_value():
    article = parse_article(None, good(), CAP)
    assert (article.id, article.id_source) == ("a1", "sent")
    assert parse_article(b"", good(), CAP).id == "a1"  # an empty key is no key (kcat -K)


def test_no_id_takes_the_key():
    article = parse_article(b"k-7", orjson.dumps({"body": "Some body text."}), CAP)
    assert (article.id, article.id_source) == ("k-7", "key")


def test_integer_id_is_its_decimal_text():
    article = parse_article(b"8863", orjson.dumps({"id": 8863, "body": "Some body text."}), CAP)
    assert (article.id, article.id_source) == ("8863", "sent")


def test_no_key_no_id_derives_the_id_from_the_url_else_the_content():
    by_url = orjson.dumps({"body": "Text.", "url": "https://www.Example.com/a/1/?utm_source=rss&b=2&a=1#top"})
    same_page = orjson.dumps({"body": "Other text.", "url": "http://example.com/a/1?a=1&b=2"})
    first, again, other = (parse_article(None, v, CAP) for v in (by_url, by_url, same_page))
    assert first.id_source == "url" and first.id == again.id == other.id
    assert first.id == url_id("example.com/a/1?a=1&b=2")
    no_url = orjson.dumps({"title": "T", "body": "Some  body text.", "source": "Example.com"})
    article = parse_article(None, no_url, CAP)
    assert article.id_source == "content"
    assert article.id == content_id("example.com", "T", "Some body text.")  # the seeder's rule
    assert parse_article(None, no_url, CAP).id == article.id  # a redelivery: the same id


def test_a_derived_id_claim_is_kept_only_when_true():
    value = {"body": "Some body text.", "url": "https://example.com/x"}
    derived = parse_article(None, orjson.dumps(value), CAP)
    sent_back = parse_article(derived.id.encode(), orjson.dumps({**value, "id": derived.id, "id_source": "url"}), CAP)
    assert sent_back.id_source == "url"
    lie = parse_article(None, orjson.dumps({**value, "id": "mine", "id_source": "url"}), CAP)
    assert lie.id_source == "sent"


@pytest.mark.parametrize("url,normalised", [
    ("https://www.example.com/a/b/", "example.com/a/b"),
    ("HTTP://Example.COM:80/a%7eb?x=1&utm_medium=x&fbclid=1#frag", "example.com/a~b?x=1"),
    ("https://example.com:8443/caf\u00e9", "example.com:8443/caf%C3%A9"),
    ("https://example.com/caf%c3%a9", "example.com/caf%C3%A9"),
    ("https://example.com", "example.com"),
    ("ftp://example.com/a", None), ("/relative/path", None), ("not a url", None), ("http://[::1", None),
])
def test_url_normalisation(url, normalised):
    assert normalise_url(url) == normalised


def test_input_field_map_and_aliases_in_parse():
    record = orjson.dumps({"content": {"rendered": "<p>One paragraph of text.</p><p>Another.</p>"},
                           "meta": {"date": "2025-03-28"}, "link": "https://example.com/p/1", "extra": [1]})
    article = parse_article(None, record, CAP, parse_field_map("html=content.rendered,published_at=meta.date"))
    assert article.html.startswith("<p>") and article.published_at == "2025-03-28"
    assert article.url == "https://example.com/p/1" and article.source == "example.com"
    assert article.metadata == {"extra": [1]}  # what the map took left its objects (emptied ones went)
