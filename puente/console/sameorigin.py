"""Only requests from the console's own pages, or from the browser's own address bar, are answered.

Every page an auditor opens is written to the audit under the auditor's name and spends a request of the account's
budget (``rate.PageBudget``); a sign-in and a sign-out are recorded too. The cookies are SameSite=Strict, which keeps
them from requests another *site* makes, but not from another host of the same site (a sibling name under the
console's domain) nor, at the plain origin http://127.0.0.1:PORT, from a page on another port of the same address:
browsers keep cookies apart by neither. Such a page could have the auditor's browser load console URLs of its
choosing (an image, a form), each recorded in the oversight log under the auditor's name with values it chose, and
keep the account at 429. The browser says where a request comes from in ``Sec-Fetch-Site``, which no page can set
or change, and in ``Origin`` for a form or a script's request.

So every request, whatever its path and method, signed in or not, is answered only when (an allow-list):

- ``Sec-Fetch-Site`` is ``same-origin`` (a link, form or stylesheet of the console's own pages) or ``none`` (an
  address typed, a bookmark: the person at the browser asked for it); and
- an ``Origin`` header, when there is one, is the console's own origin (``own_origins``): its scheme, from
  ``origin.Origin``, and the Host the request came under, or, behind a reverse proxy, one of the proxy's exact
  public names (PUENTE_CONSOLE_HOSTS, which a proxy that passes its own upstream address as the Host hides). The one
  exception: ``Origin: null`` with ``Sec-Fetch-Site: same-origin``, which is what Chromium sends for the console's
  own forms, since its pages ask for no referrer (``Referrer-Policy: no-referrer``) and the browser then withholds
  their origin too; from anywhere else ``null`` is refused.

Anything else is answered 403, a line saying why, before any page runs: nothing is recorded, no budget spent, no
cookie read or set (like a wrong Host, ``core.HostCheck``). ``same-site`` and ``cross-site`` are refused, and so is
a link to the console from mail, chat or another site: such a link is opened by pasting it into the address bar.

A request without ``Sec-Fetch-Site`` is refused too. Without it the console cannot tell the auditor's own request
from one another page had the browser make: a browser too old to send it (before Chromium 76, Firefox 90,
Safari 16.4) would carry the auditor's cookies on a same-site image's GET without saying where it came from, and
such a GET sends no ``Origin`` either. The supported browser, Debian's Chromium, sends it to the console at each of
its origins (https, and the plain loopback one, which browsers hold trustworthy). A non-browser client, which holds
only cookies of its own and so is no one's forged request, says where it comes from itself:
``curl -H 'Sec-Fetch-Site: none'``. Failing closed costs such a client one header; failing open would leave every
old browser's auditor open to the above.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from puente.console.origin import Origin, host_header

ALLOWED_SITES = frozenset({"same-origin", "none"})
KNOWN_SITES = frozenset({*ALLOWED_SITES, "same-site", "cross-site"})
NULL = "null"  # the Origin a browser sends when it withholds the page's origin (module docstring)


def own_origins(host: str, tls: bool, names: Collection[str] = ()) -> frozenset[str]:
    """The console's own origins for a request that came under the Host header ``host``, lowercase, serialized as
    browsers send them in ``Origin``: the request's scheme (``Origin.of``) and ``host``, and with ``names`` (a
    reverse proxy's public names) ``https://`` and each exact one of them (a ``*.name`` stands for other hosts, which
    are not the console's)."""
    scheme = "https" if Origin.of(host, tls).secure else "http"
    exact = {f"https://{name.lower()}" for name in names if name and not name.startswith("*")}
    return frozenset({f"{scheme}://{host.lower()}", *exact}) if host else frozenset(exact)


def _values(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1").strip().lower() for key, value in scope["headers"] if key == name]


def refusal(scope: Scope, tls: bool, names: Collection[str] = ()) -> str | None:
    """Why a request is not answered (one line, naming what the browser said), or None when it is: module
    docstring."""
    sites = _values(scope, b"sec-fetch-site")
    origins = _values(scope, b"origin")
    if not sites:
        return ("Refused: this request does not say where it comes from (no Sec-Fetch-Site header). Open the console "
                "in a current browser; a client such as curl sends 'Sec-Fetch-Site: none'.")
    stray = next((site for site in sites if site not in ALLOWED_SITES), None)
    if stray is not None:
        said = stray if stray in KNOWN_SITES else "an unknown value"
        return (f"Refused: this request came from another page than the console's own (Sec-Fetch-Site: {said}), "
                "and is not answered: nothing was recorded. Open the console at its own address and go from there.")
    own = own_origins(host_header(scope), tls, names)
    for origin in origins:
        if origin in own or (origin == NULL and sites == ["same-origin"]):
            continue
        return ("Refused: this request came from another origin than the console's own (its Origin header), and is "
                "not answered: nothing was recorded. Open the console at its own address and go from there.")
    return None


class SameOrigin:
    """Refuses (403, one line, no page) every request not from the console's own origin (module docstring), before
    anything of it is read, recorded or counted. ``tls`` and ``names`` are the console's (``ConsoleConfig``)."""

    def __init__(self, app: ASGIApp, tls: bool, names: Collection[str] = ()) -> None:
        self.app, self.tls, self.names = app, tls, tuple(names)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (why := refusal(scope, self.tls, self.names)) is not None:
            await PlainTextResponse(why + "\n", 403)(scope, receive, send)
            return
        await self.app(scope, receive, send)
