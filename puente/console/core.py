"""The console's core: its configuration, the answer path (index, then audit, then page), signing in
and out, the security headers. The pages themselves are in ``puente.console.pages``."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import secrets
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as AsgiScope

from broker.audit.verify import known_status
from broker.audit_index import AlwaysKept, Query, Scope
from broker.console_accounts import DEVICE_DAYS, ConsoleAccounts, Session
from broker.gate import client_address
from broker.oversight import QueryLogUncertain
from puente import logs
from puente.console import views
from puente.console.origin import Origin, host_header
from puente.console.rate import Holds, PageBudget
from puente.errors import PuenteError
from puente.wire import parse_time, parse_until

log = logs.get("puente.console")

HERE = Path(__file__).parent
PER_PAGE = 50
CSP = ("default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'; img-src 'self' data:; style-src 'self'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    # Audit data stays out of shared and browser caches.
    "cache-control": "no-store",
}
UNRECORDED = "cannot record this query in the audit: check Kafka"
MISNAMED = "This console does not answer under that name (the Host header): open it at its own address."
THROTTLED = "Too many sign-in attempts: wait a minute and try again."
SIGN_IN_REFUSED = ("Sign-in refused. After repeated failures an account is locked for a while; "
                   "ask a national auditor if it persists.")
OVER_RATE = "Too many requests from this account at once: wait {wait} s and try again."
BUSY = ("This account has {n} requests being answered already: wait for them to finish (an export, until its "
        "download ends), then try again.")
EXPORTING = "This account has {n} exports downloading already: wait for your exports to finish, then try again."
UNKNOWN = "unknown parameters"  # how many query parameters a page does not take: counted, never quoted
OVER_RATE_PAGE = "over the page rate"  # the page named in the summary record of an account's refused requests
# The sign-in and sign-out forms: a name, a password, two tokens and a path. Anything larger, or with more fields,
# is refused before it is read whole: these forms are posted before anyone is known.
MAX_FORM_BYTES = 4096
MAX_FORM_FIELDS = 8
VERIFYING = 2  # Argon2 checks run at once (each takes its memory cost: 64 MiB by default)


class IndexReader(Protocol):
    """What the console reads from the audit index (``broker.audit_index.AuditIndex``)."""

    def close(self) -> None: ...
    def search(self, scope: Scope, q: Query, page: int = 1, per_page: int = 50) -> Any: ...
    def count(self, scope: Scope, q: Query) -> int: ...
    def export(self, scope: Scope, q: Query) -> Iterator[dict[str, Any]]: ...
    def counted_export(self, scope: Scope, q: Query) -> tuple[int, Iterator[dict[str, Any]]]: ...
    def facets(self, scope: Scope) -> dict[str, list[str]]: ...
    def timeline(self, scope: Scope, alert_id: str, partner: str | None = None) -> list[dict[str, Any]] | None: ...
    def alert_name(self, scope: Scope, given: str) -> str | None: ...
    def why(self, scope: Scope, alert_id: str, partner: str, field: str,
            envelope: AlwaysKept | None = None) -> list[dict[str, Any]]: ...
    def integrity(self, scope: Scope) -> dict[str, Any]: ...
    def dead_letters(self, scope: Scope) -> list[dict[str, Any]]: ...
    def unreceipted_page(self, scope: Scope, older_than: timedelta, now: datetime, page: int = 1,
                         per_page: int = 50) -> Any: ...
    def indicators(self, scope: Scope, since: datetime | None = None,
                   until: datetime | None = None) -> dict[str, Any]: ...
    def queries_page(self, scope: Scope, page: int = 1, per_page: int = 200) -> Any: ...
    def summary(self, scope: Scope) -> dict[str, Any]: ...


class QuerySink(Protocol):
    """Where auditors' queries are written (``broker.oversight.QueryLog``); raises PuenteError when the
    query is not certainly written."""

    async def record(self, auditor: str, scope: str, page: str, params: Mapping[str, Any], results: int) -> None: ...


@dataclass
class ConsoleConfig:
    """What the console runs on. ``open_index`` opens the index read-only (once per request, in a worker
    thread, closed after)."""

    open_index: Callable[[], IndexReader]
    accounts: ConsoleAccounts
    queries: QuerySink
    tls: bool = False
    """Whether every request's origin is https (``origin.every_origin_https``: the console terminates TLS itself, or is
    served behind a proxy's public names). Without it, a request's origin is decided by the name it came under
    (``origin``). ``server.serve`` sets it from what it listens as."""
    names: tuple[str, ...] = ()
    """A reverse proxy's public names (PUENTE_CONSOLE_HOSTS): their https origins are the console's own, whatever Host
    the proxy passes (``sameorigin``). ``server.serve`` sets it from what it listens as."""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    deployment: str = ""
    envelope: AlwaysKept | None = None
    """The policy's envelope rule, so that "why" names it for the fields it keeps (None: not loaded)."""
    login_per_address: int = 10  # sign-in attempts a minute from one client address
    login_overall: int = 60  # sign-in attempts a minute from all addresses together
    page_rate: int = 60
    """Requests a minute one signed-in account may make, sustained (``rate.PageBudget``; PUENTE_CONSOLE_PAGE_RATE)."""
    page_burst: int = 60
    """Requests one account may make at once, before ``page_rate`` holds it (PUENTE_CONSOLE_PAGE_BURST)."""


