"""A record read again keeps the outcome the store first gave it (RECEIVED, say), but its view goes to the ``--out``
copy only while the store still holds that very version's text (``Applied.holds_text``): a purge run between the two
reads (a restarted subscriber purges before it reads), or a recall later in the same batch, deleted the text, and the
copy must not get back what the store had to delete."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from partner_feed import FEED, BrokerKeys, EndTxnFails, Msg, Receipts, sealed, subscriber
from recall_views import recall_notice, updated

import broker.partner as partner
from broker.audit import ChainWriter
from broker.kafka import TopicPartition
from broker.partner_store import PartnerStore, Retention
from tests.unit.broker.test_partner_store import SECRET, _view

T0 = datetime.now(UTC) - timedelta(minutes=5)
TP = TopicPartition(FEED, 0)


async def _run(sub: partner.Subscriber, *records: Any, out: io.StringIO | None,
               receipts: Receipts | None = None) -> Receipts:
    receipts = receipts if receipts is not None else Receipts()
    if receipts.appended is None:
        receipts.appended = sub.clock
    await sub._batch({TP: [Msg(r) for r in records]}, out, receipts, ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    return receipts


def _scene(tmp_path: Path) -> tuple[PartnerStore, partner.Subscriber, Any, list[str]]:
    keys = BrokerKeys("2026a")
    store = PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL", retention=Retention({"COMBIFRON": 180}, 10))
    notes: list[str] = []
    sub = subscriber(keys, store, lambda: datetime.now(UTC), notes=notes)
    return store, sub, keys.sealer("broker-sign-2026a"), notes


@pytest.mark.parametrize("first_out", [True, False])
async def test_a_view_purged_before_its_batch_is_read_again_does_not_go_to_the_copy(
        tmp_path: Path, first_out: bool) -> None:
    """Applied (copied out or not), Kafka's commit fails, the purge deletes the text: read again with --out, the
    receipt keeps RECEIVED, but the copy gets no line of the purged text."""
    store, sub, sealer, _ = _scene(tmp_path)
    view = _view(summary=SECRET)
    v1 = sealed(sealer, view, 4, T0)
    with pytest.raises(RuntimeError, match="EndTxn"):
        await _run(sub, v1, out=io.StringIO() if first_out else None, receipts=EndTxnFails())
    assert store.purge(datetime.now(UTC) + timedelta(days=200), by_host_clock=True).total == 1
    out = io.StringIO()
    again = await _run(sub, v1, out=out)
    assert again.statuses() == ["RECEIVED"] and again.ended == ["commit"]
    assert out.getvalue() == "" and SECRET not in out.getvalue()
    assert store.show(view["alert_id"]).state == "EXPIRED"
    store.close()


async def test_a_view_recalled_later_in_its_batch_does_not_go_to_the_copy_when_read_again(tmp_path: Path) -> None:
    """[v1, recall], Kafka's commit fails, read again with --out: RECEIVED then RECALL_PASSED_ON as before, and the
    copy gets the recall notice only, never the recalled text."""
    store, sub, sealer, _ = _scene(tmp_path)
    view = _view(summary=SECRET)
    v1, notice = sealed(sealer, view, 4, T0), sealed(sealer, recall_notice(view, 2, None), 5, T0)
    with pytest.raises(RuntimeError, match="EndTxn"):
        await _run(sub, v1, notice, out=None, receipts=EndTxnFails())
    out = io.StringIO()
    again = await _run(sub, v1, notice, out=out)
    assert again.statuses() == ["RECEIVED", "RECALL_PASSED_ON"]
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and SECRET not in out.getvalue()
    store.close()


async def test_a_view_read_again_whose_text_the_store_still_holds_goes_to_the_copy(tmp_path: Path) -> None:
    """[v1, v2], Kafka's commit fails, read again with --out: v1's text is replaced (no line of it), v2's is held
    and goes to the copy, as a first read would send it."""
    store, sub, sealer, _ = _scene(tmp_path)
    view = _view(summary=SECRET)
    v1, v2 = sealed(sealer, view, 4, T0), sealed(sealer, updated(view, 2), 5, T0)
    with pytest.raises(RuntimeError, match="EndTxn"):
        await _run(sub, v1, v2, out=None, receipts=EndTxnFails())
    out = io.StringIO()
    again = await _run(sub, v1, v2, out=out)
    assert again.statuses() == ["RECEIVED", "RECEIVED"]
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["version"] == 2
    store.close()
