"""The auditors audited: every query an auditor makes in the console, written to Kafka before it is answered.

Records go to the queries topic (``TopicNames.queries``, one partition) as one hash chain, ``console``,
of QUERY records (``broker.audit.chain.ChainWriter``)::

    {"v": 1, "seq": n, "prev": ..., "kind": "QUERY", "chain": "console", "auditor": "ana",
     "scope": "national", "page": "search", "params": {...}, "results": 12, "at": "...Z", "hash": ...}

Unsigned: auditors hold no signing key. Kafka's ACLs keep everyone but the console's own login
(``broker.access.CONSOLE``; the auditor's login only reads) from writing the topic, and the chain shows an
edit or a gap. One console writes the chain: its transactional id (``broker.access.console_transaction``)
fences any earlier one, and it extends the chain only from a sound head (the last record a QUERY of the
``console`` chain, sealed as written, following the one before it; where the partition has lost no offset
and holds few records, every record read back from the genesis on: ``head_problem``). Each query is its own
transaction, committed before the page is answered; when that fails the caller answers no data (the console:
503).

Fenced (another console started under the same transactional id, or Kafka aborted a transaction of this one that
outlived its timeout, which fences it the same way), the log can never write again: the producer is dead for good,
and every query after would be answered 503 while the console looked alive. So the first commit refused as fenced
raises ``QueryLogFenced``, every later ``record`` raises it at once without Kafka, and ``taken_over`` wakes whoever
serves the log (``puente.console.server.serve``), which stops: one writer per deployment, and the one that lost the
role says so and exits, rather than a second console quietly breaking the first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from broker.access import console_transaction

# CUT and bounded, re-exported: they live beside ``shown``, as the audit index and recalls cut text with them too.
from broker.audit.chain import CUT as CUT
from broker.audit.chain import GENESIS, ChainHead, ChainWriter
from broker.audit.chain import bounded as bounded
from broker.audit.verify import chain_fields, form_problem, parse_record
from broker.kafka import (
    KafkaConnection,
    Producer,
    ProducerFenced,
    TopicPartition,
    broken_for_good,
    check_audit_retention,
    producer,
    read_range,
    reader,
    running,
    start,
    stop_client,
    translate,
    wait_settled,
)
from broker.topology import TopicNames
from puente.errors import EXIT_PROBLEMS, AuditChainError, KafkaError, PuenteError
from puente.wire import Record, iso_utc

CHAIN = "console"
KIND = "QUERY"
_BACK = 64  # offsets first read back from the end for the head (transaction markers take offsets too)


class QueryLogError(PuenteError):
    """The query could not be written to the audit: the console must not answer it."""

    retriable = True


class QueryLogUncertain(QueryLogError):
    """The query's commit was sent and its outcome is unknown: it may be in the audit. What the console does on a
    refusal it may take back (a wrong password's count) stays done: the audit may show it."""


class QueryLogFenced(QueryLogError):
    """This console can never write the query log again, and stops: another console took it over (module docstring),
    or its producer stopped for good for another reason (``QueryLog._given_up``)."""

    retriable = False
    exit_code = EXIT_PROBLEMS


class Tail(NamedTuple):
    """The last committed records of a partition (oldest first), and whether they are all of them: the read
    reached offset 0 of a partition that has lost none, so the first is where the chain must start."""

    records: list[Record]
    whole: bool


def head_problem(records: list[Record], *, whole: bool) -> str | None:
    """Why the queries chain, whose last records are ``records`` (oldest first), may not be extended,
    or None. Pure.

    Each record read must be a QUERY of the ``console`` chain, sealed as written, with a plain integer
    ``seq`` (0 or more) and ``since_checkpoint``, and follow the one before it. The last two are checked
    when ``whole`` is False (what came before is gone or not read: ``puente audit verify`` walks it);
    every record when it is True, the first starting the chain (seq 0, the genesis prev), so a head that
    follows nothing at the start of the partition is refused rather than extended."""
    checked = records if whole else records[-2:]
    before: tuple[int, str] | None = None  # (seq, hash) of the record checked before
    for rec in checked:
        doc = parse_record(rec.value)
        if doc is None or doc.get("chain") != CHAIN or doc.get("kind") != KIND:
            return f"its record at offset {rec.offset} is not a QUERY record of the {CHAIN} chain"
        fields = chain_fields(doc)
        since = doc.get("since_checkpoint")
        if fields is None or fields[0] < 0 or type(since) is not int or since < 0:
            return (f"its record at offset {rec.offset} is malformed: seq and since_checkpoint must be plain "
                    "integers (0 or more), prev and hash strings")
        seq, prev, claimed = fields
        if (why := form_problem(rec.value, doc, claimed)) is not None:
            return f"its record at offset {rec.offset} (seq {seq}) {why}"
        if before is None:
            if (whole or seq == 0) and (seq != 0 or prev != GENESIS):
                return (f"its first record (offset {rec.offset}, seq {seq}) does not start the chain"
                        + (" though the partition has lost no offset" if whole else ""))
        elif seq != before[0] + 1 or prev != before[1]:
            return f"its record at offset {rec.offset} (seq {seq}) does not follow the one before it (seq {before[0]})"
        before = (seq, claimed)
    return None


async def last_records(topic: str, begin: int, end: int,
                       read_from: Callable[[int], Awaitable[list[Record]]]) -> Tail:
    """The last committed records of a partition holding offsets ``begin`` to ``end`` (at least two where
    it holds two; none only when it holds none), read with ``read_from(offset)`` (every committed record
    from ``offset`` to the end), and whether they are all the partition ever held (``Tail.whole``: the
    read reached offset 0, so ``head_problem`` checks the chain from its start). Aborted transactions and
    their markers take offsets but hold no record: the window read back widens until it holds two records
    or reaches ``begin``. AuditChainError when the partition has lost its earliest offsets (``begin`` > 0)
    and what is left holds no committed record: the chain's head is gone, and starting it again would
    fork it."""
    if begin >= end:
        return Tail([], begin == 0)  # no record at all: a new chain (begin > 0: the caller's to allow, ``_head``)
    back = _BACK
    while True:
        first = max(begin, end - back)
        records = await read_from(first)
        if len(records) >= 2 or first == begin:
            break
        back *= 4
    if not records and begin > 0:
        raise AuditChainError(f"{topic} cannot be continued: it holds no committed record from offset {begin} "
                              f"to {end} but has lost offsets before {begin}; run `puente audit verify`")
    return Tail(records, first == 0)


MAX_PARAMS = 20
"""The most parameters a QUERY record keeps (the console's pages take ten at most: ``console.pages.ACCEPTS``)."""
MAX_NAME_BYTES, MAX_VALUE_BYTES = 40, 200
"""The most bytes a parameter's name, and its value, take in a QUERY record as written (``bounded``)."""
MAX_QUERY_BODY_BYTES = 5_400
"""The most bytes a QUERY record's body (``query_body``) takes as written, whatever it was given (the chain's own
fields add under 300): ``MAX_PARAMS`` parameters at their bounds, with the auditor, scope and page at theirs."""


def query_body(auditor: str, scope: str, page: str, params: Mapping[str, Any], results: int,
               at: datetime) -> dict[str, Any]:
    """The body of one QUERY record: who, with what scope, which page with which parameters, how many
    results, when. What was given is cut short (``bounded``, marked ``CUT``): the auditor and scope at 64 bytes
    as written, the page at 60, the first ``MAX_PARAMS`` parameters, each name at ``MAX_NAME_BYTES`` and each
    value at ``MAX_VALUE_BYTES`` (a value other than text as its text; None kept): they are what an auditor typed,
    not data. So a body takes at most ``MAX_QUERY_BODY_BYTES`` as written, whatever the characters; a page's
    record at most about 250 bytes for each parameter it takes (search's ten: under 2.6 KB with its chain fields)."""
    kept = {bounded(str(k), MAX_NAME_BYTES): (bounded(str(v), MAX_VALUE_BYTES) if v is not None else None)
            for k, v in list(params.items())[:MAX_PARAMS]}
    return {"auditor": bounded(auditor, 64), "scope": bounded(scope, 64), "page": bounded(page, 60),
            "params": kept, "results": int(results), "at": iso_utc(at)}


class QueryLog:
    """The console's writer of auditors' queries (module docstring). ``start`` before use, ``stop`` after."""

    def __init__(self, conn: KafkaConnection, names: TopicNames, keep_days: int | None = None, *,
                 new_chain: bool = False) -> None:
        self.conn, self.names = conn, names
        self.keep_days = keep_days  # the audit's retention, which each record states (``ChainWriter.keep_days``)
        self.new_chain = new_chain
        """Begin a new chain, once, at ``start``, when every record of the old one is gone (``_head``)."""
        self.tp = TopicPartition(names.queries, 0)
        self._producer: Producer | None = None
        self._chain: ChainWriter | None = None
        self._lock = asyncio.Lock()
        self._broken: str | None = None  # why the chain's head is no longer known; re-read before writing
        self.fenced: QueryLogFenced | None = None  # set once another console took the log over: final
        self._taken = asyncio.Event()

    async def start(self) -> None:
        """Take over the chain: fence any earlier console, then read and check the head. AuditChainError
        when the chain ends with what a console did not write; a Kafka error when it cannot be reached."""
        if self.keep_days is not None:  # each record states it: the topic must keep records so long. Checked
            # before the producer starts, which fences a console running (a refusal must not take it down).
            await check_audit_retention(self.conn, self.tp.topic, self.keep_days, "the console")
        made = producer(self.conn, "puente-console", transactional_id=console_transaction(self.names),
                        enable_idempotence=True, acks="all")
        await start(made, self.conn, f"writing {self.names.queries}")
        self._producer = made
        try:
            self._chain = ChainWriter(self.tp.topic, 0, await self._head(), chain=CHAIN, keep_days=self.keep_days)
        except BaseException:
            await self.stop()
            raise
        self.new_chain = False  # a head read again later (after a failed write) never begins one

    def _given_up(self, made: Producer) -> None:
        """After a failed write: when ``made`` can never write again (``broken_for_good``), the log ends as fenced
        (``serve`` stops, exit 1), naming why. Why: such a producer (its transactional id refused for a while, a
        sequence Kafka lost) failed every later query on an assertion, and the console answered 503 for good while
        it looked alive. It is not made anew here: a new InitProducerId would fence a newer console that took the
        log over meanwhile, unseen by a producer that writes nothing again; started again, this console is the
        newest, as the rule "the console started last writes" wants."""
        failure = broken_for_good(made)
        if failure is None:
            return
        if isinstance(failure, ProducerFenced):
            raise self._fence() from None
        raise self._fence(
            f"the auditors' query log can no longer be written by this console: its producer stopped for good "
            f"({type(failure).__name__}); check the console's login and ACLs (`puente acls plan`), then start "
            "`puente audit serve` again") from None

    async def taken_over(self) -> QueryLogFenced:
        """Wait until another console has taken the log over (found at the first commit refused as fenced: nothing
        tells a producer sooner), and give the error this console stops with."""
        await self._taken.wait()
        assert self.fenced is not None
        return self.fenced

    def _fence(self, why: str | None = None) -> QueryLogFenced:
        """This log fenced, for good: ``fenced`` set (``why``, else that another console took the log over), and
        ``taken_over`` woken."""
        if self.fenced is None:
            self.fenced = QueryLogFenced(why or (
                "another console took over the auditors' query log under the same transactional id "
                f"({console_transaction(self.names)}), so this one stops: run one `puente audit serve` per deployment"))
            self._taken.set()
        return self.fenced

    async def stop(self) -> None:
        made, self._producer = self._producer, None
        if made is not None:
            await stop_client(made)

    async def _head(self) -> ChainHead:
        # Fencing aborted any transaction the previous console left open; wait for its markers.
        await wait_settled(self.conn, self.tp, timeout_s=max(self.conn.timeout_s, 10.0))
        async with running(reader(self.conn, "puente-console"), self.conn, f"reading {self.tp.topic}") as consumer:
            consumer.assign([self.tp])
            end = (await consumer.end_offsets([self.tp]))[self.tp]
            begin = (await consumer.beginning_offsets([self.tp]))[self.tp]

            async def read_from(first: int) -> list[Record]:
                return [r async for r in read_range(consumer, self.tp, first)]

            if end <= begin > 0 and not self.new_chain:
                # Every record gone: retention's work (no query written for as long as it keeps them) or a
                # deletion by hand, which nothing tells apart; a chain begun anew at seq 0 would verify clean.
                raise AuditChainError(
                    f"{self.tp.topic} holds no record, but its log starts at offset {begin}: every record of the "
                    "auditors' query log was deleted, by retention (no query written for PUENTE_AUDIT_RETENTION_DAYS) "
                    "or by hand; if by retention, run `puente audit serve --new-chain` to begin a new chain, else "
                    "restore the topic and run `puente audit verify`")
            tail = await last_records(self.tp.topic, begin, end, read_from)
        problem = head_problem(tail.records, whole=tail.whole)
        if problem is not None:
            raise AuditChainError(f"{self.tp.topic} cannot be continued: {problem}; run `puente audit verify`")
        if not tail.records:
            return ChainHead()
        try:  # head_problem checked these fields' types; a failure here is a malformed head all the same
            return ChainHead.after(parse_record(tail.records[-1].value))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise AuditChainError(f"{self.tp.topic} cannot be continued: its chain head (offset "
                                  f"{tail.records[-1].offset}) is malformed ({type(exc).__name__}); "
                                  "run `puente audit verify`") from None

    async def record(self, auditor: str, scope: str, page: str, params: Mapping[str, Any], results: int,
                     now: datetime | None = None) -> None:
        """Write one query and commit it; QueryLogError when it is not certainly written: QueryLogUncertain when its
        commit was sent and failed, so that it may be written all the same."""
        body = query_body(auditor, scope, page, params, results, now or datetime.now(UTC))
        committing = False

        def failed(message: str) -> QueryLogError:
            return QueryLogUncertain(message) if committing else QueryLogError(message)

        async with self._lock:
            if self.fenced is not None:  # its producer can write nothing again: Kafka is not asked
                raise QueryLogFenced(str(self.fenced))
            made = self._producer
            if made is None or self._chain is None:
                raise QueryLogError("cannot record this query in the audit: the query log is not running")
            try:
                if self._broken is not None:
                    self._chain.head = await self._head()
                    self._broken = None
                head = self._chain.head
                value = self._chain.append(KIND, body)
                try:
                    async with made.transaction():
                        await made.send_and_wait(self.tp.topic, value, partition=0)
                        committing = True  # from here, a failure is the commit's: it may have landed
                except BaseException:
                    self._chain.head = head
                    # A commit whose outcome is unknown may or may not have landed: read the head again.
                    self._broken = "a write failed"
                    raise
            except AuditChainError as exc:
                raise QueryLogError(f"cannot record this query in the audit: {exc}") from exc
            except KafkaError as exc:
                self._given_up(made)
                raise failed(f"cannot record this query in the audit: check Kafka ({exc})") from exc
            except PuenteError:
                raise
            except ProducerFenced:  # aiokafka's name for a refused epoch too (INVALID_PRODUCER_EPOCH)
                raise self._fence() from None
            except Exception as exc:
                self._given_up(made)
                error = translate(exc, self.conn, f"writing {self.tp.topic}")
                raise failed(f"cannot record this query in the audit: check Kafka ({error})") from exc
