"""Parts 2, 3 and 5 — everything that needs the broker: the transport limit, the real worker end
to end (throughput and latency), and recovery of the dedup state from its changelog.

All on one local Apache Kafka broker (worker/kafka/local_broker.py, KRaft, the project's pinned version),
each scenario under its own topic prefix and faust app id, so nothing is shared between them.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench import util
from worker.records import decode_funnel_batch, encode_table_record

DRIFT_RE = re.compile(r"Timer (\S+) woke up too late, with a drift of \+([\d.]+)")
REBUILT_RE = re.compile(r"rebuilt from changelog: (\d+) articles in ([\d.]+)\s*s")
WORK_DIR = util.ROOT / ".cache" / "bench"


# ---------------------------------------------------------------------------------------------
# Plumbing: names, topics, worker processes, CPU accounting
# ---------------------------------------------------------------------------------------------

@dataclass
class Names:
    prefix: str
    app_id: str

    @classmethod
    def fresh(cls, label: str) -> Names:
        tag = uuid.uuid4().hex[:6]
        return cls(prefix=f"bench{tag}.", app_id=f"bench-{label}-{tag}")

    def topic(self, base: str) -> str:
        return f"{self.prefix}{base}"


def settings_for(bootstrap: str, names: Names):
    from worker.config import Settings

    return Settings(kafka_bootstrap_servers=bootstrap, topic_prefix=names.prefix, app_id=names.app_id)


async def create_product_topics(bootstrap: str, names: Names) -> None:
    from worker.kafka.admin import create_topics

    await create_topics(settings_for(bootstrap, names))


async def create_topic(bootstrap: str, name: str, partitions: int, config: dict | None = None) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config or {})])
    finally:
        await admin.close()


def producer(bootstrap: str, **kw) -> AIOKafkaProducer:
    opts = dict(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                max_batch_size=1024 * 1024, max_request_size=4 * 1024 * 1024)
    opts.update(kw)
    return AIOKafkaProducer(**opts)


@dataclass
class Worker:
    """One real worker process: `python -m faust -A worker.app worker -l info`."""

    env: dict[str, str]
    port: int
    log_path: Path
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    ready_after_s: float | None = None

    @classmethod
    def make(cls, bootstrap: str, names: Names, run_dir: Path, label: str, **extra: str) -> Worker:
        from worker.kafka.local_broker import free_port

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "TOPIC_", "APP_ID"))}
        env.update({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TOPIC_PREFIX": names.prefix, "APP_ID": names.app_id,
                    "WEB_PORT": str(port), "DATA_DIR": str(run_dir / f"faust-{label}"),
                    "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "info"})
        env.update(extra)
        return cls(env=env, port=port, log_path=run_dir / f"worker-{names.app_id}-{label}.log")

    def start(self) -> Worker:
        log = open(self.log_path, "ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "faust", "-A", "worker.app", "worker", "-l", "info"],
                                     cwd=util.ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def get(self, path: str, timeout: float = 2.0) -> tuple[int | None, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return None, b""

    def ready(self) -> dict | None:
        status, body = self.get("/health/ready")
        if status == 200:
            return orjson.loads(body)
        return None

    def wait_ready(self, timeout: float = 180.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{self.log_tail()}")
            if self.ready():
                self.ready_after_s = time.monotonic() - self.started_at
                return self.ready_after_s
            time.sleep(0.1)
        raise TimeoutError(f"worker not ready after {timeout}s:\n{self.log_tail()}")

    def metrics(self) -> str:
        status, body = self.get("/metrics", timeout=5)
        return body.decode() if status == 200 else ""

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def wait_stable(workers: list[Worker], settle: float = 3.0, timeout: float = 120.0) -> list[int]:
    """Wait until every worker is ready and the assignment stopped changing for `settle` s."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        states = [w.ready() for w in workers]
        counts = [s["assigned_partitions"] if s else None for s in states] if all(states) else None
        if counts != last:
            last, since = counts, time.monotonic()
        elif counts is not None and time.monotonic() - since >= settle:
            return counts
        time.sleep(0.25)
    raise TimeoutError(f"workers did not settle: {last}")


