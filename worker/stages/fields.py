"""Stage 0a: the field names real producers use, mapped onto the article's own.

Article records rarely say `id/title/body/published_at`: news-please writes `maintext`,
`date_publish`, `source_domain`; trafilatura's JSON `text`, `date`, `hostname`; records made from
RSS `link`, `pubDate`, `description`; crawlers send the page's `html`. `map_fields` takes any of
these (the `ALIASES` table, tried in order, first usable value wins) plus what `INPUT_FIELD_MAP`
names (`body=content,published_at=meta.date`: tried before the aliases; dotted paths go into
nested objects, a number indexes a list; `|` separates alternatives), and returns the article's
fields. Everything else the record carries (and an alias that was not the one used) passes
through in `metadata`.

Rules, per article field:
- the field's own name (`body`, `title`, ...) or a path `INPUT_FIELD_MAP` gives must have the
  right type, else the record is refused (`wrong_type`): the producer meant that field;
- an alias of the wrong type, or a blank string, is skipped (it stays in `metadata`): `content`
  is an article's text in one feed and a list of objects in another;
- `source`, when nothing gives it, is the URL's host (without `www.`); a `source` that is itself
  a URL (trafilatura's JSON) is the URL, and the source is then `hostname` (or the URL's host).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

# The article's own fields, in the order they are looked for, each with the names other
# producers give it. README ("Input") and topics/schemas/article.raw.schema.json list the same
# table; tests/unit/test_fields.py checks that they agree.
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "article_id", "guid", "uuid", "doc_id", "_id"),
    "title": ("title", "headline", "title_page", "title_rss"),
    "body": ("body", "maintext", "text", "articleBody", "article_body", "content", "content_text",
             "raw_text", "description", "summary"),
    "html": ("html", "raw_html", "content_html", "html_content", "page_html"),
    "source": ("source", "source_domain", "hostname", "sitename", "site_name", "publisher", "domain"),
    "url": ("url", "link", "canonical_url", "url_canonical", "permalink", "uri"),
    "published_at": ("published_at", "date_publish", "datePublished", "date_published", "pubDate",
                     "pub_date", "published", "publish_date", "publication_date", "date"),
    "ingested_at": ("ingested_at", "date_download", "crawled_at", "fetched_at"),
    "id_source": ("id_source",),
    "metadata": ("metadata",),
}
ARTICLE_FIELDS = tuple(ALIASES)
TEXT_FIELDS = ("body", "html")  # a record needs one of these, non-blank


class FieldError(ValueError):
    """A field the producer named (its own name, or an INPUT_FIELD_MAP path) has the wrong type."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.field = name


@dataclass(frozen=True, slots=True)
class FieldMap:
    """INPUT_FIELD_MAP, parsed: per article field, the paths tried before the built-in aliases."""

    paths: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def get(self, name: str) -> tuple[str, ...]:
        for field_name, paths in self.paths:
            if field_name == name:
                return paths
        return ()


NO_FIELD_MAP = FieldMap()


@lru_cache(maxsize=64)
def parse_field_map(spec: str) -> FieldMap:
    """`body=content,published_at=meta.date|meta.published` → FieldMap. Raises ValueError naming
    the entry that is not `field=path` or whose field is not an article field."""
    out: dict[str, tuple[str, ...]] = {}
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        name, sep, paths = (part.strip() for part in entry.partition("="))
        alternatives = tuple(p.strip() for p in paths.split("|") if p.strip())
        if not sep or not alternatives:
            raise ValueError(f"INPUT_FIELD_MAP entry {entry!r} is not field=path")
        if name not in ALIASES or name == "id_source":
            raise ValueError(f"INPUT_FIELD_MAP entry {entry!r}: {name!r} is not one of "
                             f"{', '.join(n for n in ARTICLE_FIELDS if n != 'id_source')}")
        out[name] = out.get(name, ()) + alternatives
    return FieldMap(tuple(out.items()))


_MISSING = object()


def lookup(record: Mapping[str, Any], path: str) -> Any:
    """The value at `path`: the key itself if the record has it, else the dotted path walked
    through objects (and lists, by index). `_MISSING` when there is none."""
    if path in record:
        return record[path]
    if "." not in path:
        return _MISSING
    value: Any = record
    for step in path.split("."):
        if isinstance(value, Mapping) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.lstrip("-").isdigit() and -len(value) <= int(step) < len(value):
            value = value[int(step)]
        else:
            return _MISSING
    return value


