"""The local broker's lifecycle: start answers Kafka requests, stop leaves no process behind."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from worker.kafka import local_broker

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def java_processes_for(run_dir: Path) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "kafka.Kafka" in line and str(run_dir) in line]


def test_start_status_stop_restart_leaves_nothing_behind():
    name = f"pytest-lifecycle-{os.getpid()}"
    started = time.monotonic()
    broker = local_broker.start(name, fresh=True)
    startup_s = time.monotonic() - started
    try:
        assert local_broker.status(name)["running"]
        assert local_broker.status(name)["kafka_version"] == local_broker.kafka_version()

        async def cluster_topics():
            admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
            await admin.start()
            try:
                return await admin.list_topics()
            finally:
                await admin.close()

        assert isinstance(asyncio.run(cluster_topics()), list)
        assert len(java_processes_for(broker.run_dir)) == 1
        # The CLI sees the same broker by name.
        cli = subprocess.run([sys.executable, "-m", "worker.cli", "kafka", "status", "--name", name],
                             cwd=ROOT, capture_output=True, text=True)
        assert cli.returncode == 0 and broker.bootstrap_servers in cli.stdout

        # Restart keeps port and data (what a broker-restart fault test needs).
        assert local_broker.stop(name)
        assert java_processes_for(broker.run_dir) == []
        again = local_broker.start(name)
        assert again.port == broker.port and again.pid != broker.pid
    finally:
        stopped = time.monotonic()
        local_broker.stop(name)
        stop_s = time.monotonic() - stopped
        shutil.rmtree(broker.run_dir, ignore_errors=True)
    assert java_processes_for(broker.run_dir) == []
    assert not local_broker.status(name)["running"]
    print(f"\nlocal broker: start {startup_s:.1f}s, stop {stop_s:.1f}s")
    assert startup_s < 60 and stop_s < 35
