"""Consent is given per alert and per partner, and is itself recorded: whatever a later version adds to
``markings.originator_consent`` is on its audit entry, a CONSENT or not (``broker.lifecycle.consent_given``): a
CONSENT's own partners under ``consent``, any other it adds under ``consent_added`` (a partner's auditor reads a
CONSENT as one only when it names that partner), and each partner it names has it in its decision's reasons; the state
keeps what was consented, so only what is new counts, and a version with no state or a state from before records all."""

from __future__ import annotations

from typing import Any

import pytest

from broker import lifecycle
from broker.lifecycle import AlertState, LifecycleBook, LifecycleStateError
from schemas import _bounds
from tests.unit.broker.test_lifecycle import Run, _first, _headers, _next


def _decisions(out: Any) -> dict[str, dict[str, Any]]:
    return {d["partner"]: d for d in out.entry["decisions"]}


def _recorded(out: Any) -> list[str]:
    return [*out.entry.get("consent", ()), *out.entry.get("consent_added", ())]


def _says_consented(out: Any, partner: str) -> bool:
    return any("the originator consented" in reason for reason in _decisions(out)[partner]["reasons"])


WIDENED = {  # the version after v1 (COL holds it, no consent), each adding USA's consent
    "an update": lambda a: _next(a, "UPDATE", originator_consent=["USA"]),
    "a reclassification": lambda a: _next(a, "RECLASSIFY", originator_consent=["USA"], caveats=[]),
    "a consent naming another partner": lambda a: _next(a, "CONSENT", partners=["COL"], originator_consent=["COL",
                                                                                                            "USA"]),
}


@pytest.mark.parametrize("widened", WIDENED.values(), ids=WIDENED.keys())
def test_a_consent_any_version_adds_is_on_the_record(widened: Any) -> None:
    """USA's consent added by a version that is no CONSENT naming USA: USA receives it on that consent, and the
    entry and USA's decision say so (before, the entry named only a CONSENT's own partners, or none)."""
    run = Run()
    first = _first()
    assert run.send(first).state.consent == frozenset()  # type: ignore[union-attr]
    out = run.send(widened(first))
    assert _headers(out)["USA"] == "DELIVER" and "USA" in out.entry["consent_added"] and _says_consented(out, "USA")
    assert out.state is not None and "USA" in out.state.consent  # type: ignore[operator]


def test_only_what_is_new_is_recorded_and_a_consent_dropped_and_given_again_is_recorded_again() -> None:
    """A CONSENT naming USA is on the record; an update carrying that consent on records none; one that drops it
    narrows; a later update adding it back records it again."""
    run = Run()
    first = _first()
    run.send(first)
    consent = _next(first, "CONSENT", partners=["USA"], originator_consent=["USA"])
    out = run.send(consent)
    assert _headers(out) == {"COL": "DELIVER", "USA": "DELIVER"} and out.entry["consent"] == ["USA"]
    assert out.state is not None and out.state.consent == frozenset({"USA"})
    update = _next(consent, "UPDATE")
    out = run.send(update)
    assert _headers(out) == {"COL": "DELIVER", "USA": "DELIVER"} and "consent" not in out.entry
    narrowed = _next(update, "UPDATE", originator_consent=[])
    out = run.send(narrowed)
    assert _headers(out) == {"COL": "DELIVER", "USA": "RECALL"} and "consent" not in out.entry
    back = run.send(_next(narrowed, "UPDATE", originator_consent=["USA"]))
    assert _headers(back)["USA"] == "DELIVER" and back.entry["consent_added"] == ["USA"]
    assert _says_consented(back, "USA") and "consent" not in back.entry


def test_a_first_version_consent_is_the_baseline() -> None:
    """The first publication's own consent is the state's: later versions carrying it on record nothing new."""
    run = Run()
    first = _first(consent=["USA"])
    assert _headers(run.send(first)) == {"COL": "DELIVER", "USA": "DELIVER"}
    out = run.send(_next(first, "UPDATE"))
    assert _headers(out) == {"COL": "DELIVER", "USA": "DELIVER"} and "consent" not in out.entry


