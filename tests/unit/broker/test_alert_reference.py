"""Partners know an alert by a keyed reference, never by the agency's own id (``policies.alert_reference``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.auditor import LogFilter
from broker.keystore import Holder, Keystore
from broker.pipeline import MissingDeliveryKey
from broker.service import PolicyAdapter, require_reference_key
from broker.topology import TopicNames
from policies import REFERENCE_PREFIX, alert_reference, load_policy_set
from puente.errors import ConfigError
from tests.unit.broker.test_lifecycle import REF_KEY, Run, _first, _next

KEY = b"unit-test-alert-reference-key-32b"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
ALERT = "SENAFRONT:IP-BOC-2026-000014"


def test_a_reference_names_nothing_of_the_alert_and_differs_per_partner_and_key() -> None:
    """The same for every call (every version of the alert, every worker); another per partner (two partners cannot
    join their feeds on it) and per key (no one without the key can compute it from a guessable id)."""
    col = alert_reference(KEY, "COL", ALERT)
    assert col == alert_reference(KEY, "COL", ALERT)
    assert re.fullmatch(r"ref-[a-z2-7]{26}", col) and col.startswith(REFERENCE_PREFIX)
    assert not any(part.lower() in col for part in ("senafront", "boc", "2026", "000014"))
    assert len({col, alert_reference(KEY, "USA", ALERT), alert_reference(bytes(32), "COL", ALERT),
                alert_reference(KEY, "COL", "SENAFRONT:IP-BOC-2026-000015")}) == 4


def test_the_broker_makes_its_reference_key_once_and_keeps_it(tmp_path: Path) -> None:
    """Made with the broker's first keys; a new generation of them makes no second one, which would give every
    alert partners hold a new id."""
    store = Keystore(tmp_path)
    made = store.generate_own(Holder.BROKER, "broker", generation="2026a", now=NOW)
    assert "broker-pseudo-2026a" in [str(r.key_id) for r in made]
    first = store.load_reference_key().reveal()
    store.generate_own(Holder.BROKER, "broker", generation="2027a", now=NOW)
    assert not (tmp_path / "broker-pseudo-2027a.json").exists()
    assert store.load_reference_key().reveal() == first


def test_the_broker_does_not_start_without_its_reference_key(tmp_path: Path) -> None:
    """No partner can be given an alert without one: one line naming what to run, before anything is read."""
    with pytest.raises(ConfigError, match=r"alert-reference key.*keys generate --for broker"):
        require_reference_key(Keystore(tmp_path))


def test_the_adapter_names_alerts_under_the_keystores_key(tmp_path: Path) -> None:
    """The policy port's reference is ``alert_reference`` under the keystore's key; without one, a delivery stops
    the worker before committing (``MissingDeliveryKey``), never a view under the agency's own id."""
    policy = load_policy_set()
    with pytest.raises(MissingDeliveryKey, match="alert-reference key"):
        PolicyAdapter(policy, Keystore(tmp_path), TopicNames("p")).reference("COL", ALERT)
    store = Keystore(tmp_path)
    store.generate_own(Holder.BROKER, "broker", generation="2026a", now=NOW)
    adapter = PolicyAdapter(policy, store, TopicNames("p"))
    assert adapter.reference("COL", ALERT) == alert_reference(store.load_reference_key().reveal(), "COL", ALERT)


def test_nothing_a_partner_is_sent_holds_the_agencys_own_id() -> None:
    """A view, an update and a recall notice: the sealed plaintext, the feed key and every header name the alert by
    the partner's reference alone, the same across versions; the audit entry records it by partner."""
    run = Run()
    first = _first()
    own = first["alert_id"].encode()
    update = _next(first, "UPDATE")
    outs = [run.send(first), run.send(update), run.send(_next(update, "RECALL", reason="ERROR"))]
    ref = alert_reference(REF_KEY, "COL", first["alert_id"]).encode()
    feeds = [f for out in outs for f in out.feeds]
    assert len(feeds) == 3 and {f.key for f in feeds} == {ref}
    for f in feeds:
        assert all(own not in value and own.split(b":", 1)[1] not in value for _, value in f.headers)
    for plain in run.sealers["COL"].sealed:
        assert own not in plain and own.split(b":", 1)[1] not in plain and ref in plain
    assert [out.entry["refs"] for out in outs] == [{"COL": ref.decode()}] * 3


def test_audit_log_by_alert_lists_the_receipts_that_name_a_partners_reference() -> None:
    """``audit log --alert ID`` is the alert's whole life: its decisions, and the receipts and acknowledgements its
    partners wrote, which name their reference; by a reference, that partner's part of it."""
    col, usa = alert_reference(KEY, "COL", ALERT), alert_reference(KEY, "USA", ALERT)
    decisions = [{"kind": "DECISION", "alert_id": ALERT, "partner": "COL", "ref": col},
                 {"kind": "DECISION", "alert_id": ALERT, "partner": "USA", "ref": usa},
                 {"kind": "DECISION", "alert_id": "SNM:OTHER-1", "partner": "COL", "ref": "ref-other"}]
    receipts = [{"kind": "RECEIPT", "alert_id": col, "partner": "COL"},
                {"kind": "RECEIPT", "alert_id": usa, "partner": "USA"},
                {"kind": "RECEIPT", "alert_id": usa, "partner": "COL"},  # not a reference COL was given
                {"kind": "RECEIPT", "alert_id": "ref-other", "partner": "COL"}]
    by_id = LogFilter(alert=ALERT)
    assert [by_id.accepts(d, timed=False) for d in decisions + receipts] == [True, True, False, True, True, False,
                                                                             False]
    by_ref = LogFilter(alert=col)
    assert [by_ref.accepts(d, timed=False) for d in decisions + receipts] == [True, False, False, True, False, False,
                                                                              False]
