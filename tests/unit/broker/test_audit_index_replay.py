"""Matching held receipts again at their turn (``PartitionIngest._replay``): bounded, and never stuck.

A partner writes its receipts topic: whatever it writes, a catch-up must end (a rebuild's index, or as close
as the bounds on what is held allow), and its cost must not grow with the square of what it wrote.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.audit import ChainWriter
from broker.audit_index import AuditIndex
from broker.audit_index import _ingest as ingest
from puente.wire import iso_utc
from tests.unit.broker.test_audit_index import COL_RCPT, DECISIONS, T0, _alert, _decision, _ingest, _signer

BROKER_KEY = "broker-sign-2026a"
COL_KEY = "COL-rcpt-2026a"
AT = iso_utc(T0 + timedelta(minutes=30))


def _delivered(*alerts: str) -> list[bytes]:
    """One decisions block per alert, each delivered to COL in feed t.feed.COL."""
    writer = ChainWriter(DECISIONS, 0)
    return [writer.block([_alert(alert, minute, [_decision("COL", "DELIVER", ["c"], feed="t.feed.COL")])],
                         BROKER_KEY, _signer(BROKER_KEY), iso_utc(T0)) for minute, alert in enumerate(alerts)]


def _receipt(writer: ChainWriter, alert: str, place: int, status: str = "RECEIVED", pad: int = 0) -> bytes:
    body: dict[str, Any] = {"partner": "COL", "alert_id": alert, "status": status, "version": 1,
                            "feed": f"t.feed.COL:0:{place}", "at": AT}
    if pad:
        body["detail"] = "x" * pad
    return writer.append("RECEIPT", body)


def _checkpoint(writer: ChainWriter) -> bytes:
    return writer.checkpoint(COL_KEY, _signer(COL_KEY), iso_utc(T0))


def _state(index: AuditIndex) -> dict[str, Any]:
    return {"receipts": index._all("SELECT \"offset\", alert_id, decision_id FROM receipts ORDER BY \"offset\""),
            "held": index._all("SELECT \"offset\" FROM unmatched_receipts ORDER BY \"offset\""),
            "findings": index._all("SELECT \"offset\", problem FROM findings ORDER BY \"offset\", problem")}


def test_a_receipt_held_again_in_a_replay_lets_go_of_none_the_replay_has_yet_to_match(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row a replay holds again past HELD_BYTES lets go of the oldest held only after the replay: the
    catch-up commits, and the index is a rebuild's (before, the receipt let go matched at its turn: KeyError)."""
    main = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL")
    side = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL/b")
    receipts = [_receipt(side, "SNM:X", 5),  # 0: the oldest by offset, vouched last (offset 9)
                _receipt(main, "SNM:X", 5),  # 1: held until X's delivery is indexed
                _receipt(main, "SNM:Z", 5, pad=10_000),  # 2: a row, until 1 takes place 5 at its turn
                _checkpoint(main)]
    receipts += [_receipt(main, "SNM:NOPE", 100 + i, pad=10_000) for i in range(4)]  # 4-7: held for good
    receipts += [_checkpoint(main), _checkpoint(side)]
    # Room for what the first catch-up holds (0, 1, 4-7), not for 2 as well.
    monkeypatch.setattr(ingest, "HELD_BYTES", sum(len(receipts[i]) for i in (0, 1, 4, 5, 6, 7)) + 100)
    topics = {DECISIONS: _delivered("SNM:Z", "SNM:X"), COL_RCPT: receipts}
    index = AuditIndex(tmp_path / "catch-up" / "index.sqlite")
    _ingest(index, topics, {DECISIONS: 1})
    assert index._all("SELECT \"offset\" FROM receipts") == [(2,)]
    _ingest(index, topics)
    _ingest(index, topics)
    rebuilt = AuditIndex(tmp_path / "rebuild" / "index.sqlite")
    _ingest(rebuilt, topics)
    assert _state(index) == _state(rebuilt)
    assert [r[0] for r in _state(index)["receipts"]] == [0, 1]
    assert _state(index)["held"] == [(4,), (5,), (6,), (7,)]


