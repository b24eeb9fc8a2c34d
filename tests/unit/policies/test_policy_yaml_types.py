"""What YAML reads a key or a value as is what the policy holds: no key a reader sees as one thing and the
loader as another, no scalar converted to a kind the file does not show, one line saying what to write."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from policies import lint, load_policy_set
from policies._source import check_suite, suite_files
from policies._yamlio import locate, read_yaml
from puente.errors import PolicyError

AGREEMENT = "agreements/combifron.yaml"
REMARKS = "      payload.remarks: {action: drop, why: free text from patrol reports may name sources}"
HEADCOUNT = "      payload.headcount: keep"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _problem(policy_copy: Any) -> str:
    """The one problem line of a policy that does not load (the heading names the directory)."""
    with pytest.raises(PolicyError) as caught:
        policy_copy.load()
    heading, *problems = str(caught.value).splitlines()
    assert "do not validate" in heading
    assert len(problems) == 1, problems
    return problems[0]


def _read(tmp_path: Path, body: str) -> Any:
    path = tmp_path / "policy.yaml"
    path.write_text(body, encoding="utf-8")
    return read_yaml(path, "policy.yaml")[0]


# ---- a !!binary key cannot stand in for a written one ----------------------------------------------------------


def test_a_binary_key_cannot_undo_a_field_rule(policy_copy: Any) -> None:
    """``!!binary cGF5bG9hZC5yZW1hcmtz: keep`` is bytes to the duplicate check and ``payload.remarks`` once
    validated: it would keep the field a grep of the file shows dropped. Refused, naming file and line."""
    policy_copy.replace(AGREEMENT, REMARKS, f"{REMARKS}\n      !!binary {_b64('payload.remarks')}: keep")
    line = policy_copy.line_of(AGREEMENT, "!!binary")
    assert _problem(policy_copy) == (
        f"{AGREEMENT}:{line}: tag !!binary refused: policy files may not use YAML tags; "
        "write the value plainly (quote it if it is text)"
    )


def test_a_binary_key_cannot_replace_a_caveat(policy_copy: Any) -> None:
    """``!!binary T1JDT04=:`` would replace ORCON's entry (needs consent) with one of effect none."""
    policy_copy.replace(
        "vocabulary.yaml", "  LES:\n", f"  !!binary {_b64('ORCON')}:\n    effect: none\n    description: x\n  LES:\n"
    )
    line = policy_copy.line_of("vocabulary.yaml", "!!binary")
    assert _problem(policy_copy).startswith(f"vocabulary.yaml:{line}: tag !!binary refused")


@pytest.mark.parametrize(
    "tag",
    [
        "!!binary",
        "!!set",
        "!!omap",
        "!!pairs",
        "!!str",
        "!!float",
        "!!int",
        "!!map",
        "!!timestamp",
        "!",
        "!custom",
        "!!python/name:os.system",
    ],
)
def test_every_explicit_tag_is_refused(tmp_path: Path, tag: str) -> None:
    with pytest.raises(PolicyError, match=rf"^policy\.yaml:2: tag {tag[:2]}\S* refused: policy files may not use"):
        _read(tmp_path, f"a: 1\nb: {tag} {{}}\n" if tag in ("!!set", "!!map") else f"a: 1\nb: {tag} x\n")


