"""Fail closed at the partner's and the auditor's end: no alert lost to a wrong key, no forged receipt adopted."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from confluent_kafka import OFFSET_END
from confluent_kafka import TopicPartition as ConfluentTopicPartition
from confluent_kafka.admin import AdminClient
from puente_testing import Env, cli, delivered_most, read_topic, reference, run_broker

from broker.access import subscriber_group
from broker.audit import ChainHead, ChainWriter
from broker.audit_index import AuditIndex, Scope
from broker.kafka import KafkaConnection
from broker.keystore import Keystore
from broker.partner import Subscriber, opener_for, receipt_signer
from broker.partner_store import PartnerStore
from puente.dev.synthetic import publish_synthetic
from puente.errors import AuditChainError
from schemas import alert_codec

pytestmark = pytest.mark.kafka


def _subscriber(env: Env, partner: str, instance: str = "main") -> Subscriber:
    key = env.key_file(partner)
    return Subscriber(env.login(f"partner-{partner}"), partner, env.feed(partner), env.names.receipts(partner),
                      opener_for(partner, key, None), alert_codec(), instance=instance,
                      signer=receipt_signer(partner, key, None))


def _verify(env: Env) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli("audit", "verify"), env=env.env_vars("auditor"), capture_output=True, text=True,
                          check=False)


async def test_a_wrong_key_under_the_right_name_consumes_nothing(env: Env, tmp_path: Path) -> None:
    """A key file named as the partner's but holding another partner's key stops at the first record, commits
    nothing past it, and says so in one line, naming the --skip that would give that record up; given up, the next
    record stops the run (--skip names exact places). The correctly configured subscriber then receives every
    alert but those given up."""
    partner, want, _ = await delivered_most(env, 200, seed=41)
    other = next(p for p in env.policy.partners if p != partner)
    disguised = tmp_path / "disguised"
    disguised.mkdir(mode=0o700)
    doc = json.loads(env.key_file(other).read_text())
    doc["key_id"] = env.key_file(partner).stem
    fake = disguised / env.key_file(partner).name
    fake.write_text(json.dumps(doc))
    fake.chmod(0o600)
    own = env.key_file(partner).parent
    sign_key = own / f"{Keystore(own).load_receipt_key(partner).key_id}.json"
    wrong = subprocess.run(cli("subscribe", "--partner", partner, "--key", str(fake), "--sign-key", str(sign_key),
                               "--verify-key", str(own / "broker-sign-2026a.json"), "--out", str(tmp_path / "w")),
                           env=env.env_vars(f"partner-{partner}"), capture_output=True, text=True, timeout=120,
                           check=False)
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    error = [line for line in wrong.stderr.splitlines() if line.startswith("puente: error:")]
    assert len(error) == 1 and "stopped at" in error[0] and "Nothing past it was committed" in error[0]
    assert (tmp_path / "w").read_text() == ""
    # The stop names the --skip that gives that one record up. Given up, with every other partition's first
    # record (each place named exactly), the next record stops the run instead.
    place = re.search(r"--skip (\S+)$", error[0])
    assert place is not None and place[1].endswith(":0")
    topic = place[1].rsplit(":", 2)[0]
    firsts = [f"{topic}:{p}:0" for p in range(16)]
    skipped = subprocess.run(cli("subscribe", "--partner", partner, "--key", str(fake), "--sign-key", str(sign_key),
                                 "--verify-key", str(own / "broker-sign-2026a.json"),
                                 *(arg for first in firsts for arg in ("--skip", first))),
                             env=env.env_vars(f"partner-{partner}"), capture_output=True, text=True, timeout=120,
                             check=False)
    assert skipped.returncode == 1, skipped.stderr[-2000:]
    gave_up = dict(re.findall(r"gave up (\S+) \(alert (\S+)\)", skipped.stderr))
    # Given up: the first records met of the partitions the run read before its stop (which the batch order sets),
    # each named by the partner's reference of its alert (what its feed record's key and header say).
    assert gave_up and set(gave_up) <= set(firsts) and set(gave_up.values()) <= set(want)
    again = [line for line in skipped.stderr.splitlines() if line.startswith("puente: error:")]
    stop = re.search(r"--skip (\S+)$", again[0]) if len(again) == 1 else None
    assert stop is not None and stop[1] not in firsts and stop[1].startswith(topic + ":")

    right = subprocess.run(cli("subscribe", "--partner", partner, "--key", str(env.key_file(partner)),
                               "--out", str(tmp_path / "r")),
                           env=env.env_vars(f"partner-{partner}"), capture_output=True, text=True, timeout=120,
                           check=False)
    assert right.returncode == 0, right.stderr[-2000:]
    got = [json.loads(line)["alert_id"] for line in (tmp_path / "r").read_text().splitlines()]
    receipts = [json.loads(r.value) for r in await read_topic(env.conn, env.names.receipts(partner))]
    assert sorted(got) == sorted(set(want) - set(gave_up.values()))  # those given up, and no other
    assert not any(own in (tmp_path / "r").read_text() + skipped.stderr + wrong.stderr for own in want.values())
    statuses = Counter(r["status"].split(":")[0] for r in receipts if r.get("kind") == "RECEIPT")
    # Each stop and each record given up has its REJECTED receipt, for auditors.
    assert statuses == {"RECEIVED": len(want) - len(gave_up), "REJECTED": 2 + len(gave_up)}
    verify = _verify(env)
    assert verify.returncode == 0, verify.stdout[-2000:]


async def test_a_forged_receipt_is_reported_and_never_signed_over(env: Env, tmp_path: Path) -> None:
    """A receipt someone else appends to a partner's chain, for an alert withheld from it, stays reported:
    the partner's next subscriber refuses to extend that chain, and `audit log` never lists the receipt."""
    partner, want, withheld = await delivered_most(env, 200, seed=43)
    first = await _subscriber(env, partner).run(io.StringIO(), idle_exit_s=3, limit=5)
    assert first.received >= 5
    part = 0
    mine = [r for r in await read_topic(env.conn, env.names.receipts(partner))
            if json.loads(r.value).get("chain") == partner]
    head = ChainHead.after(json.loads(mine[-1].value))
    victim = sorted(withheld)[0]
    # The forged receipt names the alert as the partner would (its reference), though it was never sent one.
    victim_ref = reference(env, partner, victim)
    forged = ChainWriter(env.names.receipts(partner), part, head, checkpoint_every=1 << 62, chain=partner).append(
        "RECEIPT", {"partner": partner, "alert_id": victim_ref, "status": "RECEIVED", "feed": "x",
                    "at": "2026-12-01T00:00:00Z"})
    producer = AIOKafkaProducer(**env.conn.aiokafka())
    await producer.start()
    try:
        await producer.send_and_wait(env.names.receipts(partner), forged, partition=part)
    finally:
        await producer.stop()
    assert _verify(env).returncode == 1

    again = subprocess.run(cli("subscribe", "--partner", partner, "--key", str(env.key_file(partner)),
                               "--out", str(tmp_path / "again")),
                           env=env.env_vars(f"partner-{partner}"), capture_output=True, text=True, timeout=180,
                           check=False)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert f"receipt chain {partner} " in again.stderr and "will not sign over" in again.stderr
    with pytest.raises(AuditChainError):
        await _subscriber(env, partner).run(io.StringIO(), idle_exit_s=2)
    verify = _verify(env)
    assert verify.returncode == 1 and f"chain {partner}: 1 receipt record(s)" in verify.stdout
    log = subprocess.run(cli("audit", "log", "--json", "--alert", victim), env=env.env_vars("auditor"),
                         capture_output=True, text=True, check=False)
    assert [json.loads(line)["kind"] for line in log.stdout.splitlines()] == ["DECISION"] * len(env.policy.partners)
    receipts = subprocess.run(cli("audit", "log", "--json", "--kind", "receipt"), env=env.env_vars("auditor"),
                              capture_output=True, text=True, check=False)
    assert receipts.returncode == 5 and victim_ref not in receipts.stdout, receipts.stderr[-2000:]

    # Another instance partners.yaml names starts a chain of its own and receives the rest.
    rest = await _subscriber(env, partner, instance="standby").run(io.StringIO(), idle_exit_s=3)
    assert first.received + rest.received == len(want)


