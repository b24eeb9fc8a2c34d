"""The pure core every adapter shares: markings, locations, ids, versions, final checks, and ``convert``.

An adapter is a reader (bytes -> records), the keys its records may hold, and a mapping
(record -> alert dict) over a :class:`~adapters.config.Context`. ``convert`` runs them and
encodes with the alert codec, which is the schema check: every record comes out as a
:class:`Result` with either the alert and its bytes or an AdapterError whose reason becomes
the dead letter's. No Kafka, no clock, no files here; the edge (``adapters.run``) does the I/O.

Keys are an allow-list (:class:`Keys`, checked by :func:`check_keys` before the mapping runs):
a key the adapter does not read refuses the record, at any depth, unless the agency's
``ignored_keys`` names its path. A key nobody reads is a field lost without a word, and when
it is a block of markings under another name ('Marcado', 'marcado ') the agency's defaults,
often wider, would decide who receives the alert. An ignored key (or column) is named like no marking
(``check_ignored``, at start-up), and what it holds is still read (``refuse_ignored``), each string at any depth,
keys too, the column or key named and never the value. (1) Control characters (but tab and line breaks) and bidi
overrides and isolates (U+202A-202E, U+2066-2069) are refused; other format characters (ZWSP, ZWNJ, ZWJ, soft
hyphen, LRM/RLM, BOM) are removed, Greek and Cyrillic letters that look Latin folded to Latin, and the value
NFKD-folded, before it is tokenised (``_plain``, ``_tokens``); nothing else of the read field's guards applies. (2)
A value holding, as a word, separated or joined, a token nobody writes in prose (NOFORN, ORCON, FOUO, TLP,
ULTRASECRETO/A, SOLO_PANAMA, PANAMA_ONLY, NO_DIFUNDIR, NO_DIVULGAR: SOLOPANAMA, NODIFUNDIR...), or REL TO and a
partner or country, is refused wherever it stands. (3) Otherwise a value is refused only when it is wholly a
marking: with filler removed (Solo, REL, TO, y, X, single letters and digits, punctuation...), it holds only levels
and agencies' labels for them, handling codes, gradings, caveats, no-release labels and marking words, one at least,
and partners or countries ('Secreto (S)', 'H2', 'Nivel 3', 'Clasificación: secreto', 'PII'). Partners and countries
alone ('EE.UU.', 'En Colombia') and longer prose ('Playa El Secreto', 'Bus H2 de traslado') are dropped unread, as
is a marking the vocabulary does not know ('CONF', 'Solo PA'): an export's free-text column is safe to ignore only
once its content has been checked.
"""

from __future__ import annotations

import copy
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from adapters._codes import COUNTRY_NAMES, norm_key, norm_text
from adapters._fields import (
    DUPLICATE_KEY,
    FUTURE,
    INVALID,
    INVALID_DATE,
    INVISIBLE,
    LOCATION_MISMATCH,
    MISSING_FIELD,
    OLDEST_EVENT,
    OUT_OF_REGION,
    SCHEMA,
    TOO_LONG,
    UNKNOWN_CODE,
    code,
    did_you_mean,
    fail,
    given,
    key_name,
    text,
)
from adapters._readers import Item
from adapters.config import Context
from puente.errors import AdapterError, CodecError, ConfigError
from schemas import alert_codec, bounds_problem

# The broker refuses events more than an hour in the future (clock skew between agencies);
# refusing at the same bound here means the broker never dead-letters what an adapter publishes.
MAX_FUTURE_SKEW = timedelta(hours=1)
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/#-]*")  # the broker admits the same (broker.pipeline._REFERENCE)

Reader = Callable[[BinaryIO, Context], Iterator[Item]]
Mapper = Callable[[Any, Context], dict[str, Any]]


# ---- the keys a record may hold ----------------------------------------------------------------
class Keys:
    """The keys of a JSON object that an adapter reads; any other key refuses the record (see the module docstring).

    ``Keys("a", "b", c=Keys(...), d=Each(Keys(...)))``: plain names hold values (text, numbers,
    lists of them), keywords hold nested objects, arrays of objects, or a :class:`ByKind`.
    A block of markings is ``Keys.markings(...)``, sealed: no configuration may let a key there
    go unread, since a marking nobody reads is a restriction dropped.
    """

    __slots__ = ("fields", "ignored", "names", "nested", "sealed")

    def __init__(self, *values: str, **nested: Node) -> None:
        self.fields: dict[str, Node] = {**dict.fromkeys(values), **nested}  # what the mapping reads
        self.names = frozenset(self.fields)  # what a record may hold here: fields and the keys tolerated
        self.nested = {key: node for key, node in self.fields.items() if node is not None}
        self.ignored = frozenset[str]()  # the keys tolerated here: their values are only held to hold no marking
        self.sealed = False

    @classmethod
    def markings(cls, *values: str) -> Keys:
        """A sealed block of markings: every key must be one of ``values``, whatever agencies.yaml says."""
        block = cls(*values)
        block.sealed = True
        return block

    def tolerating(self, paths: Iterable[str]) -> Keys:
        """These keys, also admitting the keys ``paths`` name (agencies.yaml's ignored_keys), never read nor walked.

        Built once per run, so a record's check compares sets and builds no path. A path that leads
        nowhere, or into a sealed block, admits nothing here; ``check_ignored`` refuses it before any
        record is read. What an admitted key holds is still read for markings (``check_keys``).
        """
        heads: dict[str, list[str]] = {}
        for path in paths:
            head, _, rest = path.partition(".")
            heads.setdefault(head, []).append(rest)
        if not heads or self.sealed:
            return self
        out = copy.copy(self)
        out.ignored = self.ignored | {head for head, rests in heads.items() if "" in rests}
        out.names = self.names | out.ignored
        out.nested = dict(self.nested)
        for head, rests in heads.items():
            deeper = [rest for rest in rests if rest]
            name, many = head.removesuffix("[]"), head.endswith("[]")
            node = self.nested.get(name)
            if deeper and many and isinstance(node, Each):
                out.nested[name] = Each(node.keys.tolerating(deeper))
            elif deeper and not many and isinstance(node, Keys):
                out.nested[name] = node.tolerating(deeper)
            elif deeper and not many and isinstance(node, ByKind):
                out.nested[name] = ByKind(node.kind, {k: keys.tolerating(deeper) for k, keys in node.kinds.items()})
        return out


@dataclass(frozen=True)
class Each:
    """An array whose entries are objects of ``keys`` (an entry of another type is the mapping's to refuse)."""

    keys: Keys


