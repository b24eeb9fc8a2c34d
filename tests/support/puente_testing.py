"""Helpers for the broker integration tests: an isolated Puente per test, and readers of its topics."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import urllib.request
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.access import parties, plan, quota_changes, quota_plan
from broker.audit import flatten
from broker.auditor import signature_checks
from broker.credentials import CLIENT_CONFIG, apply_users, party_connection, party_folder
from broker.kafka import (
    Admin,
    KafkaConnection,
    TopicPartition,
    apply_topics,
    connection,
    partitions_of,
    plan_topics,
    read_range,
    reader,
    running,
    set_user_quotas,
    settle,
    user_quotas,
)
from broker.kafka.acls import acl_changes, apply_acls, cluster_acls
from broker.keystore import auditor_path, provision_all
from broker.partner import open_record
from broker.service import build_worker
from broker.topology import TopicNames
from policies import PolicySet, alert_reference, load_policy_set
from puente.dev.synthetic import publish_synthetic
from puente.settings import PuenteSettings
from puente.wire import Record
from schemas import alert_codec


@dataclass
class Env:
    """One isolated Puente: its settings (own topic prefix and keys), its policy set, and every party's
    own login (``users apply``) with the ACLs the policy implies (``acls apply``)."""

    cfg: PuenteSettings
    policy: PolicySet

    @property
    def conn(self) -> KafkaConnection:
        """The admin's connection: what the tests use to set up, inspect and forge."""
        return connection(self.cfg)

    def login(self, principal: str) -> KafkaConnection:
        """A party's own connection (``broker``, ``auditor``, ``agency-SNM``, ``partner-COL``...)."""
        return party_connection(self.cfg.login_root, principal)

    def config(self, principal: str) -> Path:
        """A party's client configuration file."""
        return party_folder(self.cfg.login_root, principal) / CLIENT_CONFIG

    def checks(self) -> Any:
        """The signature checks auditors use: every signing key in the broker's keystore."""
        return signature_checks(auditor_path(self.cfg.keys), None)

    @property
    def names(self) -> TopicNames:
        return TopicNames(self.cfg.topic_prefix)

    def feed(self, partner: str) -> str:
        return self.names.feed(self.policy.partners[partner].feed_topic)

    def key_file(self, partner: str) -> Path:
        kid = self.policy.partners[partner].encryption_key_id
        return self.cfg.keys / "partners" / partner / f"{kid}.json"

    def env_vars(self, principal: str | None = None) -> dict[str, str]:
        """The PUENTE_* variables that make a CLI subprocess use this environment, logged in as
        ``principal`` (default: the admin)."""
        out = dict(os.environ)
        out.update({
            "PUENTE_CLIENT_CONFIG": str(self.config(principal) if principal else self.cfg.client_config),
            "PUENTE_BOOTSTRAP": self.cfg.bootstrap or "",
            "PUENTE_TOPIC_PREFIX": self.cfg.topic_prefix,
            "PUENTE_KEYS": str(self.cfg.keys),
            "PUENTE_MAX_BATCH": str(self.cfg.max_batch),
        })
        return out


LOGINS = Path(os.environ.get("PUENTE_TEST_LOGINS", "/tmp/puente-test-logins"))  # noqa: S108 - a test cache


def _logins(admin: KafkaConnection) -> Path:
    """The cache of one cluster's logins: a configuration names its cluster's address and CA file, so
    one made for another checkout's Kafka (another path, another port) must never be reused."""
    return LOGINS / hashlib.sha256(f"{admin.bootstrap}|{admin.ca_file}".encode()).hexdigest()[:16]


def _own_private(cache: Path) -> bool:
    """Whether every folder from the cache root down to ``cache`` is this user's own and closed to others:
    a cache in a shared /tmp that another user made (or could write) would hand this run its passwords,
    or read them. One that is not is left alone and the logins are made afresh."""
    for folder in (LOGINS, cache):
        try:
            info = folder.lstat()
        except FileNotFoundError:
            return True  # made below, by this user
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            return False
        if info.st_mode & 0o077:  # this user's own, made open by an earlier run: closed now
            folder.chmod(0o700)
    return True


