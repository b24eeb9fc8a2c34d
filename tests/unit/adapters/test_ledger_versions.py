"""The ledger judges each copy on the topic by the broker's own version and lifecycle rule: one it refuses in every
state is neither published, the latest, a recall nor a conflict."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.ledger import Ledger, Verdict, admissible, digest, published_entry, read_ledger
from adapters.lifecycle import own_mac_lookup
from broker.crypto import SecretBytes, sign_ingress
from broker.keystore import Keystore
from broker.lifecycle import MAX_VERSION
from broker.topology import key_partition
from puente.wire import Record
from schemas import alert_codec

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "snm" / "alertas-migratorias-2026-11.jsonl"
PARTITIONS = 3
TOPIC = "t.ingress.SNM"
RECALL: dict[str, Any] = {"action": "RECALL", "reason": "ERROR", "partners": []}
UPDATE: dict[str, Any] = {"action": "UPDATE", "reason": None, "partners": []}


def _keystore(root: Path, generation: str = "2026a") -> Keystore:
    site = Keystore.provision(root, partners=[], agencies=["SNM"], agreements=[], generation=generation,
                              now=datetime(2026, 1, 5, tzinfo=UTC))
    return site.agencies["SNM"]


def _alerts(run: Callable[..., list[Any]]) -> list[dict[str, Any]]:
    results = run("snm", b"".join(SAMPLE.read_bytes().splitlines(keepends=True)[:2]))
    assert all(r.error is None for r in results), [r.error for r in results]
    return [r.alert for r in results]


def _as(alert: dict[str, Any], version: int, lifecycle: dict[str, Any] | None) -> dict[str, Any]:
    other = copy.deepcopy(alert)
    other["version"], other["lifecycle"] = version, lifecycle
    return other


def _copy(alert: dict[str, Any], mac: SecretBytes) -> Record:
    key, value = alert["alert_id"].encode(), alert_codec().encode(alert)
    headers = tuple(sign_ingress("SNM", mac.key_id, mac, value, alert["alert_id"]))
    return Record(TOPIC, key_partition(key, PARTITIONS), 0, key, value, headers, 0)


def _ledger(topic: list[Record], keystore: Keystore, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    async def scan(conn: Any, name: str, keep: Callable[[Record], Any],
                   sized: Callable[[int], Any] | None = None) -> None:
        if sized is not None:
            sized(PARTITIONS)
        for rec in topic:
            keep(rec)

    monkeypatch.setattr("adapters.ledger.scan", scan)
    return asyncio.run(read_ledger(None, TOPIC, alert_codec(), "SNM",  # type: ignore[arg-type]
                                   own_mac_lookup(keystore, "SNM"), None))


def _mine(alert: dict[str, Any]) -> bytes:
    return digest(alert_codec().encode(alert))


def test_a_copy_at_a_version_out_of_range_does_not_make_later_exports_older(
        tmp_path: Path, run: Callable[..., list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A signed copy at version 2,000,000, or with content at 1,000,000 (kept for a recall), is dead-lettered by the
    broker: the alert's next versions are new, not older, and the copies are counted invalid."""
    keystore = _keystore(tmp_path)
    mac = keystore.load_agency_mac("SNM")
    first, second = _alerts(run)
    topic = [_copy(first, mac), _copy(_as(first, 2_000_000, UPDATE), mac),
             _copy(_as(second, MAX_VERSION, UPDATE), mac)]
    ledger = _ledger(topic, keystore, monkeypatch)
    assert ledger.invalid == 2 and len(ledger) == 1
    assert ledger.latest(first["alert_id"]) == 1 and ledger.latest(second["alert_id"]) is None
    later = _as(first, 2, UPDATE)
    assert ledger.judge_alert(later, _mine(later)) is Verdict.NEW
    assert ledger.judge_alert(second, _mine(second)) is Verdict.NEW
    assert ledger.judge_alert(first, _mine(first)) is Verdict.DUPLICATE


