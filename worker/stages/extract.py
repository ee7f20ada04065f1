"""Stage 0b: HTML in, text out. Runs before normalise, on articles whose text is HTML.

An article is HTML when it carries the page (`html`, `raw_html`, ... see stages/fields.py) or
when its body is HTML (`html_kind`):

- a page (a doctype, `<html>`, `<head>` or `<body>` near the start): its main text is extracted
  with trafilatura (boilerplate, navigation, comments and related-links blocks left out), and
  the page's title, publication date (htmldate: meta tags, JSON-LD, <time>, the URL), canonical
  URL and site name fill the article's fields that the record left empty;
- a fragment (RSS descriptions, CMS exports: at least two known HTML tags): it is all content,
  so it is turned into text as it is (`html_to_text`: block elements become paragraphs,
  scripts and styles dropped, entities decoded).

When trafilatura finds no main text in a page (very short pages), the page's visible text
outside navigation, header, footer and forms stands in; when there is none either, the sent
body (if it was not HTML itself) stands; else the stage fails and the article is dead-lettered
(`stage_error`, stage `extract`). Measured cost and accuracy: README ("HTML in, text out").
"""

from __future__ import annotations

import dataclasses
import html as html_module
import logging
import re
from dataclasses import dataclass
from itertools import islice
from typing import Any, Literal

from worker.stages.validate import Article

HtmlKind = Literal["page", "fragment"]

_PAGE = re.compile(r"<(?:!doctype\s+html|html[\s>]|head[\s>]|body[\s>])", re.IGNORECASE)
# Opening, closing or empty tags of elements an article's HTML is made of.
_TAG = re.compile(r"</?(?:p|div|br|span|a|h[1-6]|li|ul|ol|article|section|table|tr|td|th|img|strong|em|b|i|u|"
                  r"blockquote|figure|figcaption|header|footer|nav|main|aside|script|style|iframe|font|"
                  r"center|small|sup|sub|hr|pre|code|time|meta|link)\b[^<>]{0,2000}>", re.IGNORECASE)
_SNIFF_CHARS = 64 * 1024
_BLOCKS = frozenset({"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "article", "section",
                     "table", "tr", "blockquote", "figure", "figcaption", "header", "footer", "main", "aside",
                     "pre", "hr", "dd", "dt", "dl", "title", "address", "details", "summary"})
_DROPPED = ("script", "style", "noscript", "template", "svg", "iframe", "object", "head")
_FURNITURE = ("nav", "header", "footer", "form", "aside", "menu")
_PARAGRAPH_BREAK = "\n\n"
# trafilatura and htmldate log every page they cannot parse at ERROR: the outcome is reported
# here already (a dead letter, a seeder problem), so their lines would only repeat it, per page.
for _name in ("trafilatura", "htmldate", "courlan", "justext"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


def html_kind(text: str) -> HtmlKind | None:
    """"page", "fragment" or None (plain text). Cheap on plain text: one `find("<")`."""
    first = text.find("<")
    if first < 0:
        return None
    if _PAGE.search(text, first, first + 4096):
        return "page"
    if sum(1 for _ in islice(_TAG.finditer(text, first, _SNIFF_CHARS), 2)) >= 2:
        return "fragment"
    return None


@dataclass(frozen=True, slots=True)
class Page:
    """What a page says: its main text and, when it has them, its title, date, URL and site."""

    text: str
    title: str = ""
    date: str = ""
    url: str = ""
    sitename: str = ""
    method: str = "trafilatura"  # or "visible_text" (trafilatura found no main text), "fragment"


def warm_up() -> None:
    """Import trafilatura (and its date and URL libraries) now rather than on the first HTML article."""
    import trafilatura  # noqa: F401


def extract_page(page: str, url: str = "") -> Page:
    """The main text and metadata of an HTML page (module docstring)."""
    import trafilatura

    document: Any = trafilatura.bare_extraction(
        page, url=url or None, with_metadata=True, include_comments=False, include_tables=True,
        include_images=False, include_links=False, deduplicate=False, date_extraction_params=_DATE_PARAMS,
        fast=True)
    if document is None:
        return Page(text=html_to_text(page, drop_furniture=True), method="visible_text")
    meta = {name: (getattr(document, name, None) or "").strip() for name in ("title", "date", "url", "sitename")}
    text, method = _paragraphs(document.text or "", meta["title"]), "trafilatura"
    if not text:
        text, method = html_to_text(page, drop_furniture=True), "visible_text"
    return Page(text=text, method=method, **meta)


# fast=True: trafilatura's own extractor without its readability/jusText fallbacks, which took
# 55-65 % of the time on 150 KB pages and changed nothing on the test pages (README figures).
# htmldate (through trafilatura): the original publication date rather than the last change,
# with its time and zone when the page gives them; searched in the text too.
_DATE_PARAMS = {"extensive_search": True, "original_date": True, "outputformat": "%Y-%m-%dT%H:%M:%S%z"}


def _paragraphs(text: str, title: str = "") -> str:
    """One paragraph per line, without a first line that only repeats the title (the page's <h1>)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and title and " ".join(lines[0].split()).casefold() == " ".join(title.split()).casefold():
        lines = lines[1:]
    return _PARAGRAPH_BREAK.join(lines)


def html_to_text(markup: str, drop_furniture: bool = False) -> str:
    """All the text of an HTML fragment or page, one paragraph per block element, with scripts,
    styles and (with `drop_furniture`) navigation, header, footer and forms left out."""
    from lxml import etree  # type: ignore[import-untyped]  # (installed with trafilatura)
    from lxml import html as lxml_html

    try:
        root = lxml_html.fromstring(markup)
    except (ValueError, etree.ParserError):  # empty document, or only a comment / declaration
        return ""
    dropped = _DROPPED + (_FURNITURE if drop_furniture else ())
    for element in list(root.iter(*dropped)):
        if element.getparent() is not None:
            element.drop_tree()
        else:
            element.clear()
    pieces: list[str] = []

    def walk(element: Any) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in _BLOCKS:
            pieces.append("\n")
        if element.text and tag:
            pieces.append(element.text)
        for child in element:
            walk(child)
        if tag in _BLOCKS:
            pieces.append("\n")
        if element.tail:
            pieces.append(element.tail)

    walk(root)
    text = html_module.unescape("".join(pieces))
    return _PARAGRAPH_BREAK.join(line.strip() for line in re.split(r"\n", text) if line.strip())


def has_html(article: Article) -> bool:
    """Whether `extract_article` has anything to do: the record carried a page, or its body is HTML."""
    return bool(article.html) or html_kind(article.body) is not None


def extract_article(article: Article) -> Article:
    """The article with its text out of its HTML, if it has any (module docstring); the same
    article when it has none. Raises ValueError when the HTML holds no text at all."""
    kind = "page" if article.html else html_kind(article.body)
    if kind is None:
        return article
    markup = article.html or article.body
    page = extract_page(markup, article.url) if kind == "page" else Page(html_to_text(markup), method="fragment")
    text = page.text
    if not text and article.html and article.body and html_kind(article.body) is None:
        text = article.body  # the page had nothing; the body the record sent stands
    if not text.strip():
        raise ValueError(f"no text could be extracted from the HTML ({len(markup)} characters)")
    metadata = article.metadata
    if article.html and article.body and text != article.body:
        metadata = {**metadata, "sent_body": article.body}  # e.g. a feed's summary beside the page
    return dataclasses.replace(
        article, body=text, html="", body_format="html", metadata=metadata,
        title=article.title or page.title,
        published_at=article.published_at if article.published_at is not None else (page.date or None),
        url=article.url or page.url, source=article.source or page.sitename)
