"""Cross-checks of the policy files against each other and against the alert schema.

Every finding here makes the policy unusable: loading refuses it, and
``puente policy lint`` lists it. A name that refers to nothing (a level not
on the scale, an unknown partner, a field the schema lacks) would otherwise
quietly decide differently from what its author meant; so would a field
rule that never applies, or two agreements in force together for one
partner's alert type. Such a policy is refused, never interpreted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from itertools import combinations

from policies._countries import ISO_ALPHA3
from policies._fields import ENVELOPE_FIELDS, FieldInfo, parent_path
from policies._model import Action, Agreement, Cover, Envelope, FieldRule, PartnersFile, When
from policies._plan import ancestors, plan_fields, shadowed
from policies._source import AREAS, VOCABULARY, Doc, PolicySources

# Each released alert schema's field paths per alert type, by release label: what ``reviewed_schema``
# may name, and what a ``keep`` on a record keeps (``plan_fields``).
Releases = Mapping[str, Mapping[str, Collection[str]]]

# What a partner cannot honour an alert without: which alert it is (for corrections and recalls),
# how to protect it, whom it may go to, how to handle it and when to delete it. The envelope rule
# (vocabulary.yaml) may keep more, never less: this minimum is code, not policy.
ENVELOPE_MINIMUM = (
    "alert_id", "alert_type", "markings.classification", "markings.releasable_to", "markings.caveats",
    "markings.handling_code", "markings.handling_text", "markings.expires_at", "version", "lifecycle.action",
)  # fmt: skip

# Rule ids with a dot are the policy's own: its checks and notices (caveat.ORCON, originator.foreign,
# partner.clearance) and those derived from an agreement's rules (<rule>.<condition>, <agreement>.validity).
# A decision lists them beside the agreements' rule ids, and a view takes the agreement rules it applies
# from that list: a cover rule id with a dot could be taken for one of them, or one of them for it.


def protected(envelope: Envelope) -> frozenset[str]:
    """The fields an agreement may only keep: what the envelope keeps and every field that holds one.

    The markings travel with the data: a view may not change what restricts the partner in turn.
    """
    return frozenset({*envelope.keep, *(a for path in envelope.keep for a in ancestors(path))})


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in the policy files: where, what kind, and what is wrong."""

    where: str  # file:line
    kind: str  # invalid, schema-field, area, expired, recall, overlap, keys, shadowed, review
    message: str

    def __str__(self) -> str:
        return f"{self.where}: [{self.kind}] {self.message}"


def feed_suffix(topic: str) -> str | None:
    """What sets a partner's feed topic apart from every other: ``S`` in ``<prefix>.feed.S``, or None
    when ``topic`` names no feed.

    A deployment puts the feed under its own topic prefix (``broker.topology.TopicNames.feed`` swaps
    the first component), so ``puente.feed.COL`` and ``x.feed.COL`` are one topic, and a name whose
    second component is not ``feed`` (``x.receipts.USA``, ``puente.audit.decisions``) would be
    another of Puente's topics, one the partner would then be given the right to read.
    """
    head, _, rest = topic.partition(".")
    kind, _, suffix = rest.partition(".")
    if not head or kind != "feed" or not suffix or "" in suffix.split("."):
        return None
    return suffix


