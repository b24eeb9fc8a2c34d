"""The shape of the policy files, validated by pydantic when they are loaded.

These models check form only (types, required keys, no unknown keys).
Whether a name refers to something real (a classification on the scale, a
partner, a schema field) is checked against the whole set in ``_check``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, datetime, timedelta, timezone, tzinfo
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from puente.strict import MAX_MARKS, unseen_mark


def _int_to_str(value: Any) -> Any:
    # YAML reads an unquoted credibility grade such as 3 as an int; the markings carry strings.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _read_as(value: Any) -> tuple[str, str]:
    """What YAML read ``value`` as, and the value as the file would show it (empty for a list or mapping)."""
    if isinstance(value, bool):
        return "a boolean", "true" if value else "false"
    if value is None:
        return "null", "no value"
    if isinstance(value, int):
        text = str(value)
        return "a whole number", text if len(text) <= 40 else text[:40] + "..."
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN, not a number", ".nan"
        if math.isinf(value):
            return "infinity", ".inf" if value > 0 else "-.inf"
        return "a decimal number", repr(value)
    if isinstance(value, str):
        return "text", repr(value if len(value) <= 40 else value[:40] + "...")
    if isinstance(value, datetime):
        return "a date and time", value.isoformat()
    if isinstance(value, date):
        return "a date", value.isoformat()
    if isinstance(value, list | tuple):
        return "a list", ""
    if isinstance(value, dict):
        return "a mapping", ""
    return type(value).__name__, ""


def _wrong(value: Any, want: str) -> PydanticCustomError:
    """A one-line error for a scalar of the wrong kind: ``YAML read this as text ('180'); give a whole number``."""
    kind, shown = _read_as(value)
    # the values are the template's context, never part of it: a brace in the file stays a brace
    return PydanticCustomError(
        "yaml_kind",
        "YAML read this as {kind}{shown}; give {want}",
        {"kind": kind, "shown": f" ({shown})" if shown else "", "want": want},
    )


def _whole(value: Any) -> Any:
    # Not a bool (`true` is no number of days), not text ("180"), not a decimal (180.0).
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _wrong(value, "a whole number, unquoted")


def _number(value: Any) -> Any:
    # An int or a finite float; not a bool, not text ("0.01", which YAML also makes of 1e-3).
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise _wrong(value, "a finite number")
    if isinstance(value, str) and re.fullmatch(r"[-+]?[0-9]+[eE][-+]?[0-9]+", value):
        raise _wrong(value, "a number with a decimal point (YAML reads 1e-3 as text, 1.0e-3 as a number)")
    raise _wrong(value, "a number, unquoted")


def _flag(value: Any) -> Any:
    # Only true or false (the loader refuses yes/no/on/off); not "off", not 1.
    if isinstance(value, bool):
        return value
    raise _wrong(value, "true or false, unquoted")


def _or_none(check: Any) -> Any:
    def checked(value: Any) -> Any:
        return None if value is None else check(value)

    return checked


# Scalars as YAML reads them, and nothing pydantic would convert to them: an int field takes a YAML
# integer only, a float field an integer or a finite decimal, a bool field true or false.
WholeNumber = Annotated[int, BeforeValidator(_whole)]
Number = Annotated[float, BeforeValidator(_number)]
Flag = Annotated[bool, BeforeValidator(_flag)]
OptionalWholeNumber = Annotated[int | None, BeforeValidator(_or_none(_whole))]
OptionalNumber = Annotated[float | None, BeforeValidator(_or_none(_number))]

# No whitespace stripping: a code is matched as written, so ``"H2 "`` is refused rather than made
# ``H2``, where it would silently replace the real entry of a map keyed by codes.
Code = Annotated[
    str,
    BeforeValidator(_int_to_str),
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$"),
]


def _distinct_keys(value: Any) -> Any:
    """Refuse a map whose keys become the same code once read (YAML's ``1`` and ``"1"``): the YAML
    reader refuses duplicate keys only as written, and the later entry would silently replace the
    earlier, so a policy could grant what its reader sees withheld."""
    if isinstance(value, dict):
        seen: set[Any] = set()
        for key in value:
            code = _int_to_str(key)
            if code in seen:
                raise ValueError(f"code {str(code)[:64]!r} is given twice")
            seen.add(code)
    return value


CodeMap = BeforeValidator(_distinct_keys)

BROKER_OWNER = "broker"
"""The key owner of the broker's own keys (``broker-sign-<g>``, ``broker-kex-<g>``, and its alert-reference key
``broker-pseudo-<g>``). Defined here, at the bottom of the layers, so the keystore (``broker.crypto.keys``, which
takes it from here) and the policy's ids share one name."""
RESERVED_OWNERS = frozenset({BROKER_OWNER})
"""Key owners the keystore keeps for itself: an agreement (whose pseudonym key is ``<id>-pseudo-<g>``) or a partner
(``<id>-enc-<g>``, ``<id>-rcpt-<g>``) under one of these ids would be given the broker's own keys."""


