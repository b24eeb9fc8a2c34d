"""The broker worker: a consumer group over the ingress topics, exactly-once into feeds and audit.

Exactly-once, the way it is done without KIP-447 (which aiokafka lacks): every
ingress partition is a *slot* with its own transactional producer, whose
``transactional.id`` names the slot. Whoever owns the slot after a rebalance or
a crash starts a producer with the same id, which fences the previous owner and
aborts its open transaction. Per slot and per batch, one transaction holds the
audit block (in the slot's own audit partition, so each audit chain has one
writer), the dead letters, the alert states and the batch's feed records as
outbox entries in the slot's lifecycle partition. A crash at any point leaves
either all of them or none.

The feed records themselves go out in the slot's next transaction, once the
decisions are committed (``broker.lifecycle.outbox_records``): Kafka keeps an
aborted transaction's records in the log, and a partner's client that reads
``read_uncommitted`` would get views the audit never delivered (a retry may
decide otherwise). An aborted transaction now leaves in a feed only records the
audit already delivers. A slot with no batch to follow writes them in a
transaction of their own at once; a new owner reads the unsent ones back.

The audit block is also where the slot stands. Its entries name the ingress records the batch took, so the
offset a slot reads on from is read from its last block (``resume_offset``), not from the consumer group:
the offsets are not in the transaction (``send_offsets_to_transaction`` cost two of its four round trips,
AddOffsetsToTxn and TxnOffsetCommit, one after the other). The worker commits
its slots' positions to the group outside the transactions, a little behind (``COMMIT_EVERY_S``, and at each
revocation and stop), for the tools that read a group's lag and for the check a new owner makes of the
head (``head_behind``); a committed offset is never past the head.

The audit block is also the slot's replay state: a new owner rebuilds the set of
alert ids processed within the replay window by reading the slot's audit partition
back over that window, so no separate changelog is written per alert. What the
lifecycle of alerts needs for longer (who holds which version: ``broker.lifecycle``)
goes to the slot's partition of the compacted lifecycle topic, in the same
transaction, and a new owner reads that partition back whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Container, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from broker.audit import (
    ChainHead,
    ChainWriter,
    Retention,
    VerifyFn,
    falls_short,
    head_problem,
    ingress_of,
    last_ingress,
    listed,
)
from broker.crypto.keys import newer_generation
from broker.kafka import (
    ClientError,
    Consumer,
    ConsumerRebalanceListener,
    FetchView,
    KafkaConnection,
    NoCommittedOffset,
    OffsetAndMetadata,
    OffsetOutOfRange,
    PartitionBatches,
    Producer,
    TopicPartition,
    consumer,
    feed_counts_now,
    fetch_view,
    hold_rebalance,
    instance_holder,
    last_before,
    last_records,
    membership,
    partition_count_now,
    producer,
    read_many,
    reader,
    record,
    record_at,
    running,
    set_fetching,
    start,
    stop_client,
    transaction,
    translate,
    tune_transactions,
    wake_group_waiters,
)
from broker.kafka.clients import MAX_BATCH_BYTES, RecordTooLarge, TooLarge, fetch_total
from broker.lifecycle import AlertState, LifecycleBook, Outbox, Unsent, is_outbox, outbox_records
from broker.metrics import Metrics
from broker.pipeline import MAX_FUTURE_SKEW_MS, FeedCountStale, Outcome, Pipeline, seen_key
from broker.replay import ReplayWindow
from broker.stall import SlotView, StallNote, StallWatch, WorkerView
from broker.topology import Slots, TopicNames, feed_partition
from puente import logs
from puente.errors import (
    AuditChainError,
    ConfigError,
    FeedGapError,
    KafkaError,
    KafkaUnavailableError,
)
from puente.wire import Record

log = logs.get("puente.broker")
LAG_EVERY_S = 1.0
# Once the long-lived objects are frozen out of its scans, the collector's default first threshold
# (700 allocations) still ran about 1,100 collections per run over each batch's short-lived records
# and outcomes, about a tenth of the worker's CPU. Larger thresholds collect the same garbage less
# often; reference counting frees most of it anyway (bench/RESULTS.md has the runs).
GC_THRESHOLDS = (50_000, 50, 100)
WORK_SLICE_S = 0.02
"""The longest a batch's records are worked out without letting the event loop run (heartbeats, commits, the
other slots): by time, not by count, since one record may take a thousand times another (a megabyte of emoji)."""
NAME_CHECK_S = 5.0  # the longest a static worker asks Kafka who holds its group.instance.id
COMMIT_EVERY_S = 0.2
"""How often a worker commits its slots' positions to its group (outside the transactions: see the module's doc)."""
CAUGHT_UP_WAIT_S = 10.0
"""The longest the idle exit's question to Kafka (each assigned partition's end: ``BrokerWorker._caught_up``) may
take. Past it, or failing, the worker is not known to be caught up: it goes on, and asks again after another quiet
period. Asked only once the worker has been quiet that long, so the main loop it holds meanwhile has nothing queued;
a stop (SIGTERM) does not wait for the answer."""
PUT_OFF_WARN_S = 30.0
"""Once the idle exit has been put off this long since the worker's last record (behind on a partition it cannot read
on, or Kafka not answering the question), its note of why (``BrokerWorker._put_off``) is a warning, at most once this
often: such a worker runs on rather than exit as if done, and an operator waiting for it to end must learn why."""
QUIET_AFTER_S = 1.0
QUIET_FETCH_WAIT_MS = 100
"""A worker that has read nothing for ``QUIET_AFTER_S`` long-polls instead of gathering: its fetches wait up to
this long (or ``fetch.max.wait.ms``, if longer), and Kafka answers one at its first byte, so the first alert after
a quiet spell waits for no fetch, and an idle worker fetches a few times a second rather than every 15 ms. Its
first batch sets the gathering back. (Longer would save little more, and a partition resumed after a pause waits
for the fetch in flight to return: a slot loaded after a rebalance while the worker was quiet.)"""
CARRY_WAIT_S = 0.02
"""The default of ``WorkerConfig.carry_wait_s`` (``PUENTE_FEED_CARRY_WAIT_MS``): how long a slot whose queue ran
dry waits for a next batch to carry the feed records its last transaction left unsent, before it writes them in a
transaction of their own (``_drain``): at a steady rate the next fetch usually comes within it
(``fetch.max.wait.ms`` is 15 ms by default), and a transaction of their own per batch would double the
transactions. Below about a batch per slot every 20 ms, each delivery waits it out. A slot taken with unsent
records (read back, or kept across a rebalance) writes them at once: a batch that then fails to be worked out (a
delivery key missing) stops the worker without holding them."""
COMMIT_EVERY_WAIT_S = 10.0  # the longest a periodic commit of positions may take before it is logged as failed
COMMIT_WAIT_S = 1.0
"""The longest a commit of positions at a revocation or a stop may take: a revocation holds the whole group's
rebalance, and the commit is not needed for exactly once (a coordinator failing over would hold it seconds)."""
SETTLE_WAIT_S = 40.0
"""The longest the slots' transactions in flight may take to end when the slots are handed over or retired (one
deadline for all of them, and longer where ``PUENTE_KAFKA_TIMEOUT_S`` is: ``BrokerWorker.settle_wait_s``): past it
the worker gives them up and starts again (``_settle``). aiokafka's transaction commit waits without a bound for the
coordinator's answer, and a producer fenced mid-commit by another worker's (a second worker under this one's
--group-instance-id) was seen never to hear one: the revocation then held the rebalance, and the worker neither
stopped nor went on. Longer than a request's timeout (30 s) and a node's failover, so a slow commit still ends."""


@dataclass
class SlotState:
    """What a worker holds for one owned ingress partition."""

    tp: TopicPartition
    slot: int
    producer: Producer
    chain: ChainWriter
    seen: ReplayWindow
    book: LifecycleBook = field(default_factory=LifecycleBook)
    """The slot's committed alert states (who holds which version of each alert)."""
    states: int = 0
    """An offset the slot's lifecycle partition reaches at least, as its last block says (``ChainHead.states``):
    each transaction adds its states (and outbox records) to it and writes the sum in its blocks."""
    unsent: list[Unsent] = field(default_factory=list)
    """The feed records of the slot's last committed transaction, not yet written (``broker.lifecycle.outbox_records``):
    its next transaction writes them, or, when no batch follows within ``carry_wait_s``, one of their own
    (``_drain``)."""
    marked: int = -1
    """How many entries the slot's last committed outbox mark names (``outbox_records``): the next mark tombstones
    those it does not replace. ``len(unsent)`` (the default, -1) but where a load dropped entries for a feed Kafka no
    longer holds (``_place_unsent``), which stay in the partition until the next mark."""
    queue: deque[Any] = field(default_factory=deque)
    """Records fetched for this slot and not yet in a transaction (at most about two batches)."""
    task: asyncio.Task[None] | None = None
    """The slot's own loop while it has work: one transaction at a time, beside the other slots'."""
    paused: bool = False
    next_offset: int | None = None
    """The next offset to process: after the last committed batch (None until the first commit or fetch)."""
    done_to: int | None = None
    """The offset after the last record a committed transaction of this slot took (its audit head): the
    position committed to the group (None: none known)."""
    group_has: int | None = None
    """The position last committed to the group for this slot."""
    progress_at: float = field(default_factory=time.monotonic)
    """When the slot last committed (or was taken), for the lag of a slot that waits on nothing queued."""
    taken_at: float = field(default_factory=time.monotonic)
    """When this worker took the slot (or was given it back): its fetch age counts from there until Kafka answers
    a fetch for it (``_lag``)."""
    resumed_at: float | None = None
    """When its partition was last resumed after a pause for backpressure (``paused``): aiokafka fetches nothing for
    a paused partition, so its fetch age counts from here, not from the answer before the pause (``_lag``)."""
    txn_began: float | None = None
    """When the slot's transaction in flight began (None: none open), for the stall warning."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when records are queued: a slot waiting for a batch to carry its unsent feed records wakes at once."""
    gaps_queued: int = 0
    """``GapMark``s in ``queue`` (almost always none: only then is a batch looked through for them)."""
    loss: str | None = None
    """What its load found lost and read past with ``accept_gaps`` (alert states, ``_check_books``; an ingress topic
    made anew, ``_remade_ingress``), until a block records it. A slot whose mark a revocation dropped unsent is not
    kept when the rebalance gives it back (``_unpark``) but loaded again, which finds the loss again. Kept, its next
    block would state the lower count with no GAP entry saying why, or read on at its old offset in the new topic,
    past records never decided."""

    def __post_init__(self) -> None:
        if self.marked < 0:
            self.marked = len(self.unsent)

    @property
    def busy(self) -> bool:
        return bool(self.queue) or (self.task is not None and not self.task.done())

    def stands(self, processed: int | None, seen: FetchView | None) -> int | None:
        """Where the slot stands in its partition: ``processed``, the offset after the last record it took as the
        caller counts it (``done_to`` or ``next_offset``), or, with nothing queued or in flight, the consumer's
        position (``seen``) if that is further: all before it is processed or is a transaction marker or an aborted
        record (an offset but no record a batch takes), which would otherwise count as behind. None: neither known."""
        if not self.busy and seen is not None and seen.position is not None:
            return max(processed or 0, seen.position)
        return processed


@dataclass(frozen=True)
class WorkerConfig:
    conn: KafkaConnection
    group_id: str
    slots: Slots
    max_batch: int = 500
    replay_window_days: int = 7
    signer_id: str = "broker"
    client_id: str = "puente-broker"
    verify: VerifyFn = field(default=lambda signer, payload, sig: False)
    """Checks the broker's own signatures (every generation of its key) on a chain head it continues."""
    generations: tuple[str, ...] = ()
    """The broker's signing key ids ``verify`` takes, newest first: a head signed by one older than a key
    that signed before it in the chain is a retired key in use, and is not continued (``_read_state``)."""
    generations_made: dict[str, int] = field(default_factory=dict)
    """When each of ``generations`` was made (Unix ms, the keystore's ``created_at``): no block it signed was
    appended earlier, so a head signed by an older key is checked against the blocks appended since its
    successors were made (``_read_state``). One left out is taken as possibly as old as the chain."""
    max_concurrent_txns: int = 16
    """Slot transactions open at once in this worker (``PUENTE_MAX_CONCURRENT_TXNS``)."""
    retry_backoff_ms: int = 10
    """A slot producer's wait before retrying a refused request (``PUENTE_PRODUCER_RETRY_BACKOFF_MS``)."""
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 2000
    fetch_max_wait_ms: int = 15
    fetch_min_bytes: int = 16384
    """How the consumer's fetches gather records (``PUENTE_FETCH_MAX_WAIT_MS``, ``PUENTE_FETCH_MIN_BYTES``):
    a fetch answered at its first record costs as much as one of a hundred."""
    group_instance_id: str | None = None
    """Kafka's ``group.instance.id``: static membership, so a restart within the session keeps the slots."""
    stall_warning_s: float = 10.0
    carry_wait_s: float = CARRY_WAIT_S
    """How long a slot with unsent feed records and nothing queued waits for a batch to carry them
    (``PUENTE_FEED_CARRY_WAIT_MS``, ``CARRY_WAIT_S``)."""
    audit_retention_days: int | None = None
    """How long the audit topics keep records (PUENTE_AUDIT_RETENTION_DAYS): each block states it (``keep_days``),
    so a chain cut at its start is judged by it (``broker.audit.verify.Retention``)."""
    audit_kept_forever: bool = False
    """The decisions topic keeps its records for ever (``retention.ms=-1``, found by ``check_topology``): a slot's
    chain gone from it was deleted, never expired (``_decided_within_retention``)."""
    load_timeout_s: float = 300.0
    """The most taking fresh slots may last (producers, audit read-back) before the worker starts again."""
    accept_gaps: bool = False
    """Read on past ingress records deleted before the broker read them (logged) instead of stopping."""


@dataclass(frozen=True)
class GapMark:
    """Stands in a slot's queue, in order, for ingress records the broker will never read: deleted by the
    ingress retention before it read them, or lost with a topic made anew (accepted with ``--accept-gap``).

    It goes through the slot as a batch of its own: one transaction writes its GAP entry to the slot's
    audit chain and commits the slot's offset past the records, together, so auditors see what was skipped
    exactly where the chain passes it, and no later start meets the gap again."""

    offset: int
    """The offset before the partition's first record now: the slot commits ``offset + 1``."""
    timestamp: int
    """When the gap was met (Unix ms), standing in for an append time in the lag figures."""
    skipped: int
    entry: dict[str, Any]


class _Both:
    """Membership in the replay window or either of two pending sets, without copying them."""

    def __init__(self, a: ReplayWindow, b: Container[str], c: Container[str]) -> None:
        self.a, self.b, self.c = a, b, c

    def __contains__(self, item: object) -> bool:
        return item in self.a or item in self.b or item in self.c


class _WakeMain(ClientError):  # type: ignore[misc]
    """What a ``getmany`` waiting on the next assignment raises when a revocation must not let the consumer join
    again: the main loop then stops the consumer, and raises why. (A client error, because aiokafka's own fetch
    task, waiting there too, carries on past those.)"""


