"""The bad corpus under samples/bad: each bad record gets its reason, clearly, and nothing crashes."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.config import Context
from adapters.core import Result, convert
from adapters.registry import ADAPTERS, get

BAD = Path(__file__).resolve().parents[3] / "samples" / "bad"
EXPECTED: dict[str, dict[str, dict[int, str]]] = yaml.safe_load((BAD / "expected.yaml").read_text("utf-8"))
CASES = [(name, file) for name, files in sorted(EXPECTED.items()) for file in sorted(files)]
REASONS = {"encoding", "syntax", "truncated", "missing-column", "missing-field", "invalid-date", "future-date",
           "out-of-region", "negative-quantity", "unknown-code", "too-long", "invalid-value", "schema-violation",
           "duplicate-key", "invisible-character", "mixed-script", "trailer-mismatch", "wrong-format"}
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=8)


def test_the_corpus_covers_every_adapter_and_kind_of_bad_input() -> None:
    """Every adapter has bad files, and together they exercise each reason the issue names."""
    assert set(EXPECTED) == set(ADAPTERS)
    seen = {reason for files in EXPECTED.values() for recs in files.values() for reason in recs.values()}
    assert {"encoding", "missing-column", "invalid-date", "out-of-region", "negative-quantity", "unknown-code",
            "too-long", "truncated", "duplicate-key", "invisible-character"} <= seen
    for name in ("senan", "snm", "combifron"):  # every JSON reader meets a key given twice
        assert "duplicate-key" in {r for recs in EXPECTED[name].values() for r in recs.values()}, name
    on_disk = {(p.parent.name, p.name) for p in BAD.glob("*/*") if p.is_file()}
    assert on_disk == set(CASES)


@pytest.mark.parametrize(("name", "file"), CASES)
def test_each_bad_record_gets_its_reason(name: str, file: str, run: Callable[..., list[Result]]) -> None:
    """Every record of the file is accounted for, with the expected reason and a message that says where."""
    results = run(name, BAD / name / file)
    got = {r.item.number: (r.error.reason if r.error else "ok") for r in results}
    assert got == EXPECTED[name][file]
    for r in results:
        if r.error is not None:
            assert r.error.reason in REASONS
            assert len(str(r.error)) > 15 and "Traceback" not in str(r.error)
            assert r.alert is None and r.value is None
            assert r.item.line >= 1 or r.item.number == 0


def _good_records(name: str) -> list[Any]:
    from datetime import datetime

    from puente.dev import _samples

    return list(_samples.records(name, 3, seed=5, base=datetime(2026, 11, 20, 12, 0)))


@pytest.mark.parametrize("name", ["senan", "snm", "combifron"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_json_records_never_crash(name: str, data: st.DataObject, ctx_for: Callable[[str], Context]) -> None:
    """A valid record with any field replaced by any JSON value, or removed, is mapped or refused, never raised."""
    record = copy.deepcopy(data.draw(st.sampled_from(_good_records(name))))
    node = record
    for _ in range(data.draw(st.integers(0, 3))):
        if not isinstance(node, dict) or not node:
            break
        key = data.draw(st.sampled_from(sorted(node)))
        if data.draw(st.booleans()) or not isinstance(node[key], dict | list):
            if data.draw(st.booleans()):
                node[key] = data.draw(JSON)
            else:
                del node[key]
            break
        node = node[key] if isinstance(node[key], dict) else (node[key][0] if node[key] else node)
    line = json.dumps(record, ensure_ascii=False).encode() + b"\n"
    if name == "senan":
        line = json.dumps(record, ensure_ascii=False, indent=2).encode() + b"\n"
    results = list(convert(get(name), io.BytesIO(line), ctx_for(get(name).agency)))
    assert len(results) == 1
    assert (results[0].error is None) != (results[0].value is None)


@pytest.mark.parametrize("name", list(ADAPTERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(max_size=400))
def test_arbitrary_bytes_never_crash(name: str, junk: bytes, run: Callable[..., list[Result]]) -> None:
    """Random bytes, alone or after a valid header, only ever give refused records."""
    header = {"senafront": "N° Informe;Fecha;Hora;Tipo de evento\n".encode(), "pn": b"H"}.get(name, b"")
    for data in (junk, header + junk):
        for r in run(name, data):
            assert r.error is None or r.error.reason in REASONS
