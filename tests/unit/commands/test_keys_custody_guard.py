"""Another party's private keys are never made in a deployment's keys folder: `keys init` and `keys generate` for a
partner or an agency go through one check, which no key file a `generate` can make disarms; a partner's own
machine, a trial made by `keys init` and `--trial` still make them."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.keystore import others_keys_problem
from puente import cli


def _keys(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run `puente keys ARGS` with PUENTE_KEYS at ``root``: its exit status and standard error."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PUENTE_KEYS", str(root))
        code = cli.main(["keys", *args])
    return code, capsys.readouterr().err


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_the_brokers_keys_folder_refuses_a_partners_and_an_agencys_keys(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Where `keys generate --for broker` made the broker's keys, a partner's or an agency's are refused in one line
    naming the folder and PUENTE_KEYS, writing nothing; `keys init` stays refused after them, and `--trial` makes
    them all the same."""
    root = tmp_path / "keys"
    assert _keys(root, capsys, "generate", "--for", "broker")[0] == 0
    before = _files(root)
    for args in (("--for", "partner", "COL"), ("--for", "agency", "SENAN")):
        code, err = _keys(root, capsys, "generate", *args)
        assert code == 3 and len(err.strip().splitlines()) == 1, err
        assert f"{root} holds the broker's own keys" in err and "check PUENTE_KEYS" in err and "--trial" in err
        assert _files(root) == before
    code, err = _keys(root, capsys, "init")
    assert code == 3 and "holds the broker's own keys" in err, err
    assert _files(root) == before
    assert _keys(root, capsys, "generate", "--for", "partner", "COL", "--trial")[0] == 0
    assert (root / "partners" / "COL" / "COL-enc-2026a.json").exists()


def test_a_partners_keys_made_there_never_disarm_keys_init(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The reviewer's case: a partner's key files in the broker's keys folder (made with --trial, or by an older
    Puente) do not make it a trial's: `keys init` is still refused and makes no one's keys."""
    root = tmp_path / "keys"
    assert _keys(root, capsys, "generate", "--for", "broker")[0] == 0
    assert _keys(root, capsys, "generate", "--for", "partner", "COL", "--trial")[0] == 0
    before = _files(root)
    code, err = _keys(root, capsys, "init")
    assert code == 3 and "nothing was written" in err, err
    assert _files(root) == before and not (root / "partners" / "CRI").exists()


def test_a_keys_folder_beside_compose_yaml_refuses_a_partners_keys(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The folder compose.yaml mounts is the broker's, even before its keys are made: a partner's keys are refused
    there."""
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    code, err = _keys(tmp_path / "keys", capsys, "generate", "--for", "partner", "COL")
    assert code == 3 and "beside" in err and "compose.yaml" in err, err
    assert not (tmp_path / "keys" / "partners").exists()


def test_dir_inside_a_deployments_keys_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--dir naming a folder inside the broker's keys folder (through PUENTE_KEYS, or when PUENTE_KEYS names another
    place) is the same hole and refused; --dir elsewhere keeps its meaning."""
    root = tmp_path / "keys"
    assert _keys(root, capsys, "generate", "--for", "broker")[0] == 0
    inside = root / "partners" / "COL"
    for keys in (root, tmp_path / "other"):
        code, err = _keys(keys, capsys, "generate", "--for", "partner", "COL", "--dir", str(inside))
        assert code == 3 and "check --dir and PUENTE_KEYS" in err, err
        assert not inside.exists()
    assert _keys(root, capsys, "generate", "--for", "partner", "COL", "--dir", str(tmp_path / "usb"))[0] == 0
    assert (tmp_path / "usb" / "COL-enc-2026a.json").exists()


def test_a_partners_own_machine_and_a_trial_make_keys_as_before(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A partner's keys folder (no broker keys in it, no compose.yaml beside it) takes its keys, and so does its
    next generation; a trial's folder made by `keys init` takes a rerun and an agency's new generation without
    --trial."""
    own = tmp_path / "col"
    assert _keys(own, capsys, "generate", "--for", "partner", "COL")[0] == 0
    assert _keys(own, capsys, "generate", "--for", "partner", "COL", "--generation", "2026b")[0] == 0
    trial = tmp_path / "trial"
    assert _keys(trial, capsys, "init")[0] == 0
    assert _keys(trial, capsys, "init")[0] == 0
    code, err = _keys(trial, capsys, "generate", "--for", "agency", "SENAN", "--generation", "2026b")
    assert code == 0, err


def test_a_mark_that_is_not_init_s_is_no_trial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only the file `keys init` writes marks a trial's folder: an empty one of that name leaves the broker's keys
    folder a deployment's."""
    root = tmp_path / "keys"
    assert _keys(root, capsys, "generate", "--for", "broker")[0] == 0
    (root / "single-site-trial").write_text("")
    code, err = _keys(root, capsys, "generate", "--for", "partner", "COL")
    assert code == 3 and "holds the broker's own keys" in err, err


