"""Policy texts (titles, names, whys, legal bases, purposes) hold printable characters only, refused alike by load
and lint with the field named: they reach every decision's reasons, the audit and the console as written."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from policies import lint
from puente.errors import PolicyError

NOW_TEXT = "2025-06-02T14:00:00+00:00"
TITLE = "title: Panamá–Estados Unidos, viajeros de alto riesgo e interdicción marítima"
PARTNER = "name: Fuerza Especial Antidrogas (Policía Nacional), joint task force"
DESCRIPTION = "Not to be used as evidence in court without the originator's consent."

# YAML double-quoted escapes for characters a reader does not see as written, and what the refusal names.
UNSHOWN = {
    "escape sequence": ("\\e[2KOK", "character U+001B (a control character)"),
    "tab": ("a\\tb", "character U+0009 (a control character)"),
    "bidi override": ("\\u202Elartsua", "character U+202E (an invisible format character)"),
    "zero-width space": ("FE\\u200BAN", "character U+200B (an invisible format character)"),
    "private use": ("\\uE000", "the private-use character U+E000"),
    "unassigned": ("a\\u0378b", "the unassigned character U+0378"),
    "line separator": ("a\\u2028b", "character U+2028 (a line separator)"),
    "Hangul filler": ("FEAN\\u3164", "the invisible character U+3164 HANGUL FILLER"),
    "halfwidth Hangul filler": ("FE\\uFFA0AN", "the invisible character U+FFA0 HALFWIDTH HANGUL FILLER"),
    "Hangul choseong filler": ("\\u115FFEAN", "the invisible character U+115F HANGUL CHOSEONG FILLER"),
    "blank braille": ("FEAN \\u2800", "the invisible character U+2800 BRAILLE PATTERN BLANK"),
    "variation selector": ("FEAN\\uFE0F", "the invisible character U+FE0F VARIATION SELECTOR-16"),
    "Mongolian variation selector": ("FEA\\u180BN", "the invisible character U+180B MONGOLIAN FREE VARIATION "
                                     "SELECTOR ONE"),
    "grapheme joiner": ("Pe\\u034Frez", "the invisible character U+034F COMBINING GRAPHEME JOINER"),
    "stack of marks": ("FEA\\u0301\\u0301\\u0301\\u0301\\u0301N", "a run of 5 combining marks on one character"),
}


def _problems(policy_copy: Any) -> list[str]:
    """The problem lines of a policy that does not load, and lint refuses it alike."""
    with pytest.raises(PolicyError) as loaded:
        policy_copy.load()
    with pytest.raises(PolicyError) as linted:
        lint(policy_copy.root, now=datetime.fromisoformat(NOW_TEXT))
    problems = str(loaded.value).splitlines()[1:]
    assert str(linted.value).splitlines()[1:] == problems
    return problems


@pytest.mark.parametrize("what", sorted(UNSHOWN))
def test_a_title_or_partner_name_with_a_character_not_shown_is_refused(policy_copy: Any, what: str) -> None:
    """A title or a partner's name holding a control, format, private-use, unassigned or separator character, one
    drawn as nothing (a Hangul filler, blank braille, a variation selector) or a stack of combining marks is refused
    at its line, naming the field and the character."""
    escape, named = UNSHOWN[what]
    policy_copy.replace("agreements/pan-usa.yaml", TITLE, f'title: "PAN-USA {escape}"')
    policy_copy.replace("partners.yaml", PARTNER, f'name: "FEAN {escape}"')
    problems = _problems(policy_copy)
    assert len(problems) == 2, problems
    title = policy_copy.line_of("agreements/pan-usa.yaml", "title: ")
    assert any(p.startswith(f"agreements/pan-usa.yaml:{title}: title: ") for p in problems), problems
    assert any(": partners[" in p and "].name: " in p for p in problems), problems
    if what != "line separator":  # a line break in a one-line text is refused as such first
        assert all(f"{named} refused" in p for p in problems), problems


def test_prose_with_a_control_character_is_refused_but_keeps_its_line_breaks(policy_copy: Any) -> None:
    """Prose (a handling code's description) may run over lines, but a control or format character in it (written
    as a YAML escape) is refused as in a title."""
    policy_copy.replace("vocabulary.yaml", f"description: {DESCRIPTION}", f'description: "{DESCRIPTION}\\nSecond."')
    assert policy_copy.load().notes["handling.H1"] == DESCRIPTION + "\nSecond."
    for escape, named in (("\\e[8m", "U+001B (a control character)"), ("\\r", "U+000D (a control character)"),
                          ("\\u202E", "U+202E (an invisible format character)")):
        policy_copy.replace("vocabulary.yaml", "\\nSecond.", f"\\nSecond {escape}.")
        problems = _problems(policy_copy)
        assert len(problems) == 1 and "handling_codes.H1.description: " in problems[0], problems
        assert f"character {named} refused" in problems[0], problems
        policy_copy.replace("vocabulary.yaml", f"\\nSecond {escape}.", "\\nSecond.")


def test_letters_marks_symbols_and_spaces_of_any_script_load(policy_copy: Any) -> None:
    """What a reader sees as written loads: accents, combining marks, other scripts, symbols, a no-break space."""
    policy_copy.replace("agreements/pan-usa.yaml", TITLE,
                        'title: "Panamá–EE.\u00a0UU. n\u0303 Ελλάδα 日本 № 5 € ✓"')
    titles = {a.model.id: a.model.title for a in policy_copy.load().sources.agreements}
    assert "Panamá–EE.\u00a0UU. n\u0303 Ελλάδα 日本 № 5 € ✓" in titles.values()


def test_the_punctuation_of_spanish_and_four_stacked_marks_load(policy_copy: Any) -> None:
    """Spanish punctuation and quotes (¿ ¡ — « » ’), a no-break space, and a letter carrying four combining marks (as
    a Hebrew letter may) load: only what hides or overlays text is refused."""
    title = "¿Señal? ¡Sí! — «Ñandú» d’Avila\u00a0y ש\u05c1\u05bc\u05b8\u0591"
    policy_copy.replace("agreements/pan-usa.yaml", TITLE, f'title: "{title}"')
    titles = {a.model.id: a.model.title for a in policy_copy.load().sources.agreements}
    assert title in titles.values()
