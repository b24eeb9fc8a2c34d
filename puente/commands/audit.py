"""``puente audit verify|log|index|...``: for auditors: check every chain, list what verifies, and
build or catch up the audit index the console reads."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import stat
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from broker.access import AUDITOR, BROKER, CONSOLE, parties, plan
from broker.audit import EndCheck, PartitionReport
from broker.audit.chain import changes_whole
from broker.audit.recalls import (
    ACKNOWLEDGED,
    FAILED,
    LATE,
    MAX_EARLY,
    NOT_JUDGED,
    OUTSTANDING,
    OVERDUE,
    SUPERSEDED,
    RecallBook,
)
from broker.audit.verify import Finding, GroupEnds, Holds, Retention, plain
from broker.audit_index import DEFAULT_INDEX, AuditIndex, rebuilding, writer_lock
from broker.auditor import (
    AuditTopics,
    IndexProgress,
    LogFilter,
    WalkProgress,
    ack_deadlines,
    audit_topics,
    collect_denials,
    denials_signer,
    group_ends,
    index_topics,
    read_log,
    signature_checks,
    verify_topics,
)
from broker.credentials import require_party
from broker.kafka import KafkaConnection
from broker.keystore import Keystore, auditor_path
from broker.pipeline import dead_letter_source
from broker.spill import TimeSorted, row_time
from broker.topology import TopicNames
from policies import PolicySet, load_policy_set
from puente.commands._common import Subparsers, kafka, kafka_options, run, say, settings, when
from puente.commands._index import check_index, index_path
from puente.commands.console_verbs import register_audit_verbs
from puente.errors import (
    EXIT_PROBLEMS,
    EXIT_UNCHECKED,
    ConfigError,
)
from puente.settings import PuenteSettings
from puente.strict import as_written, case_slip, json_text
from puente.wire import iso_utc, parse_until

_KINDS = {"decision": "DECISION", "dead-letter": "DEAD_LETTER", "gap": "GAP", "receipt": "RECEIPT",
          "denial": "DENIAL", "query": "QUERY"}
P = TypeVar("P")
PARTNER_HELP = ("a partner by its exact id: the policy's, or one the audit names (a partner that left); another is "
                "refused, exit 3")
CHANGES_CUT = "changes not all recorded (the audit cut the list)"  # a decision's `why` when its change list was cut
PROGRESS_S = 5.0  # seconds between two progress lines of a long walk (`audit verify|log|index|recalls`)
EXPIRED_NOTE = ("receipt(s) whose delivery expired with its decision (retention deleted the decision's block, not yet "
                "the receipt): sound, acknowledging no delivery")


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="for auditors").add_subparsers(dest="verb", required=True)
    register_audit_verbs(audit)  # serve (the web console) and users (its accounts)
    keys_help = ("a public signing key file: the broker's, or a partner's receipt key; repeat for several "
                 "(default: every signing key in the broker's keystore)")
    text = ("check every audit chain for gaps, edits, reordering, bad or misplaced signatures and receipts no "
            "delivery matches, and each decision chain's end against the broker group's committed ingress offsets; "
            "exit 1 with problems, 3 when there are no audit topics to check, 5 when every chain verifies but some "
            "chain's end could not be checked, a partition holds no record while its log starts past offset 0 (every "
            "record deleted, by retention or by hand), or the groups' offsets or the policy the ends are checked "
            "against could not be read")
    verify = audit.add_parser("verify", help="check every audit chain", description=text, parents=[kafka_options()])
    verify.add_argument("--verify-key", type=Path, action="append", help=keys_help)
    verify.add_argument("--json", action="store_true", help="one JSON document: chains and problems")
    verify.set_defaults(func=_verify)
    text = ("list decisions, dead letters, receipts and Kafka-layer denials, only what verifies; exit 3 for a "
            "--partner neither the policy nor any record the filters took names, 1 when a chain the filters could "
            "list ends short of its group's committed offsets (records dropped from its end), 5 when audit records "
            "the filters could have listed were left out as unsound or lost to a deletion before their retention, "
            "every record of a partition they could list was deleted (its log starting past offset 0, none held), or "
            "such a chain's end could not be checked (what they held is not listed: run `puente audit verify`); the "
            "ends are checked against the broker group's offsets only where the filters could list decisions, and "
            "against the subscriber groups', with each feed's reader from the policy (PUENTE_POLICY_DIR), only where "
            "they could list receipts")
    log = audit.add_parser("log", help="list decisions, dead letters and receipts (only what verifies)",
                           description=text, parents=[kafka_options()])
    log.add_argument("--partner", help=PARTNER_HELP)
    log.add_argument("--alert")
    log.add_argument("--agreement")
    log.add_argument("--since", type=when, help="ISO 8601; without an offset, UTC")
    log.add_argument("--until", type=_until,
                     help="ISO 8601; without an offset, UTC; a date alone is through the end of that day")
    log.add_argument("--kind", choices=sorted(_KINDS), action="append",
                     help="repeat for several; default: all but the auditors' own queries")
    log.add_argument("--json", action="store_true",
                     help="JSON lines instead of a table: each record's fields as written; a receipt's also has "
                          "appended_at, when Kafka appended it and the checkpoint signing it (its at is the "
                          "partner's clock; in either form a receipt is placed at the later of the two)")
    log.add_argument("--verify-key", type=Path, action="append",
                     help="as for `audit verify`: what is not soundly signed is left out of the log")
    log.set_defaults(func=_log, parser=log)
    text = ("build the audit index the console reads, or catch it up: read every audit partition from where the index "
            "stopped, verify each record as `audit verify` does, and index what verifies; exit 1 when the index "
            "holds problems, 3 when there are no audit topics")
    index = audit.add_parser("index", help="build or catch up the audit index", description=text,
                             parents=[kafka_options()])
    index.add_argument("--index", type=Path, metavar="PATH", help=f"the index file (default: PUENTE_AUDIT_INDEX, "
                       f"else {DEFAULT_INDEX})")
    index.add_argument("--rebuild", action="store_true",
                       help="build the index again from offset 0, beside it, and replace it once whole")
    index.add_argument("--verify-key", type=Path, action="append", help="as for `audit verify`")
    index.set_defaults(func=_index)
    text = ("add the access denials in Kafka's authorizer logs that concern this deployment to its denials topic, "
            "signed by the broker's key, for auditors (`audit log --kind denial`); run with the broker's login "
            "(PUENTE_CLIENT_CONFIG), where the broker's keystore is, with every node's log and its rolled-over ones")
    collect = audit.add_parser("collect-denials", help="collect access denials from Kafka's authorizer logs",
                               description=text, parents=[kafka_options()])
    collect.add_argument("--log", type=Path, action="append", required=True, metavar="FILE",
                         help="a node's authorizer log (the local Kafka's: .puente/kafka/<shape>/node<N>/logs/"
                              "authorizer.log); repeat for every node")
    collect.add_argument("--since", type=when, help="only denials from this time on (ISO 8601; UTC without offset)")
    collect.add_argument("--new-chain", action="store_true",
                         help="begin a new denials chain when every record of the old one is gone (retention "
                              "deleted them all); refused otherwise, since a deletion by hand looks the same")
    collect.set_defaults(func=_collect)
    text = ("every recall notice for a partner and whether its subscriber acknowledged it (a signed RECALLED receipt) "
            "within the deadline its agreements set (recall_ack_hours) when the notice was sent: failed (never "
            "sent; failed/superseded once a later delivery to the partner replaced the version it recalled), overdue "
            "and acknowledged late ones first; v (version) is the version the notice carried, which "
            "the receipt must name: for an officer's recall it may be above the recall's own version; exit 1 when "
            "any is failed, overdue or acknowledged late, or a chain ends short of its group's committed offsets (a "
            "recall notice dropped from its end is judged by no row), else 5 when audit records were left out as "
            "unsound or a chain's end could not be checked (a recall among them is not judged: run `puente audit "
            "verify`)")
    recalls = audit.add_parser("recalls", help="recalls acknowledged and outstanding", description=text,
                               parents=[kafka_options()])
    recalls.add_argument("--partner", help=PARTNER_HELP)
    recalls.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    recalls.add_argument("--verify-key", type=Path, action="append", help="as for `audit verify`")
    recalls.set_defaults(func=_recalls)


def _until(text: str) -> datetime:
    """``--until``: a time as ``when`` reads it, but a date alone is through the end of that day (``parse_until``),
    as the console reads ``until``: ``--until 2026-12-31`` lists the 31st."""
    when(text)  # a time, and one every offset can still express
    return parse_until(text)


def _reader(cfg: PuenteSettings, command: str) -> KafkaConnection:
    """The connection of a command that reads the audit: the auditor's login, or the console's, which reads what
    the auditor reads (``broker.access``); another party's is refused by name (``require_party``)."""
    conn = kafka(cfg, "puente-auditor")
    require_party(conn, command, AUDITOR, CONSOLE)
    return conn


