"""A real single-node Apache Kafka broker (KRaft) for machines without a Docker engine.

The broker is Apache Kafka itself: its jars come from Maven Central through `kafka/pom.xml`
(the one place the Kafka version is pinned), resolved into `.cache/kafka/<version>/libs`, and
it runs as a plain `java` process bound to 127.0.0.1 on a free port. Each broker has a name
("default" for `ingest kafka start`, one per test session) and a run folder holding its
config, data, log, pid and port, so `start`, `stop` and `status` work across processes.

Used by `ingest kafka start|stop|status`, `make run` and the tests' broker fixture.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson

PROJECT_ROOT = Path(__file__).resolve().parents[2]
POM = PROJECT_ROOT / "kafka" / "pom.xml"
CACHE_ROOT = Path(os.environ.get("INGEST_CACHE_DIR", PROJECT_ROOT / ".cache"))


def kafka_version() -> str:
    """The pinned Kafka version, read from kafka/pom.xml so it is written down only once."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if not match:
        raise RuntimeError(f"no <kafka.version> in {POM}")
    return match.group(1).strip()


def libs_dir() -> Path:
    return CACHE_ROOT / "kafka" / kafka_version() / "libs"


def fetch(quiet: bool = True) -> Path:
    """Resolve the broker's jars with Maven (once; later calls find them in the cache)."""
    libs = libs_dir()
    marker = libs / ".complete"
    if marker.exists():
        return libs
    if shutil.which("mvn") is None:
        raise RuntimeError("Maven (mvn) is needed to fetch Apache Kafka from Maven Central")
    libs.mkdir(parents=True, exist_ok=True)
    cmd = ["mvn", "-B", "-f", str(POM), "dependency:copy-dependencies",
           f"-DoutputDirectory={libs}", "-DincludeScope=runtime"]
    if quiet:
        cmd.insert(1, "-q")
    subprocess.run(cmd, check=True)
    marker.write_text(kafka_version())
    return libs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


@dataclass
class SaslUser:
    username: str
    password: str


@dataclass
class LocalBroker:
    """Handle on a named local broker; its facts live in `run_dir/state.json`."""

    name: str
    run_dir: Path
    port: int = 0
    controller_port: int = 0
    sasl_port: int = 0
    pid: int = 0

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.sasl_port}" if self.sasl_port else ""

    @property
    def log_file(self) -> Path:
        return self.run_dir / "broker.log"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "state.json"

    def is_running(self) -> bool:
        return bool(self.pid) and _pid_alive(self.pid) and _port_open(self.port)

    def save(self) -> None:
        self.state_file.write_bytes(orjson.dumps({
            "name": self.name, "port": self.port, "controller_port": self.controller_port,
            "sasl_port": self.sasl_port, "pid": self.pid, "kafka_version": kafka_version(),
        }))

    @classmethod
    def load(cls, name: str = "default") -> LocalBroker:
        run_dir = CACHE_ROOT / "kafka" / "run" / name
        broker = cls(name=name, run_dir=run_dir)
        if broker.state_file.exists():
            state = orjson.loads(broker.state_file.read_bytes())
            broker.port = state["port"]
            broker.controller_port = state["controller_port"]
            broker.sasl_port = state.get("sasl_port", 0)
            broker.pid = state["pid"]
        return broker


