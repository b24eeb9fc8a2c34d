"""A ``PUENTE_*`` variable is read only under its exact name, and any other spelling of one is refused by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from puente import cli
from puente.errors import ConfigError
from puente.settings import PuenteSettings, check_variables, variable_problems

# Each a known name written otherwise: in another case, with a letter whose case mapping gives the known one
# (a long s upper-cases to S, a Kelvin sign lower-cases to k), or in fullwidth letters.
SPELLINGS = [("puente_home", "PUENTE_HOME"), ("Puente_Keys", "PUENTE_KEYS"), ("PUENTE_KEY\u017f", "PUENTE_KEYS"),
             ("PUENTE_\u212aAFKA_PORT", "PUENTE_KAFKA_PORT"), ("\uff30\uff35ENTE_DEBUG", "PUENTE_DEBUG")]
# Each a known name that only looks like it: another script's letter in its place (a Cyrillic E, a Greek Rho and
# Eta), or a character that shows as nothing within or before it (a zero-width space, a BOM, a combining mark).
LOOK_ALIKES = [("PUENT\u0415_HOME", "PUENTE_HOME"), ("\u03a1UENTE_\u0397OME", "PUENTE_HOME"),
               ("\u200bPUENTE_HOME", "PUENTE_HOME"), ("\ufeffPUENTE_KEYS", "PUENTE_KEYS"),
               ("PUENTE_KA\u200dFKA_PORT", "PUENTE_KAFKA_PORT"), ("PUENTE_DEBUG\u0338", "PUENTE_DEBUG"),
               ("\u3164PUENTE_HOME", "PUENTE_HOME"), ("\uffa0PUENTE_KEYS", "PUENTE_KEYS")]
# (The last two: a Hangul filler, a letter (Lo) that shows as nothing, before the name: refused for holding it.)


@pytest.fixture
def no_puente(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No variable of Puente's in the environment, in any spelling."""
    for name in [n for n in os.environ if "PUENTE" in n.upper()]:
        monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(("name", "meant"), SPELLINGS + LOOK_ALIKES)
def test_a_known_name_written_otherwise_is_refused_naming_the_name_to_write(name: str, meant: str) -> None:
    """Another spelling of a known name is refused, concerning that name (so `kafka wipe` refuses it for
    PUENTE_HOME), saying how to write it, its letters beyond ASCII escaped, never its value."""
    problems = variable_problems({name: "/somewhere/secret", "PATH": "/bin"})
    assert [concerns for concerns, _ in problems] == [meant]
    why = problems[0][1]
    assert f"write it as {meant}" in why and "/somewhere/secret" not in why and why.isascii(), why
    with pytest.raises(ConfigError, match=f"write it as {meant}"):
        check_variables({name: "1", meant: "1"})  # beside the exact name too


def test_an_unknown_name_in_another_case_is_still_unknown() -> None:
    """A name like Puente's in any case or letter form that is no setting is refused as no setting."""
    for name in ("puente_foo", "Puente_Kafka_Prot", "\uff30UENTE_FOO", "PUENT\u0415_FOO", "\u200bPUENTE_FOO"):
        (concerns, why), = variable_problems({name: "1"})
        assert "is not a Puente setting" in why and concerns.startswith("PUENTE_") and concerns.isascii(), why
    assert variable_problems({"PUENTE_KEYS": "/k", "PUENTEX": "1", "\u0420UENTE": "1"}) == []


def test_any_name_holding_the_prefix_but_no_known_name_is_refused() -> None:
    """Whatever stands before ``PUENTE_`` (a letter, a Hangul filler no list of invisible characters names), a name
    holding it that is not exactly one Puente reads is refused, concerning the name it holds."""
    for name, meant in (("\u3164PUENTE_FOO", "PUENTE_FOO"), ("MY_PUENTE_KEYS", "PUENTE_KEYS"),
                        ("\u00e9PUENTE_HOME", "PUENTE_HOME")):
        (concerns, why), = variable_problems({name: "1"})
        assert concerns == meant and "/" not in why and why.isascii(), why