def _check_feeds(doc: Doc[PartnersFile]) -> Iterator[Finding]:
    """Each partner's feed topic names its own feed, ``<prefix>.feed.<its id>``, and no other partner's. Its own
    by name, not merely one no partner named now holds: a feed topic outlives the partner it was made for, with
    that partner's records and its subscriber group's offsets (``<feed>.subscriber``), and a partner given a
    former partner's topic would be granted both. Ids that Kafka would take for one are refused with the
    partners; two feeds it would take for one still are, here."""
    taken: dict[str, tuple[str, str]] = {}  # a suffix as Kafka compares names -> (partner, its suffix)
    for i, p in enumerate(doc.model.partners):
        where = doc.where("partners", i, "feed_topic")
        suffix = feed_suffix(p.feed_topic)
        if suffix is None:
            yield Finding(where, "invalid",
                          f"{p.id}: feed topic {p.feed_topic} names no feed: give it as <prefix>.feed.<suffix> "
                          f"(e.g. puente.feed.{p.id}); the prefix is the deployment's own")
            continue
        if suffix != p.id:
            yield Finding(where, "invalid",
                          f"{p.id}: feed topic {p.feed_topic} is not {p.id}'s own feed: give it as "
                          f"<prefix>.feed.{p.id} (a feed named otherwise may be a former partner's, whose records "
                          f"and subscriber group {p.id} would take over)")
            continue
        # Kafka refuses a topic whose name differs from another's only by '.' against '_'.
        key = suffix.replace(".", "_")
        other, its = taken.setdefault(key, (p.id, suffix))
        if other != p.id:
            same = "is the same Kafka topic as" if its == suffix else "collides in Kafka ('.' and '_' alike) with"
            yield Finding(where, "invalid",
                          f"{p.id}: feed topic {p.feed_topic} {same} {other}'s (<prefix>.feed.{its}): two partners "
                          f"would share one feed; give {p.id} a feed of its own")


# The vocabulary's codes are read by people (on a marking, in an agreement) and matched by the code exactly:
# two codes a reader takes for one would mean two things to the policy. "orcon" beside ORCON (effect none)
# would release what ORCON withholds, a second "secreto" low on the scale what SECRETO protects. So a code
# is written in capitals, digits and '_', as markings carry them, and is unique in its name space whatever
# its case, separators ('_', '-', '.') or look-alike characters (0 and O, 1, I and l).
VOCABULARY_CODE = re.compile(r"[A-Z0-9]+(?:_[A-Z0-9]+)*")
_LOOKALIKES = str.maketrans({"0": "O", "1": "I", "-": None, ".": None, "_": None})


def code_key(code: str) -> str:
    """What tells ``code`` apart from another code as a reader sees it: ``Orcon``, ``0RCON``, ``ORCON``, ``OR_CON``
    and ``OR-CON`` are one, and so are ``N1C`` and ``NIC``. Separators are dropped, not made one. A lower-case
    ``l`` is read as the L it is (``col`` is COL): mapped to I as well, ``ALA`` (Åland) and ``AIA`` (Anguilla)
    would be one, and an ``l`` that stands for an I is refused anyway where codes must be capitals."""
    return code.translate(_LOOKALIKES).casefold()


def _check_codes(src: PolicySources) -> Iterator[Finding]:
    """Every vocabulary code is a capitals identifier, unique in its name space under ``code_key``."""
    doc, vocab = src.vocabulary, src.vocabulary.model
    # (name space, what a message calls a code, [(code, location in the file)])
    spaces: list[tuple[str, str, list[tuple[str, tuple[str | int, ...]]]]] = [
        ("classification", "level", [(c, ("classification", "scale", i))
                                     for i, c in enumerate(vocab.classification.scale)]),
        # One name space: a marking's caveats and handling code sit side by side, and both name their
        # checks by code (caveat.H2 and handling.H2 would read as one restriction).
        ("caveats and handling codes", "code", [*((c, ("caveats", c)) for c in vocab.caveats),
                                                *((c, ("handling_codes", c)) for c in vocab.handling_codes)]),
        ("reliability grades", "grade", [(c, ("grading", "reliability", i))
                                         for i, c in enumerate(vocab.grading.reliability)]),
        ("credibility grades", "grade", [(c, ("grading", "credibility", i))
                                         for i, c in enumerate(vocab.grading.credibility)]),
        ("home", "country", [(vocab.home.country, ("home", "country"))]),
    ]
    for space, noun, codes in spaces:
        seen: dict[str, tuple[int, str]] = {}
        for i, (code, loc) in enumerate(codes):
            where = doc.where(*loc)
            if not VOCABULARY_CODE.fullmatch(code):
                fixed = code.upper()
                hint = f" ({fixed})" if VOCABULARY_CODE.fullmatch(fixed) else ""
                yield Finding(where, "invalid", f"{space}: {noun} {code} must be written in capitals, digits and "
                                                f"'_'{hint}, as markings carry it")
            j, other = seen.setdefault(code_key(code), (i, code))
            if j != i:
                yield Finding(where, "invalid",
                              f"{space}: {noun} {code} and {noun} {other} differ only in case, separators or "
                              f"look-alike characters (0/O, 1/I): a reader takes them for one {noun}, the policy "
                              f"for two; keep one and remove or rename the other")


