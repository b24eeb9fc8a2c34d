"""The service's wiring of settings into workers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from broker.keystore import Keystore
from broker.service import build_sealers, instance_id
from policies import load_policy_set


def test_each_worker_of_a_process_gets_its_own_static_name() -> None:
    """One worker keeps the name as given; several get <name>-<index>, never one name twice; none: dynamic."""
    assert instance_id("broker-a", 0, 1) == "broker-a"
    assert [instance_id("broker-a", i, 3) for i in range(3)] == ["broker-a-0", "broker-a-1", "broker-a-2"]
    assert instance_id(None, 0, 2) is None


def test_a_partner_naming_another_partners_encryption_key_gets_no_sealer(tmp_path: Path) -> None:
    """A policy typo giving COL USA's encryption key must not seal COL's feed for USA: COL is withheld, with a
    problem naming both keys' owners; the others are sealed as before."""
    made = Keystore.provision(tmp_path / "keys", partners=["COL", "USA", "CRI", "FEAN"], agencies=[],
                              agreements=["COMBIFRON", "FEAN-JTF", "PAN-CRI", "PAN-USA"], generation="2026a")
    policy = load_policy_set()
    wrong = dataclasses.replace(policy.partners["COL"], encryption_key_id="USA-enc-2026a")
    policy = dataclasses.replace(policy, partners={**policy.partners, "COL": wrong})
    sealers, problems = build_sealers(policy, Keystore(made.broker.path))
    assert sorted(sealers) == sorted(set(policy.partners) - {"COL"})
    assert problems == ["COL: its encryption key USA-enc-2026a is USA's, not its own; its alerts are withheld"]
