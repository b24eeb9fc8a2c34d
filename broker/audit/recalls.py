"""Recalls and their acknowledgements, as auditors follow them. Pure.

A recall reaches a partner as a notice on its feed (a RECALL decision in the audit, naming the
version it held); the partner's subscriber deletes its copy and acknowledges with a receipt of
status RECALLED, signed like every receipt, naming the version the notice carried.

That version is the notice's, not the recall record's: an officer's recall may reuse an older
version, and its notice goes out above every version a partner holds (``broker.pipeline``). The
pipeline records it in each RECALL decision as ``notice_version``; a decision written before that
field existed gives it by the pipeline's rule (``receipts.sent_version``). Notices to one partner
about one alert are ordered by it (it only grows), and an acknowledgement counts only for a notice
whose version it names or passes: keyed by the record's version, an officer's recall reusing
version 2 would sort below an earlier pull-back at version 3, and that one's acknowledgement would
be reported for a recall the partner never acknowledged. An agreement sets how long a partner has to do that
(``recall_ack_hours``). ``recall_status`` matches the two from audit rows (``flatten``'s) and says,
for every recall, whether it is acknowledged, outstanding, outstanding past its deadline, or
failed: the notice could not be sent at all (no key to seal it with), so the partner still holds
the alert until a later recall reaches it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from broker.audit.receipts import CLOCK_SKEW, sent_version
from broker.audit.verify import when

ACKNOWLEDGED = "acknowledged"
OUTSTANDING = "outstanding"
OVERDUE = "overdue"
FAILED = "failed"  # the notice could not be sent: the partner still holds the alert
DEFAULT_ACK_HOURS = 72
_MIN, _MAX = datetime(1000, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RecallRow:
    """One recall notice sent to one partner, and what became of it."""

    alert_id: str
    partner: str
    version: int
    """The version the notice carried (``notice_version``), which the partner's RECALLED receipt names."""
    sent_at: datetime
    deadline: datetime
    acknowledged_at: datetime | None
    state: str
    reason: str | None

    def overdue_by(self, now: datetime) -> timedelta:
        return max(timedelta(0), now - self.deadline) if self.acknowledged_at is None else timedelta(0)


def recall_status(rows: Iterable[dict[str, Any]], ack_hours: Mapping[str, int], now: datetime) -> list[RecallRow]:
    """Every recall: failed ones first, then overdue (longest overdue first), outstanding, and
    acknowledged (latest first); for each (alert, partner) the latest notice counts, the one of the
    highest notice version (``notice_version``), then the latest sent. ``ack_hours``
    gives each partner's deadline in hours (the shortest any of its agreements sets); a partner it
    does not name gets the default. A row whose ``at`` is no time with an offset (``verify.when``)
    counts for nothing: a time without one is never compared as if it were UTC."""
    sent: dict[tuple[str, str], tuple[int, datetime, str | None, bool]] = {}
    acks: dict[tuple[str, str], list[tuple[int, datetime]]] = {}
    for row in rows:
        kind, alert, partner = row.get("kind"), row.get("alert_id"), row.get("partner")
        if not isinstance(alert, str) or not isinstance(partner, str):
            continue
        at = when(row.get("at"))
        if at is None or not _MIN < at < _MAX:  # beyond them, a deadline or the clock skew would overflow
            continue
        if kind == "DECISION" and row.get("decision") == "RECALL":
            version = notice_version(row)
            previous = sent.get((alert, partner))
            if previous is None or (version, at) >= (previous[0], previous[1]):
                reason = row.get("reason") or row.get("action")  # a recall's category, or what pulled it back
                sent[(alert, partner)] = (version, at, reason if isinstance(reason, str) else None,
                                          row.get("sent") is not False)
        elif kind == "RECEIPT" and row.get("status") == "RECALLED":
            version = row.get("version", 1)
            version = version if type(version) is int else 1
            acks.setdefault((alert, partner), []).append((version, at))
    out = []
    for (alert, partner), (version, at, reason, went) in sent.items():
        deadline = at + timedelta(hours=ack_hours.get(partner, DEFAULT_ACK_HOURS))
        # Only an acknowledgement of this notice's version (the one the partner was sent) or a later one,
        # made after it was sent (give or take the clock skew allowed between parties).
        acked = sorted(a for v, a in acks.get((alert, partner), []) if v >= version and a >= at - CLOCK_SKEW)
        acknowledged_at = acked[0] if acked and went else None
        waiting = OVERDUE if now > deadline else OUTSTANDING
        state = FAILED if not went else ACKNOWLEDGED if acknowledged_at else waiting
        out.append(RecallRow(alert, partner, version, at, deadline, acknowledged_at, state, reason))
    rank = {FAILED: 0, OVERDUE: 1, OUTSTANDING: 2}

    def order(r: RecallRow) -> tuple[int, float, str, str]:
        if r.state == ACKNOWLEDGED:
            return (3, -r.sent_at.timestamp(), r.alert_id, r.partner)
        return (rank[r.state], r.deadline.timestamp(), r.alert_id, r.partner)  # longest overdue first

    return sorted(out, key=order)


def notice_version(row: dict[str, Any]) -> int:
    """The version the recall notice of RECALL decision ``row`` carried (``receipts.sent_version``: its
    ``notice_version``, or the pipeline's rule for a decision written before that field); 1 when the row
    states no integer version, as for any version a row does not state."""
    version = sent_version(row)
    return version if version is not None else 1
