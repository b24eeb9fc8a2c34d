"""What an earlier run's ``--out`` copy is told when the store deletes the text it passed there: a note naming the
feed place and the alert when this run writes no copy."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from partner_feed import FEED, BrokerKeys, Msg, Receipts, sealed, subscriber
from recall_views import recall_notice

from broker.audit import ChainWriter
from broker.kafka import TopicPartition
from broker.partner import RECALL_PASSED_ON
from broker.partner_store import PartnerStore, Retention
from tests.unit.broker.test_partner_store import T0, _view

KEY = "broker-sign-2026a"
COPY = "--out copy"  # what every note about a copy says


@pytest.fixture
def keys() -> BrokerKeys:
    return BrokerKeys("2026a")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PartnerStore]:
    opened = PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL",
                               retention=Retention({"COMBIFRON": 180}, fallback_days=10))
    yield opened
    opened.close()


async def _run(keys: BrokerKeys, store: PartnerStore, at: datetime, view: dict[str, Any], offset: int,
               out: io.StringIO | None, notes: list[str]) -> list[str]:
    """One batch of one record of ``view`` at feed offset ``offset``, sealed and read at ``at``: its statuses."""
    receipts = Receipts()
    sub = subscriber(keys, store, lambda: at, notes=notes)
    record = sealed(keys.sealer(KEY), view, offset, at)
    await sub._batch({TopicPartition(FEED, 0): [Msg(record)]}, out, receipts,
                     ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    return list(receipts.statuses())


def _no_text(view: dict[str, Any], said: str) -> None:
    """Nothing of the alert's text in ``said``."""
    assert view["summary"] not in said and view["payload"]["remarks"] not in said
    assert view["payload"]["patrol_unit"] not in said


async def _passed_on(keys: BrokerKeys, store: PartnerStore, view: dict[str, Any]) -> str:
    """An earlier run copies ``view`` out: the line it wrote."""
    out = io.StringIO()
    assert await _run(keys, store, T0, view, 0, out, []) == ["RECEIVED"]
    return out.getvalue()


async def test_a_recall_an_earlier_run_passed_on_is_named_in_a_note_when_this_run_writes_no_copy(
        keys: BrokerKeys, store: PartnerStore) -> None:
    """A recall of an alert copied out before, read by a run without --out: RECALL_PASSED_ON, and one note names the
    feed place and the alert and says the copy must apply it; an alert never passed on is acknowledged, no note."""
    v1, other = _view(), _view("senan-gofast-seizure")
    await _passed_on(keys, store, v1)
    notes: list[str] = []
    assert await _run(keys, store, T0, other, 1, None, notes) == ["RECEIVED"]
    assert await _run(keys, store, T0, recall_notice(v1, 2, "ERROR"), 2, None, notes) == [RECALL_PASSED_ON]
    assert await _run(keys, store, T0, recall_notice(other, 2, "ERROR"), 3, None, notes) == ["RECALLED"]
    [note] = [n for n in notes if COPY in n]
    assert note.startswith(f"{FEED}:0:2: alert {v1['alert_id']} recalled (version 2)")
    assert "must apply the recall" in note and other["alert_id"] not in note
    _no_text(v1, note)


async def test_a_recall_in_a_run_with_a_copy_goes_there_and_needs_no_note(keys: BrokerKeys,
                                                                          store: PartnerStore) -> None:
    """The recall line written to this run's copy is what tells it: no note."""
    v1 = _view()
    await _passed_on(keys, store, v1)
    out, notes = io.StringIO(), list[str]()
    assert await _run(keys, store, T0, recall_notice(v1, 2, "ERROR"), 1, out, notes) == [RECALL_PASSED_ON]
    assert json.loads(out.getvalue())["lifecycle"]["action"] == "RECALL"
    assert not [n for n in notes if COPY in n]
