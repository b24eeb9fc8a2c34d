"""The broker holds every alert to what an adapter can write (``schemas.bounds``), before any scan of its text."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from worker_fakes import counted

from broker import pipeline
from broker.lifecycle import AlertState
from broker.pipeline import Originator, Pipeline
from broker.topology import Slots, TopicNames, key_partition
from policies import alert_reference
from puente.dev.synthetic import generate
from puente.wire import Record
from schemas import alert_codec, bounds
from tests.unit.broker.test_lifecycle import Run, _bare, _first, _headers, _next

REF_KEY = b"unit-test-alert-reference-key-32b"  # the broker's alert-reference key in these tests

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
SLOTS = Slots(("SENAN", "SNM"), 3, TopicNames("t"))
FILLER = "é"  # never a word a message could hold


class _Deliver:
    version = "v1"

    def partners(self) -> list[tuple[str, str]]:
        return [("COL", "t.feed.COL")]

    def decide_all(self, alert: dict[str, Any], partners: Sequence[str], now: datetime,
                   until: Any = None) -> list[Any]:
        audit = {"partner": "COL", "decision": "DELIVER", "agreement": "AGR", "rules": [], "reasons": [],
                 "redacted": [], "policy_version": "v1"}
        return [type("D", (), {"partner": "COL", "outcome": "DELIVER", "agreement": "AGR", "rules": (),
                               "reasons": (), "redactions": (), "policy_version": "v1", "audit": audit})()]

    def view(self, alert: dict[str, Any], decision: Any) -> dict[str, Any]:
        return alert

    def reference(self, partner: str, alert_id: str) -> str:
        return alert_reference(REF_KEY, partner, alert_id)


class _Sealer:
    def seal(self, plaintext: bytes, **_: Any) -> bytes:
        return b"sealed"


def _admitted(agency: str, change: Callable[[dict[str, Any]], None], areas: Sequence[str] | None = None) -> Any:
    alert = copy.deepcopy(next(a for a in generate(60, seed=5, now=NOW) if a["agency"] == agency))
    change(alert)
    key = alert["alert_id"].encode()
    record = Record(f"t.ingress.{agency}", key_partition(key, 3), 7, key, alert_codec().encode(alert),
                    (("published", str(NOW_MS).encode()),), NOW_MS)

    def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        return key.split(":", 1)[0], NOW_MS

    pipe = counted(Pipeline(_Deliver(), alert_codec(), {"COL": _Sealer()}, origin, SLOTS,  # type: ignore[arg-type]
                            originators={a: Originator.of(a, "PAN", "PAN") for a in SLOTS.agencies}, areas=areas))
    return pipe.process(record, set(), NOW)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(alert: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = alert
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value
    return change


def _text(path: str, value: str) -> Callable[[dict[str, Any]], None]:
    """``_set``, and a handling text under H3, the one code it may be stated under."""
    change = _set(path, value)
    if path != "markings.handling_text":
        return change

    def stated(alert: dict[str, Any]) -> None:
        alert["markings"]["handling_code"] = "H3"
        change(alert)
    return stated


TEXTS = [
    ("SNM", "summary", bounds.SUMMARY),
    ("SNM", "markings.handling_text", bounds.HANDLING_TEXT),
    ("SNM", "markings.originator.unit", bounds.UNIT),
    ("SNM", "location.place_name", bounds.PLACE),
    ("SNM", "payload.person.surnames", bounds.NAME),
    ("SNM", "payload.match_reason", bounds.PLACE),
    ("SNM", "payload.person.documents.0.number", bounds.DOCUMENT),
    ("SENAN", "payload.operation_name", bounds.NAME),
    ("SENAN", "payload.detainees.0.given_names", bounds.NAME),
]


@pytest.mark.parametrize(("agency", "path", "limit"), TEXTS)
def test_a_text_field_at_its_bound_is_admitted_and_one_over_is_invalid(agency: str, path: str, limit: int) -> None:
    """A text field at its adapter's limit is delivered; one character more is dead-lettered ``invalid`` with the
    field and the limit named, never the text."""
    assert _admitted(agency, _text(path, FILLER * limit)).dead_reason is None
    out = _admitted(agency, _text(path, FILLER * (limit + 1)))
    field = path.replace(".0.", "[].")
    assert out.dead_reason == "invalid" and not out.feeds
    assert out.entry["detail"] == f"{field} has {limit + 1:,} characters; at most {limit:,} are accepted"
    assert FILLER not in out.entry["detail"]


@pytest.mark.parametrize("code", ["H0", "H1", "H2", "H9", "Juan.Perez.Pasaporte.AB123456"])
def test_a_handling_text_under_a_code_other_than_h3_is_invalid(code: str) -> None:
    """A handling text states an H3 restriction: under another code (as the adapters refuse it) the alert is
    dead-lettered ``invalid``, naming neither the code (a name written as a code would reach the audit) nor the
    text; under H3 it is admitted."""
    def stated(handling: str) -> Callable[[dict[str, Any]], None]:
        def change(alert: dict[str, Any]) -> None:
            alert["markings"].update(handling_code=handling, handling_text="Ana Pérez, informante")
        return change

    out = _admitted("SNM", stated(code))
    assert out.dead_reason == "invalid" and not out.feeds
    assert out.entry["detail"] == ("markings.handling_text is stated under a handling code other than H3: only H3 "
                                   "carries a restriction in text")
    assert _admitted("SNM", stated("H3")).dead_reason is None


def _people(count: int, documents: int = 1, nationalities: int = 1) -> Callable[[dict[str, Any]], None]:
    def change(alert: dict[str, Any]) -> None:
        person = alert["payload"]["detainees"][0]
        person["nationalities"] = ["COL"] * nationalities
        person["documents"] = [person["documents"][0]] * documents
        alert["payload"]["detainees"] = [person] * count
        alert["payload"]["persons_detained"] = count
    return change


def _items(count: int) -> Callable[[dict[str, Any]], None]:
    def change(alert: dict[str, Any]) -> None:
        alert["payload"]["items"] = [alert["payload"]["items"][0]] * count
    return change


@pytest.mark.parametrize(("change", "field", "limit"), [
    (lambda n: _people(n), "payload.detainees", bounds.MAX_PERSONS),
    (lambda n: _people(1, documents=n), "payload.detainees[].documents", bounds.MAX_DOCUMENTS),
    (lambda n: _people(1, nationalities=n), "payload.detainees[].nationalities", bounds.MAX_NATIONALITIES),
    (_items, "payload.items", bounds.MAX_ITEMS),
])
def test_an_array_at_its_bound_is_admitted_and_one_over_is_invalid(change: Callable[[int], Any], field: str,
                                                                   limit: int) -> None:
    """Detainees, their documents and nationalities, seized items: at the bound delivered, one more dead-lettered
    ``invalid`` naming the array and the bound. (Before the bounds, 1,000 detainees of 20 documents each took a
    worker 0.2 s and went out.)"""
    assert _admitted("SENAN", change(limit)).dead_reason is None
    out = _admitted("SENAN", change(limit + 1))
    assert out.dead_reason == "invalid" and not out.feeds
    assert out.entry["detail"] == f"{field} has {limit + 1:,} entries; at most {limit:,} are accepted"


def test_an_array_past_its_bound_is_refused_without_being_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record of 100,000 empty detainees (7 bytes each) is dead-lettered ``invalid`` with the words of the bound,
    the codec having read past them without building one: one of 149,743 (1 MiB) was decoded whole (0.3 s and
    58 MB on the native path, 1 s on fastavro's) before the bounds were checked on the value."""
    def checked(alert: Any) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr(pipeline, "bounds_problem", checked)
    empty = {"given_names": None, "surnames": None, "date_of_birth": None, "birth_year": None, "sex": None,
             "nationalities": [], "documents": []}
    out = _admitted("SENAN", _set("payload.detainees", [empty] * 100_000))
    assert out.dead_reason == "invalid" and not out.feeds
    assert out.entry["detail"] == "payload.detainees has 100,000 entries; at most 300 are accepted"


