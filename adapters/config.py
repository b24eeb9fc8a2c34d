"""The adapters' configuration (``agencies.yaml``) and the context one mapping runs in.

Configuration is a trust boundary, so pydantic validates it when loaded, and it is checked
against the policy vocabulary before any record is read: a default marking the policy does
not know would withhold every alert from every partner without anyone noticing.

The YAML is read with ``safe_load``'s rules and three refusals: a key given twice in one
mapping (YAML keeps the last, so a second ``releasable_to`` further down would silently
replace the first), anchors and aliases (an alias bomb expands a few lines into billions of
nodes; the file is short enough to write out), and merge keys (``<<``), which let a mapping
hold a key twice by design.
"""

from __future__ import annotations

import codecs
import functools
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters._codes import norm_key
from policies import Areas, load_policy_set, unseen_character, yaml_problem
from puente.errors import ConfigError
from puente.strict import TooLarge, known_zone, read_bounded
from schemas import bounds

DEFAULT_CONFIG = Path(__file__).resolve().parent / "agencies.yaml"
# Older and local names still typed in reports (San Blas and Kuna Yala are Guna Yala's former names).
_PROVINCE_ALIASES = {"SAN_BLAS": "GUNA_YALA", "KUNA_YALA": "GUNA_YALA", "EMBERA": "EMBERA_WOUNAAN",
                     "NGOBE_BUGLE": "NGABE_BUGLE", "PANAMA_CENTRO": "PANAMA", "BOCAS": "BOCAS_DEL_TORO"}
# An ignored_keys path: keys joined by '.', '[]' after a key whose value is an array of objects; it ends at a key.
_UNIT = re.compile(r"[A-Z0-9][A-Z0-9_]{0,63}")  # an originator code, as the broker admits one (``pipeline._AREA_CODE``)
_PATH = re.compile(r"(?:[^.\[\]]+(?:\[\])?\.)*[^.\[\]]+")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Every ASCII byte, then sequences a codec may read as other text: escapes (unicode_escape, raw_unicode_escape),
# UTF-7's base64 runs, HZ's and ISO-2022's shifts, IDNA's punycode labels.
_ASCII_PROBE = (bytes(range(128)) + rb"\u0041\x41\101\N{DIGIT ONE}\\ +AEE- ~{A~} .xn--mnchen-3ya. "
                + b"\x1b$B\x1b(B")


def _reads_ascii_as_ascii(encoding: str) -> bool:
    """Whether ``encoding`` decodes ASCII bytes as those very characters, wherever they stand. The readers split an
    export at its line and field bytes and refuse a record whose text is not what its bytes say: a codec that reads a
    backslash sequence as another character, or ASCII as something else (UTF-16, EBCDIC), would have every record of
    the agency refused one by one, or read as other text, rather than the configuration refused at start. So would
    one whose characters beyond ASCII take an ASCII byte after their first (``_absorbs_ascii``)."""
    try:
        with warnings.catch_warnings():  # unicode_escape warns of the probe's invalid escapes (\]) as it reads them
            warnings.simplefilter("ignore")
            return _ASCII_PROBE.decode(encoding) == _ASCII_PROBE.decode("ascii") and not _absorbs_ascii(encoding)
    except (LookupError, TypeError, ValueError):  # not bytes to text, or no decoding of every ASCII byte
        return False


@functools.lru_cache(maxsize=64)  # 16,384 decodings, some ms: once per encoding named, not once per agency and load
def _absorbs_ascii(encoding: str) -> bool:
    """Whether ``encoding`` reads some byte of 0x80 or above followed by an ASCII byte as other than a character and
    that ASCII one: the double-byte encodings whose second bytes include ASCII's (Shift_JIS and cp932, Big5, GBK,
    GB18030: 0x95 0x5C is one character, 0x5C a backslash alone; GB18030's four-byte forms hold ASCII digits), where
    a split at a ``,`` or ``\\n`` byte can fall inside a character. Every such pair is decoded: one that is no text
    at all is an error the reader reports, not a misreading."""
    for lead in range(0x80, 0x100):
        for trail in range(0x80):
            try:
                text = bytes((lead, trail)).decode(encoding)
            except UnicodeDecodeError:
                continue
            if not text.endswith(chr(trail)):
                return True
    return False


class MarkingDefaults(_Frozen):
    classification: str
    releasable_to: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()
    handling_code: str = "H0"
    handling_text: str | None = None
    originator_consent: tuple[str, ...] = ()
    grading: str = Field("F6", pattern=r"^[A-Z][0-9]$", description="reliability letter and credibility digit")


