"""Loading policy files: errors name file and line, names must refer to something, the version is stable."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

import policies._load
from policies import DEFAULT_DIR, DEFAULT_INSTANCE, PolicySet, load_policy_set, subscriber_instances
from policies._model import FEED_INFO_LABEL, HPKE_INFO_MAX, KEY_BLOCK_HEADER_FIXED, MAX_PARTNER_ID_BYTES
from puente.errors import ConfigError, PolicyError


def _error(policy_copy: Any) -> str:
    with pytest.raises(PolicyError) as caught:
        policy_copy.load()
    return str(caught.value)


def test_shipped_policy_loads(policy_set: PolicySet) -> None:
    """The shipped policy loads with four partners and four agreements."""
    assert sorted(policy_set.partners) == ["COL", "CRI", "FEAN", "USA"]
    assert sorted(policy_set.agreements) == ["COMBIFRON", "FEAN-JTF", "PAN-CRI", "PAN-USA"]
    assert policy_set.root == DEFAULT_DIR
    assert policy_set.scale == ("PUBLICO", "RESTRINGIDO", "CONFIDENCIAL", "SECRETO")


def test_policy_error_is_a_config_error() -> None:
    """PolicyError sits under ConfigError in the one error tree."""
    assert issubclass(PolicyError, ConfigError)


def test_wrong_type_names_file_line_and_field(policy_copy: Any) -> None:
    """A value of the wrong type is reported as file:line: field: problem."""
    policy_copy.replace("agreements/combifron.yaml", "retention_days: 180", "retention_days: half a year")
    line = policy_copy.line_of("agreements/combifron.yaml", "retention_days:")
    assert f"agreements/combifron.yaml:{line}: retention_days:" in _error(policy_copy)


def test_unknown_key_is_refused_with_its_line(policy_copy: Any) -> None:
    """A misspelt key inside a nested list item is named with its line."""
    cover = "    alert_type: BORDER_EVENT\n"
    policy_copy.replace("agreements/pan-cri.yaml", cover, cover + "    other: drop\n")
    line = policy_copy.line_of("agreements/pan-cri.yaml", "other: drop")
    message = _error(policy_copy)
    assert f"agreements/pan-cri.yaml:{line}: covers[0].other: Extra inputs are not permitted" in message


def test_bad_field_action_points_at_the_rule(policy_copy: Any) -> None:
    """An unknown field action points at the field rule's line."""
    policy_copy.replace("agreements/pan-cri.yaml", "payload.headcount: keep", "payload.headcount: hide")
    line = policy_copy.line_of("agreements/pan-cri.yaml", "payload.headcount: hide")
    assert f"agreements/pan-cri.yaml:{line}: covers[0].fields.payload.headcount" in _error(policy_copy)


def test_duplicate_key_is_refused(policy_copy: Any) -> None:
    """A field named twice in one mapping is an error, not a silent override."""
    policy_copy.replace(
        "agreements/pan-cri.yaml",
        "      payload.headcount: keep\n",
        "      payload.headcount: keep\n      payload.headcount: keep\n",
    )
    line = policy_copy.line_of("agreements/pan-cri.yaml", "payload.headcount: keep") + 1
    assert f"agreements/pan-cri.yaml:{line}: duplicate key 'payload.headcount'" in _error(policy_copy)


def test_yaml_syntax_error_names_the_line(policy_copy: Any) -> None:
    """Broken YAML is reported with its file and line."""
    policy_copy.replace("partners.yaml", "    clearance: RESTRINGIDO", "    clearance: [RESTRINGIDO")
    assert "partners.yaml:" in _error(policy_copy)


def test_missing_file_and_directory_are_reported(policy_copy: Any, tmp_path: Path) -> None:
    """A missing vocabulary or a missing directory raises PolicyError."""
    (policy_copy.root / "vocabulary.yaml").unlink()
    assert "vocabulary.yaml: missing" in _error(policy_copy)
    with pytest.raises(PolicyError, match="no such policy directory"):
        load_policy_set(tmp_path / "nowhere")