class LoginThrottle:
    """How many sign-in attempts are let through: at most ``per_address`` from one client address and
    ``overall`` from all together in any ``window_s`` seconds. A client address is counted as the connection
    gate counts it (``broker.gate.client_address``): an IPv6 client by its /64, which one host is given whole,
    so that it cannot spend the overall limit alone. Only attempts let through count, so it
    holds at most ``overall`` of them, and ``per_address`` more per account holding a live device token (below). Refused
    attempts are recorded in the audit up to ``overall`` in a window too: past that a flood is answered
    without writing each attempt down (it would fill the query log, and its one writer would keep the
    auditors' own queries waiting).

    The overall limit keeps a flood from taking every core for Argon2; spent by a few addresses, it would
    also keep every auditor out. The per-address limit, spent by anyone sharing the auditor's address (every
    client behind a reverse proxy or a NAT has the same one), would too. So an attempt that brings a live
    device token (one an auditor's browser was given at a sign-in: ``ConsoleAccounts.device``) is held past
    either limit to ``per_address`` for its account, counted there alone: a flood from elsewhere, or from the
    same address, does not keep out an auditor's own browser, and what the tokens can add is bounded by the
    accounts, not by how many addresses a client can take or how many tokens its sign-ins are given."""

    def __init__(self, per_address: int, overall: int, window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_address, self.overall, self.window_s, self.clock = per_address, overall, window_s, clock
        self._all: deque[tuple[float, str]] = deque()
        self._by_address: dict[str, int] = {}
        self._past: deque[tuple[float, str]] = deque()  # attempts a device let past either limit, by account
        self._by_holder: dict[str, int] = {}
        self._refused: deque[float] = deque()

    @staticmethod
    def _expire(log: deque[tuple[float, str]], counts: dict[str, int], before: float) -> None:
        while log and log[0][0] <= before:
            _, key = log.popleft()
            counts[key] -= 1
            if not counts[key]:
                del counts[key]

    def _forget(self, now: float) -> None:
        self._expire(self._all, self._by_address, now - self.window_s)
        self._expire(self._past, self._by_holder, now - self.window_s)
        while self._refused and self._refused[0] <= now - self.window_s:
            self._refused.popleft()

    def admit(self, address: str, holder: str | None = None) -> str | None:
        """None when an attempt from ``address`` may go on (it is counted); else which limit refused it:
        ``address`` or ``all``. ``holder`` is the account whose live device token the attempt brought, or None.
        An attempt a device lets past a limit counts against its account's own budget alone, never the limits it
        passed: one client with its own password must not spend the overall limit for everyone else. The budget
        is the account's, not the token's, since every sign-in gives its browser a fresh token."""
        now, address = self.clock(), client_address(address)
        limit = self.reached(address)
        if limit is not None:
            if holder is None or self._by_holder.get(holder, 0) >= self.per_address:
                return limit
            self._past.append((now, holder))
            self._by_holder[holder] = self._by_holder.get(holder, 0) + 1
            return None
        self._all.append((now, address))
        self._by_address[address] = self._by_address.get(address, 0) + 1
        return None

    def reached(self, address: str) -> str | None:
        """The limit an attempt from ``address`` meets now, ``address`` or ``all``: one let through now is let
        past it by its device token; None when there is none."""
        self._forget(self.clock())
        if self._by_address.get(client_address(address), 0) >= self.per_address:
            return "address"
        if len(self._all) >= self.overall:
            return "all"
        return None

    def record_refusal(self) -> bool:
        """Whether this refusal is to be written to the audit (at most ``overall`` a window)."""
        now = self.clock()
        self._forget(now)
        if len(self._refused) >= self.overall:
            return False
        self._refused.append(now)
        return True


HSTS = (b"strict-transport-security", b"max-age=31536000")
HELD = "puente.held"  # the ASGI scope's key for what a request holds of its account's (``Holding``)
# The ASGI scope's key, put there by the server (``server.DeadlineProtocol.flushed``), of an awaitable that ends once
# what the connection has buffered for its client is all sent, or the connection is gone.
FLUSHED = "puente.flushed"


class Holding:
    """Gives back, when a request ends however it ends (answered, its client gone, an error, an export cut at its
    deadline, cancelled), what it took of its account's requests and exports at once (``rate.Holds``): each
    ``Console.hold`` puts its give-back in the scope's list, which every copy of the scope made inside shares.

    A request ends when its answer has left the server, not when the app has handed the answer's last part over:
    that part (an export's last 64 KB, and more) waits in the connection's buffer for as long as the client takes
    to read it, a trickle for minutes, and the connection is busy meanwhile (``server.DeadlineProtocol.idle``).
    Given back before, an account holding nothing could start more while those connections are still its own. So,
    served by the console's server (``FLUSHED``), what a request held is given back once its answer is all sent or
    its connection gone: a client that reads nothing for ``server.READ_STALL_S`` is cut, so this ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: list[Callable[[], None]] = []
        try:
            await self.app({**scope, HELD: held}, receive, send)
        finally:
            flushed: Callable[[], Awaitable[None]] | None = scope.get(FLUSHED)
            try:
                if held and flushed is not None:
                    await flushed()
            finally:  # cancelled or failing while it waits, the request still gives back what it held
                for give_back in held:
                    give_back()


def security_headers(secure: bool) -> list[tuple[bytes, bytes]]:
    """``SECURITY_HEADERS`` as an answer's raw headers, and HSTS when it goes to an https origin (``secure``)."""
    return [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()] + ([HSTS] if secure else [])


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every response, whatever made it, and HSTS to each one to an https origin
    (``origin``: over TLS, or under a reverse proxy's name). What uvicorn answers itself is ``server``'s to give
    them (``DeadlineProtocol.send_400_response``, ``RequestCap``)."""

    def __init__(self, app: ASGIApp, tls: bool) -> None:
        self.app, self.tls = app, tls

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        secure = Origin.of(host_header(scope), self.tls).secure

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.decode().lower() not in SECURITY_HEADERS]
                message = {**message, "headers": headers + security_headers(secure)}
            await send(message)

        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await sending(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception:
            # Starlette's error page is made outside this middleware, without these headers: a failure
            # is answered here instead (a plain 500, nothing of the error), then reported as ever.
            if not started:
                await sending({"type": "http.response.start", "status": 500,
                               "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
                await sending({"type": "http.response.body", "body": b"Internal Server Error"})
            raise


class HostCheck:
    """Refuses (400, one line, no page) a request whose Host header is not one of ``hosts`` (``server.Listen.hosts``),
    before any page or sign-in; ``*.name`` among them stands for one label.

    A DNS-rebinding page, at a name of its own that it then resolves to the console's address, is same-origin with
    whatever answers there: through an auditor's browser it could guess passwords, lock accounts out, and sign in
    and read the audit. What it cannot choose is the Host header, which is its own name, not one the console is
    served under. The refusal is not written to the audit: no one is known yet, it holds no data, and a flood of
    them would fill the query log (as with throttled sign-ins past their limit)."""

    def __init__(self, app: ASGIApp, hosts: Collection[str]) -> None:
        self.app, self.hosts = app, frozenset(host.lower() for host in hosts)

    def allows(self, host: str) -> bool:
        host = host.lower()
        if host in self.hosts:
            return True
        label, dot, rest = host.partition(".")
        return bool(label and dot) and "[" not in label and f"*.{rest}" in self.hosts

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.allows(host_header(scope)):
            await PlainTextResponse(MISNAMED + "\n", 400, headers=SECURITY_HEADERS)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def templates() -> Environment:
    """The console's Jinja2 environment: autoescaping on for every template, and every printed value's
    unprintable characters escaped first (``views.printable``)."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True, finalize=views.printable)
    env.filters["when"] = views.when
    env.filters["duration"] = views.duration
    env.filters["text"] = views.text
    env.filters["segment"] = views.segment  # every URL path segment built from data (never ``urlencode``)
    env.tests["known_status"] = known_status  # a receipt's status as subscribers write it, not a look-alike
    return env


class Console:
    """The pages (module docstring), over one ``ConsoleConfig``."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self.env = templates()
        self.throttle = LoginThrottle(config.login_per_address, config.login_overall)
        self.budget = PageBudget(config.page_rate, config.page_burst)
        self.holds = Holds()
        self._verifying = asyncio.Semaphore(VERIFYING)
        self._summaries: dict[str, asyncio.Task[None]] = {}  # an account's summary to write when its window ends

    # answering -------------------------------------------------------------------------------------

    def html(self, name: str, request: Request, session: Session | None, status: int = 200,
             **context: Any) -> HTMLResponse:
        account = session.account if session else None
        # The deployment (its topic prefix) says where the audit lives: for auditors, not for whoever reaches the port.
        body = self.env.get_template(name).render(
            request=request, account=account, csrf=session.csrf if session else "", path=request.url.path,
            deployment=self.config.deployment if account else "", **context)
        return HTMLResponse(body, status_code=status)

    def problem(self, request: Request, session: Session | None, status: int, message: str) -> HTMLResponse:
        """An answer that holds no data: 404 (absent or out of scope: one page for both), 400, 503."""
        return self.html("problem.html", request, session, status, code=status, message=message)

    def not_found(self, request: Request, session: Session | None) -> HTMLResponse:
        return self.problem(request, session, 404, "Nothing here: no such record in the audit you may see.")

    async def answer(self, request: Request, session: Session, page: str, params: Mapping[str, Any],
                     work: Callable[[IndexReader, Scope], tuple[int, Callable[[], Response]]],
                     accepts: Collection[str] = ()) -> Response:
        """Run ``work`` on the index (in a worker thread), write the query to the audit, then answer.
        ``work`` gives how many results, and what to answer; nothing is answered before the query is
        written. ``params`` is what the page took from the request (read after ``work``, which may add to
        it); the query parameters it does not take, any not named in ``accepts``, are counted (``UNKNOWN``)."""
        scope = Scope(session.account.partner)
        unknown = unknown_params(request, accepts)

        def run() -> tuple[int, Callable[[], Response]]:
            index = self.config.open_index()
            try:
                return work(index, scope)
            finally:
                index.close()

        try:
            results, respond = await run_in_threadpool(run)
        except PuenteError as exc:
            if not await self.record(session, page, counted(params, unknown), 0):  # audited all the same
                return self.problem(request, session, 503, UNRECORDED)
            # The error names the index file and what failed: a national auditor reads it, a partner's
            # auditor is told that much only (the operator's log has it too).
            log.warning("the audit index cannot be read", error=str(exc)[:300])
            why = str(exc)[:300] if session.account.national else "the console's operator has the details"
            return self.problem(request, session, 503, f"the audit index cannot be read: {why}")
        if not await self.record(session, page, counted(params, unknown), results):
            return self.problem(request, session, 503, UNRECORDED)
        return respond()

    async def refuse(self, request: Request, session: Session | None, page: str, params: Mapping[str, Any],
                     status: int, message: str, auditor: str | None = None,
                     accepts: Collection[str] = ()) -> HTMLResponse:
        """A refusal (``status``, ``message``: no data), recorded first as every answer is; 503 when it
        cannot be recorded. ``params`` is what the caller chose to record, never the request's own keys: the
        query parameters not named in ``accepts`` are counted (``UNKNOWN``)."""
        params = counted(params, unknown_params(request, accepts))
        if not await self.record(session, page, params, 0, auditor):
            return self.problem(request, session, 503, UNRECORDED)
        return self.problem(request, session, status, message)

    async def record(self, session: Session | None, page: str, params: Mapping[str, Any], results: int,
                     auditor: str | None = None) -> bool | None:
        """True once the query is in the audit; False when it certainly is not; None when its commit's outcome is
        unknown (``QueryLogUncertain``): it may be. Both of the last are not written, for whoever answers the page."""
        name = auditor if auditor is not None else (session.account.name if session else "")
        scope = session.account.scope if session else "-"
        try:
            given = {k: v for k, v in params.items() if v not in (None, "")}
            await self.config.queries.record(name, scope, page, given, results)
        except QueryLogUncertain:
            return None
        except PuenteError:
            return False
        return True

    def origin(self, request: Request) -> Origin:
        """The browser's origin for ``request``, which names the cookies read and set in answering it."""
        return Origin.of(request.headers.get("host", ""), self.config.tls)

    def session(self, request: Request) -> Session | None:
        """The live session the request's cookie proves, started at the same kind of origin (``ConsoleAccounts``)."""
        origin = self.origin(request)
        return self.config.accounts.session(request.cookies.get(origin.session), self.config.clock(),
                                            https=origin.secure)

    async def signed_in(self, request: Request) -> Session | Response:
        """The request's session, counted against its account's budget; else the sign-in form, or 429 over it."""
        found = await run_in_threadpool(self.session, request)
        if found is not None:
            return await self.admit(request, found) or found
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{QueryParams({'next': target})}", status_code=303)

    async def over_rate(self, session: Session) -> Response | None:
        """None when ``session``'s account may be answered now (a request of its budget is spent: ``page_rate``,
        ``page_burst``); else 429, unrecorded, the refusal tallied for the account's one summary record a window.
        Every signed-in request is asked, before anything of it is read or recorded: each page, export, refusal
        and sign-out would otherwise be a query record, and a flood of them would fill the log and keep every
        auditor's pages waiting on its one writer."""
        now = self.config.clock()
        await self.summarise(now)
        account = session.account
        wait = self.budget.admit(account.name, account.scope, now)
        if not wait:
            return None
        self._summary_timer(account.name)
        return _over_rate(wait)

    async def admit(self, request: Request, session: Session) -> Response | None:
        """None when ``session``'s signed-in request may be answered: within its account's budget (``over_rate``)
        and what it may hold at once (``hold``); else 429."""
        return await self.over_rate(session) or self.hold(request, session)

    def hold(self, request: Request, session: Session, export: bool = False) -> Response | None:
        """None when ``session``'s account may have one more request (``export``: one more export) in hand, held
        until the request's answer has left the server (``Holding`` gives it back); else 429, unrecorded, the
        refusal tallied as one over the budget is (``over_rate``). Without a bound, one account within its rate
        could hold every connection."""
        held: list[Callable[[], None]] | None = request.scope.get(HELD)
        if held is None:
            raise RuntimeError("a request is held only under Holding (create_app): it could never be given back")
        account = session.account
        if self.holds.take(account.name, export):
            held.append(partial(self.holds.give_back, account.name, export))
            return None
        self.budget.refused(account.name, account.scope, self.config.clock())
        self._summary_timer(account.name)
        return _busy((EXPORTING if export else BUSY).format(n=self.holds.limits[export]))

    def _summary_timer(self, account: str) -> None:
        """Start ``account``'s timer for its tally of refusals (``_summarise_held``), unless one runs."""
        pending = self._summaries.get(account)
        if pending is None or pending.done():  # no timer for the account: this refusal starts one
            self._summaries[account] = asyncio.create_task(self._summarise_held(account))

    async def _summarise_held(self, account: str) -> None:
        """Write ``account``'s tally when it is due, and each tally after it, until the account holds none.

        The timer follows the tally, not the refusal that started it: a request just as a window ends writes that
        tally and, refused, starts the next, which no timer then waited for (the account still had one running, to
        find nothing due and end), and a flood that stopped there went unwritten until the account's next request
        or a clean stop. Each wait is at most a window, and a clock set back makes a tally due at once
        (``PageBudget.due``)."""
        while (due := self.budget.due_at(account)) is not None:
            wait = (due - self.config.clock()).total_seconds()
            await asyncio.sleep(min(max(wait, 0.0), self.budget.window_s))
            if not await self.summarise(self.config.clock()):
                await asyncio.sleep(self.budget.window_s)  # the query log cannot be written: try again a window on

    async def stopping(self) -> None:
        """Write every account's tally of refused requests, its window over or not: the console is stopping. The
        timers are cancelled and waited for first: one cancelled in the middle of a write puts its tally back
        (``summarise``), to be written here."""
        timers = list(self._summaries.values())
        for pending in timers:
            pending.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        self._summaries.clear()
        await self.summarise(None)

    async def summarise(self, now: datetime | None) -> bool:
        """Write one record for each account whose window of refused requests has ended by ``now`` (every
        account's, ``now`` None: the console is stopping): who, how many, from when until when. A record that
        cannot be written is kept, to go with the account's next one; False when one could not be. Written when a
        window ends, by the account's timer (``_summarise_held``), or first by whichever request comes after it."""
        written = True
        due = self.budget.due(now)
        for n, refused in enumerate(due):
            try:
                await self.config.queries.record(refused.account, refused.scope, OVER_RATE_PAGE, refused.params(),
                                                 0)
            except PuenteError as exc:
                log.warning("the refused requests of an account cannot be recorded yet", error=str(exc)[:300])
                self.budget.restore(refused)
                written = False
            except BaseException:  # cancelled mid-write (the console stopping): kept, for ``stopping`` to write,
                for left in due[n:]:  # with every other account's not written yet
                    self.budget.restore(left)
                raise
        return written

    # signing in and out ----------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        response = self.html("login.html", request, None, next=views.local_path(request.query_params.get("next")),
                             form_token=token, error="")
        origin = self.origin(request)
        _cookie(response, origin, origin.login, token, max_age=1800)
        return response

    async def login(self, request: Request) -> Response:
        address = request.client.host if request.client else "-"
        origin = self.origin(request)
        # The plain origin gives no device token and takes none (``origin.Origin.device``): any port of the machine
        # would be sent it.
        device = request.cookies.get(origin.device) if origin.secure else None
        holder = await run_in_threadpool(self.config.accounts.device, device, self.config.clock(),
                                         https=origin.secure) if device else None
        if holder is None:
            device = None  # not a live device token: this browser is held like any other
        past = self.throttle.reached(address) if device is not None else None  # a limit its device lets it past
        throttled = self.throttle.admit(address, holder if device is not None else None)
        if throttled is not None:
            return await self._throttle_refusal(request, throttled)
        form = await small_form(request)
        if form is None:
            return await self.refuse(request, None, "sign-in refused", {"form": "unreadable"}, 400,
                                     "This sign-in could not be read: use the sign-in page.", "(not checked)")
        name, password = form.get("name", "")[:64], form.get("password", "")
        if past is not None and name != holder:  # a device lets its own account past a limit, no other
            return await self._throttle_refusal(request, past)
        target = views.local_path(form.get("next", ""))
        expected = request.cookies.get(origin.login)
        if not expected or not same_token(expected, form.get("form_token", "")):
            return await self.refuse(request, None, "sign-in refused", {"form": "expired"}, 400,
                                     "This sign-in form has expired: open the sign-in page again.", "(not checked)")
        async with self._verifying:  # Argon2 takes memory and a core: a flood waits here, not in the threads
            result = await run_in_threadpool(self.config.accounts.check, name, password, self.config.clock(), device,
                                             https=origin.secure)
        # The lock and the audit agree. A wrong password is counted as it is checked, so that every check after it
        # sees it and the lock is decided in order, however slow the record; one that cannot be recorded is taken
        # back, and counts for nothing. A right password changes nothing until its record is written: one that
        # cannot be is answered the same 503, sets no cookie, and leaves the failures, the lock and the devices.
        if result.account is None or result.checked is None:
            who = name if result.known else "(unknown name)"
            written = await self.record(None, "sign-in refused", {"locked": "yes" if result.locked else None}, 0, who)
            if not written:
                # Taken back only when certainly not in the audit: a commit whose outcome is unknown may have
                # landed, and a failure the audit shows must count.
                if result.counted is not None and written is False:
                    await run_in_threadpool(self.config.accounts.withdraw, result.counted)
                return self.problem(request, None, 503, UNRECORDED)
            return self.html("login.html", request, None, 401, next=target, form_token=expected, error=SIGN_IN_REFUSED)
        session = await run_in_threadpool(self.config.accounts.start_session, result.account, self.config.clock(),
                                          https=origin.secure)
        previous = request.cookies.get(origin.session)
        if not await self.record(session, "sign-in", {"previous_session": "ended"} if previous else {}, 1):
            await run_in_threadpool(self.config.accounts.end_session, session.token)
            return self.problem(request, None, 503, UNRECORDED)
        fresh = await run_in_threadpool(partial(self.config.accounts.confirm, device=origin.secure), result.checked,
                                        password, self.config.clock())
        if fresh is None:
            # Its password changed, or it was removed, while the sign-in was being recorded: the session ends, as
            # the change would have ended it a moment later, and the browser is given no device token.
            await run_in_threadpool(self.config.accounts.end_session, session.token)
            return self.html("login.html", request, None, 401, next=target, form_token=expected, error=SIGN_IN_REFUSED)
        # A session this browser held before ends with this sign-in: its token, replaced in the cookie,
        # would otherwise stay valid until it expired (whoever had copied it could go on using it).
        await run_in_threadpool(self.config.accounts.end_session, previous)
        done = RedirectResponse(target, status_code=303)
        _cookie(done, origin, origin.session, session.token)
        if origin.secure and fresh:  # ``confirm`` makes none at the plain origin
            _cookie(done, origin, origin.device, fresh, max_age=DEVICE_DAYS * 86_400)
        done.delete_cookie(origin.login, secure=origin.secure, httponly=True, samesite="strict")
        return done

    async def _throttle_refusal(self, request: Request, limit: str) -> Response:
        """429 for a sign-in over a limit, recorded in the audit while refusals themselves are under it."""
        if not self.throttle.record_refusal():
            return _throttled()
        if not await self.record(None, "sign-in throttled", {"limit": limit}, 0, "(not checked)"):
            return self.problem(request, None, 503, UNRECORDED)
        return _throttled()

    async def logout(self, request: Request) -> Response:
        session = await run_in_threadpool(self.session, request)
        if session is not None:  # without one, nothing is read: there is nothing to end
            if (over := await self.admit(request, session)) is not None:
                return over
            form = await small_form(request)
            if form is None or not same_token(session.csrf, form.get("csrf", "")):
                # Recorded as every refusal is, or 503: a forged sign-out is an attempt on a session.
                return await self.refuse(request, session, "sign-out refused",
                                         {"form": "unreadable" if form is None else "expired"}, 400,
                                         "This form has expired: reload the page and try again.")
            await self.record(session, "sign-out", {}, 0)  # signing out happens whether or not it is recorded
            await run_in_threadpool(self.config.accounts.end_session, session.token)
        response = RedirectResponse("/login", status_code=303)
        origin = self.origin(request)
        # Only a cookie the request carried is deleted (one whose session ended, or that no longer names one): a
        # cross-site form carries none (SameSite=Strict), and a deletion in its answer would sign the auditor's
        # browser out, unrecorded, while the session stays live on the server.
        if session is not None or origin.session in request.cookies:
            response.delete_cookie(origin.session, secure=origin.secure, httponly=True, samesite="strict")
        return response


def _cookie(response: Response, origin: Origin, name: str, value: str, max_age: int | None = None) -> None:
    """Set a cookie of the console's for ``origin``: for this host and path "/" alone, Secure over https. Without
    ``max_age`` it lasts until the browser closes (the session's: the server ends it sooner, ``SESSION_HOURS`` in all,
    ``IDLE_MINUTES`` unused)."""
    response.set_cookie(name, value, max_age=max_age, path="/", secure=origin.secure, httponly=True,
                        samesite="strict")


async def small_form(request: Request) -> dict[str, str] | None:
    """The fields of a sign-in or sign-out form (URL-encoded, UTF-8; the first of a name given twice), or
    None when the body is not one: another content type, over ``MAX_FORM_BYTES`` (refused as it streams,
    whatever its Content-Length says), over ``MAX_FORM_FIELDS`` fields, not UTF-8, or cut short by the client
    leaving (which uvicorn logged with a traceback, as often as anyone without an account liked). Starlette's own
    parser would take a thousand fields of a megabyte each, in memory, from anyone, and decode a multipart
    part in whatever charset it names (UTF-7 makes lone surrogates, which nothing downstream can encode)."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    declared = request.headers.get("content-length", "0")
    if kind != "application/x-www-form-urlencoded" or not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
        return None
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return None
    except ClientDisconnect:  # gone before its whole body came: unreadable, as any cut form (never a traceback)
        return None
    try:
        pairs = urllib.parse.parse_qsl(body.decode("ascii"), keep_blank_values=True, encoding="utf-8",
                                       errors="strict", max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):  # raw non-ASCII bytes, bad UTF-8 escapes, too many fields
        return None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def same_token(expected: str, given: str) -> bool:
    """Whether a form's token is the one expected, in constant time; any text compares (``compare_digest``
    refuses non-ASCII strings with TypeError, which would answer 500 and leave the attempt unrecorded)."""
    return secrets.compare_digest(expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass"))


def _throttled() -> Response:
    """429, one line, no page: what a sign-in flood is answered."""
    return Response(THROTTLED + "\n", status_code=429, media_type="text/plain; charset=utf-8",
                    headers={"retry-after": "60"})


def unknown_params(request: Request, accepts: Collection[str]) -> int:
    """How many of ``request``'s query parameters are not named in ``accepts``."""
    return sum(1 for name, _ in request.query_params.multi_items() if name not in accepts)


