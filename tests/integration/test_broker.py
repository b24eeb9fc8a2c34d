"""The broker on the real Kafka: exactly-once routing to each partner's own encrypted view."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from puente_testing import (
    Env,
    audit_docs,
    ids,
    open_feed,
    own_ids,
    publish,
    read_topic,
    reference,
    run_broker,
)

from broker.keystore import Keystore
from policies import build_view, decide
from puente import wire
from puente.dev.synthetic import generate, publish_synthetic
from puente.errors import DecryptionError
from schemas import alert_codec

pytestmark = pytest.mark.kafka


def _synthetic(count: int, seed: int) -> list[dict]:
    return list(generate(count, seed=seed, now=datetime.now(UTC)))


async def test_each_entitled_partner_receives_its_own_view_exactly_once(env: Env) -> None:
    """Every partner's feed holds exactly the alerts the policy releases to it, once each, in its redacted view."""
    alerts = {a["alert_id"]: a for a in await publish(env, _synthetic(400, 31))}
    workers = await run_broker(env, workers=2)
    assert sum(w.metrics.inputs for w in workers) == 400
    docs = [d for d in await audit_docs(env) if d["kind"] == "DECISION"]
    per_pair = Counter((d["alert_id"], d["partner"]) for d in docs)
    assert set(per_pair.values()) == {1} and len(per_pair) == 400 * len(env.policy.partners)

    keys = Keystore(env.cfg.keys / "broker")
    assert len(own_ids(docs)) == len([d for d in docs if d["decision"] != "WITHHOLD"])  # each partner's own refs
    delivered_somewhere = 0
    for partner in env.policy.partners:
        feed = await open_feed(env, partner)
        feed_ids = ids(feed)
        assert len(feed_ids) == len(set(feed_ids)), f"{partner} received a duplicate"
        # The partner knows each alert by its own reference (the decision's ref), never by the agency's id.
        expected = {d["ref"]: d["alert_id"] for d in docs if d["partner"] == partner and d["decision"] != "WITHHOLD"}
        assert set(feed_ids) == set(expected)
        assert not set(feed_ids) & set(alerts)
        delivered_somewhere += len(feed_ids)
        for view in feed:
            alert = alerts[expected[view["alert_id"]]]
            assert view["alert_id"] == reference(env, partner, alert["alert_id"])
            decision = decide(alert, partner, env.policy, datetime.now(UTC))
            assert decision.delivers
            # The time differs from the broker's decision, but not the rules: the views must match exactly, the
            # partner's reference in place of the alert's id.
            assert view == {**build_view(alert, decision, env.policy,
                                         lambda agreement: keys.load_pseudonym_key(agreement).reveal()),
                            "alert_id": view["alert_id"]}
            assert not any(own in repr(view) for own in alerts), "a view names an agency's own alert id"
    assert delivered_somewhere > 0


async def test_a_partner_cannot_open_another_partners_feed(env: Env) -> None:
    """Records sealed for one partner do not open with another partner's key."""
    await publish_synthetic(env.cfg, env.conn, 150, seed=5)
    await run_broker(env)
    partners = sorted(env.policy.partners)
    sizes = {p: len(await read_topic(env.conn, env.feed(p))) for p in partners}
    target = max(sizes, key=lambda p: sizes[p])
    assert sizes[target] > 0
    other = next(p for p in partners if p != target)
    with pytest.raises(DecryptionError):
        await open_feed(env, target, key_partner=other)


async def test_withheld_alert_reaches_no_feed(env: Env) -> None:
    """A Panama-only secret alert is withheld from every foreign partner, with reasons in the audit."""
    alert = _synthetic(1, 77)[0]
    alert["markings"] = {**alert["markings"], "classification": "SECRETO", "caveats": ["PANAMA_ONLY"],
                         "releasable_to": ["COL", "USA", "CRI", "FEAN"]}
    await publish(env, [alert])
    await run_broker(env)
    for partner, info in env.policy.partners.items():
        feed = await read_topic(env.conn, env.feed(partner))
        if not info.internal:
            assert feed == [], f"{partner} received a Panama-only alert"
    decisions = {d["partner"]: d for d in await audit_docs(env) if d["kind"] == "DECISION"}
    for partner, info in env.policy.partners.items():
        if not info.internal:
            assert decisions[partner]["decision"] == "WITHHOLD"
            assert any("PANAMA_ONLY" in r for r in decisions[partner]["reasons"])


async def test_audit_records_never_carry_payload_content(env: Env) -> None:
    """Decision records name fields and rules, never the values of names, documents or remarks."""
    alerts = await publish(env, _synthetic(60, 12))
    await run_broker(env)
    raw = b"".join(r.value for r in await read_topic(env.conn, env.names.decisions))
    for alert in (a for a in alerts if a["alert_type"] == "WATCHLIST_HIT"):
        person = alert["payload"]["person"]
        for secret in (person["surnames"], person["documents"][0]["number"]):
            assert secret.encode() not in raw


