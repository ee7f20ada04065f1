"""Every Kafka topic of the product, declared once: name, partitions, configs, message schema.

    articles.raw ──► [analyse] ──► articles.dedup-requests (1 partition) ──► [deduplicate]
                        │                                                       │
                        └──► articles.dlq ◄─────────────────────────────────────┤
                                                          articles.enriched ◄───┤
                                                          articles.duplicates ◄─┘

Names carry an optional prefix (`TOPIC_PREFIX`) so several deployments, or tests, share a
cluster without seeing each other's data; `Topics` resolves every name and partition count of
one deployment, and is the only place that does.

Partition counts are declared here, once per topic (`TopicSpec.partitions`). Two settings
override them, and only where `TopicSpec.partitions_setting` names them: `INPUT_PARTITIONS`
(articles.raw) and `OUTPUT_PARTITIONS` (articles.enriched, articles.duplicates). The others are
fixed: the funnel and faust's table changelog must have exactly one partition (the worker refuses
to start otherwise), the DLQ keeps dead letters in order.

faust's own topics (the dedup table's compacted changelog, the assignor's leader topic) are
created by the worker, named from `APP_ID`, and declared here too (`faust_topics`) so that
`ingest topics check` and the worker's start-up check hold them to the same rules
(`topics.validation`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import orjson

SCHEMA_DIR = Path(__file__).parent / "schemas"
SCHEMA_VERSION = 2  # 2: event_time is an object (value, epoch, source, warning); merges listed

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One topic: `base_name` is prefixed at run time; `config` is passed to CreateTopics as is."""

    base_name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    schema_file: str = ""
    key: str = "article id (UTF-8)"
    doc: str = ""
    #: The setting that overrides `partitions` for a deployment ("" = fixed at `partitions`).
    partitions_setting: str = ""
    #: Why the topic must have exactly one partition; set = the worker refuses to start otherwise.
    one_partition_because: str = ""
    #: Who creates it: `ingest topics create`, or the worker (faust's own topics).
    created_by: str = "ingest topics create"

    def schema(self) -> dict:
        return load_schema(self.schema_file)


