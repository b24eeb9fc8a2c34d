"""The broker's signing key rotates forward only on the partner's side too: once the subscriber accepted a feed key
block of a newer generation, a block of an older one made more than an hour after that (by the subscriber's own clock)
is a retired key's and does not open, whatever the partner still holds the old key for; the store remembers when it
first saw each generation, across restarts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from partner_feed import FEED, BrokerKeys, FailingReceipts, Receipts, run_batch, sealed, subscriber
from recall_views import updated

from broker.crypto import FeedOpener
from broker.crypto.keys import KeyKind, new_key
from broker.crypto.pem import public_pem
from broker.keystore import Keystore
from broker.partner import note_broker_key, opener_for, ordered_broker_keys, retired_broker_key
from broker.partner_store import PartnerStore, Retention
from puente.errors import KeyMaterialError, StoreError, UnreadableFeedError
from puente.wire import Record
from tests.unit.broker.test_partner_store import _view

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
OLD, NEW, NEWER = "broker-sign-2026a", "broker-sign-2026b", "broker-sign-2026c"
RETENTION = Retention({"COMBIFRON": 180}, fallback_days=10)
MS = 3_600_000  # an hour


def _store(tmp_path: Path) -> PartnerStore:
    return PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL", retention=RETENTION)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def test_the_opener_says_which_broker_key_verified_a_key_block() -> None:
    """``open_verified`` names the generation whose signature the key block carries, and the block's created_at."""
    keys = BrokerKeys("2026a", "2026b")
    view = _view()
    for key_id in (OLD, NEW, OLD):
        rec = sealed(keys.sealer(key_id), view, 0, T0)
        opened = keys.opener().open_verified(rec.value, alert_id=view["alert_id"], topic=FEED,
                                             schema_fp=bytes.fromhex(dict(rec.headers)["puente-schema"].decode()),
                                             policy_version="p1", agreement="COMBIFRON")
        assert (opened.signer, opened.created_at) == (key_id, T0)
    single = FeedOpener("COL", keys.col, keys.signing[OLD].public_key())
    rec = sealed(keys.sealer(OLD), view, 0, T0)
    assert single.open_verified(rec.value, alert_id=view["alert_id"], topic=FEED,
                                schema_fp=bytes.fromhex(dict(rec.headers)["puente-schema"].decode()),
                                policy_version="p1", agreement="COMBIFRON").signer is None


@pytest.mark.parametrize(("first_seen", "signer", "made_ms", "refused"), [
    ({}, OLD, 10 * MS, False),  # nothing accepted yet
    ({OLD: 0}, OLD, 10 * MS, False),  # the only generation seen
    ({NEW: 0}, NEW, 10 * MS, False),  # the newer one itself
    ({NEW: 0}, NEWER, 10 * MS, False),  # a newer one still
    ({NEW: 0}, OLD, MS, False),  # within the hour after the newer one was first seen: a rolling restart
    ({NEW: 0}, OLD, -5 * MS, False),  # made before the rotation, read late
    ({NEW: 0}, OLD, MS + 1, True),  # past the hour: a retired key in use
    ({NEW: 0}, "broker-sign-2025z", 10 * MS, True),  # any older label
    ({NEW: 0}, None, 10 * MS, False),  # the one unnamed key of an opener given a single key
    ({NEW: 0}, "broker-sign-spring", 10 * MS, False),  # labels that say nothing of their order
    ({"broker-sign-spring": 0}, OLD, 10 * MS, False),
    ({NEW: 0, NEWER: 100 * MS}, OLD, 50 * MS, True),  # 2026b bounds 2026a though 2026c came later
    ({NEW: 0, NEWER: 100 * MS}, NEW, 50 * MS, False),  # 2026b is retired only from 2026c's first sight
    ({NEW: 0, NEWER: 100 * MS}, NEW, 101 * MS + 1, True),
    ({NEW: 30 * 24 * MS}, OLD, 10 * 24 * MS, False),  # the price: a new key first met late bounds from then
])
def test_a_block_of_an_older_generation_made_past_the_grace_is_refused(
        first_seen: dict[str, int], signer: str | None, made_ms: int, refused: bool) -> None:
    """``retired_broker_key`` refuses a block made more than an hour after any newer generation (by label) was first
    seen, and nothing else."""
    problem = retired_broker_key(first_seen, signer, made_ms)
    assert (problem is not None) == refused
    if problem is not None:
        assert f"signed by {signer}" in problem and "by its own clock" in problem
        assert problem.endswith("a retired key in use")