def _no_reserved_owner(what: str, clash: str) -> Any:
    """A validator refusing an id that is a key owner the keystore reserves (``RESERVED_OWNERS``), in any case: on a
    file system that ignores case (``Broker-pseudo-2026a.json``) it would be the same file."""

    def check(value: str) -> str:
        if value.casefold() in {owner.casefold() for owner in RESERVED_OWNERS}:
            raise ValueError(f"{value!r} names the broker's own keys in the keystore ({BROKER_OWNER}-<role>-<g>, in "
                             f"any case), so {what} of that id {clash}; give it another id")
        return value

    return AfterValidator(check)


def _calendar_date(value: Any) -> Any:
    """A calendar date, as YAML reads ``2025-06-01`` (or that text quoted), and nothing else. Pydantic would take
    a timestamp at midnight (``2025-06-01T00:00:00+09:00``) or a number of seconds as a date, dropping the offset,
    and the agreement would then run by the home country's clock for up to a day and more past the written
    instant."""
    if isinstance(value, datetime) or not isinstance(value, (date, str)):
        raise ValueError("must be a calendar date, YYYY-MM-DD, with no time, offset or number of seconds")
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be a calendar date, YYYY-MM-DD, with no time, offset or number of seconds")
    return value


CalendarDate = Annotated[date, Field(ge=date(1900, 1, 1), le=date(2999, 12, 31)), BeforeValidator(_calendar_date)]


def _one_line(value: str) -> str:
    # Every line break Python splits at: a vertical tab, a form feed, NEL, U+2028... too, not only \n and \r; a
    # reader that breaks lines at them would show a second line in a reason or an error line.
    if len(value.splitlines()) > 1:
        raise ValueError("a line break refused: this text is one line (a title, a why, a name)")
    return value


# The categories of characters each reader names itself (``puente.strict.unseen_mark`` leaves them to it): control
# (an ESC sequence rewrites a terminal), format (a bidi override reverses what a reader sees, a zero-width one hides),
# surrogate, and line and paragraph separators.
_UNSHOWN = {"Cc": "a control character", "Cf": "an invisible format character", "Cs": "a surrogate",
            "Zl": "a line separator", "Zp": "a paragraph separator"}


def _printable(*also: str) -> AfterValidator:
    """A validator taking a text only when it shows a reader what it holds: no control, format, surrogate or separator
    character (``_UNSHOWN``) but those of ``also``, and nothing ``puente.strict.unseen_mark`` finds (a character drawn
    as nothing, such as a Hangul filler or a variation selector; a private-use or unassigned one; a stack of
    combining marks), the rule every adapter's text meets. A title, a name or a reason reaches every decision, the
    audit and the console as it is, and a name that looks like another must be that other."""
    allowed = frozenset(also)
    rule = ("this text holds printable characters only (letters, marks, digits, punctuation, symbols, spaces"
            + (", line breaks)" if allowed else ")") + ", none drawn as nothing, and at most "
            f"{MAX_MARKS} combining marks on a character")

    def check(value: str) -> str:
        for char in value:
            kind = _UNSHOWN.get(unicodedata.category(char))
            if kind is not None and char not in allowed:
                raise ValueError(f"character U+{ord(char):04X} ({kind}) refused: {rule}")
        if (unseen := unseen_mark(value)) is not None:
            raise ValueError(f"{unseen} refused: {rule}")
        return value

    return AfterValidator(check)


