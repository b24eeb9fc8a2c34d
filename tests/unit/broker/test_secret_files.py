"""Files holding a secret are trusted only as found by one set of checks: a regular file (a link only through
folders no one else may change), this user's or root's, 0600, in a folder others cannot write; an existing
folder others may write is refused, never used;
a client configuration reads and writes as Kafka's Java tools read it, or is refused."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scram_cluster import ScramCluster, apply

import broker.credentials as credentials
from broker.crypto.keys import KeyKind, new_key
from broker.kafka import connection_from_properties
from broker.kafka.connection import read_properties
from broker.keystore import Keystore, load_key_file, private_folder, write_atomic
from broker.partner_store import PartnerStore
from puente.errors import ConfigError, KeyMaterialError, StoreError

PLANTED = "attacker-knows-this-one"
JAAS = ('sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required '
        'username="partner-COL" password="{password}";\n')
LOGIN = ("bootstrap.servers=kafka:9093\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
         + JAAS.format(password=PLANTED))
_NOW = datetime(2026, 1, 5, tzinfo=UTC)
# Skipped outside CI for a user who is not root; under CI=true it runs, and fails there without root, never skips.
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",
                               reason="giving a file to another user needs root")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _one_line(exc: pytest.ExceptionInfo[BaseException], *words: str) -> str:
    message = str(exc.value)
    assert "\n" not in message and PLANTED not in message, message
    for word in words:
        assert word in message, message
    return message


def _login(folder: Path, text: str = LOGIN, mode: int = 0o600) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "client.properties"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def _apply(keys: Path) -> list[credentials.PartyLogin]:
    return apply(keys, ["partner-COL"])


# 1. a password is kept only from a private file


@pytest.mark.parametrize("mode", [0o644, 0o666, 0o640], ids=oct)
def test_a_password_others_may_read_is_never_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  mode: int) -> None:
    """`users apply` gives a party a new password when its client.properties is readable or writable by others,
    and writes the new file 0600: the password in the exposed file is never set on the cluster."""
    cluster = ScramCluster(monkeypatch, {"partner-COL": "old"})
    path = _login(tmp_path / "keys" / "partners" / "COL", mode=mode)
    [login] = _apply(tmp_path / "keys")
    assert login.action == "rotated" and cluster.given["partner-COL"] != PLANTED
    assert _mode(path) == 0o600 and PLANTED not in path.read_text()


def test_a_password_from_a_private_file_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client.properties that passes every check keeps its password, as before: running twice changes nothing."""
    cluster = ScramCluster(monkeypatch, {"partner-COL": "old"})
    _login(tmp_path / "keys" / "partners" / "COL")
    [login] = _apply(tmp_path / "keys")
    assert login.action == "kept" and cluster.given["partner-COL"] == PLANTED


