"""What partners, agencies and auditors wrote reaches the console's pages with its control and bidi characters
escaped (the environment's ``finalize``), and a receipt status no subscriber writes is shown as unknown."""

from __future__ import annotations

from typing import Any

import pytest
from markupsafe import Markup
from starlette.testclient import TestClient

from broker.audit.verify import RECEIPT_STATUSES, known_status
from broker.audit_index import Page, Scope
from broker.console_accounts import ConsoleAccounts
from broker.partner import RECALL_NOT_HELD, RECALL_PASSED_ON
from broker.partner_store import Outcome
from puente.console import ConsoleConfig, create_app
from puente.console.core import templates
from puente.console.views import printable

from .conftest import FakeIndex, Sink, _sign_in, known_as, local_client

HOSTILE = "\x1b]0;PWNED\x07\x1b[2J\u202eLIAM\r<script>alert(1)</script>"
UNPRINTABLE = ("\x1b", "\x07", "\r", "\u202e")


def _receipt(status: str, detail: str | None = None) -> dict[str, Any]:
    return {"at": "2026-11-01T10:05:00Z", "kind": "RECEIPT", "partner": "USA", "version": 1, "decision": None,
            "agreement": None, "rules": None, "reasons": None, "redacted": None, "status": status,
            "detail": detail or "t.feed.USA:0:0"}


class HostileIndex(FakeIndex):
    """The fake index, with receipts, queries and a checkpoint as partners and auditors could write them."""

    statuses: tuple[str, ...] = ("RECEIVED",)

    def timeline(self, scope: Scope, alert_id: str, partner: str | None = None) -> list[dict[str, Any]] | None:
        events = super().timeline(scope, alert_id)
        if events is None:
            return None
        return [*events, _receipt("RECEIVED", HOSTILE), *(_receipt(s) for s in self.statuses)]

    def integrity(self, scope: Scope) -> dict[str, Any]:
        found = super().integrity(scope)
        found["chains"] = [{**c, "last_checkpoint_at": "\u202eZ00:00:21T10-30-6202\x1b[2J"} for c in found["chains"]]
        return found

    def queries_page(self, scope: Scope, page: int = 1, per_page: int = 200) -> Page:
        rows = [{"auditor": "sam", "scope": "USA", "page": "search", "params": {"alert": "\u202e1:ANS\x1b[8m"},
                 "results": 0, "at": "2026-11-01T11:00:00Z"}]
        return Page(rows, 1, page, per_page)


def _client(accounts: ConsoleAccounts, index: FakeIndex, who: str = "ana") -> TestClient:
    client = local_client(create_app(ConsoleConfig(lambda: index, accounts, Sink())), follow_redirects=False)
    assert _sign_in(client, who).status_code == 303
    return client


def _main(page: str) -> str:
    return page.split("<main>", 1)[1]


@pytest.mark.parametrize("who", ["ana", "sam"])
def test_a_receipts_controls_and_bidi_characters_are_escaped_on_the_timeline(accounts: ConsoleAccounts,
                                                                              who: str) -> None:
    """A receipt's detail holding ESC, BEL, CR and U+202E reaches the page as their escapes, HTML escaped once."""
    named = "A-BOTH" if who == "ana" else known_as("USA", "A-BOTH")  # USA's auditor knows it by USA's reference
    page = _client(accounts, HostileIndex(), who).get(f"/alerts/{named}")
    assert page.status_code == 200
    assert not any(c in page.text for c in UNPRINTABLE)
    assert "\\x1b]0;PWNED\\x07\\x1b[2J\\u202eLIAM\\r&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "&amp;lt;" not in page.text


def test_a_query_typed_with_a_bidi_override_is_escaped_on_the_queries_page(accounts: ConsoleAccounts) -> None:
    """An oversight auditor's typed parameters reach the national auditors' page escaped, not reversed."""
    page = _client(accounts, HostileIndex()).get("/queries")
    assert page.status_code == 200 and not any(c in page.text for c in UNPRINTABLE)
    assert "alert=\\u202e1:ANS\\x1b[8m" in page.text


