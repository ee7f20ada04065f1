import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    (b"a1", orjson.dumps({"title": "x", "body": "y"}), "missing_id"),
    (None, good(), "null_key"),
    (b"other", good(), "key_mismatch"),
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
