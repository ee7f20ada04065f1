"""A real Apache Kafka broker (KRaft), or a cluster of them, for machines without a Docker engine.

The broker is Apache Kafka itself: its jars come from Maven Central through `kafka/pom.xml`
(the one place the Kafka version is pinned), resolved into `.cache/kafka/<version>/libs`, and
it runs as a plain `java` process bound to 127.0.0.1 on a free port. Each broker has a name
("default" for `ingest kafka start`, one per test session) and a run folder holding its
config, data, log, pid and port, so `start`, `stop` and `status` work across processes.

A cluster (`start_cluster`, `ingest kafka start --brokers 3`) is N such processes under one
name, each a *combined* KRaft node (broker and controller in one process, node ids 1..N, all N
in the controller quorum): the smallest real cluster that survives the loss of any one node,
data and metadata alike (3 voters: a quorum of 2 remains). Separate controllers would take three
more JVMs on the machine for a failure mode the combined nodes already have (the active
controller dies with its broker). Its nodes are brokers named "{name}/node-{id}" (run folders
`run/{name}/node-{id}`), so a fault test stops and restarts one node like any broker; Kafka's
internal topics (offsets, transactions) get 3 replicas and min.insync.replicas 2.

Used by `ingest kafka start|stop|status|tool`, `make run` and the tests' broker fixtures.
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


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (held open together while they are picked)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
        return ports


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
    # A node of a cluster (start_cluster): its id, the quorum's voters ("1@host:port,..."), the
    # cluster's size and id. A single broker is node 1 of a cluster of 1.
    node_id: int = 1
    voters: str = ""
    cluster_size: int = 1
    cluster_id: str = ""

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
            "node_id": self.node_id, "voters": self.voters, "cluster_size": self.cluster_size,
            "cluster_id": self.cluster_id,
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
            broker.node_id = state.get("node_id", 1)
            broker.voters = state.get("voters", "")
            broker.cluster_size = state.get("cluster_size", 1)
            broker.cluster_id = state.get("cluster_id", "")
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
    replicas = min(3, b.cluster_size)  # Kafka's internal topics: 3 copies on a cluster of 3 or more
    lines += [
        "process.roles=broker,controller",
        f"node.id={b.node_id}",
        f"controller.quorum.voters={b.voters or f'{b.node_id}@127.0.0.1:{b.controller_port}'}",
        f"listeners={','.join(listeners)}",
        f"advertised.listeners={','.join(advertised)}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        f"listener.security.protocol.map={','.join(protocol_map)}",
        f"log.dirs={b.run_dir / 'data'}",
        # One node: every internal topic has a single replica; a cluster: 3, 2 of them in sync.
        f"offsets.topic.replication.factor={replicas}",
        "offsets.topic.num.partitions=10",
        f"transaction.state.log.replication.factor={replicas}",
        f"transaction.state.log.min.isr={min(2, replicas)}",
        f"share.coordinator.state.topic.replication.factor={replicas}",
        f"share.coordinator.state.topic.min.isr={min(2, replicas)}",
        f"default.replication.factor={replicas}",
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
    A cluster's node ("{cluster}/node-{id}") is restarted the same way, into its cluster.
    """
    if is_cluster(name):
        raise RuntimeError(f"{name!r} is a cluster of {len(LocalCluster.load(name).nodes)} brokers: "
                           f"start it with `ingest kafka start --name {name} --brokers N` (start_cluster)")
    broker = LocalBroker.load(name)
    if broker.is_running() and not fresh:
        return broker
    if fresh:
        stop(name)
        shutil.rmtree(broker.run_dir, ignore_errors=True)
        broker = LocalBroker.load(name)
    libs = fetch()
    broker.run_dir.mkdir(parents=True, exist_ok=True)
    if not broker.voters and (not _formatted(broker) or not broker.port):  # a cluster node keeps its ports
        broker.port = port or free_port()
        broker.controller_port = free_port()
        broker.sasl_port = free_port() if sasl_users else 0
    formatting = _prepare(broker, libs, sasl_users or [])
    _wait_ready([_launch(broker, libs, formatting)], timeout)
    return broker


def _formatted(broker: LocalBroker) -> bool:
    return (broker.run_dir / "data" / "meta.properties").exists()