def _usable(name: str, value: Any) -> bool | None:
    """True: a value for `name`; False: the wrong type; None: nothing there (null, blank text)."""
    if value is None:
        return None
    if name == "metadata":  # an empty value ({}, [], "", 0) is no metadata, as it always was
        return isinstance(value, dict) if value else None
    if name == "id":
        if isinstance(value, str):
            return True if value.strip() else None
        return isinstance(value, int) and not isinstance(value, bool)
    if name in ("published_at", "ingested_at"):
        if isinstance(value, str):
            return True if value.strip() else None
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(value, str):
        return True if value.strip() else None
    return False


_EXPECTED = {"id": "a non-empty string or an integer", "metadata": "an object",
             "published_at": "a time string or an epoch number", "ingested_at": "a time string or an epoch number"}


@dataclass(slots=True)
class Mapped:
    """`map_fields`' result: each article field found (as sent; `id` may be an int) and the
    metadata (the record's own `metadata` object plus every field that was not used)."""

    values: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    blank: set[str] = field(default_factory=set)  # fields whose only candidates were blank strings


def map_fields(record: Mapping[str, Any], field_map: FieldMap = NO_FIELD_MAP) -> Mapped:
    """The article's fields from a record of any of the known shapes (module docstring).
    Raises FieldError when a field named outright has the wrong type."""
    mapped = Mapped()
    used: set[str] = set()
    nested: list[list[str]] = []  # dotted paths used: their values leave the objects they were in
    for name, aliases in ALIASES.items():
        explicit = field_map.get(name)
        for path in (*explicit, *aliases):
            value = lookup(record, path)
            if value is _MISSING:
                continue
            usable = _usable(name, value)
            strict = (path == name or path in explicit) and name != "id_source"  # id_source: a hint only
            if usable:
                mapped.values[name] = value
                if "." not in path or path in record:
                    used.add(path)
                else:
                    nested.append(path.split("."))
                break
            if usable is False and strict:
                expected = _EXPECTED.get(name, "a string")
                raise FieldError(name, f"field {path!r} ({name}) must be {expected}, got {type(value).__name__}")
            if path == name:
                used.add(path)  # the field's own name, null or blank: nothing to pass on
            if usable is None and isinstance(value, str):
                mapped.blank.add(name)
                if path == name and name in ("published_at", "ingested_at"):
                    mapped.values[name] = value  # kept as sent: event_time says it was unreadable
                    break
        if name in record and name not in used and _usable(name, record[name]) is None:
            used.add(name)  # the own name, blank or null, while another path had the value
    _source_as_url(record, mapped, used)
    own = mapped.values.pop("metadata", None)
    metadata: dict[str, Any] = dict(own) if isinstance(own, dict) else {}
    used.add("metadata")
    rest: dict[str, Any] = {k: v for k, v in record.items() if k not in used}
    for steps in nested:
        _remove(rest, steps)
    clashes: dict[str, Any] = {}
    for key, value in rest.items():
        if key in metadata:
            clashes[key] = value
        else:
            metadata[key] = value
    if clashes:  # a top-level field the metadata object also has: both kept
        metadata["unmapped"] = clashes if "unmapped" not in metadata else {"unmapped": metadata["unmapped"], **clashes}
    mapped.metadata = metadata
    if "source" not in mapped.values and isinstance(mapped.values.get("url"), str):
        host = url_host(mapped.values["url"])
        if host:
            mapped.values["source"] = host
    return mapped


def _source_as_url(record: Mapping[str, Any], mapped: Mapped, used: set[str]) -> None:
    """A `source` that is a URL (trafilatura's JSON puts the page URL there) is the article's
    URL (when it has none), and the source is the next alias (`hostname`, ...) or its host."""
    source = mapped.values.get("source")
    if not (isinstance(source, str) and _ABSOLUTE_URL.match(source)):
        return
    mapped.values.setdefault("url", source.strip())
    for alias in ALIASES["source"][1:]:
        value = record.get(alias)
        if isinstance(value, str) and value.strip() and not _ABSOLUTE_URL.match(value):
            mapped.values["source"] = value
            used.add(alias)
            return
    mapped.values["source"] = url_host(source)


_ABSOLUTE_URL = re.compile(r"\s*https?://", re.IGNORECASE)


def _remove(record: dict[str, Any], steps: list[str]) -> None:
    """Take the value at `steps` out of `record`, copying (never changing) the objects on the
    way; an object left empty goes too. Lists are left as they are."""
    head, tail = steps[0], steps[1:]
    value = record.get(head)
    if not tail:
        record.pop(head, None)
    elif isinstance(value, dict):
        inner = dict(value)
        _remove(inner, tail)
        if inner:
            record[head] = inner
        else:
            record.pop(head, None)


def url_host(url: str) -> str:
    """The URL's host, lower-cased, without `www.` ("" when there is none)."""
    try:
        host = (urlsplit(url.strip()).hostname or "").rstrip(".")
    except ValueError:
        return ""
    return host[4:] if host.startswith("www.") else host
