"""Originator control across versions: an alert's later versions (update, re-marking, consent, recall) must
name the originator of its first version, so one foreign unit relayed by COMBIFRON cannot change or withdraw
another's alert; states written before the originator was recorded still load and keep working as before."""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson
import pytest

from adapters.lifecycle import Change, Found, next_of, take
from broker.lifecycle import AlertState, LifecycleBook, LifecycleStateError
from broker.pipeline import Originator
from broker.topology import Slots, TopicNames
from puente.errors import ConfigError
from puente.settings import AGENCY_UNITS
from tests.unit.broker.test_lifecycle import Run, _bare, _first, _headers, _next

SLOTS = Slots(("COMBIFRON",), 3, TopicNames("t"))
ORIGINATORS = {"COMBIFRON": Originator.of("COMBIFRON", "COL", "PAN", AGENCY_UNITS["COMBIFRON"])}


def Relay() -> Run:
    """COMBIFRON's slot: a pipeline with its committed states, fed version after version."""
    return Run(SLOTS, ORIGINATORS)


def _colombian(unit: str = "ARC", alert_id: str = "COMBIFRON:COL-ARC-2026-00412",
               classification: str = "RESTRINGIDO") -> dict[str, Any]:
    alert = copy.deepcopy(_first(classification))
    alert["agency"], alert["alert_id"] = "COMBIFRON", alert_id
    alert["markings"]["originator"] = {"agency": f"COL-{unit}", "unit": "Colombia", "country": "COL"}
    return alert


def _as(alert: dict[str, Any], unit: str) -> dict[str, Any]:
    """``alert`` as another Colombian unit would send it: same id, its own originator."""
    other = copy.deepcopy(alert)
    other["markings"]["originator"]["agency"] = f"COL-{unit}"
    return other


def test_the_first_versions_originator_is_remembered() -> None:
    """The state of a first version names its originator, and a later version's state keeps it."""
    run = Relay()
    first = _colombian()
    assert _bare(run.send(first).state) == AlertState(1, {"COL": 1}, originator="COL-ARC")
    assert _bare(run.send(_next(first, "UPDATE")).state) == AlertState(2, {"COL": 2}, originator="COL-ARC")


@pytest.mark.parametrize("action", ["UPDATE", "RECLASSIFY", "RECALL"])
def test_a_later_version_naming_another_originator_is_dead_lettered(action: str) -> None:
    """DIJIN's version of ARC's alert (an update, a re-marking, a recall) is dead-lettered as ``originator``:
    nothing goes to any partner, ARC's state is untouched, and ARC's own next version is still taken."""
    run = Relay()
    first = _colombian()
    run.send(first)
    later = _as(_next(first, action, reason="ERROR" if action == "RECALL" else None), "DIJIN")
    if action == "RECLASSIFY":
        later["markings"]["classification"] = "SECRETO"
    out = run.send(later)
    assert out.dead_reason == "originator" and out.feeds == [] and out.state is None
    assert "first version names originator COL-ARC" in out.entry["detail"]
    assert _bare(run.book.get(first["alert_id"])) == AlertState(1, {"COL": 1}, originator="COL-ARC")
    own = run.send(_next(first, "UPDATE"))
    assert _headers(own) == {"COL": "DELIVER"} and _bare(own.state) == AlertState(2, {"COL": 2}, originator="COL-ARC")


def test_a_unit_may_not_take_over_an_alert_its_agency_published_in_its_own_name() -> None:
    """COMBIFRON names itself as originator of an alert in ARC's series (no series binds the agency's own name):
    ARC's later version is then held to the first version's originator, and refused."""
    run = Relay()
    first = _colombian()
    first["markings"]["originator"]["agency"] = "COMBIFRON"
    first["markings"]["originator"]["country"] = "COL"
    assert _bare(run.send(first).state) == AlertState(1, {"COL": 1}, originator="COMBIFRON")
    out = run.send(_as(_next(first, "UPDATE"), "ARC"))
    assert out.dead_reason == "originator" and "first version names originator COMBIFRON" in out.entry["detail"]


