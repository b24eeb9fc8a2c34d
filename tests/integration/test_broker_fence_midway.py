"""A slot's producer fenced while its transaction is being built: the worker starts again, nothing lost or doubled.

aiokafka's sender meets the fence in the background and marks the producer FATAL; the transaction's next send then
fails with aiokafka's IllegalOperation, which the worker did not take for a Kafka error: it stopped, "internal error
(IllegalOperation)", exit 70, for a slot another producer had simply taken over.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
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
    worker, topics, _ = build_worker(env.cfg, env.login("broker"), client_suffix="-fenced", audit_kept_forever=False)
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


async def test_a_partner_reading_uncommitted_records_sees_only_what_the_audit_delivers(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka keeps an aborted transaction's records in the log, marked aborted, and serves them to any reader that asks
    for ``read_uncommitted``: a partner's own client may. A slot's transaction is aborted here after its records reached
    Kafka (its producer fenced just before the commit, as a new owner fences a worker that hangs or dies mid-commit),
    and the retry decides otherwise for one partner (its agreement over meanwhile). That partner's feed, read
    uncommitted with its own login, holds only alerts the committed audit delivers to it. Then a transaction writing
    only feed records is aborted the same way: the worker starts again, reads them back from the slot's lifecycle
    partition and writes them once. Every committed feed holds each delivery once."""
    total = 600
    await publish_synthetic(env.cfg, env.conn, total, seed=23)
    worker, topics, _ = build_worker(env.cfg, env.login("broker"), client_suffix="-aborted", audit_kept_forever=False)
    victim = "USA"
    victim_feed = env.feed(victim)
    original = worker_module.BrokerWorker._transaction
    rivals: list[Producer] = []
    aborted: list[str] = []  # what each aborted transaction held

    def fence_before_commit(self: worker_module.BrokerWorker, state: worker_module.SlotState) -> None:
        made = state.producer
        commit = made.commit_transaction

        async def fenced_then_commit() -> None:
            made.commit_transaction = commit  # type: ignore[method-assign]
            rival = producer(self.config.conn, "rival", transactional_id=f"{self.config.group_id}-slot-{state.slot}",
                             enable_idempotence=True, acks="all")
            # InitProducerId aborts the slot's open transaction, whose records are all in the log by now.
            rivals.append(await start(rival, self.config.conn, "fencing a slot"))
            await commit()

        made.commit_transaction = fenced_then_commit  # type: ignore[method-assign]

    async def aborted_once(self: worker_module.BrokerWorker, state: worker_module.SlotState, msgs: list[Any],
                           outcomes: list[Any]) -> None:
        if not aborted and sum(out.topic == victim_feed for o in outcomes for out in o.feeds) > 0:
            aborted.append("decisions")
            fence_before_commit(self, state)
        elif len(aborted) == 1 and not msgs and state.unsent:
            aborted.append("feed records")
            fence_before_commit(self, state)
        await original(self, state, msgs, outcomes)

    decide_all = worker.pipeline.policy.decide_all

    def over_for_victim(alert: dict[str, Any], partners: Any, now: datetime, until: datetime | None = None) -> Any:
        verdicts = decide_all(alert, partners, now, until)
        if not aborted:
            return verdicts
        later = decide_all(alert, partners, now + timedelta(days=365 * 200), None)  # every agreement over
        return [b if p == victim else a for p, a, b in zip(partners, verdicts, later, strict=True)]

    monkeypatch.setattr(worker_module.BrokerWorker, "_transaction", aborted_once)
    monkeypatch.setattr(worker.pipeline.policy, "decide_all", over_for_victim)
    try:
        await worker.run(topics, idle_exit_s=5, max_restarts=5)
    finally:
        for rival in rivals:
            await stop_client(rival)
    assert aborted == ["decisions", "feed records"], aborted

    docs = await audit_docs(env)
    decided = [d for d in docs if d["kind"] == "DECISION"]
    per_pair = Counter((d["alert_id"], d["partner"]) for d in decided)
    assert len(per_pair) == total * len(env.policy.partners) and set(per_pair.values()) == {1}
    delivered = {p: {d["ref"] for d in decided if d["partner"] == p and d["decision"] != "WITHHOLD"}
                 for p in env.policy.partners}
    assert any(d["partner"] == victim and d["decision"] == "WITHHOLD" for d in decided)
    seen = ids(await open_feed(env, victim, committed=False))
    assert set(seen) <= delivered[victim], "a partner reads a view the audit does not deliver"
    for partner in env.policy.partners:
        feed_ids = ids(await open_feed(env, partner))
        assert len(feed_ids) == len(set(feed_ids)) and set(feed_ids) == delivered[partner], partner
    reports = await verify_topics(env.login("auditor"), {env.names.decisions: "decisions"}, env.checks())
    assert [f for r in reports for f in r.findings] == []
