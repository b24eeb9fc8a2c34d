"""The one place Kafka clients are made, started and stopped, and Kafka's errors become Puente's.

Every producer, consumer and admin client in Puente comes from here, built from one
``KafkaConnection`` (``broker.kafka.connection``): TLS, SASL and the time allowed to reach Kafka
are set once for all of them. The data path uses aiokafka; administration (topics, ACLs, SCRAM
users) uses confluent-kafka's AdminClient, because aiokafka's admin client has no ACL, SCRAM or
incremental-configuration calls and returns raw protocol answers whose errors each caller would
have to dig out.

Client quotas are the exception: neither library has AlterClientQuotas, so ``broker.kafka.quotas``
sends Kafka's own request through aiokafka's admin client, which ``admin_session`` makes here from
the same connection.

``running(client, conn, what)`` starts a client within ``conn.timeout_s`` and always stops it,
so no "Unclosed AIOKafka..." warning is left behind; ``stop_client(client)`` is the one way a client is stopped
(what stopping it raises never replaces the error on its way up); ``translate(exc, conn, what)`` is the one
mapping from a third-party error to Puente's tree (see ``puente.errors``): unreachable, refused
credentials, refused access, or another failure, each naming the principal and what to check,
never a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiokafka.errors as aiokafka_errors
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.producer import sender as _aiokafka_sender

from broker.kafka.admin import Admin
from broker.kafka.connection import KafkaConnection
from broker.kafka.unreadable import guard_fetches
from puente.errors import (
    ConfigError,
    KafkaAccessError,
    KafkaAuthError,
    KafkaError,
    KafkaOperationError,
    KafkaUnavailableError,
    PuenteError,
)

Client = TypeVar("Client", AIOKafkaProducer, AIOKafkaConsumer)
Held = TypeVar("Held", AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient)
E = TypeVar("E", bound=BaseException)

# A transactional producer that begins its next transaction right after a commit finds the
# broker still writing the previous one's markers: AddPartitionsToTxn is refused with
# CONCURRENT_TRANSACTIONS, and aiokafka retries after a fixed 20 ms (its BACKOFF_OVERRIDE; the
# setting is not exposed). Here the markers take a few ms, so a slot's transaction spent most of
# its time in that wait: 25 ms per transaction of one producer alone, 6 ms with 2 ms retries.
# Each retry is a request, so under load shorter waits cost client CPU: 5 ms is the compromise
# (bench/RESULTS.md has the runs). It changes no transaction's outcome. aiokafka is pinned to the
# minor version this was tested against (pyproject.toml); ``tune_transactions`` checks it is there.
TXN_RETRY_BACKOFF_S = 0.005

MAX_BATCH_BYTES = 1_048_588
"""The largest record batch a topic Puente makes accepts (``max.message.bytes``, which ``topics apply`` sets on each:
Kafka's own default, stated), and the least every consumer here fetches of one partition (``consumer``).

Why: Kafka answers a fetch with at most ``max.partition.fetch.bytes`` of each partition, and ignores that limit only
for the first partition of the answer that has data. A later partition whose first batch is larger comes as a slice
cut inside it; aiokafka then raises RecordTooLargeError and moves its position one record past the batch's start
(the worker's group consumer took 256 KiB, under the 1 MiB alerts the pipeline takes: one such alert stopped every
worker that took its partition). A limit at least the largest batch is never cut."""
FETCH_PARTITIONS = 50
"""How many partitions' worth (``MAX_BATCH_BYTES`` each) one fetch may bring at most (``fetch_total``): about 50 MiB,
aiokafka's and Kafka's consumer default, below what a Kafka node answers at most (its ``fetch.max.bytes``, 55 MiB)."""
MAX_FETCH_BYTES = FETCH_PARTITIONS * MAX_BATCH_BYTES


def fetch_total(partitions: int) -> int:
    """What one fetch over ``partitions`` partitions may bring in all (``fetch.max.bytes``): each partition's whole
    limit, so that the answer's total can never cut a later partition's first batch (Kafka gives each partition what
    is left of the total, down to a slice), bounded by ``MAX_FETCH_BYTES``. It is also the memory such a fetch holds
    at most, which the per-partition limit bounds anyway. Past ``FETCH_PARTITIONS`` partitions on one node a batch
    may still come cut: the readers and the worker then read it again (``TooLarge``)."""
    return min(MAX_FETCH_BYTES, max(1, partitions) * MAX_BATCH_BYTES)


RecordTooLarge = aiokafka_errors.RecordTooLargeError
"""What a fetch raises for a partition whose first batch Kafka sent cut (larger than what the consumer fetches of a
partition, in an answer where another partition came first): ``TooLarge`` reads it again."""
TOO_LARGE_TRIES = 10
"""How many times running a fetch may meet the same batch cut before the read stops (``TooLarge``)."""


class TooLarge:
    """Reads a record batch a fetch could not take whole again, and never past it: for a read loop that calls
    ``getmany`` (the worker's and the subscriber's; ``broker.kafka.io``'s readers, through ``fetch``, which
    fetches the cut partition alone), one per read.

    Kafka sends a partition's first batch whole, however large, only when it is the first partition of the answer
    with data; a later one comes as a slice cut inside it. aiokafka then raises RecordTooLargeError naming the
    partition and the offset it fetched from, and has already moved the partition's position one record past it: a
    read that carried on from there would skip that record in silence (the fetch from the next offset gets the same
    batch, and aiokafka hands out only its records from there on). ``seek_back`` sets the position back to the
    offset named, so the next fetch asks for the batch again; aiokafka shuffles the partitions of each fetch, so the
    batch usually comes first, and whole, within a few. Met ``tries`` times at the same offset, the read stops with
    KafkaOperationError naming the partition, the offset and the setting to check; the count of a partition is
    forgotten once its records reach past that offset (``took``). Nothing here commits: the caller commits only what
    it has processed, so nothing is ever committed past such a batch.

    After ``FETCH_PARTITIONS`` partitions on one node (the fetch's total then cuts one), or with a topic's
    ``max.message.bytes`` raised by hand past ``MAX_BATCH_BYTES``, this is what is left to meet it."""

    def __init__(self, what: str, tries: int = TOO_LARGE_TRIES) -> None:
        self.what, self.tries = what, tries
        self._met: dict[TopicPartition, tuple[int, int]] = {}

    def seek_back(self, consumer: AIOKafkaConsumer, exc: aiokafka_errors.RecordTooLargeError) -> TopicPartition | None:
        """Set the partition ``exc`` names back to the offset its fetch asked for: the partition, or None when it is
        no longer assigned (its next owner reads it from the offset committed). KafkaOperationError (not retriable)
        when this is the ``tries``-th time at that offset, or ``exc`` names no partition and offset (another aiokafka:
        the position it moved past cannot be set back)."""
        tp, offset, limit = _too_large_at(exc)
        if tp is None or offset is None:
            raise KafkaOperationError(
                f"a record batch came cut while {self.what} ({too_large_text(exc)}), and the fetch did not say "
                "where: stopped before reading past it. Check the topics' max.message.bytes (`puente topics plan`) "
                "and install the aiokafka version pyproject.toml names") from exc
        if tp not in consumer.assignment():
            self._met.pop(tp, None)  # its next owner (this one again, later) meets it from none
            return None
        last, count = self._met.get(tp, (offset, 0))
        count = count + 1 if last == offset else 1
        self._met[tp] = (offset, count)
        if count >= self.tries:
            fetched = f"{limit:,} bytes" if limit is not None else "its limit"
            raise KafkaOperationError(
                f"the record batch at offset {offset} of {tp.topic}[{tp.partition}] came cut {count} times while "
                f"{self.what}: it is larger than this consumer fetches of a partition ({fetched}), which Kafka sends "
                f"whole only as the first partition of a fetch. Check the topic's max.message.bytes against the "
                f"fetch limit ({MAX_BATCH_BYTES:,} bytes, what `puente topics apply` sets): a batch written while "
                "the topic took more stays larger; or, with more than 50 of this read's partitions led by one node, "
                "the fetch's total cut it: spread the partitions' leaders. Nothing was read or committed past it; "
                "starting again tries again"
            ) from exc
        consumer.seek(tp, offset)
        return tp

    def took(self, tp: TopicPartition, upto: int) -> None:
        """The read of ``tp`` has records up to ``upto`` (the offset after the last): a cut met before that offset
        is behind it, and its count is forgotten (the same batch met again later, after a rebalance or a slot read
        anew, starts from none)."""
        met = self._met.get(tp)
        if met is not None and met[0] < upto:
            del self._met[tp]

    def took_batch(self, batch: Mapping[TopicPartition, Sequence[Any]]) -> None:
        """``took`` for each partition of a fetched ``batch`` (aiokafka's records, each with its ``offset``)."""
        if self._met:
            for tp, msgs in batch.items():
                if msgs:
                    self.took(tp, msgs[-1].offset + 1)


def _too_large_at(exc: BaseException) -> tuple[TopicPartition | None, int | None, int | None]:
    """The partition, fetch offset and per-partition limit aiokafka's fetcher gives its RecordTooLargeError
    (``args``: its text, then these); None for each it does not give."""
    args: tuple[Any, ...] = tuple(exc.args)
    tp = args[1] if len(args) > 1 and isinstance(args[1], TopicPartition) else None
    offset = args[2] if len(args) > 2 and type(args[2]) is int and args[2] >= 0 else None
    limit = args[3] if len(args) > 3 and type(args[3]) is int else None
    return tp, offset, limit


def too_large_text(exc: BaseException) -> str:
    """aiokafka's text of a RecordTooLargeError on one line of at most 200 characters, its ``%s`` filled in from the
    error's other arguments (``str`` of the error shows the raw tuple, placeholders and all)."""
    args: tuple[Any, ...] = tuple(exc.args)
    text = str(exc)
    if len(args) > 1 and isinstance(args[0], str):
        try:
            text = args[0] % args[1:]
        except (TypeError, ValueError):
            text = " ".join(str(arg) for arg in args)
    return " ".join(text.split())[:200] or type(exc).__name__


def tune_transactions() -> bool:
    """Apply the transaction retry backoff (a process-wide aiokafka setting); called when a worker
    starts, never at import. False when this aiokafka has no such setting (nothing is changed)."""
    if not isinstance(getattr(_aiokafka_sender, "BACKOFF_OVERRIDE", None), float):
        return False
    _aiokafka_sender.BACKOFF_OVERRIDE = TXN_RETRY_BACKOFF_S
    return True


@dataclass(frozen=True, slots=True)
class FetchView:
    """What a group consumer knows of one assigned partition without asking Kafka."""

    position: int | None
    """The offset after the last record handed out (transaction markers skipped); None: not known yet."""
    end: int | None
    """Where committed records end: the last stable offset under read_committed, else the high-water mark."""
    answered_at: float | None
    """When Kafka last answered a fetch for it (time.time() seconds), with records or without."""


def fetch_view(consumer: AIOKafkaConsumer, tp: TopicPartition) -> FetchView | None:
    """``consumer``'s view of ``tp``, at once (no request, no wait); None when ``tp`` is not assigned.

    aiokafka's ``position()`` is a coroutine that waits while the position is unknown (a stalled
    coordinator: up to the request timeout), so the position is read from its subscription state.
    """
    if tp not in consumer.assignment():
        return None
    high, lso, polled = consumer.highwater(tp), consumer.last_stable_offset(tp), consumer.last_poll_timestamp(tp)
    state = consumer._subscription.subscription.assignment.state_value(tp)
    return FetchView(state.position if state.has_valid_position else None,
                     lso if lso is not None and lso >= 0 else high,
                     polled / 1000 if polled is not None else None)


def set_fetching(consumer: AIOKafkaConsumer, *, max_wait_ms: int, min_bytes: int) -> None:
    """Have ``consumer``'s next fetch requests wait up to ``max_wait_ms`` for ``min_bytes`` (Kafka's
    ``fetch.max.wait.ms`` and ``fetch.min.bytes``), changed while it runs: aiokafka reads both when it
    builds each request and offers no way to change them. A fetch already sent keeps its own.
    ConfigError when the consumer has not started, or this aiokafka keeps them elsewhere (nothing
    would change, and a worker would then fetch in silence as it was not told to)."""
    fetcher = consumer._fetcher
    if fetcher is None:
        raise ConfigError("set_fetching: the consumer has not started")
    if not hasattr(fetcher, "_fetch_max_wait_ms") or not hasattr(fetcher, "_fetch_min_bytes"):
        raise ConfigError("this aiokafka's consumer does not keep fetch.max.wait.ms and fetch.min.bytes where "
                          "Puente sets them: install the aiokafka version pyproject.toml names")
    fetcher._fetch_max_wait_ms = max_wait_ms
    fetcher._fetch_min_bytes = min_bytes


def membership(consumer: AIOKafkaConsumer) -> tuple[int, str]:
    """``consumer``'s generation and member id in its group, as it holds them now.

    When the coordinator tells it that it is no longer a member (its member id unknown, its
    generation stale), aiokafka resets them to -1 and "" before the rebalance listener's revocation
    runs; in an ordinary rebalance they are still those being left. (Its heartbeat requests predate
    ``group.instance.id``, so a static member whose name another consumer has taken hears "unknown
    member id", never Kafka's FENCED_INSTANCE_ID.)
    """
    coordinator = consumer._coordinator
    return int(coordinator.generation), str(coordinator.member_id)


def wake_group_waiters(consumer: AIOKafkaConsumer, signal: aiokafka_errors.KafkaError) -> None:
    """Raise ``signal`` in whatever waits on ``consumer``'s next assignment: a ``getmany`` during a
    rebalance waits for it without a timeout, and a rebalance listener that will not let the
    rebalance go on (``hold_rebalance``) has to wake it. (aiokafka's own fetch task waits there too,
    and carries on past a ``KafkaError``: hence the type.)"""
    consumer._subscription.abort_waiters(signal)


async def hold_rebalance(consumer: AIOKafkaConsumer) -> None:
    """For a rebalance listener that must not let ``consumer`` join its group again: wait until the
    consumer is being stopped, then forget its coordinator, so that the join that follows the
    listener fails at once, without a request, and the group task ends as ``stop()`` asks."""
    coordinator = consumer._coordinator
    await asyncio.shield(coordinator._closing)
    coordinator.coordinator_id = None


def _client_id(conn: KafkaConnection, name: str) -> str:
    return f"{conn.client_id}-{name}" if conn.client_id else name


def producer(conn: KafkaConnection, name: str, **options: Any) -> AIOKafkaProducer:
    """An (unstarted) producer for ``conn``; ``options`` are aiokafka's producer settings."""
    return AIOKafkaProducer(**conn.aiokafka(), client_id=_client_id(conn, name),
                            request_timeout_ms=int(max(conn.timeout_s, 30) * 1000), **options)


def broken_for_good(made: AIOKafkaProducer) -> BaseException | None:
    """The error that left transactional producer ``made`` unable to write again, or None while it can.

    aiokafka stops a producer's sender for good on a fenced epoch, a refused transactional id
    (TransactionalIdAuthorizationFailed), an out-of-order sequence or an unexpected error, and marks its
    transaction manager FATAL_ERROR; every transaction after fails on an assertion, whatever Kafka's state.
    Only a new producer (a new InitProducerId) writes again, and only when the cause was not that another
    took the transactional id over: the caller tells them apart by the error given (ProducerFenced)."""
    manager = getattr(made, "_txn_manager", None)  # None: not transactional (or a stand-in in a test)
    if manager is None or not manager.is_fatal_error():
        return None
    waiter = manager._transaction_waiter
    failure = waiter.exception() if waiter is not None and waiter.done() else None
    return failure if isinstance(failure, BaseException) else aiokafka_errors.KafkaError("stopped for good")


class Sends:
    """The sends of one transaction (``transaction``): each one added is awaited before the transaction commits.

    Why: a record batch the client gives up on (a non-retriable error: an out-of-order sequence, an unknown
    producer id, a record Kafka refuses) fails only that batch's futures; aiokafka's flush before the commit waits
    for every batch without raising, and the transaction commits the other records without it. A writer that does
    not await each of its sends commits a chain with a hole, or offsets past records it never receipted."""

    def __init__(self) -> None:
        self._pending: list[Awaitable[Any]] = []

    def add(self, sent: Awaitable[Any]) -> None:
        """Count ``sent`` (what ``send`` returned: the record's delivery) among the transaction's sends."""
        self._pending.append(sent)

    async def settle(self) -> None:
        """Every send added so far delivered: the first failure is raised (the transaction then aborts)."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)


@contextlib.asynccontextmanager
async def transaction(made: AIOKafkaProducer) -> AsyncIterator[Sends]:
    """One transaction of transactional producer ``made`` (aiokafka's ``made.transaction()``): committed when
    the block ends, aborted when it raises. A failure of the block or its commit (not one of Puente's own) when
    ``made`` can never write again (``broken_for_good``) comes out as the error that broke it, the one a
    caller can act on: ProducerFenced (another owner took the transactional id: a restart mends it), a refused
    transactional id (access), an out-of-order sequence.

    Why: aiokafka's sender meets that error in the background, marks the producer FATAL and stops; the block
    learns of it only at its next send, as aiokafka's IllegalOperation ("not in transaction"), or at the commit,
    as an AssertionError: plain Exceptions, no Kafka error, which a worker did not restart on and reported as
    an internal error (exit 70), for a slot another worker had simply taken. Nothing is committed either way:
    aiokafka does not abort a FATAL producer's transaction, and the next owner's producer fences it, which
    aborts it.

    The block is given a ``Sends``: each send added to it must deliver before the commit, else the transaction is
    aborted with that send's error (see ``Sends``)."""
    try:
        async with made.transaction():
            sends = Sends()
            yield sends
            await sends.settle()
    except Exception as exc:
        broken = broken_for_good(made)
        # Only what the client raises for a dead producer is replaced: a fault of Puente's own code (a KeyError)
        # met while the producer happens to be dead comes out as itself, never as a restart-worthy fence.
        if (broken is None or broken is exc or isinstance(exc, PuenteError)
                or not isinstance(exc, (aiokafka_errors.IllegalOperation, AssertionError, aiokafka_errors.KafkaError))):
            raise
        raise broken from exc


def consumer(conn: KafkaConnection, name: str, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """An (unstarted) consumer for ``conn``; ``options`` are aiokafka's consumer settings. A fetched batch it
    cannot read comes out as one record saying so (``Record.unreadable``), never as an error (``guard_fetches``).

    It fetches at least ``MAX_BATCH_BYTES`` of a partition (``max_partition_fetch_bytes``, which defaults to it; less
    is refused, ConfigError: aiokafka's own default, 1 MiB, is 12 bytes short of Kafka's largest batch), and up to
    ``MAX_FETCH_BYTES`` in all unless told (``fetch_total``)."""
    options.setdefault("max_partition_fetch_bytes", MAX_BATCH_BYTES)
    options.setdefault("fetch_max_bytes", MAX_FETCH_BYTES)
    if options["max_partition_fetch_bytes"] < MAX_BATCH_BYTES or options["fetch_max_bytes"] < MAX_BATCH_BYTES:
        raise ConfigError(f"consumer {name}: a fetch limit below {MAX_BATCH_BYTES} bytes, the largest record batch "
                          "Puente's topics accept (max.message.bytes), would cut batches and stop the read")
    guard_fetches()
    return AIOKafkaConsumer(*topics, **conn.aiokafka(), client_id=_client_id(conn, name), **options)


def reader(conn: KafkaConnection, name: str = "puente-reader", *, partition_fetch_bytes: int = MAX_BATCH_BYTES,
           fetch_bytes: int = MAX_FETCH_BYTES, committed: bool = True, wait_ms: int = 500) -> AIOKafkaConsumer:
    """A group-less consumer for reading partitions by hand: read_committed unless ``committed`` is False.

    What one fetch may bring is what it holds in memory at once: ``fetch_total`` of the partitions read together
    bounds it without letting the total cut a batch (never less than ``MAX_BATCH_BYTES`` of a partition:
    ``consumer``). ``wait_ms`` is how long a fetch over partitions with nothing new
    waits for more (``fetch.max.wait.ms``): a read up to known end offsets that is waited on (a
    slot's load, in a rebalance) wants it short, a reader that follows a topic as it grows long.
    """
    return consumer(conn, name, enable_auto_commit=False,
                    isolation_level="read_committed" if committed else "read_uncommitted",
                    auto_offset_reset="earliest", max_partition_fetch_bytes=partition_fetch_bytes,
                    fetch_max_bytes=fetch_bytes, fetch_max_wait_ms=wait_ms)


async def start(client: Client, conn: KafkaConnection, what: str) -> Client:
    """Start ``client`` within ``conn.timeout_s``; on failure it is stopped and a Puente error raised."""
    await _start_within(client, client.start, conn, what)
    return client


async def stop_client(client: AIOKafkaProducer | AIOKafkaConsumer | AIOKafkaAdminClient) -> None:
    """Stop (or close) ``client`` for good. Raises only when the task stopping it is itself being cancelled.

    A client is stopped where it is let go: on a clean stop, or on the way out of a failure already raised
    (a worker restarting after a Kafka error, a start that failed). What its goodbye raises (a leave-group or
    a flush that Kafka, out of reach, never answers) must neither replace that failure nor turn a clean stop
    into one, so it is not raised. Nothing depends on it: a producer's deliveries are waited on before, each
    on its own future, and a transaction it left open is aborted when the next owner fences it.

    aiokafka's consumer (``Fetcher.close``) cancels its fetch tasks and awaits them, and one sleeping in its
    retry backoff (Kafka out of reach) re-raises that CancelledError into the task stopping it: a
    BaseException, it went past every ``except Exception``, replaced the Kafka error on its way up, skipped
    the worker's restart, and the broker stopped with a traceback (exit 1), on SIGTERM too. Such a stray
    cancellation is told from a real one by ``Task.cancelling()`` (a real one, ``asyncio.timeout`` included,
    goes on up), and what aiokafka's stop then left undone (``_finish_stop``) is done here.
    """
    end = client.close if isinstance(client, AIOKafkaAdminClient) else client.stop
    try:
        await end()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        await _finish_stop(client)
    except Exception:  # noqa: BLE001, S110 - the goodbye's failure is no one's to act on (see the docstring)
        pass


async def _finish_stop(client: object) -> None:
    """What aiokafka's consumer stop leaves undone when a fetch task's CancelledError cuts it short: the other
    fetch tasks (left running) and the consumer's connections and metadata task (never closed). aiokafka marks
    the consumer closed first, so its own ``stop()`` would not try again."""
    fetcher = getattr(client, "_fetcher", None)
    left = [task for task in getattr(fetcher, "_pending_tasks", ()) if not task.done()]
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    inner = getattr(client, "_client", None)
    if inner is not None:
        with contextlib.suppress(Exception):
            await inner.close()


async def _start_within(client: AIOKafkaProducer | AIOKafkaConsumer | AIOKafkaAdminClient,
                        begin: Callable[[], Awaitable[Any]], conn: KafkaConnection, what: str) -> None:
    """``begin()`` within ``conn.timeout_s``; on failure ``client`` is stopped (``stop_client``), then Puente's error
    raised for a third-party one (``_start_failure``)."""
    try:
        async with asyncio.timeout(conn.timeout_s):
            await begin()
    except BaseException as exc:
        await stop_client(client)
        if exc is (failure := await _start_failure(exc, conn, what)):
            raise
        raise failure from exc


async def _start_failure(exc: BaseException, conn: KafkaConnection, what: str) -> BaseException:
    """What to raise for a client that did not start: Puente's error for a third-party one, else ``exc`` itself."""
    if isinstance(exc, Exception) and not isinstance(exc, PuenteError):
        error = translate(exc, conn, what)
        if isinstance(error, KafkaUnavailableError) and (conn.uses_sasl or conn.uses_tls):
            error = await _why_unreachable(conn, what) or error
        return error
    return exc


def admin_session(conn: KafkaConnection, what: str,
                  name: str = "puente-admin") -> contextlib.AbstractAsyncContextManager[AIOKafkaAdminClient]:
    """aiokafka's admin client for ``conn``, started within ``conn.timeout_s`` and always closed; Kafka errors
    raised inside the block become Puente's (``translate``). For the requests neither library offers a call for
    (``broker.kafka.quotas``): every other administration goes through ``Admin``."""
    client = AIOKafkaAdminClient(**conn.aiokafka(), client_id=_client_id(conn, name),
                                 request_timeout_ms=int(max(conn.timeout_s, 30) * 1000))
    return _held(client, client.start, conn, what)


async def _why_unreachable(conn: KafkaConnection, what: str) -> KafkaError | None:
    """What really stopped a secured client that "could not bootstrap": aiokafka logs a refused
    password or certificate and reports only that no node answered. One login through librdkafka,
    which says why, tells refused credentials from an unreachable cluster."""
    try:
        await Admin(conn.model_copy(update={"timeout_s": min(conn.timeout_s, 5.0)})).call(
            what, lambda c: c.list_topics(timeout=min(conn.timeout_s, 5.0)))
    except (KafkaAuthError, KafkaAccessError) as refused:
        return refused
    except KafkaError:
        return None
    return None


def running(client: Client, conn: KafkaConnection, what: str) -> contextlib.AbstractAsyncContextManager[Client]:
    """``async with running(consumer(...), conn, "reading the audit") as c:`` started, then always stopped.

    Kafka errors raised inside the block become Puente's (see ``translate``).
    """
    return _held(client, client.start, conn, what)


@contextlib.asynccontextmanager
async def _held(client: Held, begin: Callable[[], Awaitable[Any]], conn: KafkaConnection,
                what: str) -> AsyncIterator[Held]:
    """``client`` begun within ``conn.timeout_s`` (``_start_within``) and always stopped (``stop_client``); Kafka errors
    raised inside the block become Puente's (``translate``)."""
    await _start_within(client, begin, conn, what)
    try:
        yield client
    except aiokafka_errors.KafkaError as exc:
        raise translate(exc, conn, what) from exc
    finally:
        await stop_client(client)


_ACCESS: dict[type[aiokafka_errors.KafkaError], str] = {
    aiokafka_errors.TopicAuthorizationFailedError: "TOPIC", aiokafka_errors.GroupAuthorizationFailedError: "GROUP",
    aiokafka_errors.ClusterAuthorizationFailedError: "CLUSTER",
    aiokafka_errors.TransactionalIdAuthorizationFailed: "TRANSACTIONAL_ID",
}  # fmt: skip
# Failures a new session mends: the producer or the member lost its place (another took the slot, a
# rebalance went on, a transaction timed out). aiokafka marks them not retriable, meaning "not by
# repeating the request"; starting again from the committed offsets is exactly what mends them.
_MENDED_BY_RESTART = (
    aiokafka_errors.ProducerFenced, aiokafka_errors.CommitFailedError, aiokafka_errors.UnknownMemberIdError,
    aiokafka_errors.RebalanceInProgressError, aiokafka_errors.IllegalGenerationError,
    aiokafka_errors.InvalidProducerEpoch, aiokafka_errors.OutOfOrderSequenceNumber,
    aiokafka_errors.ConcurrentTransactions, aiokafka_errors.UnknownProducerId, aiokafka_errors.KafkaTimeoutError,
)  # fmt: skip
_AUTH = (aiokafka_errors.SaslAuthenticationFailed, aiokafka_errors.AuthenticationFailedError,
         aiokafka_errors.AuthenticationMethodNotSupported)


def translate(exc: BaseException, conn: KafkaConnection, what: str) -> KafkaError:
    """The Puente error for a failure talking to Kafka while doing ``what`` (e.g. "reading the audit").

    Messages name the bootstrap servers, the principal and what to check; never a password, and
    only Kafka's own short error text. ``retriable`` says whether starting again may mend it.
    """
    where = f"Kafka at {conn.bootstrap}"
    who = conn.principal
    verify = exc if isinstance(exc, ssl.SSLCertVerificationError) else _caused_by(exc, ssl.SSLCertVerificationError)
    if verify is not None:
        reason = getattr(verify, "verify_message", "") or "it does not verify"
        return KafkaAuthError(f"{where}: the broker's certificate was refused while {what} ({reason}): check that "
                              f"it is signed by the CA in {conn.ca_file or 'the system'} (ssl.truststore.location in "
                              f"{conn.source}) and has not expired")
    if isinstance(exc, ssl.SSLError) or _caused_by(exc, ssl.SSLError) is not None:
        return KafkaAuthError(f"{where}: the TLS handshake failed while {what}: check security.protocol and "
                              f"the TLS files in {conn.source}")
    if isinstance(exc, _AUTH):
        return KafkaAuthError(f"{where} refused the credentials of {who} while {what}: check the username and "
                              f"password in {conn.source}")
    resource = next((name for kind, name in _ACCESS.items() if isinstance(exc, kind)), None)
    if resource is not None:
        refused = KafkaAccessError(f"{where} refused {who} access while {what} ({type(exc).__name__}): no ACL "
                                   "allows it; ask the operator to check the ACLs (`puente acls plan`)")
        refused.resource = resource
        return refused
    if isinstance(exc, (TimeoutError, OSError, aiokafka_errors.KafkaConnectionError,
                        aiokafka_errors.NodeNotReadyError, aiokafka_errors.RequestTimedOutError,
                        aiokafka_errors.KafkaTimeoutError)):
        return KafkaUnavailableError(f"{where} could not be reached within {conn.timeout_s:g}s while {what}: "
                                     f"check {conn.servers_from} and that Kafka is running")
    if isinstance(exc, RecordTooLarge):
        # Every read loop meets it through ``TooLarge``; one that does not still says where, on one line.
        tp, offset, _ = _too_large_at(exc)
        at = f" at offset {offset} of {tp.topic}[{tp.partition}]" if tp is not None and offset is not None else ""
        return KafkaOperationError(f"{where}: a record batch{at} came cut while {what} ({too_large_text(exc)}): "
                                   "check the topic's max.message.bytes against the fetch limit "
                                   f"({MAX_BATCH_BYTES:,} bytes, what `puente topics apply` sets), or, with more "
                                   "than 50 partitions led by one node, spread the partitions' leaders")
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    error = KafkaOperationError(f"{where}: {type(exc).__name__} while {what}" + (f": {text}" if text else ""))
    error.retriable = bool(getattr(exc, "retriable", False)) or isinstance(exc, _MENDED_BY_RESTART)
    return error


def _caused_by(exc: BaseException, kind: type[E]) -> E | None:
    seen = exc.__cause__ or exc.__context__
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