class AgencyProfile(_Frozen):
    unit: str | None = None
    country: str = Field("PAN", pattern=r"^[A-Z]{3}$")
    timezone: str = "America/Panama"
    encoding: str = "utf-8"
    region: str
    # At most a century after the event: the broker dead-letters a review or expiry date further ahead.
    review_days: int | None = Field(None, ge=1, le=36_500)
    expires_days: int | None = Field(None, ge=1, le=36_500)
    markings: MarkingDefaults
    classification_map: dict[str, str] = {}
    originators: dict[str, str] = {}
    extra_provinces: tuple[str, ...] = ()
    positions: Literal["land", "sea"] = "land"
    """Where the agency's positions lie. On land a position is held against its province label
    (``adapters.core.location``); at sea the label names the nearest zone, which need not hold it."""
    ignored_keys: tuple[str, ...] = ()
    """Paths of keys the agency's JSON export adds and no adapter reads ('sistema', 'embarcacion.motores',
    'carga[].peso_kg'): tolerated, not read. Every other key the adapter does not read refuses the record
    (``adapters.core.check_keys``); whether a path fits the adapter is checked before any record is read."""
    ignored_columns: tuple[str, ...] = ()
    """Header columns of the agency's CSV export that no adapter reads, as written (matched like the
    header, without regard to accents, case or spacing); every other unknown column refuses the file."""

    @field_validator("ignored_keys")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            if not _PATH.fullmatch(path):
                raise ValueError(f"{path[:60]!r} is not a key path such as 'sistema', 'embarcacion.motores' or "
                                 "'carga[].peso_kg' (keys joined by '.', '[]' after an array's key)")
        return value

    @field_validator("originators")
    @classmethod
    def _units(cls, value: dict[str, str]) -> dict[str, str]:
        # The broker admits a foreign unit only as such a code (COL-DIJIN), and a message's id starts with it and a
        # hyphen (COL-DIJIN-...): with no hyphen inside a code, no entity's ids can be taken for another's.
        for entity in value:
            if not _UNIT.fullmatch(entity):
                raise ValueError(f"originator {entity[:60]!r} is not a code of capitals, digits and _ (at most 64)")
        return value

    @field_validator("ignored_columns")
    @classmethod
    def _columns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for column in value:
            if not column.strip():
                raise ValueError("an empty column name; a column without a header may only hold empty cells")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        # An allow-list (known_zone): ZoneInfo also loads Factory, localtime (this host's zone, another on the
        # next) and the posix/ and right/ copies, none of them the zone of the place where an agency reports.
        if not known_zone(value):
            raise ValueError(f"unknown IANA time zone {value[:60]!r}: name the zone of a place, such as "
                             "America/Panama, or UTC (Factory, localtime, posixrules and the posix/ and right/ "
                             "copies are no place)")
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            text = codecs.lookup(value)._is_text_encoding
        except LookupError as exc:
            raise ValueError(f"unknown text encoding {value[:60]!r}") from exc
        if not text or not _reads_ascii_as_ascii(value):
            raise ValueError(f"{value[:60]!r} is not a text encoding that reads ASCII as ASCII: name the one the "
                             "agency's exports are written in, such as utf-8, utf-8-sig or cp1252 (escape codecs "
                             "such as unicode_escape, UTF-7, UTF-16, UTF-32 and EBCDIC are refused, and so are "
                             "Shift_JIS, Big5, GBK and GB18030, whose characters may hold an ASCII byte)")
        return value

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Region(_Frozen):
    latitude: tuple[float, float]
    longitude: tuple[float, float]

    def contains(self, lat: float, lon: float) -> bool:
        return self.latitude[0] <= lat <= self.latitude[1] and self.longitude[0] <= lon <= self.longitude[1]


class Port(_Frozen):
    name: str
    province: str
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    border_sector: str | None = None


class Limits(_Frozen):
    """The longest text each kind of field may hold; a longer value is refused, never cut. Each may be lowered,
    never raised above the bound the broker holds every alert to (``schemas.bounds``): a longer value would be
    published only to be dead-lettered there."""

    id: int = Field(80, ge=1, le=bounds.ALERT_ID - 80)  # AGENCY: goes before it
    code: int = Field(40, ge=1, le=bounds.PORT)
    name: int = Field(100, ge=1, le=bounds.NAME)
    place: int = Field(120, ge=1, le=bounds.PLACE)
    unit: int = Field(120, ge=1, le=bounds.UNIT)
    summary: int = Field(200, ge=1, le=bounds.SUMMARY)
    remarks: int = Field(2000, ge=1, le=bounds.REMARKS)
    handling_text: int = Field(500, ge=1, le=bounds.HANDLING_TEXT)
    document: int = Field(30, ge=1, le=bounds.DOCUMENT)
    record_bytes: int = Field(65536, ge=1024, le=900_000)  # stays under Kafka's 1 MB message default


