"""`ingest`: the command line of the product.

    ingest kafka start|stop|status|fetch   a local Apache Kafka broker (no Docker needed)
    ingest topics create|check             the topics of topics/, idempotently
    ingest seed PATH...                    replay article files onto articles.raw
    ingest worker                          the faust worker (= faust -A worker.app worker)
    ingest consume                         read articles.enriched (or any output topic)
    ingest enrich PATH...                  the same stages in-process, without Kafka

Every Kafka setting comes from the environment (see worker/config.py and the README).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path

import click
import orjson

from worker.config import Settings, get_settings


def run_against_kafka(settings: Settings, coro):
    """Run a Kafka coroutine; connection and login failures become one clear error line."""
    from worker.kafka.connection import KafkaUnavailable, explain_connection_errors

    try:
        with explain_connection_errors(settings):
            return asyncio.run(coro)
    except KafkaUnavailable as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def main() -> None:
    """News ingestion worker on Apache Kafka."""


# -- local broker -----------------------------------------------------------------------------

@main.group()
def kafka() -> None:
    """A local single-node Kafka broker (KRaft) from Maven Central jars."""


@kafka.command("fetch")
def kafka_fetch() -> None:
    """Download the pinned Kafka jars with Maven (once)."""
    from worker.kafka import local_broker

    click.echo(f"Kafka {local_broker.kafka_version()} jars in {local_broker.fetch()}")


@kafka.command("start")
@click.option("--name", default="default", show_default=True)
@click.option("--port", type=int, default=None, help="Listener port (default: 9092 if free, else any)")
def kafka_start(name: str, port: int | None) -> None:
    """Start the broker in the background; prints its bootstrap address."""
    from worker.kafka import local_broker

    if port is None and name == "default":
        port = 9092 if not local_broker._port_open(9092) else None
    started = time.monotonic()
    broker = local_broker.start(name, port)
    click.echo(f"Kafka {local_broker.kafka_version()} running at {broker.bootstrap_servers} "
               f"(pid {broker.pid}, {time.monotonic() - started:.1f}s, log {broker.log_file})")
    click.echo(f"export KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers}")


@kafka.command("stop")
@click.option("--name", default="default", show_default=True)
def kafka_stop(name: str) -> None:
    """Stop the broker (controlled shutdown; SIGKILL after 30 s)."""
    from worker.kafka import local_broker

    click.echo("stopped" if local_broker.stop(name) else "not running")


@kafka.command("status")
@click.option("--name", default="default", show_default=True)
def kafka_status(name: str) -> None:
    from worker.kafka import local_broker

    status = local_broker.status(name)
    click.echo(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode())
    sys.exit(0 if status["running"] else 1)


# -- topics -----------------------------------------------------------------------------------

@main.group()
def topics() -> None:
    """Create or check the product's topics."""


@topics.command("create")
def topics_create() -> None:
    """Create every topic of topics/ that does not exist yet (idempotent)."""
    from worker.kafka.admin import create_topics

    settings = get_settings()
    for name, state in run_against_kafka(settings, create_topics(settings)).items():
        click.echo(f"{state:8} {name}")


@topics.command("check")
def topics_check() -> None:
    from worker.kafka.admin import missing_topics

    settings = get_settings()
    missing = run_against_kafka(settings, missing_topics(settings))
    if missing:
        raise click.ClickException(f"missing topics: {', '.join(missing)}")
    click.echo("all topics exist")


# -- seeder -----------------------------------------------------------------------------------

@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, allow_dash=True, path_type=Path))
@click.option("--rate", type=float, default=0.0, help="Articles per second (0 = as fast as possible)")
@click.option("--loop", "loops", type=int, default=1, show_default=True, help="Replay the input N times")
@click.option("--new-ids", is_flag=True, help="Give every article a fresh id (tests duplicate detection)")
@click.option("--dry-run", is_flag=True, help="Read and validate, print what would be sent, send nothing")
@click.option("--topic", default=None, help="Target topic (default: articles.raw with TOPIC_PREFIX)")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "json", "csv", "tsv", "parquet", "warc", "txt"]),
              default=None, help="The format where the name says none (stdin): default from the suffix or content")
