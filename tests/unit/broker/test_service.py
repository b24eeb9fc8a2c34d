"""The service's wiring of settings into workers."""

from __future__ import annotations

from broker.service import instance_id


def test_each_worker_of_a_process_gets_its_own_static_name() -> None:
    """One worker keeps the name as given; several get <name>-<index>, never one name twice; none: dynamic."""
    assert instance_id("broker-a", 0, 1) == "broker-a"
    assert [instance_id("broker-a", i, 3) for i in range(3)] == ["broker-a-0", "broker-a-1", "broker-a-2"]
    assert instance_id(None, 0, 2) is None
