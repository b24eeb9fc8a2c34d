"""What an earlier run's ``--out`` copy is told when the store deletes or replaces the text it passed there: a
content-free end line in this run's copy, or a note naming the feed place and the alert when this run writes none."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from partner_feed import FEED, BrokerKeys, Msg, Receipts, sealed, subscriber
from recall_views import recall_notice, updated

from broker.audit import ChainWriter
from broker.kafka import TopicPartition
from broker.partner import RECALL_PASSED_ON, open_copy
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


def _expired(view: dict[str, Any], version: int, at: datetime) -> dict[str, Any]:
    later: dict[str, Any] = updated(view, version, markings={**view["markings"], "expires_at": at - timedelta(days=1)})
    return later


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


async def test_a_recall_of_an_alert_whose_text_the_store_no_longer_holds_is_named_all_the_same(
        keys: BrokerKeys, store: PartnerStore) -> None:
    """The copy keeps what the store deleted (here: a version that arrived expired): a recall read later without
    --out still gets its note, whatever the store held."""
    v1 = _view()
    await _passed_on(keys, store, v1)
    notes: list[str] = []
    assert await _run(keys, store, T0, _expired(v1, 2, T0), 1, None, notes) == ["EXPIRED"]
    assert await _run(keys, store, T0, recall_notice(v1, 3, "ERROR"), 2, None, notes) == [RECALL_PASSED_ON]
    assert [n.split(":")[2] for n in notes if COPY in n] == ["1", "2"]


@pytest.mark.parametrize("ends", ["expired", "retention"])
async def test_a_version_that_ends_an_alert_passed_on_writes_a_content_free_line_to_this_runs_copy(
        keys: BrokerKeys, store: PartnerStore, tmp_path: Path, ends: str) -> None:
    """A newer version that arrives expired, or past the agreement's retention, deletes the text held: this run's
    copy gets a line naming the alert, the version, EXPIRED and the expiry, and nothing of the alert's text; the
    copy with it opens as a copy again. The receipt stays EXPIRED: nothing about the version is passed on."""
    v1 = _view()
    first = await _passed_on(keys, store, v1)
    at = T0 + timedelta(hours=1) if ends == "expired" else T0 + timedelta(days=181)
    v2 = _expired(v1, 2, at) if ends == "expired" else updated(v1, 2)
    out, notes = io.StringIO(), list[str]()
    assert await _run(keys, store, at, v2, 1, out, notes) == ["EXPIRED"]
    line = out.getvalue()
    assert json.loads(line) == {"alert_id": v1["alert_id"], "alert_type": v1["alert_type"], "version": 2,
                                "status": "EXPIRED",
                                "expires_at": "2026-02-28T13:00:00Z" if ends == "expired" else None}
    _no_text(v1, line)
    assert store.show(v1["alert_id"]).state == "EXPIRED" and not [n for n in notes if COPY in n]
    path = tmp_path / "copy.jsonl"
    path.write_text(first + line, "utf-8")
    with open_copy(path, notes.append):
        pass
    assert path.read_text("utf-8") == first + line


async def test_a_version_that_ends_an_alert_passed_on_is_named_in_a_note_when_this_run_writes_no_copy(
        keys: BrokerKeys, store: PartnerStore) -> None:
    """Without --out, one note names the feed place and the alert and says the copy must delete it."""
    v1 = _view()
    await _passed_on(keys, store, v1)
    notes: list[str] = []
    assert await _run(keys, store, T0, _expired(v1, 2, T0), 1, None, notes) == ["EXPIRED"]
    [note] = [n for n in notes if COPY in n]
    assert note.startswith(f"{FEED}:0:1: alert {v1['alert_id']} version 2 ended (EXPIRED)")
    assert "must delete the alert" in note
    _no_text(v1, note)


async def test_a_version_that_ends_an_alert_never_passed_on_tells_no_copy(keys: BrokerKeys,
                                                                          store: PartnerStore) -> None:
    """No copy holds it: no line, no note about one."""
    v1 = _view()
    notes: list[str] = []
    assert await _run(keys, store, T0, v1, 0, None, notes) == ["RECEIVED"]
    out = io.StringIO()
    assert await _run(keys, store, T0, _expired(v1, 2, T0), 1, out, notes) == ["EXPIRED"]
    assert out.getvalue() == "" and not [n for n in notes if COPY in n]


async def test_a_correction_of_an_alert_passed_on_is_named_in_a_note_when_this_run_writes_no_copy(
        keys: BrokerKeys, store: PartnerStore) -> None:
    """A newer version replaces the text an earlier run copied out: without --out a note says the copy holds the
    older one; with --out the new version's line is what tells it."""
    v1 = _view()
    await _passed_on(keys, store, v1)
    notes: list[str] = []
    assert await _run(keys, store, T0, updated(v1, 2), 1, None, notes) == ["RECEIVED"]
    [note] = [n for n in notes if COPY in n]
    assert note.startswith(f"{FEED}:0:1: alert {v1['alert_id']} version 2 replaced version 1")
    _no_text(v1, note)
    out = io.StringIO()
    assert await _run(keys, store, T0, updated(v1, 3), 2, out, notes) == ["RECEIVED"]
    assert json.loads(out.getvalue())["version"] == 3 and len([n for n in notes if COPY in n]) == 1


async def test_the_purge_names_each_alert_passed_on_whose_text_it_deleted(keys: BrokerKeys,
                                                                          store: PartnerStore) -> None:
    """The store's purge deletes the text of an alert copied out before (past its agreement's retention, which no
    line of the copy states): one note names it and says the copy must delete it too, without its text; an alert
    never copied out is not named."""
    copied, other = _view(), _view("senan-gofast-seizure")
    await _passed_on(keys, store, copied)
    assert await _run(keys, store, T0, other, 1, None, []) == ["RECEIVED"]
    notes: list[str] = []
    subscriber(keys, store, lambda: T0 + timedelta(days=400), notes=notes).purge(force=True)
    [note] = [n for n in notes if COPY in n]
    assert copied["alert_id"] in note and other["alert_id"] not in note and "must delete" in note
    _no_text(copied, note)
