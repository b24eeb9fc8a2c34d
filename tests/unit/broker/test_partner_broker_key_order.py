"""The broker's signing key rotates forward only on the partner's side too: once a newer generation signed a feed key
block the subscriber accepted, a block of an older one made more than an hour later is a retired key's and does not
open, whatever the partner still holds the old key for; the store remembers the newest generation across restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from partner_feed import FEED, BrokerKeys, FailingReceipts, run_batch, sealed, subscriber
from recall_views import updated

from broker.crypto import FeedOpener
from broker.partner import newest_broker_key, retired_broker_key
from broker.partner_store import PartnerStore, Retention
from puente.errors import StoreError, UnreadableFeedError
from tests.unit.broker.test_partner_store import _view

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
OLD, NEW = "broker-sign-2026a", "broker-sign-2026b"
RETENTION = Retention({"COMBIFRON": 180}, fallback_days=10)
MS = 3_600_000  # an hour


def _store(tmp_path: Path) -> PartnerStore:
    return PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL", retention=RETENTION)


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


@pytest.mark.parametrize(("newest", "signer", "made_ms", "refused"), [
    (None, OLD, 10 * MS, False),  # nothing accepted yet
    ((NEW, 0), NEW, 10 * MS, False),  # the newest itself
    ((NEW, 0), "broker-sign-2026c", 10 * MS, False),  # a newer one
    ((NEW, 0), OLD, MS, False),  # within the hour after the newer one's first block: a rolling restart
    ((NEW, 0), OLD, -5 * MS, False),  # made before the rotation, read late
    ((NEW, 0), OLD, MS + 1, True),  # past the hour: a retired key in use
    ((NEW, 0), "broker-sign-2025z", 10 * MS, True),  # any older label
    ((NEW, 0), None, 10 * MS, False),  # the one unnamed key of an opener given a single key
    ((NEW, 0), "broker-sign-spring", 10 * MS, False),  # labels that say nothing of their order
])
def test_a_block_of_an_older_generation_made_past_the_grace_is_refused(
        newest: tuple[str, int] | None, signer: str | None, made_ms: int, refused: bool) -> None:
    """``retired_broker_key`` refuses an older generation's block made more than an hour after the newest one's first
    accepted block, by label order, and nothing else."""
    problem = retired_broker_key(newest, signer, made_ms)
    assert (problem is not None) == refused
    if problem is not None:
        assert f"signed by {signer}" in problem and NEW in problem and problem.endswith("a retired key in use")


@pytest.mark.parametrize(("newest", "signer", "made_ms", "after"), [
    (None, OLD, 5, (OLD, 5)),
    ((OLD, 5), NEW, 9, (NEW, 9)),  # a newer generation takes over from its first block
    ((NEW, 9), NEW, 3, (NEW, 3)),  # the newest's earliest block counts
    ((NEW, 3), NEW, 9, (NEW, 3)),
    ((NEW, 9), OLD, 1, (NEW, 9)),  # an older one changes nothing
    ((NEW, 9), None, 1, (NEW, 9)),
])
def test_the_newest_generation_and_its_first_block_are_remembered(
        newest: tuple[str, int] | None, signer: str | None, made_ms: int, after: tuple[str, int]) -> None:
    """``newest_broker_key`` moves forward by label only, and keeps the newest key's earliest block."""
    assert newest_broker_key(newest, signer, made_ms) == after


async def test_a_forged_later_version_under_the_retired_broker_key_is_rejected_and_stops(tmp_path: Path) -> None:
    """The broker moved to 2026b; a later version signed with the leaked 2026a a day after is REJECTED, stops the
    run with nothing committed past it, and the store keeps the genuine text; --skip gives it up, unapplied."""
    keys = BrokerKeys("2026a", "2026b")
    real, forged = _view(), updated(_view(), 2, summary="FORGED under the retired broker key")
    with _store(tmp_path) as store:
        sub = subscriber(keys, store, lambda: T0 + 2 * HOUR * 24)
        unread, receipts = await run_batch(sub, sealed(keys.sealer(NEW), real, 0, T0),
                                           sealed(keys.sealer(OLD), forged, 1, T0 + 24 * HOUR))
        assert isinstance(unread, UnreadableFeedError) and "a retired key in use" in str(unread)
        assert f"--skip {FEED}:0:1" in str(unread)
        assert receipts.statuses() == ["RECEIVED", "REJECTED: SignatureError"]
        assert list(receipts.offsets.values()) == [1]
        entry = store.show(real["alert_id"])
        assert entry.view is not None and (entry.version, entry.view["summary"]) == (1, real["summary"])
        assert store.broker_key() == (NEW, int(T0.timestamp() * 1000))
        skipping = subscriber(keys, store, lambda: T0 + 2 * HOUR * 24, skip=(f"{FEED}:0:1",))
        unread, receipts = await run_batch(skipping, sealed(keys.sealer(OLD), forged, 1, T0 + 24 * HOUR))
        assert unread is None and receipts.statuses() == ["REJECTED: SignatureError; given up"]
        assert store.show(real["alert_id"]).version == 1