def _holders() -> tuple[Run, dict[str, Any]]:
    """A slot whose alert (a watchlist hit) COL and USA hold, and that alert."""
    run = Run()
    first = _first(consent=["USA"])
    assert _headers(run.send(first)) == {"COL": "DELIVER", "USA": "DELIVER"}
    return run, first


def test_a_later_version_past_a_bound_is_pulled_back_from_every_holder_without_being_built(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A v2 whose person holds 1,000 documents breaks a rule every alert must keep: withheld from everyone and
    pulled back from every holder (``alert.invalid``), as one over ``schemas.bounds`` always was, though the codec
    never built its documents. (Refused as the codec read their count, its id and holders were lost, and partners
    kept v1.)"""
    run, first = _holders()
    monkeypatch.setattr(pipeline, "bounds_problem", lambda alert: pytest.fail("the documents were built"))
    bad = _next(first, "UPDATE")
    bad["payload"]["person"]["documents"] = bad["payload"]["person"]["documents"][:1] * 1_000
    out = run.send(bad)
    assert out.dead_reason is None and _headers(out) == {"COL": "RECALL", "USA": "RECALL"}
    assert _bare(out.state, typed=True) == AlertState(2, {}, originator="SNM", alert_type="WATCHLIST_HIT")
    assert all("alert.invalid" in d["rules"] for d in out.entry["decisions"])
    assert all("payload.person.documents has 1,000 entries; at most 5 are accepted" in d["reasons"][0]
               for d in out.entry["decisions"])
    assert run.send(bad).dead_reason == "replay"


@pytest.mark.parametrize("field", ["originator_consent", "partners"])
def test_a_later_consent_whose_list_is_past_its_bound_is_pulled_back_from_every_holder(field: str) -> None:
    """A CONSENT v2 naming 65 partners (in ``markings.originator_consent`` or ``lifecycle.partners``) is invalid for
    its content and pulled back from every holder, as before the codec held arrays to their bounds: the lists it
    emptied are not judged as a consent naming no one (which dead-lettered it, and partners kept v1)."""
    run, first = _holders()
    bad = _next(first, "CONSENT", partners=["USA"], originator_consent=["USA"])
    if field == "originator_consent":
        bad["markings"]["originator_consent"] = ["USA"] * 65
    else:
        bad["lifecycle"]["partners"] = ["USA"] * 65
    out = run.send(bad)
    assert out.dead_reason is None and _headers(out) == {"COL": "RECALL", "USA": "RECALL"}
    assert all("alert.invalid" in d["rules"] for d in out.entry["decisions"])


def test_a_recall_past_a_bound_withdraws_the_alert_as_any_recall() -> None:
    """A recall's content is never read: one built on a copy of 1,000 caveats pulls the alert back from its holders,
    as before the codec held arrays to their bounds (refused as it decoded, it left the alert with them)."""
    run, first = _holders()
    recall = _next(first, "RECALL", reason="ERROR")
    recall["markings"]["caveats"] = [f"Z{i}" for i in range(1_000)]
    out = run.send(recall)
    assert out.dead_reason is None and _headers(out) == {"COL": "RECALL", "USA": "RECALL"}
    assert _bare(out.state, typed=True) == AlertState(2, {}, recalled=True, originator="SNM",
                                                      alert_type="WATCHLIST_HIT")


def _budget(extra: int) -> Callable[[dict[str, Any]], None]:
    """Detainees whose names bring the alert's text to ``TEXT_BUDGET`` plus ``extra`` characters."""
    def change(alert: dict[str, Any]) -> None:
        person = copy.deepcopy(alert["payload"]["detainees"][0])
        alert["payload"]["detainees"] = []
        person["given_names"] = person["surnames"] = None  # the count the bound is held to, without names
        used = bounds._alert({**alert, "payload": {**alert["payload"], "detainees": [person] * 200}})
        left = bounds.TEXT_BUDGET + extra - used
        people = []
        for _ in range(200):
            given, family = min(left, bounds.NAME), min(max(left - bounds.NAME, 0), bounds.NAME)
            people.append({**person, "given_names": FILLER * given or None, "surnames": FILLER * family or None})
            left -= given + family
        assert left == 0
        alert["payload"]["detainees"] = people
    return change


def test_the_alerts_text_in_all_is_bounded() -> None:
    """Each field within its bound, the alert's text in all at ``TEXT_BUDGET`` is delivered and one character more
    dead-lettered: the bound the hidden-character scan's cost rests on."""
    assert _admitted("SENAN", _budget(0)).dead_reason is None
    out = _admitted("SENAN", _budget(1))
    assert out.dead_reason == "invalid" and f"at most {bounds.TEXT_BUDGET:,}" in out.entry["detail"]


def test_the_bounds_are_held_before_the_text_is_scanned(monkeypatch: pytest.MonkeyPatch) -> None:
    """An alert over a bound is refused before the hidden-character scan reads a character of it: the scan of a
    750 KB remark of combining marks took a third of a second."""
    def scan(alert: Any) -> None:
        raise AssertionError("scanned")

    monkeypatch.setattr(pipeline, "hidden_char", scan)
    out = _admitted("SNM", _set("payload.match_reason", "a\u0344" * 100_000))
    assert out.dead_reason == "invalid" and "payload.match_reason has 200,000 characters" in out.entry["detail"]


def test_a_recalls_id_is_held_to_its_bound_before_it_is_scanned(monkeypatch: pytest.MonkeyPatch) -> None:
    """A recall's content is neither scanned nor viewed, but its id is: an id of 330,000 combining pairs took over
    half a second to scan before the record was refused for its key. It is refused as ``invalid`` first, its
    characters unread."""
    def scan(alert: Any) -> None:
        raise AssertionError("scanned")

    def recall(alert: dict[str, Any]) -> None:
        alert["alert_id"] = "SNM:" + "a\u0344" * 300_000
        alert["version"], alert["lifecycle"] = 2, {"action": "RECALL", "reason": "ERROR", "partners": []}

    monkeypatch.setattr(pipeline, "hidden_char", scan)
    out = _admitted("SNM", recall)
    assert out.dead_reason == "invalid" and "at most 200 are accepted" in out.entry["detail"]


def test_an_alert_whose_text_is_printable_ascii_is_not_scanned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text the codec measured as printable ASCII and line feeds holds no hidden character: the scan is not run. Text
    with any other character is scanned, and a hidden one still refuses the alert."""
    def scan(alert: Any) -> None:
        raise AssertionError("scanned")

    def ascii_only(alert: dict[str, Any]) -> None:
        alert["summary"], alert["location"] = "Seizure at the\nDarien gap", None
        alert["payload"]["person"].update(given_names="Ana", surnames="Paz")
        alert["markings"]["originator"]["unit"] = None

    monkeypatch.setattr(pipeline, "hidden_char", scan)
    if not alert_codec().uses_native:  # without the native codec, every alert is scanned
        assert _admitted("SNM", ascii_only).dead_reason == "internal"
        return
    plain = _admitted("SNM", ascii_only)
    assert plain.dead_reason is None
    monkeypatch.undo()
    hidden = _admitted("SNM", _set("summary", "Seizure at the \u202eDarién gap"))
    assert hidden.dead_reason == "invalid" and "U+202E" in hidden.entry["detail"]


@pytest.mark.parametrize("field", ["classification", "handling_code", "source_reliability", "information_credibility"])
def test_a_marking_that_is_not_a_code_is_invalid_and_never_quoted(field: str) -> None:
    """The classification, the handling code and the grading are codes of the vocabulary, as the adapters write
    them: free text there (a name) would reach the audit entry and the decisions' reasons. It is dead-lettered
    ``invalid``, naming the field and never the value; an unknown code is the policy's to withhold."""
    out = _admitted("SNM", _set(f"markings.{field}", "SECRETNAME123 Perez"))
    assert out.dead_reason == "invalid" and not out.feeds
    assert out.entry["detail"] == f"markings.{field} must be a code: letters, digits and _ . -, at most 64"
    assert "SECRETNAME123" not in repr(out.entry) and "SECRETNAME123" not in repr(out.dead_letter)
    assert _admitted("SNM", _set(f"markings.{field}", "UNHEARD_OF-2.1")).dead_reason is None


def test_the_audit_records_a_border_sector_only_as_an_area_of_the_policy() -> None:
    """A border sector the policy's areas name is recorded as it is; any other, a code in form as it may be (a name
    written as one), as ``(not an area)``: the audit's sector column and the indicators counting by it carry no text
    of the agency's."""
    def sector(value: str) -> Callable[[dict[str, Any]], None]:
        def change(alert: dict[str, Any]) -> None:
            alert["location"] = {**(alert["location"] or {"latitude": None, "longitude": None, "province": None,
                                                           "place_name": None}), "border_sector": value}
        return change

    areas = ("DARIEN_PUERTO_OBALDIA",)
    assert _admitted("SNM", sector("DARIEN_PUERTO_OBALDIA"), areas).entry["sector"] == "DARIEN_PUERTO_OBALDIA"
    out = _admitted("SNM", sector("JUAN_PEREZ_PASAPORTE_AB123456"), areas)
    assert out.dead_reason is None and out.entry["sector"] == "(not an area)" and "JUAN" not in repr(out.entry)
