"""docker-compose.yml is valid (`docker-compose config`) and runs the pinned Kafka version."""

import shutil
import subprocess
from pathlib import Path

import pytest

from worker.localkafka import kafka_version

ROOT = Path(__file__).resolve().parents[2]


def compose_command() -> list[str]:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    for candidate in (ROOT / ".cache/compose-venv/bin/docker-compose", shutil.which("docker-compose")):
        if candidate and Path(candidate).exists():
            return [str(candidate)]
    pytest.fail("no docker compose: `make test` installs docker-compose into .cache/compose-venv")


def test_compose_config_is_valid_and_complete():
    out = subprocess.run([*compose_command(), "-f", str(ROOT / "docker-compose.yml"), "--profile", "seed",
                          "--profile", "consume", "config"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    for service in ("kafka:", "topics-init:", "worker:", "seeder:", "consumer:"):
        assert f"  {service}" in out.stdout
    assert "service_healthy" in out.stdout and "service_completed_successfully" in out.stdout
    assert "healthcheck" in out.stdout


def test_compose_kafka_image_matches_the_pinned_version():
    text = (ROOT / "docker-compose.yml").read_text()
    assert f"image: apache/kafka:{kafka_version()}\n" in text


def test_worker_service_is_scalable():
    # --scale worker=N needs no fixed container_name and no fixed host port on the worker.
    text = (ROOT / "docker-compose.yml").read_text()
    worker = text.split("  worker:\n", 1)[1].split("\n  seeder:", 1)[0]
    assert "container_name" not in worker and "ports:" not in worker
