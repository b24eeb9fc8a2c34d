"""The partner's store: the version rule, recalls that really delete, retention, private files, shared use."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from partner_feed import KAFKA_LATER, ms
from recall_views import recall_notice, updated

from broker.kafka import KafkaConnection
from broker.partner import Owner, ReceiptSigner, Subscriber, _older_than_kept, _unlinked, resume_at
from broker.partner_store import (
    SCHEMA_VERSION,
    Delivery,
    Held,
    Outcome,
    PartnerStore,
    Retention,
    default_store_path,
    judge,
)
from policies import DEFAULT_DIR, load_policy_set
from puente.errors import CodecError, NotInStore, StoreBusy, StoreError
from puente.wire import Record
from schemas import alert_codec, alert_from_json, to_json

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "Zaqueo-Quintero-7731"  # a distinctive value of the view that is later recalled
RETENTION = Retention({"COMBIFRON": 180, "SHORT": 10}, fallback_days=10)


def _view(name: str = "darien-armed-group-sighting", **changes: Any) -> dict[str, Any]:
    codec = alert_codec()
    doc = json.loads((DEFAULT_DIR.parent / "examples" / f"{name}.json").read_text("utf-8"))
    alert = codec.decode(codec.encode(alert_from_json(doc)))
    alert.update(changes)
    return codec.decode(codec.encode(alert))  # what a subscriber decodes: schema-valid


def _at(view: dict[str, Any], offset: int, agreement: str | None = "COMBIFRON") -> Delivery:
    return Delivery.of(view, f"t.feed.col:0:{offset}", agreement)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PartnerStore]:
    """A fresh store of partner COL with a 180-day agreement (COMBIFRON) and a 10-day one (SHORT), that purges by the
    test's clock (``KAFKA_LATER``)."""
    opened = PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL", retention=RETENTION)
    opened.keep_kafka_time(KAFKA_LATER)
    yield opened
    opened.close()


def _bytes(path: Path) -> bytes:
    """The store's file and its WAL and shared-memory files, as they are on disk."""
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal"),
                                             path.with_name(path.name + "-shm")) if p.exists())


def test_a_first_view_is_received_and_kept_with_its_context(store: PartnerStore) -> None:
    """A new alert is RECEIVED and kept with its view (as to_json gives it), feed location, agreement and expiry."""
    view = _view(markings={**_view()["markings"], "expires_at": T0 + timedelta(days=30)})
    applied = store.apply(_at(view, 7), T0)
    assert (applied.outcome, applied.version, applied.held_version) == (Outcome.RECEIVED, 1, None)
    entry = store.show(view["alert_id"])
    assert entry.view == to_json(view) and entry.state == "HELD" and entry.version == 1
    assert (entry.feed, entry.agreement, entry.expires_at) == ("t.feed.col:0:7", "COMBIFRON", T0 + timedelta(days=30))
    assert entry.first_received_at == entry.received_at == T0


def test_a_higher_version_replaces_the_one_held(store: PartnerStore) -> None:
    """Version 2 replaces version 1: the view held is the new one, first receipt time kept."""
    first = _view()
    store.apply(_at(first, 1), T0)
    second = updated(first, 2, summary="corrected headcount")
    applied = store.apply(_at(second, 2), T0 + timedelta(hours=1))
    assert (applied.outcome, applied.held_version) == (Outcome.RECEIVED, 1)
    entry = store.show(first["alert_id"])
    assert entry.version == 2 and entry.action == "UPDATE" and entry.view == to_json(second)
    assert entry.first_received_at == T0 and entry.received_at == T0 + timedelta(hours=1)


def test_the_same_version_again_changes_nothing(store: PartnerStore) -> None:
    """The version held, sent again in another record, is a DUPLICATE and changes nothing."""
    view = _view()
    store.apply(_at(view, 1), T0)
    applied = store.apply(_at(view, 5), T0 + timedelta(hours=2))
    assert applied.outcome is Outcome.DUPLICATE
    entry = store.show(view["alert_id"])
    assert (entry.feed, entry.received_at) == ("t.feed.col:0:1", T0)


def test_the_same_record_redelivered_gets_the_status_it_first_had(store: PartnerStore) -> None:
    """A batch redelivered after a crash between the store's commit and Kafka's: its receipts were aborted, so
    each record gets again the status it first had, and the store does not change."""
    view = _view()
    store.apply(_at(view, 1), T0)
    notice = recall_notice(view, 2, "ERROR")
    store.apply(_at(notice, 2), T0)
    assert store.apply(_at(notice, 2), T0 + timedelta(minutes=1)).outcome is Outcome.RECALLED
    fresh = _view("senan-gofast-seizure")
    store.apply(_at(fresh, 3), T0)
    assert store.apply(_at(fresh, 3), T0 + timedelta(minutes=1)).outcome is Outcome.RECEIVED
    assert store.show(fresh["alert_id"]).received_at == T0


def test_an_older_version_is_ignored_and_reported(store: PartnerStore) -> None:
    """A version older than the one held is SUPERSEDED: reported, the newer one kept."""
    first = _view()
    store.apply(_at(updated(first, 3), 4), T0)
    applied = store.apply(_at(first, 1), T0)
    assert (applied.outcome, applied.held_version) == (Outcome.SUPERSEDED, 3)
    assert store.show(first["alert_id"]).version == 3


def test_a_recall_deletes_the_content_from_the_file_and_keeps_a_tombstone(store: PartnerStore) -> None:
    """A recall notice is RECALLED: the row keeps only the tombstone, and once its transaction has committed
    (and the store checkpointed) no byte of the store's files holds the recalled view's distinctive value."""
    view = _view(summary=f"Avistamiento reportado por {SECRET}")
    other = _view("senan-gofast-seizure")
    store.apply(_at(view, 1), T0)
    store.apply(_at(other, 2), T0)
    assert SECRET.encode() in _bytes(store.path)  # it was there: the test below is not vacuous
    with store.transaction():
        applied = store.apply(_at(recall_notice(view, 2, "SOURCE_PROTECTION"), 3), T0 + timedelta(hours=1))
    assert applied.outcome is Outcome.RECALLED and not store.wipe_pending
    assert SECRET.encode() not in _bytes(store.path)
    entry = store.show(view["alert_id"])
    assert entry.view is None and entry.state == "RECALLED" and entry.version == 2
    assert (entry.recall_reason, entry.recalled_at, entry.expires_at) == ("SOURCE_PROTECTION", T0 + timedelta(hours=1),
                                                                         None)
    assert store.show(other["alert_id"]).view == to_json(other)  # the rest is untouched
    raw = sqlite3.connect(store.path).execute("SELECT view FROM alerts WHERE alert_id = ?", (view["alert_id"],))
    assert raw.fetchone() == (None,)


def test_a_large_recalled_view_leaves_nothing_behind_either(store: PartnerStore) -> None:
    """A view bigger than a page (kept in overflow pages, freed by the recall) is wiped as well."""
    view = _view(summary=(SECRET + " ") * 800)
    store.apply(_at(view, 1), T0)
    assert SECRET.encode() in _bytes(store.path)
    store.apply(_at(recall_notice(view, 2, "ERROR"), 2), T0)
    store.close()
    assert SECRET.encode() not in _bytes(store.path)


def test_a_recall_of_an_alert_never_held_leaves_a_tombstone(store: PartnerStore) -> None:
    """A recall notice for an alert the store does not hold is acknowledged (RECALLED) and leaves a tombstone."""
    view = _view()
    applied = store.apply(_at(recall_notice(view, 2, "LEGAL"), 1), T0)
    assert (applied.outcome, applied.held_version) == (Outcome.RECALLED, None)
    assert store.show(view["alert_id"]).state == "RECALLED"


def test_a_recall_sent_again_is_acknowledged_again(store: PartnerStore) -> None:
    """A recall of what is already recalled, from another record, is RECALLED again: the partner holds none of it."""
    view = _view()
    store.apply(_at(view, 1), T0)
    store.apply(_at(recall_notice(view, 2, "ERROR"), 2), T0)
    assert store.apply(_at(recall_notice(view, 2, "ERROR"), 9), T0).outcome is Outcome.RECALLED
    assert store.apply(_at(recall_notice(view, 3, None), 10), T0).outcome is Outcome.RECALLED
    entry = store.show(view["alert_id"])
    assert (entry.version, entry.recall_reason) == (3, "ERROR")  # a reason, once given, stays


def test_a_view_after_an_originators_recall_is_refused(store: PartnerStore) -> None:
    """After a recall with a reason (withdrawn for good) a later view is REFUSED and an older one SUPERSEDED."""
    view = _view()
    store.apply(_at(view, 1), T0)
    store.apply(_at(recall_notice(view, 2, "ERROR"), 2), T0)
    refused = store.apply(_at(updated(view, 3), 3), T0)
    assert (refused.outcome, refused.held_version) == (Outcome.REFUSED, 2)
    assert store.apply(_at(view, 4), T0).outcome is Outcome.SUPERSEDED
    entry = store.show(view["alert_id"])
    assert entry.view is None and entry.version == 2


def test_a_partner_entitled_again_after_a_recall_without_reason_gets_the_new_version(store: PartnerStore) -> None:
    """A recall without a reason withdraws the alert from this partner only (its agreement stopped covering it); a
    higher version is the broker's decision that it is entitled again: RECEIVED, as a new holding."""
    view = _view()
    store.apply(_at(view, 1), T0)
    store.apply(_at(recall_notice(view, 2, None), 2), T0)
    assert store.apply(_at(updated(view, 2, "RECLASSIFY"), 3), T0).outcome is Outcome.REFUSED  # same version
    later = T0 + timedelta(days=3)
    back = store.apply(_at(updated(view, 3, "RECLASSIFY"), 4), later)
    assert back.outcome is Outcome.RECEIVED
    entry = store.show(view["alert_id"])
    assert (entry.state, entry.version, entry.first_received_at, entry.recalled_at) == ("HELD", 3, later, None)