@dataclass(frozen=True, eq=False)
class ByKind:
    """An object whose keys depend on the record's kind: ``kind`` reads the kind from the whole record and picks
    one of ``kinds``.

    ``kind`` is the mapping's own reading of the kind (one function for both), so the keys admitted are those of
    the type the mapping builds: a kind read one way here and another there ('tipo' padded with blanks, which the
    mapping trims) would admit one type's keys and map another, whose mapping never reads them. A kind that cannot
    be read refuses the record, with the mapping's own error: no kind admits every type's keys.
    """

    kind: Callable[[Mapping[str, Any]], str]
    kinds: Mapping[str, Keys]

    def pick(self, record: Mapping[str, Any]) -> Keys:
        keys = self.kinds.get(self.kind(record))  # raises the mapping's AdapterError for a kind it refuses
        if keys is None:  # a kind the mapping reads and no keys are listed for: the adapter's fault, never admitted
            raise fail(INVALID, "the record's kind has no list of the keys it may hold (an adapter fault)")
        return keys


Node = Keys | Each | ByKind | None


class _Found(Exception):
    """What refuses a record as ``_walk`` finds it; ``trail`` collects where it is as the walk unwinds (innermost
    first)."""

    trail: list[str]


class _Unknown(_Found):
    """A key ``keys`` does not admit, the ``number``-th of ``count`` in its object."""

    def __init__(self, obj: dict[str, Any], keys: Keys) -> None:
        number, key = next((i, k) for i, k in enumerate(obj, 1) if k not in keys.names)
        super().__init__(number)
        self.key, self.number, self.count, self.keys, self.trail = key, number, len(obj), keys, list[str]()


class _Marked(_Found):
    """An ignored key (agencies.yaml names it, so it may be said) whose value reads as a marking."""

    def __init__(self, key: str, value: Any) -> None:
        super().__init__(key)
        self.trail, self.value = [key], value


def check_keys(doc: Any, keys: Keys, vocabulary: MarkingVocabulary | None = None) -> None:
    """Refuse a record holding a key that ``keys`` (see ``Keys.tolerating``) does not admit, at any depth, or an
    ignored key whose value reads as a marking of ``vocabulary`` (``marking_vocabulary``; ``reads_as_marking``).

    The message says where the key is, never a value; nor the key itself, which may be data (a
    record keyed by a traveller's name, documents keyed by passport number): only a known key it
    nearly matches is named. A value of the wrong type (an array where an object belongs) is left
    to the mapping to refuse; a kind a :class:`ByKind` cannot read refuses the record here, as the mapping would.
    """
    if not isinstance(doc, dict):  # JSON objects, as the readers parse them
        return
    vocabulary = vocabulary or NO_MARKINGS
    try:
        _walk(doc, keys, doc, vocabulary)
    except _Unknown as exc:
        raise _unknown_key(exc, ".".join(reversed(exc.trail)) or "the record") from None
    except _Marked as exc:
        where = ".".join(reversed(exc.trail))
        refuse_ignored(exc.value, "key", where, "ignored_keys", vocabulary)  # the refusal for the path, now known
        raise ignored_marking("key", where, "ignored_keys") from None


def _walk(obj: dict[str, Any], keys: Keys, record: dict[str, Any], vocabulary: MarkingVocabulary) -> None:
    # Run for every record: keys are compared as sets (in C), only nested values are walked, and where a key
    # is, is worked out only for the one refused (as the exception unwinds).
    if not keys.names.issuperset(obj):
        raise _Unknown(obj, keys)
    for key in keys.ignored.intersection(obj):
        if _refused(obj[key], vocabulary):
            raise _Marked(key, obj[key])
    for key, node in keys.nested.items():
        value = obj.get(key)
        if isinstance(node, Each):
            for index, entry in enumerate(value if isinstance(value, list) else ()):
                try:
                    if isinstance(entry, dict):
                        _walk(entry, node.keys, record, vocabulary)
                except _Found as exc:
                    exc.trail.append(f"{key}[{index}]")
                    raise
        elif isinstance(value, dict):
            try:
                _walk(value, node.pick(record) if isinstance(node, ByKind) else node, record, vocabulary)
            except _Found as exc:
                exc.trail.append(key)
                raise


def _unknown_key(unknown: _Unknown, where: str) -> AdapterError:
    known = sorted(unknown.keys.fields)
    listing = ", ".join(known[:16]) + (", ..." if len(known) > 16 else "")
    sealed = unknown.keys.sealed
    # The key is never quoted (it may be a name or a document number); a near miss names the known key instead.
    # Never near among markings: 'consentimiento_previo' is not a misspelt 'consentimiento', and renaming it
    # so would widen a release.
    meant = did_you_mean(unknown.key, known, near=not sealed)
    which = meant or (f" (key {unknown.number} of {unknown.count}, {len(unknown.key):,} characters)"
                      if unknown.count > 1 else f" ({len(unknown.key):,} characters)")
    if sealed:
        return fail(UNKNOWN_CODE, f"{where} has an unexpected key{which}, which is no marking this adapter reads: "
                                  "check its spelling; a new kind of marking needs the adapter to read it "
                                  f"(known: {listing})")
    return fail(UNKNOWN_CODE, f"{where} has an unexpected key{which}, which this adapter does not read: check its "
                              "spelling, or list its path under ignored_keys in agencies.yaml if the export adds it "
                              f"and it holds no marking: {RESTRICTS} (known here: {listing})")


# What every refusal about an ignored column or key says, so that no advice to ignore one comes without it.
RESTRICTS = "a column or key that restricts release must be read, not ignored"


def ignored_marking(kind: str, name: str, setting: str) -> AdapterError:
    """The refusal of a record whose ignored ``kind`` ('column', 'key') ``name`` (as agencies.yaml's ``setting`` lists
    it, so it may be said) holds what reads as a marking; never the value, which is the record's."""
    return fail(INVALID, f"the {kind} '{name}', which {setting} in agencies.yaml lists, holds what reads as a marking "
                         f"(a level, release, caveat, handling code, partner, country or grading): {RESTRICTS}; "
                         "have the adapter read it, or remove it from the export")