def _server_properties(b: LocalBroker, sasl_users: list[SaslUser]) -> str:
    listeners = [f"PLAINTEXT://127.0.0.1:{b.port}", f"CONTROLLER://127.0.0.1:{b.controller_port}"]
    advertised = [f"PLAINTEXT://127.0.0.1:{b.port}"]
    protocol_map = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    lines = []
    if b.sasl_port:
        listeners.append(f"SASL_PLAINTEXT://127.0.0.1:{b.sasl_port}")
        advertised.append(f"SASL_PLAINTEXT://127.0.0.1:{b.sasl_port}")
        protocol_map.append("SASL_PLAINTEXT:SASL_PLAINTEXT")
        jaas = " ".join(f'user_{u.username}="{u.password}"' for u in sasl_users)
        lines += [
            "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config="
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {jaas};",
            "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        ]
    lines += [
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{b.controller_port}",
        f"listeners={','.join(listeners)}",
        f"advertised.listeners={','.join(advertised)}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        f"listener.security.protocol.map={','.join(protocol_map)}",
        f"log.dirs={b.run_dir / 'data'}",
        # One node: every internal topic has a single replica.
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=10",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        # Tests create and join many groups; don't wait 3 s before each first rebalance.
        "group.initial.rebalance.delay.ms=0",
        # Topics are created explicitly (`ingest topics create`, faust for its own changelogs).
        "auto.create.topics.enable=false",
        "num.partitions=1",
        "log.retention.check.interval.ms=60000",
        "log.segment.bytes=67108864",
    ]
    return "\n".join(lines) + "\n"


_LOG4J2 = """\
<Configuration status="WARN">
  <Appenders><Console name="out" target="SYSTEM_OUT">
    <PatternLayout pattern="[%d] %p %m (%c)%n"/></Console></Appenders>
  <Loggers>
    <Logger name="kafka" level="INFO"/><Logger name="org.apache.kafka" level="INFO"/>
    <Logger name="state.change.logger" level="WARN"/><Logger name="kafka.request.logger" level="WARN"/>
    <Root level="WARN"><AppenderRef ref="out"/></Root>
  </Loggers>
</Configuration>
"""


def _java(libs: Path, *args: str, heap: str = "512m") -> list[str]:
    return ["java", f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            "-cp", f"{libs}/*", *args]


def _new_cluster_id() -> str:
    """A random cluster id as Kafka writes them (URL-safe base64 of 16 bytes), never starting
    with "-": kafka-storage would read such an id as an option (Kafka's Uuid.randomUuid skips
    them too). One in 64 random ids does; it failed a CI run's SASL broker."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def start(name: str = "default", port: int | None = None, *, sasl_users: list[SaslUser] | None = None,
          timeout: float = 90.0, fresh: bool = False) -> LocalBroker:
    """Start the named broker (or return it if it is already running).

    The first start formats its storage; later starts of the same name reuse its data and ports,
    which is what a broker restart in a fault test needs. `fresh=True` wipes the data first.
    """
    broker = LocalBroker.load(name)
    if broker.is_running() and not fresh:
        return broker
    if fresh:
        stop(name)
        shutil.rmtree(broker.run_dir, ignore_errors=True)
        broker = LocalBroker.load(name)
    libs = fetch()
    broker.run_dir.mkdir(parents=True, exist_ok=True)
    first_start = not (broker.run_dir / "data" / "meta.properties").exists()
    if first_start or not broker.port:
        broker.port = port or free_port()
        broker.controller_port = free_port()
        broker.sasl_port = free_port() if sasl_users else 0
    config = broker.run_dir / "server.properties"
    config.write_text(_server_properties(broker, sasl_users or []))
    log4j = broker.run_dir / "log4j2.xml"
    log4j.write_text(_LOG4J2)

    if first_start:
        cluster_id = _new_cluster_id()
        fmt = ["format", "-t", cluster_id, "-c", str(config), "--ignore-formatted"]
        for user in sasl_users or []:
            # SCRAM credentials must exist before the broker serves them; KRaft stores them
            # in the metadata log, which `format --add-scram` seeds.
            for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                fmt += ["--add-scram", f"{mech}=[name={user.username},password={user.password}]"]
        formatted = subprocess.run(_java(libs, f"-Dlog4j2.configurationFile={log4j}", "kafka.tools.StorageTool",
                                         *fmt, heap="256m"),
                                   capture_output=True, text=True)
        if formatted.returncode:
            raise RuntimeError(f"formatting the storage of broker {name!r} in {broker.run_dir} failed "
                               f"(exit {formatted.returncode}):\n{(formatted.stdout + formatted.stderr)[-3000:]}")

    ready = _ReadyWatch(broker.log_file)  # only what this start writes counts
    with open(broker.log_file, "ab") as log:
        proc = subprocess.Popen(
            _java(libs, f"-Dlog4j2.configurationFile={log4j}", "kafka.Kafka", str(config)),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives `ingest kafka start`; stopped by pid
        )
    broker.pid = proc.pid
    broker.save()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Kafka broker exited with {proc.returncode}; see {broker.log_file}:\n"
                               + _tail(broker.log_file))
        if ready.seen() and _port_open(broker.port):
            return broker
        time.sleep(0.2)
    stop(name)
    raise TimeoutError(f"Kafka broker not ready after {timeout}s (port {broker.port} "
                       f"{'open' if _port_open(broker.port) else 'closed'}, ready line "
                       f"{'seen' if ready.seen() else 'not seen'}); see {broker.log_file}:\n"
                       + _tail(broker.log_file, 40))


class _ReadyWatch:
    """Watches the broker log, from its current end, for the line the broker writes once its
    listeners accept requests and metadata is loaded. Reads incrementally: a restarted broker
    with hundreds of partitions can log megabytes right after that line, so looking at the
    tail of the file could miss it (and an earlier start's line must not count)."""

    MARKER = b"Kafka Server started"

    def __init__(self, log_file: Path) -> None:
        self.log_file = log_file
        self.first = self.pos = log_file.stat().st_size if log_file.exists() else 0
        self.found = False

    def seen(self) -> bool:
        if not self.found and self.log_file.exists():
            start = max(self.first, self.pos - len(self.MARKER))  # the marker may straddle reads
            with open(self.log_file, "rb") as f:
                f.seek(start)
                chunk = f.read()
            self.pos = start + len(chunk)
            self.found = self.MARKER in chunk
        return self.found


def _tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def stop(name: str = "default", timeout: float = 30.0, *, kill: bool = False) -> bool:
    """Stop the named broker: SIGTERM (controlled shutdown), SIGKILL after `timeout`.

    `kill=True` sends SIGKILL at once (a crash, for fault tests). Returns True if one was running.
    """
    broker = LocalBroker.load(name)
    if not broker.pid or not _pid_alive(broker.pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(broker.pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(broker.pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(broker.pid, os.WNOHANG)
        time.sleep(0.1)
    if _pid_alive(broker.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(broker.pid, signal.SIGKILL)
        time.sleep(0.5)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(broker.pid, os.WNOHANG)
    return True


def status(name: str = "default") -> dict:
    broker = LocalBroker.load(name)
    return {
        "name": name,
        "kafka_version": kafka_version(),
        "running": broker.is_running(),
        "bootstrap_servers": broker.bootstrap_servers if broker.port else None,
        "pid": broker.pid or None,
        "run_dir": str(broker.run_dir),
        "log": str(broker.log_file),
    }


def pause(name: str = "default") -> bool:
    """Freeze the broker process (SIGSTOP): it keeps its sockets but answers nothing — a hung
    broker, for fault tests. Returns True if one was running."""
    broker = LocalBroker.load(name)
    if not broker.pid or not _pid_alive(broker.pid):
        return False
    os.killpg(broker.pid, signal.SIGSTOP)
    return True


def resume(name: str = "default") -> bool:
    """Thaw a broker frozen by `pause` (SIGCONT)."""
    broker = LocalBroker.load(name)
    if not broker.pid:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(broker.pid, signal.SIGCONT)
        return True
    return False
