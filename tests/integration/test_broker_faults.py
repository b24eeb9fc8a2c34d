"""Bad input, crashes and tampering: nothing lost, nothing duplicated, nothing silent."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import signal
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.errors import KafkaError
from aiokafka.producer import message_accumulator
from aiokafka.producer import producer as aiokafka_producer
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy
from puente_testing import (
    Env,
    Workers,
    audit_docs,
    cli,
    committed_decisions,
    delivered_most,
    free_port,
    ids,
    open_feed,
    own_ids,
    read_topic,
    run_broker,
    tail,
)

from adapters.publisher import IngressPublisher
from broker.audit import ChainHead, ChainWriter
from broker.audit.verify import Holds
from broker.audit_index import AuditIndex, Scope
from broker.auditor import LogFilter, WalkProgress, read_log, verify_topics
from broker.crypto import SecretBytes, sign_ingress
from broker.keystore import Keystore
from broker.partner import Subscriber, opener_for, receipt_signer
from puente.dev.synthetic import generate, publish_synthetic
from schemas import alert_codec

pytestmark = pytest.mark.kafka


def _alerts(agency: str, count: int, seed: int) -> list[dict]:
    found = [a for a in generate(count * 6, seed=seed, now=datetime.now(UTC)) if a["agency"] == agency]
    return found[:count]


async def test_every_kind_of_bad_input_is_dead_lettered_with_its_reason(env: Env) -> None:
    """Each bad record lands in the dead-letter topic with a reason header; good records around it still flow."""
    good, a, b, c, d, e, f, g = _alerts("SENAN", 8, seed=3)
    mac = Keystore(env.cfg.keys / "agencies" / "SENAN").load_agency_mac("SENAN")
    snm_mac = Keystore(env.cfg.keys / "agencies" / "SNM").load_agency_mac("SNM")
    expected = Counter()
    async with IngressPublisher(env.login("agency-SENAN"), "SENAN", mac.key_id, mac, env.names) as pub:
        junk = b"\x00\x01 not avro at all"
        await pub.send_raw(b"SENAN:junk", junk, sign_ingress("SENAN", mac.key_id, mac, junk, "SENAN:junk"))
        expected["not-avro"] += 1
        key, value, _ = pub.frame(a)
        alien = value[:2] + b"\xee" * 8 + value[10:]
        await pub.send_raw(key, alien, sign_ingress("SENAN", mac.key_id, mac, alien, a["alert_id"]))
        expected["unknown-schema"] += 1
        key, value, _ = pub.frame(b)
        cut = value[: len(value) // 2]
        await pub.send_raw(key, cut, sign_ingress("SENAN", mac.key_id, mac, cut, b["alert_id"]))
        expected["corrupt"] += 1
        key, value, headers = pub.frame(c)
        forged = sign_ingress("SENAN", mac.key_id, SecretBytes(b"\x07" * 32, key_id=mac.key_id), value, c["alert_id"])
        await pub.send_raw(key, value, forged)
        await pub.send_raw(key, value, [])  # no origin headers at all
        await pub.send_raw(key, value, [*headers[:-1], (headers[-1][0], b"\x00" * 32)])  # altered MAC
        expected["origin"] += 3
        key, value, headers = pub.frame(d)
        await pub.send_raw(key, value, headers)
        await pub.send_raw(key, value, headers)  # a replay of the same alert id
        expected["replay"] += 1
        bad_place = {**e, "location": {**(e["location"] or {}), "longitude": 540.0}}
        await pub.send_raw(*pub.frame(bad_place))
        expected["invalid"] += 1
        key, value, headers = pub.frame(f)
        await pub.send_raw(b"SENAN:some-other-key", value,
                           sign_ingress("SENAN", mac.key_id, mac, value, "SENAN:some-other-key"))
        expected["key-mismatch"] += 1  # the MAC is honest, but the key is not the alert id inside
        key, value, _ = pub.frame(g)
        eight_days_ago = int((datetime.now(UTC) - timedelta(days=8)).timestamp() * 1000)
        await pub.send_raw(key, value, sign_ingress("SENAN", mac.key_id, mac, value, key.decode(), eight_days_ago))
        expected["stale"] += 1  # published beyond the replay window: an old record sent again, or held back
        await pub.send_raw(*pub.frame(good))
    # SNM signs an SNM alert but sends it to SENAN's topic: origin does not match the topic. Kafka's ACLs
    # refuse SNM's login that topic (test_zero_trust); sent with the admin's rights, as if the ACLs were
    # wrong, the MAC check still catches it.
    snm = _alerts("SNM", 1, seed=4)[0]
    async with IngressPublisher(env.conn, "SNM", snm_mac.key_id, snm_mac, env.names) as pub:
        key, value, headers = pub.frame(snm)
        pub.topic = env.names.ingress("SENAN")
        await pub.send_raw(key, value, headers)
        expected["origin"] += 1

    # A record near Kafka's own size limit, from anyone able to write the topic: with the dead letter's
    # headers added it would be too large to send, so its dead letter is cut, and the worker goes on.
    huge = AIOKafkaProducer(**env.login("agency-SENAN").aiokafka(), max_request_size=2 * 1024 * 1024)
    await huge.start()
    try:
        await huge.send_and_wait(env.names.ingress("SENAN"), b"\x00" * 1_048_300, key=b"SENAN:huge")
    finally:
        await huge.stop()
    expected["origin"] += 1

    await run_broker(env)
    dead = await read_topic(env.conn, env.names.deadletter)
    reasons = Counter((r.header("puente-dlq-reason") or b"?").decode() for r in dead)
    assert reasons == expected
    for rec in dead:
        assert rec.header("puente-dlq-detail") and rec.header("puente-dlq-source")
    cut = [r for r in dead if r.header("puente-dlq-cut")]
    assert [r.key for r in cut] == [b"SENAN:huge"] and len(cut[0].value) == 900_000 - len(b"SENAN:huge")
    assert b"value 1,048,300 bytes" in (cut[0].header("puente-dlq-cut") or b"")
    docs = await audit_docs(env)
    assert Counter(d["reason"] for d in docs if d["kind"] == "DEAD_LETTER") == expected
    decided = {d["alert_id"] for d in docs if d["kind"] == "DECISION"}
    assert decided == {good["alert_id"], d["alert_id"]}  # the replay's first copy and the good alert
    refs = own_ids(docs)
    for partner in env.policy.partners:
        held = set(ids(await open_feed(env, partner)))
        assert held <= set(refs) and {refs[ref] for ref in held} <= decided


class _Skewed(_DefaultRecordBatchBuilderPy):
    """aiokafka's batch writer, writing each record but the first at a made-up offset delta (a million times its
    own) while the batch's last delta stays honest: Kafka checks only that one against the count."""

    def append(self, offset: int, *args: Any, **kwargs: Any) -> Any:
        out = super().append(offset * 1_000_000, *args, **kwargs)
        self._last_offset = offset
        return out