def test_errors_in_several_files_are_all_listed(policy_copy: Any) -> None:
    """Every file's problems are listed, not only the first file's."""
    policy_copy.replace("agreements/pan-cri.yaml", "retention_days: 90", "retention_days: -1")
    policy_copy.replace("agreements/pan-usa.yaml", "retention_days: 365", "retention_days: 0")
    message = _error(policy_copy)
    assert "agreements/pan-cri.yaml" in message
    assert "agreements/pan-usa.yaml" in message


@pytest.mark.parametrize(
    ("relative", "old", "new", "expected"),
    [
        ("partners.yaml", "clearance: CONFIDENCIAL", "clearance: CONFIDENTIAL", "not on the scale"),
        ("agreements/combifron.yaml", "parties: [PAN, COL]", "parties: [PAN, COLOMBIA]", "not partners"),
        ("agreements/combifron.yaml", "max_classification: CONFIDENCIAL", "max_classification: TOP", "on the scale"),
        ("agreements/combifron.yaml", "credibility: 3}", "credibility: 7}", "minimum grading C7 is unknown"),
        ("agreements/combifron.yaml", "risk_levels: [HIGH, CRITICAL]", "risk_levels: [HIGH, SEVERE]", "SEVERE"),
        ("agreements/combifron.yaml", "      payload.headcount: keep", "      payload.headcount: mask", "only text"),
        ("agreements/pan-usa.yaml", "payload.person: keep", "payload.person: drop", "required by the schema"),
        ("agreements/pan-usa.yaml", "payload.match_score: keep", "markings.classification: drop",
         "kept for every partner by the envelope rule ENVELOPE"),
        ("agreements/pan-usa.yaml", "payload.match_score: keep", "markings.originator: drop", "envelope rule"),
        ("agreements/pan-usa.yaml", "payload.match_score: keep", "alert_id: {action: mask}", "envelope rule"),
        ("agreements/combifron.yaml", "      payload.detainees[].birth_year: keep\n", "",
         "name payload.detainees[].birth_year: keep"),
        ("agreements/pan-usa.yaml", "rule: USA-SEIZURE", "rule: USA-WATCHLIST", "not unique"),
        ("agreements/pan-cri.yaml", "payload.headcount: keep", "payload.head_count: keep", "has no field"),
    ],
)  # fmt: skip
def test_names_that_refer_to_nothing_stop_loading(
    policy_copy: Any, relative: str, old: str, new: str, expected: str
) -> None:
    """Loading refuses a policy whose names or field rules do not fit the vocabulary and schema."""
    policy_copy.replace(relative, old, new)
    message = _error(policy_copy)
    assert expected in message
    assert relative in message


def test_version_is_stable_across_loads_and_copies(policy_set: PolicySet, policy_copy: Any) -> None:
    """Loading the same policy again, from another directory, gives the same version."""
    assert load_policy_set().version == policy_set.version
    assert policy_copy.load().version == policy_set.version
    assert policy_set.version.startswith("sha256:") and len(policy_set.version) == 7 + 64


def test_version_ignores_layout_and_comments(policy_set: PolicySet, policy_copy: Any) -> None:
    """Comments, spelled-out defaults and key order do not change the version."""
    policy_copy.replace("agreements/pan-cri.yaml", "id: PAN-CRI", "# a new comment\nid: PAN-CRI")
    policy_copy.replace("agreements/pan-cri.yaml", "    fields:\n", "    others: drop\n    fields:\n")  # the default
    policy_copy.replace("agreements/pan-cri.yaml", "retention_days: 90\n", "")
    policy_copy.replace("agreements/pan-cri.yaml", "id: PAN-CRI", "retention_days: 90\nid: PAN-CRI")
    assert policy_copy.load().version == policy_set.version


def test_version_changes_with_meaning(policy_set: PolicySet, policy_copy: Any) -> None:
    """Any change of meaning, even one retention day, gives another version."""
    policy_copy.replace("agreements/pan-cri.yaml", "retention_days: 90", "retention_days: 91")
    assert policy_copy.load().version != policy_set.version


