"""The adapters' Kafka edge: read an export, publish its alerts, dead-letter its bad records, summarise.

Idempotence
    An alert id is the agency's own record reference (``SENAFRONT:IP-DAR-2026-000412``), so the
    same record always yields the same id and, with the same configuration, the same bytes.
    Before publishing, a run reads the keys of the agency's ingress topic, from the beginning,
    with a digest of each value: the topic itself is the ledger of what was published. A record
    whose id is there with the same digest is a duplicate and is skipped; one whose id is there
    with other content is a *conflict* and is dead-lettered (the broker accepts one version per
    alert id and would refuse the second as a replay, so publishing it would only move the
    rejection downstream, where the agency would not see it). Ids published during the run join
    the ledger, which also catches a record repeated within a file. Why the topic and not a
    local state file: the topic is the truth (a state file can be lost, copied or disagree with
    Kafka after a crash), and a crash mid-file needs no recovery step: running the same file
    again publishes exactly what is missing. Limits, stated: the ledger reaches back as far as
    the ingress topic's retention (7 days by default); beyond it, the broker's own replay check
    (its ``seen`` changelog, kept four times longer) still refuses a republished id, as a dead
    letter. Two adapter processes for one agency racing on the same file could both publish an
    id; the broker's replay check then refuses the second copy. Run one adapter per agency.

Dead letters
    A record that cannot become an alert goes to the agency's own dead-letter topic
    (``TopicNames.adapter_deadletter``: no agency reads another's bad records, which carry their
    raw content), and the run goes on. The value is the raw record as read (at most
    ``limits.record_bytes``); the headers name the adapter, agency, file, line, record number,
    reason code and detail, and ``puente-dlq-source`` reads ``adapter:<name>:<file>:<line>``
    so that a reader of the topic can tell them from the broker's own (which name
    ``topic:partition:offset``). Dead letters are idempotent too: each is keyed by the adapter
    and a digest of (file name, record number, raw bytes), and keys already on the topic are
    not written again, so a re-run adds nothing.

Ordering
    The record key is the alert id, as the broker requires (it checks key == alert id, and
    detects replays per partition): every version of one agency record lands in one partition,
    in order. Keying by anything coarser would break the broker's replay check.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from adapters._fields import CONFLICT
from adapters.config import Context
from adapters.core import Adapter, Result, convert
from adapters.publisher import IngressPublisher
from broker.kafka import ClientError, KafkaConnection, TopicPartition, partitions_of, producer, reader, running, start
from broker.kafka import translate as kafka_error
from broker.keystore import Keystore
from broker.topology import TopicNames
from puente import wire
from puente.errors import AdapterError, ConfigError
from puente.settings import PuenteSettings

DRAIN_EVERY = 5_000  # acknowledged in batches: bounded memory, and a failed send surfaces early
SHOW_REJECTS = 20


@dataclass
class Tally:
    """What one run did: every record read is published, a duplicate, or rejected (dead-lettered)."""

    read: int = 0
    published: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.read += other.read
        self.published += other.published
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.reasons.update(other.reasons)

    def line(self, valid: str = "published") -> str:
        why = ", ".join(f"{r} {n}" for r, n in sorted(self.reasons.items()))
        return (f"read {self.read:,}, {valid} {self.published:,}, duplicates {self.duplicates:,}, "
                f"rejected {self.rejected:,}" + (f" ({why})" if why else ""))


def digest(value: bytes) -> bytes:
    return hashlib.blake2b(value, digest_size=16).digest()


def dead_key(adapter: str, source: str, result: Result) -> bytes:
    """A dead letter's key: the same bad record of the same file always gets the same one."""
    h = hashlib.blake2b(digest_size=16)
    for part in (Path(source).name.encode(), str(result.item.number).encode(), result.item.raw):
        h.update(len(part).to_bytes(8, "big") + part)
    return f"adapter:{adapter}:{h.hexdigest()}".encode()


