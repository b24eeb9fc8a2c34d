"""A policy folder or agency list named by mistake (a partners.yaml naming one partner, PUENTE_AGENCIES unset in the
shell) must not cut off many parties at once: `users apply` refuses, changing nothing on the cluster or on disk,
when it would disable or delete the logins of more than half of the agencies in use, or of the partners, unless
`--allow-many`; `users plan` lists them and refuses alike. One partner of four ended on purpose needs no flag. Kafka is
a stub recording the passwords it holds (``ScramCluster``); the settings and the policy are the real ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from scram_cluster import FakeAdmin, ScramCluster, apply

import broker.credentials as credentials
import puente.commands.access as access
from puente.cli import main
from puente.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
AGENCIES = '["ADUANA", "MIGRACION"]'  # the deployment's own, where the shipped default names others
PARTNERS = ["partner-CRI", "partner-FEAN", "partner-USA"]  # the shipped policy's, partner-COL aside


@pytest.fixture
def cluster(bare_keys: Path, monkeypatch: pytest.MonkeyPatch) -> ScramCluster:
    """A deployment set up by `users apply`: its two agencies, the shipped policy's four partners, each with its
    client.properties under PUENTE_KEYS; Kafka a stub."""
    monkeypatch.setenv("PUENTE_AGENCIES", AGENCIES)
    monkeypatch.setattr(access, "kafka", lambda cfg, name: None)
    monkeypatch.setattr(access, "Admin", lambda conn: FakeAdmin())
    cluster = ScramCluster(monkeypatch)
    assert main(["users", "apply"]) == 0
    return cluster


def _policy(tmp_path: Path, *partners: str) -> Path:
    """A copy of the shipped policy naming only ``partners`` (and the agreements of those)."""
    folder = tmp_path / "policy"
    shutil.copytree(ROOT / "policies" / "data", folder)
    agreements = {"COL": "combifron", "CRI": "pan-cri", "FEAN": "fean", "USA": "pan-usa"}
    text = (folder / "partners.yaml").read_text(encoding="utf-8")
    head, _, body = text.partition("partners:\n")
    blocks = ["  - id: " + block for block in body.split("  - id: ")[1:]]
    kept = [block for block in blocks if block.split()[2] in partners]
    (folder / "partners.yaml").write_text(head + "partners:\n" + "".join(kept).rstrip("\n") + "\n", encoding="utf-8")
    for partner, agreement in agreements.items():
        if partner not in partners:
            (folder / "agreements" / f"{agreement}.yaml").unlink()
            (folder / "agreements" / f"{agreement}.tests.yaml").unlink()
    return folder


def _tree(keys: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``keys``, with each file's bytes."""
    return {str(path.relative_to(keys)): path.read_bytes() if path.is_file() else None
            for path in sorted(keys.rglob("*"))}


def _lines(out: str, action: str) -> list[str]:
    """The principals a `users` listing gives ``action``."""
    return [words[0] for words in map(str.split, out.splitlines()) if words[1:2] == [action]]


