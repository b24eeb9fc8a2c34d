"""``puente policy explain`` and the example alerts shipped for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import schemas
from policies._alerts import alert_value
from policies._load import schema_fields
from puente.cli import main

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "policies" / "examples").glob("*.json"))
AT = "2025-06-02T09:00:00-05:00"


def test_there_are_examples() -> None:
    """Example alerts ship for each alert type."""
    types = {json.loads(p.read_text("utf-8"))["alert_type"] for p in EXAMPLES}
    assert types == set(schemas.PAYLOAD_TYPE)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_fit_the_schema(path: Path) -> None:
    """Every example has only schema fields and round-trips through the alert codec."""
    alert = alert_value(json.loads(path.read_text("utf-8")), schema_fields(), path.name)
    assert alert["alert_id"]


def test_explain_shows_decision_reasons_changes_and_view(capsys: pytest.CaptureFixture[str]) -> None:
    """Explain prints the outcome, rule, reasons, a field-change table and the redacted view."""
    example = next(p for p in EXAMPLES if "gofast" in p.name)
    assert main(["policy", "explain", str(example), "--partner", "COL", "--at", AT]) == 0
    out = capsys.readouterr().out
    assert "Decision   DELIVER_REDACTED under COMBIFRON" in out
    assert "Rules      COMBIFRON-SEIZURE" in out
    assert "payload.detainees[].surnames" in out and "pseudonymise" in out
    assert '"operation_name": "■■■"' in out
    assert "Mejía" not in out.split("Partner's view", 1)[1]
    assert "demonstration key" in out


def test_explain_withhold_for_every_partner(capsys: pytest.CaptureFixture[str]) -> None:
    """--partner ALL explains each partner; a Panama-only alert is withheld from every foreign one."""
    example = next(p for p in EXAMPLES if "panama-only" in p.name)
    assert main(["policy", "explain", str(example), "--partner", "ALL", "--at", AT]) == 0
    out = capsys.readouterr().out
    assert out.count("Decision   WITHHOLD") == 3
    assert out.count("Decision   DELIVER under FEAN-JTF") == 1
    assert "PANAMA_ONLY keeps the alert inside PAN" in out


def test_explain_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that is not an alert exits 3 with a clear message; an --at that is no time is refused by argparse (one
    without an offset is UTC, as for every time flag)."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"alert_type": "SEIZURE", "colour": "red"}')
    assert main(["policy", "explain", str(bad), "--partner", "COL", "--at", AT]) == 3
    assert "lacks: <a key of 6 characters>" in capsys.readouterr().err  # not a name the schema gives a field
    with pytest.raises(SystemExit):
        main(["policy", "explain", str(EXAMPLES[0]), "--partner", "COL", "--at", "the second of June"])


def test_explain_shows_the_envelope_and_the_fields_no_rule_names(capsys: pytest.CaptureFixture[str]) -> None:
    """Explain names the envelope rule and every field it keeps, and lists the fields dropped because
    nothing names them apart from the agreement's own changes."""
    example = next(p for p in EXAMPLES if "tocumen" in p.name)
    assert main(["policy", "explain", str(example), "--partner", "COL", "--at", AT]) == 0
    out = capsys.readouterr().out
    envelope = out[
        out.index("Envelope   rule ENVELOPE (vocabulary.yaml)") : out.index("Changes    the agreement's own")
    ]
    for path in ("alert_id", "markings.classification", "markings.handling_code", "markings.expires_at",
                 "markings.originator.agency"):  # fmt: skip
        assert path in envelope
    assert "markings.originator.unit" not in envelope
    own = out[out.index("Changes    the agreement's own") : out.index("Not named")]
    unnamed = out[out.index("Not named") : out.index("Partner's view")]
    assert "payload.encounter" in own and "markings.originator.unit" not in own
    assert "markings.originator.unit" in unnamed and "payload.match_reason" in unnamed
    assert '"unit": null' in out


@pytest.mark.parametrize("partner", ["all", "All", "col"])
def test_partner_ids_and_all_are_matched_exactly(partner: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`--partner ALL` is exact, as a partner id is: `all` is refused as `col` is, in one line offering ALL."""
    assert main(["policy", "explain", str(EXAMPLES[0]), "--partner", partner, "--at", AT]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"unknown partner {partner!r}" in err[0] and "(or ALL)" in err[0], err


def test_a_line_break_in_the_alert_cannot_forge_a_line_of_the_explanation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An alert withheld from COL (SECRETO, above its clearance) whose originator agency, a caveat and its
    releasability hold line breaks and a forged "Decision   DELIVER..." line: the explanation still has one line per
    part, the only Decision line is the real one, and the breaks are shown escaped."""
    example = next(p for p in EXAMPLES if "gofast" in p.name)
    alert = json.loads(example.read_text("utf-8"))
    forged = "X\nDecision   DELIVER_REDACTED under COMBIFRON\nRules      COMBIFRON-SEIZURE" + "\n" * 40
    alert["markings"]["classification"] = "SECRETO"
    alert["markings"]["originator"]["agency"] = forged
    alert["markings"]["caveats"] = [forged]
    alert["markings"]["releasable_to"] = ["COL", forged]
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(alert), encoding="utf-8")
    assert main(["policy", "explain", str(path), "--partner", "COL", "--at", AT]) == 0
    lines = capsys.readouterr().out.splitlines()
    decisions = [line for line in lines if line.startswith("Decision")]
    assert decisions == ["Decision   WITHHOLD (agreement considered: COMBIFRON)"]
    assert not any(line.startswith("Rules      COMBIFRON-SEIZURE") for line in lines)
    assert "" not in lines[:8]
    assert any("X\\nDecision   DELIVER_REDACTED" in line for line in lines if line.startswith("Alert "))
