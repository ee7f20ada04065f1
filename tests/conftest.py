"""The one Kafka fixture every integration test uses.

Where the broker comes from is chosen by `KAFKA_TEST_BROKER` (default `auto`):
- `auto`       1. `KAFKA_BOOTSTRAP_SERVERS` is set → that cluster;
               2. else a Docker engine answers     → the `kafka` service of the project's own
                  docker-compose.yml (see below);
               3. else                             → the project's local KRaft broker
                  (worker/kafka/local_broker.py).
- `local`      the local KRaft broker, even with a Docker engine running or
               KAFKA_BOOTSTRAP_SERVERS set (the fast path: `KAFKA_TEST_BROKER=local make test`).
- `container`  the compose `kafka` service; fails at once, saying why, when no Docker engine
               answers or no compose command works. KAFKA_BOOTSTRAP_SERVERS is ignored.
Any other value fails the session.

The container path brings up ONLY the `kafka` service of docker-compose.yml (one definition for
the stack and the tests: same image, same settings, same healthcheck), under a compose project
of its own (`ingest-test-<pid>`, so a `make run` stack in the same folder is never touched),
with whichever compose works against the engine (`docker compose` v2, else `docker-compose` v1:
testcontainers' DockerCompose is not used because it drives only v2). It is reached where the
compose file publishes it to the host, localhost:29092 (so it cannot run beside a `make run`
stack: the port is checked first), waited for until its healthcheck passes, and taken down with
its volumes (`down -v`) at the end of the session.

Session-scoped; each test gets unique topic names and app id through `names`. There is no
silent skip: an integration test that cannot have a broker fails.

On the container path, the few tests that drive the project's local broker *processes*
themselves (`LOCAL_BROKER_ONLY`: they start, freeze or stop a broker they own; and those on the
local 3-broker `kafka_cluster`, `LOCAL_BROKER_FIXTURES`) are deselected,
never skipped: each is named with its reason in the header and at the end of the run. CI runs
them on the local path (`make test`) and the rest once on the container path (`make compose-test`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_HOST_BOOTSTRAP = "localhost:29092"  # docker-compose.yml: HOST://localhost:29092, "29092:29092"
BROKER_MODES = ("auto", "local", "container")

#: Integration tests that need the project's local broker processes, by file or file::test. On
#: the container path they are deselected (not skipped), each reported with its reason.
LOCAL_BROKER_ONLY = {
    "test_localkafka.py": "tests the local broker's own lifecycle (start/stop/restart of processes it "
                          "starts itself); it never uses the fixture's broker",
    "test_security.py": "starts its own local broker with SASL listeners (PLAIN, SCRAM); the compose kafka "
                        "service has PLAINTEXT listeners only",
    "test_faults.py::test_stalls_are_detected_and_shutdown_is_bounded":
        "freezes the broker process (SIGSTOP/SIGCONT through worker/kafka/local_broker.py)",
    "test_faults.py::test_broker_stopped_for_20s_mid_stream":
        "stops and restarts the broker process through worker/kafka/local_broker.py",
}


def _docker_engine_available() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:  # noqa: BLE001 - no engine, no socket, no permission: all mean "no"
        return False


def choose_broker(env: Mapping[str, str], engine_available: Callable[[], bool]) -> str:
    """"external", "container" or "local", from KAFKA_TEST_BROKER (see the module docstring).
    `engine_available` is only asked when the answer depends on it. Raises ValueError, with a
    message for the user, for an unknown mode or `container` without an engine."""
    mode = (env.get("KAFKA_TEST_BROKER") or "auto").strip().lower()
    if mode not in BROKER_MODES:
        raise ValueError(f"KAFKA_TEST_BROKER={env.get('KAFKA_TEST_BROKER')!r}: expected one of "
                         f"{', '.join(BROKER_MODES)}")
    if mode == "local":
        return "local"
    if mode == "container":
        if not engine_available():
            raise ValueError("KAFKA_TEST_BROKER=container but no Docker engine answers "
                             "(is dockerd running, and may this user use its socket?)")
        return "container"
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        return "external"
    return "container" if engine_available() else "local"


def compose_command(cwd: Path = ROOT) -> list[str] | None:
    """The compose command that works against the running engine: `docker compose` (v2 plugin),
    else `docker-compose` (v1). Probed with `ps`, which talks to the engine (PyPI's v1 with
    docker-py 7 answers `version` but crashes on any engine call). None if neither works."""
    for candidate in (["docker", "compose"], ["docker-compose"]):
        if not shutil.which(candidate[0]):
            continue
        try:
            probe = subprocess.run([*candidate, "-f", str(COMPOSE_FILE), "ps", "-q"], cwd=cwd,
                                   capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return candidate
    return None


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


class ComposeKafka:
    """The `kafka` service of docker-compose.yml in a compose project of its own."""

    def __init__(self, compose: list[str], project: str, timeout: float = 180.0) -> None:
        self.base = [*compose, "-p", project, "-f", str(COMPOSE_FILE)]
        self.timeout = timeout

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        out = subprocess.run([*self.base, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
        if check and out.returncode:
            raise RuntimeError(f"`{' '.join(self.base + list(args))}` failed (exit {out.returncode}):\n"
                               f"{(out.stdout + out.stderr)[-3000:]}")
        return out

    def up(self) -> str:
        host, port = COMPOSE_HOST_BOOTSTRAP.rsplit(":", 1)
        if _port_in_use(host, int(port)):
            raise RuntimeError(f"{COMPOSE_HOST_BOOTSTRAP} is already in use (a `make run` compose stack? "
                               f"`make stop` it, or run with KAFKA_BOOTSTRAP_SERVERS={COMPOSE_HOST_BOOTSTRAP})")
        try:
            self._run("up", "-d", "kafka")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n(no image registry? `bash scripts/offline-images.sh` builds the "
                               f"pinned images locally)") from None
        container = self._run("ps", "-q", "kafka").stdout.strip()
        deadline = time.monotonic() + self.timeout
        state = ""
        while time.monotonic() < deadline:
            state = subprocess.run(["docker", "inspect", "-f",
                                    "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                                    container], capture_output=True, text=True).stdout.strip()
            if state == "running healthy":
                return COMPOSE_HOST_BOOTSTRAP
            if state.endswith("unhealthy") or not state.startswith(("created", "running", "restarting")):
                break
            time.sleep(1)
        logs = subprocess.run(["docker", "logs", "--tail", "40", container], capture_output=True, text=True)
        raise RuntimeError(f"the compose kafka service did not become healthy (state: {state!r}); "
                           f"its log ends:\n{(logs.stdout + logs.stderr)[-3000:]}")

    def down(self) -> None:
        self._run("down", "-v", "--remove-orphans", check=False)


_CHOICE: dict[str, str | ValueError] = {}
_DESELECTED = pytest.StashKey[list]()


def session_broker_choice() -> str:
    """choose_broker for this session, asked once (the collection hook and the fixture agree)."""
    if "choice" not in _CHOICE:
        try:
            _CHOICE["choice"] = choose_broker(os.environ, _docker_engine_available)
        except ValueError as exc:
            _CHOICE["choice"] = exc
    choice = _CHOICE["choice"]
    if isinstance(choice, ValueError):
        raise choice
    return choice


#: Fixtures that are local broker processes whatever KAFKA_TEST_BROKER says.
LOCAL_BROKER_FIXTURES = {
    "kafka_cluster": "runs on its own local 3-broker cluster (tests/integration/conftest.py "
                     "kafka_cluster), whose broker processes it kills and restarts",
}


def local_broker_only_reason(path: Path, name: str, fixturenames: tuple[str, ...] = ()) -> str | None:
    for fixture in fixturenames:
        if fixture in LOCAL_BROKER_FIXTURES:
            return LOCAL_BROKER_FIXTURES[fixture]
    return LOCAL_BROKER_ONLY.get(f"{path.name}::{name}") or LOCAL_BROKER_ONLY.get(path.name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any("integration" in item.path.parts for item in items):
        return  # unit tests only: no need to ask the engine
    try:
        if session_broker_choice() != "container":
            return
    except ValueError:
        return  # the fixture fails with the message
    kept, deselected, reasons = [], [], []
    for item in items:
        reason = local_broker_only_reason(item.path, getattr(item, "originalname", item.name),
                                          tuple(getattr(item, "fixturenames", ())))
        if reason and "integration" in item.path.parts:
            deselected.append(item)
            reasons.append((item.nodeid, reason))
        else:
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
        config.stash[_DESELECTED] = reasons


BROKER_KINDS = {"external": "KAFKA_BOOTSTRAP_SERVERS", "container": "docker-compose.yml's kafka service",
                "local": "the local KRaft broker"}


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    choice = _CHOICE.get("choice")
    if isinstance(choice, str):
        terminalreporter.write_line(f"integration tests' Kafka: {BROKER_KINDS[choice]} "
                                    f"(KAFKA_TEST_BROKER={os.environ.get('KAFKA_TEST_BROKER') or 'auto'})")
    reasons = config.stash.get(_DESELECTED, [])
    if reasons:
        terminalreporter.section("deselected on the container path: they drive local broker processes")
        for nodeid, reason in reasons:
            terminalreporter.write_line(f"{nodeid}: {reason}")


@dataclass
class KafkaCluster:
    bootstrap_servers: str
    kind: str  # "external" | "compose" | "local"
    broker_name: str = ""  # for the local broker: lets fault tests stop/restart it


@pytest.fixture(scope="session")
def kafka() -> KafkaCluster:
    try:
        choice = session_broker_choice()
    except ValueError as exc:
        pytest.fail(str(exc))
    if choice == "external":
        yield KafkaCluster(os.environ["KAFKA_BOOTSTRAP_SERVERS"], "external")
        return
    if choice == "container":
        compose = compose_command()
        if compose is None:
            pytest.fail("a Docker engine answers but neither `docker compose` (v2) nor `docker-compose` (v1) "
                        "works against it; install one, or run with KAFKA_TEST_BROKER=local")
        stack = ComposeKafka(compose, project=f"ingest-test-{os.getpid()}")
        try:
            bootstrap = stack.up()
        except Exception as exc:  # noqa: BLE001
            stack.down()
            pytest.fail(f"the container broker could not be had: {exc}")
        try:
            yield KafkaCluster(bootstrap, "compose")
        finally:
            stack.down()
        return
    from worker.kafka import local_broker

    name = f"pytest-{os.getpid()}"
    try:
        broker = local_broker.start(name, fresh=True)
    except Exception as exc:  # noqa: BLE001
        why = "KAFKA_TEST_BROKER=local" if choice == "local" and os.environ.get("KAFKA_TEST_BROKER") else \
            "no KAFKA_BOOTSTRAP_SERVERS, no Docker engine"
        pytest.fail(f"no Kafka broker could be had ({why}, and the local broker failed: {exc})")
    try:
        yield KafkaCluster(broker.bootstrap_servers, "local", name)
    finally:
        local_broker.stop(name)
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