def _ignorable(path: str, keys: Keys) -> str | None:
    """Why ``path`` (an ignored_keys entry) cannot be ignored by an adapter reading ``keys``; None when it can."""
    *parents, last = path.split(".")
    levels = [keys]
    for i, part in enumerate(parents):
        many = part.endswith("[]")
        name = part[:-2] if many else part
        found: list[Keys] = []
        for level in levels:
            node = level.fields.get(name)
            if many and isinstance(node, Each):
                found.append(node.keys)
            elif not many and isinstance(node, Keys):
                found.append(node)
            elif not many and isinstance(node, ByKind):
                found.extend(node.kinds.values())
        if not found:
            kind = "array of objects" if many else "object"
            return f"does not lead into the records: {'.'.join([*parents[:i], name])} is no {kind} this adapter reads"
        levels = found
    for level in levels:
        if level.sealed:
            return "is inside a block of markings, where every key must be read (a marking nobody reads is a " \
                   "restriction dropped)"
        if last in level.fields:
            return "is a key this adapter reads"
        if norm_key(last) in {norm_key(k) for k in level.fields}:
            return "differs only in case, accents or spacing from a key this adapter reads: correct the export"
    return None


def check_ignored(adapter: Adapter, ctx: Context) -> None:
    """Raise ConfigError, naming each, when the agency's ``ignored_keys`` or ``ignored_columns`` do not fit ``adapter``.

    An entry that names nothing the records can hold would look like a tolerance and be none; one
    that names a key or column the adapter reads, or a misspelling of one, would hide a mistake;
    one inside a block of markings, or named like a marking in Spanish or English (``_marking``: 'Releasable to',
    'Clasif.', a key 'clasificacion' outside the block), would drop a restriction; one holding another script's letters
    or signs beside its words (``plain_name``) names nothing as written. Run before any record is read.
    """
    problems = _ignored_problems(adapter, ctx)
    if problems:
        raise ConfigError(f"adapter configuration does not fit the {adapter.name} adapter: {ctx.agency}: "
                          + "; ".join(problems) + "; check agencies.yaml")


def _ignored_problems(adapter: Adapter, ctx: Context) -> list[str]:
    profile, vocabulary = ctx.profile, marking_vocabulary(ctx, adapter.marking_labels)
    out: list[str] = []
    if profile.ignored_keys and adapter.keys is None:
        out.append(f"ignored_keys: the {adapter.name} adapter's records have no JSON keys")
    elif adapter.keys is not None:
        out += [f"ignored_keys: {path!r} {why}" for path in profile.ignored_keys
                if (why := _unnamed(path.replace(".", " ")) or _ignorable(path, adapter.keys)
                    or _never_ignored(_marking(path.rsplit(".", 1)[-1].removesuffix("[]"), (), vocabulary)))]
    if profile.ignored_columns and adapter.columns is None:
        out.append(f"ignored_columns: the {adapter.name} adapter's records have no header columns")
    elif adapter.columns is not None:
        for column in profile.ignored_columns:
            if why := _unnamed(column):
                out.append(f"ignored_columns: {column!r} {why}")
            elif norm_key(column) in adapter.columns:
                out.append(f"ignored_columns: {column!r} is a column this adapter reads")
            elif why := _never_ignored(_marking(column, adapter.marking_columns, vocabulary)):
                # A CSV has no block of markings to seal, as JSON does: a column named like a marking ('Clasificación
                # de seguridad', 'Releasable to', 'Clasif.') is taken for a marking the export renamed, never ignored.
                out.append(f"ignored_columns: {column!r} {why}")
    return out


def _never_ignored(found: str | None) -> str | None:
    return None if found is None else (f"looks like {found}, and markings are never ignored: name it as the adapter "
                                       "reads it, or fix the export")


def _unnamed(name: str) -> str | None:
    """Why ``name`` (an ignored column, or a key path's keys) names nothing an export writes: a letter, a digit or a
    sign of another script beside its words (``plain_name``), which matching by the lookup form would fold away;
    None when it is plain."""
    try:
        plain_name(name, "it")
    except AdapterError as exc:
        return str(exc).removeprefix("it ")
    return None


# Words that name a marking, in Spanish and English, in norm_key form, each spelt out with the inflections and
# abbreviations a person writes for it: an ignored column (or an ignored key's last key) holding one as a whole word,
# or a word of the adapter's own marking columns, is taken for a marking and refused (``_marking``). An export may
# rename a marking column any way a person would still read as one ('Releasable to', 'Caveat', 'Clasif.',
# 'Handling', 'Nivel de seguridad'), and a marking nobody reads is a restriction dropped for the agency's defaults.
# Whole words, not stems: 'Consecutivo', 'Secretaría', 'Seguro', 'Crédito', 'Confianza' or 'Contacto con' name
# nothing of the kind, and share only letters with CONSENT, SECRETO, SEGURIDAD, CREDIBILIDAD, CONFIDENCIAL.
# Left out: MARCA (a vehicle's make; a block 'marcado' is sealed, and MARCADO is here). Besides these words, a name
# holding a marking of ``marking_vocabulary`` ('Solo Panamá', 'PII', 'Público', 'USA') is refused the same way.
MARKING_WORDS = frozenset({
    # classification and its levels
    "CLASIFICACION", "CLASIFICACIONES", "CLASIFICADO", "CLASIFICADA", "CLASIFICADOS", "CLASIFICADAS", "CLASIFICAR",
    "CLASIF", "CLASSIFICATION", "CLASSIFICATIONS", "CLASSIFIED", "UNCLASSIFIED", "CLASSIF", "CLASS",
    "SEGURIDAD", "SECURITY", "SECRETO", "SECRETA", "SECRETOS", "SECRET", "CONFIDENCIAL", "CONFIDENCIALES",
    "CONFIDENCIALIDAD", "CONFIDENTIAL", "CONFIDENTIALITY", "RESTRINGIDO", "RESTRINGIDA", "RESTRICTED", "RESERVADO",
    "RESERVADA",
    # release and dissemination
    "RELEASABLE", "RELEASABILITY", "RELEASE", "RELEASED", "REL", "LIBERABLE", "LIBERABLES", "DIFUSION", "DIFUSIONES",
    "DIF", "DISSEMINATION", "DISSEM", "DISEMINACION", "NOFORN", "ORCON", "FOUO", "TLP",
    # caveats, handling, restrictions
    "CAVEAT", "CAVEATS", "ADVERTENCIA", "ADVERTENCIAS", "HANDLING", "MANEJO",
    "RESTRICCION", "RESTRICCIONES", "RESTRICTION", "RESTRICTIONS",
    # grading of the source and the information
    "GRADING", "CALIFICACION", "CALIFICACIONES", "CALIF", "EVALUACION", "EVALUACIONES", "EVAL", "RELIABILITY",
    "CREDIBILITY", "FIABILIDAD", "CONFIABILIDAD", "CREDIBILIDAD",
    # consent, originator, the marking itself
    "CONSENT", "CONSENTIMIENTO", "ORIGINATOR", "ORIGINADOR", "ORIGINADORA", "MARKING", "MARKINGS", "MARCADO",
    # who may receive it, and at what level, as a release column is named ('Países autorizados', 'Compartir con')
    "DISTRIBUCION", "DISTRIBUCIONES", "DISTRIBUIR", "DISTRIBUTION", "DESTINATARIO", "DESTINATARIOS", "DESTINATARIA",
    "DESTINATARIAS", "AUTORIZADO", "AUTORIZADOS", "AUTORIZADA", "AUTORIZADAS", "COMPARTIR", "COMPARTIDO",
    "COMPARTIDA", "NIVEL", "NIVELES", "LEVEL",
})
_NO_MARKING = frozenset({"CODIGO", "TEXTO", "DEL"})  # words of a marking column's name that name none alone
_ABBREVIATED = 3  # letters, at least, of a word written with a dot ('Dif.', 'Sec.') that may abbreviate a marking word
_COMPOUND = 8  # letters, at least, of a marking word held inside a longer word ('Subclasificación', 'desclasificado')
_CAMEL = re.compile(r"(?<=[a-zß-ÿ])(?=[A-ZÀ-Þ])")  # 'nivelClasificacion' -> 'nivel Clasificacion'


