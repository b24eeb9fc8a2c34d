"""A slot's producer fenced while its transaction is being built: the worker starts again, nothing lost or doubled.

aiokafka's sender meets the fence in the background and marks the producer FATAL; the transaction's next send then
fails with aiokafka's IllegalOperation, which the worker did not take for a Kafka error: it stopped, "internal error
(IllegalOperation)", exit 70, for a slot another producer had simply taken over.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from puente_testing import Env, audit_docs, ids, open_feed

from broker import worker as worker_module
from broker.auditor import verify_topics
from broker.kafka import Producer, broken_for_good, producer, start, stop_client
from broker.service import build_worker
from puente.dev.synthetic import publish_synthetic

pytestmark = pytest.mark.kafka


async def test_a_slot_fenced_while_its_transaction_is_built_restarts_the_worker(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another producer takes a slot's transactional id just as a large batch's transaction begins (what a new
    owner's producer does). The worker starts again, the batch is decided once, and the audit verifies."""
    total = 3000
    await publish_synthetic(env.cfg, env.conn, total, seed=21)
    worker, topics, _ = build_worker(env.cfg, env.login("broker"), client_suffix="-fenced")
    original = worker_module.BrokerWorker._transaction
    rivals: list[Producer] = []
    restarts: list[str] = []

    async def fenced_midway(self: worker_module.BrokerWorker, state: worker_module.SlotState, msgs: list[Any],
                            outcomes: list[Any]) -> None:
        if not rivals and len(msgs) > 100:
            rival = producer(self.config.conn, "rival", transactional_id=f"{self.config.group_id}-slot-{state.slot}",
                             enable_idempotence=True, acks="all")
            rivals.append(await start(rival, self.config.conn, "fencing a slot"))  # InitProducerId: the fence
            slot_producer = state.producer
            send_batch = slot_producer.send_batch

            async def then_fenced(*args: Any, **kwargs: Any) -> Any:
                # The first batch handed over has the sender add its partition to the transaction, which Kafka
                # refuses as fenced; the build goes on once the sender has stopped for it (as when the refusal
                # comes back while the batch's records are still being worked out), so its next send meets it.
                delivered = await send_batch(*args, **kwargs)
                for _ in range(1000):
                    if broken_for_good(slot_producer) is not None:
                        break
                    await asyncio.sleep(0.01)
                return delivered

            slot_producer.send_batch = then_fenced  # type: ignore[method-assign]
        await original(self, state, msgs, outcomes)

    warning = worker_module.log.warning

    def noted(event: str, **fields: Any) -> None:
        if "restarting" in event:
            restarts.append(str(fields.get("error")))
        warning(event, **fields)

    monkeypatch.setattr(worker_module.BrokerWorker, "_transaction", fenced_midway)
    monkeypatch.setattr(worker_module.log, "warning", noted)
    try:
        await worker.run(topics, idle_exit_s=5, max_restarts=3)
    finally:
        for rival in rivals:
            await stop_client(rival)
    assert rivals and restarts and "ProducerFenced" in restarts[0], restarts

    docs = await audit_docs(env)
    per_pair = Counter((d["alert_id"], d["partner"]) for d in docs if d["kind"] == "DECISION")
    assert len(per_pair) == total * len(env.policy.partners) and set(per_pair.values()) == {1}
    for partner in env.policy.partners:
        feed_ids = ids(await open_feed(env, partner))
        assert len(feed_ids) == len(set(feed_ids))
        # the partner's reference of each alert delivered to it, and no other
        assert set(feed_ids) == {d["ref"] for d in docs if d["kind"] == "DECISION" and d["partner"] == partner
                                 and d["decision"] != "WITHHOLD"}
    reports = await verify_topics(env.login("auditor"), {env.names.decisions: "decisions"}, env.checks())
    assert [f for r in reports for f in r.findings] == []