# ---- a key YAML does not read as text --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("yes", "a boolean (yes)"),
        ("true", "a boolean (true)"),
        ("Off", "a boolean (Off)"),
        ("1", "a whole number (1)"),
        ("0x1F", "a whole number (0x1F)"),
        ("1.5", "a decimal number (1.5)"),
        (".nan", "a decimal number (.nan)"),
        ("2026-01-01", "a date (2026-01-01)"),
        ("null", "null (null)"),
        ("~", "null (~)"),
        ("=", "YAML's value indicator (=)"),
    ],
)
def test_a_key_read_as_no_text_is_refused_with_what_to_do(policy_copy: Any, key: str, kind: str) -> None:
    """``yes: keep`` among the field rules is the key True to YAML and "True" to validation: refused, saying
    what YAML read and to quote it, naming the file, the line and where in the file."""
    policy_copy.replace(AGREEMENT, HEADCOUNT, f"      {key}: keep")
    line = policy_copy.line_of(AGREEMENT, f"      {key}: keep")
    assert _problem(policy_copy) == (
        f"{AGREEMENT}:{line}: covers[0].fields: the key on line {line} is read by YAML as {kind}; quote it"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("a: 1\n? \n: x\n", "policy.yaml:2: the key on line 2 is read by YAML as null (an empty key); quote it"),
        ("a:\n  ? [x, y]\n  : 1\n", "policy.yaml:2: a: the key on line 2 is a list; a key must be a name"),
        ("a:\n  ? {x: 1}\n  : 1\n", "policy.yaml:2: a: the key on line 2 is a mapping; a key must be a name"),
        ("a:\n  <<: {b: 1}\n", "policy.yaml:2: a: merge key << on line 2 refused: policy files may not use merge keys"),
        (
            "a:\n  - b: 1\n    2025-06-01T10:00:00Z: 2\n",
            "policy.yaml:3: a[0]: the key on line 3 is read by YAML as a date (2025-06-01T10:00:00Z); quote it",
        ),
    ],
)
def test_keys_that_are_no_names_are_refused_anywhere(tmp_path: Path, body: str, expected: str) -> None:
    with pytest.raises(PolicyError) as caught:
        _read(tmp_path, body)
    assert str(caught.value).startswith(expected)


def test_quoted_keys_are_text_and_still_compared_as_written(tmp_path: Path) -> None:
    """Quoting is the way to write such a key; a quoted key equal to a plain one is a duplicate."""
    assert _read(tmp_path, '"yes": 1\n"1": 2\n\'2026-01-01\': 3\n"~": 4\n') == {
        "yes": 1,
        "1": 2,
        "2026-01-01": 3,
        "~": 4,
    }
    with pytest.raises(PolicyError, match=r"^policy\.yaml:2: duplicate key 'payload\.remarks' \(first on line 1\)"):
        _read(tmp_path, 'payload.remarks: drop\n"payload.remarks": keep\n')


# ---- booleans and integers only as a reader reads them ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", "yes is read by YAML as a boolean (true); write true or false, or quote it if it is text"),
        ("No", "No is read by YAML as a boolean (false); write true or false"),
        ("ON", "ON is read by YAML as a boolean (true)"),
        ("010", "010 is read by YAML as the number 8; write it in plain decimal digits, or quote it if it is text"),
        ("0b11", "0b11 is read by YAML as the number 3"),
        ("1_000", "1_000 is read by YAML as the number 1000"),
        ("1:30", "1:30 is read by YAML as the number 90"),
        ("1_0.0", "1_0.0 is read by YAML as the number 10.0; write it in plain decimal digits"),
        ("0.0_1", "0.0_1 is read by YAML as the number 0.01"),
        ("0:0.5", "0:0.5 is read by YAML as the number 0.5"),
    ],
)
def test_yaml_1_1_spellings_of_booleans_and_integers_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(PolicyError) as caught:
        _read(tmp_path, f"a: 1\nb: [x, {text}]\n")
    assert str(caught.value).startswith(f"policy.yaml:2: {expected}")
    assert "\n" not in str(caught.value)


def test_plain_booleans_and_integers_still_read(tmp_path: Path) -> None:
    text = "a: [true, false, True, FALSE, 0, 180, -5, +7, 0.01, 1.0e-3, -77.5, .5, '010', 'yes']\n"
    assert _read(tmp_path, text) == {
        "a": [True, False, True, False, 0, 180, -5, 7, 0.01, 0.001, -77.5, 0.5, "010", "yes"]
    }