def seed(paths: tuple[Path, ...], rate: float, loops: int, new_ids: bool, dry_run: bool, topic: str | None,
         fmt: str | None) -> None:
    """Replay article files, archives and folders onto articles.raw ('-' reads stdin).

    .txt .json .jsonl .csv .tsv .parquet .warc, each also .gz/.zst/.bz2/.xz; fields of
    news-please, trafilatura and RSS records are recognised, INPUT_FIELD_MAP maps others."""
    from tqdm import tqdm

    from worker.io.seeder import run_seeder

    settings = get_settings()

    def problem(line: str) -> None:
        tqdm.write(f"problem: {line}", file=sys.stderr)

    summary = run_against_kafka(settings, run_seeder(list(paths), settings, rate=rate, loops=loops,
                                                     new_ids=new_ids, dry_run=dry_run, topic=topic,
                                                     keep_ids=False, fmt=fmt, on_problem=problem))
    click.echo(summary.render(), err=True)
    if summary.problems and not summary.sent and not dry_run:
        sys.exit(1)


# -- worker -----------------------------------------------------------------------------------

@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("-l", "--loglevel", default=None, help="Log level (default: LOG_LEVEL)")
@click.pass_context
def worker(ctx: click.Context, loglevel: str | None) -> None:
    """Run the faust worker (same as `faust -A worker.app worker`)."""
    from worker.app import app

    sys.argv = ["ingest", "worker", "-l", loglevel or get_settings().log_level, *ctx.args]
    app.main()


# -- consumer ---------------------------------------------------------------------------------

@main.command()
@click.option("--topic", default="articles.enriched", show_default=True,
              help="Topic base name (TOPIC_PREFIX is added) or full name")
@click.option("--from-beginning", is_flag=True, help="Start at the earliest offset (default: only new)")
@click.option("--follow", is_flag=True, help="Keep reading new messages until Ctrl-C")
@click.option("--lang", default=None, help="Only articles in this language code")
@click.option("--status", "dedup_status", type=click.Choice(["unique", "exact_duplicate", "near_duplicate"]),
              default=None, help="Only articles with this dedup status")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "pretty"]), default="jsonl", show_default=True)
@click.option("--max", "max_messages", type=int, default=0, help="Stop after N messages (0 = no limit)")
@click.option("--timeout", type=float, default=0.0, help="With --follow: stop after N idle seconds")
def consume(topic: str, from_beginning: bool, follow: bool, lang: str | None, dedup_status: str | None,
            fmt: str, max_messages: int, timeout: float) -> None:
    """Read enriched articles (or any output topic) for downstream use."""
    from worker.io.consumer import run_consumer

    settings = get_settings()
    try:
        run_against_kafka(settings, run_consumer(settings, topic, from_beginning=from_beginning, follow=follow,
                                                 lang=lang, dedup_status=dedup_status, fmt=fmt,
                                                 max_messages=max_messages, idle_timeout=timeout))
    except KeyboardInterrupt:
        pass  # Ctrl-C: the consumer has no group and no offsets to commit; just stop


# -- offline ----------------------------------------------------------------------------------

@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "pretty"]), default="jsonl", show_default=True)
@click.option("--new-ids", is_flag=True)
def enrich(paths: tuple[Path, ...], fmt: str, new_ids: bool) -> None:
    """Run the same stages in-process over files, without Kafka (dedup across them, in order)."""
    from worker.io.consumer import render
    from worker.io.sources import ReadReport, read_articles
    from worker.pipeline import enrich_offline, new_article_index
    from worker.stages.validate import InvalidArticle, parse_article

    settings = get_settings()
    report = ReadReport()
    index = new_article_index(settings)
    salt = uuid.uuid4().hex if new_ids else ""

    def articles():
        for raw in read_articles(list(paths), report, salt):
            try:
                yield parse_article(raw["id"].encode(), orjson.dumps(raw), settings.max_article_bytes)
            except InvalidArticle as exc:
                report.errors.append(f"{raw.get('id')}: {exc.reason}: {exc}")

    for enriched in enrich_offline(articles(), index, settings.minhash_permutations,
                                   settings.max_future_skew.total_seconds()):
        click.echo(render(enriched, fmt))
    for error in report.errors:
        click.echo(f"error: {error}", err=True)


if __name__ == "__main__":
    main()
