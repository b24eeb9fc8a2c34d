"""The ledger counts only the copies the broker would take; a copy its keystore cannot check spares a pure re-run and
blocks nothing else."""

from __future__ import annotations

import asyncio
import copy
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.ledger import Ledger, Verdict, digest, read_ledger
from adapters.lifecycle import own_mac_lookup
from broker.crypto import SecretBytes, sign_ingress
from broker.keystore import Keystore
from broker.topology import key_partition
from puente.wire import Record
from schemas import alert_codec

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "snm" / "alertas-migratorias-2026-11.jsonl"
PARTITIONS = 3
TOPIC = "t.ingress.SNM"
MADE_UP = "SNM-kex-1999z+broker-kex-1999z"  # a generation no one ever made
MARCADO = {"clasificacion": "CONFIDENCIAL", "difusion": ["COL", "USA", "CRI"], "advertencias": [], "manejo": "H0",
           "calificacion": "B3"}


def _site(root: Path, generation: str) -> Keystore:
    site = Keystore.provision(root, partners=[], agencies=["SNM", "PN"], agreements=[], generation=generation,
                              now=datetime(2026, 1, 5, tzinfo=UTC))
    return site.agencies["SNM"]


def _export() -> bytes:
    return b"".join(SAMPLE.read_bytes().splitlines(keepends=True)[:3])


def _revised(line: int, revision: int, **more: Any) -> bytes:
    """The sample's record ``line`` (0-based) at ``revision``, with every marking stated, as a correction must."""
    doc = json.loads(SAMPLE.read_bytes().splitlines()[line])
    doc.update(revision=revision, marcado=MARCADO, **more)
    return json.dumps(doc, ensure_ascii=False).encode() + b"\n"


def _alerts(run: Callable[..., list[Any]], data: bytes | None = None) -> list[tuple[dict[str, Any], bytes]]:
    results = run("snm", _export() if data is None else data)
    assert all(r.error is None for r in results), [(r.error.reason, str(r.error)) for r in results if r.error]
    return [(r.alert, r.value) for r in results]


def _copy(alert: dict[str, Any], value: bytes, mac: SecretBytes, *, partition: int | None = None,
          who: str = "SNM") -> Record:
    key = alert["alert_id"].encode()
    placed = key_partition(key, PARTITIONS) if partition is None else partition
    return Record(TOPIC, placed, 0, key, value, tuple(sign_ingress(who, mac.key_id, mac, value, alert["alert_id"])), 0)


def _forged(alert: dict[str, Any], key_id: str = MADE_UP) -> Record:
    """A copy of ``alert`` by someone who can write the topic and holds no MAC key: a garbage MAC under ``key_id``."""
    return _copy(alert, alert_codec().encode(alert), SecretBytes(b"x" * 32, key_id=key_id))


def _as(alert: dict[str, Any], version: int, action: str | None, **changed: Any) -> dict[str, Any]:
    other = copy.deepcopy(alert)
    other["version"] = version
    other["lifecycle"] = None if action is None else {"action": action, "reason": "ERROR" if action == "RECALL"
                                                      else None, "partners": []}
    other.update(changed)
    return other


def _mine(alert: dict[str, Any]) -> bytes:
    return digest(alert_codec().encode(alert))