class _NameTaken(_WakeMain):
    """The revocation found this worker's ``group.instance.id`` taken (``BrokerWorker._check_name``)."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: BrokerWorker) -> None:
        self.worker = worker

    # aiokafka logs and swallows what a listener raises, and carries on: a slot that failed to
    # load would then be skipped for good, silently. The failure goes to the main loop instead.
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        try:
            await self.worker._release(revoked)
        except Exception as exc:  # noqa: BLE001 - handed to the main loop, which raises it
            self.worker._fail(exc)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        try:
            await self.worker._acquire(assigned)
        except Exception as exc:  # noqa: BLE001 - handed to the main loop, which raises it
            self.worker._fail(exc)



STALLS_LISTED = 3  # stalls a log line spells out; it counts the rest


def _listed(notes: list[StallNote]) -> str:
    """What the stalled slots (or the join) wait for, in one line: the first few spelled out, the rest counted."""
    return _first_few([n.waiting for n in notes], "slot(s)")


def _first_few(items: list[str], noun: str) -> str:
    """``items`` in one line: the first ``STALLS_LISTED`` spelled out, the rest counted as ``noun``."""
    shown = "; ".join(items[:STALLS_LISTED])
    more = len(items) - STALLS_LISTED
    return shown if more <= 0 else f"{shown}; and {more} more {noun}"


def _slots_of(notes: list[StallNote]) -> list[int | str]:
    """The slots the notes name, "join" for the worker's own join."""
    return ["join" if n.slot is None else n.slot for n in notes]


HEALTHY_RUN_S = 60.0
"""How long a run must stay joined, with its slots loaded (its stretches between rebalances summed: ``_stretch``),
for its failure to be the first in a row of the worker's (``Restarts``). Why this long: a restart's own cycle (a
backoff of at most 10 s, a join and a load of a few seconds) is far shorter, so an error every run repeats (the group
coordinator refusing the join, a load whose audit read keeps failing, the consumer failing as soon as it fetches)
recurs well within it and is counted in a row; a worker that then ran for a minute and more was not failing in a row,
and transient errors hours apart (a broker failing over now and then) must not add up to ``max_restarts`` over the
worker's life. A slot's own count is not reset by time: a slot failing every run commits nothing, however long each
run lasts."""


@dataclass
class Restarts:
    """The restart loop's failures in a row (``BrokerWorker.run``), counted for what fails.

    Every failure counts for the worker; one tied to a slot (its loop failed, its transaction was given up) counts
    for that slot too. A slot's count starts again only on evidence that it progressed: it commits an ingress batch
    here (records or a gap's mark: a transaction of feed records alone is no progress), or it is loaded here again
    with its head past where it stood (``done_to``) at its last failure here (``loaded``: another worker took it on).
    A slot that leaves this worker keeps its count, which matters only if it fails again once back. The worker's
    starts again after a run in which any slot committed one, or that stayed joined and loaded for
    ``HEALTHY_RUN_S``. A count past ``limit`` gives up.

    Why per slot: with one count that any commit of the worker reset, a slot failing every run with a retriable
    error, beside a slot committing a batch each run, restarted the worker for ever, every line saying attempt 1.
    Why only the slot's own failures: a load failure, or the consumer's, or the join's, is of no slot; charged to the
    slots being loaded (after a restart, every slot), it added up on a slot with no traffic, which never commits a
    batch, so transient failures days apart stopped a healthy worker. Why not dropped when a slot leaves: in a
    dynamic group a slot failing every run moves to the peer (which fails on it) and back, and its count, dropped at
    each move, never reached ``limit``: both workers restarted for ever."""

    limit: int
    worker: int = 0
    slots: dict[int, int] = field(default_factory=dict)
    stood: dict[int, int | None] = field(default_factory=dict)  # a counted slot's done_to at its last failure

    def failed(self, progressed: Collection[int], failed: Collection[int], healthy: bool = False,
               stood: Mapping[int, int | None] | None = None) -> int:
        """Count a failure of ``failed`` (none: the worker's own), each slot standing at ``stood`` (its ``done_to``;
        missing: unknown), in a run in which ``progressed`` committed an ingress batch, and that was ``healthy``
        (joined and loaded for ``HEALTHY_RUN_S``); the highest count it leaves among the worker's and ``failed``'s."""
        self.worker = 1 if progressed or healthy else self.worker + 1
        for slot in progressed:
            self.slots.pop(slot, None)
            self.stood.pop(slot, None)
        for slot in failed:
            self.slots[slot] = self.slots.get(slot, 0) + 1
            self.stood[slot] = (stood or {}).get(slot)
        return max([self.worker, *(self.slots[slot] for slot in failed)])

    def loaded(self, slot: int, head: int) -> None:
        """``slot`` was loaded here, its head at ``head`` (the offset it reads on from): past where it stood at its
        last failure here, it progressed meanwhile (elsewhere), so its count starts again. At or before it (or with
        no position known at the failure) the count stays: no evidence the slot stopped failing."""
        stood = self.stood.get(slot)
        if slot in self.slots and stood is not None and head > stood:
            del self.slots[slot]
            del self.stood[slot]