def test_a_linked_client_configuration_is_never_kept_nor_written_through(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A client.properties that is a link to a file elsewhere is neither read for its password nor written
    through: the link is replaced by the party's own 0600 file and its target is left as it was."""
    cluster = ScramCluster(monkeypatch, {"partner-COL": "old"})
    elsewhere = _login(tmp_path / "elsewhere")
    folder = tmp_path / "keys" / "partners" / "COL"
    folder.mkdir(parents=True, mode=0o700)
    (folder / "client.properties").symlink_to(elsewhere)
    [login] = _apply(tmp_path / "keys")
    assert login.action == "rotated" and cluster.given["partner-COL"] != PLANTED
    assert not (folder / "client.properties").is_symlink() and _mode(folder / "client.properties") == 0o600
    assert elsewhere.read_text() == LOGIN


def test_an_open_party_folder_is_refused_before_the_cluster_changes(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The reviewer's probe: a 0777 party folder holding a planted 0666 login. `users apply` refuses in one line
    naming the folder and chmod 700, sets no password on the cluster, and leaves the folder's mode alone."""
    cluster = ScramCluster(monkeypatch, {"partner-COL": "old"})
    path = _login(tmp_path / "keys" / "partners" / "COL", mode=0o666)
    path.parent.chmod(0o777)
    with pytest.raises(ConfigError) as caught:
        _apply(tmp_path / "keys")
    _one_line(caught, str(path.parent), "writable by others", "chmod 700")
    assert cluster.given == {} and _mode(path.parent) == 0o777


# 2. folders


def test_an_existing_folder_others_may_write_is_refused_not_used(tmp_path: Path) -> None:
    """private_folder refuses an existing group- or world-writable folder, naming it and the chmod to run, and
    changes nothing; a private one, or a missing one (made 0700), passes."""
    for mode in (0o777, 0o770, 0o775):
        folder = tmp_path / f"open{mode:o}"
        folder.mkdir()
        folder.chmod(mode)
        with pytest.raises(ConfigError) as caught:
            private_folder(folder)
        _one_line(caught, str(folder), "chmod 700")
        assert _mode(folder) == mode
    readable = tmp_path / "readable"
    readable.mkdir(mode=0o755)
    private_folder(readable)
    private_folder(tmp_path / "new" / "deeper")
    assert _mode(tmp_path / "new") == _mode(tmp_path / "new" / "deeper") == 0o700


def test_a_key_is_not_written_into_an_open_existing_folder(tmp_path: Path) -> None:
    """Keystore.put refuses an existing keystore folder others may write (KeyMaterialError naming it) and
    writes no key there."""
    folder = tmp_path / "ks"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(KeyMaterialError) as caught:
        Keystore(folder).put(new_key(KeyKind.BROKER_SIGNING, "broker", "2026a", _NOW))
    _one_line(caught, str(folder), "chmod 700")
    assert list(folder.iterdir()) == []


@ROOT_ONLY
def test_a_folder_or_secret_of_another_user_is_refused(tmp_path: Path) -> None:
    """A folder that belongs to another user (not root) is refused by private_folder, and a key file holding a
    secret that belongs to another user is refused when loaded, however closed its mode."""
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, 4321, 4321)
    with pytest.raises(ConfigError, match="another user"):
        private_folder(folder)
    path = Keystore(tmp_path / "ks").put(new_key(KeyKind.BROKER_SIGNING, "broker", "2026a", _NOW))
    os.chown(path, 4321, 4321)
    with pytest.raises(KeyMaterialError, match="another user"):
        load_key_file(path)


@ROOT_ONLY
def test_a_store_in_a_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    """An existing partner store (or index, or accounts file) in a folder another user owns is refused, however
    closed the folder's mode: its owner may replace the file or its write-ahead log."""
    path = tmp_path / "col" / "feed.sqlite"
    PartnerStore.open(path, "COL").close()
    os.chown(path.parent, 4321, 4321)
    with pytest.raises(StoreError, match="belongs to another user"):
        PartnerStore.open(path, "COL")


def test_a_secret_file_is_written_without_following_a_link(tmp_path: Path) -> None:
    """write_atomic replaces a link planted at the name with a 0600 file of its own: the target is untouched."""
    target = tmp_path / "target"
    target.write_text("theirs")
    link = tmp_path / "secret"
    link.symlink_to(target)
    write_atomic(link, b"mine", 0o600)
    assert not link.is_symlink() and link.read_bytes() == b"mine" and _mode(link) == 0o600
    assert target.read_text() == "theirs"


# 3. reading a client configuration


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666], ids=oct)
def test_a_client_configuration_with_a_password_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    """Every party reads its login through connection_from_properties: a file with a password that group or
    others may read or write is refused in one line naming the file and chmod 600, never the password."""
    path = _login(tmp_path / "p", mode=mode)
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(path)
    _one_line(caught, str(path), "chmod 600")


def test_a_client_configuration_in_an_open_folder_or_linked_through_one_is_refused(tmp_path: Path) -> None:
    """A 0600 login in a folder others may write, or a link to one there, is refused in one line."""
    path = _login(tmp_path / "open")
    path.parent.chmod(0o777)
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(path)
    _one_line(caught, str(path.parent), "chmod 700")
    link = tmp_path / "link.properties"
    link.symlink_to("open/client.properties")
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(link)
    _one_line(caught, str(link), "symbolic link", str(path.parent), "chmod go-w")
    path.parent.chmod(0o700)
    assert connection_from_properties(path).password is not None
    assert connection_from_properties(link).password is not None


def test_a_configuration_without_a_secret_may_be_read_by_others_but_not_written(tmp_path: Path) -> None:
    """A PLAINTEXT configuration holds no secret: 0644 loads. Writable by others it is refused: whoever may
    write it may point the party at their own servers."""
    path = _login(tmp_path / "p", "bootstrap.servers=k1:9092\nsecurity.protocol=PLAINTEXT\n", 0o644)
    assert connection_from_properties(path).bootstrap == "k1:9092"
    path.chmod(0o666)
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(path)
    _one_line(caught, str(path), "writable by others")


@ROOT_ONLY
def test_a_client_configuration_of_another_user_is_refused(tmp_path: Path) -> None:
    """A login file that belongs to another user is refused, however closed its mode: its owner knows it."""
    path = _login(tmp_path / "p")
    os.chown(path, 4321, 4321)
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(path)
    _one_line(caught, str(path), "another user")


# 4. lines as Java reads them


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x00",
                                  "\u200e", "\u00a0"])
def test_a_line_with_another_separator_or_control_character_is_refused(char: str) -> None:
    """Kafka's Java tools end a line only at \\n, \\r or \\r\\n: a value holding U+2028, NEL, a vertical tab, a
    form feed (...) is refused naming the file and line, never read as two settings nor quoted."""
    text = (f"security.protocol=SASL_SSL\nbootstrap.servers=good:9093{char}"
            "ssl.endpoint.identification.algorithm=none\n")
    with pytest.raises(ConfigError) as caught:
        read_properties(text, "f.properties")
    message = _one_line(caught, "f.properties:2:")
    assert "good" not in message and "identification" not in message