def _reuse_logins(keys: Path, cache: Path) -> None:
    """Copy the parties' client configurations a previous environment made (the logins are cluster-wide):
    each environment then keeps the same passwords instead of setting new ones for every test."""
    if not cache.is_dir() or not _own_private(cache):
        return
    for source in cache.rglob(CLIENT_CONFIG):
        target = keys / source.relative_to(cache)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        target.write_bytes(source.read_bytes())
        target.chmod(0o600)


def _keep_logins(keys: Path, cache: Path) -> None:
    if not _own_private(cache):
        return
    LOGINS.mkdir(mode=0o700, exist_ok=True)
    for source in keys.rglob(CLIENT_CONFIG):
        target = cache / source.relative_to(keys)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        target.write_bytes(source.read_bytes())
        target.chmod(0o600)


async def make_env(admin: KafkaConnection, tmp: Path, **overrides: Any) -> Env:
    cfg = PuenteSettings(bootstrap=admin.bootstrap, client_config=Path(admin.source),
                         topic_prefix=f"t-{uuid.uuid4().hex[:10]}", keys=tmp / "keys", **overrides)
    provision_all(cfg)
    _reuse_logins(cfg.login_root, _logins(admin))
    policy = load_policy_set(cfg.policy_dir)
    kafka = Admin(connection(cfg))
    results = await apply_topics(kafka, plan_topics(cfg, policy))
    assert all(r.ok for r in results), [r.detail for r in results if not r.ok]
    names = TopicNames(cfg.topic_prefix)
    # One cluster serves every environment, as a cluster several deployments share: leave the others' logins. The
    # party names are the same in each, so an environment whose folder lacks the logins another test process made
    # gives them new passwords, on purpose (``mass_cut_off`` would take it for a logins folder named by mistake).
    await apply_users(kafka, cfg.login_root, parties(policy, cfg.agencies), former="leave", allow_many=True)
    _keep_logins(cfg.login_root, _logins(admin))
    acls = acl_changes(set(), plan(policy, names, cfg.agencies, cfg.broker_group), names, [])
    assert await apply_acls(kafka, acls) == []
    # The parties' client quotas, as `acls apply` sets them: every test runs with them in force. They are the
    # logins' (cluster-wide), the same for every environment, so they stay when one ends.
    quotas = quota_changes(await user_quotas(kafka.conn), quota_plan(policy, cfg.agencies, logins=()),
                           parties(policy, cfg.agencies))
    assert await set_user_quotas(kafka.conn, quotas.requests()) == {}
    return Env(cfg, policy)


async def delete_env_topics(env: Env) -> None:
    """Delete the environment's topics and its ACLs (the parties' logins are shared and stay)."""
    admin = Admin(env.conn)
    metadata = await admin.call("listing topics", lambda c: c.list_topics(timeout=10))
    mine = [t for t in metadata.topics if t.startswith(env.cfg.topic_prefix + ".")]
    if mine:
        await admin.results("deleting topics", await admin.call("deleting topics", lambda c: c.delete_topics(mine)))
    names = env.names
    current, _ = await cluster_acls(admin)
    await apply_acls(admin, acl_changes(current, set(), names, parties(env.policy, env.cfg.agencies)))


async def run_broker(env: Env, workers: int = 1, idle: float = 1.0) -> list[Any]:
    """Run ``workers`` workers of one group, logged in as the broker, until each is caught up with every partition
    assigned to it and quiet for ``idle`` seconds (``BrokerWorker.run``): every record published before the call is
    routed when it returns, however slow a fetch on a loaded machine, so the quiet time need not cover one."""
    built = [build_worker(env.cfg, env.login("broker"), client_suffix=f"-t{i}", audit_kept_forever=False)
             for i in range(workers)]
    await asyncio.gather(*(w.run(topics, idle_exit_s=idle) for w, topics, _ in built))
    return [w for w, _, _ in built]


