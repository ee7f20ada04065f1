"""A downstream consumer written with another client (confluent-kafka / librdkafka).

It shows the `articles.enriched` contract holds for any Kafka client: keys are article ids
(UTF-8), values are JSON documents as in topics/schemas/article.enriched.schema.json, and the
topic is compacted, so the latest message per key is the article's enrichment.

    python examples/confluent_consumer.py --bootstrap localhost:9092 --topic articles.enriched

Prints one line per article: id, language, dedup status, top entities. Exits when it has read
to the end of every partition (or after --timeout seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="localhost:9092")
    parser.add_argument("--topic", default="articles.enriched")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)

    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "example-confluent-reader",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "enable.partition.eof": True})
    metadata = consumer.list_topics(args.topic, timeout=10)
    partitions = sorted(metadata.topics[args.topic].partitions)
    consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in partitions])

    latest: dict[str, dict] = {}  # compacted-topic semantics: the last value per key wins
    at_end: set[int] = set()
    deadline = time.monotonic() + args.timeout
    while len(at_end) < len(partitions) and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            if message.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(message.partition())
                continue
            raise SystemExit(f"kafka error: {message.error()}")
        at_end.discard(message.partition())
        key = message.key().decode("utf-8")
        latest[key] = json.loads(message.value())
    consumer.close()

    for article_id, article in sorted(latest.items()):
        assert article["id"] == article_id, "key and id must agree"
        entities = ", ".join(e["canonical"] for e in article["entities"][:5])
        print(f"{article_id}\t{article['language']['code']}\t{article['dedup']['status']}\t{entities}")
    print(f"{len(latest)} articles", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
