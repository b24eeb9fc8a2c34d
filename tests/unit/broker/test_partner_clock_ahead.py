"""A host clock running ahead decides nothing for good: a batch it would expire commits nothing, and no purge goes past
the last time Kafka vouched for (its append time of a checkpoint, which the store keeps)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from partner_feed import CODEC, FEED, BrokerKeys, Receipts, ms, run_batch, sealed, subscriber

from broker.partner import clock_ahead
from broker.partner_store import CLOCK_SKEW_MS, Delivery, PartnerStore, Retention
from policies import DEFAULT_DIR
from puente.errors import ConfigError
from schemas import alert_from_json

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
RETENTION = Retention({"COMBIFRON": 180}, fallback_days=180)


def _view(name: str = "darien-armed-group-sighting") -> dict[str, Any]:
    doc = json.loads((DEFAULT_DIR.parent / "examples" / f"{name}.json").read_text("utf-8"))
    view = CODEC.decode(CODEC.encode(alert_from_json(doc)))
    view["markings"] = {**view["markings"], "expires_at": None}
    return view


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PartnerStore]:
    with PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL", retention=RETENTION) as opened:
        yield opened


@pytest.mark.parametrize(("ahead_ms", "refused"), [(0, False), (CLOCK_SKEW_MS, False), (CLOCK_SKEW_MS + 1, True),
                                                   (-200 * 86_400_000, False)])
def test_a_clock_is_ahead_past_the_skew_allowed_and_no_sooner(ahead_ms: int, refused: bool) -> None:
    """``clock_ahead`` allows the skew ``future_key_block`` allows (``CLOCK_SKEW_MS``), and nothing beyond."""
    appended = ms(T0)
    assert (clock_ahead(appended + ahead_ms, appended) is not None) is refused


async def test_a_batch_decided_by_a_clock_running_ahead_commits_nothing(store: PartnerStore) -> None:
    """A fresh record read by a host whose clock runs 200 days ahead (past the agreement's retention): the batch
    stops in one line naming the clock to check, before the store commits, so the view is not EXPIRED for good and
    the store notes no offset past it; with the clock set right, the same record is stored."""
    keys = BrokerKeys("2026a")
    rec = sealed(keys.sealer("broker-sign-2026a"), _view(), 0, T0)
    ahead = subscriber(keys, store, lambda: T0 + 200 * DAY)
    receipts = Receipts(appended=lambda: T0)
    with pytest.raises(ConfigError, match="this host's clock runs ahead") as stopped:
        await run_batch(ahead, rec, receipts=receipts)
    assert "\n" not in str(stopped.value) and "NTP" in str(stopped.value)
    assert receipts.ended == ["abort"]  # Kafka's transaction too: no receipt nor offset commits
    assert "nothing of this batch was committed" in str(stopped.value)
    assert store.counts().expired == 0 and store.counts().held == 0
    assert store.feed_offset(FEED, 0) is None and store.kafka_time() is None
    _, receipts = await run_batch(subscriber(keys, store, lambda: T0 + timedelta(minutes=14)), rec,
                                  receipts=Receipts(appended=lambda: T0))
    assert receipts.statuses() == ["RECEIVED"] and store.counts().held == 1
    assert store.kafka_time() == ms(T0)


async def test_a_checkpoint_without_kafkas_own_time_commits_nothing(store: PartnerStore) -> None:
    """A receipts topic keeping its producers' times (not LogAppendTime) gives no time to check the clock by: the
    batch stops, naming `puente topics apply`, rather than expire by a clock nothing checked."""

    class ProducerTimes(Receipts):
        async def send(self, topic: str, value: bytes, **kwargs: Any) -> Any:
            sent = await super().send(topic, value, **kwargs)
            sent.timestamp_type = 0
            return sent

    keys = BrokerKeys("2026a")
    with pytest.raises(ConfigError, match=r"LogAppendTime.*puente topics apply"):
        await run_batch(subscriber(keys, store, lambda: T0), sealed(keys.sealer("broker-sign-2026a"), _view(), 0, T0),
                        receipts=ProducerTimes())
    assert store.counts().held == 0 and store.feed_offset(FEED, 0) is None


async def test_a_start_under_a_clock_running_ahead_purges_nothing_kafka_did_not_vouch_for(
        store: PartnerStore) -> None:
    """The store holds an alert received at T0, when Kafka stamped T0; a start with the host's clock 200 days ahead
    (past the 180-day retention) purges as of T0 and the skew, not its own time: the alert stays held, and a note
    says what was held back and which clock to check. Once Kafka vouches for a time past the retention, it goes."""
    keys = BrokerKeys("2026a")
    await run_batch(subscriber(keys, store, lambda: T0), sealed(keys.sealer("broker-sign-2026a"), _view(), 0, T0))
    notes: list[str] = []
    subscriber(keys, store, lambda: T0 + 200 * DAY, notes=notes).purge(force=True)
    assert store.counts().held == 1 and store.counts().purged == 0
    held_back = next(note for note in notes if "were not purged" in note)
    assert "1 alert(s)" in held_back and "2026-03-01T12:15:00Z" in held_back and "NTP" in held_back
    purged = store.purge(T0 + 200 * DAY, kafka_now=T0 + 181 * DAY)
    assert (purged.retention, purged.deferred, store.counts().held) == (1, 0, 0)
    assert store.kafka_time() == ms(T0 + 181 * DAY)


def test_a_store_kafka_never_vouched_for_purges_nothing(store: PartnerStore) -> None:
    """A store that kept no time of Kafka's (kept by an earlier Puente, or never past a batch) purges nothing by the
    host's clock alone, and counts what it held back."""
    store.apply(Delivery.of(_view(), f"{FEED}:0:0", "COMBIFRON"), T0)
    purged = store.purge(T0 + 200 * DAY)
    assert (purged.total, purged.deferred, purged.as_of) == (0, 1, None)
    assert store.counts().held == 1