def _verify(args: argparse.Namespace) -> int:
    cfg = settings(args)
    conn = _reader(cfg, "puente audit verify")
    check = signature_checks(auditor_path(cfg.keys), args.verify_key)

    refused: list[str] = []

    async def walk() -> list[PartitionReport]:
        found = await audit_topics(conn, cfg.topic_prefix)
        # The offsets first: what the broker commits during the walk only lengthens its chains.
        ends = await group_ends(conn, cfg.topic_prefix, cfg.broker_group, found.feeds, cfg.policy_dir)
        refused.extend(ends.refused)
        return await verify_topics(conn, found.roles, check, found.owners, ends.ingress, ends.feeds,
                                   _walk_progress("audit verify"), _horizon(cfg))

    reports = run(walk())
    problems = [f for r in reports for f in r.findings]  # listed: the first MAX_LISTED of each partition
    counted = sum(r.problems for r in reports)
    expired = sum(r.expired for r in reports)  # receipts whose delivery expired with its decision: no problem
    unchecked = sum(1 for r in reports if r.end is not None and not r.end.checked)
    # Partitions emptied past offset 0 (``PartitionReport.unchecked``): their records are not checked, not sound.
    emptied = [r.unchecked for r in reports if r.unchecked is not None]
    # Offsets refused, or a policy unread, may leave no end to call unchecked (no block names an ingress
    # partition, say): what was not read is still not checked, and is said, never passed as sound.
    not_checked = bool(unchecked or refused or emptied)
    why = "; ".join(refused) if refused else (
        f"no settled committed offset of the broker group {cfg.broker_group} or of the partner's subscriber group "
        "there, a transaction that did not end, or a feed whose partner is unknown (see each END line; run it again; "
        "check PUENTE_GROUP_ID, the auditor's ACLs, `puente acls plan`, and PUENTE_POLICY_DIR: the feeds' partners "
        f"were read from {cfg.policy_dir or 'the shipped sample policy'})")
    if args.json:
        print(json_text({
            "records": sum(r.records for r in reports), "problems": counted, "receipts_delivery_expired": expired,
            "chains": [{"topic": r.topic, "partition": r.partition, "records": r.records, "signed": r.checkpoints,
                        "unsigned_tail": r.unsigned_tail, "ok": r.ok, "problems": r.problems,
                        "problems_not_listed": r.unlisted,
                        # from_seq: above 0 where the log starts after the chain's first records (retention)
                        "signed_up_to": [{"chain": v.chain, "seq": v.seq, "at": v.at, "offset": v.offset,
                                          "from_seq": v.since} for v in r.vouched],
                        "end": None if r.end is None else _end_json(r.end),
                        # why none of its records could be checked (emptied past offset 0), else null
                        "not_checked": r.unchecked} for r in reports],
            "findings": [{"topic": f.topic, "partition": f.partition, "offset": f.offset, "problem": f.problem}
                         for f in problems],
            "ends_not_checked": {"chains": unchecked, "why": why} if unchecked or refused else None},
            indent=2))
        return _verify_status(counted, not_checked)
    _table(reports)
    for r in reports:
        if r.records:
            say(f"VOUCHED {r.topic}[{r.partition}]: {r.vouched_text()}")
        if r.end is not None:
            say(f"END     {r.topic}[{r.partition}]: {r.end.describe()}")
    for text in emptied:
        say(f"UNCHECKED {text}")
    for f in problems:
        say(f"PROBLEM {f.topic}[{f.partition}] offset {f.offset}: {f.problem}")
    for r in reports:
        if r.unlisted:
            say(f"PROBLEM {r.topic}[{r.partition}]: {r.unlisted} more problem(s), up to offset {r.newest}, not "
                f"listed (the first {len(r.findings):,} of a partition are)")
    chains = sum(r.chains for r in reports)  # a receipts partition holds a chain per subscriber instance
    total = sum(r.records for r in reports)
    # ``why`` names PUENTE_POLICY_DIR's folder, or what refused the offsets: a value from a variable or Kafka.
    say(f"audit verify: {total} records in {chains} chains, "
        + ("no problems" if not counted else f"{counted} problem(s)")
        + ("" if total else " (the audit topics exist but hold no records yet)")
        + (f"; {expired} {EXPIRED_NOTE}" if expired else "")
        # Worded as `audit log` and `audit recalls` word it: one count of what is not checked, then why.
        + (f"; {unchecked + len(emptied) or 'some'} chain end(s) or partition(s) not checked: "
           + "; ".join(([why] if unchecked or refused else [])
                       + ([f"{len(emptied)} partition(s) emptied past offset 0 (see each UNCHECKED line)"]
                          if emptied else []))
           if not_checked else ""))
    return _verify_status(counted, not_checked)


