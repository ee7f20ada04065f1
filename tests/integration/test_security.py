"""SASL/SCRAM end to end: the worker, the seeder and the consumer log in to a SASL listener;
a wrong password is refused with a clear error; secrets never reach a log line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from worker.kafka import local_broker

from .helpers import WorkerProcess, worker_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-Pa55-for-alice"


@pytest.fixture(scope="module")
def sasl_broker():
    name = f"pytest-sasl-{os.getpid()}"
    broker = local_broker.start(name, sasl_users=[local_broker.SaslUser("alice", PASSWORD)], fresh=True)
    try:
        yield broker
    finally:
        local_broker.stop(name)
        shutil.rmtree(broker.run_dir, ignore_errors=True)


def cli(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "worker.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512"])
def test_worker_seeder_and_consumer_over_sasl_scram(sasl_broker, names, tmp_path, mechanism):
    env, port = worker_env(sasl_broker.sasl_bootstrap_servers, names, tmp_path, SECURITY_PROTOCOL="SASL_PLAINTEXT",
                           SASL_MECHANISM=mechanism, SASL_USERNAME="alice", SASL_PASSWORD=PASSWORD,
                           LOG_LEVEL="debug")
    created = cli(env, "topics", "create")
    assert created.returncode == 0, created.stderr
    worker = WorkerProcess(env=env, web_port=port, log_path=tmp_path / "worker-sasl.log").start()
    try:
        worker.wait_ready()
        seeded = cli(env, "seed", str(ROOT / "seeds"))
        assert seeded.returncode == 0, seeded.stderr
        assert "sent 5 articles" in seeded.stderr
        consumed = cli(env, "consume", "--from-beginning", "--follow", "--timeout", "20", "--max", "5")
        assert consumed.returncode == 0, consumed.stderr
        assert len(consumed.stdout.splitlines()) == 5
    finally:
        worker.stop()
    logs = worker.log_path.read_text() + seeded.stderr + consumed.stderr
    assert PASSWORD not in logs


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_wrong_password_is_refused_with_a_clear_error(sasl_broker, names, tmp_path, mechanism):
    env, _ = worker_env(sasl_broker.sasl_bootstrap_servers, names, tmp_path, SECURITY_PROTOCOL="SASL_PLAINTEXT",
                        SASL_MECHANISM=mechanism, SASL_USERNAME="alice", SASL_PASSWORD="not-the-password")
    for args in (("topics", "create"), ("seed", str(ROOT / "seeds")), ("consume", "--from-beginning")):
        result = cli(env, *args)
        assert result.returncode != 0
        assert "Kafka refused the login" in result.stderr and "'alice'" in result.stderr, result.stderr
        assert "not-the-password" not in result.stderr + result.stdout


def test_unknown_user_is_refused(sasl_broker, names, tmp_path):
    env, _ = worker_env(sasl_broker.sasl_bootstrap_servers, names, tmp_path, SECURITY_PROTOCOL="SASL_PLAINTEXT",
                        SASL_MECHANISM="SCRAM-SHA-256", SASL_USERNAME="mallory", SASL_PASSWORD="guess")
    result = cli(env, "topics", "check")
    assert result.returncode != 0 and "refused the login" in result.stderr