def _words(name: str) -> list[tuple[str, bool]]:
    """The words of ``name`` in norm_key form (letters only: 'Clasif2' is CLASIF), each with whether a dot follows it
    as written ('Clasif.' -> CLASIF, True); camelCase is split ('relTo' -> REL, TO)."""
    out: list[tuple[str, bool]] = []
    parts = name.split(".")
    for i, part in enumerate(parts):
        words = re.findall(r"[A-Z]+", norm_key(_CAMEL.sub(" ", part)))
        out += [(w, j == len(words) - 1 and i < len(parts) - 1 and part[-1:].isalnum()) for j, w in enumerate(words)]
    return out


def _marking(name: str, columns: Iterable[str], vocabulary: MarkingVocabulary) -> str | None:
    """What marking ``name`` may be taken for ('the marking column REL_TO', 'a marking (the word CAVEAT)'), or None.

    ``columns``: the adapter's marking columns (norm_key form). ``name`` holds a marking of ``vocabulary`` as whole
    words ('Solo Panamá', 'PII'); or a word of it is one of ``MARKING_WORDS`` or a word of those columns (but CODIGO,
    TEXTO, DEL); or it is written with a dot and, three letters or more, begins one ('Sec.', 'Conf.': an abbreviation
    that may stand for a marking is taken for one); or it holds one of eight letters or more inside it
    ('Subclasificación', 'desclasificado')."""
    if found := _holds(name, vocabulary):
        return f"a marking ({found})"
    aliases = sorted(columns, key=lambda a: (-len(a), a))  # the longest first: TEXTO_DE_MANEJO, not MANEJO
    own = {w: alias for alias in aliases for w in alias.split("_") if len(w) >= 3 and w not in _NO_MARKING}  # shortest
    marks = sorted(own.keys() | MARKING_WORDS)
    words = _words(name)
    key = "_".join(w for w, _ in words)
    if found := next((a for a in aliases if f"_{a}_" in f"_{key}_"), None):  # its words, in its order
        return f"the marking column {found}"
    for word, dotted in words:
        if word in own:
            return f"the marking column {own[word]}"
        if word in MARKING_WORDS:
            return f"a marking (the word {word})"
        if dotted and len(word) >= _ABBREVIATED and (mark := next((m for m in marks if m.startswith(word)), None)):
            return f"a marking ({word}. may abbreviate {mark})"
        if mark := next((m for m in marks if len(m) >= _COMPOUND and m in word), None):
            return f"a marking ({word} holds {mark})"
    return None


# The no-release labels every adapter knows, whatever its own release labels (SENAFRONT's Difusión reads the first
# four): an ignored column or key holding one, or named like one, drops a "release to nobody" for the defaults.
DOMESTIC_LABELS = ("SOLO_PANAMA", "PANAMA_ONLY", "NINGUNO", "NO_DIFUNDIR")
_NO_RELEASE = (*DOMESTIC_LABELS, "NO_DIVULGAR", "NO_COMPARTIR", "NO_DISTRIBUIR", "USO_INTERNO", "USO_OFICIAL",
               "USO_NACIONAL")
# Words of MARKING_WORDS that prose uses too ('paso no autorizado', 'nivel del río', 'por seguridad'), and markings
# that are common words or names (NINGUNO, LES, PII, PUBLICO, partners, countries, gradings): ambiguous, they make a
# value a marking only when it holds nothing else but filler (``_FILLER``).
_COMMON_WORDS = frozenset({"SEGURIDAD", "SECURITY", "CLASS", "LEVEL", "NIVEL", "NIVELES", "REL", "DIF", "EVAL",
                           "CALIF", "RELEASE", "RELEASED", "MANEJO", "HANDLING", "RESTRICCION", "RESTRICCIONES",
                           "RESTRICTION", "RESTRICTIONS", "EVALUACION", "EVALUACIONES", "AUTORIZADO", "AUTORIZADOS",
                           "AUTORIZADA", "AUTORIZADAS", "COMPARTIR", "COMPARTIDO", "COMPARTIDA", "DESTINATARIO",
                           "DESTINATARIOS", "DESTINATARIA", "DESTINATARIAS", "DISTRIBUIR", "ADVERTENCIA",
                           "ADVERTENCIAS", "MARCADO", "ORIGINADOR", "ORIGINADORA"})
_AMBIGUOUS_LEVELS = frozenset({"PUBLICO", "PUBLICA"})  # 'Ministerio Público'


