"""A partner's auditor reads no rule id on the content of an alert its partner was not sent, wherever it reads rules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from broker.audit import ChainWriter
from broker.audit_index import AuditIndex, Query, Scope
from broker.audit_index._scope import CONTENT_RULE, OPEN_RULES, scoped, shown_rules
from policies import _decide

from .test_audit_index import DECISIONS, _alert, _decision, _ingest, _signer

USA = Scope("USA")
# Rule ids that are functions of an alert's content (its markings, its type, its classification), as the decisions
# about alerts USA was never sent name them.
CONTENT = ("caveat.PANAMA_ONLY", "handling.H2", "USA-WATCHLIST.watchlist", "partner.clearance")
EVERYTHING = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def _index(tmp_path: Path) -> AuditIndex:
    """P:1 withheld from USA by rules on its content (sent to COL); N:1 withheld by one on the decision's time alone;
    S:1 delivered to USA under a caveat's notice (the caveat is in its view: the envelope keeps it); D:1 decided
    for USA under the same caveat, its feed record never sent."""
    writer = ChainWriter(DECISIONS, 0)
    alerts = [
        _alert("P:1", 0, [_decision("USA", "WITHHOLD", [*CONTENT, "caveat.ORCON"]),
                          _decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")]),
        _alert("N:1", 1, [_decision("USA", "WITHHOLD", ["time.naive"])]),
        _alert("S:1", 2, [_decision("USA", "DELIVER", ["usa.cover", "caveat.ORCON"], feed="t.feed.USA")]),
        _alert("D:1", 3, [_decision("USA", "DELIVER", ["usa.cover", "caveat.ORCON"], sent=False)]),
    ]
    index = AuditIndex(tmp_path / "r" / "index.sqlite")
    _ingest(index, {DECISIONS: [writer.block(alerts, "broker-sign-2026a", _signer("broker-sign-2026a"), "t")]})
    return index


def _rules_read(rows: list[dict[str, Any]]) -> set[str]:
    return {r for row in rows for r in row.get("rules") or []}


def test_a_partner_auditors_rows_name_no_rule_on_content_it_was_not_sent(tmp_path: Path) -> None:
    """Searched and exported, a row whose view did not go to USA reads its rule ids on the alert's content as one
    placeholder (the open ones as they are); a delivered row reads its rules; the national auditor reads them all."""
    index = _index(tmp_path)
    for rows in (index.search(USA, Query()).rows, list(index.export(USA, Query()))):
        by_decision = sorted((r["decision"], r["delivered"], tuple(r["rules"])) for r in rows)
        assert by_decision == [("DELIVER", False, (CONTENT_RULE,)), ("DELIVER", True, ("usa.cover", "caveat.ORCON")),
                               ("WITHHOLD", False, (CONTENT_RULE,)), ("WITHHOLD", False, ("time.naive",))]
        assert not any(rule in repr(rows) for rule in CONTENT)
    assert set(CONTENT) <= _rules_read(index.search(Scope(), Query()).rows)


@pytest.mark.parametrize("rule", [*CONTENT, "caveat.ORCON", CONTENT_RULE])
def test_a_partner_auditors_rule_filter_matches_only_rows_it_reads_the_rule_on(tmp_path: Path, rule: str) -> None:
    """Filtering by a rule on the content matches no row whose view did not go to USA (the withheld alerts of a
    marking are neither listed nor counted), only delivered rows, where USA reads it; the placeholder matches
    nothing; the national auditor's filter matches every row."""
    index = _index(tmp_path)
    for q in (Query(rule=rule), Query(rule=rule, decision="WITHHOLD"), Query(rule=rule, since=EVERYTHING[0])):
        found = index.search(USA, q)
        assert all(r["delivered"] and rule in r["rules"] for r in found.rows)
        assert found.total == len(found.rows) == index.count(USA, q) == len(list(index.export(USA, q)))
    delivered = index.search(USA, Query(rule=rule)).rows
    assert [r["rules"] for r in delivered] == ([["usa.cover", "caveat.ORCON"]] if rule == "caveat.ORCON" else [])
    assert index.search(Scope(), Query(rule=rule, decision="WITHHOLD")).total == (rule != CONTENT_RULE)