def _every(say: Callable[[P], str]) -> Callable[[P], None]:
    """A progress callback printing ``say(progress)`` on stderr at most every ``PROGRESS_S`` (nothing for a walk
    shorter than that); stdout keeps only the command's output."""
    last = [time.monotonic()]

    def report(p: P) -> None:
        if time.monotonic() - last[0] >= PROGRESS_S:
            last[0] = time.monotonic()
            print(say(p), file=sys.stderr, flush=True)

    return report


def _walk_progress(verb: str) -> Callable[[WalkProgress], None]:
    """How far a long walk of the audit is: records read, their rate, partitions done."""
    def line(p: WalkProgress) -> str:
        return (f"{verb}: {p.records:,} records read ({_rate(p.records, p.seconds)}/s), partitions "
                f"{p.partitions_done}/{p.partitions} done")

    return _every(line)


def _rate(records: int, seconds: float) -> str:
    return f"{records / seconds if seconds else 0.0:,.0f}"


def _end_json(end: EndCheck) -> dict[str, Any]:
    """A chain end as ``--json`` gives it: ``ingress`` for a decision chain, ``feed`` and ``group`` for receipts."""
    where = {"feed": end.source, "group": end.group} if end.of_receipts else {"ingress": end.source}
    return {**where, "last_offset": end.last if end.last >= 0 else None, "committed": end.committed,
            "checked": end.checked}