async def delivered_most(env: Env, count: int, seed: int) -> tuple[str, dict[str, str], set[str]]:
    """Publish and route; the partner with most deliveries, what it was delivered (its reference of each alert,
    as its feed, output and receipts name it -> the agency's own alert id) and the own ids of those withheld."""
    await publish_synthetic(env.cfg, env.conn, count, seed=seed)
    await run_broker(env)
    docs = [d for d in await audit_docs(env) if d["kind"] == "DECISION"]
    partner = Counter(d["partner"] for d in docs if d["decision"] != "WITHHOLD").most_common(1)[0][0]
    mine = [d for d in docs if d["partner"] == partner]
    delivered = {d["ref"]: d["alert_id"] for d in mine if d["decision"] != "WITHHOLD"}
    assert len(delivered) == len([d for d in mine if d["decision"] != "WITHHOLD"])  # one reference each
    return partner, delivered, {d["alert_id"] for d in mine if d["decision"] == "WITHHOLD"}


async def read_topic(conn: KafkaConnection, topic: str, *, committed: bool = True) -> list[Record]:
    """Every record of a topic, partition by partition: committed ones only, or also aborted ones. Committed ones once
    every transaction open on the topic has ended (``settle``): Kafka answers a transaction's commit before its
    markers are written, and a read_committed reader stops at the first record of one still open, so a read right
    after a worker committed could miss its last blocks."""
    async with running(reader(conn, "puente-test", committed=committed), conn, f"reading {topic}") as consumer:
        parts = [TopicPartition(topic, p) for p in await partitions_of(consumer, topic)]
        if committed:
            await settle(conn, parts, timeout_s=60)
        out = []
        for tp in parts:
            out += [r async for r in read_range(consumer, tp)]
        return out


async def audit_docs(env: Env) -> list[dict[str, Any]]:
    """The decisions topic as auditors read it: one row per decision or dead letter."""
    records = await read_topic(env.conn, env.names.decisions)
    return [row for r in records for row in flatten(json.loads(r.value))]


async def open_feed(env: Env, partner: str, key_partner: str | None = None, *,
                    committed: bool = True) -> list[dict[str, Any]]:
    """The decrypted views in a partner's feed (opened with ``key_partner``'s key if given: the
    opener is built by hand, past the subscriber's check that a key is the partner's own); with ``committed``
    False, aborted records too, read with the partner's own login, as its own client may."""
    from broker.crypto import FeedOpener
    from broker.keystore import Keystore, load_key_file

    private = load_key_file(env.key_file(key_partner or partner)).x25519_private()
    opener = FeedOpener(partner, private, Keystore(env.cfg.keys / "broker").load_verify_key())
    codec = alert_codec()
    conn = env.conn if committed else env.login(f"partner-{partner}")
    return [open_record(r, opener, codec) for r in await read_topic(conn, env.feed(partner), committed=committed)]


@functools.cache
def _reference_key(broker_keys: Path) -> bytes:
    from broker.keystore import Keystore

    return Keystore(broker_keys).load_reference_key().reveal()


def reference(env: Env, partner: str, alert_id: str) -> str:
    """The id by which ``partner`` knows the agency's alert ``alert_id`` (``policies.alert_reference`` under the
    broker's alert-reference key): what its views, feed keys, receipts and store name instead of the own id."""
    return alert_reference(_reference_key(env.cfg.keys / "broker"), partner, alert_id)


def own_ids(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Each partner's reference of an alert (a decision row's ``ref``, its own partner's) -> the agency's own
    alert id: how what partners hold (views, output lines, receipts) is matched with the audit's decisions."""
    return {d["ref"]: d["alert_id"] for d in rows if d.get("kind") == "DECISION" and isinstance(d.get("ref"), str)}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "puente.cli", *args]