async def test_a_receipt_for_an_alert_never_delivered_is_reported(env: Env) -> None:
    """Even signed with the partner's own key, a receipt for an alert the broker withheld from that partner is
    reported by `audit verify` and left out of `audit log`."""
    partner, _, withheld = await delivered_most(env, 150, seed=47)
    signer = receipt_signer(partner, env.key_file(partner), None)
    part = 0
    chain = ChainWriter(env.names.receipts(partner), part, checkpoint_every=1 << 62, chain=f"{partner}/rogue")
    victim = reference(env, partner, sorted(withheld)[0])  # the alert as the partner would name it
    records = [chain.append("RECEIPT", {"partner": partner, "alert_id": victim, "status": "RECEIVED"}),
               chain.checkpoint(signer.key_id, signer.sign, "2026-11-01T00:00:00Z")]
    producer = AIOKafkaProducer(**env.conn.aiokafka())
    await producer.start()
    try:
        for value in records:
            await producer.send_and_wait(env.names.receipts(partner), value, partition=part)
    finally:
        await producer.stop()
    verify = _verify(env)
    assert verify.returncode == 1 and "which the audited decisions never delivered" in verify.stdout
    log = subprocess.run(cli("audit", "log", "--json", "--kind", "receipt"), env=env.env_vars("auditor"),
                         capture_output=True, text=True, check=False)
    assert victim not in log.stdout