def _check_vocabulary_and_partners(src: PolicySources) -> Iterator[Finding]:
    yield from _check_codes(src)
    vocab, doc = src.vocabulary.model, src.partners
    scale = set(vocab.classification.scale)
    # Ids are told apart as a person reads them: "usa" and "USA" are one name, whatever the case; and as Kafka
    # does, since an id names the partner's receipts topic: "CO.L" and "CO_L" would be one topic to it.
    for name, count in Counter(p.id.casefold().replace(".", "_") for p in doc.model.partners).items():
        if count > 1:
            yield Finding(doc.where("partners"), "invalid", f"partner id {name} appears {count} times "
                                                            "(ids differing only in case, or in '.' against '_', "
                                                            "are one id)")
    # ... and as a reader tells them apart on a marking: "C0L" (a zero) beside COL would be two partners to the
    # policy and one to whoever writes "REL TO C0L".
    looks: dict[str, tuple[str, str]] = {}  # code_key -> (the key above, the id)
    for i, p in enumerate(doc.model.partners):
        exact = p.id.casefold().replace(".", "_")
        other_exact, other = looks.setdefault(code_key(p.id), (exact, p.id))
        if other_exact != exact:  # (the same key above is reported above)
            yield Finding(doc.where("partners", i, "id"), "invalid",
                          f"partner id {p.id} and partner id {other} differ only in look-alike characters (0/O, "
                          "1/I) or separators: markings naming one would be read as naming the other; rename one")
    yield from _check_feeds(doc)
    # Markings name a partner by its id or its country (releasable_to, consent): the two name spaces
    # meet, so an id must never be another country's code, in any case, or "REL TO COL" (an agency's
    # "col") would reach it.
    countries = {code_key(c) for c in {p.country for p in doc.model.partners} | {vocab.home.country} | ISO_ALPHA3}
    for i, p in enumerate(doc.model.partners):
        if p.id != p.country and code_key(p.id) in countries:  # N1C is NIC to a reader
            yield Finding(doc.where("partners", i, "id"), "invalid",
                          f"partner id {p.id} is a country code but {p.id}'s country is {p.country}: markings naming "
                          f"{p.id} would reach it; use {p.country} or an id that is no country code (nor reads as one)")
        if p.country != p.country.upper():
            yield Finding(doc.where("partners", i, "country"), "invalid",
                          f"{p.id}: country {p.country} must be written in capitals, as markings name it (ISO 3166)")
    # A watchlist clause (``or_own_list``) releases hits on the lists a partner keeps itself: one list, one keeper,
    # or a partner naming another's list would receive what that list's hits are withheld from it for.
    # A list is a partner's own only when the vocabulary names it (``owners.lists``) with the partner's country as
    # its keeper: an allow-list, so a list named as INTERPOL's, Panama's or another country's, or one no list table
    # names, is no partner's own. Never the home country's (the keeper every hit's list_owner defaults to), so an
    # internal partner keeps none.
    list_keepers: dict[str, set[str]] = {}
    for lists in vocab.owners.lists.values():
        for name, keeper in lists.keepers.items():
            list_keepers.setdefault(name, set()).add(keeper)
    keepers: dict[str, str] = {}
    for i, p in enumerate(doc.model.partners):
        if p.kind == "internal" and p.watchlists:
            yield Finding(doc.where("partners", i, "watchlists"), "invalid",
                          f"{p.id}: an internal partner keeps no watchlist of its own: its country, "
                          f"{vocab.home.country}, keeps every list a hit names no other keeper of, so an own-list "
                          "clause would release every hit on them; remove its watchlists")
        for j, name in enumerate(p.watchlists):
            kept_by = sorted(list_keepers.get(name, ()))
            if p.kind != "internal" and kept_by != [p.country]:
                yield Finding(doc.where("partners", i, "watchlists", j), "invalid",
                              f"{p.id}: watchlist {name} is "
                              + (f"kept by {', '.join(kept_by)}, not by {p.country}" if kept_by else
                                 "named by no list table of the vocabulary (owners.lists)")
                              + "; a partner's own lists are those the vocabulary names as kept by its country")
            other = keepers.setdefault(name.casefold(), p.id)
            if other != p.id:
                yield Finding(doc.where("partners", i, "watchlists", j), "invalid",
                              f"{p.id}: watchlist {name} is {other}'s too; a list has one keeper, whose hits its "
                              "own-list clause releases")
        if p.clearance not in scale:
            where = doc.where("partners", i, "clearance")
            yield Finding(where, "invalid", f"{p.id}: clearance {p.clearance} is not on the scale")
        if p.id == vocab.home.country:
            yield Finding(doc.where("partners", i, "id"), "invalid", f"{p.id} is the home country, not a partner")
        if (p.kind == "internal") != (p.country == vocab.home.country):
            yield Finding(
                doc.where("partners", i, "kind"), "invalid",
                f"{p.id}: {p.kind} partners must have country {'' if p.kind == 'internal' else 'other than '}"
                f"{vocab.home.country}",
            )  # fmt: skip