def test_the_refusal_names_the_newer_generation_seen_first() -> None:
    """Of several newer generations past the hour, the refusal names the one first seen: the rotation it breaks."""
    problem = retired_broker_key({NEWER: 100 * MS, NEW: 0}, OLD, 200 * MS)
    assert problem is not None and f"({NEW}, a newer generation" in problem and NEWER not in problem


@pytest.mark.parametrize(("first_seen", "signer", "now_ms", "after"), [
    ({}, OLD, 5, {OLD: 5}),
    ({OLD: 5}, NEW, 9, {OLD: 5, NEW: 9}),  # a newer generation is added at this subscriber's time
    ({NEW: 9}, NEW, 3, {NEW: 9}),  # the first sight stays, whatever came since
    ({NEW: 9}, NEW, 12, {NEW: 9}),
    ({NEW: 9}, OLD, 1, {NEW: 9, OLD: 1}),  # an older one is noted too: it bounds older ones still
    ({NEW: 9}, None, 1, {NEW: 9}),
])
def test_each_generation_is_remembered_from_its_first_sight(
        first_seen: dict[str, int], signer: str | None, now_ms: int, after: dict[str, int]) -> None:
    """``note_broker_key`` adds a generation not seen yet at the subscriber's time, and changes nothing else, leaving
    the mapping it was given as it was."""
    before = dict(first_seen)
    assert note_broker_key(first_seen, signer, now_ms) == after
    assert first_seen == before


async def test_a_forged_later_version_under_the_retired_broker_key_is_rejected_and_stops(tmp_path: Path) -> None:
    """The broker moved to 2026b; a later version signed with the leaked 2026a a day after is REJECTED, stops the
    run with nothing committed past it, and the store keeps the genuine text; --skip gives it up, unapplied."""
    keys = BrokerKeys("2026a", "2026b")
    real, forged = _view(), updated(_view(), 2, summary="FORGED under the retired broker key")
    with _store(tmp_path) as store:
        unread, _ = await run_batch(subscriber(keys, store, lambda: T0 + MINUTE), sealed(keys.sealer(NEW), real, 0, T0))
        assert unread is None and store.broker_keys_seen() == {NEW: _ms(T0 + MINUTE)}
        sub = subscriber(keys, store, lambda: T0 + DAY + MINUTE)
        unread, receipts = await run_batch(sub, sealed(keys.sealer(OLD), forged, 1, T0 + DAY))
        assert isinstance(unread, UnreadableFeedError) and "a retired key in use" in str(unread)
        assert f"--skip {FEED}:0:1" in str(unread)
        assert receipts.statuses() == ["REJECTED: SignatureError"] and receipts.offsets == {}
        entry = store.show(real["alert_id"])
        assert entry.view is not None and (entry.version, entry.view["summary"]) == (1, real["summary"])
        skipping = subscriber(keys, store, lambda: T0 + DAY + MINUTE, skip=(f"{FEED}:0:1",))
        unread, receipts = await run_batch(skipping, sealed(keys.sealer(OLD), forged, 1, T0 + DAY))
        assert unread is None and receipts.statuses() == ["REJECTED: SignatureError; given up"]
        assert store.show(real["alert_id"]).version == 1


async def test_every_newer_generation_bounds_an_older_one_after_two_rotations(tmp_path: Path) -> None:
    """2026a -> 2026b -> 2026c: a block of the leaked 2026a dated between an hour past 2026b's first sight and 2026c's
    is refused once 2026c has been seen too, not only while 2026b is the newest."""
    keys = BrokerKeys("2026a", "2026b", "2026c")
    real, forged = _view(), updated(_view(), 2, summary="FORGED with the leaked 2026a key")
    with _store(tmp_path) as store:
        await run_batch(subscriber(keys, store, lambda: T0), sealed(keys.sealer(NEW), real, 0, T0 - MINUTE))
        await run_batch(subscriber(keys, store, lambda: T0 + 100 * DAY),
                        sealed(keys.sealer(NEWER), _view("senan-gofast-seizure"), 1, T0 + 100 * DAY))
        assert store.broker_keys_seen() == {NEW: _ms(T0), NEWER: _ms(T0 + 100 * DAY)}
        unread, receipts = await run_batch(subscriber(keys, store, lambda: T0 + 101 * DAY),
                                           sealed(keys.sealer(OLD), forged, 2, T0 + 50 * DAY))
        assert isinstance(unread, UnreadableFeedError) and f"({NEW}, a newer generation" in str(unread)
        assert receipts.statuses() == ["REJECTED: SignatureError"]
        entry = store.show(real["alert_id"])
        assert entry.view is not None and (entry.version, entry.view["summary"]) == (1, real["summary"])


