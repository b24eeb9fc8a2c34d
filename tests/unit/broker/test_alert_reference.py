"""Partners know an alert by a keyed reference, never by the agency's own id (``policies.alert_reference``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.audit.chain import flatten, shrink
from broker.auditor import LogFilter, signature_checks
from broker.keystore import Holder, Keystore
from broker.lifecycle import AlertState
from broker.pipeline import MissingDeliveryKey
from broker.service import PolicyAdapter, require_reference_key
from broker.topology import TopicNames
from policies import REFERENCE_PREFIX, alert_reference, load_policy_set
from puente.errors import ConfigError, KeyMaterialError
from tests.unit.broker.test_lifecycle import REF_KEY, Run, _first, _next

KEY = b"unit-test-alert-reference-key-32b"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
ALERT = "SENAFRONT:IP-BOC-2026-000014"


def test_a_reference_names_nothing_of_the_alert_and_differs_per_partner_and_key() -> None:
    """The same for every call (every version of the alert, every worker); another per partner (two partners cannot
    join their feeds on it) and per key (no one without the key can compute it from a guessable id)."""
    col = alert_reference(KEY, "COL", ALERT)
    assert col == alert_reference(KEY, "COL", ALERT)
    assert re.fullmatch(r"ref-[0-9a-f]{32}", col) and col.startswith(REFERENCE_PREFIX)
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
    # Receipts only: the decisions, not listed, still name the references the receipts carry.
    receipts_only = LogFilter(alert=ALERT, kinds=frozenset({"RECEIPT"}))
    assert [receipts_only.accepts(d, timed=False) for d in decisions + receipts] == [False, False, False, True,
                                                                                     True, False, False]
    by_ref = LogFilter(alert=col)
    assert [by_ref.accepts(d, timed=False) for d in decisions + receipts] == [True, False, False, True, False, False,
                                                                              False]


LEGACY = (b'{"alert_id":"SNM:SCR-00000000","at":"2026-11-22T12:00:00Z","holders":{"COL":1},"recalled":false,'
          b'"version":1}')  # a state written before references: COL was given the alert's own id


def test_a_partner_given_the_own_id_before_references_is_named_by_it_for_the_alerts_life() -> None:
    """COL holds version 1 under the alert's own id (a broker before references sent it): its update and its recall
    notice reach COL under that id, or COL's copy would stay beside a second one under the reference, never
    recalled; the states say so for the alert's life. A partner first given the alert since gets its reference."""
    run = Run()
    first = _first()
    assert first["alert_id"] == "SNM:SCR-00000000"
    run.book.load(first["alert_id"].encode(), LEGACY)
    update = _next(first, "UPDATE")
    out = run.send(update)
    assert [f.key for f in out.feeds] == [first["alert_id"].encode()]
    assert out.entry["refs"] == {"COL": first["alert_id"]}
    assert out.state is not None and out.state.by_id == frozenset({"COL"})
    recall = run.send(_next(update, "RECALL", reason="ERROR"))
    assert [f.key for f in recall.feeds] == [first["alert_id"].encode()]
    assert recall.state is not None and recall.state.by_id == frozenset({"COL"})
    fresh = Run()
    fresh.send(first)
    assert fresh.send(update).feeds[0].key == alert_reference(REF_KEY, "COL", first["alert_id"]).encode()


def test_a_holder_the_policy_no_longer_names_is_recorded_under_its_reference() -> None:
    """No notice can reach it, and the audit says so under the reference its later notices will carry, so that
    ``audit recalls`` takes those as carrying the failed one on."""
    run = Run()
    first = _first()
    run.send(first)
    state = run.book.get(first["alert_id"])
    assert state is not None
    run.book.put(first["alert_id"], AlertState(1, {**state.holders, "GONE": 1}))
    out = run.send(_next(first, "UPDATE"))
    assert out.entry["refs"]["GONE"] == alert_reference(REF_KEY, "GONE", first["alert_id"])
    row = next(r for r in flatten({"kind": "BLOCK", "seq": 1, "entries": [out.entry]}) if r["partner"] == "GONE")
    assert row["decision"] == "RECALL" and row["sent"] is False and row["ref"] == out.entry["refs"]["GONE"]


