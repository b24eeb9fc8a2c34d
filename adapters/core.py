"""The pure core every adapter shares: markings, locations, ids, versions, final checks, and ``convert``.

An adapter is a reader (bytes -> records) and a mapping (record -> alert dict) over a
:class:`~adapters.config.Context`. ``convert`` runs both and encodes with the alert codec,
which is the schema check: every record comes out as a :class:`Result` with either the
alert and its bytes or an AdapterError whose reason becomes the dead letter's. No Kafka,
no clock, no files here; the edge (``adapters.run``) does the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from adapters._codes import norm_key
from adapters._fields import (
    DUPLICATE_KEY,
    FUTURE,
    INVALID,
    INVALID_DATE,
    LOCATION_MISMATCH,
    MISSING_FIELD,
    OLDEST_EVENT,
    OUT_OF_REGION,
    SCHEMA,
    UNKNOWN_CODE,
    code,
    fail,
    key_name,
    naming,
    text,
)
from adapters._readers import Item
from adapters.config import Context
from puente.errors import AdapterError, CodecError
from schemas import alert_codec

# The broker refuses events more than an hour in the future (clock skew between agencies);
# refusing at the same bound here means the broker never dead-letters what an adapter publishes.
MAX_FUTURE_SKEW = timedelta(hours=1)
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/#-]*")

Reader = Callable[[BinaryIO, Context], Iterator[Item]]
Mapper = Callable[[Any, Context], dict[str, Any]]


@dataclass(frozen=True)
class Adapter:
    """One agency's adapter: its export reader and its pure mapping."""

    name: str
    agency: str
    title: str
    patterns: tuple[str, ...]  # file names the folder watcher picks up
    read: Reader
    map: Mapper


@dataclass(frozen=True, slots=True)
class Result:
    """One record's outcome: the alert and its encoded bytes, or the error that refuses it."""

    item: Item
    alert: dict[str, Any] | None = None
    value: bytes | None = None
    error: AdapterError | None = None


def convert(adapter: Adapter, stream: BinaryIO, ctx: Context) -> Iterator[Result]:
    """Every record of ``stream`` mapped, checked and encoded; bad ones carry their error, none raises.

    Only an OSError reading ``stream`` escapes: that is the file failing, not a record.
    """
    codec = alert_codec()
    records = adapter.read(stream, ctx)
    last = Item(0, 0, b"")
    while True:
        try:
            item = next(records)
        except StopIteration:
            return
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - any reader failure ends the file as a dead letter, not a crash
            # A reader that fails cannot go on (a generator that raised is finished): one dead
            # letter for the rest of the file, and the run goes on to the next file.
            yield Result(Item(0, last.line, b""), error=fail(
                INVALID, f"the file could not be read after line {last.line} ({type(exc).__name__}); "
                         "the records after it were not read"))
            return
        last = item
        if item.error is not None:
            yield Result(item, error=item.error)
            continue
        yield _map(adapter, item, ctx, codec)


def _map(adapter: Adapter, item: Item, ctx: Context, codec: Any) -> Result:
    try:
        alert = finish(adapter.map(item.parsed, ctx), ctx)
        return Result(item, alert, codec.encode(alert))
    except AdapterError as exc:
        return Result(item, error=exc)
    except CodecError as exc:
        return Result(item, error=fail(SCHEMA, str(exc)))
    except (TypeError, ValueError, LookupError, AttributeError, ArithmeticError, RecursionError) as exc:
        # A record shape the mapping did not foresee (a list where an object belongs, a date at
        # the calendar's end...). One odd record must not stop the file; its dead letter says so.
        return Result(item, error=fail(INVALID, f"the record has an unexpected shape ({type(exc).__name__})"))


# ---- pieces of an alert ------------------------------------------------------------------------
def alert_id(ctx: Context, reference: Any, field: str) -> str:
    """``AGENCY:reference``: stable for the agency's record, so publishing it again gives the same id."""
    ref = text(reference, field, ctx.limits.id, required=True) or ""
    if not _REF.fullmatch(ref):  # a reference is not a code: never quoted
        raise fail(INVALID, f"{field} may hold only letters, digits and . _ / # -")
    return f"{ctx.agency}:{ref}"


def names(value: Any, field: str, known: frozenset[str]) -> list[str] | None:
    """Codes from a list or a text such as 'REL TO COL, USA'; None when the record is silent."""
    if value is None:
        return None
    if isinstance(value, str):
        value = re.sub(r"^\s*REL(EASABLE)?\s+TO\s*:?", "", value, flags=re.IGNORECASE)
        value = [v for v in re.split(r"[,;/\s]+", value) if v]
    if not isinstance(value, list):
        raise fail(INVALID, f"{field} must be a list of codes")
    return [code(v, field, known) or "" for v in value]