async def test_payload_is_encrypted_on_the_feed_topic(env: Env) -> None:
    """Nothing readable of a delivered alert's content appears in the feed topic's bytes, and no record's key or
    headers name the agency's own alert id: they name the partner's reference of it."""
    alerts = await publish(env, _synthetic(100, 8))
    await run_broker(env)
    own = [a["alert_id"].encode() for a in alerts]
    sent = 0
    for partner in env.policy.partners:
        records = await read_topic(env.conn, env.feed(partner))
        blob = b"".join(r.value for r in records)
        for alert in alerts:
            assert alert_codec().encode(alert)[10:60] not in blob
            if alert.get("summary"):
                assert alert["summary"].encode() not in blob
        refs = {reference(env, partner, a["alert_id"]).encode() for a in alerts}
        for record in records:
            assert record.key in refs and record.header(wire.ALERT_ID) == record.key
            plain = record.key + b"".join(name.encode() + (value or b"") for name, value in record.headers)
            assert not any(alert_id in plain or alert_id in record.value for alert_id in own)
        sent += len(records)
    assert sent > 0


async def test_a_quiet_worker_long_polls_and_gathers_again_when_alerts_come(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that has read nothing for QUIET_AFTER_S long-polls (its fetches answered at the first byte), so an
    idle worker does not fetch every 15 ms; the first alert after the quiet spell is decided, and the worker gathers
    again with its settings. The settings reach aiokafka's fetcher itself, which builds the requests from them."""
    from adapters.publisher import IngressPublisher
    from broker import worker as worker_module
    from broker.service import build_worker

    # Each change: how many inputs the worker had decided, what it set, and what the fetcher then held.
    calls: list[tuple[int, tuple[int, int], tuple[int, int]]] = []
    real = worker_module.set_fetching

    def spy(consumer: Any, *, max_wait_ms: int, min_bytes: int) -> None:
        real(consumer, max_wait_ms=max_wait_ms, min_bytes=min_bytes)
        fetcher = consumer._fetcher
        calls.append((worker.metrics.inputs, (max_wait_ms, min_bytes),
                      (fetcher._fetch_max_wait_ms, fetcher._fetch_min_bytes)))

    monkeypatch.setattr(worker_module, "set_fetching", spy)
    quiet = (max(env.cfg.fetch_max_wait_ms, worker_module.QUIET_FETCH_WAIT_MS), 1)
    gathering = (env.cfg.fetch_max_wait_ms, env.cfg.fetch_min_bytes)
    assert quiet != gathering
    alert = next(a for a in _synthetic(200, 41) if a["agency"] == "SENAN")
    mac = Keystore(env.cfg.keys / "agencies" / "SENAN").load_agency_mac("SENAN")
    worker, topics, _ = build_worker(env.cfg, env.login("broker"), client_suffix="-quiet", audit_kept_forever=False)
    running = asyncio.create_task(worker.run(topics))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    try:
        while not (worker._owned and calls and calls[-1][1] == quiet) and loop.time() < deadline:
            await asyncio.sleep(0.05)  # joined, holding its slots, and quiet
        assert calls and calls[-1][1:] == (quiet, quiet)
        async with IngressPublisher(env.login("agency-SENAN"), "SENAN", mac.key_id, mac, env.names) as pub:
            await pub.send_raw(*pub.frame(alert))
            await pub.flush()
        while worker.metrics.inputs < 1 and loop.time() < deadline:
            await asyncio.sleep(0.05)
        assert worker.metrics.inputs == 1
    finally:
        worker.stop()
        await running
    # Back to gathering when the alert came (before it was decided), and never twice the same in a row.
    after = [c for c in calls if c[1] == gathering]
    assert after and after[0][0] == 0 and after[0][2] == gathering
    assert all(a[1] != b[1] for a, b in itertools.pairwise(calls))
    docs = [d for d in await audit_docs(env) if d["kind"] == "DECISION"]
    assert Counter(d["alert_id"] for d in docs) == {alert["alert_id"]: len(env.policy.partners)}


async def test_alerts_that_trickle_in_while_the_worker_commits_are_all_processed(env: Env) -> None:
    """Small bursts arriving while a slot's previous transaction is still committing are picked up too,
    without waiting for more input; each is decided once."""
    from adapters.publisher import IngressPublisher
    from broker.service import build_worker

    alerts = [a for a in _synthetic(600, 37) if a["agency"] == "SENAN"][:120]
    mac = Keystore(env.cfg.keys / "agencies" / "SENAN").load_agency_mac("SENAN")
    worker, topics, _ = build_worker(env.cfg, env.login("broker"), client_suffix="-trickle", audit_kept_forever=False)
    running = asyncio.create_task(worker.run(topics))
    try:
        async with IngressPublisher(env.login("agency-SENAN"), "SENAN", mac.key_id, mac, env.names) as pub:
            while not worker._owned:  # joined and holding its slots
                await asyncio.sleep(0.05)
            for first in range(0, len(alerts), 3):
                for alert in alerts[first:first + 3]:
                    await pub.send_raw(*pub.frame(alert))
                await pub.flush()
                await asyncio.sleep(0.02)
        deadline = asyncio.get_running_loop().time() + 60
        while worker.metrics.inputs < len(alerts) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        assert worker.metrics.inputs == len(alerts)
    finally:
        worker.stop()
        await running
    docs = [d for d in await audit_docs(env) if d["kind"] == "DECISION"]
    assert Counter(d["alert_id"] for d in docs) == {a["alert_id"]: len(env.policy.partners) for a in alerts}
