"""The adapters' Kafka edge: read an export, publish its alerts, dead-letter its bad records, summarise.

Idempotence
    Before publishing, a run reads the agency's ingress topic from the beginning into a ledger
    keyed by (alert id, version) (``adapters.ledger``): the topic itself is the record of what was
    published. The same (id, version) with the same content is a duplicate and is skipped; with
    other content it is a *conflict* and is dead-lettered, since the broker takes one content per
    version and a correction needs a higher revision (publishing it would only move the rejection
    downstream, where the agency would not see it). A version below one already published is
    dead-lettered too, and so is any version after a recall giving its reason (for good); a higher
    version of a known id is published. Only copies the broker would take count (they prove the
    agency's origin with its keys, sit in the partition their key belongs in, name an originator the broker may
    take, and have a version and lifecycle it may take). A copy under a MAC
    key of the agency's its keystore does not hold (a generation removed after a rotation, or one
    made up by someone who can write the topic) is of unknown provenance: it never holds a record
    back, except that a record it holds exactly (same id, version and content; never a recall) is
    skipped as a duplicate, so an old export run again after a rotation is not republished. The
    summary line counts such copies, names their keys, and counts the records published where one
    stands at their version or later (``Tally``). What the run publishes joins the ledger, which also
    catches a record repeated within a file. A crash mid-file needs no recovery step: running the
    same file again publishes exactly what is missing. Limits, stated: the ledger reaches back as
    far as the ingress topic's retention (7 days by default); beyond it, the broker's own replay
    check still refuses a republished (id, version), as a dead letter. Two adapter processes for
    one agency racing on the same file could both publish a version; the broker's replay check
    then refuses the second copy. Run one adapter per agency.

Dead letters
    A record that cannot become an alert goes to the agency's own dead-letter topic
    (``TopicNames.adapter_deadletter``: no agency reads another's bad records, which carry their
    raw content), and the run goes on. The value is the raw record as read (at most
    ``limits.record_bytes``); the headers name the adapter, agency, file, line, record number,
    reason code and detail, and ``puente-dlq-source`` reads ``adapter:<name>:<file>:<line>``
    so that a reader of the topic can tell them from the broker's own (which name
    ``topic:partition:offset``). Dead letters are idempotent too: each is keyed by the adapter
    and a digest of what names the failure (``dead_key``: the file's name, its records up to and
    including this one, the record's number, bytes and reason), and a key already on the topic is
    not written again and counted *already rejected*, not rejected, as a duplicate is counted for
    a record already published: a re-run of a file adds nothing, and neither does a file read
    again once it grew (a watcher's: moved back, or cut short then completed), whose earlier
    records keep their keys, under the name the file had when first read (``AdapterRun.run``'s ``named``: a file
    archived as ``done/export.1.jsonl`` and moved back under that name keeps ``export.jsonl``'s);
    another export under the same name, differing before a bad record,
    gets that record a dead letter of its own. A file refused before any record (UTF-16, line
    ends CR only, a bad header) is keyed by all its bytes instead, so two different exports of
    one name refused so are each dead-lettered; one a watcher moved back because it grew after its archive is keyed
    by the bytes it had when first archived (``AdapterRun.run``'s ``whole_upto``), so its growth, however often,
    makes no new dead letter, while another export differing within them still gets its own.

Ordering
    The record key is the alert id, as the broker requires (it checks key == alert id, and
    detects replays per partition): every version of one agency record lands in one partition,
    in order, and meets the same broker worker. Keying by anything coarser would break the
    broker's replay check.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import stat
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from adapters._fields import CONFLICT
from adapters.config import Context
from adapters.core import Adapter, Result, check_ignored, convert
from adapters.ledger import KEYS_KEPT, Ledger, Verdict, digest, held, read_ledger, recalls_for_good, scan
from adapters.lifecycle import own_mac_lookup, own_originator
from adapters.publisher import IngressPublisher
from broker.kafka import ClientError, KafkaConnection, producer, start, stop_client
from broker.kafka import translate as kafka_error
from broker.keystore import Keystore
from broker.topology import TopicNames
from puente import wire
from puente.errors import AdapterError, ConfigError
from puente.settings import PuenteSettings
from puente.strict import one_line
from puente.wire import Record
from schemas import alert_codec

DRAIN_EVERY = 5_000  # acknowledged in batches: bounded memory, and a failed send surfaces early
SHOW_REJECTS = 20
KEYS_NAMED = 3  # of the key ids unverifiable copies name, a summary line names so many


@dataclass
class Tally:
    """What one run did: every record read is published, a duplicate, or rejected (dead-lettered)."""

    read: int = 0
    published: int = 0
    duplicates: int = 0
    rejected: int = 0
    # Bad records whose dead letter is on the topic already (``dead_key``): a file read again, or run again. Not in
    # ``reasons``, which count this run's new rejections; a command still exits 1 for them (they are this input's).
    already_rejected: int = 0
    # A watcher's file that ends within its last record (``cut``): the results saying so are held, neither published
    # nor dead-lettered, until the file changes (``AdapterRun.run``'s ``hold_cut``); read counts them.
    held: int = 0
    # Files a watcher left unfinished: reading one failed partway (or could not start) and still failed when it
    # stopped. What was read of each is in the counts above; the rest was not read. Never set for a single run.
    unfinished: int = 0
    # Copies on the ingress topic under a MAC key of the agency's its keystore does not hold (``Ledger.unchecked``):
    # how many the ledger read, and the key ids they name (at most ``KEYS_KEPT``). Of the topic, not of the file.
    unverifiable: int = 0
    unverifiable_keys: frozenset[str] = frozenset()
    # Duplicates that are so only of such a copy (``Verdict.UNCHECKED``), in ``duplicates`` too.
    unchecked: int = 0
    # Records published where such a copy stands at their version or later, or recalls the id (``Ledger.overtaken``):
    # had its key been held they might not have been, and the broker may refuse them.
    overtaken: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    # The file's last record came back flagged ``cut`` by its reader: the file stops within a record, or
    # before its end (cut short, or still being written), whatever its error's reason. A watcher leaves such
    # a file in place and reads it again once it changes.
    cut: bool = False
    # ``cut`` with no record at all (0 bytes, a byte-order mark, blank lines, a header alone): the file's one
    # result is the file as a whole. An exporter that has opened its file and not written looks the same, and so
    # does a complete export of a day with nothing to report, which the operator removes.
    empty: bool = False

    def add(self, other: Tally) -> None:
        self.read += other.read
        self.published += other.published
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.already_rejected += other.already_rejected
        self.held += other.held
        self.unfinished += other.unfinished
        self.unverifiable = max(self.unverifiable, other.unverifiable)  # one topic's, read anew now and then
        self.unverifiable_keys = frozenset(sorted(self.unverifiable_keys | other.unverifiable_keys)[:KEYS_KEPT])
        self.unchecked += other.unchecked
        self.overtaken += other.overtaken
        self.reasons.update(other.reasons)
        self.cut = self.cut or other.cut
        self.empty = self.empty or other.empty

    def line(self, valid: str = "published") -> str:
        why = ", ".join(f"{r} {n}" for r, n in sorted(self.reasons.items()))
        return (f"read {self.read:,}, {valid} {self.published:,}, duplicates {self.duplicates:,}"
                + (f" ({self.unchecked:,} already on the topic, under a key this keystore no longer holds)"
                   if self.unchecked else "")
                + f", rejected {self.rejected:,}" + (f" ({why})" if why else "")
                + (f", already rejected {self.already_rejected:,} (in the dead-letter topic before)"
                   if self.already_rejected else "")
                + (f", held {self.held:,} (the file ends within a record)" if self.held else "")
                + (f", files left unfinished {self.unfinished:,} (reading failed partway)" if self.unfinished else "")
                + self._unverifiable())

    def _unverifiable(self) -> str:
        """What the line says of copies under a key the keystore lacks: how many, which keys (a few), what to check."""
        if not self.unverifiable:
            return ""
        keys = sorted(self.unverifiable_keys)
        more = len(keys) - KEYS_NAMED
        named = ", ".join(keys[:KEYS_NAMED]) + (
            f" and {more}{'+' if len(keys) >= KEYS_KEPT else ''} more" if more > 0 else "")
        overtaken = (f"; published {self.overtaken:,} where such a copy stands at its version or later, or recalls "
                     "it: the broker may refuse it (see its dead-letter topic)") if self.overtaken else ""
        return (f"; {self.unverifiable:,} cop{'y' if self.unverifiable == 1 else 'ies'} on the ingress topic under a "
                f"MAC key this agency's keystore does not hold ({named}): counted only as the same record run again, "
                "never against another; a key generation removed after a rotation explains them, a key this agency "
                "never had means someone wrote to its ingress topic without its key: check the topic's ACLs "
                f"(`puente acls plan`){overtaken}")


class UnfinishedRead(OSError):
    """Reading a file failed partway (``cause``, the OSError met): what was read before was settled (published,
    dead-lettered, every send acknowledged) and ``tally`` counts it; the rest was not read. Reading the file again
    publishes only what is missing."""

    def __init__(self, cause: OSError, tally: Tally) -> None:
        super().__init__(cause.errno, cause.strerror)
        self.cause, self.tally = cause, tally


def dead_key(adapter: str, source: str, result: Result, prefix: bytes) -> bytes:
    """A dead letter's key: the same failure of the same file always gets the same one, and two files that differ
    where the failure is judged never share one.

    The key is what makes dead letters idempotent (a key already on the topic is not written
    again, so a re-run adds nothing, and is counted already rejected), so two distinct failures must
    never share one: the second would never be written. A failure is named by the file's name (not its
    folder: a file moved to done/ and read again is the same file; a watcher gives the name it had when first
    read, for a file moved back under a numbered name), ``prefix``, the record's number, raw
    bytes and reason; and for a failure of the file as a whole (record 0: no trailer, a trailer miscount, a
    file unreadable after line N, a bad header), which has no bytes of its own, its detail too.

    ``prefix`` is what the failure is judged on (``AdapterRun._run`` gives it). For a record, or a failure
    after one, a digest of the file's records up to and including this one (``Prefix``): a file read again
    after it grew (written on after it was archived, cut short then completed) keeps each earlier record's
    key, while two exports of one name that differ before a record, or are cut at different lines, get dead
    letters of their own, each record's and the file's. For a refusal of the file before any record (its
    only result: UTF-16 or UTF-32, line ends CR only, a bad header), whose detail is fixed and whose records
    were never read, a digest of the whole file's bytes (``whole_digest``): two different exports of one name
    refused so get a dead letter each, the same file read again gets the same key. The name is taken as the
    bytes the file system holds: a name that is not UTF-8 (a Latin-1 'ñ') is a name too.
    """
    h = hashlib.blake2b(digest_size=16)
    parts = [os.fsencode(Path(source).name), prefix, str(result.item.number).encode(), result.item.raw,
             (result.error.reason if result.error else "").encode()]
    if result.item.number == 0:
        parts.append(str(result.error).encode())
    for part in parts:
        h.update(len(part).to_bytes(8, "big") + part)
    return f"adapter:{adapter}:{h.hexdigest()}".encode()


class Prefix:
    """A running digest of a file's records as they are read (number, line and raw bytes of each): ``digest`` after
    a record is that of the file up to and including it, the same whether the file is read from a disk or a pipe,
    whole or before it grew."""

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=16)

    def add(self, result: Result) -> None:
        for part in (str(result.item.number).encode(), str(result.item.line).encode(), result.item.raw):
            self._hash.update(len(part).to_bytes(8, "big") + part)

    def digest(self) -> bytes:
        return self._hash.digest()


WHOLE = b"whole-file:"  # begins a refusal's ``prefix`` (``whole_digest``): never a ``Prefix`` digest (16 bytes)


def whole_digest(stream: BinaryIO, start: int | None, hashing: _Hashing | None, upto: int | None = None) -> bytes:
    """The ``prefix`` of a file refused before any record: a digest of all its bytes, or of its first ``upto`` (a
    file that grew after it was archived: keyed as it was then). A stream that can be rewound is read again from
    ``start``, where the run began (only a refused file pays this second read); one that cannot (a pipe, never
    given ``upto``) was read through ``hashing``, which has what passed and here reads on to its end. OSError: the
    file failing, as met while reading."""
    if hashing is not None:
        while hashing.read(1 << 20):
            pass
        return WHOLE + hashing.digest()
    h = hashlib.blake2b(digest_size=16)
    stream.seek(start or 0)
    left = -1 if upto is None else upto
    while left and (block := stream.read(1 << 20 if left < 0 else min(left, 1 << 20))):
        h.update(block)
        left = left - len(block) if left > 0 else left
    return WHOLE + h.digest()


class _Hashing(io.RawIOBase):
    """A stream that cannot be rewound, read through, hashing what passes (``whole_digest``): a pipe's bytes the
    reader took before refusing the file are gone from it, and a refusal is keyed by all of them."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream, self._hash = stream, hashlib.blake2b(digest_size=16)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # One read of what lies under it at most (read1): bytes it gave before failing are not lost with the failure.
        read1 = getattr(self._stream, "read1", None)
        data = read1(len(buffer)) if read1 is not None else self._stream.read(len(buffer))
        buffer[:len(data)] = data
        self._hash.update(data)
        return len(data)

    def digest(self) -> bytes:
        return self._hash.digest()


