"""HTML in, text out (worker/stages/extract.py): detection, extraction accuracy on pages written
here (each with its known main text, title and date, and the page furniture that must not get
through), fragments, the pipeline's extract step and its failures.

`python -m tests.unit.test_extract` prints the accuracy and the cost per page (README figures).
"""

from __future__ import annotations

import re
import statistics
import time

import orjson
import pytest

from worker.pipeline import StageError, analyse, analyse_batch
from worker.stages.extract import extract_article, extract_page, html_kind, html_to_text
from worker.stages.validate import parse_article

CAP = 1 << 20

NAV = """<header class="site-header"><a href="/">Home</a> <a href="/world">World</a> <a href="/business">Business</a>
<a href="/sport">Sport</a> <form action="/search"><input name="q" placeholder="Search"></form></header>
<nav><ul><li><a href="/politics">Politics</a></li><li><a href="/science">Science</a></li>
<li><a href="/culture">Culture</a></li></ul></nav>"""
FOOTER = """<footer><p>Copyright 2025 Daily Ledger Media Group. All rights reserved.</p>
<p><a href="/privacy">Privacy policy</a> | <a href="/terms">Terms of use</a> | <a href="/contact">Contact us</a></p>
</footer><div id="cookie-banner">We use cookies to improve your experience. <button>Accept all cookies</button></div>"""
RELATED = """<aside class="related"><h3>Related stories</h3><ul>
<li><a href="/a/1">Mayor opens new bridge after two years of delays</a></li>
<li><a href="/a/2">Storm warning issued for the coast this weekend</a></li>
<li><a href="/a/3">Local team wins the regional cup in a penalty shoot-out</a></li></ul></aside>"""
COMMENTS = """<section id="comments" class="comments"><h3>23 comments</h3>
<div class="comment"><p>Finally some good news for the libraries, about time the council did something!</p></div>
<div class="comment"><p>I wonder who is going to pay for all of this in the end, certainly not them.</p></div>
</section>"""
BOILERPLATE = ["Privacy policy", "Accept all cookies", "Mayor opens new bridge", "Storm warning issued",
               "about time the council did something", "Politics", "Daily Ledger Media Group"]

