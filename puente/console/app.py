"""The auditors' console: server-rendered pages over the audit index, read-only, every query audited.

    /login, /logout                      sign in (a form; a session cookie) and out
    /                                    summary of what the index holds
    /search, /search.csv                 decisions by partner, alert, agency, agreement, rule, decision,
                                         alert type and time; paged; the whole result as CSV
    /alerts/{alert_id}                   an alert's timeline (``?partner=P``: only what concerns P)
    /why?alert=&partner=&field=          which rule kept or removed a field, per version
    /integrity                           each chain's state and last signed checkpoint; problems first
    /dead-letters                        by reason and source, never a payload (national auditors)
    /receipts?hours=N                    deliveries without a receipt after N hours
    /indicators, /indicators.csv         the binational follow-up indicators, as charts and CSV
    /queries                             the auditors' own queries (national auditors)

Every page reads the index through the auditor's ``Scope``: a joint-oversight auditor's queries are answered from
what concerns their partner, and anything else answers 404, the same page as something absent. Before any page,
export or refusal is answered, the query (who, scope, page, the parameters the page takes (any other only counted),
how many results) is written to the audit through the ``QuerySink``; when that fails the answer is 503 and holds no
data. (Exceptions, against floods, each a 429 that holds no data: past 60 throttled sign-ins a minute, those
refusals are no longer each recorded; and a signed-in account's requests past its budget, 60 a minute in bursts of up
to 60 by default (``rate.PageBudget``), or past 4 being answered at once, 2 of them exports (``rate.Holds``), are
refused unrecorded, each account's written as one summary record a minute: how many, from when until when.) Pages
are Jinja2 templates with autoescaping; no script runs in them, and the headers say so (``core.SECURITY_HEADERS``).
Served (``server.serve``), the console answers only under its own names: a request with any other Host header is
refused before all of this (``core.HostCheck``), unrecorded. So is, 403, a request that does not come from the
console's own origin (``sameorigin``: its ``Sec-Fetch-Site`` and ``Origin``): another page, of another host of the
same site or another port of 127.0.0.1, would otherwise have the auditor's browser record queries in the auditor's
name and spend the account's budget.
Served in plain HTTP, at a loopback address (``make console``), the console is for a single-user machine: browsers
send its cookies to every port of that address, so whatever else listens there reads them. It gives that origin
a session cookie alone, never a device token (``origin``); TLS (``--tls-cert``, or a proxy's names) is how it is
deployed.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from puente.console import pages
from puente.console.cleartext import PlainCookies
from puente.console.core import HERE, Console, ConsoleConfig, Holding, SecurityHeaders
from puente.console.sameorigin import SameOrigin


def create_app(config: ConsoleConfig) -> Starlette:
    """The console as an ASGI application."""
    console = Console(config)
    routes = [
        Route("/login", console.login_form, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/logout", console.logout, methods=["POST"]),
        *pages.routes(console),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]

    async def missing(request: Request, exc: Exception) -> Response:
        # A signed-in auditor's request for a page that is not there is a query too (probing for
        # pages is looking): recorded like any other, the same "not found" answer after.
        session = await run_in_threadpool(console.session, request)
        if session is None:
            return console.not_found(request, session)
        if (over := await console.admit(request, session)) is not None:
            return over
        return await console.refuse(request, session, "not found", {"path": request.url.path}, 404,
                                    "Nothing here: no such record in the audit you may see.")

    # Holding outermost, so that what a request took of its account's is given back however the rest ends. The others
    # inside SecurityHeaders, so that their answers have them too. A request from another origin is refused first,
    # before anything of it is read (``sameorigin``); then a page reads only the cookies of the request's origin.
    middleware = [Middleware(Holding), Middleware(SecurityHeaders, tls=config.tls),
                  Middleware(SameOrigin, tls=config.tls, names=config.names),
                  Middleware(PlainCookies, accounts=config.accounts, tls=config.tls)]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={404: missing, 405: missing})
    # Starlette would answer a path with a trailing slash by a redirect to the path without it, an absolute URL
    # built from the Host header, before any handler: unrecorded, and pointing wherever that header says. Such a
    # path is a page that is not there (``missing``).
    app.router.redirect_slashes = False
    app.state.console = console  # for ``server.serve``: what it writes when it stops (``Console.stopping``)
    return app