async def test_a_new_key_block_dated_behind_does_not_retire_the_old_key_early(tmp_path: Path) -> None:
    """The first worker restarted on 2026b has its clock two hours behind: its block, first seen ten minutes after the
    rotation, dates it then, so another worker's 2026a block made a minute after the rotation is received; one made
    two hours after is still refused."""
    keys = BrokerKeys("2026a", "2026b")
    with _store(tmp_path) as store:
        unread, _ = await run_batch(subscriber(keys, store, lambda: T0 + 10 * MINUTE),
                                    sealed(keys.sealer(NEW), _view(), 0, T0 - 2 * HOUR))
        assert unread is None and store.broker_keys_seen() == {NEW: _ms(T0 + 10 * MINUTE)}
        unread, receipts = await run_batch(subscriber(keys, store, lambda: T0 + 12 * MINUTE),
                                           sealed(keys.sealer(OLD), _view("senan-gofast-seizure"), 1, T0 + MINUTE))
        assert unread is None and receipts.statuses() == ["RECEIVED"]
        late = sealed(keys.sealer(OLD), _view("paso-canoas-migrant-flow"), 2, T0 + 2 * HOUR)
        unread, receipts = await run_batch(subscriber(keys, store, lambda: T0 + 3 * HOUR), late)
        assert isinstance(unread, UnreadableFeedError) and receipts.statuses() == ["REJECTED: SignatureError"]


async def test_a_rolling_restart_passes_and_the_hour_runs_from_the_first_sight(tmp_path: Path) -> None:
    """Workers move to 2026b one after another over the hour after the subscriber first saw it; the first to move,
    its clock 40 minutes behind, is read after another: the old key's blocks until the last restart are received, and
    the hour still runs from the first sight, so a worker left on 2026a is refused past it."""
    keys = BrokerKeys("2026a", "2026b")
    first, second, third = _view(), _view("senan-gofast-seizure"), _view("paso-canoas-migrant-flow")
    with _store(tmp_path) as store:
        async def at(now: datetime, *records: Record) -> tuple[UnreadableFeedError | None, list[str]]:
            unread, receipts = await run_batch(subscriber(keys, store, lambda: now), *records)
            return unread, receipts.statuses()

        assert await at(T0 + 2 * MINUTE, sealed(keys.sealer(NEW), first, 0, T0)) == (None, ["RECEIVED"])
        assert await at(T0 + 30 * MINUTE, sealed(keys.sealer(OLD), second, 1, T0 + 25 * MINUTE),
                        sealed(keys.sealer(NEW), updated(first, 2), 2, T0 - 40 * MINUTE)) == (None, ["RECEIVED"] * 2)
        assert await at(T0 + 55 * MINUTE, sealed(keys.sealer(OLD), third, 3, T0 + 50 * MINUTE)) == (None, ["RECEIVED"])
        unread, statuses = await at(T0 + 2 * HOUR, sealed(keys.sealer(OLD), updated(third, 2), 4, T0 + 65 * MINUTE))
        assert unread is not None and statuses == ["REJECTED: SignatureError"]
        assert store.broker_keys_seen() == {NEW: _ms(T0 + 2 * MINUTE), OLD: _ms(T0 + 30 * MINUTE)}


