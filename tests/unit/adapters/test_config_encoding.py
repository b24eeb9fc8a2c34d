"""An agency's `encoding` in agencies.yaml is a text encoding that reads ASCII as ASCII, or the configuration is
refused at start, naming it: never every record of the agency refused one by one."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.config import load_config
from puente import cli
from puente.errors import EXIT_CONFIG, ConfigError

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = (ROOT / "adapters" / "agencies.yaml").read_text(encoding="utf-8")
SENAFRONT_SAMPLE = ROOT / "samples" / "senafront" / "patrullas-2026-11.csv"


def _config(tmp_path: Path, encoding: str) -> Path:
    """The shipped configuration with SENAFRONT's encoding replaced by ``encoding``."""
    assert SHIPPED.count("encoding: utf-8-sig") == 1
    path = tmp_path / "agencies.yaml"
    path.write_text(SHIPPED.replace("encoding: utf-8-sig", f"encoding: {encoding}"), encoding="utf-8")
    return path


@pytest.mark.parametrize("encoding", ["rot13", "base64", "hex", "zlib", "unicode_escape", "raw_unicode_escape",
                                      "utf-7", "utf-16", "utf-32-le", "cp037", "idna", "hz"])
def test_an_encoding_that_does_not_read_ascii_as_ascii_is_refused_at_start(tmp_path: Path, encoding: str) -> None:
    """Codecs that are no text encoding (rot13, base64), read backslash or shift sequences as other characters
    (unicode_escape, UTF-7, HZ, IDNA), or read ASCII bytes as something else (UTF-16, EBCDIC): refused naming the
    field, as an unknown one is."""
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, encoding))
    said = str(caught.value)
    assert "SENAFRONT" in said and "encoding" in said and "is not a text encoding that reads ASCII as ASCII" in said
    assert "\n" not in said


@pytest.mark.parametrize("encoding", ["shift_jis", "cp932", "big5", "gbk", "gb18030", "big5hkscs", "cp950"])
def test_an_encoding_whose_characters_hold_ascii_bytes_is_refused_at_start(tmp_path: Path, encoding: str) -> None:
    """Shift_JIS, Big5, GBK, GB18030 read every ASCII byte alone as ASCII, but a character's second byte may be one
    (0x95 0x5C is one character; 0x5C alone a backslash): an export split at its ASCII bytes would cut characters."""
    with pytest.raises(ConfigError, match="is not a text encoding that reads ASCII as ASCII"):
        load_config(_config(tmp_path, encoding))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1", "ISO-8859-15", "ascii", "euc-jp",
                                      "euc-kr"])
def test_the_encodings_agencies_export_in_are_taken(tmp_path: Path, encoding: str) -> None:
    """UTF-8 (with or without its byte-order mark), Windows-1252, the Latin ones, ASCII, and the EUC encodings (every
    byte of their characters is 0x80 or above): taken as written."""
    assert load_config(_config(tmp_path, encoding)).agencies["SENAFRONT"].encoding == encoding


def test_an_unknown_encoding_is_still_named_unknown(tmp_path: Path) -> None:
    """A name no codec has is refused as unknown."""
    with pytest.raises(ConfigError, match="unknown text encoding 'klingon'"):
        load_config(_config(tmp_path, "klingon"))


def test_adapt_check_stops_before_any_record_on_an_escape_codec(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`puente adapt senafront --check` with unicode_escape stops at start, exit 3, one line, no record read:
    before, the configuration was taken and the export's records were refused one by one."""
    config = _config(tmp_path, "unicode_escape")
    assert cli.main(["adapt", "senafront", "--check", "--config", str(config), str(SENAFRONT_SAMPLE)]) == EXIT_CONFIG
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "is not a text encoding that reads ASCII as ASCII" in err[0], err
    assert captured.out == ""
