"""Running the console: uvicorn on one event loop with the query log and the index refresher.

The console's port is bound first (``Listen.bind``), before anything reaches Kafka: starting the query log fences
any other console of the deployment, so a second console that then found its port taken (the first one's, say)
would have broken the first for nothing. The query log starts next (it fences any other console and checks the
queries chain's head): without it no page can be answered, so a console that cannot reach Kafka does not start.
The index is then caught up once, and every ``refresh_s`` seconds after; a failed refresh is reported and the
console keeps answering from the index as it stands (its pages say when it last caught up).

A console whose query log another console has since taken over (``QueryLog.taken_over``) stops serving and
``serve`` raises ``QueryLogFenced``: the command ends with that one line and a non-zero status. Answering 503 to
every page for good, alive to a supervisor and to a browser, would hide that its one writer role is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import socket
import ssl
import stat
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import h11
import uvicorn
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from broker.audit.verify import Retention
from broker.audit_index import AuditIndex, writer_lock
from broker.auditor import IndexRun, audit_topics, group_ends, index_topics, signature_checks
from broker.gate import Gate, client_address
from broker.kafka import KafkaConnection
from broker.keystore import auditor_path
from broker.oversight import QueryLog
from puente.console.app import create_app
from puente.console.core import FLUSHED, ConsoleConfig, HostCheck, security_headers
from puente.console.origin import Origin, every_origin_https, host_header, is_loopback
from puente.console.pages import REFRESH, RefreshStatus
from puente.errors import ConfigError, PuenteError
from puente.settings import PuenteSettings
from puente.strict import TooLarge, printable, read_bounded

CatchUp = Callable[[], Awaitable[object]]

REQUEST_DEADLINE_S = 10.0  # the longest a client may take to send one whole request (head and body)
READ_STALL_S = 30.0  # the longest a client may read nothing of an answer waiting for it (nginx's send_timeout)
MAX_CONNECTIONS = 100  # open connections; a new one past it closes the idle one used longest ago (``Gate``)
MAX_PER_ADDRESS = 16  # of those, from one client address (a browser opens six to a server)
# Requests being answered, their client gone or not (``RequestCap``): past it, 503. Above MAX_CONNECTIONS, as
# uvicorn's ``limit_concurrency`` had it (it counts the open connections against the same limit; ``Gate`` bounds those).
MAX_REQUESTS = 128
FLUSH_POLL_S = 0.05  # how often a request waiting for its answer to leave looks at the buffer (``flushed``)
UNAVAILABLE = "The console is answering as many requests as it may at once: try again in a moment."


class DeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline on receiving each request, head and body.

    uvicorn arms no timer until its first response, and its keep-alive timer restarts on every byte: a client
    that opens a connection and sends nothing, or a header line every few seconds ("slowloris"), holds the
    connection, and a few hundred of them take every file descriptor the console has, without a login. Here
    each request must arrive whole within ``deadline_s`` of the connection opening or of the previous response
    ending, or the connection is closed. A page that takes longer to answer is not cut: the deadline ends once
    the request is in.

    The other end too: a client that sends its request and then does not read the answer fills the socket's
    buffers. uvicorn's response then waits for room with no timer, and once the answer is complete, a close
    (keep-alive's, the deadline's, ``Connection: close``) waits with no timer for the transport to flush what
    the client never reads: either holds the connection (and a page's worth of data) for good. So whenever the
    console waits on the client to take what is buffered for it (writing paused at the high-water mark, an
    answer complete with bytes unsent, a close with bytes unsent), the buffer is looked at every ``stall_s``:
    gone, the watch ends; smaller, it goes on; no smaller, the connection is dropped (aborted, since a close
    would wait for the flush). As nginx's ``send_timeout``, this bounds the wait between two writes, not the
    whole answer, so a slow link that keeps reading is never cut.

    A request's app may wait for its answer to leave: ``flushed``, in its scope (``core.FLUSHED``), ends once all
    that is buffered for the client is sent, or the connection is gone. ``core.Holding`` waits for it before giving
    back what the request held of its account's, so that an account holds a connection for as long as its answer
    keeps the connection busy (``idle``), not only while its app writes.

    How many connections are open at once is the ``gate``'s to bound (``Gate``; a subclass per server, made by
    ``console_protocol``): a connection it does not admit is closed before anything is read.

    Over TLS the handshake is run here (``tls``), not by the server: asyncio's server would run it before the
    protocol hears of the connection, for up to 60 s (its ``ssl_handshake_timeout``, which uvicorn does not set),
    outside the deadline and outside the gate's count. Here the connection counts from the moment it is made,
    and the deadline runs from then too: handshake, head and body, all within ``deadline_s``."""

    deadline_s = REQUEST_DEADLINE_S
    stall_s = READ_STALL_S
    gate: ClassVar[Gate | None] = None  # one server's connections (``console_protocol``); None: not bounded here
    tls: ClassVar[ssl.SSLContext | None] = None  # the server's certificate and key; None: plain HTTP
    https: ClassVar[bool] = False  # every request is taken as https (``Listen.every_origin_https``): HSTS on a 400

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._stall: asyncio.TimerHandle | None = None
        self._unsent = 0  # bytes buffered for the client at the last look (``_watch_flush``)
        self._resumed = False  # writing resumed since the last look: the client read down to the low-water mark
        self._serving = False  # uvicorn's side was told of the connection (and will be of its loss)
        self._handshake: asyncio.Task[None] | None = None
        self._early = b""  # the request's first bytes, when they came with the handshake's last (``data_received``)
        self._gone = False  # the connection is closed (``_ended``)
        self.raw = transport  # the socket's own transport, beneath any TLS
        peer = transport.get_extra_info("peername")
        self.peer = client_address(str(peer[0])) if isinstance(peer, tuple) and peer else "-"
        if self.gate is not None and not self.gate.admit(self):
            transport.abort()  # every connection under the cap has a request in hand
            return
        self._arm()
        if self.tls is None:
            self._serve(transport)
        else:
            transport.pause_reading()  # what the client sends is the handshake's to read (``_secure``)
            self._handshake = self.loop.create_task(self._secure(transport, self.tls))

    def _serve(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._serving = True

    async def _secure(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        """The TLS handshake, then the connection is served; one that fails, or is cut by the deadline or the gate,
        only closes the connection."""
        try:
            secure = await self.loop.start_tls(raw, self, context, server_side=True,
                                               ssl_handshake_timeout=self.deadline_s)
        except OSError:  # refused by OpenSSL, timed out, reset
            secure = None
        self._handshake = None
        if secure is None or secure.is_closing():  # None: the connection was lost during the handshake
            raw.abort()
            self._ended()
            return
        self._serve(secure)
        if self._early:
            early, self._early = self._early, b""
            self.data_received(early)

    def data_received(self, data: bytes) -> None:
        if not self._serving:  # the TLS layer passes on what followed the handshake before ``_secure`` resumes
            self._early += data
            return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request h11 cannot read (400, then the connection closes), with the headers every
        answer of the console's has (``core.security_headers``): uvicorn's own has none, and the app never sees it.
        Its Host is not known: HSTS goes with it when every request is https, and then alone."""
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close"),
                   *security_headers(self.https)]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                      h11.Data(data=msg.encode("ascii")), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()

    def idle(self) -> bool:
        """Whether no request is in hand: none begun or one only partly sent (the deadline's to bound), or the last
        one answered and all of its answer sent. Such a connection may be closed for a new one (``Gate``)."""
        if not self._serving:
            return True  # still in its TLS handshake
        if self.cycle is not None and not self.cycle.response_complete:
            return False
        return self._buffered() == 0

    def _buffered(self) -> int:
        """Bytes buffered for the client, not yet handed to the kernel: the transport's, and over TLS those of the
        socket's transport beneath it too (what TLS has encrypted waits there)."""
        unsent = self.transport.get_write_buffer_size()
        if self.raw is not self.transport:
            unsent += self.raw.get_write_buffer_size()
        return unsent

    async def flushed(self) -> None:
        """Return once all that is buffered for the client is sent, or the connection is gone: the answer has left
        the server. Bounded as every wait on the client is: one that takes nothing for ``stall_s`` is cut
        (``_watch_flush``), and the connection is then gone."""
        while not self._gone and self._buffered() > 0:
            self._watch_flush()
            await asyncio.sleep(FLUSH_POLL_S)

    def evict(self) -> None:
        """Close at once, for a new connection (``Gate``): nothing is in hand, so nothing is cut."""
        self._disarm()
        self.raw.abort()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.deadline_s, self._expire)

    def _disarm(self) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self._serving:  # the TLS handshake is not done
            self.raw.abort()
            return
        if self.conn.their_state not in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED) and not self.transport.is_closing():
            self.transport.close()
            self._watch_flush()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not None and self.cycle is not cycle:  # a request begun: its app may wait for its answer
            self.cycle.scope[FLUSHED] = self.flushed  # type: ignore[literal-required]
        if self.conn.their_state is h11.DONE:  # the request is in: answering it may take what it takes
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.gate is not None:
            self.gate.used(self)
        self._watch_flush()  # whatever closes the connection next waits for this answer's tail to go
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection has its own deadline

    def pause_writing(self) -> None:
        super().pause_writing()
        self._watch_flush()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._resumed = True

    def _watch_flush(self) -> None:
        """Look again in ``stall_s`` at what is buffered for the client, unless a look is due already or
        nothing is buffered (``_flushing``)."""
        unsent = self._buffered()
        if self._stall is None and unsent > 0:
            self._unsent, self._resumed = unsent, False
            self._stall = self.loop.call_later(self.stall_s, self._flushing)

    def _flushing(self) -> None:
        """All sent: the watch ends. Less buffered than at the last look, or writing resumed since (the answer's
        next part may have filled the buffer again): the client reads, look again. Neither: it took nothing
        for ``stall_s``, and the connection is aborted (a close would wait for it)."""
        self._stall = None
        unsent = self._buffered()
        if unsent == 0:
            return
        if unsent < self._unsent or self._resumed:
            self._unsent, self._resumed = unsent, False
            self._stall = self.loop.call_later(self.stall_s, self._flushing)
            return
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended()
        if self._handshake is not None:  # lost before the handshake began (the gate's refusal, say)
            self._handshake.cancel()
        if self._serving:
            super().connection_lost(exc)

    def _ended(self) -> None:
        """The connection is closed: no timer, and it no longer counts."""
        self._gone = True
        self._disarm()
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        if self.gate is not None:
            self.gate.leave(self)


def console_protocol(caps: Gate, context: ssl.SSLContext | None = None,
                     every_https: bool = False) -> type[DeadlineProtocol]:
    """``DeadlineProtocol`` for one server: its connections bounded by ``caps``, over TLS with ``context``, every
    request taken as https or not (``every_https``)."""

    class ConsoleProtocol(DeadlineProtocol):
        gate = caps
        tls = context
        https = every_https

    return ConsoleProtocol


class RequestCap:
    """Answers 503 (one line, no page, the connection closed) to a request that comes while ``limit`` are being
    answered, their clients gone or not; in front of everything else. uvicorn's ``limit_concurrency`` did this with
    an answer of its own, without the security headers and HSTS every answer of the console's has: this one has them
    (``core.security_headers``; HSTS for an https origin, as ``SecurityHeaders`` decides it)."""

    def __init__(self, app: ASGIApp, limit: int, tls: bool) -> None:
        self.app, self.limit, self.tls = app, limit, tls
        self.answering = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.answering >= self.limit:
            secure = Origin.of(host_header(scope), self.tls).secure
            headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close"),
                       *security_headers(secure)]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": UNAVAILABLE.encode() + b"\n"})
            return
        self.answering += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.answering -= 1


