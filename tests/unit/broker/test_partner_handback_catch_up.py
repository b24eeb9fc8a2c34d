"""A clean handover between two instances' stores (no crash): a store given back a partition another store read on
since reads the records in between as a catch-up, applying and receipting only those of alerts it holds or held, so
a recall (or correction) the other store could not apply reaches the store holding the alert; records of alerts it
never held stay the other store's, neither stored nor receipted here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from partner_feed import FEED, BrokerKeys, GroupFeed, Receipts, run_batch, sealed, stub_committed, subscriber
from recall_views import recall_notice

from broker.kafka import TopicPartition
from broker.partner import RECALL_NOT_HELD, Subscriber
from broker.partner_store import PartnerStore, Retention
from tests.unit.broker.test_partner_store import SECRET, _bytes, _view

T0 = datetime.now(UTC) - timedelta(minutes=5)
TP = TopicPartition(FEED, 0)
RETENTION = Retention({"COMBIFRON": 180}, fallback_days=10)


def _receipts(receipts: Receipts) -> list[tuple[str, str, str]]:
    return [(x["feed"], x["status"], x["store"]) for x in receipts.sent if x["kind"] == "RECEIPT"]


class _Pair:
    """Instance main and instance standby of COL, each with its own store."""

    def __init__(self, tmp_path: Path) -> None:
        self.keys = BrokerKeys("2026a")
        self.sealer = self.keys.sealer("broker-sign-2026a")
        self.main_store = PartnerStore.open(tmp_path / "main" / "feed.sqlite", "COL", retention=RETENTION)
        self.standby_store = PartnerStore.open(tmp_path / "standby" / "feed.sqlite", "COL", retention=RETENTION)
        self.notes: list[str] = []

    def main(self) -> Subscriber:
        return subscriber(self.keys, self.main_store, lambda: datetime.now(UTC), notes=self.notes)

    def standby(self) -> Subscriber:
        sub = subscriber(self.keys, self.standby_store, lambda: datetime.now(UTC), notes=self.notes)
        sub.instance = "standby"
        return sub

    def close(self) -> None:
        self.main_store.close()
        self.standby_store.close()


async def test_a_recall_the_standby_could_not_apply_reaches_main_when_it_gets_the_partition_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Main stored V (0) and committed; the standby took the partition and read another alert's view W (1) and V's
    recall R (2): RECALL_NOT_HELD, W its own. Main, given the partition back (the group at 3, the standby's), reads 1
    and 2 again: R is RECALLED in main's store and receipted under main's store, V's text gone from its file; W is
    passed over (the standby's: no second holder, no second receipt); past 3 every record is main's again."""
    pair = _Pair(tmp_path)
    view = _view(summary=f"Avistamiento reportado por {SECRET}")
    v = sealed(pair.sealer, view, 0, T0)
    w = sealed(pair.sealer, _view("paso-canoas-migrant-flow"), 1, T0)
    r = sealed(pair.sealer, recall_notice(view, 2, "ERROR"), 2, T0)
    later = sealed(pair.sealer, _view("tocumen-red-notice-hit"), 3, T0)
    main = pair.main()
    stub_committed(monkeypatch, None)
    await main._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    assert (await run_batch(main, v))[1].statuses() == ["RECEIVED"]
    standby = pair.standby()
    stub_committed(monkeypatch, (1, main.commit_tag))
    await standby._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    _, theirs = await run_batch(standby, w, r)
    assert theirs.statuses() == ["RECEIVED", RECALL_NOT_HELD]
    # The note sends the operator to what really applies it, not to a verb that does not exist.
    said = next(n for n in pair.notes if RECALL_NOT_HELD in n)
    assert "apply the recall there" not in said and "is next given this partition" in said
    main_again = pair.main()
    stub_committed(monkeypatch, (3, standby.commit_tag))
    feed = GroupFeed()
    await main_again._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [1] and "read this partition up to offset 1" in pair.notes[-1]
    _, ours = await run_batch(main_again, w, r, later)
    main_id = pair.main_store.store_id
    assert _receipts(ours) == [(f"{FEED}:0:2", "RECALLED", main_id), (f"{FEED}:0:3", "RECEIVED", main_id)]
    assert ours.offsets == {TP: 4}
    assert pair.main_store.show(view["alert_id"]).state == "RECALLED"
    assert SECRET.encode() not in _bytes(pair.main_store.path)
    assert not pair.main_store.has_row(w.key.decode()) and pair.main_store.catch_up(FEED, 0) is None
    pair.close()


async def test_a_correction_and_its_recall_reach_both_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Main held V v1 (0); the standby stored v2 (1); main, given the partition back, catches up on v2 (it holds V)
    and reads the recall (2): RECALLED. The standby, given the partition back in turn (the group at 3, main's),
    reads the recall too: its v2 text goes from its file, rather than stay there for good."""
    pair = _Pair(tmp_path)
    v1 = _view()
    v2 = _view(version=2, summary=f"Corregido: {SECRET}")
    main = pair.main()
    stub_committed(monkeypatch, None)
    await main._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    assert (await run_batch(main, sealed(pair.sealer, v1, 0, T0)))[1].statuses() == ["RECEIVED"]
    standby = pair.standby()
    stub_committed(monkeypatch, (1, main.commit_tag))
    await standby._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    rec2 = sealed(pair.sealer, v2, 1, T0)
    assert (await run_batch(standby, rec2))[1].statuses() == ["RECEIVED"]
    recall = sealed(pair.sealer, recall_notice(v2, 3, "ERROR"), 2, T0)
    main_again = pair.main()
    stub_committed(monkeypatch, (2, standby.commit_tag))
    feed = GroupFeed()
    await main_again._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [1]
    assert (await run_batch(main_again, rec2, recall))[1].statuses() == ["RECEIVED", "RECALLED"]
    assert pair.main_store.show(v1["alert_id"]).state == "RECALLED"
    standby_again = pair.standby()
    stub_committed(monkeypatch, (3, main_again.commit_tag))
    feed = GroupFeed()
    await standby_again._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [2]
    _, caught = await run_batch(standby_again, recall)
    assert _receipts(caught) == [(f"{FEED}:0:2", "RECALLED", pair.standby_store.store_id)]
    assert pair.standby_store.show(v1["alert_id"]).state == "RECALLED"
    assert SECRET.encode() not in _bytes(pair.standby_store.path)
    pair.close()


async def test_a_store_that_never_read_the_partition_reads_on_from_the_group(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store with no offset of its own in a partition another instance read holds nothing from it: no catch-up."""
    pair = _Pair(tmp_path)
    standby = pair.standby()
    stub_committed(monkeypatch, (7, f"main|{pair.main_store.store_id}"))
    feed = GroupFeed()
    await standby._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [] and pair.standby_store.catch_up(FEED, 0) is None
    pair.close()
