"""Reading article files for the seeder and `ingest enrich`: .txt, .json, .jsonl and folders.

A `.txt` file is one article: its first line is the headline when it looks like one, and a
trailing `Original Source: …` line names the source. A `.json` file holds one article object
or a list of them; a `.jsonl` file one object per line. Ids are stable — derived from the
source and the text — so replaying the same files sends the same ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import xxhash

from worker.stages.normalise import fold_whitespace, source_trailer

SUPPORTED_SUFFIXES = {".txt", ".json", ".jsonl", ".ndjson"}
_HEADLINE_MAX_WORDS = 25


@dataclass
class ReadReport:
    files: int = 0
    articles: int = 0
    errors: list[str] = field(default_factory=list)  # "path[:line]: reason" — never dropped silently


def article_id(source: str, title: str, body: str, salt: str = "") -> str:
    """Stable id: the same source and text give the same id; `salt` makes a new one (--new-ids)."""
    text = f"{salt}\x1f{source.strip().lower()}\x1f{fold_whitespace(title)}\x1f{fold_whitespace(body)}"
    return "art-" + xxhash.xxh3_128_hexdigest(text.encode("utf-8"))[:24]


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


def iter_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
        else:
            yield path


def read_articles(paths: list[Path], report: ReadReport, salt: str = "") -> Iterator[dict[str, Any]]:
    """Yield article dicts (with ids) from the given files/folders; problems go to `report`."""
    for path in iter_files(paths):
        report.files += 1
        try:
            for where, item in _read_file(path):
                if isinstance(item, _Unparseable):
                    report.errors.append(f"{where}: invalid JSON: {item}")
                    continue
                if not isinstance(item, dict):
                    report.errors.append(f"{where}: not a JSON object")
                    continue
                article = _complete(item, path, salt)
                if not isinstance(article.get("body"), str) or not article["body"].strip():
                    report.errors.append(f"{where}: no body")
                    continue
                report.articles += 1
                yield article
        except (OSError, UnicodeDecodeError, orjson.JSONDecodeError) as exc:
            report.errors.append(f"{path}: {type(exc).__name__}: {exc}")


def _read_file(path: Path) -> Iterator[tuple[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".txt":
        yield str(path), parse_txt(path.read_text(encoding="utf-8"))
    elif suffix == ".json":
        data = orjson.loads(path.read_bytes())
        items = data if isinstance(data, list) else [data]
        for i, item in enumerate(items):
            yield f"{path}[{i}]", item
    elif suffix in (".jsonl", ".ndjson"):
        with path.open("rb") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield f"{path}:{n}", orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    yield f"{path}:{n}", _Unparseable(str(exc))
    else:
        raise OSError(f"unsupported file type {suffix!r} (expected .txt, .json, .jsonl)")


class _Unparseable(str):
    """Marks a JSONL line that did not parse; read_articles reports it as not an object."""


_CLEAN_KEY = re.compile(r"[^a-z_]")


def _complete(item: dict[str, Any], path: Path, salt: str) -> dict[str, Any]:
    article: dict[str, Any] = {k: item.get(k) for k in ("id", "title", "body", "source", "url", "published_at",
                                        "ingested_at", "metadata")}
    article["title"] = article["title"] or ""
    article["source"] = article["source"] or ""
    article["url"] = article["url"] or ""
    article["metadata"] = {**(article["metadata"] or {}), "file": path.name}
    if salt or not article["id"]:
        article["id"] = article_id(article["source"], article["title"], article["body"] or "", salt)
    return article