def _refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run `puente *argv`, which must be refused with exit 3 and one line; that line."""
    assert main(list(argv)) == 3
    [line] = capsys.readouterr().err.splitlines()
    return line


def test_an_agency_list_left_unset_is_refused_and_changes_nothing(
        cluster: ScramCluster, bare_keys: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """PUENTE_AGENCIES unset in the shell (the shipped default names none of the deployment's agencies): `users
    apply`, with or without --prune, exits 3 with one line naming the agencies, what to check and the flag, and no
    password, file or folder changes; `users plan` lists them to disable, then refuses alike."""
    capsys.readouterr()
    held, calls, tree = dict(cluster.held), len(cluster.calls), _tree(bare_keys)
    monkeypatch.delenv("PUENTE_AGENCIES")
    line = _refused(capsys, "users", "apply")
    assert line.startswith("puente: error: refusing to disable the logins of 2 parties the policy and settings no "
                           "longer name (agency-ADUANA, agency-MIGRACION): 2 of the 2 agencies in use, more than half")
    assert "PUENTE_AGENCIES" in line and "PUENTE_POLICY_DIR" in line and "`puente users apply --allow-many`" in line
    assert "`puente users apply --prune --allow-many`" in _refused(capsys, "users", "apply", "--prune")
    assert main(["users", "plan"]) == 3
    out, err = capsys.readouterr()
    assert _lines(out, "disable") == ["agency-ADUANA", "agency-MIGRACION"] and err.splitlines() == [line]
    assert "(`puente users apply` refuses it)" in out
    assert cluster.held == held and cluster.calls[calls:] == ["list"] * 3  # read, never changed
    assert _tree(bare_keys) == tree  # no file moved aside, no folder made for the default's agencies


def test_a_partners_file_naming_one_partner_is_refused_and_changes_nothing(
        cluster: ScramCluster, bare_keys: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A policy folder whose partners.yaml names one partner of the four: three of four partners' logins would go,
    so `users apply` (and --prune) refuses, changing nothing, however many agencies stay."""
    capsys.readouterr()
    held, calls, tree = dict(cluster.held), len(cluster.calls), _tree(bare_keys)
    monkeypatch.setenv("PUENTE_POLICY_DIR", str(_policy(tmp_path, "COL")))
    line = _refused(capsys, "users", "apply")
    assert f"({', '.join(PARTNERS)}): 3 of the 4 partners in use, more than half" in line
    assert "refusing to delete the logins of 3 parties" in _refused(capsys, "users", "apply", "--prune")
    assert main(["users", "plan", "--prune"]) == 3
    assert _lines(capsys.readouterr().out, "remove") == PARTNERS
    assert cluster.held == held and cluster.calls[calls:] == ["list"] * 3 and cluster.deleted == {}
    assert _tree(bare_keys) == tree


def test_allow_many_cuts_them_off(cluster: ScramCluster, bare_keys: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """With --allow-many the same run goes through: the plan exits 1 as any plan with changes, and `users apply`
    disables each partner left out; `--prune --allow-many` then deletes them."""
    capsys.readouterr()
    held = dict(cluster.held)
    monkeypatch.setenv("PUENTE_POLICY_DIR", str(_policy(tmp_path, "COL")))
    assert main(["users", "plan", "--allow-many"]) == 1
    assert main(["users", "apply", "--allow-many"]) == 0
    assert _lines(capsys.readouterr().out, "disabled") == PARTNERS
    assert all(cluster.held[p] != held[p] for p in PARTNERS) and cluster.held["partner-COL"] == held["partner-COL"]
    assert not any((credentials.party_folder(bare_keys, p) / "client.properties").exists() for p in PARTNERS)
    assert main(["users", "apply", "--prune", "--allow-many"]) == 0  # disabled already: nothing in use is cut off
    assert not set(PARTNERS) & set(cluster.held)


def test_one_partner_of_four_removed_is_disabled_without_a_flag(
        cluster: ScramCluster, bare_keys: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A partner ended on purpose (CRI, one of four): `users plan` shows its login to disable (exit 1, not a refusal)
    and `users apply` disables it alone; every other party keeps its password."""
    capsys.readouterr()
    held = dict(cluster.held)
    monkeypatch.setenv("PUENTE_POLICY_DIR", str(_policy(tmp_path, "COL", "FEAN", "USA")))
    assert main(["users", "plan"]) == 1
    assert _lines(capsys.readouterr().out, "disable") == ["partner-CRI"]
    assert main(["users", "apply"]) == 0
    assert _lines(capsys.readouterr().out, "disabled") == ["partner-CRI"]
    assert {p for p in held if cluster.held[p] != held[p]} == {"partner-CRI"}
    assert (credentials.party_folder(bare_keys, "partner-CRI") / ".client.properties.former").exists()


def test_logins_disabled_before_do_not_count_as_in_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Partners disabled by runs before are cut off already: they neither count among those cut off nor dilute the
    share, so the last two partners in use, left out together, are refused though the cluster holds four."""
    keys = tmp_path / "keys"
    ScramCluster(monkeypatch)
    apply(keys, ["broker", "agency-SENAN", "partner-A", "partner-B", "partner-C", "partner-D"])
    gone = apply(keys, ["broker", "agency-SENAN", "partner-C", "partner-D"], former="disable")
    assert sorted(login.principal for login in gone if login.action == "disabled") == ["partner-A", "partner-B"]
    with pytest.raises(ConfigError, match=r" \(partner-C, partner-D\): 2 of the 2 partners in use, more than half"):
        apply(keys, ["broker", "agency-SENAN"], former="disable")
    with pytest.raises(ConfigError, match=r"refusing to delete the logins of 2 parties"):
        apply(keys, ["broker", "agency-SENAN"], former="delete", dry_run=True)
    assert [login.principal for login in apply(keys, ["broker", "agency-SENAN"], former="disable", allow_many=True)
            if login.action == "disabled"] == ["partner-C", "partner-D"]


def test_a_logins_folder_named_by_mistake_is_refused_and_changes_nothing(
        cluster: ScramCluster, bare_keys: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """PUENTE_LOGINS naming an empty folder (or left unset where the logins live apart): no party's client.properties
    is there, so every named party would get a new password only that folder holds, and with a partners file naming
    one partner the others would be cut off uncounted (their files missing too). Refused, with or without --prune,
    naming the folder to check; `--rotate` asks for the new passwords on purpose."""
    capsys.readouterr()
    held, tree = dict(cluster.held), _tree(bare_keys)
    empty = tmp_path / "logins"
    empty.mkdir(mode=0o700)
    monkeypatch.setenv("PUENTE_LOGINS", str(empty))
    monkeypatch.setenv("PUENTE_POLICY_DIR", str(_policy(tmp_path, "COL")))
    for argv in (["users", "apply"], ["users", "apply", "--prune"], ["users", "plan"]):
        line = _refused(capsys, *argv)
        assert "their client.properties is missing; is the logins folder the wrong one? Check PUENTE_LOGINS" in line
    assert cluster.held == held and _tree(bare_keys) == tree
    monkeypatch.delenv("PUENTE_POLICY_DIR")
    assert main(["users", "apply", "--rotate"]) == 0  # new passwords asked for: every named party gets one
    assert cluster.held != held
