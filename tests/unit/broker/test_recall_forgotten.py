"""'Recalled for good' outlives the lifecycle topic's retention: once an alert's state may have aged out, a
later version of it is dead-lettered ("forgotten"), never delivered as if it were a first publication;
within the retention, and for alerts that reached no one, nothing changes."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from worker_fakes import counted

from broker import worker as worker_module
from broker.lifecycle import AlertState, LifecycleBook
from broker.pipeline import Outcome, Pipeline
from broker.topology import key_partition
from broker.worker import BrokerWorker
from puente.wire import Record
from tests.unit.broker.test_lifecycle import (
    CODEC,
    NOW,
    ORIGINATORS,
    SLOTS,
    Policy,
    Sealer,
    _bare,
    _first,
    _headers,
    _next,
)

RETENTION = 365


class Clocked:
    """One slot's pipeline, fed version after version at the times given; Kafka's retention and the replay
    window are played by ``age_out``."""

    def __init__(self, retention: int | None = RETENTION) -> None:
        self.sealers = {"COL": Sealer(), "USA": Sealer()}
        self.now = NOW

        def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
            return key.split(":", 1)[0], int(self.now.timestamp() * 1000)

        self.pipeline = counted(Pipeline(Policy(), CODEC, self.sealers, origin, SLOTS,  # type: ignore[arg-type]
                                         originators=ORIGINATORS, lifecycle_retention_days=retention))
        self.book = LifecycleBook()
        self.seen: set[str] = set()
        self.offset = 0

    def send(self, alert: dict[str, Any], at: datetime) -> Outcome:
        self.now, self.offset = at, self.offset + 1
        key = alert["alert_id"].encode()
        rec = Record("t.ingress.SNM", key_partition(key, 3), self.offset, key, CODEC.encode(alert), (),
                     int(at.timestamp() * 1000))
        out = self.pipeline.process(rec, self.seen, at, self.book.get)
        if out.seen_id:
            self.seen.add(out.seen_id)
        if out.state is not None:
            self.book.put(alert["alert_id"], out.state)
        return out

    def age_out(self) -> None:
        """The lifecycle topic's retention and the replay window have passed: every state and id is gone."""
        self.book = LifecycleBook()
        self.seen.clear()


def _old(alert: dict[str, Any], days: int) -> dict[str, Any]:
    """``alert`` about an event ``days`` before NOW."""
    older = copy.deepcopy(alert)
    older["occurred_at"] = NOW - timedelta(days=days)
    older["reported_at"] = NOW - timedelta(days=days) + timedelta(hours=1)
    return older


def test_a_later_version_of_a_recalled_alert_whose_state_aged_out_is_dead_lettered() -> None:
    """Recalled, then past the retention: an UPDATE of the id is dead-lettered as forgotten, nothing sent."""
    run = Clocked()
    first = _first()
    run.send(first, NOW)
    recall = _next(first, "RECALL", reason="ERROR")
    assert _bare(run.send(recall, NOW + timedelta(days=1)).state) == AlertState(2, {}, recalled=True, originator="SNM")
    run.age_out()
    out = run.send(_next(recall, "UPDATE"), NOW + timedelta(days=RETENTION + 1))
    assert out.entry["kind"] == "DEAD_LETTER" and out.entry["reason"] == "forgotten"
    assert out.feeds == [] and out.state is None
    assert f"{RETENTION} days" in out.entry["detail"] and "an event this old is not shared" in out.entry["detail"]


def test_the_first_version_of_a_recalled_alert_republished_after_its_state_aged_out_is_dead_lettered() -> None:
    """Recalled for good, then past the retention: the same version 1 published again (an adapter run over an old
    export gives the same id) is not a new alert for every partner: dead-lettered as forgotten, nothing sent. A
    first version about an event younger than the retention is delivered as ever."""
    run = Clocked()
    first = _first()
    run.send(first, NOW)
    run.send(_next(first, "RECALL", reason="ERROR"), NOW + timedelta(days=1))
    run.age_out()
    out = run.send(first, NOW + timedelta(days=RETENTION + 1))
    assert out.entry["kind"] == "DEAD_LETTER" and out.entry["reason"] == "forgotten"
    assert out.feeds == [] and out.state is None and "an event this old is not shared" in out.entry["detail"]
    fresh = _first()
    fresh["alert_id"] = fresh["alert_id"] + "-B"
    fresh["occurred_at"] = NOW + timedelta(days=RETENTION - 2)
    fresh["reported_at"] = NOW + timedelta(days=RETENTION - 2)
    assert _headers(run.send(fresh, NOW + timedelta(days=RETENTION + 1))) == {"COL": "DELIVER"}


