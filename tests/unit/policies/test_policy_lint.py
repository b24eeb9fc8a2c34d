"""``puente policy lint``: clean on the shipped policy, and one planted mistake of each kind is caught."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import policies._lint
import policies._load
from broker.keystore import TRIAL_MARK, Holder, Keystore
from policies import build_view, decide, load_policy_set
from policies._compile import UNREVIEWED
from policies._lint import lint
from puente.cli import main

AT = datetime(2026, 6, 1, tzinfo=UTC)
# The line of partners.yaml naming COL's encryption key, where a finding about that key points.
COL_ENCRYPTION_LINE = next(i for i, line in enumerate(
    (Path(policies.__file__).parent / "data" / "partners.yaml").read_text("utf-8").splitlines(), 1)
    if "encryption: COL-enc-" in line)

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


def test_overlap_is_found(policy_copy: Any) -> None:
    """Two agreements in force together for COL border events are the load's overlap finding."""
    policy_copy.write("agreements/annex.yaml", ANNEX)
    found = _kinds(policy_copy)
    assert list(found) == ["overlap"]
    assert ("COMBIFRON-ANNEX (agreements/annex.yaml) and COMBIFRON (agreements/combifron.yaml) both cover "
            "BORDER_EVENT for COL from 2025-01-01 to 2026-12-31") in found["overlap"][0]


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


def test_lint_asks_the_key_port_about_every_key_the_policy_needs() -> None:
    """lint asks its key port about each partner key (by id) and the pseudonym key of each agreement
    with a rule that pseudonymises (by agreement): of the shipped ones, COMBIFRON alone."""
    asked: list[tuple[str, str, str]] = []

    def key_problem(name: str, kind: str, owner: str) -> str | None:
        asked.append((name, kind, owner))
        return "gone" if name in ("PAN-USA", "COMBIFRON") else None

    found = lint(now=AT, key_problem=key_problem)
    assert sorted(asked) == sorted(
        [(f"{p}-enc-2026a", "partner-encryption", p) for p in ("COL", "USA", "CRI", "FEAN")]
        + [("COMBIFRON", "pseudonym", "COMBIFRON")]
    )
    assert [str(f) for f in found] == ["agreements/combifron.yaml:4: [keys] COMBIFRON: pseudonym key: gone"]


def test_a_pseudonymising_rule_makes_lint_ask_for_its_agreements_key(policy_copy: Any) -> None:
    """An agreement that gains a pseudonymise rule needs its key from then on, as the broker will ask for it."""
    asked: list[str] = []

    def key_problem(name: str, kind: str, owner: str) -> str | None:
        asked.append(name) if kind == "pseudonym" else None
        return None

    policy_copy.replace("agreements/pan-cri.yaml", "      source_timezone: keep",
                        "      source_timezone: {action: pseudonymise, domain: place_name}")
    lint(policy_copy.root, now=AT, key_problem=key_problem)
    assert sorted(asked) == ["COMBIFRON", "PAN-CRI"]


def test_the_policy_core_does_not_import_the_broker() -> None:
    """Only the command module of policies/ may import broker/: the core is a lower layer."""
    core = [p for p in (Path(__file__).resolve().parents[3] / "policies").glob("*.py") if p.name != "cli.py"]
    assert core
    assert [p.name for p in core if re.search(r"^\s*(from|import) broker\b", p.read_text("utf-8"), re.M)] == []


@pytest.fixture
def keystore(tmp_path: Path) -> Path:
    """A broker keystore holding every key the shipped policy names, as `puente keys init` makes it."""
    made = Keystore.provision(
        tmp_path / "keys", partners=["COL", "USA", "CRI", "FEAN"], agencies=[],
        agreements=["COMBIFRON", "FEAN-JTF", "PAN-CRI", "PAN-USA"], generation="2026a",
    )  # fmt: skip
    return made.broker.path


def _lint_keys(keys: Path, capsys: pytest.CaptureFixture[str], *more: str) -> tuple[int, list[str]]:
    code = main(["policy", "lint", "--keys", str(keys), "--at", "2026-06-01T00:00:00Z", *more])
    return code, [line for line in capsys.readouterr().out.splitlines() if "[keys]" in line]


