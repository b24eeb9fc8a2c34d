"""The worker's idle exit on the real Kafka: it stops only once caught up with every assigned partition, as Kafka
answers (the last stable offsets, the worker reading read_committed), so even a quiet time of none, with its first
fetches after the join bringing nothing, routes every record committed before it started, transaction markers and
aborted records counting as read."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from puente_testing import Env, audit_docs, publish

import broker.worker
from adapters.publisher import frame_alert
from broker.keystore import Keystore
from broker.service import build_worker
from puente.dev.synthetic import generate

pytestmark = pytest.mark.kafka
EMPTY_FETCHES = 3  # the worker's first fetches once joined that bring nothing, however many records wait


def _first_fetches_empty(monkeypatch: pytest.MonkeyPatch, worker: broker.worker.BrokerWorker) -> None:
    """Make the worker's group consumer answer every fetch before the worker is joined, and its first
    ``EMPTY_FETCHES`` after, with nothing (as fetches slower than the quiet time would), the records staying in Kafka
    for the fetches after. Before the join nothing is lost: a slot's partition is paused until it is loaded."""
    made = broker.worker.consumer

    def consumer(*args: Any, **kwargs: Any) -> Any:
        group = made(*args, **kwargs)
        fetch, empty = group.getmany, [0]

        async def getmany(*tps: Any, **options: Any) -> Any:
            if not worker.ready or empty[0] < EMPTY_FETCHES:
                if worker.ready:
                    empty[0] += 1
                await asyncio.sleep(0.01)  # no real fetch in flight at the join, to bring records at once
                return {}
            return await fetch(*tps, **options)

        group.getmany = getmany
        return group

    monkeypatch.setattr(broker.worker, "consumer", consumer)


async def test_a_worker_quiet_for_no_time_still_routes_every_committed_record_and_stops(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alerts published plainly, then some in a committed transaction and some in an aborted one (markers and
    aborted records past the last record decided): a worker with a quiet time of 0 s, whose first fetches once
    joined bring nothing, decides every committed alert, exactly once per partner, none of the aborted ones, and
    returns (it reads past the markers)."""
    alerts = list(generate(300, seed=47, now=datetime.now(UTC)))
    senan = [a for a in alerts if a["agency"] == "SENAN"][:20]
    committed, aborted = senan[:10], senan[10:]
    plain = await publish(env, [a for a in alerts if a not in senan])
    mac = Keystore(env.cfg.keys / "agencies" / "SENAN").load_agency_mac("SENAN")
    writer = AIOKafkaProducer(**env.conn.aiokafka(), transactional_id=f"{env.cfg.topic_prefix}-idle-exit")
    await writer.start()
    try:
        for alerts, commit in ((committed, True), (aborted, False)):
            await writer.begin_transaction()
            for alert in alerts:
                key, value, headers = frame_alert("SENAN", mac.key_id, mac, alert)
                await writer.send(env.names.ingress("SENAN"), value, key=key, headers=headers)
            await (writer.commit_transaction() if commit else writer.abort_transaction())
    finally:
        await writer.stop()

    worker, topics, _ = build_worker(env.cfg, env.login("broker"), audit_kept_forever=False)
    _first_fetches_empty(monkeypatch, worker)
    await asyncio.wait_for(worker.run(topics, idle_exit_s=0.0), 240)
    docs = [d for d in await audit_docs(env) if d["kind"] == "DECISION"]
    per_pair = Counter((d["alert_id"], d["partner"]) for d in docs)
    assert set(per_pair.values()) == {1}
    decided = {alert_id for alert_id, _ in per_pair}
    assert decided == {a["alert_id"] for a in [*plain, *committed]}
    assert len(per_pair) == len(decided) * len(env.policy.partners)