def _check_when(doc: Doc[Agreement], i: int, cover: Cover, fields: Mapping[str, FieldInfo]) -> Iterator[Finding]:
    wanted: dict[str, tuple[str, str]] = {
        "event_types": ("BORDER_EVENT", "payload.event_type"),
        "watchlist": ("WATCHLIST_HIT", "payload.risk_level"),
        "categories": ("SEIZURE", "payload.items[].category"),
    }
    when: When = cover.when
    for name, (alert_type, path) in wanted.items():
        value = getattr(when, name)
        if value is None:
            continue
        where = doc.where("covers", i, "when", name)
        if cover.alert_type != alert_type:
            yield Finding(where, "invalid", f"{cover.rule}: condition {name} applies to {alert_type} alerts only")
            continue
        given = value.risk_levels if name == "watchlist" else value
        unknown = sorted(set(given) - set(fields[path].symbols))
        if unknown:
            yield Finding(where, "invalid", f"{cover.rule}: {', '.join(unknown)} not in the schema's {path} values")


GRID_FIELDS = frozenset({"location.latitude", "location.longitude"})
"""The numbers ``generalise`` rounds to a grid: positions, in degrees, no finer than ``MIN_GRID``."""


def rule_problem(info: FieldInfo, rule: FieldRule, envelope: Envelope) -> str | None:
    """Why a field rule cannot apply to a field of this kind, or None when it can."""
    action, path = rule.action, info.path
    if action is Action.KEEP:
        return None
    if path in protected(envelope):
        return (
            f"{path} is kept for every partner by the envelope rule {envelope.rule} ({VOCABULARY}): "
            "markings travel with the data, so it may only be kept"
        )
    if action is Action.DROP and not info.droppable:
        what = "a record" if info.kind == "record" else "an enum without a default"
        return f"{path} is required by the schema and {what}: it has no empty value and cannot be dropped"
    if action in (Action.MASK, Action.PSEUDONYMISE) and not info.textual:
        return f"{path} holds {info.kind} values; only text can be {action.past}"
    if action is Action.GENERALISE:
        if info.kind in ("double", "float"):
            if path not in GRID_FIELDS:
                # A grid is in degrees, and MIN_GRID is set for a position: on a score or a quantity the same
                # floor can hand over the value exactly while the audit says it was coarsened.
                return (f"{path}: only a coordinate ({', '.join(sorted(GRID_FIELDS))}) is generalised to a grid "
                        "(degrees); keep or drop this field")
            return "a coordinate is generalised with grid, not to" if rule.to else None
        if info.kind == "date":
            if rule.grid is not None or rule.to not in (None, "year"):
                return f"{path} is a date: it generalises to its year only"
            if not path.endswith(".date_of_birth"):
                return f"{path}: only a date_of_birth generalises (to birth_year)"
            return None
        if info.kind == "timestamp":
            if rule.grid is not None or rule.to == "year":
                return "a timestamp generalises to the hour or the day, not to a grid"
            return None
        return f"{path} holds {info.kind} values, which cannot be generalised"
    return None


