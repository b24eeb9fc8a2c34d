"""A small local certificate authority for Kafka's TLS: one CA, a certificate per node.

The local Kafka (and a compose deployment's secrets) need certificates a client can verify:
this makes an ECDSA P-256 CA and node certificates signed by it, with the node's host names and
addresses as subject alternative names (so clients check host names), valid for a year. A
ministry's deployment uses its own PKI; this is what development, the demo and the tests run on.

Files are PEM: ``ca.pem`` (the CA certificate, what clients trust), ``ca-key.pem`` (0600), and per
node ``<name>.pem`` (0600) holding the node's PKCS#8 private key followed by its certificate and
the CA's. The key is not encrypted: Java 17's PEM reader cannot open the PBES2 encryption a modern
tool writes, and a password beside the file in server.properties would protect nothing; the file
mode does, as for every secret Puente keeps.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.keystore import private_folder, write_atomic
from broker.private_files import read_secret
from puente.errors import ConfigError

VALID_DAYS = 365  # a node's or client's certificate
CA_VALID_DAYS = 5 * 365  # the CA's: longer than any certificate it signs, each of which it caps at its own end
RENEW_DAYS = 30  # a certificate ending within this many days is issued anew (``needs_issue``)
# The organisation (O) of every certificate this CA makes: the node's principal mapping takes only this one
# (``puente.dev.localkafka._nodeconf``), so a CN=kafka-node certificate of another organisation is no node.
ORGANIZATION = "Puente (local)"


def _write(path: Path, data: bytes, mode: int) -> None:
    """Whole or not at all, and never through a link planted at the name (``write_atomic``): the CA's key is
    among what this writes."""
    write_atomic(path, data, mode)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def ensure_ca(folder: Path, now: datetime | None = None) -> tuple[Path, Path]:
    """The CA in ``folder`` (made on first use): (certificate, key)."""
    private_folder(folder)
    cert_path, key_path = folder / "ca.pem", folder / "ca-key.pem"
    # Held while the pair is looked for and made: two runs making it at once would each write a key and a
    # certificate, and one could sign with the other's key under its own certificate.
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return _ensure_ca(cert_path, key_path, now)
    finally:
        os.close(fd)  # and with it the lock


def _ensure_ca(cert_path: Path, key_path: Path, now: datetime | None) -> tuple[Path, Path]:
    if os.path.lexists(cert_path) and os.path.lexists(key_path):  # the key is checked where it is read (issue)
        return cert_path, key_path
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("Puente local CA")
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path


def needs_issue(folder: Path, name: str, now: datetime | None = None) -> bool:
    """Whether ``folder/<name>.pem`` is to be issued (anew): missing, or a certificate the CA in ``folder`` signed
    that lacks the key identifiers strict verifiers ask for (an earlier release's) or ends within ``RENEW_DAYS``.
    One it did not sign (a ministry's own, beside its CA bundle) is not this CA's to replace. ConfigError when the
    file fails a secret file's checks (``read_secret``)."""
    path = folder / f"{name}.pem"
    if not os.path.lexists(path):
        return True
    try:
        ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    except (ValueError, OSError):
        return False  # no CA to judge it by: kept as it is, and the CA file refused where it is read or copied
    try:
        cert = x509.load_pem_x509_certificates(read_secret(path, 64 * 1024, ConfigError, "a certificate's key"))[0]
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, IndexError, InvalidSignature):
        return False  # not this CA's
    try:
        cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound:
        return True
    return cert.not_valid_after_utc - (now or datetime.now(UTC)) < timedelta(days=RENEW_DAYS)


def issue(folder: Path, name: str, hosts: list[str], *, common: str, not_after: datetime | None = None,
          now: datetime | None = None) -> Path:
    """A certificate for ``hosts`` (names or IP addresses) signed by the CA in ``folder``, as
    ``folder/<name>.pem``: the key, the certificate and the CA's. ``common`` is the subject's CN,
    which Kafka maps to the principal of a client using this certificate."""
    cert_path, key_path = ensure_ca(folder)
    ca_cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(read_secret(key_path, 64 * 1024, ConfigError, "the CA's key"), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    if ca_cert.not_valid_after_utc - now < timedelta(days=RENEW_DAYS):
        # Every certificate it signed ends with it, and one signed now would too: a new CA is the way on.
        raise ConfigError(f"the CA in {folder} ends on {ca_cert.not_valid_after_utc:%Y-%m-%d}, and every certificate "
                          f"it signs with it: move {folder} aside and run this again for a new CA, then give every "
                          "party the new ca.pem")
    # Never past the CA's own end: a certificate claiming a validity its issuer lacks fails at the CA's.
    ends = min(not_after or now + timedelta(days=VALID_DAYS), ca_cert.not_valid_after_utc)
    # The key identifiers and key usage RFC 5280 asks of a certificate: strict verifiers (Python 3.13's default
    # context sets VERIFY_X509_STRICT) refuse one without them.
    cert = (
        x509.CertificateBuilder().subject_name(_name(common)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(ends)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    out = folder / f"{name}.pem"
    _write(out, private + cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(
        serialization.Encoding.PEM), 0o600)
    return out