def test_an_invalid_version_consents_to_nothing_and_the_state_keeps_what_was_consented() -> None:
    """A broken version (no lifecycle action) adding USA's consent: withdrawn, no consent on the record, and the
    state keeps none, so the sound version after it that adds USA's consent records it."""
    run = Run()
    first = _first()
    run.send(first)
    broken = _next(first, "UPDATE", originator_consent=["USA"])
    broken["lifecycle"] = None
    out = run.send(broken)
    assert _headers(out) == {"COL": "RECALL"} and "consent" not in out.entry
    assert out.state is not None and out.state.consent == frozenset()
    sound = run.send(_next({**first, "version": 2}, "UPDATE", originator_consent=["USA"]))
    assert sound.entry["consent_added"] == ["USA"]


def test_a_state_written_before_consent_was_recorded_holds_the_next_version_to_nothing() -> None:
    """A state without the field loads (consent None): every partner the next version names is recorded as given
    (recorded again at worst, never released on a consent with no record), and the state it writes records that
    version's, against which the next counts."""
    legacy = b'{"alert_id":"SNM:PTY-1","at":"2026-11-22T12:00:00Z","by_id":[],"by_slot":[],"counts":{},' \
             b'"holders":{"COL":1},"recalled":false,"version":1}'
    book = LifecycleBook()
    book.load(b"SNM:PTY-1", legacy)
    state = book.get("SNM:PTY-1")
    assert state is not None and state.consent is None
    round_trip = AlertState(3, {"COL": 3}, consent=frozenset({"USA", "COL"}))
    assert AlertState.decode("SNM:PTY-1", round_trip.encode("SNM:PTY-1", "2026-11-22T12:00:00Z")) == round_trip
    run = Run()
    first = _first()
    run.book.load(first["alert_id"].encode(), legacy.replace(b"SNM:PTY-1", first["alert_id"].encode()))
    second = _next(first, "UPDATE", originator_consent=["USA"])
    out = run.send(second)
    assert _headers(out) == {"COL": "DELIVER", "USA": "DELIVER"} and out.entry["consent_added"] == ["USA"]
    assert out.state is not None and out.state.consent == frozenset({"USA"})
    third = run.send(_next(second, "UPDATE", originator_consent=["USA", "COL"]))
    assert third.entry["consent_added"] == ["COL"]


@pytest.mark.parametrize("consent", ['"USA"', "[1]", '["' + "U" * 257 + '"]', "[" + ",".join(['"U"'] * 65) + "]"])
def test_a_state_with_a_malformed_consent_is_refused(consent: str) -> None:
    value = ('{"alert_id":"SNM:PTY-1","at":"2026-11-22T12:00:00Z","by_id":[],"by_slot":[],"consent":' + consent
             + ',"counts":{},"holders":{},"recalled":false,"version":1}').encode()
    with pytest.raises(LifecycleStateError, match="invalid consent"):
        AlertState.decode("SNM:PTY-1", value)


def test_a_version_with_no_state_records_every_consent_it_names() -> None:
    """Version 1 reached no one (no state written); version 2 releases to USA on a consent it carries: that consent
    is on the record (nothing was given before, since no one holds the alert), and version 3 carrying it on records
    nothing new."""
    run = Run()
    first = _first("SECRETO")
    assert run.send(first).state is None
    second = _next(first, "UPDATE", originator_consent=["USA"])
    out = run.send(second)
    assert out.entry["consent_added"] == ["USA"] and _says_consented(out, "USA")
    assert "consent_added" not in run.send(_next(second, "UPDATE")).entry


def test_a_consent_naming_one_partner_and_adding_another_keeps_them_apart() -> None:
    """A CONSENT naming USA whose markings also add COL: ``consent`` is USA alone (as COL's feed reads the version as
    an UPDATE, so must its auditor's row), COL is under ``consent_added``; both decisions say it."""
    run = Run()
    first = _first()
    run.send(first)
    out = run.send(_next(first, "CONSENT", partners=["USA"], originator_consent=["USA", "COL"]))
    assert out.entry["consent"] == ["USA"] and out.entry["consent_added"] == ["COL"]
    assert _says_consented(out, "USA") and _says_consented(out, "COL")


def test_the_state_bound_on_consent_codes_is_the_schemas() -> None:
    """A state the broker writes must be one its own decoder takes: its bound on consent codes is the schema's."""
    assert lifecycle.MAX_MARKING_ENTRIES == _bounds.MAX_MARKING_ENTRIES
    assert lifecycle.MAX_CONSENT_CODE >= _bounds.CODE
