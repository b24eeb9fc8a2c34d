"""A partner's auditor reads each delivered row's lifecycle action as that partner's feed record read it, over what
the real pipeline writes: the rule ``scoped`` keys to ``supersedes`` (a first copy reads UPDATE,
``broker.pipeline._first_copy``) checked against the plaintexts the pipeline sealed, through the real policy's
decisions and views (``PolicyAdapter``: ``decide_many``, ``build_view``) and the real index.

The action check is a guard: it passes on the code it was written against (1d47c02), and fails if the pipeline
starts writing ``supersedes`` where it sends a first copy (checked: three of the five scenarios then fail), or stops
writing it where it sends a holder what the version did, or if the index reads a row's ``delivered`` otherwise than
as a view that went out. The ``previous_version`` check fails on the code before ``scoped`` blanked it where the
partner did not hold that version: shown only where the partner's feed was sent that version."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from worker_fakes import counted

from broker.audit import ChainWriter
from broker.audit_index import AuditIndex, Query, Scope
from broker.keystore import Keystore
from broker.lifecycle import LifecycleBook
from broker.pipeline import Originator, Outcome, Pipeline
from broker.service import PolicyAdapter
from broker.topology import Slots, TopicNames, key_partition
from policies import alert_reference, load_policy_set
from puente import wire
from puente.dev.synthetic import generate
from puente.wire import Record

from .test_audit_index import DECISIONS, _ingest, _signer
from .test_lifecycle import CODEC, LEVELS, NOW, NOW_MS, REF_KEY, Sealer, _next

POLICY = load_policy_set()  # the shipped agreements: H3 needs the originator's consent, SECRETO goes to no one
AGENCIES = ("PN",)
SLOTS = Slots(AGENCIES, 3, TopicNames("t"))
ORIGINATORS = {a: Originator.of(a, "PAN", "PAN") for a in AGENCIES}


class Adapter(PolicyAdapter):
    """The broker's policy port over the shipped policy, with test keys in place of the keystore's."""

    def _pseudonym_key(self, agreement: str) -> bytes:
        return b"unit-test-pseudonym-key-32-bytes"

    def reference(self, partner: str, alert_id: str) -> str:
        return alert_reference(REF_KEY, partner, alert_id)


class FailingSealer(Sealer):
    """A sealer that refuses to seal while ``fail`` is set (a partner's key that stopped working)."""

    fail = False

    def seal(self, plaintext: bytes, **kw: Any) -> bytes:
        if self.fail:
            raise RuntimeError("the partner's key is not usable")
        return super().seal(plaintext, **kw)


class Run:
    """One PN slot's pipeline under the shipped policy, its states committed, what each partner's feed read kept."""

    def __init__(self, tmp_path: Path) -> None:
        self.sealers = {p: FailingSealer() for p in POLICY.partners}

        def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
            return key.split(":", 1)[0], NOW_MS

        adapter = Adapter(POLICY, Keystore(tmp_path / "keys"), TopicNames("t"))
        self.pipeline = counted(Pipeline(adapter, CODEC, self.sealers, origin, SLOTS,  # type: ignore[arg-type]
                                         originators=ORIGINATORS, classifications=LEVELS))
        self.book = LifecycleBook()
        self.seen: set[str] = set()
        self.entries: list[dict[str, Any]] = []
        self.read: dict[tuple[str, int], Any] = {}  # (partner, version) -> the lifecycle action its feed read

    def send(self, alert: dict[str, Any], failing: Sequence[str] = ()) -> Outcome:
        for partner, sealer in self.sealers.items():
            sealer.fail = partner in failing
        key = alert["alert_id"].encode()
        record = Record(SLOTS.names.ingress("PN"), key_partition(key, 3), len(self.entries), key,
                        CODEC.encode(alert), (), NOW_MS)
        out = self.pipeline.process(record, self.seen, NOW, self.book.get)
        if out.seen_id:
            self.seen.add(out.seen_id)
        if out.state is not None:
            self.book.put(alert["alert_id"], out.state)
        for feed in out.feeds:
            partner = feed.topic.rsplit(".", 1)[1]
            if dict(feed.headers)[wire.DECISION].decode() in ("DELIVER", "DELIVER_REDACTED"):
                view = CODEC.decode(self.sealers[partner].sealed[-1])
                self.read[(partner, alert["version"])] = (view.get("lifecycle") or {}).get("action")
        self.entries.append(out.entry)
        return out


def _first(**markings: Any) -> dict[str, Any]:
    """A PN seizure every partner with a SEIZURE agreement may receive, but for what ``markings`` change."""
    alert = copy.deepcopy(next(a for a in generate(40, seed=3, now=NOW) if a["agency"] == "PN"))
    alert["markings"].update({"expires_at": None, "caveats": [], "handling_code": "H1", "handling_text": None,
                              "source_reliability": "A", "information_credibility": "1",
                              "classification": "RESTRINGIDO", "originator_consent": [], **markings})
    return alert


def _consent(run: Run) -> None:
    """H3 keeps v1 to COL, whose consent is recorded; v2 a CONSENT naming USA too: USA's first copy."""
    a = _first(handling_code="H3", handling_text="No difundir", originator_consent=["COL"])
    run.send(a)
    b = _next(a, "CONSENT", partners=["USA"], originator_consent=["COL", "USA"])
    run.send(b)
    run.send(_next(b, "RECLASSIFY", classification="CONFIDENCIAL"))


def _pulled_back(run: Run) -> None:
    """v2 SECRETO pulls v1 back from every holder; v3 lowered again is their first copy."""
    a = _first()
    run.send(a)
    b = _next(a, "RECLASSIFY", classification="SECRETO")
    run.send(b)
    run.send(_next(b, "RECLASSIFY", classification="RESTRINGIDO"))


def _notice_not_sealed(run: Run) -> None:
    """v2 SECRETO's pull-back notice to COL cannot be sealed (COL still holds v1); v3 lowered is sent to it as to a
    holder, to the others as a first copy."""
    a = _first()
    run.send(a)
    b = _next(a, "RECLASSIFY", classification="SECRETO")
    run.send(b, failing=["COL"])
    run.send(_next(b, "RECLASSIFY", classification="RESTRINGIDO"))


def _recall_without_reason(run: Run) -> None:
    """v2 a RECALL giving no reason (withdrawn as a version the broker cannot admit); v3 after it."""
    a = _first()
    run.send(a)
    b = _next(a, "RECALL")
    run.send(b)
    run.send(_next(b, "UPDATE"))


def _delivery_failed(run: Run) -> None:
    """v2 cannot be sealed to COL, so COL's v1 is pulled back, though the notice fails too (COL still holds v1); v3
    is sent to COL as to a holder of v1."""
    a = _first()
    run.send(a)
    b = _next(a, "UPDATE")
    run.send(b, failing=["COL"])
    run.send(_next(b, "RECLASSIFY"))


@pytest.mark.parametrize("scenario", [_consent, _pulled_back, _notice_not_sealed, _recall_without_reason,
                                      _delivery_failed])
def test_each_delivered_row_reads_the_action_its_partners_feed_read(tmp_path: Path, scenario: Any) -> None:
    """For every partner, its auditor's delivered rows are the versions its feed was sent, each reading the lifecycle
    action that feed record read (UPDATE for a first copy, what the version did for a holder, none for v1), and a
    previous version only where its feed was sent that one."""
    run = Run(tmp_path)
    scenario(run)
    index = AuditIndex(tmp_path / "index" / "index.sqlite")
    _ingest(index, {DECISIONS: [ChainWriter(DECISIONS, 0).block(run.entries, "broker-sign-2026a",
                                                                 _signer("broker-sign-2026a"), "t")]})
    scoped_read, previous = {}, set()
    for partner in POLICY.partners:
        for row in index.export(Scope(partner), Query()):
            if row["delivered"]:
                scoped_read[(partner, row["version"])] = row["action"]
                if row.get("previous_version") is not None:
                    previous.add((partner, row["previous_version"]))
    assert scoped_read == run.read
    # And the version before it shows only where the partner's feed was sent that one.
    assert previous <= set(run.read)
    # Not a check of nothing: each scenario has a first publication and a later version its partners read.
    assert None in scoped_read.values() and set(scoped_read.values()) - {None}
