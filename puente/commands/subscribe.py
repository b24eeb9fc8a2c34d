"""``puente subscribe``: a partner reads its feed: verify, decrypt, decode, keep in its store, signed receipts.

It registers the partner's other command, ``puente store`` (``puente.commands.store``), beside it:
the two read and write the same store, and ``puente.cli`` stays one registration per area.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import TextIO

from broker.access import partner_principal
from broker.credentials import require_party
from broker.keystore import Holder, holder_path
from broker.partner import BEHIND_STOP_S, IDLE_EXIT_S, Subscriber, open_copy, subscriber_for
from broker.partner_store import default_store_path
from broker.private_files import PrivateFile
from policies import DEFAULT_INSTANCE
from puente import logs
from puente.commands import store as store_commands
from puente.commands._common import Subparsers, given_folder, kafka, kafka_options, run, say, seconds, settings
from puente.errors import ConfigError, PuenteError
from puente.signals import on_stop_signals


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    text = ("read a partner's feed: verify, decrypt, apply each alert to the partner's store (a newer version "
            "replaces the one held, a recall deletes it), send signed receipts; stops (exit 1) at a record it "
            "cannot open, committing nothing past it")
    subs = sub.add_parser("subscribe", help="read a partner's feed", description=text, parents=[kafka_options()])
    subs.add_argument("--partner", required=True)
    subs.add_argument("--key", required=True, type=Path,
                      help="the partner's private decryption key file; every other generation of the partner's "
                           "decryption keys in its folder is loaded too, so records sealed before a rotation open")
    subs.add_argument("--verify-key", type=Path, action="append",
                      help="a public half of the broker's signing key, once per generation whose signatures the feed "
                           "still holds (default: every broker-sign-<g> key beside --key)")
    subs.add_argument("--sign-key", type=Path,
                      help="the partner's receipt-signing key file (default: the current one beside --key)")
    subs.add_argument("--store", type=Path, metavar="FILE",
                      help="the partner's store, made when missing (default: PUENTE_KEYS/partners/<P>/feed.sqlite)")
    subs.add_argument("--out", type=Path, metavar="FILE",
                      help="also append every view the store takes as a JSON line here ('-': standard output); "
                           "recall notices included, and a content-free EXPIRED line when a newer version ends an "
                           "alert copied there: a copy this subscriber cannot delete from (a run without --out "
                           "names, in a note, each alert passed on earlier that the store deletes or replaces)")
    until = subs.add_mutually_exclusive_group()
    until.add_argument("--follow", action="store_true",
                       help="keep reading until stopped (SIGTERM, Ctrl-C); default: stop once caught up and idle")
    until.add_argument("--exit-when-idle", type=seconds(0.1, 7 * 86400), default=IDLE_EXIT_S, metavar="SECONDS",
                       help="stop once the feed has been quiet this long, counted from joining the partner's group, "
                            "and every committed record Kafka holds for the partitions read has been applied and "
                            "receipted; while any is left it reads on, and once quiet spells have not caught it up "
                            f"for {BEHIND_STOP_S:g} s (a partition behind with no record coming, Kafka not saying "
                            f"where the feed ends) it stops with exit 4, naming why (default {IDLE_EXIT_S:g})")
    subs.add_argument("--accept-gap", action="store_true",
                      help="when the feed no longer holds records this partner had not read (deleted by retention), "
                           "read on from its first record, naming what was skipped; default: stop (exit 1)")
    subs.add_argument("--skip", action="append", default=[], metavar="TOPIC:PARTITION:OFFSET", type=_place,
                      help="give up this one feed record if it does not open, as a stop named it: it keeps its "
                           "REJECTED receipt and is committed past (repeatable); a batch the client cannot read is "
                           "named whole, TOPIC:PARTITION:FIRST-LAST; default: stop at it (exit 1)")
    subs.add_argument("--instance", default=DEFAULT_INSTANCE,
                      help="this subscriber's name (default main), one of the partner's `instances` in "
                           "partners.yaml: subscribers of one partner that run at once need different names; "
                           "starting one with a name in use stops the other")
    subs.set_defaults(func=_subscribe)
    store_commands.register(sub)


# The --out copy holds every decrypted view, like the store: kept as privately as the store is.
_OUT = PrivateFile("the --out file", "the --out file's folder", "holds decrypted alerts but others may read it",
                   "write it in a folder only you can write (or pass --out -)")


_OFFSET = r"(0|[1-9][0-9]{0,18})"
_PLACE = re.compile(rf"[A-Za-z0-9._-]{{1,249}}:(0|[1-9][0-9]{{0,9}}):{_OFFSET}(-{_OFFSET})?", re.ASCII)


def _place(text: str) -> str:
    """A feed record's place as a subscriber's stop names it: a Kafka topic name, a partition and an offset, or, for
    a batch the client cannot read, its first and last offsets."""
    found = _PLACE.fullmatch(text)
    if not found or (found.group(4) is not None and int(found.group(4)) <= int(found.group(2))):
        raise argparse.ArgumentTypeError("expected TOPIC:PARTITION:OFFSET (or TOPIC:PARTITION:FIRST-LAST for a batch) "
                                         "as the subscriber's stop named it, e.g. puente.feed.COL:0:1234")
    return text


def _own_folder(keys: Path, partner: str, store: Path) -> None:
    """Refuse a ``--store`` inside the keys folder anywhere but the partner's own folder (``holder_path``): another
    partner's folder (0700) is that partner's, and a store of decrypted alerts made there would be readable by
    whoever holds it, and mistaken for its own; an agency's, the broker's or the auditors' no more. An allow-list:
    the partner's own folder, or outside the keys folder. Judged both as written (``..`` normalised) and with
    links resolved, and against every folder of the keys folder that is a link, so a link neither hides the store's
    place nor moves the partner's own folder elsewhere."""
    own = holder_path(keys, Holder.PARTNER, partner)
    written, resolved = Path(os.path.abspath(store)), store.resolve()
    checks = [(written, Path(os.path.abspath(keys)), Path(os.path.abspath(own))),
              (resolved, keys.resolve(), own.resolve())]
    checks += [(resolved, link.resolve(), own.resolve()) for link in _links_within(keys)]
    for path, root, mine in checks:
        if path.is_relative_to(root) and not path.is_relative_to(mine):
            raise ConfigError(f"--store {store} lies in the keys folder {keys} outside {partner}'s own folder "
                              f"({own}): name a file in {partner}'s folder or outside the keys folder")