def _check_cover(
    doc: Doc[Agreement], i: int, cover: Cover, fields: Mapping[str, FieldInfo], envelope: Envelope,
    reviewed: Collection[str] | None,
) -> Iterator[Finding]:
    yield from _check_when(doc, i, cover, fields)
    if cover.others == "keep":
        yield Finding(
            doc.where("covers", i, "others"), "invalid",
            f"{cover.rule}: others: keep would share every field no rule names, including fields added "
            "to the schema later; name the fields or subtrees to keep instead (e.g. payload: keep)",
        )  # fmt: skip
    sound = True
    for path, rule in cover.fields.items():
        where = doc.where("covers", i, "fields", path)
        info = fields.get(path)
        if info is None:
            sound = False
            yield Finding(where, "schema-field", f"{cover.rule}: the {cover.alert_type} schema has no field {path}")
            continue
        problem = rule_problem(info, rule, envelope)
        if problem is not None:
            sound = False
            yield Finding(where, "invalid", f"{cover.rule}: {problem}")
        elif rule.action is Action.GENERALISE and info.kind == "date":
            year = path.rsplit(".", 1)[0] + ".birth_year"
            if year in fields and not _keeps(cover, year):
                yield Finding(where, "invalid", f"{cover.rule}: {path} generalises to {year}; name {year}: keep")
    # A rule under a field another rule drops (or otherwise changes) is one a reader takes to apply, and the
    # view never does: which of the two the author meant is theirs to say.
    for path, ancestor in shadowed(cover):
        yield Finding(doc.where("covers", i, "fields", path), "shadowed",
                      f"{cover.rule}: {path} never applies: {ancestor} is {cover.fields[ancestor].action.past}; "
                      "remove one of the two")
    if sound:
        yield from _check_unnamed(doc, i, cover, fields, envelope, reviewed)


def _keeps(cover: Cover, path: str) -> bool:
    """Whether the rule keeps ``path``: the nearest rule on it or on a field holding it is keep."""
    for name in (path, *ancestors(path)):
        rule = cover.fields.get(name)
        if rule is not None:
            return rule.action is Action.KEEP
    return False


def _check_unnamed(
    doc: Doc[Agreement], i: int, cover: Cover, fields: Mapping[str, FieldInfo], envelope: Envelope,
    reviewed: Collection[str] | None,
) -> Iterator[Finding]:
    """Every field no rule names is dropped; a required one without an empty value must be named."""
    for planned in plan_fields(fields, cover, envelope.keep, reviewed):
        info = fields[planned.path]
        if not planned.named and not info.droppable and planned.unreviewed:
            yield Finding(
                doc.where("covers", i, "rule"), "invalid",
                f"{cover.rule}: the {cover.alert_type} schema requires {planned.path}, which is newer than the "
                "release the policy was reviewed against and has no empty value a view could drop it to; "
                "review it and name it in the rule's fields, or name a later reviewed_schema",
            )  # fmt: skip
        elif not planned.named and not info.droppable:
            yield Finding(
                doc.where("covers", i, "rule"), "invalid",
                f"{cover.rule}: the {cover.alert_type} schema requires {planned.path}, which has no empty "
                "value a view could drop it to; name it in the rule's fields (e.g. keep it)",
            )  # fmt: skip