def test_an_alert_delivered_off_its_units_series_can_still_be_updated_and_recalled() -> None:
    """An alert whose id is not in its unit's series (published before the broker held units to theirs, or
    another way) whose state names its originator: that unit's update and recall are taken, the state holding
    every version to it; another unit's are refused."""
    run = Relay()
    first = _colombian(alert_id="COMBIFRON:OPS-2026-00412")
    run.book.put(first["alert_id"], AlertState(1, {"COL": 1}, originator="COL-ARC"), 0)
    assert run.send(_as(_next(first, "UPDATE"), "DIJIN")).dead_reason == "originator"
    update = _next(first, "UPDATE")
    assert _headers(run.send(update)) == {"COL": "DELIVER"}
    assert _headers(run.send(_next(update, "RECALL", reason="ERROR"))) == {"COL": "RECALL"}


def test_a_recall_again_must_name_the_first_originator_too() -> None:
    """A recall whose notice could not be sealed may be repeated, but only by the alert's originator."""
    run = Relay()
    first = _colombian()
    run.send(first)
    col = run.sealers.pop("COL")
    recall = _next(first, "RECALL", reason="ERROR")
    assert _bare(run.send(recall).state) == AlertState(2, {"COL": 1}, recalled=True, originator="COL-ARC")
    run.sealers["COL"] = col
    assert run.send(_as(_next(recall, "RECALL", reason="ERROR"), "DIJIN")).dead_reason == "originator"
    assert _headers(run.send(_next(recall, "RECALL", reason="ERROR"))) == {"COL": "RECALL"}


def test_with_no_state_the_first_version_processed_sets_the_originator() -> None:
    """A first version that reached no one leaves no state: the next version the broker processes is the first
    it knows, and its originator is the one later versions must name."""
    run = Relay()
    first = _colombian(classification="SECRETO")
    assert run.send(first).state is None
    down = _next(first, "RECLASSIFY", classification="RESTRINGIDO")
    assert _bare(run.send(down).state) == AlertState(2, {"COL": 2}, originator="COL-ARC")
    assert run.send(_as(_next(down, "UPDATE"), "DIJIN")).dead_reason == "originator"


def test_a_state_written_before_originators_were_recorded_loads_and_keeps_the_old_rule() -> None:
    """A state without the field loads (originator None); its alert's later versions are held to the originators
    the agency may name and to the id's series (another unit's version is refused), and the state written after
    them still names none: a later version's originator is no proof of the first's. (It records the admitted
    version's alert type, which holds the versions after it: ``test_lifecycle_type``.)"""
    legacy = b'{"alert_id":"COMBIFRON:COL-ARC-2026-00412","at":"2026-11-22T12:00:00Z","holders":{"COL":1},' \
             b'"recalled":false,"version":1}'
    run = Relay()
    run.book.load(b"COMBIFRON:COL-ARC-2026-00412", legacy)
    # Written before references too: COL was given the alert's own id, and is still named by it (and fed through
    # the slot's feed partition, where its copy is).
    col = frozenset({"COL"})
    assert _bare(run.book.get("COMBIFRON:COL-ARC-2026-00412")) == AlertState(1, {"COL": 1}, by_id=col, by_slot=col)
    first = _colombian()
    assert run.send(_as(_next(first, "UPDATE"), "DIJIN")).dead_reason == "originator"
    out = run.send(_next(first, "UPDATE"))
    assert _headers(out) == {"COL": "DELIVER"} and _bare(out.state) == AlertState(2, {"COL": 2}, by_id=col, by_slot=col)
    assert out.feeds[0].key == first["alert_id"].encode()
    assert out.state.encode(first["alert_id"], "2026-11-22T12:00:00Z") == legacy.replace(b'"COL":1', b'"COL":2') \
        .replace(b'"version":1', b'"version":2') \
        .replace(b'00412","at"', b'00412","alert_type":"' + first["alert_type"].encode() + b'","at"') \
        .replace(b'"holders"', b'"by_id":["COL"],"by_slot":["COL"],"consent":'
                 + orjson.dumps(sorted(first["markings"]["originator_consent"])) + b',"counts":{"COL":3},"holders"')


