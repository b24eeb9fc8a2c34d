"""How many requests one console account may make: a token bucket per account, and a tally of those refused.

Every request a signed-in auditor makes is written to the query log before it is answered: one Kafka transaction,
kept for the audit's retention, and the log has one writer, so each waits for the one before. Nothing else bounds
how fast one account asks, so one account could fill the log and keep every other auditor's pages waiting. Each
account is therefore given ``per_minute`` requests a minute, up to ``burst`` at once (a bucket of ``burst``
tokens, refilled at ``per_minute`` a minute). A request past that is refused (429) unrecorded, and tallied: the
refusals of one account are written as one summary record per ``window_s`` (``Console.summarise``), so a flood
still shows in the audit without filling it.

Pure: no clock of its own (each call is given the time), no I/O. Accounts are counted by name: a session is found
before the budget is asked, so only real accounts are ever held, and an account's several sessions share one budget.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from puente.wire import iso_utc


@dataclass(frozen=True)
class Refusals:
    """Requests of one account refused over its budget: how many, the first and the last (one summary record)."""

    account: str
    scope: str
    count: int
    first: datetime
    last: datetime

    def params(self) -> dict[str, Any]:
        """The summary record's parameters: how many were refused, from when until when."""
        return {"refused": self.count, "from": iso_utc(self.first), "until": iso_utc(self.last)}


@dataclass
class _Bucket:
    tokens: float
    at: datetime


class PageBudget:
    """The per-account budget (module docstring): ``per_minute`` requests a minute, ``burst`` at once."""

    def __init__(self, per_minute: int, burst: int, window_s: float = 60.0) -> None:
        if per_minute < 1 or burst < 1 or window_s <= 0:
            raise ValueError("a page budget needs at least one request a minute, a burst of one, and a window")
        self.rate, self.burst, self.window_s = per_minute / 60.0, float(burst), window_s
        self._buckets: dict[str, _Bucket] = {}
        self._refused: dict[str, Refusals] = {}

    def admit(self, account: str, scope: str, now: datetime) -> float:
        """0 when ``account`` may be answered now (a token is spent); else the seconds until it may be, and the
        refusal is tallied for the account's summary. A clock set back refills nothing, and takes nothing."""
        bucket = self._buckets.get(account)
        if bucket is None:
            bucket = self._buckets[account] = _Bucket(self.burst, now)
        elapsed = max(0.0, (now - bucket.at).total_seconds())
        bucket.tokens, bucket.at = min(self.burst, bucket.tokens + elapsed * self.rate), max(now, bucket.at)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        tally = self._refused.get(account)
        self._refused[account] = (Refusals(account, scope, 1, now, now) if tally is None
                                  else replace(tally, count=tally.count + 1, last=max(tally.last, now)))
        return (1.0 - bucket.tokens) / self.rate

    def due_at(self, account: str) -> datetime | None:
        """When ``account``'s tally of refused requests is due to be written (its first refusal and ``window_s``),
        or None: it holds none."""
        tally = self._refused.get(account)
        return None if tally is None else tally.first + timedelta(seconds=self.window_s)

    def due(self, now: datetime | None) -> list[Refusals]:
        """The tallies whose window (``window_s`` from their first refusal) has ended by ``now``, each taken out:
        the caller writes them. ``now`` None: every tally (the console is stopping)."""
        # A clock set back (now before the first refusal) makes every tally due: waiting for it to come round
        # again could hold a tally for hours, to be lost with an unclean exit.
        ended = [name for name, tally in self._refused.items()
                 if now is None or now < tally.first or (now - tally.first).total_seconds() >= self.window_s]
        return [self._refused.pop(name) for name in ended]

    def restore(self, refusals: Refusals) -> None:
        """Put back a tally whose record could not be written, merged with any tallied since, so that it is
        written with the next one (one record then covers both windows: still at most one a window)."""
        since = self._refused.get(refusals.account)
        if since is not None:
            refusals = replace(refusals, count=refusals.count + since.count, first=min(refusals.first, since.first),
                               last=max(refusals.last, since.last))
        self._refused[refusals.account] = refusals