@dataclass(frozen=True)
class MarkingVocabulary:
    """Every marking the policy and an adapter know, in norm_key form, split by what one word of it says.

    For an ignored NAME (``_marking``, at start-up): ``strong`` (a level and every agency's label for it, the
    no-release labels, ORCON and PANAMA_ONLY, handling codes, ``MARKING_WORDS`` but the common ones, also written
    without separators) and ``ambiguous`` (partners and countries, LES, PII, NINGUNO, 'Público', gradings, the common
    marking words): a name holding any of them as words is refused.

    For an ignored VALUE (``reads_as_marking``): ``hard``, the tokens nobody writes in prose (``_HARD``, joined forms
    too), refuse it wherever they stand as a word, and so does REL TO before one of ``places``; ``marks`` (levels and
    agency labels, handling codes, gradings, caveats, no-release labels, ``MARKING_WORDS``) refuse it only when, with
    ``places`` (partners and countries, which alone refuse nothing) and filler, they are all it holds."""

    strong: frozenset[str]
    ambiguous: frozenset[str]
    hard: frozenset[str] = frozenset()
    marks: frozenset[str] = frozenset()
    places: frozenset[str] = frozenset()

    @functools.cached_property
    def entries(self) -> frozenset[str]:
        return self.strong | self.ambiguous

    @functools.cached_property
    def longest(self) -> int:
        """The most words an entry has, for the n-gram look-up."""
        return max((entry.count("_") + 1 for entry in self.entries | self.marks | self.places), default=1)

    @functools.cached_property
    def wholly(self) -> frozenset[str]:
        """What a value wholly a marking may hold besides filler: ``marks`` and ``places``."""
        return self.marks | self.places


NO_MARKINGS = MarkingVocabulary(frozenset(), frozenset())


def marking_vocabulary(ctx: Context, labels: Iterable[str] = ()) -> MarkingVocabulary:
    """Every marking the policy and the adapter know (:class:`MarkingVocabulary`): the classification levels and every
    agency's labels for them ('RESERVADA'), the no-release labels and ``labels`` (the adapter's own), caveats,
    handling codes, gradings ('B2'), and the partners and countries REL TO may name, by code or by Spanish name.
    Built once per run."""
    v = ctx.vocab
    named = v.names | v.countries | v.partners
    levels = {*v.classifications, *(label for profile in ctx.config.agencies.values()
                                    for label in profile.classification_map)}
    forms = {norm_key(mark) for mark in (*levels, *_NO_RELEASE, *labels, *v.caveats, *v.handling_codes)}
    strong = {form for form in forms if form not in _AMBIGUOUS_LEVELS and form != "NINGUNO"
              and (form not in v.caveats or form in ("ORCON", "PANAMA_ONLY"))} | (MARKING_WORDS - _COMMON_WORDS)
    strong |= {form.replace("_", "") for form in strong}  # written without separators: SOLOPANAMA, PANAMAONLY
    ambiguous = {norm_key(mark) for mark in (*named, *(n for n, c in COUNTRY_NAMES.items() if c in named),
                                             *(r + c for r in v.reliability for c in v.credibility))}
    ambiguous |= (forms - strong) | _COMMON_WORDS | {"EE_UU"}  # EE_UU: a key written for EE.UU.
    places = {norm_key(mark) for mark in (*named, *(n for n, c in COUNTRY_NAMES.items() if c in named))}
    places |= {"EE_UU", "EEUU"}  # 'EE.UU.' as a key, and as a value's dotted abbreviation joined
    marks = forms | {norm_key(r + c) for r in v.reliability for c in v.credibility} | MARKING_WORDS | _HARD
    marks |= {form.replace("_", "") for form in marks}
    return MarkingVocabulary(frozenset(filter(None, strong)), frozenset(filter(None, ambiguous - strong)),
                             hard=_HARD | {form.replace("_", "") for form in _HARD},
                             marks=frozenset(filter(None, marks - places)), places=frozenset(filter(None, places)))


# A run of letters, one or two each, each followed by a dot ('U.S.A.', 'EE. UU.'): an abbreviation, read as its
# letters joined (USA, EEUU), so that it is sought as the code or name it abbreviates.
_DOTTED = re.compile(r"(?<![^\W\d_])(?:[^\W\d_]{1,2}\. ?){2,}")


def _tokens(text: str) -> list[str]:
    """The words of ``text`` in norm_key form, uncached (a cell need not repeat, and a cache would keep it): dotted
    abbreviations joined ('EE.UU.' -> EEUU), camelCase split."""
    joined = _DOTTED.sub(lambda m: m.group().replace(".", "").replace(" ", "") + " ", text)
    return [word for word in norm_text(_CAMEL.sub(" ", joined)).split("_") if word]


def _holds(text: str, vocabulary: MarkingVocabulary) -> str | None:
    """The marking of ``vocabulary`` that ``text`` holds as whole words, accents, case, camelCase and dotted
    abbreviations aside (SOLO_PANAMA in 'Solo Panamá', COL in 'REL TO COL', EEUU in 'Solo para EE.UU.'), the longest
    first; None when it holds none."""
    words = _tokens(text)
    found = [entry for entry in _grams(words, vocabulary.longest)
             if entry in vocabulary.entries and entry not in MARKING_WORDS]  # those ``_marking`` says as words
    return max(found, key=lambda m: (len(m), m), default=None)


def _grams(words: list[str], longest: int) -> Iterator[str]:
    for i in range(len(words)):
        for n in range(1, min(longest, len(words) - i) + 1):
            yield "_".join(words[i:i + n])


# Words a marking written out may hold beside its codes ('REL TO COL Y USA', 'Solo PAN', 'No compartir con COL',
# 'Uso exclusivo de Panamá', 'Países: COL, USA', 'X PANAMA_ONLY'): they say nothing alone, and a value of these
# and ambiguous markings only is a marking. A single letter or digit is filler too ('Nivel 3', 'X': ticked).
_FILLER = frozenset({"REL", "TO", "SOLO", "ONLY", "Y", "E", "AND", "O", "OR", "NO", "NOT", "PARA", "CON", "A", "DE",
                     "AL", "EL", "LA", "LOS", "LAS", "FOR", "WITH", "SI", "YES", "SOLAMENTE", "UNICAMENTE",
                     "EXCLUSIVO", "EXCLUSIVA", "EXCLUSIVAMENTE", "EXCLUSIVE", "USO", "USE", "PAIS", "PAISES",
                     "COUNTRY", "COUNTRIES", "COMPARTIBLE", "COMPARTIBLES", "INTERNO", "INTERNA", "ENTRE", "EN",
                     "DEL", "USER", "USERS", "ENVIAR", "TODOS", "ALL"})


# Tokens nobody writes in prose (rule 2 of the module docstring): anywhere in an ignored value, as a word (written with
# separators or joined: SOLOPANAMA, NODIFUNDIR), they refuse it. So does a release phrase, REL TO and a partner or
# country (``_released``).
_HARD = frozenset({"NOFORN", "ORCON", "FOUO", "TLP", "ULTRASECRETO", "ULTRASECRETA", "SOLO_PANAMA", "PANAMA_ONLY",
                   "NO_DIFUNDIR", "NO_DIVULGAR"})
