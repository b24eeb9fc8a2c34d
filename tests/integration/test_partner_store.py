"""The partner's subscriber keeps its feed in its store: updates replace, recalls delete, receipts say which.

The feed records are written by hand, sealed with the broker's signing key for the partner's
encryption key as the broker seals them, so that each test controls versions, recalls and
redeliveries exactly; the subscriber runs as the partner's own login through ``puente subscribe``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from aiokafka.errors import TopicAlreadyExistsError
from puente_testing import Env, cli, read_topic
from recall_views import recall_notice, updated

from broker.crypto import FeedSealer, KeyKind
from broker.keystore import Keystore
from broker.partner_store import Delivery, PartnerStore, default_store_path
from policies import DEFAULT_DIR
from puente import wire
from schemas import alert_codec, alert_from_json, to_json

pytestmark = pytest.mark.kafka

PARTNER = "COL"
SECRET = "Wilmer-Arboleda-4417"  # a distinctive value of the alert that is recalled


def _view(name: str, **changes: Any) -> dict[str, Any]:
    codec = alert_codec()
    doc = json.loads((DEFAULT_DIR.parent / "examples" / f"{name}.json").read_text("utf-8"))
    alert = codec.decode(codec.encode(alert_from_json(doc)))
    alert.update(changes)
    return codec.decode(codec.encode(alert))


class Feed:
    """Writes sealed records to one partner's feed (partition 0 unless told), as the broker would."""

    def __init__(self, env: Env, partner: str) -> None:
        broker_keys = Keystore(env.cfg.keys / "broker")
        public = broker_keys.load(env.policy.partners[partner].encryption_key_id,
                                  KeyKind.PARTNER_ENCRYPTION).x25519_public()
        self.sealer = FeedSealer(partner, public, broker_keys.load_signing_key())
        self.env, self.topic, self.codec = env, env.feed(partner), alert_codec()
        self.producer = AIOKafkaProducer(**env.conn.aiokafka(), acks="all", enable_idempotence=True)

    async def __aenter__(self) -> Feed:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(self, view: dict[str, Any], decision: str = "DELIVER_REDACTED", partition: int = 0) -> str:
        """Seal and send one view; returns its feed location (topic:partition:offset)."""
        value, headers = self.sealed(view, decision)
        sent = await self.producer.send_and_wait(self.topic, value, key=view["alert_id"].encode(),
                                                 partition=partition, headers=headers)
        return f"{self.topic}:{partition}:{sent.offset}"

    def sealed(self, view: dict[str, Any], decision: str = "DELIVER_REDACTED") -> tuple[bytes, list[Any]]:
        """One view's feed record as the broker writes it: its sealed value and its headers."""
        plain = self.codec.encode(view)
        policy = self.env.policy.version
        value = self.sealer.seal(plain, alert_id=view["alert_id"], topic=self.topic,
                                 schema_fp=self.codec.fingerprint, policy_version=policy, agreement="COMBIFRON",
                                 now=datetime.now(UTC))
        headers = [(wire.ALERT_ID, view["alert_id"].encode()), (wire.SCHEMA, self.codec.fingerprint.hex().encode()),
                   (wire.POLICY, policy.encode()), (wire.DECISION, decision.encode()),
                   (wire.AGREEMENT, b"COMBIFRON")]
        return value, headers


async def _receipts(env: Env, partner: str) -> list[dict[str, Any]]:
    records = [json.loads(r.value) for r in await read_topic(env.conn, env.names.receipts(partner))]
    return [r for r in records if r.get("chain") == partner]


def _subscribe(env: Env, *extra: str) -> subprocess.CompletedProcess[str]:
    # Each run reads what the feed holds, then ends: caught up, a quiet second is enough (``Subscriber._caught_up``).
    return subprocess.run(cli("subscribe", "--partner", PARTNER, "--key", str(env.key_file(PARTNER)),
                              "--exit-when-idle", "1", *extra),
                          env=env.env_vars(f"partner-{PARTNER}"), capture_output=True, text=True, timeout=180,
                          check=False)