def test_a_partner_auditors_open_rule_filter_matches_its_withheld_rows(tmp_path: Path) -> None:
    """A rule on nothing of the alert (``OPEN_RULES``) is read, and matched, on every row of USA's."""
    index = _index(tmp_path)
    found = index.search(USA, Query(rule="time.naive", decision="WITHHOLD")).rows
    assert [(r["decision"], r["rules"]) for r in found] == [("WITHHOLD", ["time.naive"])]


def test_a_partner_auditors_choices_list_only_rules_it_reads(tmp_path: Path) -> None:
    """The rule choices are the rules USA's auditor reads on its rows: its delivered rows' and the open ones."""
    index = _index(tmp_path)
    assert index.facets(USA)["rules"] == ["caveat.ORCON", "time.naive", "usa.cover"]
    assert set(CONTENT) <= set(index.facets(Scope())["rules"])


def test_a_partner_auditors_withheld_by_reason_counts_no_rule_on_content(tmp_path: Path) -> None:
    """"Withheld by reason" counts a withheld row by its first rule as USA reads it: a rule on the content as the
    placeholder, over the whole index and over a window alike; the national auditor's by the rule itself."""
    index = _index(tmp_path)
    for found in (index.indicators(USA), index.indicators(USA, *EVERYTHING)):
        assert sorted((r["reason"], r["count"]) for r in found["withheld_by_reason"]) == [(CONTENT_RULE, 1),
                                                                                         ("time.naive", 1)]
        assert not any(rule in repr(found) for rule in CONTENT)
    national = index.indicators(Scope())["withheld_by_reason"]
    assert {"reason": "caveat.PANAMA_ONLY", "partner": "USA", "count": 1} in national


def test_a_partner_auditors_timeline_and_why_name_no_rule_on_content(tmp_path: Path) -> None:
    """An alert's timeline and "why" read a withheld or unsent decision's rules as its rows do."""
    index = _index(tmp_path)
    rows = index.search(USA, Query()).rows
    named = {tuple(r["rules"]): r["alert_id"] for r in rows if not r["delivered"] and r["decision"] == "WITHHOLD"}
    for alert in (named[(CONTENT_RULE,)], next(r["alert_id"] for r in rows if r["decision"] == "DELIVER"
                                                 and not r["delivered"])):
        events = [e for e in index.timeline(USA, alert) or [] if e["partner"] == "USA"]
        assert events and all(e["rules"] == [CONTENT_RULE] for e in events), events
        why = index.why(USA, alert, "USA", "subject.name")
        assert why and all((w["rules"], w["rule"]) == ([CONTENT_RULE], CONTENT_RULE) for w in why), why
    open_one = named[("time.naive",)]
    assert index.why(USA, open_one, "USA", "subject.name")[0]["rule"] == "time.naive"
    national = index.why(Scope(), "P:1", "USA", "subject.name")[0]
    assert (national["rule"], national["rules"]) == ("caveat.PANAMA_ONLY", [*CONTENT, "caveat.ORCON"])


def test_shown_rules_keeps_the_open_ids_and_one_placeholder_where_the_first_other_stood() -> None:
    """Open ids as they are, in order; every other id (or a value that is no id) as one placeholder, once, where the
    first of them stood: neither which nor how many."""
    assert shown_rules(["caveat.A", "time.naive", "caveat.B", 7, "unknown.partner"]) == [
        CONTENT_RULE, "time.naive", "unknown.partner"]
    assert shown_rules([]) == []
    row = {"kind": "WITHHELD", "partner": "USA", "rules": ["caveat.A", "time.naive"]}
    assert scoped(USA, row)["rules"] == [CONTENT_RULE, "time.naive"]
    assert scoped(Scope(), row)["rules"] == ["caveat.A", "time.naive"]


def test_the_open_rules_are_the_policy_cores_own_ids() -> None:
    """Each open rule id is one the decision core makes (a renamed one would fall to the placeholder, unnoticed)."""
    assert {_decide.UNKNOWN_PARTNER, _decide.TIME_NAIVE} == OPEN_RULES