# ---- scalars of the wrong kind, field by field ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "old", "new", "expected"),
    [
        (AGREEMENT, "retention_days: 180", "retention_days: true",
         "retention_days: YAML read this as a boolean (true); give a whole number, unquoted"),
        (AGREEMENT, "retention_days: 180", 'retention_days: "180"',
         "retention_days: YAML read this as text ('180'); give a whole number, unquoted"),
        (AGREEMENT, "retention_days: 180", "retention_days: 180.0",
         "retention_days: YAML read this as a decimal number (180.0); give a whole number, unquoted"),
        (AGREEMENT, "retention_days: 180", "retention_days: !!str 180",
         "tag !!str refused: policy files may not use YAML tags; write the value plainly (quote it if it is text)"),
        (AGREEMENT, "retention_days: 180", "retention_days: 0x10",
         "0x10 is read by YAML as the number 16; write it in plain decimal digits, or quote it if it is text"),
        (AGREEMENT, "recall_ack_hours: 72", "recall_ack_hours: 72.5",
         "recall_ack_hours: YAML read this as a decimal number (72.5); give a whole number, unquoted"),
        (AGREEMENT, "onward_sharing: false", 'onward_sharing: "off"',
         "onward_sharing: YAML read this as text ('off'); give true or false, unquoted"),
        (AGREEMENT, "onward_sharing: false", "onward_sharing: 0",
         "onward_sharing: YAML read this as a whole number (0); give true or false, unquoted"),
        (AGREEMENT, "onward_sharing: false", "onward_sharing: yes",
         "yes is read by YAML as a boolean (true); write true or false, or quote it if it is text"),
        (AGREEMENT, "onward_sharing: false", "onward_sharing: off",
         "off is read by YAML as a boolean (false); write true or false, or quote it if it is text"),
        (AGREEMENT, "or_own_list: true", 'or_own_list: "true"',
         "covers[2].when.watchlist.or_own_list: YAML read this as text ('true'); give true or false, unquoted"),
        (AGREEMENT, "grid: 0.01, why", 'grid: "0.01", why',
         "covers[0].fields.location.latitude.grid: YAML read this as text ('0.01'); give a number, unquoted"),
        (AGREEMENT, "grid: 0.01, why", "grid: true, why",
         "covers[0].fields.location.latitude.grid: YAML read this as a boolean (true); give a number, unquoted"),
        (AGREEMENT, "grid: 0.01, why", "grid: .nan, why",
         "covers[0].fields.location.latitude.grid: YAML read this as NaN, not a number (.nan); give a finite number"),
        (AGREEMENT, "grid: 0.01, why", "grid: -.inf, why",
         "covers[0].fields.location.latitude.grid: YAML read this as infinity (-.inf); give a finite number"),
        (AGREEMENT, "grid: 0.01, why", "grid: 1e-3, why",
         "grid: YAML read this as text ('1e-3'); give a number with a decimal point (YAML reads 1e-3 as text, "
         "1.0e-3 as a number)"),
        ("vocabulary.yaml", "pseudonym_length: 16", "pseudonym_length: true",
         "view.pseudonym_length: YAML read this as a boolean (true); give a whole number, unquoted"),
        ("vocabulary.yaml", "grid: 0.1 ", 'grid: "0.1" ',
         "view.grid: YAML read this as text ('0.1'); give a number, unquoted"),
        ("vocabulary.yaml", "grid: 0.1 ", "grid: .NaN ",
         "view.grid: YAML read this as NaN, not a number (.nan); give a finite number"),
        ("areas.yaml", "precision_km: 10", "precision_km: 10.0",
         "precision_km: YAML read this as a decimal number (10.0); give a whole number, unquoted"),
        ("areas.yaml", "precision_km: 10", "precision_km: false",
         "precision_km: YAML read this as a boolean (false); give a whole number, unquoted"),
    ],
)  # fmt: skip
def test_a_scalar_of_the_wrong_kind_is_one_line_naming_file_line_and_field(
    policy_copy: Any, relative: str, old: str, new: str, expected: str
) -> None:
    """``retention_days: true`` is no 1, ``"180"`` no 180, ``"off"`` no false, ``"0.01"`` no grid: each is one
    line saying what YAML read and what to give, at the file and line of the value."""
    policy_copy.replace(relative, old, new)
    line = policy_copy.line_of(relative, new.strip())
    problem = _problem(policy_copy)
    assert problem.startswith(f"{relative}:{line}: ")
    assert problem.endswith(expected)


def test_an_area_coordinate_must_be_a_number(policy_copy: Any) -> None:
    """A latitude of ``true`` is no 1.0, nor ``"9.54"`` 9.54."""
    policy_copy.replace("areas.yaml", "      - [[9.54, -82.95]", '      - [[true, "-82.95"]')
    line = policy_copy.line_of("areas.yaml", "[[true")
    with pytest.raises(PolicyError) as caught:
        policy_copy.load()
    assert str(caught.value).splitlines()[1:] == [
        f"areas.yaml:{line}: provinces.BOCAS_DEL_TORO.outline[0][0][0]: YAML read this as a boolean (true); "
        "give a number, unquoted",
        f"areas.yaml:{line}: provinces.BOCAS_DEL_TORO.outline[0][0][1]: YAML read this as text ('-82.95'); "
        "give a number, unquoted",
    ]


