"""The demo says the broker caught each bad record it published only when the audit holds that record's own dead
letter, for that reason."""

from __future__ import annotations

from puente.dev import demo

EXPECTED = [("SENAN:BAD-x", "not-avro"), ("SENAN:BAD-0", "unknown-schema"), ("SENAN:BAD-3", "replay")]


def test_each_bad_record_needs_its_own_dead_letter() -> None:
    """A bad record counts as caught by a dead letter of its id for its reason; one of another record, or of its id
    for another reason, does not, even when the totals match."""
    caught = {("SENAN:BAD-x", "not-avro"), ("SENAN:BAD-0", "invalid"), ("SENAN:OTHER", "replay")}
    assert demo.uncaught(EXPECTED, caught) == [("SENAN:BAD-0", "unknown-schema"), ("SENAN:BAD-3", "replay")]
    assert demo.uncaught(EXPECTED, set(EXPECTED) | caught) == []
