"""Stage 0: turn the bytes of an `articles.raw` message into an `Article`, or say why not.

Everything that can be wrong with input is caught here, before any other stage runs, so the
worker can dead-letter it with a precise reason instead of crashing or dropping it. The record
may use other producers' field names (stages/fields.py); the message key is optional, and an
article without an id gets one derived from its URL or content (stages/ids.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from worker.stages.fields import ALIASES, NO_FIELD_MAP, FieldError, FieldMap, map_fields
from worker.stages.ids import DERIVED, IdSource, content_id, derive_id, normalise_url, url_id


class InvalidArticle(ValueError):
    """Input that can never be processed: dead-letter it with `reason` (a short, stable code)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Article:
    id: str
    title: str
    body: str  # "" when the record carried only `html` (stages/extract.py fills it)
    source: str = ""
    url: str = ""
    published_at: str | int | float | None = None  # as sent; see stages.event_time for the reading
    ingested_at: str | int | float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Where the id came from: "sent" (the record's id), "key" (the message key: the record had
    # no id), "url" / "content" (derived by stages/ids.py: the record had neither).
    id_source: IdSource = "sent"
    html: str = ""  # the page, when the record carried one (`html`, `raw_html`, ...)
    body_format: str = "text"  # "html": body was extracted from HTML (stages/extract.py)

    def to_dict(self) -> dict[str, Any]:
        """The article as an `articles.raw` record (what the seeder sends)."""
        out = {"id": self.id, "title": self.title, "body": self.body, "source": self.source,
               "url": self.url, "published_at": self.published_at,
               "ingested_at": self.ingested_at, "metadata": self.metadata}
        if self.html:
            out["html"] = self.html
        if self.id_source in DERIVED:
            out["id_source"] = self.id_source
        return out


# Deeper metadata is refused here rather than by a JSON codec further on (each has its own
# recursion limit, and an article that passed validation must reach an output).
MAX_METADATA_DEPTH = 64


def parse_article(key: bytes | None, value: bytes | None, max_bytes: int,
                  field_map: FieldMap = NO_FIELD_MAP) -> Article:
    """Validate one raw message. Raises `InvalidArticle` with a reason code."""
    if value is None:
        raise InvalidArticle("empty_message", "message has no value (tombstone or null)")
    if len(value) > max_bytes:
        raise InvalidArticle("too_large", f"message is {len(value)} bytes, cap is {max_bytes}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArticle("invalid_utf8", f"value is not UTF-8: {exc}") from None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidArticle("invalid_json", f"value is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArticle("wrong_type", f"article must be a JSON object, got {type(data).__name__}")
    return article_from_record(data, key, field_map)


def article_from_record(data: dict[str, Any], key: bytes | None = None,
                        field_map: FieldMap = NO_FIELD_MAP) -> Article:
    """An article from a decoded record of any known shape (stages/fields.py), with its id:

    - the record's id (or an alias of it, `INPUT_FIELD_MAP` included): a message key, when
      there is one, must be the same (`key_mismatch`);
    - no id, but a message key: the key is the id (`id_source` "key"), if it is UTF-8 text;
    - neither: derived from the URL or the content (stages/ids.py), so a redelivery of the
      same record gets the same id.

    A record that says `id_source: url|content` (the seeder does, when it derived the id) keeps
    that claim only if its id is what the rule gives; otherwise its id counts as "sent".
    Raises `InvalidArticle` with a reason code."""
    try:
        mapped = map_fields(data, field_map)
    except FieldError as exc:
        reason = "missing_id" if exc.field == "id" else "wrong_type"
        raise InvalidArticle(reason, str(exc)) from None
    values = mapped.values
    if "id" not in values and isinstance(data.get("id"), str):  # sent, but blank: a producer's bug
        raise InvalidArticle("missing_id", "field 'id' must be a non-empty string or an integer")
    body, html = values.get("body", ""), values.get("html", "")
    if not body and not html:
        if mapped.blank & {"body", "html"}:
            raise InvalidArticle("empty_body", "field 'body' is empty")
        raise InvalidArticle("wrong_type", "field 'body' must be a string, got NoneType (no text in any of "
                             f"{', '.join(ALIASES['body'] + ALIASES['html'])})")
    if "\x00" in body or "\x00" in html:
        raise InvalidArticle("invalid_text", "body contains NUL characters")
    metadata = mapped.metadata
    if _depth(metadata) > MAX_METADATA_DEPTH:
        raise InvalidArticle("too_deep", f"field 'metadata' is nested deeper than {MAX_METADATA_DEPTH} levels")
    title, source, url = values.get("title", ""), values.get("source", ""), values.get("url", "")

    key_text = None
    if key:  # an empty key is no key (kcat -K with nothing before the delimiter)
        try:
            key_text = key.decode("utf-8")
        except UnicodeDecodeError:
            key_text = None
            if "id" not in values:
                raise InvalidArticle("key_mismatch", f"message key {key[:80]!r} is not UTF-8 text, so it "
                                     "cannot be the article id, and the record has none") from None
    id_source: IdSource
    if "id" in values:
        article_id = str(values["id"])
        if key and key.decode("utf-8", "replace") != article_id:
            raise InvalidArticle("key_mismatch", f"message key {key[:80]!r} differs from id {article_id[:80]!r}")
        id_source = _claimed(values.get("id_source"), article_id, url, source, title, body or html)
    elif key_text is not None:
        article_id, id_source = key_text, "key"
    else:
        article_id, id_source = derive_id(url, source, title, body or html)

    return Article(
        id=article_id, title=title, body=body, source=source, url=url,
        published_at=values.get("published_at"), ingested_at=values.get("ingested_at"),
        metadata=metadata, id_source=id_source, html=html,
    )


def _claimed(claim: Any, article_id: str, url: str, source: str, title: str, text: str) -> IdSource:
    """"url"/"content" when the record says its id was derived by that rule and it was; else "sent"."""
    if claim == "url":
        normalised = normalise_url(url) if url else None
        return "url" if normalised is not None and url_id(normalised) == article_id else "sent"
    if claim == "content":
        return "content" if content_id(source, title, text) == article_id else "sent"
    return "sent"


def _depth(value: Any, limit: int = MAX_METADATA_DEPTH + 1) -> int:
    """Nesting depth of a JSON value, counted up to `limit` (no deeper walk than needed)."""
    if limit <= 0 or not isinstance(value, dict | list):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)
