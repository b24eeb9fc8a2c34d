"""A dead letter's alert id is only its record's key: where auditors are shown one (`audit log`'s table, an alert's
timeline), it names the ingress place the record came from, and marks the id unproven when its origin was."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest
from worker_fakes import counted

import broker.pipeline as pipeline
from broker.audit import ChainWriter, flatten
from broker.audit_index import AuditIndex, Scope
from broker.crypto.keys import SecretBytes
from broker.crypto.origin import sign_ingress, verify_ingress
from broker.pipeline import ORIGIN_PROVEN, Originator, Pipeline, dead_letter_source
from broker.topology import Slots, TopicNames, key_partition
from puente import wire
from puente.commands.audit import _rows
from puente.errors import OriginError
from puente.wire import Record
from schemas import alert_codec
from tests.unit.broker.test_audit_index import DECISIONS, _alert, _decision, _ingest, _signer
from tests.unit.broker.test_pipeline import NOW, NOW_MS, FakePolicy, FakeSealer

SLOTS = Slots(("PN", "SNM"), 3, TopicNames("t"))
ORIGINATORS = {a: Originator.of(a, "PAN", "PAN") for a in SLOTS.agencies}
KEYS = {a: SecretBytes(bytes([i + 1]) * 32, key_id=f"{a}-mac-2026a") for i, a in enumerate(SLOTS.agencies)}


def _origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
    """The broker's origin check (``broker.service``), over ``KEYS``."""
    proven = verify_ingress(list(headers), value,
                            lambda agency, kid: KEYS[agency] if agency in KEYS and KEYS[agency].key_id == kid else None)
    if proven.alert_id != key:
        raise OriginError("the MAC-protected alert id differs from the record key")
    return proven.agency, proven.published_ms


def _dead(key: bytes, headers: Sequence[tuple[str, bytes]]) -> dict[str, object]:
    """The audit entry of a record on PN's ingress topic, at offset 4, whose value is no alert."""
    sealers = {"COL": FakeSealer(), "USA": FakeSealer()}
    pipe = counted(Pipeline(FakePolicy(), alert_codec(), sealers, _origin, SLOTS,  # type: ignore[arg-type]
                            replay_window_days=7, originators=ORIGINATORS))
    record = Record("t.ingress.PN", key_partition(key, 3), 4, key, b"\xc3\x01junk", tuple(headers), NOW_MS)
    entry = pipe.process(record, set(), NOW).entry
    assert entry["kind"] == "DEAD_LETTER"
    return entry


def _forged() -> dict[str, object]:
    """PN writes, on its own topic, a record keyed with SNM's alert id and headers naming SNM: its MAC fails."""
    return _dead(b"SNM:1", ((wire.AGENCY, b"SNM"), (wire.KEY_ID, b"SNM-mac-2026a"), (wire.ALERT_ID, b"SNM:1"),
                            (wire.PUBLISHED, str(NOW_MS).encode()), (wire.MAC, b"\0" * 32)))


def test_a_dead_letter_whose_origin_failed_names_its_key_unproven_and_its_source() -> None:
    """The broker dead-letters PN's forged record under SNM:1; what auditors read says the id is an unproven key
    and the record came from PN's topic."""
    entry = _forged()
    assert entry["reason"] == "origin" and entry["alert_id"] == "SNM:1"
    assert dead_letter_source(entry) == f"key SNM:1 (unproven), from t.ingress.PN:{key_partition(b'SNM:1', 3)}:4"