@dataclass(frozen=True)
class Listen:
    """Where the console listens, its TLS files (both or neither), and the Host header values it answers under
    besides those it takes from the first two (``hosts``)."""

    host: str = "127.0.0.1"
    port: int = 8443
    tls_cert: Path | None = None
    tls_key: Path | None = None
    names: tuple[str, ...] = ()  # PUENTE_CONSOLE_HOSTS

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def every_origin_https(self) -> bool:
        """Whether every request it answers is to be taken as https: over TLS, or under a proxy's ``names``
        (``origin.every_origin_https``)."""
        return every_origin_https(self.tls, self.names)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    def check(self) -> Listen:
        """This, when it may be served: TLS files given together and readable, and plain HTTP only on
        a loopback address (fail closed: passwords and audit data never cross a network in clear)."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("give both --tls-cert and --tls-key, or neither")
        if self.tls_cert is not None and self.tls_key is not None:
            check_tls(self.tls_cert, self.tls_key, datetime.now(UTC))
        if not self.tls and not is_loopback(self.host):
            raise ConfigError(f"refusing to serve the console on {self.host} without TLS: pass --tls-cert and "
                              "--tls-key, or listen on 127.0.0.1")
        return self

    def hosts(self) -> frozenset[str]:
        """The Host header values the console answers under (``core.HostCheck``), lowercase: the loopback names when
        it listens on a loopback address, the DNS names and IP addresses its certificate is for over TLS (its
        subject alternative names: browsers ignore the subject's CN), and the address it listens on unless it is a
        wildcard one, each with the port and, where the port is the scheme's own, without it too (as browsers send
        it); then ``names`` as given. Call it once ``check`` has passed."""
        found = {"localhost", "127.0.0.1", "::1"} if is_loopback(self.host) else set()
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            found.add(self.host)  # a name the operator gave to listen on
        else:
            if not address.is_unspecified:
                found.add(str(address))
        if self.tls_cert is not None:
            found |= _certificate_names(self.tls_cert)
        bare = self.port == (443 if self.tls else 80)
        hosts = {name.lower() for name in self.names}
        for name in found:
            name = f"[{name}]" if ":" in name else name
            hosts |= {f"{name}:{self.port}".lower(), *([name.lower()] if bare else [])}
        return frozenset(hosts)

    def bind(self) -> list[socket.socket]:
        """Sockets listening on ``host`` and ``port`` now, one for each address the host has (as uvicorn would bind
        them), for ``uvicorn.Server.serve``. ConfigError, in one line, when the port is taken or the address is not
        this machine's: called before the query log starts, so that such a console stops having reached no Kafka
        (starting the log would fence the console that holds the port). A client that connects meanwhile waits in the
        backlog until the console serves, rather than being refused."""
        made: list[socket.socket] = []
        where = self.url.split("://", 1)[1].rstrip("/")
        try:
            found = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            for family, kind, proto, _, address in dict.fromkeys(found):
                sock = socket.socket(family, kind, proto)
                made.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:  # as asyncio does: an IPv6 socket takes no IPv4 client
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(2048)  # uvicorn's backlog; listening now, so that no other process can take the port
        except OSError as exc:
            for sock in made:
                sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"cannot listen on {where}: the address is in use (another console, or another "
                                  "program, listens there): stop it, or give --port") from None
            why = exc.strerror or str(exc) or type(exc).__name__
            raise ConfigError(f"cannot listen on {where}: {why}; check --host and --port") from None
        return made

    def context(self) -> ssl.SSLContext | None:
        """The server's TLS context, from files ``check`` has passed; None for plain HTTP."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.tls_cert, self.tls_key, password=_no_password)
        return context


