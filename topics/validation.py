"""Live topics held to `topics/`: what differs, whether the worker may run with it, and the exact
command that fixes each difference (the topic validation of Quix Streams, for this product).

Pure: the caller describes the live topics (worker/kafka/admin.py) and gets `Mismatch`es back.
Compared for every topic of the deployment (and faust's own, once they exist): partitions,
replication factor, min.insync.replicas and every config the spec declares (cleanup.policy,
retention.ms, ...).

Fatal mismatches (the worker refuses to start on them, with the same message as
`ingest topics check`): a product topic missing, a topic that must have exactly one partition
with another count (the dedup funnel, the dedup table's changelog), a compacted topic that is
not compacted. Everything else is reported (the worker logs a warning; the check exits non-zero).

Replication (`resolve_replication`): `REPLICATION_FACTOR`, else 3 when the cluster has at least 3
brokers, else the number of brokers; `MIN_INSYNC_REPLICAS`, else 2 where the factor is 3 or more,
else 1. With the factor left to the broker count, a topic with *more* replicas than that count
asks for is fine (a broker may be down while the check runs); with REPLICATION_FACTOR set, the
factor must be exactly that.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from topics import Topic

DEFAULT_REPLICATION_FACTOR = 3  # the usual production factor; capped at the number of brokers


@dataclass(frozen=True)
class Replication:
    """How many copies each partition has (`factor`), and how many of them must have a write
    before a producer with acks=all is answered (`min_insync`)."""

    factor: int
    min_insync: int
    explicit: bool = False  # REPLICATION_FACTOR was set; else it follows the broker count

    def topic_config(self) -> dict[str, str]:
        return {"min.insync.replicas": str(self.min_insync)}


def default_min_insync(factor: int) -> int:
    """2 where a partition has 3 or more replicas (one broker may fail, writes go on, no
    acknowledged write lives on one broker only), else 1 (2 of 2 would stop every write while
    one broker is down)."""
    return 2 if factor >= 3 else 1


def resolve_replication(brokers: int, factor: int | None = None, min_insync: int | None = None) -> Replication:
    """REPLICATION_FACTOR / MIN_INSYNC_REPLICAS (None: not set) against a cluster of `brokers`."""
    explicit = factor is not None
    if factor is None:
        factor = max(1, min(DEFAULT_REPLICATION_FACTOR, brokers))
    isr = min_insync if min_insync is not None else default_min_insync(factor)
    if isr > factor:
        raise ValueError(f"MIN_INSYNC_REPLICAS={isr} is more than the replication factor {factor}: "
                         "no write with acks=all could ever succeed")
    return Replication(factor, isr, explicit)


@dataclass(frozen=True)
class LiveTopic:
    """A topic as the cluster has it: replica broker ids per partition, and its configs."""

    name: str
    replicas: Mapping[int, Sequence[int]]
    config: Mapping[str, str] = field(default_factory=dict)

    @property
    def partitions(self) -> int:
        return len(self.replicas)

    @property
    def replication(self) -> int:
        """The smallest replica count over the partitions (what a broker loss can cost)."""
        return min((len(r) for r in self.replicas.values()), default=0)


@dataclass(frozen=True)
class Mismatch:
    """One difference between a live topic and its spec, with the command that fixes it."""

    topic: str
    setting: str  # "exists", "partitions", "replication factor", or a topic config name
    actual: str
    expected: str
    fix: str  # the exact command
    fatal: bool = False  # the worker refuses to start
    why: str = ""  # why the expected value matters, when that is not obvious
    note: str = ""  # what the fix costs, or another way out

    def __str__(self) -> str:
        if self.setting == "exists":
            return f"topic {self.topic} is missing. Fix: {self.fix}"
        why = f" ({self.why})" if self.why else ""
        note = f" [{self.note}]" if self.note else ""
        return f"topic {self.topic}: {self.setting} is {self.actual}, expected {self.expected}{why}. " \
               f"Fix: {self.fix}{note}"


class FixCommands:
    """The Kafka command-line tools' commands (kafka-topics.sh, kafka-configs.sh,
    kafka-reassign-partitions.sh: in every Kafka distribution, /opt/kafka/bin in the apache/kafka
    image, and `ingest kafka tool NAME ...` runs them from the pinned jars)."""

    def __init__(self, bootstrap: str, command_config: str = "") -> None:
        self.base = f"--bootstrap-server {shlex.quote(bootstrap)}"
        if command_config:  # SASL / TLS: the client settings in a properties file
            self.base += f" --command-config {shlex.quote(command_config)}"

    def alter_config(self, topic: str, key: str, value: str) -> str:
        value = f"[{value}]" if "," in value else value  # kafka-configs' syntax for a list
        return (f"kafka-configs.sh {self.base} --alter --entity-type topics --entity-name {shlex.quote(topic)} "
                f"--add-config {shlex.quote(f'{key}={value}')}")

    def add_partitions(self, topic: str, partitions: int) -> str:
        return f"kafka-topics.sh {self.base} --alter --topic {shlex.quote(topic)} --partitions {partitions}"

    def delete(self, topic: str) -> str:
        return f"kafka-topics.sh {self.base} --delete --topic {shlex.quote(topic)}"

    def reassign(self, topic: str, assignment: dict[int, list[int]]) -> str:
        plan = orjson.dumps({"version": 1, "partitions": [
            {"topic": topic, "partition": p, "replicas": r} for p, r in sorted(assignment.items())]}).decode()
        file = f"reassign-{topic}.json"
        return (f"echo {shlex.quote(plan)} > {shlex.quote(file)} && kafka-reassign-partitions.sh {self.base} "
                f"--reassignment-json-file {shlex.quote(file)} --execute")


def reassignment(live: LiveTopic, factor: int, brokers: Sequence[int]) -> dict[int, list[int]]:
    """New replica lists with `factor` replicas each: the live replicas first (their leader
    stays; nothing moves that need not), then brokers in turn from the partition's index on."""
    ordered = sorted(brokers)
    plan = {}
    for partition, replicas in sorted(live.replicas.items()):
        keep = [b for b in replicas if b in ordered][:factor]
        turn = ordered[partition % len(ordered):] + ordered[:partition % len(ordered)] if ordered else []
        plan[partition] = keep + [b for b in turn if b not in keep][:factor - len(keep)]
    return plan