async def _ledger(topic: list[Record], keystore: Keystore, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    async def scan(conn: Any, name: str, keep: Callable[[Record], Any],
                   sized: Callable[[int], Any] | None = None) -> None:
        if sized is not None:
            sized(PARTITIONS)
        for rec in topic:
            keep(rec)

    monkeypatch.setattr("adapters.ledger.scan", scan)
    return await read_ledger(None, TOPIC, alert_codec(), "SNM",  # type: ignore[arg-type]
                             own_mac_lookup(keystore, "SNM"), None)


def _adapt(offline: Callable[..., tuple[Any, Any]], ledger: Ledger, data: bytes) -> tuple[Any, Any]:
    adapter_run, kafka = offline("snm")
    adapter_run.ledger = ledger
    return asyncio.run(adapter_run.run(io.BytesIO(data), "hits.jsonl")), kafka


async def test_an_old_export_run_again_after_a_rotation_is_a_duplicate(
        tmp_path: Path, run: Callable[..., list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """After a rotation whose old generation's file was removed, an export run again is a duplicate of the copies under
    the old key (UNCHECKED), not new; a later version is new; the key put back, they are plain duplicates."""
    old, new = _site(tmp_path / "a", "2026a"), _site(tmp_path / "b", "2026b")
    old_mac = old.load_agency_mac("SNM")
    alerts = _alerts(run)
    topic = [_copy(alert, value, old_mac) for alert, value in alerts]
    ledger = await _ledger(topic, new, monkeypatch)
    for alert, value in alerts:
        assert ledger.judge_alert(alert, digest(value)) is Verdict.UNCHECKED
        assert ledger.judge(alert["alert_id"], 2, b"a later version") is Verdict.NEW
    assert len(ledger) == 0 and ledger.unverified == 3 and ledger.unverifiable == 3
    assert ledger.unverifiable_keys == {old_mac.key_id}
    back = await _ledger(topic, old, monkeypatch)
    assert back.unverifiable == 0
    assert all(back.judge_alert(alert, digest(value)) is Verdict.DUPLICATE for alert, value in alerts)


async def test_a_correction_or_a_recall_after_a_rotation_is_new(
        tmp_path: Path, run: Callable[..., list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Version 1 on the topic under a generation removed after a rotation does not hold back version 2, an UPDATE or a
    RECALL: it is NEW, as the broker takes it (2 after 1), and no copy stands at its version."""
    old, new = _site(tmp_path / "a", "2026a"), _site(tmp_path / "b", "2026b")
    (alert, value), _, _ = _alerts(run)
    ledger = await _ledger([_copy(alert, value, old.load_agency_mac("SNM"))], new, monkeypatch)
    for action in ("UPDATE", "RECALL"):
        later = _as(alert, 2, action)
        assert ledger.judge_alert(later, _mine(later)) is Verdict.NEW
    assert not ledger.overtaken(alert["alert_id"], 2)


async def test_a_copy_under_a_key_gone_is_never_a_conflict_older_or_a_recall(
        tmp_path: Path, run: Callable[..., list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy under a key the keystore lacks, of other content at the version, at a later version, or a recall, does not
    make the record CONFLICT, OLDER or RECALLED: it is NEW, and counted overtaken (the broker may refuse it)."""
    old, new = _site(tmp_path / "a", "2026a"), _site(tmp_path / "b", "2026b")
    old_mac = old.load_agency_mac("SNM")
    (first, _), (second, _), (third, _) = _alerts(run)
    other = _as(first, 1, None, summary="other content")
    topic = [_copy(other, alert_codec().encode(other), old_mac),
             _copy(_as(second, 4, "UPDATE"), alert_codec().encode(_as(second, 4, "UPDATE")), old_mac),
             _copy(_as(third, 2, "RECALL"), alert_codec().encode(_as(third, 2, "RECALL")), old_mac)]
    ledger = await _ledger(topic, new, monkeypatch)
    assert ledger.unverifiable == 3 and len(ledger) == 0
    assert ledger.judge_alert(first, _mine(first)) is Verdict.NEW
    assert ledger.judge_alert(_as(second, 2, "UPDATE"), _mine(_as(second, 2, "UPDATE"))) is Verdict.NEW
    assert ledger.judge_alert(_as(third, 3, "UPDATE"), _mine(_as(third, 3, "UPDATE"))) is Verdict.NEW
    assert ledger.overtaken(first["alert_id"], 1) and ledger.overtaken(second["alert_id"], 2)
    assert ledger.overtaken(third["alert_id"], 3) and not ledger.overtaken(second["alert_id"], 5)


@pytest.mark.parametrize("forged_key", [MADE_UP, "own+broker-kex-1999z"])
async def test_a_forged_copy_blocks_no_genuine_record_nor_recall(
        forged_key: str, tmp_path: Path, run: Callable[..., list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone who can write the topic and holds no MAC key writes copies of an id (a future one too) under a made-up
    generation, or the agency's real key paired with a made-up broker key: the genuine first version, a later one and a
    recall (an SNM withdrawal) are still NEW; only a copy of a record's exact content spares it, never a recall's."""
    keystore = _site(tmp_path, "2026a")
    key_id = forged_key.replace("own", keystore.load_agency_mac("SNM").key_id.split("+")[0])
    (alert, value), _, _ = _alerts(run)
    recall = _as(alert, 5, "RECALL")
    topic = [_forged(_as(alert, 1, None, summary="forged"), key_id), _forged(_as(alert, 5, "UPDATE"), key_id),
             _forged(_as(alert, 3, "RECALL"), key_id), _forged(recall, key_id)]
    ledger = await _ledger(topic, keystore, monkeypatch)
    assert ledger.judge_alert(alert, digest(value)) is Verdict.NEW
    later = _as(alert, 2, "UPDATE")
    assert ledger.judge_alert(later, _mine(later)) is Verdict.NEW
    assert ledger.judge_alert(recall, _mine(recall)) is Verdict.NEW
    assert ledger.unverifiable == 4 and ledger.unverifiable_keys == {key_id}
    ledger.add(alert["alert_id"], 1, digest(value))  # published: the forged copies still hold nothing back
    assert ledger.judge_alert(later, _mine(later)) is Verdict.NEW
    assert ledger.judge_alert(recall, _mine(recall)) is Verdict.NEW
    # The exact content of a version that is no recall, foreseen, spares it: the forger's only reach.
    assert ledger.judge_alert(_as(alert, 5, "UPDATE"), _mine(_as(alert, 5, "UPDATE"))) is Verdict.UNCHECKED


async def test_copies_the_broker_refuses_whatever_its_keys_are_left_out(
        tmp_path: Path, run: Callable[..., list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy whose MAC fails with a key the keystore holds, one naming another agency's key, or one without origin
    headers is refused by the broker whatever it holds: left out, not even counted unverifiable; the genuine record
    is new."""
    keystore = _site(tmp_path, "2026a")
    mine = keystore.load_agency_mac("SNM")
    pn = Keystore(tmp_path / "agencies" / "PN").load_agency_mac("PN")
    forged = SecretBytes(b"f" * 32, key_id=mine.key_id)
    (alert, value), (second, value2), (third, value3) = _alerts(run)
    topic = [_copy(alert, value, forged), _copy(second, value2, pn),
             Record(TOPIC, key_partition(third["alert_id"].encode(), PARTITIONS), 0, third["alert_id"].encode(),
                    value3, (), 0)]
    ledger = await _ledger(topic, keystore, monkeypatch)
    assert ledger.unverified == 3 and ledger.unverifiable == 0
    for a, v in ((alert, value), (second, value2), (third, value3)):
        assert ledger.judge_alert(a, digest(v)) is Verdict.NEW


async def test_a_copy_outside_its_keys_partition_is_not_a_publication(
        tmp_path: Path, run: Callable[..., list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A MAC-valid copy in another partition than its key's, which the broker dead-letters as misrouted, does not
    make the real record a duplicate (nor a conflict, nor recalled): the ledger counts it misrouted."""
    keystore = _site(tmp_path, "2026a")
    mac = keystore.load_agency_mac("SNM")
    (alert, value), (second, value2), _ = _alerts(run)
    wrong = (key_partition(alert["alert_id"].encode(), PARTITIONS) + 1) % PARTITIONS
    ledger = await _ledger([_copy(alert, value, mac, partition=wrong), _copy(second, value2, mac)], keystore,
                           monkeypatch)
    assert ledger.judge_alert(alert, digest(value)) is Verdict.NEW
    assert ledger.judge_alert(second, digest(value2)) is Verdict.DUPLICATE
    assert ledger.misrouted == 1 and len(ledger) == 1


def test_a_run_again_after_a_rotation_publishes_nothing_and_says_why(
        tmp_path: Path, run: Callable[..., list[Any]], offline: Callable[..., tuple[Any, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The export run again after the rotation is counted duplicates, already on the topic under a key the keystore no
    longer holds: nothing published, nothing dead-lettered, and the summary line names the key and what to check."""
    old, new = _site(tmp_path / "a", "2026a"), _site(tmp_path / "b", "2026b")
    old_mac = old.load_agency_mac("SNM")
    topic = [_copy(alert, value, old_mac) for alert, value in _alerts(run)]
    tally, kafka = _adapt(offline, asyncio.run(_ledger(topic, new, monkeypatch)), _export())
    assert (tally.published, tally.duplicates, tally.rejected) == (0, 3, 0)
    assert kafka.published == 0 and not kafka.headers and tally.unchecked == 3
    line = tally.line()
    assert "duplicates 3 (3 already on the topic, under a key this keystore no longer holds)" in line
    assert f"3 copies on the ingress topic under a MAC key this agency's keystore does not hold ({old_mac.key_id}):" \
        in line
    assert "ACLs" in line and "published 0 where" not in line


def test_a_run_over_forged_copies_publishes_the_genuine_records_and_says_so(
        tmp_path: Path, run: Callable[..., list[Any]], offline: Callable[..., tuple[Any, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Forged copies of every id, at versions 1 and 5 and as recalls, under five made-up keys: the genuine export and
    its withdrawal (ANULADO) are all published, none dead-lettered; the line counts the copies, names three keys and
    says how many more, and counts the records published where such a copy stands at their version or later."""
    keystore = _site(tmp_path, "2026a")
    alerts = _alerts(run)
    keys = [f"SNM-kex-1999{c}+broker-kex-1999{c}" for c in "abcde"]
    topic = [_forged(_as(alert, version, action, summary="forged"), key)
             for (alert, _), key in zip(alerts, keys, strict=False)
             for version, action in ((1, None), (5, "UPDATE"), (3, "RECALL"))]
    topic += [_forged(_as(alerts[1][0], 7, "UPDATE"), keys[3]), _forged(_as(alerts[2][0], 7, "UPDATE"), keys[4])]
    ledger = asyncio.run(_ledger(topic, keystore, monkeypatch))
    withdrawal = _revised(0, 2, estado="ANULADO", motivo_anulacion="ERROR")
    tally, kafka = _adapt(offline, ledger, _export()[len(SAMPLE.read_bytes().splitlines(keepends=True)[0]):]
                          + withdrawal)
    assert (tally.published, tally.duplicates, tally.rejected) == (3, 0, 0) and kafka.published == 3
    assert tally.overtaken == 3 and not kafka.headers
    line = tally.line()
    assert "11 copies on the ingress topic" in line and ", ".join(sorted(keys)[:3]) + " and 2 more" in line
    assert "published 3 where such a copy stands at its version or later" in line


def test_a_correction_and_a_withdrawal_after_a_rotation_are_published(
        tmp_path: Path, run: Callable[..., list[Any]], offline: Callable[..., tuple[Any, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Version 1 of two hits on the topic under a generation removed after a rotation: the agency's revision 2 of one (a
    correction) and of the other (ANULADO, a withdrawal) are both published, as the broker takes them."""
    old, new = _site(tmp_path / "a", "2026a"), _site(tmp_path / "b", "2026b")
    old_mac = old.load_agency_mac("SNM")
    topic = [_copy(alert, value, old_mac) for alert, value in _alerts(run)]
    export = _revised(0, 2, riesgo="medio") + _revised(1, 2, estado="ANULADO", motivo_anulacion="ERROR")
    assert len(_alerts(run, export)) == 2
    tally, kafka = _adapt(offline, asyncio.run(_ledger(topic, new, monkeypatch)), export)
    assert (tally.published, tally.duplicates, tally.rejected) == (2, 0, 0) and kafka.published == 2
    assert tally.overtaken == 0 and "3 copies on the ingress topic" in tally.line()
