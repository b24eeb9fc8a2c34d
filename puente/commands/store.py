"""``puente store list|show|purge``: a partner's people read and tidy the partner's own store.

No Kafka: these read the store file the partner's subscriber writes (``broker.partner_store``),
which they may do while it runs. ``show`` prints an alert's content, which is what the store is
for; nothing else here prints a view's values. ``list`` and ``show`` purge the store first, with
the retention of the partner's agreements, as the subscriber does (``_read``): the text of an alert
past its expiry or its retention is deleted only by a purge, and a read must not show it as held
because none has run since. Without Kafka, a purge goes no further than the last time Kafka vouched
for, which the store keeps (``PartnerStore.purge``): this host's clock alone, set ahead, would delete
everything held for good; what that holds back is said, with the clock to check (``_held_back``), and
``purge`` then exits 5 (not everything asked was done): a run of ``puente subscribe`` has Kafka vouch for the time,
and ``show`` prints no text of an alert so held back (exit 5).
A partner cut off from Kafka (no run of the subscriber can reach it) purges with ``purge --by-host-clock``: by this
host's clock alone, a person's deliberate act, said in one line with the time it used.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from broker.partner_store import (
    EXPIRED_STATE,
    HELD,
    Entry,
    PartnerStore,
    Purged,
    Retention,
    default_store_path,
    deferred_note,
)
from policies import load_policy_set
from puente.commands._common import Subparsers, say, settings, whole
from puente.errors import EXIT_UNCHECKED, ConfigError
from puente.strict import json_text, one_line, printable
from puente.wire import iso_utc

MAX_LIMIT = 1_000_000  # rows `store list` prints at most


def _say(text: str = "", **kwargs: Any) -> None:
    """``print`` one line, escaped for the terminal (``_common.say``: its line breaks too): a store's ids came from
    a feed, and one holding a line feed must not print a row of its own."""
    say(text, **kwargs)


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    store = sub.add_parser("store", help="read a partner's store of received alerts",
                           description="read or purge the store a partner's subscriber keeps (no Kafka needed)")
    acts = store.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--partner", required=True)
        parser.add_argument("--store", type=Path, metavar="FILE",
                            help="the store (default: PUENTE_KEYS/partners/<P>/feed.sqlite)")

    listing = acts.add_parser("list", help="alerts held and recalled, the most recently received first (after "
                                           "purging what the partner may no longer keep)")
    common(listing)
    # Bounded: SQLite's LIMIT takes a 64-bit integer, and a larger one was an OverflowError (exit 70).
    listing.add_argument("--limit", type=whole(1, MAX_LIMIT), default=50, metavar="N",
                         help=f"at most N rows (default 50, at most {MAX_LIMIT:,})")
    listing.add_argument("--due", action="store_true",
                         help="only alerts held past their review date (markings.review_at), the longest overdue "
                              "first: the partner must review its copy")
    listing.set_defaults(func=_list)
    show = acts.add_parser("show", help="one alert: its current version, or what is left of it after a recall or a "
                                        "purge (after purging what the partner may no longer keep)")
    show.add_argument("alert_id", metavar="ALERT_ID")
    common(show)
    show.set_defaults(func=_show)
    purge = acts.add_parser("purge", help="delete what the partner may no longer keep (expiry, agreement retention)")
    common(purge)
    purge.add_argument("--by-host-clock", action="store_true",
                       help="purge by this host's clock alone, not only up to the last time Kafka vouched for: for a "
                            "partner cut off from Kafka (check the clock first: what it deletes is gone for good)")
    purge.set_defaults(func=_purge)


def _open(args: argparse.Namespace, *, retention: bool = False) -> PartnerStore:
    cfg = settings(args)
    policy_set = load_policy_set(cfg.policy_dir) if retention else None
    if policy_set is not None and args.partner not in policy_set.partners:
        raise ConfigError(f"unknown partner {args.partner[:40]!r}; known: {', '.join(sorted(policy_set.partners))}")
    path = args.store or default_store_path(cfg.keys, args.partner)
    kept = None if policy_set is None else Retention.for_partner(policy_set, args.partner)
    return PartnerStore.open(path, args.partner, create=False, retention=kept)


def _read(args: argparse.Namespace, now: datetime) -> PartnerStore:
    """The store, purged first of what the partner may no longer keep (``PartnerStore.purge``, with the partner's
    retention): whatever the subscriber's last purge, nothing past its expiry or its agreement's retention is read
    as held. Saying so when it deleted anything."""
    store = _open(args, retention=True)
    try:
        purged = store.purge(now)
    except BaseException:
        store.close()
        raise
    if purged.total:
        _say(f"puente store: purged {purged.total} alert(s) from {store.path} before reading: the text of "
             f"{purged.expired} past their expiry and {purged.retention} past the agreement's retention, "
             f"{purged.tombstones} old content-free row(s)", file=sys.stderr)
    _held_back(store, purged, now)
    return store


def _held_back(store: PartnerStore, purged: Purged, now: datetime) -> None:
    """Say what the purge held back (``Purged.deferred``): past its time by this host's clock, which Kafka has not
    vouched for (the alerts still read as held)."""
    if purged.deferred:
        _say(f"puente store: {deferred_note(purged.deferred, store.path, store.partner, now, purged.as_of)}",
             file=sys.stderr)


def _when(value: datetime | None, *, minutes: bool = True) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M" if minutes else "%Y-%m-%d")


def _status(e: Entry) -> str:
    if e.state == HELD:
        return "held" if e.action is None else f"held ({one_line(e.action.lower())})"
    if e.state == EXPIRED_STATE:
        return "purged (nothing kept)" if e.purged_at is not None else "expired on arrival (nothing kept)"
    return f"recalled ({one_line((e.recall_reason or 'no longer covered').lower().replace('_', ' '))})"


def _list(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    with _read(args, now) as store:
        rows = store.due(now, args.limit) if args.due else store.recent(args.limit)
        counts = store.counts()
        due = store.due_count(now)
    if rows:
        width = max(len(one_line(e.alert_id)) for e in rows)  # as printed: escaped, on one line
        _say(f"{'RECEIVED (UTC)':<16}  {'ALERT':<{width}}  {'TYPE':<13} {'VER':>4}  {'AGREEMENT':<10} "
              f"{'REVIEW':<10}  {'EXPIRES':<10}  STATUS")
        for e in rows:
            review = _when(e.review_at, minutes=False) + ("!" if e.review_at is not None and e.review_at <= now
                                                          and e.state == HELD else "")
            _say(f"{_when(e.received_at):<16}  {one_line(e.alert_id):<{width}}  {one_line(e.alert_type):<13} "
                 f"{e.version:>4}  {one_line(e.agreement or '-'):<10} {review:<10}  "
                 f"{_when(e.expires_at, minutes=False):<10}  {_status(e)}")
    shown = f"{len(rows)} due for review" if args.due else f"{len(rows)}"
    overdue = f"; {due} held past their review date (REVIEW marked !)" if due else ""
    expired = f", {counts.expired} expired on arrival" if counts.expired else ""
    expired += f", {counts.purged} purged" if counts.purged else ""
    total = counts.held + counts.recalled + counts.expired + counts.purged
    _say(f"{shown} of {total} alert(s) in {store.path}: {counts.held} held, "
          f"{counts.recalled} recalled{expired}{overdue}; last received {_when(counts.last_received_at)} UTC",
          file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    with _read(args, now) as store:
        e = store.show(args.alert_id)
        held_back = e.view is not None and store.past_time(e.alert_id, now)
    if held_back:
        # Past its time by this host's clock, but not purged (no time Kafka vouched for reaches it): its text is not
        # the partner's to read, whichever clock is wrong.
        _say(f"puente store: {one_line(e.alert_id)} is past its expiry or the agreement's retention by this host's "
             f"clock ({iso_utc(now)}) but was not purged (Kafka has vouched for no time that late): its text is not "
             f"shown; a run of `puente subscribe --partner {one_line(args.partner[:40])}` settles it (or, cut off "
             "from Kafka, `puente store purge --by-host-clock`)", file=sys.stderr)
        return EXIT_UNCHECKED
    _say(f"alert      {e.alert_id} ({e.alert_type}), version {e.version}")
    _say(f"status     {_status(e)}")
    _say(f"received   first {_when(e.first_received_at)} UTC, this version {_when(e.received_at)} UTC, from {e.feed}")
    _say(f"agreement  {e.agreement or '-'}")
    if e.state == EXPIRED_STATE and e.purged_at is not None:
        why = ("its expiry passed" if e.expires_at is not None and e.expires_at <= e.purged_at
               else "the agreement's retention passed")
        _say(f"purged     {_when(e.purged_at)} UTC, when {why}: nothing of it is kept, and this version and older "
              "ones are not stored again")
        return 0
    if e.state == EXPIRED_STATE:
        _say(f"expired    {_when(e.expires_at)} UTC, before this version arrived: nothing of it is kept, and older "
              "versions are not stored again")
        return 0
    if e.view is None:
        _say(f"recalled   {_when(e.recalled_at)} UTC; its content was deleted from this store")
        return 0
    _say(f"review     {_when(e.review_at)} UTC" if e.review_at else "review     not set")
    _say(f"expires    {_when(e.expires_at)} UTC" if e.expires_at else "expires    not set")
    print(printable(json_text(e.view, indent=2)))  # line breaks only where indent puts them (json_text)
    return 0


def _purge(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    with _open(args, retention=True) as store:
        purged = store.purge(now, by_host_clock=args.by_host_clock)
        wiped = not store.wipe_pending
    if args.by_host_clock:
        _say(f"puente store: purged by this host's clock alone, as of {iso_utc(now)}, not by a time Kafka vouched "
             "for (--by-host-clock)", file=sys.stderr)
    _say(f"purged {purged.total} alert(s) from {store.path}: the text of {purged.expired} past their expiry and "
          f"{purged.retention} past the agreement's retention (their versions are remembered, so a replay is not "
          f"stored again), {purged.tombstones} old content-free row(s)", file=sys.stderr)
    _held_back(store, purged, now)
    if not wiped:
        _say("puente store: a reader kept the write-ahead log from being cleared; the next write clears it",
              file=sys.stderr)
    # Held back: the purge asked for was not all done, and what is kept past its time is a duty still open.
    return EXIT_UNCHECKED if purged.deferred else 0