def test_version_changes_with_the_reviewed_releases_fields(
    policy_set: PolicySet, policy_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Release v2 edited in place (one field fewer under the same label) changes what views hold, and so the
    version; a release the policy was not reviewed against (v1) does not."""
    real = policies._load.schema_releases()
    path = "payload.person.documents[].expires_on"
    edited = {**real, "v2": {**real["v2"], "WATCHLIST_HIT": frozenset(real["v2"]["WATCHLIST_HIT"]) - {path}}}
    monkeypatch.setattr(policies._load, "schema_releases", lambda: edited)
    assert policy_copy.load().version != policy_set.version
    older = {**real, "v1": {**real["v1"], "WATCHLIST_HIT": frozenset(real["v1"]["WATCHLIST_HIT"]) - {path}}}
    monkeypatch.setattr(policies._load, "schema_releases", lambda: older)
    assert policy_copy.load().version == policy_set.version


def test_version_changes_with_an_enum_default_the_fingerprint_leaves_out(
    policy_set: PolicySet, policy_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schema's fingerprint (Avro's canonical form) leaves out defaults, yet a required enum a view empties
    takes its default: a default changed under the same fingerprint changes the views, and so the version."""
    real = policies._load.schema_fields()
    path = "payload.risk_level"
    info = real["WATCHLIST_HIT"][path]
    other = next(s for s in info.symbols if s != info.enum_default)
    changed = {**real, "WATCHLIST_HIT": {**real["WATCHLIST_HIT"], path: dataclasses.replace(info, enum_default=other)}}
    monkeypatch.setattr(policies._load, "schema_fields", lambda: changed)
    assert policy_copy.load().version != policy_set.version


def test_others_keep_is_refused_with_what_to_write_instead(policy_copy: Any) -> None:
    """others: keep contradicts the allow-list: refused at its line, telling the officer to name fields."""
    policy_copy.replace("agreements/pan-cri.yaml", "    fields:\n", "    others: keep\n    fields:\n")
    line = policy_copy.line_of("agreements/pan-cri.yaml", "others: keep")
    message = _error(policy_copy)
    assert f"agreements/pan-cri.yaml:{line}: [invalid] CRI-MIGRATION: others: keep" in message
    assert "name the fields or subtrees to keep" in message


def test_an_envelope_without_the_minimum_is_refused(policy_copy: Any) -> None:
    """The envelope must keep what no partner can honour an alert without; the finding names file and line."""
    policy_copy.replace("vocabulary.yaml", "    - markings.handling_code ", "    # - markings.handling_code ")
    policy_copy.replace("vocabulary.yaml", "    - markings.expires_at ", "    # - markings.expires_at ")
    line = policy_copy.line_of("vocabulary.yaml", "  keep:") + 1
    message = _error(policy_copy)
    assert f"vocabulary.yaml:{line}: [invalid] envelope ENVELOPE leaves out markings.handling_code, " in message
    assert "markings.expires_at: a partner cannot honour an alert without them" in message


def test_a_required_field_without_an_empty_value_must_be_named(policy_copy: Any) -> None:
    """A required enum without a schema default that nothing keeps stops loading, naming field and rule;
    naming it in the rule's fields is the cure."""
    policy_copy.replace("vocabulary.yaml", "    - alert_type ", "    # - alert_type ")
    message = _error(policy_copy)
    line = policy_copy.line_of("agreements/pan-cri.yaml", "rule: CRI-MIGRATION")
    assert (
        f"agreements/pan-cri.yaml:{line}: [invalid] CRI-MIGRATION: the BORDER_EVENT schema requires alert_type, "
        "which has no empty value"
    ) in message
    assert "USA-WATCHLIST: the WATCHLIST_HIT schema requires alert_type" in message


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("summary", "summary is not a marking every partner needs"),
        ("location.latitude", "location.latitude is not a marking every partner needs"),
        # An allow-list: content outside location, summary and payload, and the originator's unit, too.
        ("agency", "agency is not a marking every partner needs"),
        ("occurred_at", "occurred_at is not a marking every partner needs"),
        ("source_timezone", "source_timezone is not a marking every partner needs"),
        ("markings.originator.unit", "markings.originator.unit is not a marking every partner needs"),
        ("markings.originator", "is a record; name its fields one by one"),
        ("markings.colour", "the alert schema has no field markings.colour"),
        ("alert_id", "alert_id is listed 2 times"),
    ],
)
def test_the_envelope_keeps_named_markings_only(policy_copy: Any, entry: str, expected: str) -> None:
    """The envelope may not keep content (any field but ids, markings and lifecycle), a whole record, a field the
    schema lacks, or one field twice."""
    policy_copy.replace("vocabulary.yaml", "  keep:\n", f"  keep:\n    - {entry}\n")
    line = policy_copy.line_of("vocabulary.yaml", f"    - {entry}")
    message = _error(policy_copy)
    assert f"vocabulary.yaml:{line}: " in message
    assert expected in message


