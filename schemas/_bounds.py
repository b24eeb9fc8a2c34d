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

The array bounds are held twice: by the alert codec as it decodes (``ARRAY_BOUNDS``), so that the entries of an
array past its bound are never built (the codec reads past them, and refuses the alert with the rest of it), and by
``bounds_problem`` on a value, as an adapter holds what it is about to publish.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
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

ARRAY_BOUNDS: Mapping[tuple[str, str], int] = MappingProxyType({
    ("puente.Seizure", "detainees"): MAX_PERSONS,
    ("puente.Seizure", "items"): MAX_ITEMS,
    ("puente.Person", "documents"): MAX_DOCUMENTS,
    ("puente.Person", "nationalities"): MAX_NATIONALITIES,
    ("puente.BorderEvent", "nationalities_observed"): MAX_NATIONALITIES_OBSERVED,
    ("puente.Markings", "releasable_to"): MAX_MARKING_ENTRIES,
    ("puente.Markings", "caveats"): MAX_MARKING_ENTRIES,
    ("puente.Markings", "originator_consent"): MAX_MARKING_ENTRIES,
    ("puente.Lifecycle", "partners"): MAX_MARKING_ENTRIES,
})
"""The bound of every array of the alert schema, by the record type and field that hold it: what the alert codec's
decoders hold each array to as they read its counts; past it, they read past its entries without building them, and
the codec refuses the alert with that array empty (``SingleObjectCodec``). Without it a 1 MiB record of 149,743 empty
detainees (7 bytes each) was decoded in full, 0.3 s and 58 MB, only for ``bounds_problem`` to refuse it. Every array
of every alert schema version is named here (a test holds it so)."""

_MARKING_LISTS = ("releasable_to", "caveats", "originator_consent")


class _TooMuch(Exception):
    """One bound exceeded: its message names the field and the bound, never the value."""


# Each record's string fields and their bounds. One table and one loop per record, not a call per field: the walk
# runs on every alert the broker takes, and what it costs is its calls. A field name is put together only for the
# message of a bound exceeded.
_ALERT = (("alert_id", ALERT_ID), ("agency", CODE), ("source_timezone", CODE), ("summary", SUMMARY))
_LOCATION = (("province", CODE), ("border_sector", CODE), ("place_name", PLACE))
_MARKINGS = (("classification", CODE), ("handling_code", CODE), ("source_reliability", CODE),
             ("information_credibility", CODE), ("handling_text", HANDLING_TEXT))
_ORIGINATOR = (("agency", ORIGINATOR_AGENCY), ("unit", UNIT), ("country", CODE))
# The three payload records share no field name but these, so each field is looked for whatever the type.
_PAYLOAD = (("direction", CODE), ("patrol_unit", UNIT), ("remarks", REMARKS), ("operation_name", NAME),
            ("list_name", CODE), ("list_owner", CODE), ("match_reason", PLACE), ("port_of_entry", PORT),
            ("encounter", PLACE), ("action_taken", CODE))
_ITEM = (("kind", CODE), ("unit", CODE))
_CONVEYANCE = (("name", NAME), ("identifier", DOCUMENT), ("flag_country", CODE))
_PERSON = (("given_names", NAME), ("surnames", NAME), ("sex", CODE))
_DOCUMENT = (("document_type", CODE), ("number", DOCUMENT), ("issuing_country", CODE))


def _strings(record: Any, fields: tuple[tuple[str, int], ...], where: str) -> int:
    """The characters of ``record``'s string ``fields`` (a record that is not a dict, as the codec and the adapters
    give records, holds none), each held to its bound; ``where`` is the record's path, for the message."""
    if not isinstance(record, dict):
        return 0
    used = 0
    for key, limit in fields:
        value = record.get(key)
        if isinstance(value, str):
            if len(value) > limit:
                raise _TooMuch(_long(f"{where}{key}", len(value), limit))
            used += len(value)
    return used


def _entries(values: Any, where: str, key: str, limit: int) -> list[Any]:
    if not isinstance(values, list):
        return []
    if len(values) > limit:
        raise _TooMuch(f"{where}{key} has {len(values):,} entries; at most {limit:,} are accepted")
    return values


def _codes(values: Any, where: str, key: str, entries: int) -> int:
    """The characters of a list of codes, its length held to ``entries`` before any is looked at."""
    used = 0
    for value in _entries(values, where, key, entries):
        if isinstance(value, str):
            if len(value) > CODE:
                raise _TooMuch(_long(f"{where}{key}[]", len(value), CODE))
            used += len(value)
    return used


