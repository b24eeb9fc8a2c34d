"""``--skip``: an operator gives up exactly the feed records a stop named; every other unreadable record still stops."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from aiokafka.consumer import fetcher
from aiokafka.record.memory_records import MemoryRecords
from partner_feed import Msg, Receipts, ReceiptSigner

from broker.audit import ChainWriter
from broker.audit.receipts import RECEIPTS_PER_CHECKPOINT
from broker.kafka import KafkaConnection
from broker.kafka.unreadable import UNREADABLE, guard_fetches
from broker.partner import Subscriber
from broker.partner_store import PartnerStore
from puente.cli import build_parser
from puente.errors import UnreadableFeedError
from puente.wire import Record, Unreadable
from tests.unit.broker.test_unreadable_batches import _batch as _raw_batch

TP = TopicPartition("t.feed.COL", 0)


def _junk(offset: int) -> Record:
    """A record that does not open: no schema header, as a forged or damaged one might be."""
    return Record(TP.topic, TP.partition, offset, b"A-1", b"junk", (("puente-alert-id", b"A-%d" % offset),), 0)


def _subscriber(skip: list[str], errors: list[str]) -> Subscriber:
    return Subscriber(KafkaConnection(bootstrap="unused:9092"), "COL", TP.topic, "t.receipts.COL",
                      object(), object(), signer=ReceiptSigner(), on_error=errors.append,  # type: ignore[arg-type]
                      skip=skip)


async def test_a_named_record_is_given_up_and_committed_past_with_its_rejected_receipt() -> None:
    errors: list[str] = []
    sub = _subscriber([f"{TP.topic}:0:3"], errors)
    producer = Receipts()
    unread, _ = await sub._batch({TP: [Msg(_junk(3))]}, None, producer,  # type: ignore[arg-type]
                                 ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    assert unread is None and producer.offsets == {TP: 4}
    receipts = [r for r in producer.sent if r["kind"] == "RECEIPT"]
    assert [r["status"] for r in receipts] == ["REJECTED: CodecError; given up"]
    assert receipts[0]["feed"] == f"{TP.topic}:0:3"
    assert sub.stats.rejected == 1 and sub.stats.given_up == 1
    assert len(errors) == 2 and errors[0].startswith("puente subscribe: rejected t.feed.COL:0:3")
    assert "gave up t.feed.COL:0:3" in errors[1] and not any("junk" in line for line in errors)


async def test_an_unnamed_record_still_stops_and_names_the_skip_that_would_give_it_up() -> None:
    """--skip names one place: the record after it, unreadable too, stops the run with nothing committed past it."""
    errors: list[str] = []
    sub = _subscriber([f"{TP.topic}:0:3"], errors)
    producer = Receipts()
    unread, _ = await sub._batch({TP: [Msg(_junk(3)), Msg(_junk(4))]}, None, producer,  # type: ignore[arg-type]
                                 ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    assert isinstance(unread, UnreadableFeedError)
    assert producer.offsets == {TP: 4}  # past the given-up record, not past the one that stopped the run
    assert f"--skip {TP.topic}:0:4" in str(unread)
    assert sub.stats.given_up == 1 and sub.stats.rejected == 2


async def test_without_skip_the_first_unreadable_record_stops_the_run() -> None:
    sub = _subscriber([], [])
    producer = Receipts()
    unread, _ = await sub._batch({TP: [Msg(_junk(3))]}, None, producer,  # type: ignore[arg-type]
                                 ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    assert isinstance(unread, UnreadableFeedError) and producer.offsets == {}


@pytest.mark.parametrize("place", ["t.feed.COL", "t.feed.COL:0", "t.feed.COL:-1:3", "t.feed.COL:0:03", "a b:0:1",
                                   "t.feed.COL:0:1:2", "*:0:1", "t.feed.COL:0:99999999999999999999"])
def test_skip_takes_only_a_place_as_a_stop_names_it(place: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["subscribe", "--partner", "COL", "--key", "k.json", "--skip", place])
    assert exc.value.code == 2 and "TOPIC:PARTITION:OFFSET" in capsys.readouterr().err


def test_skip_is_repeatable() -> None:
    args = build_parser().parse_args(["subscribe", "--partner", "COL", "--key", "k.json", "--skip", "t.feed.COL:0:3",
                                      "--skip", "t.feed.COL:1:0"])
    assert args.skip == ["t.feed.COL:0:3", "t.feed.COL:1:0"]


async def test_a_hostile_alert_id_header_stays_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A record's headers are anyone's text until it opens: an alert id holding a line break and escape sequences
    neither starts a line that reads as the subscriber's own nor reaches the terminal as a control sequence, in
    the messages and in the error that stops the run (the default callbacks print to stderr)."""
    hostile = b"X\npuente subscribe: COL: 0 records rejected, all good\x1b[2K\x1b[1A\xe2\x80\xae"
    rec = Record(TP.topic, TP.partition, 3, b"A-1", b"junk", (("puente-alert-id", hostile),), 0)
    sub = Subscriber(KafkaConnection(bootstrap="unused:9092"), "COL", TP.topic, "t.receipts.COL",
                     object(), object(), signer=ReceiptSigner(), skip=[f"{TP.topic}:0:3"])  # type: ignore[arg-type]
    unread, _ = await sub._batch({TP: [Msg(rec)]}, None, Receipts(),  # type: ignore[arg-type]
                                 ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    assert unread is None
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "\x1b" not in err and "\u202e" not in err
    assert all(line.startswith("puente subscribe: ") for line in err.splitlines())
    assert "X\\npuente subscribe: COL" in err
    stopped, _ = await _subscriber([], [])._batch({TP: [Msg(rec)]}, None, Receipts(),  # type: ignore[arg-type]
                                                  ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    assert isinstance(stopped, UnreadableFeedError)
    assert "\n" not in str(stopped) and "\x1b" not in str(stopped)


class _Aborting(Receipts):
    """A transaction Kafka aborts at its commit (fenced, or the coordinator gone)."""

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield
        raise RuntimeError("the commit failed")


async def test_a_batch_that_does_not_commit_is_not_counted() -> None:
    """The run's counts report what committed: a batch whose transaction aborts comes again, and counted once
    already it would be reported twice (a recall reported acknowledged whose receipt never committed)."""
    sub = _subscriber([f"{TP.topic}:0:3"], [])
    with pytest.raises(RuntimeError):
        await sub._batch({TP: [Msg(_junk(3))]}, None, _Aborting(),  # type: ignore[arg-type]
                         ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    assert (sub.stats.rejected, sub.stats.given_up, sub.stats.reasons) == (0, 0, {})
    await sub._batch({TP: [Msg(_junk(3))]}, None, Receipts(),  # type: ignore[arg-type]
                     ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    assert (sub.stats.rejected, sub.stats.given_up) == (1, 1)


async def test_each_receipt_names_the_store_that_applied_it(tmp_path: Path) -> None:
    """With a store, each receipt names it (its id), so that a recall is acknowledged only once every store that
    holds the alert has answered (``broker.audit.recalls``); without one, receipts name none."""
    store = PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL")
    try:
        sub = Subscriber(KafkaConnection(bootstrap="unused:9092"), "COL", TP.topic, "t.receipts.COL",
                         object(), object(), signer=ReceiptSigner(), on_error=[].append,  # type: ignore[arg-type]
                         skip=[f"{TP.topic}:0:3"], store=store)
        producer = Receipts()
        await sub._batch({TP: [Msg(_junk(3))]}, None, producer,  # type: ignore[arg-type]
                         ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
        [receipt] = [r for r in producer.sent if r["kind"] == "RECEIPT"]
        assert receipt["store"] == store.store_id
    finally:
        store.close()
    producer = Receipts()
    await _subscriber([f"{TP.topic}:0:3"], [])._batch({TP: [Msg(_junk(3))]}, None, producer,  # type: ignore[arg-type]
                                                      ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    assert "store" not in next(r for r in producer.sent if r["kind"] == "RECEIPT")


def _unreadable_batch(first: int, last: int) -> SimpleNamespace:
    """The record aiokafka's reader hands out for a batch the client cannot read (``broker.kafka.unreadable``): at
    its last offset, no key or value, one header naming the batch."""
    return SimpleNamespace(topic=TP.topic, partition=TP.partition, offset=last, key=None, value=None, timestamp=0,
                           timestamp_type=1,
                           headers=[(UNREADABLE, Unreadable("a gzip-compressed batch, not inflated", first, last))])


async def test_a_batch_the_client_cannot_read_stops_the_run_naming_the_whole_batch() -> None:
    """Not a record lacking headers: the stop names the batch's records, the topic's compression as what to check,
    and a --skip of the whole range; nothing of the batch is committed."""
    errors: list[str] = []
    producer = Receipts()
    sub = _subscriber([], errors)
    unread, _ = await sub._batch({TP: [(_unreadable_batch(10, 19))]}, None, producer,  # type: ignore[arg-type]
                                 ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    assert isinstance(unread, UnreadableFeedError) and producer.offsets == {}
    text = str(unread)
    assert "records 10-19 (10 record(s))" in text and "compression.type" in text
    assert f"--skip {TP.topic}:0:10-19" in text and "puente-alert-id" not in text and "decryption key" not in text
    assert producer.statuses() == ["REJECTED: UnreadableBatch"]


async def test_a_skip_of_one_offset_of_an_unreadable_batch_gives_nothing_up() -> None:
    """A skip naming the batch's last offset (where its stand-in record is) would commit past every record of it:
    it gives nothing up, and the stop says the batch is given up whole or not at all."""
    sub = _subscriber([f"{TP.topic}:0:19"], [])
    producer = Receipts()
    unread, _ = await sub._batch({TP: [(_unreadable_batch(10, 19))]}, None, producer,  # type: ignore[arg-type]
                                 ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    assert isinstance(unread, UnreadableFeedError) and producer.offsets == {}
    assert "given up whole or not at all" in str(unread) and sub.stats.given_up == 0


async def test_a_skip_of_the_whole_batch_gives_up_each_record_with_a_receipt_of_its_own() -> None:
    """Named whole, the batch is given up: each of its records has a REJECTED receipt, so auditors see every
    delivery given up, and the run counts them all."""
    errors: list[str] = []
    sub = _subscriber([f"{TP.topic}:0:10-19"], errors)
    producer = Receipts()
    unread, _ = await sub._batch({TP: [(_unreadable_batch(10, 19))]}, None, producer,  # type: ignore[arg-type]
                                 ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    assert unread is None and producer.offsets == {TP: 20}
    receipts = [r for r in producer.sent if r["kind"] == "RECEIPT"]
    assert [r["feed"] for r in receipts] == [f"{TP.topic}:0:{n}" for n in range(10, 20)]
    assert {r["status"] for r in receipts} == {"REJECTED: UnreadableBatch; given up"}
    assert sub.stats.given_up == 10 and sub.stats.rejected == 10
    assert "all 10 record(s) of the batch" in errors[-1]


async def test_a_batch_of_more_records_than_one_transaction_receipts_is_not_given_up() -> None:
    """No batch the broker writes holds more records than a transaction's receipts: one that claims to is refused
    even when named whole, rather than write millions of receipts."""
    last = 10 + RECEIPTS_PER_CHECKPOINT
    sub = _subscriber([f"{TP.topic}:0:10-{last}"], [])
    producer = Receipts()
    unread, _ = await sub._batch({TP: [(_unreadable_batch(10, last))]}, None, producer,  # type: ignore[arg-type]
                                 ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    assert isinstance(unread, UnreadableFeedError) and producer.offsets == {} and sub.stats.given_up == 0
    assert "cannot give up a batch of more than" in str(unread)


@pytest.mark.parametrize(("place", "taken"), [("t.feed.COL:0:10-19", True), ("t.feed.COL:0:19-10", False),
                                              ("t.feed.COL:0:10-10", False), ("t.feed.COL:0:10-", False),
                                              ("t.feed.COL:0:-19", False)])
def test_skip_takes_a_batch_as_its_first_and_last_offsets(place: str, taken: bool) -> None:
    """A batch is named by its first and last offsets, the first below the last."""
    argv = ["subscribe", "--partner", "COL", "--key", "k.json", "--skip", place]
    if taken:
        assert build_parser().parse_args(argv).skip == [place]
    else:
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)


async def test_a_batch_read_from_inside_gives_up_only_the_records_from_the_position() -> None:
    """The feed's position stands inside an unreadable batch (its first records deleted, or read past with
    --accept-gap): Kafka still sends the whole batch, but the stop names the records from the position on, and a
    skip of those gives each of them up with a receipt, none for the records before the position."""
    guard_fetches()
    raw = _raw_batch(10, [(b"x" * 50, []) for _ in range(10)], compression=1)
    msgs = list(fetcher.PartitionRecords(TP, MemoryRecords(raw), [], 15, None, None, True,
                                         fetcher.READ_UNCOMMITTED))
    stopped = await _subscriber([], [])._batch({TP: msgs}, None, Receipts(),  # type: ignore[arg-type]
                                               ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    assert isinstance(stopped[0], UnreadableFeedError) and f"--skip {TP.topic}:0:15-19" in str(stopped[0])
    producer = Receipts()
    sub = _subscriber([f"{TP.topic}:0:15-19"], [])
    unread, _ = await sub._batch({TP: msgs}, None, producer,  # type: ignore[arg-type]
                                 ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    assert unread is None and producer.offsets == {TP: 20} and sub.stats.given_up == 5
    assert [r["feed"] for r in producer.sent if r["kind"] == "RECEIPT"] == [f"{TP.topic}:0:{n}" for n in range(15, 20)]