async def test_the_newest_generation_is_kept_in_the_store_across_restarts(tmp_path: Path) -> None:
    """A subscriber started afresh on the same store still refuses the retired key: the store kept, with the
    records, which generation signed last."""
    keys = BrokerKeys("2026a", "2026b")
    view = _view()
    with _store(tmp_path) as store:
        unread, _ = await run_batch(subscriber(keys, store, lambda: T0), sealed(keys.sealer(NEW), view, 0, T0))
        assert unread is None
    with _store(tmp_path) as store:
        unread, receipts = await run_batch(subscriber(keys, store, lambda: T0 + 3 * HOUR),
                                           sealed(keys.sealer(OLD), updated(view, 2), 1, T0 + 2 * HOUR))
        assert isinstance(unread, UnreadableFeedError) and receipts.statuses() == ["REJECTED: SignatureError"]


async def test_a_rolling_restart_and_a_late_read_partition_pass(tmp_path: Path) -> None:
    """Within the hour after the newer key's first block a worker still on the older key is the broker's; so is a
    block the older key made before the rotation, read after it (another partition read late). Neither moves the
    newest generation back."""
    keys = BrokerKeys("2026a", "2026b")
    first, second, third = _view(), _view("senan-gofast-seizure"), _view("paso-canoas-migrant-flow")
    with _store(tmp_path) as store:
        unread, receipts = await run_batch(
            subscriber(keys, store, lambda: T0 + 2 * HOUR), sealed(keys.sealer(NEW), first, 0, T0),
            sealed(keys.sealer(OLD), second, 1, T0 + 50 * timedelta(minutes=1)),
            sealed(keys.sealer(OLD), third, 2, T0 - 30 * 24 * HOUR))
        assert unread is None and receipts.statuses() == ["RECEIVED"] * 3
        assert store.broker_key() == (NEW, int(T0.timestamp() * 1000))


async def test_a_batch_rolled_back_keeps_no_newer_generation(tmp_path: Path) -> None:
    """The newest generation is noted in the batch's own transaction: a batch that does not commit leaves the one
    noted before, with a store (rolled back with the records) or without one (for the run)."""
    keys = BrokerKeys("2026a", "2026b")
    view = _view()
    with _store(tmp_path) as store:
        sub = subscriber(keys, store, lambda: T0)
        await run_batch(sub, sealed(keys.sealer(OLD), view, 0, T0))
        with pytest.raises(RuntimeError):
            await run_batch(sub, sealed(keys.sealer(NEW), updated(view, 2), 1, T0), receipts=FailingReceipts())
        assert store.broker_key() == (OLD, int(T0.timestamp() * 1000))
    bare = subscriber(keys, None, lambda: T0 + 24 * HOUR)
    await run_batch(bare, sealed(keys.sealer(OLD), view, 0, T0))
    with pytest.raises(RuntimeError):
        await run_batch(bare, sealed(keys.sealer(NEW), updated(view, 2), 1, T0), receipts=FailingReceipts())
    unread, _ = await run_batch(bare, sealed(keys.sealer(OLD), updated(view, 2), 1, T0 + 2 * HOUR))
    assert unread is None
    await run_batch(bare, sealed(keys.sealer(NEW), updated(view, 3), 2, T0 + 2 * HOUR))
    unread, _ = await run_batch(bare, sealed(keys.sealer(OLD), updated(view, 4), 3, T0 + 4 * HOUR))
    assert isinstance(unread, UnreadableFeedError)


def test_a_damaged_kept_broker_key_stops_the_subscriber(tmp_path: Path) -> None:
    """What the store kept of the broker's newest key, damaged, is a StoreError, never a refusal forgotten."""
    with _store(tmp_path) as store:
        store._conn.execute("INSERT INTO meta (key, value) VALUES ('broker-key', '{\"key_id\": 3}')")
        with pytest.raises(StoreError, match="broker key in use is damaged"):
            store.broker_key()