# Letters of Greek and Cyrillic that look Latin, folded to the Latin letter before an ignored value is tokenised:
# 'РАN' in Cyrillic is read as PAN, 'ТLР' as TLP, 'Н2' as H2.
_LOOK_ALIKE = str.maketrans(
    "\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7"  # Greek capitals
    "\u03bf\u03b9\u03ba\u03bd\u03c1\u03c7"  # Greek small letters
    "\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425\u0423"  # Cyrillic capitals
    "\u0430\u0435\u043e\u0440\u0441\u0445\u0443",  # Cyrillic small letters
    "ABEZHIKMNOPTYX" "oikvpx" "ABEKMHOPCTXY" "aeopcxy")
# Characters an ignored value may not hold (named, never the value): control characters (binary junk or a wrong
# encoding; tab and line breaks are a value's spacing), and the bidi overrides and isolates, which could show a person
# a marking the adapter reads otherwise. Other format characters (ZWNJ, RLM, a soft hyphen) are text, and dropped
# before the value is read.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SPACING = frozenset("\t\n\r")


def _plain(text: str) -> str:
    """``text`` as ``reads_as_marking`` reads it: format characters (Cf: zero-width, joiners, soft hyphen, LRM/RLM,
    BOM) removed and Greek and Cyrillic look-alikes folded to Latin (NFKD and accents follow in ``_tokens``)."""
    if not text.isascii():
        text = "".join(c for c in text if unicodedata.category(c) != "Cf").translate(_LOOK_ALIKE)
    return text


def _released(words: list[str], places: frozenset[str], longest: int) -> bool:
    """Whether ``words`` hold REL TO (or RELEASABLE TO) followed by a partner or country of ``places``."""
    for i in range(len(words) - 2):
        if words[i] in ("REL", "RELEASABLE") and words[i + 1] == "TO" and any(
                "_".join(words[i + 2:i + 2 + n]) in places for n in range(1, min(longest, len(words) - i - 2) + 1)):
            return True
    return False


def _reads_as(text: str, vocabulary: MarkingVocabulary) -> bool:
    """Whether ``text`` reads as a marking (the module docstring's rule): (2) it holds a token nobody writes in prose
    as a word, separated or joined ('X NOFORN', 'SOLOPANAMA', 'No divulgar'), or REL TO and a partner or country;
    (3) it is wholly a marking: levels, agency labels, handling codes, gradings, caveats, no-release labels and marking
    words, one at least, with partners, countries and filler only ('Secreto (S)', 'Nivel 3', 'Clasificación:
    secreto', 'H2', 'Uso oficial'). Partners and countries alone ('EE.UU.', 'En Colombia') and prose ('Playa El
    Secreto', 'Bus H2 de traslado') are not. A value is tokenised once; words and n-grams are looked up in sets."""
    words = _tokens(_plain(text))
    if not words:
        return False
    hard, longest = vocabulary.hard, vocabulary.longest
    if not hard.isdisjoint(words) or (len(words) > 1 and (any(g in hard for g in _grams(words, 2))
                                                          or _released(words, vocabulary.places, longest))):
        return True
    wholly, marks = vocabulary.wholly, vocabulary.marks
    found, i = False, 0
    while i < len(words):
        n = next((n for n in range(min(longest, len(words) - i), 0, -1) if "_".join(words[i:i + n]) in wholly), 0)
        if n:
            found, i = found or "_".join(words[i:i + n]) in marks, i + n
        elif words[i] in _FILLER or len(words[i]) == 1:
            i += 1
        else:
            return False
    return found


def _unsafe(value: Any, field: str) -> None:
    """Refuse a string of ``value`` at any depth, its keys too, holding a control character (but tab and line breaks)
    or a bidi override or isolate; the message names ``field``, never the value."""
    if isinstance(value, str):
        if not value.isprintable():
            for char in value:
                if char in _BIDI:
                    raise fail(INVISIBLE, f"{field} contains the bidi control U+{ord(char):04X}, which can reorder "
                                          "how the text shows")
                if unicodedata.category(char) == "Cc" and char not in _SPACING:
                    raise fail(INVALID, f"{field} contains control characters (binary data or a wrong encoding?)")
    elif isinstance(value, dict):
        for key, inner in value.items():
            _unsafe(key, field)
            _unsafe(inner, field)
    elif isinstance(value, list):
        for inner in value:
            _unsafe(inner, field)


def reads_as_marking(value: Any, vocabulary: MarkingVocabulary) -> bool:
    """Whether ``value`` (an ignored cell, or an ignored key's value at any depth, its keys too) reads as a marking of
    ``vocabulary`` (``marking_vocabulary``; ``_reads_as``). Dropped, such a value may have restricted release, and
    the defaults, often wider, would decide it."""
    if isinstance(value, str):
        return _reads_as(value, vocabulary)
    if isinstance(value, dict):
        return any(reads_as_marking(k, vocabulary) or reads_as_marking(v, vocabulary) for k, v in value.items())
    if isinstance(value, list):
        return any(reads_as_marking(v, vocabulary) for v in value)
    return False


def refuse_ignored(value: Any, kind: str, name: str, setting: str, vocabulary: MarkingVocabulary) -> None:
    """Raise AdapterError when the value of the ignored ``kind`` ('column', 'key') ``name`` (as agencies.yaml's
    ``setting`` lists it) holds a control character or a bidi override or isolate (``_unsafe``), or reads as a
    marking; the message names the column or key, never the value."""
    _unsafe(value, f"the ignored {kind} '{name}'")
    if reads_as_marking(value, vocabulary):
        raise ignored_marking(kind, name, setting)


def _refused(value: Any, vocabulary: MarkingVocabulary) -> bool:
    try:
        refuse_ignored(value, "key", "", "ignored_keys", vocabulary)
    except AdapterError:
        return True
    return False


@dataclass(frozen=True)
class Adapter:
    """One agency's adapter: its export reader, the keys its records may hold, and its pure mapping.

    ``keys`` is required of every adapter, so none can forget it: for JSON, the :class:`Keys` the mapping
    reads; None for a format whose reader yields only fields it names itself (a fixed-width layout,
    or a CSV whose header the reader holds against ``columns``, the header names it reads in norm_key form).
    """

    name: str
    agency: str
    title: str
    patterns: tuple[str, ...]  # file names the folder watcher picks up
    read: Reader
    map: Mapper
    keys: Keys | None = field(kw_only=True)
    columns: frozenset[str] | None = field(default=None, kw_only=True)
    marking_columns: frozenset[str] = field(default=frozenset(), kw_only=True)  # of ``columns``: the markings
    marking_labels: frozenset[str] = field(default=frozenset(), kw_only=True)  # its own marking values ('SOLO_PANAMA')