def test_a_trial_made_before_the_mark_is_told_how_to_mark_it(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A trial's keys folder made by the release before the mark (every party's keys, no single-site-trial file) is
    refused with a line saying that `keys init --trial` once marks it; once it has, `keys generate` for an agency
    needs no --trial there."""
    root = tmp_path / "keys"
    assert _keys(root, capsys, "init")[0] == 0
    (root / "single-site-trial").unlink()  # as the release before left it
    code, err = _keys(root, capsys, "generate", "--for", "agency", "SENAN", "--generation", "2026b")
    assert code == 3 and "`puente keys init --trial` once marks it" in err, err
    assert _keys(root, capsys, "init", "--trial")[0] == 0 and (root / "single-site-trial").is_file()
    assert _keys(root, capsys, "generate", "--for", "agency", "SENAN", "--generation", "2026b")[0] == 0


def test_a_keys_init_trial_refused_for_a_lost_key_leaves_no_mark(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`keys init --trial`, as the broker's refusal names it, refused because a party lost a key another side holds
    the public half of, writes nothing, the trial's mark included: the keys root still stops the broker."""
    root = tmp_path / "keys"
    assert _keys(root, capsys, "init")[0] == 0
    (root / "single-site-trial").unlink()
    (root / "partners" / "COL" / "COL-enc-2026a.json").unlink()  # lost; the broker holds its public half
    before = _files(root)
    code, err = _keys(root, capsys, "init", "--trial")
    assert code == 3 and "a lost key is never made again" in err, err
    assert _files(root) == before and not (root / "single-site-trial").exists()
    problem = others_keys_problem(root) or ""
    assert "only on a machine that is a single-site trial" in problem and "guards against mistakes" in problem


def test_a_keys_init_trial_refused_before_any_key_leaves_no_mark(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A set-up refused by a holder's own checks before its first key (the broker's folder holds a later generation)
    leaves no trial's mark either: the mark is written right before a key is, never for a refused run."""
    root = tmp_path / "keys"
    assert _keys(root, capsys, "generate", "--for", "broker", "--generation", "2026b")[0] == 0
    assert _keys(root, capsys, "generate", "--for", "partner", "COL", "--trial")[0] == 0
    before = _files(root)
    code, err = _keys(root, capsys, "init", "--trial")
    assert code == 3 and "does not come after 2026b" in err, err
    assert _files(root) == before and others_keys_problem(root) is not None


def test_a_partners_keys_made_first_stop_the_brokers_in_that_keys_folder(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The reviewer's order: a partner's keys made in a fresh keys folder pass the deployment guard, which goes by how
    the folder looks; the broker's keys made there next are refused in one line naming the partner's files to move
    out, writing nothing, whatever their folder (--dir inside it); --trial makes them all the same."""
    root = tmp_path / "keys"
    assert _keys(root, capsys, "generate", "--for", "partner", "COL")[0] == 0
    assert _keys(root, capsys, "generate", "--for", "agency", "SENAN", "--dir", str(root / "senan"))[0] == 0
    before = _files(root)
    code, err = _keys(root, capsys, "generate", "--for", "broker")
    assert code == 3 and len(err.strip().splitlines()) == 1, err
    for name in ("partners/COL/COL-enc-2026a.json", "partners/COL/COL-rcpt-2026a.json", "senan/SENAN-kex-2026a.json"):
        assert str(root / name) in err, err
    assert "move them out" in err and "nothing was written" in err and "check PUENTE_KEYS" in err
    assert _files(root) == before
    assert _keys(root, capsys, "generate", "--for", "broker", "--trial")[0] == 0


def test_the_brokers_keys_in_a_trial_or_beside_public_halves_only(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A trial's folder (`keys init`'s mark) takes the broker's next generation; a deployment's keys folder holding
    others' public halves and logins only takes the broker's first keys and their rotation."""
    trial = tmp_path / "trial"
    assert _keys(trial, capsys, "init")[0] == 0
    assert _keys(trial, capsys, "generate", "--for", "broker", "--generation", "2026b")[0] == 0
    root = tmp_path / "keys"
    login = root / "partners" / "COL"
    login.mkdir(parents=True, mode=0o700)
    (login / "client.properties").write_text("security.protocol=SASL_SSL\n")
    auditor = root / "auditor"
    auditor.mkdir(mode=0o700)
    (auditor / "COL-rcpt-2026a.json").write_text(
        (trial / "auditor" / "COL-rcpt-2026a.json").read_text())  # a public half
    assert _keys(root, capsys, "generate", "--for", "broker")[0] == 0
    assert _keys(root, capsys, "generate", "--for", "broker", "--generation", "2026b")[0] == 0
