"""Receipts' feed places over SQLite: the ``ReceiptBook`` the audit index and ``audit verify`` match receipts with.

``broker.audit.receipts.match_receipt`` decides; this keeps what it decides over: the deliveries (a
query its owner gives, over the index's decisions or ``audit verify``'s temporary file) and, per
partner and feed record, what that partner's receipts bound there (``receipt_places``).
"""

# ruff: noqa: S608 - SQL text is built from fixed table and column names and '?' placeholders only

from __future__ import annotations

import sqlite3

from broker.audit.receipts import FeedPlace, Placed, ReceiptMatch, Sent

PLACES_LAYOUT = (
    "CREATE TABLE IF NOT EXISTS receipt_places (partner TEXT NOT NULL, feed TEXT NOT NULL, "
    "feed_partition INTEGER NOT NULL, feed_offset INTEGER NOT NULL, alert_id TEXT NOT NULL, version INTEGER, "
    "decision_id INTEGER, PRIMARY KEY (partner, feed, feed_partition, feed_offset))",
    # Partial: places of receipts that opened nothing (no delivery) are not in it, so a partner writing many of
    # them cannot make the planner take the index for unselective and read every place per match (``sent``).
    "CREATE INDEX IF NOT EXISTS receipt_places_opened ON receipt_places (decision_id) WHERE decision_id IS NOT NULL",
    "DROP INDEX IF EXISTS receipt_places_by_decision",
)
"""One row per feed record a partner's receipts named: the alert (and version, and delivery, once a
receipt that opened it names them) the partner's receipts put there. Per partner: another partner's
receipts naming the same place (findings of their own) cannot change what this one's say."""


class SqlReceiptBook:
    """A ``ReceiptBook`` on ``conn``: ``sent_sql`` selects (key, feed topic, version sent, decision time in
    ms) of the feed records sent to a partner, given (alert id, partner); ``receipt_places`` holds the rest."""

    def __init__(self, conn: sqlite3.Connection, sent_sql: str) -> None:
        self._conn, self._sent_sql = conn, sent_sql

    def sent(self, partner: str, alert_id: str) -> list[Sent]:
        rows = self._conn.execute(
            "SELECT s.k, s.feed, s.version, s.at_ms, p.feed, p.feed_partition, p.feed_offset "
            f"FROM ({self._sent_sql}) s LEFT JOIN receipt_places p INDEXED BY receipt_places_opened "
            "ON p.partner = ? AND p.decision_id = s.k "
            "ORDER BY s.at_ms, s.k",
            (alert_id, partner, partner)).fetchall()
        return [Sent(k, feed, version, at, (t, p, o) if t is not None else None)
                for k, feed, version, at, t, p, o in rows]

    def placed(self, partner: str, place: FeedPlace) -> Placed | None:
        row = self._conn.execute("SELECT alert_id, version, decision_id FROM receipt_places WHERE partner = ? AND "
                                 "feed = ? AND feed_partition = ? AND feed_offset = ?", (partner, *place)).fetchone()
        return Placed(*row) if row is not None else None

    def bind(self, match: ReceiptMatch) -> None:
        self._conn.execute(
            "INSERT INTO receipt_places (partner, feed, feed_partition, feed_offset, alert_id, version, decision_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (partner, feed, feed_partition, feed_offset) DO UPDATE SET "
            "version = COALESCE(receipt_places.version, excluded.version), "
            "decision_id = COALESCE(receipt_places.decision_id, excluded.decision_id)",
            (match.partner, *match.place, match.alert_id, match.version, match.key))

    def unbind(self, partner: str, place: FeedPlace) -> None:
        """Forget what ``partner``'s receipts bound at ``place`` (the index binds it again from the receipts
        whose turn came before one matched again: ``PartitionIngest._replay``)."""
        self._conn.execute("DELETE FROM receipt_places WHERE partner = ? AND feed = ? AND feed_partition = ? AND "
                           "feed_offset = ?", (partner, *place))
