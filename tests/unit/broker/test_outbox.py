"""The outbox in a slot's lifecycle partition: feed records decided and committed, not yet written to their feeds.

A slot's transaction writes no feed record of its own batch (an aborted one's would stay readable to any
``read_uncommitted`` reader): it keeps them as outbox entries and a mark, and its next transaction writes them. Whoever
owns the slot next reads the partition back with ``Outbox``, which must give exactly the last mark's entries, and
refuse, never guess, a partition Puente did not write so.
"""

from __future__ import annotations

import pytest

from broker.lifecycle import (
    OUTBOX_KEY,
    AlertState,
    LifecycleStateError,
    Outbox,
    Unsent,
    is_outbox,
    outbox_records,
)

FEEDS = "t.feed."


def _unsent(n: int, tag: str = "a") -> list[Unsent]:
    return [Unsent(f"t.feed.USA{i % 2}", i % 3, f"ref-{tag}{i}".encode(), f"sealed-{tag}{i}".encode(),
                   (("puente-kind", b"ALERT"), ("puente-n", str(i).encode()))) for i in range(n)]


def _state(alert_id: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return alert_id.encode(), AlertState(1, {"USA": 1}).encode(alert_id, "2026-12-06T00:00:00Z"), []


def _read(*transactions: list[tuple[bytes, bytes | None, list[tuple[str, bytes]]]]) -> list[Unsent]:
    outbox = Outbox("lifecycle partition t.lifecycle[0]", FEEDS)
    for records in transactions:
        for key, value, headers in records:
            outbox.take(key, value or b"", headers)  # a tombstone reads back as an empty value
    return outbox.unsent


def test_the_last_mark_gives_back_its_entries_exactly() -> None:
    first, second = _unsent(3, "a"), _unsent(2, "b")
    assert _read() == []
    assert _read([_state("SNM:1"), *outbox_records(first)]) == first
    # The next transaction wrote the first's records and kept its own: only its own are unsent.
    assert _read([_state("SNM:1"), *outbox_records(first)], [_state("SNM:2"), *outbox_records(second)]) == second
    # A transaction of feed records alone leaves none unsent; states written later change nothing.
    assert _read(outbox_records(first), outbox_records([]), [_state("SNM:3")]) == []
    assert all(is_outbox(key) for key, _, _ in outbox_records(first)) and not is_outbox(b"SNM:1")


def test_an_entry_keeps_the_count_it_was_placed_under_and_how() -> None:
    """An entry says the feed's partition count its partition was chosen under and whether by the slot, so that a
    load can place it anew as the alert's next records go when the feed was made anew with fewer (``_place_unsent``);
    an entry of an earlier release, which says neither, still reads."""
    sent = [u._replace(placed=4, by_slot=i == 1) for i, u in enumerate(_unsent(3))]
    assert _read(outbox_records(sent)) == sent
    entry = outbox_records(sent)[1]
    assert entry[2][0] == ("puente.outbox", b'["t.feed.USA1",1,4,true]')
    assert _read(outbox_records(_unsent(2))) == _unsent(2)  # [topic, partition]: placed 0, not by slot


def test_a_compacted_partition_still_gives_the_last_marks_entries() -> None:
    """Compaction keeps each key's newest record: an older mark may stay while a later transaction's entries replaced
    some of its own (the cleaner stopped between that transaction's entries and its mark). Only the last mark is held
    to its entries."""
    older, newer = outbox_records(_unsent(3, "a")), outbox_records(_unsent(1, "b"))
    compacted = [older[1], older[2], older[3], newer[0], newer[1]]  # older's entry 0 replaced by newer's
    assert _read(compacted) == _unsent(1, "b")
    kept_old_mark = [older[1], older[2], older[3]]  # the older mark kept, its first entry gone
    with pytest.raises(LifecycleStateError, match="names 3 unsent feed records, but the 2 right before it"):
        _read(kept_old_mark)


def test_entries_a_later_mark_does_not_replace_are_tombstoned() -> None:
    """Each transaction deletes (a tombstone each) the previous mark's entries it does not replace, before its own:
    compaction then drops the sealed copies of views already in their feeds, which the lifecycle topic would
    otherwise keep for as long as the longest agreement, past the feed's own retention."""
    first, second = _unsent(3, "a"), _unsent(1, "b")
    records = outbox_records(second, held=len(first))
    assert [(k, v) for k, v, _ in records[:2]] == [(OUTBOX_KEY + b":1", None), (OUTBOX_KEY + b":2", None)]
    assert _read(outbox_records(first), records) == second
    assert [(k, v) for k, v, _ in outbox_records([], held=2)][:2] == [(OUTBOX_KEY + b":0", None),
                                                                      (OUTBOX_KEY + b":1", None)]
    assert _read(outbox_records(first), outbox_records([], held=3)) == []
    # Compacted: the first's entries and mark gone, replaced; the tombstones kept a while, then gone too.
    assert _read(records) == second and _read(records[2:]) == second


_WHERE_OK = [("puente.outbox", b'["t.feed.USA", 0]'), ("puente.outbox.key", b"k")]


@pytest.mark.parametrize("records, why", [
    ([(OUTBOX_KEY + b":7", b"v", _WHERE_OK), (OUTBOX_KEY + b":7", b"v", _WHERE_OK), (OUTBOX_KEY, b'{"unsent": 2}', [])],
     "not its entries 0 to 1"),
    ([(OUTBOX_KEY + b":1", b"v", _WHERE_OK), (OUTBOX_KEY + b":0", b"v", _WHERE_OK), (OUTBOX_KEY, b'{"unsent": 2}', [])],
     "not its entries 0 to 1"),
    ([(OUTBOX_KEY + b":0", b"v", [*_WHERE_OK[:1], ("puente.outbox.key", None)]), (OUTBOX_KEY, b'{"unsent": 1}', [])],
     "names no feed partition"),
    ([(OUTBOX_KEY + b":0", b"v", [*_WHERE_OK, ("x", None)]), (OUTBOX_KEY, b'{"unsent": 1}', [])],
     "names no feed partition"),
    ([(OUTBOX_KEY + b":0", b"v" * (1_048_577), _WHERE_OK), (OUTBOX_KEY, b'{"unsent": 1}', [])],
     "over 1048576 bytes"),
    ([(OUTBOX_KEY + b":12345678", b"v", _WHERE_OK), (OUTBOX_KEY, b'{"unsent": 1}', [])],
     "a key Puente does not write"),
    ([(OUTBOX_KEY + b":0", b"v", [("puente.outbox", b'["t.feed.USA", 0]'), ("puente.outbox.key", b"k")])],
     "no mark after them"),
    ([(OUTBOX_KEY, b'{"unsent": 1}', [])], "the 0 right before it are not its entries 0 to 0"),
    ([(OUTBOX_KEY, b'{"unsent": -1}', [])], "does not say how many"),
    ([(OUTBOX_KEY, b'{"unsent": true}', [])], "does not say how many"),
    ([(OUTBOX_KEY, b"not json", [])], "does not say how many"),
    ([(OUTBOX_KEY + b":x", b"v", [])], "a key Puente does not write"),
    ([(b"\x00other", b"v", [])], "a key Puente does not write"),
    ([(OUTBOX_KEY + b":0", b"v", [("puente.outbox", b'["t.audit.decisions", 0]'), ("puente.outbox.key", b"k")]),
      (OUTBOX_KEY, b'{"unsent": 1}', [])], "names no feed partition"),
    ([(OUTBOX_KEY + b":0", b"v", [("puente.outbox", b'["t.feed.USA", -1]'), ("puente.outbox.key", b"k")]),
      (OUTBOX_KEY, b'{"unsent": 1}', [])], "names no feed partition"),
    # Placed under a count: the partition below it, a count no feed has, how as a bool.
    *[([(OUTBOX_KEY + b":0", b"v", [("puente.outbox", where), ("puente.outbox.key", b"k")]),
        (OUTBOX_KEY, b'{"unsent": 1}', [])], "names no feed partition")
      for where in (b'["t.feed.USA", 3, 3, false]', b'["t.feed.USA", 0, 0, false]', b'["t.feed.USA", 0, 2, 1]',
                    b'["t.feed.USA", 0, 2]', b'["t.feed.USA", 0, 2, false, 1]', b'["t.feed.USA", 0, 1e9, false]',
                    b'["t.feed.USA", 0, 99999999999, false]', b'["t.feed.USA", 0, true, false]')],
    # An empty value is a tombstone: it stands before its transaction's entries, never among the mark's own.
    ([(OUTBOX_KEY + b":0", b"", [("puente.outbox", b'["t.feed.USA", 0]'), ("puente.outbox.key", b"k")]),
      (OUTBOX_KEY, b'{"unsent": 1}', [])], "the 0 right before it"),
    ([(OUTBOX_KEY + b":0", b"v", [("puente.outbox.key", b"k")]), (OUTBOX_KEY, b'{"unsent": 1}', [])],
     "names no feed partition"),
    # Puente writes an index as str(i): Kafka would keep ":00" as another key beside ":0".
    ([(OUTBOX_KEY + b":00", b"v", _WHERE_OK), (OUTBOX_KEY, b'{"unsent": 1}', [])], "a key Puente does not write"),
    ([(OUTBOX_KEY + b":01", b"v", _WHERE_OK), (OUTBOX_KEY, b'{"unsent": 2}', [])], "a key Puente does not write"),
    # A mark is its count alone, with no headers.
    ([(OUTBOX_KEY, b'{"unsent": 0, "sent": 3}', [])], "does not say how many"),
    ([(OUTBOX_KEY, b'{"unsent": 0}', [("x", b"y")])], "does not say how many"),
    # Each transaction ends its outbox records with a mark, and compaction keeps the last: a tombstone after it is
    # none of Puente's.
    ([(OUTBOX_KEY, b'{"unsent": 0}', []), (OUTBOX_KEY + b":3", None, [])], "an outbox tombstone with no mark"),
])
def test_a_partition_puente_did_not_write_so_is_refused(
        records: list[tuple[bytes, bytes | None, list[tuple[str, bytes]]]], why: str) -> None:
    with pytest.raises(LifecycleStateError, match=why) as caught:
        _read(records)
    assert str(caught.value).startswith("lifecycle partition t.lifecycle[0]: ") and "\n" not in str(caught.value)