class AdaptersConfig(_Frozen):
    agencies: dict[str, AgencyProfile]
    regions: dict[str, Region]
    provinces: tuple[str, ...]
    border_sectors: dict[str, str]
    ports: dict[str, Port]
    limits: Limits = Limits()


@dataclass(frozen=True)
class Vocabulary:
    """The marking codes the policy knows: what an adapter may put in an alert's markings."""

    classifications: tuple[str, ...]
    caveats: frozenset[str]
    handling_codes: frozenset[str]
    reliability: frozenset[str]
    credibility: frozenset[str]
    names: frozenset[str]  # partners and countries that REL TO may name
    countries: frozenset[str]  # originator countries the policy can reason about
    areas: Areas = field(default_factory=Areas)  # the policy's outlines, to hold positions against labels
    # Partner ids: what consent may name. Consent is given per partner; a country in it names no one,
    # and the policy withholds such an alert from every partner, for good.
    partners: frozenset[str] = frozenset()
    # The policy's own country: an agency of another relays that country's units (``broker.pipeline.Originator``).
    home_country: str | None = None

    @classmethod
    def from_policy(cls, ps: Any) -> Vocabulary:
        """From a loaded ``policies.PolicySet``."""
        return cls(tuple(ps.scale), frozenset(ps.caveat_effects), frozenset(ps.handling_effects),
                   frozenset(ps.reliability_rank), frozenset(ps.credibility_rank), frozenset(ps.known_names),
                   frozenset(ps.known_countries), ps.areas, frozenset(ps.partners), ps.home_country)

    @classmethod
    def load(cls, policy_dir: Path | None = None) -> Vocabulary:
        return cls.from_policy(load_policy_set(policy_dir))


class _Refused(yaml.YAMLError):
    """YAML that safe_load would accept but the configuration does not; ``line`` counts from 1."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem, self.line = problem, mark.line + 1


class _StrictLoader(yaml.SafeLoader):
    """safe_load, refusing duplicate keys, anchors, aliases and merge keys (see the module docstring)."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        # checked before the composer resolves an alias (an AliasEvent is a NodeEvent): nothing is expanded
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            raise _Refused("anchors and aliases (& and *) are not accepted; write the value out", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Refused("merge keys (<<) are not accepted", key_node.start_mark)
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: safe_load's own check names it
                continue
            if repeated:
                shown = str(key) if len(str(key)) <= 40 else str(key)[:40] + "…"
                raise _Refused(f"the key {shown!r} appears twice in one mapping", key_node.start_mark)
        return super().construct_mapping(node, deep)


_MAX_CONFIG = 4 * 1024 * 1024  # the shipped file is a few KiB


def load_config(path: Path | None = None) -> AdaptersConfig:
    """The adapters' configuration; ConfigError names the file and the field, or the line, of any problem."""
    path = path or DEFAULT_CONFIG
    try:
        text = read_bounded(path, _MAX_CONFIG).decode("utf-8")
    except TooLarge:
        raise ConfigError(f"{path}: larger than {_MAX_CONFIG // (1024 * 1024)} MiB; not an adapter configuration")\
            from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read adapter configuration: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start + 1})") from None
    unseen = unseen_character(text)
    if unseen is not None:
        raise ConfigError(f"{path}:{unseen}")
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a safe loader
    except _Refused as exc:
        raise ConfigError(f"{path}:{exc.line}: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_problem(str(path), exc, text)) from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the file must be a YAML mapping (agencies:, regions: ...); not an adapter "
                          "configuration")
    try:
        return AdaptersConfig.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors()[:5])
        raise ConfigError(f"{path}: invalid adapter configuration: {problems}") from exc


def _problem(loc: tuple[int | str, ...], msg: str) -> str:
    where = ".".join(str(p) for p in loc)
    return f"{where}: {msg}" if where else msg


