"""The one Kafka fixture every integration test uses.

Where the broker comes from, in this order:
1. `KAFKA_BOOTSTRAP_SERVERS` is set      → that cluster.
2. A Docker engine answers                → testcontainers' Kafka container (the pinned version).
3. Otherwise                              → the project's own local KRaft broker (worker/localkafka.py).
Session-scoped; each test gets unique topic names and app id through `names`. There is no
silent skip: an integration test that cannot have a broker fails.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass

import pytest


def _docker_engine_available() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:  # noqa: BLE001 - no engine, no socket, no permission: all mean "no"
        return False


@dataclass
class KafkaCluster:
    bootstrap_servers: str
    kind: str  # "external" | "testcontainers" | "local"
    broker_name: str = ""  # for the local broker: lets fault tests stop/restart it


@pytest.fixture(scope="session")
def kafka() -> KafkaCluster:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield KafkaCluster(external, "external")
        return
    if _docker_engine_available():
        from testcontainers.kafka import KafkaContainer

        from worker.localkafka import kafka_version

        with KafkaContainer(f"apache/kafka:{kafka_version()}").with_kraft() as container:
            yield KafkaCluster(container.get_bootstrap_server(), "testcontainers")
        return
    from worker import localkafka

    name = f"pytest-{os.getpid()}"
    try:
        broker = localkafka.start(name, fresh=True)
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"no Kafka broker could be had (no KAFKA_BOOTSTRAP_SERVERS, no Docker engine, "
                    f"and the local broker failed: {exc})")
    try:
        yield KafkaCluster(broker.bootstrap_servers, "local", name)
    finally:
        localkafka.stop(name)
        shutil.rmtree(broker.run_dir, ignore_errors=True)


@dataclass
class Names:
    """Per-test names: topics under a unique prefix, a unique faust app id (consumer group)."""

    prefix: str
    app_id: str

    def topic(self, base: str) -> str:
        return f"{self.prefix}{base}"


@pytest.fixture
def names() -> Names:
    tag = uuid.uuid4().hex[:8]
    return Names(prefix=f"t{tag}.", app_id=f"ingest-test-{tag}")
