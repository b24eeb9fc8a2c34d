"""The ledger counts only the copies the broker would take, and holds an id whose copy its keystore cannot check."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from adapter_fakes import FakeKafka

from adapters.config import Context
from adapters.ledger import Ledger, Verdict, digest, read_ledger
from adapters.lifecycle import own_mac_lookup
from adapters.registry import get
from adapters.run import AdapterRun
from broker.crypto import SecretBytes, sign_ingress
from broker.keystore import Keystore
from broker.topology import key_partition
from puente.settings import AGENCY_COUNTRIES, AGENCY_UNITS
from puente.wire import Record
from schemas import alert_codec

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "snm" / "alertas-migratorias-2026-11.jsonl"
PARTITIONS = 3
TOPIC = "t.ingress.SNM"


def _site(root: Path, generation: str) -> Keystore:
    site = Keystore.provision(root, partners=[], agencies=["SNM", "PN"], agreements=[], generation=generation,
                              now=datetime(2026, 1, 5, tzinfo=UTC))
    return site.agencies["SNM"]


def _export() -> bytes:
    return b"".join(SAMPLE.read_bytes().splitlines(keepends=True)[:3])


def _alerts(run: Callable[..., list[Any]]) -> list[tuple[dict[str, Any], bytes]]:
    results = run("snm", _export())
    assert all(r.error is None for r in results), [r.error for r in results]
    return [(r.alert, r.value) for r in results]


def _copy(alert: dict[str, Any], value: bytes, mac: SecretBytes, *, partition: int | None = None,
          who: str = "SNM") -> Record:
    key = alert["alert_id"].encode()
    placed = key_partition(key, PARTITIONS) if partition is None else partition
    return Record(TOPIC, placed, 0, key, value, tuple(sign_ingress(who, mac.key_id, mac, value, alert["alert_id"])), 0)


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


async def test_copies_signed_with_a_key_generation_gone_from_the_keystore_hold_their_ids(
        tmp_path: Path, run: Callable[..., list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """After a rotation whose old generation's file was removed, an export run again is neither new nor a
    duplicate: each record whose id has such a copy is UNVERIFIED, and why names the key to put back."""
    old, new = _site(tmp_path / "a", "2026a"), _site(tmp_path / "b", "2026b")
    old_mac = old.load_agency_mac("SNM")
    alerts = _alerts(run)
    topic = [_copy(alert, value, old_mac) for alert, value in alerts]
    ledger = await _ledger(topic, new, monkeypatch)
    for alert, value in alerts:
        assert ledger.judge_alert(alert, digest(value)) is Verdict.UNVERIFIED
        assert ledger.judge(alert["alert_id"], 2, b"a later version") is Verdict.UNVERIFIED
    assert len(ledger) == 0 and ledger.unverified == 3 and ledger.unverifiable == 3
    why = ledger.why(Verdict.UNVERIFIED, alerts[0][0]["alert_id"], 1)
    assert old_mac.key_id in why and "keystore" in why
    # The key put back, the same copies are duplicates.
    back = await _ledger(topic, old, monkeypatch)
    assert back.unverifiable == 0
    assert all(back.judge_alert(alert, digest(value)) is Verdict.DUPLICATE for alert, value in alerts)


async def test_copies_the_broker_refuses_whatever_its_keys_do_not_hold_an_id(
        tmp_path: Path, run: Callable[..., list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy whose MAC fails with a key the keystore holds, one naming another agency's key, or one without origin
    headers is refused by the broker whatever it holds: left out, the genuine record is new."""
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


def test_a_run_dead_letters_held_records_and_says_what_to_check(
        tmp_path: Path, run: Callable[..., list[Any]], ctx_for: Callable[[str], Context],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The export run again after the rotation publishes nothing: each record is dead-lettered as unverified-copy,
    naming the key, and the summary line counts them and says to put the key back (the command exits 1)."""
    old, new = _site(tmp_path / "a", "2026a"), _site(tmp_path / "b", "2026b")
    old_mac = old.load_agency_mac("SNM")
    topic = [_copy(alert, value, old_mac) for alert, value in _alerts(run)]
    kafka = FakeKafka()
    offline: Any = SimpleNamespace(topic_prefix="t", agency_countries=AGENCY_COUNTRIES, agency_units=AGENCY_UNITS)
    adapter_run = AdapterRun(offline, None, get("snm"), ctx_for("SNM"), err=io.StringIO())  # type: ignore[arg-type]
    adapter_run._publisher, adapter_run._dlq = kafka, kafka

    async def go() -> Any:
        adapter_run.ledger = await _ledger(topic, new, monkeypatch)
        return await adapter_run.run(io.BytesIO(_export()), "hits.jsonl")

    tally = asyncio.run(go())
    assert (tally.published, tally.duplicates, tally.rejected) == (0, 0, 3) and kafka.published == 0
    assert dict(tally.reasons) == {"unverified-copy": 3}
    assert "unverified-copy 3" in tally.line() and "put that key generation back" in tally.line()
    assert all(old_mac.key_id.encode() in h["puente-dlq-detail"] for h in kafka.headers)