def check_profile(agency: str, cfg: AdaptersConfig, vocab: Vocabulary) -> list[str]:
    """Every problem of one agency's profile against the configuration and the policy vocabulary."""
    p = cfg.agencies.get(agency)
    if p is None:
        return [f"no profile for agency {agency} (known: {', '.join(sorted(cfg.agencies))})"]
    m, out = p.markings, []
    if p.region not in cfg.regions:
        out.append(f"region {p.region!r} is not under regions:")
    if m.classification not in vocab.classifications:
        out.append(f"classification {m.classification!r} is not on the policy scale")
    out += [f"releasable_to names {n!r}, unknown to the policy" for n in m.releasable_to if n not in vocab.names]
    out += [f"originator_consent names {n!r}, not a partner of the policy (consent names partner ids)"
            for n in m.originator_consent if n not in vocab.partners]
    out += [f"caveat {c!r} is unknown to the policy" for c in m.caveats if c not in vocab.caveats]
    if m.handling_code not in vocab.handling_codes:
        out.append(f"handling code {m.handling_code!r} is unknown to the policy")
    if m.grading[0] not in vocab.reliability or m.grading[1:] not in vocab.credibility:
        out.append(f"grading {m.grading!r} is unknown to the policy")
    if p.country not in vocab.countries:
        out.append(f"originator country {p.country!r} is unknown to the policy")
    out += [f"classification_map sends {k!r} to {v!r}, not on the policy scale"
            for k, v in p.classification_map.items() if v not in vocab.classifications]
    # A province or sector the policy's areas lack is inside no area a rule names, and the broker withholds every
    # alert naming it from every partner (rule unknown.area): a configuration naming one is a mistake to say now,
    # not every such alert to lose later. (A policy with no areas at all outlines nothing, and no label can be held
    # to it.)
    if vocab.areas.outlines:
        out += _unknown_areas(p, cfg, vocab.areas)
    return [f"{agency}: {problem}" for problem in out]


def _unknown_areas(profile: AgencyProfile, cfg: AdaptersConfig, areas: Areas) -> list[str]:
    """The province and border sector codes the agency's alerts may carry that ``areas`` has no outline of. Every
    province an adapter writes is a value of its province table (``provinces`` and the agency's
    ``extra_provinces``; aliases and ports' provinces are looked up in it), every sector a key of ``border_sectors``
    (ports' sectors are looked up in it)."""
    where = (*(("provinces", code) for code in cfg.provinces),
             *(("extra_provinces", code) for code in profile.extra_provinces))
    out = [f"{field} names {code!r}, not a province or comarca of the policy's areas.yaml"
           for field, code in where if code not in areas.provinces]
    return out + [f"border_sectors names {code!r}, not a border sector of the policy's areas.yaml"
                  for code in cfg.border_sectors if code not in areas.border_sectors]


@dataclass(frozen=True)
class Context:
    """Everything one agency's mapping needs besides the record: no I/O and no clock inside.

    ``now`` is passed in so that mapping stays a pure function; the edge reads the clock once
    per run. It only bounds what is plausible (no events in the future).
    """

    agency: str
    profile: AgencyProfile
    config: AdaptersConfig
    vocab: Vocabulary
    now: datetime

    @cached_property
    def region(self) -> Region:
        return self.config.regions[self.profile.region]

    @cached_property
    def provinces(self) -> frozenset[str]:
        return frozenset((*self.config.provinces, *self.profile.extra_provinces))

    @property
    def limits(self) -> Limits:
        return self.config.limits

    @cached_property
    def province_table(self) -> dict[str, str]:
        """Every way staff write a province or comarca, normalised (see norm_key), to its code."""
        table = {p: p for p in self.provinces}
        table |= {f"COMARCA_{p}": p for p in self.provinces} | {f"PROVINCIA_DE_{p}": p for p in self.provinces}
        table |= {k: v for k, v in _PROVINCE_ALIASES.items() if v in self.provinces}
        return table

    @cached_property
    def sector_table(self) -> dict[str, str]:
        """Border sector codes, and their place names, to the code."""
        table = {code: code for code in self.config.border_sectors}
        return table | {norm_key(name): code for code, name in self.config.border_sectors.items()}

    def at(self, now: datetime) -> Context:
        """The same context at another time (the watcher moves it on between files)."""
        return Context(self.agency, self.profile, self.config, self.vocab, now)


def make_context(agency: str, now: datetime, config: AdaptersConfig | None = None,
                 vocab: Vocabulary | None = None) -> Context:
    """A checked context for ``agency``; ConfigError lists every problem of its profile."""
    if now.tzinfo is None or now.utcoffset() != timedelta(0):
        raise ValueError("now must be an aware UTC datetime")
    config = config or load_config()
    vocab = vocab or Vocabulary.load()
    problems = check_profile(agency, config, vocab)
    if problems:
        raise ConfigError("adapter configuration does not fit the policy: " + "; ".join(problems))
    return Context(agency, config.agencies[agency], config, vocab, now)
