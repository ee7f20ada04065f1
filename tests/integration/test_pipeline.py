"""The product end to end through a real broker: seeder → worker (faust) → output topics.

Each test runs real worker processes (`faust -A worker.app worker`) against the session's
Kafka broker with its own topic prefix and app id, and reads the output topics back.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import topics
from worker.io.seeder import run_seeder
from worker.io.sources import ReadReport, read_articles
from worker.kafka.admin import create_topics

from .helpers import assert_valid, consume_until, decode, produce, settings_for, start_worker

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
ENRICHMENT_FIELDS = ("language", "hashes", "dedup", "story", "entities", "content")

FRENCH = ("Le gouvernement français a annoncé mardi une nouvelle série de mesures pour soutenir les "
          "agriculteurs touchés par la sécheresse. Le ministre de l'Agriculture a précisé que les aides "
          "seraient versées avant la fin du mois, après une réunion avec les syndicats à Paris.")
GERMAN = ("Die Bundesregierung hat am Dienstag neue Maßnahmen zur Unterstützung der Landwirte angekündigt, "
          "die unter der anhaltenden Dürre leiden. Der Landwirtschaftsminister sagte, die Hilfen sollten "
          "noch vor Ende des Monats ausgezahlt werden, nachdem er sich mit den Verbänden in Berlin getroffen hatte.")
UNRELATED = ("The city council approved a new budget for public libraries on Monday evening, adding funds "
             "for longer opening hours and a mobile library that will visit rural schools twice a month. "
             "Librarians welcomed the decision after years of cuts, and the first bus is expected in spring.")


def seed_articles() -> list[dict]:
    return list(read_articles([SEEDS], ReadReport()))


def article_message(article: dict) -> tuple[bytes, bytes]:
    return article["id"].encode(), orjson.dumps(article)


def near_duplicate_of_seed_002(original: dict) -> dict:
    paragraphs = [p for p in original["body"].split("\n") if p.strip()]
    return {"id": "near-dup-002", "title": "Putin floats 'temporary administration' for Ukraine",
            "body": "\n".join(paragraphs[:-1]), "source": "syndicated.example"}


async def outputs(kafka, names, spec, expected=0, timeout=90.0, settle=1.0, ids=None):
    keys = {i.encode() for i in ids} if ids is not None else None
    return decode(await consume_until(kafka.bootstrap_servers, names.topic(spec.base_name), expected,
                                      timeout=timeout, settle=settle, keys=keys))


def by_id(messages: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for m in messages:
        grouped.setdefault(m["id"], []).append(m)
    return grouped


def test_seeds_replays_duplicates_languages_and_dead_letters(kafka, names, tmp_path):
    settings = settings_for(kafka.bootstrap_servers, names)
    asyncio.run(create_topics(settings))
    worker = start_worker(kafka.bootstrap_servers, names, tmp_path)
    try:
        # 1. The five seed articles → five enriched messages, all English, with the entities.
        first = asyncio.run(run_seeder([SEEDS], settings, progress=False))
        assert first.sent == 5 and not first.errors
        enriched = asyncio.run(outputs(kafka, names, topics.ENRICHED, 5))
        assert sorted(m["id"] for m in enriched) == sorted(first.ids)
        assert {m["language"]["code"] for m in enriched} == {"en"}
        assert {m["dedup"]["status"] for m in enriched} == {"unique"}
        ids = set().union(*({e["id"] for e in m["entities"]} for m in enriched))
        canonicals = set().union(*({e["canonical"] for e in m["entities"]} for m in enriched))
        for wanted in ("Vladimir Putin", "Kim Jong Un", "North Korea", "Russia", "Ukraine", "China", "India",
                       "Brazil", "South Africa", "BRICS"):
            assert wanted in canonicals, f"{wanted} missing from {sorted(canonicals)}"
        assert "country:KP" in ids
        # Story clusters: 000, 001, 002 and 004 report one event (Murmansk, March 2025); 003 another.
        story = {m["metadata"]["file"][:3]: m["story"]["story_id"] for m in enriched}
        assert story["000"] == story["001"] == story["002"] == story["004"] != story["003"]
        for m in enriched:  # one entity per canonical id: North Korea appears once, with its count
            entity_ids = [e["id"] for e in m["entities"]]
            assert len(entity_ids) == len(set(entity_ids))
            body = m["content"]["body"]
            for e in m["entities"]:
                assert body[e["start"]:e["end"]] == e["text"]

        # 2. Replay with the same ids → identical enrichments, no verdict flips, no duplicate events.
        asyncio.run(run_seeder([SEEDS], settings, progress=False))
        enriched = asyncio.run(outputs(kafka, names, topics.ENRICHED, 10))
        assert len(enriched) == 10
        for article_id, copies in by_id(enriched).items():
            assert len(copies) == 2
            for f in ENRICHMENT_FIELDS:
                assert copies[0][f] == copies[1][f], f"{article_id}: {f} differs on replay"

        # 3. Replay with new ids → five exact_duplicate verdicts of the first ids.
        renamed = asyncio.run(run_seeder([SEEDS], settings, new_ids=True, progress=False))
        original_by_file = {a["metadata"]["file"]: a["id"] for a in seed_articles()}
        enriched = asyncio.run(outputs(kafka, names, topics.ENRICHED, 15))
        new = [m for m in enriched if m["id"] in set(renamed.ids)]
        assert len(new) == 5
        for m in new:
            assert m["dedup"]["status"] == "exact_duplicate"
            assert m["dedup"]["duplicate_of"] == original_by_file[m["metadata"]["file"]]
            assert m["dedup"]["cluster_id"] == m["dedup"]["duplicate_of"]

        # 4. A near-duplicate, an unrelated article, French and German, and bad input.
        originals = {a["metadata"]["file"]: a for a in seed_articles()}
        seed_002 = originals["002_b7859346e36d5c70.txt"]
        extra = [near_duplicate_of_seed_002(seed_002),
                 {"id": "unrelated-1", "title": "Libraries get more money", "body": UNRELATED},
                 {"id": "fr-1", "title": "Aides aux agriculteurs", "body": FRENCH},
                 {"id": "de-1", "title": "Hilfen für Landwirte", "body": GERMAN}]
        bad = [(b"bad-json", b"{not json"), (b"other-key", orjson.dumps({"id": "not-the-key", "body": "text"})),
               (b"empty", orjson.dumps({"id": "empty", "body": "  "})), (b"bin", b"\xff\xfe\x00garbage")]
        asyncio.run(produce(kafka.bootstrap_servers, names.topic("articles.raw"),
                            [article_message(a) for a in extra] + bad))
        enriched = asyncio.run(outputs(kafka, names, topics.ENRICHED, 19))
        latest = {m["id"]: m for m in enriched}
        near = latest["near-dup-002"]["dedup"]
        assert near["status"] == "near_duplicate", near
        assert near["duplicate_of"] == seed_002["id"] and near["similarity"] >= 0.6
        assert latest["unrelated-1"]["dedup"]["status"] == "unique"
        assert latest["fr-1"]["language"]["code"] == "fr"
        assert latest["de-1"]["language"]["code"] == "de"

        dead = asyncio.run(outputs(kafka, names, topics.DLQ, 4))
        assert sorted(d["reason"] for d in dead) == ["empty_body", "invalid_json", "invalid_utf8", "key_mismatch"]
        # one letter per source record (4 input partitions: offsets alone may repeat)
        assert len({(d["source"]["partition"], d["source"]["offset"]) for d in dead}) == 4
        binary = next(d for d in dead if d["reason"] == "invalid_utf8")
        assert binary["original_value"]["encoding"] == "base64"

        duplicates = asyncio.run(outputs(kafka, names, topics.DUPLICATES, 6))
        assert sorted(d["status"] for d in duplicates) == ["exact_duplicate"] * 5 + ["near_duplicate"]

        # 5. Every message on every topic validates against its topic's JSON Schema.
        raw = asyncio.run(consume_until(kafka.bootstrap_servers, names.topic("articles.raw"), 23))
        assert len(raw) == 23
        assert_valid(topics.RAW, [m for m in map(_try_json, (v for _, v in raw)) if m and str(m.get("body")).strip()])
        assert_valid(topics.ENRICHED, enriched)
        assert_valid(topics.DUPLICATES, duplicates)
        assert_valid(topics.DLQ, dead)
        batches = asyncio.run(outputs(kafka, names, topics.DEDUP_REQUESTS, 1, settle=2.0))
        assert_valid(topics.DEDUP_REQUESTS, batches)
        assert sum(len(b["articles"]) for b in batches) == 19  # every valid article, in batches

        # 6. The metrics agree with what was sent.
        text = worker.scrape_metrics()
        assert f'ingest_messages_in_total{{topic="{names.topic("articles.raw")}"}} 23.0' in text
        assert 'ingest_replays_total 5.0' in text
        assert 'ingest_dedup_verdicts_total{status="exact_duplicate"} 5.0' in text
        assert f'ingest_consumer_lag{{partition="0",topic="{names.topic("articles.dedup-requests")}"}}' in text
    finally:
        worker.stop()


def _try_json(value: bytes | None) -> dict | None:
    try:
        message = orjson.loads(value)
    except (orjson.JSONDecodeError, TypeError):
        return None
    return message if isinstance(message, dict) else None


def test_dedup_is_correct_across_4_partitions_and_2_workers_and_survives_restart(kafka, names, tmp_path):
    settings = settings_for(kafka.bootstrap_servers, names, input_partitions=4)
    asyncio.run(create_topics(settings))
    w1 = start_worker(kafka.bootstrap_servers, names, tmp_path, "w1")
    w2 = start_worker(kafka.bootstrap_servers, names, tmp_path, "w2")
    try:
        originals = asyncio.run(run_seeder([SEEDS], settings, progress=False))
        asyncio.run(outputs(kafka, names, topics.ENRICHED, 5))
        # Same texts under new ids, sent twice more: they spread over all 4 input partitions
        # and both workers, and must all meet the one dedup index.
        copies = asyncio.run(run_seeder([SEEDS], settings, new_ids=True, loops=2, progress=False))
        enriched = asyncio.run(outputs(kafka, names, topics.ENRICHED, ids=originals.ids + copies.ids))
        verdicts = {m["id"]: m["dedup"] for m in enriched}
        assert len(verdicts) == 15
        for m in enriched:  # a redelivery (rebalance) repeats the first verdict, never another
            assert m["dedup"] == verdicts[m["id"]]
        assert all(verdicts[i]["status"] == "exact_duplicate" for i in copies.ids)
        assert {verdicts[i]["duplicate_of"] for i in copies.ids} == set(originals.ids)
        raw_partitions = _partitions_used(kafka, names.topic("articles.raw"))
        assert len(raw_partitions) >= 3, raw_partitions
        logs = (tmp_path / "worker-w1.log").read_text() + (tmp_path / "worker-w2.log").read_text()
        assert "Traceback" not in logs
    finally:
        w1.stop()
        w2.stop()

    # A new worker of the same app rebuilds the index from the changelog: old texts are known.
    w3 = start_worker(kafka.bootstrap_servers, names, tmp_path, "w3")
    try:
        again = asyncio.run(run_seeder([SEEDS], settings, new_ids=True, progress=False))
        enriched = asyncio.run(outputs(kafka, names, topics.ENRICHED, ids=again.ids))
        verdicts = {m["id"]: m["dedup"] for m in enriched}
        assert all(verdicts[i]["status"] == "exact_duplicate" for i in again.ids)
        assert {verdicts[i]["duplicate_of"] for i in again.ids} == set(originals.ids)
        assert "dedup index rebuilt from changelog: 15 articles" in (tmp_path / "worker-w3.log").read_text()
    finally:
        w3.stop()


def _partitions_used(kafka, topic: str) -> set[int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run():
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=None)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or
                   (await consumer._client.force_metadata_update() and consumer.partitions_for_topic(topic))]
            ends = await consumer.end_offsets(tps)
            return {tp.partition for tp, end in ends.items() if end > 0}
        finally:
            await consumer.stop()

    return asyncio.run(run())


def test_offline_enrich_gives_the_same_enrichment_as_kafka(kafka, names, tmp_path):
    # One input partition: the articles reach the dedup funnel in file order, as offline. (Which
    # article of a cluster or story comes first decides the cluster and story ids.)
    settings = settings_for(kafka.bootstrap_servers, names, input_partitions=1)
    asyncio.run(create_topics(settings))
    worker = start_worker(kafka.bootstrap_servers, names, tmp_path)
    try:
        asyncio.run(run_seeder([SEEDS], settings, progress=False))
        via_kafka = {m["id"]: m for m in asyncio.run(outputs(kafka, names, topics.ENRICHED, 5))}
    finally:
        worker.stop()
    cli = subprocess.run([sys.executable, "-m", "worker.cli", "enrich", str(SEEDS)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    offline = {m["id"]: m for m in map(json.loads, cli.stdout.splitlines())}
    assert offline.keys() == via_kafka.keys()
    for article_id, message in offline.items():
        for f in ENRICHMENT_FIELDS:
            assert message[f] == via_kafka[article_id][f], f"{article_id}: {f} differs"
    assert_valid(topics.ENRICHED, list(offline.values()))


def test_consumer_command_filters_and_exits(kafka, names, tmp_path):
    settings = settings_for(kafka.bootstrap_servers, names)
    asyncio.run(create_topics(settings))
    worker = start_worker(kafka.bootstrap_servers, names, tmp_path)
    try:
        asyncio.run(run_seeder([SEEDS], settings, progress=False))
        asyncio.run(run_seeder([SEEDS], settings, new_ids=True, progress=False))
        asyncio.run(outputs(kafka, names, topics.ENRICHED, 10))
    finally:
        worker.stop()
    env = {**worker.env}
    base = [sys.executable, "-m", "worker.cli", "consume", "--from-beginning"]
    dupes = subprocess.run(base + ["--status", "exact_duplicate"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=60, check=True)
    assert len(dupes.stdout.splitlines()) == 5
    english = subprocess.run(base + ["--lang", "en", "--format", "pretty"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60, check=True)
    assert english.stdout.count("── art-") == 10
    none = subprocess.run(base + ["--lang", "fr"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    assert none.stdout == ""


def test_rocksdb_store_keeps_the_index_across_restarts(kafka, names, tmp_path):
    settings = settings_for(kafka.bootstrap_servers, names)
    asyncio.run(create_topics(settings))
    worker = start_worker(kafka.bootstrap_servers, names, tmp_path, "r1", STORE="rocksdb://")
    try:
        originals = asyncio.run(run_seeder([SEEDS], settings, progress=False))
        asyncio.run(outputs(kafka, names, topics.ENRICHED, ids=originals.ids))
    finally:
        worker.stop()
    assert list((tmp_path / "faust").rglob("*.sst")) or list((tmp_path / "faust").rglob("CURRENT"))
    worker = start_worker(kafka.bootstrap_servers, names, tmp_path, "r2", STORE="rocksdb://")
    try:
        copies = asyncio.run(run_seeder([SEEDS], settings, new_ids=True, progress=False))
        enriched = asyncio.run(outputs(kafka, names, topics.ENRICHED, ids=copies.ids))
        verdicts = {m["id"]: m["dedup"] for m in enriched}
        assert {verdicts[i]["status"] for i in copies.ids} == {"exact_duplicate"}
        assert {verdicts[i]["duplicate_of"] for i in copies.ids} == set(originals.ids)
    finally:
        worker.stop()