def counted(params: Mapping[str, Any], unknown: int) -> Mapping[str, Any]:
    """``params`` with how many parameters were not taken (``UNKNOWN``), when there were any. The query log keeps
    what a page took, by the names it takes: a name anyone can choose, and its value, would let a client write
    what it liked into the auditors' log, as many names as the request holds."""
    return {**params, UNKNOWN: unknown} if unknown else params


def _over_rate(wait_s: float) -> Response:
    """429, one line, no page: what a signed-in account's requests past its budget are answered."""
    wait = max(1, math.ceil(wait_s))
    return Response(OVER_RATE.format(wait=wait) + "\n", status_code=429, media_type="text/plain; charset=utf-8",
                    headers={"retry-after": str(wait)})


def _busy(message: str) -> Response:
    """429, one line, no page: what a signed-in account's request past what it may hold at once is answered."""
    return Response(message + "\n", status_code=429, media_type="text/plain; charset=utf-8")


def csv_lines(header: list[str], rows: Iterator[list[Any]]) -> Iterator[str]:
    """CSV text, one line at a time: the one writer of every CSV the console answers. Every field is quoted
    (``csv.QUOTE_ALL``), so a reader of the file's own ``,`` takes each cell whole, separators and line breaks in it
    included. Quoting does not hold for a spreadsheet whose locale splits at another separator (``;`` in es-CO and
    es-CR, or a tab): past a line's first ``,`` it reads the quotes as text and splits inside a cell at its ``;``, and
    a line break inside a cell ends its row. So a cell's text a spreadsheet would run as a formula is led by ``'``
    at its start and right before a formula's character after any ``,`` ``;`` tab, CR or LF inside it, blanks and
    ``"`` between (``views.cell``): whatever piece such a reader makes starts as text. The cost: that ``'`` is
    seen in the cell by every reader, the file's own included (an id ``ALERT;-5`` reads ``ALERT;'-5``, coordinates
    ``4.6, -74.08`` read ``4.6, '-74.08``)."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(header)
    yield out.getvalue()
    for row in rows:
        out.seek(0)
        out.truncate()
        writer.writerow([views.cell(v) for v in row])
        yield out.getvalue()


def csv_response(name: str, lines: Iterator[str]) -> StreamingResponse:
    return StreamingResponse(lines, media_type="text/csv; charset=utf-8",
                             headers={"content-disposition": f'attachment; filename="{name}"'})


MAX_TIME_TEXT = 40


def time_param(params: QueryParams, name: str, *, end: bool = False) -> datetime | None:
    """A time from the query string (ISO 8601; a date alone is its midnight UTC, or with ``end``, the end of a range,
    the last instant of its day: ``parse_until``); ValueError when not one."""
    text = params.get(name, "").strip()
    if not text:
        return None
    if len(text) > MAX_TIME_TEXT:  # the query log keeps this much: what it records is what was asked
        raise ValueError(f"{name}: too long to be a time (ISO 8601, at most {MAX_TIME_TEXT} characters)")
    try:
        return parse_until(text) if end else parse_time(text)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None




def in_order(since: datetime | None, until: datetime | None) -> None:
    """ValueError when ``since`` is after ``until``: nothing can match, and a page of zeros would read as "none
    happened" (``audit log`` refuses the same as a usage error)."""
    if since is not None and until is not None and since > until:
        raise ValueError("since is after until: nothing can match; swap them")