def _start(stream: BinaryIO) -> int | None:
    """Where ``stream`` stands, to read it again from there (``whole_digest``); None when it cannot be rewound."""
    try:
        return stream.tell() if stream.seekable() else None
    except OSError:  # a pipe behind a file object that claims to seek
        return None


def header_text(text: str) -> bytes:
    """A header's UTF-8 text, on one line and printable as ``one_line`` gives it to a terminal (a file name's escape
    sequences, bells and line breaks escaped: a reader printing headers is not steered by them); a file name's bytes
    that are not UTF-8 (decoded by Python as lone surrogates) are written as escapes (``\\udcf1``), so that a reader
    of the topic can decode every header."""
    return one_line(text).encode("utf-8", "backslashreplace")


def check_units(cfg: PuenteSettings, ctx: Context) -> None:
    """Raise ConfigError when the agency's adapter configuration names an originator the broker does not take: a
    country (``country``) other than the one the broker holds the agency to (``PUENTE_AGENCY_COUNTRIES``, by default
    the policy's home country), or a relayed unit (``originators``) it does not take (``PUENTE_AGENCY_UNITS``). Each
    alert naming it would be dead-lettered by the broker after publication, so the run (and ``--check``) stops
    before reading a record, in one line naming what differs and both places to look."""
    home, agency = ctx.vocab.home_country, ctx.agency
    expected = cfg.agency_countries.get(agency, home)
    if expected is not None and ctx.profile.country != expected:
        source = ("PUENTE_AGENCY_COUNTRIES" if agency in cfg.agency_countries
                  else f"the policy's home country, PUENTE_AGENCY_COUNTRIES naming none for {agency}")
        raise ConfigError(f"the adapter configuration (agencies.yaml, or --config) gives {agency} the originator "
                          f"country {ctx.profile.country}, but the broker takes {agency}'s alerts only as of "
                          f"{expected} ({source}) and would dead-letter every one: make the two agree")
    if home is None:
        return
    if cfg.agency_countries.get(agency, home) == home:  # it names itself; the COMBIFRON adapter refuses it all else
        if agency in cfg.agency_units:  # the broker refuses to start so (``broker.service.build_worker``)
            raise ConfigError(f"PUENTE_AGENCY_UNITS names units of {agency}, an agency of the policy's home country "
                              f"({home}), which names itself and relays no units: remove them")
        return
    missing = sorted(set(ctx.profile.originators) - set(cfg.agency_units.get(agency, ())))
    if missing:
        raise ConfigError(f"the adapter configuration (agencies.yaml, or --config) names {agency} originators the "
                          f"broker does not take: {', '.join(missing)}; add them to PUENTE_AGENCY_UNITS, or remove "
                          "them from the adapter configuration")