def test_a_recall_older_than_the_version_held_is_superseded(store: PartnerStore) -> None:
    """A recall notice older than a view held (out of order) is SUPERSEDED and the newer view stays."""
    view = _view()
    store.apply(_at(updated(view, 3), 1), T0)
    assert store.apply(_at(recall_notice(view, 2, None), 2), T0).outcome is Outcome.SUPERSEDED
    assert store.show(view["alert_id"]).view is not None


@pytest.mark.parametrize(("held", "version", "recall", "expected"), [
    (None, 1, False, Outcome.RECEIVED),
    (None, 4, True, Outcome.RECALLED),
    (Held(2, False, False, "x"), 3, False, Outcome.RECEIVED),
    (Held(2, False, False, "x"), 2, False, Outcome.DUPLICATE),
    (Held(2, False, False, "x"), 1, False, Outcome.SUPERSEDED),
    (Held(2, False, False, "x"), 2, True, Outcome.RECALLED),
    (Held(2, False, False, "x"), 1, True, Outcome.SUPERSEDED),
    (Held(2, True, True, "x"), 5, False, Outcome.REFUSED),
    (Held(2, True, False, "x"), 5, False, Outcome.RECEIVED),
    (Held(2, True, False, "x"), 2, False, Outcome.REFUSED),
    (Held(2, True, True, "x"), 1, True, Outcome.RECALLED),
    # The very record applied, again: judge() knows nothing of it (the store gives back what it kept: apply).
    (Held(2, False, False, "t:0:9"), 2, False, Outcome.DUPLICATE),
])
def test_the_version_rule(held: Held | None, version: int, recall: bool, expected: Outcome) -> None:
    """judge() gives each combination of what is held and what arrives the documented outcome."""
    d = Delivery("A", "SEIZURE", version, "RECALL" if recall else None, None, "t:0:9", None, None, None)
    assert judge(held, d) is expected


@pytest.mark.parametrize("alert_id", ["SNM:1\n2026-01-01 SNM:2", "SNM:1\r", "SNM:1\x1b[2K", "SNM:1\u2028",
                                      "SNM:\u202e1", "SNM:1\t", "SNM:1\x85"])
def test_an_alert_id_that_is_not_printable_on_one_line_is_not_a_delivery(alert_id: str) -> None:
    """An alert id holding a line break, a control or a bidi character is refused (CodecError: the record is rejected);
    letters of any script and spaces are not."""
    with pytest.raises(CodecError, match="is not printable text on one line") as raised:
        Delivery.of(_view(alert_id=alert_id), "t:0:1", "COMBIFRON")
    assert raised.value.args[0].isprintable()
    assert Delivery.of(_view(alert_id="SNM:Peñas Blancas-ÅÉ 7"), "t:0:1", "COMBIFRON").alert_id.endswith("ÅÉ 7")


def test_a_view_without_a_usable_version_is_not_a_delivery() -> None:
    """A version below 1, a boolean, or a lifecycle without an action cannot be acted on: CodecError."""
    view = _view()
    for bad in ({"version": 0}, {"version": True}, {"lifecycle": {"reason": "ERROR"}}):
        with pytest.raises(CodecError):
            Delivery.of({**view, **bad}, "t:0:1", None)


def test_a_failed_batch_leaves_the_store_as_it_was(store: PartnerStore) -> None:
    """An error inside a store transaction rolls back every record applied in it."""
    view = _view()
    with pytest.raises(RuntimeError), store.transaction():
        store.apply(_at(view, 1), T0)
        raise RuntimeError("the Kafka transaction failed")
    with pytest.raises(NotInStore):
        store.show(view["alert_id"])


def test_purge_deletes_expired_alerts_and_alerts_past_their_agreements_retention(store: PartnerStore) -> None:
    """Past markings.expires_at, or past the retention of their agreement since first received: the text is
    deleted, and a content-free row remembers the version. An agreement the policy does not name gets the
    shortest retention."""
    markings = _view()["markings"]
    expiring = _view(alert_id="SENAFRONT:EXPIRES", markings={**markings, "expires_at": T0 + timedelta(days=2)})
    short = _view(alert_id="SENAFRONT:SHORT")
    unknown = _view(alert_id="SENAFRONT:UNKNOWN")
    long = _view(alert_id="SENAFRONT:LONG", summary=SECRET)
    store.apply(_at(expiring, 1), T0)
    store.apply(_at(short, 2, "SHORT"), T0)
    store.apply(_at(unknown, 3, "ENDED-AGREEMENT"), T0)
    store.apply(_at(long, 4), T0)
    assert store.purge(T0 + timedelta(days=1)).total == 0
    purged = store.purge(T0 + timedelta(days=11))
    assert (purged.expired, purged.retention, purged.tombstones) == (1, 2, 0)
    assert [e.alert_id for e in store.recent() if e.state == "HELD"] == ["SENAFRONT:LONG"]
    gone = [e for e in store.recent() if e.state != "HELD"]
    assert sorted(e.alert_id for e in gone) == ["SENAFRONT:EXPIRES", "SENAFRONT:SHORT", "SENAFRONT:UNKNOWN"]
    assert all(e.state == "EXPIRED" and e.purged_at == T0 + timedelta(days=11) for e in gone)
    assert all(store.show(e.alert_id).view is None for e in gone)
    assert (store.counts().held, store.counts().purged, store.counts().expired) == (1, 3, 0)
    assert store.purge(T0 + timedelta(days=181)).retention == 1
    assert SECRET.encode() not in _bytes(store.path) and store.counts().held == 0


def test_tombstones_are_kept_until_the_retention_passes_after_the_recall(store: PartnerStore) -> None:
    """A tombstone (no content) stays for the partner's longest retention after the recall (a copy of the alert
    may come under any of its agreements: here COMBIFRON's 180 days, though it came under SHORT's 10), and the
    sealing margin beyond it (until any view sealed before the recall is old enough to be EXPIRED), then goes."""
    view = _view()
    store.apply(_at(view, 1, "SHORT"), T0)
    recalled = T0 + timedelta(days=5)
    store.apply(_at(recall_notice(view, 2, "ERROR"), 2, None), recalled)
    assert store.purge(recalled + timedelta(days=11)).total == 0  # past SHORT's retention
    assert store.purge(recalled + timedelta(days=180)).total == 0  # the longest retention, but not the margin
    assert store.purge(recalled + timedelta(days=180, hours=1, minutes=29)).total == 0  # nor the clocks' skew
    assert store.purge(recalled + timedelta(days=180, hours=2)).tombstones == 1
    assert store.counts().recalled == 0


def test_a_copy_under_a_longer_agreement_is_refused_after_the_shorter_ones_retention(store: PartnerStore) -> None:
    """The alert came under SHORT (10 days) and was recalled; a copy the broker sealed under COMBIFRON (180 days)
    before the recall, replayed a month later, is still turned away by the tombstone, not stored anew."""
    view = _view(summary=SECRET)
    store.apply(_sealed(view, 1, T0), T0)
    store.apply(_sealed(recall_notice(view, 2, "ERROR"), 2, T0 + timedelta(hours=1)), T0 + timedelta(hours=1))
    later = T0 + timedelta(days=30)
    store.purge(later)
    assert store.apply(_sealed(view, 3, T0, "COMBIFRON"), later).outcome is not Outcome.RECEIVED
    assert store.counts().held == 0 and SECRET.encode() not in _bytes(store.path)


def test_a_view_replayed_as_its_tombstone_goes_is_refused_or_expired(store: PartnerStore) -> None:
    """A view sealed just before its recall, replayed at any time after the recall, is never stored again: the
    tombstone turns it away (SUPERSEDED) until the view is old enough to be EXPIRED, and only then goes."""
    view = _view(summary=SECRET)
    recall_at = T0 + timedelta(minutes=30)
    store.apply(_sealed(view, 1, T0), T0)
    store.apply(_sealed(recall_notice(view, 2, "ERROR"), 2, recall_at, None), recall_at)
    for hours in range(10 * 24, 10 * 24 + 4):
        now = recall_at + timedelta(hours=hours, minutes=1)
        store.purge(now)
        assert store.apply(_sealed(view, 3 + hours, T0), now).outcome is not Outcome.RECEIVED, hours
        assert store.counts().held == 0
    assert SECRET.encode() not in _bytes(store.path)


def test_a_view_that_expired_before_it_arrived_is_not_stored(store: PartnerStore) -> None:
    """A view whose markings.expires_at has passed is EXPIRED: purge would delete it at once, so its content
    never reaches the file; a recall of it is still acknowledged."""
    markings = _view()["markings"]
    gone = _view(summary=SECRET, markings={**markings, "expires_at": T0 - timedelta(minutes=1)})
    assert store.apply(_at(gone, 1), T0).outcome is Outcome.EXPIRED
    assert store.counts().held == 0 and SECRET.encode() not in _bytes(store.path)
    assert store.apply(_at(recall_notice(gone, 2, "ERROR"), 2), T0).outcome is Outcome.RECALLED


def _sealed(view: dict[str, Any], offset: int, sealed: datetime, agreement: str | None = "SHORT") -> Delivery:
    return Delivery.of(view, f"t.feed.col:0:{offset}", agreement, sealed)


def test_a_genuine_record_replayed_after_its_tombstone_went_is_not_stored_again(store: PartnerStore) -> None:
    """After a recall's tombstone is purged, the alert's old record written to the feed again (it opens: the
    broker sealed it) is EXPIRED, not stored: it was sealed longer ago than its agreement's retention."""
    view = _view(summary=SECRET)
    store.apply(_sealed(view, 1, T0), T0)
    store.apply(_sealed(recall_notice(view, 2, "ERROR"), 2, T0 + timedelta(days=5), None), T0 + timedelta(days=5))
    assert store.purge(T0 + timedelta(days=186)).tombstones == 1  # the longest retention after the recall
    later = T0 + timedelta(days=186)
    applied = store.apply(_sealed(view, 3, T0), later)
    assert applied.outcome is Outcome.EXPIRED and store.counts().held == 0
    assert SECRET.encode() not in _bytes(store.path)