def test_a_state_with_an_originator_is_read_back_and_a_bad_one_stops_the_slot() -> None:
    """The originator round-trips (up to the longest an agency may name, COL- and a 64-character unit); anything
    but such a code stops the slot like any other unreadable state."""
    longest = "COL-" + "U" * 64
    for name in ("SNM", "COL-ARC", longest):
        state = AlertState(2, {"COL": 1}, recalled=True, originator=name)
        book = LifecycleBook()
        book.load(b"A:1", state.encode("A:1", "t"))
        assert book.get("A:1") == state
    good = AlertState(1, {}, originator="COL-ARC").encode("A:1", "t")
    for bad in (b'"COL ARC"', b"7", b'""', b'"COL-\\u001b"', b'"' + b"X" * 69 + b'"'):
        with pytest.raises(LifecycleStateError, match="invalid originator"):
            LifecycleBook().load(b"A:1", good.replace(b'"COL-ARC"', bad))


def _found(*copies: dict[str, Any]) -> Found:
    """What ``puente recall`` reads back: ``copies`` at offsets 0, 1, ..., each proving COMBIFRON's origin."""
    found = Found()
    for offset, alert in enumerate(copies):
        take(found, offset, alert, ORIGINATORS["COMBIFRON"])
    return found


def test_a_recall_built_on_a_refused_version_of_another_unit_still_withdraws_the_alert() -> None:
    """v2 on the topic names another unit (the broker refused it): `puente recall` builds on ARC's own latest copy,
    v1, naming ARC, so the recall is taken and the holder told, however often the poisoned copy is the latest."""
    relay = Relay()
    first = _colombian()
    assert relay.send(first).state is not None
    poisoned = _as(_next(first, "UPDATE"), "DIJIN")
    assert relay.send(poisoned).dead_reason == "originator"
    found = _found(first, poisoned)
    assert found.refused == 1
    recall = next_of(found, Change("RECALL", reason="ERROR"))
    assert recall["markings"]["originator"]["agency"] == "COL-ARC" and recall["version"] == 2
    out = relay.send(recall)
    assert out.dead_reason is None and out.feeds and out.state is not None and out.state.recalled


def test_a_recall_names_the_first_copy_the_broker_takes_not_one_it_refused() -> None:
    """v1 was first published naming a unit no COMBIFRON alert may name (refused), then again correctly: the recall
    names the first copy whose originator the agency may name, so it lands, however the topic's copies run."""
    relay = Relay()
    first = _colombian()
    refused = copy.deepcopy(first)
    refused["markings"]["originator"] = {"agency": "PAN-SENAFRONT", "unit": "x", "country": "COL"}
    assert relay.send(refused).dead_reason == "originator"
    assert relay.send(first).state is not None
    recall = next_of(_found(refused, first), Change("RECALL", reason="ERROR"))
    assert recall["markings"]["originator"]["agency"] == "COL-ARC"
    assert relay.send(recall).dead_reason is None


def test_a_recall_without_a_state_to_hold_it_to_names_an_originator_the_agency_may_name() -> None:
    """With no state naming the first originator (none reached anyone, or a state from before they were kept), a
    recall is still held to the originators the agency may name at all: another country's service is refused."""
    relay = Relay()
    recall = _next(_colombian(), "RECALL", reason="ERROR")
    recall["markings"]["originator"] = {"agency": "USA-DEA", "unit": "x", "country": "USA"}
    assert relay.send(recall).dead_reason == "originator"


def test_with_no_state_a_units_recall_of_another_units_alert_is_refused_and_records_nothing() -> None:
    """DIJIN recalls ARC's alert before any version of it reached a partner (none published yet, or the first
    withheld from everyone): refused as ``originator``, no recalled state is written, and ARC's own first version,
    or its downgrade that releases the alert, is then taken."""
    run = Relay()
    first = _colombian()
    out = run.send(_as(_next(first, "RECALL", reason="ERROR"), "DIJIN"))
    assert out.dead_reason == "originator" and out.state is None and "COMBIFRON:<unit>-" in out.entry["detail"]
    assert run.book.get(first["alert_id"]) is None
    assert _bare(run.send(first).state) == AlertState(1, {"COL": 1}, originator="COL-ARC")
    withheld = Relay()
    secret = _colombian(classification="SECRETO")
    assert withheld.send(secret).state is None
    assert withheld.send(_as(_next(secret, "RECALL", reason="ERROR"), "DIJIN")).dead_reason == "originator"
    down = _next(secret, "RECLASSIFY", classification="RESTRINGIDO")
    assert _headers(withheld.send(down)) == {"COL": "DELIVER"}


