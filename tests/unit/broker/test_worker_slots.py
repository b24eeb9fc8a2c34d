"""A slot's audit partition must hold its own ingress partition's decisions (PUENTE_AGENCIES kept in order)."""

from __future__ import annotations

from typing import Any

import pytest

from broker.topology import Slots, TopicNames
from broker.worker import head_behind, slot_mismatch

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
