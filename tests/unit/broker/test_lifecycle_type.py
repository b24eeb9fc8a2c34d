"""An alert's type is fixed at its first publication: a later version naming another is refused (and, where it
would supersede what partners hold, withdraws the alert from them), and no recall notice or audit entry names a
type other than the one the alert was first published as."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from broker.lifecycle import AlertState, LifecycleBook, LifecycleStateError
from policies import recall_notice
from policies._load import schema_fields
from puente.dev.synthetic import generate
from tests.unit.broker.test_lifecycle import CODEC, NOW, Run, _bare, _first, _headers, _next


def _as(alert: dict[str, Any], alert_type: str) -> dict[str, Any]:
    """``alert`` as an alert of ``alert_type``, with a payload of that type (a synthetic one's)."""
    other = next(a for a in generate(40, seed=3, now=NOW) if a["alert_type"] == alert_type)
    return {**copy.deepcopy(alert), "alert_type": alert_type, "payload": copy.deepcopy(other["payload"])}


def _decisions(out: Any) -> dict[str, dict[str, Any]]:
    return {d["partner"]: d for d in out.entry["decisions"]}


def test_the_first_version_records_its_type_and_a_state_reads_it_back() -> None:
    """The state names the type (``AlertState.alert_type``) and its record round-trips it."""
    first = _first()
    state = Run().send(first).state
    assert state is not None and state.alert_type == "WATCHLIST_HIT"
    book = LifecycleBook()
    book.load(b"SNM:X-1", state.encode("SNM:X-1", "2026-11-22T12:00:00Z"))
    assert book.get("SNM:X-1").alert_type == "WATCHLIST_HIT"  # type: ignore[union-attr]


def test_a_later_version_of_another_type_withdraws_the_alert_and_its_notice_names_the_first_type() -> None:
    """COL holds a watchlist hit; v2 is a border event: withheld from everyone (``alert.invalid``), COL sent a recall
    notice naming WATCHLIST_HIT (what it holds), never BORDER_EVENT, and the audit entry names the first type too.
    The state keeps the first type: a v3 of the other type is refused again (and remembered: its number is taken,
    ``test_dead_letter_seen``), and a sound v4 of it reaches COL again."""
    run = Run()
    first = _first()
    run.send(first)
    out = run.send(_as(_next(first, "UPDATE"), "BORDER_EVENT"))
    assert out.dead_reason is None and _headers(out) == {"COL": "RECALL"}
    col, usa = _decisions(out)["COL"], _decisions(out)["USA"]
    assert col["recalls"] == 1 and "alert.invalid" in col["rules"] and usa["rules"] == ["alert.invalid"]
    assert "another alert type" in col["reasons"][0] and "another alert type" in usa["reasons"][0]
    assert "BORDER_EVENT" not in str(out.entry)
    assert out.entry["alert_type"] == "WATCHLIST_HIT"
    notice = CODEC.decode(run.sealers["COL"].sealed[-1])
    assert notice["alert_type"] == "WATCHLIST_HIT" and notice["version"] == 2
    assert notice["payload"]["person"]["surnames"] is None and notice["lifecycle"]["action"] == "RECALL"
    assert _bare(out.state, typed=True) == AlertState(2, {}, originator="SNM", alert_type="WATCHLIST_HIT")
    second = {**first, "version": 2}
    again = run.send(_as(_next(second, "UPDATE"), "SEIZURE"))
    assert again.dead_reason == "invalid" and "another alert type" in again.entry["detail"] and again.feeds == []
    assert _headers(run.send(_next({**first, "version": 3}, "UPDATE"))) == {"COL": "DELIVER"}


def test_a_later_version_of_another_type_no_one_holds_is_dead_lettered() -> None:
    """No partner holds the alert: nothing to withdraw, the version is dead-lettered and the state is left as it was."""
    run = Run()
    first = _first("SECRETO")
    run.send(first)
    run.send(_next(first, "UPDATE"))  # a state at v2 with no holder
    before = run.book.get(first["alert_id"])
    assert before is not None and before.holders == {}
    out = run.send(_as(_next({**first, "version": 2}, "RECLASSIFY", classification="RESTRINGIDO"), "SEIZURE"))
    assert out.dead_reason == "invalid" and "another alert type" in out.entry["detail"] and out.feeds == []
    assert "version 3 is now taken: publish the corrected alert as the next version above it" in out.entry["detail"]
    assert run.book.get(first["alert_id"]) is before
    again = run.send(_as(_next({**first, "version": 2}, "RECLASSIFY", classification="RESTRINGIDO"), "SEIZURE"))
    assert again.dead_reason == "replay" and "publish the next version above it" in again.entry["detail"]


@pytest.mark.parametrize(("case", "reason"), [("recalled", "recalled"), ("the state's version", "replay"),
                                              ("an older version", "stale")])
def test_a_version_of_another_type_that_cannot_be_placed_is_refused_as_one_of_the_alerts_own(case: str,
                                                                                             reason: str) -> None:
    """Where there is nothing to withdraw at its number (the alert recalled for good, or the number not above the
    state's, beyond the replay window), a version of another type is dead-lettered for the reason a version of the
    alert's own type is, not for its type: the originator is told the alert was recalled, or the version processed."""
    run = Run()
    first = _first()
    run.send(first)
    second = _next(first, "RECALL", reason="ERROR") if case == "recalled" else _next(first, "UPDATE")
    run.send(second)
    run.seen.clear()
    late = {"recalled": _next(second, "UPDATE"), "the state's version": second, "an older version": first}[case]
    own = run.send(copy.deepcopy(late))
    other = run.send(_as(late, "SEIZURE"))
    assert own.dead_reason == other.dead_reason == reason and other.feeds == []
    assert "another alert type" not in other.entry["detail"]


def test_a_recall_built_on_a_copy_of_another_type_names_the_alerts_own() -> None:
    """A recall's content is not checked (it may be built on any copy on the topic, a refused one too): its notices
    and audit entry name the type the state records, not the copy's."""
    run = Run()
    first = _first(consent=["USA"])
    run.send(first)
    out = run.send(_as(_next(first, "RECALL", reason="ERROR"), "BORDER_EVENT"))
    assert _headers(out) == {"COL": "RECALL", "USA": "RECALL"} and out.entry["alert_type"] == "WATCHLIST_HIT"
    for partner in ("COL", "USA"):
        assert CODEC.decode(run.sealers[partner].sealed[-1])["alert_type"] == "WATCHLIST_HIT"
    assert out.state is not None and out.state.recalled and out.state.alert_type == "WATCHLIST_HIT"


def test_a_state_written_before_types_were_recorded_takes_the_next_admitted_versions() -> None:
    """A state of the current release without the type loads (None) and its next content version is not held to a
    type (nothing says the first's); the state it writes records that version's type, which holds the next."""
    legacy = AlertState(1, {"COL": 1}, originator="SNM")
    raw = legacy.encode("SNM:X-1", "2026-11-22T12:00:00Z")
    assert b"alert_type" not in raw
    run = Run()
    first = _first()
    run.book.load(first["alert_id"].encode(), legacy.encode(first["alert_id"], "2026-11-22T12:00:00Z"))
    assert run.book.get(first["alert_id"]).alert_type is None  # type: ignore[union-attr]
    out = run.send(_as(_next(first, "UPDATE"), "SEIZURE"))
    assert _headers(out) == {"COL": "DELIVER"} and out.state is not None and out.state.alert_type == "SEIZURE"
    back = run.send(_next({**first, "version": 2}, "UPDATE"))
    assert _headers(back) == {"COL": "RECALL"} and "another alert type" in _decisions(back)["COL"]["reasons"][0]
    assert CODEC.decode(run.sealers["COL"].sealed[-1])["alert_type"] == "SEIZURE"


@pytest.mark.parametrize("bad", [b'""', b'"watchlist hit"', b'1', b'"WATCHLIST_HIT\\n"', b'"' + b"A" * 65 + b'"'])
def test_a_state_whose_type_is_no_type_symbol_stops_the_slot(bad: bytes) -> None:
    """A type is read back only as a schema symbol's form; anything else is a state Puente did not write."""
    raw = AlertState(1, {"COL": 1}, alert_type="SEIZURE").encode("A:1", "t").replace(b'"SEIZURE"', bad)
    with pytest.raises(LifecycleStateError, match="invalid alert type"):
        LifecycleBook().load(b"A:1", raw)


def test_a_book_shares_a_state_only_between_alerts_of_one_type() -> None:
    """States equal but for their type are not one shared state: each alert reads back its own type."""
    book = LifecycleBook()
    book.put("A:1", AlertState(1, {"COL": 1}, originator="SNM", alert_type="SEIZURE"))
    book.put("A:2", AlertState(1, {"COL": 1}, originator="SNM", alert_type="BORDER_EVENT"))
    assert book.get("A:1").alert_type == "SEIZURE" and book.get("A:2").alert_type == "BORDER_EVENT"  # type: ignore[union-attr]


def _schema_empty(alert_type: str) -> dict[str, Any]:
    """The empty payload of ``alert_type`` read off the schema's field list, path by path (not the way
    ``recall_notice`` builds it): every field the empty value the schema gives it, a required record its own fields,
    nothing below a nullable record (None) or an array (empty)."""
    fields = schema_fields()[alert_type]
    payload: dict[str, Any] = {}
    for path, info in fields.items():
        if not path.startswith("payload.") or "[]" in path:
            continue
        parts, record = path.split(".")[1:], payload
        ancestors = [".".join(["payload", *parts[:i]]) for i in range(1, len(parts))]
        if any(fields[a].nullable for a in ancestors):
            continue
        for part in parts[:-1]:
            record = record[part]
        record[parts[-1]] = {} if info.kind == "record" and not info.nullable else info.empty()
    return payload


def test_the_schemas_empty_payloads_are_what_this_test_expects() -> None:
    """The expectation below is read off the schema as this test means: a few fields by hand."""
    hit, seizure, border = (_schema_empty(t) for t in ("WATCHLIST_HIT", "SEIZURE", "BORDER_EVENT"))
    assert hit["person"]["surnames"] is None and hit["person"]["documents"] == [] and hit["list_name"] == ""
    assert seizure["items"] == [] and seizure["conveyance"] is None and seizure["persons_detained"] == 0
    assert border["event_type"] == "OTHER" and border["nationalities_observed"] == []


@pytest.mark.parametrize("alert_type", ["WATCHLIST_HIT", "SEIZURE", "BORDER_EVENT"])
def test_a_notice_of_any_type_holds_that_types_empty_payload_whatever_the_alert_held(alert_type: str) -> None:
    """The notice's payload is the empty one of the type it names, as the schema gives it (``_schema_empty``), and
    nothing of the payload it was built from (here another type's), so it encodes."""
    expected = _schema_empty(alert_type)
    for other in generate(40, seed=3, now=NOW):
        notice = recall_notice({**other, "alert_type": alert_type}, 3, None)
        assert notice["payload"] == expected and notice["alert_type"] == alert_type
        assert CODEC.decode(CODEC.encode(notice))["payload"] == expected


def test_states_that_name_different_types_are_different_states() -> None:
    """The type is part of a state's ``==``: a test comparing states sees a wrong or missing type."""
    typed = AlertState(2, {"COL": 2}, originator="SNM", alert_type="SEIZURE")
    assert typed == AlertState(2, {"COL": 2}, originator="SNM", alert_type="SEIZURE")
    assert typed != AlertState(2, {"COL": 2}, originator="SNM", alert_type="BORDER_EVENT")
    assert typed != AlertState(2, {"COL": 2}, originator="SNM")
