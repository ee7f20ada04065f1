"""On a real 3-broker cluster (the `kafka_cluster` fixture): every topic replicated 3 times with 2
in sync, faust's own included, and a broker lost mid-stream without losing an article.

The broker-loss test streams 5,000 distinct articles through 2 workers (at_least_once), SIGKILLs
the broker that leads articles.raw partition 0 *and* the dedup table's changelog partition (the
test moves the changelog's leadership there first when Kafka placed it elsewhere), starts it
again 20 s later, and accounts for every input id on articles.enriched / articles.dlq. It prints
one CLUSTER line: sent, enriched, lost, duplicated, how long until the leaders moved, how long
the output stalled and how long after the leaders moved it resumed.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.protocol.admin import AlterPartitionReassignmentsRequest
from confluent_kafka import ElectionType
from confluent_kafka import TopicPartition as ConfluentTopicPartition
from confluent_kafka.admin import AdminClient

import topics
from worker.kafka import local_broker
from worker.kafka.admin import create_topics

from .helpers import (
    BackgroundProducer,
    WorkerProcess,
    account,
    make_articles,
    settings_for,
    start_worker,
    wait_for,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.cluster]
ROOT = Path(__file__).resolve().parents[2]

RATE = 150.0  # articles per second: 5,000 in ~33 s, so the kill (at ~8 s) and the restart (20 s later) fall mid-stream
DOWN_S = 20.0  # how long the killed broker stays down
RESUME_BOUND_S = 30.0  # output must resume within this long after the leaders moved


def ids_of(messages) -> set[str]:
    return {k.decode() for k, _ in messages}


def assert_replays_repeat_the_first_verdict(tally) -> None:
    for article_id, copies in tally.enriched_messages.items():
        verdicts = {orjson.dumps(c["dedup"]) for c in copies}
        assert len(verdicts) == 1, f"{article_id}: a redelivery changed the verdict: {verdicts}"


def all_topic_names(names) -> list[str]:
    product = [names.topic(spec.base_name) for spec in topics.ALL_TOPICS]
    return product + [t.name for t in topics.faust_topics(names.app_id)]


async def _describe(bootstrap: str, names: list[str]) -> dict[str, dict]:
    """{topic: {"partitions": {p: (leader, replicas, isr)}, "config": {...}}} from the admin API."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        out: dict[str, dict] = {}
        for meta in await admin.describe_topics(names):
            out[meta["topic"]] = {"partitions": {p["partition"]: (p["leader"], list(p["replicas"]), list(p["isr"]))
                                                 for p in meta["partitions"]}, "config": {}}
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
        for response in responses:
            for resource in response.resources:
                out[resource[3]]["config"] = {entry[0]: entry[1] for entry in resource[4]}
        return out
    finally:
        await admin.close()


def describe(bootstrap: str, names: list[str]) -> dict[str, dict]:
    return asyncio.run(_describe(bootstrap, names))


def render(described: dict[str, dict], order: list[str]) -> str:
    """kafka-topics.sh --describe's layout."""
    lines = []
    for name in order:
        topic = described[name]
        parts = topic["partitions"]
        shown = ("cleanup.policy", "min.insync.replicas", "retention.ms")
        configs = ",".join(f"{k}={topic['config'][k]}" for k in shown if k in topic["config"])
        lines.append(f"Topic: {name}\tPartitionCount: {len(parts)}\t"
                     f"ReplicationFactor: {min(len(r) for _, r, _ in parts.values())}\tConfigs: {configs}")
        for p, (leader, replicas, isr) in sorted(parts.items()):
            lines.append(f"\tPartition: {p}\tLeader: {leader}\tReplicas: {','.join(map(str, replicas))}\t"
                         f"Isr: {','.join(map(str, isr))}")
    return "\n".join(lines)


def leader(bootstrap: str, topic: str, partition: int) -> int:
    return describe(bootstrap, [topic])[topic]["partitions"][partition][0]


