"""Review dates: ``markings.review_at`` is when the partner must review its copy (vocabulary.yaml), not a
deletion date (``expires_at`` is that, and withholds). An alert already past its review date goes where it
would go anyway; each delivery records it, a notice (alert.review_overdue), so an auditor can tell why a
partner got an alert already due for review."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from worker_fakes import counted

from broker.audit.recalls import DEFAULT_ACK_HOURS, deadline_hours
from broker.pipeline import Originator, Outcome, Pipeline
from broker.topology import Slots, TopicNames, key_partition
from policies import (
    Decision,
    PolicySet,
    alert_reference,
    build_view,
    decide,
    decide_many,
    explain,
    load_policy_set,
    recall_notice,
)
from policies._decide import ALERT_EXPIRED, ALERT_REVIEW_OVERDUE, MEMO_LIMIT
from policies._decision import day_of
from policies._suite import all_rules
from puente import wire
from puente.wire import Record
from schemas import alert_codec

MakeAlert = Callable[..., dict[str, Any]]
FIXTURES = ("darien_sighting", "paso_canoas_flow", "gofast_seizure", "tocumen_hit", "colombia_inbound_hit")
KEY = b"unit-test-pseudonym-key-32-bytes"


def _reviewed(make_alert: MakeAlert, name: str, review_at: datetime | None) -> dict[str, Any]:
    alert = make_alert(name)
    alert["markings"]["review_at"] = review_at
    return alert


def _text(due: datetime) -> str:
    return (f"review_overdue: the alert is due for review on {due.date().isoformat()} ({due.isoformat()}); the "
            "partner's store lists it as due")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _with_notice(base: Decision, due: datetime) -> Decision:
    """``base`` (the decision without a review date) as a delivery past ``due`` must read: the notice last."""
    return Decision(base.outcome, base.partner_id, base.agreement_ids, (*base.rule_ids, ALERT_REVIEW_OVERDUE),
                    (*base.reasons, _text(due)), base.redactions, base.policy_version, base.retention_days,
                    base.onward_sharing)  # fmt: skip


@pytest.mark.parametrize("name", FIXTURES)
def test_an_alert_past_its_review_date_goes_where_it_would_with_the_notice(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, name: str
) -> None:
    """Past review_at, every partner that gets the alert without a review date still gets it, the same way
    (agreements, redactions, retention, onward sharing), with alert.review_overdue and its reason added last;
    every partner it is withheld from gets the same withholding, without the notice. decide_many agrees."""
    due = now - timedelta(days=1)
    alert = _reviewed(make_alert, name, due)
    partners = sorted(policy_set.partners)
    decisions = decide_many(alert, partners, policy_set, now)
    assert decisions == [decide(alert, p, policy_set, now) for p in partners]
    for partner, got in zip(partners, decisions, strict=True):
        base = decide(make_alert(name), partner, policy_set, now)
        assert got == (_with_notice(base, due) if base.delivers else base), partner
    assert any(d.delivers for d in decisions)


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("later", [timedelta(0), timedelta(days=1), None])
def test_a_review_date_still_ahead_or_none_changes_no_decision(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, name: str, later: timedelta | None
) -> None:
    """review_at on a day after the decision time's (from the next day's first instant), or null (no review
    date), gives the decision the alert had without one, with no notice."""
    base = make_alert(name)
    assert base["markings"]["review_at"] is None
    tomorrow = day_of(now) + timedelta(days=1)
    alert = _reviewed(make_alert, name, None if later is None else tomorrow + later)
    partners = sorted(policy_set.partners)
    assert decide_many(alert, partners, policy_set, now) == decide_many(base, partners, policy_set, now)
    for partner in partners:
        got = decide(alert, partner, policy_set, now)
        assert got == decide(base, partner, policy_set, now)
        assert ALERT_REVIEW_OVERDUE not in got.rule_ids
    assert any(decide(alert, p, policy_set, now).delivers for p in partners)


def test_a_review_date_equal_to_the_decision_time_is_overdue(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime
) -> None:
    """As with expiry (expires_at <= now), an alert is overdue at its review instant itself, not only after it;
    at its expiry instant it is withheld, at its review instant delivered with the notice."""
    at_review = decide(_reviewed(make_alert, "darien_sighting", now), "COL", policy_set, now)
    assert at_review.delivers
    assert at_review.rule_ids == ("COMBIFRON-BORDER", ALERT_REVIEW_OVERDUE)
    assert at_review.reasons[-1] == _text(now)
    at_expiry = make_alert("darien_sighting")
    at_expiry["markings"]["expires_at"] = now
    assert decide(at_expiry, "COL", policy_set, now).rule_ids == (ALERT_EXPIRED,)


def test_a_review_date_later_the_same_day_is_overdue_as_partners_see_it(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime
) -> None:
    """Partners' views state review_at and expires_at to the day (``day_of``), so the decision reads them as
    that day too: a review later the day of the decision gives the notice, and an expiry later that day
    withholds (a view the partner's store would hold as expired on arrival is never sent)."""
    later = day_of(now) + timedelta(hours=23, minutes=59)
    assert later > now
    reviewed = decide(_reviewed(make_alert, "darien_sighting", later), "COL", policy_set, now)
    assert reviewed.delivers
    assert reviewed.rule_ids == ("COMBIFRON-BORDER", ALERT_REVIEW_OVERDUE)
    assert reviewed.reasons[-1] == _text(later)
    expiring = make_alert("darien_sighting")
    expiring["markings"]["expires_at"] = later
    withheld = decide(expiring, "COL", policy_set, now)
    assert withheld.rule_ids == (ALERT_EXPIRED,)
    assert "partners' views state its day" in withheld.reasons[0]
    expiring["markings"]["expires_at"] = day_of(now) + timedelta(days=1)
    assert decide(expiring, "COL", policy_set, now).delivers


def test_the_reason_names_the_date_and_no_payload_value(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime
) -> None:
    """The reason names the review date and that the partner's store lists the alert as due; it quotes no value
    of the alert's payload, summary or place."""
    due = now - timedelta(days=3)
    alert = _reviewed(make_alert, "tocumen_hit", due)
    decision = decide(alert, "USA", policy_set, now)
    assert decision.delivers
    reason = decision.reasons[decision.rule_ids.index(ALERT_REVIEW_OVERDUE)]
    assert reason == _text(due)
    content = _strings(alert["payload"]) + _strings(alert["summary"]) + _strings(alert["location"])
    assert content
    for value in content:
        if len(value) > 3:  # a short code such as "ECU" may be a word of the sentence by chance
            assert value not in reason, value


def test_a_notice_beside_other_notices_comes_last(policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """With H1 (a notice of the policy's own) the decision lists the cover, H1, then the review notice."""
    due = now - timedelta(hours=2)
    alert = _reviewed(make_alert, "darien_sighting", due)
    alert["markings"]["handling_code"] = "H1"
    decision = decide(alert, "COL", policy_set, now)
    assert decision.rule_ids == ("COMBIFRON-BORDER", "handling.H1", ALERT_REVIEW_OVERDUE)
    assert decision.reasons[-1] == _text(due)


@pytest.mark.parametrize(("changes", "rules"), [
    ({"markings.expires_at": "2025-06-02T13:00:00Z", "markings.source_reliability": "D"},
     (ALERT_EXPIRED, "COMBIFRON.min_grading")),
    ({"markings.classification": "SECRETO"}, ("partner.clearance", "COMBIFRON.max_classification")),
    ({"markings.releasable_to": ["USA"]}, ("marking.releasability",)),
])  # fmt: skip
def test_an_alert_withheld_for_other_reasons_is_withheld_as_before(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, changes: dict[str, Any], rules: tuple[str, ...]
) -> None:
    """A review date past does not release what another rule withholds, and adds nothing to the withholding."""
    base = make_alert("darien_sighting", changes)
    alert = make_alert("darien_sighting", changes)
    alert["markings"]["review_at"] = now - timedelta(days=1)
    got = decide(alert, "COL", policy_set, now)
    assert not got.delivers and got.rule_ids == rules
    assert got == decide(base, "COL", policy_set, now)


def test_the_notice_leaves_onward_sharing_as_it_was(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime
) -> None:
    """The notice is not a consent: PAN-CRI's onward sharing stays allowed past review, and the same alert
    released to CRI on Colombia's consent (a notice that forbids onward sharing) still forbids it."""
    due = now - timedelta(days=1)
    for changes, onward in [({}, True),
                            ({"markings.originator.country": "COL", "markings.originator_consent": ["CRI"]}, False)]:
        flow = make_alert("paso_canoas_flow", changes)
        before = decide(flow, "CRI", policy_set, now)
        assert before.delivers and before.onward_sharing is onward
        assert ("originator.foreign" in before.rule_ids) is not onward
        flow["markings"]["review_at"] = due
        after = decide(flow, "CRI", policy_set, now)
        assert after == _with_notice(before, due) and after.onward_sharing is onward


def test_a_missing_review_date_key_is_malformed_not_none(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime
) -> None:
    """A decoded alert always has markings.review_at; one without the key is malformed, like one without
    expires_at, rather than read as "no review date"."""
    alert = make_alert("darien_sighting")
    del alert["markings"]["review_at"]
    assert decide(alert, "COL", policy_set, now).rule_ids == ("alert.malformed",)
    assert [d.rule_ids for d in decide_many(alert, ["COL", "USA"], policy_set, now)] == [("alert.malformed",)] * 2
    alert["markings"]["review_at"] = "2025-01-01"  # a string, not a time: malformed too
    assert decide(alert, "COL", policy_set, now).rule_ids == ("alert.malformed",)


def test_overdue_alerts_add_nothing_to_the_memo(make_alert: MakeAlert, now: datetime) -> None:
    """The memo shares the delivery without the notice: many overdue alerts, each with its own review date,
    leave the memo as one alert without a review date does, and the shared decision never gains the notice."""
    ps = load_policy_set()  # a memo of its own
    base = make_alert("darien_sighting")
    plain = decide(base, "COL", ps, now)
    before = dict(ps.memo)
    for i in range(MEMO_LIMIT // 100):
        due = now - timedelta(seconds=i)
        got = decide(_reviewed(make_alert, "darien_sighting", due), "COL", ps, now)
        assert got.reasons[-1] == _text(due)
    assert dict(ps.memo) == before
    assert decide(base, "COL", ps, now) is plain and ALERT_REVIEW_OVERDUE not in plain.rule_ids


def test_explain_shows_the_notice_and_the_view(policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """``policy explain`` shows the delivery, the rule id among its rules, the reason, and the partner's view."""
    due = now - timedelta(days=1)
    alert = _reviewed(make_alert, "darien_sighting", due)
    decision = decide(alert, "COL", policy_set, now)
    text = explain(alert, decision, policy_set, now, build_view(alert, decision, policy_set, KEY))
    assert "Decision   DELIVER_REDACTED under COMBIFRON" in text
    assert f"Rules      COMBIFRON-BORDER, {ALERT_REVIEW_OVERDUE}" in text
    assert f"  - {_text(due)}" in text.splitlines() and "Partner's view" in text


def test_every_suite_must_exercise_the_overdue_rule(policy_set: PolicySet) -> None:
    """Any valid alert can carry the notice, and a suite sees it among a delivery's rules, so ``puente policy
    test`` counts it as a rule to exercise."""
    assert ALERT_REVIEW_OVERDUE in all_rules(policy_set) and ALERT_EXPIRED in all_rules(policy_set)


# An update reaching the broker's pipeline (pure): a new version past its review date reaches the partners
# holding the alert as an update, the notice in the audit; a new version past its expiry recalls it.

CODEC = alert_codec()
SLOTS = Slots(("SENAFRONT",), 3, TopicNames("t"))
ORIGINATORS = {"SENAFRONT": Originator.of("SENAFRONT", "PAN", "PAN")}


class _Routed:
    """A policy decision as the pipeline reads it (``broker.service.RoutedDecision`` without its keystore)."""

    def __init__(self, d: Decision) -> None:
        self.decision, self.partner, self.outcome = d, d.partner_id, d.outcome.value
        self.agreement, self.rules, self.reasons = d.agreement_id, d.rule_ids, d.reasons
        self.redactions = tuple((r.path, r.action) for r in d.redactions)
        self.policy_version = d.policy_version
        self.audit = {"partner": d.partner_id, "decision": self.outcome, "agreement": d.agreement_id,
                      "rules": list(d.rule_ids), "reasons": list(d.reasons), "redacted": [],
                      "policy_version": d.policy_version}


class _Policy:
    """The shipped policy set behind the pipeline's port, with a fixed pseudonym key."""

    def __init__(self, ps: PolicySet) -> None:
        self.ps, self.version = ps, ps.version

    def partners(self) -> list[tuple[str, str]]:
        return [(p, f"t.feed.{p}") for p in sorted(self.ps.partners)]

    def decide(self, alert: dict[str, Any], partner: str, now: datetime) -> _Routed:
        return _Routed(decide(alert, partner, self.ps, now))

    def decide_all(self, alert: dict[str, Any], partners: Sequence[str], now: datetime,
                   until: Any = None) -> list[_Routed]:
        return [_Routed(d) for d in decide_many(alert, partners, self.ps, now, until)]

    def view(self, alert: dict[str, Any], decision: Any) -> dict[str, Any]:
        return build_view(alert, decision.decision, self.ps, KEY)

    def notice(self, alert: dict[str, Any], version: int, reason: str | None) -> dict[str, Any]:
        return recall_notice(alert, version, reason)

    def reference(self, partner: str, alert_id: str) -> str:
        return alert_reference(KEY, partner, alert_id)

    def recall_ack_hours(self, partner: str) -> int:
        return deadline_hours(self.ps.agreements.values()).get(partner, DEFAULT_ACK_HOURS)


class _Sealer:
    def seal(self, plaintext: bytes, **_: Any) -> bytes:
        return b"sealed"


class _Run:
    """One slot's pipeline, fed version after version at ``now``, remembering the states it writes."""

    def __init__(self, ps: PolicySet, now: datetime) -> None:
        self.now, self.now_ms = now, int(now.timestamp() * 1000)
        sealers: dict[str, Any] = {p: _Sealer() for p in ps.partners}
        self.pipeline = counted(Pipeline(_Policy(ps), CODEC, sealers, lambda h, v, k: ("SENAFRONT", self.now_ms),
                                         SLOTS, originators=ORIGINATORS))
        self.states: dict[str, Any] = {}
        self.seen: set[str] = set()
        self.offset = 0

    def send(self, alert: dict[str, Any]) -> Outcome:
        self.offset += 1
        key = alert["alert_id"].encode()
        rec = Record("t.ingress.SENAFRONT", key_partition(key, 3), self.offset, key, CODEC.encode(alert), (),
                     self.now_ms)
        out = self.pipeline.process(rec, self.seen, self.now, self.states.get)
        assert out.dead_letter is None, out.entry
        if out.seen_id:
            self.seen.add(out.seen_id)
        if out.state is not None:
            self.states[alert["alert_id"]] = out.state
        return out


def _version(alert: dict[str, Any], version: int, **markings: Any) -> dict[str, Any]:
    later = copy.deepcopy(alert)
    later["version"] = version
    later["lifecycle"] = {"action": "UPDATE", "reason": None, "partners": []}
    later["markings"].update(markings)
    return later


def _headers(out: Outcome) -> dict[str, str]:
    return {f.topic.rsplit(".", 1)[1]: dict(f.headers)[wire.DECISION].decode() for f in out.feeds}


def test_a_later_version_past_its_review_date_is_delivered_to_its_holders(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime
) -> None:
    """Partners holding version 1 get version 2, already past its review date, as an update (not a recall),
    with the notice in the audit; they hold version 2 after it."""
    run = _Run(policy_set, now)
    first = make_alert("darien_sighting")
    first["markings"]["review_at"] = now + timedelta(days=30)
    out = run.send(first)
    delivered = {p: d for p, d in _headers(out).items() if d != "WITHHOLD"}
    assert "COL" in delivered
    due = now - timedelta(minutes=1)
    out = run.send(_version(first, 2, review_at=due))
    assert {p: d for p, d in _headers(out).items() if d != "WITHHOLD"} == delivered
    assert "RECALL" not in _headers(out).values()
    assert out.state is not None and out.state.holders == dict.fromkeys(delivered, 2)
    for d in out.entry["decisions"]:
        if d["partner"] in delivered:
            assert d["decision"] == delivered[d["partner"]] and d["rules"][-1] == ALERT_REVIEW_OVERDUE, d
            assert d["reasons"][-1] == _text(due), d
        else:
            assert d["decision"] == "WITHHOLD" and ALERT_REVIEW_OVERDUE not in d["rules"], d


def test_a_later_version_past_its_expiry_still_recalls_it_from_its_holders(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime
) -> None:
    """By contrast expiry is deletion: holders of version 1 get a recall notice for version 2 past its expiry,
    naming alert.expired; version 3, with a later expiry, reaches them again."""
    run = _Run(policy_set, now)
    first = make_alert("darien_sighting")
    first["markings"]["expires_at"] = now + timedelta(days=30)
    out = run.send(first)
    holders = {p for p, d in _headers(out).items() if d != "WITHHOLD"}
    assert "COL" in holders
    out = run.send(_version(first, 2, expires_at=now - timedelta(minutes=1)))
    assert _headers(out) == dict.fromkeys(holders, "RECALL")
    assert out.state is not None and out.state.holders == {}
    why = decide(_version(first, 2, expires_at=now - timedelta(minutes=1)), "COL", policy_set, now).reasons
    for d in out.entry["decisions"]:
        if d["decision"] == "RECALL":  # the notice's audit entry gives the withholding reasons, then what was held
            assert d["rules"] == ["lifecycle.recall"] and d["reasons"] == [*why, "held version 1, which this "
                                                                            "version no longer lets it keep"], d
        else:
            assert d["decision"] == "WITHHOLD" and ALERT_EXPIRED in d["rules"], d
    out = run.send(_version(first, 3, expires_at=now + timedelta(days=60)))
    assert {p for p, d in _headers(out).items() if d != "WITHHOLD"} == holders