def test_a_dead_letter_whose_origin_was_proven_names_its_source_only() -> None:
    """A record PN signed, keyed with its own MAC, but holding no alert: its origin is proven (PN's), so its key is
    PN's own word; it is still said where it came from. Keyed with another agency's id, PN's MAC proves only who
    wrote it: refused as ``origin`` and shown unproven, never listed as a record of SNM's."""
    headers = sign_ingress("PN", "PN-mac-2026a", KEYS["PN"], b"\xc3\x01junk", "PN:1", NOW_MS)
    entry = _dead(b"PN:1", headers)
    assert entry["reason"] in ORIGIN_PROVEN
    assert dead_letter_source(entry) == f"from t.ingress.PN:{key_partition(b'PN:1', 3)}:4"
    foreign = _dead(b"SNM:1", sign_ingress("PN", "PN-mac-2026a", KEYS["PN"], b"\xc3\x01junk", "SNM:1", NOW_MS))
    assert foreign["reason"] == "origin" and "no alert id of PN" in foreign["detail"]
    assert dead_letter_source(foreign) == f"key SNM:1 (unproven), from t.ingress.PN:{key_partition(b'SNM:1', 3)}:4"
    assert dead_letter_source({"reason": "origin", "alert_id": None, "ingress": "t.ingress.PN:0:1"}) == \
        "from t.ingress.PN:0:1"
    assert dead_letter_source({"reason": "empty", "alert_id": "X:1"}) == "key X:1 (unproven)"
    assert dead_letter_source({"reason": "schema", "detail": "not an alert"}) == ""


def _raised(nodes: list[ast.stmt]) -> set[str]:
    return {node.args[0].value for stmt in nodes for node in ast.walk(stmt)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_Reject"
            and node.args and isinstance(node.args[0], ast.Constant)}


def test_only_the_reasons_given_after_the_origin_check_count_as_proven() -> None:
    """``ORIGIN_PROVEN`` holds every reason ``_admit`` gives once the origin is proven, and none it gives before
    (a reason given before the check and taken for proven would pass an unproven key off as an agency's)."""
    body = ast.parse(textwrap.dedent(inspect.getsource(pipeline.Pipeline._admit))).body[0]
    assert isinstance(body, ast.FunctionDef)
    checked = next(i for i, stmt in enumerate(body.body) if "proven != agency" in ast.unparse(stmt))
    before, after = _raised(body.body[:checked + 1]), _raised(body.body[checked + 1:])
    assert before == {"unknown-topic", "unreadable", "empty", "too-large", "origin"}
    assert not before & ORIGIN_PROVEN and after <= ORIGIN_PROVEN and "internal" not in ORIGIN_PROVEN
    codec_reasons = {"not-avro", "unknown-schema", "corrupt", "schema-violation", "undecodable"}
    assert codec_reasons <= ORIGIN_PROVEN  # ``_codec_reason``'s, given once decoding (after the check) fails


def test_the_log_table_says_a_dead_letters_id_is_an_unproven_key_from_another_topic(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`puente audit log --alert SNM:1`: the DEAD_LETTER row's reason column starts with where it came from."""
    _rows([_forged()], 5)
    row = capsys.readouterr().out.splitlines()[1]
    assert "DEAD_LETTER" in row and "origin" in row
    assert f"key SNM:1 (unproven), from t.ingress.PN:{key_partition(b'SNM:1', 3)}:4: ingress record MAC" in row


def test_the_timeline_says_a_dead_letters_id_is_an_unproven_key_from_another_topic(tmp_path: Path) -> None:
    """SNM:1's timeline, for national auditors, shows PN's forged record as an unproven key from PN's topic."""
    writer = ChainWriter(DECISIONS, 0)
    entries = [_alert("SNM:1", 0, [_decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")]), _forged()]
    block = writer.block(entries, "broker-sign-2026a", _signer("broker-sign-2026a"), "2026-03-01T12:00:00Z")
    assert [d["kind"] for d in flatten(orjson.loads(block))] == ["DECISION", "DEAD_LETTER"]
    index = AuditIndex(tmp_path / "index.sqlite")
    _ingest(index, {DECISIONS: [block]})
    dead = [e for e in index.timeline(Scope(), "SNM:1") or [] if e["kind"] == "DEAD_LETTER"]
    assert len(dead) == 1 and dead[0]["status"] == "origin"
    assert str(dead[0]["detail"]).startswith(
        f"key SNM:1 (unproven), from t.ingress.PN:{key_partition(b'SNM:1', 3)}:4: ingress record MAC does not verify")