def test_within_the_retention_a_version_of_an_alert_that_reached_no_one_is_a_first_delivery() -> None:
    """v1 withheld from everyone (no state), v2 days later: delivered as before, and remembered from then."""
    run = Clocked()
    first = _first("SECRETO")
    out = run.send(first, NOW)
    assert out.feeds == [] and out.state is None
    out = run.send(_next(first, "RECLASSIFY", classification="RESTRINGIDO"), NOW + timedelta(days=RETENTION - 10))
    assert _headers(out) == {"COL": "DELIVER"} and _bare(out.state) == AlertState(2, {"COL": 2}, originator="SNM")


def test_an_update_within_the_retention_is_unchanged() -> None:
    """A held alert updated months later, its state kept: the holder gets the new version."""
    run = Clocked()
    first = _first()
    run.send(first, NOW)
    out = run.send(_next(first, "UPDATE"), NOW + timedelta(days=RETENTION - 30))
    assert _headers(out) == {"COL": "DELIVER"} and _bare(out.state) == AlertState(2, {"COL": 2}, originator="SNM")


def test_a_first_version_about_an_old_event_is_remembered_though_it_reached_no_one() -> None:
    """An alert about an event over half the retention old, withheld from everyone, gets a state, so that a
    later version, even past the event's retention age, is still decided rather than taken for forgotten."""
    run = Clocked()
    first = _old(_first("SECRETO"), RETENTION // 2 + 2)
    out = run.send(first, NOW)
    assert out.feeds == [] and _bare(out.state) == AlertState(1, {}, originator="SNM")
    out = run.send(_next(first, "RECLASSIFY", classification="RESTRINGIDO"), NOW + timedelta(days=RETENTION // 2))
    assert _headers(out) == {"COL": "DELIVER"} and out.entry["previous_version"] == 1
    young = _first("SECRETO")
    young["alert_id"] = "SNM:OTHER-1"
    assert run.send(young, NOW).state is None  # the common case writes nothing more


def test_the_check_follows_the_event_time_and_the_configured_retention() -> None:
    """No state: an UPDATE about an event younger than the retention (less a day) is decided; an older one
    is forgotten; a pipeline told no retention takes the replay window, the least the topic ever keeps."""
    run = Clocked()
    assert _headers(run.send(_next(_old(_first(), RETENTION - 2), "UPDATE"), NOW)) == {"COL": "DELIVER"}
    other = _old(_first(), RETENTION)
    other["alert_id"] = "SNM:OTHER-2"
    assert run.send(_next(other, "UPDATE"), NOW).entry["reason"] == "forgotten"
    default = Clocked(retention=None)
    assert default.send(_next(_old(_first(), 10), "UPDATE"), NOW).entry["reason"] == "forgotten"
    assert _headers(default.send(_next(_first(), "UPDATE"), NOW)) == {"COL": "DELIVER"}


def test_a_recall_of_a_forgotten_alert_is_taken_and_remembered_for_good() -> None:
    """A recall needs no state to be safe (it delivers nothing): taken, and its recalled state refuses what
    follows."""
    run = Clocked()
    recall = _next(_old(_first(), RETENTION + 5), "RECALL", reason="LEGAL")
    out = run.send(recall, NOW)
    assert out.entry["kind"] == "ALERT" and out.feeds == []
    assert _bare(out.state) == AlertState(2, {}, recalled=True, originator="SNM")
    assert run.send(_next(recall, "UPDATE"), NOW).entry["reason"] == "recalled"


def test_a_worker_forgets_states_as_the_topic_does_and_a_later_version_is_then_refused() -> None:
    """The book forgets each state written longer ago than the retention (a worker running for months holds what a
    new owner would read back, not every state it wrote): an alert recalled a day after its event, then updated
    once its state is forgotten, is dead-lettered as forgotten; a state written a day later is still held."""
    run = Clocked()
    run.book = LifecycleBook(RETENTION * 86_400_000)

    def send(alert: dict[str, Any], at: datetime) -> Outcome:
        out = run.send(alert, at)  # puts the state written now; the worker prunes at each commit
        at_ms = int(at.timestamp() * 1000)
        if out.state is not None:
            run.book.put(alert["alert_id"], out.state, at_ms)
        run.book.prune(at_ms)
        return out

    first = _first()
    send(first, NOW)
    recall = _next(first, "RECALL", reason="ERROR")
    send(recall, NOW + timedelta(days=1))
    other = _first()
    other["alert_id"] = "SNM:OTHER-3"
    send(other, NOW + timedelta(days=2))
    assert len(run.book) == 2
    # The retention and the book's slack (a day) past the recall: its state is forgotten, the younger one held.
    send(_first("SECRETO"), NOW + timedelta(days=RETENTION + 2, hours=1))
    assert run.book.get(first["alert_id"]) is None and run.book.get(other["alert_id"]) is not None
    out = send(_next(recall, "UPDATE"), NOW + timedelta(days=RETENTION + 2, hours=2))
    assert out.entry["kind"] == "DEAD_LETTER" and out.entry["reason"] == "forgotten" and out.feeds == []


def test_the_book_prunes_the_oldest_writes_first_and_a_rewrite_moves_a_state_last() -> None:
    book = LifecycleBook(1_000)
    after = 1_000 + LifecycleBook.PRUNE_SLACK_MS  # the retention and the slack
    for i, at in enumerate((0, 10, 20)):
        book.put(f"A{i}", AlertState(1, {"COL": 1}), at)
    book.put("A0", AlertState(2, {"COL": 2}), 30)  # written again: young again
    assert book.prune(after + 5) == 0
    assert book.prune(after + 15) == 1 and book.get("A1") is None and _bare(book.get("A0")) == AlertState(2, {"COL": 2})
    assert book.prune(after + 25) == 1 and len(book) == 1
    book.load(b"A0", None, 40)  # a tombstone
    assert len(book) == 0 and book.prune(10**9) == 0
    assert LifecycleBook().prune(10**12) == 0  # no retention: every state is kept


def test_the_worker_ages_states_by_kafkas_append_times_not_its_own_clock(monkeypatch: Any) -> None:
    """After each commit the worker puts the batch's states and prunes at the newest append time of its ingress
    records (Kafka's clock): its own clock set years ahead forgets nothing the topic still holds."""
    class _Seen:
        def add(self, alert_id: str, appended: int) -> None: ...
        def prune(self) -> None: ...

    day = 86_400_000
    state = SimpleNamespace(seen=_Seen(), book=LifecycleBook(RETENTION * day))
    monkeypatch.setattr(worker_module.time, "time", lambda: 4_000_000_000.0)  # the year 2096
    BrokerWorker._committed(state, {"A|1": 1_000 * day}, {"A": AlertState(1, {"COL": 1})})  # type: ignore[arg-type]
    BrokerWorker._committed(state, {"B|1": 1_001 * day}, {"B": AlertState(1, {"COL": 1})})  # type: ignore[arg-type]
    assert len(state.book) == 2
    BrokerWorker._committed(state, {"C|1": (1_000 + RETENTION + 2) * day}, {})  # type: ignore[arg-type]
    assert state.book.get("A") is None and state.book.get("B") is not None


def test_a_recall_reaches_an_alert_whose_areas_are_no_codes_and_the_audit_keeps_no_free_text() -> None:
    """An alert published before areas had to be codes (a province written out, an agency's free text): its recall
    still goes out (a recall's content is never used), and the audit entry records "(not an area)", not the text."""
    run = Clocked()
    first = _first()
    run.send(first, NOW)
    recall = _next(first, "RECALL", reason="ERROR")
    recall["location"] = {**(recall.get("location") or {}), "province": "Darién", "border_sector": "Juan Perez CC 80"}
    out = run.send(recall, NOW + timedelta(hours=1))
    assert out.entry["kind"] == "ALERT" and _headers(out) == {"COL": "RECALL"}
    assert out.entry["sector"] == "(not an area)" and "Juan" not in str(out.entry)
    update = _next(recall, "UPDATE")
    update["lifecycle"] = {"action": "UPDATE", "reason": None, "partners": []}
    dead = run.send(update, NOW + timedelta(hours=2)).entry  # content again: codes needed, checked first
    assert dead["kind"] == "DEAD_LETTER" and dead["reason"] == "invalid" and "must be a code" in dead["detail"]
