"""Fixtures of the console's unit tests: accounts with a cheap hasher, a fake index, a recording sink, the console
served on a loopback port."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from broker.audit_index import Page, Query, Scope, scoped
from broker.console_accounts import ConsoleAccounts
from policies import alert_reference
from puente.console import ConsoleConfig, create_app
from puente.console.server import Listen, serve
from puente.errors import PuenteError

PARTNERS = ("COL", "CRI", "USA")
PASSWORD = "correct horse battery"


def cheap_hasher() -> PasswordHasher:
    """Argon2id with tiny costs: the tests check behaviour, not hardness."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def _decision(i: int, alert: str, partner: str, decision: str, **extra: Any) -> dict[str, Any]:
    at = datetime(2026, 11, 1, 10, 0, tzinfo=UTC) + timedelta(minutes=i)
    return {"id": i, "kind": "DECISION", "alert_id": alert, "alert_type": "SEIZURE", "originator": "SENAN",
            "partner": partner, "decision": decision, "agreement": f"AG-{partner}", "rules": [f"{partner}-r1"],
            "reasons": [f"{partner} reason"], "redacted": [{"field": "subject.name", "action": "drop",
                                                             "rule": f"{partner}-r1"}],
            "version": 1, "policy_version": "p1", "at": at.isoformat().replace("+00:00", "Z"),
            "ingress": "t.ingress.SENAN:0:1", "delivered": decision in ("DELIVER", "DELIVER_REDACTED"), **extra}


ROWS = [
    _decision(1, "A-BOTH", "USA", "DELIVER_REDACTED"),
    _decision(2, "A-BOTH", "COL", "DELIVER"),
    _decision(3, "A-COL-ONLY", "COL", "DELIVER", reasons=["=HYPERLINK(\"x\")"]),
    _decision(4, "<script>alert(1)</script>", "USA", "WITHHOLD"),
]


REF_KEY = bytes(32)  # the fake broker's alert-reference key


def known_as(partner: str, alert_id: str) -> str:
    """The id by which ``partner`` knows ``alert_id`` (its reference), as its auditor reads it once it was sent it."""
    return alert_reference(REF_KEY, partner, alert_id)


def _alias(partner: str, alert_id: str) -> str:
    digest = hashlib.sha256(f"{partner}\x1f{alert_id}".encode()).digest()[:15]
    return "withheld-" + base64.b32encode(digest).decode().lower()