MAX_PEM_BYTES = 1024 * 1024  # a certificate chain is a few KB


class _Encrypted(Exception):
    """OpenSSL asked for the key's password: the console has no one to ask (uvicorn gets none either)."""


def _no_password() -> str:
    raise _Encrypted


def _pem(path: Path, what: str) -> bytes:
    """The bytes of the TLS file ``path``, a regular file or a link to one: a pipe would be read here and be
    empty for the server, a device never ends."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"no TLS {what} at {printable(str(path))}: check --tls-{what[:4]}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the TLS {what} {printable(str(path))}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a device or a pipe"
        raise ConfigError(f"the TLS {what} {printable(str(path))} is not a regular file but {kind}{_link(path)}: "
                          f"give the PEM file")
    try:
        return read_bounded(path, MAX_PEM_BYTES)
    except TooLarge:
        raise ConfigError(f"the TLS {what} {printable(str(path))} is larger than 1 MiB: not a PEM file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the TLS {what} {printable(str(path))}: {exc.strerror}") from None


def _certificate_names(cert: Path) -> set[str]:
    """The DNS names and IP addresses the certificate at ``cert`` is for (its subject alternative names)."""
    leaf = x509.load_pem_x509_certificates(_pem(cert, "certificate"))[0]
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {*names.get_values_for_type(x509.DNSName), *(str(ip) for ip in names.get_values_for_type(x509.IPAddress))}


def _link(path: Path) -> str:
    return f" (a link to {printable(os.path.realpath(path))})" if path.is_symlink() else ""


def check_tls(cert: Path, key: Path, now: datetime) -> None:
    """Refuse, before anything reaches Kafka, a certificate and key the server could not serve: the way
    uvicorn will load them (``load_cert_chain``), and a certificate out of its validity at ``now``. The
    ConfigError names the file and what to check, never its content."""
    pem = _pem(cert, "certificate")
    key_pem = _pem(key, "key")
    c, k = printable(str(cert)), printable(str(key))
    try:
        chain = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise ConfigError(f"the TLS certificate {c} holds no PEM certificate: give the server's certificate "
                          "(-----BEGIN CERTIFICATE-----), then any intermediate ones") from None
    leaf = chain[0]
    for number, cert_n in enumerate(chain):  # an intermediate out of its validity fails every client as the leaf does
        which = f"the TLS certificate {c}" if number == 0 else f"certificate {number + 1} (an intermediate) in {c}"
        if cert_n.not_valid_after_utc < now:
            raise ConfigError(f"{which} expired on {cert_n.not_valid_after_utc:%Y-%m-%d %H:%M} UTC (notAfter): "
                              "renew it")
        if cert_n.not_valid_before_utc > now:
            raise ConfigError(f"{which} is valid only from {cert_n.not_valid_before_utc:%Y-%m-%d %H:%M} UTC "
                              "(notBefore): check this machine's clock, or the certificate")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=_no_password)
    except _Encrypted:
        raise ConfigError(_encrypted(k)) from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(_refused(c, k, leaf, key_pem, exc)) from None


def _encrypted(k: str) -> str:
    return (f"the TLS key {k} is protected by a password, which the console cannot ask for: give it the key "
            "without one (`openssl pkey -in KEY -out PLAIN`), readable only by its user")


def _refused(c: str, k: str, leaf: x509.Certificate, key_pem: bytes, exc: Exception) -> str:
    """Which of the two files OpenSSL refused, and why, in words an operator can act on."""
    try:
        private: PrivateKeyTypes = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:  # "Password was not given but private key is encrypted"
        return _encrypted(k)
    except (ValueError, UnsupportedAlgorithm):
        if b"PRIVATE KEY-----" not in key_pem and b"CERTIFICATE-----" in key_pem:
            return f"the TLS key {k} holds a certificate, not a private key: give the key of {c}"
        return f"the TLS key {k} holds no PEM private key (-----BEGIN PRIVATE KEY-----): check --tls-key"
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = private.public_key().public_bytes(serialization.Encoding.DER, raw)
    if ours != leaf.public_key().public_bytes(serialization.Encoding.DER, raw):
        return f"the TLS key {k} does not match the certificate {c}: give the key the certificate was issued for"
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__
    return f"the TLS certificate {c} and key {k} cannot be served ({reason}): check both files"


def _note(text: str) -> None:
    print(f"puente audit serve: {text}", file=sys.stderr, flush=True)


def catch_up_index(cfg: PuenteSettings, conn: KafkaConnection, path: Path) -> CatchUp:
    """A catch-up of the index at ``path`` from the deployment's audit topics, verified with the
    auditors' keys. SQLite writes block, so each runs on an event loop of its own in a worker thread:
    the console's pages are answered meanwhile (from the index as it was, through WAL)."""
    check = signature_checks(auditor_path(cfg.keys), None)

    async def indexed() -> IndexRun:
        found = await audit_topics(conn, cfg.topic_prefix)
        ends = await group_ends(conn, cfg.topic_prefix, cfg.broker_group, found.feeds, cfg.policy_dir)
        with writer_lock(path), AuditIndex(path) as index:
            return await index_topics(conn, found.roles, check, index, found.owners, ends=ends,
                                      retention=Retention.now(cfg.audit_retention_days))

    async def catch_up() -> IndexRun:
        return await asyncio.to_thread(asyncio.run, indexed())

    return catch_up


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300] if isinstance(exc, PuenteError) else f"{type(exc).__name__}: {text[:280]}"


