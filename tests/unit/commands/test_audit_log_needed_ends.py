"""`audit log` reads for its end checks only what the ends of what its filter could list are checked against, and
counts a partition emptied past offset 0 (``PartitionReport.unchecked``) among what is not checked: a query-only
listing exits 0 with the broker group's offsets refused and no policy, a listing of decisions needs no policy,
and a query log deleted whole is not checked (5), never "0 record(s)" and 0."""

from __future__ import annotations

from typing import Any

import pytest

import broker.auditor as auditor
import tests.unit.commands.test_audit_commands as _shared
from puente.errors import EXIT_UNCHECKED, ConfigError
from tests.unit.commands.test_audit_commands import _puente

service = _shared.service  # the fixture, shared

QUERY = {"kind": "QUERY", "at": "2026-11-03T10:00:00Z", "auditor": "ana", "scope": "national", "page": "search",
         "params": {}, "results": 3}


@pytest.fixture
def no_policy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """No policy readable (an auditor workstation without PUENTE_POLICY_DIR); how often one was asked for."""
    asked: list[int] = []

    def load_policy_set(path: Any) -> Any:
        asked.append(1)
        raise ConfigError("no policy directory: set PUENTE_POLICY_DIR")

    monkeypatch.setattr(auditor, "load_policy_set", load_policy_set)
    return asked


def test_a_query_listing_reads_no_group_offsets_and_no_policy(service: dict[str, Any], no_policy: list[int],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    service["rows"], service["refuse"] = [QUERY], True
    assert _puente("audit", "log", "--kind", "query") == 0
    assert "1 record(s)" in capsys.readouterr().err
    assert "group" not in service and not no_policy


def test_a_decisions_listing_needs_no_policy_but_the_broker_group(service: dict[str, Any], no_policy: list[int],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    service["rows"] = []
    assert _puente("audit", "log", "--kind", "decision") == 0
    assert not no_policy and service["group"] == "p-broker"
    service["refuse"] = True
    assert _puente("audit", "log", "--kind", "decision") == EXIT_UNCHECKED
    assert "p-broker" in capsys.readouterr().err


def test_a_receipts_listing_without_the_policy_is_not_checked(service: dict[str, Any], no_policy: list[int],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    service["rows"] = []
    assert _puente("audit", "log", "--kind", "receipt") == EXIT_UNCHECKED
    assert no_policy and "PUENTE_POLICY_DIR" in capsys.readouterr().err