def ids(docs: Sequence[dict[str, Any]]) -> list[str]:
    return [d["alert_id"] for d in docs]


async def publish(env: Env, alerts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Publish alerts as their agencies would; returns them as the broker will decode them."""
    from adapters.publisher import IngressPublisher
    from broker.keystore import Keystore

    by_agency: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts:
        by_agency.setdefault(alert["agency"], []).append(alert)
    for agency, batch in by_agency.items():
        mac = Keystore(env.cfg.keys / "agencies" / agency).load_agency_mac(agency)
        async with IngressPublisher(env.login(f"agency-{agency}"), agency, mac.key_id, mac, env.names) as pub:
            await pub.publish(batch)
    codec = alert_codec()
    return [codec.decode(codec.encode(a)) for a in alerts]


async def adapter_dead_letters(env: Env) -> list[Record]:
    """Every adapter dead letter of every agency (each agency has its own topic)."""
    out: list[Record] = []
    for agency in env.cfg.agencies:
        out += await read_topic(env.conn, env.names.adapter_deadletter(agency))
    return out


def free_port() -> int:
    """A loopback port free at the moment of asking (for a server a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def committed_decisions(port: int) -> int:
    """Decisions a worker process has committed so far, from its /metrics (0 while it does not answer):
    cheap enough to poll often, where reading the audit back each time would let a fast worker finish
    between two looks."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            text = answer.read().decode()
    except OSError:
        return 0
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("puente_decisions_total{")))


class Workers:
    """`puente broker run` processes of one group, each with its metrics port and its JSON log file. With
    ``static``, each is a static member named ``worker-<name>`` (``--group-instance-id``), so one started
    again under its name takes its old place in the group."""

    def __init__(self, env: Env, folder: Path, *, static: bool = False, settings: dict[str, str] | None = None) -> None:
        self.env, self.folder, self.static, self.settings = env, folder, static, settings or {}
        self.procs: dict[str, tuple[subprocess.Popen[bytes], int, Path]] = {}
        self.logs: dict[str, list[Path]] = {}
        self.started = itertools.count()

    def start(self, name: str, instance: str | None = None) -> None:
        """Start worker ``name``; a static one is named ``worker-<name>`` unless ``instance`` names it."""
        port, log = free_port(), self.folder / f"worker-{name}-{next(self.started)}.log"
        args = ["broker", "run", "--metrics-port", str(port)]
        if self.static:
            args += ["--group-instance-id", instance or f"worker-{name}"]
        with open(log, "wb") as out:
            env = {**self.env.env_vars("broker"), "PUENTE_LOG_FORMAT": "json", **self.settings}
            proc = subprocess.Popen(cli(*args), env=env, stdout=subprocess.DEVNULL, stderr=out)
        self.procs[name] = (proc, port, log)
        self.logs.setdefault(name, []).append(log)

    def decisions(self) -> int:
        return sum(committed_decisions(port) for _, port, _ in self.procs.values())

    def kill(self, name: str) -> None:
        proc, _, _ = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

    def check_alive(self) -> None:
        for name, (proc, _, log) in self.procs.items():
            assert proc.poll() is None, f"worker {name} exited ({proc.returncode}) on its own:\n{tail(log)}"

    def events(self, log: Path, event: str) -> list[dict[str, Any]]:
        """The lines of one worker log with this event (a line still being written is left out)."""
        found = []
        for line in log.read_text(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("event") == event:
                found.append(doc)
        return found

    def stop(self) -> dict[str, int]:
        """SIGTERM each (it finishes its batch in flight); their exit statuses."""
        for proc, _, _ in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        out = {}
        for name, (proc, _, _) in self.procs.items():
            try:
                out[name] = proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.kill()
                out[name] = proc.wait(30)
        return out


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file (empty when it does not exist)."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
