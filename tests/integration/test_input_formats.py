"""Articles as real producers send them, through a real broker and a real worker (issue 20).

- Keyless messages from a plain aiokafka producer and from `kcat` (Debian's package, as a new
  user would run it: `kcat -P -t articles.raw`, no key) are enriched.
- A record with no id gets the derived id (URL rule, content rule), and the same message again
  is a redelivery (the first verdict again, `ingest_replays_total` up, no duplicate event), not
  a duplicate. The seeder and the worker derive the same id for the same record.
- news-please, trafilatura and RSS shapes, a key without an id, a crawler's HTML page; a key
  that differs from the id is still `key_mismatch`.

kcat is required: the test fails (never skips) when it is not installed.
"""

from __future__ import annotations

import asyncio
import gzip
import shutil
import subprocess

import orjson
import pytest

import topics
from worker.io.seeder import run_seeder
from worker.kafka.admin import create_topics
from worker.stages.ids import derive_id

from .helpers import assert_valid, consume_until, decode, produce, settings_for, start_worker

pytestmark = pytest.mark.integration

TEXTS = [
    "The city council approved a new budget for public libraries on Monday evening, adding funds for longer "
    "opening hours and a mobile library that will visit rural schools twice a month from September on.",
    "Dock workers at the three largest ports returned to work on Tuesday after their union reached an "
    "agreement with employers on a two-year wage increase, ending a strike that lasted nine days.",
    "An earthquake of magnitude 5.1 struck off the northern coast early on Wednesday, the meteorological "
    "office said, with no immediate reports of damage in the towns along the coast.",
    "Night trains between Vienna, Brussels and Amsterdam are sold out weeks ahead, and new operators keep "
    "announcing routes as travellers look for ways to cross the continent without flying.",
    "Electricity prices for households fell markedly in the second quarter, the statistics office said on "
    "Wednesday, mostly because suppliers paid less for the power they bought on the wholesale market.",
    "The regional football cup was decided in a penalty shoot-out on Sunday after a goalless final that "
    "went to extra time in front of a crowd of twelve thousand in the old stadium by the river.",
    "A new cycle lane along the harbour opened on Friday, closing the last gap in a route that now runs "
    "for eighteen kilometres from the airport to the university campus in the north of the city.",
    "The museum of modern art will stay open until midnight on Fridays this summer, its director said, "
    "after a trial last year drew more visitors in the late evening than on any weekday afternoon.",
    "The university will build a second library on its northern campus, with room for two thousand "
    "students and a reading room that stays open through the night during the examination weeks.",
]
PAGE = """<!DOCTYPE html><html><head><title>Harbour cycle lane opens | City News</title>
<meta property="article:published_time" content="2025-06-13T09:00:00+02:00"></head><body>
<nav><a href="/">Home</a> <a href="/traffic">Traffic</a></nav><article><h1>Harbour cycle lane opens</h1>
<p>A new cycle lane along the harbour opened on Friday, closing the last gap in a route that now runs for
eighteen kilometres from the airport to the university campus in the north of the city.</p>
<p>The city said the lane had cost 4.2 million euros and that counters would publish daily figures.</p>
</article><footer>Copyright City News. Privacy policy.</footer></body></html>"""


def kcat() -> str:
    found = shutil.which("kcat") or shutil.which("kafkacat")
    assert found, ("kcat is not installed: this test produces with Debian's kcat as a user would "
                   "(apt-get install -y kcat; CI's .ci/run must install it)")
    return found


