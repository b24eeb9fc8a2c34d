"""The decision for one alert and one partner: a value, never an exception."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Outcome(StrEnum):
    """What happens to one alert for one partner."""

    DELIVER = "DELIVER"
    DELIVER_REDACTED = "DELIVER_REDACTED"
    WITHHOLD = "WITHHOLD"


@dataclass(frozen=True, slots=True)
class Redaction:
    """One field the partner's view changes, how, and the agreement rule that says so."""

    path: str
    action: str  # drop, mask, pseudonymise, generalise
    detail: str  # e.g. "to a 0.01° grid"; "not named by the agreement"
    rule_id: str
    why: str | None = None
    named: bool = True  # False: dropped because no rule names the field (views are allow-lists)


@dataclass(frozen=True, slots=True)
class Decision:
    """Deliver, deliver redacted or withhold, with the agreements, rules and reasons behind it.

    A decision does not depend on anything but the rules that produced it, so
    equal inputs give equal (often identical) decision objects; the alert it
    is about is whatever it was asked for.
    """

    outcome: Outcome
    partner_id: str
    agreement_ids: tuple[str, ...]
    rule_ids: tuple[str, ...]
    reasons: tuple[str, ...]
    redactions: tuple[Redaction, ...]
    policy_version: str
    retention_days: int | None = None  # how long the partner's feed may keep the alert
    onward_sharing: bool = False  # whether the partner may pass it on

    @property
    def delivers(self) -> bool:
        """True for DELIVER and DELIVER_REDACTED."""
        return self.outcome is not Outcome.WITHHOLD

    @property
    def agreement_id(self) -> str | None:
        """The agreement a delivery names, or None when no agreement applied: of those that decided, the one
        with the shortest retention (``agreement_ids`` is in that order), which the partner's store keeps the
        alert by."""
        return self.agreement_ids[0] if self.agreement_ids else None


def day_of(value: datetime) -> datetime:
    """The start of ``value``'s day (UTC for the decoded alert): what a partner's view states of a marking time
    an adapter derives from the event's own time (``markings.review_at``, ``markings.expires_at``: the event
    time plus the agency's review or expiry interval). Exact, they would give the event time back to the
    second to a partner whose agreement cuts it to the hour, or drops it. The decision compares the same day
    (``decide``), so a partner is never sent a view its own store already holds as expired."""
    return value.replace(hour=0, minute=0, second=0, microsecond=0)