def test_the_shipped_policy_still_reads_its_numbers_and_flags() -> None:
    policy = load_policy_set()
    assert policy.version.startswith("sha256:")


@pytest.mark.parametrize(("old", "new", "key"), [
    ("      area:\n        provinces: [DARIEN, GUNA_YALA, EMBERA_WOUNAAN]\n"
     "        border_sectors: [DARIEN_PUERTO_OBALDIA, DARIEN_JAQUE, DARIEN_PALO_DE_LAS_LETRAS, GUNA_YALA_LA_MIEL]\n",
     "      area:   # DARIEN, GUNA_YALA only (annex II)\n", "area"),
    ("min_grading: {reliability: C, credibility: 3}", "min_grading:   # pending the annex", "min_grading"),
    ("      categories: [DRUGS, ARMS, AMMUNITION, CASH]", "      categories:   # to be agreed", "categories"),
    ("      watchlist: {risk_levels: [HIGH, CRITICAL], or_own_list: true}", "      watchlist: ~", "watchlist"),
    ("    when:\n      area:\n        provinces: [DARIEN, GUNA_YALA, EMBERA_WOUNAAN]\n"
     "        border_sectors: [DARIEN_PUERTO_OBALDIA, DARIEN_JAQUE, DARIEN_PALO_DE_LAS_LETRAS, GUNA_YALA_LA_MIEL]\n"
     "      event_types: [CROSSING, MIGRANT_FLOW, ARMED_GROUP_SIGHTING, CLASH, CLANDESTINE_AIRSTRIP]\n",
     "    when: {}   # annex II areas only\n", "when"),
])
def test_a_key_given_no_value_is_refused_not_read_as_no_condition(policy_copy: Any, old: str, new: str,
                                                                   key: str) -> None:
    """YAML reads a key with nothing after it as null, and null is what "no condition" is made of: a file
    that seems to restrict (a comment where the list was) would deliver everything. Refused, naming the key."""
    policy_copy.replace(AGREEMENT, old, new)
    problem = _problem(policy_copy)
    assert f"{key} has no value" in problem or f"{key} has no condition" in problem


def test_a_grid_finer_than_the_floor_is_refused(policy_copy: Any) -> None:
    """grid: 0.0000001 kept the patrol's exact position while the audit said "generalise": refused."""
    policy_copy.replace(AGREEMENT, "location.latitude: {action: generalise, grid: 0.01,",
                        "location.latitude: {action: generalise, grid: 0.0000001,")
    problem = _problem(policy_copy)
    assert "grid" in problem and "0.001" in problem


def test_only_a_coordinate_generalises_to_a_grid(policy_copy: Any) -> None:
    """A match score of 0.87 on a grid of 0.001 goes out as it is while the audit says "generalise": a grid is
    for positions, in degrees; any other number is kept or dropped."""
    policy_copy.replace("agreements/pan-usa.yaml", "payload.match_score: keep",
                        "payload.match_score: {action: generalise, grid: 0.001}")
    with pytest.raises(PolicyError) as caught:
        policy_copy.load()
    assert "payload.match_score: only a coordinate (location.latitude, location.longitude) is generalised to a " \
           "grid" in str(caught.value)


# ---- what YAML reads is what a reviewer sees ----------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85", "\r"])
def test_a_line_break_only_yaml_sees_cannot_hide_a_rule_in_a_comment(policy_copy: Any, char: str) -> None:
    """git, grep and an editor show ``# note<U+2028>      payload.remarks: keep`` as one comment line; YAML reads a
    comment and then a rule keeping the field. Refused, naming the line as a reviewer counts it."""
    hidden = f"      # remarks are reviewed by hand{char}      payload.remarks: keep"
    policy_copy.replace(AGREEMENT, REMARKS, f"{REMARKS}\n{hidden}")
    line = policy_copy.line_of(AGREEMENT, REMARKS) + 1  # (the file's text is read back with universal newlines)
    problem = _problem(policy_copy)
    assert problem.startswith(f"{AGREEMENT}:{line}: character U+{ord(char):04X} (a line break only YAML sees)")


def test_a_control_that_reorders_the_text_is_refused(policy_copy: Any) -> None:
    policy_copy.replace(AGREEMENT, REMARKS, REMARKS.replace("free text", "free \u202etxet\u202c"))
    assert "character U+202E (a control that reorders how the text shows) refused" in _problem(policy_copy)


