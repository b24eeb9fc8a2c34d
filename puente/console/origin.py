"""Whether a browser reached the console over https, which decides the cookies it is given and whether HSTS is sent.

The console terminates TLS itself (``--tls-cert``), or is served in plain HTTP on a loopback address: alone, for a
browser on the same machine (``make console``), or behind a reverse proxy that terminates TLS for it under a public
name (PUENTE_CONSOLE_HOSTS). Whether the console terminates TLS says nothing of the scheme the browser used: behind
the proxy the browser is at https://name/ while the console sees plain HTTP. So the origin is decided per request,
from the Host header it came under (``HostCheck`` has already matched it with the console's names): a request over
TLS is https; so is one under any name but a loopback one, which can only be a proxy's public name (a ministry
deploys no plain-http console); a loopback name without TLS is the one plain-http origin. No forwarded header is
read: behind a proxy it would be believed from whoever can reach the port.

Over https the cookies are Secure, so that the browser never sends them in clear (to a proxy's redirect from port
80, or after a planted http:// link), and ``__Host-`` prefixed: the browser keeps such a cookie only from a secure
origin, for that host alone and path "/", so that no other host of the site can plant one (a sign-in form token,
for a login CSRF) or shadow it. HSTS is sent too. Each origin's cookies have their own names, read, set and deleted
under the origin of the request at hand: a cookie set for the plain loopback origin is never taken under a public
name, nor the other way. The tokens themselves are bound to the kind of origin they were given to
(``broker.console_accounts``): one given in clear is no https origin's cookie, whatever name it is sent under.

The plain origin, http://127.0.0.1:PORT, is for a single-user machine; TLS (``--tls-cert``, or a proxy's names) is
how a console is deployed. Browsers keep cookies apart by host, not by port: whatever listens on another port of
the same address, and any page served there, is sent the console's plain cookies (neither Secure nor ``__Host-``
would change that: a loopback origin counts as secure). So the plain origin is given the session alone, a cookie
that lasts until the browser closes and that the server ends after ``SESSION_HOURS``, or ``IDLE_MINUTES`` unused;
never a device token, whose 30 days would let whoever read it past the account's lock and the sign-in limits
(``core.LoginThrottle``), and one a browser holds from before is ended on sight (``cleartext.PlainCookies``). The
price: nothing there lets the auditor past the account's lock, which any local process may set off with wrong
passwords (pages of other ports cannot: ``sameorigin`` refuses their requests). No
mechanism binds the session to the console's port: a cookie has no port, and a local listener that read it can
send it back (``sameorigin`` keeps such a listener's pages from making the auditor's browser do so, not the
listener itself).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass

from starlette.types import Scope


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``localhost`` or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str:
    """The name or address in a Host header value, lowercase, without its port and an IPv6 address's brackets."""
    host = host.lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() else host


def host_header(scope: Scope) -> str:
    """An HTTP request's Host header (the first, as ``HostCheck`` reads it), or "" when it has none."""
    return next((value.decode("latin-1") for key, value in scope["headers"] if key == b"host"), "")


def every_origin_https(tls: bool, proxy_names: Collection[str]) -> bool:
    """Whether every request the console answers is to be taken as https, whatever name it came under: when it
    terminates TLS itself, and when it names a proxy's public names (PUENTE_CONSOLE_HOSTS). Why the latter: a proxy
    may pass its own upstream address as the Host (nginx does unless told ``proxy_set_header Host $host``), so the
    browser's https requests come under a loopback name, and would be given plain cookies it sends in clear to
    the proxy's port 80. A browser on the console's own machine still signs in at http://127.0.0.1: browsers take a
    loopback origin as secure, and keep Secure and ``__Host-`` cookies from it."""
    return tls or bool(proxy_names)


@dataclass(frozen=True)
class Origin:
    """The browser's origin as far as the console's cookies go: https (``secure``) or the plain loopback one."""

    secure: bool

    @classmethod
    def of(cls, host: str, tls: bool) -> Origin:
        """The origin of a request that came under the Host header ``host``, to a console serving TLS or not."""
        return cls(tls or not is_loopback(host_name(host)))

    def _named(self, name: str) -> str:
        return f"__Host-{name}" if self.secure else name

    @property
    def session(self) -> str:
        """The session cookie."""
        return self._named("puente-console")

    @property
    def login(self) -> str:
        """The sign-in form's token, for the form posted back (a double-submit cookie)."""
        return self._named("puente-login")

    @property
    def device(self) -> str:
        """The browser's device token (``broker.console_accounts``): kept across sign-outs, by design. Given to an https
        origin only (module docstring); the plain name is read only to end a token given before."""
        return self._named("puente-device")
