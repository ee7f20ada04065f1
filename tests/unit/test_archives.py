"""The seeder's reader (worker/io/sources.py) per format, on small files the tests write: a WARC
with two HTML responses, a gzipped JSONL, a CSV with quoted multi-line bodies, a TSV, a Parquet
file, a JSON list, zstd / bz2 / xz, stdin. Every bad record is reported with its file and
record; memory does not grow with the file."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import sys
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from worker.io.sources import STDIN, ReadReport, read_articles, read_records
from worker.stages.fields import parse_field_map
from worker.stages.ids import derive_id
from worker.stages.validate import parse_article

from .test_extract import PAGES, _render

BODY = ("The city council approved a new budget for public libraries on Monday evening, adding funds "
        "for longer opening hours and a mobile library that will visit rural schools.")


def read(paths: list[Path], **kwargs) -> tuple[list[dict], ReadReport]:
    report = ReadReport()
    return list(read_articles(paths, report, **kwargs)), report


def assert_sendable(articles: list[dict]) -> None:
    """What the seeder sends is what the worker takes, under the same id."""
    for article in articles:
        parsed = parse_article(article["id"].encode(), orjson.dumps(article), 1 << 20)
        assert parsed.id == article["id"]


# -- WARC ------------------------------------------------------------------------------------------

def write_warc(path: Path) -> list[str]:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    urls = ["https://www.dailyledger.example/local/library", "https://news.example.org/economy/ports-strike-ends"]
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=path.suffix == ".gz")
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "test"}))
        for url, page in zip(urls, PAGES[:2]):
            writer.write_record(writer.create_warc_record(url, "request", payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n"),
                                                          warc_headers_dict={}))
            body = _render(page).encode("utf-8")
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body),
                                                          http_headers=headers))
        image = StatusAndHeaders("200 OK", [("Content-Type", "image/png")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record("https://x.example/a.png", "response",
                                                      payload=io.BytesIO(b"\x89PNG..."), http_headers=image))
        empty = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record("https://x.example/empty", "response",
                                                      payload=io.BytesIO(b"<html><body><script>x()</script></body></html>"),
                                                      http_headers=empty))
        missing = StatusAndHeaders("404 Not Found", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record("https://x.example/gone", "response", http_headers=missing,
                                                      payload=io.BytesIO(b"<html>Not found</html>")))
    return urls


@pytest.mark.parametrize("name", ["crawl.warc.gz", "crawl.warc"])
def test_warc_html_responses_become_articles(tmp_path, name):
    path = tmp_path / name
    urls = write_warc(path)
    articles, report = read([path])
    assert [a["url"] for a in articles] == urls
    for article, page in zip(articles, PAGES):
        assert article["title"] == page["title"]
        assert article["body"].startswith(page["paragraphs"][0])
        assert "Privacy policy" not in article["body"]
        assert article["published_at"].startswith(page["date"])
        assert article["id"] == derive_id(article["url"], "", "", "")[0] and article["id_source"] == "url"
        assert article["ingested_at"]  # the WARC-Date
        assert article["metadata"]["warc_record_id"].startswith("<urn:uuid:")
    assert report.skipped == 5  # warcinfo, 2 requests, the image, the 404
    assert len(report.errors) == 1 and report.errors[0].startswith(f"{path}@")
    assert "(record 7, <urn:uuid:" in report.errors[0] and "no text" in report.errors[0]
    assert_sendable(articles)


# -- JSON Lines, JSON, compressed ------------------------------------------------------------------

def jsonl_lines() -> list[bytes]:
    return [orjson.dumps({"maintext": BODY, "title": "One", "url": "https://a.example/1",
                          "date_publish": "2025-03-28"}),
            b"{broken",
            orjson.dumps({"text": BODY + " Two.", "hostname": "b.example", "date": "2025-03-29"}),
            b"",
            orjson.dumps({"title": "no text at all"}),
            orjson.dumps([1, 2])]


@pytest.mark.parametrize("suffix,compress", [
    (".jsonl.gz", gzip.compress), (".jsonl.bz2", bz2.compress), (".jsonl.xz", lzma.compress),
    (".jsonl.zst", None), (".zst", None), (".json.gz", gzip.compress), (".jsonl", lambda b: b),
])
def test_compressed_jsonl(tmp_path, suffix, compress):
    if compress is None:
        import zstandard
        compress = zstandard.ZstdCompressor().compress
    path = tmp_path / f"feed{suffix}"
    path.write_bytes(compress(b"\n".join(jsonl_lines()) + b"\n"))
    articles, report = read([path])
    assert [a["title"] for a in articles] == ["One", ""]
    assert articles[0]["id_source"] == "url" and articles[1]["id_source"] == "content"
    assert articles[1]["source"] == "b.example" and articles[1]["published_at"] == "2025-03-29"
    assert articles[0]["metadata"]["file"] == path.name
    assert [e.split(": ")[0] for e in report.errors] == [f"{path}:2", f"{path}:5", f"{path}:6"]
    assert "invalid JSON" in report.errors[0] and "wrong_type" in report.errors[1]
    assert report.bytes_read == path.stat().st_size == report.total_bytes
    assert_sendable(articles)


def test_json_list_is_streamed_and_a_bad_element_named(tmp_path):
    path = tmp_path / "list.json"
    items = [{"id": f"j{i}", "body": f"{BODY} {i}"} for i in range(5)]
    items[2] = {"id": "j2", "body": 7}
    path.write_bytes(b"[\n" + b",\n".join(orjson.dumps(i) for i in items) + b"\n]")
    articles, report = read([path])
    assert [a["id"] for a in articles] == ["j0", "j1", "j3", "j4"]
    assert report.errors == [f"{path}[2]: wrong_type: field 'body' (body) must be a string, got int"]
    truncated = tmp_path / "cut.json"
    truncated.write_bytes(path.read_bytes()[:-40])
    articles, report = read([truncated])
    assert [a["id"] for a in articles] == ["j0", "j1", "j3"]
    assert report.errors[-1].startswith(f"{truncated}[4]: invalid JSON")


def test_one_json_object_pretty_printed(tmp_path):
    path = tmp_path / "one.json"
    path.write_bytes(orjson.dumps({"id": "p1", "title": "T", "body": BODY}, option=orjson.OPT_INDENT_2))
    articles, report = read([path])
    assert [a["id"] for a in articles] == ["p1"] and not report.errors


# -- CSV / TSV -------------------------------------------------------------------------------------

def test_csv_with_quoted_multiline_bodies(tmp_path):
    path = tmp_path / "export.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "headline", "article_body", "pubDate", "link", "section", "metadata"])
        writer.writerow(["c1", "First", f"{BODY}\n\nSecond paragraph, with a \"quote\", and a comma.", "2025-03-28",
                         "https://c.example/1", "local", '{"desk": "city"}'])
        writer.writerow(["c2", "Second", "", "", "", "sport", ""])  # no text
        fh.write('c3,Third,"unterminated\nbody,2025-03-28\n')  # a quote never closed: eats the rest
    articles, report = read([path])
    assert len(articles) == 1
    first = articles[0]
    assert first["body"].endswith('with a "quote", and a comma.') and "\n\nSecond" in first["body"]
    assert (first["title"], first["published_at"], first["url"]) == ("First", "2025-03-28", "https://c.example/1")
    assert first["metadata"] == {"desk": "city", "section": "local", "file": "export.csv"}
    assert report.errors[0] == f"{path}:5 (record 2): wrong_type: field 'body' must be a string, got NoneType " \
                               "(no text in any of body, maintext, text, articleBody, article_body, content, " \
                               "content_text, raw_text, description, summary, html, raw_html, content_html, " \
                               "html_content, page_html)"
    assert report.errors[1].startswith(f"{path}:6 (record 3): 3 fields, the header has 7")
    assert_sendable(articles)


def test_tsv_and_field_map(tmp_path):
    path = tmp_path / "export.tsv.gz"
    rows = ["uid\tstory\tmeta.date", f"t1\t{BODY}\t2025-03-28", "t2\t\t2025-03-29", f"t3\t{BODY} Three.\t"]
    path.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    articles, report = read([path], field_map=parse_field_map("id=uid,body=story,published_at=meta.date"))
    assert [(a["id"], a["published_at"]) for a in articles] == [("t1", "2025-03-28"), ("t3", None)]
    assert report.errors[0].startswith(f"{path}:3 (record 2): wrong_type")


# -- Parquet ---------------------------------------------------------------------------------------

def test_parquet_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "articles.parquet"
    table = pa.table({
        "url": ["https://p.example/1", "https://p.example/2", None],
        "title": ["One", "Two", "Three"],
        "maintext": [BODY, None, BODY + " Three."],
        "date_publish": [datetime(2025, 3, 28, 10, 15, tzinfo=UTC), datetime(2025, 3, 29), None],
        "meta": [{"desk": "city", "words": 30}, {"desk": "x", "words": 0}, {"desk": "y", "words": 2}],
    })
    pq.write_table(table, path, row_group_size=2)
    articles, report = read([path])
    assert [a["title"] for a in articles] == ["One", "Three"]
    assert articles[0]["published_at"] == "2025-03-28T10:15:00Z" and articles[0]["id_source"] == "url"
    assert articles[0]["metadata"]["meta"] == {"desk": "city", "words": 30}
    assert articles[1]["id_source"] == "content"
    assert report.errors == [f"{path} (record 2): wrong_type: field 'body' must be a string, got NoneType "
                             f"(no text in any of body, maintext, text, articleBody, article_body, content, "
                             f"content_text, raw_text, description, summary, html, raw_html, content_html, "
                             f"html_content, page_html)"]
    assert_sendable(articles)


# -- stdin, folders, unknown, broken ---------------------------------------------------------------

def test_stdin_is_sniffed(monkeypatch):
    data = gzip.compress(b"\n".join(jsonl_lines()))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    articles, report = read([STDIN])
    assert [a["title"] for a in articles] == ["One", ""]
    assert report.errors[0].startswith("<stdin>:2: invalid JSON") and report.total_bytes is None
    assert articles[0]["metadata"]["file"] == "stdin"


def test_stdin_csv_needs_the_format(monkeypatch):
    data = f'body\n"{BODY}"\n'.encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    articles, report = read([STDIN])
    assert not articles and "unknown format" in report.errors[0]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    articles, report = read([STDIN], fmt="csv")
    assert [a["body"] for a in articles] == [BODY]


def test_folders_take_archives_and_a_broken_file_is_reported(tmp_path):
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(orjson.dumps({"body": BODY}) + b"\n"))
    (tmp_path / "b.csv").write_text(f'body\n"{BODY} b"\n')
    (tmp_path / "c.png").write_bytes(b"\x89PNG")
    (tmp_path / "d.jsonl.gz").write_bytes(gzip.compress(b"\n".join(orjson.dumps({"body": f"{BODY} {i}"})
                                                                  for i in range(8000)))[:-30])
    articles, report = read([tmp_path])
    assert report.files == 3 and len(articles) >= 1000  # d's lines up to the cut are read
    assert any(e.startswith(f"{tmp_path / 'd.jsonl.gz'}: EOFError") and "reading stopped here after" in e
               for e in report.errors), report.errors


def test_reading_position_and_ids_with_salt(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps({"id": f"x{i}", "body": f"{BODY} {i}"}) for i in range(3)))
    plain = [where for where, _ in read_records([path], ReadReport())]
    assert plain == [f"{path}:1", f"{path}:2", f"{path}:3"]
    salted = [a for _, a in read_records([path], ReadReport(), salt="s")]
    assert all(a["id"].startswith("art-") and "id_source" not in a for a in salted)


def test_memory_stays_flat_on_a_large_file(tmp_path):
    path = tmp_path / "big.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=1) as fh:
        for i in range(6000):  # ~25 MB of JSON
            fh.write(orjson.dumps({"url": f"https://big.example/{i}", "maintext": f"{BODY} {i} " * 25}) + b"\n")
    report = ReadReport()
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_articles([path], report))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 6000 and not report.errors
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while reading a ~25 MB file"
