"""Restarts from a local snapshot of the dedup index (issue 24), against the real broker and real
worker processes with STORE=rocksdb://.

The same articles go through a worker that is never interrupted (the reference, once per module)
and through a worker that is SIGKILLed and started again on the same data folder:

  phase 1a  300 distinct articles; a snapshot is written (INDEX_SNAPSHOT_EVERY_RECORDS=200)
  phase 1b  100 more: in the changelog after the snapshot, not in it
  SIGKILL   then a restart on the same disk
  phase 2   exact and near copies of phase-1 articles (one copy per original)

Every article is sent to input partition 0 in order, so the funnel sees the same order in both
runs and every verdict is determined. After the restart the worker must say how it got its index
— from the snapshot plus the later changelog records, or (stale snapshot) rebuilt from the
changelog — and every article's verdict and story must be those of the uninterrupted run.

Stale snapshots: made under other settings (DEDUP_MAX_ARTICLES changed, which changes no verdict
here), and one whose last record the changelog no longer has at its offset (what compaction of
that record would do: rewritten here with its offset moved back one record).
"""

from __future__ import annotations

import asyncio
import re
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from worker import snapshot
from worker.kafka.admin import create_topics
from worker.pipeline import ArticleIndex

from .helpers import account, make_articles, settings_for, start_worker, wait_for

pytestmark = pytest.mark.integration

ENV = {"STORE": "rocksdb://", "INDEX_SNAPSHOT_EVERY_RECORDS": "200", "INDEX_SNAPSHOT_EVERY_S": "0"}
SNAPSHOT_LINE = re.compile(r"dedup index snapshot: (\d+) articles at changelog offset (\d+)")