def test_a_record_replayed_after_its_retention_purge_is_not_stored_again(store: PartnerStore) -> None:
    """An alert purged at the end of its agreement's retention does not come back from a replay of its record;
    under a longer agreement the same age is still kept, and a record sealed within the retention is stored."""
    view = _view()
    store.apply(_sealed(view, 1, T0), T0)
    assert store.purge(T0 + timedelta(days=11)).retention == 1
    assert store.apply(_sealed(view, 2, T0), T0 + timedelta(days=11)).outcome is Outcome.EXPIRED
    fresh = _view(alert_id="SENAFRONT:OTHER")
    assert store.apply(_sealed(fresh, 3, T0, "COMBIFRON"), T0 + timedelta(days=11)).outcome is Outcome.RECEIVED
    other = _view("senan-gofast-seizure")
    late = T0 + timedelta(days=9, hours=23)  # a subscriber that was down for most of the retention
    assert store.apply(_sealed(other, 4, T0), late).outcome is Outcome.RECEIVED


def test_a_key_blocks_age_and_clock_skew_never_expire_a_record_sealed_within_retention(store: PartnerStore) -> None:
    """The key block's time may be up to a data key's lifetime (an hour) before the sealing, and clocks differ:
    a record whose key block is 10 days and 70 minutes old under a 10-day agreement is stored; one of
    10 days and 2 hours is EXPIRED."""
    sealed = T0
    within = store.apply(_sealed(_view(), 1, sealed), sealed + timedelta(days=10, minutes=70))
    beyond = store.apply(_sealed(_view("senan-gofast-seizure"), 2, sealed), sealed + timedelta(days=10, hours=2))
    assert (within.outcome, beyond.outcome) == (Outcome.RECEIVED, Outcome.EXPIRED)


def test_only_views_that_would_be_stored_can_expire(store: PartnerStore) -> None:
    """A recall notice is never EXPIRED (acknowledging it keeps no content); nor is the batch redelivered after a
    crash, which gets the status it first had; nor anything when the store has no retention to judge by."""
    view = _view()
    notice = recall_notice(view, 2, "ERROR")
    assert store.apply(_sealed(notice, 1, T0, None), T0 + timedelta(days=40)).outcome is Outcome.RECALLED
    fresh = _view("senan-gofast-seizure")
    store.apply(_sealed(fresh, 2, T0 + timedelta(days=39)), T0 + timedelta(days=40))
    redelivered = store.apply(_sealed(fresh, 2, T0 + timedelta(days=39)), T0 + timedelta(days=40))
    assert redelivered.outcome is Outcome.RECEIVED


def test_a_store_without_retention_stores_whatever_its_age(tmp_path: Path) -> None:
    """Opened without the partner's retention (a reader's view of the file), the store cannot judge age."""
    with PartnerStore.open(tmp_path / "s.sqlite", "COL") as plain:
        assert plain.apply(_sealed(_view(), 1, T0), T0 + timedelta(days=4000)).outcome is Outcome.RECEIVED


def test_purge_needs_the_partners_retention(tmp_path: Path) -> None:
    """A store opened without a retention (to read it) refuses to purge rather than guess."""
    with PartnerStore.open(tmp_path / "s.sqlite", "COL") as plain, pytest.raises(StoreError, match="retention"):
        plain.purge(T0)


def test_retention_comes_from_the_partners_agreements() -> None:
    """Retention.for_partner: each agreement naming the partner, and the shortest of them for any other."""
    kept = Retention.for_partner(load_policy_set(), "COL")
    assert dict(kept.days) == {"COMBIFRON": 180} and kept.fallback_days == 180
    assert Retention.for_partner(load_policy_set(), "NOBODY").fallback_days == 0


def test_list_is_most_recent_first_with_counts(store: PartnerStore) -> None:
    """recent() lists the latest received first, without views; counts() says what is held and recalled."""
    one, two, three = (_view(alert_id=f"SENAFRONT:{n}") for n in ("ONE", "TWO", "THREE"))
    store.apply(_at(one, 1), T0)
    store.apply(_at(two, 2), T0 + timedelta(minutes=1))
    store.apply(_at(three, 3), T0 + timedelta(minutes=2))
    store.apply(_at(recall_notice(one, 2, "ERROR"), 4), T0 + timedelta(minutes=3))
    assert [e.alert_id for e in store.recent()] == ["SENAFRONT:ONE", "SENAFRONT:THREE", "SENAFRONT:TWO"]
    assert [e.alert_id for e in store.recent(1)] == ["SENAFRONT:ONE"]
    assert all(e.view is None for e in store.recent())
    counts = store.counts()
    assert (counts.held, counts.recalled, counts.last_received_at) == (2, 1, T0 + timedelta(minutes=3))


def test_the_store_is_private_whatever_the_umask(tmp_path: Path) -> None:
    """Made 0600 in folders made 0700 even under umask 0; its WAL and shared-memory files get the same mode."""
    old = os.umask(0)
    try:
        path = tmp_path / "a" / "b" / "feed.sqlite"
        with PartnerStore.open(path, "COL") as store:
            store.apply(_at(_view(), 1), T0)
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
    finally:
        os.umask(old)
    assert modes["feed.sqlite"] == 0o600 and set(modes.values()) == {0o600}
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_store_others_may_read_or_replace_is_refused(tmp_path: Path) -> None:
    """A store readable by others, or in a folder others may write, is refused, naming the chmod to run."""
    path = tmp_path / "p" / "feed.sqlite"
    PartnerStore.open(path, "COL").close()
    path.chmod(0o644)
    with pytest.raises(StoreError, match="chmod 600"):
        PartnerStore.open(path, "COL")
    path.chmod(0o600)
    path.parent.chmod(0o777)
    try:
        with pytest.raises(StoreError, match="chmod 700"):
            PartnerStore.open(path, "COL")
        with pytest.raises(StoreError, match="folder of its own"):
            PartnerStore.open(path.with_name("new.sqlite"), "COL")
        assert not path.with_name("new.sqlite").exists()  # refused before anything was made there
    finally:
        path.parent.chmod(0o700)


def test_a_store_is_its_partners_alone(tmp_path: Path) -> None:
    """Another partner's store, a file that is no store, and a missing store when none may be made: one clear error."""
    path = tmp_path / "feed.sqlite"
    PartnerStore.open(path, "COL").close()
    with pytest.raises(StoreError, match="store of partner COL, not of USA"):
        PartnerStore.open(path, "USA")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all, but long enough to look like a header" * 20)
    junk.chmod(0o600)
    with pytest.raises(StoreError, match="not a partner store"):
        PartnerStore.open(junk, "COL")
    with pytest.raises(StoreError, match="puente subscribe --partner COL"):
        PartnerStore.open(tmp_path / "missing.sqlite", "COL", create=False)
    assert not (tmp_path / "missing.sqlite").exists()


def test_two_writers_take_turns_and_readers_never_wait(tmp_path: Path) -> None:
    """While one handle holds a batch open, another writer waits and then gives up (StoreBusy), a reader still
    reads the last committed state; once the batch commits the second writer sees it (DUPLICATE)."""
    path = tmp_path / "feed.sqlite"
    first = PartnerStore.open(path, "COL")
    second = PartnerStore.open(path, "COL", busy_timeout_s=0.2)
    reader = PartnerStore.open(path, "COL", create=False)
    view = _view()
    try:
        store_a = _view("senan-gofast-seizure")
        first.apply(_at(store_a, 1), T0)
        with first.transaction():
            first.apply(_at(view, 2), T0)
            with pytest.raises(StoreBusy, match="another subscriber"):
                second.apply(_at(view, 3), T0)
            assert [e.alert_id for e in reader.recent()] == [store_a["alert_id"]]
        assert second.apply(_at(view, 3), T0).outcome is Outcome.DUPLICATE
        assert reader.counts().held == 2
    finally:
        for s in (first, second, reader):
            s.close()


def test_the_default_store_is_beside_the_partners_keys(tmp_path: Path) -> None:
    """<keys>/partners/<P>/feed.sqlite: in the partner's own folder, not a key file."""
    assert default_store_path(tmp_path, "COL") == tmp_path / "partners" / "COL" / "feed.sqlite"


def _puente(keys: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PUENTE_KEYS": str(keys)}
    return subprocess.run([sys.executable, "-m", "puente.cli", *args], env=env, capture_output=True, text=True,
                          check=False, timeout=60)


def test_store_commands_show_what_a_person_needs(tmp_path: Path) -> None:
    """`puente store list|show|purge` read the partner's default store: a table, one alert's view or tombstone,
    and one line per error naming what to check."""
    keys = tmp_path / "keys"
    missing = _puente(keys, "store", "list", "--partner", "COL")
    assert missing.returncode == 3 and missing.stderr.count("\n") == 1
    assert "no store for COL" in missing.stderr and "puente subscribe --partner COL" in missing.stderr
    now = datetime.now(UTC)
    held, gone = _view(), _view("senan-gofast-seizure")
    with PartnerStore.open(default_store_path(keys, "COL"), "COL") as store:
        store.apply(_at(updated(held, 2), 1), now)
        store.apply(_at(gone, 2), now)
        store.apply(_at(recall_notice(gone, 2, "SOURCE_PROTECTION"), 3), now)
    listing = _puente(keys, "store", "list", "--partner", "COL")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].startswith("RECEIVED (UTC)") and len(lines) == 3
    assert held["alert_id"] in listing.stdout and "held (update)" in listing.stdout
    assert "recalled (source protection)" in listing.stdout
    assert "2 of 2 alert(s)" in listing.stderr and "1 held, 1 recalled" in listing.stderr
    shown = _puente(keys, "store", "show", held["alert_id"], "--partner", "COL")
    assert shown.returncode == 0 and "version 2" in shown.stdout and held["summary"] in shown.stdout
    tomb = _puente(keys, "store", "show", gone["alert_id"], "--partner", "COL")
    assert tomb.returncode == 0 and "content was deleted" in tomb.stdout and '"payload"' not in tomb.stdout
    absent = _puente(keys, "store", "show", "SNM:NOPE", "--partner", "COL")
    assert absent.returncode == 1 and absent.stderr.startswith("puente: error: no alert SNM:NOPE")
    purged = _puente(keys, "store", "purge", "--partner", "COL")
    assert purged.returncode == 0 and "purged 0 alert(s)" in purged.stderr
    # An alert held past its review date is marked, and `--due` lists only such alerts.
    markings = _view()["markings"]
    overdue = _view("paso-canoas-migrant-flow", markings={**markings, "review_at": now - timedelta(days=2)})
    with PartnerStore.open(default_store_path(keys, "COL"), "COL") as store:
        store.apply(_at(overdue, 4), now)
        assert [e.alert_id for e in store.due(now)] == [overdue["alert_id"]] and store.due_count(now) == 1
    listing = _puente(keys, "store", "list", "--partner", "COL")
    assert "1 held past their review date" in listing.stderr
    assert next(line for line in listing.stdout.splitlines() if "!" in line).split()[2] == overdue["alert_id"]
    due = _puente(keys, "store", "list", "--partner", "COL", "--due")
    assert due.returncode == 0 and len(due.stdout.splitlines()) == 2 and overdue["alert_id"] in due.stdout
    assert "1 due for review of 3 alert(s)" in due.stderr
    shown = _puente(keys, "store", "show", overdue["alert_id"], "--partner", "COL")
    assert f"review     {(now - timedelta(days=2)).strftime('%Y-%m-%d %H:%M')} UTC" in shown.stdout
    unknown = _puente(keys, "store", "purge", "--partner", "XYZ")
    assert unknown.returncode == 3 and "unknown partner 'XYZ'" in unknown.stderr