async def test_a_partition_read_hours_late_is_judged_by_its_blocks_dates(tmp_path: Path) -> None:
    """Partition 1 is read as it comes; partition 0 six hours late, with what the broker wrote there before, during
    and after the rolling restart (a 2026b block from a worker whose clock was behind among them): its 2026a blocks
    made within the hour after the subscriber first saw 2026b are received, however late they are read."""
    keys = BrokerKeys("2026a", "2026b")
    with _store(tmp_path) as store:
        unread, _ = await run_batch(subscriber(keys, store, lambda: T0 + MINUTE),
                                    sealed(keys.sealer(NEW), _view(), 0, T0), partition=1)
        assert unread is None
        late = subscriber(keys, store, lambda: T0 + 6 * HOUR)
        unread, receipts = await run_batch(
            late, sealed(keys.sealer(OLD), _view("senan-gofast-seizure"), 0, T0 - DAY),
            sealed(keys.sealer(NEW), _view("tocumen-red-notice-hit"), 1, T0 - 30 * MINUTE),
            sealed(keys.sealer(OLD), _view("paso-canoas-migrant-flow"), 2, T0 + 40 * MINUTE))
        assert unread is None and receipts.statuses() == ["RECEIVED"] * 3
        unread, receipts = await run_batch(
            late, sealed(keys.sealer(OLD), updated(_view("paso-canoas-migrant-flow"), 2), 3, T0 + 5 * HOUR))
        assert unread is not None and receipts.statuses() == ["REJECTED: SignatureError"]


async def test_a_new_store_reading_an_old_feed_again_takes_its_rotation(tmp_path: Path) -> None:
    """A new store reads a month-old feed from its start: the rotation in it, a 2026b block dated two hours early
    among it, passes whole, both generations first seen now; once caught up, the old key signing is refused."""
    keys = BrokerKeys("2026a", "2026b")
    now = T0 + 30 * DAY
    with _store(tmp_path) as store:
        unread, receipts = await run_batch(
            subscriber(keys, store, lambda: now), sealed(keys.sealer(OLD), _view(), 0, T0 - 10 * DAY),
            sealed(keys.sealer(NEW), _view("senan-gofast-seizure"), 1, T0 - 2 * HOUR),
            sealed(keys.sealer(OLD), _view("paso-canoas-migrant-flow"), 2, T0 + 5 * MINUTE),
            sealed(keys.sealer(NEW), updated(_view(), 2), 3, T0 + DAY))
        assert unread is None and receipts.statuses() == ["RECEIVED"] * 4
        assert store.broker_keys_seen() == {OLD: _ms(now), NEW: _ms(now)}
        unread, receipts = await run_batch(subscriber(keys, store, lambda: now + 2 * HOUR),
                                           sealed(keys.sealer(OLD), updated(_view(), 3), 4, now + 90 * MINUTE))
        assert unread is not None and receipts.statuses() == ["REJECTED: SignatureError"]


async def test_a_batch_rolled_back_keeps_no_new_generation_with_a_store(tmp_path: Path) -> None:
    """A generation first seen in a batch that does not commit is not remembered, nor its time: seen again later, it
    counts from then, with the records in the store's transaction."""
    keys = BrokerKeys("2026a", "2026b")
    view = _view()
    with _store(tmp_path) as store:
        await run_batch(subscriber(keys, store, lambda: T0), sealed(keys.sealer(OLD), view, 0, T0))
        with pytest.raises(RuntimeError):
            await run_batch(subscriber(keys, store, lambda: T0 + DAY),
                            sealed(keys.sealer(NEW), updated(view, 2), 1, T0 + DAY - 2 * HOUR),
                            receipts=FailingReceipts())
        assert store.broker_keys_seen() == {OLD: _ms(T0)}
        unread, _ = await run_batch(subscriber(keys, store, lambda: T0 + 2 * DAY),
                                    sealed(keys.sealer(OLD), updated(view, 2), 1, T0 + 2 * DAY))
        assert unread is None
        await run_batch(subscriber(keys, store, lambda: T0 + 3 * DAY),
                        sealed(keys.sealer(NEW), updated(view, 3), 2, T0 + 3 * DAY - 2 * HOUR))
        unread, _ = await run_batch(subscriber(keys, store, lambda: T0 + 3 * DAY + 5 * MINUTE),
                                    sealed(keys.sealer(OLD), updated(view, 4), 3, T0 + 3 * DAY + MINUTE))
        assert unread is None
        assert store.broker_keys_seen() == {OLD: _ms(T0), NEW: _ms(T0 + 3 * DAY)}