def markings(ctx: Context, over: Mapping[str, Any], unit: str | None = None) -> dict[str, Any]:
    """The alert's markings: the agency's defaults, replaced field by field by what the record carries.

    ``over`` may hold classification, releasable_to, caveats, handling_code, handling_text,
    originator_consent, grading ('B2'), originator_agency; absent or None keeps the default.
    Every code is checked against the policy vocabulary, so a typo is refused here with its
    reason instead of withholding the alert from every partner downstream.
    """
    d, v, limits = ctx.profile.markings, ctx.vocab, ctx.limits
    cls = d.classification
    if over.get("classification") not in (None, ""):
        table = ctx.profile.classification_map or {c: c for c in v.classifications}
        cls = code(over["classification"], "classification", table) or cls
    rel = names(over.get("releasable_to"), "releasable_to", v.names)
    caveats = names(over.get("caveats"), "caveats", v.caveats)
    consent = names(over.get("originator_consent"), "originator_consent", v.names)
    handling = code(over.get("handling_code"), "handling code", v.handling_codes, required=False) or d.handling_code
    handling_text = text(over.get("handling_text"), "handling text", limits.handling_text) or d.handling_text
    if handling == "H3" and not handling_text:
        raise fail(MISSING_FIELD, "handling code H3 needs its restriction stated in the handling text")
    grading = (text(over.get("grading"), "grading", 4) or d.grading).upper()
    if len(grading) != 2 or grading[0] not in v.reliability or grading[1] not in v.credibility:
        raise fail(UNKNOWN_CODE, f"{naming('grading', grading)} is not a reliability A-F and a credibility 1-6")
    return {
        "classification": cls,
        "releasable_to": list(dict.fromkeys(d.releasable_to if rel is None else rel)),
        "caveats": list(dict.fromkeys(d.caveats if caveats is None else caveats)),
        "handling_code": handling,
        "handling_text": handling_text if handling == "H3" else None,
        "originator_consent": list(dict.fromkeys(d.originator_consent if consent is None else consent)),
        "source_reliability": grading[0],
        "information_credibility": grading[1],
        "originator": {"agency": over.get("originator_agency") or ctx.agency,
                       "unit": unit or ctx.profile.unit, "country": ctx.profile.country},
        "review_at": None,
        "expires_at": None,
    }


def location(ctx: Context, lat: float | None, lon: float | None, *, province: Any = None, sector: Any = None,
             place: Any = None, where: str = "position",
             labels: tuple[str, str, str] = ("province", "border sector", "place")) -> dict[str, Any] | None:
    """A checked location, or None when the record gives none; a point outside the region is refused.

    ``where`` and ``labels`` name the position, province, sector and place fields as the agency writes them.
    """
    if (lat is None) != (lon is None):
        raise fail(MISSING_FIELD, f"{where}: latitude and longitude go together, and one of them is empty")
    if lat is not None and lon is not None and not ctx.region.contains(lat, lon):
        # Say which bound the point crosses and the likely slip, never the coordinates: a patrol's or a seizure's
        # position is the record's data, and this message reaches stderr and the dead letter's headers.
        r = ctx.region
        crossed = [side for side, beyond in (
            (f"the latitude is south of {r.latitude[0]:g}", lat < r.latitude[0]),
            (f"the latitude is north of {r.latitude[1]:g}", lat > r.latitude[1]),
            (f"the longitude is west of {r.longitude[0]:g}", lon < r.longitude[0]),
            (f"the longitude is east of {r.longitude[1]:g}", lon > r.longitude[1])) if beyond]
        hint = ""
        if r.contains(lat, -lon):
            hint = "; the longitude looks like it lacks its minus sign (west needs a minus sign or W/O)"
        elif r.contains(-lat, lon):
            hint = "; the latitude looks like it has the wrong sign (north is + or N, south - or S)"
        raise fail(OUT_OF_REGION, f"{where} is outside the {ctx.profile.region} region (latitude {r.latitude[0]:g} "
                                  f"to {r.latitude[1]:g}, longitude {r.longitude[0]:g} to {r.longitude[1]:g}): "
                                  f"{' and '.join(crossed)}{hint}")
    out = {
        "latitude": lat,
        "longitude": lon,
        "province": code(province, labels[0], ctx.province_table, required=False),
        "border_sector": code(sector, labels[1], ctx.sector_table, required=False),
        "place_name": text(place, labels[2], ctx.limits.place),
    }
    province_code = out["province"]
    if lat is not None and lon is not None and ctx.profile.positions == "land" and isinstance(province_code, str):
        _agree(ctx, lat, lon, province_code, labels[0], where)
    return out if any(value is not None for value in out.values()) else None


