"""All configuration, from environment variables (and an optional `.env`), with defaults.

Every field here is documented in the README's configuration table; the env var is the field
name in upper case (e.g. `dedup_threshold` ← `DEDUP_THRESHOLD`).
"""

from __future__ import annotations

import ssl
from datetime import timedelta
from functools import cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from topics import Topics
from worker.stages import dedup
from worker.stages.fields import FieldMap, parse_field_map


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Kafka
    kafka_bootstrap_servers: str = "localhost:9092"
    app_id: str = "news-ingest"  # faust app id = consumer group and changelog topic prefix
    topic_prefix: str = ""
    input_partitions: int = 4
    output_partitions: int = 4
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    # Copies of every partition, of the product's topics and of faust's (changelog, leader topic).
    # Unset (or "auto"): 3 when the cluster has at least 3 brokers, else the number of brokers,
    # read from the cluster metadata when topics are created. min.insync.replicas unset: 2 where
    # the factor is 3 or more, else 1 (topics/validation.py resolve_replication).
    replication_factor: int | None = Field(None, ge=1)
    min_insync_replicas: int | None = Field(None, ge=1)
    # faust's defaults (1 MiB fetch per partition, 16 KiB producer batches) cap the one-partition
    # funnel at ~120 analysed articles of ~11 KB per second (measured in bench/; `git show
    # ac4dfbd:BENCHMARKS.md`).
    consumer_max_fetch_size: int = 16 * 1024 * 1024
    producer_max_batch_size: int = 1024 * 1024
    # How long the broker may hold a fetch, and how much data answers it at once. faust fixes the
    # wait at 1,500 ms, and a fetch holding only idle partitions then stalls the busy ones for
    # that long (worker/kafka/faust_support.py IngestConsumerThread). A minimum of 32 KiB took 15-18 %
    # off the worker CPU per article at 430/s, but the rebalance test's promoted standby hung in
    # recovery in 2 of 13 runs with it (0 of 12 with 1 B): aiokafka's 1 B stays the default
    # until that is understood. Measured in docs/benchmarks-log.md ("Fetch stalls").
    consumer_fetch_max_wait_ms: int = Field(20, ge=0, le=1500)
    consumer_fetch_min_bytes: int = Field(1, ge=1)
    # Seconds the producer waits to fill a batch. faust's 0 kept: 5 ms measured +9 % throughput
    # but p99 latency over 100 ms at half load (docs/benchmarks-log.md, the A/B rows).
    producer_linger: float = Field(0.0, ge=0)

    # Security (worker, seeder and consumer alike)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str = ""
    sasl_password: SecretStr = SecretStr("")
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""

    # The hand-over to the one-partition dedup funnel: analysed articles go out in batches (one
    # message per input partition), sent when FUNNEL_BATCH_MAX_ARTICLES are waiting or
    # FUNNEL_BATCH_LINGER_S after the last send. 5 and 10 ms measured +18 % and +8 % end-to-end
    # throughput over 0 (3 alternating rounds, BENCHMARKS.md); 0 sends every article at once.
    funnel_batch_max_articles: int = Field(64, ge=1)
    funnel_batch_linger_s: float = Field(0.005, ge=0)
    # The analyse agent analyses the articles it has taken together, stage by stage, when this
    # many are waiting (and at every funnel-batch send): a stage's tables stay in the CPU caches
    # from one article to the next. 16 against 1: 15-25 % less CPU per article in-process, +13-34 %
    # end to end with 2 workers (BENCHMARKS.md); 1 analyses every article on arrival.
    analyse_batch_articles: int = Field(16, ge=1)

    # Processing
    max_article_bytes: int = 1024 * 1024  # larger messages go to the DLQ
    # Input field names beyond the built-in aliases (worker/stages/fields.py), e.g.
    # "body=content,published_at=meta.date": field=path[|path...], dotted paths into nested objects.
    input_field_map: str = ""
    dedup_threshold: float = Field(dedup.DEFAULT_THRESHOLD, gt=0, le=1)  # similarity = max(Jaccard, containment)
    # Retention counts from when an article *arrived*, never from its published_at: replayed
    # archives and wrong dates cannot evict anything. Durations: seconds or ISO-8601 ("P30D").
    dedup_retention: timedelta = Field(timedelta(seconds=dedup.DEFAULT_RETENTION_S), gt=timedelta(0))
    dedup_window_days: float | None = Field(None, gt=0)  # deprecated name of DEDUP_RETENTION, in days
    # The memory budget: past it the oldest arrivals leave the index first (see BENCHMARKS.md
    # for the resident memory per indexed article).
    dedup_max_articles: int = Field(dedup.DEFAULT_MAX_ARTICLES, ge=1)
    story_retention: timedelta = Field(timedelta(days=7), gt=timedelta(0))  # since a story's last arrival
    # A published_at later than ingestion + this is cut to it and flagged (event_time.source = clamped).
    max_future_skew: timedelta = Field(timedelta(days=1), ge=timedelta(0))
    minhash_permutations: int = dedup.DEFAULT_NUM_PERM  # a multiple of 3 (worker/stages/dedup.py)

    # Runtime
    store: str = "memory://"  # or rocksdb:// (needs rocksdict)
    data_dir: str = ".cache/faust"  # faust's per-app data folder (RocksDB files, worker state)
    # With STORE=rocksdb://, a snapshot of the dedup index is written next to the table's RocksDB
    # files every INDEX_SNAPSHOT_EVERY_RECORDS changelog records or INDEX_SNAPSHOT_EVERY_S seconds
    # (whichever comes first, if anything changed; and once after a rebuild from the changelog).
    # A restart on the same disk loads it and applies only the changelog records written after
    # it (worker/snapshot.py). 0 and 0: never. Ignored with STORE=memory://.
    index_snapshot_every_records: int = Field(100_000, ge=0)
    index_snapshot_every_s: float = Field(600.0, ge=0)
    # An older snapshot is not used: the changelog may have dropped a deletion written after it
    # (Kafka's delete.retention.ms, a day by default). 0: any age.
    index_snapshot_max_age_s: float = Field(86400.0, ge=0)
    web_port: int = 6066
    web_enabled: bool = True
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"
    standby_replicas: int = 0
    # /health/live answers 503 when an input partition has input waiting and no record of it was
    # handled for this long (faust-streaming#175/#640: partitions that silently stop).
    stall_timeout_s: float = Field(120.0, gt=0)
    # SIGTERM/SIGINT: a graceful stop takes ~1.5 s; past this the process exits anyway (code 75;
    # whatever was not committed is redelivered). Keep it below the orchestrator's grace period.
    shutdown_deadline_s: float = Field(10.0, gt=0)

    @field_validator("replication_factor", "min_insync_replicas", mode="before")
    @classmethod
    def _auto(cls, value):
        """REPLICATION_FACTOR= or =auto: from the cluster (see above)."""
        return None if isinstance(value, str) and value.strip().lower() in ("", "auto") else value

    @field_validator("input_field_map")
    @classmethod
    def _field_map(cls, value: str) -> str:
        parse_field_map(value)  # a malformed map stops the worker at start, naming the entry
        return value

    def field_map(self) -> FieldMap:
        """INPUT_FIELD_MAP, parsed (cached: cheap to ask per message)."""
        return parse_field_map(self.input_field_map)

    @field_validator("dedup_retention", "story_retention", "max_future_skew", mode="before")
    @classmethod
    def _seconds(cls, value):
        """A bare number in the environment is seconds (pydantic reads only ISO-8601 from strings)."""
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return value
        return value

    @model_validator(mode="after")
    def _deprecated_window(self) -> Settings:
        if self.dedup_window_days is not None and "dedup_retention" not in self.model_fields_set:
            self.dedup_retention = timedelta(days=self.dedup_window_days)
        return self

    def topics(self) -> Topics:
        """Every topic name and partition count of this deployment (topics/: the one place)."""
        return Topics(self.topic_prefix, self.input_partitions, self.output_partitions)

    def kafka_client_options(self) -> dict:
        """aiokafka client keyword arguments for the security settings (never logged)."""
        opts: dict = {"bootstrap_servers": self.kafka_bootstrap_servers,
                      "security_protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            opts.update(sasl_mechanism=self.sasl_mechanism,
                        sasl_plain_username=self.sasl_username,
                        sasl_plain_password=self.sasl_password.get_secret_value())
        context = self.ssl_context()
        if context is not None:
            opts["ssl_context"] = context
        return opts

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of SECURITY_PROTOCOL=SSL / SASL_SSL (one for every client), else None."""
        if not self.security_protocol.endswith("SSL"):
            return None
        context = ssl.create_default_context(cafile=self.ssl_cafile or None)
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile or None)
        return context


@cache
def get_settings() -> Settings:
    return Settings()
