"""The console answers only under the names it is served under (the Host header): a DNS-rebinding page, whose name
resolves to the console's address, is refused before any page or sign-in."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from broker.console_accounts import ConsoleAccounts
from puente.console.server import Listen
from puente.errors import ConfigError
from puente.settings import load_settings

from .conftest import PASSWORD, Sink, served, tls_pair


async def answer(port: int, request: bytes, tls: bool = False) -> bytes:
    """The status line answered to ``request`` (whole, as sent) on a new connection."""
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.write(request)
    try:
        return await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()


def get(host: str, path: str = "/login") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nSec-Fetch-Site: none\r\nConnection: close\r\n\r\n".encode()


async def test_a_loopback_console_answers_only_under_its_loopback_names_and_port(accounts: ConsoleAccounts,
                                                                                 sink: Sink) -> None:
    """127.0.0.1, localhost and [::1] with its port are answered; any other name, another port, no port (80 is
    not its port) or no Host at all is 400, and a sign-in under a foreign name is neither checked nor recorded."""
    async with served(accounts, sink) as port:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LocalHost:{port}"):
            assert (await answer(port, get(host))).startswith(b"HTTP/1.1 200"), host
        for host in (f"rebind.attacker.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1", "localhost",
                     f"localhost.attacker.example:{port}", f"127.0.0.1:{port}@evil.example"):
            assert (await answer(port, get(host))).startswith(b"HTTP/1.1 400"), host
        assert (await answer(port, b"GET /login HTTP/1.0\r\n\r\n")).startswith(b"HTTP/1.1 400")
        body = f"name=ana&password={PASSWORD}&form_token=x".encode()
        post = (f"POST /login HTTP/1.1\r\nHost: rebind.attacker.example:{port}\r\nConnection: close\r\n"
                f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        assert (await answer(port, post + body)).startswith(b"HTTP/1.1 400")
    assert sink.records == []


async def test_over_tls_the_certificates_names_are_answered_wildcards_for_one_label(
        accounts: ConsoleAccounts, sink: Sink, tmp_path: Path) -> None:
    """A TLS console answers under its certificate's names with its port (a wildcard name for one label only), and
    under the names a deployment adds (PUENTE_CONSOLE_HOSTS), as given."""
    cert, key = tls_pair(tmp_path, dns=("console.minseg.example", "*.audit.example"), ips=())
    async with served(accounts, sink, cert, key, names=("Console.Proxy.Example",)) as port:
        for host in (f"console.minseg.example:{port}", f"a.audit.example:{port}", "console.proxy.example",
                     f"127.0.0.1:{port}"):
            assert (await answer(port, get(host), tls=True)).startswith(b"HTTP/1.1 200"), host
        for host in (f"a.b.audit.example:{port}", f"audit.example:{port}", "console.minseg.example",
                     f"console.proxy.example:{port}", f"evil.example:{port}"):
            assert (await answer(port, get(host), tls=True)).startswith(b"HTTP/1.1 400"), host


def test_the_names_come_from_where_it_listens(tmp_path: Path) -> None:
    """Loopback names on a loopback address, the certificate's DNS and IP names over TLS, the address it listens on
    unless a wildcard one; each with the port, and without it too where the port is the scheme's own."""
    assert Listen("127.0.0.1", 8443).hosts() == {"127.0.0.1:8443", "localhost:8443", "[::1]:8443"}
    assert Listen("::1", 80).hosts() == {"127.0.0.1:80", "localhost:80", "[::1]:80", "127.0.0.1", "localhost",
                                         "[::1]"}
    cert, key = tls_pair(tmp_path, dns=("Console.Minseg.Example",), ips=("10.0.0.5", "fd00::5"))
    assert Listen("0.0.0.0", 443, cert, key).hosts() == {  # noqa: S104 - a wildcard address is not a name
        "console.minseg.example:443", "console.minseg.example", "10.0.0.5:443", "10.0.0.5", "[fd00::5]:443",
        "[fd00::5]"}
    assert Listen("10.0.0.7", 8443, cert, key, ("console.proxy.example",)).hosts() == {
        "console.minseg.example:8443", "10.0.0.5:8443", "[fd00::5]:8443", "10.0.0.7:8443", "console.proxy.example"}


def test_a_deployments_names_are_a_setting_checked_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """PUENTE_CONSOLE_HOSTS is a JSON list of Host values (a name or address, with a port or not); anything else is
    refused in one line."""
    monkeypatch.setenv("PUENTE_CONSOLE_HOSTS", '["console.proxy.example", "console.proxy.example:8443", "[fd00::5]"]')
    assert load_settings().console_hosts == ("console.proxy.example", "console.proxy.example:8443", "[fd00::5]")
    for bad in ('["http://console.example/"]', '["a b"]', '["console.example:port"]', '[""]'):
        monkeypatch.setenv("PUENTE_CONSOLE_HOSTS", bad)
        with pytest.raises(ConfigError, match="PUENTE_CONSOLE_HOSTS"):
            load_settings()
