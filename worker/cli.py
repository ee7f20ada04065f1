"""`ingest`: the command line of the product.

    ingest kafka start|stop|status|fetch   a local Apache Kafka broker or cluster (no Docker needed)
    ingest kafka tool kafka-configs.sh ... Kafka's command-line tools, from the same jars
    ingest topics create|check             the topics of topics/: create them, or hold the live ones to it
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
    """A local Kafka broker, or a cluster of them (KRaft), from Maven Central jars."""


@kafka.command("fetch")
def kafka_fetch() -> None:
    """Download the pinned Kafka jars with Maven (once)."""
    from worker.kafka import local_broker

    click.echo(f"Kafka {local_broker.kafka_version()} jars in {local_broker.fetch()}")


@kafka.command("start")
@click.option("--name", default=None, help="Default: 'default' (one broker) or 'cluster' (--brokers > 1)")
@click.option("--port", type=int, default=None,
              help="Listener port (default: 9092 if free, else any); a cluster's nodes use PORT, PORT+1, ...")
@click.option("--brokers", type=click.IntRange(min=1), default=None,
              help="Brokers: 3 starts a cluster of 3 combined KRaft nodes (default: 1, or the named cluster's size)")
@click.option("--fresh", is_flag=True, help="Wipe the data (and ports) of an earlier start first")
def kafka_start(name: str | None, port: int | None, brokers: int | None, fresh: bool) -> None:
    """Start the broker (or cluster) in the background; prints its bootstrap address."""
    from worker.kafka import local_broker

    name = name or ("cluster" if (brokers or 1) > 1 else "default")
    if brokers is None:
        brokers = len(local_broker.LocalCluster.load(name).nodes) if local_broker.is_cluster(name) else 1
    started = time.monotonic()
    if brokers > 1 or local_broker.is_cluster(name):
        cluster = local_broker.start_cluster(name, brokers, port, fresh=fresh)
        for node in cluster.nodes:
            click.echo(f"  node {node.node_id}: {node.bootstrap_servers} (pid {node.pid}, log {node.log_file})")
        click.echo(f"Kafka {local_broker.kafka_version()} cluster {name!r} of {brokers} brokers running "
                   f"({time.monotonic() - started:.1f}s); stop it with `ingest kafka stop --name {name}`")
        click.echo(f"export KAFKA_BOOTSTRAP_SERVERS={cluster.bootstrap_servers}")
        return
    if port is None and name == "default":
        port = 9092 if not local_broker._port_open(9092) else None
    broker = local_broker.start(name, port, fresh=fresh)
    click.echo(f"Kafka {local_broker.kafka_version()} running at {broker.bootstrap_servers} "
               f"(pid {broker.pid}, {time.monotonic() - started:.1f}s, log {broker.log_file})")
    click.echo(f"export KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers}")


@kafka.command("stop")
@click.option("--name", default="default", show_default=True,
              help="A broker, a cluster (every node), or one node of a cluster ('cluster/node-2')")
def kafka_stop(name: str) -> None:
    """Stop the named broker or cluster (controlled shutdown; SIGKILL after 30 s). Only it."""
    from worker.kafka import local_broker

    click.echo("stopped" if local_broker.stop(name) else "not running")


@kafka.command("status")
@click.option("--name", default="default", show_default=True)
def kafka_status(name: str) -> None:
    """The broker's state, or every node's of a cluster; exits 1 unless all are running."""
    from worker.kafka import local_broker

    status = local_broker.status(name)
    click.echo(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode())
    sys.exit(0 if status["running"] else 1)


@kafka.command("tool", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("script")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def kafka_tool(script: str, args: tuple[str, ...]) -> None:
    """Run one of Kafka's command-line tools (kafka-topics.sh, kafka-configs.sh,
    kafka-reassign-partitions.sh, ...) from the pinned jars, e.g. a fix `ingest topics check`
    printed: `ingest kafka tool kafka-configs.sh --bootstrap-server ... --alter ...`."""
    import subprocess

    from worker.kafka import local_broker

    try:
        command = local_broker.tool_command(script, list(args))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(subprocess.run(command).returncode)


# -- topics -----------------------------------------------------------------------------------

@main.group()
def topics() -> None:
    """Create or check the product's topics."""


@topics.command("create")
def topics_create() -> None:
    """Create every topic of topics/ that does not exist yet (idempotent), with REPLICATION_FACTOR
    (default: 3, or the number of brokers when fewer) and MIN_INSYNC_REPLICAS."""
    from worker.kafka.admin import create_topics

    settings = get_settings()
    for name, state in run_against_kafka(settings, create_topics(settings)).items():
        click.echo(f"{state:8} {name}")


@topics.command("check")
def topics_check() -> None:
    """Hold the live topics to topics/: partitions, replication factor, min.insync.replicas,
    cleanup policy, retention and the other declared configs. Exits 1 with the exact command
    that fixes each mismatch."""
    from worker.kafka.admin import check_topics

    settings = get_settings()
    report = run_against_kafka(settings, check_topics(settings))
    click.echo(f"{len(report.brokers)} broker(s) {report.brokers}: expecting replication factor "
               f"{report.replication.factor}{'' if report.replication.explicit else ' (from the broker count)'}, "
               f"min.insync.replicas {report.replication.min_insync}")
    for topic in report.expected:
        if topic.name in report.live:
            live = report.live[topic.name]
            click.echo(f"  {topic.name}: {live.partitions} partition(s), replication factor {live.replication}, "
                       f"min.insync.replicas {live.config.get('min.insync.replicas')}, "
                       f"cleanup.policy {live.config.get('cleanup.policy')}")
        elif topic.spec.created_by != "ingest topics create":
            click.echo(f"  {topic.name}: not created yet (by {topic.spec.created_by})")
    if report.mismatches:
        for mismatch in report.mismatches:
            click.echo(f"{'FATAL' if mismatch.fatal else 'MISMATCH'} {mismatch}", err=True)
        raise click.ClickException(f"{len(report.mismatches)} mismatch(es) between the live topics and topics/"
                                   + (f"; the worker refuses to start on {len(report.fatal)} of them"
                                      if report.fatal else ""))
    click.echo("all topics match topics/")


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
@click.option("--syndication", type=click.Choice(["reprint_of", "shares_passages_with"]), default=None,
              help="Only articles with this passage relation to an earlier one")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "pretty"]), default="jsonl", show_default=True)
@click.option("--max", "max_messages", type=int, default=0, help="Stop after N messages (0 = no limit)")
@click.option("--timeout", type=float, default=0.0, help="With --follow: stop after N idle seconds")
def consume(topic: str, from_beginning: bool, follow: bool, lang: str | None, dedup_status: str | None,
            syndication: str | None, fmt: str, max_messages: int, timeout: float) -> None:
    """Read enriched articles (or any output topic) for downstream use."""
    from worker.io.consumer import run_consumer

    settings = get_settings()
    try:
        run_against_kafka(settings, run_consumer(settings, topic, from_beginning=from_beginning, follow=follow,
                                                 lang=lang, dedup_status=dedup_status, syndication=syndication,
                                                 fmt=fmt,
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