def _store_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def test_updates_recalls_and_redeliveries_reach_the_store_and_the_receipts(env: Env, tmp_path: Path) -> None:
    """Through `puente subscribe`: version 2 replaces version 1, the same version again is a DUPLICATE, an older one
    SUPERSEDED; a recall notice deletes the alert's content (its value is gone from the store's files) and is
    acknowledged with a signed RECALLED receipt; a later version of it is REFUSED; a RECALL header on an ordinary
    view counts for nothing. Every receipt names the view's version."""
    sighting = _view("darien-armed-group-sighting")
    seizure = _view("senan-gofast-seizure", summary=f"Lancha rápida, capitán {SECRET}")
    flow = _view("paso-canoas-migrant-flow")
    corrected = updated(sighting, 2, summary="Avistamiento corregido: 9 personas")
    async with Feed(env, PARTNER) as feed:
        sent = [
            (await feed.send(sighting), "RECEIVED", 1),
            (await feed.send(corrected), "RECEIVED", 2),
            (await feed.send(corrected), "DUPLICATE", 2),  # the broker sent version 2 again
            (await feed.send(sighting), "SUPERSEDED", 1),
            (await feed.send(seizure), "RECEIVED", 1),
            # With --out the subscriber cannot take back the copy's earlier line: passed on, not acknowledged.
            (await feed.send(recall_notice(seizure, 2, "SOURCE_PROTECTION"), "RECALL"), "RECALL_PASSED_ON", 2),
            (await feed.send(updated(seizure, 3)), "REFUSED", 3),
            (await feed.send(flow, "RECALL"), "RECEIVED", 1),  # the header lies; the view is a first version
        ]
    out = tmp_path / "copy.jsonl"
    run = _subscribe(env, "--out", str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "8 feed record(s) opened" in run.stderr and "1 recall_passed_on" in run.stderr

    receipts = await _receipts(env, PARTNER)
    got = [(r["feed"], r["status"], r["version"]) for r in receipts if r["kind"] == "RECEIPT"]
    assert got == sent
    assert receipts[-1]["kind"] == "CHECKPOINT" and receipts[-1]["signer"].startswith(f"{PARTNER}-rcpt-")
    assert [r["seq"] for r in receipts] == list(range(len(receipts)))

    path = default_store_path(env.cfg.keys, PARTNER)
    assert SECRET.encode() not in _store_bytes(path)
    with PartnerStore.open(path, PARTNER, create=False) as store:
        kept = store.show(sighting["alert_id"])
        assert (kept.version, kept.state, kept.view) == (2, "HELD", to_json(corrected))
        assert kept.feed == sent[1][0] and kept.agreement == "COMBIFRON"
        gone = store.show(seizure["alert_id"])
        assert (gone.state, gone.version, gone.view, gone.recall_reason) == ("RECALLED", 2, None, "SOURCE_PROTECTION")
        assert store.show(flow["alert_id"]).state == "HELD"
        assert (store.counts().held, store.counts().recalled) == (2, 1)
    # The JSON-lines copy gets what the store took, recall notices included (the reader's to honour), and
    # nothing it turned away: no duplicate, no older version, no view of what its originator recalled.
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(line["alert_id"], line["version"]) for line in lines] == [
        (sighting["alert_id"], 1), (sighting["alert_id"], 2), (seizure["alert_id"], 1), (seizure["alert_id"], 2),
        (flow["alert_id"], 1)]
    assert lines[3]["lifecycle"]["action"] == "RECALL" and lines[3]["summary"] is None

    again = _subscribe(env)  # nothing new: no receipt, nothing changed
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(await _receipts(env, PARTNER)) == len(receipts)


