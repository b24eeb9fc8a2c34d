"""Recalls and their acknowledgements, as auditors follow them. Pure.

A recall reaches a partner as a notice on its feed (a RECALL decision in the audit, naming the
version it held); the partner's subscriber deletes its copy and acknowledges with a receipt of
status RECALLED, signed like every receipt. An agreement sets how long a partner has to do that
(``recall_ack_hours``). ``recall_status`` matches the two from audit rows (``flatten``'s) and says,
for every recall sent, whether it is acknowledged, outstanding, or outstanding past its deadline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

ACKNOWLEDGED = "acknowledged"
OUTSTANDING = "outstanding"
OVERDUE = "overdue"
DEFAULT_ACK_HOURS = 72


@dataclass(frozen=True)
class RecallRow:
    """One recall notice sent to one partner, and what became of it."""

    alert_id: str
    partner: str
    version: int
    sent_at: datetime
    deadline: datetime
    acknowledged_at: datetime | None
    state: str
    reason: str | None

    def overdue_by(self, now: datetime) -> timedelta:
        return max(timedelta(0), now - self.deadline) if self.acknowledged_at is None else timedelta(0)


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def recall_status(rows: Iterable[dict[str, Any]], ack_hours: Mapping[str, int], now: datetime) -> list[RecallRow]:
    """Every recall sent, overdue ones first (longest overdue first), then outstanding, then
    acknowledged (latest first). ``ack_hours`` gives each partner's deadline in hours (the
    shortest any of its agreements sets); a partner it does not name gets the default."""
    sent: dict[tuple[str, str], tuple[int, datetime, str | None]] = {}
    acks: dict[tuple[str, str], list[tuple[int, datetime]]] = {}
    for row in rows:
        kind, alert, partner = row.get("kind"), row.get("alert_id"), row.get("partner")
        if not isinstance(alert, str) or not isinstance(partner, str):
            continue
        at = _when(row.get("at"))
        if at is None:
            continue
        version = row.get("version", 1)
        version = version if type(version) is int else 1
        if kind == "DECISION" and row.get("decision") == "RECALL" and row.get("sent") is not False:
            previous = sent.get((alert, partner))
            if previous is None or version > previous[0]:
                reason = row.get("reason") or row.get("action")  # a recall's category, or what pulled it back
                sent[(alert, partner)] = (version, at, reason if isinstance(reason, str) else None)
        elif kind == "RECEIPT" and row.get("status") == "RECALLED":
            acks.setdefault((alert, partner), []).append((version, at))
    out = []
    for (alert, partner), (version, at, reason) in sent.items():
        deadline = at + timedelta(hours=ack_hours.get(partner, DEFAULT_ACK_HOURS))
        acked = sorted(a for v, a in acks.get((alert, partner), []) if v >= version)
        acknowledged_at = acked[0] if acked else None
        state = ACKNOWLEDGED if acknowledged_at else (OVERDUE if now > deadline else OUTSTANDING)
        out.append(RecallRow(alert, partner, version, at, deadline, acknowledged_at, state, reason))
    rank = {OVERDUE: 0, OUTSTANDING: 1}

    def order(r: RecallRow) -> tuple[int, float, str, str]:
        if r.state == ACKNOWLEDGED:
            return (2, -r.sent_at.timestamp(), r.alert_id, r.partner)
        return (rank[r.state], r.deadline.timestamp(), r.alert_id, r.partner)  # longest overdue first

    return sorted(out, key=order)