class BrokerWorker:
    """One worker of the consumer group. Several share the ingress partitions."""

    def __init__(
        self,
        config: WorkerConfig,
        pipeline: Pipeline,
        sign: Callable[[bytes], bytes],
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.sign = sign
        self.metrics = metrics or Metrics()
        self.names: TopicNames = config.slots.names
        self._owned: dict[TopicPartition, SlotState] = {}
        self._parked: dict[TopicPartition, SlotState] = {}  # revoked by the rebalance under way, producer open
        self._retiring: list[SlotState] = []  # parked and not assigned back: to stop
        self._feeds_counted = False  # ``_count_feeds`` done
        self._lock = asyncio.Lock()
        self._failure: BaseException | None = None  # the first error of a slot's loop, raised by the main loop
        self._joined_at: float | None = None
        self._put_off_at: float | None = None  # the idle exit's first put-off since the last record (``_put_off``)
        self._put_off_warned = float("-inf")  # when ``_put_off`` last warned
        self._stopping = asyncio.Event()
        # A bound on the slot transactions open at once (PUENTE_MAX_CONCURRENT_TXNS): fewer commit
        # sooner and let the slots waiting gather larger batches; more overlap their round trips.
        self._permits = asyncio.Semaphore(config.max_concurrent_txns)
        self._joining = True  # until the group hands this worker its partitions, and again at each rebalance
        self._joins = 0  # joins completed: the join's progress for the stall watch (a slot's is its progress_at)
        self._progressed: set[int] = set()  # slots that committed an ingress batch in the run under way (``run``)
        self._failed_slots: tuple[int, ...] = ()  # the slots ``_failure`` is of (``_fail``)
        self._failed_at: dict[int, int | None] = {}  # where each of them stood then (``done_to``), for ``Restarts``
        self._restarts = Restarts(0)  # the restart loop's counts (``run`` sets the limit)
        self._healthy_s = 0.0  # the run's time joined with its slots loaded, summed, until a failure (``_stretch``)
        self._stall = StallWatch(config.stall_warning_s, time.monotonic())
        self._group: Consumer | None = None  # the group consumer of the run under way, to pause what is loading
        self._loading: asyncio.Task[None] | None = None  # the fresh slots' load of the last assignment
        self._closing = False  # the run is ending: an assignment still completing loads nothing
        # Every member id this process has held in the group (a static member's previous run stays
        # listed under its name until it joins again), and why it stops if another consumer took its
        # group.instance.id (``_name_taken``).
        self._members: set[str] = set()
        self._taken: str | None = None

    def _fail(self, exc: BaseException, slots: Collection[int] = ()) -> None:
        """Record the first failure of a slot or a rebalance, and the slots it is of (none: the worker's own, its
        consumer or its join); the main loop raises it, and ``run`` counts it against those slots (``Restarts``)."""
        if self._failure is None:
            self._stretch()  # before the failure is recorded: the run's healthy stretch ends here
            self._failure = exc
            self._failed_slots = tuple(slots)
            states = (*self._owned.values(), *self._parked.values(), *self._retiring)
            self._failed_at = {state.slot: state.done_to for state in states if state.slot in self._failed_slots}

    def _stretch(self) -> None:
        """End the run's stretch joined with its slots loaded (``_joined_at``): at a failure, a rebalance, or the run's
        end, whichever comes first. ``_healthy_s`` sums the run's stretches, which ``run`` judges by ``HEALTHY_RUN_S``
        (each is added once: a rebalance sets ``_joining`` and a failure ``_failure``, and the next join a new
        ``_joined_at``). Summed, not the longest: a group rebalancing every 50 s (a peer flapping, autoscaling) never
        gave a stretch of 60 s, so a worker joined for hours counted transient errors an hour apart in a row."""
        if self._failure is None and not self._joining and self._joined_at is not None:
            self._healthy_s += time.monotonic() - self._joined_at

    # ---- partition ownership ---------------------------------------------------------
    async def _acquire(self, assigned: list[TopicPartition]) -> None:
        """Take the slots a rebalance assigns here: those parked by its revocation are kept as they
        are; the fresh ones are loaded by a task of their own (``_load``), their partitions paused
        until then.

        aiokafka sends no heartbeat while a rebalance listener runs, and loading a slot (its producer
        fencing the previous owner, its audit and lifecycle state read back) takes seconds on a busy
        machine: done here, a load longer than the session timeout had the group drop this worker
        as it finished, and another rebalance followed (the chaos test saw such cascades). Returning
        at once keeps the worker's heartbeats going while it loads; a revocation waits for the load.
        """
        await self._loaded()  # (aiokafka revokes between two assignments, which waits too; this makes sure)
        self._note_member()
        async with self._lock:
            began = time.monotonic()
            fresh = []
            kept = self._unpark(assigned)
            await self._retire_leftovers()
            for tp in assigned:
                if tp in self._owned:
                    continue
                slot = self.config.slots.slot(tp.topic, tp.partition)
                if slot is None:
                    raise ConfigError(
                        f"{tp.topic}[{tp.partition}] is beyond the {self.config.slots.partitions} ingress partitions "
                        "the settings give: the broker and the topics disagree (PUENTE_INGRESS_PARTITIONS)"
                    )
                fresh.append((tp, slot))
            if self._closing:
                return  # a join the stopping consumer completed: whoever owns these slots next loads them
            if not fresh:
                self._joined(kept, 0, began, {})
                return
            if self._group is not None:
                self._group.pause(*(tp for tp, _ in fresh))  # nothing fetched for a slot until it is loaded
            self._loading = asyncio.create_task(self._load(fresh, kept, began))

    async def _load(self, fresh: list[tuple[TopicPartition, int]], kept: int, began: float) -> None:
        """Start each fresh slot's producer, read its state back, then hand the slots their records.

        Bounded by ``load_timeout_s``: the group goes on counting a loading worker as alive (its
        heartbeats run), so a load that hung would hold its slots paused for good; past the bound it
        fails as a retriable Kafka error, and the worker starts again. Any failure is the main loop's.
        """
        took: dict[str, float] = {}
        # By slot, as each starts: a load that fails or is cancelled (the bound, a taken name) while
        # others still fence stops those that had started, which a gather's lost results would not.
        producers: dict[int, Producer] = {}

        async def start_producer(slot: int) -> None:
            producers[slot] = await self._producer(slot)

        async def load() -> tuple[dict[int, tuple[ChainHead, ReplayWindow]], dict[int, LifecycleBook],
                                  dict[int, tuple[list[Unsent], int]], dict[TopicPartition, int | None],
                                  dict[TopicPartition, str], dict[int, str], dict[TopicPartition, tuple[str, str]],
                                  dict[int, str]]:
            # Reading every fresh slot's audit (then lifecycle, then ingress) partitions at once: a fetch brings at
            # most the largest batch of each (an outbox entry in the lifecycle topic holds a sealed view, up to
            # 1 MiB), all of them whole (``fetch_total``); smaller limits cut such a batch and stopped the load.
            # A fetch reaching a partition's end long-polled 500 ms (the default) for nothing, twice
            # per load (audit, then lifecycle): half the stall a rebalance or restart cost a slot.
            audit = reader(self.config.conn, f"{self.config.client_id}-audit", partition_fetch_bytes=MAX_BATCH_BYTES,
                           fetch_bytes=fetch_total(len(fresh)), wait_ms=20)
            async with running(audit, self.config.conn, "reading the slots' audit partitions"):
                # Producers start first: each fences the slot's previous owner, whose open
                # transaction is aborted or, if its commit got in first, committed. Only then is
                # the slot's audit partition (which only the slot's producer writes) settled, and
                # its chain head and replay window read back whole.
                started = await asyncio.gather(*(start_producer(slot) for _, slot in fresh), return_exceptions=True)
                for outcome in started:
                    if isinstance(outcome, BaseException):
                        raise outcome
                took["producers_s"] = time.monotonic() - began
                offsets = await self._committed_now([tp for tp, _ in fresh])
                states = await self._read_state(audit, [slot for _, slot in fresh],
                                                {slot: offsets.get(tp) for tp, slot in fresh})
                books, read_back = await self._read_books(audit, [slot for _, slot in fresh])
                expired = await self._check_empty_slots(audit, fresh, states, offsets, books)
                took["audit_s"] = time.monotonic() - began - sum(took.values())
                lost = await self._check_books(audit, states)
                remade = await self._remade_ingress(audit, fresh, states)
                unsent, gone = await self._place_unsent(producers, read_back)
                for tp, slot in fresh:
                    if slot in gone and (tp in remade or slot in lost or tp in expired):
                        raise FeedGapError(f"{gone[slot]}; and the slot lost more at the same time (its ingress "
                                           "topic or its audit): make the feed again first")
                took["lifecycle_s"] = time.monotonic() - began - sum(took.values())
                unsent_marked = {slot: (unsent[slot], len(read_back[slot])) for slot in read_back}
                return states, books, unsent_marked, offsets, remade, lost, expired, gone

        try:
            try:
                async with asyncio.timeout(self.config.load_timeout_s):
                    states, books, unsent, offsets, remade, lost, expired, gone = await load()
            except TimeoutError:
                raise KafkaUnavailableError(
                    f"loading {len(fresh)} slot(s) (their producers, audit and lifecycle state) took longer than "
                    f"{self.config.load_timeout_s:g}s; the worker starts again") from None
            async with self._lock:
                # Not installed when the worker is stopping or starting again: the producers stop below.
                if not self._closing and self._failure is None:
                    for tp, slot in fresh:  # the slots own their producers now
                        head, seen = states[slot]
                        chain = ChainWriter(self.names.decisions, slot, head,
                                            keep_days=self.config.audit_retention_days)
                        state = SlotState(tp, slot, producers.pop(slot), chain, seen, books[slot],
                                          states=head.states, unsent=unsent[slot][0], marked=unsent[slot][1])
                        self._start_slot(state, head.resume, offsets.get(tp))
                        self._owned[tp] = state
                        if self._group is not None:
                            self._mark_losses(self._group, state, head.resume, remade.get(tp), lost.get(slot),
                                              expired.get(tp), head.resume_ms)
                            if slot in gone:
                                self._states_lost(self._group, state, head.resume, gone[slot], "deliveries-lost",
                                                  head.resume_ms)
                            self._send_unsent(self._group, state)
                    if self._group is not None:
                        self._group.resume(*(tp for tp, _ in fresh))
                    self._joined(kept, len(fresh), began, took)
        except BaseException as exc:  # noqa: BLE001 - handed to the main loop, which raises it
            # The worker's, not the fresh slots': after a restart every slot is fresh, and one with no traffic never
            # commits the batch that would start its count again (``Restarts``).
            self._fail(exc)
        finally:
            for made in producers.values():
                await stop_client(made)

    def _joined(self, kept: int, loaded: int, began: float, took: dict[str, float]) -> None:
        self._joined_at = time.monotonic()  # the idle clock of --exit-when-idle starts at a join
        self._joining = False
        self._joins += 1
        # How long taking the fresh slots took, by step: the part of a rebalance's stall the worker owns.
        log.info("partitions assigned", owned=sorted(f"{t.topic}[{t.partition}]" for t in self._owned),
                 kept=kept, loaded=loaded, took_s=round(time.monotonic() - began, 3),
                 **{k: round(v, 3) for k, v in took.items()})

    async def _loaded(self) -> None:
        """Wait for a load under way (its failure is already recorded for the main loop)."""
        loading, self._loading = self._loading, None
        if loading is not None:
            await asyncio.gather(loading, return_exceptions=True)

    async def _retire_all(self, group: Consumer | None = None) -> None:
        """Every slot finishes its transaction in flight (commits or aborts) and stops; queued records
        wait for the next owner. With ``group``, the positions reached are committed to it first."""
        async with self._lock:
            if group is not None:
                owned = list(self._owned.values())
                await self._settle(*owned)
                await self._commit_positions(group, owned, COMMIT_WAIT_S)
            for tp in [*self._owned, *self._parked]:
                self.metrics.forget(tp.topic, tp.partition)  # a restart may never get it back: no frozen lag
            self._retiring.extend([*self._owned.values(), *self._parked.values()])
            self._owned.clear()
            self._parked.clear()
            await self._retire_leftovers()

    def _unpark(self, assigned: list[TopicPartition]) -> int:
        """Take back the slots parked by this rebalance's revocation that it assigns here again; the
        others are retired (see ``_release``). Returns how many were kept.

        A kept slot's producer, chain head, replay window and alert states are exactly what it
        committed: its last transaction finished before it was parked, and none failed (a failure
        anywhere retires every parked slot, and the worker starts again). Its partition starts
        where the slot knows it committed up to: the offset aiokafka fetches for the new assignment
        trails it (see ``_start_slot``), and the batch would be read again as replays. Had another worker owned
        the slot meanwhile (this worker dropped from the group and back), that owner's producer,
        started with the slot's transactional id, fenced this one: its next transaction is refused
        before it writes anything, and the worker starts again, reading every slot back from Kafka.
        """
        parked, self._parked = self._parked, {}
        kept = 0
        if self._failure is None:
            for tp in assigned:
                state = parked.get(tp)
                if state is not None and state.loss is None:
                    # A slot whose loss (alert states lost, an ingress topic made anew) no block records yet had its
                    # mark dropped unsent: it is not kept, but loaded again, which finds the loss again.
                    del parked[tp]
                    state.paused = False  # a new assignment starts unpaused
                    state.progress_at = state.taken_at = time.monotonic()
                    if state.done_to is not None:
                        # Where its last commit left it: a gap's mark queued but dropped by the revocation
                        # had moved ``next_offset`` past records no block names (``_accept_gap``); read
                        # from here, the gap is met again and recorded.
                        state.next_offset = state.done_to
                    if state.next_offset is not None and self._group is not None:
                        self._group.seek(tp, state.next_offset)
                    self._owned[tp] = state
                    if self._group is not None:
                        self._send_unsent(self._group, state)
                    kept += 1
        self._retiring.extend(parked.values())
        return kept

    async def _read_state(self, consumer: Consumer, slots: list[int], committed: dict[int, int | None],
                          ) -> dict[int, tuple[ChainHead, ReplayWindow]]:
        """Each slot's chain head and replay window, from its audit partition. The head must be the
        slot's own and no older than its ``committed`` ingress offset (``slot_mismatch``,
        ``head_behind``).

        The window needs the ids of alerts appended to the ingress partition within the window
        before the newest one processed; their blocks were written no earlier than those
        append times, so reading the audit partition from that time (less the clock skew
        allowed) finds them all.

        A head signed by an older generation of the broker's key than one held here is continued only if no
        newer one signed a block before it (a retired key in use, a leaked one say, is not continued). Where to
        look for those is never taken from the head: a forged one claims whatever ingress time it likes, and
        would move the window's read past every block its successors signed. Each generation signs only blocks
        appended after it was made, and the decisions topic stamps Kafka's append time, which no key holder
        chooses (checked at start), so the read starts no later than the first block appended once the earliest
        of the head's successors was made, less the clock skew allowed (``_successors_from``); from the
        partition's start when one's making time is unknown. A block in that read naming a newer key than the
        head's refuses the slot once its signature verifies; the record just before the head is checked so in
        ``_verified_head`` too. What this costs at a start: nothing more in the common case, a head the newest key
        signed; for a head an older one signed (the first start after a rotation, once per slot), the blocks
        appended since the new key was made, at most the days between making it and restarting the workers,
        usually within the window's read anyway. Blocks read back before the window's own start are checked
        for their keys and seqs only: their ids are not held, so memory stays the window's.
        """
        tps = {slot: TopicPartition(self.names.decisions, slot) for slot in slots}
        last = await last_records(consumer, list(tps.values()))
        heads = {tp: self._verified_head(tp, rec, before) for tp, (before, rec) in last.items()}
        for slot, tp in tps.items():
            problem = slot_mismatch(heads[tp], slot, self.config.slots)
            if problem is not None:
                raise ConfigError(f"audit partition {tp.topic}[{tp.partition}] {problem}")
            problem = head_behind(heads[tp], committed.get(slot)) or head_ahead(heads[tp], time.time() * 1000)
            if problem is not None:
                raise AuditChainError(
                    f"audit partition {tp.topic}[{tp.partition}] cannot be continued: its last block {problem}. "
                    "Run `puente audit verify`")
        windows = {slot: ReplayWindow(self.config.replay_window_days) for slot in slots}
        since: dict[TopicPartition, int] = {}
        for slot, tp in tps.items():
            latest = _latest_ingress_ms(heads[tp])
            if latest is not None:
                windows[slot].advance(latest)
                since[tp] = max(0, windows[slot].cutoff() - MAX_FUTURE_SKEW_MS)
        starts = {}
        if since:
            found = await consumer.offsets_for_times(since)
            starts = {tp: (hit.offset if hit is not None else -1) for tp, hit in found.items()}
            starts = {tp: off for tp, off in starts.items() if off >= 0}
        window_from = dict(starts)  # the window's own read: the ids of the blocks from there on are noted
        newer_keys = {tp: self._newer_keys(heads[tp]) for tp in tps.values()}
        for tp, off in (await self._successors_from(consumer, newer_keys)).items():
            starts[tp] = min(off, starts.get(tp, off))
        by_tp = {tp: windows[slot] for slot, tp in tps.items()}
        # The blocks read back are not checked one by one (``_verified_head``): none may move a window past
        # its verified head's newest append time, or one forged far ahead would prune every genuine id.
        ceiling = {tp: _latest_ingress_ms(heads[tp]) or 0 for tp in tps.values()}
        newer: dict[TopicPartition, Record] = {}  # a block read back signed (verified) by a newer key than the head
        # A record before the head naming its seq or a later one: the head is not the chain's newest block (one
        # written again after it, with its predecessor too, which ``_follows`` cannot tell from the chain's own).
        head_at = {tp: (rec.offset, int((heads[tp] or {}).get("seq", 0))) for tp, (_, rec) in last.items()
                   if rec is not None}
        ahead: dict[TopicPartition, Record] = {}

        def remember(rec: Record) -> None:  # parsed as it arrives: the audit is never held in memory
            tp = TopicPartition(rec.topic, rec.partition)
            start = window_from.get(tp)
            window = by_tp[tp] if start is not None and rec.offset >= start else None
            signer, seq = remember_block(window, rec.value, ceiling[tp])
            at = head_at.get(tp)
            if seq is not None and at is not None and rec.offset < at[0] and seq >= at[1] and tp not in ahead:
                ahead[tp] = rec
            # A block naming a newer key than the head's is checked as it comes (rare: only a retired key's head
            # meets one), until one verifies: one that merely names the key must not hide the genuine ones.
            if (signer is not None and tp not in newer and signer in newer_keys[tp]
                    and head_problem(tp.topic, tp.partition, rec.value, None, self.config.verify) is None):
                newer[tp] = rec

        wanted = [tp for tp in tps.values() if tp in starts]
        if wanted:
            await read_many(consumer, wanted, starts=starts, each=remember)
        for tp, rec in ahead.items():
            raise AuditChainError(
                f"audit partition {tp.topic}[{tp.partition}] cannot be continued: a record before its last block "
                f"(offset {rec.offset}) names the same seq or a later one: an older block was written again after "
                "the chain's newest, or the chain forks. The broker will not sign over it; run `puente audit verify`")
        for tp, rec in newer.items():
            # A newer key signed a block before the head, which an older key signed: a retired one signed on.
            retired = (heads[tp] or {}).get("signer")
            raise AuditChainError(
                f"audit partition {tp.topic}[{tp.partition}] cannot be continued: its last block is signed by "
                f"{retired}, a key its chain had moved on from (a newer generation signed the block at offset "
                f"{rec.offset}): a retired key in use. The broker will not sign over it; run `puente audit verify` "
                "(a key rolled back on purpose needs a new generation instead: `puente keys generate --generation`)")
        loaded = 0
        for window in windows.values():
            window.prune()
            loaded += len(window)
        if loaded:
            log.info("replay windows loaded", slots=len(slots), alert_ids=loaded)
        # The head's record's append time, Kafka's (the decisions topic is checked to keep it at start), dates
        # the block for ``_remade_ingress`` better than the time the block states, the worker's clock.
        appended = {tp: None if rec is None else rec.appended_ms for tp, (_, rec) in last.items()}
        return {slot: (ChainHead.after(heads[tp], appended.get(tp)), windows[slot]) for slot, tp in tps.items()}

    def _newer_keys(self, head: dict[str, Any] | None) -> frozenset[str]:
        """The generations of the broker's key held here newer than the one that signed ``head``
        (``newer_generation``): none for a head the newest signed, the common case."""
        signer = (head or {}).get("signer")
        if not isinstance(signer, str):
            return frozenset()
        held = self.config.generations
        return frozenset(key for key in held if newer_generation(key, signer, held))

    async def _successors_from(self, consumer: Consumer, newer: dict[TopicPartition, frozenset[str]],
                               ) -> dict[TopicPartition, int]:
        """Where each audit partition whose head an older generation signed is read from, to meet every block
        the newer ones (``newer``) signed: its first block appended once the earliest of them was made, less
        the clock skew allowed (Kafka's append times, never a time a block states); its start when one's
        making time is unknown. A partition with no block appended since is left out: no newer key signed it."""
        made = self.config.generations_made
        times: dict[TopicPartition, int] = {}
        out: dict[TopicPartition, int] = {}
        for tp, keys in newer.items():
            known = [made.get(key) for key in keys]
            if not known:
                continue
            if None in known:
                out[tp] = 0
            else:
                times[tp] = max(0, min(m for m in known if m is not None) - MAX_FUTURE_SKEW_MS)
        if times:
            found = await consumer.offsets_for_times(times)
            out.update({tp: hit.offset for tp, hit in found.items() if hit is not None})
        return out

    async def _committed_now(self, tps: list[TopicPartition]) -> dict[TopicPartition, int | None]:
        """Each fresh slot's offset committed to the group, asked now: after the slots' producers fenced
        the previous owner, so nothing it commits later moves it (a commit of a member that left is
        refused). Only checked against the head (``head_behind``, ``_check_empty_slots``): where a slot
        reads on from is its head's (``_start_slot``)."""
        group = self._group
        if group is None or not tps:
            return {}
        found = await asyncio.gather(*(group.committed(tp) for tp in tps))
        return dict(zip(tps, found, strict=True))

    def _start_slot(self, state: SlotState, resume: int | None, committed: int | None) -> None:
        """Set a freshly loaded slot's partition to where its audit head says it stands.

        The head's last block took the records up to ``resume`` - 1 in the same transaction as their
        decisions' outbox entries (``resume_offset``); the group's committed offset trails it (``COMMIT_EVERY_S``),
        so it is used only for a partition with no block (None or 0, or a chain retention deleted whole:
        ``_check_empty_slots``), and from offset 0 when there is neither, where ``_gap`` meets any records
        retention deleted first. aiokafka may still set the position it fetched for the assignment (the committed one,
        older) after this seek: ``_dispatch`` drops the records before ``next_offset``, so a record the
        head took is never taken twice."""
        start = resume if resume is not None else (committed or 0)
        state.next_offset = state.done_to = start
        state.group_has = committed
        self._restarts.loaded(state.slot, start)  # moved past its last failure here: it progressed elsewhere
        group = self._group
        if group is not None and state.tp in group.assignment():
            group.seek(state.tp, start)

    async def _check_empty_slots(self, consumer: Consumer, fresh: list[tuple[TopicPartition, int]],
                                 states: dict[int, tuple[ChainHead, ReplayWindow]],
                                 offsets: dict[TopicPartition, int | None],
                                 books: Mapping[int, LifecycleBook] | None = None,
                                 ) -> dict[TopicPartition, tuple[str, str]]:
        """The fresh slots whose audit partition holds no block while their ingress partition has a committed
        offset, each with what happened, once told apart by where the partition's log starts.

        At 0 the partition never held a record: the slot's history is in another slot's partitions (the agency
        list changed, and an agency moved onto slots that never held records), and loading it empty would forget
        every alert state and replay id it had: ConfigError. (``slot_mismatch`` catches a move onto slots with
        records.) Above 0 it held blocks, and retention deleted them all: a slot idle longer than the audit's
        retention. That refusal blocked every later start, --accept-gap or not. The slot then reads on from its
        committed offset with a new chain, whose first block is a GAP entry saying so (``_states_lost``, reason
        ``audit-expired``; ``audit-deleted`` for one ``_decided_within_retention`` shows deleted, read on with
        ``accept_gaps``): its ingress records up to that offset were decided by the blocks retention deleted,
        and ``audit verify`` vouches for a partition from where its log starts. Its replay window starts empty:
        the slot's newest block was older than the audit's retention, which is longer than the window (the
        topic plan). (A move onto a slot whose own chain expired cannot be told from this; its blocks would be
        gone either way.)

        A slot's offsets are committed to the group only after the transaction of the block that took those
        records committed, and the slot's producer fenced the previous owner before ``offsets`` and the audit
        were read: a committed offset above 0 therefore means the slot's own partition held blocks."""
        suspects = {tp: slot for tp, slot in fresh if states[slot][0].seq == 0 and offsets.get(tp)}
        if not suspects:
            return {}
        audit = {tp: TopicPartition(self.names.decisions, slot) for tp, slot in suspects.items()}
        starts = await consumer.beginning_offsets(list(audit.values()))
        expired: dict[TopicPartition, tuple[str, str]] = {}
        for tp, slot in sorted(suspects.items()):
            committed, start = offsets[tp], starts[audit[tp]]
            if not start:
                raise ConfigError(
                    f"audit partition {self.names.decisions}[{slot}] is empty, but {tp.topic}:{tp.partition} has "
                    f"committed offset {committed}: its decisions are in another slot's partition; {SLOT_ORDER}")
            book = books.get(slot) if books is not None else None
            deleted = await self._decided_within_retention(consumer, tp, committed or 0,
                                                           book.newest_ms if book is not None else None)
            if deleted is not None:
                what = (f"audit partition {self.names.decisions}[{slot}] holds no block (its log starts at offset "
                        f"{start}), but {deleted}: its blocks were deleted, or expired under a shorter retention than "
                        "today's (PUENTE_AUDIT_RETENTION_DAYS raised since, the ingress topic keeping records longer)")
                if not self.config.accept_gaps:
                    raise FeedGapError(f"{what}. Nothing was read: restore the decisions topic, or run `puente "
                                       "broker run --accept-gap` to begin a new chain there, recording this in it")
                log.warning("audit chain deleted; a new chain starts (--accept-gap)",
                            partition=f"{self.names.decisions}[{slot}]", log_start=start,
                            ingress=f"{tp.topic}:{tp.partition}", offset=committed)
                expired[tp] = (f"{what}; a new chain starts at committed offset {committed} (--accept-gap)",
                               "audit-deleted")
                continue
            log.warning("audit chain expired; a new chain starts", partition=f"{self.names.decisions}[{slot}]",
                        log_start=start, ingress=f"{tp.topic}:{tp.partition}", offset=committed)
            expired[tp] = (f"audit partition {self.names.decisions}[{slot}] held no block: retention deleted its "
                           f"chain (its log starts at offset {start}), {tp.topic}:{tp.partition} standing at "
                           f"committed offset {committed}; a new chain starts there", "audit-expired")
        return expired

    async def _decided_within_retention(self, consumer: Consumer, tp: TopicPartition, committed: int,
                                        state_ms: int | None = None) -> str | None:
        """What shows that a slot's blocks, all gone, were deleted rather than expired, or None: the last ingress
        record the slot took before ``committed`` (read raw, never looked up by time), appended since the audit's
        retention could take the block that decided it (``Retention.since`` by ``audit_retention_days``): that
        block was appended after it, so it cannot have expired, unless the retention was shorter when it did (raised
        since, while the ingress topic keeps records longer than the shorter one): the refusal says both, and
        ``--accept-gap`` reads on. With that record gone too (the ingress topic keeps records a week, the audit
        years: a slot idle since), the slot's newest alert state (``state_ms``, when its lifecycle partition's
        newest held state was written) stands witness the same way: states are written in the transaction of the
        block that decided them, and the lifecycle topic keeps them no longer than the audit keeps blocks. Neither
        held, or no retention known, tells nothing: retention is taken at its word. On a decisions topic kept for
        ever (``audit_kept_forever``) nothing expired, so the blocks were deleted, whatever is held: refused, or read
        on with ``accept_gaps`` as a deletion, never recorded as retention's doing."""
        if self.config.audit_kept_forever and committed > 0:
            return "the decisions topic keeps its records for ever (retention.ms -1, or the most Kafka takes)"
        days = self.config.audit_retention_days
        if days is None or committed <= 0:
            return None
        since = Retention.now(days).since(days)
        if state_ms is not None and state_ms >= since:
            return (f"the slot's lifecycle partition still holds an alert state written at {_iso_ms(state_ms)} by "
                    f"the transaction of a block deciding it, within the audit's retention ({days:,} days)")
        rec = await record_at(consumer, tp, committed - 1) or await last_before(consumer, tp, committed)
        if rec is None or rec.appended_ms is None or rec.unreadable is not None:
            return None
        if rec.appended_ms < since:
            return None
        return (f"{tp.topic}:{tp.partition} still holds offset {rec.offset}, which it decided, appended at "
                f"{_iso_ms(rec.appended_ms)}, within the audit's retention ({days:,} days)")

    async def _read_books(self, consumer: Consumer, slots: list[int],
                          ) -> tuple[dict[int, LifecycleBook], dict[int, list[Unsent]]]:
        """Each slot's alert states and its unsent feed records (``broker.lifecycle.Outbox``), from its partition of
        the lifecycle topic, read back whole (compacted: about one record per alert it remembers). Only the slot's
        producer writes there, and it has fenced the previous owner, so what is committed is all there is."""
        retention_ms = int(self.pipeline.lifecycle_retention.total_seconds() * 1000)
        books = {slot: LifecycleBook(retention_ms) for slot in slots}
        tps = {TopicPartition(self.names.lifecycle, slot): slot for slot in slots}
        outboxes = {slot: Outbox(f"lifecycle partition {tp.topic}[{tp.partition}]", self.names.feeds)
                    for tp, slot in tps.items()}

        def load(rec: Record) -> None:
            slot = tps[TopicPartition(rec.topic, rec.partition)]
            outboxes[slot].take(rec.key, rec.value, rec.headers)
            if not is_outbox(rec.key):
                books[slot].load(rec.key, rec.value, rec.timestamp_ms)

        await read_many(consumer, list(tps), starts=dict.fromkeys(tps, 0), each=load)
        loaded = sum(len(book) for book in books.values())
        if loaded:
            log.info("lifecycle states loaded", slots=len(slots), alerts=loaded)
        unsent = {slot: outbox.unsent for slot, outbox in outboxes.items()}
        if any(unsent.values()):
            log.info("unsent feed records found", slots=sum(map(bool, unsent.values())),
                     count=sum(map(len, unsent.values())))
        return books, unsent

    async def _place_unsent(self, producers: dict[int, Producer], unsent: dict[int, list[Unsent]],
                            ) -> tuple[dict[int, list[Unsent]], dict[int, str]]:
        """Each slot's unsent feed records read back (``_read_books``), placed as Kafka holds their feeds now, with
        what was lost per slot. A record placed under more partitions than its feed has now (the feed made anew
        with fewer, its old records gone) goes where a record of the alert decided now would (``Pipeline._feed_count``
        takes the count now): its key's partition under that count, or the slot's for an alert fed by slot. Where
        it was placed is read, not guessed: a partition the new count still has may be another than the key's now,
        and the alert's later records, there, would overtake it. (An entry of an earlier release says no count:
        moved by its key only when its partition is gone.) One for a feed Kafka no longer holds (its partner left
        the policy, the topic
        deleted) can never be written: FeedGapError, naming the feed, unless ``accept_gaps``, which drops it, logged,
        and the slot's chain records it (a ``deliveries-lost`` GAP entry). Before, each owner of the slot in turn
        failed to send them, until the whole group had stopped."""
        topics = {sent.topic for records in unsent.values() for sent in records}
        if not topics:
            return unsent, {}
        counts = await feed_counts_now(next(iter(producers.values())), topics)
        placed: dict[int, list[Unsent]] = {}
        gone: dict[int, str] = {}
        for slot, records in unsent.items():
            kept: list[Unsent] = []
            dropped: Counter[str] = Counter()
            for sent in records:
                count = counts[sent.topic]
                if not count:
                    dropped[sent.topic] += 1
                    continue
                if sent.placed > count or (not sent.placed and sent.partition >= count):
                    log.warning("unsent feed record placed anew: its feed has fewer partitions now", topic=sent.topic,
                                partition=sent.partition, count=count)
                    partition = slot % count if sent.by_slot else feed_partition(sent.key, count)
                    sent = sent._replace(partition=partition, placed=count)
                kept.append(sent)
            placed[slot] = kept
            if dropped:
                what = (f"lifecycle partition {self.names.lifecycle}[{slot}] holds {sum(dropped.values())} feed "
                        f"record(s) decided, committed and not yet written, for {', '.join(sorted(dropped))}, "
                        "which Kafka no longer holds")
                if not self.config.accept_gaps:
                    raise FeedGapError(f"{what}. Nothing was read: make the feed again (`puente topics apply`, while "
                                       "its partner is in the policy), or run `puente broker run --accept-gap` to "
                                       "read on without them, recorded in the slot's audit chain")
                log.warning("unsent feed records dropped: their feed is gone (--accept-gap)",
                            topic=", ".join(sorted(dropped)), partition=slot, count=sum(dropped.values()))
                gone[slot] = f"{what}: dropped with --accept-gap"
        return placed, gone

    async def _check_books(self, consumer: Consumer,
                           states: dict[int, tuple[ChainHead, ReplayWindow]]) -> dict[int, str]:
        """Refuse a slot whose lifecycle partition ends before the offset its last block says it reached at least
        (``ChainHead.states``): the topic was made anew or emptied, and the states it held (who holds which
        version of each alert) are gone, so a recall would reach no one and an update pull nothing back. Read
        on only with ``accept_gaps``, logged, the slot's count set back to what the partition holds (its next
        block carries the lower count) and the loss recorded in the slot's audit chain: the slots read on so,
        each with what was lost (``_states_lost``). ``audit verify`` flags a fall no GAP entry records
        (``states_fall``)."""
        lost: dict[int, str] = {}
        tps = {TopicPartition(self.names.lifecycle, slot): head for slot, (head, _) in states.items() if head.states}
        if not tps:
            return lost
        ends = await consumer.end_offsets(list(tps))
        for tp, head in sorted(tps.items()):
            end = ends[tp]
            if end >= head.states:
                continue
            what = (f"lifecycle partition {tp.topic}[{tp.partition}] ends at offset {end}, but the slot's audit "
                    f"says it reached {head.states}: the topic was made anew or emptied, and the alert states it "
                    "held (who holds which version of each alert) are gone, with any feed records its last "
                    "transaction left unsent")
            if not self.config.accept_gaps:
                raise FeedGapError(f"{what}. Nothing was read: restore the topic, or run `puente broker run "
                                   "--accept-gap` to read on (recalls and updates of the alerts it held then reach "
                                   "no partner, and the unsent deliveries never reach theirs)")
            log.warning("lifecycle states lost; reading on (--accept-gap)", topic=tp.topic, partition=tp.partition,
                        offset=end)
            lost[tp.partition] = f"{what}; read on with --accept-gap"
            head.states = end
        return lost

    def _mark_losses(self, group: Consumer, state: SlotState, resume: int | None, remade: str | None,
                     states_lost: str | None, expired: tuple[str, str] | None = None,
                     resume_ms: int | None = None) -> None:
        """Record in a fresh slot's chain, first in its queue, what its load accepted as lost (``accept_gaps``): an
        ingress topic made anew (``_remade_ingress``: a gap, read from the new topic's first record), its alert
        states (``_check_books``), or both, in one entry: a mark of its own for the states, first, would leave
        the slot busy, and the gap unread and unrecorded. ``resume_ms``: the head's ``ChainHead.resume_ms``, which
        an entry recording states lost carries on."""
        if remade is not None and resume is not None:
            self._accept_gap(group, state.tp, resume, 0, remade, states_lost)
        elif states_lost is not None:
            self._states_lost(group, state, resume, states_lost, taken_ms=resume_ms)
        elif expired is not None:  # no head, so neither of the others (both read the head)
            self._states_lost(group, state, state.next_offset, *expired)  # what, and audit-expired or -deleted

    def _states_lost(self, group: Consumer, state: SlotState, resume: int | None, what: str,
                     reason: str = "states-lost", taken_ms: int | None = None) -> None:
        """Queue, first in a fresh slot's queue, a GAP entry recording alert states lost and read past with
        ``accept_gaps`` (``_check_books``): auditors then see in the slot's chain where recalls and updates of
        the alerts it held stopped reaching partners. It skips no ingress record: its transaction commits the
        offset the slot stands at; at 0 (its head a gap at a topic made anew) it names no record, as that gap
        does (``resume_offset`` reads both so). A slot whose audit holds no block has no state to lose.

        ``taken_ms``, where known: when Kafka appended the record it names (the last the slot took), which its
        ``ingress_ms`` (the slot's newest, for the replay window) is not. The entry carries it so that a head it
        ends is checked for a topic made anew by that record's own time, as one ending with that record's entry
        was (``_remade_ingress``)."""
        if resume is None:
            return
        state.loss = what
        now = datetime.now(UTC)
        entry: dict[str, Any] = {"kind": "GAP", "reason": reason, "detail": what, "from_offset": resume,
                                 "next_offset": resume, "skipped": 0, "at": now.isoformat().replace("+00:00", "Z")}
        if resume > 0:
            entry["ingress"] = f"{state.tp.topic}:{state.tp.partition}:{resume - 1}"
            if taken_ms is not None:
                entry["taken_ms"] = taken_ms
        if state.seen.latest:
            entry["ingress_ms"] = state.seen.latest
        self._enqueue(group, state, [GapMark(resume - 1, int(now.timestamp() * 1000), 0, entry)])

    async def _remade_ingress(self, consumer: Consumer, fresh: list[tuple[TopicPartition, int]],
                              states: dict[int, tuple[ChainHead, ReplayWindow]]) -> dict[TopicPartition, str]:
        """The fresh slots whose ingress topic was made anew and filled again past where their head stands, each
        with what happened: the record the head took last is no longer at its offset (another is), so reading on
        from there would pass every record of the new topic before it in silence, neither decided nor recorded.
        FeedGapError unless ``accept_gaps``, which records a gap and reads the new topic from its first record
        (the caller: ``_accept_gap``).

        Every head standing past offset 0 is checked, none skipped, and only what the broker itself decided is
        looked up by time: a lookup landing on a batch it refused unread (perhaps compressed) may have a Kafka
        node inflate it whole to answer. A record gone with retention, or a partition that ends before where
        the head stands (the gap ``_gap`` meets), is no finding here.

        - A head whose entry gives the append time of the record it took last (``ChainHead.resume_ms``) is
          checked by that exact time (``_taken_elsewhere``).
        - A gap read on from where the partition's log started (``ChainHead.resume_by_ms`` 0) asks no time: a
          log's start never moves back, so one starting below where the head stands now is another log.
        - Any other (an unreadable batch's dead letter, an audit-expired gap, a gap of an earlier release) has the
          record before where it stands read itself, never inflated (``_appended_since``).
        - A head giving no time at all cannot be told from one at a topic made anew, and --accept-gap would read
          a topic that was not from its first record again: refused either way, naming what to check."""
        heads = {tp: (slot, head) for tp, slot in fresh if (head := states[slot][0]).resume}
        if not heads:
            return {}
        exact = {tp: head.resume_ms for tp, (_, head) in heads.items() if head.resume_ms is not None}
        at_start = [tp for tp, (_, head) in heads.items() if head.resume_ms is None and head.resume_by_ms == 0]
        # One request of each kind for every slot. For an exact time, the record the head took (or one of the
        # same millisecond before it) answers in the common case; only an answer at another time, at or before
        # it, needs the record itself read.
        hits = await consumer.offsets_for_times(exact) if exact else {}
        starts = await consumer.beginning_offsets(at_start) if at_start else {}
        found: dict[TopicPartition, str] = {}
        for tp in sorted(heads):
            slot, head = heads[tp]
            resume = head.resume or 0
            if tp in exact:
                how = await self._taken_elsewhere(consumer, tp, resume - 1, exact[tp], hits.get(tp))
            elif tp in starts:
                how = None if starts[tp] >= resume else (
                    f"its log starts at offset {starts[tp]} now, below offset {resume}, where the broker stands and "
                    "where the log started when the broker's audit read past the records before it; a log's start "
                    "never moves back")
            elif head.resume_by_ms is not None:
                how = await self._appended_since(consumer, tp, resume - 1, head.resume_by_ms)
            else:
                raise FeedGapError(
                    f"{tp.topic}[{tp.partition}] cannot be told from a topic made anew: the broker's last audit "
                    f"block there ({self.names.decisions}[{slot}]) states no time and Kafka gives none for it, so "
                    f"nothing dates the records before offset {resume}, where the broker stands. --accept-gap does "
                    "not read past this: it would read the topic from its first record again if it was not made "
                    f"anew. Check that {self.names.decisions} keeps Kafka's append time (`puente topics apply`) and "
                    "run `puente audit verify`")
            if how is None:
                continue
            what = (f"{tp.topic}[{tp.partition}] was made anew: {how}, so the records of the new topic before where "
                    "the broker stands were never read")
            if not self.config.accept_gaps:
                raise FeedGapError(f"{what}. Nothing was skipped: run `puente broker run --accept-gap` to read the "
                                   "new topic from its first record, recording the gap in the audit")
            found[tp] = what
        return found

    @staticmethod
    async def _taken_elsewhere(consumer: Consumer, tp: TopicPartition, at: int, ms: int, hit: Any) -> str | None:
        """How the record at offset ``at``, which a slot's head took when Kafka appended it at ``ms``, is another
        now, or None: ``hit`` is the partition's first record appended at or after ``ms`` (``offsets_for_times``)."""
        if hit is None or hit.offset > at or hit.timestamp == ms:
            return None  # gone with retention (or nothing since), or the record the head took
        rec = await record_at(consumer, tp, at)
        if (inside := _inside_unread(rec, at)) is not None:
            return inside
        if rec is None or not rec.append_time or rec.timestamp_ms == ms:
            return None  # gone, or a time its producer chose: nothing to compare
        return f"the record at offset {at}, the last the broker took, is another now (appended at another time)"

    @staticmethod
    async def _appended_since(consumer: Consumer, tp: TopicPartition, at: int, block_ms: int) -> str | None:
        """How the record at offset ``at``, the last before where a slot's head stands, is of a topic made anew, or
        None, for a head whose entries give no time of that record: ``block_ms`` is when the head's block was
        appended (``ChainHead.resume_by_ms``), after every record it follows. The record is read itself
        (``record_at`` reads batches raw, and a compressed one comes back unread), never looked up by time.

        Appended later than the block by more than Kafka nodes' clocks are allowed to differ
        (``MAX_FUTURE_SKEW_MS``, as the replay window and the audit's key rotation allow: the ingress partition's
        leader may run ahead of the decisions partition's), it came after the slot stood there. A topic made anew
        and refilled within that hour of the block is not told so."""
        rec = await record_at(consumer, tp, at)
        if (inside := _inside_unread(rec, at)) is not None:
            return inside
        if rec is None:
            # No committed record there: gone with retention, or a transaction's marker or an aborted record of a
            # topic made anew by a transactional producer. The last committed record before it says which.
            rec = await last_before(consumer, tp, at + 1)
        appended = None if rec is None else rec.appended_ms
        if rec is None or appended is None or appended <= block_ms + MAX_FUTURE_SKEW_MS:
            return None  # gone (retention, or the partition ends before it), a producer's time, or no later
        late_min = (appended - block_ms) // 60_000
        return (f"the record at offset {rec.offset}, the last before where the broker stands, was appended at "
                f"{_iso_ms(appended)}, {late_min} minutes after the broker's audit block standing there "
                f"({_iso_ms(block_ms)}): later than Kafka nodes' clocks may differ "
                f"({MAX_FUTURE_SKEW_MS // 60_000} minutes)")

    def _verified_head(self, tp: TopicPartition, rec: Record | None,
                       before: Record | None = None) -> dict[str, Any] | None:
        """The last record of a slot's audit partition, once it is known to be the broker's own.

        A chain is never extended past a record its owner did not sign: signing the next block
        would vouch for whatever someone else wrote there. (Older blocks read back for the replay
        window are not checked one by one: a forged one could only make the broker refuse an id
        as a replay, which is a dead letter, never a delivery, or, naming the head's seq or a later
        one, stop the slot (``_read_state``): refused, never continued. Its times count no later than
        this head's newest append time, so it cannot push the window on, and an id keeps the latest
        time any block gives it, so an early time cannot have it forgotten: the genuine ids stay.
        Only the broker's login may write the partition.)

        The record before the head is the one block read back that is checked: signed by a newer generation
        of the broker's key than the head (``newer_generation``), with a signature that verifies, it shows
        the head signed by a key the chain had moved on from, whatever time the head claims. (A newer key
        merely named stops nothing: anyone who may write the topic can name one. ``_read_state`` looks
        further back.)
        """
        if rec is None:
            return None
        problem = head_problem(tp.topic, tp.partition, rec.value, None, self.config.verify,
                               self.config.generations or None)
        if problem is not None:
            raise AuditChainError(
                f"audit partition {tp.topic}[{tp.partition}] cannot be continued: {problem}. The broker "
                "will not sign over a record it did not write; run `puente audit verify`")
        head: dict[str, Any] = orjson.loads(rec.value)
        if before is not None and not _follows(head, before.value):
            # Signed by the broker, but not where it was written: a genuine older block appended again (by whoever
            # holds the broker's login) would have the slot read its records again, and the chain fork there.
            raise AuditChainError(
                f"audit partition {tp.topic}[{tp.partition}] cannot be continued: its last block (offset {rec.offset}, "
                f"seq {head.get('seq')}) does not follow the record before it (offset {before.offset}): an older "
                "block was written again after the head, or the chain forks. The broker will not sign over it; run "
                "`puente audit verify`")
        if before is not None:
            self._refuse_retired(tp, head, before)
        return head

    def _refuse_retired(self, tp: TopicPartition, head: dict[str, Any], before: Record) -> None:
        """AuditChainError when ``before``, the record just before the verified ``head``, is signed (verifiably)
        by a newer generation of the broker's key than the head."""
        try:
            prior = orjson.loads(before.value).get("signer")
        except (ValueError, AttributeError):
            return
        signer = head.get("signer")
        if (not isinstance(prior, str) or not isinstance(signer, str)
                or not newer_generation(prior, signer, self.config.generations)
                or head_problem(tp.topic, tp.partition, before.value, None, self.config.verify) is not None):
            return
        raise AuditChainError(
            f"audit partition {tp.topic}[{tp.partition}] cannot be continued: its last block is signed by "
            f"{signer[:80]}, a key its chain had moved on from (a newer generation, {prior[:80]}, signed the block "
            f"before it at offset {before.offset}): a retired key in use. The broker will not sign over it; run "
            "`puente audit verify` (a key rolled back on purpose needs a new generation instead: "
            "`puente keys generate --generation`)")

    async def _producer(self, slot: int) -> Producer:
        made = producer(
            self.config.conn, f"{self.config.client_id}-slot{slot}",
            transactional_id=f"{self.config.group_id}-slot-{slot}",
            enable_idempotence=True,
            acks="all",
            # No linger: a batch's records are all queued before the transaction yields, so they
            # fill their batches anyway; with 5 ms each transaction waited about 20 ms more (the
            # sender lingers on the partitions added, then on the records), doubling latency.
            linger_ms=0,
            max_batch_size=256 * 1024,
            # A produce request that meets the transaction coordinator mid-change is refused
            # (NOT_ENOUGH_REPLICAS) and retried after this wait: aiokafka's 100 ms was the p99 tail.
            retry_backoff_ms=self.config.retry_backoff_ms,
        )
        # init_transactions: fences a previous owner of this slot
        return await start(made, self.config.conn, f"starting slot {slot}'s transactional producer")

    async def _release(self, revoked: list[TopicPartition]) -> None:
        # Waiting for the slot's transaction in flight means its last block is committed by its
        # owner before another worker takes the slot, and its position then goes to the group.
        # Records queued but not yet in a transaction are dropped: the next owner reads them
        # again from where that block leaves the slot. The slot is then
        # parked, producer open: if the assignment that follows gives it back, it is kept as it is
        # (``_unpark``), with no new producer and no audit read back; else it is retired then.
        log.info("partitions revoked", count=len(revoked))
        self._note_member()  # still valid in an ordinary rebalance; "" after a reset
        await self._check_name()
        await self._loaded()  # slots still loading are taken first, then parked like the others
        self._stretch()
        self._joining = True
        async with self._lock:
            settled = []
            for tp in revoked:
                state = self._owned.pop(tp, None)
                if state is not None:
                    self._parked[tp] = state
                    settled.append(state)
                self.metrics.forget(tp.topic, tp.partition)
            await self._settle(*settled)
            if self._group is not None:  # still this generation's: the next owner sees where they stand
                await self._commit_positions(self._group, settled, COMMIT_WAIT_S)
            await self._retire_leftovers()
        group = self._group
        if self._failure is not None and group is not None:
            # A slot given up (``_settle``), or any failure meanwhile: the worker starts again with a consumer of
            # its own making (or stops, its name taken). A static member's consumer must not join again meanwhile:
            # its join would take its name back from whoever holds it now. (A dynamic one's may: holding it would
            # also keep it from leaving the group, and the others would wait out its session.)
            wake_group_waiters(group, _WakeMain())
            if self.config.group_instance_id is not None:
                await hold_rebalance(group)

    def _note_member(self) -> None:
        """Remember the group's member id for this worker, as the consumer holds it now (``_name_taken``
        counts every id this process held as its own). Taken at each assignment, each revocation
        and each watch, so that no id this process was given goes unrecorded for long."""
        if self._group is not None and self.config.group_instance_id is not None:
            member = membership(self._group)[1]
            if member:
                self._members.add(member)

    async def _check_name(self) -> None:
        """A static member that the coordinator no longer counts as one: its session ran out (it
        joins again), or another consumer joined under its ``group.instance.id`` and took its place.

        Two live workers with one name would take the slots from each other without end, each
        join fencing the other's producers: never a duplicate delivery, but never settled either.
        Kafka's rule for static members is that the newer one stays and the older one stops, which
        is what happens here (``_name_taken``): this worker stops, with an error naming the other,
        and does not join again (a join would take the name back and make the other stop in turn):
        the revocation wakes the main loop (``_NameTaken``), drops a slot load under way (its
        producers would fence the other's), and holds the rebalance until the consumer is stopped,
        then lets its join fail without a request (``hold_rebalance``). The same check runs before a
        restart after a Kafka error (``run``): the other's producers fencing this worker's slots
        may be what it heard of first.
        """
        group = self._group
        if group is None or not self._members or membership(group)[0] >= 0:
            return  # (no member id noted: a dynamic member, or not a member yet)
        taken = await self._name_taken()
        if taken is None:
            return
        wake_group_waiters(group, _NameTaken(taken))
        if self._loading is not None:
            self._loading.cancel()
        await hold_rebalance(group)

    async def _name_taken(self) -> str | None:
        """Why this worker must stop, if a consumer that is not this process holds its
        ``group.instance.id`` (also kept in ``_taken``); None when nobody does, this process does,
        it is not a static member, or Kafka cannot be asked (it then carries on as before)."""
        name = self.config.group_instance_id
        if name is None or not self._members:
            return None  # a process that has not been a member yet is never taking its own place
        try:  # bounded: a restart while Kafka is out of reach must not wait the admin client's timeouts
            async with asyncio.timeout(NAME_CHECK_S):
                holder = await instance_holder(self.config.conn, self.config.group_id, name)
        except (KafkaError, TimeoutError) as exc:
            log.warning("could not check who holds this worker's group.instance.id",
                        error=str(exc)[:300] or f"no answer within {NAME_CHECK_S:g}s")
            return None
        if holder is None or holder[0] in self._members:
            return None
        self._taken = (
            f"another consumer ({holder[1][:120]}) joined group {self.config.group_id} as group.instance.id "
            f"{name} and took this worker's place: each worker needs its own --group-instance-id "
            "(PUENTE_GROUP_INSTANCE_ID); this one stops")
        return self._taken

    async def _retire_leftovers(self) -> None:
        retiring, self._retiring = self._retiring, []
        for state in retiring:
            await self._retire(state)

    async def _settle(self, *states: SlotState) -> None:
        """Drop what is queued and let the transactions in flight finish (commit or fail), for at most one
        ``settle_wait_s`` for all of them: a transaction still open then is given up, its slot's loop cancelled
        and forgotten (``task`` None: retiring the slot then only stops its producer), and the worker's failure
        recorded, so that it starts again (or stops, when another worker took its name). Exactly once holds
        either way: the slot's next owner fences this producer, which aborts or completes the transaction on
        Kafka's side, before it reads where the slot stands."""
        tasks = {}
        for state in states:
            state.queue.clear()
            state.gaps_queued = 0
            state.arrived.set()  # a wait for a batch to carry its feed records ends: no batch is coming
            if state.task is not None:
                tasks[state.task] = state
        if not tasks:
            return
        wait_s = self.settle_wait_s
        _, pending = await asyncio.wait(tasks, timeout=wait_s)
        if not pending:
            return  # their failures, if any, are already recorded
        why = "the worker stops" if self._stopping.is_set() else "the slot being handed over; the worker starts again"
        for task in pending:
            state = tasks[task]
            log.warning("slot transaction did not end; given up", topic=state.tp.topic, partition=state.tp.partition,
                        waited_s=wait_s)
            self._fail(KafkaUnavailableError(
                f"slot {state.slot} ({state.tp.topic}[{state.tp.partition}]): its transaction did not end within "
                f"{wait_s:g}s of {why}"), [state.slot])
            task.cancel()
            state.task = None  # given up: its abort may hang as its commit did
        await asyncio.wait(pending, timeout=5.0)

    @property
    def settle_wait_s(self) -> float:
        """``SETTLE_WAIT_S``, or longer where a request to Kafka may take longer (``PUENTE_KAFKA_TIMEOUT_S``): a
        commit still retrying within its request's timeout is not given up."""
        return max(SETTLE_WAIT_S, max(self.config.conn.timeout_s, 30.0) + 10.0)

    async def _retire(self, state: SlotState) -> None:
        await self._settle(state)
        with contextlib.suppress(TimeoutError):  # a producer whose transaction was given up may hang
            async with asyncio.timeout(self.settle_wait_s):
                await stop_client(state.producer)

    # ---- the loop ----------------------------------------------------------------
    def stop(self) -> None:
        """Ask the worker to finish its batch in flight and stop (what SIGTERM does): a slot waiting for a batch to
        carry its feed records writes them at once."""
        self._stopping.set()
        for state in self._owned.values():
            state.arrived.set()

    async def run(self, topics: list[str], *, idle_exit_s: float | None = None, max_restarts: int = 5) -> None:
        """Consume until stopped; with ``idle_exit_s``, also stop once caught up with every assigned partition and
        quiet for ``idle_exit_s`` seconds: no record fetched and no slot busy for that long (counted from the later
        of the last record and the last join of the group), and then, asked of Kafka at that moment, every record
        committed to each partition assigned here processed (``_caught_up``). Quiet alone is not enough: on a loaded
        machine a fetch can take longer than the quiet time, and the worker would stop with records unread. Not
        caught up, or Kafka not answering the question, it goes on, and asks again after another quiet period; put
        off that way for ``PUT_OFF_WARN_S``, it warns, naming why, once per ``PUT_OFF_WARN_S`` (``_put_off``).

        A retriable Kafka error (a fenced producer after a rebalance, a broker failing over, Kafka
        out of reach for a while) aborts the transaction in flight; the worker then leaves the
        group (a static member keeps its place: its new consumer takes it back under the same
        ``group.instance.id``, with the same slots), drops every slot and starts again where each
        slot's audit head stands, reloading each slot's state from Kafka. After ``max_restarts`` such
        failures in a row it gives up and raises: in a row for what fails (``Restarts``), so that one slot failing
        every run is not hidden by the others' commits: a slot's count grows with each failure of its own and
        starts again when that slot commits an ingress batch, or is loaded here again with its head moved past
        where it stood at that failure; the worker's grows with every
        failure, and starts again after a run in which a slot committed one or that stayed joined and loaded for
        ``HEALTHY_RUN_S``. Each warning names the failure's slots and the count (``attempt``).
        An error that trying again cannot mend (refused credentials or access, a chain it will not
        extend, bad configuration) is raised at once.
        """
        # The policy set, keys, codecs and caches built so far live as long as the process: keep
        # them out of the garbage collector's scans, which otherwise grow with them.
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        tune_transactions()
        restarts = self._restarts = Restarts(max_restarts)
        while True:
            self._progressed, self._healthy_s = set(), 0.0
            try:
                await self._run_once(topics, idle_exit_s)
                return
            except (ClientError, KafkaError) as exc:
                # Another consumer under this name: its producers fence this worker's slots, and its
                # join fences this one (aiokafka has no name for FENCED_INSTANCE_ID: an unknown error).
                # Joining again would take the name back.
                if self._taken is not None or (not self._stopping.is_set() and await self._name_taken()):
                    raise ConfigError(str(self._taken)) from None
                error = exc if isinstance(exc, KafkaError) else translate(exc, self.config.conn, "routing alerts")
                if not error.retriable or self._stopping.is_set():
                    raise error from exc
                failed = self._failed_slots if exc is self._failure else ()
                count = restarts.failed(self._progressed, failed, self._healthy_s >= HEALTHY_RUN_S, self._failed_at)
                slots = {"slots": list(failed)} if failed else {}
                if count > restarts.limit:  # the warnings before named the slots and their count
                    raise error from exc
                log.warning("worker restarting after a Kafka error", error=str(error)[:300], attempt=count, **slots)
                await asyncio.sleep(min(10.0, 0.5 * 2**count))

    async def _run_once(self, topics: list[str], idle_exit_s: float | None) -> None:
        group = consumer(
            self.config.conn, self.config.client_id,
            group_id=self.config.group_id,
            enable_auto_commit=False,
            # No reset: a partition without a committed offset is read from its start, and one whose
            # next record retention deleted stops the worker (``_gap``), never skipped in silence.
            auto_offset_reset="none",
            isolation_level="read_committed",
            max_poll_records=self.config.max_batch,
            # Prefetch is memory: at most the largest batch an ingress topic takes per partition (less would
            # cut one: a 1 MiB alert stopped every worker that took its partition), and in all what every slot's
            # partition may bring at once (``fetch_total``), so the answer's total cuts no batch either.
            max_partition_fetch_bytes=MAX_BATCH_BYTES,
            fetch_max_bytes=fetch_total(self.config.slots.count),
            # A partition resumed after a pause joins the next fetch, which waits for the one in flight:
            # with the default 500 ms long poll over empty partitions, the CPU sat idle that long. With
            # one byte, at a steady rate every fetch came back with a record or two (settings module).
            fetch_max_wait_ms=self.config.fetch_max_wait_ms,
            fetch_min_bytes=self.config.fetch_min_bytes,
            # A worker that dies silently holds its slots this long; its heartbeats also tell it of a
            # rebalance, so the others rejoin within one interval.
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=self.config.heartbeat_interval_ms,
            # A static member that restarts within its session rejoins without a rebalance: the
            # coordinator hands it the slots it held, and the other workers keep theirs untouched.
            group_instance_id=self.config.group_instance_id,
        )
        self._failure, self._failed_slots, self._failed_at = None, (), {}
        self._joined_at = None
        self._joining = True
        await start(group, self.config.conn, f"joining the broker group {self.config.group_id}")
        idle_since = time.monotonic()
        asked_at = 0.0  # when the idle exit last asked whether the worker was caught up: a quiet period each time
        too_large = TooLarge(f"routing alerts in the broker group {self.config.group_id}")
        watcher: asyncio.Task[None] | None = None
        committer: asyncio.Task[None] | None = None
        try:
            # Know every topic's partitions before joining, or the first join sees some topics
            # without partitions and a second rebalance follows at once.
            await group.topics()
            self._group = group
            group.subscribe(topics, listener=_Rebalance(self))
            watcher = asyncio.create_task(self._watch_every(group))
            committer = asyncio.create_task(self._commit_every(group))
            gathering = True  # as the consumer was made (``fetch_max_wait_ms``, ``fetch_min_bytes``)
            while not self._stopping.is_set() and self._taken is None:
                if self._failure is not None:
                    raise self._failure
                try:
                    batch = await group.getmany(timeout_ms=100, max_records=self.config.max_batch)
                except _WakeMain:
                    break  # raised below, once the consumer has stopped
                except NoCommittedOffset as exc:
                    # Never committed in: read from offset 0, not "the beginning", which is past whatever
                    # retention deleted; so such records meet ``_gap`` too, never skipped in silence.
                    for tp in exc.args:
                        if tp in group.assignment():  # revoked meanwhile: its new owner reads it
                            # A slot loaded meanwhile stands where its head says (``_start_slot``).
                            state = self._owned.get(tp)
                            group.seek(tp, state.next_offset if state is not None and state.next_offset is not None
                                       else 0)
                    continue
                except OffsetOutOfRange as exc:
                    await self._gap(group, exc.args[0])
                    continue
                except RecordTooLarge as exc:
                    # A batch Kafka sent cut (a topic taking batches over the fetch limit, or more partitions on a
                    # node than the fetch's total covers): aiokafka has moved the position one record past its
                    # start. Read again from there, never on (``TooLarge``): the worker stops, naming the setting
                    # to check, if it keeps coming cut. Nothing was dispatched of it, so nothing commits past it.
                    too_large.seek_back(group, exc)
                    continue
                too_large.took_batch(batch)  # a cut now behind is forgotten: met again later, it counts from none
                if batch:
                    idle_since = time.monotonic()
                    self._put_off_at = None
                    async with self._lock:  # a join in progress finishes loading the slots first
                        self._dispatch(group, batch)
                elif any(state.busy for state in self._owned.values()):
                    idle_since = time.monotonic()
                elif (idle_exit_s is not None and self._joined_at is not None
                      and time.monotonic() - max(idle_since, self._joined_at, asked_at) > idle_exit_s):
                    if await self._caught_up(group):
                        break
                    asked_at = time.monotonic()
                if gathering == (not batch and time.monotonic() - idle_since > QUIET_AFTER_S):
                    gathering = not gathering  # quiet now, or records again after a quiet spell
                    self._fetching(group, gathering)
        finally:
            self._stretch()  # (a failure raised here, by the consumer, is recorded by none)
            if watcher is not None:
                watcher.cancel()
            if committer is not None:
                committer.cancel()
                await asyncio.gather(committer, return_exceptions=True)
            # Stopping the consumer may complete a join under way, whose assignment must load nothing.
            self._closing = True
            await self._loaded()
            await self._retire_all(group)
            await stop_client(group)  # a stray CancelledError of its fetch tasks would replace the error raised
            await self._loaded()
            await self._retire_all()  # whatever that last join handed back
            self._group = None
            self._closing = False
        if self._taken is not None:  # whatever else failed meanwhile, this is why the worker stops
            raise ConfigError(self._taken)
        if self._failure is not None:
            raise self._failure

    async def _caught_up(self, group: Consumer) -> bool:
        """Whether this worker has processed every record committed to each partition assigned to it, as Kafka
        answers now: the idle exit's second condition (``run``). False while a rebalance or a load is under way,
        a slot is busy (records queued, a transaction or its feed records in flight), a partition's end is past
        where its slot stands, or Kafka does not answer within ``CAUGHT_UP_WAIT_S`` (logged, never raised: the
        worker goes on).

        The ends are the last stable offsets: the group consumer reads ``read_committed``, and aiokafka asks for its
        partitions' ends at its own isolation level, so a transaction still open on an ingress partition holds its
        end where the worker can read to. A slot stands (``SlotState.stands``) at the offset after the last record a
        committed transaction of it took (``done_to``), or at the consumer's position if that is further (past
        transaction markers and aborted records, which no batch takes). The ingress topics are all the group
        consumer reads: a slot's audit and lifecycle partitions are read back whole before it is loaded."""
        if self._joining or (self._loading is not None and not self._loading.done()):
            return False
        assigned = sorted(group.assignment())
        if any(tp not in self._owned or self._owned[tp].busy for tp in assigned):
            return False
        try:
            ends = await self._ends_unless_stopped(group, assigned)
        except Exception as exc:  # noqa: BLE001 - not knowing is not caught up: the worker goes on and asks again
            self._put_off("idle exit put off: the partitions' ends not known", count=len(assigned),
                          error=f"{type(exc).__name__}: {exc}"[:300])
            return False
        if ends is None or self._joining or sorted(group.assignment()) != assigned:
            return False  # a rebalance meanwhile: the ends asked are of partitions no longer all this worker's
        behind = {}
        for tp in assigned:
            state = self._owned.get(tp)
            if state is None or state.busy:
                return False
            stands = state.stands(state.done_to, fetch_view(group, tp)) or 0
            if (lag := ends.get(tp, stands + 1) - stands) > 0:
                behind[tp] = lag
        if behind:
            listed = _first_few([f"{tp.topic}[{tp.partition}]: {lag} behind" for tp, lag in behind.items()],
                                "partition(s)")
            self._put_off("idle exit put off: records not processed yet", lag=sum(behind.values()),
                          count=len(assigned), waiting_for=listed)
        return not behind

    def _put_off(self, event: str, **fields: Any) -> None:
        """Log why the idle exit is put off (``_caught_up``), at each quiet deadline: a note, or a warning once it
        has been put off ``PUT_OFF_WARN_S`` (counted from its first put-off since the worker's last record), at most
        once per ``PUT_OFF_WARN_S``. Each says how long it has been put off (``waited_s``)."""
        now = time.monotonic()
        if self._put_off_at is None:
            self._put_off_at = now
        waited = now - self._put_off_at
        if waited >= PUT_OFF_WARN_S and now - self._put_off_warned >= PUT_OFF_WARN_S:
            self._put_off_warned = now
            log.warning(event, waited_s=round(waited, 1), **fields)
        else:
            log.info(event, waited_s=round(waited, 1), **fields)

    async def _ends_unless_stopped(self, group: Consumer, tps: list[TopicPartition],
                                   ) -> dict[TopicPartition, int] | None:
        """Kafka's end of each of ``tps`` (``_caught_up``), or None once the worker is asked to stop: a stop never
        waits for the answer, nor is taken for being caught up. TimeoutError past ``CAUGHT_UP_WAIT_S``."""
        ask = asyncio.ensure_future(group.end_offsets(tps))
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait((ask, stop), timeout=CAUGHT_UP_WAIT_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (ask, stop):
                if not task.done():
                    task.cancel()
                elif not task.cancelled():
                    task.exception()  # seen here, never "never retrieved" (an answer failing as the stop came)
        if self._stopping.is_set():
            return None
        if not ask.done() or ask.cancelled():
            raise TimeoutError(f"Kafka did not answer within {CAUGHT_UP_WAIT_S:g}s")
        ends: dict[TopicPartition, int] = ask.result()
        return ends

    def _fetching(self, group: Consumer, gathering: bool) -> None:
        """Set how the group consumer's next fetches wait: gathering records while they come (the settings), or a
        long poll answered at the first byte once the worker is quiet (``QUIET_FETCH_WAIT_MS``)."""
        if gathering:
            set_fetching(group, max_wait_ms=self.config.fetch_max_wait_ms, min_bytes=self.config.fetch_min_bytes)
        else:
            set_fetching(group, max_wait_ms=max(self.config.fetch_max_wait_ms, QUIET_FETCH_WAIT_MS), min_bytes=1)

    async def _gap(self, group: Consumer, positions: dict[TopicPartition, int]) -> None:
        """The ingress no longer holds the record this worker would read next (retention deleted it before
        the broker read it, or the topic was made anew): FeedGapError, unless ``accept_gaps``, which reads
        on from the partition's first record, logs what was skipped and records it in the slot's audit chain
        (``GapMark``). Kafka's own reset would skip those alerts in silence: neither decided, nor withheld,
        nor dead-lettered, and no auditor told.

        Nothing is committed here: a slot moves past records only with the audit block of the records it
        passes (``head_behind`` refuses a chain that ends short of them). The mark's own transaction writes
        the GAP entry and moves the offset past the gap together (``_accept_gap``)."""
        # An error the fetcher kept may be of a partition revoked since: its new owner meets the gap.
        positions = {tp: at for tp, at in positions.items() if tp in group.assignment()}
        if not positions:
            return
        starts = await group.beginning_offsets(list(positions))
        for tp, at in sorted(positions.items()):
            start = starts[tp]
            what = (f"records {at}-{start - 1} of {tp.topic}[{tp.partition}] were deleted (the ingress retention) "
                    "before the broker read them" if at < start else
                    f"{tp.topic}[{tp.partition}] ends before offset {at}, where the broker stands: the topic was "
                    "made anew, and what it held before is gone")
            if not self.config.accept_gaps:
                raise FeedGapError(f"{what}; their alerts were never decided. Nothing was skipped: have the agency "
                                   "publish them again, or run `puente broker run --accept-gap` to read on from the "
                                   "first record the topic holds (until an alert after the gap is decided, each "
                                   "start meets it again)")
            async with self._lock:  # a join in progress finishes loading (or releasing) the slots first
                self._accept_gap(group, tp, at, start, what)

    def _accept_gap(self, group: Consumer, tp: TopicPartition, at: int, start: int, what: str,
                    states_lost: str | None = None) -> None:
        """Queue a gap's mark for its slot and read on past it, only if the slot still stands where the fetcher
        met the gap: owned, idle (what it read before has committed) and expecting offset ``at`` next. A slot
        released and kept while the offsets were asked has dropped its queue and been set back to its last
        commit: a mark committing ``start`` then would pass records never decided. Anything else is left for
        the fetcher to raise again, from wherever the slot stands then. ``states_lost``: the slot's alert states
        were lost too (``_check_books``), said in the same entry."""
        state = self._owned.get(tp)
        if (tp not in group.assignment() or state is None or state.busy
                or state.next_offset not in (None, at)):
            return
        if states_lost is not None or at > start:
            state.loss = states_lost or what  # until its block commits (``_unpark``)
        if at > start:
            # Offsets go back (the topic was made anew): the new records sit below what was committed, which
            # ``_dispatch`` would drop as read already.
            state.next_offset = start
        skipped = max(0, start - at)
        log.warning("ingress records skipped (--accept-gap)", topic=tp.topic, partition=tp.partition,
                    offset=start, count=skipped, problem=what)
        now = datetime.now(UTC)
        entry: dict[str, Any] = {"kind": "GAP", "reason": "deleted" if at < start else "topic-remade",
                                 "detail": what, "from_offset": at, "next_offset": start, "skipped": skipped,
                                 "at": now.isoformat().replace("+00:00", "Z")}
        if states_lost is not None:
            entry["states_lost"] = states_lost
        if start > 0:  # the chain then ends at the last record skipped: the slot reads on after it (``resume_offset``)
            entry["ingress"] = f"{tp.topic}:{tp.partition}:{start - 1}"
        # The slot's newest append time, so that a new owner whose chain ends with this block still reads the
        # replay window back (``_latest_ingress_ms``); the slot is idle, so every record it took is in ``seen``.
        if state.seen.latest:
            entry["ingress_ms"] = state.seen.latest
        self._enqueue(group, state, [GapMark(start - 1, int(now.timestamp() * 1000), skipped, entry)])
        group.seek(tp, start)

    async def _commit_every(self, group: Consumer) -> None:
        """Every ``COMMIT_EVERY_S``, the owned slots' positions to the group, where they moved; each commit
        bounded (``COMMIT_EVERY_WAIT_S``), so one that cannot go through is logged, not waited on unseen."""
        try:
            while True:
                await asyncio.sleep(COMMIT_EVERY_S)
                await self._commit_positions(group, list(self._owned.values()), COMMIT_EVERY_WAIT_S)
        except Exception as exc:  # noqa: BLE001 - handed to the main loop, which raises it
            self._fail(exc)

    async def _commit_positions(self, group: Consumer, states: list[SlotState], wait_s: float) -> None:
        """Commit to the group the offset each of ``states`` stands at (``done_to``), where it moved since
        its last commit. Not in a transaction, and not needed for exactly once (the audit head is where a
        slot stands): a commit refused (a rebalance under way, a member that left the group, Kafka out of
        reach) is logged and left to the next one, or to the slot's next owner. Skipped after a failure:
        whatever the worker holds then may be fenced."""
        if self._failure is not None:
            return
        assigned = group.assignment()
        due = {state.tp: state.done_to for state in states
               if state.done_to is not None and state.done_to != state.group_has and state.tp in assigned}
        if not due:
            return
        try:
            async with asyncio.timeout(wait_s):
                await group.commit({tp: OffsetAndMetadata(at, "") for tp, at in due.items()})
        except (ClientError, TimeoutError) as exc:
            log.info("positions not committed to the group; the next commit carries them",
                     count=len(due), error=type(exc).__name__)
            return
        for state in states:
            if state.tp in due and state.done_to == due[state.tp]:
                state.group_has = due[state.tp]

    async def _watch_every(self, consumer: Consumer) -> None:
        """Every ``LAG_EVERY_S``, whatever the main loop is doing: the lag, and the stall watch."""
        while True:
            await asyncio.sleep(LAG_EVERY_S)
            try:
                self._watch(consumer)
            except Exception as exc:  # noqa: BLE001 - watching must never stop the worker; say so once
                log.warning("worker lag and stall watch stopped", error=f"{type(exc).__name__}: {exc}"[:300])
                return

    def _watch(self, consumer: Consumer) -> None:
        """Each owned partition's lag, then whether a slot, or the worker's join, has stalled (``broker.stall``).

        Each slot is watched on its own clock (its last commit): another slot's commits never hide a slot
        whose transaction or records wait. A stalled slot is named in ``waiting_for``.

        Lag: committed records not processed yet (up to the last stable offset: the worker reads
        read_committed), and how long the oldest of them has waited (since its Kafka timestamp when
        it is queued here, else since the slot last committed or was taken). It is read from the
        consumer's own state, so it also moves when no fetch returns: a stall shows as seconds growing. A slot caught
        up when Kafka stopped answering shows none behind; its fetch age shows the silence (``_lag``).
        """
        self._note_member()
        now = time.monotonic()
        wall = time.time()
        slots: list[SlotView] = []
        for tp, state in self._owned.items():
            seen = fetch_view(consumer, tp)
            behind, answered = self._lag(tp, state, seen, now, wall)
            slots.append(SlotView(state.slot, state.progress_at, state.txn_began, state.busy, len(state.queue),
                                  behind, answered))
        notes = self._stall.observe(now, WorkerView(self._joining, self._joins, slots))
        # One line of each kind per look, however many slots it names: when Kafka is out of reach every slot
        # stalls at once, and a line per slot per interval would bury everything else in the log.
        if moving := [n for n in notes if n.recovered]:
            log.warning("worker moving again", stalled_s=round(max(n.stalled_s for n in moving), 1),
                        was_waiting_for=_listed(moving), slots=_slots_of(moving), group=self.config.group_id,
                        client=self.config.client_id)
        if stalled := [n for n in notes if not n.recovered]:
            log.warning("worker stalled", waiting_for=_listed(stalled),
                        stalled_s=round(max(n.stalled_s for n in stalled), 1), slots=_slots_of(stalled),
                        group=self.config.group_id, client=self.config.client_id)

    def _lag(self, tp: TopicPartition, state: SlotState, seen: FetchView | None, now: float,
             wall: float) -> tuple[int, float | None]:
        """Report one slot's lag and fetch age to the metrics; (records behind, when Kafka last answered a fetch
        for it on the monotonic clock), (0, None) when the consumer knows neither yet.

        The records behind are counted to the partition's end as the last answered fetch gave it: when Kafka stops
        answering a slot caught up, they stay 0 however long. The fetch age (``puente_consumer_fetch_age_seconds``,
        seconds since that answer, or since the slot was taken before any) is what shows such a silence, as the
        stall watch sees it (``broker.stall``)."""
        if seen is None:
            return 0, None
        answered = None if seen.answered_at is None else now - (wall - seen.answered_at)
        # A partition paused for backpressure is not fetched (aiokafka), so no answer is due: 0 while paused, and
        # counted from its resumption after, or a busy slot would show as one Kafka stopped answering.
        since = max(state.taken_at if answered is None else answered, state.resumed_at or 0.0)
        self.metrics.fetch_age(tp.topic, tp.partition, 0.0 if state.paused else max(0.0, now - since))
        if seen.end is None:
            return 0, None
        done_to = state.stands(state.next_offset, seen)
        if done_to is None:
            return 0, answered
        behind = max(0, seen.end - done_to)
        if not behind:
            waited = 0.0
        elif state.queue:
            waited = max(0.0, wall - state.queue[0].timestamp / 1000)
        else:
            waited = now - state.progress_at
        self.metrics.lag(tp.topic, tp.partition, behind, waited)
        return behind, answered

    @property
    def ready(self) -> bool:
        """Joined its group and holding its slots, and not stopping: what ``/readyz`` reports."""
        return (self._joined_at is not None and not self._stopping.is_set() and self._failure is None
                and self._taken is None)

    def _dispatch(self, consumer: Consumer, batch: dict[TopicPartition, list[Any]]) -> None:
        """Hand fetched records to their slots; each slot runs its own transactions, one at a time.

        Slots work side by side, so one slot's commit round trips overlap the others' processing.
        A slot with a full batch queued behind the one in flight has its partition paused: that
        bounds memory, and Kafka keeps the rest.
        """
        for tp, msgs in batch.items():
            state = self._owned.get(tp)
            if state is None:
                # Revoked since the fetch: its next owner reads these again. Still assigned but not
                # yet loaded: read them again once it is.
                if tp in consumer.assignment():
                    consumer.seek(tp, msgs[0].offset)
                continue
            if state.next_offset is None:
                state.next_offset = msgs[0].offset
            elif msgs[0].offset < state.next_offset:
                # Committed by this slot already (a position fetched before that commit showed): never twice.
                msgs = [msg for msg in msgs if msg.offset >= state.next_offset]
                if not msgs:
                    continue
            self._enqueue(consumer, state, msgs)

    def _enqueue(self, consumer: Consumer, state: SlotState, msgs: list[Any]) -> None:
        """Queue records (or a ``GapMark``) for a slot, and start its loop if it has none running."""
        if len(msgs) == 1 and type(msgs[0]) is GapMark:
            state.gaps_queued += 1
        state.queue.extend(msgs)
        state.arrived.set()
        if len(state.queue) >= self.config.max_batch and not state.paused:
            consumer.pause(state.tp)
            state.paused = True
        self._run_slot(consumer, state)

    def _send_unsent(self, consumer: Consumer, state: SlotState) -> None:
        """Start the loop of a slot taken with unsent feed records (read back, or kept across a rebalance): with no
        batch queued yet, it writes them at once, waiting for none (``_drain``, ``carry_wait_s``)."""
        if state.unsent:
            self._run_slot(consumer, state, carry=False)

    def _run_slot(self, consumer: Consumer, state: SlotState, *, carry: bool = True) -> None:
        """Start the slot's loop (``_drain``) unless it has one running."""
        if state.task is None or state.task.done():
            state.task = asyncio.create_task(self._drain(consumer, state, carry=carry))

    async def _drain(self, consumer: Consumer, state: SlotState, *, carry: bool = True) -> None:
        """One slot's loop: a transaction per batch from its queue until the queue is empty, and one more for the
        last batch's feed records when no batch comes within ``carry_wait_s`` to carry them (each transaction
        writes the previous one's: ``outbox_records``); with ``carry`` False, the first of those waits for none.

        The next batch is worked out while the previous one's commit is in flight (its alert ids
        count as seen); its transaction only begins once that commit is done. A slot alone at the
        end of a burst no longer leaves the CPU idle for each commit's round trips. A worker stopping
        still writes the feed records its last commit left unsent, so a partner need not wait for the
        slot's next owner.
        """
        committing: asyncio.Task[bool] | None = None
        committing_ids: dict[str, int] = {}
        committing_states: dict[str, AlertState] = {}
        try:
            while not self._stopping.is_set() and self._failure is None:
                if not state.queue:
                    if committing is None:
                        if state.unsent and carry and await self._batch_within(state):
                            continue  # it carries them
                        if not await self._send_alone(state):
                            break  # nothing queued, in flight or unsent (or the slot lost meanwhile)
                        carry = True
                        continue
                    if await committing:  # records may arrive meanwhile: look at the queue again after
                        self._committed(state, committing_ids, committing_states)
                    committing = None
                    continue
                take = min(len(state.queue), self.config.max_batch)
                if state.gaps_queued:  # a gap's mark goes alone: its batch commits the offset past the gap
                    mark = next(i for i, m in enumerate(state.queue) if type(m) is GapMark)
                    take = 1 if mark == 0 else min(take, mark)
                    state.gaps_queued -= mark == 0
                msgs = [state.queue.popleft() for _ in range(take)]
                started = time.monotonic()
                outcomes, pending, pending_states = await self._work_out(state, msgs, committing_ids,
                                                                         committing_states)
                if committing is not None:
                    if await committing:
                        self._committed(state, committing_ids, committing_states)
                    committing = None
                if self._failure is not None or self._stopping.is_set() or self._owned.get(state.tp) is not state:
                    break  # this batch is dropped unsent: whoever owns the slot next reads it again
                committing_ids, committing_states = pending, pending_states
                committing = asyncio.create_task(self._transact(state, msgs, outcomes, started))
                if state.paused and len(state.queue) < self.config.max_batch and self._owned.get(state.tp) is state:
                    consumer.resume(state.tp)
                    state.paused, state.resumed_at = False, time.monotonic()
            if committing is not None and await committing:
                self._committed(state, committing_ids, committing_states)
            if self._failure is None:  # stopping
                await self._send_alone(state)
        except BaseException as exc:  # noqa: BLE001 - handed to the main loop, which raises it
            self._fail(exc, [state.slot])
            state.queue.clear()
            state.gaps_queued = 0
            if committing is not None:  # let a commit under way finish (or fail) on its own
                await asyncio.gather(committing, return_exceptions=True)

    async def _work_out(self, state: SlotState, msgs: list[Any], committing: dict[str, int],
                        committing_states: dict[str, AlertState],
                        ) -> tuple[list[Outcome], dict[str, int], dict[str, AlertState]]:
        """Each record's outcome (pure work: no Kafka), the alert versions this batch processes and
        the alert states it leaves (each record sees those of the records before it)."""
        outcomes: list[Outcome] = []
        pending: dict[str, int] = {}  # ids processed in this batch: a replay within one batch is still a replay
        pending_states: dict[str, AlertState] = {}
        seen = _Both(state.seen, committing.keys(), pending.keys())
        book = state.book

        def lookup(alert_id: str) -> AlertState | None:
            found = pending_states.get(alert_id) or committing_states.get(alert_id)
            return found if found is not None else book.get(alert_id)

        now = datetime.now(UTC)
        if type(msgs[0]) is GapMark:  # a batch of its own (``_drain``)
            return [Outcome(entry=msgs[0].entry)], pending, pending_states
        if not self._feeds_counted:  # once per worker: an alert's first delivery needs its feed's count
            await self._count_feeds(state)
            self._feeds_counted = True
        process = self.pipeline.process
        slice_ends = time.monotonic() + WORK_SLICE_S
        for msg in msgs:
            if time.monotonic() >= slice_ends:
                await asyncio.sleep(0)  # let heartbeats, commits and other slots run during a long batch
                now = datetime.now(UTC)
                slice_ends = time.monotonic() + WORK_SLICE_S
            rec: Record = record(msg)
            try:
                outcome = process(rec, seen, now, lookup)
            except FeedCountStale as stale:
                outcome = await self._process_recounted(state, rec, seen, now, lookup, stale)
            outcomes.append(outcome)
            if outcome.seen_id:
                pending[outcome.seen_id] = rec.timestamp_ms
            if outcome.state is not None:
                pending_states[str(outcome.entry["alert_id"])] = outcome.state
        return outcomes, pending, pending_states

    @staticmethod
    def _committed(state: SlotState, ids: dict[str, int], states: dict[str, AlertState]) -> None:
        # Only now, after the commit, do the batch's alert ids count as processed for good, and its
        # alert states as the slot's.
        for alert_id, appended in ids.items():
            state.seen.add(alert_id, appended)
        state.seen.prune()
        # Kafka's time, not this worker's clock: the newest append time of the batch's ingress records (a state is
        # only ever left by a record taken, whose id is among ``ids``). ``LifecycleBook`` says why.
        kafka_ms = max(ids.values(), default=None)
        for alert_id, alert_state in states.items():
            state.book.put(alert_id, alert_state, kafka_ms if kafka_ms is not None else int(time.time() * 1000))
        if kafka_ms is not None:
            state.book.prune(kafka_ms)

    async def _batch_within(self, state: SlotState) -> bool:
        """Whether records are queued for the slot within ``carry_wait_s``; it waits for none once the slot is no
        longer this worker's, the worker stops or has failed (``_settle`` and ``stop`` wake a wait under way), which
        would otherwise hold a rebalance, a stop or a restart for the rest of the wait."""
        state.arrived.clear()
        if (not state.queue and not self._stopping.is_set() and self._failure is None
                and self._owned.get(state.tp) is state):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.carry_wait_s):
                    await state.arrived.wait()
        return bool(state.queue)

    async def _send_alone(self, state: SlotState) -> bool:
        """The slot's unsent feed records in a transaction of their own; False when there are none, the slot is no
        longer this worker's, or its load found a loss no block records yet (``loss``): the mark it would write
        ends the old mark's entries, those dropped with their feed gone too (``_place_unsent``), before the GAP
        entry naming them commits, and a stop then would leave the loss in a log line only. Whoever owns the slot
        next finds the loss again."""
        return bool(state.unsent) and state.loss is None and await self._transact(state, [], [], time.monotonic())

    async def _transact(self, state: SlotState, msgs: list[Any], outcomes: list[Outcome], started: float) -> bool:
        """One transaction: the batch's dead letters, alert states, unsent feed records and audit block, and the
        previous transaction's feed records; with no ``msgs``, those feed records alone. False when the batch is
        dropped unsent, the slot lost or the worker stopping while it waited its turn (feed records alone are still
        written then, while the slot is this worker's)."""
        async with self._permits:
            if (self._failure is not None or (msgs and self._stopping.is_set())
                    or self._owned.get(state.tp) is not state):
                return False  # whoever owns the slot next reads the batch (and the unsent records) again
            state.txn_began = time.monotonic()
            try:
                await self._transaction(state, msgs, outcomes)
            finally:
                state.txn_began = None
        state.progress_at = time.monotonic()
        if not msgs:
            return True
        self._progressed.add(state.slot)
        if type(msgs[0]) is GapMark:
            self.metrics.skipped(state.tp.topic, msgs[0].skipped)
            state.group_has = msgs[-1].offset + 1
        else:
            self.metrics.count_batch(outcomes, [msg.timestamp for msg in msgs], state.tp.topic)
        self.metrics.transaction(time.monotonic() - started)
        state.next_offset = state.done_to = msgs[-1].offset + 1
        return True

    async def _transaction(self, state: SlotState, msgs: list[Any], outcomes: list[Outcome]) -> None:
        producer = state.producer
        async with transaction(producer):  # a producer fenced meanwhile: ProducerFenced, a restart
            # Feed, lifecycle and audit records go in one record batch per partition
            # (``PartitionBatches``): no per-record send, future or metadata check.
            batches = PartitionBatches(producer)
            for sent in state.unsent:  # decided and committed by the slot's last transaction
                await batches.add(sent.topic, sent.partition, sent.key, sent.value, sent.headers)
            sends = []
            unsent: list[Unsent] = []
            for msg, outcome in zip(msgs, outcomes, strict=True):
                if outcome.feeds or outcome.dead_letter is not None:  # most alerts go to no feed
                    dead = self._emit(state, unsent, msg, outcome)
                    if dead is not None:
                        sends.append(await state.producer.send(self.names.deadletter, dead[1], key=dead[0],
                                                               headers=dead[2]))
            at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            reached = state.states
            for outcome in outcomes:
                if outcome.state is not None:
                    alert_id = str(outcome.entry["alert_id"])
                    await batches.add(self.names.lifecycle, state.slot, alert_id.encode(),
                                      outcome.state.encode(alert_id, at))
                    reached += 1
            if unsent or state.marked:  # what is unsent now: the mark, after this batch's own entries
                for key, value, headers in outbox_records(unsent, state.marked):
                    await batches.add(self.names.lifecycle, state.slot, key, value, headers)
                    reached += 1
            for block in state.chain.blocks([o.entry for o in outcomes], self.config.signer_id, self.sign, at,
                                            states=reached):
                await batches.add(self.names.decisions, state.slot, None, block)
            sends.extend(await batches.submit())
            # No consumer offsets in the transaction: the audit block names the records it took, and is
            # where the slot stands (``resume_offset``). But for a gap's mark: a topic made anew sets the
            # offsets back, and a group offset of the old topic left above the new head would have the next
            # owner refuse it as a head behind (``head_behind``), so its offset commits with its block.
            # Every send must succeed before the commit, or all is aborted.
            if msgs and type(msgs[0]) is GapMark:
                await producer.send_offsets_to_transaction(
                    {state.tp: OffsetAndMetadata(msgs[-1].offset + 1, "")}, self.config.group_id)
            await asyncio.gather(*sends)
        state.states = reached  # committed: the partition reaches at least that far now
        state.unsent = unsent
        state.marked = len(unsent)
        if msgs and type(msgs[0]) is GapMark and msgs[0].entry.get("reason") in (
                "states-lost", "topic-remade", "audit-expired", "audit-deleted", "deliveries-lost"):
            state.loss = None  # recorded in the block just committed

    async def _count_feeds(self, state: SlotState) -> None:
        """Tell the pipeline how many partitions each feed has (``Pipeline.feed_counts``), asked of Kafka once per
        worker, before its first batch: ``topics apply`` never changes it (``TopicSpec.kept``), and an alert's
        first record to a partner follows the count then, each later one the count its state recorded."""
        for topic in self.pipeline.uncounted_feeds:
            self.pipeline.feed_counts[topic] = len(await state.producer.partitions_for(topic))

    async def _process_recounted(self, state: SlotState, rec: Record, seen: Container[str], now: datetime,
                                 lookup: Callable[[str], AlertState | None], stale: FeedCountStale) -> Outcome:
        """The outcome of ``rec`` once each feed it found a count above this worker's for (``FeedCountStale``) is
        read from Kafka anew: partitions added since this worker read them are taken, for this alert and every
        later one."""
        recounted: set[str] = set()
        while stale.topic not in recounted:
            recounted.add(stale.topic)
            count = self.pipeline.feed_counts[stale.topic] = await partition_count_now(state.producer, stale.topic,
                                                                                       stale.kept)
            log.info("feed partition count read again", topic=stale.topic, count=count)
            try:
                return self.pipeline.process_recounted(rec, seen, now, lookup, recounted)
            except FeedCountStale as again:
                stale = again
        raise stale  # a feed read anew cannot raise again (``Pipeline._feed_count``)

    @staticmethod
    def _emit(state: SlotState, unsent: list[Unsent], msg: Any, outcome: Outcome,
              ) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]] | None:
        """Add the feed records of one ingress record to ``unsent`` (the next transaction writes them), and return its
        dead letter's key, value and headers, if any (the dead-letter topic is partitioned by key: the producer
        chooses)."""
        for out in outcome.feeds:
            # The key's partition under the count the alert was first sent under; the slot's for an alert whose
            # partner was fed before feeds went by key: its later records reach the partition (and the subscriber
            # instance) that holds its copy.
            partition = state.slot % out.partitions if out.by_slot else feed_partition(out.key, out.partitions)
            unsent.append(Unsent(out.topic, partition, out.key, out.value, out.headers, out.partitions, out.by_slot))
        if outcome.dead_letter is None:
            return None
        key, value = outcome.dead_record if outcome.dead_record is not None else (msg.key, msg.value or b"")
        return key, value, list(outcome.dead_letter)