def _policies(value: str | None) -> set[str]:
    return {p.strip() for p in (value or "").split(",") if p.strip()}


def validate(expected: Iterable[Topic], live: Mapping[str, LiveTopic], replication: Replication,
             brokers: Sequence[int], fix: FixCommands) -> list[Mismatch]:
    """Every difference between the live topics and `expected`, in order. A product topic that is
    missing is a (fatal) mismatch; one of faust's own topics that does not exist yet is not (the
    worker creates it)."""
    found: list[Mismatch] = []
    for topic in expected:
        spec, name = topic.spec, topic.name
        current = live.get(name)
        if current is None:
            if spec.created_by == "ingest topics create":
                found.append(Mismatch(name, "exists", "missing", "present", "ingest topics create", fatal=True))
            continue
        found += _partitions(topic, current, fix)
        found += _replication(topic, current, replication, brokers, fix)
        declared = dict(spec.config)
        live_factor = current.replication
        isr = replication.min_insync
        if not replication.explicit and live_factor > replication.factor:
            isr = default_min_insync(live_factor)  # more replicas than the live brokers ask for: fine
        declared.setdefault("min.insync.replicas", str(isr))
        for key, value in declared.items():
            actual = current.config.get(key)
            same = _policies(actual) == _policies(value) if key == "cleanup.policy" else actual == value
            if same:
                continue
            fatal = key == "cleanup.policy" and "compact" in _policies(value) and "compact" not in _policies(actual)
            why = ("a compacted topic keeps the latest record of every key; deleted by age, records the "
                   "product relies on would go" if fatal else "")
            found.append(Mismatch(name, key, str(actual), value, fix.alter_config(name, key, value), fatal=fatal,
                                  why=why))
    return found


def _partitions(topic: Topic, current: LiveTopic, fix: FixCommands) -> list[Mismatch]:
    spec, name, want, have = topic.spec, topic.name, topic.partitions, current.partitions
    if have == want:
        return []
    if spec.one_partition_because:
        recreate = "ingest topics create" if spec.created_by == "ingest topics create" else "start the worker"
        cost = ("the analysed articles waiting in it are dropped: replay them onto articles.raw"
                if spec.created_by == "ingest topics create" else "the dedup state starts empty again")
        return [Mismatch(name, "partitions", str(have), str(want),
                         f"stop every worker, then {fix.delete(name)} && {recreate}", fatal=True,
                         why=spec.one_partition_because, note=cost)]
    setting = spec.partitions_setting
    if have < want:
        note = f"or set {setting}={have} to keep {have}" if setting else ""
        if spec.config.get("cleanup.policy") == "compact":
            note = ("new partitions move keys: an id's older record stays in its old partition; " + note).strip()
        return [Mismatch(name, "partitions", str(have), str(want), fix.add_partitions(name, want), note=note)]
    if setting:
        return [Mismatch(name, "partitions", str(have), str(want), f"export {setting}={have}",
                         note="Kafka cannot remove partitions")]
    return [Mismatch(name, "partitions", str(have), str(want), f"{fix.delete(name)} && ingest topics create",
                     note="Kafka cannot remove partitions: its records are deleted")]


def _replication(topic: Topic, current: LiveTopic, replication: Replication, brokers: Sequence[int],
                 fix: FixCommands) -> list[Mismatch]:
    have, want = current.replication, replication.factor
    if have == want or (have > want and not replication.explicit):
        return []
    setting = "replication factor"
    if want > len(brokers):
        return [Mismatch(topic.name, setting, str(have), str(want),
                         f"add brokers, or export REPLICATION_FACTOR={len(brokers)}",
                         why=f"the cluster has {len(brokers)} broker(s)")]
    return [Mismatch(topic.name, setting, str(have), str(want),
                     fix.reassign(topic.name, reassignment(current, want, brokers)),
                     note="no data is lost; new replicas copy the partition from its leader")]