async def test_a_batch_the_store_committed_before_a_crash_is_receipted_as_it_first_was(env: Env,
                                                                                      tmp_path: Path) -> None:
    """A subscriber crashed after its store committed a batch and before Kafka committed the receipts: the
    batch comes again, and its records get the statuses they first had (RECEIVED, RECALLED), not DUPLICATE,
    since the first receipts were aborted; the store does not change. (A version the same batch then
    recalled is RECEIVED again too: the store kept each record's outcome, never judging it against the recall
    after it.) It was the
    partition's first batch, so the group has no offset there: the subscriber does not resume where the store
    stands, past the records whose receipts were aborted, which would never have any."""
    first = _view("tocumen-red-notice-hit")
    recalled = _view("colon-panama-only-seizure", summary=SECRET)
    notice = recall_notice(recalled, 2, "ERROR")
    store_path = tmp_path / "partner" / "feed.sqlite"
    store_path.parent.mkdir(mode=0o700)  # a named store's folder must be there
    async with Feed(env, PARTNER) as feed:
        locations = [await feed.send(first), await feed.send(recalled), await feed.send(notice)]
    crashed_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)  # well within retention
    with PartnerStore.open(store_path, PARTNER) as store, store.transaction():  # the crashed run's batch
        for view, where in zip((first, recalled, notice), locations, strict=True):
            store.apply(Delivery.of(view, where, "COMBIFRON"), crashed_at)
        topic, partition, offset = locations[-1].rsplit(":", 2)
        store.keep_feed_offsets({(topic, int(partition)): int(offset) + 1})  # as the crashed run's batch did

    run = _subscribe(env, "--store", str(store_path))
    assert run.returncode == 0, run.stderr[-2000:]
    got = [(r["feed"], r["status"], r["version"]) for r in await _receipts(env, PARTNER) if r["kind"] == "RECEIPT"]
    assert got == [(locations[0], "RECEIVED", 1), (locations[1], "RECEIVED", 1), (locations[2], "RECALLED", 2)]
    with PartnerStore.open(store_path, PARTNER, create=False) as store:
        assert store.show(first["alert_id"]).received_at == crashed_at
        assert store.show(recalled["alert_id"]).view is None
    assert SECRET.encode() not in _store_bytes(store_path)


async def test_records_deleted_before_the_partner_read_them_stop_the_subscriber(env: Env, tmp_path: Path) -> None:
    """Retention deleted feed records this partner had not read: the subscriber does not skip them in silence (as
    Kafka's reset to the earliest record would). It stops (exit 1) naming the records, committing nothing; with
    --accept-gap it reads on from the feed's first record and says how many it skipped. So too in a partition
    the subscriber never committed in, which it reads from offset 0, not from wherever the feed now starts."""
    store_path = tmp_path / "partner" / "feed.sqlite"
    store_path.parent.mkdir(mode=0o700)  # a named store's folder must be there
    async with Feed(env, PARTNER) as feed:
        await feed.send(_view("darien-armed-group-sighting"))
        first = _subscribe(env, "--store", str(store_path))
        assert first.returncode == 0, first.stderr[-2000:]
        lost = [await feed.send(_view("senan-gofast-seizure")), await feed.send(_view("paso-canoas-migrant-flow"))]
        kept = await feed.send(_view("tocumen-red-notice-hit"))
        never = await feed.send(_view("darien-armed-group-sighting", alert_id="SENAFRONT:GAP-1"), partition=1)
    assert never.endswith(":1:0")
    start = int(kept.rsplit(":", 1)[1])
    admin = AIOKafkaAdminClient(**env.conn.aiokafka())
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(env.feed(PARTNER), 0): RecordsToDelete(start),
                                    TopicPartition(env.feed(PARTNER), 1): RecordsToDelete(1)})
    finally:
        await admin.close()
    before = await _receipts(env, PARTNER)

    stopped = _subscribe(env, "--store", str(store_path))
    assert stopped.returncode == 1, stopped.stderr[-2000:]
    first_lost, last_lost = (int(where.rsplit(":", 1)[1]) for where in (lost[0], lost[-1]))
    # It stops at the first gap it meets, in either partition.
    assert (f"[0] holds records {start}-{start}, but this subscriber's next record is {first_lost}: records "
            f"{first_lost}-{last_lost} were deleted" in stopped.stderr
            or "[1] is empty from 1, but this subscriber's next record is 0: records 0-0 were deleted"
            in stopped.stderr), stopped.stderr[-2000:]
    assert "--accept-gap" in stopped.stderr
    assert "Traceback" not in stopped.stderr and len(await _receipts(env, PARTNER)) == len(before)

    accepted = _subscribe(env, "--store", str(store_path), "--accept-gap")
    assert accepted.returncode == 0, accepted.stderr[-2000:]
    assert "3 record(s) the feed no longer held skipped" in accepted.stderr
    got = [(r["feed"], r["status"]) for r in await _receipts(env, PARTNER) if r["kind"] == "RECEIPT"]
    assert got[len([r for r in before if r["kind"] == "RECEIPT"]):] == [(kept, "RECEIVED")]