@pytest.mark.parametrize("who", ["ana", "sam"])
def test_a_checkpoint_time_that_is_no_time_is_escaped_and_said_unreadable(accounts: ConsoleAccounts,
                                                                          who: str) -> None:
    """A partner's checkpoint time reading as a time once reversed by U+202E is shown escaped, as no time."""
    page = _client(accounts, HostileIndex(), who).get("/integrity")
    assert page.status_code == 200 and not any(c in page.text for c in UNPRINTABLE)
    assert "not a readable time: &#39;\\u202eZ00:00:21T10-30-6202\\x1b[2J&#39; (seq 3)" in page.text


def test_a_receipt_status_no_subscriber_writes_is_shown_as_unknown(accounts: ConsoleAccounts) -> None:
    """U+202E + DEVIECER (drawn as RECEIVED) and a look-alike in other letters are named unknown, never a pill;
    the statuses subscribers write, a REJECTED one included, are pills."""
    index = HostileIndex()
    index.statuses = ("\u202eDEVIECER", "RECEIV\u0415D", "DUPLICATE", "REJECTED: SignatureError; given up")
    main = _main(_client(accounts, index).get("/alerts/A-BOTH").text)
    assert "unknown status '\\u202eDEVIECER'" in main and "unknown status 'RECEIV\u0415D'" in main
    assert '<span class="pill status">RECEIV\u0415D' not in main and '<span class="pill status">\\u202e' not in main
    assert '<span class="pill status">DUPLICATE</span>' in main
    assert '<span class="pill status">REJECTED: SignatureError; given up</span>' in main
    assert main.count('<span class="pill status">RECEIVED</span>') == 1


def test_the_known_statuses_are_those_subscribers_write() -> None:
    """``RECEIPT_STATUSES`` is the store's outcomes and the subscriber's two recall statuses; a REJECTED status
    names an error class, given up or not."""
    assert {o.value for o in Outcome} | {RECALL_PASSED_ON, RECALL_NOT_HELD} == RECEIPT_STATUSES
    assert known_status("REJECTED: CodecError") and known_status("REJECTED: CryptoError; given up")
    for odd in ("REJECTED: ", "REJECTED: x y", "received", "RECEIVED ", "\u202eDEVIECER", None, 1):
        assert not known_status(odd)


def test_printable_escapes_strings_and_keeps_markup_as_html() -> None:
    """Strings are escaped as ``plain`` escapes them; what is already escaped stays as it is; Markup keeps its
    line breaks and stays Markup; numbers and None are left to Jinja."""
    assert printable("a\u202eb\x1bc\nd") == "a\\u202eb\\x1bc\\nd"
    assert printable(printable("a\u202eb")) == printable("a\u202eb") and printable("plain text é") == "plain text é"
    made = printable(Markup("<label>a\x1b</label>\n<select>\n</select>"))
    assert isinstance(made, Markup) and made == Markup("<label>a\\x1b</label>\n<select>\n</select>")
    assert printable(3) == 3 and printable(None) is None and printable(["\x1b"]) == "['\\x1b']"


def test_a_macros_output_is_not_escaped_twice() -> None:
    """A macro's output (Markup, with its layout's line breaks) renders as HTML, its values escaped once."""
    env = templates()
    page = env.from_string('{% macro m(v) %}<b>{{ v }}</b>\n<i>x</i>{% endmacro %}{{ m("<\u202e>") }}').render()
    assert page == "<b>&lt;\\u202e&gt;</b>\n<i>x</i>"


def test_the_search_page_renders_as_before(accounts: ConsoleAccounts) -> None:
    """The search form (macros) and results show no escape where the template has a line break."""
    page = _client(accounts, FakeIndex()).get("/search")
    assert page.status_code == 200 and "\\n" not in page.text and '<select name="partner">' in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "&amp;lt;" not in page.text