async def _commit_offset(env: Env, group: str, place: str, offset: int) -> None:
    """Set ``group``'s committed offset of ``place`` ("<topic>:<partition>"), as the admin."""
    topic, part = place.rsplit(":", 1)
    tp = TopicPartition(topic, int(part))
    consumer = AIOKafkaConsumer(**env.conn.aiokafka(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.commit({tp: OffsetAndMetadata(offset, "")})
    finally:
        await consumer.stop()


async def test_audit_verify_sees_decisions_missing_from_a_chains_end(env: Env) -> None:
    """Blocks dropped from the end of a decision chain leave what remains whole, so the walk alone cannot see them.
    The broker group's committed offset of the ingress partition, which commits with each block, can: with the
    offset past the chain's end (what such a loss leaves), `audit verify` exits 1 naming the missing offsets.
    A whole audit shows every decision chain reaching its offset; offsets set back (records to come again, which
    the broker dead-letters as replays) are no problem."""
    await publish_synthetic(env.cfg, env.conn, 60, seed=57)
    await run_broker(env)
    whole = subprocess.run(cli("audit", "verify", "--json"), env=env.env_vars("auditor"), capture_output=True,
                           text=True, check=False)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    ends = [c["end"] for c in json.loads(whole.stdout)["chains"] if c["end"] is not None]
    assert ends and all(e["committed"] == e["last_offset"] + 1 for e in ends)
    end = ends[0]
    await _commit_offset(env, env.cfg.broker_group, end["ingress"], end["committed"] + 3)
    short = _verify(env)
    assert short.returncode == 1 and "Traceback" not in short.stderr
    problem = [line for line in short.stdout.splitlines() if line.startswith("PROBLEM")]
    assert len(problem) == 1 and f"ingress {end['ingress']} offset {end['last_offset']}" in problem[0]
    assert f"offsets {end['committed']} to {end['committed'] + 2} are missing from the chain's end" in problem[0]
    await _commit_offset(env, env.cfg.broker_group, end["ingress"], end["committed"] - 2)
    assert _verify(env).returncode == 0


async def test_audit_verify_sees_a_decision_partition_emptied(env: Env) -> None:
    """A decision partition emptied by Kafka's DeleteRecords (the admin's right, not the broker's) leaves nothing
    to walk; the broker group's offset of its ingress partition still shows records were decided there, and
    `audit verify` exits 1 naming that ingress partition."""
    await publish_synthetic(env.cfg, env.conn, 60, seed=58)
    await run_broker(env)
    whole = subprocess.run(cli("audit", "verify", "--json"), env=env.env_vars("auditor"), capture_output=True,
                           text=True, check=False)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    chain = next(c for c in json.loads(whole.stdout)["chains"] if c["end"] is not None)
    admin = AdminClient(env.conn.librdkafka())
    tp = ConfluentTopicPartition(chain["topic"], chain["partition"], OFFSET_END)  # every record
    admin.delete_records([tp])[tp].result(timeout=30)
    emptied = _verify(env)
    assert emptied.returncode == 1 and "Traceback" not in emptied.stderr
    problem = [line for line in emptied.stdout.splitlines() if line.startswith("PROBLEM")]
    ingress_topic, part = chain["end"]["ingress"].rsplit(":", 1)
    assert len(problem) == 1 and problem[0].startswith(f"PROBLEM {ingress_topic}[{part}]")
    assert "no sound decision chain records any of this partition's records" in problem[0]


async def test_audit_verify_sees_receipts_missing_from_a_partners_end(env: Env, tmp_path: Path) -> None:
    """A partner's receipts commit with its subscriber group's feed offsets, so receipts dropped from the end of its
    chains (or the group moved past records never received) leave the group's offset past the last receipt:
    `audit verify` exits 1 naming the feed partition and the offsets with no receipt, and so does `audit index`
    (the console's integrity page), from the offsets each catch-up reads. A partner whose subscriber never ran has
    nothing to check; offsets set back are no problem; a receipts partition emptied with DeleteRecords is a
    finding at each feed partition the group committed past."""
    index = tmp_path / "audit" / "index.sqlite"
    index.parent.mkdir(mode=0o700)  # a named index's folder must be there

    def catch_up(*more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cli("audit", "index", "--index", str(index), *more), env=env.env_vars("auditor"),
                              capture_output=True, text=True, check=False, timeout=300)

    partner, want, _ = await delivered_most(env, 120, seed=59)
    got = await _subscriber(env, partner).run(io.StringIO(), idle_exit_s=3)
    assert got.received == len(want)
    whole = subprocess.run(cli("audit", "verify", "--json"), env=env.env_vars("auditor"), capture_output=True,
                           text=True, check=False)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    feeds = [c["end"] for c in json.loads(whole.stdout)["chains"] if c["end"] is not None and "feed" in c["end"]]
    assert feeds and {e["feed"].rsplit(":", 1)[0] for e in feeds} == {env.feed(partner)}
    assert all(e["checked"] and e["committed"] == e["last_offset"] + 1 for e in feeds)
    assert {e["group"] for e in feeds} == {subscriber_group(env.feed(partner))}
    assert sum(e["committed"] for e in feeds) >= len(want)  # every delivery, and the notices if any
    indexed = catch_up()
    assert indexed.returncode == 0 and "no problems" in indexed.stdout, indexed.stdout + indexed.stderr
    assert "not checked" not in indexed.stdout

    end = feeds[0]
    await _commit_offset(env, end["group"], end["feed"], end["committed"] + 3)
    short = _verify(env)
    assert short.returncode == 1 and "Traceback" not in short.stderr
    problem = [line for line in short.stdout.splitlines() if line.startswith("PROBLEM")]
    topic, part = end["feed"].rsplit(":", 1)
    assert len(problem) == 1 and problem[0].startswith(f"PROBLEM {topic}[{part}]"), problem
    gap = f"receipts of the feed records from offset {end['committed']} to {end['committed'] + 2} are missing"
    assert gap in problem[0]
    indexed = catch_up()
    assert indexed.returncode == 1 and "1 problem(s)" in indexed.stdout, indexed.stdout + indexed.stderr
    with AuditIndex(index, readonly=True) as read:
        found = read.integrity(Scope())
        assert [f["problem"] for f in found["findings"] if gap in f["problem"]]
        assert [e["state"] for e in found["ends"] if e["source"] == end["feed"]] == ["short"]
    await _commit_offset(env, end["group"], end["feed"], end["committed"] - 1)
    assert _verify(env).returncode == 0
    assert catch_up().returncode == 0

    admin = AdminClient(env.conn.librdkafka())
    emptied = [ConfluentTopicPartition(env.names.receipts(partner), p, OFFSET_END)
               for p in range(len(admin.list_topics(env.names.receipts(partner), timeout=30)
                                  .topics[env.names.receipts(partner)].partitions))]
    for done in admin.delete_records(emptied).values():
        done.result(timeout=30)
    gone = _verify(env)
    assert gone.returncode == 1 and "Traceback" not in gone.stderr
    problems = [line for line in gone.stdout.splitlines() if line.startswith("PROBLEM")]
    assert len(problems) == len(feeds), problems
    assert all(line.startswith(f"PROBLEM {topic}[") and "no sound receipt names any record there" in line
               for line in problems)


async def _broker_refuses_after(env: Env, conn: KafkaConnection, value: bytes, blocks: int, why: str) -> None:
    """``value`` appended to slot 0's audit partition (which held ``blocks`` records) as ``conn``: `broker run`
    stops with one line saying ``why``, and signs nothing after it."""
    producer = AIOKafkaProducer(**conn.aiokafka())
    await producer.start()
    try:
        await producer.send_and_wait(env.names.decisions, value, partition=0)
    finally:
        await producer.stop()
    run = subprocess.run(cli("broker", "run", "--exit-when-idle", "1"), env=env.env_vars("broker"), capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "cannot be continued" in run.stderr and why in run.stderr
    after = [r for r in await read_topic(env.conn, env.names.decisions) if r.partition == 0]
    assert len(after) == blocks + 1  # nothing signed over what was appended


async def test_the_broker_will_not_extend_an_audit_chain_it_did_not_sign(env: Env) -> None:
    """A record appended to a slot's audit partition by someone else stops `broker run` with one clear line;
    the broker never signs a block over it."""
    await publish_synthetic(env.cfg, env.conn, 60, seed=53)
    await run_broker(env)
    blocks = [r for r in await read_topic(env.conn, env.names.decisions) if r.partition == 0]
    assert blocks
    head = ChainHead.after(json.loads(blocks[-1].value))
    forged = ChainWriter(env.names.decisions, 0, head).block(
        [{"kind": "ALERT", "alert_id": "SENAFRONT:forged", "decisions": []}], "broker-sign-2026a",
        lambda _: b"\x00" * 64, "t")
    await _broker_refuses_after(env, env.conn, forged, len(blocks), "does not verify")


async def test_the_broker_will_not_extend_a_replayed_old_block_of_its_own(env: Env) -> None:
    """An older block of the broker's own, written again after a slot's head (it verifies: it is signed; writing
    it needs the broker's Kafka login, not its key), ends before the slot's committed offset: `broker run` stops
    with one clear line and signs nothing over it."""
    await publish_synthetic(env.cfg, env.conn, 60, seed=53)
    await run_broker(env)
    await publish_synthetic(env.cfg, env.conn, 60, seed=54)
    await run_broker(env)  # a second run: slot 0 has blocks of two batches at least
    blocks = [r for r in await read_topic(env.conn, env.names.decisions) if r.partition == 0]
    assert len(blocks) >= 2
    await _broker_refuses_after(env, env.login("broker"), blocks[0].value, len(blocks),
                                "an older block was written again")


async def test_an_aborted_batch_written_again_is_never_extended(env: Env, tmp_path: Path) -> None:
    """A batch of the chain Kafka aborted (here a checkpoint the partner's key signed, following the head, in a
    transaction under the subscriber's own id, aborted) is readable uncommitted with the partner's login, and
    written again after the head it follows it exactly. The next run, with its store or without one, finds it is
    a copy of an aborted record and stops with one clear line, signing nothing over it."""
    partner, _, _ = await delivered_most(env, 120, seed=63)
    with PartnerStore.open(tmp_path / "store.db", partner) as store:
        subscriber = _subscriber(env, partner)
        subscriber.store = store
        assert (await subscriber.run(io.StringIO(), idle_exit_s=3)).received > 0
    topic = env.names.receipts(partner)
    mine = [r for r in await read_topic(env.conn, topic) if json.loads(r.value).get("chain") == partner]
    signer = receipt_signer(partner, env.key_file(partner), None)
    writer = ChainWriter(topic, 0, ChainHead.after(json.loads(mine[-1].value)), checkpoint_every=1 << 62,
                         chain=partner)
    batch = writer.checkpoint(signer.key_id, signer.sign, "2026-12-06T06:00:00.123456Z")
    login = env.login(f"partner-{partner}").aiokafka()
    aborting = AIOKafkaProducer(**login, transactional_id=_subscriber(env, partner).transactional_id)
    await aborting.start()
    try:
        await aborting.begin_transaction()
        await (await aborting.send(topic, batch, partition=0))
        await aborting.abort_transaction()
    finally:
        await aborting.stop()
    again = AIOKafkaProducer(**login)
    await again.start()
    try:
        await again.send_and_wait(topic, batch, partition=0)
    finally:
        await again.stop()
    for kept in (True, False):
        with contextlib.ExitStack() as stack:
            subscriber = _subscriber(env, partner)
            subscriber.store = stack.enter_context(PartnerStore.open(tmp_path / "store.db", partner)) if kept else None
            with pytest.raises(AuditChainError, match=r"a copy of the record at offset \d+, of a batch Kafka aborted"):
                await subscriber.run(io.StringIO(), idle_exit_s=2)
    after = [r for r in await read_topic(env.conn, topic) if json.loads(r.value).get("chain") == partner]
    assert len(after) == len(mine) + 1  # the copy, and nothing signed over it


async def test_a_replayed_old_checkpoint_is_never_extended(env: Env, tmp_path: Path) -> None:
    """An old checkpoint of the partner's own, written again after its chain's real head (it needs the
    partner's Kafka login, not its signing key), is not extended: the subscriber's store kept the head it
    committed last, so the next run stops with one clear line instead of forking the chain."""
    partner, _, _ = await delivered_most(env, 200, seed=59)

    async def subscribe(expect: type[Exception] | None = None) -> None:
        with PartnerStore.open(tmp_path / "store.db", partner) as store:
            subscriber = _subscriber(env, partner)
            subscriber.store = store
            if expect is None:
                assert (await subscriber.run(io.StringIO(), idle_exit_s=3)).received > 0
                return
            with pytest.raises(expect, match="an old checkpoint was written again after it"):
                await subscriber.run(io.StringIO(), idle_exit_s=2)

    await subscribe()
    await publish_synthetic(env.cfg, env.conn, 200, seed=61)
    await run_broker(env)
    await subscribe()  # a second run: a second checkpoint after the first
    mine = [r for r in await read_topic(env.conn, env.names.receipts(partner))
            if json.loads(r.value).get("chain") == partner]
    checkpoints = [r for r in mine if json.loads(r.value)["kind"] == "CHECKPOINT"]
    assert len(checkpoints) >= 2
    producer = AIOKafkaProducer(**env.login(f"partner-{partner}").aiokafka())
    await producer.start()
    try:
        await producer.send_and_wait(env.names.receipts(partner), checkpoints[0].value, partition=0)
    finally:
        await producer.stop()

    await subscribe(AuditChainError)
    after = [r for r in await read_topic(env.conn, env.names.receipts(partner))
             if json.loads(r.value).get("chain") == partner]
    assert len(after) == len(mine) + 1  # nothing signed over the replayed checkpoint
    # Nor without the store's word: a subscriber with no store, or a new one, reads the chain from its first record
    # and finds where the copies begin, even after a whole old batch (a receipt and its checkpoint, which link to
    # each other) is written again after them.
    before_cp0 = mine[mine.index(checkpoints[0]) - 1]
    assert json.loads(before_cp0.value)["seq"] + 1 == json.loads(checkpoints[0].value)["seq"]
    producer = AIOKafkaProducer(**env.login(f"partner-{partner}").aiokafka())
    await producer.start()
    try:
        for copy in (before_cp0, checkpoints[0]):
            await producer.send_and_wait(env.names.receipts(partner), copy.value, partition=0)
    finally:
        await producer.stop()
    for fresh in (None, tmp_path / "new.db"):
        with contextlib.ExitStack() as stack:
            subscriber = _subscriber(env, partner)
            subscriber.store = None if fresh is None else stack.enter_context(PartnerStore.open(fresh, partner))
            with pytest.raises(AuditChainError, match="does not follow the chain's record before it"):
                await subscriber.run(io.StringIO(), idle_exit_s=2)
    assert len([r for r in await read_topic(env.conn, env.names.receipts(partner))
                if json.loads(r.value).get("chain") == partner]) == len(mine) + 3

    # A crash between a batch's Kafka commit and the store noting its checkpoint leaves the store with the
    # one before: a copy of that one, written after the real head, is refused too (the store kept its offset).
    real_head, before = checkpoints[-1], checkpoints[-2]
    with PartnerStore.open(tmp_path / "store.db", partner) as store:
        key = _subscriber(env, partner)._kept_key(0)
        kept = store.chain_head(key)
        assert kept is not None and kept[1:] == (json.loads(real_head.value)["hash"], real_head.offset)
        doc = json.loads(before.value)
        store.keep_chain_head(key, doc["seq"], doc["hash"], before.offset)
    producer = AIOKafkaProducer(**env.login(f"partner-{partner}").aiokafka())
    await producer.start()
    try:
        await producer.send_and_wait(env.names.receipts(partner), before.value, partition=0)
    finally:
        await producer.stop()
    with PartnerStore.open(tmp_path / "store.db", partner) as store:
        subscriber = _subscriber(env, partner)
        subscriber.store = store
        with pytest.raises(AuditChainError, match="a copy of the one this subscriber's store saw committed last"):
            await subscriber.run(io.StringIO(), idle_exit_s=2)
