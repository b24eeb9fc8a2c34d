"""A slot's audit partition must hold its own ingress partition's decisions (PUENTE_AGENCIES kept in order)."""

from __future__ import annotations

from typing import Any

import pytest

from broker.pipeline import MAX_FUTURE_SKEW_MS
from broker.topology import Slots, TopicNames
from broker.worker import head_ahead, head_behind, slot_mismatch

SLOTS = Slots(("SENAFRONT", "SENAN", "PN"), 3, TopicNames("puente"))


def _head(*ingress: Any) -> dict[str, Any]:
    return {"kind": "BLOCK", "entries": [{"kind": "ALERT", "ingress": where} for where in ingress]}


def test_a_head_of_the_slots_own_ingress_partition_is_accepted() -> None:
    """Slot 7 is PN's partition 1: a block of its records (or no block yet) is this slot's."""
    assert slot_mismatch(_head("puente.ingress.PN:1:40", "puente.ingress.PN:1:41"), 7, SLOTS) is None
    assert slot_mismatch(None, 7, SLOTS) is None
    assert slot_mismatch({"kind": "CHECKPOINT"}, 7, SLOTS) is None


@pytest.mark.parametrize("where", [
    "puente.ingress.SENAN:1:40",  # the agency list reordered: slot 7 held SENAN's partition 1 before
    "puente.ingress.PN:2:40",  # another partition of the same agency
    "puente.ingress.SNM:1:40",  # an agency no longer in the list
    "puente.ingress.PN:x:40", "nonsense", 7,
], ids=["reordered", "other-partition", "removed-agency", "bad-partition", "no-colons", "not-text"])
def test_a_head_of_another_ingress_partition_is_refused(where: Any) -> None:
    """A block from any other ingress partition means the slots moved: refused, naming what the slot is now."""
    problem = slot_mismatch(_head(where), 7, SLOTS)
    assert problem is not None and "slot 7 is now puente.ingress.PN:1" in problem and "PUENTE_AGENCIES" in problem


def test_a_head_that_ends_where_the_slot_committed_is_continued() -> None:
    """The last block's last record is the one before the committed offset; a head past it (offsets moved back)
    passes too, and so does a slot with nothing to compare (no block, no offsets, no readable entry)."""
    head = _head("puente.ingress.PN:1:40", "puente.ingress.PN:1:41")
    assert head_behind(head, 42) is None
    assert head_behind(head, 30) is None
    assert head_behind(None, 42) is None and head_behind(head, None) is None
    assert head_behind({"kind": "BLOCK", "entries": [{"ingress": "nonsense"}, 7]}, 42) is None


def test_a_head_older_than_the_committed_offset_is_refused() -> None:
    """An older block written again after the head ends before the committed offset: refused, with both offsets."""
    problem = head_behind(_head("puente.ingress.PN:1:40", "puente.ingress.PN:1:41"), 43)
    assert problem is not None and "ingress offset 41" in problem and "committed offset is 43" in problem
    assert "set them back to 42" in problem


NOW_MS = 1_796_000_000_000


@pytest.mark.parametrize("latest_ms, ok", [
    (NOW_MS - 3_600_000, True), (NOW_MS + MAX_FUTURE_SKEW_MS, True),
    (NOW_MS + MAX_FUTURE_SKEW_MS + 1, False), (NOW_MS + 400 * 86_400_000, False),
])
def test_a_head_whose_ingress_time_is_ahead_of_the_clock_is_refused(latest_ms: int, ok: bool) -> None:
    """A genuine head's ingress times are Kafka append times, never ahead of the clock beyond the skew. A head
    that claims one further ahead (a retired key's forgery, say) would read no audit back for its slot's replay
    window or its retired-key check: refused, saying how far ahead and to check the clock."""
    head = {"kind": "BLOCK", "entries": [{"ingress": "puente.ingress.PN:1:40", "ingress_ms": NOW_MS - 5},
                                         {"ingress": "puente.ingress.PN:1:41", "ingress_ms": latest_ms}]}
    problem = head_ahead(head, NOW_MS)
    assert (problem is None) is ok
    if not ok:
        assert "ahead of this machine's clock" in problem and "check this machine's clock" in problem
    assert head_ahead(None, NOW_MS) is None and head_ahead({"kind": "BLOCK", "entries": [7]}, NOW_MS) is None
