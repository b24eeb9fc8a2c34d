"""A partner's auditor's queries walk that partner's rows only: every search of the decisions table that any public
reading method of the index makes for a scoped auditor uses an index its partner leads (or one that finds one alert's
rows of that partner), whatever the planner's statistics say. Otherwise how long an answer takes grows with the other
partners' decisions, which a partner's auditor must not be able to measure.

A search of the decisions by id (a rowid seek) is allowed only where the ids come from a list its partner leads:
the rule rows of that partner (``rules_by_partner``, ``partner=?`` first), listed beside the seek as the subquery
that feeds it (a scoped search by a rule its partner's rows seldom name, ``RULE_SEEKS``). Each id found there is one
of the partner's own rows, so the seeks, like the list, grow with that partner's rows alone; a seek by ids any other
list gives is judged as any other search of the decisions."""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import re
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.audit_index import AuditIndex, Query, Scope
from broker.audit_index import _index as _index_module
from tests.unit.broker.test_audit_index import T0, _ingest, _topics

USA = Scope("USA")
PARTNER_LED = frozenset({"decisions_by_partner", "decisions_by_partner_decision", "decisions_by_partner_alert",
                         "decisions_shared_by_partner", "decisions_withheld", "decisions_to_delivery",
                         "decisions_to_receipt"})
"""Indexes whose first column is the partner: a search of one seeks ``partner=?`` first."""
ONE_ALERT = frozenset({"decisions_by_alert", "decisions_held", "decisions_recalls", "decisions_by_name"})
"""Indexes of one alert's rows, partner second: a search that seeks ``partner=?`` too reads that partner's rows of
the alert alone."""
BY_ALIAS = "decisions_by_alias"
"""An alias is an HMAC of partner and alert under the index's key (``_scope.alias``): ``alias=?`` finds one partner's
rows of one alert."""
_PLAN = re.compile(r"(?:SCAN|SEARCH) (?:TABLE )?(\S+)(?: AS (\S+))?(?: USING (?:(?:COVERING )?INDEX (\w+)|(INTEGER "
                   r"PRIMARY KEY))(?: \((.*)\))?)?")
"""A plan line's search: its table (or alias), the alias an SQLite before 3.24 adds (``SCAN TABLE decisions AS d``),
and the index, or a rowid seek, with what it seeks by."""
_PARTNERS_RULES = re.compile(r"SEARCH (?:TABLE )?decision_rules USING (?:COVERING )?INDEX rules_by_partner "
                             r"\(partner=\?")
JUDGED_AT_LEAST = 200
"""How many searches of the decisions the plans of a run hold at least (about 280): a plan this test no longer
reads (another SQLite's words) judges none, and must fail rather than pass."""


class _Recording(sqlite3.Connection):
    """A connection that notes every statement it runs, with its parameters."""

    ran: list[tuple[str, Any]]

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        self.ran.append((sql, parameters))
        return super().execute(sql, parameters)


def _values(index: AuditIndex) -> dict[tuple[str, str], list[Any]]:
    """Every value a scoped reading method's parameters are tried with, by the parameter's name and type (as
    written). A method with a required parameter not named here fails the test: a new one is learnt here, never
    skipped; an optional one not named here keeps its default."""
    rows = index.search(USA, Query()).rows
    held = next(r["alert_id"] for r in rows if r["delivered"])  # as USA knows it (its blocks name no reference)
    alias = next(r["alert_id"] for r in rows if r["alert_id"].startswith("withheld-"))
    samples = {"partner": "USA", "alert": held, "agency": "SENAFRONT", "agreement": "USA-PAN", "rule": "usa.cover",
               "decision": "DELIVER", "alert_type": "SMUGGLING", "since": T0, "until": T0 + timedelta(days=1)}
    queries = [Query(), Query(**samples), Query(alert=alias), Query(alert=f"{held[:3]}*"), Query(alert="withheld-*"),
               Query(alert="SNM:1"), *(Query(**{f.name: samples[f.name]}) for f in dataclasses.fields(Query))]
    names = [held, alias, "SNM:1", "nothing"]
    return {("q", "Query"): queries, ("alert_id", "str"): names, ("given", "str"): names, ("partner", "str"): ["USA"],
            ("partner", "str | None"): [None, "USA"], ("field", "str"): ["subject.name", "sector"],
            ("older_than", "timedelta"): [timedelta(0)], ("now", "datetime"): [T0 + timedelta(days=1)],
            ("since", "datetime | None"): [None, T0], ("until", "datetime | None"): [None, T0 + timedelta(days=1)]}


