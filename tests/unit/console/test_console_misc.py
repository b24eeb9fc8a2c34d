"""The console's small pieces: SVG charts, where it may listen, and the `audit users` commands."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

import broker.oversight as oversight
import puente.commands.console as console_command
from broker.access import CONSOLE, plan
from broker.audit_index._store import at_ms
from broker.console_accounts import ConsoleAccounts
from broker.topology import TopicNames
from policies import load_policy_set
from puente.commands.console import register_audit_verbs
from puente.console.charts import MAX_BARS, bar_chart
from puente.console.core import SECURITY_HEADERS, SecurityHeaders
from puente.console.pages import _charts
from puente.console.server import Listen
from puente.console.views import cell, local_path, when
from puente.errors import ConfigError


def test_a_chart_is_svg_with_escaped_labels_and_no_style_attribute() -> None:
    """Labels are escaped; only presentation attributes, so the CSP's style-src 'self' holds."""
    svg = str(bar_chart("t", [("<b>x</b>", 3), ("y", 1)]))
    assert svg.startswith("<svg") and "&lt;b&gt;x&lt;/b&gt;" in svg and "style=" not in svg
    assert "Nothing to chart" in str(bar_chart("t", []))


def test_the_monthly_chart_past_its_bars_keeps_the_newest_months_and_says_how_many_it_leaves_out() -> None:
    """48 months of shares draw the newest 40 (the eight oldest left out, never the newest), with a line saying 8
    are not shown and to see the CSV; a chart ranked by size keeps its first bars and says the same, series colours
    following their bars; one within the limit says nothing of the kind."""
    shared = [{"month": f"{2022 + m // 12}-{m % 12 + 1:02d}", "alert_type": "SEIZURE", "sector": "DARIEN",
               "partner": "COL", "alerts": 10} for m in range(MAX_BARS + 8)]
    months = str(_charts({"shared_by_month": shared})[0]["svg"])
    labels = re.findall(r'class="label">([^<]*)<', months)
    assert len(labels) == MAX_BARS and labels[0] == "2022-09" and labels[-1] == "2025-12"
    assert "8 not shown (the oldest); see the CSV" in months
    ranked = str(bar_chart("t", [(f"r{i}", 100 - i) for i in range(MAX_BARS + 3)], series=["a", "b"] * 30))
    assert re.findall(r'class="label">([^<]*)<', ranked)[-1] == f"r{MAX_BARS - 1}"
    assert "3 not shown (the last listed); see the CSV" in ranked
    late = str(bar_chart("t", [(f"m{i}", 1) for i in range(MAX_BARS + 1)], series=["a", "b"] * 30, keep_last=True))
    assert re.findall(r'class="s(\d)">', late)[:2] == ["1", "0"]  # the first drawn is the second bar, b
    assert "not shown" not in str(bar_chart("t", [("x", 1)] * MAX_BARS))


def test_plain_http_is_refused_off_loopback() -> None:
    """Fail closed: a non-loopback address needs TLS; the TLS files come together."""
    assert Listen("127.0.0.1").check().url == "http://127.0.0.1:8443/"
    assert Listen("::1").check().url == "http://[::1]:8443/"
    with pytest.raises(ConfigError, match="without TLS"):
        Listen("0.0.0.0").check()  # noqa: S104 - the address being refused
    with pytest.raises(ConfigError, match="both"):
        Listen("127.0.0.1", tls_cert=Path("x.pem")).check()


def test_views_quote_formulas_and_follow_only_local_paths() -> None:
    """CSV cells that would run as formulas are led by a quote; redirects stay on the site."""
    assert cell("=1+1") == "'=1+1" and cell("-2") == "'-2" and cell(["a", "b"]) == "a; b" and cell(None) == ""
    assert local_path("/search?x=1") == "/search?x=1"
    assert local_path("//evil") == "/" and local_path("https://evil") == "/" and local_path(None) == "/"
    # What browsers strip from a URL (tabs, newlines) or read as a slash (a backslash) is escaped, never followed
    # to another site; a letter beyond ASCII is escaped as a browser would send it.
    for hostile in ("/\t/evil.example", "/\n/evil.example", "/\r\n/evil", "/ /evil", "/\u3000/evil", "/x\\evil"):
        out = local_path(hostile)
        assert out.startswith("/") and not out.startswith("//") and all(c.isascii() and c.isprintable() and c not in
                                                                         " \\" for c in out), (hostile, out)
    assert local_path("/\t/evil.example") == "/%09/evil.example" and local_path("/\\evil") == "/"
    assert local_path("/search?q=se%C3%B1al&partner=COL#top") == "/search?q=se%C3%B1al&partner=COL#top"
    assert local_path("/search?q=señal") == "/search?q=se%C3%B1al"


