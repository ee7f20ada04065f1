"""topics/: partition counts and their overrides, replication defaults, and the validation of live
topics against the specs (what is a mismatch, which ones stop the worker, the fix commands)."""

from __future__ import annotations

import pytest

import topics
from topics.validation import (
    FixCommands,
    LiveTopic,
    Replication,
    default_min_insync,
    reassignment,
    resolve_replication,
    validate,
)

FIX = FixCommands("k1:9092,k2:9092")
RF3 = Replication(3, 2)


def live_as_declared(deployment: topics.Topics, app_id: str = "app", replicas: tuple[int, ...] = (1, 2, 3),
                     min_insync: str = "2") -> dict[str, LiveTopic]:
    """Every topic as `ingest topics create` and the worker create them on a 3-broker cluster."""
    out = {}
    for topic in [*deployment, *topics.faust_topics(app_id)]:
        config = {**topic.spec.config, "min.insync.replicas": min_insync}
        config.setdefault("cleanup.policy", "delete")
        out[topic.name] = LiveTopic(topic.name, {p: replicas for p in range(topic.partitions)}, config)
    return out


def expected(deployment: topics.Topics, app_id: str = "app") -> list[topics.Topic]:
    return [*deployment, *topics.faust_topics(app_id)]


def with_(live: dict[str, LiveTopic], name: str, *, partitions: int | None = None,
          replicas: tuple[int, ...] | None = None, **config: str) -> dict[str, LiveTopic]:
    old = live[name]
    count = partitions if partitions is not None else old.partitions
    reps = replicas if replicas is not None else old.replicas[0]
    return {**live, name: LiveTopic(name, {p: reps for p in range(count)}, {**old.config, **config})}


# -- partition counts: declared once, two documented overrides --------------------------------

def test_partition_settings_reach_only_the_topics_that_name_them():
    t = topics.Topics("p.", input_partitions=8, output_partitions=6)
    assert {x.spec.base_name: x.partitions for x in t} == {
        "articles.raw": 8, "articles.dedup-requests": 1, "articles.enriched": 6, "articles.duplicates": 6,
        "articles.dlq": 1}
    assert [x.spec.partitions_setting for x in t] == ["INPUT_PARTITIONS", "", "OUTPUT_PARTITIONS",
                                                      "OUTPUT_PARTITIONS", ""]
    assert t.names()[0] == "p.articles.raw"


def test_single_partition_topics_say_why():
    assert topics.DEDUP_REQUESTS.one_partition_because and topics.CHANGELOG.one_partition_because
    assert all(spec.partitions == 1 for spec in (topics.DEDUP_REQUESTS, topics.CHANGELOG, topics.LEADER, topics.DLQ))


def test_faust_topic_names_are_the_ones_faust_uses():
    from worker.app import create_app
    from worker.config import Settings

    app = create_app(Settings(app_id="names-app", web_enabled=False))
    changelog, leader = topics.faust_topics("names-app")
    assert app.tables[topics.DEDUP_TABLE].changelog_topic.get_topic_name() == changelog.name
    assert app._leader_assignor._leader_topic_name == leader.name
    assert changelog.spec.config["cleanup.policy"] == "compact"


# -- replication defaults ---------------------------------------------------------------------

@pytest.mark.parametrize("brokers,factor,min_insync,want", [
    (1, None, None, (1, 1)),
    (2, None, None, (2, 1)),
    (3, None, None, (3, 2)),
    (5, None, None, (3, 2)),
    (5, 5, None, (5, 2)),
    (3, 2, None, (2, 1)),
    (3, None, 3, (3, 3)),
    (3, 3, 1, (3, 1)),
])
def test_replication_defaults(brokers, factor, min_insync, want):
    resolved = resolve_replication(brokers, factor, min_insync)
    assert (resolved.factor, resolved.min_insync) == want
    assert resolved.explicit == (factor is not None)
    assert resolved.topic_config() == {"min.insync.replicas": str(want[1])}


def test_min_insync_above_the_factor_is_refused():
    with pytest.raises(ValueError, match="MIN_INSYNC_REPLICAS=3"):
        resolve_replication(2, None, 3)
    assert default_min_insync(3) == 2 and default_min_insync(2) == 1


# -- validation -------------------------------------------------------------------------------

def test_topics_as_declared_have_no_mismatch():
    t = topics.Topics("p.")
    assert validate(expected(t), live_as_declared(t), RF3, [1, 2, 3], FIX) == []


def test_faust_topics_not_created_yet_are_not_a_mismatch_but_a_missing_product_topic_is_fatal():
    t = topics.Topics("p.")
    live = live_as_declared(t)
    for faust_topic in topics.faust_topics("app"):
        del live[faust_topic.name]
    del live["p.articles.duplicates"]
    [missing] = validate(expected(t), live, RF3, [1, 2, 3], FIX)
    assert missing.fatal and missing.fix == "ingest topics create"
    assert str(missing) == "topic p.articles.duplicates is missing. Fix: ingest topics create"


def test_a_funnel_with_four_partitions_is_fatal_with_the_exact_fix():
    t = topics.Topics("p.")
    live = with_(live_as_declared(t), "p.articles.dedup-requests", partitions=4)
    [mismatch] = validate(expected(t), live, RF3, [1, 2, 3], FIX)
    assert mismatch.fatal and (mismatch.setting, mismatch.actual, mismatch.expected) == ("partitions", "4", "1")
    assert mismatch.fix == ("stop every worker, then kafka-topics.sh --bootstrap-server k1:9092,k2:9092 --delete "
                            "--topic p.articles.dedup-requests && ingest topics create")
    assert "dedup funnel" in str(mismatch) and mismatch.fix in str(mismatch)


