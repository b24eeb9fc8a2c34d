"""The decision core: one alert, one partner, the policy set and a time in; a Decision out.

Pure: no I/O, no clock, no globals. Default deny: an alert is delivered only
when an agreement in force covers it and no check fails; every check runs,
so a withheld decision lists every reason, and any one of them withholds
(the most restrictive rule wins). A value the policy does not know
withholds. A malformed alert withholds too, whatever the fault: nothing an
alert holds makes ``decide`` raise. Reasons quote an alert's markings only
where they are the policy's own codes: any other value is the agency's text
(a name typed into a marking column), which a decision's reasons, copied
into every partner's audit entry, must not carry. They count such values
instead and list the codes the policy knows; what else they quote is cut
short (``_excerpt``), so an alert's audit record stays small.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from policies._compile import CompiledCover, PartnerInfo, PolicySet
from policies._decision import Decision, Outcome, day_of
from policies._excerpt import excerpt
from policies._model import Effect
from policies._view import chosen

# Rule ids of the checks that do not come from an agreement. Agreement rules add
# "<agreement>.validity", "<agreement>.max_classification", "<agreement>.min_grading",
# "<rule>" when it releases and "<rule>.<condition>" when a condition fails.
ALERT_MALFORMED = "alert.malformed"
ALERT_EXPIRED = "alert.expired"
ALERT_REVIEW_OVERDUE = "alert.review_overdue"
TIME_NAIVE = "time.naive"
UNKNOWN_PARTNER = "unknown.partner"
UNKNOWN_ALERT_TYPE = "unknown.alert_type"
UNKNOWN_CLASSIFICATION = "unknown.classification"
UNKNOWN_CAVEAT = "unknown.caveat"
UNKNOWN_HANDLING = "unknown.handling_code"
UNKNOWN_GRADING = "unknown.grading"
UNKNOWN_RELEASABLE_TO = "unknown.releasable_to"
UNKNOWN_CONSENT = "unknown.originator_consent"
UNKNOWN_ORIGINATOR = "unknown.originator_country"
UNKNOWN_OWNER = "unknown.owner"  # an owner field (vocabulary ``owners``) names an owner the policy does not know
UNKNOWN_AREA = "unknown.area"  # location.province or location.border_sector is not a code of the policy's areas
CLEARANCE = "partner.clearance"
RELEASABILITY = "marking.releasability"
ORIGINATOR_FOREIGN = "originator.foreign"
NO_AGREEMENT = "agreement.none"
NOT_COVERED = "agreement.coverage"

Fails = list[tuple[str, str]]
MEMO_LIMIT = 50_000  # shared decisions kept per policy set
MEMO_BYTES = 4 << 20  # ... and the text they hold, counted as below
MEMO_ENTRY_BYTES = 400  # what one entry costs besides its text: key, tuples, the Decision itself
CONDITION_LIMIT = 200  # characters of a condition's reason: conditions may quote alert values
LISTED = 8  # known partner names a reason lists whole; a longer list is quoted in excerpts


def _withhold(ps: PolicySet, partner_id: str, considered: tuple[CompiledCover, ...], fails: Fails) -> Decision:
    # Building a frozen dataclass costs more than the checks; equal reasons give an equal decision,
    # so decisions are shared through a memo, bounded in entries and in size (reasons quote excerpts
    # of alert values, so distinct hostile alerts make distinct entries).
    key = (partner_id, considered, tuple(fails))  # covers hash by identity: cheap
    found = ps.memo.get(key)
    if found is not None:
        return found
    rule_ids, reasons = zip(*fails, strict=True)
    decision = Decision(
        Outcome.WITHHOLD, partner_id, tuple(dict.fromkeys(c.agreement.id for c in considered)),
        tuple(dict.fromkeys(rule_ids)), reasons, (), ps.version,
    )  # fmt: skip
    _remember(ps, key, decision)
    return decision


def _remember(ps: PolicySet, key: tuple[Any, ...], decision: Decision) -> None:
    memo = ps.memo
    cost = MEMO_ENTRY_BYTES + len(decision.partner_id) + sum(map(len, decision.reasons))
    if len(memo) >= MEMO_LIMIT or memo.size + cost > MEMO_BYTES:
        memo.clear()
    memo[key] = decision
    memo.size += cost


def _deliver(ps: PolicySet, partner: PartnerInfo, covers: tuple[CompiledCover, ...], notices: Fails) -> Decision:
    key = (partner.id, covers, tuple(notices))  # covers hash by identity: cheap
    found = ps.memo.get(key)
    if found is not None:
        return found
    # Shortest retention first, so the agreement a delivery names (``Decision.agreement_id``: the feed's
    # header and its sealed associated data, which the partner's store keeps the alert by) is the one whose
    # retention binds when several apply (a window across a renewal); equal ones keep the policy's order.
    days: dict[str, int] = {}
    for c in covers:
        days.setdefault(c.agreement.id, c.agreement.retention_days)
    ids = tuple(sorted(days, key=days.__getitem__))
    # The changes the view makes (``chosen``): where several agreements apply, each field's one change, with the
    # rule whose change (and, for a pseudonym, whose key) it is.
    redactions = tuple(c.redactions[i] for c, i in chosen(covers, ids[0]))
    decision = Decision(
        Outcome.DELIVER_REDACTED if redactions else Outcome.DELIVER,
        partner.id,
        ids,
        tuple(c.rule_id for c in covers) + tuple(rule for rule, _ in notices),
        tuple(c.release_reason for c in covers) + tuple(reason for _, reason in notices),
        redactions,
        ps.version,
        min(days.values()),
        # Consent releases the alert to this partner, no further: a release resting on it forbids onward sharing,
        # and so does a third country's information, whoever receives it.
        all(c.agreement.onward_sharing for c in covers) and not any(_no_onward(ps, rule) for rule, _ in notices),
    )
    _remember(ps, key, decision)
    return decision


def _restrict(
    ps: PolicySet, partner: PartnerInfo, code: str, effect: Effect, consented: bool, fails: Fails, notices: Fails
) -> None:
    """Apply one caveat's or handling code's effect (the rule id is the code's own, e.g. caveat.ORCON)."""
    if effect is Effect.NOTICE:
        notices.append((code, f"{code.split('.', 1)[1]}: {ps.notes[code]}"))
    elif effect is Effect.DOMESTIC_ONLY and not partner.internal:
        fails.append((code, f"{code.split('.', 1)[1]} keeps the alert inside {ps.home_country}"))
    elif effect is Effect.NEEDS_CONSENT:
        if not consented:
            fails.append((code, f"{code.split('.', 1)[1]} needs the originator's consent for {partner.id}, "
                                "not recorded"))
        else:  # recorded as the reason it may go, and (``_deliver``) why it may go no further
            notices.append((code, f"{code.split('.', 1)[1]}: the originator consented to {partner.id}; "
                                  "no onward sharing"))


def _no_onward(ps: PolicySet, rule: str) -> bool:
    """Whether a notice's rule id forbids onward sharing: a third country's information (passing it on needs
    that country's consent, whoever received it), or a release resting on the originator's consent that a
    caveat or handling code needed."""
    if rule == ORIGINATOR_FOREIGN:
        return True
    kind, _, code = rule.partition(".")
    effects = ps.caveat_effects if kind == "caveat" else ps.handling_effects if kind == "handling" else {}
    return effects.get(code) is Effect.NEEDS_CONSENT


OwnerFails = tuple[tuple[str, str], ...]


@dataclass(slots=True)  # not frozen: a frozen init costs a setattr call per field, once per alert
class _Facts:
    """What every partner's decision reads from one alert, looked up once per alert.

    Each ``*_fail`` is the failure that check adds for every partner alike (or None); the
    per-partner checks run in the same order as before, so a decision lists its reasons in the
    same order whichever way it is made.
    """

    markings: Mapping[str, Any]
    cls: str
    cls_rank: int
    rel_rank: int
    cred_rank: int
    grading_fail: tuple[str, str] | None
    consent: Any
    consent_fail: tuple[str, str] | None
    caveats: tuple[tuple[str, Effect | None], ...]
    handling: str
    handling_rule: str  # "handling.<code>" for a known code, else ""
    handling_effect: Effect | None
    releasable: Any
    releasable_fail: tuple[str, str] | None
    owners: tuple[str, ...]  # the known countries besides home whose information it carries (``_owners``)
    owner_fails: OwnerFails  # an originator country or an owner the policy does not know
    expired_fail: tuple[str, str] | None
    review_notice: tuple[str, str] | None  # not a fail: a delivery records it (``_with_review``)
    area_fail: tuple[str, str] | None  # a province or border sector the policy's areas do not list (``_area_fail``)


def _listed(codes: Mapping[str, Any] | AbstractSet[str] | Sequence[str]) -> str:
    """The policy's codes of one marking: by rank where they are ranked (a scale, a grading), else as it lists them
    (a set, sorted; a sequence, in its order); past ``LISTED`` of them, the rest counted."""
    if isinstance(codes, Mapping):
        ranked = all(type(value) is int for value in codes.values())
        names = sorted(codes, key=codes.__getitem__) if ranked else list(codes)
    else:
        names = sorted(codes) if isinstance(codes, AbstractSet) else list(codes)
    more = len(names) - LISTED
    return ", ".join(names[:LISTED]) + (f" and {more} more" if more > 0 else "")


def _entries(count: int, what: str = "entry", whats: str = "entries") -> str:
    return f"{count:,} {what if count == 1 else whats}"


def _unknown(values: list[Any], known: AbstractSet[str]) -> list[Any]:
    """The values not in ``known``, each once, in the order given."""
    return list(dict.fromkeys(v for v in values if v not in known))


def _facts(alert: Mapping[str, Any], ps: PolicySet, now: datetime) -> _Facts:
    m = alert["markings"]
    cls = m["classification"]
    reliability, credibility = m["source_reliability"], m["information_credibility"]
    rel_rank = ps.reliability_rank.get(reliability, -1)
    cred_rank = ps.credibility_rank.get(credibility, -1)
    grading_fail = None
    if rel_rank < 0 or cred_rank < 0:
        # The value is not quoted, here nor for a classification or handling code: each is one code of a short list
        # the policy states, and anything else is the agency's text, which an audit entry must not carry.
        grading_fail = (UNKNOWN_GRADING, "; ".join(
            f"the grading's {what} is not one the policy knows ({_listed(ranks)})"
            for what, rank, ranks in (("source reliability", rel_rank, ps.reliability_rank),
                                      ("information credibility", cred_rank, ps.credibility_rank)) if rank < 0))
    consent, rel, caveats = m["originator_consent"], m["releasable_to"], m["caveats"]
    if type(consent) is not list or type(rel) is not list or type(caveats) is not list:
        # Malformed: a dict or a string would be read as its keys or its characters, and a dict
        # whose keys are known names would pass for a list of them.
        raise TypeError("a marking list is not a list")
    consent_fail = None
    if not ps.partners.keys() >= set(consent):  # consent is per partner: a country names no one partner
        unknown = len(_unknown(consent, ps.partners.keys()))
        consent_fail = (UNKNOWN_CONSENT, f"originator_consent names {_entries(unknown)} that "
                                         f"{'is not a partner' if unknown == 1 else 'are not partners'} of the policy "
                                         f"(consent names partner ids: {_listed(ps.partners)})")
    releasable_fail = None
    if not ps.known_names.issuperset(rel):
        unknown = len(_unknown(rel, ps.known_names))
        releasable_fail = (UNKNOWN_RELEASABLE_TO, f"releasable_to names {_entries(unknown)} unknown to the policy "
                                                  f"(it knows {_listed(ps.known_names)})")
    expires = m["expires_at"]  # a decoded alert always has it; a missing one must not read as "never"
    expired_fail = None
    # Partners' views state the expiry's day (``day_of``): an alert whose day has begun would reach a partner
    # already expired, so it is withheld from that day's start.
    if expires is not None and day_of(expires) <= now:
        expired_fail = (ALERT_EXPIRED, f"the alert expired at {expires.isoformat()}" if expires <= now else
                        f"the alert expires at {expires.isoformat()}; partners' views state its day, which has begun")
    # review_at is when the partner must review its copy (vocabulary.yaml), not a deletion date: expires_at
    # is that, and withholds above. An alert already past its review date is delivered as any other, and
    # the delivery records it, so an audit shows why a partner got an alert already due (its store lists
    # it: ``puente store list --due``). Null is no review date; a missing key, like a missing expiry, is
    # malformed. The text quotes the date only, nothing of the alert's content.
    review = m["review_at"]
    review_notice = None
    if review is not None and day_of(review) <= now:  # from the day partners' views state (``day_of``)
        review_notice = (ALERT_REVIEW_OVERDUE, f"review_overdue: the alert is due for review on "
                                               f"{review.date().isoformat()} ({review.isoformat()}); the "
                                               "partner's store lists it as due")
    origin = m["originator"]["country"]
    owners: tuple[str, ...]
    owner_fails: OwnerFails
    if origin == ps.home_country and alert["alert_type"] not in ps.owned_types:
        owners, owner_fails = (), ()  # the hot path: Panama's own alert of a type naming no other owner
    else:
        owners, owner_fails = _owners(alert, origin, ps)
    code = m["handling_code"]
    effect = ps.handling_effects.get(code)
    return _Facts(
        m, cls, ps.class_rank.get(cls, -1), rel_rank, cred_rank, grading_fail, consent, consent_fail,
        tuple([(c, ps.caveat_effects.get(c)) for c in dict.fromkeys(caveats)]), code,
        "" if effect is None else "handling." + code,  # a rule id only for a known code
        effect, rel, releasable_fail, owners, owner_fails, expired_fail, review_notice, _area_fail(alert, ps),
    )  # fmt: skip


# The area labels of an alert's location: (field, the kind of outline its codes have in areas.yaml, as a reason says it)
_AREA_LABELS = (("province", "province", "province or comarca"), ("border_sector", "border sector", "border sector"))


def _area_fail(alert: Mapping[str, Any], ps: PolicySet) -> tuple[str, str] | None:
    """The failure for an alert whose ``location.province`` or ``location.border_sector`` is not a code of the
    policy's areas (``areas.yaml``), or None.

    These fields carry a code of the policy's vocabulary, as a classification or a caveat does, and an agreement
    that keeps the location passes them to the partner as they are: any other value, a code in form as it may be,
    is the agency's own text (a name, a document number), so it withholds, as an unknown classification does, and
    the reason names the field, never the value. A policy without ``areas.yaml`` knows no area: every alert naming
    one is withheld (fail closed; ``puente policy lint`` reports the missing file). Whether known labels agree with
    each other and with the position is the area conditions' question (``policies._conditions``)."""
    location = alert.get("location")
    if location is None:
        return None
    outlines = ps.areas.outlines
    unknown = []
    for name, kind, said in _AREA_LABELS:
        code = location.get(name)
        if code is not None:
            outline = outlines.get(code) if type(code) is str else None
            if outline is None or outline.kind != kind:
                unknown.append((name, said))
    if not unknown:
        return None
    # The codes are not listed, as a classification's are: areas are many and long, and every partner's audit entry
    # copies the reason; ``puente policy explain`` and areas.yaml show them.
    said = " and ".join(f"location.{name} is not a {what} of the policy's areas.yaml" for name, what in unknown)
    if not outlines:
        said += " (the policy has none)"
    return UNKNOWN_AREA, f"{said}: the field carries only the policy's area codes"


def _owners(alert: Mapping[str, Any], origin: Any, ps: PolicySet) -> tuple[tuple[str, ...], OwnerFails]:
    """The countries besides home whose information the alert carries, each once: its originator's, the keeper of
    the list it names (vocabulary ``owners.lists``: a watchlist's own keeper, whatever the alert says) and those its
    owner fields name (``owners.fields``: the list keeper the agency gives); and a failure for each the policy does
    not know. A keeper the policy declares open to every partner (INTERPOL) is no owner to ask."""
    known = ps.known_countries
    found = [origin]
    fails: list[tuple[str, str]] = []
    if origin != ps.home_country and origin not in known:
        fails.append((UNKNOWN_ORIGINATOR, f"the originator country is not one the policy knows "
                                          f"({_listed(known)})"))
    alert_type = alert["alert_type"]
    named: list[tuple[str, Any]] = []
    lists = ps.list_keepers.get(alert_type)
    if lists is not None:
        path, keys, keepers = lists
        keeper = keepers.get(_value(alert, keys))
        if keeper is None:  # the agency's text, never quoted
            fails.append((UNKNOWN_OWNER, f"{path} names a list the policy does not know ({_listed(keepers)})"))
        else:
            named.append((path, keeper))
    named += [(path, _value(alert, keys)) for path, keys in ps.owner_fields.get(alert_type, ())]
    for path, value in named:
        if value in ps.open_keepers:
            continue
        if value in known:
            found.append(value)
        else:  # the agency's text, never quoted
            fails.append((UNKNOWN_OWNER, f"{path} names an owner the policy does not know (countries "
                                         f"{_listed(known)}; open to every partner: "
                                         f"{_listed(ps.open_keepers) or 'none'})"))
    owners = tuple(dict.fromkeys(o for o in found if o != ps.home_country and o in known))
    return owners, tuple(fails)


def _value(alert: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    value: Any = alert
    for key in keys:
        value = value[key]
    return value


def _check_markings(ps: PolicySet, partner: PartnerInfo, f: _Facts, fails: Fails, notices: Fails) -> None:
    if f.consent_fail is not None:
        fails.append(f.consent_fail)
    # Consent is given per alert and per partner (DOMAIN): matched on the partner's id alone, so consent for
    # one partner never reaches another of the same country.
    consented = partner.id in f.consent
    # Each caveat once (``_facts``); the unknown ones in one reason, as releasable_to's: a reason each would let
    # one alert's list of made-up caveats multiply every partner's decision (and its audit) without bound.
    unknown = sum(1 for _, effect in f.caveats if effect is None)
    if unknown:
        fails.append((UNKNOWN_CAVEAT, f"{_entries(unknown, 'caveat is', 'caveats are')} unknown to the policy (it "
                                      f"knows {_listed(ps.caveat_effects)})"))
    for caveat, effect in f.caveats:
        if effect is not None and effect is not Effect.NONE:
            _restrict(ps, partner, "caveat." + caveat, effect, consented, fails, notices)
    effect = f.handling_effect
    if effect is None:
        fails.append((UNKNOWN_HANDLING, f"the handling code is not one the policy knows "
                                        f"({_listed(ps.handling_effects)})"))
    elif effect is not Effect.NONE:
        _restrict(ps, partner, f.handling_rule, effect, consented, fails, notices)
    if f.releasable_fail is not None:
        fails.append(f.releasable_fail)
    rel = f.releasable
    if not partner.internal and partner.names.isdisjoint(rel):
        # Known names are policy vocabulary, short and safe to show as they are; anything else is counted.
        if f.releasable_fail is None and len(rel) <= LISTED:
            listed = ", ".join(dict.fromkeys(rel)) or "none outside " + ps.home_country
        else:
            listed = _listed(list(dict.fromkeys(name for name in rel if name in ps.known_names)))
            others = len(_unknown(rel, ps.known_names))
            if others:
                listed = "; ".join(filter(None, (listed, f"{_entries(others)} unknown to the policy")))
        fails.append((RELEASABILITY, f"releasable_to ({listed}) omits {partner.id}"))
    if f.owner_fails:
        fails.extend(f.owner_fails)
    if not f.owners:
        return
    # A third country's information: every owner's restrictions travel with it, whoever receives it. Inside Panama
    # it may be used, but passing it on needs the owner's consent, which Puente itself asks of every third country;
    # a foreign partner receives it only on that consent (given per alert, to the partner: ``consented``). Either
    # way the notice (``_deliver``) forbids onward sharing, so a view never tells the partner it may pass it on.
    third = [owner for owner in f.owners if owner != partner.country]
    if third:
        origin, one = " and ".join(third), len(third) == 1
        theirs = f"{origin}'s consent" if one else "their consent"
        if partner.internal:
            notices.append((ORIGINATOR_FOREIGN, f"information from {origin}: {partner.id} may use it inside "
                                                f"{ps.home_country}; passing it on needs {theirs}, "
                                                "so no onward sharing"))
        elif consented:
            # Consent is what the originator recorded (markings.originator_consent): the owner's own word only
            # where the owner is the originator; else the originator recorded it on the owners' behalf.
            country = f.markings["originator"]["country"]
            behalf = f"{origin}'s" if one else "their"
            said = (f"its originator recorded consent for {partner.id}" if third == [country] else
                    f"consent for {partner.id} recorded by the alert's originator ({country}) on {behalf} behalf")
            notices.append((ORIGINATOR_FOREIGN, f"information from {origin}: {said}; no onward sharing"))
        else:
            fails.append((ORIGINATOR_FOREIGN, f"information from {origin} goes to a third country only with "
                                              f"{'its' if one else 'their'} consent"))


def _covers(
    ps: PolicySet, partner: PartnerInfo, alert_type: Any, now: datetime, until: datetime, fails: Fails
) -> tuple[tuple[CompiledCover, ...], tuple[CompiledCover, ...]]:
    """(all covering agreement rules, those in force from ``now`` to ``until``); when none applies, the reason is
    added.

    In force for every moment of the window: one agreement, or several one after another with no moment between
    them uncovered (an agreement renewed by the next, the present on either side of the change), each of which
    then applies its rules (the most restrictive wins). Loading refuses two sharing a day (``_check``), so several
    apply only across such a change. A window with a moment no agreement covers (before the first begins, after
    the last ends, or between two) has none."""
    covers = ps.covers_for.get((partner.id, alert_type))
    if covers is None:
        if alert_type not in ps.alert_types:
            fails.append((UNKNOWN_ALERT_TYPE, f"alert type {excerpt(alert_type)} is unknown to the policy"))
        elif partner.id in ps.partners_with_agreements:
            fails.append((NOT_COVERED, f"no agreement with {partner.id} covers {alert_type} alerts"))
        else:
            fails.append((NO_AGREEMENT, f"there is no agreement with {partner.id}"))
        return (), ()
    live: tuple[CompiledCover, ...] = ()
    if len(covers) == 1:  # the usual case, without building a generator
        a = covers[0].agreement
        if a.starts <= now and until < a.ends:
            live = covers
    else:
        live = _in_force(covers, now, until)
    if not live:
        for c in covers:
            a = c.agreement
            if now >= a.ends:
                state = "expired"
            elif until >= a.ends:  # by the later clock only: the reason says so, or the audit's time would belie it
                state = "expired by the later of the decision's two clocks (the worker's and Kafka's)"
            elif until >= a.starts:  # in force by the later clock only
                state = "not yet in force by the earlier of the decision's two clocks (the worker's and Kafka's)"
            else:
                state = "not yet in force"
            fails.append((f"{a.id}.validity", f"{a.id} is {state} (valid {a.valid_from} to {a.valid_until})"))
    return covers, live


def _in_force(covers: Sequence[CompiledCover], now: datetime, until: datetime) -> tuple[CompiledCover, ...]:
    """The covers whose agreements are in force for part of ``now`` to ``until``, in their order, when together
    they leave no moment of it uncovered (``_covers``); else none."""
    met = [c for c in covers if c.agreement.starts <= until and now < c.agreement.ends]
    reached = now  # every moment before it is covered
    for a in sorted((c.agreement for c in met), key=lambda a: a.starts):
        if a.starts > reached:
            return ()  # a moment between agreements
        reached = max(reached, a.ends)
    return tuple(met) if met and reached > until else ()


def _check_cover(cover: CompiledCover, alert: Mapping[str, Any], partner: PartnerInfo, f: _Facts, fails: Fails) -> None:
    """The agreement's own limits and the rule's conditions. Unknown markings rank -1: already withheld."""
    a = cover.agreement
    if f.cls_rank > a.max_rank:
        fails.append((f"{a.id}.max_classification", f"{a.id} allows up to {a.max_classification}"))
    if f.rel_rank > a.min_ranks[0] or f.cred_rank > a.min_ranks[1]:
        fails.append((f"{a.id}.min_grading", f"{a.id} needs grading {a.min_grading} or better"))
    for rule_id, condition in cover.conditions:
        problem = condition(alert, partner)
        if problem is not None:
            if len(problem) > CONDITION_LIMIT:  # a condition may quote an alert value whole
                problem = problem[: CONDITION_LIMIT - 1] + "…"
            fails.append((rule_id, f"{cover.rule_id}: {problem}"))


def _decide(alert: Mapping[str, Any], partner_id: str, ps: PolicySet, now: datetime,
            until: datetime | None) -> Decision:
    partner = ps.partners.get(partner_id)
    if partner is None:
        return _unknown_partner(ps, partner_id)
    latest = _latest(now, until)
    if latest is None:
        return _withhold(ps, partner.id, (), [(TIME_NAIVE, "a decision time (now, or until) is not a datetime with a "
                                                           "UTC offset")])
    return _decide_for(alert, partner, ps, now, _facts(alert, ps, latest), latest)


def _latest(now: Any, until: Any) -> datetime | None:
    """The later of the decision's two times (``until`` None: ``now``), or None when either is no datetime with a
    UTC offset."""
    if not isinstance(now, datetime) or now.utcoffset() is None:
        return None
    if until is None:
        return now
    if not isinstance(until, datetime) or until.utcoffset() is None:
        return None
    return until if until > now else now


def _unknown_partner(ps: PolicySet, partner_id: str) -> Decision:
    reason = f"partner {excerpt(partner_id)} is unknown to the policy"
    return _withhold(ps, _partner_label(partner_id), (), [(UNKNOWN_PARTNER, reason)])


def _partner_label(partner_id: Any) -> str:
    # The id the caller asked about; something other than a string (a caller's bug) is named by an
    # excerpt, since str() of an arbitrary object may be huge or raise.
    return partner_id if type(partner_id) is str else excerpt(partner_id)


def _decide_for(alert: Mapping[str, Any], partner: PartnerInfo, ps: PolicySet, now: datetime, f: _Facts,
                until: datetime) -> Decision:
    """One known partner's decision, at checked times (``now`` at most ``until``), from the alert's facts (taken at
    ``until``)."""
    fails: Fails = []
    notices: Fails = []
    cls_rank = f.cls_rank
    if cls_rank < 0:
        fails.append((UNKNOWN_CLASSIFICATION, f"the classification is not on the policy's scale "
                                              f"({_listed(ps.class_rank)})"))
    elif cls_rank > partner.clearance_rank:
        fails.append((CLEARANCE, f"{f.cls} is above {partner.id}'s clearance ({partner.clearance})"))
    if f.grading_fail is not None:
        fails.append(f.grading_fail)
    _check_markings(ps, partner, f, fails, notices)
    if f.area_fail is not None:
        fails.append(f.area_fail)
    if f.expired_fail is not None:
        fails.append(f.expired_fail)
    considered, covers = _covers(ps, partner, alert["alert_type"], now, until, fails)
    for cover in covers:
        _check_cover(cover, alert, partner, f, fails)
    if fails:
        return _withhold(ps, partner.id, considered, fails)  # a withheld alert needs no review notice
    decision = _deliver(ps, partner, covers, notices)
    if f.review_notice is not None:
        decision = _with_review(decision, f.review_notice)
    return decision


def _with_review(decision: Decision, notice: tuple[str, str]) -> Decision:
    """The delivery with the review notice last among its rules and reasons.

    Kept out of ``_deliver``'s memo on purpose: the notice quotes each alert's own review date, so keyed
    there every overdue alert would be an entry of its own (bounded by MEMO_LIMIT/MEMO_BYTES, but a backlog
    of overdue alerts would keep filling and clearing the memo, and with it the decisions every other
    alert shares). The memo keeps the decision without it, shared as before; an overdue alert pays one
    uncached Decision, what a memo miss costs. Nor is it among ``notices``: it says nothing of consent,
    so it leaves onward sharing as the covers and the other notices set it.
    """
    rule, reason = notice
    return replace(decision, rule_ids=(*decision.rule_ids, rule), reasons=(*decision.reasons, reason))


def decide(alert: Mapping[str, Any], partner_id: str, policy_set: PolicySet, now: datetime,
           until: datetime | None = None) -> Decision:
    """Deliver, deliver redacted or withhold ``alert`` to ``partner_id`` at ``now`` (tz-aware).

    ``until``, when later than ``now``, is the latest the present may be: two clocks that disagree (the worker's,
    and Kafka's time of the record) leave the present anywhere between them, so the decision holds for every
    moment there. An agreement must be in force from ``now`` to ``until``, and the alert's expiry and review dates
    are held to ``until``: a slow clock never delivers past an agreement's end or an alert's expiry.

    ``alert`` is the dict the alert codec decodes. Never raises for bad
    input: an unknown partner, a naive time or a malformed alert withholds,
    whatever the fault (an OverflowError or a RecursionError as much as a KeyError).
    """
    try:
        return _decide(alert, partner_id, policy_set, now, until)
    except Exception as exc:  # noqa: BLE001 - any fault an alert causes withholds; KeyboardInterrupt is not one
        return _malformed(policy_set, partner_id, exc)


def decide_many(alert: Mapping[str, Any], partner_ids: Sequence[str], policy_set: PolicySet,
                now: datetime, until: datetime | None = None) -> list[Decision]:
    """``decide`` for several partners, with what they all read from the alert looked up once.

    The same decisions, reasons in the same order, as calling ``decide`` for each partner.
    """
    latest = _latest(now, until)
    if latest is None:
        return [decide(alert, p, policy_set, now, until) for p in partner_ids]
    try:
        facts = _facts(alert, policy_set, latest)
    except Exception:  # noqa: BLE001 - decide withholds it for each partner, naming the fault
        return [decide(alert, p, policy_set, now, until) for p in partner_ids]
    out = []
    partners = policy_set.partners
    for partner_id in partner_ids:
        try:
            partner = partners.get(partner_id)
            if partner is None:
                out.append(_unknown_partner(policy_set, partner_id))
                continue
            out.append(_decide_for(alert, partner, policy_set, now, facts, latest))
        except Exception as exc:  # noqa: BLE001 - as in decide
            out.append(_malformed(policy_set, partner_id, exc))
    return out


def _malformed(policy_set: PolicySet, partner_id: str, exc: Exception) -> Decision:
    # Name only the kind of fault: the message of a KeyError or TypeError may quote alert content.
    reason = f"the alert is malformed ({type(exc).__name__}); nothing is released until it is fixed"
    return _withhold(policy_set, _partner_label(partner_id), (), [(ALERT_MALFORMED, reason)])