def _consumed(result: Any) -> None:
    """Read every row a method's answer streams (``export``, ``counted_export``)."""
    for part in result if isinstance(result, tuple) else (result,):
        if isinstance(part, Iterator):
            list(part)


def _scoped_statements(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[tuple[str, Any]], set[str]]:
    """What every public reading method of the index at ``path`` runs for USA's auditor, with every value tried, and
    the methods called."""
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: connect(*a, factory=_Recording, **k))
    _Recording.ran = []
    called = set()
    with AuditIndex(path, readonly=True) as index:
        values = _values(index)
        _Recording.ran.clear()
        for name, method in inspect.getmembers(AuditIndex, inspect.isfunction):
            params = list(inspect.signature(method).parameters.values())[1:]
            if name.startswith("_") or not params or params[0].name != "scope":
                continue
            tried = [p for p in params[1:] if (p.name, p.annotation) in values]
            missing = [p.name for p in params[1:] if p not in tried and p.default is inspect.Parameter.empty]
            assert not missing, f"{name}: learn values for {missing}"
            for combo in itertools.product(*(values[(p.name, p.annotation)] for p in tried)):
                _consumed(getattr(index, name)(USA, **{p.name: v for p, v in zip(tried, combo, strict=True)}))
            called.add(name)
    monkeypatch.setattr(sqlite3, "connect", connect)
    return list(_Recording.ran), called


def _wrong_searches(path: Path, statements: list[tuple[str, Any]]) -> tuple[list[str], int]:
    """Each search of the decisions table in ``statements``' plans that is not by an allowed index (module docstring):
    its plan line and statement; and how many searches of the decisions were judged. A plan line that reads as a
    search but not as this test reads one is wrong too, never passed over."""
    wrong, judged = [], 0
    conn = sqlite3.connect(path)
    try:
        for sql, args in statements:
            # Every word after the table's name (an alias of any length; a keyword there names no table in a plan).
            names = {"decisions", *re.findall(r"\bdecisions\s+(?:AS\s+)?(\w+)", sql)}
            plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}", args).fetchall()
            for row in plan:
                line = str(row[3])
                if not line.startswith(("SCAN ", "SEARCH ")) or line == "SCAN CONSTANT ROW":  # (no table)
                    continue
                found = _PLAN.fullmatch(line)
                if found is None:
                    wrong.append(f"{line} (not read): {sql}")
                    continue
                table, old_alias, index, by_id, seek = found.groups()
                if table not in names and old_alias not in names:
                    continue
                judged += 1
                seek = seek or ""
                if not ((index in PARTNER_LED and seek.startswith("partner=?"))
                        or (index in ONE_ALERT and "partner=?" in seek)
                        or (index == BY_ALIAS and seek == "alias=?")
                        or (by_id and seek == "rowid=?" and line.startswith("SEARCH ")
                            and _fed_by_partners_rules(plan, row[1]))):
                    wrong.append(f"{line}: {sql}")
    finally:
        conn.close()
    return wrong, judged


@pytest.mark.parametrize(("line", "read"), [
    ("SEARCH d USING INDEX decisions_by_partner (partner=? AND at_ms>?)",
     ("d", None, "decisions_by_partner", None, "partner=? AND at_ms>?")),
    ("SEARCH TABLE decisions AS held USING COVERING INDEX decisions_held (alert_id=? AND partner=?)",
     ("decisions", "held", "decisions_held", None, "alert_id=? AND partner=?")),
    ("SCAN TABLE decisions", ("decisions", None, None, None, None)),
    ("SCAN decisions USING INDEX decisions_by_time", ("decisions", None, "decisions_by_time", None, None)),
    ("SEARCH TABLE decisions USING INTEGER PRIMARY KEY (rowid=?)",
     ("decisions", None, None, "INTEGER PRIMARY KEY", "rowid=?")),
])
def test_the_plan_reader_reads_a_search_in_either_sqlite_s_words(line: str, read: tuple[str | None, ...]) -> None:
    """A plan line reads as its table (or alias), the alias an SQLite before 3.24 adds, the index or rowid seek, and
    what it seeks by, in the words of SQLite before 3.24 ("TABLE", "AS") and after: none is passed over unread."""
    found = _PLAN.fullmatch(line)
    assert found is not None and found.groups() == read


def _fed_by_partners_rules(plan: list[tuple[Any, ...]], parent: int) -> bool:
    """Whether a rowid seek under ``parent`` in ``plan`` is fed by a list of its partner's rule rows (module
    docstring): a list subquery beside it that searches ``rules_by_partner`` by partner first, and nothing else."""
    for node, up, _, line in plan:
        if up == parent and line.startswith(("LIST SUBQUERY", "EXECUTE LIST SUBQUERY")):
            below = [row[3] for row in plan if row[1] == node]
            if below and all(_PARTNERS_RULES.match(line) for line in below):
                return True
    return False


