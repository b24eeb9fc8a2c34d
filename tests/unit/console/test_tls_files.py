"""`audit serve --tls-cert/--tls-key`: a certificate and key the server could not serve are refused by
`Listen.check`, in one line naming the file, before settings reach Kafka."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import puente.commands.console as console_commands
from puente.cli import main
from puente.console.server import Listen
from puente.errors import ConfigError

Pair = Callable[..., tuple[Path, Path]]


def _key_pem(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    crypt = (serialization.BestAvailableEncryption(password) if password
             else serialization.NoEncryption())  # fmt: skip
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, crypt)


@pytest.fixture
def make_pair(tmp_path: Path) -> Pair:
    """Factory: a self-signed certificate and its key written as PEM files in tmp_path (valid for a day
    around now unless ``not_after`` says otherwise; ``password`` encrypts the key)."""

    def make(name: str = "console", *, not_after: datetime | None = None, password: bytes | None = None) -> tuple[
            Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        until = not_after or now + timedelta(days=1)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "puente-console.test")])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(until - timedelta(days=30))
                .not_valid_after(until).sign(key, hashes.SHA256()))  # fmt: skip
        cert_path, key_path = tmp_path / f"{name}.crt.pem", tmp_path / f"{name}.key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_key_pem(key, password))
        return cert_path, key_path

    return make


def _refused(cert: Path, key: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        Listen("0.0.0.0", 8443, cert, key).check()  # noqa: S104 - TLS off loopback is what is checked
    text = str(caught.value)
    assert "\n" not in text
    return text


def test_a_good_pair_passes(make_pair: Pair) -> None:
    """A certificate in its validity with its own key: the console may listen off loopback over HTTPS."""
    cert, key = make_pair()
    assert Listen("0.0.0.0", 8443, cert, key).check().url == "https://0.0.0.0:8443/"  # noqa: S104


def test_a_certificate_that_is_not_pem_is_refused_naming_it(make_pair: Pair, tmp_path: Path) -> None:
    """A file of anything but PEM certificates is named, and nothing of its content is quoted."""
    _, key = make_pair()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("sekrit-looking-content\n")
    text = _refused(garbage, key)
    assert text.startswith(f"the TLS certificate {garbage} holds no PEM certificate") and "sekrit" not in text


def test_a_key_of_another_certificate_is_refused(make_pair: Pair) -> None:
    """The key of another certificate: named, with the certificate it does not match."""
    cert, _ = make_pair("one")
    _, other = make_pair("two")
    assert _refused(cert, other) == (f"the TLS key {other} does not match the certificate {cert}: give the key "
                                     "the certificate was issued for")


def test_an_expired_certificate_is_refused_naming_its_date(make_pair: Pair) -> None:
    """A certificate past its notAfter is refused with the date, not served to browsers that refuse it."""
    cert, key = make_pair(not_after=datetime(2024, 3, 1, 12, 0, tzinfo=UTC))
    assert _refused(cert, key) == (f"the TLS certificate {cert} expired on 2024-03-01 12:00 UTC (notAfter): "
                                   "renew it")


def test_an_expired_intermediate_in_the_chain_is_refused_naming_it(make_pair: Pair, tmp_path: Path) -> None:
    """The certificate file holds the server's certificate, then intermediates: one past its notAfter fails every
    client as an expired leaf does, and is refused by its place in the file and its date."""
    cert, key = make_pair()
    old_cert, _ = make_pair("old", not_after=datetime(2024, 3, 1, 12, 0, tzinfo=UTC))
    chain = tmp_path / "chain.pem"
    chain.write_bytes(cert.read_bytes() + old_cert.read_bytes())
    assert _refused(chain, key) == (f"certificate 2 (an intermediate) in {chain} expired on 2024-03-01 12:00 UTC "
                                    "(notAfter): renew it")


def test_the_certificate_given_as_the_key_is_refused(make_pair: Pair) -> None:
    """--tls-key naming the certificate file (an easy slip) says so."""
    cert, _ = make_pair()
    assert _refused(cert, cert) == f"the TLS key {cert} holds a certificate, not a private key: give the key of {cert}"


def test_a_password_protected_key_is_refused_without_asking(make_pair: Pair) -> None:
    """OpenSSL would prompt on the terminal for the password (uvicorn is given none): refused in one line."""
    cert, key = make_pair(password=b"correct horse")
    assert _refused(cert, key).startswith(f"the TLS key {key} is protected by a password, which the console "
                                          "cannot ask for")


def test_a_garbage_key_is_refused(make_pair: Pair, tmp_path: Path) -> None:
    """A key file holding no key at all is named."""
    cert, _ = make_pair()
    junk = tmp_path / "junk.key"
    junk.write_bytes(b"\x00\x01not a key")
    assert _refused(cert, junk) == f"the TLS key {junk} holds no PEM private key (-----BEGIN PRIVATE KEY-----): " \
                                   "check --tls-key"


def test_missing_files_a_folder_and_a_link_to_a_device_are_refused_unread(make_pair: Pair, tmp_path: Path) -> None:
    """A missing file, a folder, a link to a device: each named, nothing read from the device."""
    cert, key = make_pair()
    assert _refused(tmp_path / "nope.pem", key) == f"no TLS certificate at {tmp_path / 'nope.pem'}: check --tls-cert"
    assert _refused(cert, tmp_path / "nope.key") == f"no TLS key at {tmp_path / 'nope.key'}: check --tls-key"
    assert _refused(tmp_path, key).startswith(f"the TLS certificate {tmp_path} is not a regular file but a folder")
    device = tmp_path / "device.pem"
    device.symlink_to("/dev/null")
    assert _refused(cert, device) == (f"the TLS key {device} is not a regular file but a device or a pipe "
                                      "(a link to /dev/null): give the PEM file")


def test_audit_serve_refuses_a_bad_certificate_before_kafka(make_pair: Pair, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`puente audit serve` with a mismatched key ends with one line (exit 3) and never builds a Kafka client."""

    def no_kafka(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("Kafka reached before the TLS files were checked")

    monkeypatch.setattr(console_commands, "kafka", no_kafka)
    cert, _ = make_pair("one")
    _, other = make_pair("two")
    assert main(["audit", "serve", "--host", "0.0.0.0", "--tls-cert", str(cert), "--tls-key", str(other)]) == 3  # noqa: S104
    err = capsys.readouterr().err
    assert err == f"puente: error: the TLS key {other} does not match the certificate {cert}: give the key the " \
                  "certificate was issued for\n"