def test_line_feeds_and_carriage_return_line_feeds_are_plain_line_ends(policy_copy: Any) -> None:
    body = policy_copy.text(AGREEMENT)
    policy_copy.write(AGREEMENT, body.replace("\n", "\r\n"))
    assert policy_copy.load() is not None


PURPOSE_END = "  clandestine airstrips and irregular migration through the Darién gap.\n"
MIN_GRADING = "min_grading: {reliability: C, credibility: 3}\n"


def test_a_rule_below_a_why_block_is_refused_not_read_as_the_why(policy_copy: Any) -> None:
    """A rule written below ``why: >-`` after a blank line was the why's text: the file showed the remarks dropped
    while the field rule kept them. A why is one line; a text block under it is refused at the why's line."""
    policy_copy.replace(AGREEMENT, REMARKS, "      payload.remarks:\n        action: keep\n        why: >-\n"
                        "          reviewed by hand\n\n          payload.remarks: {action: drop}")
    line = policy_copy.line_of(AGREEMENT, "why: >-")
    assert _problem(policy_copy).startswith(
        f"{AGREEMENT}:{line}: covers[0].fields.payload.remarks.why: a text over several lines (lines {line} to "
        f"{line + 3}) refused: write it on one line; only legal_basis, purpose may run over lines")


@pytest.mark.parametrize("value", ["'the commission's title\n  continued'", "\"the commission\n  continued\"",
                                   "the commission\n  continued", "|\n  the commission", ">\n  the commission"])
def test_a_short_text_is_one_line_in_the_file(policy_copy: Any, value: str) -> None:
    """A title, a why or a name continued on the next line (quoted, plain or a block) is refused at its line."""
    policy_copy.replace(AGREEMENT, "title: Panamá–Colombia, Comisión Binacional Fronteriza (COMBIFRON)",
                        f"title: {value.replace(chr(39) + 's', chr(39) * 2 + 's')}")
    line = policy_copy.line_of(AGREEMENT, "title: ")
    assert _problem(policy_copy).startswith(f"{AGREEMENT}:{line}: title: a text over several lines (lines {line} to")


@pytest.mark.parametrize("escape", ["\\n", "\\r", "\\L", "\\N", "\\P", "\\v", "\\f", "\\x1e"])
def test_a_short_text_holds_no_line_break(policy_copy: Any, escape: str) -> None:
    """A line break written as an escape (``"a\\nb"``, and U+2028 as ``"a\\Lb"``, NEL, a form feed: every break
    Python splits lines at) is refused too: a title shows in reasons and error lines."""
    policy_copy.replace(AGREEMENT, "title: Panamá–Colombia, Comisión Binacional Fronteriza (COMBIFRON)",
                        f'title: "COMBIFRON{escape}min_grading: none"')
    line = policy_copy.line_of(AGREEMENT, "title: ")
    assert _problem(policy_copy) == f"{AGREEMENT}:{line}: title: Value error, a line break refused: this text is " \
                                    "one line (a title, a why, a name)"