async def test_a_batch_rolled_back_keeps_no_new_generation_without_a_store() -> None:
    """Without a store the generations seen are kept for the run, and set back with a batch that does not commit."""
    keys = BrokerKeys("2026a", "2026b")
    view = _view()
    clock = [T0]
    bare = subscriber(keys, None, lambda: clock[0])
    await run_batch(bare, sealed(keys.sealer(OLD), view, 0, T0))
    clock[0] = T0 + DAY
    with pytest.raises(RuntimeError):
        await run_batch(bare, sealed(keys.sealer(NEW), updated(view, 2), 1, T0 + DAY - 2 * HOUR),
                        receipts=FailingReceipts())
    clock[0] = T0 + 2 * DAY
    unread, _ = await run_batch(bare, sealed(keys.sealer(OLD), updated(view, 2), 1, T0 + 2 * DAY))
    assert unread is None
    clock[0] = T0 + 3 * DAY
    await run_batch(bare, sealed(keys.sealer(NEW), updated(view, 3), 2, T0 + 3 * DAY - 2 * HOUR))
    clock[0] = T0 + 3 * DAY + 5 * MINUTE
    unread, _ = await run_batch(bare, sealed(keys.sealer(OLD), updated(view, 4), 3, T0 + 3 * DAY + MINUTE))
    assert unread is None
    clock[0] = T0 + 3 * DAY + 3 * HOUR
    unread, receipts = await run_batch(bare, sealed(keys.sealer(OLD), updated(view, 5), 4, T0 + 3 * DAY + 2 * HOUR))
    assert isinstance(unread, UnreadableFeedError) and receipts.statuses() == ["REJECTED: SignatureError"]


async def test_the_generations_seen_outlive_a_store_reopened(tmp_path: Path) -> None:
    """A subscriber started afresh on the same store judges by the first sights it kept, as JSON in the store's meta,
    not by the blocks' dates."""
    keys = BrokerKeys("2026a", "2026b")
    with _store(tmp_path) as store:
        unread, _ = await run_batch(subscriber(keys, store, lambda: T0 + 10 * MINUTE),
                                    sealed(keys.sealer(NEW), _view(), 0, T0 - 2 * HOUR))
        assert unread is None
    with _store(tmp_path) as store:
        kept = store._conn.execute("SELECT value FROM meta WHERE key = 'broker-key'").fetchone()[0]
        assert json.loads(kept) == {"first_seen": {NEW: _ms(T0 + 10 * MINUTE)}}
        unread, _ = await run_batch(subscriber(keys, store, lambda: T0 + 20 * MINUTE),
                                    sealed(keys.sealer(OLD), _view("senan-gofast-seizure"), 1, T0 + MINUTE))
        assert unread is None
        late = sealed(keys.sealer(OLD), _view("paso-canoas-migrant-flow"), 2, T0 + 2 * HOUR)
        unread, receipts = await run_batch(subscriber(keys, store, lambda: T0 + 3 * HOUR), late)
        assert isinstance(unread, UnreadableFeedError) and receipts.statuses() == ["REJECTED: SignatureError"]


@pytest.mark.parametrize("value", [
    "not json", "[]", '{"first_seen": []}', '{"first_seen": {"broker-sign-2026b": "1"}}',
    '{"first_seen": {"broker-sign-2026b": true}}', '{"first_seen": {"": 1}}',
    '{"key_id": "broker-sign-2026b", "since_ms": 0}',  # the one-key shape of an earlier build: not read
])
async def test_damaged_generations_seen_stop_the_subscriber(tmp_path: Path, value: str) -> None:
    """What the store kept of the generations seen, damaged, is a StoreError that stops the subscriber before the
    record is judged, with nothing committed: never a refusal forgotten."""
    keys = BrokerKeys("2026a", "2026b")
    with _store(tmp_path) as store:
        with store.transaction():
            store._conn.execute("INSERT INTO meta (key, value) VALUES ('broker-key', ?)", (value,))
        with pytest.raises(StoreError, match=r"broker signing keys seen .* are damaged"):
            store.broker_keys_seen()
        receipts = Receipts()
        with pytest.raises(StoreError, match=r"broker signing keys seen .* are damaged"):
            await run_batch(subscriber(keys, store, lambda: T0), sealed(keys.sealer(OLD), _view(), 0, T0),
                            receipts=receipts)
        assert receipts.offsets == {} and store.counts().held == 0