def test_no_recall_is_acknowledged_while_a_reader_keeps_the_deleted_text_in_the_log(store: PartnerStore) -> None:
    """A reader holding a snapshot keeps the WAL from being cleared: the subscriber refuses to let the batch's
    receipts (a RECALLED one among them) commit until the text is gone, and says what to do."""
    view = _view(summary=f"Avistamiento reportado por {SECRET}")
    store.apply(_at(view, 1), T0)
    reader = sqlite3.connect(store.path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM alerts").fetchone()  # a read snapshot: the checkpoint cannot finish
    try:
        with store.transaction():
            store.apply(_at(recall_notice(view, 2, "ERROR"), 2), T0)
        assert store.wipe_pending
        with pytest.raises(StoreBusy, match="close it and run the subscriber again"):
            asyncio.run(Subscriber._wiped(SimpleNamespace(store=store), tries=2))  # type: ignore[arg-type]
    finally:
        reader.close()
    asyncio.run(Subscriber._wiped(SimpleNamespace(store=store)))  # type: ignore[arg-type]
    assert not store.wipe_pending and SECRET.encode() not in _bytes(store.path)


def test_a_writer_that_crashed_before_its_checkpoint_leaves_the_wipe_to_the_next(tmp_path: Path) -> None:
    """A subscriber that committed a recall and died before the WAL was cleared: the next one to open the store
    does not know what was deleted, so it checkpoints before anything it commits may vouch for a deletion
    (the redelivered recall gets its RECALLED receipt only once the text is gone)."""
    path = tmp_path / "col" / "feed.sqlite"
    first = PartnerStore.open(path, "COL", retention=RETENTION)
    view = _view(summary=f"Avistamiento reportado por {SECRET}")
    first.apply(_at(view, 1), T0)
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM alerts").fetchone()  # keeps the checkpoint from finishing
    notice = _at(recall_notice(view, 2, "ERROR"), 2)
    with first.transaction():
        first.apply(notice, T0)
    assert first.wipe_pending
    first._conn.close()  # the crash: no wipe on closing
    second = PartnerStore.open(path, "COL", retention=RETENTION)
    try:
        assert SECRET.encode() in _bytes(path)  # still in the WAL: the test below is not vacuous
        with second.transaction():
            assert second.apply(notice, T0).outcome is Outcome.RECALLED  # the batch again, after the crash
        assert second.wipe_pending  # the reader still holds its snapshot: this RECALLED must not commit yet
        reader.close()
        asyncio.run(Subscriber._wiped(SimpleNamespace(store=second)))  # type: ignore[arg-type]
        assert SECRET.encode() not in _bytes(path)
    finally:
        second.close()


def test_an_instance_sharing_the_store_checkpoints_a_deletion_another_died_before_wiping(tmp_path: Path,
                                                                                       monkeypatch: pytest.MonkeyPatch
                                                                                       ) -> None:
    """Two subscriber instances share one store file, both open: the one that committed a recall dies before its
    checkpoint; the other reads the batch again, which writes nothing, and still checkpoints before its commit
    may vouch for the recall, since the obligation is in the store, not in the dead process."""
    path = tmp_path / "col" / "feed.sqlite"
    first = PartnerStore.open(path, "COL", retention=RETENTION)
    second = PartnerStore.open(path, "COL", retention=RETENTION)
    try:
        second.apply(_at(_view("senan-gofast-seizure"), 1), T0)  # its own batch: the check on opening is done
        assert not second.wipe_pending
        view = _view(summary=f"Avistamiento reportado por {SECRET}")
        first.apply(_at(view, 2), T0)
        notice = _at(recall_notice(view, 2, "ERROR"), 3)
        monkeypatch.setattr(first, "wipe", lambda: False)  # killed right after its commit, before the checkpoint
        first.apply(notice, T0)
        first._conn.close()
        assert SECRET.encode() in _bytes(path)  # the old page: the test below is not vacuous
        with second.transaction():
            assert second.apply(notice, T0).outcome is Outcome.RECALLED  # the batch again: nothing written
        assert not second.wipe_pending and SECRET.encode() not in _bytes(path)
        with second.transaction():  # the obligation ended with the checkpoint: a batch after it checkpoints no more
            second.apply(_at(_view("senan-gofast-seizure"), 4), T0)
        assert not second.wipe_pending
        assert not sqlite3.connect(path).execute("SELECT 1 FROM meta WHERE key = 'wipe-due'").fetchall()
    finally:
        second.close()


def test_the_store_keeps_a_receipt_chains_last_checkpoint(tmp_path: Path) -> None:
    """The head a subscriber noted after a commit comes back after reopening; each chain keeps its own,
    and a damaged entry is an error naming the chain, not a head of zero."""
    path = tmp_path / "s.db"
    with PartnerStore.open(path, "COL") as s:
        assert s.chain_head("r[0]/COL") is None
        s.keep_chain_head("r[0]/COL", 4, "aa")
        s.keep_chain_head("r[0]/COL", 9, "bb", 120)
        s.keep_chain_head("r[0]/COL/second", 2, "cc")
    with PartnerStore.open(path, "COL") as s:
        assert s.chain_head("r[0]/COL") == (9, "bb", 120) and s.chain_head("r[0]/COL/second") == (2, "cc", None)
        s._conn.execute("UPDATE meta SET value = '{\"seq\": \"9\"}' WHERE key = 'receipt-chain:r[0]/COL'")
        with pytest.raises(StoreError, match=r"the kept head of receipt chain r\[0\]/COL is damaged"):
            s.chain_head("r[0]/COL")


@pytest.mark.parametrize(("last", "offset", "kept", "refused"), [
    ({"seq": 9, "hash": "bb"}, 40, (9, "bb", 40), False),  # the head the store saw committed
    ({"seq": 12, "hash": "dd"}, 52, (9, "bb", 40), False),  # committed just before a crash kept the store from it
    ({"seq": 3, "hash": "aa"}, 60, (9, "bb", 40), True),  # an older checkpoint written again
    ({"seq": 9, "hash": "xx"}, 40, (9, "bb", 40), True),  # the same place, another record: a fork
    # The store noted 9, then a crash kept it from noting 10, whose batch had committed: a copy of 9 written
    # after 10 is the chain's last record, and extending it would fork the chain.
    ({"seq": 9, "hash": "bb"}, 61, (9, "bb", 40), True),
    ({"seq": 9, "hash": "bb"}, 61, (9, "bb", None), False),  # an older store kept no offset: it cannot tell
    ({"seq": "9", "hash": "bb"}, 40, (9, "bb", 40), True),
    ({"seq": 3, "hash": "aa"}, 5, None, False),  # a store that kept nothing cannot tell (a first run)
], ids=["same", "newer", "older", "fork", "copy-of-kept", "no-offset-kept", "not-a-number", "nothing-kept"])
def test_a_chain_head_older_than_the_kept_one_is_refused(last: dict[str, Any], offset: int, kept: Any,
                                                        refused: bool) -> None:
    """Only the kept checkpoint, where Kafka held it, or a later one of the partner's own may be extended (see
    Subscriber._chain)."""
    problem = _older_than_kept(last, offset, kept)
    assert (problem is not None) is refused


def _chain_rec(offset: int, doc: Any) -> Record:
    return Record("r", 0, offset, None, json.dumps(doc).encode(), (), 0)


@pytest.mark.parametrize(("previous", "last", "refused"), [
    ({"seq": 11, "hash": "cc"}, {"seq": 12, "prev": "cc", "hash": "dd"}, False),  # the chain as its writer left it
    ({"seq": 12, "hash": "dd"}, {"seq": 3, "prev": "a2", "hash": "aa"}, True),  # an older record written again
    ({"seq": 12, "hash": "dd"}, {"seq": 12, "prev": "cc", "hash": "dd"}, True),  # a copy of the head
    ({"seq": 11, "hash": "cc"}, {"seq": 12, "prev": "zz", "hash": "dd"}, True),  # another predecessor: a fork
    ({"seq": "11", "hash": "cc"}, {"seq": 12, "prev": "cc", "hash": "dd"}, True),
    ([], {"seq": 12, "prev": "cc", "hash": "dd"}, True),
], ids=["linked", "older", "copy", "fork", "not-a-number", "not-an-object"])
def test_a_chain_head_that_does_not_follow_the_record_before_it_is_refused(previous: Any, last: Any,
                                                                           refused: bool) -> None:
    """Store or none, a chain is extended only when each of its records from the kept head (or its first) follows the
    one before it in the partition (see Subscriber._chain): the first of a run of records written again follows the
    real head, which it does not name."""
    problem = _unlinked(_chain_rec(50, previous), _chain_rec(51, last))
    assert (problem is not None) is refused


def test_an_alert_passed_on_stays_marked_through_its_recall(store: PartnerStore) -> None:
    """A copy of an alert that left the store (--out) is remembered: its recall, received later by any run,
    reports the mark, and a redelivery of that recall too; an alert never passed on is not marked."""
    view, other = _view(), _view("senan-gofast-seizure")
    with store.transaction():
        store.apply(_at(view, 1), T0)
        store.mark_passed_on(view["alert_id"])
        store.apply(_at(other, 2), T0)
    recall = _at(recall_notice(view, 2, "ERROR"), 3)
    first = store.apply(recall, T0)
    assert first.outcome is Outcome.RECALLED and first.passed_on
    assert store.apply(recall, T0).passed_on  # the batch again, after a crash
    assert not store.apply(_at(recall_notice(other, 2, "ERROR"), 4), T0).passed_on


def test_an_alert_passed_on_stays_marked_after_the_purge_deleted_its_row(store: PartnerStore) -> None:
    """The purge deletes the content-free row of an alert passed on (--out) at its horizon, but not the fact: a
    recall read after that (a subscriber far behind its feed) reports the mark, never an acknowledgement, as does
    one of an alert whose tombstone went; an alert never passed on is not marked by it."""
    view, other, third = _view(), _view("senan-gofast-seizure"), _view("paso-canoas-migrant-flow")
    with store.transaction():
        for offset, alert in enumerate((view, other, third), start=1):
            store.apply(_at(alert, offset), T0)
        store.mark_passed_on(view["alert_id"])
        store.mark_passed_on(third["alert_id"])
    store.apply(_at(recall_notice(third, 2, "ERROR"), 4), T0)  # a tombstone, passed on
    first = store.purge(T0 + timedelta(days=181))  # the text goes (content-free rows remember it); the tombstone
    assert first.retention == 2 and first.tombstones == 1  # is past the longest retention and margins
    assert store.purge(T0 + timedelta(days=400)).tombstones == 2  # and so are the content-free rows now
    assert store.counts() == type(store.counts())(0, 0, None)
    late = store.apply(_at(recall_notice(view, 2, "ERROR"), 5), T0 + timedelta(days=400))
    assert late.outcome is Outcome.RECALLED and late.held_version is None and late.passed_on
    assert store.apply(_at(recall_notice(third, 3, "ERROR"), 6), T0 + timedelta(days=400)).passed_on
    assert not store.apply(_at(recall_notice(other, 2, "ERROR"), 7), T0 + timedelta(days=400)).passed_on


def _older_layout(tmp_path: Path, version: int, *missing: str) -> Path:
    """A store holding one alert, as layout ``version`` wrote it: without the ``missing`` columns."""
    path = tmp_path / "col" / "feed.sqlite"
    with PartnerStore.open(path, "COL", retention=RETENTION) as store:
        store.apply(_at(_view(), 1), T0)
    raw = sqlite3.connect(path)
    for column in missing:
        raw.execute(f"ALTER TABLE alerts DROP COLUMN {column}")
    raw.execute("DROP TABLE applied")  # layout 8's
    raw.execute(f"PRAGMA user_version = {version}")
    raw.commit()
    raw.close()
    return path


def test_a_store_of_the_first_layout_is_brought_up_to_date(tmp_path: Path) -> None:
    """A store written before passed_on existed opens: the column is added and its alerts kept. That layout's
    runs already copied views out with --out, and kept no mark of which: every alert it held counts as passed on,
    so a later recall of one reads RECALL_PASSED_ON, never an acknowledgement a copy outside the store belies."""
    path = _older_layout(tmp_path, 1, "passed_on", "review_ms", "purged_ms", "sealed_ms")
    with PartnerStore.open(path, "COL", retention=RETENTION) as store:
        assert store.counts().held == 1
        assert store.apply(_at(recall_notice(_view(), 2, "ERROR"), 2), T0).passed_on
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION


def test_a_store_of_the_second_layout_gets_review_dates(tmp_path: Path) -> None:
    """A store with passed_on but no review dates opens and learns them from the next version."""
    path = _older_layout(tmp_path, 2, "review_ms", "purged_ms", "sealed_ms")
    with PartnerStore.open(path, "COL", retention=RETENTION) as store:
        assert store.due_count(T0) == 0 and store.counts().held == 1
        markings = _view()["markings"]
        store.apply(_at(updated(_view(), 2, markings={**markings, "review_at": T0}), 2), T0)
        assert store.due_count(T0) == 1


def test_a_newer_version_that_has_expired_takes_the_older_text_with_it(store: PartnerStore) -> None:
    """Version 2 arrives past its expiry: it is not stored, and version 1, which it says has expired, goes too.
    The store remembers version 2 without content: version 1 replayed (the partner rewinds its feed) is
    SUPERSEDED, never stored again; version 2 again is EXPIRED; a recall is acknowledged (nothing is held); a
    version 3 the originator extended is stored as usual."""
    first = _view(summary=SECRET)
    store.apply(_at(first, 1), T0)
    markings = first["markings"]
    late = updated(first, 2, markings={**markings, "expires_at": T0 - timedelta(minutes=1)})
    assert store.apply(_at(late, 2), T0).outcome is Outcome.EXPIRED
    assert store.counts().held == 0 and not store.wipe_pending and SECRET.encode() not in _bytes(store.path)
    assert store.apply(_at(first, 5), T0).outcome is Outcome.SUPERSEDED
    assert store.apply(_at(late, 2), T0).outcome is Outcome.EXPIRED  # the same record, after a crash
    assert store.apply(_at(late, 6), T0).outcome is Outcome.EXPIRED
    assert store.counts().held == 0 and SECRET.encode() not in _bytes(store.path)
    assert store.show(first["alert_id"]).state == "EXPIRED" and store.show(first["alert_id"]).view is None
    assert store.counts().purged == 1 and store.counts().recalled == 0  # the text held went, as in a purge
    kept = updated(first, 3, markings={**markings, "expires_at": T0 + timedelta(days=3)})
    assert store.apply(_at(kept, 7), T0).outcome is Outcome.RECEIVED and store.counts().held == 1


def test_a_version_that_arrives_expired_with_nothing_held_keeps_older_ones_out(store: PartnerStore) -> None:
    """Version 2 arrives expired before version 1 ever did: a late version 1 is not stored either. A recall is
    acknowledged, and its tombstone goes with the tombstones' purge."""
    first = _view(summary=SECRET)
    markings = first["markings"]
    late = updated(first, 2, markings={**markings, "expires_at": T0 - timedelta(minutes=1)})
    assert store.apply(_at(late, 1), T0).outcome is Outcome.EXPIRED
    assert store.apply(_at(first, 2), T0).outcome is Outcome.SUPERSEDED
    assert store.counts().held == 0 and SECRET.encode() not in _bytes(store.path)
    assert store.apply(_at(recall_notice(first, 3, "ERROR"), 3), T0).outcome is Outcome.RECALLED
    other = _view("senan-gofast-seizure")
    assert store.apply(_at(updated(other, 2, markings={**other["markings"], "expires_at": T0}), 4), T0).outcome \
        is Outcome.EXPIRED
    assert store.purge(T0 + timedelta(days=180)).tombstones == 0  # kept for the retention and the margins
    assert store.purge(T0 + timedelta(days=181)).tombstones == 2  # COMBIFRON's 180 days: both rows go


def test_a_store_of_the_third_layout_takes_the_expired_state(tmp_path: Path) -> None:
    """A store whose state check knows only HELD and RECALLED is rebuilt on opening, its alerts kept, and can then
    remember a version that arrived expired; what the old table held is wiped from the WAL."""
    path = tmp_path / "col" / "feed.sqlite"
    with PartnerStore.open(path, "COL", retention=RETENTION) as store:
        store.apply(_at(_view(summary=SECRET), 1), T0)
    raw = sqlite3.connect(path)
    sql = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'alerts'").fetchone()[0]
    raw.execute("ALTER TABLE alerts RENAME TO newer")
    raw.execute(sql.replace("'HELD', 'RECALLED', 'EXPIRED'", "'HELD', 'RECALLED'"))
    raw.execute("INSERT INTO alerts SELECT * FROM newer")
    raw.execute("DROP TABLE newer")
    raw.execute("CREATE INDEX alerts_by_received ON alerts (received_ms)")
    raw.execute("PRAGMA user_version = 3")
    raw.commit()
    raw.close()
    with PartnerStore.open(path, "COL", retention=RETENTION) as store:
        assert store.counts().held == 1 and store.show(_view()["alert_id"]).view is not None
        markings = _view()["markings"]
        late = updated(_view(), 2, markings={**markings, "expires_at": T0 - timedelta(minutes=1)})
        assert store.apply(_at(late, 2), T0).outcome is Outcome.EXPIRED
        assert store.show(_view()["alert_id"]).state == "EXPIRED"
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert "EXPIRED" in check.execute("SELECT sql FROM sqlite_master WHERE name = 'alerts'").fetchone()[0]
    assert [r[0] for r in check.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE "
                                        "'sqlite_%'")] == ["alerts_by_received"]
    check.close()
    assert SECRET.encode() not in _bytes(path)


