"""The trial CA's certificates: what strict verifiers ask of them (key identifiers, key usage), never valid past
the CA's own end, and issued anew before they end or when the CA changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from puente.dev import pki
from puente.errors import ConfigError


def _chain(pem: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.read_bytes())


def test_a_node_certificate_passes_a_strict_rfc_5280_verifier(tmp_path: Path) -> None:
    """Python 3.13's default TLS context verifies strictly (VERIFY_X509_STRICT): a node certificate without an
    authority key identifier was refused there, so a party on 3.13 could not reach Kafka at all."""
    now = datetime.now(UTC)  # at the test's run, not its module's import: certificates begin then
    folder = tmp_path / "tls"
    leaf = _chain(pki.issue(folder, "node1", ["kafka-1", "127.0.0.1"], common="kafka-node"))[0]
    ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    verifier = PolicyBuilder().store(Store([ca])).time(now).build_server_verifier(x509.DNSName("kafka-1"))
    assert verifier.verify(leaf, [])[-1] == ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign


def test_no_certificate_outlives_its_ca(tmp_path: Path) -> None:
    now = datetime.now(UTC)  # at the test's run, not its module's import: certificates begin then
    folder = tmp_path / "tls"
    ca_path, _ = pki.ensure_ca(folder)
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    leaf = _chain(pki.issue(folder, "node1", ["127.0.0.1"], common="kafka-node",
                            not_after=now + timedelta(days=40 * 365)))[0]
    assert leaf.not_valid_after_utc == ca.not_valid_after_utc
    assert ca.not_valid_after_utc - now > timedelta(days=pki.VALID_DAYS)  # the CA outlives a default certificate


def test_a_certificate_of_this_ca_is_issued_anew_before_it_ends(tmp_path: Path) -> None:
    """Missing, or this CA's and ending within RENEW_DAYS: issued (anew), so a deployment's nodes do not stop a
    year on. One another CA signed (a ministry's own) is not this CA's to replace."""
    now = datetime.now(UTC)  # at the test's run, not its module's import: certificates begin then
    folder = tmp_path / "tls"
    assert pki.needs_issue(folder, "node1")  # none yet
    pki.issue(folder, "node1", ["127.0.0.1"], common="kafka-node")
    assert not pki.needs_issue(folder, "node1")
    assert pki.needs_issue(folder, "node1", now + timedelta(days=pki.VALID_DAYS - pki.RENEW_DAYS + 1))
    pki.issue(folder, "node1", ["127.0.0.1"], common="kafka-node", not_after=now + timedelta(days=10))
    assert pki.needs_issue(folder, "node1")  # within RENEW_DAYS of its end
    other = tmp_path / "other"
    pki.issue(other, "node1", ["127.0.0.1"], common="kafka-node", not_after=now + timedelta(days=10))
    (folder / "node1.pem").write_bytes((other / "node1.pem").read_bytes())  # signed by another CA
    assert not pki.needs_issue(folder, "node1")


def test_a_ca_near_its_end_is_named_not_signed_with_again(tmp_path: Path) -> None:
    """Certificates end with their CA: one issued within RENEW_DAYS of the CA's end would be issued anew at every
    start, and one after it fail. Both are refused naming the CA's end and the way on (a new CA)."""
    now = datetime.now(UTC)  # at the test's run, not its module's import: certificates begin then
    folder = tmp_path / "tls"
    pki.ensure_ca(folder, now=now - timedelta(days=pki.CA_VALID_DAYS - 10))
    with pytest.raises(ConfigError, match=r"ends on .*move .* aside and run this again for a new CA"):
        pki.issue(folder, "node1", ["127.0.0.1"], common="kafka-node")
    expired = tmp_path / "expired"
    pki.ensure_ca(expired, now=now - timedelta(days=pki.CA_VALID_DAYS + 1))
    with pytest.raises(ConfigError, match="new CA"):
        pki.issue(expired, "node1", ["127.0.0.1"], common="kafka-node")
