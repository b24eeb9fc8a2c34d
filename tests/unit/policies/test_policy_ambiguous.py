"""A policy whose text reads two ways is refused at load, one line naming the file, the line and what to check."""

from __future__ import annotations

from typing import Any

import pytest

from puente.errors import PolicyError


def _problems(policy_copy: Any) -> list[str]:
    """The problem lines of a policy that does not load (the heading names the directory)."""
    with pytest.raises(PolicyError) as caught:
        policy_copy.load()
    _, *problems = str(caught.value).splitlines()
    return problems


def test_a_rule_under_a_dropped_array_is_refused(policy_copy: Any) -> None:
    """``payload.detainees: drop`` beside ``payload.detainees[].surnames: keep`` loaded, and the surnames were
    dropped with the detainees whatever the second rule said: refused at the rule that never applies."""
    policy_copy.replace("agreements/pan-usa.yaml", "      payload.detainees: keep\n",
                        "      payload.detainees: drop\n      payload.detainees[].surnames: keep\n")
    line = policy_copy.line_of("agreements/pan-usa.yaml", "payload.detainees[].surnames: keep")
    assert _problems(policy_copy) == [
        f"agreements/pan-usa.yaml:{line}: [shadowed] USA-SEIZURE: payload.detainees[].surnames never applies: "
        "payload.detainees is dropped; remove one of the two"]


def test_each_rule_under_a_dropped_record_is_refused_on_its_own_line(policy_copy: Any) -> None:
    """``location: drop`` above PAN-CRI's rules on the location's fields makes every one of them moot: one line per
    rule, at that rule, each naming the field that drops it."""
    policy_copy.replace("agreements/pan-cri.yaml", "      location.latitude: generalise\n",
                        "      location: drop\n      location.latitude: generalise\n")
    expected = [
        f"agreements/pan-cri.yaml:{policy_copy.line_of('agreements/pan-cri.yaml', f'{path}:')}: [shadowed] "
        f"CRI-MIGRATION: {path} never applies: location is dropped; remove one of the two"
        for path in ("location.latitude", "location.longitude", "location.province", "location.border_sector",
                     "location.place_name")
    ]
    assert sorted(_problems(policy_copy)) == sorted(expected)


def test_removing_either_rule_of_the_pair_loads(policy_copy: Any) -> None:
    """The refusal is of the pair: the drop alone, or the kept record with the rule below it, loads."""
    body = policy_copy.text("agreements/pan-usa.yaml")
    policy_copy.replace("agreements/pan-usa.yaml", "      payload.detainees: keep\n", "      payload.detainees: drop\n")
    policy_copy.load()
    policy_copy.write("agreements/pan-usa.yaml", body.replace(
        "      payload.detainees: keep\n", "      payload.detainees: keep\n      payload.detainees[].surnames: keep\n"))
    policy_copy.load()
