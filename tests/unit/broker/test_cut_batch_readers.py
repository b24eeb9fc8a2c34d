"""The subscriber's feed loop reads a record batch that came cut again from where its fetch asked (``TooLarge``), as the
worker does, and a cut batch that reaches a person unhandled is named on one line. With more feed partitions on one
Kafka node than one fetch covers whole, a later partition's first batch comes cut; before, the error left the
subscriber's loop and stopped it with aiokafka's raw text (its tuple, ``%s`` placeholders and all)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition

from broker.kafka import KafkaConnection
from broker.kafka.clients import translate
from broker.partner import Subscriber
from tests.unit.broker.test_cut_count_forgotten import TP, _cut, _msg


def test_a_cut_batch_that_reaches_a_person_unhandled_reads_as_one_line() -> None:
    """A RecordTooLargeError that some read does not meet through ``TooLarge`` still says, on one line, where the
    batch is and which setting to check, its ``%s`` filled in (it showed aiokafka's raw tuple)."""
    text = str(translate(_cut(TP, 7), KafkaConnection(bootstrap="x:1"), "reading t.ingress.SENAN"))
    assert f"at offset 7 of {TP.topic}[0]" in text and "max.message.bytes" in text
    assert "%s" not in text and "\n" not in text and "whose size is larger than the fetch size 1048588" in text




F0, F1 = (TopicPartition("t.feed.COL", p) for p in range(2))


async def test_the_subscriber_reads_a_cut_feed_batch_again() -> None:
    """The feed's batch at 7 of partition 0 comes cut twice (aiokafka moving the position to 8 each time): the
    subscriber sets 0 back to 7 each time, then takes the batch whole and hands the record at 7 on; nothing is
    skipped. (Before, the error left the loop: the subscriber stopped with aiokafka's raw text.)"""
    sub = Subscriber(KafkaConnection(bootstrap="unused:9092"), "COL", "t.feed.COL", "t.receipts.COL",
                     object(), object(), signer=object(), on_note=lambda note: None)  # type: ignore[arg-type]
    handled: list[dict[TopicPartition, list[Any]]] = []
    seeks: list[tuple[TopicPartition, int]] = []

    class Feed:
        def __init__(self) -> None:
            self.pos = {F0: 7}
            self.cuts = 2

        def assignment(self) -> set[TopicPartition]:
            return {F0, F1}

        def paused(self) -> set[TopicPartition]:
            return set()

        def seek(self, tp: TopicPartition, offset: int) -> None:
            seeks.append((tp, offset))
            self.pos[tp] = offset

        async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
            await asyncio.sleep(0)
            if self.cuts:
                self.cuts -= 1
                self.pos[F0] = 8  # aiokafka: consumed_to(position + 1)
                raise _cut(F0, 7)
            if handled:
                sub.stop()
                return {}
            assert self.pos[F0] == 7, "the batch is read from where its fetch asked, never past it"
            self.pos[F0] = 8
            return {F0: [_msg(F0, 7)]}

    async def batch(got: dict[TopicPartition, list[Any]], *args: Any) -> tuple[None, None]:
        handled.append(got)
        return None, None

    sub._batch = batch  # type: ignore[method-assign, assignment]
    sub._keep_head = lambda *a: None  # type: ignore[method-assign]
    sub.purge = lambda force=False: None  # type: ignore[method-assign]
    assert await asyncio.wait_for(sub._follow(Feed(), None, object(), object(), 0, None, None), 10) is None  # type: ignore[arg-type]
    assert seeks == [(F0, 7), (F0, 7)] and [list(got) for got in handled] == [[F0]] and handled[0][F0][0].offset == 7
