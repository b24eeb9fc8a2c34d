"""Rule ``unknown.area``: an alert whose ``location.province`` or ``location.border_sector`` is not a code of the
policy's areas is withheld from every partner by the policy core itself, so ``decide``, ``puente policy explain``,
the agreements' test suites and the broker all say the same; ``puente policy lint`` reports a policy without areas."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from policies import Areas, decide, decide_many, lint, load_policy_set
from policies._compile import DecisionMemo
from puente.cli import main

POLICY = load_policy_set()
EXAMPLES = Path(__file__).resolve().parents[3] / "policies" / "examples"
GOFAST = EXAMPLES / "senan-gofast-seizure.json"  # DARIEN, DARIEN_JAQUE: delivered to COL (COMBIFRON)
AT = "2025-06-02T09:00:00-05:00"
FREE_TEXT = "JUAN_PEREZ_PA1234567"  # a name and a passport number, written as a code


def _alert(make_alert: Any, **location: Any) -> dict[str, Any]:
    alert: dict[str, Any] = copy.deepcopy(make_alert("darien_sighting"))
    alert["location"].update(location)
    return alert


def _when(alert: dict[str, Any]) -> datetime:
    when: datetime = alert["reported_at"] + timedelta(minutes=5)
    return when


def test_the_sighting_is_delivered_with_its_own_areas(make_alert: Any) -> None:
    """The alert the tests below change is delivered to a partner as it is, with no ``unknown.area``: the rule
    withholds for the label alone."""
    alert = _alert(make_alert)
    decisions = [decide(alert, p, POLICY, _when(alert)) for p in POLICY.partners]
    assert any(d.delivers for d in decisions)
    assert all("unknown.area" not in d.rule_ids for d in decisions)


@pytest.mark.parametrize("name", ["province", "border_sector"])
@pytest.mark.parametrize("value", [FREE_TEXT, "x" * 300])
def test_a_label_the_areas_do_not_list_withholds_from_every_partner(make_alert: Any, name: str, value: str) -> None:
    """A province or border sector that is not a code of areas.yaml withholds from every partner, rule
    ``unknown.area``, whose reason names the field and never the value, with or without a position."""
    for position in ({}, {"latitude": None, "longitude": None}):
        alert = _alert(make_alert, **{name: value}, **position)
        for partner in POLICY.partners:
            decision = decide(alert, partner, POLICY, _when(alert))
            assert not decision.delivers and "unknown.area" in decision.rule_ids, partner
            said = next(r for r in decision.reasons if r.startswith("location."))
            assert said.startswith(f"location.{name} is not a ") and "areas.yaml" in said
            assert value[:10] not in " ".join(decision.reasons)


def test_a_code_of_the_other_kind_is_not_one_of_the_fields(make_alert: Any) -> None:
    """A border sector's code given as the province, or a province's as the sector, is unknown in that field: each
    field holds the codes of its own kind of outline."""
    alert = _alert(make_alert, province="DARIEN_PALO_DE_LAS_LETRAS", border_sector="DARIEN")
    decision = decide(alert, "COL", POLICY, _when(alert))
    assert "unknown.area" in decision.rule_ids
    assert ("location.province is not a province or comarca of the policy's areas.yaml and location.border_sector "
            "is not a border sector of the policy's areas.yaml") in " ".join(decision.reasons)


def test_decide_many_says_what_decide_says(make_alert: Any) -> None:
    """The area's failure is read once per alert for every partner, and gives each the decision ``decide`` does."""
    alert = _alert(make_alert, border_sector=FREE_TEXT)
    partners = sorted(POLICY.partners)
    assert decide_many(alert, partners, POLICY, _when(alert)) == [
        decide(alert, p, POLICY, _when(alert)) for p in partners]


