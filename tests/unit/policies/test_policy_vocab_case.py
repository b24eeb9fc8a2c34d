"""Vocabulary codes a reader takes for one are one code: refused when they differ only in case, separators or
look-alike characters, and every code is written in capitals, as markings carry it.

Before this check, ``orcon: {effect: none}`` beside ORCON loaded, and an alert marked ``orcon`` went to COL
redacted while one marked ORCON was withheld; a second ``secreto`` low on the scale let a secret alert reach
a partner cleared for RESTRINGIDO.
"""

from __future__ import annotations

from typing import Any

import pytest

from policies import load_policy_set
from policies._check import code_key
from puente.errors import PolicyError


def _error(policy_copy: Any) -> str:
    with pytest.raises(PolicyError) as caught:
        load_policy_set(policy_copy.root)
    return str(caught.value)


def _lines(message: str, text: str) -> list[str]:
    return [line for line in message.splitlines() if text in line]


@pytest.mark.parametrize(
    ("old", "new", "added", "clash"),
    [
        ("  LES:\n", "  orcon:\n    effect: none\n    description: x\n  LES:\n", "orcon",
         "code orcon and code ORCON"),
        ("  H1:\n", "  h2:\n    effect: none\n    description: x\n  H1:\n", "h2", "code H2 and code h2"),
        ("scale: [PUBLICO, RESTRINGIDO, CONFIDENCIAL, SECRETO]",
         "scale: [PUBLICO, secreto, RESTRINGIDO, CONFIDENCIAL, SECRETO]", "secreto", "level SECRETO and level secreto"),
        ("reliability: [A, B, C, D, E, F]", "reliability: [A, B, C, D, E, F, a]", "a", "grade a and grade A"),
    ],
)
def test_codes_differing_only_in_case_are_refused(policy_copy: Any, old: str, new: str, added: str,
                                                  clash: str) -> None:
    """Each name space: caveats, handling codes, the scale, the grades. The message names the file and line,
    both codes and what to do; the lower-case code is refused for its case as well."""
    policy_copy.replace("vocabulary.yaml", old, new)
    message = _error(policy_copy)
    found = _lines(message, clash)
    assert len(found) == 1, message
    assert found[0].startswith("/") is False and found[0].startswith("vocabulary.yaml:")
    assert "keep one and remove or rename the other" in found[0]
    assert _lines(message, f"{added} must be written in capitals"), message


def test_look_alike_codes_and_separators_are_refused(policy_copy: Any) -> None:
    """0RCON (a zero) is ORCON to a reader; PANAMA_0NLY too; a code is unique under code_key."""
    policy_copy.replace("vocabulary.yaml", "  LES:\n", "  0RCON:\n    effect: none\n    description: x\n  LES:\n")
    line = policy_copy.line_of("vocabulary.yaml", "  0RCON:")
    message = _error(policy_copy)
    # (a code's line is where its entry's value starts: the line of the key, or the next)
    assert any(f"vocabulary.yaml:{n}: [invalid] caveats and handling codes: code 0RCON and code ORCON" in message
               for n in (line, line + 1)), message
    assert code_key("PANAMA-ONLY") == code_key("panama_0nly") == code_key("PANAMA.ONLY") == code_key("PANAMAONLY")
    assert code_key("N1C") == code_key("NIC") and code_key("col") == code_key("COL")
    assert code_key("H1") != code_key("H2") and code_key("A") != code_key("B")
    assert code_key("ALA") != code_key("AIA")  # Åland and Anguilla: an L is no I


def test_a_code_that_differs_only_by_a_separator_is_refused(policy_copy: Any) -> None:
    """NO_FORN beside NOFORN (with effect none) would let an agency writing NO_FORN avoid the restriction:
    separators are dropped when codes are compared, not made one."""
    policy_copy.replace("vocabulary.yaml", "  LES:\n", "  NO_FORN:\n    effect: none\n    description: x\n  LES:\n")
    policy_copy.replace("vocabulary.yaml", "  LES:\n", "  NOFORN:\n    effect: none\n    description: y\n  LES:\n")
    assert "code NOFORN and code NO_FORN differ only in case, separators" in _error(policy_copy)