class _RawKey(str):
    """A header key as a producer other than Kafka's clients may write it: bytes that are not UTF-8."""

    def encode(self, *_: Any, **__: Any) -> bytes:  # type: ignore[override]
        return b"\xff\xfe"


async def test_a_batch_the_kafka_client_cannot_read_is_dead_lettered_and_the_slot_reads_on(env: Env) -> None:
    """An agency's login writes, with a producer of its own, a record whose header key is not UTF-8: Kafka takes it,
    and aiokafka cannot read its batch (every fetch of the partition raised, and the workers stopped for every
    agency); a gzip-compressed batch, which Puente never inflates (a small one may hold gigabytes); and a batch whose
    second record claims an offset a million on (Kafka takes it; aiokafka handed it out at that offset, and a slot
    would have stood past every record before it). The broker dead-letters each as ``unreadable``, naming its
    offsets and nothing of it, decides the alerts before and after them in that partition, and `audit verify` finds
    nothing wrong."""
    before, after = _alerts("SENAN", 2, seed=11)
    mac = Keystore(env.cfg.keys / "agencies" / "SENAN").load_agency_mac("SENAN")
    topic = env.names.ingress("SENAN")
    async with IngressPublisher(env.login("agency-SENAN"), "SENAN", mac.key_id, mac, env.names) as pub:
        await pub.send_raw(*pub.frame(before))
        key, value, headers = pub.frame(after)
    with pytest.MonkeyPatch.context() as patch:  # aiokafka's pure-Python batch writer writes what encode() gives
        patch.setattr(message_accumulator, "DefaultRecordBatchBuilder", _DefaultRecordBatchBuilderPy)
        patch.setattr(aiokafka_producer, "DefaultRecordBatchBuilder", _DefaultRecordBatchBuilderPy)
        raw = AIOKafkaProducer(**env.login("agency-SENAN").aiokafka())
        await raw.start()
        try:
            sent = await raw.send_and_wait(topic, value, key=key, headers=[*headers, (_RawKey("XX"), b"v")])
        finally:
            await raw.stop()
        patch.setattr(message_accumulator, "DefaultRecordBatchBuilder", _Skewed)
        patch.setattr(aiokafka_producer, "DefaultRecordBatchBuilder", _Skewed)
        skewed = AIOKafkaProducer(**env.login("agency-SENAN").aiokafka(), linger_ms=500)
        await skewed.start()
        try:
            pair = [await skewed.send(topic, value, key=key, headers=headers) for _ in range(2)]
            shifted = [await f for f in pair]
        finally:
            await skewed.stop()
    assert shifted[1].offset - shifted[0].offset == 1_000_000  # Kafka took the batch as written
    zipped = AIOKafkaProducer(**env.login("agency-SENAN").aiokafka(), compression_type="gzip")
    await zipped.start()
    try:
        packed = await zipped.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await zipped.stop()
    async with IngressPublisher(env.login("agency-SENAN"), "SENAN", mac.key_id, mac, env.names) as pub:
        await pub.send_raw(key, value, headers)  # the same alert again, as Kafka's clients write it

    await run_broker(env)
    dead = await read_topic(env.conn, env.names.deadletter)
    assert [(r.header("puente-dlq-reason"), r.value) for r in dead] == [(b"unreadable", b"")] * 3
    docs = await audit_docs(env)
    letters = sorted((d for d in docs if d["kind"] == "DEAD_LETTER"), key=lambda d: int(d["ingress"].split(":")[-1]))
    assert [d["reason"] for d in letters] == ["unreadable"] * 3
    first = shifted[0].offset
    assert [d["ingress"] for d in letters] == [f"{topic}:{sent.partition}:{sent.offset}",
                                               f"{topic}:{sent.partition}:{first + 1}",
                                               f"{topic}:{packed.partition}:{packed.offset}"]
    assert f"UnicodeDecodeError reading it: records {sent.offset}-{sent.offset}" in letters[0]["detail"]
    assert f"its records' offsets are not the batch's: records {first}-{first + 1}" in letters[1]["detail"]
    assert f"a gzip-compressed batch, not inflated: records {packed.offset}-{packed.offset}" in letters[2]["detail"]
    assert {d["alert_id"] for d in docs if d["kind"] == "DECISION"} == {before["alert_id"], after["alert_id"]}
    verify = subprocess.run(cli("audit", "verify"), env=env.env_vars("auditor"), capture_output=True, text=True,
                            check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # Through a partner's receipts topic, the auditors' readers refuse such a batch as a finding naming it.
    zipped = AIOKafkaProducer(**env.login("partner-COL").aiokafka(), compression_type="gzip")
    await zipped.start()
    try:
        receipt = await zipped.send_and_wait(env.names.receipts("COL"), b"{}", key=b"COL")
    finally:
        await zipped.stop()
    verify = subprocess.run(cli("audit", "verify"), env=env.env_vars("auditor"), capture_output=True, text=True,
                            check=False)
    assert verify.returncode != 0, verify.stdout + verify.stderr
    assert (f"not an audit record: a record batch this reader's Kafka client does not read (a gzip-compressed "
            f"batch, not inflated: records {receipt.offset}-{receipt.offset})") in verify.stdout + verify.stderr


async def test_a_reordered_agency_list_stops_the_broker_before_any_slot_runs(env: Env) -> None:
    """The slots follow PUENTE_AGENCIES: reordered, each ingress partition would get another one's audit chain,
    replay window and alert states. The broker refuses to load such a slot, with one line, and routes nothing."""
    await publish_synthetic(env.cfg, env.conn, 300, seed=71)
    await run_broker(env)
    before = len(await read_topic(env.conn, env.names.decisions))
    reordered = [*env.cfg.agencies[1:], env.cfg.agencies[0]]
    await publish_synthetic(env.cfg, env.conn, 100, seed=72)
    run = subprocess.run(cli("broker", "run", "--exit-when-idle", "1"),
                         env={**env.env_vars("broker"), "PUENTE_AGENCIES": json.dumps(reordered)},
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert "PUENTE_AGENCIES and its order" in run.stderr and "holds the decisions of ingress" in run.stderr
    assert len(await read_topic(env.conn, env.names.decisions)) == before  # nothing decided under the wrong slots


async def test_an_agency_moved_onto_empty_slots_stops_the_broker(env: Env) -> None:
    """Removing an agency that never published moves the agencies after it onto slots whose audit partitions
    are empty: loaded empty, they would forget every alert state and replay id. The broker refuses, naming the
    committed offset that shows the ingress partition's history is elsewhere."""
    first_order = ["SENAFRONT", "SENAN", "PN", "COMBIFRON", "SNM"]  # COMBIFRON's slots stay empty: no input
    await publish_synthetic(env.cfg, env.conn, 300, seed=73)
    run = subprocess.run(cli("broker", "run", "--exit-when-idle", "1"),
                         env={**env.env_vars("broker"), "PUENTE_AGENCIES": json.dumps(first_order)},
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    before = len(await read_topic(env.conn, env.names.decisions))
    await publish_synthetic(env.cfg, env.conn, 100, seed=74)
    moved = subprocess.run(cli("broker", "run", "--exit-when-idle", "1"),
                           env={**env.env_vars("broker"), "PUENTE_AGENCIES": json.dumps([*first_order[:3], "SNM"])},
                           capture_output=True, text=True, timeout=120, check=False)
    assert moved.returncode != 0 and "Traceback" not in moved.stderr, moved.stderr[-2000:]
    assert "is empty, but" in moved.stderr and f"{env.names.ingress('SNM')}:" in moved.stderr
    assert len(await read_topic(env.conn, env.names.decisions)) == before


async def test_sigkill_mid_stream_loses_and_duplicates_nothing(env: Env) -> None:
    """A worker killed with SIGKILL mid-stream and restarted leaves each decision and delivery exactly once."""
    total = 4000
    await publish_synthetic(env.cfg, env.conn, total, seed=99)
    partners = len(env.policy.partners)
    port = free_port()
    first = subprocess.Popen(cli("broker", "run", "--exit-when-idle", "30", "--metrics-port", str(port)),
                             env=env.env_vars("broker"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        done = 0
        for _ in range(3000):
            await asyncio.sleep(0.02)
            done = committed_decisions(port)
            if done >= total * partners // 10:
                break
        assert 0 < done < total * partners, f"could not catch the worker mid-stream ({done} decisions)"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    second = subprocess.run(cli("broker", "run", "--exit-when-idle", "1"), env=env.env_vars("broker"),
                            capture_output=True, text=True, timeout=240, check=False)
    assert second.returncode == 0, second.stderr[-2000:]

    docs = await audit_docs(env)
    per_pair = Counter((d["alert_id"], d["partner"]) for d in docs if d["kind"] == "DECISION")
    assert len(per_pair) == total * partners and set(per_pair.values()) == {1}
    delivered = {(d["alert_id"], d["partner"]): d["ref"] for d in docs
                 if d["kind"] == "DECISION" and d["decision"] != "WITHHOLD"}
    for partner in env.policy.partners:
        feed_ids = ids(await open_feed(env, partner))
        assert len(feed_ids) == len(set(feed_ids))
        # Each partner's feed holds its own reference of every alert delivered to it, and nothing else.
        assert set(feed_ids) == {ref for (a, p), ref in delivered.items() if p == partner}
    # The killed worker left work behind that was aborted, not lost: read_uncommitted sees more.
    committed = await read_topic(env.conn, env.names.decisions)
    assert len(await read_topic(env.conn, env.names.decisions, committed=False)) >= len(committed)
    reports = await verify_topics(env.login("auditor"), {env.names.decisions: "decisions"}, env.checks())
    assert [f for r in reports for f in r.findings] == []


async def _until_decided(env: Env, workers: Workers, want: int, timeout_s: float = 120) -> None:
    """Wait until the audit holds ``want`` distinct (alert, partner) decisions, the workers all alive."""
    for _ in range(int(timeout_s / 2)):
        workers.check_alive()
        if len({(d["alert_id"], d["partner"]) for d in await audit_docs(env) if d["kind"] == "DECISION"}) >= want:
            return
        await asyncio.sleep(2)


async def test_a_static_worker_restarted_within_its_session_keeps_its_slots_and_the_other_keeps_its(
        env: Env, tmp_path: Path) -> None:
    """Two workers as static members (`--group-instance-id`): one SIGKILLed mid-stream and started again under
    its name gets back exactly the slots it held, the other's slots never move (no rebalance reaches it), and
    each (alert, partner) is still decided once."""
    partners = len(env.policy.partners)
    await publish_synthetic(env.cfg, env.conn, 3000, seed=5)
    # A session long enough for the restart on a busy machine; a dynamic member would still move slots.
    workers = Workers(env, tmp_path, static=True,
                      settings={"PUENTE_SESSION_TIMEOUT_MS": "20000", "PUENTE_HEARTBEAT_INTERVAL_MS": "3000"})
    workers.start("a")
    workers.start("b")
    try:
        def settled() -> bool:
            workers.check_alive()
            held = [workers.events(workers.logs[n][-1], "partitions assigned") for n in ("a", "b")]
            # both hold slots, together all 15, and decisions are made: the group is stable
            return all(held) and sum(len(h[-1]["owned"]) for h in held) == 15 and workers.decisions() > 0
        for _ in range(900):
            if settled():
                break
            await asyncio.sleep(0.2)
        assert settled(), "the two workers did not settle"
        held_a = workers.events(workers.logs["a"][-1], "partitions assigned")[-1]["owned"]
        log_b = workers.logs["b"][-1]
        moves_b = [len(workers.events(log_b, e)) for e in ("partitions assigned", "partitions revoked")]
        before = workers.decisions()
        more = asyncio.ensure_future(publish_synthetic(env.cfg, env.conn, 3000, seed=6, first=3000))
        for _ in range(3000):  # catch the workers in the middle of the second 3,000
            await asyncio.sleep(0.02)
            if workers.decisions() > before:
                break
        at_kill = workers.decisions()
        workers.kill("a")
        workers.start("a")  # within its session: the group still counts worker-a as a member
        await more
        assert before < at_kill < 6000 * partners, f"not mid-stream: {before}, then {at_kill} decisions"
        await publish_synthetic(env.cfg, env.conn, 3000, seed=7, first=6000)  # ids apart from the others
        want = 9000 * partners
        await _until_decided(env, workers, want)
    finally:
        statuses = workers.stop()
    assert set(statuses.values()) == {0}, {n: tail(log) for n, (_, _, log) in workers.procs.items()}
    again = workers.events(workers.logs["a"][-1], "partitions assigned")
    assert [line["owned"] for line in again] == [held_a]  # its own slots, in one assignment
    assert [len(workers.events(log_b, e)) for e in ("partitions assigned", "partitions revoked")] == moves_b
    per_pair = Counter((d["alert_id"], d["partner"]) for d in await audit_docs(env) if d["kind"] == "DECISION")
    assert len(per_pair) == want and set(per_pair.values()) == {1}


async def test_a_second_worker_under_a_static_workers_name_makes_the_first_stop_not_flap(
        env: Env, tmp_path: Path) -> None:
    """A second `broker run` given a running worker's --group-instance-id takes its place, as Kafka has
    static members do: the first stops with one line naming the other and what to change, instead of
    the two taking the slots from each other every heartbeat. The second goes on alone, and every
    (alert, partner) is still decided once."""
    partners = len(env.policy.partners)
    await publish_synthetic(env.cfg, env.conn, 1500, seed=31)
    workers = Workers(env, tmp_path, static=True)
    workers.start("a")
    try:
        for _ in range(900):
            workers.check_alive()
            if workers.events(workers.logs["a"][-1], "partitions assigned") and workers.decisions() > 0:
                break
            await asyncio.sleep(0.2)
        # Alerts keep coming, so the first is mid-transaction when the second's slot producers fence
        # it: that, not its heartbeat, may be what it hears of first.
        more = asyncio.ensure_future(publish_synthetic(env.cfg, env.conn, 1500, seed=32, first=1500))
        workers.start("b", instance="worker-a")  # the same name: a copy-paste in a deployment
        first, _, first_log = workers.procs["a"]
        for _ in range(300):
            if first.poll() is not None:
                break
            await asyncio.sleep(0.2)
        assert first.returncode is not None and first.returncode != 0, "the first worker did not stop"
        said = first_log.read_text(errors="replace")
        assert "took this worker's place" in said and "worker-a" in said and "--group-instance-id" in said
        assert "Traceback" not in said
        del workers.procs["a"]
        await more
        want = 3000 * partners
        await _until_decided(env, workers, want)
        log_b = workers.logs["b"][-1]
        assigned = workers.events(log_b, "partitions assigned")
        assert assigned and len(assigned[-1]["owned"]) == 15
        # settled: no further rejoin once the first has gone
        rejoins = len(workers.events(log_b, "partitions revoked"))
        await asyncio.sleep(6)
        assert len(workers.events(log_b, "partitions revoked")) == rejoins
    finally:
        statuses = workers.stop()
    assert statuses == {"b": 0}
    per_pair = Counter((d["alert_id"], d["partner"]) for d in await audit_docs(env) if d["kind"] == "DECISION")
    assert len(per_pair) == want and set(per_pair.values()) == {1}


async def test_audit_verify_finds_a_planted_edit(env: Env) -> None:
    """An audit record re-written with one field changed is reported by `puente audit verify`."""
    await publish_synthetic(env.cfg, env.conn, 80, seed=21)
    await run_broker(env)
    ok = subprocess.run(cli("audit", "verify"), env=env.env_vars("auditor"), capture_output=True, text=True,
                        check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "no problems" in ok.stdout

    records = await read_topic(env.conn, env.names.decisions)
    victim = next(r for r in records if json.loads(r.value)["kind"] == "BLOCK")
    doc = json.loads(victim.value)
    decision = doc["decision_table"][doc["entries"][0]["decisions"][0]]
    decision["decision"] = "DELIVER" if decision["decision"] == "WITHHOLD" else "WITHHOLD"
    producer = AIOKafkaProducer(**env.conn.aiokafka())
    await producer.start()
    try:
        await producer.send_and_wait(env.names.decisions, json.dumps(doc).encode(), partition=victim.partition)
    finally:
        await producer.stop()
    bad = subprocess.run(cli("audit", "verify"), env=env.env_vars("auditor"), capture_output=True, text=True,
                         check=False)
    assert bad.returncode == 1
    assert "edited" in bad.stdout and f"[{victim.partition}]" in bad.stdout


async def test_audit_log_lists_only_what_verifies_and_verify_names_each_forgery(env: Env) -> None:
    """Records written to the audit topics by someone other than their owner (an unsigned receipt in
    another partner's name, a block in a receipt chain, a block with a bad signature, a record that
    is not one) are each reported by `audit verify` and left out of `audit log`, which still lists
    every real decision and receipt."""
    partner, _, _ = await delivered_most(env, 120, seed=31)
    decided = len([d for d in await audit_docs(env) if d["kind"] == "DECISION"])
    opener = opener_for(partner, env.key_file(partner), None)
    stats = await Subscriber(env.login(f"partner-{partner}"), partner, env.feed(partner), env.names.receipts(partner),
                             opener, alert_codec(), signer=receipt_signer(partner, env.key_file(partner), None)).run(
        io.StringIO(), idle_exit_s=3)
    other = next(p for p in env.policy.partners if p != partner)
    mine = env.names.receipts(partner)
    producer = AIOKafkaProducer(**env.conn.aiokafka())  # the admin may write anywhere: a forger with its power
    await producer.start()
    try:
        receipt = ChainWriter(mine, 0, checkpoint_every=1 << 62, chain=f"{other}/x").append(
            "RECEIPT", {"partner": other, "alert_id": "forged-receipt", "status": "RECEIVED"})
        entry = {"kind": "ALERT", "alert_id": "forged-block", "decisions": [{"partner": other, "decision": "DELIVER"}]}
        in_receipts = ChainWriter(mine, 0, chain=partner).block([entry], "x-sign-1", lambda _: b"s", "t")
        in_decisions = ChainWriter(env.names.decisions, 0, ChainHead(10_000, "0" * 64)).block(
            [entry], "broker-sign-2026a", lambda _: b"\x00" * 64, "t")
        await producer.send_and_wait(mine, receipt, partition=0)
        await producer.send_and_wait(mine, in_receipts, partition=0)
        await producer.send_and_wait(mine, b'{"kind": ["RECEIPT"], "seq": 0}', partition=0)
        await producer.send_and_wait(env.names.decisions, in_decisions, partition=0)
    finally:
        await producer.stop()

    verify = subprocess.run(cli("audit", "verify"), env=env.env_vars("auditor"), capture_output=True, text=True,
                            check=False)
    assert verify.returncode == 1 and "Traceback" not in verify.stderr
    for problem in (f"chain {other}/x in {partner}'s receipts topic", f"'BLOCK' record in {partner}'s receipt chain",
                    "not an audit record", "has an invalid signature"):
        assert problem in verify.stdout, problem
    log = subprocess.run(cli("audit", "log", "--json"), env=env.env_vars("auditor"), capture_output=True, text=True,
                         check=False)
    assert log.returncode == 5 and "Traceback" not in log.stderr  # records left out: not a clean read
    rows = [json.loads(line) for line in log.stdout.splitlines()]
    assert not [r for r in rows if str(r.get("alert_id", "")).startswith("forged")]
    assert Counter(r["kind"] for r in rows) == {"DECISION": decided, "RECEIPT": stats.received}
    assert "4 audit record(s) left out as unsound" in log.stderr
    table = subprocess.run(cli("audit", "log", "--partner", partner, "--kind", "receipt"),
                           env=env.env_vars("auditor"), capture_output=True, text=True, check=False)
    assert table.returncode == 5 and f"{stats.received} record(s)" in table.stderr


async def test_subscribe_command_end_to_end(env: Env, tmp_path: Path) -> None:
    """`puente subscribe` writes the partner's alerts as JSON lines and sends one receipt each."""
    partner, want, _ = await delivered_most(env, 200, seed=17)
    out = tmp_path / "feed.jsonl"
    run = subprocess.run(cli("subscribe", "--partner", partner, "--key", str(env.key_file(partner)), "--out", str(out)),
                         env=env.env_vars(f"partner-{partner}"), capture_output=True, text=True, timeout=120,
                         check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line["alert_id"] for line in lines} == set(want) and len(lines) == len(want)
    assert not any(own in text for own in want.values() for text in out.read_text().splitlines())
    receipts = [json.loads(r.value) for r in await read_topic(env.conn, env.names.receipts(partner))]
    assert Counter(r["status"] for r in receipts if r["chain"] == partner and r["kind"] == "RECEIPT") == \
        {"RECEIVED": len(want)}
    assert {r["alert_id"] for r in receipts if r["chain"] == partner and r["kind"] == "RECEIPT"} == set(want)
    # Each batch's receipts end with the partner's signature over its chain: nothing left unsigned.
    assert receipts[-1]["kind"] == "CHECKPOINT" and receipts[-1]["signer"].startswith(f"{partner}-rcpt-")
    heard: list[tuple[int, int, int]] = []  # how far the walk said it was: records, partitions done, partitions

    def progress(p: WalkProgress) -> None:
        heard.append((p.records, p.partitions_done, p.partitions))

    audit: dict[str, Holds] = {env.names.decisions: "decisions", env.names.receipts(partner): "receipts"}
    reports = await verify_topics(env.login("auditor"), audit, env.checks(), progress=progress)
    assert [f.problem for r in reports for f in r.findings] == [] and sum(r.unsigned_tail for r in reports) == 0
    # A progress report after each partition, the last one saying the whole walk; records only grow.
    walked = sum(r.records for r in reports)
    assert heard[-1] == (walked, len(reports), len(reports)) and walked > 0
    assert [h[0] for h in heard] == sorted(h[0] for h in heard)
    heard.clear()
    rows = [row async for row in read_log(env.login("auditor"), audit, LogFilter(kinds=frozenset({"RECEIPT"})),
                                          env.checks(), progress=progress)]
    assert len(rows) == len(want) and heard[-1] == (walked, len(reports), len(reports))


async def test_sigterm_stops_a_following_subscriber_cleanly(env: Env, tmp_path: Path) -> None:
    """`puente subscribe --follow` runs until stopped: SIGTERM finishes its batch, hands its partitions over and
    exits 0 with its summary, every alert written once."""
    partner, want, _ = await delivered_most(env, 120, seed=19)
    out = tmp_path / "feed.jsonl"
    proc = subprocess.Popen(cli("subscribe", "--partner", partner, "--key", str(env.key_file(partner)), "--out",
                                str(out), "--follow"), env=env.env_vars(f"partner-{partner}"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if out.exists() and len(out.read_text().splitlines()) >= len(want):
                break
            assert proc.poll() is None
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr[-2000:]
    assert f"{partner}: {len(want)} feed record(s) opened" in stderr
    assert sorted(json.loads(line)["alert_id"] for line in out.read_text().splitlines()) == sorted(want)
    assert not any(own in out.read_text() for own in want.values())


async def test_a_crashed_subscribers_receipts_are_aborted_and_every_alert_is_receipted_once(env: Env) -> None:
    """Receipts commit with the feed offsets. A subscriber that died mid-batch left an open transaction:
    the next one fences it, its receipt never shows, and across runs each alert gets one receipt in one
    unforked chain."""
    partner, want, _ = await delivered_most(env, 200, seed=23)
    opener = opener_for(partner, env.key_file(partner), None)

    signer = receipt_signer(partner, env.key_file(partner), None)

    def subscriber() -> Subscriber:
        return Subscriber(env.login(f"partner-{partner}"), partner, env.feed(partner), env.names.receipts(partner),
                          opener, alert_codec(), signer=signer)

    zombie = AIOKafkaProducer(**env.conn.aiokafka(), transactional_id=subscriber().transactional_id)
    await zombie.start()
    await zombie.begin_transaction()
    forged = {"v": 1, "kind": "RECEIPT", "chain": partner, "seq": 0, "prev": "0" * 64, "partner": partner,
              "alert_id": "never-received", "status": "RECEIVED", "hash": "0" * 64}
    await zombie.send_and_wait(env.names.receipts(partner), json.dumps(forged).encode(), partition=0)
    first, second = io.StringIO(), io.StringIO()
    try:
        stats = await subscriber().run(first, idle_exit_s=3, limit=5)  # fences the zombie; stops after a batch
        assert stats.received >= 5 and stats.rejected == 0
        with pytest.raises(KafkaError):
            await zombie.commit_transaction()
    finally:
        with contextlib.suppress(KafkaError):
            await zombie.stop()
    await subscriber().run(second, idle_exit_s=3)
    lines = [json.loads(line) for out in (first, second) for line in out.getvalue().splitlines()]
    assert sorted(line["alert_id"] for line in lines) == sorted(want)  # each once, across both runs
    receipts = [json.loads(r.value) for r in await read_topic(env.conn, env.names.receipts(partner))]
    mine = [r for r in receipts if r.get("chain") == partner]
    assert sorted(r["alert_id"] for r in mine if r["kind"] == "RECEIPT") == sorted(want)
    assert not set(want.values()) & {r.get("alert_id") for r in mine}
    assert [r["seq"] for r in mine] == list(range(len(mine)))  # one chain, no fork, no gap
    reports = await verify_topics(env.login("auditor"), {env.names.receipts(partner): "receipts"}, env.checks())
    assert [f.problem for r in reports for f in r.findings] == [] and sum(r.unsigned_tail for r in reports) == 0


async def test_two_instances_of_one_partner_hand_partitions_over_without_a_second_receipt(env: Env) -> None:
    """A second instance joins while the first has a batch half handled. The feed partitions move only once that
    batch has committed and the group shows it: each alert gets one receipt, in one of the two chains, and both
    chains verify. (Before, the new owner read the batch again while the first committed it: two receipts.)"""
    partner, _, _ = await delivered_most(env, 300, seed=29)
    opener = opener_for(partner, env.key_file(partner), None)
    signer = receipt_signer(partner, env.key_file(partner), None)
    holding, second_received = asyncio.Event(), asyncio.Event()

    class First(Subscriber):
        async def _handle(self, *args: Any, **kwargs: Any) -> Any:
            if not holding.is_set():  # the first record of the first batch: wait while the second joins
                holding.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(second_received.wait(), 8)
            return await super()._handle(*args, **kwargs)

    class Second(Subscriber):
        async def _handle(self, *args: Any, **kwargs: Any) -> Any:
            second_received.set()
            return await super()._handle(*args, **kwargs)

    def made(kind: type[Subscriber], instance: str) -> Subscriber:
        return kind(env.login(f"partner-{partner}"), partner, env.feed(partner), env.names.receipts(partner), opener,
                    alert_codec(), signer=signer, instance=instance)

    outs = {"main": io.StringIO(), "standby": io.StringIO()}  # two instances partners.yaml names
    first = asyncio.create_task(made(First, "main").run(outs["main"], idle_exit_s=15))
    await asyncio.wait_for(holding.wait(), 60)
    second = asyncio.create_task(made(Second, "standby").run(outs["standby"], idle_exit_s=15))
    await publish_synthetic(env.cfg, env.conn, 300, seed=30)  # more, for both instances once they share the feed
    await run_broker(env)
    stats = await asyncio.gather(first, second)
    docs = [d for d in await audit_docs(env) if d["kind"] == "DECISION" and d["decision"] != "WITHHOLD"]
    want = {d["ref"] for d in docs if d["partner"] == partner}  # the alerts as the partner knows them
    got = Counter(json.loads(line)["alert_id"] for out in outs.values() for line in out.getvalue().splitlines())
    assert set(got) == want and set(got.values()) == {1}
    assert stats[0].received and stats[1].received and stats[0].received + stats[1].received == len(want)
    receipts = [json.loads(r.value) for r in await read_topic(env.conn, env.names.receipts(partner))]
    chains = {partner, f"{partner}/standby"}
    receipted = Counter(r["alert_id"] for r in receipts if r.get("kind") == "RECEIPT" and r.get("chain") in chains)
    assert set(receipted) == want and set(receipted.values()) == {1}
    reports = await verify_topics(env.login("auditor"), {env.names.receipts(partner): "receipts"}, env.checks())
    assert [f.problem for r in reports for f in r.findings] == []


async def test_a_subscriber_waits_out_another_writers_open_transaction_before_reading_its_chain(env: Env) -> None:
    """Receipt chains of a partner's subscriber instances share its receipts topic. A read_committed reader
    stops where another instance's transaction is still open, which would hide this chain's own later
    receipts and fork it: the subscriber waits for that transaction to end, then continues its chain where
    it really ends."""
    partner, _, _ = await delivered_most(env, 120, seed=29)
    opener = opener_for(partner, env.key_file(partner), None)
    signer = receipt_signer(partner, env.key_file(partner), None)
    sub = Subscriber(env.login(f"partner-{partner}"), partner, env.feed(partner), env.names.receipts(partner), opener,
                     alert_codec(), signer=signer)
    other = AIOKafkaProducer(**env.conn.aiokafka(), transactional_id="another-instance")
    earlier = AIOKafkaProducer(**env.conn.aiokafka(), transactional_id=sub.transactional_id)
    await other.start()
    await earlier.start()
    try:
        topic, part = env.names.receipts(partner), 0
        await other.begin_transaction()  # another instance's subscriber, mid-batch
        await other.send_and_wait(topic, b'{"chain": "OTHER"}', partition=part)
        # This instance's earlier run committed a receipt after the other transaction began.
        chain = ChainWriter(topic, part, checkpoint_every=1 << 62, chain=partner)
        async with earlier.transaction():
            await earlier.send(topic, chain.append("RECEIPT", {
                "partner": partner, "alert_id": "earlier", "status": "RECEIVED"}), partition=part)
            signed = chain.checkpoint(signer.key_id, signer.sign, "2026-11-01T00:00:00Z")  # UTC, as audit verify checks
            await earlier.send(topic, signed, partition=part)
        await earlier.stop()
        task = asyncio.ensure_future(sub.run(io.StringIO(), idle_exit_s=2))
        await asyncio.sleep(2)
        assert not task.done()  # waiting for the other transaction, not writing from a stale head
        await other.abort_transaction()
        stats = await asyncio.wait_for(task, 120)
        assert stats.received > 0
    finally:
        await other.stop()
        await earlier.stop()
    mine = [json.loads(r.value) for r in await read_topic(env.conn, env.names.receipts(partner))]
    mine = [r for r in mine if r.get("chain") == partner]
    assert [r["seq"] for r in mine] == list(range(len(mine))) and mine[0]["alert_id"] == "earlier"
    reports = await verify_topics(env.login("auditor"), {env.names.receipts(partner): "receipts"}, env.checks())
    assert [f.problem for r in reports for f in r.findings] == []


async def test_subscribe_with_the_wrong_key_is_a_clear_error(env: Env, tmp_path: Path) -> None:
    """Another partner's key is refused before anything is read: one line, exit 2, nothing written or consumed."""
    partner, _, _ = await delivered_most(env, 200, seed=17)
    other = next(p for p in env.policy.partners if p != partner)
    folder = env.key_file(partner).parent
    own_receipt_key = folder / f"{Keystore(folder).load_receipt_key(partner).key_id}.json"
    run = subprocess.run(cli("subscribe", "--partner", partner, "--key", str(env.key_file(other)),
                             "--sign-key", str(own_receipt_key), "--out", str(tmp_path / "x.jsonl")),
                         env=env.env_vars(f"partner-{partner}"), capture_output=True, text=True, timeout=120,
                         check=False)
    assert run.returncode == 3 and "Traceback" not in run.stderr
    assert f"is not a decryption key of {partner}" in run.stderr
    assert not (tmp_path / "x.jsonl").exists() or (tmp_path / "x.jsonl").read_text() == ""
    # Without its own receipt-signing key a subscriber does not start: receipts are never unsigned.
    lone = tmp_path / "lone"
    lone.mkdir(mode=0o700)
    (lone / env.key_file(partner).name).write_bytes(env.key_file(partner).read_bytes())
    (lone / env.key_file(partner).name).chmod(0o600)
    unsigned = subprocess.run(cli("subscribe", "--partner", partner, "--key", str(lone / env.key_file(partner).name),
                                  "--verify-key", str(folder / "broker-sign-2026a.json"),
                                  "--out", str(tmp_path / "y.jsonl")),
                              env=env.env_vars(f"partner-{partner}"), capture_output=True, text=True, timeout=120,
                              check=False)
    assert unsigned.returncode == 3 and "Traceback" not in unsigned.stderr
    assert f"no partner-signing key for '{partner}'" in unsigned.stderr and "--sign-key" in unsigned.stderr


async def test_sigterm_stops_cleanly_after_the_batch_in_flight(env: Env) -> None:
    """SIGTERM ends `puente broker run` with exit 0 and a final log line (every line JSON when asked, aiokafka's
    included); a restart finishes the rest exactly once."""
    await publish_synthetic(env.cfg, env.conn, 1500, seed=42)
    port = free_port()
    proc = subprocess.Popen(cli("broker", "run", "--metrics-port", str(port)),
                            env={**env.env_vars("broker"), "PUENTE_LOG_FORMAT": "json"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(3000):
            await asyncio.sleep(0.02)
            if committed_decisions(port) > 0:
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert any(line["event"] == "broker stopped" and line["level"] == "info" for line in lines)
    assert all("timestamp" in line and "logger" in line for line in lines)
    await run_broker(env)
    per_pair = Counter((d["alert_id"], d["partner"]) for d in await audit_docs(env) if d["kind"] == "DECISION")
    assert len(per_pair) == 1500 * len(env.policy.partners) and set(per_pair.values()) == {1}


async def test_replay_after_a_restart_is_caught_from_the_audit_trail(env: Env) -> None:
    """A new worker rebuilds the replay window from the audit partition: a replay sent later is still refused."""
    first, second = _alerts("SNM", 2, seed=8)
    mac = Keystore(env.cfg.keys / "agencies" / "SNM").load_agency_mac("SNM")
    async with IngressPublisher(env.login("agency-SNM"), "SNM", mac.key_id, mac, env.names) as pub:
        framed = pub.frame(first)
        await pub.send_raw(*framed)
    await run_broker(env)
    async with IngressPublisher(env.login("agency-SNM"), "SNM", mac.key_id, mac, env.names) as pub:
        await pub.send_raw(*framed)  # the same bytes and headers, captured and sent again
        await pub.send_raw(*pub.frame(second))
    await run_broker(env)
    dead = await read_topic(env.conn, env.names.deadletter)
    assert [(r.key, r.header("puente-dlq-reason")) for r in dead] == [(framed[0], b"replay")]
    decided = Counter(d["alert_id"] for d in await audit_docs(env) if d["kind"] == "DECISION")
    assert set(decided) == {first["alert_id"], second["alert_id"]}
    assert set(decided.values()) == {len(env.policy.partners)}


async def test_ingress_records_deleted_before_the_broker_read_them_stop_it(env: Env) -> None:
    """Retention deleted ingress records the broker never read (it was down longer than the ingress keeps
    them): they were never decided, withheld or dead-lettered, so the broker does not skip them in silence as
    Kafka's reset to the earliest record would. It stops, naming the records; `broker run --accept-gap` reads on
    from the first record each topic holds, logs what it skipped and records each gap in the slot's audit chain
    (a GAP entry, committed with the offset past it, even when no record follows), so auditors see it in
    `audit log`, a later start does not meet it again, and the audit still verifies."""
    tps = [TopicPartition(env.names.ingress(a), p) for a in env.cfg.agencies for p in range(env.cfg.ingress_partitions)]

    async def ends_now() -> dict[TopicPartition, int]:
        probe = AIOKafkaConsumer(**env.conn.aiokafka())
        await probe.start()
        try:
            return dict(await probe.end_offsets(tps))
        finally:
            await probe.stop()

    await publish_synthetic(env.cfg, env.conn, 60, seed=81)
    first = subprocess.run(cli("broker", "run", "--exit-when-idle", "1"), env=env.env_vars("broker"),
                           capture_output=True, text=True, timeout=180, check=False)
    assert first.returncode == 0, first.stderr[-2000:]
    decided = len(await read_topic(env.conn, env.names.decisions))
    decided_before = {d["alert_id"] for d in await audit_docs(env) if d["kind"] == "DECISION"}
    read = await ends_now()
    await publish_synthetic(env.cfg, env.conn, 40, seed=82)
    # And records in a partition the group never committed in (the synthetic input has no COMBIFRON alerts):
    # read from "the start", they would be skipped in silence too.
    never = TopicPartition(env.names.ingress("COMBIFRON"), 0)
    assert read[never] == 0
    mac = Keystore(env.cfg.keys / "agencies" / "COMBIFRON").load_agency_mac("COMBIFRON")
    async with IngressPublisher(env.login("agency-COMBIFRON"), "COMBIFRON", mac.key_id, mac, env.names) as pub:
        for n in range(3):
            await pub._producer.send(never.topic, b"never read", key=b"k%d" % n, partition=never.partition)
    ends = await ends_now()
    lost = {tp: (read[tp], ends[tp]) for tp in tps if ends[tp] > read[tp]}
    assert lost[never] == (0, 3)
    # An alert decided before the gaps, withheld from every partner (so only the replay window, not the alerts'
    # lifecycle states, knows it), in a partition that loses records: captured to be sent again after the gaps.
    rows = await audit_docs(env)
    withheld = {d["alert_id"] for d in rows if d["kind"] == "DECISION"} - {
        d["alert_id"] for d in rows if d["kind"] == "DECISION" and d["decision"] != "WITHHOLD"}
    held = [r for topic in sorted({tp.topic for tp in lost}) for r in await read_topic(env.conn, topic)]
    replay = next(r for r in held if TopicPartition(r.topic, r.partition) in lost
                  and r.offset < read[TopicPartition(r.topic, r.partition)] and r.key.decode() in withheld)
    admin = AIOKafkaAdminClient(**env.conn.aiokafka())
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(end) for tp, end in ends.items() if end})
    finally:
        await admin.close()

    stopped = subprocess.run(cli("broker", "run", "--exit-when-idle", "1"), env=env.env_vars("broker"),
                             capture_output=True, text=True, timeout=180, check=False)
    assert stopped.returncode == 1 and "Traceback" not in stopped.stderr, stopped.stderr[-2000:]
    assert "were deleted (the ingress retention) before the broker read them" in stopped.stderr
    assert "--accept-gap" in stopped.stderr
    assert len(await read_topic(env.conn, env.names.decisions)) == decided

    # Nothing follows the gaps: their own transactions record them and move the offsets past them.
    accepted = subprocess.run(cli("broker", "run", "--exit-when-idle", "1", "--accept-gap"),
                              env=env.env_vars("broker"), capture_output=True, text=True, timeout=180, check=False)
    assert accepted.returncode == 0, accepted.stderr[-2000:]
    assert "ingress records skipped" in accepted.stderr and "were deleted" in accepted.stderr
    gaps = [d for d in await audit_docs(env) if d["kind"] == "GAP"]
    assert {g["reason"] for g in gaps} == {"deleted"}
    found = {}
    for gap in gaps:
        topic, partition, last = gap["ingress"].rsplit(":", 2)
        assert int(last) + 1 == gap["next_offset"] and gap["next_offset"] - gap["from_offset"] == gap["skipped"]
        found[TopicPartition(topic, int(partition))] = (gap["from_offset"], gap["next_offset"])
    assert found == lost  # one per partition that lost records, exactly the records lost
    shown = subprocess.run(cli("audit", "log", "--kind", "gap"), env=env.env_vars("auditor"), capture_output=True,
                           text=True, timeout=180, check=False)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.count("GAP") == len(gaps) and "were deleted" in shown.stdout

    again = subprocess.run(cli("broker", "run", "--exit-when-idle", "1"), env=env.env_vars("broker"),
                           capture_output=True, text=True, timeout=180, check=False)
    assert again.returncode == 0, again.stderr[-2000:]  # the gaps are behind the committed offsets now
    await publish_synthetic(env.cfg, env.conn, 10, seed=83)
    agency = replay.key.decode().split(":", 1)[0]
    mac = Keystore(env.cfg.keys / "agencies" / agency).load_agency_mac(agency)
    async with IngressPublisher(env.login(f"agency-{agency}"), agency, mac.key_id, mac, env.names) as pub:
        await pub.send_raw(replay.key, replay.value, list(replay.headers))
    later = subprocess.run(cli("broker", "run", "--exit-when-idle", "1"), env=env.env_vars("broker"),
                           capture_output=True, text=True, timeout=180, check=False)
    assert later.returncode == 0, later.stderr[-2000:]
    docs = await audit_docs(env)
    assert len([d for d in docs if d["kind"] == "GAP"]) == len(gaps)
    # Every record after the gaps was taken: decided, or (the synthetic ids repeat across seeds) dead-lettered as
    # a replay of an alert decided before the gaps. The restart after a GAP block still read the replay window
    # back: none of those was decided twice.
    after = {f"{tp.topic}:{tp.partition}:{o}" for tp, end in (await ends_now()).items() for o in range(ends[tp], end)}
    taken = {d["ingress"]: d for d in docs if d["kind"] in ("DECISION", "DEAD_LETTER") and d["ingress"] in after}
    assert len(after) == 11 and set(taken) == after
    for row in taken.values():
        assert (row["kind"], row.get("reason")) == (("DEAD_LETTER", "replay") if row["alert_id"] in decided_before
                                                    else ("DECISION", None)), row
    assert replay.key.decode() in {row["alert_id"] for row in taken.values() if row["kind"] == "DEAD_LETTER"}
    # The chains end where the offsets say, past the gaps: the audit verifies.
    verify = subprocess.run(cli("audit", "verify"), env=env.env_vars("auditor"), capture_output=True, text=True,
                            timeout=180, check=False)
    assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr[-2000:]


async def test_decision_blocks_deleted_within_the_audit_retention_are_reported(env: Env, tmp_path: Path) -> None:
    """An admin deletes a decisions partition's oldest block (DeleteRecords), not retention: the first block held
    says its predecessor was written a minute ago, well within the audit's retention. `audit verify`, as the
    auditor's own login, reports the records deleted and fails; `audit recalls` cannot judge every recall (exit 5)
    and `audit log` says records are missing; `audit index` (what the console reads) reports it too, and so does
    an index rebuilt afterwards."""
    for first in (0, 40):  # two runs: each slot with records gets a block in each
        await publish_synthetic(env.cfg, env.conn, 40, seed=43 + first, first=first)
        run = subprocess.run(cli("broker", "run", "--exit-when-idle", "1"), env=env.env_vars("broker"),
                             capture_output=True, text=True, timeout=180, check=False)
        assert run.returncode == 0, run.stderr[-2000:]
    by_partition: dict[int, list[int]] = {}
    for rec in await read_topic(env.conn, env.names.decisions):
        if json.loads(rec.value).get("kind") == "BLOCK":
            by_partition.setdefault(rec.partition, []).append(rec.offset)
    partition, offsets = next((p, o) for p, o in sorted(by_partition.items()) if len(o) >= 2)
    admin = AIOKafkaAdminClient(**env.conn.aiokafka())
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(env.names.decisions, partition): RecordsToDelete(offsets[1])})
    finally:
        await admin.close()
    verify = subprocess.run(cli("audit", "verify"), env=env.env_vars("auditor"), capture_output=True, text=True,
                            timeout=180, check=False)
    assert verify.returncode != 0, verify.stdout[-2000:] + verify.stderr[-2000:]
    assert "were deleted, not expired" in verify.stdout, verify.stdout[-3000:]
    # The auditors' listings read the same chains: a recall notice in the deleted blocks would be in no row, so
    # `audit recalls` cannot say none is overdue (exit 5), and `audit log` says decisions are missing.
    recalls = subprocess.run(cli("audit", "recalls"), env=env.env_vars("auditor"), capture_output=True, text=True,
                             timeout=180, check=False)
    assert recalls.returncode == 5 and "lost records to a deletion" in recalls.stderr, recalls.stderr[-2000:]
    listed = subprocess.run(cli("audit", "log"), env=env.env_vars("auditor"), capture_output=True, text=True,
                            timeout=180, check=False)
    assert listed.returncode == 5 and "lost records to a deletion" in listed.stderr, listed.stderr[-2000:]
    path = tmp_path / "index" / "audit.sqlite"
    path.parent.mkdir(mode=0o700)
    for extra in ((), ("--rebuild",)):
        index = subprocess.run(cli("audit", "index", "--index", str(path), *extra), env=env.env_vars("auditor"),
                               capture_output=True, text=True, timeout=180, check=False)
        assert index.returncode != 0 and "problem(s) in the audit" in index.stdout, (
            index.stdout[-2000:] + index.stderr[-2000:])
        with AuditIndex(path) as held:
            problems = [f["problem"] for f in held.integrity(Scope())["findings"]]
        assert any("were deleted, not expired" in p for p in problems), problems


async def test_a_slot_whose_audit_chain_retention_deleted_starts_a_new_chain(env: Env) -> None:
    """A slot idle longer than the audit keeps its records: retention deletes its whole chain (emulated with
    DeleteRecords), and its ingress records and alert states, which are kept no longer, its ingress partition
    keeping its committed offset. The broker starts (it refused, even with --accept-gap: "its decisions are in
    another slot's partition"), the slot's new chain opens with a GAP entry saying why, what comes next is decided
    once, and the audit verifies from where each log starts. With a state still held, written minutes ago with a
    block deciding it, the chain cannot have expired: the broker refuses to start, naming --accept-gap."""
    await publish_synthetic(env.cfg, env.conn, 60, seed=41)
    first = subprocess.run(cli("broker", "run", "--exit-when-idle", "1"), env=env.env_vars("broker"),
                           capture_output=True, text=True, timeout=180, check=False)
    assert first.returncode == 0, first.stderr[-2000:]
    ingress = [TopicPartition(env.names.ingress(a), p) for a in env.cfg.agencies
               for p in range(env.cfg.ingress_partitions)]
    probe = AIOKafkaConsumer(**env.conn.aiokafka())
    await probe.start()
    try:
        ends = await probe.end_offsets(ingress)
        tp = next(tp for tp in ingress if ends[tp] > 0)
        slot = env.cfg.agencies.index(tp.topic.rsplit(".", 1)[1]) * env.cfg.ingress_partitions + tp.partition
        audit = TopicPartition(env.names.decisions, slot)
        states = TopicPartition(env.names.lifecycle, slot)
        held = await probe.end_offsets([audit, states])
        audit_end, states_end = held[audit], held[states]
    finally:
        await probe.stop()
    admin = AIOKafkaAdminClient(**env.conn.aiokafka())
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(ends[tp]), audit: RecordsToDelete(audit_end)})
    finally:
        await admin.close()

    await publish_synthetic(env.cfg, env.conn, 60, seed=42, first=60)
    refused = subprocess.run(cli("broker", "run", "--exit-when-idle", "1"), env=env.env_vars("broker"),
                             capture_output=True, text=True, timeout=180, check=False)
    assert refused.returncode == 1 and "still holds an alert state written at" in refused.stderr, (
        refused.stderr[-2000:])
    admin = AIOKafkaAdminClient(**env.conn.aiokafka())
    await admin.start()
    try:
        await admin.delete_records({states: RecordsToDelete(states_end)})
    finally:
        await admin.close()
    again = subprocess.run(cli("broker", "run", "--exit-when-idle", "1"), env=env.env_vars("broker"),
                           capture_output=True, text=True, timeout=180, check=False)
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr[-2000:]
    assert "audit chain expired; a new chain starts" in again.stderr
    docs = await audit_docs(env)
    [gap] = [d for d in docs if d["kind"] == "GAP"]
    assert (gap["reason"], gap["skipped"], gap["next_offset"]) == ("audit-expired", 0, ends[tp])
    per_pair = Counter((d["alert_id"], d["partner"]) for d in docs if d["kind"] == "DECISION")
    assert set(per_pair.values()) == {1}
    reports = await verify_topics(env.login("auditor"), {env.names.decisions: "decisions"}, env.checks())
    assert [f for r in reports for f in r.findings] == []