class AdapterRun:
    """One adapter connected to Kafka: the ledger of what is published, the publisher, the dead letters."""

    def __init__(self, cfg: PuenteSettings, conn: KafkaConnection, adapter: Adapter, ctx: Context, *,
                 err: TextIO | None = None, progress_every: float = 2.0) -> None:
        check_ignored(adapter, ctx)  # before Kafka: a configuration that does not fit stops the run unread
        check_units(cfg, ctx)
        self.cfg, self.conn, self.adapter, self.ctx = cfg, conn, adapter, ctx
        self.err = err or sys.stderr  # looked up per run, so that a redirected stderr is honoured
        self.names = TopicNames(cfg.topic_prefix)
        self.dead_topic = self.names.adapter_deadletter(adapter.agency)
        self.progress_every = progress_every
        self.ledger = Ledger()
        self.dead: set[bytes] = set()
        self._dead_sent: list[asyncio.Future[Any]] = []
        self._stale = False  # a run did not finish: the ledger may hold records Kafka never took (``run``)
        self._publisher: Any = None
        self._dlq: Any = None

    async def __aenter__(self) -> AdapterRun:
        agency = self.adapter.agency
        keystore = Keystore(self.cfg.keys / "agencies" / agency)
        mac = keystore.load_agency_mac(agency)
        try:
            await self.refresh()
            self._publisher = IngressPublisher(self.conn, agency, mac.key_id, mac, self.names)
            await self._publisher.__aenter__()
            self._dlq = await start(producer(self.conn, f"puente-adapter-{agency}-dlq", acks="all",
                                             enable_idempotence=True),
                                    self.conn, f"writing {self.dead_topic}")
        except BaseException:
            await self.__aexit__(*sys.exc_info())
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            if self._publisher is not None:
                await self._publisher.__aexit__(*exc)  # leaving normally, it raises a raw send that failed
        finally:
            if self._dlq is not None:
                await stop_client(self._dlq)

    async def refresh(self) -> None:
        """Read the ledger and the dead letters' keys anew from the agency's topics: what their retention keeps,
        no more. At the start, and now and then in a watcher that runs for months (``adapters.watch``), whose
        memory would otherwise keep every record it ever published; what the topics no longer hold a restart
        forgets as well (the broker's replay checks answer for it). Between files only: never with one in flight."""
        agency = self.adapter.agency
        keystore = Keystore(self.cfg.keys / "agencies" / agency)
        # Only records the agency's own MAC proves count as published: a forged one must not make
        # its genuine record look recalled, conflicting or older. Nor one naming an originator the
        # broker refuses for its id: another unit's copy of a relayed unit's alert.
        home = self.ctx.vocab.home_country
        ledger = await read_ledger(self.conn, self.names.ingress(agency), alert_codec(), agency,
                                   own_mac_lookup(keystore, agency),
                                   None if home is None else own_originator(self.cfg, agency, home))
        dead: set[bytes] = set()
        await scan(self.conn, self.dead_topic, lambda rec: self._known_dead(rec, dead))
        self.ledger, self.dead = ledger, dead

    def _known_dead(self, rec: Record, dead: set[bytes]) -> None:
        if rec.key is not None and rec.key.startswith(f"adapter:{self.adapter.name}:".encode()):
            dead.add(rec.key)

    async def run(self, stream: BinaryIO, source: str, *, hold_cut: bool = False,
                  whole_upto: int | None = None, named: str | None = None) -> Tally:
        """Adapt one export; returns its tally. A Kafka failure raises the PuenteError ``broker.kafka.translate``
        gives it (a re-run is safe), never aiokafka's own error, which a watcher would take for a fault of the file.

        ``hold_cut`` (a watcher's): the results the file ends with that say it ends within a record (``Tally.cut``:
        still being written, most likely; PN gives two, its open case and the missing trailer) are held, neither
        dead-lettered nor counted rejected, since the watcher reads the file again once it changes and would then
        publish it: a record both dead-lettered and published, and a rejected count above what the agency must
        look at. A file cut for good stays in the drop folder, said so; `puente adapt` on it
        dead-letters the record.

        ``whole_upto`` (a watcher's, for a file it moved back because it grew after its archive): its size then; a
        refusal of the file before any record is keyed by that many of its first bytes (``whole_digest``), as it was
        when first read, not by all it holds now; ``named``: its name then, which keys its dead letters (``dead_key``)
        whatever name it comes back under (a numbered one), so a read again makes no new dead letter.

        The ledger takes each record as it is queued, before Kafka acknowledges it: a run that fails may leave in
        it records Kafka never took, which a later run of this object would then skip as duplicates, never
        published. So a run that did not finish leaves the ledger stale, and the next one first waits for what is
        still in flight and reads the ledger anew from the topic (``refresh``), which holds only what Kafka took.

        A read of ``stream`` that fails partway (an OSError: a share gone, a disk error) raises ``UnfinishedRead``,
        once what was read before is settled, with its tally: a watcher counts it and reads the file again."""
        try:
            if self._stale:  # what the failed run left in flight settles first, so that the topics show it
                await self._publisher.flush()
                await self._dlq.flush()
                await asyncio.gather(*self._dead_sent, return_exceptions=True)  # each retrieved; refresh reads them
                self._dead_sent.clear()
                await self.refresh()
                self._stale = False
            self._stale = True
            tally = await self._run(stream, source, hold_cut, whole_upto, named or source)
        except UnfinishedRead:
            self._stale = False  # what was read was settled, every send acknowledged: the ledger is as Kafka has it
            raise
        except ClientError as exc:
            error = kafka_error(exc, self.conn, "publishing")
            raise type(error)(f"publishing stopped: {error}; running the same input again publishes only what is "
                              "missing") from exc
        self._stale = False
        return tally

    async def _run(self, stream: BinaryIO, source: str, hold_cut: bool, whole_upto: int | None,
                   keyed: str) -> Tally:
        ctx = self.ctx.at(datetime.now(UTC))
        tally, shown, name = Tally(), 0, one_line(source)
        pending: list[asyncio.Future[Any]] = []
        started = last = time.monotonic()
        prefix = Prefix()
        held: list[tuple[Result, bytes]] = []  # PN gives two for a file being written: the open case, its trailer
        start = _start(stream)
        hashing = _Hashing(stream) if start is None else None
        records = io.BufferedReader(hashing, 1 << 16) if hashing is not None else stream
        # A first result that is the file's failure as a whole (record 0) waits: if it is also the last, the file was
        # refused before any record, and its key is the whole file's (``dead_key``), read only then.
        first: tuple[Result, bytes] | None = None

        async def settle(result: Result, upto: bytes) -> None:
            nonlocal shown
            bad = await self._publish(result, pending, tally)
            if bad is not None and bad.error is not None:
                new = await self._dead_letter(bad, bad.error, source, ctx.now, tally, upto, keyed)
                if shown < SHOW_REJECTS:
                    shown += 1
                    before = "" if new else " (already in the dead-letter topic)"
                    print(f"  {name}:{bad.item.line}: {bad.error.reason}: {bad.error}{before}", file=self.err)

        failed: OSError | None = None
        try:
            for result in convert(self.adapter, records, ctx):
                tally.read += 1
                prefix.add(result)
                tally.cut = result.error is not None and result.error.cut
                tally.empty = tally.cut and tally.read == 1 and result.item.number == 0
                if first is not None:  # not the file's only result: keyed by its records, as any other
                    await settle(*first)
                    first = None
                if hold_cut and tally.cut:
                    held.append((result, prefix.digest()))
                    continue
                if tally.read == 1 and result.item.number == 0 and result.error is not None:
                    first = (result, prefix.digest())
                    continue
                for earlier, upto in held:  # not the file's end after all: settled as any other
                    await settle(earlier, upto)
                held = []
                await settle(result, prefix.digest())
                if tally.read % 1000 == 0:
                    await asyncio.sleep(0)  # let the producers' send tasks run between batches
                    if time.monotonic() - last >= self.progress_every:
                        last = time.monotonic()
                        self._progress(name, tally, len(pending), last - started)
            if first is not None:  # refused before any record: keyed by all the file holds
                whole = whole_digest(stream, start, hashing, whole_upto)
                await settle(first[0], whole)
                first = None
        except OSError as exc:  # the file failed partway: what was read before is settled below, and counted
            failed = exc
            if first is not None:  # its key could not be made: neither dead-lettered nor counted; read again
                tally.read -= 1
        tally.held = len(held)
        tally.unverifiable, tally.unverifiable_keys = self.ledger.unverifiable, frozenset(self.ledger.unverifiable_keys)
        await self._publisher.flush()
        tally.published += await _drain(pending, self.conn)
        await self._dlq.flush()
        await _drain(self._dead_sent, self.conn)  # a dead letter that did not reach Kafka must not pass unnoticed
        if tally.rejected + tally.already_rejected > shown:
            print(f"  ... and {tally.rejected + tally.already_rejected - shown} more rejected: see {self.dead_topic}",
                  file=self.err)
        if failed is not None:
            raise UnfinishedRead(failed, tally) from failed
        return tally

    async def _publish(self, result: Result, pending: list[asyncio.Future[Any]], tally: Tally) -> Result | None:
        """Publish a good record unless the ledger has it; returns what must be dead-lettered instead."""
        if result.error is not None or result.alert is None or result.value is None:
            return result
        alert_id, version, mine = result.alert["alert_id"], result.alert["version"], digest(result.value)
        verdict = self.ledger.judge_alert(result.alert, mine)
        if verdict in (Verdict.DUPLICATE, Verdict.UNCHECKED):
            tally.duplicates += 1
            tally.unchecked += verdict is Verdict.UNCHECKED
            return None
        if verdict is not Verdict.NEW:
            return Result(result.item, error=AdapterError(self.ledger.why(verdict, alert_id, version), CONFLICT))
        tally.overtaken += self.ledger.overtaken(alert_id, version)
        key, headers = self._publisher.sign(alert_id, result.value)
        pending.append(await self._publisher.send_framed(key, result.value, headers))
        self.ledger.add(alert_id, version, mine, recalled=recalls_for_good(result.alert), held=held(result.alert))
        if len(pending) >= DRAIN_EVERY:
            tally.published += await _drain(pending, self.conn)
        return None

    def _progress(self, name: str, tally: Tally, queued: int, elapsed: float) -> None:
        print(f"{self.adapter.name}: {name}: {tally.read:,} records ({tally.read / elapsed:,.0f}/s), "
              f"{tally.published + queued:,} sent, {tally.duplicates:,} duplicates, {tally.rejected:,} rejected",
              file=self.err, flush=True)

    async def _dead_letter(self, result: Result, err: AdapterError, source: str, now: datetime, tally: Tally,
                           prefix: bytes, keyed: str) -> bool:
        """Dead-letter ``result`` unless its key is on the topic already; whether it was new (counted rejected, not
        already rejected), as the ledger tells a record published from a duplicate. Its key names ``keyed`` (the
        file's name when first read), its headers ``source`` (where it lies now)."""
        reason = err.reason
        key = dead_key(self.adapter.name, keyed, result, prefix)
        if key in self.dead:
            tally.already_rejected += 1
            return False
        tally.rejected += 1
        tally.reasons[reason] += 1
        self.dead.add(key)
        detail = str(err)[: wire.DLQ_DETAIL_MAX]
        where = f"adapter:{self.adapter.name}:{Path(source).name}:{result.item.line}"
        headers = [
            (wire.DLQ_REASON, reason.encode()),
            (wire.DLQ_DETAIL, detail.encode()),
            (wire.DLQ_SOURCE, header_text(where)),
            (wire.DLQ_AT, wire.iso_utc(now).encode()),
            (wire.DLQ_ADAPTER, self.adapter.name.encode()),
            (wire.AGENCY, self.adapter.agency.encode()),
            (wire.DLQ_FILE, header_text(source)),
            (wire.DLQ_LINE, str(result.item.line).encode()),
            (wire.DLQ_RECORD, str(result.item.number).encode()),
        ]
        raw = result.item.raw[: self.ctx.limits.record_bytes]
        self._dead_sent.append(await self._dlq.send(self.dead_topic, raw, key=key, headers=headers))
        return True


