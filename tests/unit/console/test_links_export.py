"""Links built from agency-chosen ids stay one path segment; a CSV export streams what the log recorded."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin

import pytest

from broker.audit import ChainWriter
from broker.audit_index import AuditIndex, Query, Scope
from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app, pages
from puente.console.views import segment
from tests.unit.broker.test_audit_index import DECISIONS, _alert, _ingest, _signer
from tests.unit.broker.test_audit_index import _decision as _indexed_decision
from tests.unit.console.conftest import LOCAL, FakeIndex, Sink, _decision, _sign_in, local_client

# An id an agency may choose (letters, digits and . _ / # -): as a link, it must not climb out of /alerts/.
CLIMBING = "SENAN:x/../../../dead-letters"


def test_segment_encodes_every_slash_and_reserved_character() -> None:
    """``segment`` leaves no '/', '?', '#' or '%' unencoded, and decodes back to the value."""
    for value in (CLIMBING, "a?b#c%d", "..", "ñandú x"):
        encoded = segment(value)
        assert not set("/?#") & set(encoded) and unquote(encoded) == value
    assert segment(None) == ""


@pytest.mark.parametrize("page", ["/search", "/receipts", f"/alerts/{segment(CLIMBING)}",
                                  f"/alerts/{segment(CLIMBING)}?partner=USA"])
def test_alert_links_resolve_under_alerts_and_reach_the_alert(accounts: ConsoleAccounts, page: str) -> None:
    """Every link a page builds from an alert id stays under /alerts/ as a browser resolves it, and opens the alert."""
    rows = [_decision(1, CLIMBING, "USA", "DELIVER")]
    client = local_client(create_app(ConsoleConfig(lambda: FakeIndex(rows), accounts, Sink())), follow_redirects=False)
    assert _sign_in(client, "ana").status_code == 303
    answer = client.get(page)
    assert answer.status_code == 200
    links = re.findall(r'href="(/alerts/[^"]*)"', answer.text)
    assert links
    for href in links:
        resolved = urljoin(LOCAL + page, href.replace("&amp;", "&"))
        assert resolved.startswith(f"{LOCAL}/alerts/SENAN%3Ax%2F"), resolved
        assert client.get(resolved).status_code == 200


def test_no_template_builds_a_path_segment_with_urlencode() -> None:
    """No template puts ``urlencode`` output in a URL path (it keeps '/'): path segments use ``segment``."""
    folder = Path(__file__).parents[3] / "puente" / "console" / "templates"
    for template in folder.glob("*.html"):
        for href in re.findall(r'href="([^"?]*)', template.read_text(encoding="utf-8")):
            assert "urlencode" not in href, (template.name, href)


def _block(writer: ChainWriter, i: int) -> bytes:
    return writer.block([_alert(f"U:{i}", i, [_indexed_decision("USA", "DELIVER", ["usa.cover"], feed="t.feed.USA")])],
                        "broker-sign-2026a", _signer("broker-sign-2026a"), "2026-03-01T12:00:00Z")


def test_csv_export_streams_the_rows_the_log_recorded(tmp_path: Path, accounts: ConsoleAccounts) -> None:
    """A catch-up committing between the count and the stream changes neither: the log and the CSV agree."""
    path = tmp_path / "ix" / "index.sqlite"
    writer = ChainWriter(DECISIONS, 0)
    blocks = [_block(writer, i) for i in range(3)]
    with AuditIndex(path) as made:
        _ingest(made, {DECISIONS: blocks})
    more = blocks + [_block(writer, i) for i in range(3, 10)]
    landed: list[bool] = []

    class CatchUpAfterCount(AuditIndex):
        def count(self, scope: Scope, q: Query) -> int:
            counted = super().count(scope, q)
            if not landed:  # the console's periodic catch-up lands just after the count
                landed.append(True)
                with AuditIndex(path) as writing:
                    _ingest(writing, {DECISIONS: more})
            return counted

    sink = Sink()
    opened: list[Any] = []

    def open_index() -> AuditIndex:
        opened.append(CatchUpAfterCount(path, readonly=True))
        return opened[-1]

    client = local_client(create_app(ConsoleConfig(open_index, accounts, sink)), follow_redirects=False)
    assert _sign_in(client, "ana").status_code == 303
    answer = client.get("/search.csv")
    streamed = len(answer.text.strip().splitlines()) - 1
    assert landed and sink.records[-1]["page"] == "search.csv"
    assert sink.records[-1]["results"] == streamed == 3
    with AuditIndex(path, readonly=True) as after:
        assert after.count(Scope(), Query()) == 10  # the catch-up did commit: the next export has it all


def test_a_refused_export_closes_its_snapshot(tmp_path: Path, accounts: ConsoleAccounts) -> None:
    """When the query cannot be recorded, the export's own connection is closed, never left holding a snapshot."""
    closed: list[bool] = []

    class Tracked(FakeIndex):
        def close(self) -> None:
            closed.append(True)

    sink = Sink()
    client = local_client(create_app(ConsoleConfig(Tracked, accounts, sink)), follow_redirects=False)
    assert _sign_in(client, "ana").status_code == 303
    sink.failing = True
    opened_before = len(closed)
    assert client.get("/search.csv").status_code == 503
    assert len(closed) - opened_before == 2  # the page's index and the export's


def test_an_export_past_its_deadline_is_cut_short_and_closes_its_snapshot(
        accounts: ConsoleAccounts, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client reading an export slowly holds the index's snapshot no longer than ``EXPORT_DEADLINE_S``: past it the
    stream stops with an error (the download fails, never passes for whole) and the export's connection closes."""
    closed: list[bool] = []

    class Tracked(FakeIndex):
        def close(self) -> None:
            closed.append(True)

    rows = [_decision(i, f"SNM:{i}", "USA", "DELIVER") for i in range(3)]
    client = local_client(create_app(ConsoleConfig(lambda: Tracked(rows), accounts, Sink())), follow_redirects=False)
    assert _sign_in(client, "ana").status_code == 303
    assert len(client.get("/search.csv").text.strip().splitlines()) == 4  # within the deadline: whole
    monkeypatch.setattr(pages, "EXPORT_DEADLINE_S", -1.0)
    before = len(closed)
    with pytest.raises(pages.ExportTooSlow):
        client.get("/search.csv")
    assert len(closed) - before == 2  # the page's index and the export's