def _verify_status(problems: int, unchecked: bool) -> int:
    """1 with problems; else 5 (``EXIT_UNCHECKED``) when anything could not be checked (`audit verify`: a chain's
    end, the groups' offsets or the policy they are checked against; `audit log`: records left out as unsound or
    deleted; `audit recalls`: those, or a recall not judged: a view it recalls was delivered before its partner's
    receipts were cut, so who holds the alert is not known), so that a script
    or a schedule reading the status alone never takes what was not checked for sound."""
    if problems:
        return EXIT_PROBLEMS
    return EXIT_UNCHECKED if unchecked else 0


def _table(reports: Sequence[PartitionReport]) -> None:
    print(f"{'topic':<32} {'part':>4} {'records':>8} {'signed':>8} {'unsigned tail':>13}  state")
    for r in reports:
        if r.records:
            state = "ok" if r.ok else f"{r.problems} problem(s)"
            print(f"{r.topic:<32} {r.partition:>4} {r.records:>8} {r.checkpoints:>8} {r.unsigned_tail:>13}  {state}")


def _log(args: argparse.Namespace) -> int:
    if args.since is not None and args.until is not None and args.since > args.until:
        # A usage error, as an unreadable time is: nothing would match, and exit 0 would say "none happened".
        args.parser.error(f"--since {iso_utc(args.since)} is after --until {iso_utc(args.until)}: nothing can "
                          "match; swap them")
    cfg = settings(args)
    policy = load_policy_set(cfg.policy_dir) if args.partner is not None else None
    _mistyped_partner(args.partner, policy)
    conn = _reader(cfg, "puente audit log")
    flt = LogFilter(args.partner, args.alert, args.agreement, args.since, args.until,
                    frozenset(_KINDS[k] for k in args.kind) if args.kind else LogFilter.kinds)
    check = signature_checks(auditor_path(cfg.keys), args.verify_key)
    left_out: list[int] = []
    deleted: list[Finding] = []
    expired: list[int] = []
    ended = _Ends(flt)
    widest = [0]  # the widest alert id as standard output will write it: the table's column, known before a row
    # The rows go to a temporary file as they stream in and come back in time order: however big the
    # audit, what is in memory stays the same.
    with TimeSorted() as docs:

        async def measured(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
            async for row in rows:
                widest[0] = max(widest[0], _width(row.get("alert_id")))
                yield row

        async def collect() -> None:
            found = await audit_topics(conn, cfg.topic_prefix)
            ends = await ended.read(conn, cfg, found)  # before the walk, as `audit verify` reads them
            await docs.fill(measured(read_log(conn, found.roles, flt, check, left_out, found.owners,
                                              _walk_progress("audit log"), _horizon(cfg), deleted, expired=expired,
                                              ends=ends, end_reports=ended.reports)))

        run(collect())
        _known_partner(args.partner, policy, seen=len(docs) > 0)
        if args.json:
            for doc in docs:
                print(json_text(doc))
        else:
            _rows(docs, widest[0])
    unsound = sum(left_out)
    notes = [f"{unsound} audit record(s) left out as unsound: run `puente audit verify`"] if unsound else []
    notes += [_deleted_note(deleted)] if deleted else []
    notes += [f"{sum(expired)} {EXPIRED_NOTE}"] if sum(expired) else []
    notes += ended.notes("listed")
    print("; ".join([f"{len(docs)} record(s)", *notes]), file=sys.stderr)
    # Records left out or deleted may be the ones a schedule exports this log for: never 0, as for `audit recalls`.
    # A chain short of its group's offsets lost records from its end that no row shows: 1, as `audit verify`.
    return _verify_status(ended.short, unsound > 0 or bool(deleted) or ended.unchecked)


class _Ends:
    """The chains' ends, for `audit log` and `audit recalls`: the groups' offsets read before the walk
    (``group_ends``), checked by ``read_log`` as `audit verify` checks them (``end_reports``); only the ends of what
    the filter ``flt`` could list count (``LogFilter.lists_from``: a feed's receipts are its partner's). Records
    dropped from a chain's end leave no row and nothing unsound: a short end is a problem (exit 1), an end not
    checked (or offsets not read) is not checked (exit 5), each named in the summary line, never passed as none."""

    def __init__(self, flt: LogFilter) -> None:
        self.flt = flt
        self.reports: list[PartitionReport] = []
        self.refused: list[str] = []
        self.roles: dict[str, Holds] = {}
        self.owners: dict[str, str] = {}
        self.readers: dict[str, str] = {}

    async def read(self, conn: KafkaConnection, cfg: PuenteSettings, found: AuditTopics) -> GroupEnds | None:
        """The groups' offsets the ends of what the filter could list are checked against, only those: the broker
        group's where it could list decisions' rows, the policy (each feed's reader) and the subscriber groups'
        where it could list receipts; None where it could list neither (queries, denials: no end check concerns
        them). What it does not need, refused or unreadable, is then never read, so never "not checked"."""
        self.roles, self.owners = dict(found.roles), dict(found.owners)
        decisions, receipts = self.flt.lists_from("decisions"), self.flt.lists_from("receipts")
        if not (decisions or receipts):
            return None
        ends = await group_ends(conn, cfg.topic_prefix, cfg.broker_group, found.feeds, cfg.policy_dir,
                                ingress=decisions, receipts=receipts)
        self.refused += ends.refused
        self.readers = dict(ends.feeds.readers)
        return ends

    def _counts(self, r: PartitionReport) -> bool:
        if r.end is not None and r.end.of_receipts:
            return self.flt.lists_from("receipts", self.readers.get(r.topic))
        holds = self.roles.get(r.topic, "decisions")  # an ingress partition no chain names: the decisions'
        return self.flt.lists_from(holds, self.owners.get(r.topic))

    @property
    def short(self) -> int:
        """Problems at the chains' ends (records dropped from a chain's end, a receipt naming another's feed)."""
        return sum(len(r.findings) for r in self.reports if self._counts(r))

    @property
    def not_checked(self) -> int:
        """The chain ends not checked, and the partitions emptied past offset 0 (``PartitionReport.unchecked``:
        none of their records checked), of what the filter could list."""
        return sum(1 for r in self.reports if self._counts(r) and (
            (r.end is not None and not r.end.checked) or r.unchecked is not None))

    @property
    def unchecked(self) -> bool:
        # ``refused`` holds only what ``read`` read for the ends the filter could list: each concerns them.
        return bool(self.not_checked or self.refused)

    def notes(self, what: str) -> list[str]:
        """The summary line's words on the ends: what is short, what was not checked and why."""
        out = []
        if self.short:
            out.append(f"{self.short} problem(s) at the chains' ends (records dropped from a chain's end are not "
                       f"{what}): run `puente audit verify`")
        if self.unchecked:
            emptied = [r.unchecked for r in self.reports if r.unchecked is not None and self._counts(r)]
            why = "; ".join([*self.refused, *emptied]) or "see `puente audit verify`'s END lines"
            out.append(f"{self.not_checked or 'some'} chain end(s) or partition(s) not checked: {why}")
        return out


def _mistyped_partner(partner: str | None, policy: PolicySet | None) -> None:
    """Refuse at once, before Kafka, a ``--partner`` that is one of the policy's in another case (``usa``): ids are
    exact, and as a filter it would match nothing, so "0 overdue" or no row would pass for "none happened"."""
    if partner is None or policy is None or partner in policy.partners:
        return
    near = case_slip(partner, policy.partners)
    if near:
        raise ConfigError(f"--partner {partner[:40]!r} is no partner of the policy; did you mean {near}? (ids are "
                          "exact)")


def _known_partner(partner: str | None, policy: PolicySet | None, *, seen: bool) -> None:
    """After the read, refuse a ``--partner`` the policy does not name when no record the filters took names it
    either: a mistyped or unknown id, whose empty answer would pass for "none happened". One the policy no longer
    names that the audit does (a partner that left, whose history stays) is taken: an allow-list of the policy's
    partners and the audit's own."""
    if partner is None or policy is None or partner in policy.partners or seen:
        return
    raise ConfigError(f"--partner {partner[:40]!r} is no partner of the policy, and no audit record the filters took "
                      f"names it; the policy's: {', '.join(sorted(policy.partners)) or 'none'} (ids are exact; check "
                      "PUENTE_POLICY_DIR, or the filters for a partner that left)")


def _horizon(cfg: PuenteSettings) -> Retention:
    """What the start check judges every audit topic's chains by (``broker.audit.verify.Retention``): they all keep
    their records PUENTE_AUDIT_RETENTION_DAYS."""
    return Retention.now(cfg.audit_retention_days)


def _deleted_note(deleted: list[Finding]) -> str:
    return (f"{len(deleted)} audit chain(s) lost records to a deletion before their retention, and what those "
            "records held is not listed: run `puente audit verify`")


def _index(args: argparse.Namespace) -> int:
    cfg = settings(args)
    path, named = index_path(args.index)
    check_index(path, named)  # before Kafka: a mistyped path is named, never reported as Kafka down
    conn = _reader(cfg, "puente audit index")
    check = signature_checks(auditor_path(cfg.keys), args.verify_key)
    def line(p: IndexProgress) -> str:
        return (f"audit index: {p.records:,} records ({_rate(p.records, p.seconds)}/s), {p.rows:,} rows, partitions "
                f"{p.partitions_done}/{p.partitions} done")

    progress = _every(line)

    # --rebuild builds beside the index and moves the new one into place once whole: a console
    # serving the index reads the old one until then, never a half-built one.
    with writer_lock(path), (rebuilding(path) if args.rebuild else contextlib.nullcontext(path)) as target:

        async def catch_up() -> Any:
            found = await audit_topics(conn, cfg.topic_prefix)
            # The groups' offsets first, as for `audit verify`: the index checks the chains' ends against them.
            ends = await group_ends(conn, cfg.topic_prefix, cfg.broker_group, found.feeds, cfg.policy_dir)
            with AuditIndex(target) as index:
                return await index_topics(conn, found.roles, check, index, found.owners, progress, ends=ends,
                                          retention=_horizon(cfg))

        done = run(catch_up())
    rate = done.records / done.seconds if done.seconds else 0.0
    # The path comes from --index or PUENTE_AUDIT_INDEX, the reasons from the index and Kafka: one line, escaped.
    say(f"audit index {path}: {done.records:,} new record(s) read in {done.seconds:.1f}s ({rate:,.0f}/s), "
        f"{done.rows:,} row(s) indexed from {done.partitions} partition(s); "
        + (f"{done.problems} problem(s) in the audit (run `puente audit verify`)" if done.problems
           else "no problems")
        + (f"; {done.ends.unchecked or 'some'} chain end(s) or partition(s) not checked: {'; '.join(done.ends.why)}"
           if not done.ends.all_checked else ""))
    return _verify_status(done.problems, not done.ends.all_checked)


def _collect(args: argparse.Namespace) -> int:
    _check_logs(args.log)
    cfg = settings(args)
    signer_id, sign = denials_signer(Keystore(cfg.keys / "broker"))
    policy = load_policy_set(cfg.policy_dir)
    conn = kafka(cfg, "puente-denials")
    require_party(conn, "puente audit collect-denials", BROKER)  # it appends under the broker's transactional id
    names = TopicNames(cfg.topic_prefix)
    added = run(collect_denials(conn, names, args.log, frozenset(parties(policy, cfg.agencies)), signer_id, sign,
                                signature_checks(cfg.keys / "broker", None, signer=True), args.since,
                                keep_days=cfg.audit_retention_days, new_chain=args.new_chain,
                                planned=plan(policy, names, cfg.agencies, cfg.broker_group)))
    say(f"{added} new denial(s) collected into {TopicNames(cfg.topic_prefix).denials}")
    return 0


def _check_logs(paths: Sequence[Path]) -> None:
    """Refuse, before Kafka is reached, a --log that is missing, unreadable, or neither a file nor a pipe: a
    mistyped path would otherwise be reported after the connection, or as Kafka being down."""
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            raise ConfigError(f"--log {path}: {exc.strerror}") from None
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            raise ConfigError(f"--log {path}: not a regular file or a pipe (give a node's authorizer.log)")
        if not os.access(path, os.R_OK):
            raise ConfigError(f"--log {path}: cannot be read by this user")


def _recalls(args: argparse.Namespace) -> int:
    cfg = settings(args)
    policy = load_policy_set(cfg.policy_dir)
    _mistyped_partner(args.partner, policy)
    conn = _reader(cfg, "puente audit recalls")
    check = signature_checks(auditor_path(cfg.keys), args.verify_key)
    flt = LogFilter(partner=args.partner, kinds=frozenset({"DECISION", "RECEIPT"}))
    left_out: list[int] = []
    deleted: list[Finding] = []
    roles: dict[str, str] = {}  # what each audit topic holds
    ended = _Ends(flt)

    async def collect() -> RecallBook:
        found = await audit_topics(conn, cfg.topic_prefix)
        roles.update(found.roles)
        ends = await ended.read(conn, cfg, found)  # before the walk, as `audit verify` reads them
        book = RecallBook()  # streamed: it keeps what recalls need, never the whole audit
        # The receipts partitions cut at their start reach the book before any decision: it keeps the deliveries
        # decided before each cut, whose recalls are then not judged (``broker.audit.recalls``).
        async for doc in read_log(conn, found.roles, flt, check, left_out, found.owners,
                                  _walk_progress("audit recalls"), _horizon(cfg), deleted,
                                  receipts_cut=book.receipts_cut, ends=ends, end_reports=ended.reports):
            book.add(doc)
            taken[0] += 1
        return book

    now = datetime.now(UTC)
    taken = [0]  # records the filter took: with --partner, that partner's
    book = run(collect())
    _known_partner(args.partner, policy, seen=taken[0] > 0)
    # Only decisions and receipts hold recall notices and their acknowledgements: the queries or denials log cut
    # at its start keeps no recall from being judged.
    deleted = [f for f in deleted if roles.get(f.topic) in ("decisions", "receipts")]
    rows = book.status(ack_deadlines(policy), now)
    if args.json:
        for r in rows:
            print(json.dumps({"alert_id": r.alert_id, "partner": r.partner, "version": r.version, "state": r.state,
                              "reason": r.reason, "sent_at": iso_utc(r.sent_at), "deadline": iso_utc(r.deadline),
                              "acknowledged_at": iso_utc(r.acknowledged_at) if r.acknowledged_at else None,
                              "waiting_on": list(r.waiting_on), "receipts_not_kept": r.unlisted,
                              "receipts_not_held": r.receipts_cut.describe() if r.receipts_cut else None,
                              "answered_at": iso_utc(r.answered_at) if r.answered_at else None,
                              "superseded_at": iso_utc(r.superseded_at) if r.superseded_at else None,
                              "superseded_by": r.superseded_by}))
    else:
        width = max([_width(r.alert_id) for r in rows] + [5])
        print(f"{'state':<17} {'alert':<{width}} {'v':>3} {'partner':<7} {'reason':<17} {'sent (UTC)':<20} "
              f"{'deadline (UTC)':<20} acknowledged")
        for r in rows:
            ack = (iso_utc(r.acknowledged_at)[:19] + (f", {_hours(r.late_by())} h late" if r.state == LATE else "")
                   if r.acknowledged_at else
                   "no: the notice was never sent; recall again" if r.state == FAILED else
                   (f"no: the notice was never sent; version {r.superseded_by} replaced what it recalled at "
                    f"{iso_utc(r.superseded_at)[:19]}") if r.state == SUPERSEDED and r.superseded_at else
                   f"no: {_hours(r.overdue_by(now))} h overdue" if r.state == OVERDUE else
                   (f"not judged: answered {iso_utc(r.answered_at)[:19]}" if r.answered_at else
                    "not judged: no answer seen") if r.state == NOT_JUDGED else "not yet")
            if r.waiting_on:
                ack += f"; waiting on {_holders(r.waiting_on)}"
            if r.unlisted:  # holders or answers past what is kept: not judged acknowledged (``broker.audit.recalls``)
                ack += (f"; {r.unlisted} receipt(s) of {_text(r.partner)[:7]} naming more holders or answers than "
                        "are kept: not acknowledged")
            if r.receipts_cut is not None:  # receipts lost that may name a holder: not acknowledged (module docstring)
                ack += f"; {r.receipts_cut.describe()}"
            print(f"{r.state:<17} {_cell(r.alert_id, width)} {r.version:>3} {_cell(r.partner, 7)} "
                  f"{_cell(r.reason, 17)} "
                  f"{iso_utc(r.sent_at)[:19]:<20} {iso_utc(r.deadline)[:19]:<20} {ack}")
    overdue = sum(1 for r in rows if r.state == OVERDUE)
    late = sum(1 for r in rows if r.state == LATE)
    failed = sum(1 for r in rows if r.state == FAILED)
    superseded = sum(1 for r in rows if r.state == SUPERSEDED)
    not_judged = sum(1 for r in rows if r.state == NOT_JUDGED)
    unsound = sum(left_out)
    print(f"{len(rows)} recall(s): {sum(1 for r in rows if r.state == ACKNOWLEDGED)} acknowledged, "
          f"{late} acknowledged late, {sum(1 for r in rows if r.state == OUTSTANDING)} outstanding, "
          f"{overdue} overdue, {failed} never sent"
          + (f", {not_judged} not judged" if not_judged else "")
          + (f", {superseded} never sent but superseded by a later delivery" if superseded else ""), file=sys.stderr)
    if unsound:
        # A recall notice or its receipt among them would be judged by no row above: "none overdue" is not known.
        print(f"not every recall could be judged: {unsound} audit record(s) left out as unsound; run "
              "`puente audit verify`", file=sys.stderr)
    if deleted:  # a recall notice among the deleted blocks is in no row above
        print(f"not every recall could be judged: {_deleted_note(deleted)}", file=sys.stderr)
    for note in ended.notes("judged"):  # a recall notice in a block dropped from a chain's end is in no row above
        print(f"not every recall could be judged: {note}", file=sys.stderr)
    # Who held the alert is not all known: not judged (nor, while outstanding, known to be all it waits on).
    unknown = sum(1 for r in rows if r.receipts_cut is not None)
    if unknown:
        print(f"not every recall could be judged: {unknown} recall(s) of a view delivered before its partner's "
              "receipts were cut may have holders no receipt held names, and are not taken as acknowledged (see "
              "each row)", file=sys.stderr)
    for partner in sorted(book.blind, key=lambda p: (p is not None, p or "")):
        # Past ``MAX_EARLY`` deliveries kept, or a cut told late: none of the partner's recalls is judged.
        who = f"{_text(partner)}'s recalls is" if partner is not None else "any partner's recalls is"
        print(f"not every recall could be judged: none of {who}, more deliveries having been decided before the "
              f"receipts' cut than are kept ({MAX_EARLY:,}): the decisions topic keeps records far longer than the "
              "receipts topics (retention.ms=-1 set by hand, which topics apply keeps); keep the receipts topics "
              "as long (retention.ms=-1 on them too), or ask the partner which stores hold those alerts",
              file=sys.stderr)
    return _verify_status(overdue + late + failed + ended.short,
                          unsound > 0 or bool(deleted) or unknown > 0 or bool(book.blind) or ended.unchecked)


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:.1f}"


