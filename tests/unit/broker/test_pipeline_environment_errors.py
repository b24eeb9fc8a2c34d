"""An OSError while a record is checked or delivered is the machine's (a keystore it could not read, no file
descriptor left), never the record's: the pipeline raises it and the worker stops before committing, rather than
dead-letter the record ``internal`` or withhold it, either of which is final."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from worker_fakes import HeldProducer, counted, settle

from broker.audit import ChainWriter
from broker.crypto.origin import sign_ingress, verify_ingress
from broker.kafka import KafkaConnection
from broker.keystore import REREAD_HELD, Keystore
from broker.pipeline import WITHHOLD, Originator, Pipeline
from broker.replay import ReplayWindow
from broker.topology import Slots, TopicNames, key_partition
from broker.worker import BrokerWorker, SlotState, WorkerConfig
from policies import alert_reference
from puente.dev.synthetic import generate
from puente.wire import Record
from schemas import alert_codec
from tests.unit.broker.test_lifecycle import Run, _first, _next

REF_KEY = b"unit-test-alert-reference-key-32b"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
SLOTS = Slots(("SNM",), 1, TopicNames("t"))
TP = TopicPartition("t.ingress.SNM", 0)


def _emfile() -> OSError:
    return OSError(errno.EMFILE, "Too many open files", "/keys/broker")


@dataclass(frozen=True)
class _Deliver:
    partner: str
    outcome: str = "DELIVER"
    agreement: str | None = "AGR"
    rules: Sequence[str] = ("AGR.r1",)
    reasons: Sequence[str] = ("because",)
    redactions: Sequence[tuple[str, str]] = ()
    policy_version: str = "v1"
    audit: dict[str, Any] = field(default_factory=dict)


class _Policy:
    """Delivers every alert to USA; ``view`` raises ``failure`` when one is set, ``decide_all`` raises
    ``undecided`` when one is."""

    version = "v1"

    def __init__(self, failure: Exception | None = None, undecided: Exception | None = None) -> None:
        self.failure = failure
        self.undecided = undecided

    def partners(self) -> list[tuple[str, str]]:
        return [("USA", "t.feed.USA")]

    def decide_all(self, alert: dict[str, Any], partners: Sequence[str], now: datetime,
                   until: Any = None) -> list[_Deliver]:
        if self.undecided is not None:
            raise self.undecided
        return [_Deliver(p, audit={"partner": p, "decision": "DELIVER", "reasons": ["because"]}) for p in partners]

    def view(self, alert: dict[str, Any], decision: Any) -> dict[str, Any]:
        if self.failure is not None:
            raise self.failure
        return alert

    def reference(self, partner: str, alert_id: str) -> str:
        return alert_reference(REF_KEY, partner, alert_id)


class _Sealer:
    def seal(self, plaintext: bytes, **_: Any) -> bytes:
        return b"sealed"


def _pipeline(origin_failure: Exception | None = None, view_failure: Exception | None = None,
              undecided: Exception | None = None, origin: Any = None) -> Pipeline:
    def fake(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        if origin_failure is not None:
            raise origin_failure
        return "SNM", int(dict(headers)["published"])

    return counted(Pipeline(_Policy(view_failure, undecided), alert_codec(), {"USA": _Sealer()},  # type: ignore[arg-type]
                            origin or fake, SLOTS, replay_window_days=7,
                            originators={"SNM": Originator.of("SNM", "PAN", "PAN")}), 1)


def _record() -> Record:
    alert = next(a for a in generate(30, seed=5, now=NOW) if a["agency"] == "SNM")
    key = alert["alert_id"].encode()
    return Record(TP.topic, key_partition(key, 1), 7, key, alert_codec().encode(alert),
                  (("published", str(NOW_MS - 1000).encode()),), NOW_MS)


def test_an_oserror_of_the_origin_check_is_raised_not_dead_lettered() -> None:
    """EMFILE while the origin check reads the keystore: ``process`` raises it (nothing to commit) instead of
    dead-lettering a genuine record ``internal``; any other failure of the check is still a dead letter."""
    with pytest.raises(OSError, match="Too many open files"):
        _pipeline(origin_failure=_emfile()).process(_record(), set(), NOW)
    assert _pipeline(origin_failure=RuntimeError("boom")).process(_record(), set(), NOW).dead_reason == "internal"


def test_an_oserror_at_delivery_is_raised_not_withheld() -> None:
    """An OSError while a partner's view is built (the machine's, whatever raised it): ``process`` raises it instead
    of recording a WITHHOLD, which is final; another failure there is still withheld."""
    with pytest.raises(OSError, match="Too many open files"):
        _pipeline(view_failure=_emfile()).process(_record(), set(), NOW)
    out = _pipeline(view_failure=RuntimeError("boom")).process(_record(), set(), NOW)
    assert out.decisions == [("USA", WITHHOLD)]


def test_an_oserror_of_the_policy_is_raised_not_withheld_from_everyone() -> None:
    """An OSError while the policy decides: ``process`` raises it instead of withholding the alert from every
    partner, which is final; any other failure of the policy still withholds from everyone."""
    with pytest.raises(OSError, match="Too many open files"):
        _pipeline(undecided=_emfile()).process(_record(), set(), NOW)
    assert _pipeline(undecided=RuntimeError("boom")).process(_record(), set(), NOW).decisions == [("USA", WITHHOLD)]


def test_an_oserror_sealing_a_recall_notice_is_raised_not_recorded_as_failed() -> None:
    """An OSError while a recall notice is made: ``process`` raises it, rather than record the notice as failed and
    leave the partner holding a recalled alert until a later recall; any other failure is still recorded so."""
    for failure, raised in ((_emfile(), True), (RuntimeError("boom"), False)):
        run = Run()
        first = _first()
        run.send(first)
        sealer = _Failing(failure)
        run.pipeline.sealers["COL"] = sealer  # type: ignore[index]
        recall = _next(first, "RECALL", reason="ERROR")
        if raised:
            with pytest.raises(OSError, match="Too many open files"):
                run.send(recall)
        else:
            assert ("COL", "RECALL_FAILED") in run.send(recall).decisions
        assert sealer.asked


class _Failing:
    def __init__(self, failure: Exception) -> None:
        self.failure = failure
        self.asked = False

    def seal(self, plaintext: bytes, **_: Any) -> bytes:
        self.asked = True
        raise self.failure


def test_emfile_in_the_keystore_re_read_stops_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real way an OSError reaches the pipeline: the origin check's re-read of the agencies' MAC keys lists the
    keystore again by name (``parsed_keys``: Path.glob, which in Python 3.11 passes EMFILE on), finds no file
    descriptor left, and ``process`` raises it instead of dead-lettering a genuine record ``internal``."""
    keys = Keystore.provision(tmp_path / "keys", partners=["USA"], agencies=["SNM"], agreements=[],
                              generation="2026a")
    now = [0.0]
    lookup = keys.broker.fresh_agency_mac_lookup(every_s=5.0, clock=lambda: now[0])
    mac = keys.agencies["SNM"].load_agency_mac("SNM")

    def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        proven = verify_ingress(list(headers), value, lookup)
        return proven.agency, proven.published_ms

    def signed(record: Record) -> Record:
        headers = sign_ingress("SNM", mac.key_id, mac, record.value, record.key.decode(), NOW_MS - 1000)
        return record._replace(headers=tuple(headers))

    pipe = _pipeline(origin=origin)
    assert pipe.process(signed(_record()), set(), NOW).decisions == [("USA", "DELIVER")]
    folder, scandir = str(keys.broker.path), os.scandir

    def no_descriptor(path: Any = ".") -> Any:
        if not isinstance(path, int) and os.fspath(path) == folder:
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", no_descriptor)
    now[0] += 5.0 * REREAD_HELD + 1  # a held pair reads the keystore again by then, whatever its time says
    with pytest.raises(OSError, match="Too many open files"):
        pipe.process(signed(_record()), set(), NOW)