class _Prose:
    """Marks a text a policy file may write over several lines (``_source.texts_of`` reads the mark)."""

    def __repr__(self) -> str:
        return "PROSE"


PROSE = _Prose()
# A short text is one line, in the file and in the value: a title or a why shows in reasons and error lines, and a
# text block under it could take in lines a reviewer reads as rules (``_yamlio.Texts``). Prose (a legal basis, a
# purpose, a description) may run over lines; the loader refuses a line of it that reads as an entry. Both hold
# printable characters only (``_printable``): nothing in a title, a name or a reason can rewrite a terminal, hide
# or reverse what a reviewer reads.
_TEXT = StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)
Text = Annotated[str, _TEXT, AfterValidator(_one_line), _printable()]
Prose = Annotated[str, _TEXT, PROSE, _printable("\n")]


MIN_GRID = 0.001
"""The finest grid ``generalise`` may round a number to (a coordinate: about 110 m). A finer one would hand
over the value as it was while the decision, the audit and ``policy explain`` all said it was coarsened."""
GRIDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
"""The grids ``generalise`` may round a number to: 1 or 5 times a power of ten, each dividing the next. A partner
keeps every version of an alert, and a version's grid follows the agreements in force when it is sent (renewed,
annexed, ended), so it may read one value on two grids: cells of grids that do not divide each other cut each
other into pieces finer than either (0.02° and 0.03° pinned 0.005°). On this ladder, with each value put in its
cell from below (``_view._grid``), a cell of the finer grid lies inside one of the coarser: two versions tell no
more than the finer alone."""


def _on_ladder(value: float | None) -> float | None:
    if value is not None and value not in GRIDS:
        shown = ", ".join(f"{g:g}" for g in GRIDS)
        raise ValueError(f"a grid must be one of {shown} (1 or 5 times a power of ten: grids that do not divide "
                         "each other, met in two versions of one alert, pin a value finer than either)")
    return value


