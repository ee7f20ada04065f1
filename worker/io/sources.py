"""Reading article files and archives for the seeder and `ingest enrich`, as a stream.

Formats (by suffix; by content when the suffix says nothing, and always for `-`, stdin):

    .txt                  one article: first line = headline when it looks like one, a trailing
                          `Original Source: …` line = source
    .json                 one object, a list of objects (streamed), or JSON Lines under a .json name
    .jsonl / .ndjson      one object per line
    .csv / .tsv           a header row, then one article per record; quoted fields may span lines
    .parquet              one article per row (pyarrow, row group by row group)
    .warc                 WARC response (and resource) records of HTML pages (warcio): the page's
                          main text is extracted here (stages/extract.py); other records skipped
    + .gz .zst .zstd .bz2 .xz  any of the above compressed (recognised by its magic bytes too)

Every record goes through the same field mapping as the worker's (stages/fields.py: news-please,
trafilatura, RSS-derived shapes, `INPUT_FIELD_MAP`) and validation (stages/validate.py), so what
the seeder sends is an `articles.raw` record in the product's own shape. A record without an id
gets the derived one (stages/ids.py: URL, else content), the same the worker would derive, so a
replay sends the same ids. Memory does not grow with the file: records are read one at a time
(a Parquet row group at a time), and only the first `MAX_KEPT_PROBLEMS` problems are kept in
the report (every one goes to `on_problem` as it is found), each naming the file and record.
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import gzip
import io
import json
import lzma
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import orjson

from worker.stages.extract import extract_page
from worker.stages.fields import NO_FIELD_MAP, FieldMap, url_host
from worker.stages.ids import content_id, derive_id
from worker.stages.normalise import source_trailer
from worker.stages.validate import InvalidArticle, article_from_record

STDIN = Path("-")
FORMATS = {".txt": "txt", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv",
           ".parquet": "parquet", ".warc": "warc"}
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2", ".xz": "xz"}
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))
SUPPORTED_SUFFIXES = set(FORMATS)  # a folder is searched for these, compressed or not
MAX_KEPT_PROBLEMS = 1000
MAX_PAGE_BYTES = 16 * 1024 * 1024  # a WARC payload larger than this is reported, not read
_CSV_FIELD_LIMIT = 256 * 1024 * 1024
_JSON_CHUNK = 1 << 20
_JSON_MAX_ITEM = 64 * 1024 * 1024  # a list element not complete after this many characters: the file is broken
_HEADLINE_MAX_WORDS = 25


@dataclass
class ReadReport:
    files: int = 0
    articles: int = 0
    skipped: int = 0  # records that are no articles (WARC requests, metadata, non-HTML responses)
    problems: int = 0  # records (or files) that could not be read: every one is reported
    errors: list[str] = field(default_factory=list)  # the first MAX_KEPT_PROBLEMS, "file[position]: reason"
    on_problem: Callable[[str], None] | None = None  # told of every problem as it is found
    total_bytes: int | None = None  # the input's size, when known (not for stdin)
    bytes_read: int = 0  # how far the reading got, in input bytes (compressed, as on disk)

    def problem(self, where: str, reason: str) -> None:
        line = f"{where}: {reason}"
        self.problems += 1
        if len(self.errors) < MAX_KEPT_PROBLEMS:
            self.errors.append(line)
        if self.on_problem is not None:
            self.on_problem(line)


def article_id(source: str, title: str, body: str, salt: str = "") -> str:
    """The content rule of stages/ids.py (kept under its old name)."""
    return content_id(source, title, body, salt)


def looks_like_headline(line: str) -> bool:
    line = line.strip()
    words = line.split()
    return (0 < len(words) <= _HEADLINE_MAX_WORDS and len(line) <= 200
            and not line.endswith((".", ":", ";", ",")) and line[:1].isupper() is not False)


def parse_txt(text: str) -> dict[str, Any]:
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    title = ""
    if lines and looks_like_headline(lines[0]) and len(lines) > 1:
        title = lines.pop(0).strip()
    source = source_trailer("\n".join(lines)) or ""
    if source:
        # Drop the trailer line itself; everything after it is page furniture normalise removes.
        for i in range(len(lines) - 1, -1, -1):
            if lines[i].strip().lower().startswith("original source:"):
                lines = lines[:i] + lines[i + 1:]
                break
    return {"title": title, "body": "\n".join(lines).strip(), "source": source}


def split_suffixes(path: Path) -> tuple[str | None, str | None]:
    """(format, compression) that the name says: `x.jsonl.gz` → ("jsonl", "gzip")."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    return (FORMATS.get(suffixes[-1]) if suffixes else None), compression


def iter_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path != STDIN and path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and split_suffixes(p)[0] is not None)
        else:
            yield path


