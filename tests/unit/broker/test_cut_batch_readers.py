"""The subscriber's feed loop reads a record batch that came cut again, alone (``broker.kafka.io.Refetch``), as the
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
from tests.unit.broker.test_cut_batch_alone import TP, KafkaLike
from tests.unit.broker.test_cut_count_forgotten import _cut


def test_a_cut_batch_that_reaches_a_person_unhandled_reads_as_one_line() -> None:
    """A RecordTooLargeError that some read does not meet through ``TooLarge`` still says, on one line, where the
    batch is and which setting to check, its ``%s`` filled in (it showed aiokafka's raw tuple)."""
    text = str(translate(_cut(TP, 7), KafkaConnection(bootstrap="x:1"), "reading t.ingress.SENAN"))
    assert f"at offset 7 of {TP.topic}[0]" in text and "max.message.bytes" in text
    assert "%s" not in text and "\n" not in text and "whose size is larger than the fetch size 1048588" in text


F0, F1, F2 = (TopicPartition("t.feed.COL", p) for p in range(3))


async def test_the_subscriber_reads_a_cut_feed_batch_again_alone() -> None:
    """The feed's batch at 7 of partition 0 comes cut while 1 is fetched with it: the subscriber sets 0 back to 7,
    pauses 1 (not 2, still being set up), takes the batch whole, resumes 1, and hands the record on; nothing is
    skipped. (Before, the error left the loop: the subscriber stopped with aiokafka's raw text.)"""
    sub = Subscriber(KafkaConnection(bootstrap="unused:9092"), "COL", "t.feed.COL", "t.receipts.COL",
                     object(), object(), signer=object(), on_note=lambda note: None)  # type: ignore[arg-type]
    handled: list[dict[TopicPartition, list[Any]]] = []
    seeks: list[tuple[TopicPartition, int]] = []

    class Feed(KafkaLike):
        def assignment(self) -> set[TopicPartition]:
            return set(self.tps)

        def seek(self, tp: TopicPartition, offset: int) -> None:
            seeks.append((tp, offset))
            self.pos[tp] = offset

        async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
            await asyncio.sleep(0)
            if self.took:
                sub.stop()
                return {}
            return self.answer()

    async def batch(got: dict[TopicPartition, list[Any]], *args: Any) -> tuple[None, None]:
        handled.append(got)
        return None, None

    sub._batch = batch  # type: ignore[method-assign, assignment]
    sub._keep_head = lambda *a: None  # type: ignore[method-assign]
    sub.purge = lambda force=False: None  # type: ignore[method-assign]
    feed = Feed(F0, [F0, F1, F2], {F2})
    assert await asyncio.wait_for(sub._follow(feed, None, object(), object(), 0, None, None), 10) is None  # type: ignore[arg-type]
    assert seeks == [(F0, 7)] and [list(got) for got in handled] == [[F0]] and handled[0][F0][0].offset == 7
    assert feed.calls == [("pause", (F1,)), ("resume", (F1,))] and feed.paused_tps == {F2}