async def _drain(pending: list[asyncio.Future[Any]], conn: KafkaConnection) -> int:
    """Wait for every queued send; a failure stops the run (what was acknowledged stays published)."""
    done = 0
    try:
        for fut in pending:
            await fut
            done += 1
    except ClientError as exc:
        error = kafka_error(exc, conn, "publishing")
        raise type(error)(f"publishing stopped after {done} acknowledged records: {error}; running the same "
                          "input again publishes only what is missing") from exc
    finally:
        pending.clear()
    return done


def check(adapter: Adapter, ctx: Context, stream: BinaryIO, source: str, err: TextIO | None = None,
          show: int = 1000) -> Tally:
    """Map and validate without Kafka: every rejection is printed with its line and reason.

    Records are held against each other as a run holds them against the ledger (duplicates,
    conflicts and older versions within the file), not against what Kafka already has. A read of
    ``stream`` that fails raises ConfigError naming ``source``; a write of the report that fails (its
    reader left: ``| head``) is the OSError it is, never blamed on the file being read.
    """
    err = err or sys.stderr
    tally, ledger = Tally(), Ledger()
    for result in _reading(convert(adapter, stream, ctx), source):
        tally.read += 1
        if result.error is None and result.alert is not None and result.value is not None:
            alert_id, version, mine = result.alert["alert_id"], result.alert["version"], digest(result.value)
            verdict = ledger.judge_alert(result.alert, mine)
            if verdict is Verdict.DUPLICATE:
                tally.duplicates += 1
                continue
            if verdict is Verdict.NEW:
                ledger.add(alert_id, version, mine, recalled=recalls_for_good(result.alert), held=held(result.alert))
                tally.published += 1  # "would publish"
                continue
            result = Result(result.item, error=AdapterError(ledger.why(verdict, alert_id, version), CONFLICT))
        tally.rejected += 1
        reason = result.error.reason if result.error else "invalid"
        tally.reasons[reason] += 1
        if tally.rejected <= show:  # the error quotes the file, so the whole line is escaped
            print(one_line(f"  {source}:{result.item.line}: {reason}: {result.error}"), file=err)
    return tally