def _index(tmp_path: Path) -> Path:
    path = tmp_path / "audit" / "index.sqlite"
    with AuditIndex(path) as index:
        _ingest(index, _topics())
    return path


def _others_grow(path: Path, rows: int) -> None:
    """Give COL ``rows`` more decisions (copies of its own, each of a new alert), and the planner statistics saying
    so: the other partners' rows then outnumber USA's by far, which is what tempts a planner off USA's own index."""
    conn = sqlite3.connect(path)
    try:
        columns = [c[1] for c in conn.execute("PRAGMA table_info(decisions)") if c[1] not in ("id", "alert_id")]
        listed = ", ".join(f'"{c}"' for c in columns)
        top = conn.execute("SELECT MAX(id) FROM decisions").fetchone()[0]
        # (The columns are the table's own; every value is bound.)
        copy = f"INSERT INTO decisions (id, alert_id, {listed}) SELECT ?, ?, {listed} FROM decisions WHERE partner = 'COL'"  # noqa: S608, E501
        for n in range(rows):
            conn.execute(f"{copy} ORDER BY id LIMIT 1", (top + 1 + n, f"SNM:{1000 + n}"))
        conn.commit()
        conn.execute("ANALYZE")
    finally:
        conn.close()


@pytest.mark.parametrize("seeks", [_index_module.RULE_SEEKS, 0])
@pytest.mark.parametrize("others", [0, 3_000])
def test_every_scoped_query_searches_the_decisions_by_its_partners_own_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, others: int, seeks: int) -> None:
    """Every statement the public reading methods run for USA's auditor (each with every value its parameters are
    tried with) searches the decisions only by an index USA leads, or by one alert's rows of USA: never scanning the
    table or an index over every partner's rows (an agreement's, a type's, the time's, the alerts'), as the index
    was built and once COL's decisions outnumber USA's and the planner has statistics saying so; a search by a rule
    by ids USA's rule rows give, or (``seeks`` 0: the rule names more than ``RULE_SEEKS`` rows) by USA's index."""
    monkeypatch.setattr(_index_module, "RULE_SEEKS", seeks)
    path = _index(tmp_path)
    if others:
        _others_grow(path, others)
    statements, called = _scoped_statements(path, monkeypatch)
    assert {"search", "count", "export", "counted_export", "facets", "summary", "timeline", "why", "unreceipted",
            "unreceipted_page", "indicators", "integrity", "alert_name"} <= called
    assert sum("decisions" in sql for sql, _ in statements) > 100
    wrong, judged = _wrong_searches(path, statements)
    assert wrong == []
    assert judged >= JUDGED_AT_LEAST


def _rule_search_plans(path: Path, rule: str) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """USA's auditor's search by ``rule``: its rows, and the plans of its statements that read decisions and rules."""
    with AuditIndex(path, readonly=True) as index:
        ran: list[str] = []
        index._conn.set_trace_callback(ran.append)
        rows = index.search(USA, Query(rule=rule)).rows
    conn = sqlite3.connect(path)
    try:
        plans = [[row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")] for sql in ran
                 if "FROM decisions" in sql and "decision_rules" in sql]
    finally:
        conn.close()
    return rows, plans


def test_a_scoped_search_by_a_rare_rule_seeks_its_partners_rows_by_id(tmp_path: Path) -> None:
    """USA's auditor searching by a rule it reads on any row (``OPEN_RULES``) that USA's rows seldom name finds them
    by id from USA's own rule rows, not by a walk of every USA row for the few the rule names (1 ms where the walk
    took 40 ms at 100,000 rows)."""
    _, plans = _rule_search_plans(_index(tmp_path), "unknown.partner")
    assert plans and all(any("decisions USING INTEGER PRIMARY KEY" in line for line in plan) for plan in plans)


def test_a_scoped_search_by_a_rule_on_the_content_walks_its_partners_rows(tmp_path: Path) -> None:
    """A rule on the alert's content matches only rows whose view went to USA (``scoped``): the search walks USA's own
    rows, never seeks the rule's rows by id, whose number (withheld ones included) its time would tell."""
    rows, plans = _rule_search_plans(_index(tmp_path), "usa.cover")
    assert rows and all(r["delivered"] for r in rows)
    assert plans and not any("decisions USING INTEGER PRIMARY KEY" in line for plan in plans for line in plan)
    assert all(any("decisions_by_partner" in line for line in plan) for plan in plans)
