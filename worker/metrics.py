"""Prometheus metrics of the worker, served at `/metrics` on the faust web port."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES_IN = Counter("ingest_messages_in_total", "Messages consumed, by topic", ["topic"], registry=REGISTRY)
MESSAGES_OUT = Counter("ingest_messages_out_total", "Messages produced, by topic", ["topic"], registry=REGISTRY)
DEAD_LETTERS = Counter("ingest_dead_letters_total", "Messages sent to the DLQ, by reason and stage",
                       ["reason", "stage"], registry=REGISTRY)
VERDICTS = Counter("ingest_dedup_verdicts_total", "Dedup verdicts by status (unique/exact_duplicate/near_duplicate)",
                   ["status"], registry=REGISTRY)
REPLAYS = Counter("ingest_replays_total", "Redeliveries of an already-decided article id", registry=REGISTRY)
EVICTIONS = Counter("ingest_dedup_evictions_total",
                    "Dedup index entries evicted, by reason: age (DEDUP_RETENTION since arrival) "
                    "or budget (DEDUP_MAX_ARTICLES)",
                    ["reason"], registry=REGISTRY)
STORY_EVICTIONS = Counter("ingest_story_evictions_total",
                          "Story records evicted with their stories (STORY_RETENTION since the last "
                          "arrival, or the budget)",
                          registry=REGISTRY)
EVENT_TIMES = Counter("ingest_event_time_total",
                      "Analysed articles by where their event time came from: published, url or dateline (the "
                      "page's own date when published_at is missing), ingested (none of those) or clamped "
                      "(more than MAX_FUTURE_SKEW ahead)", ["source"],
                      registry=REGISTRY)
STAGE_SECONDS = Histogram("ingest_stage_seconds", "Time per article per stage", ["stage"], registry=REGISTRY,
                          buckets=(1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 0.5))
INDEX_ARTICLES = Gauge("ingest_dedup_index_articles", "Articles in the dedup index on this worker", registry=REGISTRY)
CONSUMER_LAG = Gauge("ingest_consumer_lag", "Messages behind the high watermark, per partition",
                     ["topic", "partition"], registry=REGISTRY)