def test_a_partner_id_that_reads_as_a_country_code_is_refused(policy_copy: Any) -> None:
    """N1C (a one) reads as NIC, Nicaragua's code: markings naming NIC would be read as naming it."""
    policy_copy.replace("partners.yaml", "  - id: CRI\n", "  - id: N1C\n")
    assert "partner id N1C is a country code but N1C's country is CRI" in _error(policy_copy)


def test_a_caveat_may_not_be_named_as_a_handling_code(policy_copy: Any) -> None:
    """A marking's caveats and handling code sit side by side: a caveat H2 (effect none) would read as H2."""
    policy_copy.replace("vocabulary.yaml", "  LES:\n", "  H2:\n    effect: none\n    description: x\n  LES:\n")
    assert "code H2 and code H2 differ only in case" in _error(policy_copy)


@pytest.mark.parametrize(
    ("old", "new", "shown"),
    [
        ("  LES:\n", "  Les2:\n    effect: none\n    description: x\n  LES:\n", "code Les2"),
        ("  LES:\n", "  NO-FORN:\n    effect: domestic_only\n    description: x\n  LES:\n", "code NO-FORN"),
        ("scale: [PUBLICO,", "scale: [publico_2, PUBLICO,", "level publico_2"),
        ("country: PAN ", "country: pan ", "country pan"),
    ],
)
def test_codes_are_written_in_capitals(policy_copy: Any, old: str, new: str, shown: str) -> None:
    """Markings carry codes in capitals, digits and '_' (the shipped vocabulary's own form), and are matched
    exactly: a code in any other form is refused even without a twin."""
    policy_copy.replace("vocabulary.yaml", old, new)
    assert _lines(_error(policy_copy), f"{shown} must be written in capitals"), shown


def test_partner_ids_that_look_alike_are_refused(policy_copy: Any) -> None:
    """C0L (a zero) beside COL: "REL TO C0L" reads as Colombia."""
    policy_copy.replace("partners.yaml", "  - id: CRI\n", "  - id: C0L\n")
    line = policy_copy.line_of("partners.yaml", "  - id: C0L")
    assert f"partners.yaml:{line}: [invalid] partner id C0L and partner id COL differ only in look-alike" in (
        _error(policy_copy))


def test_the_shipped_vocabulary_passes() -> None:
    ps = load_policy_set()
    assert set(ps.caveat_effects) == {"PANAMA_ONLY", "ORCON", "LES", "PII"}


def test_agreement_ids_that_read_the_same_are_refused(policy_copy: Any) -> None:
    """An agreement id names why a partner got a field in every decision: a second agreement whose id differs only
    in case or look-alikes from another's is refused, naming both files' ids."""
    policy_copy.write("agreements/combifron2.yaml",
                      policy_copy.text("agreements/combifron.yaml").replace("id: COMBIFRON", "id: C0mbifron", 1)
                      .replace("rule: COMBIFRON-", "rule: OTHER-"))
    message = _error(policy_copy)
    assert len(_lines(message, "is used by another file too")) == 2, message
    assert _lines(message, "agreement id C0mbifron") and _lines(message, "agreement id COMBIFRON"), message


def test_rule_ids_that_read_the_same_are_refused(policy_copy: Any) -> None:
    """Rule ids likewise: COMBIFRON-BORDER beside Combifron_Border is one rule to a reader of the audit."""
    policy_copy.replace("agreements/fean.yaml", "rule: FEAN-BORDER", "rule: Combifron_Border")
    message = _error(policy_copy)
    assert _lines(message, "rule id Combifron_Border is not unique"), message
    assert _lines(message, "rule id COMBIFRON-BORDER is not unique"), message