@dataclass(frozen=True, slots=True)
class Result:
    """One record's outcome: the alert and its encoded bytes, or the error that refuses it."""

    item: Item
    alert: dict[str, Any] | None = None
    value: bytes | None = None
    error: AdapterError | None = None


def convert(adapter: Adapter, stream: BinaryIO, ctx: Context) -> Iterator[Result]:
    """Every record of ``stream`` mapped, checked and encoded; bad ones carry their error, none raises.

    Only an OSError reading ``stream`` escapes: that is the file failing, not a record; and, before
    anything is read, a ConfigError when the agency's ``ignored_keys`` or ``ignored_columns`` do not fit
    the adapter (see :func:`check_ignored`).
    """
    check_ignored(adapter, ctx)
    keys = adapter.keys.tolerating(ctx.profile.ignored_keys) if adapter.keys is not None else None
    vocabulary = marking_vocabulary(ctx, adapter.marking_labels) if ctx.profile.ignored_keys else NO_MARKINGS
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
        yield _map(adapter, item, ctx, codec, keys, vocabulary)


def _map(adapter: Adapter, item: Item, ctx: Context, codec: Any, keys: Keys | None,
         vocabulary: MarkingVocabulary) -> Result:
    try:
        if keys is not None:
            check_keys(item.parsed, keys, vocabulary)
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
    """Codes from a list or a text such as 'REL TO COL, USA'; None when the record is silent.

    Empty text is silent too. A text of blanks only is refused as blank (``given``): it says neither, and taken as
    silent it would widen a release a lost value may have narrowed, taken as "none" it would drop the agency's
    default caveats. Only an empty list says "none"."""
    if not given(value, field):
        return None
    if isinstance(value, str):
        # A control or format character is no separator (a unit separator read as one named a partner): junk, or a
        # wrong encoding. Spaces of every kind, and the line breaks and tabs of a list typed on several lines, are.
        if not value.isprintable() and any(unicodedata.category(c) in ("Cc", "Cf") and c not in "\t\n\r"
                                           for c in value):
            raise fail(INVALID, f"{field} contains control characters (binary data or a wrong encoding?)")
        value = re.sub(r"^\s*REL(EASABLE)?\s+TO\s*:?", "", value, flags=re.IGNORECASE)
        value = [v for v in re.split(r"[,;/\s]+", value) if v]
        if not value:  # 'REL TO' or ',' alone names no one, and says neither "none" nor the default
            raise fail(MISSING_FIELD, f"{field} names no code (only 'REL TO' or separators): give the codes, or "
                                      "leave it out for the default")
    if not isinstance(value, list):
        raise fail(INVALID, f"{field} must be a list of codes")
    # a refused entry is never quoted (see adapters._fields), so the message says which one it is
    return [code(v, field if len(value) == 1 else f"{field} (entry {i} of {len(value)})", known) or ""
            for i, v in enumerate(value, 1)]


# The markings a later version must state (``markings``'s ``later``): each one's default could be wider than
# what an earlier version set. A consent left out is none, and a handling text is stated with H3 or not at all.
STATED_LATER = ("classification", "releasable_to", "caveats", "handling_code", "grading")
# Every marking a record may state (``markings``'s ``over``, but the originator its adapter sets); those a list holds.
MARKING_FIELDS = ("classification", "releasable_to", "caveats", "handling_code", "handling_text", "originator_consent",
                  "grading")
_LIST_MARKINGS = ("releasable_to", "caveats", "originator_consent")


def _blank_advice(name: str, later: str | None, cells: bool) -> str:
    """What a record with the marking ``name`` blank should say instead: a CSV row can leave its cell empty only (no
    cell says "none"); a later version takes no default (those of ``STATED_LATER`` it must state are refused before,
    as not stated: what is left here, a handling text or a consent, left out is none)."""
    listed = name in _LIST_MARKINGS
    if later is not None:
        return "leave it out (or null) for none"
    if cells:
        return "leave its cell empty for the agency's default"
    return "leave it out (or null) for the agency's default" + (", or give [] for none" if listed else "")