class FakeIndex:
    """The AuditIndex's reading methods over ``ROWS``, scoped as the real one (partner rows only, each
    row through ``scoped``, which names an alert by its partner's reference once it was sent it, else by an
    alias: never by the alert's own id)."""

    def __init__(self, rows: list[dict[str, Any]] | None = None) -> None:
        self.rows = ROWS if rows is None else rows

    def close(self) -> None:
        pass

    def _seen(self, scope: Scope) -> list[dict[str, Any]]:
        return [r for r in self.rows if scope.partner is None or r["partner"] == scope.partner]

    def _read(self, scope: Scope, row: dict[str, Any]) -> dict[str, Any]:
        """``row`` as the real index gives it to ``scope`` (``held_as``, ``alias``), then ``scoped``."""
        if scope.national:
            return row
        partner, alert = row["partner"], row["alert_id"]
        held = any(r["partner"] == partner and r["alert_id"] == alert and r.get("delivered") for r in self.rows)
        return scoped(scope, {**row, "alias": _alias(partner, alert), "held_as": known_as(partner, alert) if held
                              else None})

    def _named(self, scope: Scope, given: str) -> list[dict[str, Any]]:
        """The rows of the alert ``scope`` names ``given``, as ``scope`` reads them."""
        return [read for r in self._seen(scope) if (read := self._read(scope, r))["alert_id"] == given]

    def _match(self, scope: Scope, q: Query) -> list[dict[str, Any]]:
        out = [self._read(scope, r) for r in self._seen(scope)]
        for name in ("partner", "decision", "agreement", "alert_type"):
            if getattr(q, name):
                out = [r for r in out if r.get(name) == getattr(q, name)]
        if q.alert:
            out = [r for r in out if r["alert_id"] == q.alert]
        return sorted(out, key=lambda r: r["at"], reverse=True)

    def search(self, scope: Scope, q: Query, page: int = 1, per_page: int = 50) -> Page:
        found = self._match(scope, q)
        return Page(found[(page - 1) * per_page:page * per_page], min(len(found), self.cap), page, per_page,
                    capped=len(found) > self.cap)

    cap = 10_000  # the real index's COUNT_LIMIT: a page's count stops there

    def count(self, scope: Scope, q: Query) -> int:
        return len(self._match(scope, q))

    def export(self, scope: Scope, q: Query) -> Iterator[dict[str, Any]]:
        yield from self._match(scope, q)

    def counted_export(self, scope: Scope, q: Query) -> tuple[int, Iterator[dict[str, Any]]]:
        return self.count(scope, q), self.export(scope, q)

    def facets(self, scope: Scope) -> dict[str, list[str]]:
        seen = self._seen(scope)
        return {"partners": sorted({r["partner"] for r in seen}), "decisions": sorted({r["decision"] for r in seen})}

    def timeline(self, scope: Scope, alert_id: str, partner: str | None = None) -> list[dict[str, Any]] | None:
        rows = self._named(scope, alert_id)
        if not rows:
            return None
        return [{"at": r["at"], "kind": "DELIVERED" if r["decision"] != "WITHHOLD" else "WITHHELD",
                 "partner": r["partner"], "version": 1, "decision": r["decision"], "agreement": r["agreement"],
                 "rules": r["rules"], "reasons": r["reasons"], "redacted": r["redacted"], "status": None,
                 "detail": None} for r in rows]

    def alert_name(self, scope: Scope, given: str) -> str | None:
        return given if self._named(scope, given) else None

    def why(self, scope: Scope, alert_id: str, partner: str, field: str, envelope: Any = None) -> list[dict[str, Any]]:
        if scope.partner is not None and partner != scope.partner:
            return []
        return [{"version": 1, "decision": r["decision"], "agreement": r["agreement"], "rules": r["rules"],
                 "policy_version": "p1", "outcome": "dropped", "rule": r["rules"][0], "named": True}
                for r in self._named(scope, alert_id) if r["partner"] == partner]

    def integrity(self, scope: Scope) -> dict[str, Any]:
        return {"chains": [{"topic": "t.audit.decisions", "partition": 0, "chain": None, "records": 4, "signed": 4,
                            "unsigned_tail": 0, "last_checkpoint_at": "2026-11-01T10:04:00Z",
                            "last_checkpoint_seq": 3, "problems": 1}],
                "findings": [{"topic": "t.audit.decisions", "partition": 0, "offset": 7,
                              "problem": "was edited: its content does not match its hash"}],
                "indexed_at": "2026-11-01T11:00:00Z"}

    def dead_letters(self, scope: Scope) -> list[dict[str, Any]]:
        return [] if scope.partner else [{"reason": "invalid-date", "source": "t.ingress.PN", "count": 2,
                                          "first_at": "2026-11-01T10:00:00Z", "last_at": "2026-11-01T10:01:00Z"}]

    def unreceipted_page(self, scope: Scope, older_than: timedelta, now: datetime, page: int = 1,
                         per_page: int = 50) -> Page:
        found = [self._read(scope, r) for r in self._seen(scope) if r["decision"] != "WITHHOLD"]
        return Page(found[(page - 1) * per_page:page * per_page], min(len(found), self.cap), page, per_page,
                    capped=len(found) > self.cap)

    def indicators(self, scope: Scope, since: datetime | None = None,
                   until: datetime | None = None) -> dict[str, Any]:
        return {"shared_by_month": [{"month": "2026-11", "alert_type": "SEIZURE", "sector": "DARIEN",
                                     "partner": r["partner"], "alerts": 1} for r in self._seen(scope)],
                "withheld_by_reason": [{"reason": "partner.clearance", "partner": "USA", "count": 1}],
                "latency": [{"partner": "USA", "to": "delivery", "p50_ms": 120, "p95_ms": 900, "n": 3}]}

    def queries_page(self, scope: Scope, page: int = 1, per_page: int = 200) -> Page:
        found = [] if not scope.national else [{"auditor": "ana", "scope": "national", "page": "search",
                                                "params": {"partner": "COL"}, "results": 2,
                                                "at": "2026-11-01T11:00:00Z"}]
        return Page(found[(page - 1) * per_page:page * per_page], len(found), page, per_page)

    def summary(self, scope: Scope) -> dict[str, Any]:
        seen = self._seen(scope)
        return {"decisions": len(seen), "alerts": len({r["alert_id"] for r in seen}), "receipts": 0,
                "by_decision": {"DELIVER": 1}, "partners": sorted({r["partner"] for r in seen}), "problems": 1,
                "first_at": "2026-11-01T10:01:00Z", "last_at": "2026-11-01T10:04:00Z", "indexed_at": None}


class Sink:
    """Records every query; fails on demand, as a Kafka outage would."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.failing = False
        self.events: list[str] | None = None

    async def record(self, auditor: str, scope: str, page: str, params: Mapping[str, Any], results: int) -> None:
        if self.failing:
            raise PuenteError("Kafka at x could not be reached")
        self.records.append({"auditor": auditor, "scope": scope, "page": page, "params": dict(params),
                             "results": results})
        if self.events is not None:
            self.events.append("record")


def tls_pair(folder: Path, dns: tuple[str, ...] = ("localhost",), ips: tuple[str, ...] = ("127.0.0.1",)) -> tuple[
        Path, Path]:
    """A self-signed certificate for the names ``dns`` and addresses ``ips`` (its subject alternative names), and its
    key, as PEM files in ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "puente-console.test")])
    now = datetime.now(UTC)
    names = x509.SubjectAlternativeName([*(x509.DNSName(d) for d in dns),
                                         *(x509.IPAddress(ipaddress.ip_address(i)) for i in ips)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1)).add_extension(names, critical=False)
            .sign(key, hashes.SHA256()))  # fmt: skip
    cert_path, key_path = folder / "console.crt.pem", folder / "console.key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key (``tls_pair``)."""
    return tls_pair(tmp_path)