def test_an_entry_cut_to_its_bare_facts_keeps_each_partners_reference() -> None:
    """The audit's last resort for an entry too large keeps ``refs``: without them a partner's receipts would match
    nothing, and its auditor would read the alert's own id."""
    entry = {"kind": "ALERT", "alert_id": ALERT, "refs": {"COL": alert_reference(KEY, "COL", ALERT)},
             "ingress": "t:0:1", "at": "2026-12-01T00:00:00Z", "consent": ["x" * 199] * 400,
             "decisions": [{"partner": "COL", "decision": "DELIVER", "reasons": ["r" * 199] * 400}]}
    cut = shrink(entry, 4096)
    assert "consent" not in cut and cut["refs"] == entry["refs"]


def test_the_brokers_generation_in_use_named_again_makes_only_the_keys_it_lacks(tmp_path: Path) -> None:
    """A keystore made before references: naming the broker's generation in use makes its reference key alone,
    never a new signing or key-agreement key that every partner and agency would have to be handed."""
    store = Keystore(tmp_path)
    store.generate_own(Holder.BROKER, "broker", generation="2026a", now=NOW, agreements=["PAN-USA"])
    (tmp_path / "broker-pseudo-2026a.json").unlink()
    before = sorted(p.name for p in tmp_path.glob("*.json"))
    # Asked for, never the way out of a refusal: made for a lost key, a new one re-keys what partners hold.
    with pytest.raises(KeyMaterialError, match=r"add --missing-only .* never for a key that was lost"):
        store.generate_own(Holder.BROKER, "broker", generation="2026a", now=NOW, agreements=["PAN-USA", "NEW"])
    assert sorted(p.name for p in tmp_path.glob("*.json")) == before
    made = store.generate_own(Holder.BROKER, "broker", generation="2026a", now=NOW, agreements=["PAN-USA", "NEW"],
                              missing_only=True)
    assert sorted(str(r.key_id) for r in made) == ["NEW-pseudo-2026a", "broker-pseudo-2026a"]
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted([*before, "NEW-pseudo-2026a.json",
                                                                      "broker-pseudo-2026a.json"])
    require_reference_key(store)
    with pytest.raises(KeyMaterialError, match="it lacks none"):  # nothing lacking: a key is never made again
        store.generate_own(Holder.BROKER, "broker", generation="2026a", now=NOW, agreements=["PAN-USA", "NEW"],
                           missing_only=True)
    # A folder holding the broker's public halves only is someone else's: no secret of the broker's goes there.
    other = Keystore(tmp_path / "other")
    other.path.mkdir(mode=0o700)
    for name in ("broker-sign-2026a", "broker-kex-2026a"):
        other.put(store.load(name).public_only())
    with pytest.raises(KeyMaterialError, match="holds only its public half"):
        other.generate_own(Holder.BROKER, "broker", generation="2026a", now=NOW, missing_only=True)
    assert not list(other.path.glob("*pseudo*"))


def test_the_auditors_folder_refuses_any_secret_a_pseudonym_key_too(tmp_path: Path) -> None:
    """The auditors verify and read nothing sealed: a broker pseudonym or reference key copied into their folder is
    refused, naming the file, as any private half is, whatever name it was copied under."""
    made = Keystore.provision(tmp_path / "keys", partners=["COL"], agencies=[], agreements=[], generation="2026a")
    signature_checks(made.auditor.path, None)  # what provisioning puts there passes
    ref_key = made.broker.path / "broker-pseudo-2026a.json"
    for name in (ref_key.name, f"{ref_key.name}.bak", "refkey.json", "broker-pseudo-2026a"):
        (made.auditor.path / name).write_bytes(ref_key.read_bytes())
        (made.auditor.path / name).chmod(0o600)
        with pytest.raises(KeyMaterialError, match="the broker's secret pseudonym key" if name == ref_key.name
                           else f"{name}: a key file holding a secret"):
            signature_checks(made.auditor.path, None)
        (made.auditor.path / name).unlink()