PAGES = [
    {   # 1. a classic article page: <article>, OpenGraph date, nav, related links, comments, footer
        "name": "article-tag",
        "url": "https://www.dailyledger.example/local/2025/03/28/library-budget",
        "title": "Council approves library budget with longer opening hours",
        "date": "2025-03-28",
        "paragraphs": [
            "The city council approved a new budget for public libraries on Monday evening, adding funds for "
            "longer opening hours and a mobile library that will visit rural schools.",
            "The plan, which passed by eleven votes to four, increases the libraries' annual budget by 2.4 million "
            "euros and keeps every branch open until eight in the evening on weekdays.",
            "Librarians welcomed the decision, saying that demand for evening hours had grown steadily since the "
            "pandemic and that students in particular had asked for quiet places to work.",
            "Opposition councillors argued that the money would have been better spent on repairing roads, but "
            "agreed to review the results of the extended hours after one year.",
        ],
        "template": """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{title} | The Daily Ledger</title>
<meta property="og:title" content="{title}">
<meta property="article:published_time" content="2025-03-28T18:40:00+01:00">
<script>window.dataLayer = [{{"page": "article"}}];</script><style>body {{ font-family: serif; }}</style>
</head><body>{nav}<main><article><h1>{title}</h1><p class="byline">By Anna Berg</p>{body}</article>
{related}{comments}</main>{footer}</body></html>""",
    },
    {   # 2. no <article>: a div soup with classes, the date in JSON-LD only, an ad block in the text
        "name": "div-jsonld",
        "url": "https://news.example.org/economy/ports-strike-ends",
        "title": "Dock workers end strike after agreement on wages",
        "date": "2024-11-05",
        "paragraphs": [
            "Dock workers at the country's three largest ports returned to work on Tuesday after their union "
            "reached an agreement with employers on a two-year wage increase.",
            "The strike, which lasted nine days, had left hundreds of containers waiting at sea and forced "
            "several car makers to slow their assembly lines for lack of parts.",
            "Under the deal, wages rise by six percent this year and by four percent next year, and night "
            "shifts will be paid at a higher rate than before.",
        ],
        "template": """<html><head><title>{title} - News Example</title>
<script type="application/ld+json">{{"@context": "https://schema.org", "@type": "NewsArticle",
"headline": "{title}", "datePublished": "2024-11-05T07:12:00Z"}}</script></head>
<body>{nav}<div class="page"><div class="story-header"><h1 class="headline">{title}</h1></div>
<div class="story-body">{body_with_ad}</div>{related}</div>{footer}</body></html>""",
    },
    {   # 3. a German page with <time datetime>, a table and a blockquote in the text
        "name": "german-time-table",
        "url": "https://www.zeitung.example/wirtschaft/strompreise-sinken.html",
        "title": "Strompreise sinken im zweiten Quartal deutlich",
        "date": "2025-07-02",
        "paragraphs": [
            "Die Strompreise für Haushalte sind im zweiten Quartal deutlich gesunken, wie das Statistische "
            "Landesamt am Mittwoch mitteilte.",
            "Ein Haushalt mit einem Verbrauch von 3500 Kilowattstunden zahlte im Durchschnitt rund elf Prozent "
            "weniger als im Vorjahreszeitraum.",
            "„Der Rückgang ist vor allem auf niedrigere Beschaffungskosten der Versorger zurückzuführen“, sagte "
            "eine Sprecherin des Amtes.",
            "Verbraucherschützer raten dennoch dazu, die eigenen Tarife regelmäßig zu vergleichen und bei "
            "Bedarf den Anbieter zu wechseln.",
        ],
        "template": """<!doctype html><html lang="de"><head><meta charset="utf-8"><title>{title}</title></head>
<body>{nav}<article><header><h1>{title}</h1><time datetime="2025-07-02T09:30:00+02:00">2. Juli 2025</time>
</header>{body_quote}</article>{comments}{footer}</body></html>""",
    },
    {   # 4. a short wire story with its dateline, inside <main> with a newsletter box and share links
        "name": "wire-short",
        "url": "https://wire.example.com/2025/01/15/quake",
        "title": "Earthquake of magnitude 5.1 shakes northern island",
        "date": "2025-01-15",
        "paragraphs": [
            "REYKJAVIK, Jan 15 - An earthquake of magnitude 5.1 struck off the northern coast of the island "
            "early on Wednesday, the meteorological office said, with no immediate reports of damage.",
            "The quake was felt in several towns along the coast, where residents reported shaking furniture "
            "and rattling windows for a few seconds shortly after four in the morning.",
        ],
        "template": """<!DOCTYPE html><html><head><title>{title}</title>
<meta name="date" content="2025-01-15"></head><body>{nav}<main><h1>{title}</h1>
<div class="share"><a href="#">Share on Facebook</a> <a href="#">Tweet</a></div>{body}
<div class="newsletter"><h4>Sign up for our newsletter</h4><p>Get the day's top stories every morning.</p></div>
</main>{footer}</body></html>""",
    },
    {   # 5. an opinion piece: lists in the text, links inside paragraphs, comments and related
        "name": "opinion-lists",
        "url": "https://opinion.example.net/columns/why-trains",
        "title": "Why the night train deserves a second chance",
        "date": "2025-05-20",
        "paragraphs": [
            "Twenty years ago most European night trains had been cancelled, judged too slow and too expensive "
            "to compete with low-cost airlines.",
            "Today the picture looks different: sleeper services between Vienna, Brussels and Amsterdam are sold "
            "out weeks ahead, and new operators keep announcing routes.",
            "Three things explain the revival: travellers who want to avoid flying, city centre stations that "
            "save hours of airport transfers, and a hotel night that comes included in the fare.",
            "None of this will matter if governments keep charging trains full track fees while flights pay no "
            "tax on kerosene, which is the real question the next transport budget has to answer.",
        ],
        "template": """<html><head><title>{title} | Opinion</title>
<meta property="article:published_time" content="2025-05-20"></head><body>{nav}
<div id="content"><h1>{title}</h1><div class="entry-content">{body_links}</div>{comments}</div>
{related}{footer}</body></html>""",
    },
]