async def test_the_generations_seen_are_read_once_a_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's generations seen are read once for each record that opens, judged and noted from that one read, and
    what is noted still reaches the store."""
    keys = BrokerKeys("2026a", "2026b")
    with _store(tmp_path) as store:
        reads = []
        kept = store.broker_keys_seen

        def counted() -> dict[str, int]:
            reads.append(1)
            return kept()

        monkeypatch.setattr(store, "broker_keys_seen", counted)
        unread, receipts = await run_batch(subscriber(keys, store, lambda: T0 + MINUTE),
                                           sealed(keys.sealer(OLD), _view(), 0, T0),
                                           sealed(keys.sealer(NEW), _view("senan-gofast-seizure"), 1, T0))
        assert unread is None and receipts.statuses() == ["RECEIVED", "RECEIVED"] and len(reads) == 2
        assert kept() == {OLD: _ms(T0 + MINUTE), NEW: _ms(T0 + MINUTE)}


@pytest.mark.parametrize(("labels", "ordered"), [(("2026a", "2027"), False), (("2026z", "2026aa"), False),
                                                 (("2026", "2026a"), False), (("2026a", "2026b", "2027a"), True)])
def test_broker_keys_whose_labels_do_not_order_are_refused_where_the_subscriber_loads_them(
        labels: tuple[str, ...], ordered: bool) -> None:
    """A subscriber holding broker-sign-2026a and broker-sign-2027 (typed at import-public; the broker itself would
    refuse to make 2027 after 2026a) could never tell the older from the newer, so a leaked 2026a would never
    retire on its side: its verify keys (from its folder or --verify-key files, ``opener_for``) are refused, naming
    both ids; labels that order are taken as before."""
    made = {f"broker-sign-{label}": new_key(KeyKind.BROKER_SIGNING, "broker", label, T0).ed25519_public()
            for label in labels}
    if ordered:
        assert ordered_broker_keys(made, "the folder") == made
        return
    with pytest.raises(KeyMaterialError, match="cannot be ordered by their labels") as refused:
        ordered_broker_keys(made, "the folder")
    assert all(key_id in str(refused.value) for key_id in made) and "the folder" in str(refused.value)


def test_import_public_refuses_a_generation_that_does_not_order_against_one_held(tmp_path: Path) -> None:
    """The partner learns of an unorderable label when it imports the key, not at its subscriber's next restart:
    broker-sign-2027 beside broker-sign-2026a is refused, naming both, and nothing is written; one that orders is
    taken; another owner's or kind's labels are no concern of it."""
    folder = Keystore(tmp_path / "keys")
    held = new_key(KeyKind.BROKER_SIGNING, "broker", "2026a", T0)
    folder.import_public(public_pem(held), held.key_id, source="held.pem", now=T0)
    odd = new_key(KeyKind.BROKER_SIGNING, "broker", "2027", T0)
    with pytest.raises(KeyMaterialError, match="cannot be ordered against broker-sign-2026a") as refused:
        folder.import_public(public_pem(odd), odd.key_id, source="odd.pem", now=T0)
    assert "broker-sign-2027" in str(refused.value) and "\n" not in str(refused.value)
    assert not (folder.path / "broker-sign-2027.json").exists()
    later = new_key(KeyKind.BROKER_SIGNING, "broker", "2027a", T0)
    assert folder.import_public(public_pem(later), later.key_id, source="later.pem", now=T0)[1]


def test_a_folder_of_unorderable_broker_keys_is_refused_without_pointing_at_verify_key(tmp_path: Path) -> None:
    """Keys put in the subscriber's folder by hand that do not order are refused at load, and the refusal does not
    tell the partner to pass one key with --verify-key (which would drop the older generation it still needs)."""
    folder = Keystore(tmp_path / "keys")
    folder.path.mkdir(mode=0o700, parents=True)
    for label in ("2026a", "2027"):
        record = new_key(KeyKind.BROKER_SIGNING, "broker", label, T0)
        other = Keystore(tmp_path / label)
        other.import_public(public_pem(record), record.key_id, source="x.pem", now=T0)
        (folder.path / f"{record.key_id}.json").write_bytes((other.path / f"{record.key_id}.json").read_bytes())
    col = new_key(KeyKind.PARTNER_ENCRYPTION, "COL", "2026a", T0)
    folder.put(col)
    with pytest.raises(KeyMaterialError, match="cannot be ordered by their labels") as refused:
        opener_for("COL", folder.path / f"{col.key_id}.json", None)
    assert "--verify-key" not in str(refused.value)