class _Model(BaseModel):
    """Every policy document's shape: unknown keys refused, and a key given no value refused too.

    YAML reads ``area:`` with nothing after it as null, and null is what "no condition" is made of: a
    file that seems to restrict (``area:  # DARIEN only``, ``min_grading:  # pending the annex``) would
    restrict nothing. A key left out means its default; a key present must say something."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_blank_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if value is None and key in cls.model_fields:
                    raise ValueError(f"{key} has no value: give one, or leave the key out (an empty key is "
                                     "not read as 'no condition')")
        return data


class Effect(StrEnum):
    """What a caveat or handling code does to a release."""

    NONE = "none"  # informational only
    NOTICE = "notice"  # released, with an obligation stated in the decision (e.g. H1)
    DOMESTIC_ONLY = "domestic_only"  # never to a foreign partner (e.g. PANAMA_ONLY)
    NEEDS_CONSENT = "needs_consent"  # only to partners listed in markings.originator_consent


class Term(_Model):
    effect: Effect
    description: Prose


_UTC_OFFSET = r"^(-(0[0-9]|1[0-1]):[0-5][0-9]|-12:00|\+(0[0-9]|1[0-3]):[0-5][0-9]|\+14:00)$"


class Home(_Model):
    country: Code
    # -12:00 to +14:00 are the offsets in use (+14:59 is none); the digits 0-9 only (a pattern's \d takes any
    # script's, which int() would then read).
    utc_offset: Annotated[str, StringConstraints(pattern=_UTC_OFFSET)] = "-05:00"

    def tz(self) -> tzinfo:
        """The fixed offset agreement dates are read in."""
        hours, minutes = int(self.utc_offset[1:3]), int(self.utc_offset[4:])
        sign = -1 if self.utc_offset[0] == "-" else 1
        return timezone(sign * timedelta(hours=hours, minutes=minutes))


class Scale(_Model):
    scale: list[Code] = Field(min_length=1)

    @field_validator("scale")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("levels must be distinct")
        return value


class Grading(_Model):
    reliability: list[Code] = Field(min_length=1)
    credibility: list[Code] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> Grading:
        for name, values in (("reliability", self.reliability), ("credibility", self.credibility)):
            if len(set(values)) != len(values):
                raise ValueError(f"{name} grades must be distinct")
        return self


class ViewSettings(_Model):
    mask: Annotated[str, StringConstraints(min_length=1, max_length=16)] = "■■■"
    pseudonym_prefix: Annotated[str, StringConstraints(min_length=1, max_length=8)] = "ps:"
    pseudonym_length: WholeNumber = Field(default=16, ge=12, le=52)
    grid: Annotated[Number, AfterValidator(_on_ladder)] = Field(default=0.1, ge=MIN_GRID, le=10)


class Envelope(_Model):
    """The one policy-wide field rule: what every partner's view keeps besides what its agreement names.

    Its fields are the markings a partner needs to honour an alert; ``_check``
    refuses an envelope without the minimum a partner cannot do without.
    """

    rule: Code
    why: Text
    keep: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(min_length=1)


class ListKeepers(_Model):
    """The field naming which list an alert matched (``payload.list_name``) and who keeps each list it may name."""

    field: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    keepers: Annotated[dict[Code, Code], CodeMap] = Field(min_length=1)


class Owners(_Model):
    """Whose information an alert carries besides its originator's (``markings.originator.country``): for each
    alert type, the fields naming another owner (a watchlist hit's ``payload.list_owner``), the keeper of each list
    it may name (``lists``: a list's own keeper, whatever the agency says), and the keepers that are no country and
    open what they keep to every partner (INTERPOL). ``decide`` holds each owner named to the rule of a third
    country's information; ``_check`` refuses a field the alert type lacks or that holds no single code, and a
    list keeper the policy does not know."""

    fields: Annotated[dict[Code, list[Annotated[str, StringConstraints(min_length=1, max_length=200)]]], CodeMap] = {}
    lists: Annotated[dict[Code, ListKeepers], CodeMap] = {}
    open_keepers: list[Code] = []


class Vocabulary(_Model):
    """vocabulary.yaml: the home country, the scales and codes the markings may use, the envelope."""

    home: Home
    # The alert schema release (``schemas/releases/<label>``) every agreement's field rules were reviewed
    # against: a ``keep`` on a record keeps the fields it held there, never one a later release adds.
    reviewed_schema: Code
    classification: Scale
    caveats: Annotated[dict[Code, Term], CodeMap]
    handling_codes: Annotated[dict[Code, Term], CodeMap, Field(min_length=1)]
    grading: Grading
    envelope: Envelope
    owners: Owners = Owners()
    view: ViewSettings = ViewSettings()


class Keys(_Model):
    encryption: Code | None = None
    verification: Code | None = None


class Contact(_Model):
    name: Text
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    phone: Text | None = None


DEFAULT_INSTANCE = "main"
"""The subscriber instance ``puente subscribe`` runs as when ``--instance`` names none."""
MAX_INSTANCES = 8
"""The most subscriber instances partners.yaml may name for one partner. Each is a transactional id the partner's
login may use, and Kafka keeps every transactional id used in its coordinators' memory and its transaction log for
``transactional.id.expiration.ms`` (7 days by default), for every party's transactions to share: a main subscriber,
a standby at another site and a few for moving stores is room enough, and a bound the node can afford."""


FEED_INFO_LABEL = b"puente/feed-data-key/v2"
"""The label HPKE's ``info`` opens with when the broker seals a feed's data key to a partner, then a NUL and the key
block's header, which holds the partner id (docs/feed-format.md, section 4.2). Kept here, below
``broker.crypto.envelope``, which seals with it, so the partner id's room follows from it
(``MAX_PARTNER_ID_BYTES``)."""
KEY_BLOCK_HEADER_FIXED = 1 + 1 + 16 + 8
"""The key block's header less the partner id: its version, the partner id's length, the 16-byte key id and the
8-byte created_at."""
HPKE_INFO_MAX = 64
"""The longest ``info`` RFC 9180 (section 7.2.1) has every HPKE library accept: a partner's own reader may take no
longer one."""
MAX_PARTNER_ID_BYTES = HPKE_INFO_MAX - len(FEED_INFO_LABEL) - 1 - KEY_BLOCK_HEADER_FIXED
"""The longest partner id (UTF-8 bytes) whose key blocks' ``info`` stays within ``HPKE_INFO_MAX``."""


def _fits_hpke_info(value: str) -> str:
    """Refuse a partner id too long for the HPKE ``info`` its feed's data keys are sealed under."""
    size = len(value.encode("utf-8"))
    if size > MAX_PARTNER_ID_BYTES:
        raise ValueError(f"partner id {value!r} is {size} bytes; a feed's key blocks carry it in HPKE's info, "
                         f"{len(FEED_INFO_LABEL) + 1 + KEY_BLOCK_HEADER_FIXED} bytes besides, which RFC 9180 has "
                         f"every reader accept up to {HPKE_INFO_MAX} bytes in all: give an id of at most "
                         f"{MAX_PARTNER_ID_BYTES} bytes")
    return value


class Partner(_Model):
    id: Annotated[Code, _no_reserved_owner("a partner", "would hold its keys under the broker's name, and the broker's "
                                                        "folder would take them for its own"),
                  AfterValidator(_fits_hpke_info)]
    name: Text
    country: Code
    kind: Literal["internal", "foreign"]
    clearance: Code
    feed_topic: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._\-]{1,249}$")]
    keys: Keys = Keys()
    watchlists: list[Code] = []
    # The subscriber instances (``puente subscribe --instance``) the partner may run: ``acls apply`` grants its login
    # the transactional id of each, and no other (an allow-list: a login free to name ids could fill the node's memory).
    instances: list[Code] = [DEFAULT_INSTANCE]
    contact: Contact

    @field_validator("instances")
    @classmethod
    def _few_distinct_instances(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"name at least one subscriber instance (leave the key out for [{DEFAULT_INSTANCE}])")
        if len(value) > MAX_INSTANCES:
            raise ValueError(f"{len(value)} subscriber instances named; at most {MAX_INSTANCES}: each is a "
                             "transactional id Kafka keeps in memory for days")
        if len(set(value)) != len(value):
            raise ValueError("subscriber instances must be distinct")
        return value


class PartnersFile(_Model):
    """partners.yaml: everyone Puente may deliver to."""

    partners: list[Partner] = Field(min_length=1)


class Action(StrEnum):
    KEEP = "keep"
    DROP = "drop"
    MASK = "mask"
    PSEUDONYMISE = "pseudonymise"
    GENERALISE = "generalise"

    @property
    def past(self) -> str:
        """The past participle ("dropped", "masked") for messages."""
        irregular = {"keep": "kept", "drop": "dropped"}
        return irregular.get(self.value, self.value + ("d" if self.value.endswith("e") else "ed"))


def _bare_action(value: Any) -> Any:
    # `payload.remarks: drop` is shorthand for `payload.remarks: {action: drop}`.
    return {"action": value} if isinstance(value, str) else value


class FieldRule(_Model):
    action: Action
    grid: Annotated[OptionalNumber, AfterValidator(_on_ladder)] = Field(default=None, ge=MIN_GRID, le=10)  # ``GRIDS``
    to: Literal["year", "day", "hour"] | None = None  # generalise a date or a timestamp
    domain: Code | None = None  # pseudonymise: values in the same domain get the same pseudonym
    why: Text | None = None

    @model_validator(mode="after")
    def _params_fit(self) -> FieldRule:
        if self.action is not Action.GENERALISE and (self.grid is not None or self.to is not None):
            raise ValueError("grid and to are only for generalise")
        if self.action is not Action.PSEUDONYMISE and self.domain is not None:
            raise ValueError("domain is only for pseudonymise")
        if self.grid is not None and self.to is not None:
            raise ValueError("give grid or to, not both")
        return self


class Area(_Model):
    provinces: list[Code] = []
    border_sectors: list[Code] = []

    @model_validator(mode="after")
    def _not_empty(self) -> Area:
        if not self.provinces and not self.border_sectors:
            raise ValueError("an area needs provinces or border_sectors")
        return self


class WatchlistCondition(_Model):
    risk_levels: list[Code] = Field(min_length=1)
    or_own_list: Flag = False  # also release hits on the partner's own lists, whatever their risk


class When(_Model):
    area: Area | None = None
    event_types: list[Code] | None = Field(default=None, min_length=1)
    watchlist: WatchlistCondition | None = None
    categories: list[Code] | None = Field(default=None, min_length=1)


class Cover(_Model):
    """One alert type an agreement covers, with its conditions and field rules."""

    rule: Code
    alert_type: Code
    when: When = When()
    # Fields no rule names are always dropped. ``keep`` is read only so that ``_check`` can refuse
    # it with a message that says what to write instead.
    others: Literal["keep", "drop"] = "drop"
    fields: dict[str, Annotated[FieldRule, BeforeValidator(_bare_action)]] = {}

    @model_validator(mode="before")
    @classmethod
    def _when_says_something(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("when") == {}:
            raise ValueError("when has no condition: give one, or leave when out (the cover then has none)")
        return data


class MinGrading(_Model):
    reliability: Code
    credibility: Code


class Agreement(_Model):
    """agreements/<name>.yaml: one bilateral or internal sharing agreement."""

    id: Annotated[Code, _no_reserved_owner("an agreement", "would pseudonymise with the broker's alert-reference "
                                                           "key (broker-pseudo-<g>) as its pseudonym key")]
    title: Text
    parties: list[Code] = Field(min_length=2)
    legal_basis: Prose
    purpose: Prose
    # Bounded far from date's own limits, where the instants a validity compiles to would overflow.
    valid_from: CalendarDate
    valid_until: CalendarDate
    max_classification: Code
    min_grading: MinGrading | None = None
    onward_sharing: Flag
    retention_days: WholeNumber = Field(ge=1, le=36500)
    # How long a partner has, after the broker sends it a recall notice, to acknowledge the recall
    # with a signed RECALLED receipt (its software deletes its copy and says so). Auditors check
    # each recall notice against it. A year bounds it: a deadline longer than that is none at all;
    # `puente policy lint` is the place to question anything over 30 days.
    recall_ack_hours: WholeNumber = Field(default=72, ge=1, le=8760)
    covers: list[Cover] = Field(min_length=1)

    @model_validator(mode="after")
    def _dates_in_order(self) -> Agreement:
        if self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self


class Expect(_Model):
    outcome: Literal["DELIVER", "DELIVER_REDACTED", "WITHHOLD"]
    rules: list[Code] = []  # rule ids that must be among the decision's
    redacted: dict[str, Action] = {}  # field -> action the decision must list
    view: dict[str, Any] = {}  # field (dotted, [i] for items) -> value expected in the partner's view


class Case(_Model):
    name: Text
    alert: Code  # a fixture name
    partner: Code
    at: AwareDatetime | None = None  # a time without an offset would make every decision withhold
    set: dict[str, Any] = {}  # dotted path -> value, applied to a copy of the fixture
    expect: Expect


class Suite(_Model):
    """agreements/<name>.tests.yaml: expected decisions for one agreement."""

    suite: Code
    at: AwareDatetime
    alerts: dict[Code, dict[str, Any]] = {}  # fixtures local to this suite
    cases: list[Case] = Field(min_length=1)


class Fixtures(_Model):
    """fixtures.yaml: named alerts in their JSON form, shared by every suite."""

    alerts: dict[Code, dict[str, Any]]
