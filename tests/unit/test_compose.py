"""docker-compose.yml is valid (`docker-compose config`) and runs the pinned Kafka version; the test
fixture's broker choice and the compose detection of the fixture and of `make run`/`make stop`."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import choose_broker
from tests.conftest import compose_command as engine_compose_command
from worker.kafka.local_broker import kafka_version

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


# --- The test fixture's broker choice (tests/conftest.py) -------------------------------------


class Engine:
    """A stand-in for "does a Docker engine answer", counting how often it was asked."""

    def __init__(self, up: bool) -> None:
        self.up, self.asked = up, 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.up


@pytest.mark.parametrize(("env", "engine_up", "expected"), [
    ({}, False, "local"),
    ({}, True, "container"),
    ({"KAFKA_BOOTSTRAP_SERVERS": "k:9092"}, True, "external"),
    ({"KAFKA_TEST_BROKER": "auto"}, True, "container"),
    ({"KAFKA_TEST_BROKER": "AUTO", "KAFKA_BOOTSTRAP_SERVERS": "k:9092"}, False, "external"),
    ({"KAFKA_TEST_BROKER": "local"}, True, "local"),
    ({"KAFKA_TEST_BROKER": "local", "KAFKA_BOOTSTRAP_SERVERS": "k:9092"}, True, "local"),
    ({"KAFKA_TEST_BROKER": "container"}, True, "container"),
    ({"KAFKA_TEST_BROKER": "container", "KAFKA_BOOTSTRAP_SERVERS": "k:9092"}, True, "container"),
    ({"KAFKA_TEST_BROKER": ""}, False, "local"),
])
def test_broker_choice(env, engine_up, expected):
    assert choose_broker(env, Engine(engine_up)) == expected


def test_broker_choice_asks_the_engine_only_when_it_matters():
    engine = Engine(True)
    choose_broker({"KAFKA_TEST_BROKER": "local"}, engine)
    choose_broker({"KAFKA_BOOTSTRAP_SERVERS": "k:9092"}, engine)
    assert engine.asked == 0


def test_container_broker_without_an_engine_fails_clearly():
    with pytest.raises(ValueError, match="KAFKA_TEST_BROKER=container but no Docker engine answers"):
        choose_broker({"KAFKA_TEST_BROKER": "container"}, Engine(False))


def test_unknown_broker_mode_fails_clearly():
    with pytest.raises(ValueError, match=r"KAFKA_TEST_BROKER='docker': expected one of auto, local, container"):
        choose_broker({"KAFKA_TEST_BROKER": "docker"}, Engine(True))


# --- Compose detection, in the fixture and in scripts/run-demo.sh, against fake binaries -------

FAKE_DOCKER = r"""#!/bin/bash
echo "docker $*" >> "$FAKE_LOG"
case "$1" in
  info) [[ "${FAKE_ENGINE:-1}" == 1 ]] && exit 0; echo "Cannot connect to the Docker daemon" >&2; exit 1 ;;
  compose)
    [[ "${FAKE_V2:-0}" == 1 ]] || { echo "docker: unknown command: docker compose" >&2; exit 1; }
    [[ "$*" == *"ps -q kafka"* ]] && echo c0ffee
    exit 0 ;;
  inspect) echo "running healthy" ;;
esac
exit 0
"""

# v1 that works, or (FAKE_V1=version-only) one like PyPI's with docker-py 7: `version` answers,
# every call to the engine crashes.
FAKE_DOCKER_COMPOSE = r"""#!/bin/bash
echo "docker-compose $*" >> "$FAKE_LOG"
[[ "$1" == version ]] && { echo "docker-compose version 1.29.2"; exit 0; }
[[ "${FAKE_V1:-0}" == 1 ]] || { echo "TypeError: kwargs_from_env() got an unexpected keyword argument 'ssl_version'" >&2; exit 1; }
[[ "$*" == *"ps -q kafka"* ]] && echo c0ffee
exit 0
"""

# `.venv/bin/ingest` of the copied project: records the bootstrap address it was given, stops
# the demo at `topics create` (what comes after needs a real broker and worker).
FAKE_INGEST = r"""#!/bin/bash
echo "ingest $* @ ${KAFKA_BOOTSTRAP_SERVERS:-}" >> "$FAKE_LOG"
case "$*" in
  "kafka status") echo '{"bootstrap_servers": "127.0.0.1:41234"}' ;;
  "topics create") exit 3 ;;