def _prepare(broker: LocalBroker, libs: Path, sasl_users: list[SaslUser]) -> subprocess.Popen | None:
    """Write the broker's config; on its first start, start formatting its storage (returned: the
    caller waits for it with `_formatted_ok`, so that a cluster's nodes format in parallel)."""
    config = broker.run_dir / "server.properties"
    config.write_text(_server_properties(broker, sasl_users))
    log4j = broker.run_dir / "log4j2.xml"
    log4j.write_text(_LOG4J2)
    if _formatted(broker):
        return None
    cluster_id = broker.cluster_id or _new_cluster_id()
    fmt = ["format", "-t", cluster_id, "-c", str(config), "--ignore-formatted"]
    for user in sasl_users:
        # SCRAM credentials must exist before the broker serves them; KRaft stores them
        # in the metadata log, which `format --add-scram` seeds.
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            fmt += ["--add-scram", f"{mech}=[name={user.username},password={user.password}]"]
    return subprocess.Popen(_java(libs, f"-Dlog4j2.configurationFile={log4j}", "kafka.tools.StorageTool",
                                  *fmt, heap="256m"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _formatted_ok(broker: LocalBroker, formatting: subprocess.Popen | None) -> None:
    if formatting is None:
        return
    output, _ = formatting.communicate()
    if formatting.returncode:
        raise RuntimeError(f"formatting the storage of broker {broker.name!r} in {broker.run_dir} failed "
                           f"(exit {formatting.returncode}):\n{(output or '')[-3000:]}")


def _launch(broker: LocalBroker, libs: Path, formatting: subprocess.Popen | None = None) -> _Launched:
    _formatted_ok(broker, formatting)
    log4j = broker.run_dir / "log4j2.xml"
    ready = _ReadyWatch(broker.log_file)  # only what this start writes counts
    config = broker.run_dir / "server.properties"
    with open(broker.log_file, "ab") as log:
        proc = subprocess.Popen(
            _java(libs, f"-Dlog4j2.configurationFile={log4j}", "kafka.Kafka", str(config)),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives `ingest kafka start`; stopped by pid
        )
    broker.pid = proc.pid
    broker.save()
    return _Launched(broker, proc, ready)


@dataclass
class _Launched:
    broker: LocalBroker
    proc: subprocess.Popen
    ready: _ReadyWatch


def _wait_ready(launched: list[_Launched], timeout: float) -> None:
    """Until every launched broker serves (a cluster's nodes need each other: a quorum of
    controllers before any of them is ready); any exit or the timeout stops them all."""
    deadline = time.monotonic() + timeout
    waiting = list(launched)
    while waiting and time.monotonic() < deadline:
        for one in list(waiting):
            b = one.broker
            if one.proc.poll() is not None:
                for other in launched:
                    stop(other.broker.name)
                raise RuntimeError(f"Kafka broker {b.name!r} exited with {one.proc.returncode}; see {b.log_file}:\n"
                                   + _tail(b.log_file))
            if one.ready.seen() and _port_open(b.port):
                waiting.remove(one)
        if waiting:
            time.sleep(0.2)
    if not waiting:
        return
    for other in launched:
        stop(other.broker.name)
    b = waiting[0].broker
    raise TimeoutError(f"Kafka broker {b.name!r} not ready after {timeout}s (port {b.port} "
                       f"{'open' if _port_open(b.port) else 'closed'}, ready line "
                       f"{'seen' if waiting[0].ready.seen() else 'not seen'}); see {b.log_file}:\n"
                       + _tail(b.log_file, 40))


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
    """Stop the named broker, or every node of the named cluster at once: SIGTERM (controlled
    shutdown), SIGKILL after `timeout`. Nothing else: only the processes the name's state records.

    `kill=True` sends SIGKILL at once (a crash, for fault tests). Returns True if one was running.
    """
    brokers = LocalCluster.load(name).nodes if is_cluster(name) else [LocalBroker.load(name)]
    running = [b for b in brokers if b.pid and _pid_alive(b.pid)]
    for broker in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(broker.pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_pid_alive(b.pid) for b in running) and time.monotonic() < deadline:
        for broker in running:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(broker.pid, os.WNOHANG)
        time.sleep(0.1)
    for broker in running:
        if _pid_alive(broker.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(broker.pid, signal.SIGKILL)
            time.sleep(0.5)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(broker.pid, os.WNOHANG)
    return bool(running)


def status(name: str = "default") -> dict:
    """The named broker's state; for a cluster, every node's, and "running" only when all are."""
    if is_cluster(name):
        cluster = LocalCluster.load(name)
        nodes = [status(node.name) | {"node_id": node.node_id, "port": node.port,
                                      "controller_port": node.controller_port} for node in cluster.nodes]
        return {
            "name": name,
            "kafka_version": kafka_version(),
            "brokers": len(nodes),
            "running": all(n["running"] for n in nodes),
            "nodes_running": sum(n["running"] for n in nodes),
            "bootstrap_servers": cluster.bootstrap_servers,
            "run_dir": str(cluster.run_dir),
            "nodes": nodes,
        }
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


# -- a cluster of combined KRaft nodes ---------------------------------------------------------

def _run_dir(name: str) -> Path:
    return CACHE_ROOT / "kafka" / "run" / name


def is_cluster(name: str) -> bool:
    return (_run_dir(name) / "cluster.json").exists()


@dataclass
class LocalCluster:
    """Handle on a named local cluster: its nodes are brokers named "{name}/node-{id}"."""

    name: str
    run_dir: Path
    nodes: list[LocalBroker]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes)

    def node(self, node_id: int) -> LocalBroker:
        return next(n for n in self.nodes if n.node_id == node_id)

    def node_name(self, node_id: int) -> str:
        return f"{self.name}/node-{node_id}"

    @classmethod
    def load(cls, name: str) -> LocalCluster:
        run_dir = _run_dir(name)
        state_file = run_dir / "cluster.json"
        ids = orjson.loads(state_file.read_bytes())["node_ids"] if state_file.exists() else []
        return cls(name, run_dir, [LocalBroker.load(f"{name}/node-{i}") for i in ids])


def start_cluster(name: str = "cluster", brokers: int = 3, port: int | None = None, *,
                  timeout: float = 120.0, fresh: bool = False) -> LocalCluster:
    """Start the named cluster of `brokers` combined KRaft nodes (or the nodes of it that are not
    running). The first start picks the ports (`port`, port+1, ... for the clients when given)
    and formats every node with one cluster id; later starts reuse data and ports."""
    if brokers < 1:
        raise ValueError("a cluster needs at least one broker")
    run_dir = _run_dir(name)
    if fresh:
        stop(name)
        shutil.rmtree(run_dir, ignore_errors=True)
    if (run_dir / "state.json").exists():
        raise RuntimeError(f"{name!r} is a single broker (`ingest kafka stop --name {name}`; pick another "
                           f"--name for a cluster)")
    cluster = LocalCluster.load(name)
    if cluster.nodes and len(cluster.nodes) != brokers:
        raise RuntimeError(f"{name!r} is a cluster of {len(cluster.nodes)} brokers, not {brokers}: stop it and "
                           f"start it with --fresh, or pick another --name")
    libs = fetch()
    if not cluster.nodes:
        ports = free_ports(2 * brokers)
        client_ports = [port + i for i in range(brokers)] if port else ports[:brokers]
        controller_ports = ports[brokers:]
        voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(controller_ports))
        cluster_id = _new_cluster_id()
        for i in range(brokers):
            node_name = f"{name}/node-{i + 1}"
            cluster.nodes.append(LocalBroker(node_name, _run_dir(node_name), client_ports[i], controller_ports[i],
                                             node_id=i + 1, voters=voters, cluster_size=brokers,
                                             cluster_id=cluster_id))
        run_dir.mkdir(parents=True, exist_ok=True)
        for node in cluster.nodes:
            node.run_dir.mkdir(parents=True, exist_ok=True)
            node.save()
        (run_dir / "cluster.json").write_bytes(orjson.dumps({
            "name": name, "brokers": brokers, "cluster_id": cluster_id,
            "node_ids": [n.node_id for n in cluster.nodes], "kafka_version": kafka_version()}))
    stopped = [node for node in cluster.nodes if not node.is_running()]
    formatting = [_prepare(node, libs, []) for node in stopped]  # in parallel: one JVM each
    _wait_ready([_launch(node, libs, f) for node, f in zip(stopped, formatting)], timeout)
    return cluster


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


# -- Kafka's command-line tools, from the same jars --------------------------------------------

#: The Kafka distribution's scripts the product's messages name (`ingest topics check` prints its
#: fixes with them), and the class each script runs.
TOOLS = {
    "kafka-topics.sh": "org.apache.kafka.tools.TopicCommand",
    "kafka-configs.sh": "kafka.admin.ConfigCommand",
    "kafka-reassign-partitions.sh": "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
    "kafka-leader-election.sh": "org.apache.kafka.tools.LeaderElectionCommand",
    "kafka-metadata-quorum.sh": "org.apache.kafka.tools.MetadataQuorumCommand",
    "kafka-consumer-groups.sh": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
}


def tool_command(script: str, args: list[str]) -> list[str]:
    """The java command line that runs Kafka's `script` (e.g. "kafka-configs.sh") with `args`,
    from the pinned jars: for machines without a Kafka distribution."""
    name = Path(script).name
    if not name.endswith(".sh"):
        name += ".sh"
    if name not in TOOLS:
        raise ValueError(f"unknown Kafka tool {script!r}: one of {', '.join(TOOLS)}")
    log4j = CACHE_ROOT / "kafka" / "tools-log4j2.xml"
    log4j.parent.mkdir(parents=True, exist_ok=True)
    log4j.write_text(_LOG4J2.replace('level="INFO"', 'level="WARN"'))
    return _java(fetch(), f"-Dlog4j2.configurationFile={log4j}", TOOLS[name], *args, heap="256m")
