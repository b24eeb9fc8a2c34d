"""The console's pages. Each reads the index through the auditor's scope and answers through
``Console.answer``, which writes the query to the audit first."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from broker.audit_index import (
    DEAD_LETTERS_NOT_SHOWN,
    MAX_FINDINGS,
    NOT_SHOWN,
    TIMELINE_DEAD_LETTERS,
    TIMELINE_RECEIPTS,
    TIMELINE_VERSIONS,
    TOO_MANY,
    VERSIONS_NOT_SHOWN,
    Query,
    Scope,
)
from broker.console_accounts import Session
from puente.console import views
from puente.console.charts import bar_chart
from puente.console.core import PER_PAGE, Console, IndexReader, csv_lines, csv_response, in_order, time_param
from puente.strict import case_slip

FILTERS = ("partner", "alert", "agency", "agreement", "rule", "decision", "alert_type", "since", "until")
SEARCH_COLUMNS = ("at", "alert_id", "alert_type", "originator", "partner", "decision", "agreement", "rules",
                  "reasons", "redacted", "version", "action", "policy_version", "ingress", "block")
INDICATOR_TABLES = {
    "shared": ("shared_by_month", ("month", "alert_type", "sector", "partner", "alerts")),
    "withheld": ("withheld_by_reason", ("reason", "partner", "count")),
    "latency": ("latency", ("partner", "to", "p50_ms", "p95_ms", "n")),
}
Work = Callable[[IndexReader, Scope], tuple[int, Callable[[], Response]]]
ACCEPTS: dict[str, tuple[str, ...]] = {
    "home": (), "search": (*FILTERS, "page"), "search.csv": FILTERS, "alert": ("partner",),
    "why": ("alert", "partner", "field"), "integrity": (), "dead-letters": (), "receipts": ("hours", "page"),
    "indicators": ("since", "until"), "indicators.csv": ("table", "since", "until"), "queries": ("page",),
}
"""The query parameters each page takes: only these are ever recorded (what the page read of them); any other is
counted in its record (``core.UNKNOWN``), never written."""
QUERIES_PER_PAGE = 200


def _query(request: Request, partners: Collection[str], *, only: bool) -> tuple[Query, dict[str, str]]:
    """The search filters in the query string, and them as typed (for the form and the audit). ValueError for a
    ``partner`` not among ``partners`` (``known_partners``) when they are ``only`` ones it may name (a joint-oversight
    auditor's own), or when it is one of them in another case (``usa``): a filter naming no partner would be
    answered "0 decisions", as if it had none. Any other a national auditor names is looked for in the audit
    (``unknown_partner``): a partner that left the policy keeps its history."""
    params = request.query_params
    typed = {k: params.get(k, "").strip()[:200] for k in FILTERS}
    since, until = time_param(params, "since"), time_param(params, "until", end=True)
    in_order(since, until)
    values = {k: (v or None) for k, v in typed.items() if k not in ("since", "until")}
    check_partner(values["partner"], partners, only=only)
    return Query(**values, since=since, until=until), typed


def check_partner(partner: str | None, partners: Collection[str], *, only: bool) -> str | None:
    """``partner`` as a page's filter takes it (``_query``'s rule, on every page that names a partner): ValueError
    when it is not among ``partners`` and they are ``only`` ones it may name, or it is one of them in another case."""
    if partner is not None and partner not in partners:
        near = case_slip(partner, partners)
        if only or near:
            raise ValueError(f"partner: unknown partner; you may name {', '.join(sorted(partners)) or 'none'} (ids "
                             "are exact" + (f": did you mean {near}?)" if near else ")"))
    return partner


def known_partners(config_partners: Collection[str], session: Session) -> frozenset[str]:
    """The partners ``session``'s auditor may name in a filter: the policy's (``config_partners``) for a national
    auditor, its own alone for a joint-oversight one (whose scope holds no other partner's decisions)."""
    own = session.account.partner
    return frozenset(config_partners) if own is None else frozenset({own})


def unknown_partner(index: IndexReader, scope: Scope, partner: str | None,
                    config_partners: Collection[str]) -> str | None:
    """Why a national auditor's ``partner`` filter is refused, or None: one the policy does not name is taken only
    when the audit holds decisions for it (``facets``; a partner that left), else it is a mistyped or unknown id. A
    joint-oversight auditor's filter names its own partner (``check_partner``), never refused here: the answer
    would list the policy's partners to it."""
    if partner is None or partner in config_partners or scope.partner is not None:
        return None
    facets = index.facets(scope)
    if partner in facets.get("partners", ()) or "partners" in facets.get(TOO_MANY, ()):
        return None
    return (f"partner: unknown partner: neither the policy nor the audit names it; the policy's: "
            f"{', '.join(sorted(config_partners)) or 'none'} (ids are exact)")


MAX_PAGE = 1_000_000
MAX_HOURS = 24 * 366
_WHOLE = re.compile(r"[0-9]{1,9}", re.ASCII)  # digits 0-9 only: int() takes "+5", " 5", "5_0", other scripts' digits


def whole_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    """A whole number from the query string, ``default`` when absent or empty; ValueError, naming the range, for
    anything but ASCII digits from ``low`` to ``high``: never replaced by a value the auditor did not ask for, which
    the page would show and the query log record as if asked."""
    text = request.query_params.get(name, "")
    if not text:
        return default
    if not _WHOLE.fullmatch(text) or not low <= int(text) <= high:
        raise ValueError(f"{name}: give a whole number from {low} to {high:,} (digits 0-9 only)")
    return int(text)


def _page_number(request: Request) -> int:
    """The ``page`` asked for (``whole_param``: 1 to ``MAX_PAGE``, 1 when not given)."""
    return whole_param(request, "page", 1, 1, MAX_PAGE)


@dataclass
class RefreshStatus:
    """Whether the console's periodic catch-up of the index is failing: since when, and why (one line).
    The serving process sets it (``server.refresher``); every page shows it as a banner."""

    failed_since: datetime | None = None
    reason: str = ""

    def failed(self, when: datetime, reason: str) -> None:
        if self.failed_since is None:
            self.failed_since = when
        self.reason = " ".join(reason.split())[:300]

    def recovered(self) -> None:
        self.failed_since, self.reason = None, ""


T = TypeVar("T")

EXPORT_DEADLINE_S = 900.0
"""The longest a CSV export streams. It reads one snapshot of the index, held until its stream ends, and a snapshot
held keeps SQLite from folding the catch-ups' writes back into the file: a client reading a byte at a time (the
server cuts one that reads nothing for a while, not one that reads slowly) would hold it for as long as it liked.
Past the deadline the stream stops short and the download fails, never passes for whole."""


class ExportTooSlow(Exception):
    """An export ran past ``EXPORT_DEADLINE_S``: its stream is cut."""

REFRESH = RefreshStatus()
"""The refresh status of the console this process serves."""


def routes(console: Console, refresh: RefreshStatus = REFRESH) -> list[Route]:
    """Every page's route."""
    console.env.globals["refresh"] = refresh

    async def gate(request: Request) -> Session | Response:
        return await console.signed_in(request)

    async def gate_parsed(request: Request, page: str,
                          parse: Callable[[Request, Session], T]) -> tuple[Session, T] | Response:
        """Signed in, and the page's parameters parsed (for that session's auditor): else the sign-in form, or a
        recorded 400 (the parameters the page takes, as given: what it could not read; the others counted)."""
        session = await gate(request)
        if isinstance(session, Response):
            return session
        try:
            return session, parse(request, session)
        except ValueError as exc:
            given = {name: request.query_params[name] for name in ACCEPTS[page] if name in request.query_params}
            return await console.refuse(request, session, page, given, 400, str(exc), accepts=ACCEPTS[page])

    async def answer(request: Request, session: Session, page: str, asked: Mapping[str, Any], work: Work) -> Response:
        """``Console.answer``, with the query parameters ``page`` takes (``ACCEPTS``)."""
        return await console.answer(request, session, page, asked, work, accepts=ACCEPTS[page])

    async def home(request: Request) -> Response:
        session = await gate(request)
        if isinstance(session, Response):
            return session

        def work(index: IndexReader, scope: Scope) -> tuple[int, Callable[[], Response]]:
            summary = index.summary(scope)
            problems = int(summary.get("problems") or 0)
            return 1, lambda: console.html("home.html", request, session, summary=summary, problems=problems)

        return await answer(request, session, "home", {}, work)

    async def search(request: Request) -> Response:
        given = await gate_parsed(request, "search", lambda r, s: (search_filters(r, s), _page_number(r)))
        if isinstance(given, Response):
            return given
        session, ((query, typed), number) = given
        asked: dict[str, Any] = {**typed, "page": number}

        def work(index: IndexReader, scope: Scope) -> tuple[int, Callable[[], Response]]:
            if (why := unknown_partner(index, scope, query.partner, console.config.accounts.partners)) is not None:
                return 0, lambda: console.problem(request, session, 400, why)
            found = index.search(scope, query, number, PER_PAGE)
            if found.capped:  # recorded with the query (``answer`` records ``asked`` after this): a lower bound
                asked["capped"] = "yes"
            facets = index.facets(scope)
            pages = found.pages
            base = {k: v for k, v in typed.items() if v}
            return found.total, lambda: console.html(
                "search.html", request, session, found=found, facets=facets, typed=typed, pages=pages,
                base=base, columns=SEARCH_COLUMNS)

        return await answer(request, session, "search", asked, work)

    async def search_csv(request: Request) -> Response:
        given = await gate_parsed(request, "search.csv", search_filters)
        if isinstance(given, Response):
            return given
        session, (query, typed) = given
        if (busy := console.hold(request, session, export=True)) is not None:
            return busy
        held: list[IndexReader] = []  # the export's own connection, until its stream ends

        def rows(index: IndexReader, found: Iterator[dict[str, Any]]) -> Iterator[list[Any]]:
            deadline = time.monotonic() + EXPORT_DEADLINE_S
            try:
                for row in found:
                    if time.monotonic() > deadline:
                        raise ExportTooSlow(f"the export ran past {EXPORT_DEADLINE_S:.0f} s: cut short")
                    yield [row.get(c) for c in SEARCH_COLUMNS]
            finally:
                index.close()

        def work(reader: IndexReader, scope: Scope) -> tuple[int, Callable[[], Response]]:
            if (why := unknown_partner(reader, scope, query.partner, console.config.accounts.partners)) is not None:
                return 0, lambda: console.problem(request, session, 400, why)
            # The log records what the export streams: every matching row, not the search page's capped count,
            # counted and streamed from one read snapshot that stays open until the stream ends (the index
            # ``answer`` opens is closed once ``work`` returns, and a catch-up may commit before the stream).
            index = console.config.open_index()
            held.append(index)
            total, found = index.counted_export(scope, query)
            return total, lambda: csv_response("puente-decisions.csv", csv_lines(list(SEARCH_COLUMNS),
                                                                                 rows(index, found)))

        answered = await answer(request, session, "search.csv", typed, work)
        if not isinstance(answered, StreamingResponse):  # refused or failed: no stream will close the snapshot
            for index in held:
                index.close()
        return answered

    async def timeline(request: Request) -> Response:
        session = await gate(request)
        if isinstance(session, Response):
            return session
        alert_id = request.path_params["alert_id"][:200]
        typed = request.query_params.get("partner", "").strip()[:40] or None
        try:
            partner = partner_filter(typed, session)
        except ValueError as exc:  # recorded with the alert asked for, a path parameter ``gate_parsed`` never sees
            return await console.refuse(request, session, "alert", {"alert": alert_id, "partner": typed}, 400,
                                        str(exc), accepts=ACCEPTS["alert"])

        def work(index: IndexReader, scope: Scope) -> tuple[int, Callable[[], Response]]:
            if (why := unknown_partner(index, scope, partner, console.config.accounts.partners)) is not None:
                return 0, lambda: console.problem(request, session, 400, why)
            events = index.timeline(scope, alert_id, partner)  # bounded by that partner's versions, when named
            if events is not None and partner is not None:
                events = [e for e in events if e.get("partner") in (partner, None)]
                if not any(e.get("partner") == partner for e in events):
                    events = None  # nothing of that partner's: the same answer as absent
            if events is None:
                return 0, lambda: console.not_found(request, session)
            # Titled and linked by the id the auditor reads on its rows: a national auditor's the alert's own id,
            # even when a partner's reference (what its receipts name) opened it; never what a partner's did not.
            named = index.alert_name(scope, alert_id) or alert_id
            partners = sorted({str(e["partner"]) for e in events if e.get("partner")})
            # Each partner's receipts past the first the index lists: said at the top, not only where they begin.
            unlisted = [e for e in events if e.get("kind") == NOT_SHOWN]
            earlier = next((e for e in events if e.get("kind") == VERSIONS_NOT_SHOWN), None)
            dead = next((e for e in events if e.get("kind") == DEAD_LETTERS_NOT_SHOWN), None)
            return len(events), lambda: console.html(
                "timeline.html", request, session, alert_id=named, events=events, partner=partner,
                partners=partners, redactions=views.redactions, unlisted=unlisted, listed=TIMELINE_RECEIPTS,
                earlier=earlier, versions=TIMELINE_VERSIONS, dead=dead, dead_listed=TIMELINE_DEAD_LETTERS)

        return await answer(request, session, "alert", {"alert": alert_id, "partner": partner}, work)

    async def why(request: Request) -> Response:
        given = await gate_parsed(request, "why", lambda r, s: partner_filter(
            r.query_params.get("partner", "").strip()[:200] or None, s))
        if isinstance(given, Response):
            return given
        session, named = given
        params = request.query_params
        alert_id, field = (params.get(k, "").strip()[:200] for k in ("alert", "field"))
        partner = named or ""
        asked = {"alert": alert_id, "partner": partner, "field": field}

        def work(index: IndexReader, scope: Scope) -> tuple[int, Callable[[], Response]]:
            if not (alert_id and partner and field):
                return 0, lambda: console.html("why.html", request, session, asked=asked, rows=None)
            if (why := unknown_partner(index, scope, partner, console.config.accounts.partners)) is not None:
                return 0, lambda: console.problem(request, session, 400, why)
            if (scope.partner is not None and partner != scope.partner) or \
                    index.timeline(scope, alert_id, partner) is None:
                return 0, lambda: console.not_found(request, session)
            rows = index.why(scope, alert_id, partner, field, console.config.envelope)
            earlier = next((r for r in rows if r.get("kind") == VERSIONS_NOT_SHOWN), None)
            rows = [r for r in rows if r is not earlier]
            return len(rows), lambda: console.html("why.html", request, session, asked=asked, rows=rows,
                                                   earlier=earlier, versions=TIMELINE_VERSIONS)

        return await answer(request, session, "why", asked, work)

    async def integrity(request: Request) -> Response:
        session = await gate(request)
        if isinstance(session, Response):
            return session

        def work(index: IndexReader, scope: Scope) -> tuple[int, Callable[[], Response]]:
            found = index.integrity(scope)
            chains = sorted(found.get("chains", ()), key=lambda c: (-int(c.get("problems") or 0),
                                                                     str(c.get("topic")), int(c.get("partition") or 0)))
            findings = list(found.get("findings", ()))[:MAX_FINDINGS]
            texts = max(int(found.get("findings_total") or 0), len(findings))
            # The banner counts every chain's problems and every end's: a scoped auditor is given the
            # counts of the decisions' chains but not their texts, and "no problem found" would then be false.
            problems = max(sum(int(c.get("problems") or 0) for c in chains) + int(found.get("end_problems") or 0),
                           texts)
            ends = sorted(found.get("ends", ()), key=lambda e: (e.get("state") == "reaches", str(e.get("topic")),
                                                               int(e.get("partition") or 0)))
            return problems, lambda: console.html(
                "integrity.html", request, session, chains=chains, findings=findings, problems=problems,
                more=texts - len(findings), untold=problems - texts, indexed_at=found.get("indexed_at"),
                ends=ends, ends_unchecked=int(found.get("ends_unchecked") or 0), ends_why=found.get("ends_why") or [],
                ends_read_at=found.get("ends_read_at"), ends_all_checked=found.get("ends_all_checked") is True,
                ends_counted=int(found.get("ends_counted") or 0),
                ends_counted_unchecked=int(found.get("ends_counted_unchecked") or 0))

        return await answer(request, session, "integrity", {}, work)

    async def national_rows(request: Request, page: str, template: str,
                            fetch: Callable[[IndexReader, Scope], list[Any]]) -> Response:
        """A page for national auditors only (a partner's auditor gets "not found", recorded as any query)."""
        session = await gate(request)
        if isinstance(session, Response):
            return session

        def work(index: IndexReader, scope: Scope) -> tuple[int, Callable[[], Response]]:
            if scope.partner is not None:
                return 0, lambda: console.not_found(request, session)
            rows = fetch(index, scope)
            return len(rows), lambda: console.html(template, request, session, rows=rows)

        return await answer(request, session, page, {}, work)

    async def dead_letters(request: Request) -> Response:
        return await national_rows(request, "dead-letters", "dead_letters.html",
                                   lambda index, scope: index.dead_letters(scope))

    async def receipts(request: Request) -> Response:
        given = await gate_parsed(request, "receipts",
                                  lambda r, _: (whole_param(r, "hours", 24, 1, MAX_HOURS), _page_number(r)))
        if isinstance(given, Response):
            return given
        session, (hours, number) = given
        now = console.config.clock()
        asked: dict[str, Any] = {"hours": hours, "page": number}

        def work(index: IndexReader, scope: Scope) -> tuple[int, Callable[[], Response]]:
            found = index.unreceipted_page(scope, timedelta(hours=hours), now, number, PER_PAGE)
            if found.capped:  # recorded with the query (``answer`` records ``asked`` after this): a lower bound
                asked["capped"] = "yes"
            return found.total, lambda: console.html("receipts.html", request, session, found=found,
                                                     pages=found.pages, hours=hours)

        return await answer(request, session, "receipts", asked, work)

    def search_filters(request: Request, session: Session) -> tuple[Query, dict[str, str]]:
        return _query(request, known_partners(console.config.accounts.partners, session),
                      only=session.account.partner is not None)

    def partner_filter(partner: str | None, session: Session) -> str | None:
        """The alert and why pages' ``partner`` by the search filter's rule (``check_partner``): a case slip, or
        for a joint-oversight auditor any partner but its own, is refused, not answered "not found"."""
        return check_partner(partner, known_partners(console.config.accounts.partners, session),
                             only=session.account.partner is not None)

    def _period(request: Request, _: Session) -> tuple[datetime | None, datetime | None, dict[str, str]]:
        since, until = time_param(request.query_params, "since"), time_param(request.query_params, "until", end=True)
        in_order(since, until)
        typed = {k: request.query_params.get(k, "").strip()[:40] for k in ("since", "until")}
        return since, until, typed

    async def indicators(request: Request) -> Response:
        given = await gate_parsed(request, "indicators", _period)
        if isinstance(given, Response):
            return given
        session, (since, until, typed) = given

        def work(index: IndexReader, scope: Scope) -> tuple[int, Callable[[], Response]]:
            found = index.indicators(scope, since, until)
            charts = _charts(found)
            count = sum(len(found.get(key, ())) for key, _ in INDICATOR_TABLES.values())
            base = {k: v for k, v in typed.items() if v}
            return count, lambda: console.html("indicators.html", request, session, charts=charts, found=found,
                                               typed=typed, base=base)

        return await answer(request, session, "indicators", typed, work)

    async def indicators_csv(request: Request) -> Response:
        given = await gate_parsed(request, "indicators.csv", _period)
        if isinstance(given, Response):
            return given
        session, (since, until, typed) = given
        if (busy := console.hold(request, session, export=True)) is not None:
            return busy
        table = request.query_params.get("table", "")

        def work(index: IndexReader, scope: Scope) -> tuple[int, Callable[[], Response]]:
            if table not in INDICATOR_TABLES:
                return 0, lambda: console.not_found(request, session)
            key, columns = INDICATOR_TABLES[table]
            rows = list(index.indicators(scope, since, until).get(key, ()))
            lines = csv_lines(list(columns), iter([[r.get(c) for c in columns] for r in rows]))
            return len(rows), lambda: csv_response(f"puente-{table}.csv", lines)

        return await answer(request, session, "indicators.csv", {"table": table[:20], **typed}, work)

    async def queries(request: Request) -> Response:
        given = await gate_parsed(request, "queries", lambda r, _: _page_number(r))
        if isinstance(given, Response):
            return given
        session, number = given
        asked: dict[str, Any] = {"page": number}

        def work(index: IndexReader, scope: Scope) -> tuple[int, Callable[[], Response]]:
            if not scope.national:
                return 0, lambda: console.not_found(request, session)
            found = index.queries_page(scope, number, QUERIES_PER_PAGE)
            if found.capped:  # recorded with the query (``answer`` records ``asked`` after this): a lower bound
                asked["capped"] = "yes"
            return found.total, lambda: console.html("queries.html", request, session, found=found,
                                                     pages=found.pages)

        return await answer(request, session, "queries", asked, work)

    return [
        Route("/", home), Route("/search", search), Route("/search.csv", search_csv),
        Route("/alerts/{alert_id:path}", timeline), Route("/why", why), Route("/integrity", integrity),
        Route("/dead-letters", dead_letters), Route("/receipts", receipts), Route("/indicators", indicators),
        Route("/indicators.csv", indicators_csv), Route("/queries", queries),
    ]


def _charts(found: dict[str, Any]) -> list[dict[str, Any]]:
    """The indicator charts: alerts shared per month, by type, by border sector and by partner; withheld by
    reason; p50 and p95 time to delivery and to receipt per partner."""
    shared = list(found.get("shared_by_month", ()))

    def total(key: str) -> list[tuple[str, float]]:
        sums: dict[str, float] = {}
        for row in shared:
            label = str(row.get(key) or "(none)")
            sums[label] = sums.get(label, 0) + float(row.get("alerts") or 0)
        ordered = sorted(sums.items()) if key == "month" else sorted(sums.items(), key=lambda kv: -kv[1])
        return ordered

    withheld: dict[str, float] = {}
    for row in found.get("withheld_by_reason", ()):
        label = str(row.get("reason") or "(none)")
        withheld[label] = withheld.get(label, 0) + float(row.get("count") or 0)
    latency = sorted(found.get("latency", ()), key=lambda r: (str(r.get("to")), str(r.get("partner"))))
    bars, series = [], []
    for row in latency:
        for pct in ("p50", "p95"):
            value = row.get(f"{pct}_ms")
            if value is not None:
                bars.append((f"{row.get('partner')} to {row.get('to')}", float(value)))
                series.append(pct)
    return [
        # Months oldest first: a chart past its bars keeps the newest, the ones an auditor follows up.
        {"title": "Alerts shared per month",
         "svg": bar_chart("Alerts shared per month", total("month"), keep_last=True), "table": "shared"},
        {"title": "Shared by alert type", "svg": bar_chart("Shared by alert type", total("alert_type")),
         "table": "shared"},
        {"title": "Shared by border sector", "svg": bar_chart("Shared by border sector", total("sector")),
         "table": "shared"},
        {"title": "Shared by partner", "svg": bar_chart("Shared by partner", total("partner")), "table": "shared"},
        {"title": "Withheld by reason",
         "svg": bar_chart("Withheld by reason", sorted(withheld.items(), key=lambda kv: -kv[1])),
         "table": "withheld"},
        {"title": "Time from publication to delivery and to receipt (p50, p95)",
         "svg": bar_chart("Latency", bars, "ms", series=series), "table": "latency"},
    ]
