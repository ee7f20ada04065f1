"""Field mapping (worker/stages/fields.py): the record shapes of real producers, the alias table
(the same in the code, the JSON Schema of articles.raw and the README), INPUT_FIELD_MAP."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

import topics
from worker.config import Settings
from worker.stages.fields import ALIASES, FieldError, map_fields, parse_field_map
from worker.stages.validate import parse_article

ROOT = Path(__file__).resolve().parents[2]
CAP = 1 << 20
TEXT = "The city council approved a new budget for public libraries on Monday evening."

NEWS_PLEASE = {  # news-please's JSON output (its field names, as it writes them)
    "authors": ["Anna Berg"], "date_download": "2025-03-28 19:02:11", "date_modify": None,
    "date_publish": "2025-03-28 18:40:00", "description": "The council backs longer hours.",
    "filename": "https%3A%2F%2Fdailyledger.example%2Flocal%2Flibrary.json", "image_url": None,
    "language": "en", "localpath": None, "maintext": TEXT, "source_domain": "dailyledger.example",
    "title": "Council approves library budget", "title_page": None, "title_rss": None,
    "url": "https://dailyledger.example/local/library",
}
TRAFILATURA = {  # trafilatura --json
    "title": "Council approves library budget", "author": "Anna Berg", "hostname": "dailyledger.example",
    "date": "2025-03-28", "fingerprint": "f1f0a1", "id": None, "license": None, "comments": "",
    "raw_text": TEXT + " Read more", "text": TEXT, "language": None, "image": None, "pagetype": "article",
    "source": "https://dailyledger.example/local/library", "source-hostname": "The Daily Ledger",
    "excerpt": "", "categories": "", "tags": "",
}
RSS = {  # an item of an RSS 2.0 feed, as feedparser or a Kafka Connect RSS source gives it
    "title": "Council approves library budget", "link": "https://dailyledger.example/local/library",
    "pubDate": "Fri, 28 Mar 2025 18:40:00 +0100", "description": TEXT,
    "guid": "https://dailyledger.example/?p=8863", "category": ["Local"],
}
SCHEMA_ORG = {"@type": "NewsArticle", "headline": "Council approves library budget", "articleBody": TEXT,
              "datePublished": "2025-03-28T18:40:00+01:00", "publisher": {"@type": "Organization", "name": "Ledger"},
              "url": "https://dailyledger.example/local/library"}
JSON_FEED = {"id": "8863", "url": "https://dailyledger.example/local/library",
             "title": "Council approves library budget", "content_text": TEXT,
             "date_published": "2025-03-28T18:40:00+01:00"}


@pytest.mark.parametrize("record,expected", [
    (NEWS_PLEASE, {"title": "Council approves library budget", "body": TEXT, "source": "dailyledger.example",
                   "url": "https://dailyledger.example/local/library", "published_at": "2025-03-28 18:40:00",
                   "ingested_at": "2025-03-28 19:02:11", "id_source": "url"}),
    # trafilatura's "source" is the page URL: read as the url, the source is then its hostname
    (TRAFILATURA, {"title": "Council approves library budget", "body": TEXT, "published_at": "2025-03-28",
                   "url": "https://dailyledger.example/local/library", "source": "dailyledger.example",
                   "id_source": "url"}),
    (RSS, {"title": "Council approves library budget", "body": TEXT, "url": "https://dailyledger.example/local/library",
           "published_at": "Fri, 28 Mar 2025 18:40:00 +0100", "id": "https://dailyledger.example/?p=8863",
           "id_source": "sent", "source": "dailyledger.example"}),
    (SCHEMA_ORG, {"title": "Council approves library budget", "body": TEXT,
                  "published_at": "2025-03-28T18:40:00+01:00", "id_source": "url"}),
    (JSON_FEED, {"id": "8863", "body": TEXT, "published_at": "2025-03-28T18:40:00+01:00", "id_source": "sent"}),
], ids=["news-please", "trafilatura", "rss", "schema.org", "json-feed"])
def test_known_shapes_are_read_without_configuration(record, expected):
    article = parse_article(None, orjson.dumps(record), CAP)
    for name, value in expected.items():
        assert getattr(article, name) == value, name


def test_fields_not_used_pass_through_in_metadata():
    article = parse_article(None, orjson.dumps(NEWS_PLEASE), CAP)
    assert article.metadata["authors"] == ["Anna Berg"] and article.metadata["language"] == "en"
    assert article.metadata["description"] == NEWS_PLEASE["description"]  # an alias not used is kept
    for used in ("maintext", "title", "url", "date_publish", "source_domain", "date_download"):
        assert used not in article.metadata
    publisher = parse_article(None, orjson.dumps(SCHEMA_ORG), CAP).metadata["publisher"]
    assert publisher == {"@type": "Organization", "name": "Ledger"}  # an object under a text alias: skipped, kept


def test_first_usable_alias_wins_and_wrong_typed_aliases_are_skipped():
    mapped = map_fields({"content": [{"value": "<p>x</p>"}], "description": "Summary.", "maintext": None})
    assert mapped.values["body"] == "Summary."
    assert mapped.metadata["content"] == [{"value": "<p>x</p>"}]
    mapped = map_fields({"maintext": "Full text.", "description": "Summary."})
    assert mapped.values["body"] == "Full text." and mapped.metadata == {"description": "Summary."}


def test_own_names_are_strict():
    with pytest.raises(FieldError):
        map_fields({"body": ["a"]})
    with pytest.raises(FieldError):
        map_fields({"body": "x", "published_at": True})


def test_metadata_clash_keeps_both():
    mapped = map_fields({"body": "x", "lang": "en", "metadata": {"lang": "de"}})
    assert mapped.metadata == {"lang": "de", "unmapped": {"lang": "en"}}


def test_input_field_map():
    field_map = parse_field_map("body = data.article.text | data.text , published_at=meta.dates.0, title=headline_text")
    record = {"data": {"article": {"text": TEXT}, "other": 1}, "meta": {"dates": ["2025-03-28", "2025-03-29"]},
              "headline_text": "Headline", "title": ""}
    mapped = map_fields(record, field_map)
    assert mapped.values == {"body": TEXT, "published_at": "2025-03-28", "title": "Headline"}
    assert mapped.metadata == {"data": {"other": 1}, "meta": {"dates": ["2025-03-28", "2025-03-29"]}}
    assert map_fields({"data": {"text": "fallback"}}, field_map).values["body"] == "fallback"
    assert map_fields({"meta.date": "2025-01-01", "body": "x"},
                      parse_field_map("published_at=meta.date")).values["published_at"] == "2025-01-01"
    with pytest.raises(FieldError):  # a path the operator named must hold the right type
        map_fields({"data": {"text": 5}}, parse_field_map("body=data.text"))


@pytest.mark.parametrize("spec", ["body", "body=", "colour=x", "id_source=x", "body=a,=b"])
def test_a_malformed_field_map_is_refused_at_start(spec):
    with pytest.raises(ValueError):
        parse_field_map(spec)
    with pytest.raises(ValueError):
        Settings(input_field_map=spec)


def test_settings_parse_the_field_map():
    settings = Settings(input_field_map="body=content.rendered")
    assert settings.field_map().get("body") == ("content.rendered",)
    assert Settings().field_map().paths == ()


def test_schema_lists_the_same_aliases():
    schema = topics.load_schema("article.raw.schema.json")
    in_schema: dict[str, list[str]] = {name: [name] for name in ALIASES}
    for prop, spec in schema["properties"].items():
        if "x-alias-of" in spec:
            in_schema[spec["x-alias-of"]].append(prop)
    assert in_schema == {name: list(aliases) for name, aliases in ALIASES.items()}
    required_any = [entry["required"][0] for entry in schema["anyOf"]]
    assert required_any == [*ALIASES["body"], *ALIASES["html"]]


def test_readme_lists_the_same_aliases():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("<!-- field aliases -->"):readme.index("<!-- /field aliases -->")]
    for name, aliases in ALIASES.items():
        if name in ("id_source", "metadata"):
            continue
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        assert re.findall(r"`([^`]+)`", row.split("|")[2]) == list(aliases[1:]), name
