"""The worker's idle exit on the real Kafka: it stops only once caught up with every assigned partition, as Kafka
answers (the last stable offsets, the worker reading read_committed), so even a quiet time of none routes every
record committed before it started, transaction markers and aborted records counting as read."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer
from puente_testing import Env, audit_docs, publish, run_broker

from adapters.publisher import frame_alert
from broker.keystore import Keystore
from puente.dev.synthetic import generate

pytestmark = pytest.mark.kafka


async def test_a_worker_quiet_for_no_time_still_routes_every_committed_record_and_stops(env: Env) -> None:
    """Alerts published plainly, then some in a committed transaction and some in an aborted one (markers and
    aborted records past the last record decided): ``run_broker`` with a quiet time of 0 s decides every committed
    alert, exactly once per partner, none of the aborted ones, and returns (it reads past the markers)."""
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

    await asyncio.wait_for(run_broker(env, idle=0.0), 240)
    docs = [d for d in await audit_docs(env) if d["kind"] == "DECISION"]
    per_pair = Counter((d["alert_id"], d["partner"]) for d in docs)
    assert set(per_pair.values()) == {1}
    decided = {alert_id for alert_id, _ in per_pair}
    assert decided == {a["alert_id"] for a in [*plain, *committed]}
    assert len(per_pair) == len(decided) * len(env.policy.partners)