class _Log:
    """What ``serve`` needs of the query log: a sink with nothing to start or stop, never taken over."""

    fenced = None

    def __init__(self, sink: Sink) -> None:
        self.record = sink.record

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def taken_over(self) -> None:
        await asyncio.Event().wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def served(accounts: ConsoleAccounts, sink: Sink, cert: Path | None = None, key: Path | None = None,
                 names: tuple[str, ...] = ()) -> AsyncIterator[int]:
    """The console over the fake index, served by ``serve`` on a free port of 127.0.0.1 (over TLS with ``cert``
    and ``key``; answering under ``names`` too), until the block ends."""
    port = free_port()
    servers: list[uvicorn.Server] = []
    config = ConsoleConfig(lambda: FakeIndex(), accounts, sink)  # its origins are ``serve``'s to set, as ever
    log: Any = _Log(sink)
    listen = Listen("127.0.0.1", port, cert, key, names)
    task = asyncio.create_task(serve(listen, config, log, started=servers.append))
    try:
        while not (servers and servers[0].started):
            assert not task.done(), task
            await asyncio.sleep(0.05)
        yield port
    finally:
        if servers:
            servers[0].should_exit = True
        await task


@pytest.fixture
def accounts(tmp_path: Path) -> Iterator[ConsoleAccounts]:
    made = ConsoleAccounts.open(tmp_path / "auditor" / "accounts.sqlite", PARTNERS, hasher=cheap_hasher())
    made.add("ana", "national", PASSWORD)
    made.add("sam", "USA", PASSWORD)
    yield made
    made.close()


@pytest.fixture
def sink() -> Sink:
    return Sink()


# The console's one plain-HTTP origin is a loopback name (where `make console` serves). Under any other name, the
# TestClient's own "testserver" among them, it sets only Secure cookies, which a client over http never sends back.
LOCAL = "http://127.0.0.1:8443"
# What the supported browser says of a request made from the console's own pages (``puente.console.sameorigin``):
# the console answers no request without it. Every client below sends it unless a test says otherwise.
BROWSER = {"sec-fetch-site": "same-origin"}


def local_client(app: ASGIApp, **options: Any) -> TestClient:
    """A client of ``app`` at the plain loopback origin (``LOCAL``), as the browser on the console's own pages."""
    return TestClient(app, base_url=LOCAL, **{"headers": BROWSER, **options})


SECURE = "https://console.example"  # an https origin: a name not loopback (a proxy's), as the console takes it


def secure_client(app: ASGIApp, **options: Any) -> TestClient:
    """A client of ``app`` at an https origin (``SECURE``), as the browser on the console's own pages: the one kind of
    origin given a device token."""
    return TestClient(app, base_url=SECURE, **{"headers": BROWSER, **options})


def _make_client(accounts: ConsoleAccounts, sink: Sink, *, tls: bool = False) -> TestClient:
    config = ConsoleConfig(lambda: FakeIndex(), accounts, sink, tls=tls)
    base = "https://testserver" if tls else LOCAL
    return TestClient(create_app(config), base_url=base, follow_redirects=False, headers=BROWSER)


def _sign_in(client: TestClient, name: str, password: str = PASSWORD, target: str = "/") -> Any:
    form = client.get("/login")
    token = form.text.split('name="form_token" value="', 1)[1].split('"', 1)[0]
    return client.post("/login", data={"name": name, "password": password, "form_token": token, "next": target})


@pytest.fixture
def make_client(accounts: ConsoleAccounts, sink: Sink) -> Callable[..., TestClient]:
    """A client of a console over the fake index (``tls=True``: served over HTTPS)."""
    return lambda tls=False: _make_client(accounts, sink, tls=tls)


@pytest.fixture
def sign_in() -> Callable[..., Any]:
    """Sign a client in through the login form: ``sign_in(client, name, password=..., target="/")``."""
    return _sign_in


@pytest.fixture
def client(accounts: ConsoleAccounts, sink: Sink) -> TestClient:
    return _make_client(accounts, sink)


@pytest.fixture
def ana(client: TestClient) -> TestClient:
    """A national auditor, signed in."""
    assert _sign_in(client, "ana").status_code == 303
    return client


@pytest.fixture
def sam(client: TestClient) -> TestClient:
    """A joint-oversight auditor of USA, signed in."""
    assert _sign_in(client, "sam").status_code == 303
    return client


async def closed(reader: asyncio.StreamReader, within_s: float = 0.5) -> bool:
    """Whether the server closed the connection (EOF or a reset, nothing answered) within ``within_s``."""
    try:
        return await asyncio.wait_for(reader.read(), within_s) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