def _reading(results: Iterator[Result], source: str) -> Iterator[Result]:
    """``results`` as read from ``source``; a read that fails is raised as ConfigError naming ``source``. Only the
    reads are wrapped: what the caller does with each result (printing it) fails as itself."""
    while True:
        try:
            result = next(results)
        except StopIteration:
            return
        except OSError as exc:  # the file failed mid-read: say which, without a traceback
            raise ConfigError(f"reading {one_line(source)} failed: {exc.strerror or type(exc).__name__}") from exc
        yield result


def open_source(path: str) -> tuple[BinaryIO, str]:
    """A file, or standard input for '-'."""
    if path == "-":
        return sys.stdin.buffer, "<stdin>"
    try:
        return open(path, "rb"), path  # the caller closes it
    except OSError as exc:
        raise ConfigError(f"cannot read {one_line(path)}: {exc.strerror or type(exc).__name__}") from exc


def _unreadable(path: str) -> str | None:
    """Why ``path`` cannot be read as an export, or None when it can."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            return "is a folder"
        if not stat.S_ISREG(mode):  # a FIFO would block the check, a device never ends
            return "is not a regular file"
        with open(path, "rb"):  # opening proves the permission as this process has it
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def check_sources(paths: Sequence[str]) -> None:
    """Before anything is read or published: every named file can be opened, or ConfigError names each that cannot.

    A run over several files publishes them one after the other; finding the third missing
    after the first two were published would leave a half-done run to untangle.
    """
    problems = [f"{one_line(path)} ({why})" for path in paths if path != "-" and (why := _unreadable(path))]
    if paths.count("-") > 1:
        problems.append("'-' (standard input) given more than once")
    if problems:
        raise ConfigError(f"cannot read {'; '.join(problems)}: nothing was read or published")


async def adapt_paths(cfg: PuenteSettings, conn: KafkaConnection, adapter: Adapter, ctx: Context,
                      paths: Iterable[str], *,
                      err: TextIO | None = None,
                      done: Callable[[str, Tally], None] | None = None) -> list[tuple[str, Tally]]:
    """Adapt each file (or '-') in turn, with one Kafka connection; returns each source's tally.

    Every file is checked to be readable before Kafka is contacted (see check_sources), and
    ``done(source, tally)`` is called as each file ends, so that a failure in a later file
    leaves the summaries of what was already published.
    """
    paths = list(paths)
    check_sources(paths)
    out = []
    async with AdapterRun(cfg, conn, adapter, ctx, err=err) as run:
        for path in paths:
            stream, source = open_source(path)
            try:
                tally = await run.run(stream, source)
            except OSError as exc:  # the file failed mid-read (a network share gone): stop, and say which
                # strerror, not the exception: its text quotes the path as it is
                raise ConfigError(f"reading {one_line(source)} failed: {exc.strerror or type(exc).__name__}; what "
                                  "was read before was published, and running the same files again publishes only "
                                  "what is missing") from exc
            finally:
                if stream is not sys.stdin.buffer:
                    stream.close()
            out.append((source, tally))
            if done is not None:
                done(source, tally)
    return out