@pytest.mark.parametrize(
    ("entry", "reads_as"),
    [("  min_grading: {reliability: B, credibility: 3}", "the entry min_grading:"),
     ("  payload.detainees[].documents[].number: {action: pseudonymise}", "the entry payload.detainees[].documents[]"),
     ("  location: keep", "the entry location:"),
     ("  - rule: COL-EXTRA", "the entry rule:"),
     ("  'retention_days': 30", "the entry retention_days:"),
     ("  H3: {effect: none}", "the entry H3:"),
     ("  # min_grading removed pending the annex", "a comment"),
     ("  min_grading : {reliability: B, credibility: 3}", "the entry min_grading:"),
     ("  'onward_sharing' : false", "the entry onward_sharing:"),
     ('  "onward_sharing":false', "the entry onward_sharing:"),
     ("  {onward_sharing: false}", "the entry onward_sharing:"),
     ("  ? onward_sharing\n  : false", "an explicit key (?)"),
     ("  : false", "the value of an explicit key (:)"),
     ("  onward_shar\u0456ng: false", "the entry onward_sharing: (written onward_shar\\u0456ng)"),
     ("  onw\u00e1rd_sharing: false", "the entry onward_sharing: (written onw\\xe1rd_sharing)"),
     ("  \uff4din_grading: {reliability: B, credibility: 3}", "the entry min_grading: (written \\uff4din_grading)"),
     ("  min\u200b_grading: {reliability: B, credibility: 3}", "the entry min_grading: (written min\\u200b_grading)"),
     # the structure read as a reviewer reads it: a full-width colon, a minus sign or an invisible character before
     # a dash, an anchor or a tag before the key
     ("  min_grading\uff1a {reliability: C, credibility: 3}", "the entry min_grading:"),
     ("  \u2212 min_grading: {reliability: C, credibility: 3}", "the entry min_grading:"),
     ("  \u200b- min_grading: {reliability: C, credibility: 3}", "the entry min_grading:"),
     ("  &x min_grading: {reliability: C, credibility: 3}", "the entry min_grading:"),
     ("  !!str min_grading: {reliability: C, credibility: 3}", "the entry min_grading:")],
)
def test_a_line_of_prose_that_reads_as_an_entry_is_refused(policy_copy: Any, entry: str, reads_as: str) -> None:
    """``min_grading`` written below ``purpose: >-`` after a blank line was the purpose's text, and an E5 seizure
    went to the partner: a line of prose that reads as an entry of the policy is refused, at that line."""
    policy_copy.replace(AGREEMENT, MIN_GRADING, "")
    policy_copy.replace(AGREEMENT, PURPOSE_END, f"{PURPOSE_END}\n{entry}\n")
    line = policy_copy.line_of(AGREEMENT, entry.splitlines()[0].strip())
    assert _problem(policy_copy).startswith(f"{AGREEMENT}:{line}: purpose: this line reads as {reads_as}")


@pytest.mark.parametrize("quote", ["'", '"'])
def test_the_first_line_of_a_text_below_its_key_is_checked_too(policy_copy: Any, quote: str) -> None:
    """A quoted purpose starting on the line after its key held ``min_grading: {...}`` as its first line, and only
    the lines after the first were checked: the first line of a text is checked wherever it starts."""
    start = policy_copy.text(AGREEMENT).index("purpose: >-\n")
    end = policy_copy.text(AGREEMENT).index(PURPOSE_END) + len(PURPOSE_END)
    policy_copy.replace(AGREEMENT, policy_copy.text(AGREEMENT)[start:end],
                        f"purpose:\n  {quote}{MIN_GRADING}  Planning reception.{quote}\n")
    line = policy_copy.line_of(AGREEMENT, "purpose:") + 1
    assert _problem(policy_copy).startswith(f"{AGREEMENT}:{line}: purpose: this line reads as the entry min_grading:")


def test_the_key_line_of_a_quoted_text_is_checked_from_where_the_text_starts(policy_copy: Any) -> None:
    """A quoted text starting on its key's line is checked from its opening quote on, not read as ``purpose:``."""
    start = policy_copy.text(AGREEMENT).index("purpose: >-\n")
    end = policy_copy.text(AGREEMENT).index(PURPOSE_END) + len(PURPOSE_END)
    policy_copy.replace(AGREEMENT, policy_copy.text(AGREEMENT)[start:end],
                        "purpose: 'Note: the plan governs.\n  Planning reception.'\n")
    purpose = next(a for a in policy_copy.load().sources.agreements if a.model.id == "COMBIFRON").model.purpose
    assert purpose == "Note: the plan governs. Planning reception."
    policy_copy.replace(AGREEMENT, "purpose: 'Note:", f"purpose: '{MIN_GRADING.strip()}")
    line = policy_copy.line_of(AGREEMENT, "purpose: '")
    assert _problem(policy_copy).startswith(f"{AGREEMENT}:{line}: purpose: this line reads as the entry min_grading:")


def test_a_description_block_cannot_take_in_a_code(policy_copy: Any) -> None:
    """The vocabulary's descriptions are prose too: a handling code swallowed by the one above it is refused."""
    end = "      so release needs the originator's recorded consent.\n"
    policy_copy.replace("vocabulary.yaml", end, f"{end}\n      H4: {{effect: none, description: none}}\n")
    line = policy_copy.line_of("vocabulary.yaml", "H4: ")
    assert _problem(policy_copy).startswith(f"vocabulary.yaml:{line}: handling_codes.H3.description: this line "
                                            "reads as the entry H4:")


