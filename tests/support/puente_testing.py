"""Helpers for the broker integration tests: an isolated Puente per test, and readers of its topics."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.audit import flatten
from broker.auditor import signature_checks
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
)
from broker.keystore import provision_all
from broker.partner import open_record
from broker.service import build_worker
from broker.topology import TopicNames
from policies import PolicySet, load_policy_set
from puente.settings import PuenteSettings
from puente.wire import Record
from schemas import alert_codec


@dataclass
class Env:
    """One isolated Puente: its settings (own topic prefix and keys) and policy set."""

    cfg: PuenteSettings
    policy: PolicySet

    @property
    def conn(self) -> KafkaConnection:
        """The connection every client of this environment uses."""
        return connection(self.cfg)

    def checks(self) -> Any:
        """The signature checks auditors use: every signing key in the broker's keystore."""
        return signature_checks(self.cfg.keys / "broker", None)

    @property
    def names(self) -> TopicNames:
        return TopicNames(self.cfg.topic_prefix)

    def feed(self, partner: str) -> str:
        return self.names.feed(self.policy.partners[partner].feed_topic)

    def key_file(self, partner: str) -> Path:
        kid = self.policy.partners[partner].encryption_key_id
        return self.cfg.keys / "partners" / partner / f"{kid}.json"

    def env_vars(self) -> dict[str, str]:
        """The PUENTE_* variables that make a CLI subprocess use this environment."""
        out = dict(os.environ)
        out.update({
            "PUENTE_BOOTSTRAP": self.cfg.bootstrap or "",
            "PUENTE_TOPIC_PREFIX": self.cfg.topic_prefix,
            "PUENTE_KEYS": str(self.cfg.keys),
            "PUENTE_MAX_BATCH": str(self.cfg.max_batch),
        })
        return out


async def make_env(bootstrap: str, tmp: Path, **overrides: Any) -> Env:
    cfg = PuenteSettings(bootstrap=bootstrap, topic_prefix=f"t-{uuid.uuid4().hex[:10]}", keys=tmp / "keys",
                         **overrides)
    provision_all(cfg)
    policy = load_policy_set(cfg.policy_dir)
    results = await apply_topics(Admin(connection(cfg)), plan_topics(cfg, policy))
    assert all(r.ok for r in results), [r.detail for r in results if not r.ok]
    return Env(cfg, policy)


async def delete_env_topics(env: Env) -> None:
    admin = Admin(env.conn)
    metadata = await admin.call("listing topics", lambda c: c.list_topics(timeout=10))
    mine = [t for t in metadata.topics if t.startswith(env.cfg.topic_prefix + ".")]
    if mine:
        await admin.results("deleting topics", await admin.call("deleting topics", lambda c: c.delete_topics(mine)))


async def run_broker(env: Env, workers: int = 1, idle: float = 3.0) -> list[Any]:
    """Run ``workers`` workers of one group until the input has been idle for ``idle`` seconds."""
    built = [build_worker(env.cfg, env.conn, client_suffix=f"-t{i}") for i in range(workers)]
    await asyncio.gather(*(w.run(topics, idle_exit_s=idle) for w, topics, _ in built))
    return [w for w, _, _ in built]


async def read_topic(conn: KafkaConnection, topic: str, *, committed: bool = True) -> list[Record]:
    """Every record of a topic, partition by partition: committed ones only, or also aborted ones."""
    async with running(reader(conn, "puente-test", committed=committed), conn, f"reading {topic}") as consumer:
        out = []
        for p in await partitions_of(consumer, topic):
            out += [r async for r in read_range(consumer, TopicPartition(topic, p))]
        return out


async def audit_docs(env: Env) -> list[dict[str, Any]]:
    """The decisions topic as auditors read it: one row per decision or dead letter."""
    records = await read_topic(env.conn, env.names.decisions)
    return [row for r in records for row in flatten(json.loads(r.value))]


async def open_feed(env: Env, partner: str, key_partner: str | None = None) -> list[dict[str, Any]]:
    """The decrypted views in a partner's feed (opened with ``key_partner``'s key if given: the
    opener is built by hand, past the subscriber's check that a key is the partner's own)."""
    from broker.crypto import FeedOpener
    from broker.keystore import Keystore, load_key_file

    private = load_key_file(env.key_file(key_partner or partner)).x25519_private()
    opener = FeedOpener(partner, private, Keystore(env.cfg.keys / "broker").load_verify_key())
    codec = alert_codec()
    return [open_record(r, opener, codec) for r in await read_topic(env.conn, env.feed(partner))]


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
        async with IngressPublisher(env.conn, agency, mac.key_id, mac, env.names) as pub:
            await pub.publish(batch)
    codec = alert_codec()
    return [codec.decode(codec.encode(a)) for a in alerts]