# The same bounds by the record type that holds each string field (the payload table is looked for in each payload
# type), for the native codec, which measures strings as it decodes them (``text_problem``). Every string of the
# alert schema is bounded here, with the walk's bound wherever its record type lies in an alert (a person, under
# payload.person and payload.detainees[], has one table): a test holds both so.
_CODE_LISTS = {"puente.Markings": _MARKING_LISTS, "puente.Lifecycle": ("partners",),
               "puente.BorderEvent": ("nationalities_observed",), "puente.Person": ("nationalities",)}
TEXT_BOUNDS: Mapping[tuple[str, str], int] = MappingProxyType({
    **{(record, key): limit
       for record, table in (("puente.Alert", _ALERT), ("puente.Location", _LOCATION),
                             ("puente.Markings", _MARKINGS), ("puente.Originator", _ORIGINATOR),
                             ("puente.WatchlistHit", _PAYLOAD), ("puente.Seizure", _PAYLOAD),
                             ("puente.BorderEvent", _PAYLOAD), ("puente.SeizedItem", _ITEM),
                             ("puente.Conveyance", _CONVEYANCE), ("puente.Person", _PERSON),
                             ("puente.TravelDocument", _DOCUMENT))
       for key, limit in table},
    **{(record, key): CODE for record, keys in _CODE_LISTS.items() for key in keys},
})
"""The most characters of each string field (of each string of a list of codes), by the record type and field that
hold it: ``bounds_problem``'s bounds, as the alert codec's native decoder takes them (``SingleObjectCodec``)."""


def text_problem(chars: int, long: tuple[str, int, int] | None) -> str | None:
    """``bounds_problem``'s answer from what the native decoder measured of an alert's strings (its arrays within
    their bounds): the characters of its bounded strings in all, and the first string past its bound (its path, its
    characters, its bound). Where several strings are past their bounds, the one named may differ from the walk's."""
    if long is not None:
        return _long(*long)
    if chars > TEXT_BUDGET:
        return f"the alert's text fields hold {chars:,} characters in all; at most {TEXT_BUDGET:,} are accepted"
    return None


def _long(where: str, count: int, limit: int) -> str:
    return f"{where} has {count:,} characters; at most {limit:,} are accepted"


def bounds_problem(alert: Mapping[str, Any]) -> str | None:
    """Why ``alert`` (decoded, as the codec gives it) holds more than an adapter can write, naming the field and
    the bound and never the value; None when it does not. Every array's length is checked before its entries are
    looked at, so the walk costs at most the bounded fields' count (a millisecond at the bounds), and the total
    text (``TEXT_BUDGET``) last. A field that is not there is not judged: the schema's own checks say so."""
    try:
        used = _alert(alert)
    except _TooMuch as exc:
        return str(exc)
    return text_problem(used, None)


def _alert(alert: Mapping[str, Any]) -> int:
    used = _strings(alert, _ALERT, "")
    used += _strings(alert.get("location"), _LOCATION, "location.")
    markings = alert.get("markings")
    if isinstance(markings, dict):
        used += _strings(markings, _MARKINGS, "markings.")
        for name in _MARKING_LISTS:
            if name in markings:
                used += _codes(markings[name], "markings.", name, MAX_MARKING_ENTRIES)
        used += _strings(markings.get("originator"), _ORIGINATOR, "markings.originator.")
    life = alert.get("lifecycle")
    if isinstance(life, dict):
        used += _codes(life.get("partners"), "lifecycle.", "partners", MAX_MARKING_ENTRIES)
    payload = alert.get("payload")
    if isinstance(payload, dict):
        used += _payload(payload)
    return used


def _payload(p: Mapping[str, Any]) -> int:
    used = _strings(p, _PAYLOAD, "payload.")
    if "nationalities_observed" in p:
        used += _codes(p["nationalities_observed"], "payload.", "nationalities_observed", MAX_NATIONALITIES_OBSERVED)
    for item in _entries(p.get("items"), "payload.", "items", MAX_ITEMS):
        used += _strings(item, _ITEM, "payload.items[].")
    used += _strings(p.get("conveyance"), _CONVEYANCE, "payload.conveyance.")
    for person in _entries(p.get("detainees"), "payload.", "detainees", MAX_PERSONS):
        used += _person(person, "payload.detainees[].")
    if "person" in p:
        used += _person(p["person"], "payload.person.")
    return used


def _person(person: Any, where: str) -> int:
    if not isinstance(person, dict):
        return 0
    used = _strings(person, _PERSON, where)
    if "nationalities" in person:
        used += _codes(person["nationalities"], where, "nationalities", MAX_NATIONALITIES)
    documents = _entries(person.get("documents"), where, "documents", MAX_DOCUMENTS)
    if documents:
        inner = f"{where}documents[]."
        for doc in documents:
            used += _strings(doc, _DOCUMENT, inner)
    return used