def test_the_envelope_rule_id_is_its_own(policy_copy: Any) -> None:
    """An agreement rule may not take the envelope rule's id: a redaction would name two rules at once."""
    policy_copy.replace("agreements/pan-cri.yaml", "rule: CRI-MIGRATION", "rule: ENVELOPE")
    assert "rule id ENVELOPE is the envelope rule's (vocabulary.yaml)" in _error(policy_copy)


def test_the_envelope_is_required(policy_copy: Any) -> None:
    """A vocabulary without an envelope does not load: nothing would say which markings travel."""
    body = policy_copy.text("vocabulary.yaml")
    start, end = body.index("envelope:"), body.index("view:")
    policy_copy.write("vocabulary.yaml", body[:start] + body[end:])
    assert "vocabulary.yaml:" in _error(policy_copy) and "envelope" in _error(policy_copy)


def test_a_partner_id_that_is_another_country_is_refused(policy_copy: Any) -> None:
    """Markings name partners by id or country: a Venezuelan partner given the id COL would receive alerts
    "REL TO COL". An id of a country code's form must be the partner's own country, and a country must not be
    another partner's id."""
    policy_copy.replace("partners.yaml", "  - id: COL\n", "  - id: VEN\n")
    policy_copy.replace("partners.yaml", "  - id: USA\n", "  - id: COL\n")
    message = _error(policy_copy)
    assert "partner id VEN is a country code but VEN's country is COL" in message
    assert "partner id COL is a country code but COL's country is USA" in message


def test_a_partner_id_that_is_a_country_in_another_case_is_refused(policy_copy: Any) -> None:
    """An agency may write "col" for Colombia: a partner of the USA with the id col would receive alerts
    "REL TO col" while COL has them withheld. Ids are compared as a person reads them (case aside), with the
    countries and with one another, and countries are written in capitals, as markings name them."""
    policy_copy.replace("partners.yaml", "  - id: USA\n", "  - id: col\n")
    message = _error(policy_copy)
    assert "partner id col is a country code but col's country is USA" in message
    assert "partner id col appears 2 times" in message
    policy_copy.replace("partners.yaml", "  - id: col\n", "  - id: USA\n")
    policy_copy.replace("partners.yaml", "    country: CRI\n", "    country: cri\n")
    assert "CRI: country cri must be written in capitals" in _error(policy_copy)
    policy_copy.replace("partners.yaml", "    country: cri\n", "    country: CRI\n")
    policy_copy.replace("partners.yaml", "  - id: USA\n", "  - id: CO.L\n")
    policy_copy.replace("partners.yaml", "  - id: CRI\n", "  - id: CO_L\n")
    assert "partner id co_l appears 2 times" in _error(policy_copy)  # one receipts topic to Kafka


def test_a_watchlist_has_one_keeper(policy_copy: Any) -> None:
    """A partner's own-list clause releases hits on the lists it keeps: USA naming Colombia's list as its own
    would receive the Colombian hits withheld from it. A list named by two partners is refused."""
    policy_copy.replace("partners.yaml", "    watchlists: [USA_PARTNER]\n",
                        "    watchlists: [USA_PARTNER, COL_PARTNER]\n")
    assert "USA: watchlist COL_PARTNER is COL's too" in _error(policy_copy)