def _render(page: dict) -> str:
    paragraphs = page["paragraphs"]
    body = "".join(f"<p>{p}</p>\n" for p in paragraphs)
    body_with_ad = (f"<p>{paragraphs[0]}</p><div class=\"ad\">Advertisement</div>"
                    + "".join(f"<p>{p}</p>" for p in paragraphs[1:]))
    body_quote = "".join(f"<{tag}>{p}</{tag}>" for tag, p in zip(("p", "blockquote", "p", "p"), paragraphs))
    if len(paragraphs) == 4:
        body_quote = (f"<p>{paragraphs[0]}</p><table><tr><td>{paragraphs[1]}</td></tr></table>"
                      f"<blockquote>{paragraphs[2]}</blockquote><p>{paragraphs[3]}</p>")
    linked = [re.sub(r"(night trains)", r'<a href="/trains">\1</a>', p, count=1) for p in paragraphs]
    body_links = "".join(f"<p>{p}</p>" for p in linked)
    return page["template"].format(title=page["title"], nav=NAV, footer=FOOTER, related=RELATED, comments=COMMENTS,
                                   body=body, body_with_ad=body_with_ad, body_quote=body_quote,
                                   body_links=body_links)


def _heavy(markup: str) -> str:
    """The page as big as real ones (~150 KB): a mega-menu of 400 links, 80 KB of inline script,
    a 40 KB JSON state blob and 60 teasers before the footer."""
    links = "".join(f"<a href='/s/{i}'>Section {i} news and analysis</a>" for i in range(400))
    menu = f"<nav class='mega'>{links}</nav>"
    script = "<script>var bundle = '" + "abcdefghij" * 8000 + "';</script>"
    blob = orjson.dumps({"items": list(range(8000))}).decode()
    state = f"<script type='application/json' id='state'>{blob}</script>"
    teasers = "<div class='teasers'>" + "".join(
        f"<div class='teaser'><a href='/t/{i}'><h4>Teaser headline number {i} about something else</h4></a>"
        f"<p>Short teaser text {i}.</p></div>" for i in range(60)) + "</div>"
    markup = markup.replace("<body>", "<body>" + menu + script, 1)
    return markup.replace("</body>", state + teasers + "</body>", 1)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def accuracy(extracted: str, expected: str) -> tuple[float, float, float]:
    """Word-level precision, recall and F1 of the extracted text against the page's own text
    (as bags of words: order is not what an extractor gets wrong)."""
    got, want = _words(extracted), _words(expected)
    common = sum(min(got.count(w), want.count(w)) for w in set(got))
    precision = common / len(got) if got else 0.0
    recall = common / len(want) if want else 0.0
    return precision, recall, (2 * precision * recall / (precision + recall) if common else 0.0)


@pytest.mark.parametrize("heavy", [False, True], ids=["small", "150KB"])
@pytest.mark.parametrize("page", PAGES, ids=[p["name"] for p in PAGES])
def test_main_text_title_and_date_from_pages(page, heavy):
    markup = _heavy(_render(page)) if heavy else _render(page)
    result = extract_page(markup, page["url"])
    precision, recall, f1 = accuracy(result.text, "\n".join(page["paragraphs"]))
    assert f1 >= 0.95 and recall >= 0.95, (precision, recall, result.text)
    for furniture in BOILERPLATE:
        assert furniture not in result.text
    assert result.title == page["title"]
    assert result.date.startswith(page["date"])
    assert result.method == "trafilatura"


def test_html_kind():
    assert html_kind("Plain text, with a < b and c > d.") is None
    assert html_kind("Text that mentions one <b>bold</b> word") == "fragment"
    assert html_kind("<p>One.</p><p>Two.</p>") == "fragment"
    assert html_kind("  <!DOCTYPE html>\n<html><body>x</body></html>") == "page"
    assert html_kind("<html lang='en'><body><p>x</p></body></html>") == "page"
    assert html_kind("x" * 100_000 + "<p>late</p><p>tags</p>") is None  # only the first 64 KB are looked at


def test_fragment_text_keeps_paragraphs_and_decodes_entities():
    text = html_to_text("<p>Tom &amp; Jerry&nbsp;meet.</p><p>Second <b>bold</b> line<br>and more</p>"
                        "<script>track()</script><style>p{}</style>")
    assert text == "Tom & Jerry\u00a0meet.\n\nSecond bold line\n\nand more"
    assert html_to_text("") == "" and html_to_text("<!-- only a comment -->") == ""


