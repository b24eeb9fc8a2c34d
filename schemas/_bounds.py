"""How much an alert may hold: the longest text of each string field, the most entries of each array, and the
characters of text in all. What an agency's adapter can write, stated once for the adapters and the broker.

Avro bounds neither a string nor an array, so a producer holding an agency's key could publish an alert of a
million characters in one remark, or thousands of detainees, and every check the broker runs on it (the scan for
hidden characters, the partners' views, their pseudonyms) costs in proportion. One such record held a worker's
event loop for a third of a second. ``bounds_problem`` holds an alert to these bounds in a walk of its fields
that costs what the fields' count costs, never their text, so that the broker refuses an alert beyond them before
any scan of its characters, and an adapter refuses it before it is published (``adapters.core.finish``).

The text bounds are the adapters' own (``adapters.config.Limits``, whose settings may lower them, never raise
them); a code (a table's value: a country, a document type, a kind of item) takes at most ``CODE`` characters.
The arrays are bounded for real operations with room to spare:

- ``MAX_PERSONS`` detainees, 300: a boat carrying 300 migrants, or a mass arrest, fits; the SENAN and COMBIFRON
  formats stop at 60 crew or captured, and a police case is bounded only by its record's size.
- ``MAX_DOCUMENTS`` per person, 5: what every adapter reads (a passport, a national id, a residence permit...).
- ``MAX_NATIONALITIES`` per person, 10: dual and triple nationals with room over.
- ``MAX_NATIONALITIES_OBSERVED`` in a border event, 50: a migrant flow through the Darién brings some fifty
  nationalities in a year, far more than one group holds.
- ``MAX_ITEMS`` seized, 500: each is one kind of drug, arm or currency; the JSON formats stop at 200.
- Marking lists (``releasable_to``, ``caveats``, ``originator_consent``, a consent's ``partners``), 64 codes: no
  vocabulary names more (the broker refuses them too, by code, in ``broker.pipeline``).

``TEXT_BUDGET`` bounds the characters of all string fields together, 32,768: a 300-person seizure with names,
documents and nationalities as people have them takes some 20,000, and the longest remark 2,000. It is what keeps
the broker's costliest steps bounded whatever the mix (see ``bounds_problem``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CODE = 64
ALERT_ID = 200  # AGENCY:reference; the reference at most ``adapters.config.Limits.id``
ORIGINATOR_AGENCY = 68  # a relayed unit: COL- and an area code of 64
NAME = 100  # a given name, both surnames, an operation, a vessel's name
PLACE = 120  # a place, a match reason, an encounter (a flight, a crossing)
UNIT = 120  # an originating unit, a patrol
SUMMARY = 200
REMARKS = 2000
HANDLING_TEXT = 500
DOCUMENT = 30  # a document number, a vessel's registration
PORT = 40  # a port of entry as COMBIFRON writes it (``Limits.code``)

MAX_PERSONS = 300
MAX_DOCUMENTS = 5
MAX_NATIONALITIES = 10
MAX_NATIONALITIES_OBSERVED = 50
MAX_ITEMS = 500
MAX_MARKING_ENTRIES = 64
TEXT_BUDGET = 32_768

_MARKING_LISTS = ("releasable_to", "caveats", "originator_consent")


class _TooMuch(Exception):
    """One bound exceeded: its message names the field and the bound, never the value."""


class _Walk:
    """The characters counted so far, each field held to its bound as it is counted."""

    __slots__ = ("used",)

    def __init__(self) -> None:
        self.used = 0

    def text(self, value: Any, field: str, limit: int) -> None:
        if isinstance(value, str):
            if len(value) > limit:
                raise _TooMuch(f"{field} has {len(value):,} characters; at most {limit:,} are accepted")
            self.used += len(value)

    def texts(self, values: Any, field: str, entries: int, limit: int) -> None:
        items = _entries(values, field, entries)
        for value in items:
            self.text(value, f"{field}[]", limit)


def _entries(values: Any, field: str, limit: int) -> list[Any]:
    if not isinstance(values, list):
        return []
    if len(values) > limit:
        raise _TooMuch(f"{field} has {len(values):,} entries; at most {limit:,} are accepted")
    return values


def bounds_problem(alert: Mapping[str, Any]) -> str | None:
    """Why ``alert`` (decoded, as the codec gives it) holds more than an adapter can write, naming the field and
    the bound and never the value; None when it does not. Every array's length is checked before its entries are
    looked at, so the walk costs at most the bounded fields' count (a millisecond at the bounds), and the total
    text (``TEXT_BUDGET``) last. A field that is not there is not judged: the schema's own checks say so."""
    walk = _Walk()
    try:
        _alert(alert, walk)
    except _TooMuch as exc:
        return str(exc)
    if walk.used > TEXT_BUDGET:
        return (f"the alert's text fields hold {walk.used:,} characters in all; at most {TEXT_BUDGET:,} are "
                "accepted")
    return None