def markings(ctx: Context, over: Mapping[str, Any], unit: str | None = None, *, later: str | None = None,
             labels: Mapping[str, str] | None = None, cells: bool = False) -> dict[str, Any]:
    """The alert's markings: the agency's defaults, replaced field by field by what the record carries.

    ``over`` may hold classification, releasable_to, caveats, handling_code, handling_text,
    originator_consent, grading ('B2'), originator_agency; absent or None keeps the default. Any of
    ``MARKING_FIELDS`` stated as empty or blank text is refused as blank, never taken for absent, named as ``labels``
    names it, with advice for the record's form (``cells``: a CSV row, whose empty cell is absent) and version.
    Every code is checked against the policy vocabulary, so a typo is refused here with its
    reason instead of withholding the alert from every partner downstream. A handling text the
    record states is refused unless the code is H3, the one code that carries one (as
    ``lifecycle`` refuses it on a reclassification): the restriction must not be dropped.

    The defaults are for a first version only. ``later`` ('revision 2') says the record is a later version
    (other than a recall, whose markings the broker ignores): it must state each of ``STATED_LATER`` (``[]``
    for none), or is refused as ``missing-field`` naming them as ``labels`` does ('restricciones.difusion').
    A default there would replace what an earlier version set, often with something wider: a SECRETO alert
    released to no one, corrected by a revision that left its block out, went to every default partner.
    """
    if later is not None:
        missing = [name for name in STATED_LATER
                   if over.get(name) is None or (isinstance(over[name], str) and not over[name].strip())]
        if missing:
            named = ", ".join((labels or {}).get(name, name) for name in missing)
            raise fail(MISSING_FIELD, f"{later} does not state {named}: a later version must state its markings "
                                      "([] for none); the agency's defaults are for a first version only")
    for name in MARKING_FIELDS:
        stated = over.get(name)
        if isinstance(stated, str) and not stated.strip():
            # Empty or blank is not the default, which may be wider than what the lost value said (a SECRETO
            # taken for the agency's CONFIDENCIAL, an H2 for H0), nor "none" (which would drop the default caveats):
            # the record must say which. Only a marking left out, or null, takes the default.
            raise fail(MISSING_FIELD, f"{(labels or {}).get(name, name)} is blank: {_blank_advice(name, later, cells)}")
    d, v, limits = ctx.profile.markings, ctx.vocab, ctx.limits
    cls = d.classification
    if over.get("classification") is not None:
        table = ctx.profile.classification_map or {c: c for c in v.classifications}
        cls = code(over["classification"], "classification", table) or cls
    rel = names(over.get("releasable_to"), "releasable_to", v.names)
    caveats = names(over.get("caveats"), "caveats", v.caveats)
    consent = names(over.get("originator_consent"), "originator_consent", v.partners)
    handling = code(over.get("handling_code"), "handling code", v.handling_codes, required=False) or d.handling_code
    stated = text(over.get("handling_text"), "handling text", limits.handling_text)
    if stated and handling != "H3":  # dropped, the restriction it states would not travel: a wider use
        raise fail(INVALID, f"the record states a handling text but its handling code is {handling}: only H3 "
                            "carries a restriction in text; mark it H3, or leave the text empty")
    handling_text = stated or (None if later else d.handling_text)
    if handling == "H3" and not handling_text:
        raise fail(MISSING_FIELD, "handling code H3 needs its restriction stated in the handling text")
    grading = (text(over.get("grading"), "grading", 4) or d.grading).upper()
    if len(grading) != 2 or grading[0] not in v.reliability or grading[1] not in v.credibility:
        raise fail(UNKNOWN_CODE, "grading is not a reliability A-F and a credibility 1-6")
    return {
        "classification": cls,
        "releasable_to": list(dict.fromkeys(d.releasable_to if rel is None else rel)),
        "caveats": list(dict.fromkeys(d.caveats if caveats is None else caveats)),
        "handling_code": handling,
        "handling_text": handling_text if handling == "H3" else None,
        "originator_consent": list(dict.fromkeys((() if later else d.originator_consent) if consent is None
                                                 else consent)),
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
    if (too_much := bounds_problem(alert)) is not None:
        # What the broker refuses unread (``schemas.bounds``): refused here, with the file and line, rather than
        # published and dead-lettered there. The text bounds are these limits' own; this holds the arrays and the
        # alert's text in all.
        raise fail(TOO_LONG, too_much)
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
    if version >= MAX_REVISION and action != "RECALL":  # the broker keeps the last version for a recall
        raise fail(INVALID, f"versions count to {MAX_REVISION - 1:,}; {MAX_REVISION:,} is kept for a recall")
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
    ``version`` and ``lifecycle`` are set by formats that carry later versions of a record.

    A summary longer than the agency's ``limits.summary`` is refused, never cut, as every other text is: the
    summaries adapters write hold the record's own words and numbers, and a cut one passes as whole ('Flujo
    migratorio de 15' for 1534 people). In practice only a limit lowered in agencies.yaml is met (a place is at most
    120 characters, and the longest summary an adapter writes around one fits in the shipped 200), so the message
    says which setting to raise.
    """
    if summary and len(summary) > ctx.limits.summary:  # not quoted: it holds the record's places and numbers
        raise fail(TOO_LONG, f"the alert's summary has {len(summary):,} characters; limits.summary in agencies.yaml "
                             f"allows {ctx.limits.summary:,}: a summary is refused, never cut (a cut number changes "
                             "its meaning); raise the limit")
    return {
        "alert_id": alert_id,
        "alert_type": alert_type,
        "agency": ctx.agency,
        "occurred_at": occurred_at.astimezone(UTC),
        "reported_at": (reported_at or occurred_at).astimezone(UTC),
        "source_timezone": ctx.profile.timezone,
        "location": location,
        "markings": markings,
        "summary": summary or None,
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


def either(doc: Mapping[str, Any], field: str, *keys: str) -> Any:
    """The value under whichever of ``keys`` (alternative names of one field) the record fills; None if none.

    Two of them filled is refused as a duplicate key rather than one picked: as with a JSON key
    given twice, which one the agency meant cannot be known. One of blanks only is refused as blank (``given``),
    never taken as unfilled.
    """
    where = field.rpartition(".")[0]  # 'tripulacion[0]' of 'tripulacion[0].apellidos', to name a blank one
    filled = [k for k in keys if given(doc.get(k), f"{where}.{k}" if where else k)]  # blanks only are refused
    if len(filled) > 1:
        raise fail(DUPLICATE_KEY, f"{field} is given twice, as {key_name(filled[0])} and {key_name(filled[1])}; "
                                  "give one of them")
    return doc[filled[0]] if filled else None


def lookup(table: Mapping[str, str], value: Any, field: str, *, required: bool = True) -> str | None:
    """A code from an agency's own label table (keys in norm_key form)."""
    return code(value, field, table, required=required)


_TYPED_ORDINAL = "\N{DEGREE SIGN}"  # typed for the ordinal in 'N° Informe': a name's sign, not another script's


def plain_name(value: str, field: str) -> None:
    """Refuse ``value``, a name matched by its lookup form (``norm_key``: a header, an ignored column or key), when it
    holds a letter, a digit or a sign of another script beside its words: the form would fold it away ('Difusión —
    Иван' read as Difusión, 'Fecha ✓' as Fecha). The guard every code passes (``code``), word by word so that no
    length bounds the name (a word of more than 80 characters is refused as too long: no name holds one); each word
    is looked up in a table of its own form, so only the guard and ``text``'s checks can refuse it. The message names
    ``field``, never the value. One sign is allowed besides the guard's punctuation: the degree sign, which Spanish
    headers type for the ordinal in 'N° Informe' (a keyboard's nearest key to 'Nº')."""
    for word in value.replace(_TYPED_ORDINAL, " ").split():
        try:
            code(word, field, (norm_key(word),))
        except AdapterError as exc:
            if exc.reason != UNKNOWN_CODE:
                raise
            raise fail(UNKNOWN_CODE, f"{field} holds letters, digits or signs no name has beside its words: write "
                                     "the name alone") from None


__all__ = [
    "DOMESTIC_LABELS",
    "LIFECYCLE_ACTIONS",
    "MAX_FUTURE_SKEW",
    "MAX_REVISION",
    "RECALL_REASONS",
    "Adapter",
    "ByKind",
    "Each",
    "Item",
    "Keys",
    "MarkingVocabulary",
    "Result",
    "alert",
    "alert_id",
    "check_ignored",
    "check_keys",
    "check_lifecycle",
    "convert",
    "either",
    "finish",
    "ignored_marking",
    "lifecycle",
    "location",
    "lookup",
    "marking_vocabulary",
    "markings",
    "names",
    "norm_key",
    "obj",
    "plain_name",
    "reads_as_marking",
    "refuse_ignored",
    "revision",
    "seq",
]