def move_leader(bootstrap: str, topic: str, partition: int, node: int) -> None:
    """Make `node` the leader of topic/partition: it becomes the first (preferred) replica, then
    a preferred-leader election (no data moves: the replica set stays the same)."""

    async def reorder() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            meta = await admin.describe_topics([topic])
            replicas = next(p["replicas"] for p in meta[0]["partitions"] if p["partition"] == partition)
            order = [node] + [r for r in replicas if r != node]
            response = await admin._send_to_controller(
                AlterPartitionReassignmentsRequest(30_000, [(topic, [(partition, order, {})], {})], {}))
            assert response.error_code == 0, response
        finally:
            await admin.close()

    asyncio.run(reorder())
    client = AdminClient({"bootstrap.servers": bootstrap})
    result = client.elect_leaders(ElectionType.PREFERRED, [ConfluentTopicPartition(topic, partition)]).result(30)
    assert all(error is None for error in result.values()), result
    wait_for(lambda: leader(bootstrap, topic, partition) == node, timeout=30, what=f"{node} to lead {topic}")


def quorum_leader(bootstrap: str) -> int | None:
    """The active controller's node id (kafka-metadata-quorum.sh describe --status)."""
    out = subprocess.run(local_broker.tool_command("kafka-metadata-quorum.sh",
                                                   ["--bootstrap-server", bootstrap, "describe", "--status"]),
                         capture_output=True, text=True, timeout=60).stdout
    found = re.search(r"LeaderId:\s+(\d+)", out)
    return int(found.group(1)) if found else None


def offsets_partition(group: str, partitions: int = 10) -> int:
    """The __consumer_offsets partition whose leader coordinates `group` (Kafka: abs(Java
    hashCode) % offsets.topic.num.partitions, 10 on the local cluster)."""
    h = 0
    for unit in group.encode("utf-16-be").hex(" ", 2).split():
        h = (31 * h + int(unit, 16)) & 0xFFFFFFFF
    signed = h - (1 << 32) if h >= 1 << 31 else h
    return (0 if signed == -(1 << 31) else abs(signed)) % partitions  # Kafka's Utils.abs


def group_coordinator(bootstrap: str, group: str) -> int:
    async def run() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return await admin.find_coordinator(group)
        finally:
            await admin.close()

    return asyncio.run(run())


class OutputWatch(threading.Thread):
    """Reads articles.enriched (read_committed) from the start, all along, and notes when each
    batch of output arrived: what shows how long the output stalled while a broker was down.
    A plain consumer: partitions whose leader is away just wait until the leader moves."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.arrivals: list[tuple[float, int]] = []  # (monotonic time, messages so far)
        self.count = 0
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None,
                                    isolation_level="read_committed")
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()
            tps = [TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or ())]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while not self.stopping.is_set():
                batch = await consumer.getmany(timeout_ms=200)
                got = sum(len(records) for records in batch.values())
                if got:
                    self.count += got
                    self.arrivals.append((time.monotonic(), self.count))
        finally:
            await consumer.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)

    def first_after(self, t: float) -> float | None:
        return next((at for at, _ in self.arrivals if at > t), None)

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time without output between `start` and `end`."""
        times = [start] + [at for at, _ in self.arrivals if start < at < end] + [end]
        return max(b - a for a, b in zip(times, times[1:]))