@pytest.mark.parametrize("unit", ["JUAN_PEREZ_CC80123456", "juan.perez", "ARC"])
def test_a_recalls_unit_the_settings_do_not_name_reaches_neither_the_audit_nor_the_state(unit: str) -> None:
    """A recall is held to a unit's form only (it may withdraw an alert of a unit no longer configured): with no
    state naming the alert's originator, the audit records the recall's own unit only when the settings name it,
    else the agency that sent it, and the recalled state records none; a configured unit is recorded as before.
    A content version of the recalled alert is then refused as recalled, not for its id's series."""
    run = Relay()
    alert_id = f"COMBIFRON:COL-{unit}-2026-00412"
    recall = _next(_colombian(unit=unit, alert_id=alert_id), "RECALL", reason="ERROR")
    out = run.send(recall)
    assert out.dead_reason is None and out.state is not None, out.entry
    named = unit == "ARC"
    assert out.entry["originator"] == (f"COL-{unit}" if named else "COMBIFRON")
    assert out.state.recalled and out.state.originator == (f"COL-{unit}" if named else None)
    assert run.book.get(alert_id) is not None and run.book.get(alert_id).originator == out.state.originator  # type: ignore[union-attr]
    again = run.send(_next(_colombian(alert_id=alert_id), "UPDATE"))
    assert again.dead_reason == "recalled", again.entry


def test_with_a_state_naming_no_originator_a_units_recall_is_held_to_the_ids_series() -> None:
    """A state from before originators were kept, ARC's alert held by COL: DIJIN's recall is refused as its update
    is (the id is ARC's), COL keeps the alert, and ARC's own recall still pulls it back."""
    legacy = b'{"alert_id":"COMBIFRON:COL-ARC-2026-00412","at":"2026-11-22T12:00:00Z","holders":{"COL":1},' \
             b'"recalled":false,"version":1}'
    run = Relay()
    run.book.load(b"COMBIFRON:COL-ARC-2026-00412", legacy)
    recall = _next(_colombian(), "RECALL", reason="ERROR")
    out = run.send(_as(recall, "DIJIN"))
    assert out.dead_reason == "originator" and out.feeds == []
    col = frozenset({"COL"})
    assert _bare(run.book.get(recall["alert_id"])) == AlertState(1, {"COL": 1}, by_id=col, by_slot=col)
    assert _headers(run.send(recall)) == {"COL": "RECALL"}


def test_a_recall_naming_a_longer_name_is_not_in_the_units_series() -> None:
    """A recall's originator is not held to a code, so it may hold a hyphen: ``COL-ARC-2026`` names no unit whose
    series ``COMBIFRON:COL-ARC-2026-...`` is, and is refused, recording nothing."""
    run = Relay()
    recall = _next(_colombian(), "RECALL", reason="ERROR")
    recall["markings"]["originator"]["agency"] = "COL-ARC-2026"
    out = run.send(recall)
    assert out.dead_reason == "originator" and run.book.get(recall["alert_id"]) is None


LEGACY_OFF_SERIES = (b'{"alert_id":"COMBIFRON:OPS-2026-00412","at":"2026-11-22T12:00:00Z","holders":{"COL":1},'
                     b'"recalled":false,"version":1}')