def test_the_settings_read_exact_names_only(no_puente: pytest.MonkeyPatch) -> None:
    """The settings take a variable under its exact name only, as every other reader of the environment does:
    `puente_keys` or a Kelvin sign in PUENTE_KAFKA_TIMEOUT_S moves nothing."""
    no_puente.setenv("puente_keys", "/elsewhere")
    no_puente.setenv("PUENTE_\u212aAFKA_TIMEOUT_S", "3")
    no_puente.setenv("Puente_Agencies", '["SNM"]')
    cfg = PuenteSettings()
    assert cfg.keys == Path(".puente/keys") and cfg.kafka_timeout_s == 15 and "SENAN" in cfg.agencies
    no_puente.setenv("PUENTE_KEYS", "/here")
    no_puente.setenv("PUENTE_AGENCIES", '["SNM"]')
    assert PuenteSettings().keys == Path("/here") and PuenteSettings().agencies == ("SNM",)


@pytest.mark.parametrize("verb", ["wipe", "down", "status", "env"])
@pytest.mark.parametrize(("name", "shown"), [("puente_home", "puente_home"), ("PUENT\u0415_HOME", "PUENT\\u0415_HOME"),
                                             ("\u200bPUENTE_HOME", "\\u200bPUENTE_HOME")])
def test_a_lower_case_puente_home_stops_the_kafka_verbs_before_the_default_folder(
        verb: str, name: str, shown: str, tmp_path: Path, no_puente: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`puente_home=/x puente kafka wipe` is refused (exit 3, one line naming PUENTE_HOME): before, the settings
    took it while the local Kafka read PUENTE_HOME alone, and the wipe deleted ./.puente/kafka/single. So is a name
    that only looks like it (a Cyrillic E, a zero-width space before it), which nothing read at all."""
    data = tmp_path / ".puente" / "kafka" / "single" / "node1" / "data"
    data.mkdir(parents=True)
    no_puente.chdir(tmp_path)
    no_puente.setenv(name, str(tmp_path / "elsewhere"))
    assert cli.main(["kafka", verb]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{shown} is PUENTE_HOME written otherwise" in err[0] and data.exists(), err


def test_kafka_wipe_refuses_any_unknown_puente_name_where_the_other_verbs_warn(
        tmp_path: Path, no_puente: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`PUENTE_KAFKA_HOME=/x puente kafka wipe --shape cluster` is refused (exit 3): no near match of PUENTE_HOME,
    it was only a warning, and the wipe deleted the default folder's data. `kafka status` still only warns."""
    data = tmp_path / ".puente" / "kafka" / "cluster" / "node1" / "data"
    data.mkdir(parents=True)
    no_puente.chdir(tmp_path)
    no_puente.setenv("PUENTE_KAFKA_HOME", str(tmp_path / "elsewhere"))
    assert cli.main(["kafka", "wipe", "--shape", "cluster"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "PUENTE_KAFKA_HOME is not a Puente setting" in err[0] and data.exists(), err
    assert "refuses any PUENTE_* name it does not know" in err[0]
    cli.main(["kafka", "status", "--shape", "cluster"])
    assert "puente: warning: PUENTE_KAFKA_HOME is not a Puente setting" in capsys.readouterr().err


def test_every_other_command_refuses_a_name_written_otherwise(no_puente: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A command that reads settings refuses another spelling of one before it runs: exit 3, one line."""
    no_puente.setenv("PUENTE_KEY\u017f", "/elsewhere")
    assert cli.main(["schema", "check"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["puente: error: PUENTE_KEY\\u017f is PUENTE_KEYS written otherwise: write it as PUENTE_KEYS "
                   "(names are read exactly as written: this one would be ignored, and the default used)"], err
