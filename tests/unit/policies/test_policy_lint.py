"""``puente policy lint``: clean on the shipped policy, and one planted mistake of each kind is caught."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from policies._lint import lint
from puente.cli import main

AT = datetime(2026, 6, 1, tzinfo=UTC)

ANNEX = """
id: COMBIFRON-ANNEX
title: COMBIFRON annex on border events
parties: [PAN, COL]
legal_basis: Annex to the COMBIFRON framework
purpose: Border events in Guna Yala only
valid_from: 2025-01-01
valid_until: 2026-12-31
max_classification: RESTRINGIDO
onward_sharing: false
retention_days: 30
covers:
  - rule: ANNEX-BORDER
    alert_type: BORDER_EVENT
    fields:
      location.place_name: drop
"""


def _kinds(policy_copy: Any, **kwargs: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for finding in lint(policy_copy.root, now=kwargs.pop("now", AT), **kwargs):
        found.setdefault(finding.kind, []).append(str(finding))
    return found


def test_shipped_policy_is_clean() -> None:
    """The shipped policy has no findings while every agreement is in force."""
    assert lint(now=AT) == []


def test_unknown_schema_field_is_found(policy_copy: Any) -> None:
    """A field rule naming a field the schema lacks is a schema-field finding with its line."""
    policy_copy.replace("agreements/pan-usa.yaml", "payload.match_score: keep", "payload.match_scores: keep")
    line = policy_copy.line_of("agreements/pan-usa.yaml", "payload.match_scores")
    found = _kinds(policy_copy)
    assert list(found) == ["schema-field"]
    assert found["schema-field"][0].startswith(f"agreements/pan-usa.yaml:{line}: [schema-field] USA-WATCHLIST:")


def test_expired_agreement_is_found(policy_copy: Any) -> None:
    """An agreement whose end date has passed is an expired finding."""
    policy_copy.replace("agreements/pan-cri.yaml", "valid_until: 2027-12-31", "valid_until: 2026-05-30")
    found = _kinds(policy_copy)
    assert list(found) == ["expired"]
    assert "PAN-CRI expired on 2026-05-30" in found["expired"][0]


def test_expiry_is_judged_at_the_given_time() -> None:
    """The shipped agreements show as expired once their end dates have passed."""
    found = lint(now=datetime(2028, 1, 2, tzinfo=UTC))
    assert {f.message.split()[0] for f in found if f.kind == "expired"} == {"COMBIFRON", "PAN-CRI"}


def test_contradictory_overlap_is_found(policy_copy: Any) -> None:
    """Two agreements in force together for COL border events with different rules are an overlap finding."""
    policy_copy.write("agreements/annex.yaml", ANNEX)
    found = _kinds(policy_copy)
    assert list(found) == ["overlap"]
    assert "COMBIFRON-ANNEX and COMBIFRON both cover BORDER_EVENT for COL" in found["overlap"][0]


def test_overlap_in_time_only_matters(policy_copy: Any) -> None:
    """Agreements for the same partner and type that follow each other in time do not overlap."""
    policy_copy.write(
        "agreements/annex.yaml", ANNEX.replace("2025-01-01", "2027-03-01").replace("2026-12-31", "2029-01-01")
    )
    assert _kinds(policy_copy) == {}


def test_partner_without_keys_is_found(policy_copy: Any) -> None:
    """A partner with no encryption key id is a keys finding."""
    policy_copy.replace("partners.yaml", "    keys:\n      encryption: CRI-enc-2026a\n", "")
    found = _kinds(policy_copy)
    assert list(found) == ["keys"]
    assert "CRI has no encryption key id" in found["keys"][0]


def test_key_files_are_checked_in_the_keys_dir(policy_copy: Any, tmp_path: Path) -> None:
    """With a keys directory, every key id needs a <id>.* file there."""
    keys = tmp_path / "keys"
    keys.mkdir()
    ids = ["COL-enc-2026a", "USA-enc-2026a", "CRI-enc-2026a"]
    for key_id in ids:
        (keys / f"{key_id}.pem").write_text("-")
    found = _kinds(policy_copy, keys_dir=keys)
    assert list(found) == ["keys"]
    assert found["keys"] == [f"partners.yaml:{policy_copy.line_of('partners.yaml', 'FEAN-enc-2026a')}: [keys] "
                             f"FEAN: no file {keys}/FEAN-enc-2026a.*"]  # fmt: skip


def test_shadowed_rule_is_found(policy_copy: Any) -> None:
    """A rule on a field inside a dropped field never applies and is a shadowed finding."""
    policy_copy.replace(
        "agreements/pan-usa.yaml",
        "      payload.detainees: keep\n",
        "      payload.detainees: drop\n      payload.detainees[].surnames: pseudonymise\n",
    )
    found = _kinds(policy_copy)
    assert list(found) == ["shadowed"]
    assert "payload.detainees is already dropped" in found["shadowed"][0]


def test_invalid_reference_is_found(policy_copy: Any) -> None:
    """A name that refers to nothing (a classification off the scale) is an invalid finding."""
    policy_copy.replace("agreements/fean.yaml", "max_classification: SECRETO", "max_classification: ULTRA")
    assert list(_kinds(policy_copy)) == ["invalid"]


@pytest.mark.parametrize(
    ("plant", "code"),
    [(None, 0), (("agreements/pan-cri.yaml", "valid_until: 2027-12-31", "valid_until: 2026-01-01"), 1)],
)
def test_lint_command_exit_codes(
    policy_copy: Any, capsys: pytest.CaptureFixture[str], plant: tuple[str, str, str] | None, code: int
) -> None:
    """`puente policy lint` exits 0 when clean and 1 with findings, printing each one."""
    if plant:
        policy_copy.replace(*plant)
    assert main(["policy", "lint", "--dir", str(policy_copy.root), "--at", "2026-06-01T00:00:00Z"]) == code
    out = capsys.readouterr().out
    assert ("[expired]" in out) == bool(code)


def test_lint_command_reports_unreadable_files(policy_copy: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that does not validate makes lint exit 2 with file and line on stderr."""
    policy_copy.replace("agreements/fean.yaml", "retention_days: 1825", "retention_days: forever")
    assert main(["policy", "lint", "--dir", str(policy_copy.root)]) == 2
    assert "agreements/fean.yaml:" in capsys.readouterr().err