def read_articles(paths: list[Path], report: ReadReport, salt: str = "", field_map: FieldMap = NO_FIELD_MAP,
                  fmt: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield `articles.raw` records (with ids) from the given files, folders or `-`; every
    record that cannot be read goes to `report` with its file and position. `fmt` forces a
    format (one of FORMATS' values) where the name says none (stdin)."""
    for _, record in read_records(paths, report, salt, field_map, fmt):
        yield record


def input_size(paths: list[Path]) -> int | None:
    """The input's size in bytes (None when stdin is part of it)."""
    files = list(iter_files(paths))
    return None if STDIN in files else sum(_size(p) for p in files)


def read_records(paths: list[Path], report: ReadReport, salt: str = "", field_map: FieldMap = NO_FIELD_MAP,
                 fmt: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """`read_articles`, each record with where it was read ("file:line", "file[index]", ...)."""
    files = list(iter_files(paths))
    report.total_bytes = None if STDIN in files else sum(_size(p) for p in files)
    done = 0
    for path in files:
        report.files += 1
        where = _name(path)
        try:
            for where, item in _read_file(path, fmt, report, done):
                if isinstance(item, _Unparseable):
                    report.problem(where, f"invalid JSON: {item}" if item.json else str(item))
                    continue
                if not isinstance(item, dict):
                    report.problem(where, f"not a JSON object ({type(item).__name__})")
                    continue
                try:
                    article = _complete(item, path, salt, field_map)
                except InvalidArticle as exc:
                    report.problem(where, f"{exc.reason}: {exc}")
                    continue
                report.articles += 1
                yield where, article
        except Exception as exc:  # noqa: BLE001 - a file that cannot be read on is reported, the others are read
            after = "" if where == _name(path) else f" after {where}"
            report.problem(_name(path), f"{type(exc).__name__}: {exc} (reading stopped here{after})")
        done += _size(path)
        report.bytes_read = done


def _size(path: Path) -> int:
    try:
        return 0 if path == STDIN else path.stat().st_size
    except OSError:
        return 0


def _name(path: Path) -> str:
    return "<stdin>" if path == STDIN else str(path)


def _complete(item: dict[str, Any], path: Path, salt: str, field_map: FieldMap) -> dict[str, Any]:
    article = article_from_record(item, None, field_map)
    if salt:  # --new-ids: a new id for every record, even one that came with an id
        new_id, _ = derive_id(article.url, article.source, article.title, article.body or article.html, salt)
        article = dataclasses.replace(article, id=new_id, id_source="sent")
    record = article.to_dict()
    record["metadata"] = {**record["metadata"], "file": "stdin" if path == STDIN else path.name}
    return record


class _Unparseable(str):
    """A record that could not be read: why (JSON errors say `invalid JSON: …`)."""

    json = False


class _BadJson(_Unparseable):
    json = True


# -- opening: raw bytes, decompressed, format -----------------------------------------------------

def _read_file(path: Path, fmt: str | None, report: ReadReport, done: int) -> Iterator[tuple[str, Any]]:
    name = _name(path)
    named_fmt, _ = split_suffixes(path) if path != STDIN else (None, None)
    raw: Any = sys.stdin.buffer if path == STDIN else open(path, "rb", buffering=1 << 20)
    try:
        raw = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
        compression = _compression(raw)
        fmt = fmt or named_fmt
        position = _Position(raw, report, done, _size(path))
        if fmt == "warc":
            yield from _warc(raw if compression in (None, "gzip") else _decompressed(raw, compression), name, report,
                             position)
            return
        stream = _decompressed(raw, compression) if compression else raw
        if fmt == "parquet":
            yield from _parquet(path, stream, bool(compression) or path == STDIN, name, report, done)
            return
        if fmt is None:
            fmt = _sniff(stream)
            if fmt is None:
                yield name, _Unparseable("unknown format: not JSON, JSON Lines, WARC or Parquet by its first bytes "
                                         "(name the file .csv/.tsv/.txt, or pass --format)")
                return
            if fmt == "warc":
                yield from _warc(stream, name, report, position)
                return
            if fmt == "parquet":
                yield from _parquet(path, stream, bool(compression) or path == STDIN, name, report, done)
                return
        if fmt == "txt":
            yield name, parse_txt(stream.read().decode("utf-8"))
        elif fmt == "jsonl":
            yield from _jsonl(stream, name, position)
        elif fmt == "json":
            yield from _json(stream, name, position)
        elif fmt in ("csv", "tsv"):
            yield from _csv(stream, name, "\t" if fmt == "tsv" else ",", position)
        else:
            raise ValueError(f"unsupported format {fmt!r} (expected one of {', '.join(sorted(set(FORMATS.values())))})")
    finally:
        if path != STDIN:
            raw.close()


class _Position:
    """Tells the report how far into the file the reading is (every 64 records: a tell() is a syscall)."""

    def __init__(self, raw: IO[bytes], report: ReadReport, done: int, size: int) -> None:
        self.raw, self.report, self.done, self.size, self.count = raw, report, done, size, 0

    def tick(self) -> None:
        self.count += 1
        if self.count & 63 == 0 and self.size:
            try:
                self.report.bytes_read = self.done + min(self.raw.tell(), self.size)
            except (OSError, ValueError):
                self.size = 0


def _compression(raw: Any) -> str | None:
    head = raw.peek(8)[:8]
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


def _decompressed(raw: Any, compression: str | None) -> Any:
    if compression == "gzip":
        return io.BufferedReader(gzip.GzipFile(fileobj=raw, mode="rb"), 1 << 20)
    if compression == "zstd":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return io.BufferedReader(reader, 1 << 20)
    if compression == "bz2":
        return io.BufferedReader(bz2.BZ2File(raw), 1 << 20)
    if compression == "xz":
        return io.BufferedReader(lzma.LZMAFile(raw), 1 << 20)
    return raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)


def _sniff(stream: Any) -> str | None:
    head = stream.peek(4096)[:4096]
    if head.startswith(b"WARC/"):
        return "warc"
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        return "json"
    return None


# -- JSON ------------------------------------------------------------------------------------------

def _jsonl(stream: IO[bytes], name: str, position: _Position, first_line: int = 1) -> Iterator[tuple[str, Any]]:
    for n, line in enumerate(stream, first_line):
        position.tick()
        if not line.strip():
            continue
        try:
            yield f"{name}:{n}", orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield f"{name}:{n}", _BadJson(str(exc))


def _json(stream: Any, name: str, position: _Position) -> Iterator[tuple[str, Any]]:
    """A .json file: a list (streamed element by element), one object, or JSON Lines."""
    head = stream.peek(64)
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start == b"[":
        text = io.TextIOWrapper(stream, encoding="utf-8-sig")
        try:
            yield from _json_list(text, name, position)
        finally:
            text.detach()
        return
    first = stream.readline()
    try:
        item = orjson.loads(first)
    except orjson.JSONDecodeError:
        item = None
    if isinstance(item, dict):  # a complete object on the first line: JSON Lines (or one object)
        yield f"{name}:1", item
        yield from _jsonl(stream, name, position, first_line=2)
        return
    rest = first + stream.read()  # one object over several lines: read whole, as it must be
    try:
        yield name, orjson.loads(rest)
    except orjson.JSONDecodeError as exc:
        yield name, _BadJson(str(exc))


def _json_list(text: IO[str], name: str, position: _Position) -> Iterator[tuple[str, Any]]:
    """The elements of a JSON list, one at a time, without reading the whole file."""
    decoder = json.JSONDecoder()
    buffer, pos, index, eof = "", 0, 0, False
    whitespace = re.compile(r"[ \t\r\n]*")

    def fill() -> bool:
        nonlocal buffer, pos, eof
        chunk = text.read(_JSON_CHUNK)
        eof = not chunk
        buffer, pos = buffer[pos:] + chunk, 0
        return not eof

    def skip() -> str:
        """The next non-blank character ("" at the end of the input)."""
        nonlocal pos
        while True:
            match = whitespace.match(buffer, pos)
            pos = match.end() if match else pos
            if pos < len(buffer):
                return buffer[pos]
            if not fill():
                return ""

    fill()
    if skip() != "[":
        yield name, _BadJson("expected a list")
        return
    pos += 1
    while True:
        char = skip()
        if char == "]":
            return
        if char == "":
            yield f"{name}[{index}]", _BadJson("the list is not closed (file truncated?)")
            return
        if index:
            if char != ",":
                yield f"{name}[{index}]", _BadJson(f"expected ',' or ']' between elements, found {char!r}")
                return
            pos += 1
            skip()
        while True:
            try:
                item, end = decoder.raw_decode(buffer, pos)
            except json.JSONDecodeError as exc:
                if eof or len(buffer) - pos > _JSON_MAX_ITEM:
                    yield f"{name}[{index}]", _BadJson(f"{exc.msg} (reading stopped here)")
                    return
                fill()
                continue
            if end == len(buffer) and not eof:  # a number cut by the chunk: read on and decode again
                fill()
                continue
            break
        pos = end
        position.tick()
        yield f"{name}[{index}]", item
        index += 1


# -- CSV / TSV -------------------------------------------------------------------------------------

def _csv(stream: IO[bytes], name: str, delimiter: str, position: _Position) -> Iterator[tuple[str, Any]]:
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        yield from _csv_rows(csv.reader(text, delimiter=delimiter), name, position)
    finally:
        text.detach()  # the caller closes the file (and never stdin)


def _csv_rows(reader: Any, name: str, position: _Position) -> Iterator[tuple[str, Any]]:
    header = next(reader, None)
    if header is None:
        return
    header = [h.strip() for h in header]
    record, line = 0, reader.line_num + 1
    for row in reader:
        position.tick()
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        record += 1
        where = f"{name}:{start} (record {record})"
        if len(row) != len(header):
            yield where, _Unparseable(f"{len(row)} fields, the header has {len(header)}")
            continue
        item: dict[str, Any] = {key: cell for key, cell in zip(header, row) if cell != "" and key}
        meta = item.get("metadata")
        if isinstance(meta, str) and meta.lstrip().startswith("{"):
            try:
                item["metadata"] = orjson.loads(meta)
            except orjson.JSONDecodeError as exc:
                yield where, _Unparseable(f"column 'metadata' is not a JSON object: {exc}")
                continue
        yield where, item


# -- Parquet ---------------------------------------------------------------------------------------

def _parquet(path: Path, stream: IO[bytes], spooled: bool, name: str, report: ReadReport,
             done: int) -> Iterator[tuple[str, Any]]:
    """Rows of a Parquet file; `spooled`: read `stream` (stdin, decompressed) into a temporary file first."""
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    spool = None
    if spooled:  # Parquet's index is at its end: it needs a file to seek in
        spool = tempfile.TemporaryFile(prefix="ingest-seed-", suffix=".parquet")
        shutil.copyfileobj(stream, spool, 1 << 20)
        spool.seek(0)
    try:
        parquet = pq.ParquetFile(spool if spool is not None else path)
        rows, size, n = parquet.metadata.num_rows or 1, _size(path), 0
        for batch in parquet.iter_batches(batch_size=256):
            for row in batch.to_pylist():
                n += 1
                yield f"{name} (record {n})", {k: _plain(v) for k, v in row.items()}
            if size:
                report.bytes_read = done + size * n // rows
    finally:
        if spool is not None:
            spool.close()


def _plain(value: Any) -> Any:
    """A Parquet value as JSON has it: times as ISO-8601 (naive = UTC), decimals as numbers."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z") if value.tzinfo else value.isoformat() + "Z"
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        # pyarrow gives a map column as a list of (key, value) pairs
        return [_plain(v) for v in value]
    return value


# -- WARC ------------------------------------------------------------------------------------------

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)


def _warc(stream: IO[bytes], name: str, report: ReadReport, position: _Position) -> Iterator[tuple[str, Any]]:
    from warcio.archiveiterator import ArchiveIterator  # type: ignore[import-untyped]

    records = ArchiveIterator(stream)
    n = 0
    for record in records:
        n += 1
        position.tick()
        if record.rec_type not in ("response", "resource"):
            report.skipped += 1
            continue
        if record.rec_type == "response":
            http = record.http_headers
            status = http.get_statuscode() if http is not None else None
            content_type = (http.get_header("Content-Type") if http is not None else "") or ""
            if status != "200":
                report.skipped += 1
                continue
        else:
            content_type = record.rec_headers.get_header("Content-Type") or ""
        if not content_type.lower().lstrip().startswith(_HTML_TYPES):
            report.skipped += 1
            continue
        payload = record.content_stream().read(MAX_PAGE_BYTES + 1)
        # (the offset only now: warcio's get_record_offset reads the record to its end first)
        record_id = record.rec_headers.get_header("WARC-Record-ID") or ""
        where = f"{name}@{records.get_record_offset()} (record {n}{', ' + record_id if record_id else ''})"
        if len(payload) > MAX_PAGE_BYTES:
            yield where, _Unparseable(f"page larger than {MAX_PAGE_BYTES} bytes")
            continue
        url = record.rec_headers.get_header("WARC-Target-URI") or ""
        try:
            page = extract_page(_decode_html(payload, content_type), url)
        except Exception as exc:  # noqa: BLE001 - one bad page is a problem reported, not the end of the archive
            yield where, _Unparseable(f"HTML extraction failed: {type(exc).__name__}: {exc}")
            continue
        if not page.text.strip():
            yield where, _Unparseable("no text in the page")
            continue
        metadata = {"warc_record_id": record_id, "extraction": page.method}
        yield where, {"url": url, "title": page.title, "body": page.text, "published_at": page.date or None,
                      "ingested_at": record.rec_headers.get_header("WARC-Date") or None,
                      "source": page.sitename or url_host(url), "metadata": metadata}


def _decode_html(payload: bytes, content_type: str) -> str:
    """The page's text: its declared charset (HTTP header, then <meta>), else UTF-8, else cp1252."""
    declared = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.IGNORECASE)
    candidates = [declared.group(1)] if declared else []
    meta = _CHARSET.search(payload[:4096])
    if meta:
        candidates.append(meta.group(1).decode("ascii", "replace"))
    for charset in (*candidates, "utf-8"):
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("cp1252", "replace")