def test_a_replayed_feed_never_brings_back_a_version_a_later_expired_one_replaced(store: PartnerStore) -> None:
    """Version 1, a recall without reason (version 2: the partner no longer covered), version 3 (covered again),
    then version 4 already expired, which takes version 3's text. The whole feed replayed: the recall is
    acknowledged without setting the row back, so version 3 is SUPERSEDED, never stored again; so too when the
    expired version meets the tombstone directly."""
    markings = _view()["markings"]
    v1 = _view(summary=SECRET)
    v3 = updated(v1, 3, markings={**markings, "expires_at": T0 + timedelta(days=20)})
    v4 = updated(v1, 4, markings={**markings, "expires_at": T0 - timedelta(minutes=1)})
    feed = [_at(v1, 1), _at(recall_notice(v1, 2, None), 2), _at(v3, 3), _at(v4, 4)]
    assert [store.apply(d, T0).outcome for d in feed] == [Outcome.RECEIVED, Outcome.RECALLED, Outcome.RECEIVED,
                                                          Outcome.EXPIRED]
    store.confirm_feed_offsets({("t.feed.col", 0): 5})  # their receipts committed: the feed rewound, read again
    replayed = [store.apply(d, T0).outcome for d in feed]
    assert replayed == [Outcome.SUPERSEDED, Outcome.RECALLED, Outcome.SUPERSEDED, Outcome.EXPIRED]
    assert store.counts().held == 0 and store.show(v1["alert_id"]).version == 4
    assert SECRET.encode() not in _bytes(store.path)

    other = _view("senan-gofast-seizure", summary=SECRET)
    o3 = updated(other, 3, markings={**other["markings"], "expires_at": T0 + timedelta(days=20)})
    o4 = updated(other, 4, markings={**other["markings"], "expires_at": T0 - timedelta(minutes=1)})
    store.apply(_at(other, 5), T0)
    store.apply(_at(recall_notice(other, 2, None), 6), T0)
    assert store.apply(_at(o4, 7), T0).outcome is Outcome.EXPIRED
    assert store.show(other["alert_id"]).state == "EXPIRED"
    assert store.apply(_at(o3, 8), T0).outcome is Outcome.SUPERSEDED and store.counts().held == 0


