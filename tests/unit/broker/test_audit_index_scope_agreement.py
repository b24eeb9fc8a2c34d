"""A partner's auditor reads no agreement of a decision its partner was not sent: a withheld decision names the
partner's agreements that cover the alert's type, so the agreement would say what type the alert was."""

from __future__ import annotations

from pathlib import Path

from broker.audit import ChainWriter
from broker.audit_index import AuditIndex, Query, Scope

from .test_audit_index import DECISIONS, _alert, _decision, _ingest, _signer

USA = Scope("USA")
# USA's agreements cover different types: the one a withheld decision names says which type the alert was.
UNSENT = ("USA-ARMS", "USA-MIGRATION")


def _index(tmp_path: Path) -> AuditIndex:
    """A:1 withheld from USA though USA-ARMS covers its type (sent to COL); M:1 decided for USA under USA-MIGRATION,
    its feed record never sent; N:1 withheld, no agreement covering its type; S:1 delivered to USA under USA-PAN."""
    writer = ChainWriter(DECISIONS, 0)
    alerts = [
        _alert("A:1", 0, [_decision("USA", "WITHHOLD", ["partner.clearance"], agreement="USA-ARMS"),
                          _decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")]),
        _alert("M:1", 1, [_decision("USA", "DELIVER", ["usa.cover"], agreement="USA-MIGRATION", sent=False)]),
        _alert("N:1", 2, [_decision("USA", "WITHHOLD", ["agreement.coverage"])]),
        _alert("S:1", 3, [_decision("USA", "DELIVER", ["usa.cover"], feed="t.feed.USA")]),
    ]
    index = AuditIndex(tmp_path / "r" / "index.sqlite")
    _ingest(index, {DECISIONS: [writer.block(alerts, "broker-sign-2026a", _signer("broker-sign-2026a"), "t")]})
    return index


def test_a_partner_auditors_rows_name_no_agreement_of_what_it_was_not_sent(tmp_path: Path) -> None:
    """Searched and exported, a row whose view did not go to USA reads no agreement; a delivered row reads the one
    its feed record was sent under; the national auditor reads every one."""
    index = _index(tmp_path)
    for rows in (index.search(USA, Query()).rows, list(index.export(USA, Query()))):
        assert sorted((r["delivered"], r["agreement"] or "") for r in rows) == [
            (False, ""), (False, ""), (False, ""), (True, "USA-PAN")]
        assert not any(a in repr(rows) for a in UNSENT)
    assert set(UNSENT) <= {r["agreement"] for r in index.search(Scope(), Query()).rows}


def test_a_partner_auditors_agreement_filter_matches_only_delivered_rows(tmp_path: Path) -> None:
    """Filtering by an agreement matches no row whose view did not go to USA (neither listed nor counted): only the
    delivered ones, where USA reads it; the national auditor's filter matches every row."""
    index = _index(tmp_path)
    for agreement in UNSENT:
        for q in (Query(agreement=agreement), Query(agreement=agreement, decision="WITHHOLD"),
                  Query(agreement=agreement, rule="usa.cover"), Query(agreement=agreement, alert="withheld-*")):
            found = index.search(USA, q)
            assert (found.total, found.rows, index.count(USA, q), list(index.export(USA, q))) == (0, [], 0, [])
        assert index.search(Scope(), Query(agreement=agreement)).total == 1
    delivered = index.search(USA, Query(agreement="USA-PAN"))
    assert [(r["delivered"], r["agreement"]) for r in delivered.rows] == [(True, "USA-PAN")]
    assert delivered.total == index.count(USA, Query(agreement="USA-PAN")) == 1


def test_a_partner_auditors_agreement_choices_are_those_of_delivered_rows(tmp_path: Path) -> None:
    """The agreement choices are those USA's auditor reads on its rows: its delivered rows' alone."""
    index = _index(tmp_path)
    assert index.facets(USA)["agreements"] == ["USA-PAN"]
    assert set(UNSENT) | {"COL-PAN", "USA-PAN"} <= set(index.facets(Scope())["agreements"])


def test_a_partner_auditors_timeline_and_why_name_no_agreement_of_what_it_was_not_sent(tmp_path: Path) -> None:
    """An alert's timeline and "why" read a withheld or unsent decision's agreement as its rows do: none; a delivered
    one's as it is."""
    index = _index(tmp_path)
    rows = index.search(USA, Query()).rows
    unsent = [r["alert_id"] for r in rows if not r["delivered"]]
    assert len(unsent) == 3
    for alert in unsent:
        events = [e for e in index.timeline(USA, alert) or [] if e["partner"] == "USA"]
        assert events and all(e["agreement"] is None for e in events), events
        why = index.why(USA, alert, "USA", "subject.name")
        assert why and all(w["agreement"] is None for w in why), why
    sent = next(r["alert_id"] for r in rows if r["delivered"])
    assert [e["agreement"] for e in index.timeline(USA, sent) or [] if e["partner"] == "USA"] == ["USA-PAN"]
    assert [w["agreement"] for w in index.why(USA, sent, "USA", "subject.name")] == ["USA-PAN"]
    assert index.why(Scope(), "A:1", "USA", "subject.name")[0]["agreement"] == "USA-ARMS"