def _holders(holders: tuple[str, ...]) -> str:
    """The holders a recall waits on, as a person reads them: stores by id, subscribers without one by chain."""
    shown = [_text(h) if h.startswith("chain ") else f"store {_text(h)}" for h in holders[:3]]
    return ", ".join(shown) + (f" and {len(holders) - 3} more" if len(holders) > 3 else "")


def _rows(docs: Iterable[dict[str, Any]], longest_alert_id: int) -> None:
    """One line per row: the alert id whole (``longest_alert_id``: the widest among ``docs``, ``_width``), and the
    reason a person needs (why withheld, what was changed). A receipt is at the time it acknowledges
    (``row_time``: no earlier than Kafka appended it), the time its partner wrote, when earlier, in ``why``. Every
    cell is cut and padded as standard output will write it (``_cell``)."""
    width = max(longest_alert_id, 5)
    print(f"{'time (UTC)':<24} {'kind':<11} {'alert':<{width}} {'v':>3} {'partner':<7} {'outcome':<16} "
          f"{'agreement':<14} why")
    for d in docs:
        version = d.get("version", 1 if d.get("kind") in ("DECISION", "RECEIPT") else None)
        print(f"{_cell(row_time(d), 24, cut=23)} {_cell(d.get('kind'), 11)} {_cell(d.get('alert_id'), width)} "
              f"{_cell(version, 3, right=True)} {_cell(d.get('partner'), 7)} {_cell(_outcome(d), 16)} "
              f"{_cell(d.get('agreement'), 14)} {_text(_why(d))[:160]}")


