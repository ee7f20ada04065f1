"""Replays in any order (issue 16), through the real broker and a real worker process.

A labelled multi-year file — 36 distinct originals (the five seeds and 31 articles of
worker/quality/data/articles.jsonl, in eight languages), exact copies and near copies of some of them,
each group published within two days, the groups spread over two years, the times written in
several formats — is SHUFFLED with a fixed seed and replayed onto articles.raw (the seeder reads
it in file order; four input partitions shuffle it some more on the way to the dedup funnel).
In the middle of it sits one article published "2099-01-01" (clamped: it must not move the
index's clock and evict anything) and one published "yesterday" (unreadable: ingestion time).

Then, exactly:
- first replay: every group has exactly one `unique` member, the others are duplicates of a
  member of the same group, and no article is a duplicate of anything outside its group —
  whatever the arrival order; event times read from every format; the clamp and the fallback are
  visible in the enriched messages and the metrics, and nothing was evicted;
- the same file again under new ids (`--new-ids`): EVERY article `exact_duplicate` of an id of
  the first replay with the same text;
- once more after a restart (the index rebuilt from its changelog): the same.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

import topics
from worker.io.seeder import run_seeder
from worker.io.sources import ReadReport, read_articles
from worker.kafka.admin import create_topics

from .helpers import assert_valid, consume_until, decode, settings_for, start_worker

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SEED = 16  # the shuffle and the dates: the same file on every run
FIRST_DAY = datetime(2023, 1, 1, tzinfo=UTC)
SPAN_DAYS = 730  # the groups' dates spread over two years
FUTURE = "2099-01-01T00:00:00Z"
UNREADABLE = "yesterday"
ORIGINALS_FROM_DATA = 31
EXACT_COPIES = (0, 3, 7, 12, 18, 25, 30)  # group numbers (positions in the originals list)
NEAR_COPIES = (0, 1, 2, 4, 9, 14, 21, 33)  # group numbers; near copies drop the last paragraph
DOUBLE_EXACT = 7  # this group gets a second exact copy


def originals() -> list[dict]:
    """36 distinct originals: the five seeds and the first 31 other articles of articles.jsonl."""
    seeds = list(read_articles([ROOT / "seeds"], ReadReport()))
    data = [json.loads(line) for line in (ROOT / "worker/quality/data/articles.jsonl").read_text().splitlines()
            if line.strip()]
    others = [d for d in data if "seed" not in d][:ORIGINALS_FROM_DATA]
    out = [{"title": s["title"], "body": s["body"], "source": "seed.example", "lang": "en"} for s in seeds]
    out += [{"title": d["title"], "body": d["body"], "source": d["outlet"], "lang": d["lang"]} for d in others]
    return out


def _paragraphs(body: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n|\n", body) if p.strip()]


def near_copy(body: str) -> str:
    """A syndicated cut: the last paragraph of text dropped (not a trailing "Post Comment" line,
    which normalisation strips anyway), or, for a short article, its last sentence."""
    paragraphs = _paragraphs(body)
    if len(paragraphs) >= 4:
        last = max(i for i, p in enumerate(paragraphs) if len(p.strip()) >= 40)
        return "\n\n".join(paragraphs[:last] + paragraphs[last + 1:])
    sentences = re.split(r"(?<=[.!?。])\s*", body.strip())
    sentences = [s for s in sentences if s]
    assert len(sentences) >= 4, body[:80]
    return " ".join(sentences[:-1])


def _time_text(moment: datetime, style: int):
    """The same kind of instant written the ways real feeds write it."""
    if style == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == 1:
        return format_datetime(moment, usegmt=True)  # RFC 2822, as RSS carries it
    if style == 2:
        return int(moment.timestamp())  # epoch seconds, a JSON number
    if style == 3:
        return int(moment.timestamp() * 1000)  # epoch milliseconds
    return moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()  # with an offset


def build_file(path: Path) -> tuple[list[dict], dict[str, dict]]:
    """Write the shuffled replay file; return its articles (file order) and, per id, its label:
    group, kind (original / exact / near), expected epoch (None: not a published time)."""
    rnd = random.Random(SEED)
    rows: list[dict] = []
    for group, original in enumerate(originals()):
        day = FIRST_DAY + timedelta(days=rnd.uniform(0, SPAN_DAYS))
        variants = [("original", original["body"], original["source"])]
        if group in EXACT_COPIES:
            variants.append(("exact", original["body"], "mirror.example"))
        if group == DOUBLE_EXACT:
            variants.append(("exact", original["body"], "aggregator.example"))
        if group in NEAR_COPIES:
            variants.append(("near", near_copy(original["body"]), "syndicated.example"))
        for n, (kind, body, source) in enumerate(variants):
            moment = (day + timedelta(hours=rnd.uniform(0, 48))).replace(microsecond=0)
            rows.append({"id": f"replay-{group:02d}-{n}", "title": original["title"], "body": body,
                         "source": source, "published_at": _time_text(moment, rnd.randrange(5)),
                         "metadata": {"group": group, "kind": kind, "lang": original["lang"]},
                         "_epoch": moment.timestamp()})
    rnd.shuffle(rows)
    # The two odd dates, in the middle of the replay: distinct articles of their own.
    odd = [{"id": "replay-future", "title": "Libraries get more money", "body": LIBRARIES,
            "source": "future.example", "published_at": FUTURE, "_epoch": None},
           {"id": "replay-yesterday", "title": "Harbour reopens", "body": HARBOUR,
            "source": "vague.example", "published_at": UNREADABLE, "_epoch": None}]
    for n, row in enumerate(odd):
        row["metadata"] = {"group": 100 + n, "kind": "original", "lang": "en"}
    middle = len(rows) // 2
    rows[middle:middle] = odd
    labels = {r["id"]: {**r["metadata"], "epoch": r.pop("_epoch")} for r in rows}
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return rows, labels


LIBRARIES = ("The city council approved a new budget for public libraries on Monday evening, adding funds "
             "for longer opening hours and a mobile library that will visit rural schools twice a month. "
             "Librarians welcomed the decision after years of cuts, and the first bus is expected in spring.")
HARBOUR = ("The old fishing harbour reopened on Saturday after two years of repairs to its sea wall, which "
           "storms had breached in the winter of the flood. Fishermen moved their boats back from the "
           "neighbouring port, and the market hall on the quay will open again at the end of the month.")


async def enriched(kafka, names, ids: list[str], timeout: float = 180.0) -> dict[str, dict]:
    """The latest enriched message of each id, once every one of `ids` has one."""
    messages = decode(await consume_until(kafka.bootstrap_servers, names.topic(topics.ENRICHED.base_name),
                                          0, timeout=timeout, settle=1.0, keys={i.encode() for i in ids}))
    latest = {m["id"]: m for m in messages}
    missing = sorted(set(ids) - latest.keys())
    assert not missing, f"{len(missing)} of {len(ids)} never enriched, e.g. {missing[:5]}"
    return latest


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text exposition (0.0 when the series does not exist yet)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    series = f"{name}{{{wanted}}}" if wanted else name
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def assert_every_copy_found(again: dict[str, dict], renamed_rows: list[tuple[str, dict]],
                            first_ids_by_body: dict[str, set[str]]) -> None:
    wrong = []
    for new_id, row in renamed_rows:
        dedup = again[new_id]["dedup"]
        if dedup["status"] != "exact_duplicate" or dedup["duplicate_of"] not in first_ids_by_body[row["body"]]:
            wrong.append((new_id, row["id"], dedup["status"], dedup["duplicate_of"]))
    assert not wrong, f"{len(wrong)} of {len(renamed_rows)} copies not found: {wrong[:5]}"


def test_a_shuffled_multi_year_replay_then_the_same_file_under_new_ids(kafka, names, tmp_path):
    path = tmp_path / "archive.jsonl"
    rows, labels = build_file(path)
    assert 30 <= len({label["group"] for label in labels.values()}) - 2 <= 40
    epochs = [label["epoch"] for label in labels.values() if label["epoch"] is not None]
    assert max(epochs) - min(epochs) > 600 * 86400  # really spread over about two years
    middle = [r["id"] for r in rows].index("replay-future")
    assert len(rows) // 3 < middle < 2 * len(rows) // 3  # in the middle of the replay

    settings = settings_for(kafka.bootstrap_servers, names)  # 4 input partitions
    asyncio.run(create_topics(settings))
    worker = start_worker(kafka.bootstrap_servers, names, tmp_path, "w1")
    try:
        # 1. The shuffled file, as it is.
        first = asyncio.run(run_seeder([path], settings, progress=False))
        assert first.sent == len(rows) and not first.errors
        assert first.ids == [r["id"] for r in rows]  # the seeder keeps the file's ids and order
        out = asyncio.run(enriched(kafka, names, first.ids))
        assert_valid(topics.ENRICHED, list(out.values()))

        # Event times: every format read as the instant it names; the odd two flagged.
        for article_id, label in labels.items():
            event_time = out[article_id]["event_time"]
            if label["epoch"] is not None:
                assert event_time["source"] == "published" and event_time["warning"] is None, event_time
                assert abs(event_time["epoch"] - label["epoch"]) < 1e-3, (article_id, event_time)
        future = out["replay-future"]["event_time"]
        assert future["source"] == "clamped" and future["warning"], future
        assert future["epoch"] <= time.time() + 86400 + 60  # cut to ingestion + MAX_FUTURE_SKEW
        vague = out["replay-yesterday"]["event_time"]
        assert vague["source"] == "ingested" and vague["warning"] and "yesterday" in vague["warning"], vague
        assert abs(vague["epoch"] - time.time()) < 600  # the ingestion time stands in

        # Dedup, whatever the arrival order: one unique per group, the others duplicates within it.
        groups: dict[int, list[str]] = {}
        for article_id, label in labels.items():
            groups.setdefault(label["group"], []).append(article_id)
        for group, members in groups.items():
            verdicts = {i: out[i]["dedup"] for i in members}
            uniques = [i for i, v in verdicts.items() if v["status"] == "unique"]
            assert len(uniques) == 1, (group, verdicts)
            for article_id, verdict in verdicts.items():
                if article_id in uniques:
                    continue
                assert verdict["duplicate_of"] in members, (article_id, verdict)
                kind = labels[article_id]["kind"]
                source_kind = labels[verdict["duplicate_of"]]["kind"]
                same_text = (kind == "near") == (source_kind == "near")
                assert verdict["status"] == ("exact_duplicate" if same_text else "near_duplicate"), \
                    (article_id, kind, source_kind, verdict)

        text = worker.scrape_metrics()
        assert metric(text, "ingest_event_time_total", source="clamped") >= 1
        assert metric(text, "ingest_event_time_total", source="ingested") >= 1
        assert metric(text, "ingest_event_time_total", source="published") >= len(epochs)
        # The far-future date did not move any clock: nothing left the index.
        assert metric(text, "ingest_dedup_evictions_total", reason="age") == 0
        assert metric(text, "ingest_dedup_evictions_total", reason="budget") == 0
        assert metric(text, "ingest_story_evictions_total") == 0

        # 2. The same file again under new ids: every article is an exact duplicate of the first
        #    replay's article with the same text (the clamped one evicted nothing).
        first_ids_by_body: dict[str, set[str]] = {}
        for row in rows:
            first_ids_by_body.setdefault(row["body"], set()).add(row["id"])
        renamed = asyncio.run(run_seeder([path], settings, new_ids=True, progress=False))
        assert len(renamed.ids) == len(rows) and not set(renamed.ids) & set(first.ids)
        renamed_rows = list(zip(renamed.ids, rows))
        again = asyncio.run(enriched(kafka, names, renamed.ids))
        assert_every_copy_found(again, renamed_rows, first_ids_by_body)
        assert again[renamed.ids[middle]]["event_time"]["source"] == "clamped"
        assert_valid(topics.ENRICHED, list(again.values()))

        text = worker.scrape_metrics()
        assert metric(text, "ingest_event_time_total", source="clamped") >= 2
        assert metric(text, "ingest_dedup_verdicts_total", status="exact_duplicate") >= len(rows)
        assert metric(text, "ingest_dedup_evictions_total", reason="age") == 0
        assert metric(text, "ingest_dedup_evictions_total", reason="budget") == 0
    finally:
        worker.stop()
    assert "Traceback" not in (tmp_path / "worker-w1.log").read_text(errors="replace")

    # 3. After a restart the index is rebuilt from its changelog and decides the same way.
    worker = start_worker(kafka.bootstrap_servers, names, tmp_path, "w2")
    try:
        third = asyncio.run(run_seeder([path], settings, new_ids=True, progress=False))
        later = asyncio.run(enriched(kafka, names, third.ids))
        assert_every_copy_found(later, list(zip(third.ids, rows)), first_ids_by_body)
        log = (tmp_path / "worker-w2.log").read_text(errors="replace")
        assert f"dedup index rebuilt from changelog: {2 * len(rows)} articles" in log
        assert "Traceback" not in log
    finally:
        worker.stop()