def test_a_complete_keystore_has_no_key_findings(keystore: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With every partner key and every pseudonym key present and sound, lint --keys finds nothing."""
    assert _lint_keys(keystore, capsys) == (0, [])


def test_other_parties_keys_under_the_keys_root_are_found(keystore: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Partners' private keys beside the broker's folder, in a keys root no single-site trial marked, stop the
    broker's start (``require_custody``): lint --keys names them too, in one finding, never what they hold."""
    (keystore.parent / TRIAL_MARK).unlink()
    code, found = _lint_keys(keystore, capsys)
    assert code == 1 and len(found) == 1, found
    assert found[0].startswith(f"{keystore}: [keys] {keystore.parent} holds private keys of parties other than the "
                               "broker (") and "COL-enc-2026a.json" in found[0]


def test_keys_named_as_the_working_folder_scan_the_keys_root_around_it(
    keystore: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--keys .`` run inside the broker's folder scans the keys root around it, as the broker's start scans
    PUENTE_KEYS, not the broker's folder again: partners' keys beside it are found."""
    (keystore.parent / TRIAL_MARK).unlink()
    monkeypatch.chdir(keystore)
    code, found = _lint_keys(Path("."), capsys)
    assert code == 1 and len(found) == 1, found
    assert f"[keys] {keystore.parent} holds private keys of parties other than the broker (" in found[0]
    assert "COL-enc-2026a.json" in found[0]


def test_a_stray_backup_is_not_the_key(keystore: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """COL-enc-2026a.json.bak is no key file: the exact <key id>.json must exist; and the backup itself is named,
    since the broker's folder keeps no file a reader would not check."""
    (keystore / "COL-enc-2026a.json").rename(keystore / "COL-enc-2026a.json.bak")
    code, found = _lint_keys(keystore, capsys)
    assert code == 1
    assert found[0] == (
        f"partners.yaml:{COL_ENCRYPTION_LINE}: [keys] COL: encryption key: key COL-enc-2026a: no key file at "
        f"{keystore}/COL-enc-2026a.json"
    )
    assert len(found) == 2 and found[1].startswith(f"{keystore}: [keys] {keystore}/COL-enc-2026a.json.bak: ")


def test_a_key_file_of_another_kind_is_refused(keystore: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file named like COL's encryption key but holding a pseudonym key is a keys finding, not a key."""
    record = json.loads((keystore / "COMBIFRON-pseudo-2026a.json").read_text("utf-8"))
    record["key_id"] = "COL-enc-2026a"
    (keystore / "COL-enc-2026a.json").write_text(json.dumps(record), "utf-8")
    (keystore / "COL-enc-2026a.json").chmod(0o600)  # as a secret's file must be, so that only its kind is wrong
    code, found = _lint_keys(keystore, capsys)
    assert code == 1 and len(found) == 1
    assert found[0].startswith(
        f"partners.yaml:{COL_ENCRYPTION_LINE}: [keys] COL: encryption key: key COL-enc-2026a: file says kind pseudonym"
    )


def test_a_partners_private_half_in_the_broker_keystore_is_found(
        tmp_path: Path, keystore: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """COL's own key file (its private half) copied into the broker's folder is what the broker refuses to
    seal with; lint --keys says so too, with what to do."""
    own = tmp_path / "keys" / "partners" / "COL" / "COL-enc-2026a.json"
    (keystore / "COL-enc-2026a.json").write_bytes(own.read_bytes())
    (keystore / "COL-enc-2026a.json").chmod(0o600)
    code, found = _lint_keys(keystore, capsys)
    assert code == 1 and len(found) == 1 and "holds COL's private half" in found[0] and "import-public" in found[0]
    assert f"move {keystore}/COL-enc-2026a.json out to COL's own keystore" in found[0] and "remove" not in found[0]


@pytest.mark.parametrize("party", ["partners/COL", "agencies/SENAN"])
def test_a_partys_own_folder_is_named_as_such_and_never_told_to_give_up_its_keys(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], party: str) -> None:
    """lint --keys pointed at a party's own folder (its private keys, none of the broker's) says, in one finding,
    that it looks like that party's keystore and to leave its keys: never to remove or move its private keys,
    which would take away the party's only way to decrypt or sign."""
    Keystore.provision(tmp_path / "keys", partners=["COL"], agencies=["SENAN"], agreements=[], generation="2026a")
    folder = tmp_path / "keys" / party
    owner = party.split("/")[1]
    code, found = _lint_keys(folder, capsys)
    assert code == 1 and len(found) == 1, found
    assert found[0].startswith(f"{folder}: [keys] holds {owner}'s private keys and none of the broker's: it looks "
                               f"like {owner}'s own keystore"), found[0]
    assert f"leave {owner}'s keys where they are" in found[0]
    assert "remove" not in found[0] and "move " not in found[0]


def test_the_keys_root_named_for_the_brokers_folder_is_named_as_such(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """lint --keys pointed at PUENTE_KEYS itself (broker/ in it, beside the other parties' folders on a trial
    machine, or alone on a broker host, as compose.yaml makes it) says so in one finding and names the broker's
    folder: never that broker/ is a folder to move out, nor to make the broker's keys there."""
    folder = tmp_path / "keys"
    said = (f"{folder}: [keys] holds a broker/ folder and none of the broker's keys: it looks like PUENTE_KEYS "
            f"itself; --keys names the broker's own folder, {folder / 'broker'}")
    Keystore(folder / "broker").generate_own(Holder.BROKER, "broker", generation="2026a", now=AT, agreements=[])
    code, found = _lint_keys(folder, capsys)  # a broker host's keys root
    assert code == 1 and found == [said], found
    Keystore.provision(folder, partners=["COL"], agencies=["SENAN"], agreements=[], generation="2026a")
    (folder / "stray.json").write_text("{}", "utf-8")  # every party's folder and a stray file change nothing
    code, found = _lint_keys(folder, capsys)
    assert code == 1 and found == [said], found
    # The broker's own folder, its keys in it, holding a folder named broker and others, is judged as the broker's.
    for name in ("broker", "partners"):
        (folder / "broker" / name).mkdir()
    code, found = _lint_keys(folder / "broker", capsys)
    assert not any("PUENTE_KEYS itself" in line for line in found), found


def test_keys_the_policy_does_not_name_are_checked_too(
        tmp_path: Path, keystore: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """lint --keys finds what stops the broker's start beyond the keys the policy names: an agency's key-agreement
    half copied in by hand as another's, and a receipt private key of a partner naming none, each with its file."""
    doc = json.loads((keystore / "COL-enc-2026a.json").read_text("utf-8"))
    doc["key_id"] = "SENAN-kex-2026a"
    doc["kind"] = "key-agreement"
    (keystore / "SENAN-kex-2026a.json").write_text(json.dumps(doc), "utf-8")
    own = tmp_path / "keys" / "partners" / "USA" / "USA-rcpt-2026a.json"
    (keystore / "USA-rcpt-2026a.json").write_bytes(own.read_bytes())
    (keystore / "USA-rcpt-2026a.json").chmod(0o600)
    code, found = _lint_keys(keystore, capsys)
    assert code == 1 and len(found) == 2, found
    assert found[0].startswith(f"{keystore}: [keys] key SENAN-kex-2026a: {keystore}/SENAN-kex-2026a.json holds "
                               "the same public key as COL-enc-2026a, COL's")
    assert found[1].startswith(f"{keystore}: [keys] key USA-rcpt-2026a: keystore {keystore} holds USA's private")


@pytest.mark.parametrize(("named", "finding"), [
    # its own receipt-signing key, where its encryption key belongs
    ("COL-rcpt-2026a", "key COL-rcpt-2026a: kind is partner-signing, expected partner-encryption"),
    # another partner's encryption key (a typo): COL's feed would be sealed for USA
    ("USA-enc-2026a", "key USA-enc-2026a is USA's, not COL's"),
], ids=["another-kind", "another-partners"])
def test_a_partner_naming_a_key_not_its_own_encryption_key_is_found(
    policy_copy: Any, keystore: Path, capsys: pytest.CaptureFixture[str], named: str, finding: str
) -> None:
    """A partner's encryption key id must name a key of that kind, and the partner's own: else a keys finding."""
    policy_copy.replace("partners.yaml", "encryption: COL-enc-2026a", f"encryption: {named}")
    code, found = _lint_keys(keystore, capsys, "--dir", str(policy_copy.root))
    assert code == 1
    assert found == [f"partners.yaml:{COL_ENCRYPTION_LINE}: [keys] COL: encryption key: {finding}"]


def test_an_agreement_without_a_pseudonym_key_is_found(keystore: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An agreement that pseudonymises needs <agreement>-pseudo-<generation>.json in the broker keystore;
    a missing one is named. One that pseudonymises nothing needs none."""
    (keystore / "PAN-CRI-pseudo-2026a.json").unlink()
    assert _lint_keys(keystore, capsys) == (0, [])
    (keystore / "COMBIFRON-pseudo-2026a.json").unlink()
    code, found = _lint_keys(keystore, capsys)
    assert code == 1
    line = "agreements/combifron.yaml:4: [keys] COMBIFRON: pseudonym key: "
    assert found == [f"{line}no pseudonym key for 'COMBIFRON' in keystore {keystore}"]


def test_a_keys_directory_that_does_not_exist_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """lint --keys naming no directory exits 2 with one line, rather than reporting every key missing."""
    assert main(["policy", "lint", "--keys", str(tmp_path / "nowhere")]) == 3
    assert capsys.readouterr().err == f"puente: error: --keys {tmp_path / 'nowhere'}: no such keystore directory\n"


def test_shadowed_rule_is_found(policy_copy: Any) -> None:
    """A rule on a field inside a dropped field never applies: lint lists the load's shadowed finding."""
    policy_copy.replace(
        "agreements/pan-usa.yaml",
        "      payload.detainees: keep\n",
        "      payload.detainees: drop\n      payload.detainees[].surnames: pseudonymise\n",
    )
    found = _kinds(policy_copy)
    assert list(found) == ["shadowed", "precision"]
    assert "payload.detainees[].surnames never applies: payload.detainees is dropped" in found["shadowed"][0]
    # and the summary PAN-USA keeps may name the detainees it now hides
    assert "but keeps summary: free text can name the person" in found["precision"][0]


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
    assert main(["policy", "lint", "--dir", str(policy_copy.root)]) == 3
    assert "agreements/fean.yaml:" in capsys.readouterr().err


def test_a_field_newer_than_the_reviewed_release_is_dropped_and_listed(
        policy_copy: Any, monkeypatch: pytest.MonkeyPatch, make_alert: Any, now: datetime) -> None:
    """PAN-USA keeps ``payload.person`` whole. A person field the reviewed release lacks (as one a later schema adds
    would) is dropped from USA's view, with a detail saying why, and lint lists it for review; a reviewed_schema
    that is no release is refused, naming the line."""
    real = policies._load.schema_releases()
    lacking = {**real, "v2": {**real["v2"], "WATCHLIST_HIT": frozenset(real["v2"]["WATCHLIST_HIT"]) - {
        "payload.person.sex"}}}
    monkeypatch.setattr(policies._load, "schema_releases", lambda: lacking)
    monkeypatch.setattr(policies._lint, "schema_releases", lambda: lacking)
    ps = load_policy_set(policy_copy.root)
    hit = make_alert("tocumen_hit")
    assert hit["payload"]["person"]["sex"] is not None
    decision = decide(hit, "USA", ps, now)
    assert decision.delivers
    assert build_view(hit, decision, ps, b"k" * 32)["payload"]["person"]["sex"] is None
    dropped = {r.path: r.detail for r in decision.redactions}
    assert dropped["payload.person.sex"].endswith(UNREVIEWED.format("v2"))
    # FEAN keeps ``payload`` whole: the person's sex is a grandchild of what it keeps, listed all the same.
    review = sorted(_kinds(policy_copy)["review"])
    assert len(review) == 2
    assert "FEAN-WATCHLIST: payload.person.sex came into the alert schema after release v2" in review[0]
    assert "USA-WATCHLIST: payload.person.sex came into the alert schema after release v2" in review[1]
    monkeypatch.undo()
    assert "payload.person.sex" not in {r.path for r in decide(hit, "USA", load_policy_set(policy_copy.root),
                                                                now).redactions}
    policy_copy.replace("vocabulary.yaml", "reviewed_schema: v2", "reviewed_schema: v9")
    line = policy_copy.line_of("vocabulary.yaml", "reviewed_schema: v9")
    with pytest.raises(Exception, match=rf"vocabulary.yaml:{line}: \[invalid\] reviewed_schema v9 is not a release"):
        load_policy_set(policy_copy.root)


def test_a_place_name_kept_beside_generalised_coordinates_is_found(policy_copy: Any) -> None:
    """A cover that generalises the coordinates and keeps the place name gives the spot back: a precision finding
    at the place name's rule, naming both fields; the shipped CRI agreement dropped it for that reason."""
    policy_copy.replace("agreements/pan-cri.yaml", "      location.place_name: {action: drop",
                        "      location.place_name: {action: keep")
    found = _kinds(policy_copy)
    assert list(found) == ["precision"]
    (one,) = found["precision"]
    assert re.match(r"agreements/pan-cri\.yaml:\d+: \[precision\] CRI-MIGRATION generalises location\.latitude but "
                    r"keeps location\.place_name: a place name", one), one
    line = int(one.split(":")[1])
    assert "location.place_name" in (policy_copy.root / "agreements/pan-cri.yaml").read_text().splitlines()[line - 1]


def test_free_text_kept_by_a_record_beside_dropped_coordinates_is_found(policy_copy: Any) -> None:
    """Coordinates dropped by name, and free text kept by a keep on the record that holds it: the finding is at
    that record's rule. A cover that never names the coordinates has hidden no place."""
    cri = "agreements/pan-cri.yaml"
    policy_copy.replace(cri, "      location.latitude: generalise\n      location.longitude: generalise\n",
                        "      location.latitude: drop\n      location.longitude: drop\n      payload: keep\n")
    (one,) = _kinds(policy_copy)["precision"]
    assert "CRI-MIGRATION drops location.latitude but keeps payload.remarks: free text" in one
    line = int(one.split(":")[1])
    assert (policy_copy.root / cri).read_text().splitlines()[line - 1].strip() == "payload: keep"
    # without the coordinates named, the remarks are judged only against the times the cover cuts
    policy_copy.replace(cri, "      location.latitude: drop\n      location.longitude: drop\n", "")
    (one,) = _kinds(policy_copy)["precision"]
    assert "CRI-MIGRATION cuts occurred_at to the hour but keeps payload.remarks: free text can say that time" in one


def test_a_time_cut_to_the_hour_beside_another_kept_whole_is_found(policy_copy: Any) -> None:
    """occurred_at cut to the hour while reported_at reaches the partner whole (or cut only to the hour when the
    other is cut to the day) gives the time back; times cut alike are not a finding."""
    policy_copy.replace("agreements/pan-cri.yaml", "      reported_at: {action: generalise, to: hour}\n",
                        "      reported_at: keep\n")
    (one,) = _kinds(policy_copy)["precision"]
    assert "CRI-MIGRATION cuts occurred_at to the hour but keeps reported_at whole: it gives that time back" in one
    policy_copy.replace("agreements/pan-cri.yaml", "      reported_at: keep\n",
                        "      reported_at: {action: generalise, to: hour}\n")
    policy_copy.replace("agreements/pan-cri.yaml", "      occurred_at: {action: generalise, to: hour}\n",
                        "      occurred_at: {action: generalise, to: day}\n")
    (one,) = _kinds(policy_copy)["precision"]
    assert "cuts occurred_at to the day but keeps reported_at cut only to the hour" in one


def test_an_encounter_kept_beside_a_cut_time_is_found(policy_copy: Any) -> None:
    """COMBIFRON cuts a watchlist hit's times to the hour and drops the flight: keeping the flight would give both
    the time and the place back."""
    policy_copy.replace("agreements/combifron.yaml", "      payload.encounter: {action: drop, why: a flight number",
                        "      payload.encounter: {action: keep, why: a flight number")
    (one,) = _kinds(policy_copy)["precision"]
    assert "COMBIFRON-WATCHLIST cuts occurred_at to the hour but keeps payload.encounter: an encounter" in one


@pytest.mark.parametrize(("longitude", "kept"),
                         [("keep", "whole"), ("{action: generalise, grid: 0.001}", "on a 0.001° grid")])
def test_one_coordinate_finer_than_the_other_is_found(policy_copy: Any, longitude: str, kept: str) -> None:
    """A position is as precise as its finer coordinate: the latitude on a 1 km grid beside the longitude kept whole
    (or on a 100 m grid) puts the event on a line. Both on one grid is not a finding."""
    combifron = "agreements/combifron.yaml"
    policy_copy.replace(combifron, "      location.longitude: {action: generalise, grid: 0.01}\n",
                        f"      location.longitude: {longitude}\n")
    (one,) = _kinds(policy_copy)["precision"]
    assert (f"COMBIFRON-BORDER generalises location.latitude to a 0.01° grid but keeps location.longitude {kept}: "
            "it gives back part of the position") in one
    line = int(one.split(":")[1])
    assert "location.longitude" in (policy_copy.root / combifron).read_text().splitlines()[line - 1]
    # the latitude dropped instead: a longitude kept whole is still a line; one on a grid shows less than both would
    policy_copy.replace(combifron, '      location.latitude: {action: generalise, grid: 0.01, why: "about 1 km: enough '
                        'to plan a patrol, not enough to find ours"}\n', "      location.latitude: drop\n")
    found = _kinds(policy_copy).get("precision", [])
    assert bool(found) == (longitude == "keep"), found


def test_an_agreement_without_a_real_end_is_found(policy_copy: Any) -> None:
    """valid_until 2999-12-31 reads as a date but works as no end: a term finding. An end under ten years ahead is
    not one, however long ago the agreement began."""
    policy_copy.replace("agreements/pan-cri.yaml", "valid_until: 2027-12-31", "valid_until: 2999-12-31")
    (one,) = _kinds(policy_copy)["term"]
    assert "PAN-CRI runs until 2999-12-31, over 10 years ahead" in one
    policy_copy.replace("agreements/pan-cri.yaml", "valid_until: 2999-12-31", "valid_until: 2036-05-01")
    policy_copy.replace("agreements/pan-cri.yaml", "valid_from: 2025-01-01", "valid_from: 2001-01-01")
    assert "term" not in _kinds(policy_copy)  # 25 years in all, but it ends within ten years of AT


def test_a_time_generalised_without_to_is_cut_to_the_hour(policy_copy: Any) -> None:
    """A time generalised with no ``to`` reaches the partner cut to the hour, as the view cuts it: beside another
    cut to the day it is the finer one, never taken for dropped."""
    cri = "agreements/pan-cri.yaml"
    policy_copy.replace(cri, "      occurred_at: {action: generalise, to: hour}\n", "      occurred_at: generalise\n")
    policy_copy.replace(cri, "      reported_at: {action: generalise, to: hour}\n",
                        "      reported_at: {action: generalise, to: day}\n")
    (one,) = _kinds(policy_copy)["precision"]
    assert "cuts reported_at to the day but keeps occurred_at cut only to the hour" in one, one


def test_a_dropped_time_beside_the_envelopes_dates_is_found(policy_copy: Any) -> None:
    """review_at and expires_at reach every partner to the day, set by the adapters from the event's time: a cover
    that drops the event's times still gives its day back."""
    cri = "agreements/pan-cri.yaml"
    policy_copy.replace(cri, "      occurred_at: {action: generalise, to: hour}\n", "      occurred_at: drop\n")
    policy_copy.replace(cri, "      reported_at: {action: generalise, to: hour}\n", "      reported_at: drop\n")
    found = _kinds(policy_copy)["precision"]
    assert len(found) == 2 and all("drops occurred_at but every view keeps markings." in f and "to the day" in f
                                   for f in found), found


def test_a_port_of_entry_beside_generalised_coordinates_is_found(policy_copy: Any) -> None:
    """A port of entry is a fixed place: kept beside coordinates on a grid, it gives the spot back."""
    policy_copy.replace("agreements/combifron.yaml", "      payload.port_of_entry: keep\n",
                        "      payload.port_of_entry: keep\n      location.latitude: {action: generalise, grid: 0.1}\n"
                        "      location.longitude: {action: generalise, grid: 0.1}\n")
    (one,) = _kinds(policy_copy)["precision"]
    assert "COMBIFRON-WATCHLIST generalises location.latitude but keeps payload.port_of_entry: a port of entry" in one


def test_a_broker_keystore_without_its_alert_reference_key_is_found(
        keystore: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No policy names it, and the broker does not start without it: lint --keys says so, with what to run."""
    for ref_key in keystore.glob("broker-pseudo-*.json"):
        ref_key.unlink()
    code, found = _lint_keys(keystore, capsys)
    assert code == 1 and len(found) == 1, found
    assert found[0].startswith(f"{keystore}: [keys] the broker's alert-reference key: no pseudonym key for 'broker'")
    assert "keys generate --for broker --generation G" in found[0]


def test_a_partys_own_folder_holding_an_agreements_pseudonym_key_is_still_its_own(
        tmp_path: Path, keystore: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An agreement's pseudonym key, which no party owns, marks no one's folder: COL's folder holding a copy of one
    is still COL's own, never one whose private keys COL is told to move out. (The broker's own keys, its
    reference key too, mark the broker's.)"""
    folder = tmp_path / "keys" / "partners" / "COL"
    ref_key = next(keystore.glob("COMBIFRON-pseudo-*.json"))
    (folder / ref_key.name).write_bytes(ref_key.read_bytes())
    (folder / ref_key.name).chmod(0o600)
    code, found = _lint_keys(folder, capsys)
    assert code == 1 and found and found[0].startswith(f"{folder}: [keys] holds COL's private keys"), found
    assert "move " not in found[0]


def test_free_text_kept_beside_a_hidden_name_is_found(policy_copy: Any) -> None:
    """PAN-USA keeps a watchlist hit's person whole; with its match reason kept too, hiding the surnames alone
    leaves free text that can name the person."""
    usa = "agreements/pan-usa.yaml"
    policy_copy.replace(usa, "      payload.match_reason: {action: drop, why: describes Panama's screening method}\n",
                        "      payload.match_reason: keep\n")
    assert "precision" not in _kinds(policy_copy)  # the names whole: nothing to give back
    policy_copy.replace(usa, "      payload.person: keep\n",
                        "      payload.person: keep\n      payload.person.surnames: drop\n")
    found = _kinds(policy_copy)["precision"]
    assert any("drops payload.person.surnames but keeps payload.match_reason: free text can name the person" in f
               for f in found), found


def test_a_document_number_or_free_text_kept_beside_hidden_names_is_found(policy_copy: Any) -> None:
    """COMBIFRON pseudonymises detainees' names and document numbers, and drops the summary: keeping the number
    whole, or the summary ("detenido Juan Carlos Mosquera (pasaporte PA1234567)"), hands the name back."""
    combifron = "agreements/combifron.yaml"
    assert "precision" not in _kinds(policy_copy)
    policy_copy.replace(combifron, "      payload.detainees[].documents[].number: {action: pseudonymise, "
                        "domain: document_number, why: lets Colombia match one document across the alerts Panama "
                        "sends it}\n", "      payload.detainees[].documents[].number: keep\n")
    policy_copy.replace(combifron, "      summary: {action: drop, why: free text may name the place the grid hides; "
                        "the items and conveyance say what}\n", "      summary: keep\n")
    found = _kinds(policy_copy)["precision"]
    assert any("COMBIFRON-SEIZURE pseudonymises payload.detainees[].given_names but keeps "
               "payload.detainees[].documents[].number: a travel document's number can name the person" in f
               for f in found), found
    assert any("COMBIFRON-SEIZURE generalises location.latitude but keeps summary: free text" in f
               for f in found), found  # one finding a field: the summary's place came first


def test_names_left_out_beside_a_kept_document_number_are_found(policy_copy: Any) -> None:
    """A cover that names no rule for a person's names drops them all the same (views are allow-lists): keeping the
    person's document numbers hands the name back as surely as with the names dropped by a rule."""
    policy_copy.replace("agreements/pan-usa.yaml", "      payload.person: keep\n",
                        "      payload.person.date_of_birth: keep\n      payload.person.documents: keep\n")
    found = _kinds(policy_copy)["precision"]
    assert any("USA-WATCHLIST drops payload.person.given_names but keeps payload.person.documents[].number: a travel "
               "document's number can name the person" in f for f in found), found