def test_prose_over_paragraphs_with_ordinary_colons_still_loads(policy_copy: Any) -> None:
    """Prose keeps its paragraphs and its ordinary colons: ``Note:``, ``Article 5:``, ``Artículo 7 :``, ``Año:``,
    a time, a list of purposes."""
    policy_copy.replace(AGREEMENT, PURPOSE_END, f"{PURPOSE_END}\n  Note: the annual plan governs the indicators.\n"
                        "  Article 5: as follows:\n  - screening at the border,\n  - seizures in Darién.\n"
                        "  Artículo 7 : las partes.\n  Año: 2025.\n  14:30 hours.\n")
    purpose = next(a for a in policy_copy.load().sources.agreements if a.model.id == "COMBIFRON").model.purpose
    assert "\nNote: the annual plan governs the indicators. Article 5: as follows: - screening" in purpose
    assert purpose.endswith("Artículo 7 : las partes. Año: 2025. 14:30 hours.")


@pytest.mark.parametrize("name", ["pan-cri-amendment.yml", "PAN-CRI.YAML", "pan-cri.yaml.bak", "old",
                                  "pan-cri-strict.tests.yaml"])
def test_an_agreement_file_under_another_name_is_refused_not_skipped(policy_copy: Any, name: str) -> None:
    """A stricter agreement saved as ``.yml`` was never read, and the more permissive one decided alone."""
    target = policy_copy.root / "agreements" / name
    if name == "old":
        target.mkdir()
    else:
        target.write_text(policy_copy.text("agreements/pan-cri.yaml"), encoding="utf-8")
    assert _problem(policy_copy) == (
        f"agreements/{name}: not an agreement file (agreements are named X.yaml, X of letters, digits, _ . and - and "
        "not starting with a dot, their tests X.tests.yaml beside them): rename it or move it out; an agreement under "
        "another name would be left out")


@pytest.mark.parametrize("name", [".pan-cri-seizures.yaml", ".pan-cri.tests.yaml", ".pan-cri.yml", "pan cri.yaml",
                                  "pan-crí.yaml", "-pan-cri.yaml"])
def test_an_agreement_file_ls_does_not_show_or_a_name_not_allowed_is_refused(policy_copy: Any, name: str) -> None:
    """A hidden ``.pan-cri-seizures.yaml`` was read as an agreement, and a seizure to Costa Rica went from withheld
    to delivered while ``ls`` showed no such file: only names the allow-list admits are read, any other refused."""
    (policy_copy.root / "agreements" / name).write_text(policy_copy.text("agreements/pan-cri.yaml").replace(
        "id: PAN-CRI\n", "id: PAN-CRI-SEIZ\n"), encoding="utf-8")
    problem = _problem(policy_copy)
    assert problem.startswith(f"agreements/{name}: not an agreement file (agreements are named X.yaml, X of letters,")
    with pytest.raises(PolicyError, match="not an agreement file"):
        lint(policy_copy.root, now=datetime(2025, 6, 2, tzinfo=UTC))
    assert all(p.name != name for p in suite_files(policy_copy.root))


def test_a_stray_file_name_cannot_start_a_line_of_its_own(policy_copy: Any) -> None:
    """A file named ``x\\nforged: ...`` printed a second problem line that seemed Puente's own: a
    stray name is shown on one line, its line breaks escaped."""
    name = "x\nforged: all agreements valid.yaml"
    (policy_copy.root / "agreements" / name).write_text("id: X\n", encoding="utf-8")
    assert _problem(policy_copy).startswith("agreements/x\\nforged: all agreements valid.yaml: not an agreement file")