def test_ids_that_are_no_country_code_and_partners_sharing_a_country_load(policy_copy: Any) -> None:
    """DEA is no country's code, and two partners of one country both receive what is released to it, as country
    naming means: such a policy loads (US-DHS beside DEA, both of country USA)."""
    policy_copy.replace("partners.yaml", "  - id: USA\n", "  - id: US-DHS\n")
    policy_copy.replace("partners.yaml", "  - id: COL\n", "  - id: DEA\n")
    policy_copy.replace("partners.yaml", "    country: COL\n", "    country: USA\n")
    policy_copy.replace("partners.yaml", "    watchlists: [COL_PARTNER]\n", "")  # a list kept by COL, not the USA
    policy_copy.replace("partners.yaml", "feed_topic: puente.feed.USA", "feed_topic: puente.feed.US-DHS")
    policy_copy.replace("partners.yaml", "feed_topic: puente.feed.COL", "feed_topic: puente.feed.DEA")
    policy_copy.replace("agreements/combifron.yaml", "parties: [PAN, COL]", "parties: [PAN, DEA]")
    policy_copy.replace("agreements/pan-usa.yaml", "parties: [PAN, USA]", "parties: [PAN, US-DHS]")
    assert {"DEA", "US-DHS"} <= set(policy_copy.load().partners)


def test_a_party_listed_twice_is_refused(policy_copy: Any) -> None:
    """parties: [PAN, COL, COL] would apply each rule twice (a pseudonym of a pseudonym): refused."""
    policy_copy.replace("agreements/combifron.yaml", "parties: [PAN, COL]", "parties: [PAN, COL, COL]")
    assert "COMBIFRON: parties COL listed more than once" in _error(policy_copy)


@pytest.mark.parametrize("rule", ["handling.H1", "caveat.ORCON", "originator.foreign", "COMBIFRON-SEIZURE.area"])
def test_a_rule_id_in_the_form_of_the_policys_own_is_refused(policy_copy: Any, rule: str) -> None:
    """Decisions list the policy's own checks and notices (handling.H1, originator.foreign, <rule>.<condition>)
    beside the agreement rules a view applies: a cover rule id with a dot would be taken for one, or one for it."""
    policy_copy.replace("agreements/combifron.yaml", "  - rule: COMBIFRON-BORDER", f"  - rule: {rule}")
    assert f"rule id {rule} has a dot" in _error(policy_copy)


@pytest.mark.parametrize(("path", "entry", "twin"), [
    ("vocabulary.yaml", "  H2:\n", '  "H2 ":\n    effect: none\n    description: the same code with a space\n'),
    ("vocabulary.yaml", "  PANAMA_ONLY:\n", '  "PANAMA_ONLY\\t":\n    effect: none\n    description: a tab after it\n'),
    ("areas.yaml", "  DARIEN:\n",
     '  "DARIEN ":\n    name: x\n    outline: [[[9.0, -83.0], [9.0, -77.0], [7.0, -77.0]]]\n'),
])
def test_a_code_with_whitespace_is_refused_not_made_a_twin(policy_copy: Any, path: str, entry: str, twin: str) -> None:
    """A map key that would read as an existing code once its whitespace went (``"H2 "``) is refused: stripped, it
    would silently replace the real entry, and a policy meant to hold H2 alerts for consent would release them."""
    policy_copy.replace(path, entry, twin + entry)
    message = _error(policy_copy)
    assert f"{path}:" in message and ".[key]: String should match pattern" in message


def test_codes_that_read_the_same_are_refused(policy_copy: Any) -> None:
    """YAML's ``1`` and ``"1"`` are two keys to the reader and one code to the policy: refused, not merged (the
    unquoted one first, as a key YAML reads as a number)."""
    policy_copy.replace("vocabulary.yaml", "  H2:\n", '  1:\n    effect: none\n    description: one\n'
                                                     '  "1":\n    effect: needs_consent\n    description: one again\n'
                                                     "  H2:\n")
    assert "read by YAML as a whole number (1); quote it" in _error(policy_copy)


@pytest.mark.parametrize(("instances", "expected"), [
    ("[main, a, b, c, d, e, f, g, h]", "9 subscriber instances named; at most 8"),
    ("[main, standby, main]", "subscriber instances must be distinct"),
    ("[]", "name at least one subscriber instance"),
    ("[main, a/b]", "String should match pattern"),
])  # fmt: skip
def test_a_partners_subscriber_instances_are_few_distinct_and_named(policy_copy: Any, instances: str,
                                                                     expected: str) -> None:
    """`instances` is an allow-list of transactional ids Kafka keeps for days: more than 8, one twice, none at all or
    a name no receipt chain may carry is refused at its line."""
    policy_copy.replace("partners.yaml", "    instances: [main, standby]\n", f"    instances: {instances}\n")
    line = policy_copy.line_of("partners.yaml", f"instances: {instances}")
    message = _error(policy_copy)
    assert f"partners.yaml:{line}: partners[0].instances" in message and expected in message, message