def test_a_version_replayed_after_an_expiry_purge_never_brings_back_the_text_it_replaced(store: PartnerStore) -> None:
    """Version 2 corrects version 1 and expires first; once the purge deletes it, version 1 written to the feed
    again (a genuine record: the broker sealed it) is SUPERSEDED and version 2 again EXPIRED: the purge leaves a
    content-free row that remembers the version, where it once left nothing to compare with."""
    v1 = _view(summary=SECRET)
    v2 = updated(v1, 2, summary="corrected", markings={**v1["markings"], "expires_at": T0 + timedelta(days=2)})
    store.apply(_sealed(v1, 1, T0, "COMBIFRON"), T0)
    assert store.apply(_sealed(v2, 2, T0 + timedelta(days=1), "COMBIFRON"), T0 + timedelta(days=1)).outcome \
        is Outcome.RECEIVED
    now = T0 + timedelta(days=3)
    assert store.purge(now).expired == 1
    assert store.apply(_sealed(v1, 3, T0, "COMBIFRON"), now).outcome is Outcome.SUPERSEDED
    assert store.apply(_sealed(v2, 4, T0 + timedelta(days=1), "COMBIFRON"), now).outcome is Outcome.EXPIRED
    entry = store.show(v1["alert_id"])
    assert (entry.state, entry.version, entry.view, entry.purged_at) == ("EXPIRED", 2, None, now)
    assert store.counts().held == 0 and SECRET.encode() not in _bytes(store.path)


def test_a_correction_replayed_after_the_retention_purge_is_not_kept_again(store: PartnerStore) -> None:
    """Retention counts from the first receipt: a correction (version 2, sealed on day 8 under a 10-day
    agreement) replayed after the day-11 purge is EXPIRED, not stored for another ten days; the same record
    replayed within the sealing margin after the purge is EXPIRED too; and a genuine version 3 that comes after
    the retention is not stored either (the purge would delete it at once)."""
    v1 = _view(summary=SECRET)
    v2 = updated(v1, 2, summary=SECRET + " corrected")
    store.apply(_sealed(v1, 1, T0), T0)
    store.apply(_sealed(v2, 2, T0 + timedelta(days=8)), T0 + timedelta(days=8))
    now = T0 + timedelta(days=11)
    assert store.purge(now).retention == 1
    assert store.apply(_sealed(v1, 3, T0), now).outcome is Outcome.SUPERSEDED
    assert store.apply(_sealed(v2, 4, T0 + timedelta(days=8)), now).outcome is Outcome.EXPIRED
    v3 = updated(v1, 3, summary=SECRET + " again")
    assert store.apply(_sealed(v3, 5, now), now).outcome is Outcome.EXPIRED
    assert store.show(v1["alert_id"]).version == 3 and store.counts().held == 0

    other = _view("senan-gofast-seizure", summary=SECRET)
    store.apply(_sealed(other, 6, T0), T0)
    assert store.purge(T0 + timedelta(days=10, minutes=5)).retention == 1
    late = T0 + timedelta(days=10, hours=1)  # within the sealing margin: not yet too old by its sealing
    assert store.apply(_sealed(other, 7, T0), late).outcome is Outcome.EXPIRED
    assert store.counts().held == 0 and SECRET.encode() not in _bytes(store.path)


def test_a_correction_after_the_retention_is_not_stored_even_before_the_purge(store: PartnerStore) -> None:
    """A version 2 arriving after version 1's retention, before any purge ran, takes version 1's text with it and
    is not stored: what the partner first learnt may not be kept longer by a correction. Within the retention a
    correction is stored as usual, and after a recall without reason a holding starts again."""
    v1 = _view(summary=SECRET)
    store.apply(_sealed(v1, 1, T0), T0)
    assert store.apply(_sealed(updated(v1, 2), 2, T0 + timedelta(days=9)), T0 + timedelta(days=9)).outcome \
        is Outcome.RECEIVED
    late = T0 + timedelta(days=10, minutes=1)
    assert store.apply(_sealed(updated(v1, 3), 3, late), late).outcome is Outcome.EXPIRED
    assert store.counts().held == 0 and SECRET.encode() not in _bytes(store.path)

    other = _view("senan-gofast-seizure")
    store.apply(_sealed(other, 4, T0), T0)
    store.apply(_sealed(recall_notice(other, 2, None), 5, T0 + timedelta(days=5), None), T0 + timedelta(days=5))
    back = T0 + timedelta(days=12)
    assert store.apply(_sealed(updated(other, 3), 6, back), back).outcome is Outcome.RECEIVED


def test_a_store_of_the_fourth_layout_learns_which_rows_were_purged(tmp_path: Path) -> None:
    """A store without purged_ms opens: the column is added, its alerts kept, and its next purge remembers
    what it deleted."""
    path = _older_layout(tmp_path, 4, "purged_ms", "sealed_ms")
    with PartnerStore.open(path, "COL", retention=RETENTION) as store:
        assert store.counts().held == 1
        store.keep_kafka_time(KAFKA_LATER)
        store.apply(_at(_view("senan-gofast-seizure"), 2, "SHORT"), T0)
        assert store.purge(T0 + timedelta(days=11)).retention == 1
        assert (store.counts().held, store.counts().purged) == (1, 1)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_store_commands_name_a_purged_alert(tmp_path: Path) -> None:
    """`store purge` says the text went and the version stays; `store list` and `store show` then name the alert
    purged, and why."""
    keys = tmp_path / "keys"
    now = datetime.now(UTC)
    markings = _view()["markings"]
    expiring = _view(markings={**markings, "expires_at": now - timedelta(hours=1)})
    with PartnerStore.open(default_store_path(keys, "COL"), "COL") as store:
        store.apply(_at(expiring, 1), now - timedelta(days=2))
        store.keep_kafka_time(ms(now))  # as its subscriber's last batch has Kafka vouch for the time
    purged = _puente(keys, "store", "purge", "--partner", "COL")
    assert purged.returncode == 0, purged.stderr
    assert "purged 1 alert(s)" in purged.stderr and "the text of 1 past their expiry" in purged.stderr
    listing = _puente(keys, "store", "list", "--partner", "COL")
    assert "purged (nothing kept)" in listing.stdout and "0 held, 0 recalled, 1 purged" in listing.stderr
    shown = _puente(keys, "store", "show", expiring["alert_id"], "--partner", "COL")
    assert shown.returncode == 0 and "when its expiry passed" in shown.stdout and '"payload"' not in shown.stdout


def test_a_version_after_the_retention_is_refused_when_an_expired_one_took_the_text(store: PartnerStore) -> None:
    """Version 1 held from T0, version 2 arriving already expired (it takes version 1's text), then version 3 after
    the retention since T0: EXPIRED, as it is after a purge; and a purge counts each alert once, keeping the row
    that remembers its version until its own time comes."""
    v1 = _view(summary=SECRET)
    store.apply(_sealed(v1, 1, T0), T0)
    late = updated(v1, 2, markings={**v1["markings"], "expires_at": T0 - timedelta(minutes=1)})
    assert store.apply(_sealed(late, 2, T0 + timedelta(days=1)), T0 + timedelta(days=1)).outcome is Outcome.EXPIRED
    after = T0 + timedelta(days=10, minutes=1)
    assert store.apply(_sealed(updated(v1, 3), 3, after), after).outcome is Outcome.EXPIRED
    assert store.counts().held == 0 and SECRET.encode() not in _bytes(store.path)

    other = _view("senan-gofast-seizure")
    store.apply(_sealed(other, 4, T0), T0)
    purged = store.purge(T0 + timedelta(days=200))  # past every retention and margin at once
    assert (purged.expired, purged.retention, purged.tombstones) == (0, 1, 1)  # v1's row goes; other's is kept
    assert store.show(other["alert_id"]).state == "EXPIRED" and store.purge(T0 + timedelta(days=200)).total == 1


def _other_sqlite(path: Path) -> bytes:
    """An SQLite file of another kind (tables of its own, user_version 0, rollback journal), 0600; its bytes."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE accounts (name TEXT PRIMARY KEY, hash TEXT NOT NULL)")
    conn.execute("INSERT INTO accounts VALUES ('alice', 'x')")
    conn.commit()
    conn.close()
    path.chmod(0o600)
    return path.read_bytes()


@pytest.mark.parametrize("create", [False, True])
def test_another_sqlite_file_is_refused_and_left_as_it_was(tmp_path: Path, create: bool) -> None:
    """A database with other tables and layout 0 is no new store: refused naming --store, its bytes and journal
    mode untouched (no store tables written, no switch to WAL), whether or not a store may be made."""
    path = tmp_path / "acc.sqlite"
    before = _other_sqlite(path)
    with pytest.raises(StoreError, match=r"acc\.sqlite is not a partner store \(.*accounts.*\): check --store"):
        PartnerStore.open(path, "COL", create=create)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acc.sqlite"]


def test_an_empty_file_is_a_new_store_only_when_one_may_be_made(tmp_path: Path) -> None:
    """An empty file opened to be read (`store list`) is refused and stays empty; opened to be written, it is laid
    out as a new store."""
    path = tmp_path / "feed.sqlite"
    path.touch(mode=0o600)
    with pytest.raises(StoreError, match=r"is not a partner store \(empty: no tables\): check --store"):
        PartnerStore.open(path, "COL", create=False)
    assert path.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["feed.sqlite"]
    with PartnerStore.open(path, "COL", create=True) as store:
        assert store.counts().held == 0
    with PartnerStore.open(path, "COL", create=False) as store:
        assert store.counts().held == 0


# ---- where a subscriber resumes: the store's feed offsets against the group's ---------------------------------------
def test_the_store_notes_feed_offsets_with_what_it_applied(store: PartnerStore) -> None:
    """The offsets are noted per feed partition in the batch's own transaction: rolled back with it, never apart."""
    assert store.feed_offset("t.feed.col", 0) is None
    with pytest.raises(RuntimeError), store.transaction():
        store.apply(_at(_view(), 4), T0)
        store.keep_feed_offsets({("t.feed.col", 0): 5})
        raise RuntimeError("the batch failed")
    assert store.feed_offset("t.feed.col", 0) is None
    with store.transaction():
        store.apply(_at(_view(), 4), T0)
        store.keep_feed_offsets({("t.feed.col", 0): 5, ("t.feed.col", 2): 9})
    assert (store.feed_offset("t.feed.col", 0), store.feed_offset("t.feed.col", 2)) == (5, 9)
    assert store.feed_offset("t.feed.col", 1) is None and store.feed_offset("t.feed.usa", 0) is None