RAW = TopicSpec(
    "articles.raw", partitions=4, partitions_setting="INPUT_PARTITIONS",
    config={"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS),
            "max.message.bytes": str(2 * 1024 * 1024)},
    schema_file="article.raw.schema.json",
    doc="Input: one article per message, JSON. Producers: `ingest seed` or any client.",
)
DEDUP_REQUESTS = TopicSpec(
    "articles.dedup-requests", partitions=1,
    # One partition on purpose: the funnel that lets one dedup index see every article
    # whatever input partition it came in on (README, "Topology"). Carries the analysed
    # articles in batches; short retention, it is only a hand-over between the two agents.
    config={"cleanup.policy": "delete", "retention.ms": str(1 * DAY_MS),
            "max.message.bytes": str(4 * 1024 * 1024)},
    schema_file="analysed.batch.schema.json", key="id of the last article in the batch (UTF-8)",
    doc="Internal: analysed articles (batched per input partition) awaiting their dedup verdicts.",
    one_partition_because="it is the dedup funnel: one dedup index must see every article, "
                          "whatever input partition it came in on",
)
ENRICHED = TopicSpec(
    "articles.enriched", partitions=4, partitions_setting="OUTPUT_PARTITIONS",
    # Compacted: the topic is a table of the latest enrichment per article id, so a redelivery
    # (same id, same verdict) costs downstream nothing.
    config={"cleanup.policy": "compact", "min.compaction.lag.ms": str(3600 * 1000),
            "max.message.bytes": str(4 * 1024 * 1024)},
    schema_file="article.enriched.schema.json",
    doc="Output: every valid article with language, hashes, dedup verdict, entities.",
)
DUPLICATES = TopicSpec(
    "articles.duplicates", partitions=4, partitions_setting="OUTPUT_PARTITIONS",
    config={"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
    schema_file="duplicate.verdict.schema.json",
    doc="Output: one event per duplicate found (exact or near).",
)
DLQ = TopicSpec(
    "articles.dlq", partitions=1,
    # Long retention: dead letters are kept until someone fixes the cause and replays them.
    config={"cleanup.policy": "delete", "retention.ms": str(90 * DAY_MS),
            "max.message.bytes": str(8 * 1024 * 1024)},
    schema_file="dead.letter.schema.json",
    key="source topic/partition/offset",
    doc="Dead letters: original bytes, reason, stage, source offset.",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (RAW, DEDUP_REQUESTS, ENRICHED, DUPLICATES, DLQ)

# -- faust's own topics: created by the worker, named "{APP_ID}-{base_name}" ------------------
DEDUP_TABLE = "dedup-index"  # worker/app.py's faust Table; its changelog is named after it
CHANGELOG = TopicSpec(
    f"{DEDUP_TABLE}-changelog", partitions=1,
    config={"cleanup.policy": "compact"},
    key="article id (UTF-8)",
    doc="faust's changelog of the dedup-index table: the dedup state, rebuilt from it after a restart.",
    one_partition_because="the dedup-index table has one partition, like the funnel that feeds it",
    created_by="the worker (faust), at its first start",
)
LEADER = TopicSpec(
    "__assignor-__leader", partitions=1,
    key="(faust internal)",
    doc="faust's partition assignor: elects the worker that runs leader-only tasks.",
    created_by="the worker (faust), at its first start",
)
FAUST_TOPICS: tuple[TopicSpec, ...] = (CHANGELOG, LEADER)


@cache
def load_schema(file_name: str) -> dict:
    return orjson.loads((SCHEMA_DIR / file_name).read_bytes())


@dataclass(frozen=True)
class Topic:
    """One topic of one deployment: its spec, its full name and its partition count."""

    spec: TopicSpec
    name: str
    partitions: int


class Topics:
    """Every topic of one deployment, resolved from `TOPIC_PREFIX` and the partition settings.

    A partition setting reaches only the topics whose spec names it (`partitions_setting`):
    the funnel (one dedup index sees every article) and the DLQ (dead letters in order) stay at
    one partition whatever the settings say.
    """

    def __init__(self, prefix: str = "", input_partitions: int = RAW.partitions,
                 output_partitions: int = ENRICHED.partitions) -> None:
        self.prefix = prefix
        overrides = {"INPUT_PARTITIONS": input_partitions, "OUTPUT_PARTITIONS": output_partitions}

        def resolve(spec: TopicSpec) -> Topic:
            return Topic(spec, f"{prefix}{spec.base_name}", overrides.get(spec.partitions_setting, spec.partitions))

        self.raw = resolve(RAW)
        self.dedup_requests = resolve(DEDUP_REQUESTS)
        self.enriched = resolve(ENRICHED)
        self.duplicates = resolve(DUPLICATES)
        self.dlq = resolve(DLQ)
        self.all: tuple[Topic, ...] = (self.raw, self.dedup_requests, self.enriched, self.duplicates, self.dlq)

    def __iter__(self):
        return iter(self.all)

    def names(self) -> list[str]:
        return [topic.name for topic in self.all]

    def full_name(self, name: str) -> str:
        """A topic name as a user types it (`articles.enriched`, or already prefixed) → the full name."""
        if self.prefix and name.startswith(self.prefix):
            return name
        return f"{self.prefix}{name}"


def faust_topics(app_id: str) -> tuple[Topic, ...]:
    """faust's own topics of the app `app_id` (faust names them "{app id}-{name}"; APP_ID, not
    TOPIC_PREFIX). The worker creates them; `topics.validation` checks them once they exist."""
    return tuple(Topic(spec, f"{app_id}-{spec.base_name}", spec.partitions) for spec in FAUST_TOPICS)