def test_a_replay_binds_each_place_again_once_however_often_its_receipts_alternate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Receipts alternating between two places (DUPLICATEs of A and B) after a held receipt due again: the replay
    binds each place again once, not once per receipt (each reading every receipt before: quadratic), and the
    index is a rebuild's."""
    pairs = 40
    writer = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL")
    receipts = []
    for i in range(pairs):
        status = "RECEIVED" if i == 0 else "DUPLICATE"
        receipts += [_receipt(writer, "SNM:A", 1, status), _receipt(writer, "SNM:B", 2, status)]
    receipts += [_receipt(writer, "SNM:X", 3), _checkpoint(writer)]  # held until X is indexed, then a row
    receipts += [_receipt(writer, alert, place, "DUPLICATE") for _ in range(pairs)
                 for alert, place in (("SNM:A", 1), ("SNM:B", 2))]
    receipts.append(_checkpoint(writer))
    topics = {DECISIONS: _delivered("SNM:A", "SNM:B", "SNM:X"), COL_RCPT: receipts}
    index = AuditIndex(tmp_path / "catch-up" / "index.sqlite")
    _ingest(index, topics, {DECISIONS: 2})
    bound: list[str] = []
    rebind = ingest.PartitionIngest._rebind

    def counted(self: ingest.PartitionIngest, partner: str, place: str, turn: tuple[int, int]) -> None:
        bound.append(place)
        rebind(self, partner, place, turn)

    monkeypatch.setattr(ingest.PartitionIngest, "_rebind", counted)
    _ingest(index, topics)
    assert sorted(bound) == ["t.feed.COL:0:1", "t.feed.COL:0:2"]
    rebuilt = AuditIndex(tmp_path / "rebuild" / "index.sqlite")
    _ingest(rebuilt, topics)
    assert _state(index) == _state(rebuilt)
    assert index._all("SELECT \"offset\" FROM receipts WHERE alert_id = 'SNM:X'") == [(2 * pairs,)]


@pytest.mark.parametrize("rows", [30, 120])
def test_a_held_receipt_that_still_fails_at_its_turn_replays_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    """A held receipt naming a place another alert holds is due again each time a decision of its alert is
    indexed; it still fails at its turn, so the catch-up replays none of the receipts after it: a few statements
    whatever their number (before: every one matched again, each catch-up), and the index is a rebuild's."""
    receipts_writer = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL")
    receipts = [_receipt(receipts_writer, "SNM:0", 0), _receipt(receipts_writer, "SNM:X", 0),
                _checkpoint(receipts_writer)]
    receipts += [_receipt(receipts_writer, f"SNM:{i}", i) for i in range(1, rows)]
    receipts.append(_checkpoint(receipts_writer))
    writer = ChainWriter(DECISIONS, 0)
    decisions = [writer.block([_alert(alert, 0, [_decision("COL", "DELIVER", ["c"], feed="t.feed.COL")])
                               for alert in [*(f"SNM:{i}" for i in range(rows)), "SNM:X"]],
                              BROKER_KEY, _signer(BROKER_KEY), iso_utc(T0))]
    index = AuditIndex(tmp_path / "catch-up" / "index.sqlite")
    _ingest(index, {DECISIONS: decisions, COL_RCPT: receipts})
    replays: list[tuple[int, int]] = []
    statements: list[str] = []
    replay = ingest.PartitionIngest._replay

    def counted(self: ingest.PartitionIngest, partner: str, turn: tuple[int, int]) -> None:
        replays.append(turn)
        replay(self, partner, turn)

    with monkeypatch.context() as patched:
        patched.setattr(ingest.PartitionIngest, "_replay", counted)
        for version in (2, 3):  # a WITHHOLD of a new version of X for COL: no receipt can match it
            decisions.append(writer.block([_alert("SNM:X", version, [_decision("COL", "WITHHOLD", ["w"])],
                                                  version=version)], BROKER_KEY, _signer(BROKER_KEY), iso_utc(T0)))
            index._conn.set_trace_callback(statements.append)
            _ingest(index, {DECISIONS: decisions, COL_RCPT: receipts})
            index._conn.set_trace_callback(None)
    assert replays == []
    assert len(statements) < 120, len(statements)  # the same whatever ``rows``: a replay is several per row
    rebuilt = AuditIndex(tmp_path / "rebuild" / "index.sqlite")
    _ingest(rebuilt, {DECISIONS: decisions, COL_RCPT: receipts})
    assert _state(index) == _state(rebuilt)
    assert index._all("SELECT \"offset\" FROM unmatched_receipts") == [(1,)]


def _steps(index: AuditIndex, topics: dict[str, list[bytes]]) -> int:
    """SQLite's virtual-machine steps (in hundreds) a catch-up of ``topics`` takes: a cost, not a time."""
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    index._conn.set_progress_handler(step, 100)
    try:
        _ingest(index, topics)
    finally:
        index._conn.set_progress_handler(None, 0)
    return steps[0]


def _rows_that_fail(tmp_path: Path, rows: int) -> int:
    """The steps of the catch-up in which a held receipt for X takes place 0 at its turn, before ``rows``
    receipts of A's delivery there, which all fail then: as a rebuild's index has it."""
    writer = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL")
    receipts = [_receipt(writer, "SNM:X", 0), _checkpoint(writer)]
    receipts += [_receipt(writer, "SNM:A", 0, "RECEIVED" if i == 0 else "DUPLICATE") for i in range(rows)]
    receipts.append(_checkpoint(writer))
    topics = {DECISIONS: _delivered("SNM:A", "SNM:X"), COL_RCPT: receipts}
    index = AuditIndex(tmp_path / f"catch-up-{rows}" / "index.sqlite")
    _ingest(index, topics, {DECISIONS: 1})
    assert index._one("SELECT COUNT(*) FROM receipts") == rows
    steps = _steps(index, topics)
    assert index._all("SELECT alert_id FROM receipts") == [("SNM:X",)]
    assert index._one("SELECT COUNT(*) FROM decisions WHERE receipt_at_ms IS NOT NULL") == 1  # X's, none of A's
    index.close()
    return steps


