"""The local broker (worker/kafka/local_broker.py) without starting one: its cluster id is never read
as a command-line option; a cluster's nodes, their config and state; Kafka's tools from the jars."""

import base64
from unittest import mock

import orjson
import pytest

from worker.kafka import local_broker


def test_cluster_id_never_starts_with_a_dash():
    # the first uuid encodes to "-..." (0xf8 -> "-" in URL-safe base64); the second does not
    dash, plain = bytes([0xF8]) + bytes(15), bytes(16)
    assert base64.urlsafe_b64encode(dash).decode().startswith("-")
    uuids = iter([mock.Mock(bytes=dash), mock.Mock(bytes=plain)])
    with mock.patch.object(local_broker.uuid, "uuid4", lambda: next(uuids)):
        cluster_id = local_broker._new_cluster_id()
    assert cluster_id == base64.urlsafe_b64encode(plain).decode().rstrip("=")
    assert len(cluster_id) == 22


# -- a cluster of combined KRaft nodes (start_cluster): its config and its state, no process ----

def _node(tmp_path, node_id: int, size: int = 3) -> local_broker.LocalBroker:
    voters = ",".join(f"{i}@127.0.0.1:{19000 + i}" for i in range(1, size + 1))
    return local_broker.LocalBroker(f"c/node-{node_id}", tmp_path / f"node-{node_id}", 18000 + node_id,
                                    19000 + node_id, node_id=node_id, voters=voters, cluster_size=size,
                                    cluster_id="abc")


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_cluster_nodes_are_combined_voters_with_replicated_internal_topics(tmp_path):
    props = _properties(local_broker._server_properties(_node(tmp_path, 2), []))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19001,2@127.0.0.1:19002,3@127.0.0.1:19003"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:18002,CONTROLLER://127.0.0.1:19002"
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "share.coordinator.state.topic.replication.factor", "default.replication.factor"):
        assert props[key] == "3", key
    assert props["transaction.state.log.min.isr"] == "2"
    assert props["log.dirs"] == str(tmp_path / "node-2" / "data")


def test_a_single_broker_is_node_1_of_a_cluster_of_1(tmp_path):
    single = local_broker.LocalBroker("default", tmp_path, 9092, 9093)
    props = _properties(local_broker._server_properties(single, []))
    assert props["node.id"] == "1" and props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["offsets.topic.replication.factor"] == "1" and props["transaction.state.log.min.isr"] == "1"


def test_node_state_survives_a_save_and_load(tmp_path, monkeypatch):
    monkeypatch.setattr(local_broker, "CACHE_ROOT", tmp_path)
    node = _node(tmp_path, 3)
    node.run_dir = tmp_path / "kafka" / "run" / "c" / "node-3"
    node.run_dir.mkdir(parents=True)
    node.save()
    loaded = local_broker.LocalBroker.load("c/node-3")
    assert (loaded.node_id, loaded.voters, loaded.cluster_size, loaded.cluster_id, loaded.port) == \
        (3, node.voters, 3, "abc", 18003)


def test_cluster_status_and_stop_without_processes(tmp_path, monkeypatch):
    monkeypatch.setattr(local_broker, "CACHE_ROOT", tmp_path)
    run = tmp_path / "kafka" / "run" / "c"
    for i in (1, 2, 3):
        node = _node(run, i)
        node.name, node.run_dir = f"c/node-{i}", run / f"node-{i}"
        node.run_dir.mkdir(parents=True)
        node.save()
    (run / "cluster.json").write_bytes(orjson.dumps({"name": "c", "brokers": 3, "node_ids": [1, 2, 3]}))
    assert local_broker.is_cluster("c") and not local_broker.is_cluster("c/node-1")
    status = local_broker.status("c")
    assert status["brokers"] == 3 and status["running"] is False and status["nodes_running"] == 0
    assert [n["node_id"] for n in status["nodes"]] == [1, 2, 3]
    assert status["bootstrap_servers"] == "127.0.0.1:18001,127.0.0.1:18002,127.0.0.1:18003"
    assert local_broker.stop("c") is False  # nothing running: nothing signalled
    with pytest.raises(RuntimeError, match="is a cluster of 3 brokers"):
        local_broker.start("c")
    with pytest.raises(RuntimeError, match="not 5"):
        local_broker.start_cluster("c", brokers=5)


def test_a_single_broker_name_is_not_taken_for_a_cluster(tmp_path, monkeypatch):
    monkeypatch.setattr(local_broker, "CACHE_ROOT", tmp_path)
    single = local_broker.LocalBroker.load("one")
    single.run_dir.mkdir(parents=True)
    single.save()
    with pytest.raises(RuntimeError, match="is a single broker"):
        local_broker.start_cluster("one", brokers=3)


def test_free_ports_are_distinct():
    ports = local_broker.free_ports(6)
    assert len(set(ports)) == 6


def test_kafka_tools_run_from_the_pinned_jars(tmp_path, monkeypatch):
    monkeypatch.setattr(local_broker, "CACHE_ROOT", tmp_path)
    monkeypatch.setattr(local_broker, "fetch", lambda: tmp_path / "libs")
    command = local_broker.tool_command("kafka-configs.sh", ["--bootstrap-server", "b:1", "--describe"])
    assert command[0] == "java" and f"{tmp_path / 'libs'}/*" in command
    assert command[-4:] == ["kafka.admin.ConfigCommand", "--bootstrap-server", "b:1", "--describe"]
    assert local_broker.tool_command("kafka-topics", [])[-1] == "org.apache.kafka.tools.TopicCommand"
    with pytest.raises(ValueError, match="unknown Kafka tool"):
        local_broker.tool_command("rm", [])


def test_the_cluster_compose_file_is_the_same_cluster():
    """docker-compose.cluster.yml: three combined nodes of the pinned Kafka, one quorum, Kafka's own
    topics replicated like the local cluster's (`ingest kafka start --brokers 3`)."""
    text = (local_broker.PROJECT_ROOT / "docker-compose.cluster.yml").read_text()
    assert f"image: apache/kafka:{local_broker.kafka_version()}\n" in text
    assert [line.strip() for line in text.splitlines() if "KAFKA_NODE_ID:" in line] == \
        ["KAFKA_NODE_ID: 1", "KAFKA_NODE_ID: 2", "KAFKA_NODE_ID: 3"]
    for setting in ("KAFKA_PROCESS_ROLES: broker,controller",
                    "KAFKA_CONTROLLER_QUORUM_VOTERS: 1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093",
                    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: 3", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: 2",
                    "KAFKA_BOOTSTRAP_SERVERS: kafka-1:9092,kafka-2:9092,kafka-3:9092"):
        assert setting in text, setting