def test_a_partner_naming_no_instances_runs_main_alone(policy_copy: Any) -> None:
    """Left out, `instances` is [main]: the subscriber `puente subscribe` runs when --instance names none."""
    policy_copy.replace("partners.yaml", "    instances: [main, standby]\n", "")
    loaded = policy_copy.load()
    assert subscriber_instances(loaded, "COL") == (DEFAULT_INSTANCE,) == ("main",)
    assert subscriber_instances(loaded, "USA") == ("main", "standby") and subscriber_instances(loaded, "XX") == ()


def test_the_order_of_covers_in_a_file_does_not_change_the_version(policy_copy: Any) -> None:
    """Covers are compiled by rule whatever their order in the file, so the version does not follow that order."""
    before = policy_copy.load().version
    path = policy_copy.root / "agreements" / "combifron.yaml"
    text = path.read_text("utf-8")
    head, covers = text.split("covers:\n", 1)
    blocks = ["  - rule:" + block for block in covers.split("  - rule:")[1:]]
    path.write_text(head + "covers:\n" + "".join(reversed([b if b.endswith("\n") else b + "\n" for b in blocks])),
                    "utf-8")
    assert path.read_text("utf-8") != text
    assert policy_copy.load().version == before


@pytest.mark.parametrize("name", ["broker", "BROKER"])
def test_an_agreement_or_partner_named_as_the_brokers_keys_is_refused(policy_copy: Any, name: str) -> None:
    """The keystore names the broker's own keys broker-<role>-<g>: an agreement with that id would pseudonymise
    with the broker's alert-reference key (broker-pseudo-<g>), and a partner's keys would be filed as the broker's.
    Both are refused at load, naming the file and line, in any case (one file where case is ignored)."""
    policy_copy.replace("agreements/combifron.yaml", "id: COMBIFRON\n", f"id: {name}\n")
    policy_copy.replace("partners.yaml", "  - id: CRI\n", f"  - id: {name}\n")
    message = _error(policy_copy)
    assert f"agreements/combifron.yaml:4: id: Value error, '{name}' names the broker's own keys" in message
    assert "alert-reference key (broker-pseudo-<g>) as its pseudonym key; give it another id" in message
    assert f"'{name}' names the broker's own keys" in message.split("partners.yaml:")[1]
    assert "a partner of that id would hold its keys under the broker's name" in message


def test_a_partner_id_too_long_for_the_feeds_hpke_info_is_refused(policy_copy: Any) -> None:
    """A feed's key blocks carry the partner id in HPKE's info, beside a label and a fixed header, and RFC 9180 has
    every HPKE library accept 64 bytes of info: the longest id that leaves room for (14 bytes today) loads, one byte
    more is refused in one line naming the file, the line and the bound."""
    assert len(FEED_INFO_LABEL) + 1 + KEY_BLOCK_HEADER_FIXED + MAX_PARTNER_ID_BYTES == HPKE_INFO_MAX
    longest = "CR" + "I" * (MAX_PARTNER_ID_BYTES - 2)
    policy_copy.replace("partners.yaml", "  - id: CRI\n", f"  - id: {longest}\n")
    policy_copy.replace("partners.yaml", "feed_topic: puente.feed.CRI", f"feed_topic: puente.feed.{longest}")
    policy_copy.replace("agreements/pan-cri.yaml", "parties: [PAN, CRI]", f"parties: [PAN, {longest}]")
    assert longest in policy_copy.load().partners
    policy_copy.replace("partners.yaml", f"  - id: {longest}\n", f"  - id: {longest}X\n")
    message = _error(policy_copy)
    line = next(line for line in message.splitlines() if f"partner id '{longest}X'" in line)
    assert line.startswith("partners.yaml:") and f"is {MAX_PARTNER_ID_BYTES + 1} bytes" in line
    assert f"give an id of at most {MAX_PARTNER_ID_BYTES}" in line and "RFC 9180" in line
