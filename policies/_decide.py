"""The decision core: one alert, one partner, the policy set and a time in; a Decision out.

Pure: no I/O, no clock, no globals. Default deny: an alert is delivered only
when an agreement in force covers it and no check fails; every check runs,
so a withheld decision lists every reason, and any one of them withholds
(the most restrictive rule wins). A value the policy does not know
withholds. A malformed alert withholds too, rather than raising.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from policies._compile import CompiledCover, PartnerInfo, PolicySet
from policies._decision import Decision, Outcome
from policies._model import Effect

# Rule ids of the checks that do not come from an agreement. Agreement rules add
# "<agreement>.validity", "<agreement>.max_classification", "<agreement>.min_grading",
# "<rule>" when it releases and "<rule>.<condition>" when a condition fails.
ALERT_MALFORMED = "alert.malformed"
ALERT_EXPIRED = "alert.expired"
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
CLEARANCE = "partner.clearance"
RELEASABILITY = "marking.releasability"
ORIGINATOR_FOREIGN = "originator.foreign"
NO_AGREEMENT = "agreement.none"
NOT_COVERED = "agreement.coverage"

Fails = list[tuple[str, str]]
MEMO_LIMIT = 50_000  # shared decisions kept per policy set; a few MB at most


def _withhold(ps: PolicySet, partner_id: str, agreements: Sequence[str], fails: Fails) -> Decision:
    # Building a frozen dataclass costs more than the checks; equal reasons give an equal decision,
    # so decisions are shared through a bounded memo (bounded: reasons may quote alert values).
    key = (partner_id, tuple(agreements), tuple(fails))
    found = ps.memo.get(key)
    if found is not None:
        return found
    rule_ids, reasons = zip(*fails, strict=True)
    decision = Decision(
        Outcome.WITHHOLD, partner_id, tuple(dict.fromkeys(agreements)), tuple(dict.fromkeys(rule_ids)),
        reasons, (), ps.version,
    )  # fmt: skip
    _remember(ps, key, decision)
    return decision


def _remember(ps: PolicySet, key: tuple[Any, ...], decision: Decision) -> None:
    if len(ps.memo) >= MEMO_LIMIT:
        ps.memo.clear()
    ps.memo[key] = decision


def _deliver(ps: PolicySet, partner: PartnerInfo, covers: tuple[CompiledCover, ...], notices: Fails) -> Decision:
    key = (partner.id, covers, tuple(notices))  # covers hash by identity: cheap
    found = ps.memo.get(key)
    if found is not None:
        return found
    redactions = tuple(r for c in covers for r in c.redactions)
    decision = Decision(
        Outcome.DELIVER_REDACTED if redactions else Outcome.DELIVER,
        partner.id,
        tuple(dict.fromkeys(c.agreement.id for c in covers)),
        tuple(c.rule_id for c in covers) + tuple(rule for rule, _ in notices),
        tuple(c.release_reason for c in covers) + tuple(reason for _, reason in notices),
        redactions,
        ps.version,
        min(c.agreement.retention_days for c in covers),
        all(c.agreement.onward_sharing for c in covers),
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
    elif effect is Effect.NEEDS_CONSENT and not consented:
        fails.append((code, f"{code.split('.', 1)[1]} needs the originator's consent for {partner.id}, not recorded"))


def _check_markings(ps: PolicySet, partner: PartnerInfo, m: Mapping[str, Any], fails: Fails, notices: Fails) -> None:
    consent = m["originator_consent"]
    if not ps.known_names.issuperset(consent):
        unknown = sorted(set(consent) - ps.known_names)
        fails.append((UNKNOWN_CONSENT, f"originator_consent names {', '.join(unknown)}, unknown to the policy"))
    consented = not partner.names.isdisjoint(consent)
    for caveat in m["caveats"]:
        effect = ps.caveat_effects.get(caveat)
        if effect is None:
            fails.append((UNKNOWN_CAVEAT, f"caveat {caveat!r} is unknown to the policy"))
        elif effect is not Effect.NONE:
            _restrict(ps, partner, "caveat." + caveat, effect, consented, fails, notices)
    code = m["handling_code"]
    effect = ps.handling_effects.get(code)
    if effect is None:
        fails.append((UNKNOWN_HANDLING, f"handling code {code!r} is unknown to the policy"))
    elif effect is not Effect.NONE:
        _restrict(ps, partner, "handling." + code, effect, consented, fails, notices)
    rel = m["releasable_to"]
    if not ps.known_names.issuperset(rel):
        unknown = sorted(set(rel) - ps.known_names)
        fails.append((UNKNOWN_RELEASABLE_TO, f"releasable_to names {', '.join(unknown)}, unknown to the policy"))
    if not partner.internal and partner.names.isdisjoint(rel):
        listed = ", ".join(rel) or "none outside " + ps.home_country
        fails.append((RELEASABILITY, f"releasable_to ({listed}) omits {partner.id}"))
    origin = m["originator"]["country"]
    if origin != ps.home_country:
        if origin not in ps.known_countries:
            fails.append((UNKNOWN_ORIGINATOR, f"originator country {origin!r} is unknown to the policy"))
        elif not (partner.internal or partner.country == origin or consented):
            reason = f"information from {origin} goes to a third country only with its consent"
            fails.append((ORIGINATOR_FOREIGN, reason))


def _covers(
    ps: PolicySet, partner: PartnerInfo, alert_type: Any, now: datetime, fails: Fails
) -> tuple[tuple[CompiledCover, ...], tuple[CompiledCover, ...]]:
    """(all covering agreement rules, those in force); when none applies, the reason is added."""
    covers = ps.covers_for.get((partner.id, alert_type))
    if covers is None:
        if alert_type not in ps.alert_types:
            fails.append((UNKNOWN_ALERT_TYPE, f"alert type {alert_type!r} is unknown to the policy"))
        elif any(partner.id in a.partner_ids for a in ps.agreements.values()):
            fails.append((NOT_COVERED, f"no agreement with {partner.id} covers {alert_type} alerts"))
        else:
            fails.append((NO_AGREEMENT, f"there is no agreement with {partner.id}"))
        return (), ()
    live: tuple[CompiledCover, ...] = ()
    if len(covers) == 1:  # the usual case, without building a generator
        a = covers[0].agreement
        if a.starts <= now < a.ends:
            live = covers
    else:
        live = tuple(c for c in covers if c.agreement.starts <= now < c.agreement.ends)
    if not live:
        for c in covers:
            a = c.agreement
            state = "expired" if now >= a.ends else "not yet in force"
            fails.append((f"{a.id}.validity", f"{a.id} is {state} (valid {a.valid_from} to {a.valid_until})"))
    return covers, live


def _check_cover(
    cover: CompiledCover, alert: Mapping[str, Any], partner: PartnerInfo, ranks: tuple[int, int, int], fails: Fails
) -> None:
    """The agreement's own limits and the rule's conditions. Unknown markings rank -1: already withheld."""
    a = cover.agreement
    cls_rank, rel_rank, cred_rank = ranks
    if cls_rank > a.max_rank:
        fails.append((f"{a.id}.max_classification", f"{a.id} allows up to {a.max_classification}"))
    if rel_rank > a.min_ranks[0] or cred_rank > a.min_ranks[1]:
        fails.append((f"{a.id}.min_grading", f"{a.id} needs grading {a.min_grading} or better"))
    for rule_id, condition in cover.conditions:
        problem = condition(alert, partner)
        if problem is not None:
            fails.append((rule_id, f"{cover.rule_id}: {problem}"))


def _decide(alert: Mapping[str, Any], partner_id: str, ps: PolicySet, now: datetime) -> Decision:
    partner = ps.partners.get(partner_id)
    if partner is None:
        reason = f"partner {partner_id!r} is unknown to the policy"
        return _withhold(ps, str(partner_id), (), [(UNKNOWN_PARTNER, reason)])
    if not isinstance(now, datetime) or now.utcoffset() is None:
        return _withhold(ps, partner.id, (), [(TIME_NAIVE, "the decision time is not a datetime with a UTC offset")])
    fails: Fails = []
    notices: Fails = []
    m = alert["markings"]
    cls = m["classification"]
    cls_rank = ps.class_rank.get(cls, -1)
    if cls_rank < 0:
        fails.append((UNKNOWN_CLASSIFICATION, f"classification {cls!r} is not on the policy's scale"))
    elif cls_rank > partner.clearance_rank:
        fails.append((CLEARANCE, f"{cls} is above {partner.id}'s clearance ({partner.clearance})"))
    rel_rank = ps.reliability_rank.get(m["source_reliability"], -1)
    cred_rank = ps.credibility_rank.get(m["information_credibility"], -1)
    if rel_rank < 0 or cred_rank < 0:
        grade = f"{m['source_reliability']}{m['information_credibility']}"
        fails.append((UNKNOWN_GRADING, f"grading {grade!r} is unknown to the policy"))
    _check_markings(ps, partner, m, fails, notices)
    expires = m.get("expires_at")
    if expires is not None and expires <= now:
        fails.append((ALERT_EXPIRED, f"the alert expired at {expires.isoformat()}"))
    considered, covers = _covers(ps, partner, alert["alert_type"], now, fails)
    for cover in covers:
        _check_cover(cover, alert, partner, (cls_rank, rel_rank, cred_rank), fails)
    if fails:
        return _withhold(ps, partner.id, [c.agreement.id for c in considered], fails)
    return _deliver(ps, partner, covers, notices)


def decide(alert: Mapping[str, Any], partner_id: str, policy_set: PolicySet, now: datetime) -> Decision:
    """Deliver, deliver redacted or withhold ``alert`` to ``partner_id`` at ``now`` (tz-aware).

    ``alert`` is the dict the alert codec decodes. Never raises for bad
    input: an unknown partner, a naive time or a malformed alert withholds.
    """
    try:
        return _decide(alert, partner_id, policy_set, now)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        # Name only the kind of fault: the message of a KeyError or TypeError may quote alert content.
        reason = f"the alert is malformed ({type(exc).__name__}); nothing is released until it is fixed"
        return _withhold(policy_set, str(partner_id), (), [(ALERT_MALFORMED, reason)])