@dataclass
class _Names:
    prefix: str
    app_id: str

    def topic(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @classmethod
    def fresh(cls) -> _Names:
        tag = uuid.uuid4().hex[:8]
        return cls(prefix=f"t{tag}.", app_id=f"ingest-test-{tag}")


def _inputs() -> tuple[list, list, list]:
    phase1 = make_articles(400, "snap", seed=24)
    copies = []
    for n, (key, value) in enumerate(phase1[:80:2]):  # 40 originals, one copy each
        article = orjson.loads(value)
        body = article["body"] if n % 2 else " ".join(article["body"].split()[:-3])  # exact / near copy
        copy_id = f"{key.decode()}-copy"
        copies.append((copy_id.encode(), orjson.dumps({**article, "id": copy_id, "body": body})))
    return phase1[:300], phase1[300:], copies


async def _produce_in_order(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key, partition=0)
    finally:
        await producer.stop()


def _send_and_wait(kafka, names, messages, all_ids: set[str]) -> None:
    asyncio.run(_produce_in_order(kafka.bootstrap_servers, names.topic("articles.raw"), messages))
    tally = account(kafka.bootstrap_servers, names, all_ids, timeout=180)
    assert not tally.missing(all_ids), sorted(tally.missing(all_ids))[:10]


def _outcomes(kafka, names, ids: set[str]) -> dict[str, tuple]:
    """The last enriched message's verdict and story of each id."""
    tally = account(kafka.bootstrap_servers, names, ids, timeout=180, keep_enriched=True)
    assert not tally.missing(ids), sorted(tally.missing(ids))[:10]
    return {i: (tally.enriched_messages[i][-1]["dedup"], tally.enriched_messages[i][-1]["story"]) for i in ids}


def _ids(messages) -> set[str]:
    return {k.decode() for k, _ in messages}


def _snapshot_path(data_dir: Path) -> Path:
    found = list(data_dir.rglob(snapshot.FILENAME))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def reference(kafka, tmp_path_factory) -> dict[str, tuple]:
    """Verdicts and stories of the uninterrupted run."""
    names = _Names.fresh()
    tmp = tmp_path_factory.mktemp("snapshot-reference")
    asyncio.run(create_topics(settings_for(kafka.bootstrap_servers, names)))
    phase1a, phase1b, copies = _inputs()
    worker = start_worker(kafka.bootstrap_servers, names, tmp, "ref", **ENV)
    try:
        _send_and_wait(kafka, names, phase1a + phase1b, _ids(phase1a + phase1b))
        _send_and_wait(kafka, names, copies, _ids(copies))
        return _outcomes(kafka, names, _ids(phase1a + phase1b + copies))
    finally:
        worker.stop()


def _killed_run(kafka, names, tmp_path: Path, before_restart=None, restart_env: dict | None = None,
                guarantee: str = "at_least_once"):
    asyncio.run(create_topics(settings_for(kafka.bootstrap_servers, names)))
    phase1a, phase1b, copies = _inputs()
    env = {**ENV, "PROCESSING_GUARANTEE": guarantee}
    worker = start_worker(kafka.bootstrap_servers, names, tmp_path, "w1", **env)
    log1 = tmp_path / "worker-w1.log"
    try:
        _send_and_wait(kafka, names, phase1a, _ids(phase1a))
        taken = wait_for(lambda: SNAPSHOT_LINE.findall(log1.read_text(errors="replace")), timeout=60,
                         what="a snapshot")
        _send_and_wait(kafka, names, phase1b, _ids(phase1a + phase1b))
        meta = snapshot.read_meta(_snapshot_path(tmp_path / "faust"))
        assert meta.offset == int(taken[-1][1]) and meta.articles == int(taken[-1][0])
        assert meta.articles < 400, "the snapshot must be older than the changelog's end"
        worker.stop(signal.SIGKILL, timeout=10)
    finally:
        worker.stop(signal.SIGKILL, timeout=10)
    if before_restart is not None:
        before_restart(_snapshot_path(tmp_path / "faust"), meta)
    worker = start_worker(kafka.bootstrap_servers, names, tmp_path, "w2", **{**env, **(restart_env or {})})
    try:
        _send_and_wait(kafka, names, copies, _ids(copies))
        outcomes = _outcomes(kafka, names, _ids(phase1a + phase1b + copies))
    finally:
        worker.stop()
    return meta, outcomes, (tmp_path / "worker-w2.log").read_text(errors="replace")


def _assert_same(outcomes: dict, reference: dict) -> None:
    assert outcomes.keys() == reference.keys()
    differ = [i for i in sorted(reference) if outcomes[i] != reference[i]]
    assert not differ, [(i, outcomes[i], reference[i]) for i in differ[:3]]
    statuses = [reference[i][0]["status"] for i in reference if i.endswith("-copy")]
    assert statuses.count("exact_duplicate") == 20 and statuses.count("near_duplicate") == 20, statuses


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_sigkill_with_a_snapshot_on_disk_restarts_from_it(kafka, tmp_path, reference, guarantee):
    meta, outcomes, log = _killed_run(kafka, _Names.fresh(), tmp_path, guarantee=guarantee)
    loaded = re.search(r"dedup index loaded from snapshot: (\d+) articles .*changelog offset (\d+).*?; "
                       r"(\d+) later changelog records", log)
    assert loaded, log[-3000:]
    assert int(loaded.group(2)) == meta.offset and int(loaded.group(3)) > 0  # the records after it too
    # (the last batch's changelog records may have died with the process: its input offset was not
    # committed either, so it is processed again after the restart)
    assert meta.articles < int(loaded.group(1)) <= 400
    assert "rebuilt from changelog" not in log
    _assert_same(outcomes, reference)


def _settings_changed(path: Path, meta: snapshot.SnapshotMeta) -> None:
    pass  # the restart itself changes DEDUP_MAX_ARTICLES


def _record_gone(path: Path, meta: snapshot.SnapshotMeta) -> None:
    """The snapshot as it would be if the changelog no longer had its last record at its offset
    (compacted away): the same state, its offset one record back."""
    index = ArticleIndex(**meta.params, stored=lambda _article_id: None)  # type: ignore[arg-type]
    snapshot.load(path, index, meta.topic, meta.partition)
    moved = snapshot.SnapshotMeta(meta.topic, meta.partition, meta.offset - 1, meta.key, meta.value_hash,
                                  meta.params, meta.articles, meta.written_at)
    snapshot.write(path, index, moved)


@pytest.mark.parametrize("make_stale, restart_env, reason", [
    (_settings_changed, {"DEDUP_MAX_ARTICLES": "500000"}, "made with other settings"),
    (_record_gone, None, "no longer has the snapshot's last record"),
], ids=["other-settings", "record-compacted"])
def test_sigkill_with_a_stale_snapshot_rebuilds_from_the_changelog(kafka, tmp_path, reference, make_stale,
                                                                   restart_env, reason):
    _, outcomes, log = _killed_run(kafka, _Names.fresh(), tmp_path, make_stale, restart_env)
    assert "dedup index snapshot not used" in log and reason in log, log[-3000:]
    assert "dedup index rebuilt from changelog: 400 articles" in log
    assert "loaded from snapshot" not in log
    _assert_same(outcomes, reference)


def test_no_snapshot_on_disk_rebuilds_from_the_changelog(kafka, tmp_path, reference):
    def remove(path: Path, _meta) -> None:
        path.unlink()

    _, outcomes, log = _killed_run(kafka, _Names.fresh(), tmp_path, remove)
    assert "no snapshot to load" in log and "dedup index rebuilt from changelog: 400 articles" in log
    _assert_same(outcomes, reference)
    assert SNAPSHOT_LINE.search(log), log[-2000:]  # and, rebuilt, it wrote a new one