def _check_envelope(src: PolicySources, fields: Mapping[str, Mapping[str, FieldInfo]]) -> Iterator[Finding]:
    doc = src.vocabulary
    envelope = doc.model.envelope
    for name, count in Counter(envelope.keep).items():
        if count > 1:
            yield Finding(doc.where("envelope", "keep"), "invalid", f"envelope: {name} is listed {count} times")
    for i, path in enumerate(envelope.keep):
        where = doc.where("envelope", "keep", i)
        infos = [f.get(path) for f in fields.values()]
        if any(info is None for info in infos):
            yield Finding(where, "schema-field", f"envelope: the alert schema has no field {path} in every alert type")
        elif any(info is not None and info.kind == "record" for info in infos):
            yield Finding(where, "invalid", f"envelope: {path} is a record; name its fields one by one, so that a "
                                            "field added to it later is not shared with every partner")  # fmt: skip
        elif path not in ENVELOPE_FIELDS:
            yield Finding(where, "invalid", f"envelope: {path} is not a marking every partner needs (the envelope may "
                                            "keep the alert's id, type and version, its markings but the "
                                            "originator's unit, and its lifecycle); name it in the agreements that "
                                            "share it")  # fmt: skip
    missing = [path for path in ENVELOPE_MINIMUM if path not in envelope.keep]
    if missing:
        yield Finding(
            doc.where("envelope", "keep"), "invalid",
            f"envelope {envelope.rule} leaves out {', '.join(missing)}: a partner cannot honour an alert without them",
        )  # fmt: skip
    for agreement in src.agreements:
        for i, cover in enumerate(agreement.model.covers):
            if cover.rule == envelope.rule:
                where = agreement.where("covers", i, "rule")
                yield Finding(where, "invalid", f"rule id {cover.rule} is the envelope rule's ({VOCABULARY})")


def _one_code(table: Mapping[str, FieldInfo], path: str) -> bool:
    """Whether ``path`` holds one code in every alert of its type: a string or an enum, in no list, neither it nor
    any record above it nullable (a null owner or list would name no one to ask, and read as none to ask)."""
    info = table.get(path)
    if info is None or info.kind not in ("string", "enum") or "[]" in path:
        return False
    at: str | None = path
    while at is not None:
        field = table.get(at)
        if field is None or field.nullable:
            return False
        at = parent_path(at)
    return True


def _check_owners(src: PolicySources, fields: Mapping[str, Mapping[str, FieldInfo]]) -> Iterator[Finding]:
    """Each owner field, and each field naming a list, is one code of its alert type (a single string or enum, in no
    list); each list and its keeper are written as alerts carry them; each open keeper is no country (a country's
    information goes to a third country only with its consent) and written as markings carry it."""
    doc, vocab = src.vocabulary, src.vocabulary.model
    for alert_type, paths in vocab.owners.fields.items():
        table = fields.get(alert_type)
        if table is None:
            yield Finding(doc.where("owners", "fields", alert_type), "invalid",
                          f"owners: alert type {alert_type} is not one of the alert schema's ({', '.join(fields)})")
            continue
        for i, path in enumerate(paths):
            if not _one_code(table, path):
                yield Finding(doc.where("owners", "fields", alert_type, i), "invalid",
                              f"owners: {alert_type} has no field {path} holding one code (a string or an enum "
                              "outside any list, never null, nor under a nullable record) to name an owner")
    for alert_type, lists in vocab.owners.lists.items():
        table = fields.get(alert_type)
        if table is None:
            yield Finding(doc.where("owners", "lists", alert_type), "invalid",
                          f"owners: alert type {alert_type} is not one of the alert schema's ({', '.join(fields)})")
            continue
        if not _one_code(table, lists.field):
            yield Finding(doc.where("owners", "lists", alert_type, "field"), "invalid",
                          f"owners: {alert_type} has no field {lists.field} holding one code (a string or an enum "
                          "outside any list, never null, nor under a nullable record) to name a list")
        for name, keeper in lists.keepers.items():
            # A keeper the policy does not know is allowed: its lists' hits withhold, as an unknown list's do.
            for what, code in (("list", name), ("keeper", keeper)):
                if not VOCABULARY_CODE.fullmatch(code):
                    yield Finding(doc.where("owners", "lists", alert_type, "keepers", name), "invalid",
                                  f"owners: {what} {code} must be written in capitals, digits and '_', as alerts "
                                  "carry it")
    countries = {vocab.home.country, *(p.country for p in src.partners.model.partners), *ISO_ALPHA3}
    for i, keeper in enumerate(vocab.owners.open_keepers):
        where = doc.where("owners", "open_keepers", i)
        if not VOCABULARY_CODE.fullmatch(keeper):
            yield Finding(where, "invalid", f"owners: open keeper {keeper} must be written in capitals, digits and "
                                            "'_', as alerts carry it")
        elif code_key(keeper) in {code_key(c) for c in countries}:
            yield Finding(where, "invalid", f"owners: open keeper {keeper} is a country code: a country's "
                                            "information goes to a third country only with its consent")


