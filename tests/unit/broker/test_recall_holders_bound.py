"""What `audit recalls` keeps of a partner's receipts of a recalled alert is bounded: holders, their text and
answers; what is past the bounds is counted, and the recall fails closed (never acknowledged)."""

from __future__ import annotations

from broker.audit.recalls import (
    ACKNOWLEDGED,
    MAX_ANSWERS,
    MAX_CHAIN_STORES,
    MAX_HOLDER_BYTES,
    MAX_HOLDERS,
    OUTSTANDING,
    RecallBook,
)
from tests.unit.broker.test_recalls import NOW, _ack, _recall, _receipt

PAIR = ("SNM:A", "COL")


def _book(holders: int, answered: int, *, size: int = 32) -> RecallBook:
    """A recall of SNM:A (v2) to COL, ``holders`` stores that received v1 (each id ``size`` characters), the first
    ``answered`` of which acknowledged the recall."""
    book = RecallBook()
    book.add(_recall("SNM:A", "COL", 2, 10))
    stores = [f"{i:08x}".ljust(size, "s") for i in range(holders)]
    for store in stores:
        book.add(_receipt("SNM:A", "RECEIVED", 1, 30, "COL", store))
    for store in stores[:answered]:
        book.add(_receipt("SNM:A", "RECALLED", 2, 9, "COL", store))
    return book


def test_holders_past_the_bound_are_counted_not_kept_and_cut() -> None:
    """500 receipts each naming a new ~900 KB store: MAX_HOLDERS holders kept, each cut to MAX_HOLDER_BYTES, the
    other receipts counted; the recall waits on the holders kept and says how many receipts were not."""
    book = _book(500, 0, size=900_000)
    assert len(book.held[PAIR]) == MAX_HOLDERS and book.unlisted[PAIR] == 500 - MAX_HOLDERS
    assert all(len(h.encode()) <= MAX_HOLDER_BYTES for h in book.held[PAIR])
    assert sum(len(h) for h in book.stores["COL"].values()) <= MAX_HOLDER_BYTES
    [row] = book.status({}, NOW)
    assert (row.state, len(row.waiting_on), row.unlisted) == (OUTSTANDING, MAX_HOLDERS, 500 - MAX_HOLDERS)


def test_a_recall_with_holders_not_kept_is_never_acknowledged() -> None:
    """Every holder kept answered, but receipts named holders past the bound: the recall is not acknowledged (a
    holder not listed may still hold the alert), though it waits on none of those listed."""
    [row] = _book(MAX_HOLDERS + 3, MAX_HOLDERS).status({}, NOW)
    assert (row.state, row.acknowledged_at, row.waiting_on, row.unlisted) == (OUTSTANDING, None, (), 3)


def test_answers_past_the_bound_are_counted_and_fail_closed() -> None:
    """One holder answering MAX_ANSWERS + 10 times: MAX_ANSWERS kept, 10 counted, the recall not acknowledged."""
    book = _book(1, 0)
    for _ in range(MAX_ANSWERS + 10):
        book.add(_receipt("SNM:A", "RECALLED", 2, 9, "COL", "00000000".ljust(32, "s")))
    assert len(book.acks[PAIR]) == MAX_ANSWERS and book.unlisted[PAIR] == 10
    [row] = book.status({}, NOW)
    assert (row.state, row.unlisted) == (OUTSTANDING, 10)


def test_within_the_bounds_a_recall_is_judged_as_before() -> None:
    """MAX_HOLDERS holders, each answering: acknowledged, nothing counted as not kept."""
    [row] = _book(MAX_HOLDERS, MAX_HOLDERS).status({}, NOW)
    assert (row.state, row.waiting_on, row.unlisted) == (ACKNOWLEDGED, (), 0)


def test_the_stores_of_chains_are_noted_for_a_bounded_number_of_chains() -> None:
    """Receipts of MAX_CHAIN_STORES + 5 chains, each naming a store: the stores of MAX_CHAIN_STORES chains noted."""
    book = RecallBook()
    for i in range(MAX_CHAIN_STORES + 5):
        book.add(_receipt(f"SNM:{i}", "RECEIVED", 1, 30, f"COL/{i}", f"{i:032x}"))
    book.add(_ack("SNM:0", "COL", 1, 1))
    assert len(book.stores["COL"]) == MAX_CHAIN_STORES


def test_one_partners_chains_never_take_the_room_of_anothers() -> None:
    """COL's MAX_CHAIN_STORES chains, then CRI's, each naming a store, before USA's chain names the store its older
    receipts were written for: USA's chain is still noted, and its recall, answered by that store, is acknowledged
    (before: the bound was for all partners together, USA's chain went unnoted and the recall read overdue)."""
    book = RecallBook()
    book.add(_recall("SNM:U", "USA", 2, 10))
    for i in range(MAX_CHAIN_STORES):
        book.add(_receipt("SNM:7", "DUPLICATE", 1, 30, f"COL/i{i}", f"{i:032x}"))
    for i in range(24):
        book.add({**_receipt("SNM:8", "RECEIVED", 1, 30, f"CRI/i{i}", f"{i:032x}"), "partner": "CRI"})
    usa = {"alert_id": "SNM:U", "partner": "USA", "chain": "USA"}
    book.add({**_receipt("SNM:U", "RECEIVED", 1, 20), **usa})  # written before receipts named their store
    book.add({**_receipt("SNM:U", "RECALLED", 2, 9, store="ab" * 16), **usa})
    [row] = book.status({}, NOW)
    assert (row.partner, row.state, row.waiting_on) == ("USA", ACKNOWLEDGED, ())
    assert book.stores["USA"] == {"chain USA": "ab" * 16} and len(book.stores["COL"]) == MAX_CHAIN_STORES