def kcat_produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """`kcat -P -t TOPIC`: one message per line, no key (as the issue's user ran it)."""
    done = subprocess.run([kcat(), "-P", "-b", bootstrap, "-t", topic, "-X", "acks=all"],
                          input=b"\n".join(values) + b"\n", capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def metric(text: str, name: str) -> float:
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")), 0.0)


def test_keyless_and_idless_articles_from_aiokafka_kcat_and_the_seeder(kafka, names, tmp_path):
    kcat()  # fail at once, with the reason, when it is missing
    bootstrap = kafka.bootstrap_servers
    settings = settings_for(bootstrap, names)
    asyncio.run(create_topics(settings))
    raw = names.topic("articles.raw")

    news_please = {"maintext": TEXTS[1], "title": "Dock workers end strike", "date_publish": "2024-11-05 07:12:00",
                   "source_domain": "news.example.org", "url": "https://www.news.example.org/ports?utm_source=x",
                   "authors": ["A. Berg"], "language": "en"}
    idless = {"title": "Quake shakes the north", "body": TEXTS[2]}  # no id, no URL: the content rule
    by_aiokafka = [
        (None, orjson.dumps({"id": "keyless-1", "title": "Library budget", "body": TEXTS[0]})),
        (None, orjson.dumps(news_please)),
        (None, orjson.dumps(idless)),
        (b"key-as-id", orjson.dumps({"body": TEXTS[3], "title": "Night trains"})),
        (None, orjson.dumps({"raw_html": PAGE, "link": "https://citynews.example/harbour-lane"})),
        (b"other-key", orjson.dumps({"id": "not-the-key", "body": TEXTS[4]})),
    ]
    trafilatura_shape = {"text": TEXTS[5], "title": "Cup final", "hostname": "sport.example", "date": "2025-05-18"}
    rss_shape = {"title": "Museum open late", "description": TEXTS[7], "pubDate": "Fri, 13 Jun 2025 08:00:00 GMT",
                 "link": "https://museum.example/news/late-fridays"}
    by_kcat = [orjson.dumps({"id": "kcat-1", "title": "Electricity prices fall", "body": TEXTS[4]}),
               orjson.dumps(trafilatura_shape), orjson.dumps(rss_shape)]

    ids = {
        "news_please": derive_id(news_please["url"], "", "", "")[0],
        "idless": derive_id("", "", idless["title"], idless["body"])[0],
        "html": derive_id("https://citynews.example/harbour-lane", "", "", "")[0],
        "trafilatura": derive_id("", "sport.example", trafilatura_shape["title"], trafilatura_shape["text"])[0],
        "rss": derive_id(rss_shape["link"], "", "", "")[0],
    }
    expected = {"keyless-1": "sent", ids["news_please"]: "url", ids["idless"]: "content", "key-as-id": "key",
                ids["html"]: "url", "kcat-1": "sent", ids["trafilatura"]: "content", ids["rss"]: "url"}

    worker = start_worker(bootstrap, names, tmp_path)
    try:
        asyncio.run(produce(bootstrap, raw, by_aiokafka))
        kcat_produce(bootstrap, raw, by_kcat)
        enriched = decode(asyncio.run(consume_until(bootstrap, names.topic("articles.enriched"), len(expected),
                                                    timeout=120, keys={i.encode() for i in expected})))
        first = {m["id"]: m for m in enriched}
        assert set(first) == set(expected), sorted(set(expected) - set(first))
        assert {i: first[i]["id_source"] for i in expected} == expected
        assert_valid(topics.ENRICHED, enriched)
        assert first[ids["news_please"]]["source"] == "news.example.org"
        assert first[ids["news_please"]]["metadata"]["authors"] == ["A. Berg"]
        assert first[ids["news_please"]]["published_at"] == "2024-11-05 07:12:00"
        assert first[ids["news_please"]]["event_time"]["source"] == "published"
        page = first[ids["html"]]
        assert page["body_format"] == "html" and page["title"] == "Harbour cycle lane opens"
        assert page["content"]["body"].startswith("A new cycle lane") and "Privacy" not in page["body"]
        assert page["event_time"]["source"] == "published" and "extract" in page["timings_ms"]
        assert first[ids["rss"]]["body"] == TEXTS[7]
        dead = decode(asyncio.run(consume_until(bootstrap, names.topic("articles.dlq"), 1, timeout=30)))
        assert [d["reason"] for d in dead] == ["key_mismatch"]

        # The same messages again, keyless, with no id: the same ids, so redeliveries.
        replays_before = metric(worker.scrape_metrics(), "ingest_replays_total")
        asyncio.run(produce(bootstrap, raw, [(None, orjson.dumps(idless))]))
        kcat_produce(bootstrap, raw, [orjson.dumps(trafilatura_shape)])

        # The seeder derives the same id as the worker: a news-please archive, then the same
        # record from kcat (its own shape, no id, no key) is a redelivery of the seeded one.
        archive = tmp_path / "crawl.jsonl.gz"
        seeded_record = {"maintext": TEXTS[8], "title": "Campus library", "url": "https://uni.example/library",
                         "date_publish": "2025-06-13"}
        archive.write_bytes(gzip.compress(orjson.dumps(seeded_record) + b"\n"))
        summary = asyncio.run(run_seeder([archive], settings, progress=False))
        assert summary.sent == 1 and summary.ids == [derive_id(seeded_record["url"], "", "", "")[0]]
        seeded_id = summary.ids[0]
        twice = [ids["idless"], ids["trafilatura"]]
        messages = decode(asyncio.run(consume_until(bootstrap, names.topic("articles.enriched"),
                                                    len(enriched) + 3, timeout=90)))
        assert [m["id"] for m in messages].count(seeded_id) == 1
        kcat_produce(bootstrap, raw, [orjson.dumps(seeded_record)])
        messages = decode(asyncio.run(consume_until(bootstrap, names.topic("articles.enriched"),
                                                    len(enriched) + 4, timeout=90)))
        for article_id in [*twice, seeded_id]:
            copies = [m for m in messages if m["id"] == article_id]
            assert len(copies) == 2, (article_id, len(copies))
            assert copies[1]["dedup"] == copies[0]["dedup"]  # the first verdict again
            assert copies[0]["dedup"]["status"] == "unique"
        # the seeder's copy (its claim verified) and kcat's (derived by the worker) both say "url"
        assert {m["id_source"] for m in messages if m["id"] == seeded_id} == {"url"}
        assert metric(worker.scrape_metrics(), "ingest_replays_total") == replays_before + 3
        duplicates = decode(asyncio.run(consume_until(bootstrap, names.topic("articles.duplicates"), 1, timeout=5)))
        assert not [d for d in duplicates if d["id"] in [*twice, seeded_id]]
        assert worker.proc.poll() is None, worker.log_tail()
    finally:
        worker.stop()