def parse_metrics(text: str) -> dict:
    """Stage timings (mean ms) and message counters from a worker's Prometheus page."""
    stage_sum: dict[str, float] = {}
    stage_count: dict[str, float] = {}
    msgs_in: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("ingest_stage_seconds_sum"):
            stage = re.search(r'stage="([^"]+)"', line).group(1)
            stage_sum[stage] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("ingest_stage_seconds_count"):
            stage = re.search(r'stage="([^"]+)"', line).group(1)
            stage_count[stage] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("ingest_messages_in_total"):
            topic = re.search(r'topic="([^"]+)"', line).group(1)
            msgs_in[topic] = float(line.rsplit(" ", 1)[1])
    return {"stage_sum_s": stage_sum, "stage_count": stage_count, "messages_in": msgs_in}


class CpuWatch:
    """CPU seconds used by given processes, and by the whole machine, over an interval."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.t0 = time.monotonic()
        self.machine0 = self._machine()
        self.cpu0 = {k: util.cpu_seconds(p) for k, p in pids.items()}

    @staticmethod
    def _machine() -> float:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        vals = [int(x) for x in fields]
        idle = vals[3] + vals[4]  # idle + iowait
        return (sum(vals[:8]) - idle) / util.CLK_TCK

    def stop(self) -> dict:
        elapsed = time.monotonic() - self.t0
        used = {k: util.cpu_seconds(p) - self.cpu0[k] for k, p in self.pids.items()}
        machine = self._machine() - self.machine0
        mine = sum(v for v in used.values() if v == v)
        return {
            "seconds": round(elapsed, 2),
            "cores_used": {k: round(v / elapsed, 2) for k, v in used.items()},
            "cpu_seconds": {k: round(v, 2) for k, v in used.items()},
            "machine_busy_cores": round(machine / elapsed, 2),
            "other_processes_cores": round(max(0.0, machine - mine) / elapsed, 2),
        }


class Watcher(threading.Thread):
    """Reads a topic from the beginning in its own thread and event loop; records when each key
    arrived (time.monotonic, the clock the producer uses) and, optionally, the dedup status."""

    def __init__(self, bootstrap: str, topic: str, statuses: bool = False, from_end: bool = False,
                 batches: bool = False) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.want_status = bootstrap, topic, statuses
        self.batches = batches
        self.from_end = from_end
        self.arrivals: dict[bytes, float] = {}
        self.status: dict[bytes, str] = {}
        self.copies = 0
        self.started = threading.Event()
        self._halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # noqa: BLE001
            self.error = exc
            self.started.set()

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None,
                                    fetch_max_wait_ms=50, max_partition_fetch_bytes=8 * 1024 * 1024,
                                    fetch_max_bytes=64 * 1024 * 1024)
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()
            tps = [TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or ())]
            consumer.assign(tps)
            if self.from_end:
                await consumer.seek_to_end(*tps)
            else:
                await consumer.seek_to_beginning(*tps)
            for tp in tps:
                await consumer.position(tp)  # resolve the offsets before saying "started"
            self.started.set()
            while not self._halt.is_set():
                batch = await consumer.getmany(timeout_ms=100, max_records=10_000)
                now = time.monotonic()
                for records in batch.values():
                    for r in records:
                        self.copies += 1
                        if self.batches:  # articles.dedup-requests: one message, many articles
                            for analysed in decode_funnel_batch(r.value).articles:
                                self.arrivals.setdefault(analysed.id.encode(), now)
                            continue
                        self.arrivals.setdefault(r.key, now)
                        if self.want_status and r.key not in self.status:
                            self.status[r.key] = orjson.loads(r.value)["dedup"]["status"]
        finally:
            await consumer.stop()

    def wait_for(self, keys: set[bytes], timeout: float, quiet_after: float = 0.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.error:
                raise self.error
            if keys.issubset(self.arrivals.keys()):
                time.sleep(quiet_after)
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def loop_stalls(log_text: str) -> dict:
    """faust/mode log "Timer X woke up too late, with a drift of +S": the event loop was blocked
    for about S seconds (a coroutine ran without yielding)."""
    drifts = [float(m.group(2)) for m in DRIFT_RE.finditer(log_text)]
    return {"count": len(drifts), "max_s": round(max(drifts), 2) if drifts else 0.0,
            "total_s": round(sum(drifts), 2)}


class Spy:
    """py-spy (if installed) sampling a worker process while it runs: where its CPU goes."""

    CATEGORIES = (
        ("stage: normalise", ("normalise (worker/stages/normalise.py",)),
        ("stage: language", ("detect_language (",)),
        ("stage: hashing", ("hash_text (",)),
        ("stage: entities", ("tag_entities (",)),
        ("stage: validate", ("parse_article (",)),
        ("stage: dedup decide", ("decide (worker/pipeline.py", "decide (worker/stages/dedup.py")),
        ("pipeline: finish", ("finish (worker/pipeline.py",)),
    )

    def __init__(self, pid: int, out: Path, duration: float, rate: int = 50) -> None:
        self.out = out
        exe = Path(sys.executable).parent / "py-spy"
        self.proc = None
        if exe.exists():
            self.proc = subprocess.Popen([str(exe), "record", "--pid", str(pid), "--rate", str(rate), "--duration",
                                          str(int(duration)), "--format", "raw", "--nonblocking", "-o", str(out)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish(self) -> dict | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes what it has on Ctrl-C
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None
        return self.summarise(self.out)

    @classmethod
    def summarise(cls, path: Path) -> dict | None:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            return None
        total = 0
        cats: dict[str, int] = {}
        leaves: dict[str, int] = {}
        for line in lines:
            stack, _, count = line.rpartition(" ")
            try:
                n = int(count)
            except ValueError:
                continue
            total += n
            frames = stack.split(";")
            cat = None
            for name, needles in cls.CATEGORIES:
                if any(any(nd in f for nd in needles) for f in frames):
                    cat = name
                    break
            if cat is None:
                leaf = frames[-1]
                if "/aiokafka/" in leaf:
                    cat = "aiokafka (client: records, batches, protocol)"
                elif "/faust/" in leaf:
                    cat = "faust (streams, agents, tables, producer buffer)"
                elif "/mode/" in leaf:
                    cat = "mode (faust's service runtime)"
                elif "asyncio" in leaf or "selectors" in leaf:
                    cat = "asyncio event loop"
                elif "prometheus" in leaf:
                    cat = "prometheus metrics"
                elif "logging" in leaf:
                    cat = "logging"
                else:
                    cat = "other: " + leaf.split(" (")[0][:40]
            cats[cat] = cats.get(cat, 0) + n
            leaf = frames[-1]
            leaves[leaf] = leaves.get(leaf, 0) + n
        if not total:
            return None
        top_cats = sorted(cats.items(), key=lambda kv: -kv[1])
        grouped: dict[str, float] = {}
        for k, v in top_cats:
            key = "other" if k.startswith("other: ") else k
            grouped[key] = grouped.get(key, 0) + v
        return {
            "file": util.rel(path),
            "samples": total,
            "share_by_category": {k: round(v / total, 3)
                                  for k, v in sorted(grouped.items(), key=lambda kv: -kv[1])},
            "top_leaf_functions": [(k, round(v / total, 3))
                                   for k, v in sorted(leaves.items(), key=lambda kv: -kv[1])[:15]],
        }


# ---------------------------------------------------------------------------------------------
# Part 2: transport limit
# ---------------------------------------------------------------------------------------------

async def _transport(bootstrap: str, payloads: list[tuple[bytes, bytes]]) -> dict:
    names = Names.fresh("transport")
    src, dst = names.topic("transport.in"), names.topic("transport.out")
    await create_topic(bootstrap, src, 4, {"max.message.bytes": str(2 * 1024 * 1024)})
    await create_topic(bootstrap, dst, 4, {"max.message.bytes": str(4 * 1024 * 1024)})
    n = len(payloads)
    nbytes = sum(len(v) for _, v in payloads)

    prod = producer(bootstrap)
    await prod.start()
    try:
        t0 = time.perf_counter()
        futures = [await prod.send(src, v, key=k) for k, v in payloads]
        await asyncio.gather(*futures)
        produce_s = time.perf_counter() - t0
    finally:
        await prod.stop()

    consumer = AIOKafkaConsumer(src, bootstrap_servers=bootstrap, group_id=names.app_id,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    prod = producer(bootstrap)
    await consumer.start()
    await prod.start()
    try:
        done = 0
        t0 = time.perf_counter()
        last_commit = t0
        pending = []
        while done < n:
            batch = await consumer.getmany(timeout_ms=200, max_records=1000)
            for records in batch.values():
                for r in records:
                    pending.append(await prod.send(dst, r.value, key=r.key))
                    done += 1
            if time.perf_counter() - last_commit >= 1.0 or done >= n:
                # like faust's commit: outputs durable first, then the offsets
                await asyncio.gather(*pending)
                pending.clear()
                await consumer.commit()
                last_commit = time.perf_counter()
        loop_s = time.perf_counter() - t0
    finally:
        await consumer.stop()
        await prod.stop()
    return {
        "messages": n,
        "mean_bytes": round(nbytes / n),
        "produce_only_msgs_per_s": round(n / produce_s, 1),
        "consume_produce_msgs_per_s": round(n / loop_s, 1),
        "consume_produce_mb_per_s": round(nbytes / loop_s / 2**20, 1),
        "seconds": round(loop_s, 2),
        "setup": "1 process, aiokafka 4-partition topic → 4-partition topic, acks=all, idempotent, "
                 "linger 5 ms, commit every 1 s after outputs are acked",
    }


def transport(bootstrap: str, payloads: list[tuple[bytes, bytes]], log=print) -> dict:
    result = asyncio.run(_transport(bootstrap, payloads))
    log(f"  produce only {result['produce_only_msgs_per_s']:,.0f} msg/s; consume→produce "
        f"{result['consume_produce_msgs_per_s']:,.0f} msg/s ({result['consume_produce_mb_per_s']} MB/s)")
    return result


# ---------------------------------------------------------------------------------------------
# Part 3: end to end
# ---------------------------------------------------------------------------------------------

@dataclass
class Scenario:
    bootstrap: str
    broker_pid: int
    workers_n: int
    run_dir: Path
    env: dict[str, str] = field(default_factory=dict)  # extra worker environment (A/B of settings)
    names: Names = field(init=False)
    workers: list[Worker] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.names = Names.fresh(f"e2e{self.workers_n}")

    def start(self) -> dict:
        asyncio.run(create_product_topics(self.bootstrap, self.names))
        ready = []
        for i in range(self.workers_n):
            w = Worker.make(self.bootstrap, self.names, self.run_dir, f"w{i + 1}", **self.env).start()
            self.workers.append(w)
            ready.append(round(w.wait_ready(), 2))
        assignment = wait_stable(self.workers)
        return {"ready_after_s": ready, "assigned_partitions": assignment}

    def pids(self) -> dict[str, int]:
        pids = {f"worker{i + 1}": w.pid for i, w in enumerate(self.workers)}
        pids["broker"] = self.broker_pid
        pids["bench (producer+consumer)"] = os.getpid()
        return pids

    def stop(self) -> None:
        for w in self.workers:
            w.stop()


async def _produce(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]], rate: float,
                   sent_at: dict[bytes, float], burst: int = 0) -> float:
    """Send `items` at `rate`/s (0 = full speed), the first `burst` of them at once; record the
    send time of each key."""
    prod = producer(bootstrap, linger_ms=0 if rate else 5)
    await prod.start()
    try:
        t0 = time.monotonic()
        futures = []
        for i, (key, value) in enumerate(items):
            if rate and i >= burst:
                delay = t0 + (i - burst) / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent_at[key] = time.monotonic()
            futures.append(await prod.send(topic, value, key=key))
            if len(futures) >= 2000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
        return time.monotonic() - t0
    finally:
        await prod.stop()


def _sustained(arrivals: list[float], lo: float = 0.1, hi: float = 0.9) -> float:
    arr = np.sort(np.asarray(arrivals))
    n = arr.size
    i, j = int(n * lo), int(n * hi) - 1
    span = arr[j] - arr[i]
    return (j - i) / span if span > 0 else float("nan")


def warm(sc: Scenario, corpus, log=print) -> dict:
    """First articles after start: the worker loads its models on the first article it sees
    (cold start), which is not steady state; measured here and kept out of the throughput."""
    items = [(a.id.encode(), a.to_bytes()) for a in corpus]
    watcher = Watcher(sc.bootstrap, sc.names.topic("articles.enriched"))
    watcher.start()
    watcher.started.wait(30)
    logs0 = [len(w.log_text()) for w in sc.workers]
    sent_at: dict[bytes, float] = {}
    asyncio.run(_produce(sc.bootstrap, sc.names.topic("articles.raw"), items, 0, sent_at))
    ok = watcher.wait_for(set(sent_at), timeout=120)
    watcher.stop()
    lat = [watcher.arrivals[k] - sent_at[k] for k in sent_at if k in watcher.arrivals]
    result = {"articles": len(items), "all_received": ok,
              "first_article_latency_s": round(min(lat), 2) if lat else None,
              "last_article_latency_s": round(max(lat), 2) if lat else None,
              "event_loop_stalls": [loop_stalls(w.log_text()[o:]) for w, o in zip(sc.workers, logs0)]}
    log(f"  cold start: {len(items)} articles in {result['last_article_latency_s']} s (first after "
        f"{result['first_article_latency_s']} s); stalls {[x['max_s'] for x in result['event_loop_stalls']]}")
    return result


def throughput(sc: Scenario, corpus, log=print, profile_dir: Path | None = None) -> dict:
    names = sc.names
    items = [(a.id.encode(), a.to_bytes()) for a in corpus]
    keys = {k for k, _ in items}
    watcher = Watcher(sc.bootstrap, names.topic("articles.enriched"), statuses=True, from_end=True)
    watcher.start()
    watcher.started.wait(30)
    cpu = CpuWatch(sc.pids())
    metrics0 = [parse_metrics(w.metrics()) for w in sc.workers]
    log_offsets = [len(w.log_text()) for w in sc.workers]
    spies = []
    if profile_dir is not None:
        spies = [Spy(w.pid, profile_dir / f"pyspy-e2e-{sc.workers_n}w-worker{i + 1}.txt", 600)
                 for i, w in enumerate(sc.workers)]
    sent_at: dict[bytes, float] = {}
    t_first = time.monotonic()
    produce_s = asyncio.run(_produce(sc.bootstrap, names.topic("articles.raw"), items, 0, sent_at))
    ok = watcher.wait_for(keys, timeout=max(120.0, len(items) / 50))
    t_last = max(watcher.arrivals[k] for k in keys if k in watcher.arrivals)
    cpu_used = cpu.stop()
    profiles = [spy.finish() for spy in spies]
    metrics1 = [parse_metrics(w.metrics()) for w in sc.workers]
    watcher.stop()
    arrivals = [watcher.arrivals[k] for k in keys if k in watcher.arrivals]
    window = _sustained(arrivals)
    # The sustained rate is the whole drain: from the first send to the last enriched article.
    # (Arrivals are bursty when an agent blocks the event loop, so a 10–90 % window overstates it.)
    sustained = len(arrivals) / (t_last - t_first)
    first_arrival = min(arrivals) - t_first if arrivals else None
    arr = np.sort(np.asarray(arrivals)) - t_first
    timeline = np.histogram(arr, bins=np.arange(0.0, float(arr.max()) + 1.0, 1.0))[0].tolist() if arr.size else []
    # per-worker in-process stage means during the run
    in_worker = {}
    for i, (m0, m1) in enumerate(zip(metrics0, metrics1)):
        stages = {}
        for stage, s1 in m1["stage_sum_s"].items():
            c = m1["stage_count"].get(stage, 0) - m0["stage_count"].get(stage, 0)
            if c:
                stages[stage] = round((s1 - m0["stage_sum_s"].get(stage, 0)) / c * 1e6, 1)
        msgs = {t.replace(names.prefix, ""): int(v - m0["messages_in"].get(t, 0))
                for t, v in m1["messages_in"].items()}
        hosts_dedup = any("dedup-requests" in t and v for t, v in msgs.items())
        per_article_cpu = cpu_used["cpu_seconds"].get(f"worker{i + 1}", 0) / max(len(arrivals), 1) * 1e6
        in_worker[f"worker{i + 1}"] = {
            "stage_us_mean": stages, "messages_in": msgs, "hosts_dedup_agent": hosts_dedup,
            "cpu_us_per_article_of_total": round(per_article_cpu, 1),
            "event_loop_stalls": loop_stalls(sc.workers[i].log_text()[log_offsets[i]:]),
            "profile": profiles[i] if i < len(profiles) else None,
        }
    kinds = {a.id.encode(): a.kind for a in corpus}
    confusion: dict[str, dict[str, int]] = {}
    for k, status in watcher.status.items():
        if k in kinds:
            confusion.setdefault(kinds[k], {}).setdefault(status, 0)
            confusion[kinds[k]][status] += 1
    result = {
        "articles": len(items),
        "received": len(arrivals),
        "all_received": ok,
        "copies_on_enriched": watcher.copies,
        "seed_seconds": round(produce_s, 2),
        "seed_msgs_per_s": round(len(items) / produce_s, 1),
        "sustained_articles_per_s": round(sustained, 1),
        "window_10_90_articles_per_s": round(window, 1),
        "first_enriched_after_s": round(first_arrival, 2) if first_arrival is not None else None,
        "drain_seconds": round(t_last - t_first, 2),
        "enriched_per_second_timeline": timeline,
        "cpu": cpu_used,
        "in_worker": in_worker,
        "verdicts_by_kind": confusion,
    }
    log(f"  {sc.workers_n} worker(s): sustained {sustained:,.0f} articles/s ({len(arrivals)}/{len(items)} in "
        f"{t_last - t_first:.1f}s; first after {first_arrival:.1f}s; 10–90 % window {window:,.0f}/s); CPU cores: "
        f"{cpu_used['cores_used']}, other processes {cpu_used['other_processes_cores']}")
    for name, w in in_worker.items():
        log(f"    {name}: dedup agent {'here' if w['hosts_dedup_agent'] else 'elsewhere'}; event-loop stalls "
            f"{w['event_loop_stalls']}; {w['cpu_us_per_article_of_total']:.0f} µs CPU per article")
    return result


def latency(sc: Scenario, corpus, rate: float, log=print, burst: int = 0, hop_split: bool = False) -> dict:
    """Offered load at `rate`/s (after `burst` articles sent at once: does a backlog drain?);
    latency per article from the producer's send() to the enriched message's arrival at a
    consumer. With `hop_split`, also split at the hand-over topic (articles.dedup-requests):
    hop 1 = analyse agent, hop 2 = dedup agent. That second consumer parses every funnel batch
    (~11 KB per article) on the same cores: off by default, so the load beside the workers is
    the same as in the throughput run the offered rate derives from."""
    names = sc.names
    items = [(a.id.encode(), a.to_bytes()) for a in corpus]
    keys = {k for k, _ in items}
    watcher = Watcher(sc.bootstrap, names.topic("articles.enriched"), from_end=True)
    middle = Watcher(sc.bootstrap, names.topic("articles.dedup-requests"), from_end=True, batches=True)
    watchers = (watcher, middle) if hop_split else (watcher,)
    for w in watchers:
        w.start()
        w.started.wait(30)
    cpu = CpuWatch(sc.pids())
    logs0 = [len(w.log_text()) for w in sc.workers]
    sent_at: dict[bytes, float] = {}
    produce_s = asyncio.run(_produce(sc.bootstrap, names.topic("articles.raw"), items, rate, sent_at, burst))
    ok = watcher.wait_for(keys, timeout=120)
    cpu_used = cpu.stop()
    for w in watchers:
        w.stop()
    got = [k for k, _ in items if k in watcher.arrivals]
    lat_ms = [(watcher.arrivals[k] - sent_at[k]) * 1000 for k in got]
    hop1 = [(middle.arrivals[k] - sent_at[k]) * 1000 for k in got if k in middle.arrivals]
    hop2 = [(watcher.arrivals[k] - middle.arrivals[k]) * 1000 for k in got if k in middle.arrivals]
    order = sorted(got, key=lambda k: sent_at[k])
    t0 = sent_at[order[0]] if order else 0.0
    per_second: dict[int, list[float]] = {}
    for k in order:
        per_second.setdefault(int(sent_at[k] - t0), []).append((watcher.arrivals[k] - sent_at[k]) * 1000)
    missing = len(keys) - len(lat_ms)
    stats = util.percentiles(lat_ms, (50, 95, 99))
    result = {
        "offered_articles_per_s": round(rate, 1),
        "burst_first": burst,  # sent at once before the paced articles (in second 0 below)
        "achieved_send_rate": round((len(items) - burst) / produce_s, 1),
        "articles": len(items),
        "seconds": round(produce_s, 1),
        "latency_ms": stats,
        "hop_split": hop_split,  # hop1/hop2 below are None without it
        "hop1_analyse_ms": util.percentiles(hop1, (50, 99)),
        "hop2_dedup_ms": util.percentiles(hop2, (50, 99)),
        "p99_ms_by_second_sent": [round(float(np.percentile(v, 99)), 1) for _, v in sorted(per_second.items())],
        "missing": missing,
        "all_received": ok,
        "cpu": cpu_used,
        "event_loop_stalls": [loop_stalls(w.log_text()[o:]) for w, o in zip(sc.workers, logs0)],
        "measured": "producer send() call → enriched message returned by a consumer (same clock, same host)",
    }
    log(f"  {sc.workers_n} worker(s) at {rate:,.0f}/s offered: p50 {stats['p50']} ms, p95 {stats['p95']} ms, "
        f"p99 {stats['p99']} ms, max {stats['max']} ms ({missing} missing); hop 1 (analyse) p50/p99 "
        f"{result['hop1_analyse_ms']['p50']}/{result['hop1_analyse_ms']['p99']} ms, hop 2 (dedup) "
        f"{result['hop2_dedup_ms']['p50']}/{result['hop2_dedup_ms']['p99']} ms")
    log(f"    p99 by second: {result['p99_ms_by_second_sent']}")
    return result


# ---------------------------------------------------------------------------------------------
# Part 5: recovery
# ---------------------------------------------------------------------------------------------

def _index_records(n: int) -> list[tuple[bytes, bytes]]:
    """`n` changelog values exactly as the dedup agent writes them, decided by the real funnel
    state over synthetic signatures (bench.dedup_scaling.synthetic_stream). Each article also
    carries the story part of one of 2,400 real analysed corpus articles, so its story record has
    realistic features."""
    from bench import corpus as corpus_mod
    from bench.dedup_scaling import synthetic_stream
    from worker import pipeline
    from worker.stages.dedup import DedupIndex
    from worker.stages.validate import parse_article

    now = time.time()
    out: list[tuple[bytes, bytes]] = []
    # Real funnel records of real analysed articles (the story part: features, story ids)...
    funnel = pipeline.ArticleIndex()
    story_parts = []
    for a in corpus_mod.generate(2400, seed=77):
        analysed = pipeline.analyse(parse_article(a.id.encode(), a.to_bytes(), 1 << 20), 126)
        record = orjson.loads(funnel.decide(analysed).record)
        if set(record) != {"v", "dedup", "story"}:
            raise RuntimeError(f"unknown funnel record layout {sorted(record)}: update bench/kafka_bench.py")
        story_parts.append(record["story"])
    # ...then n records: a real dedup record decided over a synthetic signature, and the story part
    # of one of those articles under the new id (~n/2400 articles per story, as real coverage).
    index = DedupIndex()
    for chunk in synthetic_stream(n, seed=11):
        for aid, h, sig, n_sh, _t, _kind in chunk:
            i = len(out)
            t = now - (n - i) * 1.0
            decision = index.decide(aid, h, sig.copy(), n_sh, t, t)
            story = {**story_parts[i % len(story_parts)], "id": aid, "t": t, "a": t}
            story.pop("mg", None)
            out.append((aid.encode(), encode_table_record(decision.record.to_dict(), story)))
    return out


async def _write_changelog(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    await create_topic(bootstrap, topic, 1, {"cleanup.policy": "compact"})
    t0 = time.perf_counter()
    prod = producer(bootstrap)
    await prod.start()
    try:
        futures = []
        for k, v in records:
            futures.append(await prod.send(topic, v, key=k, partition=0))
            if len(futures) >= 5000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await prod.stop()
    return time.perf_counter() - t0


def recovery(bootstrap: str, run_dir: Path, articles: int, baseline_ready_s: float | None, log=print) -> dict:
    names = Names.fresh("recovery")
    records = _index_records(articles)
    changelog = f"{names.app_id}-dedup-index-changelog"
    asyncio.run(create_product_topics(bootstrap, names))
    write_s = asyncio.run(_write_changelog(bootstrap, changelog, records))
    mean_bytes = sum(len(v) for _, v in records) / len(records)
    w = Worker.make(bootstrap, names, run_dir, "recovery").start()
    try:
        rebuilt_at = None
        rebuilt = None
        deadline = time.monotonic() + 600
        ready_s = None
        while time.monotonic() < deadline:
            if w.proc.poll() is not None:
                raise RuntimeError(f"worker exited during recovery:\n{w.log_tail()}")
            if rebuilt is None:
                for m in REBUILT_RE.finditer(w.log_text()):
                    if int(m.group(1)) >= articles:
                        rebuilt = (int(m.group(1)), float(m.group(2)))
                        rebuilt_at = time.monotonic() - w.started_at
            if ready_s is None and w.ready():
                ready_s = time.monotonic() - w.started_at
            if rebuilt is not None and ready_s is not None:
                break
            time.sleep(0.1)
        rss = util.rss_bytes(w.pid)
    finally:
        w.stop()
    result = {
        "articles": articles,
        "changelog_topic": "<app_id>-dedup-index-changelog (1 partition, compacted)",
        "record_mean_bytes": round(mean_bytes),
        "changelog_mb": round(mean_bytes * articles / 2**20, 1),
        "write_seconds": round(write_s, 1),
        "start_to_rebuilt_log_s": round(rebuilt_at, 2) if rebuilt_at else None,
        "start_to_ready_s": round(ready_s, 2) if ready_s else None,
        "rebuild_step_s_from_log": rebuilt[1] if rebuilt else None,
        "articles_rebuilt": rebuilt[0] if rebuilt else None,
        "baseline_start_to_ready_empty_s": baseline_ready_s,
        "recovery_s_over_baseline": round(ready_s - baseline_ready_s, 2) if ready_s and baseline_ready_s else None,
        "worker_rss_mb_after": round(rss / 2**20, 1),
    }
    log(f"  {articles:,} records ({result['changelog_mb']} MB): "
        f"start→'rebuilt' log {result['start_to_rebuilt_log_s']} s "
        f"(index build {result['rebuild_step_s_from_log']} s), start→ready {result['start_to_ready_s']} s "
        f"(empty: {baseline_ready_s} s); worker RSS {result['worker_rss_mb_after']} MB")
    return result