def _text(value: Any) -> str:
    """A value from a record as one line of plain text: unprintable characters escaped (``\\x1b``), so no
    record can move the cursor, retitle the terminal or start a line of its own."""
    return "-" if value in (None, "") else plain(str(value), 10_000)


def _width(value: Any) -> int:
    """How many characters ``_text(value)`` takes as standard output writes it (``as_written``: ``\\u00ed`` for a
    letter an ASCII output cannot hold)."""
    return len(as_written(_text(value), sys.stdout))


def _cell(value: Any, width: int, *, cut: int | None = None, right: bool = False) -> str:
    """``value`` as a table cell ``width`` characters wide as standard output will write it (``_text``, then
    ``as_written``), cut to ``cut`` (default: ``width``) and padded: measured as printed, so every column after it
    stays in line whatever the output's encoding escapes."""
    text = as_written(_text(value), sys.stdout)[:width if cut is None else cut]
    return text.rjust(width) if right else text.ljust(width)


def _outcome(d: dict[str, Any]) -> Any:
    return d.get("decision") or d.get("status") or d.get("reason") or ("DENIED" if d.get("kind") == "DENIAL" else "")


def _why(d: dict[str, Any]) -> str:
    """The reason column, put together from a record's values as they are: ``_rows`` prints it through ``_text``,
    so a value that holds an escape sequence or a line break (a denial's principal, a query's parameters) is
    escaped there, whichever kind of record it comes from."""
    if d.get("kind") == "DECISION":
        action = d.get("action")
        life = (f"{action}{' (' + str(d['reason']) + ')' if d.get('reason') else ''}: "
                if isinstance(action, str) else "")
        if d.get("decision") in ("WITHHOLD", "RECALL"):
            reasons = d.get("reasons")
            return life + ("; ".join(str(r) for r in reasons) if isinstance(reasons, list) else "")
        redacted = d.get("redacted")
        changes = [f"{r['field']}:{r.get('action')}" for r in redacted
                   if isinstance(r, dict) and isinstance(r.get("field"), str) and r["field"]] \
            if isinstance(redacted, list) else []
        held = f"supersedes v{d['supersedes']}; " if isinstance(d.get("supersedes"), int) else ""
        # A list the block cut short, a change cut to its text, or a redacted view with none listed, is not every
        # change (``changes_whole``, as the console's "why" reads it): what it lists is not all, and an empty one is
        # not "the full alert".
        if not changes_whole(d):
            return life + held + "".join(f"{c}, " for c in changes) + CHANGES_CUT
        return life + held + (", ".join(changes) or "the full alert")
    if d.get("kind") == "QUERY":
        return f"{d.get('auditor')} ({d.get('scope')}) looked at {d.get('page')} {d.get('params')}: {d.get('results')}"
    if d.get("kind") == "DENIAL":
        return f"{d.get('principal')} refused {d.get('operation')} on {d.get('resource')} ({d.get('request')})"
    if d.get("kind") == "DEAD_LETTER":  # its alert id is only the record's key: where it came from comes first
        source = dead_letter_source(d)
        return f"{source}: {d.get('detail') or ''}" if source else str(d.get("detail") or "")
    what = str(d.get("detail") or d.get("feed") or "")
    if d.get("kind") == "RECEIPT" and row_time(d) != d.get("at"):  # shown at Kafka's time: the partner's beside it
        return f"dated {d.get('at')} by {d.get('partner')}; {what}"
    return what
