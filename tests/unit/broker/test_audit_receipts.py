"""Receipts matched to deliveries by the feed record they name: alert, feed, version sent, time, one record each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.audit.receipts import (
    FeedPlace,
    Placed,
    ReceiptMatch,
    Sent,
    match_receipt,
    sent_version,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


class Book:
    """A ``ReceiptBook`` in memory: the feed records sent, and what receipts bound at each place."""

    def __init__(self, sent: list[tuple[str, str, str, int, datetime]]) -> None:
        self.rows = [(i, *row) for i, row in enumerate(sent)]  # (key, alert, partner, feed, version, at)
        self.places: dict[tuple[str, FeedPlace], Placed] = {}

    def sent(self, partner: str, alert_id: str) -> list[Sent]:
        where = {p.key: place for (who, place), p in self.places.items() if who == partner and p.key is not None}
        return [Sent(k, feed, version, _ms(at), where.get(k)) for k, alert, who, feed, version, at in self.rows
                if alert == alert_id and who == partner]

    def placed(self, partner: str, place: FeedPlace) -> Placed | None:
        return self.places.get((partner, place))

    def bind(self, match: ReceiptMatch) -> None:
        old = self.places.get((match.partner, match.place))
        self.places[(match.partner, match.place)] = Placed(
            match.alert_id, old.version if old and old.version is not None else match.version,
            old.key if old and old.key is not None else match.key)

    def take(self, doc: dict[str, Any]) -> ReceiptMatch | str:
        """Match ``doc`` and bind it when it matches, as the index and `audit verify` do."""
        found = match_receipt({"kind": "RECEIPT", "chain": "COL", "partner": "COL", **doc}, self)
        if not isinstance(found, str):
            self.bind(found)
        return found


def _receipt(version: int | None, offset: int, *, status: str = "RECEIVED", minutes: int = 30,
             alert: str = "X", feed: str = "t.feed.COL") -> dict[str, Any]:
    return {"alert_id": alert, "version": version, "status": status, "feed": f"{feed}:0:{offset}",
            "at": (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")}


def _three() -> Book:
    """X delivered to COL as version 1, then 2, then a recall notice (version 3), ten minutes apart."""
    return Book([("X", "COL", "t.feed.COL", v, T0 + timedelta(minutes=10 * (v - 1))) for v in (1, 2, 3)])


def test_a_receipt_acknowledges_the_one_delivery_of_its_version_and_no_other() -> None:
    """Each receipt binds the delivery of the version it names at the record it names; none stands for a later one."""
    book = _three()
    first = book.take(_receipt(1, 0))
    assert isinstance(first, ReceiptMatch) and first.key == 0 and first.place == ("t.feed.COL", 0, 0)
    assert isinstance(again := book.take(_receipt(1, 0, status="DUPLICATE")), ReceiptMatch) and again.key == 0
    assert isinstance(recall := book.take(_receipt(3, 2, status="RECALLED")), ReceiptMatch) and recall.key == 2
    assert {p.key for p in book.places.values()} == {0, 2}  # version 2 has no receipt


def test_a_rejected_receipt_acknowledges_nothing_until_the_record_opens() -> None:
    """A REJECTED receipt names no version: it binds its place to its alert and acknowledges no delivery; a later
    receipt of the same record that opened it acknowledges that delivery, and only it."""
    book = _three()
    rejected = book.take(_receipt(None, 0, status="REJECTED: SignatureError", minutes=1))
    assert isinstance(rejected, ReceiptMatch) and rejected.key is None
    assert book.placed("COL", ("t.feed.COL", 0, 0)) == Placed("X", None, None)
    opened = book.take(_receipt(1, 0))
    assert isinstance(opened, ReceiptMatch) and opened.key == 0
    book.rows.append((3, "Y", "COL", "t.feed.COL", 1, T0))
    again = book.take(_receipt(None, 0, status="REJECTED: KeyError", alert="Y"))
    assert "one feed record holds one delivery" in str(again)


@pytest.mark.parametrize("status", ["\u202eDEVIECER", "RECЕIVED", "received", "OK", "REJECTED", "", None, 1,
                                    "REJECTED: x; y"])
def test_a_receipt_stating_a_status_no_subscriber_writes_acknowledges_nothing(status: object) -> None:
    """Statuses are an allow-list (``known_status``): one that only looks like RECEIVED (a bidi override, a Cyrillic
    letter), another spelling, or none at all is a finding, binds no place and acknowledges no delivery; the same
    receipt saying RECEIVED then acknowledges it."""
    book = _three()
    problem = book.take(_receipt(1, 0, status=status))  # type: ignore[arg-type]
    assert isinstance(problem, str) and "a status no subscriber writes" in problem and "acknowledges nothing" in problem
    assert "\u202e" not in problem and not book.places
    assert isinstance(found := book.take(_receipt(1, 0)), ReceiptMatch) and found.key == 0


def test_a_receipt_naming_a_version_never_sent_is_refused() -> None:
    """Version 99 of X was never sent: the receipt is a finding that says which versions were, not a receipt."""
    problem = _three().take(_receipt(99, 5))
    assert problem == ("receipt for alert 'X' version 99 at feed t.feed.COL:0:5, which the audited decisions never "
                       "delivered to COL at that version (it sent version 1, 2, 3 there)")


def test_a_receipt_dated_before_its_delivery_is_refused() -> None:
    """A receipt cannot precede what it acknowledges (beyond the clock skew allowed): a pre-written one is a finding."""
    book = Book([("X", "COL", "t.feed.COL", 2, T0 + timedelta(days=2))])
    problem = book.take(_receipt(2, 7, minutes=1))
    assert isinstance(problem, str) and "before the broker delivered it 2026-03-03T12:00:00Z" in problem
    assert isinstance(book.take(_receipt(2, 7, minutes=2 * 24 * 60 - 30)), ReceiptMatch)  # within the skew


def test_a_receipt_names_its_delivery_at_one_record_in_its_own_feed() -> None:
    """Another feed, another alert, a record already holding another version, or the delivery already at another
    record: each is a finding, never a second acknowledgement."""
    book = _three()
    assert "never delivered to COL in that feed" in str(book.take(_receipt(1, 0, feed="t.feed.USA")))
    assert str(book.take(_receipt(1, 0, alert="Z"))).endswith("which the audited decisions never delivered to COL")
    assert isinstance(book.take(_receipt(1, 0)), ReceiptMatch)
    assert "already name for alert 'X' version 1" in str(book.take(_receipt(2, 0)))
    assert "already put that delivery at t.feed.COL:0:0" in str(book.take(_receipt(1, 4)))
    assert "names no feed record" in str(book.take({**_receipt(2, 1), "feed": "t.feed.COL"}))
    assert "states no time" in str(book.take({**_receipt(2, 1), "at": None}))


def test_a_recall_notice_carries_the_version_the_broker_gave_it() -> None:
    """An officer's recall built on an older version goes out above what partners hold (previous + 1): its receipt
    names that version; a view carries the alert's own."""
    recall = {"decision": "RECALL", "action": "RECALL", "version": 2, "previous_version": 3}
    assert sent_version(recall) == 4 and sent_version({**recall, "version": 6}) == 6
    assert sent_version({"decision": "RECALL", "version": 2, "previous_version": 3}) == 2  # entitlement lost
    assert sent_version({"decision": "DELIVER"}) == 1 and sent_version({"version": "2"}) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["X", "Y"]), st.sampled_from(["t.feed.COL", "t.feed.OLD"]),
                          st.integers(1, 4), st.integers(0, 120)), max_size=8),
       st.lists(st.tuples(st.sampled_from(["X", "Y"]), st.sampled_from(["t.feed.COL", "t.feed.OLD"]),
                          st.one_of(st.none(), st.integers(0, 6)), st.integers(0, 5), st.integers(-90, 240),
                          st.sampled_from(["RECEIVED", "DUPLICATE", "RECALLED", "REJECTED: CryptoError"])),
                max_size=12))
def test_no_receipt_acknowledges_what_it_does_not_name(
        sent: list[tuple[str, str, int, int]], receipts: list[tuple[str, str, int | None, int, int, str]]) -> None:
    """Whatever receipts a partner signs: each acknowledged delivery has the alert, feed and version its receipt
    names and is not dated after it (beyond the skew); a delivery sits at one record, and a record holds one."""
    book = Book([(a, "COL", f, v, T0 + timedelta(minutes=m)) for a, f, v, m in sent])
    bound: dict[int, FeedPlace] = {}
    for alert, feed, version, offset, minutes, status in receipts:
        found = book.take({"alert_id": alert, "version": version, "status": status, "feed": f"{feed}:0:{offset}",
                           "at": (T0 + timedelta(minutes=minutes)).isoformat()})
        if isinstance(found, str) or found.key is None:
            continue
        _, s_alert, _, s_feed, s_version, s_at = book.rows[found.key]
        assert (s_alert, s_feed, s_version) == (alert, feed, version) and not status.startswith("REJECTED")
        assert s_at - timedelta(hours=1) <= T0 + timedelta(minutes=minutes)
        assert bound.setdefault(found.key, found.place) == found.place
    assert len(set(bound.values())) == len(bound)