def _check_agreement(
    src: PolicySources, doc: Doc[Agreement], fields: Mapping[str, Mapping[str, FieldInfo]],
    reviewed: Mapping[str, Collection[str]] | None,
) -> Iterator[Finding]:
    vocab, a = src.vocabulary.model, doc.model
    partner_ids = {p.id for p in src.partners.model.partners}
    home = vocab.home.country
    strangers = [p for p in a.parties if p != home and p not in partner_ids]
    if strangers:
        yield Finding(doc.where("parties"), "invalid", f"{a.id}: parties {', '.join(strangers)} are not partners")
    if home not in a.parties or not set(a.parties) & partner_ids:
        yield Finding(doc.where("parties"), "invalid", f"{a.id}: parties must be {home} and at least one partner")
    repeated = sorted(p for p, n in Counter(a.parties).items() if n > 1)
    if repeated:  # each rule would apply once per listing: a pseudonym of a pseudonym, redactions twice
        yield Finding(doc.where("parties"), "invalid", f"{a.id}: parties {', '.join(repeated)} listed more than once")
    if a.max_classification not in vocab.classification.scale:
        yield Finding(doc.where("max_classification"), "invalid", f"{a.id}: {a.max_classification} is not on the scale")
    g, grading = a.min_grading, vocab.grading
    if g is not None and (g.reliability not in grading.reliability or g.credibility not in grading.credibility):
        where = doc.where("min_grading")
        yield Finding(where, "invalid", f"{a.id}: minimum grading {g.reliability}{g.credibility} is unknown")
    for name, count in Counter(c.alert_type for c in a.covers).items():
        if count > 1:
            yield Finding(doc.where("covers"), "invalid", f"{a.id}: {name} is covered {count} times; merge the rules")
    for i, cover in enumerate(a.covers):
        if cover.alert_type not in fields:
            where = doc.where("covers", i, "alert_type")
            yield Finding(where, "invalid", f"{cover.rule}: unknown alert type {cover.alert_type}")
            continue
        # An alert type the reviewed release lacks keeps nothing under a record; no release: checked below.
        paths = reviewed.get(cover.alert_type, ()) if reviewed is not None else None
        yield from _check_cover(doc, i, cover, fields[cover.alert_type], vocab.envelope, paths)


def _check_areas(src: PolicySources, doc: Doc[Agreement]) -> Iterator[Finding]:
    """Every province and border sector an area names needs an outline: no outline, no check of the coordinates."""
    areas = src.areas.model if src.areas is not None else None
    for i, cover in enumerate(doc.model.covers):
        area = cover.when.area
        if area is None:
            continue
        for name, kind, codes in (("provinces", "province", area.provinces),
                                  ("border_sectors", "border sector", area.border_sectors)):  # fmt: skip
            outlines = {} if areas is None else getattr(areas, name)
            for j, code in enumerate(codes):
                if code not in outlines:
                    why = f"the policy has no {AREAS}" if areas is None else f"not under {name} in {AREAS}"
                    where = doc.where("covers", i, "when", "area", name, j)
                    yield Finding(where, "area", f"{cover.rule}: {kind} {code} has no outline ({why})")