def _links_within(keys: Path) -> list[Path]:
    """The folders under ``keys``, two levels down (``partners/<P>``, ``agencies/<A>``, ``broker``), that are links:
    a store under where they lead lies in the keys folder all the same."""
    found: list[Path] = []
    for top in (keys, *(keys / name for name in ("partners", "agencies"))):
        try:
            entries = list(top.iterdir())
        except OSError:
            continue
        found += [entry for entry in entries if entry.is_symlink() and entry.is_dir()]
    return found


async def _follow(sub: Subscriber, out: TextIO | None, idle_exit_s: float | None) -> None:
    """Run the subscriber until caught up and idle for ``idle_exit_s`` (None: until stopped); SIGTERM and Ctrl-C
    finish its batch in flight, hand its partitions over, and stop (a second one stops it at once:
    ``puente.signals``)."""
    on_stop_signals(sub.stop, f"{sub.partner}'s subscriber")
    await sub.run(out, idle_exit_s=idle_exit_s)


def _subscribe(args: argparse.Namespace) -> int:
    cfg = settings(args)
    conn = kafka(cfg, f"puente-subscriber-{args.partner}")
    require_party(conn, f"puente subscribe --partner {args.partner}", partner_principal(args.partner))
    if args.follow:
        logs.configure(cfg.log_level, cfg.log_format)
    # A store or --out file named is checked here, before Kafka: the store would be made, folders and all.
    if args.store is not None:
        given_folder("--store", args.store)
        _own_folder(cfg.keys, args.partner, args.store)
    store = args.store or default_store_path(cfg.keys, args.partner)
    if args.out is not None and str(args.out) != "-":
        given_folder("--out", args.out)
        _OUT.prepare(args.out, create=True, missing="")  # checked before anything is read or connected
    sub = subscriber_for(cfg, conn, args.partner, args.key,
                         args.verify_key, args.sign_key, args.instance, store_path=store,
                         accept_gaps=args.accept_gap, skip=args.skip)
    out: TextIO | None = None
    try:
        if args.out is not None:
            out = sys.stdout if str(args.out) == "-" else open_copy(args.out, sub.on_note)
    except BaseException:
        sub.close()  # nothing was read: no summary, only the reason
        raise
    failed = False
    try:
        run(_follow(sub, out, None if args.follow else args.exit_when_idle))
    except PuenteError:
        failed = True
        raise
    finally:
        if out is not None and out is not sys.stdout:
            out.close()
        sub.close()
        _summary(sub, store, failed)
    return 0


def _summary(sub: Subscriber, store: Path, failed: bool) -> None:
    """What the run did, on standard error; nothing when it ``failed`` (an error of Puente's) before any record was
    read or given up (Kafka refused the login or its rights): "0 feed record(s) opened" above the error would read
    as an empty feed."""
    stats = sub.stats
    if failed and not (stats.received or stats.rejected or stats.skipped or stats.given_up):
        return
    outcomes = ", ".join(f"{n} {status.lower()}" for status, n in sorted(stats.outcomes.items()))
    stopped = ", stopped at a record it could not open" if stats.rejected > stats.given_up else ""
    if stats.given_up:
        stopped += f", {stats.given_up} record(s) that did not open given up as --skip named"
    if stats.skipped:
        stopped += f", {stats.skipped} record(s) the feed no longer held skipped"
    say(f"{sub.partner}: {stats.received} feed record(s) opened{f' ({outcomes})' if outcomes else ''}"
        f"{stopped}; store {store}", file=sys.stderr)