async def test_a_recall_of_an_alert_an_earlier_run_passed_on_is_not_acknowledged(env: Env, tmp_path: Path) -> None:
    """A run with --out wrote a view to a copy no subscriber can take back; the recall, received by a later run
    without --out, is RECALL_PASSED_ON all the same (the store remembers), never a RECALLED acknowledgement. An
    alert never passed on is acknowledged as usual."""
    passed, kept = _view("senan-gofast-seizure"), _view("paso-canoas-migrant-flow")
    async with Feed(env, PARTNER) as feed:
        await feed.send(passed)
    copied = _subscribe(env, "--out", str(tmp_path / "copy.jsonl"))
    assert copied.returncode == 0, copied.stderr[-2000:]
    async with Feed(env, PARTNER) as feed:
        await feed.send(kept)
        notices = [await feed.send(recall_notice(passed, 2, "ERROR"), "RECALL"),
                   await feed.send(recall_notice(kept, 2, "ERROR"), "RECALL")]
    later = _subscribe(env)
    assert later.returncode == 0, later.stderr[-2000:]
    got = {r["feed"]: r["status"] for r in await _receipts(env, PARTNER) if r["kind"] == "RECEIPT"}
    assert [got.get(n) for n in notices] == ["RECALL_PASSED_ON", "RECALLED"], later.stderr[-3000:]


async def test_a_store_restored_from_a_backup_reads_again_what_the_group_read_since(env: Env,
                                                                                    tmp_path: Path) -> None:
    """The group's committed offsets are past what a store restored from a backup applied: the subscriber reads
    the records in between again into it, saying so, so the recall it missed deletes the text the backup brought
    back. A new, empty --store reads everything the feed holds. Nothing is skipped in either."""
    sighting, flow = _view("darien-armed-group-sighting"), _view("paso-canoas-migrant-flow")
    seizure = _view("senan-gofast-seizure", summary=f"Lancha rápida, capitán {SECRET}")
    store_path, backup = tmp_path / "partner" / "feed.sqlite", tmp_path / "backup"
    store_path.parent.mkdir(mode=0o700)  # a named store's folder must be there
    async with Feed(env, PARTNER) as feed:
        await feed.send(sighting)
        await feed.send(seizure)
    first = _subscribe(env, "--store", str(store_path))
    assert first.returncode == 0, first.stderr[-2000:]
    backup.mkdir()
    for part in store_path.parent.glob(store_path.name + "*"):
        (backup / part.name).write_bytes(part.read_bytes())
    async with Feed(env, PARTNER) as feed:
        recall = await feed.send(recall_notice(seizure, 2, "SOURCE_PROTECTION"), "RECALL")
        await feed.send(flow)
    second = _subscribe(env, "--store", str(store_path))
    assert second.returncode == 0, second.stderr[-2000:]
    assert SECRET.encode() not in _store_bytes(store_path)

    for part in store_path.parent.glob(store_path.name + "*"):  # the backup comes back: the secret with it
        part.unlink()
    for part in backup.iterdir():
        (store_path.parent / part.name).write_bytes(part.read_bytes())
        (store_path.parent / part.name).chmod(0o600)
    assert SECRET.encode() in _store_bytes(store_path)
    restored = _subscribe(env, "--store", str(store_path))
    assert restored.returncode == 0, restored.stderr[-2000:]
    assert "behind the group's committed offset" in restored.stderr and "reading 2 record(s) again" in restored.stderr
    with PartnerStore.open(store_path, PARTNER, create=False) as store:
        gone = store.show(seizure["alert_id"])
        assert (gone.state, gone.view) == ("RECALLED", None)
        assert store.show(flow["alert_id"]).state == "HELD"
    assert SECRET.encode() not in _store_bytes(store_path)
    statuses = [r["status"] for r in await _receipts(env, PARTNER) if r.get("feed") == recall]
    # a second receipt for the same feed record (one delivery): the restored store read it again, and whether an
    # earlier run passed the alert on with --out is unknowable, so the recall is no acknowledgement there
    assert statuses == ["RECALLED", "RECALL_PASSED_ON"]

    new_store = tmp_path / "elsewhere" / "feed.sqlite"
    new_store.parent.mkdir(mode=0o700)
    fresh = _subscribe(env, "--store", str(new_store))
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert f"{new_store} is new to this instance, behind the group's committed offset" in fresh.stderr
    with PartnerStore.open(new_store, PARTNER, create=False) as store:
        assert [e.alert_id for e in store.recent()] and store.counts().held == 2, fresh.stderr[-3000:]
        assert store.show(sighting["alert_id"]).state == "HELD" and store.show(flow["alert_id"]).state == "HELD"
        assert store.show(seizure["alert_id"]).state == "RECALLED"
    assert SECRET.encode() not in _store_bytes(new_store)