def test_extract_article_from_html_field_fills_missing_fields():
    page = PAGES[0]
    record = {"raw_html": _render(page), "link": page["url"], "description": "A short summary of the story."}
    article = extract_article(parse_article(None, orjson.dumps(record), CAP))
    assert article.body_format == "html" and article.html == ""
    assert article.title == page["title"] and article.published_at.startswith("2025-03-28")
    assert article.body.startswith(page["paragraphs"][0])
    assert article.metadata["sent_body"] == "A short summary of the story."  # the feed's summary, kept
    assert article.id_source == "url" and article.source == "dailyledger.example"


def test_the_record_fields_win_over_the_page():
    record = {"id": "x1", "title": "Sent title", "published_at": "2020-01-01", "body": _render(PAGES[1])}
    article = extract_article(parse_article(None, orjson.dumps(record), CAP))
    assert (article.title, article.published_at) == ("Sent title", "2020-01-01")
    assert article.body.startswith(PAGES[1]["paragraphs"][0])


def test_plain_text_is_left_alone():
    article = parse_article(None, orjson.dumps({"id": "p", "body": "Plain text, a < b."}), CAP)
    assert extract_article(article) is article


def test_pipeline_times_the_extract_step_only_for_html():
    html = parse_article(None, orjson.dumps({"id": "h", "html": _render(PAGES[3])}), CAP)
    plain = parse_article(None, orjson.dumps({"id": "p", "body": "\n\n".join(PAGES[3]["paragraphs"])}), CAP)
    from_html, from_text = analyse_batch([html, plain], 126)
    assert "extract" in from_html.timings_ms and "extract" not in from_text.timings_ms
    assert from_html.body_format == "html" and from_text.body_format == "text"
    assert from_html.content.body.split() == from_text.content.body.split()
    assert from_html.hashes.content_hash == from_text.hashes.content_hash  # the same article, the same hash


def test_html_without_text_is_a_stage_error_not_a_crash():
    no_text = "<html><body><script>x()</script></body></html>"
    empty_page = parse_article(None, orjson.dumps({"id": "e", "html": no_text}), CAP)
    with pytest.raises(StageError) as info:
        analyse(empty_page, 126)
    assert info.value.stage == "extract"
    broken = parse_article(None, orjson.dumps({"id": "b", "body": "<div>" * 3000 + "text"}), CAP)
    try:
        analyse(broken, 126)
    except StageError as exc:
        assert exc.stage in ("extract", "normalise")


def measure(rounds: int = 20) -> None:
    """The README's figures: accuracy per page and the cost of extract_page per page."""
    print(f"{'page':20} {'KB':>5} {'precision':>9} {'recall':>7} {'F1':>6} {'title':>5} {'date':>5} {'ms':>7}")
    for heavy in (False, True):
        costs = []
        for page in PAGES:
            markup = _heavy(_render(page)) if heavy else _render(page)
            result = extract_page(markup, page["url"])
            p, r, f = accuracy(result.text, "\n".join(page["paragraphs"]))
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                extract_page(markup, page["url"])
                times.append((time.perf_counter() - started) * 1000)
            costs.append(statistics.median(times))
            print(f"{page['name']:20} {len(markup) / 1024:5.1f} {p:9.3f} {r:7.3f} {f:6.3f} "
                  f"{result.title == page['title']!s:>5} {result.date.startswith(page['date'])!s:>5} {costs[-1]:7.2f}")
        print(f"median cost per page ({'~150 KB' if heavy else '~2 KB'} pages): {statistics.median(costs):.2f} ms")
    fragment = "".join(f"<p>{p}</p>" for p in PAGES[0]["paragraphs"])
    started = time.perf_counter()
    for _ in range(rounds * 10):
        html_to_text(fragment)
    print(f"fragment to text: {(time.perf_counter() - started) / (rounds * 10) * 1000:.3f} ms")
    plain = "\n\n".join(PAGES[0]["paragraphs"]) * 4
    started = time.perf_counter()
    for _ in range(rounds * 1000):
        html_kind(plain)
    per_call = (time.perf_counter() - started) / (rounds * 1000) * 1e6
    print(f"plain-text check (html_kind, {len(plain)} chars): {per_call:.2f} µs")


if __name__ == "__main__":
    measure()