class _Producer(HeldProducer):
    async def partitions_for(self, topic: str) -> set[int]:
        return {0}


class _Consumer:
    def pause(self, tp: TopicPartition) -> None: ...
    def resume(self, tp: TopicPartition) -> None: ...
    def assignment(self) -> set[TopicPartition]:
        return {TP}


async def test_an_oserror_of_the_origin_check_stops_the_worker_before_anything_commits() -> None:
    """The worker's slot meets the OSError: it fails with it (the command line ends in one line naming it) and
    commits no offset, so the record waits in ingress for the restart."""
    now = datetime.now(UTC)
    ms = int(now.timestamp() * 1000)
    alerts = [a for a in generate(40, seed=3, now=now) if a["agency"] == "SNM"][:3]
    msgs = [SimpleNamespace(topic=TP.topic, partition=0, offset=i, key=a["alert_id"].encode(),
                            value=alert_codec().encode(a), headers=[("published", str(ms).encode())], timestamp=ms,
                            timestamp_type=1) for i, a in enumerate(alerts)]
    worker = BrokerWorker(WorkerConfig(KafkaConnection(bootstrap="unused:9092"), "g", SLOTS, max_batch=10),
                          _pipeline(origin_failure=_emfile()), lambda p: b"sig")
    producer = _Producer()
    producer.gate.set()
    state = SlotState(TP, 0, producer, ChainWriter("t.audit", 0), ReplayWindow(7))  # type: ignore[arg-type]
    worker._owned[TP] = state
    worker._dispatch(_Consumer(), {TP: msgs})  # type: ignore[arg-type]
    await settle()
    await asyncio.wait_for(state.task, 5)  # type: ignore[arg-type]
    assert isinstance(worker._failure, OSError) and worker._failure.errno == errno.EMFILE
    assert producer.committed == [] and producer.batched == []
