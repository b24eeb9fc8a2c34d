"""``puente policy lint``: everything wrong with a policy directory, as a list of findings.

Besides the checks loading enforces (``_check``: unknown names, field rules
naming fields the schema lacks, rules that do not fit their field, rules
under a field another rule changes, agreements in force together for one
partner's alert type), lint reports what loads but should not stay:
a policy without areas.yaml (every alert naming an area is withheld),
expired agreements, a feed kept shorter than its partner's deadline to
acknowledge a recall, partners without keys, fields a kept record holds
that the schema added after the release the policy was reviewed against
(views drop them until someone reviews them), and a precision a rule
hides that a field it keeps gives back (``_given_back``).

With a ``key_problem`` port it also checks the keys themselves: each key a
partner names, and the pseudonym key of each agreement with a rule that
pseudonymises (the only ones the broker asks for). The port is how the
command layer lends lint the broker's keystore: the policy core reads no
key files itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import date, datetime
from pathlib import Path

from policies._check import Finding, Releases, check_sources
from policies._fields import FieldInfo
from policies._load import schema_fields, schema_releases
from policies._model import Action, Agreement, Cover, FieldRule
from policies._plan import Planned, ancestors, plan_fields
from policies._source import AREAS, Doc, PolicySources, read_sources

# The kinds of key lint asks about, as key files name them.
ENCRYPTION_KEY = "partner-encryption"
VERIFICATION_KEY = "partner-signing"
PSEUDONYM_KEY = "pseudonym"

KeyProblem = Callable[[str, str, str], "str | None"]
"""``(name, kind, owner) -> problem``: what is wrong with that key, or None when it is there,
sound, and ``owner``'s own.

