"""A ``PUENTE_*`` value with a blank at either end, or a control character or line separator within, is refused by
the variable's name, never read as another path or name, and never shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from puente import cli
from puente.errors import ConfigError
from puente.settings import load_settings


@pytest.fixture
def no_puente(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No variable of Puente's in the environment, in any spelling."""
    for name in [n for n in os.environ if "PUENTE" in n.upper()]:
        monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(("name", "value", "said"), [
    ("PUENTE_KEYS", " /srv/kx", "begins or ends with a blank"),
    ("PUENTE_KEYS", "/srv/kx\n", "begins or ends with a blank"),
    ("PUENTE_KEYS", "/srv/kx\r", "ends with a carriage return (Windows line ends: an --env-file or .env file saved "
                                 "with CRLF)"),
    ("PUENTE_DEBUG", "1\r", "ends with a carriage return (Windows line ends"),
    ("PUENTE_POLICY_DIR", "\t/srv/policies", "begins or ends with a blank"),
    ("PUENTE_TOPIC_PREFIX", "puente\u00a0", "begins or ends with a blank"),
    ("PUENTE_DEBUG", "1 ", "begins or ends with a blank"),
    ("PUENTE_AUDIT_INDEX", "/srv/a\nb.sqlite", "holds a control character or a line break"),
    ("PUENTE_HOME", "/srv/\x1b[2Jhome", "holds a control character or a line break"),
    ("PUENTE_KEYS", "/srv/a\u2028b", "holds a control character or a line break"),
    ("PUENTE_AGENCIES", '["SNM",\n"PN"]', "holds a control character or a line break"),
    ("PUENTE_CLIENT_CONFIG", "/srv/a\tb", "holds a control character or a line break"),
])
def test_a_value_with_blanks_around_or_controls_within_is_refused_by_name(
        no_puente: pytest.MonkeyPatch, name: str, value: str, said: str) -> None:
    """Refused in one line naming the variable and what to fix, never quoting the value."""
    no_puente.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{name} {said}") and "srv" not in message and "kx" not in message, message


def test_a_value_with_blanks_inside_is_taken(no_puente: pytest.MonkeyPatch) -> None:
    """A path with a space inside, or JSON with spaces between its entries, is read as it is."""
    no_puente.setenv("PUENTE_KEYS", "/srv/my keys")
    no_puente.setenv("PUENTE_AGENCIES", '["SNM", "PN"]')
    cfg = load_settings()
    assert cfg.keys == Path("/srv/my keys") and cfg.agencies == ("SNM", "PN")


def test_keys_generate_writes_nothing_under_a_folder_named_with_a_leading_space(
        tmp_path: Path, no_puente: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`PUENTE_KEYS=" /x" puente keys generate --for broker` is refused (exit 3): before, it wrote the broker's
    keys into "./ /x/broker" under the current folder."""
    no_puente.chdir(tmp_path)
    no_puente.setenv("PUENTE_KEYS", f" {tmp_path / 'kx'}")
    assert cli.main(["keys", "generate", "--for", "broker"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "PUENTE_KEYS begins or ends with a blank" in err[0] and "kx" not in err[0], err
    assert list(tmp_path.iterdir()) == []
