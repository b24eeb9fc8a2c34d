"""A delivery's feed partition follows the partner's reference for the alert, not the slot it came from.

The slot is the ingress partition, the murmur2 of the agency's own alert id (and which agency): writing each
slot to a feed partition of its own told a partner which third of candidate ids each alert was in. The real
pipeline runs inside two slots' loops, with the stand-in producer of ``worker_fakes``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from worker_fakes import HeldProducer, settle

from broker.audit import ChainWriter
from broker.pipeline import Originator, Pipeline
from broker.replay import ReplayWindow
from broker.topology import Slots, TopicNames, feed_partition, key_partition
from broker.worker import BrokerWorker, SlotState, WorkerConfig
from puente.dev.synthetic import generate
from schemas import alert_codec
from tests.unit.broker.test_worker_no_sealer import CONN, _Consumer, _DeliverToUSA, _Sealer

SLOTS = Slots(("SNM",), 2, TopicNames("t"))
FEED = "t.feed.USA"


class _Producer(HeldProducer):
    """Commits at once, keeps each feed record's (partition, key); the feed has three partitions."""

    def __init__(self, kept: list[tuple[int, bytes]]) -> None:
        super().__init__()
        self.gate.set()
        self.kept = kept

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        if topic == FEED:
            self.kept += [(partition, key) for key, _, _ in batch.records]
        return await super().send_batch(batch, topic, partition=partition)


class _AllConsumer(_Consumer):
    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("t.ingress.SNM", p) for p in (0, 1)}


async def test_each_delivery_goes_to_the_partition_of_its_reference_whichever_slot_sent_it() -> None:
    now = datetime.now(UTC)
    ms = int(now.timestamp() * 1000)
    alerts = [a for a in generate(400, seed=5, now=now) if a["agency"] == "SNM"][:60]

    def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        return "SNM", int(dict(headers)["published"])

    pipeline = Pipeline(_DeliverToUSA(), alert_codec(), {"USA": _Sealer()}, origin, SLOTS,  # type: ignore[arg-type]
                        originators={"SNM": Originator.of("SNM", "PAN", "PAN")})
    worker = BrokerWorker(WorkerConfig(CONN, "g", SLOTS, max_batch=10), pipeline, lambda p: b"sig")
    kept: list[tuple[int, bytes]] = []
    batch: dict[TopicPartition, list[Any]] = {}
    for slot in (0, 1):
        tp = TopicPartition("t.ingress.SNM", slot)
        state = SlotState(tp, slot, _Producer(kept), ChainWriter("t.audit", slot),  # type: ignore[arg-type]
                          ReplayWindow(7))
        worker._owned[tp] = state
        mine = [a for a in alerts if key_partition(a["alert_id"].encode(), 2) == slot]
        batch[tp] = [SimpleNamespace(topic=tp.topic, partition=slot, offset=i, key=a["alert_id"].encode(),
                                     value=alert_codec().encode(a), headers=[("published", str(ms).encode())],
                                     timestamp=ms, timestamp_type=1) for i, a in enumerate(mine)]
        assert len(mine) >= 10
    worker._dispatch(_AllConsumer(), batch)
    await settle()
    await asyncio.wait_for(asyncio.gather(*(s.task for s in worker._owned.values())), 5)  # type: ignore[arg-type]
    assert worker._failure is None
    assert len(kept) == len(alerts)
    assert all(key.startswith(b"ref-") for _, key in kept)
    # The partition is the reference's: every record, whichever slot; so each slot writes to all three.
    assert all(partition == feed_partition(key, 3) for partition, key in kept)
    for slot in (0, 1):
        refs = {_DeliverToUSA().reference("USA", a["alert_id"]).encode() for a in alerts
                if key_partition(a["alert_id"].encode(), 2) == slot}
        assert {partition for partition, key in kept if key in refs} == {0, 1, 2}


def test_the_feed_partition_is_the_keys_alone_and_spreads_evenly() -> None:
    keys = [f"ref-{i:032x}".encode() for i in range(3000)]
    counts = [0, 0, 0]
    for key in keys:
        counts[feed_partition(key, 3)] += 1
        assert feed_partition(key, 3) == feed_partition(bytes(key), 3)
    assert min(counts) > 900