async def _scan(conn: KafkaConnection, topic: str, keep: Any) -> None:
    """Call ``keep(key, value)`` for every committed record of ``topic``, up to its end at the start."""
    async with running(reader(conn, "puente-adapter-ledger"), conn, f"reading {topic}") as consumer:
        parts = await partitions_of(consumer, topic)
        if not parts:
            raise ConfigError(f"topic {topic} does not exist; create the topics with `puente topics apply`")
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        todo = {tp for tp in tps if ends[tp] > await consumer.position(tp)}
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=2000, max_records=10_000)
            for tp, msgs in batch.items():
                for msg in msgs:
                    if msg.offset < ends[tp]:
                        keep(msg.key or b"", msg.value or b"")
            todo = {tp for tp in todo if await consumer.position(tp) < ends[tp]}


class AdapterRun:
    """One adapter connected to Kafka: the ledger of what is published, the publisher, the dead letters."""

    def __init__(self, cfg: PuenteSettings, conn: KafkaConnection, adapter: Adapter, ctx: Context, *,
                 err: TextIO | None = None, progress_every: float = 2.0) -> None:
        self.cfg, self.conn, self.adapter, self.ctx = cfg, conn, adapter, ctx
        self.err = err or sys.stderr  # looked up per run, so that a redirected stderr is honoured
        self.names = TopicNames(cfg.topic_prefix)
        self.dead_topic = self.names.adapter_deadletter(adapter.agency)
        self.progress_every = progress_every
        self.ids: dict[str, bytes] = {}
        self.dead: set[bytes] = set()
        self._dead_sent: list[asyncio.Future[Any]] = []
        self._publisher: Any = None
        self._dlq: Any = None

    async def __aenter__(self) -> AdapterRun:
        agency = self.adapter.agency
        mac = Keystore(self.cfg.keys / "agencies" / agency).load_agency_mac(agency)
        try:
            await _scan(self.conn, self.names.ingress(agency), self._known_alert)
            await _scan(self.conn, self.dead_topic, self._known_dead)
            self._publisher = IngressPublisher(self.conn, agency, mac.key_id, mac, self.names)
            await self._publisher.__aenter__()
            self._dlq = await start(producer(self.conn, f"puente-adapter-{agency}-dlq", acks="all",
                                             enable_idempotence=True),
                                    self.conn, f"writing {self.dead_topic}")
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._publisher is not None:
            await self._publisher.__aexit__()
        if self._dlq is not None:
            await self._dlq.stop()

    def _known_alert(self, key: bytes, value: bytes) -> None:
        self.ids[key.decode("utf-8", "replace")] = digest(value)

    def _known_dead(self, key: bytes, value: bytes) -> None:
        if key.startswith(f"adapter:{self.adapter.name}:".encode()):
            self.dead.add(key)

    async def run(self, stream: BinaryIO, source: str) -> Tally:
        """Adapt one export; returns its tally. Kafka failures raise KafkaSetupError (a re-run is safe)."""
        ctx = self.ctx.at(datetime.now(UTC))
        tally, shown = Tally(), 0
        pending: list[asyncio.Future[Any]] = []
        started = last = time.monotonic()
        for result in convert(self.adapter, stream, ctx):
            tally.read += 1
            bad = await self._publish(result, pending, tally)
            if bad is not None and bad.error is not None:
                await self._dead_letter(bad, bad.error, source, ctx.now, tally)
                if shown < SHOW_REJECTS:
                    shown += 1
                    print(f"  {source}:{bad.item.line}: {bad.error.reason}: {bad.error}", file=self.err)
            if tally.read % 1000 == 0:
                await asyncio.sleep(0)  # let the producers' send tasks run between batches
                if time.monotonic() - last >= self.progress_every:
                    last = time.monotonic()
                    self._progress(source, tally, len(pending), last - started)
        await self._publisher.flush()
        tally.published += await _drain(pending, self.conn)
        await self._dlq.flush()
        await _drain(self._dead_sent, self.conn)  # a dead letter that did not reach Kafka must not pass unnoticed
        if tally.rejected > shown:
            print(f"  ... and {tally.rejected - shown} more rejected: see {self.dead_topic}", file=self.err)
        return tally

    async def _publish(self, result: Result, pending: list[asyncio.Future[Any]], tally: Tally) -> Result | None:
        """Publish a good record unless the ledger has it; returns what must be dead-lettered instead."""
        if result.error is not None or result.alert is None or result.value is None:
            return result
        alert_id = result.alert["alert_id"]
        known, mine = self.ids.get(alert_id), digest(result.value)
        if known == mine:
            tally.duplicates += 1
            return None
        if known is not None:
            # the id is not quoted: it is the agency's reference, and a shifted column may have made it a name
            return Result(result.item, error=AdapterError(
                "this record's alert id was already published with other content; the broker accepts one "
                "version per id, so a correction needs a new record number", CONFLICT))
        key, headers = self._publisher.sign(alert_id, result.value)
        pending.append(await self._publisher.send_framed(key, result.value, headers))
        self.ids[alert_id] = mine
        if len(pending) >= DRAIN_EVERY:
            tally.published += await _drain(pending, self.conn)
        return None

    def _progress(self, source: str, tally: Tally, queued: int, elapsed: float) -> None:
        print(f"{self.adapter.name}: {source}: {tally.read:,} records ({tally.read / elapsed:,.0f}/s), "
              f"{tally.published + queued:,} sent, {tally.duplicates:,} duplicates, {tally.rejected:,} rejected",
              file=self.err, flush=True)

    async def _dead_letter(self, result: Result, err: AdapterError, source: str, now: datetime, tally: Tally) -> None:
        reason = err.reason
        tally.rejected += 1
        tally.reasons[reason] += 1
        key = dead_key(self.adapter.name, source, result)
        if key in self.dead:
            return
        self.dead.add(key)
        detail = str(err)[: wire.DLQ_DETAIL_MAX]
        where = f"adapter:{self.adapter.name}:{Path(source).name}:{result.item.line}"
        headers = [
            (wire.DLQ_REASON, reason.encode()),
            (wire.DLQ_DETAIL, detail.encode()),
            (wire.DLQ_SOURCE, where.encode()),
            (wire.DLQ_AT, wire.iso_utc(now).encode()),
            (wire.DLQ_ADAPTER, self.adapter.name.encode()),
            (wire.AGENCY, self.adapter.agency.encode()),
            (wire.DLQ_FILE, source.encode()),
            (wire.DLQ_LINE, str(result.item.line).encode()),
            (wire.DLQ_RECORD, str(result.item.number).encode()),
        ]
        raw = result.item.raw[: self.ctx.limits.record_bytes]
        self._dead_sent.append(await self._dlq.send(self.dead_topic, raw, key=key, headers=headers))


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
    """Map and validate without Kafka: every rejection is printed with its line and reason."""
    err = err or sys.stderr
    tally, ids = Tally(), set()
    for result in convert(adapter, stream, ctx):
        tally.read += 1
        if result.error is None and result.alert is not None:
            if result.alert["alert_id"] in ids:
                tally.duplicates += 1
            else:
                ids.add(result.alert["alert_id"])
                tally.published += 1  # "would publish"
            continue
        tally.rejected += 1
        reason = result.error.reason if result.error else "invalid"
        tally.reasons[reason] += 1
        if tally.rejected <= show:
            print(f"  {source}:{result.item.line}: {reason}: {result.error}", file=err)
    return tally


def open_source(path: str) -> tuple[BinaryIO, str]:
    """A file, or standard input for '-'."""
    if path == "-":
        return sys.stdin.buffer, "<stdin>"
    try:
        return open(path, "rb"), path  # the caller closes it
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


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
    problems = [f"{path} ({why})" for path in paths if path != "-" and (why := _unreadable(path))]
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
                raise ConfigError(f"reading {source} failed: {exc.strerror or exc}; what was read before was "
                                  "published, and running the same files again publishes only what is missing"
                                  ) from exc
            finally:
                if stream is not sys.stdin.buffer:
                    stream.close()
            out.append((source, tally))
            if done is not None:
                done(source, tally)
    return out