def _alert(alert: Mapping[str, Any], walk: _Walk) -> None:
    walk.text(alert.get("alert_id"), "alert_id", ALERT_ID)
    walk.text(alert.get("agency"), "agency", CODE)
    walk.text(alert.get("source_timezone"), "source_timezone", CODE)
    walk.text(alert.get("summary"), "summary", SUMMARY)
    location = alert.get("location")
    if isinstance(location, Mapping):
        walk.text(location.get("province"), "location.province", CODE)
        walk.text(location.get("border_sector"), "location.border_sector", CODE)
        walk.text(location.get("place_name"), "location.place_name", PLACE)
    markings = alert.get("markings")
    if isinstance(markings, Mapping):
        _markings(markings, walk)
    life = alert.get("lifecycle")
    if isinstance(life, Mapping):
        walk.texts(life.get("partners"), "lifecycle.partners", MAX_MARKING_ENTRIES, CODE)
    payload = alert.get("payload")
    if isinstance(payload, Mapping):
        _payload(payload, walk)


def _markings(m: Mapping[str, Any], walk: _Walk) -> None:
    for name in ("classification", "handling_code", "source_reliability", "information_credibility"):
        walk.text(m.get(name), f"markings.{name}", CODE)
    walk.text(m.get("handling_text"), "markings.handling_text", HANDLING_TEXT)
    for name in _MARKING_LISTS:
        walk.texts(m.get(name), f"markings.{name}", MAX_MARKING_ENTRIES, CODE)
    originator = m.get("originator")
    if isinstance(originator, Mapping):
        walk.text(originator.get("agency"), "markings.originator.agency", ORIGINATOR_AGENCY)
        walk.text(originator.get("unit"), "markings.originator.unit", UNIT)
        walk.text(originator.get("country"), "markings.originator.country", CODE)


def _payload(p: Mapping[str, Any], walk: _Walk) -> None:
    # The three payload records share no field name but these, so each field is looked for whatever the type.
    walk.text(p.get("direction"), "payload.direction", CODE)
    walk.texts(p.get("nationalities_observed"), "payload.nationalities_observed", MAX_NATIONALITIES_OBSERVED, CODE)
    walk.text(p.get("patrol_unit"), "payload.patrol_unit", UNIT)
    walk.text(p.get("remarks"), "payload.remarks", REMARKS)
    items = _entries(p.get("items"), "payload.items", MAX_ITEMS)
    detainees = _entries(p.get("detainees"), "payload.detainees", MAX_PERSONS)
    for item in items:
        if isinstance(item, Mapping):
            walk.text(item.get("kind"), "payload.items[].kind", CODE)
            walk.text(item.get("unit"), "payload.items[].unit", CODE)
    conveyance = p.get("conveyance")
    if isinstance(conveyance, Mapping):
        walk.text(conveyance.get("name"), "payload.conveyance.name", NAME)
        walk.text(conveyance.get("identifier"), "payload.conveyance.identifier", DOCUMENT)
        walk.text(conveyance.get("flag_country"), "payload.conveyance.flag_country", CODE)
    walk.text(p.get("operation_name"), "payload.operation_name", NAME)
    for person in detainees:
        _person(person, "payload.detainees[]", walk)
    if "person" in p:
        _person(p["person"], "payload.person", walk)
    walk.text(p.get("list_name"), "payload.list_name", CODE)
    walk.text(p.get("list_owner"), "payload.list_owner", CODE)
    walk.text(p.get("match_reason"), "payload.match_reason", PLACE)
    walk.text(p.get("port_of_entry"), "payload.port_of_entry", PORT)
    walk.text(p.get("encounter"), "payload.encounter", PLACE)
    walk.text(p.get("action_taken"), "payload.action_taken", CODE)


def _person(person: Any, field: str, walk: _Walk) -> None:
    if not isinstance(person, Mapping):
        return
    walk.text(person.get("given_names"), f"{field}.given_names", NAME)
    walk.text(person.get("surnames"), f"{field}.surnames", NAME)
    walk.text(person.get("sex"), f"{field}.sex", CODE)
    walk.texts(person.get("nationalities"), f"{field}.nationalities", MAX_NATIONALITIES, CODE)
    for doc in _entries(person.get("documents"), f"{field}.documents", MAX_DOCUMENTS):
        if isinstance(doc, Mapping):
            walk.text(doc.get("document_type"), f"{field}.documents[].document_type", CODE)
            walk.text(doc.get("number"), f"{field}.documents[].number", DOCUMENT)
            walk.text(doc.get("issuing_country"), f"{field}.documents[].issuing_country", CODE)