esac
exit 0
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def fake_bin(tmp_path):
    """A folder with fake `docker` and `docker-compose`, first on PATH (shadowing real ones)."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    _executable(bin_dir / "docker", FAKE_DOCKER)
    _executable(bin_dir / "docker-compose", FAKE_DOCKER_COMPOSE)
    return bin_dir


def _fake_env(fake_bin: Path, log: Path, **flags: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TEST_BROKER")}
    env.update(PATH=f"{fake_bin}:/usr/bin:/bin", FAKE_LOG=str(log), **flags)
    return env


@pytest.mark.parametrize(("v2", "v1", "expected"), [
    ("1", "1", ["docker", "compose"]),  # the plugin first
    ("0", "1", ["docker-compose"]),
    ("0", "0", None),                  # v1 that answers `version` but crashes on the engine: no
])
def test_fixture_detects_the_compose_that_works(fake_bin, tmp_path, monkeypatch, v2, v1, expected):
    log = tmp_path / "calls.log"
    for key, value in _fake_env(fake_bin, log, FAKE_V2=v2, FAKE_V1=v1).items():
        monkeypatch.setenv(key, value)
    assert engine_compose_command() == expected
    assert "ps -q" in log.read_text()  # probed against the engine, not with `version`


@pytest.fixture
def demo_copy(tmp_path):
    """scripts/run-demo.sh and docker-compose.yml in a scratch project with a fake .venv/bin."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts/run-demo.sh", project / "scripts/run-demo.sh")
    shutil.copy(ROOT / "docker-compose.yml", project / "docker-compose.yml")
    venv_bin = project / ".venv/bin"
    venv_bin.mkdir(parents=True)
    _executable(venv_bin / "ingest", FAKE_INGEST)
    (venv_bin / "python").symlink_to(sys.executable)
    return project


def _demo(project: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(project / "scripts/run-demo.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_run_demo_fails_loudly_when_an_engine_runs_but_no_compose_works(demo_copy, fake_bin, tmp_path):
    log = tmp_path / "calls.log"
    out = _demo(demo_copy, _fake_env(fake_bin, log, FAKE_V2="0", FAKE_V1="0"))
    assert out.returncode != 0
    assert "neither `docker compose` (v2 plugin) nor `docker-compose` (v1)" in out.stderr
    calls = log.read_text()
    assert " up " not in calls and "ingest" not in calls  # stopped there: no broker, no topics
    assert not (demo_copy / ".cache/run/compose").exists()


@pytest.mark.parametrize(("v2", "v1", "compose"), [("1", "0", "docker compose"), ("0", "1", "docker-compose")])
def test_run_demo_uses_the_working_compose_and_the_published_port(demo_copy, fake_bin, tmp_path, v2, v1, compose):
    log = tmp_path / "calls.log"
    env = _fake_env(fake_bin, log, FAKE_V2=v2, FAKE_V1=v1)
    out = _demo(demo_copy, env)
    assert out.returncode == 3, out.stdout + out.stderr  # the fake `ingest topics create`
    calls = log.read_text().splitlines()
    assert f"{compose} up -d kafka" in calls
    assert any(c.startswith("docker inspect") and c.endswith("c0ffee") for c in calls)  # waited for health
    assert "ingest topics create @ localhost:29092" in calls
    assert "healthy" in out.stdout
    assert (demo_copy / ".cache/run/compose").read_text().strip() == compose

    log.write_text("")
    stop = _demo(demo_copy, env, "stop")
    assert stop.returncode == 0, stop.stderr
    assert log.read_text().splitlines() == [f"{compose} down"]
    assert not (demo_copy / ".cache/run/compose").exists()


def test_run_demo_without_an_engine_uses_the_local_broker(demo_copy, fake_bin, tmp_path):
    log = tmp_path / "calls.log"
    out = _demo(demo_copy, _fake_env(fake_bin, log, FAKE_ENGINE="0", FAKE_V2="1", FAKE_V1="1"))
    assert out.returncode == 3, out.stdout + out.stderr
    calls = log.read_text().splitlines()
    assert "ingest kafka start @ " in calls
    assert "ingest topics create @ 127.0.0.1:41234" in calls
    assert not any("compose" in c for c in calls)
