"""A subscriber run without --follow ends only once caught up with its feed as Kafka answers, whatever the quiet
time: a fetch slow to come back while committed records wait does not end it (``Subscriber._caught_up``)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from puente_testing import Env

import broker.partner as partner
from broker.partner import Subscriber, opener_for, receipt_signer
from schemas import alert_codec
from tests.integration.test_partner_store import PARTNER, Feed, _receipts, _view

pytestmark = pytest.mark.kafka

FETCH_WAIT_MS = 3_000  # how long Kafka holds each of the subscriber's fetches: six quiet times of 0.5 s


async def test_a_slow_fetch_with_committed_records_waiting_does_not_end_a_quiet_run(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five committed feed records, and a feed consumer whose every fetch Kafka holds 3 s (fetch.min.bytes far above
    what the feed holds): the 0.5 s quiet time runs out before they come, Kafka says the feed ends past the subscriber's
    position, and the run reads on; it ends, caught up, with each of the five opened and receipted. (Quiet alone, it
    ended with none read.)"""
    made = partner.consumer

    def slow(*args: Any, **options: Any) -> Any:
        return made(*args, **options, fetch_min_bytes=64 << 20, fetch_max_wait_ms=FETCH_WAIT_MS)

    monkeypatch.setattr(partner, "consumer", slow)
    async with Feed(env, PARTNER) as feed:
        for n in range(5):
            await feed.send(_view("tocumen-red-notice-hit", alert_id=f"SNM:IDLE-{n}"))
    key = env.key_file(PARTNER)
    sub = Subscriber(env.login(f"partner-{PARTNER}"), PARTNER, env.feed(PARTNER), env.names.receipts(PARTNER),
                     opener_for(PARTNER, key, None), alert_codec(), signer=receipt_signer(PARTNER, key, None))
    stats = await sub.run(io.StringIO(), idle_exit_s=0.5)
    assert stats.received == 5
    assert sorted(r["status"] for r in await _receipts(env, PARTNER) if r["kind"] == "RECEIPT") == ["RECEIVED"] * 5
