"""Start, stop and inspect Kafka nodes on 127.0.0.1 as plain Java processes, secured as a ministry would.

Every node has three listeners. ``CLIENT`` (the bootstrap port) takes only SASL_SSL: TLS with a
certificate from a local CA (``puente.dev.pki``) and SCRAM-SHA-512 logins. ``CONTROLLER`` (the port after
it) and ``INTERNAL`` (after every node's two: replication between the nodes) take only TLS with client
certificates: nodes prove themselves with their node certificate (CN ``kafka-node``), never a password, so
``kafka-node`` has no SCRAM login and no password reaching the client port makes a super user. The
``StandardAuthorizer`` allows nothing no ACL names (``allow.everyone.if.no.acl.found=false``); the
super users are ``admin`` (the operator's SCRAM login, created when the storage is formatted) and
``kafka-node`` (the nodes themselves, which Kafka requires to be super users before any ACL is
loaded). Everyone else gets exactly the ACLs ``puente acls apply`` derives from the policy.

What a client needs is written beside the nodes: ``tls/ca.pem`` to trust, and ``admin.properties``,
the admin's client configuration (``puente kafka env`` points ``PUENTE_CLIENT_CONFIG`` at it).
Denials go to each node's ``logs/authorizer.log``.

The passwords (``secrets.json``), the admin's configuration and each node's ``server.properties`` are
0600 in 0700 folders, written whole under a new name and renamed into place (a link planted at the
name is replaced, never followed). Kept passwords are read only from a file that passes every check of
a secret file (``broker.private_files``). They are made only while no node's storage is formatted: once one
is, a missing ``secrets.json`` is refused (restore it, or ``puente kafka wipe``), never replaced by passwords
Kafka does not hold. A folder of the local Kafka that exists but others may
write is refused (chmod 700), never used.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from broker.credentials import client_properties
from broker.kafka import Admin, KafkaConnection, apply_topics, connection_from_properties
from broker.kafka.acls import delete_users, scram_users
from broker.private_files import check_folder, private_folder, read_regular, read_secret, write_atomic, write_new
from broker.topology import TopicSpec
from puente.dev import pki
from puente.dev.localkafka._fetch import KAFKA_VERSION, fetch_kafka
from puente.dev.localkafka._nodeconf import (
    ADMIN_PRINCIPAL,
    FIRST_LOGINS,
    NODE_PRINCIPAL,
    NodeConf,
    format_logins_argfile,
    password_problem,
    render,
    secured_properties,
)
from puente.dev.localkafka._process import NodeProcess, adopt, identify, parse_record, record_of, still_running
from puente.dev.localkafka._ready import (
    INTERNAL_TOPICS,
    PROBE_TOPIC,
    PartitionView,
    answers,
    broker_problem,
    partition_problem,
    quorum_file,
    quorum_problem,
    read_quorum,
)
from puente.dev.localkafka._startlog import first_error, mark
from puente.errors import ConfigError, KafkaSetupError
from puente.strict import DuplicateKey, unique_keys

SHAPES = ("single", "cluster")
_BASE_PORT = {"single": 19092, "cluster": 29092}
_HEAP = {"single": "-Xmx768m", "cluster": "-Xmx512m"}


@dataclass(frozen=True)
class NodeSpec:
    """One Kafka node: its id, its three ports and its folder."""

    node_id: int
    port: int
    controller_port: int
    folder: Path
    internal_port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class NodeStatus:
    """What ``status`` reports for one node. ``listening``: of a running node, that its client and internal ports
    both listen (one not listening on its internal port runs an older configuration and is not up); of a stopped
    node, that either is taken by another process."""

    spec: NodeSpec
    pid: int | None
    alive: bool
    listening: bool


def _state_root() -> Path:
    return Path(os.environ.get("PUENTE_HOME", ".puente")).resolve() / "kafka"


_MAX_SECRETS = 64 * 1024


def read_passwords(path: Path, what: str, remedy: str = "remove it and run again for new ones") -> dict[str, str]:
    """The first logins' passwords kept in a ``secrets.json`` (this module's and ``compose``'s), after every
    check of a secret file (``read_secret``): ConfigError naming the file (never a password) and ``remedy`` when
    it fails one, or does not name a password for every first login; ConfigError naming the file and the login
    (never the value) when a password fails ``password_problem``, checked on every read, not only when a node is
    formatted: every file it is written into must carry it unchanged."""
    raw = read_secret(path, _MAX_SECRETS, ConfigError, what)
    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=unique_keys)
    except (UnicodeDecodeError, ValueError, DuplicateKey):
        doc = None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(name), str) for name in FIRST_LOGINS) \
            or not all(isinstance(v, str) for v in doc.values()):
        raise ConfigError(f"{what} {path} is not a JSON object with a password for each of "
                          f"{', '.join(FIRST_LOGINS)}: {remedy}")
    for name in FIRST_LOGINS:
        problem = password_problem(doc[name])
        if problem is not None:
            raise ConfigError(f"the {name!r} password in {what} {path} {problem}: {remedy}")
    return dict(doc)


def kept_passwords(path: Path, what: str, formatted: list[Path], remedy: str) -> dict[str, str]:
    """The first logins' passwords in ``path``, made on first use. They are written as a new name
    (``write_new``), never over one: of two runs making them at once, the one that loses reads the winner's,
    so no file or client config ever holds a password another run replaced.

    First use is only while no node's storage is formatted (none of ``formatted``, the nodes'
    ``meta.properties``, exists): a formatted storage holds the passwords the file held, and new ones would
    overwrite every login file with passwords Kafka does not know, the admin's only working login with them.
    Then a missing or unreadable file is a ConfigError in one line naming it and ``remedy``."""
    done = next((meta for meta in formatted if meta.exists()), None)
    if done is not None:
        if not os.path.lexists(path):
            raise ConfigError(f"{what} {path} is missing, but {done} says that storage is formatted with the "
                              f"passwords it held (new ones would not log in): {remedy}")
        return read_passwords(path, what, remedy)
    if not os.path.lexists(path):  # a link is there too: read_passwords refuses it
        made = {name: secrets.token_urlsafe(24) for name in FIRST_LOGINS}
        try:
            write_new(path, json.dumps(made).encode("utf-8"), 0o600)
            return made
        except FileExistsError:
            pass  # a concurrent run made them first: theirs are the ones in use
    return read_passwords(path, what)


def kept_cluster_id(path: Path) -> str:
    """The KRaft cluster id in ``path``, made on first use as a new name (``kept_passwords``' rule): two runs
    formatting nodes at once format them with one id."""
    if not os.path.lexists(path):
        with contextlib.suppress(FileExistsError):
            write_new(path, (base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=") + "\n").encode(),
                      0o644)
    return read_regular(path, 256, ConfigError)[0].decode("ascii", "replace").strip()


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _first_port(env: str, default: int, used: int) -> int:
    """The first of the ``used`` consecutive ports the local Kafka listens on: the variable ``env``, else
    ``default``; ConfigError unless every one of them is a port (1 to 65535)."""
    text = os.environ.get(env)
    if text is None:
        return default
    highest = 65536 - used
    value = int(text) if text.isascii() and text.isdigit() and len(text) <= 5 else 0
    if not 1 <= value <= highest:
        raise ConfigError(f"{env} is the first of the {used} ports the local Kafka listens on: give a whole "
                          f"number from 1 to {highest}")
    return value


class LocalKafka:
    """A local Kafka of one shape, kept under ``$PUENTE_HOME/kafka/<shape>``."""

    def __init__(self, shape: str = "single", *, root: Path | None = None) -> None:
        if shape not in SHAPES:
            raise KafkaSetupError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
        self.shape = shape
        self.folder = (root or _state_root()) / shape
        # PUENTE_KAFKA_PORT / PUENTE_KAFKA_CLUSTER_PORT move the first port when the default is taken.
        env = "PUENTE_KAFKA_PORT" if shape == "single" else "PUENTE_KAFKA_CLUSTER_PORT"
        count = 1 if shape == "single" else 3
        base = _first_port(env, _BASE_PORT[shape], 3 * count)
        # Each node's client and controller ports in pairs, then the internal ones: a client's ports stay where
        # they were before the internal listener came.
        self.nodes = [
            NodeSpec(i + 1, base + 2 * i, base + 2 * i + 1, self.folder / f"node{i + 1}", base + 2 * count + i)
            for i in range(count)
        ]
        # Stale pid files removed so far, one line each, for the command to tell its user.
        self.notes: list[str] = []

    # ---- addresses -------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        """The comma-separated bootstrap addresses of every node."""
        return ",".join(n.address for n in self.nodes)

    @property
    def replication(self) -> int:
        return len(self.nodes)

    @property
    def min_insync(self) -> int:
        return 1 if len(self.nodes) == 1 else 2

    # ---- configuration ---------------------------------------------------
    def _voters(self) -> str:
        return ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)

    # ---- security --------------------------------------------------------
    @property
    def tls_folder(self) -> Path:
        return self.folder / "tls"

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients trust."""
        return self.tls_folder / "ca.pem"

    @property
    def admin_config(self) -> Path:
        """The admin's client properties file (a super user: for operators and tests, not for services)."""
        return self.folder / "admin.properties"

    def _secrets(self) -> dict[str, str]:
        """The admin's SCRAM password (a storage formatted before the nodes logged in by certificate alone also
        kept the nodes' there), made once and kept (0600). A kept file must pass every
        check of a secret file: one someone else could have put there never becomes the admin's password."""
        return kept_passwords(self.folder / "secrets.json", "the local Kafka's passwords",
                              [n.folder / "data" / "meta.properties" for n in self.nodes],
                              f"restore it from a backup, or delete this local Kafka and its data with "
                              f"`puente kafka wipe --shape {self.shape}`")

    def admin_connection(self, timeout_s: float = 15.0) -> KafkaConnection:
        """The admin's connection to this Kafka."""
        return connection_from_properties(self.admin_config, timeout_s=timeout_s)

    def _write_admin_config(self, password: str) -> None:
        text = client_properties(self.bootstrap, self.ca_file, ADMIN_PRINCIPAL, password)
        write_atomic(self.admin_config, text.encode("utf-8"), 0o600)

    def _properties(self, node: NodeSpec) -> str:
        conf = NodeConf(
            node_id=node.node_id,
            listeners=(f"CLIENT://127.0.0.1:{node.port},INTERNAL://127.0.0.1:{node.internal_port},"
                       f"CONTROLLER://127.0.0.1:{node.controller_port}"),
            advertised=f"CLIENT://127.0.0.1:{node.port},INTERNAL://127.0.0.1:{node.internal_port}",
            voters=self._voters(),
            keystore=str(self.tls_folder / f"node{node.node_id}.pem"), truststore=str(self.ca_file),
            log_dirs=str(node.folder / "data"), replication=self.replication, min_insync=self.min_insync)
        # Sized for a development machine: small segments, few threads, no rebalance delay.
        tuning = {
            "num.partitions": "3",
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.num.partitions": "6",
            "group.initial.rebalance.delay.ms": "0",
            "log.segment.bytes": str(64 * 1024 * 1024),
            "num.network.threads": "2",
            "num.io.threads": "4",
        }
        return render({**secured_properties(conf), **tuning})

    def _java(self, node: NodeSpec, main: str, *args: str) -> list[str]:
        classpath = fetch_kafka(KAFKA_VERSION)
        log4j = resources.files("puente.dev.localkafka").joinpath("log4j2.properties")
        return [
            "java",
            _HEAP[self.shape],
            "-Xms128m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={node.folder / 'logs'}",
            "-cp",
            f"{classpath}/*",
            main,
            *args,
        ]

    def _prepare(self) -> None:
        """Make the CA, node certificates, passwords and each node's properties; format storage on first use."""
        private_folder(self.folder)
        for folder in (self.tls_folder, *(f for n in self.nodes for f in (n.folder, n.folder / "logs"))):
            check_folder(folder)  # an open one is refused before any password is made (a missing one is made 0700)
        keys = self._secrets()
        for node in self.nodes:
            if pki.needs_issue(self.tls_folder, f"node{node.node_id}"):
                pki.issue(self.tls_folder, f"node{node.node_id}", ["127.0.0.1", "localhost"], common="kafka-node")
        self._write_admin_config(keys[ADMIN_PRINCIPAL])
        cluster_id = kept_cluster_id(self.folder / "cluster.id")
        for node in self.nodes:
            private_folder(node.folder / "logs")  # the node's folder too: format-logins.args holds a password
            props = node.folder / "server.properties"
            write_atomic(props, self._properties(node).encode("utf-8"), 0o600)
            logins = node.folder / "format-logins.args"
            logins.unlink(missing_ok=True)  # one a killed format left behind
            if (node.folder / "data" / "meta.properties").exists():
                continue
            # "=" form: a base64url id may start with "-", which the tool would take for an option.
            # The admin's SCRAM login goes into the metadata log as it is made: the
            # first credentials cannot be added through the API, which needs an authenticated client.
            # They go through a 0600 argument file, not the command line, which any user of the host can read.
            text = format_logins_argfile(keys)
            cmd = self._java(node, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(props),
                             f"@{logins}")
            try:
                write_atomic(logins, text.encode("utf-8"), 0o600)
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            finally:
                logins.unlink(missing_ok=True)
            if proc.returncode != 0:
                tail = (proc.stdout + proc.stderr).strip().splitlines()[-10:]
                raise KafkaSetupError(f"formatting node {node.node_id} failed:", problems=tail)

    # ---- process control -------------------------------------------------
    def _pid_file(self, node: NodeSpec) -> Path:
        return node.folder / "kafka.pid"

    def _process(self, node: NodeSpec) -> NodeProcess | None:
        """The node's running Kafka, when its ``kafka.pid`` records one (``_process.identify``); else None.

        A record naming a process that is not this node's Kafka (its pid reused by another process since,
        or no record ``kafka up`` writes) is stale: it is removed, with a note, and that process is never
        signalled nor taken for the node. A record whose process exited is kept: ``wait_ready`` reads it
        as a node that died starting, and ``down`` removes it."""
        path = self._pid_file(node)
        try:
            text = path.read_text(encoding="ascii", errors="replace")
        except OSError:
            return None
        proc = parse_record(text)
        if proc is None and (proc := adopt(text, node.folder / "server.properties")) is not None:
            path.write_text(proc.line())  # a bare pid an earlier Puente wrote, naming the node: kept, with its start
        found = "other" if proc is None else identify(proc, node.folder / "server.properties")
        if proc is not None and found == "node":
            return proc
        if found == "other":
            path.unlink(missing_ok=True)
            words = text.split()
            named = f"pid {proc.pid}" if proc is not None else \
                f"pid {words[0]} with no start time" if len(words) == 1 and words[0].isdigit() else \
                "no pid and start time"
            self.notes.append(f"node {node.node_id}'s {path} named {named}, which is not this node's Kafka "
                              f"(the pid reused by another process, or a file `kafka up` did not write): "
                              f"removed it, and signalled nothing")
        return None

    def _pid(self, node: NodeSpec) -> int | None:
        proc = self._process(node)
        return None if proc is None else proc.pid

    def node(self, node_id: int) -> NodeSpec:
        """The node numbered ``node_id``; a clear error when this shape has none."""
        if not 1 <= node_id <= len(self.nodes):
            have = ", ".join(str(n.node_id) for n in self.nodes)
            raise KafkaSetupError(f"there is no node {node_id}: the {self.shape} Kafka has node(s) {have}")
        return self.nodes[node_id - 1]

    def start_node(self, node_id: int) -> None:
        """Start one node unless it already runs (without waiting for it: see ``wait_ready``)."""
        node = self.node(node_id)
        if self._pid(node) is not None:
            # A node that dies while this call waits for it is named by what it logs from now on, not by an error
            # of its own start long ago.
            mark(node.folder / "logs")
            return
        for port in (node.port, node.controller_port, node.internal_port):
            if _port_open(port):
                raise KafkaSetupError(
                    f"port {port} is already taken by another process; stop it or set PUENTE_HOME"
                )
        cmd = self._java(node, "kafka.Kafka", str(node.folder / "server.properties"))
        mark(node.folder / "logs")  # where this run's log lines begin, for a start-up error to name its own
        with open(node.folder / "logs" / "console.log", "ab") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self._pid_file(node).write_text(record_of(proc.pid).line())

    def stop_node(self, node_id: int, *, timeout: float = 30.0, kill: bool = False) -> None:
        """Stop one node: SIGTERM (a clean shutdown), SIGKILL after ``timeout`` or when ``kill``. Only a process
        that is this node's Kafka (``_process``) is signalled."""
        node = self.node(node_id)
        proc = self._process(node)
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):  # it exited since it was checked
                os.kill(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            _wait_gone(proc, time.monotonic() + timeout)
        self._pid_file(node).unlink(missing_ok=True)

    def _require_running(self) -> None:
        if not any(self._pid(n) is not None for n in self.nodes):
            raise KafkaSetupError(f"no local Kafka ({self.shape}) is running: start it with "
                                  f"`puente kafka up --shape {self.shape}`")

    def stop_one(self, node_id: int, *, kill: bool = False) -> None:
        """Stop one node of a running Kafka, for fault tests by hand; an error if it is already stopped."""
        node = self.node(node_id)
        self._require_running()
        if self._pid(node) is None:
            raise KafkaSetupError(f"node {node_id} is already stopped")
        self.stop_node(node_id, kill=kill)

    def start_one(self, node_id: int, *, timeout: float = 120.0) -> float:
        """Start one stopped node of a running Kafka and wait until the whole cluster is usable again;
        return seconds taken. An error if it already runs, or if another node is stopped too (the
        cluster cannot be ready without it)."""
        node = self.node(node_id)
        self._require_running()
        pid = self._pid(node)
        if pid is not None:
            raise KafkaSetupError(f"node {node_id} is already running (pid {pid})")
        started = time.monotonic()
        self.start_node(node_id)
        stopped = [n.node_id for n in self.nodes if self._pid(n) is None]
        if stopped:
            raise KafkaSetupError(
                f"node {node_id} is starting, but node {stopped[0]} is stopped: the cluster is not ready until it "
                f"runs too (`puente kafka start-node {stopped[0]}`)")
        self.wait_ready(timeout=timeout)
        return time.monotonic() - started

    def up(self, *, timeout: float = 120.0) -> float:
        """Start every node that is not running and wait until the cluster is usable; return seconds taken."""
        started = time.monotonic()
        fetch_kafka(KAFKA_VERSION)
        self._prepare()
        for node in self.nodes:
            self.start_node(node.node_id)
        self.wait_ready(timeout=timeout)
        self._require_current_config()
        asyncio.run(self._drop_node_login())
        return time.monotonic() - started

    def _require_current_config(self) -> None:
        """KafkaSetupError in one line naming the first running node that does not listen on its internal port: it
        was started with a configuration from before the nodes logged in by certificate, and still reaches the
        others over the client port with the nodes' SCRAM login, which ``_drop_node_login`` would delete under it
        (its transactions then fail to authenticate). Only a restart of every node together moves it over: a node
        of the new configuration cannot reach an old one's internal address."""
        for node in self.nodes:
            if not _port_open(node.internal_port):
                raise KafkaSetupError(f"node {node.node_id} runs an older configuration: "
                                      "`puente kafka down` then `puente kafka up`")

    async def _drop_node_login(self) -> None:
        """Delete the nodes' SCRAM login, which a storage formatted before the nodes logged in by certificate alone
        still holds: with it, the nodes' password in that storage's secrets.json logs in as a super user on the
        client port. Only once every node runs the current configuration (``_require_current_config``)."""
        admin = Admin(self.admin_connection())
        held = (await scram_users(admin)).get(NODE_PRINCIPAL)
        if held:
            await delete_users(admin, {NODE_PRINCIPAL: held})
            self.notes.append(f"deleted the nodes' SCRAM login ({NODE_PRINCIPAL}), left by an older Puente: the "
                              "nodes log in with their certificates")

    def down(self, *, timeout: float = 30.0) -> None:
        """Stop every node at once (so the quorum stays until all have begun) and leave no process behind.
        Only a process that is its node's Kafka (``_process``) is signalled."""
        procs = [(node, self._process(node)) for node in self.nodes]
        for _, proc in procs:
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):  # it exited since it was checked
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for node, proc in procs:
            if proc is not None:
                _wait_gone(proc, deadline)
            self._pid_file(node).unlink(missing_ok=True)

    def wipe(self) -> None:
        """Stop every node and delete this shape's folder, its data with it. KafkaSetupError, naming the first path
        that could not be removed, when any remains: a wipe is reported done only once the folder is gone, since
        what a partial one leaves (passwords beside formatted storage, or half of it) misleads the next `up`."""
        self.down()
        if not os.path.lexists(self.folder):
            return
        failed: list[tuple[str, BaseException]] = []
        # onerror, not a raised error, for the path: rmtree's own error names an entry alone, relative to its folder
        shutil.rmtree(self.folder, onerror=lambda _, path, info: failed.append((path, info[1])))
        if failed:
            where, exc = failed[0]
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
            raise KafkaSetupError(f"could not delete {where} ({reason}): the local Kafka's folder {self.folder} is "
                                  f"only partly deleted; make that removable and run `puente kafka wipe` again")
        if os.path.lexists(self.folder):  # something wrote into it while it was deleted
            raise KafkaSetupError(f"{self.folder} is still there after it was deleted (something wrote into it "
                                  f"meanwhile); run `puente kafka wipe` again")

    def status(self) -> list[NodeStatus]:
        """The state of every node of this shape."""
        out = []
        for node in self.nodes:
            pid = self._pid(node)
            ports = (_port_open(node.port), _port_open(node.internal_port))
            out.append(NodeStatus(node, pid, pid is not None, all(ports) if pid is not None else any(ports)))
        return out

    def wait_ready(self, *, timeout: float = 120.0) -> None:
        """Wait until every node serves and the cluster is usable (see ``readiness``); on timeout a
        one-line error names what was still not ready."""
        deadline = time.monotonic() + timeout
        last = "no node answers yet"
        while True:
            for node in self.nodes:
                recorded = self._pid_file(node).exists()  # before _process, which removes a stale record
                if self._process(node) is None and recorded:
                    raise KafkaSetupError(self._died_starting(node))
            problem = self.readiness()
            if problem is None:
                return
            last = problem
            if time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        raise KafkaSetupError(f"Kafka ({self.shape}) was not ready within {timeout:.0f}s: {last}")

    def readiness(self) -> str | None:
        """None when the cluster is usable; else the first thing not ready yet, naming its node.

        Every node runs and answers on its own port; every node follows the same controller quorum
        leader, which runs; the admin sees every node registered as a broker; and the probe topic
        (made here on first use, one partition per node) and Kafka's internal topics, where they
        exist, have a leader and all replicas in sync for every partition.
        """
        running = {n.node_id for n in self.nodes if self._pid(n) is not None}
        for node in self.nodes:
            if node.node_id not in running:
                return f"node {node.node_id} is not running"
        for node in self.nodes:
            if not answers(node.port, self.ca_file):
                return f"node {node.node_id} does not answer on {node.address} yet"
        views = {n.node_id: read_quorum(quorum_file(n.folder / "data")) for n in self.nodes}
        problem = quorum_problem(views, running)
        if problem is not None:
            return problem
        try:
            return asyncio.run(self._admin_problem())
        except Exception as exc:  # noqa: BLE001 - any failure here just means "not yet"
            first = (str(exc).splitlines() or [""])[0][:160]
            return f"the admin cannot describe the cluster yet ({type(exc).__name__}: {first})"

    async def _admin_problem(self) -> str | None:
        """What the admin's view of the cluster says is not ready, or None."""
        admin = Admin(self.admin_connection(timeout_s=3))
        problem = broker_problem(await _broker_ids(admin), [n.node_id for n in self.nodes])
        if problem is not None:
            return problem
        metadata = await admin.call("listing topics", lambda c: c.list_topics(timeout=3))
        if PROBE_TOPIC not in metadata.topics:
            spec = TopicSpec(PROBE_TOPIC, len(self.nodes), self.replication,
                             {"min.insync.replicas": str(self.min_insync)})
            made = (await apply_topics(admin, [spec]))[0]
            return f"the probe topic {PROBE_TOPIC} was just made, not yet checked ({made.action}: {made.detail})"
        views = []
        for name in (PROBE_TOPIC, *INTERNAL_TOPICS):
            topic = metadata.topics.get(name)
            if topic is None:
                continue  # Kafka makes its internal topics on first use
            if topic.error is not None:
                return f"{name} is not available yet ({topic.error.str()})"
            views += [PartitionView(name, p.id, p.leader, tuple(p.replicas), tuple(p.isrs))
                      for p in topic.partitions.values()]
        return partition_problem(views)

    def _died_starting(self, node: NodeSpec) -> str:
        """One line saying a node exited starting and where its first error of this run is: the log file, the line
        and the exception's class, never the line's text (it may quote a password Kafka could not parse)."""
        logs = node.folder / "logs"
        found = first_error(logs)
        if found is None:
            return (f"Kafka node {node.node_id} exited during start-up, logging no error since it started: see "
                    f"{logs / 'server.log'} and {logs / 'console.log'}")
        return f"Kafka node {node.node_id} exited during start-up: its first error is at {found}; read it there"


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _wait_gone(proc: NodeProcess, deadline: float) -> None:
    """Wait until the signalled node's process has gone, then SIGKILL it if it is still the same process
    (its start time says so: never a process that took the pid meanwhile) and wait for that."""
    while still_running(proc) and time.monotonic() < deadline:
        _reap(proc.pid)
        time.sleep(0.1)
    if still_running(proc):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        while still_running(proc):
            _reap(proc.pid)
            time.sleep(0.05)
    _reap(proc.pid)


async def _broker_ids(admin: Admin) -> set[int]:
    """The ids of the brokers the cluster has registered and not fenced, asked as the admin
    (librdkafka's refused connections while nodes start go to the logging module, which the caller's
    configuration keeps quiet)."""
    cluster = await admin.call("describing the cluster", lambda c: c.describe_cluster(request_timeout=3))
    described = await admin.results("describing the cluster", {"cluster": cluster})
    found = described["cluster"]
    if isinstance(found, Exception):
        raise found
    return {node.id for node in found.nodes}