def _cli(tmp_path: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    register_audit_verbs(parser.add_subparsers(dest="verb", required=True))
    (tmp_path / "auditor").mkdir(mode=0o700, exist_ok=True)  # a named --accounts file's folder must be there
    args = parser.parse_args([*argv, "--accounts", str(tmp_path / "auditor" / "accounts.sqlite")])
    result: int = args.func(args)
    return result


def test_users_add_list_passwd_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The users verbs: a password from a file or asked twice, a scope checked against the policy."""
    secret = tmp_path / "pw"
    secret.write_text("a long enough password\n")
    secret.chmod(0o600)  # refused when others may read it, as every secret file is
    assert _cli(tmp_path, "users", "add", "ana", "--scope", "national", "--password-file", str(secret)) == 0
    with pytest.raises(ConfigError, match="unknown scope"):
        _cli(tmp_path, "users", "add", "eve", "--scope", "ATLANTIS", "--password-file", str(secret))
    answers = iter(["another long password", "another long password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert _cli(tmp_path, "users", "add", "sam", "--scope", "USA") == 0
    assert _cli(tmp_path, "users", "list") == 0
    out = capsys.readouterr().out
    assert "ana" in out and "national" in out and "sam" in out and "USA" in out and "long" not in out
    mismatch = iter(["one long password!!", "two long password!!"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(mismatch))
    with pytest.raises(ConfigError, match="differ"):
        _cli(tmp_path, "users", "passwd", "sam")
    assert _cli(tmp_path, "users", "remove", "sam") == 0
    with ConsoleAccounts.open(tmp_path / "auditor" / "accounts.sqlite", ["USA"], create=False) as accounts:
        assert [a.name for a in accounts.list()] == ["ana"]
        assert accounts.sign_in("ana", "a long enough password").account is not None


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", 10**20, -(10**20)])
def test_a_time_out_of_range_is_shown_as_written_and_never_indexed(value: object) -> None:
    """Times come from records partners sign: one datetime cannot convert is shown cut short and said unreadable,
    not a failed page, and the index orders no row by it."""
    assert when(value) == f"not a readable time: '{str(value)[:40]}'"
    assert at_ms(value if isinstance(value, str) else str(value)) is None
    assert when("2026-01-01T00:00:00Z") == "2026-01-01 00:00:00 UTC" and at_ms("2026-01-01T00:00:00Z") == 1767225600000


def test_a_page_that_fails_is_a_plain_500_with_the_security_headers() -> None:
    """Starlette's own error page is made outside the console's middleware: the middleware answers a failure
    itself, with its headers and nothing of the error."""
    async def broken(request: Request) -> Response:
        raise RuntimeError("secret detail")

    app = Starlette(routes=[Route("/x", broken)], middleware=[Middleware(SecurityHeaders, tls=False)])
    response = TestClient(app, raise_server_exceptions=False).get("/x")
    assert response.status_code == 500 and "secret detail" not in response.text
    assert all(response.headers.get(name) == value for name, value in SECURITY_HEADERS.items())


def test_the_console_is_said_to_run_as_the_one_login_the_plan_lets_write_the_query_log() -> None:
    """The access plan lets the console's login alone write the queries topic (the auditor's only reads it), and
    `audit serve`'s help and the query log's docstring name that login, not the auditor's."""
    names = TopicNames("puente")
    writers = {a.principal for a in plan(load_policy_set(), names, ("PN",), "puente-broker")
               if a.resource == "TOPIC" and a.name == names.queries and a.operation == "WRITE"}
    assert writers == {CONSOLE}
    verbs = argparse.ArgumentParser().add_subparsers()
    register_audit_verbs(verbs)
    serve = verbs.choices["serve"]
    for text in (serve.description, oversight.__doc__, console_command.__doc__):
        said = " ".join((text or "").split())
        assert "console" in said and "auditor's login from" not in said and "the auditor's Kafka login" not in said
        assert "as the auditor:" not in said