async def refresher(catch_up: CatchUp, every_s: float, note: Callable[[str], None] = _note,
                    status: RefreshStatus = REFRESH) -> None:
    """Catch the index up every ``every_s`` seconds until cancelled. A failure of any kind is noted
    (one line) and shown on every page (``status``) and the console keeps answering from the index as
    it stands; the next catch-up that succeeds clears it."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await catch_up()
        except Exception as exc:  # noqa: BLE001 - a refresh must never stop the console
            status.failed(datetime.now(UTC), _one_line(exc))
            note(f"the index could not be caught up ({_one_line(exc)}); pages show it as it stands")
        else:
            status.recovered()


async def serve(listen: Listen, config: ConsoleConfig, log: QueryLog, *, catch_up: CatchUp | None = None,
                index: Path | None = None, refresh_s: float = 0, ready: Callable[[str], None] | None = None,
                started: Callable[[uvicorn.Server], None] | None = None,
                note: Callable[[str], None] = _note) -> None:
    """Serve until stopped (Ctrl-C, or ``server.should_exit`` through ``started``), under the names
    ``listen.hosts`` gives only. The port is bound first, then ``log`` started (module docstring);
    ``config.queries`` should be ``log``; ``config.tls`` and ``config.names`` are set here, from ``listen``
    (``Listen.every_origin_https``, ``Listen.names``), whatever they were. A first catch-up that fails is fatal only
    when there is no ``index`` yet to serve from.
    QueryLogFenced once another console has taken the query log over: served no more."""
    listen.check()
    # One place decides, from what the console listens as.
    config = replace(config, tls=listen.every_origin_https, names=listen.names)
    sockets = listen.bind()
    try:
        await log.start()
        if catch_up is not None:
            try:
                await catch_up()
            except Exception as exc:
                if index is None or not index.exists():
                    raise
                REFRESH.failed(datetime.now(UTC), _one_line(exc))
                note(f"the index could not be caught up ({_one_line(exc)}); serving it as it stands")
        app = create_app(config)
        server = uvicorn.Server(uvicorn.Config(
            RequestCap(HostCheck(app, listen.hosts()), MAX_REQUESTS, config.tls), host=listen.host, port=listen.port,
            log_level="warning", access_log=False, lifespan="off", server_header=False, proxy_headers=False,
            http=console_protocol(Gate(MAX_CONNECTIONS, MAX_PER_ADDRESS), listen.context(), config.tls)))
        if started is not None:
            started(server)
        task = asyncio.create_task(refresher(catch_up, refresh_s)) if catch_up and refresh_s > 0 else None
        taken = asyncio.create_task(_stop_when_taken_over(log, server))
        if ready is not None:
            ready(listen.url)
        try:
            await server.serve(sockets=sockets)
        finally:
            for pending in (task, taken):
                if pending is not None:
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pending
            # Refused requests not yet told, while the log still runs; fenced, it can write them nowhere (the
            # console that took over writes its own), and each would be one more line about the same loss.
            if log.fenced is None:
                await app.state.console.stopping()
        if log.fenced is not None:
            raise log.fenced
    finally:
        for sock in sockets:  # uvicorn closes them when it served; not when it failed first
            sock.close()
        await log.stop()


async def _stop_when_taken_over(log: QueryLog, server: uvicorn.Server) -> None:
    """Stop ``server`` once another console has taken ``log`` over: it could answer nothing again (module docstring).
    What it is answering already was recorded, and is finished."""
    await log.taken_over()
    server.should_exit = True
