"""docker-compose.yml is valid (`docker-compose config`) and runs the pinned Kafka version; the
worker image's Dockerfile (multi-stage, non-root, HEALTHCHECK, STOPSIGNAL); the test fixture's
broker choice and the compose detection of the fixture and of `make run`/`make stop`; `make
compose-test` skipping with a reason where no engine can be had. (The stack itself runs in
`make compose-test`: scripts/compose-test.sh.)"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LOCAL_BROKER_ONLY, choose_broker, local_broker_only_reason
from tests.conftest import compose_command as engine_compose_command
from worker.config import Settings
from worker.kafka.local_broker import kafka_version

ROOT = Path(__file__).resolve().parents[2]


def service_block(name: str) -> str:
    """The text of one service in docker-compose.yml (from `  name:` to the next service)."""
    text = (ROOT / "docker-compose.yml").read_text()
    block = text.split(f"\n  {name}:\n", 1)[1]
    return re.split(r"\n  [a-z][a-z0-9_-]*:\n|\nvolumes:\n", block, maxsplit=1)[0]


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


def test_kafka_keeps_its_data_on_the_named_volume():
    # The apache/kafka image defaults log.dirs to /tmp/kraft-combined-logs (the container's own
    # layer): the compose service must point KAFKA_LOG_DIRS at the named volume's mount.
    kafka = service_block("kafka")
    log_dirs = re.search(r"KAFKA_LOG_DIRS: (\S+)", kafka).group(1)
    assert re.search(rf"- kafka-data:{re.escape(log_dirs)}\n", kafka + "\n"), kafka
    assert re.search(r"^  kafka-data:", (ROOT / "docker-compose.yml").read_text().split("\nvolumes:\n", 1)[1], re.M)


def test_worker_grace_period_covers_the_shutdown_deadline():
    grace = int(re.search(r"stop_grace_period: (\d+)s", service_block("worker")).group(1))
    deadline = Settings.model_fields["shutdown_deadline_s"].default
    assert not re.search(r"^\s+SHUTDOWN_DEADLINE_S:", (ROOT / "docker-compose.yml").read_text(), re.M)  # default
    assert grace >= 2 * deadline, (grace, deadline)  # docker's SIGKILL never cuts a graceful stop short


def test_one_shot_services_do_not_inherit_the_worker_healthcheck():
    for name in ("topics-init", "seeder", "consumer"):
        assert "disable: true" in service_block(name), name
    assert "healthcheck" not in service_block("worker").replace("# healthcheck", "")  # the image's


def dockerfile_stages() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    stages, current = [], None
    for line in lines:
        if line.startswith("FROM "):
            current = [line]
            stages.append(current)
        elif current is not None:
            current.append(line)
    return ["\n".join(stage) for stage in stages]


def test_dockerfile_is_multi_stage_and_the_final_stage_has_no_build_tools():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    build, final = stages[0], stages[-1]
    assert " AS " in build.splitlines()[0] and "pip wheel" in build
    assert "COPY --from=" in final
    for tool in ("pip wheel", "pip install", "apt-get", "gcc", "build-essential", "curl"):
        assert tool not in final, tool


def test_dockerfile_runs_as_a_user_with_a_healthcheck_and_sigterm():
    final = dockerfile_stages()[-1]
    user = re.search(r"^USER (\S+)", final, re.M).group(1)
    assert user not in ("root", "0")
    healthcheck = final.split("HEALTHCHECK", 1)[1].split("\nSTOPSIGNAL", 1)[0]
    assert "urllib.request" in healthcheck and "/health/" in healthcheck and "6066" in healthcheck
    assert re.search(r"^STOPSIGNAL SIGTERM$", final, re.M)
    assert re.search(r'^CMD \["ingest", "worker"\]$', final, re.M)


def test_dockerignore_keeps_the_context_small():
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("*")] == "*"  # everything out, then what the image needs back in
    assert {"!pyproject.toml", "!worker", "!topics", "!seeds"} <= set(lines)


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


@pytest.mark.parametrize(("path", "name", "deselected"), [
    ("tests/integration/test_localkafka.py", "test_start_status_stop_restart_leaves_nothing_behind", True),
    ("tests/integration/test_faults.py", "test_broker_stopped_for_20s_mid_stream", True),
    ("tests/integration/test_faults.py", "test_sigkill_three_times_while_5000_articles_stream", False),
    ("tests/integration/test_pipeline.py", "test_anything", False),
])
def test_container_path_deselects_only_the_local_broker_tests(path, name, deselected):
    assert (local_broker_only_reason(ROOT / path, name, ("kafka", "names")) is not None) == deselected
    assert local_broker_only_reason(ROOT / path, name, ("kafka_cluster",))  # the local cluster's tests
    assert all(reason for reason in LOCAL_BROKER_ONLY.values())


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
if [[ "${FAKE_V1:-0}" != 1 ]]; then
  echo "TypeError: kwargs_from_env() got an unexpected keyword argument 'ssl_version'" >&2; exit 1
fi
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
    assert log.read_text().splitlines() == [f"{compose} down -v --remove-orphans"]
    assert not (demo_copy / ".cache/run/compose").exists()


def test_run_demo_without_an_engine_uses_the_local_broker(demo_copy, fake_bin, tmp_path):
    log = tmp_path / "calls.log"
    out = _demo(demo_copy, _fake_env(fake_bin, log, FAKE_ENGINE="0", FAKE_V2="1", FAKE_V1="1"))
    assert out.returncode == 3, out.stdout + out.stderr
    calls = log.read_text().splitlines()
    assert "ingest kafka start @ " in calls
    assert "ingest topics create @ 127.0.0.1:41234" in calls
    assert not any("compose" in c for c in calls)


# --- make compose-test where no engine can be had ------------------------------------------------


def test_compose_test_skips_with_the_reason_when_no_engine_can_be_had(fake_bin, tmp_path):
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    for name in ("scripts/compose-test.sh", "docker-compose.yml"):
        shutil.copy(ROOT / name, project / name)
    (project / ".venv/bin").mkdir(parents=True)
    _executable(project / ".venv/bin/ingest", FAKE_INGEST)
    log = tmp_path / "calls.log"
    env = _fake_env(fake_bin, log, FAKE_ENGINE="0", COMPOSE_TEST_ENGINE_SETUP="no")
    out = subprocess.run(["bash", str(project / "scripts/compose-test.sh")], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SKIPPED: the compose test did not run, because no Docker engine answers" in out.stdout
    assert "PASSED" not in out.stdout and "FAILED" not in out.stdout
    assert "ingest" not in log.read_text()  # nothing was attempted