def test_a_replay_finds_each_delivery_s_first_receipt_again_once(tmp_path: Path) -> None:
    """Every row of one delivery failing in a replay costs in proportion to their number (before: the
    delivery's first receipt was found again from its remaining rows after each: quadratic)."""
    assert _rows_that_fail(tmp_path, 1600) < 3 * _rows_that_fail(tmp_path, 800)



def _held_at_their_turn(tmp_path: Path, named: str, rows: int, held: int) -> int:
    """The steps of a catch-up matching again ``held`` receipts for X, each due and still failing at its turn
    after ``rows`` rows: of A at place 0 where each X receipt names it (``named`` "place"; "unnumbered": rows
    naming no version, so binding no delivery), or of X's delivery at place 1 while each names another place."""
    writer = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL")
    if named == "unnumbered":
        receipts = [writer.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:A", "status": "REJECTED: KeyError",
                                              "feed": "t.feed.COL:0:0", "at": AT}) for _ in range(rows)]
    else:
        alert, place = ("SNM:A", 0) if named == "place" else ("SNM:X", 1)
        receipts = [_receipt(writer, alert, place, "RECEIVED" if i == 0 else "DUPLICATE") for i in range(rows)]
    receipts.append(_checkpoint(writer))
    receipts += [_receipt(writer, "SNM:X", 100 + i if named == "delivery" else 0) for i in range(held)]
    receipts.append(_checkpoint(writer))
    decider = ChainWriter(DECISIONS, 0)
    decisions = [decider.block([_alert(alert, 0, [_decision("COL", "DELIVER", ["c"], feed="t.feed.COL")])
                                for alert in ("SNM:A", "SNM:X")], BROKER_KEY, _signer(BROKER_KEY), iso_utc(T0))]
    topics = {DECISIONS: decisions, COL_RCPT: receipts}
    index = AuditIndex(tmp_path / f"catch-up-{named}-{rows}-{held}" / "index.sqlite")
    _ingest(index, topics)
    assert index._one("SELECT COUNT(*) FROM receipts") == rows
    assert index._one("SELECT COUNT(*) FROM unmatched_receipts") == held
    # A WITHHOLD of a new version of X for COL: every receipt held for X is due again, and fails again.
    decisions.append(decider.block([_alert("SNM:X", 1, [_decision("COL", "WITHHOLD", ["w"])], version=2)],
                                   BROKER_KEY, _signer(BROKER_KEY), iso_utc(T0)))
    steps = _steps(index, topics)
    assert index._one("SELECT COUNT(*) FROM unmatched_receipts") == held
    index.close()
    return steps


@pytest.mark.parametrize("named", ["place", "unnumbered", "delivery"])
def test_a_held_receipt_finds_what_was_bound_before_its_turn_in_a_few_steps(tmp_path: Path, named: str) -> None:
    """Receipts held and due again find what the rows before their turn bound at the place they name, or where
    the delivery they name is, in a few steps each: twice the rows and twice the held cost about twice as much
    (before: every row there read, or sorted, for each held receipt: four times)."""
    small = _held_at_their_turn(tmp_path, named, 600, 60)
    assert _held_at_their_turn(tmp_path, named, 1200, 120) < 3 * small


def _sent_steps(unopened: int) -> int:
    """VM steps of one ``sent`` lookup in the index, once ANALYZE has seen a partner's ``unopened`` places that
    name no delivery (receipts that opened nothing: REJECTED, say) and a thousand deliveries."""
    import sqlite3

    from broker.audit_index import PLACES_LAYOUT, SqlReceiptBook
    from broker.audit_index._store import _LAYOUT

    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(_LAYOUT + ";\n".join(PLACES_LAYOUT) + ";")
    conn.executemany("INSERT INTO receipt_places VALUES ('COL', 't.feed.COL', 0, ?, 'SNM:A', NULL, NULL)",
                     [(i,) for i in range(unopened)])
    conn.executemany("INSERT INTO decisions (id, topic, partition, \"offset\", alert_id, version, partner, decision, "
                     "went, hidden, extra, at_ms) VALUES (?, 'd', 0, ?, ?, 1, 'COL', 'DELIVER', 1, 0, '{}', ?)",
                     [(i, i, f"SNM:B{i}", i) for i in range(1000)])
    conn.execute("ANALYZE")  # as a catch-up's PRAGMA optimize does
    book = SqlReceiptBook(conn, ingest._SENT_SQL)
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    conn.set_progress_handler(count, 1)
    for i in range(20):
        assert len(book.sent("COL", f"SNM:B{i}")) == 1
    return steps[0]


def test_places_that_opened_nothing_do_not_slow_a_delivery_lookup() -> None:
    """A partner's receipts that opened nothing leave places naming no delivery. However many it writes, finding a
    delivery's place stays a seek: with a plain index over the delivery, ANALYZE took it for unselective, and every
    match read all of the partner's places."""
    assert _sent_steps(8000) < 2 * _sent_steps(1000)
