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


ANNEX = """id: COMBIFRON-ANNEX
title: COMBIFRON annex on border events
parties: [PAN, COL]
legal_basis: Annex to the COMBIFRON framework
purpose: Border events in Chiriquí too
valid_from: 2025-01-01
valid_until: 2026-12-31
max_classification: RESTRINGIDO
onward_sharing: false
retention_days: 30
covers:
  - rule: ANNEX-BORDER
    alert_type: BORDER_EVENT
    when:
      area: {provinces: [CHIRIQUI]}
    fields:
      agency: keep
"""
OVERLAP_ADVICE = "and a decision would need both to pass; merge them, or end one before the other starts"


def test_an_annex_in_force_beside_its_agreement_is_refused(policy_copy: Any) -> None:
    """An annex meant to widen COMBIFRON's area to Chiriquí loaded, and every border event to COL then had to pass
    both agreements' areas, so none did: two agreements covering one partner's alert type on a common day are
    refused in one line naming both, the partner, the alert type and the days they share."""
    policy_copy.write("agreements/annex.yaml", ANNEX)
    line = policy_copy.line_of("agreements/combifron.yaml", "alert_type: BORDER_EVENT")
    assert _problems(policy_copy) == [
        f"agreements/combifron.yaml:{line}: [overlap] COMBIFRON-ANNEX (agreements/annex.yaml) and COMBIFRON "
        f"(agreements/combifron.yaml) both cover BORDER_EVENT for COL from 2025-01-01 to 2026-12-31, {OVERLAP_ADVICE}"]


@pytest.mark.parametrize(("valid_from", "valid_until", "shared"), [
    ("2027-02-28", "2029-12-31", "from 2027-02-28 to 2027-02-28"),  # COMBIFRON's last day is the annex's first
    ("2020-01-01", "2024-03-01", "from 2024-03-01 to 2024-03-01"),  # ... and its first the annex's last
    ("2024-06-01", "2024-06-30", "from 2024-06-01 to 2024-06-30"),  # inside it
])  # fmt: skip
def test_agreements_sharing_a_single_day_overlap(policy_copy: Any, valid_from: str, valid_until: str,
                                                 shared: str) -> None:
    """Validity includes both its days (``valid_until`` is the last day in force): one day in common is an overlap."""
    policy_copy.write("agreements/annex.yaml", ANNEX.replace("2025-01-01", valid_from).replace("2026-12-31",
                                                                                             valid_until))
    (problem,) = _problems(policy_copy)
    assert f"both cover BORDER_EVENT for COL {shared}, {OVERLAP_ADVICE}" in problem, problem


@pytest.mark.parametrize(("valid_from", "valid_until"), [
    ("2027-03-01", "2029-12-31"),  # a renewal: begins the day after COMBIFRON's last (2027-02-28)
    ("2020-01-01", "2024-02-29"),  # ended the day before COMBIFRON's first (2024-03-01)
])  # fmt: skip
def test_an_agreement_renewed_by_the_next_loads(policy_copy: Any, valid_from: str, valid_until: str) -> None:
    """Agreements one after the other, with no day in common, load: a renewal is not an overlap."""
    policy_copy.write("agreements/annex.yaml", ANNEX.replace("2025-01-01", valid_from).replace("2026-12-31",
                                                                                             valid_until))
    assert "COMBIFRON-ANNEX" in policy_copy.load().agreements


def test_an_end_far_off_overlaps_every_later_agreement(policy_copy: Any) -> None:
    """An agreement has an end date, always; one written far off (2999-12-31, read as no end) shares days with every
    agreement starting after it, for the same partner and alert type."""
    policy_copy.replace("agreements/combifron.yaml", "valid_until: 2027-02-28", "valid_until: 2999-12-31")
    policy_copy.write("agreements/annex.yaml", ANNEX.replace("2025-01-01", "2040-01-01").replace("2026-12-31",
                                                                                               "2041-12-31"))
    (problem,) = _problems(policy_copy)
    assert f"for COL from 2040-01-01 to 2041-12-31, {OVERLAP_ADVICE}" in problem, problem


def test_agreements_for_other_partners_or_alert_types_load_together(policy_copy: Any) -> None:
    """Days in common matter only for one partner and one alert type: COMBIFRON's dates with USA, or with COL for an
    alert type COMBIFRON does not cover, load."""
    policy_copy.write("agreements/annex.yaml", ANNEX.replace("parties: [PAN, COL]", "parties: [PAN, USA]"))
    policy_copy.load()
    policy_copy.write("agreements/annex.yaml", ANNEX.replace("parties: [PAN, COL]", "parties: [PAN, CRI]")
                      .replace("    when:\n      area: {provinces: [CHIRIQUI]}\n", "")
                      .replace("alert_type: BORDER_EVENT", "alert_type: SEIZURE"))
    policy_copy.load()


def test_an_agreement_with_several_partners_overlaps_each_partners_own(policy_copy: Any) -> None:
    """An annex naming COL and CRI beside COMBIFRON and PAN-CRI, all covering border events, is refused once for
    each: a line naming COL and COMBIFRON, and one naming CRI and PAN-CRI."""
    policy_copy.write("agreements/annex.yaml", ANNEX.replace("parties: [PAN, COL]", "parties: [PAN, COL, CRI]"))
    problems = _problems(policy_copy)
    assert len(problems) == 2, problems
    assert "and COMBIFRON (agreements/combifron.yaml) both cover BORDER_EVENT for COL from" in problems[0]
    assert "and PAN-CRI (agreements/pan-cri.yaml) both cover BORDER_EVENT for CRI from" in problems[1]