async def test_a_feed_made_anew_with_a_transaction_open_across_the_stores_offset_is_not_read_past(
        env: Env, tmp_path: Path) -> None:
    """The feed topic is deleted and made again (Kafka drops the group's offsets), and the new one holds a committed
    record, then a transaction open from before the store's offset (3) to past it: read_committed, the feed ends
    before 3. The subscriber waits for the transaction, compares the last committed record before 3 with the one
    its store read, and stops (exit 1) naming --accept-gap, never reading on from 3 past the new records 0-2."""
    store_path = tmp_path / "partner" / "feed.sqlite"
    store_path.parent.mkdir(mode=0o700)
    async with Feed(env, PARTNER) as feed:
        for name in ("darien-armed-group-sighting", "senan-gofast-seizure", "paso-canoas-migrant-flow"):
            await feed.send(_view(name))
    first = _subscribe(env, "--store", str(store_path))
    assert first.returncode == 0, first.stderr[-2000:]
    with PartnerStore.open(store_path, PARTNER, create=False) as store:
        assert store.feed_offset(env.feed(PARTNER), 0, confirmed=True) == 3

    admin = AIOKafkaAdminClient(**env.conn.aiokafka())
    await admin.start()
    try:
        partitions = len((await admin.describe_topics([env.feed(PARTNER)]))[0]["partitions"])
        await admin.delete_topics([env.feed(PARTNER)])
        for _ in range(100):
            try:
                await admin.create_topics([NewTopic(env.feed(PARTNER), partitions, 1)])
                break
            except TopicAlreadyExistsError:  # its deletion is still under way
                await asyncio.sleep(0.2)
    finally:
        await admin.close()
    writer = AIOKafkaProducer(**env.conn.aiokafka(), acks="all", enable_idempotence=True,
                              transactional_id=f"{env.cfg.topic_prefix}-remade")
    await writer.start()
    try:
        async with Feed(env, PARTNER) as feed:
            views = [_view("tocumen-red-notice-hit", alert_id=f"SNM:NEW-{n}") for n in range(5)]
            records = [feed.sealed(view) for view in views]
        async with writer.transaction():  # offset 0, its commit marker at 1
            await writer.send_and_wait(env.feed(PARTNER), records[0][0], key=b"SNM:NEW-0", partition=0,
                                       headers=records[0][1])
        await writer.begin_transaction()  # offsets 2-5, open
        for n in range(1, 5):
            await writer.send_and_wait(env.feed(PARTNER), records[n][0], key=f"SNM:NEW-{n}".encode(), partition=0,
                                       headers=records[n][1])
        run = subprocess.Popen(cli("subscribe", "--partner", PARTNER, "--key", str(env.key_file(PARTNER)),
                                   "--store", str(store_path)),
                               env=env.env_vars(f"partner-{PARTNER}"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        await asyncio.sleep(8)  # the subscriber meets the open transaction
        await writer.commit_transaction()
        _, stderr = await asyncio.to_thread(run.communicate, timeout=120)
    finally:
        await writer.stop()
    assert run.returncode == 1, stderr[-2000:]
    assert "waiting for another writer's open transaction" in stderr, stderr[-2000:]
    assert "the last record before offset 3 is not the one the store read there" in stderr, stderr[-2000:]
    assert "--accept-gap" in stderr and "Traceback" not in stderr
    with PartnerStore.open(store_path, PARTNER, create=False) as store:
        assert store.feed_offset(env.feed(PARTNER), 0, confirmed=True) == 3