def test_lines_end_where_java_ends_them() -> None:
    """\\n, \\r and \\r\\n each end a line, as java.util.Properties reads them; a tab is whitespace."""
    text = "security.protocol=SASL_SSL\r\nbootstrap.servers=a:1\rclient.id\t=\tme\n"
    props = read_properties(text, "f")
    assert {k: (v.value, v.line) for k, v in props.items()} == {
        "security.protocol": ("SASL_SSL", 1), "bootstrap.servers": ("a:1", 2), "client.id": ("me", 3)}


# 5. writing a client configuration


@pytest.mark.parametrize(("field", "value", "setting"), [
    ("ca", "d\nssl.endpoint.identification.algorithm=none\n#/ca.pem", "ssl.truststore.location"),
    ("ca", "/run/ca\u2028.pem", "ssl.truststore.location"),
    ("ca", "C:\\certs\\ca.pem", "ssl.truststore.location"),
    ("ca", "/run/caf\u00e9/ca.pem", "ssl.truststore.location"),
    ("bootstrap", "good:9093\u2028ssl.endpoint.identification.algorithm=none", "bootstrap.servers"),
    ("bootstrap", "good:9093\rssl.endpoint.identification.algorithm=none", "bootstrap.servers"),
    ("bootstrap", " good:9093", "bootstrap.servers"),
    ("bootstrap", "good:9093\x0bx=y", "bootstrap.servers"),
    ("password", "pa\nss=x", "password"),
    ("password", 'pa"ss', "sasl.jaas.config"),
])
def test_a_value_java_would_read_otherwise_is_refused_by_its_setting(field: str, value: str, setting: str) -> None:
    """client_properties refuses a value holding a control or separator character, a backslash, leading
    whitespace or a character outside printable ASCII, in one line naming the setting and never the value:
    a folder name with a newline never injects ssl.endpoint.identification.algorithm=none."""
    args: dict[str, Any] = {"bootstrap": "k1:9093", "ca_file": Path("/run/ca.pem"), "username": "partner-COL",
                            "password": "fine-password"}
    args["ca_file" if field == "ca" else field] = Path(value) if field == "ca" else value
    with pytest.raises(ConfigError) as caught:
        credentials.client_properties(**args)
    message = _one_line(caught, setting)
    assert value.strip() not in message and "identification" not in message


def test_what_client_properties_writes_reads_back_as_written(tmp_path: Path) -> None:
    """A configuration made of acceptable values reads back with the same servers, CA, username and password."""
    (tmp_path / "ca.pem").write_text("x")
    text = credentials.client_properties("k1:9093,k2:9093", tmp_path / "ca.pem", "partner-COL", "pw-_AZ09")
    path = _login(tmp_path / "p", text)
    conn = connection_from_properties(path)
    assert (conn.bootstrap, conn.ca_file, conn.username) == ("k1:9093,k2:9093", tmp_path / "ca.pem", "partner-COL")
    assert conn.password is not None and conn.password.get_secret_value() == "pw-_AZ09"
    assert conn.check_hostname


def test_puente_bootstrap_filling_in_is_checked_too(tmp_path: Path) -> None:
    """PUENTE_BOOTSTRAP filling in for a file without bootstrap.servers is refused when it holds a line break."""
    path = _login(tmp_path / "p", "security.protocol=PLAINTEXT\n")
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(path, bootstrap="k1:9092\u2028x=y")
    _one_line(caught, "PUENTE_BOOTSTRAP")




def test_a_name_that_ends_in_a_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    """`--key .`, `--verify-key /`, a link to `.`: no file is named, and the refusal says so in one line (it was an
    IndexError, an internal error, before)."""
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o700)
    (folder / "here").symlink_to(".")
    for name in (Path("."), Path("/"), folder / "here", folder / ".", folder / "here" / "."):
        with pytest.raises(KeyMaterialError) as caught:
            load_key_file(name)
        message = str(caught.value)
        assert ("names a folder, not a file" in message or "is not a regular file" in message) and "\n" not in message
    with pytest.raises(ConfigError, match="names a folder, not a file"):
        connection_from_properties(folder / "here")


def test_a_key_file_nested_thousands_deep_is_refused_not_a_crash(tmp_path: Path) -> None:
    """A 0600 key file of 60,000 nested lists is no key file: a one-line refusal, not a RecursionError that would
    stop a broker walking its keystore."""
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o700)
    path = folder / "COL-enc-2026a.json"
    path.write_text("[" * 60_000)
    path.chmod(0o600)
    with pytest.raises(KeyMaterialError, match="nested too deeply"):
        load_key_file(path)
    with pytest.raises(KeyMaterialError, match="nested too deeply"):
        Keystore(folder).key_ids() and Keystore(folder).load("COL-enc-2026a")