def test_a_policy_without_areas_withholds_every_alert_naming_one(make_alert: Any) -> None:
    """Fail closed: a policy that has no areas.yaml knows no area, so an alert naming a province or a sector goes to
    no one, and the reason says the policy has none; one naming neither is decided as before."""
    bare = dataclasses.replace(POLICY, areas=Areas(), memo=DecisionMemo())
    alert = _alert(make_alert)
    for partner in POLICY.partners:
        decision = decide(alert, partner, bare, _when(alert))
        assert not decision.delivers and "unknown.area" in decision.rule_ids
        assert "(the policy has none)" in " ".join(decision.reasons)
    unplaced = _alert(make_alert, province=None, border_sector=None)
    assert all("unknown.area" not in decide(unplaced, p, bare, _when(unplaced)).rule_ids for p in POLICY.partners)


def test_explain_withholds_an_unknown_area_as_the_broker_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    """``puente policy explain`` shows an example delivered as shipped withheld from every partner once its province
    is no code of areas.yaml, naming the rule and the field, not the value, among the reasons."""
    assert main(["policy", "explain", str(GOFAST), "--partner", "ALL", "--at", AT]) == 0
    assert "Decision   DELIVER" in capsys.readouterr().out
    alert = json.loads(GOFAST.read_text("utf-8"))
    alert["location"]["province"] = FREE_TEXT
    changed = tmp_path / "alert.json"
    changed.write_text(json.dumps(alert), encoding="utf-8")
    assert main(["policy", "explain", str(changed), "--partner", "ALL", "--at", AT]) == 0
    out = capsys.readouterr().out
    assert out.count("Decision   WITHHOLD") == len(POLICY.partners) and "Decision   DELIVER" not in out
    assert out.count("unknown.area") >= len(POLICY.partners)
    assert "location.province is not a province or comarca of the policy's areas.yaml" in out


def test_lint_reports_a_policy_without_areas(policy_copy: Any) -> None:
    """Without areas.yaml every alert naming an area is withheld, so lint says so, naming the file; the shipped
    policy, which has one, gets no such finding."""
    assert not [f for f in lint(now=datetime.fromisoformat(AT)) if "areas.yaml" in f.where]
    (policy_copy.root / "areas.yaml").unlink()
    found = [f for f in lint(policy_copy.root, now=datetime.fromisoformat(AT)) if f.where.startswith("areas.yaml")]
    assert [f.kind for f in found] == ["area"]
    assert "withheld from every partner" in found[0].message and "unknown.area" in found[0].message


@pytest.mark.parametrize(("kept", "lacking"), [("provinces", "border_sectors"), ("border_sectors", "provinces")])
def test_lint_reports_an_areas_file_lacking_a_kind(policy_copy: Any, kept: str, lacking: str) -> None:
    """An areas.yaml listing no province, or no border sector, withholds every alert naming one of that kind, so lint
    reports it at areas.yaml, naming the kind it lacks and not the one it lists."""
    body = policy_copy.text("areas.yaml")
    head, rest = body.split("\nprovinces:", 1)
    provinces, sectors = rest.split("\nborder_sectors:", 1)
    kinds = {"provinces": "\nprovinces:" + provinces, "border_sectors": "\nborder_sectors:" + sectors}
    policy_copy.write("areas.yaml", head + kinds[kept])
    found = [f for f in lint(policy_copy.root, now=datetime.fromisoformat(AT)) if f.where.startswith("areas.yaml")]
    said = {"provinces": "lists no province:", "border_sectors": "lists no border sector:"}
    assert [f.kind for f in found] == ["area"]
    assert said[lacking] in found[0].message and "unknown.area" in found[0].message


def test_lint_reports_each_kind_an_empty_areas_file_lacks(policy_copy: Any) -> None:
    """An areas.yaml with empty lists of both kinds gets one finding for each, at its line."""
    policy_copy.write("areas.yaml", "source: none\nprecision_km: 10\nprovinces: {}\nborder_sectors: {}\n")
    found = [f for f in lint(policy_copy.root, now=datetime.fromisoformat(AT)) if f.where.startswith("areas.yaml")]
    assert [(f.where, f.kind) for f in found] == [("areas.yaml:3", "area"), ("areas.yaml:4", "area")]
    assert "no province:" in found[0].message and "no border sector:" in found[1].message
