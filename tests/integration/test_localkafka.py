"""The local Kafka runner: formats, starts, answers and stops without leaving a process."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from puente.dev.localkafka import LocalKafka


def test_a_cluster_id_starting_with_a_dash_still_formats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A random base64url cluster id may begin with '-'; formatting must not read it as an option."""
    monkeypatch.setenv("PUENTE_KAFKA_PORT", "18392")  # below the ephemeral ports (32768 up), where clients bind
    kafka = LocalKafka("single", root=tmp_path)
    kafka.folder.mkdir(parents=True)
    (kafka.folder / "cluster.id").write_text("-AbCdEfGhIjKlMnOpQrStUw\n")
    try:
        kafka.up(timeout=90)
        assert [s.alive and s.listening for s in kafka.status()] == [True]
    finally:
        kafka.down()
    assert [s.alive for s in kafka.status()] == [False]
    assert not (kafka.nodes[0].folder / "kafka.pid").exists()


def _handshake(port: int, ca: Path, *, tls12_cipher: str | None) -> str:
    """The cipher a TLS handshake with the node agrees on: TLS 1.2 offering only ``tls12_cipher``, else TLS 1.3."""
    context = ssl.create_default_context(cafile=str(ca))
    if tls12_cipher is not None:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(tls12_cipher)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return tls.cipher()[0]  # type: ignore[index]


def test_the_nodes_accept_only_aead_cipher_suites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reviewer's probe: TLS 1.2 with ECDHE-ECDSA-AES128-SHA (CBC, SHA-1) handshook. Now it is refused; TLS 1.2
    with AES-GCM or ChaCha20-Poly1305 and TLS 1.3 still connect, and the node starts and serves its admin."""
    monkeypatch.setenv("PUENTE_KAFKA_PORT", "19892")
    kafka = LocalKafka("single", root=tmp_path)
    try:
        kafka.up(timeout=90)
        port = kafka.nodes[0].port
        for cbc in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256"):
            with pytest.raises(ssl.SSLError):
                _handshake(port, kafka.ca_file, tls12_cipher=cbc)
        for aead in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"):
            assert _handshake(port, kafka.ca_file, tls12_cipher=aead) == aead
        assert _handshake(port, kafka.ca_file, tls12_cipher=None) in {
            "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
    finally:
        kafka.down()