def test_an_agreement_saved_as_the_suite_beside_an_agreement_is_refused_not_skipped(policy_copy: Any) -> None:
    """A stricter agreement saved as ``X.tests.yaml`` beside ``X.yaml`` was read by no one, and the more permissive
    one decided alone: the loader reads every suite as one, and names the file and what to do in one line."""
    stricter = policy_copy.text("agreements/pan-cri.yaml").replace("id: PAN-CRI\n", "id: PAN-CRI-2\n")
    policy_copy.write("agreements/combifron.tests.yaml", stricter)
    line = policy_copy.line_of("agreements/combifron.tests.yaml", "id: PAN-CRI-2")
    assert _problem(policy_copy) == (
        f"agreements/combifron.tests.yaml:{line}: not a test suite (no suite: or cases:); a file named X.tests.yaml "
        "is read as the suite of X.yaml, never as an agreement: if it is an agreement, name it <name>.yaml")


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [("expect: {outcome: WITHHOLD, rules: [handling.H2]}", "expect: {outcome: WITHHOLD, rule: [handling.H2]}",
      "cases[4].expect.rule: Extra inputs are not permitted"),
     ("expect: {outcome: WITHHOLD, rules: [handling.H2]}", "expect: {outcome: WITHHELD}", "cases[4].expect.outcome: "),
     ("suite: fean\n", "suite: fean\nsuites: fean\n", "suites: Extra inputs are not permitted")],
)
def test_a_suite_that_does_not_validate_refuses_the_policy(policy_copy: Any, old: str, new: str, problem: str) -> None:
    """A suite is validated when the policy loads (and so by lint), not only by ``puente policy test``: a mistake in
    it refuses the policy, named by file and line, rather than passing unread."""
    suite = "agreements/fean.tests.yaml"
    policy_copy.replace(suite, old, new)
    line = policy_copy.line_of(suite, new.splitlines()[-1])
    assert _problem(policy_copy).startswith(f"{suite}:{line}: {problem}")
    with pytest.raises(PolicyError, match=f"{suite}:{line}: "):
        lint(policy_copy.root, now=datetime(2025, 6, 2, tzinfo=UTC))


def test_every_shipped_suite_is_a_suite(policy_copy: Any) -> None:
    """The suites shipped beside the agreements read as suites, so the shipped policy loads with them checked."""
    names = [p.name for p in suite_files(policy_copy.root)]
    assert names == ["combifron.tests.yaml", "fean.tests.yaml", "pan-cri.tests.yaml", "pan-usa.tests.yaml"]
    assert [check_suite(policy_copy.root, f"agreements/{name}") for name in names] == [None] * len(names)
    assert policy_copy.load() is not None


def test_hidden_files_that_are_no_yaml_are_passed_over(policy_copy: Any) -> None:
    """``.gitkeep`` or an editor's swap file beside the agreements is no one's agreement: the policy loads."""
    for name in (".gitkeep", ".pan-cri.yaml.swp", ".DS_Store"):
        (policy_copy.root / "agreements" / name).write_bytes(b"\0binary")
    assert policy_copy.load() is not None


class _CountedPairs(list[Any]):
    """A mapping node's pairs, counting the walks of them."""

    walks = 0

    def __iter__(self) -> Any:
        type(self).walks += 1
        return super().__iter__()


def test_locating_every_key_of_a_large_mapping_walks_its_pairs_once(tmp_path: Path) -> None:
    """A check locates each field it looks at (``Doc.where``): a walk of the mapping's pairs per lookup made a
    vocabulary of 8,000 caveats take seconds to load, and an 8 MiB policy file minutes. The pairs are indexed at
    the first lookup, and every key is still found on its own line; a key the mapping lacks stops at it."""
    keys = [f"CAVEAT_{n}" for n in range(2_000)]
    root = yaml.compose("caveats:\n" + "".join(f"  {k}: {{effect: none}}\n" for k in keys))
    caveats = root.value[0][1]
    caveats.value = _CountedPairs(caveats.value)
    for n, key in enumerate(keys):
        assert locate(root, ("caveats", key, "effect")) == (n + 2, ("caveats", key, "effect"))
    assert locate(root, ("caveats", "NOT_THERE")) == (2, ("caveats",))
    assert _CountedPairs.walks == 1


@pytest.mark.parametrize(("relative", "old", "new"), [
    (AGREEMENT, "grid: 0.01, why", "grid: 0.02, why"),
    (AGREEMENT, "grid: 0.01, why", "grid: 0.03, why"),
    (AGREEMENT, "grid: 0.01, why", "grid: 0.25, why"),
    (AGREEMENT, "grid: 0.01, why", "grid: 2.0, why"),
    ("vocabulary.yaml", "grid: 0.1 ", "grid: 0.2 "),
])
def test_a_grid_off_the_ladder_is_refused(policy_copy: Any, relative: str, old: str, new: str) -> None:
    """Two versions of one alert on grids that do not divide each other (0.02 and 0.03) pin the value to pieces
    finer than either: only 1 or 5 times a power of ten is a grid."""
    policy_copy.replace(relative, old, new)
    line = policy_copy.line_of(relative, new.strip())
    problem = _problem(policy_copy)
    assert problem.startswith(f"{relative}:{line}: ")
    assert "a grid must be one of 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10" in problem