def _check_overlaps(src: PolicySources) -> Iterator[Finding]:
    """No two agreements cover one partner's alert type on a common day.

    Where several agreements cover an alert, a decision applies each and needs every one of them to pass, so a
    second agreement narrows the first whatever its text says: an annex meant to widen an area would stop the
    deliveries outside the narrower one. Which of the two was meant is the authors' to say. Validity runs from
    ``valid_from`` to ``valid_until``, both days included: an agreement renewed by one starting the day after
    it ends shares no day with it, and a window of the decision's two clocks across the change applies both.
    """
    home = src.vocabulary.model.home.country
    for one, two in combinations(src.agreements, 2):
        a, b = one.model, two.model
        if a.valid_until < b.valid_from or b.valid_until < a.valid_from:
            continue
        partners = sorted((set(a.parties) & set(b.parties)) - {home})
        if not partners:
            continue
        types = {c.alert_type for c in a.covers}
        for i, cover in enumerate(b.covers):
            if cover.alert_type in types:
                yield Finding(
                    two.where("covers", i, "alert_type"), "overlap",
                    f"{a.id} ({one.label}) and {b.id} ({two.label}) both cover {cover.alert_type} for "
                    f"{', '.join(partners)} from {max(a.valid_from, b.valid_from)} to "
                    f"{min(a.valid_until, b.valid_until)}, and a decision would need both to pass; merge them, or "
                    "end one before the other starts",
                )  # fmt: skip


def check_sources(
    src: PolicySources, fields: Mapping[str, Mapping[str, FieldInfo]], releases: Releases
) -> list[Finding]:
    """Every problem that makes the policy set unusable, in file order."""
    found = list(_check_vocabulary_and_partners(src))
    label = src.vocabulary.model.reviewed_schema
    reviewed = releases.get(label)
    if reviewed is None:
        known = ", ".join(releases) or "none"
        found.append(Finding(src.vocabulary.where("reviewed_schema"), "invalid",
                             f"reviewed_schema {label} is not a release of the alert schema (releases: {known})"))
    found.extend(_check_envelope(src, fields))
    found.extend(_check_owners(src, fields))
    # Agreement and rule ids name why a partner got a field, in every decision an auditor reads: two that read
    # the same (COMBIFRON-BORDER and Combifron-Border, or with a 0 for an O) would be one to that reader.
    ids = Counter(code_key(d.model.id) for d in src.agreements)
    for doc in src.agreements:
        if ids[code_key(doc.model.id)] > 1:
            found.append(Finding(doc.where("id"), "invalid", f"agreement id {doc.model.id} is used by another file "
                                 "too (ids differing only in case, separators or look-alike characters are one)"))
    rules = Counter(code_key(c.rule) for d in src.agreements for c in d.model.covers)
    for doc in src.agreements:
        for i, cover in enumerate(doc.model.covers):
            if rules[code_key(cover.rule)] > 1:
                found.append(Finding(doc.where("covers", i, "rule"), "invalid", f"rule id {cover.rule} is not unique "
                                     "(ids differing only in case, separators or look-alike characters are one)"))
            if "." in cover.rule:  # (see the note at the top)
                found.append(Finding(doc.where("covers", i, "rule"), "invalid",
                                     f"rule id {cover.rule} has a dot: ids with one name the policy's own checks "
                                     "and notices (caveat.ORCON, originator.foreign, <rule>.<condition>)"))
        found.extend(_check_agreement(src, doc, fields, reviewed))
        found.extend(_check_areas(src, doc))
    found.extend(_check_overlaps(src))
    return found
