"""A feed key block dated ahead of the partner's clock by more than the skew allowed does not open: the store counts
an alert's retention from that date, and a block "sealed in the future" would never be too old, so a genuine record
replayed after its recall's tombstone went would be stored anew."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from partner_feed import FEED, BrokerKeys, run_batch, sealed, subscriber
from recall_views import recall_notice

from broker.partner import future_key_block
from broker.partner_store import CLOCK_SKEW_MS, PartnerStore, Retention
from puente.errors import UnreadableFeedError
from tests.unit.broker.test_partner_store import _view

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
KEY = "broker-sign-2026a"
RETENTION = Retention({"COMBIFRON": 180}, fallback_days=10)


def _store(tmp_path: Path) -> PartnerStore:
    return PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL", retention=RETENTION)


@pytest.mark.parametrize(("ahead_ms", "refused"), [
    (-DAY // timedelta(milliseconds=1), False), (0, False), (CLOCK_SKEW_MS, False), (CLOCK_SKEW_MS + 1, True),
    (730 * DAY // timedelta(milliseconds=1), True)])
def test_a_block_dated_past_the_skew_allowed_is_refused(ahead_ms: int, refused: bool) -> None:
    """``future_key_block`` allows the clock skew the store allows (``CLOCK_SKEW_MS``), and nothing beyond."""
    assert (future_key_block(1_000_000 + ahead_ms, 1_000_000) is not None) == refused


async def test_a_record_whose_key_block_is_dated_years_ahead_is_rejected_and_never_stored(tmp_path: Path) -> None:
    """Dated two years ahead, the genuine record is REJECTED (stop, nothing past it committed, --skip offered) and
    nothing of it is stored, so it cannot come back after its recall's tombstone is purged; --skip gives it up."""
    keys = BrokerKeys("2026a")
    view = _view()
    ahead = sealed(keys.sealer(KEY), view, 0, T0 + 730 * DAY)
    with _store(tmp_path) as store:
        unread, receipts = await run_batch(subscriber(keys, store, lambda: T0), ahead)
        assert isinstance(unread, UnreadableFeedError) and f"--skip {FEED}:0:0" in str(unread)
        assert "dated ahead of this subscriber's clock" in str(unread) and "check the broker's clock" in str(unread)
        assert receipts.statuses() == ["REJECTED: CryptoError"] and receipts.offsets == {}
        assert store.counts().held == 0
        await run_batch(subscriber(keys, store, lambda: T0 + DAY),
                        sealed(keys.sealer(KEY), recall_notice(view, 2, None), 1, T0 + DAY))
        store.purge(T0 + 200 * DAY)
        replayed = ahead._replace(offset=2)
        unread, receipts = await run_batch(subscriber(keys, store, lambda: T0 + 200 * DAY, skip=(f"{FEED}:0:2",)),
                                           replayed)
        assert unread is None and receipts.statuses() == ["REJECTED: CryptoError; given up"]
        assert store.counts().held == 0


async def test_a_block_a_little_ahead_within_the_skew_is_taken(tmp_path: Path) -> None:
    """A broker clock ten minutes ahead is within the skew allowed: the record is received as usual."""
    keys = BrokerKeys("2026a")
    with _store(tmp_path) as store:
        unread, receipts = await run_batch(subscriber(keys, store, lambda: T0),
                                           sealed(keys.sealer(KEY), _view(), 0, T0 + timedelta(minutes=10)))
        assert unread is None and receipts.statuses() == ["RECEIVED"]