``name`` is the key id a partner names, or, for kind ``pseudonym``, the
agreement id: an agreement's pseudonym key is ``<agreement>-pseudo-<generation>``.
``owner`` is the partner naming the key (the agreement, for its pseudonym key): a
partner naming another's encryption key would have its feed sealed to that other.
"""


LONGEST_TERM_YEARS = 10


def _open_ended(src: PolicySources, today: date) -> list[Finding]:
    """An agreement whose end is more than ``LONGEST_TERM_YEARS`` ahead (of today, or of its start if later): a
    far ``valid_until`` (2999-12-31) reads as a date but works as no end, so nothing ever asks for the agreement
    to be reviewed again. One that has run for decades and ends soon is not one."""
    return [
        Finding(d.where("valid_until"), "term", f"{d.model.id} runs until {d.model.valid_until}, over "
                f"{LONGEST_TERM_YEARS} years ahead: give the end its text states, or renew it when it comes")
        for d in src.agreements
        if (d.model.valid_until - max(d.model.valid_from, today)).days > LONGEST_TERM_YEARS * 366
    ]


def _no_areas(src: PolicySources) -> list[Finding]:
    """A policy without ``areas.yaml``, which loads (it is optional: ``_source``), knows no province or border
    sector, so every alert naming one is withheld from every partner (rule ``unknown.area``): silently, but for
    this finding. Reported at the file's name, since it has no line. An ``areas.yaml`` that lists no province, or
    no border sector, loads too (no agreement need name an area) and withholds every alert naming one of that kind
    alike: one finding for each kind it lacks, at its key (or the file's start)."""
    if src.areas is None:
        return [Finding(AREAS, "area", f"the policy has no {AREAS}, so it knows no province or border sector: every "
                        "alert naming one is withheld from every partner (rule unknown.area); add the policy's areas")]
    found = []
    for key, listed, what in (("provinces", src.areas.model.provinces, "province"),
                              ("border_sectors", src.areas.model.border_sectors, "border sector")):
        if not listed:
            found.append(Finding(src.areas.where(key), "area", f"{AREAS} lists no {what}: every alert naming one "
                                 f"(location.{key[:-1]}) is withheld from every partner (rule unknown.area); add "
                                 f"the policy's {key.replace('_', ' ')}"))
    return found


def _expired(src: PolicySources, today: date) -> list[Finding]:
    return [
        Finding(d.where("valid_until"), "expired", f"{d.model.id} expired on {d.model.valid_until}; renew or remove it")
        for d in src.agreements
        if d.model.valid_until < today
    ]


SLOW_RECALL_HOURS = 30 * 24


def _slow_recalls(src: PolicySources) -> list[Finding]:
    """A recall a partner may leave unacknowledged for over a month: corrections of a watchlist hit
    on the wrong person cannot wait that long."""
    return [
        Finding(d.where("recall_ack_hours"), "recall", f"{d.model.id} gives partners {d.model.recall_ack_hours} h "
                f"(over {SLOW_RECALL_HOURS // 24} days) to acknowledge a recall; is that intended?")
        for d in src.agreements
        if d.model.recall_ack_hours > SLOW_RECALL_HOURS
    ]


def _notices_outlived(src: PolicySources) -> list[Finding]:
    """A partner's feed keeps records for the shortest ``retention_days`` of the agreements naming a partner on
    it (``broker.topology.feed_retention``), and recall notices go through that feed: a deadline to acknowledge
    one (the shortest ``recall_ack_hours`` of the partner's agreements, as auditors count it) that runs past the
    feed's retention lets Kafka delete a notice before the partner has had the time it was given to read it.
    Reported at the agreement whose retention sets the feed's."""
    home = src.vocabulary.model.home.country
    feeds = {p.id: p.feed_topic for p in src.partners.model.partners}
    naming: dict[str, list[Doc[Agreement]]] = {}
    for doc in src.agreements:
        for pid in sorted(set(doc.model.parties) - {home}):
            naming.setdefault(pid, []).append(doc)
    found = []
    for topic in sorted(set(feeds.values())):
        docs = [d for pid, feed in feeds.items() if feed == topic for d in naming.get(pid, [])]
        if not docs:
            continue
        shortest = min(docs, key=lambda d: d.model.retention_days)
        days = shortest.model.retention_days
        for pid in sorted(pid for pid, feed in feeds.items() if feed == topic and naming.get(pid)):
            hours = min(d.model.recall_ack_hours for d in naming[pid])
            if hours > days * 24:
                found.append(Finding(
                    shortest.where("retention_days"), "recall",
                    f"{shortest.model.id} keeps {pid}'s feed {days} day(s), but {pid} has {hours} h to acknowledge "
                    f"a recall: Kafka may delete a notice before its deadline; give retention_days at least "
                    f"{-(-hours // 24)} or a shorter recall_ack_hours"))
    return found


def _pseudonymises(agreement: Agreement) -> bool:
    """Whether a field rule of ``agreement`` pseudonymises: then its views need its pseudonym key.

    Counts a rule that a changed ancestor makes moot too (``_check`` refuses it as shadowed, and lint
    runs on a policy that does not load): asking for a key the broker might not need is the safe side.
    """
    return any(rule.action is Action.PSEUDONYMISE for cover in agreement.covers for rule in cover.fields.values())


def _keys(src: PolicySources, key_problem: KeyProblem | None) -> list[Finding]:
    doc = src.partners
    found = []
    for i, p in enumerate(doc.model.partners):
        # Encryption is what delivery needs; a verification key (for partners that sign their
        # receipts) is optional, but when named it must exist like any other.
        for use, kind in (("encryption", ENCRYPTION_KEY), ("verification", VERIFICATION_KEY)):
            key_id = getattr(p.keys, use)
            if key_id is None and use == "verification":
                continue
            if key_id is None:
                found.append(Finding(doc.where("partners", i), "keys", f"{p.id} has no {use} key id"))
                continue
            problem = key_problem(key_id, kind, p.id) if key_problem is not None else None
            if problem is not None:
                found.append(Finding(doc.where("partners", i, "keys", use), "keys", f"{p.id}: {use} key: {problem}"))
    if key_problem is not None:
        for agreement in src.agreements:
            if not _pseudonymises(agreement.model):
                continue  # the broker never asks for its key: views under it pseudonymise nothing
            problem = key_problem(agreement.model.id, PSEUDONYM_KEY, agreement.model.id)
            if problem is not None:
                where = agreement.where("id")
                found.append(Finding(where, "keys", f"{agreement.model.id}: pseudonym key: {problem}"))
    return found


def lint(directory: Path | str | None = None, *, now: datetime, key_problem: KeyProblem | None = None) -> list[Finding]:
    """Every finding for the policy in ``directory`` at ``now``; files that do not validate raise PolicyError.

    Keys are checked only through ``key_problem`` (see ``KeyProblem``); without it, only that each
    partner names an encryption key.
    """
    src = read_sources(directory)
    today = now.astimezone(src.vocabulary.model.home.tz()).date()
    releases = schema_releases()
    found = check_sources(src, schema_fields(), releases)
    found += (_no_areas(src) + _expired(src, today) + _open_ended(src, today) + _slow_recalls(src)
              + _notices_outlived(src) + _keys(src, key_problem) + _unreviewed(src, releases)
              + _given_back(src, releases))
    return found


def _planned_covers(src: PolicySources, releases: Releases
                    ) -> Iterator[tuple[Doc[Agreement], int, Cover, Mapping[str, FieldInfo], list[Planned]]]:
    """Each cover of an alert type the schema has, with that type's fields and its view's plan (``plan_fields``)
    against the release the policy was reviewed against; none when that release is unknown (``check_sources``
    reports it)."""
    reviewed, fields = releases.get(src.vocabulary.model.reviewed_schema), schema_fields()
    if reviewed is None:
        return
    envelope = src.vocabulary.model.envelope.keep
    for doc in src.agreements:
        for i, cover in enumerate(doc.model.covers):
            if cover.alert_type in fields:
                held = fields[cover.alert_type]
                yield doc, i, cover, held, plan_fields(held, cover, envelope, reviewed.get(cover.alert_type, ()))


def _unreviewed(src: PolicySources, releases: Releases) -> list[Finding]:
    """Fields a ``keep`` on a record would share but does not: the alert schema added them after the
    release the policy was reviewed against, so every view drops them until someone decides."""
    label = src.vocabulary.model.reviewed_schema
    found = []
    for doc, i, cover, _, planned in _planned_covers(src, releases):
        newer = [p.path for p in planned if p.unreviewed]
        if newer:
            found.append(Finding(
                doc.where("covers", i, "fields"), "review",
                f"{cover.rule}: {', '.join(newer)} came into the alert schema after release {label}, which the "
                "policy was reviewed against: a kept record holds them, but every view drops them until a "
                "rule names them or reviewed_schema names a later release",
            ))
    return found


# Where an alert happened and when, as its coordinates and times state them; and the fields that state either
# again in another form: a place name or an encounter (a flight, a crossing) says where, and when; a time says
# when; free text may say anything.
_COORDINATES = ("location.latitude", "location.longitude")
_TIMES = ("occurred_at", "reported_at", "payload.encountered_at")
# Dates every view keeps to the day (the envelope's, which no cover changes): the adapters set them from the
# event's time (a review or an expiry so many days on), so they give its day back to a cover that hides more.
_DAY_ONLY = ("markings.review_at", "markings.expires_at")
_SAYS_WHERE = {"location.place_name": "a place name", "payload.encounter": "an encounter (a flight, a crossing)",
               "payload.port_of_entry": "a port of entry (an airport, a harbour: a fixed place)",
               "payload.match_reason": "free text",
               "summary": "free text", "payload.remarks": "free text"}
_SAYS_WHEN = {"payload.encounter": "an encounter (a flight, a crossing)", "payload.match_reason": "free text",
              "summary": "free text",
              "payload.remarks": "free text"}
# The people an alert names (a watchlist hit's person, a seizure's detainees), and what else can name them: a cover
# that hides a person's names but keeps one of these hands the name back.
_PERSONS = ("payload.person", "payload.detainees[]")
_NAMES = ("given_names", "surnames")
_SAYS_WHO = {"documents[].number": "a travel document's number"}  # below the person
_TEXT_SAYS_WHO = {"summary": "free text", "payload.remarks": "free text", "payload.match_reason": "free text"}
_COARSER = {"hour": 1, "day": 2, "year": 3}  # a time kept whole is 0; one dropped (or masked) is past them all
_HIDDEN = 9


def _given_back(src: PolicySources, releases: Releases) -> list[Finding]:
    """Fields a rule keeps that give back a precision another rule of it hides: a cover that generalises or drops a
    coordinate, yet keeps the place name (``12 millas al suroeste de Jaqué``), an encounter or free text (the
    adapters' summaries name the place: ``Cruce irregular en Paso Canoas, trocha del cementerio``); or one that cuts
    a time to the hour, yet keeps another time whole, or an encounter or free text. The partner would read
    what the agreement meant to withhold. Only a precision a rule names is judged: a cover that never names
    the coordinates (so drops them) has hidden nothing on purpose. One finding per field, at its rule."""
    grid = src.vocabulary.model.view.grid
    found = []
    for doc, i, cover, held, planned in _planned_covers(src, releases):
        changed = {p.path: p.rule for p in planned if p.rule.action is not Action.KEEP}
        for path, why in _precision_given_back(cover, held, changed, grid).items():
            at = next((a for a in (path, *ancestors(path)) if a in cover.fields), None)
            found.append(Finding(
                doc.where("covers", i, "fields", *((at,) if at is not None else ())), "precision",
                f"{cover.rule} {why}",
            ))
    return found


def _precision_given_back(cover: Cover, held: Collection[str], changed: dict[str, FieldRule],
                          grid: float) -> dict[str, str]:
    """``_given_back`` for one cover: each field of ``held`` (its alert type's) that gives a precision back, and
    how. ``changed``: the rule that changes each field the partner's view does not keep whole (``plan_fields``);
    ``grid``: the vocabulary's, for a coordinate generalised without one."""

    def rule_of(path: str) -> FieldRule | None:
        """The rule that changes ``path`` (or what holds it) in the view; None: it reaches the partner whole."""
        return next((changed[a] for a in (path, *ancestors(path)) if a in changed), None)

    def rank(path: str) -> int:
        """How coarse the time ``path`` reaches the partner: 0 whole, ``_COARSER`` cut, ``_HIDDEN`` not at all."""
        if path in _DAY_ONLY:
            return _COARSER["day"]
        rule = rule_of(path)
        if rule is None:
            return 0
        # a time generalised without ``to`` is cut to the hour, as the view cuts it (``policies._view``)
        return _COARSER[rule.to or "hour"] if rule.action is Action.GENERALISE else _HIDDEN

    def named(path: str) -> bool:
        """Whether a rule of the cover itself changes ``path`` (or what holds it)."""
        return any(a in cover.fields and cover.fields[a].action is not Action.KEEP for a in (path, *ancestors(path)))

    def coarse(path: str) -> float:
        """How coarse the coordinate ``path`` reaches the partner, in degrees: 0 whole, its grid, or infinite."""
        rule = rule_of(path)
        if rule is None:
            return 0.0
        return (rule.grid or grid) if rule.action is Action.GENERALISE else math.inf

    def shown(path: str) -> str:
        return "whole" if coarse(path) == 0 else f"on a {coarse(path):g}° grid"

    told: dict[str, str] = {}
    # A position is as precise as its finer coordinate: one kept whole (or on a finer grid) beside the other
    # generalised (or hidden) puts the event on a line, and a line crossing a border sector is nearly a point.
    both = [c for c in _COORDINATES if c in held]
    if len(both) == 2 and any(named(c) for c in both):
        finer, other = sorted(both, key=coarse)
        # one generalised beside the other hidden shows less than both on its grid: a choice, not a leak
        if coarse(finer) < coarse(other) and not (coarse(other) == math.inf and coarse(finer) > 0):
            hid = rule_of(other)
            hides = (f"{hid.action.value}s {other}" if hid is not None and hid.action is not Action.GENERALISE
                     else f"generalises {other} to a {coarse(other):g}° grid")
            told[finer] = (f"{hides} but keeps {finer} {shown(finer)}: it gives back part of the position; generalise "
                           "both to one grid")
    where = next((c for c in _COORDINATES if c in held and named(c)), None)
    if where is not None and (hider := rule_of(where)) is not None:
        for path, what in _SAYS_WHERE.items():
            if path in held and rule_of(path) is None:
                told.setdefault(path, f"{hider.action.value}s {where} but keeps {path}: {what} can say the place the "
                                      "coordinates hide; drop it too, or share the coordinates whole")
    for when in sorted((t for t in _TIMES if t in held and named(t)), key=rank, reverse=True):
        cut = rank(when)
        hidden = f"drops {when}" if cut == _HIDDEN else f"cuts {when} to the {_unit(cut)}"
        for path in _TIMES:
            if path != when and path in held and rank(path) < cut:
                kept = "whole" if rank(path) == 0 else f"cut only to the {_unit(rank(path))}"
                told.setdefault(path, f"{hidden} but keeps {path} {kept}: it gives that time back; cut both alike")
        for path in _DAY_ONLY:
            if path in held and rank(path) < cut:
                told.setdefault(path, f"{hidden} but every view keeps {path} to the day (the envelope's, which the "
                                      f"adapters set from the event's time): it gives the day back; cut {when} to the "
                                      "day at most")
        for path, what in _SAYS_WHEN.items():
            if path in held and rule_of(path) is None:
                told.setdefault(path, f"{hidden} but keeps {path}: {what} can say that time; drop it too, or "
                                      "share the time whole")
    for person in _PERSONS:
        # Hidden by a rule of the cover or by its naming none (unnamed fields are dropped): either way the name
        # is not in the view, and what else names the person must not be either.
        name = next((f"{person}.{n}" for n in _NAMES if f"{person}.{n}" in held and rule_of(f"{person}.{n}")), None)
        if name is None or (hider := rule_of(name)) is None:
            continue
        says_who = {**{f"{person}.{path}": what for path, what in _SAYS_WHO.items()}, **_TEXT_SAYS_WHO}
        for path, what in says_who.items():
            if path in held and rule_of(path) is None:
                told.setdefault(path, f"{hider.action.value}s {name} but keeps {path}: {what} can name the person; "
                                      "drop it too, or share the names")
    return told


def _unit(rank: int) -> str:
    """The unit a time cut to ``rank`` (``_COARSER``) is given in."""
    return next(unit for unit, coarse in _COARSER.items() if coarse == rank)