def test_a_store_keeps_its_id_and_a_copy_of_it_has_the_same(tmp_path: Path) -> None:
    """A store's id is made once; a copy of its file (a backup restored) is the same store, another file another."""
    first = tmp_path / "a" / "feed.sqlite"
    with PartnerStore.open(first, "COL") as one:
        made = one.store_id
    with PartnerStore.open(first, "COL") as again:
        assert again.store_id == made and len(made) == 32
    copy = tmp_path / "b" / "feed.sqlite"
    copy.parent.mkdir(mode=0o700)
    copy.write_bytes(first.read_bytes())
    copy.chmod(0o600)
    with PartnerStore.open(copy, "COL") as restored, PartnerStore.open(tmp_path / "c.sqlite", "COL") as other:
        assert restored.store_id == made and other.store_id != made


@pytest.mark.parametrize("damaged", ["-3", "\u00b2", "1" * 20, ""])
def test_a_damaged_feed_offset_is_refused(store: PartnerStore, damaged: str) -> None:
    """A kept offset that is not a whole number stops the subscriber (StoreError), rather than reading from 0."""
    store._conn.execute("INSERT INTO meta (key, value) VALUES ('feed-offset:t.feed.col[0]', ?)", (damaged,))
    with pytest.raises(StoreError, match="damaged"):
        store.feed_offset("t.feed.col", 0)


@pytest.mark.parametrize(("stored", "committed", "start", "owner", "expected"), [
    (40, 40, None, "store", None),  # in step: the group's offset
    (45, 40, None, "store", None),  # the store ahead: a crash between its commit and Kafka's; the batch comes again
    (12, 40, None, "store", 12),  # this store behind its own commits (a backup restored): read them again
    (12, None, None, "other", 12),  # the group has no offset (a new group): where the store saw Kafka commit
    (None, None, None, "other", None),  # a new group and a new store: from offset 0 (NoCommittedOffset)
    (None, 40, 0, "instance", 0),  # this instance read them into another store: everything the feed holds
    (None, 40, 25, "instance", 25),
    (None, 40, 40, "instance", None),  # nothing before the group's offset is left to read again
    (12, 40, None, "instance", 12),  # another store of this instance, which stands at 12
    (12, 40, None, "other", None),  # another instance read them into its own store: not read twice
    (None, 40, None, "other", None),
    # This store's own commits, but no offset noted: a copy restored from a backup made before it first read the
    # partition. Everything the feed holds is read again, never read on from the group's offset in silence.
    (None, 40, 0, "store", 0),
    (None, 40, 25, "store", 25),
    (None, 40, 40, "store", None),
])
def test_a_subscriber_resumes_where_its_own_store_stands_when_it_is_behind(
        stored: int | None, committed: int | None, start: int | None, owner: Owner, expected: int | None) -> None:
    """A store restored from a backup, or a new --store of the same instance, is behind the group: the records the
    group read since reach it again (harmless by the version rule), never skipped. What another instance read went
    to that instance's store and is not read again; a store ahead waits for the batch to come again."""
    assert resume_at(stored, committed, start, owner, stored if committed is None else None) == expected


@pytest.mark.parametrize(("stored", "confirmed", "expected"), [
    (520, None, None),  # a crash in the first batch, after the store's commit, before Kafka's: from offset 0
    (520, 491, 491),  # a crash in a later batch: from the last batch whose receipts Kafka committed
    (520, 520, 520),  # in step (the group's offsets expired, or a new group): where the store stands
])
def test_with_no_group_offset_a_subscriber_resumes_where_kafka_committed_its_receipts(
        stored: int, confirmed: int | None, expected: int | None) -> None:
    """The store commits a batch before Kafka commits its receipts and offsets. Killed in between, in a partition
    where the group has no offset yet, the store stood past records whose receipts were aborted: resuming from
    there, their receipts were never written, and `audit verify` could not tell. The confirmed offset is the one
    Kafka committed."""
    assert resume_at(stored, None, None, "store", confirmed) == expected


def test_a_store_of_the_sixth_layout_takes_its_feed_offsets_as_confirmed(tmp_path: Path) -> None:
    """A store an earlier Puente kept resumed from its applied offset when the group had none; brought up to date,
    that offset is taken as confirmed, so a subscriber whose group offsets expired reads on from it, not from
    offset 0 (past retention, a gap claimed for records the store holds)."""
    path = _older_layout(tmp_path, 6)
    with PartnerStore.open(path, "COL", retention=RETENTION) as store, store.transaction():
        store.keep_feed_offsets({("t.feed.col", 0): 5000})
    raw = sqlite3.connect(path)
    raw.execute("DELETE FROM meta WHERE key LIKE 'feed-confirmed:%'")
    raw.execute("PRAGMA user_version = 6")
    raw.commit()
    raw.close()
    with PartnerStore.open(path, "COL", retention=RETENTION) as store:
        assert store.feed_offset("t.feed.col", 0, confirmed=True) == 5000
        assert store.counts().held == 1
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_sixth_layout_store_that_confirms_already_keeps_what_it_did_not_confirm(tmp_path: Path) -> None:
    """A store a Puente that confirmed offsets before layout 7 kept: an applied offset with none confirmed there is a
    batch whose receipts Kafka never committed (a crash in a partition's first batch), and stays unconfirmed."""
    path = _older_layout(tmp_path, 6)
    with PartnerStore.open(path, "COL", retention=RETENTION) as store:
        with store.transaction():
            store.keep_feed_offsets({("t.feed.col", 0): 500, ("t.feed.col", 1): 900})
        store.confirm_feed_offsets({("t.feed.col", 1): 900})
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 6")
    raw.commit()
    raw.close()
    with PartnerStore.open(path, "COL", retention=RETENTION) as store:
        assert store.feed_offset("t.feed.col", 0, confirmed=True) is None
        assert store.feed_offset("t.feed.col", 1, confirmed=True) == 900


async def test_an_accepted_gap_is_confirmed_with_the_offset_past_it(store: PartnerStore) -> None:
    """--accept-gap commits the offset past the gap in Kafka at once: the store confirms it too, so a subscriber
    whose group offsets expire before the next batch reads on past the gap, not into it again."""
    tp = TopicPartition("t.feed.COL", 0)
    with store.transaction():
        store.keep_feed_offsets({(tp.topic, 0): 100})
    store.confirm_feed_offsets({(tp.topic, 0): 100})
    commits: list[Any] = []
    feed = SimpleNamespace(assignment=lambda: {tp}, seek=lambda *_: None,
                           beginning_offsets=_answer({tp: 4000}), end_offsets=_answer({tp: 6000}),
                           commit=lambda offsets: _done(commits.append(offsets)))
    signer = ReceiptSigner("COL-rcpt-2026a", lambda p: b"", lambda *a: False, ("COL-rcpt-2026a",))
    sub = Subscriber(KafkaConnection(bootstrap="unused:9092"), "COL", "t.feed.COL", "t.receipts.COL", object(),
                     object(), signer=signer, store=store, on_note=lambda _: None,  # type: ignore[arg-type]
                     accept_gaps=True)
    await sub._gap(feed, {tp: 100})  # type: ignore[arg-type]
    assert [{k.partition: v.offset for k, v in c.items()} for c in commits] == [{0: 4000}]
    assert store.feed_offset(tp.topic, 0) == 4000 and store.feed_offset(tp.topic, 0, confirmed=True) == 4000


def _answer(value: Any) -> Any:
    async def answer(*_: Any) -> Any:
        return value
    return answer


async def _done(_: Any) -> None:
    return None


def test_the_store_confirms_feed_offsets_once_kafka_committed(store: PartnerStore) -> None:
    """The confirmed offset is noted apart from the applied one, and never read past it."""
    with store.transaction():
        store.keep_feed_offsets({("t.feed.col", 0): 5})
    assert store.feed_offset("t.feed.col", 0) == 5 and store.feed_offset("t.feed.col", 0, confirmed=True) is None
    store.confirm_feed_offsets({("t.feed.col", 0): 5})
    with store.transaction():
        store.keep_feed_offsets({("t.feed.col", 0): 9})
    assert store.feed_offset("t.feed.col", 0) == 9 and store.feed_offset("t.feed.col", 0, confirmed=True) == 5
    store.confirm_feed_offsets({("t.feed.col", 0): 12})  # not past what the store applied
    assert store.feed_offset("t.feed.col", 0, confirmed=True) == 9
    store._conn.execute("UPDATE meta SET value = 'x' WHERE key = 'feed-confirmed:t.feed.col[0]'")
    with pytest.raises(StoreError, match="damaged"):
        store.feed_offset("t.feed.col", 0, confirmed=True)