SLOT_ORDER = ("the slots follow PUENTE_AGENCIES and its order, which must stay as the topics were made (new "
              "agencies go at the end)")
"""Why a slot may not load another ingress partition's state, as both slot checks say it."""


def _inside_unread(rec: Record | None, at: int) -> str | None:
    """How ``rec``, read at offset ``at`` where a slot's head stands after, shows the topic another now, or None:
    a batch the broker does not read that holds ``at`` but does not end there. The broker takes such a batch at its
    last offset, so it never stood inside one: it took ``at`` from another batch."""
    covers = None if rec is None else rec.unreadable
    if rec is None or covers is None or rec.offset == at:
        return None
    return (f"offset {at}, the last before where the broker stands, lies inside a batch the broker does not read "
            f"(offsets {covers.first}-{covers.last}), not at its end, where the broker takes such a batch: the "
            "record the broker took there is gone")


def _iso_ms(ms: int) -> str:
    """Unix milliseconds as an ISO 8601 time in UTC, for a message."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def slot_mismatch(last: dict[str, Any] | None, slot: int, slots: Slots) -> str | None:
    """Why the last record of a slot's audit partition shows that it was another ingress
    partition's, or None.

    A slot is a position in PUENTE_AGENCIES times the ingress partitions, so changing the list or
    its order gives an ingress partition another slot's audit chain, replay window and alert states:
    its recalls would find no holders and its replays would pass, with no error. The entries of the
    last block name the ingress partition they came from, which must map to this slot.
    """
    for entry in listed((last or {}).get("entries")):
        where = entry.get("ingress") if isinstance(entry, dict) else None
        if where is None and isinstance(entry, dict) and entry.get("kind") == "GAP":
            continue  # a gap at a topic made anew names no record: nothing before its first
        found = ingress_of(where)
        if found is None or slots.slot(found[0], found[1]) != slot:
            now = _slot_source(slots, slot)
            return f"holds the decisions of ingress {str(where)[:200]}, but slot {slot} is now {now}: {SLOT_ORDER}"
    return None


def head_behind(last: dict[str, Any] | None, committed: int | None) -> str | None:
    """Why the last block of a slot's audit partition is older than the slot's committed ingress
    offset, or None.

    The broker commits a slot's offset to its group only after the block that took the records before it
    committed, so once the slot is settled (its producer has fenced the previous owner) the last entry of
    the last block is at or past the record just before the committed offset. A block that ends earlier
    is an older block of the broker's own written again after the head: it verifies (it is signed), and
    extending it would fork the chain and set the slot and its replay window back. Or the group's offsets
    were moved forward, past records never decided. Either way the slot does not load. (A head past the
    committed offset passes: the group's offset trails the head, and the slot reads on from the head.)
    """
    found = last_ingress(last)
    if found is None or not falls_short(found[2], committed):
        return None
    return (f"ends at ingress offset {found[2]}, but the slot's committed offset is {committed}: an older "
            "block was written again after the head, or the group's offsets were moved forward past records "
            f"never decided (if so, set them back to {found[2] + 1})")


def head_ahead(last: dict[str, Any] | None, now_ms: float) -> str | None:
    """Why the last block of a slot's audit partition claims an ingress append time this machine's clock
    has not reached (more than ``MAX_FUTURE_SKEW`` ahead), or None.

    A block's ingress times are the Kafka append times of the records it decided, so a genuine head
    is never ahead of the clock beyond the skew allowed. One that is was written with a key that
    verifies but a clock no one had: a retired signing key's forgery, typically. The slot reads its
    audit back from the head's newest time less the replay window, so such a head would read back
    nothing, neither the ids its window needs nor the blocks of newer keys that show the retired
    key in use; the slot does not load."""
    latest = _latest_ingress_ms(last)
    if latest is None or latest <= now_ms + MAX_FUTURE_SKEW_MS:
        return None
    ahead_h = (latest - now_ms) / 3_600_000
    return (f"claims an ingress append time {ahead_h:,.1f} h ahead of this machine's clock, more than the "
            f"{MAX_FUTURE_SKEW_MS // 3_600_000} h skew allowed: a block no Kafka append time explains (check this "
            "machine's clock first)")


def _slot_source(slots: Slots, slot: int) -> str:
    agency, partition = divmod(slot, slots.partitions)
    if agency >= len(slots.agencies):
        return "no ingress partition"
    return f"{slots.names.ingress(slots.agencies[agency])}:{partition}"


def _follows(head: dict[str, Any], before: bytes) -> bool:
    """Whether the verified ``head`` continues the record ``before`` it in its partition: one seq on, naming its
    hash. (Only the slot's producer writes its partition, so the two are consecutive records of one chain.)"""
    try:
        doc = orjson.loads(before)
    except ValueError:
        return False
    return (isinstance(doc, dict) and type(doc.get("seq")) is int and head.get("seq") == doc["seq"] + 1
            and head.get("prev") == doc.get("hash"))


def _latest_ingress_ms(last: dict[str, Any] | None) -> int | None:
    """The newest ingress append time in an audit record (the last of a partition), if any."""
    times = [e.get("ingress_ms") for e in (last or {}).get("entries") or () if isinstance(e, dict)]
    found = [t for t in times if isinstance(t, int)]
    return max(found) if found else None


class Remembered(NamedTuple):
    """What ``remember_block`` found in a block besides its ids, unchecked: the signer and seq it names."""

    signer: str | None = None
    seq: int | None = None


def remember_block(window: ReplayWindow | None, value: bytes, ceiling: int) -> Remembered:
    """Note in ``window`` the alert versions an audit block read back records as decided, each at its
    ingress append time but no later than ``ceiling`` (the verified head's newest): the block itself is
    not verified, and a time ahead of the head would move the window on and prune the genuine ids.
    Returns the signer and seq the block names (None: none), unchecked. No ``window``: only those."""
    try:
        doc = orjson.loads(value)
    except ValueError:
        return Remembered()
    if window is not None:
        for alert_id, appended in _processed_ids(doc):
            window.add(alert_id, min(appended, ceiling))
    if not isinstance(doc, dict):
        return Remembered()
    signer, seq = doc.get("signer"), doc.get("seq")
    return Remembered(signer if isinstance(signer, str) else None, seq if type(seq) is int else None)


def _processed_ids(doc: Any) -> list[tuple[str, int]]:
    """(replay window key, ingress append time) of every alert an audit block (parsed) records as decided, keyed
    as the pipeline keyed it (``seen_key``): a recall only where the entry gives its reason, since one without it
    was withdrawn as a version the broker cannot admit and remembered as such (``pipeline._final_recall``); and of
    every dead letter ``invalid`` that names the version it was remembered at (``Pipeline._dead``: a version
    breaking a rule that could not be placed then, its id sound and its origin proven). A restart must leave the
    window as the records left it."""
    out = []
    entries = doc.get("entries") if isinstance(doc, dict) else None
    for entry in entries if isinstance(entries, list) else ():  # not verified: of any shape
        if not isinstance(entry, dict) or not isinstance(entry.get("ingress_ms"), int):
            continue
        version = entry.get("version", 1)
        if entry.get("kind") == "ALERT":
            final = entry.get("action") == "RECALL" and entry.get("reason") is not None
            out.append((seen_key(str(entry.get("alert_id")), version if type(version) is int else 1, final),
                        entry["ingress_ms"]))
        elif (entry.get("kind") == "DEAD_LETTER" and entry.get("reason") == "invalid" and "version" in entry
              and type(version) is int):
            out.append((seen_key(str(entry.get("alert_id")), version), entry["ingress_ms"]))
    return out