def test_a_refused_recall_shaped_copy_does_not_recall_the_id(
        tmp_path: Path, run: Callable[..., list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A first version carrying a recall's lifecycle, and a recall at 2,000,000, are refused by the broker in every
    state: the id is not recalled, so its genuine versions are still published."""
    keystore = _keystore(tmp_path)
    mac = keystore.load_agency_mac("SNM")
    first, second = _alerts(run)
    topic = [_copy(_as(first, 1, RECALL), mac), _copy(second, mac), _copy(_as(second, 2_000_000, RECALL), mac)]
    ledger = _ledger(topic, keystore, monkeypatch)
    assert ledger.invalid == 2
    assert ledger.judge_alert(first, _mine(first)) is Verdict.NEW
    for alert in (_as(first, 2, UPDATE), _as(second, 2, UPDATE), _as(second, 3, RECALL)):
        assert ledger.judge_alert(alert, _mine(alert)) is Verdict.NEW


def test_a_version_zero_or_negative_is_refused_not_read_as_the_first(
        tmp_path: Path, run: Callable[..., list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy at version 0 or -1 is no version 1 (no fallback): the genuine first version is new, not a conflict,
    and the entry of such a record on its own is None."""
    keystore = _keystore(tmp_path)
    mac = keystore.load_agency_mac("SNM")
    first, _ = _alerts(run)
    zero, negative = _as(first, 0, None), _as(first, -1, None)
    zero["markings"]["handling_code"] = "H3"  # other content than the genuine first version's
    ledger = _ledger([_copy(zero, mac), _copy(negative, mac)], keystore, monkeypatch)
    assert ledger.invalid == 2 and len(ledger) == 0
    assert ledger.judge_alert(first, _mine(first)) is Verdict.NEW
    codec = alert_codec()
    for alert in (zero, negative, _as(first, 2_000_000, UPDATE), _as(first, 1, RECALL)):
        assert published_entry(codec, alert["alert_id"].encode(), codec.encode(alert)) is None


def test_copies_the_broker_may_take_still_count(
        tmp_path: Path, run: Callable[..., list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A recall at a later version recalls, a recall at 1,000,000 too, and a content version 2 whose lifecycle breaks
    a rule (none) is still a version the broker may have taken: its other content is a conflict."""
    keystore = _keystore(tmp_path)
    mac = keystore.load_agency_mac("SNM")
    first, second = _alerts(run)
    broken = _as(first, 2, None)
    topic = [_copy(first, mac), _copy(broken, mac), _copy(second, mac), _copy(_as(second, MAX_VERSION, RECALL), mac)]
    ledger = _ledger(topic, keystore, monkeypatch)
    assert ledger.invalid == 0 and len(ledger) == 4
    update = _as(first, 2, UPDATE)
    assert ledger.judge_alert(update, _mine(update)) is Verdict.CONFLICT
    assert ledger.judge_alert(_as(first, 3, UPDATE), b"three") is Verdict.NEW
    assert ledger.judge_alert(_as(second, 2, UPDATE), b"two") is Verdict.RECALLED
    assert admissible(broken) and not admissible({k: v for k, v in first.items() if k != "version"})


def test_a_refused_copy_signed_with_a_key_gone_does_not_hold_its_id(
        tmp_path: Path, run: Callable[..., list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy the broker refuses for its version whatever keys it holds is no copy it may have taken: signed with a
    key generation the keystore lacks, it is not counted unverifiable either; the genuine record is new."""
    old, new = _keystore(tmp_path / "a"), _keystore(tmp_path / "b", "2026b")
    first, _ = _alerts(run)
    ledger = _ledger([_copy(_as(first, 2_000_000, UPDATE), old.load_agency_mac("SNM"))], new, monkeypatch)
    assert ledger.unverified == 1 and ledger.unverifiable == 0
    assert ledger.judge_alert(first, _mine(first)) is Verdict.NEW