def test_the_purge_forgets_the_held_elsewhere_mark_with_the_tombstone(store: PartnerStore) -> None:
    """A recall another store was to acknowledge leaves a mark beside its tombstone; the purge that drops the
    tombstone drops the mark, and only that one."""
    for alert_id in ("SNM:GONE", "SNM:KEPT"):
        with store.transaction():
            store.apply(Delivery(alert_id, "SEIZURE", 2, "RECALL", None, "t:0:1", None, None, None),
                        T0 if alert_id == "SNM:GONE" else T0 + timedelta(days=300))
            store.mark_held_elsewhere(alert_id)
    store.purge(T0 + timedelta(days=200))
    assert not store.held_elsewhere("SNM:GONE") and store.held_elsewhere("SNM:KEPT")


def test_an_update_leaves_nothing_of_the_text_it_replaced_in_the_files(store: PartnerStore) -> None:
    """A correction often exists to remove text (a watchlist hit on the wrong person): once a later version
    replaces the view held, the earlier text is gone from the store's file and its WAL, as a recall's is."""
    view = _view(summary=f"Avistamiento reportado por {SECRET}")
    store.apply(_at(view, 1), T0)
    assert SECRET.encode() in _bytes(store.path)
    applied = store.apply(_at(updated(view, 2, summary="corregido: otra persona"), 2), T0)
    assert applied.outcome is Outcome.RECEIVED
    assert store.show(view["alert_id"]).view["summary"] == "corregido: otra persona"
    assert not store.wipe_pending
    assert SECRET.encode() not in _bytes(store.path)


def test_a_view_that_arrives_expired_after_a_recall_starts_the_next_holding(tmp_path: Path) -> None:
    """After a recall without reason a holding starts again (the broker found the partner entitled anew). When the
    first view after it arrives already expired, the view after that still starts a holding of its own: its
    retention counts from its receipt, not from what the partner held before the recall."""
    store = PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL", retention=RETENTION)
    day = timedelta(days=1)
    try:
        view = _view()
        alert_id = view["alert_id"]
        store.apply(_at(view, 1), T0)
        assert store.apply(_at(recall_notice(view, 2, None), 2), T0 + day).outcome is Outcome.RECALLED
        markings = {**view["markings"], "expires_at": T0 + 99 * day}
        late = store.apply(_at(updated(view, 3, markings=markings), 3), T0 + 100 * day)
        assert late.outcome is Outcome.EXPIRED
        again = store.apply(_at(updated(view, 4), 4), T0 + 100 * day)
        assert again.outcome is Outcome.RECEIVED
        assert store.show(alert_id).first_received_at == T0 + 100 * day
        store.purge(T0 + 181 * day)  # 181 days after the first holding began, 81 after this one did
        assert store.show(alert_id).state == "HELD"
    finally:
        store.close()


def test_a_view_sealed_too_long_ago_after_a_recall_lends_its_sealing_time_to_no_later_view(
        store: PartnerStore) -> None:
    """Re-entitled after a recall without reason, a view sealed longer ago than its agreement's retention is EXPIRED;
    the next view, sealed now, starts the holding with its own sealing time: it is kept, not purged at once as if
    sealed when that old one was."""
    day = timedelta(days=1)
    view = _view()
    store.apply(_sealed(view, 1, T0), T0)
    assert store.apply(_sealed(recall_notice(view, 2, None), 2, T0), T0).outcome is Outcome.RECALLED
    now = T0 + 40 * day
    assert store.apply(_sealed(updated(view, 3), 3, now - 30 * day), now).outcome is Outcome.EXPIRED
    assert store.apply(_sealed(updated(view, 4), 4, now), now).outcome is Outcome.RECEIVED
    store.purge(now + timedelta(hours=1))
    assert store.show(view["alert_id"]).state == "HELD"


def test_the_purge_names_the_alerts_a_copy_holds_whose_text_it_deleted(store: PartnerStore) -> None:
    """An alert passed on (--out) whose text the purge deletes, past its expiry or its agreement's retention, is named
    by id: the copy holds it still, and its lines do not say when the agreement's retention ends. Alerts never passed
    on, and a purge that deletes no text, name none."""
    markings = _view()["markings"]
    expiring = _view(alert_id="SENAFRONT:EXPIRES", markings={**markings, "expires_at": T0 + timedelta(days=2)})
    short = _view(alert_id="SENAFRONT:SHORT", summary=SECRET)
    kept_here = _view(alert_id="SENAFRONT:HERE")
    with store.transaction():
        store.apply(_at(expiring, 1), T0)
        store.apply(_at(short, 2, "SHORT"), T0)
        store.apply(_at(kept_here, 3, "SHORT"), T0)
        store.mark_passed_on("SENAFRONT:EXPIRES")
        store.mark_passed_on("SENAFRONT:SHORT")
    assert store.purge(T0 + timedelta(days=1)).passed_on_total == 0
    purged = store.purge(T0 + timedelta(days=11))
    assert purged.passed_on == ("SENAFRONT:EXPIRES", "SENAFRONT:SHORT") and purged.passed_on_total == 2
    assert purged.expired + purged.retention == 3
    assert store.purge(T0 + timedelta(days=400)).passed_on_total == 0  # the content-free rows hold no text


# ---- a record read again before Kafka confirmed its receipt: the outcome it first had --------------------------------


def _recall_then_rerelease(store: PartnerStore) -> tuple[dict[str, Any], list[Delivery]]:
    """Version 1 received, its receipt confirmed (offset 2); then, in one batch whose receipts Kafka never committed,
    a recall without reason (2) and a re-release (3) of the same alert, the second overwriting the row the first
    wrote."""
    view = _view(summary=SECRET)
    with store.transaction():
        store.apply(_at(view, 1), T0)
        store.keep_feed_offsets({("t.feed.col", 0): 2})
    store.confirm_feed_offsets({("t.feed.col", 0): 2})
    batch = [_at(recall_notice(view, 2, None), 2), _at(updated(view, 3), 3)]
    return view, batch


def test_a_record_read_again_gets_the_outcome_it_first_had_though_a_later_one_rewrote_its_row(
        store: PartnerStore) -> None:
    """The batch read again (its Kafka commit failed after the store's): the recall is RECALLED again, as it first
    was, not judged against the re-release it was followed by (SUPERSEDED: auditors would see it overdue for good),
    with the version held before it; the re-release RECEIVED again; nothing changes and the counts add up. Once
    Kafka confirms past them, the same records (a feed rewound) are judged by the version rule."""
    view, batch = _recall_then_rerelease(store)
    with store.transaction():
        first = [store.apply(d, T0) for d in batch]
        store.keep_feed_offsets({("t.feed.col", 0): 4})
    assert [(a.outcome, a.held_version) for a in first] == [(Outcome.RECALLED, 1), (Outcome.RECEIVED, 2)]
    before = (store.show(view["alert_id"]), store.counts())
    with store.transaction():
        again = [store.apply(d, T0 + timedelta(minutes=5)) for d in batch]
    assert [(a.outcome, a.held_version, a.dropped) for a in again] == [(a.outcome, a.held_version, a.dropped)
                                                                      for a in first]
    assert (store.show(view["alert_id"]), store.counts()) == before
    assert store.counts().held == 1 and store.counts().recalled == 0
    store.confirm_feed_offsets({("t.feed.col", 0): 4})
    assert [store.apply(d, T0).outcome for d in batch] == [Outcome.SUPERSEDED, Outcome.DUPLICATE]


def test_a_record_a_later_one_rewrote_the_row_of_is_still_applied_unconfirmed(store: PartnerStore) -> None:
    """Killed between the two commits, the store names the earliest record it applied without a receipt, the recall
    at 2, though no row names it any more (the re-release at 3 rewrote it): a catch-up reads from there, so the
    recall is answered for too."""
    _, batch = _recall_then_rerelease(store)
    with store.transaction():
        for d in batch:
            store.apply(d, T0)
        store.keep_feed_offsets({("t.feed.col", 0): 4})
    assert store.applied_unconfirmed("t.feed.col", 0) == 2
    store.confirm_feed_offsets({("t.feed.col", 0): 4})
    assert store.applied_unconfirmed("t.feed.col", 0) is None


def test_what_is_kept_of_another_record_at_the_same_place_is_not_taken(store: PartnerStore) -> None:
    """A feed topic made anew holds other records at the places the old one's were applied at: what the store kept of
    the old one's is not the new one's outcome (another alert, or another version, is judged by the rule), and
    ``forget_applied`` drops it all for the partition."""
    view, other = _view(), _view("senan-gofast-seizure")
    store.apply(_at(view, 1), T0)
    assert store.apply(_at(other, 1), T0).outcome is Outcome.RECEIVED
    assert store.apply(_at(updated(other, 2), 1), T0).outcome is Outcome.RECEIVED
    assert store.apply(_at(updated(other, 2), 1), T0).outcome is Outcome.RECEIVED  # the same record again
    store.forget_applied("t.feed.col", 0)
    assert store.apply(_at(updated(other, 2), 1), T0).outcome is Outcome.DUPLICATE


def test_a_store_of_the_seventh_layout_keeps_the_outcomes_of_what_it_applies(tmp_path: Path) -> None:
    """A store without the table of outcomes opens: the table is made, its alerts kept, and a record it applies from
    then on gets its own outcome back when read again before Kafka confirms it."""
    path = _older_layout(tmp_path, 7)
    with PartnerStore.open(path, "COL", retention=RETENTION) as store:
        assert store.counts().held == 1
        notice = _at(recall_notice(_view(), 2, None), 2)
        rerelease = _at(updated(_view(), 3), 3)
        assert [store.apply(d, T0).outcome for d in (notice, rerelease)] == [Outcome.RECALLED, Outcome.RECEIVED]
        assert store.apply(notice, T0).outcome is Outcome.RECALLED
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 8


def test_a_damaged_kept_outcome_is_refused(store: PartnerStore) -> None:
    """A kept outcome that is none the store writes (the file edited outside Puente) is a StoreError naming the feed
    place, never a guess at the status."""
    store.apply(_at(_view(), 1), T0)
    with store.transaction():
        store._conn.execute("UPDATE applied SET outcome = 'LOST'")
    with pytest.raises(StoreError, match=r"kept outcome of feed record t\.feed\.col:0:1 is damaged"):
        store.apply(_at(_view(), 1), T0)
