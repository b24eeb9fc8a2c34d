"""`puente keys retire` ends an agency's key rotation, and each step of the rotation names it: `keys import-public`
and `keys use` print the exact command, `keys list` flags the older generation until it is run, and once run the
broker derives no MAC pair with the old key, even after its PEM is imported again."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.keystore import Keystore
from puente import cli

OLD, NEW = "SNM-kex-2026a+broker-kex-2026a", "SNM-kex-2026b+broker-kex-2026a"
RETIRE = "puente keys retire SNM-kex-2026a"


def _keys(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `puente keys ARGS` with PUENTE_KEYS at ``root``: its exit status, standard output and standard error."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PUENTE_KEYS", str(root))
        code = cli.main(["keys", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _rotated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str, str]:
    """A trial's keys with SNM rotated to 2026b, its public half imported by the broker and put in use: the keys
    root, and what `keys import-public` and `keys use` printed."""
    root = tmp_path / "keys"
    assert _keys(root, capsys, "init")[0] == 0
    snm = root / "agencies" / "SNM"
    assert _keys(root, capsys, "generate", "--for", "agency", "SNM", "--generation", "2026b")[0] == 0
    pem = tmp_path / "snm.pem"
    assert _keys(root, capsys, "export-public", "SNM-kex-2026b", "--dir", str(snm), "--out", str(pem))[0] == 0
    code, imported, err = _keys(root, capsys, "import-public", str(pem), "--id", "SNM-kex-2026b")
    assert code == 0, err
    code, used, err = _keys(root, capsys, "use", "SNM-kex-2026b")
    assert code == 0, err
    return root, imported, used


def _answers(root: Path) -> dict[str, bool]:
    lookup = Keystore(root / "broker").agency_mac_lookup()
    return {pair: lookup("SNM", pair) is not None for pair in (OLD, NEW)}


def test_each_step_of_a_rotation_names_the_retire_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The broker's import of SNM's new key and SNM's `keys use` each print the command that retires the old key;
    `keys list` flags it until then."""
    root, imported, used = _rotated(tmp_path, capsys)
    assert f"{RETIRE} --dir {root / 'broker'}" in imported, imported
    assert RETIRE in used and "SNM-kex-2026a keeps verifying" in used, used
    code, listed, _ = _keys(root, capsys, "list")
    flagged = [line for line in listed.splitlines() if line.startswith("older generation not retired")]
    assert code == 0 and len(flagged) == 1 and "SNM-kex-2026a" in flagged[0] and RETIRE in flagged[0], listed
    assert _answers(root) == {OLD: True, NEW: True}


def test_retire_ends_the_old_key_for_good(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`keys retire` says in one line what it did; the old pair then verifies no more, `keys list` shows it retired
    and flags nothing, a second run changes nothing, and importing its PEM again is refused (exit 3), storing
    nothing, its file removed or not."""
    root, _, _ = _rotated(tmp_path, capsys)
    code, out, err = _keys(root, capsys, "retire", "SNM-kex-2026a")
    assert code == 0 and len(out.strip().splitlines()) == 1 and out.startswith("retired SNM-kex-2026a"), (out, err)
    assert _answers(root) == {OLD: False, NEW: True}
    code, listed, _ = _keys(root, capsys, "list")
    assert code == 0 and "older generation" not in listed and "SNM-kex-2026a  key-agreement  public half  retired" \
        in listed, listed
    code, out, _ = _keys(root, capsys, "retire", "SNM-kex-2026a")
    assert code == 0 and "already" in out
    pem = tmp_path / "snm-a.pem"
    assert _keys(root, capsys, "export-public", "SNM-kex-2026a", "--dir", str(root / "agencies" / "SNM"),
                 "--out", str(pem))[0] == 0
    assert not (root / "broker" / "SNM-kex-2026a.json").exists()  # moved aside by the retire
    code, _, err = _keys(root, capsys, "import-public", str(pem), "--id", "SNM-kex-2026a")
    assert code == 3 and "was retired" in err and len(err.strip().splitlines()) == 1, err
    assert not (root / "broker" / "SNM-kex-2026a.json").exists()
    assert _answers(root) == {OLD: False, NEW: True}


def test_retire_refuses_an_agencys_only_key_unless_forced(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """An agency's only key is refused in one line naming --force, writing nothing; with --force it is retired and
    verifies no more."""
    root = tmp_path / "keys"
    assert _keys(root, capsys, "init")[0] == 0
    code, _, err = _keys(root, capsys, "retire", "SNM-kex-2026a")
    assert code == 3 and "--force" in err and len(err.strip().splitlines()) == 1, err
    assert _answers(root)[OLD]
    assert _keys(root, capsys, "retire", "SNM-kex-2026a", "--force")[0] == 0
    assert not _answers(root)[OLD]


def test_list_on_an_agencys_folder_points_at_the_broker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`keys list` on an agency's own folder, which retires nothing, names no `keys retire` there: it says the broker's
    operator retires the older generation in the broker's folder."""
    root, _, _ = _rotated(tmp_path, capsys)
    snm = root / "agencies" / "SNM"
    code, listed, err = _keys(root, capsys, "list", "--dir", str(snm))
    assert code == 0, err
    assert f"--dir {snm}" not in listed and "not retired" not in listed, listed
    flagged = [line for line in listed.splitlines() if "SNM-kex-2026a" in line and "keys retire" in line]
    assert len(flagged) == 1 and "in the broker's folder" in flagged[0], listed


def test_retiring_the_brokers_own_key_warns_of_agencies_still_pairing(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Retiring the broker's own key-agreement key says that every agency not yet switched to the newer one is
    dead-lettered from then on; an agency's key's retire does not say so. Both say a backup taken before brings it
    back."""
    root, _, _ = _rotated(tmp_path, capsys)
    code, out, err = _keys(root, capsys, "retire", "SNM-kex-2026a")
    assert code == 0 and "backup" in out and "dead-lettered from now on" not in out, (out, err)
    assert _keys(root, capsys, "generate", "--for", "broker", "--generation", "2026b")[0] == 0
    code, out, err = _keys(root, capsys, "retire", "broker-kex-2026a")
    assert code == 0 and len(out.strip().splitlines()) == 1, (out, err)
    assert "every agency whose adapter still pairs with it" in out and "dead-lettered from now on" in out, out