def test_a_recall_of_an_alert_in_no_units_series_with_a_state_naming_no_originator_is_taken() -> None:
    """An id in no unit's series, published before the series rule, whose state predates originators: the recall
    ``puente recall`` builds on its unit's copy names that unit and is taken, the notice reaching COL, where
    another unit's content version is still refused."""
    run = Relay()
    run.book.load(b"COMBIFRON:OPS-2026-00412", LEGACY_OFF_SERIES)
    first = _colombian(alert_id="COMBIFRON:OPS-2026-00412")
    assert run.send(_as(_next(first, "UPDATE"), "DIJIN")).dead_reason == "originator"
    found = Found()
    take(found, 0, first, ORIGINATORS["COMBIFRON"])
    recall = next_of(found, Change("RECALL", reason="ERROR"))
    assert recall["markings"]["originator"]["agency"] == "COL-ARC"
    out = run.send(recall)
    assert out.dead_reason is None and _headers(out) == {"COL": "RECALL"}
    assert out.state is not None and out.state.recalled


def test_a_units_recall_of_an_alert_in_another_units_series_is_still_refused() -> None:
    """The series still binds a recall of an id in a unit's series where no state names an originator: DIJIN's
    recall of ``COMBIFRON:COL-ARC-...`` is refused, with a legacy state or none."""
    legacy = LEGACY_OFF_SERIES.replace(b"OPS-2026", b"COL-ARC-2026")
    run = Relay()
    run.book.load(b"COMBIFRON:COL-ARC-2026-00412", legacy)
    recall = _as(_next(_colombian(), "RECALL", reason="ERROR"), "DIJIN")
    assert run.send(recall).dead_reason == "originator"
    assert Relay().send(recall).dead_reason == "originator"


def test_a_unit_named_change_of_an_id_in_no_units_series_is_not_built_where_the_broker_refuses_it() -> None:
    """ARC's content version of ``COMBIFRON:LEGACY-7`` (in no unit's series) with no state naming ARC is refused by
    the broker, and by the rule ``puente consent`` reads copies with: no consent is built on it. A recall naming ARC,
    which the broker takes, still is, built on that copy."""
    run = Relay()
    first = _colombian(alert_id="COMBIFRON:LEGACY-7")
    assert run.send(first).dead_reason == "originator"
    assert not ORIGINATORS["COMBIFRON"].may_take(first["alert_id"], first["markings"]["originator"], False)
    found = _found(first)
    assert found.alert is None and found.refused == 1
    assert found.for_change("CONSENT").alert is None
    recall = next_of(found, Change("RECALL", reason="ERROR"))
    assert recall["markings"]["originator"]["agency"] == "COL-ARC"
    assert run.send(recall).dead_reason is None


@pytest.mark.parametrize("seed", range(4))
def test_a_change_the_cli_builds_is_never_refused_as_originator(seed: int) -> None:
    """Over random runs of copies of one id (in a unit's series, in none, a unit's code alone) naming units, the
    agency or longer names, a recall or consent built as ``puente recall``/``consent`` builds it is never
    dead-lettered ``originator``: the CLI and the broker read copies by one rule (``Originator.in_series``)."""
    rng = random.Random(seed)
    ids = ["COMBIFRON:COL-ARC-2026-00412", "COMBIFRON:COL-ARC", "COMBIFRON:LEGACY-7", "COMBIFRON:COL-ARC-X-1"]
    names = ["COL-ARC", "COL-DIJIN", "COMBIFRON", "COL-ARC-2026", "COL-ARC-X"]
    for _ in range(60):
        alert_id, sent, current = rng.choice(ids), [], None
        run, found = Relay(), Found()
        for _ in range(rng.randint(1, 4)):
            if current is None or rng.random() < 0.2:
                alert = _colombian(alert_id=alert_id)
            else:
                action = rng.choice(["UPDATE", "RECALL", "RECLASSIFY"])
                alert = _next(current, action, reason="ERROR" if action == "RECALL" else None)
            alert["markings"]["originator"]["agency"] = rng.choice(names)
            taken = run.send(alert).dead_reason is None
            take(found, run.offset, alert, ORIGINATORS["COMBIFRON"])
            sent.append(alert)
            current = alert if taken or current is None or rng.random() < 0.5 else current
        for change in (Change("RECALL", reason="ERROR"), Change("CONSENT", partners=("USA",))):
            if found.for_change(change.action).alert is None:
                continue
            try:
                new = next_of(found, change)
            except ConfigError:
                continue
            again = Relay()
            for alert in sent:
                again.send(alert)
            assert again.send(new).dead_reason != "originator", (alert_id, change.action, sent)
