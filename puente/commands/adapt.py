"""``puente adapt {senafront,senan,pn,snm,combifron} [FILE ...|-] [--watch DIR]``: agency exports -> alerts.

Exit status: 0 when every record was published or had been already; 1 when some were
rejected (each is in the dead-letter topic with its reason, written by this run or, counted
"already rejected", by an earlier one, and listed on stderr); 3 on bad
configuration or input that stopped the run (keys or topics missing, a file that cannot be
read), and for ``--watch`` when a file was left unfinished: reading it failed partway, or could
not start, and still failed when the watcher stopped (what was read of it is published; with
``--exit-when-idle`` each such file was tried again 3 times first, unless its folder could not
be listed meanwhile), or it still ended within a record, or held none, when the watcher stopped
(what it holds past its last whole record is held, neither published nor dead-lettered); 4 when
Kafka is unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from adapters.config import Context, Vocabulary, load_config, make_context
from adapters.core import Adapter
from adapters.registry import ADAPTERS, get
from adapters.run import AdapterRun, Tally, adapt_paths, check, check_sources, check_units, open_source
from adapters.watch import folder_lock, watcher, watching
from broker.kafka import KafkaConnection
from puente import logs
from puente.commands._common import Subparsers, kafka, kafka_options, run, seconds, settings
from puente.errors import EXIT_CONFIG, ConfigError
from puente.settings import PuenteSettings
from puente.signals import on_stop_signals
from puente.strict import one_line

_EPILOG = ("Summary on stdout; rejected records, with file, line and reason, and progress on large files on "
           "stderr. Running the same file again publishes nothing new. Exit 0: all published or already "
           "published; 1: some records rejected (see the dead-letter topic); 3: bad configuration or input, or "
           "with --watch a file left unfinished (its read failed, or it ends within a record; see its line, then "
           "run again); 4: Kafka unavailable.")


_INTERVAL_S = 2.0  # how often --watch polls its folder by default


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    text = "turn an agency's export into signed alerts on its ingress topic"
    parser = sub.add_parser("adapt", help=text, description=text, epilog=_EPILOG)
    names = parser.add_subparsers(dest="adapter", metavar="ADAPTER", required=True)
    for name, (_, agency, title) in ADAPTERS.items():
        p = names.add_parser(name, help=title, description=f"{title}; publishes as {agency}.", epilog=_EPILOG,
                             parents=[kafka_options()])
        p.add_argument("files", nargs="*", metavar="FILE", help="export files to read; '-' reads standard input")
        p.add_argument("--watch", type=Path, metavar="DIR",
                       help="adapt each new file in DIR once it stops growing, then move it to DIR/done/")
        p.add_argument("--interval", type=seconds(0.1, 3600), metavar="SECONDS",
                       help=f"with --watch: poll DIR this often (default {_INTERVAL_S:g})")
        p.add_argument("--exit-when-idle", type=seconds(0, 7 * 86400), metavar="SECONDS",
                       help="with --watch: stop when no file arrived, was read or failed for this long, and each "
                            "file whose read failed was tried again 3 times, or could not be (its folder not "
                            "listed): one still failing then, or still ending within a record, is left unfinished, "
                            "exit 3; default: run until SIGTERM")
        p.add_argument("--check", action="store_true",
                       help="map and validate only, without Kafka: print every rejected record and a summary")
        p.add_argument("--config", type=Path, metavar="YAML", help="adapter configuration (default: the shipped "
                                                                   "adapters/agencies.yaml)")
        p.set_defaults(func=_adapt, parser=p)


def _context(args: argparse.Namespace, cfg: PuenteSettings) -> tuple[Adapter, Context]:
    adapter = get(args.adapter)
    ctx = make_context(adapter.agency, datetime.now(UTC), load_config(args.config), Vocabulary.load(cfg.policy_dir))
    check_units(cfg, ctx)  # --check too: it says what a run would publish, and the broker would refuse these
    return adapter, ctx


def _adapt(args: argparse.Namespace) -> int:
    if args.files and args.watch:
        args.parser.error("give export files (or '-' for standard input) or --watch DIR, not both")
    if not args.files and not args.watch:
        args.parser.error("give export files to read ('-' for standard input), or --watch DIR")
    if args.check and args.watch:
        args.parser.error("--check reads files, not a watched folder")
    if not args.watch:
        given = [flag for flag, value in (("--interval", args.interval), ("--exit-when-idle", args.exit_when_idle))
                 if value is not None]
        if given:
            args.parser.error(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} only with --watch DIR")
    else:
        _check_watched(args.watch)
    cfg = settings(args)
    adapter, ctx = _context(args, cfg)
    if args.check:
        return _check(adapter, ctx, args.files)
    conn = kafka(cfg, f"puente-adapter-{adapter.name}")
    if args.watch:
        logs.configure(cfg.log_level, cfg.log_format)
        return run(_watch(cfg, conn, adapter, ctx, args))

    def show(source: str, tally: Tally) -> None:  # as each file ends: a later failure leaves these lines
        print(f"{adapter.name} {one_line(source)}: {tally.line()}", flush=True)

    results = run(adapt_paths(cfg, conn, adapter, ctx, args.files, done=show))
    total = Tally()
    for _, tally in results:
        total.add(tally)
    if len(results) > 1:
        print(f"{adapter.name} total: {total.line()}")
    return 1 if total.rejected or total.already_rejected else 0


def _check_watched(folder: Path) -> None:
    """Refuse, before Kafka is reached, a --watch that is no folder: the watch itself finds it only after the
    connection, so with Kafka down a mistyped folder was reported as Kafka unavailable."""
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ConfigError(f"--watch {one_line(str(folder))} {what}: name the folder the agency's exports arrive in")


def _check(adapter: Adapter, ctx: Context, files: list[str]) -> int:
    check_sources(files)
    rejected = 0
    for path in files:
        stream, source = open_source(path)
        try:  # a failed read is a ConfigError naming the file; a failed write of the report, the OSError it is
            tally = check(adapter, ctx, stream, source)
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
        rejected += tally.rejected
        print(f"{adapter.name} {one_line(source)} (check only, nothing sent): "
              f"{tally.line(valid='valid')}", flush=True)
    return 1 if rejected else 0


async def _watch(cfg: PuenteSettings, conn: KafkaConnection, adapter: Adapter, ctx: Context,
                 args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    on_stop_signals(stop.set, f"the {adapter.name} watcher")
    folder = one_line(str(args.watch))
    interval = _INTERVAL_S if args.interval is None else args.interval
    # The lock first: a second watcher of the folder stops in one line, having said it watches nothing and reached
    # no Kafka (its producers would start, and its ledger be read, for a watch that never runs).
    with folder_lock(args.watch, watcher(adapter.name)):
        print(f"{adapter.name}: watching {folder} every {interval:g}s (SIGTERM or Ctrl-C stops)", file=sys.stderr)
        async with AdapterRun(cfg, conn, adapter, ctx) as adapter_run:
            total = await watching(adapter_run, args.watch, interval=interval, idle_exit=args.exit_when_idle,
                                   stop=stop)
    print(f"{adapter.name} watched {folder}: {total.line()}")
    if total.unfinished:  # the input was not all read: as a file that cannot be read stops `puente adapt FILE`
        print(f"{adapter.name}: {total.unfinished} file(s) in {folder} left unfinished (named above): reading each "
              "failed partway, or could not start, and still failed when the watcher stopped; what was read is "
              "published. Do what each one's line above says (its disk or "
              "share, or its owner and mode), then run the watcher again: it reads them again, publishing only "
              "what is missing", file=sys.stderr)
    if total.held:  # records neither published nor dead-lettered: the input was not all read either
        print(f"{adapter.name}: {total.held} record(s) in {folder} held (their files named above end within a "
              "record, or hold none, and did not change before the watcher stopped): neither published nor "
              "dead-lettered. Do what each file's line above says, then run the watcher again: it reads them "
              "again, publishing only what is missing", file=sys.stderr)
    if total.unfinished or total.held:
        return EXIT_CONFIG
    return 1 if total.rejected or total.already_rejected else 0
