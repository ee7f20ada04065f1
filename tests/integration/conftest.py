"""The `kafka_cluster` fixture: a real 3-broker Apache Kafka cluster for the tests that need one.

Session-scoped, started on first use only (tests that do not ask for it never pay for it): three
combined KRaft nodes of the project's local broker (`worker/kafka/local_broker.py`
`start_cluster`, the same pinned jars as the single broker), on free loopback ports, under a name
of its own (`pytest-cluster-<pid>`), so neither the session's single broker (the `kafka`
fixture, which stays the default) nor any other broker on the machine is touched. Stopped, and
its folders removed, at the end of the session.

It is always the local cluster: the tests that use it kill and restart individual broker
processes. Tests that use it are marked `cluster` (`pytest -m cluster` selects them,
`-m "not cluster"` leaves them out). On the container path (KAFKA_TEST_BROKER=container, `make
compose-test`) tests/conftest.py deselects them, by fixture, with the reason: `make test` runs them.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import pytest

from worker.kafka import local_broker


@dataclass
class KafkaTestCluster:
    """A running local cluster: its bootstrap list and its nodes (broker ids 1..N)."""

    name: str
    bootstrap_servers: str
    node_ids: list[int]

    def node_name(self, node_id: int) -> str:
        return f"{self.name}/node-{node_id}"

    def kill(self, node_id: int) -> None:
        """SIGKILL one node: a broker (and controller) crash; its data stays."""
        local_broker.stop(self.node_name(node_id), kill=True)

    def restart(self, node_id: int, timeout: float = 90.0) -> None:
        """Start a stopped node again, with its data and ports, into the cluster."""
        local_broker.start(self.node_name(node_id), timeout=timeout)

    def running(self) -> list[int]:
        return [n["node_id"] for n in local_broker.status(self.name)["nodes"] if n["running"]]


@pytest.fixture(scope="session")
def kafka_cluster() -> KafkaTestCluster:
    name = f"pytest-cluster-{os.getpid()}"
    try:
        cluster = local_broker.start_cluster(name, brokers=3, fresh=True)
    except Exception as exc:  # noqa: BLE001 - any failure: the tests that need it fail, saying why
        local_broker.stop(name)
        pytest.fail(f"the local 3-broker Kafka cluster could not be started: {exc}")
    try:
        yield KafkaTestCluster(name, cluster.bootstrap_servers, [n.node_id for n in cluster.nodes])
    finally:
        local_broker.stop(name)
        shutil.rmtree(cluster.run_dir, ignore_errors=True)
