"""`audit log` counts a partition emptied past offset 0 (``PartitionReport.unchecked``, from ``read_log``) among
what is not checked where its filter could list it: a query log deleted whole is not checked (5), never
"0 record(s)" and 0."""

from __future__ import annotations

from typing import Any

import pytest

import tests.unit.commands.test_audit_commands as _shared
from broker.audit import PartitionReport
from broker.audit.verify import emptied_unchecked
from puente.errors import EXIT_UNCHECKED
from tests.unit.commands.test_audit_commands import _puente

service = _shared.service  # the fixture, shared


def test_a_partition_emptied_is_not_checked_where_the_filter_lists_it(service: dict[str, Any],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    why = emptied_unchecked("p.queries", 0, 40, "queries")
    service["rows"], service["end_reports"] = [], [PartitionReport("p.queries", 0, unchecked=why)]
    assert _puente("audit", "log", "--kind", "query") == EXIT_UNCHECKED
    err = capsys.readouterr().err
    assert "0 record(s)" in err and "1 chain end(s) or partition(s) not checked" in err and "offset 40" in err
    assert _puente("audit", "log", "--kind", "decision") == 0  # a partition it could not list: nothing missing