def test_a_changelog_with_two_partitions_is_fatal():
    t = topics.Topics()
    live = with_(live_as_declared(t), "app-dedup-index-changelog", partitions=2)
    [mismatch] = validate(expected(t), live, RF3, [1, 2, 3], FIX)
    assert mismatch.fatal and mismatch.setting == "partitions" and "start the worker" in mismatch.fix


@pytest.mark.parametrize("name", ["articles.enriched", "app-dedup-index-changelog"])
def test_a_compacted_topic_that_is_not_compacted_is_fatal(name):
    t = topics.Topics()
    live = with_(live_as_declared(t), name, **{"cleanup.policy": "delete"})
    [mismatch] = validate(expected(t), live, RF3, [1, 2, 3], FIX)
    assert mismatch.fatal and (mismatch.setting, mismatch.actual, mismatch.expected) == \
        ("cleanup.policy", "delete", "compact")
    assert mismatch.fix == ("kafka-configs.sh --bootstrap-server k1:9092,k2:9092 --alter --entity-type topics "
                            f"--entity-name {name} --add-config cleanup.policy=compact")
    # compact,delete still compacts: not a mismatch
    both = with_(live_as_declared(t), name, **{"cleanup.policy": "delete,compact"})
    assert [m.setting for m in validate(expected(t), both, RF3, [1, 2, 3], FIX)] == ["cleanup.policy"]
    assert not validate(expected(t), both, RF3, [1, 2, 3], FIX)[0].fatal


def test_retention_and_min_insync_mismatches_are_reported_not_fatal():
    t = topics.Topics()
    live = with_(live_as_declared(t), "articles.raw", **{"retention.ms": "1000", "min.insync.replicas": "1"})
    found = validate(expected(t), live, RF3, [1, 2, 3], FIX)
    assert [(m.setting, m.actual, m.expected, m.fatal) for m in found] == [
        ("retention.ms", "1000", str(7 * topics.DAY_MS), False), ("min.insync.replicas", "1", "2", False)]
    assert found[1].fix.endswith("--entity-name articles.raw --add-config min.insync.replicas=2")


def test_partition_counts_against_the_overrides():
    t = topics.Topics(input_partitions=4)
    fewer = validate(expected(t), with_(live_as_declared(t), "articles.raw", partitions=2), RF3, [1, 2, 3], FIX)
    assert [(m.actual, m.expected, m.fatal) for m in fewer] == [("2", "4", False)]
    assert fewer[0].fix == ("kafka-topics.sh --bootstrap-server k1:9092,k2:9092 --alter --topic articles.raw "
                            "--partitions 4")
    assert "INPUT_PARTITIONS=2" in fewer[0].note
    more = validate(expected(t), with_(live_as_declared(t), "articles.raw", partitions=8), RF3, [1, 2, 3], FIX)
    assert [m.fix for m in more] == ["export INPUT_PARTITIONS=8"]


def test_replication_too_low_gives_a_reassignment_that_keeps_the_leader():
    t = topics.Topics()
    live = with_(live_as_declared(t), "articles.dlq", replicas=(2,))
    [mismatch] = validate(expected(t), live, RF3, [1, 2, 3], FIX)
    assert (mismatch.setting, mismatch.actual, mismatch.expected) == ("replication factor", "1", "3")
    plan = '{"version":1,"partitions":[{"topic":"articles.dlq","partition":0,"replicas":[2,1,3]}]}'
    assert mismatch.fix == (f"echo '{plan}' > reassign-articles.dlq.json && kafka-reassign-partitions.sh "
                            "--bootstrap-server k1:9092,k2:9092 --reassignment-json-file reassign-articles.dlq.json "
                            "--execute")


def test_reassignment_spreads_new_replicas_and_trims():
    live = LiveTopic("t", {0: [1], 1: [2], 2: [3, 1, 2]})
    assert reassignment(live, 2, [1, 2, 3]) == {0: [1, 2], 1: [2, 3], 2: [3, 1]}
    assert reassignment(LiveTopic("t", {0: [4]}), 3, [1, 2, 3]) == {0: [1, 2, 3]}  # 4 is gone


def test_more_replicas_than_the_broker_count_asks_for_is_fine_unless_set_explicitly():
    """With a broker down the cluster lists 2 brokers: the topics' 3 replicas (and their
    min.insync.replicas 2) are right; with REPLICATION_FACTOR=2 they are not."""
    t = topics.Topics()
    live = live_as_declared(t)
    assert validate(expected(t), live, resolve_replication(2), [1, 2], FIX) == []
    explicit = validate(expected(t), live, resolve_replication(2, 2), [1, 2], FIX)
    assert {(m.setting, m.actual, m.expected) for m in explicit} == {("replication factor", "3", "2"),
                                                                     ("min.insync.replicas", "2", "1")}


def test_a_factor_the_cluster_cannot_have_says_so():
    t = topics.Topics()
    found = validate(expected(t)[:1], live_as_declared(t, replicas=(1,), min_insync="1"),
                     resolve_replication(1, 3), [1], FIX)
    [mismatch] = [m for m in found if m.setting == "replication factor"]
    assert mismatch.fix == "add brokers, or export REPLICATION_FACTOR=1" and "1 broker(s)" in str(mismatch)


def test_fix_commands_with_client_settings_and_list_values():
    fix = FixCommands("b:9093", command_config="client.properties")
    assert fix.alter_config("t", "cleanup.policy", "compact,delete") == (
        "kafka-configs.sh --bootstrap-server b:9093 --command-config client.properties --alter --entity-type topics "
        "--entity-name t --add-config 'cleanup.policy=[compact,delete]'")
