"""Stage 0: turn the bytes of an `articles.raw` message into an `Article`, or say why not.

Everything that can be wrong with input is caught here, before any other stage runs, so the
worker can dead-letter it with a precise reason instead of crashing or dropping it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


class InvalidArticle(ValueError):
    """Input that can never be processed: dead-letter it with `reason` (a short, stable code)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Article:
    id: str
    title: str
    body: str
    source: str = ""
    url: str = ""
    published_at: str | int | float | None = None  # as sent; see stages.event_time for the reading
    ingested_at: str | int | float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "body": self.body, "source": self.source,
                "url": self.url, "published_at": self.published_at,
                "ingested_at": self.ingested_at, "metadata": self.metadata}


_STRING_FIELDS = ("title", "source", "url")
# Deeper metadata is refused here rather than by a JSON codec further on (each has its own
# recursion limit, and an article that passed validation must reach an output).
MAX_METADATA_DEPTH = 64
_TIME_FIELDS = ("published_at", "ingested_at")


def parse_article(key: bytes | None, value: bytes | None, max_bytes: int) -> Article:
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

    article_id = data.get("id")
    if not isinstance(article_id, str) or not article_id.strip():
        raise InvalidArticle("missing_id", "field 'id' must be a non-empty string")
    if key is None:
        raise InvalidArticle("null_key", "message key must be the article id, got null")
    if key.decode("utf-8", "replace") != article_id:
        raise InvalidArticle("key_mismatch", f"message key {key[:80]!r} differs from id {article_id[:80]!r}")

    body = data.get("body")
    if not isinstance(body, str):
        raise InvalidArticle("wrong_type", f"field 'body' must be a string, got {type(body).__name__}")
    if not body.strip():
        raise InvalidArticle("empty_body", "field 'body' is empty")
    for name in _STRING_FIELDS:
        if data.get(name) is not None and not isinstance(data[name], str):
            raise InvalidArticle("wrong_type", f"field {name!r} must be a string")
    for name in _TIME_FIELDS:
        # A string or a JSON number (epoch s/ms). An unparseable string is *not* rejected here:
        # the article is still processed and its event time falls back to ingestion time.
        moment = data.get(name)
        if moment is not None and (isinstance(moment, bool) or not isinstance(moment, (str, int, float))):
            raise InvalidArticle("wrong_type", f"field {name!r} must be a time string or an epoch number")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidArticle("wrong_type", "field 'metadata' must be an object")
    if _depth(metadata) > MAX_METADATA_DEPTH:
        raise InvalidArticle("too_deep", f"field 'metadata' is nested deeper than {MAX_METADATA_DEPTH} levels")
    if "\x00" in body:
        raise InvalidArticle("invalid_text", "body contains NUL characters")

    return Article(
        id=article_id, title=data.get("title") or "", body=body, source=data.get("source") or "",
        url=data.get("url") or "", published_at=data.get("published_at"),
        ingested_at=data.get("ingested_at"), metadata=metadata,
    )


def _depth(value: Any, limit: int = MAX_METADATA_DEPTH + 1) -> int:
    """Nesting depth of a JSON value, counted up to `limit` (no deeper walk than needed)."""
    if limit <= 0 or not isinstance(value, dict | list):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)
