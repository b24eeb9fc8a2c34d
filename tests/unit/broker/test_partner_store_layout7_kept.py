"""A store of layout 7 (no outcomes kept by feed place) opened by this Puente while a batch it applied was not yet
confirmed by Kafka (its commit failed, or the process died between the two commits): the migration keeps, for each
place its rows name between the confirmed and applied offsets, the status layout 7's replay rule gave it, so the
batch read again gets back what the store applied, not a DUPLICATE judged against the record's own row."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from recall_views import recall_notice, updated

from broker.partner_store import SCHEMA_VERSION, PartnerStore
from tests.unit.broker.test_partner_store import RETENTION, SECRET, T0, _at, _view

FEED = "t.feed.col"


def _as_layout_7(path: Path) -> None:
    """The store as layout 7 left it: the same rows and offsets, no table of kept outcomes."""
    raw = sqlite3.connect(path)
    raw.execute("DROP TABLE applied")
    raw.execute("PRAGMA user_version = 7")
    raw.commit()
    raw.close()


def test_a_batch_applied_under_layout_7_and_read_again_after_the_upgrade_gets_its_statuses(tmp_path: Path) -> None:
    """[v1@4, recall@5, v3@6] applied under layout 7, not confirmed; opened (migrated) and read again: the
    re-release the row still names is RECEIVED as it was, not DUPLICATE; the two records the re-release overwrote
    are judged by the rule, as layout 7 judged them (it kept nothing of them). A record before the confirmed offset
    (its receipt committed) is not kept: read again, it is judged (DUPLICATE)."""
    path = tmp_path / "col" / "feed.sqlite"
    view = _view(summary=SECRET)
    other = _view(alert_id="PAN:BD-2025-0999")
    batch = [_at(view, 4), _at(recall_notice(view, 2, None), 5), _at(updated(view, 3), 6)]
    with PartnerStore.open(path, "COL", retention=RETENTION) as store:
        with store.transaction():
            store.apply(_at(other, 3), T0)
            store.keep_feed_offsets({(FEED, 0): 4})
        store.confirm_feed_offsets({(FEED, 0): 4})
        with store.transaction():
            first = [store.apply(d, T0).outcome.value for d in batch]
            store.keep_feed_offsets({(FEED, 0): 7})
    assert first == ["RECEIVED", "RECALLED", "RECEIVED"]
    _as_layout_7(path)
    later = T0 + timedelta(minutes=1)
    with PartnerStore.open(path, "COL", retention=RETENTION) as store:
        assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.applied_unconfirmed(FEED, 0) == 6
        with store.transaction():
            again = [store.apply(d, later) for d in batch]
        assert [a.outcome.value for a in again] == ["SUPERSEDED", "SUPERSEDED", "RECEIVED"]
        assert again[2].holds_text and store.show(view["alert_id"]).version == 3
        assert store.apply(_at(other, 3), later).outcome.value == "DUPLICATE"


def test_a_recall_and_an_expired_row_under_layout_7_keep_their_statuses(tmp_path: Path) -> None:
    """The migration keeps what the rows name past the confirmed offset (none confirmed here: from offset 0) with
    the old rule's statuses, no version held, nothing dropped: a tombstone the row names is RECALLED again; a row
    that arrived expired EXPIRED again; a record at a place no row names now is judged (SUPERSEDED)."""
    path = tmp_path / "col" / "feed.sqlite"
    view, late = _view(), _view(alert_id="PAN:BD-2025-0998")
    markings = late["markings"]
    expired = updated(late, 1, markings={**markings, "expires_at": T0 - timedelta(minutes=1)})
    with PartnerStore.open(path, "COL", retention=RETENTION) as store, store.transaction():
        store.apply(_at(view, 0), T0)
        assert store.apply(_at(recall_notice(view, 2, "ERROR"), 1), T0).outcome.value == "RECALLED"
        assert store.apply(_at(expired, 2), T0).outcome.value == "EXPIRED"
        store.keep_feed_offsets({(FEED, 0): 3})
    _as_layout_7(path)
    with PartnerStore.open(path, "COL", retention=RETENTION) as store:
        kept = sqlite3.connect(path).execute("SELECT at, version, recall, outcome, held_version, dropped FROM applied "
                                             "ORDER BY at").fetchall()
        assert kept == [(1, 2, 1, "RECALLED", None, 0), (2, 1, 0, "EXPIRED", None, 0)]
    with PartnerStore.open(path, "COL", retention=RETENTION) as store, store.transaction():
        assert store.apply(_at(recall_notice(view, 2, "ERROR"), 1), T0).outcome.value == "RECALLED"
        assert store.apply(_at(expired, 2), T0).outcome.value == "EXPIRED"
        assert store.apply(_at(view, 0), T0).outcome.value == "SUPERSEDED"