def test_every_topic_has_three_replicas_two_in_sync(kafka_cluster, names, tmp_path):
    """The product's topics (`ingest topics create`) and faust's (changelog, leader topic, created
    by the worker) all get replication factor 3 and min.insync.replicas 2, found out from the
    cluster (REPLICATION_FACTOR is not set); `ingest topics check` agrees."""
    bootstrap = kafka_cluster.bootstrap_servers
    assert set(asyncio.run(create_topics(settings_for(bootstrap, names))).values()) == {"created"}
    worker = start_worker(bootstrap, names, tmp_path)
    try:
        every = all_topic_names(names)
        described = describe(bootstrap, every)
        print(f"\nDESCRIBE (admin API, {bootstrap})\n{render(described, every)}", flush=True)
        assert sorted(described) == sorted(every)
        for name, topic in described.items():
            for partition, (_, replicas, isr) in topic["partitions"].items():
                assert len(replicas) == 3 and len(isr) == 3, (name, partition, replicas, isr)
            assert topic["config"]["min.insync.replicas"] == "2", name
        for compacted in (names.topic("articles.enriched"), f"{names.app_id}-dedup-index-changelog"):
            assert described[compacted]["config"]["cleanup.policy"] == "compact"
        check = subprocess.run([sys.executable, "-m", "worker.cli", "topics", "check"], cwd=ROOT, env=worker.env,
                               capture_output=True, text=True, timeout=120)
        print(check.stdout, flush=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "expecting replication factor 3 (from the broker count), min.insync.replicas 2" in check.stdout
        assert "all topics match topics/" in check.stdout
    finally:
        worker.stop(signal.SIGTERM, timeout=20)


def lead_raw_and_changelog(bootstrap: str, names) -> int:
    """The broker that leads articles.raw partition 0, made the changelog's leader as well."""
    target = leader(bootstrap, names.topic("articles.raw"), 0)
    changelog = f"{names.app_id}-dedup-index-changelog"
    if leader(bootstrap, changelog, 0) != target:
        move_leader(bootstrap, changelog, 0, target)
    return target


def controller_and_coordinator(bootstrap: str, names) -> int:
    """The active controller (the quorum's leader), made the workers' group coordinator as well
    (it leads the group's __consumer_offsets partition)."""
    target = quorum_leader(bootstrap)
    assert target is not None, "no active controller found"
    if group_coordinator(bootstrap, names.app_id) != target:
        move_leader(bootstrap, "__consumer_offsets", offsets_partition(names.app_id), target)
        wait_for(lambda: group_coordinator(bootstrap, names.app_id) == target, timeout=30,
                 what="the group coordinator to move")
    return target


SCENARIOS = {
    "raw0-changelog-leader": ("leader of raw/0 + changelog", lead_raw_and_changelog),
    "controller-coordinator": ("active controller + group coordinator", controller_and_coordinator),
}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_broker_killed_mid_stream_and_back_20s_later(kafka_cluster, names, tmp_path, scenario):
    """SIGKILL one broker while 5,000 articles stream through 2 workers, start it again 20 s
    later: no article lost, no worker exits, the output resumes once the leaders have moved."""
    bootstrap = kafka_cluster.bootstrap_servers
    asyncio.run(create_topics(settings_for(bootstrap, names)))
    workers = []
    for label in ("w1", "w2"):  # started together, then waited for
        env, port = worker_env(bootstrap, names, tmp_path)
        workers.append(WorkerProcess(env=env, web_port=port, log_path=tmp_path / f"worker-{label}.log").start())
    for w in workers:
        w.wait_ready()
    raw, enriched = names.topic("articles.raw"), names.topic("articles.enriched")
    changelog = f"{names.app_id}-dedup-index-changelog"
    title, arrange = SCENARIOS[scenario]
    target = arrange(bootstrap, names)
    before = describe(bootstrap, all_topic_names(names) + ["__consumer_offsets"])
    led = {f"{t}/{p}" for t, d in before.items() for p, (lead, _, _) in d["partitions"].items() if lead == target}
    moved = [tp.rsplit("/", 1) for tp in sorted(led)]  # every partition it leads must get a new leader
    controller = target if scenario == "controller-coordinator" else quorum_leader(bootstrap)
    coordinator = group_coordinator(bootstrap, names.app_id)

    articles = make_articles(5000, names.prefix.strip("."))
    ids = ids_of(articles)
    producer = BackgroundProducer(bootstrap, raw, articles, RATE)
    watch = OutputWatch(bootstrap, enriched)
    watch.start()
    producer.start()
    exits: list[tuple[str, int | None]] = []

    def restart_exited_workers() -> None:  # the orchestrator's job; any exit fails the test below
        for label, w in zip(("w1", "w2"), workers):
            if w.proc.poll() is not None:
                exits.append((label, w.proc.returncode))
                w.start()

    try:
        wait_for(lambda: (producer.sent >= 1200 and watch.count >= 800) or producer.error, timeout=90,
                 what="1,200 articles sent and 800 enriched")
        sent_at_kill, enriched_at_kill = producer.sent, watch.count
        killed_at = time.monotonic()
        kafka_cluster.kill(target)

        def leaders_moved() -> bool:
            restart_exited_workers()
            try:
                now = describe(bootstrap, sorted({t for t, _ in moved}))
            except Exception:  # noqa: BLE001 - the metadata may still name the dead broker: ask again
                return False
            return all(now[t]["partitions"][int(p)][0] not in (target, -1) for t, p in moved)

        wait_for(leaders_moved, timeout=DOWN_S + 10, interval=0.25, what=f"new leaders for {moved}")
        moved_at = time.monotonic()
        while time.monotonic() - killed_at < DOWN_S:
            restart_exited_workers()
            time.sleep(0.5)
        kafka_cluster.restart(target)
        back_at = time.monotonic()
        wait_for(lambda: watch.first_after(moved_at) is not None, timeout=60, interval=0.5,
                 what="output after the leaders moved")
        producer.join_ok(240)
        restart_exited_workers()

        def back_in_sync() -> bool:
            try:
                now = describe(bootstrap, [raw, changelog])
            except Exception:  # noqa: BLE001 - a node that just started may not answer yet
                return False
            return all(len(isr) == 3 for d in now.values() for _, _, isr in d["partitions"].values())

        wait_for(back_in_sync, timeout=60, interval=0.5, what="the restarted broker back in sync")
        in_sync_at = time.monotonic()

        tally = account(bootstrap, names, ids, timeout=180, keep_enriched=True)
        figures = tally.figures(ids)
        restart_exited_workers()
        resumed_at = watch.first_after(moved_at)
        row = {
            "scenario": title,
            "sent": figures["sent"], "enriched": figures["enriched"], "lost": figures["missing"],
            "duplicated": figures["duplicated"], "extra_copies": figures["extra_copies"],
            "leaders_moved_after_kill_s": round(moved_at - killed_at, 1),
            "output_resumed_after_leaders_moved_s": round(resumed_at - moved_at, 1) if resumed_at else None,
            "longest_output_gap_s": round(watch.longest_gap(killed_at - 1, back_at), 1),
            "back_in_sync_after_restart_s": round(in_sync_at - back_at, 1),
        }
        print(f"\nCLUSTER {row} killed_node={target} active_controller={controller} "
              f"group_coordinator={coordinator} node_led={sorted(led)} sent_at_kill={sent_at_kill} "
              f"enriched_at_kill={enriched_at_kill} stream_s={round(producer.finished_at - producer.started_at, 1)} "
              f"worker_exits={exits}", flush=True)
        assert figures["missing"] == 0, sorted(tally.missing(ids))[:20]
        assert figures["dead_lettered"] == 0
        assert_replays_repeat_the_first_verdict(tally)
        assert not exits, f"workers exited (label, code): {exits}; see {tmp_path}"
        assert resumed_at is not None and resumed_at - moved_at < RESUME_BOUND_S, row
        assert kafka_cluster.running() == kafka_cluster.node_ids
    finally:
        watch.stop()
        for w in workers:
            w.stop(signal.SIGKILL, timeout=10)
        producer.join(5)
        if target not in kafka_cluster.running():
            kafka_cluster.restart(target)  # leave the session's cluster whole