def _agree(ctx: Context, lat: float, lon: float, province: str, label: str, where: str) -> None:
    """Refuse a province label the position contradicts: the point lies in other provinces' outlines
    and not in the label's (outlines from the policy's areas.yaml, coarse and generous). A point
    in no outline (at sea, abroad) or a label without an outline is not judged: the broker's area
    conditions still hold coordinates against labels for the agreements that name areas."""
    areas = ctx.vocab.areas
    if areas.contains(province, lat, lon) is not False:
        return
    found = areas.provinces_at(lat, lon)
    if found:
        raise fail(LOCATION_MISMATCH, f"{where} lies in {', '.join(found[:3])}, not in {province} as {label} "
                                      "says: check the coordinates or the province")


def finish(alert: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """The checks the schema cannot express, and the review dates; what passes, the broker admits."""
    occurred, reported = alert["occurred_at"], alert["reported_at"]
    # The dates are not quoted: a date of birth in a shifted column would be read here as the event's.
    if occurred.date() < OLDEST_EVENT:
        raise fail(INVALID_DATE, f"the event date is before {OLDEST_EVENT.year}")
    latest = ctx.now + MAX_FUTURE_SKEW
    for name, when in (("event", occurred), ("report", reported)):
        if when > latest:
            raise fail(FUTURE, f"the {name} time is more than {MAX_FUTURE_SKEW.seconds // 3600} hour in the future "
                               f"(now {ctx.now.isoformat(timespec='seconds')})")
    if reported < occurred - MAX_FUTURE_SKEW:
        raise fail(INVALID_DATE, "the report time is before the event time")
    if not alert["alert_id"].startswith(ctx.agency + ":") or alert["agency"] != ctx.agency:
        raise fail(INVALID, f"the alert must be {ctx.agency}'s")  # a mapping bug, never the record's fault
    check_lifecycle(alert)
    m = alert["markings"]
    if ctx.profile.review_days and m["review_at"] is None:
        m["review_at"] = occurred + timedelta(days=ctx.profile.review_days)
    if ctx.profile.expires_days and m["expires_at"] is None:
        m["expires_at"] = occurred + timedelta(days=ctx.profile.expires_days)
    return alert


# ---- versions: corrections, reclassifications, consents and recalls ----------------------------
# The schema's puente.LifecycleAction and puente.RecallReason symbols; a format maps its own words to them.
LIFECYCLE_ACTIONS = ("UPDATE", "RECLASSIFY", "CONSENT", "RECALL")
RECALL_REASONS = ("ERROR", "LEGAL", "SOURCE_PROTECTION", "SUPERSEDED")
# Far above any real count of corrections, far below Avro's int: a larger number is a typing error.
MAX_REVISION = 1_000_000


def revision(value: Any, field: str) -> int:
    """An alert's version as a format writes it: a whole number from 1; absent means 1, a first publication.

    Only a JSON number is taken: "2" as text, 2.5 or true is refused rather than read as some number,
    because a version decides which copy every partner keeps.
    """
    if value is None:
        return 1
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(INVALID, f"{field} must be a whole number from 1, written as a JSON number")
    if not 1 <= value <= MAX_REVISION:  # not quoted: a shifted column puts a document number here
        raise fail(INVALID, f"{field} is out of range: versions count from 1 to {MAX_REVISION:,}")
    return value


def lifecycle(version: int, action: str | None, *, reason: str | None = None,
              partners: Iterable[str] = ()) -> dict[str, Any] | None:
    """The alert's ``lifecycle``: None on version 1 (a first publication), what the version does on a later one.

    A format checks its own fields first, with messages in its own words; this holds the rules
    every version obeys whatever wrote it: version 1 has no action and every later one has one;
    a RECALL says why and a CONSENT names whom, and nothing else carries either.
    """
    if version == 1:
        if action is not None:
            raise fail(INVALID, f"version 1 is a first publication; {action} needs version 2 or more")
        return None
    if action not in LIFECYCLE_ACTIONS:
        raise fail(MISSING_FIELD if action is None else UNKNOWN_CODE,
                   f"version {version} must say what it does ({', '.join(LIFECYCLE_ACTIONS)})")
    named = list(dict.fromkeys(partners))
    if (action == "RECALL") != (reason is not None) or (reason is not None and reason not in RECALL_REASONS):
        raise fail(MISSING_FIELD if action == "RECALL" else INVALID,
                   "a RECALL needs its reason, one of " + ", ".join(RECALL_REASONS) + ", and only a RECALL has one")
    if (action == "CONSENT") != bool(named):
        raise fail(MISSING_FIELD if action == "CONSENT" else INVALID,
                   "a CONSENT names the partners it consents to, and only a CONSENT names any")
    return {"action": action, "reason": reason, "partners": named}


def check_lifecycle(alert: Mapping[str, Any]) -> None:
    """The version rules on a whole alert: ``lifecycle`` fits ``version``, and a CONSENT's partners are
    in ``markings.originator_consent``, which holds every consent given and is what the policy reads."""
    life = alert.get("lifecycle")
    version = alert.get("version", 1)
    if (version == 1) != (life is None):
        raise fail(INVALID, "version 1, and only version 1, has no lifecycle")
    if life is None:
        return
    lifecycle(version, life.get("action"), reason=life.get("reason"), partners=life.get("partners") or ())
    missing = [p for p in life.get("partners") or () if p not in alert["markings"]["originator_consent"]]
    if missing:
        raise fail(INVALID, f"the consent names {', '.join(missing)}, which markings.originator_consent lacks")


def alert(ctx: Context, *, alert_id: str, alert_type: str, occurred_at: datetime, reported_at: datetime | None,
          location: dict[str, Any] | None, markings: dict[str, Any], summary: str | None,
          payload: dict[str, Any], version: int = 1, lifecycle: dict[str, Any] | None = None) -> dict[str, Any]:
    """An alert dict in the schema's shape (keyword-only so that no mapping swaps two fields).
    ``version`` and ``lifecycle`` are set by formats that carry later versions of a record."""
    return {
        "alert_id": alert_id,
        "alert_type": alert_type,
        "agency": ctx.agency,
        "occurred_at": occurred_at.astimezone(UTC),
        "reported_at": (reported_at or occurred_at).astimezone(UTC),
        "source_timezone": ctx.profile.timezone,
        "location": location,
        "markings": markings,
        "summary": summary[: ctx.limits.summary] if summary else None,
        "payload": payload,
        "version": version,
        "lifecycle": lifecycle,
    }


def obj(doc: Mapping[str, Any], key: str, field: str, *, required: bool = False) -> dict[str, Any]:
    """A nested JSON object (empty when absent and not required)."""
    value = doc.get(key)
    if value is None:
        if required:
            raise fail(MISSING_FIELD, f"{field} is required and is missing")
        return {}
    if not isinstance(value, dict):
        raise fail(INVALID, f"{field} must be a JSON object, got a {type(value).__name__}")
    return value


def seq(doc: Mapping[str, Any], key: str, field: str, *, required: bool = False, limit: int = 200) -> list[Any]:
    """A nested JSON array (empty when absent and not required)."""
    value = doc.get(key)
    if value is None:
        if required:
            raise fail(MISSING_FIELD, f"{field} is required and is missing")
        return []
    if not isinstance(value, list):
        raise fail(INVALID, f"{field} must be a JSON array, got a {type(value).__name__}")
    if required and not value:
        raise fail(MISSING_FIELD, f"{field} is empty; at least one entry is required")
    if len(value) > limit:
        raise fail(INVALID, f"{field} has {len(value)} entries; at most {limit} are accepted")
    return value


def known_keys(block: Mapping[str, Any], known: Iterable[str], field: str) -> None:
    """Refuse a key of ``block`` outside ``known``: in a block of markings an unread key is a dropped restriction.

    Elsewhere in a record an unknown key is ignored (exports carry extra fields); in a marking
    block, 'clasificación' or 'difusion ' that nobody reads would let the defaults, often wider,
    decide who receives the alert.
    """
    unknown = sorted(set(block) - set(known))
    if unknown:
        raise fail(UNKNOWN_CODE, f"{field} has the key {key_name(unknown[0])}, which is no marking this adapter "
                                 f"reads (known: {', '.join(sorted(known))})")


def either(doc: Mapping[str, Any], field: str, *keys: str) -> Any:
    """The value under whichever of ``keys`` (alternative names of one field) the record fills; None if none.

    Two of them filled is refused as a duplicate key rather than one picked: as with a JSON key
    given twice, which one the agency meant cannot be known.
    """
    given = [k for k in keys if doc.get(k) not in (None, "")]
    if len(given) > 1:
        raise fail(DUPLICATE_KEY, f"{field} is given twice, as {key_name(given[0])} and {key_name(given[1])}; "
                                  "give one of them")
    return doc[given[0]] if given else None


def lookup(table: Mapping[str, str], value: Any, field: str, *, required: bool = True) -> str | None:
    """A code from an agency's own label table (keys in norm_key form)."""
    return code(value, field, table, required=required)


__all__ = ["LIFECYCLE_ACTIONS", "MAX_FUTURE_SKEW", "MAX_REVISION", "RECALL_REASONS", "Adapter", "Item", "Result",
           "alert", "alert_id", "check_lifecycle", "convert", "either", "finish", "known_keys", "lifecycle", "location",
           "lookup", "markings", "names", "norm_key", "obj", "revision", "seq"]
